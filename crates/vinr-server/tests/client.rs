//! The Rust client (`vinr-client`) against a real server on a real port, on SQLite and on
//! PostgreSQL (see `common::database`): the money path with cursor streams, every other
//! operation once, the error mapping, a real webhook delivery verified, and retry safety under
//! the server's injected faults (SPEC §12, §14).

mod common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{Options, TestServer, CARD_APPROVED, RETURN_URL};
use vinr_client::types::{
    AdvanceClockRequest, CapturePaymentRequest, CreateAccountRequest, CreateFaultRuleRequest,
    CreatePaymentRequest, CreateRefundRequest, CreateWebhookRequest, DisputeEvidence,
    ResendEventRequest, ResetRequest, TestDisputeRequest, TestPayRequest, UpdateAccountRequest,
    UpdateDisputeRequest, UpdateWebhookRequest,
};
use vinr_client::{Client, Error, ErrorType, HeaderMap, ListParams, RetryPolicy, TryStreamExt};
use vinr_client::{WebhookError, WebhookVerifier};

/// Quick enough for tests; a `Retry-After` longer than the backoff is still waited in full.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(20),
    }
}

fn client_with(server: &TestServer, key: &str, retry: RetryPolicy) -> Client {
    Client::builder(key)
        .base_url(&server.base)
        .timeout(Duration::from_secs(10))
        .retry(retry)
        .build()
        .expect("a client")
}

fn sandbox_client(server: &TestServer) -> Client {
    client_with(server, &server.api().key, fast_retry())
}

fn payment(amount: i64) -> CreatePaymentRequest {
    CreatePaymentRequest {
        amount,
        currency: "EUR".into(),
        return_url: RETURN_URL.into(),
        description: None,
        metadata: None,
        idempotency_key: None,
        capture: None,
    }
}

fn card(number: &str) -> TestPayRequest {
    TestPayRequest {
        card: number.into(),
        exp_month: None,
        exp_year: None,
        cvc: None,
    }
}

fn fault_rule(fault: &str, count: i64) -> CreateFaultRuleRequest {
    CreateFaultRuleRequest {
        method: "POST".into(),
        path: "/v1/payments".into(),
        fault: fault.into(),
        count: Some(count),
    }
}

async fn payment_ids(client: &Client) -> Vec<String> {
    let payments: Vec<_> = client
        .list_payments(&ListParams::new().limit(100))
        .stream()
        .try_collect()
        .await
        .expect("the payments");
    payments.into_iter().map(|payment| payment.id).collect()
}

#[track_caller]
fn expect_api_error(
    result: Result<impl std::fmt::Debug, Error>,
    status: u16,
    kind: ErrorType,
    code: &str,
    param: Option<&str>,
) -> Error {
    let error = result.expect_err("an error answer");
    let api = error
        .api()
        .unwrap_or_else(|| panic!("an API error, not {error}"));
    assert_eq!(api.status, status, "{error}");
    assert_eq!(api.kind, kind, "{error}");
    assert_eq!(api.code, code, "{error}");
    assert_eq!(api.param.as_deref(), param, "{error}");
    let request_id = error.request_id().expect("a request id");
    assert!(request_id.starts_with("req_"), "{request_id}");
    error
}

