//! Faults on purpose (SPEC §12): a test-mode request with a `Vinr-Test-Fault` header, or one
//! that matches a fault rule of its account, suffers the fault — a delay, an error answered
//! instead of running, or its real answer (committed) replaced by a 500 or by a closed
//! connection. And the rules' routes, `POST/GET/DELETE /v1/test_helpers/faults`.
//!
//! [`run`] is called by the key check ([`super::auth::require_key`]) once the caller is known,
//! around everything the route does. Live keys never get here: their header is ignored.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use vinr_domain::fault::{rule_method, FaultRule, InjectedStatus, RequestFault, FAULT_RULES_PATH};
use vinr_domain::limits::TEST_FAULT_RETRY_AFTER_S;
use vinr_domain::Mode;
use vinr_types as wire;

use crate::auth::rate_limit::LimitHeaders;
use crate::auth::AuthContext;
use crate::flows::faults as flow;
use crate::http::body::{idempotency_key, ApiBody};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, json_of, Answer};
use crate::http::list::NoQuery;
use crate::http::payments::test_mode_only;
use crate::render;
use crate::state::AppState;

/// The request header that asks for a fault; faulted answers carry it back, spelled as
/// [`RequestFault`] prints it.
pub const HEADER: HeaderName = HeaderName::from_static("vinr-test-fault");
/// On a faulted answer: the rule that caused it.
const RULE_HEADER: HeaderName = HeaderName::from_static("vinr-test-fault-rule");

/// Marks a response that is not to be sent: the connection loop closes the connection instead
/// (`commit-then-drop`).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Marks an injected 429, whose `X-RateLimit-*` headers the key check leaves as they are.
#[derive(Debug, Clone, Copy)]
pub struct InjectedRateLimit;

/// Marks every faulted answer: the request log tells an injected 5xx from a real one.
#[derive(Debug, Clone, Copy)]
pub struct Injected;

/// What [`run`] needs of the caller, taken before the caller is handed to the route.
pub struct Faultable {
    /// The account whose rules to match, when it had any at the key lookup.
    rules_of: Option<String>,
}

impl Faultable {
    /// `None` for a live key: live mode is never faulted.
    pub fn of(auth: &AuthContext) -> Option<Faultable> {
        (auth.mode() == Mode::Test).then(|| Faultable {
            rules_of: auth.fault_rules.then(|| auth.scope.account_id.clone()),
        })
    }
}

/// The fault the header asks for; a malformed one is a 400 naming the header.
fn from_header(headers: &HeaderMap) -> Result<Option<RequestFault>, ApiError> {
    let mut values = headers.get_all(&HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid(
            "Vinr-Test-Fault",
            "Send Vinr-Test-Fault once: one request suffers one fault.",
        ));
    }
    let text = value.to_str().map_err(|_| {
        ApiError::invalid("Vinr-Test-Fault", "The Vinr-Test-Fault header is not text.")
    })?;
    RequestFault::parse(text)
        .map(Some)
        .map_err(|error| ApiError::invalid("Vinr-Test-Fault", format!("Vinr-Test-Fault {error}")))
}

/// Runs the request through `next`, with the fault its header or the account's first
/// matching rule asks for (the header wins; a rule is counted down only when it hits).
pub async fn run(app: &AppState, caller: Faultable, request: Request, next: Next) -> Response {
    if request.uri().path() == FAULT_RULES_PATH {
        return next.run(request).await;
    }
    let (fault, rule) = match from_header(request.headers()) {
        Err(error) => return error.into_response(),
        Ok(Some(fault)) => (fault, None),
        Ok(None) => {
            let Some(account_id) = caller.rules_of else {
                return next.run(request).await;
            };
            let method = rule_method(request.method().as_str()).to_owned();
            let path = request.uri().path().to_owned();
            let taken = take_rule(app, account_id, method, path).await;
            match taken {
                Err(error) => return error.into_response(),
                Ok(None) => return next.run(request).await,
                Ok(Some((rule, fault))) => (fault, Some(rule)),
            }
        }
    };
    metrics::counter!("vinr_injected_faults_total", "kind" => fault.kind()).increment(1);
    tracing::info!(fault = %fault, rule = rule.as_deref(), "injecting a fault");
    let mut response = match fault {
        RequestFault::Latency { ms } => {
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(ms))).await;
            next.run(request).await
        }
        RequestFault::Status(status) => injected_status(app, status),
        RequestFault::CommitThen500 => {
            drop(next.run(request).await);
            ApiError::injected_fault(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Injected fault `commit-then-500`: the request ran (what it changed is \
                 committed) and this 500 replaces its answer. A retry with the same \
                 Idempotency-Key gets the real answer.",
            )
            .into_response()
        }
        RequestFault::CommitThenDrop => {
            drop(next.run(request).await);
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(DropConnection);
            response
        }
    };
    response.extensions_mut().insert(Injected);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&fault.to_string()) {
        headers.insert(HEADER, value);
    }
    if let Some(value) = rule.and_then(|rule| HeaderValue::from_str(&rule).ok()) {
        headers.insert(RULE_HEADER, value);
    }
    response
}

