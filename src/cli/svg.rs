//! The bench's SVG: one panel per backend, the share of wake-ups in each
//! latency bin (log2 bins from 1 µs), the stack's bars beside the raw
//! timerfd's. Hand-written SVG: no plotting crate for one chart.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// One backend's two distributions.
pub struct Panel<'a> {
    /// The backend's name.
    pub title: String,
    /// Latencies through the stack, ns.
    pub stack: &'a Histogram<u64>,
    /// Raw timerfd latencies, ns.
    pub raw: &'a Histogram<u64>,
}

/// Bin upper edges, ns: 1 µs, 2 µs, ... 32.768 ms, then everything above.
fn edges() -> Vec<u64> {
    (0..16).map(|k| 1_000u64 << k).collect()
}

/// The share of samples in each bin (the last bin holds the overflow).
fn shares(h: &Histogram<u64>) -> Vec<f64> {
    let edges = edges();
    let mut counts = vec![0u64; edges.len() + 1];
    for v in h.iter_recorded() {
        let value = v.value_iterated_to();
        let bin = edges
            .iter()
            .position(|&e| value <= e)
            .unwrap_or(edges.len());
        counts[bin] += v.count_at_value();
    }
    let total = h.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / total).collect()
}

fn label(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{}ms", ns / 1_000_000)
    } else {
        format!("{}us", ns / 1_000)
    }
}

const PANEL_W: f64 = 760.0;
const PANEL_H: f64 = 150.0;
const LEFT: f64 = 50.0;
const TOP: f64 = 50.0;
const PLOT_H: f64 = 100.0;

/// The whole SVG document.
pub fn histogram_svg(panels: &[Panel<'_>], samples: u64, ahead_us: u64) -> String {
    let height = TOP + PANEL_H * panels.len().max(1) as f64 + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="11">"#,
        w = PANEL_W + LEFT + 20.0
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14">Wake-up latency (share of samples per bin): itimer stack vs raw timerfd, {samples} samples per backend, armed {ahead_us} us ahead</text>"#
    );
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="30" width="10" height="10" fill="#3b6fb6"/><text x="{}" y="39">stack (HIGHRES timer, SIGEV_PORT)</text><rect x="{}" y="30" width="10" height="10" fill="#b0b0b0"/><text x="{}" y="39">raw timerfd</text>"##,
        LEFT + 14.0,
        LEFT + 230.0,
        LEFT + 244.0
    );
    let edges = edges();
    let bins = edges.len() + 1;
    let bin_w = PANEL_W / bins as f64;
    for (i, p) in panels.iter().enumerate() {
        let y0 = TOP + PANEL_H * i as f64 + 10.0;
        let base = y0 + PLOT_H;
        let _ = writeln!(
            s,
            r#"<text x="{LEFT}" y="{}" font-weight="bold">{}</text><line x1="{LEFT}" y1="{base}" x2="{}" y2="{base}" stroke="black"/>"#,
            y0 - 2.0,
            p.title,
            LEFT + PANEL_W
        );
        for (series, color, dx) in [(&p.stack, "#3b6fb6", 0.1), (&p.raw, "#b0b0b0", 0.5)] {
            for (b, share) in shares(series).into_iter().enumerate() {
                let h = share * (PLOT_H - 12.0);
                if h <= 0.0 {
                    continue;
                }
                let _ = writeln!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{color}"><title>{:.1}%</title></rect>"#,
                    LEFT + bin_w * (b as f64 + dx),
                    base - h,
                    bin_w * 0.4,
                    h,
                    share * 100.0
                );
            }
        }
        for (b, e) in edges.iter().enumerate() {
            if b % 2 == 0 {
                let _ = writeln!(
                    s,
                    r#"<text x="{:.1}" y="{}" text-anchor="middle">&lt;={}</text>"#,
                    LEFT + bin_w * (b as f64 + 0.5),
                    base + 13.0,
                    label(*e)
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">more</text>"#,
            LEFT + bin_w * (bins as f64 - 0.5),
            base + 13.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_fall_in_their_bins() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        h.record(500).unwrap(); // <= 1 us
        h.record(1_500).unwrap(); // <= 2 us
        h.record(3_000_000).unwrap(); // <= 4.096 ms
        h.record(50_000_000).unwrap(); // more
        let s = shares(&h);
        assert_eq!(s.len(), 17);
        assert_eq!((s[0], s[1], s[12], s[16]), (0.25, 0.25, 0.25, 0.25));
        let svg = histogram_svg(
            &[Panel {
                title: "timerfd".into(),
                stack: &h,
                raw: &h,
            }],
            4,
            1000,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<title>25.0%</title>").count(), 8);
    }
}
