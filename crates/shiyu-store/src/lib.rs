//! Shiyu's storage: the event log with one global sequence number, the current state of every case, and the
//! reference data, on SQLite (embedded default) or PostgreSQL, behind one [`Store`] trait.
//!
//! Every append goes through a group committer: appends that arrive together are written in one durable
//! transaction, and each caller is answered only after that transaction has committed.

mod batch;
mod cache;
pub mod codec;
pub mod postgres;
pub mod service;
mod sql;
pub mod sqlite;
mod sqlite_bulk;
pub mod testing;

use async_trait::async_trait;
use shiyu_domain::{
    CaseId, CaseState, Category, Department, DepartmentId, Event, Jurisdiction, JurisdictionId, Matter, Role,
    Scope, Status, Timestamp, User, UserId,
};
use std::path::Path;
use std::sync::Arc;

pub use batch::{BulkCases, CommitMode, GroupCommitStats};
pub use cache::CREDENTIAL_TTL;
pub use service::{CaseService, Clock, Created, ServiceError};

/// Told how many of how many deferred indexes are built (`Store::build_deferred_indexes`).
pub type IndexesBuilt<'a> = dyn FnMut(usize, usize) + Send + 'a;

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

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match &error {
            rusqlite::Error::SqliteFailure(failure, message)
                if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                StoreError::Conflict(message.clone().unwrap_or_else(|| error.to_string()))
            }
            _ => StoreError::Other(error.to_string()),
        }
    }
}

impl From<codec::CodecError> for StoreError {
    fn from(error: codec::CodecError) -> Self {
        StoreError::Other(format!("stored value: {error}"))
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

/// One entry of the event log as stored, its event still JSON text: for read models that take a few fields
/// from every event of the whole log and would spend most of their time decoding the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    pub seq: i64,
    pub case_id: CaseId,
    /// The event as stored (`codec`): read it with `codec::decode` into `shiyu_domain::Event` or any type
    /// that takes only some of its fields.
    pub payload: Vec<u8>,
}

/// A row of the event log as read: `(seq, case, version, span, payload)`, where the row holds `span` events
/// ending at `seq` and `version` (more than one for a bulk-loaded history).
pub(crate) type LogRow = (i64, i64, i64, i64, Vec<u8>);

/// One event of a [`LogRow`]: `(seq, case, version, stored form)`.
pub(crate) type LoggedEvent<'a> = (i64, i64, i64, &'a [u8]);

/// The events of `rows` after `after`.
pub(crate) fn split_rows(rows: &[LogRow], after: i64) -> StoreResult<Vec<LoggedEvent<'_>>> {
    let mut events = Vec::with_capacity(rows.len());
    for (seq, case_id, version, span, payload) in rows {
        let values = if *span == 1 { vec![&payload[..]] } else { codec::split_values(payload)? };
        if values.len() as i64 != *span {
            return Err(StoreError::Other(format!(
                "the log row that ends at event {seq} holds {} events, not {span}",
                values.len()
            )));
        }
        for (offset, value) in values.into_iter().enumerate() {
            let back = span - 1 - offset as i64;
            if seq - back > after {
                events.push((seq - back, *case_id, version - back, value));
            }
        }
    }
    Ok(events)
}

