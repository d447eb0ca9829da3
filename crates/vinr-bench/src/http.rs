//! Minimal HTTP/1.1 client: one keep-alive connection per virtual user.
//!
//! We drive `hyper::client::conn::http1` directly instead of a pooled client
//! so that every virtual user owns exactly one TCP connection and the numbers
//! measure the server, not a client-side pool.

use std::fmt;
use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Request body type: the bodies are prebuilt `Bytes`, so cloning one is a
/// reference-count bump rather than a copy.
pub type Body = Full<Bytes>;

/// How a request failed. Every failure is counted and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// The server answered with a non-2xx status.
    Http(u16),
    /// TCP connect or HTTP handshake failed.
    Connect,
    /// The connection broke while sending or receiving.
    Io,
    /// No complete response before the request deadline.
    Timeout,
    /// 2xx, but the body was not usable (e.g. a create without a payment id).
    BadResponse,
}

impl ErrorKind {
    /// Stable machine-readable name used in JSON output.
    pub fn code(self) -> String {
        match self {
            ErrorKind::Http(status) => format!("http_{status}"),
            ErrorKind::Connect => "connect".to_owned(),
            ErrorKind::Io => "io".to_owned(),
            ErrorKind::Timeout => "timeout".to_owned(),
            ErrorKind::BadResponse => "bad_response".to_owned(),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Http(status) => write!(f, "HTTP {status}"),
            ErrorKind::Connect => f.write_str("connect error"),
            ErrorKind::Io => f.write_str("connection error"),
            ErrorKind::Timeout => f.write_str("timeout"),
            ErrorKind::BadResponse => f.write_str("bad response"),
        }
    }
}

/// A failed request: what kind of failure plus a short human-readable detail
/// (error message or the start of the response body) for the report.
#[derive(Debug)]
pub struct Failure {
    pub kind: ErrorKind,
    pub detail: String,
}

impl Failure {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.kind, self.detail)
        }
    }
}

/// A successful (2xx) response. The body is only kept when asked for.
#[derive(Debug)]
pub struct Response {
    pub body: Bytes,
    /// `Idempotent-Replayed: true`: the server answered a retry from its stored response.
    pub replayed: bool,
}

/// Where requests go and the headers every request carries, prepared once.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    host: HeaderValue,
    auth: Option<HeaderValue>,
    /// Path prefix from `--url` without trailing slash ("" normally).
    base_path: String,
}

/// Longest error detail we keep; enough to see an error code from the API.
const DETAIL_LIMIT: usize = 200;

impl Target {
    /// Parses `http://host[:port][/prefix]` and resolves the host once, so
    /// the load loops never do DNS.
    pub async fn resolve(url: &str, key: Option<&str>) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("invalid --url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "invalid --url {url:?}: only http:// is supported (the bench speaks plain HTTP/1.1)"
            ));
        }
        if uri.query().is_some() {
            return Err(format!(
                "invalid --url {url:?}: query strings are not supported"
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("invalid --url {url:?}: missing host"))?;
        let port = authority.port_u16().unwrap_or(80);
        // `Uri::host` keeps IPv6 brackets; the resolver wants them stripped.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        // Servers commonly bind 127.0.0.1 only, while "localhost" may resolve
        // to ::1 first; prefer IPv4 when both are offered.
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| format!("{host} resolved to no addresses"))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("invalid host in --url: {e}"))?;
        let auth = key
            .map(|k| HeaderValue::from_str(&format!("Bearer {k}")))
            .transpose()
            .map_err(|_| "the API key contains characters not allowed in a header".to_owned())?
            .map(|mut v| {
                // Keeps the key out of any debug output of the headers.
                v.set_sensitive(true);
                v
            });
        Ok(Self {
            addr,
            host,
            auth,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// A target for tests: plain address, no prefix.
    #[cfg(test)]
    pub fn for_test(addr: SocketAddr, key: Option<&str>) -> Self {
        Self {
            addr,
            host: HeaderValue::from_str(&addr.to_string())
                .expect("socket address is a valid header"),
            auth: key.map(|k| {
                HeaderValue::from_str(&format!("Bearer {k}")).expect("test key is a valid header")
            }),
            base_path: String::new(),
        }
    }

    /// Builds the URI for an API path (which must start with '/').
    pub fn uri(&self, path: &str) -> Result<Uri, Failure> {
        let full = if self.base_path.is_empty() {
            Uri::try_from(path)
        } else {
            Uri::try_from(format!("{}{path}", self.base_path))
        };
        full.map_err(|e| {
            Failure::new(
                ErrorKind::BadResponse,
                format!("invalid path {path:?}: {e}"),
            )
        })
    }

    /// Builds a request with the common headers. Setting the parts directly
    /// (instead of `Request::builder`) is infallible and skips re-validation.
    pub fn request(
        &self,
        method: Method,
        uri: Uri,
        body: Option<Bytes>,
        idempotency_key: Option<HeaderValue>,
    ) -> Request<Body> {
        let has_body = body.is_some();
        let mut req = Request::new(Full::new(body.unwrap_or_default()));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(HOST, self.host.clone());
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        if has_body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(key) = idempotency_key {
            headers.insert("idempotency-key", key);
        }
        req
    }
}

/// One keep-alive HTTP/1.1 connection that reconnects lazily after errors.
pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Body>>,
}

