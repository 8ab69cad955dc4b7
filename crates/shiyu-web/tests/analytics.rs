//! Statistics, evaluation and the monthly report over HTTP, within each caller's scope, on SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_web::client::HttpClient;
use std::time::Duration;
use support::TestApp;
use support::GRID;

on_both_backends![
    statistics_and_evaluation_stay_within_the_callers_scope,
    monthly_reports_render_in_every_format,
    a_place_imported_while_the_server_runs_is_its_users_scope_not_the_city
];

async fn case_through_the_loop(app: &TestApp, rate: u8) -> i64 {
    let mut hotline = app.signed_in("hotline").await;
    let report = json!({"channel": "hotline", "description": "桃坞路有人占道摆摊", "jurisdiction": GRID});
    let (status, body) = hotline.json("POST", "/api/cases", Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let id = body["case"]["id"].as_i64().unwrap();
    let mut clients = std::collections::HashMap::new();
    for who in ["operator", "handler", "gridworker"] {
        clients.insert(who, app.signed_in(who).await);
    }
    let steps = [
        ("operator", json!({"action": {"type": "register", "matter": "street_vending"}})),
        ("operator", json!({"action": {"type": "dispatch", "lead": 101}})),
        ("handler", json!({"action": {"type": "accept"}})),
        ("handler", json!({"action": {"type": "report_back"}, "note": "已清理"})),
        ("gridworker", json!({"action": {"type": "verify", "passed": true}})),
        ("operator", json!({"action": {"type": "close"}})),
    ];
    for (who, action) in steps {
        let client = clients.get_mut(who).unwrap();
        let (status, body) =
            client.json("POST", &format!("/api/cases/{id}/actions"), Some(&action)).await.unwrap();
        assert_eq!(status, 200, "{action}: {body}");
    }
    let (status, body) = hotline
        .json(
            "POST",
            &format!("/api/cases/{id}/actions"),
            Some(&json!({"action": {"type": "rate", "score": rate}})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    id
}

/// The projection follows the log within a second or so; wait until it shows `cases` cases, each rated.
/// The rating is the last event of every history here, so once it shows, the rest of the history has too;
/// counting cases alone would race with the follower catching a case half-way through its loop.
async fn until_counted(client: &mut HttpClient, cases: u64) -> Value {
    for _ in 0..100 {
        let (status, body) = client.json("GET", "/api/analytics/groups", None).await.unwrap();
        assert_eq!(status, 200, "{body}");
        let totals = &body["groups"][0];
        if totals["cases"].as_u64() == Some(cases) && totals["rated"].as_u64() == Some(cases) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the projection never showed {cases} rated cases");
}

async fn statistics_and_evaluation_stay_within_the_callers_scope(app: TestApp) {
    case_through_the_loop(&app, 5).await;
    case_through_the_loop(&app, 2).await;
    let mut operator = app.signed_in("operator").await;
    let total = until_counted(&mut operator, 2).await;
    assert_eq!(total["groups"][0]["closed"], 2);
    assert_eq!(total["groups"][0]["satisfaction_rate"], 0.5);

    let (_, by) =
        operator.json("GET", "/api/analytics/groups?by=category,county&bucket=day", None).await.unwrap();
    let group = &by["groups"][0];
    assert_eq!(group["keys"][0]["value"], "city_appearance");
    assert_eq!(group["keys"][0]["name"], "市容环境");
    assert_eq!(group["keys"][1]["name"], "崇川区");
    assert_eq!(group["bucket"], support::START.0 - 9 * 3_600_000, "the day starts at midnight in Beijing");

    let (_, by_channel) = operator.json("GET", "/api/analytics/groups?by=channel", None).await.unwrap();
    assert_eq!(by_channel["groups"][0]["keys"][0]["value"], "hotline");
    assert_eq!(by_channel["groups"][0]["keys"][0]["name"], "12345热线", "channels have names on screen too");

    let (_, top) = operator.json("GET", "/api/analytics/top?dim=grid&n=3", None).await.unwrap();
    assert_eq!(top[0]["keys"][0]["name"], "桃坞路社区第一网格");
    let window = format!("from={}&to={}", support::START.0 - 3_600_000, support::START.0 + 3_600_000);
    let (_, change) = operator.json("GET", &format!("/api/analytics/change?{window}"), None).await.unwrap();
    assert_eq!(
        (change["current"]["cases"].as_u64(), change["previous"]["cases"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(change["change"].is_null(), "no change is computed against an empty period");

    let (status, ranked) = operator.json("GET", "/api/evaluation?unit=department", None).await.unwrap();
    assert_eq!(status, 200, "{ranked}");
    assert_eq!(ranked[0]["name"], "崇川区城市管理局");
    assert_eq!(ranked[0]["resolution"]["rate"], 1.0);
    assert_eq!(ranked[0]["satisfaction"]["numerator"], 1);
    assert_eq!(ranked[0]["rank"], 1);
    let (_, first) = operator.json("GET", "/api/evaluation?unit=grid&n=1", None).await.unwrap();
    assert_eq!(first.as_array().unwrap().len(), 1, "the first of the ranking only: {first}");
    assert_eq!(first[0]["rank"], 1);
    let (status, refused) = operator.json("GET", "/api/evaluation?unit=grid&n=0", None).await.unwrap();
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{refused}");

    // Another county's operator sees none of it, and cannot look into 崇川区.
    let mut haimen = app.signed_in("operator_haimen").await;
    let (_, theirs) = haimen.json("GET", "/api/analytics/groups", None).await.unwrap();
    assert_eq!(theirs["groups"].as_array().unwrap().len(), 0, "{theirs}");
    let (status, _) = haimen.json("GET", "/api/analytics/groups?within=320613", None).await.unwrap();
    assert_eq!(status, 404);
    // A department sees what it leads; citizens and admins see no statistics.
    let mut handler = app.signed_in("handler").await;
    let (_, mine) = handler.json("GET", "/api/analytics/groups", None).await.unwrap();
    assert_eq!(mine["groups"][0]["cases"], 2);
    let (status, _) = handler.json("GET", "/api/analytics/groups?department=102", None).await.unwrap();
    assert_eq!(status, 403);
    for who in ["citizen", "admin"] {
        let (status, _) = app.signed_in(who).await.json("GET", "/api/analytics/groups", None).await.unwrap();
        assert_eq!(status, 403, "{who}");
    }
    // Bad questions are refused with a reason.
    for bad in [
        "groups?by=colour",
        "groups?by=county,grid,matter",
        "groups?bucket=fortnight",
        "groups?channel=fax",
        "groups?from=10&to=5",
        "top?dim=grid&n=0",
    ] {
        let (status, body) = operator.json("GET", &format!("/api/analytics/{bad}"), None).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{bad}: {body}");
        let (zh, en) =
            (body["error"]["message"].as_str().unwrap(), body["error"]["message_en"].as_str().unwrap());
        assert!(zh.starts_with("输入有误：") && zh.len() > "输入有误：".len(), "a reason in Chinese: {body}");
        assert!(en.starts_with("The input is invalid: "), "and in English: {body}");
    }
    // Weights: admins set them per year; a bad set changes nothing.
    let mut admin = app.signed_in("admin").await;
    let (_, weights) = admin.json("GET", "/api/evaluation/weights/2026", None).await.unwrap();
    assert_eq!(weights["satisfaction"], 25.0);
    let mut only_satisfaction = weights.clone();
    for (_, value) in only_satisfaction.as_object_mut().unwrap() {
        *value = json!(0.0);
    }
    only_satisfaction["satisfaction"] = json!(1.0);
    let (status, _) =
        admin.json("PUT", "/api/evaluation/weights/2026", Some(&only_satisfaction)).await.unwrap();
    assert_eq!(status, 200);
    let (_, ranked) = operator.json("GET", "/api/evaluation?unit=department", None).await.unwrap();
    assert_eq!(ranked[0]["score"], 50.0);
    let mut negative = weights.clone();
    negative["response"] = json!(-1.0);
    let (status, _) = admin.json("PUT", "/api/evaluation/weights/2026", Some(&negative)).await.unwrap();
    assert_eq!(status, 422);
    let (status, _) = operator.json("PUT", "/api/evaluation/weights/2026", Some(&weights)).await.unwrap();
    assert_eq!(status, 403);
}

async fn monthly_reports_render_in_every_format(app: TestApp) {
    case_through_the_loop(&app, 4).await;
    let mut operator = app.signed_in("operator").await;
    until_counted(&mut operator, 1).await;
    let path = "/api/reports/monthly?month=2026-11";
    let html = operator.request("GET", &format!("{path}&format=html"), &[], None).await.unwrap();
    assert_eq!(html.status, 200);
    let page = String::from_utf8(html.body.clone()).unwrap();
    assert!(page.contains("崇川区") && page.contains("月度分析报告") && page.contains("<svg"), "{page}");
    let csv = operator.request("GET", &format!("{path}&format=csv"), &[], None).await.unwrap();
    assert!(csv.body.starts_with("\u{feff}".as_bytes()), "a BOM, so that spreadsheets read Chinese");
    let xlsx = operator.request("GET", &format!("{path}&format=xlsx"), &[], None).await.unwrap();
    assert!(xlsx.header("content-type").unwrap().contains("spreadsheetml"));
    // Spreadsheets are saved as files; the page opens where it is.
    for (answer, disposition) in [(&xlsx, "attachment; "), (&csv, "attachment; "), (&html, "inline; ")] {
        assert!(answer.header("content-disposition").unwrap().starts_with(disposition));
    }
    assert!(xlsx.body.starts_with(b"PK"), "an XLSX file is a zip");
    let (status, body) = operator.json("GET", &format!("{path}&format=json"), None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["totals"]["received"], 1);
    assert_eq!(body["departments"][0]["name"], "崇川区城市管理局");
    for (query, expected) in [
        ("month=2026-13", 422),
        ("month=2026-11&jurisdiction=320614", 404),
        ("month=2026-11&format=pdf", 422),
    ] {
        let (status, _) = operator.json("GET", &format!("/api/reports/monthly?{query}"), None).await.unwrap();
        assert_eq!(status, expected, "{query}");
    }
}

/// `shiyu import divisions` writes to the store while a server runs; a user placed in the new community signs
/// in before the server has read it. Their statistics, report and lists are their community's: empty here,
/// never the city's.
async fn a_place_imported_while_the_server_runs_is_its_users_scope_not_the_city(app: TestApp) {
    case_through_the_loop(&app, 5).await;
    let mut operator = app.signed_in("operator").await;
    until_counted(&mut operator, 1).await;
    let known = app.store.jurisdictions().await.unwrap();
    let township = known.iter().find(|j| j.code == "320613001").unwrap();
    let community = shiyu_domain::Jurisdiction {
        id: shiyu_domain::JurisdictionId(known.iter().map(|j| j.id.0).max().unwrap() + 1),
        code: "320613001099".into(),
        name: "新建社区".into(),
        level: shiyu_domain::Level::Community,
        parent: Some(township.id),
    };
    app.store.put_jurisdictions(std::slice::from_ref(&community)).await.unwrap();
    let newcomer = app
        .store
        .add_user(&shiyu_store::NewUser {
            username: "newcomer".into(),
            display_name: "新社区网格员".into(),
            role: shiyu_domain::Role::GridWorker,
            scope: shiyu_domain::Scope::Jurisdiction(community.id),
            password_hash: Some(shiyu_auth::hash_password(support::PASSWORD).unwrap()),
        })
        .await
        .unwrap();
    assert_eq!(newcomer.username, "newcomer");
    let mut client = app.signed_in("newcomer").await;
    let (status, cases) = client.json("GET", "/api/cases", None).await.unwrap();
    assert_eq!((status, cases["items"].as_array().map(Vec::len)), (200, Some(0)), "{cases}");
    let (status, mine) = client.json("GET", "/api/analytics/groups", None).await.unwrap();
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        mine["groups"][0]["cases"].as_u64().unwrap_or(0),
        0,
        "the community's, not the city's: {mine}"
    );
}
