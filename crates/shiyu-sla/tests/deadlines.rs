//! The deadline engine and the notifier against a real store, with a clock the test moves: a case through
//! yellow, red and automatic escalation across 国庆 and a weekend; a supervision order that lapses; alarms
//! that fire once however many engines try; a restart that picks up where the last one stopped; a calendar
//! change that moves open deadlines; notifications in the inbox and the SMS log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use shiyu_domain::{
    Action, Actor, CaseId, Change, Command, Date, Event, JurisdictionId, Matter, Priority, Rules, Timestamp,
    UserId,
};
use shiyu_sla::{Deadlines, LogSms, Notifier};
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{CaseService, Clock, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

fn beijing(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Timestamp {
    Timestamp::from_beijing(Date::from_ymd(year, month, day).unwrap(), hour * 60 + minute)
}

struct World {
    service: CaseService,
    store: Arc<dyn Store>,
    sample: SampleWorld,
    time: Arc<AtomicI64>,
    clock: Clock,
    folder: tempfile::TempDir,
    _postgres: Option<PgCluster>,
}

impl World {
    async fn new(postgres: bool) -> World {
        let folder = tempfile::tempdir().unwrap();
        let (store, sample, cluster) = common::sample_store(postgres, folder.path()).await;
        let time = Arc::new(AtomicI64::new(beijing(2026, 9, 30, 16, 0).0));
        let reading = time.clone();
        let clock: Clock = Arc::new(move || Timestamp(reading.load(Ordering::SeqCst)));
        let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
        World { service, store, sample, time, clock, folder, _postgres: cluster }
    }

    fn set(&self, at: Timestamp) {
        self.time.store(at.0, Ordering::SeqCst);
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn actor(&self, username: &str) -> Actor {
        self.sample.actor(username).unwrap()
    }

    fn matter(&self) -> Matter {
        self.sample.matters[0].clone()
    }

    async fn report(&self) -> CaseId {
        let command = self.sample.report("桃坞路人行道上有人摆摊卖水果");
        self.service.receive(None, &command, &self.actor("citizen"), self.now()).await.unwrap().id
    }

    async fn act(&self, id: CaseId, username: &str, action: Action, note: &str) {
        let command = Command::with_note(action, note);
        self.service.act(id, None, &command, &self.actor(username), self.now()).await.unwrap();
    }

    async fn history(&self, id: CaseId) -> Vec<Event> {
        self.store.case_history(id).await.unwrap().into_iter().map(|e| e.event).collect()
    }

    async fn kinds(&self, id: CaseId) -> Vec<&'static str> {
        self.history(id).await.iter().map(|e| e.change.kind()).collect()
    }
}

fn count(kinds: &[&str], kind: &str) -> usize {
    kinds.iter().filter(|k| **k == kind).count()
}

async fn yellow_red_and_escalation_across_a_holiday_and_a_weekend(postgres: bool) {
    let world = World::new(postgres).await;
    // Wednesday 30 September, 16:00: two working hours to register, yellow with a fifth of them left.
    let id = world.report().await;
    let engine = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    assert_eq!(engine.armed().await, 1);
    // 90 working minutes run out at 17:30; 国庆 is 1–7 October, so the rest falls on Thursday 8 October.
    assert_eq!(engine.next_due().await, Some(beijing(2026, 10, 8, 9, 6)));

    world.set(beijing(2026, 10, 3, 12, 0));
    assert_eq!(engine.pass().await.unwrap().fired, 0, "nothing is due during the holiday");
    assert_eq!(world.kinds(id).await, ["received"]);

    world.set(beijing(2026, 10, 8, 9, 10));
    assert_eq!(engine.pass().await.unwrap().fired, 1);
    assert_eq!(engine.pass().await.unwrap().fired, 0, "a warning is given once");
    let history = world.history(id).await;
    let warned = history.last().unwrap();
    assert_eq!(warned.actor, Actor::System);
    assert!(matches!(warned.change, Change::Warned { due, .. } if due == beijing(2026, 10, 8, 9, 30)));
    assert_eq!(warned.at, beijing(2026, 10, 8, 9, 10));

    world.set(beijing(2026, 10, 8, 9, 31));
    assert_eq!(engine.pass().await.unwrap().fired, 1);
    let state = world.service.load(id).await.unwrap();
    assert_eq!(state.counts.overdues, 1);
    // The county's rule: three working days of red. Thursday 8th (390 min left), Friday 9th (420), Saturday
    // 10th is a 调休 working day (420), Sunday is off, and the last 30 minutes fall on Monday 12th.
    let plan = state.escalation.clone().unwrap();
    assert_eq!((plan.at, plan.rule.as_str()), (beijing(2026, 10, 12, 9, 30), "county_overdue"));
    let Change::Overdue { escalation: Some(_), .. } = &world.history(id).await.last().unwrap().change else {
        panic!("the overdue event carries its planned escalation")
    };

    world.set(beijing(2026, 10, 12, 9, 29));
    assert_eq!(engine.pass().await.unwrap().fired, 0);
    world.set(beijing(2026, 10, 12, 9, 31));
    assert_eq!(engine.pass().await.unwrap().fired, 1);
    let history = world.history(id).await;
    let escalated = history.last().unwrap();
    let Change::Escalated { from, to, rule, .. } = &escalated.change else { panic!("escalated") };
    assert_eq!((*from, *to), (JurisdictionId(SampleWorld::COUNTY), JurisdictionId(SampleWorld::CITY)));
    assert_eq!(rule.as_deref(), Some("county_overdue"));
    assert!(escalated.note.as_deref().unwrap().contains("county_overdue"), "the history names the rule");
    let state = world.service.load(id).await.unwrap();
    assert_eq!(state.owner, JurisdictionId(SampleWorld::CITY));
    assert_eq!(state.signalled, shiyu_domain::Signal::None, "the new stage starts unannounced");

    // The notifier tells the city's leader, in the app and by SMS.
    let sms = world.folder.path().join("sms.log");
    let notifier = Notifier::new(world.store.clone(), Arc::new(LogSms::new(&sms)), world.clock.clone());
    while notifier.pass().await.unwrap() > 0 {}
    let leader = UserId(7);
    let inbox = world.store.notifications(leader, true, None, 50).await.unwrap();
    assert!(inbox.iter().any(|n| n.kind == "escalated" && n.case_id == id && n.urgent), "{inbox:?}");
    assert_eq!(world.store.unread_notifications(leader).await.unwrap(), inbox.len() as u64);
    let log = std::fs::read_to_string(&sms).unwrap();
    assert!(
        log.lines().any(|line| line.contains("\tleader\t") && line.contains(&format!("#{}", id.0))),
        "{log}"
    );
    // The county's operator heard of the yellow and the red of the registration stage.
    let operator = world.store.notifications(UserId(4), false, None, 50).await.unwrap();
    let kinds: Vec<&str> = operator.iter().map(|n| n.kind.as_str()).collect();
    assert!(kinds.contains(&"warned") && kinds.contains(&"overdue"), "{kinds:?}");
    // Read, and the count drops; a second pass over the same log adds nothing.
    world.store.mark_notifications_read(leader, None, world.now()).await.unwrap();
    assert_eq!(world.store.unread_notifications(leader).await.unwrap(), 0);
    assert_eq!(notifier.pass().await.unwrap(), 0);
}

async fn a_supervision_order_that_lapses_escalates_and_one_answered_does_not(postgres: bool) {
    let world = World::new(postgres).await;
    world.set(beijing(2026, 11, 20, 10, 0)); // a Friday
    let register = Action::Register { matter: world.matter(), priority: Some(Priority::Normal) };
    let dispatch = |lead| Action::Dispatch {
        lead: shiyu_domain::DepartmentId(lead),
        assisting: Vec::new(),
        basis: None,
    };
    let ignored = world.report().await;
    let answered = world.report().await;
    for id in [ignored, answered] {
        world.act(id, "operator", register.clone(), "").await;
        world.act(id, "operator", dispatch(SampleWorld::LEAD_DEPARTMENT), "").await;
        world
            .act(id, "leader", Action::Supervise { due: beijing(2026, 11, 23, 12, 0) }, "周一中午前签收")
            .await;
    }
    // The department accepts one of them before the order's deadline: that answers it.
    world.act(answered, "handler", Action::Accept, "").await;
    let engine = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    world.set(beijing(2026, 11, 23, 12, 1));
    engine.pass().await.unwrap();
    let kinds = world.kinds(ignored).await;
    assert_eq!(count(&kinds, "supervision_lapsed"), 1, "{kinds:?}");
    let history = world.history(ignored).await;
    let Change::Escalated { rule, to, .. } = &history.last().unwrap().change else { panic!("{kinds:?}") };
    assert_eq!(
        (rule.as_deref(), *to),
        (Some("county_supervision_lapsed"), JurisdictionId(SampleWorld::CITY))
    );
    assert_eq!(count(&world.kinds(answered).await, "supervision_lapsed"), 0);
    assert_eq!(engine.pass().await.unwrap().fired, 0);
}

async fn alarms_fire_once_across_engines_and_restarts(postgres: bool) {
    let world = World::new(postgres).await;
    let ids = [world.report().await, world.report().await, world.report().await];
    // Two nodes' engines, both loaded before anything is due.
    let first = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    let second = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    world.set(beijing(2026, 10, 8, 9, 10));
    let (a, b) = tokio::join!(first.pass(), second.pass());
    assert_eq!(a.unwrap().fired + b.unwrap().fired, ids.len(), "each yellow fires once between the two");
    for id in ids {
        assert_eq!(count(&world.kinds(id).await, "warned"), 1);
    }
    // A case that changes after the engine loaded is followed through the log.
    world.act(ids[0], "operator", Action::Register { matter: world.matter(), priority: None }, "").await;
    first.pass().await.unwrap();
    let registered = world.service.load(ids[0]).await.unwrap();
    assert_eq!(first.next_due().await.map(|at| at <= registered.deadline.unwrap().yellow_at), Some(true));
    // A restart loads the alarms left: the red ones, and nothing that already fired.
    drop(first);
    let restarted = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    assert_eq!(restarted.armed().await, 3);
    assert_eq!(restarted.pass().await.unwrap().fired, 0);
    world.set(beijing(2026, 10, 8, 9, 31));
    assert_eq!(
        restarted.pass().await.unwrap().fired,
        2,
        "the two cases still waiting to be registered turn red"
    );
    for id in &ids[1..] {
        let kinds = world.kinds(*id).await;
        assert_eq!((count(&kinds, "warned"), count(&kinds, "overdue")), (1, 1), "{kinds:?}");
    }
}

async fn a_calendar_change_moves_open_deadlines_and_says_why(postgres: bool) {
    let world = World::new(postgres).await;
    world.set(beijing(2026, 11, 24, 16, 0)); // Tuesday
    let id = world.report().await;
    let before = world.service.load(id).await.unwrap().deadline.unwrap();
    assert_eq!(before.due, beijing(2026, 11, 25, 9, 30));
    // The city declares Wednesday 25 November a day off.
    let old = world.service.rules().calendar.clone();
    let mut calendar = old.clone();
    calendar.load("holiday 2026-11-25 防汛停工").unwrap();
    world.service.set_rules(Rules { calendar, ..(*world.service.rules()).clone() });
    let moved =
        world.service.reschedule(id, &old, world.now(), "工作日历调整：2026-11-25 休息").await.unwrap();
    let (state, events) = moved.unwrap();
    assert_eq!(state.deadline.unwrap().due, beijing(2026, 11, 26, 9, 30));
    assert_eq!(events[0].note.as_deref(), Some("工作日历调整：2026-11-25 休息"));
    assert!(matches!(events[0].change, Change::Rescheduled { .. }));
    // Counting again on the same calendar moves nothing.
    let current = world.service.rules().calendar.clone();
    assert!(world.service.reschedule(id, &current, world.now(), "again").await.unwrap().is_none());
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(false).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(true).await })*
        }
    };
}

