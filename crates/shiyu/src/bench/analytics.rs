//! `shiyu bench analytics`: statistics and evaluation (分析研判, 行政问效) over N cases spanning ten years.
//!
//! 1. Rebuild: `rebuild_cases` simulated histories of the demo city (`shiyu_sim::history`, every step through
//!    `decide` and `apply`) bulk-loaded into a fresh SQLite store, then `Analytics::rebuild` over its log,
//!    timed (`rebuild_events_per_s`); the same on PostgreSQL when one is at hand.
//! 2. Facts: `cases` cases of the demo city generated directly, not through the simulator (which makes about
//!    35,000 a second), each a pure function of its id: ten years of arrivals with growth, weekly and
//!    seasonal swings and a daily rhythm, in id order; grids weighted by county population with hot spots;
//!    matters by the catalog's weights; full histories (received … closed, rated) as domain `Event`s with
//!    late stages, returns, reworks, extensions, rejections, merges and an open backlog. Folded into a
//!    `Projection` with `apply_event`.
//! 3. Questions: a fixed mix of group-by, top-N and evaluation questions, asked `rounds` times in turn, one
//!    core, under the read lock (`query_p50_ms`, `query_p99_ms`), then again while another thread folds in
//!    1,000 new cases a second through the write lock (`query_p99_ms_while_ingesting`).
//! 4. SQL: the same facts as one row per case (and one per dispatch) in SQLite and PostgreSQL, integer
//!    coded, with an index per filtered or grouped column; the same questions as SQL GROUP BY. Every answer
//!    is checked against the projection's before anything is timed. `ratio_vs_*` is the time to answer the
//!    mix once (each question at its median) in SQL over the same in the projection.

use super::{peak_rss_mb, percentile_ms, round3, FreshStore, Report};
use crate::demo::{install_city, DeploymentPrivacy};
use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use shiyu_analytics::projection::{channel_index, seconds_after, status_index};
use shiyu_analytics::query::channel_name;
use shiyu_analytics::{Analytics, Bucket, Dim, Filter, Group, Indicators, Key, Projection, Unit, Weights};
use shiyu_domain::{
    Actor, Basis, CaseId, Change, Channel, Date, Deadline, DepartmentId, Event, Jurisdiction, JurisdictionId,
    Level, MatterRef, Priority, Reporter, Rules, Stage, StageLimits, Status, Timestamp,
};
use shiyu_sim::catalog::{CATEGORIES, MATTERS};
use shiyu_sim::city::City;
use shiyu_sim::history::{Privacy, SimulateOptions};
use shiyu_sim::rng::{cumulative, Rng};
use shiyu_store::testing::PgCluster;
use shiyu_store::WriteOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, Executor as _, Row as _};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct AnalyticsOptions {
    pub cases: u64,
    /// Simulated cases written to a real store for the rebuild.
    pub rebuild_cases: u64,
    /// Rounds of the question mix asked of the projection, idle and while ingesting.
    pub rounds: usize,
    /// Timed rounds of the mix asked of each SQL database (after one untimed round that checks answers).
    pub sql_rounds: usize,
    /// Compare with PostgreSQL: `database`, or else a throwaway cluster from the system's binaries.
    pub postgres: bool,
    pub database: Option<String>,
    /// Where SQLite files go.
    pub dir: PathBuf,
}

const SEED: u64 = 2026;
/// Ten years of arrivals.
const DAYS: i64 = 3_652;
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
const BEIJING_MS: i64 = 8 * HOUR_MS;
/// New cases a second folded in while the questions are asked again.
const INGEST_PER_S: u64 = 1_000;
/// The questions are asked while ingesting for at least this long.
const INGEST_AT_LEAST: Duration = Duration::from_secs(10);
/// Cases per chunk handed from the generating thread to the folding one.
const CHUNK: u64 = 10_000;

/// Reports per hour of the day (Beijing time), relative.
const HOURLY: [u64; 24] = [2, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 14, 10, 11, 14, 15, 14, 12, 10, 9, 8, 6, 4, 3];
/// Resident population of each county-level unit, in ten thousands (rounded, about the 2020 census).
const COUNTY_POPULATION: &[(&str, u64)] = &[
    ("320612", 113),
    ("320613", 129),
    ("320614", 91),
    ("320623", 88),
    ("320671", 40),
    ("320681", 97),
    ("320682", 124),
    ("320685", 87),
];
/// Channels in `Channel::ALL` order: hotline, app, mini program, grid patrol, sensor, other.
const CHANNEL_WEIGHTS: [u64; 6] = [40, 18, 14, 22, 5, 1];
/// Chance in percent that each stage (register … close) runs past its deadline.
const LATE_PERCENT: [u32; 6] = [2, 2, 3, 6, 3, 2];

fn until() -> anyhow::Result<i64> {
    let date = Date::from_ymd(2026, 11, 21).context("a valid date")?;
    Ok(Timestamp::from_beijing(date, 0).0)
}

// ---------------------------------------------------------------------------------------------------------
// The generator.

#[derive(Debug)]
struct Place {
    path: Vec<JurisdictionId>,
    owner: JurisdictionId,
    county: u32,
    township: u32,
    community: u32,
    grid: u32,
    township_index: usize,
}

#[derive(Debug)]
struct MatterInfo {
    reference: MatterRef,
    category: u16,
    priority: Priority,
    limits: StageLimits,
    /// Each stage's limit in milliseconds of natural time (working-time limits count three times over,
    /// about what nights and weekends add).
    limit_ms: [i64; 6],
}

/// Per township and matter: the township office that holds it locally (0: none) and the county's (or
/// city's) department that leads it.
#[derive(Clone, Copy, Debug, Default)]
struct Leads {
    local: u32,
    county: u32,
    /// Where it goes by mistake before being returned.
    wrong: u32,
}

#[derive(Debug)]
struct Generator {
    until: i64,
    first: i64,
    /// The first case id of each day, and one past the last case after the last day.
    day_first_id: Vec<u64>,
    hour_table: Vec<u64>,
    places: Vec<Place>,
    place_table: Vec<u64>,
    matters: Vec<MatterInfo>,
    matter_table: Vec<u64>,
    channel_table: Vec<u64>,
    leads: Vec<Vec<Leads>>,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Received { due: i64, classified: bool },
    Registered { due: i64 },
    Rejected,
    ResolvedOnSpot { due: i64 },
    Dispatched { lead: u32, due: i64 },
    Returned { department: u32, due: i64 },
    Accepted { department: u32, due: i64 },
    ExtensionApproved { due: i64 },
    Supervised { due: i64 },
    ReportedBack { due: i64 },
    VerificationFailed { due: i64 },
    Verified { due: i64 },
    Closed,
    Rated { score: u8 },
    Merged { into: i64 },
    Voided,
}

/// A case as one SQL row: what the questions need, worked out from the steps independently of the
/// projection.
#[derive(Clone, Copy, Debug, Default)]
struct Row {
    id: i64,
    received_at: i64,
    category: Option<u16>,
    matter: Option<u16>,
    county: u32,
    township: u32,
    community: u32,
    grid: u32,
    lead: u32,
    channel: u8,
    status: u8,
    rating: u8,
    open: bool,
    due: Option<i64>,
    done: u8,
    late: u8,
    reworks: u8,
    returns: u8,
    extensions: u8,
    dispatched: bool,
    handled_s: u32,
}

#[derive(Clone, Copy, Debug)]
struct DispatchRow {
    department: u32,
    /// 0: not accepted; 1: on time; 2: late.
    accepted: u8,
    returned: bool,
}

#[derive(Debug)]
struct Case {
    place: usize,
    matter: usize,
    channel: usize,
    steps: Vec<(i64, Step)>,
    row: Row,
    dispatches: Vec<DispatchRow>,
    open_dispatch: Option<usize>,
    stage: Option<usize>,
    due: i64,
}

impl Case {
    fn set_matter(&mut self, info: &MatterInfo) {
        self.row.matter = Some(self.matter as u16);
        self.row.category = Some(info.category);
    }

    fn begin(&mut self, stage: usize, due: i64) {
        self.stage = Some(stage);
        self.due = due;
    }

    fn end(&mut self) {
        self.stage = None;
        self.open_dispatch = None;
    }

    /// The running stage completes at `at`: on time or late against its due time.
    fn complete(&mut self, stage: usize, at: i64) {
        if self.stage != Some(stage) {
            return;
        }
        self.row.done |= 1 << stage;
        if at > self.due {
            self.row.late |= 1 << stage;
        }
        if stage == 3 && self.row.handled_s == 0 {
            self.row.handled_s = seconds_after(self.row.received_at, at);
        }
    }

