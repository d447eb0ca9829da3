//! The dashboard's way into the API: every read and every action is a request to the API's own
//! router (the route table of `http/routes.rs`), run in-process with the session's caller in
//! place of a key. So a page shows exactly what the API answers, an action runs the same
//! handler, validation, idempotency and flow as `curl` would, and a restricted key gets the
//! API's 403 for a route outside its scopes. Nothing here reads or writes the store itself.
//!
//! The session's key is never at hand (only its hash is stored): [`session_caller`] stands in
//! for the API's key check, answering the same [`AuthContext`] by the key's hash
//! ([`auth::authenticate_hash`]), scope checked against the route's [`RequiredScope`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceExt;
use vinr_domain::limits::DASHBOARD_PAGE_CALLS_MAX;
use vinr_domain::Mode;

use crate::auth::{self, PlatformRoute, RequiredScope};
use crate::http::error::ApiError;
use crate::http::routes;
use crate::state::AppState;

/// Who a dashboard request acts for: attached by the dashboard to each in-process request
/// (never taken from the network: extensions are not headers). One per page view, with the
/// count of the calls it made: a page makes at most `DASHBOARD_PAGE_CALLS_MAX`.
#[derive(Clone)]
pub struct Caller {
    pub key_hash: [u8; 32],
    pub mode: Mode,
    pub calls: Arc<AtomicUsize>,
}

impl Caller {
    pub fn new(key_hash: [u8; 32], mode: Mode) -> Caller {
        Caller {
            key_hash,
            mode,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// The API's keyed routes with [`session_caller`] in place of the key check.
#[derive(Clone)]
pub struct Api {
    router: Router,
}

/// The stand-in for `http/auth.rs`'s `require_key`: the caller the dashboard attached, checked
/// as a key would be (revoked, mode served, the route's scope). Never the platform routes. Not
/// rate limited per call: the page view took one token of the key's limit
/// ([`super::session`]), and its calls are bounded by `DASHBOARD_PAGE_CALLS_MAX`.
async fn session_caller(State(app): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        return ApiError::from(auth::AuthFailure::NoKey).into_response();
    };
    if request.extensions().get::<PlatformRoute>().is_some() {
        return ApiError::from(auth::AuthFailure::PlatformKeyRequired).into_response();
    }
    let needed = request
        .extensions()
        .get::<RequiredScope>()
        .and_then(|r| r.0);
    match auth::authenticate_hash(
        &app.store,
        &app.settings,
        caller.key_hash,
        caller.mode,
        needed,
    )
    .await
    {
        Ok((context, _)) => {
            request.extensions_mut().insert(context);
            next.run(request).await
        }
        Err(failure) => ApiError::from(failure).into_response(),
    }
}

/// What the API answered.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// An error answer of the API: its message and the parameter it names.
#[derive(Debug, Clone, Default)]
pub struct Problem {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl Answer {
    /// An answer the API never gave: an error body of its shape.
    fn refused(status: StatusCode, message: &str) -> Answer {
        let body = serde_json::json!({"error": {"type": "api_error", "code": "page_too_large",
            "message": message}});
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as `T`, or the API's error.
    pub fn into<T: DeserializeOwned>(self) -> Result<T, Problem> {
        if self.ok() {
            serde_json::from_slice(&self.body).map_err(|error| Problem {
                status: 500,
                code: "unreadable".into(),
                message: format!("The API's answer could not be read: {error}."),
                param: None,
            })
        } else {
            Err(self.problem())
        }
    }

    pub fn problem(&self) -> Problem {
        let error = self.json().and_then(|body| body.get("error").cloned());
        let text = |name: &str| {
            error
                .as_ref()
                .and_then(|e| e.get(name))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Problem {
            status: self.status.as_u16(),
            code: text("code").unwrap_or_default(),
            message: text("message").unwrap_or_else(|| "The request failed.".into()),
            param: text("param"),
        }
    }
}

impl Api {
    pub fn new(app: AppState) -> Api {
        let routes::Table { keyed, .. } = routes::table();
        let router = keyed
            .route_layer(from_fn_with_state(app.clone(), session_caller))
            .route_layer(from_fn(routes::attach_scope))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(app);
        Api { router }
    }

    /// Runs one API request for `caller`. `body` is sent as JSON; `idempotency_key` as the
    /// header (each dashboard form carries one, so a double submit has one effect).
    pub async fn call(
        &self,
        caller: &Caller,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Answer {
        self.call_accepting(caller, method, path_and_query, body, idempotency_key, None)
            .await
    }

    /// [`Api::call`] with an `Accept` header (`text/csv` for a settlement's CSV).
    pub async fn call_accepting(
        &self,
        caller: &Caller,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        accept: Option<&'static str>,
    ) -> Answer {
        if caller.calls.fetch_add(1, Ordering::Relaxed) >= DASHBOARD_PAGE_CALLS_MAX {
            return Answer::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "This page needs more than {DASHBOARD_PAGE_CALLS_MAX} API requests; \
                     narrow it down (filters, the CSV, the events list)."
                ),
            );
        }
        let mut builder = axum::http::Request::builder()
            .method(method)
            .uri(path_and_query)
            .extension(caller.clone());
        if let Some(accept) = accept {
            builder = builder.header(header::ACCEPT, accept);
        }
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        let body = match body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let request = match builder.body(body) {
            Ok(request) => request,
            Err(_) => {
                return Answer {
                    status: StatusCode::NOT_FOUND,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                }
            }
        };
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, caller: &Caller, path_and_query: &str) -> Answer {
        self.call(caller, Method::GET, path_and_query, None, None)
            .await
    }
}

/// A field of an API object as text (`""` when absent or null; numbers and booleans as JSON).
pub fn text(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// An integer field of an API object (0 when absent).
pub fn int(value: &Value, name: &str) -> i64 {
    value.get(name).and_then(Value::as_i64).unwrap_or_default()
}

/// The `data` of an API list.
pub fn rows(list: &Value) -> Vec<Value> {
    list.get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
