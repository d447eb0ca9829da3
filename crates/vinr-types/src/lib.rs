//! The wire contract of the VINR API: request and response bodies exactly as they travel,
//! with the seed's field names (`returnUrl`, `checkoutUrl`, `created_at`) and camelCase for the
//! rest. Serde and OpenAPI schemas only: no validation (that is `vinr-domain`'s) and no I/O.
//!
//! Request bodies reject unknown fields, so a typo in a field name is a 400, not a silent no-op.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

/// Integer fields of request bodies accept a whole number however JSON spells it: `1000`, and
/// `1000.0` or `1e3` as well, because JSON Schema (which the OpenAPI 3.1 document uses) counts
/// those as integers too, so generated clients and fuzzers may send them. A fraction is refused
/// (one below the precision of an `f64`, such as `1000.00000000000001`, reads as the whole number
/// it rounds to).
/// In a form body the value is text: `1000` and `1000.0` alike.
pub mod whole {
    use serde::de::{Deserializer, Error, Visitor};

    /// Beyond 2^53 a float does not hold every integer: refused rather than rounded.
    const EXACT_MAX: f64 = 9_007_199_254_740_992.0;

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = i64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }

        fn visit_i64<E: Error>(self, value: i64) -> Result<i64, E> {
            Ok(value)
        }

        fn visit_u64<E: Error>(self, value: u64) -> Result<i64, E> {
            i64::try_from(value).map_err(|_| E::custom(format!("{value} is out of range")))
        }

        fn visit_f64<E: Error>(self, value: f64) -> Result<i64, E> {
            if value.fract() != 0.0 || !value.is_finite() {
                return Err(E::custom(format!("{value} is not a whole number")));
            }
            if value.abs() > EXACT_MAX {
                return Err(E::custom(format!("{value} is out of range")));
            }
            Ok(value as i64)
        }
    }

    fn integer<'de, D: Deserializer<'de>, T: TryFrom<i64>>(deserializer: D) -> Result<T, D::Error> {
        // Asked for as a float: serde_json then hands over integers as integers and floats as
        // floats (never a string), and serde_qs parses the form's text as a number.
        let value = deserializer.deserialize_f64(Whole)?;
        T::try_from(value).map_err(|_| D::Error::custom(format!("{value} is out of range")))
    }

    pub fn i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
        integer(deserializer)
    }

    /// `null` (or a missing field, with `#[serde(default)]`) is `None`.
    struct Optional<T>(std::marker::PhantomData<T>);

    impl<'de, T: TryFrom<i64>> Visitor<'de> for Optional<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or null")
        }

        fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<T>, D::Error> {
            integer(deserializer).map(Some)
        }
    }

    pub fn option_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
        deserializer.deserialize_option(Optional(std::marker::PhantomData))
    }

    pub fn option_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
        deserializer.deserialize_option(Optional(std::marker::PhantomData))
    }
}

/// `{"error": {...}}`: the body of every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `permission_error`,
    /// `idempotency_error`, `rate_limit_error` or `api_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A stable snake_case identifier such as `parameter_invalid` or `resource_missing`.
    pub code: String,
    /// A human-readable explanation.
    pub message: String,
    /// The offending request field, if one is to blame.
    pub param: Option<String>,
    /// The `X-Request-Id` of the request that failed.
    pub request_id: String,
}

/// Body of `POST /v1/payments`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    /// Minor units of `currency` (1000 EUR = €10.00), 1 to 99 999 999.
    #[serde(deserialize_with = "whole::i64")]
    #[schema(example = 1000)]
    pub amount: i64,
    /// ISO 4217 code in any case.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Where the shopper returns after checkout; `paymentId=<id>` is appended to its query.
    #[serde(rename = "returnUrl")]
    #[schema(example = "https://shop.example/return")]
    pub return_url: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Same as the `Idempotency-Key` header (the header wins; both must agree).
    #[serde(rename = "idempotencyKey", default)]
    pub idempotency_key: Option<String>,
    /// `true` (default) captures on approval; `false` stops at `authorized`.
    #[serde(default)]
    pub capture: Option<bool>,
}

