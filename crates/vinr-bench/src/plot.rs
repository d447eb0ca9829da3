//! `--plot FILE.svg`: one hand-written SVG per run, from the run's own data.
//!
//! * Top: latency by percentile, HdrHistogram style. The x axis is `log10(1 / (1 - p))`, so
//!   50%, 90%, 99%, 99.9%, 99.99% are evenly spaced; the y axis is latency in ms, log scale.
//!   The points come from each scenario's merged 2xx histogram.
//! * Bottom: 2xx completions per [`TIMELINE_BUCKET`] over the measured window, as req/s.
//!
//! One `<path>` per scenario in each panel (class `latency` / `throughput`, with
//! `data-scenario`), and a legend. No dependency: the format is a few elements.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::report::{format_duration, Mode, Report, TIMELINE_BUCKET};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 860.0;
/// Left edge of both plot areas (room for the y labels) and their right edge (legend after).
const LEFT: f64 = 90.0;
const RIGHT: f64 = 760.0;
const LATENCY_TOP: f64 = 60.0;
const LATENCY_BOTTOM: f64 = 420.0;
const THROUGHPUT_TOP: f64 = 500.0;
const THROUGHPUT_BOTTOM: f64 = 800.0;
/// The percentile axis ends at 99.999% (`1 / (1 - p)` = 10^5).
const NINES_MAX: f64 = 5.0;
/// Points per unit of the percentile axis (a factor of 10 in `1 / (1 - p)`).
const POINTS_PER_NINE: usize = 100;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Writes the SVG for `reports` (one line per report in each panel).
pub fn render(reports: &[Report]) -> String {
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<title>vinr-bench: {}</title>
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{}</text>"#,
        escape(&scenario_list(reports)),
        escape(&headline(reports)),
    );
    latency_panel(&mut svg, reports);
    throughput_panel(&mut svg, reports);
    legend(&mut svg, reports);
    svg.push_str("</svg>\n");
    svg
}

fn scenario_list(reports: &[Report]) -> String {
    reports
        .iter()
        .map(|r| r.scenario)
        .collect::<Vec<_>>()
        .join(", ")
}

fn headline(reports: &[Report]) -> String {
    let Some(first) = reports.first() else {
        return "vinr-bench: no scenario ran".to_owned();
    };
    let mode = match first.mode {
        Mode::Closed => "closed loop".to_owned(),
        Mode::Rate(r) => format!("fixed rate {r}/s"),
    };
    format!(
        "vinr-bench {}: {mode}, {} connections, {} each",
        scenario_list(reports),
        first.connections,
        format_duration(first.duration)
    )
}

/// The curve of one histogram: (nines, latency ms) from p0 to the highest percentile its
/// sample count resolves (capped at [`NINES_MAX`]), ending at the maximum.
fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let resolved = (h.len().max(2) as f64).log10().min(NINES_MAX);
    let steps = (resolved * POINTS_PER_NINE as f64).ceil() as usize;
    let mut points: Vec<(f64, f64)> = (0..steps)
        .map(|i| {
            let nines = i as f64 / POINTS_PER_NINE as f64;
            let quantile = 1.0 - 10f64.powf(-nines);
            (nines, ms(h.value_at_quantile(quantile)))
        })
        .collect();
    points.push((resolved, ms(h.max())));
    points
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

