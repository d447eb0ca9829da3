//! A card payment through an acquirer connector (SPEC §15), exactly once:
//!
//! 1. the payment is claimed in the database (one conditional statement: of any number of
//!    submissions on any number of nodes, one gets it; the others wait and follow it);
//! 2. for each processor of its route, in order: the processor is named on the payment,
//!    [`Processor::prepare`] makes the acquirer's object (no money moves) and its reference
//!    is committed, then [`Processor::authorize`] runs and its answer is recorded together
//!    with the end of the claim;
//! 3. a processor error *before any authorization* (the object could not be made, or the
//!    acquirer says the confirm did not go through) moves to the next processor; a decline
//!    never does; an error whose outcome is unknown stops, and the payment stays claimed
//!    until the repair ([`repair`]) has asked the acquirer.
//!
//! A crash anywhere leaves a claim that runs out; the repair worker then asks the named
//! processor about the recorded reference before anything else is done with the payment.

use std::time::Instant;

use crate::processor::ProcessorErrorKind;
use vinr_domain::ids::{new_id, Prefix};
use vinr_domain::limits::{
    PROCESSOR_CANCEL_BATCH_PAYMENTS_MAX, PROCESSOR_REPAIR_BATCH_PAYMENTS_MAX,
};
use vinr_domain::{Payment, PaymentStatus, UnixMillis};

use super::Routed;
use crate::charge::{self, Charge, PAY_FROM};
use crate::flows::connectors::{self as flow, ClaimOwner};
use crate::flows::payments::Transition;
use crate::flows::FlowError;
use crate::processor::{Authorization, CardInput, Prepared, ProcessorError, Retrieved};
use crate::state::AppState;
use crate::store::{AttemptRecord, Scope};

/// What became of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayOutcome {
    /// The acquirer's answer is recorded (approved, declined or 3-D Secure); `redirect_url`
    /// is where the acquirer wants the shopper to authenticate, if it gave one.
    Recorded { redirect_url: Option<String> },
    /// Another submission holds the payment, or it is no longer pending.
    Taken,
    /// No processor of the route could take the card; nothing was authorized and the
    /// payment stays `pending`.
    Unavailable,
    /// The acquirer's answer is not known; the payment stays claimed until the repair has
    /// asked the acquirer.
    Unknown,
}

fn elapsed_ms(start: Instant) -> i64 {
    i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
}

fn attempt(
    payment: &Payment,
    processor: &str,
    outcome: &str,
    error: Option<&ProcessorError>,
    latency_ms: i64,
    now: UnixMillis,
) -> AttemptRecord {
    AttemptRecord {
        id: new_id(Prefix::PaymentAttempt, now),
        payment_id: payment.id.clone(),
        processor: processor.to_owned(),
        outcome: outcome.to_owned(),
        failure_code: error.map(|_| "processing_error".to_owned()),
        detail: error.map(ToString::to_string),
        latency_ms,
        created_at: now,
    }
}

fn scope_of(payment: &Payment) -> Scope {
    Scope {
        account_id: payment.account_id.clone(),
        mode: payment.mode,
    }
}

/// The step recording `answer` from `routed` for a claimed payment, with its latency.
fn answered(
    payment: &Payment,
    routed: &Routed,
    answer: &Authorization,
    method: Option<vinr_domain::PaymentMethod>,
    only_from: &'static [PaymentStatus],
    latency_ms: i64,
) -> Charge {
    let mut charge = charge::charge_of(answer, payment, only_from, method, &routed.name);
    charge.latency_ms = latency_ms;
    charge
}

/// Records a claimed payment's answer (its step ends the claim) with its attempt. Answers
/// whether it was recorded: not when `owner`'s claim ran out and was taken over.
async fn finish(
    app: &AppState,
    payment: &Payment,
    owner: &ClaimOwner,
    charge: Charge,
    clock_offset_ms: i64,
) -> Result<bool, FlowError> {
    let scope = scope_of(payment);
    let id = payment.id.clone();
    let now = app.clock.now().plus_ms(clock_offset_ms);
    let public_url = app.settings.public_url.clone();
    let pricing = app.settings.pricing.for_account(&scope.account_id);
    let owner = owner.clone();
    let recorded = app
        .store
        .write(move |tx| {
            let step = Transition::charged(&charge, &scope, &id, now, &public_url, pricing);
            flow::end_claim(tx, &owner, step)
        })
        .await?;
    if !recorded {
        claim_lost(payment);
    }
    Ok(recorded)
}

