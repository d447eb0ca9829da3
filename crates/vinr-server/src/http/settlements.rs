//! Settlement handlers (SPEC §7): list, retrieve, a settlement's transactions (JSON pages, or
//! all of them as CSV for spreadsheets with `Accept: text/csv`), and the test helper that runs
//! settlement now.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use vinr_domain::ids::{looks_like, Prefix};
use vinr_domain::settlement::{Settlement, SettlementStatus};
use vinr_domain::{Currency, Mode};
use vinr_types as wire;

use crate::auth::AuthContext;
use crate::http::body::{idempotency_key, ApiBody, PathId};
use crate::http::error::ApiError;
use crate::http::idempotency::{self, Answer};
use crate::http::list::{next_cursor, parse_query, NoQuery, PageParams, SettlementListParams};
use crate::http::payments::test_mode_only;
use crate::render;
use crate::state::AppState;
use crate::store::{BalanceTransactionFilter, Scope, Store};
use crate::workers::settlements::{created_in, run_once, Selection};

/// Retrieve a settlement.
#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements",
    params(("id" = String, Path, description = "The settlement id (`setl_…`)")),
    responses(
        (status = 200, description = "The settlement", body = wire::Settlement),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `settlements:read`", body = wire::ErrorBody),
        (status = 404, description = "No such settlement in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn retrieve(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    _: NoQuery,
) -> Result<Json<wire::Settlement>, ApiError> {
    let settlement = load(&app.store, &auth.scope, &id).await?;
    Ok(Json(render::settlement(&settlement)))
}

/// The settlement `id` of `scope`, or 404.
async fn load(store: &Store, scope: &Scope, id: &str) -> Result<Settlement, ApiError> {
    let missing = || ApiError::not_found("settlement", id);
    if !looks_like(Prefix::Settlement, id) {
        return Err(missing());
    }
    let wanted = id.to_owned();
    store
        .read(move |reader| reader.get_settlement(&wanted))
        .await?
        .filter(|s| s.account_id == scope.account_id && s.mode == scope.mode)
        .ok_or_else(missing)
}

/// List settlements, newest first.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements",
    params(
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25"),
        ("starting_after" = Option<String>, Query, description = "A settlement id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A settlement id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)"),
        ("status" = Option<String>, Query, description = "`pending` or `paid`"),
        ("currency" = Option<String>, Query, description = "ISO 4217 code, e.g. `EUR`")),
    responses(
        (status = 200, description = "A page of settlements", body = wire::SettlementList),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `settlements:read`", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    RawQuery(query): RawQuery,
) -> Result<Json<wire::SettlementList>, ApiError> {
    let params: SettlementListParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let status = params
        .status
        .as_deref()
        .map(|value| {
            SettlementStatus::parse(value)
                .ok_or_else(|| ApiError::invalid("status", "`status` must be `pending` or `paid`."))
        })
        .transpose()?;
    let currency = params
        .currency
        .as_deref()
        .map(|value| {
            Currency::parse(value).ok_or_else(|| {
                ApiError::invalid(
                    "currency",
                    "`currency` must be a supported ISO 4217 code (e.g. `EUR`).",
                )
            })
        })
        .transpose()?;
    let (scope, page_query) = (auth.scope.clone(), query.clone());
    let page = app
        .store
        .read(move |reader| reader.list_settlements(&scope, status, currency, &page_query))
        .await?;
    let next_cursor = next_cursor(&query, &page, |s| s.id.as_str());
    Ok(Json(wire::SettlementList {
        object: "list".into(),
        data: page.items.iter().map(render::settlement).collect(),
        has_more: page.has_more,
        next_cursor,
    }))
}

/// List the balance transactions a settlement gathered, newest first — or, with
/// `Accept: text/csv`, all of them as CSV. Its own payout is not among them (their `net` sums
/// to the settlement's `net`); it is `GET /v1/balance_transactions?source=<setl_…>`.
#[utoipa::path(get, path = "/v1/settlements/{id}/transactions", tag = "settlements",
    params(
        ("id" = String, Path, description = "The settlement id (`setl_…`)"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 25 (JSON only)"),
        ("starting_after" = Option<String>, Query, description = "A balance transaction id: the page after it (older)"),
        ("ending_before" = Option<String>, Query, description = "A balance transaction id: the page before it (newer)"),
        ("created[gte]" = Option<String>, Query, description = "Created at or after (Unix seconds or RFC 3339)"),
        ("created[lt]" = Option<String>, Query, description = "Created before (Unix seconds or RFC 3339)")),
    responses(
        (status = 200, description = "A page of balance transactions; with `Accept: text/csv`, every one as CSV (`id,type,source,amount,fee,net,currency,created_at,availableOn`)",
            content((wire::BalanceTransactionList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Invalid parameters", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 403, description = "The key lacks `settlements:read`", body = wire::ErrorBody),
        (status = 404, description = "No such settlement in this account and mode", body = wire::ErrorBody),
        (status = 429, description = "Rate limited", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn transactions(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    PathId(id): PathId,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params: PageParams = parse_query(query.as_deref())?;
    let query = params.page()?;
    let settlement = load(&app.store, &auth.scope, &id).await?;
    let filter = BalanceTransactionFilter {
        settlement: Some(settlement.id.clone()),
        ..BalanceTransactionFilter::default()
    };
    if wants_csv(&headers) {
        let csv = transactions_csv(&app.store, &auth.scope, &filter).await?;
        let disposition = format!("attachment; filename=\"{}.csv\"", settlement.id);
        return Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/csv; charset=utf-8"),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_str(&disposition)
                        .map_err(|error| ApiError::internal(&error))?,
                ),
            ],
            csv,
        )
            .into_response());
    }
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
    })
    .into_response())
}

