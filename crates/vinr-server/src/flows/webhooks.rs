//! Webhook flows (SPEC §6): register, change and delete endpoints, queue an event again,
//! and the delivery worker's writes: lease due deliveries, record attempts (a test send's
//! too), prune the history. Deliveries of new events are queued by the outbox inside every
//! flow that records an event.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::{WEBHOOK_ENDPOINTS_PER_SCOPE_MAX, WEBHOOK_OUT_OF_ORDER_HOLD_MS};
use vinr_domain::webhook::{WebhookFault, WebhookFaults};
use vinr_domain::UnixMillis;
use vinr_types as wire;

use super::FlowError;
use crate::store::{
    AttemptOutcome, DeliveryJob, DeliveryNext, EventRecord, Scope, Tx, WebhookAttemptRecord,
    WebhookEndpointChanges, WebhookEndpointRecord,
};
use crate::webhooks;

pub struct NewEndpoint {
    pub scope: Scope,
    /// Checked by [`webhooks::validate_url`].
    pub url: String,
    /// Checked against [`webhooks::EVENT_TYPES`]; empty for every type.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Checked, and `None` in live mode.
    pub faults: Option<WebhookFaults>,
    pub now: UnixMillis,
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, FlowError> {
    serde_json::to_string(value)
        .map_err(|error| FlowError::Store(crate::store::StoreError::Database(error.to_string())))
}

/// Creates an enabled endpoint with a new secret; answers its JSON, secret included (the only
/// time it is shown).
pub fn create_endpoint(tx: &mut Tx<'_>, new: NewEndpoint) -> Result<String, FlowError> {
    if tx.count_webhook_endpoints(&new.scope)? >= WEBHOOK_ENDPOINTS_PER_SCOPE_MAX {
        return Err(FlowError::Invalid {
            param: "url",
            message: format!(
                "This account already has {WEBHOOK_ENDPOINTS_PER_SCOPE_MAX} webhook endpoints in \
                 this mode; delete one first."
            ),
        });
    }
    let endpoint = WebhookEndpointRecord {
        id: new_id(Prefix::WebhookEndpoint, new.now),
        scope: new.scope,
        url: new.url,
        description: new.description,
        events: new.events,
        secret: webhooks::new_secret(),
        enabled: true,
        faults: new.faults,
        created_at: new.now,
    };
    tx.insert_webhook_endpoint(&endpoint)?;
    json(&webhooks::wire::endpoint(&endpoint, true))
}

/// Changes an endpoint; answers its JSON (without the secret).
pub fn update_endpoint(
    tx: &mut Tx<'_>,
    scope: &Scope,
    id: &str,
    changes: &WebhookEndpointChanges,
) -> Result<String, FlowError> {
    let endpoint = tx
        .update_webhook_endpoint(scope, id, changes)?
        .ok_or_else(|| FlowError::NotFound {
            object: "webhook endpoint",
            id: id.to_owned(),
        })?;
    json(&webhooks::wire::endpoint(&endpoint, false))
}

/// Deletes an endpoint: its queued deliveries go with it, so nothing more is sent.
pub fn delete_endpoint(tx: &mut Tx<'_>, scope: &Scope, id: &str) -> Result<String, FlowError> {
    if !tx.delete_webhook_endpoint(scope, id)? {
        return Err(FlowError::NotFound {
            object: "webhook endpoint",
            id: id.to_owned(),
        });
    }
    json(&wire::DeletedWebhookEndpoint {
        id: id.to_owned(),
        object: "webhook_endpoint".into(),
        deleted: true,
        livemode: scope.mode.is_live(),
    })
}

/// Queues `event` again for its matching endpoints (or only `endpoint_id`), due at once.
pub fn resend(
    tx: &mut Tx<'_>,
    event: &EventRecord,
    endpoint_id: Option<&str>,
    now: UnixMillis,
) -> Result<String, FlowError> {
    let webhooks = tx.requeue_webhook_event(event, endpoint_id, now)?;
    json(&wire::EventResend {
        object: "event_resend".into(),
        event: event.id.clone(),
        webhooks,
        livemode: event.scope.mode.is_live(),
    })
}

/// Whether `job` is the first attempt of a delivery to an `outOfOrder` endpoint that was not
/// held yet: the kind the out-of-order rule decides about.
fn first_out_of_order(job: &DeliveryJob) -> bool {
    job.attempts == 0 && !job.held && job.faults.is_some_and(|f| f.out_of_order())
}

/// How much longer than one attempt's lease `job`'s must be: its endpoint's `delayMs`, and one
/// more attempt's `timeout_ms` when the first attempt is also sent a second time.
fn extra_lease_ms(job: &DeliveryJob, timeout_ms: i64) -> i64 {
    let (Some(faults), Some(event)) = (&job.faults, &job.event) else {
        return 0;
    };
    let chosen = |fault| webhooks::fault_chosen(faults, &job.endpoint_id, &event.id, fault);
    let mut extra_ms = 0i64;
    if chosen(WebhookFault::Delay) {
        extra_ms = i64::try_from(faults.delay_ms()).unwrap_or(i64::MAX / 4);
    }
    if job.attempts == 0 && chosen(WebhookFault::Duplicate) {
        extra_ms = extra_ms.saturating_add(timeout_ms);
    }
    extra_ms
}

/// Leases up to `limit` due deliveries until `lease_until` (which covers one attempt of
/// `timeout_ms`), for one attempt each, and applies what the endpoints' faults decide before
/// anything is sent (SPEC §12):
/// - an attempt that waits (`delayMs`) or is sent twice (`duplicate`) gets a lease that long
///   longer;
/// - `outOfOrder`: the first attempt of a delivery is not made but held (due again
///   [`WEBHOOK_OUT_OF_ORDER_HOLD_MS`] later) unless a delivery of its endpoint is held already;
///   then it is made at once, and once its attempt is recorded the held one comes due — so the
///   receiver sees the later event first. A held delivery whose hold runs out is sent anyway.
///   The decision is taken under a lock per endpoint (PostgreSQL; SQLite has one writer), so
///   nodes leasing two deliveries of one endpoint at once see each other's hold.
pub fn lease_deliveries(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    lease_until: UnixMillis,
    timeout_ms: i64,
    limit: usize,
) -> Result<Vec<DeliveryJob>, FlowError> {
    let mut jobs = tx.lease_webhook_deliveries(now, lease_until, limit)?;
    // Oldest first, so of two deliveries leased together the older is the one held.
    jobs.sort_by_key(|job| job.delivery_seq);
    // Locked in one order on every node: two leases never wait for each other.
    let mut ordered: Vec<&str> = jobs
        .iter()
        .filter(|job| first_out_of_order(job))
        .map(|job| job.endpoint_id.as_str())
        .collect();
    ordered.sort_unstable();
    ordered.dedup();
    let locks: Vec<String> = ordered
        .iter()
        .map(|id| format!("webhook out-of-order {id}"))
        .collect();
    for lock in &locks {
        tx.lock_exclusive(lock)?;
    }
    let mut leased = Vec::with_capacity(jobs.len());
    for mut job in jobs {
        if first_out_of_order(&job) {
            match tx.claim_held_webhook_delivery(&job.endpoint_id, job.delivery_seq, now)? {
                Some(held) => job.releases = Some(held),
                None => {
                    let until = now.plus_ms(WEBHOOK_OUT_OF_ORDER_HOLD_MS);
                    tx.hold_webhook_delivery(job.delivery_seq, now, until)?;
                    continue;
                }
            }
        }
        let extra_ms = extra_lease_ms(&job, timeout_ms);
        if extra_ms > 0 {
            tx.extend_webhook_lease(job.delivery_seq, lease_until.plus_ms(extra_ms))?;
        }
        leased.push(job);
    }
    Ok(leased)
}

/// Records a batch of attempts and each one's next delivery state.
pub fn record_attempts(tx: &mut Tx<'_>, outcomes: &[AttemptOutcome]) -> Result<(), FlowError> {
    Ok(tx.record_webhook_attempts(outcomes)?)
}

/// Records the attempt of a `webhook.test` send (it has no delivery); answers its JSON.
pub fn record_test_attempt(
    tx: &mut Tx<'_>,
    attempt: WebhookAttemptRecord,
) -> Result<String, FlowError> {
    let answer = json(&webhooks::wire::attempt(&attempt));
    tx.record_webhook_attempts(&[AttemptOutcome {
        attempt,
        next: DeliveryNext::None,
        release: None,
    }])?;
    answer
}

/// Deletes at most `limit` finished deliveries and `limit` attempts made before `before`;
/// answers how many rows.
pub fn prune_history(
    tx: &mut Tx<'_>,
    before: UnixMillis,
    limit: usize,
) -> Result<usize, FlowError> {
    Ok(tx.prune_webhook_history(before, limit)?)
}
