//! Likely duplicates (重复件): open cases of the same matter reported near the same place and time, in
//! similar words, offered to the operator for merging with a score. The merge itself is the ordinary
//! `merge` action.

use crate::api::cases::visible_case;
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebResult};
use crate::reference::Reference;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{can_view, CaseId, CaseState, DuplicateRule};
use shiyu_store::{CaseQuery, CaseScope};
use std::cell::RefCell;
use std::collections::HashSet;
use utoipa::ToSchema;

/// Candidates scoring below this are not offered …
const OFFER_FROM: f64 = 0.45;
/// … nor those sharing too few words: nearness and time alone do not make two reports one.
const WORDS_AT_LEAST: f64 = 0.15;

#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateView {
    pub case: i64,
    /// 0 to 1: half from the words, three tenths from nearness, two tenths from time.
    pub score: f64,
    /// Share of words in common (Jaccard).
    pub similarity: f64,
    /// Metres apart, when both have coordinates.
    pub distance_m: Option<f64>,
    pub hours_apart: f64,
    pub description: String,
    pub status: String,
}

/// The words of a report that say what is wrong: its description's, less the words naming where (its address
/// and the places of its jurisdiction chain). Two reports from one street corner share 桃坞路 and 路口 whatever
/// they are about; counted, those made a missing manhole cover a likely duplicate of a pile of rubbish there.
/// `places` keeps each place's words once per request: neighbours share most of their chain.
fn words(case: &CaseState, reference: &Reference, places: &RefCell<PlaceWords>) -> HashSet<String> {
    let mut place: HashSet<String> =
        case.address.as_deref().map(shiyu_text::words).unwrap_or_default().into_iter().collect();
    let mut known = places.borrow_mut();
    for id in &case.path {
        let named = known.entry(*id).or_insert_with(|| {
            reference.jurisdictions.get(id).map(|j| shiyu_text::words(&j.name)).unwrap_or_default()
        });
        place.extend(named.iter().cloned());
    }
    shiyu_text::words(&case.description).into_iter().filter(|w| !place.contains(w)).collect()
}

/// The words of each place's name, by jurisdiction.
type PlaceWords = std::collections::HashMap<shiyu_domain::JurisdictionId, Vec<String>>;

/// How alike two reports are, under `rule` (`a_words` are `a`'s, found once for all its comparisons);
/// `None` when they are too far apart in space or time, which is checked before any text is segmented.
pub fn score(
    a: &CaseState,
    a_words: &HashSet<String>,
    b: &CaseState,
    words_of: impl Fn(&CaseState) -> HashSet<String>,
    rule: DuplicateRule,
) -> Option<(f64, f64, Option<f64>, f64)> {
    let hours = (a.received_at.0 - b.received_at.0).abs() as f64 / 3_600_000.0;
    if hours > f64::from(rule.window_hours) {
        return None;
    }
    let (nearness, distance) = match (a.location, b.location) {
        (Some(p), Some(q)) => {
            let d = shiyu_geo::Point::new(p.lon, p.lat).distance_m(shiyu_geo::Point::new(q.lon, q.lat));
            if d > f64::from(rule.radius_m) {
                return None;
            }
            (1.0 - d / f64::from(rule.radius_m.max(1)), Some(d))
        }
        // Without coordinates, the same grid (or community) is what "near" can mean.
        _ => match (a.path.last(), b.path.last()) {
            (Some(x), Some(y)) if x == y => (0.8, None),
            _ if a.path.len() > 3 && b.path.len() > 3 && a.path[3] == b.path[3] => (0.5, None),
            _ => return None,
        },
    };
    let b_words = words_of(b);
    let union = a_words.union(&b_words).count();
    let similarity =
        if union == 0 { 0.0 } else { a_words.intersection(&b_words).count() as f64 / union as f64 };
    let time = 1.0 - hours / f64::from(rule.window_hours.max(1));
    Some((0.5 * similarity + 0.3 * nearness + 0.2 * time, similarity, distance, hours))
}

