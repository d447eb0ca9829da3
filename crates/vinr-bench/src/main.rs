//! `vinr-bench`: load generator for the vinr payments API.
//!
//! Every virtual user owns one raw HTTP/1.1 keep-alive connection (hyper's
//! low-level client over a `TcpStream` with `TCP_NODELAY`) and sends one of
//! these scenarios:
//!
//! * `healthz` – `GET /healthz`, the baseline for the HTTP stack;
//! * `create`  – `POST /v1/payments`, each with a fresh `Idempotency-Key`;
//! * `get`     – `GET /v1/payments/{id}` over `--prepare` payments created first;
//! * `mixed`   – create (manual capture) → pay → capture → get, one op per request;
//! * `suite`   – all of the above in turn, each compared with healthz from the
//!   same run;
//! * `webhooks` – creates with an in-process webhook receiver registered: commit to
//!   first delivery attempt latency and deliveries per second (see `webhooks.rs`);
//! * `peer-create` – `POST /v1/payment_intents` on a Stripe-compatible peer (`--peer`,
//!   e.g. localstripe), the same loops and report as ours;
//! * `peer` – healthz and create on `--url`, then peer-create on `--peer`, in one run.
//!
//! Two load modes:
//!
//! * closed loop (default): each of `--connections` users sends its next
//!   request as soon as the previous one returns;
//! * fixed arrival rate (`--rate R`): R requests/s in total spread evenly
//!   over the connections. Latency is measured from each request's intended
//!   send time, which corrects for coordinated omission; requests sent late
//!   or never sent because the server could not keep up are reported.
//!
//! Latencies go into HdrHistograms at microsecond resolution. Non-2xx
//! responses and connection failures are errors, counted by kind and
//! printed prominently; the exit code is 2 when any occurred. The tool stops
//! by itself after warmup + duration (plus a short grace for in-flight
//! requests) and only talks to `--url`.
//!
//! `--plot FILE.svg` draws the run (latency by percentile, throughput over time, see
//! `plot.rs`); `--server-pid PID` adds the server's CPU time per request (`cpu.rs`).
//!
//! `vinr-bench torture` is a crash and race suite instead: it starts `vinr`
//! itself, kills it under load and checks what survived (see `torture/mod.rs`).

mod cpu;
mod http;
mod load;
mod plot;
mod report;
mod scenario;
mod torture;
mod webhooks;

#[cfg(test)]
mod e2e_tests;
#[cfg(test)]
mod test_server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::cpu::CpuClock;
use crate::http::Target;
use crate::load::LoadConfig;
use crate::report::{format_duration, Report};
use crate::scenario::{prepare_payments, RunId, Scenario, Workload};

#[derive(Parser, Debug)]
#[command(
    name = "vinr-bench",
    version,
    about = "Load generator for the vinr payments API (closed loop or fixed arrival rate)",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Base URL of the server (plain http only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,

    /// API key, sent as `Authorization: Bearer <key>`; not needed for healthz.
    #[arg(long, env = "VINR_BENCH_KEY", hide_env_values = true)]
    key: Option<String>,

    /// Concurrent keep-alive connections (one per virtual user).
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,

    /// Measured duration, e.g. `10s`, `500ms`, `2m`.
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load before measuring starts, not counted (e.g. `2s`).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,

    /// Fixed arrival rate in requests/s across all connections; without it,
    /// each connection runs a closed loop.
    #[arg(long, short = 'r')]
    rate: Option<f64>,

    /// What to send.
    #[arg(long, short = 's', value_enum, default_value_t = Scenario::Healthz)]
    scenario: Scenario,

    /// Payments to create before the `get` scenario starts; for `webhooks`, the backlog whose
    /// drain measures delivery alone (0: no backlog phase).
    #[arg(long, default_value_t = 1000)]
    prepare: usize,

    /// Print one JSON object per scenario on stdout (the text report then
    /// goes to stderr).
    #[arg(long)]
    json: bool,

    /// After the run, write an SVG here: latency by percentile (log scale of 1/(1-p)) and
    /// 2xx throughput per 100 ms over the measured window, one line per scenario.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,

    /// Pid of the server behind --url: its CPU time (/proc/PID/stat, utime + stime) over
    /// each measured window is reported as server CPU µs per request.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,

    /// Base URL of a Stripe-compatible peer (e.g. localstripe) for the `peer-create` and
    /// `peer` scenarios, which POST /v1/payment_intents there.
    #[arg(long, value_name = "URL")]
    peer: Option<String>,

    /// The peer's secret key, sent as `Authorization: Bearer <key>`.
    #[arg(long, value_name = "KEY", default_value = "sk_test_12345")]
    peer_key: String,

    /// Pid of the peer: its CPU µs per request, as --server-pid for ours.
    #[arg(long, value_name = "PID")]
    peer_pid: Option<u32>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Crash and race suite: rounds of mixed load against a `vinr` binary, SIGKILL at a random
    /// moment, restart, retry what was in flight, then check every promise (acknowledged
    /// writes, idempotency, events, refunds, ledger, SQLite integrity). Exit status 2 on any
    /// violation.
    Torture(torture::Args),
}

