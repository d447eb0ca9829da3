//! Webhook endpoint handlers (SPEC §6): register (idempotent, like every POST), list,
//! retrieve, delete, list an endpoint's delivery attempts, send a test event at once; and
//! `POST /v1/events/{id}/resend`, which queues an event again.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, new_id, Prefix};
use vinr_domain::limits::WEBHOOK_DESCRIPTION_CHARS_MAX;
use vinr_domain::webhook::WebhookFaults;
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::clock::{Clock, SystemClock};
use crate::flows::webhooks::{self as flow, NewEndpoint};
use crate::http::body::{idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{next_cursor, parse_query, NoQuery, PageParams};
use crate::render;
use crate::state::AppState;
use crate::store::{
    EventRecord, WebhookAttemptRecord, WebhookEndpointChanges, WebhookEndpointRecord,
};
use crate::webhooks::send::Message;
use crate::webhooks::{self, validate_url, UrlError, EVENT_TYPES, TEST_EVENT_TYPE};

/// The subscribed types: `None` or `["*"]` is every type (stored as an empty list); otherwise
/// known types only, without duplicates, in the order given.
fn parse_events(events: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let Some(events) = events else {
        return Ok(Vec::new());
    };
    if events.is_empty() {
        return Err(ApiError::invalid(
            "events",
            "`events` must list at least one event type, or be [\"*\"] for all.",
        ));
    }
    if events.iter().any(|kind| kind == "*") {
        if events.len() == 1 {
            return Ok(Vec::new());
        }
        return Err(ApiError::invalid(
            "events",
            "`*` (every event type) cannot be combined with other types.",
        ));
    }
    let mut types: Vec<String> = Vec::with_capacity(events.len());
    for (index, kind) in events.into_iter().enumerate() {
        if !EVENT_TYPES.contains(&kind.as_str()) {
            let shown: String = kind.chars().take(64).collect();
            return Err(ApiError::invalid(
                format!("events[{index}]"),
                format!(
                    "`{shown}` is not an event type; expected one of {} or `*`.",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !types.contains(&kind) {
            types.push(kind);
        }
    }
    Ok(types)
}

/// The endpoint URL if the caller's mode may use it (SPEC §6): 400 `parameter_invalid` for a
/// URL that is not a usable webhook URL, 400 `url_not_allowed` for one whose host is out of
/// reach.
fn checked_url(app: &AppState, auth: &AuthContext, url: &str) -> Result<String, ApiError> {
    validate_url(url, auth.mode(), &app.settings.webhooks.test_allowed_hosts).map_err(|error| {
        match error {
            UrlError::Invalid(message) => ApiError::invalid("url", message),
            UrlError::NotAllowed(message) => ApiError::url_not_allowed(message),
        }
    })
}

/// Checked faults (SPEC §12): test mode only (400 on `faults` in live mode), each field in
/// range (400 naming `faults.<field>`). `None` when they inject nothing.
fn checked_faults(
    auth: &AuthContext,
    faults: Option<&wire::WebhookFaults>,
) -> Result<Option<WebhookFaults>, ApiError> {
    let Some(faults) = faults else {
        return Ok(None);
    };
    if auth.mode().is_live() {
        return Err(ApiError::invalid(
            "faults",
            "`faults` exist only in test mode: a live-mode endpoint never injects faults.",
        ));
    }
    WebhookFaults::parse(webhooks::faults_input(faults))
        .map_err(|error| ApiError::invalid(format!("faults.{}", error.field), error.message))
}

async fn endpoint_of(
    app: &AppState,
    auth: &AuthContext,
    id: &str,
) -> Result<WebhookEndpointRecord, ApiError> {
    let missing = || ApiError::not_found("webhook endpoint", id);
    if !looks_like(Prefix::WebhookEndpoint, id) {
        return Err(missing());
    }
    let (scope, wanted) = (auth.scope.clone(), id.to_owned());
    app.store
        .read(move |reader| reader.get_webhook_endpoint(&scope, &wanted))
        .await?
        .ok_or_else(missing)
}

/// Register a webhook endpoint.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    request_body(content((wire::CreateWebhookRequest = "application/json"), (wire::CreateWebhookRequest = "application/x-www-form-urlencoded"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    responses(
        (status = 201, description = "The endpoint, with its signing `secret` (shown only here)", body = wire::WebhookEndpoint),
        (status = 400, description = "Invalid parameters (URL rules, unknown event types, too many endpoints, `faults` out of range or in live mode); `url_not_allowed` for a URL whose host is a loopback, private, link-local, CGNAT, unique-local or metadata address literal or `localhost` (live mode; in test mode loopback is allowed and hosts listed in `[webhooks] test_allowed_hosts` too)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:write`", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::CreateWebhookRequest>,
) -> Result<(StatusCode, Answer), ApiError> {
    let request = body.value;
    let key = idempotency_key(&headers)?;
    let url = checked_url(&app, &auth, &request.url)?;
    let events = parse_events(request.events)?;
    let faults = checked_faults(&auth, request.faults.as_ref())?;
    if let Some(description) = &request.description {
        if description.chars().count() > WEBHOOK_DESCRIPTION_CHARS_MAX {
            return Err(ApiError::invalid(
                "description",
                format!(
                    "`description` must be at most {WEBHOOK_DESCRIPTION_CHARS_MAX} characters."
                ),
            ));
        }
    }
    let now = auth.now(app.clock.now());
    let new = NewEndpoint {
        scope: auth.scope.clone(),
        url,
        events,
        description: request.description,
        faults,
        now,
    };
    let key = idempotency::post_key(&auth, "/v1/webhooks", key);
    let answer = idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| flow::create_endpoint(tx, new).map(String::into_bytes),
    )
    .await?;
    Ok((answer.status, answer))
}

/// Retrieve a webhook endpoint (without its secret).
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`we_…`)")),
    responses(
        (status = 200, description = "The endpoint", body = wire::WebhookEndpoint),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:read`", body = wire::ErrorBody),
        (status = 404, description = "No such endpoint in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::WebhookEndpoint>, ApiError> {
    let endpoint = endpoint_of(&app, &auth, &id).await?;
    Ok(Json(webhooks::wire::endpoint(&endpoint, false)))
}

/// List webhook endpoints, newest first.
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "An endpoint id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "An endpoint id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)")),
    responses(
        (status = 200, description = "A page of endpoints", body = wire::WebhookEndpointList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::WebhookEndpointList>, ApiError> {
    let params: PageParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let (scope, page_query) = (auth.scope.clone(), query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_webhook_endpoints(&scope, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |e| e.id.as_str());
    Ok(Json(wire::WebhookEndpointList {
        object: "list".into(),
        data: page
            .items
            .iter()
            .map(|e| webhooks::wire::endpoint(e, false))
            .collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// Change a webhook endpoint: its URL, event types, description, status, or faults (test
/// mode: `faults` replaces them, `null` clears them). Disabling it drops the deliveries still
/// queued for it and queues none until it is enabled again.
#[utoipa::path(post, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`we_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    request_body(content((wire::UpdateWebhookRequest = "application/json"), (wire::UpdateWebhookRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The endpoint after the change (without its secret)", body = wire::WebhookEndpoint),
        (status = 400, description = "Invalid parameters (`faults` out of range or in live mode among them); `url_not_allowed` for a URL whose host the mode may not reach (the rules of `POST /v1/webhooks`)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:write`", body = wire::ErrorBody),
        (status = 404, description = "No such endpoint in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::UpdateWebhookRequest>,
) -> Result<Answer, ApiError> {
    if !looks_like(Prefix::WebhookEndpoint, &id) {
        return Err(ApiError::not_found("webhook endpoint", &id));
    }
    let request = body.value;
    let key = idempotency_key(&headers)?;
    let url = request
        .url
        .as_deref()
        .map(|url| checked_url(&app, &auth, url))
        .transpose()?;
    let events = request
        .events
        .map(|events| parse_events(Some(events)))
        .transpose()?;
    let faults = request
        .faults
        .as_ref()
        .map(|faults| checked_faults(&auth, faults.as_ref()))
        .transpose()?;
    if let Some(description) = &request.description {
        if description.chars().count() > WEBHOOK_DESCRIPTION_CHARS_MAX {
            return Err(ApiError::invalid(
                "description",
                format!(
                    "`description` must be at most {WEBHOOK_DESCRIPTION_CHARS_MAX} characters."
                ),
            ));
        }
    }
    let enabled = request
        .status
        .as_deref()
        .map(|status| match status {
            "enabled" => Ok(true),
            "disabled" => Ok(false),
            _ => Err(ApiError::invalid(
                "status",
                "`status` must be `enabled` or `disabled`.",
            )),
        })
        .transpose()?;
    let changes = WebhookEndpointChanges {
        url,
        events,
        description: request.description,
        enabled,
        faults,
    };
    let scope = auth.scope.clone();
    let key = idempotency::post_key(&auth, format!("/v1/webhooks/{id}"), key);
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        auth.now(app.clock.now()),
        move |tx| flow::update_endpoint(tx, &scope, &id, &changes).map(String::into_bytes),
    )
    .await
}

/// Delete a webhook endpoint; its queued deliveries are dropped at once.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`we_…`)")),
    responses(
        (status = 200, description = "The endpoint is deleted", body = wire::DeletedWebhookEndpoint),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:write`", body = wire::ErrorBody),
        (status = 404, description = "No such endpoint in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
) -> Result<Answer, ApiError> {
    if !looks_like(Prefix::WebhookEndpoint, &id) {
        return Err(ApiError::not_found("webhook endpoint", &id));
    }
    let scope = auth.scope.clone();
    let body = app
        .store
        .write(move |tx| flow::delete_endpoint(tx, &scope, &id))
        .await?;
    Ok(Answer {
        status: StatusCode::OK,
        body: body.into_bytes(),
        replayed: false,
    })
}

/// List an endpoint's delivery attempts, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint id (`we_…`)"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "An attempt id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "An attempt id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Made at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Made before (Unix seconds or RFC 3339)")),
    responses(
        (status = 200, description = "A page of attempts", body = wire::WebhookAttemptList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:read`", body = wire::ErrorBody),
        (status = 404, description = "No such endpoint in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn deliveries(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::WebhookAttemptList>, ApiError> {
    let params: PageParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let endpoint = endpoint_of(&app, &auth, &id).await?;
    let (scope, page_query) = (auth.scope.clone(), query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_webhook_attempts(&scope, &endpoint.id, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |a| a.id.as_str());
    Ok(Json(wire::WebhookAttemptList {
        object: "list".into(),
        data: page.items.iter().map(webhooks::wire::attempt).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// Send a signed `webhook.test` event to the endpoint now; answers the attempt.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The endpoint id (`we_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry answers the first attempt instead of sending again")),
    request_body(content((wire::TestWebhookRequest = "application/json"))),
    responses(
        (status = 200, description = "The attempt: `status` `succeeded` when the receiver answered 2xx in time", body = wire::WebhookAttempt),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:write`", body = wire::ErrorBody),
        (status = 404, description = "No such endpoint in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    PathId(id): PathId,
    body: ApiBody<wire::TestWebhookRequest>,
) -> Result<Answer, ApiError> {
    let key = idempotency_key(&headers)?;
    let endpoint = endpoint_of(&app, &auth, &id).await?;
    let key = idempotency::post_key(&auth, format!("/v1/webhooks/{id}/test"), key);
    // Held from before the stored-answer check until the attempt is recorded, so a second
    // request with this key cannot send again meanwhile (409 while this one runs).
    let _claim = idempotency::claim(&app, key.as_ref())?;
    if let Some(key) = &key {
        if let Some(answer) = idempotency::stored_answer(&app, key, body.fingerprint).await? {
            return Ok(answer);
        }
    }
    let now = auth.now(app.clock.now());
    let data = serde_json::to_string(&webhooks::wire::endpoint(&endpoint, false))
        .map_err(|error| ApiError::internal(&error))?;
    let event = EventRecord {
        id: new_id(Prefix::Event, now),
        scope: auth.scope.clone(),
        kind: TEST_EVENT_TYPE.into(),
        object_id: endpoint.id.clone(),
        data,
        created_at: now,
    };
    let event_id = event.id.clone();
    let payload =
        serde_json::to_vec(&render::event(event)).map_err(|error| ApiError::internal(&error))?;
    let message = Message {
        event_id: &event_id,
        body: &payload,
        bad_signature: false,
    };
    let outcome = app
        .webhooks
        .send(
            auth.mode(),
            &endpoint.url,
            &endpoint.secret,
            &message,
            SystemClock.now().0 / 1000,
        )
        .await;
    metrics::counter!("vinr_webhook_attempts_total", "result" => outcome.result).increment(1);
    let attempt = WebhookAttemptRecord {
        id: new_id(Prefix::WebhookAttempt, now),
        scope: auth.scope.clone(),
        endpoint_id: endpoint.id,
        delivery_seq: None,
        event_id,
        event_type: TEST_EVENT_TYPE.into(),
        attempt: 1,
        succeeded: outcome.succeeded,
        status_code: outcome.status_code,
        latency_ms: outcome.latency_ms,
        response_excerpt: outcome.response_excerpt,
        error: outcome.error,
        next_attempt_at: None,
        fault: None,
        request_headers: outcome.request_headers,
        created_at: now,
    };
    idempotency::run_claimed(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        now,
        move |tx| flow::record_test_attempt(tx, attempt).map(String::into_bytes),
    )
    .await
}

/// Queue an event again for delivery.
#[utoipa::path(post, path = "/v1/events/{id}/resend", tag = "webhooks",
    params(
        ("id" = String, Path, description = "The event id (`evt_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    request_body(content((wire::ResendEventRequest = "application/json"), (wire::ResendEventRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 202, description = "Queued: one new delivery per endpoint listed, attempted at once", body = wire::EventResend),
        (status = 400, description = "Invalid parameters (e.g. the endpoint is not subscribed to the event's type)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `webhooks:write`", body = wire::ErrorBody),
        (status = 404, description = "No such event (or endpoint) in this account and mode", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn resend(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    PathId(id): PathId,
    body: ApiBody<wire::ResendEventRequest>,
) -> Result<(StatusCode, Answer), ApiError> {
    let key = idempotency_key(&headers)?;
    if !looks_like(Prefix::Event, &id) {
        return Err(ApiError::not_found("event", &id));
    }
    let (scope, wanted) = (auth.scope.clone(), id.clone());
    let event = app
        .store
        .read(move |reader| reader.get_event(&scope, &wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    let endpoint_id = match body.value.webhook {
        None => None,
        Some(webhook) => {
            let endpoint = endpoint_of(&app, &auth, &webhook)
                .await
                .map_err(|error| error.with_param("webhook"))?;
            if !endpoint.enabled {
                return Err(ApiError::invalid(
                    "webhook",
                    format!(
                        "The endpoint {} is disabled; enable it first (`status`: `enabled`).",
                        endpoint.id
                    ),
                ));
            }
            if !endpoint.events.is_empty() && !endpoint.events.contains(&event.kind) {
                return Err(ApiError::invalid(
                    "webhook",
                    format!(
                        "The endpoint {} is not subscribed to `{}` events.",
                        endpoint.id, event.kind
                    ),
                ));
            }
            Some(endpoint.id)
        }
    };
    let now = auth.now(app.clock.now());
    let key = idempotency::post_key(&auth, format!("/v1/events/{id}/resend"), key);
    let answer = idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::ACCEPTED,
        now,
        move |tx| flow::resend(tx, &event, endpoint_id.as_deref(), now).map(String::into_bytes),
    )
    .await?;
    Ok((answer.status, answer))
}
