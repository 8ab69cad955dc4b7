//! The only place that reads the system clock. Everything else gets `now` as a parameter.

use shiyu_domain::Timestamp;

/// The current time.
#[allow(clippy::disallowed_methods)] // the one sanctioned clock read
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_millis() as i64)
}