/// A claim that ran out while its holder still worked (and was taken over): what the
/// holder knows is not written; the one that took it over asks the acquirer.
fn claim_lost(payment: &Payment) {
    tracing::error!(payment_id = %payment.id,
        "the payment's processor claim ran out and was taken over; its answer is left to the repair");
}

fn outcome_of(answer: &Authorization) -> &'static str {
    match answer {
        Authorization::Approved { .. } => "approved",
        Authorization::ChallengeRequired { .. } => "requires_authentication",
        Authorization::Declined { .. } => "declined",
    }
}

fn redirect_of(answer: &Authorization) -> Option<String> {
    match answer {
        Authorization::ChallengeRequired { redirect_url, .. } => redirect_url.clone(),
        _ => None,
    }
}

/// Pays a `pending` payment with `card` over `route` (acquirer connectors), exactly once.
/// `clock_offset_ms` is the account's test clock (0 in live mode).
pub async fn pay(
    app: &AppState,
    payment: &Payment,
    card: &CardInput,
    route: &[Routed],
    clock_offset_ms: i64,
) -> Result<PayOutcome, FlowError> {
    if route.is_empty() {
        return Ok(PayOutcome::Unavailable);
    }
    // Before anything is sent: a card whose fingerprint cannot be kept is not charged.
    let method =
        charge::payment_method(app.fingerprint_secret.expose(), card).map_err(|detail| {
            FlowError::Invalid {
                param: "card",
                message: detail,
            }
        })?;
    let until = app.clock.now().plus_ms(app.connectors.claim_ms(route));
    let scope = scope_of(payment);
    let id = payment.id.clone();
    let kept = method.clone();
    let claimed = app
        .store
        .write(move |tx| flow::claim(tx, &scope, &id, until, &kept))
        .await?;
    let Some((payment, owner)) = claimed else {
        return Ok(PayOutcome::Taken);
    };
    let mut failed: Option<AttemptRecord> = None;
    for routed in route {
        // Its breaker may have opened since the route was made, or another call took the
        // half-open trial: the next processor, then.
        if !app.connectors.begin_call(&routed.name) {
            continue;
        }
        let (id, name, before) = (payment.id.clone(), routed.name.clone(), failed.take());
        let held = owner.clone();
        if !app
            .store
            .write(move |tx| flow::name_processor(tx, &id, &held, &name, None, before.as_ref()))
            .await?
        {
            claim_lost(&payment);
            return Ok(PayOutcome::Taken);
        }
        let start = Instant::now();
        let now = || app.clock.now().plus_ms(clock_offset_ms);
        let reference = match routed.processor.prepare(&payment, card).await {
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "processor error before authorization; trying the next processor");
                app.connectors
                    .record_error(&routed.name, &error, start.elapsed());
                failed = Some(attempt(
                    &payment,
                    &routed.name,
                    "processor_error",
                    Some(&error),
                    elapsed_ms(start),
                    now(),
                ));
                continue;
            }
            Ok(Prepared::Declined { code }) => {
                let answer = Authorization::Declined {
                    code,
                    reference: String::new(),
                };
                return record_answer(
                    app,
                    (&payment, &owner),
                    routed,
                    answer,
                    method,
                    start,
                    clock_offset_ms,
                )
                .await;
            }
            Ok(Prepared::Ready { reference }) => reference,
        };
        // The reference is committed before the call that can move money.
        let (id, name, at) = (payment.id.clone(), routed.name.clone(), reference.clone());
        let held = owner.clone();
        if !app
            .store
            .write(move |tx| flow::name_processor(tx, &id, &held, &name, Some(&at), None))
            .await?
        {
            // Nothing was sent that can move money: the one that took the claim over finds
            // the reference of the intent before (or none) and cancels or releases it.
            claim_lost(&payment);
            return Ok(PayOutcome::Taken);
        }
        let answer = match routed.processor.authorize(&payment, &reference).await {
            Ok(answer) => answer,
            Err(error) => match routed.processor.retrieve(&payment, &reference).await {
                Ok(Retrieved::Decided(answer)) => answer,
                // Nothing authorized yet, but the confirm may still be running at the
                // acquirer: only a cancel it accepted (or one already done there) makes
                // trying the next processor safe.
                Ok(found @ (Retrieved::NotAuthorized | Retrieved::Cancelled)) => {
                    let cancelled = match found {
                        Retrieved::Cancelled => Ok(()),
                        _ => routed.processor.cancel(&payment, &reference).await,
                    };
                    match cancelled {
                        Ok(()) => {
                            tracing::warn!(payment_id = %payment.id, processor = %routed.name,
                                %error, "the confirm did not go through; trying the next processor");
                            app.connectors
                                .record_error(&routed.name, &error, start.elapsed());
                            failed = Some(attempt(
                                &payment,
                                &routed.name,
                                "processor_error",
                                Some(&error),
                                elapsed_ms(start),
                                now(),
                            ));
                            continue;
                        }
                        Err(cancel) => {
                            tracing::error!(payment_id = %payment.id, processor = %routed.name,
                                %error, %cancel, "the confirm failed and the cancel too");
                            return left_to_repair(app, &payment, routed, &error, start, now())
                                .await;
                        }
                    }
                }
                Err(look) => {
                    // The acquirer may have authorized: never another processor now.
                    tracing::error!(payment_id = %payment.id, processor = %routed.name,
                        %error, %look, "the acquirer's answer is unknown; left to the repair");
                    return left_to_repair(app, &payment, routed, &error, start, now()).await;
                }
            },
        };
        return record_answer(
            app,
            (&payment, &owner),
            routed,
            answer,
            method,
            start,
            clock_offset_ms,
        )
        .await;
    }
    // Every processor failed before authorizing: nothing was charged anywhere.
    let id = payment.id.clone();
    if !app
        .store
        .write(move |tx| flow::release(tx, &id, &owner, failed.as_ref()))
        .await?
    {
        claim_lost(&payment);
        return Ok(PayOutcome::Taken);
    }
    Ok(PayOutcome::Unavailable)
}

