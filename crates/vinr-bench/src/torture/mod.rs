//! `vinr-bench torture`: a crash and race suite against a real `vinr` binary and database.
//!
//! Each round works in a fresh account (made with `vinr accounts create` while the killed
//! server is down): many clients run the mixed workload of [`workload`], one server is killed
//! with SIGKILL at a random moment, it is restarted on the same database, every request it
//! died under is sent again with its idempotency key, and [`check`] compares what the
//! account holds with what the clients were told. After the last round every node is stopped
//! with SIGTERM, one is started again and every round's account is checked once more, and on
//! SQLite `PRAGMA integrity_check` must say `ok`. With `--nodes 2` (PostgreSQL) two servers
//! share the database and each round kills one of them while the other keeps serving.
//!
//! Only loopback traffic, every loop bounded; the exit status is 2 on any violation.

mod check;
mod fetch;
mod model;
mod nodes;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::http::Target;
use crate::report::format_duration;
use crate::torture::model::{Counts, Model, Violation};
use crate::torture::nodes::{Launcher, Node};
use crate::torture::workload::Round;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `vinr` binary to run.
    #[arg(long, default_value = "vinr")]
    pub vinr: PathBuf,

    /// The database: `sqlite://PATH` or `postgres://…` (each round uses a new account in it);
    /// default a new SQLite file in a temporary directory.
    #[arg(long)]
    pub database_url: Option<String>,

    /// Rounds of load, kill, restart, retry and check.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,

    /// Servers on the database (2 needs PostgreSQL): each round kills one of them.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub nodes: u8,

    /// Concurrent clients.
    #[arg(long, short = 'c', default_value_t = 16)]
    pub connections: usize,

    /// Length of a round's load; the kill comes at a random moment within it.
    #[arg(long, default_value = "2s", value_parser = crate::parse_duration)]
    pub load: Duration,

    /// Seed of the random choices (default: from the clock), printed for a rerun.
    #[arg(long)]
    pub seed: Option<u64>,

    /// One client runs on-demand settlements (`POST /v1/test_helpers/settlements/run`)
    /// during the load, so payouts are part of the ledger check (which then needs every payout
    /// booked as a `payout` balance transaction, SPEC §7).
    #[arg(long)]
    pub settlements: bool,

    /// Keep the temporary directory (configuration, server logs, default database).
    #[arg(long)]
    pub keep: bool,
}

/// splitmix64: plenty for picking amounts and moments, without a `rand` dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` (`n` ≥ 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A fraction in [0, 1).
    pub fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One round's account and what its clients were told, for the final check.
struct RoundRecord {
    key: String,
    model: Model,
}

/// Everything the summary shows.
#[derive(Default)]
struct Totals {
    rounds: u32,
    counts: Counts,
    restart: Vec<Duration>,
    kill_at: Vec<Duration>,
    /// Two nodes: acknowledged by the survivor while the other was down or restarting.
    survivor_acked: u64,
    violations: Vec<(String, Violation)>,
}

