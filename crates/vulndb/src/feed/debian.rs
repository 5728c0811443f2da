//! Debian security tracker: the JSON export (`https://security-tracker.debian.org/tracker/data/json`)
//! and the `data/DSA/list` (or `DLA/list`) text.
//!
//! Tracker JSON: `{srcpkg: {"CVE-…": {"description", "releases": {"bookworm": {"status",
//! "fixed_version", "urgency", "nodsa", "nodsa_reason", "repositories"}}}}}`. One [`Advisory`]
//! per (source package, id), one [`Affected`] per release (codename → number through
//! [`debian_release`]). Status:
//!
//! | tracker | status | ranges |
//! | --- | --- | --- |
//! | `resolved`, `fixed_version` `0` | `NotAffected` | none |
//! | `resolved`, `fixed_version` X | `Fixed` | `introduced 0, fixed X` |
//! | `open`, `nodsa_reason` `ignored` | `WillNotFix` | `introduced 0` |
//! | `open`, `nodsa_reason` `postponed` | `FixDeferred` | `introduced 0` |
//! | `open` / `undetermined`, urgency `end-of-life` | `EndOfLife` | `introduced 0` |
//! | `open` / `undetermined` otherwise | `Affected` | `introduced 0` |
//!
//! The urgency without its trailing `*`s is the per-release severity (`unimportant` →
//! negligible; `not yet assigned`, `end-of-life` → none). The document is read package by
//! package, so the tens-of-megabytes export is never held as one JSON tree.

use std::fmt;

use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::Value;

use super::util::{first_line, str_field};
use super::{FeedError, FeedKind, Parsed};
use crate::record::{debian_release, Advisory, Affected, EcoKind, Event, Range, RangeKind, Severity, Status};

/// [`Advisory::source`] of tracker JSON records.
pub const SOURCE: &str = "debian-tracker";
/// [`Advisory::source`] of DSA/DLA list records.
pub const DSA_SOURCE: &str = "debian-dsa";

/// Parse the tracker JSON export.
pub fn parse_tracker(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let mut out = Parsed::default();
    let mut err = None;
    let mut de = serde_json::Deserializer::from_slice(data);
    let res = de.deserialize_map(Tracker { file, out: &mut out, err: &mut err });
    if let Some(e) = err {
        return Err(e);
    }
    res.and_then(|()| de.end()).map_err(|e| FeedError::format(file, FeedKind::DebianTracker, e.to_string()))?;
    Ok(out)
}

struct Tracker<'a> {
    file: &'a str,
    out: &'a mut Parsed<Advisory>,
    err: &'a mut Option<FeedError>,
}

