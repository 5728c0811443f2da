//! Node.js security WG advisories (`nodejs/security-wg`, `vuln/npm/<n>.json`):
//! `{"id", "title", "module_name", "cves", "vulnerable_versions", "patched_versions",
//! "cvss_vector", "cvss_score", "publish_date", "updated_at", "references"}`.
//!
//! One [`Advisory`] per file, id `NSWG-ECO-<id>`, CVEs as aliases, ecosystem npm, ranges from
//! `vulnerable_versions` (an npm semver range, see [`constraint::npm_intervals`]). Status is
//! `Affected` when `patched_versions` is empty (no fix), else `Fixed`. A CVSS vector without its
//! minor version is taken as v3.0 (the WG's calculator). Core (`vuln/core`) and dependency
//! advisories concern Node.js itself, not npm packages, and are not read. Input: the repository
//! tarball (gzip or plain tar) or one advisory JSON file.

use serde_json::Value;

use super::util::{array_field, date_to_rfc3339, f32_field, first_line, push_unique, str_field};
use super::{archive, constraint, cvss, FeedError, FeedKind, Parsed};
use crate::record::{Advisory, Affected, Cvss, EcoKind, Severity, Status};

/// [`Advisory::source`] of Node.js security WG records.
pub const SOURCE: &str = "nodejs-security-wg";

fn is_tar(data: &[u8]) -> bool {
    archive::is_gzip(data) || data.get(257..262) == Some(b"ustar".as_slice())
}

/// Parse the security WG tarball or one advisory file.
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let mut out = Parsed::default();
    if !is_tar(data) {
        let v: Value = serde_json::from_slice(data)
            .map_err(|e| FeedError::format(file, FeedKind::NodeSecurityWg, e.to_string()))?;
        if v.get("module_name").is_none() {
            return Err(FeedError::format(file, FeedKind::NodeSecurityWg, "no \"module_name\""));
        }
        add(file, &v, &mut out)?;
        return Ok(out);
    }
    let walk = archive::walk_tar(file, FeedKind::NodeSecurityWg, data, wanted, |name, content| {
        match serde_json::from_slice::<Value>(content) {
            Ok(v) => add(file, &v, &mut out)?,
            Err(e) => {
                tracing::debug!(file, entry = name, error = %e, "bad JSON in security WG entry");
                out.skipped += 1;
            }
        }
        Ok(())
    })?;
    out.skipped += walk.skipped;
    Ok(out)
}

/// `…/npm/<n>.json`, not the index.
fn wanted(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    let (Some(name), Some(dir)) = (parts.next(), parts.next()) else { return false };
    dir == "npm" && name.ends_with(".json") && name != "index.json"
}

fn add(file: &str, v: &Value, out: &mut Parsed<Advisory>) -> Result<(), FeedError> {
    match advisory(v) {
        Ok(a) => out.push(file, a),
        Err(reason) => {
            tracing::debug!(file, %reason, "security WG advisory skipped");
            out.skipped += 1;
            Ok(())
        }
    }
}

fn advisory(v: &Value) -> Result<Advisory, String> {
    let num = match v.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return Err("no id".into()),
    };
    let id = format!("NSWG-ECO-{num}");
    let module = str_field(v, "module_name").ok_or("no module_name")?;
    let vulnerable = str_field(v, "vulnerable_versions").ok_or("no vulnerable_versions")?;
    let intervals = constraint::npm_intervals(vulnerable).map_err(|e| e.to_string())?;
    let conv = constraint::to_ranges(&intervals);
    if conv.ranges.is_empty() && conv.versions.is_empty() {
        return Err(format!("empty range {vulnerable:?}"));
    }
    let patched = str_field(v, "patched_versions").is_some_and(|p| !matches!(p, "<0.0.0" | "none"));
    let mut aliases = Vec::new();
    for c in array_field(v, "cves").iter().filter_map(Value::as_str) {
        push_unique(&mut aliases, c, &id);
    }
    let mut cvss_list = Vec::new();
    let score = f32_field(v, "cvss_score").filter(|s| (0.0..=10.0).contains(s));
    match str_field(v, "cvss_vector") {
        Some(vec) => {
            let vec = if vec.starts_with("AV:") && !vec.contains("Au:") {
                format!("CVSS:3.0/{vec}")
            } else {
                vec.to_string()
            };
            if let Some(mut c) = cvss::from_vector(&vec, SOURCE) {
                if score.is_some() {
                    c.score = score;
                }
                cvss_list.push(c);
            }
        }
        None => {
            if let Some(s) = score {
                cvss_list.push(Cvss {
                    version: "3".into(),
                    vector: String::new(),
                    score: Some(s),
                    source: SOURCE.into(),
                });
            }
        }
    }
    let severity = str_field(v, "severity").and_then(Severity::rating);
    Ok(Advisory {
        id,
        aliases,
        summary: str_field(v, "title").or_else(|| str_field(v, "overview")).map(first_line).unwrap_or_default(),
        severity,
        cvss: cvss_list,
        published: str_field(v, "publish_date").or_else(|| str_field(v, "created_at")).map(date_to_rfc3339),
        modified: str_field(v, "updated_at").map(date_to_rfc3339),
        withdrawn: false,
        references: {
            let mut refs = Vec::new();
            for r in array_field(v, "references").iter().filter_map(Value::as_str) {
                push_unique(&mut refs, r, "");
            }
            refs
        },
        affected: vec![Affected {
            ecosystem: EcoKind::Npm,
            release: String::new(),
            package: module.to_string(),
            ranges: conv.ranges,
            versions: conv.versions,
            status: if patched { Status::Fixed } else { Status::Affected },
            severity: None,
        }],
        source: SOURCE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Event;

    #[test]
    fn feed_nodejs_single() {
        let j = br#"{"id": 410, "title": "merge-options prototype pollution", "module_name": "merge-options", "cves": ["CVE-2018-3752"],
            "vulnerable_versions": "<=1.0.0", "patched_versions": null, "references": ["https://hackerone.com/reports/311336"],
            "cvss_vector": "CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:L", "cvss_score": 2, "publish_date": "2018-04-09"}"#;
        let p = parse("410.json", j).unwrap_or_default();
        assert_eq!(p.records.len(), 1);
        let a = &p.records[0];
        assert_eq!(a.id, "NSWG-ECO-410");
        assert_eq!(a.aliases, vec!["CVE-2018-3752".to_string()]);
        assert_eq!(a.published.as_deref(), Some("2018-04-09T00:00:00Z"));
        assert_eq!(a.cvss[0].score, Some(2.0));
        assert_eq!(a.affected[0].status, Status::Affected);
        assert_eq!(
            a.affected[0].ranges[0].events,
            vec![Event::Introduced("0".into()), Event::LastAffected("1.0.0".into())]
        );
        let bad = br#"{"id": 1, "module_name": "x", "vulnerable_versions": "not a range"}"#;
        assert_eq!(parse("1.json", bad).map(|p| (p.records.len(), p.skipped)).ok(), Some((0, 1)));
        assert!(parse("x.json", b"{}").is_err());
        assert!(parse("x.json", b"\x1f\x8bnot really gzip").is_err());
        assert!(wanted("nodejs-security-wg/npm/410.json"));
        assert!(!wanted("nodejs-security-wg/npm/index.json"));
        assert!(!wanted("nodejs-security-wg/core/1.json"));
    }
}
