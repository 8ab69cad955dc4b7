//! The binary as an operator runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn shiyu(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiyu"))
        .args(args)
        .current_dir(dir)
        .env_remove("SHIYU_STORAGE__DATABASE_URL")
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn last_json_line(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn default_config_prints_a_file_the_binary_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let printed = shiyu(&["default-config"], dir.path());
    assert!(printed.status.success());
    std::fs::write(dir.path().join("shiyu.toml"), &printed.stdout).unwrap();
    let migrated = shiyu(&["migrate"], dir.path());
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(dir.path().join("shiyu-data/shiyu.sqlite3").exists(), "the default data folder is used");
}

#[test]
fn bad_arguments_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for (args, said) in [
        (&["--data", "nowhere", "export", "grids"][..], "there is no database in nowhere"),
        (&["--data", "nowhere", "report", "--month", "2026-11"][..], "there is no database"),
        (&["--data", "nowhere", "demo", "--no-serve", "--rate", "inf"][..], "--rate is new reports a second"),
        (&["--data", "nowhere", "demo", "--no-serve", "--rate", "0"][..], "--rate is new reports a second"),
        (&["--data", "nowhere", "demo", "--no-serve", "--days", "0"][..], "--days is from 1 to 3650"),
        (
            &["--data", "nowhere", "demo", "--no-serve", "--cases", "18446744073709551615"][..],
            "--cases is from 1",
        ),
        (&["--data", "nowhere", "simulate", "--cases", "0", "--days", "1"][..], "--cases is from 1"),
        (
            &["--data", "nowhere", "simulate", "--cases", "5", "--days", "100000"][..],
            "--days is from 1 to 3650",
        ),
        (
            &["--data", "nowhere", "import", "grids", "x.geojson", "--tolerance-m", "inf"][..],
            "--tolerance-m is metres",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_shiyu"))
            .args(args)
            .current_dir(dir.path())
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.contains(said), "{args:?}: {stderr}");
        assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!dir.path().join("nowhere").exists(), "{args:?} wrote a data folder");
    }
}

#[test]
fn a_bad_setting_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_shiyu"))
        .args(["migrate"])
        .current_dir(dir.path())
        .env("SHIYU_WRITES__MAX_BATCH", "many")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains("max_batch"), "{}", text(&output));
    assert!(!dir.path().join("shiyu-data").exists(), "nothing was created");
}

