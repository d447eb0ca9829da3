//! What each virtual user sends: the scenarios, their prebuilt requests, the
//! per-user state machine for `mixed`, and the `get` preparation phase.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Uri};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::{Body, Conn, ErrorKind, Failure, Response, Target};

/// Request bodies are fixed, so build them once and share them.
const CREATE_BODY: &[u8] =
    br#"{"amount":1000,"currency":"EUR","returnUrl":"https://example.com/return"}"#;
const CREATE_MANUAL_BODY: &[u8] =
    br#"{"amount":1000,"currency":"EUR","returnUrl":"https://example.com/return","capture":false}"#;
const PAY_BODY: &[u8] = br#"{"card":"4242424242424242"}"#;
const EMPTY_OBJECT: &[u8] = b"{}";
/// A Stripe-compatible peer's create (localstripe): form-encoded, as Stripe's API takes it.
const PEER_CREATE_BODY: &[u8] = b"amount=1000&currency=eur&payment_method_types%5B%5D=card";
const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");

/// Per-request deadline outside the timed loops (preflight, preparation).
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// GET /healthz: the baseline for the server's HTTP stack.
    Healthz,
    /// POST /v1/payments with a fresh Idempotency-Key each time.
    Create,
    /// GET /v1/payments/{id} over `--prepare` pre-created payments.
    Get,
    /// create (manual capture) -> pay -> capture -> refund -> get; each request is one op.
    Mixed,
    /// healthz, create, get, mixed in turn, compared with healthz.
    Suite,
    /// Creates payments with an in-process webhook receiver registered: commit to first
    /// delivery attempt latency and deliveries per second (not part of `suite`).
    Webhooks,
    /// POST /v1/payment_intents on the Stripe-compatible peer at `--peer` (localstripe).
    PeerCreate,
    /// healthz and create on `--url`, then peer-create on `--peer`, compared with our healthz.
    Peer,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Healthz => "healthz",
            Scenario::Create => "create",
            Scenario::Get => "get",
            Scenario::Mixed => "mixed",
            Scenario::Suite => "suite",
            Scenario::Webhooks => "webhooks",
            Scenario::PeerCreate => "peer-create",
            Scenario::Peer => "peer",
        }
    }

    /// The scenarios this one runs, in order.
    pub fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::Suite => vec![
                Scenario::Healthz,
                Scenario::Create,
                Scenario::Get,
                Scenario::Mixed,
            ],
            Scenario::Peer => vec![Scenario::Healthz, Scenario::Create, Scenario::PeerCreate],
            other => vec![other],
        }
    }

    /// Whether this (expanded) scenario is a comparison whose summary table is printed.
    pub fn is_group(self) -> bool {
        matches!(self, Scenario::Suite | Scenario::Peer)
    }

    /// Whether it needs our API key (the peer has its own, `--peer-key`).
    pub fn needs_key(self) -> bool {
        !matches!(self, Scenario::Healthz | Scenario::PeerCreate)
    }

    /// Whether it is sent to `--peer` rather than to `--url`.
    pub fn on_peer(self) -> bool {
        self == Scenario::PeerCreate
    }
}

/// The kind of a single HTTP request, for per-op latency and error breakdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Healthz,
    Create,
    Pay,
    Capture,
    Refund,
    Get,
    PeerCreate,
}

impl OpKind {
    pub const COUNT: usize = 7;
    pub const ALL: [OpKind; OpKind::COUNT] = [
        OpKind::Healthz,
        OpKind::Create,
        OpKind::Pay,
        OpKind::Capture,
        OpKind::Refund,
        OpKind::Get,
        OpKind::PeerCreate,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Healthz => "healthz",
            OpKind::Create => "create",
            OpKind::Pay => "pay",
            OpKind::Capture => "capture",
            OpKind::Refund => "refund",
            OpKind::Get => "get",
            OpKind::PeerCreate => "peer-create",
        }
    }
}

/// One request ready to send.
pub struct Op {
    pub kind: OpKind,
    pub req: hyper::Request<Body>,
    /// Whether the caller needs the response body (only to read a new id).
    pub keep_body: bool,
}

