//! Every answer of the projection equals the same question asked of the store: random simulated histories
//! are bulk-loaded into SQLite, the projection is rebuilt from the log, and random group-by questions are put
//! to both — to the projection, and as SQL GROUP BY over the store's case rows. Stage timeliness, which SQL
//! cannot see without replaying deadlines, is checked against the domain's own replay of each history.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use shiyu_analytics::{Analytics, Dim, Filter, Key, Stats, Unit, Weights};
use shiyu_domain::{apply, CaseId, CaseState, Change, Event, JurisdictionId, Level, Rules, Stage, Timestamp};
use shiyu_sim::city::City;
use shiyu_sim::history::{CityData, Privacy, SimulateOptions, Simulation, World};
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::{AuditEntry, BulkCases, Store, WriteOptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

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

/// 南通 with one grid per community (enough for the simulator; the real demo synthesises ten thousand).
fn city() -> &'static (City, World) {
    static CITY: OnceLock<(City, World)> = OnceLock::new();
    CITY.get_or_init(|| {
        let city = shiyu_sim::city::nantong_with_a_grid_per_community().unwrap();
        let data = CityData::of(&city);
        let world = World::new(Rules::default(), data, shiyu_sim::simulate::URBAN_COUNTIES, 7).unwrap();
        (city, world)
    })
}

const DAYS: u32 = 30;

fn until() -> Timestamp {
    Timestamp::from_beijing(shiyu_domain::Date::from_ymd(2026, 11, 20).unwrap(), 17 * 60)
}

fn histories(cases: u64, seed: u64) -> Vec<(CaseId, CaseState, Vec<Event>)> {
    let (_, world) = city();
    let privacy = TestPrivacy::default();
    let options = SimulateOptions { cases, days: DAYS, seed, until: until(), first_id: 1 };
    let mut simulation = Simulation::new(world, &privacy, options);
    let mut all = Vec::new();
    loop {
        let chunk = simulation.next_chunk(1000).unwrap();
        if chunk.is_empty() {
            return all;
        }
        all.extend(chunk);
    }
}

async fn loaded(histories: &[(CaseId, CaseState, Vec<Event>)]) -> (tempfile::TempDir, SqliteStore) {
    let (city, _) = city();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap();
    store.put_jurisdictions(&city.jurisdictions).await.unwrap();
    let audit = AuditEntry {
        at: until(),
        user: None,
        actor: "system".into(),
        action: "simulated".into(),
        target: None,
        address: None,
        detail: None,
    };
    store.bulk_load(BulkCases::prepare(histories).unwrap(), audit).await.unwrap();
    (dir, store)
}

/// The SQL expression of a dimension over the store's `cases` rows.
fn sql_key(dim: Dim) -> &'static str {
    match dim {
        Dim::Category => "json_extract(json, '$.matter.category')",
        Dim::Matter => "matter_code",
        Dim::County => "county_id",
        Dim::Township => "township_id",
        Dim::Community => "community_id",
        Dim::Grid => "grid_id",
        Dim::Department => "json_extract(json, '$.lead')",
        Dim::Channel => "json_extract(json, '$.channel')",
        Dim::Status => "status",
    }
}

type Counts = (u64, u64, u64, u64, u64);

fn counts(stats: &Stats) -> Counts {
    (stats.cases, stats.closed, stats.open, stats.rated, stats.satisfied)
}

