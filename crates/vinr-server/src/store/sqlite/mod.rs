//! SQLite backend: WAL, `synchronous=FULL` (every commit is fsync'd), one writer thread with
//! group commit, and reader threads with read-only connections.
//!
//! Why one writer: SQLite admits one writer at a time anyway, and the cost of a commit is the
//! fsync. Taking every flow that is waiting, running each in its own `SAVEPOINT` and
//! committing once turns N fsyncs into one; a flow that fails rolls back only its savepoint.
//! No flow is answered before the commit that holds its effects has returned.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, OpenFlags};
use tokio::sync::Notify;
use vinr_domain::limits::{
    SQLITE_BUSY_TIMEOUT_MS, SQLITE_CACHE_SIZE_KIB, SQLITE_CHECKPOINT_INTERVAL_MS,
    SQLITE_INLINE_READ_BUSY_TIMEOUT_MS, SQLITE_INLINE_READ_CONNECTIONS_MAX,
    SQLITE_JOURNAL_SIZE_LIMIT_BYTES, SQLITE_MMAP_SIZE_BYTES, SQLITE_READER_THREADS,
    SQLITE_READ_QUEUE_READS_MAX, SQLITE_STATEMENT_CACHE_STATEMENTS,
    SQLITE_WAL_AUTOCHECKPOINT_PAGES, WRITE_BATCH_FLOWS_MAX, WRITE_QUEUE_FLOWS_MAX,
};

use super::key_cache::KeyCache;
use super::sql::{wrong_row_count, Conn, Deferred, Dialect, Row, Value};
use super::{migrations, OneRead, Reader, StoreError, Tx};

/// What a flow hands back to the writer: whether to keep its savepoint, and how to answer
/// its caller once the batch's commit is known.
struct FlowOutcome {
    keep: bool,
    answer: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

type Job = Box<dyn FnOnce(&mut Tx<'_>) -> FlowOutcome + Send>;

/// A read, run by one of the reader threads on its connection.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

enum Message {
    Flow(Job),
    Stop,
}

struct Inner {
    sender: SyncSender<Message>,
    writer: Mutex<Option<JoinHandle<()>>>,
    checkpointer: Mutex<Option<(SyncSender<()>, JoinHandle<()>)>>,
    /// Where reads wait for a reader thread; dropped (`None`) at shutdown to stop them.
    reads: Mutex<Option<crossbeam_channel::Sender<ReadJob>>>,
    readers: Mutex<Vec<JoinHandle<()>>>,
    /// Signalled after a commit that queued webhook deliveries.
    outbox_wake: Arc<Notify>,
    key_cache: KeyCache,
    /// Read-only connections for [`SqliteStore::read_inline`], and the file they open.
    inline_reads: Mutex<Vec<Connection>>,
    path: String,
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// The one place an SQLite failure is classified: an outage (503, a retry may succeed: the
/// disk is full or failing, the file cannot be opened or written, another process held the
/// lock past the busy timeout) or a failure of the request itself (500).
fn db_error(error: rusqlite::Error) -> StoreError {
    let detail = error.to_string();
    match error.sqlite_error_code() {
        Some(code) if outage_code(code) => StoreError::outage(detail),
        _ => StoreError::Database(detail),
    }
}

fn outage_code(code: rusqlite::ErrorCode) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        code,
        ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OutOfMemory
    )
}

fn open_writer(path: &str) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
        .map_err(db_error)?;
    // WAL lets readers run beside the writer; FULL syncs the WAL on every commit, which is
    // what makes a 2xx durable. NORMAL would lose the last commits on power loss.
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_error)?;
    // Under steady load a checkpoint on another thread never catches up with the writer, so
    // the WAL would only grow, and appending to a growing file costs the kernel a zeroed page
    // per frame (measured: half the writer's time). The background checkpointer copies most
    // frames off the writer's thread; the writer's own checkpoint, between two batches, then
    // finds little left, completes, and the next batch rewrites the WAL from its start.
    conn.pragma_update(None, "wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT_PAGES)
        .map_err(db_error)?;
    conn.pragma_update(None, "journal_size_limit", SQLITE_JOURNAL_SIZE_LIMIT_BYTES)
        .map_err(db_error)?;
    // Every flow runs in a savepoint, whose sub-journal would otherwise be a temporary file
    // written through the kernel for every page a flow touches.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(db_error)?;
    tune(&conn)?;
    Ok(conn)
}

