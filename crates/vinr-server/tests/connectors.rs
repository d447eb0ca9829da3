//! Card processing through connectors (SPEC §15), against localstripe, an independent,
//! stateful Stripe emulator (Python, `localstripe==1.15.10`), started by each test on a free
//! port. What localstripe does differs from real Stripe in ways the tests follow:
//! - only `4000 0000 0000 0341` (and two 3-D Secure cards) decline when charged; the other
//!   Stripe decline cards (`…0002`, `…9995`) decline only when attached to a customer, so a
//!   PaymentIntent with them is approved;
//! - `4000 0027 6000 3184` answers `requires_action` with a `use_stripe_sdk` next action (no
//!   redirect URL); the shopper's authentication is localstripe's own
//!   `POST /v1/payment_intents/{id}/_authenticate`;
//! - it has no `amount_received`: a partial capture shows as the charge's `amount_refunded`
//!   (the released rest), so the amount received is `amount - amount_refunded`;
//! - it ignores `Idempotency-Key` (exactly once is ours: the claim before the call).
//!
//! Without localstripe the tests print why and pass, unless `VINR_REQUIRE_LOCALSTRIPE=1` (CI
//! installs it into a venv, `.ci/run`). The binary is `VINR_LOCALSTRIPE_BIN`, else
//! `localstripe` on the PATH, else the venv `scripts/bench-peer.sh` makes.

mod common;
#[path = "support/localstripe.rs"]
mod localstripe;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use localstripe::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vinr_domain::Mode;
use vinr_server::connectors::config::{
    ConnectorSettings, ProcessorConfig, RoutingConfig, RuleConfig,
};

fn live(list: &[&str]) -> RoutingConfig {
    RoutingConfig {
        live: list.iter().map(|s| (*s).to_owned()).collect(),
        ..RoutingConfig::default()
    }
}

/// A server whose live mode goes to localstripe as `stripe_eu`; answers it and a live API.
async fn live_server(stripe: &LocalStripe, extra: Option<ConnectorSettings>) -> (TestServer, Api) {
    let settings = extra.unwrap_or_else(|| {
        connectors(
            &[("stripe_eu", stripe_processor(&stripe.base, 5_000))],
            live(&["stripe_eu"]),
        )
    });
    let server = TestServer::start_with(Options {
        connectors: Some(settings),
        ..Options::default()
    })
    .await;
    let (_, api) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    (server, api)
}

/// A browser without JavaScript: keeps the CSRF cookie, follows no redirects.
struct Shopper {
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    text: String,
}

impl Page {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .text
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field in {}", self.text))
            + marker.len();
        let end = self.text[start..].find('"').expect("a closing quote") + start;
        self.text[start..end].to_owned()
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
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Page {
            status,
            location,
            text: response.text().await.expect("a body"),
        }
    }

    /// Opens the payment's checkout page and submits `card`; answers the POST's answer.
    async fn pay(&mut self, payment: &Value, card: &str) -> Page {
        let url = payment["checkoutUrl"]
            .as_str()
            .expect("a checkoutUrl")
            .to_owned();
        let page = self.send(self.http.get(&url)).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let csrf = page.csrf();
        let form = card_form(&csrf, card);
        let request = self.http.post(format!("{url}/pay")).form(&form);
        self.send(request).await
    }
}

