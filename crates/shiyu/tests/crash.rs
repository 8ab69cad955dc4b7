//! `shiyu serve` killed with SIGKILL at random moments while deadlines fire, and started again: afterwards
//! every yellow and every red has fired, and none twice, and the department's webhook received every one of
//! them at least once (by its idempotency id). The server runs on a sped-up clock (`SHIYU_CLOCK`), so that
//! two hours of a working morning pass in a few seconds. And `shiyu simulate` killed in the middle of a load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_domain::{next_alarm, Action, Command as CaseCommand, Date, Rules, Timestamp};
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

/// The personal-data key the server is given; webhook secrets are sealed with it.
const KEY: &str = "k1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// The cases, reported, registered and dispatched to the sample's lead department, whose webhook points at
/// `receiver`: their acceptance deadlines run out during the test.
async fn fill(store: Arc<dyn Store>, receiver: &str) {
    let world = SampleWorld::new();
    world.install(store.as_ref()).await.unwrap();
    let (id, key) = KEY.split_once('=').unwrap();
    let sealer = shiyu_auth::Sealer::new(&[(id.into(), key.into())]).unwrap();
    let lead = shiyu_domain::DepartmentId(SampleWorld::LEAD_DEPARTMENT);
    let webhook = shiyu_store::NewWebhook {
        department: lead,
        url: format!("{receiver}/shiyu"),
        secret_sealed: sealer.seal("receiver-secret").unwrap(),
        at: morning(0),
    };
    store.create_webhook(&webhook).await.unwrap();
    let service = CaseService::new(store, Arc::new(Rules::default()));
    let actor = |name: &str| world.actor(name).unwrap();
    let matter = world.matters[0].clone();
    for i in 0..CASES {
        let at = Timestamp(morning(0).0 + i * 30_000);
        let report = world.report(&format!("第{i}处占道经营"));
        let id = service.receive(None, &report, &actor("citizen"), at).await.unwrap().id;
        let register = CaseCommand::new(Action::Register { matter: matter.clone(), priority: None });
        service.act(id, None, &register, &actor("operator"), at).await.unwrap();
        let dispatch = CaseCommand::new(Action::Dispatch { lead, assisting: vec![], basis: None });
        service.act(id, None, &dispatch, &actor("operator"), at).await.unwrap();
    }
}

type Seen = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// A webhook receiver on a port of its own: answers 204 to every request and keeps each delivery id it saw.
async fn receiver() -> (String, Seen) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let keep = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = keep.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let (mut length, mut delivery) = (0usize, None);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        match header.split_once(':').map(|(n, v)| (n.to_ascii_lowercase(), v.trim())) {
                            Some((name, value)) if name == "content-length" => {
                                length = value.parse().unwrap_or(0)
                            }
                            Some((name, value)) if name == "x-shiyu-delivery" => {
                                delivery = Some(value.to_string())
                            }
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    seen.lock().unwrap().extend(delivery);
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, seen)
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

