//! The mixed workload of a round and the retries after the restart.
//!
//! Each client runs chains on fresh payments, one request at a time: create (with an
//! idempotency key, automatic or manual capture, EUR or USD) → maybe cancel → pay with 4242… →
//! for manual capture: cancel, full or partial capture → up to three partial refunds, half of
//! them as a race of two concurrent refunds (over two connections, on two nodes when there
//! are two) that together may exceed what is left, so the server must refuse one. A request
//! the server died under ends the chain; it is kept and sent again, byte for byte, after the
//! restart. With `--settlements`, one client runs on-demand settlement runs meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::{Conn, ErrorKind, Target};
use crate::torture::model::{Model, Op, OpKind, Outcome, Phase, Reply};
use crate::torture::Rng;

/// Longest a request may take before it counts as unanswered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A retry of an unanswered request is sent at most this often …
const RETRY_ATTEMPTS: usize = 50;
/// … this far apart, while the answer is "not yet" (no answer, 503, key in use).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Pause of a client whose node refused a connection.
const NOT_SENT_PAUSE: Duration = Duration::from_millis(5);
const PAY_BODY: &str = r#"{"card":"4242424242424242"}"#;

/// What every client of a round shares.
pub struct Round {
    /// One per node, with the round's key.
    pub targets: Vec<Arc<Target>>,
    /// Cleared for a node as it is killed, so clients move to the other one.
    pub alive: Vec<AtomicBool>,
    /// No new requests once set.
    pub stop: AtomicBool,
    /// Set at the kill: acknowledgements from then on were the survivor's.
    pub killed: AtomicBool,
    pub acked_after_kill: AtomicU64,
    /// Makes this run's and round's idempotency keys unique.
    pub key_prefix: String,
    /// Client 0 runs on-demand settlements instead of payment chains.
    pub settle: bool,
}

/// What one client did.
pub struct ClientLog {
    pub model: Model,
    /// Sent but unanswered: to retry after the restart.
    pub in_flight: Vec<Op>,
}

struct Client {
    round: Arc<Round>,
    number: usize,
    rng: Rng,
    counter: u64,
    /// One connection per node, and a second set for the racing refund.
    conns: Vec<Conn>,
    race_conns: Vec<Conn>,
    /// The last request could not connect.
    refused_connection: bool,
    log: ClientLog,
}

