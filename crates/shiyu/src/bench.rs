//! The benchmark harness: `shiyu bench NAME` runs a measurement and its baseline in the same run, prints a
//! table, and with `--json` one JSON object on the last line.

use serde_json::{json, Map, Value};
use std::time::Duration;

pub mod analytics;
pub mod classifier;
pub mod geo;
pub mod http;
pub mod intake;
pub mod simulate;
pub mod sla;

use anyhow::Context;
use shiyu_store::postgres::PgStore;
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::{Store, WriteOptions};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Executor as _};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// An empty store for one measurement: SQLite in a new folder on the disk being measured, or a new schema
/// in the given PostgreSQL database. `close` removes it.
pub struct FreshStore {
    pub store: Arc<dyn Store>,
    sqlite_dir: Option<tempfile::TempDir>,
    schema: Option<(sqlx::PgConnection, String)>,
}

impl FreshStore {
    pub async fn open(
        database: Option<&str>,
        dir: &Path,
        label: &str,
        write: WriteOptions,
    ) -> anyhow::Result<FreshStore> {
        match database {
            None => {
                std::fs::create_dir_all(dir)?;
                let folder = tempfile::Builder::new().prefix(&format!("bench-{label}-")).tempdir_in(dir)?;
                let store = Arc::new(SqliteStore::open(folder.path(), write).await?);
                Ok(FreshStore { store, sqlite_dir: Some(folder), schema: None })
            }
            Some(url) => {
                let schema = format!("shiyu_bench_{label}_{}", std::process::id());
                let base = PgConnectOptions::from_str(url).context("parsing --database")?;
                let mut admin = base.connect().await.context("connecting to PostgreSQL")?;
                admin
                    .execute(
                        format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str(),
                    )
                    .await?;
                let scoped = base.options([("search_path", schema.as_str())]);
                let store = Arc::new(PgStore::connect_with(scoped, write, true).await?);
                Ok(FreshStore { store, sqlite_dir: None, schema: Some((admin, schema)) })
            }
        }
    }

    pub async fn close(self) -> anyhow::Result<()> {
        drop(self.store);
        if let Some((mut admin, schema)) = self.schema {
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await?;
        }
        drop(self.sqlite_dir);
        Ok(())
    }
}

/// The result of one benchmark: named figures in the order they were added.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(String, Value)>,
}

impl Report {
    pub fn new(benchmark: &str) -> Report {
        let mut report = Report::default();
        report.set("benchmark", benchmark);
        report.set("machine", machine());
        report
    }

    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.fields.retain(|(k, _)| k != key);
        self.fields.push((key.to_string(), value.into()));
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.fields.iter().cloned().collect::<Map<String, Value>>())
    }

    pub fn print(&self, as_json: bool) -> std::io::Result<()> {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (key, value) in &self.fields {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            say!("{key:<width$}  {shown}");
        }
        if as_json {
            say!("{}", self.to_json());
        }
        Ok(())
    }
}

/// Cores and CPU model, so that a figure in BENCHMARKS.md says what it was measured on.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}

/// Latency percentiles of a set of measurements, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], per_mille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = (sorted.len() * per_mille / 1000).min(sorted.len() - 1);
    round3(sorted[index].as_secs_f64() * 1000.0)
}

/// The process's peak resident memory so far (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| round3(kb / 1024.0))
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn ratio(a: f64, b: f64) -> Value {
    if b > 0.0 {
        json!(round3(a / b))
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_rank() {
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        assert_eq!(percentile_ms(&samples, 990), 0.991);
        assert_eq!(percentile_ms(&samples, 500), 0.501);
        assert_eq!(percentile_ms(&[], 990), 0.0);
    }

    #[test]
    fn the_json_line_holds_every_field() {
        let mut report = Report::new("demo");
        report.set("cases", 10);
        report.set("ratio", ratio(10.0, 4.0));
        let json = report.to_json();
        assert_eq!(json["ratio"], json!(2.5));
        assert_eq!(json["cases"], json!(10));
        assert!(json["machine"].as_str().unwrap().contains("cores"));
        assert_eq!(report.fields[0].0, "benchmark", "the table keeps the order figures were added in");
    }
}
