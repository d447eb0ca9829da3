//! A webhook receiver for tests: a real HTTP server on `127.0.0.1:0` that records every
//! request (headers, body, arrival time), answers as the test's plan says (status, delay,
//! `Retry-After`), and notes whether two requests for one `webhook-id` were ever open at once.
//! Signatures are checked with the official Standard Webhooks library (Python
//! `standardwebhooks`), not only with this server's own code: see [`verify_with_library`].

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A certificate authority made for one test, and a certificate for `localhost` it issued.
pub struct TestCa {
    /// The CA's certificate, PEM: what a client must trust.
    pub ca_pem: String,
    pub localhost_cert: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    pub localhost_key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let ca_key = rcgen::KeyPair::generate().expect("a CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "VINR test CA");
        let ca = ca_params.self_signed(&ca_key).expect("the CA certificate");
        let key = rcgen::KeyPair::generate().expect("a server key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("the localhost certificate");
        TestCa {
            ca_pem: ca.pem(),
            localhost_cert: cert.der().clone(),
            localhost_key: tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            )
            .into(),
        }
    }
}

/// Set to `1` to make a missing Python verifier a failure instead of a skip.
pub const REQUIRE_VERIFIER_VAR: &str = "VINR_REQUIRE_WEBHOOK_VERIFIER";

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub at: Instant,
    /// 1 for the first request with this `webhook-id`.
    pub nth: usize,
    /// The status the receiver answered.
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub delay: Duration,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn ok() -> Answer {
        Answer {
            status: 200,
            delay: Duration::ZERO,
            retry_after: None,
        }
    }

    pub fn status(status: u16) -> Answer {
        Answer {
            status,
            ..Answer::ok()
        }
    }
}

/// Decides the answer from the `webhook-id`, the request's number for that id (1-based) and
/// its number overall (0-based).
pub type Plan = Arc<dyn Fn(&str, usize, usize) -> Answer + Send + Sync>;

/// Decides the answer from the whole request (headers and body): a receiver that checks the
/// signature itself, as a merchant's does.
pub type Judge = Arc<dyn Fn(&Received) -> Answer + Send + Sync>;

