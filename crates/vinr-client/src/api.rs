//! One method per operation of the API (`openapi.json`), named after its `operationId` in
//! snake_case (`createPayment` → [`Client::create_payment`]); the test `operations.rs` fails
//! when an operation of `openapi.json` has no method here. Request and response bodies are
//! the wire types of `vinr-types`. Adding an operation is one line with [`Client::get`],
//! [`Client::post`], [`Client::delete`] or [`Client::list`].

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use vinr_types::{
    Account, AdvanceClockRequest, Balance, BalanceTransaction, CancelPaymentRequest,
    CapturePaymentRequest, CloseDisputeRequest, CreateAccountRequest, CreateFaultRuleRequest,
    CreatePaymentRequest, CreateRefundRequest, CreateWebhookRequest, DeletedAccount,
    DeletedWebhookEndpoint, Dispute, Event, EventResend, FaultRule, FaultRulesCleared, Health,
    OwnAccount, Payment, PaymentAttemptList, Refund, ResendEventRequest, Reset, ResetRequest,
    ResolveDisputeRequest, RunSettlementsRequest, Settlement, TestAuthenticateRequest, TestClock,
    TestDisputeRequest, TestPayRequest, TestWebhookRequest, UpdateAccountRequest,
    UpdateDisputeRequest, UpdateWebhookRequest, WebhookAttempt, WebhookEndpoint,
};

use crate::call::{json, text, Call, Page};
use crate::{Client, ListParams};

/// The building blocks of every operation method.
impl Client {
    /// A `GET` of `segments` (each one path segment, percent-encoded) answering JSON.
    pub fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Call<'_, T> {
        Call::new(self, Method::GET, segments, json::<T>)
    }

    /// A `POST` of `body` as JSON, with an idempotency key (see [`Call::idempotency_key`]).
    pub fn post<T: DeserializeOwned, B: Serialize>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Call<'_, T> {
        Call::new(self, Method::POST, segments, json::<T>).body(body)
    }

    /// A `DELETE` of `segments`. A DELETE takes no idempotency key: when a retry follows an
    /// attempt that went through but lost its answer, the retry answers
    /// [`Error::NotFound`](crate::Error::NotFound), which the caller may take as done.
    pub fn delete<T: DeserializeOwned>(&self, segments: &[&str]) -> Call<'_, T> {
        Call::new(self, Method::DELETE, segments, json::<T>)
    }

    /// A page of a list; [`Call::stream`] follows the cursors.
    pub fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        params: &ListParams,
    ) -> Call<'_, Page<T>> {
        self.get(segments).query(params.pairs())
    }
}

/// Payments (SPEC §3).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::types::{CapturePaymentRequest, CreatePaymentRequest};
///
/// let payment = client
///     .create_payment(&CreatePaymentRequest {
///         amount: 1000,
///         currency: "EUR".into(),
///         return_url: "https://shop.example/return".into(),
///         description: Some("Order 1042".into()),
///         metadata: None,
///         idempotency_key: None,
///         capture: Some(false),
///     })
///     .idempotency_key("order-1042")
///     .await?;
/// // … the shopper pays at payment.checkout_url …
/// let captured = client
///     .capture_payment(&payment.id, &CapturePaymentRequest { amount: Some(600) })
///     .await?;
/// assert_eq!(captured.amount_captured, 600);
/// # Ok(()) }
/// ```
impl Client {
    /// `POST /v1/payments`. The body's `idempotencyKey`, when set, is also the call's key.
    pub fn create_payment(&self, body: &CreatePaymentRequest) -> Call<'_, Payment> {
        let call = self.post(&["v1", "payments"], body);
        match &body.idempotency_key {
            Some(key) => call.idempotency_key(key.clone()),
            None => call,
        }
    }

    /// `GET /v1/payments/{id}`.
    pub fn get_payment(&self, id: &str) -> Call<'_, Payment> {
        self.get(&["v1", "payments", id])
    }

    /// `GET /v1/payments/{id}/attempts`: every call made to a processor for the payment, oldest
    /// first (SPEC §15).
    pub fn list_payment_attempts(&self, id: &str) -> Call<'_, PaymentAttemptList> {
        self.get(&["v1", "payments", id, "attempts"])
    }

    /// `GET /v1/payments` (filter `status`).
    pub fn list_payments(&self, params: &ListParams) -> Call<'_, Page<Payment>> {
        self.list(&["v1", "payments"], params)
    }

    /// `POST /v1/payments/{id}/capture`: an `authorized` payment, all or `amount` of it.
    pub fn capture_payment(&self, id: &str, body: &CapturePaymentRequest) -> Call<'_, Payment> {
        self.post(&["v1", "payments", id, "capture"], body)
    }

    /// `POST /v1/payments/{id}/cancel`.
    pub fn cancel_payment(&self, id: &str) -> Call<'_, Payment> {
        self.post(&["v1", "payments", id, "cancel"], &CancelPaymentRequest {})
    }
}

