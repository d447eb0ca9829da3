//! Correctness under concurrency on one node (SPEC §9): parallel requests with one idempotency
//! key create one payment; parallel captures, cancels and payments of one payment leave exactly
//! one winner, a state the table allows, and one event for it. The races themselves live in
//! `common/race.rs`; `multinode.rs` runs them across two nodes.

mod common;

use common::race;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_sent_32_times_at_once_creates_one_payment() {
    let server = TestServer::start().await;
    race::one_idempotency_key_sent_32_times(&[server.api()]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creations_without_keys_are_all_kept() {
    let server = TestServer::start().await;
    race::creations_without_keys_are_all_kept(&[server.api()]).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_captures_and_cancels_leave_one_winner() {
    let server = TestServer::start().await;
    race::captures_and_cancels_leave_one_winner(&[server.api()], 4).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_payments_with_different_cards_charge_once() {
    let server = TestServer::start().await;
    race::payments_with_different_cards_charge_once(&[server.api()]).await;
    server.stop().await;
}