#[test]
fn demo_builds_nantong_once_simulates_more_and_backup_copies_it_online() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let demo = shiyu(
        &["--data", "city", "demo", "--no-serve", "--cases", "3000", "--days", "20", "--seed", "7"],
        dir.path(),
    );
    assert!(demo.status.success(), "{}", text(&demo));
    let said = text(&demo);
    for expected in [
        "22171 jurisdictions",
        "10238 grids",
        "9783 micro-grids",
        "111 matters in 17 categories",
        "3000 cases",
    ] {
        assert!(said.contains(expected), "{expected}: {said}");
    }
    let accounts_file = dir.path().join("city/demo-accounts.json");
    assert_eq!(std::fs::metadata(&accounts_file).unwrap().permissions().mode() & 0o777, 0o600);
    let accounts: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&accounts_file).unwrap()).unwrap();
    let roles: std::collections::HashSet<&str> =
        accounts.iter().map(|a| a["role"].as_str().unwrap()).collect();
    assert_eq!(roles.len(), 8, "one account per role: {roles:?}");
    for account in &accounts {
        let password = account["password"].as_str().unwrap();
        assert!(password.len() >= 12, "{account}");
        assert!(said.contains(password), "the password is printed: {account}");
    }
    let truth: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("city/simulation-truth.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(truth["anomalies"].as_array().unwrap().len(), 4, "{truth}");

    let more = shiyu(
        &["--data", "city", "simulate", "--cases", "500", "--days", "3", "--truth", "more.json"],
        dir.path(),
    );
    assert!(more.status.success(), "{}", text(&more));
    assert!(text(&more).contains("wrote 500 cases"), "{}", text(&more));
    assert!(!text(&more).contains("open in another process"), "alone with the file: {}", text(&more));
    assert!(dir.path().join("more.json").exists());
    // With the database open elsewhere (here a plain connection that sets the WAL, as a server's open does)
    // the load still runs, through the WAL, and says so.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let held = runtime.block_on(async {
        use sqlx::ConnectOptions as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("city/shiyu.sqlite3"))
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut connection = options.connect().await.unwrap();
        sqlx::query("SELECT count(*) FROM cases").execute(&mut connection).await.unwrap();
        connection
    });
    let beside = shiyu(
        &["--data", "city", "simulate", "--cases", "100", "--days", "1", "--truth", "beside.json"],
        dir.path(),
    );
    assert!(text(&beside).contains("open in another process"), "{}", text(&beside));
    assert!(text(&beside).contains("wrote 100 cases"), "{}", text(&beside));
    drop(held);
    let lost = shiyu(
        &["--data", "city", "simulate", "--cases", "50", "--days", "1", "--truth", "missing/truth.json"],
        dir.path(),
    );
    assert!(text(&lost).contains("the folder missing does not exist"), "{}", text(&lost));
    // …and wrote nothing: the city still holds 3600 cases below.
    let again = shiyu(&["--data", "city", "demo", "--no-serve"], dir.path());
    assert!(
        text(&again).contains("reusing the city already in the data folder (3600 cases)"),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains(accounts[0]["password"].as_str().unwrap()), "the same accounts");
    let empty = shiyu(&["--data", "nothing", "simulate", "--cases", "5", "--days", "1"], dir.path());
    assert!(!empty.status.success());
    assert!(text(&empty).contains("there is no database in nothing"), "{}", text(&empty));

    // The analytics read model rebuilds from the log, and the month's report renders from it.
    let rebuilt = shiyu(&["--data", "city", "rebuild", "analytics", "--json"], dir.path());
    assert!(rebuilt.status.success(), "{}", text(&rebuilt));
    let figures = last_json_line(&rebuilt);
    assert_eq!(figures["cases"], 3600, "{figures}");
    assert!(figures["events"].as_u64().unwrap() > 3600 * 3, "{figures}");
    assert!(figures["bytes_per_case"].as_f64().unwrap() < 200.0, "{figures}");
    #[allow(clippy::disallowed_methods)] // the report's month follows the real date the history ends at
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    // Three days back, so that the month surely holds some of the twenty days of history.
    let (year, month, _) = shiyu_domain::Timestamp(now - 3 * 86_400_000).to_beijing().0.ymd();
    let month = format!("{year:04}-{month:02}");
    for format in ["html", "csv", "xlsx"] {
        let out = format!("report.{format}");
        let made = shiyu(
            &["--data", "city", "report", "--month", &month, "--format", format, "--out", &out],
            dir.path(),
        );
        assert!(made.status.success(), "{}", text(&made));
        assert!(std::fs::metadata(dir.path().join(&out)).unwrap().len() > 1000, "{format}");
    }
    let page = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(page.contains("全市") && page.contains("月度分析报告") && page.contains("<svg"));
    let county = shiyu(
        &["--data", "city", "report", "--month", &month, "--jurisdiction", "320613", "--format", "json"],
        dir.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&county.stdout).unwrap();
    assert_eq!(report["jurisdiction"], "崇川区");
    assert!(report["totals"]["received"].as_u64().unwrap() > 0, "{report}");
    let wrong = shiyu(&["--data", "city", "report", "--month", "2026-13"], dir.path());
    assert!(!wrong.status.success() && text(&wrong).contains("not a month"), "{}", text(&wrong));

    // `user add` holds names to the API's rule and is audited like the API.
    let add = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_shiyu"))
            .args(["--data", "city", "user", "add", name, "--role", "admin", "--jurisdiction", "320600"])
            .arg("--password-stdin")
            .current_dir(dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(b"Chief-admin-2026\n")?;
                child.wait_with_output()
            })
            .unwrap()
    };
    for bad in ["", "a b", "x", "名字"] {
        let refused = add(bad);
        assert!(
            !refused.status.success() && text(&refused).contains("usernames are 3–64"),
            "{bad}: {}",
            text(&refused)
        );
    }
    let chief = add("chief");
    assert!(chief.status.success(), "{}", text(&chief));
    let audit = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = shiyu_store::sqlite::SqliteStore::open(&dir.path().join("city"), Default::default())
            .await
            .unwrap();
        let followed = shiyu_store::Store::follower_seq(&store, "notifier").await.unwrap();
        (shiyu_store::Store::audit_log(&store, 0, 100_000).await.unwrap(), followed)
    });
    let (audit, followed) = audit;
    // The simulated past is not news: the notifier starts after the demo's history, not on two months of it.
    assert!(followed > 0, "the demo's history is marked as dealt with");
    assert!(
        audit.iter().any(|r| r.entry.action == "user_created" && r.entry.actor == "command_line"),
        "the new admin is in the audit log"
    );

    let backup = shiyu(&["--data", "city", "backup", "--to", "copy.sqlite3"], dir.path());
    assert!(backup.status.success(), "{}", text(&backup));
    let twice = shiyu(&["--data", "city", "backup", "--to", "copy.sqlite3"], dir.path());
    assert!(!twice.status.success(), "an existing backup is never overwritten");
    std::fs::create_dir(dir.path().join("restored")).unwrap();
    std::fs::rename(dir.path().join("copy.sqlite3"), dir.path().join("restored/shiyu.sqlite3")).unwrap();
    // Without the key file beside it the copy's personal data is unreadable: refused, not given a new key.
    let keyless = shiyu(&["--data", "restored", "demo", "--no-serve"], dir.path());
    assert!(!keyless.status.success(), "{}", text(&keyless));
    assert!(text(&keyless).contains("personal-data.keys is missing"), "{}", text(&keyless));
    assert!(!dir.path().join("restored/keys").exists(), "no new key was made");
    std::fs::create_dir(dir.path().join("restored/keys")).unwrap();
    std::fs::copy(
        dir.path().join("city/keys/personal-data.keys"),
        dir.path().join("restored/keys/personal-data.keys"),
    )
    .unwrap();
    let restored = shiyu(&["--data", "restored", "demo", "--no-serve"], dir.path());
    assert!(text(&restored).contains("(3600 cases)"), "{}", text(&restored));

    // The demo never builds over data it did not make: here a deployment's own division tree.
    std::fs::write(dir.path().join("own.csv"), "level,code,name,parent_code\ncity,320600,南通市,\n").unwrap();
    let imported = shiyu(&["--data", "own", "import", "divisions", "own.csv"], dir.path());
    assert!(imported.status.success(), "{}", text(&imported));
    let over = shiyu(&["--data", "own", "demo", "--no-serve", "--cases", "10"], dir.path());
    assert!(!over.status.success() && text(&over).contains("did not finish building"), "{}", text(&over));
}

