//! The group committer: one task owns the write connection, gathers the appends waiting for it into one
//! transaction, commits durably and only then answers every caller.

use crate::{AuditEntry, CreateOutcome, StoreError, StoreResult};
use async_trait::async_trait;
use shiyu_domain::{CaseId, CaseState, Event};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Whether appends share transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitMode {
    /// Appends that arrive while a transaction commits share the next one.
    Group,
    /// One transaction per append: the baseline the benchmark compares against.
    PerTransaction,
}

/// The current row of a case, ready to write.
#[derive(Debug)]
pub(crate) struct CaseRow {
    pub version: i64,
    pub status: &'static str,
    pub owner_id: i64,
    pub place_id: i64,
    pub matter_code: Option<String>,
    pub received_at: i64,
    pub updated_at: i64,
    pub state: Vec<u8>,
    pub tracking_code: Option<String>,
    pub reporter_id: Option<i64>,
    /// The chain below the city, by depth (county, township, community, grid, micro-grid), for scoped lists.
    pub chain: [Option<i64>; 5],
    pub departments: Vec<i64>,
    /// When the case's next deadline alarm is due; `None` once nothing more can fire.
    pub alarm_at: Option<i64>,
    /// When its running stage is due; `None` once it ended and while it is suspended.
    pub due_at: Option<i64>,
}

/// When the case's running stage is due: the `cases.due_at` column, `None` once it ended and while it is
/// suspended.
pub(crate) fn running_due(state: &CaseState) -> Option<i64> {
    state.deadline.map(|deadline| deadline.due.0)
}

impl CaseRow {
    pub fn of(state: &CaseState) -> StoreResult<CaseRow> {
        let mut chain = [None; 5];
        for (slot, id) in chain.iter_mut().zip(state.path.iter().skip(1)) {
            *slot = Some(id.0);
        }
        Ok(CaseRow {
            tracking_code: state.reporter.tracking_code.clone(),
            reporter_id: state.reporter.user.map(|u| u.0),
            chain,
            departments: state.involved.iter().map(|d| d.0).collect(),
            alarm_at: shiyu_domain::next_alarm(state).map(|alarm| alarm.at.0),
            due_at: running_due(state),
            version: state.version as i64,
            status: state.status.as_str(),
            owner_id: state.owner.0,
            place_id: state.path.last().map_or(state.owner.0, |j| j.0),
            matter_code: state.matter.as_ref().map(|m| m.code.clone()),
            received_at: state.received_at.0,
            updated_at: state.updated_at.0,
            state: crate::codec::encode(state)?,
        })
    }
}

#[derive(Debug)]
pub(crate) struct EventRow {
    /// The kind and time of the row's last event.
    pub kind: &'static str,
    pub at: i64,
    /// One event, or (`span` > 1) a bulk-loaded history: its events' stored forms back to back
    /// (`codec::split_values`). The row's `seq` and `version` are those of its last event.
    pub payload: Vec<u8>,
    pub span: i64,
    /// None for bulk-loaded history, which is audited once for the whole load.
    pub audit: Option<AuditEntry>,
}

impl EventRow {
    pub fn all(events: &[Event]) -> StoreResult<Vec<EventRow>> {
        events
            .iter()
            .map(|e| {
                let (user, actor) = match e.actor {
                    shiyu_domain::Actor::User { user, .. } => (Some(user), "user"),
                    shiyu_domain::Actor::Reporter => (None, "reporter"),
                    shiyu_domain::Actor::System => (None, "system"),
                };
                let audit = AuditEntry {
                    at: e.at,
                    user,
                    actor: actor.into(),
                    action: e.change.kind().into(),
                    target: None,
                    address: e.origin.clone(),
                    detail: None,
                };
                Ok(EventRow {
                    kind: e.change.kind(),
                    at: e.at.0,
                    payload: crate::codec::encode(e)?,
                    span: 1,
                    audit: Some(audit),
                })
            })
            .collect()
    }

