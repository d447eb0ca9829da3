//! Operations endpoints: liveness, readiness (the database answers), Prometheus metrics and
//! the OpenAPI document. None needs an API key.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use vinr_domain::limits::DATABASE_UNAVAILABLE_RETRY_AFTER_S;
use vinr_types::Health;

use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::outage;

/// Liveness: the process answers HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The server is alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database does not answer", body = Health)))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    let probe = app.store.read(|reader| reader.ping()).await;
    let ready = match probe {
        // Nor has it refused a request a moment ago: on a full disk SQLite still reads.
        Ok(()) => !outage::recent(),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            false
        }
    };
    if ready {
        return Json(Health {
            status: "ok".into(),
        })
        .into_response();
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, DATABASE_UNAVAILABLE_RETRY_AFTER_S)],
        Json(Health {
            status: "unavailable".into(),
        }),
    )
        .into_response()
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::http::openapi::document_json(),
    )
        .into_response()
}

pub async fn route_not_found(request: axum::extract::Request) -> ApiError {
    ApiError::route_not_found(request.method().as_str(), request.uri().path())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
