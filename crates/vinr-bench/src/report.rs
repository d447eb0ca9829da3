//! Result collection and presentation: raw counters and histograms while the
//! load runs, then a [`Report`] rendered as a text block or a JSON object.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::http::{ErrorKind, Failure};
use crate::scenario::OpKind;

/// Three significant figures: 0.1% value resolution on top of the 1 µs unit.
const SIGFIG: u8 = 3;
/// Width of one throughput-over-time bucket (`--plot`).
pub const TIMELINE_BUCKET: Duration = Duration::from_millis(100);
/// At most an hour of buckets; completions later than that are left out of the timeline only.
pub const TIMELINE_BUCKETS_MAX: usize = 36_000;

/// Counters and latency histograms (µs) for part of the virtual users.
/// Shards of these are merged into one at the end of a run.
pub struct Stats {
    /// One histogram per op kind, allocated on first use so a scenario only
    /// pays memory for the kinds it sends.
    hists: [Option<Histogram<u64>>; OpKind::COUNT],
    highest_us: u64,
    /// Measured 2xx responses.
    pub ok: u64,
    /// Measured failures by op and kind, with the first detail seen.
    pub errors: BTreeMap<(OpKind, ErrorKind), (u64, String)>,
    /// Failures during warmup: not part of the numbers, but still reported.
    pub warmup_errors: u64,
    /// Fixed-rate mode: requests sent noticeably after their intended time.
    pub late: u64,
    /// Fixed-rate mode: scheduled requests never sent before the end.
    pub dropped: u64,
    /// When the last measured request finished.
    pub last_done: Option<Instant>,
    /// Measured 2xx completions per [`TIMELINE_BUCKET`] from `timeline_origin` on.
    pub timeline: Vec<u64>,
    timeline_origin: Option<Instant>,
}

impl Stats {
    /// `highest_us` bounds recordable latencies; the run's total length is a
    /// safe bound since no latency can exceed it.
    pub fn new(highest_us: u64) -> Self {
        Self {
            hists: std::array::from_fn(|_| None),
            highest_us: highest_us.max(2),
            ok: 0,
            errors: BTreeMap::new(),
            warmup_errors: 0,
            late: 0,
            dropped: 0,
            last_done: None,
            timeline: Vec::new(),
            timeline_origin: None,
        }
    }

    /// Also counts completions per [`TIMELINE_BUCKET`] from `origin` (the start of the
    /// measured window), in a vector allocated here once so recording never allocates.
    pub fn with_timeline(mut self, origin: Instant, window: Duration) -> Self {
        let buckets = window.as_nanos().div_ceil(TIMELINE_BUCKET.as_nanos()) as usize + 1;
        self.timeline = vec![0; buckets.min(TIMELINE_BUCKETS_MAX)];
        self.timeline_origin = Some(origin);
        self
    }

    fn hist(&mut self, kind: OpKind) -> &mut Histogram<u64> {
        let highest = self.highest_us;
        self.hists[kind.index()].get_or_insert_with(|| new_hist(highest))
    }

