//! Dispute handlers (SPEC §11): retrieve, list, update (evidence, metadata, submit), close
//! (accept), and the sandbox's test helpers that open and resolve disputes. Every POST is
//! idempotent; every refused transition is 422 `dispute_state_invalid` and changes nothing.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::dispute::{DisputeReason, DisputeStatus, Evidence, Outcome};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::limits::DISPUTE_EVIDENCE_CHARS_MAX;
use vinr_domain::{metadata, Amount, AmountError};
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::flows::disputes::{self as flow, DisputeChanges, NewDispute};
use crate::http::body::{idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{next_cursor, parse_query, DisputeListParams, NoQuery};
use crate::http::payments::test_mode_only;
use crate::render;
use crate::state::AppState;

fn require_dispute_id(id: &str) -> Result<(), ApiError> {
    if looks_like(Prefix::Dispute, id) {
        Ok(())
    } else {
        Err(ApiError::not_found("dispute", id))
    }
}

fn reason(value: Option<&str>) -> Result<DisputeReason, ApiError> {
    let Some(value) = value else {
        return Ok(DisputeReason::General);
    };
    DisputeReason::parse(value).ok_or_else(|| {
        let all: Vec<String> = DisputeReason::ALL
            .iter()
            .map(|r| format!("`{}`", r.as_str()))
            .collect();
        ApiError::invalid(
            "reason",
            format!("`reason` must be one of {}.", all.join(", ")),
        )
    })
}

fn evidence(value: wire::DisputeEvidence) -> Result<Evidence, ApiError> {
    let evidence = Evidence {
        customer_name: value.customer_name,
        product_description: value.product_description,
        shipping_tracking_number: value.shipping_tracking_number,
        uncategorized_text: value.uncategorized_text,
    };
    evidence.validate().map_err(|error| {
        let param = format!("evidence.{}", error.field);
        ApiError::invalid(
            &param,
            format!("`{param}` is longer than {DISPUTE_EVIDENCE_CHARS_MAX} characters."),
        )
    })?;
    Ok(evidence)
}

/// Retrieve a dispute.
#[utoipa::path(get, path = "/v1/disputes/{id}", tag = "disputes",
    params(("id" = String, Path, description = "The dispute id (`dp_…`)")),
    responses(
        (status = 200, description = "The dispute", body = wire::Dispute),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:read`", body = wire::ErrorBody),
        (status = 404, description = "No such dispute in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Dispute>, ApiError> {
    require_dispute_id(&id)?;
    let (scope, wanted) = (auth.scope.clone(), id.clone());
    let dispute = app
        .store
        .read(move |reader| reader.get_dispute(&scope, &wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("dispute", &id))?;
    Ok(Json(render::dispute(&dispute)))
}

/// List disputes, newest first.
#[utoipa::path(get, path = "/v1/disputes", tag = "disputes",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "A dispute id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A dispute id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("payment" = Option<String>, Query, description = "Only disputes of this payment"),
        ("status" = Option<String>, Query, description = "Only disputes in this status")),
    responses(
        (status = 200, description = "A page of disputes", body = wire::DisputeList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::DisputeList>, ApiError> {
    let params: DisputeListParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let status = params
        .status
        .as_deref()
        .map(|value| {
            DisputeStatus::parse(value).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "`status` must be `needs_response`, `under_review`, `won` or `lost`.",
                )
            })
        })
        .transpose()?;
    let (scope, payment, page_query) = (auth.scope.clone(), params.payment, query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_disputes(&scope, payment.as_deref(), status, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |d| d.id.as_str());
    Ok(Json(wire::DisputeList {
        object: "list".into(),
        data: page.items.iter().map(render::dispute).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// Update a dispute that `needs_response`: evidence, metadata, and `submit` to send it for
/// review. In test mode, submitted `uncategorizedText` containing `winning_evidence` wins at
/// once and `losing_evidence` loses.
#[utoipa::path(post, path = "/v1/disputes/{id}", tag = "disputes",
    params(("id" = String, Path, description = "The dispute id (`dp_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    request_body(content((wire::UpdateDisputeRequest = "application/json"), (wire::UpdateDisputeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The dispute after the change", body = wire::Dispute),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:write`", body = wire::ErrorBody),
        (status = 404, description = "No such dispute in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`dispute_state_invalid`: the dispute no longer `needs_response`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::UpdateDisputeRequest>,
) -> Result<Answer, ApiError> {
    let request = body.value;
    let key = idempotency_key(&headers)?;
    let evidence = request.evidence.map(evidence).transpose()?;
    if let Some(metadata) = &request.metadata {
        metadata::validate(metadata)
            .map_err(|error| ApiError::invalid("metadata", error.to_string()))?;
    }
    require_dispute_id(&id)?;
    let changes = DisputeChanges {
        evidence,
        metadata: request.metadata,
        submit: request.submit.unwrap_or(false),
    };
    let now = auth.now(app.clock.now());
    let key = idempotency::post_key(&auth, format!("/v1/disputes/{id}"), key);
    let scope = auth.scope.clone();
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        now,
        move |tx| flow::update(tx, &scope, &id, changes, now).map(String::into_bytes),
    )
    .await
}

/// Close (accept) a dispute that `needs_response`: it is `lost`.
#[utoipa::path(post, path = "/v1/disputes/{id}/close", tag = "disputes",
    params(("id" = String, Path, description = "The dispute id (`dp_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    request_body(content((wire::CloseDisputeRequest = "application/json"), (wire::CloseDisputeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The dispute, `lost`", body = wire::Dispute),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:write`", body = wire::ErrorBody),
        (status = 404, description = "No such dispute in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`dispute_state_invalid`: the dispute no longer `needs_response`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn close(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::CloseDisputeRequest>,
) -> Result<Answer, ApiError> {
    let key = idempotency_key(&headers)?;
    require_dispute_id(&id)?;
    let now = auth.now(app.clock.now());
    let key = idempotency::post_key(&auth, format!("/v1/disputes/{id}/close"), key);
    let scope = auth.scope.clone();
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        now,
        move |tx| flow::close(tx, &scope, &id, now).map(String::into_bytes),
    )
    .await
}

/// Test mode: the shopper's bank disputes a `completed` payment.
#[utoipa::path(post, path = "/v1/test_helpers/payments/{id}/dispute", tag = "test helpers",
    params(("id" = String, Path, description = "The payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::TestDisputeRequest = "application/json"), (wire::TestDisputeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 201, description = "The dispute, `needs_response`", body = wire::Dispute),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:write`", body = wire::ErrorBody),
        (status = 404, description = "No such payment, or a live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`payment_state_invalid` (not `completed`) or `amount_too_large` (more than is neither refunded nor disputed)", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_open(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::TestDisputeRequest>,
) -> Result<Answer, ApiError> {
    let path = format!("/v1/test_helpers/payments/{id}/dispute");
    test_mode_only(&auth, "POST", &path)?;
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
    let reason = reason(request.reason.as_deref())?;
    if !looks_like(Prefix::Payment, &id) {
        return Err(ApiError::not_found("payment", &id));
    }
    let now = auth.now(app.clock.now());
    let new = NewDispute {
        scope: auth.scope.clone(),
        payment_id: id,
        amount,
        reason,
        pricing: app.settings.pricing.for_account(&auth.scope.account_id),
        now,
    };
    let key = idempotency::post_key(&auth, path, key);
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| flow::open(tx, new).map(String::into_bytes),
    )
    .await
}

/// Test mode: the bank decides a dispute `under_review`.
#[utoipa::path(post, path = "/v1/test_helpers/disputes/{id}/resolve", tag = "test helpers",
    params(("id" = String, Path, description = "The dispute id (`dp_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content((wire::ResolveDisputeRequest = "application/json"), (wire::ResolveDisputeRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The dispute, `won` or `lost`", body = wire::Dispute),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `disputes:write`", body = wire::ErrorBody),
        (status = 404, description = "No such dispute, or a live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 422, description = "`dispute_state_invalid`: the dispute is not `under_review`", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_resolve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::ResolveDisputeRequest>,
) -> Result<Answer, ApiError> {
    let path = format!("/v1/test_helpers/disputes/{id}/resolve");
    test_mode_only(&auth, "POST", &path)?;
    let key = idempotency_key(&headers)?;
    let outcome = match body.value.outcome {
        wire::DisputeOutcome::Won => Outcome::Won,
        wire::DisputeOutcome::Lost => Outcome::Lost,
    };
    require_dispute_id(&id)?;
    let now = auth.now(app.clock.now());
    let key = idempotency::post_key(&auth, path, key);
    let scope = auth.scope.clone();
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        now,
        move |tx| flow::resolve(tx, &scope, &id, outcome, now).map(String::into_bytes),
    )
    .await
}
