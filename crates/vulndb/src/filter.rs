//! Filters and suppressions: severities, unfixed, statuses, an ignore file
//! (plain `.trivyignore`-style or YAML) and OpenVEX documents. Every
//! suppression keeps its reason so reports can show what was hidden and why.

use crate::matcher::Finding;
use crate::record::{Severity, Status};
use palisade_model::Purl;
use serde::Serialize;
use std::collections::BTreeSet;

/// One ignore rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IgnoreRule {
    /// Vulnerability ID (any alias matches).
    pub id: String,
    /// Limit to these package URLs (compared without qualifiers; versionless matches any version).
    pub purls: Vec<String>,
    /// Expiry date `YYYY-MM-DD` (the rule stops applying after it).
    pub expires: Option<String>,
    /// Why.
    pub statement: String,
}

/// A VEX statement that suppresses findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexStatement {
    /// Vulnerability ID.
    pub vulnerability: String,
    /// Products (PURLs); empty = every product.
    pub products: Vec<String>,
    /// `not_affected` or `fixed` (others do not suppress).
    pub status: String,
    /// Justification or impact statement.
    pub justification: String,
}

/// What to keep.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Keep only these severities (None = all).
    pub severities: Option<BTreeSet<Severity>>,
    /// Drop findings without a fixed version.
    pub ignore_unfixed: bool,
    /// Drop findings with these statuses.
    pub ignore_status: BTreeSet<Status>,
    /// Ignore rules.
    pub ignores: Vec<IgnoreRule>,
    /// VEX statements.
    pub vex: Vec<VexStatement>,
}

/// A finding that was suppressed, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suppressed {
    /// The finding's ID.
    pub id: String,
    /// Package.
    pub package: String,
    /// Installed version.
    pub installed: String,
    /// Why it was suppressed (`vex: not_affected (vulnerable_code_not_present)`, `ignore file: ...`).
    pub reason: String,
}

/// Errors reading ignore files or VEX documents.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not parseable.
    #[error("{what}: {reason}")]
    Invalid {
        /// Which document.
        what: String,
        /// Why.
        reason: String,
    },
}

fn purl_base(s: &str) -> (String, Option<String>) {
    match Purl::parse(s) {
        Some(p) => (format!("{}/{}", p.kind, p.package_name().to_lowercase()), p.version),
        None => (s.to_lowercase(), None),
    }
}

fn purl_matches(rule: &str, finding_purl: &str) -> bool {
    let (rb, rv) = purl_base(rule);
    let (fb, fv) = purl_base(finding_purl);
    rb == fb && (rv.is_none() || rv == fv)
}

/// Parse an ignore file: YAML (`vulnerabilities: [{id, purls, statement, expired_at}]`) or plain
/// lines (`ID [exp:YYYY-MM-DD]`, `#` comments).
pub fn parse_ignore_file(name: &str, text: &str) -> Result<Vec<IgnoreRule>, PolicyError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with("vulnerabilities:") || trimmed.starts_with("---") {
        let v: serde_json::Value = palisade_yaml::from_str(text)
            .map_err(|e| PolicyError::Invalid { what: name.into(), reason: e.to_string() })?;
        let list = v.get("vulnerabilities").and_then(|l| l.as_array()).cloned().unwrap_or_default();
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let id = item.get("id").and_then(|x| x.as_str()).ok_or_else(|| PolicyError::Invalid {
                what: name.into(),
                reason: format!("entry {} has no id", i + 1),
            })?;
            let purls = item
                .get("purls")
                .and_then(|p| p.as_array())
                .map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            out.push(IgnoreRule {
                id: id.to_string(),
                purls,
                expires: item.get("expired_at").and_then(|x| x.as_str()).map(str::to_string),
                statement: item.get("statement").and_then(|x| x.as_str()).unwrap_or("").to_string(),
            });
        }
        return Ok(out);
    }
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let id = parts.next().unwrap_or("").to_string();
            let expires = parts.find_map(|p| p.strip_prefix("exp:")).map(str::to_string);
            IgnoreRule { id, purls: Vec::new(), expires, statement: String::new() }
        })
        .collect())
}

