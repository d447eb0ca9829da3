//! A typed async client for the VINR API, retry-safe by construction.
//!
//! - One method per operation of `openapi.json` ([`api`]), with the wire types of
//!   `vinr-types` (re-exported as [`types`]) as bodies and answers.
//! - Every call is a [`Call`]: await it, or first give it an idempotency key, a header or a test
//!   fault. A list call also [streams](Call::stream) every object, following the cursors.
//! - Every POST carries an `Idempotency-Key` — the caller's, or one generated per call — and
//!   every retry of the call sends the same key with the same body, so a retry never does the
//!   work twice (the server answers it with the stored first answer).
//! - Retries ([`RetryPolicy`]): network errors and timeouts, 409 `idempotency_key_in_use`, 429
//!   (waiting at least `Retry-After`) and 5xx, with exponential backoff and jitter, bounded by
//!   a count and a total time. Then the last answer is surfaced as a typed [`Error`] carrying
//!   the status, `type`, `code`, `param` and `request_id`.
//! - [`WebhookVerifier`] checks Standard Webhooks signatures for a receiver.
//!
//! ```no_run
//! use vinr_client::{types::CreatePaymentRequest, Client};
//!
//! # async fn example() -> Result<(), vinr_client::Error> {
//! let client = Client::new("sk_test_…", "http://127.0.0.1:8080")?;
//! let payment = client
//!     .create_payment(&CreatePaymentRequest {
//!         amount: 1000,
//!         currency: "EUR".into(),
//!         return_url: "https://shop.example/return".into(),
//!         description: None,
//!         metadata: None,
//!         idempotency_key: Some("order-1042".into()),
//!         capture: None,
//!     })
//!     .await?;
//! println!("send the shopper to {}", payment.checkout_url);
//! # Ok(()) }
//! ```
//!
//! Errors are matched by kind, and by code for the precise reason:
//!
//! ```no_run
//! # async fn example(client: &vinr_client::Client) {
//! use vinr_client::Error;
//! match client.get_payment("pay_missing").await {
//!     Ok(payment) => println!("{}", payment.status),
//!     Err(Error::NotFound(error)) => println!("no such payment ({:?})", error.request_id),
//!     Err(other) => println!("failed: {other}"),
//! }
//! # }
//! ```

pub mod api;
mod call;
mod client;
mod error;
mod retry;
mod webhook;

pub use call::{Answered, Call, Page, TEST_FAULT_HEADER};
pub use client::{Client, ClientBuilder, ListParams, DEFAULT_BASE_URL};
pub use error::{ApiError, Error, ErrorType};
pub use retry::RetryPolicy;
pub use webhook::{WebhookError, WebhookVerifier, TIMESTAMP_TOLERANCE};

/// The wire types: request and response bodies.
pub use vinr_types as types;

/// What [`Call::stream`] answers, and the combinators to consume it.
pub use futures_util::stream::BoxStream;
pub use futures_util::{Stream, StreamExt, TryStreamExt};
/// The headers of a webhook request, as [`WebhookVerifier::verify`] takes them.
pub use reqwest::header::HeaderMap;
