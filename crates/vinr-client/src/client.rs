//! The client itself: one API key, one base URL, one connection pool (reqwest, rustls), the
//! timeouts and the retry policy. Cheap to clone; share one per key.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use reqwest::header::HeaderValue;
use url::Url;

use crate::error::Error;
use crate::retry::RetryPolicy;

/// Where `vinr serve` listens by default.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

/// A client of the VINR API with one key: a secret or restricted key (`sk_test_…`,
/// `rk_live_…`) for the merchant routes, a platform key (`plk_…`) for `/v1/accounts`.
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    base: Url,
    /// `Bearer <key>`, marked sensitive so that no debug output of a request shows it.
    pub(crate) authorization: HeaderValue,
    pub(crate) retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("key", &"<redacted>")
            .field("retry", &self.retry)
            .finish()
    }
}

/// Builds a [`Client`]: base URL, timeouts, retries.
pub struct ClientBuilder {
    api_key: String,
    base_url: String,
    timeout: Duration,
    connect_timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// The server's base URL, without `/v1` (default [`DEFAULT_BASE_URL`]).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// The most one attempt may take, from sending to the last byte of the answer (default
    /// 30 s). A POST that timed out is retried with its key: it happens at most once.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How to retry (default [`RetryPolicy::default`]; [`RetryPolicy::none`] to never retry).
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base_url)
            .map_err(|error| Error::Config(format!("base URL {:?}: {error}", self.base_url)))?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "base URL {:?} is not an http(s) URL",
                self.base_url
            )));
        }
        // Segments are appended to the base's path: drop a trailing slash so none is doubled.
        if let Ok(mut segments) = base.path_segments_mut() {
            segments.pop_if_empty();
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.api_key))
            .map_err(|_| Error::Config("the API key is not valid header text".to_owned()))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("vinr-client-rust/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| Error::Config(format!("HTTP client: {error}")))?;
        Ok(Client {
            http,
            base,
            authorization,
            retry: self.retry,
        })
    }
}

impl Client {
    /// A client of the server at `base_url` with `api_key`, default timeouts and retries.
    pub fn new(api_key: impl Into<String>, base_url: impl Into<String>) -> Result<Client, Error> {
        Client::builder(api_key).base_url(base_url).build()
    }

    pub fn builder(api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            api_key: api_key.into(),
            base_url: DEFAULT_BASE_URL.to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }

    /// The base URL and `segments`, each percent-encoded as one path segment (an id can never
    /// reach another route), and the query.
    pub(crate) fn url(
        &self,
        segments: &[String],
        query: &[(String, String)],
    ) -> Result<Url, Error> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot take a path".to_owned()))?
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }
}

/// A fresh idempotency key: 128 random bits, hex.
pub(crate) fn generated_idempotency_key() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let mut key = String::from("vinr-client-");
    for byte in bytes {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// The query of a list call: paging and filters. Every field is optional.
///
/// ```
/// use vinr_client::ListParams;
/// let params = ListParams::new().limit(10).filter("status", "completed");
/// assert_eq!(params.pairs()[0], ("limit".to_owned(), "10".to_owned()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// 1–100 (default 25): objects per page.
    pub limit: Option<u32>,
    /// An object id: the page after it (older objects).
    pub starting_after: Option<String>,
    /// An object id: the page before it (newer objects).
    pub ending_before: Option<String>,
    /// `created[gte]`: RFC 3339.
    pub created_gte: Option<String>,
    /// `created[lt]`: RFC 3339.
    pub created_lt: Option<String>,
    /// Per-resource filters: `status` (payments, disputes, settlements), `payment` (refunds,
    /// disputes), `type` (events, balance transactions), `currency`, `source`, `settlement`.
    pub filters: Vec<(String, String)>,
}

impl ListParams {
    pub fn new() -> ListParams {
        ListParams::default()
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn starting_after(mut self, id: impl Into<String>) -> Self {
        self.starting_after = Some(id.into());
        self
    }

    pub fn ending_before(mut self, id: impl Into<String>) -> Self {
        self.ending_before = Some(id.into());
        self
    }

    pub fn created_gte(mut self, instant: impl Into<String>) -> Self {
        self.created_gte = Some(instant.into());
        self
    }

    pub fn created_lt(mut self, instant: impl Into<String>) -> Self {
        self.created_lt = Some(instant.into());
        self
    }

    /// A per-resource filter such as `("status", "completed")`.
    pub fn filter(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.filters.push((name.into(), value.into()));
        self
    }

    /// The query pairs, as sent.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        if let Some(limit) = self.limit {
            pairs.push(("limit".to_owned(), limit.to_string()));
        }
        let named = [
            ("starting_after", &self.starting_after),
            ("ending_before", &self.ending_before),
            ("created[gte]", &self.created_gte),
            ("created[lt]", &self.created_lt),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                pairs.push((name.to_owned(), value.clone()));
            }
        }
        pairs.extend(self.filters.iter().cloned());
        pairs
    }
}