    fn push(&mut self, at: i64, step: Step, info: &MatterInfo) {
        match step {
            Step::Received { due, classified } => {
                if classified {
                    self.set_matter(info);
                }
                self.row.status = status_index(Status::Received);
                self.begin(0, due);
            }
            Step::Registered { due } => {
                self.complete(0, at);
                self.set_matter(info);
                self.row.status = status_index(Status::Registered);
                self.begin(1, due);
            }
            Step::Rejected => {
                self.complete(0, at);
                self.row.status = status_index(Status::Rejected);
                self.end();
            }
            Step::ResolvedOnSpot { due } => {
                self.complete(0, at);
                self.set_matter(info);
                self.row.status = status_index(Status::Handled);
                self.begin(4, due);
            }
            Step::Dispatched { lead, due } => {
                self.complete(1, at);
                self.row.lead = lead;
                self.row.dispatched = true;
                self.open_dispatch = Some(self.dispatches.len());
                self.dispatches.push(DispatchRow { department: lead, accepted: 0, returned: false });
                self.row.status = status_index(Status::Dispatched);
                self.begin(2, due);
            }
            Step::Accepted { due, .. } => {
                let on_time = at <= self.due;
                self.complete(2, at);
                if let Some(d) = self.open_dispatch.and_then(|i| self.dispatches.get_mut(i)) {
                    d.accepted = if on_time { 1 } else { 2 };
                }
                self.row.status = status_index(Status::Handling);
                self.begin(3, due);
            }
            Step::Returned { due, .. } => {
                self.row.returns += 1;
                if let Some(d) = self.open_dispatch.take().and_then(|i| self.dispatches.get_mut(i)) {
                    d.returned = true;
                }
                self.row.lead = 0;
                self.row.status = status_index(Status::Registered);
                self.begin(1, due);
            }
            Step::ExtensionApproved { due } => {
                self.row.extensions += 1;
                self.due = due;
            }
            Step::Supervised { .. } => {}
            Step::ReportedBack { due } => {
                self.complete(3, at);
                self.row.status = status_index(Status::Handled);
                self.begin(4, due);
            }
            Step::VerificationFailed { due } => {
                self.complete(4, at);
                self.row.reworks += 1;
                self.row.status = status_index(Status::Handling);
                self.begin(3, due);
            }
            Step::Verified { due } => {
                self.complete(4, at);
                self.row.status = status_index(Status::Verified);
                self.begin(5, due);
            }
            Step::Closed => {
                self.complete(5, at);
                self.row.status = status_index(Status::Closed);
                self.end();
            }
            Step::Rated { score } => self.row.rating = score,
            Step::Merged { .. } => {
                self.row.status = status_index(Status::Merged);
                self.end();
            }
            Step::Voided => {
                self.row.status = status_index(Status::Voided);
                self.end();
            }
        }
        self.steps.push((at, step));
    }

    fn finish(&mut self) {
        self.row.open = self.stage.is_some();
        self.row.due = self.row.open.then_some(self.due);
    }
}

fn duration(rng: &mut Rng, limit: i64, late_percent: u32) -> i64 {
    let factor = if rng.chance(late_percent) { 1.02 + rng.unit() } else { 0.05 + 0.85 * rng.unit() };
    ((limit as f64 * factor) as i64).max(1_000)
}

