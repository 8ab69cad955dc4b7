//! The API as its users drive it over HTTP, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_web::client::HttpClient;
use support::TestApp;
use support::{GRID, OTHER_COUNTY};

on_both_backends![
    the_whole_loop_runs_over_http_for_the_right_people,
    every_role_sees_and_does_only_what_it_may,
    citizens_report_follow_and_rate_without_an_account,
    bad_input_gets_a_clear_error_and_changes_nothing,
    sign_in_is_slowed_locked_and_protected_against_csrf,
    personal_data_is_masked_and_every_unmasked_view_is_audited,
    machine_clients_use_scoped_tokens,
    admins_manage_users_and_read_the_audit_log,
    a_stale_screen_cannot_overwrite_a_newer_change,
    operations_endpoints_answer,
    attachments_are_checked_on_content_and_served_only_to_who_may_see_the_case,
    the_live_stream_shows_each_caller_their_own_cases_and_resumes,
    reports_find_their_grid_and_dispatch_follows_the_catalog,
    the_classifier_learns_from_registrations_and_suggests_matters,
    likely_duplicates_are_offered_with_a_score,
    the_jurisdiction_tree_is_walked_by_id_or_by_code,
    a_merged_report_follows_the_case_it_was_merged_into,
    lists_filter_by_state_place_matter_and_tracking_code,
    an_extension_is_decided_on_the_date_it_would_give,
];

fn hotline_report(description: &str) -> Value {
    json!({"channel": "hotline", "description": description, "jurisdiction": GRID, "reporter_phone": "13812345678"})
}

async fn create_case(client: &mut HttpClient, description: &str) -> (i64, Value) {
    let (status, body) = client.json("POST", "/api/cases", Some(&hotline_report(description))).await.unwrap();
    assert_eq!(status, 201, "{body}");
    (body["case"]["id"].as_i64().unwrap(), body)
}

async fn act(client: &mut HttpClient, id: i64, request: Value) -> (u16, Value) {
    client.json("POST", &format!("/api/cases/{id}/actions"), Some(&request)).await.unwrap()
}

async fn act_ok(client: &mut HttpClient, id: i64, request: Value) -> Value {
    let (status, body) = act(client, id, request.clone()).await;
    assert_eq!(status, 200, "{request} → {body}");
    body
}

async fn the_whole_loop_runs_over_http_for_the_right_people(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let mut operator = app.signed_in("operator").await;
    let mut handler = app.signed_in("handler").await;
    let mut grid_worker = app.signed_in("gridworker").await;
    let (id, created) = create_case(&mut hotline, "桃坞路有流动摊贩占道经营").await;
    assert_eq!(created["case"]["status"], "received");
    assert_eq!(created["case"]["light"], "green");
    let code = created["tracking_code"].as_str().unwrap().to_string();

    app.advance_minutes(20);
    act_ok(&mut operator, id, json!({"action": {"type": "register", "matter": "street_vending"}})).await;
    let dispatched = act_ok(
        &mut operator,
        id,
        json!({"action": {"type": "dispatch", "lead": 101, "assisting": [102], "basis": "权责清单"}}),
    )
    .await;
    assert_eq!(dispatched["status"], "dispatched");
    assert_eq!(dispatched["lead_department"], 101);
    app.advance_minutes(30);
    act_ok(&mut handler, id, json!({"action": {"type": "accept"}})).await;
    act_ok(&mut handler, id, json!({"action": {"type": "report_back"}, "note": "已劝离，现场恢复整洁"}))
        .await;
    // The handler may not verify their own work.
    let (status, body) = act(&mut handler, id, json!({"action": {"type": "verify", "passed": true}})).await;
    assert_eq!(status, 403, "{body}");
    act_ok(&mut grid_worker, id, json!({"action": {"type": "verify", "passed": true}})).await;
    let closed = act_ok(&mut operator, id, json!({"action": {"type": "close"}})).await;
    assert_eq!(closed["status"], "closed");

    let mut citizen = app.anonymous();
    let (status, track) = citizen
        .json(
            "POST",
            &format!("/api/public/reports/{code}/rating"),
            Some(&json!({"score": 5, "comment": "很满意"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{track}");
    assert_eq!(track["rating"], 5);
    assert_eq!(track["can_rate"], false);

    let (status, history) = operator.json("GET", &format!("/api/cases/{id}/history"), None).await.unwrap();
    assert_eq!(status, 200);
    let kinds: Vec<&str> = history.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["received", "registered", "dispatched", "accepted", "reported_back", "verified", "closed", "rated"]
    );
    assert_eq!(history[4]["note"], "已劝离，现场恢复整洁");
    assert_eq!(history[0]["actor"]["role"], "hotline_agent");
    assert!(history[0]["data"]["reporter"].get("contact_sealed").is_none(), "sealed data never leaves");
}

/// Who may do what: every role against reads, an action, lists, reference data and admin endpoints.
async fn every_role_sees_and_does_only_what_it_may(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let (id, _) = create_case(&mut hotline, "小区垃圾堆放").await;
    let case = format!("/api/cases/{id}");
    // (user, GET case, register action, GET /api/cases, GET /api/catalog, GET /api/users, GET /api/audit)
    let table: [(&str, u16, u16, u16, u16, u16, u16); 10] = [
        ("citizen", 404, 404, 200, 403, 403, 403),
        ("hotline", 200, 403, 200, 200, 403, 403),
        ("gridworker", 200, 403, 200, 200, 403, 403),
        ("operator", 200, 200, 200, 200, 403, 403),
        ("handler", 404, 404, 200, 200, 403, 403),
        ("mediator", 200, 403, 200, 200, 403, 403),
        ("leader", 200, 403, 200, 200, 403, 403),
        ("admin", 404, 404, 403, 200, 200, 200),
        ("operator_haimen", 404, 404, 200, 200, 403, 403),
        ("", 401, 401, 401, 401, 401, 401),
    ];
    let matter = app.world.matters[0].code.clone();
    for (user, read, register, list, catalog, users, audit) in table {
        let mut client = if user.is_empty() { app.anonymous() } else { app.signed_in(user).await };
        let who = if user.is_empty() { "anonymous" } else { user };
        assert_eq!(client.json("GET", &case, None).await.unwrap().0, read, "{who} reads the case");
        // Registering succeeds once; later rows must not be refused for state, so each row gets a fresh case.
        let (fresh, _) = create_case(&mut hotline, "路面破损").await;
        let (got, body) =
            act(&mut client, fresh, json!({"action": {"type": "register", "matter": matter}})).await;
        assert_eq!(got, register, "{who} registers: {body}");
        assert_eq!(client.json("GET", "/api/cases", None).await.unwrap().0, list, "{who} lists cases");
        assert_eq!(
            client.json("GET", "/api/catalog", None).await.unwrap().0,
            catalog,
            "{who} reads the catalog"
        );
        assert_eq!(client.json("GET", "/api/users", None).await.unwrap().0, users, "{who} lists users");
        assert_eq!(
            client.json("GET", "/api/audit", None).await.unwrap().0,
            audit,
            "{who} reads the audit log"
        );
    }
    // Lists are scoped: the other county's operator sees none of these cases, the county's sees all.
    let mut haimen = app.signed_in("operator_haimen").await;
    let (_, page) = haimen.json("GET", "/api/cases", None).await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let mut operator = app.signed_in("operator").await;
    let (_, page) = operator.json("GET", "/api/cases?limit=3", None).await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let next = page["next"].as_i64().unwrap();
    let (_, rest) = operator.json("GET", &format!("/api/cases?limit=200&before={next}"), None).await.unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 8, "11 cases in all, 3 on the first page");
    assert!(rest["next"].is_null());
    // A department sees what was dispatched to it, once it was.
    let mut handler = app.signed_in("handler").await;
    act_ok(&mut operator, id, json!({"action": {"type": "register", "matter": matter}})).await;
    act_ok(&mut operator, id, json!({"action": {"type": "dispatch", "lead": 101}})).await;
    let (status, seen) = handler.json("GET", &case, None).await.unwrap();
    assert_eq!(status, 200);
    // Names beside the ids, and the deadline as a person reads it.
    assert_eq!(seen["place_name"], "崇川区和平桥街道桃坞路社区第一网格", "{seen}");
    assert_eq!(
        (&seen["owner_name"], &seen["matter_name"]),
        (&json!("和平桥街道"), &json!("占道经营")),
        "{seen}"
    );
    assert_eq!(seen["lead_department_name"], app.world.departments[0].name.as_str(), "{seen}");
    assert_eq!(seen["deadline"]["stage_label"], "签收", "{seen}");
    let left = seen["deadline"]["minutes_left"].as_i64().unwrap();
    assert!(left > 0 && seen["deadline"]["due_label"].as_str().unwrap().starts_with("2026-11-"), "{seen}");
    let (_, page) = handler.json("GET", "/api/cases", None).await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    // A leader may instruct but not register.
    let mut leader = app.signed_in("leader").await;
    act_ok(&mut leader, id, json!({"action": {"type": "instruct"}, "note": "请尽快处理，注意群众反映"}))
        .await;
}

async fn citizens_report_follow_and_rate_without_an_account(app: TestApp) {
    let mut citizen = app.anonymous();
    let report =
        json!({"description": "楼道里堆满杂物，存在消防隐患", "jurisdiction": GRID, "phone": "13900001111"});
    let bytes = report.to_string().into_bytes();
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "app-42")];
    let first = citizen.request("POST", "/api/public/reports", &headers, Some(&bytes)).await.unwrap();
    let again = citizen.request("POST", "/api/public/reports", &headers, Some(&bytes)).await.unwrap();
    assert_eq!((first.status, again.status), (201, 200));
    let code = first.json()["tracking_code"].as_str().unwrap().to_string();
    assert_eq!(again.json()["tracking_code"], code, "a retry returns the same case");
    assert_eq!(app.store.count_cases().await.unwrap(), 1);

    let (status, track) = citizen.json("GET", &format!("/api/public/reports/{code}"), None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(track["status"], "received");
    assert_eq!(track["steps"][0]["label"], "已受理");
    let (status, _) = citizen.json("GET", "/api/public/reports/AAAA-BBBB-CCCC", None).await.unwrap();
    assert_eq!(status, 404);
    // Rating before closure is refused, and changes nothing.
    let (status, body) = citizen
        .json("POST", &format!("/api/public/reports/{code}/rating"), Some(&json!({"score": 4})))
        .await
        .unwrap();
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "CASE_STATE_FORBIDS_ACTION");
    // Which state refused which action, in both languages.
    assert_eq!(body["error"]["message"], "事件当前状态不允许此操作：事件已受理时不能评价", "{body}");
    assert!(body["error"]["message_en"]
        .as_str()
        .unwrap()
        .ends_with(": rate is not possible while the case is received"));

    // Staff notes never reach the public view; the reply written for the reporter does.
    let mut operator = app.signed_in("operator").await;
    let id = app.store.case_by_tracking_code(&code).await.unwrap().unwrap().0;
    let reply = "楼道杂物属物业管理范围，已转告小区物业清理，如仍未处理请再次来电。";
    let (status, refused) = act(
        &mut operator,
        id,
        json!({"action": {"type": "register", "matter": app.world.matters[0].code}, "reply": "已受理"}),
    )
    .await;
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("REPLY_NOT_ALLOWED")), "{refused}");
    assert_eq!(refused["error"]["message"], "只有不予立案、结案和作废时可以答复反映人：立案", "{refused}");
    let rejected = act_ok(
        &mut operator,
        id,
        json!({"action": {"type": "reject"}, "note": "内部备注：反映人张三情绪激动", "reply": format!("  {reply}\n")}),
    )
    .await;
    assert_eq!(rejected["version"], 2, "the refused register changed nothing");
    let (_, track) = citizen.json("GET", &format!("/api/public/reports/{code}"), None).await.unwrap();
    assert_eq!(track["status"], "rejected");
    assert!(!track.to_string().contains("张三"), "{track}");
    assert_eq!(track["steps"].as_array().unwrap().len(), 2);
    assert_eq!(track["steps"][1]["label"], "不予立案");
    assert_eq!(track["steps"][1]["reply"], reply, "kept without the blanks around it: {track}");
    assert!(track["steps"][0].get("reply").is_none(), "{track}");
    let (_, history) = operator.json("GET", &format!("/api/cases/{id}/history"), None).await.unwrap();
    let last = history.as_array().unwrap().iter().find(|e| e["kind"] == "rejected").unwrap();
    assert_eq!((&last["reply"], &last["note"]), (&json!(reply), &json!("内部备注：反映人张三情绪激动")));

    for (body, code) in [
        (json!({"description": "x", "jurisdiction": GRID, "phone": "12345"}), "PHONE_INVALID"),
        (json!({"description": "x", "jurisdiction": "999999"}), "JURISDICTION_UNKNOWN"),
        (
            json!({"description": "x", "jurisdiction": GRID, "location": {"lon": -70.0, "lat": 40.0}}),
            "LOCATION_OUTSIDE_AREA",
        ),
        (json!({"description": "   ", "jurisdiction": GRID}), "DESCRIPTION_EMPTY"),
    ] {
        let (status, answer) = citizen.json("POST", "/api/public/reports", Some(&body)).await.unwrap();
        assert_eq!((status, answer["error"]["code"].as_str().unwrap()), (422, code), "{body}");
    }
    assert_eq!(app.store.count_cases().await.unwrap(), 1);
}

