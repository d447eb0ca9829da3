//! Webhook endpoints, the delivery outbox and delivery attempts (SPEC §6). The outbox insert
//! is deferred (on PostgreSQL pipelined with the flow's other writes: no extra round trip per
//! event). Deliveries are leased: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so nodes
//! leasing at the same time take disjoint rows; on SQLite the single writer leases, so a
//! leased delivery is simply not due again until its lease runs out.
//!
//! Test-mode faults on purpose (SPEC §12) live here too: an endpoint's `faults` (JSON, read
//! back through the domain's checks, never in live mode), each attempt's `fault`, and the
//! `held_at` mark of a delivery held back for a later one (`outOfOrder`), with the statements
//! that hold, find and release it.

use std::collections::BTreeMap;

use vinr_domain::webhook::{WebhookFault, WebhookFaults};
use vinr_domain::{Mode, UnixMillis};

use super::{
    args, corrupt, count, first, rows, Changed, Dialect, Listed, Reader, Row, Run, Sql, Tx, Value,
};
use crate::redacted::Redacted;
use crate::store::{
    AttemptOutcome, DeliveryJob, DeliveryNext, EventRecord, ListError, ListQuery, Page, Scope,
    StoreError, WebhookAttemptRecord, WebhookEndpointChanges, WebhookEndpointRecord,
};
use crate::webhooks::{decode_faults, encode_faults};

pub const ENDPOINT_COLUMNS: &str =
    "id, account_id, mode, url, description, events, secret, status, created_at, faults";

pub const ATTEMPT_COLUMNS: &str = "id, account_id, mode, endpoint_id, delivery_seq, event_id, \
    event_type, attempt, succeeded, status_code, latency_ms, response_excerpt, error, \
    next_attempt_at, created_at, fault, request_headers";

/// The columns of a leased delivery joined with its endpoint and event, in order.
pub const JOB_COLUMNS: &str = "d.seq, d.endpoint_id, e.url, e.secret, d.attempts, d.created_at, \
    e.account_id, e.mode, ev.id, ev.type, ev.object_id, ev.data, ev.created_at, \
    (SELECT a.test_clock_ms FROM accounts a WHERE a.id = e.account_id AND e.mode = 'test'), \
    e.faults, d.held_at";

/// `*` for every type, else the types between commas, so that one substring test matches a
/// type exactly: `,payment.completed,refund.created,`.
fn encode_events(events: &[String]) -> String {
    if events.is_empty() {
        return "*".to_owned();
    }
    format!(",{},", events.join(","))
}

