//! The hosted checkout in a real browser: headless Chromium driven through chromedriver
//! (WebDriver, via `fantoccini`). Pays with each kind of test card, goes through 3-D Secure
//! both ways, shows inline errors and an expired link, and saves screenshots of the key pages
//! to `target/artifacts/checkout/` (or `$VINR_ARTIFACTS_DIR`).
//!
//! Without `chromium` and `chromedriver` on the machine each test says why on standard error
//! and passes; with `VINR_REQUIRE_BROWSER=1` (set by `.ci/run`) their absence fails it.

mod common;
#[path = "support/localstripe.rs"]
mod localstripe;

use common::browser::{Browser, WAIT};
use common::*;
use fantoccini::Locator;
use serde_json::{json, Value};

/// A merchant's site: `/return` answers a small page, as a shop's order page would.
async fn merchant() -> String {
    let app = axum::Router::new().route(
        "/return",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><title>Shop</title><h1>Thank you</h1>")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port for the merchant");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/return?order=7")
}

async fn new_payment(api: &Api, return_url: &str, extra: Value) -> Value {
    let mut body = payment_body(
        1999,
        json!({"returnUrl": return_url,
        "description": "Two pots of tea"}),
    );
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    api.create_payment(body).await
}

fn checkout_url(payment: &Value) -> &str {
    payment["checkoutUrl"].as_str().expect("a checkoutUrl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_with_4242_lands_on_the_return_url() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;
    let payment = new_payment(&api, &return_url, json!({})).await;
    let id = id_of(&payment);
    browser.goto(checkout_url(&payment)).await;
    assert_eq!(browser.text(".amount").await, "€19.99");
    assert_eq!(browser.text(".merchant").await, "Sandbox");
    assert!(browser.text(".test-banner").await.contains("Test mode"));
    assert!(browser
        .text(".test-cards")
        .await
        .contains("4242 4242 4242 4242"));
    // The stylesheet loaded under the CSP: the pay button is styled, not a grey default.
    let background = browser
        .client
        .find(Locator::Id("pay"))
        .await
        .expect("the pay button")
        .css_value("background-color")
        .await
        .expect("a colour");
    assert_eq!(background, "rgba(47, 74, 224, 1)");
    browser.screenshot("01-pay-form").await;
    browser.pay_with("4242 4242 4242 4242").await;
    let landed = browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    assert_eq!(landed, format!("{return_url}&paymentId={id}"));
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed");
    assert_eq!(paid["paymentMethod"]["last4"], "4242");
    // Back on the link: the outcome, and the way back.
    browser.goto(checkout_url(&payment)).await;
    assert_eq!(browser.text("#status h1").await, "Payment received");
    browser.screenshot("02-payment-received").await;

    // A phone-sized window still fits the form.
    let small = new_payment(&api, &return_url, json!({})).await;
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("resized");
    browser.goto(checkout_url(&small)).await;
    browser.screenshot("03-pay-form-mobile").await;
    let width: Value = browser
        .client
        .execute("return document.documentElement.scrollWidth", vec![])
        .await
        .expect("a width");
    assert!(
        width.as_u64().is_some_and(|w| w <= 390),
        "no sideways scrolling: {width}"
    );
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_capture_ends_authorized() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;
    let payment = new_payment(&api, &return_url, json!({"capture": false})).await;
    browser.goto(checkout_url(&payment)).await;
    browser.pay_with(CARD_MASTERCARD).await;
    browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    let paid = api.payment(&id_of(&payment)).await;
    assert_eq!(paid["status"], "authorized");
    assert_eq!(paid["paymentMethod"]["brand"], "mastercard");
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_approved_and_failed() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;

    let approved = new_payment(&api, &return_url, json!({})).await;
    browser.goto(checkout_url(&approved)).await;
    browser.pay_with(CARD_3DS).await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("approve"))
        .await
        .expect("the challenge page");
    assert_eq!(
        api.payment(&id_of(&approved)).await["status"],
        "requires_authentication"
    );
    browser.screenshot("04-3ds-challenge").await;
    browser.click("approve").await;
    browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    assert_eq!(api.payment(&id_of(&approved)).await["status"], "completed");

    let failed = new_payment(&api, &return_url, json!({})).await;
    browser.goto(checkout_url(&failed)).await;
    browser.pay_with(CARD_3DS).await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("fail"))
        .await
        .expect("the challenge page");
    browser.click("fail").await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("status"))
        .await
        .expect("the outcome page");
    assert!(browser
        .text("#status-message")
        .await
        .contains("3-D Secure authentication failed."));
    let paid = api.payment(&id_of(&failed)).await;
    assert_eq!(paid["status"], "failed");
    assert_eq!(paid["failureCode"], "authentication_failed");
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decline_card_shows_its_message() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;
    for (card, code, message) in [
        (CARD_DECLINED, "card_declined", "The card was declined."),
        (
            CARD_INSUFFICIENT_FUNDS,
            "insufficient_funds",
            "The card has insufficient funds.",
        ),
        (CARD_EXPIRED, "expired_card", "The card has expired."),
        (
            CARD_PROCESSING_ERROR,
            "processing_error",
            "An error occurred while processing the card.",
        ),
    ] {
        let payment = new_payment(&api, &return_url, json!({})).await;
        browser.goto(checkout_url(&payment)).await;
        browser.pay_with(card).await;
        browser
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Id("status-message"))
            .await
            .expect("the outcome page");
        assert_eq!(browser.text("#status h1").await, "Payment failed");
        assert!(
            browser.text("#status-message").await.contains(message),
            "{card}"
        );
        let link = browser
            .client
            .find(Locator::Id("return"))
            .await
            .expect("a way back")
            .attr("href")
            .await
            .expect("an href");
        assert_eq!(
            link,
            Some(format!("{return_url}&paymentId={}", id_of(&payment)))
        );
        if code == "card_declined" {
            browser.screenshot("05-declined").await;
        }
        let failed = api.payment(&id_of(&payment)).await;
        assert_eq!(failed["status"], "failed", "{card}");
        assert_eq!(failed["failureCode"], code, "{card}");
    }
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_shows_inline_errors() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;
    let payment = new_payment(&api, &return_url, json!({})).await;
    browser.goto(checkout_url(&payment)).await;
    browser.fill("card-number", "4242 4242 4242 4241").await;
    browser.fill("card-expiry", "01/20").await;
    browser.fill("card-cvc", "12").await;
    browser.fill("card-name", "Ada Lovelace").await;
    browser.click("pay").await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("error-summary"))
        .await
        .expect("the errors");
    assert!(browser
        .text("#card-number-error")
        .await
        .contains("This card number is not valid."));
    assert!(browser.text("#card-expiry-error").await.contains("expired"));
    assert!(browser
        .text("#card-cvc-error")
        .await
        .contains("3 or 4 digits"));
    // What was typed is still there, except the card number.
    assert_eq!(browser.value("card-number").await, "");
    assert_eq!(browser.value("card-expiry").await, "01/20");
    assert_eq!(browser.value("card-cvc").await, "12");
    assert_eq!(browser.value("card-name").await, "Ada Lovelace");
    browser.screenshot("06-inline-errors").await;
    // Fixing the fields pays.
    browser.fill("card-expiry", "12/30").await;
    browser.fill("card-cvc", "123").await;
    browser.fill("card-number", CARD_APPROVED).await;
    browser.click("pay").await;
    browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "completed");
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_payment_shows_a_clear_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let server = TestServer::start().await;
    let api = server.api();
    let return_url = merchant().await;
    let payment = new_payment(&api, &return_url, json!({})).await;
    server.clock.advance_ms(60 * 60 * 1000 + 1000);
    vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry step");
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "expired");
    browser.goto(checkout_url(&payment)).await;
    assert_eq!(
        browser.text("#status h1").await,
        "This payment link has expired"
    );
    assert!(browser
        .client
        .find_all(Locator::Id("card-number"))
        .await
        .expect("a search")
        .is_empty());
    browser.screenshot("07-expired").await;
    browser.click("return").await;
    browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    browser.close().await;
    server.stop().await;
}

