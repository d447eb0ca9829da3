//! Client text checked where it enters, before any handler or database sees it (SPEC §2):
//! form bodies and query strings must be valid UTF-8 once percent-decoded (serde_qs would
//! silently replace bad bytes with U+FFFD), and no string may hold a control character that
//! [`vinr_domain::text`] forbids — in any field of any body, any query parameter, any id in a
//! path. The body, query and path extractors call these checks, so no handler can forget them.

use serde_json::Value;
use vinr_domain::text::{describe, first_forbidden, TextKind};

use crate::http::error::ApiError;

/// Top-level body fields that are free text (tab, newline and carriage return allowed). Every
/// other string is strict.
const FREE_TEXT_FIELDS: &[&str] = &["description"];
/// Top-level body fields that are string maps whose values are free text; their keys are
/// strict.
const FREE_TEXT_MAPS: &[&str] = &["metadata", "evidence"];

fn forbidden_char(param: &str, c: char, kind: TextKind) -> ApiError {
    let allowed = match kind {
        TextKind::Strict => "it may hold no control characters",
        TextKind::Free => {
            "of the control characters only tab, newline and carriage return are allowed"
        }
    };
    ApiError::invalid(
        param,
        format!(
            "`{param}` contains the control character {}: {allowed}.",
            describe(c)
        ),
    )
}

fn check_text(param: &str, text: &str, kind: TextKind) -> Result<(), ApiError> {
    match first_forbidden(text, kind) {
        Some(c) => Err(forbidden_char(param, c, kind)),
        None => Ok(()),
    }
}

/// Checks every string and object key of a parsed request body, given as its JSON form (the
/// same for a JSON and a form-encoded body). `param` names the field as the body's other
/// errors do: `description`, `metadata.k`, `events[0]`; a bad metadata key is `metadata`.
pub fn check_body(body: &Value) -> Result<(), ApiError> {
    let Value::Object(fields) = body else {
        return check_value("", body, TextKind::Strict, TextKind::Strict);
    };
    // Top-level names are the request type's own fields (serde refused any other).
    for (name, value) in fields {
        let (kind, values) = if FREE_TEXT_FIELDS.contains(&name.as_str()) {
            (TextKind::Free, TextKind::Free)
        } else if FREE_TEXT_MAPS.contains(&name.as_str()) {
            (TextKind::Strict, TextKind::Free)
        } else {
            (TextKind::Strict, TextKind::Strict)
        };
        check_value(name, value, kind, values)?;
    }
    Ok(())
}

