//! Case histories at any scale: reports arriving with the city's daily rhythm, concentrated at hotspots, from
//! a realistic mix of channels, each carried through the closed loop by the people whose job it is — with
//! `decide` and `apply`, so every history is one the platform itself could have written.
//!
//! [`World`] is the city as the simulator needs it (places, cast, catalog); [`Simulation`] produces cases in
//! id order, a chunk at a time, so memory stays flat however many are asked for. [`Simulation::plan_step`]
//! is also what keeps the live demo moving: it says what happens next to an open case.

use crate::catalog::{self, Hotspot, MatterSpec};
use crate::rng::{cumulative, Rng};
use serde::Serialize;
use shiyu_domain::{
    apply, chain_to, decide, route_to_departments, verifier_note, Action, Actor, Basis, CaseId, CaseState,
    Channel, Command, Department, DepartmentId, Directory, DomainError, Event, GeoPoint, Jurisdiction,
    JurisdictionId, Level, Matter, NewCase, Reporter, Role, Route, Rules, Scope, Status, Timestamp, User,
};
use shiyu_geo::{BBox, Point, Shape};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt;

/// What the simulator needs from the deployment: sealing contact details with its key, and tracking codes
/// in its format. The binary provides the real ones; tests may use anything that keeps codes unique.
pub trait Privacy: Send + Sync {
    fn seal(&self, plain: &str) -> Option<String>;
    fn tracking_code(&self, at: Timestamp) -> String;
}

/// Why a simulation stopped.
#[derive(Debug)]
pub enum SimError {
    /// The city lacks something the simulator needs (no grids or communities, no operators …).
    City(String),
    /// `decide` refused a step: a bug in the simulator's script, reported with the case.
    Domain { case: CaseId, action: &'static str, error: DomainError },
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::City(why) => write!(f, "the city cannot be simulated: {why}"),
            SimError::Domain { case, action, error } => {
                write!(f, "case {}: the domain refused `{action}`: {error}", case.0)
            }
        }
    }
}

impl std::error::Error for SimError {}

/// Who plays each part, found by role and scope among any city's users.
#[derive(Debug, Default)]
pub struct Cast {
    operators: HashMap<JurisdictionId, Actor>,
    handlers: HashMap<DepartmentId, Actor>,
    grid_workers: HashMap<JurisdictionId, (Actor, User)>,
    hotline: Vec<Actor>,
    citizens: Vec<Actor>,
}

fn actor_of(user: &User) -> Actor {
    Actor::User { user: user.id, role: user.role, scope: user.scope }
}

impl Cast {
    pub fn of(users: &[User]) -> Cast {
        let mut cast = Cast::default();
        // The first user of a role at a place plays it, as routing picks the first grid worker.
        for user in users {
            match (user.role, user.scope) {
                (Role::Operator, Scope::Jurisdiction(j)) => {
                    cast.operators.entry(j).or_insert_with(|| actor_of(user));
                }
                (Role::DepartmentHandler, Scope::Department(d)) => {
                    cast.handlers.entry(d).or_insert_with(|| actor_of(user));
                }
                (Role::GridWorker, Scope::Jurisdiction(j)) => {
                    cast.grid_workers.entry(j).or_insert_with(|| (actor_of(user), user.clone()));
                }
                (Role::HotlineAgent, _) => cast.hotline.push(actor_of(user)),
                // The demo's own citizen is left to the person trying the demo: their reports are theirs.
                (Role::Citizen, _) if user.username != crate::city::DEMO_CITIZEN => {
                    cast.citizens.push(actor_of(user))
                }
                _ => {}
            }
        }
        cast
    }
}

/// A grid (or, in a city without a map, a community) where reports happen.
#[derive(Debug)]
pub struct Place {
    pub id: JurisdictionId,
    /// City first, down to the place.
    pub path: Vec<JurisdictionId>,
    /// The lowest command center above the place: it receives the place's reports.
    pub center: JurisdictionId,
    /// How people name it: 崇川区 + 和平桥街道 + 桃坞路社区.
    pub county: String,
    pub township: String,
    pub community: String,
    pub hotspot: Option<Hotspot>,
    /// How many reports it produces relative to others.
    pub weight: u32,
    /// Its outline and the outline's box, in which report locations are drawn.
    outline: Option<(Shape, BBox)>,
    /// Who checks the work done here, as a dispatch's basis names them (`verifier_note`).
    verifier_note: String,
}

/// Matters that cameras and sensors detect on their own.
const SENSED: &[&str] = &[
    "gas_leak",
    "power_outage",
    "water_outage",
    "missing_manhole_cover",
    "noise_nuisance",
    "construction_noise",
    "river_pollution",
    "exposed_garbage",
    "street_vending",
];

/// A city's reference data and outlines (may be empty), as read from a store.
#[derive(Debug, Default)]
pub struct CityData {
    pub jurisdictions: Vec<Jurisdiction>,
    pub departments: Vec<Department>,
    pub matters: Vec<Matter>,
    pub users: Vec<User>,
    pub shapes: HashMap<JurisdictionId, Shape>,
}

impl CityData {
    /// What the simulator needs of a city built in memory, without outlines.
    pub fn of(city: &crate::city::City) -> CityData {
        CityData {
            jurisdictions: city.jurisdictions.clone(),
            departments: city.departments.clone(),
            matters: city.matters.clone(),
            users: city.users.clone(),
            shapes: HashMap::new(),
        }
    }
}

/// The city as the simulator sees it.
#[derive(Debug)]
pub struct World {
    pub rules: Rules,
    jurisdictions: HashMap<JurisdictionId, Jurisdiction>,
    departments: Vec<Department>,
    matters: Vec<Matter>,
    specs: Vec<Option<&'static MatterSpec>>,
    sensed: Vec<bool>,
    /// Cumulative matter weights, one table for places without a hotspot and one per hotspot kind.
    matter_tables: Vec<Vec<u64>>,
    places: Vec<Place>,
    place_table: Vec<u64>,
    cast: Cast,
}

