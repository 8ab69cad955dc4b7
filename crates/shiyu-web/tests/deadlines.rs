//! Notifications, escalation rules and the working calendar over HTTP, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_web::client::{EventStream, HttpClient};
use std::sync::Arc;
use std::time::Duration;
use support::TestApp;
use support::GRID;

on_both_backends![
    notifications_reach_the_inbox_and_the_live_stream,
    admins_edit_escalation_rules_and_bad_rules_change_nothing,
    a_calendar_change_moves_open_deadlines_with_the_reason,
];

async fn new_case(app: &TestApp) -> i64 {
    let mut hotline = app.signed_in("hotline").await;
    let report = json!({"channel": "hotline", "description": "桃坞路有人占道摆摊", "jurisdiction": GRID});
    let (status, body) = hotline.json("POST", "/api/cases", Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["case"]["id"].as_i64().unwrap()
}

async fn act(client: &mut HttpClient, id: i64, action: Value) {
    let (status, body) =
        client.json("POST", &format!("/api/cases/{id}/actions"), Some(&action)).await.unwrap();
    assert_eq!(status, 200, "{action}: {body}");
}

fn notifier(app: &TestApp, folder: &std::path::Path) -> shiyu_sla::Notifier {
    let sms = Arc::new(shiyu_sla::LogSms::new(folder.join("sms.log")));
    shiyu_sla::Notifier::new(app.store.clone(), sms, Arc::new(|| support::START))
}

async fn notifications_reach_the_inbox_and_the_live_stream(app: TestApp) {
    let folder = tempfile::tempdir().unwrap();
    let mut handler = app.signed_in("handler").await;
    let cookie = handler.cookie.clone().unwrap();
    let mut live =
        EventStream::open(app.address, "/api/events/stream", &[("Cookie", &cookie)]).await.unwrap();
    assert_eq!(live.status, 200);

    let id = new_case(&app).await;
    let mut operator = app.signed_in("operator").await;
    act(&mut operator, id, json!({"action": {"type": "register", "matter": "street_vending"}})).await;
    act(&mut operator, id, json!({"action": {"type": "dispatch", "lead": 101}})).await;
    let mut leader = app.signed_in("leader").await;
    act(
        &mut leader,
        id,
        json!({"action": {"type": "supervise", "due": support::START.0 + 86_400_000}, "note": "明天前签收"}),
    )
    .await;
    let notifier = notifier(&app, folder.path());
    while notifier.pass().await.unwrap() > 0 {}

    let (status, unread) = handler.json("GET", "/api/notifications/unread", None).await.unwrap();
    assert_eq!((status, unread["unread"].as_u64()), (200, Some(2)), "{unread}");
    let (_, page) = handler.json("GET", "/api/notifications?unread=true", None).await.unwrap();
    let kinds: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["supervised", "dispatched"], "newest first: {page}");
    assert_eq!(page["items"][0]["urgent"], true, "a supervision order is urgent");
    assert!(page["items"][1]["title"].as_str().unwrap().contains(&format!("#{id}")));
    let log = std::fs::read_to_string(folder.path().join("sms.log")).unwrap();
    assert!(log.contains("\thandler\t") && log.contains("督办"), "{log}");

    // The live stream brings them too, as `notification` events.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap();
        if message.event.as_deref() == Some("notification") {
            let data: Value = serde_json::from_str(&message.data).unwrap();
            seen.push(data["kind"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["dispatched", "supervised"]);

    // Marking one read, then the rest; nobody else's notifications are touched.
    let first = page["items"][1]["id"].as_i64().unwrap();
    let (status, marked) =
        handler.json("POST", "/api/notifications/read", Some(&json!({"ids": [first]}))).await.unwrap();
    assert_eq!((status, marked["marked"].as_u64()), (200, Some(1)));
    let (_, marked) =
        operator.json("POST", "/api/notifications/read", Some(&json!({"ids": [first + 1]}))).await.unwrap();
    assert_eq!(marked["marked"].as_u64(), Some(0), "another user's notification stays unread");
    let (_, marked) = handler.json("POST", "/api/notifications/read", Some(&json!({}))).await.unwrap();
    assert_eq!(marked["marked"].as_u64(), Some(1));
    let (_, unread) = handler.json("GET", "/api/notifications/unread", None).await.unwrap();
    assert_eq!(unread["unread"].as_u64(), Some(0));
    let (status, body) =
        handler.json("POST", "/api/notifications/read", Some(&json!({"all": true}))).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("INVALID_FIELDS")));
}

