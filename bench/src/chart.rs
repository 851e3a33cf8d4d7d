//! A small SVG chart: recorded rate against offered rate for each receiver.
//! Written by hand: a few lines of SVG do not justify a plotting dependency.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::harness::Trial;

const W: f64 = 760.0;
const H: f64 = 460.0;
const LEFT: f64 = 70.0;
const BOTTOM: f64 = 50.0;
const COLORS: [&str; 10] = [
    "#444444", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22",
];

/// The chart of `trials` as an SVG document.
pub fn svg(trials: &[Trial]) -> String {
    let mut series: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for t in trials {
        let secs = t.sent as f64 / t.offered_rate.max(1.0);
        let recorded_rate = t.recorded as f64 / secs.max(1e-9);
        series
            .entry(t.receiver.as_str())
            .or_default()
            .push((t.offered_rate, recorded_rate));
    }
    let max = trials.iter().map(|t| t.offered_rate).fold(1.0, f64::max) * 1.05;
    let x = |v: f64| LEFT + v / max * (W - LEFT - 20.0);
    let y = |v: f64| H - BOTTOM - v / max * (H - BOTTOM - 20.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        y(0.0),
        W - 20.0,
        y(0.0)
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="20" x2="{LEFT}" y2="{}" stroke="black"/>"#,
        y(0.0)
    );
    let _ = writeln!(
        s,
        r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="gray" stroke-dasharray="4"/>"#,
        x(0.0),
        y(0.0),
        x(max),
        y(max)
    );
    for i in 0..=5 {
        let v = max * i as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{:.2}</text>"#,
            x(v),
            H - BOTTOM + 18.0,
            v / 1e6
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{:.2}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0,
            v / 1e6
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">offered (Mpps)</text>"#,
        (LEFT + W) / 2.0,
        H - 10.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">recorded (Mpps)</text>"#,
        H / 2.0,
        H / 2.0
    );
    for (i, (name, mut points)) in series.into_iter().enumerate() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(o, r)| format!("{:.1},{:.1}", x(*o), y(*r)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        for (o, r) in &points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                x(*o),
                y(*r)
            );
        }
        let ly = 30.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{color}"/>"#,
            LEFT + 12.0,
            ly - 9.0
        );
        let _ = writeln!(s, r#"<text x="{}" y="{ly}">{name}</text>"#, LEFT + 28.0);
    }
    s.push_str("</svg>\n");
    s
}