    /// Records one measured request. Latency goes into the histogram only for
    /// 2xx responses; failures are counted separately by kind.
    pub fn record(
        &mut self,
        kind: OpKind,
        latency: Duration,
        done: Instant,
        result: Result<(), Failure>,
    ) {
        match result {
            Ok(()) => {
                self.ok += 1;
                self.hist(kind).saturating_record(micros(latency));
                if let Some(origin) = self.timeline_origin {
                    let bucket = done.saturating_duration_since(origin).as_nanos()
                        / TIMELINE_BUCKET.as_nanos();
                    if let Some(n) = usize::try_from(bucket)
                        .ok()
                        .and_then(|b| self.timeline.get_mut(b))
                    {
                        *n += 1;
                    }
                }
            }
            Err(f) => {
                self.errors.entry((kind, f.kind)).or_insert((0, f.detail)).0 += 1;
            }
        }
        self.last_done = Some(self.last_done.map_or(done, |t| t.max(done)));
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|(n, _)| n).sum()
    }

    pub fn merge(&mut self, other: Stats) {
        for (mine, theirs) in self.hists.iter_mut().zip(other.hists) {
            match (mine.as_mut(), theirs) {
                (Some(mine), Some(theirs)) => mine
                    .add(&theirs)
                    .expect("histograms of one run share bounds, so adding cannot overflow them"),
                (None, Some(theirs)) => *mine = Some(theirs),
                (_, None) => {}
            }
        }
        self.ok += other.ok;
        for (key, (n, detail)) in other.errors {
            self.errors.entry(key).or_insert((0, detail)).0 += n;
        }
        self.warmup_errors += other.warmup_errors;
        self.late += other.late;
        self.dropped += other.dropped;
        self.last_done = match (self.last_done, other.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if self.timeline.len() < other.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(other.timeline) {
            *mine += theirs;
        }
        self.timeline_origin = self.timeline_origin.or(other.timeline_origin);
    }
}

fn new_hist(highest_us: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, highest_us, SIGFIG)
        .expect("bounds 1..=highest (>= 2) with 3 significant figures are valid")
}

pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Latency percentiles in microseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl LatencySummary {
    pub fn from_hist(h: &Histogram<u64>) -> Self {
        Self {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }

    /// One line: `p50 512us  p90 1.20ms  p99 …`.
    pub fn row(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            format_us(self.p50),
            format_us(self.p90),
            format_us(self.p99),
            format_us(self.p999),
            format_us(self.max)
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "count": self.count,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "p999": self.p999,
            "max": self.max,
            "mean": round2(self.mean),
        })
    }
}

/// Formats microseconds with a unit that keeps 3 significant digits.
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{:.2}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// Formats a duration the way the CLI accepts it (`10s`, `500ms`, `1.5s`).
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Each connection sends its next request as soon as the previous returns.
    Closed,
    /// Requests on a fixed schedule of this many per second, in total.
    Rate(f64),
}

#[derive(Debug)]
pub struct ErrorLine {
    pub op: OpKind,
    pub kind: ErrorKind,
    pub count: u64,
    pub example: String,
}

/// Everything printed for one scenario.
#[derive(Debug)]
pub struct Report {
    pub scenario: &'static str,
    pub mode: Mode,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Measured window actually covered (≥ duration when requests overran).
    pub elapsed: Duration,
    pub ok: u64,
    pub error_total: u64,
    pub errors: Vec<ErrorLine>,
    pub warmup_errors: u64,
    /// Failures outside the timed run (e.g. `get` preparation).
    pub setup_errors: u64,
    pub latency: Option<LatencySummary>,
    /// Per-op latencies; only filled when the scenario sends several kinds.
    pub per_op: Vec<(OpKind, LatencySummary)>,
    pub late: u64,
    pub dropped: u64,
    /// Throughput relative to healthz in the same suite run.
    pub ratio_to_healthz: Option<f64>,
    /// All 2xx latencies (µs), for `--plot`.
    pub hist: Option<Histogram<u64>>,
    /// 2xx completions per [`TIMELINE_BUCKET`] of the measured window, full buckets only.
    pub timeline: Vec<u64>,
    /// The server's CPU time over the measured window (`--server-pid`).
    pub server_cpu: Option<Duration>,
}

