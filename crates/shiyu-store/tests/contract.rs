//! The store's contract: the same stories, run against SQLite and against a real PostgreSQL cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_domain::{replay, Action, Actor, CaseId, Command, DepartmentId, Rules, Status, Timestamp};
use shiyu_domain::{JurisdictionId, Reporter, Role, Scope, UserId};
use shiyu_store::postgres::PgStore;
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{
    ApiToken, AttachmentMeta, AttemptOutcome, AuditEntry, CaseOrder, CaseQuery, CaseScope, CaseService,
    ClockFilter, DeliveryAttempt, Journal, NewDelivery, NewUser, NewWebhook, ServiceError, Session, Store,
    StoreError, StoreResult, WriteOptions,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

type StoryFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Story = (&'static str, fn(Arc<dyn Store>) -> StoryFuture);

macro_rules! stories {
    ($($name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|store| Box::pin($name(store)) as StoryFuture) as fn(Arc<dyn Store>) -> StoryFuture)),*]
    };
}

fn all_stories() -> Vec<Story> {
    stories![
        reference_data_round_trips,
        a_report_is_stored_with_its_history,
        reserved_ids_are_skipped_by_new_reports,
        the_same_idempotency_key_never_makes_a_second_case,
        concurrent_retries_with_one_key_make_one_case,
        two_operators_acting_at_once_cannot_both_win,
        appends_to_missing_cases_fail_without_harming_their_batch,
        the_whole_loop_replays_to_the_stored_state,
        the_log_is_gap_free_and_ordered_for_read_models,
        bulk_loaded_histories_read_as_their_events,
        writes_arriving_together_share_a_transaction,
        case_lists_are_scoped_paged_and_filtered,
        work_lists_put_the_soonest_due_first,
        every_case_event_and_access_is_audited,
        users_sessions_and_tokens_round_trip,
        attachments_are_kept_by_content_hash,
        the_map_lands_whole_or_not_at_all,
        registered_matters_are_labels_and_models_are_kept,
        webhook_deliveries_are_claimed_retried_and_dead_lettered,
    ]
}

const NOW: Timestamp = Timestamp(1_795_400_000_000); // 2026-11-23, a working Monday

fn service(store: Arc<dyn Store>) -> CaseService {
    CaseService::new(store, Arc::new(Rules::default()))
}

fn actor(name: &str) -> Actor {
    SampleWorld::new().actor(name).unwrap()
}

async fn installed(store: &Arc<dyn Store>) -> SampleWorld {
    let world = SampleWorld::new();
    world.install(store.as_ref()).await.unwrap();
    world
}

async fn reference_data_round_trips(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    assert_eq!(store.jurisdictions().await.unwrap(), world.jurisdictions);
    assert_eq!(store.departments().await.unwrap(), world.departments);
    assert_eq!(store.categories().await.unwrap(), world.categories);
    assert_eq!(store.matters().await.unwrap(), world.matters);
    assert_eq!(store.users().await.unwrap(), world.users);
    // Writing again updates in place.
    let mut renamed = world.jurisdictions.clone();
    renamed[1].name = "崇川区（新）".into();
    store.put_jurisdictions(&renamed).await.unwrap();
    assert_eq!(store.jurisdictions().await.unwrap(), renamed);
}

async fn reserved_ids_are_skipped_by_new_reports(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let report = |text: &str| world.report(text);
    let first = service.receive(None, &report("第一件"), &actor("citizen"), NOW).await.unwrap();
    assert_eq!(first.id, CaseId(1));
    let reserved = store.reserve_case_ids(10, NOW).await.unwrap();
    assert_eq!(reserved, CaseId(2));
    let after = service.receive(None, &report("预留之后"), &actor("citizen"), NOW).await.unwrap();
    assert_eq!(after.id, CaseId(12), "ids 2–11 are the load's");
    assert_eq!(store.reserve_case_ids(5, NOW).await.unwrap(), CaseId(13), "a second reservation follows");
    assert_eq!(store.count_cases().await.unwrap(), 2);
}

async fn a_report_is_stored_with_its_history(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let created =
        service.receive(None, &world.report("桃坞路有人占道摆摊"), &actor("citizen"), NOW).await.unwrap();
    assert!(created.created);
    let loaded = store.load_case(created.id).await.unwrap().unwrap();
    assert_eq!(loaded, created.state);
    assert_eq!(loaded.description, "桃坞路有人占道摆摊");
    let history = store.case_history(created.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].version, 1);
    assert_eq!(replay(history.iter().map(|e| &e.event)).unwrap().unwrap(), loaded);
    assert_eq!(store.load_case(CaseId(999_999)).await.unwrap(), None);
    assert_eq!(store.count_cases().await.unwrap(), 1);
}

async fn the_same_idempotency_key_never_makes_a_second_case(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let report = world.report("小区门口垃圾堆放");
    let key = Some("app-7f3a".to_string());
    let first = service.receive(key.clone(), &report, &actor("citizen"), NOW).await.unwrap();
    let again = service.receive(key.clone(), &report, &actor("citizen"), NOW.plus_minutes(1)).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(first.id, again.id);
    assert_eq!(again.state, first.state);
    let other = service.receive(Some("app-8000".into()), &report, &actor("citizen"), NOW).await.unwrap();
    assert_ne!(other.id, first.id);
    assert_eq!(store.count_cases().await.unwrap(), 2);
    assert_eq!(store.last_seq().await.unwrap(), 2);
}

