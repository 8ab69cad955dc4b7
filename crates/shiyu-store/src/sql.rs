//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here (`$n` placeholders,
//! `ON CONFLICT … DO UPDATE`), so one macro stamps out the functions for each backend's types.

/// Rows per multi-row statement: stays under SQLite's and PostgreSQL's limits on bound parameters.
pub(crate) const CHUNK_ROWS: usize = 500;

macro_rules! shared_sql {
    ($db:ty) => {
        use crate::batch::{Lookup, Plan, Write, Written};
        use crate::sql::CHUNK_ROWS;
        use crate::{StoreError, StoreResult, StoredEvent};
        use shiyu_domain::{
            CaseId, CaseState, Category, Department, DepartmentId, Event, Jurisdiction, JurisdictionId, Level,
            Matter, Role, Scope, User, UserId,
        };
        use sqlx::{Connection as _, QueryBuilder};

        type Conn = <$db as sqlx::Database>::Connection;
        type Pool = sqlx::Pool<$db>;

        /// Runs one batch in one transaction. `lock` serialises writers of several nodes (PostgreSQL), so that
        /// sequence numbers are handed out in commit order.
        pub(crate) async fn write_batch(
            conn: &mut Conn,
            writes: &[&Write],
            lock: Option<&'static str>,
        ) -> StoreResult<Vec<StoreResult<Written>>> {
            let mut tx = conn.begin().await?;
            if let Some(lock) = lock {
                sqlx::query(lock).execute(&mut *tx).await?;
            }
            let lookup = lookup(&mut tx, writes).await?;
            let plan = Plan::new(writes, lookup);
            write_plan(&mut tx, &plan).await?;
            tx.commit().await?;
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
            let (max_id, max_seq): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE((SELECT MAX(id) FROM cases), 0), COALESCE((SELECT MAX(seq) FROM events), 0)",
            )
            .fetch_one(&mut *conn)
            .await?;
            lookup.max_id = max_id;
            lookup.max_seq = max_seq;
            Ok(lookup)
        }

        async fn write_plan(conn: &mut Conn, plan: &Plan<'_>) -> StoreResult<()> {
            let cases: Vec<_> = plan.cases.iter().collect();
            for chunk in cases.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO cases (id, version, status, owner_id, place_id, matter_code, received_at, \
                     updated_at, state) ",
                );
                query.push_values(chunk, |mut row, (id, case)| {
                    row.push_bind(**id)
                        .push_bind(case.version)
                        .push_bind(case.status)
                        .push_bind(case.owner_id)
                        .push_bind(case.place_id)
                        .push_bind(case.matter_code.as_deref())
                        .push_bind(case.received_at)
                        .push_bind(case.updated_at)
                        .push_bind(case.state.as_str());
                });
                query.push(
                    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status, \
                     owner_id = excluded.owner_id, matter_code = excluded.matter_code, \
                     updated_at = excluded.updated_at, state = excluded.state",
                );
                query.build().execute(&mut *conn).await?;
            }
            for chunk in plan.events.chunks(CHUNK_ROWS) {
                let mut query =
                    QueryBuilder::<$db>::new("INSERT INTO events (seq, case_id, version, kind, at, payload) ");
                query.push_values(chunk, |mut row, (seq, case_id, version, event)| {
                    row.push_bind(*seq)
                        .push_bind(*case_id)
                        .push_bind(*version)
                        .push_bind(event.kind)
                        .push_bind(event.at)
                        .push_bind(event.payload.as_str());
                });
                query.build().execute(&mut *conn).await?;
            }
            for chunk in plan.keys.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new("INSERT INTO idempotency_keys (key, case_id, created_at) ");
                query.push_values(chunk, |mut row, (key, id, at)| {
                    row.push_bind(*key).push_bind(*id).push_bind(*at);
                });
                query.build().execute(&mut *conn).await?;
            }
            Ok(())
        }

        pub(crate) async fn load_case(pool: &Pool, id: CaseId) -> StoreResult<Option<CaseState>> {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT state FROM cases WHERE id = $1").bind(id.0).fetch_optional(pool).await?;
            row.map(|(state,)| serde_json::from_str(&state).map_err(StoreError::from)).transpose()
        }

        fn stored_events(rows: Vec<(i64, i64, i64, String)>) -> StoreResult<Vec<StoredEvent>> {
            rows.into_iter()
                .map(|(seq, case_id, version, payload)| {
                    let event: Event = serde_json::from_str(&payload)?;
                    Ok(StoredEvent { seq, case_id: CaseId(case_id), version: version as u64, event })
                })
                .collect()
        }

        pub(crate) async fn case_history(pool: &Pool, id: CaseId) -> StoreResult<Vec<StoredEvent>> {
            let rows = sqlx::query_as(
                "SELECT seq, case_id, version, payload FROM events WHERE case_id = $1 ORDER BY version",
            )
            .bind(id.0)
            .fetch_all(pool)
            .await?;
            stored_events(rows)
        }

        pub(crate) async fn events_since(pool: &Pool, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
            let rows = sqlx::query_as(
                "SELECT seq, case_id, version, payload FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?;
            stored_events(rows)
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

        pub(crate) async fn put_jurisdictions(pool: &Pool, items: &[Jurisdiction]) -> StoreResult<()> {
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
            tx.commit().await?;
            Ok(())
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
                    ))
                })
                .collect::<StoreResult<Vec<_>>>()?;
            let mut tx = pool.begin().await?;
            for chunk in encoded.chunks(CHUNK_ROWS) {
                let mut query = QueryBuilder::<$db>::new(
                    "INSERT INTO matters (code, name, category_code, default_priority, responsibilities, limits) ",
                );
                query.push_values(chunk, |mut row, (m, priority, responsibilities, limits)| {
                    row.push_bind(m.code.as_str())
                        .push_bind(m.name.as_str())
                        .push_bind(m.category.as_str())
                        .push_bind(priority.as_str())
                        .push_bind(responsibilities.as_str())
                        .push_bind(limits.as_str());
                });
                query.push(
                    " ON CONFLICT (code) DO UPDATE SET name = excluded.name, category_code = excluded.category_code, \
                     default_priority = excluded.default_priority, responsibilities = excluded.responsibilities, \
                     limits = excluded.limits",
                );
                query.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        }

        pub(crate) async fn matters(pool: &Pool) -> StoreResult<Vec<Matter>> {
            let rows: Vec<(String, String, String, String, String, String)> = sqlx::query_as(
                "SELECT code, name, category_code, default_priority, responsibilities, limits FROM matters \
                 ORDER BY code",
            )
            .fetch_all(pool)
            .await?;
            rows.into_iter()
                .map(|(code, name, category, priority, responsibilities, limits)| {
                    Ok(Matter {
                        code,
                        name,
                        category,
                        default_priority: serde_json::from_value(serde_json::Value::String(priority))?,
                        responsibilities: serde_json::from_str(&responsibilities)?,
                        limits: serde_json::from_str(&limits)?,
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
                    let (jurisdiction, department) = match u.scope {
                        Scope::Unbound => (None, None),
                        Scope::Jurisdiction(j) => (Some(j.0), None),
                        Scope::Department(d) => (None, Some(d.0)),
                    };
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
                    let scope = match (jurisdiction, department) {
                        (Some(j), _) => Scope::Jurisdiction(JurisdictionId(j)),
                        (None, Some(d)) => Scope::Department(DepartmentId(d)),
                        (None, None) => Scope::Unbound,
                    };
                    Ok(User {
                        id: UserId(id),
                        username,
                        display_name,
                        role: Role::parse(&role).ok_or_else(|| corrupt("role", &role))?,
                        scope,
                    })
                })
                .collect()
        }

        /// Applies the migrations not yet recorded in `schema_migrations`, each in its own transaction.
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
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO schema_migrations (version, description) VALUES ($1, $2)")
                    .bind(*version)
                    .bind(*description)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        fn corrupt(what: &str, value: &str) -> StoreError {
            StoreError::Other(format!("unknown {what} `{value}` in the database"))
        }
    };
}