/// Open cases that may report the same thing as this one, best first (at most five).
#[utoipa::path(get, path = "/api/cases/{id}/duplicates", tag = "cases", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<DuplicateView>), (status = 404, body = ErrorBody)))]
pub async fn duplicates(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<Json<Vec<DuplicateView>>> {
    let actor = caller.actor()?;
    let case = visible_case(&state, &actor, CaseId(id)).await?;
    let reference = state.reference.get();
    let matter = case.matter.as_ref().and_then(|m| reference.matters.get(&m.code));
    let rule = matter.map(|m| m.duplicates).unwrap_or_default();
    // Neighbours within the window, in the case's county (nothing nearer than the radius lies further).
    let county = case.path.get(1).copied();
    let query = CaseQuery {
        scope: county.map_or(CaseScope::All, |jurisdiction| CaseScope::Under { depth: 1, jurisdiction }),
        received_after: Some(case.received_at.plus_minutes(-i64::from(rule.window_hours) * 60)),
        limit: 2_000,
        ..CaseQuery::default()
    };
    let places = RefCell::new(PlaceWords::new());
    let own_words = words(&case, &reference, &places);
    let mut found: Vec<DuplicateView> = state
        .store
        .list_cases(&query)
        .await?
        .into_iter()
        .filter(|(other, c)| {
            other.0 != id
                && c.status.is_active()
                && can_view(c, &actor)
                && case.matter.as_ref().is_none_or(|m| c.matter.as_ref().is_none_or(|n| n.code == m.code))
        })
        .filter_map(|(other, c)| {
            let words_of = |c: &CaseState| words(c, &reference, &places);
            let (score, similarity, distance_m, hours_apart) = score(&case, &own_words, &c, words_of, rule)?;
            (score >= OFFER_FROM && similarity >= WORDS_AT_LEAST).then(|| DuplicateView {
                case: other.0,
                score: (score * 1000.0).round() / 1000.0,
                similarity: (similarity * 1000.0).round() / 1000.0,
                distance_m: distance_m.map(f64::round),
                hours_apart: (hours_apart * 10.0).round() / 10.0,
                description: c.description.clone(),
                status: c.status.as_str().into(),
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.case.cmp(&b.case)));
    found.truncate(5);
    Ok(Json(found))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateRuleRequest {
    /// 10 to 20,000 metres.
    #[schema(minimum = 10, maximum = 20_000)]
    pub radius_m: u32,
    /// 1 to 720 hours.
    #[schema(minimum = 1, maximum = 720)]
    pub window_hours: u32,
}

/// Sets how near in space and time reports of a matter must be to be compared as duplicates (admins).
#[utoipa::path(put, path = "/api/catalog/matters/{code}/duplicates", tag = "reference data",
    params(("code" = String, Path)), request_body = DuplicateRuleRequest,
    responses((status = 200, body = crate::views::MatterView), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_rule(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(code): Path<String>,
    super::JsonBody(request): super::JsonBody<DuplicateRuleRequest>,
) -> WebResult<Json<crate::views::MatterView>> {
    super::require(&caller, shiyu_domain::Capability::ManageCatalog)?;
    if !(10..=20_000).contains(&request.radius_m) || !(1..=720).contains(&request.window_hours) {
        return Err(crate::errors::WebError::invalid(
            "范围 radius_m 须在10到20000米之间，时间窗 window_hours 须在1到720小时之间",
            "radius_m from 10 to 20,000 and window_hours from 1 to 720",
        ));
    }
    let mut matter =
        state.reference.get().matters.get(&code).cloned().ok_or_else(crate::errors::WebError::not_found)?;
    matter.duplicates = DuplicateRule { radius_m: request.radius_m, window_hours: request.window_hours };
    state.store.put_matters(std::slice::from_ref(&matter)).await?;
    state.reference.reload_catalog_and_people(state.store.as_ref()).await?;
    let detail = format!("radius_m={} window_hours={}", request.radius_m, request.window_hours);
    state
        .store
        .audit(vec![caller.audit(
            state.now(),
            "duplicate_rule_set",
            Some(format!("matter:{code}")),
            Some(detail),
        )])
        .await?;
    Ok(Json(crate::views::MatterView::of(&matter)))
}
