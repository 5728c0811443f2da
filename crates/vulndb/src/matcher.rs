//! Matching: the packages of an SBOM against the database.
//!
//! OS packages match their distro and release — Debian and Ubuntu by source
//! package and source version, Alpine by origin — with the distro's version
//! order; language packages match their ecosystem. Matched records that share
//! an ID (aliases, transitively) become one finding listing every ID.

use crate::db::{DbError, VulnDb};
use crate::record::{alpine_release, debian_release, normalize_name, Cvss, EcoKind, Epss, Event, KevEntry, Severity, Status};
use crate::version;
use palisade_model::{OsInfo, Package, PackageType, Sbom};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

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
    for (i, (p, key)) in sbom.packages.iter().zip(&keys).enumerate() {
        let Some(key) = key else { continue };
        if key.eco.is_distro() && !db.has(key.eco, &key.release) {
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
        }
        res.packages_matched += 1;
        let ix = db.eco(key.eco, &key.release)?;
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
                        let newer = version::compare(key.eco, f, &key.version).is_none_or(|o| o == Ordering::Greater);
                        if newer && !part.fixed.contains(f) {
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
    let mut by_key: BTreeMap<(PackageType, String, String, u32), usize> = BTreeMap::new();
    for ((_, group), mut part) in partials {
        let p = part.pkg;
        let dedup = (p.kind, p.name.clone(), p.version.clone(), group);
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
        let mut cvss: Vec<Cvss> = infos.iter().flat_map(|v| v.cvss.iter().cloned()).collect();
        let mut kev = None;
        let mut epss: Option<Epss> = None;
        for c in &cves {
            if let Some(ci) = db.cve(c) {
                cvss.extend(ci.nvd_cvss.iter().cloned());
                kev = kev.or_else(|| ci.kev.clone());
                if let Some(e) = ci.epss {
                    if epss.is_none_or(|x| e.score > x.score) {
                        epss = Some(e);
                    }
                }
            }
        }
        let best_cvss = cvss.iter().max_by_key(|c| cvss_rank(c)).cloned();
        let ghsa = infos.iter().filter(|v| v.id.starts_with("GHSA-") || v.source.contains("ghsa")).filter_map(|v| v.severity).max();
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
            (None, Status::EndOfLife) => "The release is end-of-life for this package; move to a supported release.".into(),
            (None, _) => "No fix is available yet; mitigate, or remove the package if unused.".into(),
        };
        if multi_layer && !p.layer.is_empty() && p.layer == first_layer {
            remediation.push_str(" The package comes from the base image (first layer): update the base image.");
        }
        let summary = infos.iter().map(|v| v.summary.as_str()).find(|s| !s.is_empty()).unwrap_or("").to_string();
        let mut data_sources: Vec<String> = infos.iter().map(|v| v.source.clone()).collect();
        data_sources.sort();
        data_sources.dedup();
        let mut references: Vec<String> = infos.iter().flat_map(|v| v.references.iter().cloned()).collect();
        references.dedup();
        references.truncate(10);
        by_key.insert(dedup, res.findings.len());
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
    res.findings.sort_by(|a, b| {
        (a.kind, &a.package, &a.installed, std::cmp::Reverse(a.severity), &a.id).cmp(&(
            b.kind,
            &b.package,
            &b.installed,
            std::cmp::Reverse(b.severity),
            &b.id,
        ))
    });
    Ok(res)
}