async fn concurrent_retries_with_one_key_make_one_case(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (service, report) = (service.clone(), world.report("路灯不亮"));
        tasks.push(tokio::spawn(async move {
            service.receive(Some("retry-key".into()), &report, &actor("citizen"), NOW).await.unwrap().id
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same case");
    assert_eq!(store.count_cases().await.unwrap(), 1);
}

async fn two_operators_acting_at_once_cannot_both_win(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let created = service.receive(None, &world.report("噪音扰民"), &actor("citizen"), NOW).await.unwrap();
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    let reject = Command::with_note(Action::Reject, "不属于受理范围");
    // Both decided on version 1; the store lets only the first append through.
    let operator = actor("operator");
    let (a, b) = tokio::join!(
        service.act(created.id, Some(1), &register, &operator, NOW.plus_minutes(5)),
        service.act(created.id, Some(1), &reject, &operator, NOW.plus_minutes(5)),
    );
    let conflicts =
        [&a, &b].iter().filter(|r| matches!(r, Err(ServiceError::Store(StoreError::Conflict(_))))).count();
    assert_eq!(conflicts, 1, "exactly one loses: {a:?} / {b:?}");
    assert!(a.is_ok() || b.is_ok());
    assert_eq!(store.case_history(created.id).await.unwrap().len(), 2);
    // A stale version is refused outright and changes nothing.
    let stale = store.append(created.id, 1, vec![], &created.state).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.load_case(created.id).await.unwrap().unwrap().version, 2);
}

async fn appends_to_missing_cases_fail_without_harming_their_batch(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let created = service.receive(None, &world.report("井盖缺失"), &actor("citizen"), NOW).await.unwrap();
    let (second, citizen) = (world.report("井盖缺失（二）"), actor("citizen"));
    let (missing, good) = tokio::join!(
        store.append(CaseId(424_242), 1, vec![], &created.state),
        service.receive(None, &second, &citizen, NOW),
    );
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    assert!(good.unwrap().created);
    assert_eq!(store.count_cases().await.unwrap(), 2);
}

async fn the_whole_loop_replays_to_the_stored_state(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let id = service.receive(None, &world.report("商户占道经营"), &actor("citizen"), NOW).await.unwrap().id;
    let steps: Vec<(Command, &str)> = vec![
        (Command::new(Action::Register { matter: world.matters[0].clone(), priority: None }), "operator"),
        (
            Command::new(Action::Dispatch {
                lead: DepartmentId(SampleWorld::LEAD_DEPARTMENT),
                assisting: vec![DepartmentId(SampleWorld::ASSISTING_DEPARTMENT)],
                basis: Some("权责清单：占道经营由区城管局主办".into()),
            }),
            "operator",
        ),
        (Command::new(Action::Accept), "handler"),
        (Command::with_note(Action::ReportBack, "已劝离摊贩，现场恢复整洁"), "handler"),
        (Command::new(Action::Verify { passed: true }), "gridworker"),
        (Command::new(Action::Close), "operator"),
    ];
    let mut at = NOW;
    for (command, who) in &steps {
        at = at.plus_minutes(30);
        service.act(id, None, command, &actor(who), at).await.unwrap();
    }
    let rate = Command::new(Action::Rate { score: 5, comment: Some("处理及时".into()) });
    let state = service.act(id, None, &rate, &Actor::Reporter, at.plus_minutes(60)).await.unwrap();
    assert_eq!(state.status, Status::Closed);
    assert_eq!(state.rating.as_ref().map(|r| r.score), Some(5));
    let history = store.case_history(id).await.unwrap();
    assert_eq!(history.len(), 8);
    assert_eq!(history.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    let replayed = replay(history.iter().map(|e| &e.event)).unwrap().unwrap();
    assert_eq!(replayed, store.load_case(id).await.unwrap().unwrap());
    replayed.check_invariants().unwrap();
}

async fn the_log_is_gap_free_and_ordered_for_read_models(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let mut tasks = Vec::new();
    for n in 0..40 {
        let (service, report) = (service.clone(), world.report(&format!("第{n}号反映")));
        tasks.push(tokio::spawn(async move {
            service.receive(None, &report, &actor("citizen"), NOW).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.events_since(0, 1000).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=40).collect::<Vec<_>>());
    // Paging by sequence number sees each event exactly once.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.events_since(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page.into_iter().map(|e| e.seq));
    }
    assert_eq!(seen, (1..=40).collect::<Vec<_>>());
    assert_eq!(store.last_seq().await.unwrap(), 40);
    assert!(store.events_since(40, 10).await.unwrap().is_empty());
    // The undecoded log that rebuilds read holds the same entries, page by page.
    let mut raw = Vec::new();
    let mut after = 0;
    loop {
        let page = store.raw_events_since(after, 9).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        raw.extend(page);
    }
    assert_eq!(raw.len(), all.len());
    for (raw, decoded) in raw.iter().zip(&all) {
        assert_eq!((raw.seq, raw.case_id), (decoded.seq, decoded.case_id));
        assert_eq!(raw.payload[0], shiyu_store::codec::FORMAT_1, "new events are stored in the binary form");
        assert_eq!(shiyu_store::codec::decode::<shiyu_domain::Event>(&raw.payload).unwrap(), decoded.event);
    }
    assert!(store.raw_events_since(40, 10).await.unwrap().is_empty());
}

/// A bulk load keeps each history as one row of the log; every read still sees its events one by one, with
/// their own sequence numbers and versions, and a page may start or end inside a history.
/// Everything `page` gives from the start of the log, asked `size` at a time after the last one seen.
async fn in_pages<T, F>(size: u32, page: impl Fn(i64) -> F, seq: fn(&T) -> i64) -> Vec<T>
where
    F: Future<Output = StoreResult<Vec<T>>>,
{
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let next = page(after).await.unwrap();
        assert!(next.len() <= size as usize);
        let Some(last) = next.last() else { return all };
        after = seq(last);
        all.extend(next);
    }
}

fn bulk_audit() -> AuditEntry {
    AuditEntry {
        at: NOW,
        user: None,
        actor: "system".into(),
        action: "bulk_load".into(),
        target: None,
        address: None,
        detail: None,
    }
}

async fn bulk_loaded_histories_read_as_their_events(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let live = service.receive(None, &world.report("楼道堆放杂物"), &actor("citizen"), NOW).await.unwrap().id;
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    service.act(live, None, &register, &actor("operator"), NOW.plus_minutes(5)).await.unwrap();
    let history: Vec<_> = store.case_history(live).await.unwrap().into_iter().map(|e| e.event).collect();
    let state = store.load_case(live).await.unwrap().unwrap();
    let first = store.reserve_case_ids(2, NOW).await.unwrap();
    let second = CaseId(first.0 + 1);
    // Made a few at a time, as the simulator makes them; a history whose id does not follow is refused whole.
    let mut bulk = shiyu_store::BulkCases::prepare(&[(first, state.clone(), history.clone())]).unwrap();
    let skipping =
        [(second, state.clone(), history.clone()), (CaseId(second.0 + 2), state.clone(), history.clone())];
    assert!(matches!(bulk.add(&skipping), Err(StoreError::Conflict(_))));
    assert_eq!(bulk.len(), 1, "a refused addition leaves the batch as it was");
    bulk.add(&[(second, state.clone(), history.clone())]).unwrap();
    store.bulk_load(bulk, bulk_audit()).await.unwrap();
    let after = service.receive(None, &world.report("路灯不亮"), &actor("citizen"), NOW).await.unwrap().id;
    // Loaded cases are listed like any other: their chain of places and reporter are written with them.
    for scope in [
        CaseScope::Under { depth: 4, jurisdiction: JurisdictionId(SampleWorld::GRID) },
        CaseScope::Reporter(state.reporter.user.unwrap()),
    ] {
        let query = CaseQuery { scope, limit: 10, ..CaseQuery::default() };
        let listed: Vec<_> = store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(listed, [after, second, first, live]);
    }
    // And in work lists: a loaded case's running clock is written with it.
    let mut due = Vec::new();
    for id in [live, first, second, after] {
        due.push((store.load_case(id).await.unwrap().unwrap().deadline.unwrap().due, id));
    }
    due.sort();
    let query = CaseQuery { order: CaseOrder::Due { after: None }, limit: 10, ..CaseQuery::default() };
    let listed: Vec<_> = store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, due.iter().map(|(_, id)| *id).collect::<Vec<_>>());

    let all = store.events_since(0, 1000).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=7).collect::<Vec<_>>());
    let cases: Vec<_> = all.iter().map(|e| (e.case_id, e.version)).collect();
    assert_eq!(cases, [(live, 1), (live, 2), (first, 1), (first, 2), (second, 1), (second, 2), (after, 1)]);
    assert_eq!(store.last_seq().await.unwrap(), 7);
    for id in [first, second] {
        let loaded = store.case_history(id).await.unwrap();
        assert_eq!(loaded.iter().map(|e| e.event.clone()).collect::<Vec<_>>(), history);
        assert_eq!(replay(loaded.iter().map(|e| &e.event)).unwrap().unwrap(), state);
    }
    // Pages of every size, so that pages start and end inside the histories.
    for size in 1..=4 {
        let events = in_pages(size, |after| store.events_since(after, size), |e| e.seq).await;
        let raw = in_pages(size, |after| store.raw_events_since(after, size), |e| e.seq).await;
        assert_eq!(events, all, "pages of {size}");
        assert_eq!(raw.len(), all.len());
        for (raw, decoded) in raw.iter().zip(&all) {
            assert_eq!((raw.seq, raw.case_id), (decoded.seq, decoded.case_id));
            assert_eq!(
                shiyu_store::codec::decode::<shiyu_domain::Event>(&raw.payload).unwrap(),
                decoded.event
            );
        }
    }
}

