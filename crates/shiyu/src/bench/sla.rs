//! `shiyu bench sla`: the deadline engine (`shiyu_sla::Deadlines`) over N open cases, on the real clock.
//!
//! 1. N open cases of the demo city, each just received with a four-hour natural-time limit, written through
//!    the bulk path. Most have their alarm an hour or more away; the last few tens of thousands are placed so
//!    that their alarms (half turning yellow, half, already warned, going red) fall due one after the other
//!    at a steady rate over a window that starts shortly after the load.
//! 2. `rebuild_s`: the time `Deadlines::start` takes to load every open case's next alarm.
//! 3. The engine runs (`Deadlines::run`, polling every 200 ms) through the window. A tailer reads the log
//!    every 20 ms and notes when each `warned`/`overdue` event became visible: its lateness is that moment
//!    minus the alarm's due time, which the benchmark knows from the case it generated.
//! 4. `idle_cpu_pct`: with every remaining alarm an hour or more away, the process's CPU time over ten
//!    seconds of wall time while the engine keeps running.

use super::{peak_rss_mb, percentile_ms, round3, FreshStore, Report};
use crate::demo::install_city;
use crate::progress::ProgressLine;
use anyhow::Context;
use shiyu_domain::{
    apply, decide, next_alarm, Action, Actor, AlarmKind, CaseId, CaseState, Change, Channel, Command, Event,
    JurisdictionId, NewCase, Reporter, Rules, StageLimits, TimeLimit, Timestamp,
};
use shiyu_sla::Deadlines;
use shiyu_store::{AuditEntry, BulkCases, CaseService, Clock, Store, WriteOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SlaOptions {
    pub cases: u64,
    /// PostgreSQL URL; SQLite in `dir` otherwise.
    pub database: Option<String>,
    /// Where SQLite files go: on the disk being measured, not on a RAM-backed /tmp.
    pub dir: PathBuf,
}

/// Every case's register-stage limit, in natural minutes: yellow after 192 minutes, red after 240.
const LIMIT_MINUTES: u32 = 4 * 60;
/// Alarms falling due per second during the window.
const ALARMS_PER_S: u64 = 1_500;
/// How long alarms keep falling due.
const WINDOW: Duration = Duration::from_secs(25);
/// How long the idle engine is watched.
const IDLE: Duration = Duration::from_secs(10);
/// The engine's longest sleep, as the server runs it.
const POLL: Duration = Duration::from_millis(200);
/// How often the benchmark's tailer reads the log: the resolution of the lateness figures.
const TAIL_EVERY: Duration = Duration::from_millis(20);
/// Cases per bulk write, as the simulator writes them.
const CHUNK: usize = 5_000;
/// Alarms not seen this long after the window ends are counted as missed.
const STRAGGLERS: Duration = Duration::from_secs(15);

const MINUTE_MS: i64 = 60_000;

/// Where a benchmark case is reported: one of the demo city's places.
#[derive(Clone, Debug)]
struct Spot {
    path: Vec<JurisdictionId>,
    owner: JurisdictionId,
    name: String,
}

/// The rules of the benchmark's cases: the server's, with a natural-time limit for registering a report whose
/// matter is not known, so that deadlines fall at any hour of any day.
fn rules() -> Rules {
    let intake_limits = StageLimits {
        register: TimeLimit { minutes: LIMIT_MINUTES, basis: shiyu_domain::Basis::Natural },
        ..StageLimits::default()
    };
    Rules { intake_limits, ..Rules::default() }
}

/// A case received at `received`; with `warned`, its yellow alarm has fired at the moment it was due, so its
/// next alarm is red.
fn make_case(
    id: i64,
    spot: &Spot,
    received: Timestamp,
    warned: bool,
    rules: &Rules,
) -> anyhow::Result<(CaseId, CaseState, Vec<Event>)> {
    let receive = Command::new(Action::Receive(NewCase {
        channel: Channel::Sensor,
        description: format!("{}附近井盖缺失（基准测试第{id}号）", spot.name),
        address: Some(spot.name.clone()),
        location: None,
        path: spot.path.clone(),
        owner: spot.owner,
        reporter: Reporter::default(),
        matter: None,
        priority: None,
    }));
    let mut events = decide(None, &receive, &Actor::System, received, rules)?;
    let mut state = apply(None, &events[0])?;
    if warned {
        let alarm = next_alarm(&state).context("a received case has a yellow alarm")?;
        anyhow::ensure!(alarm.kind == AlarmKind::Yellow, "case {id}: the first alarm is yellow");
        for event in shiyu_domain::sla::fire(&state, alarm, alarm.at, rules)? {
            state = apply(Some(state), &event)?;
            events.push(event);
        }
    }
    Ok((CaseId(id), state, events))
}

/// Makes cases `first..first + count` on a blocking thread, a chunk ahead of the store, and bulk-loads them.
async fn load(
    store: &Arc<dyn Store>,
    first: i64,
    count: u64,
    what: &'static str,
    make: impl FnMut(i64) -> anyhow::Result<(CaseId, CaseState, Vec<Event>)> + Send + 'static,
) -> anyhow::Result<()> {
    let (chunks, mut incoming) = tokio::sync::mpsc::channel::<anyhow::Result<BulkCases>>(2);
    let end = first + count as i64;
    let maker = tokio::task::spawn_blocking(move || {
        let mut make = make;
        let mut next = first;
        while next < end {
            let upto = (next + CHUNK as i64).min(end);
            let made = (next..upto)
                .map(&mut make)
                .collect::<anyhow::Result<Vec<_>>>()
                .and_then(|cases| Ok(BulkCases::prepare(&cases)?));
            let failed = made.is_err();
            if chunks.blocking_send(made).is_err() || failed {
                return;
            }
            next = upto;
        }
    });
    let started = Instant::now();
    let mut progress = ProgressLine::default();
    let mut done = 0;
    while let Some(chunk) = incoming.recv().await {
        let bulk = chunk?;
        let written = bulk.len();
        let audit = AuditEntry {
            at: crate::clock::now(),
            user: None,
            actor: "system".into(),
            action: "bulk_load".into(),
            target: Some(format!("cases:{written}")),
            address: None,
            detail: Some("shiyu bench sla".into()),
        };
        store.bulk_load(bulk, audit).await?;
        done += written;
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.show(what, done, count as usize, &format!("{rate:.0} cases/s"));
    }
    maker.await.context("the case maker stopped")?;
    anyhow::ensure!(done as u64 == count, "{what}: {done} of {count} cases written");
    Ok(())
}

/// This process's CPU time so far (user and system, every thread), from /proc/self/stat.
fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    cpu_time_of(&stat).context("parsing /proc/self/stat")
}

