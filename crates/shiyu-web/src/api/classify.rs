//! 智能分拨: matter suggestions for a description, and retraining the classifier.

use super::{require, JsonBody};
use crate::auth::Caller;
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::Capability;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifyRequest {
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatterSuggestion {
    pub matter: String,
    pub name: String,
    pub category: String,
    /// From 0 to 1.
    pub confidence: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassifyView {
    /// The three likeliest matters, most likely first.
    pub suggestions: Vec<MatterSuggestion>,
    /// How many registered cases the model learned from.
    pub trained_on: usize,
}

/// Suggests the matter of a report from its description (for the hotline agent or operator to confirm or
/// correct; the matter chosen at registration becomes a label for the next training).
#[utoipa::path(post, path = "/api/classify", tag = "cases", request_body = ClassifyRequest,
    responses((status = 200, body = ClassifyView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn classify(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(request): JsonBody<ClassifyRequest>,
) -> WebResult<Json<ClassifyView>> {
    require(&caller, Capability::Classify)?;
    if request.description.trim().is_empty() || request.description.chars().count() > 10_000 {
        return Err(WebError::invalid("a description of 1 to 10,000 characters"));
    }
    let model = state.classifier.get().ok_or_else(|| {
        WebError::refused(
            StatusCode::CONFLICT,
            "CLASSIFIER_NOT_TRAINED",
            "分拨模型尚未训练",
            "The classifier has not been trained yet (POST /api/classifier/train or `shiyu train-classifier`)",
        )
    })?;
    let reference = state.reference.get();
    let suggestions = model
        .suggest(&request.description, 3)
        .into_iter()
        .filter_map(|s| {
            let matter = reference.matters.get(&s.label)?;
            Some(MatterSuggestion {
                matter: matter.code.clone(),
                name: matter.name.clone(),
                category: matter.category.clone(),
                confidence: (s.confidence * 1000.0).round() / 1000.0,
            })
        })
        .collect();
    Ok(Json(ClassifyView { suggestions, trained_on: model.examples }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingView {
    pub trained_on: usize,
    pub held_out: usize,
    /// Held-out accuracy of the first suggestion, and of any of the three.
    pub top1: f64,
    pub top3: f64,
}

/// Retrains the classifier on every case registered with a matter (admins); every fifth case is held out to
/// measure accuracy, then the model kept learns from all of them and serves at once.
#[utoipa::path(post, path = "/api/classifier/train", tag = "cases",
    responses((status = 200, body = TrainingView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn train(State(state): State<AppState>, caller: Caller) -> WebResult<Json<TrainingView>> {
    require(&caller, Capability::TrainModels)?;
    let now = state.now();
    let Some((model, evaluation)) = crate::classifier::retrain(state.store.as_ref(), now).await? else {
        return Err(WebError::refused(
            StatusCode::CONFLICT,
            "NO_LABELLED_CASES",
            "尚无已立案的事件可供训练",
            "No case has been registered with a matter yet",
        ));
    };
    state.classifier.set(model);
    state.store.audit(vec![caller.audit(now, "classifier_trained", None, None)]).await?;
    Ok(Json(TrainingView {
        trained_on: evaluation.trained_on,
        held_out: evaluation.held_out,
        top1: evaluation.top1,
        top3: evaluation.top3,
    }))
}
