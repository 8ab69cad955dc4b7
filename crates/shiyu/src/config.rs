//! Configuration: built-in defaults, then `shiyu.toml` (or `--config FILE`), then `SHIYU_SECTION__KEY`
//! environment variables, then command-line flags.

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// A value that must never reach a log: Debug and Display print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub storage: Storage,
    pub server: Server,
    pub writes: Writes,
    pub deadlines: Deadlines,
    pub security: Security,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    /// Keys that seal reporters' phone and ID numbers: `id=BASE64[,id=BASE64…]`, the first one current.
    /// Unset with SQLite, a key is generated once into `DATA/keys/personal-data.keys`.
    pub personal_data_keys: Option<Secret>,
    /// Mark session cookies Secure (serve over TLS or behind a TLS proxy).
    pub secure_cookies: bool,
    /// How long a sign-in lasts, in minutes.
    pub session_minutes: i64,
    /// Requests per minute one address may make to the public endpoints and to sign-in (0: unlimited).
    pub public_requests_per_minute: u32,
    /// Wrong passwords from one address, within `lockout_minutes`, that lock that address out of the account.
    pub lockout_after: i64,
    /// Wrong passwords from all addresses, within `lockout_minutes`, that lock the account itself.
    pub account_lockout_after: i64,
    /// How long either lock lasts, in minutes.
    pub lockout_minutes: i64,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this>`.
    pub metrics_token: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// The data folder: the SQLite file and, later, the search index.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL; when set, cases live there instead of in the SQLite file.
    pub database_url: Option<Secret>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    /// A reported location outside every grid goes to the nearest grid of its county within this many metres.
    pub map_tolerance_m: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Writes {
    /// The most appends one group-commit transaction carries.
    pub max_batch: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    /// A stage turns yellow when this share of its time, in thousandths, is left.
    pub yellow_permille: u32,
    /// Extra calendar files (the format of `calendars/cn-2026.txt`) for later years or local holidays.
    pub calendar_files: Vec<PathBuf>,
    /// Working minutes a command center has to decide an extension request.
    pub extension_decision_minutes: u32,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            personal_data_keys: None,
            secure_cookies: false,
            session_minutes: 720,
            public_requests_per_minute: 120,
            lockout_after: 5,
            account_lockout_after: 50,
            lockout_minutes: 15,
            metrics_token: None,
        }
    }
}

impl Default for Storage {
    fn default() -> Self {
        Storage { data_dir: PathBuf::from("shiyu-data"), database_url: None }
    }
}

impl Default for Server {
    fn default() -> Self {
        Server { listen: "127.0.0.1:8080".into(), map_tolerance_m: 200.0 }
    }
}

impl Default for Writes {
    fn default() -> Self {
        Writes { max_batch: 512 }
    }
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { yellow_permille: 200, calendar_files: Vec::new(), extension_decision_minutes: 420 }
    }
}

/// The commented example `shiyu default-config` prints; a test keeps it equal to the defaults.
pub const EXAMPLE: &str = r#"# Shiyu configuration. Every key is optional; shown here with its default.
# Precedence: defaults < this file (./shiyu.toml or --config FILE) < SHIYU_SECTION__KEY environment
# variables (e.g. SHIYU_STORAGE__DATA_DIR=/srv/shiyu) < command-line flags (--data, --database).

[storage]
# The data folder: the SQLite database (shiyu.sqlite3) and, later, the search index.
data_dir = "shiyu-data"
# PostgreSQL instead of the embedded SQLite file, e.g. "postgres://shiyu:PASSWORD@db.internal/shiyu".
# Better given as SHIYU_STORAGE__DATABASE_URL than written here: it holds a password.
# database_url = ""

[server]
# Where `shiyu serve` listens.
listen = "127.0.0.1:8080"
# A reported location outside every grid (the thin margins along boundaries) goes to the nearest grid of
# its county within this many metres; farther away, the report is refused as outside the area served.
map_tolerance_m = 200.0

[writes]
# The most appends one group-commit transaction carries.
max_batch = 512

[deadlines]
# A stage turns yellow (临期) when this share of its time, in thousandths, is left.
yellow_permille = 200
# Extra working-calendar files, in the format of crates/shiyu-domain/calendars/cn-2026.txt.
calendar_files = []
# Working minutes a command center has to decide an extension request (420: one working day). Escalation
# rules and the calendar's special days are edited over the API (docs/deadlines.md).
extension_decision_minutes = 420

[security]
# Keys that seal reporters' phone and ID numbers (AES-256-GCM): "id=BASE64[,id=BASE64…]", the first one
# current, older ones kept to open what they sealed. Generate one with `shiyu new-key`. Give it as
# SHIYU_SECURITY__PERSONAL_DATA_KEYS rather than here. Unset with SQLite, a key is generated once into
# DATA/keys/personal-data.keys (mode 600); PostgreSQL deployments must set it.
# personal_data_keys = ""
# Mark session cookies Secure (when served over TLS, directly or behind a proxy).
secure_cookies = false
# How long a sign-in lasts, in minutes.
session_minutes = 720
# Requests per minute one address may make to the public endpoints and to sign-in (0: unlimited).
public_requests_per_minute = 120
# Wrong passwords from one address within lockout_minutes that lock that address out of the account, and
# from all addresses together that lock the account itself; how long either lock lasts.
lockout_after = 5
account_lockout_after = 50
lockout_minutes = 15
# When set, /metrics answers only "Authorization: Bearer <token>" (a Prometheus scrape's bearer_token).
# Give it as SHIYU_SECURITY__METRICS_TOKEN. Unset, /metrics is open: keep it on an internal address.
# metrics_token = ""
"#;

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else `./shiyu.toml` if present.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Config> {
        let mut merged = toml::Table::try_from(Config::default()).context("encoding the defaults")?;
        let file = match file {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from("shiyu.toml")).filter(|p| p.exists()),
        };
        if let Some(path) = file {
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            let table: toml::Table = text.parse().with_context(|| format!("parsing {}", path.display()))?;
            merge(&mut merged, table);
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("SHIYU_") else { continue };
            let Some((section, key)) = rest.split_once("__") else { continue };
            let (section, key) = (section.to_lowercase(), key.to_lowercase());
            let Some(toml::Value::Table(table)) = merged.get_mut(&section) else {
                bail!("unknown configuration section in {name}");
            };
            // An empty variable is an unset one (`SHIYU_STORAGE__DATABASE_URL=` means SQLite).
            if value.is_empty() {
                table.remove(&key);
                continue;
            }
            // The default says what the value is: a folder named `2026` is still a folder. Keys without a
            // default are the optional ones, all text.
            let typed = match table.get(&key) {
                None | Some(toml::Value::String(_)) => toml::Value::String(value),
                Some(_) => env_value(&value),
            };
            table.insert(key, typed);
        }
        let config: Config = toml::Value::Table(merged).try_into().context("invalid configuration")?;
        config.check()?;
        Ok(config)
    }

    /// Refuses settings outside what the platform can work with, naming each; nothing is clamped quietly.
    fn check(&self) -> anyhow::Result<()> {
        let mut wrong = Vec::new();
        if self.writes.max_batch == 0 {
            wrong.push("writes.max_batch must be at least 1");
        }
        if self.security.session_minutes <= 0 {
            wrong.push("security.session_minutes must be at least 1");
        }
        if self.deadlines.yellow_permille > 1000 {
            wrong.push("deadlines.yellow_permille is thousandths: at most 1000");
        }
        if self.deadlines.extension_decision_minutes == 0 {
            wrong.push("deadlines.extension_decision_minutes must be at least 1");
        }
        if !(0.0..=1000.0).contains(&self.server.map_tolerance_m) {
            wrong.push("server.map_tolerance_m is metres from 0 to 1000");
        }
        if self.storage.database_url.as_ref().is_some_and(|url| {
            !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://"))
        }) {
            wrong.push("storage.database_url must be a PostgreSQL URL (postgres://…)");
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            bail!("invalid configuration: {} / 配置有误", wrong.join("; "))
        }
    }
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(incoming)) => merge(existing, incoming),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// Environment values are TOML when they parse as a number, boolean or array, and plain strings otherwise.
fn env_value(text: &str) -> toml::Value {
    let parsed: Result<toml::Table, _> = format!("v = {text}").parse();
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(
            value @ (toml::Value::Integer(_)
            | toml::Value::Float(_)
            | toml::Value::Boolean(_)
            | toml::Value::Array(_)),
        ) => value,
        _ => toml::Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_printed_example_is_the_defaults() {
        let parsed: Config = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn file_then_environment_override_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shiyu.toml");
        std::fs::write(&file, "[storage]\ndata_dir = \"/srv/a\"\n[writes]\nmax_batch = 64\n").unwrap();
        let config = Config::load(
            Some(&file),
            env(&[
                ("SHIYU_STORAGE__DATA_DIR", "/srv/b"),
                ("SHIYU_DEADLINES__YELLOW_PERMILLE", "250"),
                ("SHIYU_STORAGE__DATABASE_URL", "postgres://u:pw@h/db"),
                ("PATH", "/usr/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/srv/b"));
        assert_eq!(config.writes.max_batch, 64);
        assert_eq!(config.deadlines.yellow_permille, 250);
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.storage.database_url.as_ref().map(Secret::expose), Some("postgres://u:pw@h/db"));
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let mut config = Config::default();
        config.storage.database_url = Some(Secret("postgres://u:hunter2@h/db".into()));
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn mistakes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shiyu.toml");
        std::fs::write(&file, "[storage]\ndata_dri = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&file), env(&[])).is_err());
        assert!(Config::load(None, env(&[("SHIYU_NOPE__X", "1")])).is_err());
        assert!(Config::load(None, env(&[("SHIYU_WRITES__MAX_BATCH", "many")])).is_err());
        assert!(Config::load(Some(&dir.path().join("missing.toml")), env(&[])).is_err());
        for (name, value) in [
            ("SHIYU_WRITES__MAX_BATCH", "0"),
            ("SHIYU_SECURITY__SESSION_MINUTES", "-5"),
            ("SHIYU_DEADLINES__YELLOW_PERMILLE", "5000"),
            ("SHIYU_SERVER__MAP_TOLERANCE_M", "-1"),
            ("SHIYU_STORAGE__DATABASE_URL", "mysql://db/shiyu"),
        ] {
            let refused = Config::load(None, env(&[(name, value)])).unwrap_err();
            assert!(format!("{refused:#}").contains("invalid configuration"), "{name}={value}: {refused:#}");
        }
    }

    #[test]
    fn environment_values_take_the_type_of_their_setting() {
        let config = Config::load(None, env(&[("SHIYU_STORAGE__DATA_DIR", "2026")])).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("2026"), "a folder named like a number");
        let config = Config::load(None, env(&[("SHIYU_STORAGE__DATA_DIR", "true")])).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("true"));
        let config = Config::load(None, env(&[("SHIYU_STORAGE__DATABASE_URL", "")])).unwrap();
        assert!(config.storage.database_url.is_none(), "an empty variable is an unset one");
        let config = Config::load(None, env(&[("SHIYU_WRITES__MAX_BATCH", "8")])).unwrap();
        assert_eq!(config.writes.max_batch, 8);
    }
}
