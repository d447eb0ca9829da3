//! The dashboard (SPEC §13): a server-rendered console at `/dashboard` for a merchant's
//! engineers. Sign-in takes a secret or restricted key once and answers an HttpOnly,
//! `SameSite=Strict` session cookie (`Secure` when the public URL is https); the store keeps
//! only the SHA-256 of the session id and of the key, and the key is never rendered, put in a
//! URL or logged. Every page and action goes through the API's own router ([`api`]), so a
//! restricted key sees and does only what its scopes allow and an action has the API's
//! validation, idempotency (each form carries its own key) and flows.
//!
//! Pages share the checkout's frame: compile-time askama templates (auto-escaped), a
//! stylesheet served by this server, the checkout's strict CSP and headers
//! ([`super::checkout::headers`]), and its signed double-submit CSRF token
//! ([`super::checkout::csrf`]) bound to the session on every form.

pub mod api;
pub mod disputes;
pub mod pages;
pub mod payments;
pub mod resources;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use sha2::{Digest, Sha256};
use vinr_domain::ids::random_base62;
use vinr_domain::limits::{
    CHECKOUT_FORM_BYTES_MAX, DASHBOARD_SESSION_ID_RANDOM_CHARS, DASHBOARD_SESSION_TTL_MS,
    DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE, DASHBOARD_SIGN_IN_ADDRESSES_MAX,
};
use vinr_domain::{Currency, Mode};

use super::checkout::{csrf, form::FormBody, headers};
use crate::auth::{self, key_grants, AuthFailure};
use crate::flows::dashboard as flow;
use crate::http::request_id;
use crate::keys::hash_key;
use crate::state::AppState;
use crate::store::{ApiKeyRecord, DashboardSession, KeyKind, Scope, StoreError};
use api::{Api, Caller};
use pages::{Frame, NavItem, SignInPage};

pub const STYLESHEET: &str = include_str!("../../../templates/dashboard/dashboard.css");
pub const STYLESHEET_PATH: &str = "/dashboard/assets/dashboard.css";
pub const SESSION_COOKIE: &str = "vinr_session";
const COOKIE_PATH: &str = "/dashboard";

/// Sign-ins per client network (`DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE`), tried before
/// the key is looked up, valid key or not: an IPv4 address, or an IPv6 /64 (one host holds a
/// whole /64, so its addresses count as one). Behind a proxy every client shares its address:
/// the limit is then the proxy's. Per node.
#[derive(Clone)]
pub struct SignInThrottle(Arc<governor::DefaultKeyedRateLimiter<IpAddr>>);

impl SignInThrottle {
    fn new() -> SignInThrottle {
        let per_minute =
            NonZeroU32::new(DASHBOARD_SIGN_INS_PER_ADDRESS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        SignInThrottle(Arc::new(governor::RateLimiter::keyed(
            governor::Quota::per_minute(per_minute),
        )))
    }

    /// Whether `address` may try one more sign-in now. Past
    /// `DASHBOARD_SIGN_IN_ADDRESSES_MAX` networks seen within the minute, new ones are refused
    /// (the limiter's memory stays bounded under a spread-out flood).
    fn allows(&self, address: IpAddr) -> bool {
        if self.0.len() >= DASHBOARD_SIGN_IN_ADDRESSES_MAX {
            self.0.retain_recent();
            if self.0.len() >= DASHBOARD_SIGN_IN_ADDRESSES_MAX {
                return false;
            }
        }
        self.0.check_key(&sign_in_network(address)).is_ok()
    }
}

/// The network a sign-in counts against: an IPv4 address (IPv4-mapped IPv6 included) or the
/// /64 of an IPv6 address.
fn sign_in_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The dashboard's routes, merged into the server's router.
pub fn router(app: AppState) -> Router<AppState> {
    let api = Api::new(app);
    let throttle = SignInThrottle::new();
    Router::new()
        .route(STYLESHEET_PATH, get(stylesheet))
        .route("/dashboard", get(resources::overview))
        .route("/dashboard/sign-in", get(sign_in_page).post(sign_in))
        .route("/dashboard/sign-out", post(sign_out))
        .route("/dashboard/payments", get(payments::list))
        .route("/dashboard/payments/{id}", get(payments::page))
        .route("/dashboard/payments/{id}/{action}", post(payments::act))
        .route("/dashboard/disputes", get(disputes::list))
        .route("/dashboard/disputes/{id}", get(disputes::dispute))
        .route("/dashboard/events", get(resources::events))
        .route("/dashboard/events/{id}", get(resources::event))
        .route("/dashboard/events/{id}/resend", post(resources::resend))
        .route(
            "/dashboard/webhooks",
            get(resources::webhooks).post(resources::create_webhook),
        )
        .route("/dashboard/webhooks/{id}", get(resources::webhook))
        .route(
            "/dashboard/webhooks/{id}/{action}",
            post(resources::webhook_action),
        )
        .route("/dashboard/settlements", get(resources::settlements))
        .route("/dashboard/settlements/{id}", get(resources::settlement))
        .route(
            "/dashboard/settlements/{id}/transactions.csv",
            get(resources::settlement_csv),
        )
        .route(
            "/dashboard/test-clock",
            get(resources::clock).post(resources::clock_action),
        )
        .layer(Extension(api))
        .layer(Extension(throttle))
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

fn session_id_hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

fn secure_cookies(app: &AppState) -> bool {
    app.settings.public_url.starts_with("https://")
}

fn csrf_key(app: &AppState) -> csrf::CsrfKey {
    csrf::CsrfKey::derive(app.fingerprint_secret.expose())
}

/// What a CSRF field is bound to: the session (a field of one session is useless in another),
/// or, before sign-in, the sign-in form.
fn csrf_binding(session: Option<&Session>) -> String {
    match session {
        Some(session) => format!("dashboard:{}", session.id_hash),
        None => "dashboard:sign-in".into(),
    }
}

/// An HTML answer with the checkout's security headers.
pub struct Html {
    pub status: StatusCode,
    pub body: String,
    pub cookies: Vec<HeaderValue>,
}

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            self.body,
        )
            .into_response();
        headers::apply(response.headers_mut(), None);
        for cookie in self.cookies {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    headers::apply(response.headers_mut(), None);
    response
}

fn internal(detail: &dyn std::fmt::Display) -> Response {
    tracing::error!(request_id = %request_id::current(), %detail, "dashboard page failed");
    plain_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The page could not be shown because of an error on our side.",
    )
}

