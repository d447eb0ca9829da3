//! Balance transactions, their ledger entries, and the balance they add up to (SPEC §7).

use vinr_domain::ledger::{BalanceType, Entry, LedgerAccount};
use vinr_domain::limits::BALANCE_TOTAL_SLOTS;
use vinr_domain::settlement::Line;
use vinr_domain::UnixMillis;

use super::accounts::lock_key;
use super::{
    args, first, render, rows, Changed, Conn, Dialect, Listed, Reader, Row, Run, Sql, Tx, Value,
};
use crate::store::{
    BalanceAmounts, BalanceTransactionFilter, BalanceTransactionRecord, DueOn, ListError,
    ListQuery, Page, Scope, SettlementGroup, StoreError,
};

pub const COLUMNS: &str = "id, account_id, mode, type, source, amount, fee, net, currency, \
    created_at, available_on, settlement_id";

/// The row reader: the columns of [`COLUMNS`], in order.
fn balance_transaction(row: &mut Row) -> Result<BalanceTransactionRecord, StoreError> {
    Ok(BalanceTransactionRecord {
        id: row.text()?,
        scope: row.scope()?,
        kind: row.parsed("balance transaction type", BalanceType::parse)?,
        source: row.text()?,
        amount: row.int()?,
        fee: row.int()?,
        net: row.int()?,
        currency: row.currency()?,
        created_at: row.at()?,
        available_on: row.at()?,
        settlement_id: row.opt_text()?,
    })
}

/// A gathered balance transaction as a settlement counts it: type, amount, fee, net,
/// created_at.
fn line(row: &mut Row) -> Result<Line, StoreError> {
    Ok(Line {
        kind: row.parsed("balance transaction type", BalanceType::parse)?,
        amount: row.int()?,
        fee: row.int()?,
        net: row.int()?,
        created_at: row.at()?,
    })
}

/// An (account, mode, currency) group with the earliest `available_on` among its rows.
fn group(row: &mut Row) -> Result<(SettlementGroup, UnixMillis), StoreError> {
    Ok((
        SettlementGroup {
            scope: row.scope()?,
            currency: row.currency()?,
        },
        row.at()?,
    ))
}

/// (currency, total, pending) as the balance reads them.
fn balance_amounts(row: &mut Row) -> Result<BalanceAmounts, StoreError> {
    let currency = row.currency()?;
    let total = row.int()?;
    let pending = row.int()?;
    Ok(BalanceAmounts {
        currency,
        available: total - pending,
        pending,
    })
}

const BALANCE_TRANSACTIONS: Listed<BalanceTransactionRecord> = Listed {
    table: "balance_transactions",
    columns: COLUMNS,
    read: balance_transaction,
};

impl Tx<'_> {
    /// [`Reader::unsettled_groups`], inside a write (the test clock settles as it moves).
    pub fn settlement_groups_due(
        &mut self,
        before: UnixMillis,
        account_id: Option<&str>,
    ) -> Result<Vec<(SettlementGroup, UnixMillis)>, StoreError> {
        unsettled_groups(&mut *self.conn, before, account_id)
    }

    /// Books a movement: the balance transaction and its ledger entries (which sum to zero).
    pub fn insert_balance_transaction(
        &mut self,
        b: &BalanceTransactionRecord,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO balance_transactions (id, account_id, mode, type, source, amount, fee,
                 net, currency, created_at, available_on, settlement_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        );
        self.defer(
            &INSERT,
            &args![
                &b.id,
                &b.scope.account_id,
                b.scope.mode,
                b.kind.as_str(),
                &b.source,
                b.amount,
                b.fee,
                b.net,
                b.currency,
                b.created_at,
                b.available_on,
                b.settlement_id.as_ref(),
            ],
            Changed::Exactly(1),
        )?;
        self.insert_ledger_entries(b, entries)?;
        self.add_to_balance_total(b, entries)
    }

    /// Keeps the running total a balance is read from in step with the ledger: adds what the
    /// movement moves on the merchant's balance to one slot of its (account, mode, currency).
    /// A flow uses one slot for all its bookings (a hash of its first balance transaction's
    /// id), so two flows never take two slot rows of a group in opposite order; a flow that
    /// books into several groups (a payout run) books them in one (account, currency) order.
    fn add_to_balance_total(
        &mut self,
        b: &BalanceTransactionRecord,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        static ADD: Sql = Sql::new(
            "INSERT INTO balance_totals (account_id, mode, currency, slot, amount)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, mode, currency, slot)
             DO UPDATE SET amount = balance_totals.amount + excluded.amount",
        );
        let merchant: Vec<i64> = entries
            .iter()
            .filter(|entry| entry.account == LedgerAccount::MerchantBalance)
            .map(|entry| -entry.amount)
            .collect();
        if merchant.is_empty() {
            return Ok(());
        }
        // Even a movement that nets to zero makes its currency part of the balance, as the
        // ledger's entries do.
        let moved: i64 = merchant.iter().sum();
        let slot = *self
            .balance_slot
            .get_or_insert_with(|| lock_key(&[&b.id]).unsigned_abs() % BALANCE_TOTAL_SLOTS);
        let params = args![&b.scope.account_id, b.scope.mode, b.currency, slot, moved];
        self.defer(&ADD, &params, Changed::Exactly(1))
    }

    /// A movement's ledger entries: one statement per entry on SQLite (cached, in-process:
    /// as cheap as a batch), one `unnest` for all of them on PostgreSQL.
    fn insert_ledger_entries(
        &mut self,
        b: &BalanceTransactionRecord,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        static INSERT_ONE: Sql = Sql::new(
            "INSERT INTO ledger_entries (movement_id, account_id, mode, currency,
                 ledger_account, amount)
             VALUES ($1, $2, $3, $4, $5, $6)",
        );
        static INSERT_ALL: Sql = Sql::new(
            "INSERT INTO ledger_entries (movement_id, account_id, mode, currency,
                 ledger_account, amount)
             SELECT $1, $2, $3, $4, e.ledger_account, e.amount
             FROM unnest($5::text[], $6::bigint[]) AS e (ledger_account, amount)",
        );
        let movement = args![&b.id, &b.scope.account_id, b.scope.mode, b.currency];
        match self.conn.dialect() {
            Dialect::Sqlite => {
                for entry in entries {
                    let [id, account, mode, currency] = movement.clone();
                    let params = [
                        id,
                        account,
                        mode,
                        currency,
                        Value::from(entry.account.as_str()),
                        Value::from(entry.amount),
                    ];
                    self.defer(&INSERT_ONE, &params, Changed::Exactly(1))?;
                }
                Ok(())
            }
            Dialect::Postgres => {
                let [id, account, mode, currency] = movement;
                let params = [
                    id,
                    account,
                    mode,
                    currency,
                    Value::Texts(
                        entries
                            .iter()
                            .map(|e| Some(e.account.as_str().to_owned()))
                            .collect(),
                    ),
                    Value::Ints(entries.iter().map(|e| Some(e.amount)).collect()),
                ];
                self.defer(&INSERT_ALL, &params, Changed::Exactly(entries.len() as u64))
            }
        }
    }

    /// Marks the group's unsettled balance transactions available by `before` (never a
    /// `payout`) as gathered by `settlement_id`, answering exactly the rows it marked. (Under
    /// PostgreSQL's READ COMMITTED a row another transaction settled meanwhile is re-checked
    /// after its lock is released and skipped.)
    pub fn gather_balance_transactions(
        &mut self,
        group: &SettlementGroup,
        before: UnixMillis,
        settlement_id: &str,
    ) -> Result<Vec<Line>, StoreError> {
        static GATHER: Sql = Sql::new(
            "UPDATE balance_transactions SET settlement_id = $5
             WHERE settlement_id IS NULL AND type <> 'payout' AND available_on <= $4
                 AND account_id = $1 AND mode = $2 AND currency = $3
             RETURNING type, amount, fee, net, created_at",
        );
        let params = args![
            &group.scope.account_id,
            group.scope.mode,
            group.currency,
            before,
            settlement_id,
        ];
        rows(self.query(&GATHER, &params)?, line)
    }
}

