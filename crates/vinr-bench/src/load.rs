//! The timed load loops: closed loop and fixed arrival rate.
//!
//! Each virtual user owns one connection and runs on the multi-threaded
//! runtime. Results go into a small number of mutex-guarded [`Stats`] shards
//! (not one per user) so memory stays bounded with thousands of connections;
//! the lock is held only to bump a counter and record a histogram value (and a
//! completion in the shard's preallocated per-100 ms timeline, for `--plot`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::cpu::CpuClock;
use crate::http::{Conn, ErrorKind, Failure};
use crate::report::{micros, Mode, RunShape, Stats};
use crate::scenario::{VuState, Workload};

/// Longest a single request may take before it counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests still running at the end of the window get this long to finish;
/// whatever is left after that is cut off (as a timeout), keeping the tool
/// bounded at warmup + duration + grace.
const GRACE: Duration = Duration::from_secs(5);
/// Closed loop only: pause after a transport failure, so a dead server shows
/// up as a count of errors rather than a CPU-burning reconnect spin.
const RETRY_BACKOFF: Duration = Duration::from_millis(10);
/// Fixed rate: a request sent later than this after its intended time counts
/// as late. Tokio timers have ~1 ms granularity, so smaller values would
/// flag normal timer jitter.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(10);

#[derive(Clone, Debug)]
pub struct LoadConfig {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Total requests per second across all connections; `None` = closed loop.
    pub rate: Option<f64>,
    /// The server process whose CPU time is read at both ends of the measured window.
    pub server_cpu: Option<CpuClock>,
}

impl LoadConfig {
    pub fn shape(&self) -> RunShape {
        RunShape {
            mode: self.rate.map_or(Mode::Closed, Mode::Rate),
            connections: self.connections,
            duration: self.duration,
            warmup: self.warmup,
        }
    }
}

/// Phase boundaries of one run.
#[derive(Clone, Copy)]
struct Times {
    start: Instant,
    /// Requests (intended to be) sent from here on are measured.
    measure_start: Instant,
    /// No new requests from here on.
    end: Instant,
    /// In-flight requests are abandoned here.
    hard_stop: Instant,
}

impl Times {
    fn deadline(&self, sent: Instant) -> Instant {
        (sent + REQUEST_TIMEOUT).min(self.hard_stop)
    }
}

/// Merged results of one run.
pub struct LoadResult {
    pub stats: Stats,
    /// Measured window: from the end of warmup to the end of the window, or
    /// to the last completion if requests overran it.
    pub elapsed: Duration,
    /// Server CPU time over the measured window, with `server_cpu` set and readable.
    pub server_cpu: Option<Duration>,
}

type Shards = Arc<[Mutex<Stats>]>;

fn record(shards: &Shards, vu: usize, f: impl FnOnce(&mut Stats)) {
    let shard = &shards[vu % shards.len()];
    // A poisoned shard only means another user panicked mid-record; the
    // counters are still meaningful, and the panic itself is re-raised.
    let mut stats = shard.lock().unwrap_or_else(PoisonError::into_inner);
    f(&mut stats);
}