/// A place as a caller names it. Official names of farms and development zones start with the city and
/// county (南通市海门区三厂苗圃) and their statistical communities are 虚拟社区 or 虚拟生活区; nobody says either
/// aloud, and the description already has the county in its address.
fn spoken_name(official: &str, county: &str) -> String {
    let name = official.strip_prefix("南通市").unwrap_or(official);
    let name = name.strip_prefix(county).unwrap_or(name);
    let name = name.replace("虚拟生活区", "生活区").replace("虚拟社区", "社区");
    if let Some(stem) = name.strip_suffix("村委会") {
        format!("{stem}村")
    } else {
        name.strip_suffix("居委会").unwrap_or(&name).to_string()
    }
}

fn hotspot_index(hotspot: Option<Hotspot>) -> usize {
    hotspot.map_or(0, |h| 1 + Hotspot::ALL.iter().position(|k| *k == h).unwrap_or(0))
}

impl World {
    /// Builds the simulator's view of a city from its reference data and outlines (GeoJSON-parsed shapes by
    /// jurisdiction; may be empty). `urban` names the counties whose places report more (the old town).
    pub fn new(rules: Rules, city: CityData, urban: &[&str], seed: u64) -> Result<World, SimError> {
        let CityData { jurisdictions, departments, matters, users, mut shapes } = city;
        let by_id: HashMap<JurisdictionId, Jurisdiction> =
            jurisdictions.iter().map(|j| (j.id, j.clone())).collect();
        let has_grids = jurisdictions.iter().any(|j| j.level == Level::Grid);
        let place_level = if has_grids { Level::Grid } else { Level::Community };
        let mut rng = Rng::new(seed ^ 0x5EED_C17E);
        let mut places = Vec::new();
        for j in jurisdictions.iter().filter(|j| j.level == place_level) {
            let Some(path) = chain_to(j.id, |id| by_id.get(&id)) else { continue };
            let at = |level: Level| path.iter().filter_map(|id| by_id.get(id)).find(|p| p.level == level);
            let (Some(county), Some(township), Some(community)) =
                (at(Level::County), at(Level::Township), at(Level::Community))
            else {
                continue;
            };
            let Some(center) = path
                .iter()
                .rev()
                .find(|id| by_id.get(id).is_some_and(|p| p.level.has_command_center()))
                .copied()
            else {
                continue;
            };
            let is_urban = urban.contains(&county.code.as_str());
            // About a third of places have something that draws reports; the old town has more of the kinds
            // that come with dense housing.
            let hotspot = match rng.below(100) {
                n if n < 12 => Some(Hotspot::OldResidential),
                n if n < 19 => Some(Hotspot::Market),
                n if n < 25 => Some(Hotspot::School),
                n if n < 30 => Some(Hotspot::Construction),
                n if n < 34 && !is_urban => Some(Hotspot::IndustrialPark),
                n if n < 36 => Some(Hotspot::IndustrialPark),
                _ => None,
            };
            let weight = if is_urban { 3 } else { 1 } * if hotspot.is_some() { 4 } else { 2 };
            places.push(Place {
                id: j.id,
                path,
                center,
                county: county.name.clone(),
                township: spoken_name(&township.name, &county.name),
                community: spoken_name(&community.name, &county.name),
                hotspot,
                weight,
                outline: shapes.remove(&j.id).map(|shape| {
                    let bbox = shape.bbox();
                    (shape, bbox)
                }),
                verifier_note: String::new(),
            });
        }
        if places.is_empty() {
            return Err(SimError::City("no grids or communities under a township".into()));
        }
        if matters.is_empty() {
            return Err(SimError::City("the matter catalog is empty".into()));
        }
        let specs: Vec<Option<&'static MatterSpec>> =
            matters.iter().map(|m| catalog::MATTERS.iter().find(|s| s.code == m.code)).collect();
        let sensed = matters.iter().map(|m| SENSED.contains(&m.code.as_str())).collect();
        let matter_tables = std::iter::once(None)
            .chain(Hotspot::ALL.into_iter().map(Some))
            .map(|hotspot| {
                cumulative(specs.iter().map(|spec| match spec {
                    Some(spec) => {
                        let boost = hotspot.is_some_and(|h| spec.hotspots.contains(&h));
                        u64::from(spec.weight) * if boost { 5 } else { 1 }
                    }
                    None => 5,
                }))
            })
            .collect();
        let place_table = cumulative(places.iter().map(|p| u64::from(p.weight)));
        let cast = Cast::of(&users);
        for place in &mut places {
            place.verifier_note = verifier_note(cast.grid_workers.get(&place.id).map(|(_, user)| user));
        }
        Ok(World {
            rules,
            jurisdictions: by_id,
            departments,
            matters,
            specs,
            sensed,
            matter_tables,
            place_table,
            places,
            cast,
        })
    }

    pub fn places(&self) -> &[Place] {
        &self.places
    }

    pub fn matters(&self) -> &[Matter] {
        &self.matters
    }

    fn matter_index(&self, code: &str) -> Option<usize> {
        self.matters.iter().position(|m| m.code == code)
    }

    /// A matter for a report not yet classified: the first whose name its description mentions, or else
    /// the catalog's first (the operator corrects it at registration, as with a wrong guess on the phone).
    fn matter_index_in(&self, description: &str) -> usize {
        self.matters.iter().position(|m| description.contains(&m.name)).unwrap_or(0)
    }

