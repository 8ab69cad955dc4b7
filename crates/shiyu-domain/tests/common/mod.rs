//! The fixture world of the domain's integration tests: one city's chain of jurisdictions down to a grid, three
//! departments, a user of every role where it matters, two matters, and builders that drive one case owned by
//! the county through the closed loop with `decide` + `apply` to each state the tests start from.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_domain::{
    apply, decide, Action, Actor, CaseId, CaseState, Category, Channel, Command, Date, Department,
    DepartmentId, DomainError, Event, GeoPoint, Jurisdiction, JurisdictionId, Level, Matter, NewCase,
    Priority, Reporter, Responsibility, Role, Rules, Scope, StageLimits, TimeLimit, Timestamp, User, UserId,
};

// ---------------------------------------------------------------------------------------------------------
// Jurisdictions and departments
// ---------------------------------------------------------------------------------------------------------

pub const CITY: JurisdictionId = JurisdictionId(1);
pub const COUNTY: JurisdictionId = JurisdictionId(2);
pub const TOWNSHIP: JurisdictionId = JurisdictionId(3);
pub const COMMUNITY: JurisdictionId = JurisdictionId(4);
pub const GRID: JurisdictionId = JurisdictionId(5);
/// A sibling of `COUNTY` under the same city: its people are outside the case's jurisdiction.
pub const OTHER_COUNTY: JurisdictionId = JurisdictionId(20);

/// The chain the fixture case happened in, city first.
pub const PATH: [JurisdictionId; 5] = [CITY, COUNTY, TOWNSHIP, COMMUNITY, GRID];
/// The command center that owns the fixture case.
pub const OWNER: JurisdictionId = COUNTY;

/// The department the fixture case is dispatched to as lead (城管).
pub const LEAD_DEPT: DepartmentId = DepartmentId(101);
/// The department that assists (市场监管).
pub const ASSIST_DEPT: DepartmentId = DepartmentId(102);
/// A department that has nothing to do with the case (水务) until a test re-dispatches to it.
pub const UNRELATED_DEPT: DepartmentId = DepartmentId(103);

/// The case duplicates are merged into.
pub const MERGE_TARGET: CaseId = CaseId(99);

pub fn jurisdictions() -> Vec<Jurisdiction> {
    let node = |id: JurisdictionId, code: &str, name: &str, level: Level, parent: Option<JurisdictionId>| {
        Jurisdiction { id, code: code.into(), name: name.into(), level, parent }
    };
    vec![
        node(CITY, "320600", "南通市", Level::City, None),
        node(COUNTY, "320602", "崇川区", Level::County, Some(CITY)),
        node(TOWNSHIP, "320602001", "和平桥街道", Level::Township, Some(COUNTY)),
        node(COMMUNITY, "320602001001", "八仙城社区", Level::Community, Some(TOWNSHIP)),
        node(GRID, "320602001001-01", "八仙城第一网格", Level::Grid, Some(COMMUNITY)),
        node(OTHER_COUNTY, "320612", "通州区", Level::County, Some(CITY)),
    ]
}

