//! Outgoing webhooks per department (admins): create one (its secret is shown once), list, disable, and the
//! dead-letter list with a retry for each. Sending is `shiyu_sla::webhooks::Deliverer`'s; what a receiver
//! gets and how it checks the signature is in docs/webhooks.md.

use super::admin::CursorParams;
use super::{page_size, require, JsonBody};
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::views::Page;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use shiyu_domain::{Capability, DepartmentId};
use shiyu_sla::webhooks::{check_url, new_secret};
use shiyu_store::{NewWebhook, StoreError};
use utoipa::{IntoParams, ToSchema};

/// Who manages webhooks: admins, for every department. A webhook's secret is a credential for a machine
/// client, like an API token, hence the same capability.
const MANAGE: Capability = Capability::ManageUsers;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/webhooks", get(list).post(create))
        .route("/api/webhooks/{id}/disable", post(disable))
        .route("/api/webhooks/dead-letters", get(dead_letters))
        .route("/api/webhooks/dead-letters/{id}/retry", post(retry))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookRequest {
    /// The department whose events the webhook receives (those that concern it: dispatches, warnings,
    /// overdue stages, supervision, extension decisions, …).
    pub department_id: i64,
    /// `http://` or `https://`, with a host, at most 2048 characters. Put no credentials in it: the receiver
    /// checks the signature instead.
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookView {
    pub id: i64,
    /// Shown once, then stored sealed: the HMAC-SHA256 key of `X-Shiyu-Signature`, used exactly as this text.
    pub secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub department_id: i64,
    pub department_name: Option<String>,
    pub url: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    pub active: bool,
}

fn url_invalid(problem: shiyu_sla::webhooks::UrlProblem) -> WebError {
    WebError::refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "WEBHOOK_URL_INVALID",
        "Webhook地址无效",
        "The webhook URL is invalid",
    )
    .because(problem.message_zh(), problem.message_en())
}

