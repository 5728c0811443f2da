//! Matching: the packages of an SBOM against the database.
//!
//! OS packages match their distro and release — Debian and Ubuntu by source
//! package and source version, Alpine by origin — with the distro's version
//! order; language packages match their ecosystem. Matched records that share
//! an ID (aliases, transitively) become one finding listing every ID.

use crate::db::{DbError, VulnDb};
use crate::record::{
    alpine_release, debian_release, normalize_name, Cvss, EcoKind, Epss, Event, KevEntry, Severity, Status,
};
use crate::version;
use palisade_model::{OsInfo, Package, PackageType, Sbom};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// One vulnerability in one package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The preferred ID (a CVE when there is one).
    pub id: String,
    /// Every ID of the vulnerability (CVE, GHSA, GO-, RUSTSEC-, PYSEC-, DSA-, ...).
    pub ids: Vec<String>,
    /// Package name.
    pub package: String,
    /// Package type.
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// Package URL.
    pub purl: String,
    /// Installed version.
    pub installed: String,
    /// Source package the advisory is published for, when it differs from the package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_package: Option<String>,
    /// Versions that fix it (lowest first).
    pub fixed_versions: Vec<String>,
    /// Status as the source states it.
    pub status: Status,
    /// Severity.
    pub severity: Severity,
    /// Where the severity comes from (`debian`, `ubuntu`, `ghsa`, `nvd`, `osv`, ...).
    pub severity_source: String,
    /// The CVSS vector used (highest version available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvss: Option<Cvss>,
    /// CISA KEV entry, when known exploited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kev: Option<KevEntry>,
    /// EPSS score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epss: Option<Epss>,
    /// Summary.
    pub summary: String,
    /// Where the package was found.
    pub found_in: String,
    /// Other places the same package version was found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_in: Vec<String>,
    /// The layer that introduced the package.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
    /// What to do.
    pub remediation: String,
    /// Feeds that reported it.
    pub data_sources: Vec<String>,
    /// References.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
}

/// What matching produced.
#[derive(Debug, Default)]
pub struct MatchResult {
    /// Findings, sorted by package then severity.
    pub findings: Vec<Finding>,
    /// Problems (release not in the database, unparseable versions).
    pub warnings: Vec<String>,
    /// Packages looked up.
    pub packages_matched: usize,
}

/// How a package is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupKey {
    /// Ecosystem.
    pub eco: EcoKind,
    /// Distro release (empty for language ecosystems).
    pub release: String,
    /// Normalised name.
    pub name: String,
    /// Version to compare.
    pub version: String,
}