fn cpu_time_of(stat: &str) -> Option<Duration> {
    // The command name may hold spaces and parentheses; the fields after its closing one are fixed: state is
    // field 3, utime 14 and stime 15, in clock ticks (100 a second on Linux).
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A deadline event as the benchmark's tailer saw it.
#[derive(Clone, Copy, Debug)]
struct Seen {
    case: i64,
    /// The moment the engine fired it (the event's `at`).
    fired_at: i64,
    /// When the tailer first read it from the log.
    visible_at: i64,
}

/// Reads the log every `TAIL_EVERY` after `after` until `stop`, noting each `warned`/`overdue` event the
/// engine appended and when it became visible.
async fn tail(store: Arc<dyn Store>, mut after: i64, stop: Arc<AtomicBool>) -> anyhow::Result<Vec<Seen>> {
    let mut seen = Vec::new();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        loop {
            let events = store.events_since(after, 5_000).await?;
            let now = crate::clock::now();
            for stored in &events {
                let deadline_event =
                    matches!(stored.event.change, Change::Warned { .. } | Change::Overdue { .. });
                if deadline_event && stored.event.origin.as_deref() == Some("sla") {
                    seen.push(Seen {
                        case: stored.case_id.0,
                        fired_at: stored.event.at.0,
                        visible_at: now.0,
                    });
                }
            }
            match events.last() {
                Some(last) if events.len() == 5_000 => after = last.seq,
                Some(last) => {
                    after = last.seq;
                    break;
                }
                None => break,
            }
        }
        if stopping {
            return Ok(seen);
        }
        tokio::time::sleep(TAIL_EVERY).await;
    }
}

/// How many events the engine appended after `after`.
async fn deadline_events_since(store: &dyn Store, mut after: i64) -> anyhow::Result<u64> {
    let mut count = 0;
    loop {
        let events = store.events_since(after, 5_000).await?;
        let Some(last) = events.last() else { return Ok(count) };
        after = last.seq;
        count += events.iter().filter(|e| e.event.origin.as_deref() == Some("sla")).count() as u64;
    }
}

fn latencies_ms(mut lateness: Vec<Duration>) -> (f64, f64, f64) {
    lateness.sort();
    let max = lateness.last().map_or(0.0, |d| round3(d.as_secs_f64() * 1000.0));
    (percentile_ms(&lateness, 500), percentile_ms(&lateness, 990), max)
}

