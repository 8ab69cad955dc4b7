//! `shiyu bench simulate`: simulated histories of the demo city written through the store's bulk path, and
//! as the baseline the same kind of histories written one step at a time through the group committer (the
//! path every live action takes), in the same run. Memory is read at a tenth of the cases and at the end:
//! the bulk path holds a few chunks, so the two stay close however many cases are written.

use super::{peak_rss_mb, ratio, FreshStore, Report};
use crate::demo::{install_city, DeploymentPrivacy};
use shiyu_domain::{apply, CaseId, CaseState, Event, Rules};
use shiyu_sim::history::{Privacy, SimulateOptions, Simulation};
use shiyu_sim::simulate::Progress;
use shiyu_store::{Journal, Store, WriteOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct SimulateBenchOptions {
    pub cases: u64,
    pub baseline_cases: u64,
    pub days: u32,
    pub database: Option<String>,
    pub dir: PathBuf,
}

pub async fn run(options: &SimulateBenchOptions) -> anyhow::Result<Report> {
    let privacy: Arc<dyn Privacy> = Arc::new(DeploymentPrivacy(shiyu_auth::Sealer::new(&[(
        "bench".into(),
        shiyu_auth::Sealer::generate_key(),
    )])?));
    // As `shiyu simulate` opens it: nothing else has the new file open.
    let write = WriteOptions { journal: Journal::RollbackWhenAlone, ..WriteOptions::default() };
    let fresh = FreshStore::open(options.database.as_deref(), &options.dir, "simulate", write).await?;
    let store = fresh.store.clone();
    install_city(store.as_ref()).await?;
    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), Rules::default(), 2026).await?);
    let now = crate::clock::now();

    let tenth = (options.cases / 10).max(1);
    let mut written = 0;
    let mut events = 0;
    let mut rss_at_tenth = 0.0;
    let started = Instant::now();
    // Time spent building deferred indexes, apart from the loads themselves.
    let mut indexing = std::time::Duration::ZERO;
    for (n, cases) in [tenth, options.cases.saturating_sub(tenth)].into_iter().enumerate() {
        let run = SimulateOptions {
            cases,
            days: options.days,
            seed: 1 + n as u64,
            until: now,
            first_id: written as i64 + 1,
        };
        let mut indexing_since = None;
        let (tally, _) =
            shiyu_sim::simulate::simulate(store.clone(), world.clone(), privacy.clone(), run, |step| {
                if let Progress::Indexed { built, of } = step {
                    let since = *indexing_since.get_or_insert_with(Instant::now);
                    if built == of {
                        indexing += since.elapsed();
                    }
                }
            })
            .await?;
        written += tally.cases;
        events += tally.events;
        if n == 0 {
            rss_at_tenth = peak_rss_mb();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let peak = peak_rss_mb();
    anyhow::ensure!(store.count_cases().await? == written, "every simulated case is stored");
    let journal = match store.journal() {
        Some(Journal::RollbackWhenAlone) => "rollback",
        Some(Journal::Wal) => "wal",
        None => "none",
    };
    drop(store);
    fresh.close().await?;

    let generated = generate_only(&world, privacy.as_ref(), options.days, now)?;
    let baseline = step_by_step(options, &world, privacy.as_ref(), now).await?;
    let cases_per_s = written as f64 / elapsed;
    let mut report = Report::new("simulate");
    report.set("backend", if options.database.is_some() { "postgres" } else { "sqlite" });
    report.set("journal", journal);
    report.set("cases", written);
    report.set("events", events);
    report.set("days", u64::from(options.days));
    report.set("cases_per_s", cases_per_s.round());
    report.set(
        "load_phase_cases_per_s",
        (written as f64 / (elapsed - indexing.as_secs_f64()).max(1e-3)).round(),
    );
    report.set("index_build_s", (indexing.as_secs_f64() * 10.0).round() / 10.0);
    report.set("events_per_s", (events as f64 / elapsed).round());
    report.set("peak_rss_mb", peak);
    report.set("peak_rss_mb_at_tenth", rss_at_tenth);
    report.set("generate_only_cases_per_s", generated.round());
    report.set("baseline_cases", options.baseline_cases);
    report.set("step_by_step_cases_per_s", baseline.round());
    report.set("ratio_vs_step_by_step", ratio(cases_per_s, baseline));
    Ok(report)
}

/// Making and serialising histories without writing them: the share of the time that is the simulator's own.
fn generate_only(
    world: &shiyu_sim::history::World,
    privacy: &dyn Privacy,
    days: u32,
    now: shiyu_domain::Timestamp,
) -> anyhow::Result<f64> {
    let cases = 100_000;
    let run = SimulateOptions { cases, days, seed: 7, until: now, first_id: 1 };
    let mut simulation = Simulation::new(world, privacy, run);
    let started = Instant::now();
    while !shiyu_sim::simulate::next_bulk(&mut simulation, shiyu_sim::simulate::CHUNK_CASES)?.is_empty() {}
    Ok(cases as f64 / started.elapsed().as_secs_f64())
}

/// The baseline: each event of each history appended on its own through the group committer, 64 cases at a
/// time, as the server writes live actions.
async fn step_by_step(
    options: &SimulateBenchOptions,
    world: &shiyu_sim::history::World,
    privacy: &dyn Privacy,
    now: shiyu_domain::Timestamp,
) -> anyhow::Result<f64> {
    let fresh = FreshStore::open(
        options.database.as_deref(),
        &options.dir,
        "simulate_steps",
        WriteOptions::default(),
    )
    .await?;
    let store = fresh.store.clone();
    install_city(store.as_ref()).await?;
    let run = SimulateOptions {
        cases: options.baseline_cases,
        days: options.days,
        seed: 99,
        until: now,
        first_id: 1,
    };
    let mut simulation = Simulation::new(world, privacy, run);
    let mut histories = Vec::new();
    loop {
        let chunk = simulation.next_chunk(5_000)?;
        if chunk.is_empty() {
            break;
        }
        histories.extend(chunk.into_iter().map(|(_, _, events)| events));
    }
    let queue = Arc::new(std::sync::Mutex::new(histories));
    let started = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..64 {
        let (store, queue) = (store.clone(), queue.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("queue poisoned"))?.pop();
                let Some(events) = next else { return anyhow::Ok(()) };
                write_one_by_one(store.as_ref(), events).await?;
            }
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(store);
    fresh.close().await?;
    Ok(options.baseline_cases as f64 / elapsed)
}

async fn write_one_by_one(store: &dyn Store, events: Vec<Event>) -> anyhow::Result<()> {
    let mut state: Option<CaseState> = None;
    let mut id = CaseId(0);
    for event in events {
        let next = apply(state.take(), &event)?;
        if next.version == 1 {
            id = store.create_case(None, vec![event], &next, next.received_at).await?.id;
        } else {
            store.append(id, next.version - 1, vec![event], &next).await?;
        }
        state = Some(next);
    }
    Ok(())
}
