//! Webhook delivery (SPEC §6): at least once, from the durable outbox, on any number of nodes.
//!
//! The claim loop leases due deliveries in bounded batches through the database (a lease is
//! one attempt at a time per delivery, whichever node holds it), sends each one concurrently
//! (at most [`WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX`] at a time, so one slow receiver never holds up
//! the rest), and hands each outcome to the recorder, which writes whatever outcomes are
//! waiting in one transaction: the attempt, and the delivery's next state (succeeded, retry
//! at, failed).
//!
//! It starts right after a commit on this node queued deliveries (the store's outbox wake) and
//! otherwise polls, for deliveries queued by other nodes and retries coming due. A crash
//! between a send and its record only means the attempt is made again when the lease runs out.
//!
//! A test-mode endpoint's faults on purpose (SPEC §12) are applied here: `delayMs` (each
//! attempt waits first), `badSignature` (a delivery's first attempt is signed wrongly),
//! `duplicate` (its first attempt is sent twice, the copy recorded as an attempt of its own);
//! `outOfOrder` holding is decided when deliveries are leased ([`flow::lease_deliveries`]).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch, Semaphore};
use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::{
    EVENT_RETENTION_MS, PRUNE_BATCH_ROWS_MAX, WEBHOOK_DRAIN_TIMEOUT_MS, WEBHOOK_GAUGE_INTERVAL_MS,
    WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX, WEBHOOK_LEASE_BATCH_DELIVERIES_MAX, WEBHOOK_LEASE_MARGIN_MS,
    WEBHOOK_PRUNE_BATCHES_MAX, WEBHOOK_PRUNE_INTERVAL_MS, WEBHOOK_RECORD_BATCH_OUTCOMES_MAX,
};
use vinr_domain::webhook::WebhookFault;
use vinr_domain::{Mode, UnixMillis};

use crate::clock::{Clock, SystemClock};
use crate::flows::{webhooks as flow, FlowError};
use crate::render;
use crate::state::AppState;
use crate::store::{AttemptOutcome, DeliveryJob, DeliveryNext, WebhookAttemptRecord};
use crate::webhooks::send::{Message, Outcome};
use crate::webhooks::{fault_chosen, next_delay_ms};

/// What the delivery's next state is after this attempt.
fn next_state(
    app: &AppState,
    job_attempt: u32,
    outcome: &Outcome,
    now: UnixMillis,
) -> DeliveryNext {
    if outcome.succeeded {
        return DeliveryNext::Succeeded;
    }
    let config = &app.settings.webhooks;
    let jitter = rand::rng().random_range(0..=1000);
    match next_delay_ms(
        &config.retry_schedule_seconds,
        job_attempt,
        jitter,
        outcome.retry_after_s,
        config.retry_after_max_seconds,
    ) {
        Some(delay_ms) => {
            DeliveryNext::RetryAt(now.plus_ms(i64::try_from(delay_ms).unwrap_or(i64::MAX)))
        }
        None => DeliveryNext::Failed,
    }
}

/// The faults one attempt of `job` carries (SPEC §12), decided from the endpoint's faults and
/// a hash of endpoint, event and fault (so every node and every retry agree).
struct Injected {
    /// Sent a second time right after (a delivery's first attempt).
    duplicate: bool,
    /// Signed wrongly (a delivery's first attempt).
    bad_signature: bool,
    /// Waited this long before it was sent.
    delay_ms: u64,
}

impl Injected {
    fn of(job: &DeliveryJob, number: u32) -> Injected {
        let none = Injected {
            duplicate: false,
            bad_signature: false,
            delay_ms: 0,
        };
        let (Some(faults), Some(event)) = (&job.faults, &job.event) else {
            return none;
        };
        if job.scope.mode != Mode::Test {
            return none;
        }
        let chosen = |fault| fault_chosen(faults, &job.endpoint_id, &event.id, fault);
        Injected {
            duplicate: number == 1 && chosen(WebhookFault::Duplicate),
            bad_signature: number == 1 && chosen(WebhookFault::BadSignature),
            delay_ms: if chosen(WebhookFault::Delay) {
                faults.delay_ms()
            } else {
                0
            },
        }
    }

