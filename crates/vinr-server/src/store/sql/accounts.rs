//! Accounts, API keys, settings and named locks.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use vinr_domain::UnixMillis;

use vinr_domain::Mode;

use super::list::Listed;
use super::{args, count, first, rows, Dialect, Reader, Row, Run, Sql, Tx};
use crate::store::{
    AccountObjects, AccountRecord, ApiKeyRecord, ClockDue, DeletedData, KeyKind, KeyLookup,
    ListError, ListQuery, Page, StoreError, WebhookEndpoints, LOST_TO_A_CONCURRENT_TRANSACTION,
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

/// An account's data in one mode: every table that holds it, in an order the foreign keys
/// allow (refunds before their payments, deliveries before their endpoints), with the
/// condition that picks the rows of account `$1` in mode `$2`. Deliveries have no account
/// column: they are named by endpoint (an event is queued only to endpoints of its own account
/// and mode). The one list: [`Tx::delete_account_data`] deletes from each.
const ACCOUNT_DATA: [(&str, &str); 13] = [
    ("refunds", "account_id = $1 AND mode = $2"),
    ("disputes", "account_id = $1 AND mode = $2"),
    ("payments", "account_id = $1 AND mode = $2"),
    ("events", "account_id = $1 AND mode = $2"),
    ("ledger_entries", "account_id = $1 AND mode = $2"),
    ("balance_totals", "account_id = $1 AND mode = $2"),
    ("balance_transactions", "account_id = $1 AND mode = $2"),
    ("settlements", "account_id = $1 AND mode = $2"),
    (
        "webhook_deliveries",
        "endpoint_id IN (SELECT id FROM webhook_endpoints WHERE account_id = $1 AND mode = $2)",
    ),
    ("webhook_attempts", "account_id = $1 AND mode = $2"),
    ("webhook_endpoints", "account_id = $1 AND mode = $2"),
    ("idempotency_keys", "account_id = $1 AND mode = $2"),
    ("fault_rules", "account_id = $1 AND mode = $2"),
];

/// The tables of [`ACCOUNT_DATA`] whose rows flows change in place, in the order flows lock
/// them (the refunds worker: a refund, then its payment; a dispute's change: the dispute, then
/// its payment; a payout: its settlement, then the balance totals), which a deletion on
/// PostgreSQL locks first.
const LOCKED_FIRST: [&str; 6] = [
    "refunds",
    "disputes",
    "payments",
    "settlements",
    "balance_transactions",
    "balance_totals",
];

/// How many times a deletion on PostgreSQL starts over after a conflict with the account's
/// own writes; each start waits for the flows it conflicted with, so a few suffice.
const DELETE_ATTEMPTS_MAX: u32 = 5;

/// The statements of [`ACCOUNT_DATA`], built once.
struct AccountDataStatements {
    /// One `DELETE` per table (SQLite).
    deletes: Vec<String>,
    /// `SELECT … FOR UPDATE` of the tables in [`LOCKED_FIRST`] (PostgreSQL).
    locks: Vec<String>,
    /// Every `DELETE` in one statement, answering each one's count (PostgreSQL).
    postgres: String,
    /// The same, the webhook endpoints left out.
    postgres_keeping_endpoints: String,
}

fn account_data_statements() -> &'static AccountDataStatements {
    static STATEMENTS: OnceLock<AccountDataStatements> = OnceLock::new();
    STATEMENTS.get_or_init(|| {
        let condition = |table: &str| {
            ACCOUNT_DATA
                .iter()
                .find(|(t, _)| *t == table)
                .map(|(_, condition)| *condition)
                .unwrap_or("FALSE")
        };
        let deletes = ACCOUNT_DATA
            .iter()
            .map(|(table, condition)| format!("DELETE FROM {table} WHERE {condition}"))
            .collect();
        let locks = LOCKED_FIRST
            .iter()
            .map(|table| {
                format!(
                    "SELECT 1 FROM {table} WHERE {} FOR UPDATE",
                    condition(table)
                )
            })
            .collect();
        // Data-modifying CTEs all run, on one snapshot; the foreign keys are checked at the
        // statement's end, when refunds and deliveries are gone with their parents.
        let one_statement = |keep: &str| {
            let ctes: Vec<String> = ACCOUNT_DATA
                .iter()
                .enumerate()
                .map(|(at, (table, condition))| {
                    let condition = if *table == keep { "FALSE" } else { condition };
                    format!("d{at} AS (DELETE FROM {table} WHERE {condition} RETURNING 1)")
                })
                .collect();
            let counts: Vec<String> = (0..ACCOUNT_DATA.len())
                .map(|at| format!("(SELECT count(*) FROM d{at})"))
                .collect();
            format!("WITH {} SELECT {}", ctes.join(", "), counts.join(", "))
        };
        AccountDataStatements {
            deletes,
            locks,
            postgres: one_statement(""),
            postgres_keeping_endpoints: one_statement("webhook_endpoints"),
        }
    })
}

