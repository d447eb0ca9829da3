//! Hosted checkout (SPEC §4): the page behind a payment's `checkoutUrl`, its card form, the
//! 3-D Secure challenge, and the 303 back to the merchant's `returnUrl?…&paymentId=…`.
//!
//! Public routes (no API key): the unguessable checkout token in the path is the only
//! credential, and it opens its one payment. Pages are server-rendered from compile-time,
//! auto-escaped templates ([`pages`]), work without JavaScript and carry a strict CSP
//! ([`headers`]); every form is CSRF-protected ([`csrf`]). A card number lives only in the
//! request being served: it is never logged, stored or rendered (only brand, last4, expiry and
//! a keyed fingerprint are kept).
//!
//! Double submits: a second POST for the same payment on this node waits for the first, then
//! follows its outcome; across nodes the flow's `only_from` refuses the second transition
//! inside the write transaction, so a payment is paid at most once. (The processor is called
//! with the payment, whose id a real acquirer connector sends as its idempotency key.)

pub mod csrf;
pub mod form;
pub mod headers;
pub mod pages;

use std::time::Duration;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use vinr_domain::limits::{
    CHECKOUT_CONCURRENT_SUBMIT_POLL_MS, CHECKOUT_CONCURRENT_SUBMIT_WAIT_MS,
    CHECKOUT_FORM_BYTES_MAX, CHECKOUT_TOKEN_BYTES_MAX, CHECKOUT_TOKEN_RANDOM_CHARS,
    DATABASE_UNAVAILABLE_RETRY_AFTER_S,
};
use vinr_domain::{Mode, Payment, PaymentStatus, UnixMillis};

use crate::charge::{self, Charge, ChargeError};
use crate::connectors::{self, pay::PayOutcome};
use crate::flows::payments::{self as flow, Transition};
use crate::flows::FlowError;
use crate::http::request_id;
use crate::inflight::InflightGuard;
use crate::state::AppState;
use crate::store::{Scope, StoreError};
use form::{FieldErrors, FormBody, Kept};
use pages::{ChallengePage, ErrorPage, PayPage, StatusPage, Summary};

/// The stylesheet, compiled in (the CSP allows styles from this server only, none inline).
pub const STYLESHEET: &str = include_str!("../../../templates/checkout/checkout.css");
pub const STYLESHEET_PATH: &str = "/checkout/assets/checkout.css";

/// Whether `token` could be a checkout token; anything else is a 404 without a database read.
fn token_shape_ok(token: &str) -> bool {
    (CHECKOUT_TOKEN_RANDOM_CHARS..=CHECKOUT_TOKEN_BYTES_MAX).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// An HTML answer with the checkout's security headers.
struct Html {
    status: StatusCode,
    body: String,
    /// The return URL's origin, allowed as a `form-action` target (the 303 after a POST).
    return_origin: Option<String>,
    set_cookie: Option<HeaderValue>,
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.body,
        )
            .into_response();
        headers::apply(response.headers_mut(), self.return_origin.as_deref());
        if let Some(cookie) = self.set_cookie {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// A page that is not about a payment: unknown link, forbidden form, an error of ours.
fn error_page(
    status: StatusCode,
    title: &'static str,
    message: &'static str,
    back: Option<String>,
) -> Response {
    let page = ErrorPage {
        test_mode: false,
        title,
        message,
        back,
    };
    let body = page.render().unwrap_or_else(|_| title.to_owned());
    Html {
        status,
        body,
        return_origin: None,
        set_cookie: None,
    }
    .into_response()
}

fn not_found() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Payment link not found",
        "This payment link is not valid. Check the link, or go back to the shop and start again.",
        None,
    )
}

fn internal(detail: &dyn std::fmt::Display) -> Response {
    tracing::error!(request_id = %request_id::current(), %detail, "checkout failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Your payment could not be processed because of an error on our side. Please try again.",
        None,
    )
}

/// The page for a failed read or write: 503 with `Retry-After` when the database is away or
/// the writer busy, as the API answers; 500 otherwise.
fn store_failure(error: StoreError) -> Response {
    let mut page = match error {
        StoreError::Unavailable(why) => {
            tracing::warn!(request_id = %request_id::current(), why, "store unavailable");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The payment service is busy. Nothing was charged; please try again shortly.",
                None,
            )
        }
        // A payment submitted now may have been recorded even so (the answer was lost): the
        // page is not told "nothing was charged", it is sent to look again.
        StoreError::Outage(detail) => {
            tracing::warn!(request_id = %request_id::current(), %detail, "database unavailable");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The payment service is unavailable for a moment. Open the payment page again \
                 shortly: it shows whether your payment went through.",
                None,
            )
        }
        StoreError::Database(_) => return internal(&error),
    };
    page.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(DATABASE_UNAVAILABLE_RETRY_AFTER_S),
    );
    page
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    headers::apply(response.headers_mut(), None);
    response
}

