//! Payments (SPEC §13): the list with the API's filters and cursor pagination, a payment's
//! page (timeline, refunds, disputes, ledger rows) and its actions, each one API request with
//! the form's own idempotency key.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};
use vinr_domain::limits::{
    CHECKOUT_FORM_BYTES_MAX, DASHBOARD_LEDGER_SOURCES_MAX, DASHBOARD_TIMELINE_EVENTS_MAX,
    DASHBOARD_TIMELINE_PAGE_EVENTS,
};
use vinr_domain::Currency;

use super::api::{int, rows, text, Api, Problem};
use super::pages::{
    ActionError, DisputeRow, LedgerRow, PaymentPage, PaymentRow, PaymentsPage, RefundRow,
    TimelineRow, TEST_CARD_CHOICES,
};
use super::{
    encode, forbidden_form, form_key, id_ok, money, problem_page, session, session_for_action,
    when, Session,
};
use crate::http::checkout::form::FormBody;
use crate::state::AppState;

pub fn payment_row(payment: &Value) -> PaymentRow {
    PaymentRow {
        id: text(payment, "id"),
        amount: money(int(payment, "amount"), &text(payment, "currency")),
        status: text(payment, "status"),
        description: text(payment, "description"),
        created: when(&text(payment, "created_at")),
    }
}

