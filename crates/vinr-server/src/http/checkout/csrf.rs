//! CSRF protection for the checkout forms (double-submit, signed): a random cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/checkout`) plus a hidden form field holding
//! HMAC-SHA256(server key, cookie ‖ checkout token). A POST is accepted only when both are
//! present and the field matches, compared in constant time. Binding the checkout token means
//! a field from one payment's page is useless on another's.

use axum::http::{header, HeaderMap, HeaderValue};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use vinr_domain::ids::random_base62;
use vinr_domain::limits::CSRF_COOKIE_RANDOM_CHARS;

pub const COOKIE_NAME: &str = "vinr_csrf";
/// Form field carrying the signed token.
pub const FIELD_NAME: &str = "csrf";

/// The key that signs form tokens, derived from the server-wide secret (shared by every node
/// of one database) with a label, so it is never the key of anything else.
pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    pub fn derive(server_secret: &str) -> CsrfKey {
        let mut key = [0u8; 32];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(server_secret.as_bytes()) {
            mac.update(b"vinr checkout csrf v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        CsrfKey(key)
    }

    /// The form field value for this cookie on this checkout page.
    pub fn sign(&self, cookie: &str, checkout_token: &str) -> String {
        use base64::Engine;
        let digest = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(cookie.as_bytes());
                mac.update(b"\0");
                mac.update(checkout_token.as_bytes());
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    }

    /// Whether `field` is this cookie's signature for this page.
    pub fn verify(&self, cookie: Option<&str>, field: Option<&str>, checkout_token: &str) -> bool {
        let (Some(cookie), Some(field)) = (cookie, field) else {
            return false;
        };
        let expected = self.sign(cookie, checkout_token);
        bool::from(expected.as_bytes().ct_eq(field.as_bytes()))
    }
}

fn well_formed(value: &str) -> bool {
    value.len() == CSRF_COOKIE_RANDOM_CHARS && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The CSRF cookie the browser sent, if it has the right shape.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE_NAME && well_formed(value))
        .map(|(_, value)| value.to_owned())
}

/// The browser's cookie, or a new one with the `Set-Cookie` header that gives it.
pub fn cookie_or_new(headers: &HeaderMap, secure: bool) -> (String, Option<HeaderValue>) {
    cookie_or_new_at(headers, secure, "/checkout")
}

/// [`cookie_or_new`] for the pages under `path` (the dashboard's forms use the same scheme).
pub fn cookie_or_new_at(
    headers: &HeaderMap,
    secure: bool,
    path: &str,
) -> (String, Option<HeaderValue>) {
    if let Some(existing) = cookie(headers) {
        return (existing, None);
    }
    let value = random_base62(CSRF_COOKIE_RANDOM_CHARS);
    let secure = if secure { "; Secure" } else { "" };
    let set = format!("{COOKIE_NAME}={value}; Path={path}; HttpOnly; SameSite=Strict{secure}");
    (value, HeaderValue::from_str(&set).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_binds_cookie_and_checkout_token() {
        let key = CsrfKey::derive("server secret");
        let field = key.sign("c".repeat(32).as_str(), "token_a");
        assert!(key.verify(Some(&"c".repeat(32)), Some(&field), "token_a"));
        assert!(!key.verify(Some(&"c".repeat(32)), Some(&field), "token_b"));
        assert!(!key.verify(Some(&"d".repeat(32)), Some(&field), "token_a"));
        assert!(!key.verify(None, Some(&field), "token_a"));
        assert!(!key.verify(Some(&"c".repeat(32)), None, "token_a"));
        assert!(!CsrfKey::derive("other").verify(Some(&"c".repeat(32)), Some(&field), "token_a"));
    }

    #[test]
    fn only_well_formed_cookies_are_read() {
        let mut headers = HeaderMap::new();
        let good = "a".repeat(32);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE_NAME}=bad; {COOKIE_NAME}={good}"))
                .expect("a header value"),
        );
        assert_eq!(cookie(&headers), Some(good));
        let (_, set) = cookie_or_new(&HeaderMap::new(), true);
        let set = set.expect("a new cookie");
        let set = set.to_str().expect("ascii");
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict"),
            "{set}"
        );
        assert!(
            set.contains("Path=/checkout") && set.ends_with("; Secure"),
            "{set}"
        );
    }
}
