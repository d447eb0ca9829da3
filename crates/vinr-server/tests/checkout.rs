//! Hosted checkout over HTTP (SPEC §4), as a browser without JavaScript would use it: the
//! page and its headers, the token as the only credential, CSRF, the card form's validation,
//! every test card's outcome, 3-D Secure, double submits, expiry and live mode without a
//! processor. The same flows in a real browser are in `browser.rs`.

mod common;

use common::*;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use vinr_domain::Mode;

/// A browser without JavaScript: keeps the CSRF cookie, follows no redirects.
struct Shopper {
    http: reqwest::Client,
    cookie: Option<String>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The hidden CSRF field of the page's form.
    fn csrf(&self) -> String {
        let start = self
            .text
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.text))
            + "name=\"csrf\" value=\"".len();
        let end = self.text[start..].find('"').expect("a closing quote") + start;
        self.text[start..end].to_owned()
    }

    #[track_caller]
    fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "HTTP {} with {}",
            self.status, self.text
        );
        self
    }

    #[track_caller]
    fn contains(&self, needle: &str) -> &Self {
        assert!(
            self.text.contains(needle),
            "`{needle}` not in {}",
            self.text
        );
        self
    }
}

impl Shopper {
    fn new() -> Shopper {
        Shopper {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(set) = headers.get("set-cookie").and_then(|v| v.to_str().ok()) {
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        let text = response.text().await.expect("a body");
        Page {
            status,
            headers,
            text,
        }
    }

    async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request).await
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }
}

fn checkout_url(payment: &Value) -> String {
    payment["checkoutUrl"]
        .as_str()
        .expect("a checkoutUrl")
        .to_owned()
}

fn card_form<'a>(csrf: &'a str, number: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("number", number),
        ("expiry", "12/30"),
        ("cvc", "123"),
        ("name", "Ada Lovelace"),
    ]
}

