//! Staff endpoints of the case loop: intake, lists, a case and its history, every action, and the audited
//! view of a reporter's personal data.

use super::{page_size, JsonBody};
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::reference::Reference;
use crate::views::{parse_name, AttachmentView, CasePage, CaseView, EventView, LocationView};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{
    can_view, role_may, Action, Actor, AttachmentRef, Capability, CaseId, CaseState, Channel, Command,
    DepartmentId, DomainError, ErrorKind, GeoPoint, JurisdictionId, NewCase, Priority, Reporter, Role, Scope,
    Status, Timestamp,
};
use shiyu_store::{CaseOrder, CaseQuery, CaseScope, ClockFilter, ServiceError};
use utoipa::{IntoParams, ToSchema};

/// The header that makes a submission safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Which cases a caller's lists contain; mirrors `can_view`.
pub fn list_scope(actor: &Actor, reference: &Reference) -> WebResult<CaseScope> {
    match actor {
        Actor::System => Ok(CaseScope::All),
        Actor::Reporter => Err(WebError::forbidden()),
        Actor::User { role: Role::Admin, .. } => Err(WebError::forbidden()),
        Actor::User { role: Role::Citizen, user, .. } => Ok(CaseScope::Reporter(*user)),
        Actor::User { scope: Scope::Department(d), .. } => Ok(CaseScope::Department(*d)),
        Actor::User { scope: Scope::Jurisdiction(j), .. } => {
            let depth = reference.depth(*j).ok_or_else(WebError::forbidden)?;
            Ok(CaseScope::Under { depth, jurisdiction: *j })
        }
        Actor::User { scope: Scope::Unbound, .. } => Err(WebError::forbidden()),
    }
}

