//! (2) API keys → account + mode + scopes. Keys carry 256 random bits, are shown once and
//! stored only as SHA-256; a presented key is hashed, looked up by hash and compared in
//! constant time. [`authenticate`] answers who is calling, or an [`AuthFailure`]: no,
//! malformed, unknown or revoked key, a mode this deployment does not serve, or a scope the
//! key lacks. It knows nothing of HTTP answers: the layer in `http/auth.rs` runs it (and the
//! rate limit) before any handler, and `http/error.rs` turns a failure into its 401 or 403.

pub mod rate_limit;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;
use vinr_domain::limits::{API_KEY_CHARS_MAX, SANDBOX_SECRET_KEY_CHARS_MIN};
use vinr_domain::{Mode, UnixMillis};

use crate::config::Settings;
use crate::keys::{hash_key, is_platform_key_shape, PLATFORM_KEY_PREFIX};
use crate::store::{ApiKeyRecord, KeyKind, KeyLookup, Scope, Store, StoreError};

/// Every scope a restricted key may hold. `…:write` implies `…:read` of the same resource.
pub const SCOPES: &[&str] = &[
    "payments:read",
    "payments:write",
    "refunds:read",
    "refunds:write",
    "disputes:read",
    "disputes:write",
    "webhooks:read",
    "webhooks:write",
    "settlements:read",
    "balance:read",
    "events:read",
];

/// Checks the shape `sk|rk _ test|live _ <base62>` and answers the mode it claims. Generated
/// keys have 43 characters after the prefix; a fixed sandbox key (SPEC §10) 32 to 128.
fn parse_key_shape(key: &str) -> Option<Mode> {
    let mut parts = key.splitn(3, '_');
    let kind = parts.next()?;
    let mode = Mode::parse(parts.next()?)?;
    let random = parts.next()?;
    let valid = matches!(kind, "sk" | "rk")
        && (SANDBOX_SECRET_KEY_CHARS_MIN..=API_KEY_CHARS_MAX).contains(&random.len())
        && random.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then_some(mode)
}

/// Who is calling: answered by [`authenticate`], attached to the request by the HTTP layer.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub key_id: String,
    pub scope: Scope,
    pub kind: KeyKind,
    /// How far the account's test clock ran ahead of real time when the key was looked up
    /// (SPEC §10); always 0 in live mode.
    pub clock_offset_ms: i64,
    /// The account had fault rules (SPEC §12) when the key was looked up; always `false` in
    /// live mode.
    pub fault_rules: bool,
}

impl AuthContext {
    pub fn mode(&self) -> Mode {
        self.scope.mode
    }

    /// The caller's time: `real` on the account's clock in test mode, `real` itself in live.
    pub fn now(&self, real: UnixMillis) -> UnixMillis {
        real.plus_ms(self.clock_offset_ms)
    }
}

