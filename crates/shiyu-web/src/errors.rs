//! The one mapping from every error of the platform to HTTP: a status code and the body
//! `{"error": {"code", "message" (中文), "message_en", "details"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shiyu_domain::{DomainError, ErrorKind};
use shiyu_store::{ServiceError, StoreError};
use std::borrow::Cow;
use utoipa::ToSchema;

/// The most characters of `details` sent back.
const DETAILS_MAX_CHARS: usize = 300;

/// The error body every endpoint answers with.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `CASE_STATE_FORBIDS_ACTION`.
    pub code: String,
    /// 中文说明
    pub message: String,
    pub message_en: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug)]
pub enum WebError {
    Domain(DomainError),
    Store(StoreError),
    Auth(shiyu_auth::AuthError),
    /// A request the API itself refuses: a status, a code and both messages.
    Refused {
        status: StatusCode,
        code: &'static str,
        zh: Cow<'static, str>,
        en: Cow<'static, str>,
        details: Option<String>,
    },
}

impl WebError {
    pub fn refused(status: StatusCode, code: &'static str, zh: &'static str, en: &'static str) -> WebError {
        WebError::Refused { status, code, zh: zh.into(), en: en.into(), details: None }
    }

    pub fn with_details(self, details: impl Into<String>) -> WebError {
        match self {
            WebError::Refused { status, code, zh, en, .. } => {
                WebError::Refused { status, code, zh, en, details: Some(shortened(details.into())) }
            }
            other => other,
        }
    }

    /// Says what exactly was wrong, in both languages, after the refusal's general message, so that neither
    /// reader is left with a reason in the other's language.
    pub fn because(self, why_zh: impl Into<String>, why_en: impl Into<String>) -> WebError {
        match self {
            WebError::Refused { status, code, zh, en, details } => WebError::Refused {
                status,
                code,
                zh: format!("{zh}：{}", shortened(why_zh.into())).into(),
                en: format!("{en}: {}", shortened(why_en.into())).into(),
                details,
            },
            other => other,
        }
    }

    /// The case does not exist, or the caller may not know that it does.
    pub fn not_found() -> WebError {
        WebError::refused(StatusCode::NOT_FOUND, "NOT_FOUND", "未找到", "Not found")
    }

    pub fn unauthenticated() -> WebError {
        WebError::refused(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "请先登录", "Sign in first")
    }

    pub fn forbidden() -> WebError {
        WebError::refused(StatusCode::FORBIDDEN, "FORBIDDEN", "无权访问", "You may not do this")
    }

    /// Input the API cannot take, and why, in Chinese and in English.
    pub fn invalid(why_zh: impl Into<String>, why_en: impl Into<String>) -> WebError {
        WebError::refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
            "输入有误",
            "The input is invalid",
        )
        .because(why_zh, why_en)
    }

    fn parts(&self) -> (StatusCode, String, String, String, Option<String>) {
        match self {
            WebError::Domain(error) => {
                let (zh, en) = (error.kind.message_zh(), error.kind.message_en());
                let (zh, en) = match (&error.detail_zh, &error.detail) {
                    (Some(why_zh), Some(why)) => (format!("{zh}：{why_zh}"), format!("{en}: {why}")),
                    _ => (zh.to_string(), en.to_string()),
                };
                (domain_status(error.kind), error.kind.code().into(), zh, en, error.detail.clone())
            }
            WebError::Store(StoreError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "NOT_FOUND".into(), "未找到".into(), "Not found".into(), None)
            }
            WebError::Store(StoreError::Conflict(detail)) => (
                StatusCode::CONFLICT,
                "VERSION_CONFLICT".into(),
                "数据已被他人修改，请刷新后重试".into(),
                "Someone else changed this first; reload and try again".into(),
                Some(detail.clone()),
            ),
            WebError::Store(StoreError::Other(detail)) => {
                tracing::error!(%detail, "storage failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL".into(),
                    "服务器内部错误".into(),
                    "Internal error".into(),
                    None,
                )
            }
            WebError::Auth(error) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                error.code().into(),
                error.message_zh().into(),
                error.message_en().into(),
                None,
            ),
            WebError::Refused { status, code, zh, en, details } => {
                (*status, (*code).into(), zh.to_string(), en.to_string(), details.clone())
            }
        }
    }
}

