//! Webhook flows (SPEC §6): register, change and delete endpoints, queue an event again,
//! and the delivery worker's writes: lease due deliveries, record attempts (a test send's
//! too), prune the history. Deliveries of new events are queued by the outbox inside every
//! flow that records an event.

use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::WEBHOOK_ENDPOINTS_PER_SCOPE_MAX;
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

/// Leases up to `limit` due deliveries until `lease_until`, for one attempt each.
pub fn lease_deliveries(
    tx: &mut Tx<'_>,
    now: UnixMillis,
    lease_until: UnixMillis,
    limit: usize,
) -> Result<Vec<DeliveryJob>, FlowError> {
    Ok(tx.lease_webhook_deliveries(now, lease_until, limit)?)
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