/// Settings of the run a report describes.
pub struct RunShape {
    pub mode: Mode,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

impl Report {
    pub fn new(scenario: &'static str, shape: &RunShape, stats: Stats, elapsed: Duration) -> Self {
        let mut overall: Option<Histogram<u64>> = None;
        let mut per_op = Vec::new();
        for kind in OpKind::ALL {
            let Some(h) = &stats.hists[kind.index()] else {
                continue;
            };
            per_op.push((kind, LatencySummary::from_hist(h)));
            match overall.as_mut() {
                Some(all) => all
                    .add(h)
                    .expect("histograms of one run share bounds, so adding cannot overflow them"),
                None => overall = Some(h.clone()),
            }
        }
        if per_op.len() < 2 {
            per_op.clear();
        }
        let error_total = stats.error_count();
        // Biggest problems first.
        let mut errors: Vec<ErrorLine> = stats
            .errors
            .into_iter()
            .map(|((op, kind), (count, example))| ErrorLine {
                op,
                kind,
                count,
                example,
            })
            .collect();
        errors.sort_by(|a, b| b.count.cmp(&a.count).then(a.op.cmp(&b.op)));
        let full_buckets = (elapsed.as_nanos() / TIMELINE_BUCKET.as_nanos()) as usize;
        let mut timeline = stats.timeline;
        timeline.truncate(full_buckets);
        Self {
            scenario,
            mode: shape.mode,
            connections: shape.connections,
            duration: shape.duration,
            warmup: shape.warmup,
            elapsed,
            ok: stats.ok,
            error_total,
            errors,
            warmup_errors: stats.warmup_errors,
            setup_errors: 0,
            latency: overall.as_ref().map(LatencySummary::from_hist),
            per_op,
            late: stats.late,
            dropped: stats.dropped,
            ratio_to_healthz: None,
            hist: overall,
            timeline,
            server_cpu: None,
        }
    }

    /// Server CPU microseconds per request (`--server-pid`).
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        self.server_cpu
            .and_then(|cpu| crate::cpu::micros_per_request(cpu, self.requests()))
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.error_total
    }

    /// Successful requests per second: the headline number.
    pub fn ok_per_sec(&self) -> f64 {
        per_sec(self.ok, self.elapsed)
    }

    pub fn requests_per_sec(&self) -> f64 {
        per_sec(self.requests(), self.elapsed)
    }

    /// Anything that went wrong, in or around the measured window.
    pub fn has_problems(&self) -> bool {
        self.error_total > 0 || self.warmup_errors > 0 || self.setup_errors > 0
    }