fn domain_status(kind: ErrorKind) -> StatusCode {
    use ErrorKind::*;
    match kind {
        RoleNotPermitted
        | OutOfJurisdiction
        | DepartmentNotAssigned
        | NotLeadDepartment
        | NotReporter
        | VerifierIsHandler => StatusCode::FORBIDDEN,
        StateForbidsAction | CaseSuspended | CaseAlreadyExists | AlreadyRated | AlreadyAccepted
        | ExtensionPending | NoExtensionPending | NoLevelAbove | AlarmNotDue => StatusCode::CONFLICT,
        ReasonRequired
        | ReplyNotAllowed
        | TextTooLong
        | TextHasControlCharacters
        | TooManyAttachments
        | DescriptionEmpty
        | RatingOutOfRange
        | DispatchDepartmentsInvalid
        | DepartmentOutsideCase
        | ExtensionLengthInvalid
        | DeadlineNotInFuture
        | DeadlineTooFar
        | MergeTargetInvalid
        | JurisdictionPathInvalid
        | EscalationRuleInvalid
        | CalendarInvalid
        | NoResponsibleDepartment => StatusCode::UNPROCESSABLE_ENTITY,
        CaseNotReceived => StatusCode::NOT_FOUND,
        NoWorkingTime | EventOutOfOrder => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<DomainError> for WebError {
    fn from(error: DomainError) -> Self {
        WebError::Domain(error)
    }
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        WebError::Store(error)
    }
}

impl From<ServiceError> for WebError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Domain(error) => WebError::Domain(error),
            ServiceError::Store(error) => WebError::Store(error),
        }
    }
}

