//! The webhook statements of the SQLite backend (SPEC §6). They run on the single writer (or
//! a read-only connection), so a lease needs no row locks: a leased delivery is simply not due
//! again until its lease runs out.

use rusqlite::{params, Connection, OptionalExtension, Row};
use vinr_domain::UnixMillis;

use super::db_error;
use super::rows::{list, Listed};
use crate::store::webhook_rows::{
    encode_events, AttemptRow, EndpointRow, JobRow, ATTEMPT_COLUMNS, ENDPOINT_COLUMNS, JOB_COLUMNS,
};
use crate::store::{
    DeliveryJob, DeliveryNext, EventRecord, ListError, ListQuery, Page, Scope, StoreError,
    WebhookAttemptRecord, WebhookEndpointChanges, WebhookEndpointRecord,
};

fn endpoint_row(row: &Row<'_>) -> rusqlite::Result<EndpointRow> {
    Ok(EndpointRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        url: row.get(3)?,
        description: row.get(4)?,
        events: row.get(5)?,
        secret: row.get(6)?,
        status: row.get(7)?,
        created_at: row.get(8)?,
    })
}

fn attempt_row(row: &Row<'_>) -> rusqlite::Result<AttemptRow> {
    Ok(AttemptRow {
        id: row.get(0)?,
        account_id: row.get(1)?,
        mode: row.get(2)?,
        endpoint_id: row.get(3)?,
        delivery_seq: row.get(4)?,
        event_id: row.get(5)?,
        event_type: row.get(6)?,
        attempt: row.get(7)?,
        succeeded: row.get::<_, i64>(8)? != 0,
        status_code: row.get(9)?,
        latency_ms: row.get(10)?,
        response_excerpt: row.get(11)?,
        error: row.get(12)?,
        next_attempt_at: row.get(13)?,
        created_at: row.get(14)?,
    })
}

fn job_row(row: &Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        seq: row.get(0)?,
        endpoint_id: row.get(1)?,
        url: row.get(2)?,
        secret: row.get(3)?,
        attempts: row.get(4)?,
        created_at: row.get(5)?,
        account_id: row.get(6)?,
        mode: row.get(7)?,
        event_id: row.get(8)?,
        event_type: row.get(9)?,
        event_object_id: row.get(10)?,
        event_data: row.get(11)?,
        event_created_at: row.get(12)?,
    })
}

const ENDPOINTS: Listed<EndpointRow, WebhookEndpointRecord> = Listed {
    table: "webhook_endpoints",
    columns: ENDPOINT_COLUMNS,
    read: endpoint_row,
    convert: EndpointRow::into_record,
};

const ATTEMPTS: Listed<AttemptRow, WebhookAttemptRecord> = Listed {
    table: "webhook_attempts",
    columns: ATTEMPT_COLUMNS,
    read: attempt_row,
    convert: AttemptRow::into_record,
};

/// Endpoints of the event's scope subscribed to its type: the outbox's matching rule.
const MATCHING: &str = "account_id = ?1 AND mode = ?2 AND status = 'enabled'
     AND (events = '*' OR instr(events, ',' || ?3 || ',') > 0)";

pub fn count_endpoints(conn: &Connection, scope: &Scope) -> Result<u64, StoreError> {
    conn.prepare_cached(
        "SELECT count(*) FROM webhook_endpoints WHERE account_id = ?1 AND mode = ?2",
    )
    .and_then(|mut stmt| {
        stmt.query_row(params![scope.account_id, scope.mode.as_str()], |row| {
            row.get::<_, i64>(0)
        })
    })
    .map(|count| u64::try_from(count).unwrap_or_default())
    .map_err(db_error)
}

pub fn insert_endpoint(conn: &Connection, e: &WebhookEndpointRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (id, account_id, mode, url, description, events, secret,
             status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            e.id,
            e.scope.account_id,
            e.scope.mode.as_str(),
            e.url,
            e.description,
            encode_events(&e.events),
            e.secret.expose(),
            if e.enabled { "enabled" } else { "disabled" },
            e.created_at.0
        ])
    })
    .map(drop)
    .map_err(db_error)
}