impl Generator {
    fn new(city: &City, cases: u64, until: i64) -> anyhow::Result<Generator> {
        let first = until - DAYS * DAY_MS;
        let first_day = (first + BEIJING_MS).div_euclid(DAY_MS);
        let weights: Vec<f64> = (0..DAYS)
            .map(|d| {
                let date = Date((first_day + d) as i32);
                let growth = 1.0 + 2.0 * d as f64 / DAYS as f64;
                let weekend = if date.weekday() >= 5 { 0.75 } else { 1.0 };
                let season = 1.0 + 0.15 * ((d as f64 - 100.0) * std::f64::consts::TAU / 365.25).sin();
                growth * weekend * season
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut running = 0.0;
        let mut day_first_id = vec![1u64];
        for w in &weights {
            running += w;
            day_first_id.push((1 + (running / total * cases as f64) as u64).min(cases + 1));
        }
        if let Some(last) = day_first_id.last_mut() {
            *last = cases + 1;
        }

        let by_id: HashMap<JurisdictionId, &Jurisdiction> =
            city.jurisdictions.iter().map(|j| (j.id, j)).collect();
        let code_of = |id: JurisdictionId| by_id.get(&id).map_or("", |j| j.code.as_str());
        let mut township_index: HashMap<JurisdictionId, usize> = HashMap::new();
        let mut rng = Rng::new(SEED ^ 0x9_1D5);
        let mut places = Vec::new();
        let mut skews = Vec::new();
        for grid in city.at_level(Level::Grid) {
            let Some(path) = shiyu_domain::chain_to(grid.id, |j| by_id.get(&j).copied()) else { continue };
            if path.len() < 5 {
                continue;
            }
            let next = township_index.len();
            let index = *township_index.entry(path[2]).or_insert(next);
            places.push(Place {
                owner: path[2],
                county: path[1].0 as u32,
                township: path[2].0 as u32,
                community: path[3].0 as u32,
                grid: path[4].0 as u32,
                township_index: index,
                path,
            });
            // A few grids (markets, old estates, schools) draw many more reports than the rest.
            skews.push(1_000 + (9_000.0 * rng.unit().powi(4)) as u64);
        }
        anyhow::ensure!(!places.is_empty(), "the city has no grids");
        let mut grids_in_county: HashMap<u32, u64> = HashMap::new();
        for p in &places {
            *grids_in_county.entry(p.county).or_default() += 1;
        }
        let place_table = cumulative(places.iter().zip(&skews).map(|(p, skew)| {
            let code = code_of(JurisdictionId(i64::from(p.county)));
            let population = COUNTY_POPULATION.iter().find(|(c, _)| *c == code).map_or(50, |(_, n)| *n);
            population * 10_000_000 / grids_in_county.get(&p.county).copied().unwrap_or(1).max(1) * skew
                / 1_000
        }));

        let mut matters = Vec::new();
        let mut matter_weights = Vec::new();
        for matter in &city.matters {
            let spec = MATTERS.iter().find(|s| s.code == matter.code).context("a matter of the catalog")?;
            let category = CATEGORIES.iter().position(|(c, _)| *c == matter.category).unwrap_or(0) as u16;
            let ms = |stage: Stage| {
                let limit = matter.limits.of(stage);
                let factor = if limit.basis == Basis::Working { 3 } else { 1 };
                i64::from(limit.minutes) * MINUTE_MS * factor
            };
            matters.push(MatterInfo {
                reference: MatterRef { code: matter.code.clone(), category: matter.category.clone() },
                category,
                priority: matter.default_priority,
                limits: matter.limits,
                limit_ms: [
                    ms(Stage::Register),
                    ms(Stage::Dispatch),
                    ms(Stage::Accept),
                    ms(Stage::Handle),
                    ms(Stage::Verify),
                    ms(Stage::Close),
                ],
            });
            matter_weights.push(u64::from(spec.weight));
        }
        anyhow::ensure!(!matters.is_empty(), "the catalog is empty");

        let departments: HashMap<(&str, JurisdictionId), u32> =
            city.departments.iter().map(|d| ((d.kind.as_str(), d.jurisdiction), d.id.0 as u32)).collect();
        let city_id = city.jurisdictions.first().map(|j| j.id).context("the city")?;
        let find = |kind: &str, at: JurisdictionId| {
            departments.get(&(kind, at)).or_else(|| departments.get(&(kind, city_id))).copied().unwrap_or(0)
        };
        let mut leads = vec![Vec::new(); township_index.len()];
        for (township, index) in &township_index {
            let county = places.iter().find(|p| p.owner == *township).map(|p| p.path[1]).unwrap_or(city_id);
            leads[*index] = city
                .matters
                .iter()
                .map(|matter| {
                    let spec = MATTERS.iter().find(|s| s.code == matter.code);
                    let local = spec
                        .and_then(|s| s.township)
                        .and_then(|kind| departments.get(&(kind, *township)).copied())
                        .unwrap_or(0);
                    let lead_kind = spec.map_or("urban_management", |s| s.lead);
                    let county_lead = find(lead_kind, county);
                    let wrong_kind =
                        if lead_kind == "urban_management" { "housing" } else { "urban_management" };
                    Leads { local, county: county_lead, wrong: find(wrong_kind, county) }
                })
                .collect();
        }

        Ok(Generator {
            until,
            first,
            day_first_id,
            hour_table: cumulative(HOURLY),
            places,
            place_table,
            matters,
            matter_table: cumulative(matter_weights),
            channel_table: cumulative(CHANNEL_WEIGHTS),
            leads,
        })
    }

    /// Milliseconds into a day at which a fraction `p` of its reports have come in.
    fn time_of_day(&self, p: f64) -> i64 {
        let total = self.hour_table.last().copied().unwrap_or(1) as f64;
        let target = p.clamp(0.0, 1.0) * total;
        let hour = self.hour_table.partition_point(|&c| (c as f64) <= target).min(23);
        let before = if hour == 0 { 0.0 } else { self.hour_table[hour - 1] as f64 };
        let within = (target - before) / (self.hour_table[hour] as f64 - before).max(1.0);
        (hour as i64 * HOUR_MS + (within.clamp(0.0, 0.999_999) * HOUR_MS as f64) as i64).min(DAY_MS - 1)
    }

    /// When case `id` was received: ids come in arrival order.
    fn received_at(&self, id: u64, rng: &mut Rng) -> i64 {
        let day = self.day_first_id.partition_point(|&f| f <= id).saturating_sub(1).min(DAYS as usize - 1);
        let start = self.day_first_id[day];
        let count = (self.day_first_id[day + 1] - start).max(1);
        let p = ((id - start) as f64 + rng.unit()) / count as f64;
        self.first + day as i64 * DAY_MS + self.time_of_day(p)
    }

    /// Case `id`, received at `received_at` (or when its id says), with every step that happened by
    /// `horizon`.
    fn case(&self, id: i64, received_at: Option<i64>, horizon: i64) -> Case {
        let mut rng = Rng::new(SEED ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let received_at = received_at.unwrap_or_else(|| self.received_at(id as u64, &mut rng));
        let place = rng.draw(&self.place_table);
        let matter = rng.draw(&self.matter_table);
        let channel = rng.draw(&self.channel_table);
        let p = &self.places[place];
        let mut case = Case {
            place,
            matter,
            channel,
            steps: Vec::with_capacity(10),
            row: Row {
                id,
                received_at,
                county: p.county,
                township: p.township,
                community: p.community,
                grid: p.grid,
                channel: channel as u8,
                ..Row::default()
            },
            dispatches: Vec::new(),
            open_dispatch: None,
            stage: None,
            due: i64::MAX,
        };
        self.script(&mut case, &mut rng, horizon);
        case.finish();
        case
    }

    /// The case's story; stops early (the case stays open) at `horizon` or where it got stuck.
    fn script(&self, c: &mut Case, rng: &mut Rng, horizon: i64) -> Option<()> {
        let info = &self.matters[c.matter];
        let limit = info.limit_ms;
        let leads = self.leads[self.places[c.place].township_index][c.matter];
        let channel = Channel::ALL.get(c.channel).copied().unwrap_or(Channel::Other);
        // About one case in twelve stalls somewhere and is still open (挂账).
        let stuck_after = if rng.chance(8) { 2 + rng.below(6) } else { usize::MAX };
        let step = |c: &mut Case, at: i64, s: Step| -> Option<()> {
            if at > horizon || c.steps.len() >= stuck_after {
                return None;
            }
            c.push(at, s, info);
            Some(())
        };
        let mut t = c.row.received_at;
        let classified = !matches!(channel, Channel::Hotline | Channel::Other);
        step(c, t, Step::Received { due: t + limit[0], classified })?;
        let ending = rng.below(1000);
        t += duration(rng, limit[0], LATE_PERCENT[0]);
        if ending < 50 {
            let id = c.row.id;
            let s = match ending {
                0..30 => Step::Rejected,
                30..45 if id > 1 => {
                    Step::Merged { into: id - 1 - rng.below((id - 1).min(100) as usize) as i64 }
                }
                _ => Step::Voided,
            };
            return step(c, t, s);
        }
        let lead = if leads.local != 0 && rng.chance(55) { leads.local } else { leads.county };
        if channel == Channel::GridPatrol && rng.chance(40) {
            step(c, t, Step::ResolvedOnSpot { due: t + limit[4] })?;
        } else {
            step(c, t, Step::Registered { due: t + limit[1] })?;
            t += duration(rng, limit[1], LATE_PERCENT[1]);
            if rng.chance(2) && leads.wrong != 0 && leads.wrong != lead {
                step(c, t, Step::Dispatched { lead: leads.wrong, due: t + limit[2] })?;
                t += (limit[2] as f64 * (0.05 + 0.3 * rng.unit())) as i64 + 1_000;
                step(c, t, Step::Returned { department: leads.wrong, due: t + limit[1] })?;
                t += duration(rng, limit[1], LATE_PERCENT[1]);
            }
            step(c, t, Step::Dispatched { lead, due: t + limit[2] })?;
            t += duration(rng, limit[2], LATE_PERCENT[2]);
            step(c, t, Step::Accepted { department: lead, due: t + limit[3] })?;
            let reported = t + duration(rng, limit[3], LATE_PERCENT[3]);
            if rng.chance(2) {
                step(c, t + (reported - t) / 3, Step::ExtensionApproved { due: t + 2 * limit[3] })?;
            }
            if rng.chance(1) {
                step(c, t + (reported - t) / 2, Step::Supervised { due: reported + DAY_MS })?;
            }
            t = reported;
            step(c, t, Step::ReportedBack { due: t + limit[4] })?;
            if rng.chance(3) {
                t += duration(rng, limit[4], 0);
                step(c, t, Step::VerificationFailed { due: t + limit[3] })?;
                t += duration(rng, limit[3], 0);
                step(c, t, Step::ReportedBack { due: t + limit[4] })?;
            }
        }
        t += duration(rng, limit[4], LATE_PERCENT[4]);
        step(c, t, Step::Verified { due: t + limit[5] })?;
        t += duration(rng, limit[5], LATE_PERCENT[5]);
        step(c, t, Step::Closed)?;
        // Half the reporters rate the result, most of them well.
        if rng.chance(50) {
            let score = match rng.below(100) {
                0..3 => 1,
                3..7 => 2,
                7..15 => 3,
                15..40 => 4,
                _ => 5,
            };
            t += HOUR_MS + rng.below(3 * DAY_MS as usize) as i64;
            step(c, t, Step::Rated { score })?;
        }
        Some(())
    }

    /// The case's steps as the domain's events.
    fn events(&self, case: &Case) -> Vec<Event> {
        let info = &self.matters[case.matter];
        let place = &self.places[case.place];
        case.steps
            .iter()
            .map(|&(at, step)| {
                let deadline = |stage: Stage, due: i64| Deadline {
                    stage,
                    basis: Basis::Natural,
                    started: Timestamp(at),
                    yellow_at: Timestamp(at + (due - at) * 4 / 5),
                    due: Timestamp(due),
                };
                let change = match step {
                    Step::Received { due, classified } => Change::Received {
                        channel: Channel::ALL.get(case.channel).copied().unwrap_or(Channel::Other),
                        description: String::new(),
                        address: None,
                        location: None,
                        path: place.path.clone(),
                        owner: place.owner,
                        reporter: Reporter::default(),
                        matter: classified.then(|| info.reference.clone()),
                        priority: info.priority,
                        limits: info.limits,
                        deadline: deadline(Stage::Register, due),
                    },
                    Step::Registered { due } => Change::Registered {
                        matter: info.reference.clone(),
                        priority: info.priority,
                        limits: info.limits,
                        deadline: deadline(Stage::Dispatch, due),
                    },
                    Step::Rejected => Change::Rejected,
                    Step::ResolvedOnSpot { due } => Change::ResolvedOnSpot {
                        matter: info.reference.clone(),
                        priority: info.priority,
                        limits: info.limits,
                        deadline: deadline(Stage::Verify, due),
                    },
                    Step::Dispatched { lead, due } => Change::Dispatched {
                        lead: DepartmentId(i64::from(lead)),
                        assisting: Vec::new(),
                        basis: None,
                        deadline: deadline(Stage::Accept, due),
                    },
                    Step::Returned { department, due } => Change::Returned {
                        department: DepartmentId(i64::from(department)),
                        deadline: deadline(Stage::Dispatch, due),
                    },
                    Step::Accepted { department, due } => Change::Accepted {
                        department: DepartmentId(i64::from(department)),
                        deadline: Some(deadline(Stage::Handle, due)),
                    },
                    Step::ExtensionApproved { due } => {
                        Change::ExtensionApproved { deadline: deadline(Stage::Handle, due) }
                    }
                    Step::Supervised { due } => Change::Supervised { due: Timestamp(due) },
                    Step::ReportedBack { due } => {
                        Change::ReportedBack { deadline: deadline(Stage::Verify, due) }
                    }
                    Step::VerificationFailed { due } => {
                        Change::VerificationFailed { deadline: deadline(Stage::Handle, due) }
                    }
                    Step::Verified { due } => Change::Verified { deadline: deadline(Stage::Close, due) },
                    Step::Closed => Change::Closed,
                    Step::Rated { score } => Change::Rated { score, comment: None },
                    Step::Merged { into } => Change::Merged { into: CaseId(into) },
                    Step::Voided => Change::Voided,
                };
                Event {
                    at: Timestamp(at),
                    actor: Actor::System,
                    note: None,
                    attachments: Vec::new(),
                    origin: None,
                    reply: None,
                    change,
                }
            })
            .collect()
    }

    fn category_index(&self, code: &str) -> Option<u16> {
        CATEGORIES.iter().position(|(c, _)| *c == code).map(|i| i as u16)
    }

    fn matter_index(&self, code: &str) -> Option<u16> {
        self.matters.iter().position(|m| m.reference.code == code).map(|i| i as u16)
    }
}

/// Generates cases `1..=cases` on one thread and folds their events into a projection on this one.
fn fold(generator: &Generator, cases: u64) -> (Projection, u64) {
    let (chunks, incoming) = std::sync::mpsc::sync_channel::<Vec<(CaseId, Vec<Event>)>>(4);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut next = 1;
            while next <= cases {
                let end = (next + CHUNK).min(cases + 1);
                let chunk = (next..end)
                    .map(|id| {
                        let case = generator.case(id as i64, None, generator.until);
                        (CaseId(id as i64), generator.events(&case))
                    })
                    .collect();
                if chunks.send(chunk).is_err() {
                    return;
                }
                next = end;
            }
        });
        let mut projection = Projection::new();
        let mut events = 0u64;
        let mut progress = crate::progress::ProgressLine::default();
        let started = Instant::now();
        let mut done = 0usize;
        for chunk in incoming {
            for (id, history) in &chunk {
                for event in history {
                    projection.apply_event(*id, event);
                }
                events += history.len() as u64;
            }
            done += chunk.len();
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.show("folding cases", done, cases as usize, &format!("{rate:.0} cases/s"));
        }
        (projection, events)
    })
}

// ---------------------------------------------------------------------------------------------------------
// The questions.

#[derive(Clone, Debug)]
enum Ask {
    Group { filter: Filter, by: Vec<Dim>, bucket: Option<Bucket> },
    Top { filter: Filter, dim: Dim, n: usize },
    Evaluate { filter: Filter, unit: Unit },
}

#[derive(Clone, Debug)]
struct Question {
    name: &'static str,
    ask: Ask,
}

