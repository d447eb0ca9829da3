//! The key check in front of every `/v1` route that needs one: [`auth::authenticate`] answers
//! who calls (or an [`AuthFailure`](crate::auth::AuthFailure), which `error.rs` turns into its
//! 401 or 403), then the key's rate limit is checked (429), all before any handler runs.
//! Every answer of a counted request carries the `X-RateLimit-*` headers. A test-mode request
//! then goes through [`faults::run`] (SPEC §12). Routes that manage
//! accounts take a platform key instead (and an account's key gets 403 there, as a platform
//! key does everywhere else).

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{self, PlatformRoute, RequiredScope};
use crate::http::error::ApiError;
use crate::http::faults;
use crate::state::AppState;

/// Middleware for every `/v1` route that needs a key; runs after
/// [`attach_scope`](super::routes::attach_scope) has marked the scope the route needs.
pub async fn require_key(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<PlatformRoute>().is_some() {
        return require_platform_key(app, request, next).await;
    }
    let needed = request
        .extensions()
        .get::<RequiredScope>()
        .and_then(|r| r.0);
    let context =
        match auth::authenticate(&app.store, &app.settings, request.headers(), needed).await {
            Ok(context) => context,
            Err(failure) => return ApiError::from(failure).into_response(),
        };
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let decision = app
        .rate_limits
        .as_ref()
        .map(|limits| limits.check(&context.key_id, context.mode(), is_read));
    if let Some(Err(limited)) = &decision {
        let mut response = ApiError::rate_limited(limited.retry_after_s).into_response();
        limited.headers.apply(response.headers_mut());
        return response;
    }
    let faultable = faults::Faultable::of(&context);
    request.extensions_mut().insert(context);
    let mut response = match faultable {
        Some(caller) => faults::run(&app, caller, request, next).await,
        None => next.run(request).await,
    };
    if let Some(Ok(headers)) = decision {
        // An injected 429 keeps the exhausted bucket it reports.
        if response
            .extensions()
            .get::<faults::InjectedRateLimit>()
            .is_none()
        {
            headers.apply(response.headers_mut());
        }
    }
    response
}

/// [`require_key`] for a route that manages accounts: a platform key, rate limited as a test
/// mode key.
async fn require_platform_key(app: AppState, mut request: Request, next: Next) -> Response {
    let context =
        match auth::authenticate_platform(&app.store, &app.settings, request.headers()).await {
            Ok(context) => context,
            Err(failure) => return ApiError::from(failure).into_response(),
        };
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD);
    let decision = app
        .rate_limits
        .as_ref()
        .map(|limits| limits.check(&context.key_id, vinr_domain::Mode::Test, is_read));
    if let Some(Err(limited)) = &decision {
        let mut response = ApiError::rate_limited(limited.retry_after_s).into_response();
        limited.headers.apply(response.headers_mut());
        return response;
    }
    request.extensions_mut().insert(context);
    let mut response = next.run(request).await;
    if let Some(Ok(headers)) = decision {
        headers.apply(response.headers_mut());
    }
    response
}