fn tune(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "cache_size", -SQLITE_CACHE_SIZE_KIB)
        .map_err(db_error)?;
    conn.pragma_update(None, "mmap_size", SQLITE_MMAP_SIZE_BYTES)
        .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(SQLITE_STATEMENT_CACHE_STATEMENTS);
    Ok(())
}

fn open_reader(path: &str, busy_timeout_ms: u64) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(db_error)?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))
        .map_err(db_error)?;
    tune(&conn)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, applies pending migrations and starts the
    /// writer thread.
    pub fn open(path: &str) -> Result<SqliteStore, StoreError> {
        if path.is_empty() || path.starts_with(':') {
            return Err(StoreError::Unavailable(
                "an SQLite database must be a file path (sqlite://vinr.db)",
            ));
        }
        let conn = open_writer(path)?;
        migrations::apply(&mut SqliteConn(&conn))?;
        let (sender, receiver) = mpsc::sync_channel(WRITE_QUEUE_FLOWS_MAX);
        let outbox_wake = Arc::new(Notify::new());
        let wake = Arc::clone(&outbox_wake);
        let writer = std::thread::Builder::new()
            .name("vinr-sqlite-writer".into())
            .spawn(move || writer_loop(conn, receiver, &wake))
            .map_err(|error| StoreError::Database(format!("cannot start writer: {error}")))?;
        let checkpointer = start_checkpointer(path)?;
        let (reads, readers) = start_readers(path)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                sender,
                writer: Mutex::new(Some(writer)),
                checkpointer: Mutex::new(Some(checkpointer)),
                reads: Mutex::new(Some(reads)),
                readers: Mutex::new(readers),
                outbox_wake,
                key_cache: KeyCache::default(),
                inline_reads: Mutex::new(Vec::new()),
                path: path.to_owned(),
            }),
        })
    }

    pub async fn write<T, E, F>(&self, flow: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |tx: &mut Tx<'_>| {
            let result =
                std::panic::catch_unwind(AssertUnwindSafe(|| flow(tx))).unwrap_or_else(|_| {
                    tracing::error!("a write flow panicked; its savepoint is rolled back");
                    Err(E::from(StoreError::Database("write flow panicked".into())))
                });
            FlowOutcome {
                keep: result.is_ok(),
                answer: Box::new(move |commit| {
                    let answer = match commit {
                        Ok(()) => result,
                        Err(error) => Err(E::from(error)),
                    };
                    // The caller may have gone (client disconnected); the effects stand.
                    let _ = reply.send(answer);
                }),
            }
        });
        match self.inner.sender.try_send(Message::Flow(job)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(E::from(StoreError::Unavailable("write queue is full")))
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(E::from(StoreError::Unavailable("writer has stopped")))
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Unavailable("writer has stopped"))))
    }

    /// Runs `read` on one of the reader threads (each with its own read-only connection and
    /// statement cache): a read may wait for the disk or scan a page of a list, and must not
    /// hold up an async worker thread meanwhile. A fixed set of threads, not the runtime's
    /// blocking pool: that one grows with the load, and each extra thread would open a
    /// connection of its own.
    pub async fn read<T, E, F>(&self, read: F) -> Result<T, E>
    where
        F: FnOnce(&mut Reader<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job: ReadJob = Box::new(move |conn: &Connection| {
            if reply.is_closed() {
                // The caller has gone (client disconnected, shutting down): nothing to answer.
                return;
            }
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                read(&mut Reader::new(&mut SqliteConn(conn)))
            }))
            .unwrap_or_else(|_| Err(E::from(StoreError::Database("read panicked".into()))));
            // The caller may have gone (client disconnected).
            let _ = reply.send(result);
        });
        let sent = match &*self.inner.reads.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(reads) => reads.try_send(job),
            None => return Err(E::from(StoreError::Unavailable("the store is shut down"))),
        };
        match sent {
            Ok(()) => {}
            Err(crossbeam_channel::TrySendError::Full(_)) => {
                return Err(E::from(StoreError::Unavailable("read queue is full")))
            }
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => {
                return Err(E::from(StoreError::Unavailable("the readers have stopped")))
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(E::from(StoreError::Unavailable("the readers have stopped"))))
    }

    pub fn outbox_wake(&self) -> Arc<Notify> {
        Arc::clone(&self.inner.outbox_wake)
    }

    pub(super) fn key_cache(&self) -> &KeyCache {
        &self.inner.key_cache
    }

    /// Runs `read` on the caller's thread, on one of the connections kept for short reads
    /// (a free one, or a new one if none is free). For one-statement reads by primary key
    /// only: they cost less than the hand-off to a reader thread and back (measured, issue 16:
    /// that hand-off and the idle readers' spinning were a third of a GET's server CPU). Their
    /// connections wait at most [`SQLITE_INLINE_READ_BUSY_TIMEOUT_MS`] for a lock (WAL
    /// recovery after a crash, another process resetting the WAL): an async worker must not
    /// stall for the readers' seconds; such a read is answered 503, the auth version `None`.
    fn read_inline<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .inner
            .inline_reads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.inner.path, SQLITE_INLINE_READ_BUSY_TIMEOUT_MS)?,
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| read(&conn)))
            .unwrap_or_else(|_| Err(StoreError::Database("read panicked".into())));
        let mut inline_reads = self
            .inner
            .inline_reads
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if inline_reads.len() < SQLITE_INLINE_READ_CONNECTIONS_MAX {
            inline_reads.push(conn);
        }
        result
    }

    /// [`Reader::one`] on the caller's thread ([`SqliteStore::read_inline`]).
    pub(super) fn read_one<T>(&self, read: OneRead<T>) -> Result<T, StoreError> {
        self.read_inline(|conn| Reader::new(&mut SqliteConn(conn)).one(read))
    }

    /// The database's auth version (migration 0015: triggers bump it in every transaction
    /// that changes what a key lookup answers, whichever process commits it), read inline.
    /// `None` if it cannot be read (the lookup then goes to the database, which reports the
    /// failure).
    pub(super) fn auth_version(&self) -> Option<u64> {
        static VERSION: &str = "SELECT version FROM auth_version WHERE id = 1";
        let version = self.read_inline(|conn| {
            conn.prepare_cached(VERSION)
                .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
                .map_err(db_error)
        });
        match version {
            Ok(version) => u64::try_from(version).ok(),
            Err(error) => {
                tracing::debug!(%error, "auth version unreadable; key cache bypassed");
                None
            }
        }
    }

    pub fn shutdown(&self) {
        self.inner
            .inline_reads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(writer) = writer {
            // Blocking send: the writer drains what is queued before it sees Stop.
            let _ = self.inner.sender.send(Message::Stop);
            let _ = writer.join();
        }
        let checkpointer = self
            .inner
            .checkpointer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some((stop, handle)) = checkpointer {
            drop(stop);
            let _ = handle.join();
        }
        // Readers finish the reads already queued, then see the queue closed.
        drop(
            self.inner
                .reads
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take(),
        );
        let readers = std::mem::take(
            &mut *self
                .inner
                .readers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for reader in readers {
            let _ = reader.join();
        }
    }
}