    /// A whole history as one row: a bulk load then writes two rows a case (its state and its history)
    /// instead of one for every event.
    fn history(events: &[Event]) -> StoreResult<EventRow> {
        let last = events.last().ok_or_else(|| StoreError::Conflict("a history has no events".into()))?;
        let mut payload = Vec::with_capacity(160 * events.len());
        for event in events {
            crate::codec::encode_into(event, &mut payload)?;
        }
        Ok(EventRow {
            kind: last.change.kind(),
            at: last.at.0,
            payload,
            span: events.len() as i64,
            audit: None,
        })
    }
}

/// Whole case histories made ready (serialised) for [`crate::Store::bulk_load`], so that the work happens on
/// the caller's thread rather than in the writer.
#[derive(Debug, Default)]
pub struct BulkCases {
    pub(crate) rows: Vec<(i64, CaseRow, EventRow)>,
}

impl BulkCases {
    /// Checks each history's shape (it starts with the report, and the state's version counts its events) and
    /// serialises it. Ids must follow each other; the store checks that none of them is taken (reserve them
    /// with `Store::reserve_case_ids`).
    pub fn prepare(cases: &[(CaseId, CaseState, Vec<Event>)]) -> StoreResult<BulkCases> {
        let mut bulk = BulkCases { rows: Vec::with_capacity(cases.len()) };
        bulk.add(cases)?;
        Ok(bulk)
    }

    /// Checks and serialises more histories, as [`BulkCases::prepare`] does, after the ones already here: the
    /// first new id must follow the last one held. Refused as a whole, leaving the batch as it was.
    pub fn add(&mut self, cases: &[(CaseId, CaseState, Vec<Event>)]) -> StoreResult<()> {
        let held = self.rows.len();
        let added = self.push_all(cases);
        if added.is_err() {
            self.rows.truncate(held);
        }
        added
    }

