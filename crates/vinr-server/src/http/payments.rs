//! Payment handlers (SPEC §3) and the sandbox test helpers (SPEC §4). Thin: authenticate
//! (middleware), parse and bound the input, convert wire → domain once, call one flow.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::card::{CardNumber, CardNumberError, Expiry, ExpiryError};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::limits::{
    PAYMENT_ATTEMPTS_LISTED_MAX, PAYMENT_DESCRIPTION_CHARS_MAX, RETURN_URL_LEN_MAX,
};
use vinr_domain::{
    metadata, Amount, AmountError, CaptureMethod, Currency, Mode, NewPayment, Operation, Payment,
    PaymentStatus, UnixMillis,
};
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::charge::{self, Charge, ChargeError};
use crate::connectors::{self, pay::PayOutcome};
use crate::flows::payments::{self as flow, Transition};
use crate::http::body::{fingerprint, idempotency_key, validate_idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{next_cursor, parse_query, NoQuery, PaymentListParams};
use crate::processor::{CardInput, ProcessorError};
use crate::render;
use crate::state::AppState;
use crate::store::{OneRead, Scope};

fn amount(param: &str, value: i64) -> Result<Amount, ApiError> {
    Amount::parse(value).map_err(|error| {
        let message = match error {
            AmountError::TooSmall => format!("`{param}` must be at least 1 (minor units)."),
            AmountError::TooLarge => format!("`{param}` must be at most 99999999 (minor units)."),
        };
        ApiError::invalid(param, message)
    })
}

fn return_url(value: &str, mode: Mode) -> Result<String, ApiError> {
    let invalid = |message: &str| ApiError::invalid("returnUrl", message);
    if value.len() > RETURN_URL_LEN_MAX {
        return Err(invalid("`returnUrl` is longer than 2048 characters."));
    }
    // `http:///x` parses (the URL standard skips the empty host) but is not what was meant.
    let authority = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    if authority.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
        return Err(invalid(
            "`returnUrl` must be an absolute http(s) URL with a host.",
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|_| invalid("`returnUrl` must be an absolute http(s) URL."))?;
    match (url.scheme(), mode) {
        ("https", _) | ("http", Mode::Test) => {}
        ("http", Mode::Live) => return Err(invalid("`returnUrl` must use https in live mode.")),
        _ => return Err(invalid("`returnUrl` must be an absolute http(s) URL.")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("`returnUrl` must name a host."));
    }
    Ok(value.to_owned())
}

fn require_payment_id(id: &str) -> Result<(), ApiError> {
    if looks_like(Prefix::Payment, id) {
        Ok(())
    } else {
        Err(ApiError::not_found("payment", id))
    }
}

/// Create a payment.
#[utoipa::path(post, path = "/v1/payments", tag = "payments",
    request_body(content((wire::CreatePaymentRequest = "application/json"), (wire::CreatePaymentRequest = "application/x-www-form-urlencoded"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    responses(
        (status = 201, description = "The payment was created", body = wire::Payment),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 413, description = "Body larger than 64 KiB", body = wire::ErrorBody),
        (status = 415, description = "Unsupported Content-Type", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::CreatePaymentRequest>,
) -> Result<(StatusCode, Answer), ApiError> {
    let request = body.value;
    // The body's `idempotencyKey` and the header are one key: the fingerprint leaves it out,
    // so a retry may move the key from one to the other.
    let fingerprint = fingerprint(&wire::CreatePaymentRequest {
        idempotency_key: None,
        ..request.clone()
    })?;
    let header_key = idempotency_key(&headers)?;
    let body_key = request
        .idempotency_key
        .as_deref()
        .map(|key| validate_idempotency_key(key, "idempotencyKey"))
        .transpose()?;
    if let (Some(header), Some(body)) = (&header_key, &body_key) {
        if header != body {
            return Err(ApiError::invalid(
                "idempotencyKey",
                "`idempotencyKey` differs from the Idempotency-Key header.",
            ));
        }
    }
    let amount = amount("amount", request.amount)?;
    let currency = Currency::parse(&request.currency).ok_or_else(|| {
        ApiError::invalid(
            "currency",
            format!(
                "`{}` is not a supported ISO 4217 currency code.",
                request.currency.chars().take(16).collect::<String>()
            ),
        )
    })?;
    let return_url = return_url(&request.return_url, auth.mode())?;
    if let Some(description) = &request.description {
        if description.chars().count() > PAYMENT_DESCRIPTION_CHARS_MAX {
            return Err(ApiError::invalid(
                "description",
                format!("`description` is longer than {PAYMENT_DESCRIPTION_CHARS_MAX} characters."),
            ));
        }
    }
    let metadata = request.metadata.unwrap_or_default();
    metadata::validate(&metadata)
        .map_err(|error| ApiError::invalid("metadata", error.to_string()))?;

    let now = auth.now(app.clock.now());
    let payment = Payment::new(
        NewPayment {
            account_id: auth.scope.account_id.clone(),
            mode: auth.mode(),
            amount,
            currency,
            description: request.description,
            return_url,
            metadata,
            capture_method: if request.capture.unwrap_or(true) {
                CaptureMethod::Automatic
            } else {
                CaptureMethod::Manual
            },
        },
        now,
        app.settings.payment_expiry_ms,
    );
    // Rendered here, not in the writer: the single writer thread only runs SQL.
    let json = render::payment_json(&payment, &app.settings.public_url);
    let key = idempotency::post_key(&auth, "/v1/payments", header_key.or(body_key));
    let answer = idempotency::run(
        &app,
        key,
        fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| {
            flow::create(tx, &payment, &json)?;
            Ok(json.into_bytes())
        },
    )
    .await?;
    Ok((answer.status, answer))
}

/// Retrieve a payment.
#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "The payment id (`pay_…`)")),
    responses(
        (status = 200, description = "The payment", body = wire::Payment),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:read`", body = wire::ErrorBody),
        (status = 404, description = "No such payment in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Payment>, ApiError> {
    let payment = load(&app, &auth.scope, &id).await?;
    Ok(Json(render::payment(&payment, &app.settings.public_url)))
}

/// List a payment's attempts: every call to a processor for it, oldest first (SPEC §15).
#[utoipa::path(get, path = "/v1/payments/{id}/attempts", tag = "payments",
    params(("id" = String, Path, description = "The payment id (`pay_…`)")),
    responses(
        (status = 200, description = "The payment's attempts", body = wire::PaymentAttemptList),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:read`", body = wire::ErrorBody),
        (status = 404, description = "No such payment in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn attempts(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::PaymentAttemptList>, ApiError> {
    let payment = load(&app, &auth.scope, &id).await?;
    let attempts = app
        .store
        .read(move |reader| reader.payment_attempts(&payment.id, PAYMENT_ATTEMPTS_LISTED_MAX + 1))
        .await?;
    let has_more = attempts.len() > PAYMENT_ATTEMPTS_LISTED_MAX;
    Ok(Json(wire::PaymentAttemptList {
        object: "list".into(),
        data: attempts
            .iter()
            .take(PAYMENT_ATTEMPTS_LISTED_MAX)
            .map(render::payment_attempt)
            .collect(),
        has_more,
    }))
}

async fn load(app: &AppState, scope: &Scope, id: &str) -> Result<Payment, ApiError> {
    require_payment_id(id)?;
    app.store
        .read_one(OneRead::payment(scope, id))
        .await?
        .ok_or_else(|| ApiError::not_found("payment", id))
}

/// List payments, newest first.
#[utoipa::path(get, path = "/v1/payments", tag = "payments",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "A payment id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A payment id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("status" = Option<String>, Query, description = "Only payments in this status")),
    responses(
        (status = 200, description = "A page of payments", body = wire::PaymentList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::PaymentList>, ApiError> {
    let params: PaymentListParams = parse_query(query.as_deref())?;
    let status = params
        .status
        .as_deref()
        .map(|value| {
            PaymentStatus::parse(value).ok_or_else(|| {
                ApiError::invalid("status", format!("`{value}` is not a payment status."))
            })
        })
        .transpose()?;
    let query = params.page()?;
    let (scope, page_query) = (auth.scope.clone(), query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_payments(&scope, status, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |p| p.id.as_str());
    Ok(Json(wire::PaymentList {
        object: "list".into(),
        data: page
            .items
            .iter()
            .map(|payment| render::payment(payment, &app.settings.public_url))
            .collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// One state-machine step requested over HTTP.
struct Step {
    /// The request path: part of the idempotency scope.
    path: String,
    fingerprint: [u8; 32],
    id: String,
    change: Change,
}

/// What a step does to the payment.
enum Change {
    /// The merchant's operation (capture, cancel), from any status the state machine allows.
    Operation(Operation),
    /// The processor's answer to a card charge (a sandbox test helper).
    Charged(Charge),
}

/// Runs one state-machine step as an idempotent POST answering the payment.
async fn step(
    app: &AppState,
    auth: &AuthContext,
    headers: &HeaderMap,
    step: Step,
) -> Result<Answer, ApiError> {
    require_payment_id(&step.id)?;
    let key = idempotency::post_key(auth, step.path, idempotency_key(headers)?);
    let now = auth.now(app.clock.now());
    let scope = auth.scope.clone();
    let public_url = app.settings.public_url.clone();
    let pricing = app.settings.pricing.for_account(&scope.account_id);
    let Step { id, change, .. } = step;
    idempotency::run(app, key, step.fingerprint, StatusCode::OK, now, move |tx| {
        let transition = match &change {
            Change::Operation(operation) => Transition {
                scope: &scope,
                payment_id: &id,
                operation: *operation,
                only_from: None,
                payment_method: None,
                processor_reference: None,
                processor: None,
                attempt: None,
                now,
                public_url: &public_url,
                pricing,
            },
            Change::Charged(charge) => {
                Transition::charged(charge, &scope, &id, now, &public_url, pricing)
            }
        };
        flow::transition(tx, transition).map(String::into_bytes)
    })
    .await
}

/// The stored answer of a test-helper step whose first request with this key completed.
/// Looked up before the status pre-check and the processor call: a retry of a pay that
/// succeeded (its answer lost, say, to a crash) finds the payment no longer `pending`, and
/// must get the first answer replayed, not a 422.
async fn stored_step_answer(
    app: &AppState,
    auth: &AuthContext,
    headers: &HeaderMap,
    path: &str,
    fingerprint: [u8; 32],
) -> Result<Option<Answer>, ApiError> {
    match idempotency::post_key(auth, path, idempotency_key(headers)?) {
        Some(key) => idempotency::stored_answer(app, &key, fingerprint).await,
        None => Ok(None),
    }
}

/// Capture an authorized payment, fully or partly; the rest of the authorization is released.
#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments",
    params(("id" = String, Path, description = "The payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::CapturePaymentRequest = "application/json"), (wire::CapturePaymentRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The captured payment (`completed`)", body = wire::Payment),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 404, description = "No such payment", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`payment_state_invalid` or `amount_too_large`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn capture(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::CapturePaymentRequest>,
) -> Result<Answer, ApiError> {
    let amount = body
        .value
        .amount
        .map(|value| amount("amount", value).map(Amount::minor_units))
        .transpose()?;
    let path = format!("/v1/payments/{id}/capture");
    let operation = Operation::Capture { amount };
    acquirer_first(
        &app,
        &auth,
        &headers,
        &path,
        body.fingerprint,
        &id,
        operation,
    )
    .await?;
    let change = Change::Operation(operation);
    step(
        &app,
        &auth,
        &headers,
        Step {
            path,
            fingerprint: body.fingerprint,
            id,
            change,
        },
    )
    .await
}

/// Cancel a payment that is `pending`, `requires_authentication` or `authorized`.
#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments",
    params(("id" = String, Path, description = "The payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::CancelPaymentRequest = "application/json"), (wire::CancelPaymentRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The cancelled payment", body = wire::Payment),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`", body = wire::ErrorBody),
        (status = 404, description = "No such payment", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`payment_state_invalid`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::CancelPaymentRequest>,
) -> Result<Answer, ApiError> {
    let path = format!("/v1/payments/{id}/cancel");
    acquirer_first(
        &app,
        &auth,
        &headers,
        &path,
        body.fingerprint,
        &id,
        Operation::Cancel,
    )
    .await?;
    step(
        &app,
        &auth,
        &headers,
        Step {
            path,
            fingerprint: body.fingerprint,
            id,
            change: Change::Operation(Operation::Cancel),
        },
    )
    .await
}

/// A capture or cancel of a payment an acquirer has goes to it first, unless this request is
/// a retry whose answer is stored (replayed by the step without calling anyone).
async fn acquirer_first(
    app: &AppState,
    auth: &AuthContext,
    headers: &HeaderMap,
    path: &str,
    fingerprint: [u8; 32],
    id: &str,
    operation: Operation,
) -> Result<(), ApiError> {
    if !looks_like(Prefix::Payment, id)
        || stored_step_answer(app, auth, headers, path, fingerprint)
            .await?
            .is_some()
    {
        return Ok(());
    }
    // A missing payment is the step's to answer (its 404 is kept for the key).
    match app
        .store
        .read_one(OneRead::payment(&auth.scope, id))
        .await?
    {
        Some(payment) => tell_acquirer(app, &payment, operation).await,
        None => Ok(()),
    }
}

pub(crate) fn test_mode_only(auth: &AuthContext, method: &str, path: &str) -> Result<(), ApiError> {
    // Live keys do not see test helpers at all, as if the route did not exist.
    if auth.mode() == Mode::Live {
        return Err(ApiError::route_not_found(method, path));
    }
    Ok(())
}

fn card_input(request: &wire::TestPayRequest, now: UnixMillis) -> Result<CardInput, ApiError> {
    let number = CardNumber::parse(&request.card).map_err(|error| {
        let message = match error {
            CardNumberError::NotDigits => "`card` may contain only digits, spaces and dashes.",
            CardNumberError::WrongLength => "`card` must have 12 to 19 digits.",
            CardNumberError::ChecksumFailed => {
                "`card` is not a valid card number (Luhn check failed)."
            }
        };
        ApiError::invalid("card", message)
    })?;
    let (year, month) = charge::year_month(now).map_err(|error| ApiError::internal(&error))?;
    let expiry = Expiry::parse(
        request.exp_month.unwrap_or(12),
        request.exp_year.unwrap_or(u32::from(year) + 3),
        year,
        month,
    )
    .map_err(|error| match error {
        ExpiryError::InvalidMonth => ApiError::invalid("expMonth", "`expMonth` must be 1 to 12."),
        ExpiryError::InvalidYear => ApiError::invalid("expYear", "`expYear` is not a valid year."),
        ExpiryError::InPast => {
            ApiError::invalid("expYear", "The card's expiry date is in the past.")
        }
    })?;
    if let Some(cvc) = &request.cvc {
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid("cvc", "`cvc` must be 3 or 4 digits."));
        }
    }
    Ok(CardInput {
        number,
        expiry,
        cvc: request.cvc.clone().map(crate::redacted::Redacted::new),
    })
}

/// A payment not charged: 422 when its status refuses the step (the flow checks again under
/// the writer, where it counts).
fn charge_error(error: ChargeError) -> ApiError {
    match error {
        ChargeError::State(error) => ApiError::state(error),
        ChargeError::Internal(detail) => ApiError::internal(&detail),
        ChargeError::Processor(error) => processor_error(&error),
        ChargeError::StillAuthenticating => ApiError::unavailable(
            "The acquirer's 3-D Secure authentication is not finished yet; try again.",
        ),
    }
}

/// The acquirer did not decide (SPEC §15): 503, nothing changed here.
fn processor_error(error: &ProcessorError) -> ApiError {
    tracing::warn!(%error, "processor error");
    ApiError::unavailable("The card processor did not answer; nothing changed. Try again.")
}

/// Sends a merchant's capture or cancel to the acquirer that authorized the payment, before
/// the step records it (SPEC §15: capture, cancel and refunds go to that processor). The
/// sandbox, and steps the payment's status refuses anyway (the step answers 422), send
/// nothing. Calls carry idempotency keys of the payment, so a retry never acts twice.
async fn tell_acquirer(
    app: &AppState,
    payment: &Payment,
    operation: Operation,
) -> Result<(), ApiError> {
    let Some(routed) = app.connectors.of_payment(payment.processor.as_deref()) else {
        // Authorized by a processor this server no longer has: recording the step without it
        // would book money the acquirer never moved.
        tracing::error!(payment_id = %payment.id, processor = ?payment.processor,
            "the payment's processor is not configured");
        return Err(ApiError::unavailable(
            "The processor that has this payment is not configured on this server; nothing \
             changed.",
        ));
    };
    if !routed.processor.remote() {
        return Ok(());
    }
    let Some(reference) = payment.processor_reference.as_deref() else {
        return match payment.status {
            // Nothing at the acquirer to act on, and the step refuses these states anyway.
            PaymentStatus::Authorized | PaymentStatus::RequiresAuthentication => {
                Err(ApiError::unavailable(
                    "The processor's reference of this payment is missing; nothing changed.",
                ))
            }
            _ => Ok(()),
        };
    };
    let sent = match operation {
        Operation::Capture { amount } if payment.status == PaymentStatus::Authorized => {
            let amount = amount.unwrap_or(payment.amount_capturable);
            if amount > payment.amount_capturable {
                return Ok(());
            }
            routed.processor.capture(payment, reference, amount).await
        }
        Operation::Cancel
            if matches!(
                payment.status,
                PaymentStatus::Authorized | PaymentStatus::RequiresAuthentication
            ) =>
        {
            routed.processor.cancel(payment, reference).await
        }
        _ => return Ok(()),
    };
    sent.map_err(|error| processor_error(&error))
}

/// Test mode: pay a pending payment with a sandbox test card, as a shopper would at checkout.
#[utoipa::path(post, path = "/v1/test_helpers/payments/{id}/pay", tag = "test helpers",
    params(("id" = String, Path, description = "The payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::TestPayRequest = "application/json"), (wire::TestPayRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The payment after the card's outcome", body = wire::Payment),
        (status = 400, description = "Invalid card data", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 404, description = "No such payment, or a live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "The payment is not `pending`", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_pay(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::TestPayRequest>,
) -> Result<Answer, ApiError> {
    let path = format!("/v1/test_helpers/payments/{id}/pay");
    test_mode_only(&auth, "POST", &path)?;
    let card = card_input(&body.value, auth.now(app.clock.now()))?;
    if let Some(answer) = stored_step_answer(&app, &auth, &headers, &path, body.fingerprint).await?
    {
        return Ok(answer);
    }
    let payment = load(&app, &auth.scope, &id).await?;
    let route = app.connectors.route(
        payment.mode,
        payment.currency,
        card.number.brand(),
        payment.amount,
    );
    let first = route
        .first()
        .ok_or_else(|| ApiError::unavailable("Card processing is unavailable."))?;
    if first.processor.remote() {
        // Test mode routed to an acquirer's test environment: claimed and sent exactly once.
        if payment.status != PaymentStatus::Pending {
            return Err(ApiError::state(vinr_domain::StateError::NotAllowed {
                from: payment.status,
                operation: "pay",
            }));
        }
        let offset = auth.now(app.clock.now()).0 - app.clock.now().0;
        match connectors::pay::pay(&app, &payment, &card, &route, offset).await? {
            PayOutcome::Recorded { .. } | PayOutcome::Taken => {}
            PayOutcome::Unavailable | PayOutcome::Unknown => {
                return Err(ApiError::unavailable(
                    "Card processing is unavailable right now; nothing was charged.",
                ))
            }
        }
        let payment = load(&app, &auth.scope, &id).await?;
        return Ok(Answer {
            status: StatusCode::OK,
            body: render::payment_json(&payment, &app.settings.public_url).into_bytes(),
            replayed: false,
        });
    }
    let charge = charge::pay(
        (first.name.as_str(), first.processor.as_ref()),
        app.fingerprint_secret.expose(),
        &payment,
        &card,
    )
    .await
    .map_err(charge_error)?;
    step(
        &app,
        &auth,
        &headers,
        Step {
            path,
            fingerprint: body.fingerprint,
            id,
            change: Change::Charged(charge),
        },
    )
    .await
}

/// Test mode: answer a payment's 3-D Secure challenge (`approve` or `fail`).
#[utoipa::path(post, path = "/v1/test_helpers/payments/{id}/authenticate", tag = "test helpers",
    params(("id" = String, Path, description = "The payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::TestAuthenticateRequest = "application/json"), (wire::TestAuthenticateRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The payment after the challenge", body = wire::Payment),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 404, description = "No such payment, or a live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "The payment is not `requires_authentication`", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_authenticate(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::TestAuthenticateRequest>,
) -> Result<Answer, ApiError> {
    let path = format!("/v1/test_helpers/payments/{id}/authenticate");
    test_mode_only(&auth, "POST", &path)?;
    if let Some(answer) = stored_step_answer(&app, &auth, &headers, &path, body.fingerprint).await?
    {
        return Ok(answer);
    }
    let payment = load(&app, &auth.scope, &id).await?;
    let routed = app
        .connectors
        .of_payment(payment.processor.as_deref())
        .ok_or_else(|| ApiError::unavailable("Card processing is unavailable."))?;
    let approved = body.value.outcome == wire::ChallengeOutcome::Approve;
    let processor = (routed.name.as_str(), routed.processor.as_ref());
    let charge = charge::authenticate(processor, &payment, approved)
        .await
        .map_err(charge_error)?;
    step(
        &app,
        &auth,
        &headers,
        Step {
            path,
            fingerprint: body.fingerprint,
            id,
            change: Change::Charged(charge),
        },
    )
    .await
}