fn store_failure(error: StoreError) -> Response {
    match error {
        StoreError::Unavailable(_) | StoreError::Outage(_) => {
            let mut page = plain_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "The database is unavailable for a moment. Reload the page shortly.",
            );
            page.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(vinr_domain::limits::DATABASE_UNAVAILABLE_RETRY_AFTER_S),
            );
            page
        }
        StoreError::Database(_) => internal(&error),
    }
}

/// A page without the signed-in frame (sign-in problems, our errors).
fn plain_page(status: StatusCode, title: &str, message: &str) -> Response {
    let page = pages::PlainPage { title, message };
    match page.render() {
        Ok(body) => Html {
            status,
            body,
            cookies: Vec::new(),
        }
        .into_response(),
        Err(_) => (status, title.to_owned()).into_response(),
    }
}

/// A signed-in browser: its session, and the key behind it as the API sees it.
pub struct Session {
    pub id_hash: String,
    pub caller: Caller,
    pub key: ApiKeyRecord,
    pub csrf_cookie: String,
    /// A new CSRF cookie to set (the browser had none).
    pub set_csrf: Option<HeaderValue>,
}

impl Session {
    pub fn mode(&self) -> Mode {
        self.caller.mode
    }

    pub fn test_mode(&self) -> bool {
        self.caller.mode == Mode::Test
    }

    /// Whether the key grants `scope` (the API refuses anything else; this only decides what
    /// to offer).
    pub fn can(&self, scope: &str) -> bool {
        key_grants(&self.key, scope)
    }

    pub fn csrf(&self, app: &AppState) -> String {
        csrf_key(app).sign(&self.csrf_cookie, &csrf_binding(Some(self)))
    }

    /// The frame every signed-in page shares.
    pub fn frame(&self, app: &AppState, current: &'static str) -> Frame {
        let nav = [
            ("overview", "Overview", "/dashboard", None),
            (
                "payments",
                "Payments",
                "/dashboard/payments",
                Some("payments:read"),
            ),
            (
                "disputes",
                "Disputes",
                "/dashboard/disputes",
                Some("disputes:read"),
            ),
            ("events", "Events", "/dashboard/events", Some("events:read")),
            (
                "webhooks",
                "Webhooks",
                "/dashboard/webhooks",
                Some("webhooks:read"),
            ),
            (
                "settlements",
                "Settlements",
                "/dashboard/settlements",
                Some("settlements:read"),
            ),
        ]
        .into_iter()
        .chain(
            self.test_mode()
                .then_some(("clock", "Test clock", "/dashboard/test-clock", None)),
        )
        .filter(|(_, _, _, scope)| scope.is_none_or(|scope| self.can(scope)))
        .map(|(id, label, href, _)| NavItem {
            id,
            label,
            href,
            current: id == current,
        })
        .collect();
        Frame {
            test_mode: self.test_mode(),
            key_display: self.key.display.clone(),
            restricted: self.key.kind == KeyKind::Restricted,
            nav,
            csrf: self.csrf(app),
        }
    }

