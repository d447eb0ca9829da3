//! A database outage under load (SPEC §2): while the database is away or refuses — PostgreSQL
//! restarted, an SQLite disk full — every request is answered 503 `service_unavailable` with
//! `Retry-After` (never 500), `/readyz` says not ready, and service resumes by itself, with
//! every acknowledged (201) payment kept and each refused request, retried with its
//! idempotency key, making exactly one payment.
//!
//! Each test makes its own database server or filesystem and never touches the shared one:
//! PostgreSQL — a private cluster (`initdb` + `pg_ctl`, run as the `postgres` user when the
//! test runs as root) on a free port, restarted during the load; SQLite — a small tmpfs (needs
//! `mount`, i.e. root) filled up and then freed. The PostgreSQL test runs with the PostgreSQL
//! suite (`VINR_TEST_DATABASE_URL` set), the SQLite one with the SQLite suite. Without the
//! tools either says why and passes, unless `VINR_REQUIRE_POSTGRES=1` makes a missing
//! PostgreSQL toolchain a failure.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::database::{postgres_url, query_integers, REQUIRE_POSTGRES_VAR};
use common::process::{config_without_rate_limits, Served};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// Concurrent clients creating payments, as in the measurement that found the 500s.
const CLIENTS: usize = 16;
/// Payments acknowledged before the outage starts.
const WARM_UP_CREATED: usize = 100;
/// Payments acknowledged after the database is back, for the service to count as resumed.
const RESUMED_CREATED: usize = 200;
/// How long service may take to resume once the database is back.
const RESUME_DEADLINE: Duration = Duration::from_secs(60);
/// `/readyz` is polled this often during the load.
const READINESS_POLL: Duration = Duration::from_millis(25);

/// Says on the process's standard error (not captured by libtest) what a test found or why it
/// is skipped.
fn say(message: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("outage");
    let _ = writeln!(std::io::stderr(), "{test}: {message}");
}

