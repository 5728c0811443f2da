//! rubysec ruby-advisory-db (`gems/<gem>/<ID>.yml`): `gem`, `cve` (`2014-2322`), `ghsa`
//! (`hgmw-…`), `osvdb`, `title`, `date`, `url`, `related.url`, `cvss_v2`/`cvss_v3`/`cvss_v4`
//! (scores only), `criticality`, `patched_versions` and `unaffected_versions` (RubyGems
//! requirements).
//!
//! One [`Advisory`] per file; id `CVE-…`, else `GHSA-…`, else `OSVDB-…`, else the file name; the
//! other ids are aliases. The affected versions are everything neither patched nor unaffected
//! ([`constraint::ruby_affected`]), one range per gap; status `Affected` when nothing is patched.
//! Advisories whose requirements cannot be converted are skipped and counted; those whose
//! requirements leave no version affected are counted as ignored. CVSS scores come
//! without vectors: they are kept as [`Cvss`] entries with an empty vector and version `3`
//! (minor unknown), `2.0` or `4.0`. Advisories for Ruby interpreters (`rubies/`) are not read.
//! Input: the repository tarball or one advisory YAML file.

use serde_json::Value;

use super::util::{self, array_field, date_to_rfc3339, f32_field, first_line, push_unique, scalar_text, str_field};
use super::{archive, constraint, FeedError, FeedKind, Parsed};
use crate::record::{Advisory, Affected, Cvss, EcoKind, Severity, Status};

/// [`Advisory::source`] of rubysec records.
pub const SOURCE: &str = "rubysec";

fn is_tar(data: &[u8]) -> bool {
    archive::is_gzip(data) || data.get(257..262) == Some(b"ustar".as_slice())
}

/// Parse the advisory-db tarball or one advisory file.
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let mut out = Parsed::default();
    if !is_tar(data) {
        let v = util::parse_yaml(data).map_err(|e| FeedError::format(file, FeedKind::RubySec, e))?;
        if v.get("gem").is_none() {
            return Err(FeedError::format(file, FeedKind::RubySec, "no \"gem\""));
        }
        add(file, file, &v, &mut out)?;
        return Ok(out);
    }
    let walk = archive::walk_tar(file, FeedKind::RubySec, data, wanted, |name, content| {
        match util::parse_yaml(content) {
            Ok(v) if v.get("gem").is_some() => add(file, name, &v, &mut out)?,
            Ok(_) => out.ignored += 1,
            Err(e) => {
                tracing::debug!(file, entry = name, error = %e, "bad YAML in rubysec entry");
                out.skipped += 1;
            }
        }
        Ok(())
    })?;
    out.skipped += walk.skipped;
    Ok(out)
}

fn wanted(path: &str) -> bool {
    (path.ends_with(".yml") || path.ends_with(".yaml"))
        && !path.split('/').any(|c| c == "rubies" || c.starts_with('.') && c.len() > 1 && c != "..")
}

fn add(file: &str, name: &str, v: &Value, out: &mut Parsed<Advisory>) -> Result<(), FeedError> {
    match advisory(name, v) {
        Ok(Some(a)) => out.push(file, a),
        Ok(None) => {
            tracing::debug!(file, entry = name, "rubysec advisory affects no version");
            out.ignored += 1;
            Ok(())
        }
        Err(reason) => {
            tracing::debug!(file, entry = name, %reason, "rubysec advisory skipped");
            out.skipped += 1;
            Ok(())
        }
    }
}

/// The requirement strings of a list field (a single string is accepted too).
fn requirements(v: &Value, key: &str) -> Result<Vec<String>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => {
            items.iter().map(|i| scalar_text(i).ok_or_else(|| format!("bad {key} item"))).collect()
        }
        Some(_) => Err(format!("bad {key}")),
    }
}

