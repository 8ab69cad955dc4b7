//! Outgoing webhooks: the worker that sends what the notifier queued in the `deliveries` table — signed,
//! retried with backoff until the receiver takes it or the attempts run out (a dead letter) — and what an
//! admin's new webhook needs (a URL check, a secret). The receiver's side is described in docs/webhooks.md.

use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use shiyu_auth::Sealer;
use shiyu_domain::Timestamp;
use shiyu_store::{AttemptOutcome, Clock, DeliveryAttempt, DueDelivery, Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// The idempotency id of a delivery: `{webhook id}-{event seq}`, the same on every attempt.
pub const DELIVERY_HEADER: &str = "x-shiyu-delivery";
/// The event's kind (`dispatched`, `overdue`, …).
pub const EVENT_HEADER: &str = "x-shiyu-event";
/// Milliseconds since 1970 when the attempt was signed.
pub const TIMESTAMP_HEADER: &str = "x-shiyu-timestamp";
/// `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` under the webhook's secret.
pub const SIGNATURE_HEADER: &str = "x-shiyu-signature";
/// The longest URL a webhook may have.
pub const MAX_URL_CHARS: usize = 2048;
/// How much of a receiver's answer is read (and thrown away) so that the connection can be reused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A new webhook's secret: 32 random bytes in URL-safe base64 (43 characters), shown once to its creator and
/// stored sealed. The HMAC key is the secret's text exactly as shown.
pub fn new_secret() -> String {
    shiyu_auth::random_token()
}

/// The `X-Shiyu-Signature` value for a body sent at `timestamp` (milliseconds).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let signed = format!("{timestamp}.{body}");
    format!("sha256={}", shiyu_auth::hmac_sha256_hex(secret.as_bytes(), signed.as_bytes()))
}

/// Why a URL cannot be a webhook's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    Empty,
    TooLong,
    /// Spaces, control characters or a `#fragment`.
    BadCharacters,
    Unparsable,
    /// Anything but `http` and `https`.
    Scheme,
    NoHost,
    /// A port that is not a number from 1 to 65535.
    Port,
    /// `user:password@` in the URL: a credential that would be stored unsealed.
    Credentials,
}

impl UrlProblem {
    pub fn message_zh(self) -> &'static str {
        match self {
            UrlProblem::Empty => "地址为空",
            UrlProblem::TooLong => "地址超过2048个字符",
            UrlProblem::BadCharacters => "地址含空格、控制字符或 #片段",
            UrlProblem::Unparsable => "地址无法解析",
            UrlProblem::Scheme => "地址须以 http:// 或 https:// 开头",
            UrlProblem::NoHost => "地址缺少主机名",
            UrlProblem::Port => "端口须为1到65535之间的数字",
            UrlProblem::Credentials => "地址不得包含用户名或密码，接收方应校验签名",
        }
    }

    pub fn message_en(self) -> &'static str {
        match self {
            UrlProblem::Empty => "the URL is empty",
            UrlProblem::TooLong => "the URL is longer than 2048 characters",
            UrlProblem::BadCharacters => "the URL contains spaces, control characters or a #fragment",
            UrlProblem::Unparsable => "the URL cannot be parsed",
            UrlProblem::Scheme => "the URL must start with http:// or https://",
            UrlProblem::NoHost => "the URL has no host",
            UrlProblem::Port => "the URL's port must be a number from 1 to 65535",
            UrlProblem::Credentials => {
                "the URL must not carry a user name or password; the receiver checks the signature instead"
            }
        }
    }
}

/// Checks a webhook URL before anything is stored: `http` or `https`, a host, at most [`MAX_URL_CHARS`].
pub fn check_url(url: &str) -> Result<(), UrlProblem> {
    if url.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if url.chars().count() > MAX_URL_CHARS {
        return Err(UrlProblem::TooLong);
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '#') {
        return Err(UrlProblem::BadCharacters);
    }
    let lower = url.to_ascii_lowercase();
    if !lower.starts_with("http://") && !lower.starts_with("https://") {
        return Err(UrlProblem::Scheme);
    }
    let uri: hyper::Uri = url.parse().map_err(|_| UrlProblem::Unparsable)?;
    let authority = uri.authority().ok_or(UrlProblem::NoHost)?;
    if authority.as_str().contains('@') {
        return Err(UrlProblem::Credentials);
    }
    let host = authority.host();
    if host.trim_matches(['[', ']']).is_empty() {
        return Err(UrlProblem::NoHost);
    }
    match authority.as_str().get(host.len()..) {
        Some("") => Ok(()),
        Some(port) if port.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(UrlProblem::Port),
    }
}