/// One key by its hash: auth's lookup, and the first start's check for a fixed sandbox key.
static API_KEY_BY_HASH: Sql =
    Sql::new("SELECT {api_key_columns} FROM api_keys WHERE key_hash = $1");

/// The earliest instants of what is still to do on an account's test clock.
static CLOCK_DUE: Sql = Sql::new(
    "SELECT
         (SELECT min(expires_at) FROM payments WHERE account_id = $1 AND mode = 'test'
             AND status IN ('pending', 'requires_authentication')),
         (SELECT min(authorized_at) FROM payments WHERE account_id = $1
             AND mode = 'test' AND status = 'authorized'),
         (SELECT min(available_on) FROM balance_transactions WHERE account_id = $1
             AND mode = 'test' AND settlement_id IS NULL AND type <> 'payout'),
         (SELECT min(created_at) FROM settlements WHERE account_id = $1
             AND mode = 'test' AND status = 'pending'),
         (SELECT min(evidence_due_by) FROM disputes WHERE account_id = $1
             AND mode = 'test' AND status = 'needs_response')",
);

fn clock_due(found: Option<Row>) -> Result<ClockDue, StoreError> {
    let mut row = found.ok_or_else(|| super::corrupt("clock due", "without a row"))?;
    Ok(ClockDue {
        expiry: row.opt_at()?,
        authorized: row.opt_at()?,
        unsettled: row.opt_at()?,
        payout: row.opt_at()?,
        dispute_deadline: row.opt_at()?,
    })
}

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
        clock_due(self.query_opt(&CLOCK_DUE, &args![account_id])?)
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
        self.auth_changed = true;
        first(
            self.query_opt(&ADVANCE, &args![account_id, offset_ms])?,
            Row::int,
        )
    }

    /// Sets `account_id`'s test clock back to real time.
    pub fn reset_clock(&mut self, account_id: &str) -> Result<(), StoreError> {
        static RESET: Sql = Sql::new("UPDATE accounts SET test_clock_ms = 0 WHERE id = $1");
        self.auth_changed = true;
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
        static DISPUTES: Sql =
            Sql::new("SELECT count(*) FROM disputes WHERE account_id = $1 AND mode = $2");
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
            disputes: counted(&DISPUTES)?,
            events: counted(&EVENTS)?,
            balance_transactions: counted(&BALANCE_TRANSACTIONS)?,
            settlements: counted(&SETTLEMENTS)?,
            webhook_endpoints: counted(&WEBHOOK_ENDPOINTS)?,
        })
    }

    /// Deletes everything `account_id` holds in `mode` ([`ACCOUNT_DATA`]): payments, refunds,
    /// events, the ledger and balance, settlements, webhook deliveries and attempts,
    /// idempotency keys, and the webhook endpoints unless `endpoints` keeps them. Keys and the
    /// account stay. Answers the rows deleted. Account deletion and the test-mode reset both
    /// come here.
    ///
    /// SQLite's single writer runs nothing else meanwhile: one statement per table. On
    /// PostgreSQL the account's other writes go on (its own suite may still be running): the
    /// rows flows change in place are locked first, in the order flows lock them, so a flow
    /// already holding one commits before the deletions (and goes with them) and one starting
    /// later waits and finds its rows gone; then one statement deletes from every table, so
    /// that a write committed meanwhile is seen everywhere or nowhere (its new rows survive
    /// whole: no ledger entry without its balance transaction). What still conflicts (a
    /// refund of a payment made since the locks, a deadlock) rolls back to a savepoint and
    /// starts over, up to [`DELETE_ATTEMPTS_MAX`] times.
    pub fn delete_account_data(
        &mut self,
        account_id: &str,
        mode: Mode,
        endpoints: WebhookEndpoints,
    ) -> Result<DeletedData, StoreError> {
        let params = args![account_id, mode];
        let texts = account_data_statements();
        // Fault rules go with the data.
        self.auth_changed = true;
        let counts = match self.conn.dialect() {
            Dialect::Sqlite => {
                let mut counts = Vec::with_capacity(ACCOUNT_DATA.len());
                for ((table, _), delete) in ACCOUNT_DATA.iter().zip(&texts.deletes) {
                    let skip = *table == "webhook_endpoints" && endpoints == WebhookEndpoints::Keep;
                    counts.push(if skip {
                        0
                    } else {
                        self.conn.execute(delete, &params)?
                    });
                }
                counts
            }
            Dialect::Postgres => {
                let delete = match endpoints {
                    WebhookEndpoints::Keep => &texts.postgres_keeping_endpoints,
                    WebhookEndpoints::Delete => &texts.postgres,
                };
                let mut attempt = 1;
                loop {
                    self.conn.batch("SAVEPOINT delete_account_data")?;
                    match self.delete_locked(&texts.locks, delete, &params) {
                        Ok(counts) => {
                            self.conn.batch("RELEASE SAVEPOINT delete_account_data")?;
                            break counts;
                        }
                        Err(
                            error @ (StoreError::Database(_)
                            | StoreError::Unavailable(LOST_TO_A_CONCURRENT_TRANSACTION)),
                        ) if attempt < DELETE_ATTEMPTS_MAX => {
                            tracing::info!(attempt, %error, "account data deletion starts over");
                            self.conn
                                .batch("ROLLBACK TO SAVEPOINT delete_account_data")?;
                            attempt += 1;
                        }
                        Err(error) => return Err(error),
                    }
                }
            }
        };
        let deleted = |table: &str| {
            ACCOUNT_DATA
                .iter()
                .position(|(t, _)| *t == table)
                .and_then(|at| counts.get(at).copied())
                .unwrap_or_default()
        };
        Ok(DeletedData {
            payments: deleted("payments"),
            refunds: deleted("refunds"),
            disputes: deleted("disputes"),
            events: deleted("events"),
            balance_transactions: deleted("balance_transactions"),
            settlements: deleted("settlements"),
            webhook_deliveries: deleted("webhook_deliveries"),
            webhook_attempts: deleted("webhook_attempts"),
            idempotency_keys: deleted("idempotency_keys"),
            webhook_endpoints: deleted("webhook_endpoints"),
            fault_rules: deleted("fault_rules"),
        })
    }

    /// PostgreSQL: the locks, then the one deleting statement; answers its counts, in
    /// [`ACCOUNT_DATA`] order.
    fn delete_locked(
        &mut self,
        locks: &[String],
        delete: &str,
        params: &[super::Value<'_>],
    ) -> Result<Vec<u64>, StoreError> {
        for lock in locks {
            self.conn.query(lock, params)?;
        }
        let mut row = self
            .conn
            .query(delete, params)?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::Database("the deletion answered no row".into()))?;
        ACCOUNT_DATA
            .iter()
            .map(|_| Ok(u64::try_from(row.int()?).unwrap_or_default()))
            .collect()
    }

    /// Deletes the account and all its keys (every mode); answers whether it existed. Its
    /// data must be gone already ([`Tx::delete_account_data`]).
    pub fn delete_account(&mut self, account_id: &str) -> Result<bool, StoreError> {
        static KEYS: Sql = Sql::new("DELETE FROM api_keys WHERE account_id = $1");
        static ACCOUNT: Sql = Sql::new("DELETE FROM accounts WHERE id = $1");
        self.auth_changed = true;
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
        self.auth_changed = true;
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
    /// The key whose hash is `key_hash`, with its account's test clock offset and whether the
    /// account has fault rules: what auth needs, in one statement.
    pub fn api_key_for_auth(
        &mut self,
        key_hash: &[u8; 32],
    ) -> Result<Option<KeyLookup>, StoreError> {
        static BY_HASH: Sql = Sql::new(
            "SELECT {api_key_columns},
                 (SELECT a.test_clock_ms FROM accounts a WHERE a.id = api_keys.account_id),
                 CASE WHEN EXISTS (SELECT 1 FROM fault_rules f
                                   WHERE f.account_id = api_keys.account_id)
                      THEN 1 ELSE 0 END
             FROM api_keys WHERE key_hash = $1",
        );
        first(self.query_opt(&BY_HASH, &args![&key_hash[..]])?, |row| {
            Ok(KeyLookup {
                key: api_key(row)?,
                clock_offset_ms: row.opt_int()?.unwrap_or(0),
                fault_rules: row.int()? != 0,
            })
        })
    }

    /// How far `account_id`'s test clock runs ahead of real time, in ms.
    pub fn clock_offset(&mut self, account_id: &str) -> Result<i64, StoreError> {
        offset_of(self.query_opt(&CLOCK_OFFSET, &args![account_id])?)
    }

    /// The accounts whose test clock runs ahead of real time, in id order after `after`, at
    /// most `limit`.
    pub fn clocked_accounts(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        static CLOCKED: Sql = Sql::new(
            "SELECT id FROM accounts WHERE test_clock_ms > 0 AND id > $1 ORDER BY id LIMIT $2",
        );
        rows(
            self.query(&CLOCKED, &args![after.unwrap_or(""), limit])?,
            Row::text,
        )
    }

    /// [`Tx::clock_due`], read only: whether a clock pass has anything to do.
    pub fn due_on_clock(&mut self, account_id: &str) -> Result<ClockDue, StoreError> {
        clock_due(self.query_opt(&CLOCK_DUE, &args![account_id])?)
    }

    /// Whether `account_id` has a test-mode refund waiting for the processor.
    pub fn pending_refunds_on_clock(&mut self, account_id: &str) -> Result<bool, StoreError> {
        static PENDING: Sql = Sql::new(
            "SELECT 1 FROM refunds WHERE account_id = $1 AND mode = 'test'
                 AND status = 'pending' LIMIT 1",
        );
        Ok(self.query_opt(&PENDING, &args![account_id])?.is_some())
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
