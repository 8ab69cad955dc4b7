//! What the store keeps in memory so that the hottest reads — a case by id, the session or API token behind
//! a request — do not each cost a database round trip.
//!
//! Case states are exact, not "probably fresh": this node puts every state it commits, and a tailer reading
//! the log's `(seq, case, version)` triples evicts any case another process or node has moved on, leaving a
//! version floor behind so that a read that raced the eviction cannot put the older state back. Sessions and
//! API tokens are kept for a few seconds only: a sign-out or revocation on this node takes effect at once,
//! on other nodes within [`CREDENTIAL_TTL`].

use crate::{ApiToken, Session};
use shiyu_domain::{CaseId, CaseState, User, UserId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a session or API-token lookup is reused before the database is asked again.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(5);

/// How often the tailer reads the log for versions written elsewhere.
pub(crate) const TAIL_EVERY: Duration = Duration::from_millis(200);

/// A task that lives as long as the store that started it.
#[derive(Debug)]
pub(crate) struct BackgroundTask(tokio::task::AbortHandle);

impl BackgroundTask {
    pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> BackgroundTask {
        BackgroundTask(tokio::spawn(task).abort_handle())
    }
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Cases per generation; at most twice this many are held (a fresh case's state is about a kilobyte).
const CASES_PER_GENERATION: usize = 65_536;
const CREDENTIALS_MAX: usize = 100_000;

#[derive(Clone, Debug)]
struct CaseEntry {
    /// No state older than this version may be put (the log has shown it).
    floor: u64,
    state: Option<CaseState>,
}

/// Two generations approximate least-recently-used eviction without per-read bookkeeping: reads hit the
/// young map or promote from the old one, and when the young map fills up it becomes the old one.
#[derive(Debug, Default)]
struct Generations {
    young: HashMap<i64, CaseEntry>,
    old: HashMap<i64, CaseEntry>,
}

impl Generations {
    fn entry(&mut self, id: i64) -> Option<&mut CaseEntry> {
        if !self.young.contains_key(&id) {
            let promoted = self.old.remove(&id)?;
            self.insert(id, promoted);
        }
        self.young.get_mut(&id)
    }

    fn insert(&mut self, id: i64, entry: CaseEntry) {
        if self.young.len() >= CASES_PER_GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(id, entry);
    }
}

/// Lookups of a credential (a session or an API token) by its hash, each reused for [`CREDENTIAL_TTL`].
#[derive(Debug)]
pub(crate) struct Recent<T> {
    entries: Mutex<HashMap<String, (Instant, T, User)>>,
}

impl<T> Default for Recent<T> {
    fn default() -> Self {
        Recent { entries: Mutex::new(HashMap::new()) }
    }
}

impl<T: Clone> Recent<T> {
    fn get(&self, hash: &str) -> Option<(T, User)> {
        let entries = self.entries.lock().ok()?;
        let (at, found, user) = entries.get(hash)?;
        (at.elapsed() < CREDENTIAL_TTL).then(|| (found.clone(), user.clone()))
    }

    /// The cached answer for `hash`, or `fetch`'s, which is then kept.
    pub(crate) async fn get_or_fetch(
        &self,
        hash: &str,
        fetch: impl std::future::Future<Output = crate::StoreResult<Option<(T, User)>>>,
    ) -> crate::StoreResult<Option<(T, User)>> {
        if let Some(found) = self.get(hash) {
            return Ok(Some(found));
        }
        let found = fetch.await?;
        if let Some((credential, user)) = &found {
            self.put(hash, credential, user);
        }
        Ok(found)
    }

    fn put(&self, hash: &str, found: &T, user: &User) {
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= CREDENTIALS_MAX {
            entries.clear();
        }
        entries.insert(hash.to_string(), (Instant::now(), found.clone(), user.clone()));
    }

    fn forget(&self, which: impl Fn(&T) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (_, found, _)| !which(found));
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct ReadCache {
    cases: Mutex<Generations>,
    pub(crate) sessions: Recent<Session>,
    pub(crate) api_tokens: Recent<ApiToken>,
    /// The last log sequence number the tailer has looked at.
    tailed: Mutex<i64>,
    /// Stretches of the log `(after, through]` that this process wrote as one bulk load. They hold new cases
    /// only, which no cache can hold an older state of, so the tailer steps over them instead of reading
    /// every loaded history back (a tenth of a simulation's time when it did).
    bulk_loaded: Mutex<BTreeMap<i64, i64>>,
}

/// What the tailer reads next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Nothing to read up to here: a bulk load of this process starts right after the last row looked at.
    Skip { through: i64 },
    /// The rows after `after` up to `until` (inclusive), where this process's next bulk load starts.
    Read { after: i64, until: i64 },
}

impl ReadCache {
    pub(crate) fn new(last_seq: i64) -> ReadCache {
        ReadCache { tailed: Mutex::new(last_seq), ..ReadCache::default() }
    }

    pub(crate) fn case(&self, id: CaseId) -> Option<CaseState> {
        let mut cases = self.cases.lock().ok()?;
        cases.entry(id.0)?.state.clone()
    }

    /// Keeps `state` unless a newer version is already known.
    pub(crate) fn put_case(&self, id: CaseId, state: &CaseState) {
        let Ok(mut cases) = self.cases.lock() else { return };
        match cases.entry(id.0) {
            Some(entry) if entry.floor > state.version => {}
            Some(entry) => {
                entry.floor = state.version;
                entry.state = Some(state.clone());
            }
            None => cases.insert(id.0, CaseEntry { floor: state.version, state: Some(state.clone()) }),
        }
    }

    /// The log says `id` reached `version`: drop a state older than that.
    pub(crate) fn saw_version(&self, id: CaseId, version: u64) {
        let Ok(mut cases) = self.cases.lock() else { return };
        match cases.entry(id.0) {
            Some(entry) if entry.floor >= version => {}
            Some(entry) => {
                entry.floor = version;
                entry.state = None;
            }
            // Not cached: a later read fetches the current state anyway.
            None => {}
        }
    }

    pub(crate) fn tailed(&self) -> i64 {
        self.tailed.lock().map_or(i64::MAX, |seq| *seq)
    }

    pub(crate) fn set_tailed(&self, seq: i64) {
        if let Ok(mut tailed) = self.tailed.lock() {
            *tailed = seq.max(*tailed);
        }
    }

    /// This process committed the rows after `after` through `through` as one bulk load and nothing else.
    pub(crate) fn bulk_loaded(&self, after: i64, through: i64) {
        if let Ok(mut loaded) = self.bulk_loaded.lock() {
            loaded.insert(after, through);
        }
    }

    /// Where the tailer goes on from: past a bulk load it reached, or up to the start of the next one.
    pub(crate) fn next_tail(&self) -> Tail {
        let after = self.tailed();
        let Ok(mut loaded) = self.bulk_loaded.lock() else { return Tail::Read { after, until: i64::MAX } };
        // A load is reached once the tailer has looked at the row before it; it may have read into the load
        // itself if it ran between the commit and the load being noted here.
        loaded.retain(|_, through| *through > after);
        if let Some((_, through)) = loaded.range(..=after).next_back() {
            return Tail::Skip { through: *through };
        }
        Tail::Read { after, until: loaded.keys().next().copied().unwrap_or(i64::MAX) }
    }

    pub(crate) fn forget_session(&self, token_hash: &str) {
        self.sessions.forget(|session| session.token_hash == token_hash);
    }

    /// A user's password or role changed, or their sessions were ended: ask the database again.
    pub(crate) fn forget_user(&self, user: UserId) {
        self.sessions.forget(|session| session.user == user);
        self.api_tokens.forget(|token| token.user == user);
    }

    /// Users were imported or changed in bulk.
    pub(crate) fn forget_all_credentials(&self) {
        self.sessions.forget(|_| true);
        self.api_tokens.forget(|_| true);
    }

    pub(crate) fn forget_api_token(&self, id: i64) {
        self.api_tokens.forget(|token| token.id == id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SampleWorld;
    use shiyu_domain::{apply, decide, Rules, Timestamp};

    fn testing_state() -> CaseState {
        let world = SampleWorld::new();
        let actor = world.actor("citizen").expect("the sample citizen");
        let events = decide(None, &world.report("路灯不亮"), &actor, Timestamp(0), &Rules::default())
            .expect("a report is taken in");
        events
            .iter()
            .try_fold(None, |state, event| apply(state, event).map(Some))
            .ok()
            .flatten()
            .expect("a state")
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let cache = ReadCache::new(0);
        let mut newer = testing_state();
        newer.version = 3;
        let mut older = newer.clone();
        older.version = 2;
        cache.put_case(CaseId(1), &newer);
        cache.put_case(CaseId(1), &older);
        assert_eq!(cache.case(CaseId(1)).map(|s| s.version), Some(3));
    }

    #[test]
    fn a_version_seen_in_the_log_evicts_and_keeps_out_older_states() {
        let cache = ReadCache::new(0);
        let mut state = testing_state();
        state.version = 2;
        cache.put_case(CaseId(1), &state);
        cache.saw_version(CaseId(1), 2);
        assert!(cache.case(CaseId(1)).is_some(), "our own commit is not evicted");
        cache.saw_version(CaseId(1), 3);
        assert!(cache.case(CaseId(1)).is_none());
        cache.put_case(CaseId(1), &state);
        assert!(cache.case(CaseId(1)).is_none(), "a read that raced the eviction cannot put version 2 back");
        state.version = 3;
        cache.put_case(CaseId(1), &state);
        assert_eq!(cache.case(CaseId(1)).map(|s| s.version), Some(3));
    }

    #[test]
    fn the_tailer_reads_up_to_a_bulk_load_and_steps_over_it() {
        let cache = ReadCache::new(10);
        assert_eq!(cache.next_tail(), Tail::Read { after: 10, until: i64::MAX });
        cache.bulk_loaded(20, 500);
        cache.bulk_loaded(700, 900);
        assert_eq!(cache.next_tail(), Tail::Read { after: 10, until: 20 }, "rows before the load are read");
        cache.set_tailed(20);
        assert_eq!(cache.next_tail(), Tail::Skip { through: 500 });
        cache.set_tailed(500);
        assert_eq!(cache.next_tail(), Tail::Read { after: 500, until: 700 });
        cache.set_tailed(750);
        assert_eq!(cache.next_tail(), Tail::Skip { through: 900 }, "a load read into is still stepped over");
        cache.set_tailed(900);
        assert_eq!(cache.next_tail(), Tail::Read { after: 900, until: i64::MAX });
    }

    #[test]
    fn old_generations_are_promoted_then_dropped() {
        let cache = ReadCache::new(0);
        let state = testing_state();
        for id in 0..(CASES_PER_GENERATION as i64 * 2 + 1) {
            cache.put_case(CaseId(id), &state);
            if id % 1000 == 0 {
                // Case 0 is read often, so it stays.
                assert!(cache.case(CaseId(0)).is_some());
            }
        }
        assert!(cache.case(CaseId(0)).is_some());
        assert!(cache.case(CaseId(1)).is_none(), "a case nobody read again was dropped");
    }
}