/// Refunds (SPEC §5).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::TryStreamExt;
/// use vinr_client::types::CreateRefundRequest;
/// use vinr_client::ListParams;
///
/// let refund = client
///     .create_refund(&CreateRefundRequest {
///         payment: "pay_…".into(),
///         amount: Some(400),
///         reason: Some("requested_by_customer".into()),
///         metadata: None,
///     })
///     .await?;
/// let of_payment: Vec<_> = client
///     .list_refunds(&ListParams::new().filter("payment", refund.payment.as_str()))
///     .stream()
///     .try_collect()
///     .await?;
/// # Ok(()) }
/// ```
impl Client {
    /// `POST /v1/refunds`.
    pub fn create_refund(&self, body: &CreateRefundRequest) -> Call<'_, Refund> {
        self.post(&["v1", "refunds"], body)
    }

    /// `GET /v1/refunds/{id}`.
    pub fn get_refund(&self, id: &str) -> Call<'_, Refund> {
        self.get(&["v1", "refunds", id])
    }

    /// `GET /v1/refunds` (filter `payment`).
    pub fn list_refunds(&self, params: &ListParams) -> Call<'_, Page<Refund>> {
        self.list(&["v1", "refunds"], params)
    }
}

/// Disputes (SPEC §11).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::types::{DisputeEvidence, UpdateDisputeRequest};
///
/// let dispute = client
///     .update_dispute(
///         "dp_…",
///         &UpdateDisputeRequest {
///             evidence: Some(DisputeEvidence {
///                 shipping_tracking_number: Some("1Z999".into()),
///                 ..DisputeEvidence::default()
///             }),
///             metadata: None,
///             submit: Some(true),
///         },
///     )
///     .await?;
/// assert_eq!(dispute.status, "under_review");
/// # Ok(()) }
/// ```
impl Client {
    /// `GET /v1/disputes` (filters `payment`, `status`).
    pub fn list_disputes(&self, params: &ListParams) -> Call<'_, Page<Dispute>> {
        self.list(&["v1", "disputes"], params)
    }

    /// `GET /v1/disputes/{id}`.
    pub fn get_dispute(&self, id: &str) -> Call<'_, Dispute> {
        self.get(&["v1", "disputes", id])
    }

    /// `POST /v1/disputes/{id}`: evidence, metadata, `submit`.
    pub fn update_dispute(&self, id: &str, body: &UpdateDisputeRequest) -> Call<'_, Dispute> {
        self.post(&["v1", "disputes", id], body)
    }

    /// `POST /v1/disputes/{id}/close`: accept the dispute (it is `lost`).
    pub fn close_dispute(&self, id: &str) -> Call<'_, Dispute> {
        self.post(&["v1", "disputes", id, "close"], &CloseDisputeRequest {})
    }
}

/// Events (SPEC §6).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::TryStreamExt;
/// use vinr_client::ListParams;
///
/// let mut events = client
///     .list_events(&ListParams::new().filter("type", "payment.completed"))
///     .stream();
/// while let Some(event) = events.try_next().await? {
///     println!("{} {}", event.id, event.kind);
/// }
/// # Ok(()) }
/// ```
impl Client {
    /// `GET /v1/events` (filter `type`).
    pub fn list_events(&self, params: &ListParams) -> Call<'_, Page<Event>> {
        self.list(&["v1", "events"], params)
    }

    /// `GET /v1/events/{id}`.
    pub fn get_event(&self, id: &str) -> Call<'_, Event> {
        self.get(&["v1", "events", id])
    }

    /// `POST /v1/events/{id}/resend`: to every subscribed endpoint, or to `webhook` only.
    pub fn resend_event(&self, id: &str, body: &ResendEventRequest) -> Call<'_, EventResend> {
        self.post(&["v1", "events", id, "resend"], body)
    }
}

