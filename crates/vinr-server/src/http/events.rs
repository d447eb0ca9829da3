//! Event handlers (SPEC §6): read-only views of the events flows wrote.

use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::http::body::PathId;
use crate::http::error::ApiError;
use crate::http::list::{next_cursor, parse_query, EventListParams, NoQuery};
use crate::render;
use crate::state::AppState;

/// Retrieve an event.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events",
    params(("id" = String, Path, description = "The event id (`evt_…`)")),
    responses(
        (status = 200, description = "The event", body = wire::Event),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `events:read`", body = wire::ErrorBody),
        (status = 404, description = "No such event in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Event>, ApiError> {
    if !looks_like(Prefix::Event, &id) {
        return Err(ApiError::not_found("event", &id));
    }
    let record = app
        .store
        .read({
            let (scope, id) = (auth.scope.clone(), id.clone());
            move |reader| reader.get_event(&scope, &id)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    Ok(Json(render::event(record)))
}

/// List events, newest first (kept 30 days).
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "An event id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "An event id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("type" = Option<String>, Query, description = "Only events of this type, e.g. `payment.completed`"),
        ("payment" = Option<String>, Query, description = "Only events about this payment (`pay_…`): its own, its refunds' and its disputes' (a payment's timeline)")),
    responses(
        (status = 200, description = "A page of events", body = wire::EventList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `events:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::EventList>, ApiError> {
    let params: EventListParams = parse_query(query.as_deref())?;
    if let Some(kind) = &params.kind {
        if kind.len() > 64
            || !kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        {
            return Err(ApiError::invalid("type", "`type` is not an event type."));
        }
    }
    let query = params.page()?;
    // An id that cannot be a payment's names none: an empty list, as `refunds?payment=` answers,
    // without a query.
    if let Some(payment) = &params.payment {
        if !looks_like(Prefix::Payment, payment) {
            return Ok(Json(wire::EventList {
                object: "list".into(),
                has_more: false,
                next_cursor: None,
                data: Vec::new(),
            }));
        }
    }
    let page = app
        .store
        .read({
            let (scope, kind, payment, query) = (
                auth.scope.clone(),
                params.kind.clone(),
                params.payment.clone(),
                query.clone(),
            );
            move |reader| reader.list_events(&scope, kind.as_deref(), payment.as_deref(), &query)
        })
        .await?;
    let next_cursor = next_cursor(&query, &page, |e| e.id.as_str());
    Ok(Json(wire::EventList {
        object: "list".into(),
        has_more: page.has_more,
        next_cursor,
        data: page.items.into_iter().map(render::event).collect(),
    }))
}
