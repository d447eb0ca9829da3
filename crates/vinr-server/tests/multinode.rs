//! Two nodes of one deployment sharing one PostgreSQL database (SPEC §1, §9): the races of
//! `concurrency.rs` split across both nodes leave exactly the outcomes one node would; nodes
//! starting together make one sandbox account; what one node writes the other reads and
//! changes; both nodes' maintenance prunes each idempotency key once. Without `VINR_TEST_DATABASE_URL` these tests say why and pass, unless
//! `VINR_REQUIRE_POSTGRES=1` makes that a failure (see `common/database.rs`).

mod common;

use common::database::{execute, fresh_postgres_database, query_integers};
use common::race;
use common::*;
use serde_json::json;
use vinr_server::workers::maintenance;

/// Both nodes' base for `checkoutUrl`, as behind one load balancer: the payments they answer
/// are then the same byte for byte, whichever node answers.
const PUBLIC_URL: &str = "http://payments.vinr.test";
const HOUR_MS: i64 = 60 * 60 * 1000;

/// Two in-process servers on one fresh PostgreSQL database, with one clock, and the sandbox
/// key's API on each.
struct Cluster {
    nodes: Vec<TestServer>,
    apis: Vec<Api>,
    /// Outlives the nodes: dropped after they stop.
    _database: TestDatabase,
}

impl Cluster {
    /// `None` when the test is skipped for want of PostgreSQL.
    async fn start() -> Option<Cluster> {
        let database = fresh_postgres_database().await?;
        let clock = manual_clock();
        let node = || {
            TestServer::start_with(Options {
                database_url: Some(database.url.clone()),
                clock: Some(clock.clone()),
                public_url: Some(PUBLIC_URL.to_owned()),
                ..Options::default()
            })
        };
        // Started together, as a deployment's nodes are: both migrate the empty database and
        // look for an account at the same time.
        let (first, second) = tokio::join!(node(), node());
        let nodes = vec![first, second];
        let bootstrapped: Vec<&TestServer> = nodes
            .iter()
            .filter(|node| node.account_id.is_some())
            .collect();
        assert_eq!(
            bootstrapped.len(),
            1,
            "exactly one node makes the sandbox account"
        );
        let key = bootstrapped[0].api().key;
        let apis = nodes.iter().map(|node| node.client(&key)).collect();
        Some(Cluster {
            nodes,
            apis,
            _database: database,
        })
    }

    async fn stop(self) {
        for node in self.nodes {
            node.stop().await;
        }
    }
}

