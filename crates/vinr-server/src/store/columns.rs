//! What both backends share about rows: the column lists of the hot tables and the
//! conversion of a row's raw values into domain types. Each backend only reads its driver's
//! row into these raw structs, so a value no version of the server writes is refused the same
//! way on SQLite and on PostgreSQL.

use std::collections::BTreeMap;

use vinr_domain::{
    CaptureMethod, Currency, FailureCode, Mode, Payment, PaymentMethod, PaymentStatus, Refund,
    RefundReason, RefundStatus, UnixMillis,
};

use vinr_domain::ledger::BalanceType;
use vinr_domain::settlement::{Line, Settlement, SettlementStatus, Totals};

use super::{
    ApiKeyRecord, BalanceAmounts, BalanceTransactionRecord, EventRecord, KeyKind, Scope, StoreError,
};

pub const PAYMENT_COLUMNS: &str = "id, account_id, mode, status, amount, currency, \
    description, return_url, checkout_token, metadata, capture_method, amount_capturable, \
    amount_captured, amount_refunded, pm_brand, pm_last4, pm_exp_month, pm_exp_year, \
    pm_fingerprint, failure_code, created_at, expires_at, authorized_at, captured_at, \
    cancelled_at, failed_at, expired_at";

pub const API_KEY_COLUMNS: &str =
    "id, account_id, mode, kind, scopes, key_hash, display, created_at, revoked_at";

pub const EVENT_COLUMNS: &str = "id, account_id, mode, type, object_id, data, created_at";

/// A value in the database that no version of this server writes.
pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unexpected {what} `{value}` in the database"))
}

fn mode(value: &str) -> Result<Mode, StoreError> {
    Mode::parse(value).ok_or_else(|| corrupt("mode", value))
}

/// A non-negative integer column as minor units (the schemas' CHECKs keep them so).
fn minor(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt("amount", &value.to_string()))
}

fn small<T: TryFrom<i64>>(value: Option<i64>, what: &str) -> Result<T, StoreError> {
    let value = value.unwrap_or_default();
    T::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

/// The columns of [`PAYMENT_COLUMNS`], in order, as the driver reads them.
pub struct PaymentRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub return_url: String,
    pub checkout_token: String,
    pub metadata: String,
    pub capture_method: String,
    pub amount_capturable: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub pm_brand: Option<String>,
    pub pm_last4: Option<String>,
    pub pm_exp_month: Option<i64>,
    pub pm_exp_year: Option<i64>,
    pub pm_fingerprint: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub authorized_at: Option<i64>,
    pub captured_at: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub expired_at: Option<i64>,
}