pub fn update_endpoint(
    conn: &Connection,
    scope: &Scope,
    id: &str,
    changes: &WebhookEndpointChanges,
) -> Result<Option<WebhookEndpointRecord>, StoreError> {
    let status = changes
        .enabled
        .map(|enabled| if enabled { "enabled" } else { "disabled" });
    let events = changes.events.as_deref().map(encode_events);
    let row = conn
        .prepare_cached(&format!(
            "UPDATE webhook_endpoints SET url = coalesce(?4, url), events = coalesce(?5, events),
                 description = coalesce(?6, description), status = coalesce(?7, status)
             WHERE id = ?1 AND account_id = ?2 AND mode = ?3
             RETURNING {ENDPOINT_COLUMNS}"
        ))
        .and_then(|mut stmt| {
            stmt.query_row(
                params![
                    id,
                    scope.account_id,
                    scope.mode.as_str(),
                    changes.url,
                    events,
                    changes.description,
                    status
                ],
                endpoint_row,
            )
            .optional()
        })
        .map_err(db_error)?;
    if row.is_some() && changes.enabled == Some(false) {
        conn.prepare_cached(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1 AND status = 'pending'",
        )
        .and_then(|mut stmt| stmt.execute(params![id]))
        .map_err(db_error)?;
    }
    row.map(EndpointRow::into_record).transpose()
}

pub fn delete_endpoint(conn: &Connection, scope: &Scope, id: &str) -> Result<bool, StoreError> {
    // Deliveries go with the endpoint (ON DELETE CASCADE); attempts are removed here.
    let deleted = conn
        .prepare_cached(
            "DELETE FROM webhook_endpoints WHERE id = ?1 AND account_id = ?2 AND mode = ?3",
        )
        .and_then(|mut stmt| stmt.execute(params![id, scope.account_id, scope.mode.as_str()]))
        .map_err(db_error)?;
    if deleted == 0 {
        return Ok(false);
    }
    conn.prepare_cached("DELETE FROM webhook_attempts WHERE endpoint_id = ?1")
        .and_then(|mut stmt| stmt.execute(params![id]))
        .map_err(db_error)?;
    Ok(true)
}

/// Answers how many deliveries were queued.
pub fn queue_deliveries(conn: &Connection, event: &EventRecord) -> Result<usize, StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, created_at)
         SELECT id, ?4, 'pending', ?5, ?5 FROM webhook_endpoints WHERE {MATCHING}"
    ))
    .and_then(|mut stmt| {
        stmt.execute(params![
            event.scope.account_id,
            event.scope.mode.as_str(),
            event.kind,
            event.id,
            event.created_at.0
        ])
    })
    .map_err(db_error)
}

pub fn requeue_event(
    conn: &Connection,
    event: &EventRecord,
    endpoint_id: Option<&str>,
    now: UnixMillis,
) -> Result<Vec<String>, StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at, created_at)
         SELECT id, ?4, 'pending', ?5, ?5 FROM webhook_endpoints
         WHERE {MATCHING} AND (?6 IS NULL OR id = ?6)
         RETURNING endpoint_id"
    ))
    .and_then(|mut stmt| {
        stmt.query_map(
            params![
                event.scope.account_id,
                event.scope.mode.as_str(),
                event.kind,
                event.id,
                now.0,
                endpoint_id
            ],
            |row| row.get::<_, String>(0),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()
    })
    .map_err(db_error)
}

