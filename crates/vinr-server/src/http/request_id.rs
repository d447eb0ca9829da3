//! (1) The outermost layer: gives every request an id (`req_…`), runs it inside a tracing span
//! carrying that id (so every log line has it), records the metrics, and sets
//! `X-Request-Id` / `x-vinr-request-id` on every response, success or error.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use vinr_domain::ids::{new_id, Prefix};

use crate::clock::{Clock, SystemClock};
use crate::http::faults::Injected;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request this task serves (empty outside a request).
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

pub async fn layer(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = new_id(Prefix::Request, SystemClock.now());
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!("request", request_id = %id, %method, route = %route);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let injected = response.extensions().get::<Injected>().is_some();
    span.in_scope(|| {
        if injected {
            // A fault asked for (SPEC §12): logged by the fault layer, not an error.
            tracing::debug!(
                status,
                elapsed_us = elapsed.as_micros() as u64,
                "fault injected"
            );
        } else if status >= 500 {
            tracing::error!(
                status,
                elapsed_us = elapsed.as_micros() as u64,
                "request failed"
            );
        } else {
            tracing::debug!(
                status,
                elapsed_us = elapsed.as_micros() as u64,
                "request done"
            );
        }
    });
    let labels = [
        ("route", route),
        ("method", method.as_str().to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("vinr_http_requests_total", &labels).increment(1);
    metrics::histogram!("vinr_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value.clone());
        response.headers_mut().insert("x-vinr-request-id", value);
    }
    response
}
