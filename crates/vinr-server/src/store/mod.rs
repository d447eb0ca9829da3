//! (5) Storage. Flows are written once against [`Tx`] (the write side, one transaction) and
//! reads against [`Reader`]; every statement lives once in `sql/`, grouped by table, over a
//! small connection trait ([`sql::Conn`]) that each backend implements. The backends decide
//! only how transactions run:
//!
//! SQLite (`sqlite/`): one writer thread takes a batch of waiting flows, runs each in its own
//! savepoint inside one transaction and commits once (group commit: one fsync per batch), then
//! answers every flow in the batch. Reads run on a few reader threads, each with its own
//! read-only WAL connection, never on the async workers.
//!
//! PostgreSQL (`postgres/`): each flow is its own transaction, so several server nodes can
//! share one database; statements that answer nothing are deferred and pipelined (three round
//! trips per created payment). [`Store`] is the enum the rest of the server holds; flows never
//! name a backend. Migrations (`migrations.rs`) are one list of versions, with a file per
//! dialect only where the DDL differs.

mod key_cache;
mod migrations;
pub mod outage;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use sql::{AttemptRecord, OneRead, Reader, Tx};

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use vinr_domain::ledger::BalanceType;
use vinr_domain::limits::BALANCE_EXPORT_PAGE_ROWS;
use vinr_domain::webhook::{WebhookFault, WebhookFaults};
use vinr_domain::{Currency, Mode, UnixMillis};

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

/// Why a transaction is [`StoreError::Unavailable`] when a concurrent one on the same rows won
/// (PostgreSQL's deadlock detection or a serialization failure picked it): it was rolled back,
/// nothing of it stays, and a retry may succeed.
pub const LOST_TO_A_CONCURRENT_TRANSACTION: &str =
    "rolled back: a concurrent transaction on the same rows won";

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

/// A platform key (`plk_…`, SPEC §10): manages accounts; only its hash is stored.
#[derive(Debug, Clone)]
pub struct PlatformKeyRecord {
    pub id: String,
    pub key_hash: [u8; 32],
    pub display: String,
    /// `cli` (`vinr platform-keys create`) or `env` (`VINR_PLATFORM_KEY`).
    pub source: String,
    pub created_at: UnixMillis,
    pub revoked_at: Option<UnixMillis>,
}

/// What an account holds in one mode, as deleting it counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountObjects {
    pub payments: u64,
    pub refunds: u64,
    pub disputes: u64,
    pub events: u64,
    pub balance_transactions: u64,
    pub settlements: u64,
    pub webhook_endpoints: u64,
}

impl AccountObjects {
    pub fn total(&self) -> u64 {
        self.payments
            + self.refunds
            + self.disputes
            + self.events
            + self.balance_transactions
            + self.settlements
            + self.webhook_endpoints
    }
}

/// Whether deleting an account's data of one mode takes its webhook endpoints too (with their
/// deliveries and attempts), or leaves them subscribed (a reset that keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEndpoints {
    Keep,
    Delete,
}

/// What authentication reads for a presented key, in one statement.
#[derive(Debug, Clone)]
pub struct KeyLookup {
    pub key: ApiKeyRecord,
    /// How far the account's test clock runs ahead of real time.
    pub clock_offset_ms: i64,
    /// The account has fault rules (SPEC §12) that its test-mode requests must be matched to.
    pub fault_rules: bool,
}

/// The rows [`Tx::delete_account_data`] deleted, per table that a merchant sees (ledger entries
/// and balance totals go with the balance transactions and are not counted apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeletedData {
    pub payments: u64,
    pub refunds: u64,
    pub disputes: u64,
    pub events: u64,
    pub balance_transactions: u64,
    pub settlements: u64,
    pub webhook_deliveries: u64,
    pub webhook_attempts: u64,
    pub idempotency_keys: u64,
    pub webhook_endpoints: u64,
    pub fault_rules: u64,
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