impl From<shiyu_auth::AuthError> for WebError {
    fn from(error: shiyu_auth::AuthError) -> Self {
        WebError::Auth(error)
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code, message, message_en, details) = self.parts();
        let body = ErrorBody {
            error: ErrorDetail { code, message, message_en, details: details.map(serde_json::Value::String) },
        };
        (status, axum::Json(body)).into_response()
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// Details and reasons often quote the input: a megabyte sent is not a megabyte echoed.
fn shortened(text: String) -> String {
    match text.char_indices().nth(DETAILS_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// What a serde or axum refusal text says was wrong, in both languages, or `None` for a text it does not know.
/// The texts are serde's and axum's (`Failed to deserialize query string: limit: invalid digit found in
/// string`, `…: missing field `description` at line 1 column 40`, `Cannot parse `abc` to a `u64``): an
/// API caller should not need English, nor read a parser's wording, to learn which field to mend.
pub fn field_reason(text: &str) -> Option<shiyu_domain::Reason> {
    use shiyu_domain::Reason;
    let quoted = |after: &str| -> Option<String> {
        let start = text.find(after)? + after.len();
        let end = text[start..].find('`')?;
        Some(text[start..start + end].to_string())
    };
    if let (Some(value), Some(as_type)) = (quoted("Cannot parse `"), quoted("` to a `")) {
        let kind = kind_zh(&as_type);
        return Some(Reason::new(
            format!("地址中的 {value} 不是有效的{kind}"),
            format!("`{value}` in the address is not a valid {as_type}"),
        ));
    }
    // serde_path_to_error puts the field's path before the message: `attachments[0].sha256: invalid type …`.
    const MESSAGES: [&str; 11] = [
        "missing field `",
        "unknown field `",
        "unknown variant `",
        "invalid type: ",
        "invalid value: ",
        "invalid length ",
        "invalid digit",
        "cannot parse integer from empty string",
        "number too large",
        "number too small",
        "invalid float",
    ];
    let start = MESSAGES.iter().filter_map(|m| text.find(m)).min()?;
    let message = text[start..].split(" at line ").next().unwrap_or(&text[start..]);
    let path = text[..start]
        .trim_end_matches(": ")
        .rsplit(": ")
        .next()
        .filter(|p| !p.is_empty() && !p.contains(' '))
        .map(str::to_string);
    // A field inside another is named with where it is: `note` belongs beside `action`, not in it.
    let (inside_zh, inside_en) = match &path {
        Some(p) => (format!("{p} 中"), format!(" in `{p}`")),
        None => (String::new(), String::new()),
    };
    if let Some(field) = quoted("missing field `") {
        return Some(Reason::new(
            format!("{inside_zh}缺少字段 {field}"),
            format!("field `{field}` is missing{inside_en}"),
        ));
    }
    if let Some(field) = quoted("unknown field `") {
        return Some(Reason::new(
            format!("{inside_zh}没有字段 {field}"),
            format!("there is no field `{field}`{inside_en}"),
        ));
    }
    let (field_zh, field_en) = match &path {
        Some(p) => (format!("字段 {p} "), format!("field `{p}`: ")),
        None => (String::new(), String::new()),
    };
    if let Some(value) = quoted("unknown variant `") {
        let choices = message.split_once("expected ").map_or("", |(_, c)| c).replace('`', "");
        return Some(Reason::new(
            format!(
                "{field_zh}没有取值 {value}（可选：{}）",
                choices.replace("one of ", "").replace(", ", "、")
            ),
            format!("{field_en}there is no value `{value}` (expected {choices})"),
        ));
    }
    for (start, zh) in
        [("invalid type: ", "类型不对"), ("invalid value: ", "取值无效"), ("invalid length ", "长度不对")]
    {
        if message.starts_with(start) {
            let wanted = message.split_once(", expected ").map_or("", |(_, w)| w);
            let wanted_zh =
                if wanted.is_empty() { String::new() } else { format!("，应为{}", kind_zh(wanted)) };
            return Some(Reason::new(format!("{field_zh}{zh}{wanted_zh}"), format!("{field_en}{message}")));
        }
    }
    if message.starts_with("number too") {
        return Some(Reason::new(format!("{field_zh}超出范围"), format!("{field_en}{message}")));
    }
    Some(Reason::new(format!("{field_zh}须为数字"), format!("{field_en}{message}")))
}

/// The Chinese for a kind of value serde expected (`a string`, `u32`, `a sequence` …); the English as it is
/// when there is no better word.
fn kind_zh(expected: &str) -> String {
    let e = expected.trim();
    let zh = match e {
        "a string" | "string" => "字符串",
        "a boolean" | "bool" => "true 或 false",
        "a sequence" => "数组",
        "a map" | "a JSON object" => "对象",
        "f32" | "f64" | "a number" => "数字",
        _ if e.starts_with("struct ") => "对象",
        _ if e.starts_with("a borrowed") => "字符串",
        _ if ["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "an integer"]
            .contains(&e)
            || e.starts_with("integer") =>
        {
            "整数"
        }
        _ => return e.to_string(),
    };
    zh.to_string()
}

/// Gives every refusal the error body, also those made outside the handlers: a path or query that does not
/// parse (axum answers them in plain text), an upload over the body limit, an unknown route or method. The
/// handlers' own errors are JSON already and pass untouched, as do successful answers of any type.
pub async fn uniform_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let details = text.unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => WebError::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => WebError::refused(
            status,
            "METHOD_NOT_ALLOWED",
            "该地址不支持此请求方法",
            "This address does not take this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            WebError::refused(status, "BODY_TOO_LARGE", "请求体过大", "The request body is too large")
        }
        StatusCode::BAD_REQUEST => WebError::refused(
            status,
            "INVALID_PARAMETERS",
            "地址或查询参数有误",
            "A value in the address or the query is invalid",
        ),
        _ => WebError::refused(status, "BAD_REQUEST", "请求无效", "The request is invalid"),
    };
    let error = match field_reason(&details) {
        Some(reason) if status == StatusCode::BAD_REQUEST => error.because(reason.zh, reason.en),
        _ => error,
    };
    let error = if details.trim().is_empty() { error } else { error.with_details(details) };
    let mut uniform = error.into_response();
    *uniform.status_mut() = status;
    // Headers that say how to go on (Allow on a 405, Retry-After) stay.
    for name in [axum::http::header::ALLOW, axum::http::header::RETRY_AFTER] {
        if let Some(value) = parts.headers.get(&name) {
            uniform.headers_mut().insert(name, value.clone());
        }
    }
    uniform
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_code(error: WebError) -> (StatusCode, String) {
        let (status, code, zh, en, _) = error.parts();
        assert!(!zh.is_empty() && !en.is_empty());
        (status, code)
    }

    #[test]
    fn every_error_maps_to_one_status_and_code() {
        let cases: Vec<(WebError, StatusCode, &str)> = vec![
            (
                DomainError::new(ErrorKind::OutOfJurisdiction).into(),
                StatusCode::FORBIDDEN,
                "OUT_OF_JURISDICTION",
            ),
            (
                DomainError::new(ErrorKind::StateForbidsAction).into(),
                StatusCode::CONFLICT,
                "CASE_STATE_FORBIDS_ACTION",
            ),
            (
                DomainError::new(ErrorKind::ReasonRequired).into(),
                StatusCode::UNPROCESSABLE_ENTITY,
                "REASON_REQUIRED",
            ),
            (DomainError::new(ErrorKind::CaseNotReceived).into(), StatusCode::NOT_FOUND, "CASE_NOT_FOUND"),
            (StoreError::Conflict("v".into()).into(), StatusCode::CONFLICT, "VERSION_CONFLICT"),
            (StoreError::NotFound("x".into()).into(), StatusCode::NOT_FOUND, "NOT_FOUND"),
            (StoreError::Other("disk".into()).into(), StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
            (WebError::unauthenticated(), StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
            (WebError::invalid("不对", "bad"), StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT"),
        ];
        for (error, status, code) in cases {
            assert_eq!(status_and_code(error), (status, code.to_string()));
        }
        for kind in ErrorKind::ALL {
            let (status, code) = status_and_code(DomainError::new(*kind).into());
            assert_eq!(code, kind.code());
            assert!(status.is_client_error() || status.is_server_error());
        }
    }

    #[test]
    fn an_invalid_input_says_why_in_both_languages_and_quotes_little() {
        let (_, code, zh, en, details) =
            WebError::invalid("未知的渠道 `fax`", "unknown channel `fax`").parts();
        assert_eq!(code, "INVALID_INPUT");
        assert_eq!(zh, "输入有误：未知的渠道 `fax`");
        assert_eq!(en, "The input is invalid: unknown channel `fax`");
        assert_eq!(details, None);
        let long = "x".repeat(5_000);
        let (_, _, zh, en, _) = WebError::invalid(long.clone(), long).parts();
        assert!(zh.chars().count() < DETAILS_MAX_CHARS + 10 && en.chars().count() < DETAILS_MAX_CHARS + 30);
    }

    #[test]
    fn a_refusal_by_serde_or_axum_names_the_field_in_both_languages() {
        let json = "Failed to deserialize the JSON body into the target type";
        let cases = [
            (format!("{json}: missing field `description` at line 1 column 40"), "缺少字段 description", "field `description` is missing"),
            (format!("{json}: unknown field `colour`, expected one of `channel`, `description` at line 1 column 9"), "没有字段 colour", "there is no field `colour`"),
            (format!("{json}: description: invalid type: integer `42`, expected a string at line 1 column 17"), "字段 description 类型不对，应为字符串", "field `description`: invalid type: integer `42`, expected a string"),
            (format!("{json}: channel: unknown variant `fax`, expected one of `hotline`, `app` at line 1 column 15"), "字段 channel 没有取值 fax（可选：hotline、app）", "field `channel`: there is no value `fax` (expected one of hotline, app)"),
            ("Failed to deserialize query string: limit: invalid digit found in string".to_string(), "字段 limit 须为数字", "field `limit`: invalid digit found in string"),
            ("Failed to deserialize query string: missing field `year`".to_string(), "缺少字段 year", "field `year` is missing"),
            ("Invalid URL: Cannot parse `abc` to a `i64`".to_string(), "地址中的 abc 不是有效的整数", "`abc` in the address is not a valid i64"),
        ];
        for (text, zh, en) in cases {
            let reason = field_reason(&text).unwrap_or_else(|| panic!("no reason found in {text}"));
            assert_eq!((reason.zh.as_str(), reason.en.as_str()), (zh, en), "{text}");
        }
        let nested = format!("{json}: action: unknown field `note`, expected `matter` at line 1 column 50");
        let reason = field_reason(&nested).unwrap();
        assert_eq!(
            (reason.zh.as_str(), reason.en.as_str()),
            ("action 中没有字段 note", "there is no field `note` in `action`")
        );
        assert!(field_reason("expected value at line 1 column 1").is_none());
    }

    #[test]
    fn internal_details_never_reach_the_caller() {
        let (_, _, _, _, details) = WebError::from(StoreError::Other("password=secret".into())).parts();
        assert_eq!(details, None);
    }
}