    pub fn html(&self, status: StatusCode, page: &impl Template) -> Response {
        match page.render() {
            Ok(body) => Html {
                status,
                body,
                cookies: self.set_csrf.iter().cloned().collect(),
            }
            .into_response(),
            Err(error) => internal(&error),
        }
    }

    /// Checks the CSRF field of a signed-in form.
    pub fn csrf_ok(&self, app: &AppState, form: &FormBody) -> bool {
        csrf_key(app).verify(
            Some(&self.csrf_cookie),
            form.get(csrf::FIELD_NAME),
            &csrf_binding(Some(self)),
        )
    }
}

fn session_cookie(request_headers: &HeaderMap) -> Option<String> {
    request_headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| {
            *name == SESSION_COOKIE
                && value.len() == DASHBOARD_SESSION_ID_RANDOM_CHARS
                && value.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .map(|(_, value)| value.to_owned())
}

/// The session of this browser for a page view, or the answer to give instead: to the
/// sign-in page when there is none (or it expired, or its key was revoked), 429 when the
/// key's rate limit is spent. A page view takes one read token, whatever it calls.
pub async fn session(app: &AppState, request_headers: &HeaderMap) -> Result<Session, Response> {
    session_counted(app, request_headers, Some(true)).await
}

/// [`session`] for a form's POST: one write token of the key's rate limit.
pub async fn session_for_action(
    app: &AppState,
    request_headers: &HeaderMap,
) -> Result<Session, Response> {
    session_counted(app, request_headers, Some(false)).await
}

fn too_many_requests(retry_after_s: u64) -> Response {
    let mut page = plain_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests",
        "This key's rate limit is spent for the moment. Wait a few seconds and reload.",
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    page
}

/// `is_read`: which token of the key's rate limit the request takes (`None`: none, signing
/// out is never refused for a spent limit).
async fn session_counted(
    app: &AppState,
    request_headers: &HeaderMap,
    is_read: Option<bool>,
) -> Result<Session, Response> {
    let to_sign_in = || see_other("/dashboard/sign-in");
    let Some(id) = session_cookie(request_headers) else {
        return Err(to_sign_in());
    };
    let id_hash = session_id_hash(&id);
    let lookup = id_hash.clone();
    let found = app
        .store
        .read(move |reader| reader.dashboard_session(&lookup))
        .await
        .map_err(store_failure)?;
    let Some(found) = found else {
        return Err(to_sign_in());
    };
    if found.expires_at <= app.clock.now() {
        return Err(to_sign_in());
    }
    let Some(key_hash) = unhex(&found.key_hash) else {
        return Err(internal(&"a session's key hash is not hex"));
    };
    let (key_id, key) =
        match auth::authenticate_hash(&app.store, &app.settings, key_hash, found.scope.mode, None)
            .await
        {
            Ok((context, key)) if context.scope == found.scope => (context.key_id, key),
            Ok(_) => return Err(to_sign_in()),
            Err(AuthFailure::Store(error)) => return Err(store_failure(error)),
            Err(_) => return Err(to_sign_in()),
        };
    if let (Some(limits), Some(is_read)) = (&app.rate_limits, is_read) {
        if let Err(limited) = limits.check(&key_id, found.scope.mode, is_read) {
            return Err(too_many_requests(limited.retry_after_s));
        }
    }
    let (csrf_cookie, set_csrf) =
        csrf::cookie_or_new_at(request_headers, secure_cookies(app), COOKIE_PATH);
    Ok(Session {
        id_hash,
        caller: Caller::new(key_hash, found.scope.mode),
        key,
        csrf_cookie,
        set_csrf,
    })
}

fn sign_in_form(
    app: &AppState,
    request_headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (cookie, set_csrf) =
        csrf::cookie_or_new_at(request_headers, secure_cookies(app), COOKIE_PATH);
    let page = SignInPage {
        csrf: csrf_key(app).sign(&cookie, &csrf_binding(None)),
        error,
    };
    match page.render() {
        Ok(body) => Html {
            status,
            body,
            cookies: set_csrf.into_iter().collect(),
        }
        .into_response(),
        Err(error) => internal(&error),
    }
}

/// `GET /dashboard/sign-in`.
pub async fn sign_in_page(State(app): State<AppState>, request_headers: HeaderMap) -> Response {
    sign_in_form(&app, &request_headers, StatusCode::OK, None)
}

/// `POST /dashboard/sign-in`: a key in, a session cookie out. The key is checked as the API
/// checks it, then dropped: only its hash is kept with the session.
pub async fn sign_in(
    State(app): State<AppState>,
    Extension(throttle): Extension<SignInThrottle>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    // In-process (no peer): one shared address, so still bounded.
    let address = peer.map_or(
        IpAddr::from([0, 0, 0, 0]),
        |Extension(ConnectInfo(peer))| peer.ip(),
    );
    if !throttle.allows(address) {
        let mut page = sign_in_form(
            &app,
            &request_headers,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many sign-in attempts from this address: wait a minute and try again."),
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(60u32));
        return page;
    }
    if body.len() > CHECKOUT_FORM_BYTES_MAX {
        return sign_in_form(
            &app,
            &request_headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            Some("The form was too large."),
        );
    }
    let form = FormBody::parse(&body);
    let cookie = csrf::cookie(&request_headers);
    if !csrf_key(&app).verify(
        cookie.as_deref(),
        form.get(csrf::FIELD_NAME),
        &csrf_binding(None),
    ) {
        return sign_in_form(
            &app,
            &request_headers,
            StatusCode::FORBIDDEN,
            Some("This form has expired. Sign in again."),
        );
    }
    let key = form.get("key").unwrap_or("").trim();
    if key.is_empty() {
        return sign_in_form(
            &app,
            &request_headers,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter a secret key (sk_…) or a restricted key (rk_…)."),
        );
    }
    let mut presented = HeaderMap::new();
    let Ok(value) = HeaderValue::from_str(&format!("Bearer {key}")) else {
        return sign_in_form(
            &app,
            &request_headers,
            StatusCode::UNAUTHORIZED,
            Some("This is not a valid API key."),
        );
    };
    presented.insert(header::AUTHORIZATION, value);
    let context = match auth::authenticate(&app.store, &app.settings, &presented, None).await {
        Ok(context) => context,
        Err(AuthFailure::Store(error)) => return store_failure(error),
        Err(failure) => {
            let message = match failure {
                AuthFailure::ModeNotServed(_) => "This server does not serve this key's mode.",
                AuthFailure::AccountKeyRequired => {
                    "A platform key cannot sign in: use an account's secret or restricted key."
                }
                _ => "This is not a valid API key.",
            };
            return sign_in_form(
                &app,
                &request_headers,
                StatusCode::UNAUTHORIZED,
                Some(message),
            );
        }
    };
    // A sign-in counts against the key's rate limit as a write does on the API.
    if let Some(limits) = &app.rate_limits {
        if limits
            .check(&context.key_id, context.mode(), false)
            .is_err()
        {
            return sign_in_form(
                &app,
                &request_headers,
                StatusCode::TOO_MANY_REQUESTS,
                Some("Too many requests with this key: wait a second and sign in again."),
            );
        }
    }
    let id = random_base62(DASHBOARD_SESSION_ID_RANDOM_CHARS);
    let now = app.clock.now();
    let record = DashboardSession {
        id_hash: session_id_hash(&id),
        key_hash: hex(&hash_key(key)),
        scope: Scope {
            account_id: context.scope.account_id.clone(),
            mode: context.scope.mode,
        },
        created_at: now,
        expires_at: now.plus_ms(DASHBOARD_SESSION_TTL_MS),
    };
    let written = app
        .store
        .write(move |tx| flow::open_session(tx, &record, now))
        .await;
    if let Err(error) = written {
        return store_failure(error);
    }
    tracing::info!(
        request_id = %request_id::current(),
        key_id = %context.key_id,
        "dashboard session opened"
    );
    let secure = if secure_cookies(&app) { "; Secure" } else { "" };
    let max_age_s = DASHBOARD_SESSION_TTL_MS / 1000;
    let mut response = see_other("/dashboard");
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path={COOKIE_PATH}; Max-Age={max_age_s}; HttpOnly; \
         SameSite=Strict{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /dashboard/sign-out`: ends the session (CSRF-checked, so no other site can sign the
/// user out) and clears the cookie.
pub async fn sign_out(
    State(app): State<AppState>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let session = match session_counted(&app, &request_headers, None).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let form = FormBody::parse(&body);
    if !session.csrf_ok(&app, &form) {
        return forbidden_form();
    }
    let id_hash = session.id_hash.clone();
    if let Err(error) = app
        .store
        .write(move |tx| flow::close_session(tx, &id_hash))
        .await
    {
        return store_failure(error);
    }
    let secure = if secure_cookies(&app) { "; Secure" } else { "" };
    let mut response = see_other("/dashboard/sign-in");
    if let Ok(cookie) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path={COOKIE_PATH}; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The answer to a form whose CSRF field is missing or wrong: nothing was done.
pub fn forbidden_form() -> Response {
    plain_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "For your security this form was not accepted: it was not sent from this dashboard, \
         or the page is out of date. Nothing was changed. Go back, reload the page and retry.",
    )
}

/// The page for something this session cannot see: unknown, another account's, or outside
/// the key's scopes.
pub fn problem_page(session: &Session, app: &AppState, problem: &api::Problem) -> Response {
    let (status, title) = match problem.status {
        404 => (StatusCode::NOT_FOUND, "Not found"),
        403 => (StatusCode::FORBIDDEN, "Not allowed with this key"),
        401 => (StatusCode::UNAUTHORIZED, "Signed out"),
        400..=499 => (StatusCode::BAD_REQUEST, "Invalid request"),
        503 => (StatusCode::SERVICE_UNAVAILABLE, "Please try again"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
    };
    let page = pages::ProblemPage {
        frame: session.frame(app, ""),
        title,
        message: problem.message.clone(),
    };
    session.html(status, &page)
}

/// An amount as people read it (`€1,234.56`); see [`Currency::display_minor`].
pub fn money(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Some(currency) => currency.display_minor(minor),
        None => format!("{minor} {currency}"),
    }
}

/// `2026-12-02T00:53:05.123Z` → `2026-12-02 00:53:05 UTC`.
pub fn when(rfc3339: &str) -> String {
    match rfc3339.split_once('T') {
        Some((date, time)) => {
            let time = time.trim_end_matches('Z');
            let time = time.split('.').next().unwrap_or(time);
            format!("{date} {time} UTC")
        }
        None => rfc3339.to_owned(),
    }
}

/// A fresh idempotency key for one form (the API's key for that one submission).
pub fn form_key() -> String {
    format!("dash_{}", random_base62(24))
}

/// An id from a URL, if it could be an id (anything else is a 404 without a request).
pub fn id_ok(id: &str) -> bool {
    (3..=80).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A list page's query string: the API filters it passes on and its cursor.
pub struct ListQuery(Vec<(String, String)>);

impl ListQuery {
    pub fn parse(raw: Option<&str>) -> ListQuery {
        ListQuery(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The trimmed value of `name`, empty when absent or blank.
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// `name=value` of each filter of `names` that is set, encoded, in order.
    pub fn filters(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|name| (name, self.get(name)))
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| format!("{name}={}", encode(&value)))
            .collect()
    }

    /// The API's list call for `resource` (`/v1/disputes`): a page of 25 with `filters` and
    /// this query's cursor.
    pub fn api_path(&self, resource: &str, filters: &[String]) -> String {
        let mut path = format!("{resource}?limit=25");
        for filter in filters {
            path.push('&');
            path.push_str(filter);
        }
        let cursor = self.get("starting_after");
        if !cursor.is_empty() {
            path.push_str(&format!("&starting_after={}", encode(&cursor)));
        }
        path
    }
}

/// The link to the next (older) page of a list answered by the API, if it has one: `page`
/// (`/dashboard/disputes`) with `filters` and the API's cursor.
pub fn next_page(page: &str, filters: &[String], list: &serde_json::Value) -> Option<String> {
    if list.get("has_more").and_then(serde_json::Value::as_bool) != Some(true) {
        return None;
    }
    let cursor = list
        .get("next_cursor")
        .and_then(serde_json::Value::as_str)?;
    let mut query = filters.to_vec();
    query.push(format!("starting_after={}", encode(cursor)));
    Some(format!("{page}?{}", query.join("&")))
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_ins_count_per_ipv4_address_and_ipv6_64() {
        let network = |text: &str| sign_in_network(text.parse().expect("an address"));
        assert_eq!(network("203.0.113.7"), network("::ffff:203.0.113.7"));
        assert_ne!(network("203.0.113.7"), network("203.0.113.8"));
        assert_eq!(
            network("2001:db8:1:2:aaaa::1"),
            network("2001:db8:1:2:ffff:1:2:3")
        );
        assert_ne!(network("2001:db8:1:2::1"), network("2001:db8:1:3::1"));
    }

    #[test]
    fn hex_round_trips() {
        let hash = hash_key("sk_test_x");
        assert_eq!(unhex(&hex(&hash)), Some(hash));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn times_read_plainly() {
        assert_eq!(when("2026-12-02T00:53:05.123Z"), "2026-12-02 00:53:05 UTC");
        assert_eq!(when("2026-12-02T00:53:05Z"), "2026-12-02 00:53:05 UTC");
    }
}