#[tokio::test]
async fn create_pay_capture_refund_page_and_settle() {
    let server = TestServer::start().await;
    let client = sandbox_client(&server);
    let created = client
        .create_payment(&CreatePaymentRequest {
            capture: Some(false),
            ..payment(1000)
        })
        .await
        .expect("created");
    assert_eq!(created.status, "pending");
    let paid = client
        .test_pay_payment(&created.id, &card(CARD_APPROVED))
        .await
        .expect("paid");
    assert_eq!(paid.status, "authorized");
    let captured = client
        .capture_payment(&created.id, &CapturePaymentRequest { amount: Some(800) })
        .await
        .expect("captured");
    assert_eq!(
        (captured.status.as_str(), captured.amount_captured),
        ("completed", 800)
    );
    let refund = client
        .create_refund(&CreateRefundRequest {
            payment: created.id.clone(),
            amount: Some(300),
            reason: Some("requested_by_customer".into()),
            metadata: None,
        })
        .await
        .expect("refunded");
    assert_eq!(
        (refund.amount, refund.payment.as_str()),
        (300, created.id.as_str())
    );

    // Paging: five more payments, two per page, newest first, each exactly once.
    let mut ids = vec![created.id.clone()];
    for _ in 0..5 {
        ids.push(
            client
                .create_payment(&payment(500))
                .await
                .expect("created")
                .id,
        );
    }
    ids.reverse();
    let first_page = client
        .list_payments(&ListParams::new().limit(2))
        .await
        .expect("a page");
    assert_eq!(first_page.data.len(), 2);
    assert!(first_page.has_more);
    let streamed: Vec<_> = client
        .list_payments(&ListParams::new().limit(2))
        .stream()
        .map_ok(|payment| payment.id)
        .try_collect()
        .await
        .expect("every page");
    assert_eq!(streamed, ids);
    let older: Vec<_> = client
        .list_payments(&ListParams::new().limit(2).starting_after(ids[1].clone()))
        .stream()
        .map_ok(|payment| payment.id)
        .try_collect()
        .await
        .expect("pages after a cursor");
    assert_eq!(older, ids[2..]);
    let newer: Vec<_> = client
        .list_payments(&ListParams::new().limit(1).ending_before(ids[3].clone()))
        .stream()
        .map_ok(|payment| payment.id)
        .try_collect()
        .await
        .expect("pages before a cursor");
    let mut expected_newer = ids[..3].to_vec();
    expected_newer.reverse();
    assert_eq!(
        newer, expected_newer,
        "ending_before pages towards newer objects"
    );

    server.finish_refunds(&server.api()).await;
    assert_eq!(
        client.get_refund(&refund.id).await.expect("refund").status,
        "succeeded"
    );
    let settlements = client.test_run_settlements().await.expect("settled");
    let [settlement] = settlements.data.as_slice() else {
        panic!("one settlement, not {:?}", settlements.data);
    };
    assert_eq!((settlement.gross, settlement.refunds), (800, 300));
    let transactions: Vec<_> = client
        .list_settlement_transactions(&settlement.id, &ListParams::new().limit(1))
        .stream()
        .try_collect()
        .await
        .expect("its transactions");
    assert_eq!(transactions.len() as u64, settlement.transaction_count);
    let net: i64 = transactions.iter().map(|transaction| transaction.net).sum();
    assert_eq!(net, settlement.net);
    let mut sources: Vec<_> = transactions.iter().map(|t| t.source.clone()).collect();
    sources.sort();
    let mut expected_sources = vec![created.id.clone(), refund.id.clone()];
    expected_sources.sort();
    assert_eq!(sources, expected_sources);
    let csv = client
        .settlement_transactions_csv(&settlement.id)
        .await
        .expect("the CSV");
    let rows: Vec<_> = csv.trim_end().split("\r\n").collect();
    assert_eq!(
        rows[0],
        "id,type,source,amount,fee,net,currency,created_at,availableOn"
    );
    assert_eq!(rows.len(), 1 + transactions.len());
    assert_eq!(
        client.get_settlement(&settlement.id).await.expect("it").net,
        settlement.net
    );
    server.stop().await;
}

