//! The `webhooks` scenario (SPEC §9: commit to first delivery attempt p99 ≤ 250 ms, ≥ 5 000
//! deliveries/s to a local receiver).
//!
//! An in-process receiver (hyper, HTTP/1.1 keep-alive, answers 200 at once) is registered as a
//! webhook endpoint for `payment.created`; then payments are created, closed loop or at a fixed
//! rate, and for each one the time its create was answered (the commit: a 2xx means the change
//! and its event are durable) is paired with the arrival of its first delivery attempt. The
//! report gives that lag's distribution and deliveries per second. Lag is measured on this
//! process's monotonic clock at both ends, so no clock skew enters it; a delivery that arrives
//! before the create's answer has been read counts as 0.
//!
//! With creation and delivery sharing the machine, the first phase's deliveries per second can
//! be no more than the creates per second. A second phase measures delivery alone: the receiver
//! holds every request (the server's in-flight limit is reached and the rest queue up in the
//! database) while `--prepare` payments are created, then answers everything, and the time to
//! drain that backlog gives deliveries per second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::{Conn, Target};
use crate::load::LoadConfig;
use crate::report::{format_us, micros};
use crate::scenario::{payment_id, RunId, SETUP_TIMEOUT};

/// How long after the load stops deliveries may still arrive before they count as missing.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// First arrivals by payment id, and every request counted.
struct Arrivals {
    first: Mutex<HashMap<String, Instant>>,
    requests: AtomicU64,
    /// While `false`, requests are held unanswered.
    open: tokio::sync::watch::Sender<bool>,
}

impl Arrivals {
    fn new() -> Arrivals {
        Arrivals {
            first: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            open: tokio::sync::watch::Sender::new(true),
        }
    }

    /// How many of `ids` have arrived, and the last arrival among them.
    fn arrived(&self, ids: &[(String, Instant)]) -> (usize, Option<Instant>) {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner());
        let mut count = 0;
        let mut last = None;
        for (id, _) in ids {
            if let Some(at) = first.get(id) {
                count += 1;
                last = last.max(Some(*at));
            }
        }
        (count, last)
    }

    async fn wait_for(&self, ids: &[(String, Instant)]) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.arrived(ids).0 < ids.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The payment id of a `payment.created` event: `"data":{"object":{"id":"pay_…"`.
pub fn event_payment_id(body: &[u8]) -> Option<String> {
    const MARK: &[u8] = b"\"object\":{\"id\":\"";
    let start = body.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let rest = &body[start..];
    let end = rest.iter().position(|&b| b == b'"')?;
    let id = std::str::from_utf8(&rest[..end]).ok()?;
    id.starts_with("pay_").then(|| id.to_owned())
}

async fn receive(
    arrivals: Arc<Arrivals>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let at = Instant::now();
    let body = request.into_body().collect().await?.to_bytes();
    arrivals.requests.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = event_payment_id(&body) {
        let mut first = arrivals.first.lock().unwrap_or_else(|e| e.into_inner());
        first.entry(id).or_insert(at);
    }
    let mut open = arrivals.open.subscribe();
    let _ = open.wait_for(|open| *open).await;
    Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
}

