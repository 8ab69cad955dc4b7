//! Statistics (分析研判) and evaluation (行政问效) over the analytics projection, always within the caller's
//! jurisdiction or department: group-by counts, hotspots, period-over-period change, indicators and
//! rankings, and the indicator weights per year.

use super::{require, JsonBody};
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_analytics::{Bucket, Dim, Filter, Group, Indicators, Key, Projection, Stats, Unit, Weights};
use shiyu_domain::{Capability, Channel, DepartmentId, Level, Scope, Status, Timestamp};
use std::sync::RwLockReadGuard;
use utoipa::{IntoParams, ToSchema};

/// The projection, once it holds all history: while a server's start-up rebuild is still folding the log in,
/// every answer would count only part of it, so the caller is told to come back instead (503).
pub fn projection(state: &AppState) -> WebResult<RwLockReadGuard<'_, Projection>> {
    if !state.analytics.is_ready() {
        let folded = state.analytics.read().seq;
        return Err(WebError::refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "STATISTICS_REBUILDING",
            "统计数据正在根据事件日志重建，请稍后再试",
            "The statistics are being rebuilt from the event log; try again shortly",
        )
        .with_details(format!("{folded} events folded in so far")));
    }
    Ok(state.analytics.read())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// Reports received from this moment (ms since the epoch, inclusive).
    pub from: Option<i64>,
    /// … up to this moment (exclusive).
    pub to: Option<i64>,
    /// Narrow to this jurisdiction (code), which must lie within the caller's.
    pub within: Option<String>,
    /// Only cases led by this department (id).
    pub department: Option<i64>,
    /// Category code.
    pub category: Option<String>,
    /// Matter code.
    pub matter: Option<String>,
    #[param(schema_with = crate::views::channel_names)]
    pub channel: Option<String>,
    #[param(schema_with = crate::views::status_names)]
    pub status: Option<String>,
}

/// The caller's filter: what they asked, narrowed to what they may see.
fn filter_for(state: &AppState, caller: &Caller, params: &FilterParams) -> WebResult<Filter> {
    require(caller, Capability::ReadStatistics)?;
    let user = caller.user()?;
    let reference = state.reference.get();
    let level_of = |id| reference.jurisdictions.get(&id).map(|j| j.level);
    let mut filter = Filter {
        from: params.from.map(Timestamp),
        to: params.to.map(Timestamp),
        department: params.department.map(DepartmentId),
        category: params.category.clone(),
        matter: params.matter.clone(),
        ..Filter::default()
    };
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if from >= to {
            return Err(WebError::invalid(
                "开始时间 `from` 须早于结束时间 `to`",
                "`from` must be before `to`",
            ));
        }
    }
    if let Some(channel) = &params.channel {
        let found = Channel::ALL.iter().find(|c| shiyu_analytics::query::channel_name(c) == channel.as_str());
        filter.channel = Some(*found.ok_or_else(|| {
            WebError::invalid(format!("未知的渠道 `{channel}`"), format!("unknown channel `{channel}`"))
        })?);
    }
    if let Some(status) = &params.status {
        let found = Status::ALL.iter().find(|s| s.as_str() == status.as_str());
        filter.status = Some(*found.ok_or_else(|| {
            WebError::invalid(format!("未知的状态 `{status}`"), format!("unknown status `{status}`"))
        })?);
    }
    match user.scope {
        Scope::Jurisdiction(own) => {
            // A place the reference data does not know would otherwise read as the whole city.
            filter.within = Some((level_of(own).ok_or_else(WebError::forbidden)?, own));
        }
        Scope::Department(own) => {
            if params.department.is_some_and(|d| d != own.0) {
                return Err(WebError::forbidden());
            }
            filter.department = Some(own);
        }
        Scope::Unbound => return Err(WebError::forbidden()),
    }
    if let Some(code) = &params.within {
        let id = *reference.by_code.get(code).ok_or_else(|| {
            WebError::invalid(format!("未知的辖区编码 `{code}`"), format!("unknown jurisdiction `{code}`"))
        })?;
        let path = reference.path_to(id).unwrap_or_default();
        // Narrowing only: a jurisdiction outside the caller's is not found, as a case would not be.
        if let Some((_, own)) = filter.within {
            if !path.contains(&own) {
                return Err(WebError::not_found());
            }
        }
        filter.within = Some((level_of(id).unwrap_or(Level::City), id));
    }
    Ok(filter)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    pub cases: u64,
    pub closed: u64,
    pub open: u64,
    pub overdue: u64,
    pub rated: u64,
    pub satisfied: u64,
    /// closed ÷ cases
    pub closed_rate: Option<f64>,
    /// satisfied ÷ rated
    pub satisfaction_rate: Option<f64>,
    /// overdue ÷ cases
    pub overdue_rate: Option<f64>,
}

