//! Nobody reaches past their rights by the side doors a review found: guesses sent in parallel, merging into
//! a case out of reach, a citizen reading the staff's view of their report, dispatching to another county's
//! department, two anonymous senders picking the same Idempotency-Key, an event stream outliving its session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::{json, Value};
use shiyu_store::testing::SampleWorld;
use shiyu_web::client::{EventStream, HttpClient};
use std::time::Duration;
use support::TestApp;
use support::{GRID, OTHER_COUNTY};

on_both_backends![
    parallel_guesses_cannot_outrun_the_lock,
    a_lock_does_not_tell_which_usernames_exist,
    a_stranger_guessing_wrong_locks_out_only_their_own_address,
    a_report_outside_ones_grid_is_refused_with_whose_it_is,
    a_case_is_merged_only_into_one_the_operator_can_see,
    citizens_see_their_own_reports_without_the_handling_inside,
    cases_are_dispatched_only_to_departments_over_their_place,
    anonymous_senders_never_share_a_receipt,
    an_event_stream_ends_with_its_session,
    every_refusal_has_the_error_body_and_changes_nothing,
];

async fn report(client: &mut HttpClient, jurisdiction: &str, description: &str) -> i64 {
    let body = json!({"channel": "hotline", "description": description, "jurisdiction": jurisdiction});
    let (status, created) = client.json("POST", "/api/cases", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    created["case"]["id"].as_i64().unwrap()
}

async fn act(client: &mut HttpClient, id: i64, request: Value) -> (u16, Value) {
    client.json("POST", &format!("/api/cases/{id}/actions"), Some(&request)).await.unwrap()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn parallel_guesses_cannot_outrun_the_lock(app: TestApp) {
    // The test app locks after three failures; twelve guesses arrive at once.
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..12 {
        let mut client = app.anonymous();
        guesses.spawn(async move {
            let wrong = json!({"username": "operator", "password": format!("guess-number-{n}")});
            let (status, body) = client.json("POST", "/api/session", Some(&wrong)).await.unwrap();
            (status, code(&body).to_string())
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = guesses.join_next().await {
        answers.push(answer.unwrap());
    }
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    let refused = answers.iter().filter(|(status, code)| *status == 429 && code == "ACCOUNT_LOCKED").count();
    assert_eq!(
        (checked, refused),
        (3, 9),
        "only as many guesses as the lock allows are checked: {answers:?}"
    );
    let (status, body) = app.anonymous().sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!((status, code(&body)), (429, "ACCOUNT_LOCKED"), "the right password waits for the lock too");
    app.advance_minutes(16);
    assert_eq!(app.anonymous().sign_in("operator", support::PASSWORD).await.unwrap().0, 200);
    let credentials = app.store.credentials("operator").await.unwrap().unwrap();
    assert_eq!(
        (credentials.failed_logins, credentials.locked_until),
        (0, None),
        "a sign-in clears the count"
    );
}

async fn a_lock_does_not_tell_which_usernames_exist(app: TestApp) {
    let mut answers = Vec::new();
    for username in ["mediator", "no-such-user"] {
        let wrong = json!({"username": username, "password": "a-wrong-password"});
        let mut seen = Vec::new();
        for _ in 0..4 {
            let (status, body) = app.anonymous().json("POST", "/api/session", Some(&wrong)).await.unwrap();
            seen.push((status, code(&body).to_string()));
        }
        // The name in other letters is another name for both (sign-in matches names exactly).
        let shouted = json!({"username": username.to_uppercase(), "password": "a-wrong-password"});
        let (status, body) = app.anonymous().json("POST", "/api/session", Some(&shouted)).await.unwrap();
        seen.push((status, code(&body).to_string()));
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1], "a real account and a made-up name answer alike");
    assert_eq!(answers[0][3], (429, "ACCOUNT_LOCKED".to_string()));
}

async fn a_stranger_guessing_wrong_locks_out_only_their_own_address(app: TestApp) {
    // The test app locks an address out of an account after three failures from it, and the account
    // itself after six from anywhere.
    let guess = |n: usize| json!({"username": "operator", "password": format!("guess-number-{n}")});
    let mut stranger = app.anonymous_from("127.0.0.2");
    for n in 0..3 {
        assert_eq!(stranger.json("POST", "/api/session", Some(&guess(n))).await.unwrap().0, 401);
    }
    let (status, body) = stranger.sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!((status, code(&body)), (429, "ACCOUNT_LOCKED"), "the stranger's address is locked out");
    let said = body["error"]["message_en"].as_str().unwrap();
    assert!(said.contains("from this address") && said.contains("Beijing time"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("从此地址"), "{body}");

    // The operator at their own desk is not.
    let mut desk = app.anonymous_from("127.0.0.1");
    let (status, body) = desk.sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!(status, 200, "the real user signs in from elsewhere: {body}");

    // Guessing from many addresses meets the account's own lock: six failures since that sign-in, from two
    // more addresses, lock it for everyone.
    for from in ["127.0.0.3", "127.0.0.4"] {
        let mut another = app.anonymous_from(from);
        for n in 0..3 {
            assert_eq!(another.json("POST", "/api/session", Some(&guess(n))).await.unwrap().0, 401);
        }
    }
    let mut third = app.anonymous_from("127.0.0.7");
    let (status, body) = third.sign_in("operator", support::PASSWORD).await.unwrap();
    assert_eq!((status, code(&body)), (429, "ACCOUNT_LOCKED"), "six failures in all lock the account");
    assert!(body["error"]["message_en"].as_str().unwrap().contains("the account is locked"), "{body}");
    app.advance_minutes(16);
    assert_eq!(third.sign_in("operator", support::PASSWORD).await.unwrap().0, 200, "both locks lift");
    let (status, _) = stranger.json("POST", "/api/session", Some(&guess(9))).await.unwrap();
    assert_eq!(status, 401, "the stranger's count started again");

    // Failures far apart never lock: each run of them is over before the next begins.
    let mut patient = app.anonymous_from("127.0.0.8");
    for n in 0..4 {
        assert_eq!(patient.json("POST", "/api/session", Some(&guess(n))).await.unwrap().0, 401);
        app.advance_minutes(16);
    }
    assert_eq!(patient.sign_in("operator", support::PASSWORD).await.unwrap().0, 200);

    // A made-up name answers the same way at every step.
    let nobody = |n: usize| json!({"username": "no-such-operator", "password": format!("guess-number-{n}")});
    let mut answers = Vec::new();
    for (from, n) in [("127.0.0.5", 0), ("127.0.0.5", 1), ("127.0.0.5", 2), ("127.0.0.5", 3)] {
        let (status, body) =
            app.anonymous_from(from).json("POST", "/api/session", Some(&nobody(n))).await.unwrap();
        answers.push((
            status,
            code(&body).to_string(),
            body["error"]["message_en"].as_str().unwrap_or("").contains("from this address"),
        ));
    }
    assert_eq!(answers[3], (429, "ACCOUNT_LOCKED".to_string(), true), "{answers:?}");
    let (status, _) =
        app.anonymous_from("127.0.0.6").json("POST", "/api/session", Some(&nobody(4))).await.unwrap();
    assert_eq!(status, 401, "another address may still try the name");
}

async fn a_report_outside_ones_grid_is_refused_with_whose_it_is(app: TestApp) {
    let mut worker = app.signed_in("gridworker").await;
    let body = json!({"channel": "grid_patrol", "description": "路边大树倒了，挡住半条路", "jurisdiction": OTHER_COUNTY});
    let (status, refused) = worker.json("POST", "/api/cases", Some(&body)).await.unwrap();
    assert_eq!((status, code(&refused)), (403, "OUT_OF_JURISDICTION"), "{refused}");
    let (zh, en) =
        (refused["error"]["message"].as_str().unwrap(), refused["error"]["message_en"].as_str().unwrap());
    assert!(zh.contains("海门区") && zh.contains("12345"), "{refused}");
    assert!(en.contains("(320614)") && en.contains("12345 hotline"), "{refused}");
    assert_eq!(app.store.count_cases().await.unwrap(), 0);
}

async fn a_case_is_merged_only_into_one_the_operator_can_see(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let mine = report(&mut hotline, GRID, "小区门口垃圾堆积").await;
    let same = report(&mut hotline, GRID, "小区门口垃圾堆积无人清理").await;
    let elsewhere = report(&mut hotline, OTHER_COUNTY, "海门区某路口垃圾堆积").await;
    let mut operator = app.signed_in("operator").await;
    let merge = |into: i64| json!({"action": {"type": "merge", "into": into}, "note": "重复反映"});

    // A case of another county answers exactly like one that does not exist, and nothing changes.
    let (status, outside) = act(&mut operator, mine, merge(elsewhere)).await;
    let (missing_status, missing) = act(&mut operator, mine, merge(99_999)).await;
    assert_eq!((status, code(&outside)), (422, "MERGE_TARGET_INVALID"), "{outside}");
    assert_eq!((status, &outside), (missing_status, &missing));
    // A role that may not merge learns nothing about the target: the same refusal whatever it names.
    let mut mediator = app.signed_in("mediator").await;
    for into in [elsewhere, same, 99_999] {
        let (status, body) = act(&mut mediator, mine, merge(into)).await;
        assert_eq!((status, code(&body)), (403, "ROLE_NOT_PERMITTED"), "{into}: {body}");
    }
    let (_, case) = operator.json("GET", &format!("/api/cases/{mine}"), None).await.unwrap();
    assert_eq!((case["status"].as_str(), case["version"].as_u64()), (Some("received"), Some(1)));

    let (status, merged) = act(&mut operator, mine, merge(same)).await;
    assert_eq!((status, merged["merged_into"].as_i64()), (200, Some(same)), "{merged}");
}

async fn citizens_see_their_own_reports_without_the_handling_inside(app: TestApp) {
    let mut citizen = app.signed_in("citizen").await;
    let body = json!({"channel": "app", "description": "楼下餐馆油烟扰民", "jurisdiction": GRID});
    let (status, created) = citizen.json("POST", "/api/cases", Some(&body)).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let id = created["case"]["id"].as_i64().unwrap();

    let mut operator = app.signed_in("operator").await;
    let photo = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR the inspector's photo".to_vec();
    let uploaded =
        operator.request("POST", "/api/attachments?name=site.png", &[], Some(&photo)).await.unwrap();
    let sha = uploaded.json()["sha256"].as_str().unwrap().to_string();
    let register = json!({"action": {"type": "register", "matter": "street_vending"},
        "note": "内部备注：反映人多次来电，注意方式", "attachments": [{"sha256": sha, "name": "site.png"}]});
    assert_eq!(act(&mut operator, id, register).await.0, 200);
    let dispatch = json!({"action": {"type": "dispatch", "lead": SampleWorld::LEAD_DEPARTMENT}});
    assert_eq!(act(&mut operator, id, dispatch).await.0, 200);

    // Staff still see everything.
    let (_, staff) = operator.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert_eq!(staff["lead_department"], SampleWorld::LEAD_DEPARTMENT);
    let (_, staff_history) = operator.json("GET", &format!("/api/cases/{id}/history"), None).await.unwrap();
    assert_eq!(staff_history.as_array().unwrap().len(), 3);
    // Staff see that the reporter acted, not with which account, so that one citizen's anonymous reports
    // cannot be linked together by it.
    let reporter = json!({"kind": "reporter", "user": null, "role": "citizen"});
    assert_eq!(staff_history[0]["actor"], reporter);
    let unnamed = json!({"channel": "app", "description": "半夜有人在楼下唱歌", "jurisdiction": GRID, "anonymous": true});
    let (status, hidden) = citizen.json("POST", "/api/cases", Some(&unnamed)).await.unwrap();
    assert_eq!(status, 201, "{hidden}");
    let hidden_history = format!("/api/cases/{}/history", hidden["case"]["id"]);
    let (_, seen) = operator.json("GET", &hidden_history, None).await.unwrap();
    assert_eq!(seen[0]["actor"], reporter);
    let told = &seen[0]["data"]["reporter"];
    assert!(told["anonymous"] == true && told.get("user").is_none(), "{seen}");

    // The citizen sees their report and its public progress, nothing of the handling.
    let (status, case) = citizen.json("GET", &format!("/api/cases/{id}"), None).await.unwrap();
    assert_eq!((status, case["status"].as_str()), (200, Some("dispatched")));
    assert_eq!((case["lead_department"].clone(), case["deadline"].clone()), (Value::Null, Value::Null));
    assert_eq!(case["light"], "off");
    let (_, listed) = citizen.json("GET", "/api/cases", None).await.unwrap();
    assert_eq!(listed["items"][0]["lead_department"], Value::Null, "{listed}");
    let (status, history) = citizen.json("GET", &format!("/api/cases/{id}/history"), None).await.unwrap();
    assert_eq!(status, 200);
    let labels: Vec<&str> =
        history.as_array().unwrap().iter().map(|e| e["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["已受理", "已立案", "已转交职能部门办理"]);
    let text = history.to_string();
    assert!(!text.contains("内部备注") && !text.contains(&sha), "{text}");
    assert!(history
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"]["user"].is_null() && e["actor"]["role"].is_null()));
    assert_eq!(citizen.json("GET", &format!("/api/cases/{id}/route"), None).await.unwrap().0, 404);
    let file = format!("/api/cases/{id}/attachments/{sha}");
    assert_eq!(citizen.request("GET", &file, &[], None).await.unwrap().status, 404);
    assert_eq!(operator.request("GET", &file, &[], None).await.unwrap().status, 200);
}

async fn cases_are_dispatched_only_to_departments_over_their_place(app: TestApp) {
    let mut hotline = app.signed_in("hotline").await;
    let id = report(&mut hotline, GRID, "桃坞路流动摊贩占道").await;
    let mut operator = app.signed_in("operator").await;
    assert_eq!(
        act(&mut operator, id, json!({"action": {"type": "register", "matter": "street_vending"}})).await.0,
        200
    );
    let before = app.store.load_case(shiyu_domain::CaseId(id)).await.unwrap().unwrap().version;
    let other = SampleWorld::OTHER_COUNTY_DEPARTMENT;
    for request in [
        json!({"action": {"type": "dispatch", "lead": other}}),
        json!({"action": {"type": "dispatch", "lead": SampleWorld::LEAD_DEPARTMENT, "assisting": [other]}}),
    ] {
        let (status, body) = act(&mut operator, id, request.clone()).await;
        assert_eq!((status, code(&body)), (422, "DEPARTMENT_OUTSIDE_CASE"), "{request}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
        assert!(!body["error"]["message_en"].as_str().unwrap().is_empty());
    }
    assert_eq!(app.store.load_case(shiyu_domain::CaseId(id)).await.unwrap().unwrap().version, before);
    let (status, dispatched) = act(
        &mut operator,
        id,
        json!({"action": {"type": "dispatch", "lead": SampleWorld::LEAD_DEPARTMENT, "assisting": [SampleWorld::ASSISTING_DEPARTMENT]}}),
    )
    .await;
    assert_eq!((status, dispatched["lead_department"].as_i64()), (200, Some(SampleWorld::LEAD_DEPARTMENT)));
}

async fn anonymous_senders_never_share_a_receipt(app: TestApp) {
    let send = |body: Value| {
        let mut client = app.anonymous();
        async move {
            let bytes = body.to_string().into_bytes();
            let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "report-1")];
            let response =
                client.request("POST", "/api/public/reports", &headers, Some(&bytes)).await.unwrap();
            (response.status, response.json()["tracking_code"].as_str().unwrap_or("").to_string())
        }
    };
    let first = json!({"description": "半夜施工噪音扰民", "jurisdiction": GRID, "phone": "13900001111"});
    let (status, mine) = send(first.clone()).await;
    assert_eq!(status, 201);
    let (status, theirs) = send(json!({"description": "路灯不亮", "jurisdiction": GRID})).await;
    assert_eq!(status, 201, "another sender's report is taken in, not answered with the first receipt");
    assert_ne!(mine, theirs);
    assert_eq!(send(first).await, (200, mine), "a true retry still returns the first receipt");
    assert_eq!(app.store.count_cases().await.unwrap(), 2);
}

async fn an_event_stream_ends_with_its_session(app: TestApp) {
    let mut operator = app.signed_in("operator").await;
    let cookie = operator.cookie.clone().unwrap();
    let mut stream =
        EventStream::open(app.address, "/api/events/stream", &[("Cookie", &cookie)]).await.unwrap();
    assert_eq!(stream.status, 200);
    let mut hotline = app.signed_in("hotline").await;
    report(&mut hotline, GRID, "signed in: this one arrives").await;
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
    assert_eq!(first.event.as_deref(), Some("received"));

    assert_eq!(operator.request("DELETE", "/api/session", &[], None).await.unwrap().status, 204);
    report(&mut hotline, GRID, "signed out: the stream ends instead").await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if stream.next().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream still ran twenty seconds after sign-out");
}

async fn every_refusal_has_the_error_body_and_changes_nothing(app: TestApp) {
    let mut operator = app.signed_in("operator").await;
    // Refusals made before any handler runs answer in the same shape as the handlers' own.
    // The last element is what both messages must name: the value or parameter at fault.
    for (method, path, status, expected, names) in [
        ("GET", "/api/cases/9223372036854775808", 400, "INVALID_PARAMETERS", "9223372036854775808"),
        ("GET", "/api/cases?limit=abc", 400, "INVALID_PARAMETERS", "limit"),
        ("GET", "/api/analytics/top?dim=matter&n=x", 400, "INVALID_PARAMETERS", "n"),
        ("GET", "/api/analytics/top", 400, "INVALID_PARAMETERS", "dim"),
        // A filter the list does not have is refused, not ignored: the whole list would pass for a filtered one.
        ("GET", "/api/cases?light=red", 400, "INVALID_PARAMETERS", "light"),
        ("GET", "/api/analytics/groups?by=county&sort=cases", 400, "INVALID_PARAMETERS", "sort"),
        ("GET", "/api/jurisdictions?id=4385", 400, "INVALID_PARAMETERS", "parent_code"),
        ("GET", "/api/no-such-thing", 404, "NOT_FOUND", ""),
        ("DELETE", "/api/cases", 405, "METHOD_NOT_ALLOWED", ""),
    ] {
        let response = operator.request(method, path, &[], None).await.unwrap();
        let body = response.json();
        assert_eq!((response.status, code(&body)), (status, expected), "{method} {path}: {body}");
        let (zh, en) =
            (body["error"]["message"].as_str().unwrap(), body["error"]["message_en"].as_str().unwrap());
        assert!(!zh.is_empty() && !en.is_empty());
        assert!(zh.contains(names) && en.contains(names), "{path} should name `{names}`: {zh} / {en}");
    }
    let huge = vec![0xFFu8; 11 * 1024 * 1024];
    let response = operator.request("POST", "/api/attachments?name=big.jpg", &[], Some(&huge)).await.unwrap();
    assert_eq!((response.status, code(&response.json())), (413, "BODY_TOO_LARGE"));
    // Without a credential a write is refused as such, before its body is read or judged, and with a bad
    // credential likewise.
    let json = [("Content-Type", "application/json")];
    let mut forged = app.anonymous();
    let forged_token = [("Content-Type", "application/json"), ("Authorization", "Bearer not-a-token")];
    for (path, body) in [
        ("/api/cases", &b"{\"channel\": 7}"[..]),
        ("/api/cases/1/actions", &b"not json"[..]),
        ("/api/users", &b"[]"[..]),
        ("/api/attachments?name=photo.jpg", &b"not an image"[..]),
    ] {
        let response = app.anonymous().request("POST", path, &json, Some(body)).await.unwrap();
        assert_eq!((response.status, code(&response.json())), (401, "UNAUTHENTICATED"), "{path}");
        let response = forged.request("POST", path, &forged_token, Some(body)).await.unwrap();
        assert_eq!((response.status, code(&response.json())), (401, "UNAUTHENTICATED"), "{path}");
    }

    // A key reused for a different report makes a case of its own; the same report again is a retry.
    let send = |description: &str| {
        json!({"channel": "hotline", "description": description, "jurisdiction": GRID})
            .to_string()
            .into_bytes()
    };
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", "call-7")];
    let mut hotline = app.signed_in("hotline").await;
    let first = hotline.request("POST", "/api/cases", &headers, Some(&send("井盖缺失"))).await.unwrap();
    let other =
        hotline.request("POST", "/api/cases", &headers, Some(&send("燃气泄漏，情况紧急"))).await.unwrap();
    let again = hotline.request("POST", "/api/cases", &headers, Some(&send("井盖缺失"))).await.unwrap();
    assert_eq!((first.status, other.status, again.status), (201, 201, 200));
    assert_eq!(first.json()["case"]["id"], again.json()["case"]["id"]);
    assert_ne!(first.json()["case"]["id"], other.json()["case"]["id"], "the second report is not dropped");

    // An unknown field is refused inside an action as well as beside it, whatever the action.
    for action in
        [json!({"type": "close", "force": true}), json!({"type": "merge", "into": 1, "force": true})]
    {
        let (status, body) =
            act(&mut operator, first.json()["case"]["id"].as_i64().unwrap(), json!({"action": action})).await;
        assert_eq!((status, code(&body)), (422, "INVALID_FIELDS"), "{action}: {body}");
    }
    // A note put inside the action instead of beside it is told where it is.
    let inside = json!({"action": {"type": "close", "note": "已处理"}});
    let (status, body) = act(&mut operator, first.json()["case"]["id"].as_i64().unwrap(), inside).await;
    assert_eq!((status, code(&body)), (422, "INVALID_FIELDS"), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().ends_with("action 中没有字段 note"), "{body}");

    // A supervision's due date is bounded like an extension.
    let id = first.json()["case"]["id"].as_i64().unwrap();
    let far = json!({"action": {"type": "supervise", "due": 9_223_372_036_854_775_807_i64}, "note": "督办"});
    let mut leader = app.signed_in("leader").await;
    let (status, body) = act(&mut leader, id, far).await;
    assert_eq!((status, code(&body)), (422, "DEADLINE_TOO_FAR"), "{body}");

    // Usernames are unique whatever their letter case.
    let mut admin = app.signed_in("admin").await;
    let user = json!({"username": "OPERATOR", "display_name": "x", "role": "operator", "jurisdiction": "320613", "password": "Operator-pass-2026"});
    let (status, body) = admin.json("POST", "/api/users", Some(&user)).await.unwrap();
    assert_eq!((status, code(&body)), (409, "USERNAME_TAKEN"), "{body}");
    assert!(!body.to_string().contains("UNIQUE"), "no database text: {body}");

    // Weights whose sum overflows would make every score null.
    let (_, mut weights) = admin.json("GET", "/api/evaluation/weights/2026", None).await.unwrap();
    weights["response"] = json!(1e308);
    weights["resolution"] = json!(1e308);
    let (status, body) = admin.json("PUT", "/api/evaluation/weights/2026", Some(&weights)).await.unwrap();
    assert_eq!(status, 422, "{body}");
    let (_, kept) = admin.json("GET", "/api/evaluation/weights/2026", None).await.unwrap();
    assert_ne!(kept["response"], json!(1e308));
}