fn latency_panel(svg: &mut String, reports: &[Report]) {
    let curves: Vec<(usize, Vec<(f64, f64)>)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.hist.as_ref().map(|h| (i, percentile_points(h))))
        .collect();
    let all = curves.iter().flat_map(|(_, pts)| pts.iter().map(|p| p.1));
    let lo_ms = all.clone().fold(f64::INFINITY, f64::min).max(1e-3);
    let hi_ms = all.fold(0.0, f64::max).max(lo_ms);
    let lo_exp = lo_ms.log10().floor() as i32;
    let hi_exp = (hi_ms.log10().ceil() as i32).max(lo_exp + 1);
    let y = |v: f64| {
        let t = (v.max(1e-3).log10() - lo_exp as f64) / (hi_exp - lo_exp) as f64;
        LATENCY_BOTTOM - t * (LATENCY_BOTTOM - LATENCY_TOP)
    };
    let x = |nines: f64| LEFT + nines / NINES_MAX * (RIGHT - LEFT);

    panel_frame(
        svg,
        LATENCY_TOP,
        LATENCY_BOTTOM,
        "Latency by percentile (2xx only)",
        "latency (ms, log scale)",
        "percentile",
    );
    for (nines, label) in [
        (0.0, "0%"),
        (2f64.log10(), "50%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
    ] {
        x_tick(svg, x(nines), LATENCY_TOP, LATENCY_BOTTOM, label);
    }
    for exp in lo_exp..=hi_exp {
        for mantissa in [1.0, 2.0, 5.0] {
            if exp == hi_exp && mantissa > 1.0 {
                break;
            }
            let value = mantissa * 10f64.powi(exp);
            let label = if exp < 0 {
                format!("{value:.prec$}", prec = (-exp) as usize)
            } else {
                format!("{value:.0}")
            };
            y_tick(svg, y(value), &label, mantissa == 1.0);
        }
    }
    for (i, points) in &curves {
        let d = path_data(points.iter().map(|&(n, v)| (x(n), y(v))));
        series(svg, "latency", reports[*i].scenario, *i, &d);
    }
}

