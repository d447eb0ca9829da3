//! A fresh database per test, on the backend the environment names: with
//! `VINR_TEST_DATABASE_URL=postgres://…` a new PostgreSQL database on that server (dropped when
//! the test lets go of it), otherwise a new SQLite file in a temporary directory. Every URL the
//! suite serves or hands to the binary comes from here, so one suite covers both backends.
//!
//! In PostgreSQL mode an unreachable server fails the test; it never falls back to SQLite.
//! `VINR_REQUIRE_POSTGRES=1` (set by CI) also fails every test when the variable is missing,
//! instead of running the suite on SQLite and the PostgreSQL-only tests not at all.

use std::io::Write;
use std::path::Path;

use tempfile::TempDir;
use tokio_postgres::NoTls;

/// A PostgreSQL URL (`postgres://user@host:port/db`) whose database tests may create others
/// next to it.
pub const DATABASE_URL_VAR: &str = "VINR_TEST_DATABASE_URL";
/// `1` turns a missing or unreachable PostgreSQL into a failure.
pub const REQUIRE_POSTGRES_VAR: &str = "VINR_REQUIRE_POSTGRES";
/// Databases the suite creates are named this plus a random suffix, so a leftover one (from a
/// test killed before it could drop it) is recognisable.
const DATABASE_PREFIX: &str = "vinr_t_";

/// The PostgreSQL URL the tests must use, `None` for SQLite. Panics when PostgreSQL is required
/// but not configured, or when the variable is not a PostgreSQL URL.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty());
    let required = std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|value| value == "1");
    match url {
        Some(url) => {
            assert!(
                url.starts_with("postgres://") || url.starts_with("postgresql://"),
                "{DATABASE_URL_VAR} must be a postgres://user@host:port/db URL, not `{url}`"
            );
            Some(url)
        }
        None if required => panic!(
            "{REQUIRE_POSTGRES_VAR}=1 but {DATABASE_URL_VAR} is not set; set it to \
             postgres://postgres@127.0.0.1:5432/test or similar"
        ),
        None => None,
    }
}

enum Backend {
    /// The database file lives in this directory, removed with it.
    Sqlite(TempDir),
    /// `name` was created through `admin_url` and is dropped through it.
    Postgres { admin_url: String, name: String },
}

/// One test's own database. Dropping it removes it (best effort), so it must outlive every
/// server and process using it.
pub struct TestDatabase {
    pub url: String,
    backend: Backend,
}

/// A fresh, empty database on the configured backend.
pub async fn fresh_database() -> TestDatabase {
    match postgres_url() {
        Some(admin_url) => fresh_postgres(admin_url).await,
        None => fresh_sqlite(),
    }
}

/// For a test that only means something on PostgreSQL (several nodes sharing one database): a
/// fresh PostgreSQL database, or `None` after saying on standard error why the test is skipped.
pub async fn fresh_postgres_database() -> Option<TestDatabase> {
    match postgres_url() {
        Some(admin_url) => Some(fresh_postgres(admin_url).await),
        None => {
            // libtest names each test's thread after the test. Written to the process's
            // standard error rather than with `eprintln!`, which libtest captures and shows only
            // for failures: a skipped test must not look like a passing one.
            let thread = std::thread::current();
            let test = thread.name().unwrap_or("a test");
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: it needs PostgreSQL; set \
                 {DATABASE_URL_VAR}=postgres://postgres@127.0.0.1:5432/test to run it"
            );
            None
        }
    }
}

fn fresh_sqlite() -> TestDatabase {
    let dir = tempfile::tempdir().expect("a temporary directory");
    TestDatabase {
        url: format!("sqlite://{}", dir.path().join("vinr.db").display()),
        backend: Backend::Sqlite(dir),
    }
}

async fn fresh_postgres(admin_url: String) -> TestDatabase {
    let name = format!("{DATABASE_PREFIX}{:016x}", rand::random::<u64>());
    let mut url = url::Url::parse(&admin_url)
        .unwrap_or_else(|error| panic!("{DATABASE_URL_VAR} `{admin_url}`: {error}"));
    url.set_path(&format!("/{name}"));
    // `name` is [a-z0-9_] only, so it needs no quoting.
    admin_execute(&admin_url, &format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|error| panic!("cannot create a test database: {error}"));
    TestDatabase {
        url: url.into(),
        backend: Backend::Postgres { admin_url, name },
    }
}

