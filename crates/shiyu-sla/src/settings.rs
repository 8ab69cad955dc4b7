//! The deadline settings admins edit at run time — escalation rules and the working calendar's special days
//! per year — kept in the store's settings table so that every node and every restart uses the same.

use shiyu_domain::{EscalationRules, Rules, Timestamp, WorkCalendar, YearDays};
use shiyu_store::{CaseService, Store, StoreError, StoreResult};
use std::collections::BTreeMap;

pub const ESCALATION_RULES: &str = "escalation_rules";
/// Edited years of the calendar: `{year: {holidays, workdays}}`, applied over the configured calendar.
pub const CALENDAR_YEARS: &str = "calendar_years";

fn parse<T: serde::de::DeserializeOwned>(name: &str, body: &str) -> StoreResult<T> {
    serde_json::from_str(body).map_err(|e| StoreError::Other(format!("setting {name} is not readable: {e}")))
}

/// `base` (from the configuration) with what admins changed over the API.
pub async fn stored_rules(store: &dyn Store, mut base: Rules) -> StoreResult<Rules> {
    if let Some(body) = store.setting(ESCALATION_RULES).await? {
        base.escalation = parse::<EscalationRules>(ESCALATION_RULES, &body)?;
    }
    for (year, days) in edited_years(store).await? {
        base.calendar = base
            .calendar
            .with_year(year, &days)
            .map_err(|e| StoreError::Other(format!("setting {CALENDAR_YEARS}: {e}")))?;
    }
    Ok(base)
}

async fn edited_years(store: &dyn Store) -> StoreResult<BTreeMap<i32, YearDays>> {
    match store.setting(CALENDAR_YEARS).await? {
        Some(body) => parse(CALENDAR_YEARS, &body),
        None => Ok(BTreeMap::new()),
    }
}

/// Stores new escalation rules and puts them into effect. They plan the escalations of cases that turn red
/// from now on; an escalation already planned keeps its rule and time.
pub async fn set_escalation_rules(
    service: &CaseService,
    rules: EscalationRules,
    now: Timestamp,
) -> StoreResult<()> {
    let body = serde_json::to_string(&rules)?;
    service.store().put_setting(ESCALATION_RULES, &body, now).await?;
    service.set_rules(Rules { escalation: rules, ..(*service.rules()).clone() });
    Ok(())
}

/// What a calendar change did to the open cases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescheduled {
    pub moved: usize,
    pub failed: usize,
}

/// Stores `year`'s special days, puts the new calendar into effect, and counts every open case's deadline
/// again on it, recording `reason` in each history that changes.
pub async fn set_calendar_year(
    service: &CaseService,
    year: i32,
    days: YearDays,
    now: Timestamp,
    reason: &str,
) -> Result<Rescheduled, shiyu_store::ServiceError> {
    let old: WorkCalendar = service.rules().calendar.clone();
    let calendar = old.with_year(year, &days).map_err(|e| {
        shiyu_domain::DomainError::with_detail(shiyu_domain::ErrorKind::CalendarInvalid, e.message)
    })?;
    let store = service.store();
    let mut years = edited_years(store.as_ref()).await?;
    years.insert(year, days);
    store.put_setting(CALENDAR_YEARS, &serde_json::to_string(&years).map_err(StoreError::from)?, now).await?;
    service.set_rules(Rules { calendar, ..(*service.rules()).clone() });
    let mut outcome = Rescheduled::default();
    let open: Vec<_> = store.alarms().await?.into_iter().map(|(id, _)| id).collect();
    for chunk in open.chunks(64) {
        let results =
            futures_util::future::join_all(chunk.iter().map(|id| service.reschedule(*id, &old, now, reason)))
                .await;
        for (id, result) in chunk.iter().zip(results) {
            match result {
                Ok(Some(_)) => outcome.moved += 1,
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(case = id.0, %error, "deadline not counted again after the calendar change");
                    outcome.failed += 1;
                }
            }
        }
    }
    Ok(outcome)
}
