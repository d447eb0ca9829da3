//! Accounts, API keys, settings and named locks.

use sha2::{Digest, Sha256};
use vinr_domain::UnixMillis;

use vinr_domain::Mode;

use super::list::Listed;
use super::{args, count, first, rows, Dialect, Reader, Row, Run, Sql, Tx};
use crate::store::{
    AccountObjects, AccountRecord, ApiKeyRecord, ClockDue, KeyKind, ListError, ListQuery, Page,
    StoreError,
};

pub const API_KEY_COLUMNS: &str =
    "id, account_id, mode, kind, scopes, key_hash, display, created_at, revoked_at";

fn api_key(row: &mut Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: row.text()?,
        account_id: row.text()?,
        mode: row.mode()?,
        kind: row.parsed("key kind", |kind| match kind {
            "secret" => Some(KeyKind::Secret),
            "restricted" => Some(KeyKind::Restricted),
            _ => None,
        })?,
        scopes: row.text()?.split_whitespace().map(str::to_owned).collect(),
        key_hash: row
            .bytes()?
            .try_into()
            .map_err(|_| super::corrupt("key hash", "of wrong length"))?,
        display: row.text()?,
        created_at: row.at()?,
        revoked_at: row.opt_at()?,
    })
}

pub const ACCOUNT_COLUMNS: &str = "id, name, created_at";

const ACCOUNTS: Listed<AccountRecord> = Listed {
    table: "accounts",
    columns: ACCOUNT_COLUMNS,
    read: account,
};

fn account(row: &mut Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        id: row.text()?,
        name: row.text()?,
        created_at: row.at()?,
    })
}

/// 64 bits of a SHA-256 of `parts`, each followed by a NUL: the key of a PostgreSQL advisory
/// lock (and of other spreads by hash).
pub(super) fn lock_key(parts: &[&str]) -> i64 {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    first_eight(&hasher.finalize())
}

fn first_eight(digest: &[u8]) -> i64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// One key by its hash: auth's lookup, and the first start's check for a fixed sandbox key.
static API_KEY_BY_HASH: Sql =
    Sql::new("SELECT {api_key_columns} FROM api_keys WHERE key_hash = $1");

/// An account's test clock offset (0 when there is no such account).
static CLOCK_OFFSET: Sql = Sql::new("SELECT test_clock_ms FROM accounts WHERE id = $1");
static CLOCK_OFFSET_FOR_UPDATE: Sql =
    Sql::new("SELECT test_clock_ms FROM accounts WHERE id = $1{for_update}");

fn offset_of(found: Option<Row>) -> Result<i64, StoreError> {
    Ok(first(found, Row::int)?.unwrap_or(0))
}