/// Loads a case the actor may see; any other case, existing or not, is 404 alike.
pub async fn visible_case(state: &AppState, actor: &Actor, id: CaseId) -> WebResult<CaseState> {
    match state.store.load_case(id).await? {
        Some(case) if can_view(&case, actor) => Ok(case),
        _ => Err(WebError::not_found()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only cases in these states: one, or several separated by commas (`received,registered`); the states
    /// are received, registered, dispatched, handling, handled, verified, closed, rejected, merged, voided.
    pub status: Option<String>,
    /// `true`: only cases still open (any state before closure); `false`: only those that ended.
    pub open: Option<bool>,
    /// Only cases within this jurisdiction (its code), which must lie within the caller's.
    pub within: Option<String>,
    /// Only cases of this matter (its code in the catalog).
    pub matter: Option<String>,
    /// The case with this tracking code, as a caller quotes it on the phone.
    pub tracking_code: Option<String>,
    /// By the stage's clock: `running` (open and not suspended), `overdue` (running and past its due time,
    /// 超期) or `suspended` (挂起: stopped, waiting to be resumed).
    pub clock: Option<String>,
    /// `newest` (the default): newest first. `due`: a work list of the cases whose clock runs (open and not
    /// suspended), the one due soonest first, so the most overdue lead.
    pub order: Option<String>,
    /// Newest first: the `next` cursor of the previous page.
    pub before: Option<i64>,
    /// `order=due`: the `next` of the previous page (a case id), given with `after_due`.
    pub after: Option<i64>,
    /// `order=due`: the `next_due` of the previous page (milliseconds), given with `after`.
    pub after_due: Option<i64>,
    /// Page size, 1 to 200 (default 50; more gives 200).
    pub limit: Option<u32>,
}

/// The order a list asks for, with its cursor checked against it.
fn list_order(params: &ListParams) -> WebResult<CaseOrder> {
    let cursor_refused = |zh: &str, en: &str| Err(WebError::invalid(zh.to_string(), en.to_string()));
    match params.order.as_deref().map(str::trim) {
        None | Some("newest") => match (params.after, params.after_due) {
            (None, None) => Ok(CaseOrder::Newest { before: params.before.map(CaseId) }),
            _ => cursor_refused(
                "after 和 after_due 只用于按期限排序（order=due）的列表",
                "after and after_due page a list ordered by due time (order=due) only",
            ),
        },
        Some("due") => match (params.before, params.after, params.after_due) {
            (Some(_), ..) => cursor_refused(
                "按期限排序的列表用 after 和 after_due 翻页，不用 before",
                "a list ordered by due time pages with after and after_due, not before",
            ),
            (None, Some(id), Some(due)) => Ok(CaseOrder::Due { after: Some((Timestamp(due), CaseId(id))) }),
            (None, None, None) => Ok(CaseOrder::Due { after: None }),
            _ => cursor_refused("after 和 after_due 须一起给出", "after and after_due go together"),
        },
        Some(other) => Err(WebError::invalid(
            format!("未知的排序 `{other}`（可选：newest、due）"),
            format!("unknown order `{other}` (expected one of newest, due)"),
        )),
    }
}

/// Cases within the caller's jurisdiction, department or own reports, newest first or (`order=due`) the most
/// urgent first.
#[utoipa::path(get, path = "/api/cases", tag = "cases", params(ListParams),
    responses((status = 200, body = CasePage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
    _known: super::KnownParams<(ListParams,)>,
) -> WebResult<Json<CasePage>> {
    let actor = caller.actor()?;
    let reference = state.reference.get();
    let rules = state.service.rules();
    let scope = list_scope(&actor, &reference)?;
    let now = state.now();
    let order = list_order(&params)?;
    let limit = page_size(params.limit)?;
    let clock = match params.clock.as_deref().map(str::trim) {
        None => None,
        Some("running") => Some(ClockFilter::Running),
        Some("overdue") => Some(ClockFilter::OverdueAt(now)),
        Some("suspended") if matches!(order, CaseOrder::Due { .. }) => {
            return Err(WebError::invalid(
                "挂起的事件时限已停止，不在按期限排序的列表中",
                "a suspended case's clock is stopped, so it has no place in a list ordered by due time",
            ))
        }
        Some("suspended") => Some(ClockFilter::Stopped),
        Some(other) => {
            return Err(WebError::invalid(
                format!("未知的时限状态 `{other}`（可选：running、overdue、suspended）"),
                format!("unknown clock `{other}` (expected one of running, overdue, suspended)"),
            ))
        }
    };
    let mut statuses = Vec::new();
    for text in params.status.iter().flat_map(|list| list.split(',')).map(str::trim) {
        statuses.push(parse_name::<Status>(text).ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            WebError::invalid(
                format!("未知的状态 `{text}`（可选：{}）", known.join("、")),
                format!("unknown status `{text}` (expected one of {})", known.join(", ")),
            )
        })?);
    }
    if let Some(open) = params.open {
        let wanted = |s: &Status| s.is_active() == open;
        statuses = if statuses.is_empty() {
            Status::ALL.iter().copied().filter(wanted).collect()
        } else {
            statuses.into_iter().filter(wanted).collect()
        };
        if statuses.is_empty() {
            return Ok(Json(CasePage { items: Vec::new(), next: None, next_due: None }));
        }
    }
    let within = match &params.within {
        None => None,
        Some(code) => {
            let id = *reference.by_code.get(code).ok_or_else(|| {
                WebError::invalid(
                    format!("未知的辖区编码 `{code}`"),
                    format!("unknown jurisdiction `{code}`"),
                )
            })?;
            // Narrowing only: a place outside the caller's lists nothing, as its cases would not be seen.
            let inside = match scope {
                CaseScope::Under { jurisdiction, .. } => {
                    reference.path_to(id).unwrap_or_default().contains(&jurisdiction)
                }
                _ => true,
            };
            if !inside {
                return Err(WebError::not_found());
            }
            Some((reference.depth(id).unwrap_or(0), id))
        }
    };
    let matter = match &params.matter {
        Some(code) if !reference.matters.contains_key(code) => {
            return Err(WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "MATTER_UNKNOWN",
                "事项清单中没有该事项",
                "The matter is not in the catalog",
            ))
        }
        matter => matter.clone(),
    };
    let query = CaseQuery {
        scope,
        order,
        statuses,
        within,
        matter,
        tracking_code: params.tracking_code.as_deref().map(|code| code.trim().to_string()),
        received_after: None,
        clock,
        limit,
    };
    let cases = state.store.list_cases(&query).await?;
    // A quoted code answers one case at most: there is no next page to point to.
    let full = cases.len() as u32 == limit && params.tracking_code.is_none();
    let last = cases.last().filter(|_| full);
    let next = last.map(|(id, _)| id.0);
    let next_due = match order {
        CaseOrder::Due { .. } => last.and_then(|(_, case)| case.deadline).map(|deadline| deadline.due.0),
        CaseOrder::Newest { .. } => None,
    };
    let items = cases
        .iter()
        .filter(|(_, case)| can_view(case, &actor))
        .map(|(id, case)| CaseView::of(*id, case, now, &state.sealer, &actor, &reference, &rules))
        .collect();
    Ok(Json(CasePage { items, next, next_due }))
}

