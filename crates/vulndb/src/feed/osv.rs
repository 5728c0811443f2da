//! OSV JSON (<https://ossf.github.io/osv-schema/>): single records and the per-ecosystem
//! `all.zip` archives.
//!
//! Mapping: `affected[].package.ecosystem` through [`EcoKind::parse_osv`] (entries of unknown
//! ecosystems are dropped and counted as ignored); `ECOSYSTEM`/`SEMVER` ranges become [`Range`]s
//! with their events in source order (`GIT` ranges are dropped and counted); `versions`,
//! `withdrawn` (any non-empty value), `aliases` plus Ubuntu's `upstream` ids, `severity[]` CVSS
//! vectors (v3.x and v2 scored here) and the Ubuntu priority (`{"type": "Ubuntu"}`),
//! `database_specific.severity` (GHSA's `HIGH`/`MODERATE`) as the overall rating, per-package
//! ratings from `ecosystem_specific.severity`, `ecosystem_specific.ubuntu_priority` or
//! `database_specific.severity`, summary (else the first line of `details`), dates and reference
//! URLs.
//!
//! Go: the Go vulnerability database names the standard library module `stdlib` and the `go`
//! command `toolchain`; these names are kept as they are (the SBOM reports Go binaries' standard
//! library as package `stdlib`), with the versions as OSV writes them (`1.21.0`, no `v`).
//! `ecosystem_specific.custom_ranges` (pseudo-version fixes) are not used.
//!
//! Package status: `Affected` when every range is open-ended (no fix published, as for many
//! Ubuntu entries), otherwise `Fixed` (match by ranges/versions).

use std::io::{Read, Seek};

use serde_json::Value;

use super::util::{array_field, first_line, push_unique, str_field, string_field, string_list};
use super::{archive, cvss, FeedError, FeedKind, Parsed};
use crate::record::{Advisory, Affected, EcoKind, Event, Range, RangeKind, Severity};

/// [`Advisory::source`] of OSV records.
pub const SOURCE: &str = "osv";

/// Parse one OSV JSON document: a record, or an array of records.
pub fn parse_json(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| FeedError::format(file, FeedKind::OsvJson, e.to_string()))?;
    let mut out = Parsed::default();
    match v {
        Value::Array(items) => {
            for item in &items {
                add(file, item, &mut out)?;
            }
        }
        Value::Object(_) => {
            if v.get("id").and_then(Value::as_str).is_none() {
                return Err(FeedError::format(file, FeedKind::OsvJson, "no \"id\""));
            }
            add(file, &v, &mut out)?;
        }
        _ => return Err(FeedError::format(file, FeedKind::OsvJson, "not a JSON object")),
    }
    Ok(out)
}

fn add(file: &str, v: &Value, out: &mut Parsed<Advisory>) -> Result<(), FeedError> {
    match advisory_from_value(v, &mut out.ignored) {
        Ok(Some(a)) => out.push(file, a)?,
        Ok(None) => out.ignored += 1,
        Err(reason) => {
            tracing::debug!(file, %reason, "OSV record skipped");
            out.skipped += 1;
        }
    }
    Ok(())
}

/// Parse an OSV `all.zip`: every `*.json` entry is one record; unparsable entries are skipped
/// and counted.
pub fn parse_zip<R: Read + Seek>(file: &str, reader: R) -> Result<Parsed<Advisory>, FeedError> {
    let mut out = Parsed::default();
    let walk = archive::walk_zip(
        file,
        FeedKind::OsvZip,
        reader,
        |name| name.to_ascii_lowercase().ends_with(".json"),
        |name, content| {
            match serde_json::from_slice::<Value>(content) {
                Ok(v) => add(file, &v, &mut out)?,
                Err(e) => {
                    tracing::debug!(file, entry = name, error = %e, "bad JSON in OSV archive entry");
                    out.skipped += 1;
                }
            }
            Ok(())
        },
    )?;
    out.skipped += walk.skipped;
    Ok(out)
}

fn severity_opt(s: &str) -> Option<Severity> {
    Severity::rating(s)
}

/// Who scored the CVSS vectors of an OSV record, from its id prefix (`GHSA-…` → `ghsa`).
fn cvss_source(id: &str) -> String {
    match id.split_once('-') {
        Some((p, _)) if !p.is_empty() => p.to_ascii_lowercase(),
        _ => SOURCE.to_string(),
    }
}