impl PaymentRow {
    pub fn into_payment(self) -> Result<Payment, StoreError> {
        let payment_method = match self.pm_brand {
            Some(brand) => Some(PaymentMethod {
                brand,
                last4: self.pm_last4.unwrap_or_default(),
                exp_month: small(self.pm_exp_month, "expiry month")?,
                exp_year: small(self.pm_exp_year, "expiry year")?,
                fingerprint: self.pm_fingerprint.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(Payment {
            mode: mode(&self.mode)?,
            status: PaymentStatus::parse(&self.status)
                .ok_or_else(|| corrupt("status", &self.status))?,
            amount: minor(self.amount)?,
            currency: Currency::parse(&self.currency)
                .ok_or_else(|| corrupt("currency", &self.currency))?,
            metadata: serde_json::from_str::<BTreeMap<String, String>>(&self.metadata)
                .map_err(|_| corrupt("metadata", &self.metadata))?,
            capture_method: CaptureMethod::parse(&self.capture_method)
                .ok_or_else(|| corrupt("capture method", &self.capture_method))?,
            amount_capturable: minor(self.amount_capturable)?,
            amount_captured: minor(self.amount_captured)?,
            amount_refunded: minor(self.amount_refunded)?,
            payment_method,
            failure_code: self
                .failure_code
                .map(|code| FailureCode::parse(&code).ok_or_else(|| corrupt("failure code", &code)))
                .transpose()?,
            id: self.id,
            account_id: self.account_id,
            description: self.description,
            return_url: self.return_url,
            checkout_token: self.checkout_token,
            created_at: UnixMillis(self.created_at),
            expires_at: UnixMillis(self.expires_at),
            authorized_at: self.authorized_at.map(UnixMillis),
            captured_at: self.captured_at.map(UnixMillis),
            cancelled_at: self.cancelled_at.map(UnixMillis),
            failed_at: self.failed_at.map(UnixMillis),
            expired_at: self.expired_at.map(UnixMillis),
        })
    }
}

/// The columns of [`API_KEY_COLUMNS`], in order.
pub struct ApiKeyRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub kind: String,
    pub scopes: String,
    pub key_hash: Vec<u8>,
    pub display: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRow {
    pub fn into_record(self) -> Result<ApiKeyRecord, StoreError> {
        Ok(ApiKeyRecord {
            mode: mode(&self.mode)?,
            kind: match self.kind.as_str() {
                "secret" => KeyKind::Secret,
                "restricted" => KeyKind::Restricted,
                _ => return Err(corrupt("key kind", &self.kind)),
            },
            scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
            key_hash: self
                .key_hash
                .try_into()
                .map_err(|_| corrupt("key hash", "of wrong length"))?,
            id: self.id,
            account_id: self.account_id,
            display: self.display,
            created_at: UnixMillis(self.created_at),
            revoked_at: self.revoked_at.map(UnixMillis),
        })
    }
}

/// The columns of [`EVENT_COLUMNS`], in order.
pub struct EventRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub kind: String,
    pub object_id: String,
    pub data: String,
    pub created_at: i64,
}

impl EventRow {
    pub fn into_record(self) -> Result<EventRecord, StoreError> {
        Ok(EventRecord {
            scope: Scope {
                mode: mode(&self.mode)?,
                account_id: self.account_id,
            },
            id: self.id,
            kind: self.kind,
            object_id: self.object_id,
            data: self.data,
            created_at: UnixMillis(self.created_at),
        })
    }
}

pub const REFUND_COLUMNS: &str = "id, account_id, mode, payment_id, amount, currency, \
    status, reason, metadata, failure_reason, created_at";

/// The columns of [`REFUND_COLUMNS`], in order.
pub struct RefundRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub metadata: String,
    pub failure_reason: Option<String>,
    pub created_at: i64,
}

impl RefundRow {
    pub fn into_refund(self) -> Result<Refund, StoreError> {
        Ok(Refund {
            mode: mode(&self.mode)?,
            amount: minor(self.amount)?,
            currency: Currency::parse(&self.currency)
                .ok_or_else(|| corrupt("currency", &self.currency))?,
            status: RefundStatus::parse(&self.status)
                .ok_or_else(|| corrupt("refund status", &self.status))?,
            reason: self
                .reason
                .map(|reason| {
                    RefundReason::parse(&reason).ok_or_else(|| corrupt("reason", &reason))
                })
                .transpose()?,
            metadata: serde_json::from_str::<BTreeMap<String, String>>(&self.metadata)
                .map_err(|_| corrupt("metadata", &self.metadata))?,
            id: self.id,
            account_id: self.account_id,
            payment_id: self.payment_id,
            failure_reason: self.failure_reason,
            created_at: UnixMillis(self.created_at),
        })
    }
}

/// A stored idempotent answer's request hash, which must be a SHA-256.
pub fn request_hash(value: Vec<u8>) -> Result<[u8; 32], StoreError> {
    value
        .try_into()
        .map_err(|_| corrupt("request hash", "of wrong length"))
}

/// How to store an idempotent answer: as a reference to the flow's last event when the answer
/// is that event's snapshot (the common case), else as the body itself.
pub fn answer_reference<'a>(
    last_event: Option<&'a (String, String)>,
    body: &'a [u8],
) -> (Option<&'a str>, &'a [u8]) {
    match last_event {
        Some((event_id, data)) if data.as_bytes() == body => (Some(event_id.as_str()), &[]),
        _ => (None, body),
    }
}

pub const BALANCE_TRANSACTION_COLUMNS: &str = "id, account_id, mode, type, source, amount, fee, \
    net, currency, created_at, available_on, settlement_id";

/// The columns of [`BALANCE_TRANSACTION_COLUMNS`], in order.
pub struct BalanceTransactionRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub kind: String,
    pub source: String,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub currency: String,
    pub created_at: i64,
    pub available_on: i64,
    pub settlement_id: Option<String>,
}

impl BalanceTransactionRow {
    pub fn into_record(self) -> Result<BalanceTransactionRecord, StoreError> {
        Ok(BalanceTransactionRecord {
            scope: Scope {
                mode: mode(&self.mode)?,
                account_id: self.account_id,
            },
            kind: BalanceType::parse(&self.kind)
                .ok_or_else(|| corrupt("balance transaction type", &self.kind))?,
            currency: Currency::parse(&self.currency)
                .ok_or_else(|| corrupt("currency", &self.currency))?,
            id: self.id,
            source: self.source,
            amount: self.amount,
            fee: self.fee,
            net: self.net,
            created_at: UnixMillis(self.created_at),
            available_on: UnixMillis(self.available_on),
            settlement_id: self.settlement_id,
        })
    }
}