async fn sql_group(
    store: &SqliteStore,
    dim: Dim,
    from: i64,
    to: i64,
    county: Option<i64>,
) -> BTreeMap<Key, Counts> {
    // One connection, so that the temporary table below is there for the query.
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(store.path()).read_only(true))
        .await
        .unwrap();
    // The stored states are binary (`shiyu_store::codec`); SQL reads their JSON from a table beside them.
    sqlx::query("CREATE TEMP TABLE json_states (id INTEGER PRIMARY KEY, json TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    let states: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT id, state FROM cases").fetch_all(&pool).await.unwrap();
    for (id, state) in states {
        let json: serde_json::Value = shiyu_store::codec::decode(&state).unwrap();
        sqlx::query("INSERT INTO json_states (id, json) VALUES ($1, $2)")
            .bind(id)
            .bind(json.to_string())
            .execute(&pool)
            .await
            .unwrap();
    }
    let sql = format!(
        "SELECT CAST({key} AS TEXT), typeof({key}), COUNT(*), SUM(status = 'closed'), \
         SUM(status IN ('received','registered','dispatched','handling','handled','verified')), \
         SUM(json_extract(json, '$.rating') IS NOT NULL), \
         SUM(COALESCE(json_extract(json, '$.rating.score'), 0) >= 4) \
         FROM cases JOIN json_states USING (id) WHERE received_at >= $1 AND received_at < $2 AND ($3 IS NULL OR county_id = $3) GROUP BY 1, 2",
        key = sql_key(dim)
    );
    type Row = (Option<String>, String, i64, i64, i64, i64, i64);
    let rows: Vec<Row> =
        sqlx::query_as(&sql).bind(from).bind(to).bind(county).fetch_all(&pool).await.unwrap();
    rows.into_iter()
        .map(|(key, kind, cases, closed, open, rated, satisfied)| {
            let key = match (key, kind.as_str()) {
                (None, _) | (_, "null") => Key::None,
                (Some(text), "integer") => Key::Id(text.parse().unwrap()),
                (Some(text), _) => Key::Code(text),
            };
            (key, (cases as u64, closed as u64, open as u64, rated as u64, satisfied as u64))
        })
        .collect()
}

/// The domain's own judgement of stage timeliness: replay the history, and at each event that completes
/// the running stage compare its time with the deadline the state held just before.
fn replayed_registration(history: &[Event]) -> Option<bool> {
    let mut state: Option<CaseState> = None;
    let mut verdict = None;
    for event in history {
        let before = state.as_ref().and_then(|s| s.deadline.filter(|d| d.stage == Stage::Register));
        let completes = matches!(
            event.change,
            Change::Registered { .. } | Change::Rejected | Change::ResolvedOnSpot { .. }
        );
        if let (true, Some(deadline)) = (completes, before) {
            let on_time = event.at <= deadline.due;
            verdict = Some(verdict.unwrap_or(true) && on_time);
        }
        state = Some(apply(state, event).unwrap());
    }
    verdict
}

fn check(seed: u64, cases: u64, dims: &[Dim], window: (u32, u32), county: Option<usize>) {
    let all = histories(cases, seed);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (_dir, store) = loaded(&all).await;
        let analytics = Analytics::rebuild(&store).await.unwrap();
        // An owned copy: no lock is held across the SQL queries below.
        let projection = analytics.read().clone();
        assert_eq!(projection.len(), all.len());
        let start = until().0 - i64::from(DAYS) * 86_400_000;
        let (a, b) = (window.0.min(window.1), window.0.max(window.1) + 1);
        let from = start + i64::from(a) * 86_400_000;
        let to = start + i64::from(b) * 86_400_000;
        let counties: Vec<JurisdictionId> =
            city().0.jurisdictions.iter().filter(|j| j.level == Level::County).map(|j| j.id).collect();
        let county = county.map(|i| counties[i % counties.len()]);
        let filter = Filter {
            from: Some(Timestamp(from)),
            to: Some(Timestamp(to)),
            within: county.map(|c| (Level::County, c)),
            ..Filter::default()
        };
        for dim in dims {
            let ours: BTreeMap<Key, Counts> = projection
                .group(&filter, &[*dim], None, until())
                .into_iter()
                .map(|g| (g.keys[0].clone(), counts(&g.stats)))
                .collect();
            let theirs = sql_group(&store, *dim, from, to, county.map(|c| c.0)).await;
            assert_eq!(ours, theirs, "seed {seed}, {dim:?}, days {a}..{b}, county {county:?}");
        }
        // Per county: satisfaction and resolution as SQL sees them, registration timeliness as the domain
        // replays it.
        let evaluated = projection.evaluate(&filter, Unit::County, &Weights::default(), until());
        let by_county = sql_group(&store, Dim::County, from, to, county.map(|c| c.0)).await;
        for indicators in &evaluated {
            let (_, closed, _, rated, satisfied) = by_county[&Key::Id(indicators.unit)];
            assert_eq!(
                (indicators.satisfaction.numerator, indicators.satisfaction.denominator),
                (satisfied, rated)
            );
            assert!(indicators.resolution.numerator == closed);
        }
        let mut expected: HashMap<i64, (u64, u64)> = HashMap::new();
        for (_, state, history) in &all {
            let at = state.received_at.0;
            let county_id = state.path.get(1).map_or(0, |j| j.0);
            if at < from || at >= to || county.is_some_and(|c| c.0 != county_id) {
                continue;
            }
            if let Some(on_time) = replayed_registration(history) {
                let entry = expected.entry(county_id).or_default();
                entry.1 += 1;
                entry.0 += u64::from(on_time);
            }
        }
        for indicators in &evaluated {
            let got =
                (indicators.registration_on_time.numerator, indicators.registration_on_time.denominator);
            assert_eq!(
                got,
                expected.get(&indicators.unit).copied().unwrap_or_default(),
                "county {}",
                indicators.unit
            );
        }
    });
}