/// Body of `POST /v1/payments/{id}/capture`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturePaymentRequest {
    /// Minor units to capture, at most `amountCapturable`; the rest is released. Default: all.
    #[serde(default, deserialize_with = "whole::option_i64")]
    pub amount: Option<i64>,
}

/// Body of `POST /v1/payments/{id}/cancel` (no fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPaymentRequest {}

/// Body of `POST /v1/test_helpers/payments/{id}/pay`.
// `Debug` is written by hand below: it must not print the card number.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestPayRequest {
    /// A sandbox test card number (SPEC §4), spaces allowed.
    #[schema(example = "4242424242424242")]
    pub card: String,
    /// Expiry month 1–12 (default: December).
    #[serde(rename = "expMonth", default, deserialize_with = "whole::option_u32")]
    pub exp_month: Option<u32>,
    /// Expiry year, four digits or two (20xx); default: three years from now.
    #[serde(rename = "expYear", default, deserialize_with = "whole::option_u32")]
    pub exp_year: Option<u32>,
    #[serde(default)]
    pub cvc: Option<String>,
}

impl std::fmt::Debug for TestPayRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPayRequest")
            .field("card", &"<redacted>")
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .field("cvc", &self.cvc.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The shopper's answer to a 3-D Secure challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeOutcome {
    Approve,
    Fail,
}

/// Body of `POST /v1/test_helpers/payments/{id}/authenticate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestAuthenticateRequest {
    pub outcome: ChallengeOutcome,
}

/// What is kept of the card a payment was paid with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentMethod {
    pub brand: String,
    pub last4: String,
    #[serde(rename = "expMonth")]
    pub exp_month: u8,
    #[serde(rename = "expYear")]
    pub exp_year: u16,
    /// Keyed hash of the card number: equal for the same card on this server.
    pub fingerprint: String,
}

/// A payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    #[schema(example = "pay_3kTz8gW1qYbN5cVxR2mLp0aD")]
    pub id: String,
    /// Always `payment`.
    pub object: String,
    /// `pending`, `requires_authentication`, `authorized`, `completed`, `failed`, `cancelled`
    /// or `expired`; clients must tolerate new values.
    pub status: String,
    pub amount: u64,
    pub currency: String,
    pub description: Option<String>,
    #[serde(rename = "returnUrl")]
    pub return_url: String,
    #[serde(rename = "checkoutUrl")]
    pub checkout_url: String,
    pub metadata: BTreeMap<String, String>,
    pub created_at: String,
    pub livemode: bool,
    /// `automatic` or `manual`.
    #[serde(rename = "captureMethod")]
    pub capture_method: String,
    #[serde(rename = "amountCapturable")]
    pub amount_capturable: u64,
    #[serde(rename = "amountCaptured")]
    pub amount_captured: u64,
    #[serde(rename = "amountRefunded")]
    pub amount_refunded: u64,
    /// What disputes hold (open and lost ones; a won dispute gives its amount back).
    #[serde(rename = "amountDisputed")]
    pub amount_disputed: u64,
    #[serde(rename = "paymentMethod")]
    pub payment_method: Option<PaymentMethod>,
    /// `card_declined`, `insufficient_funds`, `expired_card`, `processing_error` or
    /// `authentication_failed`.
    #[serde(rename = "failureCode")]
    pub failure_code: Option<String>,
    #[serde(rename = "failureMessage")]
    pub failure_message: Option<String>,
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
    #[serde(rename = "authorizedAt")]
    pub authorized_at: Option<String>,
    #[serde(rename = "capturedAt")]
    pub captured_at: Option<String>,
    #[serde(rename = "cancelledAt")]
    pub cancelled_at: Option<String>,
    #[serde(rename = "failedAt")]
    pub failed_at: Option<String>,
    #[serde(rename = "expiredAt")]
    pub expired_at: Option<String>,
    /// The configured processor that has (or last tried) the card: `sandbox`, or the name of
    /// an acquirer connector (e.g. `stripe_eu`); `null` before the shopper paid.
    #[serde(default)]
    pub processor: Option<String>,
    /// That processor's id for this payment (e.g. a Stripe `pi_…`).
    #[serde(rename = "processorReference", default)]
    pub processor_reference: Option<String>,
}

