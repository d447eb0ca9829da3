//! The accounts API (SPEC §10): with a platform key, create (answering the account's first
//! `sk_test_…` key, once), list, retrieve, rename and delete accounts; with an account's key,
//! `GET /v1/account`, the caller's own account, and `POST /v1/test_helpers/reset`, which
//! empties its test mode. The router lets only platform keys reach the `/v1/accounts` routes
//! and only account keys reach the others (403 otherwise).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::Mode;
use vinr_types as wire;

use crate::auth::{AuthContext, PlatformContext};
use crate::flows::accounts as flow;
use crate::http::body::{idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, json_of, Answer};
use crate::http::list::{next_cursor, parse_query, NoQuery, PageParams};
use crate::http::payments::test_mode_only;
use crate::render;
use crate::state::AppState;
use crate::store::{AccountRecord, IdempotencyScope, WebhookEndpoints};

fn account(record: &AccountRecord, secret_key: Option<String>) -> wire::Account {
    wire::Account {
        id: record.id.clone(),
        object: "account".into(),
        name: record.name.clone(),
        created_at: render::timestamp(record.created_at),
        secret_key,
    }
}

/// The idempotency key of a platform POST, kept apart from every account's keys.
fn post_key(
    platform: &PlatformContext,
    path: impl Into<String>,
    key: Option<String>,
) -> Option<IdempotencyScope> {
    crate::idempotency::post_key(&platform.idempotency_scope(), path, key)
}

async fn account_of(app: &AppState, id: &str) -> Result<AccountRecord, ApiError> {
    let missing = || ApiError::not_found("account", id);
    if !looks_like(Prefix::Account, id) {
        return Err(missing());
    }
    let wanted = id.to_owned();
    app.store
        .read(move |reader| reader.get_account(&wanted))
        .await?
        .ok_or_else(missing)
}

/// Create an account; the answer carries its first test secret key, shown only here.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts",
    request_body(content((wire::CreateAccountRequest = "application/json"), (wire::CreateAccountRequest = "application/x-www-form-urlencoded"))),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    responses(
        (status = 201, description = "The account, with its `secretKey` (`sk_test_…`, shown only here)", body = wire::Account),
        (status = 400, description = "Invalid parameters (`name` missing, empty or longer than 200 characters)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid key", body = wire::ErrorBody),
        (status = 403, description = "`platform_key_required`: an account's API key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(app): State<AppState>,
    Extension(platform): Extension<PlatformContext>,
    headers: HeaderMap,
    body: ApiBody<wire::CreateAccountRequest>,
) -> Result<(StatusCode, Answer), ApiError> {
    let key = idempotency_key(&headers)?;
    let name = body.value.name;
    let now = app.clock.now();
    let key = post_key(&platform, "/v1/accounts", key);
    let answer = idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::CREATED,
        now,
        move |tx| {
            let (record, key) = flow::create_account(tx, &name, now)?;
            json_of(&account(&record, Some(key.secret.expose().clone())))
        },
    )
    .await?;
    Ok((answer.status, answer))
}

