//! The one query layer: every statement of the store, written once and grouped by table
//! (`payments.rs`, `refunds.rs`, …), each table with its one row reader. Both backends only
//! implement [`Conn`]: run a statement with [`Value`] parameters, answer [`Row`]s.
//!
//! SQL is plain text with `$N` placeholders, which both engines accept (SQLite takes `$1` as a
//! named parameter; the SQLite connection binds each by its number). Where the dialects really
//! differ a statement names a hole that [`Sql`] fills once per dialect: `{for_update}`,
//! `{skip_locked}` (row locks, PostgreSQL only: SQLite's single writer already excludes every
//! other writer) and `{subscribed}` (a substring test, `instr` against `strpos`). Code branches
//! on [`Dialect`] only for what is not one statement on both: PostgreSQL's `unnest` batches
//! and advisory locks, `ctid` pruning and the migrations' bookkeeping.
//!
//! Why plain SQL and not a query builder (sea-query was considered): the statements are fixed
//! text, so a builder would rebuild at run time what is a constant here (each statement is
//! rendered once and then found by the drivers' statement caches by its text), and a reader of
//! this module sees the SQL that runs, which is what one reviews in a database layer.

mod accounts;
mod attempts;
mod dashboard;
mod disputes;
mod events;
mod faults;
mod idempotency;
mod ledger;
mod list;
mod payments;
mod platform_keys;
mod refunds;
mod settlements;
mod webhooks;

use std::borrow::Cow;
use std::sync::OnceLock;

use vinr_domain::{Currency, Mode, UnixMillis};

use super::{Scope, StoreError};

pub use attempts::AttemptRecord;
pub(crate) use list::Listed;

/// Which SQL engine a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement parameter or a column's value. Integers of every width and booleans are `Int`
/// (SQLite stores them so; the PostgreSQL connection converts to the column's type). The array
/// variants are for PostgreSQL's `unnest` batches only.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(Cow<'a, str>),
    Blob(Cow<'a, [u8]>),
    Ints(Vec<Option<i64>>),
    Texts(Vec<Option<String>>),
}

impl Value<'_> {
    /// The same value owning its text (what a deferred statement keeps until it is sent).
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Int(value) => Value::Int(value),
            Value::Text(text) => Value::Text(Cow::Owned(text.into_owned())),
            Value::Blob(bytes) => Value::Blob(Cow::Owned(bytes.into_owned())),
            Value::Ints(values) => Value::Ints(values),
            Value::Texts(values) => Value::Texts(values),
        }
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::Text(Cow::Borrowed(text))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(text: &'a String) -> Self {
        Value::Text(Cow::Borrowed(text))
    }
}

impl From<String> for Value<'_> {
    fn from(text: String) -> Self {
        Value::Text(Cow::Owned(text))
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(bytes: &'a [u8]) -> Self {
        Value::Blob(Cow::Borrowed(bytes))
    }
}

/// Integers of every width and booleans are `Int` (amounts and counts are far below
/// `i64::MAX`).
macro_rules! int_values {
    ($($int:ty),*) => {$(
        impl From<$int> for Value<'_> {
            fn from(value: $int) -> Self {
                Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_values!(i64, u64, usize, u32, u16, u8, bool);

impl From<UnixMillis> for Value<'_> {
    fn from(at: UnixMillis) -> Self {
        Value::Int(at.0)
    }
}

impl From<Mode> for Value<'_> {
    fn from(mode: Mode) -> Self {
        Value::Text(Cow::Borrowed(mode.as_str()))
    }
}

impl From<Currency> for Value<'_> {
    fn from(currency: Currency) -> Self {
        Value::Text(Cow::Borrowed(currency.code()))
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// Statement parameters: `args![a, b, …]` is `[Value::from(a), Value::from(b), …]`.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        [$($crate::store::sql::Value::from($value)),*]
    };
}
pub(crate) use args;

/// How many rows a statement that answers nothing else must change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    Exactly(u64),
    /// Any number (the outbox queues one delivery per matching endpoint, possibly none).
    Any,
}

/// A connection inside a transaction (or a read-only one): what each backend implements.
pub trait Conn {
    fn dialect(&self) -> Dialect;
    /// Runs a statement and answers its rows.
    fn query(&mut self, sql: &str, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;
    /// Runs a statement and answers how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError>;
    /// A statement whose only answer is success. PostgreSQL sends it with the next statement
    /// that answers something, or with the commit (one round trip for several), and answers
    /// `None`; SQLite runs it at once and answers the rows it changed.
    fn defer(&mut self, statement: Deferred<'_>) -> Result<Option<u64>, StoreError>;
    /// Runs several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Runs `statements` one after the other and answers each one's rows. Each sees what the
    /// ones before it did (a statement of its own, with its own snapshot under READ
    /// COMMITTED); PostgreSQL sends them all in one round trip.
    fn query_each(&mut self, statements: &[Query<'_>]) -> Result<Vec<Vec<Row>>, StoreError> {
        statements
            .iter()
            .map(|statement| self.query(statement.sql, statement.params))
            .collect()
    }
}

/// A statement for [`Conn::query_each`].
pub struct Query<'s> {
    pub sql: &'static str,
    pub params: &'s [Value<'s>],
}

/// A statement for [`Conn::defer`]: it must change `changed` rows.
pub struct Deferred<'s> {
    pub sql: &'static str,
    pub params: &'s [Value<'s>],
    pub changed: Changed,
}

