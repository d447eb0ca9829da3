//! The sandbox account of a first start and the fixed sandbox key (SPEC §8, §10), through the
//! real `vinr` binary on the suite's backend: `VINR_SANDBOX_SECRET_KEY` / `[sandbox]
//! secret_key` is the first-start key and is kept (or added) on later starts, never printed or
//! logged; a bad one stops the start before the database is touched; an account made with
//! `vinr accounts create` before the first `serve` does not stop the sandbox account; two
//! PostgreSQL nodes starting together with one fixed key make one sandbox account.

mod common;

use common::database::{execute, fresh_database, fresh_postgres_database, query_strings};
use common::process::{config_without_rate_limits, vinr, vinr_with, Served};
use common::*;

const VAR: &str = "VINR_SANDBOX_SECRET_KEY";

/// A valid fixed key: `sk_test_` and 40 letters and digits starting with `tag`.
fn fixed_key(tag: &str) -> String {
    let random = format!("{tag}{}", "0123456789abcdefghijKLMNOPQRSTUVWXYZ0123456789");
    format!("sk_test_{}", &random[..40])
}

/// The ids of `api`'s payments (a restarted server listens elsewhere, so `checkoutUrl`s
/// differ).
async fn payment_ids(api: &Api) -> Vec<String> {
    api.payments().await.iter().map(id_of).collect()
}

