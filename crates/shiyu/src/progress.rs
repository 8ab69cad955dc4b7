//! A progress line on standard error for long commands (imports, simulations).

use shiyu_sim::history::SimulateOptions;
use shiyu_sim::simulate::Progress;
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

/// The progress of `shiyu simulate`: cases written with their rate and the time left, then, for a load large
/// enough to defer them, the indexes built again.
#[derive(Debug)]
pub struct SimulationProgress {
    line: ProgressLine,
    cases: u64,
    builds_indexes: bool,
    started: Instant,
    indexing_since: Option<Instant>,
}

impl SimulationProgress {
    /// For the load `options` describe, about to start.
    pub fn new(options: &SimulateOptions) -> SimulationProgress {
        SimulationProgress {
            line: ProgressLine::default(),
            cases: options.cases,
            builds_indexes: shiyu_sim::simulate::defers_indexes_for(options),
            started: Instant::now(),
            indexing_since: None,
        }
    }

    pub fn show(&mut self, step: Progress) {
        let (what, done, total, detail) = self.describe(step, Instant::now());
        self.line.show(what, done, total, &detail);
    }

    /// What the line says about `step` at `now`: its label, count, total and detail.
    fn describe(&mut self, step: Progress, now: Instant) -> (&'static str, usize, usize, String) {
        match step {
            Progress::Written(tally) => {
                let seconds = now.duration_since(self.started).as_secs_f64().max(1e-3);
                let rate = tally.cases as f64 / seconds;
                let left = self.cases.saturating_sub(tally.cases) as f64 / rate.max(1.0);
                let detail = if tally.cases >= self.cases && self.builds_indexes {
                    format!("{rate:.0} cases/s; the indexes next")
                } else {
                    format!("{rate:.0} cases/s, {left:.0} s left")
                };
                ("simulating", tally.cases as usize, self.cases as usize, detail)
            }
            Progress::Indexed { built, of } => {
                let since = *self.indexing_since.get_or_insert(now);
                let seconds = now.duration_since(since).as_secs_f64();
                // The indexes take roughly alike, so those built so far tell how long the rest will take.
                let detail = match built {
                    0 => String::new(),
                    _ if built >= of => format!("in {seconds:.1} s"),
                    _ => format!("about {:.0} s left", seconds / built as f64 * (of - built) as f64),
                };
                ("building indexes", built, of, detail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shiyu_domain::Timestamp;
    use shiyu_sim::history::Tally;

    #[test]
    fn a_simulation_shows_its_rate_and_time_left_then_the_indexes_with_theirs() {
        let load = |cases| SimulateOptions { cases, days: 30, seed: 1, until: Timestamp(0), first_id: 1 };
        let mut progress = SimulationProgress::new(&load(1_000_000));
        let start = progress.started;
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let written = |cases| Progress::Written(Tally { cases, events: cases * 8 });
        let (what, done, total, detail) = progress.describe(written(250_000), at(5));
        assert_eq!(
            (what, done, total, detail.as_str()),
            ("simulating", 250_000, 1_000_000, "50000 cases/s, 15 s left")
        );
        let (_, _, _, detail) = progress.describe(written(1_000_000), at(20));
        assert_eq!(detail, "50000 cases/s; the indexes next");
        let indexed = |built| Progress::Indexed { built, of: 10 };
        assert_eq!(progress.describe(indexed(0), at(20)), ("building indexes", 0, 10, String::new()));
        assert_eq!(progress.describe(indexed(2), at(26)).3, "about 24 s left", "3 s an index so far");
        assert_eq!(progress.describe(indexed(10), at(50)).3, "in 30.0 s");

        let mut small = SimulationProgress::new(&load(1_000));
        let end = small.started + Duration::from_secs(1);
        assert_eq!(small.describe(written(1_000), end).3, "1000 cases/s, 0 s left", "no indexes to announce");
    }
}
