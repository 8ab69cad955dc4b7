//! The signed-in user's notifications, and the settings every deadline runs on: escalation rules and the
//! working calendar (read by staff, edited by admins).

use super::{page_size, require, JsonBody, JsonList};
use crate::auth::{Caller, SignedIn};
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::views::Page;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shiyu_domain::{Capability, Date, EscalationRule, EscalationRules, WorkCalendar, YearDays};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationView {
    pub id: i64,
    pub case_id: i64,
    /// The event's kind: `dispatched`, `warned`, `overdue`, `escalated`, `supervised`, …
    pub kind: String,
    pub title: String,
    /// Also sent by SMS.
    pub urgent: bool,
    pub at: i64,
    pub read_at: Option<i64>,
}

impl NotificationView {
    pub fn of(n: shiyu_store::Notification) -> NotificationView {
        NotificationView {
            id: n.id,
            case_id: n.case_id.0,
            kind: n.kind,
            title: n.title,
            urgent: n.urgent,
            at: n.at.0,
            read_at: n.read_at.map(|t| t.0),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Only those not read yet.
    #[serde(default)]
    pub unread: bool,
    /// The `next` cursor of the previous page (notifications come newest first).
    pub before: Option<i64>,
    /// Page size, 1 to 200 (default 50; more gives 200).
    pub limit: Option<u32>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(NotificationParams),
    responses((status = 200, body = Page<NotificationView>), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<NotificationParams>,
    _known: super::KnownParams<(NotificationParams,)>,
) -> WebResult<Json<Page<NotificationView>>> {
    let user = caller.user()?.id;
    let limit = page_size(params.limit)?;
    let found = state.store.notifications(user, params.unread, params.before, limit).await?;
    let next = (found.len() == limit as usize).then(|| found.last().map(|n| n.id)).flatten();
    Ok(Json(Page { items: found.into_iter().map(NotificationView::of).collect(), next }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    pub unread: u64,
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/api/notifications/unread", tag = "notifications",
    responses((status = 200, body = UnreadCount), (status = 401, body = ErrorBody)))]
pub async fn unread(State(state): State<AppState>, caller: Caller) -> WebResult<Json<UnreadCount>> {
    let user = caller.user()?.id;
    Ok(Json(UnreadCount { unread: state.store.unread_notifications(user).await? }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The notifications to mark read (at most 500); without it, all of the caller's.
    pub ids: Option<Vec<i64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Marked {
    pub marked: u64,
}

/// Marks the caller's notifications read; others' ids are ignored.
#[utoipa::path(post, path = "/api/notifications/read", tag = "notifications", request_body = MarkRead,
    responses((status = 200, body = Marked), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    JsonBody(request): JsonBody<MarkRead>,
) -> WebResult<Json<Marked>> {
    let user = caller.user()?.id;
    if request.ids.as_ref().is_some_and(|ids| ids.len() > 500) {
        return Err(WebError::invalid("一次最多500个编号", "at most 500 ids at once"));
    }
    let marked = state.store.mark_notifications_read(user, request.ids.as_deref(), state.now()).await?;
    Ok(Json(Marked { marked }))
}

/// The escalation rules in force.
#[utoipa::path(get, path = "/api/escalation-rules", tag = "deadlines",
    responses((status = 200, body = Vec<EscalationRuleView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn rules(State(state): State<AppState>, caller: Caller) -> WebResult<Json<Vec<EscalationRule>>> {
    require(&caller, Capability::ReadReferenceData)?;
    Ok(Json(state.service.rules().escalation.0.clone()))
}

/// One escalation rule, as documented for the API (the domain's `EscalationRule`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // describes the JSON shape only
pub struct EscalationRuleView {
    /// Stable, e.g. `township_overdue`; named in the history of every case it escalates.
    pub code: String,
    pub name: String,
    /// `township` or `county`: the owning command center's level the rule watches.
    pub level: String,
    /// Category codes the rule is limited to; empty for all. A rule naming the case's category wins.
    pub categories: Vec<String>,
    /// `{"kind": "overdue", "working_minutes": 840}` or `{"kind": "supervision_lapsed"}`.
    #[schema(value_type = Object)]
    pub trigger: serde_json::Value,
}

/// Replaces the escalation rules (admins). They plan the escalations of cases that turn red from now on.
#[utoipa::path(put, path = "/api/escalation-rules", tag = "deadlines", request_body = Vec<EscalationRuleView>,
    responses((status = 200, body = Vec<EscalationRuleView>), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_rules(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    JsonList(rules): JsonList<EscalationRule>,
) -> WebResult<Json<Vec<EscalationRule>>> {
    require(&caller, Capability::ManageDeadlines)?;
    let rules = EscalationRules(rules);
    rules.check()?;
    let reference = state.reference.get();
    let known = |code: &String| reference.categories.iter().any(|c| &c.code == code);
    if let Some(unknown) = rules.0.iter().flat_map(|r| &r.categories).find(|c| !known(c)) {
        return Err(WebError::invalid(
            format!("未知的事项类别 `{unknown}`"),
            format!("unknown category `{unknown}`"),
        ));
    }
    let now = state.now();
    shiyu_sla::settings::set_escalation_rules(&state.service, rules.clone(), now).await?;
    let detail = rules.0.iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(",");
    state.store.audit(vec![caller.audit(now, "escalation_rules_set", None, Some(detail))]).await?;
    Ok(Json(rules.0))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpecialDay {
    /// `YYYY-MM-DD`
    pub date: String,
    /// e.g. 国庆节, 国庆节调休
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarYear {
    pub year: i32,
    /// Days off that would otherwise be working days.
    pub holidays: Vec<SpecialDay>,
    /// Weekend days that are worked (调休).
    pub workdays: Vec<SpecialDay>,
    /// Open cases whose deadline moved (only after a change).
    pub rescheduled: Option<usize>,
    /// false when the calendar names no holiday or adjusted day for the year: deadlines then count every
    /// weekday as worked until an admin enters the year's arrangement (国务院办公厅 publishes it late in the
    /// year before).
    pub configured: bool,
}

fn year_view(year: i32, calendar: &WorkCalendar, rescheduled: Option<usize>) -> CalendarYear {
    let days = calendar.year(year);
    let view = |list: &[(Date, String)]| {
        list.iter().map(|(date, name)| SpecialDay { date: date.to_string(), name: name.clone() }).collect()
    };
    CalendarYear {
        year,
        holidays: view(&days.holidays),
        workdays: view(&days.workdays),
        rescheduled,
        configured: calendar.configured_years().contains(&year),
    }
}

fn check_year(year: i32) -> WebResult<()> {
    if (2000..=2100).contains(&year) {
        Ok(())
    } else {
        Err(WebError::invalid("年份须在2000到2100之间", "the year must be from 2000 to 2100"))
    }
}

/// The working calendar's holidays and adjusted working days of one year.
#[utoipa::path(get, path = "/api/calendar/{year}", tag = "deadlines", params(("year" = i32, Path)),
    responses((status = 200, body = CalendarYear), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn calendar(
    State(state): State<AppState>,
    caller: Caller,
    Path(year): Path<i32>,
) -> WebResult<Json<CalendarYear>> {
    require(&caller, Capability::ReadReferenceData)?;
    check_year(year)?;
    Ok(Json(year_view(year, &state.service.rules().calendar, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarChange {
    pub holidays: Vec<SpecialDay>,
    pub workdays: Vec<SpecialDay>,
    /// Why the calendar changed; written into the history of every case whose deadline moves.
    pub reason: String,
}

/// Replaces one year's holidays and adjusted working days (admins), then counts every open case's deadline
/// again on the new calendar, recording the reason in each history that changes.
#[utoipa::path(put, path = "/api/calendar/{year}", tag = "deadlines", params(("year" = i32, Path)), request_body = CalendarChange,
    responses((status = 200, body = CalendarYear), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_calendar(
    State(state): State<AppState>,
    SignedIn(caller): SignedIn,
    Path(year): Path<i32>,
    JsonBody(change): JsonBody<CalendarChange>,
) -> WebResult<Json<CalendarYear>> {
    require(&caller, Capability::ManageDeadlines)?;
    check_year(year)?;
    let reason = change.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(WebError::invalid(
            "须填写1到200个字符的理由",
            "a reason of 1 to 200 characters is required",
        ));
    }
    if change.holidays.len() + change.workdays.len() > 366 {
        return Err(WebError::invalid("每年最多366个特殊日", "at most 366 special days a year"));
    }
    let parse = |list: &[SpecialDay]| -> WebResult<Vec<(Date, String)>> {
        list.iter()
            .map(|day| {
                let date = Date::parse(day.date.trim()).ok_or_else(|| {
                    WebError::invalid(
                        format!("`{}` 不是日期（YYYY-MM-DD）", day.date),
                        format!("`{}` is not a date (YYYY-MM-DD)", day.date),
                    )
                })?;
                if day.name.chars().count() > 50 {
                    return Err(WebError::invalid(
                        "日期名称最多50个字符",
                        "a day's name has at most 50 characters",
                    ));
                }
                Ok((date, day.name.trim().to_string()))
            })
            .collect()
    };
    let days = YearDays { holidays: parse(&change.holidays)?, workdays: parse(&change.workdays)? };
    let now = state.now();
    let outcome =
        shiyu_sla::settings::set_calendar_year(&state.service, year, days.clone(), now, reason).await?;
    let detail = format!(
        "{} holidays, {} workdays, {} cases rescheduled",
        days.holidays.len(),
        days.workdays.len(),
        outcome.moved
    );
    state
        .store
        .audit(vec![caller.audit(now, "calendar_set", Some(format!("calendar:{year}")), Some(detail))])
        .await?;
    Ok(Json(year_view(year, &state.service.rules().calendar, Some(outcome.moved))))
}