fn questions(city: &City, until: i64) -> anyhow::Result<Vec<Question>> {
    let all = Filter::default();
    let date = |y, m| Date::from_ymd(y, m, 1).map(|d| Timestamp::from_beijing(d, 0)).context("a date");
    let month = Filter { from: Some(date(2026, 10)?), to: Some(date(2026, 11)?), ..Filter::default() };
    let year = Filter {
        from: Some(Timestamp(until - 365 * DAY_MS)),
        to: Some(Timestamp(until)),
        ..Filter::default()
    };
    let chongchuan = city
        .at_level(Level::County)
        .find(|j| j.code == "320613")
        .map(|j| j.id)
        .context("崇川区 in the demo city")?;
    let in_county = Filter { within: Some((Level::County, chongchuan)), ..Filter::default() };
    let category_year = Filter { category: Some("city_appearance".into()), ..year.clone() };
    let group = |filter: &Filter, by: &[Dim], bucket: Option<Bucket>| Ask::Group {
        filter: filter.clone(),
        by: by.to_vec(),
        bucket,
    };
    Ok(vec![
        Question { name: "by_category", ask: group(&all, &[Dim::Category], None) },
        Question { name: "by_county_month", ask: group(&all, &[Dim::County], Some(Bucket::Month)) },
        Question { name: "by_grid", ask: group(&all, &[Dim::Grid], None) },
        Question { name: "by_department", ask: group(&all, &[Dim::Department], None) },
        Question { name: "by_matter_one_month", ask: group(&month, &[Dim::Matter], None) },
        Question { name: "by_status", ask: group(&all, &[Dim::Status], None) },
        Question { name: "top10_grids", ask: Ask::Top { filter: all.clone(), dim: Dim::Grid, n: 10 } },
        Question {
            name: "evaluate_departments_year",
            ask: Ask::Evaluate { filter: year.clone(), unit: Unit::Department },
        },
        Question {
            name: "evaluate_townships_year",
            ask: Ask::Evaluate { filter: year.clone(), unit: Unit::Township },
        },
        Question { name: "one_county_by_township", ask: group(&in_county, &[Dim::Township], None) },
        Question { name: "category_by_day_year", ask: group(&category_year, &[], Some(Bucket::Day)) },
    ])
}

/// What the projection said, as returned.
#[derive(Debug)]
enum Raw {
    Groups(Vec<Group>),
    Units(Vec<Indicators>),
}

fn ask_projection(projection: &Projection, ask: &Ask, now: Timestamp) -> Raw {
    match ask {
        Ask::Group { filter, by, bucket } => Raw::Groups(projection.group(filter, by, *bucket, now)),
        Ask::Top { filter, dim, n } => Raw::Groups(projection.top(filter, *dim, *n, now)),
        Ask::Evaluate { filter, unit } => {
            Raw::Units(projection.evaluate(filter, *unit, &Weights::default(), now))
        }
    }
}

/// One unit's evaluation as integers (and the mean handling time), for comparing.
#[derive(Clone, Debug, Default)]
struct UnitRow {
    unit: i64,
    /// cases; then numerator and denominator of response, resolution, satisfaction, the four on-time
    /// rates, rework and returns; then overdue and extensions.
    counts: [u64; 21],
    hours_avg: Option<f64>,
}

impl PartialEq for UnitRow {
    fn eq(&self, other: &UnitRow) -> bool {
        let close = match (self.hours_avg, other.hours_avg) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * a.abs().max(1.0),
            (a, b) => a.is_none() && b.is_none(),
        };
        self.unit == other.unit && self.counts == other.counts && close
    }
}

type GroupRow = (Vec<Key>, Option<i64>, [u64; 6]);

/// An answer in a form both sides can be brought to.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Groups(Vec<GroupRow>),
    Units(Vec<UnitRow>),
}

impl Answer {
    fn len(&self) -> usize {
        match self {
            Answer::Groups(g) => g.len(),
            Answer::Units(u) => u.len(),
        }
    }

    /// The first place two answers differ, for the error message.
    fn first_difference(&self, other: &Answer) -> String {
        match (self, other) {
            (Answer::Groups(a), Answer::Groups(b)) => {
                let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
                format!(
                    "{} vs {} groups; first difference: {:?} vs {:?}",
                    a.len(),
                    b.len(),
                    a.get(at),
                    b.get(at)
                )
            }
            (Answer::Units(a), Answer::Units(b)) => {
                let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
                format!(
                    "{} vs {} units; first difference: {:?} vs {:?}",
                    a.len(),
                    b.len(),
                    a.get(at),
                    b.get(at)
                )
            }
            _ => "different kinds of answer".into(),
        }
    }
}

fn normalise(raw: &Raw, ask: &Ask) -> Answer {
    match raw {
        Raw::Groups(groups) => {
            let mut rows: Vec<GroupRow> = groups
                .iter()
                .map(|g| {
                    let s = g.stats;
                    (
                        g.keys.clone(),
                        g.bucket.map(|t| t.0),
                        [s.cases, s.closed, s.open, s.overdue, s.rated, s.satisfied],
                    )
                })
                .collect();
            if !matches!(ask, Ask::Top { .. }) {
                rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
            }
            Answer::Groups(rows)
        }
        Raw::Units(units) => {
            let mut rows: Vec<UnitRow> = units
                .iter()
                .map(|i| {
                    let r = |ratio: &shiyu_analytics::Ratio| [ratio.numerator, ratio.denominator];
                    let mut counts = [0u64; 21];
                    counts[0] = i.cases;
                    for (k, ratio) in [
                        &i.response,
                        &i.resolution,
                        &i.satisfaction,
                        &i.registration_on_time,
                        &i.dispatch_on_time,
                        &i.handling_on_time,
                        &i.verification_on_time,
                        &i.rework,
                        &i.returned,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let [n, d] = r(ratio);
                        counts[1 + 2 * k] = n;
                        counts[2 + 2 * k] = d;
                    }
                    counts[19] = i.overdue;
                    counts[20] = i.extensions;
                    UnitRow { unit: i.unit, counts, hours_avg: i.handling_hours_avg }
                })
                .collect();
            rows.sort_by_key(|r| r.unit);
            Answer::Units(rows)
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// SQL.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Int,
    Text,
    Float,
}

#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Float(Option<f64>),
}

impl Cell {
    fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => *v,
            _ => None,
        }
    }
    fn count(&self) -> u64 {
        self.int().unwrap_or(0).max(0) as u64
    }
}

#[derive(Debug)]
enum Db {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

macro_rules! decode_row {
    ($row:expr, $kinds:expr) => {{
        let mut cells = Vec::with_capacity($kinds.len());
        for (i, kind) in $kinds.iter().enumerate() {
            cells.push(match kind {
                Kind::Int => Cell::Int($row.try_get::<Option<i64>, _>(i)?),
                Kind::Text => Cell::Text($row.try_get::<Option<String>, _>(i)?),
                Kind::Float => Cell::Float($row.try_get::<Option<f64>, _>(i)?),
            });
        }
        cells
    }};
}

impl Db {
    fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    async fn execute(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.execute(sql).await.map(|_| ()),
            Db::Postgres(c) => c.execute(sql).await.map(|_| ()),
        }
        .with_context(|| format!("running {sql}"))
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite(c) => c.close().await?,
            Db::Postgres(c) => c.close().await?,
        }
        Ok(())
    }

    async fn fetch(&mut self, sql: &str, kinds: &[Kind]) -> anyhow::Result<Vec<Vec<Cell>>> {
        let mut out = Vec::new();
        match self {
            Db::Sqlite(c) => {
                let rows =
                    sqlx::query(sql).fetch_all(&mut *c).await.with_context(|| format!("asking {sql}"))?;
                for row in &rows {
                    out.push(decode_row!(row, kinds));
                }
            }
            Db::Postgres(c) => {
                let rows =
                    sqlx::query(sql).fetch_all(&mut *c).await.with_context(|| format!("asking {sql}"))?;
                for row in &rows {
                    out.push(decode_row!(row, kinds));
                }
            }
        }
        Ok(out)
    }
}

const COLUMNS: &str = "received_at BIGINT NOT NULL, category SMALLINT, matter SMALLINT, \
    county INTEGER NOT NULL, township INTEGER NOT NULL, community INTEGER NOT NULL, grid INTEGER, department INTEGER, \
    channel SMALLINT NOT NULL, status SMALLINT NOT NULL, rating SMALLINT NOT NULL, is_open SMALLINT NOT NULL, \
    due BIGINT, done SMALLINT NOT NULL, late SMALLINT NOT NULL, n_reworks SMALLINT NOT NULL, \
    n_returns SMALLINT NOT NULL, n_extensions SMALLINT NOT NULL, dispatched SMALLINT NOT NULL, \
    handled_s INTEGER NOT NULL";
const FACT_COLUMNS: usize = 21;

const INDEXES: &[&str] = &[
    "CREATE INDEX facts_received ON facts (received_at)",
    "CREATE INDEX facts_category ON facts (category, received_at)",
    "CREATE INDEX facts_matter ON facts (matter, received_at)",
    "CREATE INDEX facts_county ON facts (county, received_at)",
    "CREATE INDEX facts_township ON facts (township)",
    "CREATE INDEX facts_grid ON facts (grid)",
    "CREATE INDEX facts_department ON facts (department)",
    "CREATE INDEX facts_status ON facts (status)",
    "CREATE INDEX dispatches_case ON dispatches (case_id)",
];

/// The conditions of a filter over `facts` (columns prefixed with `p`).
fn conditions(g: &Generator, filter: &Filter, p: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(from) = filter.from {
        out.push(format!("{p}received_at >= {}", from.0));
    }
    if let Some(to) = filter.to {
        out.push(format!("{p}received_at < {}", to.0));
    }
    if let Some((level, id)) = filter.within {
        let col = match level {
            Level::City => None,
            Level::County => Some("county"),
            Level::Township => Some("township"),
            Level::Community => Some("community"),
            Level::Grid | Level::MicroGrid => Some("grid"),
        };
        if let Some(col) = col {
            out.push(format!("{p}{col} = {}", id.0));
        }
    }
    if let Some(d) = filter.department {
        out.push(format!("{p}department = {}", d.0));
    }
    if let Some(code) = &filter.category {
        out.push(g.category_index(code).map_or("1 = 0".into(), |i| format!("{p}category = {i}")));
    }
    if let Some(code) = &filter.matter {
        out.push(g.matter_index(code).map_or("1 = 0".into(), |i| format!("{p}matter = {i}")));
    }
    if let Some(c) = filter.channel {
        out.push(format!("{p}channel = {}", channel_index(c)));
    }
    if let Some(s) = filter.status {
        out.push(format!("{p}status = {}", status_index(s)));
    }
    out
}

