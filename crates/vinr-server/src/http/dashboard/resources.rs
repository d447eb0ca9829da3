//! The other pages (SPEC §13): overview (payments per day as SVG, balance, recent activity),
//! events with their JSON, webhook endpoints with every delivery attempt, settlements with
//! their transactions and CSV, and the test clock with reset. Each reads and acts through
//! [`Api`], as the payments pages do.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use time::OffsetDateTime;
use vinr_domain::limits::{
    CHECKOUT_FORM_BYTES_MAX, DASHBOARD_CHART_DAYS, DASHBOARD_CHART_PAYMENTS_MAX,
    DASHBOARD_SETTLEMENT_ROWS_MAX,
};

use super::api::{int, rows, text, Api, Caller, Problem};
use super::pages::{
    ActionError, AttemptRow, Bar, Chart, ClockPage, EndpointRow, EventPage, EventRow, EventsPage,
    LedgerRow, OverviewPage, SettlementPage, SettlementRow, SettlementsPage, WebhookPage,
    WebhooksPage,
};
use super::{
    encode, forbidden_form, form_key, id_ok, money, next_page, problem_page, see_other, session,
    session_for_action, when, ListQuery, Session,
};
use crate::http::checkout::{form::FormBody, headers};
use crate::state::AppState;
use crate::webhooks::EVENT_TYPES;

/// Every page of a list (at most `max` objects).
async fn list_all(
    api: &Api,
    caller: &Caller,
    path: &str,
    max: usize,
) -> Result<Vec<Value>, Problem> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    let sep = if path.contains('?') { '&' } else { '?' };
    loop {
        let page_path = match &cursor {
            Some(cursor) => format!("{path}{sep}limit=100&starting_after={cursor}"),
            None => format!("{path}{sep}limit=100"),
        };
        let answer = api.get(caller, &page_path).await;
        if !answer.ok() {
            return Err(answer.problem());
        }
        let list = answer.json().unwrap_or_default();
        all.extend(rows(&list));
        cursor = list
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let more = list.get("has_more").and_then(Value::as_bool) == Some(true);
        if !more || cursor.is_none() || all.len() >= max {
            all.truncate(max);
            return Ok(all);
        }
    }
}

fn event_row(event: &Value) -> EventRow {
    let object_id = event
        .get("data")
        .and_then(|d| d.get("object"))
        .map(|o| text(o, "id"))
        .unwrap_or_default();
    EventRow {
        id: text(event, "id"),
        kind: text(event, "type"),
        object_id,
        created: when(&text(event, "created_at")),
    }
}

/// The account's time now: its test clock in test mode.
async fn account_now(api: &Api, session: &Session, app: &AppState) -> String {
    if session.test_mode() {
        let answer = api.get(&session.caller, "/v1/test_helpers/clock").await;
        if let Some(now) = answer
            .json()
            .map(|c| text(&c, "now"))
            .filter(|n| !n.is_empty())
        {
            return now;
        }
    }
    crate::render::timestamp(app.clock.now())
}

fn parse_instant(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

/// `GET /dashboard`: the overview.
pub async fn overview(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let account = api.get(&session.caller, "/v1/account").await;
    let account = account.json().map(|a| text(&a, "name")).unwrap_or_default();
    let charts = if session.can("payments:read") {
        let now = account_now(&api, &session, &app).await;
        let now = parse_instant(&now).unwrap_or_else(OffsetDateTime::now_utc);
        let last_day = now.date();
        let first_day = last_day - time::Duration::days(DASHBOARD_CHART_DAYS - 1);
        let since = format!("{first_day}T00:00:00Z");
        match list_all(
            &api,
            &session.caller,
            &format!("/v1/payments?created[gte]={}", encode(&since)),
            DASHBOARD_CHART_PAYMENTS_MAX,
        )
        .await
        {
            Ok(payments) => Some(charts(&payments, first_day)),
            Err(_) => None,
        }
    } else {
        None
    };
    let (available, pending) = if session.can("balance:read") {
        let balance = api.get(&session.caller, "/v1/balance").await.json();
        let amounts = |name: &str| {
            balance.as_ref().map(|b| {
                b.get(name)
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .map(|a| money(int(a, "amount"), &text(a, "currency")))
                            .collect()
                    })
                    .unwrap_or_default()
            })
        };
        (amounts("available"), amounts("pending"))
    } else {
        (None, None)
    };
    let recent = if session.can("events:read") {
        let answer = api.get(&session.caller, "/v1/events?limit=10").await;
        answer.ok().then(|| {
            rows(&answer.json().unwrap_or_default())
                .iter()
                .map(event_row)
                .collect()
        })
    } else {
        None
    };
    let page = OverviewPage {
        frame: session.frame(&app, "overview"),
        account,
        charts,
        available,
        pending,
        recent,
    };
    session.html(StatusCode::OK, &page)
}