/// `returnUrl` with `paymentId=<id>` appended to the query it already has.
pub fn return_url_with_id(return_url: &str, payment_id: &str) -> Option<String> {
    let mut url = url::Url::parse(return_url).ok()?;
    url.query_pairs_mut().append_pair("paymentId", payment_id);
    Some(url.into())
}

/// A payment found by its checkout token, with what its pages show.
struct Loaded {
    payment: Payment,
    summary: Summary,
    /// How far the account's test clock ran ahead when the payment was read (0 in live mode).
    clock_offset_ms: i64,
}

impl Loaded {
    /// The payment's time: real time on its account's clock (SPEC §10).
    fn now(&self, app: &AppState) -> UnixMillis {
        app.clock.now().plus_ms(self.clock_offset_ms)
    }

    fn action(&self, what: &str) -> String {
        format!("/checkout/{}/{what}", self.payment.checkout_token)
    }

    fn page_path(&self) -> String {
        format!("/checkout/{}", self.payment.checkout_token)
    }

    fn test_mode(&self) -> bool {
        self.payment.mode == Mode::Test
    }

    fn return_link(&self) -> Option<String> {
        return_url_with_id(&self.payment.return_url, &self.payment.id)
    }

    fn html(&self, status: StatusCode, body: String, set_cookie: Option<HeaderValue>) -> Response {
        Html {
            status,
            body,
            return_origin: headers::origin_of(&self.payment.return_url),
            set_cookie,
        }
        .into_response()
    }
}

async fn load(app: &AppState, token: &str) -> Result<Option<Loaded>, Response> {
    if !token_shape_ok(token) {
        return Ok(None);
    }
    let token = token.to_owned();
    let found = app
        .store
        .read(move |reader| {
            let Some(payment) = reader.payment_by_checkout_token(&token)? else {
                return Ok(None);
            };
            let merchant = reader
                .get_account(&payment.account_id)?
                .map(|account| account.name);
            let clock_offset_ms = match payment.mode {
                Mode::Test => reader.clock_offset(&payment.account_id)?,
                Mode::Live => 0,
            };
            Ok::<_, StoreError>(Some((payment, merchant, clock_offset_ms)))
        })
        .await
        .map_err(store_failure)?;
    Ok(found.map(|(payment, merchant, clock_offset_ms)| {
        let summary = Summary {
            merchant: merchant.unwrap_or_else(|| "the merchant".into()),
            amount: payment
                .currency
                .display_minor(i64::try_from(payment.amount).unwrap_or(i64::MAX)),
            description: payment.description.clone(),
        };
        Loaded {
            payment,
            summary,
            clock_offset_ms,
        }
    }))
}

/// Whether the shopper may still act on this payment (the expiry worker may not have run yet).
fn open(app: &AppState, loaded: &Loaded) -> bool {
    matches!(
        loaded.payment.status,
        PaymentStatus::Pending | PaymentStatus::RequiresAuthentication
    ) && loaded.now(app) < loaded.payment.expires_at
}

fn render(loaded: &Loaded, status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => loaded.html(status, body, None),
        Err(error) => internal(&error),
    }
}

/// The page for a payment whose checkout is over (or never began): what happened, and the
/// way back to the merchant.
fn status_page(loaded: &Loaded) -> Response {
    let payment = &loaded.payment;
    let (tone, title, message) = match payment.status {
        PaymentStatus::Completed | PaymentStatus::Authorized => (
            "success",
            "Payment received",
            format!(
                "Thank you: {} has received your payment of {}.",
                loaded.summary.merchant, loaded.summary.amount
            ),
        ),
        PaymentStatus::Failed => (
            "failure",
            "Payment failed",
            format!(
                "{} Nothing was charged.",
                payment
                    .failure_code
                    .map_or("The payment could not be completed.", |code| code.message())
            ),
        ),
        PaymentStatus::Cancelled => (
            "notice",
            "Payment cancelled",
            "The merchant cancelled this payment. Nothing was charged.".to_owned(),
        ),
        PaymentStatus::Expired | PaymentStatus::Pending | PaymentStatus::RequiresAuthentication => (
            "notice",
            "This payment link has expired",
            "The time to pay has run out. Nothing was charged; return to the shop to start again."
                .to_owned(),
        ),
    };
    render(
        loaded,
        StatusCode::OK,
        &StatusPage {
            test_mode: loaded.test_mode(),
            summary: &loaded.summary,
            tone,
            title,
            message,
            return_link: loaded.return_link(),
        },
    )
}