/// Webhook endpoints and their deliveries (SPEC §6). Verify what arrives with
/// [`WebhookVerifier`](crate::WebhookVerifier).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::types::CreateWebhookRequest;
///
/// let endpoint = client
///     .create_webhook(&CreateWebhookRequest {
///         url: "https://shop.example/webhooks/vinr".into(),
///         events: Some(vec!["payment.completed".into()]),
///         description: None,
///         faults: None,
///     })
///     .await?;
/// let secret = endpoint.secret.expect("shown once, at creation"); // keep it for the verifier
/// let attempt = client.test_webhook(&endpoint.id).await?;
/// println!("test delivery answered {:?}", attempt.status_code);
/// # let _ = secret; Ok(()) }
/// ```
impl Client {
    /// `POST /v1/webhooks`.
    pub fn create_webhook(&self, body: &CreateWebhookRequest) -> Call<'_, WebhookEndpoint> {
        self.post(&["v1", "webhooks"], body)
    }

    /// `GET /v1/webhooks`.
    pub fn list_webhooks(&self, params: &ListParams) -> Call<'_, Page<WebhookEndpoint>> {
        self.list(&["v1", "webhooks"], params)
    }

    /// `GET /v1/webhooks/{id}`.
    pub fn get_webhook(&self, id: &str) -> Call<'_, WebhookEndpoint> {
        self.get(&["v1", "webhooks", id])
    }

    /// `POST /v1/webhooks/{id}`: url, events, description, status, faults.
    pub fn update_webhook(
        &self,
        id: &str,
        body: &UpdateWebhookRequest,
    ) -> Call<'_, WebhookEndpoint> {
        self.post(&["v1", "webhooks", id], body)
    }

    /// `DELETE /v1/webhooks/{id}`: deliveries stop at once.
    pub fn delete_webhook(&self, id: &str) -> Call<'_, DeletedWebhookEndpoint> {
        self.delete(&["v1", "webhooks", id])
    }

    /// `GET /v1/webhooks/{id}/deliveries`: every attempt, newest first.
    pub fn list_webhook_deliveries(
        &self,
        id: &str,
        params: &ListParams,
    ) -> Call<'_, Page<WebhookAttempt>> {
        self.list(&["v1", "webhooks", id, "deliveries"], params)
    }

    /// `POST /v1/webhooks/{id}/test`: a signed `webhook.test` event, sent at once.
    pub fn test_webhook(&self, id: &str) -> Call<'_, WebhookAttempt> {
        self.post(&["v1", "webhooks", id, "test"], &TestWebhookRequest {})
    }
}

/// The balance and the ledger (SPEC §7).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::ListParams;
///
/// let balance = client.get_balance().await?;
/// for amount in &balance.available {
///     println!("{} {}", amount.amount, amount.currency);
/// }
/// let fees = client
///     .list_balance_transactions(&ListParams::new().filter("type", "fee"))
///     .await?;
/// # let _ = fees; Ok(()) }
/// ```
impl Client {
    /// `GET /v1/balance`.
    pub fn get_balance(&self) -> Call<'_, Balance> {
        self.get(&["v1", "balance"])
    }

    /// `GET /v1/balance_transactions` (filters `source`, `type`, `settlement`).
    pub fn list_balance_transactions(
        &self,
        params: &ListParams,
    ) -> Call<'_, Page<BalanceTransaction>> {
        self.list(&["v1", "balance_transactions"], params)
    }

    /// `GET /v1/balance_transactions/{id}`.
    pub fn get_balance_transaction(&self, id: &str) -> Call<'_, BalanceTransaction> {
        self.get(&["v1", "balance_transactions", id])
    }
}