/// How deliveries are sent and retried.
#[derive(Clone, Debug)]
pub struct Policy {
    /// For one attempt, from connecting to the answer's status line.
    pub timeout: Duration,
    /// The wait after the first failure; it doubles after each further one…
    pub first_retry: Duration,
    /// …up to this.
    pub max_retry: Duration,
    /// Attempts before a delivery is given up (becomes a dead letter).
    pub max_attempts: u32,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a taken delivery is kept from other workers: at least twice `timeout`, so that only a
    /// worker that died lets it go (it is then sent again, with the same idempotency id).
    pub lease: Duration,
}

impl Default for Policy {
    /// 10 s per attempt; retries after 10 s, 20 s, 40 s … at most 1 h apart; 10 attempts (about 85 minutes
    /// from the first to the last); 16 at once.
    fn default() -> Self {
        Policy {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(10),
            max_retry: Duration::from_secs(3600),
            max_attempts: 10,
            concurrency: 16,
            lease: Duration::from_secs(60),
        }
    }
}

impl Policy {
    /// How long to wait after the `failures`-th failed attempt; `None` when that was the last one allowed.
    pub fn retry_after(&self, failures: u32) -> Option<Duration> {
        if failures >= self.max_attempts {
            return None;
        }
        let doubling = 1u32 << failures.saturating_sub(1).min(30);
        Some(self.first_retry.saturating_mul(doubling).min(self.max_retry))
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The delivery worker. [`Deliverer::run`] is the server's loop; [`Deliverer::pass`] sends what is due now
/// and waits for it (tests, tools).
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    clock: Clock,
    policy: Arc<Policy>,
    client: HttpClient,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, sealer: Arc<Sealer>, clock: Clock) -> Deliverer {
        Deliverer::with_policy(store, sealer, clock, Policy::default())
    }

