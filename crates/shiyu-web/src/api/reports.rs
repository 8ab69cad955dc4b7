//! The monthly report (月度分析报告) over the API, and the pieces `shiyu report` shares with it.

use super::require;
use crate::auth::Caller;
use crate::errors::{ErrorBody, WebError, WebResult};
use crate::reference::Reference;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shiyu_analytics::monthly::{monthly_report, Names};
use shiyu_analytics::report::{self, MonthlyReport};
use shiyu_analytics::{Projection, Weights};
use shiyu_domain::{Capability, DepartmentId, JurisdictionId, Level, Reason, Scope, Timestamp};
use utoipa::IntoParams;

/// Names from the reference data.
#[derive(Debug)]
pub struct ReferenceNames<'a>(pub &'a Reference);

impl Names for ReferenceNames<'_> {
    fn jurisdiction(&self, id: i64) -> Option<String> {
        self.0.jurisdictions.get(&JurisdictionId(id)).map(|j| j.name.clone())
    }
    fn department(&self, id: i64) -> Option<String> {
        self.0.departments.get(&DepartmentId(id)).map(|d| d.name.clone())
    }
    fn category(&self, code: &str) -> Option<String> {
        self.0.categories.iter().find(|c| c.code == code).map(|c| c.name.clone())
    }
}

/// The formats a report is rendered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Html,
    Json,
}

impl Format {
    /// Spreadsheets are saved; the page and the JSON are shown where they are opened.
    pub fn disposition(self) -> &'static str {
        match self {
            Format::Csv | Format::Xlsx => "attachment",
            Format::Html | Format::Json => "inline",
        }
    }

    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            "html" => Some(Format::Html),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Html => "html",
            Format::Json => "json",
        }
    }
}

/// The report's bytes in `format`.
pub fn render(report: &MonthlyReport, format: Format) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => Ok(report::to_csv(report).into_bytes()),
        Format::Xlsx => report::to_xlsx(report).map_err(|e| e.to_string()),
        Format::Html => Ok(report::to_html(report).into_bytes()),
        Format::Json => serde_json::to_vec_pretty(report).map_err(|e| e.to_string()),
    }
}

/// The report of `month` for the jurisdiction `code` (the whole city without one).
pub fn build(
    projection: &Projection,
    reference: &Reference,
    month: &str,
    code: Option<&str>,
    weights: &Weights,
    now: Timestamp,
) -> Result<MonthlyReport, Reason> {
    let within = match code {
        Some(code) => {
            let id = *reference.by_code.get(code).ok_or_else(|| {
                Reason::new(format!("未知的辖区编码 `{code}`"), format!("unknown jurisdiction `{code}`"))
            })?;
            let level = reference.jurisdictions.get(&id).map_or(Level::City, |j| j.level);
            Some((level, id))
        }
        None => None,
    };
    monthly_report(projection, month, within, &ReferenceNames(reference), weights, now).ok_or_else(|| {
        Reason::new(format!("`{month}` 不是月份（YYYY-MM）"), format!("`{month}` is not a month (YYYY-MM)"))
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// YYYY-MM
    pub month: String,
    /// A jurisdiction code within the caller's; default the caller's own.
    pub jurisdiction: Option<String>,
    /// html (printable, with SVG charts) unless asked otherwise.
    #[param(schema_with = format_names)]
    pub format: Option<String>,
}

fn format_names() -> utoipa::openapi::schema::Object {
    crate::views::names_schema(&["csv", "xlsx", "html", "json"], "The report's file format.")
}

/// The monthly report of a jurisdiction (the caller's, or one within it), in Chinese.
#[utoipa::path(get, path = "/api/reports/monthly", tag = "analytics", params(ReportParams),
    responses((status = 200, description = "the report in the asked format", content(
                  (String = "text/html"), (String = "text/csv"), (Object = "application/json"),
                  (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 503, description = "the statistics are still being rebuilt at start-up", body = ErrorBody)))]
pub async fn monthly(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ReportParams>,
    _known: super::KnownParams<(ReportParams,)>,
) -> WebResult<Response> {
    require(&caller, Capability::ReadStatistics)?;
    let Scope::Jurisdiction(own) = caller.user()?.scope else {
        return Err(WebError::forbidden());
    };
    let format = Format::parse(params.format.as_deref().unwrap_or("html")).ok_or_else(|| {
        WebError::invalid("格式 format 可为 csv、xlsx、html 或 json", "format is csv, xlsx, html or json")
    })?;
    let reference = state.reference.get();
    let code = match &params.jurisdiction {
        Some(code) => {
            let id = reference.by_code.get(code).ok_or_else(WebError::not_found)?;
            if !reference.path_to(*id).unwrap_or_default().contains(&own) {
                return Err(WebError::not_found());
            }
            Some(code.clone())
        }
        // A place the reference data does not know must not read as the whole city.
        None => {
            let place = reference.jurisdictions.get(&own).ok_or_else(WebError::forbidden)?;
            (place.level != Level::City).then(|| place.code.clone())
        }
    };
    let year = params.month.split('-').next().and_then(|y| y.parse().ok()).unwrap_or(2026);
    let weights = super::analytics::weights_for(&state, year).await?;
    let report = build(
        &*super::analytics::projection(&state)?,
        &reference,
        &params.month,
        code.as_deref(),
        &weights,
        state.now(),
    )
    .map_err(|why| WebError::invalid(why.zh, why.en))?;
    let bytes = render(&report, format).map_err(|e| WebError::Store(shiyu_store::StoreError::Other(e)))?;
    let name =
        format!("report-{}-{}.{}", report.month, code.as_deref().unwrap_or("city"), format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("{}; filename=\"{name}\"", format.disposition())),
        ],
        bytes,
    )
        .into_response())
}
