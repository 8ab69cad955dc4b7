//! The JSON API's routes and the pieces every handler shares.

pub mod admin;
pub mod analytics;
pub mod attachments;
pub mod cases;
pub mod classify;
pub mod deadlines;
pub mod duplicates;
pub mod public;
pub mod reports;
pub mod webhooks;

use crate::errors::WebError;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;

/// The default and the largest page size of every list.
pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// Refuses (403) a signed-in caller whose role lacks `capability`, and anyone not signed in (401). The
/// decision itself is `shiyu_domain::role_may`'s.
pub fn require(
    caller: &crate::auth::Caller,
    capability: shiyu_domain::Capability,
) -> crate::errors::WebResult<()> {
    if shiyu_domain::role_may(caller.user()?.role, capability) {
        Ok(())
    } else {
        Err(WebError::forbidden())
    }
}

/// The parameter names a handler reads from the query: those of each parameter struct it extracts (the same
/// names the OpenAPI document lists).
pub trait ParamNames {
    fn names() -> Vec<String>;
}

fn names_of<T: utoipa::IntoParams>() -> Vec<String> {
    T::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query)).into_iter().map(|p| p.name).collect()
}

impl<A: utoipa::IntoParams> ParamNames for (A,) {
    fn names() -> Vec<String> {
        names_of::<A>()
    }
}

impl<A: utoipa::IntoParams, B: utoipa::IntoParams> ParamNames for (A, B) {
    fn names() -> Vec<String> {
        let mut names = names_of::<A>();
        names.extend(names_of::<B>());
        names
    }
}

/// Refuses (400 `INVALID_PARAMETERS`) a query parameter the handler does not read: `?light=red` on a list
/// without that filter would otherwise answer the whole list, and the caller would take it for the filtered
/// one. Extracted beside the handler's `Query`s, with their structs as `T`.
#[derive(Debug)]
pub struct KnownParams<T>(std::marker::PhantomData<T>);

impl<T: ParamNames, S: Send + Sync> axum::extract::FromRequestParts<S> for KnownParams<T> {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, WebError> {
        // Values that do not parse are the handler's `Query`'s to refuse; only the names matter here.
        let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        else {
            return Ok(KnownParams(std::marker::PhantomData));
        };
        let known = T::names();
        if let Some((unknown, _)) = pairs.iter().find(|(name, _)| !known.contains(name)) {
            let list = known.join(", ");
            return Err(WebError::refused(
                axum::http::StatusCode::BAD_REQUEST,
                "INVALID_PARAMETERS",
                "地址或查询参数有误",
                "A value in the address or the query is invalid",
            )
            .because(
                format!("没有参数 {unknown}（可用：{}）", known.join("、")),
                format!("there is no parameter `{unknown}` (expected one of {list})"),
            ));
        }
        Ok(KnownParams(std::marker::PhantomData))
    }
}

/// How many items a page holds: the caller's `limit` up to the largest page; none at all is refused.
pub fn page_size(limit: Option<u32>) -> crate::errors::WebResult<u32> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    at_least_one("limit", limit as usize)?;
    Ok(limit.min(MAX_PAGE))
}

/// A count the caller gives (a page size, how many to rank), refused when it asks for nothing.
pub fn at_least_one(name: &str, n: usize) -> crate::errors::WebResult<usize> {
    if n == 0 {
        return Err(crate::errors::WebError::invalid(
            format!("{name} 须至少为 1"),
            format!("{name} must be at least 1"),
        ));
    }
    Ok(n)
}

/// A JSON object body whose every refusal (malformed JSON, unknown fields, wrong types, oversize) answers in
/// the API's error shape. An array is refused too: serde would otherwise fill a struct's fields from an array
/// in order, so `["a", "b"]` would pass for an object. (This holds for the body itself; fields inside it are
/// read as serde reads them.)
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Object<T>>::from_request(request, state).await {
            Ok(axum::Json(Object(value))) => Ok(JsonBody(value)),
            Err(rejection) => Err(json_refusal(rejection)),
        }
    }
}

/// A JSON array of objects, refused as [`JsonBody`] is.
#[derive(Debug)]
pub struct JsonList<T>(pub Vec<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonList<T> {
    type Rejection = WebError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<Vec<Object<T>>>::from_request(request, state).await {
            Ok(axum::Json(values)) => Ok(JsonList(values.into_iter().map(|Object(value)| value).collect())),
            Err(rejection) => Err(json_refusal(rejection)),
        }
    }
}

