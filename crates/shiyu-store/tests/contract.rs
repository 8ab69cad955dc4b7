//! The store's contract: the same stories, run against SQLite and against a real PostgreSQL cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use shiyu_domain::{replay, Action, Actor, CaseId, Command, DepartmentId, Rules, Status, Timestamp};
use shiyu_store::postgres::PgStore;
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{CaseService, ServiceError, Store, StoreError, WriteOptions};
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
        the_same_idempotency_key_never_makes_a_second_case,
        concurrent_retries_with_one_key_make_one_case,
        two_operators_acting_at_once_cannot_both_win,
        appends_to_missing_cases_fail_without_harming_their_batch,
        the_whole_loop_replays_to_the_stored_state,
        the_log_is_gap_free_and_ordered_for_read_models,
        writes_arriving_together_share_a_transaction,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_nodes_sharing_one_database_keep_one_ordered_log() {
    let cluster = PgCluster::start(false).unwrap();
    let options = cluster.create_database("shared").await.unwrap();
    let first: Arc<dyn Store> =
        Arc::new(PgStore::connect_with(options.clone(), WriteOptions::default(), true).await.unwrap());
    let second: Arc<dyn Store> =
        Arc::new(PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap());
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
