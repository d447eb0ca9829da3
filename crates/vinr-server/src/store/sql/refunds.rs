//! Refunds.

use vinr_domain::{Refund, RefundReason, RefundStatus, UnixMillis};

use super::{args, first, render, rows, Changed, Listed, Reader, Row, Run, Sql, Tx, Value};
use crate::store::{
    metadata_from_json, metadata_to_json, DueOn, ListError, ListQuery, Page, Scope, StoreError,
};

pub const COLUMNS: &str = "id, account_id, mode, payment_id, amount, currency, status, reason, \
    metadata, failure_reason, created_at";

/// The row reader: the columns of [`COLUMNS`], in order.
fn refund(row: &mut Row) -> Result<Refund, StoreError> {
    Ok(Refund {
        id: row.text()?,
        account_id: row.text()?,
        mode: row.mode()?,
        payment_id: row.text()?,
        amount: row.minor()?,
        currency: row.currency()?,
        status: row.parsed("refund status", RefundStatus::parse)?,
        reason: row.opt_parsed("reason", RefundReason::parse)?,
        metadata: metadata_from_json(&row.text()?)?,
        failure_reason: row.opt_text()?,
        created_at: row.at()?,
    })
}

const REFUNDS: Listed<Refund> = Listed {
    table: "refunds",
    columns: COLUMNS,
    read: refund,
};

impl Tx<'_> {
    pub fn insert_refund(&mut self, r: &Refund) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO refunds (id, account_id, mode, payment_id, amount, currency, status,
                 reason, metadata, failure_reason, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        );
        self.defer(
            &INSERT,
            &args![
                &r.id,
                &r.account_id,
                r.mode,
                &r.payment_id,
                r.amount,
                r.currency,
                r.status.as_str(),
                r.reason.map(RefundReason::as_str),
                metadata_to_json(&r.metadata),
                r.failure_reason.as_ref(),
                r.created_at,
            ],
            Changed::Exactly(1),
        )
    }

    /// Reads a refund to change it (its status), by id alone: workers have no caller's scope.
    pub fn get_refund_for_update(&mut self, id: &str) -> Result<Option<Refund>, StoreError> {
        static GET: Sql =
            Sql::new("SELECT {refund_columns} FROM refunds WHERE id = $1{for_update}");
        first(self.query_opt(&GET, &args![id])?, refund)
    }

    /// Writes a refund's status and failure reason back.
    pub fn update_refund(&mut self, r: &Refund) -> Result<(), StoreError> {
        static UPDATE: Sql = Sql::new(
            "UPDATE refunds SET status = $2, failure_reason = $3, lease_until = NULL
             WHERE id = $1",
        );
        self.defer(
            &UPDATE,
            &args![&r.id, r.status.as_str(), r.failure_reason.as_ref()],
            Changed::Exactly(1),
        )
    }

    /// Leases up to `limit` pending refunds whose lease has run out until `lease_until`, so one
    /// worker at a time asks the processor about each (`SKIP LOCKED`: nodes leasing at the
    /// same time take disjoint refunds).
    /// Leases up to `limit` pending refunds on clock `on` until `lease_until`; `now` is
    /// the real time leases are compared with.
    pub fn lease_pending_refunds(
        &mut self,
        on: &DueOn,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError> {
        let sql = render(
            &format!(
                "UPDATE refunds SET lease_until = $2 WHERE id IN (
                     SELECT id FROM refunds
                     WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= $1)
                       AND {}
                     ORDER BY seq LIMIT $3{})
                 RETURNING {{refund_columns}}",
                on.condition(4),
                on.row_lock(),
            ),
            self.conn.dialect(),
        );
        let mut params = args![now, lease_until, limit].to_vec();
        params.extend(on.account().map(Value::from));
        rows(self.conn.query(&sql, &params)?, refund)
    }
}

impl Reader<'_> {
    pub fn get_refund(&mut self, scope: &Scope, id: &str) -> Result<Option<Refund>, StoreError> {
        static GET: Sql = Sql::new("SELECT {refund_columns} FROM refunds WHERE id = $1");
        let found = first(self.query_opt(&GET, &args![id])?, refund)?;
        Ok(found.filter(|r| r.account_id == scope.account_id && r.mode == scope.mode))
    }

    pub fn list_refunds(
        &mut self,
        scope: &Scope,
        payment_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<Refund>, ListError> {
        let filters: Vec<_> = payment_id
            .map(|id| ("payment_id", id))
            .into_iter()
            .collect();
        self.list(&REFUNDS, scope, &filters, query)
    }
}