/// One HTTP/1.1 exchange on a new connection; returns the status line's code and the body.
fn http(address: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

fn cases_in(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("shiyu_cases{"))
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn the_demo_serves_the_city_with_live_cases_and_its_accounts_sign_in() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shiyu"))
        .args(["--data", "city", "demo", "--listen", "127.0.0.1:0", "--rate", "20", "--cases", "2000"])
        .current_dir(dir.path())
        .env_remove("SHIYU_STORAGE__DATABASE_URL")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the demo prints where it serves").unwrap();
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let metrics = |address: &str| {
        let (code, body) = http(address, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_eq!(code, 200);
        cases_in(&body)
    };
    let before = metrics(&address);
    assert!(before >= 2000, "{before}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let after = metrics(&address);
    assert!(after > before, "new reports keep arriving: {before} then {after}");

    let accounts: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("city/demo-accounts.json")).unwrap())
            .unwrap();
    let operator = accounts.iter().find(|a| a["role"] == "operator").unwrap();
    let login =
        serde_json::json!({"username": operator["username"], "password": operator["password"]}).to_string();
    let (code, body) = http(
        &address,
        &format!(
            "POST /api/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{login}",
            login.len()
        ),
    );
    assert_eq!(code, 200, "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn bench_intake_prints_its_figures_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = [
        "bench",
        "intake",
        "--writers",
        "8",
        "--cases",
        "400",
        "--baseline-cases",
        "40",
        "--dir",
        &dir_arg,
        "--json",
    ];
    let output = shiyu(&args, dir.path());
    assert!(output.status.success(), "{}", text(&output));
    let figures = last_json_line(&output);
    for key in [
        "backend",
        "writers",
        "cases",
        "group_commit_cases_per_s",
        "per_tx_cases_per_s",
        "ratio",
        "p99_ack_ms",
    ] {
        assert!(!figures[key].is_null(), "{key} missing from {figures}");
    }
    assert_eq!(figures["backend"], "sqlite");
    assert_eq!(figures["cases"], 400);
    assert!(figures["group_commit_cases_per_s"].as_f64().unwrap() > 0.0);
}