/// List accounts, newest first.
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "An account id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "An account id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)")),
    responses(
        (status = 200, description = "A page of accounts", body = wire::AccountList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid key", body = wire::ErrorBody),
        (status = 403, description = "`platform_key_required`: an account's API key", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(_platform): Extension<PlatformContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::AccountList>, ApiError> {
    let params: PageParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let page_query = query.clone();
    let page = app
        .store
        .read(move |reader| reader.list_accounts(&page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |a| a.id.as_str());
    Ok(Json(wire::AccountList {
        object: "list".into(),
        data: page.items.iter().map(|a| account(a, None)).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// Retrieve an account.
#[utoipa::path(get, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account id (`acct_…`)")),
    responses(
        (status = 200, description = "The account", body = wire::Account),
        (status = 401, description = "Missing or invalid key", body = wire::ErrorBody),
        (status = 403, description = "`platform_key_required`: an account's API key", body = wire::ErrorBody),
        (status = 404, description = "No such account", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(_platform): Extension<PlatformContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Account>, ApiError> {
    let record = account_of(&app, &id).await?;
    Ok(Json(account(&record, None)))
}

/// Rename an account (the name the hosted checkout page shows).
#[utoipa::path(post, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account id (`acct_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe (1–255 characters)")),
    request_body(content((wire::UpdateAccountRequest = "application/json"), (wire::UpdateAccountRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The account after the change", body = wire::Account),
        (status = 400, description = "Invalid parameters (`name` missing, empty or longer than 200 characters)", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid key", body = wire::ErrorBody),
        (status = 403, description = "`platform_key_required`: an account's API key", body = wire::ErrorBody),
        (status = 404, description = "No such account", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update(
    State(app): State<AppState>,
    Extension(platform): Extension<PlatformContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    body: ApiBody<wire::UpdateAccountRequest>,
) -> Result<Answer, ApiError> {
    let key = idempotency_key(&headers)?;
    if !looks_like(Prefix::Account, &id) {
        return Err(ApiError::not_found("account", &id));
    }
    let name = body.value.name;
    let key = post_key(&platform, format!("/v1/accounts/{id}"), key);
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        app.clock.now(),
        move |tx| json_of(&account(&flow::rename_account(tx, &id, &name)?, None)),
    )
    .await
}

/// Delete an account: the account, its keys and all its test-mode data, in one transaction.
/// Refused while it has live-mode objects.
#[utoipa::path(delete, path = "/v1/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "The account id (`acct_…`)")),
    responses(
        (status = 200, description = "The account is deleted", body = wire::DeletedAccount),
        (status = 401, description = "Missing or invalid key", body = wire::ErrorBody),
        (status = 403, description = "`platform_key_required`: an account's API key", body = wire::ErrorBody),
        (status = 404, description = "No such account", body = wire::ErrorBody),
        (status = 422, description = "`account_has_live_data`: the account has live-mode objects; nothing was deleted", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    Extension(_platform): Extension<PlatformContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::DeletedAccount>, ApiError> {
    if !looks_like(Prefix::Account, &id) {
        return Err(ApiError::not_found("account", &id));
    }
    let wanted = id.clone();
    app.store
        .write(move |tx| flow::delete_account(tx, &wanted))
        .await?;
    Ok(Json(wire::DeletedAccount {
        id,
        object: "account".into(),
        deleted: true,
    }))
}

/// The account the API key belongs to.
#[utoipa::path(get, path = "/v1/account", tag = "accounts",
    responses(
        (status = 200, description = "The caller's account; `livemode` is the key's mode", body = wire::OwnAccount),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "`account_key_required`: a platform key", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn own(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    _: NoQuery,
) -> Result<Json<wire::OwnAccount>, ApiError> {
    let wanted = auth.scope.account_id.clone();
    let record = app
        .store
        .read(move |reader| reader.get_account(&wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("account", &auth.scope.account_id))?;
    Ok(Json(wire::OwnAccount {
        id: record.id,
        object: "account".into(),
        name: record.name,
        created_at: render::timestamp(record.created_at),
        livemode: auth.mode() == Mode::Live,
    }))
}

/// Test mode: delete the caller's test-mode data (payments, refunds, events, webhook
/// deliveries and attempts, idempotency keys, the ledger and balance, settlements, fault rules) in one
/// transaction, keeping the account, its keys and, unless asked, its webhook endpoints. Live
/// mode and every other account are untouched.
#[utoipa::path(post, path = "/v1/test_helpers/reset", tag = "test helpers",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry answers the first reset instead of resetting again")),
    request_body(content((wire::ResetRequest = "application/json"), (wire::ResetRequest = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The rows deleted, per kind of object", body = wire::Reset),
        (status = 400, description = "Invalid body", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `payments:write`, or a platform key (`account_key_required`)", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn reset(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::ResetRequest>,
) -> Result<Answer, ApiError> {
    const PATH: &str = "/v1/test_helpers/reset";
    test_mode_only(&auth, "POST", PATH)?;
    let key = idempotency::post_key(&auth, PATH, idempotency_key(&headers)?);
    let endpoints = if body.value.webhook_endpoints.unwrap_or(false) {
        WebhookEndpoints::Delete
    } else {
        WebhookEndpoints::Keep
    };
    let account_id = auth.scope.account_id.clone();
    // The stored answer is written after the deletions, in their transaction: a retry with
    // this key replays the reset's answer instead of resetting again.
    idempotency::run(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        app.clock.now(),
        move |tx| {
            let deleted = flow::reset_test_data(tx, &account_id, endpoints)?;
            json_of(&wire::Reset {
                object: "reset".into(),
                deleted: wire::ResetDeleted {
                    payments: deleted.payments,
                    refunds: deleted.refunds,
                    disputes: deleted.disputes,
                    events: deleted.events,
                    balance_transactions: deleted.balance_transactions,
                    settlements: deleted.settlements,
                    webhook_deliveries: deleted.webhook_deliveries,
                    webhook_attempts: deleted.webhook_attempts,
                    idempotency_keys: deleted.idempotency_keys,
                    webhook_endpoints: deleted.webhook_endpoints,
                    fault_rules: deleted.fault_rules,
                },
            })
        },
    )
    .await
}