fn pay_page(
    app: &AppState,
    loaded: &Loaded,
    csrf_cookie: &str,
    errors: FieldErrors,
    kept: Kept,
) -> Result<String, askama::Error> {
    PayPage {
        test_mode: loaded.test_mode(),
        summary: &loaded.summary,
        action: loaded.action("pay"),
        csrf: csrf_key(app).sign(csrf_cookie, &loaded.payment.checkout_token),
        unavailable: !app.processing_available(loaded.payment.mode),
        error_list: errors.list(),
        errors,
        kept,
        test_cards: pages::TEST_CARDS,
        back: loaded.return_link(),
    }
    .render()
}

fn challenge_page(
    app: &AppState,
    loaded: &Loaded,
    csrf_cookie: &str,
    error: Option<&'static str>,
) -> Result<String, askama::Error> {
    let acquirer = app
        .connectors
        .of_payment(loaded.payment.processor.as_deref())
        .is_some_and(|routed| routed.processor.remote());
    ChallengePage {
        test_mode: loaded.test_mode(),
        acquirer,
        summary: &loaded.summary,
        action: loaded.action("authenticate"),
        csrf: csrf_key(app).sign(csrf_cookie, &loaded.payment.checkout_token),
        error,
    }
    .render()
}

fn csrf_key(app: &AppState) -> csrf::CsrfKey {
    csrf::CsrfKey::derive(app.fingerprint_secret.expose())
}

fn secure_cookies(app: &AppState) -> bool {
    app.settings.public_url.starts_with("https://")
}

/// `GET /checkout/{token}`: the form, the challenge, or what became of the payment.
pub async fn page(
    State(app): State<AppState>,
    Path(token): Path<String>,
    request_headers: HeaderMap,
) -> Response {
    let loaded = match load(&app, &token).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    if !open(&app, &loaded) {
        return status_page(&loaded);
    }
    let (cookie, set_cookie) = csrf::cookie_or_new(&request_headers, secure_cookies(&app));
    let (status, body) = match loaded.payment.status {
        PaymentStatus::RequiresAuthentication => {
            (StatusCode::OK, challenge_page(&app, &loaded, &cookie, None))
        }
        _ => {
            let status = if app.processing_available(loaded.payment.mode) {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (
                status,
                pay_page(
                    &app,
                    &loaded,
                    &cookie,
                    FieldErrors::default(),
                    Kept::default(),
                ),
            )
        }
    };
    match body {
        Ok(body) => loaded.html(status, body, set_cookie),
        Err(error) => internal(&error),
    }
}

/// Where the browser goes once a POST is done: back to the merchant when the payment
/// succeeded, otherwise to the checkout page, which shows the challenge or the outcome.
fn after(loaded: &Loaded) -> Response {
    match loaded.payment.status {
        PaymentStatus::Completed | PaymentStatus::Authorized => match loaded.return_link() {
            Some(link) => {
                let mut response = see_other(&link);
                headers::apply(
                    response.headers_mut(),
                    headers::origin_of(&loaded.payment.return_url).as_deref(),
                );
                response
            }
            None => see_other(&loaded.page_path()),
        },
        _ => see_other(&loaded.page_path()),
    }
}

/// Claims the payment for one submission on this node; a second one waits for the first and
/// then follows its outcome, unless it left the payment still `expected` (it failed before
/// recording anything). `Err` is the page to answer instead: that outcome, not found, or busy
/// when the first took too long.
async fn claim(
    app: &AppState,
    loaded: &Loaded,
    token: &str,
    expected: PaymentStatus,
) -> Result<InflightGuard<String>, Response> {
    claim_or_follow(app, loaded, token, expected, false).await
}

/// [`claim`]; with `follow`, a request that had to wait for another one on the same payment
/// does not repeat its work: it shows the page as that one left it (the acquirer's return
/// page, so that a burst of reloads asks the acquirer once per node, not once per request).
async fn claim_or_follow(
    app: &AppState,
    loaded: &Loaded,
    token: &str,
    expected: PaymentStatus,
    follow: bool,
) -> Result<InflightGuard<String>, Response> {
    let key = loaded.payment.id.clone();
    let mut waited = false;
    for _ in 0..CHECKOUT_CONCURRENT_SUBMIT_WAIT_MS / CHECKOUT_CONCURRENT_SUBMIT_POLL_MS {
        if let Some(guard) = app.checkout_submissions.claim(&key) {
            if waited {
                match load(app, token).await? {
                    Some(fresh) if follow || fresh.payment.status != expected => {
                        return Err(after(&fresh))
                    }
                    Some(_) => {}
                    None => return Err(not_found()),
                }
            }
            return Ok(guard);
        }
        waited = true;
        tokio::time::sleep(Duration::from_millis(CHECKOUT_CONCURRENT_SUBMIT_POLL_MS)).await;
    }
    Err(busy(loaded))
}

/// The common start of both POSTs: the payment, a valid CSRF field, and the form.
async fn begin_post(
    app: &AppState,
    token: &str,
    request_headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Loaded, String, FormBody), Response> {
    let loaded = match load(app, token).await? {
        Some(loaded) => loaded,
        None => return Err(not_found()),
    };
    if body.len() > CHECKOUT_FORM_BYTES_MAX {
        return Err(error_page(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form was too large",
            "The form sent was too large. Go back to the payment page and try again.",
            Some(loaded.page_path()),
        ));
    }
    let form = FormBody::parse(body);
    let cookie = csrf::cookie(request_headers);
    if !csrf_key(app).verify(cookie.as_deref(), form.get(csrf::FIELD_NAME), token) {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security this form could not be accepted: it was not sent from this \
             payment page, or the page is out of date. Nothing was charged. Open the payment \
             page again and retry.",
            Some(loaded.page_path()),
        ));
    }
    let cookie = cookie.unwrap_or_default();
    Ok((loaded, cookie, form))
}