async fn bad_input_gets_a_clear_error_and_changes_nothing(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let before = app.store.count_cases().await.unwrap();
    let long = "很".repeat(10_000);
    let oversize = "x".repeat(300 * 1024);
    // The last element is a word both messages must name: the field or value at fault.
    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (b"{not json".to_vec(), 400, "MALFORMED_JSON", ""),
        (json!({"channel": "hotline", "description": "x", "jurisdiction": GRID, "colour": "red"}).to_string().into_bytes(), 422, "INVALID_FIELDS", "colour"),
        (json!({"channel": "hotline", "description": 42, "jurisdiction": GRID}).to_string().into_bytes(), 422, "INVALID_FIELDS", "description"),
        (json!({"channel": "hotline", "jurisdiction": GRID}).to_string().into_bytes(), 422, "INVALID_FIELDS", "description"),
        // The fields in order as an array: serde alone would read it as the object.
        (json!(["hotline", "路灯不亮", null, null, GRID, null, null, null, null]).to_string().into_bytes(), 422, "INVALID_FIELDS", ""),
        (json!({"channel": "fax", "description": "x", "jurisdiction": GRID}).to_string().into_bytes(), 422, "INVALID_INPUT", "fax"),
        (json!({"channel": "hotline", "description": "", "jurisdiction": GRID}).to_string().into_bytes(), 422, "DESCRIPTION_EMPTY", ""),
        (json!({"channel": "hotline", "description": long, "jurisdiction": GRID}).to_string().into_bytes(), 422, "TEXT_TOO_LONG", "description"),
        (json!({"channel": "hotline", "description": "x", "jurisdiction": OTHER_COUNTY, "matter": "nope"}).to_string().into_bytes(), 422, "MATTER_UNKNOWN", ""),
        (json!({"channel": "hotline", "description": "x", "jurisdiction": GRID, "reporter_id_number": "110105194912310021"}).to_string().into_bytes(), 422, "ID_NUMBER_INVALID", ""),
        (oversize.into_bytes(), 413, "BODY_TOO_LARGE", ""),
    ];
    for (body, status, code, names) in cases {
        let response = hotline
            .request("POST", "/api/cases", &[("Content-Type", "application/json")], Some(&body))
            .await
            .unwrap();
        let answer = response.json();
        assert_eq!(
            (response.status, answer["error"]["code"].as_str().unwrap_or("")),
            (status, code),
            "{answer}"
        );
        let (zh, en) =
            (answer["error"]["message"].as_str().unwrap(), answer["error"]["message_en"].as_str().unwrap());
        assert!(!zh.is_empty() && !en.is_empty());
        assert!(zh.contains(names) && en.contains(names), "{code} should name `{names}`: {zh} / {en}");
    }
    let wrong_type =
        hotline.request("POST", "/api/cases", &[("Content-Type", "text/plain")], Some(b"{}")).await.unwrap();
    assert_eq!(wrong_type.status, 415);
    assert_eq!(app.store.count_cases().await.unwrap(), before, "no refused request created a case");

    // Valid text that looks dangerous is stored exactly as sent.
    for text in ["'; DROP TABLE cases; --", "<script>alert('x')</script>", "井盖丢了😱🚧", "𠀀𪚥𰻞 生僻字"]
    {
        let (id, _) = create_case(&mut hotline, text).await;
        let (_, case) = hotline.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
        assert_eq!(case["description"], text);
    }
    // Refused actions change nothing either.
    let (id, _) = create_case(&mut hotline, "占道").await;
    let mut operator = app.signed_in("operator").await;
    let version = |app: &TestApp| {
        let store = app.store.clone();
        async move { store.load_case(shiyu_domain::CaseId(id)).await.unwrap().unwrap().version }
    };
    let v = version(&app).await;
    for request in [
        json!({"action": {"type": "reject"}}),
        json!({"action": {"type": "dispatch", "lead": 999}}),
        json!({"action": {"type": "close"}}),
        json!({"action": {"type": "teleport"}}),
        json!({"action": {"type": "register", "matter": "street_vending", "colour": 1}}),
    ] {
        let (status, body) = act(&mut operator, id, request.clone()).await;
        assert!(status == 409 || status == 422, "{request} → {status} {body}");
    }
    assert_eq!(version(&app).await, v);
}

