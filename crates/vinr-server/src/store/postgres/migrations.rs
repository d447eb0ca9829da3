//! Versioned migrations for PostgreSQL: each file runs once, in order, in its own transaction,
//! recorded in `schema_migrations`. The whole run holds a session advisory lock, so nodes that
//! start together apply each migration exactly once.

use super::db_error;
use crate::store::StoreError;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "expiry",
        include_str!("../../../migrations/postgres/0002_expiry.sql"),
    ),
    (
        3,
        "idempotency_event_answers",
        include_str!("../../../migrations/postgres/0003_idempotency_event_answers.sql"),
    ),
    (
        4,
        "refunds",
        include_str!("../../../migrations/postgres/0004_refunds.sql"),
    ),
    (
        5,
        "ledger",
        include_str!("../../../migrations/postgres/0005_ledger.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../../../migrations/postgres/0006_webhooks.sql"),
    ),
    (
        7,
        "settlements",
        include_str!("../../../migrations/postgres/0007_settlements.sql"),
    ),
    (
        8,
        "payouts",
        include_str!("../../../migrations/postgres/0008_payouts.sql"),
    ),
];

/// Advisory lock key of the migration run ("vinr mig" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x7669_6e72_206d_6967;

pub async fn apply(client: &mut deadpool_postgres::Client) -> Result<Vec<i64>, StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(db_error)?;
    let applied = apply_locked(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(db_error);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

async fn apply_locked(client: &mut deadpool_postgres::Client) -> Result<Vec<i64>, StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    BIGINT PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(db_error)?;
    let current: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if current > newest {
        return Err(StoreError::Database(format!(
            "the database is at schema version {current}, newer than this binary's {newest}"
        )));
    }
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > current) {
        let tx = client.transaction().await.map_err(db_error)?;
        tx.batch_execute(sql).await.map_err(db_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        tracing::info!(version, name, "applied migration");
        applied.push(*version);
    }
    Ok(applied)
}