/// What one create request got back.
#[derive(Debug, Clone)]
enum Outcome {
    Created(String),
    /// 503 with `Retry-After`, `api_error`/`service_unavailable`.
    Unavailable,
    /// Anything else: the defect this suite is about.
    Wrong(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    body: Value,
    /// When the answer came, since the load started.
    answered: Duration,
    outcome: Outcome,
}

fn judge(reply: Result<Reply, reqwest::Error>) -> Outcome {
    match reply {
        Ok(reply) => judge_reply(&reply),
        Err(error) => Outcome::Wrong(format!("no HTTP answer: {error}")),
    }
}

fn judge_reply(reply: &Reply) -> Outcome {
    match reply.status {
        201 => Outcome::Created(id_of(&reply.json)),
        503 => {
            let error = &reply.json["error"];
            if error["type"] != "api_error" || error["code"] != "service_unavailable" {
                return Outcome::Wrong(format!("503 with body {}", reply.text));
            }
            match reply.header("retry-after").map(str::parse::<u64>) {
                Some(Ok(seconds)) if seconds >= 1 => Outcome::Unavailable,
                other => Outcome::Wrong(format!("503 with Retry-After {other:?}: {}", reply.text)),
            }
        }
        status => Outcome::Wrong(format!("HTTP {status}: {}", reply.text)),
    }
}

/// [`CLIENTS`] clients creating payments with idempotency keys as fast as they are answered,
/// and one polling `/readyz`, until stopped; every answer is kept.
struct Load {
    started: Instant,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    readiness: Arc<Mutex<Vec<(Duration, u16)>>>,
    stop: Arc<AtomicBool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Load {
    fn start(api: &Api, base: &str) -> Load {
        let started = Instant::now();
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let readiness = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for client in 0..CLIENTS {
            let (api, attempts, stop) = (api.clone(), attempts.clone(), stop.clone());
            tasks.spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let key = format!("outage-{client}-{n}");
                    let body = payment_body(1 + (client * 100_000 + n) as i64, json!({}));
                    let reply = api
                        .call(reqwest::Method::POST, "/v1/payments")
                        .json(body.clone())
                        .idempotency_key(&key)
                        .try_send()
                        .await;
                    let attempt = Attempt {
                        key,
                        body,
                        answered: started.elapsed(),
                        outcome: judge(reply),
                    };
                    attempts.lock().expect("attempts").push(attempt);
                }
            });
        }
        let (readyz, polled, stop_polling) =
            (format!("{base}/readyz"), readiness.clone(), stop.clone());
        tasks.spawn(async move {
            let http = reqwest::Client::new();
            while !stop_polling.load(Ordering::Relaxed) {
                let status = match http.get(&readyz).send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 0,
                };
                polled
                    .lock()
                    .expect("readiness")
                    .push((started.elapsed(), status));
                tokio::time::sleep(READINESS_POLL).await;
            }
        });
        Load {
            started,
            attempts,
            readiness,
            stop,
            tasks,
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Payments acknowledged after `since`.
    fn created_since(&self, since: Duration) -> usize {
        self.attempts
            .lock()
            .expect("attempts")
            .iter()
            .filter(|a| a.answered >= since && matches!(a.outcome, Outcome::Created(_)))
            .count()
    }

    /// Waits until `count` payments were acknowledged after `since`; panics after `deadline`.
    async fn wait_for_created(
        &self,
        since: Duration,
        count: usize,
        deadline: Duration,
        what: &str,
    ) {
        let give_up = Instant::now() + deadline;
        while self.created_since(since) < count {
            assert!(
                Instant::now() < give_up,
                "{what}: {} of {count} payments acknowledged within {deadline:?}",
                self.created_since(since)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether anything but a 201 was answered after `since`.
    fn refused_since(&self, since: Duration) -> bool {
        self.attempts
            .lock()
            .expect("attempts")
            .iter()
            .any(|a| a.answered >= since && !matches!(a.outcome, Outcome::Created(_)))
    }

    async fn stop(mut self) -> (Vec<Attempt>, Vec<(Duration, u16)>) {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = self.tasks.join_next().await {
            joined.expect("a load task");
        }
        let attempts = std::mem::take(&mut *self.attempts.lock().expect("attempts"));
        let readiness = std::mem::take(&mut *self.readiness.lock().expect("readiness"));
        (attempts, readiness)
    }
}

/// What the load saw, for the assertions and the report.
struct Summary {
    created: usize,
    refused: usize,
    /// From the first 503 to the last one.
    refusing: Option<(Duration, Duration)>,
}

/// Asserts every answer was a 201 or a proper 503, and at least one 503 (else the outage
/// was not seen and the test proves nothing).
fn summarize(attempts: &[Attempt], log: &str) -> Summary {
    let wrong: Vec<String> = attempts
        .iter()
        .filter_map(|a| match &a.outcome {
            Outcome::Wrong(what) => Some(format!("{} at {:?}: {what}", a.key, a.answered)),
            _ => None,
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} answers were neither 201 nor 503 with Retry-After, e.g. {:#?}; server log:\n{log}",
        wrong.len(),
        attempts.len(),
        &wrong[..wrong.len().min(5)]
    );
    let refused: Vec<Duration> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Unavailable))
        .map(|a| a.answered)
        .collect();
    assert!(
        !refused.is_empty(),
        "no request was refused: the outage did not happen"
    );
    Summary {
        created: attempts.len() - refused.len(),
        refused: refused.len(),
        refusing: refused
            .iter()
            .min()
            .zip(refused.iter().max())
            .map(|(first, last)| (*first, *last)),
    }
}

/// The 201s and 503s answered between `from` and `to`.
fn answered_between(attempts: &[Attempt], from: Duration, to: Duration) -> (usize, usize) {
    let within = attempts
        .iter()
        .filter(|a| a.answered >= from && a.answered <= to);
    within.fold((0, 0), |(created, refused), a| match a.outcome {
        Outcome::Created(_) => (created + 1, refused),
        _ => (created, refused + 1),
    })
}

/// Every acknowledged payment is there; each refused request, retried with its key, makes
/// one payment; and the database holds exactly one payment per key sent.
async fn assert_one_payment_per_key(api: &Api, attempts: &[Attempt], database_url: &str) {
    let mut by_key: BTreeMap<String, String> = BTreeMap::new();
    for attempt in attempts {
        if let Outcome::Created(id) = &attempt.outcome {
            let stored = api.payment(id).await;
            assert_eq!(stored["id"], id.as_str(), "acknowledged payment {id}");
            by_key.insert(attempt.key.clone(), id.clone());
        }
    }
    let refused: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Unavailable))
        .collect();
    for attempt in &refused {
        let reply = api
            .create_with_key(&attempt.key, attempt.body.clone())
            .await;
        let payment = reply.expect_status(201);
        by_key.insert(attempt.key.clone(), id_of(payment));
    }
    let ids: BTreeSet<&String> = by_key.values().collect();
    assert_eq!(
        ids.len(),
        by_key.len(),
        "two keys answered the same payment"
    );
    let stored = query_integers(
        database_url,
        "SELECT CAST(count(*) AS BIGINT) FROM payments",
    )
    .await
    .first()
    .copied()
    .unwrap_or_default();
    assert_eq!(
        stored,
        by_key.len() as i64,
        "payments stored vs idempotency keys sent ({} refused and retried)",
        refused.len()
    );
}