fn where_clause(parts: &[String]) -> String {
    if parts.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", parts.join(" AND "))
    }
}

fn stats_sql(now: i64) -> String {
    format!(
        "COUNT(*), COUNT(*) FILTER (WHERE status = {closed}), COUNT(*) FILTER (WHERE is_open = 1), \
         COUNT(*) FILTER (WHERE late <> 0 OR (is_open = 1 AND due < {now})), \
         COUNT(*) FILTER (WHERE rating > 0), COUNT(*) FILTER (WHERE rating >= 4)",
        closed = status_index(Status::Closed)
    )
}

fn bucket_sql(bucket: Bucket, backend: Backend) -> anyhow::Result<(String, Kind)> {
    Ok(match (bucket, backend) {
        (Bucket::Day, _) => (format!("(received_at + {BEIJING_MS}) / {DAY_MS}"), Kind::Int),
        (Bucket::Month, Backend::Sqlite) => {
            (format!("strftime('%Y-%m', (received_at + {BEIJING_MS}) / 1000, 'unixepoch')"), Kind::Text)
        }
        (Bucket::Month, Backend::Postgres) => (
            format!(
                "to_char(to_timestamp((received_at + {BEIJING_MS}) / 1000) AT TIME ZONE 'UTC', 'YYYY-MM')"
            ),
            Kind::Text,
        ),
        (other, _) => bail!("no SQL for {} buckets in this benchmark", other.as_str()),
    })
}

type Statement = (String, Vec<Kind>);

/// The question in SQL: one statement, or for an evaluation the indicators, the p90 handling time and (for
/// departments) the dispatches.
fn sql_for(g: &Generator, ask: &Ask, backend: Backend, now: i64) -> anyhow::Result<Vec<Statement>> {
    let stats = stats_sql(now);
    let six = [Kind::Int; 6];
    Ok(match ask {
        Ask::Group { filter, by, bucket } => {
            let mut select: Vec<String> =
                by.iter().map(|d| format!("CAST({} AS BIGINT)", d.as_str())).collect();
            let mut kinds = vec![Kind::Int; by.len()];
            if let Some(b) = bucket {
                let (expr, kind) = bucket_sql(*b, backend)?;
                select.push(expr);
                kinds.push(kind);
            }
            let keys = select.len();
            let group_by = if keys == 0 {
                String::new()
            } else {
                format!(" GROUP BY {}", (1..=keys).map(|k| k.to_string()).collect::<Vec<_>>().join(", "))
            };
            select.push(stats);
            kinds.extend(six);
            let sql = format!(
                "SELECT {} FROM facts{}{group_by}",
                select.join(", "),
                where_clause(&conditions(g, filter, ""))
            );
            vec![(sql, kinds)]
        }
        Ask::Top { filter, dim, n } => {
            let col = dim.as_str();
            let mut parts = conditions(g, filter, "");
            parts.push(format!("{col} IS NOT NULL"));
            let sql = format!(
                "SELECT CAST({col} AS BIGINT), {stats} FROM facts{} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {n}",
                where_clause(&parts)
            );
            let mut kinds = vec![Kind::Int];
            kinds.extend(six);
            vec![(sql, kinds)]
        }
        Ask::Evaluate { filter, unit } => {
            let u = unit.as_str();
            let mut parts = conditions(g, filter, "");
            parts.push(format!("{u} IS NOT NULL AND {u} <> 0"));
            let on_time = [1, 2, 8, 16]
                .map(|bit| {
                    format!(
                        "COUNT(*) FILTER (WHERE (done & {bit}) <> 0 AND (late & {bit}) = 0), \
                         COUNT(*) FILTER (WHERE (done & {bit}) <> 0)"
                    )
                })
                .join(", ");
            let main = format!(
                "SELECT CAST({u} AS BIGINT), COUNT(*), \
                 COUNT(*) FILTER (WHERE (done & 1) <> 0 AND (late & 1) = 0), \
                 COUNT(*) FILTER (WHERE status = {closed}), \
                 COUNT(*) FILTER (WHERE status NOT IN ({rejected}, {merged}, {voided})), \
                 COUNT(*) FILTER (WHERE rating >= 4), COUNT(*) FILTER (WHERE rating > 0), \
                 {on_time}, \
                 COUNT(*) FILTER (WHERE (done & 8) <> 0 AND n_reworks > 0), COUNT(*) FILTER (WHERE (done & 8) <> 0), \
                 COUNT(*) FILTER (WHERE dispatched = 1 AND n_returns > 0), COUNT(*) FILTER (WHERE dispatched = 1), \
                 COUNT(*) FILTER (WHERE late <> 0 OR (is_open = 1 AND due < {now})), SUM(n_extensions), \
                 AVG(CAST(handled_s AS DOUBLE PRECISION) / 3600) FILTER (WHERE handled_s > 0) \
                 FROM facts{} GROUP BY 1",
                where_clause(&parts),
                closed = status_index(Status::Closed),
                rejected = status_index(Status::Rejected),
                merged = status_index(Status::Merged),
                voided = status_index(Status::Voided),
            );
            let mut kinds = vec![Kind::Int; 21];
            kinds.push(Kind::Float);
            let mut handled = parts.clone();
            handled.push("handled_s > 0".into());
            let p90 = match backend {
                Backend::Postgres => format!(
                    "SELECT CAST({u} AS BIGINT), CAST(percentile_disc(0.9) WITHIN GROUP (ORDER BY handled_s) AS BIGINT) \
                     FROM facts{} GROUP BY 1",
                    where_clause(&handled)
                ),
                Backend::Sqlite => format!(
                    "SELECT u, MIN(h) FROM (SELECT CAST({u} AS BIGINT) AS u, handled_s AS h, \
                     ROW_NUMBER() OVER (PARTITION BY {u} ORDER BY handled_s) AS rn, \
                     COUNT(*) OVER (PARTITION BY {u}) AS n FROM facts{}) WHERE rn = (9 * n + 9) / 10 GROUP BY u",
                    where_clause(&handled)
                ),
            };
            let mut out = vec![(main, kinds), (p90, vec![Kind::Int, Kind::Int])];
            if *unit == Unit::Department {
                let sql = format!(
                    "SELECT CAST(d.department AS BIGINT), COUNT(*), COUNT(*) FILTER (WHERE d.accepted = 1), \
                     COUNT(*) FILTER (WHERE d.returned = 1) FROM dispatches d JOIN facts f ON f.id = d.case_id{} \
                     GROUP BY 1",
                    where_clause(&conditions(g, filter, "f."))
                );
                out.push((sql, vec![Kind::Int; 4]));
            }
            out
        }
    })
}

fn sql_key(g: &Generator, dim: Dim, value: Option<i64>) -> Key {
    let Some(v) = value else { return Key::None };
    let code = |text: Option<&str>| text.map_or(Key::None, |t| Key::Code(t.to_string()));
    match dim {
        Dim::Category => code(CATEGORIES.get(v as usize).map(|(c, _)| *c)),
        Dim::Matter => code(g.matters.get(v as usize).map(|m| m.reference.code.as_str())),
        Dim::County | Dim::Township | Dim::Community | Dim::Grid | Dim::Department => {
            if v == 0 {
                Key::None
            } else {
                Key::Id(v)
            }
        }
        Dim::Channel => code(Channel::ALL.get(v as usize).map(channel_name)),
        Dim::Status => code(Status::ALL.get(v as usize).map(|s| s.as_str())),
    }
}

fn sql_bucket(cell: &Cell) -> anyhow::Result<Option<i64>> {
    Ok(match cell {
        Cell::Int(Some(day)) => Some(day * DAY_MS - BEIJING_MS),
        Cell::Text(Some(month)) => {
            let (y, m) = month.split_once('-').context("a YYYY-MM month")?;
            let date = Date::from_ymd(y.parse()?, m.parse()?, 1).context("a month")?;
            Some(Timestamp::from_beijing(date, 0).0)
        }
        _ => None,
    })
}

/// The SQL rows as an answer comparable with the projection's.
fn sql_answer(g: &Generator, ask: &Ask, results: &[Vec<Vec<Cell>>]) -> anyhow::Result<Answer> {
    let first = results.first().context("a result")?;
    let (dims, has_bucket) = match ask {
        Ask::Group { by, bucket, .. } => (by.clone(), bucket.is_some()),
        Ask::Top { dim, .. } => (vec![*dim], false),
        Ask::Evaluate { unit, .. } => return Ok(sql_units(*unit, results)),
    };
    let mut rows = Vec::new();
    for cells in first {
        let keys: Vec<Key> = dims.iter().zip(cells).map(|(d, c)| sql_key(g, *d, c.int())).collect();
        let mut at = dims.len();
        let slot = if has_bucket {
            at += 1;
            sql_bucket(cells.get(dims.len()).context("a bucket")?)?
        } else {
            None
        };
        let mut stats = [0u64; 6];
        for (k, s) in stats.iter_mut().enumerate() {
            *s = cells.get(at + k).map_or(0, Cell::count);
        }
        if stats[0] > 0 {
            rows.push((keys, slot, stats));
        }
    }
    if matches!(ask, Ask::Group { .. }) {
        rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    }
    Ok(Answer::Groups(rows))
}

