//! Outgoing webhooks over HTTP: admins create (the secret shown once), list and disable them, read the
//! dead letters and send them again; bad input is refused and changes nothing. (Sending itself is tested in
//! crates/shiyu-sla/tests/webhooks.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_domain::Timestamp;
use shiyu_store::testing::SampleWorld;
use shiyu_store::{AttemptOutcome, DeliveryAttempt, NewDelivery};
use support::TestApp;

on_both_backends![admins_manage_webhooks_and_their_dead_letters];

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A dead letter for `webhook`, made the way the notifier and the deliverer make one.
async fn dead_letter(app: &TestApp, webhook: i64, seq: i64) {
    let now = Timestamp(0);
    let body = format!(r#"{{"seq":{seq},"case_id":42,"kind":"overdue"}}"#);
    app.store.follow("test", seq, vec![], vec![NewDelivery { webhook, seq, body, at: now }]).await.unwrap();
    let taken = app.store.take_deliveries(now, Timestamp(60_000), 10).await.unwrap();
    for delivery in taken {
        let outcome = AttemptOutcome::Failed { error: "HTTP 503 Service Unavailable".into(), retry_at: None };
        app.store.record_delivery(DeliveryAttempt { delivery: delivery.id, at: now, outcome }).await.unwrap();
    }
}

async fn admins_manage_webhooks_and_their_dead_letters(app: TestApp) {
    let lead = SampleWorld::LEAD_DEPARTMENT;
    let request = json!({"department_id": lead, "url": "https://hooks.example.gov.cn/shiyu"});
    let mut admin = app.signed_in("admin").await;
    let (status, body) = admin.json("POST", "/api/webhooks", Some(&request)).await.unwrap();
    assert_ne!(status, 404, "mount shiyu_web::api::webhooks::routes() in api/mod.rs");

    // Only admins.
    assert_eq!(app.anonymous().json("GET", "/api/webhooks", None).await.unwrap().0, 401);
    let mut operator = app.signed_in("operator").await;
    assert_eq!(operator.json("POST", "/api/webhooks", Some(&request)).await.unwrap().0, 403);
    assert_eq!(operator.json("GET", "/api/webhooks/dead-letters", None).await.unwrap().0, 403);

    // Created; the secret is shown this once and stored sealed.
    assert_eq!(status, 201, "{body}");
    let first = body["id"].as_i64().unwrap();
    let secret = body["secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 43, "32 random bytes in URL-safe base64");
    let stored = app.store.webhooks(None).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].secret_sealed.starts_with("v1.t1.") && !stored[0].secret_sealed.contains(&secret));

    // Bad input gets a clear error and changes nothing.
    for (bad, expected) in [
        (json!({"department_id": lead, "url": "ftp://hooks.example.gov.cn/"}), "WEBHOOK_URL_INVALID"),
        (json!({"department_id": lead, "url": "hooks.example.gov.cn/shiyu"}), "WEBHOOK_URL_INVALID"),
        (
            json!({"department_id": lead, "url": "https://user:pw@hooks.example.gov.cn/"}),
            "WEBHOOK_URL_INVALID",
        ),
        (
            json!({"department_id": lead, "url": format!("https://h.example/{}", "a".repeat(2048))}),
            "WEBHOOK_URL_INVALID",
        ),
        (json!({"department_id": 999, "url": "https://hooks.example.gov.cn/"}), "INVALID_INPUT"),
        (
            json!({"department_id": lead, "url": "https://hooks.example.gov.cn/", "secret": "mine"}),
            "INVALID_FIELDS",
        ),
        (json!({"url": "https://hooks.example.gov.cn/"}), "INVALID_FIELDS"),
    ] {
        let (status, body) = admin.json("POST", "/api/webhooks", Some(&bad)).await.unwrap();
        assert_eq!((status, code(&body)), (422, expected), "{bad}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body["error"]["message_en"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.store.webhooks(None).await.unwrap().len(), 1);

    let other = json!({"department_id": SampleWorld::ASSISTING_DEPARTMENT, "url": "http://10.1.2.3:8080/in"});
    let (status, body) = admin.json("POST", "/api/webhooks", Some(&other)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let second = body["id"].as_i64().unwrap();

    // Listed without their secrets, all or by department.
    let (status, list) = admin.json("GET", "/api/webhooks", None).await.unwrap();
    assert_eq!(status, 200);
    let items = list.as_array().unwrap();
    assert_eq!(items.iter().map(|w| w["id"].as_i64().unwrap()).collect::<Vec<_>>(), [first, second]);
    assert_eq!(items[0]["department_name"], "崇川区城市管理局");
    assert_eq!(
        (items[0]["url"].as_str(), items[0]["active"].as_bool()),
        (Some("https://hooks.example.gov.cn/shiyu"), Some(true))
    );
    assert!(items.iter().all(|w| w.get("secret").is_none() && w.get("secret_sealed").is_none()));
    let (_, mine) = admin.json("GET", &format!("/api/webhooks?department_id={lead}"), None).await.unwrap();
    assert_eq!(mine.as_array().unwrap().len(), 1);

    // Dead letters, paged, with their kind and case read from the body; sent again once each.
    dead_letter(&app, second, 5).await;
    dead_letter(&app, second, 6).await;
    let (status, page) = admin.json("GET", "/api/webhooks/dead-letters?limit=1", None).await.unwrap();
    assert_eq!(status, 200, "{page}");
    let item = &page["items"][0];
    assert_eq!((item["webhook_id"].as_i64(), item["seq"].as_i64()), (Some(second), Some(5)));
    assert_eq!((item["kind"].as_str(), item["case_id"].as_i64()), (Some("overdue"), Some(42)));
    assert_eq!(
        (item["attempts"].as_u64(), item["last_error"].as_str()),
        (Some(1), Some("HTTP 503 Service Unavailable"))
    );
    let next = page["next"].as_i64().unwrap();
    let (_, rest) =
        admin.json("GET", &format!("/api/webhooks/dead-letters?after={next}"), None).await.unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next"].is_null());
    let dead = item["id"].as_i64().unwrap();
    let retry = format!("/api/webhooks/dead-letters/{dead}/retry");
    assert_eq!(admin.json("POST", &retry, None).await.unwrap().0, 202);
    let (status, body) = admin.json("POST", &retry, None).await.unwrap();
    assert_eq!((status, code(&body)), (409, "DELIVERY_NOT_RETRYABLE"), "no longer dead: {body}");
    assert_eq!(admin.json("POST", "/api/webhooks/dead-letters/999999/retry", None).await.unwrap().0, 404);
    let (_, page) = admin.json("GET", "/api/webhooks/dead-letters", None).await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    // Disabled for good: what waited for it is a dead letter that cannot be sent again.
    let disable = format!("/api/webhooks/{second}/disable");
    assert_eq!(admin.json("POST", &disable, None).await.unwrap().0, 204);
    assert_eq!(admin.json("POST", &disable, None).await.unwrap().0, 204, "again: nothing changes");
    assert_eq!(admin.json("POST", "/api/webhooks/999999/disable", None).await.unwrap().0, 404);
    let (_, list) = admin.json("GET", "/api/webhooks", None).await.unwrap();
    assert_eq!(list[1]["active"], false);
    assert!(list[1]["disabled_at"].as_i64().is_some());
    let (_, page) = admin.json("GET", "/api/webhooks/dead-letters", None).await.unwrap();
    let revived = page["items"].as_array().unwrap().iter().find(|d| d["id"] == dead).unwrap().clone();
    assert_eq!(revived["last_error"], "webhook disabled");
    let (status, body) = admin.json("POST", &retry, None).await.unwrap();
    assert_eq!((status, code(&body)), (409, "DELIVERY_NOT_RETRYABLE"), "{body}");

    // Audited, without the URL.
    let (_, audit) = admin.json("GET", "/api/audit?limit=200", None).await.unwrap();
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["webhook_created", "webhook_disabled", "delivery_retried"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    assert!(!audit.to_string().contains("hooks.example.gov.cn"));
}
