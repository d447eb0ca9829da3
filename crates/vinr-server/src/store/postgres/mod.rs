//! PostgreSQL backend: any number of `vinr serve` nodes share one database. Each flow is its
//! own transaction (READ COMMITTED): payments are locked with `SELECT … FOR UPDATE`,
//! idempotency keys with a transaction-scoped advisory lock, money invariants are `CHECK`
//! constraints, and background work claims rows with `FOR UPDATE SKIP LOCKED`.
//!
//! Flows are synchronous code against [`Tx`]; here they run on a blocking thread and each
//! statement is driven to completion on the runtime with `Handle::block_on`, so the same flow
//! code runs unchanged on SQLite and PostgreSQL. The driver is tokio-postgres with a
//! deadpool pool; statements are prepared once per connection (`prepare_cached`).

use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::NoTls;
use vinr_domain::limits::{
    DATABASE_CONNECT_TIMEOUT_MS, DATABASE_KEEPALIVE_IDLE_MS, DATABASE_POOL_WAIT_TIMEOUT_MS,
    DATABASE_TCP_USER_TIMEOUT_MS, POSTGRES_POOL_CONNECTIONS_MAX,
};

mod listen;

pub use listen::LISTENER_APPLICATION_NAME;

use super::key_cache::KeyCache;
use super::sql::{wrong_row_count, Changed, Conn, Deferred, Dialect, Query, Row, Value};
use super::{migrations, OneRead, Reader, StoreError, Tx};

/// The one place a PostgreSQL failure is classified: an outage (503, a retry may succeed)
/// or a failure of the request itself (500).
fn db_error(error: tokio_postgres::Error) -> StoreError {
    let detail = describe(&error);
    let outage = match error.code() {
        Some(code) => outage_sqlstate(code.code()),
        // No answer from the server: the connection is closed, broken or was never made.
        // (Encoding and parsing failures carry I/O errors too, of kind InvalidInput/Data.)
        None => {
            error.is_closed()
                || io_source(&error).is_some_and(|io| {
                    !matches!(
                        io.kind(),
                        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                    )
                })
        }
    };
    // deadlock_detected, serialization_failure: this transaction lost to another one.
    let lost = matches!(
        error.code().map(|code| code.code()),
        Some("40P01" | "40001")
    );
    if outage {
        StoreError::outage(detail)
    } else if lost {
        tracing::info!(%detail, "transaction rolled back by a concurrent one");
        StoreError::Unavailable(super::LOST_TO_A_CONCURRENT_TRANSACTION)
    } else {
        StoreError::Database(detail)
    }
}

/// SQLSTATEs of a server that is going away, not accepting connections, out of resources or
/// read-only (a standby after failover): the request did not fail by itself.
fn outage_sqlstate(code: &str) -> bool {
    matches!(
        code,
        // admin_shutdown, crash_shutdown, cannot_connect_now, idle_session_timeout
        "57P01" | "57P02" | "57P03" | "57P05"
        // read_only_sql_transaction: writes sent to a standby
        | "25006"
        // system_error, io_error
        | "58000" | "58030"
    ) || code.starts_with("53") // insufficient resources: too_many_connections, disk_full, …
        || (code.starts_with("08") && code != "08P01") // connection exceptions, but protocol_violation
}

/// A pool failure: no connection to be had (an outage) or the pool closed (shutting down).
/// Whether the database `url` names exists: one connection is tried, and PostgreSQL's
/// "database does not exist" (SQLSTATE 3D000) answers no. Nothing is created.
pub async fn database_exists(url: &str) -> Result<bool, StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)
        .map_err(|error| StoreError::Database(format!("invalid PostgreSQL URL: {error}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_millis(DATABASE_CONNECT_TIMEOUT_MS));
    }
    match config.connect(NoTls).await {
        Ok((client, connection)) => {
            drop(client);
            let _ = connection.await;
            Ok(true)
        }
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) =>
        {
            Ok(false)
        }
        Err(error) => Err(db_error(error)),
    }
}

fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    use deadpool_postgres::PoolError;
    match error {
        PoolError::Backend(error) => db_error(error),
        // Every pooled connection busy for the whole wait is load, not an outage: 503 so the
        // client retries, but `/readyz` stays ready (a balancer draining its busiest nodes
        // would only move the load and cascade). Connections that cannot be made are outages
        // of their own, through `Backend`.
        PoolError::Timeout(which) => {
            StoreError::Outage(format!("no database connection in time ({which:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the database pool is closed"),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => {
            StoreError::Database(error.to_string())
        }
    }
}

/// The error with its causes: the driver's own message is only its kind ("db error"). A
/// server error is told by its SQLSTATE, message and constraint only: its `DETAIL` may quote
/// a whole row ("Failing row contains (…)"), webhook secrets and checkout tokens included,
/// and this text is logged.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut detail = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        detail.push_str(": ");
        match cause.downcast_ref::<tokio_postgres::error::DbError>() {
            Some(db) => {
                detail.push_str(&format!("{} (SQLSTATE {}", db.message(), db.code().code()));
                if let Some(constraint) = db.constraint() {
                    detail.push_str(&format!(", constraint {constraint}"));
                }
                detail.push(')');
            }
            None => detail.push_str(&cause.to_string()),
        }
        source = cause.source();
    }
    detail
}