/// Settlements and what they gathered (SPEC §7).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::TryStreamExt;
/// use vinr_client::ListParams;
///
/// let settlements = client.list_settlements(&ListParams::new().limit(1)).await?;
/// if let Some(settlement) = settlements.data.first() {
///     let transactions: Vec<_> = client
///         .list_settlement_transactions(&settlement.id, &ListParams::new())
///         .stream()
///         .try_collect()
///         .await?;
///     let net: i64 = transactions.iter().map(|transaction| transaction.net).sum();
///     assert_eq!(net, settlement.net);
///     let csv = client.settlement_transactions_csv(&settlement.id).await?;
///     assert!(csv.starts_with("id,type,source,amount,fee,net"));
/// }
/// # Ok(()) }
/// ```
impl Client {
    /// `GET /v1/settlements` (filters `status`, `currency`).
    pub fn list_settlements(&self, params: &ListParams) -> Call<'_, Page<Settlement>> {
        self.list(&["v1", "settlements"], params)
    }

    /// `GET /v1/settlements/{id}`.
    pub fn get_settlement(&self, id: &str) -> Call<'_, Settlement> {
        self.get(&["v1", "settlements", id])
    }

    /// `GET /v1/settlements/{id}/transactions`: the balance transactions it gathered.
    pub fn list_settlement_transactions(
        &self,
        id: &str,
        params: &ListParams,
    ) -> Call<'_, Page<BalanceTransaction>> {
        self.list(&["v1", "settlements", id, "transactions"], params)
    }

    /// `GET /v1/settlements/{id}/transactions` with `Accept: text/csv`: all of them as CSV
    /// (`id,type,source,amount,fee,net,currency,created_at,availableOn`).
    pub fn settlement_transactions_csv(&self, id: &str) -> Call<'_, String> {
        Call::new(
            self,
            Method::GET,
            &["v1", "settlements", id, "transactions"],
            text,
        )
        .accept("text/csv")
    }
}

/// Test helpers (test mode only, SPEC §4, §10, §11, §12): act as the shopper, open and decide
/// disputes, settle now, move the test clock, reset, and fault requests on purpose.
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// use vinr_client::types::{AdvanceClockRequest, CreateFaultRuleRequest, ResetRequest, TestPayRequest};
///
/// let paid = client
///     .test_pay_payment(
///         "pay_…",
///         &TestPayRequest { card: "4242424242424242".into(), exp_month: None, exp_year: None, cvc: None },
///     )
///     .await?;
/// client
///     .test_advance_clock(&AdvanceClockRequest { seconds: Some(3600), to: None })
///     .await?;
/// client.test_run_settlements().await?;
/// // The next 3 creations answer 503 (a client without headers can be tested too).
/// client
///     .create_test_fault_rule(&CreateFaultRuleRequest {
///         method: "POST".into(),
///         path: "/v1/payments".into(),
///         fault: "status=503".into(),
///         count: Some(3),
///     })
///     .await?;
/// client.clear_test_fault_rules().await?;
/// client.test_reset(&ResetRequest::default()).await?;
/// # let _ = paid; Ok(()) }
/// ```
impl Client {
    /// `POST /v1/test_helpers/payments/{id}/pay` with a test card.
    pub fn test_pay_payment(&self, id: &str, body: &TestPayRequest) -> Call<'_, Payment> {
        self.post(&["v1", "test_helpers", "payments", id, "pay"], body)
    }

    /// `POST /v1/test_helpers/payments/{id}/authenticate`: the 3-D Secure challenge's outcome.
    pub fn test_authenticate_payment(
        &self,
        id: &str,
        body: &TestAuthenticateRequest,
    ) -> Call<'_, Payment> {
        self.post(
            &["v1", "test_helpers", "payments", id, "authenticate"],
            body,
        )
    }

    /// `POST /v1/test_helpers/payments/{id}/dispute`.
    pub fn test_dispute_payment(&self, id: &str, body: &TestDisputeRequest) -> Call<'_, Dispute> {
        self.post(&["v1", "test_helpers", "payments", id, "dispute"], body)
    }

    /// `POST /v1/test_helpers/disputes/{id}/resolve`.
    pub fn test_resolve_dispute(
        &self,
        id: &str,
        body: &ResolveDisputeRequest,
    ) -> Call<'_, Dispute> {
        self.post(&["v1", "test_helpers", "disputes", id, "resolve"], body)
    }

    /// `POST /v1/test_helpers/settlements/run`: the settlements it made.
    pub fn test_run_settlements(&self) -> Call<'_, Page<Settlement>> {
        self.post(
            &["v1", "test_helpers", "settlements", "run"],
            &RunSettlementsRequest {},
        )
    }

    /// `POST /v1/test_helpers/reset`.
    pub fn test_reset(&self, body: &ResetRequest) -> Call<'_, Reset> {
        self.post(&["v1", "test_helpers", "reset"], body)
    }

    /// `GET /v1/test_helpers/clock`.
    pub fn get_test_clock(&self) -> Call<'_, TestClock> {
        self.get(&["v1", "test_helpers", "clock"])
    }

    /// `POST /v1/test_helpers/clock/advance`.
    pub fn test_advance_clock(&self, body: &AdvanceClockRequest) -> Call<'_, TestClock> {
        self.post(&["v1", "test_helpers", "clock", "advance"], body)
    }

    /// `POST /v1/test_helpers/faults`.
    pub fn create_test_fault_rule(&self, body: &CreateFaultRuleRequest) -> Call<'_, FaultRule> {
        self.post(&["v1", "test_helpers", "faults"], body)
    }

    /// `GET /v1/test_helpers/faults`: the rules, oldest first.
    pub fn list_test_fault_rules(&self) -> Call<'_, Page<FaultRule>> {
        self.get(&["v1", "test_helpers", "faults"])
    }

    /// `DELETE /v1/test_helpers/faults`.
    pub fn clear_test_fault_rules(&self) -> Call<'_, FaultRulesCleared> {
        self.delete(&["v1", "test_helpers", "faults"])
    }
}