fn decode_events(text: &str) -> Vec<String> {
    if text == "*" {
        return Vec::new();
    }
    text.split(',')
        .filter(|kind| !kind.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An attempt's request headers as stored: a JSON object, NULL when none were sent.
fn encode_headers(headers: &BTreeMap<String, String>) -> Option<String> {
    (!headers.is_empty()).then(|| serde_json::to_string(headers).unwrap_or_default())
}

fn decode_headers(text: Option<String>) -> Result<BTreeMap<String, String>, StoreError> {
    match text {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(&text).map_err(|_| corrupt("request headers", &text)),
    }
}

fn status(enabled: bool) -> &'static str {
    if enabled {
        "enabled"
    } else {
        "disabled"
    }
}

/// Stored faults: `None` for none, and always in live mode (which never carries any).
fn faults(row: &mut Row, mode: Mode) -> Result<Option<WebhookFaults>, StoreError> {
    let Some(text) = row.opt_text()? else {
        return Ok(None);
    };
    // Faults are for tests: ones that no longer read as this version's (an older row, a
    // newer node's) are dropped with a warning rather than failing every lease of every account.
    let Some(faults) = decode_faults(&text) else {
        tracing::warn!(stored = %text, "ignoring webhook faults this version cannot read");
        return Ok(None);
    };
    Ok(faults.filter(|_| mode == Mode::Test))
}

/// The endpoint row reader: the columns of [`ENDPOINT_COLUMNS`], in order.
fn endpoint(row: &mut Row) -> Result<WebhookEndpointRecord, StoreError> {
    let mut endpoint = WebhookEndpointRecord {
        id: row.text()?,
        scope: row.scope()?,
        url: row.text()?,
        description: row.opt_text()?,
        events: decode_events(&row.text()?),
        secret: Redacted::new(row.text()?),
        enabled: row.parsed("webhook status", |status| match status {
            "enabled" => Some(true),
            "disabled" => Some(false),
            _ => None,
        })?,
        created_at: row.at()?,
        faults: None,
    };
    endpoint.faults = faults(row, endpoint.scope.mode)?;
    Ok(endpoint)
}

/// The attempt row reader: the columns of [`ATTEMPT_COLUMNS`], in order.
fn attempt(row: &mut Row) -> Result<WebhookAttemptRecord, StoreError> {
    Ok(WebhookAttemptRecord {
        id: row.text()?,
        scope: row.scope()?,
        endpoint_id: row.text()?,
        delivery_seq: row.opt_int()?,
        event_id: row.text()?,
        event_type: row.text()?,
        attempt: {
            let attempt = row.int()?;
            u32::try_from(attempt).map_err(|_| corrupt("attempt", &attempt.to_string()))?
        },
        succeeded: row.int()? != 0,
        status_code: row
            .opt_int()?
            .map(|code| u16::try_from(code).map_err(|_| corrupt("status code", &code.to_string())))
            .transpose()?,
        latency_ms: u64::try_from(row.int()?).unwrap_or_default(),
        response_excerpt: row.opt_text()?,
        error: row.opt_text()?,
        next_attempt_at: row.opt_at()?,
        created_at: row.at()?,
        fault: row
            .opt_text()?
            .map(|text| WebhookFault::parse(&text).ok_or_else(|| corrupt("fault", &text)))
            .transpose()?,
        request_headers: decode_headers(row.opt_text()?)?,
    })
}

/// The leased-delivery reader: the columns of [`JOB_COLUMNS`], in order.
fn job(row: &mut Row) -> Result<DeliveryJob, StoreError> {
    let delivery_seq = row.int()?;
    let endpoint_id = row.text()?;
    let url = row.text()?;
    let secret = Redacted::new(row.text()?);
    let attempts = u32::try_from(row.int()?).unwrap_or(u32::MAX);
    let queued_at = row.at()?;
    let scope = row.scope()?;
    let event = match (
        row.opt_text()?,
        row.opt_text()?,
        row.opt_text()?,
        row.opt_text()?,
        row.opt_at()?,
    ) {
        (Some(id), Some(kind), Some(object_id), Some(data), Some(created_at)) => {
            Some(EventRecord {
                id,
                scope: scope.clone(),
                kind,
                object_id,
                data,
                created_at,
            })
        }
        // The event is gone (pruned after 30 days): the delivery fails unsent.
        _ => None,
    };
    let clock_offset_ms = row.opt_int()?.unwrap_or(0);
    let faults = faults(row, scope.mode)?;
    let held = row.opt_int()?.is_some();
    Ok(DeliveryJob {
        delivery_seq,
        endpoint_id,
        url,
        secret,
        event,
        scope,
        attempts,
        queued_at,
        clock_offset_ms,
        faults,
        held,
        releases: None,
    })
}

const ENDPOINTS: Listed<WebhookEndpointRecord> = Listed {
    table: "webhook_endpoints",
    columns: ENDPOINT_COLUMNS,
    read: endpoint,
};

const ATTEMPTS: Listed<WebhookAttemptRecord> = Listed {
    table: "webhook_attempts",
    columns: ATTEMPT_COLUMNS,
    read: attempt,
};

impl Tx<'_> {
    pub fn count_webhook_endpoints(&mut self, scope: &Scope) -> Result<u64, StoreError> {
        static COUNT: Sql =
            Sql::new("SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND mode = $2");
        count(self.query_opt(&COUNT, &args![&scope.account_id, scope.mode])?)
    }

    pub fn insert_webhook_endpoint(&mut self, e: &WebhookEndpointRecord) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO webhook_endpoints (id, account_id, mode, url, description, events,
                 secret, status, created_at, faults)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        );
        let params = args![
            &e.id,
            &e.scope.account_id,
            e.scope.mode,
            &e.url,
            e.description.as_ref(),
            encode_events(&e.events),
            e.secret.expose(),
            status(e.enabled),
            e.created_at,
            e.faults.as_ref().map(encode_faults),
        ];
        self.defer(&INSERT, &params, Changed::Exactly(1))
    }

    /// Applies `changes` to an endpoint of `scope`; disabling it also drops its queued
    /// deliveries. Answers the endpoint after the change, `None` when there is no such one.
    pub fn update_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
        changes: &WebhookEndpointChanges,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        static UPDATE: Sql = Sql::new(
            "UPDATE webhook_endpoints SET url = coalesce($4, url),
                 events = coalesce($5, events), description = coalesce($6, description),
                 status = coalesce($7, status),
                 faults = CASE WHEN CAST($8 AS BIGINT) = 1 THEN CAST($9 AS TEXT) ELSE faults END
             WHERE id = $1 AND account_id = $2 AND mode = $3
             RETURNING {endpoint_columns}",
        );
        static DROP_QUEUED: Sql = Sql::new(
            "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'",
        );
        let params = args![
            id,
            &scope.account_id,
            scope.mode,
            changes.url.as_ref(),
            changes.events.as_deref().map(encode_events),
            changes.description.as_ref(),
            changes.enabled.map(status),
            i64::from(changes.faults.is_some()),
            changes.faults.flatten().as_ref().map(encode_faults),
        ];
        let updated = first(self.query_opt(&UPDATE, &params)?, endpoint)?;
        if updated.is_some() && changes.enabled == Some(false) {
            self.defer(&DROP_QUEUED, &args![id], Changed::Any)?;
        }
        Ok(updated)
    }

    /// Deletes an endpoint with its queued deliveries (ON DELETE CASCADE) and its attempts;
    /// answers whether it existed.
    pub fn delete_webhook_endpoint(&mut self, scope: &Scope, id: &str) -> Result<bool, StoreError> {
        static DELETE: Sql = Sql::new(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2 AND mode = $3",
        );
        static DELETE_ATTEMPTS: Sql =
            Sql::new("DELETE FROM webhook_attempts WHERE endpoint_id = $1");
        if self.execute(&DELETE, &args![id, &scope.account_id, scope.mode])? == 0 {
            return Ok(false);
        }
        self.defer(&DELETE_ATTEMPTS, &args![id], Changed::Any)?;
        Ok(true)
    }

    /// The outbox: queues `event` for every enabled endpoint of its scope subscribed to its
    /// type, due at once, in one `INSERT … SELECT`.
    pub fn queue_webhook_deliveries(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        static QUEUE: Sql = Sql::new(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at,
                 created_at)
             SELECT id, $4, 'pending', $5 - {clock_offset}, $5 - {clock_offset}
             FROM webhook_endpoints
             WHERE account_id = $1 AND mode = $2 AND status = 'enabled'
               AND (events = '*' OR {subscribed})",
        );
        let params = args![
            &event.scope.account_id,
            event.scope.mode,
            &event.kind,
            &event.id,
            event.created_at,
        ];
        // Deferred, whether any row matched is known only at the commit; waking the worker
        // for nothing costs it one empty lease.
        let queued = self.defer_counted(&QUEUE, &params, Changed::Any)?;
        self.queued_deliveries |= queued.is_none_or(|rows| rows > 0);
        Ok(())
    }

    /// Queues `event` again for its matching endpoints (only `endpoint_id` when given, which
    /// must then exist and be enabled); answers the endpoint ids queued.
    pub fn requeue_webhook_event(
        &mut self,
        event: &EventRecord,
        endpoint_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<Vec<String>, StoreError> {
        static REQUEUE: Sql = Sql::new(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at,
                 created_at)
             SELECT id, $4, 'pending', $5 - {clock_offset}, $5 - {clock_offset}
             FROM webhook_endpoints
             WHERE account_id = $1 AND mode = $2 AND status = 'enabled'
               AND (events = '*' OR {subscribed})
               AND (CAST($6 AS TEXT) IS NULL OR id = $6)
             RETURNING endpoint_id",
        );
        let params = args![
            &event.scope.account_id,
            event.scope.mode,
            &event.kind,
            &event.id,
            now,
            endpoint_id,
        ];
        let queued = rows(self.query(&REQUEUE, &params)?, Row::text)?;
        self.queued_deliveries |= !queued.is_empty();
        Ok(queued)
    }

    /// Brings every pending delivery of `account_id`'s test mode `ms` earlier: deliveries are
    /// scheduled on real time, so when that account's clock moves `ms` ahead, what it had due
    /// within `ms` is due now (in the same order), and the worker is woken.
    pub fn advance_webhook_schedule(
        &mut self,
        account_id: &str,
        ms: i64,
    ) -> Result<(), StoreError> {
        static SHIFT: Sql = Sql::new(
            "UPDATE webhook_deliveries SET next_attempt_at = next_attempt_at - $2
             WHERE status = 'pending' AND endpoint_id IN (
                 SELECT id FROM webhook_endpoints WHERE account_id = $1 AND mode = 'test')",
        );
        if self.execute(&SHIFT, &args![account_id, ms])? > 0 {
            self.queued_deliveries = true;
        }
        Ok(())
    }

    /// Leases up to `limit` due deliveries of existing endpoints until `lease_until`: one
    /// attempt at a time for each, on any number of nodes.
    pub fn lease_webhook_deliveries(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        // PostgreSQL: one statement, the lease and the read, skipping rows other nodes lease.
        static LEASE_POSTGRES: Sql = Sql::new(
            "WITH d AS (
                 UPDATE webhook_deliveries SET lease_until = $2 WHERE seq IN (
                     SELECT seq FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= $1
                       AND (lease_until IS NULL OR lease_until <= $1)
                     ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING seq, endpoint_id, event_id, attempts, created_at, held_at)
             SELECT {job_columns}
             FROM d JOIN webhook_endpoints e ON e.id = d.endpoint_id
             LEFT JOIN events ev ON ev.id = d.event_id",
        );
        // SQLite has no UPDATE in a WITH; the single writer runs this, so nothing else leases
        // between the read and the update.
        static DUE_SQLITE: Sql = Sql::new(
            "SELECT {job_columns}
             FROM webhook_deliveries d
             JOIN webhook_endpoints e ON e.id = d.endpoint_id
             LEFT JOIN events ev ON ev.id = d.event_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1
               AND (d.lease_until IS NULL OR d.lease_until <= $1)
             ORDER BY d.next_attempt_at LIMIT $3",
        );
        static LEASE_ONE: Sql =
            Sql::new("UPDATE webhook_deliveries SET lease_until = $2 WHERE seq = $1");
        let params = args![now, lease_until, limit];
        if self.conn.dialect() == Dialect::Postgres {
            return rows(self.query(&LEASE_POSTGRES, &params)?, job);
        }
        let jobs = rows(self.query(&DUE_SQLITE, &params)?, job)?;
        for job in &jobs {
            let lease = args![job.delivery_seq, lease_until];
            self.defer(&LEASE_ONE, &lease, Changed::Exactly(1))?;
        }
        Ok(jobs)
    }

    /// Records attempts and what each means for its delivery (none for `webhook.test`). An
    /// attempt for an endpoint or a delivery deleted meanwhile (a test-mode reset) is dropped.
    pub fn record_webhook_attempts(
        &mut self,
        outcomes: &[AttemptOutcome],
    ) -> Result<(), StoreError> {
        match self.conn.dialect() {
            // Cached prepared statements on an in-process database: a loop is as cheap as a
            // batch.
            Dialect::Sqlite => outcomes
                .iter()
                .try_for_each(|outcome| self.record_attempt(&outcome.attempt, outcome.next))?,
            Dialect::Postgres => self.record_attempts_batch(outcomes)?,
        }
        // After the attempts: a held delivery comes due only once the later one's attempt
        // is recorded (`outOfOrder`).
        for (seq, at) in outcomes.iter().filter_map(|o| o.release) {
            self.release_held_webhook_delivery(seq, at)?;
        }
        Ok(())
    }

    /// Makes the held delivery `seq` due at `at` unless it was attempted or came due already.
    fn release_held_webhook_delivery(
        &mut self,
        seq: i64,
        at: UnixMillis,
    ) -> Result<(), StoreError> {
        static RELEASE: Sql = Sql::new(
            "UPDATE webhook_deliveries SET next_attempt_at = $2
             WHERE seq = $1 AND status = 'pending' AND attempts = 0 AND held_at IS NOT NULL
               AND next_attempt_at > $2",
        );
        self.queued_deliveries = true;
        self.defer(&RELEASE, &args![seq, at], Changed::Any)
    }

    /// The held delivery of `endpoint_id` older than delivery `seq`, still waiting at `now`
    /// for a later one that no other delivery claimed yet (`outOfOrder`), the oldest if
    /// several; claimed for `seq`, which releases it once its own attempt is recorded.
    pub fn claim_held_webhook_delivery(
        &mut self,
        endpoint_id: &str,
        seq: i64,
        now: UnixMillis,
    ) -> Result<Option<i64>, StoreError> {
        static HELD: Sql = Sql::new(
            "SELECT seq FROM webhook_deliveries
             WHERE endpoint_id = $1 AND held_at IS NOT NULL AND status = 'pending'
               AND attempts = 0 AND next_attempt_at > $2 AND released_by IS NULL
               AND seq < $3
             ORDER BY seq LIMIT 1",
        );
        static CLAIM: Sql =
            Sql::new("UPDATE webhook_deliveries SET released_by = $2 WHERE seq = $1");
        let held = first(
            self.query_opt(&HELD, &args![endpoint_id, now, seq])?,
            Row::int,
        )?;
        if let Some(held) = held {
            self.defer(&CLAIM, &args![held, seq], Changed::Exactly(1))?;
        }
        Ok(held)
    }

    /// Holds a leased, never attempted delivery back until `until` (`outOfOrder`), and gives
    /// its lease up.
    pub fn hold_webhook_delivery(
        &mut self,
        seq: i64,
        now: UnixMillis,
        until: UnixMillis,
    ) -> Result<(), StoreError> {
        static HOLD: Sql = Sql::new(
            "UPDATE webhook_deliveries SET held_at = $2, next_attempt_at = $3, lease_until = NULL
             WHERE seq = $1",
        );
        self.execute(&HOLD, &args![seq, now, until]).map(drop)
    }

    /// Lengthens the lease of a leased delivery to `lease_until` (an attempt that waits on
    /// purpose, or sends twice).
    pub fn extend_webhook_lease(
        &mut self,
        seq: i64,
        lease_until: UnixMillis,
    ) -> Result<(), StoreError> {
        static EXTEND: Sql =
            Sql::new("UPDATE webhook_deliveries SET lease_until = $2 WHERE seq = $1");
        self.defer(&EXTEND, &args![seq, lease_until], Changed::Exactly(1))
    }

    fn record_attempt(
        &mut self,
        a: &WebhookAttemptRecord,
        next: DeliveryNext,
    ) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO webhook_attempts (id, account_id, mode, endpoint_id, delivery_seq,
                 event_id, event_type, attempt, succeeded, status_code, latency_ms,
                 response_excerpt, error, next_attempt_at, created_at, fault, request_headers)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $4)
               AND ($5 IS NULL OR EXISTS (SELECT 1 FROM webhook_deliveries WHERE seq = $5))",
        );
        static UPDATE: Sql = Sql::new(
            "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1,
                 next_attempt_at = coalesce($3, next_attempt_at), lease_until = NULL
             WHERE seq = $1",
        );
        let params = args![
            &a.id,
            &a.scope.account_id,
            a.scope.mode,
            &a.endpoint_id,
            a.delivery_seq,
            &a.event_id,
            &a.event_type,
            a.attempt,
            a.succeeded,
            a.status_code,
            a.latency_ms,
            a.response_excerpt.as_ref(),
            a.error.as_ref(),
            a.next_attempt_at,
            a.created_at,
            a.fault.map(WebhookFault::as_str),
            encode_headers(&a.request_headers),
        ];
        self.defer(&INSERT, &params, Changed::Any)?;
        let Some((seq, status, next_at)) = delivery_update(a, next) else {
            return Ok(());
        };
        // Zero rows when the endpoint (and so the delivery) was deleted meanwhile.
        self.defer(&UPDATE, &args![seq, status, next_at], Changed::Any)
    }

    /// A batch of attempts with two statements, whatever its size: the deliveries' new states
    /// as one `UPDATE … FROM unnest(…)`, the attempts as one `INSERT … SELECT unnest(…)`. Both
    /// are deferred, so they ride the commit's pipeline.
    fn record_attempts_batch(&mut self, outcomes: &[AttemptOutcome]) -> Result<(), StoreError> {
        static INSERT: Sql = Sql::new(
            "INSERT INTO webhook_attempts (id, account_id, mode, endpoint_id, delivery_seq,
                 event_id, event_type, attempt, succeeded, status_code, latency_ms,
                 response_excerpt, error, next_attempt_at, created_at, fault, request_headers)
             SELECT a.id, a.account_id, a.mode, a.endpoint_id, a.delivery_seq, a.event_id,
                 a.event_type, a.attempt, a.succeeded <> 0, a.status_code, a.latency_ms,
                 a.response_excerpt, a.error, a.next_attempt_at, a.created_at, a.fault,
                 a.request_headers
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                 $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::bigint[],
                 $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::bigint[],
                 $15::bigint[], $16::text[], $17::text[])
                 AS a (id, account_id, mode, endpoint_id, delivery_seq, event_id, event_type,
                       attempt, succeeded, status_code, latency_ms, response_excerpt, error,
                       next_attempt_at, created_at, fault, request_headers)
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = a.endpoint_id)
               AND (a.delivery_seq IS NULL OR EXISTS (
                   SELECT 1 FROM webhook_deliveries d WHERE d.seq = a.delivery_seq))",
        );
        // A delivery is leased to one attempt at a time (the lease outlasts the timeout), so
        // a batch names each delivery at most once.
        static UPDATE: Sql = Sql::new(
            "UPDATE webhook_deliveries d SET status = u.status, attempts = d.attempts + 1,
                 next_attempt_at = coalesce(u.next_attempt_at, d.next_attempt_at),
                 lease_until = NULL
             FROM unnest($1::bigint[], $2::text[], $3::bigint[])
                 AS u (seq, status, next_attempt_at)
             WHERE d.seq = u.seq",
        );
        if outcomes.is_empty() {
            return Ok(());
        }
        let attempts: Vec<&WebhookAttemptRecord> = outcomes.iter().map(|o| &o.attempt).collect();
        let texts = |field: fn(&WebhookAttemptRecord) -> Option<String>| {
            Value::Texts(attempts.iter().map(|a| field(a)).collect())
        };
        let ints = |field: fn(&WebhookAttemptRecord) -> Option<i64>| {
            Value::Ints(attempts.iter().map(|a| field(a)).collect())
        };
        let attempt_params = [
            texts(|a| Some(a.id.clone())),
            texts(|a| Some(a.scope.account_id.clone())),
            texts(|a| Some(a.scope.mode.as_str().to_owned())),
            texts(|a| Some(a.endpoint_id.clone())),
            ints(|a| a.delivery_seq),
            texts(|a| Some(a.event_id.clone())),
            texts(|a| Some(a.event_type.clone())),
            ints(|a| Some(i64::from(a.attempt))),
            ints(|a| Some(i64::from(a.succeeded))),
            ints(|a| a.status_code.map(i64::from)),
            ints(|a| Some(i64::try_from(a.latency_ms).unwrap_or(i64::MAX))),
            texts(|a| a.response_excerpt.clone()),
            texts(|a| a.error.clone()),
            ints(|a| a.next_attempt_at.map(|at| at.0)),
            ints(|a| Some(a.created_at.0)),
            texts(|a| a.fault.map(|f| f.as_str().to_owned())),
            texts(|a| encode_headers(&a.request_headers)),
        ];
        // The deliveries first: an update waits for a reset deleting them to commit, and the
        // insert after it (a statement of its own, so a fresh snapshot) then sees them gone and
        // drops their attempts; the other way round an attempt could outlive its reset.
        let updates: Vec<(i64, &str, Option<i64>)> = outcomes
            .iter()
            .filter_map(|o| delivery_update(&o.attempt, o.next))
            .collect();
        if !updates.is_empty() {
            let params = [
                Value::Ints(updates.iter().map(|u| Some(u.0)).collect()),
                Value::Texts(updates.iter().map(|u| Some(u.1.to_owned())).collect()),
                Value::Ints(updates.iter().map(|u| u.2).collect()),
            ];
            self.defer(&UPDATE, &params, Changed::Any)?;
        }
        self.defer(&INSERT, &attempt_params, Changed::Any)
    }

    /// Deletes at most `limit` finished deliveries and `limit` attempts made before `before`
    /// (kept as long as events); answers how many rows.
    pub fn prune_webhook_history(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        static DELIVERIES: Sql = Sql::new(
            "DELETE FROM webhook_deliveries WHERE seq IN (
                 SELECT seq FROM webhook_deliveries
                 WHERE status <> 'pending' AND created_at < $1 LIMIT $2{skip_locked})",
        );
        static ATTEMPTS: Sql = Sql::new(
            "DELETE FROM webhook_attempts WHERE seq IN (
                 SELECT seq FROM webhook_attempts WHERE created_at < $1 LIMIT $2{skip_locked})",
        );
        let deliveries = self.execute(&DELIVERIES, &args![before, limit])?;
        let attempts = self.execute(&ATTEMPTS, &args![before, limit])?;
        Ok(usize::try_from(deliveries + attempts).unwrap_or(usize::MAX))
    }
}