    pub fn with_policy(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        clock: Clock,
        policy: Policy,
    ) -> Deliverer {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(policy.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        // A lease shorter than an attempt would let a second worker take a delivery still in flight.
        let lease = policy.lease.max(policy.timeout.saturating_mul(2));
        // And a retry at once would let a pass run forever against a receiver that is down.
        let first_retry = policy.first_retry.max(Duration::from_secs(1));
        Deliverer { store, sealer, clock, policy: Arc::new(Policy { lease, first_retry, ..policy }), client }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    fn lease_from(&self, now: Timestamp) -> Timestamp {
        Timestamp(now.0.saturating_add(millis(self.policy.lease)))
    }

    /// Sends every delivery due now, `concurrency` at a time, and records how each went. Returns how many
    /// attempts it made.
    pub async fn pass(&self) -> StoreResult<usize> {
        let limit = self.policy.concurrency.max(1);
        let mut attempts = 0;
        loop {
            let now = (self.clock)();
            let due = self.store.take_deliveries(now, self.lease_from(now), limit as u32).await?;
            let taken = due.len();
            let recorded: Vec<StoreResult<()>> = futures_util::stream::iter(due)
                .map(|d| self.deliver(d))
                .buffer_unordered(limit)
                .collect()
                .await;
            recorded.into_iter().collect::<StoreResult<Vec<()>>>()?;
            attempts += taken;
            // A failed attempt is due again only later, so this ends.
            if taken < limit {
                return Ok(attempts);
            }
        }
    }

    /// Delivers until the task is dropped: takes as many due deliveries as there are free slots, sends each
    /// in a task of its own (so one slow receiver holds one slot, not the others), and looks again every
    /// `poll` when nothing is due.
    pub async fn run(self, poll: Duration) {
        let slots = Arc::new(Semaphore::new(self.policy.concurrency.max(1)));
        loop {
            let Ok(first) = slots.clone().acquire_owned().await else { return };
            let free = slots.available_permits() + 1;
            let now = (self.clock)();
            match self.store.take_deliveries(now, self.lease_from(now), free as u32).await {
                Ok(due) if !due.is_empty() => {
                    let mut slot = Some(first);
                    for delivery in due {
                        let permit = match slot.take() {
                            Some(permit) => permit,
                            None => match slots.clone().acquire_owned().await {
                                Ok(permit) => permit,
                                Err(_) => return,
                            },
                        };
                        let worker = self.clone();
                        tokio::spawn(async move {
                            if let Err(error) = worker.deliver(delivery).await {
                                tracing::warn!(%error, "webhook attempt not recorded; sent again after its lease");
                            }
                            drop(permit);
                        });
                    }
                    continue;
                }
                Ok(_) => drop(first),
                Err(error) => {
                    drop(first);
                    tracing::warn!(%error, "taking webhook deliveries failed");
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// One attempt at one delivery, recorded.
    async fn deliver(&self, delivery: DueDelivery) -> StoreResult<()> {
        let sent = self.send(&delivery).await;
        let at = (self.clock)();
        let outcome = match sent {
            Ok(()) => AttemptOutcome::Delivered,
            Err(error) => {
                let failures = delivery.attempts.saturating_add(1);
                let retry_at = self
                    .policy
                    .retry_after(failures)
                    .map(|wait| Timestamp(at.0.saturating_add(millis(wait))));
                if retry_at.is_none() {
                    tracing::warn!(delivery = delivery.id, webhook = delivery.webhook, seq = delivery.seq, %error,
                        "webhook delivery gave up after {failures} attempts: now a dead letter");
                } else {
                    tracing::info!(delivery = delivery.id, webhook = delivery.webhook, %error, "webhook attempt failed");
                }
                AttemptOutcome::Failed { error, retry_at }
            }
        };
        self.store.record_delivery(DeliveryAttempt { delivery: delivery.id, at, outcome }).await
    }

    /// POSTs the body with its headers; `Ok` only for a 2xx answer within the timeout.
    async fn send(&self, delivery: &DueDelivery) -> Result<(), String> {
        let secret = self
            .sealer
            .open(&delivery.secret_sealed)
            .map_err(|e| format!("the webhook's secret cannot be opened ({})", e.code()))?;
        let timestamp = (self.clock)().0;
        let request = hyper::Request::post(delivery.url.as_str())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(USER_AGENT, HeaderValue::from_static("Shiyu-Webhook/1"))
            .header(DELIVERY_HEADER, format!("{}-{}", delivery.webhook, delivery.seq))
            .header(EVENT_HEADER, event_kind(&delivery.body))
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(&secret, timestamp, &delivery.body))
            .body(Full::new(Bytes::from(delivery.body.clone())))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let deadline = tokio::time::Instant::now() + self.policy.timeout;
        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Err(_) => return Err(format!("no answer within {} s", self.policy.timeout.as_secs_f64())),
            Ok(Err(error)) => return Err(describe(&error)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        // Read (a bounded part of) the answer so that the connection can serve the next delivery.
        let _ =
            tokio::time::timeout_at(deadline, Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect())
                .await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {status}"))
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The `kind` of a webhook body (see [`crate::webhook_body`]).
fn event_kind(body: &str) -> String {
    let kind = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("kind").and_then(|k| k.as_str()).map(str::to_string));
    match kind {
        Some(kind) if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            kind
        }
        _ => "unknown".into(),
    }
}

/// An error with its causes, which is where hyper keeps the useful part ("connection refused", "invalid
/// peer certificate: UnknownIssuer").
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_anything_is_stored() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://hooks.example.gov.cn/shiyu?dept=12",
            "HTTPS://Example.com",
            "http://[::1]:9000/",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        for (bad, problem) in [
            ("", UrlProblem::Empty),
            (long.as_str(), UrlProblem::TooLong),
            ("https://example.com/a b", UrlProblem::BadCharacters),
            ("https://example.com/#top", UrlProblem::BadCharacters),
            ("ftp://example.com/", UrlProblem::Scheme),
            ("example.com/hook", UrlProblem::Scheme),
            ("/hook", UrlProblem::Scheme),
            ("https://user:pw@example.com/", UrlProblem::Credentials),
            ("http://:80/", UrlProblem::NoHost),
            ("http://exa mple.com/", UrlProblem::BadCharacters),
            ("http://example.com:99999/", UrlProblem::Port),
            ("http://example.com:0/", UrlProblem::Port),
            ("http://example.com:/", UrlProblem::Port),
        ] {
            assert_eq!(check_url(bad), Err(problem), "{bad}");
        }
    }

    #[test]
    fn retries_double_up_to_the_cap_and_stop_after_the_last_attempt() {
        let policy = Policy::default();
        let waits: Vec<u64> = (1..=9).map(|n| policy.retry_after(n).unwrap().as_secs()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1280, 2560]);
        assert_eq!(policy.retry_after(10), None);
        let patient = Policy { max_attempts: 40, ..Policy::default() };
        assert_eq!(patient.retry_after(12), Some(Duration::from_secs(3600)));
        assert_eq!(patient.retry_after(39), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let a = signature("secret", 1, "{}");
        assert!(a.starts_with("sha256=") && a.len() == 7 + 64);
        assert_ne!(a, signature("secret", 2, "{}"));
        assert_ne!(a, signature("secret", 1, "{ }"));
        assert_ne!(a, signature("other", 1, "{}"));
        assert_eq!(event_kind(r#"{"kind":"dispatched"}"#), "dispatched");
        assert_eq!(event_kind(r#"{"kind":"a\nb"}"#), "unknown");
        assert_eq!(event_kind("not json"), "unknown");
    }
}
