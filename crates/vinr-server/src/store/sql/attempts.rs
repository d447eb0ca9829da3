//! Payment attempts (SPEC §15): every call to a processor for a payment, with its outcome.

use vinr_domain::UnixMillis;

use super::{args, rows, Changed, Reader, Row, Run, Sql, Tx};
use crate::store::StoreError;

/// One call to a processor for a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub id: String,
    pub payment_id: String,
    pub processor: String,
    /// `approved`, `requires_authentication`, `declined`, `processor_error`, `repaired`,
    /// `not_sent`.
    pub outcome: String,
    pub failure_code: Option<String>,
    /// What went wrong, for a processor error (never a secret or a card number).
    pub detail: Option<String>,
    pub latency_ms: i64,
    pub created_at: UnixMillis,
}

fn attempt(row: &mut Row) -> Result<AttemptRecord, StoreError> {
    Ok(AttemptRecord {
        id: row.text()?,
        payment_id: row.text()?,
        processor: row.text()?,
        outcome: row.text()?,
        failure_code: row.opt_text()?,
        detail: row.opt_text()?,
        latency_ms: row.int()?,
        created_at: row.at()?,
    })
}

impl Tx<'_> {
    pub fn insert_payment_attempt(&mut self, a: &AttemptRecord) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO payment_attempts (id, payment_id, processor, outcome, failure_code,
                 detail, latency_ms, created_at, position)
             SELECT $1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT),
                 coalesce(max(position) + 1, 0)
             FROM payment_attempts WHERE payment_id = $2",
        );
        self.defer(
            &INSERT,
            &args![
                &a.id,
                &a.payment_id,
                &a.processor,
                &a.outcome,
                a.failure_code.as_ref(),
                a.detail.as_ref(),
                a.latency_ms,
                a.created_at,
            ],
            Changed::Exactly(1),
        )
    }
}

impl Reader<'_> {
    /// A payment's attempts, oldest first (at most `limit`).
    pub fn payment_attempts(
        &mut self,
        payment_id: &str,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        static LIST: Sql = Sql::new(
            "SELECT id, payment_id, processor, outcome, failure_code, detail, latency_ms,
                 created_at
             FROM payment_attempts WHERE payment_id = $1 ORDER BY position LIMIT $2",
        );
        rows(self.query(&LIST, &args![payment_id, limit])?, attempt)
    }
}