/// Every other operation once, so that a wrong path or body in the client fails here.
#[tokio::test]
async fn every_other_operation_answers() {
    let platform_key = format!("plk_{}", "k".repeat(40));
    let server = TestServer::start_with(Options {
        platform_key: Some(platform_key.clone()),
        ..Options::default()
    })
    .await;
    let client = sandbox_client(&server);

    // Accounts with the platform key, and the account key's own account.
    let platform = client_with(&server, &platform_key, fast_retry());
    let account = platform
        .create_account(&CreateAccountRequest {
            name: "client test".into(),
        })
        .await
        .expect("an account");
    let merchant = client_with(
        &server,
        account.secret_key.as_deref().expect("its key"),
        fast_retry(),
    );
    assert_eq!(
        merchant.get_own_account().await.expect("own").id,
        account.id
    );
    let renamed = platform
        .update_account(
            &account.id,
            &UpdateAccountRequest {
                name: "renamed".into(),
            },
        )
        .await
        .expect("renamed");
    assert_eq!(renamed.name, "renamed");
    assert_eq!(
        platform.get_account(&account.id).await.expect("it").name,
        "renamed"
    );
    let accounts: Vec<_> = platform
        .list_accounts(&ListParams::new().limit(1))
        .stream()
        .try_collect()
        .await
        .expect("accounts");
    assert!(accounts.iter().any(|listed| listed.id == account.id));
    assert!(
        platform
            .delete_account(&account.id)
            .await
            .expect("deleted")
            .deleted
    );

    // Payments: cancel, events, disputes, balance.
    let pending = client.create_payment(&payment(700)).await.expect("created");
    assert_eq!(
        client.get_payment(&pending.id).await.expect("it").amount,
        700
    );
    // Not sent to any processor yet: no attempts.
    assert!(client
        .list_payment_attempts(&pending.id)
        .await
        .expect("attempts")
        .data
        .is_empty());
    assert_eq!(
        client
            .cancel_payment(&pending.id)
            .await
            .expect("cancelled")
            .status,
        "cancelled"
    );
    let events: Vec<_> = client
        .list_events(&ListParams::new().filter("type", "payment.cancelled"))
        .stream()
        .try_collect()
        .await
        .expect("events");
    let [event] = events.as_slice() else {
        panic!("one payment.cancelled event, not {events:?}");
    };
    assert_eq!(
        client.get_event(&event.id).await.expect("it").kind,
        "payment.cancelled"
    );

    let disputed = client
        .create_payment(&payment(2000))
        .await
        .expect("created");
    client
        .test_pay_payment(&disputed.id, &card(CARD_APPROVED))
        .await
        .expect("paid");
    let dispute = client
        .test_dispute_payment(&disputed.id, &TestDisputeRequest::default())
        .await
        .expect("a dispute");
    assert_eq!(dispute.status, "needs_response");
    let submitted = client
        .update_dispute(
            &dispute.id,
            &UpdateDisputeRequest {
                evidence: Some(DisputeEvidence {
                    uncategorized_text: Some("the parcel was signed for".into()),
                    ..DisputeEvidence::default()
                }),
                metadata: None,
                submit: Some(true),
            },
        )
        .await
        .expect("submitted");
    assert_eq!(submitted.status, "under_review");
    let resolved = client
        .test_resolve_dispute(
            &dispute.id,
            &vinr_client::types::ResolveDisputeRequest {
                outcome: vinr_client::types::DisputeOutcome::Won,
            },
        )
        .await
        .expect("resolved");
    assert_eq!(resolved.status, "won");
    let second = client
        .test_dispute_payment(
            &disputed.id,
            &TestDisputeRequest {
                amount: Some(100),
                reason: None,
            },
        )
        .await
        .expect("another dispute");
    assert_eq!(
        client
            .close_dispute(&second.id)
            .await
            .expect("closed")
            .status,
        "lost"
    );
    let disputes = client
        .list_disputes(&ListParams::new().filter("payment", disputed.id.as_str()))
        .await
        .expect("disputes");
    assert_eq!(disputes.data.len(), 2);
    assert_eq!(
        client.get_dispute(&dispute.id).await.expect("it").status,
        "won"
    );
    let balance = client.get_balance().await.expect("the balance");
    assert_eq!(balance.object, "balance");
    let ledger = client
        .list_balance_transactions(&ListParams::new().filter("source", disputed.id.as_str()))
        .await
        .expect("the ledger");
    let [booked] = ledger.data.as_slice() else {
        panic!("one payment transaction, not {:?}", ledger.data);
    };
    assert_eq!(
        client
            .get_balance_transaction(&booked.id)
            .await
            .expect("it")
            .amount,
        2000
    );

    // Webhook endpoints.
    let receiver = Receiver::start().await;
    let endpoint = client
        .create_webhook(&CreateWebhookRequest {
            url: receiver.url(),
            events: None,
            description: Some("client test".into()),
            faults: None,
        })
        .await
        .expect("an endpoint");
    assert!(format!("{endpoint:?}").contains("<redacted>"));
    let attempt = client
        .test_webhook(&endpoint.id)
        .await
        .expect("a test delivery");
    assert_eq!(attempt.status_code, Some(200));
    let deliveries = client
        .list_webhook_deliveries(&endpoint.id, &ListParams::new())
        .await
        .expect("deliveries");
    assert!(!deliveries.data.is_empty());
    let updated = client
        .update_webhook(
            &endpoint.id,
            &UpdateWebhookRequest {
                url: None,
                events: None,
                description: Some("changed".into()),
                status: None,
                faults: None,
            },
        )
        .await
        .expect("updated");
    assert_eq!(updated.description.as_deref(), Some("changed"));
    assert_eq!(
        client.get_webhook(&endpoint.id).await.expect("it").id,
        endpoint.id
    );
    let listed = client
        .list_webhooks(&ListParams::new())
        .await
        .expect("endpoints");
    assert_eq!(listed.data.len(), 1);
    let resent = client
        .resend_event(&event.id, &ResendEventRequest::default())
        .await
        .expect("resent");
    assert_eq!(resent.event, event.id);
    assert!(
        client
            .delete_webhook(&endpoint.id)
            .await
            .expect("deleted")
            .deleted
    );

    // Clock, fault rules, reset, operating endpoints.
    let clock = client.get_test_clock().await.expect("the clock");
    let advanced = client
        .test_advance_clock(&AdvanceClockRequest {
            seconds: Some(60),
            to: None,
        })
        .await
        .expect("advanced");
    assert!(
        advanced.now > clock.now,
        "{} after {}",
        advanced.now,
        clock.now
    );
    client
        .create_test_fault_rule(&CreateFaultRuleRequest {
            method: "GET".into(),
            path: "/v1/nothing".into(),
            fault: "status=500".into(),
            count: Some(1),
        })
        .await
        .expect("a rule");
    assert_eq!(
        client
            .list_test_fault_rules()
            .await
            .expect("rules")
            .data
            .len(),
        1
    );
    assert_eq!(
        client
            .clear_test_fault_rules()
            .await
            .expect("cleared")
            .deleted,
        1
    );
    let reset = client
        .test_reset(&ResetRequest::default())
        .await
        .expect("reset");
    assert!(reset.deleted.payments >= 2);
    assert_eq!(client.healthz().await.expect("healthz").status, "ok");
    assert_eq!(client.readyz().await.expect("readyz").status, "ok");
    assert!(client.openapi().await.expect("openapi")["paths"].is_object());
    assert!(client.metrics().await.expect("metrics").contains("# TYPE"));
    server.stop().await;
}

