//! The dashboard's pages: compile-time askama templates (`templates/dashboard/`), HTML-escaped
//! automatically. Each struct is one page; `layout.html` is the frame they share. Values are
//! already formatted for reading (amounts by [`super::money`], times by [`super::when`]).

use askama::Template;

use super::api::Problem;

pub struct NavItem {
    pub id: &'static str,
    pub label: &'static str,
    pub href: &'static str,
    pub current: bool,
}

/// What every signed-in page shows around its content.
pub struct Frame {
    pub test_mode: bool,
    /// The key as `sk_test_…WXYZ` (never the key).
    pub key_display: String,
    pub restricted: bool,
    pub nav: Vec<NavItem>,
    /// The CSRF field of every form on the page (bound to the session).
    pub csrf: String,
}

/// An API error shown by the form (and the field) it belongs to.
#[derive(Debug, Clone, Default)]
pub struct ActionError {
    /// Which form: `capture`, `refund`, `filters`, …
    pub action: String,
    /// The field the API named (`amount`, `url`, …), if any.
    pub field: Option<String>,
    pub message: String,
}

impl ActionError {
    pub fn of(problem: &Problem) -> ActionError {
        ActionError {
            action: String::new(),
            field: problem.param.clone(),
            message: problem.message.clone(),
        }
    }

    /// The message, if it belongs to `field` of form `action`.
    pub fn at(&self, action: &str, field: &str) -> Option<&str> {
        (self.action == action && self.field.as_deref() == Some(field))
            .then_some(self.message.as_str())
    }

    /// The message, if it belongs to form `action` but no field of it is named in `fields`.
    pub fn general(&self, action: &str, fields: &[&str]) -> Option<&str> {
        (self.action == action
            && self
                .field
                .as_deref()
                .is_none_or(|field| !fields.contains(&field)))
        .then_some(self.message.as_str())
    }
}

/// The test cards offered by "pay with a test card" (SPEC §4).
pub const TEST_CARD_CHOICES: &[(&str, &str)] = &[
    ("4242424242424242", "4242 4242 4242 4242 — approved"),
    (
        "5555555555554444",
        "5555 5555 5555 4444 — approved (Mastercard)",
    ),
    (
        "4000000000003220",
        "4000 0000 0000 3220 — 3-D Secure challenge",
    ),
    ("4000000000000002", "4000 0000 0000 0002 — declined"),
    (
        "4000000000009995",
        "4000 0000 0000 9995 — insufficient funds",
    ),
    ("4000000000000069", "4000 0000 0000 0069 — expired card"),
    ("4000000000000119", "4000 0000 0000 0119 — processing error"),
    (
        "4000000000005126",
        "4000 0000 0000 5126 — approved, refunds fail",
    ),
    (
        "4000000000000259",
        "4000 0000 0000 0259 — approved, then disputed",
    ),
];

#[derive(Template)]
#[template(path = "dashboard/sign_in.html")]
pub struct SignInPage<'a> {
    pub csrf: String,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "dashboard/plain.html")]
pub struct PlainPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "dashboard/problem.html")]
pub struct ProblemPage {
    pub frame: Frame,
    pub title: &'static str,
    pub message: String,
}

pub struct PaymentRow {
    pub id: String,
    pub amount: String,
    pub status: String,
    pub description: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/payments.html")]
pub struct PaymentsPage {
    pub frame: Frame,
    pub status: String,
    pub created_gte: String,
    pub created_lt: String,
    /// Each status the filter offers, and whether it is the one chosen.
    pub statuses: Vec<(&'static str, bool)>,
    pub payments: Vec<PaymentRow>,
    /// The API's error about the filters; its `param` is the API's name (`created[gte]`).
    pub error: Option<ActionError>,
    pub next: Option<String>,
    pub newer: Option<String>,
}

impl PaymentsPage {
    /// The message for the filter `param` names (as the API spells it).
    pub fn err(&self, param: &str) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.at("filters", param))
    }

    pub fn general(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|e| e.general("filters", &["status", "created[gte]", "created[lt]"]))
    }
}