struct Shared {
    plan: Mutex<Plan>,
    judge: Mutex<Option<Judge>>,
    received: Mutex<Vec<Received>>,
    per_id: Mutex<HashMap<String, usize>>,
    open: Mutex<HashMap<String, usize>>,
    overlaps: AtomicUsize,
    total: AtomicUsize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    /// Serves HTTPS (for `localhost`) rather than HTTP.
    tls: bool,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Instant::now();
    let id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let nth = {
        let mut per_id = shared.per_id.lock().expect("lock");
        let count = per_id.entry(id.clone()).or_default();
        *count += 1;
        *count
    };
    {
        let mut open = shared.open.lock().expect("lock");
        let count = open.entry(id.clone()).or_default();
        *count += 1;
        if *count > 1 {
            shared.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    let total = shared.total.fetch_add(1, Ordering::SeqCst);
    let plan = shared.plan.lock().expect("lock").clone();
    let judge = shared.judge.lock().expect("lock").clone();
    let mut received = Received {
        id: id.clone(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or("").to_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
        at,
        nth,
        status: 0,
    };
    let answer = match judge {
        Some(judge) => judge(&received),
        None => plan(&id, nth, total),
    };
    received.status = answer.status;
    shared.received.lock().expect("lock").push(received);
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    if let Some(count) = shared.open.lock().expect("lock").get_mut(&id) {
        *count -= 1;
    }
    let status = StatusCode::from_u16(answer.status).expect("a status");
    let mut response = (status, format!("answer {} for {id}", answer.status)).into_response();
    if let Some(retry_after) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", retry_after.parse().expect("a header value"));
    }
    response
}

impl Receiver {
    /// A receiver answering 200 to everything.
    pub async fn start() -> Receiver {
        Receiver::with_plan(Arc::new(|_, _, _| Answer::ok())).await
    }

    pub async fn with_plan(plan: Plan) -> Receiver {
        Receiver::on("127.0.0.1:0", plan).await
    }

    /// A receiver on `addr` (a fixed port to come back on after a restart).
    pub async fn on(addr: &str, plan: Plan) -> Receiver {
        let (listener, shared, router) = Receiver::bind(addr, plan).await;
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Receiver {
            addr,
            tls: false,
            shared,
            server,
        }
    }

    /// A receiver answering 200 over HTTPS with a certificate for `localhost` issued by `ca`.
    pub async fn https(ca: &TestCa) -> Receiver {
        let (listener, shared, router) =
            Receiver::bind("127.0.0.1:0", Arc::new(|_, _, _| Answer::ok())).await;
        let addr = listener.local_addr().expect("an address");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![ca.localhost_cert.clone()],
                ca.localhost_key.clone_key(),
            )
            .expect("the localhost certificate");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let server = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, router) = (acceptor.clone(), router.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends its handshake here.
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(stream),
                            hyper_util::service::TowerToHyperService::new(router),
                        )
                        .await;
                });
            }
        });
        Receiver {
            addr,
            tls: true,
            shared,
            server,
        }
    }

    async fn bind(addr: &str, plan: Plan) -> (tokio::net::TcpListener, Arc<Shared>, axum::Router) {
        let shared = Arc::new(Shared {
            plan: Mutex::new(plan),
            judge: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            per_id: Mutex::new(HashMap::new()),
            open: Mutex::new(HashMap::new()),
            overlaps: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the receiver binds");
        let router = axum::Router::new()
            .fallback(axum::routing::any(handle))
            .with_state(Arc::clone(&shared));
        (listener, shared, router)
    }

    pub fn url(&self) -> String {
        if self.tls {
            format!("https://localhost:{}/hooks", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}/hooks", self.addr.port())
        }
    }

    /// A receiver answering as `judge` says, from the whole request.
    pub async fn judging(judge: Judge) -> Receiver {
        let receiver = Receiver::start().await;
        *receiver.shared.judge.lock().expect("lock") = Some(judge);
        receiver
    }

    pub fn set_plan(&self, plan: Plan) {
        *self.shared.plan.lock().expect("lock") = plan;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }

    /// Times two requests for one `webhook-id` were open at the same time.
    pub fn overlaps(&self) -> usize {
        self.shared.overlaps.load(Ordering::SeqCst)
    }

    /// Waits until `done` holds for what was received, or panics after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            if Instant::now() > deadline {
                let ids: Vec<(&str, usize, u16)> = received
                    .iter()
                    .map(|r| (r.id.as_str(), r.nth, r.status))
                    .collect();
                panic!("timed out waiting for {what}; received {ids:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every id in `ids` was answered 2xx at least once.
    pub async fn wait_delivered(&self, ids: &[String], timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, "every event to be delivered", |received| {
            ids.iter().all(|id| {
                received
                    .iter()
                    .any(|r| &r.id == id && (200..300).contains(&r.status))
            })
        })
        .await
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

const VERIFY_SCRIPT: &str = r#"
import json, sys
try:
    from standardwebhooks import Webhook, WebhookVerificationError
except Exception as error:
    print("standardwebhooks is not importable: %s" % error)
    sys.exit(3)
data = json.load(open(sys.argv[1]))
verified = 0
for message in data["messages"]:
    hook = Webhook(message["secret"])
    payload = hook.verify(message["body"], message["headers"])
    assert payload["id"] == message["headers"]["webhook-id"], "webhook-id is the event id"
    try:
        hook.verify(message["body"] + " ", message["headers"])
    except WebhookVerificationError:
        pass
    else:
        raise SystemExit("a changed body verified")
    verified += 1
print("verified %d" % verified)
"#;

const VERIFY_EACH_SCRIPT: &str = r#"
import json, sys
try:
    from standardwebhooks import Webhook, WebhookVerificationError
except Exception as error:
    print("standardwebhooks is not importable: %s" % error)
    sys.exit(3)
data = json.load(open(sys.argv[1]))
results = []
for message in data["messages"]:
    try:
        Webhook(message["secret"]).verify(message["body"], message["headers"])
        results.append(True)
    except WebhookVerificationError:
        results.append(False)
print(json.dumps(results))
"#;

/// Runs `script` with the official `standardwebhooks` Python package over `messages`; answers
/// its standard output, or `None` when the package (or Python) is missing, unless
/// `VINR_REQUIRE_WEBHOOK_VERIFIER=1`, which makes that a failure. A script that fails fails
/// the test with `failure`.
fn run_verifier(script: &str, messages: &[(&str, &Received)], failure: &str) -> Option<String> {
    assert!(!messages.is_empty(), "nothing to verify");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("messages.json");
    let listed: Vec<Value> = messages
        .iter()
        .map(|(secret, received)| {
            json!({
                "secret": secret,
                "body": received.body,
                "headers": {
                    "webhook-id": received.header("webhook-id"),
                    "webhook-timestamp": received.header("webhook-timestamp"),
                    "webhook-signature": received.header("webhook-signature"),
                },
            })
        })
        .collect();
    std::fs::write(&path, json!({ "messages": listed }).to_string()).expect("written");
    let required = std::env::var(REQUIRE_VERIFIER_VAR).is_ok_and(|value| value == "1");
    let output = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output();
    let skip = |why: String| {
        assert!(
            !required,
            "{REQUIRE_VERIFIER_VAR}=1 but the Standard Webhooks verifier cannot run: {why}"
        );
        eprintln!(
            "not verifying with the standardwebhooks library: {why} \
             (python3 -m pip install standardwebhooks)"
        );
        None
    };
    let output = match output {
        Ok(output) => output,
        Err(error) => return skip(format!("python3 does not run: {error}")),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.code() == Some(3) {
        return skip(stdout.trim().to_owned());
    }
    assert!(
        output.status.success(),
        "{failure}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(stdout)
}

/// Whether each `(secret, request)` verifies with the official `standardwebhooks` Python
/// package (a wrong signature is an answer here, not a failure); `None` when the package (or
/// Python) is missing, unless `VINR_REQUIRE_WEBHOOK_VERIFIER=1`, which makes that a failure.
pub fn verify_each_with_library(messages: &[(&str, &Received)]) -> Option<Vec<bool>> {
    let stdout = run_verifier(VERIFY_EACH_SCRIPT, messages, "the verifier failed")?;
    let results: Vec<bool> = serde_json::from_str(stdout.trim()).expect("a JSON list");
    assert_eq!(results.len(), messages.len());
    Some(results)
}

/// Verifies each `(secret, request)` with the official `standardwebhooks` Python package.
/// Answers whether it ran; when the package (or Python) is missing it says why and answers
/// `false`, unless `VINR_REQUIRE_WEBHOOK_VERIFIER=1`, which makes that a failure.
pub fn verify_with_library(messages: &[(&str, &Received)]) -> bool {
    let Some(stdout) = run_verifier(
        VERIFY_SCRIPT,
        messages,
        "the standardwebhooks library refused a signature",
    ) else {
        return false;
    };
    assert_eq!(stdout.trim(), format!("verified {}", messages.len()));
    true
}
