//! Platform keys and the accounts API (SPEC §10), black-box over HTTP: create, list, retrieve,
//! rename and delete accounts with a platform key, `GET /v1/account` with an account key, the
//! wrong kind of key on either side (403), bad input, isolation, deletion with its refusal
//! while live data exists, `VINR_PLATFORM_KEY` across restarts and the command line
//! (`vinr platform-keys create`, `vinr accounts list|rename`). On SQLite, or on PostgreSQL with
//! `VINR_TEST_DATABASE_URL`.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use common::database::{query_integers, query_strings};
use common::process::vinr;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use vinr_domain::Mode;
use vinr_server::clock::SystemClock;
use vinr_server::config::{FileConfig, Settings};

/// A platform key as CI would pass it in `VINR_PLATFORM_KEY`.
const ENV_PLATFORM_KEY: &str = "plk_ci_0123456789abcdefghijklmnopqrstuv";

/// `POST /v1/accounts` named `name`, expecting 201; answers the account (with `secretKey`).
async fn create_account(platform: &Api, name: &str) -> Value {
    platform
        .post_json("/v1/accounts", json!({ "name": name }))
        .await
        .expect_status(201)
        .clone()
}

fn secret_key_of(account: &Value) -> String {
    account["secretKey"]
        .as_str()
        .unwrap_or_else(|| panic!("a secretKey in {account}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_key_creates_reads_and_renames_accounts() {
    let server = TestServer::start_with(Options {
        platform_key: Some(ENV_PLATFORM_KEY.into()),
        ..Options::default()
    })
    .await;
    let platform = server.client(ENV_PLATFORM_KEY);

    let created = create_account(&platform, "  CI worker 1  ").await;
    let id = id_of(&created);
    assert!(id.starts_with("acct_"), "{created}");
    assert_eq!(created["object"], "account");
    assert_eq!(
        created["name"], "CI worker 1",
        "surrounding spaces are dropped"
    );
    assert!(created["created_at"]
        .as_str()
        .is_some_and(|at| at.ends_with('Z')));
    let key = secret_key_of(&created);
    assert!(key.starts_with("sk_test_"), "{key}");

    // The key works for the new account, and `GET /v1/account` answers it.
    let merchant = server.client(&key);
    let own = merchant.get("/v1/account").await;
    let own = own.expect_status(200);
    assert_eq!(own["id"], id.as_str());
    assert_eq!(own["object"], "account");
    assert_eq!(own["name"], "CI worker 1");
    assert_eq!(own["livemode"], false);
    let payment = merchant.new_payment().await;

    // Retrieve: the key is never shown again.
    let path = format!("/v1/accounts/{id}");
    let fetched = platform.get(&path).await;
    let fetched = fetched.expect_status(200).clone();
    assert_eq!(fetched["id"], id.as_str());
    assert_eq!(fetched["name"], "CI worker 1");
    assert_eq!(fetched["created_at"], created["created_at"]);
    assert!(fetched.get("secretKey").is_none(), "{fetched}");

    // Rename (JSON and form), seen by the account and on the checkout page.
    let renamed = platform
        .post_json(&path, json!({"name": "Renamed & <Shop>"}))
        .await;
    assert_eq!(renamed.expect_status(200)["name"], "Renamed & <Shop>");
    assert!(renamed.json.get("secretKey").is_none());
    assert_eq!(
        merchant.get("/v1/account").await.expect_status(200)["name"],
        "Renamed & <Shop>"
    );
    let page = reqwest::get(payment["checkoutUrl"].as_str().expect("a checkoutUrl"))
        .await
        .expect("the checkout page")
        .text()
        .await
        .expect("its text");
    assert!(
        page.contains("<p class=\"merchant\">Renamed &#38; &#60;Shop&#62;</p>"),
        "the checkout shows the account's name, escaped: {page}"
    );
    let renamed = platform.post_form(&path, "name=Form+Shop").await;
    assert_eq!(renamed.expect_status(200)["name"], "Form Shop");

    // Restricted and live keys of the account read it too, with their mode.
    let (_, live) = server.new_key(&id, Mode::Live, &[]).await;
    assert_eq!(
        live.get("/v1/account").await.expect_status(200)["livemode"],
        true
    );
    let (_, restricted) = server.new_key(&id, Mode::Test, &["events:read"]).await;
    assert_eq!(
        restricted.get("/v1/account").await.expect_status(200)["id"],
        id.as_str()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_newest_first_with_cursors() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let sandbox = server.sandbox_account();
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(id_of(
            &create_account(&platform, &format!("Shop {n}")).await,
        ));
    }
    // Newest first: the five, then the sandbox account made at start.
    let mut expected: Vec<String> = made.iter().rev().cloned().collect();
    expected.push(sandbox);

    let all = platform.list_all("/v1/accounts").await;
    let ids: Vec<String> = all.iter().map(id_of).collect();
    assert_eq!(ids, expected);
    assert!(all.iter().all(|account| account.get("secretKey").is_none()));

    // Pages of two, forwards then backwards.
    let first = platform.get("/v1/accounts?limit=2").await;
    let first = first.expect_status(200).clone();
    assert_eq!(first["object"], "list");
    assert_eq!(first["has_more"], true);
    let page_ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .expect("a data array")
            .iter()
            .map(id_of)
            .collect()
    };
    assert_eq!(page_ids(&first), expected[0..2]);
    assert_eq!(first["next_cursor"], expected[1].as_str());
    let second = platform
        .get(&format!(
            "/v1/accounts?limit=2&starting_after={}",
            expected[1]
        ))
        .await;
    let second = second.expect_status(200).clone();
    assert_eq!(page_ids(&second), expected[2..4]);
    let last = platform
        .get(&format!(
            "/v1/accounts?limit=2&starting_after={}",
            expected[3]
        ))
        .await;
    let last = last.expect_status(200).clone();
    assert_eq!(page_ids(&last), expected[4..6]);
    assert_eq!(last["has_more"], false);
    assert_eq!(last["next_cursor"], Value::Null);
    let before = platform
        .get(&format!(
            "/v1/accounts?limit=2&ending_before={}",
            expected[4]
        ))
        .await;
    assert_eq!(page_ids(before.expect_status(200)), expected[2..4]);

    // Bad list parameters.
    platform.get("/v1/accounts?limit=0").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_invalid",
        Some("limit"),
    );
    platform
        .get(&format!(
            "/v1/accounts?starting_after={}&ending_before={}",
            expected[0], expected[1]
        ))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("ending_before"),
        );
    platform
        .get("/v1/accounts?starting_after=acct_nope")
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("starting_after"),
        );
    platform.get("/v1/accounts?status=open").await.expect_error(
        400,
        "invalid_request_error",
        "parameter_unknown",
        Some("status"),
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_kind_of_key_is_refused_on_either_side() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let merchant = server.api();
    let account = server.sandbox_account();
    let (_, restricted) = server
        .new_key(&account, Mode::Test, &["payments:write"])
        .await;
    let (_, live) = server.new_key(&account, Mode::Live, &[]).await;

    // Account keys (secret, restricted, live) on the platform routes: 403.
    let routes = [
        (Method::POST, "/v1/accounts".to_owned()),
        (Method::GET, "/v1/accounts".to_owned()),
        (Method::GET, format!("/v1/accounts/{account}")),
        (Method::POST, format!("/v1/accounts/{account}")),
        (Method::DELETE, format!("/v1/accounts/{account}")),
    ];
    for api in [&merchant, &restricted, &live] {
        for (method, path) in &routes {
            let reply = api
                .call(method.clone(), path)
                .json(json!({"name": "Taken over"}))
                .send()
                .await;
            reply.expect_error(403, "permission_error", "platform_key_required", None);
        }
    }
    assert_eq!(
        platform
            .get(&format!("/v1/accounts/{account}"))
            .await
            .expect_status(200)["name"],
        "Sandbox",
        "nothing changed"
    );

    // The platform key on an account's routes: 403, and it reads no payment.
    let payment = merchant.new_payment().await;
    let merchant_routes = [
        (Method::GET, "/v1/account".to_owned()),
        (Method::GET, "/v1/payments".to_owned()),
        (Method::POST, "/v1/payments".to_owned()),
        (Method::GET, format!("/v1/payments/{}", id_of(&payment))),
        (Method::GET, "/v1/events".to_owned()),
        (Method::GET, "/v1/balance".to_owned()),
        (Method::GET, "/v1/webhooks".to_owned()),
    ];
    for (method, path) in &merchant_routes {
        let mut call = platform.call(method.clone(), path);
        if *method == Method::POST {
            call = call.json(payment_body(1000, json!({})));
        }
        let reply = call.send().await;
        reply.expect_error(403, "permission_error", "account_key_required", None);
    }
    assert_eq!(merchant.payments().await.len(), 1, "no payment was made");

    // Unknown, malformed and missing keys: 401 on both sides.
    let unknown = server.client("plk_0123456789012345678901234567890123456789012");
    let short = server.client("plk_short");
    for api in [&unknown, &short] {
        for path in ["/v1/accounts", "/v1/payments"] {
            api.get(path)
                .await
                .expect_error(401, "authentication_error", "api_key_invalid", None);
        }
    }
    platform
        .call(Method::GET, "/v1/accounts")
        .without_key()
        .send()
        .await
        .expect_error(401, "authentication_error", "api_key_invalid", None);
    // `X-Api-Key` carries a platform key as well.
    let key = platform.key.clone();
    let reply = platform
        .call(Method::GET, "/v1/accounts")
        .without_key()
        .header("X-Api-Key", &key)
        .send()
        .await;
    reply.expect_status(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_unknown_accounts() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let account = server.sandbox_account();
    let path = format!("/v1/accounts/{account}");

    for route in ["/v1/accounts", path.as_str()] {
        platform.post_json(route, json!({})).await.expect_error(
            400,
            "invalid_request_error",
            "parameter_missing",
            Some("name"),
        );
        for name in [
            String::new(),
            "   ".into(),
            "x".repeat(201),
            "Shop\u{0}".into(),
            "Two\nlines".into(),
        ] {
            platform
                .post_json(route, json!({ "name": name }))
                .await
                .expect_error(
                    400,
                    "invalid_request_error",
                    "parameter_invalid",
                    Some("name"),
                );
        }
        platform
            .post_json(route, json!({"name": 5}))
            .await
            .expect_error(
                400,
                "invalid_request_error",
                "parameter_invalid",
                Some("name"),
            );
        platform
            .post_json(route, json!({"name": "Shop", "email": "a@b.c"}))
            .await
            .expect_error(
                400,
                "invalid_request_error",
                "parameter_unknown",
                Some("email"),
            );
    }
    let longest = "é".repeat(200);
    assert_eq!(
        create_account(&platform, &longest).await["name"],
        longest.as_str(),
        "200 characters (not bytes) is the longest name"
    );
    assert_eq!(
        platform.get(&path).await.expect_status(200)["name"],
        "Sandbox",
        "refused renames changed nothing"
    );

    // Unknown and malformed ids: 404 on every route that takes one.
    let unknown = "acct_0000000000000000000000000000";
    for id in [unknown, "acct_nope", "pay_0000000000000000000000000000"] {
        let path = format!("/v1/accounts/{id}");
        platform.get(&path).await.expect_error(
            404,
            "invalid_request_error",
            "resource_missing",
            Some("id"),
        );
        platform
            .post_json(&path, json!({"name": "Ghost"}))
            .await
            .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
        platform
            .call(Method::DELETE, &path)
            .send()
            .await
            .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    }
    platform
        .get(&format!("{path}?expand=keys"))
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_unknown",
            Some("expand"),
        );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_posts_are_idempotent() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let first = platform
        .call(Method::POST, "/v1/accounts")
        .json(json!({"name": "Once"}))
        .idempotency_key("make-once")
        .send()
        .await;
    let first = first.expect_status(201).clone();
    let again = platform
        .call(Method::POST, "/v1/accounts")
        .json(json!({"name": "Once"}))
        .idempotency_key("make-once")
        .send()
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.expect_status(201), &first);
    platform
        .call(Method::POST, "/v1/accounts")
        .json(json!({"name": "Twice"}))
        .idempotency_key("make-once")
        .send()
        .await
        .expect_error(
            409,
            "idempotency_error",
            "idempotency_key_reused",
            Some("Idempotency-Key"),
        );
    let names: Vec<Value> = platform
        .list_all("/v1/accounts")
        .await
        .iter()
        .map(|account| account["name"].clone())
        .collect();
    assert_eq!(names, [json!("Once"), json!("Sandbox")]);

    // The same key from an account is another scope: it runs (and is refused for its kind).
    let path = format!("/v1/accounts/{}", id_of(&first));
    let renamed = platform
        .call(Method::POST, &path)
        .json(json!({"name": "Renamed"}))
        .idempotency_key("rename-1")
        .send()
        .await;
    renamed.expect_status(200);
    let replayed = platform
        .call(Method::POST, &path)
        .json(json!({"name": "Renamed"}))
        .idempotency_key("rename-1")
        .send()
        .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json, renamed.json);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_see_each_other() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let a = create_account(&platform, "A").await;
    let b = create_account(&platform, "B").await;
    let api_a = server.client(&secret_key_of(&a));
    let api_b = server.client(&secret_key_of(&b));
    let payment = api_a.new_payment().await;
    api_b
        .get(&format!("/v1/payments/{}", id_of(&payment)))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    assert!(api_b.payments().await.is_empty());
    assert_eq!(
        api_b.get("/v1/account").await.expect_status(200)["id"],
        id_of(&b).as_str()
    );
    assert_eq!(
        api_a.get("/v1/account").await.expect_status(200)["id"],
        id_of(&a).as_str()
    );
    server.stop().await;
}