/// The scope the matched route needs (`None`: any key), attached to the request by the router
/// from its route table before [`authenticate`] runs.
#[derive(Debug, Clone, Copy)]
pub struct RequiredScope(pub Option<&'static str>);

/// Marks a route that manages accounts: it takes a platform key ([`authenticate_platform`]),
/// never an account's key.
#[derive(Debug, Clone, Copy)]
pub struct PlatformRoute;

/// A platform key's caller: answered by [`authenticate_platform`].
#[derive(Debug, Clone)]
pub struct PlatformContext {
    pub key_id: String,
}

impl PlatformContext {
    /// The scope idempotency keys of platform requests are kept under: shared by every
    /// platform key, apart from every account (no account id is `platform`).
    pub fn idempotency_scope(&self) -> Scope {
        Scope {
            account_id: "platform".into(),
            mode: Mode::Test,
        }
    }
}

/// Whether the key grants `needed` (`…:write` grants `…:read`, a secret key everything).
pub fn key_grants(record: &ApiKeyRecord, needed: &str) -> bool {
    if record.kind == KeyKind::Secret {
        return true;
    }
    let write_form = needed
        .strip_suffix(":read")
        .map(|resource| format!("{resource}:write"));
    record
        .scopes
        .iter()
        .any(|scope| scope == needed || write_form.as_deref() == Some(scope.as_str()))
}

/// Why a request is not let through (SPEC §2). `http/error.rs` words each one for the client.
#[derive(Debug)]
pub enum AuthFailure {
    /// Neither `Authorization` nor `X-Api-Key` was sent.
    NoKey,
    /// The `Authorization` header is not visible ASCII text.
    AuthorizationNotText,
    /// The `Authorization` header is not `Bearer <API key>`.
    AuthorizationNotBearer,
    /// The `X-Api-Key` header is not visible ASCII text.
    ApiKeyHeaderNotText,
    /// Not the shape of a key, or no key with this hash (or of this mode) exists.
    InvalidKey,
    /// The key's mode is not one this deployment serves.
    ModeNotServed(Mode),
    Revoked,
    /// A restricted key without the scope the route needs.
    MissingScope(&'static str),
    /// A valid account key on a route that manages accounts.
    PlatformKeyRequired,
    /// A valid platform key on a route of one account's objects.
    AccountKeyRequired,
    /// The key could not be looked up.
    Store(StoreError),
}

impl From<StoreError> for AuthFailure {
    fn from(error: StoreError) -> Self {
        AuthFailure::Store(error)
    }
}

fn presented_key(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AuthFailure::AuthorizationNotText)?;
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        return value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(AuthFailure::AuthorizationNotBearer);
    }
    if let Some(value) = headers.get("x-api-key") {
        return value
            .to_str()
            .map(str::trim)
            .map_err(|_| AuthFailure::ApiKeyHeaderNotText);
    }
    Err(AuthFailure::NoKey)
}

/// The key in `headers`, with what else auth reads of its account.
async fn resolve(
    store: &Store,
    settings: &Settings,
    headers: &HeaderMap,
) -> Result<KeyLookup, AuthFailure> {
    let key = presented_key(headers)?;
    if key.starts_with(PLATFORM_KEY_PREFIX) {
        resolve_platform(store, key).await?;
        return Err(AuthFailure::AccountKeyRequired);
    }
    let claimed_mode = parse_key_shape(key).ok_or(AuthFailure::InvalidKey)?;
    resolve_hash(store, settings, claimed_mode, hash_key(key)).await
}

/// The key whose hash is `hash`, which claims to be of `claimed_mode`.
async fn resolve_hash(
    store: &Store,
    settings: &Settings,
    claimed_mode: Mode,
    hash: [u8; 32],
) -> Result<KeyLookup, AuthFailure> {
    if !settings.mode_enabled(claimed_mode) {
        return Err(AuthFailure::ModeNotServed(claimed_mode));
    }
    let mut found = store
        .api_key_for_auth(hash)
        .await?
        .ok_or(AuthFailure::InvalidKey)?;
    let record = &found.key;
    // The lookup was by hash; compare again in constant time so that no code path
    // compares key material with an early exit.
    if !bool::from(record.key_hash.ct_eq(&hash)) || record.mode != claimed_mode {
        return Err(AuthFailure::InvalidKey);
    }
    if record.revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    if record.mode == Mode::Live {
        // Live mode runs on real time and is never faulted.
        found.clock_offset_ms = 0;
        found.fault_rules = false;
    }
    Ok(found)
}

async fn resolve_platform(store: &Store, key: &str) -> Result<PlatformContext, AuthFailure> {
    if !is_platform_key_shape(key) {
        return Err(AuthFailure::InvalidKey);
    }
    let hash = hash_key(key);
    let record = store
        .read(move |reader| reader.platform_key_by_hash(&hash))
        .await?
        .ok_or(AuthFailure::InvalidKey)?;
    if !bool::from(record.key_hash.ct_eq(&hash)) {
        return Err(AuthFailure::InvalidKey);
    }
    if record.revoked_at.is_some() {
        return Err(AuthFailure::Revoked);
    }
    Ok(PlatformContext { key_id: record.id })
}