/// Per-run identity: a prefix for idempotency keys that differs between runs
/// (so reruns against the same database never collide) and an RNG seed.
#[derive(Clone, Debug)]
pub struct RunId {
    pub prefix: String,
    pub seed: u64,
}

impl RunId {
    pub fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        // Truncation is fine: only the changing low bits matter here.
        let seed = nanos as u64;
        Self {
            prefix: format!("vb{seed:x}"),
            seed,
        }
    }
}

enum Kind {
    Healthz,
    Create,
    Get(Arc<[Uri]>),
    Mixed,
    PeerCreate,
}

/// Everything a scenario needs that is shared by all virtual users.
pub struct Workload {
    kind: Kind,
    target: Arc<Target>,
    /// Run prefix plus a per-workload tag, so the same user number and
    /// counter in two scenarios of one run still give different keys.
    key_prefix: String,
    healthz: Uri,
    payments: Uri,
    create_body: Bytes,
    create_manual_body: Bytes,
    pay_body: Bytes,
    empty_body: Bytes,
}

/// Per-virtual-user mutable state.
pub struct VuState {
    vu: usize,
    counter: u64,
    rng: u64,
    mixed: MixedStep,
}

/// Where a virtual user is in the create -> pay -> capture -> refund -> get chain.
enum MixedStep {
    Create,
    Pay(String),
    Capture(String),
    Refund(String),
    Get(String),
}

