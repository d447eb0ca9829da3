//! (5) Storage. Flows are written once against the [`Tx`] trait (the write side, one
//! transaction) and reads against [`Reader`]; the backend decides how transactions run.
//!
//! SQLite (`sqlite/`): one writer thread takes a batch of waiting flows, runs each in its own
//! savepoint inside one transaction and commits once (group commit: one fsync per batch), then
//! answers every flow in the batch. Reads use a small pool of read-only WAL connections.
//!
//! PostgreSQL (`postgres/`) implements the same two traits, each flow being its own
//! transaction, so several server nodes can share one database. [`Store`] is the enum the
//! rest of the server holds; flows never name a backend.

mod columns;
pub mod outage;
pub mod postgres;
pub mod sqlite;
mod webhook_rows;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use vinr_domain::ledger::{BalanceType, Entry};
use vinr_domain::limits::BALANCE_EXPORT_PAGE_ROWS;
use vinr_domain::settlement::{Line, Settlement, SettlementStatus};
use vinr_domain::{Currency, Mode, Payment, PaymentStatus, Refund, UnixMillis};

use crate::redacted::Redacted;

/// One merchant account's view in one mode: every query is confined to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub account_id: String,
    pub mode: Mode,
}

#[derive(Debug, Clone)]
pub enum StoreError {
    /// The database could not do what was asked (corruption, a broken invariant, a bug): a
    /// retry would fail the same way.
    Database(String),
    /// The writer is gone or its queue is full; the request was not run.
    Unavailable(&'static str),
    /// The database is unreachable or refuses for now (restart, failover, too many
    /// connections, a full disk, a lost connection): a retry may succeed. A write that fails
    /// so may have been committed (the connection was lost during its `COMMIT`), so it is
    /// never answered as a success; its idempotency key makes the retry safe. Made by
    /// [`StoreError::outage`] from each backend's error classification, and directly (without
    /// telling readiness) for a pool whose connections were all busy for the whole wait.
    Outage(String),
}

impl StoreError {
    /// An [`StoreError::Outage`]; also tells [`outage`] that the database is unavailable now.
    pub(crate) fn outage(detail: String) -> StoreError {
        outage::seen();
        StoreError::Outage(detail)
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Database(message) => write!(f, "database error: {message}"),
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::Outage(detail) => write!(f, "database unavailable: {detail}"),
        }
    }
}

impl std::error::Error for StoreError {}

#[derive(Debug, Clone)]
pub struct AccountRecord {
    pub id: String,
    pub name: String,
    pub created_at: UnixMillis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Secret,
    Restricted,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Secret => "secret",
            KeyKind::Restricted => "restricted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub id: String,
    pub account_id: String,
    pub mode: Mode,
    pub kind: KeyKind,
    pub scopes: Vec<String>,
    pub key_hash: [u8; 32],
    pub display: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: String,
    pub scope: Scope,
    pub kind: String,
    pub object_id: String,
    /// JSON snapshot of the object after the change.
    pub data: String,
    pub created_at: UnixMillis,
}

/// A balance transaction (SPEC §7): one movement of a merchant's money as they see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceTransactionRecord {
    pub id: String,
    pub scope: Scope,
    pub kind: BalanceType,
    /// The `pay_`/`re_` id the money moved for (a payout's: its `setl_` id).
    pub source: String,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub currency: Currency,
    pub created_at: UnixMillis,
    pub available_on: UnixMillis,
    pub settlement_id: Option<String>,
}

/// Which balance transactions a list shows; every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct BalanceTransactionFilter {
    pub source: Option<String>,
    pub kind: Option<BalanceType>,
    pub settlement: Option<String>,
}

impl BalanceTransactionFilter {
    /// The filters as (column, value) pairs for a list query.
    pub(crate) fn columns(&self) -> Vec<(&'static str, &str)> {
        [
            ("source", self.source.as_deref()),
            ("type", self.kind.map(BalanceType::as_str)),
            ("settlement_id", self.settlement.as_deref()),
        ]
        .into_iter()
        .filter_map(|(column, value)| value.map(|value| (column, value)))
        .collect()
    }
}

/// Balance transactions that one settlement may gather: one account, mode and currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SettlementGroup {
    pub scope: Scope,
    pub currency: Currency,
}

