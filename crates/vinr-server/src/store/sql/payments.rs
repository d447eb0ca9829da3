//! Payments.

use vinr_domain::{CaptureMethod, FailureCode, Payment, PaymentMethod, PaymentStatus, UnixMillis};

use super::{
    args, corrupt, first, render, rows, Changed, Listed, OneRead, Reader, Row, Run, Sql, Tx, Value,
};
use crate::store::{
    metadata_from_json, metadata_to_json, Due, DueOn, ListError, ListQuery, Page, Scope, StoreError,
};

pub const COLUMNS: &str = "id, account_id, mode, status, amount, currency, description, \
    return_url, checkout_token, metadata, capture_method, amount_capturable, amount_captured, \
    amount_refunded, amount_disputed, pm_brand, pm_last4, pm_exp_month, pm_exp_year, pm_fingerprint, \
    failure_code, created_at, expires_at, authorized_at, captured_at, cancelled_at, failed_at, \
    expired_at, processor, processor_reference, processor_claimed_until, processor_attempt";

/// The row reader: the columns of [`COLUMNS`], in order.
fn payment(row: &mut Row) -> Result<Payment, StoreError> {
    let id = row.text()?;
    let account_id = row.text()?;
    let mode = row.mode()?;
    let status = row.parsed("status", PaymentStatus::parse)?;
    let amount = row.minor()?;
    let currency = row.currency()?;
    let description = row.opt_text()?;
    let return_url = row.text()?;
    let checkout_token = row.text()?;
    let metadata = metadata_from_json(&row.text()?)?;
    let capture_method = row.parsed("capture method", CaptureMethod::parse)?;
    let amount_capturable = row.minor()?;
    let amount_captured = row.minor()?;
    let amount_refunded = row.minor()?;
    let amount_disputed = row.minor()?;
    let brand = row.opt_text()?;
    let last4 = row.opt_text()?;
    let exp_month = row.opt_int()?;
    let exp_year = row.opt_int()?;
    let fingerprint = row.opt_text()?;
    let payment_method = match brand {
        Some(brand) => Some(PaymentMethod {
            brand,
            last4: last4.unwrap_or_default(),
            exp_month: small(exp_month, "expiry month")?,
            exp_year: small(exp_year, "expiry year")?,
            fingerprint: fingerprint.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Payment {
        id,
        account_id,
        mode,
        status,
        amount,
        currency,
        description,
        return_url,
        checkout_token,
        metadata,
        capture_method,
        amount_capturable,
        amount_captured,
        amount_refunded,
        amount_disputed,
        payment_method,
        failure_code: row.opt_parsed("failure code", FailureCode::parse)?,
        created_at: row.at()?,
        expires_at: row.at()?,
        authorized_at: row.opt_at()?,
        captured_at: row.opt_at()?,
        cancelled_at: row.opt_at()?,
        failed_at: row.opt_at()?,
        expired_at: row.opt_at()?,
        processor: row.opt_text()?,
        processor_reference: row.opt_text()?,
        processor_claimed_until: row.opt_at()?,
        processor_attempt: small(Some(row.int()?), "processor attempt")?,
    })
}

fn small<T: TryFrom<i64>>(value: Option<i64>, what: &str) -> Result<T, StoreError> {
    let value = value.unwrap_or_default();
    T::try_from(value).map_err(|_| corrupt(what, &value.to_string()))
}

const PAYMENTS: Listed<Payment> = Listed {
    table: "payments",
    columns: COLUMNS,
    read: payment,
};

/// By id alone, then the scope check in code (see `seq_of` for why).
static BY_ID: Sql = Sql::new("SELECT {payment_columns} FROM payments WHERE id = $1");
static BY_ID_FOR_UPDATE: Sql =
    Sql::new("SELECT {payment_columns} FROM payments WHERE id = $1{for_update}");

fn in_scope(payment: Option<Payment>, scope: &Scope) -> Option<Payment> {
    payment.filter(|p| p.account_id == scope.account_id && p.mode == scope.mode)
}

impl Tx<'_> {
    /// Reads a payment to change it. On SQLite the single writer already excludes every other
    /// writer; on PostgreSQL this is `SELECT … FOR UPDATE`.
    pub fn get_payment_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        let found = first(self.query_opt(&BY_ID_FOR_UPDATE, &args![id])?, payment)?;
        Ok(in_scope(found, scope))
    }

    pub fn insert_payment(&mut self, p: &Payment) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO payments (id, account_id, mode, status, amount, currency, description,
                 return_url, checkout_token, metadata, capture_method, amount_capturable,
                 amount_captured, amount_refunded, amount_disputed, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                 $17)",
        );
        self.defer(
            &INSERT,
            &args![
                &p.id,
                &p.account_id,
                p.mode,
                p.status.as_str(),
                p.amount,
                p.currency,
                p.description.as_ref(),
                &p.return_url,
                &p.checkout_token,
                metadata_to_json(&p.metadata),
                p.capture_method.as_str(),
                p.amount_capturable,
                p.amount_captured,
                p.amount_refunded,
                p.amount_disputed,
                p.created_at,
                p.expires_at,
            ],
            Changed::Exactly(1),
        )
    }

    /// Writes every mutable column of `payment` back, together with its processor reference.
    /// The row is locked (`get_payment_for_update`), so exactly one row must change.
    pub fn update_payment(
        &mut self,
        p: &Payment,
        processor_reference: Option<&str>,
    ) -> Result<(), StoreError> {
        static UPDATE: Sql = Sql::new(
            "UPDATE payments SET status = $2, amount_capturable = $3, amount_captured = $4,
                 amount_refunded = $5, pm_brand = $6, pm_last4 = $7, pm_exp_month = $8,
                 pm_exp_year = $9, pm_fingerprint = $10, failure_code = $11,
                 authorized_at = $12, captured_at = $13, cancelled_at = $14, failed_at = $15,
                 expired_at = $16,
                 processor_reference = coalesce($17, processor_reference),
                 amount_disputed = $18, processor = $19, processor_claimed_until = $20
             WHERE id = $1",
        );
        let pm = p.payment_method.as_ref();
        self.defer(
            &UPDATE,
            &args![
                &p.id,
                p.status.as_str(),
                p.amount_capturable,
                p.amount_captured,
                p.amount_refunded,
                pm.map(|m| &m.brand),
                pm.map(|m| &m.last4),
                pm.map(|m| m.exp_month),
                pm.map(|m| m.exp_year),
                pm.map(|m| &m.fingerprint),
                p.failure_code.map(FailureCode::as_str),
                p.authorized_at,
                p.captured_at,
                p.cancelled_at,
                p.failed_at,
                p.expired_at,
                processor_reference,
                p.amount_disputed,
                p.processor.as_ref(),
                p.processor_claimed_until,
            ],
            Changed::Exactly(1),
        )
    }

    /// Up to `limit` payments that `due` has made due by `before`, locked for this
    /// transaction; on PostgreSQL rows another node holds are skipped, not waited for (the
    /// single SQLite writer is the only one changing payments: reading them is claiming them).
    pub fn claim_due_payments(
        &mut self,
        due: Due,
        on: &DueOn,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let sql = render(
            &format!(
                "SELECT {{payment_columns}} FROM payments WHERE {}$1 AND {} ORDER BY seq \
                 LIMIT $2{}",
                due.condition(),
                on.condition(3),
                on.row_lock(),
            ),
            self.conn.dialect(),
        );
        let mut params = args![before, limit].to_vec();
        params.extend(on.account().map(Value::from));
        rows(self.conn.query(&sql, &params)?, payment)
    }

    /// Claims a `pending`, unclaimed payment for a call to its acquirer until `until`
    /// (SPEC §15): answers whether this transaction got it. One conditional statement, so
    /// of any number of submissions on any number of nodes exactly one gets it. The claim is
    /// `owner`'s (random per claim) and starts the payment's next attempt.
    /// The card the shopper entered (brand, last4, expiry, fingerprint) is kept with the
    /// claim, so a payment settled by a repair shows it too.
    pub fn claim_payment_for_processor(
        &mut self,
        payment_id: &str,
        until: UnixMillis,
        owner: &str,
        method: &PaymentMethod,
    ) -> Result<bool, StoreError> {
        static CLAIM: Sql = Sql::new(
            "UPDATE payments SET processor_claimed_until = $2, pm_brand = $3, pm_last4 = $4,
                 pm_exp_month = $5, pm_exp_year = $6, pm_fingerprint = $7,
                 processor_claim_owner = $8, processor_attempt = processor_attempt + 1
             WHERE id = $1 AND status = 'pending' AND processor_claimed_until IS NULL",
        );
        let params = args![
            payment_id,
            until,
            &method.brand,
            &method.last4,
            method.exp_month,
            method.exp_year,
            &method.fingerprint,
            owner,
        ];
        Ok(self.execute(&CLAIM, &params)? == 1)
    }

    /// Takes over a claim whose holder's time ran out (`before`), until `until`, for
    /// `owner`: answers whether this transaction got it (another node's repair may have
    /// been first). The attempt stays the one that was in flight.
    pub fn reclaim_stale_processor_claim(
        &mut self,
        payment_id: &str,
        before: UnixMillis,
        until: UnixMillis,
        owner: &str,
    ) -> Result<bool, StoreError> {
        static RECLAIM: Sql = Sql::new(
            "UPDATE payments SET processor_claimed_until = $3, processor_claim_owner = $4
             WHERE id = $1 AND processor_claimed_until IS NOT NULL
                 AND processor_claimed_until < $2",
        );
        Ok(self.execute(&RECLAIM, &args![payment_id, before, until, owner])? == 1)
    }

    /// Names the processor (and, once it gave one, its reference) of a payment claimed by
    /// `owner`: answers whether the claim was still `owner`'s (nothing changed otherwise).
    pub fn set_payment_processor(
        &mut self,
        payment_id: &str,
        owner: &str,
        processor: &str,
        reference: Option<&str>,
    ) -> Result<bool, StoreError> {
        static SET: Sql = Sql::new(
            "UPDATE payments SET processor = $3, processor_reference = $4
             WHERE id = $1 AND processor_claim_owner = $2 AND processor_claimed_until IS NOT NULL",
        );
        Ok(self.execute(&SET, &args![payment_id, owner, processor, reference])? == 1)
    }

    /// Ends `owner`'s claim on a payment, nothing else changing (its outcome is recorded in
    /// this transaction, or nothing was sent): answers whether the claim was still `owner`'s
    /// (a claim that ran out may have been taken over; then nothing changed).
    pub fn release_processor_claim(
        &mut self,
        payment_id: &str,
        owner: &str,
    ) -> Result<bool, StoreError> {
        static RELEASE: Sql = Sql::new(
            "UPDATE payments SET processor_claimed_until = NULL, processor_claim_owner = NULL
             WHERE id = $1 AND processor_claim_owner = $2 AND processor_claimed_until IS NOT NULL",
        );
        Ok(self.execute(&RELEASE, &args![payment_id, owner])? == 1)
    }

    /// Marks a payment the expiry ended as still to be cancelled at its acquirer from `due`.
    pub fn mark_processor_cancel_due(
        &mut self,
        payment_id: &str,
        due: UnixMillis,
    ) -> Result<(), StoreError> {
        static MARK: Sql = Sql::new("UPDATE payments SET processor_cancel_due = $2 WHERE id = $1");
        self.defer(&MARK, &args![payment_id, due], Changed::Exactly(1))
    }

    /// Payments (id, scope) whose acquirer cancel is due by `before`, oldest first.
    pub fn due_processor_cancels(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(String, Scope)>, StoreError> {
        static DUE: Sql = Sql::new(
            "SELECT id, account_id, mode FROM payments WHERE processor_cancel_due IS NOT NULL
                 AND processor_cancel_due <= $1 ORDER BY processor_cancel_due LIMIT $2",
        );
        rows(self.query(&DUE, &args![before, limit])?, |row| {
            Ok((row.text()?, row.scope()?))
        })
    }

    /// Leases a due acquirer cancel until `until` (the next try): answers whether this
    /// transaction got it (another node may have been first).
    pub fn lease_processor_cancel(
        &mut self,
        payment_id: &str,
        before: UnixMillis,
        until: UnixMillis,
    ) -> Result<bool, StoreError> {
        static LEASE: Sql = Sql::new(
            "UPDATE payments SET processor_cancel_due = $3
             WHERE id = $1 AND processor_cancel_due IS NOT NULL AND processor_cancel_due <= $2",
        );
        Ok(self.execute(&LEASE, &args![payment_id, before, until])? == 1)
    }

    /// The acquirer cancel of a payment is done (or can never be).
    pub fn clear_processor_cancel(&mut self, payment_id: &str) -> Result<(), StoreError> {
        static CLEAR: Sql =
            Sql::new("UPDATE payments SET processor_cancel_due = NULL WHERE id = $1");
        self.defer(&CLEAR, &args![payment_id], Changed::Exactly(1))
    }

    /// Payments (id, scope) whose processor claim ran out before `before` (their holder
    /// died).
    pub fn stale_processor_claims(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(String, Scope)>, StoreError> {
        static STALE: Sql = Sql::new(
            "SELECT id, account_id, mode FROM payments WHERE processor_claimed_until IS NOT NULL
                 AND processor_claimed_until < $1 ORDER BY processor_claimed_until LIMIT $2",
        );
        rows(self.query(&STALE, &args![before, limit])?, |row| {
            Ok((row.text()?, row.scope()?))
        })
    }

    /// The processor that has a payment and its reference (what its refunds go to).
    pub fn payment_processor_of(
        &mut self,
        payment_id: &str,
    ) -> Result<(Option<String>, Option<String>), StoreError> {
        static OF: Sql =
            Sql::new("SELECT processor, processor_reference FROM payments WHERE id = $1");
        Ok(first(self.query_opt(&OF, &args![payment_id])?, |row| {
            Ok((row.opt_text()?, row.opt_text()?))
        })?
        .unwrap_or_default())
    }

    /// The reference the processor gave a payment (what its refunds are made against).
    pub fn payment_processor_reference(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<String>, StoreError> {
        static REFERENCE: Sql = Sql::new("SELECT processor_reference FROM payments WHERE id = $1");
        Ok(first(
            self.query_opt(&REFERENCE, &args![payment_id])?,
            Row::opt_text,
        )?
        .flatten())
    }
}

impl OneRead<Option<Payment>> {
    /// The payment `id` of `scope`.
    pub fn payment(scope: &Scope, id: &str) -> Self {
        let scope = scope.clone();
        OneRead::new(&BY_ID, &args![id], move |rows| {
            let found = first(rows.into_iter().next(), payment)?;
            Ok(in_scope(found, &scope))
        })
    }
}

impl Reader<'_> {
    pub fn get_payment(&mut self, scope: &Scope, id: &str) -> Result<Option<Payment>, StoreError> {
        self.one(OneRead::payment(scope, id))
    }

    /// The payment behind a checkout link, in whichever account and mode it lives.
    pub fn payment_by_checkout_token(
        &mut self,
        token: &str,
    ) -> Result<Option<Payment>, StoreError> {
        static BY_TOKEN: Sql =
            Sql::new("SELECT {payment_columns} FROM payments WHERE checkout_token = $1");
        first(self.query_opt(&BY_TOKEN, &args![token])?, payment)
    }

    /// Whether any payment's processor claim ran out before `before` (the repair's cheap
    /// look, so an idle server does not write every second).
    pub fn any_stale_processor_claim(&mut self, before: UnixMillis) -> Result<bool, StoreError> {
        static ANY: Sql = Sql::new(
            "SELECT id FROM payments WHERE processor_claimed_until IS NOT NULL
                 AND processor_claimed_until < $1 LIMIT 1",
        );
        Ok(self.query_opt(&ANY, &args![before])?.is_some())
    }

    /// Whether any acquirer cancel is due by `now` (a read before the write that leases them,
    /// so an idle worker writes nothing).
    pub fn any_processor_cancel_due(&mut self, now: UnixMillis) -> Result<bool, StoreError> {
        static ANY: Sql = Sql::new(
            "SELECT id FROM payments WHERE processor_cancel_due IS NOT NULL
                 AND processor_cancel_due <= $1 LIMIT 1",
        );
        Ok(self.query_opt(&ANY, &args![now])?.is_some())
    }

    pub fn list_payments(
        &mut self,
        scope: &Scope,
        status: Option<PaymentStatus>,
        query: &ListQuery,
    ) -> Result<Page<Payment>, ListError> {
        let filters: Vec<_> = status.map(|s| ("status", s.as_str())).into_iter().collect();
        self.list(&PAYMENTS, scope, &filters, query)
    }
}
