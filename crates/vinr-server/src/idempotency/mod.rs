//! (3) Idempotency (SPEC §2). Before any work a keyed request is one of: fresh (run it; its
//! answer is stored in the same transaction as its effects), replay (the stored answer is
//! answered again), mismatch (the stored answer was for another body) or in use (the first
//! request with this key is still running). This module decides which and answers an
//! [`Outcome`]; the HTTP layer (`http/idempotency.rs`) turns that into a response.
//!
//! "In use" is decided twice: in this process's memory ([`claim`], cheap, before any database
//! work) and inside the transaction by [`flows::idempotency::begin`], which on a shared
//! database is a lock every node sees. The stored answer commits atomically with the effects,
//! so a key is either held, or answered in the database, or free.

use std::sync::Arc;

use vinr_domain::UnixMillis;

use crate::flows::idempotency::{self as flow, Begin};
use crate::flows::FlowError;
use crate::inflight::{Inflight, InflightGuard};
use crate::store::{IdempotencyScope, Scope, Store, StoredResponse, Tx};

/// What a keyed request's stored answer means for it.
pub enum Verdict {
    /// Same key, same body: answer the stored response again.
    Replay(StoredResponse),
    /// Same key, another body.
    Mismatch,
}

/// How a request run through [`run_claimed`] was answered.
pub enum Outcome {
    /// It ran and committed (with its stored answer, when keyed): its JSON body.
    Ran(Vec<u8>),
    /// An earlier request with this key has its answer stored.
    Stored(Verdict),
    /// Another node's request with this key is still running.
    InUse,
}

/// The key is claimed by another request running in this process.
#[derive(Debug)]
pub struct KeyInUse;

/// What a stored answer means for a request with the same key.
fn judge(stored: StoredResponse, fingerprint: &[u8; 32]) -> Verdict {
    if &stored.request_hash == fingerprint {
        Verdict::Replay(stored)
    } else {
        Verdict::Mismatch
    }
}

/// The idempotency key of a POST (`Idempotency-Key`), scoped to the caller and the route.
pub fn post_key(
    caller: &Scope,
    path: impl Into<String>,
    key: Option<String>,
) -> Option<IdempotencyScope> {
    key.map(|key| IdempotencyScope {
        account_id: caller.account_id.clone(),
        mode: caller.mode,
        method: "POST",
        path: path.into(),
        key,
    })
}

/// Claims `key` in this process for a request about to run, or refuses it as in use. The
/// claim is released when dropped.
pub fn claim(
    inflight: &Arc<Inflight<IdempotencyScope>>,
    key: Option<&IdempotencyScope>,
) -> Result<Option<InflightGuard<IdempotencyScope>>, KeyInUse> {
    key.map(|key| inflight.claim(key).ok_or(KeyInUse))
        .transpose()
}

/// Runs `effect` (a flow answering its JSON body, answered with `status_code`) at most once
/// per idempotency key, for a caller that holds the key's [`claim`]. Without a key the request
/// is simply not deduplicated. A refusal ([`is_refusal`]) is answered as the error; a caller
/// keeps it for the key's retries with [`keep_refusal`].
pub async fn run_claimed<F>(
    store: &Store,
    key: Option<IdempotencyScope>,
    fingerprint: [u8; 32],
    status_code: u16,
    now: UnixMillis,
    effect: F,
) -> Result<Outcome, FlowError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<Vec<u8>, FlowError> + Send + 'static,
{
    // Replay and Mismatch are decided inside the transaction, where the stored answer is
    // authoritative (no separate read before the write: a retry is rare, a fresh key is the
    // common case).
    store
        .write(move |tx: &mut Tx<'_>| -> Result<Outcome, FlowError> {
            let Some(key) = key else {
                return Ok(Outcome::Ran(effect(tx)?));
            };
            match flow::begin(tx, &key)? {
                Begin::InUse => return Ok(Outcome::InUse),
                Begin::Answered(stored) => return Ok(Outcome::Stored(judge(stored, &fingerprint))),
                Begin::Fresh => {}
            }
            let response = StoredResponse {
                request_hash: fingerprint,
                status_code,
                body: effect(tx)?,
            };
            flow::save(tx, &key, &response, now)?;
            Ok(Outcome::Ran(response.body))
        })
        .await
}

/// Refusals that come from running the request against the data: no such object, not allowed
/// in its state, more than is refundable. They are the request's answer, kept for its retries
/// like a success (as Stripe does). Invalid parameters and failures of the server are not.
pub fn is_refusal(error: &FlowError) -> bool {
    matches!(
        error,
        FlowError::NotFound { .. }
            | FlowError::State(_)
            | FlowError::Refund(_)
            | FlowError::Dispute(_)
    )
}

/// Stores `refusal` (the refused request's answer) for `key`, unless an answer was stored
/// meanwhile: that one wins and is judged. `None`: the refusal is the answer.
pub async fn keep_refusal(
    store: &Store,
    key: IdempotencyScope,
    refusal: StoredResponse,
    now: UnixMillis,
) -> Result<Option<Verdict>, FlowError> {
    let fingerprint = refusal.request_hash;
    let stored = store
        .write(move |tx| flow::keep_refusal(tx, &key, &refusal, now))
        .await?;
    Ok(stored.map(|stored| judge(stored, &fingerprint)))
}

/// The stored answer for `key`, judged, if its first request has completed; for requests
/// whose effect happens outside the transaction (a test webhook send), which must not repeat
/// it for a retry.
pub async fn stored_answer(
    store: &Store,
    key: &IdempotencyScope,
    fingerprint: [u8; 32],
) -> Result<Option<Verdict>, FlowError> {
    let key = key.clone();
    let stored = store
        .write(move |tx| flow::stored_response(tx, &key))
        .await?;
    Ok(stored.map(|stored| judge(stored, &fingerprint)))
}
