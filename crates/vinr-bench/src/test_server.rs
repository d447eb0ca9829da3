//! A throwaway in-process stand-in for the vinr API, for tests only. It
//! implements just enough of the contract to check that the bench counts
//! requests correctly and reports failures: auth, idempotency keys, the
//! payment state machine used by `mixed`, and injected 500s or delays.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const KEY: &str = "test-key";

#[derive(Clone, Copy, Default)]
pub struct Options {
    /// Every n-th request (any route) answers 500; 0 = never.
    pub fail_every: u64,
    /// Added before answering each request.
    pub delay: Duration,
}

#[derive(Default)]
pub struct Counters {
    pub total: AtomicU64,
    pub healthz: AtomicU64,
    pub creates: AtomicU64,
    pub pays: AtomicU64,
    pub captures: AtomicU64,
    pub refunds: AtomicU64,
    pub gets: AtomicU64,
    /// `POST /v1/payment_intents`, the Stripe-compatible peer's create.
    pub peer_creates: AtomicU64,
    pub injected_failures: AtomicU64,
    /// Requests the real server would reject for a client bug (unknown id,
    /// wrong state, missing/duplicate idempotency key, bad auth).
    pub client_bugs: AtomicU64,
}

#[derive(Default)]
struct State {
    opts: Options,
    counters: Counters,
    next_id: AtomicU64,
    /// Payment id -> status.
    payments: Mutex<HashMap<String, &'static str>>,
    keys: Mutex<HashSet<String>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl TestServer {
    pub fn counters(&self) -> &Counters {
        &self.state.counters
    }

    pub fn payment_count(&self) -> usize {
        self.state.payments.lock().expect("test server lock").len()
    }
}

pub async fn start(opts: Options) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind test server");
    let addr = listener.local_addr().expect("test server address");
    let state = Arc::new(State {
        opts,
        ..State::default()
    });
    let accept_state = state.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = accept_state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(state.clone(), req));
                // Clients closing connections at the end of a run is normal.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    TestServer { addr, state }
}

fn reply(status: StatusCode, body: String) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    Ok(resp)
}

fn client_bug(
    state: &State,
    status: StatusCode,
    msg: &str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.counters.client_bugs.fetch_add(1, Ordering::Relaxed);
    reply(status, format!(r#"{{"error":"{msg}"}}"#))
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let c = &state.counters;
    let n = c.total.fetch_add(1, Ordering::Relaxed) + 1;
    if !state.opts.delay.is_zero() {
        tokio::time::sleep(state.opts.delay).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let authorized = req
        .headers()
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {KEY}").as_bytes());
    let form = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/x-www-form-urlencoded");
    let idem = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => c.healthz.fetch_add(1, Ordering::Relaxed),
        (&Method::POST, ["v1", "payments"]) => c.creates.fetch_add(1, Ordering::Relaxed),
        (&Method::POST, ["v1", "test_helpers", "payments", _, "pay"]) => {
            c.pays.fetch_add(1, Ordering::Relaxed)
        }
        (&Method::POST, ["v1", "payments", _, "capture"]) => {
            c.captures.fetch_add(1, Ordering::Relaxed)
        }
        (&Method::POST, ["v1", "refunds"]) => c.refunds.fetch_add(1, Ordering::Relaxed),
        (&Method::GET, ["v1", "payments", _]) => c.gets.fetch_add(1, Ordering::Relaxed),
        (&Method::POST, ["v1", "payment_intents"]) => {
            c.peer_creates.fetch_add(1, Ordering::Relaxed)
        }
        _ => return client_bug(&state, StatusCode::NOT_FOUND, "no such route"),
    };
    if state.opts.fail_every > 0 && n % state.opts.fail_every == 0 {
        c.injected_failures.fetch_add(1, Ordering::Relaxed);
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"injected"}"#.to_owned(),
        );
    }
    if segments[0] == "healthz" {
        return reply(StatusCode::OK, r#"{"status":"ok"}"#.to_owned());
    }
    if !authorized {
        return client_bug(&state, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    if method == Method::POST {
        let Some(key) = idem else {
            return client_bug(&state, StatusCode::BAD_REQUEST, "missing idempotency key");
        };
        if !state.keys.lock().expect("test server lock").insert(key) {
            return client_bug(&state, StatusCode::CONFLICT, "reused idempotency key");
        }
    }
    let mut payments = state.payments.lock().expect("test server lock");
    match (&method, segments.as_slice()) {
        (&Method::POST, ["v1", "payments"]) => {
            let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return client_bug(&state, StatusCode::BAD_REQUEST, "bad json");
            };
            let id = format!("pay_{}", state.next_id.fetch_add(1, Ordering::Relaxed));
            let manual = json.get("capture") == Some(&serde_json::Value::Bool(false));
            payments.insert(
                id.clone(),
                if manual {
                    "requires_payment_method_manual"
                } else {
                    "requires_payment_method"
                },
            );
            reply(
                StatusCode::CREATED,
                format!(
                    r#"{{"id":"{id}","object":"payment","amount":1000,"customer":{{"id":"cus_1"}}}}"#
                ),
            )
        }
        (&Method::POST, ["v1", "test_helpers", "payments", id, "pay"]) => {
            match payments.get_mut(*id) {
                Some(status) if *status == "requires_payment_method_manual" => {
                    *status = "authorized";
                    reply(StatusCode::OK, "{}".to_owned())
                }
                Some(status) if *status == "requires_payment_method" => {
                    *status = "succeeded";
                    reply(StatusCode::OK, "{}".to_owned())
                }
                Some(_) => client_bug(&state, StatusCode::CONFLICT, "not payable"),
                None => client_bug(&state, StatusCode::NOT_FOUND, "no such payment"),
            }
        }
        (&Method::POST, ["v1", "payments", id, "capture"]) => match payments.get_mut(*id) {
            Some(status) if *status == "authorized" => {
                *status = "succeeded";
                reply(StatusCode::OK, "{}".to_owned())
            }
            Some(_) => client_bug(&state, StatusCode::CONFLICT, "not capturable"),
            None => client_bug(&state, StatusCode::NOT_FOUND, "no such payment"),
        },
        (&Method::POST, ["v1", "refunds"]) => {
            let id = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|json| json.get("payment")?.as_str().map(str::to_owned));
            match id.as_deref().and_then(|id| payments.get(id)) {
                Some(status) if *status == "succeeded" => reply(
                    StatusCode::CREATED,
                    r#"{"id":"re_1","object":"refund","status":"pending"}"#.to_owned(),
                ),
                Some(_) => client_bug(&state, StatusCode::CONFLICT, "not refundable"),
                None => client_bug(&state, StatusCode::NOT_FOUND, "no such payment"),
            }
        }
        (&Method::POST, ["v1", "payment_intents"]) => {
            if !form || body.as_ref() != b"amount=1000&currency=eur&payment_method_types%5B%5D=card"
            {
                return client_bug(&state, StatusCode::BAD_REQUEST, "not the form body");
            }
            let id = state.next_id.fetch_add(1, Ordering::Relaxed);
            reply(
                StatusCode::OK,
                format!(r#"{{"id":"pi_{id}","object":"payment_intent","amount":1000}}"#),
            )
        }
        (&Method::GET, ["v1", "payments", id]) => match payments.get(*id) {
            Some(status) => reply(
                StatusCode::OK,
                format!(r#"{{"id":"{id}","status":"{status}"}}"#),
            ),
            None => client_bug(&state, StatusCode::NOT_FOUND, "no such payment"),
        },
        _ => client_bug(&state, StatusCode::NOT_FOUND, "no such route"),
    }
}