/// The error for a deferred statement that changed the wrong number of rows.
pub(crate) fn wrong_row_count(sql: &str, changed: u64, expected: Changed) -> Option<StoreError> {
    match expected {
        Changed::Exactly(rows) if rows != changed => Some(StoreError::Database(format!(
            "`{}` changed {changed} rows, expected {rows}",
            sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
        ))),
        _ => None,
    }
}

/// A statement written once, with holes for what the dialects spell differently; rendered
/// once per dialect on first use. Lives in a `static`.
pub struct Sql {
    text: &'static str,
    rendered: [OnceLock<String>; 2],
}

/// Column lists, shared by every statement that reads a whole row of the table.
const COLUMN_LISTS: &[(&str, &str)] = &[
    ("{payment_columns}", payments::COLUMNS),
    ("{refund_columns}", refunds::COLUMNS),
    ("{dispute_columns}", disputes::COLUMNS),
    ("{event_columns}", events::COLUMNS),
    ("{fault_rule_columns}", faults::COLUMNS),
    ("{api_key_columns}", accounts::API_KEY_COLUMNS),
    ("{platform_key_columns}", platform_keys::COLUMNS),
    ("{account_columns}", accounts::ACCOUNT_COLUMNS),
    ("{balance_transaction_columns}", ledger::COLUMNS),
    ("{settlement_columns}", settlements::COLUMNS),
    ("{endpoint_columns}", webhooks::ENDPOINT_COLUMNS),
    ("{job_columns}", webhooks::JOB_COLUMNS),
];

/// The holes whose text differs per dialect: (hole, SQLite, PostgreSQL).
const DIALECT_HOLES: &[(&str, &str, &str)] = &[
    ("{for_update}", "", " FOR UPDATE"),
    ("{skip_locked}", "", " FOR UPDATE SKIP LOCKED"),
    // How far the test clock of account `$1` runs ahead, for mode `$2` (0 in live mode):
    // what turns an instant on that clock into real time.
    (
        "{clock_offset}",
        "coalesce((SELECT a.test_clock_ms FROM accounts a WHERE a.id = $1 AND $2 = 'test'), 0)",
        "coalesce((SELECT a.test_clock_ms FROM accounts a
                   WHERE a.id = $1 AND CAST($2 AS TEXT) = 'test'), 0)",
    ),
    // `$3`, an event type, within a subscription list `,a,b,`.
    (
        "{subscribed}",
        "instr(events, ',' || $3 || ',') > 0",
        "strpos(events, ',' || CAST($3 AS TEXT) || ',') > 0",
    ),
];

impl Sql {
    pub const fn new(text: &'static str) -> Sql {
        Sql {
            text,
            rendered: [OnceLock::new(), OnceLock::new()],
        }
    }

    pub fn text(&'static self, dialect: Dialect) -> &'static str {
        let slot = match dialect {
            Dialect::Sqlite => 0,
            Dialect::Postgres => 1,
        };
        self.rendered[slot].get_or_init(|| render(self.text, dialect))
    }
}

/// Fills a statement's holes for `dialect`.
pub(crate) fn render(text: &str, dialect: Dialect) -> String {
    let mut sql = text.to_owned();
    for (hole, columns) in COLUMN_LISTS {
        sql = sql.replace(hole, columns);
    }
    for (hole, sqlite, postgres) in DIALECT_HOLES {
        let fill = match dialect {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        };
        sql = sql.replace(hole, fill);
    }
    debug_assert!(!sql.contains('{'), "an unknown hole in {sql}");
    sql
}

/// One row of an answer, read column by column in the order of its `SELECT`.
#[derive(Debug)]
pub struct Row {
    values: std::vec::IntoIter<Value<'static>>,
}

impl Row {
    pub fn new(values: Vec<Value<'static>>) -> Row {
        Row {
            values: values.into_iter(),
        }
    }

    fn next(&mut self, what: &str) -> Result<Value<'static>, StoreError> {
        self.values
            .next()
            .ok_or_else(|| StoreError::Database(format!("a row without its {what} column")))
    }

