//! The simulator's histories: valid through the domain, in realistic proportions, with the injected
//! anomalies where the ground truth says, and written intact through the store's bulk path.

#![allow(clippy::unwrap_used)]

use shiyu_domain::{replay, CaseId, CaseState, Change, Channel, Event, Rules, Status, Timestamp};
use shiyu_sim::city::City;
use shiyu_sim::history::{CityData, Privacy, SimulateOptions, Simulation, World};
use shiyu_sim::simulate::Progress;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Seals by tagging (tests need no key) and numbers tracking codes so they stay unique.
#[derive(Default)]
struct TestPrivacy(AtomicU64);

impl Privacy for TestPrivacy {
    fn seal(&self, plain: &str) -> Option<String> {
        Some(format!("sealed:{plain}"))
    }

    fn tracking_code(&self, _at: Timestamp) -> String {
        format!("T{:011}", self.0.fetch_add(1, Ordering::Relaxed))
    }
}

/// 南通 with one grid per community (no outlines: the map has its own tests and takes seconds to draw).
fn city() -> City {
    shiyu_sim::city::nantong_with_a_grid_per_community().unwrap()
}

fn world(city: &City) -> World {
    World::new(Rules::default(), CityData::of(city), shiyu_sim::simulate::URBAN_COUNTIES, 7).unwrap()
}

fn until() -> Timestamp {
    Timestamp::from_beijing(shiyu_domain::Date::from_ymd(2026, 11, 20).unwrap(), 17 * 60)
}

fn all_cases(
    world: &World,
    cases: u64,
    seed: u64,
) -> (Vec<(CaseId, CaseState, Vec<Event>)>, shiyu_sim::history::Truth) {
    let privacy = TestPrivacy::default();
    let options = SimulateOptions { cases, days: 60, seed, until: until(), first_id: 1 };
    let mut simulation = Simulation::new(world, &privacy, options);
    let mut all = Vec::new();
    loop {
        let chunk = simulation.next_chunk(5_000).unwrap();
        if chunk.is_empty() {
            break;
        }
        all.extend(chunk);
    }
    (all, simulation.truth().clone())
}