/// `kind` applies to `value` itself when it is a string; `children` to the values inside it
/// when it is an array or an object. Object keys are always strict.
fn check_value(
    param: &str,
    value: &Value,
    kind: TextKind,
    children: TextKind,
) -> Result<(), ApiError> {
    match value {
        Value::String(text) => check_text(param, text, kind),
        Value::Array(items) => items.iter().enumerate().try_for_each(|(index, item)| {
            check_value(&format!("{param}[{index}]"), item, children, children)
        }),
        Value::Object(fields) => fields.iter().try_for_each(|(key, item)| {
            if let Some(c) = first_forbidden(key, TextKind::Strict) {
                return Err(ApiError::invalid(
                    param,
                    format!(
                        "A key of `{param}` contains the control character {}: keys may hold \
                         no control characters.",
                        describe(c)
                    ),
                ));
            }
            check_value(&format!("{param}.{key}"), item, children, children)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

/// Where urlencoded text came from: the names its errors use differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urlencoded {
    /// A form body: `metadata[k]` is named `metadata.k`, as the body's other errors name it;
    /// values are checked for control characters later, by [`check_body`], which knows which
    /// fields are free text.
    Form,
    /// A query string: parameters are named as written (`created[gte]`); there is no free
    /// text in a query, so every value is strict.
    Query,
}

/// The (key, value) pairs of urlencoded text, percent-decoded but not yet UTF-8: `a=1&b&&c=`
/// is `a`/`1`, `b`/``, `c`/``.
pub(crate) fn urlencoded_pairs(bytes: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    bytes
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(at) => (
                percent_decoded(&pair[..at]),
                percent_decoded(&pair[at + 1..]),
            ),
            None => (percent_decoded(pair), Vec::new()),
        })
}

/// `application/x-www-form-urlencoded` decoding of one key or value: `+` is a space, `%XY` a
/// byte, anything else (a stray `%` too) itself.
fn percent_decoded(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while let Some(&byte) = raw.get(index) {
        let escaped = raw
            .get(index + 1..index + 3)
            .filter(|_| byte == b'%')
            .and_then(|digits| Some(hex(digits[0])? * 16 + hex(digits[1])?));
        match (byte, escaped) {
            (_, Some(value)) => {
                out.push(value as u8);
                index += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (other, None) => out.push(other),
        }
        index += 1;
    }
    out
}

/// `metadata[k][0]` as the body's errors name it: `metadata.k[0]`.
fn dotted(name: &str) -> String {
    let mut parts = name.split('[').map(|part| part.trim_end_matches(']'));
    let head = parts.next().unwrap_or_default().to_owned();
    parts.fold(head, |path, part| {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            format!("{path}[{part}]")
        } else {
            format!("{path}.{part}")
        }
    })
}

/// The error for a key that is not valid UTF-8 or holds a control character: it names the
/// parameter before the first `[` when that part is sound (`metadata` for `metadata[k\xff]`).
fn bad_name(key: &[u8], source: Urlencoded) -> ApiError {
    let head = key.split(|&b| b == b'[').next().unwrap_or_default();
    let head = std::str::from_utf8(head)
        .ok()
        .filter(|head| !head.is_empty() && first_forbidden(head, TextKind::Strict).is_none());
    let problem = if std::str::from_utf8(key).is_err() {
        "is not valid UTF-8"
    } else {
        "contains a control character"
    };
    match (head, source) {
        (Some(head), _) => {
            ApiError::invalid(head, format!("A parameter name under `{head}` {problem}."))
        }
        (None, Urlencoded::Form) => {
            ApiError::malformed_body(format!("A form field name {problem}."))
        }
        (None, Urlencoded::Query) => {
            ApiError::malformed_body(format!("A query parameter name {problem}."))
                .with_param("query")
        }
    }
}

/// Checks urlencoded text (a form body or a query string) before serde_qs reads it: every
/// key and value valid UTF-8 once decoded, and no control character in keys (nor, in a query,
/// in values, which may not be empty either).
pub fn check_urlencoded(bytes: &[u8], source: Urlencoded) -> Result<(), ApiError> {
    for (key, value) in urlencoded_pairs(bytes) {
        let name = std::str::from_utf8(&key)
            .ok()
            .filter(|name| first_forbidden(name, TextKind::Strict).is_none())
            .ok_or_else(|| bad_name(&key, source))?;
        let param = match source {
            Urlencoded::Form => dotted(name),
            Urlencoded::Query => name.to_owned(),
        };
        let text = std::str::from_utf8(&value)
            .map_err(|_| ApiError::invalid(&param, format!("`{param}` is not valid UTF-8.")))?;
        if source == Urlencoded::Query {
            // `limit=` would otherwise read as no `limit` at all: a caller who meant a value
            // (a template with an empty variable) is told rather than served the default.
            if text.is_empty() {
                return Err(ApiError::invalid(
                    &param,
                    format!("`{param}` is empty: give it a value or leave it out."),
                ));
            }
            check_text(&param, text, TextKind::Strict)?;
        }
    }
    Ok(())
}

/// Checks an id taken from a URL path: ids are strict text.
pub fn check_path_id(id: &str) -> Result<(), ApiError> {
    match first_forbidden(id, TextKind::Strict) {
        Some(c) => Err(ApiError::invalid(
            "id",
            format!(
                "The id in the URL contains the control character {}.",
                describe(c)
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param_of(result: Result<(), ApiError>) -> (&'static str, Option<String>) {
        let error = result.expect_err("refused");
        (error.code(), error.param().map(str::to_owned))
    }

    #[test]
    fn decoding_follows_the_form_rules() {
        assert_eq!(percent_decoded(b"a+b%20c%2"), b"a b c%2");
        assert_eq!(percent_decoded(b"%ff%FE%zz%"), b"\xff\xfe%zz%");
        assert_eq!(percent_decoded(b"%00"), b"\0");
    }

    #[test]
    fn names_are_spelled_as_the_other_errors_spell_them() {
        assert_eq!(dotted("metadata[k]"), "metadata.k");
        assert_eq!(dotted("events[0]"), "events[0]");
        assert_eq!(dotted("description"), "description");
    }

    #[test]
    fn form_and_query_text_must_be_utf8_without_control_characters_in_names() {
        let form = Urlencoded::Form;
        assert!(check_urlencoded(b"description=caf%C3%A9&metadata[k]=a%09b", form).is_ok());
        let refused = [
            (&b"description=%ff%fe"[..], "description"),
            (b"metadata[k%ff]=v", "metadata"),
            (b"metadata%5Bk%5D=v%ff", "metadata.k"),
            (b"metadata[k%01]=v", "metadata"),
            (b"amount=1&currency=\xff", "currency"),
        ];
        for (body, param) in refused {
            let shown = String::from_utf8_lossy(body);
            assert_eq!(
                param_of(check_urlencoded(body, form)),
                ("parameter_invalid", Some(param.to_owned())),
                "{shown}"
            );
        }
        assert_eq!(
            param_of(check_urlencoded(b"%ff=1", form)),
            ("body_invalid", None)
        );
        let query = Urlencoded::Query;
        assert!(check_urlencoded(b"limit=3&created[gte]=1", query).is_ok());
        assert_eq!(
            param_of(check_urlencoded(b"limit=&type=x", query)),
            ("parameter_invalid", Some("limit".to_owned()))
        );
        assert_eq!(
            param_of(check_urlencoded(b"type=x&created[gte]", query)),
            ("parameter_invalid", Some("created[gte]".to_owned()))
        );
        assert_eq!(
            param_of(check_urlencoded(b"payment=pay_%00abc", query)),
            ("parameter_invalid", Some("payment".to_owned()))
        );
        assert_eq!(
            param_of(check_urlencoded(b"created[gte]=%09", query)),
            ("parameter_invalid", Some("created[gte]".to_owned()))
        );
        assert_eq!(
            param_of(check_urlencoded(b"%00=1", query)),
            ("body_invalid", Some("query".to_owned()))
        );
    }

    #[test]
    fn body_strings_are_strict_but_free_text_keeps_tab_and_newline() {
        let free = json!({"description": "a\tb\r\nc", "metadata": {"k": "x\ny"}, "url": "u"});
        assert!(check_body(&free).is_ok());
        let refused = [
            (json!({"description": "a\u{0}"}), "description"),
            (json!({"returnUrl": "https://a.example/\t"}), "returnUrl"),
            (json!({"metadata": {"k": "v\u{1b}"}}), "metadata.k"),
            (json!({"metadata": {"k\u{0}": "v"}}), "metadata"),
            (json!({"metadata": {"k\n": "v"}}), "metadata"),
            (
                json!({"events": ["payment.created", "x\u{7f}"]}),
                "events[1]",
            ),
            (json!({"idempotencyKey": "k\u{1}"}), "idempotencyKey"),
        ];
        for (body, param) in refused {
            assert_eq!(
                param_of(check_body(&body)),
                ("parameter_invalid", Some(param.to_owned())),
                "{body}"
            );
        }
    }
}