/// One case.
#[utoipa::path(get, path = "/api/cases/{id}", tag = "cases", params(("id" = i64, Path)),
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<Json<CaseView>> {
    let actor = caller.actor()?;
    let case = visible_case(&state, &actor, CaseId(id)).await?;
    Ok(Json(case_view(&state, &actor, CaseId(id), &case, state.now())))
}

/// One case as `actor` may see it, named from the reference data in force.
fn case_view(state: &AppState, actor: &Actor, id: CaseId, case: &CaseState, now: Timestamp) -> CaseView {
    CaseView::of(id, case, now, &state.sealer, actor, &state.reference.get(), &state.service.rules())
}

/// A case's whole history (全程留痕): who did what, when, why, with which evidence.
#[utoipa::path(get, path = "/api/cases/{id}/history", tag = "cases", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<EventView>), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<Json<Vec<EventView>>> {
    let actor = caller.actor()?;
    visible_case(&state, &actor, CaseId(id)).await?;
    let events = state.store.case_history(CaseId(id)).await?;
    Ok(Json(events.iter().filter_map(|e| EventView::seen_by(e, &actor)).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalDataView {
    pub phone: Option<String>,
    pub id_number: Option<String>,
    /// The reporter's receipt, to read back to a caller who lost it. Whoever holds it can follow and rate
    /// the case, so it is shown here only, to the same roles, and audited alike.
    pub tracking_code: Option<String>,
}

/// The reporter's phone, ID number and tracking code, for the roles that call reporters back. Every view
/// is written to the audit log.
#[utoipa::path(get, path = "/api/cases/{id}/personal-data", tag = "cases", params(("id" = i64, Path)),
    responses((status = 200, body = PersonalDataView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn personal_data(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<Json<PersonalDataView>> {
    let actor = caller.actor()?;
    let case = visible_case(&state, &actor, CaseId(id)).await?;
    if !actor.role().is_some_and(|role| role_may(role, Capability::ViewPersonalData)) {
        return Err(WebError::forbidden());
    }
    let open = |sealed: &Option<String>| -> WebResult<Option<String>> {
        sealed.as_ref().map(|s| state.sealer.open(s).map_err(WebError::from)).transpose()
    };
    let view = PersonalDataView {
        phone: open(&case.reporter.contact_sealed)?,
        id_number: open(&case.reporter.id_number_sealed)?,
        tracking_code: case.reporter.tracking_code.clone(),
    };
    let shown: Vec<&str> = [
        view.phone.as_ref().map(|_| "phone"),
        view.id_number.as_ref().map(|_| "id_number"),
        view.tracking_code.as_ref().map(|_| "tracking_code"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let entry =
        caller.audit(state.now(), "personal_data_viewed", Some(format!("case:{id}")), Some(shown.join(",")));
    state.store.audit(vec![entry]).await?;
    Ok(Json(view))
}

/// A report taken by staff: a hotline call, a grid worker's patrol, a walk-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCaseRequest {
    #[schema(schema_with = crate::views::channel_names)]
    pub channel: String,
    pub description: String,
    pub address: Option<String>,
    pub location: Option<LocationView>,
    /// Code of the community, grid or micro-grid where it happened; may be left out when `location` is
    /// given, which then decides the grid.
    pub jurisdiction: Option<String>,
    /// The matter, if already known (catalog code).
    pub matter: Option<String>,
    #[schema(schema_with = crate::views::priority_names)]
    pub priority: Option<String>,
    pub reporter_phone: Option<String>,
    pub reporter_id_number: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedView {
    pub case: CaseView,
    /// false when the Idempotency-Key was used before: `case` is the earlier one.
    pub created: bool,
    pub tracking_code: Option<String>,
}

/// Where a new report happened and which command center takes it: from its location on the map when it has
/// one (the grid it falls in, or the nearest within the tolerance), else from the jurisdiction code given.
/// When both are given they must agree. The owner is the lowest command center on the path
/// (`shiyu_domain::route`).
fn intake_place(
    state: &AppState,
    reference: &Reference,
    code: Option<&str>,
    location: Option<GeoPoint>,
) -> WebResult<(Vec<JurisdictionId>, JurisdictionId)> {
    let refused = |code: &'static str, zh: &'static str, en: &'static str| {
        WebError::refused(StatusCode::UNPROCESSABLE_ENTITY, code, zh, en)
    };
    let named = match code {
        Some(code) => {
            let unknown = || {
                refused("JURISDICTION_UNKNOWN", "未知的辖区编码", "Unknown jurisdiction code")
                    .with_details(code.to_string())
            };
            let id = reference.by_code.get(code).copied().ok_or_else(unknown)?;
            Some((id, reference.path_to(id).ok_or_else(unknown)?))
        }
        None => None,
    };
    let located = match location.filter(|_| !reference.map.is_empty()) {
        Some(point) => {
            let point = shiyu_geo::Point::new(point.lon, point.lat);
            let grid = reference.map.locate(point, state.settings.map_tolerance_m).value().copied();
            let grid = grid.ok_or_else(|| {
                refused(
                    "LOCATION_OUTSIDE_AREA",
                    "坐标不在服务范围内",
                    "The coordinates are outside the area served",
                )
                .with_details("no grid within reach of this point")
            })?;
            reference.path_to(grid)
        }
        None => None,
    };
    let path = match (named, located) {
        (Some((id, _)), Some(path)) if !path.contains(&id) => {
            return Err(refused(
                "LOCATION_NOT_IN_JURISDICTION",
                "坐标不在所填辖区内",
                "The coordinates lie outside the jurisdiction given",
            ))
        }
        (_, Some(path)) | (Some((_, path)), None) => path,
        (None, None) => {
            return Err(refused(
                "PLACE_REQUIRED",
                "请提供位置坐标或辖区编码",
                "Give the location or the code of the community or grid",
            ))
        }
    };
    let owner = shiyu_domain::route(reference.directory(), &path, None)?.owner;
    Ok((path, owner))
}

/// Checks and seals a phone number and an ID number.
fn sealed_contacts(
    state: &AppState,
    phone: Option<&str>,
    id_number: Option<&str>,
) -> WebResult<(Option<String>, Option<String>)> {
    let phone = phone.map(str::trim).filter(|p| !p.is_empty());
    let id_number = id_number.map(str::trim).filter(|p| !p.is_empty());
    if let Some(p) = phone {
        if !shiyu_auth::is_valid_mobile(p) {
            return Err(WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "PHONE_INVALID",
                "手机号码格式不正确",
                "The mobile number is not valid",
            ));
        }
    }
    if let Some(id) = id_number {
        if !shiyu_auth::is_valid_id_number(&id.to_uppercase()) {
            return Err(WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "ID_NUMBER_INVALID",
                "身份证号码不正确",
                "The resident ID number is not valid",
            ));
        }
    }
    let seal = |text: Option<&str>| text.map(|t| state.sealer.seal(t)).transpose().map_err(WebError::from);
    Ok((seal(phone)?, seal(id_number.map(str::to_uppercase).as_deref())?))
}

fn check_location(location: Option<LocationView>) -> WebResult<Option<GeoPoint>> {
    match location {
        None => Ok(None),
        Some(LocationView { lon, lat })
            if lon.is_finite()
                && lat.is_finite()
                && (73.0..=136.0).contains(&lon)
                && (3.0..=54.0).contains(&lat) =>
        {
            Ok(Some(GeoPoint { lon, lat }))
        }
        Some(_) => Err(WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "LOCATION_OUTSIDE_AREA",
            "坐标不在服务范围内",
            "The coordinates are outside the area served",
        )),
    }
}

/// What the staff intake and the citizens' intake share, before it is checked and sealed.
pub(super) struct Intake<'a> {
    pub description: String,
    pub address: Option<String>,
    pub location: Option<LocationView>,
    pub jurisdiction: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub id_number: Option<&'a str>,
    pub anonymous: bool,
    pub attachments: &'a [AttachmentView],
    pub channel: Channel,
    pub matter: Option<shiyu_domain::Matter>,
    pub priority: Option<Priority>,
    /// The signed-in citizen whose own report this is.
    pub reporter: Option<shiyu_domain::UserId>,
}

/// The `receive` command for a new report: its place on the map and its command center, the reporter's
/// numbers checked and sealed, the attachments known, a fresh tracking code.
pub(super) async fn intake_command(
    state: &AppState,
    caller: &Caller,
    intake: Intake<'_>,
) -> WebResult<Command> {
    let reference = state.reference.get();
    let location = check_location(intake.location)?;
    let (path, owner) = intake_place(state, &reference, intake.jurisdiction, location)?;
    let (contact_sealed, id_number_sealed) = sealed_contacts(state, intake.phone, intake.id_number)?;
    super::attachments::check_uploaded(state, caller, intake.attachments).await?;
    Ok(Command {
        attachments: attachments(intake.attachments),
        origin: caller.address.clone(),
        ..Command::new(Action::Receive(NewCase {
            channel: intake.channel,
            description: intake.description,
            address: intake.address,
            location,
            path,
            owner,
            reporter: Reporter {
                user: intake.reporter,
                anonymous: intake.anonymous,
                contact_sealed,
                id_number_sealed,
                tracking_code: Some(shiyu_auth::tracking_code(i64::from(state.now().to_beijing().0 .0))),
            },
            matter: intake.matter,
            priority: intake.priority,
        }))
    })
}

fn attachments(views: &[AttachmentView]) -> Vec<AttachmentRef> {
    views.iter().map(|a| AttachmentRef { sha256: a.sha256.clone(), name: a.name.clone() }).collect()
}

/// Takes in a report recorded by staff (hotline agents, grid workers, operators, mediators), a machine
/// client, or a citizen signed in to the app — whose report is then their own (channel `app`, no matter or
/// priority: the command center classifies it), to follow in `GET /api/cases` and rate when closed. With an
/// `Idempotency-Key` header a retried submission returns the same case.
#[utoipa::path(post, path = "/api/cases", tag = "cases", request_body = NewCaseRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "makes the submission safe to retry")),
    responses((status = 201, body = CreatedView), (status = 200, description = "retry of an earlier submission", body = CreatedView),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    headers: HeaderMap,
    JsonBody(request): JsonBody<NewCaseRequest>,
) -> WebResult<(StatusCode, Json<CreatedView>)> {
    let actor = caller.actor()?;
    let key = idempotency_key(&headers, &format!("user:{}", caller.user()?.id.0), &request)?;
    let reference = state.reference.get();
    let channel = parse_name::<Channel>(&request.channel).ok_or_else(|| {
        WebError::invalid(
            format!("未知的渠道 `{}`", request.channel),
            format!("unknown channel `{}`", request.channel),
        )
    })?;
    let matter = match &request.matter {
        None => None,
        Some(code) => Some(reference.matters.get(code).cloned().ok_or_else(|| unknown_matter(code))?),
    };
    let priority = parse_priority(request.priority.as_deref())?;
    // A citizen with an account reports for themself, through the app; classifying is the center's job.
    let citizen = caller.user()?.role == shiyu_domain::Role::Citizen;
    let (channel, matter, priority) =
        if citizen { (Channel::App, None, None) } else { (channel, matter, priority) };
    let command = intake_command(
        &state,
        &caller,
        Intake {
            description: request.description,
            address: request.address,
            location: request.location,
            jurisdiction: request.jurisdiction.as_deref(),
            phone: request.reporter_phone.as_deref(),
            id_number: request.reporter_id_number.as_deref(),
            anonymous: request.anonymous,
            attachments: &request.attachments,
            channel,
            matter,
            priority,
            reporter: citizen.then_some(caller.user()?.id),
        },
    )
    .await?;
    let created = match state.service.receive(key, &command, &actor, state.now()).await {
        Err(ServiceError::Domain(refused)) if refused.kind == ErrorKind::OutOfJurisdiction => {
            return Err(elsewhere(&state, &command, refused).into());
        }
        received => received?,
    };
    let status = if created.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(CreatedView {
            tracking_code: created.state.reporter.tracking_code.clone(),
            case: case_view(&state, &actor, created.id, &created.state, state.now()),
            created: created.created,
        }),
    ))
}