    fn push_all(&mut self, cases: &[(CaseId, CaseState, Vec<Event>)]) -> StoreResult<()> {
        let mut previous = self.rows.last().map(|(id, _, _)| *id);
        for (id, state, events) in cases {
            let refuse = |why: &str| Err(StoreError::Conflict(format!("bulk case {}: {why}", id.0)));
            if previous.is_some_and(|p| p + 1 != id.0) {
                return refuse("ids must follow each other");
            }
            if state.version != events.len() as u64 {
                return refuse("the state's version is not the number of its events");
            }
            if !events.first().is_some_and(|e| matches!(e.change, shiyu_domain::Change::Received { .. })) {
                return refuse("a history starts with the report");
            }
            previous = Some(id.0);
            self.rows.push((id.0, CaseRow::of(state)?, EventRow::history(events)?));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[derive(Debug)]
pub(crate) enum Write {
    Create {
        key: Option<String>,
        now: i64,
        case: CaseRow,
        events: Vec<EventRow>,
    },
    Append {
        id: i64,
        expected: u64,
        case: CaseRow,
        events: Vec<EventRow>,
    },
    Audit {
        entries: Vec<AuditEntry>,
    },
    /// Whole histories of new cases, audited by one entry.
    Bulk {
        /// Shared, so that the SQLite writer can hand it to a blocking thread while the committer keeps the write.
        cases: Arc<BulkCases>,
        audit: AuditEntry,
    },
    /// Sets ids aside for bulk loads (`Store::reserve_case_ids`).
    Reserve {
        count: u64,
        now: i64,
    },
    /// What a follower of the log made of the events up to `seq`, written with its new position.
    Follow {
        follower: String,
        seq: i64,
        notifications: Vec<crate::NewNotification>,
        deliveries: Vec<crate::NewDelivery>,
    },
    /// How an attempt at a webhook delivery went.
    Attempt(crate::DeliveryAttempt),
    /// Claims the webhook deliveries due at `now` until `lease_until` (see `Store::take_deliveries`).
    Claim {
        now: i64,
        lease_until: i64,
        limit: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Written {
    Created(CreateOutcome),
    Appended,
    Audited,
    Loaded,
    /// The first of the reserved ids.
    Reserved(i64),
    Followed,
    Attempted,
    /// Filled in by the backend once the claim has run in the batch's transaction.
    Claimed(Vec<crate::DueDelivery>),
}

/// What the database knows before a batch is planned; read inside the batch's transaction.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    pub keys: HashMap<String, i64>,
    pub versions: HashMap<i64, i64>,
    /// The last id given out: the largest case id, or the end of the last reservation if that is larger.
    pub max_id: i64,
    pub max_seq: i64,
    /// For each bulk chunk's first id, how many cases already hold one of its ids.
    pub taken: HashMap<i64, i64>,
}

/// The rows one batch writes, and the answer for each write.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    /// The final row of every case the batch creates or changes.
    pub cases: BTreeMap<i64, &'a CaseRow>,
    /// (seq, case id, version, row)
    pub events: Vec<(i64, i64, i64, &'a EventRow)>,
    /// (key, case id, created at)
    pub keys: Vec<(&'a str, i64, i64)>,
    /// (case id or none, entry): every case event is audited in the transaction that appends it.
    pub audit: Vec<(Option<i64>, &'a AuditEntry)>,
    pub notifications: Vec<&'a crate::NewNotification>,
    pub deliveries: Vec<&'a crate::NewDelivery>,
    /// (follower, position)
    pub followers: Vec<(&'a str, i64)>,
    pub attempts: Vec<&'a crate::DeliveryAttempt>,
    /// (answer index, now, lease until, limit): run after everything else the batch writes.
    pub claims: Vec<(usize, i64, i64, u32)>,
    /// The new end of the reserved ids, and when it was set.
    pub reserved_until: Option<(i64, i64)>,
    pub answers: Vec<StoreResult<Written>>,
    /// The log's last sequence number before this batch.
    pub after_seq: i64,
}

impl<'a> Plan<'a> {
    /// Assigns ids and sequence numbers and settles idempotency keys and expected versions, in arrival order.
    pub fn new(writes: &'a [&'a Write], mut lookup: Lookup) -> Plan<'a> {
        let mut plan = Plan { after_seq: lookup.max_seq, ..Plan::default() };
        for write in writes {
            let answer = match write {
                Write::Create { key, now, case, events } => {
                    if let Some(id) = key.as_ref().and_then(|k| lookup.keys.get(k)) {
                        plan.answers
                            .push(Ok(Written::Created(CreateOutcome { id: CaseId(*id), created: false })));
                        continue;
                    }
                    lookup.max_id += 1;
                    let id = lookup.max_id;
                    if let Some(key) = key {
                        lookup.keys.insert(key.clone(), id);
                        plan.keys.push((key, id, *now));
                    }
                    plan.push_events(&mut lookup.max_seq, id, 0, events);
                    lookup.versions.insert(id, case.version);
                    plan.cases.insert(id, case);
                    Ok(Written::Created(CreateOutcome { id: CaseId(id), created: true }))
                }
                Write::Audit { entries } => {
                    plan.audit.extend(entries.iter().map(|e| (None, e)));
                    Ok(Written::Audited)
                }
                Write::Follow { follower, seq, notifications, deliveries } => {
                    plan.notifications.extend(notifications);
                    plan.deliveries.extend(deliveries);
                    plan.followers.push((follower, *seq));
                    Ok(Written::Followed)
                }
                Write::Attempt(attempt) => {
                    plan.attempts.push(attempt);
                    Ok(Written::Attempted)
                }
                Write::Claim { now, lease_until, limit } => {
                    plan.claims.push((plan.answers.len(), *now, *lease_until, *limit));
                    Ok(Written::Claimed(Vec::new()))
                }
                Write::Bulk { cases, audit } => {
                    let (Some((first, _, _)), Some((last, _, _))) = (cases.rows.first(), cases.rows.last())
                    else {
                        plan.answers.push(Ok(Written::Loaded));
                        continue;
                    };
                    let taken = lookup.taken.get(first).copied().unwrap_or(0)
                        + plan.cases.range(*first..=*last).count() as i64;
                    if taken > 0 {
                        Err(StoreError::Conflict(format!(
                            "bulk load of cases {first}–{last}: {taken} of these ids are taken already (reserve \
                             the ids first with reserve_case_ids)"
                        )))
                    } else {
                        for (id, case, history) in &cases.rows {
                            plan.push_events(&mut lookup.max_seq, *id, 0, std::slice::from_ref(history));
                            lookup.versions.insert(*id, case.version);
                            plan.cases.insert(*id, case);
                        }
                        lookup.max_id = lookup.max_id.max(*last);
                        plan.audit.push((None, audit));
                        Ok(Written::Loaded)
                    }
                }
                Write::Reserve { count, now } => {
                    let first = lookup.max_id + 1;
                    lookup.max_id += *count as i64;
                    plan.reserved_until = Some((lookup.max_id, *now));
                    Ok(Written::Reserved(first))
                }
                Write::Append { id, expected, case, events } => match lookup.versions.get(id) {
                    None => Err(StoreError::NotFound(format!("case {id}"))),
                    Some(actual) if *actual != *expected as i64 => Err(StoreError::Conflict(format!(
                        "case {id} is at version {actual}, not {expected}: someone else changed it first"
                    ))),
                    Some(_) => {
                        plan.push_events(&mut lookup.max_seq, *id, *expected as i64, events);
                        lookup.versions.insert(*id, case.version);
                        plan.cases.insert(*id, case);
                        Ok(Written::Appended)
                    }
                },
            };
            plan.answers.push(answer);
        }
        plan
    }

    /// The stretch of the log `(after, through]` this batch fills, when it is one bulk load and nothing else:
    /// the read cache's tailer need not read it back (`ReadCache::bulk_loaded`).
    pub fn bulk_loaded(&self) -> Option<(i64, i64)> {
        // Only a bulk load answers `Loaded`, so one such answer is a batch of one load.
        let (through, ..) = self.events.last()?;
        matches!(self.answers.as_slice(), [Ok(Written::Loaded)]).then_some((self.after_seq, *through))
    }

    fn push_events(&mut self, max_seq: &mut i64, case_id: i64, from_version: i64, events: &'a [EventRow]) {
        let mut version = from_version;
        for row in events {
            *max_seq += row.span;
            version += row.span;
            self.events.push((*max_seq, case_id, version, row));
            if let Some(audit) = &row.audit {
                self.audit.push((Some(case_id), audit));
            }
        }
    }
}

/// A backend's write connection: runs one planned batch in one durable transaction.
#[async_trait]
pub(crate) trait BatchWriter: Send + 'static {
    async fn write_batch(&mut self, writes: &[&Write]) -> StoreResult<Vec<StoreResult<Written>>>;
}

/// Counters of the group committer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub transactions: u64,
    pub writes: u64,
    pub largest_batch: u64,
}

#[derive(Debug, Default)]
struct Counters {
    transactions: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicU64,
}

struct Pending {
    write: Write,
    reply: oneshot::Sender<StoreResult<Written>>,
}

/// The handle callers send writes through.
#[derive(Clone, Debug)]
pub(crate) struct GroupCommitter {
    queue: mpsc::Sender<Pending>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl GroupCommitter {
    pub fn start(mut writer: impl BatchWriter, mode: CommitMode, max_batch: usize) -> GroupCommitter {
        let max_batch = if mode == CommitMode::PerTransaction { 1 } else { max_batch.max(1) };
        let (queue, mut incoming) = mpsc::channel::<Pending>(max_batch * 4);
        let counters = Arc::new(Counters::default());
        let task_counters = counters.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max_batch);
            while let Some(first) = incoming.recv().await {
                batch.push(first);
                while batch.len() < max_batch {
                    match incoming.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let writes: Vec<&Write> = batch.iter().map(|p| &p.write).collect();
                let answers = writer.write_batch(&writes).await;
                task_counters.transactions.fetch_add(1, Ordering::Relaxed);
                task_counters.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                task_counters.largest_batch.fetch_max(batch.len() as u64, Ordering::Relaxed);
                match answers {
                    Ok(answers) => {
                        for (pending, answer) in batch.drain(..).zip(answers) {
                            let _ = pending.reply.send(answer);
                        }
                    }
                    Err(error) => {
                        for pending in batch.drain(..) {
                            let _ = pending.reply.send(Err(error.clone()));
                        }
                    }
                }
            }
        });
        GroupCommitter { queue, counters }
    }

    /// Sends a write and waits until it is durable (or refused).
    pub async fn submit(&self, write: Write) -> StoreResult<Written> {
        let (reply, answer) = oneshot::channel();
        let closed = || StoreError::Other("the writer has stopped".into());
        self.queue.send(Pending { write, reply }).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    pub fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            transactions: self.counters.transactions.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
        }
    }
}