    pub fn opt_int(&mut self) -> Result<Option<i64>, StoreError> {
        match self.next("integer")? {
            Value::Null => Ok(None),
            Value::Int(value) => Ok(Some(value)),
            other => Err(mismatch("an integer", &other)),
        }
    }

    pub fn int(&mut self) -> Result<i64, StoreError> {
        self.opt_int()?
            .ok_or_else(|| mismatch("an integer", &Value::Null))
    }

    pub fn opt_text(&mut self) -> Result<Option<String>, StoreError> {
        match self.next("text")? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.into_owned())),
            other => Err(mismatch("text", &other)),
        }
    }

    pub fn text(&mut self) -> Result<String, StoreError> {
        self.opt_text()?
            .ok_or_else(|| mismatch("text", &Value::Null))
    }

    /// Bytes from a BLOB/BYTEA or a TEXT column, `None` for NULL.
    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        match self.next("bytes")? {
            Value::Null => Ok(None),
            Value::Blob(bytes) => Ok(Some(bytes.into_owned())),
            Value::Text(text) => Ok(Some(text.into_owned().into_bytes())),
            other => Err(mismatch("bytes", &other)),
        }
    }

    pub fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        self.opt_bytes()?
            .ok_or_else(|| mismatch("bytes", &Value::Null))
    }

    pub fn at(&mut self) -> Result<UnixMillis, StoreError> {
        self.int().map(UnixMillis)
    }

    pub fn opt_at(&mut self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self.opt_int()?.map(UnixMillis))
    }

    pub fn mode(&mut self) -> Result<Mode, StoreError> {
        let text = self.text()?;
        Mode::parse(&text).ok_or_else(|| corrupt("mode", &text))
    }

    pub fn currency(&mut self) -> Result<Currency, StoreError> {
        let text = self.text()?;
        Currency::parse(&text).ok_or_else(|| corrupt("currency", &text))
    }

    /// A non-negative integer column as minor units or a count (the schemas' CHECKs keep
    /// them so).
    pub fn minor(&mut self) -> Result<u64, StoreError> {
        let value = self.int()?;
        u64::try_from(value).map_err(|_| corrupt("amount", &value.to_string()))
    }

    /// An enum stored as its text, read back through `parse`.
    pub fn parsed<T>(&mut self, what: &str, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
        let text = self.text()?;
        parse(&text).ok_or_else(|| corrupt(what, &text))
    }

    pub fn opt_parsed<T>(
        &mut self,
        what: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        self.opt_text()?
            .map(|text| parse(&text).ok_or_else(|| corrupt(what, &text)))
            .transpose()
    }

    /// The `(account_id, mode)` pair that starts most rows.
    pub fn scope(&mut self) -> Result<Scope, StoreError> {
        Ok(Scope {
            account_id: self.text()?,
            mode: self.mode()?,
        })
    }
}

fn mismatch(wanted: &str, found: &Value<'_>) -> StoreError {
    let found = match found {
        Value::Null => "NULL",
        Value::Int(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "bytes",
        Value::Ints(_) | Value::Texts(_) => "an array",
    };
    StoreError::Database(format!("expected {wanted} in the database, found {found}"))
}

/// A value in the database that no version of this server writes.
pub fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Database(format!("unexpected {what} `{value}` in the database"))
}

/// The write side: everything a flow may do inside its transaction. The methods live with
/// their tables' statements.
pub struct Tx<'c> {
    conn: &'c mut dyn Conn,
    /// The event this flow wrote last (id, snapshot): an idempotent answer equal to the
    /// snapshot is stored as a reference to it.
    last_event: Option<(String, String)>,
    /// This flow may have queued webhook deliveries: wake the delivery worker after the commit.
    queued_deliveries: bool,
    /// The `balance_totals` slot this flow books into, once it has booked.
    balance_slot: Option<u64>,
    /// This flow may have changed what a key lookup answers (a key, a test clock, fault
    /// rules): the engine tells this process's key cache after the commit (other processes
    /// learn it from the database, migration 0015).
    auth_changed: bool,
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c mut dyn Conn) -> Tx<'c> {
        Tx {
            conn,
            last_event: None,
            queued_deliveries: false,
            balance_slot: None,
            auth_changed: false,
        }
    }

    /// Whether the flow may have changed what a key lookup answers.
    pub(crate) fn auth_changed(&self) -> bool {
        self.auth_changed
    }

    /// Whether the flow may have queued deliveries (the engine wakes the worker after commit).
    pub(crate) fn queued_deliveries(&self) -> bool {
        self.queued_deliveries
    }

    fn execute(&mut self, statement: &'static Sql, params: &[Value<'_>]) -> Answer<u64> {
        self.conn
            .execute(statement.text(self.conn.dialect()), params)
    }

    fn defer(
        &mut self,
        statement: &'static Sql,
        params: &[Value<'_>],
        changed: Changed,
    ) -> Result<(), StoreError> {
        self.defer_counted(statement, params, changed).map(drop)
    }

    /// [`Conn::defer`]: the rows changed when the statement ran at once.
    fn defer_counted(
        &mut self,
        statement: &'static Sql,
        params: &[Value<'_>],
        changed: Changed,
    ) -> Result<Option<u64>, StoreError> {
        let sql = statement.text(self.conn.dialect());
        self.conn.defer(Deferred {
            sql,
            params,
            changed,
        })
    }
}

/// The read side: committed data only. The methods live with their tables' statements.
pub struct Reader<'c> {
    conn: &'c mut dyn Conn,
}

