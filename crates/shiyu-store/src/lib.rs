//! Shiyu's storage: the event log with one global sequence number, the current state of every case, and the
//! reference data, on SQLite (embedded default) or PostgreSQL, behind one [`Store`] trait.
//!
//! Every append goes through a group committer: appends that arrive together are written in one durable
//! transaction, and each caller is answered only after that transaction has committed.

mod batch;
pub mod postgres;
pub mod service;
mod sql;
pub mod sqlite;
pub mod testing;

use async_trait::async_trait;
use shiyu_domain::{CaseId, CaseState, Category, Department, Event, Jurisdiction, Matter, Timestamp, User};
use std::path::Path;
use std::sync::Arc;

pub use batch::{CommitMode, GroupCommitStats};
pub use service::{CaseService, Created, ServiceError};

/// Errors of the storage layer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    /// Someone else changed the case first (optimistic concurrency), or a unique key is taken.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("storage error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::RowNotFound => StoreError::NotFound("row".into()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError::Other(format!("json: {error}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The global sequence number: strictly increasing in commit order, so a read model that has seen `seq`
    /// has seen every event before it.
    pub seq: i64,
    pub case_id: CaseId,
    /// The case's version after this event (1 for the first).
    pub version: u64,
    pub event: Event,
}

/// The answer to a case creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CreateOutcome {
    pub id: CaseId,
    /// `false` when the idempotency key was seen before and the earlier case is returned.
    pub created: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Storage of one Shiyu deployment. Both backends pass the same contract tests (`tests/contract.rs`).
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    fn backend(&self) -> Backend;

    /// Counters of the group committer, for metrics and benchmarks.
    fn commit_stats(&self) -> GroupCommitStats;

    /// Creates a case from its first events. With an idempotency key, a second call with the same key returns
    /// the first call's case and writes nothing.
    async fn create_case(
        &self,
        idempotency_key: Option<String>,
        events: Vec<Event>,
        state: &CaseState,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome>;

    /// Appends events to a case whose version is `expected_version`; `Conflict` if it moved on meanwhile.
    async fn append(
        &self,
        id: CaseId,
        expected_version: u64,
        events: Vec<Event>,
        state: &CaseState,
    ) -> StoreResult<()>;

    async fn load_case(&self, id: CaseId) -> StoreResult<Option<CaseState>>;
    async fn case_history(&self, id: CaseId) -> StoreResult<Vec<StoredEvent>>;
    /// Events with a sequence number greater than `after`, in order, at most `limit`.
    async fn events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>>;
    async fn last_seq(&self) -> StoreResult<i64>;
    async fn count_cases(&self) -> StoreResult<u64>;

    async fn put_jurisdictions(&self, items: &[Jurisdiction]) -> StoreResult<()>;
    async fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>>;
    async fn put_departments(&self, items: &[Department]) -> StoreResult<()>;
    async fn departments(&self) -> StoreResult<Vec<Department>>;
    async fn put_categories(&self, items: &[Category]) -> StoreResult<()>;
    async fn categories(&self) -> StoreResult<Vec<Category>>;
    async fn put_matters(&self, items: &[Matter]) -> StoreResult<()>;
    async fn matters(&self) -> StoreResult<Vec<Matter>>;
    async fn put_users(&self, items: &[User]) -> StoreResult<()>;
    async fn users(&self) -> StoreResult<Vec<User>>;

    /// A consistent copy of the whole database, taken while it serves.
    async fn backup(&self, destination: &Path) -> StoreResult<()>;
}

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Location<'a> {
    /// A data folder holding `shiyu.sqlite3` (created if missing; migrations run automatically).
    SqliteDir(&'a Path),
    /// A PostgreSQL URL; run `migrate` first (or pass `migrate: true`).
    Postgres(&'a str),
}

/// How the group committer batches.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub mode: CommitMode,
    /// The most appends one transaction carries.
    pub max_batch: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { mode: CommitMode::Group, max_batch: 512 }
    }
}

/// Opens a store. `migrate` applies pending migrations first (always done for SQLite).
pub async fn open(
    location: Location<'_>,
    options: WriteOptions,
    migrate: bool,
) -> StoreResult<Arc<dyn Store>> {
    Ok(match location {
        Location::SqliteDir(dir) => Arc::new(sqlite::SqliteStore::open(dir, options).await?),
        Location::Postgres(url) => Arc::new(postgres::PgStore::connect(url, options, migrate).await?),
    })
}