/// Polls `/readyz` until it answers 200; answers how long that took.
async fn ready_again(served: &Served, deadline: Duration) -> Duration {
    let base = &served.base;
    let started = Instant::now();
    let http = reqwest::Client::new();
    loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await {
            if response.status() == 200 {
                return started.elapsed();
            }
        }
        assert!(
            started.elapsed() < deadline,
            "/readyz not ready {deadline:?} after the database came back; server log:\n{}",
            served.log()
        );
        tokio::time::sleep(READINESS_POLL).await;
    }
}

/// `/readyz` said 503 at some point in `during`.
fn readiness_refused(readiness: &[(Duration, u16)], during: (Duration, Duration)) -> bool {
    readiness
        .iter()
        .any(|(at, status)| *status == 503 && *at >= during.0 && *at <= during.1)
}

// --- PostgreSQL: a private cluster, restarted under load -------------------------------------

/// A PostgreSQL cluster of this test's own, on a free port, stopped and removed when dropped.
struct PrivateCluster {
    bin: PathBuf,
    /// The data directory (also the socket directory and log's place), owned by `run_as`.
    data: TempDir,
    port: u16,
    /// `Some("postgres")` when running as root: PostgreSQL refuses to run as root.
    run_as: Option<&'static str>,
    /// Started, so to be stopped when dropped.
    started: bool,
}