/// `T` read only from a JSON object: the map is handed to `T` as its whole input.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<Object<T>, M::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }
        deserializer.deserialize_map(ObjectVisitor(std::marker::PhantomData))
    }
}

fn json_refusal(rejection: JsonRejection) -> WebError {
    use axum::http::StatusCode;
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::MissingJsonContentType(_) => WebError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "JSON_EXPECTED",
            "请求体须为JSON（Content-Type: application/json）",
            "The body must be JSON (Content-Type: application/json)",
        ),
        JsonRejection::JsonSyntaxError(_) => WebError::refused(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            "JSON格式错误",
            "The JSON is malformed",
        )
        .with_details(detail),
        JsonRejection::JsonDataError(_) => {
            let refused = WebError::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_FIELDS",
                "字段缺失、类型错误或包含未知字段",
                "A field is missing, has the wrong type, or is unknown",
            );
            match crate::errors::field_reason(&detail) {
                Some(reason) => refused.because(reason.zh, reason.en),
                None => refused,
            }
            .with_details(detail)
        }
        _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => WebError::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "请求体过大",
            "The request body is too large",
        ),
        _ => WebError::refused(rejection.status(), "BAD_REQUEST", "请求无效", "The request is invalid")
            .with_details(detail),
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/session", post(crate::auth::login).delete(crate::auth::logout))
        .route("/api/me", get(crate::auth::me))
        .route("/api/me/password", post(crate::auth::change_password))
        .route("/api/cases", get(cases::list).post(cases::create))
        .route("/api/cases/{id}", get(cases::show))
        .route("/api/cases/{id}/history", get(cases::history))
        .route("/api/cases/{id}/route", get(cases::route))
        .route("/api/cases/{id}/duplicates", get(duplicates::duplicates))
        .route("/api/classify", post(classify::classify))
        .route("/api/classifier/train", post(classify::train))
        .route("/api/geocode", get(classify::geocode))
        .route("/api/cases/{id}/actions", post(cases::act))
        .route("/api/cases/{id}/personal-data", get(cases::personal_data))
        .route("/api/cases/{id}/attachments/{sha256}", get(attachments::download))
        .route(
            "/api/attachments",
            post(attachments::upload).layer(DefaultBodyLimit::max(attachments::MAX_ATTACHMENT_BYTES)),
        )
        .route(
            "/api/public/attachments",
            post(attachments::public_upload).layer(DefaultBodyLimit::max(attachments::MAX_ATTACHMENT_BYTES)),
        )
        .route("/api/public/reports", post(public::report))
        .route("/api/public/reports/{code}", get(public::track))
        .route("/api/public/reports/{code}/rating", post(public::rate))
        .route("/api/jurisdictions", get(admin::jurisdictions))
        .route("/api/departments", get(admin::departments))
        .route("/api/catalog", get(admin::catalog))
        .route("/api/catalog/matters/{code}/duplicates", axum::routing::put(duplicates::set_rule))
        .route("/api/users", get(admin::list_users).post(admin::create_user))
        .route("/api/users/{id}/password", post(admin::reset_password))
        .route("/api/tokens", get(admin::list_tokens).post(admin::create_token))
        .route("/api/tokens/{id}", axum::routing::delete(admin::revoke_token))
        .route("/api/audit", get(admin::audit))
        .route("/api/events/stream", get(crate::stream::stream))
        .route("/api/notifications", get(deadlines::list))
        .route("/api/notifications/unread", get(deadlines::unread))
        .route("/api/notifications/read", post(deadlines::mark_read))
        .route("/api/escalation-rules", get(deadlines::rules).put(deadlines::set_rules))
        .route("/api/calendar/{year}", get(deadlines::calendar).put(deadlines::set_calendar))
        .route("/api/analytics/groups", get(analytics::groups))
        .route("/api/analytics/top", get(analytics::top))
        .route("/api/analytics/change", get(analytics::change))
        .route("/api/evaluation", get(analytics::evaluation))
        .route("/api/evaluation/weights/{year}", get(analytics::weights).put(analytics::set_weights))
        .route("/api/reports/monthly", get(reports::monthly))
        .merge(webhooks::routes())
}
