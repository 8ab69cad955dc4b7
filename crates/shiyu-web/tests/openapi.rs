//! The OpenAPI document is part of the API: any change to it shows up here and is reviewed.
//! Run with `UPDATE_SNAPSHOTS=1` to accept a deliberate change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use utoipa::OpenApi;

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let document = shiyu_web::openapi::ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &document).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == document,
        "the OpenAPI document changed; review it and rerun with UPDATE_SNAPSHOTS=1"
    );
}

#[test]
fn every_route_is_described() {
    let document = shiyu_web::openapi::ApiDoc::openapi();
    let described: Vec<&str> = document.paths.paths.keys().map(String::as_str).collect();
    // Every path the router serves, read from the routing table itself so that a new route cannot be missed.
    let routing = concat!(include_str!("../src/api/mod.rs"), include_str!("../src/api/webhooks.rs"));
    let routed: Vec<&str> =
        routing.split(".route(").skip(1).filter_map(|rest| rest.trim_start().split('"').nth(1)).collect();
    assert!(routed.len() >= 20, "the routing table was read: {routed:?}");
    for path in routed {
        assert!(described.contains(&path), "{path} is not in the OpenAPI document");
    }
    let schemas = &document.components.as_ref().unwrap().schemas;
    for schema in ["CaseView", "ActionRequest", "ActionBody", "ErrorBody", "NewCaseRequest", "PublicReport"] {
        assert!(schemas.contains_key(schema), "{schema} schema missing");
    }
}

#[test]
fn the_document_says_how_to_sign_in_and_where_no_one_must() {
    let document: serde_json::Value = serde_json::to_value(shiyu_web::openapi::ApiDoc::openapi()).unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(
        (schemes["session"]["in"].as_str(), schemes["token"]["scheme"].as_str()),
        (Some("cookie"), Some("bearer"))
    );
    let security =
        |path: &str, method: &str| document["paths"][path][method]["security"].as_array().unwrap().len();
    assert_eq!(security("/api/cases", "get"), 2, "staff sign in one way or the other");
    assert_eq!(security("/api/public/reports", "post"), 3, "citizens may also come without signing in");
    assert_eq!(security("/api/session", "post"), 3);
    // The refusals made before a handler runs are documented too, with the error body.
    let statuses = |path: &str, method: &str| -> Vec<String> {
        document["paths"][path][method]["responses"].as_object().unwrap().keys().cloned().collect()
    };
    for status in ["400", "401", "413", "415"] {
        assert!(statuses("/api/cases", "post").contains(&status.to_string()), "{status}");
    }
    assert!(statuses("/api/public/reports/{code}", "get").contains(&"429".to_string()));
    assert!(
        statuses("/api/public/reports", "post").contains(&"403".to_string()),
        "a write without its CSRF token"
    );
    // Operation ids are unique; required enum parameters stay required.
    let ids: Vec<&str> = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values().filter_map(|op| op["operationId"].as_str()))
        .collect();
    assert_eq!(ids.len(), ids.iter().collect::<std::collections::HashSet<_>>().len(), "{ids:?}");
    let dim = document["paths"]["/api/analytics/top"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "dim")
        .unwrap();
    assert_eq!(dim["required"], true);
    // Names the API takes are listed, from the domain's own lists.
    let channels = &document["components"]["schemas"]["NewCaseRequest"]["properties"]["channel"]["enum"];
    assert_eq!(channels.as_array().unwrap().len(), shiyu_domain::Channel::ALL.len(), "{channels}");
    assert!(document["components"]["schemas"]["NewUserRequest"]["properties"]["role"]["enum"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("grid_worker")));
}
