//! The SQL of the SQLite backend: [`SqliteTx`] (inside the writer's transaction) and
//! [`SqliteReader`] (a read-only connection). Every statement is cached by rusqlite.

use rusqlite::{params, Connection, OptionalExtension, Row};
use vinr_domain::ledger::Entry;
use vinr_domain::settlement::{Line, Settlement, SettlementStatus};
use vinr_domain::{
    Currency, FailureCode, Mode, Payment, PaymentStatus, Refund, RefundReason, UnixMillis,
};

use super::{db_error, webhooks};
use crate::store::columns::{
    answer_reference, balance_amounts, balance_sql, request_hash, settlement_group,
    settlement_line, ApiKeyRow, BalanceTransactionRow, EventRow, PaymentRow, RefundRow,
    SettlementRow, API_KEY_COLUMNS, BALANCE_TRANSACTION_COLUMNS, EVENT_COLUMNS, PAYMENT_COLUMNS,
    REFUND_COLUMNS, SETTLEMENT_COLUMNS,
};
use crate::store::{
    metadata_to_json, settlement_filters, AccountRecord, ApiKeyRecord, BalanceAmounts,
    BalanceTransactionFilter, BalanceTransactionRecord, Cursor, Due, EventRecord, IdempotencyScope,
    ListError, ListQuery, Page, Reader, Scope, SettlementGroup, StoreError, StoredResponse, Tx,
};
use crate::store::{
    AttemptOutcome, DeliveryJob, WebhookAttemptRecord, WebhookEndpointChanges,
    WebhookEndpointRecord,
};

fn payment_row(row: &Row<'_>) -> rusqlite::Result<PaymentRow> {
    Ok(PaymentRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        status: row.get(3)?,
        amount: row.get(4)?,
        currency: row.get(5)?,
        description: row.get(6)?,
        return_url: row.get(7)?,
        checkout_token: row.get(8)?,
        metadata: row.get(9)?,
        capture_method: row.get(10)?,
        amount_capturable: row.get(11)?,
        amount_captured: row.get(12)?,
        amount_refunded: row.get(13)?,
        pm_brand: row.get(14)?,
        pm_last4: row.get(15)?,
        pm_exp_month: row.get(16)?,
        pm_exp_year: row.get(17)?,
        pm_fingerprint: row.get(18)?,
        failure_code: row.get(19)?,
        created_at: row.get(20)?,
        expires_at: row.get(21)?,
        authorized_at: row.get(22)?,
        captured_at: row.get(23)?,
        cancelled_at: row.get(24)?,
        failed_at: row.get(25)?,
        expired_at: row.get(26)?,
    })
}

fn api_key_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    Ok(ApiKeyRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        kind: row.get(3)?,
        scopes: row.get(4)?,
        key_hash: row.get(5)?,
        display: row.get(6)?,
        created_at: row.get(7)?,
        revoked_at: row.get(8)?,
    })
}

fn refund_row(row: &Row<'_>) -> rusqlite::Result<RefundRow> {
    Ok(RefundRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        payment_id: row.get(3)?,
        amount: row.get(4)?,
        currency: row.get(5)?,
        status: row.get(6)?,
        reason: row.get(7)?,
        metadata: row.get(8)?,
        failure_reason: row.get(9)?,
        created_at: row.get(10)?,
    })
}

fn balance_transaction_row(row: &Row<'_>) -> rusqlite::Result<BalanceTransactionRow> {
    Ok(BalanceTransactionRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        kind: row.get(3)?,
        source: row.get(4)?,
        amount: row.get(5)?,
        fee: row.get(6)?,
        net: row.get(7)?,
        currency: row.get(8)?,
        created_at: row.get(9)?,
        available_on: row.get(10)?,
        settlement_id: row.get(11)?,
    })
}

fn settlement_row(row: &Row<'_>) -> rusqlite::Result<SettlementRow> {
    Ok(SettlementRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        currency: row.get(3)?,
        status: row.get(4)?,
        gross: row.get(5)?,
        refunds: row.get(6)?,
        fees: row.get(7)?,
        net: row.get(8)?,
        transaction_count: row.get(9)?,
        period_start: row.get(10)?,
        period_end: row.get(11)?,
        created_at: row.get(12)?,
        paid_at: row.get(13)?,
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        kind: row.get(3)?,
        object_id: row.get(4)?,
        data: row.get(5)?,
        created_at: row.get(6)?,
    })
}