pub fn lease_deliveries(
    conn: &Connection,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<DeliveryJob>, StoreError> {
    // The single writer runs this: nothing else leases between the read and the update.
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {JOB_COLUMNS}
             FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id
             LEFT JOIN events ev ON ev.id = d.event_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
               AND (d.lease_until IS NULL OR d.lease_until <= ?1)
             ORDER BY d.next_attempt_at LIMIT ?2"
        ))
        .and_then(|mut stmt| {
            stmt.query_map(params![now.0, limit as i64], job_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db_error)?;
    let mut lease = conn
        .prepare_cached("UPDATE webhook_deliveries SET lease_until = ?2 WHERE seq = ?1")
        .map_err(db_error)?;
    for row in &rows {
        lease
            .execute(params![row.seq, lease_until.0])
            .map_err(db_error)?;
    }
    rows.into_iter().map(JobRow::into_job).collect()
}

pub fn record_attempt(
    conn: &Connection,
    a: &WebhookAttemptRecord,
    next: DeliveryNext,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO webhook_attempts (id, account_id, mode, endpoint_id, delivery_seq, event_id,
             event_type, attempt, succeeded, status_code, latency_ms, response_excerpt, error,
             next_attempt_at, created_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?4)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            a.id,
            a.scope.account_id,
            a.scope.mode.as_str(),
            a.endpoint_id,
            a.delivery_seq,
            a.event_id,
            a.event_type,
            i64::from(a.attempt),
            i64::from(a.succeeded),
            a.status_code.map(i64::from),
            i64::try_from(a.latency_ms).unwrap_or(i64::MAX),
            a.response_excerpt,
            a.error,
            a.next_attempt_at.map(|at| at.0),
            a.created_at.0
        ])
    })
    .map_err(db_error)?;
    let Some(seq) = a.delivery_seq else {
        return Ok(());
    };
    let (status, next_at) = match next {
        DeliveryNext::None => return Ok(()),
        DeliveryNext::Succeeded => ("succeeded", None),
        DeliveryNext::Failed => ("failed", None),
        DeliveryNext::RetryAt(at) => ("pending", Some(at.0)),
    };
    // Zero rows when the endpoint (and so the delivery) was deleted meanwhile.
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = attempts + 1,
             next_attempt_at = coalesce(?3, next_attempt_at), lease_until = NULL
         WHERE seq = ?1",
    )
    .and_then(|mut stmt| stmt.execute(params![seq, status, next_at]))
    .map(drop)
    .map_err(db_error)
}

pub fn get_endpoint(
    conn: &Connection,
    scope: &Scope,
    id: &str,
) -> Result<Option<WebhookEndpointRecord>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
         WHERE id = ?1 AND account_id = ?2 AND mode = ?3"
    ))
    .and_then(|mut stmt| {
        stmt.query_row(
            params![id, scope.account_id, scope.mode.as_str()],
            endpoint_row,
        )
        .optional()
    })
    .map_err(db_error)?
    .map(EndpointRow::into_record)
    .transpose()
}

pub fn list_endpoints(
    conn: &Connection,
    scope: &Scope,
    query: &ListQuery,
) -> Result<Page<WebhookEndpointRecord>, ListError> {
    list(conn, &ENDPOINTS, scope, &[], query)
}

pub fn list_attempts(
    conn: &Connection,
    scope: &Scope,
    endpoint_id: &str,
    query: &ListQuery,
) -> Result<Page<WebhookAttemptRecord>, ListError> {
    list(
        conn,
        &ATTEMPTS,
        scope,
        &[("endpoint_id", endpoint_id)],
        query,
    )
}

pub fn queue_depth(conn: &Connection) -> Result<u64, StoreError> {
    conn.prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, i64>(0)))
        .map(|count| u64::try_from(count).unwrap_or_default())
        .map_err(db_error)
}

pub fn endpoints_exist(conn: &Connection) -> Result<bool, StoreError> {
    conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)")
        .and_then(|mut stmt| stmt.query_row([], |row| row.get::<_, bool>(0)))
        .map_err(db_error)
}

pub fn prune_history(
    conn: &Connection,
    before: UnixMillis,
    limit: usize,
) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let deliveries = conn
        .prepare_cached(
            "DELETE FROM webhook_deliveries WHERE seq IN (
                 SELECT seq FROM webhook_deliveries
                 WHERE status <> 'pending' AND created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![before.0, limit]))
        .map_err(db_error)?;
    let attempts = conn
        .prepare_cached(
            "DELETE FROM webhook_attempts WHERE seq IN (
                 SELECT seq FROM webhook_attempts WHERE created_at < ?1 LIMIT ?2)",
        )
        .and_then(|mut stmt| stmt.execute(params![before.0, limit]))
        .map_err(db_error)?;
    Ok(deliveries + attempts)
}
