//! Normalised advisory records: what every feed parser produces and the
//! database stores. Versions are kept as the source wrote them; they are
//! compared with the ecosystem's own order only when matching.

use serde::{Deserialize, Serialize};

/// The ecosystems advisories are published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EcoKind {
    /// Debian (advisories by source package).
    Debian,
    /// Ubuntu (advisories by source package).
    Ubuntu,
    /// Alpine (by binary-package origin).
    Alpine,
    /// Red Hat family (RHEL, CentOS, Rocky, Alma).
    RedHat,
    /// Go modules.
    Go,
    /// Rust crates.
    CratesIo,
    /// Python.
    PyPI,
    /// Node.js.
    Npm,
    /// Java.
    Maven,
    /// Ruby.
    RubyGems,
    /// PHP.
    Packagist,
    /// .NET.
    NuGet,
}

impl EcoKind {
    /// The OSV ecosystem name (without release suffix).
    pub fn osv_name(self) -> &'static str {
        match self {
            EcoKind::Debian => "Debian",
            EcoKind::Ubuntu => "Ubuntu",
            EcoKind::Alpine => "Alpine",
            EcoKind::RedHat => "Red Hat",
            EcoKind::Go => "Go",
            EcoKind::CratesIo => "crates.io",
            EcoKind::PyPI => "PyPI",
            EcoKind::Npm => "npm",
            EcoKind::Maven => "Maven",
            EcoKind::RubyGems => "RubyGems",
            EcoKind::Packagist => "Packagist",
            EcoKind::NuGet => "NuGet",
        }
    }

    /// Whether advisories of this ecosystem are per distribution release.
    pub fn is_distro(self) -> bool {
        matches!(self, EcoKind::Debian | EcoKind::Ubuntu | EcoKind::Alpine | EcoKind::RedHat)
    }

    /// Parse an OSV ecosystem string: `PyPI`, `Debian:12`, `Alpine:v3.18`, `Ubuntu:22.04:LTS`,
    /// `Ubuntu:Pro:18.04:LTS`. Returns the kind and the normalised release (empty for
    /// language ecosystems). Unknown ecosystems give `None`.
    pub fn parse_osv(s: &str) -> Option<(EcoKind, String)> {
        let mut parts = s.split(':');
        let head = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        let kind = match head {
            "Debian" => EcoKind::Debian,
            "Ubuntu" => EcoKind::Ubuntu,
            "Alpine" => EcoKind::Alpine,
            "Red Hat" => EcoKind::RedHat,
            "Go" => EcoKind::Go,
            "crates.io" => EcoKind::CratesIo,
            "PyPI" => EcoKind::PyPI,
            "npm" => EcoKind::Npm,
            "Maven" => EcoKind::Maven,
            "RubyGems" => EcoKind::RubyGems,
            "Packagist" => EcoKind::Packagist,
            "NuGet" => EcoKind::NuGet,
            _ => return None,
        };
        let release = match kind {
            EcoKind::Debian => rest.first().map(|r| debian_release(r)).unwrap_or_default(),
            EcoKind::Alpine => rest.first().map(|r| alpine_release(r)).unwrap_or_default(),
            EcoKind::Ubuntu => rest
                .iter()
                .find(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .map(|r| r.to_string())
                .unwrap_or_default(),
            EcoKind::RedHat => rest.first().map(|r| r.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        Some((kind, release))
    }
}

/// Debian release number from a number or codename (`bookworm` → `12`); unknown names pass through.
pub fn debian_release(r: &str) -> String {
    match r.trim().to_ascii_lowercase().as_str() {
        "trixie" => "13".into(),
        "bookworm" => "12".into(),
        "bullseye" => "11".into(),
        "buster" => "10".into(),
        "stretch" => "9".into(),
        "jessie" => "8".into(),
        "sid" | "unstable" => "sid".into(),
        other => other.split('.').next().unwrap_or(other).to_string(),
    }
}

/// Alpine release as `major.minor` (`v3.18` → `3.18`, `3.11.5` → `3.11`, `edge` stays).
pub fn alpine_release(r: &str) -> String {
    let r = r.trim().trim_start_matches('v');
    let mut it = r.split('.');
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => format!("{a}.{b}"),
        (Some(a), None) => a.to_string(),
        _ => r.to_string(),
    }
}

/// Normalise a package name for lookups in `eco` (PEP 503 for PyPI, lower case where the
/// ecosystem is case-insensitive).
pub fn normalize_name(eco: EcoKind, name: &str) -> String {
    match eco {
        EcoKind::PyPI => {
            let mut out = String::with_capacity(name.len());
            let mut last_sep = false;
            for c in name.chars() {
                if c == '-' || c == '_' || c == '.' {
                    if !last_sep {
                        out.push('-');
                    }
                    last_sep = true;
                } else {
                    out.push(c.to_ascii_lowercase());
                    last_sep = false;
                }
            }
            out
        }
        EcoKind::Npm | EcoKind::Packagist | EcoKind::NuGet | EcoKind::CratesIo => name.to_ascii_lowercase(),
        _ => name.to_string(),
    }
}

/// A word [`Severity::parse`] does not know (at most 64 characters of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?} (CRITICAL, HIGH, MEDIUM, LOW, NEGLIGIBLE, UNKNOWN)")]
pub struct UnknownSeverity(pub String);

impl std::str::FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse(s)
    }
}