/// The dashboard's query (`status`, `created_gte`/`created_lt` as dates, the cursors) as the
/// API's (`created[gte]=…T00:00:00Z`).
fn api_query(query: &[(String, String)]) -> (String, Vec<(&'static str, String)>) {
    let mut api = Vec::new();
    let mut kept = Vec::new();
    for (name, value) in query {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let (api_name, api_value, keep) = match name.as_str() {
            "status" => ("status", value.to_owned(), "status"),
            "created_gte" => ("created[gte]", day_start(value), "created_gte"),
            "created_lt" => ("created[lt]", day_start(value), "created_lt"),
            "starting_after" => ("starting_after", value.to_owned(), ""),
            "ending_before" => ("ending_before", value.to_owned(), ""),
            _ => continue,
        };
        api.push(format!("{}={}", encode(api_name), encode(&api_value)));
        if !keep.is_empty() {
            kept.push((keep, value.to_owned()));
        }
    }
    (api.join("&"), kept)
}

/// A date (`2026-12-01`) as the instant it begins; anything else as typed (the API says what
/// is wrong with it).
fn day_start(value: &str) -> String {
    if value.len() == 10 && value.as_bytes().get(4) == Some(&b'-') {
        format!("{value}T00:00:00Z")
    } else {
        value.to_owned()
    }
}

fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `GET /dashboard/payments`.
pub async fn list(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    RawQuery(raw): RawQuery,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let pairs = query_pairs(raw.as_deref());
    let (query, kept) = api_query(&pairs);
    let answer = api
        .get(&session.caller, &format!("/v1/payments?limit=25&{query}"))
        .await;
    let filter = |name: &str| {
        kept.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let filters_query = kept
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut page = PaymentsPage {
        frame: session.frame(&app, "payments"),
        status: filter("status"),
        created_gte: filter("created_gte"),
        created_lt: filter("created_lt"),
        statuses: [
            "pending",
            "requires_authentication",
            "authorized",
            "completed",
            "failed",
            "cancelled",
            "expired",
        ]
        .into_iter()
        .map(|value| (value, filter("status") == value))
        .collect(),
        payments: Vec::new(),
        error: None,
        next: None,
        newer: None,
    };
    if !answer.ok() {
        let problem = answer.problem();
        if problem.status == 403 {
            return problem_page(&session, &app, &problem);
        }
        page.error = Some(ActionError {
            action: "filters".into(),
            ..ActionError::of(&problem)
        });
        return session.html(StatusCode::BAD_REQUEST, &page);
    }
    let list = answer.json().unwrap_or_default();
    let data = rows(&list);
    page.payments = data.iter().map(payment_row).collect();
    let sep = if filters_query.is_empty() { "" } else { "&" };
    // The API's `has_more` looks the way the page was asked for: older rows after
    // `starting_after` (or on the first page), newer rows before `ending_before`.
    let has_more = list.get("has_more").and_then(Value::as_bool) == Some(true);
    let asked = |name: &str| pairs.iter().any(|(k, v)| k == name && !v.is_empty());
    let (older, newer) = if asked("ending_before") {
        (true, has_more)
    } else {
        (has_more, asked("starting_after"))
    };
    let link = |direction: &str, id: &str| {
        format!("/dashboard/payments?{filters_query}{sep}{direction}={id}")
    };
    if older {
        page.next = page
            .payments
            .last()
            .map(|last| link("starting_after", &last.id));
    }
    if newer {
        page.newer = page
            .payments
            .first()
            .map(|first| link("ending_before", &first.id));
    }
    session.html(StatusCode::OK, &page)
}

/// `GET /dashboard/payments/{id}`.
pub async fn page(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_payment(&app, &api, &session, &id, None, StatusCode::OK).await
}

async fn render_payment(
    app: &AppState,
    api: &Api,
    session: &Session,
    id: &str,
    error: Option<ActionError>,
    status: StatusCode,
) -> Response {
    let not_found = || Problem {
        status: 404,
        message: format!("No payment `{id}` in this account."),
        ..Problem::default()
    };
    if !id_ok(id) {
        return problem_page(session, app, &not_found());
    }
    let answer = api
        .get(&session.caller, &format!("/v1/payments/{id}"))
        .await;
    if !answer.ok() {
        return problem_page(session, app, &answer.problem());
    }
    let payment = answer.json().unwrap_or_default();
    let currency = text(&payment, "currency");
    let list = |path: String| {
        let api = api.clone();
        let caller = session.caller.clone();
        async move {
            let answer = api.get(&caller, &path).await;
            answer
                .ok()
                .then(|| rows(&answer.json().unwrap_or_default()))
        }
    };
    let refunds = if session.can("refunds:read") {
        list(format!("/v1/refunds?payment={id}&limit=100")).await
    } else {
        None
    };
    let disputes = if session.can("disputes:read") {
        list(format!("/v1/disputes?payment={id}&limit=100")).await
    } else {
        None
    };
    let mut object_ids = vec![id.to_owned()];
    object_ids.extend(refunds.iter().flatten().map(|r| text(r, "id")));
    object_ids.extend(disputes.iter().flatten().map(|d| text(d, "id")));
    let ledger = if session.can("balance:read") {
        let mut ledger = Vec::new();
        for source in object_ids.iter().take(DASHBOARD_LEDGER_SOURCES_MAX) {
            if let Some(found) = list(format!(
                "/v1/balance_transactions?source={source}&limit=100"
            ))
            .await
            {
                ledger.extend(found);
            }
        }
        ledger.sort_by_key(|row| text(row, "created_at"));
        Some(ledger)
    } else {
        None
    };
    let (timeline, timeline_older) = if session.can("events:read") {
        match timeline(api, session, id).await {
            Ok((rows, older)) => (Some(rows), older),
            Err(problem) => return problem_page(session, app, &problem),
        }
    } else {
        (None, None)
    };
    let status_text = text(&payment, "status");
    let captured = int(&payment, "amountCaptured");
    let refundable = captured - int(&payment, "amountRefunded") - int(&payment, "amountDisputed");
    let capturable = int(&payment, "amountCapturable");
    let writes = session.can("payments:write");
    let major = |minor: i64| {
        Currency::parse(&currency)
            .map(|c| c.format_minor(minor.unsigned_abs()))
            .unwrap_or_default()
    };
    let metadata: Vec<(String, String)> = payment
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let card = payment
        .get("paymentMethod")
        .filter(|m| !m.is_null())
        .map(|m| {
            format!(
                "{} •••• {} ({:02}/{})",
                text(m, "brand"),
                text(m, "last4"),
                int(m, "expMonth"),
                int(m, "expYear")
            )
        });
    let page = PaymentPage {
        frame: session.frame(app, "payments"),
        id: id.to_owned(),
        row: payment_row(&payment),
        currency: currency.clone(),
        captured: money(captured, &currency),
        refunded: money(int(&payment, "amountRefunded"), &currency),
        disputed: money(int(&payment, "amountDisputed"), &currency),
        capture_method: text(&payment, "captureMethod"),
        failure: payment
            .get("failureMessage")
            .and_then(Value::as_str)
            .map(str::to_owned),
        card,
        checkout_url: text(&payment, "checkoutUrl"),
        metadata,
        can_capture: writes && status_text == "authorized",
        capturable_major: major(capturable),
        capturable_shown: money(capturable, &currency),
        can_cancel: writes
            && matches!(
                status_text.as_str(),
                "pending" | "requires_authentication" | "authorized"
            ),
        can_refund: session.can("refunds:write") && status_text == "completed" && refundable > 0,
        refundable_major: major(refundable.max(0)),
        refundable_shown: money(refundable.max(0), &currency),
        can_pay: writes && session.test_mode() && status_text == "pending",
        can_dispute: session.can("disputes:write")
            && session.test_mode()
            && status_text == "completed"
            && refundable > 0,
        test_cards: TEST_CARD_CHOICES,
        keys: [form_key(), form_key(), form_key(), form_key(), form_key()],
        error,
        refunds: refunds.map(|refunds| {
            refunds
                .iter()
                .map(|r| RefundRow {
                    id: text(r, "id"),
                    amount: money(int(r, "amount"), &currency),
                    status: text(r, "status"),
                    reason: text(r, "reason"),
                    created: when(&text(r, "created_at")),
                })
                .collect()
        }),
        disputes: disputes.map(|disputes| {
            disputes
                .iter()
                .map(|d| DisputeRow {
                    id: text(d, "id"),
                    amount: money(int(d, "amount"), &currency),
                    status: text(d, "status"),
                    reason: text(d, "reason"),
                    created: when(&text(d, "created_at")),
                    open: session.can("disputes:write") && text(d, "status") == "needs_response",
                    key: form_key(),
                })
                .collect()
        }),
        ledger: ledger.map(|ledger| {
            ledger
                .iter()
                .map(|b| LedgerRow {
                    id: text(b, "id"),
                    kind: text(b, "type"),
                    source: text(b, "source"),
                    amount: money(int(b, "amount"), &currency),
                    fee: money(int(b, "fee"), &currency),
                    net: money(int(b, "net"), &currency),
                    settlement: text(b, "settlement"),
                    created: when(&text(b, "created_at")),
                })
                .collect()
        }),
        timeline,
        timeline_older,
        ledger_partial: object_ids.len() > DASHBOARD_LEDGER_SOURCES_MAX,
    };
    session.html(status, &page)
}

/// A payment's timeline: the API's events about it (its own, its refunds', its disputes'),
/// page by page, oldest first. At most `DASHBOARD_TIMELINE_EVENTS_MAX` (a bounded number of
/// calls); past that, the link to the older ones on the events page.
async fn timeline(
    api: &Api,
    session: &Session,
    id: &str,
) -> Result<(Vec<TimelineRow>, Option<String>), Problem> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    let older = loop {
        let mut path = format!("/v1/events?payment={id}&limit={DASHBOARD_TIMELINE_PAGE_EVENTS}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&starting_after={}", encode(cursor)));
        }
        let answer = api.get(&session.caller, &path).await;
        if !answer.ok() {
            return Err(answer.problem());
        }
        let list = answer.json().unwrap_or_default();
        events.extend(rows(&list));
        cursor = list
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let more = list.get("has_more").and_then(Value::as_bool) == Some(true);
        match &cursor {
            Some(next) if more && events.len() >= DASHBOARD_TIMELINE_EVENTS_MAX => {
                break Some(format!(
                    "/dashboard/events?payment={id}&starting_after={}",
                    encode(next)
                ))
            }
            Some(_) if more => continue,
            _ => break None,
        }
    };
    events.reverse();
    let rows = events
        .iter()
        .map(|event| TimelineRow {
            id: text(event, "id"),
            kind: text(event, "type"),
            object_id: event
                .get("data")
                .and_then(|d| d.get("object"))
                .map(|o| text(o, "id"))
                .unwrap_or_default(),
            created: when(&text(event, "created_at")),
        })
        .collect();
    Ok((rows, older))
}

