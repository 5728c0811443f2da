//! Vulnerability reports: table (grouped by package, counts per severity),
//! JSON, SARIF 2.1.0 and the CycloneDX 1.6 `vulnerabilities` section.

use crate::filter::Suppressed;
use crate::matcher::Finding;
use crate::record::Severity;
use palisade_model::{OsInfo, Target};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was scanned.
    pub target: Target,
    /// OS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    /// Database facts.
    pub db: DbFacts,
    /// Counts per severity of the kept findings.
    pub summary: BTreeMap<String, usize>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// Suppressed findings with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<Suppressed>,
    /// Warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Database provenance in a report.
#[derive(Debug, Clone, Serialize)]
pub struct DbFacts {
    /// Path.
    pub path: String,
    /// Built at.
    pub built_at: String,
}

/// Counts per severity, highest first.
pub fn summarize(findings: &[Finding]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f.severity.as_str().to_string()).or_insert(0) += 1;
    }
    m
}

const ORDER: [Severity; 6] =
    [Severity::Critical, Severity::High, Severity::Medium, Severity::Low, Severity::Negligible, Severity::Unknown];

fn counts_line(findings: &[Finding]) -> String {
    let parts: Vec<String> = ORDER
        .iter()
        .map(|s| format!("{}: {}", s.as_str(), findings.iter().filter(|f| f.severity == *s).count()))
        .collect();
    format!("Total: {} ({})", findings.len(), parts.join(", "))
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// A table grouped by package.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    // Everything printed here came from the image or a feed: escape control characters.
    use palisade_model::terminal_safe as t;
    let _ = write!(out, "{}", t(&r.target.name));
    if let Some(os) = &r.os {
        let _ = write!(out, " ({} {})", t(&os.family), t(&os.version));
    }
    let _ = writeln!(out, "\n{}", counts_line(&r.findings));
    let mut groups: BTreeMap<(String, String, String, String), Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        groups
            .entry((f.kind.to_string(), f.package.clone(), f.installed.clone(), f.found_in.clone()))
            .or_default()
            .push(f);
    }
    for ((kind, pkg, ver, path), fs) in &groups {
        let _ = writeln!(
            out,
            "\n{} {} ({kind}, {}) — {}",
            t(pkg),
            t(ver),
            t(path),
            counts_line(&fs.iter().map(|f| (*f).clone()).collect::<Vec<_>>())
        );
        let _ = writeln!(
            out,
            "  {:<20} {:<10} {:<13} {:<22} {:<14} TITLE",
            "ID", "SEVERITY", "STATUS", "FIXED IN", "EXPLOIT"
        );
        for f in fs {
            let exploit = match (&f.kev, &f.epss) {
                (Some(_), Some(e)) => format!("KEV EPSS {:.2}", e.score),
                (Some(_), None) => "KEV".to_string(),
                (None, Some(e)) => format!("EPSS {:.2}", e.score),
                (None, None) => String::new(),
            };
            let status =
                serde_json::to_value(f.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<20} {:<10} {:<13} {:<22} {:<14} {}",
                t(&f.id),
                f.severity.as_str(),
                status,
                t(&trunc(&f.fixed_versions.join(", "), 22)),
                exploit,
                t(&trunc(&f.summary, 70))
            );
        }
    }
    if !r.suppressed.is_empty() {
        let _ = writeln!(out, "\n{} finding(s) suppressed:", r.suppressed.len());
        for s in &r.suppressed {
            let _ = writeln!(out, "  {} {} {}: {}", t(&s.id), t(&s.package), t(&s.installed), t(&s.reason));
        }
    }
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {}", t(w));
    }
    out
}

/// Native JSON.
pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        _ => "note",
    }
}

fn security_severity(f: &Finding) -> String {
    if let Some(score) = f.cvss.as_ref().and_then(|c| c.score) {
        return format!("{score:.1}");
    }
    match f.severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        _ => "0.0",
    }
    .to_string()
}