/// Parses `10s`, `500ms`, `1.5s`, `2m`, `250us`. A unit is required so that
/// `--duration 500` cannot silently mean something unexpected.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    // "ms"/"us" before "s", since they end in 's' too.
    let (number, unit_ns): (&str, u64) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000_000_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else {
        return Err(format!("{text:?}: missing unit (use e.g. 10s, 500ms, 2m)"));
    };
    let number = number.trim();
    // Whole numbers take the exact integer path; fractions go through f64.
    if let Ok(n) = number.parse::<u64>() {
        return n
            .checked_mul(unit_ns)
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("{text:?}: too long"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number followed by a unit"))?;
    if !value.is_finite() || value < 0.0 {
        return Err(format!("{text:?}: must be a non-negative number"));
    }
    let nanos = (value * unit_ns as f64).round();
    if nanos >= u64::MAX as f64 {
        return Err(format!("{text:?}: too long"));
    }
    // In range and non-negative, checked above.
    Ok(Duration::from_nanos(nanos as u64))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vinr-bench: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Some(Command::Torture(args)) => runtime.block_on(torture::run(args)),
        None => runtime.block_on(run(cli)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(msg) => {
            eprintln!("vinr-bench: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the selected scenarios; `Ok(true)` when no request failed.
async fn run(cli: Cli) -> Result<bool, String> {
    if cli.connections == 0 {
        return Err("--connections must be at least 1".to_owned());
    }
    if cli.duration.is_zero() {
        return Err("--duration must be greater than zero".to_owned());
    }
    if let Some(rate) = cli.rate {
        if !(rate.is_finite() && rate > 0.0) {
            return Err("--rate must be a positive number of requests per second".to_owned());
        }
    }
    let scenarios = cli.scenario.expand();
    if scenarios.contains(&Scenario::Get) && cli.prepare == 0 {
        return Err("--prepare must be at least 1 for the get scenario".to_owned());
    }
    let needs_key = scenarios.iter().any(|s| s.needs_key());
    if needs_key && cli.key.is_none() {
        return Err(format!(
            "scenario {} needs an API key: pass --key or set VINR_BENCH_KEY",
            cli.scenario.name()
        ));
    }
    let on_peer = scenarios.iter().any(|s| s.on_peer());
    if on_peer && cli.peer.is_none() {
        return Err(format!(
            "scenario {} needs the peer's URL: pass --peer http://HOST:PORT",
            cli.scenario.name()
        ));
    }
    if cli.plot.is_some() && cli.scenario == Scenario::Webhooks {
        return Err("--plot does not apply to the webhooks scenario".to_owned());
    }
    let cpu_clock = |pid: Option<u32>| pid.map(CpuClock::new).transpose();
    let server_cpu = cpu_clock(cli.server_pid).map_err(|e| format!("--server-pid: {e}"))?;
    let peer_cpu = cpu_clock(cli.peer_pid).map_err(|e| format!("--peer-pid: {e}"))?;

    let run_id = RunId::from_clock();
    let ours = scenarios.iter().any(|s| !s.on_peer());
    let target = Arc::new(Target::resolve(&cli.url, cli.key.as_deref()).await?);
    if ours {
        note_remote(&target);
        scenario::preflight(&target, &run_id, needs_key).await?;
    }
    let peer = match &cli.peer {
        Some(url) if on_peer => {
            let peer = Arc::new(Target::resolve(url, Some(&cli.peer_key)).await?);
            note_remote(&peer);
            scenario::preflight_peer(&peer, &run_id).await?;
            Some(peer)
        }
        _ => None,
    };

    let cfg = LoadConfig {
        connections: cli.connections,
        duration: cli.duration,
        warmup: cli.warmup,
        rate: cli.rate,
        server_cpu,
    };
    if cli.scenario == Scenario::Webhooks {
        return webhooks::run(target, &run_id, &cfg, cli.prepare).await;
    }
    let group = cli.scenario.is_group();
    let mut healthz_ok_per_sec = None;
    let mut reports = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let (target, cfg) = match &peer {
            Some(peer) if scenario.on_peer() => (
                peer,
                LoadConfig {
                    server_cpu: peer_cpu,
                    ..cfg.clone()
                },
            ),
            _ => (&target, cfg.clone()),
        };
        let mut report = run_scenario(scenario, target, &run_id, &cfg, cli.prepare).await?;
        if group {
            if scenario == Scenario::Healthz {
                healthz_ok_per_sec = Some(report.ok_per_sec());
            }
            report.ratio_to_healthz = healthz_ok_per_sec
                .filter(|h| *h > 0.0)
                .map(|h| report.ok_per_sec() / h);
        }
        emit(&report, cli.json);
        reports.push(report);
    }
    if group {
        human(
            &report::render_suite(cli.scenario.name(), &reports),
            cli.json,
        );
    }
    if let Some(path) = &cli.plot {
        std::fs::write(path, plot::render(&reports))
            .map_err(|e| format!("cannot write --plot {}: {e}", path.display()))?;
        eprintln!("vinr-bench: plot written to {}", path.display());
    }

    let failed: Vec<&Report> = reports.iter().filter(|r| r.has_problems()).collect();
    for r in &failed {
        eprintln!(
            "vinr-bench: WARNING: {}: {} failed requests measured, {} during warmup, {} during preparation; see the report",
            r.scenario, r.error_total, r.warmup_errors, r.setup_errors
        );
    }
    for r in reports.iter().filter(|r| r.late + r.dropped > 0) {
        eprintln!(
            "vinr-bench: WARNING: {}: target rate not sustained: {} requests late, {} never sent",
            r.scenario, r.late, r.dropped
        );
    }
    Ok(failed.is_empty())
}

fn note_remote(target: &Target) {
    if !target.addr.ip().is_loopback() {
        eprintln!(
            "vinr-bench: note: {} is not a loopback address; network latency will be part of the numbers",
            target.addr
        );
    }
}

async fn run_scenario(
    scenario: Scenario,
    target: &Arc<Target>,
    run_id: &RunId,
    cfg: &LoadConfig,
    prepare: usize,
) -> Result<Report, String> {
    let mut setup_errors = 0;
    let workload = match scenario {
        Scenario::Healthz => Workload::healthz(target.clone(), run_id)?,
        Scenario::Create => Workload::create(target.clone(), run_id, "c")?,
        Scenario::Mixed => Workload::mixed(target.clone(), run_id)?,
        Scenario::PeerCreate => Workload::peer_create(target.clone(), run_id, "s")?,
        Scenario::Get => {
            eprintln!("vinr-bench: get: creating {prepare} payments first");
            let prepared =
                prepare_payments(target.clone(), run_id, prepare, cfg.connections).await?;
            setup_errors = prepared.error_count();
            if setup_errors > 0 {
                eprintln!("vinr-bench: !! get: {setup_errors} of {prepare} creates failed during preparation:");
                for (kind, (n, example)) in &prepared.errors {
                    eprintln!("vinr-bench: !!   {kind}: {n}  e.g. {example}");
                }
            }
            if prepared.uris.is_empty() {
                return Err("get: no payment could be created, nothing to read".to_owned());
            }
            Workload::get(target.clone(), run_id, prepared.uris)?
        }
        Scenario::Suite | Scenario::Peer | Scenario::Webhooks => {
            return Err(format!("{} is not a load scenario", scenario.name()))
        }
    };
    eprintln!(
        "vinr-bench: running {} for {}{} on {} connections{}",
        scenario.name(),
        format_duration(cfg.duration),
        if cfg.warmup.is_zero() {
            String::new()
        } else {
            format!(" after {} warmup", format_duration(cfg.warmup))
        },
        cfg.connections,
        cfg.rate
            .map_or_else(String::new, |r| format!(" at {r} req/s")),
    );
    let result = load::run(Arc::new(workload), target.addr, run_id.seed, cfg).await;
    let mut report = Report::new(scenario.name(), &cfg.shape(), result.stats, result.elapsed);
    report.setup_errors = setup_errors;
    report.server_cpu = result.server_cpu;
    Ok(report)
}

/// Prints a report: JSON on stdout with `--json` (text to stderr), else text.
fn emit(report: &Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    }
    human(&report.render_text(), json);
}

/// Human-readable output: stdout normally, stderr when stdout carries JSON.
fn human(text: &str, json: bool) {
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.25ms"), Ok(Duration::from_micros(250)));
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in [
            "", "10", "s", "ms", "-1s", "abc", "1.2.3s", "10h", "nans", "infs",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse_duration("18446744073709551615m").is_err(), "overflow");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "vinr-bench",
            "--scenario",
            "suite",
            "--rate",
            "500",
            "--warmup",
            "2s",
            "--duration",
            "500ms",
            "--key",
            "k",
        ])
        .expect("valid arguments");
        assert_eq!(cli.scenario, Scenario::Suite);
        assert_eq!(cli.rate, Some(500.0));
        assert_eq!(cli.warmup, Duration::from_secs(2));
        assert_eq!(cli.duration, Duration::from_millis(500));
        assert_eq!(cli.connections, 64);
        assert_eq!(cli.url, "http://127.0.0.1:8080");
    }
}