/// A report refused as outside the caller's jurisdiction, saying where the place is and what to do: a grid
/// worker who sees a fallen tree in the next grid needs to know whose it is, not only that it is not theirs.
fn elsewhere(state: &AppState, command: &Command, refused: DomainError) -> DomainError {
    let Action::Receive(new) = &command.action else { return refused };
    let reference = state.reference.get();
    let Some(place) = new.path.last().and_then(|id| reference.jurisdictions.get(id)) else { return refused };
    DomainError::with_reason(
        refused.kind,
        shiyu_domain::Reason::new(
            format!("该位置属于{}（{}），请告知该地网格员或拨打12345热线", place.name, place.code),
            format!(
                "the place lies in {} ({}); tell its grid worker or call the 12345 hotline",
                place.name, place.code
            ),
        ),
    )
}

/// The idempotency key of a request, namespaced by who sent it and by what was sent: a retry (the same key
/// and the same report) finds the first case, while a different report under a key already used — a client
/// that reuses its keys, or two anonymous senders who picked the same one — is a case of its own, never
/// answered with someone else's receipt.
pub fn idempotency_key(
    headers: &HeaderMap,
    sender: &str,
    request: &impl Serialize,
) -> WebResult<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let key =
        value.to_str().ok().map(str::trim).filter(|k| !k.is_empty() && k.len() <= 128).ok_or_else(|| {
            WebError::refused(
                StatusCode::BAD_REQUEST,
                "IDEMPOTENCY_KEY_INVALID",
                "Idempotency-Key 须为1到128个可见字符",
                "Idempotency-Key must be 1 to 128 visible characters",
            )
        })?;
    // Only requests that carry a key pay for the fingerprint.
    let fingerprint = shiyu_auth::sha256_hex(&serde_json::to_vec(request).unwrap_or_default());
    Ok(Some(format!("{sender}:{fingerprint}:{key}")))
}