impl PrivateCluster {
    /// `Err` says why no cluster can be made here (tools missing).
    fn create() -> Result<PrivateCluster, String> {
        let bin = postgres_bin_dir().ok_or(
            "no initdb and pg_ctl (PostgreSQL server binaries) in PATH or /usr/lib/postgresql/*/bin",
        )?;
        let root = command_output("id", &["-u"]).is_some_and(|uid| uid.trim() == "0");
        let run_as = if root {
            if command_output("id", &["-u", "postgres"]).is_none() {
                return Err(
                    "running as root, and there is no `postgres` user to run PostgreSQL as".into(),
                );
            }
            if command_output("runuser", &["--help"]).is_none() {
                return Err("running as root, and there is no `runuser`".into());
            }
            Some("postgres")
        } else {
            None
        };
        let data = tempfile::Builder::new()
            .prefix("vinr-outage-pg-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?;
        if let Some(user) = run_as {
            let chowned = Command::new("chown")
                .arg(user)
                .arg(data.path())
                .status()
                .map_err(|error| format!("chown: {error}"))?;
            if !chowned.success() {
                return Err(format!("chown {user} {} failed", data.path().display()));
            }
        }
        let port = free_port();
        let mut cluster = PrivateCluster {
            bin,
            data,
            port,
            run_as,
            started: false,
        };
        let pgdata = cluster.pgdata();
        cluster.run(
            "initdb",
            &[
                "-D",
                &pgdata,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 50\n",
            cluster.data.path().display()
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.data.path().join("pgdata/postgresql.conf"))
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .map_err(|error| format!("postgresql.conf: {error}"))?;
        cluster.started = true;
        cluster.pg_ctl(&["start"])?;
        Ok(cluster)
    }

    fn pgdata(&self) -> String {
        self.data.path().join("pgdata").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the cluster's tools (as `run_as`), failing with its output.
    fn run(&self, tool: &str, args: &[&str]) -> Result<(), String> {
        let program = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&program);
                command
            }
            None => Command::new(&program),
        };
        let output = command
            .args(args)
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("{}: {error}", program.display()))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{tool} {args:?}: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// `pg_ctl <action>`, waiting for it to finish (`-w`).
    fn pg_ctl(&self, action: &[&str]) -> Result<(), String> {
        let pgdata = self.pgdata();
        let log = self.data.path().join("postgres.log").display().to_string();
        let mut args = vec!["-D", &pgdata, "-l", &log, "-w", "-t", "60"];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args)
    }

    /// A restart as `systemctl restart` does it: fast shutdown (open sessions are ended), then
    /// a start. Answers when the cluster accepts connections again.
    fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "restart"])
            .unwrap_or_else(|error| panic!("the private cluster did not restart: {error}"));
    }

    /// Stops the cluster (fast shutdown) until [`PrivateCluster::start`].
    fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"])
            .unwrap_or_else(|error| panic!("the private cluster did not stop: {error}"));
    }

    fn start(&self) {
        self.pg_ctl(&["start"])
            .unwrap_or_else(|error| panic!("the private cluster did not start: {error}"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("postgres.log")).unwrap_or_default()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if !self.started {
            return;
        }
        if let Err(error) = self.pg_ctl(&["-m", "immediate", "stop"]) {
            say(&format!(
                "could not stop the private PostgreSQL cluster: {error}"
            ));
        }
    }
}