/// Payments per day and currency: one chart each, bars for volume (what was captured), the
/// count in each bar's label.
fn charts(payments: &[Value], first_day: time::Date) -> Vec<Chart> {
    let days = usize::try_from(DASHBOARD_CHART_DAYS).unwrap_or(30);
    let mut by_currency: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
    for payment in payments {
        let Some(created) = parse_instant(&text(payment, "created_at")) else {
            continue;
        };
        let day = (created.date() - first_day).whole_days();
        let Ok(day) = usize::try_from(day) else {
            continue;
        };
        if day >= days {
            continue;
        }
        let series = by_currency
            .entry(text(payment, "currency"))
            .or_insert_with(|| vec![(0, 0); days]);
        series[day].0 += 1;
        series[day].1 += int(payment, "amountCaptured");
    }
    const WIDTH: i64 = 600;
    const HEIGHT: i64 = 120;
    let bar_width = WIDTH / DASHBOARD_CHART_DAYS;
    by_currency
        .into_iter()
        .map(|(currency, series)| {
            let top = series.iter().map(|(_, v)| *v).max().unwrap_or(0);
            let max = top.max(1);
            let bars = series
                .iter()
                .enumerate()
                .map(|(index, (count, volume))| {
                    let height = if *volume > 0 {
                        (volume * HEIGHT / max).max(2)
                    } else if *count > 0 {
                        2
                    } else {
                        0
                    };
                    let day = first_day + time::Duration::days(index as i64);
                    Bar {
                        x: index as i64 * bar_width + 1,
                        y: HEIGHT - height,
                        height,
                        label: format!(
                            "{day}: {count} payment{}, {} captured",
                            if *count == 1 { "" } else { "s" },
                            money(*volume, &currency)
                        ),
                    }
                })
                .collect();
            Chart {
                total: money(series.iter().map(|(_, v)| v).sum(), &currency),
                count: series.iter().map(|(c, _)| c).sum(),
                max_label: money(top, &currency),
                first_day: first_day.to_string(),
                last_day: (first_day + time::Duration::days(DASHBOARD_CHART_DAYS - 1)).to_string(),
                currency,
                bars,
            }
        })
        .collect()
}

/// `GET /dashboard/events` (the API's filters `type` and `payment`, and its cursor).
pub async fn events(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    RawQuery(raw): RawQuery,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let query = ListQuery::parse(raw.as_deref());
    let (kind, payment) = (query.get("type"), query.get("payment"));
    let filters = query.filters(&["type", "payment"]);
    let path = query.api_path("/v1/events", &filters);
    let answer = api.get(&session.caller, &path).await;
    let mut page = EventsPage {
        frame: session.frame(&app, "events"),
        kind,
        payment,
        events: Vec::new(),
        error: None,
        next: None,
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
    page.events = rows(&list).iter().map(event_row).collect();
    page.next = next_page("/dashboard/events", &filters, &list);
    session.html(StatusCode::OK, &page)
}

async fn render_event(
    app: &AppState,
    api: &Api,
    session: &Session,
    id: &str,
    notice: Option<String>,
) -> Response {
    if !id_ok(id) {
        return problem_page(session, app, &not_found("event", id));
    }
    let answer = api.get(&session.caller, &format!("/v1/events/{id}")).await;
    if !answer.ok() {
        return problem_page(session, app, &answer.problem());
    }
    let event = answer.json().unwrap_or_default();
    let page = EventPage {
        frame: session.frame(app, "events"),
        row: event_row(&event),
        json: serde_json::to_string_pretty(&event).unwrap_or_default(),
        can_resend: session.can("webhooks:write"),
        key: form_key(),
        notice,
    };
    session.html(StatusCode::OK, &page)
}

fn not_found(object: &str, id: &str) -> Problem {
    Problem {
        status: 404,
        message: format!("No {object} `{id}` in this account."),
        ..Problem::default()
    }
}

/// `GET /dashboard/events/{id}`: the event's JSON, pretty-printed.
pub async fn event(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_event(&app, &api, &session, &id, None).await
}

/// The session and form of a signed-in POST, CSRF-checked.
async fn begin_post(
    app: &AppState,
    request_headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Session, FormBody), Response> {
    let session = session_for_action(app, request_headers).await?;
    let form = FormBody::parse(body);
    if body.len() > CHECKOUT_FORM_BYTES_MAX || !session.csrf_ok(app, &form) {
        return Err(forbidden_form());
    }
    Ok((session, form))
}

fn form_idempotency_key(form: &FormBody) -> Option<String> {
    form.get("idempotency_key")
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_owned)
}