on_both_backends!(
    yellow_red_and_escalation_across_a_holiday_and_a_weekend,
    a_supervision_order_that_lapses_escalates_and_one_answered_does_not,
    alarms_fire_once_across_engines_and_restarts,
    a_calendar_change_moves_open_deadlines_and_says_why,
    an_extension_request_left_undecided_tells_the_center_once,
);

async fn an_extension_request_left_undecided_tells_the_center_once(postgres: bool) {
    let world = World::new(postgres).await;
    world.set(beijing(2026, 11, 23, 10, 0)); // Monday
    let id = world.report().await;
    world.act(id, "operator", Action::Register { matter: world.matter(), priority: None }, "").await;
    let dispatch = Action::Dispatch {
        lead: shiyu_domain::DepartmentId(SampleWorld::LEAD_DEPARTMENT),
        assisting: vec![],
        basis: None,
    };
    world.act(id, "operator", dispatch, "").await;
    world.act(id, "handler", Action::Accept, "").await;
    world.act(id, "handler", Action::RequestExtension { minutes: 600 }, "需要协调供电公司").await;
    let request = world.service.load(id).await.unwrap().pending_extension.unwrap();
    // One working day to decide: Monday 10:00 to Tuesday 10:00.
    assert_eq!(request.decide_by, Some(beijing(2026, 11, 24, 10, 0)));
    let engine = Deadlines::start(world.service.clone(), world.clock.clone()).await.unwrap();
    world.set(beijing(2026, 11, 24, 10, 1));
    engine.pass().await.unwrap();
    engine.pass().await.unwrap();
    let kinds = world.kinds(id).await;
    assert_eq!(count(&kinds, "extension_undecided"), 1, "{kinds:?}");
    // Deciding late still works, and the clock follows the outcome: the handling deadline moves by 600
    // working minutes.
    let before = world.service.load(id).await.unwrap().deadline.unwrap();
    world.act(id, "operator", Action::DecideExtension { approve: true }, "").await;
    let after = world.service.load(id).await.unwrap();
    assert!(after.pending_extension.is_none());
    let calendar = &world.service.rules().calendar;
    assert_eq!(
        calendar.minutes_between(before.due, after.deadline.unwrap().due, shiyu_domain::Basis::Working),
        600
    );
}
