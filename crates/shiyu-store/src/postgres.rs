//! The scale-out backend: PostgreSQL. Several `shiyu serve` nodes share one database; each node's group
//! committer takes a transaction-level advisory lock, so sequence numbers are assigned in commit order and a
//! read model tailing the log never skips an event that commits late.

use crate::batch::{BatchWriter, GroupCommitter};
use crate::cache::{BackgroundTask, ReadCache};
use crate::WriteOptions;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::ConnectOptions as _;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

crate::sql::shared_sql!(sqlx::Postgres);

/// PostgreSQL plans work lists from its own statistics (see the SQLite store's).
const STEERS_WORK_LISTS: bool = false;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/postgres/0001_init.sql")),
    (2, "access", include_str!("../migrations/postgres/0002_access.sql")),
    (3, "map", include_str!("../migrations/postgres/0003_map.sql")),
    (4, "models", include_str!("../migrations/postgres/0004_models.sql")),
    (5, "duplicates", include_str!("../migrations/postgres/0005_duplicates.sql")),
    (6, "sla", include_str!("../migrations/postgres/0006_sla.sql")),
    (7, "webhooks", include_str!("../migrations/postgres/0007_webhooks.sql")),
    (8, "binary", include_str!("../migrations/postgres/0008_binary.sql")),
    (9, "history_rows", include_str!("../migrations/postgres/0009_history_rows.sql")),
    (10, "usernames_any_case", include_str!("../migrations/postgres/0010_usernames_any_case.sql")),
    (11, "uploads", include_str!("../migrations/postgres/0011_uploads.sql")),
    (12, "partial_indexes", include_str!("../migrations/postgres/0012_partial_indexes.sql")),
    (13, "failure_window", include_str!("../migrations/postgres/0013_failure_window.sql")),
    (14, "due", include_str!("../migrations/postgres/0014_due.sql")),
    (15, "suspended", include_str!("../migrations/postgres/0015_suspended.sql")),
];
/// One lock id for "the event log's writer" across all nodes.
const WRITER_LOCK: &str = "SELECT pg_advisory_xact_lock(7345012026)";

#[derive(Debug)]
pub struct PgStore {
    pool: Pool,
    writer: GroupCommitter,
    cache: Arc<ReadCache>,
    _tailer: BackgroundTask,
}

struct PgWriter {
    conn: sqlx::PgConnection,
    cache: Arc<ReadCache>,
}

#[async_trait]
impl BatchWriter for PgWriter {
    async fn write_batch(&mut self, writes: &[&Write]) -> StoreResult<Vec<StoreResult<Written>>> {
        write_batch(&mut self.conn, writes, "BEGIN", Some(WRITER_LOCK), &self.cache).await
    }
}

impl PgStore {
    /// Connects to `url`; with `run_migrations` applies pending migrations first (what `shiyu migrate` does).
    pub async fn connect(url: &str, write: WriteOptions, run_migrations: bool) -> StoreResult<PgStore> {
        let options = PgConnectOptions::from_str(url)?.statement_cache_capacity(1024);
        PgStore::connect_with(options, write, run_migrations).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        write: WriteOptions,
        run_migrations: bool,
    ) -> StoreResult<PgStore> {
        let mut conn = options.connect().await?;
        if run_migrations {
            migrate(&mut conn, MIGRATIONS, Some(WRITER_LOCK)).await?;
        }
        let pool = PgPoolOptions::new().max_connections(16).connect_with(options).await?;
        let cache = Arc::new(ReadCache::new(last_seq(&pool).await?));
        let tailer = start_cache_tailer(pool.clone(), cache.clone());
        let writer =
            GroupCommitter::start(PgWriter { conn, cache: cache.clone() }, write.mode, write.max_batch);
        Ok(PgStore { pool, writer, cache, _tailer: tailer })
    }

    fn read_pool(&self) -> &Pool {
        &self.pool
    }

    async fn raw_log(&self, after: i64, limit: u32) -> StoreResult<Vec<crate::RawEvent>> {
        let rows = sqlx::query_as(
            "SELECT seq, case_id, version, span, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        crate::raw_events(rows, after, limit)
    }

    /// PostgreSQL keeps its indexes through a bulk load: its bulk path is not the one tuned for speed.
    async fn defer_indexes_now(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn build_deferred_indexes_now(&self, _built: &mut crate::IndexesBuilt<'_>) -> StoreResult<()> {
        Ok(())
    }

    async fn reference_pool(&self) -> StoreResult<Pool> {
        Ok(self.pool.clone())
    }

    async fn backup_to(&self, _destination: &Path) -> StoreResult<()> {
        Err(StoreError::Other(
            "PostgreSQL is backed up with its own tools (pg_dump, or pg_basebackup with WAL archiving)"
                .into(),
        ))
    }
}

impl PgStore {
    fn opened_journal(&self) -> Option<crate::Journal> {
        None
    }

    /// Every node must see every attachment, so PostgreSQL keeps the bytes in the database.
    async fn put_attachment_content(
        &self,
        meta: &crate::AttachmentMeta,
        content: &[u8],
        holder: &str,
    ) -> StoreResult<()> {
        crate::check_sha256(&meta.sha256)?;
        insert_attachment(&self.pool, meta, Some(content), holder).await
    }

    async fn attachment_content(
        &self,
        sha256: &str,
    ) -> StoreResult<Option<(crate::AttachmentMeta, Vec<u8>)>> {
        let Some(meta) = attachment_meta(&self.pool, sha256).await? else { return Ok(None) };
        let (content,): (Vec<u8>,) = sqlx::query_as("SELECT content FROM attachments WHERE sha256 = $1")
            .bind(sha256)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some((meta, content)))
    }
}

crate::sql::store_impl!(PgStore, crate::Backend::Postgres);