pub struct RefundRow {
    pub id: String,
    pub amount: String,
    pub status: String,
    pub reason: String,
    pub created: String,
}

pub struct DisputeRow {
    pub id: String,
    pub amount: String,
    pub status: String,
    pub reason: String,
    pub created: String,
    /// It still `needs_response` and the key may answer it.
    pub open: bool,
    /// The idempotency key of its forms.
    pub key: String,
}

pub struct DisputeListRow {
    pub id: String,
    pub payment: String,
    pub amount: String,
    pub status: String,
    pub reason: String,
    pub due: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/disputes.html")]
pub struct DisputesPage {
    pub frame: Frame,
    pub status: String,
    pub payment: String,
    pub statuses: Vec<(&'static str, bool)>,
    pub disputes: Vec<DisputeListRow>,
    /// The API's error about the filters (by the field it names).
    pub error: Option<ActionError>,
    pub next: Option<String>,
}

impl DisputesPage {
    pub fn err(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.at("filters", field))
    }

    pub fn general(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|e| e.general("filters", &["status", "payment"]))
    }
}

pub struct LedgerRow {
    pub id: String,
    pub kind: String,
    pub source: String,
    pub amount: String,
    pub fee: String,
    pub net: String,
    pub settlement: String,
    pub created: String,
}

pub struct TimelineRow {
    pub id: String,
    pub kind: String,
    pub object_id: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/payment.html")]
pub struct PaymentPage {
    pub frame: Frame,
    pub id: String,
    pub row: PaymentRow,
    pub currency: String,
    pub captured: String,
    pub refunded: String,
    pub disputed: String,
    pub capture_method: String,
    pub failure: Option<String>,
    pub card: Option<String>,
    pub checkout_url: String,
    pub metadata: Vec<(String, String)>,
    pub can_capture: bool,
    pub capturable_major: String,
    /// The same, as people read it (`€749.50`).
    pub capturable_shown: String,
    pub can_cancel: bool,
    pub can_refund: bool,
    pub refundable_major: String,
    /// The same, as people read it.
    pub refundable_shown: String,
    pub can_pay: bool,
    pub can_dispute: bool,
    pub test_cards: &'static [(&'static str, &'static str)],
    /// One idempotency key per form: capture, cancel, refund, pay, dispute.
    pub keys: [String; 5],
    pub error: Option<ActionError>,
    /// `None`: the key may not read them.
    pub refunds: Option<Vec<RefundRow>>,
    pub disputes: Option<Vec<DisputeRow>>,
    pub ledger: Option<Vec<LedgerRow>>,
    /// Oldest first; `None`: the key may not read events.
    pub timeline: Option<Vec<TimelineRow>>,
    /// The events page with the payment's older events, when there are more than shown.
    pub timeline_older: Option<String>,
    /// The ledger shows the rows of the first `DASHBOARD_LEDGER_SOURCES_MAX` objects only.
    pub ledger_partial: bool,
}

impl PaymentPage {
    pub fn err(&self, action: &str, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.at(action, field))
    }

    pub fn general(&self, action: &str) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|e| e.general(action, &["amount", "card", "reason", "evidence"]))
    }
}

pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub object_id: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/events.html")]
pub struct EventsPage {
    pub frame: Frame,
    pub kind: String,
    pub payment: String,
    pub events: Vec<EventRow>,
    /// The API's error about the filters (by the field it names).
    pub error: Option<ActionError>,
    pub next: Option<String>,
}

impl EventsPage {
    pub fn err(&self, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.at("filters", field))
    }

    pub fn general(&self) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|e| e.general("filters", &["type", "payment"]))
    }
}

