//! A progress line on standard error for long commands (imports, simulations).

use std::io::Write as _;
use std::time::{Duration, Instant};

/// Redrawn at most five times a second, and once more when done.
#[derive(Debug, Default)]
pub struct ProgressLine {
    drawn: Option<Instant>,
}

impl ProgressLine {
    /// `detail` follows the count, e.g. a rate and the time left.
    pub fn show(&mut self, what: &str, done: usize, total: usize, detail: &str) {
        let finished = done >= total;
        if !finished && self.drawn.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        self.drawn = Some(Instant::now());
        let percent = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let filled = percent / 5;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{what:<18} [{}{}] {done}/{total} {detail}   ",
            "#".repeat(filled),
            " ".repeat(20 - filled)
        );
        if finished {
            let _ = writeln!(err);
        }
    }
}
