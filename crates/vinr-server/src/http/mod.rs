//! (1) The HTTP surface: the router and its layers, outermost first — request id + span +
//! metrics, panic catcher, then per route: authentication, scope and rate limit (for `/v1`),
//! body parsing, the handler.

pub mod balance;
pub mod body;
pub mod connections;
pub mod error;
pub mod events;
pub mod list;
pub mod openapi;
pub mod ops;
pub mod payments;
pub mod refunds;
pub mod request_id;
pub mod settlements;
pub mod text;
pub mod webhooks;

use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::auth;
use crate::checkout;
use crate::http::error::ApiError;
use crate::state::AppState;

fn panic_response(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal(&"a handler panicked").into_response()
}

pub fn router(app: AppState) -> Router {
    let api = Router::new()
        .route("/v1/payments", post(payments::create).get(payments::list))
        .route("/v1/payments/{id}", get(payments::retrieve))
        .route("/v1/payments/{id}/capture", post(payments::capture))
        .route("/v1/payments/{id}/cancel", post(payments::cancel))
        .route(
            "/v1/test_helpers/payments/{id}/pay",
            post(payments::test_pay),
        )
        .route(
            "/v1/test_helpers/payments/{id}/authenticate",
            post(payments::test_authenticate),
        )
        .route("/v1/refunds", post(refunds::create).get(refunds::list))
        .route("/v1/refunds/{id}", get(refunds::retrieve))
        .route("/v1/balance", get(balance::retrieve))
        .route("/v1/balance_transactions", get(balance::list_transactions))
        .route(
            "/v1/balance_transactions/{id}",
            get(balance::retrieve_transaction),
        )
        .route("/v1/settlements", get(settlements::list))
        .route("/v1/settlements/{id}", get(settlements::retrieve))
        .route(
            "/v1/settlements/{id}/transactions",
            get(settlements::transactions),
        )
        .route(
            "/v1/test_helpers/settlements/run",
            post(settlements::test_run),
        )
        .route("/v1/events", get(events::list))
        .route("/v1/events/{id}", get(events::retrieve))
        // Webhooks (SPEC §6)
        .route("/v1/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::retrieve)
                .post(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/v1/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/v1/webhooks/{id}/test", post(webhooks::test))
        .route("/v1/events/{id}/resend", post(webhooks::resend))
        .route_layer(from_fn_with_state(app.clone(), auth::authenticate));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(ops::openapi))
        // Hosted checkout: public, the checkout token in the path is the credential.
        .route(checkout::STYLESHEET_PATH, get(checkout::stylesheet))
        .route("/checkout/{token}", get(checkout::page))
        .route("/checkout/{token}/pay", post(checkout::pay))
        .route(
            "/checkout/{token}/authenticate",
            post(checkout::authenticate),
        )
        .merge(api)
        .fallback(ops::route_not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(from_fn_with_state(app.clone(), body::read_whole))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn(request_id::layer))
        .with_state(app)
}