/// `POST /dashboard/events/{id}/resend`.
pub async fn resend(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, form) = match begin_post(&app, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    if !id_ok(&id) {
        return problem_page(&session, &app, &not_found("event", &id));
    }
    let answer = api
        .call(
            &session.caller,
            Method::POST,
            &format!("/v1/events/{id}/resend"),
            Some(&json!({})),
            form_idempotency_key(&form).as_deref(),
        )
        .await;
    let notice = if answer.ok() {
        "Queued for delivery again to every enabled endpoint subscribed to it.".to_owned()
    } else {
        answer.problem().message
    };
    render_event(&app, &api, &session, &id, Some(notice)).await
}

fn endpoint_row(endpoint: &Value) -> EndpointRow {
    let events = endpoint
        .get("events")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    EndpointRow {
        id: text(endpoint, "id"),
        url: text(endpoint, "url"),
        description: text(endpoint, "description"),
        events,
        status: text(endpoint, "status"),
        created: when(&text(endpoint, "created_at")),
    }
}

/// What the creation form was sent with, to show it again with the API's error.
#[derive(Default)]
struct CreateForm {
    url: String,
    description: String,
    events: Vec<String>,
}

async fn render_webhooks(
    app: &AppState,
    api: &Api,
    session: &Session,
    typed: CreateForm,
    error: Option<ActionError>,
    secret: Option<String>,
    status: StatusCode,
) -> Response {
    let answer = api.get(&session.caller, "/v1/webhooks?limit=100").await;
    if !answer.ok() {
        return problem_page(session, app, &answer.problem());
    }
    let page = WebhooksPage {
        frame: session.frame(app, "webhooks"),
        endpoints: rows(&answer.json().unwrap_or_default())
            .iter()
            .map(endpoint_row)
            .collect(),
        can_write: session.can("webhooks:write"),
        key: form_key(),
        event_types: EVENT_TYPES
            .iter()
            .map(|kind| (*kind, typed.events.iter().any(|t| t == kind)))
            .collect(),
        url: typed.url,
        description: typed.description,
        error,
        secret,
    };
    session.html(status, &page)
}

