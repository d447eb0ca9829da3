//! `GET /v1/test_helpers/clock` and `POST /v1/test_helpers/clock/advance` (SPEC §10): the
//! caller's account's test clock, and moving it forward with everything that comes due.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::limits::TEST_CLOCK_ADVANCE_MS_MAX;
use vinr_domain::UnixMillis;
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::flows::clock::Target;
use crate::http::body::{idempotency_key, ApiBody};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{instant, NoQuery};
use crate::http::payments::test_mode_only;
use crate::render;
use crate::state::AppState;
use crate::workers::clock;

fn test_clock(now: UnixMillis) -> wire::TestClock {
    wire::TestClock {
        object: "test_clock".into(),
        now: render::timestamp(now),
        livemode: false,
    }
}

/// The account's test-mode time: real time until the clock is advanced.
#[utoipa::path(get, path = "/v1/test_helpers/clock", tag = "test helpers",
    responses(
        (status = 200, description = "The account's test clock", body = wire::TestClock),
        (status = 400, description = "A query parameter (there are none)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:read`", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    _: NoQuery,
) -> Result<Json<wire::TestClock>, ApiError> {
    test_mode_only(&auth, "GET", "/v1/test_helpers/clock")?;
    Ok(Json(test_clock(auth.now(app.clock.now()))))
}

/// The target of an advance from `now` (the account's time): `seconds` (counted from the
/// account's time when the move starts, so that moves made at once add up) or `to`, forward
/// only, at most 400 days.
fn target(request: &wire::AdvanceClockRequest, now: UnixMillis) -> Result<Target, ApiError> {
    let limit = TEST_CLOCK_ADVANCE_MS_MAX;
    match (request.seconds, request.to.as_deref()) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "to",
            "Give either `seconds` or `to`, not both.",
        )),
        (None, None) => Err(ApiError::missing("seconds")),
        (Some(seconds), None) => seconds
            .checked_mul(1000)
            .filter(|ms| (1..=limit).contains(ms))
            .map(Target::By)
            .ok_or_else(|| {
                ApiError::invalid(
                    "seconds",
                    format!(
                        "`seconds` must be from 1 to {} (400 days): the clock only moves forward.",
                        limit / 1000
                    ),
                )
            }),
        (None, Some(to)) => {
            let to = instant("to", to)?;
            if to <= now {
                return Err(ApiError::invalid(
                    "to",
                    format!(
                        "`to` must be after the account's time now ({}): the clock only moves \
                         forward.",
                        render::timestamp(now)
                    ),
                ));
            }
            if to.0 - now.0 > limit {
                return Err(ApiError::invalid(
                    "to",
                    "`to` must be at most 400 days after the account's time now.",
                ));
            }
            Ok(Target::At(to))
        }
    }
}

/// Moves the account's test clock forward. Before it answers, everything that came due up to
/// the new time has happened with its events, in time order: checkout expiry, the
/// authorization auto-cancel, pending refunds, settlement runs of the account's schedule and
/// their payouts, idempotency-key and event retention. Webhook deliveries that came due
/// (retries included) are attempted right after, in due order.
#[utoipa::path(post, path = "/v1/test_helpers/clock/advance", tag = "test helpers",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry answers the first advance instead of moving the clock again")),
    request_body(content((wire::AdvanceClockRequest = "application/json"), (wire::AdvanceClockRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The test clock after the move", body = wire::TestClock),
        (status = 400, description = "Neither or both of `seconds` and `to`, a move backwards, or more than 400 days", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn advance(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::AdvanceClockRequest>,
) -> Result<Answer, ApiError> {
    const PATH: &str = "/v1/test_helpers/clock/advance";
    test_mode_only(&auth, "POST", PATH)?;
    let key = idempotency::post_key(&auth, PATH, idempotency_key(&headers)?);
    // Held until the answer is stored: a second request with this key meanwhile is refused
    // (409 idempotency_key_in_use) rather than moving the clock again.
    let _claim = idempotency::claim(&app, key.as_ref())?;
    if let Some(key) = &key {
        if let Some(answer) = idempotency::stored_answer(&app, key, body.fingerprint).await? {
            return Ok(answer);
        }
    }
    // The account's time as the database has it now (the key was looked up a moment ago).
    let account_id = auth.scope.account_id.clone();
    let account = account_id.clone();
    let offset = app
        .store
        .read(move |reader| reader.clock_offset(&account))
        .await?;
    let now = app.clock.now().plus_ms(offset);
    let to = target(&body.value, now)?;
    let reached = clock::advance(&app, &account_id, to).await?;
    let answer =
        serde_json::to_vec(&test_clock(reached)).map_err(|error| ApiError::internal(&error))?;
    idempotency::run_claimed(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        reached,
        move |_| Ok(answer),
    )
    .await
}