/// A dashboard session (SPEC §13): hashes only, never the session id or the key.
#[derive(Debug, Clone)]
pub struct DashboardSession {
    /// Hex SHA-256 of the session id the browser holds.
    pub id_hash: String,
    /// Hex SHA-256 of the key it was opened with (`api_keys.key_hash`).
    pub key_hash: String,
    pub scope: Scope,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
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
    /// The `pay_`/`re_`/`dp_` id the money moved for (a payout's: its `setl_` id).
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
    /// Faults on purpose (SPEC §12); always `None` in live mode.
    pub faults: Option<WebhookFaults>,
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
    /// `Some(None)` clears the faults.
    pub faults: Option<Option<WebhookFaults>>,
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
    /// When the delivery was queued (its event's commit), in real time.
    pub queued_at: UnixMillis,
    /// How far the account's test clock runs ahead (0 in live mode): the attempt's times are
    /// shown on that clock, while deliveries are scheduled on real time.
    pub clock_offset_ms: i64,
    /// The endpoint's faults on purpose (test mode only).
    pub faults: Option<WebhookFaults>,
    /// Whether this delivery was held back for a later one (`outOfOrder`).
    pub held: bool,
    /// A held delivery of the same endpoint to make due once this attempt is recorded
    /// (`outOfOrder`: the later event goes first).
    pub releases: Option<i64>,
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
    /// The fault it carried on purpose, if any (SPEC §12).
    pub fault: Option<WebhookFault>,
    /// The headers sent, name to value (empty when nothing was sent); never the secret.
    pub request_headers: BTreeMap<String, String>,
    pub created_at: UnixMillis,
}

/// An attempt together with what it means for its delivery: what the worker records.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub attempt: WebhookAttemptRecord,
    pub next: DeliveryNext,
    /// A held delivery (its seq) made due at the given real time with this record.
    pub release: Option<(i64, UnixMillis)>,
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

/// The earliest instants of what is still to do on one account's test clock (SPEC §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClockDue {
    /// The first `expiresAt` of an unfinished checkout.
    pub expiry: Option<UnixMillis>,
    /// The first `authorized_at` of an authorization not yet captured or cancelled.
    pub authorized: Option<UnixMillis>,
    /// The first `availableOn` of a balance transaction not yet settled.
    pub unsettled: Option<UnixMillis>,
    /// The first `created_at` of a settlement not yet paid out.
    pub payout: Option<UnixMillis>,
    /// The first `evidenceDueBy` of a dispute still waiting for a response.
    pub dispute_deadline: Option<UnixMillis>,
}

/// Work the clock makes due on a payment (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// `pending` or `requires_authentication` past `expiresAt`.
    Expiry,
    /// `authorized` since before the capture window closed.
    AutoCancel,
}

/// Whose due work a claim takes. Each account's test mode runs on its own clock (SPEC §10),
/// so the workers' passes on real time leave out the test data of every account whose clock
/// was advanced, and the clock's own pass ([`crate::workers::clock`]) takes one such account
/// at a time, on its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueOn {
    /// Live mode, and test mode of the accounts whose clock is real time.
    RealTime,
    /// The test mode of this account.
    AccountClock(String),
}

impl DueOn {
    /// The `WHERE` condition picking the rows of this clock from a table with `account_id` and
    /// `mode`; `$param` is the account id (bound only for [`DueOn::AccountClock`]).
    pub(crate) fn condition(&self, param: usize) -> String {
        match self {
            DueOn::RealTime => "NOT (mode = 'test' AND account_id IN \
                 (SELECT id FROM accounts WHERE test_clock_ms > 0))"
                .to_owned(),
            DueOn::AccountClock(_) => format!("account_id = ${param} AND mode = 'test'"),
        }
    }