fn unknown_matter(code: &str) -> WebError {
    WebError::refused(
        StatusCode::UNPROCESSABLE_ENTITY,
        "MATTER_UNKNOWN",
        "事项清单中没有该事项",
        "The matter is not in the catalog",
    )
    .with_details(code.to_string())
}

fn parse_priority(text: Option<&str>) -> WebResult<Option<Priority>> {
    text.map(|t| {
        parse_name::<Priority>(t).ok_or_else(|| {
            WebError::invalid(format!("未知的优先级 `{t}`"), format!("unknown priority `{t}`"))
        })
    })
    .transpose()
}

/// An action on a case, with the reason, evidence and the version it was decided on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    pub action: ActionBody,
    pub note: Option<String>,
    /// 答复: the answer the reporter reads when following the case (reject, close and void only; the note
    /// stays with the staff).
    pub reply: Option<String>,
    #[serde(default)]
    pub attachments: Vec<AttachmentView>,
    /// The `version` the caller looked at; the action is refused with 409 if the case moved on.
    pub expected_version: Option<u64>,
}

/// Every action of the closed loop, named by `type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionBody {
    /// 立案
    Register {
        matter: String,
        #[schema(schema_with = crate::views::priority_names)]
        priority: Option<String>,
    },
    /// 不予立案 (note required)
    Reject {},
    /// 派遣 to a lead department and any assisting ones (联办)
    Dispatch {
        /// Leave out (with `assisting`) to dispatch by the matter catalog, as `GET /api/cases/{id}/route`
        /// suggests; the reasons are then recorded as the basis (派遣依据).
        lead: Option<i64>,
        #[serde(default)]
        assisting: Vec<i64>,
        basis: Option<String>,
    },
    /// 签收 (部门报到)
    Accept {},
    /// 处置反馈 (note required)
    ReportBack {},
    /// 核查; a failure (note required) sends the work back
    Verify { passed: bool },
    /// 结案
    Close {},
    /// 评价 (回访 by the hotline, or the reporter through the public endpoint)
    Rate {
        #[schema(minimum = 1, maximum = 5)]
        score: u8,
        comment: Option<String>,
    },
    /// 就地解决 by a grid worker (note required)
    ResolveOnSpot { matter: String },
    /// 退回 (note required)
    Return {},
    /// 延期申请 (note required)
    RequestExtension { minutes: u32 },
    /// 延期审批 (note required to deny)
    DecideExtension { approve: bool },
    /// 督办 with its own deadline (ms since epoch; note required)
    Supervise { due: i64 },
    /// 上报 to the level above (note required)
    Escalate {},
    /// 合并 into another case
    Merge { into: i64 },
    /// 挂起 (note required)
    Suspend {},
    /// 恢复
    Resume {},
    /// 作废 (note required)
    Void {},
    /// 重新打开 (note required)
    Reopen {},
    /// 领导批示 (note required)
    Instruct {},
}

