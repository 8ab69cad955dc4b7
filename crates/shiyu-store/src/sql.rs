//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here (`$n` placeholders,
//! `ON CONFLICT … DO UPDATE`), so one macro stamps out the functions for each backend's types.

/// Rows per multi-row statement: stays under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const CHUNK_ROWS: usize = 500;

/// Migrations that data an older version allowed would make fail: before applying the migration of the given
/// version, the query lists what stands in the way, and if it lists anything the migration is refused with the
/// message (`{found}` replaced by the list) instead of a bare constraint error, and nothing is changed.
pub(crate) const MIGRATION_REFUSALS: &[(i64, &str, &str)] = &[(
    10,
    "SELECT MIN(username) || ' / ' || MAX(username) FROM users GROUP BY LOWER(username) HAVING COUNT(*) > 1 \
     ORDER BY 1",
    "usernames must now differ in more than letter case, and these accounts differ only in case: {found}. \
     Rename one of each pair (UPDATE users SET username = 'new name' WHERE username = 'old name'), then \
     start again / 用户名须在大小写之外有所区别，以下账号仅大小写不同：{found}。请先改掉其中一个的用户名\
     （UPDATE users SET username = '新名' WHERE username = '原名'），再重新启动",
)];

/// The cases whose clock is stopped, word for word as the partial index `cases_suspended` (migration 15)
/// states them: SQLite uses a partial index only for a query that repeats its condition.
pub(crate) const CLOCK_STOPPED: &str = "c.due_at IS NULL AND c.status IN \
     ('received', 'registered', 'dispatched', 'handling', 'handled', 'verified')";

/// The migration that adds `cases.due_at`, after which the store fills it for the cases already open.
pub(crate) const DUE_MIGRATION: i64 = 14;

/// Whether the writer keeps a multi-row insert prepared. Every row count is a statement of its own; the live
/// server's small batches and full chunks recur, while a bulk load's remainders are all different and would
/// fill the statement cache with a thousand large statements (a hundred megabytes that never serve again).
pub(crate) fn keep_prepared(rows: usize) -> bool {
    rows == CHUNK_ROWS || rows <= 64
}

/// Statements the shared writer and the SQLite bulk writer (`sqlite_bulk.rs`) both run, so that a bulk load
/// writes the same columns the same way. The inserts end before `VALUES`.
pub(crate) const LOG_END: &str =
    "SELECT COALESCE((SELECT MAX(id) FROM cases), 0), COALESCE((SELECT MAX(seq) FROM events), 0), \
     COALESCE((SELECT CAST(body AS BIGINT) FROM settings WHERE name = 'reserved_case_ids'), 0)";
pub(crate) const TAKEN_IDS: &str = "SELECT COUNT(*) FROM cases WHERE id BETWEEN $1 AND $2";
pub(crate) const INSERT_CASES: &str =
    "INSERT INTO cases (id, version, status, owner_id, place_id, matter_code, received_at, updated_at, state, \
     tracking_code, reporter_id, county_id, township_id, community_id, grid_id, micro_grid_id, alarm_at, due_at) ";
pub(crate) const INSERT_EVENTS: &str = "INSERT INTO events (seq, case_id, version, kind, at, payload, span) ";
pub(crate) const INSERT_DEPARTMENTS: &str = "INSERT INTO case_departments (case_id, department_id) ";
pub(crate) const DEPARTMENTS_ONCE: &str = " ON CONFLICT (case_id, department_id) DO NOTHING";
pub(crate) const INSERT_AUDIT: &str =
    "INSERT INTO audit_log (at, user_id, actor, action, target, address, detail) ";

/// What an audit entry is about: the case whose event it records, else what the entry names.
pub(crate) fn audit_target(case_id: Option<i64>, entry: &crate::AuditEntry) -> Option<String> {
    case_id.map(|id| format!("case:{id}")).or_else(|| entry.target.clone())
}