    /// How a claim on this clock locks its rows on PostgreSQL: the real-time passes skip rows
    /// another node holds (`{skip_locked}`); one account's clock waits for them
    /// (`{for_update}`), since a move of that clock must do everything due before it answers
    /// (its passes are one at a time already: each locks the account's row first).
    pub(crate) fn row_lock(&self) -> &'static str {
        match self {
            DueOn::RealTime => "{skip_locked}",
            DueOn::AccountClock(_) => "{for_update}",
        }
    }

    /// The account id the condition binds, if any.
    pub(crate) fn account(&self) -> Option<&str> {
        match self {
            DueOn::RealTime => None,
            DueOn::AccountClock(account_id) => Some(account_id),
        }
    }
}

impl Due {
    /// The `WHERE` clause for this work; `before` is the first parameter.
    pub(crate) fn condition(self) -> &'static str {
        match self {
            // A payment held for a call to its acquirer expires only once its answer is in;
            // one handed to the connectors worker (its acquirer cancel due) is the worker's.
            Due::Expiry => {
                "status IN ('pending', 'requires_authentication') \
                 AND processor_claimed_until IS NULL AND processor_cancel_due IS NULL \
                 AND expires_at <= "
            }
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

    /// The object id the cursor names, if any.
    pub fn id(&self) -> Option<&str> {
        match self {
            Cursor::None => None,
            Cursor::StartingAfter(id) | Cursor::EndingBefore(id) => Some(id),
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

/// The store the server holds. One variant per backend (how transactions run); flows only
/// see [`Tx`] and [`Reader`], which are the same code on both.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens the database named by `url` (`sqlite://path`; an in-memory SQLite database is
    /// refused because the writer and readers need one shared file), applying pending
    /// migrations.
    /// Whether the database `url` names exists (SQLite: the file; PostgreSQL: the database on
    /// its server), creating nothing: commands other than `serve` and `migrate` refuse to
    /// work on a database that is not there (SPEC §10).
    pub async fn exists(url: &str) -> Result<bool, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(std::path::Path::new(path).exists());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return postgres::database_exists(url).await;
        }
        Err(StoreError::Unavailable(
            "unsupported database URL; expected sqlite://PATH or postgres://…",
        ))
    }

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
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.write(flow).await,
            Store::Postgres(store) => store.write(flow).await,
        }
    }

    /// Runs `read` against committed data, on a blocking thread (never on an async worker:
    /// a read may wait for the disk or the network).
    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        F: FnOnce(&mut Reader<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self {
            Store::Sqlite(store) => store.read(read).await,
            Store::Postgres(store) => store.read(read).await,
        }
    }

    /// What authentication needs of the key whose hash is `key_hash` ([`KeyLookup`]): from
    /// this process's key cache while the database's auth version says nothing it answers has
    /// changed (see `key_cache.rs`), else read.
    pub async fn api_key_for_auth(
        &self,
        key_hash: [u8; 32],
    ) -> Result<Option<KeyLookup>, StoreError> {
        let (cache, version) = match self {
            Store::Sqlite(store) => (store.key_cache(), store.auth_version()),
            Store::Postgres(store) => (store.key_cache(), store.auth_version().await),
        };
        if let Some(version) = version {
            if let Some(found) = cache.get(version, &key_hash) {
                return Ok(Some(found));
            }
        }
        let found = self
            .read(move |reader| reader.api_key_for_auth(&key_hash))
            .await?;
        if let (Some(version), Some(found)) = (version, &found) {
            cache.put(version, key_hash, found.clone());
        }
        Ok(found)
    }

    /// Runs a one-statement read against committed data on the async runtime: on PostgreSQL
    /// the statement is a network round trip and nothing blocks; on SQLite it runs on the
    /// caller's thread (a primary-key read, cheaper than the hand-off to a reader thread).
    pub async fn read_one<T: Send + 'static>(&self, read: OneRead<T>) -> Result<T, StoreError> {
        match self {
            Store::Sqlite(store) => store.read_one(read),
            Store::Postgres(store) => store.read_one(read).await,
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

/// Metadata as stored; a value no version of the server writes is refused.
pub(crate) fn metadata_from_json(text: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(text).map_err(|_| sql::corrupt("metadata", text))
}