async fn sign_in_is_slowed_locked_and_protected_against_csrf(app: TestApp) {
    let mut client = app.anonymous();
    let wrong = json!({"username": "operator", "password": "not-the-password"});
    for _ in 0..3 {
        let (status, body) = client.json("POST", "/api/session", Some(&wrong)).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str().unwrap()), (401, "LOGIN_FAILED"));
    }
    // Locked now, even with the right password.
    let (status, body) = client.sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (429, "ACCOUNT_LOCKED"));
    app.advance_minutes(16);
    let (status, _) = client.sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!(status, 200, "the lock lifts after its time");
    let (status, body) = client
        .json("POST", "/api/session", Some(&json!({"username": "nobody", "password": "x"})))
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str().unwrap()),
        (401, "LOGIN_FAILED"),
        "unknown users look the same"
    );

    // Cookie-authenticated writes need the CSRF token.
    let mut hotline = app.signed_in("hotline").await;
    hotline.csrf_token = None;
    let (status, body) = hotline.json("POST", "/api/cases", Some(&hotline_report("x"))).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (403, "CSRF_TOKEN_INVALID"));
    hotline.csrf_token = Some("forged".into());
    assert_eq!(hotline.json("POST", "/api/cases", Some(&hotline_report("x"))).await.unwrap().0, 403);

    // Sessions live in the database, end on logout and expire.
    let mut operator = app.signed_in("operator").await;
    assert_eq!(operator.json("GET", "/api/me", None).await.unwrap().1["username"], "operator");
    let response = operator.request("DELETE", "/api/session", &[], None).await.unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(operator.json("GET", "/api/me", None).await.unwrap().0, 401);
    let mut leader = app.signed_in("leader").await;
    app.advance_minutes(13 * 60);
    assert_eq!(leader.json("GET", "/api/me", None).await.unwrap().0, 401, "sessions expire");

    // Changing one's password ends every session and needs the current one.
    let mut gw = app.signed_in("gridworker").await;
    let change = json!({"current_password": "wrong-password-1", "new_password": "Another-pass-2026"});
    let (status, body) = gw.json("POST", "/api/me/password", Some(&change)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (403, "CURRENT_PASSWORD_WRONG"));
    let weak = json!({"current_password": support::PASSWORD, "new_password": "short"});
    assert_eq!(gw.json("POST", "/api/me/password", Some(&weak)).await.unwrap().0, 422);
    let good = json!({"current_password": support::PASSWORD, "new_password": "Another-pass-2026"});
    assert_eq!(gw.json("POST", "/api/me/password", Some(&good)).await.unwrap().0, 204);
    assert_eq!(gw.json("GET", "/api/me", None).await.unwrap().0, 401);
    assert_eq!(gw.sign_in("gridworker", "Another-pass-2026").await.unwrap().0, 200);

    // Wrong current passwords count toward the lock as failed sign-ins do: a session left open on someone
    // else's screen is no way to guess the password without limit.
    let mut hotline = app.signed_in("hotline").await;
    let guess = json!({"current_password": "a-guess-2026", "new_password": "Another-pass-2026"});
    for _ in 0..3 {
        assert_eq!(hotline.json("POST", "/api/me/password", Some(&guess)).await.unwrap().0, 403);
    }
    let right = json!({"current_password": support::PASSWORD, "new_password": "Another-pass-2026"});
    let (status, body) = hotline.json("POST", "/api/me/password", Some(&right)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (429, "ACCOUNT_LOCKED"));
    let message = body["error"]["message_en"].as_str().unwrap();
    assert!(message.contains("locked until") && message.contains("Beijing time"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("北京时间"), "{body}");
    assert_eq!(app.anonymous().sign_in("hotline", support::PASSWORD).await.unwrap().0, 429);
}

async fn personal_data_is_masked_and_every_unmasked_view_is_audited(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let report = json!({"channel": "hotline", "description": "邻居噪音", "jurisdiction": GRID,
                        "reporter_phone": "13812345678", "reporter_id_number": "11010519491231002x"});
    let (status, created) = hotline.json("POST", "/api/cases", Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["case"]["id"].as_i64().unwrap();
    assert_eq!(created["case"]["reporter"]["phone"], "138****5678");
    assert_eq!(created["case"]["reporter"]["id_number"], "110105********002X");
    // At rest it is sealed: the number appears nowhere in the stored state.
    let stored = app.store.load_case(shiyu_domain::CaseId(id)).await.unwrap().unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains("13812345678"));

    let mut operator = app.signed_in("operator").await;
    let (status, data) = operator.json("GET", &format!("/api/cases/{id}/personal-data"), None).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(data["phone"], "13812345678");
    assert_eq!(data["id_number"], "11010519491231002X");
    assert_eq!(data["tracking_code"], created["tracking_code"], "to read back to a caller: {data}");
    let (_, seen) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert!(!seen.to_string().contains(created["tracking_code"].as_str().unwrap()), "not on the case itself");
    let mut leader = app.signed_in("leader").await;
    assert_eq!(leader.json("GET", &format!("/api/cases/{id}/personal-data"), None).await.unwrap().0, 403);
    let mut haimen = app.signed_in("operator_haimen").await;
    assert_eq!(haimen.json("GET", &format!("/api/cases/{id}/personal-data"), None).await.unwrap().0, 404);

    let log = app.store.audit_log(0, 1000).await.unwrap();
    let views: Vec<_> = log.iter().filter(|r| r.entry.action == "personal_data_viewed").collect();
    assert_eq!(views.len(), 1, "exactly the one unmasked view is audited");
    assert_eq!(views[0].entry.target.as_deref(), Some(format!("case:{id}").as_str()));
    assert_eq!(views[0].entry.address.as_deref(), Some("127.0.0.1"));
    assert_eq!(views[0].entry.detail.as_deref(), Some("phone,id_number,tracking_code"));
}

