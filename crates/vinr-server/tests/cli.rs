//! The command line (SPEC §8): `vinr accounts create`, `vinr keys create|list|revoke`,
//! `vinr settle [--report]` and `vinr migrate`, run as real processes against the database a
//! server is serving; every printed key is tried over HTTP, and every printed settlement is
//! compared with what the API answers.

mod common;

use std::sync::Arc;

use common::database::{execute, postgres_url};
use common::process::{vinr, vinr_with};
use common::*;
use serde_json::{json, Value};
use vinr_domain::{Mode, UnixMillis};
use vinr_server::clock::{Clock, ManualClock};
use vinr_server::workers::refunds;

const DAY_MS: i64 = 86_400_000;

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
    vinr(&["migrate", "--database-url", &db])
        .await
        .expect_success();
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
    assert!(
        server.account_id.is_some(),
        "an account made before the first start does not stand in for the sandbox account"
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
    // Used twice, so that the server's key cache holds it when it is revoked.
    for _ in 0..2 {
        doomed
            .get(&format!("/v1/payments/{}", id_of(&payment)))
            .await
            .expect_status(200);
    }

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_that_fails_leaves_the_sandbox_to_the_next() {
    let database = fresh_database().await;
    let db = database.url.clone();
    // The port is taken, or the configuration names no certificates: `vinr serve` stops
    // before it touches the database, so no sandbox key is made that nobody was shown.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = taken.local_addr().expect("an address").to_string();
    let output = vinr(&["serve", "--listen", &addr, "--database-url", &db]).await;
    output.expect_failure();
    assert!(output.stderr.contains("cannot listen"), "{}", output.stderr);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("vinr.toml");
    std::fs::write(
        &config,
        "[webhooks]\nroot_certificates = \"/nonexistent/ca.pem\"\n",
    )
    .expect("the config written");
    let config = config.to_str().expect("a UTF-8 path");
    let output = vinr(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--config",
        config,
    ])
    .await;
    output.expect_failure();
    assert!(
        output.stderr.contains("webhooks.root_certificates"),
        "{}",
        output.stderr
    );
    drop(taken);

    let server = TestServer::start_with(Options {
        database_url: Some(db),
        ..Options::default()
    })
    .await;
    assert!(
        server.account_id.is_some(),
        "the first start that succeeds makes the sandbox and prints its key"
    );
    server.api().new_payment().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_other_than_serve_and_migrate_never_create_a_database() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let missing = dir.path().join("elsewhere.db");
    let url = format!("sqlite://{}", missing.display());
    let commands: [&[&str]; 6] = [
        &["accounts", "create", "--name", "Shop"],
        &[
            "keys",
            "create",
            "--account",
            "acct_000000000000000000000000",
        ],
        &["keys", "list", "--account", "acct_000000000000000000000000"],
        &["keys", "revoke", "key_000000000000000000000000"],
        &["settle"],
        &["settle", "--report", "setl_000000000000000000000000"],
    ];
    let expected = format!("no database at {}", missing.display());
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--database-url", url.as_str()]);
        let output = vinr(&args).await;
        let stderr = output.expect_failure();
        assert!(stderr.contains(&expected), "{command:?}: {stderr}");
        assert!(!missing.exists(), "{command:?} made {}", missing.display());
    }
    // The default URL, run from another directory: no `./vinr.db` appears.
    let output = vinr_with(Some(dir.path()), &[], &["settle"]).await;
    let stderr = output.expect_failure();
    assert!(stderr.contains("no database at vinr.db"), "{stderr}");
    assert!(
        stderr.contains(&dir.path().join("vinr.db").display().to_string()),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path())
            .expect("the directory")
            .count(),
        0
    );
    // A PostgreSQL database that does not exist is the same error (the password not shown).
    if let Some(admin) = postgres_url() {
        let mut url = url::Url::parse(&admin).expect("a URL");
        url.set_path(&format!("/vinr_t_missing_{:016x}", rand::random::<u64>()));
        let _ = url.set_password(Some("hunter2"));
        let output = vinr(&["settle", "--database-url", url.as_str()]).await;
        let stderr = output.expect_failure();
        assert!(stderr.contains("no database at postgres://"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
    // `migrate` makes one; then the same commands run (and find nothing).
    vinr(&["migrate", "--database-url", &url])
        .await
        .expect_success();
    assert!(missing.exists());
    let output = vinr(&[
        "settle",
        "--report",
        "setl_000000000000000000000000",
        "--database-url",
        &url,
    ])
    .await;
    assert!(
        output.expect_failure().contains("no such settlement"),
        "{}",
        output.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_names_postgres_and_every_config_table() {
    let help = vinr(&["serve", "--help"]).await;
    let help = help.expect_success();
    for table in [
        "modes",
        "[http]",
        "[rate_limit]",
        "[idempotency]",
        "[payments]",
        "[webhooks]",
        "[pricing]",
        "[settlements]",
        "[sandbox]",
        "VINR_SANDBOX_SECRET_KEY",
    ] {
        assert!(
            help.contains(table),
            "{table} in `vinr serve --help`:\n{help}"
        );
    }
    for command in [
        &["serve"][..],
        &["migrate"],
        &["settle"],
        &["accounts", "create"],
        &["keys", "create"],
        &["keys", "list"],
        &["keys", "revoke"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let output = vinr(&args).await;
        let help = output.expect_success();
        assert!(
            help.contains("postgres://") && help.contains("sqlite://"),
            "{command:?} --help:\n{help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_test_schedule_stops_the_start() {
    let database = fresh_database().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("vinr.toml");
    std::fs::write(&config, "[settlements]\ntest_schedule = \"sometimes\"\n").expect("written");
    let config = config.to_str().expect("a UTF-8 path");
    let output = vinr(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &database.url,
        "--config",
        config,
    ])
    .await;
    let stderr = output.expect_failure();
    assert!(
        stderr
            .contains("settlements.test_schedule must be `interval` or `manual`, not `sometimes`"),
        "{stderr}"
    );
    assert_eq!(database.table_count().await, 0, "nothing was made");
}

/// The columns `vinr settle` prints, one row per settlement it made.
const SETTLE_COLUMNS: [&str; 10] = [
    "settlement",
    "mode",
    "currency",
    "status",
    "gross",
    "refunds",
    "disputes",
    "fees",
    "net",
    "count",
];

/// Runs `vinr settle <extra…>` on `db`, expecting success and the header; answers the rows
/// it printed, split into columns.
async fn settle(db: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["settle", "--database-url", db];
    args.extend_from_slice(extra);
    let output = vinr(&args).await;
    let stdout = output.expect_success();
    let mut lines = stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_else(|| panic!("no header:\n{stdout}"))
        .split_whitespace()
        .collect();
    assert_eq!(header, SETTLE_COLUMNS, "the header:\n{stdout}");
    let rows: Vec<Vec<String>> = lines
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect();
    for row in &rows {
        assert_eq!(row.len(), SETTLE_COLUMNS.len(), "a row:\n{stdout}");
        assert!(row[0].starts_with("setl_"), "a settlement id:\n{stdout}");
    }
    assert!(
        output
            .stderr
            .contains(&format!("{} settlement(s) made", rows.len())),
        "the summary on standard error: {}",
        output.stderr
    );
    rows
}

/// A captured payment of `amount` `currency`, optionally captured in part; answers its id.
async fn captured(api: &Api, amount: i64, currency: &str, part: Option<i64>) -> String {
    let payment = api
        .create_payment(payment_body(
            amount,
            json!({"currency": currency, "capture": part.is_none()}),
        ))
        .await;
    let id = id_of(&payment);
    api.pay(&id, CARD_APPROVED).await.expect_status(200);
    if let Some(part) = part {
        api.capture(&id, json!({"amount": part}))
            .await
            .expect_status(200);
    }
    id
}

/// A refund of `amount` of `payment`, driven to `succeeded` by the refunds worker.
async fn refunded(server: &TestServer, api: &Api, payment: &str, amount: i64) -> String {
    let refund = api
        .post_json("/v1/refunds", json!({"payment": payment, "amount": amount}))
        .await;
    let id = id_of(refund.expect_status(201));
    for _ in 0..100 {
        refunds::step(server.app()).await.expect("a refunds step");
        let status = api.get(&format!("/v1/refunds/{id}")).await;
        match status.expect_status(200)["status"].as_str() {
            Some("pending") => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Some("succeeded") => return id,
            other => panic!("refund {id} ended {other:?}"),
        }
    }
    panic!("refund {id} still pending");
}

/// Asserts a printed row is the settlement the API answers.
async fn assert_row_is(api: &Api, row: &[String]) -> Value {
    let settlement = api.get(&format!("/v1/settlements/{}", row[0])).await;
    let settlement = settlement.expect_status(200).clone();
    let text = |name: &str| settlement[name].as_str().unwrap_or_default().to_owned();
    let expected = [
        if settlement["livemode"] == true {
            "live"
        } else {
            "test"
        }
        .to_owned(),
        text("currency"),
        text("status"),
        settlement["gross"].to_string(),
        settlement["refunds"].to_string(),
        settlement["disputes"].to_string(),
        settlement["fees"].to_string(),
        settlement["net"].to_string(),
        settlement["transactionCount"].to_string(),
    ];
    assert_eq!(row[1..], expected, "{settlement}");
    settlement
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_prints_each_settlement_and_settles_only_what_is_selected() {
    // `vinr settle` runs on the real clock; the server's runs three days behind it, so live
    // funds (available T+2) are due when the command runs.
    let now = vinr_server::clock::SystemClock.now().0;
    let clock = Arc::new(ManualClock::new(UnixMillis(now - now % 1000 - 3 * DAY_MS)));
    let server = TestServer::start_with(Options {
        clock: Some(clock),
        live_sandbox: true,
        ..Options::default()
    })
    .await;
    let db = server.database_url().to_owned();
    let api = server.api();
    let full = captured(&api, 1000, "EUR", None).await;
    captured(&api, 1000, "EUR", Some(600)).await;
    refunded(&server, &api, &full, 400).await;
    captured(&api, 1234, "JPY", None).await;
    let (other_id, other) = server.new_account("Other").await;
    captured(&other, 500, "EUR", None).await;
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let payment = live.create_payment(payment_body(2000, json!({}))).await;
    pay_at_checkout(&payment, CARD_APPROVED).await;

    // `--mode live` settles the live funds only; the live payout waits 24 h.
    let rows = settle(&db, &["--mode", "live"]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let settlement = assert_row_is(&live, &rows[0]).await;
    assert_eq!(
        (&rows[0][1], &rows[0][3]),
        (&"live".into(), &"pending".into())
    );
    assert_eq!(settlement["net"], 2000 - 53);
    assert!(api.list_all("/v1/settlements").await.is_empty());
    assert!(other.list_all("/v1/settlements").await.is_empty());

    // `--account` settles that account only.
    let rows = settle(&db, &["--account", &other_id]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let settlement = assert_row_is(&other, &rows[0]).await;
    assert_eq!(
        (&rows[0][2], &rows[0][3]),
        (&"EUR".to_owned(), &"paid".to_owned()),
        "test payouts are sent at once"
    );
    assert_eq!(settlement["net"], 500 - 32);
    assert!(api.list_all("/v1/settlements").await.is_empty());

    // `--mode test` settles the rest: the sandbox's EUR and JPY, each once.
    let rows = settle(&db, &["--mode", "test"]).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut by_currency = Vec::new();
    for row in &rows {
        let settlement = assert_row_is(&api, row).await;
        by_currency.push((row[2].clone(), settlement));
    }
    by_currency.sort_by(|a, b| a.0.cmp(&b.0));
    let (eur, jpy) = (&by_currency[0].1, &by_currency[1].1);
    assert_eq!(by_currency[0].0, "EUR");
    // 1000 + 600 captured, 400 refunded, fees 39 + 33; two captures and a refund.
    assert_eq!(
        (&eur["gross"], &eur["refunds"], &eur["fees"], &eur["net"]),
        (&json!(1600), &json!(400), &json!(72), &json!(1128))
    );
    assert_eq!(eur["transactionCount"], 3);
    assert_eq!(
        (&jpy["net"], &jpy["transactionCount"]),
        (&json!(1192), &json!(1))
    );

    // Nothing is left, so another run (of everything) makes nothing, and sends no live payout
    // before its delay.
    assert!(settle(&db, &[]).await.is_empty());
    assert_eq!(api.list_all("/v1/settlements").await.len(), 2);
    assert_eq!(other.list_all("/v1/settlements").await.len(), 1);
    let made = live.list_all("/v1/settlements").await;
    assert_eq!((made.len(), &made[0]["status"]), (1, &json!("pending")));

    // `--config` brings the server's `[settlements]`: without a payout delay, the live
    // settlement made earlier is paid out.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("vinr.toml");
    std::fs::write(&config, "[settlements]\nlive_payout_delay_hours = 0\n").expect("written");
    let config = config.to_str().expect("a UTF-8 path");
    let output = vinr(&["settle", "--config", config, "--database-url", &db]).await;
    output.expect_success();
    assert!(
        output
            .stderr
            .contains("1 payout(s) sent (1 of earlier settlements)"),
        "{}",
        output.stderr
    );
    assert_eq!(live.list_all("/v1/settlements").await[0]["status"], "paid");

    // New activity is settled by the next run, alone.
    captured(&api, 2000, "EUR", None).await;
    let rows = settle(&db, &[]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][9], "1");

    let output = vinr(&["settle", "--mode", "sometimes", "--database-url", &db]).await;
    assert!(output.expect_failure().contains("sometimes"));
    // A mistyped account is an error, not a run that settles nothing.
    let output = vinr(&["settle", "--account", "acct_nope", "--database-url", &db]).await;
    assert!(output
        .expect_failure()
        .contains("no such account: acct_nope"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_report_prints_the_reconciliation_and_fails_when_it_does_not_add_up() {
    let server = TestServer::start().await;
    let db = server.database_url().to_owned();
    let api = server.api();
    let full = captured(&api, 1000, "EUR", None).await;
    let part = captured(&api, 1000, "EUR", Some(600)).await;
    let refund = refunded(&server, &api, &full, 400).await;
    let rows = settle(&db, &[]).await;
    assert_eq!(rows.len(), 1);
    let id = rows[0][0].clone();

    let output = vinr(&["settle", "--report", &id, "--database-url", &db]).await;
    let report = output.expect_success();
    let title = report.lines().next().unwrap_or_default();
    for word in [
        id.as_str(),
        &server.sandbox_account(),
        "test",
        "EUR",
        "paid",
    ] {
        assert!(title.contains(word), "{word} in the title:\n{report}");
    }
    // One line per transaction, naming its source, so each matches a payment or refund.
    let transactions = api
        .list_all(&format!("/v1/settlements/{id}/transactions"))
        .await;
    assert_eq!(transactions.len(), 3);
    for transaction in &transactions {
        let line = report
            .lines()
            .find(|line| line.starts_with(&id_of(transaction)))
            .unwrap_or_else(|| panic!("{} is not listed:\n{report}", id_of(transaction)));
        let source = transaction["source"].as_str().unwrap_or_default();
        assert!(line.contains(source), "{line}");
        assert!(
            line.contains(&format!(" {} ", transaction["net"])),
            "{line}"
        );
    }
    let sources: Vec<&str> = transactions
        .iter()
        .filter_map(|transaction| transaction["source"].as_str())
        .collect();
    for source in [&full, &part, &refund] {
        assert!(
            sources.contains(&source.as_str()),
            "{source} in {sources:?}"
        );
    }
    assert_eq!(
        report
            .lines()
            .filter(|line| line.starts_with("btx_"))
            .count(),
        3
    );
    assert!(
        report.contains("gross 1600  refunds 400  disputes 0  fees 72  net 1128"),
        "{report}"
    );
    let checks: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("ok") || line.starts_with("FAIL"))
        .collect();
    assert_eq!(checks.len(), 8, "{report}");
    assert!(checks.iter().all(|line| line.starts_with("ok")), "{report}");
    // The payout is its own balance transaction, checked against −net, not a line.
    let payout = api
        .list_all(&format!("/v1/balance_transactions?type=payout&source={id}"))
        .await;
    assert_eq!(payout.len(), 1);
    assert!(
        report.contains(&format!(
            "ok   payout: -1128 booked ({}), -1128 owed by a paid settlement",
            id_of(&payout[0])
        )),
        "{report}"
    );

    // An unknown settlement is an error that says so.
    let output = vinr(&[
        "settle",
        "--report",
        "setl_000000000000000000000000",
        "--database-url",
        &db,
    ])
    .await;
    assert!(
        output
            .expect_failure()
            .contains("no such settlement: setl_000000000000000000000000"),
        "{}",
        output.stderr
    );

    // A transaction taken out of the settlement behind the server's back: the report says
    // which checks fail, and exits with an error.
    let detached = id_of(&transactions[0]);
    let changed = execute(
        &db,
        &format!("UPDATE balance_transactions SET settlement_id = NULL WHERE id = '{detached}'"),
    )
    .await;
    assert_eq!(changed, 1);
    let output = vinr(&["settle", "--report", &id, "--database-url", &db]).await;
    assert!(
        output.expect_failure().contains("does not add up"),
        "{}",
        output.stderr
    );
    assert!(
        output
            .stdout
            .contains("FAIL transactions: 2 from the transactions, 3"),
        "{}",
        output.stdout
    );
    assert!(!output.stdout.contains(&detached), "{}", output.stdout);
    server.stop().await;
}