fn io_source(error: &tokio_postgres::Error) -> Option<&std::io::Error> {
    std::error::Error::source(error)?.downcast_ref::<std::io::Error>()
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Signalled after a commit that may have queued webhook deliveries.
    outbox_wake: Arc<Notify>,
    key_cache: Arc<KeyCache>,
    auth: Arc<listen::AuthSignal>,
    listener: Arc<listen::Listener>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/database`) and applies pending
    /// migrations (under an advisory lock, so nodes starting together do not race).
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|error| StoreError::Database(format!("invalid PostgreSQL URL: {error}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_millis(DATABASE_CONNECT_TIMEOUT_MS));
        }
        // A server that vanishes without closing its sockets (a failover, a cut network) would
        // otherwise hold every pooled connection's query until the kernel gives up
        // retransmitting, about 15 minutes; with these a dead peer is an outage in seconds.
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(Duration::from_millis(DATABASE_TCP_USER_TIMEOUT_MS));
        }
        config.keepalives(true);
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_millis(DATABASE_KEEPALIVE_IDLE_MS));
        }
        let auth = Arc::new(listen::AuthSignal::default());
        let listener = Arc::new(listen::spawn(config.clone(), Arc::clone(&auth)));
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        // Without timeouts a request would wait for a connection as long as the database is
        // away; with them it is answered 503 and the client retries.
        let pool = Pool::builder(manager)
            .max_size(POSTGRES_POOL_CONNECTIONS_MAX)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_millis(DATABASE_POOL_WAIT_TIMEOUT_MS)))
            .create_timeout(Some(Duration::from_millis(DATABASE_CONNECT_TIMEOUT_MS)))
            .build()
            .map_err(|error| StoreError::Database(error.to_string()))?;
        let client = pool.get().await.map_err(pool_error)?;
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            migrations::apply(&mut Blocking::new(&client, &runtime))
        })
        .await
        .map_err(|error| StoreError::Database(error.to_string()))??;
        Ok(PgStore {
            pool,
            outbox_wake: Arc::new(Notify::new()),
            key_cache: Arc::new(KeyCache::default()),
            auth,
            listener,
        })
    }

    pub async fn write<T, E, F>(&self, flow: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(|e| E::from(pool_error(e)))?;
        let runtime = Handle::current();
        let outbox_wake = Arc::clone(&self.outbox_wake);
        let auth = Arc::clone(&self.auth);
        let answer = tokio::task::spawn_blocking(move || {
            let mut conn = Blocking::new(&client, &runtime);
            // BEGIN goes out with the flow's first statement, COMMIT with its last writes.
            conn.defer_raw("BEGIN");
            let mut tx = Tx::new(&mut conn);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| flow(&mut tx)))
                .unwrap_or_else(|_| {
                    tracing::error!("a write flow panicked; its transaction is rolled back");
                    Err(E::from(StoreError::Database("write flow panicked".into())))
                });
            let queued_deliveries = tx.queued_deliveries();
            let auth_changed = tx.auth_changed();
            let result = result.and_then(|value| {
                conn.defer_raw("COMMIT");
                conn.flush().map(|()| value).map_err(E::from)
            });
            if result.is_ok() && queued_deliveries {
                outbox_wake.notify_one();
            }
            if auth_changed {
                // Also when the flow failed: what it may have committed is not known.
                auth.changed();
            }
            if result.is_err() {
                // Whatever failed, the connection goes back to the pool outside a
                // transaction (PostgreSQL only warns when none is open).
                conn.discard_deferred();
                if conn.batch("ROLLBACK").is_err() {
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
        F: FnOnce(&mut Reader<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let client = self.pool.get().await.map_err(|e| E::from(pool_error(e)))?;
        let runtime = Handle::current();
        tokio::task::spawn_blocking(move || {
            read(&mut Reader::new(&mut Blocking::new(&client, &runtime)))
        })
        .await
        .unwrap_or_else(|_| Err(E::from(StoreError::Database("read panicked".into()))))
    }

    /// A one-statement read, on the runtime: the pooled client's future is the round trip.
    pub async fn read_one<T>(&self, read: OneRead<T>) -> Result<T, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let statement = client
            .prepare_cached(read.sql(Dialect::Postgres))
            .await
            .map_err(db_error)?;
        let rows = client
            .query(&statement, &as_params(read.params()))
            .await
            .map_err(db_error)?;
        drop(client);
        let rows = rows.iter().map(row_values).collect::<Result<_, _>>()?;
        read.answer(rows)
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.outbox_wake)
    }

    pub(super) fn key_cache(&self) -> &KeyCache {
        &self.key_cache
    }

    /// The auth version behind a fence (`listen.rs`), `None` while this node is not listening.
    pub(super) async fn auth_version(&self) -> Option<u64> {
        self.auth.version().await
    }

    pub fn shutdown(&self) {
        self.listener.stop();
        self.pool.close();
    }
}

/// A pooled connection as the query layer sees it: runs statements to completion from
/// blocking code, each statement prepared once per connection. Statements whose only answer
/// is success (BEGIN, inserts, the update of a locked row, COMMIT) are deferred and sent
/// pipelined with the next statement that answers something, or at the commit: a created
/// payment costs two round trips (BEGIN + key lock + stored-answer lookup; its inserts, as one
/// statement, + COMMIT) instead of eight.
pub struct Blocking<'a> {
    client: &'a deadpool_postgres::Client,
    runtime: &'a Handle,
    deferred: Vec<Queued>,
}

/// A deferred statement, kept with its own copy of the parameters until it is sent.
struct Queued {
    sql: &'static str,
    params: Vec<Value<'static>>,
    changed: Changed,
}

impl<'a> Blocking<'a> {
    pub(crate) fn new(client: &'a deadpool_postgres::Client, runtime: &'a Handle) -> Self {
        Blocking {
            client,
            runtime,
            deferred: Vec::new(),
        }
    }

    /// Queues a statement without parameters (transaction control).
    fn defer_raw(&mut self, sql: &'static str) {
        self.deferred.push(Queued {
            sql,
            params: Vec::new(),
            changed: Changed::Exactly(0),
        });
    }

    /// Drops queued statements unsent (the flow failed).
    fn discard_deferred(&mut self) {
        self.deferred.clear();
    }

    /// Sends every deferred statement, pipelined, and checks each one's effect.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        self.runtime
            .block_on(async move { pipelined(client, &batch, async { Ok(()) }).await })
    }
}

impl Conn for Blocking<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        let params = as_params(params);
        let rows = self.runtime.block_on(async move {
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            pipelined(client, &batch, client.query(&statement, &params)).await
        })?;
        rows.iter().map(row_values).collect()
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        let params = as_params(params);
        self.runtime.block_on(async move {
            let statement = client.prepare_cached(sql).await.map_err(db_error)?;
            pipelined(client, &batch, client.execute(&statement, &params)).await
        })
    }

    fn defer(&mut self, statement: Deferred<'_>) -> Result<Option<u64>, StoreError> {
        self.deferred.push(Queued {
            sql: statement.sql,
            params: statement
                .params
                .iter()
                .cloned()
                .map(Value::into_owned)
                .collect(),
            changed: statement.changed,
        });
        Ok(None)
    }

    fn query_each(&mut self, statements: &[Query<'_>]) -> Result<Vec<Vec<Row>>, StoreError> {
        let batch = std::mem::take(&mut self.deferred);
        let client = self.client;
        let answers = self.runtime.block_on(async move {
            let mut prepared = Vec::with_capacity(statements.len());
            for statement in statements {
                prepared.push(
                    client
                        .prepare_cached(statement.sql)
                        .await
                        .map_err(db_error)?,
                );
            }
            let params: Vec<_> = statements.iter().map(|s| as_params(s.params)).collect();
            let runs = prepared
                .iter()
                .zip(&params)
                .map(|(statement, params)| client.query(statement, params));
            pipelined(client, &batch, futures_util::future::try_join_all(runs)).await
        })?;
        answers
            .iter()
            .map(|rows| rows.iter().map(row_values).collect())
            .collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.flush()?;
        let client = self.client;
        self.runtime
            .block_on(async move { client.batch_execute(sql).await })
            .map_err(db_error)
    }
}

fn as_params<'v>(params: &'v [Value<'_>]) -> Vec<&'v (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param as &(dyn ToSql + Sync))
        .collect()
}

/// A driver row as the query layer's [`Row`], by each column's type.
fn row_values(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let value = match *column.type_() {
            // What the advisory-lock functions answer.
            Type::VOID => Ok(Value::Null),
            Type::INT8 => row.try_get::<_, Option<i64>>(index).map(Value::from),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)
                .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into()))),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)
                .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into()))),
            Type::BOOL => row.try_get::<_, Option<bool>>(index).map(Value::from),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(index)
                .map(|v| v.map_or(Value::Null, |v| Value::Blob(v.into()))),
            _ => row.try_get::<_, Option<String>>(index).map(Value::from),
        };
        values.push(value.map_err(db_error)?);
    }
    Ok(Row::new(values))
}

/// Parameters take the type the server inferred for them: an `Int` is sent as the column's
/// width (or as a boolean), text and bytes as themselves.
impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => match *ty {
                Type::INT4 => i32::try_from(*value)?.to_sql_checked(ty, out),
                Type::INT2 => i16::try_from(*value)?.to_sql_checked(ty, out),
                Type::BOOL => (*value != 0).to_sql_checked(ty, out),
                _ => value.to_sql_checked(ty, out),
            },
            Value::Text(text) => text.as_ref().to_sql_checked(ty, out),
            Value::Blob(bytes) => bytes.as_ref().to_sql_checked(ty, out),
            Value::Ints(values) => values.to_sql_checked(ty, out),
            Value::Texts(values) => values.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Each variant checks the type it is given in `to_sql`.
        true
    }

    to_sql_checked!();
}

/// Runs the deferred `batch` and then `last`, written back to back on the connection (one
/// round trip): tokio-postgres sends each request when its future is first polled, and all
/// are polled in order. A failed deferred statement wins over `last`'s answer. Consecutive
/// deferred inserts go as one statement ([`merged`]).
async fn pipelined<T>(
    client: &deadpool_postgres::Client,
    batch: &[Queued],
    last: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    let units = units(batch);
    let mut statements = Vec::with_capacity(units.len());
    for unit in &units {
        let sql = match unit {
            Unit::One(index) => batch[*index].sql,
            Unit::Merged(_, sql) => sql.as_str(),
        };
        statements.push(client.prepare_cached(sql).await.map_err(db_error)?);
    }
    let runs = units.iter().zip(&statements).map(|(unit, statement)| {
        let params: Vec<_> = match unit {
            Unit::One(index) => as_params(&batch[*index].params),
            Unit::Merged(members, _) => batch[members.clone()]
                .iter()
                .flat_map(|deferred| as_params(&deferred.params))
                .collect(),
        };
        async move {
            match unit {
                Unit::One(_) => Ok(vec![client.execute(statement, &params).await?]),
                Unit::Merged(..) => {
                    let counts = client.query_one(statement, &params).await?;
                    (0..counts.len())
                        .map(|index| counts.try_get::<_, i64>(index).map(|n| n.unsigned_abs()))
                        .collect()
                }
            }
        }
    });
    let (changed, answer) = tokio::join!(futures_util::future::try_join_all(runs), last);
    let changed = changed.map_err(db_error)?;
    for (deferred, changed) in batch.iter().zip(changed.into_iter().flatten()) {
        if let Some(error) = wrong_row_count(deferred.sql, changed, deferred.changed) {
            return Err(error);
        }
    }
    answer.map_err(db_error)
}

/// How deferred statements are sent: one by one, or a run of them merged into one.
enum Unit {
    One(usize),
    Merged(std::ops::Range<usize>, String),
}

/// Groups `batch` into runs of inserts that [`merged`] may send as one statement.
fn units(batch: &[Queued]) -> Vec<Unit> {
    let mut units = Vec::with_capacity(batch.len());
    let mut start = 0;
    while start < batch.len() {
        let mut written = Vec::new();
        let mut end = start;
        while let Some((table, reads)) = batch.get(end).and_then(|d| mergeable_insert(d.sql)) {
            // Members share one snapshot: none may read what an earlier one writes.
            if reads.iter().any(|read| written.contains(read)) {
                break;
            }
            written.push(table);
            end += 1;
        }
        if end - start >= 2 {
            units.push(Unit::Merged(start..end, merged(&batch[start..end])));
            start = end;
        } else {
            units.push(Unit::One(start));
            start += 1;
        }
    }
    units
}

/// A run of inserts as one data-modifying CTE answering how many rows each inserted: one
/// statement for PostgreSQL to bind, plan and run instead of several (a created payment's
/// payment, event, webhook deliveries and idempotent answer). Every member runs to completion
/// whether or not its rows are read; members see the same snapshot, which [`units`] makes
/// harmless; foreign keys to a row of an earlier member are checked at the statement's end.
fn merged(members: &[Queued]) -> String {
    let mut with = Vec::with_capacity(members.len());
    let mut counts = Vec::with_capacity(members.len());
    let mut offset = 0;
    for (index, member) in members.iter().enumerate() {
        with.push(format!(
            "s{index} AS ({} RETURNING 1)",
            renumbered(member.sql, offset)
        ));
        counts.push(format!("(SELECT count(*) FROM s{index})"));
        offset += member.params.len();
    }
    format!("WITH {} SELECT {}", with.join(", "), counts.join(", "))
}

/// `sql` with each placeholder `$N` moved to `$(N + offset)`.
fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut chars = sql.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut end = at + 1;
        while let Some(&(next, digit)) = chars.peek() {
            if !digit.is_ascii_digit() {
                break;
            }
            end = next + 1;
            chars.next();
        }
        match sql[at + 1..end].parse::<usize>() {
            Ok(number) => out.push_str(&format!("${}", number + offset)),
            Err(_) => out.push('$'),
        }
    }
    out
}

/// An `INSERT` that may join a merged run: its table and the tables it reads. Not one that
/// answers rows or may conflict with itself (`ON CONFLICT`, `RETURNING`), nor a `WITH`.
fn mergeable_insert(sql: &'static str) -> Option<(&'static str, Vec<&'static str>)> {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ','))
        .filter(|word| !word.is_empty());
    if !(words.next()?.eq_ignore_ascii_case("INSERT") && words.next()?.eq_ignore_ascii_case("INTO"))
    {
        return None;
    }
    let table = words.next()?;
    let mut reads = Vec::new();
    let mut previous = "";
    for word in words {
        if ["ON", "RETURNING", "WITH"]
            .iter()
            .any(|keyword| word.eq_ignore_ascii_case(keyword))
        {
            return None;
        }
        if previous.eq_ignore_ascii_case("FROM") || previous.eq_ignore_ascii_case("JOIN") {
            reads.push(word);
        }
        previous = word;
    }
    Some((table, reads))
}

#[cfg(test)]
mod tests {
    use tokio_postgres::NoTls;

    use super::{db_error, outage_sqlstate, units, Changed, Queued, StoreError, Unit};

    fn queued(sql: &'static str, params: usize) -> Queued {
        Queued {
            sql,
            params: vec![super::Value::Null; params],
            changed: Changed::Exactly(1),
        }
    }

    #[test]
    fn consecutive_independent_inserts_go_as_one_statement() {
        let batch = [
            queued("BEGIN", 0),
            queued("INSERT INTO payments (id, amount) VALUES ($1, $2)", 2),
            queued("INSERT INTO events (id, data) VALUES ($1, $2)", 2),
            queued(
                "INSERT INTO deliveries (endpoint_id, event_id) SELECT id, $2 FROM endpoints
                 WHERE account_id = $1",
                2,
            ),
            // Reads what an earlier member writes: starts a run of its own.
            queued(
                "INSERT INTO copies (id) SELECT id FROM payments WHERE id = $1",
                1,
            ),
            queued(
                "INSERT INTO totals (id) VALUES ($1) ON CONFLICT DO NOTHING",
                1,
            ),
            queued("UPDATE payments SET amount = $2 WHERE id = $1", 2),
            queued("COMMIT", 0),
        ];
        let units = units(&batch);
        assert_eq!(units.len(), 6);
        assert!(matches!(units[0], Unit::One(0)));
        match &units[1] {
            Unit::Merged(members, sql) => {
                assert_eq!(members.clone(), 1..4);
                assert_eq!(
                    sql.split_whitespace().collect::<Vec<_>>().join(" "),
                    "WITH s0 AS (INSERT INTO payments (id, amount) VALUES ($1, $2) RETURNING 1), \
                     s1 AS (INSERT INTO events (id, data) VALUES ($3, $4) RETURNING 1), \
                     s2 AS (INSERT INTO deliveries (endpoint_id, event_id) SELECT id, $6 FROM \
                     endpoints WHERE account_id = $5 RETURNING 1) SELECT (SELECT count(*) FROM \
                     s0), (SELECT count(*) FROM s1), (SELECT count(*) FROM s2)"
                );
            }
            Unit::One(_) => panic!("not merged"),
        }
        assert!(matches!(units[2], Unit::One(4)));
        assert!(matches!(units[3], Unit::One(5)));
        assert!(matches!(units[4], Unit::One(6)));
        assert!(matches!(units[5], Unit::One(7)));
    }

    #[test]
    fn a_server_going_away_or_out_of_resources_is_an_outage() {
        let outages = [
            "57P01", "57P02", "57P03", "57P05", "53300", "53100", "53200", "53000", "08006",
            "08001", "08003", "08004", "25006", "58030",
        ];
        for code in outages {
            assert!(outage_sqlstate(code), "{code}");
        }
        // unique_violation, check_violation, syntax_error, protocol_violation, database dropped,
        // undefined_table, serialization_failure (not an outage: the request may be retried)
        for code in [
            "23505", "23514", "42601", "08P01", "57P04", "42P01", "40001",
        ] {
            assert!(!outage_sqlstate(code), "{code}");
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_outage() {
        // Port 1 (tcpmux) has no PostgreSQL behind it.
        let refused = tokio_postgres::connect("postgres://postgres@127.0.0.1:1/vinr", NoTls)
            .await
            .err()
            .expect("nothing listens on port 1");
        let error = db_error(refused);
        assert!(matches!(error, StoreError::Outage(_)), "{error:?}");
    }
}