/// Runs one statement on the database `admin_url` names.
async fn admin_execute(admin_url: &str, statement: &str) -> Result<(), String> {
    let (client, connection) =
        tokio_postgres::connect(admin_url, NoTls)
            .await
            .map_err(|error| {
                // The driver's message alone is "error connecting to server"; its source says why.
                let cause = std::error::Error::source(&error)
                    .map(|source| format!(": {source}"))
                    .unwrap_or_default();
                format!("PostgreSQL at {DATABASE_URL_VAR}={admin_url}: {error}{cause}")
            })?;
    let connection = tokio::spawn(connection);
    let outcome = client
        .batch_execute(statement)
        .await
        .map_err(|error| format!("`{statement}`: {error}"));
    drop(client);
    let _ = connection.await;
    outcome
}

impl TestDatabase {
    /// How many tables the database holds (0 before the first migration).
    pub async fn table_count(&self) -> i64 {
        match &self.backend {
            Backend::Sqlite(dir) => sqlite_table_count(&dir.path().join("vinr.db")),
            Backend::Postgres { .. } => {
                let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
                    .await
                    .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.url));
                tokio::spawn(connection);
                let row = client
                    .query_one(
                        "SELECT count(*) FROM information_schema.tables \
                         WHERE table_schema = current_schema()",
                        &[],
                    )
                    .await
                    .expect("the table count");
                row.get(0)
            }
        }
    }
}

fn sqlite_table_count(path: &Path) -> i64 {
    if !path.exists() {
        return 0;
    }
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the SQLite file opens");
    connection
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .expect("the table count")
}

impl Drop for TestDatabase {
    /// Drops a PostgreSQL database, even one a failed test left connections to. Best effort: a
    /// test must not fail over its clean-up. Runs on a thread with its own runtime because
    /// `Drop` cannot await, and the test's runtime may be shutting down.
    fn drop(&mut self) {
        let Backend::Postgres { admin_url, name } = &self.backend else {
            return;
        };
        let admin_url = admin_url.clone();
        let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let dropping = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(admin_execute(&admin_url, &statement))
        });
        if let Ok(Err(error)) = dropping.join() {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

/// The first column of every row `sql` answers on the database `url` names (SQLite or
/// PostgreSQL): for tests that check what the API cannot show in one place.
async fn query_column<T>(url: &str, sql: &str) -> Vec<T>
where
    T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>,
{
    if let Some(path) = url.strip_prefix("sqlite://") {
        let connection =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("the SQLite file opens");
        let mut statement = connection.prepare(sql).expect("a valid query");
        return statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .unwrap_or_else(|error| panic!("`{sql}`: {error}"));
    }
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    tokio::spawn(connection);
    client
        .query(sql, &[])
        .await
        .unwrap_or_else(|error| panic!("`{sql}`: {error}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Integers (cast sums to BIGINT so both backends answer integers): invariants such as every
/// ledger movement summing to zero.
pub async fn query_integers(url: &str, sql: &str) -> Vec<i64> {
    query_column(url, sql).await
}

/// Text: ids the API does not list in one place, such as every settlement of every account.
pub async fn query_strings(url: &str, sql: &str) -> Vec<String> {
    query_column(url, sql).await
}

/// Runs one writing statement on the database `url` names and answers how many rows it
/// changed: only for tests that damage data on purpose, to show a check notices.
pub async fn execute(url: &str, sql: &str) -> u64 {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).expect("the SQLite file opens");
        // The server's writer may hold the write lock for a batch.
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .expect("a busy timeout");
        let changed = connection
            .execute(sql, [])
            .unwrap_or_else(|error| panic!("`{sql}`: {error}"));
        return changed as u64;
    }
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    tokio::spawn(connection);
    client
        .execute(sql, &[])
        .await
        .unwrap_or_else(|error| panic!("`{sql}`: {error}"))
}

/// [`execute`], answering the database's refusal instead of panicking: for tests that show a
/// constraint holds whatever the code does.
pub async fn try_execute(url: &str, sql: &str) -> Result<u64, String> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let connection = rusqlite::Connection::open(path).map_err(|error| error.to_string())?;
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|error| error.to_string())?;
        return connection
            .execute(sql, [])
            .map(|changed| changed as u64)
            .map_err(|error| error.to_string());
    }
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|error| error.to_string())?;
    tokio::spawn(connection);
    client.execute(sql, &[]).await.map_err(|error| {
        error
            .as_db_error()
            .map_or_else(|| error.to_string(), |db| db.message().to_owned())
    })
}