/// Rows of `account` left in every table that holds account data.
async fn rows_of(url: &str, account: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for table in [
        "accounts",
        "api_keys",
        "payments",
        "refunds",
        "disputes",
        "events",
        "idempotency_keys",
        "balance_transactions",
        "ledger_entries",
        "balance_totals",
        "settlements",
        "webhook_endpoints",
        "webhook_attempts",
    ] {
        let column = if table == "accounts" {
            "id"
        } else {
            "account_id"
        };
        let sql =
            format!("SELECT CAST(count(*) AS BIGINT) FROM {table} WHERE {column} = '{account}'");
        counts.push((table, query_integers(url, &sql).await[0]));
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_removes_the_account_its_keys_and_its_test_data() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let doomed = create_account(&platform, "Doomed").await;
    let doomed_id = id_of(&doomed);
    let api = server.client(&secret_key_of(&doomed));
    let (_, restricted) = server
        .new_key(&doomed_id, Mode::Test, &["payments:read"])
        .await;
    // Test data in every table: payments (one completed and refunded, with its ledger and
    // balance), an endpoint with deliveries and attempts, events, idempotency keys, a
    // settlement.
    let receiver = common::receiver::Receiver::start().await;
    let endpoint = api
        .post_json("/v1/webhooks", json!({"url": receiver.url()}))
        .await;
    endpoint.expect_status(201);
    let completed = api.completed_payment().await;
    api.call(Method::POST, "/v1/refunds")
        .json(json!({"payment": id_of(&completed), "amount": 100}))
        .idempotency_key("refund-1")
        .send()
        .await
        .expect_status(201);
    api.post_json(
        &format!("/v1/test_helpers/payments/{}/dispute", id_of(&completed)),
        json!({"amount": 100}),
    )
    .await
    .expect_status(201);
    api.create_with_key("pay-1", payment_body(500, json!({})))
        .await
        .expect_status(201);
    api.post_json("/v1/test_helpers/settlements/run", json!({}))
        .await
        .expect_status(200);
    server.deliver_due_webhooks().await;

    // Another account, untouched by the deletion.
    let kept = create_account(&platform, "Kept").await;
    let kept_api = server.client(&secret_key_of(&kept));
    let kept_payment = kept_api.completed_payment().await;
    let kept_rows = rows_of(server.database_url(), &id_of(&kept)).await;
    let before = rows_of(server.database_url(), &doomed_id).await;
    for table in [
        "payments",
        "refunds",
        "disputes",
        "events",
        "idempotency_keys",
        "webhook_endpoints",
    ] {
        let (_, count) = before.iter().find(|(t, _)| *t == table).expect("a table");
        assert!(*count > 0, "test data in {table} before: {before:?}");
    }

    let deleted = platform
        .call(Method::DELETE, &format!("/v1/accounts/{doomed_id}"))
        .send()
        .await;
    assert_eq!(
        deleted.expect_status(200),
        &json!({"id": doomed_id, "object": "account", "deleted": true})
    );
    let after = rows_of(server.database_url(), &doomed_id).await;
    assert!(
        after.iter().all(|(_, count)| *count == 0),
        "nothing of the account is left: {after:?}"
    );
    let deliveries = query_integers(
        server.database_url(),
        "SELECT CAST(count(*) AS BIGINT) FROM webhook_deliveries d \
         WHERE NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = d.endpoint_id)",
    )
    .await;
    assert_eq!(deliveries, [0], "no delivery outlives its endpoint");
    for gone in [&api, &restricted] {
        gone.get("/v1/payments").await.expect_error(
            401,
            "authentication_error",
            "api_key_invalid",
            None,
        );
    }
    platform
        .get(&format!("/v1/accounts/{doomed_id}"))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    platform
        .call(Method::DELETE, &format!("/v1/accounts/{doomed_id}"))
        .send()
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));

    assert_eq!(
        rows_of(server.database_url(), &id_of(&kept)).await,
        kept_rows
    );
    assert_eq!(
        kept_api.payment(&id_of(&kept_payment)).await["status"],
        "completed"
    );
    common::ledger::assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_live_data_is_not_deleted() {
    let server = TestServer::start().await;
    let platform = server.platform_api().await;
    let account = create_account(&platform, "Live shop").await;
    let id = id_of(&account);
    let test_api = server.client(&secret_key_of(&account));
    let test_payment = test_api.new_payment().await;

    // A live key alone is not live data: such an account is deleted.
    let spare = create_account(&platform, "Spare").await;
    server.new_key(&id_of(&spare), Mode::Live, &[]).await;
    platform
        .call(Method::DELETE, &format!("/v1/accounts/{}", id_of(&spare)))
        .send()
        .await
        .expect_status(200);

    let (_, live) = server.new_key(&id, Mode::Live, &[]).await;
    let live_payment = live.new_payment().await;
    let before = rows_of(server.database_url(), &id).await;
    let refused = platform
        .call(Method::DELETE, &format!("/v1/accounts/{id}"))
        .send()
        .await;
    refused.expect_error(
        422,
        "invalid_request_error",
        "account_has_live_data",
        Some("id"),
    );
    assert_eq!(
        rows_of(server.database_url(), &id).await,
        before,
        "nothing was deleted"
    );
    assert_eq!(
        test_api.payment(&id_of(&test_payment)).await["status"],
        "pending"
    );
    assert_eq!(live.payment(&id_of(&live_payment)).await["livemode"], true);
    assert_eq!(
        platform
            .get(&format!("/v1/accounts/{id}"))
            .await
            .expect_status(200)["name"],
        "Live shop"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_key_from_the_environment_is_stored_hashed_and_kept() {
    let database = fresh_database().await;
    let db = database.url.clone();
    let server = TestServer::start_with(Options {
        platform_key: Some(ENV_PLATFORM_KEY.into()),
        database_url: Some(db.clone()),
        ..Options::default()
    })
    .await;
    let account = create_account(&server.client(ENV_PLATFORM_KEY), "Before restart").await;
    server.stop().await;

    let stored = query_strings(&db, "SELECT display FROM platform_keys").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        !stored[0].contains("0123456789abcdef"),
        "only a short form: {stored:?}"
    );
    let everything = query_strings(&db, "SELECT id || display || source FROM platform_keys").await;
    assert!(everything.iter().all(|row| !row.contains(ENV_PLATFORM_KEY)));

    // A start with the same value keeps the one key; the accounts are all still there.
    let server = TestServer::start_with(Options {
        platform_key: Some(ENV_PLATFORM_KEY.into()),
        database_url: Some(db.clone()),
        ..Options::default()
    })
    .await;
    let platform = server.client(ENV_PLATFORM_KEY);
    let ids: BTreeSet<String> = platform
        .list_all("/v1/accounts")
        .await
        .iter()
        .map(id_of)
        .collect();
    assert!(ids.contains(&id_of(&account)));
    assert_eq!(
        query_integers(&db, "SELECT CAST(count(*) AS BIGINT) FROM platform_keys").await,
        [1]
    );
    let from_cli = server.platform_api().await;
    server.stop().await;

    // Another value replaces the one before it; a key made by the command line stays.
    let rotated = "plk_rotated_0123456789abcdefghijklmnopqrstuv";
    let server = TestServer::start_with(Options {
        platform_key: Some(rotated.into()),
        database_url: Some(db.clone()),
        ..Options::default()
    })
    .await;
    server
        .client(rotated)
        .get("/v1/accounts")
        .await
        .expect_status(200);
    server
        .client(&from_cli.key)
        .get("/v1/accounts")
        .await
        .expect_status(200);
    server
        .client(ENV_PLATFORM_KEY)
        .get("/v1/accounts")
        .await
        .expect_error(401, "authentication_error", "api_key_invalid", None);
    server.stop().await;

    // A value that is not a platform key stops the start, before anything is written.
    for bad in [
        "plk_tooshort",
        "sk_test_0123456789abcdefghijklmnopqrstuv",
        "plk_0123456789 abcdefghijklmnopqrstuvwxyz",
    ] {
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("an address");
        let mut settings =
            Settings::new(listen, db.clone(), None, FileConfig::default()).expect("settings");
        settings.platform_key = Some(vinr_server::redacted::Redacted::new(bad.to_owned()));
        let error = match vinr_server::server::start(settings, Arc::new(SystemClock)).await {
            Ok(_) => panic!("`{bad}` was taken as a platform key"),
            Err(error) => error,
        };
        assert!(error.contains("VINR_PLATFORM_KEY"), "{error}");
        assert!(!error.contains(bad), "the value is not echoed: {error}");
    }
    drop(database);
}

/// The word of `text` that starts with `prefix`.
fn word_with_prefix(text: &str, prefix: &str) -> Option<String> {
    text.split_whitespace()
        .find(|word| word.starts_with(prefix))
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_makes_platform_keys_and_lists_and_renames_accounts() {
    let server = TestServer::start().await;
    let db = server.database_url().to_owned();
    let output = vinr(&["platform-keys", "create", "--database-url", &db]).await;
    let stdout = output.expect_success();
    let key = word_with_prefix(stdout, "plk_").expect("a plk_ key on stdout");
    assert!(
        !output.stderr.contains(&key),
        "the key must not reach the log"
    );
    let platform = server.client(&key);
    let made = create_account(&platform, "From the API").await;

    let output = vinr(&["accounts", "list", "--database-url", &db]).await;
    let listed = output.expect_success();
    let lines: Vec<&str> = listed.lines().skip(1).collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with(&id_of(&made)) && lines[0].ends_with("From the API"));
    assert!(lines[1].starts_with(&server.sandbox_account()) && lines[1].ends_with("Sandbox"));

    let output = vinr(&[
        "accounts",
        "rename",
        &id_of(&made),
        "Renamed by CLI",
        "--database-url",
        &db,
    ])
    .await;
    output.expect_success();
    assert_eq!(
        platform
            .get(&format!("/v1/accounts/{}", id_of(&made)))
            .await
            .expect_status(200)["name"],
        "Renamed by CLI"
    );
    let output = vinr(&[
        "accounts",
        "rename",
        "acct_0000000000000000000000000000",
        "Ghost",
        "--database-url",
        &db,
    ])
    .await;
    assert!(output.expect_failure().contains("no such account"));
    let output = vinr(&[
        "accounts",
        "rename",
        &id_of(&made),
        "",
        "--database-url",
        &db,
    ])
    .await;
    assert!(output.expect_failure().contains("name"));

    // List and revoke platform keys: the secret is never shown again.
    let output = vinr(&["platform-keys", "list", "--database-url", &db]).await;
    let listed = output.expect_success();
    assert!(!listed.contains(&key), "{listed}");
    let key_id = word_with_prefix(listed, "plkey_").expect("a platform key id");
    assert!(
        listed.contains("active") && listed.contains("cli"),
        "{listed}"
    );
    let output = vinr(&["platform-keys", "revoke", &key_id, "--database-url", &db]).await;
    output.expect_success();
    platform.get("/v1/accounts").await.expect_error(
        401,
        "authentication_error",
        "api_key_invalid",
        None,
    );
    let output = vinr(&["platform-keys", "revoke", &key_id, "--database-url", &db]).await;
    assert!(output
        .expect_failure()
        .contains("no such active platform key"));
    server.stop().await;
}