/// SARIF 2.1.0.
pub fn sarif(r: &Report, version: &str) -> String {
    let mut rules: BTreeMap<String, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for f in &r.findings {
        rules.entry(f.id.clone()).or_insert_with(|| {
            json!({
                "id": f.id,
                "name": "VulnerablePackage",
                "shortDescription": {"text": format!("{} ({})", f.id, trunc(&f.summary, 120))},
                "fullDescription": {"text": if f.summary.is_empty() { f.id.clone() } else { f.summary.clone() }},
                "helpUri": f.references.first().cloned().unwrap_or_else(|| format!("https://osv.dev/vulnerability/{}", f.id)),
                "help": {"text": f.remediation, "markdown": format!("**{}** {}\n\n{}", f.id, f.summary, f.remediation)},
                "defaultConfiguration": {"level": sarif_level(f.severity)},
                "properties": {"security-severity": security_severity(f), "tags": ["vulnerability", "security", f.severity.as_str()],
                               "precision": "very-high"},
            })
        });
        let uri = f.found_in.trim_start_matches('/');
        results.push(json!({
            "ruleId": f.id,
            "level": sarif_level(f.severity),
            "message": {"text": format!(
                "Package {} {} ({}) is affected by {} ({}).{} {}",
                f.package, f.installed, f.kind, f.ids.join(", "), f.severity.as_str(),
                if f.fixed_versions.is_empty() { " No fix yet.".to_string() } else { format!(" Fixed in {}.", f.fixed_versions.join(", ")) },
                f.remediation)},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": if uri.is_empty() { r.target.name.clone() } else { uri.to_string() }}},
                "logicalLocations": [{"fullyQualifiedName": format!("{}@{}", r.target.name, f.purl), "kind": "package"}],
            }],
            "partialFingerprints": {"palisade/v1": format!("{}:{}:{}", f.id, f.purl, f.found_in)},
        }));
    }
    let rules: Vec<Value> = rules.into_values().collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "palisade", "version": version, "informationUri": "https://example.invalid/palisade", "rules": rules}},
            "results": results,
            "properties": {"target": r.target.name, "imageDigest": r.target.digest},
        }],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn cdx_method(v: &str) -> &'static str {
    match v {
        "4.0" => "CVSSv4",
        "3.1" => "CVSSv31",
        "3.0" => "CVSSv3",
        "2.0" => "CVSSv2",
        _ => "other",
    }
}

/// Add the CycloneDX 1.6 `vulnerabilities` section to a CycloneDX document whose component
/// `bom-ref`s are the packages' PURLs (as `palisade_sbom::format::cyclonedx` writes them).
pub fn add_cyclonedx_vulnerabilities(doc: &mut Value, r: &Report) {
    let mut vulns: BTreeMap<String, Value> = BTreeMap::new();
    for f in &r.findings {
        let entry = vulns.entry(f.id.clone()).or_insert_with(|| {
            let mut ratings = Vec::new();
            if let Some(c) = &f.cvss {
                ratings.push(json!({"source": {"name": c.source}, "score": c.score, "method": cdx_method(&c.version), "vector": c.vector,
                                    "severity": Severity::from_cvss(c.score.unwrap_or(0.0)).as_str().to_lowercase()}));
            }
            ratings.push(json!({"source": {"name": f.severity_source}, "severity": match f.severity {
                Severity::Negligible => "info".to_string(), s => s.as_str().to_lowercase() }}));
            let mut props = Vec::new();
            if let Some(k) = &f.kev {
                props.push(json!({"name": "palisade:kev:date_added", "value": k.date_added}));
                props.push(json!({"name": "palisade:kev:due_date", "value": k.due_date}));
            }
            if let Some(e) = &f.epss {
                props.push(json!({"name": "palisade:epss:score", "value": format!("{:.5}", e.score)}));
                props.push(json!({"name": "palisade:epss:percentile", "value": format!("{:.5}", e.percentile)}));
            }
            json!({
                "bom-ref": format!("vuln:{}", f.id),
                "id": f.id,
                "source": {"name": f.data_sources.first().cloned().unwrap_or_default()},
                "references": f.ids.iter().filter(|i| **i != f.id).map(|i| json!({"id": i, "source": {"name": id_source(i)}})).collect::<Vec<_>>(),
                "ratings": ratings,
                "description": f.summary,
                "recommendation": f.remediation,
                "advisories": f.references.iter().map(|u| json!({"url": u})).collect::<Vec<_>>(),
                "affects": [],
                "properties": props,
            })
        });
        if let Some(a) = entry["affects"].as_array_mut() {
            a.push(json!({"ref": f.purl, "versions": [{"version": f.installed, "status": "affected"}]}));
        }
    }
    doc["vulnerabilities"] = Value::Array(vulns.into_values().collect());
}

fn id_source(id: &str) -> &'static str {
    if id.starts_with("CVE-") {
        "NVD"
    } else if id.starts_with("GHSA-") {
        "GitHub"
    } else if id.starts_with("GO-") {
        "Go Vulnerability Database"
    } else if id.starts_with("RUSTSEC-") {
        "RustSec"
    } else if id.starts_with("PYSEC-") {
        "PyPA"
    } else {
        "OSV"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_escapes_terminal_control_sequences_from_the_image() {
        let r = Report {
            target: Target { name: "evil\u{1b}]0;owned\u{7}:1.0".into(), ..Target::default() },
            os: Some(OsInfo { family: "alpine\u{1b}[2J".into(), version: "3.19\u{202e}".into(), ..OsInfo::default() }),
            db: DbFacts { path: "db".into(), built_at: String::new() },
            summary: BTreeMap::new(),
            findings: Vec::new(),
            suppressed: Vec::new(),
            warnings: vec!["package \u{9b}31m name".into()],
        };
        let text = table(&r);
        assert!(!text.chars().any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{9b}' || c == '\u{202e}'), "{text:?}");
        assert!(text.contains("evil\\u{1b}]0;owned\\u{7}:1.0"), "{text}");
        assert!(text.contains("alpine\\u{1b}[2J 3.19\\u{202e}"), "{text}");
        assert!(text.contains("package \\u{9b}31m name"), "{text}");
    }
}
