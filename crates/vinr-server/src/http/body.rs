//! Request bodies and headers, parsed and bounded before a handler runs: JSON or form data
//! (`metadata[key]=value`), at most 64 KiB, unknown fields refused, every failure a 4xx that
//! names the offending field, and no string holding a character SPEC §2 forbids (see
//! [`crate::http::text`]). Also the `Idempotency-Key` header and the `{id}` of a path.

use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use vinr_domain::limits::{IDEMPOTENCY_KEY_LEN_MAX, REQUEST_BODY_BYTES_MAX};

use crate::http::error::ApiError;
use crate::http::text::{self, Urlencoded};

/// A parsed body and the SHA-256 of its canonical JSON form, which is what idempotency
/// compares: the same request sent as JSON or as form data, or with fields reordered, matches.
pub struct ApiBody<T> {
    pub value: T,
    pub fingerprint: [u8; 32],
}

enum Format {
    Json,
    Form,
}

fn format_of(headers: &HeaderMap, body_is_empty: bool) -> Result<Format, ApiError> {
    let Some(content_type) = headers.get(CONTENT_TYPE) else {
        // Bodies without a Content-Type are accepted only when empty (`{}` is implied), as
        // for `POST /payments/:id/cancel` sent by curl with no data.
        return if body_is_empty {
            Ok(Format::Json)
        } else {
            Err(ApiError::unsupported_media_type("(none)"))
        };
    };
    let text = content_type.to_str().unwrap_or("(not text)");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Format::Json),
        "application/x-www-form-urlencoded" => Ok(Format::Form),
        _ if essence.starts_with("application/") && essence.ends_with("+json") => Ok(Format::Json),
        _ => Err(ApiError::unsupported_media_type(text)),
    }
}