async fn machine_clients_use_scoped_tokens(app: TestApp) {
    let mut admin = app.signed_in("admin").await;
    let (status, writer) = admin
        .json(
            "POST",
            "/api/tokens",
            Some(&json!({"name": "12345热线系统", "username": "hotline", "scopes": ["read", "write"]})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{writer}");
    let (_, reader) = admin
        .json("POST", "/api/tokens", Some(&json!({"name": "大屏", "username": "leader", "scopes": ["read"]})))
        .await
        .unwrap();
    let bearer = |token: &Value| format!("Bearer {}", token["token"].as_str().unwrap());
    let body = hotline_report("传感器：井盖位移").to_string().into_bytes();
    let mut machine = app.anonymous();
    let auth = bearer(&writer);
    let headers = [("Content-Type", "application/json"), ("Authorization", auth.as_str())];
    let created = machine.request("POST", "/api/cases", &headers, Some(&body)).await.unwrap();
    assert_eq!(created.status, 201, "{}", created.json());
    let personal_data = format!("/api/cases/{}/personal-data", created.json()["case"]["id"]);
    assert_eq!(machine.request("GET", &personal_data, &headers[1..], None).await.unwrap().status, 200);
    let read_auth = bearer(&reader);
    let read_only = [("Content-Type", "application/json"), ("Authorization", read_auth.as_str())];
    assert_eq!(machine.request("POST", "/api/cases", &read_only, Some(&body)).await.unwrap().status, 403);
    assert_eq!(machine.request("GET", "/api/cases", &read_only[1..], None).await.unwrap().status, 200);
    let bad = [("Authorization", "Bearer not-a-token")];
    assert_eq!(machine.request("GET", "/api/cases", &bad, None).await.unwrap().status, 401);
    let revoke = admin.request("DELETE", &format!("/api/tokens/{}", writer["id"]), &[], None).await.unwrap();
    assert_eq!(revoke.status, 204);
    let refused = machine.request("POST", "/api/cases", &headers, Some(&body)).await.unwrap();
    assert_eq!(refused.status, 401, "a revoked token no longer signs anyone in");
    assert_eq!(refused.json()["error"]["details"], "the token was revoked");
    // Admins see which clients hold tokens, as whom, and which are revoked; never a token itself.
    let (status, listed) = admin.json("GET", "/api/tokens", None).await.unwrap();
    assert_eq!(status, 200, "{listed}");
    let summary: Vec<(&str, &str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (t["name"].as_str().unwrap(), t["username"].as_str().unwrap(), t["revoked"].as_bool().unwrap())
        })
        .collect();
    assert_eq!(summary, [("大屏", "leader", false), ("12345热线系统", "hotline", true)]);
    assert_eq!(listed[0]["scopes"], json!(["read"]));
    assert!(!listed.to_string().contains(writer["token"].as_str().unwrap()));
    // The audit log says whom a token acts as, and tells what was done with it from what its user did.
    let (_, audit) = admin.json("GET", "/api/audit?limit=200", None).await.unwrap();
    let entries = audit["items"].as_array().unwrap();
    let issued = entries
        .iter()
        .find(|e| e["action"] == "token_created" && e["target"] == format!("token:{}", writer["id"]))
        .unwrap_or_else(|| panic!("no token_created entry: {audit}"));
    assert!(issued["detail"].as_str().unwrap().contains("(hotline), scopes read,write"), "{issued}");
    let by_token = format!("api_token:{}", writer["id"]);
    let viewed = entries.iter().find(|e| e["action"] == "personal_data_viewed").unwrap();
    assert_eq!((&viewed["actor"], &viewed["user"]), (&json!(by_token), &issued_for(&app, "hotline").await));
}

async fn issued_for(app: &TestApp, username: &str) -> Value {
    json!(app.store.credentials(username).await.unwrap().unwrap().user.id.0)
}

async fn admins_manage_users_and_read_the_audit_log(app: TestApp) {
    let mut admin = app.signed_in("admin").await;
    let new_user = json!({"username": "op_chongchuan2", "display_name": "崇川区值班员二", "role": "operator",
                          "jurisdiction": "320613", "password": "Duty-officer-2026"});
    let (status, user) = admin.json("POST", "/api/users", Some(&new_user)).await.unwrap();
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        admin.json("POST", "/api/users", Some(&new_user)).await.unwrap().0,
        409,
        "usernames are unique"
    );
    let no_scope =
        json!({"username": "op_x", "display_name": "x", "role": "operator", "password": "Duty-officer-2026"});
    assert_eq!(admin.json("POST", "/api/users", Some(&no_scope)).await.unwrap().0, 422);
    let weak = json!({"username": "op_y", "display_name": "y", "role": "operator", "jurisdiction": "320613", "password": "123"});
    assert_eq!(admin.json("POST", "/api/users", Some(&weak)).await.unwrap().0, 422);
    // A grid worker over a whole district would verify and see all its cases: grids and communities only.
    let mut patrol = json!({"username": "gw_z", "display_name": "z", "role": "grid_worker", "jurisdiction": "320613",
                            "password": "Grid-worker-2026"});
    let (status, body) = admin.json("POST", "/api/users", Some(&patrol)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("网格员"), "{body}");
    patrol["jurisdiction"] = json!("320613001001001");
    assert_eq!(admin.json("POST", "/api/users", Some(&patrol)).await.unwrap().0, 201);

    let mut created = app.anonymous();
    assert_eq!(created.sign_in("op_chongchuan2", "Duty-officer-2026").await.unwrap().0, 200);
    let id = user["id"].as_i64().unwrap();
    let reset = admin
        .json("POST", &format!("/api/users/{id}/password"), Some(&json!({"password": "Reset-by-admin-1"})))
        .await
        .unwrap();
    assert_eq!(reset.0, 204);
    assert_eq!(
        created.json("GET", "/api/me", None).await.unwrap().0,
        401,
        "a reset ends the user's sessions"
    );

    let mut operator = app.signed_in("operator").await;
    assert_eq!(operator.json("POST", "/api/users", Some(&new_user)).await.unwrap().0, 403);

    let (status, page) = admin.json("GET", "/api/audit?limit=200", None).await.unwrap();
    assert_eq!(status, 200);
    let actions: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in ["login", "user_created", "password_reset"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let (_, users) = admin.json("GET", "/api/users?limit=5", None).await.unwrap();
    assert_eq!(users["items"].as_array().unwrap().len(), 5);
    let next = users["next"].as_i64().unwrap();
    let (_, rest) = admin.json("GET", &format!("/api/users?after={next}"), None).await.unwrap();
    assert_eq!(
        rest["items"].as_array().unwrap().len(),
        app.world.users.len() + 2 - 5,
        "the two users made here too"
    );
}

async fn a_stale_screen_cannot_overwrite_a_newer_change(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let (id, created) = create_case(&mut hotline, "违章搭建").await;
    let version = created["case"]["version"].as_u64().unwrap();
    let mut operator = app.signed_in("operator").await;
    let register =
        json!({"action": {"type": "register", "matter": "street_vending"}, "expected_version": version});
    act_ok(&mut operator, id, register.clone()).await;
    let reject = json!({"action": {"type": "reject"}, "note": "重复", "expected_version": version});
    let (status, body) = act(&mut operator, id, reject).await;
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (409, "VERSION_CONFLICT"));
}

async fn operations_endpoints_answer(app: TestApp) {
    let mut client = app.anonymous();
    let health = client.request("GET", "/healthz", &[], None).await.unwrap();
    assert_eq!((health.status, health.body.as_slice()), (200, b"ok".as_slice()));
    assert_eq!(client.request("GET", "/readyz", &[], None).await.unwrap().status, 200);
    let mut hotline = app.signed_in("hotline").await;
    create_case(&mut hotline, "路灯不亮").await;
    let metrics =
        String::from_utf8(client.request("GET", "/metrics", &[], None).await.unwrap().body).unwrap();
    assert!(
        metrics.contains("shiyu_http_requests_total{method=\"POST\",route=\"/api/cases\",status=\"201\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("shiyu_cases{status=\"received\"} 1"), "{metrics}");
    assert!(metrics.contains("shiyu_group_commit_transactions_total"));
    let gauge = |name: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.trim().parse::<i64>().ok()).unwrap_or(-1)
    };
    assert_eq!(gauge("shiyu_log_seq "), 1, "{metrics}");
    assert!((0..=1).contains(&gauge("shiyu_analytics_seq ")), "{metrics}");
    assert!(
        metrics.contains("shiyu_http_request_duration_seconds_bucket{route=\"/api/cases\",le=\"+Inf\"} 1")
    );
    let (status, document) = client.json("GET", "/api/openapi.json", None).await.unwrap();
    assert_eq!(status, 200);
    assert!(document["paths"]["/api/cases/{id}/actions"]["post"].is_object());
}

