//! localstripe for the connector tests (`connectors.rs`, `browser.rs`): a Stripe emulator
//! process on a free port, read with its own API, and `[processors]` settings pointing at it.
//! Included with `#[path]` by the test binaries that need it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpStream;
use vinr_server::connectors::config::{ConnectorSettings, ProcessorConfig, RoutingConfig};

pub const REQUIRE_VAR: &str = "VINR_REQUIRE_LOCALSTRIPE";
pub const KEY_VAR: &str = "VINR_TEST_STRIPE_KEY";
/// localstripe takes any key starting `sk_`; this one is neither a test nor a live key, so it
/// may be routed in either mode (SPEC §15: only a clear mismatch is refused).
pub const STRIPE_KEY: &str = "sk_localstripe";
pub const CARD_CHARGE_DECLINED: &str = "4000000000000341";
pub const CARD_STRIPE_3DS: &str = "4000002760003184";

pub fn localstripe_bin() -> Option<String> {
    if let Ok(bin) = std::env::var("VINR_LOCALSTRIPE_BIN") {
        return Some(bin);
    }
    let on_path = Command::new("localstripe")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Some("localstripe".into());
    }
    let cache = std::env::var("VINR_BENCH_CACHE").unwrap_or_else(|_| {
        let home = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap_or_default()));
        format!("{home}/vinr-bench")
    });
    let venv = format!("{cache}/localstripe-1.15.10/bin/localstripe");
    std::path::Path::new(&venv).exists().then_some(venv)
}

pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A localstripe process on a free port, killed on drop.
pub struct LocalStripe {
    child: Child,
    pub base: String,
    http: reqwest::Client,
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LocalStripe {
    /// Starts localstripe, or says why it cannot (and fails under `VINR_REQUIRE_LOCALSTRIPE`).
    pub async fn start() -> Option<LocalStripe> {
        let Some(bin) = localstripe_bin() else {
            let reason = "localstripe is not installed (pip install localstripe==1.15.10, or \
                          set VINR_LOCALSTRIPE_BIN)";
            if std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1") {
                panic!("{REQUIRE_VAR}=1 but {reason}");
            }
            eprintln!("skipped: {reason}");
            return None;
        };
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("{bin} starts: {error}"));
        let stripe = LocalStripe {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "localstripe did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(stripe)
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(STRIPE_KEY)
            .send()
            .await
            .expect("localstripe answers")
            .json()
            .await
            .expect("JSON")
    }

    /// The PaymentIntents made for our payment `payment_id`.
    pub async fn intents_of(&self, payment_id: &str) -> Vec<Value> {
        let list = self.get("/v1/payment_intents?limit=100").await;
        list["data"]
            .as_array()
            .expect("a list")
            .iter()
            .filter(|pi| pi["metadata"]["vinr_payment"] == payment_id)
            .cloned()
            .collect()
    }

    pub async fn only_intent_of(&self, payment_id: &str) -> Value {
        let intents = self.intents_of(payment_id).await;
        assert_eq!(
            intents.len(),
            1,
            "one PaymentIntent for {payment_id}: {intents:?}"
        );
        intents.into_iter().next().expect("one")
    }

    /// The shopper authenticating with the bank (localstripe's stand-in for Stripe.js).
    pub async fn authenticate(&self, intent: &Value, success: bool) {
        let id = intent["id"].as_str().expect("an id");
        let secret = intent["client_secret"].as_str().expect("a client secret");
        let answer = self
            .http
            .post(format!(
                "{}/v1/payment_intents/{id}/_authenticate",
                self.base
            ))
            .form(&[
                ("key", "pk_test_localstripe"),
                ("client_secret", secret),
                ("success", &success.to_string()),
            ])
            .send()
            .await
            .expect("localstripe answers");
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
    }
}

pub fn stripe_processor(api_base: &str, timeout_ms: u64) -> ProcessorConfig {
    ProcessorConfig {
        kind: "stripe".into(),
        api_base: api_base.into(),
        secret_key_env: KEY_VAR.into(),
        timeout_ms: Some(timeout_ms),
        // localstripe 1.15.10 answers 400 to a confirm with `return_url`.
        send_return_url: Some(false),
    }
}

pub fn connectors(
    processors: &[(&str, ProcessorConfig)],
    routing: RoutingConfig,
) -> ConnectorSettings {
    let processors: BTreeMap<String, ProcessorConfig> = processors
        .iter()
        .map(|(name, config)| ((*name).to_owned(), config.clone()))
        .collect();
    ConnectorSettings::with_env(&processors, &routing, |name| {
        (name == KEY_VAR).then(|| STRIPE_KEY.to_owned())
    })
    .expect("valid connector settings")
}