/// [`Cluster::start`] asserts it; a few more starts make a lost race likelier to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_at_once_make_one_sandbox_account() {
    for _ in 0..3 {
        let Some(cluster) = Cluster::start().await else {
            return;
        };
        for api in &cluster.apis {
            assert_eq!(api.payments().await.len(), 0, "the key works on every node");
        }
        cluster.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_32_times_to_two_nodes_creates_one_payment() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    race::one_idempotency_key_sent_32_times(&cluster.apis).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creations_on_two_nodes_at_once_are_all_kept() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    race::creations_without_keys_are_all_kept(&cluster.apis).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_and_cancels_racing_on_two_nodes_leave_one_winner() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    race::captures_and_cancels_leave_one_winner(&cluster.apis, 4).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_racing_on_two_nodes_charge_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    race::payments_with_different_cards_charge_once(&cluster.apis).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_made_on_one_node_is_read_and_captured_on_the_other() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let [a, b] = &cluster.apis[..] else {
        unreachable!("two nodes")
    };
    let created = a
        .create_payment(payment_body(1000, json!({"capture": false})))
        .await;
    let id = id_of(&created);
    assert_eq!(b.payment(&id).await, created, "B reads what A created");

    let authorized = b.pay(&id, CARD_APPROVED).await;
    let authorized = authorized.expect_status(200).clone();
    assert_eq!(authorized["status"], "authorized");
    assert_eq!(a.payment(&id).await, authorized, "A reads what B paid");

    let captured = b.capture(&id, json!({})).await;
    let captured = captured.expect_status(200).clone();
    assert_eq!(captured["status"], "completed");
    assert_eq!(captured["amountCaptured"], 1000);
    assert_eq!(a.payment(&id).await, captured, "A reads what B captured");
    // A acts on the state B left, not on anything it remembers.
    a.cancel(&id)
        .await
        .expect_error(422, "invalid_request_error", "payment_state_invalid", None);

    assert_eq!(a.payments().await, vec![captured.clone()]);
    assert_eq!(a.payments().await, b.payments().await);
    let events = a.events_of(&id).await;
    assert_eq!(events, b.events_of(&id).await, "one event log");
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        types.first(),
        Some(&"payment.completed"),
        "newest first: {types:?}"
    );
    assert_eq!(types.last(), Some(&"payment.created"), "{types:?}");
    assert_eq!(events[0]["data"]["object"], captured);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_nodes_pruning_at_once_prune_each_idempotency_key_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let apis = &cluster.apis;
    let keys: Vec<String> = (0..8).map(|n| format!("prune-{n}")).collect();
    for (n, key) in keys.iter().enumerate() {
        let api = &apis[n % apis.len()];
        let reply = api.create_with_key(key, payment_body(100, json!({}))).await;
        reply.expect_status(201);
    }

    // Past the 24-hour retention, on the clock both nodes read.
    cluster.nodes[0].clock.advance_ms(25 * HOUR_MS);
    let (first, second) = tokio::join!(
        maintenance::step(cluster.nodes[0].app()),
        maintenance::step(cluster.nodes[1].app()),
    );
    let (first, second) = (
        first.expect("node A's maintenance step"),
        second.expect("node B's maintenance step"),
    );
    assert_eq!(
        first.idempotency_keys + second.idempotency_keys,
        keys.len(),
        "each key pruned once: A pruned {first:?}, B pruned {second:?}"
    );
    assert_eq!(first.events + second.events, 0, "events are kept 30 days");
    for node in &cluster.nodes {
        let again = maintenance::step(node.app()).await.expect("a later step");
        assert_eq!(again.idempotency_keys, 0, "nothing left to prune");
    }

    // Each key is free on the node that did not make it, and its new answer is the one the
    // other node replays.
    for (n, key) in keys.iter().enumerate() {
        let body = payment_body(200, json!({}));
        let reused = apis[(n + 1) % apis.len()]
            .create_with_key(key, body.clone())
            .await;
        assert_eq!(reused.expect_status(201)["amount"], 200, "{key}");
        assert_eq!(reused.header("idempotent-replayed"), None, "{key} is free");
        let replayed = apis[n % apis.len()].create_with_key(key, body).await;
        replayed.expect_status(201);
        assert_eq!(
            replayed.header("idempotent-replayed"),
            Some("true"),
            "{key}"
        );
        assert_eq!(replayed.text, reused.text, "{key}");
    }
    for api in apis {
        assert_eq!(api.payments().await.len(), 2 * keys.len());
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_rule_hit_on_two_nodes_at_once_faults_its_count_exactly() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    race::fault_rule_count_is_taken_exactly(&cluster.apis).await;
    cluster.stop().await;
}

/// A key revoked from another process (`vinr keys revoke`) fails on both nodes at their next
/// request, though each had just answered it (and so holds its lookup in its key cache): the
/// revocation's commit notifies both (migration 0015), and a node trusts its cache only behind
/// a fence that has read every notification committed before the request came
/// (`store/postgres/listen.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_from_another_process_fails_on_both_nodes_at_once() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let node = cluster
        .nodes
        .iter()
        .find(|node| node.account_id.is_some())
        .expect("a node made the sandbox account");
    let db = node.database_url().to_owned();
    let account = node.sandbox_account();
    // Several rounds: a node that read the version before the notification arrived would
    // answer 200 in some of them.
    for _round in 0..5 {
        revoke_from_another_process(&cluster, &db, &account).await;
    }
    cluster.stop().await;
}