/// Evaluation rows: the main statement's columns are in `UnitRow::counts` order from column 1 on (response
/// and returns only for levels), then the mean handling time; departments' response and returns come from
/// the dispatches statement.
fn sql_units(unit: Unit, results: &[Vec<Vec<Cell>>]) -> Answer {
    let mut units: BTreeMap<i64, UnitRow> = BTreeMap::new();
    for cells in results.first().into_iter().flatten() {
        let id = cells.first().and_then(Cell::int).unwrap_or(0);
        let n = |k: usize| cells.get(k).map_or(0, Cell::count);
        let mut counts = [0u64; 21];
        counts[0] = n(1);
        for (k, count) in counts.iter_mut().enumerate().skip(3) {
            *count = n(k);
        }
        if unit == Unit::Department {
            counts[17] = 0;
            counts[18] = 0;
        } else {
            counts[1] = n(2);
            counts[2] = n(1);
        }
        let hours_avg = match cells.get(21) {
            Some(Cell::Float(v)) => *v,
            _ => None,
        };
        units.insert(id, UnitRow { unit: id, counts, hours_avg });
    }
    for cells in results.get(2).into_iter().flatten() {
        let id = cells.first().and_then(Cell::int).unwrap_or(0);
        let n = |k: usize| cells.get(k).map_or(0, Cell::count);
        let entry = units.entry(id).or_insert_with(|| UnitRow { unit: id, ..UnitRow::default() });
        entry.counts[1] = n(2);
        entry.counts[2] = n(1);
        entry.counts[17] = n(3);
        entry.counts[18] = n(1);
    }
    Answer::Units(units.into_values().collect())
}

fn push_row_text(buf: &mut String, r: &Row) {
    use std::fmt::Write as _;
    let opt = |v: Option<i64>| v.map_or("\\N".to_string(), |v| v.to_string());
    let _ = writeln!(
        buf,
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        r.id,
        r.received_at,
        opt(r.category.map(i64::from)),
        opt(r.matter.map(i64::from)),
        r.county,
        r.township,
        r.community,
        r.grid,
        opt((r.lead != 0).then_some(i64::from(r.lead))),
        r.channel,
        r.status,
        r.rating,
        u8::from(r.open),
        opt(r.due),
        r.done,
        r.late,
        r.reworks,
        r.returns,
        r.extensions,
        u8::from(r.dispatched),
        r.handled_s,
    );
}

/// Loads `cases` rows (and their dispatches) into SQLite with prepared multi-row inserts, in transactions
/// of a million rows.
async fn load_sqlite(g: &Generator, cases: u64, conn: &mut sqlx::SqliteConnection) -> anyhow::Result<()> {
    conn.execute(format!("CREATE TABLE facts (id INTEGER PRIMARY KEY, {COLUMNS})").as_str()).await?;
    conn.execute(
        "CREATE TABLE dispatches (case_id INTEGER NOT NULL, department INTEGER NOT NULL, \
         accepted SMALLINT NOT NULL, returned SMALLINT NOT NULL)",
    )
    .await?;
    const ROWS: usize = 100;
    let values = |n: usize, columns: usize| {
        let one = format!("({})", vec!["?"; columns].join(", "));
        vec![one; n].join(", ")
    };
    let facts_sql = |n| format!("INSERT INTO facts VALUES {}", values(n, FACT_COLUMNS));
    let dispatch_sql = |n| format!("INSERT INTO dispatches VALUES {}", values(n, 4));
    let full_facts = facts_sql(ROWS);
    let full_dispatches = dispatch_sql(ROWS);
    let mut progress = crate::progress::ProgressLine::default();
    let started = Instant::now();
    let mut rows: Vec<Row> = Vec::with_capacity(ROWS);
    let mut dispatches: Vec<(i64, DispatchRow)> = Vec::with_capacity(2 * ROWS);
    conn.execute("BEGIN").await?;
    for id in 1..=cases {
        let case = g.case(id as i64, None, g.until);
        rows.push(case.row);
        dispatches.extend(case.dispatches.iter().map(|d| (id as i64, *d)));
        let last = id == cases;
        if rows.len() == ROWS || last {
            let sql = if rows.len() == ROWS { full_facts.clone() } else { facts_sql(rows.len()) };
            let mut q = sqlx::query(&sql);
            for r in rows.drain(..) {
                q = q
                    .bind(r.id)
                    .bind(r.received_at)
                    .bind(r.category.map(i64::from))
                    .bind(r.matter.map(i64::from))
                    .bind(i64::from(r.county))
                    .bind(i64::from(r.township))
                    .bind(i64::from(r.community))
                    .bind(i64::from(r.grid))
                    .bind((r.lead != 0).then_some(i64::from(r.lead)))
                    .bind(i64::from(r.channel))
                    .bind(i64::from(r.status))
                    .bind(i64::from(r.rating))
                    .bind(i64::from(u8::from(r.open)))
                    .bind(r.due)
                    .bind(i64::from(r.done))
                    .bind(i64::from(r.late))
                    .bind(i64::from(r.reworks))
                    .bind(i64::from(r.returns))
                    .bind(i64::from(r.extensions))
                    .bind(i64::from(u8::from(r.dispatched)))
                    .bind(i64::from(r.handled_s));
            }
            q.execute(&mut *conn).await?;
            let rate = id as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.show("SQLite rows", id as usize, cases as usize, &format!("{rate:.0} rows/s"));
        }
        while dispatches.len() >= ROWS || (last && !dispatches.is_empty()) {
            let n = dispatches.len().min(ROWS);
            let sql = if n == ROWS { full_dispatches.clone() } else { dispatch_sql(n) };
            let mut q = sqlx::query(&sql);
            for (case_id, d) in dispatches.drain(..n) {
                q = q
                    .bind(case_id)
                    .bind(i64::from(d.department))
                    .bind(i64::from(d.accepted))
                    .bind(i64::from(u8::from(d.returned)));
            }
            q.execute(&mut *conn).await?;
        }
        if id % 1_000_000 == 0 && !last {
            conn.execute("COMMIT; BEGIN").await?;
        }
    }
    conn.execute("COMMIT").await?;
    Ok(())
}

/// Loads the same rows into PostgreSQL with COPY, facts and dispatches on two connections side by side.
async fn load_postgres(
    g: &Generator,
    cases: u64,
    conn: &mut sqlx::PgConnection,
    second: &mut sqlx::PgConnection,
) -> anyhow::Result<()> {
    conn.execute(format!("CREATE TABLE facts (id BIGINT NOT NULL, {COLUMNS})").as_str()).await?;
    conn.execute(
        "CREATE TABLE dispatches (case_id BIGINT NOT NULL, department INTEGER NOT NULL, \
         accepted SMALLINT NOT NULL, returned SMALLINT NOT NULL)",
    )
    .await?;
    let mut facts = conn.copy_in_raw("COPY facts FROM STDIN").await?;
    let mut dispatches = second.copy_in_raw("COPY dispatches FROM STDIN").await?;
    let mut progress = crate::progress::ProgressLine::default();
    let started = Instant::now();
    let (mut rows, mut sent) = (String::with_capacity(1 << 21), String::with_capacity(1 << 20));
    for id in 1..=cases {
        let case = g.case(id as i64, None, g.until);
        push_row_text(&mut rows, &case.row);
        for d in &case.dispatches {
            use std::fmt::Write as _;
            let _ = writeln!(sent, "{id}\t{}\t{}\t{}", d.department, d.accepted, u8::from(d.returned));
        }
        if rows.len() > 1 << 20 || id == cases {
            facts.send(std::mem::take(&mut rows).into_bytes()).await?;
            dispatches.send(std::mem::take(&mut sent).into_bytes()).await?;
            let rate = id as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.show("PostgreSQL rows", id as usize, cases as usize, &format!("{rate:.0} rows/s"));
        }
    }
    facts.finish().await?;
    dispatches.finish().await?;
    conn.execute("ALTER TABLE facts ADD PRIMARY KEY (id)").await?;
    Ok(())
}

/// Where the PostgreSQL side runs: a throwaway cluster, or a schema in the given database.
#[derive(Debug)]
enum Postgres {
    Cluster(PgCluster),
    Url(String),
}

impl Postgres {
    fn url(&self) -> String {
        match self {
            Postgres::Cluster(cluster) => cluster.url("postgres"),
            Postgres::Url(url) => url.clone(),
        }
    }

    fn options(&self) -> anyhow::Result<PgConnectOptions> {
        Ok(match self {
            Postgres::Cluster(cluster) => cluster.options("postgres"),
            Postgres::Url(url) => PgConnectOptions::from_str(url).context("parsing --database")?,
        })
    }
}

/// SQL measurements of one database.
#[derive(Debug, Default)]
struct SqlRun {
    load_s: f64,
    index_s: f64,
    medians: Vec<Duration>,
    samples: Vec<Duration>,
    checked: usize,
}

/// What every SQL database is asked, and what it must answer.
struct Exam<'a> {
    generator: &'a Generator,
    mix: &'a [Question],
    /// The projection's answers, in the order of `mix`.
    expected: &'a [Answer],
    now: i64,
    /// Timed rounds of the mix.
    rounds: usize,
}

/// After a load that took `load_s`: builds the indexes and the planner's statistics (`statistics`, timed
/// together as `index_s`), checks every answer against the projection's (untimed), times the rounds of the
/// mix, and closes the database.
async fn ask_sql(mut db: Db, statistics: &[&str], load_s: f64, exam: &Exam<'_>) -> anyhow::Result<SqlRun> {
    let Exam { generator: g, mix, expected, now, rounds } = *exam;
    let indexing = Instant::now();
    for statement in INDEXES.iter().chain(statistics) {
        db.execute(statement).await?;
    }
    let index_s = indexing.elapsed().as_secs_f64();
    let backend = db.backend();
    let label = if backend == Backend::Sqlite { "SQLite" } else { "PostgreSQL" };
    let statements: Vec<Vec<Statement>> =
        mix.iter().map(|q| sql_for(g, &q.ask, backend, now)).collect::<anyhow::Result<_>>()?;
    let mut run = SqlRun::default();
    for ((question, sql), want) in mix.iter().zip(&statements).zip(expected) {
        let mut results = Vec::new();
        for (text, kinds) in sql {
            results.push(db.fetch(text, kinds).await?);
        }
        let got = sql_answer(g, &question.ask, &results)?;
        anyhow::ensure!(
            got == *want,
            "{label} and the projection disagree on {}: {}",
            question.name,
            want.first_difference(&got)
        );
        run.checked += 1;
        eprintln!("{label}: {} agrees ({} groups)", question.name, got.len());
    }
    let mut per_question: Vec<Vec<Duration>> = vec![Vec::new(); mix.len()];
    for _ in 0..rounds {
        for (k, sql) in statements.iter().enumerate() {
            let started = Instant::now();
            for (text, kinds) in sql {
                std::hint::black_box(db.fetch(text, kinds).await?);
            }
            per_question[k].push(started.elapsed());
        }
    }
    for mut samples in per_question {
        samples.sort();
        run.medians.push(samples.get(samples.len() / 2).copied().unwrap_or_default());
        run.samples.extend(samples);
    }
    run.samples.sort();
    run.load_s = load_s;
    run.index_s = index_s;
    db.close().await?;
    Ok(run)
}

