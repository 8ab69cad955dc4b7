//! Who may do what over HTTP, as two tables: every caller against every endpoint, and every caller against
//! every action of the closed loop. Both run on SQLite and on PostgreSQL. The expectations are written out
//! by hand from the product's rules, not computed from the code under test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_web::client::{EventStream, HttpClient};
use std::collections::HashMap;
use support::TestApp;
use support::GRID;

on_both_backends![every_caller_against_every_endpoint, every_caller_against_every_loop_action];

/// Anonymous first, then the sample world's users (see `SampleWorld`): the hotline and the leader work for the
/// city, the grid worker for the case's grid, the operator for its county (崇川区), the handler for the lead
/// department 101, the mediator for the township, and `operator_haimen` for the other county (海门区).
const CALLERS: [&str; 10] = [
    "",
    "citizen",
    "hotline",
    "gridworker",
    "operator",
    "handler",
    "mediator",
    "leader",
    "admin",
    "operator_haimen",
];
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn name(caller: &str) -> &str {
    if caller.is_empty() {
        "anonymous"
    } else {
        caller
    }
}

async fn clients(app: &TestApp) -> HashMap<&'static str, HttpClient> {
    let mut clients = HashMap::new();
    for caller in CALLERS {
        let client = if caller.is_empty() { app.anonymous() } else { app.signed_in(caller).await };
        clients.insert(caller, client);
    }
    clients
}

async fn send(client: &mut HttpClient, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    client.json(method, path, body).await.unwrap()
}

async fn upload(client: &mut HttpClient, path: &str) -> u16 {
    client.request("POST", path, &[], Some(PNG)).await.unwrap().status
}

/// The columns of both tables, in the order of [`CALLERS`].
type Row = [u16; 10];