/// Parse an OpenVEX document (v0.0.1 and v0.2.0 shapes).
pub fn parse_openvex(name: &str, data: &[u8]) -> Result<Vec<VexStatement>, PolicyError> {
    let v: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| PolicyError::Invalid { what: name.into(), reason: e.to_string() })?;
    let stmts = v.get("statements").and_then(|s| s.as_array()).ok_or_else(|| PolicyError::Invalid {
        what: name.into(),
        reason: "no statements array (not an OpenVEX document)".into(),
    })?;
    let mut out = Vec::new();
    for s in stmts {
        let vuln = match &s["vulnerability"] {
            serde_json::Value::String(x) => x.clone(),
            o => o["name"].as_str().or_else(|| o["@id"].as_str()).unwrap_or("").to_string(),
        };
        if vuln.is_empty() {
            continue;
        }
        let mut products = Vec::new();
        for p in s["products"].as_array().into_iter().flatten() {
            match p {
                serde_json::Value::String(x) => products.push(x.clone()),
                o => {
                    let subs: Vec<String> = o["subcomponents"]
                        .as_array()
                        .map(|a| {
                            a.iter().filter_map(|x| x["@id"].as_str().or(x.as_str()).map(str::to_string)).collect()
                        })
                        .unwrap_or_default();
                    if subs.is_empty() {
                        if let Some(id) = o["@id"].as_str() {
                            products.push(id.to_string());
                        }
                    } else {
                        products.extend(subs);
                    }
                }
            }
        }
        let justification =
            s["justification"].as_str().or_else(|| s["impact_statement"].as_str()).unwrap_or("").to_string();
        out.push(VexStatement {
            vulnerability: vuln,
            products,
            status: s["status"].as_str().unwrap_or("").to_string(),
            justification,
        });
    }
    Ok(out)
}

/// Apply `policy` (today is `YYYY-MM-DD`, for expiries). Returns kept and suppressed findings.
pub fn apply(findings: Vec<Finding>, policy: &Policy, today: &str) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for f in findings {
        let reason = suppression(&f, policy, today);
        match reason {
            Some(reason) => suppressed.push(Suppressed {
                id: f.id.clone(),
                package: f.package.clone(),
                installed: f.installed.clone(),
                reason,
            }),
            None => kept.push(f),
        }
    }
    (kept, suppressed)
}