/// What an attempt changes on its delivery: (seq, status, next attempt), if anything.
fn delivery_update(
    a: &WebhookAttemptRecord,
    next: DeliveryNext,
) -> Option<(i64, &'static str, Option<i64>)> {
    let seq = a.delivery_seq?;
    match next {
        DeliveryNext::None => None,
        DeliveryNext::Succeeded => Some((seq, "succeeded", None)),
        DeliveryNext::Failed => Some((seq, "failed", None)),
        DeliveryNext::RetryAt(at) => Some((seq, "pending", Some(at.0))),
    }
}

impl Reader<'_> {
    pub fn get_webhook_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        static GET: Sql =
            Sql::new("SELECT {endpoint_columns} FROM webhook_endpoints WHERE id = $1");
        let found = first(self.query_opt(&GET, &args![id])?, endpoint)?;
        Ok(found.filter(|e| &e.scope == scope))
    }

    pub fn list_webhook_endpoints(
        &mut self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<WebhookEndpointRecord>, ListError> {
        self.list(&ENDPOINTS, scope, &[], query)
    }

    pub fn list_webhook_attempts(
        &mut self,
        scope: &Scope,
        endpoint_id: &str,
        query: &ListQuery,
    ) -> Result<Page<WebhookAttemptRecord>, ListError> {
        self.list(&ATTEMPTS, scope, &[("endpoint_id", endpoint_id)], query)
    }

    /// Deliveries waiting for an attempt (due or not), for the queue-depth gauge.
    pub fn webhook_queue_depth(&mut self) -> Result<u64, StoreError> {
        static DEPTH: Sql =
            Sql::new("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'");
        count(self.query_opt(&DEPTH, &[])?)
    }

    /// Whether any endpoint exists: without one there is nothing to deliver, and the worker
    /// need not lease at every commit.
    pub fn webhook_endpoints_exist(&mut self) -> Result<bool, StoreError> {
        static ANY: Sql = Sql::new("SELECT 1 FROM webhook_endpoints LIMIT 1");
        Ok(self.query_opt(&ANY, &[])?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_events, encode_events};

    #[test]
    fn subscribed_types_round_trip() {
        assert_eq!(encode_events(&[]), "*");
        assert!(decode_events("*").is_empty());
        let types = vec!["payment.completed".to_owned(), "refund.created".to_owned()];
        let encoded = encode_events(&types);
        assert_eq!(encoded, ",payment.completed,refund.created,");
        assert_eq!(decode_events(&encoded), types);
    }
}