fn domain_action(body: ActionBody, reference: &Reference, case: &CaseState) -> WebResult<Action> {
    let matter = |code: &str| reference.matters.get(code).cloned().ok_or_else(|| unknown_matter(code));
    let department = |id: i64| {
        let known = reference.departments.get(&DepartmentId(id)).ok_or_else(|| {
            WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "DEPARTMENT_UNKNOWN",
                "部门不存在",
                "The department does not exist",
            )
            .with_details(id.to_string())
        })?;
        if !shiyu_domain::may_dispatch_to(case, known) {
            return Err(WebError::from(DomainError::with_detail(
                ErrorKind::DepartmentOutsideCase,
                format!("{} ({id})", known.name),
            )));
        }
        Ok(known.id)
    };
    Ok(match body {
        ActionBody::Register { matter: code, priority } => {
            Action::Register { matter: matter(&code)?, priority: parse_priority(priority.as_deref())? }
        }
        ActionBody::Reject {} => Action::Reject,
        ActionBody::Dispatch { lead: Some(lead), assisting, basis } => Action::Dispatch {
            lead: department(lead)?,
            assisting: assisting.into_iter().map(department).collect::<WebResult<_>>()?,
            basis,
        },
        ActionBody::Dispatch { lead: None, basis, .. } => {
            let route = catalog_route(reference, case)?;
            let lead = route.lead.ok_or_else(|| {
                WebError::invalid("事项目录未指定主办部门", "the catalog names no lead department")
            })?;
            let basis = match basis {
                Some(own) => format!("{own}；{}", route.basis),
                None => route.basis,
            };
            Action::Dispatch { lead, assisting: route.assisting, basis: Some(basis) }
        }
        ActionBody::Accept {} => Action::Accept,
        ActionBody::ReportBack {} => Action::ReportBack,
        ActionBody::Verify { passed } => Action::Verify { passed },
        ActionBody::Close {} => Action::Close,
        ActionBody::Rate { score, comment } => Action::Rate { score, comment },
        ActionBody::ResolveOnSpot { matter: code } => Action::ResolveOnSpot { matter: matter(&code)? },
        ActionBody::Return {} => Action::Return,
        ActionBody::RequestExtension { minutes } => Action::RequestExtension { minutes },
        ActionBody::DecideExtension { approve } => Action::DecideExtension { approve },
        ActionBody::Supervise { due } => Action::Supervise { due: Timestamp(due) },
        ActionBody::Escalate {} => Action::Escalate,
        ActionBody::Merge { into } => Action::Merge { into: CaseId(into) },
        ActionBody::Suspend {} => Action::Suspend,
        ActionBody::Resume {} => Action::Resume,
        ActionBody::Void {} => Action::Void,
        ActionBody::Reopen {} => Action::Reopen,
        ActionBody::Instruct {} => Action::Instruct,
    })
}