fn throughput_panel(svg: &mut String, reports: &[Report]) {
    let bucket_s = TIMELINE_BUCKET.as_secs_f64();
    let per_second = 1.0 / bucket_s;
    let longest = reports.iter().map(|r| r.timeline.len()).max().unwrap_or(0);
    let x_max_s = (longest as f64 * bucket_s).max(bucket_s);
    let peak = reports
        .iter()
        .flat_map(|r| r.timeline.iter())
        .fold(0u64, |a, &b| a.max(b)) as f64
        * per_second;
    let y_step = nice_step(peak.max(1.0) / 5.0);
    let y_max = (peak / y_step).ceil().max(1.0) * y_step;
    let x_step = nice_step(x_max_s / 8.0);
    let x = |s: f64| LEFT + s / x_max_s * (RIGHT - LEFT);
    let y = |v: f64| THROUGHPUT_BOTTOM - v / y_max * (THROUGHPUT_BOTTOM - THROUGHPUT_TOP);

    panel_frame(
        svg,
        THROUGHPUT_TOP,
        THROUGHPUT_BOTTOM,
        &format!(
            "Throughput over the measured window (2xx per {} ms, as req/s)",
            TIMELINE_BUCKET.as_millis()
        ),
        "req/s",
        "time in the measured window (s)",
    );
    let mut t = 0.0;
    while t <= x_max_s + 1e-9 {
        x_tick(
            svg,
            x(t),
            THROUGHPUT_TOP,
            THROUGHPUT_BOTTOM,
            &trim_number(t),
        );
        t += x_step;
    }
    let mut v = 0.0;
    while v <= y_max + 1e-9 {
        y_tick(svg, y(v), &trim_number(v), true);
        v += y_step;
    }
    for (i, r) in reports.iter().enumerate() {
        if r.timeline.is_empty() {
            continue;
        }
        // Each bucket's rate at its middle.
        let d = path_data(
            r.timeline
                .iter()
                .enumerate()
                .map(|(b, &n)| (x((b as f64 + 0.5) * bucket_s), y(n as f64 * per_second))),
        );
        series(svg, "throughput", r.scenario, i, &d);
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&step| step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// `0.5`, `2`, `15000`: no trailing zeros, no float noise.
fn trim_number(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn panel_frame(svg: &mut String, top: f64, bottom: f64, title: &str, y_label: &str, x_label: &str) {
    let mid_y = (top + bottom) / 2.0;
    let mid_x = (LEFT + RIGHT) / 2.0;
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-size="13" font-weight="bold">{}</text>
<rect x="{LEFT}" y="{top}" width="{}" height="{}" fill="none" stroke="#444"/>
<text x="{mid_x}" y="{}" text-anchor="middle">{}</text>
<text x="20" y="{mid_y}" text-anchor="middle" transform="rotate(-90 20 {mid_y})">{}</text>"##,
        top - 10.0,
        escape(title),
        RIGHT - LEFT,
        bottom - top,
        bottom + 34.0,
        escape(x_label),
        escape(y_label),
    );
}

fn x_tick(svg: &mut String, x: f64, top: f64, bottom: f64, label: &str) {
    let _ = writeln!(
        svg,
        r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#ddd"/>
<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
        bottom + 16.0,
        escape(label)
    );
}

fn y_tick(svg: &mut String, y: f64, label: &str, major: bool) {
    let stroke = if major { "#ccc" } else { "#eee" };
    let _ = writeln!(
        svg,
        r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" stroke="{stroke}"/>
<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
        LEFT - 6.0,
        y + 4.0,
        escape(label)
    );
}

fn path_data(points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.enumerate() {
        let _ = write!(d, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
    }
    d
}

fn series(svg: &mut String, class: &str, scenario: &str, index: usize, d: &str) {
    let _ = writeln!(
        svg,
        r#"<path class="{class}" data-scenario="{}" d="{d}" fill="none" stroke="{}" stroke-width="1.8"/>"#,
        escape(scenario),
        COLORS[index % COLORS.len()]
    );
}

fn legend(svg: &mut String, reports: &[Report]) {
    for (i, r) in reports.iter().enumerate() {
        let y = LATENCY_TOP + 10.0 + 22.0 * i as f64;
        let detail = format!("{:.0} ok/s", r.ok_per_sec());
        let _ = writeln!(
            svg,
            r#"<g class="legend"><line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3"/>
<text x="{}" y="{}">{} ({})</text></g>"#,
            RIGHT + 15.0,
            RIGHT + 40.0,
            COLORS[i % COLORS.len()],
            RIGHT + 46.0,
            y + 4.0,
            escape(r.scenario),
            escape(&detail)
        );
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
pub mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::report::{RunShape, Stats};
    use crate::scenario::OpKind;

    type Attributes = Vec<(String, String)>;

    /// A well-formedness check without an XML crate (none is in the tree): one root, every
    /// element closed in order, attributes quoted and unique, only the predefined entities.
    /// Returns the elements' start tags (name and attributes) in document order.
    pub fn check_xml(doc: &str) -> Vec<(String, Attributes)> {
        let body = doc
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .expect("XML declaration first")
            .trim_start();
        let mut open: Vec<String> = Vec::new();
        let mut tags = Vec::new();
        let mut roots = 0;
        let mut rest = body;
        while let Some(lt) = rest.find('<') {
            check_text(&rest[..lt]);
            assert!(
                !open.is_empty() || rest[..lt].trim().is_empty(),
                "text outside the root"
            );
            let gt = rest[lt..].find('>').expect("unterminated tag") + lt;
            let tag = &rest[lt + 1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop().as_deref(), Some(name.trim()), "mismatched close");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = tag.split_once(char::is_whitespace).unwrap_or((tag, ""));
            assert!(
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "bad element name {name:?}"
            );
            if open.is_empty() {
                roots += 1;
            }
            tags.push((name.to_owned(), attributes(attrs)));
            if !self_closing {
                open.push(name.to_owned());
            }
        }
        assert!(rest.trim().is_empty(), "text after the root");
        assert!(open.is_empty(), "unclosed elements: {open:?}");
        assert_eq!(roots, 1, "exactly one root element");
        tags
    }

    fn check_text(text: &str) {
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            let end = rest[amp..].find(';').expect("unterminated entity") + amp;
            let entity = &rest[amp + 1..end];
            assert!(
                ["amp", "lt", "gt", "quot", "apos"].contains(&entity),
                "unknown entity {entity:?}"
            );
            rest = &rest[end + 1..];
        }
    }

    fn attributes(mut text: &str) -> Attributes {
        let mut attrs: Attributes = Vec::new();
        loop {
            text = text.trim_start();
            if text.is_empty() {
                return attrs;
            }
            let (name, after) = text.split_once('=').expect("attribute without value");
            let after = after
                .strip_prefix('"')
                .expect("attribute value in double quotes");
            let end = after.find('"').expect("unterminated attribute value");
            let value = &after[..end];
            assert!(!value.contains('<'), "'<' in an attribute value");
            check_text(value);
            let name = name.trim().to_owned();
            assert!(attrs.iter().all(|(n, _)| *n != name), "duplicate {name}");
            attrs.push((name, value.to_owned()));
            text = &after[end + 1..];
        }
    }

    fn attr<'a>(attrs: &'a Attributes, name: &str) -> Option<&'a str> {
        attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// (data-scenario, d) of every `<path class="CLASS">`, in document order.
    pub fn paths(tags: &[(String, Attributes)], class: &str) -> Vec<(String, String)> {
        tags.iter()
            .filter(|(name, attrs)| name == "path" && attr(attrs, "class") == Some(class))
            .map(|(_, attrs)| {
                (
                    attr(attrs, "data-scenario")
                        .expect("data-scenario")
                        .to_owned(),
                    attr(attrs, "d").expect("d").to_owned(),
                )
            })
            .collect()
    }

    fn report(name: &'static str, latencies_us: impl Iterator<Item = u64>) -> Report {
        let origin = Instant::now();
        let mut stats = Stats::new(60_000_000).with_timeline(origin, Duration::from_secs(2));
        for (i, us) in latencies_us.enumerate() {
            let done = origin + Duration::from_micros(i as u64 * 150);
            stats.record(OpKind::Create, Duration::from_micros(us), done, Ok(()));
        }
        let shape = RunShape {
            mode: Mode::Closed,
            connections: 8,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
        };
        Report::new(name, &shape, stats, Duration::from_secs(1))
    }

    #[test]
    fn svg_is_well_formed_with_one_path_per_scenario_and_panel() {
        let reports = [
            report("healthz", (0..5_000).map(|i| 50 + i % 400)),
            report("create", (0..5_000).map(|i| 900 + (i * 7) % 20_000)),
            report("a<b&\"c\"", (0..10).map(|i| 1_000 * (i + 1))),
        ];
        let svg = render(&reports);
        let tags = check_xml(&svg);
        assert_eq!(tags[0].0, "svg");
        let names = ["healthz", "create", "a&lt;b&amp;&quot;c&quot;"];
        for class in ["latency", "throughput"] {
            let found = paths(&tags, class);
            let scenarios: Vec<&str> = found.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(scenarios, names, "{class}");
            for (_, d) in &found {
                assert!(d.starts_with('M') && d.contains(" L"), "{d}");
            }
        }
        for label in ["50%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        // 5 000 creates in 0.75 s, all in the first 8 buckets of 100 ms: 6 667 req/s each.
        assert_eq!(reports[1].timeline.len(), 10);
        assert_eq!(reports[1].timeline[0], 667);
        assert_eq!(reports[1].timeline[9], 0);
    }

    #[test]
    fn percentile_curve_rises_to_the_maximum() {
        let r = report("create", (1..=100_000).map(|i| i * 10));
        let points = percentile_points(r.hist.as_ref().expect("histogram"));
        assert_eq!(points.len(), 5 * POINTS_PER_NINE + 1);
        assert!(points
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let (nines, max) = points[points.len() - 1];
        assert!((nines - 5.0).abs() < 1e-9);
        assert!((max - 1_000.0).abs() < 1.0, "max {max} ms");
        // p50 of 10 µs .. 1 s uniform: 500 ms, within the histogram's 0.1%.
        let p50 = points[(2f64.log10() * POINTS_PER_NINE as f64).round() as usize].1;
        assert!((p50 - 500.0).abs() < 5.0, "p50 {p50} ms");
    }

    #[test]
    fn steps_and_numbers_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(1_800.0), 2_000.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(trim_number(0.5), "0.5");
        assert_eq!(trim_number(2_000.0), "2000");
        assert_eq!(trim_number(0.30000000000000004), "0.3");
    }
}
