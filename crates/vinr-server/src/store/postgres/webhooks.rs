//! The webhook statements of the PostgreSQL backend (SPEC §6). The outbox insert is deferred
//! (pipelined with the flow's other writes: no extra round trip per event); deliveries are
//! leased with `FOR UPDATE SKIP LOCKED`, so nodes leasing at the same time take disjoint rows
//! and a leased delivery is attempted by one node at a time.

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use vinr_domain::UnixMillis;

use super::{db_error, Blocking, Params, ANY_ROWS};
use crate::store::webhook_rows::{
    encode_events, AttemptRow, EndpointRow, JobRow, ATTEMPT_COLUMNS, ENDPOINT_COLUMNS, JOB_COLUMNS,
};
use crate::store::{
    AttemptOutcome, DeliveryJob, DeliveryNext, EventRecord, ListError, ListQuery, Page, Scope,
    StoreError, WebhookAttemptRecord, WebhookEndpointChanges, WebhookEndpointRecord,
};

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(db_error)
}

fn endpoint_from_row(row: &Row) -> Result<WebhookEndpointRecord, StoreError> {
    EndpointRow {
        id: get(row, 0)?,
        account_id: get(row, 1)?,
        mode: get(row, 2)?,
        url: get(row, 3)?,
        description: get(row, 4)?,
        events: get(row, 5)?,
        secret: get(row, 6)?,
        status: get(row, 7)?,
        created_at: get(row, 8)?,
    }
    .into_record()
}

fn attempt_from_row(row: &Row) -> Result<WebhookAttemptRecord, StoreError> {
    AttemptRow {
        id: get(row, 0)?,
        account_id: get(row, 1)?,
        mode: get(row, 2)?,
        endpoint_id: get(row, 3)?,
        delivery_seq: get(row, 4)?,
        event_id: get(row, 5)?,
        event_type: get(row, 6)?,
        attempt: get(row, 7)?,
        succeeded: get(row, 8)?,
        status_code: get(row, 9)?,
        latency_ms: get(row, 10)?,
        response_excerpt: get(row, 11)?,
        error: get(row, 12)?,
        next_attempt_at: get(row, 13)?,
        created_at: get(row, 14)?,
    }
    .into_record()
}

/// One field of every attempt in a batch, as an array parameter for `unnest`.
fn column<T>(
    outcomes: &[AttemptOutcome],
    field: impl Fn(&WebhookAttemptRecord) -> T,
) -> Box<dyn ToSql + Sync + Send>
where
    T: ToSql + Sync + Send + 'static,
{
    Box::new(
        outcomes
            .iter()
            .map(|o| field(&o.attempt))
            .collect::<Vec<T>>(),
    )
}

fn job_from_row(row: &Row) -> Result<DeliveryJob, StoreError> {
    JobRow {
        seq: get(row, 0)?,
        endpoint_id: get(row, 1)?,
        url: get(row, 2)?,
        secret: get(row, 3)?,
        attempts: get(row, 4)?,
        created_at: get(row, 5)?,
        account_id: get(row, 6)?,
        mode: get(row, 7)?,
        event_id: get(row, 8)?,
        event_type: get(row, 9)?,
        event_object_id: get(row, 10)?,
        event_data: get(row, 11)?,
        event_created_at: get(row, 12)?,
    }
    .into_job()
}

/// The outbox insert; [`MATCHING`] spelled out, as deferred statements are `&'static str`.
const QUEUE_DELIVERIES: &str = "INSERT INTO webhook_deliveries (endpoint_id, event_id, status,
         next_attempt_at, created_at)
     SELECT id, $4, 'pending', $5, $5 FROM webhook_endpoints
     WHERE account_id = $1 AND mode = $2 AND status = 'enabled'
       AND (events = '*' OR position(',' || $3::text || ',' in events) > 0)";

/// Endpoints of the event's scope subscribed to its type: the outbox's matching rule.
const MATCHING: &str = "account_id = $1 AND mode = $2 AND status = 'enabled'
     AND (events = '*' OR position(',' || $3::text || ',' in events) > 0)";