/// One call to a processor for a payment (SPEC §15).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentAttempt {
    #[schema(example = "patt_3kTz8gW1qYbN5cVxR2mLp0aD")]
    pub id: String,
    /// Always `payment_attempt`.
    pub object: String,
    pub payment: String,
    /// The configured processor's name.
    pub processor: String,
    /// `approved`, `requires_authentication`, `declined`, `processor_error` (the processor did
    /// not decide: unreachable, 401, 5xx, timeout, a bad answer), `repaired` or
    /// `not_authorized`; clients must tolerate new values.
    pub outcome: String,
    /// For `declined`, the payment's failure code; for `processor_error`, `processing_error`.
    #[serde(rename = "failureCode")]
    pub failure_code: Option<String>,
    /// How long the processor took, in milliseconds.
    #[serde(rename = "latencyMs")]
    pub latency_ms: i64,
    pub created_at: String,
}

/// A payment's attempts, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentAttemptList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<PaymentAttempt>,
    pub has_more: bool,
}

/// A page of payments, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Payment>,
    pub has_more: bool,
    /// Pass as `starting_after` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `{"object": <snapshot of the resource after the change>}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventData {
    #[schema(value_type = Object)]
    pub object: Box<RawValue>,
}

/// Something that happened, written in the same transaction as the change it describes.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Event {
    #[schema(example = "evt_3kTz8gW1qYbN5cVxR2mLp0aD")]
    pub id: String,
    /// Always `event`.
    pub object: String,
    /// For example `payment.completed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: String,
    pub livemode: bool,
    pub data: EventData,
}

/// A page of events, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Event>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// Body of `POST /v1/refunds`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    /// The `completed` payment to refund (`pay_…`).
    pub payment: String,
    /// Minor units; default: all that remains refundable.
    #[serde(default, deserialize_with = "whole::option_i64")]
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A refund: created `pending`, then `succeeded` or `failed` by the processor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Refund {
    #[schema(example = "re_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `refund`.
    pub object: String,
    /// The refunded payment's id.
    pub payment: String,
    pub amount: u64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// Why the processor refused the refund (e.g. `declined`), once `failed`.
    #[serde(rename = "failureReason")]
    pub failure_reason: Option<String>,
    pub created_at: String,
    pub livemode: bool,
}

/// A page of refunds, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Refund>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// A dispute's evidence (SPEC §11): each field free text of at most 5 000 characters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisputeEvidence {
    #[serde(rename = "customerName", default)]
    pub customer_name: Option<String>,
    #[serde(rename = "productDescription", default)]
    pub product_description: Option<String>,
    #[serde(rename = "shippingTrackingNumber", default)]
    pub shipping_tracking_number: Option<String>,
    /// In the sandbox, text containing `winning_evidence` wins on submit and
    /// `losing_evidence` loses.
    #[serde(rename = "uncategorizedText", default)]
    pub uncategorized_text: Option<String>,
}

/// A dispute (chargeback, SPEC §11): the shopper's bank takes back part or all of a
/// `completed` payment; `needs_response` → `under_review` → `won` | `lost`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Dispute {
    #[schema(example = "dp_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `dispute`.
    pub object: String,
    /// The disputed payment's id.
    pub payment: String,
    pub amount: u64,
    pub currency: String,
    /// `fraudulent`, `duplicate`, `product_not_received`, `product_unacceptable`,
    /// `subscription_canceled` or `general`.
    pub reason: String,
    /// `needs_response`, `under_review`, `won` or `lost`.
    pub status: String,
    pub evidence: DisputeEvidence,
    /// When a dispute still `needs_response` is lost (7 days after it opened).
    #[serde(rename = "evidenceDueBy")]
    pub evidence_due_by: String,
    /// The dispute fee (minor units), kept whatever the outcome.
    pub fee: u64,
    pub created_at: String,
    /// When it was `won` or `lost`.
    #[serde(rename = "closedAt")]
    pub closed_at: Option<String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
}