impl Tx<'_> {
    /// The key whose hash is `key_hash` (auth's lookup, inside a write).
    pub fn api_key_of_hash(
        &mut self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        first(
            self.query_opt(&API_KEY_BY_HASH, &args![&key_hash[..]])?,
            api_key,
        )
    }

    pub fn insert_account(&mut self, account: &AccountRecord) -> Result<(), StoreError> {
        static INSERT: Sql =
            Sql::new("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)");
        self.execute(
            &INSERT,
            &args![&account.id, &account.name, account.created_at],
        )
        .map(drop)
    }

    /// How far `account_id`'s test clock runs ahead of real time, in ms, locking the account's
    /// row until the commit: one clock move of an account at a time.
    pub fn clock_offset_for_update(&mut self, account_id: &str) -> Result<i64, StoreError> {
        offset_of(self.query_opt(&CLOCK_OFFSET_FOR_UPDATE, &args![account_id])?)
    }

    /// The earliest instants of the work still to do on `account_id`'s test clock.
    pub fn clock_due(&mut self, account_id: &str) -> Result<ClockDue, StoreError> {
        static DUE: Sql = Sql::new(
            "SELECT
                 (SELECT min(expires_at) FROM payments WHERE account_id = $1 AND mode = 'test'
                     AND status IN ('pending', 'requires_authentication')),
                 (SELECT min(authorized_at) FROM payments WHERE account_id = $1
                     AND mode = 'test' AND status = 'authorized'),
                 (SELECT min(available_on) FROM balance_transactions WHERE account_id = $1
                     AND mode = 'test' AND settlement_id IS NULL AND type <> 'payout'),
                 (SELECT min(created_at) FROM settlements WHERE account_id = $1
                     AND mode = 'test' AND status = 'pending')",
        );
        let mut row = self
            .query_opt(&DUE, &args![account_id])?
            .ok_or_else(|| super::corrupt("clock due", "without a row"))?;
        Ok(ClockDue {
            expiry: row.opt_at()?,
            authorized: row.opt_at()?,
            unsettled: row.opt_at()?,
            payout: row.opt_at()?,
        })
    }

    /// Moves `account_id`'s test clock to `offset_ms` ahead of real time, never back: answers
    /// the offset now in force, `None` when there is no such account.
    pub fn advance_clock(
        &mut self,
        account_id: &str,
        offset_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        static ADVANCE: Sql = Sql::new(
            "UPDATE accounts SET test_clock_ms = CASE WHEN test_clock_ms < $2 THEN $2
                 ELSE test_clock_ms END
             WHERE id = $1 RETURNING test_clock_ms",
        );
        first(
            self.query_opt(&ADVANCE, &args![account_id, offset_ms])?,
            Row::int,
        )
    }

    /// Sets `account_id`'s test clock back to real time.
    pub fn reset_clock(&mut self, account_id: &str) -> Result<(), StoreError> {
        static RESET: Sql = Sql::new("UPDATE accounts SET test_clock_ms = 0 WHERE id = $1");
        self.execute(&RESET, &args![account_id]).map(drop)
    }

    pub fn account_exists(&mut self, account_id: &str) -> Result<bool, StoreError> {
        static EXISTS: Sql = Sql::new("SELECT 1 FROM accounts WHERE id = $1");
        Ok(self.query_opt(&EXISTS, &args![account_id])?.is_some())
    }

    /// Renames an account; answers the account after the change, `None` if there is none.
    pub fn rename_account(
        &mut self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        static RENAME: Sql = Sql::new("UPDATE accounts SET name = $2 WHERE id = $1");
        static GET: Sql = Sql::new("SELECT {account_columns} FROM accounts WHERE id = $1");
        if self.execute(&RENAME, &args![account_id, name])? == 0 {
            return Ok(None);
        }
        first(self.query_opt(&GET, &args![account_id])?, account)
    }

    /// The objects `account_id` has in `mode` (what makes an account not deletable in live
    /// mode).
    pub fn count_account_objects(
        &mut self,
        account_id: &str,
        mode: Mode,
    ) -> Result<AccountObjects, StoreError> {
        static PAYMENTS: Sql =
            Sql::new("SELECT count(*) FROM payments WHERE account_id = $1 AND mode = $2");
        static REFUNDS: Sql =
            Sql::new("SELECT count(*) FROM refunds WHERE account_id = $1 AND mode = $2");
        static EVENTS: Sql =
            Sql::new("SELECT count(*) FROM events WHERE account_id = $1 AND mode = $2");
        static BALANCE_TRANSACTIONS: Sql = Sql::new(
            "SELECT count(*) FROM balance_transactions WHERE account_id = $1 AND mode = $2",
        );
        static SETTLEMENTS: Sql =
            Sql::new("SELECT count(*) FROM settlements WHERE account_id = $1 AND mode = $2");
        static WEBHOOK_ENDPOINTS: Sql =
            Sql::new("SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND mode = $2");
        let mut counted = |sql: &'static Sql| -> Result<u64, StoreError> {
            count(self.query_opt(sql, &args![account_id, mode])?)
        };
        Ok(AccountObjects {
            payments: counted(&PAYMENTS)?,
            refunds: counted(&REFUNDS)?,
            events: counted(&EVENTS)?,
            balance_transactions: counted(&BALANCE_TRANSACTIONS)?,
            settlements: counted(&SETTLEMENTS)?,
            webhook_endpoints: counted(&WEBHOOK_ENDPOINTS)?,
        })
    }

    /// Deletes everything `account_id` holds in `mode`: payments, refunds, events, the ledger
    /// and balance, settlements, webhook endpoints (their deliveries go with them, by the
    /// foreign key) and attempts, and idempotency keys. Keys and the account stay.
    pub fn delete_account_data(&mut self, account_id: &str, mode: Mode) -> Result<(), StoreError> {
        static DELETES: [Sql; 10] = [
            Sql::new("DELETE FROM refunds WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM payments WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM events WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM ledger_entries WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM balance_totals WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM balance_transactions WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM settlements WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM webhook_attempts WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM webhook_endpoints WHERE account_id = $1 AND mode = $2"),
            Sql::new("DELETE FROM idempotency_keys WHERE account_id = $1 AND mode = $2"),
        ];
        for sql in &DELETES {
            self.execute(sql, &args![account_id, mode])?;
        }
        Ok(())
    }

    /// Deletes the account and all its keys (every mode); answers whether it existed. Its
    /// data must be gone already ([`Tx::delete_account_data`]).
    pub fn delete_account(&mut self, account_id: &str) -> Result<bool, StoreError> {
        static KEYS: Sql = Sql::new("DELETE FROM api_keys WHERE account_id = $1");
        static ACCOUNT: Sql = Sql::new("DELETE FROM accounts WHERE id = $1");
        self.execute(&KEYS, &args![account_id])?;
        Ok(self.execute(&ACCOUNT, &args![account_id])? == 1)
    }

    pub fn count_accounts(&mut self) -> Result<u64, StoreError> {
        static COUNT: Sql = Sql::new("SELECT count(*) FROM accounts");
        count(self.query_opt(&COUNT, &[])?)
    }

    pub fn insert_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO api_keys (id, account_id, mode, kind, scopes, key_hash, display,
                                   created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        );
        self.execute(
            &INSERT,
            &args![
                &key.id,
                &key.account_id,
                key.mode,
                key.kind.as_str(),
                key.scopes.join(" "),
                &key.key_hash[..],
                &key.display,
                key.created_at,
                key.revoked_at,
            ],
        )
        .map(drop)
    }

    /// Marks a key revoked; answers whether a live (unrevoked) key was found.
    pub fn revoke_api_key(&mut self, key_id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        static REVOKE: Sql =
            Sql::new("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL");
        Ok(self.execute(&REVOKE, &args![key_id, now])? == 1)
    }

    /// Waits for, then holds until this transaction ends, the lock called `name`: the way to
    /// make a check-then-insert (first-start bootstrap, singleton runs) safe across nodes.
    /// SQLite's single writer already runs one flow at a time.
    pub fn lock_exclusive(&mut self, name: &str) -> Result<(), StoreError> {
        static LOCK: Sql = Sql::new("SELECT pg_advisory_xact_lock($1)");
        match self.conn.dialect() {
            Dialect::Sqlite => Ok(()),
            // The name's SHA-256 alone (no NUL after it): the key every version takes, so
            // nodes of two versions running together still exclude each other.
            Dialect::Postgres => {
                let key = first_eight(&Sha256::digest(name.as_bytes()));
                self.query(&LOCK, &args![key]).map(drop)
            }
        }
    }

    pub fn get_setting(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        static GET: Sql = Sql::new("SELECT value FROM settings WHERE name = $1");
        first(self.query_opt(&GET, &args![name])?, Row::text)
    }

    pub fn put_setting(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        static PUT: Sql = Sql::new(
            "INSERT INTO settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        );
        self.execute(&PUT, &args![name, value]).map(drop)
    }
}