/// Who presents the platform key in `headers`: an unknown key is 401 as anywhere, a valid
/// account key 403 ([`AuthFailure::PlatformKeyRequired`]).
pub async fn authenticate_platform(
    store: &Store,
    settings: &Settings,
    headers: &HeaderMap,
) -> Result<PlatformContext, AuthFailure> {
    let key = presented_key(headers)?;
    if key.starts_with(PLATFORM_KEY_PREFIX) {
        return resolve_platform(store, key).await;
    }
    resolve(store, settings, headers).await?;
    Err(AuthFailure::PlatformKeyRequired)
}

/// Who presents the key in `headers`, if it is a live key of a served mode that grants
/// `needed` (`None`: any key will do).
pub async fn authenticate(
    store: &Store,
    settings: &Settings,
    headers: &HeaderMap,
    needed: Option<&'static str>,
) -> Result<AuthContext, AuthFailure> {
    let found = resolve(store, settings, headers).await?;
    context_of(found, needed).map(|(context, _)| context)
}

/// The caller behind a key known only by its hash and mode (a dashboard session, SPEC §13),
/// as [`authenticate`] answers for the key itself (a revoked key fails here at once), with the
/// key's record (its scopes).
pub async fn authenticate_hash(
    store: &Store,
    settings: &Settings,
    hash: [u8; 32],
    mode: Mode,
    needed: Option<&'static str>,
) -> Result<(AuthContext, ApiKeyRecord), AuthFailure> {
    let found = resolve_hash(store, settings, mode, hash).await?;
    context_of(found, needed)
}

fn context_of(
    found: KeyLookup,
    needed: Option<&'static str>,
) -> Result<(AuthContext, ApiKeyRecord), AuthFailure> {
    let KeyLookup {
        key: record,
        clock_offset_ms,
        fault_rules,
    } = found;
    if let Some(needed) = needed {
        if !key_grants(&record, needed) {
            return Err(AuthFailure::MissingScope(needed));
        }
    }
    let context = AuthContext {
        key_id: record.id.clone(),
        scope: Scope {
            account_id: record.account_id.clone(),
            mode: record.mode,
        },
        kind: record.kind,
        clock_offset_ms,
        fault_rules,
    };
    Ok((context, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{display_key, generate_key};

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate_key(KeyKind::Secret, Mode::Test);
        assert!(key.expose().starts_with("sk_test_"));
        assert_eq!(parse_key_shape(key.expose()), Some(Mode::Test));
        let restricted = generate_key(KeyKind::Restricted, Mode::Live);
        assert_eq!(parse_key_shape(restricted.expose()), Some(Mode::Live));
        assert_eq!(parse_key_shape("sk_test_short"), None);
        // A fixed sandbox key: 32 to 128 characters after the prefix.
        assert_eq!(
            parse_key_shape(&format!("sk_test_{}", "a".repeat(32))),
            Some(Mode::Test)
        );
        assert_eq!(
            parse_key_shape(&format!("sk_test_{}", "a".repeat(31))),
            None
        );
        assert_eq!(
            parse_key_shape(&format!("sk_test_{}", "a".repeat(129))),
            None
        );
        assert_eq!(
            parse_key_shape(&format!("sk_test_{}-", "a".repeat(40))),
            None
        );
        assert_eq!(
            parse_key_shape("pk_test_0123456789012345678901234567890123456789012"),
            None
        );
        assert_ne!(
            generate_key(KeyKind::Secret, Mode::Test).expose(),
            generate_key(KeyKind::Secret, Mode::Test).expose()
        );
    }

    #[test]
    fn display_hides_the_secret() {
        assert_eq!(display_key("sk_test_abcdefghijWXYZ"), "sk_test_…WXYZ");
    }

    #[test]
    fn write_scope_implies_read() {
        let record = ApiKeyRecord {
            id: "key_x".into(),
            account_id: "acct_x".into(),
            mode: Mode::Test,
            kind: KeyKind::Restricted,
            scopes: vec!["payments:write".into()],
            key_hash: [0; 32],
            display: String::new(),
            created_at: vinr_domain::UnixMillis(0),
            revoked_at: None,
        };
        assert!(key_grants(&record, "payments:read"));
        assert!(key_grants(&record, "payments:write"));
        assert!(!key_grants(&record, "events:read"));
    }
}
