//! `shiyu serve` killed with SIGKILL at random moments while deadlines fire, and started again: afterwards
//! every yellow and every red has fired, and none twice. The server runs on a sped-up clock (`SHIYU_CLOCK`),
//! so that two hours of a working morning pass in a few seconds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_domain::{next_alarm, Date, Rules, Timestamp};
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{CaseService, Store, WriteOptions};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Monday 23 November 2026, 09:00 Beijing: the first report; one more every 30 seconds for an hour.
fn morning(minute: i64) -> Timestamp {
    Timestamp::from_beijing(Date::from_ymd(2026, 11, 23).unwrap(), 9 * 60).plus_minutes(minute)
}

const CASES: i64 = 120;
/// Ten minutes of the server's clock pass in every real second.
const SPEED: i64 = 600;

fn real_now_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // the test sets the server's clock against real time
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn fill(store: Arc<dyn Store>) {
    let world = SampleWorld::new();
    world.install(store.as_ref()).await.unwrap();
    let service = CaseService::new(store, Arc::new(Rules::default()));
    let citizen = world.actor("citizen").unwrap();
    for i in 0..CASES {
        let at = Timestamp(morning(0).0 + i * 30_000);
        service.receive(None, &world.report(&format!("第{i}处占道经营")), &citizen, at).await.unwrap();
    }
}

struct Server {
    args: Vec<String>,
    envs: Vec<(String, String)>,
    dir: std::path::PathBuf,
}

impl Server {
    fn start(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_shiyu"))
            .args(&self.args)
            .env_remove("SHIYU_STORAGE__DATABASE_URL")
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server starts")
    }
}

/// Kills and restarts the server at pseudo-random moments while the alarms of the morning come due, then
/// lets it run until they all have, and stops it gently.
fn run_with_crashes(server: &Server, seed: u64) {
    let began = Instant::now();
    let mut state = seed | 1;
    let mut random_ms = |low: u64, high: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        low + state % (high - low)
    };
    // Yellows fall due from 3.6 s, reds until 12 s of real time.
    for _ in 0..4 {
        let mut child = server.start();
        std::thread::sleep(Duration::from_millis(random_ms(700, 3000)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = server.start();
    while began.elapsed() < Duration::from_secs(16) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success() || status.code().is_none(), "the server stops cleanly: {status:?}");
}

async fn check(store: &dyn Store) {
    for id in 1..=CASES {
        let id = shiyu_domain::CaseId(id);
        let kinds: Vec<&str> =
            store.case_history(id).await.unwrap().iter().map(|e| e.event.change.kind()).collect();
        let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
        assert_eq!((count("warned"), count("overdue")), (1, 1), "case {}: {kinds:?}", id.0);
        let state = store.load_case(id).await.unwrap().unwrap();
        let next = next_alarm(&state).unwrap();
        assert!(next.at > morning(180), "case {} has nothing left due this morning: {next:?}", id.0);
    }
}

fn clock_setting() -> String {
    // The server's clock starts at 10:00, after the last report and before the first yellow (10:36).
    format!("{},{},{SPEED}", real_now_ms(), morning(60).0)
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_deadlines_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store: Arc<dyn Store> =
        Arc::new(shiyu_store::sqlite::SqliteStore::open(&data, WriteOptions::default()).await.unwrap());
    fill(store.clone()).await;
    drop(store);
    let server = Server {
        args: ["--data", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec(),
        envs: vec![("SHIYU_CLOCK".into(), clock_setting())],
        dir: dir.path().to_path_buf(),
    };
    run_with_crashes(&server, real_now_ms() as u64);
    let store = shiyu_store::sqlite::SqliteStore::open(&data, WriteOptions::default()).await.unwrap();
    check(&store).await;
    assert!(sms_log_mentions_overdue(&data), "urgent notices reached the SMS log");
}

fn sms_log_mentions_overdue(data: &Path) -> bool {
    std::fs::read_to_string(data.join("sms.log")).is_ok_and(|log| log.contains("超期"))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_deadlines_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = PgCluster::start(false).unwrap();
    let options = cluster.create_database("shiyu").await.unwrap();
    let store: Arc<dyn Store> = Arc::new(
        shiyu_store::postgres::PgStore::connect_with(options.clone(), WriteOptions::default(), true)
            .await
            .unwrap(),
    );
    fill(store.clone()).await;
    let data = dir.path().join("data");
    let server = Server {
        args: ["--data", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec(),
        envs: vec![
            ("SHIYU_CLOCK".into(), clock_setting()),
            ("SHIYU_STORAGE__DATABASE_URL".into(), cluster.url("shiyu")),
            (
                "SHIYU_SECURITY__PERSONAL_DATA_KEYS".into(),
                "k1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
            ),
        ],
        dir: dir.path().to_path_buf(),
    };
    drop(store);
    run_with_crashes(&server, real_now_ms() as u64 ^ 0x5eed);
    // A fresh connection: the first one's read cache knows the cases only as they were created.
    let store =
        shiyu_store::postgres::PgStore::connect_with(options, WriteOptions::default(), false).await.unwrap();
    check(&store).await;
}
