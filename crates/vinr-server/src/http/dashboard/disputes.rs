//! Disputes (SPEC §11, §13): the list with the API's filters (`status`, `payment`) and cursor
//! pagination. A dispute is answered on its payment's page, where `/dashboard/disputes/{id}`
//! leads.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;

use super::api::{int, rows, text, Api, Problem};
use super::pages::{ActionError, DisputeListRow, DisputesPage};
use super::{id_ok, money, next_page, problem_page, see_other, session, when, ListQuery};
use crate::state::AppState;

/// The statuses the filter offers (SPEC §11).
const STATUSES: [&str; 4] = ["needs_response", "under_review", "won", "lost"];

/// `GET /dashboard/disputes`.
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
    let query = ListQuery::parse(raw.as_deref());
    let (status, payment) = (query.get("status"), query.get("payment"));
    let filters = query.filters(&["status", "payment"]);
    let path = query.api_path("/v1/disputes", &filters);
    let answer = api.get(&session.caller, &path).await;
    let mut page = DisputesPage {
        frame: session.frame(&app, "disputes"),
        statuses: STATUSES.iter().map(|s| (*s, *s == status)).collect(),
        status,
        payment,
        disputes: Vec::new(),
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
    page.disputes = rows(&list)
        .iter()
        .map(|d| DisputeListRow {
            id: text(d, "id"),
            payment: text(d, "payment"),
            amount: money(int(d, "amount"), &text(d, "currency")),
            status: text(d, "status"),
            reason: text(d, "reason"),
            due: when(&text(d, "evidenceDueBy")),
            created: when(&text(d, "created_at")),
        })
        .collect();
    page.next = next_page("/dashboard/disputes", &filters, &list);
    session.html(StatusCode::OK, &page)
}

/// `GET /dashboard/disputes/{id}`: to its payment's page, where it is shown and answered.
pub async fn dispute(
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
        let problem = Problem {
            status: 404,
            message: format!("No dispute `{id}` in this account."),
            ..Problem::default()
        };
        return problem_page(&session, &app, &problem);
    }
    let answer = api
        .get(&session.caller, &format!("/v1/disputes/{id}"))
        .await;
    if !answer.ok() {
        return problem_page(&session, &app, &answer.problem());
    }
    let payment = answer
        .json()
        .map(|d| text(&d, "payment"))
        .unwrap_or_default();
    if !id_ok(&payment) {
        let problem = Problem {
            status: 500,
            code: "unreadable".into(),
            message: format!("The API's answer for dispute `{id}` names no payment."),
            param: None,
        };
        return problem_page(&session, &app, &problem);
    }
    see_other(&format!("/dashboard/payments/{payment}#{id}"))
}