/// The first `limit` events of `rows` after `after` as [`RawEvent`]s.
pub(crate) fn raw_events(rows: Vec<LogRow>, after: i64, limit: u32) -> StoreResult<Vec<RawEvent>> {
    // Almost every row of a live log holds one event: its payload moves over as it is.
    if rows.iter().all(|row| row.3 == 1) {
        return Ok(rows
            .into_iter()
            .filter(|row| row.0 > after)
            .map(|(seq, case_id, _, _, payload)| RawEvent { seq, case_id: CaseId(case_id), payload })
            .collect());
    }
    Ok(split_rows(&rows, after)?
        .into_iter()
        .take(limit as usize)
        .map(|(seq, case_id, _, payload)| RawEvent {
            seq,
            case_id: CaseId(case_id),
            payload: payload.to_vec(),
        })
        .collect())
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

    /// How this store opened its SQLite file: [`Journal::RollbackWhenAlone`] only when asked for and no other
    /// connection had the file open in WAL mode. `None` on PostgreSQL.
    fn journal(&self) -> Option<Journal>;

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

    /// Writes whole histories of new cases (the simulator's path): in one transaction, with sequence numbers
    /// like any append, audited by `audit` once instead of once per event. `Conflict`, writing nothing, when a
    /// case of the chunk's ids exists already. Ids come from [`Store::reserve_case_ids`], so that reports
    /// taken in while a long load runs get ids after the reserved ones instead of colliding with them.
    async fn bulk_load(&self, cases: BulkCases, audit: AuditEntry) -> StoreResult<()>;

    /// Sets `count` case ids aside for a bulk load and returns the first; every case created afterwards gets
    /// an id after them. Ids never used stay a gap.
    async fn reserve_case_ids(&self, count: u64, now: Timestamp) -> StoreResult<CaseId>;

    /// Before a large bulk load: drops the case tables' secondary indexes, so that the load appends rows
    /// instead of changing ten b-trees at scattered places for every case (which slows a load down as the
    /// tables grow). Unique indexes stay. Until [`Store::build_deferred_indexes`], lists are slower but
    /// correct; a store opened after a crash in between builds the indexes first. PostgreSQL keeps its
    /// indexes.
    async fn defer_indexes(&self) -> StoreResult<()>;

    /// Builds the indexes [`Store::defer_indexes`] dropped, each in one sorted pass. `built` hears how many
    /// of how many are built, before the first and after each; it is not called when none is missing.
    async fn build_deferred_indexes(&self, built: &mut IndexesBuilt<'_>) -> StoreResult<()>;

    async fn load_case(&self, id: CaseId) -> StoreResult<Option<CaseState>>;
    async fn case_history(&self, id: CaseId) -> StoreResult<Vec<StoredEvent>>;
    /// Events with a sequence number greater than `after`, in order, at most `limit`.
    async fn events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>>;
    /// The same entries undecoded.
    async fn raw_events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<RawEvent>>;
    async fn last_seq(&self) -> StoreResult<i64>;
    async fn count_cases(&self) -> StoreResult<u64>;
    /// How many cases are in each state.
    async fn case_counts_by_status(&self) -> StoreResult<Vec<(String, u64)>>;

    async fn put_jurisdictions(&self, items: &[Jurisdiction]) -> StoreResult<()>;
    async fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>>;
    /// Jurisdictions with outlines (GeoJSON geometries), written in one transaction.
    async fn put_map(&self, items: &[Jurisdiction], shapes: &[(JurisdictionId, String)]) -> StoreResult<()>;
    /// Every stored outline, by jurisdiction.
    async fn shapes(&self) -> StoreResult<Vec<(JurisdictionId, String)>>;
    /// `(description, matter code)` of every case registered with a matter: the classifier's labels.
    async fn labelled_descriptions(&self) -> StoreResult<Vec<(String, String)>>;
    async fn put_model(&self, name: &str, body: &str, at: Timestamp) -> StoreResult<()>;
    async fn model(&self, name: &str) -> StoreResult<Option<String>>;
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

    /// Newest first, within the scope.
    async fn list_cases(&self, query: &CaseQuery) -> StoreResult<Vec<(CaseId, CaseState)>>;
    async fn case_by_tracking_code(&self, code: &str) -> StoreResult<Option<CaseId>>;

    /// Appends audit entries durably, through the group committer. Case events are audited by the store
    /// itself, in the transaction that appends them.
    async fn audit(&self, entries: Vec<AuditEntry>) -> StoreResult<()>;
    /// Audit entries with a sequence number greater than `after`, oldest first.
    async fn audit_log(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRecord>>;

    async fn add_user(&self, user: &NewUser) -> StoreResult<User>;
    async fn credentials(&self, username: &str) -> StoreResult<Option<Credentials>>;
    /// Sets a password hash and clears failed sign-ins and any lock.
    async fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()>;
    async fn set_login_state(
        &self,
        user: UserId,
        failed_logins: i64,
        locked_until: Option<Timestamp>,
    ) -> StoreResult<()>;
    /// Counts a sign-in attempt against `user` before its password is checked, in one statement, so that
    /// guesses sent in parallel cannot slip past the lock: the attempt that makes `lock_after` failures in
    /// one run locks the account until `lock_until`. A run that began at or before `counting_since` is over
    /// and this attempt begins the next, so only failures close together lock. `None` when the account is
    /// locked at `now` (nothing is counted); otherwise the failures of the run, this attempt included. A
    /// right password then clears them with `set_login_state(user, 0, None)`.
    async fn count_login_attempt(
        &self,
        user: UserId,
        now: Timestamp,
        lock_after: i64,
        lock_until: Timestamp,
        counting_since: Timestamp,
    ) -> StoreResult<Option<i64>>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    async fn find_session(&self, token_hash: &str) -> StoreResult<Option<(Session, User)>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()>;

    /// Stores a token (its `id` is ignored) and returns the id assigned.
    async fn create_api_token(&self, token: &ApiToken) -> StoreResult<i64>;
    async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<(ApiToken, User)>>;
    async fn revoke_api_token(&self, id: i64, at: Timestamp) -> StoreResult<()>;
    /// Every API token ever issued, revoked ones included, newest first, each with the user it acts as.
    async fn api_tokens(&self) -> StoreResult<Vec<(ApiToken, User)>>;

    /// Every case with a deadline alarm ahead, and when it is due: what the deadline engine starts from.
    async fn alarms(&self) -> StoreResult<Vec<(CaseId, Timestamp)>>;
    /// Named settings edited at run time (escalation rules, the working calendar), as JSON.
    async fn put_setting(&self, name: &str, body: &str, at: Timestamp) -> StoreResult<()>;
    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// The last event a follower of the log (the notifier) has dealt with; 0 before its first.
    async fn follower_seq(&self, name: &str) -> StoreResult<i64>;
    /// What a follower made of the events up to `seq`, written in one transaction with its new position, so
    /// that after a crash it resumes where its output ends: nothing lost, nothing twice.
    async fn follow(
        &self,
        follower: &str,
        seq: i64,
        notifications: Vec<NewNotification>,
        deliveries: Vec<NewDelivery>,
    ) -> StoreResult<()>;
    /// `(webhook, department)` of every webhook not disabled.
    async fn active_webhooks(&self) -> StoreResult<Vec<(i64, i64)>>;
    /// A user's notifications, newest first, below the id `before`.
    async fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Notification>>;
    async fn unread_notifications(&self, user: UserId) -> StoreResult<u64>;
    /// Marks the user's notifications read (those listed, or all); returns how many changed.
    async fn mark_notifications_read(
        &self,
        user: UserId,
        ids: Option<&[i64]>,
        at: Timestamp,
    ) -> StoreResult<u64>;

    /// Stores a new outgoing webhook of a department and returns its id.
    async fn create_webhook(&self, webhook: &NewWebhook) -> StoreResult<i64>;
    /// Webhooks in id order, disabled ones too; of one department, or all.
    async fn webhooks(&self, department: Option<DepartmentId>) -> StoreResult<Vec<Webhook>>;
    /// Disables a webhook: the notifier makes nothing new for it, and what was still waiting for it becomes
    /// a dead letter (`webhook disabled`). Disabling it again changes nothing; `NotFound` if there is none.
    async fn disable_webhook(&self, id: i64, at: Timestamp) -> StoreResult<()>;
    /// Claims the deliveries due at `now` (pending, `next_at <= now`, of a webhook still active), oldest first,
    /// at most `limit`: each is moved to `lease_until`, so that no other worker (another node, the next pass)
    /// takes it meanwhile, and comes back by itself if its worker dies before recording the attempt.
    async fn take_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<DueDelivery>>;
    /// Records how an attempt went (through the group committer, with whatever else is being written).
    /// Changes nothing unless the delivery is still pending.
    async fn record_delivery(&self, attempt: DeliveryAttempt) -> StoreResult<()>;
    /// The dead letters: deliveries that gave up, oldest first, with ids above `after`, at most `limit`.
    async fn dead_deliveries(&self, after: i64, limit: u32) -> StoreResult<Vec<DeadDelivery>>;
    /// Sends a dead letter again: pending, no attempts, due at `now`. `NotFound` if there is no such
    /// delivery, `Conflict` if it is not dead or its webhook is disabled.
    async fn retry_delivery(&self, id: i64, now: Timestamp) -> StoreResult<()>;

    /// Stores a file by its content hash (storing the same content again keeps the first copy) and records
    /// that `holder` uploaded it: only a holder may attach it to a case ([`Store::has_uploaded`]).
    async fn put_attachment(&self, meta: &AttachmentMeta, content: &[u8], holder: &str) -> StoreResult<()>;
    async fn attachment(&self, sha256: &str) -> StoreResult<Option<(AttachmentMeta, Vec<u8>)>>;
    async fn has_uploaded(&self, sha256: &str, holder: &str) -> StoreResult<bool>;
}

/// An in-app notification to store: one user, one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub user: UserId,
    pub seq: i64,
    pub case_id: CaseId,
    pub kind: String,
    pub title: String,
    pub urgent: bool,
    pub at: Timestamp,
}

/// A stored notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub seq: i64,
    pub case_id: CaseId,
    pub kind: String,
    pub title: String,
    pub urgent: bool,
    pub at: Timestamp,
    pub read_at: Option<Timestamp>,
}

