//! 智能分拨: matter suggestions for a description, retraining the classifier, and places for addresses
//! said without coordinates.

use super::{require, JsonBody};
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::Capability;
use shiyu_geo::gazetteer::Unresolved;
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
    SignedIn(caller): SignedIn,
    JsonBody(request): JsonBody<ClassifyRequest>,
) -> WebResult<Json<ClassifyView>> {
    require(&caller, Capability::Classify)?;
    if request.description.trim().is_empty() || request.description.chars().count() > 10_000 {
        return Err(WebError::invalid("描述须为1到10000个字符", "a description of 1 to 10,000 characters"));
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
    /// Cases the measuring model learned from. The model kept, which `POST /api/classify` serves, then
    /// learns from these and the held-out ones together: `trained_on + held_out` cases.
    pub trained_on: usize,
    /// Every fifth case, kept from the measuring model to count its accuracy on.
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GeocodeParams {
    /// The address as the caller said it, e.g. 「和平桥街道桃坞路社区菜场门口」.
    pub address: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GeocodeView {
    pub jurisdiction: String,
    pub name: String,
    pub level: String,
    /// A point inside the place, when the place has an outline; use it only after confirming the place.
    pub location: Option<crate::views::LocationView>,
    /// 0 to 1. Below about 0.5 the text named the place only loosely, or several places share the name.
    pub confidence: f64,
    /// The names found in the address, from the county down.
    pub matched: Vec<String>,
}

/// Finds the place an address names (hotline calls without coordinates), with how sure the match is. An
/// address that names no known place, or only places that contradict each other, is refused rather than
/// guessed.
#[utoipa::path(get, path = "/api/geocode", tag = "cases", params(GeocodeParams),
    responses((status = 200, body = GeocodeView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn geocode(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(params): axum::extract::Query<GeocodeParams>,
    _known: super::KnownParams<(GeocodeParams,)>,
) -> WebResult<Json<GeocodeView>> {
    require(&caller, Capability::Classify)?;
    let reference = state.reference.get();
    let resolved = reference.gazetteer.resolve(&params.address).map_err(|why| match why {
        Unresolved::NothingKnown => WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ADDRESS_NOT_RESOLVED",
            "地址中没有可识别的乡镇、社区或网格名称",
            "The address names no township, community or grid the platform knows",
        ),
        Unresolved::Contradiction(names) => WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ADDRESS_CONTRADICTORY",
            "地址中的地名互相矛盾，无法确定位置",
            "The address names places that cannot all be true",
        )
        .because(names.join("、"), names.join(", ")),
    })?;
    let place = reference.jurisdictions.get(&resolved.jurisdiction).ok_or_else(WebError::not_found)?;
    Ok(Json(GeocodeView {
        jurisdiction: place.code.clone(),
        name: place.name.clone(),
        level: resolved.level.as_str().into(),
        location: resolved.point.map(|p| crate::views::LocationView { lon: p.lon, lat: p.lat }),
        confidence: resolved.confidence,
        matched: resolved.matched,
    }))
}