impl<C: deadpool_postgres::GenericClient> Blocking<'_, C> {
    pub(crate) fn wh_count_endpoints(&mut self, scope: &Scope) -> Result<u64, StoreError> {
        let row = self
            .query_opt(
                "SELECT count(*) FROM webhook_endpoints WHERE account_id = $1 AND mode = $2",
                &[&scope.account_id, &scope.mode.as_str()],
            )?
            .ok_or_else(|| StoreError::Database("count returned no row".into()))?;
        Ok(u64::try_from(get::<i64>(&row, 0)?).unwrap_or_default())
    }

    pub(crate) fn wh_insert_endpoint(
        &mut self,
        e: &WebhookEndpointRecord,
    ) -> Result<(), StoreError> {
        let params: Params = vec![
            Box::new(e.id.clone()),
            Box::new(e.scope.account_id.clone()),
            Box::new(e.scope.mode.as_str()),
            Box::new(e.url.clone()),
            Box::new(e.description.clone()),
            Box::new(encode_events(&e.events)),
            Box::new(e.secret.expose().clone()),
            Box::new(if e.enabled { "enabled" } else { "disabled" }),
            Box::new(e.created_at.0),
        ];
        self.defer(
            "INSERT INTO webhook_endpoints (id, account_id, mode, url, description, events,
                 secret, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params,
            1,
        );
        Ok(())
    }

    pub(crate) fn wh_update_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
        changes: &WebhookEndpointChanges,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        let status = changes
            .enabled
            .map(|enabled| if enabled { "enabled" } else { "disabled" });
        let events = changes.events.as_deref().map(encode_events);
        let row = self.query_opt(
            &format!(
                "UPDATE webhook_endpoints SET url = coalesce($4, url),
                     events = coalesce($5, events), description = coalesce($6, description),
                     status = coalesce($7, status)
                 WHERE id = $1 AND account_id = $2 AND mode = $3
                 RETURNING {ENDPOINT_COLUMNS}"
            ),
            &[
                &id,
                &scope.account_id,
                &scope.mode.as_str(),
                &changes.url,
                &events,
                &changes.description,
                &status,
            ],
        )?;
        if row.is_some() && changes.enabled == Some(false) {
            self.defer(
                "DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'",
                vec![Box::new(id.to_owned())],
                ANY_ROWS,
            );
        }
        row.map(|row| endpoint_from_row(&row)).transpose()
    }

    pub(crate) fn wh_delete_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<bool, StoreError> {
        // Deliveries go with the endpoint (ON DELETE CASCADE); attempts are removed here.
        let deleted = self.execute(
            "DELETE FROM webhook_endpoints WHERE id = $1 AND account_id = $2 AND mode = $3",
            &[&id, &scope.account_id, &scope.mode.as_str()],
        )?;
        if deleted == 0 {
            return Ok(false);
        }
        self.defer(
            "DELETE FROM webhook_attempts WHERE endpoint_id = $1",
            vec![Box::new(id.to_owned())],
            ANY_ROWS,
        );
        Ok(true)
    }

    pub(crate) fn wh_queue_deliveries(&mut self, event: &EventRecord) -> Result<(), StoreError> {
        let params: Params = vec![
            Box::new(event.scope.account_id.clone()),
            Box::new(event.scope.mode.as_str()),
            Box::new(event.kind.clone()),
            Box::new(event.id.clone()),
            Box::new(event.created_at.0),
        ];
        self.defer(QUEUE_DELIVERIES, params, ANY_ROWS);
        // Whether any row matched is known only at the commit; waking the worker for nothing
        // costs it one empty lease.
        self.queued_deliveries = true;
        Ok(())
    }

    pub(crate) fn wh_requeue_event(
        &mut self,
        event: &EventRecord,
        endpoint_id: Option<&str>,
        now: UnixMillis,
    ) -> Result<Vec<String>, StoreError> {
        let sql = format!(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, status, next_attempt_at,
                 created_at)
             SELECT id, $4, 'pending', $5, $5 FROM webhook_endpoints
             WHERE {MATCHING} AND ($6::text IS NULL OR id = $6)
             RETURNING endpoint_id"
        );
        let queued = self
            .query(
                &sql,
                &[
                    &event.scope.account_id,
                    &event.scope.mode.as_str(),
                    &event.kind,
                    &event.id,
                    &now.0,
                    &endpoint_id,
                ],
            )?
            .iter()
            .map(|row| get::<String>(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        self.queued_deliveries |= !queued.is_empty();
        Ok(queued)
    }

    pub(crate) fn wh_lease_deliveries(
        &mut self,
        now: UnixMillis,
        lease_until: UnixMillis,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "WITH d AS (
                 UPDATE webhook_deliveries SET lease_until = $2 WHERE seq IN (
                     SELECT seq FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= $1
                       AND (lease_until IS NULL OR lease_until <= $1)
                     ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING seq, endpoint_id, event_id, attempts, created_at)
             SELECT {JOB_COLUMNS}
             FROM d JOIN webhook_endpoints e ON e.id = d.endpoint_id
             LEFT JOIN events ev ON ev.id = d.event_id"
        );
        self.query(&sql, &[&now.0, &lease_until.0, &limit])?
            .iter()
            .map(job_from_row)
            .collect()
    }

    /// Records a batch of attempts with two statements, whatever its size: the attempts as
    /// one `INSERT … SELECT unnest(…)`, the deliveries' new states as one `UPDATE … FROM
    /// unnest(…)`. Both are deferred, so they ride the commit's pipeline.
    pub(crate) fn wh_record_attempts(&mut self, outcomes: &[AttemptOutcome]) {
        if outcomes.is_empty() {
            return;
        }
        let params: Params = vec![
            column(outcomes, |a| a.id.clone()),
            column(outcomes, |a| a.scope.account_id.clone()),
            column(outcomes, |a| a.scope.mode.as_str()),
            column(outcomes, |a| a.endpoint_id.clone()),
            column(outcomes, |a| a.delivery_seq),
            column(outcomes, |a| a.event_id.clone()),
            column(outcomes, |a| a.event_type.clone()),
            column(outcomes, |a| i64::from(a.attempt)),
            column(outcomes, |a| a.succeeded),
            column(outcomes, |a| a.status_code.map(i64::from)),
            column(outcomes, |a| {
                i64::try_from(a.latency_ms).unwrap_or(i64::MAX)
            }),
            column(outcomes, |a| a.response_excerpt.clone()),
            column(outcomes, |a| a.error.clone()),
            column(outcomes, |a| a.next_attempt_at.map(|at| at.0)),
            column(outcomes, |a| a.created_at.0),
        ];
        // Dropped when the endpoint was deleted meanwhile.
        self.defer(
            "INSERT INTO webhook_attempts (id, account_id, mode, endpoint_id, delivery_seq,
                 event_id, event_type, attempt, succeeded, status_code, latency_ms,
                 response_excerpt, error, next_attempt_at, created_at)
             SELECT a.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                 $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::boolean[],
                 $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::bigint[],
                 $15::bigint[])
                 AS a (id, account_id, mode, endpoint_id, delivery_seq, event_id, event_type,
                       attempt, succeeded, status_code, latency_ms, response_excerpt, error,
                       next_attempt_at, created_at)
             WHERE EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = a.endpoint_id)",
            params,
            ANY_ROWS,
        );

        let mut seqs = Vec::with_capacity(outcomes.len());
        let mut statuses = Vec::with_capacity(outcomes.len());
        let mut next_ats = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            let Some(seq) = outcome.attempt.delivery_seq else {
                continue;
            };
            let (status, next_at) = match outcome.next {
                DeliveryNext::None => continue,
                DeliveryNext::Succeeded => ("succeeded", None),
                DeliveryNext::Failed => ("failed", None),
                DeliveryNext::RetryAt(at) => ("pending", Some(at.0)),
            };
            seqs.push(seq);
            statuses.push(status);
            next_ats.push(next_at);
        }
        if seqs.is_empty() {
            return;
        }
        // A delivery is leased to one attempt at a time (the lease outlasts the timeout), so
        // a batch names each delivery at most once.
        self.defer(
            "UPDATE webhook_deliveries d SET status = u.status, attempts = d.attempts + 1,
                 next_attempt_at = coalesce(u.next_attempt_at, d.next_attempt_at),
                 lease_until = NULL
             FROM unnest($1::bigint[], $2::text[], $3::bigint[])
                 AS u (seq, status, next_attempt_at)
             WHERE d.seq = u.seq",
            vec![Box::new(seqs), Box::new(statuses), Box::new(next_ats)],
            ANY_ROWS,
        );
    }

    pub(crate) fn wh_get_endpoint(
        &mut self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<WebhookEndpointRecord>, StoreError> {
        let row = self.query_opt(
            &format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"),
            &[&id],
        )?;
        let endpoint = row.map(|row| endpoint_from_row(&row)).transpose()?;
        Ok(endpoint.filter(|e| &e.scope == scope))
    }

    pub(crate) fn wh_list_endpoints(
        &mut self,
        scope: &Scope,
        query: &ListQuery,
    ) -> Result<Page<WebhookEndpointRecord>, ListError> {
        self.list(
            "webhook_endpoints",
            ENDPOINT_COLUMNS,
            scope,
            &[],
            query,
            endpoint_from_row,
        )
    }

    pub(crate) fn wh_list_attempts(
        &mut self,
        scope: &Scope,
        endpoint_id: &str,
        query: &ListQuery,
    ) -> Result<Page<WebhookAttemptRecord>, ListError> {
        self.list(
            "webhook_attempts",
            ATTEMPT_COLUMNS,
            scope,
            &[("endpoint_id", endpoint_id)],
            query,
            attempt_from_row,
        )
    }

    pub(crate) fn wh_queue_depth(&mut self) -> Result<u64, StoreError> {
        let row = self
            .query_opt(
                "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'",
                &[],
            )?
            .ok_or_else(|| StoreError::Database("count returned no row".into()))?;
        Ok(u64::try_from(get::<i64>(&row, 0)?).unwrap_or_default())
    }

    pub(crate) fn wh_endpoints_exist(&mut self) -> Result<bool, StoreError> {
        let row = self
            .query_opt("SELECT EXISTS (SELECT 1 FROM webhook_endpoints)", &[])?
            .ok_or_else(|| StoreError::Database("EXISTS returned no row".into()))?;
        get(&row, 0)
    }

    pub(crate) fn wh_prune_history(
        &mut self,
        before: UnixMillis,
        limit: usize,
    ) -> Result<usize, StoreError> {
        // SKIP LOCKED: nodes pruning at the same time take disjoint rows.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let deliveries = self.execute(
            "DELETE FROM webhook_deliveries WHERE seq IN (
                 SELECT seq FROM webhook_deliveries
                 WHERE status <> 'pending' AND created_at < $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&before.0, &limit],
        )?;
        let attempts = self.execute(
            "DELETE FROM webhook_attempts WHERE seq IN (
                 SELECT seq FROM webhook_attempts WHERE created_at < $1
                 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&before.0, &limit],
        )?;
        Ok(usize::try_from(deliveries + attempts).unwrap_or(usize::MAX))
    }
}
