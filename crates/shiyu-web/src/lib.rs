//! Shiyu's HTTP interface: the JSON API for every action of the loop, sign-in, the citizens' endpoints, the
//! OpenAPI document and the operations endpoints. The only crate that chooses status codes and JSON shapes.

pub mod api;
pub mod auth;
pub mod classifier;
pub mod client;
pub mod errors;
pub mod openapi;
pub mod ops;
pub mod reference;
pub mod stream;
pub mod views;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use shiyu_auth::Sealer;
use shiyu_domain::Timestamp;
use shiyu_store::{CaseService, Store};
use std::sync::Arc;

pub use errors::{WebError, WebResult};

pub use shiyu_store::Clock;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct WebSettings {
    /// Mark the session cookie `Secure` (when served over TLS, directly or behind a proxy).
    pub secure_cookies: bool,
    pub session_minutes: i64,
    /// Failed sign-ins from one address before that address may no longer try the account.
    pub lockout_after: i64,
    /// Failed sign-ins from all addresses together before the account itself is locked.
    pub account_lockout_after: i64,
    /// How long either lock lasts.
    pub lockout_minutes: i64,
    pub max_body_bytes: usize,
    /// Requests per minute one address may make to the public endpoints and to sign-in (0: no limit).
    pub public_requests_per_minute: u32,
    /// A reported location outside every grid goes to the nearest grid within this many metres.
    pub map_tolerance_m: f64,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`.
    pub metrics_token: Option<String>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            secure_cookies: false,
            session_minutes: 12 * 60,
            lockout_after: 5,
            account_lockout_after: 50,
            lockout_minutes: 15,
            max_body_bytes: 256 * 1024,
            public_requests_per_minute: 120,
            map_tolerance_m: 200.0,
            metrics_token: None,
        }
    }
}

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct AppState {
    pub service: CaseService,
    pub store: Arc<dyn Store>,
    pub sealer: Arc<Sealer>,
    pub clock: Clock,
    pub settings: Arc<WebSettings>,
    pub reference: Arc<reference::ReferenceCache>,
    pub metrics: Arc<ops::Metrics>,
    pub classifier: Arc<classifier::ClassifierCache>,
    /// The columnar projection of every case, kept current from the log by a task that ends with the
    /// last clone of this state.
    pub analytics: shiyu_analytics::Analytics,
    pub failed_sign_ins: Arc<auth::FailedSignIns>,
    _follower: Arc<Follower>,
}

/// Stops the analytics follower when dropped.
#[derive(Debug)]
struct Follower(tokio::task::AbortHandle);

impl Drop for Follower {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AppState {
    pub async fn new(
        service: CaseService,
        sealer: Sealer,
        clock: Clock,
        settings: WebSettings,
    ) -> Result<AppState, shiyu_store::StoreError> {
        let store = service.store().clone();
        let reference = reference::ReferenceCache::load(store.as_ref()).await?;
        let classifier = classifier::ClassifierCache::load(store.as_ref()).await?;
        let analytics = shiyu_analytics::Analytics::default();
        let follower = tokio::spawn(
            analytics.clone().rebuild_and_follow(store.clone(), std::time::Duration::from_millis(250)),
        );
        Ok(AppState {
            service,
            store,
            sealer: Arc::new(sealer),
            clock,
            settings: Arc::new(settings),
            reference: Arc::new(reference),
            metrics: Arc::new(ops::Metrics::default()),
            classifier: Arc::new(classifier),
            analytics,
            failed_sign_ins: Arc::default(),
            _follower: Arc::new(Follower(follower.abort_handle())),
        })
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    Router::new()
        .merge(api::routes())
        .merge(ops::routes())
        .route("/api/openapi.json", axum::routing::get(openapi::document))
        .fallback(|| async { errors::WebError::not_found() })
        .layer(axum::middleware::from_fn(errors::uniform_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ops::track))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Responses are written whole; Nagle would only hold small ones back for a delayed acknowledgement.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, router(state).into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