/// Records the acquirer's answer (the payment's step, its attempt, the processor's metrics)
/// and answers where the shopper goes next.
async fn record_answer(
    app: &AppState,
    (payment, owner): (&Payment, &ClaimOwner),
    routed: &Routed,
    answer: Authorization,
    method: vinr_domain::PaymentMethod,
    start: Instant,
    clock_offset_ms: i64,
) -> Result<PayOutcome, FlowError> {
    app.connectors
        .record(&routed.name, outcome_of(&answer), start.elapsed());
    let recorded = answered(
        payment,
        routed,
        &answer,
        Some(method),
        PAY_FROM,
        elapsed_ms(start),
    );
    if !finish(app, payment, owner, recorded, clock_offset_ms).await? {
        return Ok(PayOutcome::Taken);
    }
    Ok(PayOutcome::Recorded {
        redirect_url: redirect_of(&answer),
    })
}

/// A payment whose acquirer may have authorized it: the attempt is recorded and the claim
/// kept, so that no other processor is tried and the repair asks the acquirer once the claim
/// runs out.
async fn left_to_repair(
    app: &AppState,
    payment: &Payment,
    routed: &Routed,
    error: &ProcessorError,
    start: Instant,
    at: UnixMillis,
) -> Result<PayOutcome, FlowError> {
    app.connectors
        .record_error(&routed.name, error, start.elapsed());
    let record = attempt(
        payment,
        &routed.name,
        "processor_error",
        Some(error),
        elapsed_ms(start),
        at,
    );
    app.store
        .write(move |tx| flow::record_attempt(tx, &record))
        .await?;
    Ok(PayOutcome::Unknown)
}

