//! The citizens' endpoints: report without an account, follow by tracking code, rate once after closure.
//! Only public progress leaves here: never staff notes, names or anyone else's data.

use super::cases::{idempotency_key, intake_command, Intake};
use super::JsonBody;
use crate::auth::Caller;
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::views::{public_step, LocationView, MergedProgress, PublicStep, TrackView};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{Action, Actor, CaseId, CaseState, Channel, Command, Status};
use utoipa::ToSchema;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicReport {
    pub description: String,
    pub address: Option<String>,
    pub location: Option<LocationView>,
    /// Code of the community (or grid) where it happened; may be left out when `location` is given.
    pub jurisdiction: Option<String>,
    /// A mobile number to be called back on; stored encrypted and shown masked.
    pub phone: Option<String>,
    /// Report without leaving a name (a phone number may still be left for the call-back).
    #[serde(default)]
    pub anonymous: bool,
    /// Photos uploaded first through `POST /api/public/attachments`.
    #[serde(default)]
    pub attachments: Vec<crate::views::AttachmentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicReceipt {
    /// Keep it: it is the only way to follow and rate the case.
    pub tracking_code: String,
    pub status: String,
    pub status_label: String,
    /// false when the Idempotency-Key was used before; the receipt is the earlier one.
    pub created: bool,
}

/// Reports a problem without an account. Send an `Idempotency-Key` header: a retried submission returns the
/// same case and tracking code.
#[utoipa::path(post, path = "/api/public/reports", tag = "citizens", request_body = PublicReport,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes the submission safe to retry")),
    responses((status = 201, body = PublicReceipt), (status = 200, description = "retry of an earlier submission", body = PublicReceipt),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn report(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PublicReport>,
) -> WebResult<(StatusCode, Json<PublicReceipt>)> {
    let key = idempotency_key(&headers, "public", &request)?;
    let command = intake_command(
        &state,
        &caller,
        Intake {
            description: request.description,
            address: request.address,
            location: request.location,
            jurisdiction: request.jurisdiction.as_deref(),
            phone: request.phone.as_deref(),
            id_number: None,
            anonymous: request.anonymous,
            attachments: &request.attachments,
            channel: Channel::App,
            matter: None,
            priority: None,
            reporter: None,
        },
    )
    .await?;
    let created = state.service.receive(key, &command, &Actor::Reporter, state.now()).await?;
    let case = &created.state;
    Ok((
        if created.created { StatusCode::CREATED } else { StatusCode::OK },
        Json(PublicReceipt {
            tracking_code: case.reporter.tracking_code.clone().unwrap_or_default(),
            status: case.status.as_str().into(),
            status_label: case.status.label_zh().into(),
            created: created.created,
        }),
    ))
}

async fn by_code(state: &AppState, code: &str) -> WebResult<(CaseId, CaseState)> {
    let normalised = code.trim().to_uppercase();
    let id = state.store.case_by_tracking_code(&normalised).await?.ok_or_else(WebError::not_found)?;
    let case = state.store.load_case(id).await?.ok_or_else(WebError::not_found)?;
    Ok((id, case))
}

/// Follows a case by its tracking code: public progress only.
#[utoipa::path(get, path = "/api/public/reports/{code}", tag = "citizens", params(("code" = String, Path)),
    responses((status = 200, body = TrackView), (status = 404, body = ErrorBody)))]
pub async fn track(State(state): State<AppState>, Path(code): Path<String>) -> WebResult<Json<TrackView>> {
    let (id, case) = by_code(&state, &code).await?;
    let history = state.store.case_history(id).await?;
    let handled_with = match case.merged_into {
        Some(into) => merged_progress(&state, into).await?,
        None => None,
    };
    Ok(Json(TrackView {
        handled_with,
        tracking_code: case.reporter.tracking_code.clone().unwrap_or_default(),
        status: case.status.as_str().into(),
        status_label: case.status.label_zh().into(),
        received_at: case.received_at.0,
        updated_at: case.updated_at.0,
        steps: history.iter().filter_map(|e| public_step(&e.event)).collect(),
        rating: case.rating.as_ref().map(|r| r.score),
        can_rate: case.status == Status::Closed && case.rating.is_none(),
    }))
}

/// Where a merged report's problem now stands: the case it was merged into, or the one that was merged into
/// in turn (a chain of at most a few merges, followed to its end).
async fn merged_progress(state: &AppState, mut into: CaseId) -> WebResult<Option<MergedProgress>> {
    for _ in 0..8 {
        let Some(main) = state.store.load_case(into).await? else { return Ok(None) };
        if let Some(next) = main.merged_into {
            into = next;
            continue;
        }
        let history = state.store.case_history(into).await?;
        return Ok(Some(MergedProgress {
            status: main.status.as_str().into(),
            status_label: main.status.label_zh().into(),
            updated_at: main.updated_at.0,
            // The replies there were written to that case's reporter, who may be named in them.
            steps: history
                .iter()
                .filter_map(|e| public_step(&e.event))
                .map(|step| PublicStep { reply: None, ..step })
                .collect(),
        }));
    }
    Ok(None)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicRating {
    /// 1 (very dissatisfied) to 5 (very satisfied)
    #[schema(minimum = 1, maximum = 5)]
    pub score: u8,
    pub comment: Option<String>,
}

/// Rates a closed case, once.
#[utoipa::path(post, path = "/api/public/reports/{code}/rating", tag = "citizens", params(("code" = String, Path)),
    request_body = PublicRating,
    responses((status = 200, body = TrackView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rate(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    JsonBody(rating): JsonBody<PublicRating>,
) -> WebResult<Json<TrackView>> {
    let (id, _) = by_code(&state, &code).await?;
    let command = Command {
        origin: caller.address.clone(),
        ..Command::new(Action::Rate { score: rating.score, comment: rating.comment })
    };
    state.service.act(id, None, &command, &Actor::Reporter, state.now()).await?;
    track(State(state), Path(code)).await
}