/// The classifier is measured twice on the same descriptions: every fifth held out, as `train-classifier`
/// reports, and whole phrasings held out; a phrasing never seen is the harder test, and the figures say so.
#[test]
fn bench_classifier_measures_unseen_phrasings_apart_from_seen_ones() {
    let dir = tempfile::tempdir().unwrap();
    let output = shiyu(&["bench", "classifier", "--each", "4", "--json"], dir.path());
    assert!(output.status.success(), "{}", text(&output));
    let figures = last_json_line(&output);
    assert_eq!(figures["descriptions"].as_u64(), figures["phrasings"].as_u64().map(|p| p * 4));
    assert_eq!(figures["unseen_phrasing_held_out"], figures["descriptions"], "every description once");
    let share = |key: &str| figures[key].as_f64().unwrap_or(-1.0);
    for key in ["by_case_top1", "by_case_top3", "unseen_phrasing_top1", "unseen_phrasing_top3"] {
        assert!((0.0..=1.0).contains(&share(key)), "{key}: {figures}");
    }
    assert!(share("unseen_phrasing_top1") < share("by_case_top1"), "{figures}");
    assert!(share("unseen_phrasing_top1") > 1.0 / 111.0, "better than a guess among the matters: {figures}");
}

/// The analytics benchmark checks every SQL answer against the projection's before it times anything, so a
/// small run is also a test that the two agree on generated data spanning ten years.
#[test]
fn bench_analytics_agrees_with_sql_and_prints_its_figures() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = [
        "bench",
        "analytics",
        "--cases",
        "3000",
        "--rebuild-cases",
        "300",
        "--rounds",
        "1",
        "--no-postgres",
        "--dir",
        &dir_arg,
        "--json",
    ];
    let output = shiyu(&args, dir.path());
    assert!(output.status.success(), "{}", text(&output));
    let figures = last_json_line(&output);
    assert_eq!(figures["cases"], 3000);
    assert_eq!(figures["sqlite_answers_checked"], figures["questions"]);
    for key in [
        "bytes_per_case",
        "query_p99_ms",
        "query_p99_ms_while_ingesting",
        "ratio_vs_sqlite",
        "rebuild_events_per_s",
    ] {
        assert!(figures[key].as_f64().is_some_and(|v| v > 0.0), "{key} missing from {figures}");
    }
}

