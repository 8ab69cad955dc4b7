//! The embedded backend: one SQLite file in the data folder, in WAL mode with `synchronous=EXTRA`, so that a
//! committed append survives a power cut. One connection writes (through the group committer); a small pool
//! reads alongside it.

use crate::batch::{BatchWriter, GroupCommitter};
use crate::cache::{BackgroundTask, ReadCache};
use crate::{Journal, WriteOptions};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

crate::sql::shared_sql!(sqlx::Sqlite);

/// SQLite has no statistics unless asked (`ANALYZE`) and takes an equality on an indexed column as narrow,
/// so work lists and suspended lists over a county, township or department are steered to the small index
/// of running or stopped clocks by hand (`list_sql`).
const STEERS_WORK_LISTS: bool = true;

/// The partial indexes of open cases (alarms, running and stopped clocks), which a bulk load keeps up
/// instead of deferring: a loaded history is mostly over, so they cost the load next to nothing, while
/// building them again would read the whole table.
pub const KEPT_DURING_LOADS: [&str; 3] = ["cases_alarm", "cases_due", "cases_suspended"];

/// The file inside the data folder.
pub const DATABASE_FILE: &str = "shiyu.sqlite3";

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/sqlite/0001_init.sql")),
    (2, "access", include_str!("../migrations/sqlite/0002_access.sql")),
    (3, "map", include_str!("../migrations/sqlite/0003_map.sql")),
    (4, "models", include_str!("../migrations/sqlite/0004_models.sql")),
    (5, "duplicates", include_str!("../migrations/sqlite/0005_duplicates.sql")),
    (6, "sla", include_str!("../migrations/sqlite/0006_sla.sql")),
    (7, "webhooks", include_str!("../migrations/sqlite/0007_webhooks.sql")),
    (8, "deferred_indexes", include_str!("../migrations/sqlite/0008_deferred_indexes.sql")),
    (9, "history_rows", include_str!("../migrations/sqlite/0009_history_rows.sql")),
    (10, "usernames_any_case", include_str!("../migrations/sqlite/0010_usernames_any_case.sql")),
    (11, "uploads", include_str!("../migrations/sqlite/0011_uploads.sql")),
    (12, "partial_indexes", include_str!("../migrations/sqlite/0012_partial_indexes.sql")),
    (13, "failure_window", include_str!("../migrations/sqlite/0013_failure_window.sql")),
    (14, "due", include_str!("../migrations/sqlite/0014_due.sql")),
    (15, "suspended", include_str!("../migrations/sqlite/0015_suspended.sql")),
];

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    readers: Pool,
    writer: GroupCommitter,
    cache: Arc<ReadCache>,
    _checkpointer: BackgroundTask,
    _tailer: BackgroundTask,
    /// A plain read-only connection for scanning the log in bulk, opened when first needed.
    log_reader: Arc<std::sync::Mutex<Option<rusqlite::Connection>>>,
    journal: Journal,
}

/// How often the WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

struct SqliteWriter {
    conn: sqlx::SqliteConnection,
    path: PathBuf,
    cache: Arc<ReadCache>,
    /// A plain connection for bulk loads, opened by the first one (see `crate::sqlite_bulk`).
    bulk: Option<rusqlite::Connection>,
}

#[async_trait]
impl BatchWriter for SqliteWriter {
    async fn write_batch(&mut self, writes: &[&Write]) -> StoreResult<Vec<StoreResult<Written>>> {
        if let [Write::Bulk { cases, audit }] = writes {
            return Ok(vec![self.load_in_bulk(cases.clone(), audit.clone()).await?]);
        }
        // IMMEDIATE: the batch reads (idempotency keys, versions) before it writes. A deferred transaction
        // whose snapshot another connection's write (sign-ins, reference data, an admin's change, a second
        // process) overtook cannot upgrade and fails at once with SQLITE_BUSY; taking the write lock first
        // makes it wait its turn (busy timeout) instead.
        let bulk = writes.iter().any(|w| matches!(w, Write::Bulk { .. }));
        if bulk {
            sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut self.conn).await?;
        }
        let answers = write_batch(&mut self.conn, writes, "BEGIN IMMEDIATE", None, &self.cache).await;
        if bulk {
            sqlx::query("PRAGMA foreign_keys = ON").execute(&mut self.conn).await?;
        }
        let answers = answers?;
        // A bulk load never pauses, so the background checkpointer would never catch up and the WAL would
        // grow by gigabytes; the writer copies it back itself after each chunk. The batch is committed by now,
        // so a failed checkpoint is left to the next one rather than reported as the batch's failure.
        if bulk {
            let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut self.conn).await;
        }
        Ok(answers)
    }
}

