//! Connections are bounded (SPEC §2 "Connections"): a client that does not finish its headers
//! is disconnected at the header timeout, an idle kept-alive connection at the idle timeout,
//! beyond the cap a new connection is closed at once, and none of it delays other clients or
//! survives past its timeout — also under a low file limit. Over raw TCP on the real port,
//! with short configured timeouts so the suite stays fast.

mod common;

use std::time::{Duration, Instant};

use common::process::Served;
use common::{fresh_database, skip_unless_required, Options, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vinr_server::config::HttpConfig;

/// Far beyond any timeout these tests configure: a connection still open then is held.
const NEVER: Duration = Duration::from_secs(15);

async fn server_with(http: HttpConfig) -> TestServer {
    TestServer::start_with(Options {
        http: Some(http),
        ..Options::default()
    })
    .await
}

fn http(header_read_timeout_ms: u64, keep_alive_idle_timeout_ms: u64) -> HttpConfig {
    HttpConfig {
        header_read_timeout_ms,
        keep_alive_idle_timeout_ms,
        ..HttpConfig::default()
    }
}

/// A connection that sent the start of a request line and nothing more.
async fn half_open(base: &str) -> TcpStream {
    let mut stream = connect(base).await;
    stream
        .write_all(b"GET /healthz HT")
        .await
        .expect("half a request line sent");
    stream
}

async fn connect(base: &str) -> TcpStream {
    let addr = base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connected")
}

/// Reads until the server closes (EOF or reset); answers what was read and when it closed,
/// or `None` if it was still open after `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<(Vec<u8>, Instant)> {
    let mut received = Vec::new();
    let read_all = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed_at = tokio::time::timeout(wait, read_all).await.ok()?;
    Some((received, closed_at))
}

/// Sends one whole keep-alive request and reads its answer (healthz answers with a
/// `content-length`).
async fn request_healthz(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vinr\r\n\r\n")
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(NEVER, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
    }
}