impl Reader<'_> {
    /// The key whose hash is `key_hash`, with its account's test clock offset: what auth
    /// needs, in one statement.
    pub fn api_key_with_clock(
        &mut self,
        key_hash: &[u8; 32],
    ) -> Result<Option<(ApiKeyRecord, i64)>, StoreError> {
        static BY_HASH: Sql = Sql::new(
            "SELECT {api_key_columns},
                 (SELECT a.test_clock_ms FROM accounts a WHERE a.id = api_keys.account_id)
             FROM api_keys WHERE key_hash = $1",
        );
        first(self.query_opt(&BY_HASH, &args![&key_hash[..]])?, |row| {
            let key = api_key(row)?;
            Ok((key, row.opt_int()?.unwrap_or(0)))
        })
    }

    /// How far `account_id`'s test clock runs ahead of real time, in ms.
    pub fn clock_offset(&mut self, account_id: &str) -> Result<i64, StoreError> {
        offset_of(self.query_opt(&CLOCK_OFFSET, &args![account_id])?)
    }

    /// The accounts whose test clock runs ahead of real time, at most `limit`.
    pub fn clocked_accounts(&mut self, limit: usize) -> Result<Vec<String>, StoreError> {
        static CLOCKED: Sql =
            Sql::new("SELECT id FROM accounts WHERE test_clock_ms > 0 ORDER BY id LIMIT $1");
        rows(self.query(&CLOCKED, &args![limit])?, Row::text)
    }

    pub fn list_api_keys(&mut self, account_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        static LIST: Sql =
            Sql::new("SELECT {api_key_columns} FROM api_keys WHERE account_id = $1 ORDER BY seq");
        rows(self.query(&LIST, &args![account_id])?, api_key)
    }

    pub fn get_account(&mut self, account_id: &str) -> Result<Option<AccountRecord>, StoreError> {
        static GET: Sql = Sql::new("SELECT {account_columns} FROM accounts WHERE id = $1");
        first(self.query_opt(&GET, &args![account_id])?, account)
    }

    /// Every account, newest first, a page at a time.
    pub fn list_accounts(&mut self, query: &ListQuery) -> Result<Page<AccountRecord>, ListError> {
        self.list_unscoped(&ACCOUNTS, query)
    }
}