    fn directory(&self) -> Directory<'_> {
        Directory { jurisdictions: &self.jurisdictions, departments: &self.departments, users: &[] }
    }

    /// A point inside the place, or none when the city has no map.
    fn point_in(&self, place: &Place, rng: &mut Rng) -> Option<GeoPoint> {
        let (shape, bbox) = place.outline.as_ref()?;
        for _ in 0..30 {
            let p = Point {
                lon: bbox.min.lon + (bbox.max.lon - bbox.min.lon) * rng.unit(),
                lat: bbox.min.lat + (bbox.max.lat - bbox.min.lat) * rng.unit(),
            };
            if shape.contains(p) {
                return Some(GeoPoint { lon: p.lon, lat: p.lat });
            }
        }
        None
    }

    fn describe(&self, place: &Place, matter: usize, rng: &mut Rng) -> (String, String) {
        let spec = self.specs[matter];
        let (named, spot) = self.spoken_place(place, spec, rng);
        let description = match spec.and_then(|s| rng.pick(s.templates)) {
            Some(template) => template.replacen("{place}", &named, 1),
            None => format!("{named}有{}问题，请尽快处理", self.matters[matter].name),
        };
        (description, format!("{}{}{}{spot}", place.county, place.township, place.community))
    }

    /// How a caller names where something is (the community, sometimes its street office, and a spot there),
    /// and the spot alone.
    fn spoken_place(
        &self,
        place: &Place,
        spec: Option<&MatterSpec>,
        rng: &mut Rng,
    ) -> (String, &'static str) {
        let spots = match (place.hotspot, spec) {
            (Some(h), Some(spec)) if spec.hotspots.contains(&h) => h.spots(),
            _ => catalog::GENERAL_SPOTS,
        };
        let spot = rng.pick(spots).copied().unwrap_or("附近");
        // Callers name the community; a third also name the street office, as they would to a stranger.
        let named = if rng.chance(30) {
            format!("{}{}{spot}", place.township, place.community)
        } else {
            format!("{}{spot}", place.community)
        };
        (named, spot)
    }

    /// `each` descriptions of every phrasing of every matter in the catalog, at places drawn as reports' are,
    /// with the phrasing each came from: what the classifier is measured on when whole phrasings are held
    /// out (`shiyu bench classifier`), since a held-out case that shares its phrasing with training cases
    /// says little about a report put in new words.
    pub fn phrased_descriptions(&self, each: usize, seed: u64) -> Vec<Phrased> {
        let mut rng = Rng::new(seed);
        let mut phrased = Vec::new();
        for (matter, spec) in self.matters.iter().zip(&self.specs) {
            let Some(spec) = spec else { continue };
            for (phrasing, template) in spec.templates.iter().enumerate() {
                for _ in 0..each {
                    let place = &self.places[rng.draw(&self.place_table)];
                    let (named, _) = self.spoken_place(place, Some(spec), &mut rng);
                    let text = template.replacen("{place}", &named, 1);
                    phrased.push(Phrased { matter: matter.code.clone(), phrasing, text });
                }
            }
        }
        phrased
    }
}

/// A description the simulator wrote: its matter's code, which of the matter's phrasings it follows, the text.
#[derive(Clone, Debug)]
pub struct Phrased {
    pub matter: String,
    pub phrasing: usize,
    pub text: String,
}

/// What the simulator was asked for.
#[derive(Clone, Copy, Debug)]
pub struct SimulateOptions {
    pub cases: u64,
    pub days: u32,
    pub seed: u64,
    /// Reports arrive during the `days` before this moment; histories stop here.
    pub until: Timestamp,
    /// The id the first simulated case gets (the store's next).
    pub first_id: i64,
}

/// A pattern injected for the warning models to find, with the cases that make it up.
#[derive(Clone, Debug, Serialize)]
pub struct Anomaly {
    pub kind: &'static str,
    pub description: String,
    pub start: String,
    pub end: String,
    pub county: String,
    pub place_code: String,
    pub matter: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_masked: Option<String>,
    pub cases: Vec<i64>,
}

/// The ground truth of one simulation.
#[derive(Clone, Debug, Serialize)]
pub struct Truth {
    pub seed: u64,
    pub cases: u64,
    pub first_id: i64,
    pub from: String,
    pub until: String,
    pub anomalies: Vec<Anomaly>,
}

/// Counts of what the simulation wrote, for its summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub cases: u64,
    pub events: u64,
}

/// One step of a case's life: who does what, when.
#[derive(Clone, Debug)]
pub struct Step {
    pub at: Timestamp,
    pub actor: Actor,
    pub command: Command,
}

/// What the script remembers about a case beyond its state.
#[derive(Clone, Debug, Default)]
pub struct Story {
    pub place: usize,
    pub matter: usize,
    pub merge_into: Option<CaseId>,
    /// The dispute that keeps coming back goes up a level.
    pub escalate: bool,
    /// Who gives the rating once the case is closed (the reporter, or the hotline calling back), if anyone.
    pub rater: Option<Actor>,
}

#[derive(Clone, Copy, Debug)]
struct Recent {
    id: CaseId,
    place: usize,
    matter: usize,
    received: Timestamp,
    open_until: Option<Timestamp>,
}

#[derive(Clone, Debug)]
struct Injected {
    at: Timestamp,
    anomaly: usize,
    place: usize,
    matter: usize,
    channel: Channel,
    phone: Option<String>,
    description: Option<String>,
    escalate: bool,
    /// Merge into the anomaly's first case, when it is still open.
    merge_with_first: bool,
}

/// The hourly rhythm of reports (Beijing time): quiet at night, peaks mid-morning and mid-afternoon, a
/// smaller one in the evening; weekends at 70%.
fn rhythm(at: Timestamp) -> f64 {
    const HOURS: [f64; 24] = [
        0.15, 0.08, 0.05, 0.04, 0.05, 0.12, 0.35, 0.8, 1.4, 1.9, 2.0, 1.7, 1.1, 1.2, 1.7, 1.9, 1.8, 1.5, 1.1,
        1.2, 1.1, 0.8, 0.5, 0.3,
    ];
    let (date, minute) = at.to_beijing();
    let weekend = date.weekday() >= 6;
    HOURS[(minute / 60) as usize % 24] * if weekend { 0.7 } else { 1.0 }
}

/// Arrival times in order: each hour gets its share of the cases by the rhythm, spread within the hour.
#[derive(Debug)]
struct Arrivals {
    start: Timestamp,
    hours: i64,
    hour: i64,
    total_weight: f64,
    weight_so_far: f64,
    cases: u64,
    issued: u64,
    pending: VecDeque<Timestamp>,
}