/// Runs the suite; `Ok(true)` when no invariant was violated.
pub async fn run(args: Args) -> Result<bool, String> {
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if args.load < Duration::from_millis(100) {
        return Err("--load must be at least 100ms".into());
    }
    let nodes_wanted = usize::from(args.nodes);
    let dir = tempfile::Builder::new()
        .prefix("vinr-torture-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("torture.db").display()));
    let sqlite_path = database_url.strip_prefix("sqlite://").map(PathBuf::from);
    if nodes_wanted > 1 && sqlite_path.is_some() {
        return Err("--nodes 2 needs a postgres:// database (SQLite serves one node)".into());
    }
    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    });
    let mut rng = Rng::new(seed);
    let launcher = Launcher::new(&args.vinr, &database_url, dir.path())?;
    let run_tag = format!("t{:x}", seed & 0xFFFF_FFFF);
    eprintln!(
        "vinr-bench torture: {} rounds of {} on {} node(s), {} clients, database {}, seed {seed}",
        args.rounds,
        format_duration(args.load),
        nodes_wanted,
        args.connections,
        redact(&database_url),
    );
    let started = Instant::now();

    launcher.migrate().await?;
    let mut key = launcher
        .create_account(&format!("torture {run_tag} round 1"))
        .await?;
    let mut nodes: Vec<Option<Node>> = Vec::new();
    for n in 0..nodes_wanted {
        let (node, _) = launcher.start(&format!("node{n}")).await?;
        nodes.push(Some(node));
    }

    let mut totals = Totals::default();
    let mut records = Vec::new();
    for round in 1..=args.rounds {
        let targets = targets(&nodes, &key).await?;
        let round_state = Arc::new(Round {
            alive: targets.iter().map(|_| AtomicBool::new(true)).collect(),
            targets: targets.clone(),
            stop: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            acked_after_kill: AtomicU64::new(0),
            key_prefix: format!("{run_tag}r{round}"),
            settle: args.settlements,
        });
        let mut clients = JoinSet::new();
        for number in 0..args.connections {
            clients.spawn(workload::client(round_state.clone(), number, rng.next()));
        }
        let round_start = Instant::now();
        // One node: the kill ends the load. Two: the survivor serves the rest of it.
        let kill_at = if nodes_wanted == 1 {
            args.load.mul_f64(0.25 + 0.75 * rng.fraction())
        } else {
            args.load.mul_f64(0.1 + 0.6 * rng.fraction())
        };
        tokio::time::sleep_until(round_start + kill_at).await;
        let victim = rng.below(nodes_wanted as u64) as usize;
        round_state.alive[victim].store(false, Ordering::Relaxed);
        round_state.killed.store(true, Ordering::Relaxed);
        if let Some(node) = nodes[victim].take() {
            node.kill().await?;
        }
        if nodes_wanted == 1 {
            // Only after the kill, so that requests are in flight when it comes (a client
            // refused a connection meanwhile pauses, see `workload::client`).
            round_state.stop.store(true, Ordering::Relaxed);
        }
        let next_name = format!("torture {run_tag} round {}", round + 1);
        let mut next_key = None;
        let (node, restart, (mut model, in_flight)) = if nodes_wanted == 1 {
            let log = join_clients(&mut clients).await?;
            // While the server is down: the next round's account (on SQLite, the first process
            // to open the database after the crash), then the restart.
            if round < args.rounds {
                next_key = Some(launcher.create_account(&next_name).await?);
            }
            let (node, restart) = launcher.start(&format!("node{victim}")).await?;
            (node, restart, log)
        } else {
            // The victim restarts while the survivor serves the rest of the load.
            let name = format!("node{victim}");
            let (restarted, ()) = tokio::join!(
                launcher.start(&name),
                tokio::time::sleep_until(round_start + args.load)
            );
            round_state.stop.store(true, Ordering::Relaxed);
            let log = join_clients(&mut clients).await?;
            let (node, restart) = restarted?;
            (node, restart, log)
        };
        if next_key.is_none() && round < args.rounds {
            next_key = Some(launcher.create_account(&next_name).await?);
        }
        nodes[victim] = Some(node);
        let targets = self::targets(&nodes, &key).await?;
        workload::retry_all(&targets, in_flight, &mut model, args.connections).await;
        let stored = fetch::fetch(&targets[0]).await?;
        let mut violations = std::mem::take(&mut model.violations);
        violations.extend(check::check(&model, &stored));
        let survivor_acked = round_state.acked_after_kill.load(Ordering::Relaxed);
        if nodes_wanted > 1 && survivor_acked == 0 {
            violations.push(Violation {
                kind: "survivor_idle",
                detail: format!(
                    "the surviving node acknowledged nothing in the {:.2} s after node {victim} was killed",
                    (args.load.saturating_sub(kill_at)).as_secs_f64()
                ),
            });
        }
        if model.counts.acked == 0 {
            // A round that proved nothing must not pass.
            violations.push(Violation {
                kind: "no_acknowledged_writes",
                detail: format!(
                    "no write was acknowledged in {:.2} s of load",
                    kill_at.as_secs_f64()
                ),
            });
        }

        eprintln!(
            "round {round}/{}: {} sent, {} acknowledged, {} in flight at the kill ({:.2} s, node {victim}) retried, restart {} ms, {} payments, {} refunds, {} violations",
            args.rounds,
            model.counts.sent,
            model.counts.acked,
            model.counts.in_flight,
            kill_at.as_secs_f64(),
            restart.as_millis(),
            stored.payments.len(),
            stored.refunds.len(),
            violations.len(),
        );
        for v in violations.iter().take(5) {
            eprintln!("  !! {v}");
        }
        totals.rounds = round;
        totals.counts.add(&model.counts);
        totals.restart.push(restart);
        totals.survivor_acked += survivor_acked;
        totals.kill_at.push(kill_at);
        totals.violations.extend(
            violations
                .into_iter()
                .map(|v| (format!("round {round}"), v)),
        );
        let next_key = next_key.unwrap_or_else(|| key.clone());
        records.push(RoundRecord {
            key: std::mem::replace(&mut key, next_key),
            model,
        });
    }

    // The final stop, a clean start, and every round checked again.
    let final_check = final_check(&launcher, &mut nodes, &records, &sqlite_path).await?;
    totals.violations.extend(final_check);
    let elapsed = started.elapsed();
    print!(
        "{}",
        summary(&totals, nodes_wanted, &database_url, elapsed, seed)
    );

    if args.keep || !totals.violations.is_empty() {
        let kept = dir.keep();
        eprintln!(
            "vinr-bench torture: configuration and server logs kept in {}",
            kept.display()
        );
    }
    Ok(totals.violations.is_empty())
}

