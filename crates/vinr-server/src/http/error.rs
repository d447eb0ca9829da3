//! The one error type at the HTTP boundary. Each error knows its status, `type` and stable
//! `code`; the body is SPEC §2's `{"error": {…}}` with the request id. Internal detail goes to
//! the log with that request id, never to the client.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vinr_domain::limits::DATABASE_UNAVAILABLE_RETRY_AFTER_S;
use vinr_domain::{DisputeError, RefundError, StateError};
use vinr_types::{ErrorBody, ErrorDetail};

use crate::auth::AuthFailure;
use crate::flows::FlowError;
use crate::http::request_id;
use crate::store::{ListError, StoreError};

#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: &'static str,
    message: String,
    param: Option<String>,
    retry_after_s: Option<u64>,
    /// The request body was not read: the connection cannot carry another request.
    close_connection: bool,
}

impl ApiError {
    fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
            param: None,
            retry_after_s: None,
            close_connection: false,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// 400 `parameter_invalid`.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            message,
        )
        .with_param(param)
    }

    /// 400 `url_not_allowed` (param `url`): a webhook URL whose host the mode may not reach
    /// (SPEC §6).
    pub fn url_not_allowed(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "url_not_allowed",
            message,
        )
        .with_param("url")
    }

    /// 400 `parameter_missing`.
    pub fn missing(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            format!("Missing required parameter: `{param}`."),
        )
        .with_param(param)
    }

    /// 400 `parameter_unknown`.
    pub fn unknown_parameter(param: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_unknown",
            format!("Received unknown parameter: `{param}`."),
        )
        .with_param(param)
    }

    /// 400 for a body that is not valid JSON or form data at all.
    pub fn malformed_body(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "body_invalid",
            message,
        )
    }

    pub fn body_too_large(limit_bytes: usize) -> Self {
        let mut error = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "body_too_large",
            format!("The request body is larger than {limit_bytes} bytes."),
        );
        error.close_connection = true;
        error
    }

    /// 408 for a body that did not arrive in time; the connection is closed.
    pub fn body_timeout(timeout_ms: u64) -> Self {
        let mut error = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            "request_timeout",
            format!("The request body did not arrive within {timeout_ms} ms of its headers."),
        );
        error.close_connection = true;
        error
    }

    pub fn unsupported_media_type(found: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            "content_type_unsupported",
            format!(
                "Content-Type `{found}` is not supported; send application/json or \
                 application/x-www-form-urlencoded."
            ),
        )
    }

    /// 404 `resource_missing`: also the answer for other accounts' and modes' objects.
    pub fn not_found(object: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("No such {object}: `{id}`."),
        )
        .with_param("id")
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "route_missing",
            format!("Unrecognized request URL ({method} {path})."),
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "method_not_allowed",
            "This method is not allowed on this URL.",
        )
    }

    pub fn state(error: StateError) -> Self {
        match error {
            StateError::NotAllowed { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "payment_state_invalid",
                error.to_string(),
            ),
            StateError::AmountTooLarge { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "amount_too_large",
                error.to_string(),
            )
            .with_param("amount"),
        }
    }

    pub fn refund(error: RefundError) -> Self {
        match error {
            RefundError::PaymentNotCompleted(_) | RefundError::AlreadyFinal(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "payment_state_invalid",
                error.to_string(),
            )
            .with_param("payment"),
            RefundError::AmountTooLarge { .. } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "amount_too_large",
                error.to_string(),
            )
            .with_param("amount"),
        }
    }

    /// 422 `dispute_state_invalid` (the dispute's status refuses the operation), or the
    /// payment's refusals of a new dispute: `payment_state_invalid`, `amount_too_large`.
    pub fn dispute(error: DisputeError) -> Self {
        let (code, param) = match error {
            DisputeError::NotAllowed { .. } | DisputeError::DeadlinePassed => {
                ("dispute_state_invalid", "id")
            }
            DisputeError::PaymentNotCompleted(_) => ("payment_state_invalid", "id"),
            DisputeError::AmountTooLarge { .. } => ("amount_too_large", "amount"),
        };
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            code,
            error.to_string(),
        )
        .with_param(param)
    }

    /// 422 `account_has_live_data`: an account with live-mode objects is not deleted.
    pub fn account_has_live_data(account_id: &str, objects: u64) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "account_has_live_data",
            format!(
                "The account `{account_id}` has {objects} live-mode object(s); only accounts \
                 with test-mode data alone can be deleted."
            ),
        )
        .with_param("id")
    }

    /// 403 `platform_key_required`: an account's API key on a route that manages accounts.
    pub fn platform_key_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "platform_key_required",
            "This route manages accounts and needs a platform key (`plk_…`), not an account's \
             API key.",
        )
    }

    /// 403 `account_key_required`: a platform key on a route of one account's objects.
    pub fn account_key_required() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "account_key_required",
            "A platform key manages accounts only; use one of the account's API keys \
             (`sk_…`/`rk_…`) for this route.",
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "api_key_invalid",
            message,
        )
    }

    pub fn permission(scope: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "insufficient_permissions",
            format!("This API key does not have the `{scope}` scope this request needs."),
        )
    }

    pub fn idempotency_reused() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request body.",
        )
        .with_param("Idempotency-Key")
    }

    pub fn idempotency_in_use() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "idempotency_error",
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being processed; retry later.",
        )
        .with_param("Idempotency-Key")
    }

    pub fn rate_limited(retry_after_s: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limited",
            format!("Too many requests with this API key; retry after {retry_after_s} s."),
        );
        error.retry_after_s = Some(retry_after_s);
        error
    }

    /// An answer injected on purpose (SPEC §12, `code: "injected_fault"`): `status` is 429,
    /// 500, 502 or 503; a 429 carries `Retry-After`.
    pub fn injected_fault(status: StatusCode, message: impl Into<String>) -> Self {
        let kind = if status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limit_error"
        } else {
            "api_error"
        };
        let mut error = Self::new(status, kind, "injected_fault", message);
        if status == StatusCode::TOO_MANY_REQUESTS {
            error.retry_after_s = Some(vinr_domain::limits::TEST_FAULT_RETRY_AFTER_S);
        }
        error
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "service_unavailable",
            message,
        )
    }

    /// 503 `service_unavailable` with `Retry-After`: the database (or the writer in front of
    /// it) cannot take the request now; the same request, with the same idempotency key, may
    /// succeed in a moment.
    fn store_unavailable(message: &'static str) -> Self {
        let mut error = Self::unavailable(message);
        error.retry_after_s = Some(DATABASE_UNAVAILABLE_RETRY_AFTER_S);
        error
    }

    /// 500: the message is fixed, the detail goes to the log.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "Something went wrong on our side; the request id identifies it.",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(why) => {
                tracing::warn!(request_id = %request_id::current(), why, "store unavailable");
                ApiError::store_unavailable("The server is busy or shutting down; retry shortly.")
            }
            StoreError::Outage(detail) => {
                tracing::warn!(request_id = %request_id::current(), %detail, "database unavailable");
                ApiError::store_unavailable(
                    "The database is unavailable; retry shortly (with the same Idempotency-Key \
                     for a POST).",
                )
            }
            StoreError::Database(_) => ApiError::internal(&error),
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::NotFound { object, id } => ApiError::not_found(object, &id),
            FlowError::State(error) => ApiError::state(error),
            FlowError::Refund(error) => ApiError::refund(error),
            FlowError::Dispute(error) => ApiError::dispute(error),
            FlowError::Invalid { param, message } => ApiError::invalid(param, message),
            FlowError::AccountHasLiveData {
                account_id,
                objects,
            } => ApiError::account_has_live_data(&account_id, objects),
            FlowError::Store(error) => error.into(),
        }
    }
}

