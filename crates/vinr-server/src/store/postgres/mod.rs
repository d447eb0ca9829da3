//! PostgreSQL backend: any number of `vinr serve` nodes share one database. Each flow is its
//! own transaction (READ COMMITTED): payments are locked with `SELECT … FOR UPDATE`,
//! idempotency keys with a transaction-scoped advisory lock, money invariants are `CHECK`
//! constraints, and background work claims rows with `FOR UPDATE SKIP LOCKED`.
//!
//! Flows are synchronous code against [`Tx`]; here they run on a blocking thread and each
//! statement is driven to completion on the runtime with `Handle::block_on`, so the same flow
//! code runs unchanged on SQLite and PostgreSQL. The driver is tokio-postgres with a
//! deadpool pool; statements are prepared once per connection (`prepare_cached`).

mod migrations;
mod rows;
mod webhooks;

use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{Reader, StoreError, Tx};

pub use rows::{PgReader, PgTx};

/// Connections per node: enough concurrent transactions for PostgreSQL to batch their WAL
/// flushes. PostgreSQL's default `max_connections` is 100: six nodes fit.
const POOL_CONNECTIONS_MAX: usize = 16;

fn db_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Signalled after a commit that may have queued webhook deliveries.
    outbox_wake: Arc<Notify>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and applies pending
    /// migrations (under an advisory lock, so nodes starting together do not race).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|error| StoreError::Database(format!("invalid PostgreSQL URL: {error}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_CONNECTIONS_MAX)
            .build()
            .map_err(db_error)?;
        let mut client = pool.get().await.map_err(db_error)?;
        migrations::apply(&mut client).await?;
        Ok(PgStore {
            pool,
            outbox_wake: Arc::new(Notify::new()),
        })
    }

    pub async fn write<T, E, F>(&self, flow: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(|e| E::from(db_error(e)))?;
        let runtime = Handle::current();
        let outbox_wake = Arc::clone(&self.outbox_wake);
        let answer = tokio::task::spawn_blocking(move || {
            let mut tx = PgTx::new(&client, &runtime);
            // BEGIN goes out with the flow's first statement, COMMIT with its last writes.
            tx.defer("BEGIN", Vec::new(), 0);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| flow(&mut tx)))
                .unwrap_or_else(|_| {
                    tracing::error!("a write flow panicked; its transaction is rolled back");
                    Err(E::from(StoreError::Database("write flow panicked".into())))
                })
                .and_then(|value| {
                    tx.defer("COMMIT", Vec::new(), 0);
                    tx.flush().map(|()| value).map_err(E::from)
                });
            if result.is_ok() && tx.queued_deliveries {
                outbox_wake.notify_one();
            }
            if result.is_err() {
                // Whatever failed, the connection goes back to the pool outside a
                // transaction (PostgreSQL only warns when none is open).
                tx.discard_deferred();
                if tx.execute("ROLLBACK", &[]).is_err() {
                    // A connection that cannot even roll back is not given to anyone else.
                    let _ = deadpool_postgres::Object::take(client);
                }
            }
            result
        })
        .await;
        answer.unwrap_or_else(|_| Err(E::from(StoreError::Database("write flow panicked".into()))))
    }

    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Reader) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(|e| E::from(db_error(e)))?;
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || read(&mut PgReader::new(&client, &runtime)))
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Database("read panicked".into()))))
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox_wake)
    }

    pub fn shutdown(&self) {
        self.pool.close();
    }
}

/// Runs statements of one connection to completion from blocking code, each statement
/// prepared once per connection. Statements whose only answer is success (BEGIN, inserts, the
/// update of a locked row, COMMIT) are deferred and sent pipelined with the next statement
/// that answers something, or at the commit: a created payment costs three round trips
/// (BEGIN + key lock, stored-answer lookup, three inserts + COMMIT) instead of eight.
pub struct Blocking<'a, C> {
    client: &'a C,
    runtime: &'a Handle,
    deferred: Vec<Deferred>,
    /// The event this flow wrote last (id, snapshot): an idempotent answer equal to the
    /// snapshot is stored as a reference to it.
    pub(crate) last_event: Option<(String, String)>,
    /// This flow may have queued webhook deliveries: wake the delivery worker after the commit.
    pub(crate) queued_deliveries: bool,
}

/// `expect_changed` of a deferred statement whose row count is not checked (the outbox's
/// `INSERT … SELECT` queues one delivery per matching endpoint, possibly none).
pub(crate) const ANY_ROWS: u64 = u64::MAX;

/// Owned statement parameters, kept until the deferred statement is sent.
pub(crate) type Params = Vec<Box<dyn ToSql + Sync + Send>>;

struct Deferred {
    sql: &'static str,
    params: Params,
    /// Rows the statement must change; checked when it has run.
    expect_changed: u64,
}

impl<'a, C: GenericClient> Blocking<'a, C> {
    pub(crate) fn new(client: &'a C, runtime: &'a Handle) -> Self {
        Blocking {
            client,
            runtime,
            deferred: Vec::new(),
            last_event: None,
            queued_deliveries: false,
        }
    }

    /// Queues a statement that must change exactly `expect_changed` rows.
    pub(crate) fn defer(&mut self, sql: &'static str, params: Params, expect_changed: u64) {
        self.deferred.push(Deferred {
            sql,
            params,
            expect_changed,
        });
    }

    /// Drops queued statements unsent (the flow failed).
    pub(crate) fn discard_deferred(&mut self) {
        self.deferred.clear();
    }

    /// Sends every deferred statement, pipelined, and checks each one's effect.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime
            .block_on(async move { pipelined(client, &batch, async { Ok(()) }).await })
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime.block_on(async move {
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            pipelined(client, &batch, client.query(&statement, params)).await
        })
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime.block_on(async move {
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            pipelined(client, &batch, client.query_opt(&statement, params)).await
        })
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime.block_on(async move {
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            pipelined(client, &batch, client.execute(&statement, params)).await
        })
    }
}

/// Runs the deferred `batch` and then `last`, written back to back on the connection (one
/// round trip): tokio-postgres sends each request when its future is first polled, and both
/// are polled in order. A failed deferred statement wins over `last`'s answer.
async fn pipelined<C, T>(
    client: &C,
    batch: &[Deferred],
    last: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError>
where
    C: GenericClient,
{
    let mut statements = Vec::with_capacity(batch.len());
    for deferred in batch {
        statements.push(
            client
                .prepare_cached(deferred.sql)
                .await
                .map_err(db_error)?,
        );
    }
    let runs = batch.iter().zip(&statements).map(|(deferred, statement)| {
        let params: Vec<&(dyn ToSql + Sync)> = deferred
            .params
            .iter()
            .map(|param| param.as_ref() as &(dyn ToSql + Sync))
            .collect();
        async move { client.execute(statement, &params).await }
    });
    let (changed, answer) = tokio::join!(futures_util::future::try_join_all(runs), last);
    for (deferred, changed) in batch.iter().zip(changed.map_err(db_error)?) {
        if deferred.expect_changed != ANY_ROWS && changed != deferred.expect_changed {
            return Err(StoreError::Database(format!(
                "`{}` changed {changed} rows, expected {}",
                deferred
                    .sql
                    .split_whitespace()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" "),
                deferred.expect_changed
            )));
        }
    }
    answer.map_err(db_error)
}