/// The account id on the line `Created … acct_…` among what a process printed.
fn created_account(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .find(|line| line.starts_with("Created "))
        .and_then(|line| word_with_prefix(line, "acct_"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_key_is_the_sandbox_key_and_is_kept_on_every_restart() {
    let database = fresh_database().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config_without_rate_limits(dir.path());
    let key = fixed_key("first");
    let served = Served::start_with_env(dir.path(), &database.url, &config, &[(VAR, &key)]);
    assert_eq!(served.printed_key, None, "{:?}", served.printed);
    let sandbox = created_account(&served.printed).expect("the sandbox account is made");
    let said = served.printed.join("\n");
    assert!(
        said.contains(VAR) && said.contains(&key[key.len() - 4..]),
        "{said}"
    );
    let api = Api::new(&served.base, &key);
    let payment = api.new_payment().await;
    let (status, _) = served.terminate();
    assert!(status.success());

    // The same key again: nothing new is made, the key still opens the same account.
    let served = Served::start_with_env(dir.path(), &database.url, &config, &[(VAR, &key)]);
    assert!(served.printed.is_empty(), "{:?}", served.printed);
    let api = Api::new(&served.base, &key);
    assert_eq!(payment_ids(&api).await, vec![id_of(&payment)]);
    let log = served.log();
    served.terminate();

    // Without it, the key made before still works.
    let served = Served::start(dir.path(), &database.url, &config);
    assert!(served.printed.is_empty(), "{:?}", served.printed);
    assert_eq!(
        payment_ids(&Api::new(&served.base, &key)).await,
        vec![id_of(&payment)]
    );
    served.terminate();

    // Another value: added to the sandbox account, beside the first.
    let second = fixed_key("second");
    let served = Served::start_with_env(dir.path(), &database.url, &config, &[(VAR, &second)]);
    assert_eq!(served.printed_key, None);
    let said = served.printed.join("\n");
    assert!(
        said.contains("Added the test secret key") && said.contains(&sandbox),
        "{said}"
    );
    assert_eq!(
        payment_ids(&Api::new(&served.base, &second)).await,
        vec![id_of(&payment)]
    );
    assert_eq!(
        payment_ids(&Api::new(&served.base, &key)).await,
        vec![id_of(&payment)]
    );
    let log = format!("{log}{}", served.log());
    served.terminate();

    // Revoked by the operator: a restart with it does not bring it back.
    let output = vinr(&[
        "keys",
        "list",
        "--account",
        &sandbox,
        "--database-url",
        &database.url,
    ])
    .await;
    let listing = output.expect_success().to_owned();
    let key_id = listing
        .lines()
        .find(|line| line.contains(&key[key.len() - 4..]))
        .and_then(|line| word_with_prefix(line, "key_"))
        .unwrap_or_else(|| panic!("the fixed key is listed:\n{listing}"));
    vinr(&["keys", "revoke", &key_id, "--database-url", &database.url])
        .await
        .expect_success();
    let served = Served::start_with_env(dir.path(), &database.url, &config, &[(VAR, &key)]);
    assert!(served.printed.is_empty(), "{:?}", served.printed);
    let reply = Api::new(&served.base, &key).get("/v1/payments").await;
    reply.expect_error(401, "authentication_error", "api_key_invalid", None);
    let log = format!("{log}{}", served.log());
    assert!(log.contains("revoked"), "the start warns: {log}");
    served.terminate();
    for secret in [&key, &second] {
        assert!(!log.contains(secret.as_str()), "a fixed key in the log");
        assert!(!listing.contains(secret.as_str()), "a fixed key listed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_key_can_come_from_the_config_file() {
    let database = fresh_database().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let key = fixed_key("file");
    let config = dir.path().join("vinr.toml");
    std::fs::write(
        &config,
        format!("[rate_limit]\nenabled = false\n\n[sandbox]\nsecret_key = \"{key}\"\n"),
    )
    .expect("the config written");
    let served = Served::start(dir.path(), &database.url, &config);
    assert_eq!(served.printed_key, None);
    let said = served.printed.join("\n");
    assert!(said.contains("sandbox.secret_key"), "{said}");
    assert!(created_account(&served.printed).is_some(), "{said}");
    Api::new(&served.base, &key).new_payment().await;
    assert!(!served.log().contains(&key));
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_fixed_key_stops_the_start_before_the_database_is_touched() {
    let database = fresh_database().await;
    let serve = ["serve", "--listen", "127.0.0.1:0", "--database-url"];
    let short = format!("sk_test_{}", "a".repeat(31));
    let live = format!("sk_live_{}", "a".repeat(40));
    let dashed = format!("sk_test_{}-{}", "a".repeat(20), "b".repeat(20));
    for (bad, says) in [
        (short.as_str(), "32 to 128 letters and digits"),
        (live.as_str(), "starts with `sk_test_`"),
        (dashed.as_str(), "letters and digits"),
        ("", "set but empty"),
    ] {
        let mut args = serve.to_vec();
        args.push(&database.url);
        let output = vinr_with(None, &[(VAR, bad)], &args).await;
        let stderr = output.expect_failure();
        assert!(stderr.contains(VAR) && stderr.contains(says), "{stderr}");
        if !bad.is_empty() {
            assert!(!stderr.contains(bad), "the message shows the key: {stderr}");
        }
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("vinr.toml");
    std::fs::write(&config, format!("[sandbox]\nsecret_key = \"{short}\"\n")).expect("written");
    let config = config.to_str().expect("a UTF-8 path");
    let mut args = serve.to_vec();
    args.extend([database.url.as_str(), "--config", config]);
    let stderr = vinr(&args).await.expect_failure().to_owned();
    assert!(stderr.contains("sandbox.secret_key: "), "{stderr}");
    assert!(!stderr.contains(&short), "{stderr}");
    assert_eq!(database.table_count().await, 0, "nothing was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_made_before_the_first_serve_leaves_the_sandbox_to_it() {
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
    let created: Vec<String> = output.expect_success().lines().map(str::to_owned).collect();
    let shop = created_account(&created).expect("the account");
    let shop_key = word_with_prefix(&created.join(" "), "sk_test_").expect("its key");

    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config_without_rate_limits(dir.path());
    let served = Served::start(dir.path(), &db, &config);
    let sandbox = created_account(&served.printed).expect("the first serve makes the sandbox");
    let sandbox_key = served.printed_key.clone().expect("and prints its key");
    assert_ne!(sandbox, shop);
    // Both print the key the same way: the line before it and the key line, but for the key.
    let key_line = |lines: &[String], key: &str| {
        lines
            .iter()
            .find(|line| line.contains(key))
            .map(|line| line.replace(key, "KEY"))
    };
    assert_eq!(
        key_line(&created, &shop_key),
        key_line(&served.printed, &sandbox_key),
        "{created:?} {:?}",
        served.printed
    );
    assert_eq!(created.len(), served.printed.len());
    let sandbox_api = Api::new(&served.base, &sandbox_key);
    let shop_api = Api::new(&served.base, &shop_key);
    let payment = sandbox_api.new_payment().await;
    assert_eq!(shop_api.payments().await.len(), 0, "separate accounts");
    served.terminate();

    // The next start makes nothing more.
    let served = Served::start(dir.path(), &db, &config);
    assert!(served.printed.is_empty(), "{:?}", served.printed);
    assert_eq!(
        payment_ids(&Api::new(&served.base, &sandbox_key)).await,
        vec![id_of(&payment)]
    );
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_served_before_the_sandbox_was_recorded_gets_no_new_one() {
    let database = fresh_database().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config_without_rate_limits(dir.path());
    let served = Served::start(dir.path(), &database.url, &config);
    let key = served.printed_key.clone().expect("the first start's key");
    served.terminate();
    // As an older server left it: served (it has the card fingerprint secret), but with no
    // record of which account is the sandbox.
    let removed = execute(
        &database.url,
        "DELETE FROM settings WHERE name = 'sandbox_account'",
    )
    .await;
    assert_eq!(removed, 1);
    let served = Served::start(dir.path(), &database.url, &config);
    assert!(served.printed.is_empty(), "{:?}", served.printed);
    Api::new(&served.base, &key).new_payment().await;
    served.terminate();
    let accounts = query_strings(&database.url, "SELECT id FROM accounts").await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    // A fixed key given later has no known sandbox account to join: it gets a new one.
    let fixed = fixed_key("later");
    let served = Served::start_with_env(dir.path(), &database.url, &config, &[(VAR, &fixed)]);
    let made = created_account(&served.printed).expect("a sandbox account for the key");
    assert!(!accounts.contains(&made));
    Api::new(&served.base, &fixed).new_payment().await;
    served.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_starting_with_one_fixed_key_make_one_sandbox_account() {
    let Some(database) = fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config_without_rate_limits(dir.path());
    let key = fixed_key("nodes");
    let starting: Vec<_> = (0..2)
        .map(|_| {
            let (dir, url, config, key) = (
                dir.path().to_owned(),
                database.url.clone(),
                config.clone(),
                key.clone(),
            );
            std::thread::spawn(move || Served::start_with_env(&dir, &url, &config, &[(VAR, &key)]))
        })
        .collect();
    let nodes: Vec<Served> = starting
        .into_iter()
        .map(|node| node.join().expect("a node starts"))
        .collect();
    let made: Vec<String> = nodes
        .iter()
        .filter_map(|node| created_account(&node.printed))
        .collect();
    assert_eq!(made.len(), 1, "one node makes the sandbox account");
    let accounts = query_strings(&database.url, "SELECT id FROM accounts").await;
    assert_eq!(accounts, made);
    let payment = Api::new(&nodes[0].base, &key).new_payment().await;
    assert_eq!(
        payment_ids(&Api::new(&nodes[1].base, &key)).await,
        vec![id_of(&payment)]
    );
    for node in nodes {
        node.terminate();
    }
}