async fn writes_arriving_together_share_a_transaction(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let before = store.commit_stats();
    let mut tasks = Vec::new();
    for n in 0..256 {
        let (service, report) = (service.clone(), world.report(&format!("批量反映{n}")));
        tasks.push(tokio::spawn(async move {
            service.receive(None, &report, &actor("citizen"), NOW).await.unwrap()
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().created);
    }
    let after = store.commit_stats();
    assert_eq!(after.writes - before.writes, 256);
    assert!(after.transactions - before.transactions < 256, "no batching happened: {after:?}");
    assert!(after.largest_batch > 1);
    assert_eq!(store.count_cases().await.unwrap(), 256);
}

/// The operator registers the case and dispatches it to the sample world's lead department.
async fn registered_and_dispatched(service: &CaseService, world: &SampleWorld, id: CaseId) {
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    service.act(id, None, &register, &actor("operator"), NOW).await.unwrap();
    let dispatch = Command::new(Action::Dispatch {
        lead: DepartmentId(SampleWorld::LEAD_DEPARTMENT),
        assisting: vec![],
        basis: None,
    });
    service.act(id, None, &dispatch, &actor("operator"), NOW).await.unwrap();
}

async fn case_lists_are_scoped_paged_and_filtered(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut report = world.report(&format!("第{n}件"));
        if let Action::Receive(new) = &mut report.action {
            new.reporter = Reporter { tracking_code: Some(format!("CODE-{n}")), ..new.reporter.clone() };
        }
        ids.push(service.receive(None, &report, &actor("citizen"), NOW).await.unwrap().id);
    }
    registered_and_dispatched(&service, &world, ids[0]).await;

    let page = |scope, status: Option<Status>, before, limit| {
        let store = store.clone();
        async move {
            let statuses: Vec<Status> = status.into_iter().collect();
            let order = CaseOrder::Newest { before };
            let query = CaseQuery { scope, statuses, order, limit, ..CaseQuery::default() };
            store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<CaseId> = ids.iter().rev().copied().collect();
    assert_eq!(page(CaseScope::All, None, None, 10).await, newest_first);
    let county = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::COUNTY) };
    assert_eq!(page(county, None, None, 10).await, newest_first);
    let grid = CaseScope::Under { depth: 4, jurisdiction: JurisdictionId(SampleWorld::GRID) };
    assert_eq!(page(grid, None, None, 10).await, newest_first);
    let other = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::OTHER_COUNTY) };
    assert!(page(other, None, None, 10).await.is_empty());
    // Cursor paging: two pages of two, then the last one.
    assert_eq!(page(CaseScope::All, None, None, 2).await, newest_first[..2]);
    assert_eq!(page(CaseScope::All, None, Some(newest_first[1]), 2).await, newest_first[2..4]);
    assert_eq!(page(CaseScope::All, None, Some(newest_first[3]), 2).await, newest_first[4..]);
    let lead = CaseScope::Department(DepartmentId(SampleWorld::LEAD_DEPARTMENT));
    assert_eq!(page(lead, None, None, 10).await, vec![ids[0]]);
    let assisting = CaseScope::Department(DepartmentId(SampleWorld::ASSISTING_DEPARTMENT));
    assert!(page(assisting, None, None, 10).await.is_empty());
    assert_eq!(page(CaseScope::Reporter(UserId(1)), None, None, 10).await, newest_first);
    assert!(page(CaseScope::Reporter(UserId(2)), None, None, 10).await.is_empty());
    assert_eq!(page(CaseScope::All, Some(Status::Dispatched), None, 10).await, vec![ids[0]]);
    // Several states at once, a narrower place within the scope, a matter.
    let listed = |query: CaseQuery| {
        let store = store.clone();
        async move { store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect::<Vec<_>>() }
    };
    let both =
        CaseQuery { statuses: vec![Status::Received, Status::Dispatched], limit: 10, ..CaseQuery::default() };
    assert_eq!(listed(both).await, newest_first);
    let received = CaseQuery { statuses: vec![Status::Received], limit: 10, ..CaseQuery::default() };
    assert_eq!(listed(received).await, newest_first[..newest_first.len() - 1]);
    let in_grid = CaseQuery {
        scope: county,
        within: Some((4, JurisdictionId(SampleWorld::GRID))),
        limit: 10,
        ..CaseQuery::default()
    };
    assert_eq!(listed(in_grid).await, newest_first);
    let elsewhere = CaseQuery {
        scope: county,
        within: Some((1, JurisdictionId(SampleWorld::OTHER_COUNTY))),
        limit: 10,
        ..CaseQuery::default()
    };
    assert!(listed(elsewhere).await.is_empty());
    let of_matter =
        CaseQuery { matter: Some(world.matters[0].code.clone()), limit: 10, ..CaseQuery::default() };
    assert_eq!(listed(of_matter).await, vec![ids[0]]);
    let quoted = CaseQuery { tracking_code: Some("CODE-3".into()), limit: 10, ..CaseQuery::default() };
    assert_eq!(listed(quoted).await, vec![ids[3]]);
    assert_eq!(store.case_by_tracking_code("CODE-3").await.unwrap(), Some(ids[3]));
    assert_eq!(store.case_by_tracking_code("CODE-9").await.unwrap(), None);
}

/// Cases received at different times (two at the same one), one dispatched, one suspended: the open cases
/// whose clock runs, by due time and then id, as the store computes them from the states.
async fn open_cases_due_at_different_times(store: &Arc<dyn Store>) -> Vec<CaseId> {
    let world = installed(store).await;
    let service = service(store.clone());
    let mut ids = Vec::new();
    for minutes in [50, 40, 40, 30, 20, 10] {
        let report = world.report("占道经营");
        ids.push(
            service.receive(None, &report, &actor("citizen"), NOW.plus_minutes(-minutes)).await.unwrap().id,
        );
    }
    registered_and_dispatched(&service, &world, ids[0]).await;
    let suspend = Command { note: Some("等待业主回复".into()), ..Command::new(Action::Suspend) };
    service.act(ids[4], None, &suspend, &actor("operator"), NOW).await.unwrap();
    let mut due = Vec::new();
    for id in &ids {
        if let Some(deadline) = store.load_case(*id).await.unwrap().unwrap().deadline {
            due.push((deadline.due, *id));
        }
    }
    due.sort();
    due.into_iter().map(|(_, id)| id).collect()
}

async fn due_list(
    store: &Arc<dyn Store>,
    scope: CaseScope,
    after: Option<CaseId>,
    limit: u32,
) -> Vec<CaseId> {
    let after = match after {
        Some(id) => Some((store.load_case(id).await.unwrap().unwrap().deadline.unwrap().due, id)),
        None => None,
    };
    let query = CaseQuery { scope, order: CaseOrder::Due { after }, limit, ..CaseQuery::default() };
    store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect()
}

async fn work_lists_put_the_soonest_due_first(store: Arc<dyn Store>) {
    let expected = open_cases_due_at_different_times(&store).await;
    assert_eq!(expected.len(), 5, "the suspended case's clock is stopped");
    assert_eq!(due_list(&store, CaseScope::All, None, 10).await, expected);
    let county = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::COUNTY) };
    let grid = CaseScope::Under { depth: 4, jurisdiction: JurisdictionId(SampleWorld::GRID) };
    assert_eq!(due_list(&store, county, None, 10).await, expected, "a county's list skips its place index");
    assert_eq!(due_list(&store, grid, None, 10).await, expected, "a grid's uses it");
    let other = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::OTHER_COUNTY) };
    assert!(due_list(&store, other, None, 10).await.is_empty());
    let lead = CaseScope::Department(DepartmentId(SampleWorld::LEAD_DEPARTMENT));
    let dispatched = *expected.iter().min().unwrap(); // the first report
    assert_eq!(due_list(&store, lead, None, 10).await, [dispatched], "a department's skips its index too");
    // Pages of two, each continuing after the last one's due time and id.
    assert_eq!(due_list(&store, CaseScope::All, None, 2).await, expected[..2]);
    assert_eq!(due_list(&store, CaseScope::All, Some(expected[1]), 2).await, expected[2..4]);
    assert_eq!(due_list(&store, CaseScope::All, Some(expected[3]), 2).await, expected[4..]);
    // Pages of one: a page ends between the two reports received together, and the next goes on by id.
    let mut dues = Vec::new();
    for id in &expected {
        dues.push(store.load_case(*id).await.unwrap().unwrap().deadline.unwrap().due);
    }
    assert!(dues.windows(2).any(|pair| pair[0] == pair[1]), "two share a due time: {dues:?}");
    let mut one_by_one = Vec::new();
    let mut after = None;
    while let [next] = due_list(&store, CaseScope::All, after, 1).await[..] {
        one_by_one.push(next);
        after = Some(next);
    }
    assert_eq!(one_by_one, expected);
    // Filters apply as in the newest-first list.
    let dispatched_only = CaseQuery {
        statuses: vec![Status::Dispatched],
        order: CaseOrder::Due { after: None },
        limit: 10,
        ..CaseQuery::default()
    };
    let listed: Vec<CaseId> =
        store.list_cases(&dispatched_only).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, [dispatched]);
    // Newest first by the clock: running, overdue by a moment, stopped.
    let by_clock = |clock| {
        let store = store.clone();
        async move {
            let query = CaseQuery { clock: Some(clock), limit: 10, ..CaseQuery::default() };
            store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect::<Vec<_>>()
        }
    };
    let mut newest_first = expected.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(by_clock(ClockFilter::Running).await, newest_first);
    assert_eq!(by_clock(ClockFilter::OverdueAt(dues[4])).await, newest_first, "due at that moment");
    assert_eq!(by_clock(ClockFilter::OverdueAt(dues[0].plus_minutes(-1))).await, []);
    let mut due_first: Vec<CaseId> =
        expected.iter().zip(&dues).filter(|(_, due)| **due == dues[0]).map(|(id, _)| *id).collect();
    due_first.reverse();
    assert_eq!(by_clock(ClockFilter::OverdueAt(dues[0])).await, due_first);
    let suspended: Vec<CaseId> = by_clock(ClockFilter::Stopped).await;
    assert_eq!(suspended.len(), 1);
    let in_county =
        CaseQuery { scope: county, clock: Some(ClockFilter::Stopped), limit: 10, ..CaseQuery::default() };
    let listed: Vec<CaseId> =
        store.list_cases(&in_county).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, suspended, "a county's suspended cases, found through their own index");
    assert!(store.load_case(suspended[0]).await.unwrap().unwrap().suspension.is_some());
}