/// A webhook call to make: the event `seq` for the webhook, first tried at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub webhook: i64,
    pub seq: i64,
    pub body: String,
    pub at: Timestamp,
}

/// A department's outgoing webhook, as an admin creates it. The secret is sealed (`shiyu_auth::Sealer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWebhook {
    pub department: DepartmentId,
    pub url: String,
    pub secret_sealed: String,
    pub at: Timestamp,
}

/// A stored webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub department: DepartmentId,
    pub url: String,
    pub secret_sealed: String,
    pub created_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

/// A delivery claimed for sending, with what sending needs from its webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub webhook: i64,
    /// The event's sequence number: with the webhook, the delivery's idempotency id.
    pub seq: i64,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub url: String,
    pub secret_sealed: String,
}

/// How one attempt at a delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub delivery: i64,
    pub at: Timestamp,
    pub outcome: AttemptOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Anything else; tried again at `retry_at`, or, when that is `None`, given up (a dead letter).
    Failed { error: String, retry_at: Option<Timestamp> },
}

/// A delivery that gave up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadDelivery {
    pub id: i64,
    pub webhook: i64,
    pub department: DepartmentId,
    pub seq: i64,
    pub body: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When it gave up.
    pub dead_at: Option<Timestamp>,
}

/// One line of the audit log: who did what to what, when, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub user: Option<UserId>,
    /// `user`, `reporter`, `system` or `anonymous`.
    pub actor: String,
    /// What happened: a case event's kind, `login`, `contact_viewed`, `user_created`, …
    pub action: String,
    /// What it happened to, e.g. `case:42` or `user:7`.
    pub target: Option<String>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: AuditEntry,
}