/// `POST /dashboard/payments/{id}/{action}`: `capture`, `cancel`, `refund`, and in test mode
/// `pay` and `dispute`. The form's `idempotency_key` goes to the API as `Idempotency-Key`.
pub async fn act(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path((id, action)): Path<(String, String)>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = match session_for_action(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let form = FormBody::parse(&body);
    if body.len() > CHECKOUT_FORM_BYTES_MAX || !session.csrf_ok(&app, &form) {
        return forbidden_form();
    }
    if !id_ok(&id) {
        return render_payment(&app, &api, &session, &id, None, StatusCode::NOT_FOUND).await;
    }
    let key = form.get("idempotency_key").unwrap_or("").trim().to_owned();
    let fail = |field: &'static str, message: String| ActionError {
        action: action.clone(),
        field: Some(field.to_owned()),
        message,
    };
    // The payment's currency, to read an amount typed in major units.
    let payment = api
        .get(&session.caller, &format!("/v1/payments/{id}"))
        .await;
    if !payment.ok() {
        return problem_page(&session, &app, &payment.problem());
    }
    let currency = payment
        .json()
        .map(|p| text(&p, "currency"))
        .and_then(|code| Currency::parse(&code));
    let amount = match (form.get("amount").map(str::trim), currency) {
        (None | Some(""), _) => Ok(None),
        (Some(typed), Some(currency)) => currency.parse_major(typed).map(Some).ok_or_else(|| {
            fail(
                "amount",
                format!(
                    "Enter an amount such as {} (at most {} decimals).",
                    currency.format_minor(1234),
                    currency.minor_digits()
                ),
            )
        }),
        (Some(_), None) => Ok(None),
    };
    let amount = match amount {
        Ok(amount) => amount,
        Err(error) => {
            return render_payment(
                &app,
                &api,
                &session,
                &id,
                Some(error),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let mut body = serde_json::Map::new();
    if let Some(amount) = amount {
        body.insert("amount".into(), json!(amount));
    }
    let reason = form.get("reason").map(str::trim).filter(|r| !r.is_empty());
    let path = match action.as_str() {
        "capture" => format!("/v1/payments/{id}/capture"),
        "cancel" => format!("/v1/payments/{id}/cancel"),
        "refund" => {
            body.insert("payment".into(), json!(id));
            if let Some(reason) = reason {
                body.insert("reason".into(), json!(reason));
            }
            "/v1/refunds".to_owned()
        }
        "pay" => {
            body.insert("card".into(), json!(form.get("card").unwrap_or("")));
            format!("/v1/test_helpers/payments/{id}/pay")
        }
        "dispute" => {
            if let Some(reason) = reason {
                body.insert("reason".into(), json!(reason));
            }
            format!("/v1/test_helpers/payments/{id}/dispute")
        }
        // A dispute of this payment: answer it with evidence (submitted for review), or
        // accept it (lost). The API refuses a dispute of another payment's id only by its
        // own rules, so the id is checked to be one of this payment's first.
        "dispute-evidence" | "dispute-accept" => {
            let dispute = form.get("dispute").unwrap_or("").trim().to_owned();
            let own = api
                .get(
                    &session.caller,
                    &format!("/v1/disputes?payment={id}&limit=100"),
                )
                .await
                .json()
                .map(|list| rows(&list).iter().any(|d| text(d, "id") == dispute))
                .unwrap_or(false);
            if !own || !id_ok(&dispute) {
                return render_payment(&app, &api, &session, &id, None, StatusCode::NOT_FOUND)
                    .await;
            }
            body.clear();
            if action == "dispute-evidence" {
                body.insert(
                    "evidence".into(),
                    json!({"uncategorizedText": form.get("evidence").unwrap_or("")}),
                );
                body.insert("submit".into(), json!(true));
                format!("/v1/disputes/{dispute}")
            } else {
                format!("/v1/disputes/{dispute}/close")
            }
        }
        _ => return render_payment(&app, &api, &session, &id, None, StatusCode::NOT_FOUND).await,
    };
    let answer = api
        .call(
            &session.caller,
            Method::POST,
            &path,
            Some(&Value::Object(body)),
            Some(&key).filter(|key| !key.is_empty()).map(String::as_str),
        )
        .await;
    if answer.ok() {
        return super::see_other(&format!("/dashboard/payments/{id}"));
    }
    let problem = answer.problem();
    // Outside the key's scopes (or gone): said on a page of its own, as no form shows it.
    if matches!(problem.status, 401 | 403 | 404) {
        return problem_page(&session, &app, &problem);
    }
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    render_payment(
        &app,
        &api,
        &session,
        &id,
        Some(ActionError {
            action: action.clone(),
            ..ActionError::of(&problem)
        }),
        status,
    )
    .await
}