async fn attachments_are_checked_on_content_and_served_only_to_who_may_see_the_case(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR photo of a pothole".to_vec();
    let upload = |name: &str| format!("/api/attachments?name={name}");
    // The declared type is ignored: content decides.
    let uploaded = hotline
        .request("POST", &upload("pothole.png"), &[("Content-Type", "text/plain")], Some(&png))
        .await
        .unwrap();
    assert_eq!(uploaded.status, 201, "{}", uploaded.json());
    let sha = uploaded.json()["sha256"].as_str().unwrap().to_string();
    assert_eq!(uploaded.json()["mime"], "image/png");
    let html = hotline
        .request(
            "POST",
            &upload("x.png"),
            &[("Content-Type", "image/png")],
            Some(b"<html><script>alert(1)</script>"),
        )
        .await
        .unwrap();
    assert_eq!((html.status, html.json()["error"]["code"].as_str().unwrap()), (415, "FILE_TYPE_NOT_ALLOWED"));
    // A good photo sent as a form (`curl -F`) is told how to send it, not that its type is wrong.
    let mut form =
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\n\r\n".to_vec();
    form.extend_from_slice(&png);
    form.extend_from_slice(b"\r\n--XyZ--\r\n");
    let as_form = hotline
        .request(
            "POST",
            &upload("p.png"),
            &[("Content-Type", "multipart/form-data; boundary=XyZ")],
            Some(&form),
        )
        .await
        .unwrap();
    assert_eq!((as_form.status, as_form.json()["error"]["code"].as_str().unwrap()), (415, "UPLOAD_NOT_RAW"));
    assert!(as_form.json()["error"]["message_en"].as_str().unwrap().contains("--data-binary"));
    let huge = vec![0xFFu8; 11 * 1024 * 1024];
    assert_eq!(hotline.request("POST", &upload("big.jpg"), &[], Some(&huge)).await.unwrap().status, 413);

    let mut report = hotline_report("路面坑洞，附照片");
    report["attachments"] = json!([{"sha256": sha, "name": "pothole.png"}]);
    let (status, created) = hotline.json("POST", "/api/cases", Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["case"]["id"].as_i64().unwrap();
    let mut missing = hotline_report("x");
    missing["attachments"] = json!([{"sha256": "0".repeat(64), "name": "x.png"}]);
    let (status, body) = hotline.json("POST", "/api/cases", Some(&missing)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (422, "ATTACHMENT_UNKNOWN"));

    let path = format!("/api/cases/{id}/attachments/{sha}");
    let mut operator = app.signed_in("operator").await;
    // Knowing a file's hash is not enough to attach it: only its uploaders may, each after uploading it.
    let mut borrowed = hotline_report("借用他人照片");
    borrowed["attachments"] = json!([{"sha256": sha, "name": "mine.png"}]);
    let (status, body) = operator.json("POST", "/api/cases", Some(&borrowed)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str().unwrap()), (422, "ATTACHMENT_UNKNOWN"));
    assert_eq!(operator.request("POST", &upload("mine.png"), &[], Some(&png)).await.unwrap().status, 201);
    let (status, own) = operator.json("POST", "/api/cases", Some(&borrowed)).await.unwrap();
    assert_eq!(status, 201, "{own}");
    let file = operator.request("GET", &path, &[], None).await.unwrap();
    assert_eq!(file.status, 200);
    assert_eq!(file.body, png);
    assert_eq!(file.header("content-type"), Some("image/png"));
    assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
    // The same content is stored once, but each case serves it under the name it was attached with.
    assert_eq!(file.header("content-disposition"), Some("attachment; filename*=UTF-8''pothole.png"));
    let own_path = format!("/api/cases/{}/attachments/{sha}", own["case"]["id"]);
    let own_file = operator.request("GET", &own_path, &[], None).await.unwrap();
    assert_eq!(own_file.header("content-disposition"), Some("attachment; filename*=UTF-8''mine.png"));
    let mut haimen = app.signed_in("operator_haimen").await;
    assert_eq!(haimen.request("GET", &path, &[], None).await.unwrap().status, 404);
    // A file that exists but belongs to no event of this case is not served through it.
    let (other, _) = create_case(&mut hotline, "另一件").await;
    assert_eq!(
        operator
            .request("GET", &format!("/api/cases/{other}/attachments/{sha}"), &[], None)
            .await
            .unwrap()
            .status,
        404
    );

    // Citizens without an account upload through the public endpoint and attach to their report.
    let mut citizen = app.anonymous();
    let jpeg = b"\xFF\xD8\xFF\xE0 a citizen's photo".to_vec();
    let public =
        citizen.request("POST", "/api/public/attachments?name=a.jpg", &[], Some(&jpeg)).await.unwrap();
    assert_eq!(public.status, 201);
    let (public_sha, receipt) = (public.json()["sha256"].clone(), public.json()["receipt"].clone());
    assert!(receipt.as_str().is_some_and(|r| r.len() >= 32), "{}", public.json());
    // Without the receipt, or with someone else's, the file cannot be attached; not even by hash alone.
    for refs in [
        json!([{"sha256": public_sha, "name": "a.jpg"}]),
        json!([{"sha256": public_sha, "name": "a.jpg", "receipt": "a-guess"}]),
        json!([{"sha256": sha, "name": "pothole.png", "receipt": receipt}]),
    ] {
        let report = json!({"description": "垃圾满溢", "jurisdiction": GRID, "attachments": refs});
        let (status, body) =
            app.anonymous().json("POST", "/api/public/reports", Some(&report)).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str().unwrap()), (422, "ATTACHMENT_UNKNOWN"), "{refs}");
    }
    let refs = json!([{"sha256": public_sha, "name": "a.jpg", "receipt": receipt}]);
    let report = json!({"description": "垃圾满溢", "jurisdiction": GRID, "attachments": refs});
    let (status, created) = citizen.json("POST", "/api/public/reports", Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert!(!created.to_string().contains(receipt.as_str().unwrap()), "the receipt is never shown again");
    // A retry that uploaded the file again comes with a new receipt and is still the same report.
    let mut sent = Vec::new();
    for _ in 0..2 {
        let again =
            citizen.request("POST", "/api/public/attachments?name=a.jpg", &[], Some(&jpeg)).await.unwrap();
        let refs = json!([{"sha256": public_sha, "name": "a.jpg", "receipt": again.json()["receipt"]}]);
        let body =
            json!({"description": "垃圾又满了", "jurisdiction": GRID, "attachments": refs}).to_string();
        let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "photo-retry")];
        let answer =
            citizen.request("POST", "/api/public/reports", &headers, Some(body.as_bytes())).await.unwrap();
        sent.push((answer.status, answer.json()["tracking_code"].clone()));
    }
    assert_eq!((sent[0].0, sent[1].0), (201, 200), "{sent:?}");
    assert_eq!(sent[0].1, sent[1].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_with_a_token_answer_only_its_bearer() {
    let settings = shiyu_web::WebSettings {
        metrics_token: Some("scrape-token-2026".into()),
        ..shiyu_web::WebSettings::default()
    };
    let app = support::TestApp::start_with(support::Backend::Sqlite, settings).await;
    let mut client = app.anonymous();
    for header in
        [None, Some("Bearer wrong-token"), Some("scrape-token-2026"), Some("Bearer scrape-token-20266")]
    {
        let headers: Vec<(&str, &str)> = header.map(|h| ("Authorization", h)).into_iter().collect();
        let refused = client.request("GET", "/metrics", &headers, None).await.unwrap();
        assert_eq!(
            (refused.status, refused.json()["error"]["code"].as_str()),
            (401, Some("UNAUTHENTICATED")),
            "{header:?}"
        );
    }
    let scraped = client
        .request("GET", "/metrics", &[("Authorization", "Bearer scrape-token-2026")], None)
        .await
        .unwrap();
    assert_eq!(scraped.status, 200);
    assert!(String::from_utf8(scraped.body).unwrap().contains("shiyu_log_seq"));
    assert_eq!(client.request("GET", "/healthz", &[], None).await.unwrap().status, 200, "health stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_endpoints_are_rate_limited_per_address() {
    let settings =
        shiyu_web::WebSettings { public_requests_per_minute: 10, ..shiyu_web::WebSettings::default() };
    let app = support::TestApp::start_with(support::Backend::Sqlite, settings).await;
    // Sign-in counts against the same allowance: one of the five a burst may use.
    let mut operator = app.signed_in("operator").await;
    let mut citizen = app.anonymous();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(citizen.json("GET", "/api/public/reports/AAAA-BBBB-CCCC", None).await.unwrap().0);
    }
    assert_eq!(
        statuses,
        [404, 404, 404, 404, 429, 429],
        "a burst of half a minute's allowance, then refusals"
    );
    let refused = citizen.request("GET", "/api/public/reports/AAAA-BBBB-CCCC", &[], None).await.unwrap();
    assert_eq!(refused.json()["error"]["code"], "RATE_LIMITED");
    let wait: u64 = refused.header("retry-after").expect("it says when to try again").parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Signed-in staff endpoints are not limited this way.
    for _ in 0..10 {
        assert_eq!(operator.json("GET", "/api/cases", None).await.unwrap().0, 200);
    }
}

async fn the_live_stream_shows_each_caller_their_own_cases_and_resumes(app: TestApp) {
    use shiyu_web::client::EventStream;
    use std::time::Duration;
    async fn within<T>(f: impl std::future::Future<Output = T>) -> Result<T, tokio::time::error::Elapsed> {
        tokio::time::timeout(Duration::from_secs(10), f).await
    }
    let operator = app.signed_in("operator").await;
    let haimen = app.signed_in("operator_haimen").await;
    let cookie = |c: &HttpClient| c.cookie.clone().unwrap();
    let operator_cookie = cookie(&operator);
    let mut mine =
        EventStream::open(app.address, "/api/events/stream", &[("Cookie", &operator_cookie)]).await.unwrap();
    assert_eq!(mine.status, 200);
    let haimen_cookie = cookie(&haimen);
    let mut theirs =
        EventStream::open(app.address, "/api/events/stream", &[("Cookie", &haimen_cookie)]).await.unwrap();
    assert_eq!(EventStream::open(app.address, "/api/events/stream", &[]).await.unwrap().status, 401);

    let mut hotline = app.signed_in("hotline").await;
    let (id, _) = create_case(&mut hotline, "直播测试：路灯不亮").await;
    let mut operator = operator;
    act_ok(&mut operator, id, json!({"action": {"type": "register", "matter": "street_vending"}})).await;

    let first = within(mine.next()).await.expect("an event arrives").unwrap();
    assert_eq!(first.event.as_deref(), Some("received"));
    let data: Value = serde_json::from_str(&first.data).unwrap();
    assert_eq!((data["case_id"].as_i64(), data["label"].as_str()), (Some(id), Some("受理")));
    let second = within(mine.next()).await.unwrap().unwrap();
    assert_eq!(second.event.as_deref(), Some("registered"));
    // The other county's operator sees nothing of it.
    let silent = tokio::time::timeout(Duration::from_millis(800), theirs.next()).await;
    assert!(silent.is_err(), "{silent:?}");

    // Resuming after the first event replays the second.
    let first_id = first.id.unwrap();
    let mut resumed = EventStream::open(
        app.address,
        "/api/events/stream",
        &[("Cookie", &operator_cookie), ("Last-Event-ID", &first_id)],
    )
    .await
    .unwrap();
    let again = within(resumed.next()).await.unwrap().unwrap();
    assert_eq!(again.id, second.id);
}

async fn reports_find_their_grid_and_dispatch_follows_the_catalog(app: TestApp) {
    let mut citizen = app.anonymous();
    let report = |location: Value, jurisdiction: Option<&str>| {
        let mut body = json!({"description": "路口井盖松动，车辆经过哐哐响", "location": location});
        if let Some(code) = jurisdiction {
            body["jurisdiction"] = json!(code);
        }
        body
    };
    // By location alone: the grid it falls in, owned by the township's command center.
    let (status, receipt) = citizen
        .json("POST", "/api/public/reports", Some(&report(json!({"lon": 120.861, "lat": 32.011}), None)))
        .await
        .unwrap();
    assert_eq!(status, 201, "{receipt}");
    let code = receipt["tracking_code"].as_str().unwrap();
    let id = app.store.case_by_tracking_code(code).await.unwrap().unwrap();
    let case = app.store.load_case(id).await.unwrap().unwrap();
    assert_eq!(case.path.iter().map(|j| j.0).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(case.owner.0, 3, "和平桥街道's center registers it");
    // About 47 m east of the grid: still its grid, the nearest within the tolerance.
    let near = report(json!({"lon": 120.8705, "lat": 32.01}), None);
    assert_eq!(citizen.json("POST", "/api/public/reports", Some(&near)).await.unwrap().0, 201);
    for (body, code) in [
        (report(json!({"lon": 121.5, "lat": 32.5}), None), "LOCATION_OUTSIDE_AREA"),
        (report(json!({"lon": 120.861, "lat": 32.011}), Some(OTHER_COUNTY)), "LOCATION_NOT_IN_JURISDICTION"),
        (json!({"description": "没有地点的反映"}), "PLACE_REQUIRED"),
    ] {
        let (status, answer) = citizen.json("POST", "/api/public/reports", Some(&body)).await.unwrap();
        assert_eq!((status, answer["error"]["code"].as_str().unwrap()), (422, code), "{body}");
    }
    assert_eq!(app.store.count_cases().await.unwrap(), 2, "refusals stored nothing");

    let mut operator = app.signed_in("operator").await;
    let route = format!("/api/cases/{}/route", id.0);
    let (status, before) = operator.json("GET", &route, None).await.unwrap();
    assert_eq!(status, 200, "{before}");
    assert_eq!((before["owner"].as_i64(), before["lead_department"].as_i64()), (Some(3), None));
    assert_eq!(before["verifier"], 3, "the grid's worker verifies");
    let (status, early) = act(&mut operator, id.0, json!({"action": {"type": "dispatch"}})).await;
    assert_eq!((status, early["error"]["code"].as_str()), (409, Some("MATTER_REQUIRED")), "{early}");

    act_ok(&mut operator, id.0, json!({"action": {"type": "register", "matter": "street_vending"}})).await;
    let (_, after) = operator.json("GET", &route, None).await.unwrap();
    assert_eq!((after["owner"].as_i64(), after["lead_department"].as_i64()), (Some(2), Some(101)), "{after}");
    assert_eq!(after["assisting_departments"], json!([102]));
    let basis = after["basis"].as_str().unwrap();
    assert!(
        basis.contains("乡镇（街道）级权责清单无此事项") && basis.contains("崇川区城市管理局主办"),
        "{basis}"
    );
    let dispatched = act_ok(&mut operator, id.0, json!({"action": {"type": "dispatch"}})).await;
    assert_eq!(
        (dispatched["lead_department"].as_i64(), &dispatched["assisting_departments"]),
        (Some(101), &json!([102]))
    );
    let (_, history) = operator.json("GET", &format!("/api/cases/{}/history", id.0), None).await.unwrap();
    let recorded = history.as_array().unwrap().iter().find(|e| e["kind"] == "dispatched").unwrap();
    assert!(recorded.to_string().contains("崇川区城市管理局主办"), "the basis is on the record: {recorded}");
    let mut haimen = app.signed_in("operator_haimen").await;
    assert_eq!(haimen.json("GET", &route, None).await.unwrap().0, 404);
}

async fn the_classifier_learns_from_registrations_and_suggests_matters(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let mut operator = app.signed_in("operator").await;
    let mut admin = app.signed_in("admin").await;
    let ask = json!({"description": "小区门口有人摆摊卖菜，占了半条路"});
    let (status, body) = hotline.json("POST", "/api/classify", Some(&ask)).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("CLASSIFIER_NOT_TRAINED")));
    let (status, body) = admin.json("POST", "/api/classifier/train", None).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("NO_LABELLED_CASES")), "{body}");
    for description in [
        "人行道流动摊贩占道经营",
        "夜市摊贩占用人行道",
        "早点摊占道摆放桌椅",
        "商户店外占道经营",
        "路边摆摊卖水果",
    ] {
        let (id, _) = create_case(&mut hotline, description).await;
        act_ok(&mut operator, id, json!({"action": {"type": "register", "matter": "street_vending"}})).await;
    }
    let (status, trained) = admin.json("POST", "/api/classifier/train", None).await.unwrap();
    assert_eq!(status, 200, "{trained}");
    assert_eq!((trained["trained_on"].as_u64(), trained["held_out"].as_u64()), (Some(4), Some(1)));
    let (status, answer) = hotline.json("POST", "/api/classify", Some(&ask)).await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["suggestions"][0]["matter"], "street_vending");
    assert_eq!(answer["suggestions"][0]["name"], "占道经营");
    assert_eq!(answer["trained_on"], 5);
    // A hotline call without coordinates: the place the address names, and how sure that is.
    let asked = |address: &str| {
        format!("/api/geocode?address={}", address.bytes().map(|b| format!("%{b:02X}")).collect::<String>())
    };
    let (status, place) =
        hotline.json("GET", &asked("崇川区和平桥街道桃坞路社区菜场门口"), None).await.unwrap();
    assert_eq!(status, 200, "{place}");
    assert_eq!(place["jurisdiction"], "320613001001");
    assert!(place["confidence"].as_f64().unwrap() >= 0.9, "{place}");
    let (status, refused) = hotline.json("GET", &asked("火星基地"), None).await.unwrap();
    assert_eq!((status, refused["error"]["code"].as_str()), (422, Some("ADDRESS_NOT_RESOLVED")));
    // Known names that cannot all be true are named back, not passed off as nothing known.
    let (status, refused) = hotline.json("GET", &asked("海门区桃坞路社区门口"), None).await.unwrap();
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (422, Some("ADDRESS_CONTRADICTORY")),
        "{refused}"
    );
    assert!(refused["error"]["message"].as_str().unwrap().contains("桃坞路社区"), "{refused}");
    let empty = json!({"description": "  "});
    assert_eq!(hotline.json("POST", "/api/classify", Some(&empty)).await.unwrap().0, 422);
    let (_, audit) = admin.json("GET", "/api/audit?limit=200", None).await.unwrap();
    assert!(audit.to_string().contains("classifier_trained"), "training is on the record");
}

