//! Webhook delivery over time, with the real `vinr` binary and the wall clock (SPEC §6, §9):
//! a receiver that fails 30 % of the time and one that times out still get every event at
//! least once, each retry no earlier than the schedule (and `Retry-After`) allows; and
//! deliveries pending when the process is killed with `kill -9` are all made after a restart.
//! The retry schedule is the seconds one a sandbox would use, from the `[webhooks]` table.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::process::Served;
use common::receiver::{verify_with_library, Answer, Received, Receiver};
use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
/// Seconds before each retry: the second step is longer, to tell steps apart.
const SCHEDULE_S: [u64; 20] = [1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
const TIMEOUT_S: u64 = 1;
/// Arrival times are measured by the receiver, the schedule by the server: allow for the
/// two clocks' reading granularity.
const CLOCK_SLACK: Duration = Duration::from_millis(20);

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("vinr.toml");
    let schedule: Vec<String> = SCHEDULE_S.iter().map(u64::to_string).collect();
    std::fs::write(
        &path,
        format!(
            "[rate_limit]\nenabled = false\n\n[webhooks]\nretry_schedule_seconds = [{}]\n\
             timeout_seconds = {TIMEOUT_S}\npoll_interval_ms = 50\n",
            schedule.join(", ")
        ),
    )
    .expect("config written");
    path
}

struct Deployment {
    dir: tempfile::TempDir,
    config: PathBuf,
    database: TestDatabase,
}

impl Deployment {
    async fn new() -> Deployment {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = write_config(dir.path());
        let database = fresh_database().await;
        Deployment {
            dir,
            config,
            database,
        }
    }

    fn serve(&self) -> Served {
        Served::start(self.dir.path(), &self.database.url, &self.config)
    }
}

async fn register(api: &Api, url: &str) -> (String, String) {
    let reply = api.post_json("/v1/webhooks", json!({ "url": url })).await;
    let endpoint = reply.expect_status(201);
    (
        id_of(endpoint),
        endpoint["secret"].as_str().expect("a secret").to_owned(),
    )
}

/// Creates `count` payments; answers their `payment.created` event ids.
async fn created_events(api: &Api, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let payment = api.new_payment().await;
        let events = api.events_of(&id_of(&payment)).await;
        assert_eq!(events.len(), 1);
        ids.push(id_of(&events[0]));
    }
    ids
}

/// Each event's requests in arrival order.
fn by_event(received: &[Received]) -> BTreeMap<String, Vec<Received>> {
    let mut map: BTreeMap<String, Vec<Received>> = BTreeMap::new();
    for request in received {
        map.entry(request.id.clone())
            .or_default()
            .push(request.clone());
    }
    for requests in map.values_mut() {
        requests.sort_by_key(|r| r.at);
    }
    map
}

#[tokio::test]
async fn a_flaky_receiver_gets_every_event_no_retry_early_and_retry_after_honoured() {
    let deployment = Deployment::new().await;
    let served = deployment.serve();
    let api = Api::new(&served.base, served.printed_key.as_deref().expect("a key"));
    // 3 requests in 10 fail; one failure in 10 also asks for 3 s with Retry-After.
    let receiver = Receiver::with_plan(Arc::new(|_, _, total| match total % 10 {
        0 => Answer {
            retry_after: Some("3".into()),
            ..Answer::status(503)
        },
        4 | 7 => Answer::status(500),
        _ => Answer::ok(),
    }))
    .await;
    let (endpoint, secret) = register(&api, &receiver.url()).await;
    let ids = created_events(&api, 30).await;
    let received = receiver.wait_delivered(&ids, WAIT).await;
    let mut retried = 0;
    let mut retried_after = 0;
    for (id, requests) in by_event(&received) {
        assert!(ids.contains(&id), "an unexpected event {id}");
        // Once delivered, never again (no resend here).
        let first_success = requests
            .iter()
            .position(|r| r.status == 200)
            .expect("delivered");
        assert_eq!(first_success + 1, requests.len(), "{id} sent after success");
        for pair in requests.windows(2) {
            let (failed, next) = (&pair[0], &pair[1]);
            let step = Duration::from_secs(SCHEDULE_S[failed.nth - 1]);
            // The plan's 503s carry `Retry-After: 3`.
            let asked = if failed.status == 503 {
                Duration::from_secs(3)
            } else {
                Duration::ZERO
            };
            let gap = next.at - failed.at;
            assert!(
                gap + CLOCK_SLACK >= step.max(asked),
                "{id}: attempt {} came {gap:?} after attempt {}, before {:?}",
                next.nth,
                failed.nth,
                step.max(asked)
            );
            retried += 1;
            retried_after += usize::from(asked > Duration::ZERO);
        }
    }
    assert!(retried >= 5, "the plan made failures ({retried} retries)");
    assert!(retried_after >= 1, "a Retry-After was answered");
    let messages: Vec<(&str, &Received)> = received.iter().map(|r| (secret.as_str(), r)).collect();
    verify_with_library(&messages);
    // Every attempt is recorded, the failed ones with their next attempt.
    let listed = api
        .recorded_webhook_attempts(&endpoint, received.len(), WAIT)
        .await;
    assert_eq!(listed.len(), received.len());
    for attempt in &listed {
        match attempt["statusCode"].as_u64() {
            Some(200) => assert_eq!(attempt["status"], "succeeded"),
            Some(500 | 503) => {
                assert_eq!(attempt["status"], "failed");
                assert!(attempt["nextAttemptAt"].as_str().is_some(), "{attempt}");
            }
            other => panic!("unexpected status code {other:?}"),
        }
    }
    let (status, _) = served.terminate();
    assert!(status.success(), "vinr serve exits cleanly");
    // With the server gone nothing more can come: what was checked above is all it sent, so
    // no event was sent again after its success later than the checks ran.
    assert_eq!(
        receiver.received().len(),
        received.len(),
        "requests after every event was delivered"
    );
    receiver.stop();
}

