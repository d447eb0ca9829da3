//! The merchant's balance and its balance transactions (SPEC §7), read from the ledger.

use axum::extract::{RawQuery, State};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::ledger::BalanceType;
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::http::body::PathId;
use crate::http::error::ApiError;
use crate::http::list::{next_cursor, parse_query, BalanceTransactionListParams, NoQuery};
use crate::render;
use crate::state::AppState;
use crate::store::BalanceTransactionFilter;

/// Retrieve the balance: per currency, what is available to settle and what is pending.
#[utoipa::path(get, path = "/v1/balance", tag = "balance",
    responses(
        (status = 200, description = "The balance", body = wire::Balance),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `balance:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    _: NoQuery,
) -> Result<Json<wire::Balance>, ApiError> {
    let (scope, now) = (auth.scope.clone(), auth.now(app.clock.now()));
    let amounts = app
        .store
        .read(move |reader| reader.balance(&scope, now))
        .await?;
    Ok(Json(render::balance(&amounts, auth.scope.mode)))
}

/// Retrieve a balance transaction.
#[utoipa::path(get, path = "/v1/balance_transactions/{id}", tag = "balance",
    params(("id" = String, Path, description = "The balance transaction id (`btx_…`)")),
    responses(
        (status = 200, description = "The balance transaction", body = wire::BalanceTransaction),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `balance:read`", body = wire::ErrorBody),
        (status = 404, description = "No such balance transaction in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve_transaction(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::BalanceTransaction>, ApiError> {
    if !looks_like(Prefix::BalanceTransaction, &id) {
        return Err(ApiError::not_found("balance_transaction", &id));
    }
    let (scope, wanted) = (auth.scope.clone(), id.clone());
    let btx = app
        .store
        .read(move |reader| reader.get_balance_transaction(&scope, &wanted))
        .await?
        .ok_or_else(|| ApiError::not_found("balance_transaction", &id))?;
    Ok(Json(render::balance_transaction(&btx)))
}

/// List balance transactions, newest first.
#[utoipa::path(get, path = "/v1/balance_transactions", tag = "balance",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "A balance transaction id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A balance transaction id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("source" = Option<String>, Query, description = "Only movements of this payment, refund or settlement (its payout)"),
        ("type" = Option<String>, Query, description = "`payment`, `refund`, `fee` or `payout`"),
        ("settlement" = Option<String>, Query, description = "Only transactions this settlement gathered")),
    responses(
        (status = 200, description = "A page of balance transactions", body = wire::BalanceTransactionList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `balance:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list_transactions(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::BalanceTransactionList>, ApiError> {
    let params: BalanceTransactionListParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let kind = params
        .kind
        .as_deref()
        .map(|kind| {
            BalanceType::parse(kind).ok_or_else(|| {
                ApiError::invalid(
                    "type",
                    "`type` must be `payment`, `refund`, `fee`, `payout`, `dispute` or \
                     `dispute_reversal`.",
                )
            })
        })
        .transpose()?;
    let filter = BalanceTransactionFilter {
        source: params.source,
        kind,
        settlement: params.settlement,
    };
    let (scope, page_query) = (auth.scope.clone(), query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_balance_transactions(&scope, &filter, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |b| b.id.as_str());
    Ok(Json(wire::BalanceTransactionList {
        object: "list".into(),
        data: page.items.iter().map(render::balance_transaction).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}
