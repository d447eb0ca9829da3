//! The dashboard over HTTP (SPEC §13): no page without a session, the session cookie and its
//! end, one account's session never sees another's objects, restricted keys, CSRF, escaping,
//! actions through the API's flows with one effect per form, and the key never echoed.

mod common;

use common::dashboard::{Dashboard, Page};
use common::*;
use serde_json::{json, Value};
use vinr_domain::Mode;

async fn authorized(api: &Api, amount: i64, extra: Value) -> Value {
    let mut body = payment_body(amount, json!({"capture": false}));
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let payment = api.create_payment(body).await;
    api.pay(&id_of(&payment), CARD_APPROVED)
        .await
        .expect_status(200);
    api.payment(&id_of(&payment)).await
}

fn pages_of(payment_id: &str) -> Vec<String> {
    [
        "/dashboard",
        "/dashboard/payments",
        "/dashboard/events",
        "/dashboard/webhooks",
        "/dashboard/settlements",
        "/dashboard/test-clock",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .chain([format!("/dashboard/payments/{payment_id}")])
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_page_or_action_without_a_session() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = authorized(&api, 1000, json!({})).await;
    let id = id_of(&payment);
    let mut anonymous = Dashboard::new(&server.base);
    for path in pages_of(&id) {
        let page = anonymous.get(&path).await;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert_eq!(page.location(), "/dashboard/sign-in", "{path}");
    }
    // A made-up session cookie is no session either.
    anonymous
        .cookies
        .insert("vinr_session".into(), "a".repeat(43));
    for action in ["capture", "cancel"] {
        let page = anonymous
            .post(&format!("/dashboard/payments/{id}/{action}"), &[])
            .await;
        assert_eq!(page.status, 303, "{action}");
    }
    assert_eq!(api.payment(&id).await["status"], "authorized");
    let sign_in = anonymous.get("/dashboard/sign-in").await;
    sign_in
        .expect(200)
        .contains("<label for=\"key\">API key</label>");
    server.stop().await;
}

fn cookie_named<'a>(page: &'a Page, name: &str) -> &'a str {
    let cookies = page.set_cookies();
    let found = cookies
        .iter()
        .position(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"));
    page.headers
        .get_all("set-cookie")
        .iter()
        .nth(found)
        .and_then(|v| v.to_str().ok())
        .expect("the cookie")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_a_strict_http_only_cookie_stored_hashed_and_ends_at_sign_out() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut browser = Dashboard::new(&server.base);
    let answer = browser.sign_in(&api.key).await;
    answer.expect(303);
    assert_eq!(answer.location(), "/dashboard");
    let cookie = cookie_named(&answer, "vinr_session");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/dashboard",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http public URL: {cookie}");
    assert!(!cookie.contains(&api.key));
    let session_id = browser.cookies["vinr_session"].clone();
    // Only the id's hash is kept.
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(session_id.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let row = server
        .app()
        .store
        .read(move |reader| reader.dashboard_session(&hash))
        .await
        .expect("a read")
        .expect("the session is stored by the hash of its id");
    assert_ne!(row.id_hash, session_id);
    assert_eq!(row.scope.account_id, server.sandbox_account());
    let overview = browser.get("/dashboard").await;
    overview
        .expect(200)
        .contains("Test mode")
        .contains("Sign out");
    // The checkout's headers.
    let csp = overview.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(overview.header("x-frame-options"), "DENY");
    assert_eq!(overview.header("cache-control"), "no-store");
    assert_eq!(overview.header("referrer-policy"), "no-referrer");
    let css = browser.get("/dashboard/assets/dashboard.css").await;
    css.expect(200);
    assert!(css.header("content-type").starts_with("text/css"));

    // Sign-out needs the form's CSRF field.
    let refused = browser
        .post("/dashboard/sign-out", &[("csrf", "nope")])
        .await;
    refused.expect(403);
    browser.get("/dashboard").await.expect(200);
    let csrf = overview.field("csrf");
    let out = browser
        .post("/dashboard/sign-out", &[("csrf", &csrf)])
        .await;
    out.expect(303);
    assert_eq!(out.location(), "/dashboard/sign-in");
    assert!(cookie_named(&out, "vinr_session").contains("Max-Age=0"));
    // The old id is dead even if a browser kept it.
    let mut replay = Dashboard::new(&server.base);
    replay.cookies.insert("vinr_session".into(), session_id);
    assert_eq!(replay.get("/dashboard").await.status, 303);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_end_with_their_key() {
    let server = TestServer::start().await;
    let account = server.sandbox_account();
    let (key_id, api) = server.new_key(&account, Mode::Test, &[]).await;
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    browser.get("/dashboard").await.expect(200);
    server.clock.advance_ms(12 * 60 * 60 * 1000 - 1000);
    browser.get("/dashboard").await.expect(200);
    server.clock.advance_ms(2000);
    let expired = browser.get("/dashboard").await;
    assert_eq!(expired.status, 303, "expired after 12 h");

    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    browser.get("/dashboard/payments").await.expect(200);
    server.revoke(&key_id).await;
    assert_eq!(browser.get("/dashboard/payments").await.status, 303);
    // And a revoked key cannot sign in; the page does not tell it from a key never made.
    let mut again = Dashboard::new(&server.base);
    again
        .sign_in(&api.key)
        .await
        .expect(401)
        .contains("This is not a valid API key.")
        .lacks("revoked");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_bad_keys_and_forms_without_csrf() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut browser = Dashboard::new(&server.base);
    for key in ["sk_test_notakeyatallnotakeyatallnotakeyatall", "hello", ""] {
        let page = browser.sign_in(key).await;
        assert!(
            page.status == 401 || page.status == 422,
            "{key}: {}",
            page.status
        );
        assert!(page
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("vinr_session")));
        // The typed key is never written back into the page.
        if !key.is_empty() {
            page.lacks(key);
        }
    }
    // A sign-in POST without the CSRF field (another site's form) opens nothing.
    let mut other_site = Dashboard::new(&server.base);
    let page = other_site
        .post("/dashboard/sign-in", &[("key", &api.key)])
        .await;
    page.expect(403);
    assert!(page
        .set_cookies()
        .iter()
        .all(|c| !c.starts_with("vinr_session")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_never_sees_another_accounts_objects() {
    let server = TestServer::start().await;
    let api = server.api();
    let (_, other) = server.new_account("Other shop").await;
    let theirs = authorized(&other, 777, json!({"description": "their secret order"})).await;
    let their_id = id_of(&theirs);
    other
        .post_json("/v1/webhooks", json!({"url": "http://localhost:9/hook"}))
        .await
        .expect_status(201);
    let their_event = other.events().await[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    authorized(&api, 1000, json!({"description": "our order"})).await;
    let mut ours = Dashboard::signed_in(&server.base, &api.key).await;
    let list = ours.get("/dashboard/payments").await;
    list.expect(200)
        .contains("our order")
        .lacks("their secret order")
        .lacks(&their_id);
    ours.get(&format!("/dashboard/payments/{their_id}"))
        .await
        .expect(404)
        .lacks("their secret order");
    ours.get(&format!("/dashboard/events/{their_event}"))
        .await
        .expect(404);
    ours.get("/dashboard/webhooks")
        .await
        .expect(200)
        .lacks("localhost:9");
    // An action on their payment: 404, and nothing changes.
    let page = ours.get("/dashboard/payments").await;
    let csrf = page.field("csrf");
    ours.post(
        &format!("/dashboard/payments/{their_id}/capture"),
        &[("csrf", &csrf), ("idempotency_key", "k1")],
    )
    .await
    .expect(404);
    assert_eq!(other.payment(&their_id).await["status"], "authorized");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_keys_see_and_do_only_what_their_scopes_allow() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = authorized(&api, 1000, json!({})).await;
    let id = id_of(&payment);
    let account = server.sandbox_account();
    let (_, reader) = server
        .new_key(&account, Mode::Test, &["payments:read"])
        .await;
    assert!(reader.key.starts_with("rk_test_"));
    let mut browser = Dashboard::signed_in(&server.base, &reader.key).await;
    let overview = browser.get("/dashboard").await;
    overview
        .expect(200)
        .contains("id=\"nav-payments\"")
        .lacks("id=\"nav-events\"")
        .lacks("id=\"nav-webhooks\"")
        .contains("(restricted)");
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200)
        .lacks("id=\"capture-form\"")
        .lacks("id=\"timeline\"");
    browser.get("/dashboard/events").await.expect(403);
    browser.get("/dashboard/webhooks").await.expect(403);
    browser.get("/dashboard/settlements").await.expect(403);
    // A hand-made capture form is refused by the API's scope check, and nothing changes.
    let csrf = page.field("csrf");
    let refused = browser
        .post(
            &format!("/dashboard/payments/{id}/capture"),
            &[("csrf", &csrf), ("idempotency_key", "restricted-1")],
        )
        .await;
    refused.expect(403).contains("payments:write");
    assert_eq!(api.payment(&id).await["status"], "authorized");

    // payments:write may capture, still without refunds.
    let (_, writer) = server
        .new_key(&account, Mode::Test, &["payments:write"])
        .await;
    let mut browser = Dashboard::signed_in(&server.base, &writer.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200).contains("id=\"capture-form\"");
    let done = browser
        .submit(&page, &format!("/dashboard/payments/{id}/capture"), &[])
        .await;
    done.expect(303);
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200).lacks("id=\"refund-form\"");
    assert_eq!(api.payment(&id).await["status"], "completed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_field_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = authorized(&api, 1000, json!({})).await;
    let id = id_of(&payment);
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let key = page.field_in(
        "idempotency_key",
        &format!("/dashboard/payments/{id}/capture"),
    );
    let before = api.state().await;
    for csrf in ["", "forged", &"A".repeat(43)] {
        for action in ["capture", "cancel"] {
            let answer = browser
                .post(
                    &format!("/dashboard/payments/{id}/{action}"),
                    &[("csrf", csrf), ("idempotency_key", &key)],
                )
                .await;
            answer.expect(403);
        }
    }
    let endpoint = browser
        .post(
            "/dashboard/webhooks",
            &[("csrf", "forged"), ("url", "http://localhost:9/x")],
        )
        .await;
    endpoint.expect(403);
    let reset = browser
        .post(
            "/dashboard/test-clock",
            &[("csrf", "forged"), ("action", "reset"), ("confirm", "yes")],
        )
        .await;
    reset.expect(403);
    // A CSRF field of another session is refused too.
    let mut other = Dashboard::signed_in(&server.base, &api.key).await;
    let theirs = other.get("/dashboard").await.field("csrf");
    browser
        .post(
            &format!("/dashboard/payments/{id}/capture"),
            &[("csrf", &theirs), ("idempotency_key", "other-session")],
        )
        .await
        .expect(403);
    api.expect_unchanged(&before, "CSRF refusals").await;
    assert!(api.list_all("/v1/webhooks").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_descriptions_and_metadata_are_escaped() {
    let server = TestServer::start().await;
    let api = server.api();
    let hostile = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";
    let payment = authorized(
        &api,
        1000,
        json!({"description": hostile, "metadata": {"<b>key</b>": hostile}}),
    )
    .await;
    let id = id_of(&payment);
    api.post_json(
        "/v1/webhooks",
        json!({"url": "http://localhost:9/hook?<b>x</b>", "description": hostile}),
    )
    .await
    .expect_status(201);
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let event = api.events().await[0]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    for path in [
        "/dashboard/payments".to_owned(),
        format!("/dashboard/payments/{id}"),
        format!("/dashboard/events/{event}"),
        "/dashboard/webhooks".to_owned(),
    ] {
        let page = browser.get(&path).await;
        page.expect(200)
            .lacks("<script>")
            .lacks("<img")
            .lacks("<b>key")
            .contains("&#60;script&#62;");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_run_the_api_flows_once_per_form_and_show_its_errors_by_the_field() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = authorized(&api, 123_456, json!({"currency": "EUR"})).await;
    let id = id_of(&payment);
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200)
        .contains("€1,234.56")
        .contains("id=\"capture-form\"")
        .contains("payment.authorized");
    // A typo is caught before the API, next to the field.
    let capture = format!("/dashboard/payments/{id}/capture");
    let typo = browser
        .submit(&page, &capture, &[("amount", "12.345")])
        .await;
    typo.expect(422).contains("id=\"capture-amount-error\"");
    // More than capturable: the API's message, next to the amount.
    let too_much = browser.submit(&page, &capture, &[("amount", "5000")]).await;
    assert_eq!(too_much.status, 422, "{}", too_much.body);
    too_much.contains("id=\"capture-amount-error\"");
    assert_eq!(api.payment(&id).await["status"], "authorized");
    // Each answer is a page with fresh forms (the refused form's key keeps its answer). A
    // partial capture, submitted twice with the same form (a double click): one effect.
    let page = too_much;
    let first = browser
        .submit(&page, &capture, &[("amount", "1,000.00")])
        .await;
    first.expect(303);
    let second = browser
        .submit(&page, &capture, &[("amount", "1,000.00")])
        .await;
    second.expect(303);
    let captured = api.payment(&id).await;
    assert_eq!(captured["status"], "completed");
    assert_eq!(captured["amountCaptured"], 100_000);
    let events = api.events_of(&id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "payment.completed")
            .count(),
        1
    );
    // Refund: more than refundable is the API's error by the field; then 250.50.
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200)
        .contains("€1,000.00")
        .contains("id=\"refund-form\"");
    let refund = format!("/dashboard/payments/{id}/refund");
    let refused = browser
        .submit(&page, &refund, &[("amount", "1000.01")])
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    refused.contains("id=\"refund-amount-error\"");
    let page = refused;
    let done = browser
        .submit(
            &page,
            &refund,
            &[("amount", "250.50"), ("reason", "requested_by_customer")],
        )
        .await;
    done.expect(303);
    browser
        .submit(
            &page,
            &refund,
            &[("amount", "250.50"), ("reason", "requested_by_customer")],
        )
        .await
        .expect(303);
    let refunds = api.list_all(&format!("/v1/refunds?payment={id}")).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 25_050);
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200)
        .contains("refund.created")
        .contains("payment.completed")
        .contains(refunds[0]["id"].as_str().expect("an id"))
        .contains("id=\"ledger\"")
        .contains("€250.50");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_pays_with_a_test_card_and_opens_a_dispute() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(1500, json!({"currency": "JPY"})))
        .await;
    let id = id_of(&payment);
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200)
        .contains("¥1,500")
        .contains("id=\"pay-form\"");
    let pay = format!("/dashboard/payments/{id}/pay");
    browser
        .submit(&page, &pay, &[("card", CARD_DECLINED)])
        .await
        .expect(303);
    assert_eq!(api.payment(&id).await["status"], "failed");

    let payment = api
        .create_payment(payment_body(1500, json!({"currency": "JPY"})))
        .await;
    let id = id_of(&payment);
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let pay = format!("/dashboard/payments/{id}/pay");
    browser
        .submit(&page, &pay, &[("card", CARD_APPROVED)])
        .await
        .expect(303);
    assert_eq!(api.payment(&id).await["status"], "completed");
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let dispute = format!("/dashboard/payments/{id}/dispute");
    browser
        .submit(
            &page,
            &dispute,
            &[("amount", "500"), ("reason", "fraudulent")],
        )
        .await
        .expect(303);
    let disputes = api.list_all(&format!("/v1/disputes?payment={id}")).await;
    assert_eq!(disputes.len(), 1);
    assert_eq!(disputes[0]["amount"], 500);
    browser
        .get(&format!("/dashboard/payments/{id}"))
        .await
        .expect(200)
        .contains("dispute.created")
        .contains("id=\"disputes\"");
    // Answer it with winning evidence: the sandbox decides it won.
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let dispute_id = id_of(&disputes[0]);
    let evidence = format!("/dashboard/payments/{id}/dispute-evidence");
    browser
        .submit(
            &page,
            &evidence,
            &[
                ("dispute", &dispute_id),
                ("evidence", "winning_evidence: signed delivery"),
            ],
        )
        .await
        .expect(303);
    let dispute = api.get(&format!("/v1/disputes/{dispute_id}")).await;
    let dispute = dispute.expect_status(200);
    assert!(
        dispute["status"] == "won" || dispute["status"] == "under_review",
        "{dispute}"
    );
    assert_eq!(
        dispute["evidence"]["uncategorizedText"],
        "winning_evidence: signed delivery"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_is_marked_and_offers_no_test_tools() {
    let server = TestServer::start_with(Options {
        live_sandbox: true,
        ..Options::default()
    })
    .await;
    let account = server.sandbox_account();
    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;
    let payment = live
        .create_payment(payment_body(
            1000,
            json!({"returnUrl": "https://shop.example/r"}),
        ))
        .await;
    let id = id_of(&payment);
    let mut browser = Dashboard::signed_in(&server.base, &live.key).await;
    browser
        .get("/dashboard")
        .await
        .expect(200)
        .contains("Live mode")
        .contains("class=\"mode-live\"")
        .lacks("Test mode")
        .lacks("nav-clock");
    browser
        .get(&format!("/dashboard/payments/{id}"))
        .await
        .expect(200)
        .lacks("id=\"pay-form\"")
        .contains("id=\"cancel-form\"");
    browser.get("/dashboard/test-clock").await.expect(404);
    // The test key's session does not see the live payment.
    let mut test = Dashboard::signed_in(&server.base, &server.api().key).await;
    test.get(&format!("/dashboard/payments/{id}"))
        .await
        .expect(404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_csv_adds_up_and_the_clock_advances_and_resets() {
    let server = TestServer::start().await;
    let api = server.api();
    for amount in [1000, 2550, 999] {
        let payment = api.create_payment(payment_body(amount, json!({}))).await;
        api.pay(&id_of(&payment), CARD_APPROVED)
            .await
            .expect_status(200);
    }
    let paid = api.completed_payment().await;
    api.post_json(
        "/v1/refunds",
        json!({"payment": id_of(&paid), "amount": 300}),
    )
    .await
    .expect_status(201);
    server.finish_refunds(&api).await;
    let run = api
        .post_json("/v1/test_helpers/settlements/run", json!({}))
        .await;
    run.expect_status(200);
    let settlements = api.list_all("/v1/settlements").await;
    assert_eq!(settlements.len(), 1, "{settlements:?}");
    let settlement = &settlements[0];
    let setl = id_of(settlement);
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    browser
        .get("/dashboard/settlements")
        .await
        .expect(200)
        .contains(&setl);
    browser
        .get(&format!("/dashboard/settlements/{setl}"))
        .await
        .expect(200)
        .contains("Download CSV");
    let csv = browser
        .get(&format!("/dashboard/settlements/{setl}/transactions.csv"))
        .await;
    csv.expect(200);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert!(csv.header("content-disposition").contains("attachment"));
    // The API's own CSV, byte for byte, and its file name.
    let from_api = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/settlements/{setl}/transactions"),
        )
        .header("accept", "text/csv")
        .send()
        .await;
    assert_eq!(from_api.status, 200, "{}", from_api.text);
    assert_eq!(csv.body, from_api.text, "the dashboard's CSV is the API's");
    assert_eq!(
        csv.header("content-disposition"),
        from_api.header("content-disposition").unwrap_or("")
    );
    let mut lines = csv.body.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(
        header,
        [
            "id",
            "type",
            "source",
            "amount",
            "fee",
            "net",
            "currency",
            "created_at",
            "availableOn"
        ]
    );
    let column = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (kind_at, amount_at, fee_at, net_at) = (
        column("type"),
        column("amount"),
        column("fee"),
        column("net"),
    );
    let rows: Vec<Vec<String>> = lines
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect();
    assert_eq!(
        rows.len() as i64,
        settlement["transactionCount"].as_i64().expect("a count")
    );
    let number = |row: &Vec<String>, at: usize| row[at].parse::<i64>().expect("an integer");
    let total = |kind: &str, at: usize| -> i64 {
        rows.iter()
            .filter(|row| row[kind_at] == kind)
            .map(|row| number(row, at))
            .sum()
    };
    let net: i64 = rows.iter().map(|row| number(row, net_at)).sum();
    let fees: i64 = rows.iter().map(|row| number(row, fee_at)).sum();
    assert_eq!(net, settlement["net"].as_i64().expect("a net"));
    assert_eq!(fees, settlement["fees"].as_i64().expect("fees"));
    assert_eq!(
        total("payment", amount_at),
        settlement["gross"].as_i64().expect("gross")
    );
    assert_eq!(
        -total("refund", amount_at),
        settlement["refunds"].as_i64().expect("refunds")
    );

    // The test clock: advance a day, then reset.
    let page = browser.get("/dashboard/test-clock").await;
    page.expect(200);
    let before = api.get("/v1/test_helpers/clock").await;
    let before = before.expect_status(200)["now"]
        .as_str()
        .expect("now")
        .to_owned();
    let csrf = page.field("csrf");
    browser
        .post(
            "/dashboard/test-clock",
            &[
                ("csrf", &csrf),
                ("action", "advance"),
                ("days", "1"),
                ("idempotency_key", "adv-1"),
            ],
        )
        .await
        .expect(200)
        .contains("The clock moved forward");
    let after = api.get("/v1/test_helpers/clock").await;
    let after = after.expect_status(200)["now"]
        .as_str()
        .expect("now")
        .to_owned();
    assert!(after > before, "{before} → {after}");
    browser
        .post(
            "/dashboard/test-clock",
            &[
                ("csrf", &csrf),
                ("action", "reset"),
                ("idempotency_key", "reset-1"),
            ],
        )
        .await
        .expect(422);
    assert_eq!(api.payments().await.len(), 4);
    browser
        .post(
            "/dashboard/test-clock",
            &[
                ("csrf", &csrf),
                ("action", "reset"),
                ("confirm", "yes"),
                ("idempotency_key", "reset-2"),
            ],
        )
        .await
        .expect(200)
        .contains("Test data reset");
    assert!(api.payments().await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_endpoints_are_made_tested_disabled_and_deleted_from_the_dashboard() {
    let server = TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let receiver = receiver::Receiver::start().await;
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get("/dashboard/webhooks").await;
    page.expect(200);
    let bad = browser
        .submit(&page, "/dashboard/webhooks", &[("url", "ftp://nope")])
        .await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    bad.contains("id=\"url-error\"").contains("ftp://nope");
    let created = browser
        .submit(&page, "/dashboard/webhooks", &[("url", &receiver.url())])
        .await;
    created.expect(201).contains("whsec_");
    let endpoints = api.list_all("/v1/webhooks").await;
    assert_eq!(endpoints.len(), 1);
    let we = id_of(&endpoints[0]);
    let page = browser.get(&format!("/dashboard/webhooks/{we}")).await;
    page.expect(200).lacks("whsec_");
    browser
        .submit(&page, &format!("/dashboard/webhooks/{we}/test"), &[])
        .await
        .expect(200)
        .contains("A test event was queued");
    server.deliver_due_webhooks().await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let page = browser.get(&format!("/dashboard/webhooks/{we}")).await;
    page.expect(200).contains("HTTP 200").contains("succeeded");
    // The attempt shows the headers exactly as the receiver got them, signature included,
    // and never the endpoint's secret.
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "x-vinr-signature",
        "x-vinr-timestamp",
        "content-type",
        "user-agent",
    ] {
        let value = received[0].header(name);
        assert!(!value.is_empty(), "{name} was sent");
        page.contains(&format!("<dt>{name}</dt><dd class=\"wrap\">{value}</dd>"));
    }
    let secret = created
        .body
        .split("whsec_")
        .nth(1)
        .and_then(|rest| rest.split(['<', '"']).next())
        .expect("the secret on the creation page")
        .to_owned();
    page.lacks(&secret);
    // The API's attempt object carries them too.
    let attempts = api.get(&format!("/v1/webhooks/{we}/deliveries")).await;
    let headers = &attempts.expect_status(200)["data"][0]["requestHeaders"];
    assert_eq!(
        headers["webhook-signature"],
        received[0].header("webhook-signature")
    );
    assert_eq!(headers["webhook-id"], received[0].header("webhook-id"));
    assert!(!headers.to_string().contains(&secret), "{headers}");
    browser
        .submit(&page, &format!("/dashboard/webhooks/{we}/disable"), &[])
        .await
        .expect(200)
        .contains("disabled");
    assert_eq!(
        api.get(&format!("/v1/webhooks/{we}"))
            .await
            .expect_status(200)["status"],
        "disabled"
    );
    let page = browser.get(&format!("/dashboard/webhooks/{we}")).await;
    let deleted = browser
        .submit(&page, &format!("/dashboard/webhooks/{we}/delete"), &[])
        .await;
    deleted.expect(303);
    assert!(api.list_all("/v1/webhooks").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_never_appears_in_a_page_or_a_log_line() {
    let dir = tempfile::tempdir().expect("a directory");
    let database = database::fresh_database().await;
    let config = process::config_without_rate_limits(dir.path());
    let served = process::Served::start_with_env(
        dir.path(),
        &database.url,
        &config,
        &[("VINR_LOG", "debug")],
    );
    let key = served.printed_key.clone().expect("the first-start key");
    let api = Api::new(&served.base, &key);
    let payment = authorized(&api, 4200, json!({"description": "tea"})).await;
    let id = id_of(&payment);
    let mut browser = Dashboard::new(&served.base);
    let mut bodies = Vec::new();
    let answer = browser.sign_in(&key).await;
    answer.expect(303);
    bodies.push(answer.body.clone());
    for path in pages_of(&id) {
        let page = browser.get(&path).await;
        page.expect(200);
        bodies.push(page.body.clone());
        for (name, value) in page.headers.iter() {
            assert!(
                !value.to_str().unwrap_or("").contains(&key),
                "{path}: header {name}"
            );
        }
    }
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let capture = browser
        .submit(&page, &format!("/dashboard/payments/{id}/capture"), &[])
        .await;
    capture.expect(303);
    // A wrong sign-in echoes nothing of what was typed.
    let mut stranger = Dashboard::new(&served.base);
    let wrong = format!("{key}x");
    bodies.push(stranger.sign_in(&wrong).await.body);
    for body in &bodies {
        assert!(!body.contains(&key), "the key in a page: {body}");
        assert!(!body.contains(&key[8..]), "the key's secret part in a page");
    }
    let log = served.log();
    assert!(log.contains("dashboard session opened"), "{log}");
    assert!(!log.contains(&key[8..]), "the key in the log");
    assert!(
        !log.contains(&browser.cookies["vinr_session"]),
        "the session id in the log"
    );
    drop(served);
    drop(database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payments_list_pages_by_cursor_and_filters_as_the_api() {
    let server = TestServer::start().await;
    let api = server.api();
    for n in 0..27 {
        let payment = api
            .create_payment(payment_body(
                100 + n,
                json!({"description": format!("order {n}")}),
            ))
            .await;
        if n % 9 == 0 {
            api.pay(&id_of(&payment), CARD_DECLINED)
                .await
                .expect_status(200);
        }
    }
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let first = browser.get("/dashboard/payments").await;
    first.expect(200);
    assert_eq!(first.body.matches("class=\"payment-link\"").count(), 25);
    first
        .contains("order 26")
        .lacks("order 1<")
        .lacks("id=\"newer\"");
    let next = first.field_href("next");
    assert!(next.contains("starting_after=pay_"), "{next}");
    let second = browser.get(&next).await;
    second.expect(200);
    assert_eq!(second.body.matches("class=\"payment-link\"").count(), 2);
    second
        .contains("order 0<")
        .contains("order 1<")
        .contains("id=\"newer\"")
        .lacks("id=\"next\"");
    // Back to the newest page: the same 25 rows, an older link again, no newer one.
    let back = browser.get(&second.field_href("newer")).await;
    back.expect(200);
    assert_eq!(back.body.matches("class=\"payment-link\"").count(), 25);
    back.contains("order 26")
        .contains("order 2<")
        .lacks("order 1<")
        .lacks("id=\"newer\"");
    assert!(back.field_href("next").contains("starting_after=pay_"));
    // The API's status filter, and its error for a status that does not exist.
    let failed = browser.get("/dashboard/payments?status=failed").await;
    failed.expect(200);
    assert_eq!(failed.body.matches("class=\"payment-link\"").count(), 3);
    failed.contains("<option value=\"failed\" selected>");
    let wrong = browser.get("/dashboard/payments?status=nonsense").await;
    // The API's message next to the field it names, not as a banner.
    wrong
        .expect(400)
        .contains("id=\"status-error\"")
        .contains("aria-describedby=\"status-error\"")
        .lacks("id=\"filters-error\"");
    let wrong = browser
        .get("/dashboard/payments?created_gte=yesterday")
        .await;
    wrong
        .expect(400)
        .contains("id=\"created-gte-error\"")
        .lacks("id=\"filters-error\"");
    browser
        .get("/dashboard/events?type=Not%20A%20Type")
        .await
        .expect(400)
        .contains("id=\"type-error\"")
        .lacks("id=\"filters-error\"");
    // Events by type.
    browser
        .get("/dashboard/events?type=payment.failed")
        .await
        .expect(200)
        .contains("payment.failed")
        .lacks(">payment.created<");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payments_timeline_reads_every_event_through_the_api_page_by_page() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(10_000, json!({"description": "many refunds"})))
        .await;
    let id = id_of(&payment);
    api.pay(&id, CARD_APPROVED).await.expect_status(200);
    // 51 refunds of one cent, each created and then succeeded: more than one API page (100)
    // of events about the payment.
    for n in 0..51 {
        api.call(reqwest::Method::POST, "/v1/refunds")
            .json(json!({"payment": id, "amount": 1}))
            .idempotency_key(&format!("timeline-refund-{n}"))
            .send()
            .await
            .expect_status(201);
    }
    server.finish_refunds(&api).await;
    // Another payment's events are not on this timeline.
    api.completed_payment().await;
    let about = api.list_all(&format!("/v1/events?payment={id}")).await;
    assert!(about.len() > 100, "{} events", about.len());
    let everything = api.events().await;
    assert!(everything.len() > about.len());
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200).lacks("id=\"timeline-older\"");
    let timeline = page
        .body
        .split("id=\"timeline\"")
        .nth(1)
        .and_then(|rest| rest.split("</ol>").next())
        .expect("a timeline")
        .to_owned();
    assert_eq!(timeline.matches("<li>").count(), about.len());
    // Oldest first, each named by its type.
    let oldest = about.last().expect("an event");
    let newest = about.first().expect("an event");
    let at = |event: &Value| {
        timeline
            .find(event["id"].as_str().expect("an id"))
            .unwrap_or_else(|| panic!("{event} on the timeline"))
    };
    assert!(at(oldest) < at(newest));
    assert_eq!(oldest["type"], "payment.created");
    assert_eq!(timeline.matches(">refund.succeeded<").count(), 51);
    // The events page takes the same filter, 25 a page with a cursor.
    let mut seen = 0;
    let mut next = format!("/dashboard/events?payment={id}");
    loop {
        let events = browser.get(&next).await;
        events.expect(200);
        seen += events.body.matches("class=\"mono event-type\"").count();
        if !events.body.contains("id=\"next\"") {
            break;
        }
        next = events.field_href("next");
        assert!(next.contains(&format!("payment={id}")), "{next}");
    }
    assert_eq!(seen, about.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disputes_are_listed_with_the_apis_filters_and_lead_to_their_payment() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut disputed = Vec::new();
    for n in 0..3 {
        let payment = api.completed_payment().await;
        let id = id_of(&payment);
        let reason = if n == 0 { "fraudulent" } else { "duplicate" };
        let dispute = api
            .post_json(
                &format!("/v1/test_helpers/payments/{id}/dispute"),
                json!({"reason": reason}),
            )
            .await;
        disputed.push((id, id_of(dispute.expect_status(201))));
    }
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let list = browser.get("/dashboard/disputes").await;
    list.expect(200).contains("id=\"nav-disputes\"");
    for (payment, dispute) in &disputed {
        list.contains(dispute)
            .contains(&format!("href=\"/dashboard/payments/{payment}\""));
    }
    let (payment, dispute) = &disputed[0];
    let one = browser
        .get(&format!("/dashboard/disputes?payment={payment}"))
        .await;
    one.expect(200).contains(dispute);
    assert_eq!(one.body.matches("class=\"dispute-link\"").count(), 1);
    browser
        .get("/dashboard/disputes?status=won")
        .await
        .expect(200)
        .contains("No disputes match.");
    // The API's error, next to the field it names.
    browser
        .get("/dashboard/disputes?status=nonsense")
        .await
        .expect(400)
        .contains("id=\"status-error\"")
        .lacks("id=\"filters-error\"");
    // A dispute's own URL leads to its payment's page, which links back to the list.
    let found = browser.get(&format!("/dashboard/disputes/{dispute}")).await;
    found.expect(303);
    assert_eq!(
        found.location(),
        format!("/dashboard/payments/{payment}#{dispute}")
    );
    browser
        .get(&format!("/dashboard/payments/{payment}"))
        .await
        .expect(200)
        .contains(&format!("<tr id=\"{dispute}\">"))
        .contains("id=\"payment-disputes\"");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_is_made_for_the_event_types_ticked_and_errors_stay_by_their_field() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get("/dashboard/webhooks").await;
    page.expect(200)
        .contains("id=\"event-types\"")
        .contains("value=\"settlement.paid\"");
    let created = browser
        .submit(
            &page,
            "/dashboard/webhooks",
            &[
                ("url", "http://localhost:9/hooks"),
                ("events", "payment.completed"),
                ("events", "refund.succeeded"),
            ],
        )
        .await;
    created.expect(201).contains("whsec_");
    let endpoints = api.list_all("/v1/webhooks").await;
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints[0]["events"],
        json!(["payment.completed", "refund.succeeded"])
    );
    // None ticked: every type.
    let page = browser.get("/dashboard/webhooks").await;
    browser
        .submit(
            &page,
            "/dashboard/webhooks",
            &[("url", "http://localhost:9/all")],
        )
        .await
        .expect(201);
    let all = api.list_all("/v1/webhooks").await;
    assert!(all.iter().any(|e| e["events"] == json!(["*"])), "{all:?}");
    // A type the API does not know: its message by the event types, what was typed kept.
    let page = browser.get("/dashboard/webhooks").await;
    let refused = browser
        .submit(
            &page,
            "/dashboard/webhooks",
            &[
                ("url", "http://localhost:9/x"),
                ("description", "kept"),
                ("events", "payment.completed"),
                ("events", "payment.nonsense"),
            ],
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    refused
        .contains("id=\"events-error\"")
        .contains("value=\"kept\"")
        .contains("value=\"payment.completed\" checked");
    assert_eq!(api.list_all("/v1/webhooks").await.len(), 2);
    // The test clock's errors sit by their field too.
    let clock = browser.get("/dashboard/test-clock").await;
    let csrf = clock.field("csrf");
    browser
        .post(
            "/dashboard/test-clock",
            &[("csrf", &csrf), ("action", "advance"), ("hours", "soon")],
        )
        .await
        .expect(400)
        .contains("id=\"hours-error\"")
        .contains("aria-describedby=\"hours-error\"")
        .lacks("id=\"error\"");
    browser
        .post(
            "/dashboard/test-clock",
            &[("csrf", &csrf), ("action", "reset")],
        )
        .await
        .expect(422)
        .contains("id=\"confirm-error\"")
        .lacks("id=\"error\"");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_view_takes_one_token_of_the_keys_rate_limit_whatever_it_calls() {
    let server = TestServer::start_with(Options {
        rate_limit: Some(vinr_server::config::RateLimitConfig {
            enabled: true,
            test_per_second: 1,
            test_burst: 5,
            ..vinr_server::config::RateLimitConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    // The overview makes several API calls in-process (account, clock, payments, balance,
    // events): were each counted, the second view would already be refused.
    for view in 0..4 {
        let page = browser.get("/dashboard").await;
        assert_eq!(page.status, 200, "view {view}: {}", page.body);
    }
    let mut refused = None;
    for _ in 0..6 {
        let page = browser.get("/dashboard").await;
        if page.status == 429 {
            refused = Some(page);
            break;
        }
    }
    let refused = refused.expect("a 429 once the burst of 5 is spent");
    assert!(!refused.header("retry-after").is_empty());
    refused.contains("Too many requests");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_are_throttled_per_address_and_a_key_keeps_a_bounded_number_of_sessions() {
    let server = TestServer::start().await;
    let api = server.api();
    let cap = vinr_domain::limits::DASHBOARD_SESSIONS_PER_KEY_MAX;
    let throttle = vinr_domain::limits::DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE as usize;
    assert!(
        cap < throttle,
        "the test signs in cap + 1 times within the throttle"
    );
    let mut browsers = Vec::new();
    for _ in 0..=cap {
        browsers.push(Dashboard::signed_in(&server.base, &api.key).await);
        // Sessions are ordered by when they were opened.
        server.clock.advance_ms(1000);
    }
    // One sign-in past the cap ended the oldest session; the others live.
    assert_eq!(browsers[0].get("/dashboard").await.status, 303);
    for browser in &mut browsers[1..] {
        browser.get("/dashboard").await.expect(200);
    }
    // The rest of the minute's sign-ins from this address, then a 429 (wrong key or not).
    let mut tries = Vec::new();
    for _ in (cap + 1)..throttle {
        tries.push(Dashboard::new(&server.base).sign_in(&api.key).await.status);
    }
    assert!(tries.iter().all(|status| *status == 303), "{tries:?}");
    let mut late = Dashboard::new(&server.base);
    for key in [api.key.as_str(), "sk_test_wrong"] {
        let page = late.sign_in(key).await;
        page.expect(429).contains("Too many sign-in attempts");
        assert!(page
            .set_cookies()
            .iter()
            .all(|c| !c.starts_with("vinr_session")));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_accounts_ids_in_dashboard_urls_are_404_and_change_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let (_, other) = server.new_account("Other shop").await;
    // Theirs: a disputed payment, an authorized one, an endpoint, events and a settlement.
    let disputed = other.completed_payment().await;
    let disputed_id = id_of(&disputed);
    let dispute = other
        .post_json(
            &format!("/v1/test_helpers/payments/{disputed_id}/dispute"),
            json!({"amount": 100}),
        )
        .await;
    let their_dispute = id_of(dispute.expect_status(201));
    let held = authorized(&other, 555, json!({})).await;
    let held_id = id_of(&held);
    let endpoint = other
        .post_json("/v1/webhooks", json!({"url": "http://localhost:9/theirs"}))
        .await;
    let their_endpoint = id_of(endpoint.expect_status(201));
    other
        .post_json("/v1/test_helpers/settlements/run", json!({}))
        .await
        .expect_status(200);
    let their_settlement = id_of(&other.list_all("/v1/settlements").await[0]);
    let their_event = id_of(&other.events().await[0]);
    let before = other.state().await;

    let mut ours = Dashboard::signed_in(&server.base, &api.key).await;
    for path in [
        format!("/dashboard/payments/{disputed_id}"),
        format!("/dashboard/payments/{held_id}"),
        format!("/dashboard/events/{their_event}"),
        format!("/dashboard/webhooks/{their_endpoint}"),
        format!("/dashboard/settlements/{their_settlement}"),
        format!("/dashboard/settlements/{their_settlement}/transactions.csv"),
        format!("/dashboard/disputes/{their_dispute}"),
    ] {
        let page = ours.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        // (The page may name the id asked for; nothing of theirs beyond it.)
        page.lacks("localhost:9/theirs");
    }
    for path in [
        "/dashboard/disputes".to_owned(),
        format!("/dashboard/disputes?payment={disputed_id}"),
        format!("/dashboard/events?payment={disputed_id}"),
        "/dashboard/settlements".to_owned(),
    ] {
        ours.get(&path)
            .await
            .expect(200)
            .lacks(&their_dispute)
            .lacks(&their_event)
            .lacks(&their_settlement);
    }
    // Their ids in our actions: 404, nothing done.
    let csrf = ours.get("/dashboard").await.field("csrf");
    for (path, fields) in [
        (format!("/dashboard/payments/{held_id}/capture"), vec![]),
        (format!("/dashboard/payments/{held_id}/cancel"), vec![]),
        (
            format!("/dashboard/payments/{disputed_id}/refund"),
            vec![("amount", "1")],
        ),
        (
            format!("/dashboard/payments/{disputed_id}/dispute-accept"),
            vec![("dispute", their_dispute.as_str())],
        ),
        (
            format!("/dashboard/webhooks/{their_endpoint}/delete"),
            vec![],
        ),
        (
            format!("/dashboard/webhooks/{their_endpoint}/disable"),
            vec![],
        ),
        (format!("/dashboard/events/{their_event}/resend"), vec![]),
    ] {
        let mut form = vec![("csrf", csrf.as_str()), ("idempotency_key", "cross-1")];
        form.extend(fields);
        let answer = ours.post(&path, &form).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    other
        .expect_unchanged(&before, "another account's actions")
        .await;
    let endpoint = other.get(&format!("/v1/webhooks/{their_endpoint}")).await;
    assert_eq!(endpoint.expect_status(200)["status"], "enabled");
    let dispute = other.get(&format!("/v1/disputes/{their_dispute}")).await;
    assert_eq!(dispute.expect_status(200)["status"], "needs_response");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_refund_or_delete_changes_nothing() {
    let server = TestServer::start().await;
    let api = server.api();
    let paid = api.completed_payment().await;
    let id = id_of(&paid);
    let endpoint = api
        .post_json("/v1/webhooks", json!({"url": "http://localhost:9/ours"}))
        .await;
    let we = id_of(endpoint.expect_status(201));
    let mut browser = Dashboard::signed_in(&server.base, &api.key).await;
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    let key = page.field_in(
        "idempotency_key",
        &format!("/dashboard/payments/{id}/refund"),
    );
    let before = api.state().await;
    for csrf in ["", "forged"] {
        browser
            .post(
                &format!("/dashboard/payments/{id}/refund"),
                &[("csrf", csrf), ("idempotency_key", &key), ("amount", "1")],
            )
            .await
            .expect(403);
        for action in ["delete", "disable", "test"] {
            browser
                .post(
                    &format!("/dashboard/webhooks/{we}/{action}"),
                    &[("csrf", csrf), ("idempotency_key", "forged-1")],
                )
                .await
                .expect(403);
        }
    }
    api.expect_unchanged(&before, "forged refund and endpoint actions")
        .await;
    assert!(api
        .list_all(&format!("/v1/refunds?payment={id}"))
        .await
        .is_empty());
    let endpoint = api.get(&format!("/v1/webhooks/{we}")).await;
    assert_eq!(endpoint.expect_status(200)["status"], "enabled");
    assert!(api.webhook_attempts(&we).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_scopes_a_key_gets_the_apis_403_and_nothing_changes() {
    let server = TestServer::start().await;
    let api = server.api();
    let paid = api.completed_payment().await;
    let id = id_of(&paid);
    let endpoint = api
        .post_json("/v1/webhooks", json!({"url": "http://localhost:9/ours"}))
        .await;
    let we = id_of(endpoint.expect_status(201));
    let account = server.sandbox_account();
    let (_, narrow) = server
        .new_key(&account, Mode::Test, &["payments:write", "webhooks:read"])
        .await;
    let mut browser = Dashboard::signed_in(&server.base, &narrow.key).await;
    for (path, scope) in [
        ("/dashboard/events", "events:read"),
        ("/dashboard/settlements", "settlements:read"),
        ("/dashboard/disputes", "disputes:read"),
    ] {
        browser
            .get(path)
            .await
            .expect(403)
            .contains("Not allowed with this key")
            .contains(scope);
    }
    let page = browser.get(&format!("/dashboard/payments/{id}")).await;
    page.expect(200).lacks("id=\"refund-form\"");
    browser
        .get(&format!("/dashboard/webhooks/{we}"))
        .await
        .expect(200)
        .lacks("id=\"delete\"");
    let csrf = page.field("csrf");
    let before = api.state().await;
    let refund = browser
        .post(
            &format!("/dashboard/payments/{id}/refund"),
            &[
                ("csrf", &csrf),
                ("idempotency_key", "narrow-1"),
                ("amount", "1"),
            ],
        )
        .await;
    refund.expect(403).contains("refunds:write");
    let dispute = browser
        .post(
            &format!("/dashboard/payments/{id}/dispute"),
            &[("csrf", &csrf), ("idempotency_key", "narrow-2")],
        )
        .await;
    dispute.expect(403).contains("disputes:write");
    for action in ["delete", "disable"] {
        let answer = browser
            .post(
                &format!("/dashboard/webhooks/{we}/{action}"),
                &[("csrf", &csrf), ("idempotency_key", "narrow-3")],
            )
            .await;
        answer.expect(403).contains("webhooks:write");
    }
    api.expect_unchanged(&before, "actions outside the key's scopes")
        .await;
    let endpoint = api.get(&format!("/v1/webhooks/{we}")).await;
    assert_eq!(endpoint.expect_status(200)["status"], "enabled");
    server.stop().await;
}