/// The key for `p` given the image's OS, or None when the type has no advisories.
pub fn lookup_key(p: &Package, os: Option<&OsInfo>) -> Option<LookupKey> {
    let (eco, release, name, version) = match p.kind {
        PackageType::Deb => {
            let os = os?;
            let (eco, release) = match os.family.as_str() {
                "ubuntu" => (EcoKind::Ubuntu, os.version.clone()),
                _ => (EcoKind::Debian, debian_release(if os.version.is_empty() { &os.codename } else { &os.version })),
            };
            let name = p.source_name.clone().unwrap_or_else(|| p.name.clone());
            let version = p.source_version.clone().unwrap_or_else(|| p.version.clone());
            (eco, release, name, version)
        }
        PackageType::Apk => {
            let os = os?;
            let name = p.source_name.clone().unwrap_or_else(|| p.name.clone());
            (EcoKind::Alpine, alpine_release(&os.version), name, p.version.clone())
        }
        PackageType::Rpm => {
            let os = os?;
            let major = os.version.split('.').next().unwrap_or("").to_string();
            let name = p.source_name.clone().unwrap_or_else(|| p.name.clone());
            (EcoKind::RedHat, major, name, p.version.clone())
        }
        PackageType::Pypi => (EcoKind::PyPI, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Npm => (EcoKind::Npm, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Cargo => (EcoKind::CratesIo, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Golang => (EcoKind::Go, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Maven => (EcoKind::Maven, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Gem => (EcoKind::RubyGems, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Composer => (EcoKind::Packagist, String::new(), p.name.clone(), p.version.clone()),
        PackageType::Nuget => (EcoKind::NuGet, String::new(), p.name.clone(), p.version.clone()),
    };
    if version.is_empty() {
        return None;
    }
    Some(LookupKey { name: normalize_name(eco, &name), eco, release, version })
}

/// References kept per finding (the full list is in the advisory).
const MAX_REFERENCES: usize = 3;

fn id_rank(id: &str) -> u8 {
    if id.starts_with("CVE-") {
        0
    } else if id.starts_with("GHSA-") {
        1
    } else {
        2
    }
}

fn cvss_rank(c: &Cvss) -> (u8, u32) {
    let v = match c.version.as_str() {
        "4.0" => 4,
        "3.1" => 3,
        "3.0" => 2,
        _ => 1,
    };
    (v, (c.score.unwrap_or(0.0) * 10.0) as u32)
}

struct Partial<'a> {
    vulns: BTreeSet<u32>,
    fixed: Vec<String>,
    status: Status,
    distro_severity: Option<Severity>,
    pkg: &'a Package,
    key: &'a LookupKey,
}

/// Match every package of `sbom`.
pub fn match_sbom(db: &VulnDb, sbom: &Sbom) -> Result<MatchResult, DbError> {
    let mut res = MatchResult::default();
    let os = sbom.os.as_ref();
    let keys: Vec<Option<LookupKey>> = sbom.packages.iter().map(|p| lookup_key(p, os)).collect();
    let mut warned: BTreeSet<String> = BTreeSet::new();
    let mut unparseable = 0usize;
    // (package index, group) → partial finding
    let mut partials: BTreeMap<(usize, u32), Partial<'_>> = BTreeMap::new();
    // Index per (ecosystem, release), looked up once: None when the database has no such section.
    let mut indexes: HashMap<(EcoKind, &str), Option<Arc<crate::db::EcoIndex>>> = HashMap::new();
    for (i, (p, key)) in sbom.packages.iter().zip(&keys).enumerate() {
        let Some(key) = key else { continue };
        let ix = match indexes.get(&(key.eco, key.release.as_str())) {
            Some(ix) => ix.clone(),
            None => {
                let ix = if key.eco.is_distro() && !db.has(key.eco, &key.release) {
                    None
                } else {
                    Some(db.eco(key.eco, &key.release)?)
                };
                indexes.insert((key.eco, key.release.as_str()), ix.clone());
                ix
            }
        };
        let Some(ix) = ix else {
            let w = format!(
                "no {} {} advisories in the database (have: {}); its OS packages were not assessed",
                key.eco.osv_name(),
                key.release,
                db.releases(key.eco).join(", ")
            );
            if warned.insert(w.clone()) {
                res.warnings.push(w);
            }
            continue;
        };
        res.packages_matched += 1;
        let Some(entries) = ix.get(&key.name) else { continue };
        for e in entries {
            let af = &e.affected;
            let affected = match af.status {
                Status::NotAffected => false,
                Status::Affected | Status::WillNotFix | Status::FixDeferred | Status::EndOfLife
                    if af.ranges.is_empty() && af.versions.is_empty() =>
                {
                    true
                }
                _ => match version::is_affected(key.eco, &key.version, af) {
                    Some(b) => b,
                    None => {
                        unparseable += 1;
                        false
                    }
                },
            };
            if !affected {
                continue;
            }
            let Some(v) = db.vuln(e.vuln) else { continue };
            let part = partials.entry((i, v.group)).or_insert_with(|| Partial {
                vulns: BTreeSet::new(),
                fixed: Vec::new(),
                status: af.status,
                distro_severity: None,
                pkg: p,
                key,
            });
            part.vulns.insert(e.vuln);
            for r in &af.ranges {
                for ev in &r.events {
                    if let Event::Fixed(f) = ev {
                        if part.fixed.contains(f) {
                            continue;
                        }
                        if version::compare(key.eco, f, &key.version).is_none_or(|o| o == Ordering::Greater) {
                            part.fixed.push(f.clone());
                        }
                    }
                }
            }
            if af.status != Status::Fixed && part.status == Status::Fixed && part.fixed.is_empty() {
                part.status = af.status;
            }
            if key.eco.is_distro() {
                part.distro_severity = part.distro_severity.max(af.severity.or(v.severity));
            }
        }
    }
    if unparseable > 0 {
        res.warnings.push(format!("{unparseable} advisory ranges could not be evaluated (unparseable versions)"));
    }
    let first_layer = sbom.target.layers.first().cloned().unwrap_or_default();
    let multi_layer = sbom.target.layers.len() > 1;
    let mut by_key: HashMap<(PackageType, &str, &str, u32), usize> = HashMap::new();
    let mut pkg_of: Vec<usize> = Vec::new();
    for ((pkg_index, group), mut part) in partials {
        let p = part.pkg;
        let dedup = (p.kind, p.name.as_str(), p.version.as_str(), group);
        if let Some(&idx) = by_key.get(&dedup) {
            let f: &mut Finding = &mut res.findings[idx];
            if f.found_in != p.found_in && !f.also_in.contains(&p.found_in) {
                f.also_in.push(p.found_in.clone());
            }
            continue;
        }
        let infos: Vec<&crate::db::VulnInfo> = part.vulns.iter().filter_map(|i| db.vuln(*i)).collect();
        let mut ids: Vec<String> = Vec::new();
        for v in &infos {
            for id in std::iter::once(&v.id).chain(v.aliases.iter()) {
                if !ids.contains(id) {
                    ids.push(id.clone());
                }
            }
        }
        ids.sort_by(|a, b| (id_rank(a), a).cmp(&(id_rank(b), b)));
        let id = ids.first().cloned().unwrap_or_default();
        let cves: Vec<&String> = ids.iter().filter(|i| i.starts_with("CVE-")).collect();
        let mut cvss: Vec<&Cvss> = infos.iter().flat_map(|v| v.cvss.iter()).collect();
        let mut kev = None;
        let mut epss: Option<Epss> = None;
        for c in &cves {
            if let Some(ci) = db.cve(c) {
                cvss.extend(ci.nvd_cvss.iter());
                kev = kev.or_else(|| ci.kev.clone());
                if let Some(e) = ci.epss {
                    if epss.is_none_or(|x| e.score > x.score) {
                        epss = Some(e);
                    }
                }
            }
        }
        let best_cvss = cvss.iter().max_by_key(|c| cvss_rank(c)).map(|c| (*c).clone());
        let ghsa = infos
            .iter()
            .filter(|v| v.id.starts_with("GHSA-") || v.source.contains("ghsa"))
            .filter_map(|v| v.severity)
            .max();
        let other = infos.iter().filter_map(|v| v.severity).max();
        let (severity, severity_source) = if let Some(s) = part.distro_severity.filter(|s| *s != Severity::Unknown) {
            (s, part.key.eco.osv_name().to_ascii_lowercase())
        } else if let Some(s) = ghsa {
            (s, "ghsa".to_string())
        } else if let Some(s) = best_cvss.as_ref().and_then(|c| c.score) {
            (Severity::from_cvss(s), best_cvss.as_ref().map(|c| c.source.clone()).unwrap_or_else(|| "cvss".into()))
        } else if let Some(s) = other {
            (s, infos.first().map(|v| v.source.clone()).unwrap_or_default())
        } else {
            (Severity::Unknown, String::new())
        };
        part.fixed.sort_by(|a, b| version::compare(part.key.eco, a, b).unwrap_or(Ordering::Equal));
        if !part.fixed.is_empty() {
            part.status = Status::Fixed;
        }
        let source_package = if p.kind.is_os() && part.key.name != p.name { Some(part.key.name.clone()) } else { None };
        let mut remediation = match (part.fixed.first(), part.status) {
            (Some(f), _) => match &source_package {
                Some(src) => format!("Upgrade {} (source package {src}) to {f} or later.", p.name),
                None => format!("Upgrade {} to {f} or later.", p.name),
            },
            (None, Status::WillNotFix) => "The distribution will not fix this; mitigate or replace the package.".into(),
            (None, Status::FixDeferred) => "The distribution has deferred the fix; mitigate until it ships.".into(),
            (None, Status::EndOfLife) => {
                "The release is end-of-life for this package; move to a supported release.".into()
            }
            (None, _) => "No fix is available yet; mitigate, or remove the package if unused.".into(),
        };
        if multi_layer && !p.layer.is_empty() && p.layer == first_layer {
            remediation.push_str(" The package comes from the base image (first layer): update the base image.");
        }
        let summary = infos.iter().map(|v| v.summary.as_str()).find(|s| !s.is_empty()).unwrap_or("").to_string();
        let mut data_sources: Vec<String> = infos.iter().map(|v| v.source.clone()).collect();
        data_sources.sort();
        data_sources.dedup();
        let mut references: Vec<String> = Vec::new();
        for r in infos.iter().flat_map(|v| v.references.iter()) {
            if references.len() >= MAX_REFERENCES {
                break;
            }
            if !references.contains(r) {
                references.push(r.clone());
            }
        }
        by_key.insert(dedup, res.findings.len());
        pkg_of.push(pkg_index);
        res.findings.push(Finding {
            id,
            ids,
            package: p.name.clone(),
            kind: p.kind,
            purl: p.purl.clone(),
            installed: p.version.clone(),
            source_package,
            fixed_versions: part.fixed,
            status: part.status,
            severity,
            severity_source,
            cvss: best_cvss,
            kev,
            epss,
            summary,
            found_in: p.found_in.clone(),
            also_in: Vec::new(),
            layer: p.layer.clone(),
            remediation,
            data_sources,
            references,
        });
    }
    // Findings come out in SBOM package order (partials are keyed by package index); within a
    // package, highest severity first. A normalised SBOM is sorted by type, name and version.
    let mut order: Vec<(usize, std::cmp::Reverse<Severity>, usize)> = Vec::with_capacity(res.findings.len());
    for (fi, f) in res.findings.iter().enumerate() {
        order.push((pkg_of[fi], std::cmp::Reverse(f.severity), fi));
    }
    order.sort_unstable_by(|a, b| {
        (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| res.findings[a.2].id.cmp(&res.findings[b.2].id))
    });
    let mut slots: Vec<Option<Finding>> = std::mem::take(&mut res.findings).into_iter().map(Some).collect();
    res.findings = order.into_iter().filter_map(|(_, _, fi)| slots[fi].take()).collect();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{build, BuildInput};
    use crate::record::{Advisory, Affected, Range, RangeKind};
    use palisade_model::PackageBuilder;

    fn affected(
        eco: EcoKind,
        release: &str,
        pkg: &str,
        fixed: Option<&str>,
        status: Status,
        sev: Option<Severity>,
    ) -> Affected {
        Affected {
            ecosystem: eco,
            release: release.into(),
            package: pkg.into(),
            ranges: fixed
                .map(|f| {
                    vec![Range {
                        kind: RangeKind::Ecosystem,
                        events: vec![Event::Introduced("0".into()), Event::Fixed(f.into())],
                    }]
                })
                .unwrap_or_default(),
            versions: vec![],
            status,
            severity: sev,
        }
    }

    fn adv(
        id: &str,
        aliases: &[&str],
        sev: Option<Severity>,
        cvss: Option<f32>,
        source: &str,
        af: Vec<Affected>,
    ) -> Advisory {
        Advisory {
            id: id.into(),
            aliases: aliases.iter().map(|s| s.to_string()).collect(),
            summary: id.to_string(),
            severity: sev,
            cvss: cvss
                .map(|s| {
                    vec![Cvss {
                        version: "3.1".into(),
                        vector: "CVSS:3.1/AV:N".into(),
                        score: Some(s),
                        source: "nvd".into(),
                    }]
                })
                .unwrap_or_default(),
            published: None,
            modified: None,
            withdrawn: false,
            references: vec![],
            affected: af,
            source: source.into(),
        }
    }

    fn open(input: BuildInput) -> VulnDb {
        VulnDb::from_bytes(std::path::Path::new("mem"), build(input, 0)).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn aliases_merge_and_severity_precedence() {
        let db = open(BuildInput {
            advisories: vec![
                adv(
                    "PYSEC-1",
                    &["CVE-2020-1"],
                    None,
                    Some(9.8),
                    "osv:PyPI",
                    vec![affected(EcoKind::PyPI, "", "pyYAML", Some("5.4"), Status::Fixed, None)],
                ),
                adv(
                    "GHSA-a",
                    &["CVE-2020-1"],
                    Some(Severity::High),
                    None,
                    "osv:PyPI",
                    vec![affected(EcoKind::PyPI, "", "PyYAML", Some("5.4.1"), Status::Fixed, None)],
                ),
                adv(
                    "PYSEC-2",
                    &[],
                    None,
                    Some(5.0),
                    "osv:PyPI",
                    vec![affected(EcoKind::PyPI, "", "pyyaml", Some("5.1"), Status::Fixed, None)],
                ),
            ],
            epss: vec![("CVE-2020-1".into(), Epss { score: 0.4, percentile: 0.97 })],
            ..Default::default()
        });
        let mut sbom = Sbom::default();
        sbom.packages.push(PackageBuilder::new(PackageType::Pypi, "PyYAML", "5.3").found_in("/a").build());
        sbom.packages.push(PackageBuilder::new(PackageType::Pypi, "PyYAML", "5.3").found_in("/b").build());
        let r = match_sbom(&db, &sbom).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.findings.len(), 1, "one finding per vulnerability; PYSEC-2 is fixed in 5.1 < 5.3");
        let f = &r.findings[0];
        assert_eq!(f.id, "CVE-2020-1");
        assert_eq!(f.ids, vec!["CVE-2020-1", "GHSA-a", "PYSEC-1"]);
        assert_eq!(f.fixed_versions, vec!["5.4", "5.4.1"]);
        assert_eq!((f.severity, f.severity_source.as_str()), (Severity::High, "ghsa"), "GHSA before CVSS");
        assert_eq!(f.epss.map(|e| e.percentile), Some(0.97));
        assert_eq!(f.also_in, vec!["/b".to_string()]);
    }

    #[test]
    fn distro_matching_by_source_with_statuses() {
        let db = open(BuildInput {
            advisories: vec![
                adv(
                    "CVE-1",
                    &[],
                    None,
                    Some(9.8),
                    "debian-tracker",
                    vec![affected(
                        EcoKind::Debian,
                        "12",
                        "openssl",
                        Some("3.0.15-1~deb12u1"),
                        Status::Fixed,
                        Some(Severity::Low),
                    )],
                ),
                adv(
                    "CVE-2",
                    &[],
                    None,
                    None,
                    "debian-tracker",
                    vec![affected(
                        EcoKind::Debian,
                        "12",
                        "openssl",
                        None,
                        Status::WillNotFix,
                        Some(Severity::Negligible),
                    )],
                ),
                adv(
                    "CVE-3",
                    &[],
                    None,
                    None,
                    "debian-tracker",
                    vec![affected(EcoKind::Debian, "12", "openssl", None, Status::NotAffected, None)],
                ),
                adv(
                    "CVE-4",
                    &[],
                    None,
                    None,
                    "debian-tracker",
                    vec![affected(EcoKind::Debian, "11", "openssl", Some("9.9"), Status::Fixed, None)],
                ),
            ],
            ..Default::default()
        });
        let mut sbom = Sbom {
            os: Some(OsInfo { family: "debian".into(), version: "12".into(), ..Default::default() }),
            ..Default::default()
        };
        sbom.target.layers = vec!["sha256:base".into(), "sha256:app".into()];
        let mut p = PackageBuilder::new(PackageType::Deb, "libssl3", "3.0.11-1~deb12u2+b1")
            .source(Some("openssl".into()), Some("3.0.11-1~deb12u2".into()))
            .found_in("/var/lib/dpkg/status")
            .build();
        p.layer = "sha256:base".into();
        sbom.packages.push(p);
        let r = match_sbom(&db, &sbom).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, vec!["CVE-1", "CVE-2"], "not-affected and other releases excluded");
        let f = &r.findings[0];
        assert_eq!((f.severity, f.severity_source.as_str()), (Severity::Low, "debian"), "distro rating first");
        assert_eq!(f.source_package.as_deref(), Some("openssl"));
        assert!(f.remediation.contains("base image"), "{}", f.remediation);
        assert_eq!(r.findings[1].status, Status::WillNotFix);
        // A release the database lacks is reported, not silently passed.
        sbom.os = Some(OsInfo { family: "debian".into(), version: "13".into(), ..Default::default() });
        let r = match_sbom(&db, &sbom).unwrap_or_else(|e| panic!("{e}"));
        assert!(r.findings.is_empty());
        assert!(r.warnings[0].contains("no Debian 13 advisories"), "{:?}", r.warnings);
    }
}