/// Accounts: `GET /v1/account` with an account key; the rest with a platform key (`plk_…`,
/// SPEC §10).
///
/// ```no_run
/// # async fn example() -> Result<(), vinr_client::Error> {
/// use vinr_client::types::CreateAccountRequest;
/// use vinr_client::Client;
///
/// let platform = Client::new("plk_…", "http://127.0.0.1:8080")?;
/// let account = platform
///     .create_account(&CreateAccountRequest { name: "CI worker 3".into() })
///     .await?;
/// let merchant = Client::new(account.secret_key.expect("shown once"), "http://127.0.0.1:8080")?;
/// assert_eq!(merchant.get_own_account().await?.id, account.id);
/// platform.delete_account(&account.id).await?;
/// # Ok(()) }
/// ```
impl Client {
    /// `GET /v1/account`: the key's own account.
    pub fn get_own_account(&self) -> Call<'_, OwnAccount> {
        self.get(&["v1", "account"])
    }

    /// `GET /v1/accounts` (platform key).
    pub fn list_accounts(&self, params: &ListParams) -> Call<'_, Page<Account>> {
        self.list(&["v1", "accounts"], params)
    }

    /// `POST /v1/accounts` (platform key): the answer holds the new `sk_test_…` key, once.
    pub fn create_account(&self, body: &CreateAccountRequest) -> Call<'_, Account> {
        self.post(&["v1", "accounts"], body)
    }

    /// `GET /v1/accounts/{id}` (platform key).
    pub fn get_account(&self, id: &str) -> Call<'_, Account> {
        self.get(&["v1", "accounts", id])
    }

    /// `POST /v1/accounts/{id}` (platform key): rename.
    pub fn update_account(&self, id: &str, body: &UpdateAccountRequest) -> Call<'_, Account> {
        self.post(&["v1", "accounts", id], body)
    }

    /// `DELETE /v1/accounts/{id}` (platform key): the account, its keys and its test data.
    pub fn delete_account(&self, id: &str) -> Call<'_, DeletedAccount> {
        self.delete(&["v1", "accounts", id])
    }
}

/// Operating endpoints (no key needed, sent with it anyway).
///
/// ```no_run
/// # async fn example(client: &vinr_client::Client) -> Result<(), vinr_client::Error> {
/// assert_eq!(client.readyz().await?.status, "ok");
/// let document = client.openapi().await?;
/// assert_eq!(document["openapi"], "3.1.0");
/// # Ok(()) }
/// ```
impl Client {
    /// `GET /healthz`.
    pub fn healthz(&self) -> Call<'_, Health> {
        self.get(&["healthz"])
    }

    /// `GET /readyz`: the database is reachable (a 503 otherwise, retried, then an error).
    pub fn readyz(&self) -> Call<'_, Health> {
        self.get(&["readyz"])
    }

    /// `GET /metrics`: Prometheus text.
    pub fn metrics(&self) -> Call<'_, String> {
        Call::new(self, Method::GET, &["metrics"], text)
    }

    /// `GET /v1/openapi.json`: the OpenAPI document.
    pub fn openapi(&self) -> Call<'_, Value> {
        self.get(&["v1", "openapi.json"])
    }
}