impl StatsView {
    fn of(s: &Stats) -> StatsView {
        let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        StatsView {
            cases: s.cases,
            closed: s.closed,
            open: s.open,
            overdue: s.overdue,
            rated: s.rated,
            satisfied: s.satisfied,
            closed_rate: rate(s.closed, s.cases),
            satisfaction_rate: rate(s.satisfied, s.rated),
            overdue_rate: rate(s.overdue, s.cases),
        }
    }
}

/// What a group's key holds: a number (an id), text (a code or name) or null.
fn id_code_or_null() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .description(Some(
            "A jurisdiction's or department's id (a number) or a code (text); null when the case has none \
             (not yet classified, not dispatched).",
        ))
        .build()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// The dimension: category, matter, county, …
    pub dim: String,
    #[schema(schema_with = id_code_or_null)]
    pub value: serde_json::Value,
    /// The name to show (Chinese), when known.
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub keys: Vec<KeyView>,
    /// The bucket's start (ms), when bucketed.
    pub bucket: Option<i64>,
    #[serde(flatten)]
    pub stats: StatsView,
}

fn key_view(state: &AppState, dim: Dim, key: &Key) -> KeyView {
    let reference = state.reference.get();
    let (value, name) = match key {
        Key::None => (serde_json::Value::Null, None),
        Key::Id(id) => {
            let name = match dim {
                Dim::Department => reference.departments.get(&DepartmentId(*id)).map(|d| d.name.clone()),
                _ => reference.jurisdictions.get(&shiyu_domain::JurisdictionId(*id)).map(|j| j.name.clone()),
            };
            (serde_json::json!(id), name)
        }
        Key::Code(code) => {
            let name = match dim {
                Dim::Category => {
                    reference.categories.iter().find(|c| &c.code == code).map(|c| c.name.clone())
                }
                Dim::Matter => reference.matters.get(code).map(|m| m.name.clone()),
                Dim::Status => {
                    Status::ALL.iter().find(|s| s.as_str() == code).map(|s| s.label_zh().to_string())
                }
                Dim::Channel => Channel::ALL
                    .iter()
                    .find(|c| shiyu_analytics::query::channel_name(c) == code)
                    .map(|c| c.label_zh().to_string()),
                _ => None,
            };
            (serde_json::json!(code), name)
        }
    };
    KeyView { dim: dim.as_str().to_string(), value, name }
}

fn group_view(state: &AppState, by: &[Dim], group: &Group) -> GroupView {
    GroupView {
        keys: by.iter().zip(&group.keys).map(|(dim, key)| key_view(state, *dim, key)).collect(),
        bucket: group.bucket.map(|b| b.0),
        stats: StatsView::of(&group.stats),
    }
}

fn dim_names() -> utoipa::openapi::schema::Object {
    crate::views::names_schema(&Dim::ALL, "What the cases are grouped by.")
}

fn bucket_names() -> utoipa::openapi::schema::Object {
    crate::views::names_schema(&shiyu_analytics::Bucket::ALL, "A span of time.")
}