/// A hotline case in the sample grid at a point.
async fn located(client: &mut HttpClient, description: &str, lon: f64, lat: f64) -> i64 {
    let body = json!({"channel": "hotline", "description": description, "jurisdiction": GRID,
                      "location": {"lon": lon, "lat": lat}});
    let (status, created) = client.json("POST", "/api/cases", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    created["case"]["id"].as_i64().unwrap()
}

async fn likely_duplicates_are_offered_with_a_score(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let first = located(&mut hotline, "桃坞路路口井盖缺失，晚上很危险", 120.86, 32.01).await;
    let same = located(&mut hotline, "桃坞路路口的井盖不见了，很危险", 120.8605, 32.0102).await;
    let far = located(&mut hotline, "桃坞路路口井盖缺失，晚上很危险", 120.869, 32.019).await;
    let different = located(&mut hotline, "小区垃圾几天没人清运，气味很大", 120.8601, 32.0101).await;
    // Another problem at the same corner: the place's words (桃坞路, 路口) are not what makes two reports one.
    let corner = json!({"channel": "hotline", "description": "桃坞路路口有人乱堆杂物", "jurisdiction": GRID,
                        "address": "崇川区桃坞路路口", "location": {"lon": 120.8601, "lat": 32.0101}});
    let (status, corner) = hotline.json("POST", "/api/cases", Some(&corner)).await.unwrap();
    assert_eq!(status, 201, "{corner}");
    let corner = corner["case"]["id"].as_i64().unwrap();
    app.advance_minutes(73 * 60);
    // Three days on, sessions have expired: everyone signs in afresh.
    let mut hotline = app.signed_in("hotline").await;
    let mut operator = app.signed_in("operator").await;
    let late = located(&mut hotline, "桃坞路路口井盖缺失，晚上很危险", 120.86, 32.01).await;
    let (status, offered) =
        operator.json("GET", &format!("/api/cases/{first}/duplicates"), None).await.unwrap();
    assert_eq!(status, 200, "{offered}");
    let ids: Vec<i64> = offered.as_array().unwrap().iter().map(|d| d["case"].as_i64().unwrap()).collect();
    assert_eq!(
        ids,
        vec![same],
        "near and alike; not {far} (1.2 km away), {different} or {corner} (other words) or {late} (73 h later): \
         {offered}"
    );
    let best = &offered[0];
    assert!(best["score"].as_f64().unwrap() > 0.6 && best["distance_m"].as_f64().unwrap() < 60.0, "{best}");
    act_ok(&mut operator, same, json!({"action": {"type": "merge", "into": first}})).await;
    let (_, after) = operator.json("GET", &format!("/api/cases/{first}/duplicates"), None).await.unwrap();
    assert_eq!(after, json!([]), "a merged case is no longer offered");
    let mut haimen = app.signed_in("operator_haimen").await;
    assert_eq!(haimen.json("GET", &format!("/api/cases/{first}/duplicates"), None).await.unwrap().0, 404);

    // The rule is the matter's: an admin narrows the radius, and the catalog shows it.
    let mut admin = app.signed_in("admin").await;
    let rule = "/api/catalog/matters/street_vending/duplicates";
    let narrow = json!({"radius_m": 20, "window_hours": 24});
    assert_eq!(operator.json("PUT", rule, Some(&narrow)).await.unwrap().0, 403);
    let (status, matter) = admin.json("PUT", rule, Some(&narrow)).await.unwrap();
    assert_eq!((status, matter["duplicate_radius_m"].as_u64()), (200, Some(20)), "{matter}");
    let wrong = json!({"radius_m": 0, "window_hours": 24});
    assert_eq!(admin.json("PUT", rule, Some(&wrong)).await.unwrap().0, 422);
    let (status, _) =
        admin.json("PUT", "/api/catalog/matters/no_such_matter/duplicates", Some(&narrow)).await.unwrap();
    assert_eq!(status, 404);
    let (_, catalog) = operator.json("GET", "/api/catalog", None).await.unwrap();
    assert_eq!(catalog["matters"][0]["duplicate_window_hours"], 24);
}

async fn the_jurisdiction_tree_is_walked_by_id_or_by_code(app: TestApp) {
    let mut operator = app.signed_in("operator").await;
    let names = |list: &Value| -> Vec<String> {
        list.as_array().unwrap().iter().map(|j| j["name"].as_str().unwrap().to_string()).collect()
    };
    let (status, top) = operator.json("GET", "/api/jurisdictions", None).await.unwrap();
    assert_eq!((status, names(&top)), (200, vec!["南通市".to_string()]), "{top}");
    let city = top[0]["id"].as_i64().unwrap();
    let (_, by_id) = operator.json("GET", &format!("/api/jurisdictions?parent={city}"), None).await.unwrap();
    let (_, by_code) = operator.json("GET", "/api/jurisdictions?parent_code=320600", None).await.unwrap();
    assert!(names(&by_id).contains(&"崇川区".to_string()), "{by_id}");
    assert_eq!(by_id, by_code, "the same children whether the parent is named by id or by division code");
    for unknown in ["parent=999999", "parent_code=999999"] {
        let (status, body) =
            operator.json("GET", &format!("/api/jurisdictions?{unknown}"), None).await.unwrap();
        assert_eq!((status, body["error"]["code"].as_str()), (404, Some("NOT_FOUND")), "{unknown}: {body}");
    }
    let (status, body) = operator
        .json("GET", &format!("/api/jurisdictions?parent={city}&parent_code=320600"), None)
        .await
        .unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("parent_code"), "{body}");
}