/// Runs `workload` with the given settings and returns when every virtual
/// user has finished (at most warmup + duration + grace).
pub async fn run(
    workload: Arc<Workload>,
    addr: std::net::SocketAddr,
    seed: u64,
    cfg: &LoadConfig,
) -> LoadResult {
    let conns = preconnect(addr, cfg.connections).await;

    let start = Instant::now();
    let measure_start = start + cfg.warmup;
    let end = measure_start + cfg.duration;
    let times = Times {
        start,
        measure_start,
        end,
        hard_stop: end + GRACE,
    };
    // No latency can exceed the whole run, so that bounds the histograms.
    let highest_us = micros(times.hard_stop - times.start) + 1_000;
    // Twice the worker threads keeps lock collisions rare while bounding
    // memory (each shard holds up to one histogram per op kind).
    let shard_count = cfg
        .connections
        .min(2 * std::thread::available_parallelism().map_or(4, |n| n.get()))
        .max(1);
    let new_stats =
        || Stats::new(highest_us).with_timeline(measure_start, times.hard_stop - measure_start);
    let shards: Shards = (0..shard_count).map(|_| Mutex::new(new_stats())).collect();
    // The server's CPU clock at the start of the measured window, read on time by a task of
    // its own; the end is read once every user has finished, like `elapsed` below.
    let cpu_at_start = cfg.server_cpu.map(|clock| {
        tokio::spawn(async move {
            sleep_until(measure_start).await;
            clock.read()
        })
    });

    let mut users = JoinSet::new();
    for (vu, conn) in conns.into_iter().enumerate() {
        let workload = workload.clone();
        let shards = shards.clone();
        let st = VuState::new(vu, seed);
        match cfg.rate {
            None => users.spawn(closed_user(workload, conn, st, shards, vu, times)),
            Some(rate) => {
                let slots = Slots {
                    vu,
                    users: cfg.connections,
                    rate,
                };
                users.spawn(rate_user(workload, conn, st, shards, slots, times))
            }
        };
    }
    while let Some(joined) = users.join_next().await {
        if let Err(e) = joined {
            if e.is_panic() {
                // A bug in the bench; surface it instead of reporting
                // numbers that silently miss a user.
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }

    let server_cpu = match (cfg.server_cpu, cpu_at_start) {
        (Some(clock), Some(at_start)) => {
            let window = async {
                let at_start = at_start.await.map_err(|e| e.to_string())??;
                Ok::<_, String>(clock.read()?.saturating_sub(at_start))
            };
            window
                .await
                .map_err(|e| eprintln!("vinr-bench: WARNING: no server CPU figure: {e}"))
                .ok()
        }
        _ => None,
    };

    let mut stats = new_stats();
    for shard in shards.iter() {
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        stats.merge(std::mem::replace(&mut *shard, Stats::new(2)));
    }
    let finished = stats.last_done.map_or(times.end, |t| t.max(times.end));
    LoadResult {
        elapsed: finished - times.measure_start,
        stats,
        server_cpu,
    }
}

/// Opens all connections before the clock starts, so connection setup is not
/// part of the first measured requests. A failure here is not counted: the
/// user simply reconnects on its first request, where a failure is counted.
async fn preconnect(addr: std::net::SocketAddr, n: usize) -> Vec<Conn> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        set.spawn(async move {
            let mut conn = Conn::new(addr);
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn.connect()).await;
            conn
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        // A panic in `connect` would be a bug; fall back to a lazy connection.
        conns.push(joined.unwrap_or_else(|_| Conn::new(addr)));
    }
    conns
}

/// Sends one op and records it. Returns whether it failed at the transport
/// level (not an HTTP error status).
async fn one_request(
    workload: &Workload,
    conn: &mut Conn,
    st: &mut VuState,
    shards: &Shards,
    vu: usize,
    times: &Times,
    // When the request was due: the send time in closed loop, the scheduled
    // time in fixed-rate mode (so waiting in our backlog counts as latency).
    due: Instant,
) -> bool {
    let measured = due >= times.measure_start;
    let (kind, result) = match workload.next_op(st) {
        Ok(op) => {
            let sent = Instant::now();
            let result = conn.send(op.req, op.keep_body, times.deadline(sent)).await;
            (op.kind, workload.on_result(st, result))
        }
        Err((kind, f)) => (kind, Err(f)),
    };
    let done = Instant::now();
    let transport_failure = matches!(
        &result,
        Err(Failure {
            kind: ErrorKind::Connect | ErrorKind::Io | ErrorKind::Timeout,
            ..
        })
    );
    record(shards, vu, |s| {
        if measured {
            s.record(kind, done - due, done, result);
        } else if result.is_err() {
            s.warmup_errors += 1;
        }
    });
    transport_failure
}

async fn closed_user(
    workload: Arc<Workload>,
    mut conn: Conn,
    mut st: VuState,
    shards: Shards,
    vu: usize,
    times: Times,
) {
    loop {
        let now = Instant::now();
        if now >= times.end {
            break;
        }
        let failed = one_request(&workload, &mut conn, &mut st, &shards, vu, &times, now).await;
        if failed {
            sleep_until((Instant::now() + RETRY_BACKOFF).min(times.end)).await;
        }
    }
}

/// The fixed-rate schedule of one user. Globally, request k is due at
/// `start + k / rate` and belongs to user `k % users`, so users interleave
/// evenly and the schedule never drifts (times are computed, not summed).
#[derive(Clone, Copy)]
struct Slots {
    vu: usize,
    users: usize,
    rate: f64,
}

impl Slots {
    /// Offset from the start of the run of this user's `j`-th request.
    fn offset(&self, j: u64) -> Duration {
        let k = self.vu as f64 + j as f64 * self.users as f64;
        Duration::from_secs_f64(k / self.rate)
    }
}

async fn rate_user(
    workload: Arc<Workload>,
    mut conn: Conn,
    mut st: VuState,
    shards: Shards,
    slots: Slots,
    times: Times,
) {
    let vu = slots.vu;
    let mut j: u64 = 0;
    loop {
        let due = times.start + slots.offset(j);
        if due >= times.end {
            break;
        }
        let now = Instant::now();
        if now >= times.end {
            // Behind schedule when the window closed: the rest of this
            // user's slots were never sent. Count those in the measured
            // window so overload is visible, not hidden.
            let mut dropped = 0;
            let mut k = j;
            loop {
                let due = times.start + slots.offset(k);
                if due >= times.end {
                    break;
                }
                if due >= times.measure_start {
                    dropped += 1;
                }
                k += 1;
            }
            record(&shards, vu, |s| s.dropped += dropped);
            break;
        }
        if due > now {
            sleep_until(due).await;
        } else if due >= times.measure_start && now - due > LATE_THRESHOLD {
            record(&shards, vu, |s| s.late += 1);
        }
        // Latency counts from `due`, not from the actual send: if the server
        // stalls, the requests that *should* have gone out meanwhile see the
        // stall too (coordinated omission correction).
        one_request(&workload, &mut conn, &mut st, &shards, vu, &times, due).await;
        j += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_interleave_users_evenly() {
        let a = Slots {
            vu: 0,
            users: 4,
            rate: 100.0,
        };
        let b = Slots { vu: 1, ..a };
        assert_eq!(a.offset(0), Duration::ZERO);
        assert_eq!(b.offset(0), Duration::from_millis(10));
        assert_eq!(a.offset(1), Duration::from_millis(40));
        assert_eq!(b.offset(25), Duration::from_millis(1010));
    }
}
