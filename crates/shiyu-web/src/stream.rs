//! `GET /api/events/stream`: the event log as Server-Sent Events, filtered to the cases the caller may see,
//! resumable with `Last-Event-ID` (the log's sequence number). Every node tails the shared log, so a
//! stream served by one node shows changes made through another.

use crate::api::deadlines::NotificationView;
use crate::auth::Caller;
use crate::errors::{ErrorBody, WebResult};
use crate::views::public_step;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use shiyu_domain::{can_view, sees_handling, Actor, CaseId};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// How long the stream waits before looking at the log again when nothing was new.
const POLL: Duration = Duration::from_millis(250);
const PAGE: u32 = 500;
/// How often a stream looks again at the session or token it was opened with: a sign-out or a revoked token
/// ends it within this time.
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this sequence number (the `Last-Event-ID` header does the same and wins). Without either,
    /// the stream starts with the next new event.
    pub after: Option<i64>,
}

/// The data of one streamed event.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamedEvent {
    pub seq: i64,
    pub case_id: i64,
    pub version: u64,
    pub kind: String,
    pub label: String,
    pub at: i64,
}

struct Tail {
    state: AppState,
    caller: Caller,
    checked: tokio::time::Instant,
    actor: Actor,
    after: i64,
    ready: VecDeque<StreamedEvent>,
    /// The newest notification already streamed; notifications live in the store, so every node sees them.
    notified: i64,
    /// The caller's notifications not yet streamed, as SSE events named `notification`.
    notices: VecDeque<NotificationView>,
}

impl Tail {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Tail)> {
        loop {
            if self.checked.elapsed() >= RECHECK {
                if !self.caller.still_signed_in(&self.state).await {
                    return None;
                }
                self.checked = tokio::time::Instant::now();
            }
            if let Some(notice) = self.notices.pop_front() {
                let sse = SseEvent::default()
                    .event("notification")
                    .json_data(&notice)
                    .unwrap_or_else(|_| SseEvent::default().comment("unencodable notification"));
                return Some((Ok(sse), self));
            }
            if let Some(event) = self.ready.pop_front() {
                let sse = SseEvent::default()
                    .id(event.seq.to_string())
                    .event(event.kind.clone())
                    .json_data(&event)
                    .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
                return Some((Ok(sse), self));
            }
            let page = match self.state.store.events_since(self.after, PAGE).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "event stream cannot read the log");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            let Some(last) = page.last() else {
                self.collect_notifications().await;
                if self.notices.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
                continue;
            };
            self.after = last.seq;
            // One look at each case per page: whether the caller may see it now.
            let mut visible: HashMap<CaseId, bool> = HashMap::new();
            for stored in page {
                let may = match visible.get(&stored.case_id) {
                    Some(may) => *may,
                    None => {
                        let case = self.state.store.load_case(stored.case_id).await.ok().flatten();
                        let may = case.is_some_and(|c| can_view(&c, &self.actor));
                        visible.insert(stored.case_id, may);
                        may
                    }
                };
                if !may {
                    continue;
                }
                // Reporters follow only the public progress, in its own words.
                let label = if sees_handling(&self.actor) {
                    stored.event.change.label_zh().to_string()
                } else {
                    match public_step(&stored.event) {
                        Some(step) => step.label,
                        None => continue,
                    }
                };
                self.ready.push_back(StreamedEvent {
                    seq: stored.seq,
                    case_id: stored.case_id.0,
                    version: stored.version,
                    kind: stored.event.change.kind().into(),
                    label,
                    at: stored.event.at.0,
                });
            }
        }
    }
}

impl Tail {
    async fn collect_notifications(&mut self) {
        let Some(user) = self.actor.user_id() else { return };
        match self.state.store.notifications(user, false, None, PAGE).await {
            Ok(newest) => {
                let seen = self.notified;
                for n in newest.into_iter().rev().filter(|n| n.id > seen) {
                    self.notified = n.id;
                    self.notices.push_back(NotificationView::of(n));
                }
            }
            Err(error) => tracing::warn!(%error, "event stream cannot read notifications"),
        }
    }
}

/// Case events as they happen, within the caller's scope, and the caller's new notifications (SSE events
/// named `notification`).
#[utoipa::path(get, path = "/api/events/stream", tag = "cases", params(StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this sequence number")),
    responses((status = 200, description = "text/event-stream of StreamedEvent", body = StreamedEvent, content_type = "text/event-stream"),
              (status = 401, body = ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
    _known: crate::api::KnownParams<(StreamParams,)>,
) -> WebResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let actor = caller.actor()?;
    let resume =
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    let after = match resume.or(params.after) {
        Some(after) => after,
        None => state.store.last_seq().await?,
    };
    let notified = match actor.user_id() {
        Some(user) => state.store.notifications(user, false, None, 1).await?.first().map_or(0, |n| n.id),
        None => 0,
    };
    let checked = tokio::time::Instant::now();
    let tail = Tail {
        state,
        caller,
        checked,
        actor,
        after,
        ready: VecDeque::new(),
        notified,
        notices: VecDeque::new(),
    };
    Ok(Sse::new(stream::unfold(tail, Tail::next))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