async fn every_caller_against_every_endpoint(app: TestApp) {
    let mut clients = clients(&app).await;
    let staff = |clients: &mut HashMap<&str, HttpClient>, who: &str| clients.remove(who).unwrap();
    // One case, dispatched to the handler's department, with a photo and a reporter's phone number.
    let mut hotline = staff(&mut clients, "hotline");
    let (_, photo) = {
        let response = hotline.request("POST", "/api/attachments?name=p.png", &[], Some(PNG)).await.unwrap();
        (response.status, response.json())
    };
    let sha = photo["sha256"].as_str().unwrap().to_string();
    let report = json!({"channel": "hotline", "description": "权限矩阵：井盖缺失", "jurisdiction": GRID,
        "reporter_phone": "13812345678", "attachments": [{"sha256": sha, "name": "p.png"}]});
    let (status, created) = send(&mut hotline, "POST", "/api/cases", Some(&report)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["case"]["id"].as_i64().unwrap();
    let code = created["tracking_code"].as_str().unwrap().to_string();
    clients.insert("hotline", hotline);
    let mut operator = staff(&mut clients, "operator");
    for action in
        [json!({"type": "register", "matter": "street_vending"}), json!({"type": "dispatch", "lead": 101})]
    {
        let (status, body) = send(
            &mut operator,
            "POST",
            &format!("/api/cases/{id}/actions"),
            Some(&json!({"action": action})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    clients.insert("operator", operator);

    let case = format!("/api/cases/{id}");
    let visible: Row = [401, 404, 200, 200, 200, 200, 200, 200, 404, 404];
    let signed_in: Row = [401, 200, 200, 200, 200, 200, 200, 200, 200, 200];
    let everyone_public = |status: u16| -> Row { [status; 10] };
    let admins_only = |status: u16| -> Row { [401, 403, 403, 403, 403, 403, 403, 403, status, 403] };
    let reference_readers: Row = [401, 403, 200, 200, 200, 200, 200, 200, 200, 200];
    let statistics: Row = [401, 403, 200, 200, 200, 200, 200, 200, 403, 200];
    // (method, path, body, expected status per caller)
    let reads: Vec<(&str, String, Option<Value>, Row)> = vec![
        ("GET", "/api/me".into(), None, signed_in),
        // Admins manage accounts, not cases.
        ("GET", "/api/cases".into(), None, [401, 200, 200, 200, 200, 200, 200, 200, 403, 200]),
        ("GET", case.clone(), None, visible),
        ("GET", format!("{case}/history"), None, visible),
        ("GET", format!("{case}/route"), None, visible),
        ("GET", format!("{case}/duplicates"), None, visible),
        ("GET", format!("{case}/attachments/{sha}"), None, visible),
        // Only the roles that call reporters back see the number unmasked.
        ("GET", format!("{case}/personal-data"), None, [401, 404, 200, 403, 200, 403, 403, 403, 404, 404]),
        ("GET", format!("/api/public/reports/{code}"), None, everyone_public(200)),
        // Holding the code is what counts here; the case is not closed yet, for anyone.
        (
            "POST",
            format!("/api/public/reports/{code}/rating"),
            Some(json!({"score": 5})),
            everyone_public(409),
        ),
        ("GET", "/api/jurisdictions".into(), None, reference_readers),
        ("GET", "/api/departments".into(), None, reference_readers),
        ("GET", "/api/catalog".into(), None, reference_readers),
        // Classifying is for those who take reports in; nobody has trained the model yet, hence 409.
        (
            "POST",
            "/api/classify".into(),
            Some(json!({"description": "路口摊贩占道经营"})),
            [401, 403, 409, 409, 409, 403, 409, 403, 403, 409],
        ),
        (
            "GET",
            "/api/geocode?address=%E5%92%8C%E5%B9%B3%E6%A1%A5%E8%A1%97%E9%81%93".into(),
            None,
            [401, 403, 200, 200, 200, 403, 200, 403, 403, 200],
        ),
        ("GET", "/api/users".into(), None, admins_only(200)),
        ("GET", "/api/audit".into(), None, admins_only(200)),
        ("GET", "/api/tokens".into(), None, admins_only(200)),
        ("GET", "/api/notifications".into(), None, signed_in),
        ("GET", "/api/notifications/unread".into(), None, signed_in),
        ("GET", "/api/escalation-rules".into(), None, reference_readers),
        ("GET", "/api/calendar/2026".into(), None, reference_readers),
        // Statistics: staff who work cases, each within their own scope; not citizens, not admins.
        ("GET", "/api/analytics/groups?by=county".into(), None, statistics),
        ("GET", "/api/analytics/top?dim=grid".into(), None, statistics),
        ("GET", "/api/evaluation?unit=department".into(), None, statistics),
        // A monthly report is a jurisdiction's: departments have none.
        (
            "GET",
            "/api/reports/monthly?month=2026-11&format=json".into(),
            None,
            [401, 403, 200, 200, 200, 403, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/evaluation/weights/2026".into(),
            None,
            [401, 403, 200, 200, 200, 200, 200, 200, 200, 200],
        ),
        ("GET", "/api/webhooks".into(), None, admins_only(200)),
        ("GET", "/api/webhooks/dead-letters".into(), None, admins_only(200)),
    ];
    for (method, path, body, expected) in &reads {
        for (column, caller) in CALLERS.iter().enumerate() {
            let client = clients.get_mut(caller).unwrap();
            let (status, answer) = send(client, method, path, body.as_ref()).await;
            assert_eq!(status, expected[column], "{} {method} {path}: {answer}", name(caller));
        }
    }

    // Writes. Each caller sends its own, so that a success of one does not change what the next one meets.
    for (column, caller) in CALLERS.iter().enumerate() {
        let who = name(caller);
        let client = clients.get_mut(caller).unwrap();
        let expect = |row: Row| row[column];
        // Staff intake: the roles that take reports in, within their own area.
        let (status, body) = send(
            client,
            "POST",
            "/api/cases",
            Some(&json!({"channel": "hotline",
            "description": format!("{who}录入"), "jurisdiction": GRID})),
        )
        .await;
        assert_eq!(
            status,
            expect([401, 201, 201, 201, 201, 403, 201, 403, 403, 403]),
            "{who} creates a case: {body}"
        );
        if status == 201 {
            // What one reports, one may follow — the citizen included, whose report it is.
            let own = format!("/api/cases/{}", body["case"]["id"]);
            assert_eq!(send(client, "GET", &own, None).await.0, 200, "{who} reads the case they took in");
        }
        assert_eq!(
            upload(client, "/api/attachments").await,
            expect(signed_in.map(|s| if s == 200 { 201 } else { s })),
            "{who} uploads"
        );
        assert_eq!(upload(client, "/api/public/attachments").await, 201, "{who} uploads as the public");
        let report = json!({"description": format!("{who}随手拍"), "jurisdiction": GRID});
        assert_eq!(send(client, "POST", "/api/public/reports", Some(&report)).await.0, 201, "{who} reports");

        let new_user = json!({"username": format!("new_{column}"), "display_name": "新用户", "role": "operator",
            "jurisdiction": "320613", "password": "Matrix-password-2026"});
        let (status, body) = send(client, "POST", "/api/users", Some(&new_user)).await;
        assert_eq!(status, expect(admins_only(201)), "{who} creates a user: {body}");
        // The admin resets the user just created; everyone else tries the operator's password.
        let user_id = body["id"].as_i64().unwrap_or(4);
        let (status, body) = send(
            client,
            "POST",
            &format!("/api/users/{user_id}/password"),
            Some(&json!({"password": "Reset-password-2026"})),
        )
        .await;
        assert_eq!(status, expect(admins_only(204)), "{who} resets a password: {body}");
        let token = json!({"name": "12345热线系统", "username": "hotline", "scopes": ["write"]});
        let (status, body) = send(client, "POST", "/api/tokens", Some(&token)).await;
        assert_eq!(status, expect(admins_only(201)), "{who} issues a token: {body}");
        // Revoking: the admin revokes the token just issued; everyone else tries token 1.
        let token_id = body["id"].as_i64().unwrap_or(1);
        let (status, body) = send(client, "DELETE", &format!("/api/tokens/{token_id}"), None).await;
        assert_eq!(status, expect(admins_only(204)), "{who} revokes a token: {body}");

        let cookie: Vec<(&str, String)> = client.cookie.iter().map(|c| ("Cookie", c.clone())).collect();
        let headers: Vec<(&str, &str)> = cookie.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let stream = EventStream::open(app.address, "/api/events/stream", &headers).await.unwrap();
        assert_eq!(stream.status, expect(signed_in), "{who} opens the live stream");

        let rule = json!({"radius_m": 400, "window_hours": 48});
        let (status, body) =
            send(client, "PUT", "/api/catalog/matters/street_vending/duplicates", Some(&rule)).await;
        assert_eq!(status, expect(admins_only(200)), "{who} sets a duplicate rule: {body}");
        let (status, body) = send(client, "POST", "/api/classifier/train", None).await;
        assert_eq!(status, expect(admins_only(200)), "{who} trains the classifier: {body}");
        let rules = json!([{"code": "county_overdue", "name": "区县超期三个工作日上报", "level": "county",
            "trigger": {"kind": "overdue", "working_minutes": 1260}}]);
        let (status, body) = send(client, "PUT", "/api/escalation-rules", Some(&rules)).await;
        assert_eq!(status, expect(admins_only(200)), "{who} sets the escalation rules: {body}");
        let calendar = json!({"holidays": [{"date": "2026-10-01", "name": "国庆节"}], "workdays": [],
            "reason": "权限测试"});
        let (status, body) = send(client, "PUT", "/api/calendar/2026", Some(&calendar)).await;
        assert_eq!(status, expect(admins_only(200)), "{who} sets the calendar: {body}");
        let (status, body) = send(client, "POST", "/api/notifications/read", Some(&json!({}))).await;
        assert_eq!(status, expect(signed_in), "{who} marks notifications read: {body}");

        let change = json!({"current_password": support::PASSWORD, "new_password": "Changed-password-2026"});
        let (status, body) = send(client, "POST", "/api/me/password", Some(&change)).await;
        assert_eq!(
            status,
            expect(signed_in.map(|s| if s == 200 { 204 } else { s })),
            "{who} changes their password: {body}"
        );
        // Signing out always succeeds; it only ends a session when there is one.
        assert_eq!(send(client, "DELETE", "/api/session", None).await.0, 204, "{who} signs out");
    }
}

/// A step towards the state an action needs: who takes which action.
type Step = (&'static str, Value);

fn step(who: &'static str, action: Value) -> Step {
    let note = json!("矩阵测试：说明理由");
    (who, json!({"action": action, "note": note}))
}

/// Every action of the loop: the steps that prepare a case for it, the action itself, and who may take it.
fn loop_actions(merge_target: i64) -> Vec<(&'static str, Vec<Step>, Value, Vec<&'static str>)> {
    let register = step("operator", json!({"type": "register", "matter": "street_vending"}));
    let dispatch = step("operator", json!({"type": "dispatch", "lead": 101, "assisting": [102]}));
    let accept = step("handler", json!({"type": "accept"}));
    let report_back = step("handler", json!({"type": "report_back"}));
    let verify = step("gridworker", json!({"type": "verify", "passed": true}));
    let close = step("operator", json!({"type": "close"}));
    let request_extension = step("handler", json!({"type": "request_extension", "minutes": 480}));
    let suspend = step("operator", json!({"type": "suspend"}));
    let received = Vec::new;
    let registered = || vec![register.clone()];
    let dispatched = || vec![register.clone(), dispatch.clone()];
    let accepted = || vec![register.clone(), dispatch.clone(), accept.clone()];
    let handled = || vec![register.clone(), dispatch.clone(), accept.clone(), report_back.clone()];
    let verified = || [handled(), vec![verify.clone()]].concat();
    let closed = || [verified(), vec![close.clone()]].concat();
    let due = 1_795_400_000_000_i64 + 30 * 24 * 3_600_000;
    vec![
        ("register", received(), json!({"type": "register", "matter": "street_vending"}), vec!["operator"]),
        ("reject", received(), json!({"type": "reject"}), vec!["operator"]),
        (
            "resolve_on_spot",
            received(),
            json!({"type": "resolve_on_spot", "matter": "street_vending"}),
            vec!["gridworker"],
        ),
        ("dispatch", registered(), json!({"type": "dispatch", "lead": 101}), vec!["operator"]),
        ("escalate", registered(), json!({"type": "escalate"}), vec!["operator"]),
        ("merge", registered(), json!({"type": "merge", "into": merge_target}), vec!["operator"]),
        ("void", registered(), json!({"type": "void"}), vec!["operator"]),
        ("suspend", dispatched(), json!({"type": "suspend"}), vec!["operator"]),
        (
            "resume",
            [dispatched(), vec![suspend.clone()]].concat(),
            json!({"type": "resume"}),
            vec!["operator"],
        ),
        ("accept", dispatched(), json!({"type": "accept"}), vec!["handler"]),
        ("return", dispatched(), json!({"type": "return"}), vec!["handler"]),
        // 督办 comes from above the command center that owns the case — the township's (和平桥街道), where
        // intake puts it: the county's operator and the city's leader.
        ("supervise", dispatched(), json!({"type": "supervise", "due": due}), vec!["operator", "leader"]),
        ("instruct", dispatched(), json!({"type": "instruct"}), vec!["leader"]),
        ("report_back", accepted(), json!({"type": "report_back"}), vec!["handler"]),
        (
            "request_extension",
            accepted(),
            json!({"type": "request_extension", "minutes": 480}),
            vec!["handler"],
        ),
        (
            "decide_extension",
            [accepted(), vec![request_extension.clone()]].concat(),
            json!({"type": "decide_extension", "approve": true}),
            vec!["operator"],
        ),
        // The handler did the work, so they may not verify it.
        ("verify", handled(), json!({"type": "verify", "passed": true}), vec!["gridworker", "operator"]),
        ("close", verified(), json!({"type": "close"}), vec!["operator"]),
        // 回访: the hotline records the reporter's rating (the reporter rates by tracking code, tested elsewhere).
        ("rate", closed(), json!({"type": "rate", "score": 4}), vec!["hotline"]),
        ("reopen", closed(), json!({"type": "reopen"}), vec!["operator"]),
    ]
}

async fn create_case(clients: &mut HashMap<&'static str, HttpClient>, description: &str) -> i64 {
    let report = json!({"channel": "hotline", "description": description, "jurisdiction": GRID});
    let (status, body) = send(clients.get_mut("hotline").unwrap(), "POST", "/api/cases", Some(&report)).await;
    assert_eq!(status, 201, "{body}");
    body["case"]["id"].as_i64().unwrap()
}

/// A fresh case brought by `steps` to where `action_name` can be taken.
async fn prepared_case(
    clients: &mut HashMap<&'static str, HttpClient>,
    action_name: &str,
    steps: &[Step],
) -> i64 {
    let id = create_case(clients, &format!("矩阵：{action_name}")).await;
    for (who, step) in steps {
        let (status, body) =
            send(clients.get_mut(who).unwrap(), "POST", &format!("/api/cases/{id}/actions"), Some(step))
                .await;
        assert_eq!(status, 200, "preparing {action_name}: {who} {step} → {body}");
    }
    id
}

async fn every_caller_against_every_loop_action(app: TestApp) {
    let mut clients = clients(&app).await;
    let merge_target = create_case(&mut clients, "合并目标").await;
    for (action_name, steps, action, allowed) in loop_actions(merge_target) {
        let request = json!({"action": action, "note": "矩阵测试：说明理由"});
        let id = prepared_case(&mut clients, action_name, &steps).await;
        let case = format!("/api/cases/{id}");
        let (_, before) = send(clients.get_mut("operator").unwrap(), "GET", &case, None).await;
        let dispatched = steps.iter().any(|(_, s)| s["action"]["type"] == "dispatch");
        for caller in CALLERS.iter().filter(|c| !allowed.contains(c)) {
            let (status, body) =
                send(clients.get_mut(caller).unwrap(), "POST", &format!("{case}/actions"), Some(&request))
                    .await;
            // Those who may not see the case are told it does not exist; those who see it are refused.
            let expected = match *caller {
                "" => 401,
                "citizen" | "admin" | "operator_haimen" => 404,
                "handler" if !dispatched => 404,
                _ => 403,
            };
            assert_eq!(status, expected, "{} may not {action_name}: {body}", name(caller));
        }
        let (_, after) = send(clients.get_mut("operator").unwrap(), "GET", &case, None).await;
        assert_eq!(before["version"], after["version"], "refusals of {action_name} changed nothing");
        for (n, caller) in allowed.iter().enumerate() {
            let id = if n == 0 { id } else { prepared_case(&mut clients, action_name, &steps).await };
            let (status, body) = send(
                clients.get_mut(caller).unwrap(),
                "POST",
                &format!("/api/cases/{id}/actions"),
                Some(&request),
            )
            .await;
            assert_eq!(status, 200, "{caller} may {action_name}: {body}");
        }
    }
}