macro_rules! shared_sql {
    ($db:ty) => {
        use crate::batch::{Lookup, Plan, Write, Written};
        use crate::sql::{keep_prepared, CHUNK_ROWS};
        use crate::sql::{DEPARTMENTS_ONCE, INSERT_AUDIT, INSERT_CASES, INSERT_DEPARTMENTS, INSERT_EVENTS, LOG_END, TAKEN_IDS};
        use crate::{StoreError, StoreResult, StoredEvent};
        use shiyu_domain::{
            CaseId, CaseState, Category, Department, DepartmentId, Event, Jurisdiction, JurisdictionId, Level,
            Matter, Role, Scope, User, UserId,
        };
        use sqlx::{Connection as _, QueryBuilder};

        type Conn = <$db as sqlx::Database>::Connection;
        type Pool = sqlx::Pool<$db>;

        /// Runs one batch in one transaction, opened with `begin`. `lock` serialises writers of several nodes
        /// (PostgreSQL), so that sequence numbers are handed out in commit order.
        pub(crate) async fn write_batch(
            conn: &mut Conn,
            writes: &[&Write],
            begin: &'static str,
            lock: Option<&'static str>,
            cache: &crate::cache::ReadCache,
        ) -> StoreResult<Vec<StoreResult<Written>>> {
            let mut tx = conn.begin_with(begin).await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let lookup = lookup(&mut tx, writes).await?;
            let mut plan = Plan::new(writes, lookup);
            write_plan(&mut tx, &plan).await?;
            for (answer, now, lease_until, limit) in std::mem::take(&mut plan.claims) {
                let claimed = claim_deliveries(&mut tx, now, lease_until, limit).await?;
                if let Some(slot) = plan.answers.get_mut(answer) {
                    *slot = Ok(Written::Claimed(claimed));
                }
            }
            tx.commit().await?;
            if let Some((after, through)) = plan.bulk_loaded() {
                cache.bulk_loaded(after, through);
            }
            Ok(plan.answers)
        }

        async fn lookup(conn: &mut Conn, writes: &[&Write]) -> StoreResult<Lookup> {
            let mut lookup = Lookup::default();
            let keys: Vec<&str> = writes
                .iter()
                .filter_map(|w| match w {
                    Write::Create { key: Some(key), .. } => Some(key.as_str()),
                    _ => None,
                })
                .collect();
            for chunk in keys.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("SELECT key, case_id FROM idempotency_keys WHERE key IN (");
                let mut list = query.separated(", ");
                for key in chunk {
                    list.push_bind(*key);
                }
                query.push(")");
                for (key, id) in query.build_query_as::<(String, i64)>().fetch_all(&mut *conn).await? {
                    lookup.keys.insert(key, id);
                }
            }
            let ids: Vec<i64> = writes
                .iter()
                .filter_map(|w| match w {
                    Write::Append { id, .. } => Some(*id),
                    _ => None,
                })
                .collect();
            for chunk in ids.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("SELECT id, version FROM cases WHERE id IN (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                for (id, version) in query.build_query_as::<(i64, i64)>().fetch_all(&mut *conn).await? {
                    lookup.versions.insert(id, version);
                }
            }
            let (max_id, max_seq, reserved): (i64, i64, i64) = sqlx::query_as(LOG_END)
            .fetch_one(&mut *conn)
            .await?;
            lookup.max_id = max_id.max(reserved);
            lookup.max_seq = max_seq;
            for write in writes {
                if let Write::Bulk { cases, .. } = write {
                    if let (Some((first, _, _)), Some((last, _, _))) = (cases.rows.first(), cases.rows.last()) {
                        let (taken,): (i64,) =
                            sqlx::query_as(TAKEN_IDS)
                                .bind(*first)
                                .bind(*last)
                                .fetch_one(&mut *conn)
                                .await?;
                        lookup.taken.insert(*first, taken);
                    }
                }
            }
            Ok(lookup)
        }

        async fn write_plan(conn: &mut Conn, plan: &Plan<'_>) -> StoreResult<()> {
            let cases: Vec<_> = plan.cases.iter().collect();
            for chunk in cases.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(INSERT_CASES);
                query.push_values(chunk, |mut row, (id, case)| {
                    row.push_bind(**id)
                        .push_bind(case.version)
                        .push_bind(case.status)
                        .push_bind(case.owner_id)
                        .push_bind(case.place_id)
                        .push_bind(case.matter_code.as_deref())
                        .push_bind(case.received_at)
                        .push_bind(case.updated_at)
                        .push_bind(case.state.as_slice())
                        .push_bind(case.tracking_code.as_deref())
                        .push_bind(case.reporter_id);
                    for depth in case.chain {
                        row.push_bind(depth);
                    }
                    row.push_bind(case.alarm_at).push_bind(case.due_at);
                });
                query.push(
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status, \
                     owner_id = excluded.owner_id, matter_code = excluded.matter_code, \
                     updated_at = excluded.updated_at, state = excluded.state, alarm_at = excluded.alarm_at, \
                     due_at = excluded.due_at",
                );
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            for chunk in plan.events.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(INSERT_EVENTS);
                query.push_values(chunk, |mut row, (seq, case_id, version, event)| {
                    row.push_bind(*seq)
                        .push_bind(*case_id)
                        .push_bind(*version)
                        .push_bind(event.kind)
                        .push_bind(event.at)
                        .push_bind(event.payload.as_slice())
                        .push_bind(event.span);
                });
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            for chunk in plan.keys.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("INSERT INTO idempotency_keys (key, case_id, created_at) ");
                query.push_values(chunk, |mut row, (key, id, at)| {
                    row.push_bind(*key).push_bind(*id).push_bind(*at);
                });
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            let departments: Vec<(i64, i64)> = plan
                .cases
                .iter()
                .flat_map(|(id, case)| case.departments.iter().map(move |d| (*id, *d)))
                .collect();
            for chunk in departments.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(INSERT_DEPARTMENTS);
                query.push_values(chunk, |mut row, (case_id, department)| {
                    row.push_bind(*case_id).push_bind(*department);
                });
                query.push(DEPARTMENTS_ONCE);
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            for chunk in plan.notifications.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO notifications (user_id, seq, case_id, kind, title, urgent, at) ",
                );
                query.push_values(chunk, |mut row, n| {
                    row.push_bind(n.user.0)
                        .push_bind(n.seq)
                        .push_bind(n.case_id.0)
                        .push_bind(n.kind.as_str())
                        .push_bind(n.title.as_str())
                        .push_bind(n.urgent)
                        .push_bind(n.at.0);
                });
                query.push(" ON CONFLICT (user_id, seq) DO NOTHING");
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            for chunk in plan.deliveries.chunks(CHUNK_ROWS) {
                let mut query =
                    QueryBuilder::<$db>::new("INSERT INTO deliveries (webhook_id, seq, body, state, next_at) ");
                query.push_values(chunk, |mut row, d| {
                    row.push_bind(d.webhook).push_bind(d.seq).push_bind(d.body.as_str()).push_bind("pending").push_bind(d.at.0);
                });
                query.push(" ON CONFLICT (webhook_id, seq) DO NOTHING");
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            if let Some((until, now)) = plan.reserved_until {
                sqlx::query(
                    "INSERT INTO settings (name, body, updated_at) VALUES ('reserved_case_ids', $1, $2) \
                     ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                )
                .bind(until.to_string())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            for (follower, seq) in &plan.followers {
                sqlx::query(
                    "INSERT INTO followers (name, seq) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                )
                .bind(*follower)
                .bind(*seq)
                .execute(&mut *conn)
                .await?;
            }
            for attempt in &plan.attempts {
                let at = attempt.at.0;
                let (state, error, retry_at, done_at) = match &attempt.outcome {
                    crate::AttemptOutcome::Delivered => ("delivered", None, None, Some(at)),
                    crate::AttemptOutcome::Failed { error, retry_at: Some(retry) } => {
                        ("pending", Some(error.as_str()), Some(retry.0), None)
                    }
                    crate::AttemptOutcome::Failed { error, retry_at: None } => {
                        ("dead", Some(error.as_str()), None, Some(at))
                    }
                };
                sqlx::query(
                    "UPDATE deliveries SET state = $1, attempts = attempts + 1, \
                     last_error = COALESCE($2, last_error), next_at = COALESCE($3, next_at), done_at = $4 \
                     WHERE id = $5 AND state = 'pending'",
                )
                .bind(state)
                .bind(error)
                .bind(retry_at)
                .bind(done_at)
                .bind(attempt.delivery)
                .execute(&mut *conn)
                .await?;
            }
            for chunk in plan.audit.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(INSERT_AUDIT);
                query.push_values(chunk, |mut row, (case_id, entry)| {
                    let target = crate::sql::audit_target(*case_id, entry);
                    row.push_bind(entry.at.0)
                        .push_bind(entry.user.map(|u| u.0))
                        .push_bind(entry.actor.as_str())
                        .push_bind(entry.action.as_str())
                        .push_bind(target)
                        .push_bind(entry.address.as_deref())
                        .push_bind(entry.detail.as_deref());
                });
                query.build().persistent(keep_prepared(chunk.len())).execute(&mut *conn).await?;
            }
            Ok(())
        }

        pub(crate) async fn load_case(pool: &Pool, id: CaseId) -> StoreResult<Option<CaseState>> {
            let row: Option<(Vec<u8>,)> =
                sqlx::query_as("SELECT state FROM cases WHERE id = $1").bind(id.0).fetch_optional(pool).await?;
            row.map(|(state,)| crate::codec::decode(&state).map_err(StoreError::from)).transpose()
        }

        /// Rows of the log as events, each row's history (`span` > 1) split into its events, and only the
        /// first `limit` events after `after`: a page may start or end inside a bulk-loaded history.
        fn stored_events(rows: Vec<crate::LogRow>, after: i64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
            let mut events = Vec::with_capacity(rows.len());
            for (seq, case_id, version, payload) in crate::split_rows(&rows, after)? {
                let event: Event = crate::codec::decode(payload)?;
                events.push(StoredEvent { seq, case_id: CaseId(case_id), version: version as u64, event });
                if events.len() == limit {
                    break;
                }
            }
            Ok(events)
        }

        pub(crate) async fn case_history(pool: &Pool, id: CaseId) -> StoreResult<Vec<StoredEvent>> {
            let rows = sqlx::query_as(
                "SELECT seq, case_id, version, span, payload FROM events WHERE case_id = $1 ORDER BY version",
            )
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            stored_events(rows, 0, usize::MAX)
        }

        pub(crate) async fn events_since(pool: &Pool, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
            let rows = sqlx::query_as(
                "SELECT seq, case_id, version, span, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            stored_events(rows, after, limit as usize)
        }

        /// `(seq, case, version)` of the events after `after` up to `until`: what the read cache's tailer needs.
        async fn versions_since(pool: &Pool, after: i64, until: i64) -> StoreResult<Vec<(i64, i64, i64)>> {
            Ok(sqlx::query_as(
                "SELECT seq, case_id, version FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT 10000",
            )
            .bind(after)
            .bind(until)
            .fetch_all(pool)
            .await?)
        }

        /// Keeps the read cache exact while other processes or nodes write: every case the log shows at a
        /// version the cache does not hold is evicted.
        pub(crate) fn start_cache_tailer(
            pool: Pool,
            cache: std::sync::Arc<crate::cache::ReadCache>,
        ) -> crate::cache::BackgroundTask {
            crate::cache::BackgroundTask::spawn(async move {
                loop {
                    tokio::time::sleep(crate::cache::TAIL_EVERY).await;
                    let (after, until) = match cache.next_tail() {
                        crate::cache::Tail::Skip { through } => {
                            cache.set_tailed(through);
                            continue;
                        }
                        crate::cache::Tail::Read { after, until } => (after, until),
                    };
                    let Ok(rows) = versions_since(&pool, after, until).await else { continue };
                    for &(seq, case, version) in &rows {
                        cache.saw_version(CaseId(case), version as u64);
                        cache.set_tailed(seq);
                    }
                }
            })
        }

        /// `(description, matter code)` of every case whose matter was set at registration, oldest first.
        pub(crate) async fn labelled_descriptions(pool: &Pool) -> StoreResult<Vec<(String, String)>> {
            /// Only the description of the stored state.
            #[derive(serde::Deserialize)]
            struct Described {
                #[serde(default)]
                description: String,
            }
            let rows: Vec<(String, Vec<u8>)> =
                sqlx::query_as("SELECT matter_code, state FROM cases WHERE matter_code IS NOT NULL ORDER BY id")
                    .fetch_all(pool)
                    .await?;
            rows.into_iter()
                .map(|(matter, state)| {
                    let state: Described = crate::codec::decode(&state)?;
                    Ok((state.description, matter))
                })
                .collect()
        }

        pub(crate) async fn put_model(pool: &Pool, name: &str, body: &str, at: i64) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO models (name, body, trained_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, trained_at = excluded.trained_at",
            )
            .bind(name)
            .bind(body)
            .bind(at)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(crate) async fn model(pool: &Pool, name: &str) -> StoreResult<Option<String>> {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT body FROM models WHERE name = $1").bind(name).fetch_optional(pool).await?;
            Ok(row.map(|(body,)| body))
        }

        pub(crate) async fn alarms(pool: &Pool) -> StoreResult<Vec<(CaseId, shiyu_domain::Timestamp)>> {
            let rows: Vec<(i64, i64)> =
                sqlx::query_as("SELECT id, alarm_at FROM cases WHERE alarm_at IS NOT NULL").fetch_all(pool).await?;
            Ok(rows.into_iter().map(|(id, at)| (CaseId(id), shiyu_domain::Timestamp(at))).collect())
        }

        pub(crate) async fn put_setting(pool: &Pool, name: &str, body: &str, at: i64) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO settings (name, body, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
            )
            .bind(name)
            .bind(body)
            .bind(at)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(crate) async fn setting(pool: &Pool, name: &str) -> StoreResult<Option<String>> {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT body FROM settings WHERE name = $1").bind(name).fetch_optional(pool).await?;
            Ok(row.map(|(body,)| body))
        }

        pub(crate) async fn follower_seq(pool: &Pool, name: &str) -> StoreResult<i64> {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT seq FROM followers WHERE name = $1").bind(name).fetch_optional(pool).await?;
            Ok(row.map_or(0, |(seq,)| seq))
        }

        pub(crate) async fn notifications(
            pool: &Pool,
            user: UserId,
            unread_only: bool,
            before: Option<i64>,
            limit: u32,
        ) -> StoreResult<Vec<crate::Notification>> {
            type Row = (i64, i64, i64, String, String, bool, i64, Option<i64>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, seq, case_id, kind, title, urgent, at, read_at FROM notifications \
                 WHERE user_id = $1 AND id < $2 AND ($3 = 0 OR read_at IS NULL) ORDER BY id DESC LIMIT $4",
            )
            .bind(user.0)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(unread_only))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, seq, case_id, kind, title, urgent, at, read_at)| crate::Notification {
                    id,
                    seq,
                    case_id: CaseId(case_id),
                    kind,
                    title,
                    urgent,
                    at: shiyu_domain::Timestamp(at),
                    read_at: read_at.map(shiyu_domain::Timestamp),
                })
                .collect())
        }

        pub(crate) async fn active_webhooks(pool: &Pool) -> StoreResult<Vec<(i64, i64)>> {
            Ok(sqlx::query_as("SELECT id, department_id FROM webhooks WHERE disabled_at IS NULL ORDER BY id")
                .fetch_all(pool)
                .await?)
        }

        pub(crate) async fn create_webhook(pool: &Pool, webhook: &crate::NewWebhook) -> StoreResult<i64> {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO webhooks (department_id, url, secret_sealed, created_at) VALUES ($1, $2, $3, $4) \
                 RETURNING id",
            )
            .bind(webhook.department.0)
            .bind(&webhook.url)
            .bind(&webhook.secret_sealed)
            .bind(webhook.at.0)
            .fetch_one(pool)
            .await?;
            Ok(id)
        }

        pub(crate) async fn webhooks(pool: &Pool, department: Option<DepartmentId>) -> StoreResult<Vec<crate::Webhook>> {
            let mut query = QueryBuilder::<$db>::new(
                "SELECT id, department_id, url, secret_sealed, created_at, disabled_at FROM webhooks",
            );
            if let Some(department) = department {
                query.push(" WHERE department_id = ").push_bind(department.0);
            }
            query.push(" ORDER BY id");
            let rows: Vec<(i64, i64, String, String, i64, Option<i64>)> =
                query.build_query_as().fetch_all(pool).await?;
            Ok(rows
                .into_iter()
                .map(|(id, department, url, secret_sealed, created_at, disabled_at)| crate::Webhook {
                    id,
                    department: DepartmentId(department),
                    url,
                    secret_sealed,
                    created_at: shiyu_domain::Timestamp(created_at),
                    disabled_at: disabled_at.map(shiyu_domain::Timestamp),
                })
                .collect())
        }

        /// What a delivery's `last_error` says when its webhook was disabled before it went out.
        const WEBHOOK_DISABLED: &str = "webhook disabled";

        pub(crate) async fn disable_webhook(pool: &Pool, id: i64, at: i64) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("UPDATE webhooks SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if done.rows_affected() == 0 {
                let found: Option<(i64,)> =
                    sqlx::query_as("SELECT id FROM webhooks WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
                return match found {
                    Some(_) => Ok(()),
                    None => Err(StoreError::NotFound(format!("webhook {id}"))),
                };
            }
            sqlx::query(
                "UPDATE deliveries SET state = 'dead', last_error = $1, done_at = $2 \
                 WHERE webhook_id = $3 AND state = 'pending'",
            )
            .bind(WEBHOOK_DISABLED)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        /// Whether anything is due, read without taking the write lock: an idle worker's every poll.
        pub(crate) async fn deliveries_due(pool: &Pool, now: i64) -> StoreResult<bool> {
            let row: Option<(i64,)> =
                sqlx::query_as("SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= $1 LIMIT 1")
                    .bind(now)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.is_some())
        }

        /// Claims due deliveries inside a batch's transaction: on SQLite the writer is then the only
        /// connection that writes them, however often workers poll.
        async fn claim_deliveries(
            tx: &mut Conn,
            now: i64,
            lease_until: i64,
            limit: u32,
        ) -> StoreResult<Vec<crate::DueDelivery>> {
            // What the notifier made for a webhook in the moments before it learnt that it was disabled.
            sqlx::query(
                "UPDATE deliveries SET state = 'dead', last_error = $1, done_at = $2 \
                 WHERE state = 'pending' AND next_at <= $2 \
                 AND webhook_id IN (SELECT id FROM webhooks WHERE disabled_at IS NOT NULL)",
            )
            .bind(WEBHOOK_DISABLED)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            // The outer conditions are checked again on the row itself, so that of two nodes claiming at once
            // (PostgreSQL) only one gets each delivery.
            let claimed: Vec<(i64,)> = sqlx::query_as(
                "UPDATE deliveries SET next_at = $1 WHERE id IN (SELECT id FROM deliveries \
                 WHERE state = 'pending' AND next_at <= $2 ORDER BY next_at, id LIMIT $3) \
                 AND state = 'pending' AND next_at <= $2 RETURNING id",
            )
            .bind(lease_until)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            if claimed.is_empty() {
                return Ok(Vec::new());
            }
            let mut query = QueryBuilder::<$db>::new(
                "SELECT d.id, d.webhook_id, d.seq, d.body, d.attempts, w.url, w.secret_sealed \
                 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id IN (",
            );
            let mut list = query.separated(", ");
            for (id,) in &claimed {
                list.push_bind(*id);
            }
            query.push(") ORDER BY d.id");
            let rows: Vec<(i64, i64, i64, String, i32, String, String)> =
                query.build_query_as().fetch_all(&mut *tx).await?;
            Ok(rows
                .into_iter()
                .map(|(id, webhook, seq, body, attempts, url, secret_sealed)| crate::DueDelivery {
                    id,
                    webhook,
                    seq,
                    body,
                    attempts: attempts.max(0) as u32,
                    url,
                    secret_sealed,
                })
                .collect())
        }

        pub(crate) async fn dead_deliveries(pool: &Pool, after: i64, limit: u32) -> StoreResult<Vec<crate::DeadDelivery>> {
            type Row = (i64, i64, i64, i64, String, i32, Option<String>, Option<i64>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT d.id, d.webhook_id, w.department_id, d.seq, d.body, d.attempts, d.last_error, d.done_at \
                 FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.state = 'dead' AND d.id > $1 ORDER BY d.id LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, webhook, department, seq, body, attempts, last_error, done_at)| crate::DeadDelivery {
                    id,
                    webhook,
                    department: DepartmentId(department),
                    seq,
                    body,
                    attempts: attempts.max(0) as u32,
                    last_error,
                    dead_at: done_at.map(shiyu_domain::Timestamp),
                })
                .collect())
        }

        pub(crate) async fn retry_delivery(pool: &Pool, id: i64, now: i64) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = $1, done_at = NULL \
                 WHERE id = $2 AND state = 'dead' \
                 AND webhook_id IN (SELECT id FROM webhooks WHERE disabled_at IS NULL)",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let found: Option<(String, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT d.state, d.webhook_id, w.disabled_at FROM deliveries d \
                     JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1",
                )
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                return Err(match found {
                    None => StoreError::NotFound(format!("delivery {id}")),
                    Some((state, _, _)) if state != "dead" => {
                        StoreError::Conflict(format!("delivery {id} is {state}, not dead"))
                    }
                    Some((_, webhook, _)) => StoreError::Conflict(format!("webhook {webhook} is disabled")),
                });
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn unread_notifications(pool: &Pool, user: UserId) -> StoreResult<u64> {
            let (count,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL")
                    .bind(user.0)
                    .fetch_one(pool)
                    .await?;
            Ok(count as u64)
        }

        /// Marks the user's notifications read: those listed, or all when `ids` is `None`.
        pub(crate) async fn mark_notifications_read(
            pool: &Pool,
            user: UserId,
            ids: Option<&[i64]>,
            at: i64,
        ) -> StoreResult<u64> {
            let mut query =
                QueryBuilder::<$db>::new("UPDATE notifications SET read_at = ");
            query.push_bind(at).push(" WHERE read_at IS NULL AND user_id = ").push_bind(user.0);
            if let Some(ids) = ids {
                if ids.is_empty() {
                    return Ok(0);
                }
                query.push(" AND id IN (");
                let mut list = query.separated(", ");
                for id in ids.iter().take(CHUNK_ROWS) {
                    list.push_bind(*id);
                }
                query.push(")");
            }
            Ok(query.build().execute(pool).await?.rows_affected())
        }

        pub(crate) async fn last_seq(pool: &Pool) -> StoreResult<i64> {
            let (seq,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(pool).await?;
            Ok(seq)
        }

        pub(crate) async fn count_cases(pool: &Pool) -> StoreResult<u64> {
            let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM cases").fetch_one(pool).await?;
            Ok(count as u64)
        }

        pub(crate) async fn case_counts_by_status(pool: &Pool) -> StoreResult<Vec<(String, u64)>> {
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT status, COUNT(*) FROM cases GROUP BY status ORDER BY status").fetch_all(pool).await?;
            Ok(rows.into_iter().map(|(status, count)| (status, count as u64)).collect())
        }

        pub(crate) async fn put_jurisdictions(pool: &Pool, items: &[Jurisdiction]) -> StoreResult<()> {
            put_map(pool, items, &[]).await
        }

        /// Jurisdictions and their outlines in one transaction: an import lands whole or not at all.
        pub(crate) async fn put_map(
            pool: &Pool,
            items: &[Jurisdiction],
            shapes: &[(JurisdictionId, String)],
        ) -> StoreResult<()> {
            // Parents before children, so that every chunk's references already exist.
            let mut sorted: Vec<&Jurisdiction> = items.iter().collect();
            sorted.sort_by_key(|j| j.level);
            let mut tx = pool.begin().await?;
            for chunk in sorted.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("INSERT INTO jurisdictions (id, code, name, level, parent_id) ");
                query.push_values(chunk, |mut row, j| {
                    row.push_bind(j.id.0)
                        .push_bind(j.code.as_str())
                        .push_bind(j.name.as_str())
                        .push_bind(j.level.as_str())
                        .push_bind(j.parent.map(|p| p.0));
                });
                query.push(
                    " ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name, \
                     level = excluded.level, parent_id = excluded.parent_id",
                );
                query.build().execute(&mut *tx).await?;
            }
            for chunk in shapes.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("INSERT INTO shapes (jurisdiction_id, geometry) ");
                query.push_values(chunk, |mut row, (id, geometry)| {
                    row.push_bind(id.0).push_bind(geometry.as_str());
                });
                query.push(" ON CONFLICT (jurisdiction_id) DO UPDATE SET geometry = excluded.geometry");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn shapes(pool: &Pool) -> StoreResult<Vec<(JurisdictionId, String)>> {
            let rows: Vec<(i64, String)> =
                sqlx::query_as("SELECT jurisdiction_id, geometry FROM shapes ORDER BY jurisdiction_id")
                    .fetch_all(pool)
                    .await?;
            Ok(rows.into_iter().map(|(id, geometry)| (JurisdictionId(id), geometry)).collect())
        }

        pub(crate) async fn jurisdictions(pool: &Pool) -> StoreResult<Vec<Jurisdiction>> {
            let rows: Vec<(i64, String, String, String, Option<i64>)> =
                sqlx::query_as("SELECT id, code, name, level, parent_id FROM jurisdictions ORDER BY id")
                    .fetch_all(pool)
                    .await?;
            rows.into_iter()
                .map(|(id, code, name, level, parent)| {
                    Ok(Jurisdiction {
                        id: JurisdictionId(id),
                        code,
                        name,
                        level: Level::parse(&level).ok_or_else(|| corrupt("level", &level))?,
                        parent: parent.map(JurisdictionId),
                    })
                })
                .collect()
        }

        pub(crate) async fn put_departments(pool: &Pool, items: &[Department]) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            for chunk in items.chunks(CHUNK_ROWS) {
                let mut query =
                    QueryBuilder::<$db>::new("INSERT INTO departments (id, code, name, kind, jurisdiction_id) ");
                query.push_values(chunk, |mut row, d| {
                    row.push_bind(d.id.0)
                        .push_bind(d.code.as_str())
                        .push_bind(d.name.as_str())
                        .push_bind(d.kind.as_str())
                        .push_bind(d.jurisdiction.0);
                });
                query.push(
                    " ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name, \
                     kind = excluded.kind, jurisdiction_id = excluded.jurisdiction_id",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn departments(pool: &Pool) -> StoreResult<Vec<Department>> {
            let rows: Vec<(i64, String, String, String, i64)> =
                sqlx::query_as("SELECT id, code, name, kind, jurisdiction_id FROM departments ORDER BY id")
                    .fetch_all(pool)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(id, code, name, kind, jurisdiction)| Department {
                    id: DepartmentId(id),
                    code,
                    name,
                    kind,
                    jurisdiction: JurisdictionId(jurisdiction),
                })
                .collect())
        }

        pub(crate) async fn put_categories(pool: &Pool, items: &[Category]) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            for chunk in items.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("INSERT INTO categories (code, name) ");
                query.push_values(chunk, |mut row, c| {
                    row.push_bind(c.code.as_str()).push_bind(c.name.as_str());
                });
                query.push(" ON CONFLICT (code) DO UPDATE SET name = excluded.name");
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn categories(pool: &Pool) -> StoreResult<Vec<Category>> {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT code, name FROM categories ORDER BY code").fetch_all(pool).await?;
            Ok(rows.into_iter().map(|(code, name)| Category { code, name }).collect())
        }

        pub(crate) async fn put_matters(pool: &Pool, items: &[Matter]) -> StoreResult<()> {
            let encoded = items
                .iter()
                .map(|m| {
                    let priority = serde_json::to_value(m.default_priority)?;
                    Ok((
                        m,
                        priority.as_str().unwrap_or("normal").to_string(),
                        serde_json::to_string(&m.responsibilities)?,
                        serde_json::to_string(&m.limits)?,
                        serde_json::to_string(&m.duplicates)?,
                    ))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let mut tx = pool.begin().await?;
            for chunk in encoded.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO matters (code, name, category_code, default_priority, responsibilities, limits, \
                     duplicate_rule) ",
                );
                query.push_values(chunk, |mut row, (m, priority, responsibilities, limits, duplicates)| {
                    row.push_bind(m.code.as_str())
                        .push_bind(m.name.as_str())
                        .push_bind(m.category.as_str())
                        .push_bind(priority.as_str())
                        .push_bind(responsibilities.as_str())
                        .push_bind(limits.as_str())
                        .push_bind(duplicates.as_str());
                });
                query.push(
                    " ON CONFLICT (code) DO UPDATE SET name = excluded.name, category_code = excluded.category_code, \
                     default_priority = excluded.default_priority, responsibilities = excluded.responsibilities, \
                     limits = excluded.limits, duplicate_rule = excluded.duplicate_rule",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn matters(pool: &Pool) -> StoreResult<Vec<Matter>> {
            type Row = (String, String, String, String, String, String, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT code, name, category_code, default_priority, responsibilities, limits, duplicate_rule \
                 FROM matters ORDER BY code",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(code, name, category, priority, responsibilities, limits, duplicates)| {
                    Ok(Matter {
                        code,
                        name,
                        category,
                        default_priority: serde_json::from_value(serde_json::Value::String(priority))?,
                        responsibilities: serde_json::from_str(&responsibilities)?,
                        limits: serde_json::from_str(&limits)?,
                        duplicates: duplicates.map(|d| serde_json::from_str(&d)).transpose()?.unwrap_or_default(),
                    })
                })
                .collect()
        }

        pub(crate) async fn put_users(pool: &Pool, items: &[User]) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            for chunk in items.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO users (id, username, display_name, role, jurisdiction_id, department_id) ",
                );
                query.push_values(chunk, |mut row, u| {
                    let (jurisdiction, department) = scope_columns(u.scope);
                    row.push_bind(u.id.0)
                        .push_bind(u.username.as_str())
                        .push_bind(u.display_name.as_str())
                        .push_bind(u.role.as_str())
                        .push_bind(jurisdiction)
                        .push_bind(department);
                });
                query.push(
                    " ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
                     display_name = excluded.display_name, role = excluded.role, \
                     jurisdiction_id = excluded.jurisdiction_id, department_id = excluded.department_id",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn users(pool: &Pool) -> StoreResult<Vec<User>> {
            let rows: Vec<(i64, String, String, String, Option<i64>, Option<i64>)> = sqlx::query_as(
                "SELECT id, username, display_name, role, jurisdiction_id, department_id FROM users ORDER BY id",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(id, username, display_name, role, jurisdiction, department)| {
                    user_from(id, username, display_name, role, jurisdiction, department)
                })
                .collect()
        }


        pub(crate) async fn list_cases(pool: &Pool, query: &crate::CaseQuery) -> StoreResult<Vec<(CaseId, CaseState)>> {
            let mut sql = list_sql("SELECT c.id, c.state", query)?;
            let rows: Vec<(i64, Vec<u8>)> = sql.build_query_as().fetch_all(pool).await?;
            rows.into_iter().map(|(id, state)| Ok((CaseId(id), crate::codec::decode(&state)?))).collect()
        }

        /// The list's statement, after `select` (a `SELECT`, or SQLite's `EXPLAIN QUERY PLAN SELECT`).
        fn list_sql<'q>(select: &str, query: &crate::CaseQuery) -> StoreResult<QueryBuilder<'q, $db>> {
            use crate::CaseScope;
            use crate::CaseOrder;
            let mut sql = QueryBuilder::<$db>::new(format!("{select} FROM cases c WHERE 1 = 1"));
            // A county, township or city department is on a large share of all cases: for a work list or the
            // suspended cases, walking the small index of running or stopped clocks and skipping the others
            // beats reading all of theirs. The unary `+` keeps SQLite off the place's or department's index;
            // a grid's few cases are still found through theirs.
            let small_index = matches!(query.order, CaseOrder::Due { .. })
                || matches!(query.clock, Some(crate::ClockFilter::Stopped));
            let steer = STEERS_WORK_LISTS && small_index;
            let unindexed = |wide: bool| if steer && wide { "+" } else { "" };
            let mut under = |depth: usize, jurisdiction: shiyu_domain::JurisdictionId| -> StoreResult<()> {
                if depth > 0 {
                    let column = ["county_id", "township_id", "community_id", "grid_id", "micro_grid_id"]
                        .get(depth - 1)
                        .ok_or_else(|| StoreError::Other(format!("no scope column for depth {depth}")))?;
                    sql.push(format!(" AND {}c.{column} = ", unindexed(depth <= 2))).push_bind(jurisdiction.0);
                }
                Ok(())
            };
            if let Some((depth, jurisdiction)) = query.within {
                under(depth, jurisdiction)?;
            }
            match query.scope {
                CaseScope::All => {}
                CaseScope::Under { depth, jurisdiction } => under(depth, jurisdiction)?,
                CaseScope::Department(department) => {
                    sql.push(format!(
                        " AND {}c.id IN (SELECT case_id FROM case_departments WHERE department_id = ",
                        unindexed(true)
                    ))
                        .push_bind(department.0)
                        .push(")");
                }
                CaseScope::Reporter(user) => {
                    sql.push(" AND c.reporter_id = ").push_bind(user.0);
                }
            }
            if !query.statuses.is_empty() {
                sql.push(" AND c.status IN (");
                let mut listed = sql.separated(", ");
                for status in &query.statuses {
                    listed.push_bind(status.as_str());
                }
                sql.push(")");
            }
            if let Some(matter) = &query.matter {
                sql.push(" AND c.matter_code = ").push_bind(matter.clone());
            }
            if let Some(code) = &query.tracking_code {
                sql.push(" AND c.tracking_code = ").push_bind(code.clone());
            }
            if let Some(after) = query.received_after {
                sql.push(" AND c.received_at >= ").push_bind(after.0);
            }
            match query.clock {
                None => {}
                Some(crate::ClockFilter::Running) => {
                    sql.push(" AND c.due_at IS NOT NULL");
                }
                Some(crate::ClockFilter::OverdueAt(now)) => {
                    sql.push(" AND c.due_at <= ").push_bind(now.0);
                }
                Some(crate::ClockFilter::Stopped) => {
                    sql.push(format!(" AND {}", crate::sql::CLOCK_STOPPED));
                }
            }
            match query.order {
                CaseOrder::Newest { before } => {
                    if let Some(before) = before {
                        sql.push(" AND c.id < ").push_bind(before.0);
                    }
                    sql.push(" ORDER BY c.id DESC");
                }
                CaseOrder::Due { after } => {
                    sql.push(" AND c.due_at IS NOT NULL");
                    if let Some((due, id)) = after {
                        // A row value, so that both databases start the index walk at the cursor.
                        sql.push(" AND (c.due_at, c.id) > (").push_bind(due.0).push(", ").push_bind(id.0).push(")");
                    }
                    sql.push(" ORDER BY c.due_at, c.id");
                }
            }
            sql.push(" LIMIT ").push_bind(i64::from(query.limit));
            Ok(sql)
        }

        pub(crate) async fn case_by_tracking_code(pool: &Pool, code: &str) -> StoreResult<Option<CaseId>> {
            let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM cases WHERE tracking_code = $1")
                .bind(code)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|(id,)| CaseId(id)))
        }

        pub(crate) async fn audit_log(pool: &Pool, after: i64, limit: u32) -> StoreResult<Vec<crate::AuditRecord>> {
            type Row = (i64, i64, Option<i64>, String, String, Option<String>, Option<String>, Option<String>);
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT seq, at, user_id, actor, action, target, address, detail FROM audit_log WHERE seq > $1 \
                 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(seq, at, user, actor, action, target, address, detail)| crate::AuditRecord {
                    seq,
                    entry: crate::AuditEntry {
                        at: shiyu_domain::Timestamp(at),
                        user: user.map(UserId),
                        actor,
                        action,
                        target,
                        address,
                        detail,
                    },
                })
                .collect())
        }

        fn scope_columns(scope: Scope) -> (Option<i64>, Option<i64>) {
            match scope {
                Scope::Unbound => (None, None),
                Scope::Jurisdiction(j) => (Some(j.0), None),
                Scope::Department(d) => (None, Some(d.0)),
            }
        }

        fn user_from(id: i64, username: String, display_name: String, role: String, jurisdiction: Option<i64>, department: Option<i64>) -> StoreResult<User> {
            let scope = match (jurisdiction, department) {
                (Some(j), _) => Scope::Jurisdiction(JurisdictionId(j)),
                (None, Some(d)) => Scope::Department(DepartmentId(d)),
                (None, None) => Scope::Unbound,
            };
            Ok(User { id: UserId(id), username, display_name, role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?, scope })
        }

        /// Adds a user under the next free id. A unique violation means the name is taken (in any letter case)
        /// or, when two users are added at the same instant, that the other took the id first: the name is
        /// looked up to tell which, and only a taken name is a conflict.
        pub(crate) async fn add_user(pool: &Pool, user: &crate::NewUser) -> StoreResult<User> {
            let (jurisdiction, department) = scope_columns(user.scope);
            let mut attempts = 0;
            loop {
                attempts += 1;
                let inserted: Result<(i64,), sqlx::Error> = sqlx::query_as(
                    "INSERT INTO users (id, username, display_name, role, jurisdiction_id, department_id, password_hash) \
                     SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4, $5, $6 FROM users RETURNING id",
                )
                .bind(&user.username)
                .bind(&user.display_name)
                .bind(user.role.as_str())
                .bind(jurisdiction)
                .bind(department)
                .bind(user.password_hash.as_deref())
                .fetch_one(pool)
                .await;
                match inserted {
                    Ok((id,)) => {
                        return Ok(User {
                            id: UserId(id),
                            username: user.username.clone(),
                            display_name: user.display_name.clone(),
                            role: user.role,
                            scope: user.scope,
                        })
                    }
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        let (taken,): (i64,) =
                            sqlx::query_as("SELECT COUNT(*) FROM users WHERE lower(username) = lower($1)")
                                .bind(&user.username)
                                .fetch_one(pool)
                                .await?;
                        if taken > 0 {
                            return Err(StoreError::Conflict(format!("username {} is taken", user.username)));
                        }
                        if attempts == 5 {
                            return Err(StoreError::Other("no free user id after five tries".into()));
                        }
                    }
                    Err(other) => return Err(other.into()),
                }
            }
        }

        pub(crate) async fn credentials(pool: &Pool, username: &str) -> StoreResult<Option<crate::Credentials>> {
            type Row = (i64, String, String, String, Option<i64>, Option<i64>, Option<String>, i64, Option<i64>);
            let row: Option<Row> = sqlx::query_as(
                "SELECT id, username, display_name, role, jurisdiction_id, department_id, password_hash, \
                 failed_logins, locked_until FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?;
            row.map(|(id, username, display_name, role, j, d, password_hash, failed_logins, locked_until)| {
                Ok(crate::Credentials {
                    user: user_from(id, username, display_name, role, j, d)?,
                    password_hash,
                    failed_logins,
                    locked_until: locked_until.map(shiyu_domain::Timestamp),
                })
            })
            .transpose()
        }

        pub(crate) async fn set_password(pool: &Pool, user: UserId, hash: &str) -> StoreResult<()> {
            let done = sqlx::query("UPDATE users SET password_hash = $1, failed_logins = 0, failed_since = NULL, locked_until = NULL \
                 WHERE id = $2")
                .bind(hash)
                .bind(user.0)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("user {}", user.0)));
            }
            Ok(())
        }

        pub(crate) async fn set_login_state(pool: &Pool, user: UserId, failed: i64, locked_until: Option<shiyu_domain::Timestamp>) -> StoreResult<()> {
            sqlx::query("UPDATE users SET failed_logins = $1, failed_since = NULL, locked_until = $2 WHERE id = $3")
                .bind(failed)
                .bind(locked_until.map(|t| t.0))
                .bind(user.0)
                .execute(pool)
                .await?;
            Ok(())
        }

        pub(crate) async fn count_login_attempt(
            pool: &Pool,
            user: UserId,
            now: shiyu_domain::Timestamp,
            lock_after: i64,
            lock_until: shiyu_domain::Timestamp,
            counting_since: shiyu_domain::Timestamp,
        ) -> StoreResult<Option<i64>> {
            // The SET expressions read the row as it was, so one statement both counts and locks. A run of
            // failures that began at or before `counting_since` is over: this attempt starts a new one.
            let row: Option<(i64,)> = sqlx::query_as(
                "UPDATE users SET \
                 failed_logins = CASE WHEN failed_since IS NULL OR failed_since <= $5 THEN 1 \
                     ELSE failed_logins + 1 END, \
                 failed_since = CASE WHEN failed_since IS NULL OR failed_since <= $5 THEN $4 \
                     ELSE failed_since END, \
                 locked_until = CASE WHEN (CASE WHEN failed_since IS NULL OR failed_since <= $5 THEN 1 \
                     ELSE failed_logins + 1 END) >= $2 THEN $3 ELSE locked_until END \
                 WHERE id = $1 AND (locked_until IS NULL OR locked_until <= $4) RETURNING failed_logins",
            )
            .bind(user.0)
            .bind(lock_after)
            .bind(lock_until.0)
            .bind(now.0)
            .bind(counting_since.0)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(failed,)| failed))
        }

        pub(crate) async fn create_session(pool: &Pool, session: &crate::Session) -> StoreResult<()> {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&session.token_hash)
            .bind(session.user.0)
            .bind(&session.csrf_token)
            .bind(session.created_at.0)
            .bind(session.expires_at.0)
            .execute(pool)
            .await?;
            Ok(())
        }

        pub(crate) async fn find_session(pool: &Pool, token_hash: &str) -> StoreResult<Option<(crate::Session, User)>> {
            type Row = (String, i64, String, i64, i64, String, String, String, Option<i64>, Option<i64>);
            let row: Option<Row> = sqlx::query_as(
                "SELECT s.token_hash, s.user_id, s.csrf_token, s.created_at, s.expires_at, u.username, u.display_name, \
                 u.role, u.jurisdiction_id, u.department_id FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            row.map(|(token_hash, user, csrf_token, created_at, expires_at, username, display_name, role, j, d)| {
                Ok((
                    crate::Session {
                        token_hash,
                        user: UserId(user),
                        csrf_token,
                        created_at: shiyu_domain::Timestamp(created_at),
                        expires_at: shiyu_domain::Timestamp(expires_at),
                    },
                    user_from(user, username, display_name, role, j, d)?,
                ))
            })
            .transpose()
        }

        pub(crate) async fn delete_session(pool: &Pool, token_hash: &str) -> StoreResult<()> {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(pool).await?;
            Ok(())
        }

        pub(crate) async fn delete_sessions_of(pool: &Pool, user: UserId) -> StoreResult<()> {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user.0).execute(pool).await?;
            Ok(())
        }

        pub(crate) async fn create_api_token(pool: &Pool, token: &crate::ApiToken) -> StoreResult<i64> {
            let (id,): (i64,) = sqlx::query_as(
                "INSERT INTO api_tokens (token_hash, name, user_id, scopes, created_at) VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id",
            )
            .bind(&token.token_hash)
            .bind(&token.name)
            .bind(token.user.0)
            .bind(token.scopes.join(" "))
            .bind(token.created_at.0)
            .fetch_one(pool)
            .await?;
            Ok(id)
        }

        type ApiTokenRow = (i64, String, String, i64, String, i64, Option<i64>, String, String, String, Option<i64>, Option<i64>);
        const API_TOKEN_COLUMNS: &str = "SELECT t.id, t.token_hash, t.name, t.user_id, t.scopes, t.created_at, \
             t.revoked_at, u.username, u.display_name, u.role, u.jurisdiction_id, u.department_id FROM api_tokens t \
             JOIN users u ON u.id = t.user_id";

        fn api_token_from(row: ApiTokenRow) -> StoreResult<(crate::ApiToken, User)> {
            let (id, token_hash, name, user, scopes, created_at, revoked_at, username, display_name, role, j, d) = row;
            Ok((
                crate::ApiToken {
                    id,
                    token_hash,
                    name,
                    user: UserId(user),
                    scopes: scopes.split_whitespace().map(str::to_string).collect(),
                    created_at: shiyu_domain::Timestamp(created_at),
                    revoked: revoked_at.is_some(),
                },
                user_from(user, username, display_name, role, j, d)?,
            ))
        }

        pub(crate) async fn find_api_token(pool: &Pool, token_hash: &str) -> StoreResult<Option<(crate::ApiToken, User)>> {
            let row: Option<ApiTokenRow> = sqlx::query_as(&format!("{API_TOKEN_COLUMNS} WHERE t.token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
            row.map(api_token_from).transpose()
        }

        pub(crate) async fn api_tokens(pool: &Pool) -> StoreResult<Vec<(crate::ApiToken, User)>> {
            let rows: Vec<ApiTokenRow> =
                sqlx::query_as(&format!("{API_TOKEN_COLUMNS} ORDER BY t.id DESC")).fetch_all(pool).await?;
            rows.into_iter().map(api_token_from).collect()
        }

        pub(crate) async fn revoke_api_token(pool: &Pool, id: i64, at: shiyu_domain::Timestamp) -> StoreResult<()> {
            let done = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at.0)
                .bind(id)
                .execute(pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("api token {id}")));
            }
            Ok(())
        }

        pub(crate) async fn attachment_meta(pool: &Pool, sha256: &str) -> StoreResult<Option<crate::AttachmentMeta>> {
            let row: Option<(String, String, i64, String, Option<i64>, i64)> = sqlx::query_as(
                "SELECT sha256, mime, size, name, uploaded_by, created_at FROM attachments WHERE sha256 = $1",
            )
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(sha256, mime, size, name, uploaded_by, created_at)| crate::AttachmentMeta {
                sha256,
                mime,
                size,
                name,
                uploaded_by: uploaded_by.map(UserId),
                created_at: shiyu_domain::Timestamp(created_at),
            }))
        }

        /// Records an attachment's metadata, and its bytes when the backend keeps them in the database, and that
        /// `holder` uploaded it, in one transaction.
        pub(crate) async fn insert_attachment(
            pool: &Pool,
            meta: &crate::AttachmentMeta,
            content: Option<&[u8]>,
            holder: &str,
        ) -> StoreResult<()> {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO attachments (sha256, mime, size, name, uploaded_by, created_at, content) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(&meta.sha256)
            .bind(&meta.mime)
            .bind(meta.size)
            .bind(&meta.name)
            .bind(meta.uploaded_by.map(|u| u.0))
            .bind(meta.created_at.0)
            .bind(content)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO uploads (sha256, holder, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha256, holder) DO NOTHING",
            )
            .bind(&meta.sha256)
            .bind(holder)
            .bind(meta.created_at.0)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn has_uploaded(pool: &Pool, sha256: &str, holder: &str) -> StoreResult<bool> {
            let (found,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM uploads WHERE sha256 = $1 AND holder = $2")
                .bind(sha256)
                .bind(holder)
                .fetch_one(pool)
                .await?;
            Ok(found > 0)
        }

        /// Applies the migrations not yet recorded in `schema_migrations`, all in one transaction, so that a
        /// migration that fails or is refused (`MIGRATION_REFUSALS`) leaves the database as it was.
        pub(crate) async fn migrate(
            conn: &mut Conn,
            migrations: &[(i64, &str, &str)],
            lock: Option<&'static str>,
        ) -> StoreResult<()> {
            let mut tx = conn.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            let applied: Vec<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations").fetch_all(&mut *tx).await?;
            for (version, description, sql) in migrations {
                if applied.iter().any(|(v,)| v == version) {
                    continue;
                }
                if let Some((_, query, message)) = crate::sql::MIGRATION_REFUSALS.iter().find(|(v, ..)| v == version) {
                    let found: Vec<(String,)> = sqlx::query_as(query).fetch_all(&mut *tx).await?;
                    if !found.is_empty() {
                        let found: Vec<String> = found.into_iter().map(|(row,)| row).collect();
                        return Err(StoreError::Conflict(format!(
                            "cannot apply migration {version} ({description}): {}",
                            message.replace("{found}", &found.join(", "))
                        )));
                    }
                }
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                if *version == crate::sql::DUE_MIGRATION {
                    fill_due_at(&mut tx).await?;
                }
                sqlx::query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(*description)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        /// The due time of every case already open when the column came, read from its state (rows written since
        /// carry it). Until it is filled every open case reads as stopped (`CLOCK_STOPPED`).
        async fn fill_due_at(conn: &mut Conn) -> StoreResult<()> {
            let open = format!("SELECT c.id, c.state FROM cases c WHERE {}", crate::sql::CLOCK_STOPPED);
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(&open).fetch_all(&mut *conn).await?;
            for (id, state) in rows {
                if let Some(due) = crate::batch::running_due(&crate::codec::decode(&state)?) {
                    sqlx::query("UPDATE cases SET due_at = $1 WHERE id = $2")
                        .bind(due)
                        .bind(id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            Ok(())
        }

        fn corrupt(what: &str, value: &str) -> StoreError {
            StoreError::Other(format!("unknown {what} `{value}` in the database"))
        }
    };
}

pub(crate) use shared_sql;

/// The `Store` impl both backends share. The backend type provides `read_pool()`, `reference_pool()` (where
/// reference data, users and sessions are written), `writer` (its group committer), `opened_journal()`, `backup_to()`,
/// `defer_indexes_now()` / `build_deferred_indexes_now()` (what a large bulk load does with the indexes), and
/// `put_attachment_content()` / `attachment_content()` (the backends keep file bytes in different places).
macro_rules! store_impl {
    ($store:ty, $backend:expr) => {
        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn backend(&self) -> crate::Backend {
                $backend
            }

            fn commit_stats(&self) -> crate::GroupCommitStats {
                self.writer.stats()
            }

            fn journal(&self) -> Option<crate::Journal> {
                self.opened_journal()
            }

            async fn create_case(
                &self,
                key: Option<String>,
                events: Vec<Event>,
                state: &CaseState,
                now: shiyu_domain::Timestamp,
            ) -> StoreResult<crate::CreateOutcome> {
                use crate::batch::{CaseRow, EventRow};
                let write = Write::Create {
                    key,
                    now: now.0,
                    case: CaseRow::of(state)?,
                    events: EventRow::all(&events)?,
                };
                match self.writer.submit(write).await? {
                    Written::Created(outcome) => {
                        if outcome.created {
                            self.cache.put_case(outcome.id, state);
                        }
                        Ok(outcome)
                    }
                    _ => Err(StoreError::Other("unexpected answer to a creation".into())),
                }
            }

            async fn append(
                &self,
                id: CaseId,
                expected: u64,
                events: Vec<Event>,
                state: &CaseState,
            ) -> StoreResult<()> {
                use crate::batch::{CaseRow, EventRow};
                let write = Write::Append {
                    id: id.0,
                    expected,
                    case: CaseRow::of(state)?,
                    events: EventRow::all(&events)?,
                };
                self.writer.submit(write).await?;
                self.cache.put_case(id, state);
                Ok(())
            }

            async fn reserve_case_ids(
                &self,
                count: u64,
                now: shiyu_domain::Timestamp,
            ) -> StoreResult<CaseId> {
                match self.writer.submit(Write::Reserve { count, now: now.0 }).await? {
                    Written::Reserved(first) => Ok(CaseId(first)),
                    _ => Err(StoreError::Other("unexpected answer to a reservation".into())),
                }
            }
            async fn bulk_load(&self, cases: crate::BulkCases, audit: crate::AuditEntry) -> StoreResult<()> {
                if cases.is_empty() {
                    return Ok(());
                }
                self.writer.submit(Write::Bulk { cases: std::sync::Arc::new(cases), audit }).await.map(|_| ())
            }

            async fn load_case(&self, id: CaseId) -> StoreResult<Option<CaseState>> {
                if let Some(state) = self.cache.case(id) {
                    return Ok(Some(state));
                }
                let state = load_case(self.read_pool(), id).await?;
                if let Some(state) = &state {
                    self.cache.put_case(id, state);
                }
                Ok(state)
            }
            async fn case_history(&self, id: CaseId) -> StoreResult<Vec<StoredEvent>> {
                case_history(self.read_pool(), id).await
            }
            async fn events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
                events_since(self.read_pool(), after, limit).await
            }
            async fn raw_events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<crate::RawEvent>> {
                self.raw_log(after, limit).await
            }
            async fn labelled_descriptions(&self) -> StoreResult<Vec<(String, String)>> {
                labelled_descriptions(self.read_pool()).await
            }
            async fn put_model(
                &self,
                name: &str,
                body: &str,
                at: shiyu_domain::Timestamp,
            ) -> StoreResult<()> {
                put_model(&self.reference_pool().await?, name, body, at.0).await
            }
            async fn model(&self, name: &str) -> StoreResult<Option<String>> {
                model(self.read_pool(), name).await
            }
            async fn last_seq(&self) -> StoreResult<i64> {
                last_seq(self.read_pool()).await
            }
            async fn count_cases(&self) -> StoreResult<u64> {
                count_cases(self.read_pool()).await
            }
            async fn case_counts_by_status(&self) -> StoreResult<Vec<(String, u64)>> {
                case_counts_by_status(self.read_pool()).await
            }
            async fn put_jurisdictions(&self, items: &[Jurisdiction]) -> StoreResult<()> {
                put_jurisdictions(&self.reference_pool().await?, items).await
            }
            async fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>> {
                jurisdictions(self.read_pool()).await
            }
            async fn put_map(
                &self,
                items: &[Jurisdiction],
                shapes: &[(JurisdictionId, String)],
            ) -> StoreResult<()> {
                put_map(&self.reference_pool().await?, items, shapes).await
            }
            async fn shapes(&self) -> StoreResult<Vec<(JurisdictionId, String)>> {
                shapes(self.read_pool()).await
            }
            async fn put_departments(&self, items: &[Department]) -> StoreResult<()> {
                put_departments(&self.reference_pool().await?, items).await
            }
            async fn departments(&self) -> StoreResult<Vec<Department>> {
                departments(self.read_pool()).await
            }
            async fn put_categories(&self, items: &[Category]) -> StoreResult<()> {
                put_categories(&self.reference_pool().await?, items).await
            }
            async fn categories(&self) -> StoreResult<Vec<Category>> {
                categories(self.read_pool()).await
            }
            async fn put_matters(&self, items: &[Matter]) -> StoreResult<()> {
                put_matters(&self.reference_pool().await?, items).await
            }
            async fn matters(&self) -> StoreResult<Vec<Matter>> {
                matters(self.read_pool()).await
            }
            async fn put_users(&self, items: &[User]) -> StoreResult<()> {
                put_users(&self.reference_pool().await?, items).await?;
                self.cache.forget_all_credentials();
                Ok(())
            }
            async fn users(&self) -> StoreResult<Vec<User>> {
                users(self.read_pool()).await
            }
            async fn backup(&self, destination: &std::path::Path) -> StoreResult<()> {
                self.backup_to(destination).await
            }
            async fn defer_indexes(&self) -> StoreResult<()> {
                self.defer_indexes_now().await
            }
            async fn build_deferred_indexes(&self, built: &mut crate::IndexesBuilt<'_>) -> StoreResult<()> {
                self.build_deferred_indexes_now(built).await
            }
            async fn list_cases(&self, query: &crate::CaseQuery) -> StoreResult<Vec<(CaseId, CaseState)>> {
                list_cases(self.read_pool(), query).await
            }
            async fn case_by_tracking_code(&self, code: &str) -> StoreResult<Option<CaseId>> {
                case_by_tracking_code(self.read_pool(), code).await
            }
            async fn audit(&self, entries: Vec<crate::AuditEntry>) -> StoreResult<()> {
                self.writer.submit(Write::Audit { entries }).await.map(|_| ())
            }
            async fn audit_log(&self, after: i64, limit: u32) -> StoreResult<Vec<crate::AuditRecord>> {
                audit_log(self.read_pool(), after, limit).await
            }
            async fn alarms(&self) -> StoreResult<Vec<(CaseId, shiyu_domain::Timestamp)>> {
                alarms(self.read_pool()).await
            }
            async fn put_setting(
                &self,
                name: &str,
                body: &str,
                at: shiyu_domain::Timestamp,
            ) -> StoreResult<()> {
                put_setting(&self.reference_pool().await?, name, body, at.0).await
            }
            async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
                setting(self.read_pool(), name).await
            }
            async fn follower_seq(&self, name: &str) -> StoreResult<i64> {
                follower_seq(self.read_pool(), name).await
            }
            async fn follow(
                &self,
                follower: &str,
                seq: i64,
                notifications: Vec<crate::NewNotification>,
                deliveries: Vec<crate::NewDelivery>,
            ) -> StoreResult<()> {
                let write = Write::Follow { follower: follower.to_string(), seq, notifications, deliveries };
                self.writer.submit(write).await.map(|_| ())
            }
            async fn notifications(
                &self,
                user: UserId,
                unread_only: bool,
                before: Option<i64>,
                limit: u32,
            ) -> StoreResult<Vec<crate::Notification>> {
                notifications(self.read_pool(), user, unread_only, before, limit).await
            }
            async fn active_webhooks(&self) -> StoreResult<Vec<(i64, i64)>> {
                active_webhooks(self.read_pool()).await
            }
            async fn create_webhook(&self, webhook: &crate::NewWebhook) -> StoreResult<i64> {
                create_webhook(&self.reference_pool().await?, webhook).await
            }
            async fn webhooks(&self, department: Option<DepartmentId>) -> StoreResult<Vec<crate::Webhook>> {
                webhooks(self.read_pool(), department).await
            }
            async fn disable_webhook(&self, id: i64, at: shiyu_domain::Timestamp) -> StoreResult<()> {
                disable_webhook(&self.reference_pool().await?, id, at.0).await
            }
            async fn take_deliveries(
                &self,
                now: shiyu_domain::Timestamp,
                lease_until: shiyu_domain::Timestamp,
                limit: u32,
            ) -> StoreResult<Vec<crate::DueDelivery>> {
                // Polled every second or so: only a poll that finds work takes a write connection.
                if !deliveries_due(self.read_pool(), now.0).await? {
                    return Ok(Vec::new());
                }
                let claim = Write::Claim { now: now.0, lease_until: lease_until.0, limit };
                match self.writer.submit(claim).await? {
                    Written::Claimed(due) => Ok(due),
                    _ => Err(StoreError::Other("unexpected answer to a claim".into())),
                }
            }
            async fn record_delivery(&self, attempt: crate::DeliveryAttempt) -> StoreResult<()> {
                self.writer.submit(Write::Attempt(attempt)).await.map(|_| ())
            }
            async fn dead_deliveries(&self, after: i64, limit: u32) -> StoreResult<Vec<crate::DeadDelivery>> {
                dead_deliveries(self.read_pool(), after, limit).await
            }
            async fn retry_delivery(&self, id: i64, now: shiyu_domain::Timestamp) -> StoreResult<()> {
                retry_delivery(&self.reference_pool().await?, id, now.0).await
            }
            async fn unread_notifications(&self, user: UserId) -> StoreResult<u64> {
                unread_notifications(self.read_pool(), user).await
            }
            async fn mark_notifications_read(
                &self,
                user: UserId,
                ids: Option<&[i64]>,
                at: shiyu_domain::Timestamp,
            ) -> StoreResult<u64> {
                mark_notifications_read(&self.reference_pool().await?, user, ids, at.0).await
            }
            async fn add_user(&self, user: &crate::NewUser) -> StoreResult<User> {
                add_user(&self.reference_pool().await?, user).await
            }
            async fn credentials(&self, username: &str) -> StoreResult<Option<crate::Credentials>> {
                credentials(self.read_pool(), username).await
            }
            async fn set_password(&self, user: UserId, hash: &str) -> StoreResult<()> {
                set_password(&self.reference_pool().await?, user, hash).await?;
                self.cache.forget_user(user);
                Ok(())
            }
            async fn set_login_state(
                &self,
                user: UserId,
                failed: i64,
                locked_until: Option<shiyu_domain::Timestamp>,
            ) -> StoreResult<()> {
                set_login_state(&self.reference_pool().await?, user, failed, locked_until).await
            }
            async fn count_login_attempt(
                &self,
                user: UserId,
                now: shiyu_domain::Timestamp,
                lock_after: i64,
                lock_until: shiyu_domain::Timestamp,
                counting_since: shiyu_domain::Timestamp,
            ) -> StoreResult<Option<i64>> {
                let pool = self.reference_pool().await?;
                count_login_attempt(&pool, user, now, lock_after, lock_until, counting_since).await
            }
            async fn create_session(&self, session: &crate::Session) -> StoreResult<()> {
                create_session(&self.reference_pool().await?, session).await
            }
            async fn find_session(&self, token_hash: &str) -> StoreResult<Option<(crate::Session, User)>> {
                self.cache.sessions.get_or_fetch(token_hash, find_session(self.read_pool(), token_hash)).await
            }
            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                delete_session(&self.reference_pool().await?, token_hash).await?;
                self.cache.forget_session(token_hash);
                Ok(())
            }
            async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()> {
                delete_sessions_of(&self.reference_pool().await?, user).await?;
                self.cache.forget_user(user);
                Ok(())
            }
            async fn create_api_token(&self, token: &crate::ApiToken) -> StoreResult<i64> {
                create_api_token(&self.reference_pool().await?, token).await
            }
            async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<(crate::ApiToken, User)>> {
                self.cache
                    .api_tokens
                    .get_or_fetch(token_hash, find_api_token(self.read_pool(), token_hash))
                    .await
            }
            async fn revoke_api_token(&self, id: i64, at: shiyu_domain::Timestamp) -> StoreResult<()> {
                revoke_api_token(&self.reference_pool().await?, id, at).await?;
                self.cache.forget_api_token(id);
                Ok(())
            }
            async fn api_tokens(&self) -> StoreResult<Vec<(crate::ApiToken, User)>> {
                api_tokens(self.read_pool()).await
            }
            async fn put_attachment(
                &self,
                meta: &crate::AttachmentMeta,
                content: &[u8],
                holder: &str,
            ) -> StoreResult<()> {
                self.put_attachment_content(meta, content, holder).await
            }
            async fn attachment(
                &self,
                sha256: &str,
            ) -> StoreResult<Option<(crate::AttachmentMeta, Vec<u8>)>> {
                self.attachment_content(sha256).await
            }
            async fn has_uploaded(&self, sha256: &str, holder: &str) -> StoreResult<bool> {
                has_uploaded(self.read_pool(), sha256, holder).await
            }
        }
    };
}

pub(crate) use store_impl;

#[cfg(test)]
mod tests {
    use super::CLOCK_STOPPED;
    use shiyu_domain::Status;

    /// The stopped-clock condition names exactly the states before the end, as both migrations' partial
    /// index does, word for word.
    #[test]
    fn the_stopped_clock_condition_matches_the_domain_and_the_index() {
        let active: Vec<String> =
            Status::ALL.iter().filter(|s| s.is_active()).map(|s| format!("'{}'", s.as_str())).collect();
        let condition = format!("c.due_at IS NULL AND c.status IN ({})", active.join(", "));
        assert_eq!(CLOCK_STOPPED, condition);
        let in_index = condition.replace("c.", "");
        for migration in [
            include_str!("../migrations/sqlite/0015_suspended.sql"),
            include_str!("../migrations/postgres/0015_suspended.sql"),
        ] {
            assert!(migration.contains(&in_index), "{migration}");
        }
    }
}
