//! Alpine secdb (`https://secdb.alpinelinux.org/v3.18/main.json`, or the repository's YAML):
//! `{"distroversion": "v3.10", "packages": [{"pkg": {"name": …, "secfixes": {"1.1.1d-r2":
//! ["CVE-2019-1547"], "0": ["CVE-…"]}}}]}`.
//!
//! One [`Advisory`] per (package, id) with one [`Affected`] (ecosystem Alpine, release
//! `major.minor`, the origin package name): ranges `[Introduced("0"), Fixed(version)]` and status
//! `Fixed`, or — under the `"0"` key, meaning the release was never affected — status
//! `NotAffected` and no ranges.
//!
//! A secfix string may hold several ids and notes (`"CVE-2018-7540 XSA-252"`,
//! `"CVE-2018-14461 (LDP)"`): it is split on whitespace, parenthesised notes are dropped (counted
//! as ignored), each CVE id becomes an advisory and the other ids of the string (XSA, TALOS)
//! become its aliases; a string with no CVE makes one advisory per id. When one id is listed
//! under several versions of the same package, the lowest fixed version is kept (a fixed
//! version wins over `"0"`); the others are counted as ignored.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::util::{self, object_field, str_field};
use super::{constraint, FeedError, FeedKind, Parsed};
use crate::record::{alpine_release, Advisory, Affected, EcoKind, Event, Range, RangeKind, Status};

/// [`Advisory::source`] of Alpine secdb records.
pub const SOURCE: &str = "alpine-secdb";

/// Split one secfix string into (CVE ids, other ids, number of non-id words).
fn split_ids(s: &str) -> (Vec<String>, Vec<String>, usize) {
    let mut cves = Vec::new();
    let mut others = Vec::new();
    let mut notes = 0;
    let mut depth = 0usize;
    for word in s.split_whitespace() {
        let opens = word.matches('(').count();
        let closes = word.matches(')').count();
        if depth > 0 || opens > 0 {
            if depth == 0 {
                notes += 1;
            }
            depth = (depth + opens).saturating_sub(closes);
            continue;
        }
        let w = word.trim_matches(|c: char| c == ',' || c == ';');
        let mut w = if let Some(rest) = w.strip_prefix("CVE_") { format!("CVE-{rest}") } else { w.to_string() };
        // `CVE-2017-17434-1` (a part of a CVE fixed separately), `CVE-2019-19451.patch`: the CVE
        // is what matters.
        if w.starts_with("CVE-") && !util::looks_like_id(&w) {
            if let Some(base) = cve_prefix(&w) {
                w = base;
            }
        }
        if !util::looks_like_id(&w) {
            notes += 1;
        } else if w.starts_with("CVE-") {
            if !cves.contains(&w) {
                cves.push(w);
            }
        } else if !others.contains(&w) {
            others.push(w);
        }
    }
    (cves, others, notes)
}

/// The leading `CVE-YYYY-NNNN…` of a longer token.
fn cve_prefix(w: &str) -> Option<String> {
    let rest = w.strip_prefix("CVE-")?;
    let year: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let num: String = rest.get(year.len()..)?.strip_prefix('-')?.chars().take_while(char::is_ascii_digit).collect();
    let id = format!("CVE-{year}-{num}");
    util::looks_like_id(&id).then_some(id)
}

/// Parse an Alpine secdb document (JSON, or YAML when it does not start with `{`).
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let bad = |r: String| FeedError::format(file, FeedKind::AlpineSecdb, r);
    let first = data.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let doc: Value = if first == Some(b'{') {
        serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?
    } else {
        util::parse_yaml(data).map_err(bad)?
    };
    let distro = str_field(&doc, "distroversion").ok_or_else(|| bad("no \"distroversion\"".into()))?;
    let packages = doc.get("packages").and_then(Value::as_array).ok_or_else(|| bad("no \"packages\" array".into()))?;
    let release = alpine_release(distro);

    let mut out = Parsed::default();
    // (package, id) → index in out.records
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for p in packages {
        let pkg = p.get("pkg").unwrap_or(p);
        let Some(name) = str_field(pkg, "name") else {
            out.skipped += 1;
            continue;
        };
        let Some(secfixes) = object_field(pkg, "secfixes") else {
            if pkg.get("secfixes").is_some_and(|s| !s.is_null()) {
                out.skipped += 1;
            }
            continue;
        };
        for (version, ids) in secfixes {
            let version = version.trim();
            let list: Vec<&str> = match ids {
                Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
                Value::String(s) => vec![s.as_str()],
                Value::Null => Vec::new(),
                _ => {
                    out.skipped += 1;
                    continue;
                }
            };
            if version.is_empty() || version.chars().any(char::is_whitespace) {
                out.skipped += 1;
                continue;
            }
            for text in list {
                let (cves, others, notes) = split_ids(text);
                out.ignored += notes;
                let groups: Vec<(String, Vec<String>)> = if cves.is_empty() {
                    others.into_iter().map(|o| (o, Vec::new())).collect()
                } else {
                    cves.into_iter().map(|c| (c, others.clone())).collect()
                };
                for (id, aliases) in groups {
                    let key = (name.to_string(), id.clone());
                    if let Some(&i) = seen.get(&key) {
                        let existing: &mut Advisory = &mut out.records[i];
                        if prefer(version, &existing.affected[0]) {
                            existing.affected[0] = affected(&release, name, version);
                        }
                        for a in aliases {
                            util::push_unique(&mut existing.aliases, &a, &id);
                        }
                        out.ignored += 1;
                        continue;
                    }
                    seen.insert(key, out.records.len());
                    out.push(
                        file,
                        Advisory {
                            id,
                            aliases,
                            summary: String::new(),
                            severity: None,
                            cvss: Vec::new(),
                            published: None,
                            modified: None,
                            withdrawn: false,
                            references: Vec::new(),
                            affected: vec![affected(&release, name, version)],
                            source: SOURCE.to_string(),
                        },
                    )?;
                }
            }
        }
    }
    Ok(out)
}