/// Whether the client asked for CSV (`Accept: text/csv`, alone or first among others).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.split(';').next().unwrap_or("").trim())
        .find(|media| !media.is_empty())
        .is_some_and(|media| media.eq_ignore_ascii_case("text/csv"))
}

const CSV_HEADER: &str = "id,type,source,amount,fee,net,currency,created_at,availableOn\r\n";

/// Every transaction of the filter as CSV (RFC 4180), oldest first.
async fn transactions_csv(
    store: &Store,
    scope: &Scope,
    filter: &BalanceTransactionFilter,
) -> Result<String, ApiError> {
    let rows = store.all_balance_transactions(scope, filter).await?;
    let mut csv = String::from(CSV_HEADER);
    for b in &rows {
        let wire = render::balance_transaction(b);
        let fields = [
            wire.id,
            wire.kind,
            wire.source,
            wire.amount.to_string(),
            wire.fee.to_string(),
            wire.net.to_string(),
            wire.currency,
            wire.created_at,
            wire.available_on,
        ];
        let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        csv.push_str(&line.join(","));
        csv.push_str("\r\n");
    }
    Ok(csv)
}

/// Quotes a field that needs it (RFC 4180), and defuses spreadsheet formulas.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Test mode: settle everything of this account that is available now, whatever the schedule;
/// the sandbox sends the payouts at once.
#[utoipa::path(post, path = "/v1/test_helpers/settlements/run", tag = "test helpers",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry answers the first run instead of running again")),
    request_body(content((wire::RunSettlementsRequest = "application/json"))),
    responses(
        (status = 200, description = "The settlements this run made (an empty list when nothing was due)", body = wire::SettlementList),
        (status = 400, description = "Invalid body", body = wire::ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = wire::ErrorBody),
        (status = 404, description = "A live key", body = wire::ErrorBody),
        (status = 409, description = "Idempotency conflict", body = wire::ErrorBody)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn test_run(
    State(app): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    body: ApiBody<wire::RunSettlementsRequest>,
) -> Result<Answer, ApiError> {
    const PATH: &str = "/v1/test_helpers/settlements/run";
    test_mode_only(&auth, "POST", PATH)?;
    let key = idempotency::post_key(&auth, PATH, idempotency_key(&headers)?);
    // Held until the answer is stored: a second request with this key meanwhile is refused
    // (409 idempotency_key_in_use) rather than running again.
    let _claim = idempotency::claim(&app, key.as_ref())?;
    if let Some(key) = &key {
        if let Some(answer) = idempotency::stored_answer(&app, key, body.fingerprint).await? {
            return Ok(answer);
        }
    }
    let selection = Selection {
        account_id: Some(auth.scope.account_id.clone()),
        mode: Some(Mode::Test),
        on_demand: true,
    };
    let outcome = run_once(
        &app.store,
        &app.settings.settlements,
        auth.now(app.clock.now()),
        &selection,
    )
    .await?;
    let mut settlements = created_in(&outcome, &auth.scope);
    settlements.reverse();
    let answer = serde_json::to_vec(&wire::SettlementList {
        object: "list".into(),
        data: settlements.iter().map(render::settlement).collect(),
        has_more: false,
        next_cursor: None,
    })
    .map_err(|error| ApiError::internal(&error))?;
    // The run commits group by group and its answer is stored after it: a crash in between
    // lets a retry run again, which settles only what is still due (never anything twice).
    idempotency::run_claimed(
        &app,
        key,
        body.fingerprint,
        StatusCode::OK,
        auth.now(app.clock.now()),
        move |_| Ok(answer),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("btx_1"), "btx_1");
        assert_eq!(csv_field("-400"), "-400");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn csv_is_chosen_by_the_first_media_type() {
        let mut headers = HeaderMap::new();
        assert!(!wants_csv(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert!(wants_csv(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/csv"),
        );
        assert!(!wants_csv(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("TEXT/CSV; q=1"));
        assert!(wants_csv(&headers));
    }
}
