//! Outgoing webhooks end to end, against a receiver the test runs (a small axum server on 127.0.0.1) and a
//! clock the test moves: a dispatched case reaches its department signed and with its idempotency id; failures
//! are retried with backoff; exhausted attempts become a dead letter that can be sent again; a disabled
//! webhook gets nothing new; timeouts, refused connections and TLS failures count as failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shiyu_auth::Sealer;
use shiyu_domain::{Action, Command, DepartmentId, Rules, Timestamp};
use shiyu_sla::webhooks::{Deliverer, Policy};
use shiyu_sla::{LogSms, Notifier};
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{CaseService, Clock, NewDelivery, NewWebhook, Store};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START: Timestamp = Timestamp(1_795_400_000_000); // 2026-11-23 09:33 in Beijing, a working Monday

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A webhook receiver: records every request and answers 500 to the first `failing` ones, and on `/slow`
/// waits three seconds before answering.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
    failing: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app =
            axum::Router::new().route("/{*path}", axum::routing::post(take)).with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, base)
    }

    fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

async fn take(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let path = uri.path().to_string();
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    receiver.seen.lock().unwrap().push(Received { path, headers, body });
    let failing = receiver.failing.load(Ordering::SeqCst);
    if failing > 0 {
        receiver.failing.store(failing - 1, Ordering::SeqCst);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

/// What a receiver does with the secret it was shown: HMAC-SHA256 over `{timestamp}.{body}`.
fn verifies(secret: &str, request: &Received) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{}.{}", request.header("x-shiyu-timestamp"), request.body).as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    request.header("x-shiyu-signature") == format!("sha256={hex}")
}

struct World {
    store: Arc<dyn Store>,
    service: CaseService,
    sample: SampleWorld,
    sealer: Arc<Sealer>,
    time: Arc<AtomicI64>,
    clock: Clock,
    folder: tempfile::TempDir,
    _postgres: Option<PgCluster>,
}

impl World {
    async fn new(postgres: bool) -> World {
        let folder = tempfile::tempdir().unwrap();
        let (store, sample, cluster) = common::sample_store(postgres, folder.path()).await;
        let time = Arc::new(AtomicI64::new(START.0));
        let reading = time.clone();
        let clock: Clock = Arc::new(move || Timestamp(reading.load(Ordering::SeqCst)));
        let sealer = Arc::new(Sealer::new(&[("test".into(), Sealer::generate_key())]).unwrap());
        let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
        World { store, service, sample, sealer, time, clock, folder, _postgres: cluster }
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    fn advance(&self, by: Duration) {
        self.time.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// What `POST /api/webhooks` does: a fresh secret, stored sealed. Returns the id and the secret.
    async fn webhook(&self, department: i64, url: &str) -> (i64, String) {
        let secret = shiyu_sla::webhooks::new_secret();
        let id = self
            .store
            .create_webhook(&NewWebhook {
                department: DepartmentId(department),
                url: url.into(),
                secret_sealed: self.sealer.seal(&secret).unwrap(),
                at: self.now(),
            })
            .await
            .unwrap();
        (id, secret)
    }

    /// A delivery as the notifier would queue it, for the event `seq`.
    async fn queue(&self, webhook: i64, seq: i64) {
        let body = format!(r#"{{"seq":{seq},"kind":"overdue"}}"#);
        let delivery = NewDelivery { webhook, seq, body, at: self.now() };
        self.store.follow("test", seq, vec![], vec![delivery]).await.unwrap();
    }

    fn deliverer(&self) -> Deliverer {
        Deliverer::new(self.store.clone(), self.sealer.clone(), self.clock.clone())
    }

    fn notifier(&self) -> Notifier {
        let sms = Arc::new(LogSms::new(self.folder.path().join("sms.log")));
        Notifier::new(self.store.clone(), sms, self.clock.clone())
    }

    /// Reports, registers and dispatches a case to the sample's lead department, with the other assisting.
    async fn dispatch_a_case(&self) -> i64 {
        let actor = |name: &str| self.sample.actor(name).unwrap();
        let report = self.sample.report("桃坞路人行道上有人摆摊卖水果");
        let id = self.service.receive(None, &report, &actor("citizen"), self.now()).await.unwrap().id;
        let register =
            Command::new(Action::Register { matter: self.sample.matters[0].clone(), priority: None });
        self.service.act(id, None, &register, &actor("operator"), self.now()).await.unwrap();
        let mut dispatch = Command::new(Action::Dispatch {
            lead: DepartmentId(SampleWorld::LEAD_DEPARTMENT),
            assisting: vec![DepartmentId(SampleWorld::ASSISTING_DEPARTMENT)],
            basis: None,
        });
        dispatch.origin = Some("192.0.2.7".into());
        self.service.act(id, None, &dispatch, &actor("operator"), self.now()).await.unwrap();
        id.0
    }
}

async fn a_dispatched_case_reaches_its_department_signed(postgres: bool) {
    let world = World::new(postgres).await;
    let (receiver, base) = Receiver::start().await;
    let (hook, secret) = world.webhook(SampleWorld::LEAD_DEPARTMENT, &format!("{base}/shiyu/events")).await;
    let case = world.dispatch_a_case().await;
    let dispatched = world.store.last_seq().await.unwrap();

    // The notifier queues the delivery with the in-app notices; the deliverer sends it.
    assert_eq!(world.notifier().pass().await.unwrap(), 3);
    world.advance(Duration::from_millis(1500));
    assert_eq!(world.deliverer().pass().await.unwrap(), 1);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 1, "only the lead department has a webhook, and only dispatching concerns it");
    let request = &seen[0];
    assert_eq!(request.path, "/shiyu/events");
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-shiyu-delivery"), format!("{hook}-{dispatched}"));
    assert_eq!(request.header("x-shiyu-event"), "dispatched");
    assert_eq!(request.header("x-shiyu-timestamp"), world.now().0.to_string());
    assert!(verifies(&secret, request), "the signature verifies with the secret shown at creation");
    assert!(!verifies("another secret", request));
    let body: serde_json::Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!((body["kind"].as_str(), body["case_id"].as_i64()), (Some("dispatched"), Some(case)));
    assert_eq!(
        (body["seq"].as_i64(), body["department"].as_i64()),
        (Some(dispatched), Some(SampleWorld::LEAD_DEPARTMENT))
    );
    assert_eq!(body["event"]["change"]["type"], "dispatched");
    assert!(!request.body.contains("192.0.2.7"), "the command's network origin stays in the audit trail");

    // Delivered once: neither the deliverer nor a second notifier pass sends it again.
    world.advance(Duration::from_secs(3600));
    assert_eq!(world.notifier().pass().await.unwrap(), 0);
    assert_eq!(world.deliverer().pass().await.unwrap(), 0);
    assert_eq!(receiver.seen().len(), 1);
    assert!(world.store.dead_deliveries(0, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_case_reaches_its_department_signed_on_sqlite() {
    a_dispatched_case_reaches_its_department_signed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatched_case_reaches_its_department_signed_on_postgres() {
    a_dispatched_case_reaches_its_department_signed(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_backoff_until_delivered() {
    let world = World::new(false).await;
    let (receiver, base) = Receiver::start().await;
    let (hook, secret) = world.webhook(SampleWorld::LEAD_DEPARTMENT, &format!("{base}/hook")).await;
    world.queue(hook, 7).await;
    receiver.fail_next(3);
    let deliverer = world.deliverer();

    assert_eq!(deliverer.pass().await.unwrap(), 1, "first attempt: 500");
    assert_eq!(deliverer.pass().await.unwrap(), 0, "not again at once");
    for wait in [10, 20, 40] {
        world.advance(Duration::from_millis(wait * 1000 - 1));
        assert_eq!(deliverer.pass().await.unwrap(), 0, "still waiting {wait} s");
        world.advance(Duration::from_millis(1));
        assert_eq!(deliverer.pass().await.unwrap(), 1, "retried after {wait} s");
    }
    let seen = receiver.seen();
    assert_eq!(seen.len(), 4, "three failures, then delivered");
    assert!(seen.iter().all(|r| r.header("x-shiyu-delivery") == format!("{hook}-7")), "one idempotency id");
    assert!(seen.iter().all(|r| verifies(&secret, r)), "each attempt signed for its own timestamp");
    let stamps: Vec<i64> = seen.iter().map(|r| r.header("x-shiyu-timestamp").parse().unwrap()).collect();
    assert_eq!(stamps, [START.0, START.0 + 10_000, START.0 + 30_000, START.0 + 70_000]);
    assert_eq!(seen[0].header("x-shiyu-event"), "overdue");

    world.advance(Duration::from_secs(24 * 3600));
    assert_eq!(deliverer.pass().await.unwrap(), 0, "delivered is done");
    assert!(world.store.dead_deliveries(0, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_attempts_become_a_dead_letter_that_can_be_sent_again() {
    let world = World::new(false).await;
    let (receiver, base) = Receiver::start().await;
    let (hook, secret) = world.webhook(SampleWorld::LEAD_DEPARTMENT, &format!("{base}/hook")).await;
    world.queue(hook, 3).await;
    receiver.fail_next(usize::MAX);
    let deliverer = world.deliverer();
    let policy = Policy::default();

    for attempt in 1..=policy.max_attempts {
        assert_eq!(deliverer.pass().await.unwrap(), 1, "attempt {attempt}");
        assert!(
            world.store.dead_deliveries(0, 10).await.unwrap().is_empty() == (attempt < policy.max_attempts)
        );
        if let Some(wait) = policy.retry_after(attempt) {
            world.advance(wait);
        }
    }
    assert_eq!(receiver.seen().len(), 10);
    let dead = world.store.dead_deliveries(0, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].webhook, dead[0].seq, dead[0].attempts), (hook, 3, 10));
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 500 Internal Server Error"));
    assert_eq!(dead[0].dead_at, Some(world.now()));
    world.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(deliverer.pass().await.unwrap(), 0, "a dead letter is not sent by itself");

    // The receiver is mended; an admin sends the dead letter again.
    receiver.fail_next(0);
    world.store.retry_delivery(dead[0].id, world.now()).await.unwrap();
    assert_eq!(deliverer.pass().await.unwrap(), 1);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 11);
    assert_eq!(seen[10].header("x-shiyu-delivery"), format!("{hook}-3"), "the same idempotency id as before");
    assert!(verifies(&secret, &seen[10]));
    assert!(world.store.dead_deliveries(0, 10).await.unwrap().is_empty());
    world.advance(Duration::from_secs(3600));
    assert_eq!(deliverer.pass().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_webhook_gets_nothing_new() {
    let world = World::new(false).await;
    let (receiver, base) = Receiver::start().await;
    let lead = SampleWorld::LEAD_DEPARTMENT;
    let (old, _) = world.webhook(lead, &format!("{base}/old")).await;
    let (new, _) = world.webhook(lead, &format!("{base}/new")).await;
    world.queue(old, 1).await;
    world.store.disable_webhook(old, world.now()).await.unwrap();
    // What the notifier made for it in the moments before it heard of the change.
    world.queue(old, 2).await;

    world.dispatch_a_case().await;
    world.notifier().pass().await.unwrap();
    assert_eq!(world.deliverer().pass().await.unwrap(), 1);
    let seen = receiver.seen();
    assert_eq!(seen.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["/new"]);
    assert!(seen[0].header("x-shiyu-delivery").starts_with(&format!("{new}-")));
    let dead = world.store.dead_deliveries(0, 10).await.unwrap();
    assert_eq!(dead.iter().map(|d| (d.webhook, d.seq)).collect::<Vec<_>>(), [(old, 1), (old, 2)]);
    assert!(dead.iter().all(|d| d.last_error.as_deref() == Some("webhook disabled") && d.attempts == 0));
    world.advance(Duration::from_secs(3600));
    assert_eq!(world.deliverer().pass().await.unwrap(), 0);
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_refusals_bad_tls_and_unopenable_secrets_are_failures() {
    let world = World::new(false).await;
    let (_receiver, base) = Receiver::start().await;
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let lead = SampleWorld::LEAD_DEPARTMENT;
    let (slow, _) = world.webhook(lead, &format!("{base}/slow")).await;
    let (refused, _) = world.webhook(lead, &format!("http://{closed}/hook")).await;
    let (tls, _) = world.webhook(lead, &base.replace("http://", "https://")).await;
    let foreign = world
        .store
        .create_webhook(&NewWebhook {
            department: DepartmentId(lead),
            url: format!("{base}/hook"),
            secret_sealed: Sealer::new(&[("other".into(), Sealer::generate_key())])
                .unwrap()
                .seal("s")
                .unwrap(),
            at: world.now(),
        })
        .await
        .unwrap();
    for (seq, hook) in [slow, refused, tls, foreign].into_iter().enumerate() {
        world.queue(hook, seq as i64 + 1).await;
    }
    let policy = Policy { timeout: Duration::from_millis(500), max_attempts: 1, ..Policy::default() };
    let deliverer =
        Deliverer::with_policy(world.store.clone(), world.sealer.clone(), world.clock.clone(), policy);
    assert_eq!(deliverer.pass().await.unwrap(), 4);
    let dead = world.store.dead_deliveries(0, 10).await.unwrap();
    let error =
        |hook: i64| dead.iter().find(|d| d.webhook == hook).and_then(|d| d.last_error.clone()).unwrap();
    assert_eq!(error(slow), "no answer within 0.5 s");
    assert!(error(refused).to_lowercase().contains("refused"), "{}", error(refused));
    assert!(
        error(tls).to_lowercase().contains("ssl")
            || error(tls).to_lowercase().contains("tls")
            || error(tls).contains("InvalidContentType"),
        "{}",
        error(tls)
    );
    assert!(error(foreign).contains("UNKNOWN_KEY_ID"), "{}", error(foreign));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_worker_delivers_what_is_queued() {
    let world = World::new(false).await;
    let (receiver, base) = Receiver::start().await;
    let (hook, _) = world.webhook(SampleWorld::LEAD_DEPARTMENT, &format!("{base}/hook")).await;
    let worker = tokio::spawn(world.deliverer().run(Duration::from_millis(20)));
    for seq in 1..=40 {
        world.queue(hook, seq).await;
    }
    for _ in 0..250 {
        if receiver.seen().len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    worker.abort();
    assert_eq!(receiver.seen().len(), 40, "nothing sent twice");
    let mut ids: Vec<String> =
        receiver.seen().iter().map(|r| r.header("x-shiyu-delivery").to_string()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "each delivered once");
}