/// Takes an action on a case. The domain decides whether the caller may (role, jurisdiction, department)
/// and whether the case's state allows it.
#[utoipa::path(post, path = "/api/cases/{id}/actions", tag = "cases", params(("id" = i64, Path)), request_body = ActionRequest,
    responses((status = 200, body = CaseView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "the state forbids it, or someone changed the case first", body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn act(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(id): Path<i64>,
    JsonBody(request): JsonBody<ActionRequest>,
) -> WebResult<Json<CaseView>> {
    let actor = caller.actor()?;
    let current = visible_case(&state, &actor, CaseId(id)).await?;
    super::attachments::check_uploaded(&state, &caller, &request.attachments).await?;
    let action = domain_action(request.action, &state.reference.get(), &current)?;
    let command = Command {
        action,
        note: request.note,
        attachments: attachments(&request.attachments),
        origin: caller.address.clone(),
        reply: request.reply,
    };
    let now = state.now();
    let case = state.service.act(CaseId(id), request.expected_version, &command, &actor, now).await?;
    Ok(Json(case_view(&state, &actor, CaseId(id), &case, now)))
}

/// The catalog's answer for a case: where it happened, its matter, who leads, who assists, who verifies.
fn catalog_route(reference: &Reference, case: &CaseState) -> WebResult<shiyu_domain::Route> {
    let matter = case.matter.as_ref().and_then(|m| reference.matters.get(&m.code)).ok_or_else(|| {
        WebError::refused(
            StatusCode::CONFLICT,
            "MATTER_REQUIRED",
            "请先立案并确定事项，再按权责清单派遣",
            "Register the case with its matter before dispatching it by the catalog",
        )
    })?;
    Ok(shiyu_domain::route(reference.directory(), &case.path, Some(matter))?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    /// The command center that should register and dispatch the case.
    pub owner: i64,
    pub owner_name: String,
    pub lead_department: Option<i64>,
    pub assisting_departments: Vec<i64>,
    /// The grid worker who verifies on the spot.
    pub verifier: Option<i64>,
    /// Why (派遣依据), in Chinese: recorded as the basis when the case is dispatched by the catalog.
    pub basis: String,
}

/// Where the catalog sends a case (智能派遣): by its place and, once registered, its matter. Dispatching with
/// the lead department left out follows this answer.
#[utoipa::path(get, path = "/api/cases/{id}/route", tag = "cases", params(("id" = i64, Path)),
    responses((status = 200, body = RouteView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn route(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> WebResult<Json<RouteView>> {
    let actor = caller.actor()?;
    let case = visible_case(&state, &actor, CaseId(id)).await?;
    if !shiyu_domain::sees_handling(&actor) {
        return Err(WebError::not_found());
    }
    let reference = state.reference.get();
    let route = match &case.matter {
        Some(_) => catalog_route(&reference, &case)?,
        None => shiyu_domain::route(reference.directory(), &case.path, None)?,
    };
    Ok(Json(RouteView {
        owner: route.owner.0,
        owner_name: reference.jurisdictions.get(&route.owner).map(|j| j.name.clone()).unwrap_or_default(),
        lead_department: route.lead.map(|d| d.0),
        assisting_departments: route.assisting.iter().map(|d| d.0).collect(),
        verifier: route.verifier.map(|u| u.0),
        basis: route.basis,
    }))
}