/// Reads the payment again after another submission or a refused transition.
async fn reload(app: &AppState, token: &str) -> Response {
    match load(app, token).await {
        Ok(Some(loaded)) => after(&loaded),
        Ok(None) => not_found(),
        Err(response) => response,
    }
}

/// Records a charge's outcome for the shopper, refused inside the transaction unless the
/// payment is still in the charge's `only_from`.
async fn record(app: &AppState, loaded: &Loaded, charge: Charge) -> Result<(), Response> {
    let payment = &loaded.payment;
    let scope = Scope {
        account_id: payment.account_id.clone(),
        mode: payment.mode,
    };
    let payment_id = payment.id.clone();
    let now = loaded.now(app);
    let public_url = app.settings.public_url.clone();
    let pricing = app.settings.pricing.for_account(&scope.account_id);
    let written = app
        .store
        .write(move |tx| {
            flow::transition(
                tx,
                Transition::charged(&charge, &scope, &payment_id, now, &public_url, pricing),
            )
        })
        .await;
    match written {
        Ok(_) => Ok(()),
        // Another submission (another tab or node) got there first: follow its outcome.
        Err(FlowError::State(_)) => Ok(()),
        Err(FlowError::Store(error)) => Err(store_failure(error)),
        Err(error) => Err(internal(&format!("{error:?}"))),
    }
}

/// The card form saying card processing is unavailable (nothing was charged), 503.
fn unavailable_page(app: &AppState, loaded: &Loaded, cookie: &str) -> Response {
    let page = PayPage {
        test_mode: loaded.test_mode(),
        summary: &loaded.summary,
        action: loaded.action("pay"),
        csrf: csrf_key(app).sign(cookie, &loaded.payment.checkout_token),
        unavailable: true,
        error_list: Vec::new(),
        errors: FieldErrors::default(),
        kept: Kept::default(),
        test_cards: pages::TEST_CARDS,
        back: loaded.return_link(),
    };
    match page.render() {
        Ok(body) => loaded.html(StatusCode::SERVICE_UNAVAILABLE, body, None),
        Err(error) => internal(&error),
    }
}

/// Another submission (on this or another node) holds the payment for its acquirer call:
/// wait for its outcome, then follow it.
async fn follow_other_submission(app: &AppState, loaded: &Loaded, token: &str) -> Response {
    for _ in 0..CHECKOUT_CONCURRENT_SUBMIT_WAIT_MS / CHECKOUT_CONCURRENT_SUBMIT_POLL_MS {
        match load(app, token).await {
            Ok(Some(fresh))
                if fresh.payment.status != PaymentStatus::Pending
                    || fresh.payment.processor_claimed_until.is_none() =>
            {
                return after(&fresh)
            }
            Ok(Some(_)) => {}
            Ok(None) => return not_found(),
            Err(response) => return response,
        }
        tokio::time::sleep(Duration::from_millis(CHECKOUT_CONCURRENT_SUBMIT_POLL_MS)).await;
    }
    busy(loaded)
}