#[test]
fn postgres_is_migrated_by_command_and_benchmarked_for_real() {
    let cluster = shiyu_store::testing::PgCluster::start(false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = cluster.url("postgres");
    let migrated = shiyu(&["--database", &url, "migrate"], dir.path());
    assert!(migrated.status.success(), "{}", text(&migrated));
    assert!(text(&migrated).contains("postgres schema is up to date"));
    let without_key = shiyu(&["--database", &url, "demo", "--no-serve"], dir.path());
    assert!(text(&without_key).contains("SHIYU_SECURITY__PERSONAL_DATA_KEYS"), "{}", text(&without_key));
    let demo = Command::new(env!("CARGO_BIN_EXE_shiyu"))
        .args(["--database", &url, "demo", "--no-serve", "--cases", "2500", "--days", "10"])
        .current_dir(dir.path())
        .env("SHIYU_SECURITY__PERSONAL_DATA_KEYS", "k1=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert!(demo.status.success(), "{}", text(&demo));
    assert!(text(&demo).contains("simulated 10 days of history: 2500 cases"), "{}", text(&demo));
    let backup = shiyu(&["--database", &url, "backup", "--to", "x"], dir.path());
    assert!(!backup.status.success());
    assert!(text(&backup).contains("pg_dump"));
    let bench = shiyu(
        &[
            "--database",
            &url,
            "bench",
            "intake",
            "--writers",
            "8",
            "--cases",
            "300",
            "--baseline-cases",
            "30",
            "--json",
        ],
        dir.path(),
    );
    assert!(bench.status.success(), "{}", text(&bench));
    assert_eq!(last_json_line(&bench)["backend"], "postgres");
}

#[test]
fn the_map_imports_checks_everything_first_and_exports_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = |name: &str| format!("{}/../../data/nantong/{name}", env!("CARGO_MANIFEST_DIR"));
    let divisions = shiyu(&["--data", "city", "import", "divisions", &data("divisions.csv")], dir.path());
    assert!(divisions.status.success(), "{}", text(&divisions));
    assert!(text(&divisions).contains("2150 new"), "{}", text(&divisions));
    let boundaries =
        shiyu(&["--data", "city", "import", "boundaries", &data("districts.geojson")], dir.path());
    assert!(boundaries.status.success(), "{}", text(&boundaries));
    assert!(text(&boundaries).contains("7 outlines"), "{}", text(&boundaries));
    // An empty file is the wrong file; a byte-order mark, as spreadsheets write, is no problem.
    std::fs::write(dir.path().join("empty.csv"), "level,code,name,parent_code\n").unwrap();
    let empty = shiyu(&["--data", "city", "import", "divisions", "empty.csv"], dir.path());
    assert!(!empty.status.success() && text(&empty).contains("holds nothing to import"), "{}", text(&empty));
    std::fs::write(
        dir.path().join("bom.csv"),
        "\u{feff}level,code,name,parent_code\ncommunity,320613001901,新社区,320613001\n",
    )
    .unwrap();
    let bom = shiyu(&["--data", "city", "import", "divisions", "bom.csv"], dir.path());
    assert!(bom.status.success() && text(&bom).contains("1 new"), "{}", text(&bom));

    // Two grids of 和平桥街道's first community: one fine, one crossing itself, one with an unknown parent.
    let feature = |code: &str, ring: &str| {
        format!(
            r#"{{"type":"Feature","properties":{{"code":"{code}","name":"网格{code}","level":"grid"}},"geometry":{{"type":"Polygon","coordinates":[{ring}]}}}}"#
        )
    };
    let good = feature(
        "320613001001001",
        "[[120.86,32.01],[120.861,32.01],[120.861,32.011],[120.86,32.011],[120.86,32.01]]",
    );
    let bow_tie = feature(
        "320613001001002",
        "[[120.87,32.01],[120.871,32.011],[120.871,32.01],[120.87,32.011],[120.87,32.01]]",
    );
    let orphan =
        feature("999999999999001", "[[120.88,32.01],[120.881,32.01],[120.881,32.011],[120.88,32.01]]");
    let broken = dir.path().join("broken.geojson");
    std::fs::write(
        &broken,
        format!(r#"{{"type":"FeatureCollection","features":[{good},{bow_tie},{orphan}]}}"#),
    )
    .unwrap();
    let refused = shiyu(&["--data", "city", "import", "grids", broken.to_str().unwrap()], dir.path());
    assert!(!refused.status.success());
    let said = text(&refused);
    assert!(said.contains("feature 1 (320613001001002): the ring intersects itself at 120.87"), "{said}");
    assert!(
        said.contains("feature 2 (999999999999001): parent 999999999999 is not a known community"),
        "{said}"
    );
    assert!(said.contains("2 problem(s)") && said.contains("nothing was imported"), "{said}");
    let exported = shiyu(&["--data", "city", "export", "grids"], dir.path());
    let none: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(none["features"].as_array().unwrap().len(), 0, "not even the good grid was kept");

    let fine = dir.path().join("fine.geojson");
    std::fs::write(&fine, format!(r#"{{"type":"FeatureCollection","features":[{good}]}}"#)).unwrap();
    let imported = shiyu(&["--data", "city", "import", "grids", fine.to_str().unwrap()], dir.path());
    assert!(imported.status.success(), "{}", text(&imported));
    let exported = shiyu(&["--data", "city", "export", "grids"], dir.path());
    let one: serde_json::Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(one["features"][0]["properties"]["parent_code"], "320613001001");
    assert_eq!(one["features"][0]["properties"]["name"], "网格320613001001001");
}