/// Starts the reader threads: each opens its read-only connection, then takes reads from the
/// shared queue (a multi-consumer channel: the first idle reader takes the next read) until
/// its sender is dropped.
fn start_readers(
    path: &str,
) -> Result<(crossbeam_channel::Sender<ReadJob>, Vec<JoinHandle<()>>), StoreError> {
    let (sender, receiver) = crossbeam_channel::bounded::<ReadJob>(SQLITE_READ_QUEUE_READS_MAX);
    let mut readers = Vec::with_capacity(SQLITE_READER_THREADS);
    for index in 0..SQLITE_READER_THREADS {
        let conn = open_reader(path, SQLITE_BUSY_TIMEOUT_MS)?;
        let receiver = receiver.clone();
        let reader = std::thread::Builder::new()
            .name(format!("vinr-sqlite-reader-{index}"))
            .spawn(move || {
                for job in receiver {
                    job(&conn);
                }
            })
            .map_err(|error| StoreError::Database(format!("cannot start a reader: {error}")))?;
        readers.push(reader);
    }
    Ok((sender, readers))
}

/// Copies committed WAL frames into the database file beside the writer (PASSIVE: it never
/// blocks the writer or readers), so that the writer's own checkpoints find little to copy.
/// Stops when its sender is dropped.
fn start_checkpointer(path: &str) -> Result<(SyncSender<()>, JoinHandle<()>), StoreError> {
    let conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
        .map_err(db_error)?;
    let (stop, stopped) = mpsc::sync_channel::<()>(0);
    let handle = std::thread::Builder::new()
        .name("vinr-sqlite-checkpointer".into())
        .spawn(move || {
            // Wakes every interval; a message or a dropped sender means stop.
            while let Err(mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(Duration::from_millis(SQLITE_CHECKPOINT_INTERVAL_MS))
            {
                let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                    row.get::<_, i64>(0)
                });
                if let Err(error) = result {
                    tracing::warn!(%error, "WAL checkpoint failed; will retry");
                }
            }
        })
        .map_err(|error| StoreError::Database(format!("cannot start checkpointer: {error}")))?;
    Ok((stop, handle))
}