/// A directory holding both `initdb` and `pg_ctl`: on `PATH`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian and Ubuntu keep them there).
fn postgres_bin_dir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    on_path
        .into_iter()
        .filter(|dir| has_tools(dir))
        .map(|dir| {
            // `initdb` on PATH may be a link into the real directory, beside `postgres`.
            std::fs::canonicalize(dir.join("initdb"))
                .ok()
                .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                .filter(|real| has_tools(real))
                .unwrap_or(dir)
        })
        .chain(versions.into_iter().rev().map(|(_, dir)| dir))
        .find(|dir| has_tools(dir))
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A port nothing listens on now (the cluster binds it a moment later).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// The real `vinr serve` on `database_url` (rate limits off), with a keyed create load running
/// and warmed up. The directory must outlive the server.
async fn start_under_load(database_url: &str) -> (tempfile::TempDir, Served, Api, Load) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = config_without_rate_limits(dir.path());
    let served = Served::start(dir.path(), database_url, &config);
    let key = served
        .printed_key
        .clone()
        .expect("the first start prints a key");
    let api = Api::new(&served.base, &key);
    let load = Load::start(&api, &served.base);
    load.wait_for_created(Duration::ZERO, WARM_UP_CREATED, RESUME_DEADLINE, "warm-up")
        .await;
    (dir, served, api, load)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_503_never_500_and_keeps_every_acknowledged_payment()
{
    if postgres_url().is_none() {
        say("skipped: it runs with the PostgreSQL suite (set VINR_TEST_DATABASE_URL); it makes its own cluster");
        return;
    }
    let cluster = match PrivateCluster::create() {
        Ok(cluster) => cluster,
        Err(reason) if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v == "1") => {
            panic!(
                "{REQUIRE_POSTGRES_VAR}=1 but no private PostgreSQL cluster can be made: {reason}"
            )
        }
        Err(reason) => {
            say(&format!("skipped: {reason}"));
            return;
        }
    };
    let (_dir, served, api, load) = start_under_load(&cluster.url()).await;
    let restart_began = load.now();
    let cluster = Arc::new(cluster);
    let restarting = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .expect("the restart task");
    let restarted = load.now();
    load.wait_for_created(
        restarted,
        RESUMED_CREATED,
        RESUME_DEADLINE,
        "after the restart",
    )
    .await;
    let resumed = load
        .attempts
        .lock()
        .expect("attempts")
        .iter()
        .filter(|a| a.answered >= restarted && matches!(a.outcome, Outcome::Created(_)))
        .map(|a| a.answered)
        .min()
        .expect("a payment after the restart");
    let ready_after = ready_again(&served, RESUME_DEADLINE).await;
    let (attempts, readiness) = load.stop().await;

    let logs = format!("{}\nPostgreSQL log:\n{}", served.log(), cluster.log());
    let summary = summarize(&attempts, &logs);
    let (first_refused, last_refused) = summary.refusing.expect("refusals");
    assert!(
        readiness_refused(
            &readiness,
            (restart_began, last_refused + Duration::from_secs(1))
        ),
        "/readyz never said 503 during the outage: {readiness:?}"
    );
    let (created_restarting, refused_restarting) =
        answered_between(&attempts, restart_began, restarted);
    say(&format!(
        "{CLIENTS} clients: {} answers, {} × 201, {} × 503 (Retry-After), 0 others; \
         pg_ctl restart -m fast took {:.2} s, meanwhile {created_restarting} × 201 and \
         {refused_restarting} × 503; 503s from {:.2} s to {:.2} s after the restart began \
         ({:.2} s); first 201 {:.3} s after the cluster was back; /readyz 200 again {:.2} s \
         after that",
        attempts.len(),
        summary.created,
        summary.refused,
        (restarted - restart_began).as_secs_f64(),
        first_refused.saturating_sub(restart_began).as_secs_f64(),
        last_refused.saturating_sub(restart_began).as_secs_f64(),
        (last_refused - first_refused).as_secs_f64(),
        resumed.saturating_sub(restarted).as_secs_f64(),
        ready_since(ready_after, restarted, &readiness).as_secs_f64(),
    ));
    assert_one_payment_per_key(&api, &attempts, &cluster.url()).await;

    // A database that stays away: reads, writes and the checkout page all answer 503 with
    // Retry-After until it is back, and then the same requests succeed.
    let payment = api.new_payment().await;
    let id = id_of(&payment);
    let checkout_url = payment["checkoutUrl"].as_str().expect("a checkoutUrl");
    cluster.stop();
    let body = payment_body(1000, json!({}));
    let created = api.create_with_key("outage-stopped", body.clone()).await;
    assert!(
        matches!(judge_reply(&created), Outcome::Unavailable),
        "a create while the database is stopped: {} {}",
        created.status,
        created.text
    );
    let read = api.get(&format!("/v1/payments/{id}")).await;
    assert!(
        matches!(judge_reply(&read), Outcome::Unavailable),
        "a read while the database is stopped: {} {}",
        read.status,
        read.text
    );
    let page = reqwest::get(checkout_url).await.expect("the checkout page");
    assert_eq!(
        page.status(),
        503,
        "the checkout page while the database is stopped"
    );
    assert!(
        page.headers().contains_key("retry-after"),
        "{:?}",
        page.headers()
    );
    let html = page.text().await.expect("a page");
    assert!(html.contains("unavailable for a moment"), "{html}");
    let readyz = reqwest::get(format!("{}/readyz", served.base))
        .await
        .expect("/readyz");
    assert_eq!(
        readyz.status(),
        503,
        "/readyz while the database is stopped"
    );
    cluster.start();
    ready_again(&served, RESUME_DEADLINE).await;
    assert_eq!(
        api.payment(&id).await,
        payment,
        "read again once the database is back"
    );
    api.create_with_key("outage-stopped", body)
        .await
        .expect_status(201);
    let page = reqwest::get(checkout_url).await.expect("the checkout page");
    assert_eq!(
        page.status(),
        200,
        "the checkout page once the database is back"
    );
    drop(served);
    drop(cluster);
}

