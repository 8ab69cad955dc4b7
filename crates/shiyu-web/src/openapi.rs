//! The OpenAPI 3 document, generated from the handlers' annotations and served at `/api/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shiyu 市域 API",
        description = "The JSON API of Shiyu, the municipal social-governance platform. Times are milliseconds since \
                       1970-01-01 UTC. Every error answers {\"error\": {\"code\", \"message\" (中文), \"message_en\", \
                       \"details\"}}. Browsers sign in with POST /api/session and send the returned csrf_token in \
                       X-CSRF-Token on every write; machine clients send Authorization: Bearer <token>."
    ),
    paths(
        crate::auth::login,
        crate::auth::logout,
        crate::auth::me,
        crate::auth::change_password,
        crate::api::cases::list,
        crate::api::cases::create,
        crate::api::cases::show,
        crate::api::cases::history,
        crate::api::cases::route,
        crate::api::duplicates::duplicates,
        crate::api::duplicates::set_rule,
        crate::api::classify::classify,
        crate::api::classify::train,
        crate::api::classify::geocode,
        crate::api::cases::act,
        crate::api::cases::personal_data,
        crate::api::attachments::upload,
        crate::api::attachments::public_upload,
        crate::api::attachments::download,
        crate::api::public::report,
        crate::api::public::track,
        crate::api::public::rate,
        crate::api::admin::jurisdictions,
        crate::api::admin::departments,
        crate::api::admin::catalog,
        crate::api::admin::list_users,
        crate::api::admin::create_user,
        crate::api::admin::reset_password,
        crate::api::admin::list_tokens,
        crate::api::admin::create_token,
        crate::api::admin::revoke_token,
        crate::api::admin::audit,
        crate::stream::stream,
        crate::api::deadlines::list,
        crate::api::deadlines::unread,
        crate::api::deadlines::mark_read,
        crate::api::deadlines::rules,
        crate::api::deadlines::set_rules,
        crate::api::deadlines::calendar,
        crate::api::deadlines::set_calendar,
        crate::api::analytics::groups,
        crate::api::analytics::top,
        crate::api::analytics::change,
        crate::api::analytics::evaluation,
        crate::api::analytics::weights,
        crate::api::analytics::set_weights,
        crate::api::reports::monthly,
        crate::api::webhooks::create,
        crate::api::webhooks::list,
        crate::api::webhooks::disable,
        crate::api::webhooks::dead_letters,
        crate::api::webhooks::retry,
    ),
    tags(
        (name = "sign-in", description = "Sessions for people"),
        (name = "cases", description = "The closed loop: intake, lists, history and every action"),
        (name = "citizens", description = "Reporting without an account, following and rating by tracking code"),
        (name = "reference data", description = "Jurisdictions, departments and the matter catalog"),
        (name = "users", description = "Users, API tokens and the audit log (admins)"),
        (name = "notifications", description = "The signed-in user's in-app notifications (also streamed live)"),
        (name = "deadlines", description = "Escalation rules and the working calendar every deadline runs on"),
        (name = "analytics", description = "Statistics and evaluation within the caller's jurisdiction (分析研判, 行政问效)"),
        (name = "webhooks", description = "Outgoing webhooks per department and their dead letters (admins)"),
    ),
    modifiers(&SignIn)
)]
#[derive(Debug)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// How callers sign in, for client generators and testing tools: the session cookie or a bearer API token
/// on every operation, except the citizens' endpoints and signing in itself, which take either or nothing.
struct SignIn;

impl utoipa::Modify for SignIn {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::SESSION_COOKIE,
                "Set by POST /api/session; writes also need its csrf_token in X-CSRF-Token.",
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token (admins issue them) with the read and/or write scope."))
                    .build(),
            ),
        );
        let signed_in = vec![
            SecurityRequirement::new("session", Vec::<String>::new()),
            SecurityRequirement::new("token", Vec::<String>::new()),
        ];
        let mut anyone = signed_in.clone();
        anyone.push(SecurityRequirement::default());
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("delete", item.delete.as_mut()),
                ("patch", item.patch.as_mut()),
            ];
            for (method, operation) in operations.into_iter().filter_map(|(m, o)| Some((m, o?))) {
                // Unique ids for client generators: the handlers' names repeat across modules (`list`).
                operation.operation_id = Some(operation_id(method, path));
                // utoipa drops `required` from a parameter whose schema is built by hand (the enums).
                for parameter in operation.parameters.iter_mut().flatten() {
                    if REQUIRED_ENUM_PARAMETERS.contains(&(path.as_str(), parameter.name.as_str())) {
                        parameter.required = utoipa::openapi::Required::True;
                    }
                }
                let public = path == "/api/session"
                    || operation.tags.as_ref().is_some_and(|tags| tags.iter().any(|t| t == "citizens"));
                operation.security = Some(if public { anyone.clone() } else { signed_in.clone() });
                // The refusals any operation may meet before its handler decides anything. A credential that
                // no longer holds is refused wherever it is sent, also on the citizens' operations.
                let mut common = vec![
                    ("400", "a value in the path or query does not parse"),
                    ("401", "not signed in, or the session or token sent is no longer valid"),
                ];
                if public {
                    common.push((
                        "429",
                        "too many requests from this address; Retry-After says when to try again",
                    ));
                }
                if method != "get" {
                    common.push((
                        "403",
                        "a session write without its X-CSRF-Token, or a token without the write scope",
                    ));
                }
                if operation.request_body.is_some()
                    || operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
                {
                    common.push(("422", "a value is not one the operation takes"));
                }
                if let Some(body) = operation.request_body.as_mut() {
                    common.push(("413", "the body is larger than allowed"));
                    common.push(("415", "the body is not of the type the operation takes"));
                    // Files are bytes, not the array of numbers `Vec<u8>` would describe.
                    if let Some(content) = body.content.get_mut("application/octet-stream") {
                        content.schema = Some(binary().into());
                    }
                }
                for (status, why) in common {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error_response(why));
                }
            }
        }
    }
}

/// Query parameters that list their names and must be given: (path, parameter).
const REQUIRED_ENUM_PARAMETERS: &[(&str, &str)] =
    &[("/api/analytics/top", "dim"), ("/api/evaluation", "unit")];

/// `get /api/cases/{id}/actions` → `get_api_cases_id_actions`.
fn operation_id(method: &str, path: &str) -> String {
    let words: Vec<&str> = path.split(['/', '{', '}', '-', '.']).filter(|w| !w.is_empty()).collect();
    format!("{method}_{}", words.join("_"))
}

fn binary() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary)))
        .build()
}

/// A response with the error body.
fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build(),
        )
        .build()
        .into()
}