fn busy(loaded: &Loaded) -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "Your payment is still being processed. Open the payment page again in a moment.",
        Some(loaded.page_path()),
    )
}

/// `POST /checkout/{token}/pay`: validate the card, run the processor, record the outcome.
pub async fn pay(
    State(app): State<AppState>,
    Path(token): Path<String>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (loaded, cookie, form) = match begin_post(&app, &token, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    if loaded.payment.status != PaymentStatus::Pending || !open(&app, &loaded) {
        return after(&loaded);
    }
    if !app.processing_available(loaded.payment.mode) {
        return unavailable_page(&app, &loaded, &cookie);
    }
    let today = match charge::year_month(loaded.now(&app)) {
        Ok(today) => today,
        Err(error) => return internal(&error),
    };
    let card = match form::validate(&form, today) {
        Ok(card) => card,
        Err(invalid) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return match pay_page(&app, &loaded, &cookie, invalid.errors, invalid.kept) {
                Ok(body) => loaded.html(status, body, None),
                Err(error) => internal(&error),
            };
        }
    };
    let _claim = match claim(&app, &loaded, &token, PaymentStatus::Pending).await {
        Ok(claim) => claim,
        Err(page) => return page,
    };
    let payment = &loaded.payment;
    let route = app.connectors.route(
        payment.mode,
        payment.currency,
        card.number.brand(),
        payment.amount,
    );
    let Some(first) = route.first() else {
        // Every processor of the route is skipped for now (circuit breakers).
        return unavailable_page(&app, &loaded, &cookie);
    };
    if first.processor.remote() {
        let outcome =
            connectors::pay::pay(&app, payment, &card, &route, loaded.clock_offset_ms).await;
        drop(card);
        return match outcome {
            Ok(PayOutcome::Recorded {
                redirect_url: Some(url),
            }) => see_other(&url),
            Ok(PayOutcome::Recorded { redirect_url: None }) => reload(&app, &token).await,
            Ok(PayOutcome::Taken) => follow_other_submission(&app, &loaded, &token).await,
            Ok(PayOutcome::Unavailable) => unavailable_page(&app, &loaded, &cookie),
            Ok(PayOutcome::Unknown) => busy(&loaded),
            Err(FlowError::Store(error)) => store_failure(error),
            Err(error) => internal(&format!("{error:?}")),
        };
    }
    let charged = charge::pay(
        (first.name.as_str(), first.processor.as_ref()),
        app.fingerprint_secret.expose(),
        &loaded.payment,
        &card,
    )
    .await;
    drop(card);
    let charge = match charged {
        Ok(charge) => charge,
        // `loaded` was checked to be pending above, so not reached; nothing was charged.
        Err(ChargeError::State(_)) => return after(&loaded),
        Err(ChargeError::Internal(error)) => return internal(&error),
        Err(ChargeError::Processor(_) | ChargeError::StillAuthenticating) => {
            return unavailable_page(&app, &loaded, &cookie)
        }
    };
    let operation = charge.operation;
    if let Err(response) = record(&app, &loaded, charge).await {
        return response;
    }
    tracing::info!(
        request_id = %request_id::current(),
        payment_id = %loaded.payment.id,
        operation = operation.name(),
        "checkout payment submitted"
    );
    reload(&app, &token).await
}

/// Where an acquirer's 3-D Secure page sends the shopper back (the connector's `return_url`).
pub const RETURN_PATH: &str = "/checkout/{token}/return";