/// Through the `stripe` connector (SPEC §15) against localstripe: test mode routed to it, so
/// the merchant's `http://` return page works; the card reaches the emulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_through_the_stripe_connector() {
    let Some(stripe) = localstripe::LocalStripe::start().await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let settings = localstripe::connectors(
        &[(
            "stripe_eu",
            localstripe::stripe_processor(&stripe.base, 5_000),
        )],
        vinr_server::connectors::config::RoutingConfig {
            test: vec!["stripe_eu".into()],
            ..Default::default()
        },
    );
    let server = TestServer::start_with(Options {
        connectors: Some(settings),
        ..Options::default()
    })
    .await;
    let api = server.api();
    let return_url = merchant().await;

    let payment = new_payment(&api, &return_url, json!({})).await;
    let id = id_of(&payment);
    browser.goto(checkout_url(&payment)).await;
    browser.pay_with("4242 4242 4242 4242").await;
    let landed = browser
        .wait_for_url("the return URL", |url| url.contains("paymentId="))
        .await;
    assert_eq!(landed, format!("{return_url}&paymentId={id}"));
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["processor"], "stripe_eu");
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 1999);
    assert_eq!(paid["processorReference"], intent["id"]);

    let declined = new_payment(&api, &return_url, json!({})).await;
    browser.goto(checkout_url(&declined)).await;
    browser.pay_with("4000 0000 0000 0341").await;
    browser
        .client
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Id("status"))
        .await
        .expect("the outcome page");
    browser.screenshot("20-stripe-connector-declined").await;
    let failed = api.payment(&id_of(&declined)).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["failureCode"], "card_declined");
    browser.close().await;
    server.stop().await;
}