impl SqliteWriter {
    /// A bulk load alone in its batch goes through rusqlite on a blocking thread: sqlx would copy every bound
    /// value and hand each statement to its worker thread, which cost the writer as much again as SQLite's
    /// own work (BENCHMARKS.md, simulate).
    async fn load_in_bulk(
        &mut self,
        cases: Arc<crate::BulkCases>,
        audit: crate::AuditEntry,
    ) -> StoreResult<StoreResult<Written>> {
        let conn = match self.bulk.take() {
            Some(conn) => conn,
            None => crate::sqlite_bulk::open(&self.path)?,
        };
        let cache = self.cache.clone();
        let (conn, loaded) = tokio::task::spawn_blocking(move || {
            let mut conn = conn;
            let loaded = crate::sqlite_bulk::load(&mut conn, cases, audit, &cache);
            (conn, loaded)
        })
        .await
        .map_err(|e| StoreError::Other(format!("bulk writer: {e}")))?;
        self.bulk = Some(conn);
        loaded
    }
}

/// How long a connection waits for another's write lock before it gives up.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Every connection's settings. The journal mode is not among them: `SqliteStore::open` sets it once for
/// the file. `EXTRA` is `FULL` in WAL mode; with the rollback journal of a load alone it also syncs the folder
/// after deleting the journal, without which a power cut could bring the journal back and undo the commit.
fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Extra)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .statement_cache_capacity(1024)
}

