//! `shiyu bench http`: the API over loopback. Durable citizen reports, case reads by id at 256 connections,
//! and `/healthz` on the same server as the baseline of what the HTTP stack alone can do.

use super::{percentile_ms, ratio, FreshStore, Report};
use anyhow::{ensure, Context};
use shiyu_auth::Sealer;
use shiyu_domain::Rules;
use shiyu_store::testing::SampleWorld;
use shiyu_store::{CaseService, WriteOptions};
use shiyu_web::client::HttpClient;
use shiyu_web::{AppState, WebSettings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub reports: u64,
    pub report_connections: usize,
    pub reads: u64,
    pub read_connections: usize,
    /// Reads a second offered in the paced phase, and for how long.
    pub read_rate: u64,
    pub paced_seconds: u64,
    pub database: Option<String>,
    pub dir: PathBuf,
}

const PASSWORD: &str = "Bench-password-2026";

struct Load {
    per_s: f64,
    p99_ms: f64,
}

pub async fn run(options: &HttpOptions) -> anyhow::Result<Report> {
    // The baseline for intake: the same number of reports straight into the store, without HTTP, so that
    // the ratio says what the API costs on this machine at this moment (disks here vary run to run).
    let direct = super::intake::IntakeOptions {
        writers: options.report_connections,
        cases: options.reports,
        baseline_cases: 0,
        database: options.database.clone(),
        dir: options.dir.clone(),
    };
    let store_baseline =
        super::intake::measure(&direct, shiyu_store::CommitMode::Group, options.reports).await?;
    let fresh =
        FreshStore::open(options.database.as_deref(), &options.dir, "http", WriteOptions::default()).await?;
    let store = fresh.store.clone();
    let world = SampleWorld::new();
    world.install(store.as_ref()).await?;
    let operator = world.users.iter().find(|u| u.username == "operator").context("sample operator")?;
    store.set_password(operator.id, &shiyu_auth::hash_password(PASSWORD)?).await?;
    let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
    let sealer = Sealer::new(&[("bench".into(), Sealer::generate_key())])?;
    let settings = WebSettings { public_requests_per_minute: 0, ..WebSettings::default() };
    let state = AppState::new(service, sealer, Arc::new(crate::clock::now), settings).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(shiyu_web::serve(listener, state, std::future::pending()));

    let reports = load(address, options.report_connections, options.reports, None, None, |n| {
        let body = format!(
            r#"{{"description":"基准测试第{n}号：桃坞路人行道有摊贩占道经营","jurisdiction":"320613001001001","phone":"13812345678"}}"#
        );
        ("POST", "/api/public/reports".to_string(), Some(body), Some(format!("bench-{n}")), 201)
    })
    .await?;
    let cases = store.count_cases().await?;
    ensure!(cases == options.reports, "every acknowledged report is stored ({cases} of {})", options.reports);

    let mut signing_in = HttpClient::new(address);
    let (status, _) = signing_in.sign_in("operator", PASSWORD).await?;
    ensure!(status == 200, "the benchmark operator signs in");
    let session = (signing_in.cookie.clone(), signing_in.csrf_token.clone());
    let read = move |n: u64| {
        // Spread reads over all cases, newest and oldest alike.
        let id = 1 + (n.wrapping_mul(2_654_435_761) % cases.max(1));
        ("GET", format!("/api/cases/{id}"), None, None, 200)
    };
    let reads =
        load(address, options.read_connections, options.reads, Some(session.clone()), None, read).await?;
    let rate = options.read_rate.max(1);
    let paced_total = rate * options.paced_seconds.max(1);
    let paced =
        load(address, options.read_connections, paced_total, Some(session.clone()), Some(rate as f64), read)
            .await?;
    let health = load(address, options.read_connections, options.reads, Some(session), None, |_| {
        ("GET", "/healthz".to_string(), None, None, 200)
    })
    .await?;
    server.abort();
    fresh.close().await?;

    let mut report = Report::new("http");
    report.set("backend", if options.database.is_some() { "postgres" } else { "sqlite" });
    report.set("reports", options.reports);
    report.set("report_connections", options.report_connections as u64);
    report.set("reports_per_s", reports.per_s.round());
    report.set("report_p99_ms", reports.p99_ms);
    report.set("store_reports_per_s", store_baseline.cases_per_s.round());
    report.set("reports_vs_store", ratio(reports.per_s, store_baseline.cases_per_s));
    report.set("reads", options.reads);
    report.set("read_connections", options.read_connections as u64);
    report.set("reads_per_s", reads.per_s.round());
    report.set("read_p99_ms_saturated", reads.p99_ms);
    report.set("read_rate_per_s", rate);
    report.set("read_rate_achieved_per_s", paced.per_s.round());
    report.set("read_p99_ms", paced.p99_ms);
    report.set("healthz_per_s", health.per_s.round());
    report.set("healthz_p99_ms", health.p99_ms);
    report.set("reads_vs_healthz", ratio(reads.per_s, health.per_s));
    Ok(report)
}

type Request = (&'static str, String, Option<String>, Option<String>, u16);

/// `connections` keep-alive clients share `total` requests made by `make(n)`; each checks its status.
/// Unpaced, every client sends its next request as soon as the last is answered: the most the server
/// manages, and the latency of a saturated server, which is all queueing. Paced at `per_s`, request `n` is
/// due `n / per_s` seconds after the start and goes out on the next free connection; its latency counts
/// from when it was due, so a server that falls behind is charged for the wait (no coordinated omission).
async fn load(
    address: SocketAddr,
    connections: usize,
    total: u64,
    session: Option<(Option<String>, Option<String>)>,
    pace: Option<f64>,
    make: impl Fn(u64) -> Request + Send + Sync + Copy + 'static,
) -> anyhow::Result<Load> {
    let next = Arc::new(AtomicU64::new(0));
    let start = Arc::new(std::sync::OnceLock::<Instant>::new());
    // Every connection is open and has been answered once before the clock starts: the figures are the
    // steady state of kept-alive clients, not the cost of 256 simultaneous TCP handshakes.
    let ready = Arc::new(tokio::sync::Barrier::new(connections.max(1) + 1));
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        let next = next.clone();
        let session = session.clone();
        let ready = ready.clone();
        let start = start.clone();
        clients.push(tokio::spawn(async move {
            let mut client = HttpClient::new(address);
            if let Some((cookie, csrf)) = session {
                client.cookie = cookie;
                client.csrf_token = csrf;
            }
            let warm_up = client.request("GET", "/healthz", &[], None).await;
            ready.wait().await;
            ensure!(warm_up?.status == 200, "the server answers /healthz");
            let started = *start.get_or_init(Instant::now);
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<Vec<Duration>, anyhow::Error>(latencies);
                }
                let due = pace.map(|per_s| started + Duration::from_secs_f64(n as f64 / per_s));
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                let (method, path, body, key, expected) = make(n);
                let mut headers = vec![("Content-Type", "application/json")];
                if let Some(key) = key.as_deref() {
                    headers.push(("Idempotency-Key", key));
                }
                let sent = due.unwrap_or_else(Instant::now);
                let response =
                    client.request(method, &path, &headers, body.as_deref().map(str::as_bytes)).await?;
                latencies.push(sent.elapsed());
                ensure!(
                    response.status == expected,
                    "{method} {path}: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                );
            }
        }));
    }
    ready.wait().await;
    let started = *start.get_or_init(Instant::now);
    let mut latencies = Vec::with_capacity(total as usize);
    for client in clients {
        latencies.extend(client.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Load { per_s: total as f64 / elapsed.as_secs_f64(), p99_ms: percentile_ms(&latencies, 990) })
}
