//! One API call being built and then sent: [`Call`] is what every operation method answers.
//! Await it for the decoded answer, or change it first (an idempotency key, a header, a test
//! fault). Sending runs the retry loop: one `Idempotency-Key` for every attempt of a POST,
//! the body serialized once, backoff from [`RetryPolicy`](crate::RetryPolicy).
//!
//! A list call ([`Call<Page<T>>`]) also streams every object of every page, following
//! `next_cursor`.

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ApiError, Error};
use crate::retry::retryable_status;
use crate::Client;

/// The header that makes a test-mode request suffer a fault on purpose (SPEC §12).
pub const TEST_FAULT_HEADER: &str = "Vinr-Test-Fault";

/// One page of a list: `{"object": "list", "data", "has_more", "next_cursor"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub object: String,
    pub data: Vec<T>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// A decoded answer with what the server said about it.
#[derive(Debug)]
pub struct Answered<T> {
    pub value: T,
    pub status: u16,
    /// `X-Request-Id` (`req_…`).
    pub request_id: Option<String>,
    /// `Idempotent-Replayed: true`: a retry was answered with the stored first answer.
    pub replayed: bool,
    /// How many requests were sent (1 when the first one was answered).
    pub attempts: u32,
}

/// Turns a 2xx body into the operation's answer.
type Decoder<T> = fn(&[u8]) -> Result<T, serde_json::Error>;

pub(crate) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(body)
}

pub(crate) fn text(body: &[u8]) -> Result<String, serde_json::Error> {
    Ok(String::from_utf8_lossy(body).into_owned())
}

/// A request to the API, sent when awaited. Made by the operation methods of
/// [`Client`](crate::Client).
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'a, T> {
    client: &'a Client,
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    /// JSON, serialized once: every retry sends the same bytes.
    body: Option<Bytes>,
    idempotency_key: Option<String>,
    headers: HeaderMap,
    /// A header or body that could not be made, reported when the call is sent (nothing is).
    invalid: Option<String>,
    accept: Option<&'static str>,
    decode: Decoder<T>,
    _answer: PhantomData<fn() -> T>,
}

impl<T> Clone for Call<'_, T> {
    fn clone(&self) -> Self {
        Call {
            client: self.client,
            method: self.method.clone(),
            segments: self.segments.clone(),
            query: self.query.clone(),
            body: self.body.clone(),
            idempotency_key: self.idempotency_key.clone(),
            headers: self.headers.clone(),
            invalid: self.invalid.clone(),
            accept: self.accept,
            decode: self.decode,
            _answer: PhantomData,
        }
    }
}

impl<'a, T> Call<'a, T> {
    pub(crate) fn new(
        client: &'a Client,
        method: Method,
        segments: &[&str],
        decode: Decoder<T>,
    ) -> Self {
        let idempotency_key =
            (method == Method::POST).then(crate::client::generated_idempotency_key);
        Call {
            client,
            method,
            segments: segments
                .iter()
                .map(|segment| (*segment).to_owned())
                .collect(),
            query: Vec::new(),
            body: None,
            // Made once with the call, so that every send of it (and of a clone) reuses it.
            idempotency_key,
            headers: HeaderMap::new(),
            invalid: None,
            accept: None,
            decode,
            _answer: PhantomData,
        }
    }

