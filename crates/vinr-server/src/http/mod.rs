//! (1) The HTTP surface: the router and its layers, outermost first — request id + span +
//! metrics, panic catcher, then per route: authentication, scope and rate limit (for `/v1`),
//! body parsing, the handler. The documented routes, with their scopes, come from the route
//! table in [`routes`]; only the hosted checkout and dashboard pages (not in the API document) are added here.

pub mod accounts;
pub mod auth;
pub mod balance;
pub mod body;
pub mod checkout;
pub mod clock;
pub mod connections;
pub mod dashboard;
pub mod disputes;
pub mod error;
pub mod events;
pub mod faults;
pub mod idempotency;
pub mod list;
pub mod openapi;
pub mod ops;
pub mod payments;
pub mod refunds;
pub mod request_id;
pub mod routes;
pub mod settlements;
pub mod text;
pub mod webhooks;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::http::error::ApiError;
use crate::state::AppState;

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"a handler panicked").into_response()
}

pub fn router(app: AppState) -> Router {
    let routes::Table { public, keyed, .. } = routes::table();
    // Layers added later run first: the scope the matched route needs is attached, then the
    // key is checked against it.
    let keyed = keyed
        .route_layer(from_fn_with_state(app.clone(), auth::require_key))
        .route_layer(from_fn(routes::attach_scope));
    public
        // Hosted checkout: public, the checkout token in the path is the credential.
        .route(checkout::STYLESHEET_PATH, get(checkout::stylesheet))
        .route("/checkout/{token}", get(checkout::page))
        .route("/checkout/{token}/pay", post(checkout::pay))
        .route(
            "/checkout/{token}/authenticate",
            post(checkout::authenticate),
        )
        .route(checkout::RETURN_PATH, get(checkout::acquirer_return))
        // Dashboard (SPEC §13): its session cookie is the credential.
        .merge(dashboard::router(app.clone()))
        .merge(keyed)
        .fallback(ops::route_not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(from_fn_with_state(app.clone(), body::read_whole))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(request_id::layer))
        .with_state(app)
}