/// The settlement list's filters as (column, value) pairs.
pub(crate) fn settlement_filters(
    status: Option<SettlementStatus>,
    currency: Option<Currency>,
) -> Vec<(&'static str, &'static str)> {
    [
        ("status", status.map(SettlementStatus::as_str)),
        ("currency", currency.map(Currency::code)),
    ]
    .into_iter()
    .filter_map(|(column, value)| value.map(|value| (column, value)))
    .collect()
}

/// One currency of a merchant's balance, from the ledger: what may be settled now and what
/// waits for its `availableOn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceAmounts {
    pub currency: Currency,
    pub available: i64,
    pub pending: i64,
}

/// A webhook endpoint (SPEC §6). `events` is empty for "every type" (`["*"]`).
#[derive(Debug, Clone)]
pub struct WebhookEndpointRecord {
    pub id: String,
    pub scope: Scope,
    pub url: String,
    pub description: Option<String>,
    pub events: Vec<String>,
    /// `whsec_…`: needed to sign, so stored; never printed.
    pub secret: Redacted<String>,
    pub enabled: bool,
    pub created_at: UnixMillis,
}

/// What `POST /v1/webhooks/:id` changes; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpointChanges {
    pub url: Option<String>,
    /// Empty for every type, as stored.
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A delivery leased for one attempt: where to, with what key, of which event.
#[derive(Debug, Clone)]
pub struct DeliveryJob {
    pub delivery_seq: i64,
    pub endpoint_id: String,
    pub url: String,
    pub secret: Redacted<String>,
    /// `None` when the event is gone (pruned after 30 days): the delivery fails unsent.
    pub event: Option<EventRecord>,
    pub scope: Scope,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When the delivery was queued (its event's commit).
    pub queued_at: UnixMillis,
}

/// One attempt to POST an event to an endpoint.
#[derive(Debug, Clone)]
pub struct WebhookAttemptRecord {
    pub id: String,
    pub scope: Scope,
    pub endpoint_id: String,
    pub delivery_seq: Option<i64>,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    pub succeeded: bool,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// When the next attempt is due, if the delivery is retried.
    pub next_attempt_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
}

/// An attempt together with what it means for its delivery: what the worker records.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: WebhookAttemptRecord,
    pub next: DeliveryNext,
}

/// What an attempt means for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    /// A `webhook.test` send: there is no delivery row.
    None,
    Succeeded,
    RetryAt(UnixMillis),
    Failed,
}

/// Where idempotency keys live: account + mode + method + path + key (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyScope {
    pub account_id: String,
    pub mode: Mode,
    pub method: &'static str,
    pub path: String,
    pub key: String,
}

#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_hash: [u8; 32],
    pub status_code: u16,
    pub body: Vec<u8>,
}

/// Work the clock makes due on a payment (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// `pending` or `requires_authentication` past `expiresAt`.
    Expiry,
    /// `authorized` since before the capture window closed.
    AutoCancel,
}

impl Due {
    /// The `WHERE` clause for this work; `before` is the first parameter.
    pub(crate) fn condition(self) -> &'static str {
        match self {
            Due::Expiry => "status IN ('pending', 'requires_authentication') AND expires_at <= ",
            Due::AutoCancel => "status = 'authorized' AND authorized_at <= ",
        }
    }
}

/// Which way a list page goes from its cursor.
#[derive(Debug, Clone)]
pub enum Cursor {
    None,
    /// Older than this object (the next page).
    StartingAfter(String),
    /// Newer than this object (the previous page).
    EndingBefore(String),
}

impl Cursor {
    /// The query parameter that named this cursor.
    pub fn param(&self) -> &'static str {
        match self {
            Cursor::EndingBefore(_) => "ending_before",
            Cursor::None | Cursor::StartingAfter(_) => "starting_after",
        }
    }

    /// The error for a cursor that names no object of the list.
    pub fn unknown(&self, id: &str) -> ListError {
        ListError::UnknownCursor {
            param: self.param(),
            id: id.to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: u32,
    pub cursor: Cursor,
    pub created_gte: Option<UnixMillis>,
    pub created_lt: Option<UnixMillis>,
}

#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Newest first.
    pub items: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug)]
pub enum ListError {
    /// The cursor names no object of this scope.
    UnknownCursor {
        /// `starting_after` or `ending_before`.
        param: &'static str,
        id: String,
    },
    Store(StoreError),
}

impl From<StoreError> for ListError {
    fn from(error: StoreError) -> Self {
        ListError::Store(error)
    }
}