fn suppression(f: &Finding, policy: &Policy, today: &str) -> Option<String> {
    if let Some(sev) = &policy.severities {
        if !sev.contains(&f.severity) {
            return Some(format!("severity {} not selected", f.severity.as_str()));
        }
    }
    if policy.ignore_unfixed && f.fixed_versions.is_empty() {
        return Some("no fix available (--ignore-unfixed)".into());
    }
    if policy.ignore_status.contains(&f.status) {
        return Some(format!("status {:?} ignored", f.status));
    }
    for r in &policy.ignores {
        if !f.ids.iter().any(|i| i.eq_ignore_ascii_case(&r.id)) {
            continue;
        }
        if r.expires.as_deref().is_some_and(|e| e < today) {
            continue;
        }
        if !r.purls.is_empty() && !r.purls.iter().any(|p| purl_matches(p, &f.purl)) {
            continue;
        }
        let why = if r.statement.is_empty() { String::new() } else { format!(": {}", r.statement) };
        return Some(format!("ignore file ({}){why}", r.id));
    }
    for s in &policy.vex {
        if s.status != "not_affected" && s.status != "fixed" {
            continue;
        }
        if !f.ids.iter().any(|i| i.eq_ignore_ascii_case(&s.vulnerability)) {
            continue;
        }
        if !s.products.is_empty() && !s.products.iter().any(|p| purl_matches(p, &f.purl)) {
            continue;
        }
        let j = if s.justification.is_empty() { String::new() } else { format!(" ({})", s.justification) };
        return Some(format!("vex: {}{j}", s.status));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_model::PackageType;

    fn finding(id: &str, purl: &str, sev: Severity, fixed: &[&str]) -> Finding {
        Finding {
            id: id.into(),
            ids: vec![id.into(), "GHSA-aaaa-bbbb-cccc".into()],
            package: "lodash".into(),
            kind: PackageType::Npm,
            purl: purl.into(),
            installed: "4.17.15".into(),
            source_package: None,
            fixed_versions: fixed.iter().map(|s| s.to_string()).collect(),
            status: Status::Fixed,
            severity: sev,
            severity_source: "ghsa".into(),
            cvss: None,
            kev: None,
            epss: None,
            summary: String::new(),
            found_in: "/app/package-lock.json".into(),
            also_in: vec![],
            layer: String::new(),
            remediation: String::new(),
            data_sources: vec![],
            references: vec![],
        }
    }

    #[test]
    fn ignore_files_plain_and_yaml() {
        let plain = "# comment\nCVE-2020-8203\nCVE-2019-10744 exp:2020-01-01\n\n";
        let r = parse_ignore_file(".palisadeignore", plain).unwrap_or_default();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].expires.as_deref(), Some("2020-01-01"));
        let yaml = "vulnerabilities:\n  - id: GHSA-aaaa-bbbb-cccc\n    purls: [\"pkg:npm/lodash@4.17.15\"]\n    statement: not reachable\n";
        let r = parse_ignore_file("x.yaml", yaml).unwrap_or_default();
        assert_eq!(r[0].purls.len(), 1);
        let policy = Policy { ignores: r, ..Default::default() };
        let (kept, sup) = apply(
            vec![finding("CVE-2020-8203", "pkg:npm/lodash@4.17.15", Severity::High, &["4.17.19"])],
            &policy,
            "2026-01-01",
        );
        assert!(kept.is_empty());
        assert!(sup[0].reason.contains("not reachable"));
        let (kept, _) =
            apply(vec![finding("CVE-2020-8203", "pkg:npm/lodash@4.17.21", Severity::High, &[])], &policy, "2026-01-01");
        assert_eq!(kept.len(), 1, "rule limited to another version");
        assert!(parse_ignore_file("x", "vulnerabilities:\n  - purls: []\n").is_err());
    }

    #[test]
    fn expiry_severity_unfixed_and_vex() {
        let rules = parse_ignore_file("f", "CVE-1 exp:2020-01-01\n").unwrap_or_default();
        let policy = Policy { ignores: rules, ..Default::default() };
        let (kept, _) =
            apply(vec![finding("CVE-1", "pkg:npm/lodash@4.17.15", Severity::High, &[])], &policy, "2026-01-01");
        assert_eq!(kept.len(), 1, "expired rule no longer applies");
        let policy = Policy { severities: Some([Severity::Critical].into()), ..Default::default() };
        assert!(apply(vec![finding("CVE-1", "p", Severity::High, &[])], &policy, "x").0.is_empty());
        let policy = Policy { ignore_unfixed: true, ..Default::default() };
        assert!(apply(vec![finding("CVE-1", "p", Severity::High, &[])], &policy, "x").0.is_empty());
        let vex = br#"{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
            {"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:oci/app","subcomponents":[{"@id":"pkg:npm/lodash"}]}],
             "status":"not_affected","justification":"vulnerable_code_not_in_execute_path"},
            {"vulnerability":{"name":"CVE-2"},"products":[{"@id":"pkg:npm/lodash@4.17.15"}],"status":"under_investigation"}]}"#;
        let st = parse_openvex("vex.json", vex).unwrap_or_default();
        let policy = Policy { vex: st, ..Default::default() };
        let (kept, sup) = apply(
            vec![
                finding("CVE-1", "pkg:npm/lodash@4.17.15", Severity::High, &[]),
                finding("CVE-2", "pkg:npm/lodash@4.17.15", Severity::High, &[]),
            ],
            &policy,
            "x",
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(sup[0].reason, "vex: not_affected (vulnerable_code_not_in_execute_path)");
        assert!(parse_openvex("x", b"{}").is_err());
    }
}