/// The ledger query behind a balance, the same on both backends: the merchant's entries per
/// currency, split by whether their movement is available at the time given as the third
/// parameter (payouts, which have no balance transaction, count as available). `{p}` is the
/// backend's parameter prefix (`?` or `$`).
pub fn balance_sql(p: char) -> String {
    format!(
        "SELECT e.currency,
             CAST(COALESCE(SUM(CASE WHEN b.available_on IS NULL OR b.available_on <= {p}3
                 THEN -e.amount ELSE 0 END), 0) AS BIGINT),
             CAST(COALESCE(SUM(CASE WHEN b.available_on > {p}3
                 THEN -e.amount ELSE 0 END), 0) AS BIGINT)
         FROM ledger_entries e LEFT JOIN balance_transactions b ON b.id = e.movement_id
         WHERE e.account_id = {p}1 AND e.mode = {p}2 AND e.ledger_account = 'merchant_balance'
         GROUP BY e.currency ORDER BY e.currency"
    )
}

/// One row of [`balance_sql`].
pub fn balance_amounts(
    currency: String,
    available: i64,
    pending: i64,
) -> Result<BalanceAmounts, StoreError> {
    Ok(BalanceAmounts {
        currency: Currency::parse(&currency).ok_or_else(|| corrupt("currency", &currency))?,
        available,
        pending,
    })
}

pub const SETTLEMENT_COLUMNS: &str = "id, account_id, mode, currency, status, gross, refunds, \
    fees, net, transaction_count, period_start, period_end, created_at, paid_at";

/// The columns of [`SETTLEMENT_COLUMNS`], in order.
pub struct SettlementRow {
    pub id: String,
    pub account_id: String,
    pub mode: String,
    pub currency: String,
    pub status: String,
    pub gross: i64,
    pub refunds: i64,
    pub fees: i64,
    pub net: i64,
    pub transaction_count: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub created_at: i64,
    pub paid_at: Option<i64>,
}

impl SettlementRow {
    pub fn into_settlement(self) -> Result<Settlement, StoreError> {
        Ok(Settlement {
            mode: mode(&self.mode)?,
            currency: Currency::parse(&self.currency)
                .ok_or_else(|| corrupt("currency", &self.currency))?,
            status: SettlementStatus::parse(&self.status)
                .ok_or_else(|| corrupt("settlement status", &self.status))?,
            totals: Totals {
                gross: self.gross,
                refunds: self.refunds,
                fees: self.fees,
                net: self.net,
                transaction_count: minor(self.transaction_count)?,
                period_start: Some(UnixMillis(self.period_start)),
            },
            id: self.id,
            account_id: self.account_id,
            period_start: UnixMillis(self.period_start),
            period_end: UnixMillis(self.period_end),
            created_at: UnixMillis(self.created_at),
            paid_at: self.paid_at.map(UnixMillis),
        })
    }
}

/// A gathered balance transaction as a settlement counts it: (type, amount, fee, net,
/// created_at) as stored.
pub fn settlement_line(
    kind: &str,
    amount: i64,
    fee: i64,
    net: i64,
    created_at: i64,
) -> Result<Line, StoreError> {
    Ok(Line {
        kind: BalanceType::parse(kind).ok_or_else(|| corrupt("balance transaction type", kind))?,
        amount,
        fee,
        net,
        created_at: UnixMillis(created_at),
    })
}

/// What [`SettlementGroup`](super::SettlementGroup) a row of (account, mode, currency) is.
pub fn settlement_group(
    account_id: String,
    mode_text: &str,
    currency: &str,
) -> Result<super::SettlementGroup, StoreError> {
    Ok(super::SettlementGroup {
        scope: Scope {
            account_id,
            mode: mode(mode_text)?,
        },
        currency: Currency::parse(currency).ok_or_else(|| corrupt("currency", currency))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_equal_to_the_last_event_become_references() {
        let event = ("evt_1".to_owned(), "{\"id\":\"pay_1\"}".to_owned());
        assert_eq!(
            answer_reference(Some(&event), b"{\"id\":\"pay_1\"}"),
            (Some("evt_1"), &b""[..])
        );
        assert_eq!(
            answer_reference(Some(&event), b"{\"id\":\"pay_2\"}"),
            (None, &b"{\"id\":\"pay_2\"}"[..])
        );
        assert_eq!(answer_reference(None, b"{}"), (None, &b"{}"[..]));
    }
}
