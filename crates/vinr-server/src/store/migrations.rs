//! Versioned migrations: one list of versions for both databases. Each runs once, in order,
//! in its own transaction, and is recorded in `schema_migrations`; a database newer than this
//! binary is refused. A version has one file in `migrations/common/` when its DDL is the same
//! on both, else one per dialect (types such as `BIGSERIAL`/`BYTEA`, table rebuilds SQLite
//! needs to change a CHECK).

use super::sql::{Conn, Dialect, Value};
use super::StoreError;

/// A version's DDL: the same text for both, or one per dialect.
enum Ddl {
    Common(&'static str),
    PerDialect {
        sqlite: &'static str,
        postgres: &'static str,
    },
}

macro_rules! common {
    ($file:literal) => {
        Ddl::Common(include_str!(concat!("../../migrations/common/", $file)))
    };
}

macro_rules! per_dialect {
    ($file:literal) => {
        Ddl::PerDialect {
            sqlite: include_str!(concat!("../../migrations/sqlite/", $file)),
            postgres: include_str!(concat!("../../migrations/postgres/", $file)),
        }
    };
}

const MIGRATIONS: &[(i64, &str, Ddl)] = &[
    (1, "init", per_dialect!("0001_init.sql")),
    (2, "expiry", common!("0002_expiry.sql")),
    (
        3,
        "idempotency_event_answers",
        common!("0003_idempotency_event_answers.sql"),
    ),
    (4, "refunds", per_dialect!("0004_refunds.sql")),
    (5, "ledger", per_dialect!("0005_ledger.sql")),
    (6, "webhooks", per_dialect!("0006_webhooks.sql")),
    (7, "settlements", per_dialect!("0007_settlements.sql")),
    (8, "payouts", per_dialect!("0008_payouts.sql")),
    (9, "balance_totals", common!("0009_balance_totals.sql")),
    (10, "platform_keys", per_dialect!("0010_platform_keys.sql")),
    (11, "test_clocks", common!("0011_test_clocks.sql")),
    (12, "disputes", per_dialect!("0012_disputes.sql")),
    (13, "fault_rules", per_dialect!("0013_fault_rules.sql")),
    (14, "webhook_faults", common!("0014_webhook_faults.sql")),
    (15, "auth_version", per_dialect!("0015_auth_version.sql")),
    (
        16,
        "dashboard_sessions",
        common!("0016_dashboard_sessions.sql"),
    ),
    (17, "connectors", common!("0017_connectors.sql")),
    (
        18,
        "webhook_request_headers",
        common!("0018_webhook_request_headers.sql"),
    ),
    (
        19,
        "processor_claim_owner",
        common!("0019_processor_claim_owner.sql"),
    ),
    (
        20,
        "partial_claim_index",
        common!("0020_partial_claim_index.sql"),
    ),
];

impl Ddl {
    fn text(&self, dialect: Dialect) -> &'static str {
        match (self, dialect) {
            (Ddl::Common(sql), _) => sql,
            (Ddl::PerDialect { sqlite, .. }, Dialect::Sqlite) => sqlite,
            (Ddl::PerDialect { postgres, .. }, Dialect::Postgres) => postgres,
        }
    }
}

/// Advisory lock key of a PostgreSQL migration run ("vinr mig" in ASCII), so that nodes
/// starting together do not race. (SQLite migrates on the writer connection before the
/// writer starts; a second process waits on the database lock.)
const MIGRATION_LOCK_KEY: i64 = 0x7669_6e72_206d_6967;

/// Applies every migration not yet recorded; answers the versions it applied.
pub(super) fn apply(conn: &mut dyn Conn) -> Result<Vec<i64>, StoreError> {
    if conn.dialect() == Dialect::Sqlite {
        return apply_unlocked(conn);
    }
    let key = [Value::Int(MIGRATION_LOCK_KEY)];
    conn.query("SELECT pg_advisory_lock($1)", &key)?;
    let applied = apply_unlocked(conn);
    let unlocked = conn.query("SELECT pg_advisory_unlock($1)", &key);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

fn apply_unlocked(conn: &mut dyn Conn) -> Result<Vec<i64>, StoreError> {
    let dialect = conn.dialect();
    conn.batch(match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at INTEGER NOT NULL
             )"
        }
        Dialect::Postgres => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )"
        }
    })?;
    let current = conn
        .query(
            "SELECT CAST(coalesce(max(version), 0) AS BIGINT) FROM schema_migrations",
            &[],
        )?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Database("max(version) answered no row".into()))?
        .int()?;
    let newest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if current > newest {
        return Err(StoreError::Database(format!(
            "the database is at schema version {current}, newer than this binary's {newest}"
        )));
    }
    let record = match dialect {
        Dialect::Sqlite => {
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES ($1, $2, CAST(unixepoch('subsec') * 1000 AS INTEGER))"
        }
        Dialect::Postgres => "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
    };
    let mut applied = Vec::new();
    for (version, name, ddl) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        conn.batch("BEGIN")?;
        let ran = conn.batch(ddl.text(dialect)).and_then(|()| {
            conn.execute(record, &[Value::Int(*version), Value::from(*name)])?;
            conn.batch("COMMIT")
        });
        if let Err(error) = ran {
            let _ = conn.batch("ROLLBACK");
            return Err(error);
        }
        tracing::info!(version, name, "applied migration");
        applied.push(*version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_are_consecutive_from_one() {
        for (index, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, index as i64 + 1);
        }
    }
}
