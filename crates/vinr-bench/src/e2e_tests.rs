//! End-to-end checks of the load loops against the stand-in server: the
//! bench's counts must match what the server saw, and failures must show up.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{ErrorKind, Target};
use crate::load::{self, LoadConfig};
use crate::report::Report;
use crate::scenario::{self, OpKind, RunId, Workload};
use crate::test_server::{self, Options, TestServer, KEY};

fn closed(connections: usize, millis: u64) -> LoadConfig {
    LoadConfig {
        connections,
        duration: Duration::from_millis(millis),
        warmup: Duration::ZERO,
        rate: None,
        server_cpu: None,
    }
}

fn target(server: &TestServer) -> Arc<Target> {
    Arc::new(Target::for_test(server.addr, Some(KEY)))
}

async fn bench(
    name: &'static str,
    workload: Workload,
    target: &Target,
    cfg: &LoadConfig,
) -> Report {
    let run = load::run(Arc::new(workload), target.addr, 7, cfg).await;
    Report::new(name, &cfg.shape(), run.stats, run.elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_counts_match_the_server() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let workload = Workload::healthz(target.clone(), &RunId::from_clock()).expect("workload");
    let report = bench("healthz", workload, &target, &closed(4, 300)).await;

    assert_eq!(report.error_total, 0, "{}", report.render_text());
    assert!(report.ok > 0);
    assert_eq!(report.ok, server.counters().healthz.load(Ordering::Relaxed));
    let latency = report.latency.as_ref().expect("latency of ok requests");
    assert!(latency.p50 <= latency.p99 && latency.p99 <= latency.max);
    assert!(report.elapsed >= Duration::from_millis(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_counted_and_shown() {
    let server = test_server::start(Options {
        fail_every: 7,
        ..Options::default()
    })
    .await;
    let target = target(&server);
    let workload = Workload::create(target.clone(), &RunId::from_clock(), "c").expect("workload");
    let report = bench("create", workload, &target, &closed(4, 300)).await;

    let c = server.counters();
    assert_eq!(
        c.client_bugs.load(Ordering::Relaxed),
        0,
        "unique keys, valid auth"
    );
    assert_eq!(report.requests(), c.creates.load(Ordering::Relaxed));
    assert_eq!(
        report.error_total,
        c.injected_failures.load(Ordering::Relaxed)
    );
    assert!(report.error_total > 0);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].op, OpKind::Create);
    assert_eq!(report.errors[0].kind, ErrorKind::Http(500));
    assert!(report.has_problems());
    let text = report.render_text();
    assert!(text.contains("!! ERRORS"), "{text}");
    assert!(text.contains("injected"), "{text}");
    assert_eq!(report.to_json()["error_breakdown"][0]["status"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_runs_the_payment_chain_in_order() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let workload = Workload::mixed(target.clone(), &RunId::from_clock()).expect("workload");
    let report = bench("mixed", workload, &target, &closed(4, 400)).await;

    let c = server.counters();
    // Any out-of-order step would be a 404/409 from the server.
    assert_eq!(report.error_total, 0, "{}", report.render_text());
    assert_eq!(c.client_bugs.load(Ordering::Relaxed), 0);
    let (creates, pays, captures, refunds, gets) = (
        c.creates.load(Ordering::Relaxed),
        c.pays.load(Ordering::Relaxed),
        c.captures.load(Ordering::Relaxed),
        c.refunds.load(Ordering::Relaxed),
        c.gets.load(Ordering::Relaxed),
    );
    assert_eq!(
        report.ok,
        creates + pays + captures + refunds + gets,
        "every request is one op"
    );
    assert!(creates >= pays && pays >= captures && captures >= refunds && refunds >= gets);
    assert!(
        creates - gets <= 4,
        "at most one unfinished chain per connection"
    );
    let kinds: Vec<OpKind> = report.per_op.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            OpKind::Create,
            OpKind::Pay,
            OpKind::Capture,
            OpKind::Refund,
            OpKind::Get
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_restarts_the_chain_after_a_failure() {
    let server = test_server::start(Options {
        fail_every: 5,
        ..Options::default()
    })
    .await;
    let target = target(&server);
    let workload = Workload::mixed(target.clone(), &RunId::from_clock()).expect("workload");
    let report = bench("mixed", workload, &target, &closed(3, 300)).await;

    assert_eq!(server.counters().client_bugs.load(Ordering::Relaxed), 0);
    assert_eq!(
        report.requests(),
        server.counters().total.load(Ordering::Relaxed)
    );
    assert_eq!(
        report.error_total,
        server.counters().injected_failures.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_reads_only_prepared_payments() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let run = RunId::from_clock();
    scenario::preflight(&target, &run, true)
        .await
        .expect("preflight");
    let prepared = scenario::prepare_payments(target.clone(), &run, 25, 4)
        .await
        .expect("prepare");
    assert_eq!(prepared.uris.len(), 25);
    assert_eq!(prepared.error_count(), 0);
    assert_eq!(server.payment_count(), 26, "25 prepared + 1 preflight");

    let workload = Workload::get(target.clone(), &run, prepared.uris).expect("workload");
    let report = bench("get", workload, &target, &closed(4, 300)).await;
    assert_eq!(report.error_total, 0, "{}", report.render_text());
    assert_eq!(report.ok, server.counters().gets.load(Ordering::Relaxed));
    assert_eq!(server.counters().client_bugs.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_sends_the_scheduled_number_of_requests() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let workload = Workload::healthz(target.clone(), &RunId::from_clock()).expect("workload");
    let cfg = LoadConfig {
        rate: Some(200.0),
        ..closed(4, 1000)
    };
    let report = bench("healthz", workload, &target, &cfg).await;

    // 200/s for 1 s: exactly 200 slots, each either sent or reported as
    // dropped. The server is fast, so (barring a badly overloaded test
    // machine) practically all are sent.
    let text = report.render_text();
    assert_eq!(report.requests() + report.dropped, 200, "{text}");
    assert!(report.dropped <= 10, "{text}");
    assert_eq!(report.error_total, 0, "{text}");
    assert_eq!(report.ok, server.counters().healthz.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_reports_a_server_that_cannot_keep_up() {
    let server = test_server::start(Options {
        delay: Duration::from_millis(50),
        ..Options::default()
    })
    .await;
    let target = target(&server);
    let workload = Workload::healthz(target.clone(), &RunId::from_clock()).expect("workload");
    // One connection at 100/s against 50 ms responses: ~20/s get through.
    let cfg = LoadConfig {
        rate: Some(100.0),
        ..closed(1, 500)
    };
    let report = bench("healthz", workload, &target, &cfg).await;

    assert_eq!(
        report.requests() + report.dropped,
        50,
        "{}",
        report.render_text()
    );
    assert!(report.dropped > 20, "{}", report.render_text());
    assert!(report.late > 0);
    let latency = report.latency.as_ref().expect("some requests succeeded");
    // Measured from the intended send time, the backlog shows: the last
    // request was due ~50 ms in yet sent much later.
    assert!(latency.max > 150_000, "max {}us", latency.max);
    assert!(latency.p50 > 60_000, "p50 {}us", latency.p50);
    assert!(report.render_text().contains("could not keep up"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_requests_are_not_measured() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let workload = Workload::healthz(target.clone(), &RunId::from_clock()).expect("workload");
    let cfg = LoadConfig {
        warmup: Duration::from_millis(200),
        ..closed(2, 200)
    };
    let report = bench("healthz", workload, &target, &cfg).await;

    let served = server.counters().healthz.load(Ordering::Relaxed);
    assert!(
        report.ok > 0 && report.ok < served,
        "ok {} served {served}",
        report.ok
    );
    assert_eq!(report.warmup_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_are_errors() {
    // Grab a free port, then close it so nothing listens there.
    let addr = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address")
    };
    let target = Arc::new(Target::for_test(addr, None));
    let run = RunId::from_clock();
    let err = scenario::preflight(&target, &run, false)
        .await
        .expect_err("nothing listens");
    assert!(err.contains("connect"), "{err}");

    let workload = Workload::healthz(target.clone(), &run).expect("workload");
    let report = bench("healthz", workload, &target, &closed(2, 200)).await;
    assert_eq!(report.ok, 0);
    assert!(report.error_total > 0);
    assert!(report.errors.iter().all(|e| e.kind == ErrorKind::Connect));
    // The backoff keeps a dead server from turning into a busy loop.
    assert!(report.error_total < 200, "{} errors", report.error_total);
    assert!(report.render_text().contains("!! ERRORS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_fails_preflight() {
    let server = test_server::start(Options::default()).await;
    let target = Arc::new(Target::for_test(server.addr, Some("wrong")));
    let err = scenario::preflight(&target, &RunId::from_clock(), true)
        .await
        .expect_err("401");
    assert!(err.contains("HTTP 401"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_create_posts_form_encoded_payment_intents() {
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let run = RunId::from_clock();
    scenario::preflight_peer(&target, &run)
        .await
        .expect("peer preflight");
    let workload = Workload::peer_create(target.clone(), &run, "s").expect("workload");
    let report = bench("peer-create", workload, &target, &closed(4, 300)).await;

    let c = server.counters();
    assert_eq!(report.error_total, 0, "{}", report.render_text());
    assert_eq!(
        c.client_bugs.load(Ordering::Relaxed),
        0,
        "form body, auth, keys"
    );
    assert_eq!(
        report.ok + 1,
        c.peer_creates.load(Ordering::Relaxed),
        "+ preflight"
    );
    assert!(report.ok > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_cpu_is_read_over_the_window() {
    // The stand-in server runs in this process, so this process's CPU is the server's.
    let server = test_server::start(Options::default()).await;
    let target = target(&server);
    let workload = Workload::healthz(target.clone(), &RunId::from_clock()).expect("workload");
    let cfg = LoadConfig {
        server_cpu: Some(crate::cpu::CpuClock::new(std::process::id()).expect("own stat")),
        ..closed(4, 400)
    };
    let run = load::run(Arc::new(workload), target.addr, 7, &cfg).await;
    let cpu = run.server_cpu.expect("CPU time read at both ends");
    assert!(
        cpu > Duration::ZERO && cpu < Duration::from_secs(30),
        "{cpu:?}"
    );
    let mut report = Report::new("healthz", &cfg.shape(), run.stats, run.elapsed);
    report.server_cpu = Some(cpu);
    let per_request = report.cpu_us_per_request().expect("requests were made");
    assert!(per_request > 0.0);
    assert!(report.render_text().contains("µs/request"));
    assert!(report.to_json()["server_cpu_us_per_request"].is_number());
    assert!(
        report.timeline.len() >= 3,
        "{} buckets",
        report.timeline.len()
    );
    assert!(report.timeline.iter().sum::<u64>() <= report.ok);
}

/// The whole CLI path: a suite with `--plot` and `--server-pid` writes a well-formed SVG with
/// one latency and one throughput line per scenario.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plot_flag_writes_the_svg_of_the_run() {
    use clap::Parser;

    let server = test_server::start(Options::default()).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let svg_path = dir.path().join("run.svg");
    let url = format!("http://{}", server.addr);
    let pid = std::process::id().to_string();
    let cli = crate::Cli::try_parse_from([
        "vinr-bench",
        "--url",
        &url,
        "--key",
        KEY,
        "--scenario",
        "suite",
        "--connections",
        "4",
        "--duration",
        "300ms",
        "--prepare",
        "20",
        "--server-pid",
        &pid,
        "--plot",
        svg_path.to_str().expect("utf-8 path"),
    ])
    .expect("arguments");
    assert!(crate::run(cli).await.expect("run"), "no request failed");

    let svg = std::fs::read_to_string(&svg_path).expect("the plot was written");
    let tags = crate::plot::tests::check_xml(&svg);
    for class in ["latency", "throughput"] {
        let scenarios: Vec<String> = crate::plot::tests::paths(&tags, class)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(scenarios, ["healthz", "create", "get", "mixed"], "{class}");
    }
}