fn writer_loop(conn: Connection, receiver: Receiver<Message>, outbox_wake: &Notify) {
    let mut batch: Vec<Job> = Vec::with_capacity(WRITE_BATCH_FLOWS_MAX);
    let mut stopping = false;
    while !stopping {
        match receiver.recv() {
            Ok(Message::Flow(job)) => batch.push(job),
            Ok(Message::Stop) | Err(_) => break,
        }
        while batch.len() < WRITE_BATCH_FLOWS_MAX {
            match receiver.try_recv() {
                Ok(Message::Flow(job)) => batch.push(job),
                Ok(Message::Stop) | Err(TryRecvError::Disconnected) => {
                    stopping = true;
                    break;
                }
                Err(TryRecvError::Empty) => break,
            }
        }
        run_batch(&conn, &mut batch, outbox_wake);
    }
    tracing::debug!("sqlite writer stopped");
}

/// Runs a statement without parameters through the statement cache (savepoint statements run
/// once per flow: parsing them each time would show in the writer's profile).
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>, outbox_wake: &Notify) {
    let mut jobs = batch.drain(..);
    while jobs.len() > 0 {
        run_transaction(conn, &mut jobs, outbox_wake);
    }
}

/// Runs waiting flows in one transaction and commits it. Stops early, leaving the rest of
/// `jobs` for another transaction, when SQLite rolled the transaction back by itself (it may,
/// on a full disk or an I/O error): the flows run so far are then refused.
fn run_transaction(conn: &Connection, jobs: &mut std::vec::Drain<'_, Job>, outbox_wake: &Notify) {
    let started = Instant::now();
    let mut answers = Vec::with_capacity(jobs.len());
    let mut queued_deliveries = false;
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = db_error(error);
        // The jobs are dropped unrun; their callers are answered 503 (nothing was run).
        jobs.for_each(drop);
        tracing::error!(%error, "cannot begin write transaction");
        return;
    }
    let mut lost = None;
    for job in jobs.by_ref() {
        if let Err(error) = run_cached(conn, "SAVEPOINT flow") {
            tracing::error!(%error, "cannot open savepoint");
            drop(job);
            continue;
        }
        let mut flow_conn = SqliteConn(conn);
        let mut tx = Tx::new(&mut flow_conn);
        let outcome = job(&mut tx);
        queued_deliveries |= outcome.keep && tx.queued_deliveries();
        let closed = if outcome.keep {
            run_cached(conn, "RELEASE flow")
        } else {
            run_cached(conn, "ROLLBACK TO flow").and_then(|()| run_cached(conn, "RELEASE flow"))
        };
        answers.push(outcome.answer);
        if let Err(error) = closed {
            tracing::error!(%error, "cannot close savepoint");
        }
        if conn.is_autocommit() {
            lost = Some(StoreError::outage(
                "the database rolled the write transaction back".into(),
            ));
            break;
        }
    }
    let flows = answers.len();
    let executed = started.elapsed();
    let commit = match lost {
        Some(error) => Err(error),
        None => conn.execute_batch("COMMIT").map_err(|error| {
            let _ = conn.execute_batch("ROLLBACK");
            db_error(error)
        }),
    };
    metrics::histogram!("vinr_store_batch_flows").record(flows as f64);
    metrics::histogram!("vinr_store_batch_execute_seconds").record(executed.as_secs_f64());
    metrics::histogram!("vinr_store_batch_commit_seconds")
        .record((started.elapsed() - executed).as_secs_f64());
    match commit {
        Ok(()) => {
            if queued_deliveries {
                outbox_wake.notify_one();
            }
            answers.into_iter().for_each(|answer| answer(Ok(())));
        }
        Err(error) => {
            tracing::error!(%error, flows, "group commit failed; every flow in it is refused");
            for answer in answers {
                answer(Err(error.clone()));
            }
        }
    }
}

/// A connection as the query layer sees it. Statements are cached by rusqlite; `$N`
/// placeholders are SQLite named parameters, each bound by its number.
struct SqliteConn<'c>(&'c Connection);