#[tokio::test]
async fn errors_are_typed_400_401_403_404_409_422() {
    let platform_key = format!("plk_{}", "e".repeat(40));
    let server = TestServer::start_with(Options {
        platform_key: Some(platform_key.clone()),
        ..Options::default()
    })
    .await;
    let client = sandbox_client(&server);
    let error = expect_api_error(
        client.create_payment(&payment(-5)).await,
        400,
        ErrorType::InvalidRequest,
        "parameter_invalid",
        Some("amount"),
    );
    assert!(matches!(error, Error::BadRequest(_)), "{error:?}");
    assert_eq!(error.attempts(), 1, "a 400 is not retried");

    let stranger = client_with(
        &server,
        &format!("sk_test_{}", "0".repeat(40)),
        fast_retry(),
    );
    let error = expect_api_error(
        stranger.get_balance().await,
        401,
        ErrorType::Authentication,
        "api_key_invalid",
        None,
    );
    assert!(matches!(error, Error::Authentication(_)));

    let platform = client_with(&server, &platform_key, fast_retry());
    let error = expect_api_error(
        platform.list_payments(&ListParams::new()).await,
        403,
        ErrorType::Permission,
        "account_key_required",
        None,
    );
    assert!(matches!(error, Error::Permission(_)));

    let error = expect_api_error(
        client.get_payment("pay_doesnotexist").await,
        404,
        ErrorType::InvalidRequest,
        "resource_missing",
        Some("id"),
    );
    assert!(matches!(error, Error::NotFound(_)));
    // An id is one path segment: it cannot reach another route.
    let error = client
        .get_payment("../refunds")
        .await
        .expect_err("no such payment");
    assert!(matches!(error, Error::NotFound(_)), "{error:?}");

    client
        .create_payment(&payment(1000))
        .idempotency_key("order-409")
        .await
        .expect("created");
    let error = expect_api_error(
        client
            .create_payment(&payment(2000))
            .idempotency_key("order-409")
            .await,
        409,
        ErrorType::Idempotency,
        "idempotency_key_reused",
        Some("Idempotency-Key"),
    );
    assert!(matches!(error, Error::Conflict(_)));
    assert_eq!(error.attempts(), 1, "a reused key is not retried");

    let pending = client
        .create_payment(&payment(1000))
        .await
        .expect("created");
    let error = expect_api_error(
        client
            .capture_payment(&pending.id, &CapturePaymentRequest::default())
            .await,
        422,
        ErrorType::InvalidRequest,
        "payment_state_invalid",
        None,
    );
    assert!(matches!(error, Error::Unprocessable(_)));
    let shown = error.to_string();
    assert!(
        shown.contains("payment_state_invalid") && shown.contains("req_"),
        "{shown}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_real_delivery_verifies_and_a_tampered_one_does_not() {
    let server = TestServer::start().await;
    let client = sandbox_client(&server);
    let receiver = Receiver::start().await;
    let endpoint = client
        .create_webhook(&CreateWebhookRequest {
            url: receiver.url(),
            events: Some(vec!["payment.completed".into()]),
            description: None,
            faults: None,
        })
        .await
        .expect("an endpoint");
    let secret = endpoint.secret.expect("the secret, once");
    let created = client
        .create_payment(&payment(1000))
        .await
        .expect("created");
    client
        .test_pay_payment(&created.id, &card(CARD_APPROVED))
        .await
        .expect("paid");
    let received = receiver
        .wait_until(Duration::from_secs(10), "a delivery", |received| {
            !received.is_empty()
        })
        .await;
    let delivery = &received[0];
    let mut headers = HeaderMap::new();
    for (name, value) in &delivery.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a name"),
            value.parse().expect("a value"),
        );
    }
    let verifier = WebhookVerifier::new(&secret).expect("a verifier");
    let event = verifier
        .verify(&headers, delivery.body.as_bytes())
        .expect("the delivery verifies");
    assert_eq!(event.kind, "payment.completed");
    assert_eq!(event.id, delivery.header("webhook-id"));
    assert!(event.data.object.get().contains(&created.id));
    let tampered = delivery.body.replace("1000", "9000");
    assert_eq!(
        verifier.verify(&headers, tampered.as_bytes()).err(),
        Some(WebhookError::SignatureMismatch)
    );
    let other = WebhookVerifier::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("ok");
    assert_eq!(
        other.verify_signature(&headers, delivery.body.as_bytes()),
        Err(WebhookError::SignatureMismatch)
    );
    server.stop().await;
}