/// What sign-in needs to know about a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    pub password_hash: Option<String>,
    pub failed_logins: i64,
    pub locked_until: Option<Timestamp>,
}

/// A signed-in browser session; only the hash of its token is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user: UserId,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A machine client's token (a hotline system, a sensor gateway); only its hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: i64,
    pub token_hash: String,
    pub name: String,
    pub user: UserId,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentMeta {
    pub sha256: String,
    pub mime: String,
    pub size: i64,
    pub name: String,
    pub uploaded_by: Option<UserId>,
    pub created_at: Timestamp,
}

/// Which cases a list may contain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CaseScope {
    /// Every case (the system, or a city-level user).
    #[default]
    All,
    /// Cases whose chain of jurisdictions passes `jurisdiction`, which stands at `depth` in every chain
    /// (0 city, 1 county, 2 township, 3 community, 4 grid, 5 micro-grid).
    Under { depth: usize, jurisdiction: JurisdictionId },
    /// Cases ever dispatched to the department.
    Department(DepartmentId),
    /// Cases the user reported.
    Reporter(UserId),
}

/// How a page of cases is ordered, and where it continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseOrder {
    /// Newest first, continuing below this id (the last of the previous page).
    Newest { before: Option<CaseId> },
    /// A work list: only cases whose clock runs, the one due soonest first (the most overdue at the top),
    /// continuing after the given due time and id (the last of the previous page).
    Due { after: Option<(Timestamp, CaseId)> },
}