/// Starts the receiver on 127.0.0.1:0.
async fn start_receiver(arrivals: Arc<Arrivals>) -> Result<SocketAddr, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot start the webhook receiver: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request| receive(arrivals.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// Registers the receiver as an endpoint for `payment.created`; answers its id.
async fn register(target: &Target, receiver: SocketAddr) -> Result<String, String> {
    let uri = target.uri("/v1/webhooks").map_err(|f| f.to_string())?;
    let body = format!(
        r#"{{"url":"http://127.0.0.1:{}/hooks","events":["payment.created"],"description":"vinr-bench"}}"#,
        receiver.port()
    );
    let mut conn = Conn::new(target.addr);
    let response = conn
        .send(
            target.request(Method::POST, uri, Some(Bytes::from(body)), None),
            true,
            Instant::now() + SETUP_TIMEOUT,
        )
        .await
        .map_err(|f| format!("cannot register the webhook endpoint: {f}"))?;
    let endpoint: serde_json::Value = serde_json::from_slice(&response.body)
        .map_err(|e| format!("the webhook endpoint answer is not JSON: {e}"))?;
    endpoint["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "the webhook endpoint answer has no id".to_owned())
}

/// Deletes the endpoint, so a later run's events are not queued for this run's receiver.
async fn unregister(target: &Target, endpoint: &str) -> Result<(), String> {
    let uri = target
        .uri(&format!("/v1/webhooks/{endpoint}"))
        .map_err(|f| f.to_string())?;
    Conn::new(target.addr)
        .send(
            target.request(Method::DELETE, uri, None, None),
            false,
            Instant::now() + SETUP_TIMEOUT,
        )
        .await
        .map(drop)
        .map_err(|f| format!("cannot delete the webhook endpoint {endpoint}: {f}"))
}

const CREATE_BODY: &[u8] =
    br#"{"amount":1000,"currency":"EUR","returnUrl":"https://example.com/return"}"#;

/// Payments created (id, when the create was answered), and failed creates.
struct Created {
    answered: Vec<(String, Instant)>,
    failures: u64,
    example: Option<String>,
}

/// Creates `count` payments, closed loop; answers them with when they were answered.
async fn create_backlog(
    target: Arc<Target>,
    run: &RunId,
    cfg: &LoadConfig,
    count: usize,
) -> Vec<(String, Instant)> {
    let left = Arc::new(AtomicU64::new(count as u64));
    let created = create_load(target, run, cfg, Instant::now(), Some(left), "b").await;
    created.answered
}

async fn create_load(
    target: Arc<Target>,
    run: &RunId,
    cfg: &LoadConfig,
    start: Instant,
    left: Option<Arc<AtomicU64>>,
    tag: &str,
) -> Created {
    let end = start + cfg.duration;
    let mut tasks = JoinSet::new();
    // Fixed rate: each connection sends every `connections / rate` seconds.
    let interval = cfg
        .rate
        .map(|rate| Duration::from_secs_f64(cfg.connections as f64 / rate));
    let connections = cfg.connections;
    for vu in 0..connections {
        let target = target.clone();
        let prefix = format!("{}-w{tag}{vu}", run.prefix);
        let left = left.clone();
        tasks.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let _ = conn.connect().await;
            let mut created = Created {
                answered: Vec::new(),
                failures: 0,
                example: None,
            };
            let Ok(uri) = target.uri("/v1/payments") else {
                return created;
            };
            // Spread the connections' first sends over one interval.
            let mut next = start
                + interval.map_or(Duration::ZERO, |i| {
                    i.mul_f64(vu as f64 / connections as f64)
                });
            let mut n = 0u64;
            loop {
                if let Some(interval) = interval {
                    if next > Instant::now() {
                        tokio::time::sleep_until(next).await;
                    }
                    next += interval;
                }
                if Instant::now() >= end {
                    return created;
                }
                if let Some(left) = &left {
                    let taken = left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                    if taken.is_err() {
                        return created;
                    }
                }
                n += 1;
                let key = HeaderValue::try_from(format!("{prefix}-{n}"))
                    .unwrap_or(HeaderValue::from_static("vinr-bench"));
                let request = target.request(
                    Method::POST,
                    uri.clone(),
                    Some(Bytes::from_static(CREATE_BODY)),
                    Some(key),
                );
                let result = conn
                    .send(request, true, Instant::now() + SETUP_TIMEOUT)
                    .await;
                let answered_at = Instant::now();
                match result.and_then(|response| payment_id(&response.body)) {
                    Ok(id) => created.answered.push((id, answered_at)),
                    Err(failure) => {
                        created.failures += 1;
                        created.example.get_or_insert_with(|| failure.to_string());
                    }
                }
            }
        });
    }
    let mut all = Created {
        answered: Vec::new(),
        failures: 0,
        example: None,
    };
    while let Some(joined) = tasks.join_next().await {
        if let Ok(created) = joined {
            all.answered.extend(created.answered);
            all.failures += created.failures;
            if all.example.is_none() {
                all.example = created.example;
            }
        }
    }
    all
}