    pub(crate) fn body<B: serde::Serialize>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = Some(Bytes::from(bytes)),
            Err(error) => self.invalid = Some(format!("the body does not serialize: {error}")),
        }
        self
    }

    pub(crate) fn query(mut self, pairs: Vec<(String, String)>) -> Self {
        self.query = pairs;
        self
    }

    pub(crate) fn accept(mut self, media_type: &'static str) -> Self {
        self.accept = Some(media_type);
        self
    }

    /// The `Idempotency-Key` of this POST (≤ 255 characters). Without one the client makes a
    /// random key; either way every retry of this call sends the same key. Pass your own
    /// (an order id) to make a repeat of the whole operation, even from another process, safe.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        if HeaderValue::from_str(&key).is_err() {
            self.invalid = Some(format!(
                "the idempotency key {key:?} is not a valid header value"
            ));
        }
        self.idempotency_key = Some(key);
        self
    }

    /// The `Idempotency-Key` this POST sends on every attempt: the caller's, or the one the
    /// client made for it.
    pub fn key(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }

    /// An extra header on every attempt of this call (`Idempotency-Key` is the same as
    /// [`Call::idempotency_key`]).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if name.eq_ignore_ascii_case("idempotency-key") {
            return self.idempotency_key(value);
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                self.headers.insert(name, value);
            }
            _ => self.invalid = Some(format!("the header {name:?} is not valid")),
        }
        self
    }

    /// Asks a test-mode server to inject a fault into every attempt of this call (SPEC §12):
    /// `commit-then-500`, `commit-then-drop`, `status=503`, `latency=200`, …
    pub fn test_fault(self, fault: &str) -> Self {
        self.header(TEST_FAULT_HEADER, fault)
    }

    /// Sends the call (with retries) and answers the decoded value with the answer's request
    /// id, whether it was a replay, and how many attempts it took.
    pub async fn send_with_info(&self) -> Result<Answered<T>, Error> {
        if let Some(problem) = &self.invalid {
            return Err(Error::Config(problem.clone()));
        }
        let client = self.client;
        let url = client.url(&self.segments, &self.query)?;
        let key = self
            .idempotency_key
            .as_ref()
            .filter(|_| self.method == Method::POST);
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut request = client
                .http
                .request(self.method.clone(), url.clone())
                .headers(self.headers.clone())
                .header(reqwest::header::AUTHORIZATION, client.authorization.clone());
            if let Some(key) = &key {
                request = request.header("Idempotency-Key", key.as_str());
            }
            if let Some(accept) = self.accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(body) = &self.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let answer = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    response.bytes().await.map(|body| (status, headers, body))
                }
                Err(error) => Err(error),
            };
            let retry_after = match answer {
                Ok((status, headers, body)) if status.is_success() => {
                    let request_id = header_text(&headers, "x-request-id");
                    let value = (self.decode)(&body).map_err(|source| Error::Decode {
                        status: status.as_u16(),
                        source,
                        request_id: request_id.clone(),
                    })?;
                    return Ok(Answered {
                        value,
                        status: status.as_u16(),
                        request_id,
                        replayed: header_text(&headers, "idempotent-replayed").as_deref()
                            == Some("true"),
                        attempts,
                    });
                }
                Ok((status, headers, body)) => {
                    let error = ApiError::from_answer(status, &headers, &body, attempts);
                    if !retryable_status(status, &error.code) {
                        return Err(Error::from_api(error));
                    }
                    match client
                        .retry
                        .wait_before(attempts, started.elapsed(), error.retry_after)
                    {
                        Some(wait) => wait,
                        None => return Err(Error::from_api(error)),
                    }
                }
                Err(source) => {
                    if source.is_builder() || source.is_redirect() {
                        return Err(Error::Network { source, attempts });
                    }
                    match client.retry.wait_before(attempts, started.elapsed(), None) {
                        Some(wait) => wait,
                        None => return Err(Error::Network { source, attempts }),
                    }
                }
            };
            tokio::time::sleep(retry_after).await;
        }
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

impl<'a, T: Send + 'a> IntoFuture for Call<'a, T> {
    type Output = Result<T, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.send_with_info().await.map(|answered| answered.value) })
    }
}

impl<'a, T: Send + 'a> Call<'a, Page<T>> {
    /// Every object of this list, page after page (each page one request, with retries),
    /// newest first; with `ending_before` set, it pages towards newer objects instead. Stops
    /// at the first error, which it yields. Boxed, so it is `Unpin`: `try_next` works on it.
    pub fn stream(self) -> BoxStream<'a, Result<T, Error>> {
        struct State<'a, T> {
            next: Option<Call<'a, Page<T>>>,
            buffered: VecDeque<T>,
        }
        let state = State {
            next: Some(self),
            buffered: VecDeque::new(),
        };
        let stream = futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(object) = state.buffered.pop_front() {
                    return Some((Ok(object), state));
                }
                let call = state.next.take()?;
                match call.send_with_info().await {
                    Err(error) => return Some((Err(error), state)),
                    Ok(answered) => {
                        let page = answered.value;
                        state.buffered.extend(page.data);
                        if let (true, Some(cursor)) = (page.has_more, page.next_cursor) {
                            state.next = Some(call.after(cursor));
                        }
                    }
                }
            }
        });
        Box::pin(stream)
    }

    /// The same list from `cursor` on, in the direction it pages.
    fn after(mut self, cursor: String) -> Self {
        let direction = if self.query.iter().any(|(name, _)| name == "ending_before") {
            "ending_before"
        } else {
            "starting_after"
        };
        self.query.retain(|(name, _)| name != direction);
        self.query.push((direction.to_owned(), cursor));
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::Client;

    #[test]
    fn a_post_has_one_key_for_every_send_and_clone() {
        let client = Client::new("sk_test_x", "http://127.0.0.1:9").expect("a client");
        let call = client.cancel_payment("pay_1");
        let key = call
            .key()
            .expect("a POST gets a key when it is made")
            .to_owned();
        assert_eq!(call.clone().key(), Some(key.as_str()));
        assert_ne!(client.cancel_payment("pay_1").key(), Some(key.as_str()));
        let mine = client.cancel_payment("pay_1").idempotency_key("order-7");
        assert_eq!(mine.key(), Some("order-7"));
        let by_header = client
            .cancel_payment("pay_1")
            .header("Idempotency-Key", "order-8");
        assert_eq!(by_header.key(), Some("order-8"));
        assert_eq!(client.get_payment("pay_1").key(), None);
    }
}
