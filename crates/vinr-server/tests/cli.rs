//! The command line (SPEC §8): `vinr accounts create`, `vinr keys create|list|revoke` and
//! `vinr migrate`, run as real processes against the database a server is serving; every
//! printed key is tried over HTTP.

mod common;

use common::process::vinr;
use common::*;
use serde_json::json;

/// `vinr keys create …` on `db`; answers the key id and the secret it printed.
async fn create_key(
    db: &str,
    account: &str,
    extra: &[&str],
    secret_prefix: &str,
) -> (String, String) {
    let mut args = vec!["keys", "create", "--account", account, "--database-url", db];
    args.extend_from_slice(extra);
    let output = vinr(&args).await;
    let stdout = output.expect_success();
    let key_id = word_with_prefix(stdout, "key_").expect("a key id on stdout");
    let secret = word_with_prefix(stdout, secret_prefix)
        .unwrap_or_else(|| panic!("a {secret_prefix}… key on stdout: {stdout}"));
    assert!(
        !output.stderr.contains(&secret),
        "the secret must not reach the log"
    );
    (key_id, secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_create_prints_an_id_and_a_working_test_key() {
    let database = fresh_database().await;
    let db = database.url.clone();
    let output = vinr(&[
        "accounts",
        "create",
        "--name",
        "Shop",
        "--database-url",
        &db,
    ])
    .await;
    let stdout = output.expect_success();
    let account = word_with_prefix(stdout, "acct_").expect("an account id on stdout");
    let key = word_with_prefix(stdout, "sk_test_").expect("an sk_test_ key on stdout");
    assert!(
        !output.stderr.contains(&key),
        "the key must not reach the log"
    );

    let server = TestServer::start_with(Options {
        database_url: Some(db.clone()),
        ..Options::default()
    })
    .await;
    assert_eq!(
        server.account_id, None,
        "a database with an account gets no sandbox account"
    );
    let api = server.client(&key);
    let payment = api.new_payment().await;
    assert_eq!(api.payment(&id_of(&payment)).await, payment);
    assert_eq!(api.payments().await.len(), 1);

    // A second account made while the server runs is a separate account.
    let output = vinr(&[
        "accounts",
        "create",
        "--name",
        "Second",
        "--database-url",
        &db,
    ])
    .await;
    let stdout = output.expect_success();
    let second = word_with_prefix(stdout, "acct_").expect("an account id");
    assert_ne!(second, account);
    let other = server.client(&word_with_prefix(stdout, "sk_test_").expect("a key"));
    assert_eq!(other.payments().await.len(), 0);
    let reply = other
        .get(&format!("/v1/payments/{}", id_of(&payment)))
        .await;
    reply.expect_error(404, "invalid_request_error", "resource_missing", Some("id"));

    let output = vinr(&["accounts", "create", "--name", "  ", "--database-url", &db]).await;
    output.expect_failure();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_makes_live_and_restricted_keys() {
    let server = TestServer::start().await;
    let db = server.database_url().to_owned();
    let account = server.sandbox_account();

    let (_, live) = create_key(&db, &account, &["--mode", "live"], "sk_live_").await;
    let live = server.client(&live);
    let payment = live.new_payment().await;
    assert_eq!(payment["livemode"], true);
    assert_eq!(
        server.api().payments().await.len(),
        0,
        "test mode sees nothing"
    );

    let (_, reader) = create_key(&db, &account, &["--scopes", "payments:read"], "rk_test_").await;
    let reader = server.client(&reader);
    let test_payment = server.api().new_payment().await;
    assert_eq!(reader.payments().await, vec![test_payment]);
    let reply = reader
        .post_json("/v1/payments", payment_body(100, json!({})))
        .await;
    reply.expect_error(403, "permission_error", "insufficient_permissions", None);
    let reply = reader.get("/v1/events").await;
    reply.expect_error(403, "permission_error", "insufficient_permissions", None);
    assert_eq!(
        server.api().payments().await.len(),
        1,
        "the 403 created nothing"
    );

    let (_, both) = create_key(
        &db,
        &account,
        &["--mode", "live", "--scopes", "payments:read,events:read"],
        "rk_live_",
    )
    .await;
    let both = server.client(&both);
    assert_eq!(both.payments().await, vec![payment]);
    assert_eq!(both.events().await.len(), 1);

    let output = vinr(&[
        "keys",
        "create",
        "--account",
        &account,
        "--scopes",
        "payments:everything",
        "--database-url",
        &db,
    ])
    .await;
    assert!(output.expect_failure().contains("payments:everything"));
    let output = vinr(&[
        "keys",
        "create",
        "--account",
        "acct_000000000000000000000000",
        "--database-url",
        &db,
    ])
    .await;
    output.expect_failure();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_list_shows_keys_but_never_their_secrets() {
    let server = TestServer::start().await;
    let db = server.database_url().to_owned();
    let account = server.sandbox_account();
    let (live_id, live) = create_key(&db, &account, &["--mode", "live"], "sk_live_").await;
    let (reader_id, reader) =
        create_key(&db, &account, &["--scopes", "payments:read"], "rk_test_").await;

    let output = vinr(&["keys", "list", "--account", &account, "--database-url", &db]).await;
    let listing = output.expect_success();
    let sandbox_key = server.api().key;
    for secret in [&sandbox_key, &live, &reader] {
        assert!(
            !listing.contains(secret.as_str()),
            "a secret is listed:\n{listing}"
        );
        let last4 = &secret[secret.len() - 4..];
        assert!(
            listing.contains(last4),
            "{last4} identifies the key:\n{listing}"
        );
    }
    let line_of = |id: &str| {
        listing
            .lines()
            .find(|line| line.starts_with(id))
            .unwrap_or_else(|| panic!("{id} is not listed:\n{listing}"))
            .to_owned()
    };
    let live_line = line_of(&live_id);
    assert!(
        live_line.contains("live") && live_line.contains("secret") && live_line.contains("active")
    );
    let reader_line = line_of(&reader_id);
    assert!(reader_line.contains("restricted") && reader_line.contains("payments:read"));
    assert_eq!(
        listing
            .lines()
            .filter(|line| line.starts_with("key_"))
            .count(),
        3,
        "the sandbox key and the two new ones:\n{listing}"
    );

    let output = vinr(&[
        "keys",
        "list",
        "--account",
        "acct_000000000000000000000000",
        "--database-url",
        &db,
    ])
    .await;
    output.expect_failure();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_revoke_stops_the_key_on_the_next_request() {
    let server = TestServer::start().await;
    let db = server.database_url().to_owned();
    let account = server.sandbox_account();
    let (key_id, secret) = create_key(&db, &account, &[], "sk_test_").await;
    let doomed = server.client(&secret);
    let payment = doomed.new_payment().await;

    let output = vinr(&["keys", "revoke", &key_id, "--database-url", &db]).await;
    assert!(output.expect_success().contains("revoked"));
    let reply = doomed
        .get(&format!("/v1/payments/{}", id_of(&payment)))
        .await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    let reply = doomed
        .post_json("/v1/payments", payment_body(100, json!({})))
        .await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);

    let output = vinr(&["keys", "list", "--account", &account, "--database-url", &db]).await;
    let listing = output.expect_success();
    let line = listing
        .lines()
        .find(|line| line.starts_with(&key_id))
        .expect("the revoked key is still listed");
    assert!(line.contains("revoked"), "{line}");

    // Revoking twice is an error; the other keys still work.
    let output = vinr(&["keys", "revoke", &key_id, "--database-url", &db]).await;
    output.expect_failure();
    assert_eq!(server.api().payments().await.len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_prepares_a_fresh_database() {
    let database = fresh_database().await;
    let db = database.url.clone();
    assert_eq!(database.table_count().await, 0, "a fresh database is empty");
    vinr(&["migrate", "--database-url", &db])
        .await
        .expect_success();
    let tables = database.table_count().await;
    assert!(tables > 0, "the migration creates the schema");
    // Again: nothing left to apply, still a success.
    vinr(&["migrate", "--database-url", &db])
        .await
        .expect_success();
    assert_eq!(database.table_count().await, tables);

    let server = TestServer::start_with(Options {
        database_url: Some(db),
        ..Options::default()
    })
    .await;
    assert!(
        server.account_id.is_some(),
        "a migrated, empty database gets its sandbox"
    );
    server.api().new_payment().await;
    server.stop().await;

    let output = vinr(&["migrate", "--database-url", "mysql://localhost/vinr"]).await;
    output.expect_failure();
}