/// Waits for every client of the round: what they were told, and what they never heard back.
async fn join_clients(
    clients: &mut JoinSet<workload::ClientLog>,
) -> Result<(Model, Vec<model::Op>), String> {
    let mut model = Model::default();
    let mut in_flight = Vec::new();
    while let Some(joined) = clients.join_next().await {
        let log = joined.map_err(|e| format!("a client failed: {e}"))?;
        model.merge(log.model);
        in_flight.extend(log.in_flight);
    }
    Ok((model, in_flight))
}

async fn targets(nodes: &[Option<Node>], key: &str) -> Result<Vec<Arc<Target>>, String> {
    let mut targets = Vec::new();
    for node in nodes.iter().flatten() {
        let url = format!("http://{}", node.addr);
        targets.push(Arc::new(Target::resolve(&url, Some(key)).await?));
    }
    Ok(targets)
}

/// Stops every node with SIGTERM (a clean exit is expected), starts one again, checks every
/// round's account, stops it, and runs `PRAGMA integrity_check` on SQLite.
async fn final_check(
    launcher: &Launcher,
    nodes: &mut [Option<Node>],
    records: &[RoundRecord],
    sqlite_path: &Option<PathBuf>,
) -> Result<Vec<(String, Violation)>, String> {
    let mut found = Vec::new();
    let note_exit = |status: std::process::ExitStatus, found: &mut Vec<(String, Violation)>| {
        if !status.success() {
            found.push((
                "final".to_owned(),
                Violation {
                    kind: "unclean_shutdown",
                    detail: format!("vinr serve exited with {status} after SIGTERM"),
                },
            ));
        }
    };
    for node in nodes.iter_mut().filter_map(Option::take) {
        note_exit(node.terminate().await?, &mut found);
    }
    let (node, _) = launcher.start("final").await?;
    for (n, record) in records.iter().enumerate() {
        let target = Target::resolve(&format!("http://{}", node.addr), Some(&record.key)).await?;
        let stored = fetch::fetch(&target).await?;
        found.extend(
            check::check(&record.model, &stored)
                .into_iter()
                .map(|v| (format!("final check of round {}", n + 1), v)),
        );
    }
    note_exit(node.terminate().await?, &mut found);
    if let Some(path) = sqlite_path {
        if let Some(problem) = integrity_problem(path)? {
            found.push((
                "final".to_owned(),
                Violation {
                    kind: "integrity_check",
                    detail: problem,
                },
            ));
        }
    }
    Ok(found)
}

/// `PRAGMA integrity_check` on the stopped server's SQLite file: `None` when it says `ok`.
fn integrity_problem(path: &Path) -> Result<Option<String>, String> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut statement = conn
        .prepare("PRAGMA integrity_check")
        .map_err(|e| format!("integrity_check: {e}"))?;
    let rows: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| format!("integrity_check: {e}"))?;
    Ok((rows != ["ok"]).then(|| rows.join("; ")))
}