fn unit_names() -> utoipa::openapi::schema::Object {
    crate::views::names_schema(&shiyu_analytics::evaluate::Unit::ALL, "Who is evaluated.")
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupParams {
    /// Up to two of category, matter, county, township, community, grid, department, channel, status,
    /// comma-separated; none for one total.
    pub by: Option<String>,
    /// Beijing time; weeks start on Monday.
    #[param(schema_with = bucket_names)]
    pub bucket: Option<String>,
}

fn parse_dims(text: Option<&str>) -> WebResult<Vec<Dim>> {
    let dims: Vec<Dim> = text
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            Dim::parse(d).ok_or_else(|| {
                WebError::invalid(format!("未知的维度 `{d}`"), format!("unknown dimension `{d}`"))
            })
        })
        .collect::<WebResult<_>>()?;
    if dims.len() > 2 {
        return Err(WebError::invalid("最多按两个维度分组", "group by at most two dimensions"));
    }
    Ok(dims)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GroupsView {
    pub groups: Vec<GroupView>,
    /// How long the projection took to answer, in milliseconds.
    pub took_ms: f64,
}

/// Counts and rates of cases grouped by up to two dimensions and a time bucket.
#[utoipa::path(get, path = "/api/analytics/groups", tag = "analytics", params(FilterParams, GroupParams),
    responses((status = 200, body = GroupsView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "the statistics are still being rebuilt at start-up", body = ErrorBody)))]
pub async fn groups(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FilterParams>,
    Query(grouping): Query<GroupParams>,
    _known: super::KnownParams<(FilterParams, GroupParams)>,
) -> WebResult<Json<GroupsView>> {
    let filter = filter_for(&state, &caller, &params)?;
    let by = parse_dims(grouping.by.as_deref())?;
    let bucket = match grouping.bucket.as_deref() {
        Some(text) => Some(Bucket::parse(text).ok_or_else(|| {
            WebError::invalid(format!("未知的时间粒度 `{text}`"), format!("unknown bucket `{text}`"))
        })?),
        None => None,
    };
    let started = std::time::Instant::now();
    let found = projection(&state)?.group(&filter, &by, bucket, state.now());
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(GroupsView { groups: found.iter().map(|g| group_view(&state, &by, g)).collect(), took_ms }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    #[param(schema_with = dim_names, required = true)]
    pub dim: String,
    /// How many (1–100, default 10).
    pub n: Option<usize>,
}

/// The places, matters or departments with most cases (热点), most first.
#[utoipa::path(get, path = "/api/analytics/top", tag = "analytics", params(FilterParams, TopParams),
    responses((status = 200, body = Vec<GroupView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "the statistics are still being rebuilt at start-up", body = ErrorBody)))]
pub async fn top(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FilterParams>,
    Query(top): Query<TopParams>,
    _known: super::KnownParams<(FilterParams, TopParams)>,
) -> WebResult<Json<Vec<GroupView>>> {
    let filter = filter_for(&state, &caller, &params)?;
    let dim = Dim::parse(&top.dim).ok_or_else(|| {
        WebError::invalid(format!("未知的维度 `{}`", top.dim), format!("unknown dimension `{}`", top.dim))
    })?;
    let n = super::at_least_one("n", top.n.unwrap_or(10))?.min(100);
    let found = projection(&state)?.top(&filter, dim, n, state.now());
    Ok(Json(found.iter().map(|g| group_view(&state, &[dim], g)).collect()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    pub from: i64,
    pub to: i64,
    pub current: StatsView,
    /// The same length of time just before `from`.
    pub previous: StatsView,
    /// (current − previous) ÷ previous cases; null when the previous period had none.
    pub change: Option<f64>,
}

/// Cases in a period against the period of the same length just before it (环比). Unlike the other
/// statistics, `from` and `to` are required here: they are the period.
#[utoipa::path(get, path = "/api/analytics/change", tag = "analytics", params(FilterParams),
    responses((status = 200, body = ChangeView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "the statistics are still being rebuilt at start-up", body = ErrorBody)))]