/// Runs one client until the round's `stop`.
pub async fn client(round: Arc<Round>, number: usize, seed: u64) -> ClientLog {
    let conns = round.targets.iter().map(|t| Conn::new(t.addr)).collect();
    let race_conns = round.targets.iter().map(|t| Conn::new(t.addr)).collect();
    let mut client = Client {
        round,
        number,
        rng: Rng::new(seed ^ (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        counter: 0,
        conns,
        race_conns,
        refused_connection: false,
        log: ClientLog {
            model: Model::default(),
            in_flight: Vec::new(),
        },
    };
    let settler = client.round.settle && number == 0;
    while !client.round.stop.load(Ordering::Relaxed) {
        if settler {
            client.run_settlement().await;
        } else {
            client.chain().await;
        }
        if std::mem::take(&mut client.refused_connection) {
            // The node is down: wait for the round to stop or move on, without spinning.
            tokio::time::sleep(NOT_SENT_PAUSE).await;
        }
    }
    client.log
}

impl Client {
    fn next_key(&mut self, what: &str) -> String {
        self.counter += 1;
        format!(
            "{}-{}{}-{}",
            self.round.key_prefix, what, self.number, self.counter
        )
    }

    /// This client's node, or the other one while it is down.
    fn node(&self, offset: usize) -> usize {
        let n = self.round.targets.len();
        let own = (self.number + offset) % n;
        if self.round.alive[own].load(Ordering::Relaxed) {
            own
        } else {
            (own + 1) % n
        }
    }

    fn op(&self, kind: OpKind, key: String, path: String, body: Value, payment_key: &str) -> Op {
        Op {
            kind,
            key,
            path,
            body: Bytes::from(body.to_string()),
            payment_key: payment_key.to_owned(),
        }
    }

    /// Sends `op` on this client's main connection; the answer if acknowledged.
    async fn send(&mut self, op: Op) -> Option<Value> {
        if self.round.stop.load(Ordering::Relaxed) {
            return None;
        }
        let node = self.node(0);
        let outcome = send(&mut self.conns[node], &self.round.targets[node], &op).await;
        self.settle(op, outcome)
    }

    fn settle(&mut self, op: Op, outcome: Outcome) -> Option<Value> {
        match self.log.model.record(&op, outcome, Phase::Load) {
            Reply::Acked(body) => {
                if self.round.killed.load(Ordering::Relaxed) {
                    self.round.acked_after_kill.fetch_add(1, Ordering::Relaxed);
                }
                Some(body)
            }
            Reply::InFlight => {
                self.log.in_flight.push(op);
                None
            }
            Reply::NotSent => {
                self.refused_connection = true;
                None
            }
            Reply::Refused => None,
        }
    }

    async fn chain(&mut self) {
        let key = self.next_key("p");
        let amount = 100 + self.rng.below(99_901) as i64;
        let currency = if self.rng.below(2) == 0 { "EUR" } else { "USD" };
        let manual = self.rng.below(2) == 0;
        self.log.model.begin_payment(&key, amount, currency, manual);
        let body = json!({
            "amount": amount,
            "currency": currency,
            "returnUrl": "https://example.com/return",
            "capture": !manual,
            "metadata": {"torture": key},
        });
        let create = self.op(
            OpKind::Create,
            key.clone(),
            "/v1/payments".into(),
            body,
            &key,
        );
        let Some(created) = self.send(create).await else {
            return;
        };
        let Some(id) = created["id"].as_str().map(str::to_owned) else {
            return;
        };
        if self.rng.below(10) == 0 {
            self.cancel(&id, &key).await;
            return;
        }
        let pay_key = self.next_key("pay");
        let pay = Op {
            kind: OpKind::Pay,
            key: pay_key,
            path: format!("/v1/test_helpers/payments/{id}/pay"),
            body: Bytes::from_static(PAY_BODY.as_bytes()),
            payment_key: key.clone(),
        };
        let Some(mut payment) = self.send(pay).await else {
            return;
        };
        if payment["status"] == "authorized" {
            let capture = match self.rng.below(4) {
                0 => return self.cancel(&id, &key).await,
                1 => json!({}),
                _ => json!({"amount": 1 + self.rng.below(amount as u64)}),
            };
            let capture_key = self.next_key("cap");
            let path = format!("/v1/payments/{id}/capture");
            let op = self.op(OpKind::Capture, capture_key, path, capture, &key);
            let Some(captured) = self.send(op).await else {
                return;
            };
            payment = captured;
        }
        if payment["status"] != "completed" {
            return;
        }
        let captured = payment["amountCaptured"].as_i64().unwrap_or_default();
        let mut refunded = 0;
        for _ in 0..self.rng.below(4) {
            let room = captured - refunded;
            if room <= 0 || self.round.stop.load(Ordering::Relaxed) {
                return;
            }
            if self.rng.below(2) == 0 {
                match self.race_refunds(&id, &key, room).await {
                    Some(amount) => refunded += amount,
                    None => return,
                }
            } else {
                let amount = if self.rng.below(4) == 0 {
                    room
                } else {
                    1 + self.rng.below(room as u64) as i64
                };
                let op = self.refund_op(&id, &key, amount);
                if self.send(op).await.is_none() {
                    return;
                }
                refunded += amount;
            }
        }
    }

    /// A settlement run of the account, after a pause of 50 to 300 ms.
    async fn run_settlement(&mut self) {
        let pause = Duration::from_millis(50 + self.rng.below(250));
        tokio::time::sleep(pause).await;
        let key = self.next_key("set");
        let path = "/v1/test_helpers/settlements/run".to_owned();
        let op = self.op(OpKind::Settle, key, path, json!({}), "");
        self.send(op).await;
    }

    async fn cancel(&mut self, id: &str, payment_key: &str) {
        let key = self.next_key("can");
        let op = self.op(
            OpKind::Cancel,
            key,
            format!("/v1/payments/{id}/cancel"),
            json!({}),
            payment_key,
        );
        self.send(op).await;
    }

    fn refund_op(&mut self, id: &str, payment_key: &str, amount: i64) -> Op {
        let key = self.next_key("re");
        self.log.model.begin_refund(&key, payment_key, amount);
        let body = json!({"payment": id, "amount": amount, "metadata": {"torture": key}});
        self.op(OpKind::Refund, key, "/v1/refunds".into(), body, payment_key)
    }

    /// Two refunds at once, each of a third to all of `room`: answers what they took, or
    /// `None` when one of them went unanswered.
    async fn race_refunds(&mut self, id: &str, payment_key: &str, room: i64) -> Option<i64> {
        let mut amount = || room / 3 + 1 + self.rng.below((room - room / 3) as u64) as i64;
        let (first, second) = (amount().min(room), amount().min(room));
        let first = self.refund_op(id, payment_key, first);
        let second = self.refund_op(id, payment_key, second);
        let (a, b) = (self.node(0), self.node(1));
        let (first_outcome, second_outcome) = tokio::join!(
            send(&mut self.conns[a], &self.round.targets[a], &first),
            send(&mut self.race_conns[b], &self.round.targets[b], &second),
        );
        let mut took = Some(0);
        for (op, outcome) in [(first, first_outcome), (second, second_outcome)] {
            let amount = refund_amount(&op);
            let refused = matches!(outcome, Outcome::Refused { .. });
            match self.settle(op, outcome) {
                Some(_) => took = took.map(|t| t + amount),
                None if refused => {}
                None => took = None,
            }
        }
        took
    }
}

fn refund_amount(op: &Op) -> i64 {
    serde_json::from_slice::<Value>(&op.body)
        .ok()
        .and_then(|body| body["amount"].as_i64())
        .unwrap_or_default()
}

/// Sends one POST and classifies the answer.
pub async fn send(conn: &mut Conn, target: &Target, op: &Op) -> Outcome {
    send_noting_replay(conn, target, op).await.0
}

/// [`send`], also saying whether the answer was a replay (`Idempotent-Replayed: true`).
async fn send_noting_replay(conn: &mut Conn, target: &Target, op: &Op) -> (Outcome, bool) {
    let mut replayed = false;
    let outcome = send_once(conn, target, op, &mut replayed).await;
    (outcome, replayed)
}

async fn send_once(conn: &mut Conn, target: &Target, op: &Op, replayed: &mut bool) -> Outcome {
    let uri = match target.uri(&op.path) {
        Ok(uri) => uri,
        Err(failure) => return Outcome::NotSent(failure.to_string()),
    };
    let key = match HeaderValue::from_str(&op.key) {
        Ok(key) => key,
        Err(e) => return Outcome::NotSent(format!("idempotency key {:?}: {e}", op.key)),
    };
    let req = target.request(Method::POST, uri, Some(op.body.clone()), Some(key));
    match conn.send(req, true, Instant::now() + REQUEST_TIMEOUT).await {
        Ok(response) => {
            *replayed = response.replayed;
            match serde_json::from_slice::<Value>(&response.body) {
                Ok(body) if body.is_object() => Outcome::Ack(body),
                _ => Outcome::Garbled(crate::http::snippet(&response.body)),
            }
        }
        Err(failure) => match failure.kind {
            ErrorKind::Http(status) => Outcome::Refused {
                status,
                detail: failure.detail,
            },
            ErrorKind::Connect | ErrorKind::BadResponse => Outcome::NotSent(failure.to_string()),
            ErrorKind::Io | ErrorKind::Timeout => Outcome::InFlight(failure.to_string()),
        },
    }
}

/// Sends every unanswered op again (same key, same body) until it gets a final answer, over
/// up to `connections` connections spread on the nodes, and records the answers in `model`.
pub async fn retry_all(
    targets: &[Arc<Target>],
    ops: Vec<Op>,
    model: &mut Model,
    connections: usize,
) {
    let lanes = connections.clamp(1, ops.len().max(1));
    let mut queues: Vec<Vec<Op>> = (0..lanes).map(|_| Vec::new()).collect();
    for (n, op) in ops.into_iter().enumerate() {
        queues[n % lanes].push(op);
    }
    let mut set = JoinSet::new();
    for (lane, queue) in queues.into_iter().enumerate() {
        let targets: Vec<Arc<Target>> = targets.to_vec();
        set.spawn(async move {
            let mut conns: Vec<Conn> = targets.iter().map(|t| Conn::new(t.addr)).collect();
            let mut answers = Vec::new();
            for op in queue {
                let mut last = Outcome::NotSent("not tried".into());
                let mut replayed = false;
                for attempt in 0..RETRY_ATTEMPTS {
                    let node = (lane + attempt) % targets.len();
                    (last, replayed) =
                        send_noting_replay(&mut conns[node], &targets[node], &op).await;
                    let again = match &last {
                        Outcome::InFlight(_) | Outcome::NotSent(_) => true,
                        Outcome::Refused { status, detail } => {
                            *status == 503
                                || (*status == 409 && detail.contains("idempotency_key_in_use"))
                        }
                        Outcome::Ack(_) | Outcome::Garbled(_) => false,
                    };
                    if !again {
                        break;
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                answers.push((op, last, replayed));
            }
            answers
        });
    }
    while let Some(joined) = set.join_next().await {
        let answers = joined.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        for (op, outcome, replayed) in answers {
            if replayed && matches!(outcome, Outcome::Ack(_)) {
                model.counts.retried_replayed += 1;
            }
            match outcome {
                Outcome::InFlight(last) | Outcome::NotSent(last) => {
                    model.record_unresolved(&op, &last)
                }
                Outcome::Refused { status, detail }
                    if status == 503 || detail.contains("idempotency_key_in_use") =>
                {
                    model.record_unresolved(&op, &format!("HTTP {status} {detail}"))
                }
                outcome => {
                    model.record(&op, outcome, Phase::Retry);
                }
            }
        }
    }
}