fn get_payment(conn: &Connection, scope: &Scope, id: &str) -> Result<Option<Payment>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(
            params![id, scope.account_id, scope.mode.as_str()],
            payment_row,
        )
        .optional()
    })
    .map_err(db_error)?
    .map(PaymentRow::into_payment)
    .transpose()
}

fn find_idempotent_response(
    conn: &Connection,
    key: &IdempotencyScope,
) -> Result<Option<StoredResponse>, StoreError> {
    conn.prepare_cached(
        "SELECT k.request_hash, k.status_code, coalesce(e.data, k.response_body)
         FROM idempotency_keys k LEFT JOIN events e ON e.id = k.response_event_id
         WHERE k.account_id = ?1 AND k.mode = ?2 AND k.method = ?3 AND k.path = ?4
           AND k.key = ?5",
    )
    .and_then(|mut stmt| {
        stmt.query_row(
            params![
                key.account_id,
                key.mode.as_str(),
                key.method,
                key.path,
                key.key
            ],
            |row| {
                // An event's data is TEXT, a stored body a BLOB: read either as bytes.
                let body = match row.get_ref(2)? {
                    rusqlite::types::ValueRef::Text(bytes)
                    | rusqlite::types::ValueRef::Blob(bytes) => bytes.to_vec(),
                    _ => Vec::new(),
                };
                Ok((row.get::<_, Vec<u8>>(0)?, row.get(1)?, body))
            },
        )
        .optional()
    })
    .map_err(db_error)?
    .map(|(hash, status_code, body)| {
        Ok(StoredResponse {
            request_hash: request_hash(hash)?,
            status_code,
            body,
        })
    })
    .transpose()
}

/// A listable table: its name, its columns, and how a row becomes an object.
pub(super) struct Listed<R, T> {
    pub(super) table: &'static str,
    pub(super) columns: &'static str,
    pub(super) read: fn(&Row<'_>) -> rusqlite::Result<R>,
    pub(super) convert: fn(R) -> Result<T, StoreError>,
}

const PAYMENTS: Listed<PaymentRow, Payment> = Listed {
    table: "payments",
    columns: PAYMENT_COLUMNS,
    read: payment_row,
    convert: PaymentRow::into_payment,
};

const REFUNDS: Listed<RefundRow, Refund> = Listed {
    table: "refunds",
    columns: REFUND_COLUMNS,
    read: refund_row,
    convert: RefundRow::into_refund,
};

const BALANCE_TRANSACTIONS: Listed<BalanceTransactionRow, BalanceTransactionRecord> = Listed {
    table: "balance_transactions",
    columns: BALANCE_TRANSACTION_COLUMNS,
    read: balance_transaction_row,
    convert: BalanceTransactionRow::into_record,
};

const SETTLEMENTS: Listed<SettlementRow, Settlement> = Listed {
    table: "settlements",
    columns: SETTLEMENT_COLUMNS,
    read: settlement_row,
    convert: SettlementRow::into_settlement,
};

const EVENTS: Listed<EventRow, EventRecord> = Listed {
    table: "events",
    columns: EVENT_COLUMNS,
    read: event_row,
    convert: EventRow::into_record,
};

/// Runs a newest-first list query over `table` confined to `scope`, with extra equality
/// filters (all must match), `created` bounds and a cursor. Fetches one row more than asked to learn
/// `has_more` without a count.
pub(super) fn list<R, T>(
    conn: &Connection,
    listed: &Listed<R, T>,
    scope: &Scope,
    filters: &[(&str, &str)],
    query: &ListQuery,
) -> Result<Page<T>, ListError> {
    let Listed {
        table,
        columns,
        read,
        convert,
    } = *listed;
    let mut sql = format!("SELECT {columns} FROM {table} WHERE account_id = ?1 AND mode = ?2");
    let mut args: Vec<rusqlite::types::Value> = vec![
        scope.account_id.clone().into(),
        scope.mode.as_str().to_owned().into(),
    ];
    for (column, value) in filters {
        args.push((*value).to_owned().into());
        sql.push_str(&format!(" AND {column} = ?{}", args.len()));
    }
    if let Some(gte) = query.created_gte {
        args.push(gte.0.into());
        sql.push_str(&format!(" AND created_at >= ?{}", args.len()));
    }
    if let Some(lt) = query.created_lt {
        args.push(lt.0.into());
        sql.push_str(&format!(" AND created_at < ?{}", args.len()));
    }
    let (cursor_id, older) = match &query.cursor {
        Cursor::None => (None, true),
        Cursor::StartingAfter(id) => (Some(id), true),
        Cursor::EndingBefore(id) => (Some(id), false),
    };
    if let Some(id) = cursor_id {
        let seq: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT seq FROM {table} WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![id, scope.account_id, scope.mode.as_str()], |row| {
                    row.get(0)
                })
                .optional()
            })
            .map_err(db_error)?;
        let seq = seq.ok_or_else(|| query.cursor.unknown(id))?;
        args.push(seq.into());
        let op = if older { "<" } else { ">" };
        sql.push_str(&format!(" AND seq {op} ?{}", args.len()));
    }
    let order = if older { "DESC" } else { "ASC" };
    args.push(i64::from(query.limit + 1).into());
    sql.push_str(&format!(" ORDER BY seq {order} LIMIT ?{}", args.len()));
    let mut items = conn
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(args), read)?
                .collect::<rusqlite::Result<Vec<R>>>()
        })
        .map_err(db_error)?
        .into_iter()
        .map(convert)
        .collect::<Result<Vec<T>, StoreError>>()?;
    let has_more = items.len() > query.limit as usize;
    items.truncate(query.limit as usize);
    if !older {
        items.reverse();
    }
    Ok(Page { items, has_more })
}