async fn healthz_answers(client: &reqwest::Client, base: &str) -> Duration {
    let sent = Instant::now();
    let response = client
        .get(format!("{base}/healthz"))
        .timeout(NEVER)
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(response.status(), 200);
    sent.elapsed()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_at_the_header_timeout() {
    let server = server_with(http(300, 60_000)).await;
    let opened = Instant::now();
    let mut slow = half_open(&server.base).await;
    // Meanwhile another client is answered at once, on new connections each time.
    for _ in 0..5 {
        let client = reqwest::Client::new();
        let took = healthz_answers(&client, &server.base).await;
        assert!(took < Duration::from_secs(1), "healthz took {took:?}");
    }
    let (received, closed_at) = closed_within(&mut slow, NEVER)
        .await
        .expect("the slow client is disconnected");
    let held = closed_at - opened;
    assert!(
        held >= Duration::from_millis(250) && held < Duration::from_secs(5),
        "closed after {held:?}, the header timeout is 300 ms"
    );
    assert!(received.is_empty(), "no answer to half a request line");
    server.stop().await;
}

#[tokio::test]
async fn a_request_trickled_byte_by_byte_is_cut_at_the_header_timeout() {
    // Bytes that keep coming do not extend the deadline (slowloris).
    let server = server_with(http(500, 60_000)).await;
    let mut slow = connect(&server.base).await;
    let opened = Instant::now();
    let mut closed = false;
    for byte in b"GET /healthz HTTP/1.1\r\nHost: vinr\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
        if slow.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        if opened.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    if !closed {
        closed = closed_within(&mut slow, Duration::from_secs(5))
            .await
            .is_some();
    }
    let held = opened.elapsed();
    assert!(closed, "the trickling client is still connected");
    assert!(
        held < Duration::from_secs(3),
        "held {held:?}, the header timeout is 500 ms"
    );
    server.stop().await;
}

#[tokio::test]
async fn at_the_cap_a_new_connection_is_closed_at_once_and_service_resumes_after_the_header_timeout(
) {
    let server = server_with(HttpConfig {
        max_connections: Some(20),
        ..http(2_000, 60_000)
    })
    .await;
    let opened = Instant::now();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(half_open(&server.base).await);
    }
    // Let the server accept all twenty (the kernel completes handshakes on its own).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut refused = connect(&server.base).await;
    let tried = Instant::now();
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vinr\r\n\r\n")
        .await;
    let (_, closed_at) = closed_within(&mut refused, Duration::from_secs(1))
        .await
        .expect("beyond the cap a new connection is closed at once, not held");
    assert!(closed_at - tried < Duration::from_secs(1));
    // The twenty are closed at their header timeout, and service resumes.
    for stream in &mut held {
        let (_, closed_at) = closed_within(stream, NEVER)
            .await
            .expect("a half-open connection is closed at the header timeout");
        let after = closed_at - opened;
        assert!(
            after >= Duration::from_millis(1_900),
            "closed after {after:?}, before the 2 s header timeout"
        );
    }
    let client = reqwest::Client::new();
    healthz_answers(&client, &server.base).await;
    server.stop().await;
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let server = server_with(http(5_000, 300)).await;
    let mut stream = connect(&server.base).await;
    let answer = request_healthz(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answered = Instant::now();
    let (_, closed_at) = closed_within(&mut stream, NEVER)
        .await
        .expect("the idle connection is closed");
    let idle = closed_at - answered;
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(4),
        "closed after {idle:?} idle; the idle timeout is 300 ms, the header timeout 5 s"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_kept_alive_connection_may_idle_past_the_header_timeout_and_its_next_head_is_timed_from_its_first_byte(
) {
    let server = server_with(http(300, 5_000)).await;
    let mut stream = connect(&server.base).await;
    request_healthz(&mut stream).await;
    // Idle for longer than the header timeout: still open, and answers.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let answer = request_healthz(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // Idle again, then half a request: cut at the header timeout from that first byte.
    tokio::time::sleep(Duration::from_millis(900)).await;
    stream.write_all(b"GET /hea").await.expect("sent");
    let started = Instant::now();
    let (_, closed_at) = closed_within(&mut stream, NEVER)
        .await
        .expect("the unfinished head is cut");
    let after = closed_at - started;
    assert!(
        after >= Duration::from_millis(250) && after < Duration::from_secs(3),
        "cut after {after:?}; the header timeout is 300 ms, the idle timeout 5 s"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_is_answered_408_at_the_body_timeout() {
    let server = server_with(HttpConfig {
        body_read_timeout_ms: 300,
        ..http(5_000, 60_000)
    })
    .await;
    let api = server.api();
    let client = reqwest::Client::new();
    // Complete headers, then 10 of the 100 bytes promised, then nothing: on the API (with a
    // key) and on the public checkout (no key at all).
    for (path, auth) in [
        (
            "/v1/payments",
            format!("Authorization: Bearer {}\r\n", api.key),
        ),
        (
            "/checkout/ck_0123456789abcdef0123456789abcdef/pay",
            String::new(),
        ),
    ] {
        let mut stream = connect(&server.base).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: vinr\r\n{auth}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"amount\":"
        );
        let sent = Instant::now();
        stream.write_all(head.as_bytes()).await.expect("head sent");
        let (answer, closed_at) = closed_within(&mut stream, NEVER)
            .await
            .expect("answered and closed, not held");
        let after = closed_at - sent;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(
            answer.contains("\"code\":\"request_timeout\""),
            "{path}: {answer}"
        );
        assert!(
            after >= Duration::from_millis(300) && after < Duration::from_secs(5),
            "{path}: closed after {after:?}; the body timeout is 300 ms"
        );
        // Other clients were served meanwhile, and nothing was created.
        assert!(healthz_answers(&client, &server.base).await < Duration::from_secs(5));
    }
    let listed = api.get("/v1/payments").await;
    assert_eq!(
        listed.json["data"].as_array().map(Vec::len),
        Some(0),
        "{}",
        listed.text
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_finish() {
    let server = server_with(http(5_000, 60_000)).await;
    let api = server.api();
    // A request whose body is still on its way when the server is told to stop.
    let mut stream = connect(&server.base).await;
    let body = format!(
        r#"{{"amount":1000,"currency":"EUR","returnUrl":"{}"}}"#,
        common::RETURN_URL
    );
    let head = format!(
        "POST /v1/payments HTTP/1.1\r\nHost: vinr\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        api.key,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head sent");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let stopping = tokio::spawn(server.stop());
    // Send the body only once the shutdown has begun (the listener is closed: new connections
    // are refused), so the answer proves an in-flight request outlived it.
    let began = Instant::now();
    while TcpStream::connect(&addr).await.is_ok() {
        assert!(
            began.elapsed() < NEVER,
            "the server never stopped listening"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stream.write_all(body.as_bytes()).await.expect("body sent");
    let (answer, _) = closed_within(&mut stream, NEVER)
        .await
        .expect("answered, then closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"object\":\"payment\""), "{answer}");
    tokio::time::timeout(NEVER, stopping)
        .await
        .expect("stopped in time")
        .expect("stop did not panic");
}

/// The real `vinr serve` under `prlimit --nofile=256:256` with `http` as its `[http]` table,
/// or `None` (having said why) where `prlimit` is missing. The directory and database must
/// outlive the server.
async fn under_low_file_limit(
    http: &str,
) -> Option<(tempfile::TempDir, common::database::TestDatabase, Served)> {
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        skip_unless_required("prlimit (util-linux) is not installed");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("vinr.toml");
    std::fs::write(
        &config,
        format!("[rate_limit]\nenabled = false\n[http]\n{http}"),
    )
    .expect("config written");
    let database = fresh_database().await;
    let served = Served::start_wrapped(
        &["prlimit", "--nofile=256:256"],
        dir.path(),
        &database.url,
        &config,
    );
    Some((dir, database, served))
}

/// The real binary under `prlimit --nofile=256:256`: 400 connections that never finish their
/// headers take every connection the cap allows, yet the server neither fails nor spins, a
/// client already connected keeps being answered, a new one is refused at once rather than
/// left hanging, and when the header timeout passes, service resumes.
#[tokio::test]
async fn the_server_survives_a_low_file_limit() {
    let Some((_dir, _database, served)) =
        under_low_file_limit("header_read_timeout_ms = 3000\n").await
    else {
        return;
    };
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", served.pid()))
        .expect("the server's limits");
    assert!(
        limits
            .lines()
            .any(|line| line.starts_with("Max open files") && line.contains(" 256 ")),
        "{limits}"
    );
    let mut kept_alive = connect(&served.base).await;
    request_healthz(&mut kept_alive).await;

    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..400 {
        slow.push(half_open(&served.base).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let sent = Instant::now();
        let answer = request_healthz(&mut kept_alive).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let took = sent.elapsed();
        assert!(took < Duration::from_secs(1), "healthz took {took:?}");
    }
    // At the cap: a new connection is closed at once, not left to hang.
    let mut late = connect(&served.base).await;
    let _ = late
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: vinr\r\n\r\n")
        .await;
    closed_within(&mut late, Duration::from_secs(2))
        .await
        .expect("a connection beyond the cap is closed at once");
    // All 400 are closed, none later than the header timeout allows.
    for stream in &mut slow {
        closed_within(stream, NEVER)
            .await
            .expect("closed at the header timeout or refused");
    }
    let all_closed = opened.elapsed();
    assert!(
        all_closed < Duration::from_secs(10),
        "the last closed after {all_closed:?}"
    );
    // Service resumes on new connections.
    let client = reqwest::Client::new();
    healthz_answers(&client, &served.base).await;
    let log = served.log();
    assert!(!log.contains("panicked"), "{log}");
    let (status, _) = served.terminate();
    assert!(status.success(), "vinr serve exited with {status}");
}

/// CPU time (user + system) the process has used, in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the process's stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("a stat line")
        .1
        .split_whitespace()
        .collect();
    let field = |n: usize| fields[n - 3].parse::<u64>().expect("a tick count");
    field(14) + field(15)
}

/// A cap configured above the file limit: `accept` then fails with EMFILE while descriptors
/// are short. The server backs off instead of spinning on the error, keeps answering the
/// client it has, and takes the waiting connections once the held ones time out.
#[tokio::test]
async fn accept_errors_for_want_of_descriptors_are_backed_off_not_spun_on() {
    let Some((_dir, _database, served)) =
        under_low_file_limit("header_read_timeout_ms = 3000\nmax_connections = 10000\n").await
    else {
        return;
    };
    let mut kept_alive = connect(&served.base).await;
    request_healthz(&mut kept_alive).await;
    let mut slow = Vec::new();
    for _ in 0..400 {
        slow.push(half_open(&served.base).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ticks_before = cpu_ticks(served.pid());
    let watched = Instant::now();
    for _ in 0..5 {
        let answer = request_healthz(&mut kept_alive).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let spent = cpu_ticks(served.pid()) - ticks_before;
    let watched = watched.elapsed();
    let log = served.log();
    assert!(
        log.contains("accept failed"),
        "descriptors never ran short; the server's log:\n{log}"
    );
    // Spinning on EMFILE would burn a core: ~200 ticks in these 2 s.
    assert!(
        spent < 60,
        "the server used {spent} ticks of CPU in {watched:?} while descriptors were short"
    );
    for stream in &mut slow {
        closed_within(stream, Duration::from_secs(30))
            .await
            .expect("every waiting connection is served and closed in the end");
    }
    let client = reqwest::Client::new();
    healthz_answers(&client, &served.base).await;
    let (status, _) = served.terminate();
    assert!(status.success(), "vinr serve exited with {status}");
}