async fn every_case_event_and_access_is_audited(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let mut report = world.report("路灯不亮");
    report.origin = Some("10.1.2.3".into());
    let id = service.receive(None, &report, &actor("citizen"), NOW).await.unwrap().id;
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    service.act(id, None, &register, &actor("operator"), NOW.plus_minutes(1)).await.unwrap();
    let viewed = AuditEntry {
        at: NOW.plus_minutes(2),
        user: Some(UserId(4)),
        actor: "user".into(),
        action: "contact_viewed".into(),
        target: Some(format!("case:{}", id.0)),
        address: Some("10.9.9.9".into()),
        detail: None,
    };
    store.audit(vec![viewed.clone()]).await.unwrap();
    let log = store.audit_log(0, 100).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.entry.action.as_str()).collect();
    assert_eq!(actions, ["received", "registered", "contact_viewed"]);
    assert_eq!(log[0].entry.address.as_deref(), Some("10.1.2.3"));
    assert_eq!(log[0].entry.user, Some(UserId(1)));
    assert_eq!(log[1].entry.target, Some(format!("case:{}", id.0)));
    assert_eq!(log[2].entry, viewed);
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.audit_log(log[1].seq, 100).await.unwrap().len(), 1);
}

async fn users_sessions_and_tokens_round_trip(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let added = store
        .add_user(&NewUser {
            username: "new_operator".into(),
            display_name: "新值班员".into(),
            role: Role::Operator,
            scope: Scope::Jurisdiction(JurisdictionId(SampleWorld::COUNTY)),
            password_hash: Some("$argon2id$first".into()),
        })
        .await
        .unwrap();
    assert_eq!(added.id, UserId(world.users.len() as i64 + 1));
    // Users added at the same instant each get an id of their own; none is told its free name is taken.
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .add_user(&NewUser {
                        username: format!("together_{n}"),
                        display_name: "同时".into(),
                        role: Role::Citizen,
                        scope: Scope::Unbound,
                        password_hash: None,
                    })
                    .await
            })
        })
        .collect();
    let mut added_together = Vec::new();
    for task in tasks {
        added_together.push(task.await.unwrap());
    }
    let mut ids: Vec<i64> = added_together.into_iter().map(|added| added.unwrap().id.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    // Taken whatever the letter case.
    for name in ["new_operator", "New_Operator"] {
        let duplicate = store
            .add_user(&NewUser {
                username: name.into(),
                display_name: "x".into(),
                role: Role::Citizen,
                scope: Scope::Unbound,
                password_hash: None,
            })
            .await;
        assert!(matches!(duplicate, Err(StoreError::Conflict(_))), "{name}: {duplicate:?}");
    }
    let credentials = store.credentials("new_operator").await.unwrap().unwrap();
    assert_eq!(credentials.user, added);
    assert_eq!(credentials.password_hash.as_deref(), Some("$argon2id$first"));
    store.set_login_state(added.id, 3, Some(NOW)).await.unwrap();
    let locked = store.credentials("new_operator").await.unwrap().unwrap();
    assert_eq!((locked.failed_logins, locked.locked_until), (3, Some(NOW)));
    // Failures count in runs: a run that began at or before `counting_since` is over, so only failures
    // close together lock (here three within fifteen minutes lock for fifteen).
    store.set_login_state(added.id, 0, None).await.unwrap();
    let mut counted = Vec::new();
    for minute in [0, 10, 20, 21, 22, 23, 40] {
        let now = NOW.plus_minutes(minute);
        let attempt =
            store.count_login_attempt(added.id, now, 3, now.plus_minutes(15), now.plus_minutes(-15));
        counted.push(attempt.await.unwrap());
    }
    assert_eq!(
        counted,
        [Some(1), Some(2), Some(1), Some(2), Some(3), None, Some(1)],
        "the run of minute 0 is over by minute 20; the third of the next locks until minute 37"
    );
    store.set_login_state(added.id, 3, Some(NOW)).await.unwrap();
    store.set_password(added.id, "$argon2id$second").await.unwrap();
    let reset = store.credentials("new_operator").await.unwrap().unwrap();
    assert_eq!(
        (reset.failed_logins, reset.locked_until, reset.password_hash.as_deref()),
        (0, None, Some("$argon2id$second"))
    );
    assert!(store.credentials("nobody").await.unwrap().is_none());
    assert!(matches!(store.set_password(UserId(9999), "x").await, Err(StoreError::NotFound(_))));

    let session = Session {
        token_hash: "hash-1".into(),
        user: added.id,
        csrf_token: "csrf".into(),
        created_at: NOW,
        expires_at: NOW.plus_minutes(60),
    };
    store.create_session(&session).await.unwrap();
    store.create_session(&Session { token_hash: "hash-2".into(), ..session.clone() }).await.unwrap();
    assert_eq!(store.find_session("hash-1").await.unwrap(), Some((session.clone(), added.clone())));
    store.delete_session("hash-1").await.unwrap();
    assert_eq!(store.find_session("hash-1").await.unwrap(), None);
    store.delete_sessions_of(added.id).await.unwrap();
    assert_eq!(store.find_session("hash-2").await.unwrap(), None);

    let token = ApiToken {
        id: 0,
        token_hash: "token-hash".into(),
        name: "12345热线系统".into(),
        user: added.id,
        scopes: vec!["cases:create".into(), "cases:read".into()],
        created_at: NOW,
        revoked: false,
    };
    let id = store.create_api_token(&token).await.unwrap();
    let (found, owner) = store.find_api_token("token-hash").await.unwrap().unwrap();
    assert_eq!(found, ApiToken { id, ..token.clone() });
    assert_eq!(owner, added);
    let second =
        ApiToken { token_hash: "token-hash-2".into(), name: "传感器网关".into(), ..token.clone() };
    let second_id = store.create_api_token(&second).await.unwrap();
    store.revoke_api_token(id, NOW).await.unwrap();
    assert!(store.find_api_token("token-hash").await.unwrap().unwrap().0.revoked);
    assert!(matches!(store.revoke_api_token(id, NOW).await, Err(StoreError::NotFound(_))));
    let listed = store.api_tokens().await.unwrap();
    assert_eq!(
        listed,
        vec![
            (ApiToken { id: second_id, ..second }, added.clone()),
            (ApiToken { id, revoked: true, ..token }, added.clone())
        ],
        "newest first, revoked ones kept"
    );
}

async fn attachments_are_kept_by_content_hash(store: Arc<dyn Store>) {
    installed(&store).await;
    let content = b"\x89PNG\r\n\x1a\n photo of the pothole".to_vec();
    let meta = AttachmentMeta {
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        mime: "image/png".into(),
        size: content.len() as i64,
        name: "现场照片.png".into(),
        uploaded_by: Some(UserId(3)),
        created_at: NOW,
    };
    store.put_attachment(&meta, &content, "user:3").await.unwrap();
    store.put_attachment(&meta, &content, "user:4").await.unwrap();
    assert_eq!(store.attachment(&meta.sha256).await.unwrap(), Some((meta.clone(), content)));
    for (holder, uploaded) in [("user:3", true), ("user:4", true), ("user:5", false)] {
        assert_eq!(store.has_uploaded(&meta.sha256, holder).await.unwrap(), uploaded, "{holder}");
    }
    assert_eq!(store.attachment(&"0".repeat(64)).await.unwrap(), None);
    for bad in ["../../etc/passwd", "ABC", &"g".repeat(64)] {
        let refused = AttachmentMeta { sha256: bad.to_string(), ..meta.clone() };
        assert!(store.put_attachment(&refused, b"x", "user:3").await.is_err(), "{bad}");
    }
}

