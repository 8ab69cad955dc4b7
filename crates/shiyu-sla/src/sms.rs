//! Text messages for urgent notices. The default sender writes each message to a log file; a real gateway
//! implements [`SmsSender`] and is chosen by configuration.

use shiyu_domain::{Timestamp, User};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

pub trait SmsSender: Send + Sync + std::fmt::Debug {
    fn send(&self, at: Timestamp, to: &User, text: &str) -> std::io::Result<()>;
}

/// Appends `time<TAB>username<TAB>text` lines to a file (the data folder's `sms.log`).
#[derive(Debug)]
pub struct LogSms {
    path: PathBuf,
    lock: Mutex<()>,
}

impl LogSms {
    pub fn new(path: impl Into<PathBuf>) -> LogSms {
        LogSms { path: path.into(), lock: Mutex::new(()) }
    }
}

impl SmsSender for LogSms {
    fn send(&self, at: Timestamp, to: &User, text: &str) -> std::io::Result<()> {
        let _one_writer = self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let line = text.replace(['\n', '\t'], " ");
        writeln!(file, "{}\t{}\t{}", at.0, to.username, line)?;
        tracing::info!(to = %to.username, text = %line, "sms");
        Ok(())
    }
}
