//! Charts rendered on the server as inline SVG (no script): each has `role="img"`, a `<title>`
//! and an `aria-label` that states the data, and the page shows the numbers in a table too.

use palisade_store::TrendPoint;
use std::fmt::Write as _;

/// Escape text for SVG/HTML.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A line chart of open findings per day, with the daily new findings as bars.
pub(crate) fn trend(points: &[TrendPoint], label: &str) -> String {
    let (w, h, pad) = (600.0f64, 160.0f64, 28.0f64);
    let max = points.iter().map(|p| p.open.max(p.opened)).max().unwrap_or(0).max(1) as f64;
    let n = points.len().max(2) as f64;
    let x = |i: usize| pad + (w - 2.0 * pad) * (i as f64) / (n - 1.0);
    let y = |v: i64| h - pad - (h - 2.0 * pad) * (v as f64) / max;
    let (first, last) = match (points.first(), points.last()) {
        (Some(f), Some(l)) => (f.open, l.open),
        _ => (0, 0),
    };
    let aria = format!("{label}: {first} open {} days ago, {last} open today", points.len().saturating_sub(1));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{a}" xmlns="http://www.w3.org/2000/svg"><title>{a}</title>"#,
        a = esc(&aria)
    );
    let _ = write!(s, r#"<line class="axis" x1="{pad}" y1="{y0}" x2="{x1}" y2="{y0}"/>"#, y0 = h - pad, x1 = w - pad);
    let bw = ((w - 2.0 * pad) / n * 0.6).max(1.0);
    for (i, p) in points.iter().enumerate() {
        if p.opened > 0 {
            let top = y(p.opened);
            let _ = write!(
                s,
                r#"<rect class="bar-new" x="{:.1}" y="{top:.1}" width="{bw:.1}" height="{:.1}"/>"#,
                x(i) - bw / 2.0,
                (h - pad - top).max(0.0)
            );
        }
    }
    let path: Vec<String> = points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.open))).collect();
    let _ = write!(s, r#"<polyline class="line-open" fill="none" points="{}"/>"#, path.join(" "));
    let _ = write!(s, r#"<text class="tick" x="{pad}" y="{:.1}">{}</text>"#, pad - 8.0, max as i64);
    let _ = write!(s, r#"<text class="tick" x="{pad}" y="{:.1}">0</text>"#, h - pad + 16.0);
    s.push_str("</svg>");
    s
}

/// A horizontal stacked bar of counts: (label, count, css class).
pub(crate) fn stacked(parts: &[(&str, i64, &str)], label: &str) -> String {
    let total: i64 = parts.iter().map(|p| p.1.max(0)).sum();
    let (w, h) = (600.0f64, 22.0f64);
    let desc: Vec<String> = parts.iter().map(|(l, n, _)| format!("{n} {l}")).collect();
    let aria = format!("{label}: {}", desc.join(", "));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="stack" viewBox="0 0 {w} {h}" role="img" aria-label="{a}" xmlns="http://www.w3.org/2000/svg"><title>{a}</title>"#,
        a = esc(&aria)
    );
    if total == 0 {
        let _ = write!(s, r#"<rect class="empty" x="0" y="0" width="{w}" height="{h}"/>"#);
    } else {
        let mut at = 0.0f64;
        for (_, n, class) in parts {
            if *n <= 0 {
                continue;
            }
            let width = w * (*n as f64) / (total as f64);
            let _ = write!(s, r#"<rect class="{}" x="{at:.2}" y="0" width="{width:.2}" height="{h}"/>"#, esc(class));
            at += width;
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_state_their_data_and_escape_labels() {
        let pts = [
            TrendPoint { day: 0, open: 3, opened: 3, fixed: 0 },
            TrendPoint { day: 86_400, open: 5, opened: 2, fixed: 0 },
        ];
        let s = trend(&pts, "Open <findings>");
        assert!(s.contains("Open &lt;findings&gt;: 3 open 1 days ago, 5 open today"), "{s}");
        assert_eq!(s.matches("<rect").count(), 2);
        let b = stacked(&[("critical", 1, "sev-critical"), ("high", 0, "sev-high"), ("low", 3, "sev-low")], "Open");
        assert!(b.contains("1 critical, 0 high, 3 low"));
        assert_eq!(b.matches("<rect").count(), 2);
        assert!(stacked(&[], "none").contains("class=\"empty\""));
    }
}