impl Reader<'_> {
    /// The merchant's balance per currency at `now`: the running total of its ledger entries
    /// (`balance_totals`), less what is still pending — the balance transactions whose
    /// `available_on` is after `now` (a recent range of an index, whatever the history).
    pub fn balance(
        &mut self,
        scope: &Scope,
        now: UnixMillis,
    ) -> Result<Vec<BalanceAmounts>, StoreError> {
        // One statement, so the total and the pending part come from one snapshot.
        static BALANCE: Sql = Sql::new(
            "SELECT t.currency, CAST(t.total AS BIGINT), CAST(COALESCE(p.pending, 0) AS BIGINT)
             FROM (SELECT currency, SUM(amount) AS total FROM balance_totals
                   WHERE account_id = $1 AND mode = $2 GROUP BY currency) t
             LEFT JOIN (SELECT currency, SUM(net) AS pending FROM balance_transactions
                   WHERE account_id = $1 AND mode = $2 AND available_on > $3
                   GROUP BY currency) p ON p.currency = t.currency
             ORDER BY t.currency",
        );
        let found = self.query(&BALANCE, &args![&scope.account_id, scope.mode, now])?;
        rows(found, balance_amounts)
    }

    pub fn get_balance_transaction(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<BalanceTransactionRecord>, StoreError> {
        static GET: Sql = Sql::new(
            "SELECT {balance_transaction_columns} FROM balance_transactions WHERE id = $1",
        );
        let found = first(self.query_opt(&GET, &args![id])?, balance_transaction)?;
        Ok(found.filter(|btx| &btx.scope == scope))
    }

    pub fn list_balance_transactions(
        &mut self,
        scope: &Scope,
        filter: &BalanceTransactionFilter,
        query: &ListQuery,
    ) -> Result<Page<BalanceTransactionRecord>, ListError> {
        self.list(&BALANCE_TRANSACTIONS, scope, &filter.columns(), query)
    }

    /// Every group with unsettled balance transactions (payouts are never settled) available
    /// by `before`, optionally of one account, with the earliest `available_on` among them.
    pub fn unsettled_groups(
        &mut self,
        before: UnixMillis,
        account_id: Option<&str>,
    ) -> Result<Vec<(SettlementGroup, UnixMillis)>, StoreError> {
        unsettled_groups(&mut *self.conn, before, account_id)
    }
}

fn unsettled_groups(
    conn: &mut dyn Conn,
    before: UnixMillis,
    account_id: Option<&str>,
) -> Result<Vec<(SettlementGroup, UnixMillis)>, StoreError> {
    // All accounts: those on real time ([`DueOn::RealTime`]); one account: all of it.
    let which = match account_id {
        None => DueOn::RealTime.condition(2),
        Some(_) => "account_id = $2".to_owned(),
    };
    let sql = render(
        &format!(
            "SELECT account_id, mode, currency, min(available_on) FROM balance_transactions
             WHERE settlement_id IS NULL AND type <> 'payout' AND available_on <= $1 AND {which}
             GROUP BY account_id, mode, currency"
        ),
        conn.dialect(),
    );
    let mut params = args![before].to_vec();
    params.extend(account_id.map(Value::from));
    rows(conn.query(&sql, &params)?, group)
}
