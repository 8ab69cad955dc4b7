//! The only place that reads the system clock. Everything else gets `now` as a parameter.

use shiyu_domain::Timestamp;

/// The current time.
#[allow(clippy::disallowed_methods)] // the one sanctioned clock read
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_millis() as i64)
}

/// The clock the server runs on: the system's, or, when `SHIYU_CLOCK=ANCHOR_MS,START_MS,SPEED` is set, one
/// that showed `START_MS` at the real moment `ANCHOR_MS` and runs `SPEED` times faster. Tests that kill and
/// restart the server while deadlines fire use it (the same setting across restarts keeps time moving
/// forwards), and so can a demonstration that wants a working day to pass in minutes. Never set it in
/// production: every deadline would be counted on the false time.
pub fn configured() -> anyhow::Result<shiyu_store::Clock> {
    let Ok(setting) = std::env::var("SHIYU_CLOCK") else {
        return Ok(std::sync::Arc::new(now));
    };
    let parts: Vec<&str> = setting.split(',').map(str::trim).collect();
    let parsed = match parts.as_slice() {
        [anchor, start, speed] => {
            anchor.parse::<i64>().ok().zip(start.parse::<i64>().ok()).zip(speed.parse::<f64>().ok())
        }
        _ => None,
    };
    let Some(((anchor, start), speed)) = parsed.filter(|(_, speed)| *speed > 0.0 && speed.is_finite()) else {
        anyhow::bail!("SHIYU_CLOCK is `ANCHOR_MS,START_MS,SPEED` (e.g. `1795000000000,1795395600000,60`), not `{setting}`");
    };
    tracing::warn!(
        start,
        speed,
        "running on a shifted clock (SHIYU_CLOCK): for tests and demonstrations only"
    );
    Ok(std::sync::Arc::new(move || Timestamp(start + ((now().0 - anchor) as f64 * speed) as i64)))
}