/// Turns a serde message into SPEC §2's precise error. serde's wording is stable across
/// versions for these three cases: "missing field `x`", "unknown field `x`", and the rest.
fn deserialize_error(path: &str, message: &str) -> ApiError {
    let quoted = || message.split('`').nth(1).unwrap_or("").to_owned();
    let param = |name: String| {
        if path.is_empty() || path == "." {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if message.starts_with("missing field") {
        return ApiError::missing(&param(quoted()));
    }
    if message.starts_with("unknown field") {
        // The path already ends at the unknown field itself.
        let name = quoted();
        let full = if path.ends_with(name.as_str()) {
            path.to_owned()
        } else {
            param(name)
        };
        return ApiError::unknown_parameter(&full);
    }
    // Strip serde_json's " at line 1 column 17" suffix: the param says where.
    let clean = message.split(" at line ").next().unwrap_or(message);
    if path.is_empty() || path == "." {
        ApiError::malformed_body(format!("The request body is invalid: {clean}."))
    } else {
        ApiError::invalid(path, format!("Invalid value for `{path}`: {clean}."))
    }
}

pub fn parse_body<T: DeserializeOwned + Serialize>(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<ApiBody<T>, ApiError> {
    // An absent body means `{}`; a JSON body of whitespace alone is not JSON and is refused.
    let empty = bytes.is_empty();
    let value: T = match format_of(headers, empty)? {
        Format::Json if empty => parse_json(b"{}")?,
        Format::Json => parse_json(bytes)?,
        Format::Form => {
            text::check_urlencoded(bytes, Urlencoded::Form)?;
            // Non-strict mode also accepts percent-encoded brackets (`metadata%5Bk%5D=v`), as
            // curl's --data-urlencode sends them.
            let config = serde_qs::Config::new(2, false);
            let deserializer =
                serde_qs::Deserializer::with_config(&config, bytes).map_err(|error| {
                    ApiError::malformed_body(format!("The form body is invalid: {error}."))
                })?;
            let value: T = serde_path_to_error::deserialize(deserializer).map_err(|error| {
                deserialize_error(&error.path().to_string(), &error.inner().to_string())
            })?;
            with_empty_fields(value, bytes)?
        }
    };
    // Checked on the parsed value, so a JSON and a form body meet one rule per field.
    let parsed = serde_json::to_value(&value).map_err(|error| ApiError::internal(&error))?;
    text::check_body(&parsed)?;
    let fingerprint = fingerprint(&value)?;
    Ok(ApiBody { value, fingerprint })
}

/// serde_qs reads `url=` into an optional field as "no `url`", where the JSON body
/// `{"url": ""}` gives an empty `url`, which the field's own rule then judges (and mostly
/// refuses). So a form with an empty field is read again as the JSON body it stands for: one
/// rule per field whatever the format.
fn with_empty_fields<T: DeserializeOwned + Serialize>(
    value: T,
    form: &[u8],
) -> Result<T, ApiError> {
    let mut json = serde_json::to_value(&value).map_err(|error| ApiError::internal(&error))?;
    let mut changed = false;
    for (key, text) in text::urlencoded_pairs(form) {
        let Ok(name) = std::str::from_utf8(&key) else {
            continue;
        };
        let Some(path) = field_path(name).filter(|_| text.is_empty()) else {
            continue;
        };
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let parent = parents
            .iter()
            .try_fold(&mut json, |node, segment| node.get_mut(*segment));
        if let Some(serde_json::Value::Object(fields)) = parent {
            let field = fields.entry(*last).or_insert(serde_json::Value::Null);
            if field.is_null() {
                *field = serde_json::Value::String(String::new());
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(value);
    }
    serde_path_to_error::deserialize(json)
        .map_err(|error| deserialize_error(&error.path().to_string(), &error.inner().to_string()))
}

/// `card[cvc]` as the path `card`, `cvc`; `None` for a list element (`events[]`, `events[0]`),
/// which serde_qs already reads as written.
fn field_path(name: &str) -> Option<Vec<&str>> {
    let (head, rest) = name.split_once('[').unwrap_or((name, ""));
    let mut path = vec![head];
    for part in rest.split('[').filter(|part| !part.is_empty()) {
        let segment = part.strip_suffix(']')?;
        if segment.is_empty() || segment.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        path.push(segment);
    }
    Some(path).filter(|_| !head.is_empty())
}

/// SHA-256 of a request's canonical JSON form.
pub fn fingerprint<T: Serialize>(value: &T) -> Result<[u8; 32], ApiError> {
    let canonical = serde_json::to_vec(value).map_err(|error| ApiError::internal(&error))?;
    Ok(Sha256::digest(&canonical).into())
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde accepts a struct written as an array (`[1000, "EUR", …]`); the API does not.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::malformed_body(
            "The request body must be a JSON object.",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            let clean = inner.to_string();
            return ApiError::malformed_body(format!(
                "The request body is not valid JSON: {clean}."
            ));
        }
        deserialize_error(&error.path().to_string(), &inner.to_string())
    })?;
    deserializer.end().map_err(|error| {
        ApiError::malformed_body(format!("The request body is not valid JSON: {error}."))
    })?;
    Ok(value)
}

impl<S, T> FromRequest<S> for ApiBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Serialize,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > REQUEST_BODY_BYTES_MAX as u64) {
            return Err(ApiError::body_too_large(REQUEST_BODY_BYTES_MAX));
        }
        let bytes = axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX)
            .await
            .map_err(|_| ApiError::body_too_large(REQUEST_BODY_BYTES_MAX))?;
        parse_body(&parts.headers, &bytes)
    }
}

/// Middleware: reads every request's whole body (at most [`REQUEST_BODY_BYTES_MAX`]) within
/// `[http] body_read_timeout_ms` of its headers, before routing, so a client that sends
/// complete headers and then trickles or withholds its body is answered 408 and disconnected
/// rather than holding a connection — on the public checkout as on the API. Handlers and
/// extractors then read a body that is already in memory (and apply their own, smaller,
/// limits).
pub async fn read_whole(
    axum::extract::State(app): axum::extract::State<crate::state::AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let timeout_ms = app.settings.http.body_read_timeout_ms;
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX);
    let bytes = match tokio::time::timeout(std::time::Duration::from_millis(timeout_ms), read).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => {
            return axum::response::IntoResponse::into_response(ApiError::body_too_large(
                REQUEST_BODY_BYTES_MAX,
            ))
        }
        Err(_) => {
            return axum::response::IntoResponse::into_response(ApiError::body_timeout(timeout_ms))
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The `Idempotency-Key` header, if present: 1–255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|key| key.bytes().all(|b| (0x20..0x7f).contains(&b)));
    let Some(key) = key else {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            "The Idempotency-Key header must be visible ASCII text.",
        ));
    };
    validate_idempotency_key(key, "Idempotency-Key").map(Some)
}