/// A citizen whose report was merged with another on the same problem learns how that case goes on.
async fn a_merged_report_follows_the_case_it_was_merged_into(app: TestApp) {
    let mut citizen = app.anonymous();
    let mut codes = Vec::new();
    for text in ["桃坞路井盖缺失，晚上很危险", "桃坞路的井盖不见了，很危险"] {
        let report = json!({"description": text, "jurisdiction": GRID});
        let (status, receipt) = citizen.json("POST", "/api/public/reports", Some(&report)).await.unwrap();
        assert_eq!(status, 201, "{receipt}");
        codes.push(receipt["tracking_code"].as_str().unwrap().to_string());
    }
    let id_of = |code: &str| {
        let store = app.store.clone();
        let code = code.to_string();
        async move { store.case_by_tracking_code(&code).await.unwrap().unwrap().0 }
    };
    let (main, merged) = (id_of(&codes[0]).await, id_of(&codes[1]).await);
    let mut operator = app.signed_in("operator").await;
    act_ok(&mut operator, merged, json!({"action": {"type": "merge", "into": main}, "note": "同一井盖"}))
        .await;
    act_ok(&mut operator, main, json!({"action": {"type": "register", "matter": "street_vending"}})).await;

    let (status, track) =
        citizen.json("GET", &format!("/api/public/reports/{}", codes[1]), None).await.unwrap();
    assert_eq!(status, 200, "{track}");
    assert_eq!((track["status"].as_str(), track["can_rate"].as_bool()), (Some("merged"), Some(false)));
    let with = &track["handled_with"];
    assert_eq!(with["status"], "registered", "{track}");
    let labels: Vec<&str> =
        with["steps"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["已受理", "已立案"], "{track}");
    let (_, main_track) =
        citizen.json("GET", &format!("/api/public/reports/{}", codes[0]), None).await.unwrap();
    assert_eq!(main_track["handled_with"], Value::Null, "the main case is followed by its own steps");
    // A reply is written to its own case's reporter: the other report sees the step, not the words.
    let void = json!({"action": {"type": "void"}, "note": "重复登记", "reply": "张先生，您的来电已另行登记"});
    act_ok(&mut operator, main, void).await;
    let (_, main_track) =
        citizen.json("GET", &format!("/api/public/reports/{}", codes[0]), None).await.unwrap();
    assert_eq!(main_track["steps"][2]["reply"], "张先生，您的来电已另行登记", "{main_track}");
    let (_, track) = citizen.json("GET", &format!("/api/public/reports/{}", codes[1]), None).await.unwrap();
    assert_eq!(track["handled_with"]["steps"][2]["label"], "已作废", "{track}");
    assert!(!track.to_string().contains("张先生"), "{track}");
}