#[derive(Template)]
#[template(path = "dashboard/event.html")]
pub struct EventPage {
    pub frame: Frame,
    pub row: EventRow,
    pub json: String,
    pub can_resend: bool,
    pub key: String,
    pub notice: Option<String>,
}

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub status: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/webhooks.html")]
pub struct WebhooksPage {
    pub frame: Frame,
    pub endpoints: Vec<EndpointRow>,
    pub can_write: bool,
    pub key: String,
    pub url: String,
    pub description: String,
    /// Each event type an endpoint may subscribe to, and whether the form ticked it.
    pub event_types: Vec<(&'static str, bool)>,
    pub error: Option<ActionError>,
    /// The new endpoint's signing secret, shown once after creation.
    pub secret: Option<String>,
}

impl WebhooksPage {
    /// The message for `field`; the API's `events[3]` is the `events` group's.
    pub fn err(&self, field: &str) -> Option<&str> {
        let error = self.error.as_ref()?;
        let named = error.field.as_deref()?;
        let group = named.split('[').next().unwrap_or(named);
        (error.action == "create" && group == field).then_some(error.message.as_str())
    }

    pub fn general(&self) -> Option<&str> {
        let error = self.error.as_ref()?;
        let named = error
            .field
            .as_deref()
            .map(|f| f.split('[').next().unwrap_or(f));
        (error.action == "create"
            && named.is_none_or(|f| !["url", "description", "events"].contains(&f)))
        .then_some(error.message.as_str())
    }
}

pub struct AttemptRow {
    pub id: String,
    pub event: String,
    pub event_type: String,
    pub attempt: u64,
    pub status: String,
    pub status_code: String,
    pub latency_ms: u64,
    pub excerpt: String,
    pub error: String,
    pub fault: String,
    pub created: String,
    /// What was sent: the headers a receiver got (signature values elided) and the body.
    pub request_headers: Vec<(String, String)>,
    pub request_body: String,
}

#[derive(Template)]
#[template(path = "dashboard/webhook.html")]
pub struct WebhookPage {
    pub frame: Frame,
    pub endpoint: EndpointRow,
    pub attempts: Vec<AttemptRow>,
    pub can_write: bool,
    pub keys: [String; 4],
    pub notice: Option<String>,
    pub error: Option<String>,
}

pub struct SettlementRow {
    pub id: String,
    pub status: String,
    pub gross: String,
    pub refunds: String,
    pub disputes: String,
    pub fees: String,
    pub net: String,
    pub count: u64,
    pub created: String,
}

#[derive(Template)]
#[template(path = "dashboard/settlements.html")]
pub struct SettlementsPage {
    pub frame: Frame,
    pub settlements: Vec<SettlementRow>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard/settlement.html")]
pub struct SettlementPage {
    pub frame: Frame,
    pub row: SettlementRow,
    /// Its transactions (`ledger.html` shows them).
    pub ledger: Vec<LedgerRow>,
    pub period: String,
    /// Fewer rows shown than it has (`DASHBOARD_SETTLEMENT_ROWS_MAX`): the CSV has them all.
    pub partial: bool,
}

#[derive(Template)]
#[template(path = "dashboard/clock.html")]
pub struct ClockPage {
    pub frame: Frame,
    pub now: String,
    pub can_write: bool,
    pub keys: [String; 3],
    /// By form (`advance`, `reset`) and field (`days`, `hours`, `minutes`, `confirm`; the
    /// API's `seconds` is the advance form's own).
    pub error: Option<ActionError>,
    pub notice: Option<String>,
}

impl ClockPage {
    pub fn err(&self, action: &str, field: &str) -> Option<&str> {
        self.error.as_ref().and_then(|e| e.at(action, field))
    }

    pub fn general(&self, action: &str) -> Option<&str> {
        self.error
            .as_ref()
            .and_then(|e| e.general(action, &["days", "hours", "minutes", "confirm"]))
    }
}

pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub label: String,
}

/// One currency's chart of payments per day (count and volume), drawn server-side as SVG.
pub struct Chart {
    pub currency: String,
    pub total: String,
    pub count: u64,
    pub bars: Vec<Bar>,
    pub max_label: String,
    pub first_day: String,
    pub last_day: String,
}

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
pub struct OverviewPage {
    pub frame: Frame,
    pub account: String,
    pub charts: Option<Vec<Chart>>,
    pub available: Option<Vec<String>>,
    pub pending: Option<Vec<String>>,
    pub recent: Option<Vec<EventRow>>,
}