/// One pass of the repair (SPEC §15): every claim whose holder died (its time ran out) is
/// taken over and its acquirer asked, by the recorded reference, what became of the
/// payment; that answer is recorded before anything else happens to it. Answers how many
/// payments it settled.
pub async fn repair(app: &AppState) -> Result<usize, FlowError> {
    let now = app.clock.now();
    if !app
        .store
        .read(move |reader| reader.any_stale_processor_claim(now))
        .await?
    {
        return Ok(0);
    }
    let until = now.plus_ms(app.connectors.longest_claim_ms());
    let taken = app
        .store
        .write(move |tx| flow::reclaim_stale(tx, now, until, PROCESSOR_REPAIR_BATCH_PAYMENTS_MAX))
        .await?;
    let mut settled = 0;
    for (payment, owner) in taken {
        let routed = app.connectors.of_payment(payment.processor.as_deref());
        if routed.is_none() && payment.processor_reference.is_some() {
            // Sent to a processor this server no longer has: it may have authorized, so the
            // payment stays claimed (never sent elsewhere) until the processor is configured.
            tracing::error!(payment_id = %payment.id, processor = ?payment.processor,
                "repair: the payment's processor is not configured; cannot ask it");
            continue;
        }
        let (Some(routed), Some(reference)) = (routed, payment.processor_reference.clone()) else {
            // Nothing was sent for money (no reference): the claim simply ends.
            tracing::warn!(payment_id = %payment.id, "repair: nothing was authorized");
            let (id, held) = (payment.id.clone(), owner.clone());
            if app
                .store
                .write(move |tx| flow::release(tx, &id, &held, None))
                .await?
            {
                settled += 1;
            }
            continue;
        };
        let start = Instant::now();
        match routed.processor.retrieve(&payment, &reference).await {
            Ok(Retrieved::Decided(answer)) => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name,
                    outcome = outcome_of(&answer), "repair: recorded the acquirer's answer");
                app.connectors
                    .record(&routed.name, "repaired", start.elapsed());
                let from: &'static [PaymentStatus] = &[PaymentStatus::Pending];
                if finish(
                    app,
                    &payment,
                    &owner,
                    answered(&payment, &routed, &answer, None, from, elapsed_ms(start)),
                    0,
                )
                .await?
                {
                    settled += 1;
                }
            }
            Ok(found @ (Retrieved::NotAuthorized | Retrieved::Cancelled)) => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name,
                    "repair: the acquirer authorized nothing");
                let cancelled = match found {
                    Retrieved::Cancelled => Ok(()),
                    _ => routed.processor.cancel(&payment, &reference).await,
                };
                if let Err(error) = cancelled {
                    // Not provably dead at the acquirer: asked again once this claim runs out.
                    tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                        "repair: the acquirer would not cancel; trying later");
                    continue;
                }
                let record = attempt(
                    &payment,
                    &routed.name,
                    "not_authorized",
                    None,
                    elapsed_ms(start),
                    app.clock.now(),
                );
                let id = payment.id.clone();
                if app
                    .store
                    .write(move |tx| flow::release(tx, &id, &owner, Some(&record)))
                    .await?
                {
                    settled += 1;
                } else {
                    claim_lost(&payment);
                }
            }
            Err(error) => {
                // Asked again once this claim runs out.
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "repair: the acquirer could not be asked; trying later");
                app.connectors
                    .record_error(&routed.name, &error, start.elapsed());
            }
        }
    }
    Ok(settled)
}