async fn the_map_lands_whole_or_not_at_all(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let grid = shiyu_domain::Jurisdiction {
        id: JurisdictionId(50),
        code: "320613001001002".into(),
        name: "桃坞路社区第二网格".into(),
        level: shiyu_domain::Level::Grid,
        parent: Some(JurisdictionId(SampleWorld::COMMUNITY)),
    };
    let square =
        r#"{"type":"Polygon","coordinates":[[[120.86,32.01],[120.87,32.01],[120.87,32.02],[120.86,32.01]]]}"#;
    store.put_map(std::slice::from_ref(&grid), &[(grid.id, square.to_string())]).await.unwrap();
    let outline_of =
        |shapes: Vec<(JurisdictionId, String)>| shapes.into_iter().find(|(id, _)| *id == grid.id);
    assert_eq!(outline_of(store.shapes().await.unwrap()), Some((grid.id, square.to_string())));
    assert_eq!(store.shapes().await.unwrap().len(), 2, "the sample grid's outline and the new one");
    assert_eq!(store.jurisdictions().await.unwrap().len(), world.jurisdictions.len() + 1);
    // An outline for a jurisdiction that does not exist fails the whole import: the new grid is not kept.
    let another =
        shiyu_domain::Jurisdiction { id: JurisdictionId(51), code: "320613001001003".into(), ..grid.clone() };
    let broken = store.put_map(&[another], &[(JurisdictionId(999), square.to_string())]).await;
    assert!(broken.is_err());
    assert_eq!(store.jurisdictions().await.unwrap().len(), world.jurisdictions.len() + 1);
    // Importing again replaces the outline.
    let moved = square.replace("120.86", "120.85");
    store.put_map(&[], &[(grid.id, moved.clone())]).await.unwrap();
    assert_eq!(outline_of(store.shapes().await.unwrap()), Some((grid.id, moved)));
}

async fn registered_matters_are_labels_and_models_are_kept(store: Arc<dyn Store>) {
    let world = installed(&store).await;
    let service = service(store.clone());
    let labelled =
        service.receive(None, &world.report("人行道摊贩占道"), &actor("citizen"), NOW).await.unwrap();
    service.receive(None, &world.report("还没立案的反映"), &actor("citizen"), NOW).await.unwrap();
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    service.act(labelled.id, Some(1), &register, &actor("operator"), NOW).await.unwrap();
    assert_eq!(
        store.labelled_descriptions().await.unwrap(),
        vec![("人行道摊贩占道".to_string(), world.matters[0].code.clone())]
    );
    assert_eq!(store.model("matter").await.unwrap(), None);
    store.put_model("matter", "{\"v\":1}", NOW).await.unwrap();
    store.put_model("matter", "{\"v\":2}", NOW).await.unwrap();
    assert_eq!(store.model("matter").await.unwrap().as_deref(), Some("{\"v\":2}"));
}

fn webhook(department: i64, url: &str) -> NewWebhook {
    NewWebhook {
        department: DepartmentId(department),
        url: url.into(),
        secret_sealed: format!("v1.test.{department}"),
        at: NOW,
    }
}