/// `GET /checkout/{token}/return`: back from the acquirer's authentication page. The
/// acquirer is asked what became of the payment (the shopper chose nothing here, so there is
/// no form to forge) and its answer recorded; then the shopper goes where a submission would.
pub async fn acquirer_return(State(app): State<AppState>, Path(token): Path<String>) -> Response {
    let loaded = match load(&app, &token).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => return not_found(),
        Err(response) => return response,
    };
    if loaded.payment.status != PaymentStatus::RequiresAuthentication || !open(&app, &loaded) {
        return after(&loaded);
    }
    let Some(routed) = app
        .connectors
        .of_payment(loaded.payment.processor.as_deref())
        .filter(|routed| routed.processor.remote())
        .filter(|_| app.processing_available(loaded.payment.mode))
    else {
        // The simulator's challenge is answered on our page.
        return after(&loaded);
    };
    let follow = claim_or_follow(
        &app,
        &loaded,
        &token,
        PaymentStatus::RequiresAuthentication,
        true,
    );
    let _claim = match follow.await {
        Ok(claim) => claim,
        Err(page) => return page,
    };
    let processor = (routed.name.as_str(), routed.processor.as_ref());
    let charge = match charge::authenticate(processor, &loaded.payment, true).await {
        Ok(charge) => charge,
        Err(ChargeError::State(_) | ChargeError::StillAuthenticating) => return after(&loaded),
        Err(ChargeError::Internal(error)) => return internal(&error),
        Err(ChargeError::Processor(error)) => {
            tracing::warn!(payment_id = %loaded.payment.id, %error, "3-D Secure result unknown");
            return busy(&loaded);
        }
    };
    if let Err(response) = record(&app, &loaded, charge).await {
        return response;
    }
    reload(&app, &token).await
}

/// `POST /checkout/{token}/authenticate`: the shopper's answer to the 3-D Secure challenge.
pub async fn authenticate(
    State(app): State<AppState>,
    Path(token): Path<String>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (loaded, cookie, form) = match begin_post(&app, &token, &request_headers, &body).await {
        Ok(begun) => begun,
        Err(response) => return response,
    };
    if loaded.payment.status != PaymentStatus::RequiresAuthentication || !open(&app, &loaded) {
        return after(&loaded);
    }
    let approved = match form.get("outcome") {
        Some("approve") => true,
        Some("fail") => false,
        _ => {
            return match challenge_page(&app, &loaded, &cookie, Some("Choose an answer.")) {
                Ok(body) => loaded.html(StatusCode::UNPROCESSABLE_ENTITY, body, None),
                Err(error) => internal(&error),
            }
        }
    };
    // The 3-D Secure result comes from the processor that asked for it (SPEC §15).
    let Some(routed) = app
        .connectors
        .of_payment(loaded.payment.processor.as_deref())
        .filter(|_| app.processing_available(loaded.payment.mode))
    else {
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Card processing is unavailable",
            "Card processing is unavailable right now. Nothing was charged.",
            None,
        );
    };
    let _claim = match claim(&app, &loaded, &token, PaymentStatus::RequiresAuthentication).await {
        Ok(claim) => claim,
        Err(page) => return page,
    };
    let processor = (routed.name.as_str(), routed.processor.as_ref());
    let charge = match charge::authenticate(processor, &loaded.payment, approved).await {
        Ok(charge) => charge,
        Err(ChargeError::State(_)) => return after(&loaded),
        Err(ChargeError::Internal(error)) => return internal(&error),
        Err(ChargeError::StillAuthenticating) => {
            let error = Some("Authentication with your bank is not finished yet.");
            return match challenge_page(&app, &loaded, &cookie, error) {
                Ok(body) => loaded.html(StatusCode::CONFLICT, body, None),
                Err(error) => internal(&error),
            };
        }
        Err(ChargeError::Processor(error)) => {
            tracing::warn!(payment_id = %loaded.payment.id, %error, "3-D Secure result unknown");
            return busy(&loaded);
        }
    };
    if let Err(response) = record(&app, &loaded, charge).await {
        return response;
    }
    reload(&app, &token).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_return_url_keeps_its_query() {
        assert_eq!(
            return_url_with_id("https://shop.example/return?order=7&x=a%20b", "pay_1").as_deref(),
            Some("https://shop.example/return?order=7&x=a%20b&paymentId=pay_1")
        );
        assert_eq!(
            return_url_with_id("http://localhost:3000/done", "pay_1").as_deref(),
            Some("http://localhost:3000/done?paymentId=pay_1")
        );
        assert_eq!(
            return_url_with_id("https://shop.example/r#top", "pay_1").as_deref(),
            Some("https://shop.example/r?paymentId=pay_1#top")
        );
    }

    #[test]
    fn token_shapes() {
        assert!(token_shape_ok(&"a".repeat(40)));
        assert!(!token_shape_ok(&"a".repeat(31)));
        assert!(!token_shape_ok(&"a".repeat(65)));
        assert!(!token_shape_ok(&format!("{}-", "a".repeat(39))));
    }
}