/// Live mode through the hosted checkout (SPEC §15): a live key, `live = ["stripe_eu"]`, no
/// test banner or test cards; 4242… is charged at localstripe. A live `returnUrl` must be
/// https, and no shop listens on this one: the test follows the browser off the checkout
/// and checks the payment and the acquirer's intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_in_live_mode_through_the_stripe_connector() {
    let Some(stripe) = localstripe::LocalStripe::start().await else {
        return;
    };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let settings = localstripe::connectors(
        &[(
            "stripe_eu",
            localstripe::stripe_processor(&stripe.base, 5_000),
        )],
        vinr_server::connectors::config::RoutingConfig {
            live: vec!["stripe_eu".into()],
            ..Default::default()
        },
    );
    let server = TestServer::start_with(Options {
        connectors: Some(settings),
        ..Options::default()
    })
    .await;
    let (_, api) = server
        .new_key(&server.sandbox_account(), vinr_domain::Mode::Live, &[])
        .await;
    let return_url = "https://127.0.0.1:9/return?order=8";
    let payment = new_payment(&api, return_url, json!({})).await;
    assert_eq!(payment["livemode"], true, "{payment}");
    let id = id_of(&payment);
    browser.goto(checkout_url(&payment)).await;
    assert_eq!(browser.text(".amount").await, "€19.99");
    let page = browser.client.source().await.expect("the page source");
    assert!(!page.contains("Test mode"), "a test banner in live mode");
    assert!(
        !page.contains("4242 4242 4242 4242"),
        "test cards in live mode"
    );
    browser.screenshot("21-live-pay-form").await;
    browser.pay_with("4242 4242 4242 4242").await;
    let landed = browser
        .wait_for_url("off the checkout", |url| !url.contains("/checkout/"))
        .await;
    assert!(!landed.contains("/checkout/"), "{landed}");
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["livemode"], true);
    assert_eq!(paid["processor"], "stripe_eu");
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 1999);
    assert_eq!(intent["currency"], "eur");
    assert_eq!(paid["processorReference"], intent["id"]);
    browser.close().await;
    server.stop().await;
}