fn delivery(webhook: i64, seq: i64) -> NewDelivery {
    NewDelivery { webhook, seq, body: format!(r#"{{"seq":{seq}}}"#), at: NOW }
}

fn later(ms: i64) -> Timestamp {
    Timestamp(NOW.0 + ms)
}

fn failed(delivery: i64, error: &str, retry_at: Option<Timestamp>) -> DeliveryAttempt {
    DeliveryAttempt { delivery, at: NOW, outcome: AttemptOutcome::Failed { error: error.into(), retry_at } }
}

async fn webhook_deliveries_are_claimed_retried_and_dead_lettered(store: Arc<dyn Store>) {
    installed(&store).await;
    let (lead, assisting) = (SampleWorld::LEAD_DEPARTMENT, SampleWorld::ASSISTING_DEPARTMENT);
    let first = store.create_webhook(&webhook(lead, "http://a.example/hook")).await.unwrap();
    let second = store.create_webhook(&webhook(assisting, "https://b.example/hook")).await.unwrap();
    assert_ne!(first, second);
    let all = store.webhooks(None).await.unwrap();
    assert_eq!(all.iter().map(|w| w.id).collect::<Vec<_>>(), [first, second]);
    let mine = store.webhooks(Some(DepartmentId(lead))).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].id, mine[0].url.as_str(), mine[0].secret_sealed.as_str()),
        (first, "http://a.example/hook", "v1.test.101")
    );
    assert_eq!((mine[0].created_at, mine[0].disabled_at), (NOW, None));
    assert_eq!(store.active_webhooks().await.unwrap(), [(first, lead), (second, assisting)]);

    // The notifier's output, written twice (a restart): each delivery exists once.
    let made = vec![delivery(first, 1), delivery(first, 2), delivery(second, 3)];
    store.follow("test", 3, vec![], made).await.unwrap();
    store.follow("test", 3, vec![], vec![delivery(first, 1)]).await.unwrap();

    let lease = later(60_000);
    assert!(store.take_deliveries(later(-1), lease, 10).await.unwrap().is_empty(), "nothing due yet");
    let taken = store.take_deliveries(NOW, lease, 2).await.unwrap();
    assert_eq!(taken.iter().map(|d| (d.webhook, d.seq)).collect::<Vec<_>>(), [(first, 1), (first, 2)]);
    assert_eq!(
        (taken[0].url.as_str(), taken[0].secret_sealed.as_str()),
        ("http://a.example/hook", "v1.test.101")
    );
    assert_eq!((taken[0].body.as_str(), taken[0].attempts), (r#"{"seq":1}"#, 0));
    let rest = store.take_deliveries(NOW, lease, 10).await.unwrap();
    assert_eq!(rest.iter().map(|d| d.seq).collect::<Vec<_>>(), [3], "what is taken is leased to its taker");
    assert!(store.take_deliveries(NOW, lease, 10).await.unwrap().is_empty());

    store
        .record_delivery(DeliveryAttempt {
            delivery: taken[0].id,
            at: NOW,
            outcome: AttemptOutcome::Delivered,
        })
        .await
        .unwrap();
    store.record_delivery(failed(taken[1].id, "HTTP 500", Some(later(10_000)))).await.unwrap();
    store.record_delivery(failed(rest[0].id, "no answer within 10 s", None)).await.unwrap();
    // A late second answer about a delivered one changes nothing.
    store.record_delivery(failed(taken[0].id, "HTTP 502", None)).await.unwrap();

    assert!(store.take_deliveries(later(9_999), later(70_000), 10).await.unwrap().is_empty(), "backing off");
    let again = store.take_deliveries(later(10_000), later(70_000), 10).await.unwrap();
    assert_eq!(again.iter().map(|d| (d.seq, d.attempts)).collect::<Vec<_>>(), [(2, 1)]);

    let dead = store.dead_deliveries(0, 10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        (dead[0].id, dead[0].webhook, dead[0].department, dead[0].seq),
        (rest[0].id, second, DepartmentId(assisting), 3)
    );
    assert_eq!(
        (dead[0].attempts, dead[0].last_error.as_deref(), dead[0].dead_at),
        (1, Some("no answer within 10 s"), Some(NOW))
    );
    assert_eq!(dead[0].body, r#"{"seq":3}"#);
    assert!(store.dead_deliveries(dead[0].id, 10).await.unwrap().is_empty(), "a cursor past the last");

    // Only a dead letter can be retried; it starts over.
    assert!(matches!(store.retry_delivery(taken[0].id, NOW).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.retry_delivery(999_999, NOW).await, Err(StoreError::NotFound(_))));
    store.retry_delivery(rest[0].id, later(20_000)).await.unwrap();
    assert!(matches!(store.retry_delivery(rest[0].id, later(20_000)).await, Err(StoreError::Conflict(_))));
    assert!(store.dead_deliveries(0, 10).await.unwrap().is_empty());
    let retried = store.take_deliveries(later(20_000), later(80_000), 10).await.unwrap();
    assert_eq!(retried.iter().map(|d| (d.id, d.attempts)).collect::<Vec<_>>(), [(rest[0].id, 0)]);

    // Disabling stops a webhook: what still waited for it (seq 2, leased) becomes a dead letter, and so does
    // what the notifier made for it before it heard; neither is sent, nor can be retried.
    store.disable_webhook(first, later(30_000)).await.unwrap();
    store.disable_webhook(first, later(40_000)).await.unwrap();
    assert!(matches!(store.disable_webhook(999_999, NOW).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.active_webhooks().await.unwrap(), [(second, assisting)]);
    assert_eq!(store.webhooks(Some(DepartmentId(lead))).await.unwrap()[0].disabled_at, Some(later(30_000)));
    store.follow("test", 4, vec![], vec![delivery(first, 4)]).await.unwrap();
    assert!(store
        .take_deliveries(later(100_000), later(160_000), 10)
        .await
        .unwrap()
        .iter()
        .all(|d| d.webhook != first));
    let dead = store.dead_deliveries(0, 10).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.seq).collect::<Vec<_>>(), [2, 4]);
    assert!(dead.iter().all(|d| d.last_error.as_deref() == Some("webhook disabled")));
    assert!(matches!(store.retry_delivery(dead[0].id, later(100_000)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.dead_deliveries(0, 1).await.unwrap().len(), 1, "paged");
}

/// Two workers taking deliveries at once (two nodes, or a node and a tool) never get the same one.
async fn two_workers_never_take_the_same_delivery(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    installed(&first).await;
    let hook =
        first.create_webhook(&webhook(SampleWorld::LEAD_DEPARTMENT, "http://a.example/")).await.unwrap();
    first.follow("test", 200, vec![], (1..=200).map(|seq| delivery(hook, seq)).collect()).await.unwrap();
    let worker = |store: Arc<dyn Store>| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let taken = store.take_deliveries(NOW, later(60_000), 7).await.unwrap();
                if taken.is_empty() {
                    return mine;
                }
                mine.extend(taken.into_iter().map(|d| d.seq));
            }
        })
    };
    let (a, b) = (worker(first.clone()), worker(second.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut all: Vec<i64> = a.iter().chain(&b).copied().collect();
    all.sort();
    assert_eq!(all, (1..=200).collect::<Vec<_>>(), "each taken exactly once ({} and {})", a.len(), b.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_workers_never_take_the_same_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let first: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let second: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    two_workers_never_take_the_same_delivery(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_never_take_the_same_delivery() {
    let cluster = PgCluster::start(false).unwrap();
    let (first, second) = two_nodes(&cluster, "deliveries").await;
    two_workers_never_take_the_same_delivery(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_sqlite() {
    for (name, story) in all_stories() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
        eprintln!("sqlite: {name}");
        story(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_on_postgres() {
    let cluster = PgCluster::start(false).unwrap();
    for (index, (name, story)) in all_stories().into_iter().enumerate() {
        let options = cluster.create_database(&format!("story_{index}")).await.unwrap();
        let store: Arc<dyn Store> =
            Arc::new(PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap());
        eprintln!("postgres: {name}");
        story(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_data_survives_reopening_and_backs_up_online() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
        let world = installed(&store).await;
        service(store.clone())
            .receive(None, &world.report("违章搭建"), &actor("citizen"), NOW)
            .await
            .unwrap()
            .id
    };
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let state = store.load_case(id).await.unwrap().expect("the acknowledged report is still there");
    assert_eq!(state.description, "违章搭建");

    let backup_dir = tempfile::tempdir().unwrap();
    let target = backup_dir.path().join(shiyu_store::sqlite::DATABASE_FILE);
    store.backup(&target).await.unwrap();
    assert!(matches!(store.backup(&target).await, Err(StoreError::Conflict(_))), "never overwrites");
    let restored = SqliteStore::open(backup_dir.path(), WriteOptions::default()).await.unwrap();
    assert_eq!(restored.load_case(id).await.unwrap(), Some(state));
}

/// A case with a short history, as the JSON that rows held before the binary form: its state and, by version,
/// its events.
async fn case_as_json(store: &Arc<dyn Store>) -> (CaseId, String, Vec<(i64, String)>) {
    let world = installed(store).await;
    let service = service(store.clone());
    let id = service.receive(None, &world.report("井盖缺失"), &actor("citizen"), NOW).await.unwrap().id;
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    let state = service.act(id, None, &register, &actor("operator"), NOW.plus_minutes(5)).await.unwrap();
    let history = store.case_history(id).await.unwrap();
    let events =
        history.iter().map(|e| (e.version as i64, serde_json::to_string(&e.event).unwrap())).collect();
    (id, serde_json::to_string(&state).unwrap(), events)
}

/// Rewrites a case's rows as JSON; `$value` is the SQL that makes the stored value of JSON text `$1`.
macro_rules! rewrite_as_json {
    ($pool:expr, $value:literal, $id:expr, $state:expr, $events:expr) => {
        sqlx::query(concat!("UPDATE cases SET state = ", $value, " WHERE id = $2"))
            .bind(&$state)
            .bind($id.0)
            .execute($pool)
            .await
            .unwrap();
        for (version, payload) in &$events {
            sqlx::query(concat!(
                "UPDATE events SET payload = ",
                $value,
                " WHERE case_id = $2 AND version = $3"
            ))
            .bind(payload)
            .bind($id.0)
            .bind(version)
            .execute($pool)
            .await
            .unwrap();
        }
    };
}

/// What a store reads from rows rewritten as JSON is what it read from them in the binary form.
async fn reads_the_same_from_json(before: &Arc<dyn Store>, after: &Arc<dyn Store>, id: CaseId) {
    assert_eq!(after.load_case(id).await.unwrap(), before.load_case(id).await.unwrap());
    let history = after.case_history(id).await.unwrap();
    assert_eq!(history, before.case_history(id).await.unwrap());
    assert_eq!(history.len(), 2);
    let raw = after.raw_events_since(0, 10).await.unwrap();
    assert!(raw.iter().all(|r| r.payload.first() == Some(&b'{')), "the rows were rewritten as JSON");
    for (raw, stored) in raw.iter().zip(&history) {
        assert_eq!(shiyu_store::codec::decode::<shiyu_domain::Event>(&raw.payload).unwrap(), stored.event);
    }
    let query = CaseQuery { limit: 10, ..CaseQuery::default() };
    let listed = after.list_cases(&query).await.unwrap();
    assert_eq!(listed, before.list_cases(&query).await.unwrap());
    assert_eq!(listed.len(), 1);
}

/// The indexes of the case tables, with their definitions.
async fn case_indexes(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('cases', 'case_departments') \
         ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_defers_indexes_for_a_large_load_and_builds_them_even_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(shiyu_store::sqlite::DATABASE_FILE);
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let world = installed(&store).await;
    let service = service(store.clone());
    let first = service.receive(None, &world.report("路灯不亮"), &actor("citizen"), NOW).await.unwrap();
    let all = case_indexes(&path).await;
    assert!(all.len() >= 10, "{all:?}");

    store.defer_indexes().await.unwrap();
    let left = case_indexes(&path).await;
    let unique =
        |(_, sql): &(String, Option<String>)| sql.as_ref().is_none_or(|s| s.starts_with("CREATE UNIQUE"));
    let of_open_cases = |(name, _): &(String, Option<String>)| {
        shiyu_store::sqlite::KEPT_DURING_LOADS.contains(&name.as_str())
    };
    assert!(
        left.iter().all(|index| unique(index) || of_open_cases(index)),
        "only unique indexes and those of open cases stay: {left:?}"
    );
    assert_eq!(left.iter().filter(|index| of_open_cases(index)).count(), 3, "{left:?}");
    assert!(left.iter().any(|(name, _)| name == "cases_tracking_code"));
    // Without them the store answers as before.
    let second = service.receive(None, &world.report("井盖破损"), &actor("citizen"), NOW).await.unwrap();
    let county = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::COUNTY) };
    let query = CaseQuery { scope: county, limit: 10, ..CaseQuery::default() };
    let listed: Vec<CaseId> = store.list_cases(&query).await.unwrap().into_iter().map(|(id, _)| id).collect();
    assert_eq!(listed, vec![second.id, first.id]);

    let told = std::sync::Mutex::new(Vec::new());
    let mut hear = |built, of| told.lock().unwrap().push((built, of));
    store.build_deferred_indexes(&mut hear).await.unwrap();
    assert_eq!(case_indexes(&path).await, all);
    let missing = all.len() - left.len();
    assert_eq!(*told.lock().unwrap(), (0..=missing).map(|built| (built, missing)).collect::<Vec<_>>());
    told.lock().unwrap().clear();
    store.build_deferred_indexes(&mut hear).await.unwrap();
    assert!(told.lock().unwrap().is_empty(), "nothing to build, nothing told");

    // A load that never ended (the process died): the next open builds what is missing.
    store.defer_indexes().await.unwrap();
    drop((service, store));
    assert!(case_indexes(&path).await.len() < all.len());
    let reopened = SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap();
    assert_eq!(case_indexes(&path).await, all);
    assert_eq!(reopened.list_cases(&query).await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_written_as_json_before_the_binary_form_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let before: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let (id, state, events) = case_as_json(&before).await;
    let path = dir.path().join(shiyu_store::sqlite::DATABASE_FILE);
    let raw = sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    rewrite_as_json!(&raw, "$1", id, state, events);
    let after: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    reads_the_same_from_json(&before, &after, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_written_as_json_before_the_binary_form_still_read() {
    let cluster = PgCluster::start(false).unwrap();
    let options = cluster.create_database("json_rows").await.unwrap();
    let before: Arc<dyn Store> =
        Arc::new(PgStore::connect_with(options.clone(), WriteOptions::default(), true).await.unwrap());
    let (id, state, events) = case_as_json(&before).await;
    let raw = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    // What migration 8 makes of a JSON row: its text's UTF-8 bytes.
    rewrite_as_json!(&raw, "convert_to($1, 'UTF8')", id, state, events);
    let after: Arc<dyn Store> =
        Arc::new(PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap());
    reads_the_same_from_json(&before, &after, id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_sharing_one_database_keep_one_ordered_log() {
    let cluster = PgCluster::start(false).unwrap();
    let (first, second) = two_nodes(&cluster, "shared").await;
    let world = installed(&first).await;
    let mut tasks = Vec::new();
    for n in 0..60 {
        let node = if n % 2 == 0 { first.clone() } else { second.clone() };
        let report = world.report(&format!("两个节点同时受理{n}"));
        tasks.push(tokio::spawn(async move {
            service(node).receive(None, &report, &actor("citizen"), NOW).await.unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let log = second.events_since(0, 1000).await.unwrap();
    assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=60).collect::<Vec<_>>());
    let mut ids: Vec<i64> = log.iter().map(|e| e.case_id.0).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 60);
}

/// The version of `id` that `store` reads once it shows `version`, or after five seconds of waiting for it.
async fn caught_up(store: &Arc<dyn Store>, id: CaseId, version: u64) -> u64 {
    let mut seen = 0;
    for _ in 0..100 {
        seen = store.load_case(id).await.unwrap().unwrap().version;
        if seen == version {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    seen
}

/// Two stores on one database (two nodes, or the server and a command-line tool): what one writes, the
/// other reads within moments, even when it had the case in its read cache; a session ended on one node
/// is refused there at once.
async fn one_node_reads_what_another_wrote(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    let world = installed(&first).await;
    let created = service(first.clone())
        .receive(None, &world.report("井盖缺失"), &actor("citizen"), NOW)
        .await
        .unwrap();
    assert_eq!(second.load_case(created.id).await.unwrap().unwrap().version, 1, "now cached on the second");
    let register = Command::new(Action::Register { matter: world.matters[0].clone(), priority: None });
    service(first.clone()).act(created.id, Some(1), &register, &actor("operator"), NOW).await.unwrap();
    assert_eq!(first.load_case(created.id).await.unwrap().unwrap().version, 2, "the writer reads its write");
    assert_eq!(caught_up(&second, created.id, 2).await, 2, "the second node caught up with the log");

    // The second node bulk-loads while the first acts on the case just before and just after the load: its
    // tailer steps over its own load but reads what came before and after it.
    let suspend = Command { note: Some("等待业主回复".into()), ..Command::new(Action::Suspend) };
    service(first.clone()).act(created.id, Some(2), &suspend, &actor("operator"), NOW).await.unwrap();
    let history: Vec<_> =
        first.case_history(created.id).await.unwrap().into_iter().map(|e| e.event).collect();
    let state = first.load_case(created.id).await.unwrap().unwrap();
    let loaded = second.reserve_case_ids(1, NOW).await.unwrap();
    let bulk = shiyu_store::BulkCases::prepare(&[(loaded, state, history)]).unwrap();
    second.bulk_load(bulk, bulk_audit()).await.unwrap();
    assert_eq!(caught_up(&second, created.id, 3).await, 3, "the write just before the load is read");
    service(first.clone())
        .act(created.id, Some(3), &Command::new(Action::Resume), &actor("operator"), NOW)
        .await
        .unwrap();
    assert_eq!(caught_up(&second, created.id, 4).await, 4, "the write just after the load is read");
    assert_eq!(first.load_case(loaded).await.unwrap().unwrap().version, 3);

    let session = Session {
        token_hash: "f".repeat(64),
        user: world.users[0].id,
        csrf_token: "csrf".into(),
        created_at: NOW,
        expires_at: NOW.plus_minutes(60),
    };
    first.create_session(&session).await.unwrap();
    assert!(first.find_session(&session.token_hash).await.unwrap().is_some());
    first.delete_session(&session.token_hash).await.unwrap();
    assert!(first.find_session(&session.token_hash).await.unwrap().is_none(), "signed out at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_opened_twice_stays_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let first: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let second: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    one_node_reads_what_another_wrote(first, second).await;
}

/// How the file journals, from its header: 1 for a rollback journal, 2 for the WAL.
fn journal_of(dir: &std::path::Path) -> u8 {
    std::fs::read(dir.join(shiyu_store::sqlite::DATABASE_FILE)).unwrap()[18]
}

fn rollback_when_alone() -> WriteOptions {
    WriteOptions { journal: Journal::RollbackWhenAlone, ..WriteOptions::default() }
}

/// A store that asked for a rollback journal on a folder nobody else has open, and got it.
async fn open_alone(dir: &std::path::Path) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir, rollback_when_alone()).await.unwrap());
    assert_eq!((journal_of(dir), store.journal()), (1, Some(Journal::RollbackWhenAlone)));
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loads_alone_through_a_rollback_journal_and_keeps_the_wal_when_not_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    assert_eq!(journal_of(dir.path()), 2);
    // Another process has the file open (here a plain connection): the store keeps the WAL.
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("shiyu.sqlite3"));
    let other = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("SELECT count(*) FROM cases").execute(&other).await.unwrap();
    let beside = SqliteStore::open(dir.path(), rollback_when_alone()).await.unwrap();
    assert_eq!((journal_of(dir.path()), beside.journal()), (2, Some(Journal::Wal)), "not alone: still WAL");
    drop(beside);
    other.close().await;

    // Alone: a file in WAL mode as a server leaves it, in a folder of its own. (Not the one above: a dropped
    // store's pool and writer close their connections in the background, and until they have, a new store
    // on the same file is not alone. A plain connection closes when dropped.)
    let dir = tempfile::tempdir().unwrap();
    {
        let file = rusqlite::Connection::open(dir.path().join(shiyu_store::sqlite::DATABASE_FILE)).unwrap();
        file.pragma_update(None, "journal_mode", "WAL").unwrap();
        file.execute_batch("CREATE TABLE earlier (x INTEGER); DROP TABLE earlier;").unwrap();
    }
    assert_eq!(journal_of(dir.path()), 2);
    let store = open_alone(dir.path()).await;
    bulk_loaded_histories_read_as_their_events(store.clone()).await;
    for beside in ["shiyu.sqlite3-wal", "shiyu.sqlite3-journal"] {
        assert!(!dir.path().join(beside).exists(), "no WAL was written, and no journal is left: {beside}");
    }
    let loaded = store.count_cases().await.unwrap();
    drop(store);
    let reopened = SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap();
    assert_eq!(journal_of(dir.path()), 2, "an ordinary open goes back to the WAL");
    assert_eq!(reopened.count_cases().await.unwrap(), loaded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_opening_beside_a_rollback_load_switches_the_file_back_to_wal() {
    let dir = tempfile::tempdir().unwrap();
    let loading = open_alone(dir.path()).await;
    let serving: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    assert_eq!(journal_of(dir.path()), 2, "the server's open switched the file back");
    // Both go on: the loading store's connections follow the file into WAL mode.
    one_node_reads_what_another_wrote(serving, loading).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_server_opens_while_another_store_loads_through_a_rollback_journal() {
    let dir = tempfile::tempdir().unwrap();
    let loading = open_alone(dir.path()).await;
    let world = installed(&loading).await;
    let service = service(loading.clone());
    let live = service.receive(None, &world.report("楼道堆放杂物"), &actor("citizen"), NOW).await.unwrap().id;
    let history: Vec<_> = loading.case_history(live).await.unwrap().into_iter().map(|e| e.event).collect();
    let state = loading.load_case(live).await.unwrap().unwrap();
    // Chunks made beforehand and loaded back to back, as `shiyu simulate` writes them: the write lock is free
    // only between two of them.
    const CHUNKS: i64 = 40;
    const CASES: i64 = 500;
    let first = loading.reserve_case_ids((CHUNKS * CASES) as u64, NOW).await.unwrap().0;
    let chunks: Vec<shiyu_store::BulkCases> = (0..CHUNKS)
        .map(|chunk| {
            let ids = (0..CASES).map(|n| CaseId(first + chunk * CASES + n));
            let rows: Vec<_> = ids.map(|id| (id, state.clone(), history.clone())).collect();
            shiyu_store::BulkCases::prepare(&rows).unwrap()
        })
        .collect();
    let loader = {
        let loading = loading.clone();
        tokio::spawn(async move {
            for chunk in chunks {
                loading.bulk_load(chunk, bulk_audit()).await.unwrap();
            }
        })
    };
    while loading.count_cases().await.unwrap() < 1 + 2 * CASES as u64 {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let serving = SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap();
    assert_eq!(journal_of(dir.path()), 2);
    let during = serving.count_cases().await.unwrap();
    loader.await.unwrap();
    assert!(during < 1 + (CHUNKS * CASES) as u64, "the server opened while the load went on: {during}");
    assert_eq!(serving.count_cases().await.unwrap(), 1 + (CHUNKS * CASES) as u64, "every load is there");
}

/// What a database from before migration 10 could hold: two accounts whose names differ only in letter case
/// (made from two added by the store, with the migration taken back out).
const BEFORE_MIGRATION_10: [&str; 3] = [
    "DROP INDEX users_username_any_case",
    "DELETE FROM schema_migrations WHERE version = 10",
    "UPDATE users SET username = 'Wang.Li' WHERE username = 'zhang.san'",
];

async fn add_two_operators(store: Arc<dyn Store>) {
    installed(&store).await;
    for username in ["wang.li", "zhang.san"] {
        let user = NewUser {
            username: username.into(),
            display_name: "值班员".into(),
            role: Role::Operator,
            scope: Scope::Jurisdiction(JurisdictionId(SampleWorld::COUNTY)),
            password_hash: None,
        };
        store.add_user(&user).await.unwrap();
    }
}

/// The refusal names the accounts and says what to do, in both languages.
fn refused_over_twins(error: StoreError) {
    let said = error.to_string();
    for expected in ["migration 10", "Wang.Li / wang.li", "UPDATE users SET username", "仅大小写不同"] {
        assert!(said.contains(expected), "{expected}: {said}");
    }
}

/// With the pair renamed, the migration goes through and keeps such pairs out from then on.
async fn twins_kept_out(store: Arc<dyn Store>) {
    let twin = NewUser {
        username: "WANG.LI".into(),
        display_name: "值班员".into(),
        role: Role::Operator,
        scope: Scope::Jurisdiction(JurisdictionId(SampleWorld::COUNTY)),
        password_hash: None,
    };
    assert!(matches!(store.add_user(&twin).await, Err(StoreError::Conflict(_))));
}

const RENAME_ONE_TWIN: &str = "UPDATE users SET username = 'wang.li.2' WHERE username = 'Wang.Li'";
const MIGRATION_10_APPLIED: &str = "SELECT COUNT(*) FROM schema_migrations WHERE version = 10";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_migration_10_over_usernames_differing_only_in_case_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    add_two_operators(Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap())).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("shiyu.sqlite3"));
    let raw = sqlx::SqlitePool::connect_with(options).await.unwrap();
    for sql in BEFORE_MIGRATION_10 {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    refused_over_twins(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap_err());
    let applied: (i64,) = sqlx::query_as(MIGRATION_10_APPLIED).fetch_one(&raw).await.unwrap();
    assert_eq!(applied, (0,), "nothing changed");
    sqlx::query(RENAME_ONE_TWIN).execute(&raw).await.unwrap();
    raw.close().await;
    twins_kept_out(Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_migration_10_over_usernames_differing_only_in_case_and_names_them() {
    let cluster = PgCluster::start(false).unwrap();
    let options = cluster.create_database("twins").await.unwrap();
    let open = || PgStore::connect_with(options.clone(), WriteOptions::default(), true);
    add_two_operators(Arc::new(open().await.unwrap())).await;
    let raw = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    for sql in BEFORE_MIGRATION_10 {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    refused_over_twins(open().await.unwrap_err());
    let applied: (i64,) = sqlx::query_as(MIGRATION_10_APPLIED).fetch_one(&raw).await.unwrap();
    assert_eq!(applied, (0,), "nothing changed");
    sqlx::query(RENAME_ONE_TWIN).execute(&raw).await.unwrap();
    raw.close().await;
    twins_kept_out(Arc::new(open().await.unwrap())).await;
}

/// SQLite plans without statistics and takes an equality on an indexed column for a narrow one: the work
/// lists and the suspended cases of a county, township or department must walk their own small index anyway,
/// and a grid's its place index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_walks_the_small_indexes_of_open_cases_for_wide_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap();
    let county = CaseScope::Under { depth: 1, jurisdiction: JurisdictionId(SampleWorld::COUNTY) };
    let township = CaseScope::Under { depth: 2, jurisdiction: JurisdictionId(SampleWorld::TOWNSHIP) };
    let grid = CaseScope::Under { depth: 4, jurisdiction: JurisdictionId(SampleWorld::GRID) };
    let department = CaseScope::Department(DepartmentId(SampleWorld::LEAD_DEPARTMENT));
    let due = CaseOrder::Due { after: Some((NOW, CaseId(7))) };
    for (scope, order, clock, index) in [
        (county, due, None, "cases_due"),
        (township, due, None, "cases_due"),
        (department, due, None, "cases_due"),
        (grid, due, None, "cases_grid"),
        (county, CaseOrder::default(), Some(ClockFilter::Stopped), "cases_suspended"),
        (department, CaseOrder::default(), Some(ClockFilter::Stopped), "cases_suspended"),
        (county, CaseOrder::default(), None, "cases_county"),
    ] {
        let query = CaseQuery { scope, order, clock, limit: 50, ..CaseQuery::default() };
        let plan = store.list_plan(&query).await.unwrap().join(" / ");
        assert!(plan.split(' ').any(|word| word == index), "{scope:?} {order:?} {clock:?}: {plan}");
    }
}

/// A database from before migration 14: the due column and its indexes taken back out (migration 15's too).
const BEFORE_MIGRATION_14: [&str; 5] = [
    "DROP INDEX cases_suspended",
    "DROP INDEX cases_due",
    "ALTER TABLE cases DROP COLUMN due_at",
    "DELETE FROM schema_migrations WHERE version = 15",
    "DELETE FROM schema_migrations WHERE version = 14",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migration_14_fills_the_due_times_of_the_cases_already_open() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    let expected = open_cases_due_at_different_times(&store).await;
    drop(store);
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("shiyu.sqlite3"));
    let raw = sqlx::SqlitePool::connect_with(options).await.unwrap();
    for sql in BEFORE_MIGRATION_14 {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    raw.close().await;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap());
    assert_eq!(due_list(&store, CaseScope::All, None, 10).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migration_14_fills_the_due_times_of_the_cases_already_open() {
    let cluster = PgCluster::start(false).unwrap();
    let options = cluster.create_database("due").await.unwrap();
    let open = || PgStore::connect_with(options.clone(), WriteOptions::default(), true);
    let store: Arc<dyn Store> = Arc::new(open().await.unwrap());
    let expected = open_cases_due_at_different_times(&store).await;
    drop(store);
    let raw = sqlx::PgPool::connect_with(options.clone()).await.unwrap();
    for sql in BEFORE_MIGRATION_14 {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    raw.close().await;
    let store: Arc<dyn Store> = Arc::new(open().await.unwrap());
    assert_eq!(due_list(&store, CaseScope::All, None, 10).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_read_each_others_writes() {
    let cluster = PgCluster::start(false).unwrap();
    let (first, second) = two_nodes(&cluster, "nodes").await;
    one_node_reads_what_another_wrote(first, second).await;
}

/// Two stores on one new database of `cluster`, as two `shiyu serve` nodes would be.
async fn two_nodes(cluster: &PgCluster, database: &str) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let options = cluster.create_database(database).await.unwrap();
    let first = PgStore::connect_with(options.clone(), WriteOptions::default(), true).await.unwrap();
    let second = PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap();
    (Arc::new(first), Arc::new(second))
}
