//! The notifier: follows the log from its stored position and tells the right users about each event, in
//! the app (stored, unread until read; the server's event stream shows them as they come), by SMS for
//! urgent notices, and by webhook to the departments concerned.

use crate::sms::SmsSender;
use shiyu_domain::sla::{notices, Audience};
use shiyu_domain::{Role, Scope, Timestamp, User, UserId};
use shiyu_store::{NewDelivery, NewNotification, Store, StoreResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The notifier's name in the store's table of log followers.
pub const FOLLOWER: &str = "notifier";
/// Events handled per transaction.
const PAGE: u32 = 1000;
/// How long the notifier trusts its copy of the users and webhooks before reading them again.
const DIRECTORY_TTL_MS: i64 = 30_000;

/// Who holds which audience, read from the users and webhooks.
#[derive(Debug, Default)]
struct Directory {
    loaded_at: Option<Timestamp>,
    users: HashMap<UserId, User>,
    by_department: HashMap<i64, Vec<UserId>>,
    by_center: HashMap<(i64, Role), Vec<UserId>>,
    /// Active webhooks by department: their ids.
    webhooks: HashMap<i64, Vec<i64>>,
}

impl Directory {
    fn of(users: Vec<User>, webhooks: Vec<(i64, i64)>, at: Timestamp) -> Directory {
        let mut directory = Directory { loaded_at: Some(at), ..Directory::default() };
        for user in users {
            match (user.role, user.scope) {
                (Role::DepartmentHandler, Scope::Department(d)) => {
                    directory.by_department.entry(d.0).or_default().push(user.id)
                }
                (role, Scope::Jurisdiction(j)) => {
                    directory.by_center.entry((j.0, role)).or_default().push(user.id)
                }
                _ => {}
            }
            directory.users.insert(user.id, user);
        }
        for (webhook, department) in webhooks {
            directory.webhooks.entry(department).or_default().push(webhook);
        }
        directory
    }

    fn members(&self, audience: Audience) -> &[UserId] {
        let found = match audience {
            Audience::Department(d) => self.by_department.get(&d.0),
            Audience::Center(j, role) => self.by_center.get(&(j.0, role)),
        };
        found.map_or(&[], Vec::as_slice)
    }
}

#[derive(Clone)]
pub struct Notifier {
    store: Arc<dyn Store>,
    sms: Arc<dyn SmsSender>,
    clock: shiyu_store::Clock,
    directory: Arc<Mutex<Directory>>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("sms", &self.sms).finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(store: Arc<dyn Store>, sms: Arc<dyn SmsSender>, clock: shiyu_store::Clock) -> Notifier {
        Notifier { store, sms, clock, directory: Arc::new(Mutex::new(Directory::default())) }
    }

    /// Forget the cached users and webhooks (after an admin changed them).
    pub async fn reload(&self) {
        self.directory.lock().await.loaded_at = None;
    }

    /// Handles the next page of events after the stored position. Returns how many events it handled.
    pub async fn pass(&self) -> StoreResult<usize> {
        let now = (self.clock)();
        let after = self.store.follower_seq(FOLLOWER).await?;
        let events = self.store.events_since(after, PAGE).await?;
        let Some(last) = events.last().map(|e| e.seq) else { return Ok(0) };
        let mut directory = self.directory.lock().await;
        if directory.loaded_at.is_none_or(|at| now.0 - at.0 > DIRECTORY_TTL_MS) {
            *directory = Directory::of(self.store.users().await?, self.store.active_webhooks().await?, now);
        }
        let mut made = Vec::new();
        let mut deliveries = Vec::new();
        // Each event is judged by the case as it stood right after it (the owner then, the lead then), not
        // as it stands now: a case escalated since still tells the county about its own red.
        let mut histories: HashMap<shiyu_domain::CaseId, Vec<shiyu_domain::CaseState>> = HashMap::new();
        for stored in &events {
            let states = match histories.entry(stored.case_id) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(states_after_each(&self.store.case_history(stored.case_id).await?))
                }
            };
            let Some(state) = states.get((stored.version as usize).saturating_sub(1)) else { continue };
            let mut told: Vec<UserId> = Vec::new();
            let mut departments: Vec<i64> = Vec::new();
            for notice in notices(&stored.event, state, stored.case_id.0) {
                if let Audience::Department(d) = notice.audience {
                    departments.push(d.0);
                }
                for user in directory.members(notice.audience) {
                    if told.contains(user) {
                        continue;
                    }
                    told.push(*user);
                    made.push(NewNotification {
                        user: *user,
                        seq: stored.seq,
                        case_id: stored.case_id,
                        kind: notice.kind.to_string(),
                        title: notice.title.clone(),
                        urgent: notice.urgent,
                        at: stored.event.at,
                    });
                }
            }
            departments.sort_unstable();
            departments.dedup();
            for department in departments {
                for webhook in directory.webhooks.get(&department).map_or(&[][..], Vec::as_slice) {
                    let body = crate::webhook_body(stored, state, department);
                    deliveries.push(NewDelivery { webhook: *webhook, seq: stored.seq, body, at: now });
                }
            }
        }
        let texts: Vec<(UserId, String)> =
            made.iter().filter(|n| n.urgent).map(|n| (n.user, n.title.clone())).collect();
        self.store.follow(FOLLOWER, last, made, deliveries).await?;
        // After the commit: a crash in between loses the text message, never the stored notification.
        for (user, text) in texts {
            if let Some(user) = directory.users.get(&user) {
                if let Err(error) = self.sms.send(now, user, &text) {
                    tracing::warn!(%error, user = %user.username, "sms not sent");
                }
            }
        }
        Ok(events.len())
    }

    /// Runs passes until the task is dropped, at once while there is a backlog and every `poll` otherwise.
    pub async fn run(self, poll: Duration) {
        loop {
            match self.pass().await {
                Ok(handled) if handled > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "notifier pass failed"),
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// The case's state after each of its events, in order.
fn states_after_each(history: &[shiyu_store::StoredEvent]) -> Vec<shiyu_domain::CaseState> {
    let mut states: Vec<shiyu_domain::CaseState> = Vec::with_capacity(history.len());
    for stored in history {
        match shiyu_domain::apply(states.last().cloned(), &stored.event) {
            Ok(state) => states.push(state),
            Err(_) => break,
        }
    }
    states
}