fn dims() -> impl Strategy<Value = Vec<Dim>> {
    proptest::sample::subsequence(Dim::ALL.to_vec(), 1..=3)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    #[test]
    fn projection_answers_equal_sql_over_the_store(
        seed in 1u64..10_000,
        cases in 200u64..600,
        dims in dims(),
        window in (0u32..DAYS, 0u32..DAYS),
        county in proptest::option::of(0usize..8),
    ) {
        check(seed, cases, &dims, window, county);
    }
}

#[test]
fn every_dimension_on_one_history() {
    check(2026, 800, &Dim::ALL, (0, DAYS - 1), None);
}

/// A rebuild decodes only a few fields of each stored event (`Fact::parse`); events in memory are brought to
/// the same form by `Fact::of`. Both must agree on every event the simulator writes, of every kind.
#[test]
fn stored_events_decode_to_the_facts_of_the_events() {
    let mut kinds = std::collections::BTreeSet::new();
    for (_, _, history) in histories(3000, 11) {
        for event in &history {
            let json = serde_json::to_string(event).unwrap();
            let binary = shiyu_store::codec::encode(event).unwrap();
            for stored in [json.as_bytes(), &binary] {
                let parsed = shiyu_analytics::fact::Fact::parse(stored).unwrap();
                assert_eq!(parsed, shiyu_analytics::fact::Fact::of(event), "{json}");
            }
            kinds.insert(event.change.kind());
        }
    }
    for kind in [
        "received",
        "registered",
        "dispatched",
        "accepted",
        "reported_back",
        "verified",
        "verification_failed",
        "closed",
        "rated",
        "returned",
        "extension_approved",
        "escalated",
        "merged",
    ] {
        assert!(kinds.contains(kind), "the simulator wrote no `{kind}`: {kinds:?}");
    }
}

/// A server rebuilds in the background; it says it is ready only once all history is in.
#[tokio::test]
async fn the_background_rebuild_is_ready_only_with_all_history() {
    let histories = histories(3000, 5);
    let (_dir, store) = loaded(&histories).await;
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(store);
    let analytics = Analytics::default();
    assert!(!analytics.is_ready());
    let task =
        tokio::spawn(analytics.clone().rebuild_and_follow(store, std::time::Duration::from_millis(20)));
    let started = std::time::Instant::now();
    while !analytics.is_ready() {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the rebuild never finished");
        tokio::task::yield_now().await;
    }
    assert_eq!(analytics.read().len(), histories.len());
    task.abort();
}
