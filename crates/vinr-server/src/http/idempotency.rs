//! Idempotency at the HTTP boundary: runs a handler's flow through [`crate::idempotency`] and
//! turns its [`Outcome`] into the response — the flow's answer, a replay with
//! `Idempotent-Replayed: true`, or 409 `idempotency_key_reused` / `idempotency_key_in_use`.
//! A refusal (404, 422) is rendered here, so that it can be stored as the key's answer.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vinr_domain::UnixMillis;

use crate::auth::AuthContext;
use crate::flows::FlowError;
use crate::http::error::ApiError;
use crate::idempotency::{self, KeyInUse, Outcome, Verdict};
use crate::inflight::InflightGuard;
use crate::state::AppState;
use crate::store::{IdempotencyScope, StoredResponse, Tx};

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

impl From<KeyInUse> for ApiError {
    fn from(_: KeyInUse) -> Self {
        ApiError::idempotency_in_use()
    }
}

/// `value` as the JSON body an effect answers.
pub fn json_of<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, FlowError> {
    serde_json::to_vec(value)
        .map_err(|error| FlowError::Store(crate::store::StoreError::Database(error.to_string())))
}

/// The answer for a request whose key already has a stored answer.
fn verdict(verdict: Verdict) -> Result<Answer, ApiError> {
    match verdict {
        Verdict::Replay(stored) => Ok(Answer {
            status: StatusCode::from_u16(stored.status_code).unwrap_or(StatusCode::OK),
            body: stored.body,
            replayed: true,
        }),
        Verdict::Mismatch => Err(ApiError::idempotency_reused()),
    }
}

/// Runs `effect` (a flow answering its JSON body, sent with `status`) at most once per
/// idempotency key. Without a key the request is simply not deduplicated.
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
    // InUse is decided here, before any work; Replay and Mismatch inside the transaction.
    let _claim = claim(app, key.as_ref())?;
    run_claimed(app, key, fingerprint, status, now, effect).await
}

/// The idempotency key of a POST (`Idempotency-Key`), scoped to the caller and the route.
pub fn post_key(
    auth: &AuthContext,
    path: impl Into<String>,
    key: Option<String>,
) -> Option<IdempotencyScope> {
    idempotency::post_key(&auth.scope, path, key)
}

/// Claims `key` in this process for a request about to run, or refuses it as in use (409).
/// The claim is released when dropped.
pub fn claim(
    app: &AppState,
    key: Option<&IdempotencyScope>,
) -> Result<Option<InflightGuard<IdempotencyScope>>, ApiError> {
    Ok(idempotency::claim(&app.inflight, key)?)
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
    let outcome =
        idempotency::run_claimed(&app.store, key, fingerprint, status.as_u16(), now, effect).await;
    let outcome = match (outcome, key_if_refused) {
        (Err(error), Some(key)) if idempotency::is_refusal(&error) => {
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
        Outcome::Stored(stored) => verdict(stored),
        Outcome::InUse => Err(ApiError::idempotency_in_use()),
    }
}

/// Stores `refusal` as the answer for `key`, unless an answer was stored meanwhile, which then
/// wins.
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
    match idempotency::keep_refusal(&app.store, key, response, now).await? {
        Some(stored) => verdict(stored),
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
    idempotency::stored_answer(&app.store, key, fingerprint)
        .await?
        .map(verdict)
        .transpose()
}
