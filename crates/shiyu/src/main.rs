//! `shiyu`: the one binary of the platform.

/// Prints a line, returning the error instead of panicking when the reader has gone (`shiyu demo | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod bench;
mod clock;
mod config;
mod demo;
mod map;
mod progress;
mod serve;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use config::{Config, Secret};
use shiyu_domain::{Rules, WorkCalendar};
use shiyu_store::{Journal, Location, Store, WriteOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// Shiyu (市域): the platform a city's governance command center runs on.
#[derive(Debug, Parser)]
#[command(name = "shiyu", version)]
struct Cli {
    /// Configuration file (default: ./shiyu.toml when it exists).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Data folder for the embedded SQLite database.
    #[arg(long, global = true)]
    data: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…) to use instead of SQLite.
    #[arg(long, global = true)]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates or upgrades the database schema (automatic for SQLite; required once for PostgreSQL).
    Migrate,
    /// Prints a commented configuration file with every default.
    DefaultConfig,
    /// Writes a consistent copy of the SQLite database while it is in use.
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(long)]
        to: PathBuf,
    },
    /// Serves the JSON API.
    Serve {
        /// Address to listen on (default from the configuration: 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Manages users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Prints a new key for sealing personal data, as `id=BASE64`.
    NewKey,
    /// Builds the demo city 南通 in an empty data folder (reusing it later), then serves it with live cases.
    Demo {
        /// Address to listen on (default from the configuration: 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
        /// New reports per second while serving.
        #[arg(long, default_value_t = 3.0)]
        rate: f64,
        /// Build the city (if the folder is empty) and exit.
        #[arg(long)]
        no_serve: bool,
        /// Cases of history simulated when the city is built.
        #[arg(long, default_value_t = 50_000)]
        cases: u64,
        /// The history covers this many days before now.
        #[arg(long, default_value_t = 60)]
        days: u32,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Simulates a history of cases through the loop into the data folder's city (bulk load), with injected
    /// anomalies written to a ground-truth file.
    Simulate {
        #[arg(long)]
        cases: u64,
        /// Reports arrive over this many days before now.
        #[arg(long)]
        days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the ground truth goes (default: simulation-truth.json in the data folder).
        #[arg(long)]
        truth: Option<PathBuf>,
    },
    /// Imports divisions, boundaries or grids; checks the whole file first and changes nothing if any of it
    /// is wrong.
    Import {
        #[arg(value_enum)]
        kind: map::ImportKind,
        file: PathBuf,
        /// How far (metres) a grid may reach outside its parent, and what counts as touching.
        #[arg(long, default_value_t = 5.0)]
        tolerance_m: f64,
    },
    /// Exports the grids and micro-grids with their outlines as GeoJSON.
    Export {
        #[arg(value_enum)]
        what: ExportKind,
        /// Write to this file instead of standard output.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Retrains the matter classifier (智能分拨) on every case registered with a matter and prints its
    /// accuracy on the fifth of them it did not learn from.
    TrainClassifier {
        /// Also print the figures as one JSON object on the last line.
        #[arg(long)]
        json: bool,
    },
    /// Writes the monthly report (月度分析报告) of the city or one jurisdiction as CSV, XLSX, printable HTML with
    /// charts, or JSON.
    Report {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// A jurisdiction code (default: the whole city).
        #[arg(long)]
        jurisdiction: Option<String>,
        /// csv, xlsx, html or json.
        #[arg(long, default_value = "html")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rebuilds a read model from the event log and prints what it took (the server rebuilds it at start-up).
    Rebuild {
        #[arg(value_enum)]
        what: RebuildKind,
        /// Also print the figures as one JSON object on the last line.
        #[arg(long)]
        json: bool,
    },
    /// Runs a benchmark and its baseline in one run.
    Bench {
        #[command(subcommand)]
        benchmark: Benchmark,
        /// Also print the figures as one JSON object on the last line.
        #[arg(long, global = true)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ExportKind {
    Grids,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RebuildKind {
    /// The columnar projection behind statistics and evaluation.
    Analytics,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Creates a user; the password is read from standard input.
    Add {
        username: String,
        #[arg(long)]
        role: String,
        /// Code of the jurisdiction the user works for.
        #[arg(long)]
        jurisdiction: Option<String>,
        /// Id of the department (for department handlers).
        #[arg(long)]
        department: Option<i64>,
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from standard input (the only way: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Benchmark {
    /// The matter classifier on the demo's descriptions: phrasings it never saw against cases it did.
    Classifier {
        /// Descriptions written of each phrasing of each matter.
        #[arg(long, default_value_t = 30)]
        each: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Point → grid lookups and routing decisions on the demo city's grids; with --database, PostGIS beside.
    Geo {
        #[arg(long, default_value_t = 1_000_000)]
        lookups: usize,
        #[arg(long, default_value_t = 100_000)]
        routes: usize,
        /// Points asked of PostGIS (one query each).
        #[arg(long, default_value_t = 20_000)]
        postgis_lookups: usize,
    },
    /// The API over loopback: durable citizen reports, case reads by id, /healthz as the baseline.
    Http {
        #[arg(long, default_value_t = 50_000)]
        reports: u64,
        /// Concurrent reporting clients (and writers of the store baseline); the same 256 as the reads.
        #[arg(long, default_value_t = 256)]
        report_connections: usize,
        #[arg(long, default_value_t = 200_000)]
        reads: u64,
        #[arg(long, default_value_t = 256)]
        read_connections: usize,
        /// Reads a second offered over the same connections in the paced phase (`read_p99_ms`).
        #[arg(long, default_value_t = 20_000)]
        read_rate: u64,
        #[arg(long, default_value_t = 10)]
        paced_seconds: u64,
        /// Folder for the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Simulated histories of the demo city through the bulk path, against step-by-step appends.
    Simulate {
        #[arg(long, default_value_t = 1_000_000)]
        cases: u64,
        /// Cases for the step-by-step baseline (slower, so fewer by default).
        #[arg(long, default_value_t = 20_000)]
        baseline_cases: u64,
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Folder for the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Concurrent writers creating cases: group commit against one transaction per case.
    Intake {
        #[arg(long, default_value_t = 64)]
        writers: usize,
        #[arg(long, default_value_t = 100_000)]
        cases: u64,
        /// Cases for the one-transaction-per-case baseline.
        #[arg(long, default_value_t = 5_000)]
        baseline_cases: u64,
        /// Folder for the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The deadline engine over N open cases: start-up rebuild, lateness of due alarms, CPU when idle.
    Sla {
        #[arg(long, default_value_t = 1_000_000)]
        cases: u64,
        /// Folder for the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Statistics and evaluation over N generated cases spanning ten years: the columnar projection's
    /// questions idle and while ingesting, the same questions as SQL GROUP BY on SQLite and PostgreSQL (a
    /// throwaway cluster unless --database is given), and the rebuild from a real simulated log.
    Analytics {
        #[arg(long, default_value_t = 10_000_000)]
        cases: u64,
        /// Simulated cases bulk-loaded into a real store for the rebuild measurement.
        #[arg(long, default_value_t = 200_000)]
        rebuild_cases: u64,
        /// Rounds of the question mix asked of the projection (idle, then again while ingesting).
        #[arg(long, default_value_t = 30)]
        rounds: usize,
        /// Timed rounds of the mix asked of each SQL database, after one that checks every answer (SQLite
        /// takes about 20 s a question at ten million cases).
        #[arg(long, default_value_t = 1)]
        sql_rounds: usize,
        /// Leave PostgreSQL out of the comparison.
        #[arg(long)]
        no_postgres: bool,
        /// Folder for the SQLite files (default: the system's temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

// Simulated histories allocate and free millions of small strings and vectors a second; glibc spent a fifth
// of the generating thread in malloc and free (BENCHMARKS.md, simulate), mimalloc much less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output went away (`shiyu demo | head`): nothing is wrong with the work done.
        Err(error) if is_broken_pipe(&error) => std::process::ExitCode::SUCCESS,
        // The message and its causes on one line, never a backtrace: RUST_BACKTRACE is for panics.
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // These two make a configuration rather than read one: a broken shiyu.toml must not stand in their way.
    match cli.command {
        Command::DefaultConfig => {
            say!("{}", config::EXAMPLE.trim_end());
            return Ok(());
        }
        Command::NewKey => {
            // Milliseconds, so that keys made one after another never share an id.
            say!("k{}={}", clock::now().0, shiyu_auth::Sealer::generate_key());
            return Ok(());
        }
        _ => {}
    }
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(data) = &cli.data {
        config.storage.data_dir = data.clone();
    }
    if let Some(url) = &cli.database {
        config.storage.database_url = Some(Secret(url.clone()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run(cli.command, config))
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        // Answered in `start`, before the configuration is read.
        Command::DefaultConfig | Command::NewKey => {}
        Command::Migrate => {
            let store = open_store(&config, true).await?;
            say!("{} schema is up to date", store.backend().as_str());
        }
        Command::Backup { to } => {
            if config.storage.database_url.is_some() {
                bail!(
                    "`shiyu backup` copies the SQLite file; back PostgreSQL up with pg_dump or pg_basebackup"
                );
            }
            let store = open_existing_store(&config).await?;
            store.backup(&to).await.with_context(|| format!("backing up to {}", to.display()))?;
            say!("backup written to {}", to.display());
            if config.security.personal_data_keys.is_none() {
                say!(
                    "keep {} with it: the phone and ID numbers in the copy open only with that key",
                    config.storage.data_dir.join("keys").join("personal-data.keys").display()
                );
            }
        }
        Command::Serve { listen } => {
            init_logging();
            let store = open_store(&config, false).await?;
            let listen = listen.unwrap_or_else(|| config.server.listen.clone());
            serve::serve(store, rules(&config)?, &config, &listen).await?;
        }
        Command::User {
            command:
                UserCommand::Add { username, role, jurisdiction, department, display_name, password_stdin: _ },
        } => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password).context("reading the password from standard input")?;
            if password.is_empty() {
                bail!("no password on standard input: send it as one line, e.g. `echo \"$PASSWORD\" | shiyu user add …` / 请从标准输入提供密码");
            }
            let store = open_store(&config, false).await?;
            let password = password.trim_end_matches(['\r', '\n']).to_string();
            serve::add_user(store, &username, display_name, &role, jurisdiction, department, password)
                .await?;
        }
        Command::Demo { listen, rate, no_serve, cases, days, seed } => {
            if !(rate > 0.0 && rate <= MOST_REPORTS_PER_SECOND) {
                bail!("--rate is new reports a second, more than 0 and at most {MOST_REPORTS_PER_SECOND} / --rate 须大于0且不超过{MOST_REPORTS_PER_SECOND}");
            }
            check_history(cases, days, true)?;
            let store = open_store(&config, false).await?;
            let options = demo::DemoOptions { listen, rate, no_serve, cases, days, seed };
            demo::run(store, rules(&config)?, &config, options).await?;
        }
        Command::Simulate { cases, days, seed, truth } => {
            check_history(cases, days, false)?;
            let truth = truth.unwrap_or_else(|| config.storage.data_dir.join("simulation-truth.json"));
            // Alone with the file, the load writes each page once (`Journal::RollbackWhenAlone`).
            require_database(&config)?;
            let store = open_store_journaled(&config, false, Journal::RollbackWhenAlone).await?;
            // Checked before anything is written: a history loaded without its ground truth is of no use.
            let folder =
                truth.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            if !folder.is_dir() {
                bail!("--truth {}: the folder {} does not exist", truth.display(), folder.display());
            }
            demo::simulate(store, rules(&config)?, &config, cases, days, seed, &truth).await?;
        }
        Command::Import { kind, file, tolerance_m } => {
            if !(0.0..=100.0).contains(&tolerance_m) {
                bail!("--tolerance-m is metres from 0 to 100 / --tolerance-m 须在0到100米之间");
            }
            let store = open_store(&config, false).await?;
            map::import(store.as_ref(), kind, &file, tolerance_m).await?;
        }
        Command::Export { what: ExportKind::Grids, to } => {
            let store = open_existing_store(&config).await?;
            map::export(store.as_ref(), to.as_deref()).await?;
        }
        Command::Report { month, jurisdiction, format, out } => {
            let store = open_existing_store(&config).await?;
            let format = shiyu_web::api::reports::Format::parse(&format)
                .with_context(|| format!("unknown format `{format}`: csv, xlsx, html or json"))?;
            let analytics = shiyu_analytics::Analytics::rebuild(store.as_ref()).await?;
            let reference = shiyu_web::reference::ReferenceCache::load(store.as_ref()).await?;
            let year = month.split('-').next().and_then(|y| y.parse::<i32>().ok()).unwrap_or(2026);
            let weights = match store.setting(&format!("evaluation_weights:{year}")).await? {
                Some(body) => serde_json::from_str(&body).context("stored evaluation weights")?,
                None => shiyu_analytics::Weights::default(),
            };
            let report = shiyu_web::api::reports::build(
                &analytics.read(),
                &reference.get(),
                &month,
                jurisdiction.as_deref(),
                &weights,
                clock::now(),
            )?;
            let bytes = shiyu_web::api::reports::render(&report, format).map_err(anyhow::Error::msg)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "{} ({} cases) written to {}",
                        report.month,
                        report.totals.received,
                        path.display()
                    );
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        Command::Rebuild { what: RebuildKind::Analytics, json } => {
            let store = open_existing_store(&config).await?;
            let started = std::time::Instant::now();
            let analytics = shiyu_analytics::Analytics::rebuild(store.as_ref()).await?;
            let seconds = started.elapsed().as_secs_f64();
            let projection = analytics.read();
            let mut report = bench::Report::new("rebuild-analytics");
            report.set("cases", projection.len() as u64);
            report.set("events", projection.seq as u64);
            report.set("seconds", bench::round3(seconds));
            report.set("events_per_s", (projection.seq as f64 / seconds.max(1e-9)).round());
            report.set(
                "bytes_per_case",
                bench::round3(projection.bytes() as f64 / projection.len().max(1) as f64),
            );
            report.print(json)?;
        }
        Command::TrainClassifier { json } => {
            let store = open_existing_store(&config).await?;
            let Some((model, evaluation)) =
                shiyu_web::classifier::retrain(store.as_ref(), clock::now()).await?
            else {
                bail!("no case has been registered with a matter yet: nothing to learn from");
            };
            let mut report = bench::Report::new("train-classifier");
            report.set("matters", model.labels().len() as u64);
            report.set("trained_on", evaluation.trained_on as u64);
            report.set("held_out", evaluation.held_out as u64);
            report.set("top1_accuracy", bench::round3(evaluation.top1));
            report.set("top3_accuracy", bench::round3(evaluation.top3));
            report.print(json)?;
        }
        Command::Bench { benchmark, json } => {
            let database = config.storage.database_url.as_ref().map(|s| s.expose().to_string());
            let report = match benchmark {
                Benchmark::Http {
                    reports,
                    report_connections,
                    reads,
                    read_connections,
                    read_rate,
                    paced_seconds,
                    dir,
                } => {
                    let options = bench::http::HttpOptions {
                        reports: reports.max(1),
                        report_connections: report_connections.max(1),
                        reads: reads.max(1),
                        read_connections,
                        read_rate,
                        paced_seconds,
                        database,
                        dir: dir.unwrap_or_else(std::env::temp_dir),
                    };
                    bench::http::run(&options).await?
                }
                Benchmark::Classifier { each, seed } => {
                    bench::classifier::run(&bench::classifier::ClassifierOptions { each: each.max(1), seed })
                        .await?
                }
                Benchmark::Geo { lookups, routes, postgis_lookups } => {
                    let options = bench::geo::GeoOptions { lookups, routes, postgis_lookups, database };
                    bench::geo::run(&options).await?
                }
                Benchmark::Simulate { cases, baseline_cases, days, dir } => {
                    let options = bench::simulate::SimulateBenchOptions {
                        cases: cases.max(1),
                        baseline_cases: baseline_cases.max(1),
                        days: days.max(1),
                        database,
                        dir: dir.unwrap_or_else(std::env::temp_dir),
                    };
                    bench::simulate::run(&options).await?
                }
                Benchmark::Intake { writers, cases, baseline_cases, dir } => {
                    let options = bench::intake::IntakeOptions {
                        writers: writers.max(1),
                        cases: cases.max(1),
                        baseline_cases: baseline_cases.max(1),
                        database,
                        dir: dir.unwrap_or_else(std::env::temp_dir),
                    };
                    bench::intake::run(&options).await?
                }
                Benchmark::Sla { cases, dir } => {
                    let options = bench::sla::SlaOptions {
                        cases: cases.max(2),
                        database,
                        dir: dir.unwrap_or_else(std::env::temp_dir),
                    };
                    bench::sla::run(&options).await?
                }
                Benchmark::Analytics { cases, rebuild_cases, rounds, sql_rounds, no_postgres, dir } => {
                    let options = bench::analytics::AnalyticsOptions {
                        cases: cases.max(1),
                        rebuild_cases: rebuild_cases.max(1),
                        rounds: rounds.max(1),
                        sql_rounds: sql_rounds.max(1),
                        postgres: !no_postgres,
                        database,
                        dir: dir.unwrap_or_else(std::env::temp_dir),
                    };
                    bench::analytics::run(&options).await?
                }
            };
            report.print(json)?;
        }
    }
    Ok(())
}

/// Logs go to standard error; `RUST_LOG` chooses the level (default `info`), `SHIYU_LOG_JSON=1` makes them JSON.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if std::env::var("SHIYU_LOG_JSON").is_ok_and(|v| v == "1") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Opens the configured store. SQLite always migrates; PostgreSQL only when asked (`shiyu migrate`).
async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Arc<dyn Store>> {
    open_store_journaled(config, migrate, Journal::Wal).await
}

async fn open_store_journaled(
    config: &Config,
    migrate: bool,
    journal: Journal,
) -> anyhow::Result<Arc<dyn Store>> {
    let write =
        WriteOptions { max_batch: config.writes.max_batch.max(1), journal, ..WriteOptions::default() };
    let location = match &config.storage.database_url {
        Some(url) => Location::Postgres(url.expose()),
        None => Location::SqliteDir(&config.storage.data_dir),
    };
    let store = shiyu_store::open(location, write, migrate).await.context("opening the database")?;
    Ok(store)
}

/// The most live reports a second `demo --rate` feeds.
const MOST_REPORTS_PER_SECOND: f64 = 1_000.0;
/// The most cases one `demo` or `simulate` writes: a thousand times the demo city's year, and far more than
/// a disk holds at about 2.3 KB a case.
const MOST_SIMULATED_CASES: u64 = 100_000_000;
/// The longest history: ten years.
const MOST_SIMULATED_DAYS: u32 = 3_650;

/// Refuses a history the simulator cannot sensibly make, before anything is written.
fn check_history(cases: u64, days: u32, zero_cases_allowed: bool) -> anyhow::Result<()> {
    if cases > MOST_SIMULATED_CASES || (cases == 0 && !zero_cases_allowed) {
        bail!("--cases is from 1 to {MOST_SIMULATED_CASES} / --cases 须在1到{MOST_SIMULATED_CASES}之间");
    }
    if !(1..=MOST_SIMULATED_DAYS).contains(&days) {
        bail!(
            "--days is from 1 to {MOST_SIMULATED_DAYS} (ten years) / --days 须在1到{MOST_SIMULATED_DAYS}之间"
        );
    }
    Ok(())
}

/// Refuses a command that only works on what is already there when the data folder holds no database: a
/// mistyped --data must not quietly become a new, empty database.
fn require_database(config: &Config) -> anyhow::Result<()> {
    if config.storage.database_url.is_none() {
        let file = config.storage.data_dir.join(shiyu_store::sqlite::DATABASE_FILE);
        if !file.is_file() {
            bail!(
                "there is no database in {} (build one with `shiyu demo --no-serve`, or check --data) / 该数据目录中没有数据库",
                config.storage.data_dir.display()
            );
        }
    }
    Ok(())
}

/// Opens the store for a command that only works on what is already there ([`require_database`]).
async fn open_existing_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    require_database(config)?;
    open_store(config, false).await
}

/// The domain rules this deployment runs on: the national calendar plus any configured calendar files.
fn rules(config: &Config) -> anyhow::Result<Rules> {
    let mut calendar = WorkCalendar::china();
    for file in &config.deadlines.calendar_files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        calendar.load(&text).with_context(|| format!("in {}", file.display()))?;
    }
    Ok(Rules {
        calendar,
        yellow_permille: config.deadlines.yellow_permille,
        extension_decision_minutes: config.deadlines.extension_decision_minutes.max(1),
        ..Rules::default()
    })
}