impl VuState {
    pub fn new(vu: usize, seed: u64) -> Self {
        // Spread seeds so users do not walk the same random sequence; xorshift
        // must not start at zero.
        let rng = (seed ^ (vu as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
        Self {
            vu,
            counter: 0,
            rng,
            mixed: MixedStep::Create,
        }
    }

    /// xorshift64*: plenty for picking ids, and avoids a `rand` dependency.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

impl Workload {
    fn new(kind: Kind, target: Arc<Target>, run: &RunId, tag: &str) -> Result<Self, String> {
        let healthz = target.uri("/healthz").map_err(|f| f.to_string())?;
        let payments = target.uri("/v1/payments").map_err(|f| f.to_string())?;
        Ok(Self {
            kind,
            target,
            key_prefix: format!("{}-{tag}", run.prefix),
            healthz,
            payments,
            create_body: Bytes::from_static(CREATE_BODY),
            create_manual_body: Bytes::from_static(CREATE_MANUAL_BODY),
            pay_body: Bytes::from_static(PAY_BODY),
            empty_body: Bytes::from_static(EMPTY_OBJECT),
        })
    }

    pub fn healthz(target: Arc<Target>, run: &RunId) -> Result<Self, String> {
        Self::new(Kind::Healthz, target, run, "h")
    }

    /// Plain creates; `tag` keeps keys of different phases apart.
    pub fn create(target: Arc<Target>, run: &RunId, tag: &str) -> Result<Self, String> {
        Self::new(Kind::Create, target, run, tag)
    }

    pub fn mixed(target: Arc<Target>, run: &RunId) -> Result<Self, String> {
        Self::new(Kind::Mixed, target, run, "m")
    }

    /// `get` over already created payments (see [`prepare_payments`]).
    pub fn get(target: Arc<Target>, run: &RunId, uris: Vec<Uri>) -> Result<Self, String> {
        if uris.is_empty() {
            return Err("get scenario needs at least one prepared payment".to_owned());
        }
        Self::new(Kind::Get(uris.into()), target, run, "g")
    }

    /// Creates on a Stripe-compatible peer; `target` is the peer's, `tag` as for [`Self::create`].
    pub fn peer_create(target: Arc<Target>, run: &RunId, tag: &str) -> Result<Self, String> {
        let mut workload = Self::new(Kind::PeerCreate, target, run, tag)?;
        workload.payments = workload
            .target
            .uri("/v1/payment_intents")
            .map_err(|f| f.to_string())?;
        workload.create_body = Bytes::from_static(PEER_CREATE_BODY);
        Ok(workload)
    }

    /// The next request for this virtual user. Building it can only fail for
    /// an id the server sent us; then the `mixed` chain restarts.
    pub fn next_op(&self, st: &mut VuState) -> Result<Op, (OpKind, Failure)> {
        self.build_op(st).map_err(|(kind, f)| {
            st.mixed = MixedStep::Create;
            (kind, f)
        })
    }

    fn build_op(&self, st: &mut VuState) -> Result<Op, (OpKind, Failure)> {
        let op = match &self.kind {
            Kind::Healthz => Op {
                kind: OpKind::Healthz,
                req: self.get_req(self.healthz.clone()),
                keep_body: false,
            },
            Kind::Create => Op {
                kind: OpKind::Create,
                req: self.post(st, self.payments.clone(), &self.create_body),
                keep_body: false,
            },
            Kind::PeerCreate => {
                // With an Idempotency-Key too, as a Stripe client sends one and ours must.
                let mut req = self.post(st, self.payments.clone(), &self.create_body);
                req.headers_mut().insert(CONTENT_TYPE, FORM);
                Op {
                    kind: OpKind::PeerCreate,
                    req,
                    keep_body: false,
                }
            }
            Kind::Get(uris) => {
                // Modulo bias is irrelevant for spreading reads.
                let i = (st.next_random() % uris.len() as u64) as usize;
                Op {
                    kind: OpKind::Get,
                    req: self.get_req(uris[i].clone()),
                    keep_body: false,
                }
            }
            Kind::Mixed => match &st.mixed {
                MixedStep::Create => Op {
                    kind: OpKind::Create,
                    req: self.post(st, self.payments.clone(), &self.create_manual_body),
                    keep_body: true,
                },
                MixedStep::Pay(id) => {
                    let uri = self
                        .target
                        .uri(&format!("/v1/test_helpers/payments/{id}/pay"))
                        .map_err(|f| (OpKind::Pay, f))?;
                    Op {
                        kind: OpKind::Pay,
                        req: self.post(st, uri, &self.pay_body),
                        keep_body: false,
                    }
                }
                MixedStep::Capture(id) => {
                    let uri = self
                        .target
                        .uri(&format!("/v1/payments/{id}/capture"))
                        .map_err(|f| (OpKind::Capture, f))?;
                    Op {
                        kind: OpKind::Capture,
                        req: self.post(st, uri, &self.empty_body),
                        keep_body: false,
                    }
                }
                MixedStep::Refund(id) => {
                    let uri = self
                        .target
                        .uri("/v1/refunds")
                        .map_err(|f| (OpKind::Refund, f))?;
                    // A partial refund, so the payment stays refundable for nothing else.
                    let body = Bytes::from(format!(r#"{{"payment":"{id}","amount":300}}"#));
                    Op {
                        kind: OpKind::Refund,
                        req: self.post(st, uri, &body),
                        keep_body: false,
                    }
                }
                MixedStep::Get(id) => {
                    let uri = self
                        .target
                        .uri(&format!("/v1/payments/{id}"))
                        .map_err(|f| (OpKind::Get, f))?;
                    Op {
                        kind: OpKind::Get,
                        req: self.get_req(uri),
                        keep_body: false,
                    }
                }
            },
        };
        Ok(op)
    }

    /// Feeds a result back: advances the `mixed` chain and turns a 2xx with
    /// an unusable body into a failure. Any failure restarts the chain.
    pub fn on_result(
        &self,
        st: &mut VuState,
        result: Result<Response, Failure>,
    ) -> Result<(), Failure> {
        let resp = match result {
            Ok(resp) => resp,
            Err(failure) => {
                st.mixed = MixedStep::Create;
                return Err(failure);
            }
        };
        if let Kind::Mixed = self.kind {
            st.mixed = match std::mem::replace(&mut st.mixed, MixedStep::Create) {
                MixedStep::Create => MixedStep::Pay(payment_id(&resp.body)?),
                MixedStep::Pay(id) => MixedStep::Capture(id),
                MixedStep::Capture(id) => MixedStep::Refund(id),
                MixedStep::Refund(id) => MixedStep::Get(id),
                MixedStep::Get(_) => MixedStep::Create,
            };
        }
        Ok(())
    }

    fn get_req(&self, uri: Uri) -> hyper::Request<Body> {
        self.target.request(Method::GET, uri, None, None)
    }

    /// Every POST carries a fresh Idempotency-Key: required for creates, and
    /// harmless (but future-proof) for pay/capture.
    fn post(&self, st: &mut VuState, uri: Uri, body: &Bytes) -> hyper::Request<Body> {
        st.counter += 1;
        let key = format!("{}-{}-{}", self.key_prefix, st.vu, st.counter);
        let key =
            HeaderValue::try_from(key).expect("idempotency key is ASCII letters, digits and '-'");
        self.target
            .request(Method::POST, uri, Some(body.clone()), Some(key))
    }
}

/// Extracts the payment id from a create response.
///
/// A byte scan for `"id":"pay_…"` avoids building a JSON tree for every
/// create; if the server formats differently we fall back to serde_json.
pub fn payment_id(body: &[u8]) -> Result<String, Failure> {
    let id = scan_payment_id(body).or_else(|| {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        value.get("id")?.as_str().map(str::to_owned)
    });
    match id {
        // Only URL-safe ids are accepted: the id is spliced into request paths.
        Some(id)
            if !id.is_empty()
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(id)
        }
        _ => Err(Failure::new(
            ErrorKind::BadResponse,
            format!("no usable payment id in {}", crate::http::snippet(body)),
        )),
    }
}

fn scan_payment_id(body: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"id\"";
    let mut rest = body;
    while let Some(pos) = rest.windows(KEY.len()).position(|w| w == KEY) {
        rest = &rest[pos + KEY.len()..];
        let after = trim_start(rest);
        let Some(after) = after.strip_prefix(b":") else {
            continue;
        };
        let Some(value) = trim_start(after).strip_prefix(b"\"") else {
            continue;
        };
        let end = value.iter().position(|&b| b == b'"')?;
        let id = &value[..end];
        // Nested objects may have ids of their own; we want the payment's.
        if id.starts_with(b"pay_") {
            return std::str::from_utf8(id).ok().map(str::to_owned);
        }
    }
    None
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let Some((first, rest)) = s.split_first() {
        if !first.is_ascii_whitespace() {
            break;
        }
        s = rest;
    }
    s
}

/// Result of the `get` preparation phase.
pub struct Prepared {
    pub uris: Vec<Uri>,
    /// Failed creates by kind: count and one example.
    pub errors: BTreeMap<ErrorKind, (u64, String)>,
}

impl Prepared {
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }
}

/// Creates `count` payments over up to `connections` connections and returns
/// the GET URIs for them, prebuilt so the timed loop does no formatting.
pub async fn prepare_payments(
    target: Arc<Target>,
    run: &RunId,
    count: usize,
    connections: usize,
) -> Result<Prepared, String> {
    let workload = Arc::new(Workload::create(target.clone(), run, "p")?);
    let claimed = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for vu in 0..connections.min(count).max(1) {
        let workload = workload.clone();
        let claimed = claimed.clone();
        let target = target.clone();
        let mut st = VuState::new(vu, run.seed);
        tasks.spawn(async move {
            let mut conn = Conn::new(target.addr);
            let mut uris = Vec::new();
            let mut errors: BTreeMap<ErrorKind, (u64, String)> = BTreeMap::new();
            while claimed.fetch_add(1, Ordering::Relaxed) < count {
                let result = async {
                    let op = workload.next_op(&mut st).map_err(|(_, f)| f)?;
                    let resp = conn
                        .send(op.req, true, Instant::now() + SETUP_TIMEOUT)
                        .await?;
                    let id = payment_id(&resp.body)?;
                    target.uri(&format!("/v1/payments/{id}"))
                }
                .await;
                match result {
                    Ok(uri) => uris.push(uri),
                    Err(f) => {
                        let entry = errors.entry(f.kind).or_insert((0, f.detail));
                        entry.0 += 1;
                    }
                }
            }
            (uris, errors)
        });
    }
    let mut prepared = Prepared {
        uris: Vec::with_capacity(count),
        errors: BTreeMap::new(),
    };
    while let Some(joined) = tasks.join_next().await {
        let (uris, errors) = joined.map_err(|e| format!("prepare task failed: {e}"))?;
        prepared.uris.extend(uris);
        for (kind, (n, detail)) in errors {
            prepared.errors.entry(kind).or_insert((0, detail)).0 += n;
        }
    }
    Ok(prepared)
}

/// One-off checks before any timed run, so a stopped server or a wrong key
/// fails fast with a clear message instead of a report full of errors.
pub async fn preflight(target: &Arc<Target>, run: &RunId, with_key: bool) -> Result<(), String> {
    let mut conn = Conn::new(target.addr);
    let mut st = VuState::new(0, run.seed);
    let healthz = Workload::healthz(target.clone(), run)?;
    let op = healthz.next_op(&mut st).map_err(|(_, f)| f.to_string())?;
    conn.send(op.req, false, Instant::now() + SETUP_TIMEOUT)
        .await
        .map_err(|f| {
            let hint = match f.kind {
                ErrorKind::Connect | ErrorKind::Io | ErrorKind::Timeout => {
                    " (is the server running?)"
                }
                _ => "",
            };
            format!(
                "preflight GET /healthz on {} failed: {f}{hint}",
                target.addr
            )
        })?;
    if with_key {
        let create = Workload::create(target.clone(), run, "f")?;
        let op = create.next_op(&mut st).map_err(|(_, f)| f.to_string())?;
        let resp = conn
            .send(op.req, true, Instant::now() + SETUP_TIMEOUT)
            .await
            .map_err(|f| {
                format!("preflight POST /v1/payments failed: {f} (check --key / VINR_BENCH_KEY)")
            })?;
        payment_id(&resp.body).map_err(|f| format!("preflight POST /v1/payments: {f}"))?;
    }
    Ok(())
}

/// One create on the peer before any timed run: it must answer 2xx with a payment intent.
pub async fn preflight_peer(target: &Arc<Target>, run: &RunId) -> Result<(), String> {
    let mut conn = Conn::new(target.addr);
    let mut st = VuState::new(0, run.seed);
    let create = Workload::peer_create(target.clone(), run, "sf")?;
    let mut op = create.next_op(&mut st).map_err(|(_, f)| f.to_string())?;
    op.keep_body = true;
    let resp = conn
        .send(op.req, true, Instant::now() + SETUP_TIMEOUT)
        .await
        .map_err(|f| {
            format!(
                "peer preflight POST /v1/payment_intents on {} failed: {f} (is the peer running? check --peer-key)",
                target.addr
            )
        })?;
    if !resp.body.windows(4).any(|w| w == b"\"pi_") {
        return Err(format!(
            "peer preflight POST /v1/payment_intents: no payment intent id in {}",
            crate::http::snippet(&resp.body)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_payment_id_compact_and_spaced() {
        let id = payment_id(br#"{"id":"pay_abc123","status":"created"}"#).expect("compact");
        assert_eq!(id, "pay_abc123");
        let id =
            payment_id(br#"{ "customer": {"id": "cus_1"}, "id" : "pay_X-9" }"#).expect("spaced");
        assert_eq!(id, "pay_X-9");
    }

    #[test]
    fn falls_back_to_json_and_rejects_unsafe_ids() {
        // No "pay_" prefix: the scan misses, serde_json finds the top-level id.
        assert_eq!(payment_id(br#"{"id":"p1"}"#).expect("fallback"), "p1");
        let err = payment_id(br#"{"id":"../etc"}"#).expect_err("unsafe id");
        assert_eq!(err.kind, ErrorKind::BadResponse);
        assert!(payment_id(b"not json").is_err());
    }

    #[test]
    fn random_picks_differ_between_users() {
        let mut a = VuState::new(0, 42);
        let mut b = VuState::new(1, 42);
        let xs: Vec<u64> = (0..8).map(|_| a.next_random()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_random()).collect();
        assert_ne!(xs, ys);
    }
}