pub async fn change(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FilterParams>,
    _known: super::KnownParams<(FilterParams,)>,
) -> WebResult<Json<ChangeView>> {
    let filter = filter_for(&state, &caller, &params)?;
    let (Some(from), Some(to)) = (filter.from, filter.to) else {
        return Err(WebError::invalid(
            "比较两个时段须给出 `from` 和 `to`",
            "`from` and `to` are needed to compare periods",
        ));
    };
    let length = to.0 - from.0;
    let previous = Filter { from: Some(Timestamp(from.0 - length)), to: Some(from), ..filter.clone() };
    let projection = projection(&state)?;
    let total =
        |f: &Filter| projection.group(f, &[], None, state.now()).first().map(|g| g.stats).unwrap_or_default();
    let (now_stats, before) = (total(&filter), total(&previous));
    let change =
        (before.cases > 0).then(|| (now_stats.cases as f64 - before.cases as f64) / before.cases as f64);
    Ok(Json(ChangeView {
        from: from.0,
        to: to.0,
        current: StatsView::of(&now_stats),
        previous: StatsView::of(&before),
        change,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RatioView {
    pub numerator: u64,
    pub denominator: u64,
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IndicatorsView {
    pub rank: u32,
    pub id: i64,
    pub name: Option<String>,
    pub cases: u64,
    pub response: RatioView,
    pub resolution: RatioView,
    pub satisfaction: RatioView,
    pub registration_on_time: RatioView,
    pub dispatch_on_time: RatioView,
    pub handling_on_time: RatioView,
    pub verification_on_time: RatioView,
    pub rework: RatioView,
    pub returned: RatioView,
    pub overdue: u64,
    pub extensions: u64,
    pub handling_hours_avg: Option<f64>,
    pub handling_hours_p90: Option<f64>,
    pub score: Option<f64>,
}

fn ratio(r: &shiyu_analytics::Ratio) -> RatioView {
    RatioView { numerator: r.numerator, denominator: r.denominator, rate: r.rate() }
}

pub fn indicators_view(state: &AppState, unit: Unit, i: &Indicators) -> IndicatorsView {
    let reference = state.reference.get();
    let name = match unit {
        Unit::Department => reference.departments.get(&DepartmentId(i.unit)).map(|d| d.name.clone()),
        _ => reference.jurisdictions.get(&shiyu_domain::JurisdictionId(i.unit)).map(|j| j.name.clone()),
    };
    IndicatorsView {
        rank: i.rank,
        id: i.unit,
        name,
        cases: i.cases,
        response: ratio(&i.response),
        resolution: ratio(&i.resolution),
        satisfaction: ratio(&i.satisfaction),
        registration_on_time: ratio(&i.registration_on_time),
        dispatch_on_time: ratio(&i.dispatch_on_time),
        handling_on_time: ratio(&i.handling_on_time),
        verification_on_time: ratio(&i.verification_on_time),
        rework: ratio(&i.rework),
        returned: ratio(&i.returned),
        overdue: i.overdue,
        extensions: i.extensions,
        handling_hours_avg: i.handling_hours_avg,
        handling_hours_p90: i.handling_hours_p90,
        score: i.score,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvaluationParams {
    #[param(schema_with = unit_names, required = true)]
    pub unit: String,
    /// Only the first `n` of the ranking (the whole ranking when left out: every grid of a city is some
    /// thousands).
    pub n: Option<usize>,
}

/// The year whose weights apply to a period: the year (Beijing time) its start falls in.
fn year_of(filter: &Filter, now: Timestamp) -> i32 {
    filter.from.unwrap_or(now).to_beijing().0.ymd().0
}

pub async fn weights_for(state: &AppState, year: i32) -> WebResult<Weights> {
    match state.store.setting(&format!("evaluation_weights:{year}")).await? {
        Some(body) => serde_json::from_str(&body)
            .map_err(|e| WebError::Store(shiyu_store::StoreError::Other(format!("stored weights: {e}")))),
        None => Ok(Weights::default()),
    }
}

/// Each unit's indicators (行政问效) over the cases received in the period, ranked by the composite score
/// under the weights of the period's year. Definitions: docs/indicators.md.
#[utoipa::path(get, path = "/api/evaluation", tag = "analytics", params(FilterParams, EvaluationParams),
    responses((status = 200, body = Vec<IndicatorsView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "the statistics are still being rebuilt at start-up", body = ErrorBody)))]
pub async fn evaluation(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FilterParams>,
    Query(evaluation): Query<EvaluationParams>,
    _known: super::KnownParams<(FilterParams, EvaluationParams)>,
) -> WebResult<Json<Vec<IndicatorsView>>> {
    let filter = filter_for(&state, &caller, &params)?;
    let unit = Unit::parse(&evaluation.unit).ok_or_else(|| {
        WebError::invalid(
            format!("未知的考核对象类型 `{}`", evaluation.unit),
            format!("unknown unit `{}`", evaluation.unit),
        )
    })?;
    let weights = weights_for(&state, year_of(&filter, state.now())).await?;
    let first = evaluation.n.map(|n| super::at_least_one("n", n)).transpose()?.unwrap_or(usize::MAX);
    let ranked = projection(&state)?.evaluate(&filter, unit, &weights, state.now());
    Ok(Json(ranked.iter().take(first).map(|i| indicators_view(&state, unit, i)).collect()))
}

/// The composite score's weights for a year (defaults until an admin sets them).
#[utoipa::path(get, path = "/api/evaluation/weights/{year}", tag = "analytics", params(("year" = i32, Path, minimum = 2000, maximum = 2100)),
    responses((status = 200, body = WeightsSchema), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn weights(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<i32>,
) -> WebResult<Json<Weights>> {
    if !(shiyu_domain::role_may(caller.user()?.role, Capability::ReadStatistics)
        || shiyu_domain::role_may(caller.user()?.role, Capability::ManageEvaluation))
    {
        return Err(WebError::forbidden());
    }
    check_year(year)?;
    Ok(Json(weights_for(&state, year).await?))
}

/// The OpenAPI shape of [`Weights`], made from the names serde gives its fields so that the two cannot
/// drift apart: every indicator's weight, a number from 0 to `MOST_WEIGHT`.
#[derive(Debug)]
pub struct WeightsSchema;

impl utoipa::PartialSchema for WeightsSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        let defaults = serde_json::to_value(Weights::default()).unwrap_or_default();
        let mut schema = ObjectBuilder::new()
            .description(Some(
                "考核权重: the composite score's weight of each indicator (relative; at least one above 0).",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for (name, default) in defaults.as_object().into_iter().flatten() {
            let weight = ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .maximum(Some(shiyu_analytics::MOST_WEIGHT))
                .default(Some(default.clone()));
            schema = schema.property(name, weight).required(name);
        }
        schema.into()
    }
}

impl ToSchema for WeightsSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Weights".into()
    }
}

/// The years weights are kept for, read and written alike.
fn check_year(year: i32) -> WebResult<()> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(WebError::invalid("年份须在2000到2100之间", "the year must be from 2000 to 2100"))
    }
}

/// Sets a year's weights (admins): each finite and not negative, at least one above zero.
#[utoipa::path(put, path = "/api/evaluation/weights/{year}", tag = "analytics", params(("year" = i32, Path, minimum = 2000, maximum = 2100)), request_body = WeightsSchema,
    responses((status = 200, body = WeightsSchema), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_weights(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(year): Path<i32>,
    JsonBody(weights): JsonBody<Weights>,
) -> WebResult<Json<Weights>> {
    require(&caller, Capability::ManageEvaluation)?;
    check_year(year)?;
    weights.check().map_err(|why| WebError::invalid(why.zh, why.en))?;
    let now = state.now();
    let body = serde_json::to_string(&weights).map_err(shiyu_store::StoreError::from)?;
    state.store.put_setting(&format!("evaluation_weights:{year}"), &body, now).await?;
    state
        .store
        .audit(vec![caller.audit(now, "evaluation_weights_set", Some(format!("year:{year}")), Some(body))])
        .await?;
    Ok(Json(weights))
}