/// A page of disputes, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DisputeList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Dispute>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// Body of `POST /v1/disputes/{id}`: only while the dispute `needs_response`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDisputeRequest {
    /// Fields given replace the stored ones; the others stay.
    #[serde(default)]
    pub evidence: Option<DisputeEvidence>,
    /// Replaces the dispute's metadata.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// `true` sends the evidence: the dispute goes `under_review`.
    #[serde(default)]
    pub submit: Option<bool>,
}

/// Body of `POST /v1/disputes/{id}/close` (no fields): accepts the dispute, which is `lost`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseDisputeRequest {}

/// Body of `POST /v1/test_helpers/payments/{id}/dispute`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestDisputeRequest {
    /// Minor units; default: all that is neither refunded nor disputed.
    #[serde(default, deserialize_with = "whole::option_i64")]
    pub amount: Option<i64>,
    /// Default `general`.
    #[serde(default)]
    pub reason: Option<String>,
}

/// How the bank decides a dispute `under_review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DisputeOutcome {
    Won,
    Lost,
}

/// Body of `POST /v1/test_helpers/disputes/{id}/resolve`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveDisputeRequest {
    pub outcome: DisputeOutcome,
}

/// One movement of a merchant's money (SPEC §7): a captured payment with its fee, a refund
/// (or the reversal of one that failed), a fee charged on its own, or a settlement's payout.
/// The sum of an account's balance transactions' `net` is its balance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceTransaction {
    #[schema(example = "btx_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `balance_transaction`.
    pub object: String,
    /// `payment`, `refund`, `fee`, `payout`, `dispute` or `dispute_reversal`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `pay_…`, `re_…` or `dp_…` id the money moved for; a payout's `setl_…` id.
    pub source: String,
    /// Minor units: positive for a payment or a failed refund's reversal, negative for a
    /// refund or a payout (positive for the payout of a negative settlement, which collects
    /// what the merchant owed), 0 for a fee.
    pub amount: i64,
    /// The fee charged on this movement (minor units, never negative).
    pub fee: i64,
    /// `amount` − `fee`: what this changes the merchant's balance by.
    pub net: i64,
    pub currency: String,
    pub created_at: String,
    /// When a settlement may pay it out (at once in test mode; live: midnight UTC, T+2).
    #[serde(rename = "availableOn")]
    pub available_on: String,
    /// The settlement that gathered it, once settled (always null for a payout, which is
    /// never settled; its `source` names the settlement it paid out).
    pub settlement: Option<String>,
    pub livemode: bool,
}

/// A page of balance transactions, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceTransactionList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<BalanceTransaction>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// An amount of one currency.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BalanceAmount {
    /// Minor units; negative when refunds and fees exceed what was captured.
    pub amount: i64,
    pub currency: String,
}

/// What the platform owes the merchant, per currency, from the ledger: `available` may be
/// settled now, `pending` waits for its `availableOn`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Balance {
    /// Always `balance`.
    pub object: String,
    pub available: Vec<BalanceAmount>,
    pub pending: Vec<BalanceAmount>,
    pub livemode: bool,
}

/// A settlement (SPEC §7): one account's due balance transactions of one mode and currency,
/// gathered by a run and paid out. `net` = `gross` − `refunds` − `disputes` − `fees` = the sum
/// of its transactions' `net`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    #[schema(example = "setl_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `settlement`.
    pub object: String,
    /// `pending` (gathered), then `paid` (the payout was sent).
    pub status: String,
    pub currency: String,
    /// What captured payments brought (minor units).
    pub gross: i64,
    /// What refunds took back, less the reversals of refunds that failed.
    pub refunds: i64,
    /// What disputes took, less what won disputes gave back (dispute fees are in `fees`).
    pub disputes: i64,
    pub fees: i64,
    /// What is paid out (negative: collected from the merchant).
    pub net: i64,
    #[serde(rename = "transactionCount")]
    pub transaction_count: u64,
    /// The earliest gathered transaction's `created_at`.
    #[serde(rename = "periodStart")]
    pub period_start: String,
    /// The run's cut-off: every gathered transaction was available by then.
    #[serde(rename = "periodEnd")]
    pub period_end: String,
    pub created_at: String,
    #[serde(rename = "paidAt")]
    pub paid_at: Option<String>,
    pub livemode: bool,
}