async fn admins_edit_escalation_rules_and_bad_rules_change_nothing(app: TestApp) {
    let mut admin = app.signed_in("admin").await;
    let (status, rules) = admin.json("GET", "/api/escalation-rules", None).await.unwrap();
    assert_eq!(status, 200);
    let codes: Vec<&str> = rules.as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"township_overdue") && codes.contains(&"county_supervision_lapsed"), "{codes:?}");

    let mut edited = rules.as_array().unwrap().clone();
    edited.push(json!({"code": "county_city_appearance_overdue", "name": "市容类区县超期一个工作日上报",
        "level": "county", "categories": ["city_appearance"], "trigger": {"kind": "overdue", "working_minutes": 420}}));
    let (status, body) =
        admin.json("PUT", "/api/escalation-rules", Some(&Value::Array(edited.clone()))).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().unwrap().len(), edited.len());

    let mut repeated = edited.clone();
    repeated.push(edited[0].clone());
    let zero = json!([{"code": "x", "name": "立即", "level": "county", "trigger": {"kind": "overdue", "working_minutes": 0}}]);
    let city =
        json!([{"code": "x", "name": "市级", "level": "city", "trigger": {"kind": "supervision_lapsed"}}]);
    let unknown = json!([{"code": "x", "name": "未知类别", "level": "county", "categories": ["nope"],
        "trigger": {"kind": "supervision_lapsed"}}]);
    let typo = json!([{"code": "x", "name": "拼错", "level": "county", "trigger": {"kind": "overdue", "minutes": 5}}]);
    for (bad, code) in [
        (Value::Array(repeated), "ESCALATION_RULE_INVALID"),
        (zero, "ESCALATION_RULE_INVALID"),
        (city, "ESCALATION_RULE_INVALID"),
        (unknown, "INVALID_INPUT"),
        (typo, "INVALID_FIELDS"),
    ] {
        let (status, body) = admin.json("PUT", "/api/escalation-rules", Some(&bad)).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some(code)), "{bad}: {body}");
        assert!(
            body["error"]["message"].as_str().is_some() && body["error"]["message_en"].as_str().is_some()
        );
    }
    let (_, now) = admin.json("GET", "/api/escalation-rules", None).await.unwrap();
    assert_eq!(now.as_array().unwrap().len(), edited.len(), "the refused sets changed nothing");
    assert_eq!(
        app.store.setting("escalation_rules").await.unwrap().map(|b| b.contains("city_appearance")),
        Some(true)
    );

    let mut operator = app.signed_in("operator").await;
    let (status, _) =
        operator.json("PUT", "/api/escalation-rules", Some(&Value::Array(edited))).await.unwrap();
    assert_eq!(status, 403);
}

async fn a_calendar_change_moves_open_deadlines_with_the_reason(app: TestApp) {
    let mut admin = app.signed_in("admin").await;
    let (status, year) = admin.json("GET", "/api/calendar/2026", None).await.unwrap();
    assert_eq!(status, 200);
    let holidays = year["holidays"].as_array().unwrap();
    assert!(holidays.iter().any(|d| d["date"] == "2026-10-01" && d["name"] == "国庆节"), "{year}");
    assert_eq!(year["configured"], true);
    // A year nobody has entered yet says so, rather than passing off a calendar without holidays as known.
    let (_, next) = admin.json("GET", "/api/calendar/2027", None).await.unwrap();
    assert_eq!(
        (next["configured"].as_bool(), next["holidays"].as_array().map(Vec::len)),
        (Some(false), Some(0))
    );

    // Monday 09:00: two working hours to register, due at 11:00.
    let id = new_case(&app).await;
    let due = |case: &Value| case["deadline"]["due"].as_i64().unwrap();
    let mut operator = app.signed_in("operator").await;
    let (_, before) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    let due_before = due(&before);

    let mut change = json!({"holidays": year["holidays"], "workdays": year["workdays"], "reason": "市政府通知：11月23日停工"});
    change["holidays"].as_array_mut().unwrap().push(json!({"date": "2026-11-23", "name": "临时停工"}));
    let bad =
        json!({"holidays": [{"date": "2027-01-01", "name": "元旦"}], "workdays": [], "reason": "错误的年份"});
    let (status, body) = admin.json("PUT", "/api/calendar/2026", Some(&bad)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("CALENDAR_INVALID")), "{body}");
    let no_reason = json!({"holidays": [], "workdays": [], "reason": " "});
    let (status, _) = admin.json("PUT", "/api/calendar/2026", Some(&no_reason)).await.unwrap();
    assert_eq!(status, 422);
    let (_, unchanged) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert_eq!(due(&unchanged), due_before, "refused changes moved nothing");

    let (status, answer) = admin.json("PUT", "/api/calendar/2026", Some(&change)).await.unwrap();
    assert_eq!((status, answer["rescheduled"].as_u64()), (200, Some(1)), "{answer}");
    let (_, after) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert_eq!(due(&after) - due_before, 86_400_000, "the deadline moved to Tuesday 11:00: {after}");
    let (_, history) = operator.json("GET", &format!("/api/cases/{id}/history"), None).await.unwrap();
    let last = history
        .as_array()
        .and_then(|h| h.last().cloned())
        .unwrap_or_else(|| history["items"].as_array().unwrap().last().unwrap().clone());
    assert!(last.to_string().contains("市政府通知：11月23日停工"), "{last}");
    let (status, _) = operator.json("PUT", "/api/calendar/2026", Some(&change)).await.unwrap();
    assert_eq!(status, 403);
}