fn card_form(csrf: &str, card: &str) -> Vec<(String, String)> {
    [
        ("csrf", csrf),
        ("number", card),
        ("expiry", "12/30"),
        ("cvc", "123"),
        ("name", "Ada Lovelace"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

async fn attempts(api: &Api, id: &str) -> Vec<Value> {
    let reply = api.get(&format!("/v1/payments/{id}/attempts")).await;
    reply.expect_status(200)["data"]
        .as_array()
        .expect("a list")
        .clone()
}

fn outcomes(attempts: &[Value]) -> Vec<(String, String)> {
    attempts
        .iter()
        .map(|a| {
            (
                a["processor"].as_str().unwrap_or_default().to_owned(),
                a["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_with_automatic_capture_reaches_localstripe() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let (server, api) = live_server(&stripe, None).await;
    let payment = api
        .create_payment(json!({"amount": 2599, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    let answer = Shopper::new().pay(&payment, CARD_APPROVED).await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert!(
        answer
            .location
            .as_deref()
            .is_some_and(|l| l.starts_with(RETURN_URL)),
        "{:?}",
        answer.location
    );
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["processor"], "stripe_eu");
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(paid["processorReference"], intent["id"]);
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 2599);
    assert_eq!(intent["currency"], "eur");
    assert_eq!(paid["paymentMethod"]["last4"], "4242");
    let tried = attempts(&api, &id).await;
    assert_eq!(outcomes(&tried), [("stripe_eu".into(), "approved".into())]);
    assert!(tried[0]["latencyMs"].as_i64().is_some_and(|ms| ms >= 0));
    // Metrics per processor.
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "vinr_processor_attempts_total{processor=\"stripe_eu\",outcome=\"approved\"}"
        ),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_capture_partly_then_refund_at_localstripe() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let (server, api) = live_server(&stripe, None).await;
    let payment = api
        .create_payment(
            json!({"amount": 5000, "currency": "EUR", "returnUrl": RETURN_URL,
            "capture": false}),
        )
        .await;
    let id = id_of(&payment);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    assert_eq!(api.payment(&id).await["status"], "authorized");
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "requires_capture");
    assert_eq!(intent["capture_method"], "manual");

    let captured = api.capture(&id, json!({"amount": 3000})).await;
    assert_eq!(captured.expect_status(200)["amountCaptured"], 3000);
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "succeeded");
    let charge = &intent["latest_charge"];
    let charge = if charge.is_string() {
        stripe
            .get(&format!(
                "/v1/charges/{}",
                charge.as_str().unwrap_or_default()
            ))
            .await
    } else {
        charge.clone()
    };
    // localstripe releases the rest of a partial capture as a refund of the charge.
    let received = charge["amount"].as_i64().unwrap_or_default()
        - charge["amount_refunded"].as_i64().unwrap_or_default();
    assert_eq!(received, 3000, "{charge}");

    let refund = api
        .post_json("/v1/refunds", json!({"payment": id, "amount": 1200}))
        .await;
    let refund_id = id_of(refund.expect_status(201));
    server.finish_refunds(&api).await;
    assert_eq!(
        api.get(&format!("/v1/refunds/{refund_id}"))
            .await
            .expect_status(200)["status"],
        "succeeded"
    );
    let pi = intent["id"].as_str().expect("an id");
    let refunds = stripe
        .get(&format!("/v1/refunds?payment_intent={pi}"))
        .await;
    let ours: Vec<&Value> = refunds["data"]
        .as_array()
        .expect("a list")
        .iter()
        .filter(|r| r["metadata"]["vinr_refund"] == refund_id.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "{refunds}");
    assert_eq!(ours[0]["amount"], 1200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decline_fails_and_three_d_secure_asks_for_authentication() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let (server, api) = live_server(&stripe, None).await;
    let new = || json!({"amount": 1000, "currency": "EUR", "returnUrl": RETURN_URL});

    let declined = api.create_payment(new()).await;
    let id = id_of(&declined);
    assert_eq!(
        Shopper::new()
            .pay(&declined, CARD_CHARGE_DECLINED)
            .await
            .status,
        303
    );
    let failed = api.payment(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["failureCode"], "card_declined");
    assert_eq!(
        outcomes(&attempts(&api, &id).await),
        [("stripe_eu".into(), "declined".into())]
    );
    stripe.only_intent_of(&id).await;

    for success in [true, false] {
        let challenged = api.create_payment(new()).await;
        let id = id_of(&challenged);
        let mut shopper = Shopper::new();
        assert_eq!(shopper.pay(&challenged, CARD_STRIPE_3DS).await.status, 303);
        assert_eq!(api.payment(&id).await["status"], "requires_authentication");
        let intent = stripe.only_intent_of(&id).await;
        assert_eq!(intent["status"], "requires_action");
        // Back on our page before the bank answered: nothing changes.
        let url = challenged["checkoutUrl"]
            .as_str()
            .expect("a url")
            .to_owned();
        let page = shopper.send(shopper.http.get(&url)).await;
        // Live mode: the bank decides, not the simulator's buttons.
        assert!(page.text.contains("id=\"continue\""), "{}", page.text);
        assert!(!page.text.contains("id=\"fail\""), "{}", page.text);
        let csrf = page.csrf();
        let form = [("csrf", csrf.as_str()), ("outcome", "approve")];
        let early = shopper
            .send(shopper.http.post(format!("{url}/authenticate")).form(&form))
            .await;
        assert_eq!(early.status, 409, "{}", early.text);
        assert_eq!(api.payment(&id).await["status"], "requires_authentication");
        // The shopper authenticates with the bank; our page then asks the acquirer: coming
        // back through the return page (where a Stripe redirect sends them), or with the
        // page's Continue.
        stripe.authenticate(&intent, success).await;
        let done = if success {
            shopper
                .send(shopper.http.get(format!("{url}/return")))
                .await
        } else {
            shopper
                .send(shopper.http.post(format!("{url}/authenticate")).form(&form))
                .await
        };
        assert_eq!(done.status, 303, "{}", done.text);
        let after = api.payment(&id).await;
        if success {
            assert_eq!(after["status"], "completed", "{after}");
        } else {
            assert_eq!(after["status"], "failed", "{after}");
            assert_eq!(after["failureCode"], "authentication_failed");
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_from_a_dead_processor_but_never_after_a_decline() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let dead = format!("http://127.0.0.1:{}", free_port());
    let settings = connectors(
        &[
            ("dead", stripe_processor(&dead, 1_000)),
            ("stripe_eu", stripe_processor(&stripe.base, 5_000)),
            ("stripe_b", stripe_processor(&stripe.base, 5_000)),
        ],
        RoutingConfig {
            breaker_errors: 2,
            breaker_cooldown_ms: 600_000,
            rules: vec![RuleConfig {
                currency: Some("USD".into()),
                live: Some(vec!["stripe_eu".into(), "stripe_b".into()]),
                ..RuleConfig::default()
            }],
            ..live(&["dead", "stripe_eu"])
        },
    );
    let (server, api) = live_server(&stripe, Some(settings)).await;
    let new =
        |currency: &str| json!({"amount": 1500, "currency": currency, "returnUrl": RETURN_URL});

    let payment = api.create_payment(new("EUR")).await;
    let id = id_of(&payment);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["processor"], "stripe_eu");
    let tried = attempts(&api, &id).await;
    assert_eq!(
        outcomes(&tried),
        [
            ("dead".into(), "processor_error".into()),
            ("stripe_eu".into(), "approved".into())
        ]
    );
    assert_eq!(tried[0]["failureCode"], "processing_error");
    stripe.only_intent_of(&id).await;

    // A decline on the first processor is never retried on the second (USD: stripe_eu, then
    // stripe_b, both localstripe: a retry would make a second PaymentIntent).
    let payment = api.create_payment(new("USD")).await;
    let id = id_of(&payment);
    Shopper::new().pay(&payment, CARD_CHARGE_DECLINED).await;
    assert_eq!(api.payment(&id).await["failureCode"], "card_declined");
    assert_eq!(
        outcomes(&attempts(&api, &id).await),
        [("stripe_eu".into(), "declined".into())]
    );
    stripe.only_intent_of(&id).await;

    // A second error of `dead` opens its breaker: the next payment skips it.
    let payment = api.create_payment(new("EUR")).await;
    Shopper::new().pay(&payment, CARD_APPROVED).await;
    assert_eq!(
        outcomes(&attempts(&api, &id_of(&payment)).await)[0].1,
        "processor_error"
    );
    let payment = api.create_payment(new("EUR")).await;
    let id = id_of(&payment);
    Shopper::new().pay(&payment, CARD_APPROVED).await;
    assert_eq!(
        outcomes(&attempts(&api, &id).await),
        [("stripe_eu".into(), "approved".into())],
        "the dead processor is skipped while its breaker is open"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_submits_on_two_nodes_make_one_payment_intent() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let settings = || {
        connectors(
            &[("stripe_eu", stripe_processor(&stripe.base, 5_000))],
            live(&["stripe_eu"]),
        )
    };
    let first = TestServer::start_with(Options {
        connectors: Some(settings()),
        ..Options::default()
    })
    .await;
    // A second node on the same database (PostgreSQL: two stateless nodes; SQLite: a second
    // process-like server on the same file).
    let second = TestServer::start_with(Options {
        connectors: Some(settings()),
        database_url: Some(first.database_url().to_owned()),
        ..Options::default()
    })
    .await;
    let (_, api) = first
        .new_key(&first.sandbox_account(), Mode::Live, &[])
        .await;
    let payment = api
        .create_payment(json!({"amount": 4200, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    let url = payment["checkoutUrl"].as_str().expect("a url").to_owned();
    let mut shopper = Shopper::new();
    let page = shopper.send(shopper.http.get(&url)).await;
    let csrf = page.csrf();
    let cookie = shopper.cookie.clone().expect("a cookie");
    let path = url
        .find("/checkout/")
        .map(|at| url[at..].to_owned())
        .expect("a checkout path");
    let bases = [first.base.clone(), second.base.clone()];
    let submits: Vec<_> = (0..8)
        .map(|n| {
            let request = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client")
                .post(format!("{}{path}/pay", bases[n % 2]))
                .header("cookie", cookie.clone())
                .form(&card_form(&csrf, CARD_APPROVED));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    for submit in submits {
        let answer = submit.await.expect("joined").expect("an answer");
        assert_eq!(answer.status().as_u16(), 303);
    }
    assert_eq!(api.payment(&id).await["status"], "completed");
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(outcomes(&attempts(&api, &id).await).len(), 1);
    second.stop().await;
    first.stop().await;
}

/// An HTTP/1.1 proxy to localstripe that, once armed, forwards a confirm, reads its answer
/// and never hands it back: the acquirer has answered, and our server has not heard.
struct HoldingProxy {
    base: String,
    held: Arc<tokio::sync::Notify>,
    /// The head of every request it forwarded (request line and headers).
    heads: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn read_message(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

impl HoldingProxy {
    async fn start(upstream: String) -> HoldingProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let held = Arc::new(tokio::sync::Notify::new());
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (notify, seen) = (held.clone(), heads.clone());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (notify, upstream, seen) = (notify.clone(), upstream.clone(), seen.clone());
                tokio::spawn(async move {
                    while let Some(request) = read_message(&mut client).await {
                        let text = String::from_utf8_lossy(&request).into_owned();
                        let head = text.split("\r\n\r\n").next().unwrap_or_default();
                        seen.lock().expect("the heads").push(head.to_owned());
                        let confirm = request
                            .split(|b| *b == b'\n')
                            .next()
                            .is_some_and(|line| String::from_utf8_lossy(line).contains("/confirm"));
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        if server.write_all(&request).await.is_err() {
                            return;
                        }
                        let Some(response) = read_message(&mut server).await else {
                            return;
                        };
                        if confirm {
                            notify.notify_one();
                            // Hold the answer for ever (the server is killed meanwhile).
                            std::future::pending::<()>().await;
                        }
                        if client.write_all(&response).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HoldingProxy { base, held, heads }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_after_the_acquirer_answered_is_repaired_after_restart() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let proxy = HoldingProxy::start(stripe.base.clone()).await;
    let database = fresh_database().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    // Live mode routed to the acquirer (a live key made with `vinr keys create`); a short
    // timeout keeps the claim, and so the wait for the repair, short.
    let config = dir.path().join("vinr.toml");
    std::fs::write(
        &config,
        format!(
            "[rate_limit]\nenabled = false\n[processors.stripe_eu]\nkind = \"stripe\"\n\
             api_base = \"{}\"\nsecret_key_env = \"{KEY_VAR}\"\ntimeout_ms = 1000\n\
             send_return_url = false\n\
             [routing]\nlive = [\"stripe_eu\"]\n",
            proxy.base
        ),
    )
    .expect("config written");
    let env = [(KEY_VAR, STRIPE_KEY)];
    let served = process::Served::start_with_env(dir.path(), &database.url, &config, &env);
    let account = word_with_prefix(&served.printed.join("\n"), "acct_")
        .unwrap_or_else(|| panic!("the sandbox account in {:?}", served.printed));
    let made = process::vinr_with(
        Some(dir.path()),
        &env,
        &[
            "keys",
            "create",
            "--account",
            &account,
            "--mode",
            "live",
            "--database-url",
            &database.url,
        ],
    )
    .await;
    let key = word_with_prefix(made.expect_success(), "sk_live_").expect("a live key");
    let api = Api::new(&served.base, &key);
    let payment = api
        .create_payment(json!({"amount": 777, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    let mut shopper = Shopper::new();
    let url = payment["checkoutUrl"].as_str().expect("a url").to_owned();
    let csrf = shopper.send(shopper.http.get(&url)).await.csrf();
    let request = shopper
        .http
        .post(format!("{url}/pay"))
        .header("cookie", shopper.cookie.clone().expect("a cookie"))
        .form(&card_form(&csrf, CARD_APPROVED));
    // Its answer never comes: the server is killed while it waits for the acquirer's.
    let submit = tokio::spawn(async move { request.send().await.map(|r| r.status()) });
    // The acquirer answered the confirm; kill -9 before the server hears of it.
    tokio::time::timeout(Duration::from_secs(30), proxy.held.notified())
        .await
        .expect("the confirm reached localstripe");
    served.kill_9();
    submit.abort();
    // Every call carried an idempotency key derived from our ids, and the key, never in a
    // URL, only as the bearer token.
    let heads = proxy.heads.lock().expect("the heads").clone();
    let posts: Vec<&String> = heads.iter().filter(|h| h.starts_with("POST")).collect();
    assert_eq!(posts.len(), 3, "payment method, intent, confirm: {heads:?}");
    for (post, step) in posts.iter().zip(["pm", "pi", "confirm"]) {
        // The payment's first claim: its attempt 1.
        let expected =
            format!("idempotency-key: vinr_{id}_a1_stripe_eu_{step}").to_ascii_lowercase();
        assert!(
            post.to_ascii_lowercase().contains(&expected),
            "{expected} in {post}"
        );
        assert!(post
            .lines()
            .next()
            .is_some_and(|line| !line.contains(STRIPE_KEY)));
    }
    let intent = stripe.only_intent_of(&id).await;
    assert_eq!(intent["status"], "succeeded", "the acquirer charged");

    let served = process::Served::start_with_env(dir.path(), &database.url, &config, &env);
    let api = Api::new(&served.base, &key);
    // Until repaired, the payment is held: a cancel is refused.
    let early = api.cancel(&id).await;
    let status = api.payment(&id).await["status"].clone();
    if status == "pending" {
        early.expect_error(422, "invalid_request_error", "payment_state_invalid", None);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let repaired = loop {
        let now = api.payment(&id).await;
        if now["status"] != "pending" {
            break now;
        }
        assert!(Instant::now() < deadline, "not repaired: {now}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(repaired["status"], "completed", "{repaired}");
    assert_eq!(repaired["livemode"], true, "{repaired}");
    assert_eq!(repaired["processorReference"], intent["id"]);
    assert_eq!(repaired["amountCaptured"], 777);
    assert_eq!(repaired["paymentMethod"]["last4"], "4242");
    stripe.only_intent_of(&id).await;
    let tried = outcomes(&attempts(&api, &id).await);
    assert_eq!(
        tried.last().map(|t| t.1.as_str()),
        Some("approved"),
        "{tried:?}"
    );
    drop(served);
    drop(database);
}

#[tokio::test]
async fn bad_processor_config_stops_vinr_serve_naming_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let cases = [
        (
            "[routing]\nlive = [\"stripe_us\"]\n",
            vec![],
            "unknown processor `stripe_us`",
        ),
        (
            "[processors.stripe_eu]\nkind = \"stripe\"\napi_base = \"https://api.stripe.com\"\n\
             secret_key_env = \"VINR_TEST_NO_SUCH_KEY\"\n",
            vec![],
            "`VINR_TEST_NO_SUCH_KEY` is not set",
        ),
        (
            "[processors.stripe_eu]\nkind = \"stripe\"\napi_base = \"htp:/x y\"\n\
             secret_key_env = \"K\"\n",
            vec![("K", "sk_test_x")],
            "processors.stripe_eu.api_base",
        ),
        // A test key routed in live mode (live payments would never be paid).
        (
            "[processors.stripe_eu]\nkind = \"stripe\"\napi_base = \"https://api.stripe.com\"\n\
             secret_key_env = \"K\"\n[routing]\nlive = [\"stripe_eu\"]\n",
            vec![("K", "sk_test_x")],
            "processors.stripe_eu: `K` holds a test key",
        ),
        // A live key routed in test mode (test payments would move real money).
        (
            "[processors.stripe_eu]\nkind = \"stripe\"\napi_base = \"https://api.stripe.com\"\n\
             secret_key_env = \"K\"\n[routing]\ntest = [\"stripe_eu\"]\n",
            vec![("K", "sk_live_x")],
            "processors.stripe_eu: `K` holds a live key",
        ),
    ];
    for (text, env, expected) in cases {
        let config = dir.path().join("bad.toml");
        std::fs::write(&config, text).expect("config written");
        let database = dir.path().join("vinr.db");
        let url = format!("sqlite://{}", database.display());
        let config_path = config.to_string_lossy().into_owned();
        let out = process::vinr_with(
            Some(dir.path()),
            &env,
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &url,
                "--config",
                &config_path,
            ],
        )
        .await;
        assert!(!out.success, "vinr serve started with {text}");
        assert!(
            out.stderr.contains(expected),
            "`{expected}` not in: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("sk_test_x") && !out.stderr.contains("sk_live_x"),
            "a secret in {}",
            out.stderr
        );
    }
}

/// A TCP port that accepts connections and never answers (a hung acquirer).
async fn black_hole() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_wrong_keys_are_processor_errors_not_declines() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let hung = black_hole().await;
    let processors: BTreeMap<String, ProcessorConfig> = [
        ("hung", stripe_processor(&hung, 300)),
        (
            "wrong_key",
            ProcessorConfig {
                secret_key_env: "VINR_TEST_WRONG_KEY".into(),
                ..stripe_processor(&stripe.base, 5_000)
            },
        ),
        ("stripe_eu", stripe_processor(&stripe.base, 5_000)),
    ]
    .into_iter()
    .map(|(name, config)| (name.to_owned(), config))
    .collect();
    let routing = RoutingConfig {
        rules: vec![RuleConfig {
            currency: Some("GBP".into()),
            live: Some(vec!["wrong_key".into()]),
            ..RuleConfig::default()
        }],
        ..live(&["hung", "stripe_eu"])
    };
    // localstripe refuses a key that is not `sk_…` with 401.
    let settings = ConnectorSettings::with_env(&processors, &routing, |name| match name {
        KEY_VAR => Some(STRIPE_KEY.to_owned()),
        "VINR_TEST_WRONG_KEY" => Some("not_a_secret_key".to_owned()),
        _ => None,
    })
    .expect("valid settings");
    let (server, api) = live_server(&stripe, Some(settings)).await;

    let payment = api
        .create_payment(json!({"amount": 900, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    assert_eq!(api.payment(&id).await["status"], "completed");
    let tried = attempts(&api, &id).await;
    assert_eq!(
        outcomes(&tried),
        [
            ("hung".into(), "processor_error".into()),
            ("stripe_eu".into(), "approved".into())
        ]
    );
    assert!(
        tried[0]["latencyMs"].as_i64().is_some_and(|ms| ms >= 300),
        "{tried:?}"
    );

    // Only a processor that refuses our key: nothing charged, the payment stays pending,
    // and the page says so.
    let payment = api
        .create_payment(json!({"amount": 900, "currency": "GBP", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    let page = Shopper::new().pay(&payment, CARD_APPROVED).await;
    assert_eq!(page.status, 503, "{}", page.text);
    assert!(page.text.contains("unavailable"), "{}", page.text);
    let after = api.payment(&id).await;
    assert_eq!(after["status"], "pending", "{after}");
    assert_eq!(after["failureCode"], Value::Null);
    let tried = attempts(&api, &id).await;
    assert_eq!(
        outcomes(&tried),
        [("wrong_key".into(), "processor_error".into())]
    );
    assert!(!serde_json::to_string(&tried)
        .expect("json")
        .contains("not_a_secret_key"));
    // The shopper may try again once the processor is back; meanwhile nothing is held.
    assert!(stripe.intents_of(&id).await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_goes_to_the_acquirer() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    let (server, api) = live_server(&stripe, None).await;
    let payment = api
        .create_payment(
            json!({"amount": 3100, "currency": "EUR", "returnUrl": RETURN_URL,
            "capture": false}),
        )
        .await;
    let id = id_of(&payment);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    assert_eq!(
        stripe.only_intent_of(&id).await["status"],
        "requires_capture"
    );
    api.cancel(&id).await.expect_status(200);
    assert_eq!(api.payment(&id).await["status"], "cancelled");
    assert_eq!(stripe.only_intent_of(&id).await["status"], "canceled");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_auto_cancelled_payments_are_cancelled_at_the_acquirer() {
    let Some(stripe) = LocalStripe::start().await else {
        return;
    };
    // The workers run only when stepped: the expiry, then the connectors' pass.
    let server = TestServer::start_with(Options {
        connectors: Some(connectors(
            &[("stripe_eu", stripe_processor(&stripe.base, 5_000))],
            live(&["stripe_eu"]),
        )),
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let (_, api) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let challenged = api
        .create_payment(json!({"amount": 1500, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let challenged_id = id_of(&challenged);
    assert_eq!(
        Shopper::new()
            .pay(&challenged, CARD_STRIPE_3DS)
            .await
            .status,
        303
    );
    // A shopper who authenticates at the bank and never comes back: the money moved there.
    let gone = api
        .create_payment(json!({"amount": 1700, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let gone_id = id_of(&gone);
    assert_eq!(Shopper::new().pay(&gone, CARD_STRIPE_3DS).await.status, 303);
    stripe
        .authenticate(&stripe.only_intent_of(&gone_id).await, true)
        .await;
    assert_eq!(stripe.only_intent_of(&gone_id).await["status"], "succeeded");
    assert_eq!(
        api.payment(&gone_id).await["status"],
        "requires_authentication"
    );
    let held = api
        .create_payment(
            json!({"amount": 2500, "currency": "EUR", "returnUrl": RETURN_URL, "capture": false}),
        )
        .await;
    let held_id = id_of(&held);
    assert_eq!(Shopper::new().pay(&held, CARD_APPROVED).await.status, 303);
    assert_eq!(api.payment(&held_id).await["status"], "authorized");
    assert_eq!(
        stripe.only_intent_of(&held_id).await["status"],
        "requires_capture"
    );

    // The checkouts expire in 3-D Secure: the expiry hands them to the connectors' pass,
    // which asks the acquirer first. The one still waiting is cancelled there, then expired
    // here; the one the bank approved is recorded as paid (its money moved), not expired.
    server.clock.advance_ms(61 * 60 * 1000);
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry pass");
    assert_eq!(swept.expired, 2);
    for id in [&challenged_id, &gone_id] {
        assert_eq!(
            api.payment(id).await["status"],
            "requires_authentication",
            "not before the connectors' pass"
        );
    }
    assert_eq!(
        stripe.only_intent_of(&challenged_id).await["status"],
        "requires_action",
        "not before the connectors' pass"
    );
    let done = vinr_server::workers::connectors::step(server.app())
        .await
        .expect("a connectors pass");
    assert_eq!(done, 2);
    assert_eq!(api.payment(&challenged_id).await["status"], "expired");
    assert_eq!(
        stripe.only_intent_of(&challenged_id).await["status"],
        "canceled"
    );
    let paid = api.payment(&gone_id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["amountCaptured"], 1700);
    assert_eq!(stripe.only_intent_of(&gone_id).await["status"], "succeeded");
    // A later expiry pass leaves both alone.
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry pass");
    assert_eq!(swept.expired, 0);

    // The authorization left uncaptured is auto-cancelled, and released at the acquirer.
    server.clock.advance_ms(8 * 24 * 60 * 60 * 1000);
    let swept = vinr_server::workers::expiry::step(server.app())
        .await
        .expect("an expiry pass");
    assert_eq!(swept.auto_cancelled, 1);
    assert_eq!(api.payment(&held_id).await["status"], "cancelled");
    let done = vinr_server::workers::connectors::step(server.app())
        .await
        .expect("a connectors pass");
    assert_eq!(done, 1);
    assert_eq!(stripe.only_intent_of(&held_id).await["status"], "canceled");
    // Done once: the next pass has nothing to send.
    let again = vinr_server::workers::connectors::step(server.app())
        .await
        .expect("a connectors pass");
    assert_eq!(again, 0);
    server.stop().await;
}

/// A Stripe-shaped acquirer of our own for what localstripe cannot show (it ignores
/// idempotency keys and never answers 409 or too much): payment methods and intents are
/// made and approved, refunds answered 409 (the same key still running), and, while `huge`,
/// every answer is 2 MiB; while `fail_intents`, intents are answered 500; while `redirect`,
/// the confirm asks for 3-D Secure on the bank's page (`redirect_to_url`) and the intent,
/// looked up, has succeeded. It records each call's path and `Idempotency-Key`, and each
/// confirm's form.
#[derive(Clone, Default)]
struct FakeAcquirer {
    posts: Arc<std::sync::Mutex<Vec<(String, String)>>>,
    confirms: Arc<std::sync::Mutex<Vec<String>>>,
    huge: Arc<std::sync::atomic::AtomicBool>,
    fail_intents: Arc<std::sync::atomic::AtomicBool>,
    redirect: Arc<std::sync::atomic::AtomicBool>,
}

const BANK_PAGE: &str = "https://bank.example/acs/1";

impl FakeAcquirer {
    async fn start(self) -> String {
        use axum::http::{HeaderMap, StatusCode, Uri};
        use std::sync::atomic::Ordering;
        let fake = self.clone();
        let app =
            axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: String| {
                let fake = fake.clone();
                async move {
                    let redirect = fake.redirect.load(Ordering::SeqCst);
                    let path = uri.path().to_owned();
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    fake.posts.lock().expect("posts").push((path.clone(), key));
                    let (status, mut body) = match path.as_str() {
                        "/v1/payment_methods" => (StatusCode::OK, json!({"id": "pm_fake"})),
                        "/v1/payment_intents" if fake.fail_intents.load(Ordering::SeqCst) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            json!({"error": {"message": "down"}}),
                        ),
                        "/v1/payment_intents" => (
                            StatusCode::OK,
                            json!({"id": "pi_fake", "status": "requires_confirmation"}),
                        ),
                        "/v1/payment_intents/pi_fake/confirm" if redirect => {
                            fake.confirms.lock().expect("confirms").push(body);
                            (
                                StatusCode::OK,
                                json!({"id": "pi_fake", "status": "requires_action",
                                "next_action": {"type": "redirect_to_url",
                                    "redirect_to_url": {"url": BANK_PAGE}}}),
                            )
                        }
                        "/v1/payment_intents/pi_fake/confirm" => (
                            StatusCode::OK,
                            json!({"id": "pi_fake", "status": "succeeded"}),
                        ),
                        "/v1/payment_intents/pi_fake" if redirect => (
                            StatusCode::OK,
                            json!({"id": "pi_fake", "status": "succeeded"}),
                        ),
                        "/v1/refunds" => (
                            StatusCode::CONFLICT,
                            json!({"error": {"type": "idempotency_error",
                            "message": "a request with this key is in progress"}}),
                        ),
                        _ => (StatusCode::NOT_FOUND, json!({"error": {"message": "no"}})),
                    };
                    // The same answers, each 2 MiB long: without the cap they would be taken.
                    if fake.huge.load(Ordering::SeqCst) {
                        body["padding"] = Value::String("x".repeat(2 * 1024 * 1024));
                    }
                    (status, body.to_string())
                }
            });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn keys_of(&self, path: &str) -> Vec<String> {
        let posts = self.posts.lock().expect("posts");
        posts
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, key)| key.clone())
            .collect()
    }
}

/// Starts a live server over `processors` (each a fake acquirer's base), routed in order.
async fn fake_server(processors: &[(&str, &str)]) -> (TestServer, Api) {
    let configs: Vec<(&str, ProcessorConfig)> = processors
        .iter()
        .map(|(name, base)| (*name, stripe_processor(base, 5_000)))
        .collect();
    let names: Vec<&str> = processors.iter().map(|(name, _)| *name).collect();
    let server = TestServer::start_with(Options {
        connectors: Some(connectors(&configs, live(&names))),
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let (_, api) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    (server, api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_answers_fail_over_and_a_refund_answered_409_stays_pending() {
    let huge = FakeAcquirer::default();
    huge.huge.store(true, std::sync::atomic::Ordering::SeqCst);
    let huge_base = huge.clone().start().await;
    let fine = FakeAcquirer::default();
    let fine_base = fine.clone().start().await;
    let (server, api) = fake_server(&[("huge", &huge_base), ("fine", &fine_base)]).await;
    let payment = api
        .create_payment(json!({"amount": 900, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["processor"], "fine");
    let tried = attempts(&api, &id).await;
    assert_eq!(
        outcomes(&tried),
        [
            ("huge".into(), "processor_error".into()),
            ("fine".into(), "approved".into())
        ]
    );
    // Only the payment method's call was made there: its answer was too long.
    assert_eq!(huge.posts.lock().expect("posts").len(), 1);

    // A 409 from the acquirer is not a refusal: the refund stays pending, to be sent again
    // with the same key.
    let refund = api
        .post_json("/v1/refunds", json!({"payment": id, "amount": 300}))
        .await;
    let refund_id = id_of(refund.expect_status(201));
    for _ in 0..2 {
        vinr_server::workers::refunds::step(server.app())
            .await
            .expect("a refunds pass");
        server.clock.advance_ms(10 * 60 * 1000);
    }
    let now = api
        .get(&format!("/v1/refunds/{refund_id}"))
        .await
        .expect_status(200)
        .clone();
    assert_eq!(now["status"], "pending", "{now}");
    let keys = fine.keys_of("/v1/refunds");
    assert_eq!(keys.len(), 2, "sent again after its lease: {keys:?}");
    assert!(
        keys.iter().all(|k| *k == format!("vinr_{refund_id}")),
        "{keys:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_attempt_sends_new_idempotency_keys() {
    let flaky = FakeAcquirer::default();
    flaky
        .fail_intents
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let base = flaky.clone().start().await;
    let (server, api) = fake_server(&[("flaky", &base)]).await;
    let payment = api
        .create_payment(json!({"amount": 900, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    // Every processor failed before authorizing: nothing charged, the payment stays pending.
    let first = Shopper::new().pay(&payment, CARD_APPROVED).await;
    assert_eq!(first.status, 503, "{}", first.text);
    assert_eq!(api.payment(&id).await["status"], "pending");
    // The shopper tries again: a new claim, a new attempt, new keys (the first attempt's
    // would get Stripe's replay of the 500, or a 400 for other parameters).
    flaky
        .fail_intents
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        Shopper::new().pay(&payment, CARD_APPROVED).await.status,
        303
    );
    assert_eq!(api.payment(&id).await["status"], "completed");
    assert_eq!(
        flaky.keys_of("/v1/payment_intents"),
        [
            format!("vinr_{id}_a1_flaky_pi"),
            format!("vinr_{id}_a2_flaky_pi")
        ]
    );
    assert_eq!(
        flaky.keys_of("/v1/payment_methods"),
        [
            format!("vinr_{id}_a1_flaky_pm"),
            format!("vinr_{id}_a2_flaky_pm")
        ]
    );
    assert_eq!(
        flaky.keys_of("/v1/payment_intents/pi_fake/confirm"),
        [format!("vinr_{id}_a2_flaky_confirm")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_taken_over_is_no_longer_its_first_holders() {
    use vinr_server::flows::connectors as flow;
    use vinr_server::store::Scope;
    let server = TestServer::start_with(Options {
        stepped_workers: true,
        ..Options::default()
    })
    .await;
    let api = server.api();
    let id = id_of(&api.new_payment().await);
    let store = &server.app().store;
    let scope = Scope {
        account_id: server.sandbox_account(),
        mode: Mode::Test,
    };
    let method = vinr_domain::PaymentMethod {
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2040,
        fingerprint: "fp".into(),
    };
    let scope_again = scope.clone();
    let now = server.app().clock.now();
    let (at, claimed_id) = (now.plus_ms(1_000), id.clone());
    let (payment, first) = store
        .write(move |tx| flow::claim(tx, &scope, &claimed_id, at, &method))
        .await
        .expect("a claim")
        .expect("claimed");
    assert_eq!(payment.processor_attempt, 1);
    // The first holder stalls past its claim; a repair takes it over.
    server.clock.advance_ms(2_000);
    let later = server.app().clock.now();
    let taken = store
        .write(move |tx| flow::reclaim_stale(tx, later, later.plus_ms(60_000), 10))
        .await
        .expect("a takeover");
    assert_eq!(taken.len(), 1);
    let (repaired, second) = taken.into_iter().next().expect("one");
    assert_eq!(
        repaired.processor_attempt, 1,
        "the attempt that was in flight"
    );
    // Every write of the first holder is refused, in SQL; the repair's are not.
    let (a, o) = (id.clone(), first.clone());
    let named = store
        .write(move |tx| flow::name_processor(tx, &a, &o, "stripe_eu", Some("pi_x"), None))
        .await
        .expect("a write");
    assert!(!named);
    let (a, o, s) = (id.clone(), first.clone(), scope_again.clone());
    assert!(!store
        .write(move |tx| {
            let step = vinr_server::flows::payments::Transition::expired_at_acquirer(
                &s,
                &a,
                later,
                "http://127.0.0.1",
            );
            flow::end_claim(tx, &o, step)
        })
        .await
        .expect("a write"));
    let (a, o) = (id.clone(), first);
    assert!(!store
        .write(move |tx| flow::release(tx, &a, &o, None))
        .await
        .expect("a write"));
    assert!(api.payment(&id).await["processorReference"].is_null());
    let (a, o) = (id.clone(), second);
    assert!(store
        .write(move |tx| flow::release(tx, &a, &o, None))
        .await
        .expect("a write"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_d_secure_redirect_comes_back_to_the_checkout() {
    let bank = FakeAcquirer::default();
    bank.redirect
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let base = bank.clone().start().await;
    let config = ProcessorConfig {
        send_return_url: Some(true),
        ..stripe_processor(&base, 5_000)
    };
    let server = TestServer::start_with(Options {
        connectors: Some(connectors(&[("stripe_eu", config)], live(&["stripe_eu"]))),
        ..Options::default()
    })
    .await;
    let (_, api) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let payment = api
        .create_payment(json!({"amount": 1200, "currency": "EUR", "returnUrl": RETURN_URL}))
        .await;
    let id = id_of(&payment);
    let checkout = payment["checkoutUrl"].as_str().expect("a url").to_owned();
    let mut shopper = Shopper::new();
    // The shopper is sent to the bank's page…
    let sent = shopper.pay(&payment, CARD_APPROVED).await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    assert_eq!(sent.location.as_deref(), Some(BANK_PAGE));
    assert_eq!(api.payment(&id).await["status"], "requires_authentication");
    // …with the confirm telling the acquirer where to send them back.
    let confirms = bank.confirms.lock().expect("confirms").clone();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(confirms[0].as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [("return_url".to_owned(), format!("{checkout}/return"))]
    );
    // The bank sends them back: the intent is asked, the payment completes, and the
    // shopper goes on to the merchant.
    let back = shopper
        .send(shopper.http.get(format!("{checkout}/return")))
        .await;
    assert_eq!(back.status, 303, "{}", back.text);
    assert!(
        back.location
            .as_deref()
            .is_some_and(|l| l.starts_with(RETURN_URL)),
        "{:?}",
        back.location
    );
    let paid = api.payment(&id).await;
    assert_eq!(paid["status"], "completed", "{paid}");
    assert_eq!(paid["processorReference"], "pi_fake");
    // Coming back again changes nothing.
    let again = shopper
        .send(shopper.http.get(format!("{checkout}/return")))
        .await;
    assert_eq!(again.status, 303);
    assert_eq!(api.payment(&id).await["status"], "completed");
    server.stop().await;
}