/// A page of settlements, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SettlementList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Settlement>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

// Webhooks (SPEC §6)

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: `https` (in test mode also `http://localhost`,
    /// `http://127.0.0.1` or `http://[::1]`).
    #[schema(example = "https://shop.example/webhooks/vinr")]
    pub url: String,
    /// Event types to receive, or `["*"]` for all (the default).
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// Faults on purpose (test mode only, SPEC §12); refused for a live-mode endpoint.
    #[serde(default)]
    pub faults: Option<WebhookFaults>,
}

/// `Some(None)` for a field given as `null`, `None` for a field left out (with
/// `#[serde(default)]`): a change that clears apart from one that keeps.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Faults a test-mode endpoint injects into its deliveries (SPEC §12). Every field is
/// optional; an object that injects nothing (all absent, 0 or false) is no faults (`null`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookFaults {
    /// Probability (0–1) that a delivery's first attempt is sent twice, the copy right after
    /// the original: same `webhook-id`, same body, both correctly signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Probability (0–1) that a delivery's first attempt carries a wrong (well-formed)
    /// signature; its retries are signed correctly.
    #[serde(rename = "badSignature", skip_serializing_if = "Option::is_none")]
    pub bad_signature: Option<f64>,
    /// Milliseconds (0 to 30 000) each attempt waits before it is sent.
    #[serde(rename = "delayMs", skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<i64>,
    /// Deliver each event after the next one: a delivery is held (at most 5 s) until the
    /// endpoint's next delivery has been attempted.
    #[serde(rename = "outOfOrder", skip_serializing_if = "Option::is_none")]
    pub out_of_order: Option<bool>,
}

/// [`WebhookFaults`] as read: the derived reader, which [`WebhookFaults`]' own reader uses on
/// an object only (serde would also read a struct from an array, `[1]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookFaultsFields {
    #[serde(default)]
    duplicate: Option<f64>,
    #[serde(rename = "badSignature", default)]
    bad_signature: Option<f64>,
    #[serde(rename = "delayMs", default, deserialize_with = "whole::option_i64")]
    delay_ms: Option<i64>,
    #[serde(rename = "outOfOrder", default)]
    out_of_order: Option<bool>,
}

impl<'de> Deserialize<'de> for WebhookFaults {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;

        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = WebhookFaults;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<WebhookFaults, A::Error> {
                let fields = WebhookFaultsFields::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(WebhookFaults {
                    duplicate: fields.duplicate,
                    bad_signature: fields.bad_signature,
                    delay_ms: fields.delay_ms,
                    out_of_order: fields.out_of_order,
                })
            }
        }

        deserializer.deserialize_map(Object)
    }
}

/// Body of `POST /v1/webhooks/:id`: only the fields given change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// A new URL, under the same rules as at creation.
    #[serde(default)]
    pub url: Option<String>,
    /// New event types, or `["*"]` for all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
    /// `enabled` or `disabled`. Disabling stops deliveries at once: those still queued are
    /// dropped and no new ones are queued until it is enabled again (resend what was missed
    /// with `POST /v1/events/:id/resend`).
    #[serde(default)]
    pub status: Option<String>,
    /// New faults (test mode only), replacing the old ones; `null` clears them.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<WebhookFaults>)]
    pub faults: Option<Option<WebhookFaults>>,
}