impl Conn {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Opens the connection ahead of time so the first measured request does
    /// not pay for the TCP handshake.
    pub async fn connect(&mut self) -> Result<(), Failure> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(open(self.addr).await?);
        }
        Ok(())
    }

    /// Sends one request and reads the whole response before returning, so
    /// the connection can be reused. Non-2xx statuses are failures. The body
    /// of a 2xx response is only kept when `keep_body` is set.
    pub async fn send(
        &mut self,
        req: Request<Body>,
        keep_body: bool,
        deadline: Instant,
    ) -> Result<Response, Failure> {
        let result = match tokio::time::timeout_at(deadline, self.send_inner(req, keep_body)).await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                ErrorKind::Timeout,
                "no complete response before the deadline",
            )),
        };
        if let Err(f) = &result {
            // After a transport failure or timeout the connection state is
            // unknown (a response may still be in flight); start fresh. A
            // non-2xx response leaves the connection perfectly usable.
            if !matches!(f.kind, ErrorKind::Http(_)) {
                self.sender = None;
            }
        }
        result
    }

    async fn send_inner(
        &mut self,
        req: Request<Body>,
        keep_body: bool,
    ) -> Result<Response, Failure> {
        self.connect().await?;
        let sender = self.ready_sender().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::new(ErrorKind::Io, e.to_string()))?;
        let status = resp.status();
        let replayed = resp
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|value| value.as_bytes() == b"true");
        let mut body = resp.into_body();
        if status.is_success() && !keep_body {
            drain(&mut body).await?;
            return Ok(Response {
                body: Bytes::new(),
                replayed,
            });
        }
        let bytes = body
            .collect()
            .await
            .map_err(|e| Failure::new(ErrorKind::Io, e.to_string()))?
            .to_bytes();
        if status.is_success() {
            Ok(Response {
                body: bytes,
                replayed,
            })
        } else {
            Err(Failure::new(
                ErrorKind::Http(status.as_u16()),
                snippet(&bytes),
            ))
        }
    }

    /// Waits until the connection can take a request. If the server closed an
    /// idle keep-alive connection, nothing has been sent yet, so reconnecting
    /// once here is safe and not an error.
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Body>, Failure> {
        let first_try_ok = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !first_try_ok {
            self.sender = Some(open(self.addr).await?);
        }
        let sender = self
            .sender
            .as_mut()
            .ok_or_else(|| Failure::new(ErrorKind::Connect, "no connection"))?;
        if !first_try_ok {
            sender
                .ready()
                .await
                .map_err(|e| Failure::new(ErrorKind::Connect, e.to_string()))?;
        }
        Ok(sender)
    }
}

async fn open(addr: SocketAddr) -> Result<SendRequest<Body>, Failure> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| Failure::new(ErrorKind::Connect, format!("{addr}: {e}")))?;
    // Requests are small single writes; Nagle would only add latency.
    stream
        .set_nodelay(true)
        .map_err(|e| Failure::new(ErrorKind::Connect, e.to_string()))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::new(ErrorKind::Connect, e.to_string()))?;
    tokio::spawn(async move {
        // The driver's error (if any) is also delivered to the pending or the
        // next `send_request`, where it is counted; nothing to do here.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Reads and discards a body without concatenating it.
async fn drain(body: &mut Incoming) -> Result<(), Failure> {
    while !body.is_end_stream() {
        match body.frame().await {
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(Failure::new(ErrorKind::Io, e.to_string())),
            None => break,
        }
    }
    Ok(())
}

/// The start of a response body as text, for error reports.
pub fn snippet(body: &[u8]) -> String {
    let end = body.len().min(DETAIL_LIMIT);
    let mut text = String::from_utf8_lossy(&body[..end]).trim().to_owned();
    if body.len() > DETAIL_LIMIT {
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_urls_with_and_without_prefix() {
        let t = Target::resolve("http://127.0.0.1:8080", Some("k"))
            .await
            .expect("plain url");
        assert_eq!(t.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(t.uri("/healthz").expect("uri"), "/healthz");
        let t = Target::resolve("http://[::1]:9000/api/", None)
            .await
            .expect("ipv6 with prefix");
        assert_eq!(t.addr, "[::1]:9000".parse().expect("addr"));
        assert_eq!(t.uri("/v1/payments").expect("uri"), "/api/v1/payments");
        let req = t.request(Method::GET, t.uri("/healthz").expect("uri"), None, None);
        assert_eq!(req.headers()[HOST], "[::1]:9000");
        assert!(!req.headers().contains_key(AUTHORIZATION));
    }

    #[tokio::test]
    async fn rejects_unsupported_urls() {
        for bad in [
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/?x=1",
        ] {
            assert!(Target::resolve(bad, None).await.is_err(), "{bad}");
        }
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(snippet(b"  {\"error\":1}\n"), "{\"error\":1}");
        let long = vec![b'a'; 500];
        assert_eq!(snippet(&long).chars().count(), DETAIL_LIMIT + 1);
    }
}
