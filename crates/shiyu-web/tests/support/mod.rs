//! `TestApp`: the real router on a real port over a fresh database (SQLite, or a throwaway PostgreSQL
//! cluster), with a clock the test moves.
#![allow(dead_code)]

use shiyu_auth::Sealer;
use shiyu_domain::{Rules, Timestamp};
use shiyu_store::postgres::PgStore;
use shiyu_store::sqlite::SqliteStore;
use shiyu_store::testing::{PgCluster, SampleWorld};
use shiyu_store::{CaseService, Store, WriteOptions};
use shiyu_web::client::HttpClient;
use shiyu_web::{AppState, WebSettings};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub const PASSWORD: &str = "Shiyu-test-2026";
/// The sample world's grid (桃坞路社区第一网格) and the county beside its own (海门区), by code.
pub const GRID: &str = "320613001001001";
pub const OTHER_COUNTY: &str = "320614";
/// 2026-11-23 09:00 Beijing, a working Monday.
pub const START: Timestamp = Timestamp(1_795_395_600_000);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    pub world: SampleWorld,
    clock: Arc<AtomicI64>,
    _sqlite: Option<tempfile::TempDir>,
    _postgres: Option<PgCluster>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        TestApp::start_with(
            backend,
            WebSettings {
                lockout_after: 3,
                account_lockout_after: 6,
                public_requests_per_minute: 0,
                ..WebSettings::default()
            },
        )
        .await
    }

    pub async fn start_with(backend: Backend, settings: WebSettings) -> TestApp {
        let (store, sqlite, postgres): (Arc<dyn Store>, _, _) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                (
                    Arc::new(SqliteStore::open(dir.path(), WriteOptions::default()).await.unwrap()),
                    Some(dir),
                    None,
                )
            }
            Backend::Postgres => {
                let cluster = PgCluster::start(false).unwrap();
                let options = cluster.create_database("shiyu").await.unwrap();
                (
                    Arc::new(PgStore::connect_with(options, WriteOptions::default(), true).await.unwrap()),
                    None,
                    Some(cluster),
                )
            }
        };
        let world = SampleWorld::new();
        world.install(store.as_ref()).await.unwrap();
        let hash = shiyu_auth::hash_password(PASSWORD).unwrap();
        for user in &world.users {
            store.set_password(user.id, &hash).await.unwrap();
        }
        let clock = Arc::new(AtomicI64::new(START.0));
        let reading = clock.clone();
        let service = CaseService::new(store.clone(), Arc::new(Rules::default()));
        let sealer = Sealer::new(&[("t1".into(), Sealer::generate_key())]).unwrap();
        let state = AppState::new(
            service,
            sealer,
            Arc::new(move || Timestamp(reading.load(Ordering::SeqCst))),
            settings,
        )
        .await
        .unwrap();
        // Statistics answer 503 until the start-up rebuild is done; tests start from a finished one.
        while !state.analytics.is_ready() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(shiyu_web::serve(listener, state, std::future::pending()));
        TestApp { address, store, world, clock, _sqlite: sqlite, _postgres: postgres }
    }

    pub fn advance_minutes(&self, minutes: i64) {
        self.clock.fetch_add(minutes * 60_000, Ordering::SeqCst);
    }

    pub fn anonymous(&self) -> HttpClient {
        HttpClient::new(self.address)
    }

    /// A client connecting from another loopback address (`127.0.0.2` …), as another machine would.
    pub fn anonymous_from(&self, from: &str) -> HttpClient {
        HttpClient::from_address(self.address, from.parse().expect("an IP address"))
    }

    pub async fn signed_in(&self, username: &str) -> HttpClient {
        let mut client = HttpClient::new(self.address);
        let (status, body) = client.sign_in(username, PASSWORD).await.unwrap();
        assert_eq!(status, 200, "{username} signs in: {body}");
        client
    }
}

/// Runs a scenario on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::TestApp::start(super::support::Backend::Sqlite).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::TestApp::start(super::support::Backend::Postgres).await).await;
                }
            )*
        }
    };
}