    /// The one fault attempt `number` records: a bad signature, else having been held
    /// (`outOfOrder`, the first attempt of a held delivery), else the delay. (The duplicate is
    /// its own attempt.)
    fn recorded(&self, held: bool, number: u32) -> Option<WebhookFault> {
        if self.bad_signature {
            Some(WebhookFault::BadSignature)
        } else if held && number == 1 {
            Some(WebhookFault::OutOfOrder)
        } else if self.delay_ms > 0 {
            Some(WebhookFault::Delay)
        } else {
            None
        }
    }
}

fn count_fault(kind: &'static str) {
    metrics::counter!("vinr_injected_faults_total", "kind" => kind).increment(1);
}

/// Makes one attempt of a leased delivery (and its duplicate, when it gets one); answers what
/// to record, the attempt first.
async fn attempt(app: &AppState, job: DeliveryJob) -> Vec<AttemptOutcome> {
    let number = job.attempts.saturating_add(1);
    let injected = Injected::of(&job, number);
    if injected.delay_ms > 0 {
        count_fault("webhook_delay");
        tokio::time::sleep(Duration::from_millis(injected.delay_ms)).await;
    }
    if job.held && number == 1 {
        count_fault("webhook_out_of_order");
    }
    let started_at = app.clock.now();
    let mut copy = None;
    let (event_id, event_type, outcome) = match &job.event {
        Some(event) => {
            let event_id = event.id.clone();
            let event_type = event.kind.clone();
            let body = serde_json::to_vec(&render::event(event.clone())).unwrap_or_default();
            if number == 1 {
                let lag_ms = started_at.0.saturating_sub(job.queued_at.0).max(0);
                metrics::histogram!("vinr_webhook_commit_to_attempt_seconds")
                    .record(lag_ms as f64 / 1000.0);
            }
            let mut message = Message {
                event_id: &event_id,
                body: &body,
                bad_signature: injected.bad_signature,
            };
            if injected.bad_signature {
                count_fault("webhook_bad_signature");
            }
            let timestamp_s = SystemClock.now().0 / 1000;
            let outcome = app
                .webhooks
                .send(job.scope.mode, &job.url, &job.secret, &message, timestamp_s)
                .await;
            if injected.duplicate {
                // The same message again, correctly signed: what a receiver sees when a
                // sender retries after losing the first answer.
                count_fault("webhook_duplicate");
                message.bad_signature = false;
                let copy_started_at = app.clock.now();
                let copied = app
                    .webhooks
                    .send(job.scope.mode, &job.url, &job.secret, &message, timestamp_s)
                    .await;
                copy = Some((copy_started_at, copied));
            }
            (event_id, event_type, outcome)
        }
        // The event was pruned (30 days) before it could be delivered.
        None => (
            String::new(),
            String::new(),
            Outcome {
                succeeded: false,
                status_code: None,
                latency_ms: 0,
                response_excerpt: None,
                error: Some("the event no longer exists".into()),
                retry_after_s: None,
                result: "error",
                request_headers: Default::default(),
            },
        ),
    };
    metrics::counter!("vinr_webhook_attempts_total", "result" => outcome.result).increment(1);
    metrics::histogram!("vinr_webhook_request_seconds").record(outcome.latency_ms as f64 / 1000.0);
    let now = app.clock.now();
    let next = if event_id.is_empty() {
        DeliveryNext::Failed
    } else {
        next_state(app, number, &outcome, now)
    };
    // Scheduled on real time; shown on the account's clock.
    let shown = |at: UnixMillis| at.plus_ms(job.clock_offset_ms);
    let record = |outcome: Outcome, at: UnixMillis, next_attempt_at, fault| WebhookAttemptRecord {
        id: new_id(Prefix::WebhookAttempt, app.clock.now()),
        scope: job.scope.clone(),
        endpoint_id: job.endpoint_id.clone(),
        delivery_seq: Some(job.delivery_seq),
        event_id: event_id.clone(),
        event_type: event_type.clone(),
        attempt: number,
        succeeded: outcome.succeeded,
        status_code: outcome.status_code,
        latency_ms: outcome.latency_ms,
        response_excerpt: outcome.response_excerpt,
        error: outcome.error,
        next_attempt_at,
        fault,
        request_headers: outcome.request_headers,
        created_at: shown(at),
    };
    let next_attempt_at = match next {
        DeliveryNext::RetryAt(at) => Some(shown(at)),
        _ => None,
    };
    let mut outcomes = vec![AttemptOutcome {
        attempt: record(
            outcome,
            started_at,
            next_attempt_at,
            injected.recorded(job.held, number),
        ),
        next,
        release: job.releases.map(|seq| (seq, now)),
    }];
    if let Some((copy_started_at, copied)) = copy {
        metrics::counter!("vinr_webhook_attempts_total", "result" => copied.result).increment(1);
        // The delivery's state follows the original attempt alone.
        outcomes.push(AttemptOutcome {
            attempt: record(copied, copy_started_at, None, Some(WebhookFault::Duplicate)),
            next: DeliveryNext::None,
            release: None,
        });
    }
    outcomes
}

