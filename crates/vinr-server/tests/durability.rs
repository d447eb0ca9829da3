//! Durability and shutdown of the real binary (SPEC §8, §9): a 2xx means the change is on
//! disk, so `kill -9` under load loses no acknowledged payment and no event; SIGTERM stops the
//! server cleanly, finishing what is in flight.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use common::database::query_integers;
use common::process::{config_without_rate_limits, Served};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Payments acknowledged before the process is stopped.
const ACKNOWLEDGED_MIN: usize = 50;
const CLIENTS: usize = 8;

/// What `vinr serve` runs on, across restarts: a fresh database, and a directory for its
/// configuration and logs.
struct Deployment {
    dir: TempDir,
    config: PathBuf,
    database: TestDatabase,
}

impl Deployment {
    async fn new() -> Deployment {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = config_without_rate_limits(dir.path());
        let database = fresh_database().await;
        Deployment {
            dir,
            config,
            database,
        }
    }

    fn serve(&self) -> Served {
        Served::start(self.dir.path(), &self.database.url, &self.config)
    }

    /// The first start: the server and the sandbox key it printed.
    fn first_start(&self) -> (Served, String) {
        let served = self.serve();
        let key = served
            .printed_key
            .clone()
            .expect("the first start prints a key");
        assert!(key.starts_with("sk_test_"), "{key}");
        (served, key)
    }
}

/// A payment as it must survive: everything but `checkoutUrl`, whose base is the address of
/// the process that answered.
fn durable_fields(payment: &Value) -> Value {
    let mut payment = payment.clone();
    if let Some(object) = payment.as_object_mut() {
        object.remove("checkoutUrl");
    }
    payment
}

/// Clients creating payments as fast as they are answered, each acknowledged payment sent on
/// the channel, until the server stops answering. Every HTTP answer that is not a 201 is
/// reported as an error.
fn load(api: &Api) -> (mpsc::UnboundedReceiver<Result<Value, String>>, JoinSet<()>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut clients = JoinSet::new();
    for client in 0..CLIENTS {
        let api = api.clone();
        let sender = sender.clone();
        clients.spawn(async move {
            for n in 0.. {
                let body = payment_body(
                    1 + (client * 10_000 + n) as i64,
                    json!({"metadata": {"client": client.to_string(), "n": n.to_string()}}),
                );
                let reply = api
                    .call(reqwest::Method::POST, "/v1/payments")
                    .json(body)
                    .try_send()
                    .await;
                let outcome = match reply {
                    // The process is gone: this request was never acknowledged.
                    Err(_) => return,
                    Ok(reply) if reply.status == 201 => Ok(reply.json),
                    Ok(reply) => Err(format!("HTTP {}: {}", reply.status, reply.text)),
                };
                if sender.send(outcome).is_err() {
                    return;
                }
            }
        });
    }
    (receiver, clients)
}

/// Waits for `count` acknowledgements.
async fn acknowledged(
    receiver: &mut mpsc::UnboundedReceiver<Result<Value, String>>,
    count: usize,
) -> Vec<Value> {
    let mut payments = Vec::new();
    while payments.len() < count {
        let outcome = receiver.recv().await.expect("the clients are running");
        payments.push(outcome.unwrap_or_else(|error| panic!("under load: {error}")));
    }
    payments
}

/// Waits for the clients to stop and collects the acknowledgements still on the way.
async fn drain(
    mut receiver: mpsc::UnboundedReceiver<Result<Value, String>>,
    mut clients: JoinSet<()>,
    payments: &mut Vec<Value>,
) {
    while let Some(joined) = clients.join_next().await {
        joined.expect("a client task");
    }
    while let Ok(outcome) = receiver.try_recv() {
        payments.push(outcome.unwrap_or_else(|error| panic!("while stopping: {error}")));
    }
}

/// On PostgreSQL, waits until the killed server's sessions are gone. A session whose client
/// died may still hold a whole transaction, its COMMIT included, in its input (the server
/// pipelines them): PostgreSQL runs it to the end before it notices the closed socket. Such a
/// payment was never acknowledged, and it commits whole (payment and event), but it may commit
/// between the two reads below, which would see it in one list and not the other.
async fn settle_dead_connections(url: &str) {
    if !url.starts_with("postgres") {
        return;
    }
    for _ in 0..300 {
        let others = query_integers(
            url,
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await;
        if others == [0] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the killed server's PostgreSQL sessions are still there after 30 s");
}

/// Restarts on the same database and asserts every acknowledged payment, and its
/// `payment.created` event, is there; and that no payment exists without its event. With
/// `exactly`, also that nothing else was stored (every request taken in was answered).
async fn assert_all_survived(
    deployment: &Deployment,
    key: &str,
    acknowledged: &[Value],
    exactly: bool,
) {
    settle_dead_connections(&deployment.database.url).await;
    let served = deployment.serve();
    assert_eq!(
        served.printed_key, None,
        "a restart makes no new sandbox account"
    );
    let api = Api::new(&served.base, key);
    let stored: BTreeMap<String, Value> = api
        .payments()
        .await
        .into_iter()
        .map(|payment| (id_of(&payment), payment))
        .collect();
    for payment in acknowledged {
        let id = id_of(payment);
        let found = stored
            .get(&id)
            .unwrap_or_else(|| panic!("acknowledged payment {id} was lost"));
        assert_eq!(durable_fields(found), durable_fields(payment), "{id}");
    }
    let created_events: BTreeSet<String> = api
        .list_all("/v1/events?type=payment.created")
        .await
        .iter()
        .map(|event| id_of(&event["data"]["object"]))
        .collect();
    let stored_ids: BTreeSet<String> = stored.keys().cloned().collect();
    if exactly {
        let acknowledged_ids: BTreeSet<String> = acknowledged.iter().map(id_of).collect();
        assert_eq!(
            stored_ids, acknowledged_ids,
            "a payment was stored but its request never answered"
        );
    }
    assert_eq!(
        created_events, stored_ids,
        "every stored payment has its payment.created event, and no event lacks its payment"
    );
    drop(served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_acknowledged_payment() {
    let deployment = Deployment::new().await;
    let (served, key) = deployment.first_start();
    let api = Api::new(&served.base, &key);

    let (mut receiver, clients) = load(&api);
    let mut payments = acknowledged(&mut receiver, ACKNOWLEDGED_MIN).await;
    // Killed while the clients still have requests in flight.
    served.kill_9();
    drain(receiver, clients, &mut payments).await;
    assert!(payments.len() >= ACKNOWLEDGED_MIN);

    assert_all_survived(&deployment, &key, &payments, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    let deployment = Deployment::new().await;
    let (served, key) = deployment.first_start();
    let api = Api::new(&served.base, &key);

    let (mut receiver, clients) = load(&api);
    let mut payments = acknowledged(&mut receiver, 20).await;
    let stopping = tokio::task::spawn_blocking(move || served.terminate());
    // Every answer during shutdown is a 201 or no answer at all (never a 5xx): `drain`
    // panics on any other status.
    drain(receiver, clients, &mut payments).await;
    let (status, took) = stopping.await.expect("the stopping task");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        took < Duration::from_secs(10),
        "SIGTERM took {took:?} to stop the server"
    );

    assert_all_survived(&deployment, &key, &payments, true).await;
}