/// A database URL without its password, for output.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Min, median and max, in whole milliseconds.
fn spread_ms(values: &[Duration]) -> String {
    let mut sorted: Vec<u128> = values.iter().map(Duration::as_millis).collect();
    sorted.sort_unstable();
    match (sorted.first(), sorted.get(sorted.len() / 2), sorted.last()) {
        (Some(min), Some(median), Some(max)) => {
            format!("min {min}  median {median}  max {max}")
        }
        _ => "-".to_owned(),
    }
}

/// Violation kinds that mean an acknowledged write is gone, or a key had two effects.
const LOST_KINDS: [&str; 1] = ["lost_write"];
const DUPLICATE_KINDS: [&str; 2] = ["duplicate_effect", "duplicate_event"];

fn summary(
    totals: &Totals,
    nodes: usize,
    database_url: &str,
    elapsed: Duration,
    seed: u64,
) -> String {
    let c = &totals.counts;
    let count = |kinds: &[&str]| {
        totals
            .violations
            .iter()
            .filter(|(_, v)| kinds.contains(&v.kind))
            .count()
    };
    let backend = if database_url.starts_with("sqlite://") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let mut rows: Vec<(String, String)> = vec![
        (
            "rounds".into(),
            format!(
                "{} ({backend}, {nodes} node(s), seed {seed})",
                totals.rounds
            ),
        ),
        ("requests sent".into(), c.sent.to_string()),
        ("acknowledged".into(), c.acked.to_string()),
        (
            "refused as expected".into(),
            format!(
                "{} (racing refunds beyond what was left)",
                c.refused_expected
            ),
        ),
        ("never sent (node down)".into(), c.not_sent.to_string()),
        (
            "in flight at kill".into(),
            format!(
                "{} (retried: {} acknowledged, {} of them replays of a write committed before the kill; {} refused, {} unresolved)",
                c.in_flight, c.retried_acked, c.retried_replayed, c.retried_refused, c.unresolved
            ),
        ),
        ("lost".into(), count(&LOST_KINDS).to_string()),
        ("duplicates".into(), count(&DUPLICATE_KINDS).to_string()),
        ("kill at (ms into load)".into(), spread_ms(&totals.kill_at)),
        ("restart (ms to ready)".into(), spread_ms(&totals.restart)),
        ("duration".into(), format!("{:.1} s", elapsed.as_secs_f64())),
        ("violations".into(), totals.violations.len().to_string()),
    ];
    if nodes > 1 {
        rows.insert(
            6,
            (
                "acknowledged by the survivor".into(),
                format!(
                    "{} (from the kill to the end of the load; the restarted node rejoins next round)",
                    totals.survivor_acked
                ),
            ),
        );
    }
    let mut by_kind: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for (round, violation) in &totals.violations {
        let entry = by_kind
            .entry(violation.kind)
            .or_insert_with(|| (0, format!("{round}: {}", violation.detail)));
        entry.0 += 1;
    }
    for (kind, (n, example)) in by_kind {
        rows.push((format!("  {kind}"), format!("{n}  e.g. {example}")));
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::from("\nvinr-bench torture\n");
    for (k, v) in rows {
        out.push_str(&format!("  {k:<width$}  {v}\n"));
    }
    if !totals.violations.is_empty() {
        out.push_str("\n!! VIOLATIONS: the server broke a promise; see above\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redact("postgres://vinr:secret@127.0.0.1:5432/db"),
            "postgres://vinr:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
        assert_eq!(redact("sqlite:///tmp/a.db"), "sqlite:///tmp/a.db");
    }

    #[test]
    fn the_summary_counts_lost_writes_and_duplicates() {
        let mut totals = Totals {
            rounds: 2,
            ..Totals::default()
        };
        totals.restart = vec![
            Duration::from_millis(30),
            Duration::from_millis(10),
            Duration::from_millis(20),
        ];
        totals.violations.push((
            "round 1".into(),
            Violation {
                kind: "lost_write",
                detail: "acknowledged payment pay_1 (key k) is missing".into(),
            },
        ));
        let text = summary(&totals, 1, "sqlite:///x", Duration::from_secs(3), 7);
        assert!(text.contains("min 10  median 20  max 30"), "{text}");
        assert!(text.contains("lost_write"), "{text}");
        assert!(text.contains("!! VIOLATIONS"), "{text}");
        let lost = text
            .lines()
            .find(|l| l.trim_start().starts_with("lost "))
            .expect("lost row");
        assert!(lost.ends_with(" 1"), "{lost}");
    }
}
