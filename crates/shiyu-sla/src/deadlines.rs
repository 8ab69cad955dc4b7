//! The deadline engine: every open case's next alarm in a heap, fired when due.

use shiyu_domain::{next_alarm, CaseId, CaseState, Timestamp};
use shiyu_store::{CaseService, Clock, ServiceError, StoreError, StoreResult};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How many due alarms are fired at once; their appends share the group committer's transactions.
const FIRING_AT_ONCE: usize = 64;
/// Events read from the log per query while following it.
const FOLLOW_PAGE: u32 = 5000;
/// A failed firing (the database away, say) is tried again after this long, so that nothing is missed.
const RETRY_AFTER_MS: i64 = 5_000;

#[derive(Debug, Default)]
struct Timers {
    /// (due, case): the earliest first. Entries whose due no longer matches `armed` are stale and skipped.
    heap: BinaryHeap<Reverse<(i64, i64)>>,
    armed: HashMap<i64, i64>,
    /// The last event of the log seen.
    seen: i64,
}

impl Timers {
    fn arm(&mut self, id: CaseId, at: Option<Timestamp>) {
        match at {
            Some(at) if self.armed.get(&id.0) != Some(&at.0) => {
                self.armed.insert(id.0, at.0);
                self.heap.push(Reverse((at.0, id.0)));
            }
            Some(_) => {}
            None => {
                self.armed.remove(&id.0);
            }
        }
        // Rebuild the heap when stale entries dominate, so that memory follows the open cases.
        if self.heap.len() > 2 * self.armed.len() + 1024 {
            self.heap = self.armed.iter().map(|(id, at)| Reverse((*at, *id))).collect();
        }
    }

    /// Takes the cases whose alarm is due at `now`, at most `limit`.
    fn take_due(&mut self, now: Timestamp, limit: usize) -> Vec<CaseId> {
        let mut due = Vec::new();
        while due.len() < limit {
            let Some(Reverse((at, id))) = self.heap.peek().copied() else { break };
            if at > now.0 {
                break;
            }
            self.heap.pop();
            if self.armed.get(&id) == Some(&at) {
                self.armed.remove(&id);
                due.push(CaseId(id));
            }
        }
        due
    }

    fn next_due(&mut self) -> Option<Timestamp> {
        while let Some(Reverse((at, id))) = self.heap.peek().copied() {
            if self.armed.get(&id) == Some(&at) {
                return Some(Timestamp(at));
            }
            self.heap.pop();
        }
        None
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Alarms that appended events.
    pub fired: usize,
    /// Cases whose alarm was looked at again because the log showed them change.
    pub followed: usize,
    /// Firings that failed and will be tried again.
    pub failed: usize,
}

/// The engine. [`Deadlines::pass`] does one round (follow the log, fire what is due); [`Deadlines::run`]
/// repeats it in the background.
#[derive(Clone)]
pub struct Deadlines {
    service: CaseService,
    clock: Clock,
    timers: Arc<Mutex<Timers>>,
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines").finish_non_exhaustive()
    }
}

impl Deadlines {
    /// Loads every open case's next alarm from the store. The log position is read first, so a case that
    /// changes while the alarms load is looked at again by the first pass.
    pub async fn start(service: CaseService, clock: Clock) -> StoreResult<Deadlines> {
        let store = service.store().clone();
        let seen = store.last_seq().await?;
        let alarms = store.alarms().await?;
        let mut timers = Timers {
            heap: alarms.iter().map(|(id, at)| Reverse((at.0, id.0))).collect(),
            armed: HashMap::with_capacity(alarms.len()),
            seen,
        };
        timers.armed.extend(alarms.iter().map(|(id, at)| (id.0, at.0)));
        Ok(Deadlines { service, clock, timers: Arc::new(Mutex::new(timers)) })
    }

    /// How many cases have an alarm ahead.
    pub async fn armed(&self) -> usize {
        self.timers.lock().await.armed.len()
    }

    pub async fn next_due(&self) -> Option<Timestamp> {
        self.timers.lock().await.next_due()
    }

    /// Follows the log, then fires every alarm due now.
    pub async fn pass(&self) -> StoreResult<Pass> {
        let mut pass = Pass { followed: self.follow().await?, ..Pass::default() };
        loop {
            let now = (self.clock)();
            let due = self.timers.lock().await.take_due(now, FIRING_AT_ONCE * 16);
            if due.is_empty() {
                return Ok(pass);
            }
            for chunk in due.chunks(FIRING_AT_ONCE) {
                let results =
                    futures_util::future::join_all(chunk.iter().map(|id| self.fire(*id, now))).await;
                let mut timers = self.timers.lock().await;
                for (id, result) in chunk.iter().zip(results) {
                    match result {
                        Ok((fired, state)) => {
                            pass.fired += usize::from(fired);
                            timers.arm(*id, state.as_ref().and_then(next_alarm).map(|a| a.at));
                        }
                        Err(error) => {
                            tracing::warn!(case = id.0, %error, "a deadline alarm could not fire; trying again later");
                            pass.failed += 1;
                            timers.arm(*id, Some(Timestamp(now.0 + RETRY_AFTER_MS)));
                        }
                    }
                }
            }
        }
    }

    /// Fires one case's alarm, retrying when another writer got there first. Returns whether events were
    /// appended and the case's state after.
    async fn fire(&self, id: CaseId, now: Timestamp) -> Result<(bool, Option<CaseState>), ServiceError> {
        for _ in 0..5 {
            match self.service.fire_alarm(id, now).await {
                Ok(Some((state, _))) => return Ok((true, Some(state))),
                Ok(None) => return Ok((false, self.service.store().load_case(id).await?)),
                Err(ServiceError::Store(StoreError::Conflict(_))) => continue,
                Err(ServiceError::Store(StoreError::NotFound(_))) => return Ok((false, None)),
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Conflict(format!("case {} kept changing while its alarm fired", id.0)).into())
    }

    /// Re-arms every case the log shows changed since the last pass.
    async fn follow(&self) -> StoreResult<usize> {
        let store = self.service.store().clone();
        let mut followed = 0;
        loop {
            let seen = self.timers.lock().await.seen;
            let events = store.events_since(seen, FOLLOW_PAGE).await?;
            let Some(last) = events.last().map(|e| e.seq) else { return Ok(followed) };
            let mut cases: Vec<CaseId> = events.iter().map(|e| e.case_id).collect();
            cases.sort();
            cases.dedup();
            let mut alarms = Vec::with_capacity(cases.len());
            for id in cases {
                let state = store.load_case(id).await?;
                alarms.push((id, state.as_ref().and_then(next_alarm).map(|a| a.at)));
            }
            let mut timers = self.timers.lock().await;
            for (id, at) in alarms {
                timers.arm(id, at);
            }
            timers.seen = last;
            followed += events.len();
        }
    }

    /// Runs passes until the task is dropped: right after each due alarm, and at least every `poll`.
    pub async fn run(self, poll: Duration) {
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "deadline pass failed");
            }
            let now = (self.clock)();
            let wait = match self.next_due().await {
                Some(at) => Duration::from_millis(at.0.saturating_sub(now.0).max(0) as u64).min(poll),
                None => poll,
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}
