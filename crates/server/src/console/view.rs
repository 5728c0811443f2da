//! Formatting shared by the pages: times, digests, severities, links with query strings.

use palisade_store::{Severity, SeverityCounts, Timestamp};

/// The frame every page shares.
pub(crate) struct Layout {
    pub(crate) title: String,
    /// Which navigation entry is current (its path).
    pub(crate) active: &'static str,
    pub(crate) user: String,
    pub(crate) role: &'static str,
    pub(crate) csrf: String,
}

/// One navigation entry.
pub(crate) struct NavItem {
    pub(crate) path: &'static str,
    pub(crate) label: &'static str,
    pub(crate) current: bool,
}

impl Layout {
    /// The navigation, with the current page marked.
    pub(crate) fn nav(&self) -> Vec<NavItem> {
        NAV.iter().map(|(path, label)| NavItem { path, label, current: *path == self.active }).collect()
    }
}

/// The navigation: (path, label).
pub(crate) const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/inventory", "Inventory"),
    ("/images", "Images"),
    ("/vulnerabilities", "Vulnerabilities"),
    ("/recommendations", "Recommendations"),
    ("/alerts", "Alerts"),
    ("/fleet", "Fleet"),
    ("/settings", "Settings"),
];

/// `k=v&k2=v2`, URL-encoded, skipping empty values.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let kept: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

/// `path?query` (just `path` when the query is empty).
pub(crate) fn href(path: &str, pairs: &[(&str, &str)]) -> String {
    let q = query(pairs);
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// A path segment, percent-encoded.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `2026-12-07 23:40 UTC`.
pub(crate) fn time(t: Timestamp) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

/// `2026-12-07`.
pub(crate) fn date(t: Timestamp) -> String {
    let (y, m, d) = civil(t.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

pub(crate) fn opt_time(t: Option<Timestamp>) -> String {
    t.map(time).unwrap_or_default()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// An image's tags for a cell: `1.0, latest` (the store keeps `repo:tag`; the repository is
/// shown beside them).
pub(crate) fn tags(repo: &str, tags: &[String]) -> String {
    let prefix = format!("{repo}:");
    tags.iter().map(|t| t.strip_prefix(&prefix).unwrap_or(t)).collect::<Vec<_>>().join(", ")
}

/// `sha256:0123456789ab`.
pub(crate) fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        // by characters: a stored value need not be ASCII (a crafted SBOM's layer)
        Some((alg, hex)) => {
            format!("{}:{}", alg.chars().take(16).collect::<String>(), hex.chars().take(12).collect::<String>())
        }
        None => d.chars().take(19).collect(),
    }
}

/// The CSS class of a severity badge.
pub(crate) fn sev_class(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "sev sev-critical",
        Severity::High => "sev sev-high",
        Severity::Medium => "sev sev-medium",
        Severity::Low => "sev sev-low",
        Severity::Negligible => "sev sev-negligible",
        Severity::Unknown => "sev sev-unknown",
    }
}

/// Severity counts as (label, count, class), most severe first, zero counts kept.
pub(crate) fn counts(c: &SeverityCounts) -> Vec<(&'static str, i64, &'static str)> {
    [
        (Severity::Critical, c.critical),
        (Severity::High, c.high),
        (Severity::Medium, c.medium),
        (Severity::Low, c.low),
        (Severity::Negligible, c.negligible),
        (Severity::Unknown, c.unknown),
    ]
    .into_iter()
    .map(|(s, n)| (s.as_str(), n, sev_class(s)))
    .collect()
}

/// `C3 H10 M2` for a table cell (empty when nothing is open).
pub(crate) fn counts_short(c: &SeverityCounts) -> String {
    let parts: Vec<String> = [("C", c.critical), ("H", c.high), ("M", c.medium), ("L", c.low)]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}{n}"))
        .collect();
    parts.join(" ")
}

/// A JSON value as text for a cell (strings unquoted).
pub(crate) fn text(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(time(1_796_687_999), "2026-12-07 23:59 UTC");
        assert_eq!(date(-86_400), "1969-12-31");
    }

    #[test]
    fn links_are_encoded() {
        assert_eq!(href("/images", &[("repo", "a b&c"), ("cursor", "")]), "/images?repo=a+b%26c");
        assert_eq!(href("/images", &[]), "/images");
        assert_eq!(seg("sha256:ab/../x"), "sha256:ab%2F..%2Fx");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "sha256:0123456789ab");
        assert_eq!(short_digest("x:éééééééééééééé"), "x:éééééééééééé");
    }
}
