//! The checkout's pages: compile-time askama templates (`templates/checkout/`), HTML-escaped
//! automatically. Each struct is one page; `layout.html` is the frame they share.

use askama::Template;

use super::form::{FieldErrors, Kept};

/// What every page about a payment shows at the top.
pub struct Summary {
    pub merchant: String,
    /// The amount as people read it ([`vinr_domain::Currency::display_minor`]): `€10.00`,
    /// `¥1,234`, `1.234 KWD`.
    pub amount: String,
    pub description: Option<String>,
}

/// The sandbox test cards shown in test mode (SPEC §4), spaced as printed on a card.
pub const TEST_CARDS: &[(&str, &str)] = &[
    ("4242 4242 4242 4242", "Approved"),
    ("5555 5555 5555 4444", "Approved (Mastercard)"),
    ("4000 0000 0000 3220", "3-D Secure challenge"),
    ("4000 0000 0000 0002", "Declined: card declined"),
    ("4000 0000 0000 9995", "Declined: insufficient funds"),
    ("4000 0000 0000 0069", "Declined: expired card"),
    ("4000 0000 0000 0119", "Declined: processing error"),
    ("4000 0000 0000 5126", "Approved; refunds later fail"),
    (
        "4000 0000 0000 0259",
        "Approved, then disputed (fraudulent)",
    ),
];

#[derive(Template)]
#[template(path = "checkout/pay.html")]
pub struct PayPage<'a> {
    pub test_mode: bool,
    pub summary: &'a Summary,
    /// Where the form posts.
    pub action: String,
    pub csrf: String,
    /// No processor for this mode: say so instead of showing a form.
    pub unavailable: bool,
    pub errors: FieldErrors,
    pub error_list: Vec<(&'static str, &'static str)>,
    pub kept: Kept,
    pub test_cards: &'static [(&'static str, &'static str)],
    /// Back to the shop (`returnUrl` with `paymentId`), leaving the payment pending.
    pub back: Option<String>,
}

#[derive(Template)]
#[template(path = "checkout/challenge.html")]
pub struct ChallengePage<'a> {
    pub test_mode: bool,
    /// The acquirer's own authentication decides (a connector): one button that asks it,
    /// not the simulator's approve/fail answers.
    pub acquirer: bool,
    pub summary: &'a Summary,
    pub action: String,
    pub csrf: String,
    pub error: Option<&'static str>,
}

/// How a status page looks: `success`, `failure` or `notice`.
#[derive(Template)]
#[template(path = "checkout/status.html")]
pub struct StatusPage<'a> {
    pub test_mode: bool,
    pub summary: &'a Summary,
    pub tone: &'static str,
    pub title: &'static str,
    pub message: String,
    /// `returnUrl` with `paymentId`, the way back to the merchant.
    pub return_link: Option<String>,
}

#[derive(Template)]
#[template(path = "checkout/error.html")]
pub struct ErrorPage {
    pub test_mode: bool,
    pub title: &'static str,
    pub message: &'static str,
    pub back: Option<String>,
}