#[test]
fn a_hundred_thousand_cases_replay_through_the_domain_in_realistic_proportions() {
    let city = city();
    let world = world(&city);
    let (cases, truth) = all_cases(&world, 100_000, 42);
    assert_eq!(cases.len(), 100_000);
    let mut statuses: HashMap<Status, u64> = HashMap::new();
    let mut channels: HashMap<Channel, u64> = HashMap::new();
    let mut kinds: HashMap<&'static str, u64> = HashMap::new();
    let mut descriptions = HashSet::new();
    let mut late = 0;
    let mut hours = [0u64; 24];
    let mut previous_received = Timestamp(i64::MIN);
    for (n, (id, state, events)) in cases.iter().enumerate() {
        assert_eq!(id.0, n as i64 + 1, "ids follow each other");
        let replayed = replay(events.iter()).unwrap().unwrap();
        assert_eq!(&replayed, state, "case {} replays to its state", id.0);
        state.check_invariants().unwrap();
        assert!(events.iter().all(|e| e.at <= until()), "nothing happens after the end");
        assert!(state.received_at >= previous_received, "cases arrive in id order");
        previous_received = state.received_at;
        *statuses.entry(state.status).or_default() += 1;
        *channels.entry(state.channel).or_default() += 1;
        for event in events {
            *kinds.entry(event.change.kind()).or_default() += 1;
        }
        // A stage finished after its deadline: the simulator's overdue share.
        for pair in events.windows(2) {
            let deadline =
                replay(events.iter().take_while(|e| e.at <= pair[0].at)).unwrap().and_then(|s| s.deadline);
            if n % 50 == 0 && deadline.is_some_and(|d| pair[1].at > d.due) {
                late += 1;
            }
        }
        descriptions.insert(state.description.clone());
        hours[(state.received_at.to_beijing().1 / 60) as usize] += 1;
    }
    let share = |count: u64| count as f64 / 100_000.0;
    for status in [
        Status::Received,
        Status::Registered,
        Status::Dispatched,
        Status::Handling,
        Status::Handled,
        Status::Closed,
        Status::Rejected,
        Status::Merged,
    ] {
        assert!(statuses.get(&status).copied().unwrap_or(0) > 0, "no {status:?} case: {statuses:?}");
    }
    let closed = share(statuses[&Status::Closed]);
    assert!((0.6..0.97).contains(&closed), "closed share {closed}: {statuses:?}");
    for channel in
        [Channel::Hotline, Channel::App, Channel::MiniProgram, Channel::GridPatrol, Channel::Sensor]
    {
        assert!(share(channels.get(&channel).copied().unwrap_or(0)) > 0.02, "{channel:?}: {channels:?}");
    }
    assert!(share(channels[&Channel::Hotline]) > 0.3, "the hotline brings most reports: {channels:?}");
    for kind in [
        "returned",
        "verification_failed",
        "extension_requested",
        "extension_approved",
        "extension_denied",
        "escalated",
        "supervised",
        "merged",
        "rejected",
        "resolved_on_spot",
        "reopened",
        "suspended",
        "resumed",
    ] {
        let count = kinds.get(kind).copied().unwrap_or(0);
        assert!(count > 50 && share(count) < 0.2, "{kind}: {count} of 100,000 ({kinds:?})");
    }
    // Every stopped clock is started again, unless the simulated time ends first.
    let still_stopped = cases.iter().filter(|(_, state, _)| state.suspension.is_some()).count() as u64;
    assert_eq!(kinds["suspended"] - kinds["resumed"], still_stopped);
    assert!(
        still_stopped * 5 < kinds["suspended"],
        "{still_stopped} of {} still stopped",
        kinds["suspended"]
    );
    let rated = share(kinds["rated"]);
    assert!((0.3..0.8).contains(&rated), "most closed cases are rated: {rated}");
    assert!(late > 0, "some stages run late");
    assert!(descriptions.len() > 60_000, "descriptions vary: {} distinct", descriptions.len());
    assert!(hours[10] > 5 * hours[3], "mornings are busier than nights: {hours:?}");

    assert_eq!(truth.anomalies.len(), 4);
    let by_id: HashMap<i64, &CaseState> = cases.iter().map(|(id, s, _)| (id.0, s)).collect();
    for anomaly in &truth.anomalies {
        assert!(anomaly.cases.len() >= 5, "{anomaly:?}");
        for id in &anomaly.cases {
            let state = by_id[id];
            assert!(!state.description.is_empty());
            let matter_code = cases[(*id - 1) as usize].2.iter().find_map(|e| match &e.change {
                Change::Registered { matter, .. } | Change::ResolvedOnSpot { matter, .. } => {
                    Some(matter.code.clone())
                }
                _ => None,
            });
            if let Some(code) = matter_code {
                assert_eq!(code, anomaly.matter, "case {id} of {}", anomaly.kind);
            }
        }
    }
    let caller = truth.anomalies.iter().find(|a| a.kind == "repeat_caller").unwrap();
    let contacts: HashSet<_> =
        caller.cases.iter().map(|id| by_id[id].reporter.contact_sealed.clone().unwrap()).collect();
    assert_eq!(contacts.len(), 1, "one caller again and again");
    let dispute = truth.anomalies.iter().find(|a| a.kind == "escalating_dispute").unwrap();
    assert!(dispute.cases.iter().any(|id| by_id[id].counts.escalations > 0), "the dispute goes up a level");
    let gas = truth.anomalies.iter().find(|a| a.kind == "gas_leak_cluster").unwrap();
    let first = by_id[&gas.cases[0]].received_at;
    let last = by_id[gas.cases.last().unwrap()].received_at;
    assert!(first.minutes_until(last) <= 90, "the gas reports come within ninety minutes");
}

