//! Disputes (SPEC §11).

use vinr_domain::dispute::{Dispute, DisputeReason, DisputeStatus, Evidence};
use vinr_domain::UnixMillis;

use super::{
    args, corrupt, first, render, rows, Changed, Listed, Reader, Row, Run, Sql, Tx, Value,
};
use crate::store::{
    metadata_from_json, metadata_to_json, DueOn, ListError, ListQuery, Page, Scope, StoreError,
};

pub const COLUMNS: &str = "id, account_id, mode, payment_id, amount, currency, reason, status, \
    evidence, evidence_due_by, fee, metadata, created_at, closed_at";

/// The row reader: the columns of [`COLUMNS`], in order.
fn dispute(row: &mut Row) -> Result<Dispute, StoreError> {
    Ok(Dispute {
        id: row.text()?,
        account_id: row.text()?,
        mode: row.mode()?,
        payment_id: row.text()?,
        amount: row.minor()?,
        currency: row.currency()?,
        reason: row.parsed("dispute reason", DisputeReason::parse)?,
        status: row.parsed("dispute status", DisputeStatus::parse)?,
        evidence: evidence_from_json(&row.text()?)?,
        evidence_due_by: row.at()?,
        fee: row.minor()?,
        metadata: metadata_from_json(&row.text()?)?,
        created_at: row.at()?,
        closed_at: row.opt_at()?,
    })
}

/// Evidence travels as a JSON object of its wire names, the fields given only.
fn evidence_to_json(evidence: &Evidence) -> String {
    let fields: serde_json::Map<String, serde_json::Value> = evidence
        .fields()
        .into_iter()
        .filter_map(|(name, value)| value.map(|text| (name.to_owned(), text.into())))
        .collect();
    serde_json::Value::Object(fields).to_string()
}

fn evidence_from_json(text: &str) -> Result<Evidence, StoreError> {
    let fields: std::collections::BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|_| corrupt("evidence", text))?;
    let field = |name: &str| fields.get(name).cloned();
    Ok(Evidence {
        customer_name: field("customerName"),
        product_description: field("productDescription"),
        shipping_tracking_number: field("shippingTrackingNumber"),
        uncategorized_text: field("uncategorizedText"),
    })
}

const DISPUTES: Listed<Dispute> = Listed {
    table: "disputes",
    columns: COLUMNS,
    read: dispute,
};

static BY_ID: Sql = Sql::new("SELECT {dispute_columns} FROM disputes WHERE id = $1");

fn in_scope(dispute: Option<Dispute>, scope: &Scope) -> Option<Dispute> {
    dispute.filter(|d| d.account_id == scope.account_id && d.mode == scope.mode)
}

impl Tx<'_> {
    pub fn insert_dispute(&mut self, d: &Dispute) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO disputes (id, account_id, mode, payment_id, amount, currency, reason,
                 status, evidence, evidence_due_by, fee, metadata, created_at, closed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        );
        self.defer(
            &INSERT,
            &args![
                &d.id,
                &d.account_id,
                d.mode,
                &d.payment_id,
                d.amount,
                d.currency,
                d.reason.as_str(),
                d.status.as_str(),
                evidence_to_json(&d.evidence),
                d.evidence_due_by,
                d.fee,
                metadata_to_json(&d.metadata),
                d.created_at,
                d.closed_at,
            ],
            Changed::Exactly(1),
        )
    }

    /// Reads a dispute of `scope` to change it; on PostgreSQL `SELECT … FOR UPDATE`.
    pub fn get_dispute_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Dispute>, StoreError> {
        static GET: Sql =
            Sql::new("SELECT {dispute_columns} FROM disputes WHERE id = $1{for_update}");
        let found = first(self.query_opt(&GET, &args![id])?, dispute)?;
        Ok(in_scope(found, scope))
    }

    /// Writes a dispute's mutable columns back (the row is locked).
    pub fn update_dispute(&mut self, d: &Dispute) -> Result<(), StoreError> {
        static UPDATE: Sql = Sql::new(
            "UPDATE disputes SET status = $2, evidence = $3, metadata = $4, closed_at = $5
             WHERE id = $1",
        );
        self.defer(
            &UPDATE,
            &args![
                &d.id,
                d.status.as_str(),
                evidence_to_json(&d.evidence),
                metadata_to_json(&d.metadata),
                d.closed_at,
            ],
            Changed::Exactly(1),
        )
    }

    /// Up to `limit` disputes on clock `on` still waiting for a response whose
    /// `evidenceDueBy` is at or before `before`, locked for this transaction (on PostgreSQL
    /// rows another node holds are skipped; the single SQLite writer is the only one changing
    /// disputes).
    pub fn claim_due_disputes(
        &mut self,
        on: &DueOn,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Dispute>, StoreError> {
        let sql = render(
            &format!(
                "SELECT {{dispute_columns}} FROM disputes
                 WHERE status = 'needs_response' AND evidence_due_by <= $1 AND {}
                 ORDER BY seq LIMIT $2{}",
                on.condition(3),
                on.row_lock(),
            ),
            self.conn.dialect(),
        );
        let mut params = args![before, limit].to_vec();
        params.extend(on.account().map(Value::from));
        rows(self.conn.query(&sql, &params)?, dispute)
    }
}

impl Reader<'_> {
    pub fn get_dispute(&mut self, scope: &Scope, id: &str) -> Result<Option<Dispute>, StoreError> {
        let found = first(self.query_opt(&BY_ID, &args![id])?, dispute)?;
        Ok(in_scope(found, scope))
    }

    pub fn list_disputes(
        &mut self,
        scope: &Scope,
        payment_id: Option<&str>,
        status: Option<DisputeStatus>,
        query: &ListQuery,
    ) -> Result<Page<Dispute>, ListError> {
        let filters: Vec<_> = [
            payment_id.map(|id| ("payment_id", id)),
            status.map(|s| ("status", s.as_str())),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.list(&DISPUTES, scope, &filters, query)
    }
}