/// One advisory; `Ok(None)` when the patched and unaffected requirements leave no version
/// affected.
fn advisory(name: &str, v: &Value) -> Result<Option<Advisory>, String> {
    let gem = str_field(v, "gem").ok_or("no gem")?;
    let with_prefix = |key: &str, prefix: &str| {
        v.get(key).and_then(scalar_text).map(|s| {
            if s.to_ascii_uppercase().starts_with(prefix) {
                s
            } else {
                format!("{prefix}{s}")
            }
        })
    };
    let ids: Vec<String> = [with_prefix("cve", "CVE-"), with_prefix("ghsa", "GHSA-"), with_prefix("osvdb", "OSVDB-")]
        .into_iter()
        .flatten()
        .collect();
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.strip_suffix(".yml").or_else(|| stem.strip_suffix(".yaml")).unwrap_or(stem);
    let id = ids.first().cloned().unwrap_or_else(|| stem.to_string());
    if id.is_empty() {
        return Err("no id".into());
    }
    let mut aliases = Vec::new();
    for i in &ids {
        push_unique(&mut aliases, i, &id);
    }
    let patched = requirements(v, "patched_versions")?;
    let unaffected = requirements(v, "unaffected_versions")?;
    let intervals = constraint::ruby_affected(&patched, &unaffected).map_err(|e| e.to_string())?;
    let conv = constraint::to_ranges(&intervals);
    if conv.approximated > 0 {
        tracing::debug!(id = %id, "exclusive lower bound widened to inclusive");
    }
    if conv.ranges.is_empty() && conv.versions.is_empty() {
        return Ok(None);
    }
    let mut cvss = Vec::new();
    for (key, version) in [("cvss_v4", "4.0"), ("cvss_v3", "3"), ("cvss_v2", "2.0")] {
        if let Some(score) = f32_field(v, key).filter(|s| (0.0..=10.0).contains(s)) {
            cvss.push(Cvss {
                version: version.into(),
                vector: String::new(),
                score: Some(score),
                source: SOURCE.into(),
            });
        }
    }
    let mut references = Vec::new();
    if let Some(u) = str_field(v, "url") {
        push_unique(&mut references, u, "");
    }
    if let Some(rel) = v.get("related") {
        for u in array_field(rel, "url").iter().filter_map(Value::as_str) {
            push_unique(&mut references, u, "");
        }
    }
    Ok(Some(Advisory {
        id,
        aliases,
        summary: str_field(v, "title").or_else(|| str_field(v, "description")).map(first_line).unwrap_or_default(),
        severity: str_field(v, "criticality").and_then(Severity::rating),
        cvss,
        published: v.get("date").and_then(scalar_text).map(|d| date_to_rfc3339(&d)),
        modified: None,
        withdrawn: false,
        references,
        affected: vec![Affected {
            ecosystem: EcoKind::RubyGems,
            release: String::new(),
            package: gem.to_string(),
            ranges: conv.ranges,
            versions: conv.versions,
            status: if patched.is_empty() { Status::Affected } else { Status::Fixed },
            severity: None,
        }],
        source: SOURCE.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Event;

    #[test]
    fn feed_rubysec_single() {
        let y = b"---\ngem: actionpack\ncve: 2020-8164\nghsa: xq5j-gw7f-jgj8\ntitle: Possible Strong Parameters Bypass\ndate: 2020-05-18\n\
url: https://groups.google.com/x\ncvss_v3: 7.5\npatched_versions:\n  - \"~> 4.2.11.2\"\n  - \"~> 5.2.4, >= 5.2.4.3\"\n  - \">= 6.0.3.1\"\n\
unaffected_versions:\n  - \"< 4.0.0\"\n";
        let p = parse("actionpack/CVE-2020-8164.yml", y).unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped), (1, 0));
        let a = &p.records[0];
        assert_eq!(a.id, "CVE-2020-8164");
        assert_eq!(a.aliases, vec!["GHSA-xq5j-gw7f-jgj8".to_string()]);
        assert_eq!(a.published.as_deref(), Some("2020-05-18T00:00:00Z"));
        assert_eq!(a.cvss[0].score, Some(7.5));
        let ev: Vec<_> = a.affected[0].ranges.iter().map(|r| r.events.clone()).collect();
        let r = |i: &str, f: &str| vec![Event::Introduced(i.into()), Event::Fixed(f.into())];
        assert_eq!(ev, vec![r("4.0.0", "4.2.11.2"), r("4.2.12", "5.2.4.3"), r("5.3", "6.0.3.1")]);
        assert_eq!(a.affected[0].status, Status::Fixed);
        let bad = b"gem: x\ncve: 2020-1\npatched_versions: ['!= 1.0']\n";
        assert_eq!(parse("x.yml", bad).map(|p| (p.records.len(), p.skipped)).ok(), Some((0, 1)));
        assert!(parse("x.yml", b"title: no gem\n").is_err());
        assert!(parse("x.yml", b"[unclosed").is_err());
        assert!(wanted("rubysec/gems/a/CVE-1.yml"));
        assert!(!wanted("rubysec/rubies/jruby/CVE-1.yml"));
        assert!(!wanted("rubysec/.github/x.yml"));
    }
}