/// Leases up to `limit` due deliveries.
pub async fn lease(app: &AppState, limit: usize) -> Result<Vec<DeliveryJob>, FlowError> {
    let now = app.clock.now();
    let timeout_ms = i64::try_from(app.settings.webhooks.timeout_seconds)
        .unwrap_or(i64::MAX / 2)
        .saturating_mul(1000);
    let lease_until = now.plus_ms(timeout_ms.saturating_add(WEBHOOK_LEASE_MARGIN_MS));
    app.store
        .write(move |tx| flow::lease_deliveries(tx, now, lease_until, timeout_ms, limit))
        .await
}

/// Records a batch of outcomes in one transaction.
async fn record(app: &AppState, batch: Vec<AttemptOutcome>) -> Result<(), FlowError> {
    app.store
        .write(move |tx| flow::record_attempts(tx, &batch))
        .await
}

/// One pass by hand (tests): lease what is due, attempt it all, record it. Answers how many
/// attempts were made.
pub async fn step(app: &AppState) -> Result<usize, FlowError> {
    let jobs = lease(app, WEBHOOK_LEASE_BATCH_DELIVERIES_MAX).await?;
    let count = jobs.len();
    let attempts =
        futures_util::future::join_all(jobs.into_iter().map(|job| attempt(app, job))).await;
    record(app, attempts.into_iter().flatten().collect()).await?;
    Ok(count)
}

async fn recorder(app: AppState, mut outcomes: mpsc::UnboundedReceiver<AttemptOutcome>) {
    while let Some(first) = outcomes.recv().await {
        let mut batch = vec![first];
        while batch.len() < WEBHOOK_RECORD_BATCH_OUTCOMES_MAX {
            match outcomes.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let count = batch.len();
        if let Err(error) = record(&app, batch).await {
            // The leases run out and the deliveries are attempted again: at least once.
            tracing::warn!(
                ?error,
                count,
                "cannot record webhook attempts; they will be retried"
            );
        }
    }
}

/// Deletes delivery history past the events' retention, in bounded batches.
pub async fn prune(app: &AppState) -> Result<usize, FlowError> {
    let before = app.clock.now().plus_ms(-EVENT_RETENTION_MS);
    let mut pruned = 0;
    for _ in 0..WEBHOOK_PRUNE_BATCHES_MAX {
        let rows = app
            .store
            .write(move |tx| flow::prune_history(tx, before, PRUNE_BATCH_ROWS_MAX))
            .await?;
        pruned += rows;
        if rows < PRUNE_BATCH_ROWS_MAX {
            break;
        }
    }
    Ok(pruned)
}

async fn refresh_gauge(app: &AppState) {
    match app.store.read(|reader| reader.webhook_queue_depth()).await {
        Ok(depth) => metrics::gauge!("vinr_webhook_queue_depth").set(depth as f64),
        Err(error) => tracing::warn!(%error, "cannot read the webhook queue depth"),
    }
}

/// Whether any endpoint exists (on any node). Until one does, commits that may have queued
/// deliveries (on PostgreSQL: every event, the outbox insert being sent unanswered) do not
/// cost a lease each; the answer is asked again at every poll.
async fn endpoints_exist(app: &AppState) -> bool {
    app.store
        .read(|reader| reader.webhook_endpoints_exist())
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "cannot tell whether webhook endpoints exist");
            true
        })
}