/// Opens the checkout page and pays with `card`; answers the POST's answer.
async fn pay(shopper: &mut Shopper, payment: &Value, card: &str) -> Page {
    let url = checkout_url(payment);
    let page = shopper.get(&url).await;
    page.expect(200);
    let csrf = page.csrf();
    shopper
        .post(&format!("{url}/pay"), &card_form(&csrf, card))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_payment_with_strict_headers() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(
            1000,
            json!({"description": "Tea <script>alert(1)</script> & cake",
                   "returnUrl": "https://shop.example:8443/return?order=7"}),
        ))
        .await;
    let mut shopper = Shopper::new();
    let page = shopper.get(&checkout_url(&payment)).await;
    page.expect(200)
        .contains("Sandbox")
        .contains("€10.00")
        // Back to the shop, leaving the payment pending.
        .contains("id=\"back-to-shop\"")
        .contains("https://shop.example:8443/return?order=7&#38;paymentId=pay_")
        .contains("Tea &#60;script&#62;alert(1)&#60;/script&#62; &#38; cake")
        .contains("Test mode")
        .contains("4000 0000 0000 3220")
        .contains("<label for=\"card-number\">Card number</label>")
        .contains("<label for=\"card-expiry\">")
        .contains("<label for=\"card-cvc\">")
        .contains("<label for=\"card-name\">Name on card</label>");
    assert!(!page.text.contains("<script"), "no script, escaped or not");
    assert!(!page.text.contains("style="), "no inline style");
    assert!(page.header("content-type").starts_with("text/html"));
    let csp = page.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "form-action 'self' https://shop.example:8443;",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(page.header("x-request-id").starts_with("req_"));
    let cookie = page.header("set-cookie");
    for attribute in [
        "vinr_csrf=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/checkout",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    // The same browser keeps its cookie.
    let again = shopper.get(&checkout_url(&payment)).await;
    assert_eq!(again.header("set-cookie"), "");
    assert_eq!(again.csrf(), page.csrf());

    let css = shopper
        .get(&format!("{}/checkout/assets/checkout.css", server.base))
        .await;
    css.expect(200);
    assert!(css.header("content-type").starts_with("text/css"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amounts_follow_the_currency_digits() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut shopper = Shopper::new();
    for (currency, amount, shown) in [
        ("JPY", 1234, "¥1,234"),
        ("KWD", 1234, "1.234 KWD"),
        ("EUR", 5, "€0.05"),
        ("EUR", 123_456, "€1,234.56"),
        ("USD", 99_999_999, "$999,999.99"),
    ] {
        let payment = api
            .create_payment(payment_body(amount, json!({"currency": currency})))
            .await;
        shopper
            .get(&checkout_url(&payment))
            .await
            .expect(200)
            .contains(&format!("Pay {shown}"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_redirects_to_the_return_url_keeping_its_query() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(
            1000,
            json!({"returnUrl": "https://shop.example/return?order=7&note=a%20b"}),
        ))
        .await;
    let id = id_of(&payment);
    let mut shopper = Shopper::new();
    let answer = pay(&mut shopper, &payment, "4242 4242 4242 4242").await;
    answer.expect(303);
    assert_eq!(
        answer.header("location"),
        format!("https://shop.example/return?order=7&note=a%20b&paymentId={id}")
    );
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed");
    assert_eq!(paid["amountCaptured"], 1000);
    let method = &paid["paymentMethod"];
    assert_eq!(method["brand"], "visa");
    assert_eq!(method["last4"], "4242");
    assert_eq!(method["expMonth"], 12);
    assert_eq!(method["expYear"], 2030);
    assert!(method["fingerprint"]
        .as_str()
        .is_some_and(|f| f.len() >= 16));
    assert!(!paid.to_string().contains("4242424242424242"));

    // Coming back to the link shows the outcome and the way back.
    shopper
        .get(&checkout_url(&payment))
        .await
        .expect(200)
        .contains("Payment received")
        .contains(&format!("paymentId={id}"));

    // The same card in the API test helper gets the same fingerprint.
    let other = api.new_payment().await;
    let other = api
        .pay(&id_of(&other), CARD_APPROVED)
        .await
        .expect_status(200)
        .clone();
    assert_eq!(other["paymentMethod"]["fingerprint"], method["fingerprint"]);

    // The full number is nowhere in the database file.
    if let Some(path) = server.database_url().strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                let found = bytes.windows(16).any(|w| w == b"4242424242424242");
                assert!(!found, "the card number is stored in {file}");
            }
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_capture_ends_authorized() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api
        .create_payment(payment_body(1000, json!({"capture": false})))
        .await;
    let answer = pay(&mut Shopper::new(), &payment, CARD_MASTERCARD).await;
    answer.expect(303);
    assert!(answer.header("location").starts_with(RETURN_URL));
    let paid = api.payment(&id_of(&payment)).await;
    assert_eq!(paid["status"], "authorized");
    assert_eq!(paid["paymentMethod"]["brand"], "mastercard");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decline_card_fails_the_payment_with_its_code() {
    let server = TestServer::start().await;
    let api = server.api();
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
        let payment = api.new_payment().await;
        let mut shopper = Shopper::new();
        let answer = pay(&mut shopper, &payment, card).await;
        answer.expect(303);
        let url = checkout_url(&payment);
        assert!(
            url.ends_with(answer.header("location")),
            "{card}: {answer:?}"
        );
        shopper
            .get(&url)
            .await
            .expect(200)
            .contains("Payment failed")
            .contains(message);
        let failed = api.payment(&id_of(&payment)).await;
        assert_eq!(failed["status"], "failed", "{card}");
        assert_eq!(failed["failureCode"], code, "{card}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_challenge_both_ways() {
    let server = TestServer::start().await;
    let api = server.api();
    for (outcome, status) in [("approve", "completed"), ("fail", "failed")] {
        let payment = api.new_payment().await;
        let id = id_of(&payment);
        let url = checkout_url(&payment);
        let mut shopper = Shopper::new();
        let answer = pay(&mut shopper, &payment, CARD_3DS).await;
        answer.expect(303);
        assert!(url.ends_with(answer.header("location")));
        assert_eq!(api.payment(&id).await["status"], "requires_authentication");
        let challenge = shopper.get(&url).await;
        challenge.expect(200).contains("Confirm it is you");
        let csrf = challenge.csrf();
        let answer = shopper
            .post(
                &format!("{url}/authenticate"),
                &[("csrf", &csrf), ("outcome", outcome)],
            )
            .await;
        answer.expect(303);
        let paid = api.payment(&id).await;
        assert_eq!(paid["status"], status);
        if outcome == "approve" {
            assert_eq!(
                answer.header("location"),
                format!("{RETURN_URL}?paymentId={id}")
            );
        } else {
            assert_eq!(paid["failureCode"], "authentication_failed");
            shopper
                .get(&url)
                .await
                .contains("3-D Secure authentication failed.");
        }
        // Answering again changes nothing.
        let events = api.events_of(&id).await.len();
        shopper
            .post(
                &format!("{url}/authenticate"),
                &[("csrf", &csrf), ("outcome", "approve")],
            )
            .await
            .expect(303);
        assert_eq!(api.payment(&id).await["status"], status);
        assert_eq!(api.events_of(&id).await.len(), events);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_shown_inline_and_keeps_what_was_typed() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let url = checkout_url(&payment);
    let mut shopper = Shopper::new();
    let csrf = shopper.get(&url).await.csrf();
    let answer = shopper
        .post(
            &format!("{url}/pay"),
            &[
                ("csrf", &csrf),
                ("number", "4242 4242 4242 4241"),
                ("expiry", "01/20"),
                ("cvc", "12x"),
                ("name", "Ada <b>Lovelace</b>"),
            ],
        )
        .await;
    answer
        .expect(422)
        .contains("This card number is not valid.")
        .contains("This card has expired")
        .contains("The security code is 3 or 4 digits.")
        .contains("value=\"01/20\"")
        .contains("value=\"12x\"")
        .contains("value=\"Ada &#60;b&#62;Lovelace&#60;/b&#62;\"")
        .contains("aria-invalid=\"true\" aria-describedby=\"card-number-error\"")
        .contains("href=\"#card-number\"");
    assert!(
        !answer.text.contains("4241"),
        "the card number is not echoed"
    );
    assert!(answer
        .header("content-security-policy")
        .contains("default-src 'none'"));

    let empty = shopper
        .post(&format!("{url}/pay"), &[("csrf", &csrf)])
        .await;
    empty
        .expect(422)
        .contains("Enter the card number.")
        .contains("Enter the expiry date.")
        .contains("Enter the security code (CVC).")
        .contains("Enter the name on the card.");

    // Hostile bodies: never a 500.
    let cookie = shopper.cookie.clone().expect("a CSRF cookie");
    let raw = |body: Vec<u8>| {
        reqwest::Client::new()
            .post(format!("{url}/pay"))
            .header("cookie", cookie.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    for body in [
        format!("csrf={csrf}&number=%ff%fe&expiry=%80%80&cvc=\u{0}&name=%07").into_bytes(),
        [
            format!("csrf={csrf}&number=").into_bytes(),
            vec![0xff, 0xfe, 0x00],
        ]
        .concat(),
        format!("csrf={csrf}&name={}", "x".repeat(7_000)).into_bytes(),
        format!("csrf={csrf}&number={}", "4".repeat(100_000)).into_bytes(),
        b"%%%&&&===".to_vec(),
        // A valid card whose name is not UTF-8, or holds NUL: refused, not charged.
        format!("csrf={csrf}&number=4242424242424242&expiry=12%2F40&cvc=123&name=Ada%ff%fe")
            .into_bytes(),
        format!("csrf={csrf}&number=4242424242424242&expiry=12%2F40&cvc=123&name=Ada%00L")
            .into_bytes(),
    ] {
        let status = raw(body).send().await.expect("an answer").status().as_u16();
        assert!((400..500).contains(&status), "status {status}");
    }
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "pending");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_404() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let url = checkout_url(&payment);
    let mut shopper = Shopper::new();
    let csrf = shopper.get(&url).await.csrf();
    let token = url.rsplit('/').next().expect("a token");
    // One character changed, too short, not alphanumeric, a payment id.
    let mut changed = token.to_owned();
    let last = changed.pop().expect("a character");
    changed.push(if last == 'a' { 'b' } else { 'a' });
    for wrong in [
        changed.as_str(),
        &token[..20],
        "..%2F..%2Fv1%2Fpayments",
        &id_of(&payment),
    ] {
        let base = format!("{}/checkout/{wrong}", server.base);
        shopper
            .get(&base)
            .await
            .expect(404)
            .contains("Payment link not found");
        shopper
            .post(&format!("{base}/pay"), &card_form(&csrf, CARD_APPROVED))
            .await
            .expect(404);
    }
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "pending");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_its_own_payment_only() {
    let server = TestServer::start().await;
    let api = server.api();
    let a = api.new_payment().await;
    let b = api.new_payment().await;
    let (url_a, url_b) = (checkout_url(&a), checkout_url(&b));
    let mut shopper = Shopper::new();
    let csrf_a = shopper.get(&url_a).await.csrf();
    let before = api.state().await;
    // A's form token does not work on B's page, though the cookie is the same.
    shopper
        .post(&format!("{url_b}/pay"), &card_form(&csrf_a, CARD_APPROVED))
        .await
        .expect(403);
    shopper
        .post(
            &format!("{url_b}/authenticate"),
            &[("csrf", &csrf_a), ("outcome", "approve")],
        )
        .await
        .expect(403);
    api.expect_unchanged(&before, "A's form posted to B").await;
    // Paying B through its own page leaves A alone.
    pay(&mut shopper, &b, CARD_APPROVED).await.expect(303);
    assert_eq!(api.payment(&id_of(&a)).await["status"], "pending");
    assert_eq!(api.payment(&id_of(&b)).await["status"], "completed");
    // Another account's payment: its page names that merchant, not ours.
    let (_, other) = server.new_account("Other Shop").await;
    let theirs = other.new_payment().await;
    let page = shopper.get(&checkout_url(&theirs)).await;
    page.expect(200).contains("Other Shop");
    assert!(!page.text.contains("Sandbox"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_without_a_valid_csrf_token_are_refused() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let url = checkout_url(&payment);
    let mut shopper = Shopper::new();
    let csrf = shopper.get(&url).await.csrf();
    let before = api.state().await;
    let card = |csrf: &'static str| card_form(csrf, CARD_APPROVED);
    // No field, a wrong field, a field from another browser (another cookie).
    shopper
        .post(&format!("{url}/pay"), &card_form("", CARD_APPROVED)[1..])
        .await
        .expect(403)
        .contains("This form has expired");
    shopper
        .post(
            &format!("{url}/pay"),
            &card("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        )
        .await
        .expect(403);
    let mut stranger = Shopper::new();
    stranger.get(&url).await.expect(200);
    stranger
        .post(&format!("{url}/pay"), &card_form(&csrf, CARD_APPROVED))
        .await
        .expect(403);
    // The right field but no cookie (a cross-site POST does not carry a SameSite cookie).
    let mut cookieless = Shopper::new();
    let refused = cookieless
        .post(&format!("{url}/pay"), &card_form(&csrf, CARD_APPROVED))
        .await;
    refused.expect(403);
    assert!(refused
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    api.expect_unchanged(&before, "CSRF-refused posts").await;
    // The genuine form still works.
    shopper
        .post(&format!("{url}/pay"), &card_form(&csrf, CARD_APPROVED))
        .await
        .expect(303);
    assert_eq!(api.payment(&id_of(&payment)).await["status"], "completed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn double_submits_charge_once() {
    let server = TestServer::start().await;
    let api = server.api();
    for card in [CARD_APPROVED, CARD_DECLINED] {
        let payment = api.new_payment().await;
        let id = id_of(&payment);
        let url = checkout_url(&payment);
        let mut shopper = Shopper::new();
        let csrf = shopper.get(&url).await.csrf();
        let cookie = shopper.cookie.clone().expect("a cookie");
        // Two tabs (or a double click): the same form sent eight times at once.
        let submits = (0..8).map(|_| {
            let form = card_form(&csrf, card)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>();
            let request = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client")
                .post(format!("{url}/pay"))
                .header("cookie", cookie.clone())
                .form(&form);
            tokio::spawn(async move { request.send().await })
        });
        let mut locations = Vec::new();
        for submit in submits.collect::<Vec<_>>() {
            let answer = submit.await.expect("joined").expect("an answer");
            assert_eq!(answer.status().as_u16(), 303);
            locations.push(
                answer.headers()["location"]
                    .to_str()
                    .expect("ascii")
                    .to_owned(),
            );
        }
        // Every submit lands where the one that counted did.
        locations.dedup();
        assert_eq!(locations.len(), 1, "{locations:?}");
        let events: Vec<String> = api
            .events_of(&id)
            .await
            .iter()
            .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        let expected = if card == CARD_APPROVED {
            "payment.completed"
        } else {
            "payment.failed"
        };
        assert_eq!(
            events,
            vec![expected.to_owned(), "payment.created".to_owned()]
        );
        // A submit after the end changes nothing either.
        shopper
            .post(&format!("{url}/pay"), &card_form(&csrf, CARD_MASTERCARD))
            .await
            .expect(303);
        assert_eq!(api.events_of(&id).await.len(), 2);
        assert_eq!(
            api.payment(&id).await["paymentMethod"]["last4"],
            &card[12..]
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_runs_on_the_accounts_test_clock() {
    let server = TestServer::start().await;
    let api = server.api();
    let moved = api
        .post_json(
            "/v1/test_helpers/clock/advance",
            json!({"seconds": 30 * 86_400}),
        )
        .await;
    let now = moved.expect_status(200)["now"].clone();
    let payment = api.new_payment().await;
    assert_eq!(payment["created_at"], now);
    let mut shopper = Shopper::new();
    pay(&mut shopper, &payment, CARD_APPROVED).await.expect(303);
    let paid = api.payment(&id_of(&payment)).await;
    assert_eq!(paid["status"], "completed");
    // Paid on the account's clock, not 30 days before the payment was made.
    assert_eq!(paid["capturedAt"], now);
    // A month later on that clock the page is closed, although real time has not moved.
    let later = api.new_payment().await;
    let url = checkout_url(&later);
    let csrf = shopper.get(&url).await.expect(200).csrf();
    api.post_json("/v1/test_helpers/clock/advance", json!({"seconds": 3601}))
        .await
        .expect_status(200);
    shopper
        .get(&url)
        .await
        .expect(200)
        .contains("This payment link has expired");
    shopper
        .post(&format!("{url}/pay"), &card_form(&csrf, CARD_APPROVED))
        .await
        .expect(303);
    assert_eq!(api.payment(&id_of(&later)).await["status"], "expired");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_payment_says_so_and_cannot_be_paid() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.new_payment().await;
    let id = id_of(&payment);
    let url = checkout_url(&payment);
    let mut shopper = Shopper::new();
    let csrf = shopper.get(&url).await.csrf();
    server.clock.advance_ms(60 * 60 * 1000 + 1000);
    // Past expiresAt the page is closed even before the worker has run...
    shopper
        .get(&url)
        .await
        .expect(200)
        .contains("This payment link has expired");
    shopper
        .post(&format!("{url}/pay"), &card_form(&csrf, CARD_APPROVED))
        .await
        .expect(303);
    assert_eq!(api.payment(&id).await["status"], "pending");
    // ...and after it the payment is `expired`.
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry step");
    assert_eq!(swept.expired, 1);
    assert_eq!(api.payment(&id).await["status"], "expired");
    shopper
        .get(&url)
        .await
        .expect(200)
        .contains("This payment link has expired")
        .contains(&format!("{RETURN_URL}?paymentId={id}"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_mode_without_a_processor_says_card_processing_is_unavailable() {
    let server = TestServer::start().await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let payment = live.create_payment(payment_body(1000, json!({}))).await;
    assert_eq!(payment["livemode"], true);
    let mut shopper = Shopper::new();
    let page = shopper.get(&checkout_url(&payment)).await;
    page.expect(503).contains("Card processing is unavailable");
    assert!(!page.text.contains("Test mode"));
    assert!(!page.text.contains("name=\"number\""), "no card form");
    assert_eq!(live.payment(&id_of(&payment)).await["status"], "pending");
    server.stop().await;
}