impl Arrivals {
    fn new(until: Timestamp, days: u32, cases: u64) -> Arrivals {
        let hours = i64::from(days.max(1)) * 24;
        let start = until.plus_minutes(-hours * 60);
        let total_weight = (0..hours).map(|h| rhythm(start.plus_minutes(h * 60))).sum();
        Arrivals {
            start,
            hours,
            hour: 0,
            total_weight,
            weight_so_far: 0.0,
            cases,
            issued: 0,
            pending: VecDeque::new(),
        }
    }

    /// The next arrival, without taking it.
    fn peek(&mut self, rng: &mut Rng) -> Option<Timestamp> {
        while self.pending.is_empty() {
            if self.hour >= self.hours {
                return None;
            }
            let hour_start = self.start.plus_minutes(self.hour * 60);
            self.weight_so_far += rhythm(hour_start);
            self.hour += 1;
            let due = if self.hour == self.hours {
                self.cases
            } else {
                ((self.weight_so_far / self.total_weight) * self.cases as f64) as u64
            };
            let count = due.saturating_sub(self.issued);
            self.issued += count;
            let mut times: Vec<Timestamp> =
                (0..count).map(|_| Timestamp(hour_start.0 + rng.below(3_600_000) as i64)).collect();
            times.sort();
            self.pending.extend(times);
        }
        self.pending.front().copied()
    }

    fn next(&mut self, rng: &mut Rng) -> Option<Timestamp> {
        self.peek(rng)?;
        self.pending.pop_front()
    }
}

/// Writes `cases` histories in id order, a chunk at a time.
pub struct Simulation<'w> {
    world: &'w World,
    privacy: &'w dyn Privacy,
    options: SimulateOptions,
    rng: Rng,
    arrivals: Arrivals,
    injected: VecDeque<Injected>,
    next_id: i64,
    recent: VecDeque<Recent>,
    routes: HashMap<(JurisdictionId, usize), Route>,
    truth: Truth,
    tally: Tally,
}

impl fmt::Debug for Simulation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation").field("next_id", &self.next_id).field("tally", &self.tally).finish()
    }
}

fn phone(rng: &mut Rng) -> String {
    format!("1{}{:09}", [3, 5, 7, 8, 9][rng.below(5)], rng.below(1_000_000_000))
}

