//! Versioned migrations for SQLite: each file runs once, in order, in its own transaction, and
//! is recorded in `schema_migrations`. A database newer than this binary is refused.

use rusqlite::Connection;

use super::db_error;
use crate::store::StoreError;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "expiry",
        include_str!("../../../migrations/sqlite/0002_expiry.sql"),
    ),
    (
        3,
        "idempotency_event_answers",
        include_str!("../../../migrations/sqlite/0003_idempotency_event_answers.sql"),
    ),
    (
        4,
        "refunds",
        include_str!("../../../migrations/sqlite/0004_refunds.sql"),
    ),
    (
        5,
        "ledger",
        include_str!("../../../migrations/sqlite/0005_ledger.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../../migrations/sqlite/0006_webhooks.sql"),
    ),
    (
        7,
        "settlements",
        include_str!("../../../migrations/sqlite/0007_settlements.sql"),
    ),
    (
        8,
        "payouts",
        include_str!("../../../migrations/sqlite/0008_payouts.sql"),
    ),
];

/// Applies every migration not yet recorded; answers the versions it applied.
pub fn apply(conn: &mut Connection) -> Result<Vec<i64>, StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(db_error)?;
    let current: i64 = conn
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            [],
            |row| row.get(0),
        )
        .map_err(db_error)?;
    let newest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if current > newest {
        return Err(StoreError::Database(format!(
            "the database is at schema version {current}, newer than this binary's {newest}"
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let tx = conn.transaction().map_err(db_error)?;
        tx.execute_batch(sql).map_err(db_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, CAST(unixepoch('subsec') * 1000 AS INTEGER))",
            rusqlite::params![version, name],
        )
        .map_err(db_error)?;
        tx.commit().map_err(db_error)?;
        tracing::info!(version, name, "applied migration");
        applied.push(*version);
    }
    Ok(applied)
}