    /// Human-readable block.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let mode = match self.mode {
            Mode::Closed => "closed loop".to_owned(),
            Mode::Rate(r) => format!("fixed rate {r}/s"),
        };
        let warmup = if self.warmup.is_zero() {
            String::new()
        } else {
            format!(" (+{} warmup)", format_duration(self.warmup))
        };
        let _ = writeln!(
            out,
            "== {} == {mode}, {} connections, {}{warmup}",
            self.scenario,
            self.connections,
            format_duration(self.duration)
        );
        let _ = writeln!(
            out,
            "  throughput  {:.1} ok/s  ({:.1} req/s)",
            self.ok_per_sec(),
            self.requests_per_sec()
        );
        if let Some(ratio) = self.ratio_to_healthz {
            let _ = writeln!(out, "  vs healthz  {ratio:.3}x");
        }
        if let Some(cpu) = self.server_cpu {
            let per_request = self
                .cpu_us_per_request()
                .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"));
            let _ = writeln!(
                out,
                "  server CPU  {per_request} µs/request  ({:.2} s over the window, {:.2} cores busy)",
                cpu.as_secs_f64(),
                cpu.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9)
            );
        }
        let _ = writeln!(
            out,
            "  requests    {} total, {} ok, {} errors in {:.2}s",
            self.requests(),
            self.ok,
            self.error_total,
            self.elapsed.as_secs_f64()
        );
        match &self.latency {
            Some(l) => {
                let _ = writeln!(out, "  latency     {}  (2xx only)", l.row());
            }
            None => {
                let _ = writeln!(out, "  latency     n/a (no successful requests)");
            }
        }
        for (kind, l) in &self.per_op {
            let _ = writeln!(out, "    {:<9} {}  n={}", kind.name(), l.row(), l.count);
        }
        if let Mode::Rate(_) = self.mode {
            let _ = writeln!(
                out,
                "  schedule    {} late, {} dropped{}",
                self.late,
                self.dropped,
                if self.late + self.dropped > 0 {
                    "  (server or client could not keep up; latency counts from intended send time)"
                } else {
                    ""
                }
            );
        }
        if self.error_total > 0 {
            let pct = 100.0 * self.error_total as f64 / self.requests().max(1) as f64;
            let _ = writeln!(
                out,
                "  !! ERRORS: {} of {} requests failed ({pct:.2}%)",
                self.error_total,
                self.requests()
            );
            for e in &self.errors {
                let _ = writeln!(
                    out,
                    "  !!   {:<8} {:<16} {:>8}  e.g. {}",
                    e.op.name(),
                    e.kind.to_string(),
                    e.count,
                    e.example
                );
            }
        }
        if self.warmup_errors > 0 {
            let _ = writeln!(
                out,
                "  !! {} requests failed during warmup",
                self.warmup_errors
            );
        }
        if self.setup_errors > 0 {
            let _ = writeln!(
                out,
                "  !! {} requests failed during preparation",
                self.setup_errors
            );
        }
        out
    }

    /// One JSON object; latencies in microseconds.
    pub fn to_json(&self) -> Value {
        let (mode, rate) = match self.mode {
            Mode::Closed => ("closed", None),
            Mode::Rate(r) => ("rate", Some(r)),
        };
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|e| {
                json!({
                    "op": e.op.name(),
                    "kind": e.kind.code(),
                    "status": match e.kind { ErrorKind::Http(s) => Some(s), _ => None },
                    "count": e.count,
                    "example": e.example,
                })
            })
            .collect();
        let per_op: serde_json::Map<String, Value> = self
            .per_op
            .iter()
            .map(|(k, l)| (k.name().to_owned(), l.to_json()))
            .collect();
        json!({
            "scenario": self.scenario,
            "mode": mode,
            "target_rate": rate,
            "connections": self.connections,
            "duration_s": self.duration.as_secs_f64(),
            "warmup_s": self.warmup.as_secs_f64(),
            "elapsed_s": (self.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "requests": self.requests(),
            "ok": self.ok,
            "errors": self.error_total,
            "ok_per_s": round2(self.ok_per_sec()),
            "requests_per_s": round2(self.requests_per_sec()),
            "latency_us": self.latency.as_ref().map(LatencySummary::to_json),
            "per_op_latency_us": per_op,
            "error_breakdown": errors,
            "warmup_errors": self.warmup_errors,
            "setup_errors": self.setup_errors,
            "late": self.late,
            "dropped": self.dropped,
            "ratio_to_healthz": self.ratio_to_healthz.map(|r| (r * 1000.0).round() / 1000.0),
            "server_cpu_s": self.server_cpu.map(|c| (c.as_secs_f64() * 1000.0).round() / 1000.0),
            "server_cpu_us_per_request": self.cpu_us_per_request().map(round2),
        })
    }
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// The closing comparison table of a group of scenarios (`suite`, `peer`); CPU µs per request
/// is each target's own (`--server-pid`, `--peer-pid`).
pub fn render_suite(group: &str, reports: &[Report]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {group} summary (ratios against healthz from this run)"
    );
    let _ = writeln!(
        out,
        "  {:<11} {:>12} {:>11} {:>9} {:>9} {:>9} {:>11} {:>8}",
        "scenario", "ok/s", "vs healthz", "p50", "p99", "p99.9", "cpu µs/req", "errors"
    );
    for r in reports {
        let (p50, p99, p999) = r.latency.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned(), "-".to_owned()),
            |l| (format_us(l.p50), format_us(l.p99), format_us(l.p999)),
        );
        let ratio = r
            .ratio_to_healthz
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.3}x"));
        let cpu = r
            .cpu_us_per_request()
            .map_or_else(|| "-".to_owned(), |us| format!("{us:.1}"));
        let _ = writeln!(
            out,
            "  {:<11} {:>12.1} {:>11} {:>9} {:>9} {:>9} {:>11} {:>8}{}",
            r.scenario,
            r.ok_per_sec(),
            ratio,
            p50,
            p99,
            p999,
            cpu,
            r.error_total,
            if r.has_problems() { "  !!" } else { "" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RunShape {
        RunShape {
            mode: Mode::Closed,
            connections: 4,
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
        }
    }

    #[test]
    fn formats_microseconds_with_units() {
        assert_eq!(format_us(0), "0us");
        assert_eq!(format_us(999), "999us");
        assert_eq!(format_us(1_000), "1.00ms");
        assert_eq!(format_us(12_345), "12.35ms");
        assert_eq!(format_us(2_500_000), "2.50s");
    }

    #[test]
    fn formats_durations_like_the_cli_accepts() {
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn percentile_row_reads_from_histogram() {
        let mut h = new_hist(10_000_000);
        for v in 1..=1000u64 {
            h.record(v * 10).expect("in range");
        }
        let s = LatencySummary::from_hist(&h);
        assert_eq!(s.count, 1000);
        // 3 significant figures: values come back within 0.1%.
        assert!(s.p50.abs_diff(5_000) <= 5, "p50 {}", s.p50);
        assert!(s.p99.abs_diff(9_900) <= 10, "p99 {}", s.p99);
        assert!(s.max.abs_diff(10_000) <= 10, "max {}", s.max);
        let fixed = LatencySummary {
            count: 3,
            p50: 512,
            p90: 1_200,
            p99: 3_400,
            p999: 8_000,
            max: 1_500_000,
            mean: 700.0,
        };
        assert_eq!(
            fixed.row(),
            "p50 512us  p90 1.20ms  p99 3.40ms  p99.9 8.00ms  max 1.50s"
        );
    }

    #[test]
    fn report_shows_errors_prominently_and_in_json() {
        let mut stats = Stats::new(10_000_000);
        let now = Instant::now();
        for _ in 0..9 {
            stats.record(OpKind::Create, Duration::from_micros(800), now, Ok(()));
        }
        stats.record(
            OpKind::Create,
            Duration::from_micros(300),
            now,
            Err(Failure::new(ErrorKind::Http(500), r#"{"error":"boom"}"#)),
        );
        let report = Report::new("create", &shape(), stats, Duration::from_secs(2));
        assert_eq!(report.requests(), 10);
        assert!((report.ok_per_sec() - 4.5).abs() < 1e-9);
        let text = report.render_text();
        assert!(
            text.contains("!! ERRORS: 1 of 10 requests failed (10.00%)"),
            "{text}"
        );
        assert!(text.contains("HTTP 500"), "{text}");
        assert!(text.contains(r#"{"error":"boom"}"#), "{text}");
        assert!(text.contains("p50 800us"), "{text}");
        let v = report.to_json();
        assert_eq!(v["errors"], 1);
        assert_eq!(v["ok"], 9);
        assert_eq!(v["error_breakdown"][0]["status"], 500);
        assert_eq!(v["error_breakdown"][0]["op"], "create");
        assert_eq!(v["latency_us"]["p50"], 800);
    }

    #[test]
    fn clean_report_has_no_error_marker() {
        let mut stats = Stats::new(10_000_000);
        stats.record(
            OpKind::Healthz,
            Duration::from_micros(50),
            Instant::now(),
            Ok(()),
        );
        let report = Report::new("healthz", &shape(), stats, Duration::from_secs(1));
        assert!(!report.render_text().contains("!!"));
        assert!(!report.has_problems());
        assert!(
            report.per_op.is_empty(),
            "single-kind scenarios need no breakdown"
        );
    }
}