impl<'c> Reader<'c> {
    pub(crate) fn new(conn: &'c mut dyn Conn) -> Reader<'c> {
        Reader { conn }
    }

    pub fn ping(&mut self) -> Result<(), StoreError> {
        static PING: Sql = Sql::new("SELECT count(*) FROM schema_migrations");
        self.query(&PING, &[]).map(drop)
    }
}

/// A read that is one statement: its SQL, its parameters and how its rows become the answer.
/// PostgreSQL runs it on the async runtime, with no blocking thread and no `block_on`
/// (`PgStore::read_one`); SQLite as any other read, through [`Reader::one`].
pub struct OneRead<T> {
    statement: &'static Sql,
    params: Vec<Value<'static>>,
    answer: Box<dyn FnOnce(Vec<Row>) -> Result<T, StoreError> + Send>,
}

impl<T> OneRead<T> {
    fn new(
        statement: &'static Sql,
        params: &[Value<'_>],
        answer: impl FnOnce(Vec<Row>) -> Result<T, StoreError> + Send + 'static,
    ) -> OneRead<T> {
        OneRead {
            statement,
            params: params.iter().cloned().map(Value::into_owned).collect(),
            answer: Box::new(answer),
        }
    }

    pub(crate) fn sql(&self, dialect: Dialect) -> &'static str {
        self.statement.text(dialect)
    }

    pub(crate) fn params(&self) -> &[Value<'static>] {
        &self.params
    }

    /// The answer, of the rows the statement answered.
    pub(crate) fn answer(self, rows: Vec<Row>) -> Result<T, StoreError> {
        (self.answer)(rows)
    }
}

impl Reader<'_> {
    /// Runs a one-statement read on this connection.
    pub fn one<T>(&mut self, read: OneRead<T>) -> Result<T, StoreError> {
        let rows = self
            .conn
            .query(read.sql(self.conn.dialect()), read.params())?;
        read.answer(rows)
    }
}

type Answer<T> = Result<T, StoreError>;

/// Running a [`Sql`] statement on the connection of a [`Tx`] or a [`Reader`].
trait Run {
    fn conn(&mut self) -> &mut dyn Conn;

    fn query(&mut self, statement: &'static Sql, params: &[Value<'_>]) -> Answer<Vec<Row>> {
        let conn = self.conn();
        conn.query(statement.text(conn.dialect()), params)
    }

    fn query_opt(&mut self, statement: &'static Sql, params: &[Value<'_>]) -> Answer<Option<Row>> {
        Ok(self.query(statement, params)?.into_iter().next())
    }
}

impl Run for Tx<'_> {
    fn conn(&mut self) -> &mut dyn Conn {
        self.conn
    }
}

impl Run for Reader<'_> {
    fn conn(&mut self) -> &mut dyn Conn {
        self.conn
    }
}

/// A `count(*)` answer.
fn count(row: Option<Row>) -> Result<u64, StoreError> {
    let mut row = row.ok_or_else(|| StoreError::Database("count answered no row".into()))?;
    Ok(u64::try_from(row.int()?).unwrap_or_default())
}

/// Reads every row with `read`.
fn rows<T>(
    rows: Vec<Row>,
    read: fn(&mut Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(|mut row| read(&mut row)).collect()
}

/// Reads the first row, if any, with `read`.
fn first<T>(
    row: Option<Row>,
    read: fn(&mut Row) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    row.map(|mut row| read(&mut row)).transpose()
}

#[cfg(test)]
mod tests {
    use super::{render, Dialect};

    #[test]
    fn holes_are_filled_per_dialect() {
        let text = "SELECT {refund_columns} FROM refunds WHERE id = $1{for_update}";
        let sqlite = render(text, Dialect::Sqlite);
        let postgres = render(text, Dialect::Postgres);
        assert!(sqlite.starts_with("SELECT id, account_id, mode, payment_id"));
        assert!(sqlite.ends_with("WHERE id = $1"), "{sqlite}");
        assert!(postgres.ends_with("WHERE id = $1 FOR UPDATE"), "{postgres}");
    }
}