/// `GET /dashboard/webhooks`.
pub async fn webhooks(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_webhooks(
        &app,
        &api,
        &session,
        CreateForm::default(),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

/// `POST /dashboard/webhooks`: a new endpoint; its secret is shown once, on the answer.
pub async fn create_webhook(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, form) = match begin_post(&app, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    let typed = CreateForm {
        url: form.get("url").unwrap_or("").trim().to_owned(),
        description: form.get("description").unwrap_or("").trim().to_owned(),
        events: form.all("events").into_iter().map(str::to_owned).collect(),
    };
    let mut request = json!({"url": typed.url});
    if !typed.description.is_empty() {
        request["description"] = json!(typed.description);
    }
    // None ticked: the API's default, every type.
    if !typed.events.is_empty() {
        request["events"] = json!(typed.events);
    }
    let answer = api
        .call(
            &session.caller,
            Method::POST,
            "/v1/webhooks",
            Some(&request),
            form_idempotency_key(&form).as_deref(),
        )
        .await;
    if answer.ok() {
        let secret = answer.json().map(|e| text(&e, "secret"));
        return render_webhooks(
            &app,
            &api,
            &session,
            CreateForm::default(),
            None,
            secret,
            StatusCode::CREATED,
        )
        .await;
    }
    let problem = answer.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let error = ActionError {
        action: "create".into(),
        ..ActionError::of(&problem)
    };
    render_webhooks(&app, &api, &session, typed, Some(error), None, status).await
}

/// The headers an attempt sent, as the API records them (none when nothing was sent).
fn sent_headers(attempt: &Value) -> Vec<(String, String)> {
    attempt
        .get("requestHeaders")
        .and_then(Value::as_object)
        .map(|headers| {
            headers
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn render_webhook(
    app: &AppState,
    api: &Api,
    session: &Session,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    if !id_ok(id) {
        return problem_page(session, app, &not_found("webhook endpoint", id));
    }
    let answer = api
        .get(&session.caller, &format!("/v1/webhooks/{id}"))
        .await;
    if !answer.ok() {
        return problem_page(session, app, &answer.problem());
    }
    let endpoint = answer.json().unwrap_or_default();
    let attempts = api
        .get(
            &session.caller,
            &format!("/v1/webhooks/{id}/deliveries?limit=50"),
        )
        .await;
    let attempts = rows(&attempts.json().unwrap_or_default());
    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    if session.can("events:read") {
        for attempt in &attempts {
            let event_id = text(attempt, "event");
            if bodies.contains_key(&event_id) || !id_ok(&event_id) {
                continue;
            }
            let event = api
                .get(&session.caller, &format!("/v1/events/{event_id}"))
                .await;
            let body = if event.ok() {
                String::from_utf8_lossy(&event.body).into_owned()
            } else {
                "(not kept: a test event, or one older than 30 days)".into()
            };
            bodies.insert(event_id, body);
        }
    }
    let attempts = attempts
        .iter()
        .map(|a| {
            let event = text(a, "event");
            AttemptRow {
                id: text(a, "id"),
                request_headers: sent_headers(a),
                request_body: bodies.get(&event).cloned().unwrap_or_default(),
                event,
                event_type: text(a, "eventType"),
                attempt: a.get("attempt").and_then(Value::as_u64).unwrap_or_default(),
                status: text(a, "status"),
                status_code: text(a, "statusCode"),
                latency_ms: a
                    .get("latencyMs")
                    .and_then(Value::as_u64)
                    .unwrap_or_default(),
                excerpt: text(a, "responseExcerpt"),
                error: text(a, "error"),
                fault: text(a, "fault"),
                created: when(&text(a, "created_at")),
            }
        })
        .collect();
    let page = WebhookPage {
        frame: session.frame(app, "webhooks"),
        endpoint: endpoint_row(&endpoint),
        attempts,
        can_write: session.can("webhooks:write"),
        keys: [form_key(), form_key(), form_key(), form_key()],
        notice,
        error,
    };
    session.html(StatusCode::OK, &page)
}

/// `GET /dashboard/webhooks/{id}`: the endpoint and every delivery attempt.
pub async fn webhook(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_webhook(&app, &api, &session, &id, None, None).await
}

/// `POST /dashboard/webhooks/{id}/{action}`: `test`, `disable`, `enable`, `delete`, and
/// `resend` (an attempt's event, to this endpoint only).
pub async fn webhook_action(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path((id, action)): Path<(String, String)>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, form) = match begin_post(&app, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    if !id_ok(&id) {
        return problem_page(&session, &app, &not_found("webhook endpoint", &id));
    }
    let key = form_idempotency_key(&form);
    let (method, path, request, done) = match action.as_str() {
        "test" => (
            Method::POST,
            format!("/v1/webhooks/{id}/test"),
            json!({}),
            "A test event was queued for this endpoint.",
        ),
        "disable" | "enable" => (
            Method::POST,
            format!("/v1/webhooks/{id}"),
            json!({"status": if action == "disable" { "disabled" } else { "enabled" }}),
            if action == "disable" {
                "The endpoint is disabled: nothing is delivered to it."
            } else {
                "The endpoint is enabled."
            },
        ),
        "delete" => (Method::DELETE, format!("/v1/webhooks/{id}"), json!({}), ""),
        "resend" => {
            let event = form.get("event").unwrap_or("").trim().to_owned();
            if !id_ok(&event) {
                return render_webhook(
                    &app,
                    &api,
                    &session,
                    &id,
                    None,
                    Some("Choose an event.".into()),
                )
                .await;
            }
            (
                Method::POST,
                format!("/v1/events/{event}/resend"),
                json!({"webhook": id}),
                "The event was queued for delivery to this endpoint again.",
            )
        }
        _ => return problem_page(&session, &app, &not_found("action", &action)),
    };
    let body = (method != Method::DELETE).then_some(&request);
    let answer = api
        .call(&session.caller, method, &path, body, key.as_deref())
        .await;
    if !answer.ok() {
        // The endpoint's page with the API's message, under the API's status (403, 404, …).
        let problem = answer.problem();
        let mut page = render_webhook(&app, &api, &session, &id, None, Some(problem.message)).await;
        if page.status() == StatusCode::OK {
            if let Ok(status) = StatusCode::from_u16(problem.status) {
                *page.status_mut() = status;
            }
        }
        return page;
    }
    if action == "delete" {
        return see_other("/dashboard/webhooks");
    }
    render_webhook(&app, &api, &session, &id, Some(done.to_owned()), None).await
}

fn settlement_row(s: &Value) -> SettlementRow {
    let currency = text(s, "currency");
    SettlementRow {
        id: text(s, "id"),
        status: text(s, "status"),
        gross: money(int(s, "gross"), &currency),
        refunds: money(int(s, "refunds"), &currency),
        disputes: money(int(s, "disputes"), &currency),
        fees: money(int(s, "fees"), &currency),
        net: money(int(s, "net"), &currency),
        count: s
            .get("transactionCount")
            .and_then(Value::as_u64)
            .unwrap_or_default(),
        created: when(&text(s, "created_at")),
    }
}

/// `GET /dashboard/settlements`.
pub async fn settlements(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    RawQuery(raw): RawQuery,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let cursor = url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, v)| k == "starting_after" && !v.is_empty())
        .map(|(_, v)| v.into_owned());
    let mut path = String::from("/v1/settlements?limit=25");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&starting_after={}", encode(&cursor)));
    }
    let answer = api.get(&session.caller, &path).await;
    if !answer.ok() {
        return problem_page(&session, &app, &answer.problem());
    }
    let list = answer.json().unwrap_or_default();
    let next = (list.get("has_more").and_then(Value::as_bool) == Some(true))
        .then(|| list.get("next_cursor").and_then(Value::as_str))
        .flatten()
        .map(|cursor| format!("/dashboard/settlements?starting_after={cursor}"));
    let page = SettlementsPage {
        frame: session.frame(&app, "settlements"),
        settlements: rows(&list).iter().map(settlement_row).collect(),
        next,
    };
    session.html(StatusCode::OK, &page)
}

fn ledger_row(b: &Value) -> LedgerRow {
    let currency = text(b, "currency");
    LedgerRow {
        id: text(b, "id"),
        kind: text(b, "type"),
        source: text(b, "source"),
        amount: money(int(b, "amount"), &currency),
        fee: money(int(b, "fee"), &currency),
        net: money(int(b, "net"), &currency),
        settlement: text(b, "settlement"),
        created: when(&text(b, "created_at")),
    }
}

/// The settlement and all of its transactions, or the page to answer instead.
async fn load_settlement(
    app: &AppState,
    api: &Api,
    session: &Session,
    id: &str,
) -> Result<(Value, Vec<Value>), Response> {
    if !id_ok(id) {
        return Err(problem_page(session, app, &not_found("settlement", id)));
    }
    let answer = api
        .get(&session.caller, &format!("/v1/settlements/{id}"))
        .await;
    if !answer.ok() {
        return Err(problem_page(session, app, &answer.problem()));
    }
    let settlement = answer.json().unwrap_or_default();
    let transactions = list_all(
        api,
        &session.caller,
        &format!("/v1/settlements/{id}/transactions"),
        DASHBOARD_SETTLEMENT_ROWS_MAX,
    )
    .await
    .map_err(|problem| problem_page(session, app, &problem))?;
    Ok((settlement, transactions))
}

/// `GET /dashboard/settlements/{id}`.
pub async fn settlement(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let (settlement, transactions) = match load_settlement(&app, &api, &session, &id).await {
        Ok(loaded) => loaded,
        Err(response) => return response,
    };
    let page = SettlementPage {
        frame: session.frame(&app, "settlements"),
        row: settlement_row(&settlement),
        period: format!(
            "{} – {}",
            when(&text(&settlement, "periodStart")),
            when(&text(&settlement, "periodEnd"))
        ),
        partial: (transactions.len() as u64) < settlement_row(&settlement).count,
        ledger: transactions.iter().map(ledger_row).collect(),
    };
    session.html(StatusCode::OK, &page)
}

/// `GET /dashboard/settlements/{id}/transactions.csv`: the API's own CSV
/// (`GET /v1/settlements/{id}/transactions` with `Accept: text/csv`), byte for byte, with its
/// file name: one CSV, made in one place.
pub async fn settlement_csv(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    if !id_ok(&id) {
        return problem_page(&session, &app, &not_found("settlement", &id));
    }
    let answer = api
        .call_accepting(
            &session.caller,
            Method::GET,
            &format!("/v1/settlements/{id}/transactions"),
            None,
            None,
            Some("text/csv"),
        )
        .await;
    if !answer.ok() {
        return problem_page(&session, &app, &answer.problem());
    }
    let mut response = (StatusCode::OK, answer.body).into_response();
    headers::apply(response.headers_mut(), None);
    for name in [header::CONTENT_TYPE, header::CONTENT_DISPOSITION] {
        if let Some(value) = answer.headers.get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

async fn render_clock(
    app: &AppState,
    api: &Api,
    session: &Session,
    notice: Option<String>,
    error: Option<ActionError>,
    status: StatusCode,
) -> Response {
    if !session.test_mode() {
        return problem_page(session, app, &not_found("page", "test clock"));
    }
    let answer = api.get(&session.caller, "/v1/test_helpers/clock").await;
    if !answer.ok() {
        return problem_page(session, app, &answer.problem());
    }
    let page = ClockPage {
        frame: session.frame(app, "clock"),
        now: when(&answer.json().map(|c| text(&c, "now")).unwrap_or_default()),
        can_write: session.can("payments:write"),
        keys: [form_key(), form_key(), form_key()],
        error,
        notice,
    };
    session.html(status, &page)
}

/// `GET /dashboard/test-clock` (test mode).
pub async fn clock(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    request_headers: HeaderMap,
) -> Response {
    let session = match session(&app, &request_headers).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    render_clock(&app, &api, &session, None, None, StatusCode::OK).await
}

/// `POST /dashboard/test-clock`: `action=advance` (`days`, `hours`, `minutes`) or
/// `action=reset` (with `confirm`; `webhooks` also removes the endpoints).
pub async fn clock_action(
    State(app): State<AppState>,
    Extension(api): Extension<Api>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (session, form) = match begin_post(&app, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    if !session.test_mode() {
        return problem_page(&session, &app, &not_found("page", "test clock"));
    }
    let key = form_idempotency_key(&form);
    let (path, request) = match form.get("action") {
        Some("advance") => {
            let part = |name: &str, scale: i64| -> Result<i64, ActionError> {
                let value = form.get(name).map(str::trim).unwrap_or("");
                if value.is_empty() {
                    return Ok(0);
                }
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (0..=100_000).contains(v))
                    .map(|v| v * scale)
                    .ok_or_else(|| ActionError {
                        action: "advance".into(),
                        field: Some(name.to_owned()),
                        message: format!("Enter a whole number of {name} (0 to 100,000)."),
                    })
            };
            let seconds = part("days", 86_400)
                .and_then(|d| Ok(d + part("hours", 3_600)? + part("minutes", 60)?));
            match seconds {
                Ok(seconds) => (
                    "/v1/test_helpers/clock/advance",
                    json!({"seconds": seconds}),
                ),
                Err(error) => {
                    return render_clock(
                        &app,
                        &api,
                        &session,
                        None,
                        Some(error),
                        StatusCode::BAD_REQUEST,
                    )
                    .await
                }
            }
        }
        Some("reset") => {
            if form.get("confirm") != Some("yes") {
                return render_clock(
                    &app,
                    &api,
                    &session,
                    None,
                    Some(ActionError {
                        action: "reset".into(),
                        field: Some("confirm".into()),
                        message: "Tick the box to confirm the reset.".into(),
                    }),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await;
            }
            (
                "/v1/test_helpers/reset",
                json!({"webhookEndpoints": form.get("webhooks") == Some("yes")}),
            )
        }
        _ => {
            return render_clock(
                &app,
                &api,
                &session,
                None,
                Some(ActionError {
                    message: "Choose what to do.".into(),
                    ..ActionError::default()
                }),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    };
    let answer = api
        .call(
            &session.caller,
            Method::POST,
            path,
            Some(&request),
            key.as_deref(),
        )
        .await;
    if !answer.ok() {
        let problem = answer.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
        // The API's `seconds` (or none) is the advance form's as a whole.
        let action = if path.ends_with("reset") {
            "reset"
        } else {
            "advance"
        };
        let error = ActionError {
            action: action.into(),
            ..ActionError::of(&problem)
        };
        return render_clock(&app, &api, &session, None, Some(error), status).await;
    }
    let notice = if path.ends_with("reset") {
        let deleted = answer
            .json()
            .and_then(|r| r.get("deleted").cloned())
            .and_then(|d| d.as_object().cloned())
            .map(|d| {
                d.iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        format!("Test data reset. Deleted: {deleted}.")
    } else {
        "The clock moved forward; everything that came due has happened.".into()
    };
    render_clock(&app, &api, &session, Some(notice), None, StatusCode::OK).await
}