#[tokio::test]
async fn a_receiver_that_times_out_is_retried_after_the_timeout_and_the_step() {
    let deployment = Deployment::new().await;
    let served = deployment.serve();
    let api = Api::new(&served.base, served.printed_key.as_deref().expect("a key"));
    // Every first attempt takes longer than the timeout; the second is answered at once.
    let receiver = Receiver::with_plan(Arc::new(|_, nth, _| {
        if nth == 1 {
            Answer {
                delay: Duration::from_millis(TIMEOUT_S * 1000 + 1500),
                ..Answer::ok()
            }
        } else {
            Answer::ok()
        }
    }))
    .await;
    let (endpoint, _) = register(&api, &receiver.url()).await;
    let ids = created_events(&api, 5).await;
    let received = receiver
        .wait_until(WAIT, "a second attempt of every event", |received| {
            ids.iter()
                .all(|id| received.iter().any(|r| &r.id == id && r.nth == 2))
        })
        .await;
    for (id, requests) in by_event(&received) {
        assert_eq!(requests.len(), 2, "{id}: timed out once, then delivered");
        let gap = requests[1].at - requests[0].at;
        let least = Duration::from_secs(TIMEOUT_S + SCHEDULE_S[0]);
        assert!(gap + CLOCK_SLACK >= least, "{id}: retried after {gap:?}");
    }
    let listed = api.recorded_webhook_attempts(&endpoint, 10, WAIT).await;
    assert_eq!(listed.len(), 10);
    let timed_out: Vec<&Value> = listed.iter().filter(|a| a["attempt"] == 1).collect();
    assert_eq!(timed_out.len(), 5);
    for attempt in timed_out {
        assert_eq!(attempt["status"], "failed");
        assert_eq!(attempt["statusCode"], Value::Null);
        assert_eq!(attempt["error"], format!("no answer within {TIMEOUT_S} s"));
        assert!(attempt["latencyMs"].as_u64().is_some_and(|ms| ms >= 900));
    }
    assert!(listed
        .iter()
        .filter(|a| a["attempt"] == 2)
        .all(|a| a["status"] == "succeeded"));
    receiver.stop();
    drop(served);
}

#[tokio::test]
async fn deliveries_pending_at_kill_9_are_all_made_after_a_restart() {
    let deployment = Deployment::new().await;
    let served = deployment.serve();
    let key = served.printed_key.clone().expect("a key");
    let api = Api::new(&served.base, &key);
    // The receiver is down (answers 500) while the server is killed.
    let receiver = Receiver::with_plan(Arc::new(|_, _, _| Answer::status(500))).await;
    let (_, secret) = register(&api, &receiver.url()).await;
    let mut ids = created_events(&api, 20).await;
    receiver
        .wait_until(WAIT, "first attempts", |received| received.len() >= 10)
        .await;
    // More events right before the kill: some never attempted at all.
    ids.extend(created_events(&api, 10).await);
    served.kill_9();
    receiver.set_plan(Arc::new(|_, _, _| Answer::ok()));
    let served = deployment.serve();
    assert!(served.printed_key.is_none(), "the same database");
    let received = receiver.wait_delivered(&ids, WAIT).await;
    let delivered: Vec<&Received> = received.iter().filter(|r| r.status == 200).collect();
    let messages: Vec<(&str, &Received)> =
        delivered.iter().map(|r| (secret.as_str(), *r)).collect();
    verify_with_library(&messages);
    receiver.stop();
    drop(served);
}