impl Default for CaseOrder {
    fn default() -> Self {
        CaseOrder::Newest { before: None }
    }
}

/// Cases by their stage's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockFilter {
    /// Open and not suspended: the clock runs.
    Running,
    /// The clock runs and the stage was due at or before this moment (超期).
    OverdueAt(Timestamp),
    /// Open and suspended (挂起): the clock is stopped.
    Stopped,
}

/// A page of cases in `order`, at most `limit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub scope: CaseScope,
    pub order: CaseOrder,
    /// Only cases in one of these states (any state when empty).
    pub statuses: Vec<Status>,
    /// Narrower than the scope: only cases whose chain passes this jurisdiction, at this depth.
    pub within: Option<(usize, JurisdictionId)>,
    /// Only cases of this matter (its code).
    pub matter: Option<String>,
    /// Only the case with this tracking code (a reporter's receipt).
    pub tracking_code: Option<String>,
    /// Only cases received at or after this instant.
    pub received_after: Option<Timestamp>,
    /// Only cases whose clock is in this condition.
    pub clock: Option<ClockFilter>,
    pub limit: u32,
}

/// A new user, before the store assigns an id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub scope: Scope,
    pub password_hash: Option<String>,
}

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum Location<'a> {
    /// A data folder holding `shiyu.sqlite3` (created if missing; migrations run automatically).
    SqliteDir(&'a Path),
    /// A PostgreSQL URL; run `migrate` first (or pass `migrate: true`).
    Postgres(&'a str),
}

/// How the group committer batches, and how SQLite journals.
#[derive(Clone, Copy, Debug)]
pub struct WriteOptions {
    pub mode: CommitMode,
    /// The most appends one transaction carries.
    pub max_batch: usize,
    pub journal: Journal,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { mode: CommitMode::Group, max_batch: 512, journal: Journal::Wal }
    }
}

/// How the SQLite file keeps a transaction atomic (PostgreSQL ignores it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: readers never wait for the writer. What a server runs on, and what every other
    /// open switches the file back to.
    Wal,
    /// A rollback journal when no other connection has the file open in WAL mode, else the WAL. For a command
    /// that bulk-loads alone (`shiyu simulate`): the pages a load appends are written once, where the WAL
    /// writes them twice (into the log, then into the file at the checkpoint). A server opening the folder
    /// meanwhile switches the file back to WAL, which SQLite allows between this store's transactions. (A
    /// second such command on the same folder finds the file out of WAL mode and gets a rollback journal
    /// too; the two loads then take turns at the lock.)
    RollbackWhenAlone,
}

/// Attachment names are SHA-256 hashes in lowercase hex; anything else (a path, say) is refused.
pub(crate) fn check_sha256(sha256: &str) -> StoreResult<()> {
    if sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(StoreError::NotFound(format!("attachment {sha256}")))
    }
}

/// Writes a file so that it survives a crash once this returns: a temporary file, fsync, rename, fsync of
/// the folder.
pub(crate) async fn write_file_durably(path: &Path, content: &[u8]) -> StoreResult<()> {
    let io = |e: std::io::Error| StoreError::Other(format!("writing {}: {e}", path.display()));
    let folder = path.parent().ok_or_else(|| StoreError::Other("attachment path has no folder".into()))?;
    tokio::fs::create_dir_all(folder).await.map_err(io)?;
    let temporary = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&temporary).await.map_err(io)?;
    tokio::io::AsyncWriteExt::write_all(&mut file, content).await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    tokio::fs::rename(&temporary, path).await.map_err(io)?;
    tokio::fs::File::open(folder).await.map_err(io)?.sync_all().await.map_err(io)?;
    Ok(())
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