#[test]
fn the_same_seed_writes_the_same_history() {
    let city = city();
    let world = world(&city);
    let (a, truth_a) = all_cases(&world, 3_000, 9);
    let (b, truth_b) = all_cases(&world, 3_000, 9);
    assert_eq!(a.len(), 3_000);
    for ((_, sa, ea), (_, sb, eb)) in a.iter().zip(&b) {
        // Tracking codes are numbered per run here; everything else must match.
        let strip = |s: &CaseState| CaseState {
            reporter: shiyu_domain::Reporter { tracking_code: None, ..s.reporter.clone() },
            ..s.clone()
        };
        assert_eq!(strip(sa), strip(sb));
        assert_eq!(ea.len(), eb.len());
    }
    assert_eq!(truth_a.anomalies.len(), truth_b.anomalies.len());
    let (c, _) = all_cases(&world, 3_000, 10);
    assert_ne!(a[0].1.description, c[0].1.description, "another seed, another history");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_loaded_histories_read_back_exactly_and_a_second_load_must_follow_the_first() {
    use shiyu_store::sqlite::SqliteStore;
    use shiyu_store::{Store, WriteOptions};
    let city = city();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    store.put_jurisdictions(&city.jurisdictions).await.unwrap();
    store.put_departments(&city.departments).await.unwrap();
    store.put_categories(&city.categories).await.unwrap();
    store.put_matters(&city.matters).await.unwrap();
    store.put_users(&city.users).await.unwrap();
    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), Rules::default(), 3).await.unwrap());
    let options = SimulateOptions { cases: 12_000, days: 30, seed: 5, until: until(), first_id: 1 };
    let mut seen = Vec::new();
    let (tally, truth) = shiyu_sim::simulate::simulate(
        store.clone(),
        world.clone(),
        Arc::new(TestPrivacy::default()),
        options,
        |step| seen.push(step),
    )
    .await
    .unwrap();
    assert_eq!(tally.cases, 12_000);
    let seen: Vec<u64> = seen
        .into_iter()
        .map(|step| match step {
            Progress::Written(tally) => tally.cases,
            Progress::Indexed { .. } => panic!("a load this small keeps its indexes up: {step:?}"),
        })
        .collect();
    assert!(seen.len() >= 3 && seen.windows(2).all(|w| w[0] < w[1]), "progress after every chunk: {seen:?}");
    assert_eq!(store.count_cases().await.unwrap(), 12_000);
    assert_eq!(store.last_seq().await.unwrap() as u64, tally.events);
    // Every history replays from the log to the stored state.
    let mut after = 0;
    let mut histories: HashMap<CaseId, Vec<Event>> = HashMap::new();
    loop {
        let page = store.events_since(after, 10_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        for stored in page {
            histories.entry(stored.case_id).or_default().push(stored.event);
        }
    }
    assert_eq!(histories.len(), 12_000);
    for id in [1, 2, 777, 6_000, 11_999, 12_000] {
        let state = replay(histories[&CaseId(id)].iter()).unwrap().unwrap();
        assert_eq!(Some(state), store.load_case(CaseId(id)).await.unwrap());
    }
    for anomaly in &truth.anomalies {
        assert!(anomaly.cases.iter().all(|id| (1..=12_000).contains(id)));
    }
    // The bulk load is audited once per chunk, not once per event.
    let audit = store.audit_log(0, 1_000).await.unwrap();
    assert!(audit.iter().all(|r| r.entry.action == "bulk_load"), "{:?}", audit.first());
    assert_eq!(audit.len(), 3);

    // A load that does not follow the last case changes nothing.
    let stale = SimulateOptions { cases: 100, first_id: 5, ..options };
    let error = shiyu_sim::simulate::simulate(
        store.clone(),
        world.clone(),
        Arc::new(TestPrivacy::default()),
        stale,
        |_| {},
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("bulk load of cases 5–104: 100 of these ids are taken"), "{error}");
    assert_eq!(store.count_cases().await.unwrap(), 12_000);

    // Reports taken in while a load runs get ids after the reserved ones, and the load goes on.
    let first = store.reserve_case_ids(3_000, until()).await.unwrap();
    assert_eq!(first.0, 12_001);
    let service = shiyu_store::CaseService::new(store.clone(), Arc::new(shiyu_domain::Rules::default()));
    let live = {
        let place = store.load_case(shiyu_domain::CaseId(1)).await.unwrap().unwrap();
        let command = shiyu_domain::Command::new(shiyu_domain::Action::Receive(shiyu_domain::NewCase {
            channel: shiyu_domain::Channel::Hotline,
            description: "加载期间的新来电".into(),
            address: None,
            location: None,
            path: place.path.clone(),
            owner: place.owner,
            reporter: shiyu_domain::Reporter::default(),
            matter: None,
            priority: None,
        }));
        service.receive(None, &command, &shiyu_domain::Actor::System, until()).await.unwrap().id
    };
    assert_eq!(live.0, 15_001, "after the reserved ids");
    let later = SimulateOptions { cases: 3_000, first_id: first.0, seed: 6, ..options };
    // Tracking codes must not repeat the first load's.
    let privacy = Arc::new(TestPrivacy(AtomicU64::new(1_000_000)));
    shiyu_sim::simulate::simulate(store.clone(), world, privacy, later, |_| {}).await.unwrap();
    assert_eq!(store.count_cases().await.unwrap(), 15_001);
}

#[test]
fn every_phrasing_of_every_matter_is_written_out_at_real_places() {
    let city = city();
    let world = world(&city);
    let phrased = world.phrased_descriptions(3, 11);
    let mut expected = 0;
    for spec in shiyu_sim::catalog::MATTERS {
        for (phrasing, template) in spec.templates.iter().enumerate() {
            let written: Vec<_> =
                phrased.iter().filter(|p| p.matter == spec.code && p.phrasing == phrasing).collect();
            assert_eq!(written.len(), 3, "{} phrasing {phrasing}", spec.code);
            // The template's own words are all there, around a place instead of `{place}`.
            let (before, after) = template.split_once("{place}").unwrap();
            for p in written {
                assert!(p.text.starts_with(before) && p.text.ends_with(after), "{}: {}", template, p.text);
                assert!(p.text.chars().count() > template.chars().count() - "{place}".len(), "{}", p.text);
            }
            expected += 3;
        }
    }
    assert_eq!(phrased.len(), expected, "nothing but the catalog's phrasings");
    let communities: Vec<String> = city
        .jurisdictions
        .iter()
        .filter(|j| j.level == shiyu_domain::Level::Community)
        .map(|j| j.name.trim_end_matches("社区居委会").trim_end_matches("村委会").to_string())
        .collect();
    let named = phrased.iter().filter(|p| communities.iter().any(|c| p.text.contains(c.as_str()))).count();
    assert!(
        named * 10 > phrased.len() * 9,
        "descriptions name the city's communities: {named} of {}",
        phrased.len()
    );
}
