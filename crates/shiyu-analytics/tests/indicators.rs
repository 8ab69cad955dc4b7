//! Each indicator of docs/indicators.md on five hand-made histories whose every figure is known: on time, late,
//! returned and reworked, rejected, left open past its deadline, extended.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_analytics::{Analytics, Dim, Filter, Key, Unit, Weights};
use shiyu_domain::{Action, CaseId, Command, Date, DepartmentId, JurisdictionId, Level, Rules, Timestamp};
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::testing::SampleWorld;
use shiyu_store::{CaseService, Store, WriteOptions};
use std::sync::Arc;

/// Monday 23 November 2026 in Beijing, plus minutes.
fn at(minutes: i64) -> Timestamp {
    Timestamp::from_beijing(Date::from_ymd(2026, 11, 23).unwrap(), 9 * 60).plus_minutes(minutes)
}

struct Script {
    service: CaseService,
    world: SampleWorld,
}

impl Script {
    async fn new(dir: &std::path::Path) -> Script {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir, WriteOptions::default()).await.unwrap());
        let world = SampleWorld::new();
        world.install(store.as_ref()).await.unwrap();
        Script { service: CaseService::new(store, Arc::new(Rules::default())), world }
    }

    async fn report(&self, minute: i64) -> CaseId {
        let actor = self.world.actor("citizen").unwrap();
        self.service.receive(None, &self.world.report("桃坞路占道经营"), &actor, at(minute)).await.unwrap().id
    }

    async fn act(&self, id: CaseId, who: &str, action: Action, minute: i64) {
        let command = Command::with_note(action, "说明");
        let actor = self.world.actor(who).unwrap();
        self.service.act(id, None, &command, &actor, at(minute)).await.unwrap();
    }
}

fn register(world: &SampleWorld) -> Action {
    Action::Register { matter: world.matters[0].clone(), priority: None }
}

fn dispatch() -> Action {
    Action::Dispatch { lead: DepartmentId(SampleWorld::LEAD_DEPARTMENT), assisting: vec![], basis: None }
}

#[tokio::test]
async fn every_indicator_on_known_histories() {
    let dir = tempfile::tempdir().unwrap();
    let s = Script::new(dir.path()).await;
    let w = &s.world;
    // A: every stage on time, closed, rated 5. Limits: 2 working hours for register, dispatch and accept.
    let a = s.report(0).await;
    s.act(a, "operator", register(w), 10).await;
    s.act(a, "operator", dispatch(), 20).await;
    s.act(a, "handler", Action::Accept, 30).await;
    s.act(a, "handler", Action::ReportBack, 60).await;
    s.act(a, "gridworker", Action::Verify { passed: true }, 90).await;
    s.act(a, "operator", Action::Close, 100).await;
    s.act(a, "citizen", Action::Rate { score: 5, comment: None }, 110).await;
    // B: registered late (3 hours), returned by the department, dispatched again and accepted late, reworked
    // once, closed, rated 2.
    let b = s.report(0).await;
    s.act(b, "operator", register(w), 180).await;
    s.act(b, "operator", dispatch(), 185).await;
    s.act(b, "handler", Action::Return, 190).await;
    s.act(b, "operator", dispatch(), 195).await;
    s.act(b, "handler", Action::Accept, 195 + 60 * 4).await;
    s.act(b, "handler", Action::ReportBack, 450).await;
    s.act(b, "gridworker", Action::Verify { passed: false }, 460).await;
    s.act(b, "handler", Action::ReportBack, 470).await;
    s.act(b, "gridworker", Action::Verify { passed: true }, 480).await;
    s.act(b, "operator", Action::Close, 490).await;
    s.act(b, "citizen", Action::Rate { score: 2, comment: None }, 500).await;
    // C: rejected at once.
    let c = s.report(0).await;
    s.act(c, "operator", Action::Reject, 5).await;
    // D: left as received; at the time of asking it is past its deadline.
    let _d = s.report(0).await;
    // E: accepted, extended once, still being handled.
    let e = s.report(0).await;
    s.act(e, "operator", register(w), 5).await;
    s.act(e, "operator", dispatch(), 10).await;
    s.act(e, "handler", Action::Accept, 15).await;
    s.act(e, "handler", Action::RequestExtension { minutes: 120 }, 20).await;
    s.act(e, "operator", Action::DecideExtension { approve: true }, 25).await;

    let analytics = Analytics::rebuild(s.service.store().as_ref()).await.unwrap();
    let projection = analytics.read();
    let now = at(24 * 60);
    let filter = Filter::default();
    let county = projection.evaluate(&filter, Unit::County, &Weights::default(), now);
    assert_eq!(county.len(), 1);
    let i = &county[0];
    let pair = |r: shiyu_analytics::Ratio| (r.numerator, r.denominator);
    assert_eq!(i.cases, 5);
    assert_eq!(pair(i.response), (3, 5), "registration completed on time: A, C, E of five received");
    assert_eq!(pair(i.resolution), (2, 4), "A and B closed, C rejected leaves the denominator");
    assert_eq!(pair(i.satisfaction), (1, 2));
    assert_eq!(pair(i.registration_on_time), (3, 4), "B registered late; D not registered");
    assert_eq!(pair(i.dispatch_on_time), (3, 3));
    assert_eq!(pair(i.handling_on_time), (2, 2));
    assert_eq!(pair(i.verification_on_time), (2, 2));
    assert_eq!(pair(i.rework), (1, 2));
    assert_eq!(pair(i.returned), (1, 3), "B of A, B and E");
    assert_eq!(i.overdue, 2, "B completed stages late; D is open past its deadline");
    assert_eq!(i.extensions, 1);
    // Handling time: A reported back after 1 hour, B after 450 minutes (from the report, natural time).
    assert_eq!(i.handling_hours_avg, Some((1.0 + 7.5) / 2.0));
    assert_eq!(i.handling_hours_p90, Some(7.5));
    let score = i.score.unwrap();
    assert!(score > 0.0 && score < 100.0);

    let departments = projection.evaluate(&filter, Unit::Department, &Weights::default(), now);
    let lead = departments.iter().find(|d| d.unit == SampleWorld::LEAD_DEPARTMENT).unwrap();
    assert_eq!(pair(lead.response), (2, 4), "A and E on time; B's first dispatch returned, its second late");
    assert_eq!(pair(lead.returned), (1, 4));
    assert_eq!(lead.cases, 3, "it leads A, B and E");

    // Weights: only satisfaction counts → the score is the satisfaction rate.
    let only = Weights {
        response: 0.0,
        resolution: 0.0,
        satisfaction: 1.0,
        registration_on_time: 0.0,
        dispatch_on_time: 0.0,
        handling_on_time: 0.0,
        verification_on_time: 0.0,
        rework: 0.0,
        returned: 0.0,
    };
    assert_eq!(only.score(i), Some(50.0));
    assert!(Weights { response: -1.0, ..Weights::default() }.check().is_err());

    // The statistics agree: by status, and the open case past its deadline.
    let by_status = projection.group(&filter, &[Dim::Status], None, now);
    let count = |code: &str| {
        by_status.iter().find(|g| g.keys[0] == Key::Code(code.into())).map_or(0, |g| g.stats.cases)
    };
    assert_eq!((count("closed"), count("rejected"), count("received"), count("handling")), (2, 1, 1, 1));
    let scoped =
        Filter { within: Some((Level::County, JurisdictionId(SampleWorld::OTHER_COUNTY))), ..filter };
    assert!(projection.group(&scoped, &[], None, now).is_empty(), "nothing happened in 海门区");
}
