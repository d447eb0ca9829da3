//! Black-box harness: a real `vinr` server per test on `127.0.0.1:0` with a fresh database
//! (SQLite, or PostgreSQL with `VINR_TEST_DATABASE_URL`: see [`database`]), and a small HTTP
//! client that speaks to it over the port. Extra accounts and keys come from the real flows
//! through the store, never from SQL.
//!
//! Every test binary uses a subset of these helpers.
#![allow(dead_code)]

pub mod browser;
pub mod dashboard;
pub mod database;
pub mod ledger;
pub mod process;
pub mod race;
pub mod receiver;

/// Set by CI: a test that needs a system tool a laptop may lack (`prlimit`, mounting a tmpfs
/// as root) fails instead of skipping, so CI never skips it.
pub const REQUIRE_SYSTEM_TOOLS_VAR: &str = "VINR_REQUIRE_SYSTEM_TOOLS";

/// Says why a test cannot run here and lets it return, or fails it when
/// `VINR_REQUIRE_SYSTEM_TOOLS=1` says it must run.
pub fn skip_unless_required(reason: &str) {
    if std::env::var(REQUIRE_SYSTEM_TOOLS_VAR).is_ok_and(|value| value == "1") {
        panic!("{REQUIRE_SYSTEM_TOOLS_VAR}=1 but this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_domain::{Mode, UnixMillis};
use vinr_server::clock::{Clock, ManualClock, SystemClock};
use vinr_server::config::{
    FileConfig, HttpConfig, PricingConfig, RateLimitConfig, Settings, SettlementsConfig,
    WebhooksConfig,
};
use vinr_server::processor::{Processor, SandboxProcessor};
use vinr_server::server::{self, Running};
use vinr_server::state::AppState;

pub use database::{fresh_database, TestDatabase};

pub const CARD_APPROVED: &str = "4242424242424242";
pub const CARD_3DS: &str = "4000000000003220";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_INSUFFICIENT_FUNDS: &str = "4000000000009995";
pub const CARD_EXPIRED: &str = "4000000000000069";
pub const CARD_PROCESSING_ERROR: &str = "4000000000000119";
pub const CARD_MASTERCARD: &str = "5555555555554444";
pub const CARD_REFUNDS_FAIL: &str = "4000000000005126";
pub const CARD_DISPUTED: &str = "4000000000000259";

pub const RETURN_URL: &str = "https://shop.example/return";

/// How a test server differs from the default (rate limits off, both modes, public URL from
/// the listen address, a fresh database, its own clock).
#[derive(Default)]
pub struct Options {
    pub rate_limit: Option<RateLimitConfig>,
    pub modes: Option<Vec<String>>,
    pub public_url: Option<String>,
    /// An existing database to serve instead of a fresh one; the test owns it.
    pub database_url: Option<String>,
    /// A clock shared with other servers (nodes of one deployment) instead of a new one.
    pub clock: Option<Arc<ManualClock>>,
    /// Fees other than the default pricing.
    pub pricing: Option<PricingConfig>,
    /// Settlement schedules; by default every account is `manual`, so the settlement worker
    /// never settles behind a test's back (tests that need it say so).
    pub settlements: Option<SettlementsConfig>,
    /// Serve live mode with the sandbox simulator standing in for a real acquirer, so live
    /// money flows (T+2 availability, live payouts) can be tested.
    pub live_sandbox: bool,
    /// The `[webhooks]` table (retry schedule, timeout) instead of the defaults.
    pub webhooks: Option<WebhooksConfig>,
    /// The `[http]` table (connection timeouts and cap) instead of the defaults.
    pub http: Option<HttpConfig>,
    /// Start without the background workers (expiry, refunds, settlements, maintenance,
    /// webhooks): the test runs their passes itself (`vinr_server::workers::*::step`), so
    /// nothing happens behind its back and "nothing happened" follows a pass that ran.
    pub stepped_workers: bool,
    /// `VINR_PLATFORM_KEY`: a platform key the server makes sure of at start.
    pub platform_key: Option<String>,
    /// `[processors]` and `[routing]` (SPEC §15), checked, instead of the sandbox alone.
    pub connectors: Option<vinr_server::connectors::config::ConnectorSettings>,
}

pub struct TestServer {
    running: Running,
    pub base: String,
    pub clock: Arc<ManualClock>,
    /// The sandbox account made on first start (absent when the database already had one).
    pub account_id: Option<String>,
    key: Option<String>,
    /// The fresh database made for this server, removed after it stops; `None` when serving
    /// [`Options::database_url`].
    database: Option<TestDatabase>,
}

/// A clock on a whole second near the real time, moved only by hand.
pub fn manual_clock() -> Arc<ManualClock> {
    let now = SystemClock.now().0;
    Arc::new(ManualClock::new(UnixMillis(now - now % 1000)))
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestServer {
        let (database, database_url) = match options.database_url {
            Some(url) => (None, url),
            None => {
                let database = fresh_database().await;
                let url = database.url.clone();
                (Some(database), url)
            }
        };
        let defaults = FileConfig::default();
        let file = FileConfig {
            modes: options.modes.unwrap_or(defaults.modes),
            rate_limit: options.rate_limit.unwrap_or(RateLimitConfig {
                enabled: false,
                ..RateLimitConfig::default()
            }),
            pricing: options.pricing.unwrap_or(defaults.pricing),
            settlements: options.settlements.unwrap_or(SettlementsConfig {
                schedule: "manual".into(),
                ..SettlementsConfig::default()
            }),
            webhooks: options.webhooks.unwrap_or_default(),
            http: options.http.unwrap_or_default(),
            ..FileConfig::default()
        };
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
        let mut settings = Settings::new(listen, database_url, options.public_url, file)
            .expect("valid test settings");
        settings.platform_key = options
            .platform_key
            .map(vinr_server::redacted::Redacted::new);
        if let Some(connectors) = options.connectors {
            settings.connectors = connectors;
        }
        let clock = options.clock.unwrap_or_else(manual_clock);
        let live: Option<Arc<dyn Processor>> = options
            .live_sandbox
            .then(|| Arc::new(SandboxProcessor) as Arc<dyn Processor>);
        let workers = if options.stepped_workers {
            server::Workers::Stepped
        } else {
            server::Workers::Running
        };
        let running = server::start_with_workers(settings, clock.clone(), live, workers)
            .await
            .expect("the server starts");
        let base = format!("http://{}", running.addr);
        let (account_id, key) = match &running.bootstrapped {
            Some(bootstrapped) => (
                Some(bootstrapped.account_id.clone()),
                Some(bootstrapped.secret_key.expose().clone()),
            ),
            None => (None, None),
        };
        TestServer {
            running,
            base,
            clock,
            account_id,
            key,
            database,
        }
    }

    pub fn app(&self) -> &AppState {
        &self.running.app
    }

    /// Runs passes of the webhook worker until one finds nothing due (a server started with
    /// [`Options::stepped_workers`]); answers how many attempts were made. Each pass records
    /// its attempts before it returns.
    pub async fn deliver_due_webhooks(&self) -> usize {
        const PASSES_MAX: usize = 100;
        let mut attempts = 0;
        for _ in 0..PASSES_MAX {
            let made = vinr_server::workers::webhooks::step(self.app())
                .await
                .expect("a webhook pass");
            if made == 0 {
                return attempts;
            }
            attempts += made;
        }
        panic!("still attempting webhooks after {PASSES_MAX} passes ({attempts} attempts)");
    }

    /// Runs passes of the refunds worker until no refund of `api`'s account is pending
    /// (a server started with [`Options::stepped_workers`], or one whose worker also runs).
    pub async fn finish_refunds(&self, api: &Api) {
        const PASSES_MAX: usize = 100;
        for _ in 0..PASSES_MAX {
            vinr_server::workers::refunds::step(self.app())
                .await
                .expect("a refunds step");
            let all = api.list_all("/v1/refunds").await;
            if all.iter().all(|refund| refund["status"] != "pending") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("refunds still pending after {PASSES_MAX} passes");
    }

    /// The server clock's time in Unix seconds.
    pub fn now_s(&self) -> i64 {
        self.clock.now().0 / 1000
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// The database this server serves, for the command line and other servers.
    pub fn database_url(&self) -> &str {
        &self.app().settings.database_url
    }

    /// The sandbox account's API, with its bootstrapped `sk_test_` key.
    pub fn api(&self) -> Api {
        self.client(self.key.as_deref().expect("a bootstrapped sandbox key"))
    }

    pub fn client(&self, key: &str) -> Api {
        Api::new(&self.base, key)
    }

    pub fn sandbox_account(&self) -> String {
        self.account_id
            .clone()
            .expect("a bootstrapped sandbox account")
    }

    /// A new account through the real flow; answers its id and its `sk_test_` key's API.
    pub async fn new_account(&self, name: &str) -> (String, Api) {
        let name = name.to_owned();
        let now = self.clock.now();
        let (account, key) = self
            .app()
            .store
            .write(move |tx| vinr_server::flows::accounts::create_account(tx, &name, now))
            .await
            .expect("account created");
        (account.id, self.client(key.secret.expose()))
    }

    /// A new key for `account_id`: secret without scopes, restricted with them. Answers the key
    /// id (`key_…`) and an API using the key.
    pub async fn new_key(&self, account_id: &str, mode: Mode, scopes: &[&str]) -> (String, Api) {
        let account_id = account_id.to_owned();
        let scopes: Vec<String> = scopes.iter().map(|scope| (*scope).to_owned()).collect();
        let now = self.clock.now();
        let key = self
            .app()
            .store
            .write(move |tx| {
                vinr_server::flows::accounts::create_key(tx, &account_id, mode, scopes, now)
            })
            .await
            .expect("key created");
        (key.record.id, self.client(key.secret.expose()))
    }

    /// An API with a new platform key (`plk_…`), made through the real flow.
    pub async fn platform_api(&self) -> Api {
        let now = self.clock.now();
        let key = self
            .app()
            .store
            .write(move |tx| vinr_server::flows::accounts::create_platform_key(tx, now))
            .await
            .expect("platform key created");
        self.client(key.secret.expose())
    }

    pub async fn revoke(&self, key_id: &str) {
        let key_id = key_id.to_owned();
        let now = self.clock.now();
        let revoked = self
            .app()
            .store
            .write(move |tx| vinr_server::flows::accounts::revoke_key(tx, &key_id, now))
            .await
            .expect("revocation written");
        assert!(revoked, "the key was active before revocation");
    }

    /// Stops the server, then removes the database made for it.
    pub async fn stop(self) {
        let TestServer {
            running, database, ..
        } = self;
        running.stop().await;
        drop(database);
    }
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Null` when it is not JSON.
    pub json: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Panics with the body unless the status is `status`; answers the JSON body.
    #[track_caller]
    pub fn expect_status(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "expected HTTP {status}, got {} with body {}",
            self.status, self.text
        );
        &self.json
    }

    /// Asserts SPEC §2's error body: status, `type`, `code`, `param`, and a `request_id`
    /// equal to the `X-Request-Id` header.
    #[track_caller]
    pub fn expect_error(&self, status: u16, kind: &str, code: &str, param: Option<&str>) {
        self.expect_status(status);
        let error = &self.json["error"];
        assert_eq!(error["type"], kind, "error type in {}", self.text);
        assert_eq!(error["code"], code, "error code in {}", self.text);
        assert!(
            error.get("param").is_some(),
            "a param field in {}",
            self.text
        );
        assert_eq!(
            error["param"].as_str(),
            param,
            "error param in {}",
            self.text
        );
        let message = error["message"].as_str().expect("an error message");
        assert!(!message.is_empty(), "an empty error message");
        let request_id = self.header("x-request-id").expect("X-Request-Id header");
        assert!(request_id.starts_with("req_"), "request id {request_id}");
        assert_eq!(error["request_id"], request_id, "body request_id vs header");
        assert_eq!(self.header("x-vinr-request-id"), Some(request_id));
    }
}

/// A small deterministic generator (a 64-bit LCG) seeded by the test, so a failing random
/// workload can be replayed.
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// One operation on an existing payment, for tables of cases (see [`Api::apply`]).
#[derive(Debug, Clone)]
pub enum Op {
    /// The test helper `pay` with this card.
    Pay(&'static str),
    /// The test helper `authenticate` with this outcome (`approve` or `fail`).
    Authenticate(&'static str),
    Capture(Value),
    Cancel,
}

/// A client of one server with one API key.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    pub key: String,
}

/// What a request carries as its body.
enum Payload {
    None,
    Json(Value),
    Raw {
        content_type: Option<String>,
        bytes: Vec<u8>,
    },
}

/// A request being built: `api.call(Method::POST, "/v1/payments").json(..).send().await`.
pub struct Call<'a> {
    api: &'a Api,
    method: Method,
    path: String,
    payload: Payload,
    headers: Vec<(String, String)>,
    auth: bool,
}

impl Call<'_> {
    pub fn json(mut self, body: Value) -> Self {
        self.payload = Payload::Json(body);
        self
    }

    pub fn form(self, body: &str) -> Self {
        self.raw(Some("application/x-www-form-urlencoded"), body.as_bytes())
    }

    pub fn raw(mut self, content_type: Option<&str>, bytes: &[u8]) -> Self {
        self.payload = Payload::Raw {
            content_type: content_type.map(str::to_owned),
            bytes: bytes.to_vec(),
        };
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("Idempotency-Key", key)
    }

    /// Sends no `Authorization` header (add one by hand with [`Call::header`]).
    pub fn without_key(mut self) -> Self {
        self.auth = false;
        self
    }

    /// Sends the request; `Err` only when no HTTP answer came back.
    pub async fn try_send(self) -> Result<Reply, reqwest::Error> {
        let url = format!("{}{}", self.api.base, self.path);
        let mut request = self.api.http.request(self.method, url);
        if self.auth {
            request = request.bearer_auth(&self.api.key);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request = match self.payload {
            Payload::None => request,
            Payload::Json(body) => request.json(&body),
            Payload::Raw {
                content_type,
                bytes,
            } => {
                if let Some(content_type) = content_type {
                    request = request.header("content-type", content_type);
                }
                request.body(bytes)
            }
        };
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            text,
            json,
        })
    }

    pub async fn send(self) -> Reply {
        let what = format!("{} {}", self.method, self.path);
        self.try_send()
            .await
            .unwrap_or_else(|error| panic!("{what}: no HTTP answer: {error}"))
    }
}

/// A payment body with the required fields and `extra` merged in.
pub fn payment_body(amount: i64, extra: Value) -> Value {
    let mut body = json!({"amount": amount, "currency": "EUR", "returnUrl": RETURN_URL});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            body.insert(name.clone(), value.clone());
        }
    }
    body
}

/// The id of an object answered as JSON.
#[track_caller]
pub fn id_of(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {object}"))
        .to_owned()
}

impl Api {
    pub fn new(base: &str, key: &str) -> Api {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("an HTTP client");
        Api {
            http,
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call {
            api: self,
            method,
            path: path.to_owned(),
            payload: Payload::None,
            headers: Vec::new(),
            auth: true,
        }
    }

    /// `vinr_injected_faults_total{kind="<kind>"}` on the server's `/metrics` (0 when absent).
    pub async fn injected_faults(&self, kind: &str) -> u64 {
        let metrics = self
            .call(Method::GET, "/metrics")
            .without_key()
            .send()
            .await;
        let series = format!("vinr_injected_faults_total{{kind=\"{kind}\"}} ");
        metrics
            .text
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map_or(0, |value| value.trim().parse().expect("a counter value"))
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path).send().await
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path).json(body).send().await
    }

    pub async fn post_form(&self, path: &str, body: &str) -> Reply {
        self.call(Method::POST, path).form(body).send().await
    }

    /// `POST /v1/payments` with `body` and an `Idempotency-Key` header.
    pub async fn create_with_key(&self, key: &str, body: Value) -> Reply {
        self.call(Method::POST, "/v1/payments")
            .json(body)
            .idempotency_key(key)
            .send()
            .await
    }

    /// `POST /v1/payments` with `body`, expecting 201; answers the payment.
    pub async fn create_payment(&self, body: Value) -> Value {
        self.post_json("/v1/payments", body)
            .await
            .expect_status(201)
            .clone()
    }

    /// A pending 1000 EUR payment (capture on approval).
    pub async fn new_payment(&self) -> Value {
        self.create_payment(payment_body(1000, json!({}))).await
    }

    /// A payment for 1000 EUR with `capture: false`, paid with an approved card: `authorized`.
    pub async fn authorized_payment(&self) -> Value {
        let payment = self
            .create_payment(payment_body(1000, json!({"capture": false})))
            .await;
        let paid = self.pay(&id_of(&payment), CARD_APPROVED).await;
        let paid = paid.expect_status(200);
        assert_eq!(paid["status"], "authorized");
        paid.clone()
    }

    /// A payment paid with an approved card: `completed`.
    pub async fn completed_payment(&self) -> Value {
        let payment = self.new_payment().await;
        let paid = self.pay(&id_of(&payment), CARD_APPROVED).await;
        let paid = paid.expect_status(200);
        assert_eq!(paid["status"], "completed");
        paid.clone()
    }

    pub async fn pay(&self, payment_id: &str, card: &str) -> Reply {
        self.post_json(
            &format!("/v1/test_helpers/payments/{payment_id}/pay"),
            json!({"card": card}),
        )
        .await
    }

    pub async fn authenticate(&self, payment_id: &str, outcome: &str) -> Reply {
        self.post_json(
            &format!("/v1/test_helpers/payments/{payment_id}/authenticate"),
            json!({"outcome": outcome}),
        )
        .await
    }

    pub async fn capture(&self, payment_id: &str, body: Value) -> Reply {
        self.post_json(&format!("/v1/payments/{payment_id}/capture"), body)
            .await
    }

    pub async fn cancel(&self, payment_id: &str) -> Reply {
        self.post_json(&format!("/v1/payments/{payment_id}/cancel"), json!({}))
            .await
    }

    /// The attempts of a webhook endpoint, oldest first.
    pub async fn webhook_attempts(&self, endpoint_id: &str) -> Vec<Value> {
        let mut attempts = self
            .list_all(&format!("/v1/webhooks/{endpoint_id}/deliveries"))
            .await;
        attempts.reverse();
        attempts
    }

    /// The attempts of a webhook endpoint once at least `count` are recorded (each is recorded
    /// just after the receiver answered it), oldest first; panics after `wait`.
    pub async fn recorded_webhook_attempts(
        &self,
        endpoint_id: &str,
        count: usize,
        wait: Duration,
    ) -> Vec<Value> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let listed = self.webhook_attempts(endpoint_id).await;
            if listed.len() >= count {
                return listed;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {count} attempts recorded",
                listed.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs `op` on the payment `payment_id`.
    pub async fn apply(&self, payment_id: &str, op: &Op) -> Reply {
        match op {
            Op::Pay(card) => self.pay(payment_id, card).await,
            Op::Authenticate(outcome) => self.authenticate(payment_id, outcome).await,
            Op::Capture(body) => self.capture(payment_id, body.clone()).await,
            Op::Cancel => self.cancel(payment_id).await,
        }
    }

    pub async fn payment(&self, payment_id: &str) -> Value {
        self.get(&format!("/v1/payments/{payment_id}"))
            .await
            .expect_status(200)
            .clone()
    }

    /// Every object of a list endpoint (`/v1/payments`, `/v1/events?type=…`), newest first,
    /// following `next_cursor` page by page.
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut objects = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => format!("{path}{separator}limit=100"),
                Some(id) => format!("{path}{separator}limit=100&starting_after={id}"),
            };
            let page = self.get(&url).await;
            let page = page.expect_status(200);
            let data = page["data"].as_array().expect("a data array");
            objects.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) if page["has_more"] == true => cursor = Some(next.to_owned()),
                _ => return objects,
            }
        }
    }

    pub async fn payments(&self) -> Vec<Value> {
        self.list_all("/v1/payments").await
    }

    pub async fn events(&self) -> Vec<Value> {
        self.list_all("/v1/events").await
    }

    /// Events about one object, newest first.
    pub async fn events_of(&self, object_id: &str) -> Vec<Value> {
        self.events()
            .await
            .into_iter()
            .filter(|event| event["data"]["object"]["id"] == object_id)
            .collect()
    }

    /// Everything this key can see (payments and events), to compare before and after a
    /// request that must change nothing.
    pub async fn state(&self) -> (Vec<Value>, Vec<Value>) {
        (self.payments().await, self.events().await)
    }

    /// Asserts the account's payments and events are exactly `before`.
    #[track_caller]
    pub fn assert_unchanged(
        &self,
        before: &(Vec<Value>, Vec<Value>),
        after: &(Vec<Value>, Vec<Value>),
        what: &str,
    ) {
        assert_eq!(
            before.0.len(),
            after.0.len(),
            "{what}: the payment count changed"
        );
        assert_eq!(before.0, after.0, "{what}: a payment changed");
        assert_eq!(
            before.1.len(),
            after.1.len(),
            "{what}: the event count changed"
        );
        assert_eq!(before.1, after.1, "{what}: an event changed");
    }

    /// As [`Api::assert_unchanged`], reading the state now.
    pub async fn expect_unchanged(&self, before: &(Vec<Value>, Vec<Value>), what: &str) {
        let after = self.state().await;
        self.assert_unchanged(before, &after, what);
    }
}

/// The first whitespace-separated word of `text` that starts with `prefix`.
pub fn word_with_prefix(text: &str, prefix: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| word.starts_with(prefix))
        .map(str::to_owned)
}

/// Pays `payment` through the hosted checkout with `card`, as a shopper's browser would.
pub async fn pay_at_checkout(payment: &Value, card: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    let url = payment["checkoutUrl"].as_str().expect("a checkoutUrl");
    let page = http.get(url).send().await.expect("the checkout page");
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a CSRF cookie")
        .to_owned();
    let text = page.text().await.expect("a page");
    let marker = "name=\"csrf\" value=\"";
    let start = text.find(marker).expect("a CSRF field") + marker.len();
    let csrf = &text[start..start + text[start..].find('"').expect("a quote")];
    let answer = http
        .post(format!("{url}/pay"))
        .header("cookie", cookie)
        .form(&[
            ("csrf", csrf),
            ("number", card),
            ("expiry", "12/30"),
            ("cvc", "123"),
            ("name", "Ada Lovelace"),
        ])
        .send()
        .await
        .expect("the payment answer");
    assert_eq!(answer.status(), 303, "paid and sent back to the shop");
}
