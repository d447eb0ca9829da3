//! The dashboard in a real browser (headless Chromium, the checkout's harness): sign in, find
//! a payment by filter, capture and refund it from its page, read its timeline, event JSON and
//! ledger rows, register a webhook endpoint to a local receiver and see a failed then a
//! successful attempt with the receiver's body, download a settlement's CSV that adds up, and
//! sign out. Screenshots of each page go to `target/artifacts/dashboard/`.
//!
//! Skips (saying why) without chromium and chromedriver, unless `VINR_REQUIRE_BROWSER=1`.

mod common;

use std::sync::Arc;

use common::browser::Browser;
use common::*;
use fantoccini::Locator;
use serde_json::{json, Value};

async fn has(browser: &Browser, css: &str) -> bool {
    browser.client.find(Locator::Css(css)).await.is_ok()
}

/// Waits until the page at a URL ending in `suffix` shows `needle` (a click answers before
/// the POST it sent has been answered).
async fn wait_for_page(browser: &Browser, suffix: &str, needle: &str) {
    browser
        .wait_for_url(suffix, |url| url.ends_with(suffix))
        .await;
    let started = std::time::Instant::now();
    loop {
        let text = body_text(browser).await;
        if text.contains(needle) {
            return;
        }
        assert!(
            started.elapsed() < common::browser::WAIT,
            "no {needle:?} in {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn body_text(browser: &Browser) -> String {
    browser.text("body").await
}

async fn click_css(browser: &Browser, css: &str) {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|error| panic!("{css}: {error}"))
        .click()
        .await
        .expect("clicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engineer_works_through_the_dashboard() {
    let Some(browser) = Browser::start_for("dashboard").await else {
        return;
    };
    let server = TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    // Some history: a completed and a failed payment, and the one a customer asks about.
    let green = api
        .create_payment(payment_body(
            4_500,
            json!({"description": "Green cups", "metadata": {"order": "A-17"}}),
        ))
        .await;
    api.pay(&id_of(&green), CARD_APPROVED)
        .await
        .expect_status(200);
    let failed = api
        .create_payment(payment_body(
            990,
            json!({"description": "Spoons", "currency": "JPY"}),
        ))
        .await;
    api.pay(&id_of(&failed), CARD_DECLINED)
        .await
        .expect_status(200);
    let teapot = api
        .create_payment(payment_body(
            123_456,
            json!({"description": "Blue teapot", "capture": false}),
        ))
        .await;
    let teapot_id = id_of(&teapot);
    api.pay(&teapot_id, CARD_APPROVED).await.expect_status(200);

    // Sign in.
    browser.goto(&format!("{}/dashboard", server.base)).await;
    browser
        .wait_for_url("the sign-in page", |url| {
            url.ends_with("/dashboard/sign-in")
        })
        .await;
    browser.screenshot("01-sign-in").await;
    browser.fill("key", &api.key).await;
    browser.click("sign-in").await;
    browser
        .wait_for_url("the overview", |url| url.ends_with("/dashboard"))
        .await;
    assert!(browser.text("#mode-banner").await.contains("Test mode"));
    assert!(has(&browser, "#chart-EUR svg rect.bar").await);
    assert!(browser.text("#balance").await.contains('€'));
    browser.screenshot("02-overview").await;

    // Find the teapot by its status.
    browser.click("nav-payments").await;
    click_css(&browser, "#status option[value='authorized']").await;
    browser.click("apply-filters").await;
    browser
        .wait_for_url("the filtered list", |url| url.contains("status=authorized"))
        .await;
    let list = browser.text("#payments").await;
    assert!(
        list.contains("Blue teapot") && list.contains("€1,234.56"),
        "{list}"
    );
    assert!(
        !list.contains("Green cups") && !list.contains("Spoons"),
        "{list}"
    );
    browser.screenshot("03-payments-filtered").await;
    click_css(&browser, "#payments a.payment-link").await;
    browser
        .wait_for_url("the payment page", |url| url.ends_with(&teapot_id))
        .await;

    // Capture part of it, then refund part of that.
    browser.fill("capture-amount", "1000").await;
    browser.click("capture").await;
    wait_for_page(&browser, &teapot_id, "payment.completed").await;
    assert_eq!(browser.text("#payment-status").await, "completed");
    assert_eq!(browser.text("#amount-captured").await, "€1,000.00");
    browser.fill("refund-amount", "250.50").await;
    browser.click("refund").await;
    wait_for_page(&browser, &teapot_id, "refund.created").await;
    server.finish_refunds(&api).await;
    browser
        .goto(&format!("{}/dashboard/payments/{teapot_id}", server.base))
        .await;
    assert_eq!(browser.text("#amount-refunded").await, "€250.50");
    let timeline = browser.text("#timeline").await;
    for kind in [
        "payment.created",
        "payment.authorized",
        "payment.completed",
        "refund.created",
        "refund.succeeded",
    ] {
        assert!(timeline.contains(kind), "{kind} in {timeline}");
    }
    let ledger = browser.text("#ledger").await;
    assert!(
        ledger.contains("payment") && ledger.contains("refund"),
        "{ledger}"
    );
    assert!(
        ledger.contains("€1,000.00") && ledger.contains("-€250.50"),
        "{ledger}"
    );
    browser.screenshot("04-payment").await;

    // An event's JSON.
    click_css(&browser, "#timeline a.event-type").await;
    browser
        .wait_for_url("an event page", |url| {
            url.contains("/dashboard/events/evt_")
        })
        .await;
    let json_text = browser.text("#event-json").await;
    let event: Value = serde_json::from_str(&json_text).expect("pretty JSON that parses");
    assert_eq!(event["type"], "payment.created");
    assert!(json_text.contains("\n  \"data\""), "pretty-printed");
    browser.screenshot("05-event").await;

    // A webhook endpoint on a receiver that fails each event's first delivery.
    let receiver = receiver::Receiver::with_plan(Arc::new(|_, nth, _| {
        if nth == 1 {
            receiver::Answer::status(500)
        } else {
            receiver::Answer::ok()
        }
    }))
    .await;
    browser.click("nav-webhooks").await;
    browser.fill("url", &receiver.url()).await;
    browser.fill("description", "Order service").await;
    browser.click("create-endpoint").await;
    // The form posts to the page it is on, so the URL cannot tell the answer has come: wait
    // for the secret the answer shows.
    let secret = browser
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(15))
        .for_element(Locator::Css("#secret"))
        .await
        .expect("the new endpoint's secret is shown")
        .text()
        .await
        .expect("text");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(browser.url().await.ends_with("/dashboard/webhooks"));
    browser.screenshot("06-webhooks").await;
    click_css(&browser, "#endpoints a.endpoint-link").await;
    browser
        .wait_for_url("the endpoint page", |url| {
            url.contains("/dashboard/webhooks/we_")
        })
        .await;
    browser.click("send-test").await;
    wait_for_page(&browser, "/test", "test event was queued").await;
    server.deliver_due_webhooks().await;
    let endpoint_url = browser.url().await;
    let endpoint_url = endpoint_url.trim_end_matches("/test").to_owned();
    browser.goto(&endpoint_url).await;
    click_css(&browser, "#attempts li summary").await;
    let attempts = browser.text("#attempts").await;
    assert!(
        attempts.contains("failed") && attempts.contains("HTTP 500"),
        "{attempts}"
    );
    assert!(
        attempts.contains("answer 500 for evt_"),
        "the receiver's body: {attempts}"
    );
    // The headers as sent: the signature itself, not a description of it.
    assert!(
        attempts.contains("webhook-id") && attempts.contains("webhook-signature"),
        "{attempts}"
    );
    assert!(attempts.contains("v1,"), "the signature sent: {attempts}");
    assert!(
        attempts.contains("vinr-webhooks/1"),
        "the user agent: {attempts}"
    );
    // A payment's event fails the same way; resend it from its attempt: this time the
    // receiver takes it.
    api.create_payment(payment_body(700, json!({"description": "Saucer"})))
        .await;
    server.deliver_due_webhooks().await;
    browser.goto(&endpoint_url).await;
    click_css(&browser, "#attempts li:nth-child(1) summary").await;
    let attempts = browser.text("#attempts li:nth-child(1)").await;
    assert!(
        attempts.contains("payment.created") && attempts.contains("HTTP 500"),
        "{attempts}"
    );
    assert!(attempts.contains("Saucer"), "the request body: {attempts}");
    click_css(&browser, "#attempts li:nth-child(1) form button").await;
    wait_for_page(
        &browser,
        "/resend",
        "queued for delivery to this endpoint again",
    )
    .await;
    server.deliver_due_webhooks().await;
    browser.goto(&endpoint_url).await;
    for summary in [
        "#attempts li:nth-child(1) summary",
        "#attempts li:nth-child(2) summary",
        "#attempts li:nth-child(3) summary",
    ] {
        click_css(&browser, summary).await;
    }
    let attempts = browser.text("#attempts").await;
    assert!(
        attempts.contains("succeeded") && attempts.contains("HTTP 200"),
        "{attempts}"
    );
    assert!(attempts.contains("answer 200 for evt_"), "{attempts}");
    assert_eq!(receiver.received().len(), 3);
    browser
        .client
        .execute("window.scrollTo(0, 0)", vec![])
        .await
        .expect("scrolled to the top");
    browser.screenshot("07-webhook-attempts").await;

    // A settlement and its CSV.
    api.post_json("/v1/test_helpers/settlements/run", json!({}))
        .await
        .expect_status(200);
    let settlements = api.list_all("/v1/settlements").await;
    let eur = settlements
        .iter()
        .find(|s| s["currency"] == "EUR")
        .expect("a EUR settlement");
    browser.click("nav-settlements").await;
    click_css(&browser, "#settlements a.settlement-link").await;
    browser
        .wait_for_url("a settlement", |url| {
            url.contains("/dashboard/settlements/setl_")
        })
        .await;
    browser.screenshot("08-settlement").await;
    let href = browser
        .client
        .find(Locator::Id("csv"))
        .await
        .expect("the CSV link")
        .attr("href")
        .await
        .expect("an href")
        .expect("an href");
    // The download, with this browser's session cookie (HttpOnly: only WebDriver reads it).
    let session = browser
        .client
        .get_named_cookie("vinr_session")
        .await
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    let csv = reqwest::Client::new()
        .get(format!("{}{href}", server.base))
        .header("cookie", format!("vinr_session={}", session.value()))
        .send()
        .await
        .expect("the CSV");
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.expect("a body");
    let settlement_id = href.split('/').nth(3).expect("an id");
    let settlement = settlements
        .iter()
        .find(|s| s["id"] == settlement_id)
        .unwrap_or(eur);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    let net_at = header.iter().position(|h| *h == "net").expect("net");
    let nets: Vec<i64> = lines
        .map(|line| {
            line.split(',')
                .nth(net_at)
                .expect("a net")
                .parse()
                .expect("an integer")
        })
        .collect();
    assert_eq!(
        nets.len() as i64,
        settlement["transactionCount"].as_i64().expect("a count")
    );
    assert_eq!(
        nets.iter().sum::<i64>(),
        settlement["net"].as_i64().expect("a net")
    );

    // A dispute, found in the disputes list and followed to its payment.
    let disputed = api.completed_payment().await;
    let dispute = api
        .post_json(
            &format!("/v1/test_helpers/payments/{}/dispute", id_of(&disputed)),
            json!({"reason": "product_not_received"}),
        )
        .await;
    let dispute = id_of(dispute.expect_status(201));
    browser
        .goto(&format!("{}/dashboard/disputes", server.base))
        .await;
    assert!(browser.text("#disputes").await.contains(&dispute));
    browser.screenshot("12-disputes").await;
    let link = browser
        .client
        .find(Locator::Css("#disputes a.dispute-link"))
        .await
        .expect("the dispute's link")
        .attr("href")
        .await
        .expect("an href")
        .expect("an href");
    assert_eq!(
        link,
        format!("/dashboard/payments/{}#{dispute}", id_of(&disputed))
    );
    browser.goto(&format!("{}{link}", server.base)).await;
    assert!(browser.text("#disputes").await.contains("needs_response"));

    browser.click("nav-clock").await;
    assert!(!browser.text("#clock-now").await.is_empty());
    browser.screenshot("09-test-clock").await;

    // The same list on a phone.
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("a small window");
    browser
        .goto(&format!("{}/dashboard/payments", server.base))
        .await;
    browser.screenshot("10-payments-mobile").await;
    browser
        .client
        .set_window_size(1000, 1200)
        .await
        .expect("the window back");

    // Sign out: the session is over.
    browser.click("sign-out").await;
    browser
        .wait_for_url("the sign-in page", |url| {
            url.ends_with("/dashboard/sign-in")
        })
        .await;
    browser
        .goto(&format!("{}/dashboard/payments", server.base))
        .await;
    browser
        .wait_for_url("the sign-in page", |url| {
            url.ends_with("/dashboard/sign-in")
        })
        .await;
    assert!(body_text(&browser)
        .await
        .contains("Sign in to the dashboard"));
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_shows_readable_money_and_a_way_back_to_the_shop() {
    let Some(browser) = Browser::start_for("dashboard").await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(150_000, json!({"currency": "JPY"})))
        .await;
    browser
        .goto(payment["checkoutUrl"].as_str().expect("a checkout URL"))
        .await;
    assert_eq!(browser.text(".amount").await, "¥150,000");
    let back = browser
        .client
        .find(Locator::Id("back-to-shop"))
        .await
        .expect("a way back")
        .attr("href")
        .await
        .expect("an href")
        .expect("an href");
    assert!(
        back.starts_with(RETURN_URL) && back.contains("paymentId=pay_"),
        "{back}"
    );
    browser.screenshot("11-checkout-yen").await;
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "pending");
    browser.close().await;
    server.stop().await;
}