impl<'de> Visitor<'de> for Tracker<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of source packages")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(pkg) = map.next_key::<String>()? {
            let v: Value = map.next_value()?;
            let Value::Object(cves) = v else {
                self.out.skipped += 1;
                continue;
            };
            for (id, info) in &cves {
                match advisory(&pkg, id, info, &mut self.out.ignored) {
                    Ok(Some(a)) => {
                        if let Err(e) = self.out.push(self.file, a) {
                            *self.err = Some(e);
                            return Err(serde::de::Error::custom("record limit"));
                        }
                    }
                    Ok(None) => self.out.ignored += 1,
                    Err(reason) => {
                        tracing::debug!(file = self.file, package = %pkg, id = %id, %reason, "tracker entry skipped");
                        self.out.skipped += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

fn urgency_severity(u: &str) -> Option<Severity> {
    match u {
        "unimportant" => Some(Severity::Negligible),
        _ => Severity::rating(u),
    }
}

/// One tracker entry; `Ok(None)` when no release entry is usable.
fn advisory(pkg: &str, id: &str, info: &Value, ignored: &mut usize) -> Result<Option<Advisory>, String> {
    let id = id.trim();
    if id.is_empty() || pkg.trim().is_empty() {
        return Err("empty id or package".into());
    }
    if !info.is_object() {
        return Err("entry is not an object".into());
    }
    let releases = match info.get("releases") {
        Some(Value::Object(m)) => m.iter().collect::<Vec<_>>(),
        Some(Value::Array(a)) if a.is_empty() => Vec::new(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("\"releases\" is not an object".into()),
    };
    let mut affected = Vec::new();
    for (rel, r) in releases {
        match release_entry(pkg, rel, r) {
            Some(a) => affected.push(a),
            None => *ignored += 1,
        }
    }
    if affected.is_empty() {
        return Ok(None);
    }
    Ok(Some(Advisory {
        id: id.to_string(),
        aliases: Vec::new(),
        summary: str_field(info, "description").map(first_line).unwrap_or_default(),
        severity: None,
        cvss: Vec::new(),
        published: None,
        modified: None,
        withdrawn: false,
        references: vec![format!("https://security-tracker.debian.org/tracker/{id}")],
        affected,
        source: SOURCE.to_string(),
    }))
}

fn open_range() -> Vec<Range> {
    vec![Range { kind: RangeKind::Ecosystem, events: vec![Event::Introduced("0".into())] }]
}

fn release_entry(pkg: &str, rel: &str, r: &Value) -> Option<Affected> {
    let status_text = str_field(r, "status")?;
    let urgency = str_field(r, "urgency").unwrap_or("").trim_end_matches('*').trim().to_ascii_lowercase();
    let fixed = str_field(r, "fixed_version");
    let (status, ranges) = match status_text {
        "resolved" => match fixed {
            Some("0") => (Status::NotAffected, Vec::new()),
            Some(v) => (
                Status::Fixed,
                vec![Range {
                    kind: RangeKind::Ecosystem,
                    events: vec![Event::Introduced("0".into()), Event::Fixed(v.to_string())],
                }],
            ),
            None => return None,
        },
        "open" | "undetermined" => {
            let status = if urgency == "end-of-life" {
                Status::EndOfLife
            } else if status_text == "open" {
                match str_field(r, "nodsa_reason") {
                    Some("ignored") => Status::WillNotFix,
                    Some("postponed") => Status::FixDeferred,
                    _ => Status::Affected,
                }
            } else {
                Status::Affected
            };
            (status, open_range())
        }
        _ => return None,
    };
    Some(Affected {
        ecosystem: EcoKind::Debian,
        release: debian_release(rel),
        package: pkg.to_string(),
        ranges,
        versions: Vec::new(),
        status,
        severity: urgency_severity(&urgency),
    })
}

// ---------------------------------------------------------------------------------------------
// DSA / DLA list
// ---------------------------------------------------------------------------------------------

/// Whether `data` starts like a DSA/DLA list (`[01 Aug 2002] DSA-141 mpack - …`).
pub fn looks_like_dsa_list(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.lines().map(str::trim).find(|l| !l.is_empty()).is_some_and(|l| header(l).is_some())
}

/// `[01 Aug 2002] DSA-141 mpack - buffer overflow` → (date, id, rest).
fn header(line: &str) -> Option<(String, &str, &str)> {
    let rest = line.strip_prefix('[')?;
    let (date, rest) = rest.split_once(']')?;
    let rest = rest.trim();
    let (id, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !(id.starts_with("DSA-") || id.starts_with("DLA-")) || id.len() < 5 {
        return None;
    }
    Some((dsa_date(date.trim()).unwrap_or_default(), id, text.trim()))
}

/// `01 Aug 2002` → `2002-08-01T00:00:00Z`.
fn dsa_date(d: &str) -> Option<String> {
    let mut it = d.split_whitespace();
    let (day, mon, year) = (it.next()?, it.next()?, it.next()?);
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    let m = MONTHS.iter().position(|x| mon.to_ascii_lowercase().starts_with(x))? + 1;
    let day: u32 = day.parse().ok()?;
    let year: u32 = year.parse().ok()?;
    Some(format!("{year:04}-{m:02}-{day:02}T00:00:00Z"))
}

/// Parse a DSA or DLA list: one advisory per notice, aliases from its `{CVE-…}` line, one
/// [`Affected`] per `[release] - package version` line (`<not-affected>` → `NotAffected`,
/// `<unfixed>` → `Affected`, `<end-of-life>` → `EndOfLife`, `<no-dsa>`/`<ignored>` → `WillNotFix`,
/// `<postponed>` → `FixDeferred`; other tags are ignored). Notices without package lines are
/// counted as ignored.
pub fn parse_dsa_list(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    if !looks_like_dsa_list(data) {
        return Err(FeedError::format(file, FeedKind::DebianDsa, "does not start with a \"[date] DSA-…\" line"));
    }
    let text = String::from_utf8_lossy(data);
    let mut out = Parsed::default();
    let mut cur: Option<Advisory> = None;
    let flush = |cur: &mut Option<Advisory>, out: &mut Parsed<Advisory>| -> Result<(), FeedError> {
        if let Some(a) = cur.take() {
            if a.affected.is_empty() {
                out.ignored += 1;
            } else {
                out.push(file, a)?;
            }
        }
        Ok(())
    };
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !raw.starts_with(char::is_whitespace) {
            flush(&mut cur, &mut out)?;
            match header(line) {
                Some((date, id, rest)) => {
                    cur = Some(Advisory {
                        id: id.to_string(),
                        aliases: Vec::new(),
                        summary: first_line(rest),
                        severity: None,
                        cvss: Vec::new(),
                        published: Some(date).filter(|d| !d.is_empty()),
                        modified: None,
                        withdrawn: false,
                        references: vec![format!("https://security-tracker.debian.org/tracker/{id}")],
                        affected: Vec::new(),
                        source: DSA_SOURCE.to_string(),
                    })
                }
                None => out.skipped += 1,
            }
            continue;
        }
        let Some(a) = cur.as_mut() else { continue };
        if let Some(ids) = line.strip_prefix('{').and_then(|l| l.strip_suffix('}')) {
            for id in ids.split_whitespace() {
                super::util::push_unique(&mut a.aliases, id, &a.id.clone());
            }
        } else if let Some(rest) = line.strip_prefix('[') {
            let Some((rel, rest)) = rest.split_once(']') else {
                out.ignored += 1;
                continue;
            };
            let rest = rest.trim().trim_start_matches('-').trim();
            let mut words = rest.split_whitespace();
            let (Some(pkg), Some(ver)) = (words.next(), words.next()) else {
                out.ignored += 1;
                continue;
            };
            let (status, ranges) = match ver {
                "<not-affected>" => (Status::NotAffected, Vec::new()),
                "<unfixed>" => (Status::Affected, open_range()),
                "<end-of-life>" => (Status::EndOfLife, open_range()),
                "<no-dsa>" | "<ignored>" => (Status::WillNotFix, open_range()),
                "<postponed>" => (Status::FixDeferred, open_range()),
                v if v.starts_with('<') => {
                    out.ignored += 1;
                    continue;
                }
                v => (
                    Status::Fixed,
                    vec![Range {
                        kind: RangeKind::Ecosystem,
                        events: vec![Event::Introduced("0".into()), Event::Fixed(v.to_string())],
                    }],
                ),
            };
            a.affected.push(Affected {
                ecosystem: EcoKind::Debian,
                release: debian_release(rel),
                package: pkg.to_string(),
                ranges,
                versions: Vec::new(),
                status,
                severity: None,
            });
        }
    }
    flush(&mut cur, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_debian_tracker_statuses() {
        let doc = br#"{
          "p": {
            "CVE-1": {"description": "D\nmore", "releases": {
               "bookworm": {"status": "resolved", "fixed_version": "1.2-1", "urgency": "low**"},
               "bullseye": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"},
               "buster": {"status": "open", "urgency": "end-of-life"},
               "trixie": {"status": "open", "urgency": "not yet assigned", "nodsa": "Minor", "nodsa_reason": "ignored"},
               "sid": {"status": "open", "urgency": "medium", "nodsa_reason": "postponed"},
               "stretch": {"status": "undetermined", "urgency": "high"},
               "jessie": {"status": "weird"}
            }},
            "CVE-2": {"releases": []},
            "CVE-3": 7
          },
          "q": [1]
        }"#;
        let p = parse_tracker("t", doc).unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped), (1, 2));
        let a = &p.records[0];
        assert_eq!(a.summary, "D");
        let got: Vec<_> = a.affected.iter().map(|x| (x.release.as_str(), x.status, x.severity)).collect();
        assert_eq!(
            got,
            vec![
                ("12", Status::Fixed, Some(Severity::Low)),
                ("11", Status::NotAffected, Some(Severity::Negligible)),
                ("10", Status::EndOfLife, None),
                ("sid", Status::FixDeferred, Some(Severity::Medium)),
                ("9", Status::Affected, Some(Severity::High)),
                ("13", Status::WillNotFix, None),
            ]
        );
        assert_eq!(a.affected[0].ranges[0].events, vec![Event::Introduced("0".into()), Event::Fixed("1.2-1".into())]);
        assert!(a.affected[1].ranges.is_empty());
        assert!(parse_tracker("t", b"[1]").is_err());
        assert!(parse_tracker("t", b"{\"p\": {}").is_err());
        assert!(parse_tracker("t", b"{} x").is_err());
    }

    #[test]
    fn feed_debian_dsa_list() {
        let text = b"[01 Aug 2002] DSA-141 mpack - buffer overflow\n\t{CVE-2002-1425}\n\t[woody] - mpack 1.5-7woody2\n\
[16 Dec 2013] DSA-2819-1 iceape - several\n[18 Apr 2018] DSA-4205-1 jessie end-of-life\n\tNOTE: end\n\
[31 Jul 2025] DSA-5970-1 sope - security update\n\t{CVE-2025-53603}\n\t[bookworm] - sope 5.8.0-1+deb12u1\n\t[trixie] - sope <not-affected> (fixed before)\n";
        let p = parse_dsa_list("DSA", text).unwrap_or_default();
        assert_eq!(p.records.len(), 2);
        assert_eq!(p.ignored, 2);
        let a = &p.records[1];
        assert_eq!(a.id, "DSA-5970-1");
        assert_eq!(a.aliases, vec!["CVE-2025-53603".to_string()]);
        assert_eq!(a.published.as_deref(), Some("2025-07-31T00:00:00Z"));
        assert_eq!((a.affected[0].release.as_str(), a.affected[0].status), ("12", Status::Fixed));
        assert_eq!((a.affected[1].release.as_str(), a.affected[1].status), ("13", Status::NotAffected));
        assert!(parse_dsa_list("x", b"hello\n").is_err());
    }
}