pub async fn run(options: &SlaOptions) -> anyhow::Result<Report> {
    let fresh =
        FreshStore::open(options.database.as_deref(), &options.dir, "sla", WriteOptions::default()).await?;
    let store = fresh.store.clone();
    install_city(store.as_ref()).await?;
    let rules = Arc::new(rules());
    let world = shiyu_sim::simulate::load_world(store.as_ref(), rules.as_ref().clone(), 2026).await?;
    let spots: Arc<Vec<Spot>> = Arc::new(
        world
            .places()
            .iter()
            .map(|p| Spot {
                path: p.path.clone(),
                owner: p.center,
                name: format!("{}{}{}", p.county, p.township, p.community),
            })
            .collect(),
    );
    drop(world);
    anyhow::ensure!(!spots.is_empty(), "the demo city has no places");

    // Cases whose alarms fall due in the window, and the rest, whose alarms are an hour or more away.
    let window_ms = WINDOW.as_millis() as i64;
    let due_in_window = (ALARMS_PER_S * WINDOW.as_secs()).min(options.cases / 2).max(1);
    let far = options.cases.saturating_sub(due_in_window);
    let limit_ms = i64::from(LIMIT_MINUTES) * MINUTE_MS;
    let generated_at = crate::clock::now();
    let started = Instant::now();
    {
        let (spots, rules) = (spots.clone(), rules.clone());
        load(&store, 1, far, "cases, alarms later", move |id| {
            // Received over the last two hours: yellow between 72 and 192 minutes from now.
            let ago = (id * 7_919) % (2 * 60 * MINUTE_MS);
            let spot = &spots[id as usize % spots.len()];
            make_case(id, spot, Timestamp(generated_at.0 - ago), false, &rules)
        })
        .await?;
    }
    let far_rate = far as f64 / started.elapsed().as_secs_f64().max(1e-3);

    // The window opens once the rest is loaded and the engine rebuilt, whatever the disk's speed: twice the
    // time these cases should take at the rate just measured, plus room for the rebuild.
    let rebuild_room = Duration::from_secs_f64(5.0 + options.cases as f64 * 5e-6);
    let load_room = Duration::from_secs_f64(2.0 * due_in_window as f64 / far_rate.max(1_000.0));
    let opens = Timestamp(
        crate::clock::now().0 + (load_room + rebuild_room + Duration::from_secs(5)).as_millis() as i64,
    );
    let first_window_id = far as i64 + 1;
    let due_of = move |id: i64| {
        let n = id - first_window_id;
        Timestamp(opens.0 + n * window_ms / due_in_window as i64)
    };
    {
        let (spots, rules) = (spots.clone(), rules.clone());
        load(&store, first_window_id, due_in_window, "cases, alarms soon", move |id| {
            // Even ones turn yellow in the window, odd ones (warned when they turned yellow) go red.
            let warned = id % 2 == 1;
            let due = due_of(id);
            let received = Timestamp(due.0 - if warned { limit_ms } else { limit_ms * 4 / 5 });
            let case = make_case(id, &spots[id as usize % spots.len()], received, warned, &rules)?;
            let alarm = next_alarm(&case.1).context("a window case has an alarm")?;
            anyhow::ensure!(alarm.at == due, "case {id}: alarm at {} instead of {}", alarm.at.0, due.0);
            Ok(case)
        })
        .await?;
    }
    let load_s = started.elapsed().as_secs_f64();

    // The rebuild, as the server does it at start-up, on the real clock.
    let clock: Clock = Arc::new(crate::clock::now);
    let service = CaseService::new(store.clone(), rules.clone());
    let rebuilding = Instant::now();
    let engine = Deadlines::start(service, clock).await?;
    let rebuild_s = rebuilding.elapsed().as_secs_f64();
    let armed = engine.armed().await;

    // The window: the engine runs while alarms fall due, the tailer watches the log.
    let from_seq = store.last_seq().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let tailer = tokio::spawn(tail(store.clone(), from_seq, stop.clone()));
    let lead_ms = opens.0 - crate::clock::now().0;
    let running = tokio::spawn(engine.clone().run(POLL));
    let closes = opens.0 + window_ms;
    let wait_ms = |until: i64| Duration::from_millis((until - crate::clock::now().0).max(0) as u64);
    tokio::time::sleep(wait_ms(closes + 1_000)).await;
    // Stragglers: wait until every window alarm has fired, or give up after a while.
    let give_up = closes + STRAGGLERS.as_millis() as i64;
    while deadline_events_since(store.as_ref(), from_seq).await? < due_in_window
        && crate::clock::now().0 < give_up
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = tailer.await.context("the log tailer stopped")??;

    // Idle: every remaining alarm is an hour or more away; the engine keeps running.
    let idle_seq = store.last_seq().await?;
    let next_due_s = engine.next_due().await.map(|at| round3((at.0 - crate::clock::now().0) as f64 / 1000.0));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (cpu_before, wall) = (cpu_time()?, Instant::now());
    tokio::time::sleep(IDLE).await;
    let (cpu_used, wall_used) = (cpu_time()?.saturating_sub(cpu_before), wall.elapsed());
    let idle_cpu_pct = round3(100.0 * cpu_used.as_secs_f64() / wall_used.as_secs_f64());
    let fired_while_idle = store.last_seq().await? - idle_seq;
    let armed_idle = engine.armed().await;
    running.abort();
    let _ = running.await;
    drop(engine);

    // Lateness of each window alarm: seen in the log (and fired) minus due.
    let mut fired = 0u64;
    let mut unexpected = 0u64;
    let (mut visible, mut fired_late) = (Vec::new(), Vec::new());
    let mut by_case: HashMap<i64, u32> = HashMap::new();
    for event in &seen {
        if event.case < first_window_id {
            unexpected += 1;
            continue;
        }
        fired += 1;
        *by_case.entry(event.case).or_default() += 1;
        let due = due_of(event.case).0;
        visible.push(Duration::from_millis((event.visible_at - due).max(0) as u64));
        fired_late.push(Duration::from_millis((event.fired_at - due).max(0) as u64));
    }
    let twice = by_case.values().filter(|n| **n > 1).count() as u64;
    let (p50, p99, max) = latencies_ms(visible);
    let (fired_p50, fired_p99, _) = latencies_ms(fired_late);
    let peak = peak_rss_mb();
    drop(store);
    fresh.close().await?;

    let mut report = Report::new("sla");
    report.set("backend", if options.database.is_some() { "postgres" } else { "sqlite" });
    report.set("cases", options.cases);
    report.set("load_cases_per_s", (options.cases as f64 / load_s).round());
    report.set("armed", armed as u64);
    report.set("rebuild_s", round3(rebuild_s));
    report.set("alarms_per_s", ALARMS_PER_S.min(due_in_window / WINDOW.as_secs().max(1)));
    report.set("window_s", WINDOW.as_secs());
    report.set("engine_ready_before_window_s", round3(lead_ms as f64 / 1000.0));
    report.set("due_in_window", due_in_window);
    report.set("fired", fired);
    report.set("missed", due_in_window.saturating_sub(by_case.len() as u64));
    report.set("fired_twice", twice);
    report.set("fired_outside_window", unexpected);
    report.set("lateness_p50_ms", p50);
    report.set("lateness_p99_ms", p99);
    report.set("lateness_max_ms", max);
    report.set("fired_at_lateness_p50_ms", fired_p50);
    report.set("fired_at_lateness_p99_ms", fired_p99);
    report.set("idle_s", round3(wall_used.as_secs_f64()));
    report.set("idle_next_due_s", next_due_s);
    report.set("idle_cpu_pct", idle_cpu_pct);
    report.set("fired_while_idle", fired_while_idle);
    report.set("armed_idle", armed_idle as u64);
    report.set("peak_rss_mb", peak);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spot() -> Spot {
        Spot {
            path: vec![JurisdictionId(1), JurisdictionId(2)],
            owner: JurisdictionId(2),
            name: "某街道".into(),
        }
    }

    #[test]
    fn window_cases_fall_due_when_planned() {
        let rules = rules();
        let received = Timestamp(1_800_000_000_000);
        let (_, fresh, first) = make_case(1, &spot(), received, false, &rules).unwrap();
        assert_eq!(first.len(), 1);
        let alarm = next_alarm(&fresh).unwrap();
        assert_eq!((alarm.kind, alarm.at.0), (AlarmKind::Yellow, received.0 + 192 * MINUTE_MS));

        let (_, warned, events) = make_case(2, &spot(), received, true, &rules).unwrap();
        assert_eq!(events.len(), 2);
        let alarm = next_alarm(&warned).unwrap();
        assert_eq!((alarm.kind, alarm.at.0), (AlarmKind::Red, received.0 + 240 * MINUTE_MS));
        assert_eq!(
            BulkCases::prepare(&[(CaseId(1), fresh, first), (CaseId(2), warned, events)]).unwrap().len(),
            2
        );
    }

    #[test]
    fn cpu_time_reads_user_and_system_ticks() {
        let stat = "1234 (shiyu (bench)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0 100";
        assert_eq!(cpu_time_of(stat), Some(Duration::from_millis(3_000)));
        assert!(cpu_time().is_ok());
    }
}