/// How long after `since` `/readyz` said 200 for good, from the polls (else the final wait).
fn ready_since(final_wait: Duration, since: Duration, readiness: &[(Duration, u16)]) -> Duration {
    let last_refusal = readiness
        .iter()
        .filter(|(_, status)| *status != 200)
        .map(|(at, _)| *at)
        .max();
    readiness
        .iter()
        .filter(|(at, status)| *status == 200 && Some(*at) > last_refusal && *at >= since)
        .map(|(at, _)| at.saturating_sub(since))
        .min()
        .unwrap_or(final_wait)
}

// --- SQLite: a full disk ---------------------------------------------------------------------

/// A tmpfs of `size` mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: TempDir,
}

impl SmallDisk {
    /// `Err` says why none can be mounted here.
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::Builder::new()
            .prefix("vinr-outage-disk-")
            .tempdir()
            .map_err(|error| format!("a temporary directory: {error}"))?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|error| format!("mount: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("the filler file");
        let chunk = vec![0xa5u8; 16 * 1024];
        while file
            .write_all(&chunk)
            .and_then(|()| file.sync_data())
            .is_ok()
        {}
        // The last partial chunk: fill byte by byte what is left.
        while file.write_all(&[0]).and_then(|()| file.sync_data()).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
        if !unmounted.is_ok_and(|status| status.success()) {
            say(&format!("could not unmount {}", self.dir.path().display()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_answers_503_never_500_and_resumes_when_space_is_freed() {
    if postgres_url().is_some() {
        say("skipped: it runs with the SQLite suite");
        return;
    }
    // Room for the WAL of a steady load (up to ~8 MiB between the writer's checkpoints) once
    // the filler is gone: on a smaller disk the load itself would keep it full.
    let disk = match SmallDisk::mount("64m") {
        Ok(disk) => disk,
        Err(reason) => {
            skip_unless_required(&reason);
            return;
        }
    };
    let database_url = format!("sqlite://{}", disk.path().join("vinr.db").display());
    let (_dir, served, api, load) = start_under_load(&database_url).await;
    let filled_at = load.now();
    let filler = disk.fill();
    let give_up = Instant::now() + RESUME_DEADLINE;
    while !load.refused_since(filled_at) {
        assert!(
            Instant::now() < give_up,
            "no write was refused on a full disk; server log:\n{}",
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Refused for a while: the load goes on against the full disk.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let freed_at = load.now();
    std::fs::remove_file(&filler).expect("the filler removed");
    load.wait_for_created(
        freed_at,
        RESUMED_CREATED,
        RESUME_DEADLINE,
        "after space was freed",
    )
    .await;
    let ready_after = ready_again(&served, RESUME_DEADLINE).await;
    let (attempts, readiness) = load.stop().await;

    let summary = summarize(&attempts, &served.log());
    let (first_refused, last_refused) = summary.refusing.expect("refusals");
    assert!(
        readiness_refused(
            &readiness,
            (filled_at, last_refused + Duration::from_secs(1))
        ),
        "/readyz never said 503 while the disk was full: {readiness:?}"
    );
    let (created_full, refused_full) = answered_between(&attempts, filled_at, freed_at);
    say(&format!(
        "{CLIENTS} clients: {} answers, {} × 201, {} × 503 (Retry-After), 0 others; space freed \
         {:.2} s after the filling began, meanwhile {created_full} × 201 and {refused_full} × 503; 503s from \
         {:.2} s after the disk was filled until {:.3} s after space was freed; /readyz 200 \
         again {:.2} s after space was freed",
        attempts.len(),
        summary.created,
        summary.refused,
        (freed_at - filled_at).as_secs_f64(),
        first_refused.saturating_sub(filled_at).as_secs_f64(),
        last_refused.saturating_sub(freed_at).as_secs_f64(),
        ready_since(ready_after, freed_at, &readiness).as_secs_f64(),
    ));
    assert_one_payment_per_key(&api, &attempts, &database_url).await;
    drop(served);
    drop(disk);
}