async fn check(store: &dyn Store, delivered: &std::collections::HashSet<String>) {
    let webhook = store.webhooks(None).await.unwrap()[0].id;
    for id in 1..=CASES {
        let id = shiyu_domain::CaseId(id);
        let history = store.case_history(id).await.unwrap();
        let kinds: Vec<&str> = history.iter().map(|e| e.event.change.kind()).collect();
        let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
        assert_eq!((count("warned"), count("overdue")), (1, 1), "case {}: {kinds:?}", id.0);
        let told =
            history.iter().filter(|e| matches!(e.event.change.kind(), "dispatched" | "warned" | "overdue"));
        for stored in told {
            let delivery = format!("{webhook}-{}", stored.seq);
            let kind = stored.event.change.kind();
            assert!(delivered.contains(&delivery), "case {}: {kind} not delivered ({delivery})", id.0);
        }
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
    let (address, delivered) = receiver().await;
    fill(store.clone(), &address).await;
    drop(store);
    let server = Server {
        args: ["--data", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec(),
        envs: vec![
            ("SHIYU_CLOCK".into(), clock_setting()),
            ("SHIYU_SECURITY__PERSONAL_DATA_KEYS".into(), KEY.into()),
        ],
        dir: dir.path().to_path_buf(),
    };
    tokio::task::spawn_blocking(move || run_with_crashes(&server, real_now_ms() as u64)).await.unwrap();
    let store = shiyu_store::sqlite::SqliteStore::open(&data, WriteOptions::default()).await.unwrap();
    let delivered = delivered.lock().unwrap().clone();
    check(&store, &delivered).await;
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
    let (address, delivered) = receiver().await;
    fill(store.clone(), &address).await;
    drop(store);
    let data = dir.path().join("data");
    let server = Server {
        args: ["--data", data.to_str().unwrap(), "serve", "--listen", "127.0.0.1:0"]
            .map(String::from)
            .to_vec(),
        envs: vec![
            ("SHIYU_CLOCK".into(), clock_setting()),
            ("SHIYU_STORAGE__DATABASE_URL".into(), cluster.url("shiyu")),
            ("SHIYU_SECURITY__PERSONAL_DATA_KEYS".into(), KEY.into()),
        ],
        dir: dir.path().to_path_buf(),
    };
    tokio::task::spawn_blocking(move || run_with_crashes(&server, real_now_ms() as u64 ^ 0x5eed))
        .await
        .unwrap();
    // A fresh connection: the first one's read cache knows the cases only as they were created.
    let store =
        shiyu_store::postgres::PgStore::connect_with(options, WriteOptions::default(), false).await.unwrap();
    let delivered = delivered.lock().unwrap().clone();
    check(&store, &delivered).await;
}

/// `shiyu simulate` killed in the middle of a large load, written through a rollback journal because nobody
/// else had the folder open: the next open rolls back a chunk the kill caught half-written (if it caught one:
/// the moment falls inside a chunk's transaction or between two) and builds the indexes the load had dropped,
/// and the database holds whole chunks, every case with its history.
#[tokio::test(flavor = "multi_thread")]
async fn sqlite_simulate_killed_mid_load_leaves_whole_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("city");
    let run = |args: &[&str]| Server {
        args: ["--data", data.to_str().unwrap()].iter().chain(args).map(|s| s.to_string()).collect(),
        envs: Vec::new(),
        dir: dir.path().to_path_buf(),
    };
    let built = run(&["demo", "--no-serve", "--cases", "0"]).start().wait().unwrap();
    assert!(built.success());
    let file = data.join(shiyu_store::sqlite::DATABASE_FILE);
    let city = std::fs::metadata(&file).unwrap().len();
    let mut load = run(&["simulate", "--cases", "1000000", "--days", "30"]).start();
    // Killed once a few chunks are in: the file has grown by some tens of megabytes.
    let started = Instant::now();
    while std::fs::metadata(&file).unwrap().len() < city + 40_000_000 {
        assert!(started.elapsed() < Duration::from_secs(300), "the load never got going");
        assert!(load.try_wait().unwrap().is_none(), "the load ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    load.kill().unwrap();
    load.wait().unwrap();

    let store = shiyu_store::sqlite::SqliteStore::open(&data, WriteOptions::default()).await.unwrap();
    let cases = store.count_cases().await.unwrap();
    assert!(cases > 0 && cases < 1_000_000, "{cases}");
    assert_eq!(cases % shiyu_sim::simulate::CHUNK_CASES as u64, 0, "whole chunks only: {cases}");
    let raw = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&file))
        .await
        .unwrap();
    let scalar = |sql: &'static str| {
        let raw = raw.clone();
        async move { sqlx::query_scalar::<_, String>(sql).fetch_one(&raw).await.unwrap() }
    };
    assert_eq!(scalar("PRAGMA integrity_check").await, "ok");
    assert_eq!(scalar("PRAGMA journal_mode").await, "wal", "the ordinary open went back to the WAL");
    let without_history = "SELECT CAST(COUNT(*) AS TEXT) FROM cases c \
                           WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.case_id = c.id)";
    assert_eq!(scalar(without_history).await, "0");
    assert_eq!(scalar("SELECT CAST(COUNT(*) AS TEXT) FROM deferred_indexes").await, "0", "indexes built");
}