/// The fault of the account's first rule that matches, counted down. Read first without the
/// writer: most requests of an account with rules match none, and cost no write.
async fn take_rule(
    app: &AppState,
    account_id: String,
    method: String,
    path: String,
) -> Result<Option<(String, RequestFault)>, ApiError> {
    let account = account_id.clone();
    let rules = app
        .store
        .read(move |reader| reader.list_fault_rules(&account))
        .await?;
    if !rules.iter().any(|rule| rule.matches(&method, &path)) {
        return Ok(None);
    }
    // Taken again under the rules' locks: another request may have used it up meanwhile.
    Ok(app
        .store
        .write(move |tx| flow::take_matching(tx, &account_id, &method, &path))
        .await?)
}

/// `status=<code>`: the error answered instead of running the request.
fn injected_status(app: &AppState, status: InjectedStatus) -> Response {
    let code = status.code();
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let message = format!(
        "Injected fault `status={code}`: nothing was done; the same request may be retried."
    );
    let mut response = ApiError::injected_fault(status, message).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        LimitHeaders::exhausted(app.settings.rate_limit.test_burst, TEST_FAULT_RETRY_AFTER_S)
            .apply(response.headers_mut());
        response.extensions_mut().insert(InjectedRateLimit);
    }
    response
}

/// Create a fault rule: the account's next `count` test-mode requests with this method and
/// path suffer `fault`, as if they carried `Vinr-Test-Fault` (for clients that cannot set
/// headers). The oldest matching rule hits first; a header wins over every rule.
#[utoipa::path(post, path = "/v1/test_helpers/faults", tag = "test helpers",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry answers the first request instead of adding a second rule")),
    request_body(content((wire::CreateFaultRuleRequest = "application/json"), (wire::CreateFaultRuleRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The rule", body = wire::FaultRule),
        (status = 400, description = "A bad `method`, `path`, `fault` or `count`, or 100 rules already", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::CreateFaultRuleRequest>,
) -> Result<Answer, ApiError> {
    test_mode_only(&auth, "POST", FAULT_RULES_PATH)?;
    let key = idempotency::post_key(&auth, FAULT_RULES_PATH, idempotency_key(&headers)?);
    let request = &body.value;
    let now = auth.now(app.clock.now());
    let rule = FaultRule::new(
        &auth.scope.account_id,
        &request.method,
        &request.path,
        &request.fault,
        request.count,
        now,
    )
    .map_err(|error| ApiError::invalid(error.param, error.message))?;
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| {
            flow::create_rule(tx, &rule)?;
            json_of(&render::fault_rule(&rule))
        },
    )
    .await
}

/// List the account's fault rules, oldest (first to match) first.
#[utoipa::path(get, path = "/v1/test_helpers/faults", tag = "test helpers",
    responses(
        (status = 200, description = "The rules", body = wire::FaultRuleList),
        (status = 400, description = "A query parameter (there are none)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:read`", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    _: NoQuery,
) -> Result<Json<wire::FaultRuleList>, ApiError> {
    test_mode_only(&auth, "GET", FAULT_RULES_PATH)?;
    let account_id = auth.scope.account_id.clone();
    let rules = app
        .store
        .read(move |reader| reader.list_fault_rules(&account_id))
        .await?;
    Ok(Json(wire::FaultRuleList {
        object: "list".into(),
        data: rules.iter().map(render::fault_rule).collect(),
        has_more: false,
        next_cursor: None,
    }))
}

/// Delete every fault rule of the account.
#[utoipa::path(delete, path = "/v1/test_helpers/faults", tag = "test helpers",
    responses(
        (status = 200, description = "How many rules were deleted", body = wire::FaultRulesCleared),
        (status = 400, description = "A query parameter (there are none)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn clear(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    _: NoQuery,
) -> Result<Json<wire::FaultRulesCleared>, ApiError> {
    test_mode_only(&auth, "DELETE", FAULT_RULES_PATH)?;
    let account_id = auth.scope.account_id.clone();
    let deleted = app
        .store
        .write(move |tx| flow::clear_rules(tx, &account_id))
        .await?;
    Ok(Json(wire::FaultRulesCleared {
        object: "fault_rules_cleared".into(),
        deleted,
    }))
}
