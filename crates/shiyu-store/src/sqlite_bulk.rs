//! The SQLite writer's bulk path: a chunk of whole histories (`Store::bulk_load`) written through rusqlite
//! with statements prepared once per connection, one row at a time. The rows, their ids and sequence numbers
//! come from the same [`Plan`] as every other write, so the log a bulk load leaves is the one the shared
//! SQL would have written.

use crate::batch::{Lookup, Plan, Write, Written};
use crate::cache::ReadCache;
use crate::sql::{audit_target, DEPARTMENTS_ONCE, LOG_END, TAKEN_IDS};
use crate::sql::{INSERT_AUDIT, INSERT_CASES, INSERT_DEPARTMENTS, INSERT_EVENTS};
use crate::sqlite::BUSY_TIMEOUT;
use crate::{AuditEntry, BulkCases, StoreResult};
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Opens the bulk writer's connection, with statement journals in memory as on the shared writer's, and
/// without foreign-key checks: a bulk load refers only to places, departments and users the simulator read
/// from the store, and checking each reference cost a lookup per row.
pub(crate) fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA synchronous = EXTRA; PRAGMA foreign_keys = OFF; PRAGMA cache_size = -65536; \
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

/// How long a load through a rollback journal leaves the write lock free after each chunk: SQLite refuses a
/// change of journal mode at once while another connection holds the lock, so a server opening the folder
/// meanwhile (`set_wal` in `sqlite.rs`, which tries every millisecond) needs a gap it can land in. About 1% of
/// a load's time.
const LOCK_FREE_AFTER_CHUNK: Duration = Duration::from_millis(1);

/// Writes one bulk load in one transaction and then, in WAL mode, copies the WAL back into the database file
/// (a load never pauses for the background checkpointer to catch up), or, with a rollback journal, leaves
/// the lock free for a moment. Tells `cache` which stretch of the log it filled and returns the write's
/// answer.
pub(crate) fn load(
    conn: &mut Connection,
    cases: Arc<BulkCases>,
    audit: AuditEntry,
    cache: &ReadCache,
) -> StoreResult<StoreResult<Written>> {
    let write = Write::Bulk { cases, audit };
    let writes = [&write];
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let plan = Plan::new(&writes, lookup(&tx, &write)?);
    write_plan(&tx, &plan)?;
    tx.commit()?;
    if let Some((after, through)) = plan.bulk_loaded() {
        cache.bulk_loaded(after, through);
    }
    // The load is committed whatever follows: reporting a failure here as the load's would make a retry
    // collide with the cases just written. What a checkpoint leaves in the WAL, the next one copies.
    let journal = conn.query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0));
    if journal.is_ok_and(|mode| mode.eq_ignore_ascii_case("wal")) {
        let _ = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)");
    } else {
        std::thread::sleep(LOCK_FREE_AFTER_CHUNK);
    }
    Ok(plan.answers.into_iter().next().unwrap_or(Ok(Written::Loaded)))
}

fn lookup(conn: &Connection, write: &Write) -> StoreResult<Lookup> {
    let (max_id, max_seq, reserved): (i64, i64, i64) =
        conn.query_row(LOG_END, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let mut lookup = Lookup { max_id: max_id.max(reserved), max_seq, ..Lookup::default() };
    if let Write::Bulk { cases, .. } = write {
        if let (Some((first, ..)), Some((last, ..))) = (cases.rows.first(), cases.rows.last()) {
            let taken: i64 = conn.query_row(TAKEN_IDS, [first, last], |row| row.get(0))?;
            lookup.taken.insert(*first, taken);
        }
    }
    Ok(lookup)
}

/// `VALUES ($1, …, $n)`: SQLite numbers `$n` parameters in order, as PostgreSQL does.
fn values(n: usize) -> String {
    let list: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("VALUES ({})", list.join(", "))
}

fn write_plan(conn: &Connection, plan: &Plan<'_>) -> StoreResult<()> {
    let mut case = conn.prepare_cached(&format!("{INSERT_CASES}{}", values(18)))?;
    let mut department =
        conn.prepare_cached(&format!("{INSERT_DEPARTMENTS}{}{DEPARTMENTS_ONCE}", values(2)))?;
    for (id, row) in &plan.cases {
        let [county, township, community, grid, micro_grid] = row.chain;
        case.execute(params![
            id,
            row.version,
            row.status,
            row.owner_id,
            row.place_id,
            row.matter_code,
            row.received_at,
            row.updated_at,
            row.state,
            row.tracking_code,
            row.reporter_id,
            county,
            township,
            community,
            grid,
            micro_grid,
            row.alarm_at,
            row.due_at,
        ])?;
        for department_id in &row.departments {
            department.execute([id, department_id])?;
        }
    }
    let mut event = conn.prepare_cached(&format!("{INSERT_EVENTS}{}", values(7)))?;
    for (seq, case_id, version, row) in &plan.events {
        event.execute(params![seq, case_id, version, row.kind, row.at, row.payload, row.span])?;
    }
    let mut audit = conn.prepare_cached(&format!("{INSERT_AUDIT}{}", values(7)))?;
    for (case_id, entry) in &plan.audit {
        audit.execute(params![
            entry.at.0,
            entry.user.map(|u| u.0),
            entry.actor,
            entry.action,
            audit_target(*case_id, entry),
            entry.address,
            entry.detail,
        ])?;
    }
    Ok(())
}