impl<'w> Simulation<'w> {
    pub fn new(world: &'w World, privacy: &'w dyn Privacy, options: SimulateOptions) -> Simulation<'w> {
        let mut rng = Rng::new(options.seed);
        let from = options.until.plus_minutes(-i64::from(options.days.max(1)) * 24 * 60);
        let mut simulation = Simulation {
            world,
            privacy,
            options,
            arrivals: Arrivals::new(options.until, options.days, 0),
            injected: VecDeque::new(),
            next_id: options.first_id,
            recent: VecDeque::with_capacity(512),
            routes: HashMap::new(),
            truth: Truth {
                seed: options.seed,
                cases: options.cases,
                first_id: options.first_id,
                from: from.to_string(),
                until: options.until.to_string(),
                anomalies: Vec::new(),
            },
            tally: Tally::default(),
            rng: Rng::new(0),
        };
        let injected = simulation.plan_anomalies(&mut rng, from);
        let regular = options.cases.saturating_sub(injected.len() as u64);
        simulation.arrivals = Arrivals::new(options.until, options.days, regular);
        simulation.injected = injected.into();
        simulation.rng = rng;
        simulation
    }

    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn tally(&self) -> Tally {
        self.tally
    }

    fn place_where(&mut self, rng: &mut Rng, wanted: impl Fn(&Place) -> bool) -> usize {
        let candidates: Vec<usize> =
            (0..self.world.places.len()).filter(|&i| wanted(&self.world.places[i])).collect();
        match rng.pick(&candidates) {
            Some(&i) => i,
            None => rng.draw(&self.world.place_table),
        }
    }

    /// Four patterns the warning models must find, scaled to the simulation; none below 2,000 cases.
    fn plan_anomalies(&mut self, rng: &mut Rng, from: Timestamp) -> Vec<Injected> {
        let options = self.options;
        if options.cases < 2_000 {
            return Vec::new();
        }
        let span = options.until.0 - from.0;
        let moment = |rng: &mut Rng, lo: f64, hi: f64| {
            Timestamp(from.0 + (span as f64 * (lo + (hi - lo) * rng.unit())) as i64)
        };
        let world = self.world;
        let mut injected = Vec::new();
        let add_anomaly = |sim: &mut Simulation<'_>,
                           kind: &'static str,
                           description: String,
                           place: usize,
                           matter: usize,
                           phone: Option<&str>,
                           times: &[Timestamp]| {
            let place_ref = &world.places[place];
            let code = world.jurisdictions.get(&place_ref.id).map(|j| j.code.clone()).unwrap_or_default();
            sim.truth.anomalies.push(Anomaly {
                kind,
                description,
                start: times.first().map(|t| t.to_string()).unwrap_or_default(),
                end: times.last().map(|t| t.to_string()).unwrap_or_default(),
                county: place_ref.county.clone(),
                place_code: code,
                matter: world.matters[matter].code.clone(),
                phone_masked: phone.map(shiyu_auth::mask_phone),
                cases: Vec::new(),
            });
            sim.truth.anomalies.len() - 1
        };

        // A gas leak in an old residential block: many neighbours call within an hour and a half.
        if let Some(gas) = world.matter_index("gas_leak") {
            let place = self.place_where(rng, |p| p.hotspot == Some(Hotspot::OldResidential));
            let start = moment(rng, 0.6, 0.9);
            let count = 8 + rng.below(7);
            let mut times: Vec<Timestamp> =
                (0..count).map(|_| start.plus_minutes(rng.below(90) as i64)).collect();
            times.sort();
            let p = &world.places[place];
            let anomaly = add_anomaly(
                self,
                "gas_leak_cluster",
                format!("{}{}一带{}起燃气泄漏报告集中在90分钟内", p.township, p.community, count),
                place,
                gas,
                None,
                &times,
            );
            for (n, at) in times.into_iter().enumerate() {
                let channel =
                    [Channel::Hotline, Channel::Hotline, Channel::App, Channel::Sensor][rng.below(4)];
                injected.push(Injected {
                    at,
                    anomaly,
                    place,
                    matter: gas,
                    channel,
                    phone: None,
                    description: None,
                    escalate: false,
                    merge_with_first: n > 0 && rng.chance(70),
                });
            }
        }
        // Wage arrears in one county's industrial parks: five times the usual rate for three days.
        if let Some(wages) = world.matter_index("wage_arrears") {
            let place = self.place_where(rng, |p| p.hotspot == Some(Hotspot::IndustrialPark));
            let county = world.places[place].county.clone();
            let parks: Vec<usize> = (0..world.places.len())
                .filter(|&i| {
                    world.places[i].county == county
                        && world.places[i].hotspot == Some(Hotspot::IndustrialPark)
                })
                .collect();
            let share = world.specs[wages].map_or(5, |s| s.weight) as f64 / 1000.0;
            let per_day = options.cases as f64 * share / f64::from(options.days.max(1));
            let count = ((per_day * 3.0 * 4.0) as usize).clamp(15, 2_000);
            let start = moment(rng, 0.5, 0.85);
            let mut times: Vec<Timestamp> =
                (0..count).map(|_| start.plus_minutes(rng.below(3 * 24 * 60) as i64)).collect();
            times.sort();
            let anomaly = add_anomaly(
                self,
                "wage_arrears_surge",
                format!("{county}工业园区三天内{count}起拖欠工资投诉，约为平时的五倍"),
                place,
                wages,
                None,
                &times,
            );
            for at in times {
                let place = rng.pick(&parks).copied().unwrap_or(place);
                injected.push(Injected {
                    at,
                    anomaly,
                    place,
                    matter: wages,
                    channel: [Channel::Hotline, Channel::App][rng.below(2)],
                    phone: None,
                    description: None,
                    escalate: false,
                    merge_with_first: false,
                });
            }
        }
        // One caller who rings again and again about the same noise.
        if let Some(noise) = world.matter_index("noise_nuisance") {
            let place = self.place_where(rng, |p| p.hotspot == Some(Hotspot::OldResidential));
            let number = phone(rng);
            let start = moment(rng, 0.3, 0.7);
            let count = 10 + rng.below(6);
            let mut times: Vec<Timestamp> =
                (0..count).map(|_| start.plus_minutes(rng.below(20 * 24 * 60) as i64)).collect();
            times.sort();
            let anomaly = add_anomaly(
                self,
                "repeat_caller",
                format!("同一来电人20天内{count}次反映同一噪音问题"),
                place,
                noise,
                Some(&number),
                &times,
            );
            for at in times {
                injected.push(Injected {
                    at,
                    anomaly,
                    place,
                    matter: noise,
                    channel: Channel::Hotline,
                    phone: Some(number.clone()),
                    description: None,
                    escalate: false,
                    merge_with_first: false,
                });
            }
        }
        // A neighbours' quarrel that grows worse with every report until it is taken up a level.
        if let Some(dispute) = world.matter_index("neighbour_dispute") {
            let place = self.place_where(rng, |p| p.hotspot == Some(Hotspot::OldResidential));
            let start = moment(rng, 0.4, 0.8);
            let stages = [
                "{place}楼上楼下两户因漏水问题吵了起来，希望社区出面调解",
                "{place}两户邻居又因为漏水吵架了，上次调解后没有解决",
                "{place}两家人为漏水的事在楼道里推搡起来，情绪很激动",
                "{place}两户邻居矛盾升级，一方扬言要砸对方的门，担心出事",
                "{place}邻里纠纷已经动手打人了，请派出所和社区赶紧处理",
            ];
            let times: Vec<Timestamp> = (0..stages.len())
                .map(|n| start.plus_minutes(n as i64 * 2 * 24 * 60 + rng.below(600) as i64))
                .collect();
            let anomaly = add_anomaly(
                self,
                "escalating_dispute",
                "一起邻里纠纷十天内反复报告、逐步升级，最后上报区级".into(),
                place,
                dispute,
                None,
                &times,
            );
            let named = format!(
                "{}{}",
                world.places[place].community,
                rng.pick(Hotspot::OldResidential.spots()).copied().unwrap_or("")
            );
            for (n, (at, text)) in times.into_iter().zip(stages).enumerate() {
                injected.push(Injected {
                    at,
                    anomaly,
                    place,
                    matter: dispute,
                    channel: if n % 2 == 0 { Channel::Hotline } else { Channel::GridPatrol },
                    phone: None,
                    description: Some(text.replacen("{place}", &named, 1)),
                    escalate: n >= 3,
                    merge_with_first: false,
                });
            }
        }
        injected.retain(|i| i.at < options.until);
        injected.sort_by_key(|i| i.at);
        injected
    }

    /// The next `max` cases with their histories; empty when all are written.
    #[allow(clippy::type_complexity)]
    pub fn next_chunk(&mut self, max: usize) -> Result<Vec<(CaseId, CaseState, Vec<Event>)>, SimError> {
        let mut chunk = Vec::with_capacity(max);
        while chunk.len() < max {
            let regular = self.arrivals.peek(&mut self.rng);
            let take_injected = self.injected.front().is_some_and(|i| regular.is_none_or(|r| i.at <= r));
            let case = if take_injected {
                let Some(injected) = self.injected.pop_front() else { break };
                self.injected_case(injected)?
            } else {
                let Some(at) = self.arrivals.next(&mut self.rng) else { break };
                self.regular_case(at)?
            };
            chunk.push(case);
        }
        Ok(chunk)
    }

    fn regular_case(&mut self, at: Timestamp) -> Result<(CaseId, CaseState, Vec<Event>), SimError> {
        // About one report in thirty repeats an open case nearby; the center usually spots it and merges.
        if self.rng.chance(3) {
            if let Some(recent) = self.recent_open_at(at) {
                let story = Story {
                    place: recent.place,
                    matter: recent.matter,
                    merge_into: self.rng.chance(70).then_some(recent.id),
                    ..Story::default()
                };
                let channel = self.channel_for(recent.matter, at);
                return self.case(at, story, channel, None, None);
            }
        }
        let place = self.rng.draw(&self.world.place_table);
        let hotspot = self.world.places[place].hotspot;
        let matter = self.rng.draw(&self.world.matter_tables[hotspot_index(hotspot)]);
        let channel = self.channel_for(matter, at);
        self.case(at, Story { place, matter, ..Story::default() }, channel, None, None)
    }

    fn injected_case(&mut self, injected: Injected) -> Result<(CaseId, CaseState, Vec<Event>), SimError> {
        let first = self.truth.anomalies[injected.anomaly].cases.first().map(|id| CaseId(*id));
        let merge_into = first.filter(|_| injected.merge_with_first).filter(|id| {
            self.recent.iter().any(|r| r.id == *id && r.open_until.is_none_or(|end| end > injected.at))
        });
        let story = Story {
            place: injected.place,
            matter: injected.matter,
            merge_into,
            escalate: injected.escalate,
            rater: None,
        };
        let case = self.case(injected.at, story, injected.channel, injected.phone, injected.description)?;
        self.truth.anomalies[injected.anomaly].cases.push(case.0 .0);
        Ok(case)
    }

    fn recent_open_at(&mut self, at: Timestamp) -> Option<Recent> {
        let open: Vec<Recent> = self
            .recent
            .iter()
            .filter(|r| r.received <= at && r.open_until.is_none_or(|end| end > at))
            .copied()
            .collect();
        self.rng.pick(&open).copied()
    }

    fn channel_for(&mut self, matter: usize, at: Timestamp) -> Channel {
        let (date, minute) = at.to_beijing();
        let patrol_hours =
            (8 * 60..18 * 60).contains(&minute) && self.world.rules.calendar.is_working_day(date);
        let draw = self.rng.below(100);
        if self.world.sensed[matter] && draw < 12 {
            return Channel::Sensor;
        }
        match draw {
            0..=44 => Channel::Hotline,
            45..=66 => Channel::App,
            67..=74 => Channel::MiniProgram,
            75..=95 if patrol_hours => Channel::GridPatrol,
            75..=95 => Channel::Hotline,
            _ => Channel::Other,
        }
    }

    /// One case from its report to wherever it stands at the end of the simulation.
    fn case(
        &mut self,
        at: Timestamp,
        story: Story,
        channel: Channel,
        fixed_phone: Option<String>,
        description: Option<String>,
    ) -> Result<(CaseId, CaseState, Vec<Event>), SimError> {
        let id = CaseId(self.next_id);
        self.next_id += 1;
        let (receive, story) = self.report(at, story, channel, fixed_phone, description);
        let mut events = Vec::with_capacity(12);
        let mut state = self.perform(id, None, &receive, &mut events)?;
        while let Some(step) = self.plan_step(&state, &story) {
            if step.at > self.options.until {
                break;
            }
            state = self.perform(id, Some(state), &step, &mut events)?;
        }
        let open_until = (!state.status.is_active()).then_some(state.updated_at);
        if self.recent.len() == self.recent.capacity() {
            self.recent.pop_front();
        }
        if story.merge_into.is_none() && state.status.accepts_merges() {
            self.recent.push_back(Recent {
                id,
                place: story.place,
                matter: story.matter,
                received: at,
                open_until,
            });
        }
        self.tally.cases += 1;
        self.tally.events += events.len() as u64;
        Ok((id, state, events))
    }

    /// A new report arriving now, for the live demo: where, what and through which channel drawn as in the
    /// history.
    pub fn live_report(&mut self, at: Timestamp) -> (Step, Story) {
        let place = self.rng.draw(&self.world.place_table);
        let hotspot = self.world.places[place].hotspot;
        let matter = self.rng.draw(&self.world.matter_tables[hotspot_index(hotspot)]);
        let channel = self.channel_for(matter, at);
        self.report(at, Story { place, matter, ..Story::default() }, channel, None, None)
    }

    /// The story of a case written earlier (its place and matter), so that the live demo can carry it on.
    pub fn story_of(&self, state: &CaseState) -> Option<Story> {
        let place = self.world.places.iter().position(|p| state.path.last() == Some(&p.id))?;
        let matter = match &state.matter {
            Some(matter) => self.world.matter_index(&matter.code)?,
            None => self.world.matter_index_in(&state.description),
        };
        let rater = match state.channel {
            Channel::Hotline if !state.reporter.anonymous => self.world.cast.hotline.first().copied(),
            Channel::App | Channel::MiniProgram | Channel::Other => match state.reporter.user {
                Some(user) => self.world.cast.citizens.iter().find(|a| a.user_id() == Some(user)).copied(),
                None => Some(Actor::Reporter),
            },
            _ => None,
        };
        Some(Story { place, matter, merge_into: None, escalate: false, rater })
    }

    /// The report itself: who files it, with what description, contact and tracking code.
    fn report(
        &mut self,
        at: Timestamp,
        mut story: Story,
        channel: Channel,
        fixed_phone: Option<String>,
        description: Option<String>,
    ) -> (Step, Story) {
        let world = self.world;
        let place = &world.places[story.place];
        let (generated, address) = world.describe(place, story.matter, &mut self.rng);
        let description = description.unwrap_or(generated);
        let cast = &world.cast;
        let grid_worker = cast.grid_workers.get(&place.id).map(|(actor, _)| *actor);
        let (actor, matter_known) = match channel {
            Channel::Hotline => (self.rng.pick(&cast.hotline).copied(), self.rng.chance(60)),
            Channel::App | Channel::MiniProgram | Channel::Other => {
                (self.rng.pick(&cast.citizens).copied(), false)
            }
            Channel::GridPatrol => (grid_worker, true),
            Channel::Sensor => (Some(Actor::System), true),
        };
        // Without the right person (a city with no hotline agents, say), the report comes in as a citizen's.
        let (actor, channel) = match actor {
            Some(actor) => (actor, channel),
            None => (Actor::Reporter, Channel::Other),
        };
        let public =
            matches!(channel, Channel::Hotline | Channel::App | Channel::MiniProgram | Channel::Other);
        let anonymous = channel == Channel::Hotline && fixed_phone.is_none() && self.rng.chance(15);
        let contact = match (&fixed_phone, channel) {
            (Some(number), _) => self.privacy.seal(number),
            (None, Channel::Hotline) if !anonymous => self.privacy.seal(&phone(&mut self.rng)),
            _ => None,
        };
        let citizen = matches!(channel, Channel::App | Channel::MiniProgram | Channel::Other)
            .then(|| actor.user_id())
            .flatten();
        story.rater = match channel {
            Channel::Hotline if !anonymous => self.rng.pick(&cast.hotline).copied(),
            Channel::App | Channel::MiniProgram | Channel::Other => {
                Some(if citizen.is_some() { actor } else { Actor::Reporter })
            }
            _ => None,
        };
        let reporter = Reporter {
            user: citizen,
            anonymous,
            contact_sealed: contact,
            id_number_sealed: None,
            tracking_code: public.then(|| self.privacy.tracking_code(at)),
        };
        let matter = &world.matters[story.matter];
        let receive = Command::new(Action::Receive(NewCase {
            channel,
            description,
            address: Some(address),
            location: world.point_in(place, &mut self.rng),
            path: place.path.clone(),
            owner: place.center,
            reporter,
            matter: matter_known.then(|| matter.clone()),
            priority: None,
        }));
        (Step { at, actor, command: receive }, story)
    }

    fn perform(
        &self,
        id: CaseId,
        state: Option<CaseState>,
        step: &Step,
        events: &mut Vec<Event>,
    ) -> Result<CaseState, SimError> {
        let refused = |error| SimError::Domain { case: id, action: step.command.action.name(), error };
        let new = decide(state.as_ref(), &step.command, &step.actor, step.at, &self.world.rules)
            .map_err(refused)?;
        let mut state = state;
        for event in &new {
            state = Some(apply(state, event).map_err(refused)?);
        }
        events.extend(new);
        state.ok_or_else(|| SimError::City(format!("case {} has no state after its report", id.0)))
    }

    fn route(&mut self, state: &CaseState, matter: usize) -> Option<&Route> {
        // After an escalation the upper center dispatches, to its own level's departments.
        let owner_depth = state.depth_of(state.owner)?;
        let path = &state.path[..=owner_depth.min(state.path.len() - 1)];
        let center = *path
            .iter()
            .rev()
            .find(|id| self.world.jurisdictions.get(id).is_some_and(|j| j.level.has_command_center()))?;
        let world = self.world;
        match self.routes.entry((center, matter)) {
            Entry::Occupied(known) => Some(known.into_mut()),
            Entry::Vacant(new) => {
                Some(new.insert(route_to_departments(world.directory(), path, &world.matters[matter]).ok()?))
            }
        }
    }

    /// When the next step happens: within the stage's time limit mostly, past it sometimes (`late_percent`).
    fn after(&mut self, state: &CaseState, late_percent: u32) -> Timestamp {
        let limit = state.status.stage().map(|stage| state.limits.of(stage));
        let (minutes, basis) = limit.map_or((240, Basis::Working), |l| (i64::from(l.minutes), l.basis));
        let share =
            if self.rng.chance(late_percent) { 1.05 + self.rng.unit() } else { 0.05 + 0.8 * self.rng.unit() };
        let wait = ((minutes as f64 * share) as i64).max(1);
        self.world
            .rules
            .calendar
            .add_minutes(state.updated_at, wait, basis)
            .unwrap_or(state.updated_at.plus_minutes(wait))
    }

    /// What happens next to an open case and when, by the people whose job it is; `None` once its story has
    /// ended (closed and rated or not, rejected, merged).
    pub fn plan_step(&mut self, state: &CaseState, story: &Story) -> Option<Step> {
        let world = self.world;
        let cast = &world.cast;
        let operator = *cast.operators.get(&state.owner)?;
        let note = |text: &str| Some(text.to_string());
        // A stopped clock waits for what it waits for, then the center resumes it; nothing else may happen.
        if let Some(stopped) = state.suspension {
            let at = stopped.since.plus_minutes(24 * 60 * (1 + self.rng.below(5) as i64));
            return Some(Step { at, actor: operator, command: Command::new(Action::Resume) });
        }
        let (at, actor, action, note) = match state.status {
            Status::Received => {
                let at = self.after(state, 3);
                if let Some(into) = story.merge_into {
                    (at, operator, Action::Merge { into }, note("与在办事件反映同一问题，合并办理"))
                } else if self.rng.chance(4) {
                    (at, operator, Action::Reject, note("经核实不属于本平台受理范围，已告知反映人"))
                } else if state.channel == Channel::GridPatrol && self.rng.chance(35) {
                    let worker = cast.grid_workers.get(&world.places[story.place].id)?.0;
                    let matter = world.matters[story.matter].clone();
                    (at, worker, Action::ResolveOnSpot { matter }, note("网格员现场劝导，问题已当场解决"))
                } else {
                    let matter = world.matters[story.matter].clone();
                    (at, operator, Action::Register { matter, priority: None }, None)
                }
            }
            Status::Registered => {
                let at = self.after(state, 4);
                let escalates = state.counts.escalations == 0
                    && (story.escalate || self.rng.chance(2))
                    && world.jurisdictions.get(&state.owner).is_some_and(|j| j.level == Level::Township);
                if escalates {
                    (at, operator, Action::Escalate, note("涉及多部门、本级协调不了，提请区级统筹处置"))
                } else {
                    let route = self.route(state, story.matter)?;
                    let lead = route.lead?;
                    let basis = format!("{}；{}", route.basis, world.places[story.place].verifier_note);
                    let assisting = route.assisting.clone();
                    (at, operator, Action::Dispatch { lead, assisting, basis: Some(basis) }, None)
                }
            }
            Status::Dispatched | Status::Handling => {
                let lead = state.lead?;
                let handler = *cast.handlers.get(&lead)?;
                if !state.accepted.contains(&lead) {
                    let at = self.after(state, 5);
                    if state.counts.returns == 0 && self.rng.chance(4) {
                        (at, handler, Action::Return, note("经核实该事项不属于本部门职责，申请退回重新派遣"))
                    } else {
                        (at, handler, Action::Accept, None)
                    }
                } else if let Some(department) = state.assisting.iter().find(|d| !state.accepted.contains(d))
                {
                    let at = self.after(state, 3).min(state.updated_at.plus_minutes(240));
                    (at, *cast.handlers.get(department)?, Action::Accept, None)
                } else if state.pending_extension.is_some() {
                    let at = state.updated_at.plus_minutes(30 + self.rng.below(300) as i64);
                    let approve = self.rng.chance(85);
                    let why = (!approve).then(|| "理由不充分，请按期办结".to_string());
                    (at, operator, Action::DecideExtension { approve }, why)
                } else if state.counts.extensions == 0 && self.rng.chance(6) {
                    let at = self.after(state, 0).min(state.updated_at.plus_minutes(24 * 60));
                    (
                        at,
                        handler,
                        Action::RequestExtension { minutes: 420 * (1 + self.rng.below(3) as u32) },
                        note("需协调产权单位和相关部门，申请延期办理"),
                    )
                } else if state.counts.extensions == 0 && self.rng.chance(2) {
                    let at = state.updated_at.plus_minutes(60 + self.rng.below(8 * 60) as i64);
                    (at, operator, Action::Suspend, note("等待产权单位确认维修责任，暂停计时"))
                } else if state.counts.supervisions == 0 && self.rng.chance(3) {
                    let upper = state.path[..state.depth_of(state.owner)?]
                        .iter()
                        .rev()
                        .find_map(|j| cast.operators.get(j))?;
                    let at = state.updated_at.plus_minutes(60 + self.rng.below(600) as i64);
                    let due = world.rules.calendar.add_minutes(at, 2 * 420, Basis::Working)?;
                    (at, *upper, Action::Supervise { due }, note("群众反映强烈，请加快办理并按时反馈"))
                } else {
                    (
                        self.after(state, 10),
                        handler,
                        Action::ReportBack,
                        note("已到现场处置完毕，附处置前后照片"),
                    )
                }
            }
            Status::Handled => {
                let at = self.after(state, 5);
                let verifier = cast
                    .grid_workers
                    .get(&world.places[story.place].id)
                    .map(|(actor, _)| *actor)
                    .filter(|a| a.user_id().is_none_or(|u| !state.handlers.contains(&u)))
                    .unwrap_or(operator);
                if state.counts.reworks < 2 && self.rng.chance(9) {
                    (at, verifier, Action::Verify { passed: false }, note("现场核查问题仍然存在，退回返工"))
                } else {
                    (at, verifier, Action::Verify { passed: true }, None)
                }
            }
            Status::Verified => (self.after(state, 3), operator, Action::Close, None),
            Status::Closed => {
                let rater = story.rater?;
                if state.rating.is_none() && state.counts.reopenings == 0 && self.rng.chance(80) {
                    let at = state.updated_at.plus_minutes(60 + self.rng.below(2 * 24 * 60) as i64);
                    let score = match self.rng.below(100) {
                        0..=54 => 5,
                        55..=81 => 4,
                        82..=90 => 3,
                        91..=95 => 2,
                        _ => 1,
                    };
                    let comment =
                        if score >= 4 { "处理及时，态度很好" } else { "问题没有彻底解决" };
                    (at, rater, Action::Rate { score, comment: Some(comment.into()) }, None)
                } else if state.rating.as_ref().is_some_and(|r| r.score <= 2)
                    && state.counts.reopenings == 0
                    && self.rng.chance(40)
                {
                    let at = state.updated_at.plus_minutes(60 + self.rng.below(8 * 60) as i64);
                    (at, operator, Action::Reopen, note("群众评价不满意，重新办理"))
                } else {
                    return None;
                }
            }
            Status::Rejected | Status::Merged | Status::Voided => return None,
        };
        // Whoever can follow the case (a caller, an app user) is answered when it ends.
        let reply = match &action {
            Action::Reject if story.rater.is_some() => {
                Some("经核实不属于受理范围，请向相关单位咨询。".to_string())
            }
            Action::Close if story.rater.is_some() => {
                Some(format!("{}问题已办结，感谢您的反映。", world.matters[story.matter].name))
            }
            _ => None,
        };
        Some(Step { at, actor, command: Command { note, reply, ..Command::new(action) } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn communities_are_called_what_people_call_them() {
        assert_eq!(spoken_name("富新社区居委会", "崇川区"), "富新社区");
        assert_eq!(spoken_name("三星村委会", "海门区"), "三星村");
        assert_eq!(spoken_name("江心沙农场", "海门区"), "江心沙农场");
        // Farms and development zones: no city and county in front, no statistical 虚拟.
        assert_eq!(spoken_name("南通市海门区三厂苗圃", "海门区"), "三厂苗圃");
        assert_eq!(spoken_name("南通市海门区永隆沙农场虚拟生活区", "海门区"), "永隆沙农场生活区");
        assert_eq!(spoken_name("港闸开发区虚拟社区", "崇川区"), "港闸开发区社区");
    }

    #[test]
    fn phone_numbers_look_like_mobiles_and_are_masked_in_the_ground_truth_as_on_screen() {
        let mut rng = Rng::new(3);
        for _ in 0..100 {
            let number = phone(&mut rng);
            assert_eq!(number.len(), 11, "{number}");
            assert!(number.starts_with('1') && number.bytes().all(|b| b.is_ascii_digit()), "{number}");
            let shown = shiyu_auth::mask_phone(&number);
            assert_eq!(&shown[..3], &number[..3]);
            assert_eq!(&shown[3..7], "****");
            assert_eq!(&shown[7..], &number[7..]);
        }
    }
}