impl SqliteConn<'_> {
    fn prepare(&self, sql: &str, params: &[Value<'_>]) -> Result<CachedStatement<'_>, StoreError> {
        let mut statement = self.0.prepare_cached(sql).map_err(db_error)?;
        for index in 1..=statement.parameter_count() {
            let name = statement.parameter_name(index).unwrap_or("?");
            let value = name
                .strip_prefix('$')
                .and_then(|number| number.parse::<usize>().ok())
                .and_then(|number| params.get(number.checked_sub(1)?))
                .ok_or_else(|| {
                    StoreError::Database(format!("statement parameter {name} has no value"))
                })?;
            statement
                .raw_bind_parameter(index, value)
                .map_err(db_error)?;
        }
        Ok(statement)
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.prepare(sql, params)?;
        let columns = statement.column_count();
        let mut rows = statement.raw_query();
        let mut answer = Vec::new();
        while let Some(row) = rows.next().map_err(db_error)? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(value(row.get_ref(index).map_err(db_error)?)?);
            }
            answer.push(Row::new(values));
        }
        Ok(answer)
    }

    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let changed = self.prepare(sql, params)?.raw_execute().map_err(db_error)?;
        Ok(changed as u64)
    }

    fn defer(&mut self, statement: Deferred<'_>) -> Result<Option<u64>, StoreError> {
        let changed = self.execute(statement.sql, statement.params)?;
        match wrong_row_count(statement.sql, changed, statement.changed) {
            Some(error) => Err(error),
            None => Ok(Some(changed)),
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.0.execute_batch(sql).map_err(db_error)
    }
}

/// A column's value; SQLite's floats are never written by this server.
fn value(column: ValueRef<'_>) -> Result<Value<'static>, StoreError> {
    Ok(match column {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        ValueRef::Text(bytes) => Value::from(
            String::from_utf8(bytes.to_vec())
                .map_err(|_| StoreError::Database("text in the database is not UTF-8".into()))?,
        ),
        ValueRef::Blob(bytes) => Value::Blob(bytes.to_vec().into()),
        ValueRef::Real(value) => {
            return Err(StoreError::Database(format!(
                "unexpected real number {value} in the database"
            )))
        }
    })
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(value) => ValueRef::Integer(*value),
            Value::Text(text) => ValueRef::Text(text.as_bytes()),
            Value::Blob(bytes) => ValueRef::Blob(bytes),
            Value::Ints(_) | Value::Texts(_) => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    "arrays are for PostgreSQL's unnest only".into(),
                ))
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{ffi, Connection, OpenFlags};

    use super::{db_error, StoreError};

    fn classify(result: rusqlite::Result<impl Sized>) -> StoreError {
        db_error(result.err().expect("the statement fails"))
    }

    fn is_outage(error: &StoreError) -> bool {
        matches!(error, StoreError::Outage(_))
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_an_outage() {
        let error = classify(Connection::open("/nonexistent-vinr-dir/vinr.db"));
        assert!(is_outage(&error), "{error:?}");
    }

    #[test]
    fn a_lock_held_past_the_busy_timeout_is_an_outage() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("vinr.db");
        let holder = Connection::open(&path).expect("opened");
        holder.execute_batch("BEGIN IMMEDIATE").expect("locked");
        let waiter = Connection::open(&path).expect("opened");
        waiter
            .busy_timeout(std::time::Duration::ZERO)
            .expect("no busy wait");
        let error = classify(waiter.execute_batch("BEGIN IMMEDIATE"));
        assert!(is_outage(&error), "{error:?}");
    }

    #[test]
    fn a_database_that_refuses_writes_is_an_outage() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("vinr.db");
        Connection::open(&path)
            .and_then(|conn| conn.execute_batch("CREATE TABLE t (x INTEGER)"))
            .expect("created");
        let read_only =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("opened");
        let error = classify(read_only.execute("INSERT INTO t VALUES (1)", []));
        assert!(is_outage(&error), "{error:?}");
    }

    /// A full disk and an I/O error cannot be made here without a small filesystem (see
    /// `tests/outage.rs`, which fills one): the codes SQLite reports for them.
    #[test]
    fn a_full_disk_and_an_io_error_are_outages() {
        for code in [ffi::SQLITE_FULL, ffi::SQLITE_IOERR, ffi::SQLITE_IOERR_WRITE] {
            let error = db_error(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
            assert!(is_outage(&error), "{code}: {error:?}");
        }
    }

    #[test]
    fn a_failure_of_the_request_itself_is_not_an_outage() {
        let conn = Connection::open_in_memory().expect("opened");
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            .expect("created");
        conn.execute("INSERT INTO t VALUES (1)", [])
            .expect("inserted");
        let duplicate = classify(conn.execute("INSERT INTO t VALUES (1)", []));
        assert!(
            matches!(duplicate, StoreError::Database(_)),
            "{duplicate:?}"
        );
        let syntax = classify(conn.execute_batch("SELEC 1"));
        assert!(matches!(syntax, StoreError::Database(_)), "{syntax:?}");
    }
}