// ---------------------------------------------------------------------------------------------------------
// The run.

#[derive(Debug, Default)]
struct Rebuilt {
    events: i64,
    cases: usize,
    seconds: f64,
    load_s: f64,
}

/// Simulated histories bulk-loaded into a fresh store, then the projection rebuilt from its log.
async fn rebuild(database: Option<&str>, dir: &Path, cases: u64) -> anyhow::Result<(City, Rebuilt)> {
    let fresh = FreshStore::open(database, dir, "analytics", WriteOptions::default()).await?;
    let store = fresh.store.clone();
    let city = install_city(store.as_ref()).await?;
    let world = Arc::new(shiyu_sim::simulate::load_world(store.as_ref(), Rules::default(), 2026).await?);
    let privacy: Arc<dyn Privacy> = Arc::new(DeploymentPrivacy(shiyu_auth::Sealer::new(&[(
        "bench".into(),
        shiyu_auth::Sealer::generate_key(),
    )])?));
    let run = SimulateOptions { cases, days: 365, seed: 1, until: crate::clock::now(), first_id: 1 };
    let loading = Instant::now();
    let mut progress = crate::progress::SimulationProgress::new(&run);
    let (tally, _) =
        shiyu_sim::simulate::simulate(store.clone(), world, privacy, run, |step| progress.show(step)).await?;
    let load_s = loading.elapsed().as_secs_f64();
    let events = store.last_seq().await?;
    let started = Instant::now();
    let analytics = Analytics::rebuild(store.as_ref()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let projected = analytics.read().len();
    anyhow::ensure!(projected as u64 == tally.cases, "rebuilt {projected} of {} cases", tally.cases);
    drop(analytics);
    drop(store);
    fresh.close().await?;
    Ok((city, Rebuilt { events, cases: projected, seconds, load_s }))
}

fn ms(d: Duration) -> f64 {
    round3(d.as_secs_f64() * 1000.0)
}

/// Times `rounds` rounds of the mix (more if they take less than `at_least`), each question under the read
/// lock.
fn ask_rounds(
    shared: &RwLock<Projection>,
    mix: &[Question],
    now: Timestamp,
    rounds: usize,
    at_least: Duration,
) -> Vec<Vec<Duration>> {
    let mut per_question: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); mix.len()];
    let started = Instant::now();
    let mut round = 0;
    while round < rounds || started.elapsed() < at_least {
        round += 1;
        for (k, question) in mix.iter().enumerate() {
            let started = Instant::now();
            let projection = match shared.read() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let answer = ask_projection(&projection, &question.ask, now);
            drop(projection);
            per_question[k].push(started.elapsed());
            // As the API does after releasing the lock.
            let body = match &answer {
                Raw::Groups(groups) => serde_json::to_vec(groups),
                Raw::Units(units) => serde_json::to_vec(units),
            };
            std::hint::black_box(body.map(|b| b.len()).unwrap_or_default());
        }
    }
    per_question
}

#[derive(Debug)]
struct Timings {
    p50: f64,
    p99: f64,
    max: f64,
    medians: Vec<Duration>,
    /// p99 and max of the group-by and top-N questions alone (without the evaluations).
    group_p99: f64,
    group_max: f64,
}

fn timings(per_question: &[Vec<Duration>], mix: &[Question]) -> Timings {
    let mut all: Vec<Duration> = per_question.iter().flatten().copied().collect();
    all.sort();
    let mut groups: Vec<Duration> = per_question
        .iter()
        .zip(mix)
        .filter(|(_, q)| !matches!(q.ask, Ask::Evaluate { .. }))
        .flat_map(|(s, _)| s.iter().copied())
        .collect();
    groups.sort();
    let medians = per_question
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s.sort();
            s.get(s.len() / 2).copied().unwrap_or_default()
        })
        .collect();
    Timings {
        p50: percentile_ms(&all, 500),
        p99: percentile_ms(&all, 990),
        max: all.last().copied().map_or(0.0, ms),
        medians,
        group_p99: percentile_ms(&groups, 990),
        group_max: groups.last().copied().map_or(0.0, ms),
    }
}

#[derive(Debug, Default)]
struct Ingested {
    cases: u64,
    seconds: f64,
    lock_held_max: Duration,
    /// How long each batch waited for the write lock, sorted.
    lock_waits: Vec<Duration>,
}