pub(crate) use shared_sql;

/// The `Store` impl both backends share. The backend type provides `read_pool()`, `reference_pool()` (where
/// bulk reference data is written), `writer` (its group committer) and `backup_to()`.
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
                    Written::Created(outcome) => Ok(outcome),
                    Written::Appended => Err(StoreError::Other("unexpected answer to a creation".into())),
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
                self.writer.submit(write).await.map(|_| ())
            }

            async fn load_case(&self, id: CaseId) -> StoreResult<Option<CaseState>> {
                load_case(self.read_pool(), id).await
            }
            async fn case_history(&self, id: CaseId) -> StoreResult<Vec<StoredEvent>> {
                case_history(self.read_pool(), id).await
            }
            async fn events_since(&self, after: i64, limit: u32) -> StoreResult<Vec<StoredEvent>> {
                events_since(self.read_pool(), after, limit).await
            }
            async fn last_seq(&self) -> StoreResult<i64> {
                last_seq(self.read_pool()).await
            }
            async fn count_cases(&self) -> StoreResult<u64> {
                count_cases(self.read_pool()).await
            }
            async fn put_jurisdictions(&self, items: &[Jurisdiction]) -> StoreResult<()> {
                put_jurisdictions(&self.reference_pool().await?, items).await
            }
            async fn jurisdictions(&self) -> StoreResult<Vec<Jurisdiction>> {
                jurisdictions(self.read_pool()).await
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
                put_users(&self.reference_pool().await?, items).await
            }
            async fn users(&self) -> StoreResult<Vec<User>> {
                users(self.read_pool()).await
            }
            async fn backup(&self, destination: &std::path::Path) -> StoreResult<()> {
                self.backup_to(destination).await
            }
        }
    };
}

pub(crate) use store_impl;
