//! Settlements (SPEC §8).

use vinr_domain::settlement::{Settlement, SettlementStatus, Totals};
use vinr_domain::{Currency, Mode, UnixMillis};

use super::{args, first, render, rows, Changed, Listed, Reader, Row, Run, Sql, Tx, Value};
use crate::store::{DueOn, ListError, ListQuery, Page, Scope, StoreError};

pub const COLUMNS: &str = "id, account_id, mode, currency, status, gross, refunds, disputes, \
    fees, net, transaction_count, period_start, period_end, created_at, paid_at";

/// The row reader: the columns of [`COLUMNS`], in order.
fn settlement(row: &mut Row) -> Result<Settlement, StoreError> {
    let id = row.text()?;
    let account_id = row.text()?;
    let mode = row.mode()?;
    let currency = row.currency()?;
    let status = row.parsed("settlement status", SettlementStatus::parse)?;
    let (gross, refunds, disputes) = (row.int()?, row.int()?, row.int()?);
    let (fees, net) = (row.int()?, row.int()?);
    let transaction_count = row.minor()?;
    let period_start = row.at()?;
    Ok(Settlement {
        id,
        account_id,
        mode,
        currency,
        status,
        totals: Totals {
            gross,
            refunds,
            disputes,
            fees,
            net,
            transaction_count,
            period_start: Some(period_start),
        },
        period_start,
        period_end: row.at()?,
        created_at: row.at()?,
        paid_at: row.opt_at()?,
    })
}

const SETTLEMENTS: Listed<Settlement> = Listed {
    table: "settlements",
    columns: COLUMNS,
    read: settlement,
};

impl Tx<'_> {
    pub fn insert_settlement(&mut self, s: &Settlement) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO settlements (id, account_id, mode, currency, status, gross, refunds,
                 disputes, fees, net, transaction_count, period_start, period_end, created_at,
                 paid_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        );
        let params = args![
            &s.id,
            &s.account_id,
            s.mode,
            s.currency,
            s.status.as_str(),
            s.totals.gross,
            s.totals.refunds,
            s.totals.disputes,
            s.totals.fees,
            s.totals.net,
            s.totals.transaction_count,
            s.period_start,
            s.period_end,
            s.created_at,
            s.paid_at,
        ];
        self.defer(&INSERT, &params, Changed::Exactly(1))
    }

    /// Up to `limit` `pending` settlements of `mode` created by `before`, locked for this
    /// transaction (rows another node holds are skipped).
    pub fn claim_pending_settlements(
        &mut self,
        mode: Mode,
        on: &DueOn,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Settlement>, StoreError> {
        let sql = render(
            &format!(
                "SELECT {{settlement_columns}} FROM settlements
                 WHERE status = 'pending' AND mode = $1 AND created_at <= $2 AND {}
                 ORDER BY created_at LIMIT $3{}",
                on.condition(4),
                on.row_lock(),
            ),
            self.conn.dialect(),
        );
        let mut params = args![mode, before, limit].to_vec();
        params.extend(on.account().map(Value::from));
        rows(self.conn.query(&sql, &params)?, settlement)
    }

    /// Writes a settlement's status and payout time back.
    pub fn update_settlement(&mut self, s: &Settlement) -> Result<(), StoreError> {
        static UPDATE: Sql =
            Sql::new("UPDATE settlements SET status = $2, paid_at = $3 WHERE id = $1");
        let params = args![&s.id, s.status.as_str(), s.paid_at];
        self.defer(&UPDATE, &params, Changed::Exactly(1))
    }
}

impl Reader<'_> {
    /// A settlement by id alone (the command line's report has no caller's scope).
    pub fn get_settlement(&mut self, id: &str) -> Result<Option<Settlement>, StoreError> {
        static GET: Sql = Sql::new("SELECT {settlement_columns} FROM settlements WHERE id = $1");
        first(self.query_opt(&GET, &args![id])?, settlement)
    }

    pub fn list_settlements(
        &mut self,
        scope: &Scope,
        status: Option<SettlementStatus>,
        currency: Option<Currency>,
        query: &ListQuery,
    ) -> Result<Page<Settlement>, ListError> {
        let filters: Vec<(&str, &str)> = [
            ("status", status.map(SettlementStatus::as_str)),
            ("currency", currency.map(Currency::code)),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|value| (column, value)))
        .collect();
        self.list(&SETTLEMENTS, scope, &filters, query)
    }
}
