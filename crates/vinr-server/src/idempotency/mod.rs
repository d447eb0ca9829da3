//! (3) Idempotency (SPEC §2). Before any work a keyed request is one of: fresh (run it; its
//! answer is stored in the same transaction as its effects), replay (answer the stored
//! response with `Idempotent-Replayed: true`), mismatch (409 `idempotency_key_reused`: the
//! stored answer was for another body) or in use (409 `idempotency_key_in_use`: the first
//! request with this key is still running).
//!
//! "In use" is decided twice: in this process's memory (cheap, before any database work) and
//! inside the transaction by [`Tx::lock_idempotency_key`], which on a shared database is a
//! lock every node sees. The stored answer commits atomically with the effects, so a key is
//! either held, or answered in the database, or free.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vinr_domain::UnixMillis;

use crate::auth::AuthContext;
use crate::flows::FlowError;
use crate::http::error::ApiError;
use crate::inflight::InflightGuard;
use crate::state::AppState;
use crate::store::{IdempotencyScope, StoredResponse, Tx};

/// What a stored answer means for a request with the same key.
fn judge(stored: StoredResponse, fingerprint: &[u8; 32]) -> Result<Answer, ApiError> {
    if &stored.request_hash == fingerprint {
        Ok(Answer::replay(stored))
    } else {
        Err(ApiError::idempotency_reused())
    }
}

/// A JSON answer, fresh or replayed.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub replayed: bool,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            self.body,
        )
            .into_response();
        if self.replayed {
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

impl Answer {
    fn replay(stored: StoredResponse) -> Answer {
        Answer {
            status: StatusCode::from_u16(stored.status_code).unwrap_or(StatusCode::OK),
            body: stored.body,
            replayed: true,
        }
    }
}

enum Outcome {
    Ran(Vec<u8>),
    Stored(StoredResponse),
    /// Another node's request with this key is still running.
    InUse,
}

/// Runs `effect` (a flow answering its JSON body) at most once per idempotency key. Without a
/// key the request is simply not deduplicated.
pub async fn run<F>(
    app: &AppState,
    key: Option<IdempotencyScope>,
    fingerprint: [u8; 32],
    status: StatusCode,
    now: UnixMillis,
    effect: F,
) -> Result<Answer, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<Vec<u8>, FlowError> + Send + 'static,
{
    // InUse is decided here, before any work; Replay and Mismatch inside the transaction,
    // where the stored answer is authoritative (no separate read before the write: a retry is
    // rare, a fresh key is the common case).
    let _claim = claim(app, key.as_ref())?;
    run_claimed(app, key, fingerprint, status, now, effect).await
}

/// The idempotency key of a POST (`Idempotency-Key`), scoped to the caller and the route.
pub fn post_key(
    auth: &AuthContext,
    path: impl Into<String>,
    key: Option<String>,
) -> Option<IdempotencyScope> {
    key.map(|key| IdempotencyScope {
        account_id: auth.scope.account_id.clone(),
        mode: auth.scope.mode,
        method: "POST",
        path: path.into(),
        key,
    })
}

/// Claims `key` in this process for a request about to run, or refuses it as in use (409).
/// The claim is released when dropped.
pub fn claim(
    app: &AppState,
    key: Option<&IdempotencyScope>,
) -> Result<Option<InflightGuard<IdempotencyScope>>, ApiError> {
    key.map(|key| {
        app.inflight
            .claim(key)
            .ok_or_else(ApiError::idempotency_in_use)
    })
    .transpose()
}

/// [`run`] for a caller that already holds the key's [`claim`]: one whose effect starts
/// outside the transaction (a test webhook send) and must not start twice for one key.
pub async fn run_claimed<F>(
    app: &AppState,
    key: Option<IdempotencyScope>,
    fingerprint: [u8; 32],
    status: StatusCode,
    now: UnixMillis,
    effect: F,
) -> Result<Answer, ApiError>
where
    F: FnOnce(&mut Tx<'_>) -> Result<Vec<u8>, FlowError> + Send + 'static,
{
    let key_if_refused = key.clone();
    let outcome = app
        .store
        .write(move |tx: &mut Tx<'_>| -> Result<Outcome, FlowError> {
            if let Some(key) = &key {
                if !tx.lock_idempotency_key(key)? {
                    return Ok(Outcome::InUse);
                }
                // The authoritative answer: committed with the first request's effects.
                if let Some(stored) = tx.find_idempotent_response(key)? {
                    return Ok(Outcome::Stored(stored));
                }
            }
            let body = effect(tx)?;
            if let Some(key) = &key {
                let response = StoredResponse {
                    request_hash: fingerprint,
                    status_code: status.as_u16(),
                    body,
                };
                tx.save_idempotent_response(key, &response, now)?;
                return Ok(Outcome::Ran(response.body));
            }
            Ok(Outcome::Ran(body))
        })
        .await;
    let outcome = match (outcome, key_if_refused) {
        (Err(error), Some(key)) if is_refusal(&error) => {
            return keep_refusal(app, key, fingerprint, now, ApiError::from(error)).await;
        }
        (outcome, _) => outcome.map_err(ApiError::from),
    };
    match outcome? {
        Outcome::Ran(body) => Ok(Answer {
            status,
            body,
            replayed: false,
        }),
        Outcome::Stored(stored) => judge(stored, &fingerprint),
        Outcome::InUse => Err(ApiError::idempotency_in_use()),
    }
}

/// Refusals that come from running the request against the data: no such object, not allowed
/// in its state, more than is refundable. They are the request's answer, kept for its retries
/// like a success (as Stripe does). Invalid parameters and failures of the server are not.
fn is_refusal(error: &FlowError) -> bool {
    matches!(
        error,
        FlowError::NotFound { .. } | FlowError::State(_) | FlowError::Refund(_)
    )
}

/// Stores `refusal` as the answer for `key` (its effects were rolled back with its
/// transaction), unless an answer was stored meanwhile, which then wins.
async fn keep_refusal(
    app: &AppState,
    key: IdempotencyScope,
    fingerprint: [u8; 32],
    now: UnixMillis,
    refusal: ApiError,
) -> Result<Answer, ApiError> {
    let response = StoredResponse {
        request_hash: fingerprint,
        status_code: refusal.status().as_u16(),
        body: serde_json::to_vec(&refusal.body()).map_err(|error| ApiError::internal(&error))?,
    };
    let stored = app
        .store
        .write(move |tx| -> Result<Option<StoredResponse>, FlowError> {
            // Another node running this key now will store its own answer: leave it to that.
            if !tx.lock_idempotency_key(&key)? {
                return Ok(None);
            }
            if let Some(stored) = tx.find_idempotent_response(&key)? {
                return Ok(Some(stored));
            }
            tx.save_idempotent_response(&key, &response, now)?;
            Ok(None)
        })
        .await?;
    match stored {
        Some(stored) => judge(stored, &fingerprint),
        None => Err(refusal),
    }
}

/// The stored answer for `key`, replayed (or refused as a mismatch), if its first request has
/// completed; for requests whose effect happens outside the transaction (a test webhook send),
/// which must not repeat it for a retry.
pub async fn stored_answer(
    app: &AppState,
    key: &IdempotencyScope,
    fingerprint: [u8; 32],
) -> Result<Option<Answer>, ApiError> {
    let key = key.clone();
    let stored = app
        .store
        .write(move |tx| Ok::<_, FlowError>(tx.find_idempotent_response(&key)?))
        .await?;
    stored.map(|stored| judge(stored, &fingerprint)).transpose()
}