/// A new key (`vinr keys create`) used twice on each node, so that both hold it in their key
/// caches: its id, a client per node, and the path of a payment it made.
async fn cached_key(cluster: &Cluster, db: &str, account: &str) -> (String, Vec<Api>, String) {
    let output =
        process::vinr(&["keys", "create", "--account", account, "--database-url", db]).await;
    let stdout = output.expect_success();
    let key_id = word_with_prefix(stdout, "key_").expect("a key id on stdout");
    let secret = word_with_prefix(stdout, "sk_test_").expect("a key on stdout");
    let clients: Vec<Api> = cluster.nodes.iter().map(|n| n.client(&secret)).collect();
    let payment = clients[0].new_payment().await;
    let path = format!("/v1/payments/{}", id_of(&payment));
    for client in &clients {
        for _ in 0..2 {
            client.get(&path).await.expect_status(200);
        }
    }
    (key_id, clients, path)
}

/// A new key used on both nodes (so both cache it), revoked by `vinr keys revoke`: at once
/// 401 on both, while the sandbox key still works.
async fn revoke_from_another_process(cluster: &Cluster, db: &str, account: &str) {
    let (key_id, clients, path) = cached_key(cluster, db, account).await;
    process::vinr(&["keys", "revoke", &key_id, "--database-url", db])
        .await
        .expect_success();
    for client in &clients {
        client
            .get(&path)
            .await
            .expect_error(401, "authentication_error", "api_key_invalid", None);
    }
    // The other keys are untouched.
    for api in &cluster.apis {
        api.get(&path).await.expect_status(200);
    }
}

/// The pids of the nodes' auth listeners on the cluster's database.
async fn listener_pids(db: &str) -> Vec<i64> {
    let sql = format!(
        "SELECT pid::bigint FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{}' ORDER BY pid",
        vinr_server::store::postgres::LISTENER_APPLICATION_NAME
    );
    query_integers(db, &sql).await
}

/// Waits until `condition` holds of the listeners' pids; answers them.
async fn wait_for_listeners(db: &str, condition: impl Fn(&[i64]) -> bool) -> Vec<i64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let pids = listener_pids(db).await;
        if condition(&pids) {
            return pids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the listeners never reached the expected state: {pids:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A revocation made while a node's notification connection is down (its notification is
/// lost) still holds on that node once it listens again: the key cache starts afresh on every
/// (re)connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_while_the_listeners_are_down_fails_once_they_are_back() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let node = cluster
        .nodes
        .iter()
        .find(|node| node.account_id.is_some())
        .expect("a node made the sandbox account");
    let db = node.database_url().to_owned();
    let account = node.sandbox_account();
    let (key_id, clients, path) = cached_key(&cluster, &db, &account).await;
    let before = wait_for_listeners(&db, |pids| pids.len() == 2).await;

    // Cut both notification connections, and revoke while neither listens: the notification
    // reaches nobody. (The retry after a lost connection waits a second, which leaves the
    // revocation ample room; if a listener is back before it, the test says so.)
    let terminated = query_integers(
        &db,
        &format!(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::bigint FROM pg_stat_activity \
             WHERE pid IN ({})",
            before.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
        ),
    )
    .await;
    assert_eq!(terminated, [2]);
    wait_for_listeners(&db, |pids| pids.is_empty()).await;
    let revoked = execute(
        &db,
        &format!("UPDATE api_keys SET revoked_at = created_at WHERE id = '{key_id}'"),
    )
    .await;
    assert_eq!(revoked, 1);
    assert!(
        listener_pids(&db).await.is_empty(),
        "a listener came back before the revocation committed; the test proves nothing"
    );

    let after = wait_for_listeners(&db, |pids| pids.len() == 2).await;
    assert!(
        after.iter().all(|pid| !before.contains(pid)),
        "{before:?} {after:?}"
    );
    for client in &clients {
        client
            .get(&path)
            .await
            .expect_error(401, "authentication_error", "api_key_invalid", None);
    }
    for api in &cluster.apis {
        api.get(&path).await.expect_status(200);
    }
    cluster.stop().await;
}