pub async fn run(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let wake = app.store.outbox_wake();
    let poll = Duration::from_millis(app.settings.webhooks.poll_interval_ms);
    let in_flight = Arc::new(Semaphore::new(WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX));
    let (outcomes, received) = mpsc::unbounded_channel();
    let recording = tokio::spawn(recorder(app.clone(), received));
    let mut gauge_at = tokio::time::Instant::now();
    let mut pruned_at = tokio::time::Instant::now();
    let mut checked_at = tokio::time::Instant::now();
    let mut any_endpoint = endpoints_exist(&app).await;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if gauge_at.elapsed() >= Duration::from_millis(WEBHOOK_GAUGE_INTERVAL_MS) {
            gauge_at = tokio::time::Instant::now();
            refresh_gauge(&app).await;
        }
        if pruned_at.elapsed() >= Duration::from_millis(WEBHOOK_PRUNE_INTERVAL_MS) {
            pruned_at = tokio::time::Instant::now();
            match prune(&app).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "pruned webhook delivery history"),
                Err(error) => tracing::warn!(?error, "cannot prune webhook delivery history"),
            }
        }
        if !any_endpoint {
            if checked_at.elapsed() < poll {
                tokio::select! {
                    _ = tokio::time::sleep_until(checked_at + poll) => {}
                    _ = shutdown.changed() => break,
                }
            }
            checked_at = tokio::time::Instant::now();
            any_endpoint = endpoints_exist(&app).await;
            continue;
        }
        // Wait for room before leasing: a leased delivery is sent at once.
        let first = tokio::select! {
            permit = Arc::clone(&in_flight).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            _ = shutdown.changed() => break,
        };
        let limit = (in_flight.available_permits() + 1).min(WEBHOOK_LEASE_BATCH_DELIVERIES_MAX);
        let jobs = match lease(&app, limit).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(?error, "cannot lease webhook deliveries");
                Vec::new()
            }
        };
        let leased = jobs.len();
        let mut first = Some(first);
        for job in jobs {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match Arc::clone(&in_flight).try_acquire_owned() {
                    Ok(permit) => permit,
                    // Cannot happen (only this loop takes permits); the lease runs out.
                    Err(_) => break,
                },
            };
            let (app, outcomes) = (app.clone(), outcomes.clone());
            tokio::spawn(async move {
                for attempted in attempt(&app, job).await {
                    let _ = outcomes.send(attempted);
                }
                drop(permit);
            });
        }
        drop(first);
        if leased < limit {
            // Caught up: wait for a commit here, the next poll, or the stop.
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => break,
            }
            if leased == 0
                && checked_at.elapsed() >= Duration::from_millis(WEBHOOK_GAUGE_INTERVAL_MS)
            {
                // The last endpoint may have been deleted meanwhile.
                checked_at = tokio::time::Instant::now();
                any_endpoint = endpoints_exist(&app).await;
            }
        }
    }
    // Let attempts in flight finish and be recorded, within bounds.
    let permits = u32::try_from(WEBHOOK_IN_FLIGHT_ATTEMPTS_MAX).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(
        Duration::from_millis(WEBHOOK_DRAIN_TIMEOUT_MS),
        in_flight.acquire_many(permits),
    )
    .await;
    drop(outcomes);
    let _ = tokio::time::timeout(Duration::from_millis(WEBHOOK_DRAIN_TIMEOUT_MS), recording).await;
}
