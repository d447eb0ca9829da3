//! List query parameters shared by every collection (SPEC §2): `limit`, `starting_after`,
//! `ending_before`, `created[gte]`, `created[lt]`, plus each resource's own filter. Unknown
//! parameters are refused, like unknown body fields, and so is a parameter that is not valid
//! UTF-8 or holds a control character (ids and cursors included).

use serde::de::DeserializeOwned;
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use vinr_domain::limits::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use vinr_domain::UnixMillis;

use crate::http::error::ApiError;
use crate::http::text::{self, Urlencoded};
use crate::store::{Cursor, ListQuery, Page};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatedRange {
    pub gte: Option<String>,
    pub lt: Option<String>,
}

/// Declares a list's query parameters: the paging ones every list takes (`limit`,
/// `starting_after`, `ending_before`, `created[gte]`, `created[lt]`) and the resource's own
/// filters, with unknown parameters refused. `page()` validates the paging part.
macro_rules! list_params {
    ($(#[$doc:meta])* $name:ident { $($(#[$attr:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub limit: Option<String>,
            pub starting_after: Option<String>,
            pub ending_before: Option<String>,
            pub created: Option<CreatedRange>,
            $($(#[$attr])* pub $field: $ty,)*
        }

        impl $name {
            /// The page asked for, or a 400 naming the parameter that is wrong.
            pub fn page(&self) -> Result<ListQuery, ApiError> {
                list_query(
                    self.limit.as_deref(),
                    self.starting_after.clone(),
                    self.ending_before.clone(),
                    self.created.as_ref(),
                )
            }
        }
    };
}

list_params! {
    /// Query of a list with no filters of its own: `GET /v1/webhooks`,
    /// `GET /v1/webhooks/{id}/deliveries`, `GET /v1/settlements/{id}/transactions`.
    PageParams {}
}

list_params! {
    /// Query of `GET /v1/payments`.
    PaymentListParams {
        status: Option<String>,
    }
}

list_params! {
    /// Query of `GET /v1/refunds`.
    RefundListParams {
        payment: Option<String>,
    }
}

list_params! {
    /// Query of `GET /v1/disputes`.
    DisputeListParams {
        payment: Option<String>,
        status: Option<String>,
    }
}

list_params! {
    /// Query of `GET /v1/balance_transactions`.
    BalanceTransactionListParams {
        source: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        settlement: Option<String>,
    }
}

list_params! {
    /// Query of `GET /v1/settlements`.
    SettlementListParams {
        status: Option<String>,
        currency: Option<String>,
    }
}

list_params! {
    /// Query of `GET /v1/events`.
    EventListParams {
        #[serde(rename = "type")]
        kind: Option<String>,
        payment: Option<String>,
    }
}

pub fn parse_query<T: DeserializeOwned + Default>(query: Option<&str>) -> Result<T, ApiError> {
    let Some(query) = query.filter(|query| !query.is_empty()) else {
        return Ok(T::default());
    };
    text::check_urlencoded(query.as_bytes(), Urlencoded::Query)?;
    let config = serde_qs::Config::new(2, false);
    let deserializer =
        serde_qs::Deserializer::with_config(&config, query.as_bytes()).map_err(|error| {
            ApiError::malformed_body(format!("The query string is invalid: {error}."))
                .with_param("query")
        })?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|error| query_error(&error.path().to_string(), &error.inner().to_string()))
}

/// A parameter as the query string spells it: `created.gte` is `created[gte]`.
fn bracketed(path: &str) -> String {
    let mut parts = path.split('.').filter(|part| !part.is_empty());
    let head = parts.next().unwrap_or_default().to_owned();
    parts.fold(head, |name, part| format!("{name}[{part}]"))
}

/// SPEC §2's precise error for a query string serde refused, naming the parameter as the
/// caller wrote it, and without serde's internal wording.
fn query_error(path: &str, message: &str) -> ApiError {
    if message.starts_with("unknown field") {
        let name = message.split('`').nth(1).unwrap_or_default();
        let full = if path.ends_with(name) {
            path.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return ApiError::unknown_parameter(&bracketed(&full));
    }
    let param = bracketed(path);
    match param.as_str() {
        "" => ApiError::malformed_body("The query string is invalid.").with_param("query"),
        "created" => ApiError::invalid(
            "created",
            "`created` takes a range: `created[gte]` and/or `created[lt]`.",
        ),
        _ => ApiError::invalid(&param, format!("Invalid value for `{param}`.")),
    }
}

/// For a route that takes no query parameters (a retrieve): any is refused as unknown, as
/// the lists refuse theirs, rather than silently ignored.
pub struct NoQuery;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parse_query::<NoParams>(parts.uri.query()).map(|_| NoQuery)
    }
}

/// Unix seconds (`1767225600`) or RFC 3339 (`2026-01-01T00:00:00Z`).
pub(crate) fn instant(param: &str, value: &str) -> Result<UnixMillis, ApiError> {
    if let Ok(seconds) = value.parse::<i64>() {
        return seconds
            .checked_mul(1000)
            .map(UnixMillis)
            .ok_or_else(|| ApiError::invalid(param, format!("`{param}` is out of range.")));
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .map(|at| UnixMillis((at.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ApiError::invalid(
                param,
                format!("`{param}` must be Unix seconds or an RFC 3339 timestamp."),
            )
        })
}

fn list_query(
    limit: Option<&str>,
    starting_after: Option<String>,
    ending_before: Option<String>,
    created: Option<&CreatedRange>,
) -> Result<ListQuery, ApiError> {
    let limit = match limit {
        None => LIST_LIMIT_DEFAULT,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|limit| (1..=LIST_LIMIT_MAX).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("`limit` must be an integer from 1 to {LIST_LIMIT_MAX}."),
                )
            })?,
    };
    let cursor = match (starting_after, ending_before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "ending_before",
                "Pass at most one of `starting_after` and `ending_before`.",
            ))
        }
        (Some(id), None) => Cursor::StartingAfter(id),
        (None, Some(id)) => Cursor::EndingBefore(id),
        (None, None) => Cursor::None,
    };
    let created_gte = created
        .and_then(|range| range.gte.as_deref())
        .map(|value| instant("created[gte]", value))
        .transpose()?;
    let created_lt = created
        .and_then(|range| range.lt.as_deref())
        .map(|value| instant("created[lt]", value))
        .transpose()?;
    Ok(ListQuery {
        limit,
        cursor,
        created_gte,
        created_lt,
    })
}

/// The cursor for the next page in the same direction, if there is one: the last object's id
/// when paging to older objects, the first's when paging to newer ones.
pub fn next_cursor<T>(
    query: &ListQuery,
    page: &Page<T>,
    id: impl Fn(&T) -> &str,
) -> Option<String> {
    if !page.has_more {
        return None;
    }
    let edge = match query.cursor {
        Cursor::EndingBefore(_) => page.items.first(),
        Cursor::None | Cursor::StartingAfter(_) => page.items.last(),
    };
    edge.map(|item| id(item).to_owned())
}