/// The write side: everything a flow may do inside its transaction.
pub trait Tx {
    fn insert_account(&mut self, account: &AccountRecord) -> Result<(), StoreError>;
    fn account_exists(&mut self, account_id: &str) -> Result<bool, StoreError>;
    fn count_accounts(&mut self) -> Result<u64, StoreError>;
    fn insert_api_key(&mut self, key: &ApiKeyRecord) -> Result<(), StoreError>;
    /// Marks a key revoked; answers whether a live (unrevoked) key was found.
    fn revoke_api_key(&mut self, key_id: &str, now: UnixMillis) -> Result<bool, StoreError>;
    /// Waits for, then holds until this transaction ends, the lock called `name`: the way to
    /// make a check-then-insert (first-start bootstrap, singleton runs) safe across nodes.
    fn lock_exclusive(&mut self, name: &str) -> Result<(), StoreError>;
    fn get_setting(&mut self, name: &str) -> Result<Option<String>, StoreError>;
    fn put_setting(&mut self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Reads a payment to change it. On SQLite the single writer already excludes every other
    /// writer; on PostgreSQL this is `SELECT … FOR UPDATE`.
    fn get_payment_for_update(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<Payment>, StoreError>;
    fn insert_payment(&mut self, payment: &Payment) -> Result<(), StoreError>;
    /// Writes every mutable column of `payment` back, together with its processor reference.
    fn update_payment(
        &mut self,
        payment: &Payment,
        processor_reference: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Up to `limit` payments that `due` has made due by `before`, locked for this
    /// transaction; on PostgreSQL rows another node holds are skipped, not waited for.
    fn claim_due_payments(
        &mut self,
        due: Due,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError>;

    /// The reference the processor gave a payment (what its refunds are made against).
    fn payment_processor_reference(
        &mut self,
        payment_id: &str,
    ) -> Result<Option<String>, StoreError>;

    fn insert_refund(&mut self, refund: &Refund) -> Result<(), StoreError>;
    /// Reads a refund to change it (its status), by id alone: workers have no caller's scope.
    fn get_refund_for_update(&mut self, id: &str) -> Result<Option<Refund>, StoreError>;
    /// Writes a refund's status and failure reason back.
    fn update_refund(&mut self, refund: &Refund) -> Result<(), StoreError>;
    /// Leases up to `limit` pending refunds whose lease has run out until `lease_until`, so one
    /// worker at a time asks the processor about each.
    fn lease_pending_refunds(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Refund>, StoreError>;

    /// Books a movement: the balance transaction and its ledger entries (which sum to zero).
    fn insert_balance_transaction(
        &mut self,
        btx: &BalanceTransactionRecord,
        entries: &[Entry],
    ) -> Result<(), StoreError>;

    /// Marks the group's unsettled balance transactions available by `before` (never a
    /// `payout`) as gathered by `settlement_id`, answering exactly the rows it marked.
    fn gather_balance_transactions(
        &mut self,
        group: &SettlementGroup,
        before: UnixMillis,
        settlement_id: &str,
    ) -> Result<Vec<Line>, StoreError>;
    fn insert_settlement(&mut self, settlement: &Settlement) -> Result<(), StoreError>;
    /// Up to `limit` `pending` settlements of `mode` created by `before`, locked for this
    /// transaction (rows another node holds are skipped).
    fn claim_pending_settlements(
        &mut self,
        mode: Mode,
        before: UnixMillis,
        limit: usize,
    ) -> Result<Vec<Settlement>, StoreError>;
    /// Writes a settlement's status and payout time back.
    fn update_settlement(&mut self, settlement: &Settlement) -> Result<(), StoreError>;

    fn insert_event(&mut self, event: &EventRecord) -> Result<(), StoreError>;

    /// Claims `key` for the rest of this transaction; `false` when another transaction (on any
    /// node) holds it, i.e. the first request with this key is still running.
    fn lock_idempotency_key(&mut self, key: &IdempotencyScope) -> Result<bool, StoreError>;
    fn find_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
    ) -> Result<Option<StoredResponse>, StoreError>;
    fn save_idempotent_response(
        &mut self,
        key: &IdempotencyScope,
        response: &StoredResponse,
        now: UnixMillis,
    ) -> Result<(), StoreError>;

    /// Deletes at most `limit` idempotency keys created before `before`; answers how many.
    fn prune_idempotency_keys(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError>;
    /// Deletes at most `limit` events created before `before`; answers how many.
    fn prune_events(&mut self, before: UnixMillis, limit: usize) -> Result<usize, StoreError>;

    // Webhooks (SPEC §6)
    fn count_webhook_endpoints(&mut self, scope: &Scope) -> Result<u64, StoreError>;
    fn insert_webhook_endpoint(
        &mut self,
        endpoint: &WebhookEndpointRecord,
    ) -> Result<(), StoreError>;
    /// Applies `changes` to an endpoint of `scope`; disabling it also drops its queued
    /// deliveries. Answers the endpoint after the change, `None` when there is no such one.
    fn update_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
        changes: &WebhookEndpointChanges,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError>;
    /// Deletes an endpoint with its queued deliveries and attempts; answers whether it existed.
    fn delete_webhook_endpoint(&mut self, scope: &Scope, id: &str) -> Result<bool, StoreError>;
    /// The outbox: queues `event` for every enabled endpoint of its scope subscribed to its
    /// type, due at once, in one `INSERT … SELECT` (deferred on PostgreSQL: no round trip).
    fn queue_webhook_deliveries(&mut self, event: &EventRecord) -> Result<(), StoreError>;
    /// Queues `event` again for its matching endpoints (only `endpoint_id` when given, which
    /// must then exist and be enabled); answers the endpoint ids queued.
    fn requeue_webhook_event(
        &mut self,
        event: &EventRecord,
        endpoint_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<Vec<String>, StoreError>;
    /// Leases up to `limit` due deliveries of existing endpoints until `lease_until`: one
    /// attempt at a time for each, on any number of nodes (`SKIP LOCKED` on PostgreSQL).
    fn lease_webhook_deliveries(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError>;
    /// Records attempts and what each means for its delivery (none for `webhook.test`). An
    /// attempt for an endpoint deleted meanwhile is dropped.
    fn record_webhook_attempts(&mut self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError>;
    /// Deletes at most `limit` finished deliveries and `limit` attempts made before `before`
    /// (kept as long as events); answers how many rows.
    fn prune_webhook_history(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError>;
}

/// The read side: committed data only.
pub trait Reader {
    fn ping(&mut self) -> Result<(), StoreError>;
    fn api_key_by_hash(&mut self, key_hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, StoreError>;
    fn list_api_keys(&mut self, account_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError>;
    fn get_account(&mut self, account_id: &str) -> Result<Option<AccountRecord>, StoreError>;
    fn get_payment(&mut self, scope: &Scope, id: &str) -> Result<Option<Payment>, StoreError>;
    /// The payment behind a checkout link, in whichever account and mode it lives.
    fn payment_by_checkout_token(&mut self, token: &str) -> Result<Option<Payment>, StoreError>;
    fn list_payments(
        &mut self,
        scope: &Scope,
        status: Option<PaymentStatus>,
        query: &ListQuery,
    ) -> Result<Page<Payment>, ListError>;
    fn get_refund(&mut self, scope: &Scope, id: &str) -> Result<Option<Refund>, StoreError>;
    fn list_refunds(
        &mut self,
        scope: &Scope,
        payment_id: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<Refund>, ListError>;
    /// The merchant's balance per currency at `now`, summed from the ledger's entries.
    fn balance(
        &mut self,
        scope: &Scope,
        now: UnixMillis,
    ) -> Result<Vec<BalanceAmounts>, StoreError>;
    fn get_balance_transaction(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<BalanceTransactionRecord>, StoreError>;
    fn list_balance_transactions(
        &mut self,
        scope: &Scope,
        filter: &BalanceTransactionFilter,
        query: &ListQuery,
    ) -> Result<Page<BalanceTransactionRecord>, ListError>;
    /// Every group with unsettled balance transactions (payouts are never settled) available
    /// by `before`, optionally of one account, with the earliest `available_on` among them.
    fn unsettled_groups(
        &mut self,
        before: UnixMillis,
        account_id: Option<&str>,
    ) -> Result<Vec<(SettlementGroup, UnixMillis)>, StoreError>;
    /// A settlement by id alone (the command line's report has no caller's scope).
    fn get_settlement(&mut self, id: &str) -> Result<Option<Settlement>, StoreError>;
    fn list_settlements(
        &mut self,
        scope: &Scope,
        status: Option<SettlementStatus>,
        currency: Option<Currency>,
        query: &ListQuery,
    ) -> Result<Page<Settlement>, ListError>;
    fn get_event(&mut self, scope: &Scope, id: &str) -> Result<Option<EventRecord>, StoreError>;
    fn list_events(
        &mut self,
        scope: &Scope,
        kind: Option<&str>,
        query: &ListQuery,
    ) -> Result<Page<EventRecord>, ListError>;

    // Webhooks (SPEC §6)
    fn get_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError>;
    fn list_webhook_endpoints(
        &mut self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<WebhookEndpointRecord>, ListError>;
    fn list_webhook_attempts(
        &mut self,
        scope: &Scope,
        endpoint_id: &str,
        query: &ListQuery,
    ) -> Result<Page<WebhookAttemptRecord>, ListError>;
    /// Deliveries waiting for an attempt (due or not), for the queue-depth gauge.
    fn webhook_queue_depth(&mut self) -> Result<u64, StoreError>;
    /// Whether any endpoint exists: without one there is nothing to deliver, and the worker
    /// need not lease at every commit.
    fn webhook_endpoints_exist(&mut self) -> Result<bool, StoreError>;
}

/// The store the server holds. One variant per backend; flows only see `Tx` and `Reader`.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens the database named by `url` (`sqlite://path`; an in-memory SQLite database is
    /// refused because the writer and readers need one shared file), applying pending
    /// migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = path.to_owned();
            return tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
                .await
                .map_err(|error| StoreError::Database(error.to_string()))?
                .map(Store::Sqlite);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return postgres::PgStore::open(url).await.map(Store::Postgres);
        }
        Err(StoreError::Unavailable(
            "unsupported database URL; expected sqlite://PATH or postgres://…",
        ))
    }

    /// Runs `flow` in a write transaction and answers once its effects are durable. A flow that
    /// returns `Err` leaves no trace.
    pub async fn write<T, E, F>(&self, flow: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.write(flow).await,
            Store::Postgres(store) => store.write(flow).await,
        }
    }

    /// Runs `read` against committed data. On SQLite the read runs right here (a point read
    /// takes microseconds); a network database runs it on a blocking thread.
    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Reader) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.read(read),
            Store::Postgres(store) => store.read(read).await,
        }
    }

    /// Signalled after each commit that may have queued webhook deliveries, so the delivery
    /// worker of this node starts at once instead of at its next poll.
    pub fn outbox_wake(&self) -> Arc<Notify> {
        match self {
            Store::Sqlite(store) => store.outbox_wake(),
            Store::Postgres(store) => store.outbox_wake(),
        }
    }

    /// Every balance transaction of `scope` that `filter` selects, oldest first, read in pages
    /// (for exports and reports, which need all of them).
    pub async fn all_balance_transactions(
        &self,
        scope: &Scope,
        filter: &BalanceTransactionFilter,
    ) -> Result<Vec<BalanceTransactionRecord>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = Cursor::None;
        loop {
            let query = ListQuery {
                limit: BALANCE_EXPORT_PAGE_ROWS,
                cursor,
                created_gte: None,
                created_lt: None,
            };
            let (scope, filter) = (scope.clone(), filter.clone());
            let page = self
                .read(move |reader| {
                    reader
                        .list_balance_transactions(&scope, &filter, &query)
                        .map_err(|error| match error {
                            ListError::Store(error) => error,
                            // The cursor is the last row of the page before: it cannot vanish.
                            ListError::UnknownCursor { id, .. } => {
                                StoreError::Database(format!("balance transaction {id} vanished"))
                            }
                        })
                })
                .await?;
            let last = page.items.last().map(|b| b.id.clone());
            all.extend(page.items);
            match (page.has_more, last) {
                (true, Some(id)) => cursor = Cursor::StartingAfter(id),
                _ => break,
            }
        }
        all.reverse();
        Ok(all)
    }

    /// Waits for queued writes to finish and stops the writer.
    pub fn shutdown(&self) {
        match self {
            Store::Sqlite(store) => store.shutdown(),
            Store::Postgres(store) => store.shutdown(),
        }
    }
}

/// Metadata travels as a JSON object in one column.
pub(crate) fn metadata_to_json(metadata: &BTreeMap<String, String>) -> String {
    serde_json::to_string(metadata).unwrap_or_else(|_| "{}".to_owned())
}
