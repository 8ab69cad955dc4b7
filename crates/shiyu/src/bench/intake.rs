//! `shiyu bench intake`: N concurrent writers creating cases through the store, with group commit and with
//! one transaction per case, on the same backend in the same run.

use super::{percentile_ms, ratio, round3, Report};
use anyhow::Context;
use shiyu_domain::{Actor, Rules};
use shiyu_store::testing::SampleWorld;
use shiyu_store::{CaseService, CommitMode, WriteOptions};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct IntakeOptions {
    pub writers: usize,
    pub cases: u64,
    /// Cases for the one-transaction-per-case baseline (slower, so fewer by default).
    pub baseline_cases: u64,
    /// PostgreSQL URL; SQLite in `dir` otherwise.
    pub database: Option<String>,
    /// Where SQLite files go: on the disk being measured, not on a RAM-backed /tmp.
    pub dir: PathBuf,
}

pub(super) struct Run {
    pub(super) cases_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    transactions: u64,
    largest_batch: u64,
}

pub async fn run(options: &IntakeOptions) -> anyhow::Result<Report> {
    let group = measure(options, CommitMode::Group, options.cases).await?;
    let per_tx = measure(options, CommitMode::PerTransaction, options.baseline_cases).await?;
    let mut report = Report::new("intake");
    report.set("backend", if options.database.is_some() { "postgres" } else { "sqlite" });
    report.set("writers", options.writers as u64);
    report.set("cases", options.cases);
    report.set("baseline_cases", options.baseline_cases);
    report.set("group_commit_cases_per_s", group.cases_per_s.round());
    report.set("per_tx_cases_per_s", per_tx.cases_per_s.round());
    report.set("ratio", ratio(group.cases_per_s, per_tx.cases_per_s));
    report.set("p50_ack_ms", group.p50_ms);
    report.set("p99_ack_ms", group.p99_ms);
    report.set("per_tx_p99_ack_ms", per_tx.p99_ms);
    report.set("group_commit_transactions", group.transactions);
    report.set("average_batch", round3(options.cases as f64 / group.transactions.max(1) as f64));
    report.set("largest_batch", group.largest_batch);
    Ok(report)
}

pub(super) async fn measure(options: &IntakeOptions, mode: CommitMode, cases: u64) -> anyhow::Result<Run> {
    let write = WriteOptions { mode, ..WriteOptions::default() };
    let label = match mode {
        CommitMode::Group => "group",
        CommitMode::PerTransaction => "per_tx",
    };
    let fresh = super::FreshStore::open(options.database.as_deref(), &options.dir, label, write).await?;
    let store = fresh.store.clone();
    let world = SampleWorld::new();
    world.install(store.as_ref()).await?;
    let citizen = world.actor("citizen").context("sample citizen")?;
    let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
    let now = crate::clock::now();

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..options.writers {
        let (service, world, next) = (service.clone(), world.clone(), next.clone());
        writers.push(tokio::spawn(write_cases(service, world, citizen, next, cases, now)));
    }
    let mut latencies = Vec::with_capacity(cases as usize);
    for writer in writers {
        latencies.extend(writer.await??);
    }
    let elapsed = started.elapsed();
    let stats = store.commit_stats();
    anyhow::ensure!(store.count_cases().await? == cases, "every acknowledged case is stored");
    drop(service);
    drop(store);
    fresh.close().await?;
    latencies.sort();
    Ok(Run {
        cases_per_s: cases as f64 / elapsed.as_secs_f64(),
        p50_ms: percentile_ms(&latencies, 500),
        p99_ms: percentile_ms(&latencies, 990),
        transactions: stats.transactions,
        largest_batch: stats.largest_batch,
    })
}

async fn write_cases(
    service: CaseService,
    world: SampleWorld,
    citizen: Actor,
    next: Arc<AtomicU64>,
    total: u64,
    now: shiyu_domain::Timestamp,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= total {
            return Ok(latencies);
        }
        let report = world.report(&format!("基准测试反映第{n}号：桃坞路人行道有摊贩占道经营"));
        let key = Some(format!("bench-{n}"));
        let started = Instant::now();
        service.receive(key, &report, &citizen, now).await?;
        latencies.push(started.elapsed());
    }
}
