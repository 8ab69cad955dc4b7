//! Carrying out a command: load the case, let the domain decide, append the events with the version the
//! decision was based on. The one path every interface (API, CLI, simulator, deadline engine) goes through.

use crate::{Store, StoreError};
use shiyu_domain::{
    apply, decide, Action, Actor, CaseId, CaseState, Command, DomainError, ErrorKind, Event, Rules, Timestamp,
};
use std::sync::{Arc, RwLock};

/// Where a component reads the time: the binary passes the system clock, tests a clock they move.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A report taken in.
#[derive(Clone, Debug)]
pub struct Created {
    pub id: CaseId,
    /// `false` when the idempotency key was used before: `state` is then the earlier case's.
    pub created: bool,
    pub state: CaseState,
}

#[derive(Clone, Debug)]
pub struct CaseService {
    store: Arc<dyn Store>,
    /// Swapped whole when an admin edits the escalation rules or the working calendar; each command decides
    /// on one consistent snapshot.
    rules: Arc<RwLock<Arc<Rules>>>,
}

impl CaseService {
    pub fn new(store: Arc<dyn Store>, rules: Arc<Rules>) -> CaseService {
        CaseService { store, rules: Arc::new(RwLock::new(rules)) }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn rules(&self) -> Arc<Rules> {
        match self.rules.read() {
            Ok(rules) => rules.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the rules for every later command (all clones of this service share them).
    pub fn set_rules(&self, rules: Rules) {
        let rules = Arc::new(rules);
        match self.rules.write() {
            Ok(mut slot) => *slot = rules,
            Err(poisoned) => *poisoned.into_inner() = rules,
        }
    }

    /// Fires the case's deadline alarm if one is due at `now`: appends what `sla::fire` decides and returns
    /// the new state with the events. `None` when nothing is due (already fired, or the case moved on).
    pub async fn fire_alarm(
        &self,
        id: CaseId,
        now: Timestamp,
    ) -> Result<Option<(CaseState, Vec<Event>)>, ServiceError> {
        let current = self.load(id).await?;
        let Some(alarm) = shiyu_domain::next_alarm(&current).filter(|alarm| alarm.at <= now) else {
            return Ok(None);
        };
        let events = shiyu_domain::sla::fire(&current, alarm, now, &self.rules())?;
        self.append_decided(id, current, events).await.map(Some)
    }

    /// Counts the case's deadline again after the working calendar changed from `old`; `None` when nothing
    /// moved.
    pub async fn reschedule(
        &self,
        id: CaseId,
        old: &shiyu_domain::WorkCalendar,
        now: Timestamp,
        reason: &str,
    ) -> Result<Option<(CaseState, Vec<Event>)>, ServiceError> {
        let current = self.load(id).await?;
        let Some(event) = shiyu_domain::sla::reschedule(&current, old, &self.rules(), now, reason) else {
            return Ok(None);
        };
        self.append_decided(id, current, vec![event]).await.map(Some)
    }

    async fn append_decided(
        &self,
        id: CaseId,
        current: CaseState,
        events: Vec<Event>,
    ) -> Result<(CaseState, Vec<Event>), ServiceError> {
        let version = current.version;
        let next = fold(Some(current), &events)?;
        self.store.append(id, version, events.clone(), &next).await?;
        Ok((next, events))
    }

    /// Takes in a new report. The same idempotency key always yields the same case.
    pub async fn receive(
        &self,
        idempotency_key: Option<String>,
        command: &Command,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<Created, ServiceError> {
        let events = decide(None, command, actor, now, &self.rules())?;
        let state = fold(None, &events)?;
        let outcome = self.store.create_case(idempotency_key, events, &state, now).await?;
        let state = if outcome.created { state } else { self.load(outcome.id).await? };
        Ok(Created { id: outcome.id, created: outcome.created, state })
    }

    /// Carries out a command on an existing case. `expected_version`, when the caller knows which version it
    /// looked at, makes a stale screen fail with a conflict instead of acting on a case that moved on.
    pub async fn act(
        &self,
        id: CaseId,
        expected_version: Option<u64>,
        command: &Command,
        actor: &Actor,
        now: Timestamp,
    ) -> Result<CaseState, ServiceError> {
        // A caller who did not name the version they saw means the case as it is: when someone else's change
        // lands between reading and writing, the command is decided again on the newer state (which may then
        // refuse it for what it is, say `CASE_ALREADY_RATED`, instead of a bare conflict).
        let mut attempts = 0;
        loop {
            attempts += 1;
            let current = self.load(id).await?;
            if let Some(expected) = expected_version.filter(|v| *v != current.version) {
                return Err(StoreError::Conflict(format!(
                    "case {} is at version {}, not {expected}: someone else changed it first",
                    id.0, current.version
                ))
                .into());
            }
            // The domain first decides whether the actor may act on this case at all; only then is the target
            // of a merge looked at, so that the answers never tell an outsider which cases exist.
            let events = decide(Some(&current), command, actor, now, &self.rules())?;
            if let Action::Merge { into } = &command.action {
                self.check_merge_target(id, *into, actor).await?;
            }
            let version = current.version;
            let next = fold(Some(current), &events)?;
            match self.store.append(id, version, events, &next).await {
                Err(StoreError::Conflict(_)) if expected_version.is_none() && attempts < 3 => continue,
                Err(error) => return Err(error.into()),
                Ok(()) => return Ok(next),
            }
        }
    }

    pub async fn load(&self, id: CaseId) -> Result<CaseState, ServiceError> {
        self.store.load_case(id).await?.ok_or_else(|| StoreError::NotFound(format!("case {}", id.0)).into())
    }

    async fn check_merge_target(&self, id: CaseId, into: CaseId, actor: &Actor) -> Result<(), ServiceError> {
        let invalid = |why: &str| DomainError::with_detail(ErrorKind::MergeTargetInvalid, why);
        if into == id {
            return Err(invalid("a case cannot be merged into itself").into());
        }
        match self.store.load_case(into).await? {
            // A case out of the actor's reach answers exactly like one that does not exist.
            None => Err(invalid("the target case does not exist").into()),
            Some(target) if !shiyu_domain::may_merge_into(&target, actor) => {
                Err(invalid("the target case does not exist").into())
            }
            Some(target) if !target.status.accepts_merges() => {
                Err(invalid("the target case was rejected, merged or voided").into())
            }
            Some(_) => Ok(()),
        }
    }
}

fn fold(state: Option<CaseState>, events: &[Event]) -> Result<CaseState, DomainError> {
    let mut state = state;
    for event in events {
        state = Some(apply(state, event)?);
    }
    state.ok_or_else(|| DomainError::with_detail(ErrorKind::EventOutOfOrder, "a decision produced no event"))
}