/// A severity rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Not rated.
    #[default]
    Unknown,
    /// Negligible / informational.
    Negligible,
    /// Low.
    Low,
    /// Medium / moderate.
    Medium,
    /// High / important.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Parses a severity in any case, with the spellings feeds use (`moderate`, `important`,
    /// `unimportant`, `informational`, `none`); `unknown` is [`Severity::Unknown`]. Any other
    /// word is an error: a typo in user input must not select (or hide) `UNKNOWN` findings.
    pub fn parse(s: &str) -> Result<Severity, UnknownSeverity> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" => Ok(Severity::Critical),
            "high" | "important" => Ok(Severity::High),
            "medium" | "moderate" => Ok(Severity::Medium),
            "low" => Ok(Severity::Low),
            "negligible" | "unimportant" | "informational" | "none" => Ok(Severity::Negligible),
            "unknown" => Ok(Severity::Unknown),
            _ => Err(UnknownSeverity(s.chars().take(64).collect())),
        }
    }

    /// A feed's rating: `None` when the feed says nothing usable (`unknown`, `not yet
    /// assigned`, a word [`Severity::parse`] does not know), so the record keeps no severity.
    pub fn rating(s: &str) -> Option<Severity> {
        Severity::parse(s).ok().filter(|s| *s != Severity::Unknown)
    }

    /// From a CVSS base score (v3/v4 bands).
    pub fn from_cvss(score: f32) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Negligible
        }
    }

    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN",
            Severity::Negligible => "NEGLIGIBLE",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// A CVSS vector with its base score, as a source gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cvss {
    /// `2.0`, `3.0`, `3.1`, `4.0`.
    pub version: String,
    /// The vector string.
    pub vector: String,
    /// Base score, when the source gives it or it can be computed.
    pub score: Option<f32>,
    /// Who scored it (`nvd`, `ghsa`, `osv`, ...).
    pub source: String,
}

/// The status of a package with respect to a vulnerability, as the distro states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Affected below a fixed version (or per the ranges).
    #[default]
    Fixed,
    /// Affected, no fix published yet.
    Affected,
    /// The distro will not fix it.
    WillNotFix,
    /// The fix is deferred (postponed).
    FixDeferred,
    /// The release is end-of-life for this package.
    EndOfLife,
    /// Not affected (e.g. Alpine secdb "0", Debian fixed_version "0").
    NotAffected,
}

/// One event of an OSV-style range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// Affected from this version (`0` = from the beginning).
    Introduced(String),
    /// Fixed in this version.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// Upper limit (exclusive) of the range.
    Limit(String),
}

/// How a range's versions are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeKind {
    /// The ecosystem's own version order.
    Ecosystem,
    /// Semantic versioning 2.0.
    Semver,
}

/// An affected range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Ordering.
    pub kind: RangeKind,
    /// Events in the order the source gives them.
    pub events: Vec<Event>,
}

/// One affected package of an advisory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    /// Ecosystem.
    pub ecosystem: EcoKind,
    /// Distribution release (`12`, `3.18`, `22.04`), empty for language ecosystems.
    pub release: String,
    /// Package name as the source spells it (source package for Debian/Ubuntu; origin for Alpine).
    pub package: String,
    /// Affected ranges.
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
    /// Distro status.
    pub status: Status,
    /// Per-package severity where the source rates per package/release (Debian urgency, Ubuntu priority).
    pub severity: Option<Severity>,
}

/// One vulnerability record from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// Primary ID as the source names it (`CVE-…`, `GHSA-…`, `GO-…`, `RUSTSEC-…`, `PYSEC-…`, `DSA-…`).
    pub id: String,
    /// Other IDs for the same vulnerability.
    pub aliases: Vec<String>,
    /// One-line summary.
    pub summary: String,
    /// The source's own overall rating.
    pub severity: Option<Severity>,
    /// CVSS vectors.
    pub cvss: Vec<Cvss>,
    /// Publication time (RFC 3339) where known.
    pub published: Option<String>,
    /// Last modification (RFC 3339) where known.
    pub modified: Option<String>,
    /// Withdrawn advisories are kept out of the database.
    pub withdrawn: bool,
    /// Reference URLs.
    pub references: Vec<String>,
    /// Affected packages.
    pub affected: Vec<Affected>,
    /// Feed this came from (`osv`, `alpine-secdb`, `debian-tracker`, `nodejs-security-wg`, ...).
    pub source: String,
}

/// A CISA Known Exploited Vulnerabilities entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KevEntry {
    /// CVE ID.
    pub cve: String,
    /// Date added to the catalogue (YYYY-MM-DD).
    pub date_added: String,
    /// Remediation due date (YYYY-MM-DD).
    pub due_date: String,
    /// Whether known to be used in ransomware campaigns.
    pub ransomware: bool,
    /// Required action text.
    pub required_action: String,
}

/// An EPSS score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Epss {
    /// Probability of exploitation in the next 30 days.
    pub score: f32,
    /// Percentile.
    pub percentile: f32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_severity_words_are_errors_and_feeds_keep_no_rating() {
        for (word, sev) in [
            ("CRITICAL", Severity::Critical),
            ("important", Severity::High),
            (" Moderate ", Severity::Medium),
            ("low", Severity::Low),
            ("unimportant", Severity::Negligible),
            ("none", Severity::Negligible),
            ("UNKNOWN", Severity::Unknown),
        ] {
            assert_eq!(Severity::parse(word), Ok(sev), "{word:?}");
            assert_eq!(word.parse::<Severity>(), Ok(sev), "{word:?}");
        }
        // before: any word was silently `UNKNOWN`
        for bad in ["hihg", "", "not yet assigned", "5"] {
            let e = Severity::parse(bad).map(|_| ()).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert_eq!(Severity::parse(&"x".repeat(1000)).map(|_| ()).unwrap_err().0.len(), 64);
        // a feed that says nothing (or nothing usable) leaves the record unrated
        assert_eq!(Severity::rating("not yet assigned"), None);
        assert_eq!(Severity::rating("unknown"), None);
        assert_eq!(Severity::rating("moderate"), Some(Severity::Medium));
    }
}
