//! The ledger through the API (SPEC §7): captures book a `payment` balance transaction with
//! the account's fee, refunds book a negative `refund` one when they are made and a reversal
//! when they fail, an optional refund fee books a `fee` one; `GET /v1/balance` is summed from
//! the ledger's entries. After every workload the database itself is checked: each movement's
//! entries sum to zero and agree with its balance transaction, and the balance equals
//! captured − refunds − fees computed from the payments and refunds the API shows.

mod common;

use common::ledger::assert_ledger_consistent;
use common::race::all_at_once;
use common::*;
use serde_json::{json, Value};
use vinr_domain::ledger::Pricing;
use vinr_domain::Mode;
use vinr_server::config::{AccountPricingConfig, PricingConfig};

/// The balance transactions of `source`, newest first.
async fn movements_of(api: &Api, source: &str) -> Vec<Value> {
    api.list_all(&format!("/v1/balance_transactions?source={source}"))
        .await
}

/// The balance as `(available, pending)` in `currency` (0 when the currency is absent).
async fn balance_in(api: &Api, currency: &str) -> (i64, i64) {
    let balance = api.get("/v1/balance").await;
    let balance = balance.expect_status(200);
    assert_eq!(balance["object"], "balance");
    let side = |name: &str| {
        balance[name]
            .as_array()
            .expect("a list of amounts")
            .iter()
            .find(|amount| amount["currency"] == currency)
            .map_or(0, |amount| amount["amount"].as_i64().expect("an integer"))
    };
    (side("available"), side("pending"))
}