/// What a handler or an operator asks of a list: open cases, several states at once, one place, one
/// matter, the case a caller quotes by tracking code.
async fn lists_filter_by_state_place_matter_and_tracking_code(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let (first, created) = create_case(&mut hotline, "路口有人摆摊卖水果").await;
    let code = created["tracking_code"].as_str().unwrap().to_string();
    let (second, _) = create_case(&mut hotline, "小区门口垃圾堆积").await;
    let (third, _) = create_case(&mut hotline, "楼下夜宵摊油烟很大").await;
    let mut operator = app.signed_in("operator").await;
    let matter = app.world.matters[0].code.clone();
    act_ok(&mut operator, first, json!({"action": {"type": "register", "matter": matter}})).await;
    act_ok(&mut operator, third, json!({"action": {"type": "reject"}, "note": "不属于受理范围"})).await;

    let ids = |page: &Value| -> Vec<i64> {
        page["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect()
    };
    for (query, expected) in [
        ("status=received,registered".to_string(), vec![second, first]),
        ("open=true".to_string(), vec![second, first]),
        ("open=false".to_string(), vec![third]),
        ("open=true&status=rejected".to_string(), vec![]),
        (format!("within={GRID}"), vec![third, second, first]),
        (format!("matter={matter}"), vec![first]),
        (format!("tracking_code={code}"), vec![first]),
        (format!("tracking_code={code}&before={first}"), vec![]),
        (format!("tracking_code={code}&status=rejected"), vec![]),
        ("tracking_code=NONE-SUCH-CODE".to_string(), vec![]),
    ] {
        let (status, page) = operator.json("GET", &format!("/api/cases?{query}"), None).await.unwrap();
        assert_eq!((status, ids(&page)), (200, expected), "{query}: {page}");
    }
    for (query, status, code) in [
        ("status=received,bogus", 422, "INVALID_INPUT"),
        ("within=999999", 422, "INVALID_INPUT"),
        ("matter=no_such_matter", 422, "MATTER_UNKNOWN"),
        ("limit=0", 422, "INVALID_INPUT"),
    ] {
        let (answered, page) = operator.json("GET", &format!("/api/cases?{query}"), None).await.unwrap();
        assert_eq!((answered, page["error"]["code"].as_str()), (status, Some(code)), "{query}: {page}");
    }
    // One case at most: no cursor to a next page, which could only point back at it.
    let (_, page) =
        operator.json("GET", &format!("/api/cases?tracking_code={code}&limit=1"), None).await.unwrap();
    assert_eq!((ids(&page), &page["next"]), (vec![first], &Value::Null), "{page}");
    // A place outside the caller's is not found, as its cases would not be.
    let mut haimen = app.signed_in("operator_haimen").await;
    let (status, _) = haimen.json("GET", &format!("/api/cases?within={GRID}"), None).await.unwrap();
    assert_eq!(status, 404);
    // And a quoted code of a case the caller may not see lists nothing.
    let (_, page) = haimen.json("GET", &format!("/api/cases?tracking_code={code}"), None).await.unwrap();
    assert_eq!(ids(&page), Vec::<i64>::new());

    // The work list: cases whose clock runs, the soonest due first, a page at a time.
    let mut due = Vec::new();
    for id in [first, second] {
        let (_, case) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
        due.push((case["deadline"]["due"].as_i64().unwrap(), id));
    }
    due.sort();
    let urgent_first: Vec<i64> = due.iter().map(|(_, id)| *id).collect();
    let (_, page) = operator.json("GET", "/api/cases?order=due", None).await.unwrap();
    assert_eq!((ids(&page), &page["next"]), (urgent_first.clone(), &Value::Null), "{page}");
    let (_, page) = operator.json("GET", "/api/cases?order=due&limit=1", None).await.unwrap();
    assert_eq!(ids(&page), urgent_first[..1], "{page}");
    assert_eq!(
        (page["next"].as_i64(), page["next_due"].as_i64()),
        (Some(due[0].1), Some(due[0].0)),
        "{page}"
    );
    let rest = format!("/api/cases?order=due&limit=1&after={}&after_due={}", due[0].1, due[0].0);
    let (_, page) = operator.json("GET", &rest, None).await.unwrap();
    assert_eq!(ids(&page), urgent_first[1..], "{page}");
    let (_, page) = operator.json("GET", "/api/cases?order=due&status=registered", None).await.unwrap();
    assert_eq!(ids(&page), vec![first], "{page}");
    let (_, page) = haimen.json("GET", "/api/cases?order=due", None).await.unwrap();
    assert_eq!(ids(&page), Vec::<i64>::new(), "another county's work list");
    for query in ["order=soonest", "order=due&before=5", "after=5&after_due=1", "order=due&after=5"] {
        let (status, page) = operator.json("GET", &format!("/api/cases?{query}"), None).await.unwrap();
        assert_eq!((status, page["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{query}: {page}");
    }
    // A suspended case leaves the work list and shows its stopped clock instead of a deadline.
    let (_, running) = operator.json("GET", &format!("/api/cases/{second}"), None).await.unwrap();
    act_ok(&mut operator, second, json!({"action": {"type": "suspend"}, "note": "等待业主回复"})).await;
    let (_, stopped) = operator.json("GET", &format!("/api/cases/{second}"), None).await.unwrap();
    assert_eq!((&stopped["deadline"], &stopped["light"]), (&Value::Null, &json!("paused")), "{stopped}");
    let suspension = &stopped["suspension"];
    assert_eq!(suspension["stage_label"], running["deadline"]["stage_label"], "{stopped}");
    assert!(suspension["remaining_minutes"].as_i64().unwrap() > 0, "{stopped}");
    assert!(suspension["since_label"].as_str().unwrap().starts_with("2026-"), "{stopped}");
    let (_, page) = operator.json("GET", "/api/cases?order=due", None).await.unwrap();
    assert_eq!(ids(&page), vec![first], "{page}");
    // Lists by the clock: the ones to resume, the running ones, the overdue ones (none yet).
    for (query, expected) in
        [("clock=suspended", vec![second]), ("clock=running", vec![first]), ("clock=overdue", vec![])]
    {
        let (status, page) = operator.json("GET", &format!("/api/cases?{query}"), None).await.unwrap();
        assert_eq!((status, ids(&page)), (200, expected), "{query}: {page}");
    }
    app.advance_minutes(30 * 24 * 60);
    let mut operator = app.signed_in("operator").await; // the session ended meanwhile
    let (_, page) = operator.json("GET", "/api/cases?clock=overdue", None).await.unwrap();
    assert_eq!(
        ids(&page),
        vec![first],
        "a month later the running one is overdue, the stopped one not: {page}"
    );
    for query in ["clock=stopped", "clock=suspended&order=due"] {
        let (status, page) = operator.json("GET", &format!("/api/cases?{query}"), None).await.unwrap();
        assert_eq!((status, page["error"]["code"].as_str()), (422, Some("INVALID_INPUT")), "{query}: {page}");
    }
}

/// Whoever decides an extension sees the date it would give, and approving gives that date.
async fn an_extension_is_decided_on_the_date_it_would_give(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let (id, _) = create_case(&mut hotline, "路口有人摆摊卖水果").await;
    let mut operator = app.signed_in("operator").await;
    let matter = app.world.matters[0].code.clone();
    act_ok(&mut operator, id, json!({"action": {"type": "register", "matter": matter}})).await;
    act_ok(&mut operator, id, json!({"action": {"type": "dispatch", "lead": 101}})).await;
    let mut handler = app.signed_in("handler").await;
    act_ok(&mut handler, id, json!({"action": {"type": "accept"}})).await;
    let ask = json!({"action": {"type": "request_extension", "minutes": 420}, "note": "需协调产权单位"});
    act_ok(&mut handler, id, ask).await;
    let (_, pending) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    let would =
        pending["pending_extension_due"].as_i64().unwrap_or_else(|| panic!("no date shown: {pending}"));
    assert!(would > pending["deadline"]["due"].as_i64().unwrap(), "{pending}");
    assert!(pending["pending_extension_due_label"].as_str().unwrap().starts_with("2026-11-"), "{pending}");
    act_ok(&mut operator, id, json!({"action": {"type": "decide_extension", "approve": true}})).await;
    let (_, decided) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert_eq!(decided["deadline"]["due"].as_i64(), Some(would), "{decided}");
    assert_eq!(decided["pending_extension_due"], Value::Null);
}