/// Runs the scenario and prints its report; `Ok(true)` when every create succeeded and every
/// payment's delivery arrived.
pub async fn run(
    target: Arc<Target>,
    run: &RunId,
    cfg: &LoadConfig,
    backlog: usize,
) -> Result<bool, String> {
    let arrivals = Arc::new(Arrivals::new());
    let receiver = start_receiver(arrivals.clone()).await?;
    let endpoint = register(&target, receiver).await?;
    eprintln!(
        "vinr-bench: webhooks: receiver on {receiver}; creating payments for {}s on {} connections{}",
        cfg.duration.as_secs_f64(),
        cfg.connections,
        cfg.rate.map_or_else(String::new, |r| format!(" at {r}/s"))
    );
    let start = Instant::now();
    let created = create_load(target.clone(), run, cfg, start, None, "w").await;
    let load_end = Instant::now();
    // Wait for the stragglers.
    let wanted = created.answered.len();
    arrivals.wait_for(&created.answered).await;
    // Phase 2: a backlog, then delivery alone.
    let (queued, held, drained, drain_s) = if backlog == 0 {
        (Vec::new(), 0, 0, 0.0)
    } else {
        eprintln!(
            "vinr-bench: webhooks: holding the receiver, creating a backlog of {backlog} payments"
        );
        arrivals.open.send_replace(false);
        let backlog_cfg = LoadConfig {
            rate: None,
            duration: Duration::from_secs(3600),
            ..cfg.clone()
        };
        let queued = create_backlog(target.clone(), run, &backlog_cfg, backlog).await;
        let held = arrivals.arrived(&queued).0;
        let released = Instant::now();
        arrivals.open.send_replace(true);
        arrivals.wait_for(&queued).await;
        let (drained, last) = arrivals.arrived(&queued);
        let drain_s = last
            .map_or(Duration::ZERO, |last| {
                last.saturating_duration_since(released)
            })
            .as_secs_f64()
            .max(1e-3);
        (queued, held, drained, drain_s)
    };
    unregister(&target, &endpoint).await?;
    let first = arrivals.first.lock().unwrap_or_else(|e| e.into_inner());
    let mut lag = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)
        .map_err(|e| format!("histogram: {e}"))?;
    let mut missing = 0u64;
    let mut early = 0u64;
    let mut last_arrival = start;
    for (id, answered_at) in &created.answered {
        match first.get(id) {
            Some(arrived) => {
                last_arrival = last_arrival.max(*arrived);
                if arrived < answered_at {
                    early += 1;
                }
                let us = micros(arrived.saturating_duration_since(*answered_at)).max(1);
                let _ = lag.record(us.min(120_000_000));
            }
            None => missing += 1,
        }
    }
    let delivered = lag.len();
    let load_s = (load_end - start).as_secs_f64();
    let through_last_s = (last_arrival - start).as_secs_f64().max(load_s);
    let q = |quantile: f64| format_us(lag.value_at_quantile(quantile));
    println!(
        "scenario webhooks ({})",
        match cfg.rate {
            Some(rate) => format!(
                "fixed arrival rate {rate}/s, {} connections",
                cfg.connections
            ),
            None => format!("closed loop, {} connections", cfg.connections),
        }
    );
    println!(
        "  payments created  {wanted} in {load_s:.1}s = {:.0}/s ({} failed{})",
        wanted as f64 / load_s,
        created.failures,
        created
            .example
            .as_deref()
            .map_or_else(String::new, |e| format!(", e.g. {e}"))
    );
    println!(
        "  first attempts    {delivered} arrived, {missing} missing after {}s; \
         {:.0}/s from the first create to the last arrival ({:.1}s); {} requests in all",
        DRAIN_TIMEOUT.as_secs(),
        delivered as f64 / through_last_s,
        through_last_s,
        arrivals.requests.load(Ordering::Relaxed)
    );
    if !queued.is_empty() {
        println!(
            "  backlog           {} payments queued while the receiver held {held} requests; \
         the other {} arrived in {drain_s:.2}s after it answered = {:.0} deliveries/s{}",
            queued.len(),
            drained.saturating_sub(held),
            drained.saturating_sub(held) as f64 / drain_s,
            if drained < queued.len() {
                format!(" ({} missing)", queued.len() - drained)
            } else {
                String::new()
            }
        );
    }
    println!(
        "  commit -> first attempt  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  \
         ({early} arrived before the create's answer was read: counted as 0)",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        format_us(lag.max())
    );
    Ok(created.failures == 0 && missing == 0 && drained == queued.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_payment_of_an_event() {
        let body = br#"{"id":"evt_1","object":"event","type":"payment.created","created_at":"x","livemode":false,"data":{"object":{"id":"pay_abc","object":"payment"}}}"#;
        assert_eq!(event_payment_id(body).as_deref(), Some("pay_abc"));
        assert_eq!(
            event_payment_id(br#"{"data":{"object":{"id":"re_1"}}}"#),
            None
        );
        assert_eq!(event_payment_id(b"{}"), None);
    }
}
