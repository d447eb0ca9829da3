//! Reads back one account's objects through the API (every page of every list), for the
//! checker.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::http::{Conn, Target};
use crate::torture::check::{
    Stored, StoredEvent, StoredPayment, StoredRefund, StoredSettlement, StoredTransaction,
};

/// Longest one page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// A bound on the pages of one list (100 objects each), so a server that always says
/// `has_more` cannot keep the tool reading forever.
const PAGES_MAX: usize = 100_000;

/// Everything the account of `target`'s key holds.
pub async fn fetch(target: &Target) -> Result<Stored, String> {
    let mut balance_conn = Conn::new(target.addr);
    let (payments, refunds, events, transactions, settlements, balance) = tokio::join!(
        list_all(target, "/v1/payments"),
        list_all(target, "/v1/refunds"),
        list_all(target, "/v1/events"),
        list_all(target, "/v1/balance_transactions"),
        list_all(target, "/v1/settlements"),
        get(target, &mut balance_conn, "/v1/balance"),
    );
    let mut balance_by_currency = BTreeMap::new();
    let balance = balance?;
    for part in ["available", "pending"] {
        for amount in balance[part].as_array().into_iter().flatten() {
            *balance_by_currency
                .entry(text(amount, "currency"))
                .or_default() += int(amount, "amount");
        }
    }
    Ok(Stored {
        payments: payments?
            .iter()
            .map(|p| StoredPayment {
                id: text(p, "id"),
                key: p["metadata"]["torture"].as_str().map(str::to_owned),
                status: text(p, "status"),
                amount: int(p, "amount"),
                currency: text(p, "currency"),
                manual: p["captureMethod"] == "manual",
                captured: int(p, "amountCaptured"),
                refunded: int(p, "amountRefunded"),
            })
            .collect(),
        refunds: refunds?
            .iter()
            .map(|r| StoredRefund {
                id: text(r, "id"),
                key: r["metadata"]["torture"].as_str().map(str::to_owned),
                payment: text(r, "payment"),
                amount: int(r, "amount"),
                status: text(r, "status"),
            })
            .collect(),
        events: events?
            .iter()
            .map(|e| StoredEvent {
                kind: text(e, "type"),
                object: text(&e["data"]["object"], "id"),
                status: text(&e["data"]["object"], "status"),
            })
            .collect(),
        transactions: transactions?
            .iter()
            .map(|t| StoredTransaction {
                kind: text(t, "type"),
                source: text(t, "source"),
                amount: int(t, "amount"),
                net: int(t, "net"),
                currency: text(t, "currency"),
                settlement: t["settlement"].as_str().map(str::to_owned),
            })
            .collect(),
        settlements: settlements?
            .iter()
            .map(|s| StoredSettlement {
                id: text(s, "id"),
                net: int(s, "net"),
            })
            .collect(),
        balance: balance_by_currency,
    })
}

fn text(object: &Value, field: &str) -> String {
    object[field].as_str().unwrap_or_default().to_owned()
}

fn int(object: &Value, field: &str) -> i64 {
    object[field].as_i64().unwrap_or_default()
}

async fn get(target: &Target, conn: &mut Conn, path: &str) -> Result<Value, String> {
    let uri = target.uri(path).map_err(|f| f.to_string())?;
    let req = target.request(Method::GET, uri, None, None);
    let response = conn
        .send(req, true, Instant::now() + PAGE_TIMEOUT)
        .await
        .map_err(|f| format!("GET {path}: {f}"))?;
    serde_json::from_slice(&response.body).map_err(|e| format!("GET {path}: not JSON: {e}"))
}

/// Every object of a list, following `next_cursor` page by page.
async fn list_all(target: &Target, path: &str) -> Result<Vec<Value>, String> {
    let mut conn = Conn::new(target.addr);
    let mut objects = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..PAGES_MAX {
        let page_path = match &cursor {
            None => format!("{path}?limit=100"),
            Some(after) => format!("{path}?limit=100&starting_after={after}"),
        };
        let page = get(target, &mut conn, &page_path).await?;
        let data = page["data"]
            .as_array()
            .ok_or_else(|| format!("GET {page_path}: no data array"))?;
        objects.extend(data.iter().cloned());
        if page["has_more"] != true {
            return Ok(objects);
        }
        cursor = page["next_cursor"]
            .as_str()
            .or_else(|| data.last().and_then(|last| last["id"].as_str()))
            .map(str::to_owned);
        if cursor.is_none() {
            return Err(format!("GET {page_path}: has_more without a cursor"));
        }
    }
    Err(format!("GET {path}: more than {PAGES_MAX} pages"))
}
