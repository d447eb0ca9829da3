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

use std::str::FromStr;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio::runtime::Handle;
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
        Ok(PgStore { pool })
    }

    pub async fn write<T, E, F>(&self, flow: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let mut client = self.pool.get().await.map_err(|e| E::from(db_error(e)))?;
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            let tx = runtime
                .block_on(client.transaction())
                .map_err(|e| E::from(db_error(e)))?;
            let result = {
                let mut pg_tx = PgTx::new(&tx, &runtime);
                flow(&mut pg_tx).and_then(|value| pg_tx.flush().map(|()| value).map_err(E::from))
            };
            match result {
                Ok(value) => runtime
                    .block_on(tx.commit())
                    .map(|()| value)
                    .map_err(|e| E::from(db_error(e))),
                Err(error) => {
                    // Dropping an unfinished transaction rolls it back too; doing it here
                    // returns the connection to the pool clean.
                    let _ = runtime.block_on(tx.rollback());
                    Err(error)
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(E::from(StoreError::Database("write flow panicked".into()))))
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

    pub fn shutdown(&self) {
        self.pool.close();
    }
}

/// Runs statements of one connection or transaction to completion from blocking code, each
/// statement prepared once per connection. Writes whose only answer is success (inserts, the
/// update of a locked row) are deferred and sent together, pipelined in one round trip, before
/// the next read or the commit: a created payment costs five round trips instead of eight.
pub struct Blocking<'a, C> {
    client: &'a C,
    runtime: &'a Handle,
    deferred: Vec<Deferred>,
}

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

    /// Sends every deferred statement, pipelined, and checks each one's effect.
    pub(crate) fn flush(&mut self) -> Result<(), StoreError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime.block_on(async move {
            let mut statements = Vec::with_capacity(batch.len());
            for deferred in &batch {
                statements.push(
                    client
                        .prepare_cached(deferred.sql)
                        .await
                        .map_err(db_error)?,
                );
            }
            // Polled together, tokio-postgres writes them back to back on the connection.
            let runs = batch.iter().zip(&statements).map(|(deferred, statement)| {
                let params: Vec<&(dyn ToSql + Sync)> = deferred
                    .params
                    .iter()
                    .map(|param| param.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                async move { client.execute(statement, &params).await }
            });
            let changed = futures_util::future::try_join_all(runs)
                .await
                .map_err(db_error)?;
            for (deferred, changed) in batch.iter().zip(changed) {
                if changed != deferred.expect_changed {
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
            Ok(())
        })
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.flush()?;
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await.map_err(db_error)?;
            self.client
                .query(&statement, params)
                .await
                .map_err(db_error)
        })
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        self.flush()?;
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await.map_err(db_error)?;
            self.client
                .query_opt(&statement, params)
                .await
                .map_err(db_error)
        })
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.flush()?;
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await.map_err(db_error)?;
            self.client
                .execute(&statement, params)
                .await
                .map_err(db_error)
        })
    }
}