#[tokio::test]
async fn a_capture_books_the_payment_and_its_fee() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment = api.completed_payment().await;
    let payment_id = id_of(&payment);

    let movements = movements_of(&api, &payment_id).await;
    assert_eq!(movements.len(), 1, "{movements:?}");
    let btx = &movements[0];
    assert!(id_of(btx).starts_with("btx_"));
    assert_eq!(btx["object"], "balance_transaction");
    assert_eq!(btx["type"], "payment");
    assert_eq!(btx["source"], payment_id.as_str());
    // 1.4 % of 1000 = 14, + 25.
    assert_eq!(
        (&btx["amount"], &btx["fee"], &btx["net"]),
        (&json!(1000), &json!(39), &json!(961))
    );
    assert_eq!(btx["currency"], "EUR");
    assert_eq!(btx["livemode"], false);
    assert_eq!(btx["settlement"], Value::Null);
    // Test mode: available at once.
    assert_eq!(btx["availableOn"], btx["created_at"]);
    assert_eq!(
        api.get(&format!("/v1/balance_transactions/{}", id_of(btx)))
            .await
            .expect_status(200),
        btx
    );
    assert_eq!(balance_in(&api, "EUR").await, (961, 0));

    // Creating and authorizing move no money; a partial capture books what was captured.
    let authorized = id_of(&api.authorized_payment().await);
    assert!(movements_of(&api, &authorized).await.is_empty());
    api.capture(&authorized, json!({"amount": 600}))
        .await
        .expect_status(200);
    let captured = movements_of(&api, &authorized).await;
    assert_eq!(captured.len(), 1);
    // 1.4 % of 600 = 8.4 → 8, + 25.
    assert_eq!(
        (&captured[0]["amount"], &captured[0]["fee"]),
        (&json!(600), &json!(33))
    );
    assert_eq!(balance_in(&api, "EUR").await, (961 + 567, 0));
    assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn fees_round_half_up_in_minor_units_for_zero_two_and_three_decimal_currencies() {
    let server = TestServer::start().await;
    let api = server.api();
    // (currency, amount, fee): 1.4 % of 1234 = 17.276 → 17; of 1036 = 14.504 → 15; of 1035 =
    // 14.49 → 14; of 1750 = 24.5 → 25 (half up); all + 25, whatever the currency's digits.
    for (currency, amount, fee) in [
        ("JPY", 1234, 42),
        ("EUR", 1234, 42),
        ("KWD", 1234, 42),
        ("EUR", 1036, 40),
        ("USD", 1035, 39),
        ("JPY", 1750, 50),
        ("KWD", 10, 10),
    ] {
        let payment = api
            .create_payment(payment_body(amount, json!({"currency": currency})))
            .await;
        let id = id_of(&payment);
        api.pay(&id, CARD_APPROVED).await.expect_status(200);
        let movements = movements_of(&api, &id).await;
        assert_eq!(movements.len(), 1);
        assert_eq!(movements[0]["currency"], currency);
        assert_eq!(movements[0]["fee"], fee, "{currency} {amount}");
        assert_eq!(movements[0]["net"], amount - fee, "{currency} {amount}");
    }
    // A fee never exceeds what was captured: 10 fils pays 10, not 25.
    assert_eq!(balance_in(&api, "KWD").await, (1234 - 42, 0));
    assert_eq!(balance_in(&api, "JPY").await, (1234 - 42 + 1750 - 50, 0));
    assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn refunds_are_booked_when_made_and_reversed_when_they_fail() {
    let server = TestServer::start().await;
    let api = server.api();
    let good = id_of(&api.completed_payment().await);
    let failing = id_of(
        &api.pay(&id_of(&api.new_payment().await), CARD_REFUNDS_FAIL)
            .await
            .expect_status(200)
            .clone(),
    );
    assert_eq!(balance_in(&api, "EUR").await, (2 * 961, 0));

    let refund = api
        .post_json("/v1/refunds", json!({"payment": good, "amount": 400}))
        .await
        .expect_status(201)
        .clone();
    let refund_id = id_of(&refund);
    let booked = movements_of(&api, &refund_id).await;
    assert_eq!(booked.len(), 1);
    assert_eq!(booked[0]["type"], "refund");
    assert_eq!(
        (&booked[0]["amount"], &booked[0]["fee"], &booked[0]["net"]),
        (&json!(-400), &json!(0), &json!(-400))
    );
    // Refunds return no fee (SPEC §7).
    assert_eq!(balance_in(&api, "EUR").await, (2 * 961 - 400, 0));

    let doomed = api
        .post_json("/v1/refunds", json!({"payment": failing}))
        .await
        .expect_status(201)
        .clone();
    assert_eq!(balance_in(&api, "EUR").await, (2 * 961 - 400 - 1000, 0));
    server.finish_refunds(&api).await;
    let doomed_id = id_of(&doomed);
    assert_eq!(
        api.get(&format!("/v1/refunds/{doomed_id}"))
            .await
            .expect_status(200)["status"],
        "failed"
    );
    let reversed = movements_of(&api, &doomed_id).await;
    assert_eq!(
        reversed.len(),
        2,
        "the refund and its reversal: {reversed:?}"
    );
    assert_eq!(reversed[0]["type"], "refund");
    assert_eq!(reversed[0]["amount"], 1000, "newest first: the reversal");
    assert_eq!(reversed[1]["amount"], -1000);
    assert_eq!(balance_in(&api, "EUR").await, (2 * 961 - 400, 0));

    // Filters: by type, and a type that does not exist.
    let payments = api.list_all("/v1/balance_transactions?type=payment").await;
    assert_eq!(payments.len(), 2);
    assert_eq!(
        api.list_all("/v1/balance_transactions?type=fee")
            .await
            .len(),
        0
    );
    // No settlement ran: no payout yet.
    assert!(api
        .list_all("/v1/balance_transactions?type=payout")
        .await
        .is_empty());
    api.get("/v1/balance_transactions?type=transfer")
        .await
        .expect_error(
            400,
            "invalid_request_error",
            "parameter_invalid",
            Some("type"),
        );
    assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
}

#[tokio::test]
async fn pricing_is_configurable_per_account_with_an_optional_refund_fee() {
    // A first start makes the sandbox account; the second serves the same database with
    // pricing for that account.
    let database = common::database::fresh_database().await;
    let first = TestServer::start_with(Options {
        database_url: Some(database.url.clone()),
        ..Options::default()
    })
    .await;
    let account = first.sandbox_account();
    let before = id_of(&first.api().completed_payment().await);
    first.stop().await;

    let mut accounts = std::collections::BTreeMap::new();
    accounts.insert(
        account.clone(),
        AccountPricingConfig {
            percent_bps: Some(250),
            fixed_minor: Some(30),
            refund_fixed_minor: Some(15),
            dispute_fee_minor: None,
        },
    );
    let server = TestServer::start_with(Options {
        database_url: Some(database.url.clone()),
        pricing: Some(PricingConfig {
            accounts,
            ..PricingConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let (_, api) = server.new_key(&account, Mode::Test, &[]).await;
    // The earlier capture keeps the fee it was booked with.
    assert_eq!(movements_of(&api, &before).await[0]["fee"], 39);
    let after = id_of(&api.completed_payment().await);
    // 2.5 % of 1000 = 25, + 30.
    assert_eq!(movements_of(&api, &after).await[0]["fee"], 55);
    let refund = api
        .post_json("/v1/refunds", json!({"payment": after, "amount": 100}))
        .await
        .expect_status(201)
        .clone();
    let charged = movements_of(&api, &id_of(&refund)).await;
    assert_eq!(charged.len(), 2, "the refund and its fee: {charged:?}");
    let fee = charged
        .iter()
        .find(|btx| btx["type"] == "fee")
        .expect("a fee transaction");
    assert_eq!(
        (&fee["amount"], &fee["fee"], &fee["net"]),
        (&json!(0), &json!(15), &json!(-15))
    );
    assert_eq!(
        balance_in(&api, "EUR").await,
        (961 + (1000 - 55) - 100 - 15, 0)
    );
    // Another account keeps the default.
    let (_, other) = server.new_account("other").await;
    let elsewhere = id_of(&other.completed_payment().await);
    assert_eq!(movements_of(&other, &elsewhere).await[0]["fee"], 39);
    assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
    drop(database);
}

#[tokio::test]
async fn the_ledger_is_confined_to_its_account_and_scopes() {
    let server = TestServer::start().await;
    let api = server.api();
    let payment_id = id_of(&api.completed_payment().await);
    let btx_id = id_of(&movements_of(&api, &payment_id).await[0]);

    let (account, other) = server.new_account("other").await;
    other
        .get(&format!("/v1/balance_transactions/{btx_id}"))
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    assert!(movements_of(&other, &payment_id).await.is_empty());
    assert_eq!(balance_in(&other, "EUR").await, (0, 0));
    let balance = other.get("/v1/balance").await;
    assert_eq!(balance.expect_status(200)["available"], json!([]));

    // Test and live are separate ledgers.
    let (_, live) = server
        .new_key(&server.sandbox_account(), Mode::Live, &[])
        .await;
    let live_balance = live.get("/v1/balance").await;
    assert_eq!(live_balance.expect_status(200)["livemode"], true);
    assert_eq!(live_balance.expect_status(200)["available"], json!([]));

    // Restricted keys need `balance:read`.
    let sandbox = server.sandbox_account();
    let (_, payments_only) = server
        .new_key(&sandbox, Mode::Test, &["payments:write"])
        .await;
    for path in [
        "/v1/balance",
        "/v1/balance_transactions",
        &format!("/v1/balance_transactions/{btx_id}"),
    ] {
        payments_only.get(path).await.expect_error(
            403,
            "permission_error",
            "insufficient_permissions",
            None,
        );
    }
    let (_, reader) = server
        .new_key(&sandbox, Mode::Test, &["balance:read"])
        .await;
    assert_eq!(balance_in(&reader, "EUR").await, (961, 0));
    reader
        .get("/v1/balance_transactions/btx_nope")
        .await
        .expect_error(404, "invalid_request_error", "resource_missing", Some("id"));
    let _ = account;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_random_workload_the_balance_is_captured_minus_refunds_minus_fees() {
    let server = TestServer::start().await;
    let api = server.api();
    let mut rng = Lcg(0x5eed_1ed6e5);
    let currencies = ["EUR", "JPY", "KWD"];
    let mut completed: Vec<String> = Vec::new();
    for _ in 0..40 {
        match rng.below(5) {
            // A payment, paid (sometimes with the card whose refunds fail), perhaps captured
            // in part later.
            0..=2 => {
                let currency = currencies[rng.below(3) as usize];
                let amount = 1 + rng.below(50_000) as i64;
                let manual = rng.below(2) == 0;
                let payment = api
                    .create_payment(payment_body(
                        amount,
                        json!({"currency": currency, "capture": !manual}),
                    ))
                    .await;
                let id = id_of(&payment);
                let card = if rng.below(4) == 0 {
                    CARD_REFUNDS_FAIL
                } else {
                    CARD_APPROVED
                };
                api.pay(&id, card).await.expect_status(200);
                if manual {
                    if rng.below(4) == 0 {
                        api.cancel(&id).await.expect_status(200);
                        continue;
                    }
                    let part = 1 + rng.below(amount as u64) as i64;
                    api.capture(&id, json!({"amount": part}))
                        .await
                        .expect_status(200);
                }
                completed.push(id);
            }
            // A refund of some completed payment: any amount, perhaps too much.
            3 if !completed.is_empty() => {
                let id = &completed[rng.below(completed.len() as u64) as usize];
                let amount = 1 + rng.below(20_000);
                let reply = api
                    .post_json("/v1/refunds", json!({"payment": id, "amount": amount}))
                    .await;
                assert!(
                    reply.status == 201 || reply.status == 422,
                    "{}: {}",
                    reply.status,
                    reply.json
                );
            }
            _ => server.finish_refunds(&api).await,
        }
    }
    // And 50 partial refunds of one payment at once.
    let target = id_of(&api.completed_payment().await);
    all_at_once(std::slice::from_ref(&api), 50, |_, api| {
        let target = target.clone();
        async move {
            api.post_json("/v1/refunds", json!({"payment": target, "amount": 30}))
                .await
        }
    })
    .await;
    server.finish_refunds(&api).await;

    let payments = api.payments().await;
    let refund_list = api.list_all("/v1/refunds").await;
    let pricing = Pricing::default();
    for currency in currencies.iter().chain(&["EUR"]) {
        let mut expected = 0i64;
        for payment in payments.iter().filter(|p| p["currency"] == *currency) {
            let captured = payment["amountCaptured"].as_i64().expect("amountCaptured");
            let refunded = payment["amountRefunded"].as_i64().expect("amountRefunded");
            let not_failed: i64 = refund_list
                .iter()
                .filter(|r| r["payment"] == payment["id"] && r["status"] != "failed")
                .map(|r| r["amount"].as_i64().expect("an amount"))
                .sum();
            assert_eq!(refunded, not_failed, "amountRefunded of {}", payment["id"]);
            assert!(refunded <= captured);
            if captured > 0 {
                let fee = pricing.card_fee(captured as u64) as i64;
                expected += captured - refunded - fee;
            }
        }
        let (available, pending) = balance_in(&api, currency).await;
        assert_eq!(pending, 0, "test mode funds are available at once");
        assert_eq!(available, expected, "{currency}");
        let net: i64 = api
            .list_all("/v1/balance_transactions")
            .await
            .iter()
            .filter(|btx| btx["currency"] == *currency)
            .map(|btx| btx["net"].as_i64().expect("a net"))
            .sum();
        assert_eq!(
            net, expected,
            "{currency}: the transactions add up to the balance"
        );
    }
    assert_ledger_consistent(server.database_url()).await;
    server.stop().await;
}