/// Add the CVSS entries of a `severity` array; returns a non-CVSS rating (Ubuntu priority) if any.
fn read_severity_list(list: &[Value], source: &str, cvss_out: &mut Vec<crate::record::Cvss>) -> Option<Severity> {
    let mut rating = None;
    for s in list {
        let (Some(ty), Some(score)) = (str_field(s, "type"), str_field(s, "score")) else { continue };
        match ty {
            "CVSS_V2" | "CVSS_V3" | "CVSS_V4" => {
                if let Some(c) = cvss::from_vector(score, source) {
                    if !cvss_out.iter().any(|x| x.vector == c.vector) {
                        cvss_out.push(c);
                    }
                }
            }
            "Ubuntu" => rating = rating.or_else(|| severity_opt(score)),
            _ => {}
        }
    }
    rating
}

/// Convert one OSV record. `Ok(None)` when the record listed affected packages but none was
/// usable (unknown ecosystems only) and it is not withdrawn; `Err` for a malformed record. Dropped parts are added to
/// `ignored`.
pub fn advisory_from_value(v: &Value, ignored: &mut usize) -> Result<Option<Advisory>, String> {
    if !v.is_object() {
        return Err("record is not an object".into());
    }
    let id = string_field(v, "id").ok_or("record has no id")?;
    let mut aliases = Vec::new();
    for a in string_list(v, "aliases").iter().chain(string_list(v, "upstream").iter()) {
        push_unique(&mut aliases, a, &id);
    }
    let summary = match str_field(v, "summary") {
        Some(s) => first_line(s),
        None => str_field(v, "details").map(first_line).unwrap_or_default(),
    };
    let withdrawn = match v.get("withdrawn") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    let source = cvss_source(&id);
    let mut cvss = Vec::new();
    let mut severity = read_severity_list(array_field(v, "severity"), &source, &mut cvss);
    if let Some(s) = v.get("database_specific").and_then(|d| str_field(d, "severity")).and_then(severity_opt) {
        severity = Some(s);
    }
    let references = array_field(v, "references").iter().filter_map(|r| string_field(r, "url")).collect();

    let listed = array_field(v, "affected");
    let mut affected = Vec::new();
    for a in listed {
        match affected_from_value(a, &source, &mut cvss, ignored) {
            Some(af) => affected.push(af),
            None => *ignored += 1,
        }
    }
    if !listed.is_empty() && affected.is_empty() && !withdrawn {
        return Ok(None);
    }
    Ok(Some(Advisory {
        id,
        aliases,
        summary,
        severity,
        cvss,
        published: string_field(v, "published"),
        modified: string_field(v, "modified"),
        withdrawn,
        references,
        affected,
        source: SOURCE.to_string(),
    }))
}