/// One pass of the acquirer cancels the expiry left due: each payment is cancelled at the
/// processor that has it. A processor error leaves it due (tried again after its lease); a
/// cancel the acquirer refuses (it was already cancelled or released there) ends the tries.
/// An unfinished 3-D Secure is not expired by the expiry itself: it is ended here
/// ([`end_expired_challenge`]). Answers how many it finished.
pub async fn cancel_expired(app: &AppState) -> Result<usize, FlowError> {
    let now = app.clock.now();
    if !app
        .store
        .read(move |reader| reader.any_processor_cancel_due(now))
        .await?
    {
        return Ok(0);
    }
    let until = now.plus_ms(app.connectors.longest_claim_ms());
    let leased = app
        .store
        .write(move |tx| {
            flow::lease_acquirer_cancels(tx, now, until, PROCESSOR_CANCEL_BATCH_PAYMENTS_MAX)
        })
        .await?;
    let mut done = 0;
    for payment in leased {
        let (Some(routed), Some(reference)) = (
            app.connectors.of_payment(payment.processor.as_deref()),
            payment.processor_reference.as_deref(),
        ) else {
            tracing::error!(payment_id = %payment.id, processor = ?payment.processor,
                "expired payment: its processor is not configured; cannot cancel it there");
            continue;
        };
        if payment.status == PaymentStatus::RequiresAuthentication {
            if end_expired_challenge(app, &payment, &routed, reference).await? {
                done += 1;
            }
            continue;
        }
        match routed.processor.cancel(&payment, reference).await {
            Ok(()) => {
                tracing::info!(payment_id = %payment.id, processor = %routed.name,
                    status = payment.status.as_str(), "cancelled at the acquirer");
            }
            Err(error) if error.kind == ProcessorErrorKind::Refused => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "the acquirer refused the cancel of an ended payment; not tried again");
            }
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "cancel at the acquirer failed; trying again later");
                continue;
            }
        }
        let id = payment.id.clone();
        app.store
            .write(move |tx| flow::acquirer_cancelled(tx, &id))
            .await?;
        done += 1;
    }
    Ok(done)
}

/// An unfinished 3-D Secure past its checkout's expiry. The shopper may have authenticated at
/// the bank and never come back, so the acquirer is asked first: an answer it gave (approved,
/// captured or not, or declined) is recorded as the shopper's return would have; what it has
/// not authorized is cancelled there, and only then expired here. A processor error, or a
/// cancel refused while the intent still waited (it moved meanwhile), leaves it for the next
/// lease. Answers whether it is finished.
async fn end_expired_challenge(
    app: &AppState,
    payment: &Payment,
    routed: &Routed,
    reference: &str,
) -> Result<bool, FlowError> {
    let start = Instant::now();
    let (decided, cancelled) = match routed.processor.retrieve(payment, reference).await {
        Ok(Retrieved::Decided(Authorization::ChallengeRequired { .. })) => (None, false),
        Ok(Retrieved::Decided(answer)) => (Some(answer), false),
        Ok(Retrieved::NotAuthorized) => (None, false),
        // Cancelled there already: nothing can move money any more.
        Ok(Retrieved::Cancelled) => (None, true),
        Err(error) => {
            tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                "expired 3-D Secure: the acquirer could not be asked; trying again later");
            app.connectors
                .record_error(&routed.name, &error, start.elapsed());
            return Ok(false);
        }
    };
    let operation = match decided {
        Some(answer) => {
            tracing::warn!(payment_id = %payment.id, processor = %routed.name,
                outcome = outcome_of(&answer),
                "expired 3-D Secure: the acquirer decided after all; its answer is recorded");
            Some(answered(
                payment,
                routed,
                &answer,
                None,
                charge::AUTHENTICATE_FROM,
                elapsed_ms(start),
            ))
        }
        None if cancelled => None,
        None => match routed.processor.cancel(payment, reference).await {
            Ok(()) => None,
            Err(error) if error.kind == ProcessorErrorKind::Refused => {
                // Refused while we saw it waiting: it moved; the next pass asks again.
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "expired 3-D Secure: the acquirer refused the cancel; asking again later");
                return Ok(false);
            }
            Err(error) => {
                tracing::warn!(payment_id = %payment.id, processor = %routed.name, %error,
                    "expired 3-D Secure: cancel at the acquirer failed; trying again later");
                app.connectors
                    .record_error(&routed.name, &error, start.elapsed());
                return Ok(false);
            }
        },
    };
    let scope = scope_of(payment);
    let id = payment.id.clone();
    let public_url = app.settings.public_url.clone();
    let pricing = app.settings.pricing.for_account(&scope.account_id);
    let now = app.clock.now();
    let recorded = app
        .store
        .write(move |tx| {
            let step = match &operation {
                Some(charge) => Transition::charged(charge, &scope, &id, now, &public_url, pricing),
                None => Transition::expired_at_acquirer(&scope, &id, now, &public_url),
            };
            flow::end_expired_challenge(tx, step)
        })
        .await?;
    if !recorded {
        tracing::info!(payment_id = %payment.id,
            "expired 3-D Secure: recorded meanwhile (the shopper came back)");
    }
    Ok(true)
}