pub fn departments() -> Vec<Department> {
    let dept = |id: DepartmentId, code: &str, name: &str, kind: &str| Department {
        id,
        code: code.into(),
        name: name.into(),
        kind: kind.into(),
        jurisdiction: COUNTY,
    };
    vec![
        dept(LEAD_DEPT, "CC-CG", "崇川区城市管理局", "urban_management"),
        dept(ASSIST_DEPT, "CC-SJ", "崇川区市场监督管理局", "market_regulation"),
        dept(UNRELATED_DEPT, "CC-SW", "崇川区水务局", "water"),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// Users and actors
// ---------------------------------------------------------------------------------------------------------

const fn user(id: i64, role: Role, scope: Scope) -> Actor {
    Actor::User { user: UserId(id), role, scope }
}
const fn at(j: JurisdictionId) -> Scope {
    Scope::Jurisdiction(j)
}
const fn of(d: DepartmentId) -> Scope {
    Scope::Department(d)
}

pub const OP_CITY: Actor = user(1, Role::Operator, at(CITY));
pub const OP_COUNTY: Actor = user(2, Role::Operator, at(COUNTY));
pub const OP_TOWNSHIP: Actor = user(3, Role::Operator, at(TOWNSHIP));
pub const OP_OTHER: Actor = user(4, Role::Operator, at(OTHER_COUNTY));
pub const GRID_A: Actor = user(5, Role::GridWorker, at(GRID));
pub const GRID_B: Actor = user(6, Role::GridWorker, at(GRID));
/// The citizen who reported the fixture case.
pub const CITIZEN: Actor = user(7, Role::Citizen, Scope::Unbound);
pub const CITIZEN_OTHER: Actor = user(8, Role::Citizen, Scope::Unbound);
pub const LEAD_A: Actor = user(9, Role::DepartmentHandler, of(LEAD_DEPT));
pub const LEAD_B: Actor = user(10, Role::DepartmentHandler, of(LEAD_DEPT));
pub const ASSIST: Actor = user(11, Role::DepartmentHandler, of(ASSIST_DEPT));
pub const UNRELATED: Actor = user(12, Role::DepartmentHandler, of(UNRELATED_DEPT));
pub const LEADER_CITY: Actor = user(13, Role::Leader, at(CITY));
pub const LEADER_COUNTY: Actor = user(14, Role::Leader, at(COUNTY));
pub const LEADER_OTHER: Actor = user(15, Role::Leader, at(OTHER_COUNTY));
pub const HOTLINE: Actor = user(16, Role::HotlineAgent, at(CITY));
pub const MEDIATOR: Actor = user(17, Role::Mediator, at(COUNTY));
pub const ADMIN: Actor = user(18, Role::Admin, at(CITY));
/// Whoever holds the case's tracking code.
pub const REPORTER: Actor = Actor::Reporter;
pub const SYSTEM: Actor = Actor::System;

/// Every actor of the fixture with a name for messages.
pub const ACTORS: &[(&str, Actor)] = &[
    ("op_city", OP_CITY),
    ("op_county", OP_COUNTY),
    ("op_township", OP_TOWNSHIP),
    ("op_other", OP_OTHER),
    ("grid_a", GRID_A),
    ("grid_b", GRID_B),
    ("citizen", CITIZEN),
    ("citizen_other", CITIZEN_OTHER),
    ("lead_a", LEAD_A),
    ("lead_b", LEAD_B),
    ("assist", ASSIST),
    ("unrelated", UNRELATED),
    ("leader_city", LEADER_CITY),
    ("leader_county", LEADER_COUNTY),
    ("leader_other", LEADER_OTHER),
    ("hotline", HOTLINE),
    ("mediator", MEDIATOR),
    ("admin", ADMIN),
    ("reporter", REPORTER),
    ("system", SYSTEM),
];

pub fn actor_name(actor: &Actor) -> String {
    ACTORS
        .iter()
        .find(|(_, a)| a == actor)
        .map_or_else(|| format!("{actor:?}"), |(name, _)| (*name).to_string())
}

/// The signed-in actors as the users an admin would have created.
pub fn users() -> Vec<User> {
    ACTORS
        .iter()
        .filter_map(|(name, actor)| match *actor {
            Actor::User { user, role, scope } => Some(User {
                id: user,
                username: (*name).to_string(),
                display_name: format!("{name} ({role})"),
                role,
                scope,
            }),
            _ => None,
        })
        .collect()
}

pub fn user_id(actor: Actor) -> UserId {
    actor.user_id().expect("a signed-in actor")
}

// ---------------------------------------------------------------------------------------------------------
// Time and rules
// ---------------------------------------------------------------------------------------------------------

/// Monday 2026-11-23 09:00 Beijing time, an ordinary working day.
pub fn t0() -> Timestamp {
    Timestamp::from_beijing(Date::from_ymd(2026, 11, 23).expect("a real date"), 9 * 60)
}

/// How far the clock moves between two steps of a story.
pub const STEP_MINUTES: i64 = 5;

pub fn rules() -> Rules {
    Rules::default()
}

// ---------------------------------------------------------------------------------------------------------
// The matter catalog
// ---------------------------------------------------------------------------------------------------------

pub fn category() -> Category {
    Category { code: "city_appearance".into(), name: "市容环境".into() }
}

/// 占道经营, counted in working hours.
pub fn matter() -> Matter {
    Matter {
        code: "street_vending".into(),
        name: "占道经营".into(),
        category: category().code,
        default_priority: Priority::Normal,
        responsibilities: vec![Responsibility {
            level: Level::County,
            lead: "urban_management".into(),
            assisting: vec!["market_regulation".into()],
        }],
        limits: StageLimits {
            register: TimeLimit::working_hours(2),
            dispatch: TimeLimit::working_hours(1),
            accept: TimeLimit::working_hours(2),
            handle: TimeLimit::working_hours(14),
            verify: TimeLimit::working_hours(7),
            close: TimeLimit::working_hours(4),
        },
        duplicates: Default::default(),
    }
}

/// 燃气泄漏, urgent and counted in natural hours: nights and holidays do not stop its clock.
pub fn gas_leak() -> Matter {
    Matter {
        code: "gas_leak".into(),
        name: "燃气泄漏".into(),
        category: "public_safety".into(),
        default_priority: Priority::Urgent,
        responsibilities: vec![Responsibility {
            level: Level::County,
            lead: "urban_management".into(),
            assisting: vec![],
        }],
        limits: StageLimits {
            register: TimeLimit::natural_hours(1),
            dispatch: TimeLimit::natural_hours(1),
            accept: TimeLimit::natural_hours(1),
            handle: TimeLimit::natural_hours(4),
            verify: TimeLimit::natural_hours(2),
            close: TimeLimit::natural_hours(2),
        },
        duplicates: shiyu_domain::DuplicateRule { radius_m: 300, window_hours: 6 },
    }
}

// ---------------------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------------------

pub const NOTE: &str = "现场核实情况如下";

fn noted(action: Action) -> Command {
    Command::with_note(action, NOTE)
}

/// A command without the note its action may need.
pub fn bare(action: Action) -> Command {
    Command::new(action)
}

/// The fixture report: a street vendor blocking the pavement in grid 5, reported by `CITIZEN`. The location is
/// made of binary fractions so that it survives any JSON round trip exactly.
pub fn new_case() -> NewCase {
    NewCase {
        channel: Channel::Hotline,
        description: "八仙城菜场门口有人占道经营，影响通行".into(),
        address: Some("崇川区八仙城路1号".into()),
        location: Some(GeoPoint { lon: 120.875, lat: 32.0078125 }),
        path: PATH.to_vec(),
        owner: OWNER,
        reporter: Reporter {
            user: Some(user_id(CITIZEN)),
            anonymous: false,
            contact_sealed: Some("sealed:v1:3q2+7w==".into()),
            ..Reporter::default()
        },
        matter: None,
        priority: None,
    }
}

pub fn receive() -> Command {
    receive_case(new_case())
}
pub fn receive_case(new: NewCase) -> Command {
    Command::new(Action::Receive(new))
}
pub fn register() -> Command {
    register_as(matter())
}
pub fn register_as(matter: Matter) -> Command {
    Command::new(Action::Register { matter, priority: None })
}
pub fn reject() -> Command {
    noted(Action::Reject)
}
pub fn dispatch() -> Command {
    dispatch_to(LEAD_DEPT, &[ASSIST_DEPT])
}
pub fn dispatch_to(lead: DepartmentId, assisting: &[DepartmentId]) -> Command {
    Command::new(Action::Dispatch {
        lead,
        assisting: assisting.to_vec(),
        basis: Some("权责清单：占道经营由城管主办".into()),
    })
}
pub fn accept() -> Command {
    Command::new(Action::Accept)
}
pub fn report_back() -> Command {
    noted(Action::ReportBack)
}
pub fn verify(passed: bool) -> Command {
    noted(Action::Verify { passed })
}
pub fn close() -> Command {
    Command::new(Action::Close)
}
pub fn rate(score: u8) -> Command {
    Command::new(Action::Rate { score, comment: Some("处理及时".into()) })
}
pub fn resolve_on_spot() -> Command {
    noted(Action::ResolveOnSpot { matter: matter() })
}
pub fn return_case() -> Command {
    noted(Action::Return)
}
pub fn request_extension(minutes: u32) -> Command {
    noted(Action::RequestExtension { minutes })
}
pub fn decide_extension(approve: bool) -> Command {
    noted(Action::DecideExtension { approve })
}
pub fn supervise(due: Timestamp) -> Command {
    noted(Action::Supervise { due })
}
/// A supervision due a week after the fixture's start: in the future for every fixture state.
pub fn supervise_next_week() -> Command {
    supervise(t0().plus_minutes(7 * 24 * 60))
}
pub fn escalate() -> Command {
    noted(Action::Escalate)
}
pub fn merge() -> Command {
    Command::new(Action::Merge { into: MERGE_TARGET })
}
pub fn suspend() -> Command {
    noted(Action::Suspend)
}
pub fn resume() -> Command {
    Command::new(Action::Resume)
}
pub fn void() -> Command {
    noted(Action::Void)
}
pub fn reopen() -> Command {
    noted(Action::Reopen)
}
pub fn instruct() -> Command {
    noted(Action::Instruct)
}

// ---------------------------------------------------------------------------------------------------------
// Stories: a case driven through the loop
// ---------------------------------------------------------------------------------------------------------

/// A case's history as it is being written: the clock, the events so far and the state they fold into.
#[derive(Clone, Debug)]
pub struct Story {
    pub rules: Rules,
    pub now: Timestamp,
    pub events: Vec<Event>,
    pub state: Option<CaseState>,
}

impl Story {
    /// No case yet; the clock at `t0()`.
    pub fn empty() -> Story {
        Story { rules: rules(), now: t0(), events: Vec::new(), state: None }
    }

    pub fn state(&self) -> &CaseState {
        self.state.as_ref().expect("the story has a case")
    }

    pub fn advance(&mut self, minutes: i64) {
        self.now = self.now.plus_minutes(minutes);
    }

    /// Decides `command` at the current clock and, if accepted, applies its events.
    pub fn try_now(&mut self, command: &Command, actor: Actor) -> Result<Vec<Event>, DomainError> {
        let events = decide(self.state.as_ref(), command, &actor, self.now, &self.rules)?;
        for event in &events {
            let next = apply(self.state.clone(), event)
                .unwrap_or_else(|e| panic!("decide produced an event apply refuses: {e} in {event:?}"));
            if let Err(rule) = next.check_invariants() {
                panic!("{} by {} broke an invariant: {rule}", event.change.kind(), actor_name(&actor));
            }
            self.state = Some(next);
            self.events.push(event.clone());
        }
        Ok(events)
    }

    /// Moves the clock one step on, then decides and applies `command`.
    pub fn try_step(&mut self, command: &Command, actor: Actor) -> Result<Vec<Event>, DomainError> {
        self.advance(STEP_MINUTES);
        self.try_now(command, actor)
    }

    /// Like `try_step`, for a command the story needs to succeed.
    pub fn step(mut self, command: Command, actor: Actor) -> Story {
        if let Err(e) = self.try_step(&command, actor) {
            panic!("fixture step {} by {} refused: {e}", command.action.name(), actor_name(&actor));
        }
        self
    }
}

/// Received at `t0()` from the hotline, owned by the county.
pub fn received() -> Story {
    let mut story = Story::empty();
    if let Err(e) = story.try_now(&receive(), HOTLINE) {
        panic!("the fixture case is refused: {e}");
    }
    story
}
pub fn registered() -> Story {
    received().step(register(), OP_COUNTY)
}
/// Lead `LEAD_DEPT`, assisting `ASSIST_DEPT`; nobody has accepted yet.
pub fn dispatched() -> Story {
    registered().step(dispatch(), OP_COUNTY)
}
/// The lead accepted (by `LEAD_A`); the assisting department has not.
pub fn handling() -> Story {
    dispatched().step(accept(), LEAD_A)
}
/// `LEAD_A` reported back.
pub fn handled() -> Story {
    handling().step(report_back(), LEAD_A)
}
/// `GRID_A` verified.
pub fn verified() -> Story {
    handled().step(verify(true), GRID_A)
}
pub fn closed() -> Story {
    verified().step(close(), OP_COUNTY)
}
/// The reporting citizen rated it 5.
pub fn rated() -> Story {
    closed().step(rate(5), CITIZEN)
}
pub fn rejected() -> Story {
    received().step(reject(), OP_COUNTY)
}
/// Merged while in handling, so the departments are still on it.
pub fn merged() -> Story {
    handling().step(merge(), OP_COUNTY)
}
/// Voided while in handling, so the departments are still on it.
pub fn voided() -> Story {
    handling().step(void(), OP_COUNTY)
}
/// Suspended while in handling.
pub fn suspended() -> Story {
    handling().step(suspend(), OP_COUNTY)
}
/// `LEAD_A` asked for ten more working hours.
pub fn extension_pending() -> Story {
    handling().step(request_extension(600), LEAD_A)
}
/// `GRID_A` solved it on the spot; it waits for someone else to verify.
pub fn on_spot() -> Story {
    received().step(resolve_on_spot(), GRID_A)
}
/// Dispatched, then escalated by the county: the city owns it and it waits for dispatch again.
pub fn escalated() -> Story {
    dispatched().step(escalate(), OP_COUNTY)
}

/// Every state a table may start from; `none` is before the case exists.
pub const STATE_NAMES: &[&str] = &[
    "none",
    "received",
    "registered",
    "dispatched",
    "handling",
    "handled",
    "verified",
    "closed",
    "rated",
    "rejected",
    "merged",
    "voided",
    "suspended",
    "extension_pending",
    "on_spot",
    "escalated",
];

pub fn story(name: &str) -> Story {
    match name {
        "none" => Story::empty(),
        "received" => received(),
        "registered" => registered(),
        "dispatched" => dispatched(),
        "handling" => handling(),
        "handled" => handled(),
        "verified" => verified(),
        "closed" => closed(),
        "rated" => rated(),
        "rejected" => rejected(),
        "merged" => merged(),
        "voided" => voided(),
        "suspended" => suspended(),
        "extension_pending" => extension_pending(),
        "on_spot" => on_spot(),
        "escalated" => escalated(),
        other => panic!("no fixture state named {other}"),
    }
}
