//! FriendsOfPHP security-advisories (`<vendor>/<package>/<id>.yaml`): `title`, `link`, `cve`,
//! `reference: composer://vendor/package`, `branches: {name: {time, versions: [">=1.0.0",
//! "<1.2.3"]}}`.
//!
//! One [`Advisory`] per file, ecosystem Packagist, package `vendor/package`, one range per branch
//! (its `versions` list is one conjunction, [`constraint::composer_conjunction`]). The id is the
//! CVE when there is one, else `FRIENDSOFPHP-<vendor>/<package>/<file stem>`. Branches that
//! cannot be converted are dropped and counted as ignored; an advisory left with no branch is
//! skipped and counted. Input: the repository tarball or one advisory YAML file.

use serde_json::Value;

use super::util::{self, first_line, scalar_text, str_field};
use super::{archive, constraint, FeedError, FeedKind, Parsed};
use crate::record::{Advisory, Affected, EcoKind};

/// [`Advisory::source`] of FriendsOfPHP records.
pub const SOURCE: &str = "friendsofphp";

fn is_tar(data: &[u8]) -> bool {
    archive::is_gzip(data) || data.get(257..262) == Some(b"ustar".as_slice())
}

/// Parse the security-advisories tarball or one advisory file.
pub fn parse(file: &str, data: &[u8]) -> Result<Parsed<Advisory>, FeedError> {
    let mut out = Parsed::default();
    if !is_tar(data) {
        let v = util::parse_yaml(data).map_err(|e| FeedError::format(file, FeedKind::FriendsOfPhp, e))?;
        if !is_advisory(&v) {
            return Err(FeedError::format(file, FeedKind::FriendsOfPhp, "no \"reference: composer://…\""));
        }
        add(file, file, &v, &mut out)?;
        return Ok(out);
    }
    let walk = archive::walk_tar(file, FeedKind::FriendsOfPhp, data, wanted, |name, content| {
        match util::parse_yaml(content) {
            Ok(v) if is_advisory(&v) => add(file, name, &v, &mut out)?,
            Ok(_) => out.ignored += 1,
            Err(e) => {
                tracing::debug!(file, entry = name, error = %e, "bad YAML in FriendsOfPHP entry");
                out.skipped += 1;
            }
        }
        Ok(())
    })?;
    out.skipped += walk.skipped;
    Ok(out)
}

fn is_advisory(v: &Value) -> bool {
    str_field(v, "reference").is_some_and(|r| r.starts_with("composer://"))
}

fn wanted(path: &str) -> bool {
    (path.ends_with(".yaml") || path.ends_with(".yml"))
        && !path.split('/').any(|c| c.starts_with('.') && c.len() > 1 && c != "..")
}

fn add(file: &str, name: &str, v: &Value, out: &mut Parsed<Advisory>) -> Result<(), FeedError> {
    match advisory(name, v, &mut out.ignored) {
        Ok(a) => out.push(file, a),
        Err(reason) => {
            tracing::debug!(file, entry = name, %reason, "FriendsOfPHP advisory skipped");
            out.skipped += 1;
            Ok(())
        }
    }
}

fn advisory(name: &str, v: &Value, ignored: &mut usize) -> Result<Advisory, String> {
    let reference = str_field(v, "reference").ok_or("no reference")?;
    let package = reference.trim_start_matches("composer://").trim().trim_matches('/');
    if package.is_empty() || package.contains(char::is_whitespace) {
        return Err("bad reference".into());
    }
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem.strip_suffix(".yaml").or_else(|| stem.strip_suffix(".yml")).unwrap_or(stem);
    let cve = str_field(v, "cve").filter(|c| util::looks_like_id(c) && c.starts_with("CVE-"));
    let id = match cve {
        Some(c) => c.to_string(),
        None => format!("FRIENDSOFPHP-{package}/{stem}"),
    };
    let mut ranges = Vec::new();
    let mut versions = Vec::new();
    let branches = v.get("branches").and_then(Value::as_object).ok_or("no branches")?;
    for (branch, b) in branches {
        let items: Vec<String> = match b.get("versions") {
            Some(Value::Array(a)) => a.iter().filter_map(scalar_text).collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        match constraint::composer_conjunction(&items) {
            Ok(i) => {
                let conv = constraint::to_ranges(&[i]);
                ranges.extend(conv.ranges);
                for x in conv.versions {
                    util::push_unique(&mut versions, &x, "");
                }
            }
            Err(e) => {
                tracing::debug!(id = %id, branch = %branch, error = %e, "branch dropped");
                *ignored += 1;
            }
        }
    }
    if ranges.is_empty() && versions.is_empty() {
        return Err("no usable branch".into());
    }
    let status = util::status_from_ranges(&ranges);
    Ok(Advisory {
        id,
        aliases: Vec::new(),
        summary: str_field(v, "title").map(first_line).unwrap_or_default(),
        severity: None,
        cvss: Vec::new(),
        published: None,
        modified: None,
        withdrawn: false,
        references: str_field(v, "link").map(|l| vec![l.to_string()]).unwrap_or_default(),
        affected: vec![Affected {
            ecosystem: EcoKind::Packagist,
            release: String::new(),
            package: package.to_string(),
            ranges,
            versions,
            status,
            severity: None,
        }],
        source: SOURCE.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Event, Status};

    #[test]
    fn feed_friendsofphp_single() {
        let y = br#"title: Unsafe deserialization in SmtpTransport
link: https://bakery.cakephp.org/x
cve: CVE-2019-11458
branches:
    3.5.x:
        time:     2019-04-23 22:08:00
        versions: ['>=3.0.0', '<3.5.18']
    3.6.x:
        time: ~
        versions: ['>=3.6.0', '<3.6.15']
    bad:
        versions: ['^1 || ^2']
reference: composer://cakephp/cakephp
"#;
        let p = parse("cakephp/cakephp/CVE-2019-11458.yaml", y);
        assert!(p.is_ok(), "{p:?}");
        let p = p.unwrap_or_default();
        assert_eq!((p.records.len(), p.skipped, p.ignored), (1, 0, 1));
        let a = &p.records[0];
        assert_eq!(a.id, "CVE-2019-11458");
        assert_eq!(a.affected[0].package, "cakephp/cakephp");
        assert_eq!(a.affected[0].status, Status::Fixed);
        assert_eq!(
            a.affected[0].ranges[0].events,
            vec![Event::Introduced("3.0.0".into()), Event::Fixed("3.5.18".into())]
        );
        let no_cve = b"title: t\nbranches:\n  master:\n    versions: ['<1.2']\nreference: composer://a/b\n";
        let p = parse("a/b/2015-08-06.yaml", no_cve).unwrap_or_default();
        assert_eq!(p.records.first().map(|a| a.id.as_str()), Some("FRIENDSOFPHP-a/b/2015-08-06"));
        assert!(parse("x.yaml", b"title: t\n").is_err());
        let nob = b"title: t\nreference: composer://a/b\nbranches: {}\n";
        assert_eq!(parse("x.yaml", nob).map(|p| p.skipped).ok(), Some(1));
    }
}