/// A webhook endpoint. `secret` is present only in the answer to its creation.
// `Debug` is written by hand below: it must not print the secret.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpoint {
    #[schema(example = "we_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: String,
    pub url: String,
    pub description: Option<String>,
    /// The subscribed event types, or `["*"]`.
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    pub created_at: String,
    pub livemode: bool,
    /// The faults it injects (test mode), `null` for none.
    pub faults: Option<WebhookFaults>,
    /// The signing secret (`whsec_…`, Standard Webhooks format); shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("status", &self.status)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// A page of webhook endpoints, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookEndpointList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<WebhookEndpoint>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttempt {
    #[schema(example = "wha_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `webhook_attempt`.
    pub object: String,
    /// The endpoint (`we_…`).
    pub webhook: String,
    /// The event delivered (`evt_…`); the `webhook-id` header.
    pub event: String,
    #[serde(rename = "eventType")]
    pub event_type: String,
    /// 1 for a delivery's first attempt.
    pub attempt: u32,
    /// `succeeded` (a 2xx in time) or `failed`.
    pub status: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(rename = "statusCode")]
    pub status_code: Option<u16>,
    #[serde(rename = "latencyMs")]
    pub latency_ms: u64,
    /// The start of the receiver's answer (at most 1 KiB).
    #[serde(rename = "responseExcerpt")]
    pub response_excerpt: Option<String>,
    /// Why the attempt failed without an answer (timeout, refused address, …).
    pub error: Option<String>,
    /// When the next attempt is due, if the delivery is retried.
    #[serde(rename = "nextAttemptAt")]
    pub next_attempt_at: Option<String>,
    /// The fault this attempt carried on purpose (test mode, SPEC §12): `duplicate`,
    /// `badSignature`, `delay`, `outOfOrder`, or `null`.
    pub fault: Option<String>,
    /// The request headers sent, name (lower case) to value: `webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`, `content-type`, `user-agent`, … (never the
    /// endpoint's secret), also when the connection then failed. `null` when no request was
    /// made (an address refused before connecting) or for attempts recorded before the headers
    /// were kept.
    #[serde(rename = "requestHeaders", default)]
    pub request_headers: Option<BTreeMap<String, String>>,
    pub created_at: String,
    pub livemode: bool,
}

/// A page of attempts, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookAttemptList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<WebhookAttempt>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// Body of `POST /v1/events/{id}/resend`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResendEventRequest {
    /// Only this endpoint (`we_…`); default: every enabled endpoint subscribed to the type.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// What `POST /v1/events/{id}/resend` queued: one new delivery per endpoint listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventResend {
    /// Always `event_resend`.
    pub object: String,
    pub event: String,
    /// The endpoints a new delivery was queued for (`we_…`).
    pub webhooks: Vec<String>,
    pub livemode: bool,
}

/// What `DELETE /v1/webhooks/{id}` answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedWebhookEndpoint {
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: String,
    /// Always `true`.
    pub deleted: bool,
    pub livemode: bool,
}

/// Body of `POST /v1/test_helpers/settlements/run` (no fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunSettlementsRequest {}

/// Body of `POST /v1/webhooks/{id}/test` (no fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestWebhookRequest {}

/// Body of `POST /v1/accounts` (platform key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// 1 to 200 characters (surrounding spaces are dropped); shown on the checkout page.
    #[schema(example = "CI worker 3")]
    pub name: String,
}

/// Body of `POST /v1/accounts/:id` (platform key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountRequest {
    /// The new name, 1 to 200 characters; shown on the checkout page.
    pub name: String,
}

/// A merchant account as a platform key sees it. `secretKey` is present only in the answer to
/// its creation.
// `Debug` is written by hand below: it must not print the key.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    #[schema(example = "acct_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `account`.
    pub object: String,
    pub name: String,
    pub created_at: String,
    /// The account's first `sk_test_…` key: shown once, in the answer to `POST /v1/accounts`.
    #[serde(rename = "secretKey", default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// A page of accounts, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<Account>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// The answer to `DELETE /v1/accounts/:id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeletedAccount {
    pub id: String,
    /// Always `account`.
    pub object: String,
    /// Always `true`.
    pub deleted: bool,
}

