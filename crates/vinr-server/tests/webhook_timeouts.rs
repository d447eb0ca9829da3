//! A failed webhook attempt names the limit that ran out, with its value: for a receiver whose
//! host never accepts the connection, the connect timeout (`WEBHOOK_CONNECT_TIMEOUT_S_MAX`,
//! shorter than the configured attempt timeout), not the attempt's. (An attempt that connects
//! and is never answered says "no answer within <timeout_seconds> s": webhook_delivery.rs.)

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use vinr_domain::limits::WEBHOOK_CONNECT_TIMEOUT_S_MAX;
use vinr_server::config::WebhooksConfig;

/// Longer than the connect timeout, so the two cannot be confused.
const TIMEOUT_S: u64 = WEBHOOK_CONNECT_TIMEOUT_S_MAX + 2;

/// The attempt a `POST /v1/webhooks/{id}/test` to `url` answers.
async fn test_send(api: &Api, url: &str) -> Value {
    let endpoint = api
        .post_json("/v1/webhooks", json!({ "url": url }))
        .await
        .expect_status(201)
        .clone();
    let attempt = api
        .post_json(
            &format!("/v1/webhooks/{}/test", id_of(&endpoint)),
            json!({}),
        )
        .await;
    let attempt = attempt.expect_status(200);
    assert_eq!(attempt["status"], "failed");
    assert_eq!(attempt["statusCode"], Value::Null);
    attempt.clone()
}

#[tokio::test]
async fn a_receiver_that_never_accepts_is_a_connect_timeout_of_its_own_length() {
    let server = TestServer::start_with(Options {
        webhooks: Some(WebhooksConfig {
            timeout_seconds: TIMEOUT_S,
            ..WebhooksConfig::default()
        }),
        ..Options::default()
    })
    .await;
    let api = server.api();

    // Once a listener's accept queue is full, Linux drops new SYNs: the connect never completes.
    let full = TcpListener::bind("127.0.0.1:0").expect("a listener");
    let full_addr: SocketAddr = full.local_addr().expect("addr");
    let mut queued = Vec::new();
    while let Ok(stream) = TcpStream::connect_timeout(&full_addr, Duration::from_millis(200)) {
        queued.push(stream);
        assert!(queued.len() < 10_000, "the accept queue never filled");
    }
    let full_url = format!("http://127.0.0.1:{}/", full_addr.port());
    let attempt = test_send(&api, &full_url).await;
    assert_eq!(
        attempt["error"],
        format!("could not connect within {WEBHOOK_CONNECT_TIMEOUT_S_MAX} s")
    );
    let latency_ms = attempt["latencyMs"].as_u64().expect("latencyMs");
    assert!(
        (WEBHOOK_CONNECT_TIMEOUT_S_MAX * 1000..TIMEOUT_S * 1000).contains(&latency_ms),
        "gave up after {latency_ms} ms"
    );
    drop((full, queued));
    server.stop().await;
}