/// `commit-then-500` and `commit-then-drop` on the first create (a fault rule, so the retry
/// itself is not faulted): the client's retry, with the key it generated, is answered with the
/// stored real answer, and there is exactly one payment.
#[tokio::test]
async fn a_retry_after_a_committed_fault_gets_the_real_answer_and_one_payment() {
    let server = TestServer::start().await;
    for (fault, kind) in [
        ("commit-then-500", "commit_then_500"),
        ("commit-then-drop", "commit_then_drop"),
    ] {
        let (_, api) = server.new_account(fault).await;
        let client = client_with(&server, &api.key, fast_retry());
        client
            .create_test_fault_rule(&fault_rule(fault, 1))
            .await
            .expect("a rule");
        let injected = api.injected_faults(kind).await;
        let answered = client
            .create_payment(&CreatePaymentRequest {
                description: Some(fault.into()),
                ..payment(4321)
            })
            .send_with_info()
            .await
            .unwrap_or_else(|error| panic!("{fault}: {error}"));
        assert_eq!(answered.attempts, 2, "{fault}: one retry");
        assert!(answered.replayed, "{fault}: the stored answer");
        assert_eq!(answered.status, 201);
        assert_eq!(api.injected_faults(kind).await, injected + 1, "{fault}");
        let created = answered.value;
        assert_eq!(created.amount, 4321);
        assert_eq!(created.description.as_deref(), Some(fault));
        assert_eq!(payment_ids(&client).await, vec![created.id], "{fault}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_429_storm_is_waited_out_honouring_retry_after() {
    let server = TestServer::start().await;
    let client = sandbox_client(&server);
    client
        .create_test_fault_rule(&fault_rule("status=429", 3))
        .await
        .expect("a rule");
    let started = Instant::now();
    let answered = client
        .create_payment(&payment(1000))
        .send_with_info()
        .await
        .expect("created in the end");
    let elapsed = started.elapsed();
    assert_eq!(answered.attempts, 4);
    assert!(
        !answered.replayed,
        "the 429s ran nothing: the fourth attempt made it"
    );
    // Backoff alone (20 ms doubling) would be done in well under a second; Retry-After is 1 s.
    assert!(elapsed >= Duration::from_secs(3), "waited only {elapsed:?}");
    assert_eq!(payment_ids(&client).await, vec![answered.value.id]);
    server.stop().await;
}

#[tokio::test]
async fn a_persistent_503_is_retried_then_surfaced_typed() {
    let server = TestServer::start().await;
    let api = server.api();
    let client = client_with(
        &server,
        &api.key,
        RetryPolicy {
            max_retries: 2,
            ..fast_retry()
        },
    );
    let injected = api.injected_faults("status_503").await;
    let result = client
        .create_payment(&payment(1000))
        .test_fault("status=503")
        .await;
    let error = expect_api_error(result, 503, ErrorType::Api, "injected_fault", None);
    assert!(matches!(error, Error::Server(_)), "{error:?}");
    assert_eq!(error.attempts(), 3);
    assert_eq!(api.injected_faults("status_503").await, injected + 3);
    assert!(payment_ids(&client).await.is_empty());

    // No answer at all: a network error after the retries.
    let nowhere = Client::builder(&api.key)
        .base_url("http://127.0.0.1:9")
        .retry(RetryPolicy {
            max_retries: 1,
            ..fast_retry()
        })
        .build()
        .expect("a client");
    let error = nowhere.get_balance().await.expect_err("no server there");
    assert!(
        matches!(error, Error::Network { attempts: 2, .. }),
        "{error:?}"
    );
    server.stop().await;
}

/// A create that outlives the client's timeout (`latency=1500` on the first attempt, a 500 ms
/// timeout) is retried with the same key: one payment, whether or not the first attempt ran.
#[tokio::test]
async fn a_timed_out_create_is_retried_with_its_key_and_makes_one_payment() {
    let server = TestServer::start().await;
    let api = server.api();
    let client = Client::builder(&api.key)
        .base_url(&server.base)
        .timeout(Duration::from_millis(500))
        .retry(fast_retry())
        .build()
        .expect("a client");
    client
        .create_test_fault_rule(&fault_rule("latency=1500", 1))
        .await
        .expect("a rule");
    let answered = client
        .create_payment(&payment(1234))
        .send_with_info()
        .await
        .expect("created by the retry");
    assert!(answered.attempts >= 2, "the first attempt timed out");
    // Let the first attempt finish on the server (it waits 1.5 s, then runs), if it still runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(payment_ids(&client).await, vec![answered.value.id]);
    server.stop().await;
}