pub struct SqliteTx<'c> {
    conn: &'c Connection,
    /// The event this flow wrote last, so that an idempotent answer equal to its snapshot is
    /// stored as a reference to it.
    last_event: Option<(String, String)>,
    /// This flow queued webhook deliveries: the writer wakes the delivery worker after the
    /// commit.
    pub(super) queued_deliveries: bool,
}

impl<'c> SqliteTx<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        SqliteTx {
            conn,
            last_event: None,
            queued_deliveries: false,
        }
    }

    fn execute(&self, sql: &str, args: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(args))
            .map_err(db_error)
    }

    /// Writes a movement's ledger entries (its balance transaction's id is `movement_id`).
    fn insert_ledger_entries(
        &mut self,
        movement_id: &str,
        scope: &Scope,
        currency: Currency,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        for entry in entries {
            self.execute(
                "INSERT INTO ledger_entries (movement_id, account_id, mode, currency,
                     ledger_account, amount)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    movement_id,
                    scope.account_id,
                    scope.mode.as_str(),
                    currency.code(),
                    entry.account.as_str(),
                    entry.amount,
                ],
            )?;
        }
        Ok(())
    }
}

impl Tx for SqliteTx<'_> {
    fn insert_account(&mut self, account: &AccountRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![account.id, account.name, account.created_at.0],
        )
        .map(drop)
    }

    fn account_exists(&mut self, account_id: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM accounts WHERE id = ?1")
            .and_then(|mut stmt| stmt.exists(params![account_id]))
            .map_err(db_error)
    }

    fn count_accounts(&mut self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM accounts", [], |row| row.get(0))
            .map_err(db_error)
    }

    fn insert_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO api_keys (id, account_id, mode, kind, scopes, key_hash, display,
                                   created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                key.id,
                key.account_id,
                key.mode.as_str(),
                key.kind.as_str(),
                key.scopes.join(" "),
                &key.key_hash[..],
                key.display,
                key.created_at.0,
                key.revoked_at.map(|at| at.0),
            ],
        )
        .map(drop)
    }

    fn revoke_api_key(&mut self, key_id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        self.execute(
            "UPDATE api_keys SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![key_id, now.0],
        )
        .map(|changed| changed == 1)
    }

    fn lock_exclusive(&mut self, _name: &str) -> Result<(), StoreError> {
        // The single writer already runs one flow at a time.
        Ok(())
    }

    fn get_setting(&mut self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT value FROM settings WHERE name = ?1")
            .and_then(|mut stmt| stmt.query_row(params![name], |row| row.get(0)).optional())
            .map_err(db_error)
    }

    fn put_setting(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, value],
        )
        .map(drop)
    }

    fn get_payment_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        get_payment(self.conn, scope, id)
    }

    fn insert_payment(&mut self, p: &Payment) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO payments (id, account_id, mode, status, amount, currency, description,
                 return_url, checkout_token, metadata, capture_method, amount_capturable,
                 amount_captured, amount_refunded, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                p.id,
                p.account_id,
                p.mode.as_str(),
                p.status.as_str(),
                p.amount,
                p.currency.code(),
                p.description,
                p.return_url,
                p.checkout_token,
                metadata_to_json(&p.metadata),
                p.capture_method.as_str(),
                p.amount_capturable,
                p.amount_captured,
                p.amount_refunded,
                p.created_at.0,
                p.expires_at.0,
            ],
        )
        .map(drop)
    }

    fn update_payment(
        &mut self,
        p: &Payment,
        processor_reference: Option<&str>,
    ) -> Result<(), StoreError> {
        let pm = p.payment_method.as_ref();
        let changed = self.execute(
            "UPDATE payments SET status = ?2, amount_capturable = ?3, amount_captured = ?4,
                 amount_refunded = ?5, pm_brand = ?6, pm_last4 = ?7, pm_exp_month = ?8,
                 pm_exp_year = ?9, pm_fingerprint = ?10, failure_code = ?11,
                 authorized_at = ?12, captured_at = ?13, cancelled_at = ?14, failed_at = ?15,
                 expired_at = ?16,
                 processor_reference = coalesce(?17, processor_reference)
             WHERE id = ?1",
            params![
                p.id,
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
                p.authorized_at.map(|at| at.0),
                p.captured_at.map(|at| at.0),
                p.cancelled_at.map(|at| at.0),
                p.failed_at.map(|at| at.0),
                p.expired_at.map(|at| at.0),
                processor_reference,
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::Database(format!(
                "payment {} vanished during its update",
                p.id
            )));
        }
        Ok(())
    }

    fn claim_due_payments(
        &mut self,
        due: Due,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        // The single writer is the only one changing payments: reading them is claiming them.
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE {}?1 ORDER BY seq LIMIT ?2",
            due.condition()
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| {
                stmt.query_map(params![before.0, limit as i64], payment_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(PaymentRow::into_payment)
            .collect()
    }

    fn payment_processor_reference(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT processor_reference FROM payments WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![payment_id], |row| row.get::<_, Option<String>>(0))
                    .optional()
            })
            .map(Option::flatten)
            .map_err(db_error)
    }

    fn insert_refund(&mut self, r: &Refund) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO refunds (id, account_id, mode, payment_id, amount, currency, status,
                 reason, metadata, failure_reason, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                r.id,
                r.account_id,
                r.mode.as_str(),
                r.payment_id,
                r.amount,
                r.currency.code(),
                r.status.as_str(),
                r.reason.map(RefundReason::as_str),
                metadata_to_json(&r.metadata),
                r.failure_reason,
                r.created_at.0,
            ],
        )
        .map(drop)
    }

    fn get_refund_for_update(&mut self, id: &str) -> Result<Option<Refund>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row(params![id], refund_row).optional())
            .map_err(db_error)?
            .map(RefundRow::into_refund)
            .transpose()
    }

    fn update_refund(&mut self, r: &Refund) -> Result<(), StoreError> {
        let changed = self.execute(
            "UPDATE refunds SET status = ?2, failure_reason = ?3, lease_until = NULL
             WHERE id = ?1",
            params![r.id, r.status.as_str(), r.failure_reason],
        )?;
        if changed != 1 {
            return Err(StoreError::Database(format!("refund {} vanished", r.id)));
        }
        Ok(())
    }

    fn lease_pending_refunds(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "UPDATE refunds SET lease_until = ?2 WHERE id IN (
                     SELECT id FROM refunds
                     WHERE status = 'pending' AND (lease_until IS NULL OR lease_until <= ?1)
                     ORDER BY seq LIMIT ?3)
                 RETURNING {REFUND_COLUMNS}"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![now.0, lease_until.0, limit as i64], refund_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(RefundRow::into_refund)
            .collect()
    }

    fn insert_balance_transaction(
        &mut self,
        b: &BalanceTransactionRecord,
        entries: &[Entry],
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO balance_transactions (id, account_id, mode, type, source, amount, fee,
                 net, currency, created_at, available_on, settlement_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                b.id,
                b.scope.account_id,
                b.scope.mode.as_str(),
                b.kind.as_str(),
                b.source,
                b.amount,
                b.fee,
                b.net,
                b.currency.code(),
                b.created_at.0,
                b.available_on.0,
                b.settlement_id,
            ],
        )?;
        self.insert_ledger_entries(&b.id, &b.scope, b.currency, entries)
    }

    fn gather_balance_transactions(
        &mut self,
        group: &SettlementGroup,
        before: UnixMillis,
        settlement_id: &str,
    ) -> Result<Vec<Line>, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE balance_transactions SET settlement_id = ?5
                 WHERE settlement_id IS NULL AND type <> 'payout' AND available_on <= ?4
                     AND account_id = ?1 AND mode = ?2 AND currency = ?3
                 RETURNING type, amount, fee, net, created_at",
            )
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![
                        group.scope.account_id,
                        group.scope.mode.as_str(),
                        group.currency.code(),
                        before.0,
                        settlement_id
                    ],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<(String, i64, i64, i64, i64)>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(|(kind, amount, fee, net, at)| settlement_line(&kind, amount, fee, net, at))
            .collect()
    }

    fn insert_settlement(&mut self, s: &Settlement) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO settlements (id, account_id, mode, currency, status, gross, refunds,
                 fees, net, transaction_count, period_start, period_end, created_at, paid_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                s.id,
                s.account_id,
                s.mode.as_str(),
                s.currency.code(),
                s.status.as_str(),
                s.totals.gross,
                s.totals.refunds,
                s.totals.fees,
                s.totals.net,
                s.totals.transaction_count as i64,
                s.period_start.0,
                s.period_end.0,
                s.created_at.0,
                s.paid_at.map(|at| at.0),
            ],
        )?;
        Ok(())
    }

    fn claim_pending_settlements(
        &mut self,
        mode: Mode,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Settlement>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlements
                 WHERE status = 'pending' AND mode = ?1 AND created_at <= ?2
                 ORDER BY created_at LIMIT ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![mode.as_str(), before.0, limit as i64],
                    settlement_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(SettlementRow::into_settlement)
            .collect()
    }

    fn update_settlement(&mut self, s: &Settlement) -> Result<(), StoreError> {
        let changed = self.execute(
            "UPDATE settlements SET status = ?2, paid_at = ?3 WHERE id = ?1",
            params![s.id, s.status.as_str(), s.paid_at.map(|at| at.0)],
        )?;
        if changed != 1 {
            return Err(StoreError::Database(format!(
                "settlement {} vanished",
                s.id
            )));
        }
        Ok(())
    }

    fn insert_event(&mut self, e: &EventRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO events (id, account_id, mode, type, object_id, data, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                e.id,
                e.scope.account_id,
                e.scope.mode.as_str(),
                e.kind,
                e.object_id,
                e.data,
                e.created_at.0
            ],
        )?;
        self.last_event = Some((e.id.clone(), e.data.clone()));
        Ok(())
    }

    fn lock_idempotency_key(&mut self, _key: &IdempotencyScope) -> Result<bool, StoreError> {
        // The single writer runs one flow at a time, and the server's in-memory set already
        // answered `in use` for a key claimed by a running request.
        Ok(true)
    }

    fn find_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
    ) -> Result<Option<StoredResponse>, StoreError> {
        find_idempotent_response(self.conn, key)
    }

    fn save_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
        response: &StoredResponse,
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let (event_id, body) = answer_reference(self.last_event.as_ref(), &response.body);
        self.execute(
            "INSERT INTO idempotency_keys (account_id, mode, method, path, key, request_hash,
                 status_code, response_body, response_event_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                key.account_id,
                key.mode.as_str(),
                key.method,
                key.path,
                key.key,
                &response.request_hash[..],
                response.status_code,
                body,
                event_id,
                now.0,
            ],
        )
        .map(drop)
    }

    fn prune_idempotency_keys(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        self.execute(
            // WITHOUT ROWID: rows are named by their primary key.
            "DELETE FROM idempotency_keys WHERE (account_id, mode, method, path, key) IN (
                 SELECT account_id, mode, method, path, key FROM idempotency_keys
                 WHERE created_at < ?1 LIMIT ?2)",
            params![before.0, limit as i64],
        )
    }

    fn prune_events(&mut self, before: UnixMillis, limit: usize) -> Result<usize, StoreError> {
        self.execute(
            "DELETE FROM events WHERE seq IN (
                 SELECT seq FROM events WHERE created_at < ?1 LIMIT ?2)",
            params![before.0, limit as i64],
        )
    }

    // Webhooks (SPEC §6)
    fn count_webhook_endpoints(&mut self, scope: &Scope) -> Result<u64, StoreError> {
        webhooks::count_endpoints(self.conn, scope)
    }

    fn insert_webhook_endpoint(
        &mut self,
        endpoint: &WebhookEndpointRecord,
    ) -> Result<(), StoreError> {
        webhooks::insert_endpoint(self.conn, endpoint)
    }

    fn update_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
        changes: &WebhookEndpointChanges,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        webhooks::update_endpoint(self.conn, scope, id, changes)
    }

    fn delete_webhook_endpoint(&mut self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        webhooks::delete_endpoint(self.conn, scope, id)
    }

    fn queue_webhook_deliveries(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        if webhooks::queue_deliveries(self.conn, event)? > 0 {
            self.queued_deliveries = true;
        }
        Ok(())
    }

    fn requeue_webhook_event(
        &mut self,
        event: &EventRecord,
        endpoint_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<Vec<String>, StoreError> {
        let queued = webhooks::requeue_event(self.conn, event, endpoint_id, now)?;
        self.queued_deliveries |= !queued.is_empty();
        Ok(queued)
    }

    fn lease_webhook_deliveries(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        webhooks::lease_deliveries(self.conn, now, lease_until, limit)
    }

    fn record_webhook_attempts(&mut self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        // Cached prepared statements on an in-process database: a loop is as cheap as a batch.
        for outcome in outcomes {
            webhooks::record_attempt(self.conn, &outcome.attempt, outcome.next)?;
        }
        Ok(())
    }

    fn prune_webhook_history(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        webhooks::prune_history(self.conn, before, limit)
    }
}