pub fn validate_idempotency_key(key: &str, param: &str) -> Result<String, ApiError> {
    if key.is_empty() || key.chars().count() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(ApiError::invalid(
            param,
            format!("An idempotency key has 1 to {IDEMPOTENCY_KEY_LEN_MAX} characters."),
        ));
    }
    Ok(key.to_owned())
}

/// The `{id}` of a route, or a 400 (not axum's plain-text rejection) when it is not text or
/// holds a control character.
pub struct PathId(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::invalid("id", "The id in the URL is not valid text."))?;
        text::check_path_id(&id)?;
        Ok(PathId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use vinr_types::CreatePaymentRequest;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header"),
        );
        headers
    }

    #[test]
    fn json_and_form_give_the_same_fingerprint() {
        let json = parse_body::<CreatePaymentRequest>(
            &headers("application/json"),
            br#"{"currency":"EUR","amount":1000,"returnUrl":"https://a.example/r","metadata":{"k":"v"}}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let form = parse_body::<CreatePaymentRequest>(
            &headers("application/x-www-form-urlencoded"),
            b"amount=1000&currency=EUR&returnUrl=https%3A%2F%2Fa.example%2Fr&metadata[k]=v",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(form.value.amount, 1000);
        assert_eq!(json.fingerprint, form.fingerprint);
    }

    #[test]
    fn an_empty_form_field_reads_as_the_empty_json_string() {
        let form = headers("application/x-www-form-urlencoded");
        let json = headers("application/json");
        let parsed = parse_body::<vinr_types::UpdateWebhookRequest>(&form, b"url=&status=")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.value.url.as_deref(), Some(""));
        assert_eq!(parsed.value.status.as_deref(), Some(""));
        let same =
            parse_body::<vinr_types::UpdateWebhookRequest>(&json, br#"{"url":"","status":""}"#)
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.fingerprint, same.fingerprint);
        // An empty metadata value was already the empty string; an empty number is refused.
        let parsed = parse_body::<CreatePaymentRequest>(
            &form,
            b"amount=5&currency=EUR&returnUrl=u&metadata%5Bk%5D=&description=",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed.value.description.as_deref(), Some(""));
        assert_eq!(parsed.value.metadata.unwrap_or_default()["k"], "");
        let error = parse_body::<CreatePaymentRequest>(&form, b"amount=&currency=EUR&returnUrl=u")
            .err()
            .expect("empty amount");
        assert_eq!(error.status().as_u16(), 400);
        assert_eq!(field_path("card[cvc]"), Some(vec!["card", "cvc"]));
        assert_eq!(field_path("events[]"), None);
        assert_eq!(field_path("events[0]"), None);
        assert_eq!(field_path("[x]"), None);
    }

    #[test]
    fn errors_name_the_field() {
        let h = headers("application/json");
        let error = parse_body::<CreatePaymentRequest>(
            &h,
            br#"{"amount":"x","currency":"EUR","returnUrl":"u"}"#,
        )
        .err()
        .expect("wrong type");
        assert_eq!(
            (error.code(), error.status().as_u16()),
            ("parameter_invalid", 400)
        );
        let error =
            parse_body::<CreatePaymentRequest>(&h, br#"{"currency":"EUR","returnUrl":"u"}"#)
                .err()
                .expect("missing");
        assert_eq!(error.code(), "parameter_missing");
        let error = parse_body::<CreatePaymentRequest>(
            &h,
            br#"{"amount":1,"currency":"EUR","returnUrl":"u","colour":1}"#,
        )
        .err()
        .expect("unknown");
        assert_eq!(error.code(), "parameter_unknown");
        let error = parse_body::<CreatePaymentRequest>(&h, b"{\"amount\":")
            .err()
            .expect("syntax");
        assert_eq!(error.code(), "body_invalid");
        let error = parse_body::<CreatePaymentRequest>(&headers("text/plain"), b"x")
            .err()
            .expect("type");
        assert_eq!(error.status().as_u16(), 415);
    }
}