/// Creates a webhook for a department (admins only). The answer carries the secret, shown this once. The
/// webhook receives events from the notifier's next look at the webhooks (within 30 s).
#[utoipa::path(post, path = "/api/webhooks", tag = "webhooks", request_body = NewWebhookRequest,
    responses((status = 201, body = NewWebhookView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    JsonBody(request): JsonBody<NewWebhookRequest>,
) -> WebResult<(StatusCode, Json<NewWebhookView>)> {
    require(&caller, MANAGE)?;
    let department = DepartmentId(request.department_id);
    if !state.reference.get().departments.contains_key(&department) {
        return Err(WebError::invalid(
            format!("未知的部门 {}", department.0),
            format!("unknown department {}", department.0),
        ));
    }
    let url = request.url.trim().to_string();
    check_url(&url).map_err(url_invalid)?;
    let secret = new_secret();
    let now = state.now();
    let id = state
        .store
        .create_webhook(&NewWebhook { department, url, secret_sealed: state.sealer.seal(&secret)?, at: now })
        .await?;
    // The URL stays out of the audit log: receivers sometimes put a key of their own in it.
    state
        .store
        .audit(vec![caller.audit(
            now,
            "webhook_created",
            Some(format!("webhook:{id}")),
            Some(format!("department:{}", department.0)),
        )])
        .await?;
    Ok((StatusCode::CREATED, Json(NewWebhookView { id, secret })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookParams {
    /// Only this department's webhooks.
    pub department_id: Option<i64>,
}

/// Webhooks in id order, disabled ones too (admins only). Secrets are never shown again.
#[utoipa::path(get, path = "/api/webhooks", tag = "webhooks", params(WebhookParams),
    responses((status = 200, body = Vec<WebhookView>), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<WebhookParams>,
    _known: super::KnownParams<(WebhookParams,)>,
) -> WebResult<Json<Vec<WebhookView>>> {
    require(&caller, MANAGE)?;
    let webhooks = state.store.webhooks(params.department_id.map(DepartmentId)).await?;
    let reference = state.reference.get();
    Ok(Json(
        webhooks
            .into_iter()
            .map(|w| WebhookView {
                id: w.id,
                department_id: w.department.0,
                department_name: reference.departments.get(&w.department).map(|d| d.name.clone()),
                url: w.url,
                created_at: w.created_at.0,
                disabled_at: w.disabled_at.map(|t| t.0),
                active: w.disabled_at.is_none(),
            })
            .collect(),
    ))
}

/// Disables a webhook for good (admins only): nothing new is sent to it, and what still waited for it
/// becomes a dead letter. Disabling it again changes nothing.
#[utoipa::path(post, path = "/api/webhooks/{id}/disable", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<StatusCode> {
    require(&caller, MANAGE)?;
    let now = state.now();
    state.store.disable_webhook(id, now).await?;
    state
        .store
        .audit(vec![caller.audit(now, "webhook_disabled", Some(format!("webhook:{id}")), None)])
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub id: i64,
    pub webhook_id: i64,
    pub department_id: i64,
    /// The event's sequence number; `{webhook_id}-{seq}` is the delivery's idempotency id.
    pub seq: i64,
    /// The event's kind and case, read from the body.
    pub kind: Option<String>,
    pub case_id: Option<i64>,
    pub attempts: u32,
    /// Why the last attempt failed (`HTTP 503 Service Unavailable`, `no answer within 10 s`,
    /// `webhook disabled`, …).
    pub last_error: Option<String>,
    /// When it was given up.
    pub dead_at: Option<i64>,
}

/// Deliveries that were given up, oldest first, from a cursor (admins only).
#[utoipa::path(get, path = "/api/webhooks/dead-letters", tag = "webhooks", params(CursorParams),
    responses((status = 200, body = Page<DeadLetterView>), (status = 403, body = ErrorBody)))]
pub async fn dead_letters(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CursorParams>,
    _known: super::KnownParams<(CursorParams,)>,
) -> WebResult<Json<Page<DeadLetterView>>> {
    require(&caller, MANAGE)?;
    let limit = page_size(params.limit)?;
    let dead = state.store.dead_deliveries(params.after.unwrap_or(0), limit).await?;
    let next = (dead.len() == limit as usize).then(|| dead.last().map(|d| d.id)).flatten();
    let items = dead
        .into_iter()
        .map(|d| {
            let body: serde_json::Value = serde_json::from_str(&d.body).unwrap_or_default();
            DeadLetterView {
                id: d.id,
                webhook_id: d.webhook,
                department_id: d.department.0,
                seq: d.seq,
                kind: body["kind"].as_str().map(str::to_string),
                case_id: body["case_id"].as_i64(),
                attempts: d.attempts,
                last_error: d.last_error,
                dead_at: d.dead_at.map(|t| t.0),
            }
        })
        .collect();
    Ok(Json(Page { items, next }))
}

/// Sends a dead letter again (admins only): it starts over with a full set of attempts, under the same
/// idempotency id.
#[utoipa::path(post, path = "/api/webhooks/dead-letters/{id}/retry", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 202), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<StatusCode> {
    require(&caller, MANAGE)?;
    let now = state.now();
    match state.store.retry_delivery(id, now).await {
        Ok(()) => {}
        Err(StoreError::Conflict(detail)) => {
            return Err(WebError::refused(
                StatusCode::CONFLICT,
                "DELIVERY_NOT_RETRYABLE",
                "只能重发死信，且其Webhook须未停用",
                "Only a dead letter whose webhook is still active can be sent again",
            )
            .with_details(detail))
        }
        Err(error) => return Err(error.into()),
    }
    state
        .store
        .audit(vec![caller.audit(now, "delivery_retried", Some(format!("delivery:{id}")), None)])
        .await?;
    Ok(StatusCode::ACCEPTED)
}
