//! Refund handlers (SPEC §5): create (idempotent, like every POST), retrieve, list.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::{metadata, Amount, AmountError, RefundReason};
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::flows::refunds::{self as flow, NewRefund};
use crate::http::body::{idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{next_cursor, parse_query, NoQuery, RefundListParams};
use crate::render;
use crate::state::AppState;

/// Create a refund of a `completed` payment.
#[utoipa::path(post, path = "/v1/refunds", tag = "refunds",
    request_body(content((wire::CreateRefundRequest = "application/json"), (wire::CreateRefundRequest = "application/x-www-form-urlencoded"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    responses(
        (status = 201, description = "The refund, `pending`", body = wire::Refund),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `refunds:write`", body = wire::ErrorBody),
        (status = 404, description = "No such payment in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`payment_state_invalid` (not `completed`) or `amount_too_large`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::CreateRefundRequest>,
) -> Result<(StatusCode, Answer), ApiError> {
    let request = body.value;
    let key = idempotency_key(&headers)?;
    let amount = request
        .amount
        .map(|value| {
            Amount::parse(value)
                .map(Amount::minor_units)
                .map_err(|error| {
                    let message = match error {
                        AmountError::TooSmall => "`amount` must be at least 1 (minor units).",
                        AmountError::TooLarge => "`amount` must be at most 99999999 (minor units).",
                    };
                    ApiError::invalid("amount", message)
                })
        })
        .transpose()?;
    let reason = request
        .reason
        .as_deref()
        .map(|value| {
            RefundReason::parse(value).ok_or_else(|| {
                ApiError::invalid(
                    "reason",
                    "`reason` must be `duplicate`, `fraudulent` or `requested_by_customer`.",
                )
            })
        })
        .transpose()?;
    let metadata = request.metadata.unwrap_or_default();
    metadata::validate(&metadata)
        .map_err(|error| ApiError::invalid("metadata", error.to_string()))?;
    let missing = || ApiError::not_found("payment", &request.payment).with_param("payment");
    if !looks_like(Prefix::Payment, &request.payment) {
        return Err(missing());
    }
    // The flow checks again under its lock; this read only names the right parameter.
    let (scope, payment_id) = (auth.scope.clone(), request.payment.clone());
    if app
        .store
        .read(move |reader| reader.get_payment(&scope, &payment_id))
        .await?
        .is_none()
    {
        return Err(missing());
    }
    let now = auth.now(app.clock.now());
    let new = NewRefund {
        scope: auth.scope.clone(),
        payment_id: request.payment,
        amount,
        reason,
        metadata,
        now,
        pricing: app.settings.pricing.for_account(&auth.scope.account_id),
    };
    let key = idempotency::post_key(&auth, "/v1/refunds", key);
    let answer = idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| flow::create(tx, new).map(String::into_bytes),
    )
    .await?;
    Ok((answer.status, answer))
}

/// Retrieve a refund.
#[utoipa::path(get, path = "/v1/refunds/{id}", tag = "refunds",
    params(("id" = String, Path, description = "The refund id (`re_…`)")),
    responses(
        (status = 200, description = "The refund", body = wire::Refund),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `refunds:read`", body = wire::ErrorBody),
        (status = 404, description = "No such refund in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Refund>, ApiError> {
    if !looks_like(Prefix::Refund, &id) {
        return Err(ApiError::not_found("refund", &id));
    }
    let (scope, wanted) = (auth.scope.clone(), id.clone());
    let refund = app
        .store
        .read(move |reader| reader.get_refund(&scope, &wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("refund", &id))?;
    Ok(Json(render::refund(&refund)))
}

/// List refunds, newest first.
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "A refund id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A refund id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("payment" = Option<String>, Query, description = "Only refunds of this payment")),
    responses(
        (status = 200, description = "A page of refunds", body = wire::RefundList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `refunds:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::RefundList>, ApiError> {
    let params: RefundListParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let (scope, payment, page_query) = (auth.scope.clone(), params.payment, query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_refunds(&scope, payment.as_deref(), &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |r| r.id.as_str());
    Ok(Json(wire::RefundList {
        object: "list".into(),
        data: page.items.iter().map(render::refund).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}