pub struct SqliteReader<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteReader<'c> {
    pub(super) fn new(conn: &'c Connection) -> Self {
        SqliteReader { conn }
    }
}

impl Reader for SqliteReader<'_> {
    fn ping(&mut self) -> Result<(), StoreError> {
        self.conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(drop)
            .map_err(db_error)
    }

    fn api_key_by_hash(&mut self, key_hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![&key_hash[..]], api_key_row)
                    .optional()
            })
            .map_err(db_error)?
            .map(ApiKeyRow::into_record)
            .transpose()
    }

    fn list_api_keys(&mut self, account_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE account_id = ?1 ORDER BY seq"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![account_id], api_key_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(ApiKeyRow::into_record)
            .collect()
    }

    fn get_account(&mut self, account_id: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.conn
            .prepare_cached("SELECT id, name, created_at FROM accounts WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row(params![account_id], |row| {
                    Ok(AccountRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        created_at: UnixMillis(row.get(2)?),
                    })
                })
                .optional()
            })
            .map_err(db_error)
    }

    fn get_payment(&mut self, scope: &Scope, id: &str) -> Result<Option<Payment>, StoreError> {
        get_payment(self.conn, scope, id)
    }

    fn payment_by_checkout_token(&mut self, token: &str) -> Result<Option<Payment>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE checkout_token = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row(params![token], payment_row).optional())
            .map_err(db_error)?
            .map(PaymentRow::into_payment)
            .transpose()
    }

    fn list_payments(
        &mut self,
        scope: &Scope,
        status: Option<PaymentStatus>,
        query: &ListQuery,
    ) -> Result<Page<Payment>, ListError> {
        list(
            self.conn,
            &PAYMENTS,
            scope,
            &status
                .map(|status| ("status", status.as_str()))
                .into_iter()
                .collect::<Vec<_>>(),
            query,
        )
    }

    fn get_refund(&mut self, scope: &Scope, id: &str) -> Result<Option<Refund>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![id, scope.account_id, scope.mode.as_str()],
                    refund_row,
                )
                .optional()
            })
            .map_err(db_error)?
            .map(RefundRow::into_refund)
            .transpose()
    }

    fn list_refunds(
        &mut self,
        scope: &Scope,
        payment_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<Refund>, ListError> {
        list(
            self.conn,
            &REFUNDS,
            scope,
            &payment_id
                .map(|id| ("payment_id", id))
                .into_iter()
                .collect::<Vec<_>>(),
            query,
        )
    }

    fn balance(
        &mut self,
        scope: &Scope,
        now: UnixMillis,
    ) -> Result<Vec<BalanceAmounts>, StoreError> {
        self.conn
            .prepare_cached(&balance_sql('?'))
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![scope.account_id, scope.mode.as_str(), now.0],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )?
                .collect::<rusqlite::Result<Vec<(String, i64, i64)>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(|(currency, available, pending)| balance_amounts(currency, available, pending))
            .collect()
    }

    fn get_balance_transaction(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<BalanceTransactionRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {BALANCE_TRANSACTION_COLUMNS} FROM balance_transactions
                 WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![id, scope.account_id, scope.mode.as_str()],
                    balance_transaction_row,
                )
                .optional()
            })
            .map_err(db_error)?
            .map(BalanceTransactionRow::into_record)
            .transpose()
    }

    fn list_balance_transactions(
        &mut self,
        scope: &Scope,
        filter: &BalanceTransactionFilter,
        query: &ListQuery,
    ) -> Result<Page<BalanceTransactionRecord>, ListError> {
        list(
            self.conn,
            &BALANCE_TRANSACTIONS,
            scope,
            &filter.columns(),
            query,
        )
    }

    fn unsettled_groups(
        &mut self,
        before: UnixMillis,
        account_id: Option<&str>,
    ) -> Result<Vec<(SettlementGroup, UnixMillis)>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT account_id, mode, currency, min(available_on) FROM balance_transactions
                 WHERE settlement_id IS NULL AND type <> 'payout' AND available_on <= ?1
                     AND (?2 IS NULL OR account_id = ?2)
                 GROUP BY account_id, mode, currency",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![before.0, account_id], |row| {
                    Ok((
                        row.get(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<(String, String, String, i64)>>>()
            })
            .map_err(db_error)?
            .into_iter()
            .map(|(account, mode, currency, oldest)| {
                Ok((
                    settlement_group(account, &mode, &currency)?,
                    UnixMillis(oldest),
                ))
            })
            .collect()
    }

    fn get_settlement(&mut self, id: &str) -> Result<Option<Settlement>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE id = ?1"
            ))
            .and_then(|mut stmt| stmt.query_row(params![id], settlement_row).optional())
            .map_err(db_error)?
            .map(SettlementRow::into_settlement)
            .transpose()
    }

    fn list_settlements(
        &mut self,
        scope: &Scope,
        status: Option<SettlementStatus>,
        currency: Option<Currency>,
        query: &ListQuery,
    ) -> Result<Page<Settlement>, ListError> {
        let filters = settlement_filters(status, currency);
        list(self.conn, &SETTLEMENTS, scope, &filters, query)
    }

    fn get_event(&mut self, scope: &Scope, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![id, scope.account_id, scope.mode.as_str()],
                    event_row,
                )
                .optional()
            })
            .map_err(db_error)?
            .map(EventRow::into_record)
            .transpose()
    }

    fn list_events(
        &mut self,
        scope: &Scope,
        kind: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<EventRecord>, ListError> {
        list(
            self.conn,
            &EVENTS,
            scope,
            &kind
                .map(|kind| ("type", kind))
                .into_iter()
                .collect::<Vec<_>>(),
            query,
        )
    }

    // Webhooks (SPEC §6)
    fn get_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        webhooks::get_endpoint(self.conn, scope, id)
    }

    fn list_webhook_endpoints(
        &mut self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<WebhookEndpointRecord>, ListError> {
        webhooks::list_endpoints(self.conn, scope, query)
    }

    fn list_webhook_attempts(
        &mut self,
        scope: &Scope,
        endpoint_id: &str,
        query: &ListQuery,
    ) -> Result<Page<WebhookAttemptRecord>, ListError> {
        webhooks::list_attempts(self.conn, scope, endpoint_id, query)
    }

    fn webhook_queue_depth(&mut self) -> Result<u64, StoreError> {
        webhooks::queue_depth(self.conn)
    }

    fn webhook_endpoints_exist(&mut self) -> Result<bool, StoreError> {
        webhooks::endpoints_exist(self.conn)
    }
}