/// Body of `POST /v1/test_helpers/reset` (test mode).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// `true` deletes the webhook endpoints too (with their deliveries and attempts); by
    /// default they stay, subscribed as before.
    #[serde(rename = "webhookEndpoints", default)]
    pub webhook_endpoints: Option<bool>,
}

/// The answer to `POST /v1/test_helpers/reset`: what was deleted of the account's test mode.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reset {
    /// Always `reset`.
    pub object: String,
    pub deleted: ResetDeleted,
}

/// Rows deleted by a reset, per kind of object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetDeleted {
    pub payments: u64,
    pub refunds: u64,
    pub disputes: u64,
    pub events: u64,
    pub balance_transactions: u64,
    pub settlements: u64,
    /// Queued and finished deliveries (in flight ones included).
    pub webhook_deliveries: u64,
    pub webhook_attempts: u64,
    /// Stored answers: a request sent again with the same `Idempotency-Key` runs anew.
    pub idempotency_keys: u64,
    /// `0` unless the request asked for `webhookEndpoints`.
    pub webhook_endpoints: u64,
    /// Fault rules (`POST /v1/test_helpers/faults`).
    pub fault_rules: u64,
}

/// The caller's own account (`GET /v1/account`, any account key).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OwnAccount {
    pub id: String,
    /// Always `account`.
    pub object: String,
    pub name: String,
    pub created_at: String,
    /// Whether the key used is a live-mode key.
    pub livemode: bool,
}

/// An account's test-mode clock (SPEC §10): real time plus an offset that only moves forward.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestClock {
    /// Always `test_clock`.
    pub object: String,
    /// The account's test-mode time now (RFC 3339, UTC).
    #[schema(example = "2026-12-08T09:30:00Z")]
    pub now: String,
    /// Always `false`: live mode runs on real time.
    pub livemode: bool,
}

/// Body of `POST /v1/test_helpers/clock/advance`: exactly one of `seconds` and `to`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClockRequest {
    /// How far to move the clock forward: 1 to 34 560 000 seconds (400 days).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole::option_i64"
    )]
    pub seconds: Option<i64>,
    /// The instant to move the clock to (RFC 3339): after the account's time now, at most
    /// 400 days after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// Body of `POST /v1/test_helpers/faults` (test mode, SPEC §12): the next `count` requests of
/// the account with this method and path suffer `fault`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFaultRuleRequest {
    /// `GET`, `POST` or `DELETE`.
    #[schema(example = "POST")]
    pub method: String,
    /// An API path, exact (`/v1/payments`) or a prefix ending in `*` (`/v1/payments/*`);
    /// matched without the query string.
    #[schema(example = "/v1/payments")]
    pub path: String,
    /// `latency=<ms>` (0 to 30000), `status=<429|500|502|503>`, `commit-then-500` or
    /// `commit-then-drop`.
    #[schema(example = "commit-then-500")]
    pub fault: String,
    /// How many matching requests the rule hits: 1 (the default) to 10 000.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "whole::option_i64"
    )]
    pub count: Option<i64>,
}

/// A fault rule: the account's next `remaining` test-mode requests with `method` and `path`
/// suffer `fault`. A rule whose count is used up is gone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultRule {
    #[schema(example = "flt_0Vc0Q2m8kX1b4ZpT7rWq9nLs")]
    pub id: String,
    /// Always `fault_rule`.
    pub object: String,
    pub method: String,
    pub path: String,
    pub fault: String,
    /// Matching requests it will still fault (at least 1).
    pub remaining: u32,
    pub created_at: String,
    /// Always `false`: faults exist in test mode only.
    pub livemode: bool,
}

/// The account's fault rules, oldest (first to match) first; never more than 100, so never
/// more than one page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultRuleList {
    /// Always `list`.
    pub object: String,
    pub data: Vec<FaultRule>,
    /// Always `false`.
    pub has_more: bool,
    /// Always `null`.
    pub next_cursor: Option<String>,
}

/// The answer to `DELETE /v1/test_helpers/faults`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultRulesCleared {
    /// Always `fault_rules_cleared`.
    pub object: String,
    /// How many rules were deleted.
    pub deleted: u64,
}