/// Sets the WAL, a property of the file: for every connection, other processes' too. When another process
/// is loading through a rollback journal (`Journal::RollbackWhenAlone`) it holds the write lock nearly all
/// the time, and SQLite refuses a journal change at once instead of waiting for the lock, so this tries
/// again between that process's transactions, for as long as a connection waits for a lock.
async fn set_wal(conn: &mut sqlx::SqliteConnection) -> StoreResult<()> {
    let started = std::time::Instant::now();
    loop {
        match sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(error))
                if is_busy(error.as_ref()) && started.elapsed() < BUSY_TIMEOUT =>
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// SQLITE_BUSY, "database is locked", with any of its extended codes.
fn is_busy(error: &dyn sqlx::error::DatabaseError) -> bool {
    error.code().and_then(|code| code.parse::<i32>().ok()).is_some_and(|code| code & 0xff == 5)
}

/// Switches the file from the WAL to SQLite's default rollback journal, deleted after each commit, and says
/// whether it could. SQLite refuses while any other connection has the file open in WAL mode; that means a
/// server or another command is using it, and the answer is no at once instead of after the busy timeout.
/// (A journal truncated instead saves a directory sync per transaction, but two million cases loaded no
/// faster beyond the machine's noise, and it would leave an empty file in the data folder.)
async fn leave_wal_if_alone(conn: &mut sqlx::SqliteConnection) -> StoreResult<bool> {
    sqlx::query("PRAGMA busy_timeout = 0").execute(&mut *conn).await?;
    let mode: Result<String, _> =
        sqlx::query_scalar("PRAGMA journal_mode = DELETE").fetch_one(&mut *conn).await;
    sqlx::query(&format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis())).execute(&mut *conn).await?;
    match mode {
        Ok(mode) => Ok(mode.eq_ignore_ascii_case("delete")),
        Err(sqlx::Error::Database(_)) => Ok(false),
        Err(error) => Err(error.into()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir` and applies pending migrations.
    pub async fn open(dir: &Path, write: WriteOptions) -> StoreResult<SqliteStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Other(format!("cannot create data folder {}: {e}", dir.display())))?;
        let path = dir.join(DATABASE_FILE);
        let mut conn = options(&path).connect().await?;
        let rollback = write.journal == Journal::RollbackWhenAlone && leave_wal_if_alone(&mut conn).await?;
        if !rollback {
            set_wal(&mut conn).await?;
        }
        migrate(&mut conn, MIGRATIONS, None).await?;
        // A bulk load that stopped before its end left indexes to build.
        build_deferred_indexes(&mut conn, &mut |_, _| {}).await?;
        // Checkpoints run beside the writer instead of inside whichever commit crosses the WAL's size limit,
        // so that no acknowledgement waits for the database file to be synced.
        sqlx::query("PRAGMA wal_autocheckpoint = 0").execute(&mut conn).await?;
        // A large transaction (a bulk load, a burst of reports) would otherwise spill pages to the WAL before
        // it commits; 64 MiB of cache keeps it in memory and bounds what the writer holds.
        sqlx::query("PRAGMA cache_size = -65536").execute(&mut conn).await?;
        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut conn).await?;
        let mut checkpoint_conn = options(&path).connect().await?;
        let checkpointer = BackgroundTask::spawn(async move {
            loop {
                tokio::time::sleep(CHECKPOINT_EVERY).await;
                let _ = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut checkpoint_conn).await;
            }
        });
        let readers =
            SqlitePoolOptions::new().max_connections(4).connect_with(options(&path).read_only(true)).await?;
        let cache = Arc::new(ReadCache::new(last_seq(&readers).await?));
        let tailer = start_cache_tailer(readers.clone(), cache.clone());
        let writer = GroupCommitter::start(
            SqliteWriter { conn, path: path.clone(), cache: cache.clone(), bulk: None },
            write.mode,
            write.max_batch,
        );
        Ok(SqliteStore {
            path,
            readers,
            writer,
            cache,
            _checkpointer: checkpointer,
            _tailer: tailer,
            log_reader: Arc::default(),
            journal: if rollback { Journal::RollbackWhenAlone } else { Journal::Wal },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn opened_journal(&self) -> Option<Journal> {
        Some(self.journal)
    }
}

impl SqliteStore {
    /// How SQLite would read a list (`EXPLAIN QUERY PLAN`, one line per step): which indexes the steered
    /// lists walk, for tests and for anyone wondering why a list is slow.
    pub async fn list_plan(&self, query: &crate::CaseQuery) -> StoreResult<Vec<String>> {
        let mut sql = list_sql("EXPLAIN QUERY PLAN SELECT c.id, c.state", query)?;
        let rows: Vec<(i64, i64, i64, String)> = sql.build_query_as().fetch_all(self.read_pool()).await?;
        Ok(rows.into_iter().map(|(.., detail)| detail).collect())
    }

    /// Reference data is written rarely and in bulk, outside the group committer, on a short-lived
    /// connection; SQLite's busy timeout lets it wait for the committer's transaction to finish.
    async fn reference_pool(&self) -> StoreResult<Pool> {
        Ok(SqlitePoolOptions::new().max_connections(1).connect_with(options(&self.path)).await?)
    }

    fn read_pool(&self) -> &Pool {
        &self.readers
    }

    /// Read on a blocking thread with rusqlite rather than sqlx: a rebuild scans millions of rows, and
    /// sqlx's row-by-row hand-over costs several times what SQLite takes to read them.
    async fn raw_log(&self, after: i64, limit: u32) -> StoreResult<Vec<crate::RawEvent>> {
        let reader = self.log_reader.clone();
        let path = self.path.clone();
        let read = move || -> Result<Vec<crate::LogRow>, rusqlite::Error> {
            let mut slot = reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let conn = match slot.take() {
                Some(conn) => slot.insert(conn),
                None => slot.insert(rusqlite::Connection::open_with_flags(
                    &path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?),
            };
            let mut statement = conn.prepare_cached(
                "SELECT seq, case_id, version, span, payload FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows = statement.query((after, i64::from(limit)))?;
            let mut page = Vec::with_capacity(limit.min(100_000) as usize);
            while let Some(row) = rows.next()? {
                // Rows written before the binary form hold JSON text; both are bytes to the decoder.
                let payload = row.get_ref(4)?.as_bytes().map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Blob, Box::new(e))
                })?;
                page.push((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, payload.to_vec()));
            }
            Ok(page)
        };
        let rows = tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| StoreError::Other(format!("log reader: {e}")))?
            .map_err(|e| StoreError::Other(format!("log reader: {e}")))?;
        crate::raw_events(rows, after, limit)
    }

    async fn defer_indexes_now(&self) -> StoreResult<()> {
        // A connection of its own, closed (and so rolled back) on any error before the commit.
        let mut conn = options(&self.path).connect().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
        // The unique indexes stay: they are constraints that live writes beside the load must keep meeting.
        // So do the indexes of open cases only (`KEPT_DURING_LOADS`).
        let kept: Vec<String> = KEPT_DURING_LOADS.iter().map(|name| format!("'{name}'")).collect();
        let indexes: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('cases', 'case_departments') \
             AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE %' AND name NOT IN ({})",
            kept.join(", ")
        ))
        .fetch_all(&mut conn)
        .await?;
        for (name, sql) in indexes {
            sqlx::query("INSERT INTO deferred_indexes (name, sql) VALUES ($1, $2)")
                .bind(&name)
                .bind(sql)
                .execute(&mut conn)
                .await?;
            let drop = format!("DROP INDEX \"{name}\"");
            sqlx::query(&drop).execute(&mut conn).await?;
        }
        sqlx::query("COMMIT").execute(&mut conn).await?;
        Ok(())
    }

    async fn build_deferred_indexes_now(&self, built: &mut crate::IndexesBuilt<'_>) -> StoreResult<()> {
        let mut conn = options(&self.path).connect().await?;
        build_deferred_indexes(&mut conn, built).await
    }

    async fn backup_to(&self, destination: &Path) -> StoreResult<()> {
        if destination.exists() {
            return Err(StoreError::Conflict(format!("{} already exists", destination.display())));
        }
        let target = destination
            .to_str()
            .ok_or_else(|| StoreError::Other("the backup path must be valid UTF-8".into()))?;
        // VACUUM INTO writes a consistent, compacted copy while readers and the writer go on.
        sqlx::query("VACUUM INTO $1").bind(target).execute(&self.readers).await?;
        Ok(())
    }
}

/// Builds every index a bulk load dropped, one transaction each, so that an interrupted build keeps what it
/// finished. Sorting uses a second thread.
async fn build_deferred_indexes(
    conn: &mut sqlx::SqliteConnection,
    built: &mut crate::IndexesBuilt<'_>,
) -> StoreResult<()> {
    let indexes: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sql FROM deferred_indexes ORDER BY name").fetch_all(&mut *conn).await?;
    if indexes.is_empty() {
        return Ok(());
    }
    sqlx::query("PRAGMA threads = 2").execute(&mut *conn).await?;
    let of = indexes.len();
    built(0, of);
    for (done, (name, sql)) in indexes.into_iter().enumerate() {
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let finished = async {
            sqlx::query(&sql).execute(&mut *conn).await?;
            sqlx::query("DELETE FROM deferred_indexes WHERE name = $1")
                .bind(&name)
                .execute(&mut *conn)
                .await?;
            sqlx::query("COMMIT").execute(&mut *conn).await
        }
        .await;
        if let Err(error) = finished {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return Err(error.into());
        }
        built(done + 1, of);
    }
    sqlx::query("PRAGMA threads = 0").execute(&mut *conn).await?;
    Ok(())
}

impl SqliteStore {
    /// Attachments live beside the database as files named by their hash, so that the database file stays
    /// small and a backup of the folder takes them along.
    fn attachment_path(&self, sha256: &str) -> StoreResult<PathBuf> {
        let folder = self.path.parent().unwrap_or(Path::new(".")).join("attachments");
        crate::check_sha256(sha256)?;
        Ok(folder.join(&sha256[..2]).join(sha256))
    }

    async fn put_attachment_content(
        &self,
        meta: &crate::AttachmentMeta,
        content: &[u8],
        holder: &str,
    ) -> StoreResult<()> {
        let path = self.attachment_path(&meta.sha256)?;
        if !path.exists() {
            crate::write_file_durably(&path, content).await?;
        }
        insert_attachment(&self.reference_pool().await?, meta, None, holder).await
    }

    async fn attachment_content(
        &self,
        sha256: &str,
    ) -> StoreResult<Option<(crate::AttachmentMeta, Vec<u8>)>> {
        let Some(meta) = attachment_meta(&self.readers, sha256).await? else { return Ok(None) };
        let content = tokio::fs::read(self.attachment_path(sha256)?)
            .await
            .map_err(|e| StoreError::Other(format!("attachment {sha256}: {e}")))?;
        Ok(Some((meta, content)))
    }
}

crate::sql::store_impl!(SqliteStore, crate::Backend::Sqlite);
