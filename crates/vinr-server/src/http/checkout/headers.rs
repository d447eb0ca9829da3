//! Response headers of every checkout page: a strict Content-Security-Policy (no scripts, no
//! inline styles, forms only to this server and the merchant's return origin, never framed),
//! `X-Frame-Options`, no caching, and no `Referer` — the page URL holds the checkout token.

use axum::http::{header, HeaderMap, HeaderValue};

/// The policy for a page whose forms may end in a redirect to `return_origin` (Chrome applies
/// `form-action` to the redirect that follows a POST).
pub fn content_security_policy(return_origin: Option<&str>) -> String {
    let extra = return_origin
        .filter(|origin| {
            origin
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',' && b != b'\'')
        })
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'{extra}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

pub fn apply(headers: &mut HeaderMap, return_origin: Option<&str>) {
    if let Ok(csp) = HeaderValue::from_str(&content_security_policy(return_origin)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The origin (`https://shop.example:8443`) of a return URL, for `form-action`.
pub fn origin_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    match url.origin() {
        origin @ url::Origin::Tuple(..) => Some(origin.ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_return_origin_only() {
        let origin = origin_of("https://shop.example:8443/return?x=1").expect("an origin");
        assert_eq!(origin, "https://shop.example:8443");
        let csp = content_security_policy(Some(&origin));
        assert!(
            csp.contains("form-action 'self' https://shop.example:8443;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("script-src"));
        let hostile = content_security_policy(Some("https://a; script-src *"));
        assert!(hostile.contains("form-action 'self';"), "{hostile}");
    }
}