/// Folds new cases in at `INGEST_PER_S` through the write lock until `stop`, as the server's follower
/// does with each page of the log: events made outside the lock, applied under it.
fn ingest(shared: &RwLock<Projection>, g: &Generator, first_id: i64, stop: &AtomicBool) -> Ingested {
    let started = Instant::now();
    let mut done = 0u64;
    let mut held = Duration::ZERO;
    let mut waited = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let due = (started.elapsed().as_secs_f64() * INGEST_PER_S as f64) as u64;
        if due > done {
            let batch: Vec<(CaseId, Vec<Event>)> = (done..due)
                .map(|k| {
                    let id = first_id + k as i64;
                    let case = g.case(id, Some(g.until + (k as i64) * 1_000 / INGEST_PER_S as i64), i64::MAX);
                    (CaseId(id), g.events(&case))
                })
                .collect();
            let waiting = Instant::now();
            let mut projection = match shared.write() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            let locked = Instant::now();
            for (id, events) in &batch {
                for event in events {
                    projection.apply_event(*id, event);
                }
            }
            drop(projection);
            held = held.max(locked.elapsed());
            waited.push(locked.duration_since(waiting));
            done = due;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    waited.sort();
    Ingested {
        cases: done,
        seconds: started.elapsed().as_secs_f64(),
        lock_held_max: held,
        lock_waits: waited,
    }
}

async fn start_postgres(options: &AnalyticsOptions) -> Option<Postgres> {
    if !options.postgres {
        return None;
    }
    if let Some(url) = &options.database {
        return Some(Postgres::Url(url.clone()));
    }
    match tokio::task::spawn_blocking(|| PgCluster::start(false)).await {
        Ok(Ok(cluster)) => Some(Postgres::Cluster(cluster)),
        Ok(Err(error)) => {
            eprintln!("no PostgreSQL for the comparison: {error}");
            None
        }
        Err(error) => {
            eprintln!("no PostgreSQL for the comparison: {error}");
            None
        }
    }
}

pub async fn run(options: &AnalyticsOptions) -> anyhow::Result<Report> {
    let bench_started = Instant::now();
    let until = until()?;
    let now = Timestamp(until);
    let postgres = start_postgres(options).await;

    // 1. The rebuild from a real log.
    eprintln!("rebuild: {} simulated cases into SQLite", options.rebuild_cases);
    let (city, sqlite_rebuild) = rebuild(None, &options.dir, options.rebuild_cases).await?;
    let postgres_rebuild = match &postgres {
        Some(pg) => {
            eprintln!("rebuild: {} simulated cases into PostgreSQL", options.rebuild_cases);
            Some(rebuild(Some(&pg.url()), &options.dir, options.rebuild_cases).await?.1)
        }
        None => None,
    };

    // 2. The facts, folded into the projection.
    let generator = Generator::new(&city, options.cases, until)?;
    let folding = Instant::now();
    let (projection, events) = tokio::task::block_in_place(|| fold(&generator, options.cases));
    let fold_s = folding.elapsed().as_secs_f64();
    let held = projection.len();
    anyhow::ensure!(held as u64 == options.cases, "the projection holds {held} of {} cases", options.cases);
    let bytes_per_case = round3(projection.bytes() as f64 / held.max(1) as f64);
    let mix = questions(&city, until)?;

    // 3. The questions, idle and while ingesting.
    let expected: Vec<Answer> =
        mix.iter().map(|q| normalise(&ask_projection(&projection, &q.ask, now), &q.ask)).collect();
    let shared = RwLock::new(projection);
    let idle = tokio::task::block_in_place(|| {
        timings(&ask_rounds(&shared, &mix, now, options.rounds, Duration::ZERO), &mix)
    });
    let stop = AtomicBool::new(false);
    let (busy, ingested) = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let ingester = scope.spawn(|| ingest(&shared, &generator, options.cases as i64 + 1, &stop));
            // Let the ingester get going before the first question.
            std::thread::sleep(Duration::from_millis(200));
            let busy = timings(&ask_rounds(&shared, &mix, now, options.rounds, INGEST_AT_LEAST), &mix);
            stop.store(true, Ordering::Relaxed);
            let ingested = ingester.join().unwrap_or_default();
            (busy, ingested)
        })
    });
    let evaluate_all = {
        let projection = match shared.read() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let started = Instant::now();
        std::hint::black_box(projection.evaluate(
            &Filter::default(),
            Unit::Department,
            &Weights::default(),
            now,
        ));
        started.elapsed()
    };
    drop(shared);

    let exam = Exam {
        generator: &generator,
        mix: &mix,
        expected: &expected,
        now: until,
        rounds: options.sql_rounds,
    };

    // 4. SQLite.
    std::fs::create_dir_all(&options.dir)?;
    let folder = tempfile::Builder::new().prefix("bench-analytics-sql-").tempdir_in(&options.dir)?;
    let sqlite = {
        let connect = SqliteConnectOptions::new()
            .filename(folder.path().join("facts.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off)
            .pragma("cache_size", "-262144");
        let mut conn = connect.connect().await?;
        let loading = Instant::now();
        load_sqlite(&generator, options.cases, &mut conn).await?;
        let load_s = loading.elapsed().as_secs_f64();
        ask_sql(Db::Sqlite(conn), &["ANALYZE"], load_s, &exam).await?
    };
    let sqlite_bytes = std::fs::metadata(folder.path().join("facts.db")).map_or(0, |m| m.len());
    drop(folder);

    // 5. PostgreSQL.
    let postgres_run = match &postgres {
        Some(pg) => {
            let schema = format!("shiyu_bench_analytics_facts_{}", std::process::id());
            let base = pg.options()?;
            let mut admin = base.connect().await.context("connecting to PostgreSQL")?;
            admin
                .execute(format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}").as_str())
                .await?;
            let scoped = base.options([("search_path", schema.as_str())]);
            let mut conn = scoped.connect().await?;
            let mut second = scoped.connect().await?;
            conn.execute("SET maintenance_work_mem = '512MB'").await?;
            conn.execute("SET work_mem = '64MB'").await?;
            let loading = Instant::now();
            load_postgres(&generator, options.cases, &mut conn, &mut second).await?;
            let load_s = loading.elapsed().as_secs_f64();
            second.close().await?;
            let statistics = ["VACUUM ANALYZE facts", "VACUUM ANALYZE dispatches"];
            let run = ask_sql(Db::Postgres(conn), &statistics, load_s, &exam).await?;
            admin.execute(format!("DROP SCHEMA {schema} CASCADE").as_str()).await?;
            admin.close().await?;
            Some(run)
        }
        None => None,
    };
    let peak = peak_rss_mb();
    drop(postgres);

    // The report.
    let mix_ms = |medians: &[Duration]| medians.iter().map(|d| d.as_secs_f64() * 1000.0).sum::<f64>();
    let projection_mix = mix_ms(&idle.medians);
    let ratios = |run: &SqlRun| {
        let whole = mix_ms(&run.medians) / projection_mix.max(1e-9);
        let worst = run
            .medians
            .iter()
            .zip(&idle.medians)
            .map(|(sql, ours)| sql.as_secs_f64() / ours.as_secs_f64().max(1e-9))
            .fold(f64::INFINITY, f64::min);
        (round3(whole), round3(worst))
    };
    let mut report = Report::new("analytics");
    report.set("cases", options.cases);
    report.set("events", events);
    report.set("fold_s", round3(fold_s));
    report.set("fold_events_per_s", (events as f64 / fold_s.max(1e-9)).round());
    report.set("bytes_per_case", bytes_per_case);
    report.set("questions", mix.len() as u64);
    report.set("rounds", options.rounds as u64);
    report.set("query_p50_ms", idle.p50);
    report.set("query_p99_ms", idle.p99);
    report.set("query_max_ms", idle.max);
    report.set("query_mix_ms", round3(projection_mix));
    report.set("query_p99_ms_group_by", idle.group_p99);
    report.set("query_max_ms_group_by", idle.group_max);
    report.set("query_p50_ms_while_ingesting", busy.p50);
    report.set("query_p99_ms_while_ingesting", busy.p99);
    report.set("query_max_ms_while_ingesting", busy.max);
    report.set("query_p99_ms_group_by_while_ingesting", busy.group_p99);
    report.set("ingested_cases", ingested.cases);
    report.set("ingest_cases_per_s", (ingested.cases as f64 / ingested.seconds.max(1e-9)).round());
    report.set("ingest_lock_held_max_ms", ms(ingested.lock_held_max));
    report.set("ingest_lock_wait_p50_ms", percentile_ms(&ingested.lock_waits, 500));
    report.set("ingest_lock_wait_p99_ms", percentile_ms(&ingested.lock_waits, 990));
    report.set("ingest_lock_wait_max_ms", ingested.lock_waits.last().copied().map_or(0.0, ms));
    report.set("evaluate_departments_all_history_ms", ms(evaluate_all));
    report.set("sqlite_load_s", round3(sqlite.load_s));
    report.set("sqlite_index_s", round3(sqlite.index_s));
    report.set("sqlite_mb", round3(sqlite_bytes as f64 / 1_048_576.0));
    report.set("sqlite_answers_checked", sqlite.checked as u64);
    report.set("sqlite_query_p50_ms", percentile_ms(&sqlite.samples, 500));
    report.set("sqlite_mix_ms", round3(mix_ms(&sqlite.medians)));
    let (whole, worst) = ratios(&sqlite);
    report.set("ratio_vs_sqlite", whole);
    report.set("ratio_vs_sqlite_worst_question", worst);
    match &postgres_run {
        Some(run) => {
            report.set("postgres_load_s", round3(run.load_s));
            report.set("postgres_index_s", round3(run.index_s));
            report.set("postgres_answers_checked", run.checked as u64);
            report.set("postgres_query_p50_ms", percentile_ms(&run.samples, 500));
            report.set("postgres_mix_ms", round3(mix_ms(&run.medians)));
            let (whole, worst) = ratios(run);
            report.set("ratio_vs_postgres", whole);
            report.set("ratio_vs_postgres_worst_question", worst);
        }
        None => {
            report.set("postgres_query_p50_ms", Value::Null);
            report.set("ratio_vs_postgres", Value::Null);
        }
    }
    report.set("rebuild_cases", sqlite_rebuild.cases as u64);
    report.set("rebuild_events", sqlite_rebuild.events);
    report.set("rebuild_s", round3(sqlite_rebuild.seconds));
    report.set(
        "rebuild_events_per_s",
        (sqlite_rebuild.events as f64 / sqlite_rebuild.seconds.max(1e-9)).round(),
    );
    report.set("rebuild_load_s", round3(sqlite_rebuild.load_s));
    if let Some(r) = &postgres_rebuild {
        report.set("rebuild_s_postgres", round3(r.seconds));
        report.set("rebuild_events_per_s_postgres", (r.events as f64 / r.seconds.max(1e-9)).round());
    }
    let mut per_question = Map::new();
    for (k, question) in mix.iter().enumerate() {
        let median = |run: &Option<&SqlRun>| run.and_then(|r| r.medians.get(k)).map(|d| ms(*d));
        per_question.insert(
            question.name.to_string(),
            json!({
                "groups": expected[k].len(),
                "projection_p50_ms": ms(idle.medians[k]),
                "projection_p50_ms_while_ingesting": ms(busy.medians[k]),
                "sqlite_p50_ms": median(&Some(&sqlite)),
                "postgres_p50_ms": median(&postgres_run.as_ref()),
            }),
        );
    }
    report.set("per_question", Value::Object(per_question));
    report.set("peak_rss_mb", peak);
    report.set("bench_s", round3(bench_started.elapsed().as_secs_f64()));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(cases: u64) -> (City, Generator) {
        let city = shiyu_sim::city::nantong_with_a_grid_per_community().unwrap();
        let g = Generator::new(&city, cases, until().unwrap()).unwrap();
        (city, g)
    }

    #[test]
    fn arrivals_follow_ids_and_span_ten_years() {
        let (_, g) = generator(20_000);
        let times: Vec<i64> = (1..=20_000).map(|id| g.case(id, None, g.until).row.received_at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "received times grow with ids");
        assert!(times[0] >= g.first && times[0] < g.first + 5 * DAY_MS);
        assert!(*times.last().unwrap() < g.until && *times.last().unwrap() > g.until - 5 * DAY_MS);
    }

    #[test]
    fn the_rows_say_what_the_projection_says() {
        let (city, g) = generator(3_000);
        let (projection, events) = fold(&g, 3_000);
        assert!(events > 3_000 * 5, "full histories: {events} events");
        let rows: Vec<Row> = (1..=3_000).map(|id| g.case(id, None, g.until).row).collect();
        let closed = rows.iter().filter(|r| r.status == status_index(Status::Closed)).count();
        assert!((2_300..2_800).contains(&closed), "about 85% closed: {closed}");
        for (row, r) in rows.iter().enumerate() {
            assert_eq!(projection.received_at[row], r.received_at);
            assert_eq!(projection.status[row], r.status, "case {}", r.id);
            assert_eq!(projection.done[row], r.done, "case {}", r.id);
            assert_eq!(projection.late[row], r.late, "case {}", r.id);
            assert_eq!(projection.lead[row], r.lead, "case {}", r.id);
            assert_eq!(projection.rating[row], r.rating, "case {}", r.id);
            assert_eq!(projection.ended[row][3], r.handled_s, "case {}", r.id);
        }
        // Every question can be put to the projection.
        for q in questions(&city, g.until).unwrap() {
            let answer = normalise(&ask_projection(&projection, &q.ask, Timestamp(g.until)), &q.ask);
            assert!(answer.len() > 0, "{} has an answer", q.name);
        }
    }

    #[test]
    fn sql_of_a_question_names_the_filter() {
        let (city, g) = generator(10);
        let mix = questions(&city, g.until).unwrap();
        let top = sql_for(&g, &mix[6].ask, Backend::Sqlite, 0).unwrap();
        assert!(top[0].0.contains("ORDER BY 2 DESC, 1 LIMIT 10"));
        let daily = sql_for(&g, &mix[10].ask, Backend::Postgres, 0).unwrap();
        assert!(daily[0].0.contains("category = 0"), "{}", daily[0].0);
        let evaluate = sql_for(&g, &mix[7].ask, Backend::Postgres, 0).unwrap();
        assert_eq!(evaluate.len(), 3);
    }
}
