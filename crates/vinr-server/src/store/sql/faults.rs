//! Fault rules (SPEC §12): test mode only, so every row's mode is `test`.

use vinr_domain::fault::{FaultRule, RequestFault};

use super::{args, count, rows, Changed, Reader, Row, Run, Sql, Tx};
use crate::store::StoreError;

pub const COLUMNS: &str = "id, account_id, method, path, fault, remaining, created_at";

/// The row reader: the columns of [`COLUMNS`], in order.
fn fault_rule(row: &mut Row) -> Result<FaultRule, StoreError> {
    Ok(FaultRule {
        id: row.text()?,
        account_id: row.text()?,
        method: row.text()?,
        path: row.text()?,
        fault: row.parsed("fault", |text| RequestFault::parse(text).ok())?,
        remaining: u32::try_from(row.int()?)
            .map_err(|_| super::corrupt("fault rule count", "out of range"))?,
        created_at: row.at()?,
    })
}

impl Tx<'_> {
    pub fn insert_fault_rule(&mut self, rule: &FaultRule) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO fault_rules
                 (id, account_id, mode, method, path, fault, remaining, created_at)
             VALUES ($1, $2, 'test', $3, $4, $5, $6, $7)",
        );
        self.auth_changed = true;
        self.defer(
            &INSERT,
            &args![
                &rule.id,
                &rule.account_id,
                &rule.method,
                &rule.path,
                rule.fault.to_string(),
                i64::from(rule.remaining),
                rule.created_at,
            ],
            Changed::Exactly(1),
        )
    }

    /// How many rules `account_id` holds, as this transaction sees them.
    pub fn count_fault_rules(&mut self, account_id: &str) -> Result<u64, StoreError> {
        static COUNT: Sql = Sql::new("SELECT count(*) FROM fault_rules WHERE account_id = $1");
        count(self.query_opt(&COUNT, &args![account_id])?)
    }

    /// The account's rules for `method`, oldest first, locked until the transaction ends (on
    /// PostgreSQL; SQLite's single writer excludes every other writer anyway): what one request
    /// counts down, so that two requests never take the same last count.
    pub fn lock_fault_rules(
        &mut self,
        account_id: &str,
        method: &str,
    ) -> Result<Vec<FaultRule>, StoreError> {
        static LOCK: Sql = Sql::new(
            "SELECT {fault_rule_columns} FROM fault_rules
             WHERE account_id = $1 AND method = $2
             ORDER BY seq{for_update}",
        );
        rows(self.query(&LOCK, &args![account_id, method])?, fault_rule)
    }

    /// Sets a locked rule's remaining count.
    pub fn set_fault_rule_remaining(&mut self, id: &str, remaining: u32) -> Result<(), StoreError> {
        static SET: Sql = Sql::new("UPDATE fault_rules SET remaining = $2 WHERE id = $1");
        self.defer(&SET, &args![id, i64::from(remaining)], Changed::Exactly(1))
    }

    /// Deletes a locked rule (its last count was taken).
    pub fn delete_fault_rule(&mut self, id: &str) -> Result<(), StoreError> {
        static DELETE: Sql = Sql::new("DELETE FROM fault_rules WHERE id = $1");
        self.auth_changed = true;
        self.defer(&DELETE, &args![id], Changed::Exactly(1))
    }

    /// Deletes every rule of `account_id`; answers how many. The rules are locked first in the
    /// order [`Tx::lock_fault_rules`] takes them, so that a request counting one down and this
    /// deletion never wait for each other in a circle.
    pub fn clear_fault_rules(&mut self, account_id: &str) -> Result<u64, StoreError> {
        static LOCK: Sql =
            Sql::new("SELECT 1 FROM fault_rules WHERE account_id = $1 ORDER BY seq{for_update}");
        static CLEAR: Sql = Sql::new("DELETE FROM fault_rules WHERE account_id = $1");
        if self.conn.dialect() == super::Dialect::Postgres {
            self.query(&LOCK, &args![account_id])?;
        }
        self.auth_changed = true;
        self.execute(&CLEAR, &args![account_id])
    }
}

impl Reader<'_> {
    /// The account's rules, oldest first.
    pub fn list_fault_rules(&mut self, account_id: &str) -> Result<Vec<FaultRule>, StoreError> {
        static LIST: Sql = Sql::new(
            "SELECT {fault_rule_columns} FROM fault_rules WHERE account_id = $1
             ORDER BY seq",
        );
        rows(self.query(&LIST, &args![account_id])?, fault_rule)
    }
}