impl From<AuthFailure> for ApiError {
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::NoKey => ApiError::unauthenticated(
                "No API key provided. Send `Authorization: Bearer <API key>` or \
                 `X-Api-Key: <API key>`.",
            ),
            AuthFailure::AuthorizationNotText => {
                ApiError::unauthenticated("The Authorization header is not valid text.")
            }
            AuthFailure::AuthorizationNotBearer => {
                ApiError::unauthenticated("The Authorization header must be `Bearer <API key>`.")
            }
            AuthFailure::ApiKeyHeaderNotText => {
                ApiError::unauthenticated("The X-Api-Key header is not valid text.")
            }
            AuthFailure::InvalidKey => ApiError::unauthenticated("Invalid API key provided."),
            AuthFailure::ModeNotServed(mode) => ApiError::unauthenticated(format!(
                "This server does not accept {} mode keys.",
                mode.as_str()
            )),
            AuthFailure::Revoked => ApiError::unauthenticated("This API key has been revoked."),
            AuthFailure::MissingScope(scope) => ApiError::permission(scope),
            AuthFailure::PlatformKeyRequired => ApiError::platform_key_required(),
            AuthFailure::AccountKeyRequired => ApiError::account_key_required(),
            AuthFailure::Store(error) => error.into(),
        }
    }
}

impl From<ListError> for ApiError {
    fn from(error: ListError) -> Self {
        match error {
            ListError::UnknownCursor { param, id } => ApiError::invalid(
                param,
                format!("The cursor `{id}` names no object in this list."),
            ),
            ListError::Store(error) => error.into(),
        }
    }
}

impl ApiError {
    /// The SPEC §2 error body, as this request answers it.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                code: self.code.to_owned(),
                message: self.message.clone(),
                param: self.param.clone(),
                request_id: request_id::current(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if self.close_connection {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