fn affected(release: &str, name: &str, version: &str) -> Affected {
    let (ranges, status) = if version == "0" {
        (Vec::new(), Status::NotAffected)
    } else {
        (
            vec![Range {
                kind: RangeKind::Ecosystem,
                events: vec![Event::Introduced("0".into()), Event::Fixed(version.to_string())],
            }],
            Status::Fixed,
        )
    };
    Affected {
        ecosystem: EcoKind::Alpine,
        release: release.to_string(),
        package: name.to_string(),
        ranges,
        versions: Vec::new(),
        status,
        severity: None,
    }
}

/// Whether fixed `version` should replace what `current` says.
fn prefer(version: &str, current: &Affected) -> bool {
    let current_fix = current.ranges.first().and_then(|r| {
        r.events.iter().find_map(|e| match e {
            Event::Fixed(v) => Some(v.as_str()),
            _ => None,
        })
    });
    match current_fix {
        None => version != "0",
        Some(_) if version == "0" => false,
        Some(cur) => constraint::order(EcoKind::Alpine, version, cur) == Some(Ordering::Less),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_alpine_split_ids() {
        assert_eq!(
            split_ids("CVE-2019-1547 CVE-2019-1549"),
            (vec!["CVE-2019-1547".into(), "CVE-2019-1549".into()], vec![], 0)
        );
        assert_eq!(split_ids("CVE-2018-7540 XSA-252"), (vec!["CVE-2018-7540".into()], vec!["XSA-252".into()], 0));
        assert_eq!(
            split_ids("CVE-2018-10103 (SMB - partially fixed, but SMB printing disabled)").0,
            vec!["CVE-2018-10103".to_string()]
        );
        assert_eq!(split_ids("XSA-248"), (vec![], vec!["XSA-248".into()], 0));
        assert_eq!(split_ids("CVE_2019_1").0, Vec::<String>::new());
        assert_eq!(split_ids("CVE_2019-1234").0, vec!["CVE-2019-1234".to_string()]);
        assert_eq!(split_ids("CVE-2017-17434-1").0, vec!["CVE-2017-17434".to_string()]);
        assert_eq!(split_ids("CVE-2019-19451.patch").0, vec!["CVE-2019-19451".to_string()]);
        assert_eq!(split_ids("CVE-20-1.patch").2, 1);
        assert_eq!(split_ids("CVE-2018-10103 (SMB - partially fixed) junk").2, 2);
    }

    #[test]
    fn feed_alpine_document() {
        let doc = br#"{"distroversion": "v3.12", "packages": [
            {"pkg": {"name": "a", "secfixes": {"1.0-r1": ["CVE-2020-0001 XSA-9", "CVE-2020-0002 (note)"], "0": ["CVE-2020-0003"], "0.9-r0": ["CVE-2020-0001"]}}},
            {"pkg": {"secfixes": {}}},
            {"pkg": {"name": "b", "secfixes": {"1.0-r0": 5, "2.0-r0": ["junk"]}}},
            {"pkg": {"name": "c"}}
        ]}"#;
        let p = parse("t", doc).unwrap_or_default();
        assert_eq!(p.skipped, 2, "nameless package and non-list secfix");
        let ids: Vec<_> = p.records.iter().map(|a| (a.id.as_str(), a.affected[0].status)).collect();
        assert_eq!(
            ids,
            vec![
                ("CVE-2020-0003", Status::NotAffected),
                ("CVE-2020-0001", Status::Fixed),
                ("CVE-2020-0002", Status::Fixed)
            ]
        );
        // CVE-1 appears under 0.9-r0 and 1.0-r1: the lower fix is kept.
        assert_eq!(p.records[1].affected[0].ranges[0].events[1], Event::Fixed("0.9-r0".into()));
        assert_eq!(p.records[1].aliases, vec!["XSA-9".to_string()]);
        assert_eq!(p.records[1].affected[0].release, "3.12");
        assert!(p.records[0].affected[0].ranges.is_empty());
        assert!(parse("t", b"{\"packages\": []}").is_err());
        assert!(parse("t", b"\x00\x01garbage").is_err());
        assert!(parse("t", b"[1,2]").is_err());
    }
}