fn affected_from_value(
    a: &Value,
    source: &str,
    cvss_out: &mut Vec<crate::record::Cvss>,
    ignored: &mut usize,
) -> Option<Affected> {
    let pkg = a.get("package")?;
    let eco_text = str_field(pkg, "ecosystem")?;
    let Some((ecosystem, release)) = EcoKind::parse_osv(eco_text) else {
        tracing::debug!(ecosystem = eco_text, "unknown OSV ecosystem");
        return None;
    };
    let package = string_field(pkg, "name")?;
    let mut ranges = Vec::new();
    for r in array_field(a, "ranges") {
        let kind = match str_field(r, "type") {
            Some("ECOSYSTEM") => RangeKind::Ecosystem,
            Some("SEMVER") => RangeKind::Semver,
            _ => {
                *ignored += 1;
                continue;
            }
        };
        let mut events = Vec::new();
        for e in array_field(r, "events") {
            let Some(obj) = e.as_object() else { continue };
            for (k, val) in obj {
                let Some(s) = val.as_str().map(str::trim).filter(|s| !s.is_empty()) else { continue };
                let ev = match k.as_str() {
                    "introduced" => Event::Introduced(s.to_string()),
                    "fixed" => Event::Fixed(s.to_string()),
                    "last_affected" => Event::LastAffected(s.to_string()),
                    "limit" => Event::Limit(s.to_string()),
                    _ => continue,
                };
                events.push(ev);
            }
        }
        if events.is_empty() {
            *ignored += 1;
            continue;
        }
        ranges.push(Range { kind, events });
    }
    let versions = string_list(a, "versions");
    if ranges.is_empty() && versions.is_empty() {
        return None;
    }
    let es = a.get("ecosystem_specific");
    let ds = a.get("database_specific");
    let mut severity = read_severity_list(array_field(a, "severity"), source, cvss_out);
    for (obj, key) in [(es, "severity"), (es, "ubuntu_priority"), (ds, "severity")] {
        if severity.is_none() {
            severity = obj.and_then(|o| str_field(o, key)).and_then(severity_opt);
        }
    }
    // Debian OSV style: `ecosystem_specific.urgency`.
    if severity.is_none() {
        severity = es.and_then(|o| str_field(o, "urgency")).map(|u| u.trim_end_matches('*')).and_then(severity_opt);
    }
    let status = super::util::status_from_ranges(&ranges);
    Some(Affected { ecosystem, release, package, ranges, versions, status, severity })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Status;

    #[test]
    fn feed_osv_record_mapping() {
        let rec = serde_json::json!({
            "id": "GHSA-xxxx-yyyy-zzzz",
            "aliases": ["CVE-2020-1", "GHSA-xxxx-yyyy-zzzz"],
            "details": "\nFirst line.\nSecond.",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
                         {"type": "CVSS_V4", "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}],
            "database_specific": {"severity": "MODERATE"},
            "affected": [
                {"package": {"ecosystem": "PyPI", "name": "x"},
                 "ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "0"}, {"fixed": "abc"}]},
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}],
                 "versions": ["1.0", "1.1"]},
                {"package": {"ecosystem": "Chainguard", "name": "y"}, "ranges": []},
                {"package": {"ecosystem": "Ubuntu:Pro:18.04:LTS", "name": "z"},
                 "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                 "ecosystem_specific": {"ubuntu_priority": "low"}}
            ],
            "withdrawn": "2024-01-01T00:00:00Z",
            "references": [{"type": "WEB", "url": "https://e.x"}, {"type": "WEB"}]
        });
        let mut ignored = 0;
        let a = advisory_from_value(&rec, &mut ignored).ok().flatten();
        let a = a.as_ref();
        assert_eq!(ignored, 2, "GIT range and unknown ecosystem");
        assert_eq!(a.map(|a| a.aliases.clone()), Some(vec!["CVE-2020-1".to_string()]));
        assert_eq!(a.map(|a| a.summary.as_str()), Some("First line."));
        assert_eq!(a.and_then(|a| a.severity), Some(Severity::Medium));
        assert_eq!(a.map(|a| a.withdrawn), Some(true));
        assert_eq!(a.map(|a| a.references.len()), Some(1));
        let cv: Vec<_> = a
            .map(|a| a.cvss.iter().map(|c| (c.version.clone(), c.score, c.source.clone())).collect())
            .unwrap_or_default();
        assert_eq!(
            cv,
            vec![("3.1".to_string(), Some(9.8), "ghsa".to_string()), ("4.0".to_string(), None, "ghsa".to_string())]
        );
        let af = a.map(|a| a.affected.clone()).unwrap_or_default();
        assert_eq!(af.len(), 2);
        assert_eq!(af[0].ranges.len(), 1);
        assert_eq!(af[0].ranges[0].events, vec![Event::Introduced("0".into()), Event::Fixed("1.2".into())]);
        assert_eq!(af[0].versions, vec!["1.0", "1.1"]);
        assert_eq!(af[0].status, Status::Fixed);
        assert_eq!((af[1].ecosystem, af[1].release.as_str()), (EcoKind::Ubuntu, "18.04"));
        assert_eq!(af[1].status, Status::Affected);
        assert_eq!(af[1].severity, Some(Severity::Low));
    }

    #[test]
    fn feed_osv_malformed() {
        let mut ig = 0;
        assert!(advisory_from_value(&serde_json::json!({"affected": []}), &mut ig).is_err());
        assert!(advisory_from_value(&serde_json::json!([1, 2]), &mut ig).is_err());
        // Only unknown ecosystems: no advisory.
        let only_unknown =
            serde_json::json!({"id": "X-1", "affected": [{"package": {"ecosystem": "Wolfi", "name": "a"}}]});
        assert_eq!(advisory_from_value(&only_unknown, &mut ig), Ok(None));
        // Wrong types in optional fields are tolerated.
        let odd = serde_json::json!({"id": "X-2", "aliases": "CVE-1", "severity": {"a": 1}, "references": null,
            "affected": [{"package": {"ecosystem": "npm", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": 5}, {"fixed": "1.0.0"}]}]}]});
        let a = advisory_from_value(&odd, &mut ig).ok().flatten();
        assert_eq!(a.map(|a| a.affected[0].ranges[0].events.clone()), Some(vec![Event::Fixed("1.0.0".into())]));
        assert!(parse_json("f", b"not json").is_err());
        assert!(parse_json("f", b"{\"x\": 1}").is_err());
        assert!(parse_json("f", b"42").is_err());
        let arr = parse_json("f", br#"[{"id": "A-1", "affected": []}, {"nope": 1}]"#).ok();
        assert_eq!(arr.map(|p| (p.records.len(), p.skipped)), Some((1, 1)));
    }
}
