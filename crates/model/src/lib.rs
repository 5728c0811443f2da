//! Domain types shared by every Palisade engine.
//!
//! This crate has no I/O and no heavy dependencies: it is the vocabulary the
//! image walker, the catalogers, the vulnerability matcher and the writers
//! speak. Everything here serialises to the native Palisade JSON format.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The packaging ecosystem a package belongs to.
///
/// The string forms (`deb`, `apk`, `npm`, ...) are the PURL types, so a
/// [`PackageType`] maps one-to-one onto a PURL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageType {
    /// Debian / Ubuntu dpkg packages.
    Deb,
    /// Alpine apk packages.
    Apk,
    /// RPM packages (RHEL family, SUSE, Mariner).
    Rpm,
    /// Python distributions (PyPI).
    Pypi,
    /// Node.js packages (npm registry).
    Npm,
    /// Rust crates.
    Cargo,
    /// Go modules.
    Golang,
    /// Java archives (Maven coordinates).
    Maven,
    /// Ruby gems.
    Gem,
    /// PHP Composer packages.
    Composer,
    /// .NET NuGet packages.
    Nuget,
}

impl PackageType {
    /// The PURL type string.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageType::Deb => "deb",
            PackageType::Apk => "apk",
            PackageType::Rpm => "rpm",
            PackageType::Pypi => "pypi",
            PackageType::Npm => "npm",
            PackageType::Cargo => "cargo",
            PackageType::Golang => "golang",
            PackageType::Maven => "maven",
            PackageType::Gem => "gem",
            PackageType::Composer => "composer",
            PackageType::Nuget => "nuget",
        }
    }

    /// Whether this is an operating-system package type.
    pub fn is_os(self) -> bool {
        matches!(self, PackageType::Deb | PackageType::Apk | PackageType::Rpm)
    }

    /// Every type, in display order.
    pub const ALL: [PackageType; 11] = [
        PackageType::Deb,
        PackageType::Apk,
        PackageType::Rpm,
        PackageType::Pypi,
        PackageType::Npm,
        PackageType::Cargo,
        PackageType::Golang,
        PackageType::Maven,
        PackageType::Gem,
        PackageType::Composer,
        PackageType::Nuget,
    ];
}

impl fmt::Display for PackageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operating system an image or root filesystem runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsInfo {
    /// `ID` from os-release, lower case (`debian`, `ubuntu`, `alpine`, `rhel`, ...).
    pub family: String,
    /// `VERSION_ID` (or the content of a release file), e.g. `12`, `3.11.5`.
    pub version: String,
    /// `VERSION_CODENAME` where known, e.g. `bookworm`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub codename: String,
    /// `PRETTY_NAME` where known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
    /// Whether this looks like a distroless image (package metadata but no package manager).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub distroless: bool,
}

impl OsInfo {
    /// The PURL `distro` qualifier, e.g. `debian-12`.
    pub fn purl_distro(&self) -> String {
        if self.version.is_empty() {
            self.family.clone()
        } else {
            format!("{}-{}", self.family, self.version)
        }
    }
}

/// One package found in an image or filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Package name as its ecosystem spells it (Maven: `group:artifact`, Go: module path).
    pub name: String,
    /// Installed version (for dpkg/rpm including epoch and revision/release).
    pub version: String,
    /// Ecosystem.
    #[serde(rename = "type")]
    pub kind: PackageType,
    /// Package URL.
    pub purl: String,
    /// Source (dpkg) or origin (apk) or source RPM name, for OS packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_name: Option<String>,
    /// Source version where it differs from the binary version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Architecture where stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Licences as stated by the package metadata (not normalised beyond trimming).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    /// The file the package was found in (absolute path inside the image).
    pub found_in: String,
    /// Digest of the layer that introduced that file (empty for a root filesystem).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub layer: String,
}

/// Builder for [`Package`] values: catalogers set what they know, the rest
/// (PURL, layer) is filled in consistently.
#[derive(Debug, Clone)]
pub struct PackageBuilder {
    pkg: Package,
    namespace: Option<String>,
    qualifiers: Vec<(String, String)>,
}

impl PackageBuilder {
    /// Start a package of `kind` named `name` at `version`.
    pub fn new(kind: PackageType, name: impl Into<String>, version: impl Into<String>) -> Self {
        PackageBuilder {
            pkg: Package {
                name: name.into(),
                version: version.into(),
                kind,
                purl: String::new(),
                source_name: None,
                source_version: None,
                arch: None,
                licenses: Vec::new(),
                found_in: String::new(),
                layer: String::new(),
            },
            namespace: None,
            qualifiers: Vec::new(),
        }
    }
    /// PURL namespace (Maven group, npm scope, distro vendor).
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        if !ns.is_empty() {
            self.namespace = Some(ns);
        }
        self
    }
    /// Add a PURL qualifier (kept sorted by key when rendered).
    pub fn qualifier(mut self, k: &str, v: impl Into<String>) -> Self {
        let v = v.into();
        if !v.is_empty() {
            self.qualifiers.push((k.to_string(), v));
        }
        self
    }
    /// Source package name and version (skipped when empty).
    pub fn source(mut self, name: Option<String>, version: Option<String>) -> Self {
        self.pkg.source_name = name.filter(|s| !s.is_empty());
        self.pkg.source_version = version.filter(|s| !s.is_empty());
        self
    }
    /// Architecture.
    pub fn arch(mut self, arch: impl Into<String>) -> Self {
        let a = arch.into();
        if !a.is_empty() {
            self.pkg.arch = Some(a.clone());
            self.qualifiers.push(("arch".into(), a));
        }
        self
    }
    /// Add licences; empty strings are dropped.
    pub fn licenses<I: IntoIterator<Item = S>, S: Into<String>>(mut self, l: I) -> Self {
        for s in l {
            let s: String = s.into();
            let s = s.trim();
            if !s.is_empty() && !self.pkg.licenses.iter().any(|x| x == s) {
                self.pkg.licenses.push(s.to_string());
            }
        }
        self
    }
    /// Where the package was found.
    pub fn found_in(mut self, path: impl Into<String>) -> Self {
        self.pkg.found_in = path.into();
        self
    }
    /// Finish: renders the PURL.
    pub fn build(mut self) -> Package {
        self.qualifiers.sort();
        self.qualifiers.dedup_by(|a, b| a.0 == b.0);
        self.pkg.purl =
            purl(self.pkg.kind, self.namespace.as_deref(), &self.pkg.name, &self.pkg.version, &self.qualifiers);
        self.pkg
    }
}

/// Percent-encode one PURL segment (name, namespace part, version, qualifier value).
pub fn purl_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Render a package URL (<https://github.com/package-url/purl-spec>).
pub fn purl(
    kind: PackageType,
    namespace: Option<&str>,
    name: &str,
    version: &str,
    qualifiers: &[(String, String)],
) -> String {
    let mut s = format!("pkg:{}/", kind.as_str());
    // Per-type normalisation from the PURL spec.
    let (namespace, name) = match kind {
        PackageType::Pypi => (namespace.map(str::to_string), name.to_lowercase().replace('_', "-")),
        PackageType::Golang => {
            // The module path: everything but the last segment is the namespace.
            match name.rsplit_once('/') {
                Some((ns, n)) if namespace.is_none() => (Some(ns.to_string()), n.to_string()),
                _ => (namespace.map(str::to_string), name.to_string()),
            }
        }
        PackageType::Npm | PackageType::Composer => match name.split_once('/') {
            Some((ns, n)) if namespace.is_none() => (Some(ns.to_string()), n.to_string()),
            _ => (namespace.map(str::to_string), name.to_string()),
        },
        PackageType::Maven => match name.split_once(':') {
            Some((g, a)) if namespace.is_none() => (Some(g.to_string()), a.to_string()),
            _ => (namespace.map(str::to_string), name.to_string()),
        },
        _ => (namespace.map(str::to_string), name.to_string()),
    };
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        let parts: Vec<String> = ns.split('/').map(purl_encode).collect();
        s.push_str(&parts.join("/"));
        s.push('/');
    }
    s.push_str(&purl_encode(&name));
    if !version.is_empty() {
        s.push('@');
        s.push_str(&purl_encode(version));
    }
    if !qualifiers.is_empty() {
        s.push('?');
        let q: Vec<String> = qualifiers.iter().map(|(k, v)| format!("{}={}", k, purl_encode(v))).collect();
        s.push_str(&q.join("&"));
    }
    s
}

/// The civil date (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's algorithm). Shared by every RFC 3339 formatter in the workspace.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-01-31T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", sod / 3600, (sod / 60) % 60, sod % 60)
}

/// A parsed package URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Purl {
    /// Type (`deb`, `npm`, ...), lower case.
    pub kind: String,
    /// Namespace (decoded), if any.
    pub namespace: Option<String>,
    /// Name (decoded).
    pub name: String,
    /// Version (decoded), if any.
    pub version: Option<String>,
    /// Qualifiers (decoded).
    pub qualifiers: Vec<(String, String)>,
}

fn purl_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Purl {
    /// Parse `pkg:type/namespace/name@version?qualifiers#subpath`.
    pub fn parse(s: &str) -> Option<Purl> {
        let rest = s.strip_prefix("pkg:")?;
        let rest = rest.split('#').next().unwrap_or(rest);
        let (rest, quals) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let rest = rest.trim_matches('/');
        let (kind, path) = rest.split_once('/')?;
        // The version is after the last '@' of the last path segment.
        let (path, version) = match path.rfind('@') {
            Some(i) if path[i..].find('/').is_none() && i > 0 => (&path[..i], Some(purl_decode(&path[i + 1..]))),
            _ => (path, None),
        };
        let (namespace, name) = match path.rsplit_once('/') {
            Some((ns, n)) => (Some(ns.split('/').map(purl_decode).collect::<Vec<_>>().join("/")), purl_decode(n)),
            None => (None, purl_decode(path)),
        };
        if kind.is_empty() || name.is_empty() {
            return None;
        }
        let qualifiers = quals
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_ascii_lowercase(), purl_decode(v)))
                    .collect()
            })
            .unwrap_or_default();
        Some(Purl { kind: kind.to_ascii_lowercase(), namespace, name, version, qualifiers })
    }

    /// A qualifier's value.
    pub fn qualifier(&self, k: &str) -> Option<&str> {
        self.qualifiers.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }

    /// The package type, when Palisade knows it.
    pub fn package_type(&self) -> Option<PackageType> {
        PackageType::ALL.iter().copied().find(|t| t.as_str() == self.kind)
    }

    /// The package name as Palisade spells it for this type (Maven `group:artifact`,
    /// npm `@scope/name`, Go and Composer `namespace/name`).
    pub fn package_name(&self) -> String {
        match (self.package_type(), &self.namespace) {
            (Some(PackageType::Maven), Some(ns)) => format!("{ns}:{}", self.name),
            (Some(PackageType::Npm | PackageType::Golang | PackageType::Composer), Some(ns)) => {
                format!("{ns}/{}", self.name)
            }
            _ => self.name.clone(),
        }
    }
}

/// What was scanned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The reference as the user gave it.
    pub name: String,
    /// Manifest digest (images) where known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Config digest (image ID) where known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// Layer digests, bottom first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<String>,
    /// `os/arch[/variant]` of the image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
}

/// A non-fatal problem met while scanning (a corrupt database skipped, a file too large, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanWarning {
    /// The file (or layer) concerned.
    pub path: String,
    /// What happened.
    pub message: String,
}

/// A software bill of materials: the result of `palisade sbom`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// What was scanned.
    pub target: Target,
    /// Detected OS, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsInfo>,
    /// Packages, sorted by type, name, version, path.
    pub packages: Vec<Package>,
    /// Problems that did not stop the scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ScanWarning>,
}

impl Sbom {
    /// Sort packages into the canonical order and drop exact duplicates.
    pub fn normalize(&mut self) {
        self.packages.sort_by(|a, b| {
            (a.kind, &a.name, &a.version, &a.found_in).cmp(&(b.kind, &b.name, &b.version, &b.found_in))
        });
        self.packages.dedup_by(|a, b| {
            a.kind == b.kind && a.name == b.name && a.version == b.version && a.found_in == b.found_in
        });
    }
}

/// `s` with every control character (C0, DEL, C1 such as the 8-bit CSI) and
/// bidirectional override escaped as `\u{..}`, so image content printed to
/// a terminal cannot move the cursor, recolour or rewrite what is shown.
pub fn terminal_safe(s: &str) -> String {
    let bad = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !s.chars().any(bad) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            let _ = std::fmt::Write::write_fmt(&mut out, format_args!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purl_rendering_follows_the_spec() {
        let p = PackageBuilder::new(PackageType::Deb, "libc6", "2.36-9+deb12u10")
            .namespace("debian")
            .arch("amd64")
            .qualifier("distro", "debian-12")
            .build();
        assert_eq!(p.purl, "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12");
        let p = PackageBuilder::new(PackageType::Npm, "@babel/core", "7.0.0").build();
        assert_eq!(p.purl, "pkg:npm/%40babel/core@7.0.0");
        let p =
            PackageBuilder::new(PackageType::Maven, "com.fasterxml.jackson.core:jackson-databind", "2.14.0").build();
        assert_eq!(p.purl, "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.14.0");
        let p = PackageBuilder::new(PackageType::Golang, "golang.org/x/text", "v0.3.7").build();
        assert_eq!(p.purl, "pkg:golang/golang.org/x/text@v0.3.7");
        let p = PackageBuilder::new(PackageType::Pypi, "PyYAML", "5.3").build();
        assert_eq!(p.purl, "pkg:pypi/pyyaml@5.3");
    }

    #[test]
    fn purl_parsing_round_trips() {
        for (s, name, ver) in [
            ("pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12", "libc6", "2.36-9+deb12u10"),
            ("pkg:npm/%40babel/core@7.0.0", "@babel/core", "7.0.0"),
            (
                "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.14.0",
                "com.fasterxml.jackson.core:jackson-databind",
                "2.14.0",
            ),
            ("pkg:golang/golang.org/x/text@v0.3.7", "golang.org/x/text", "v0.3.7"),
            ("pkg:pypi/pyyaml@5.3", "pyyaml", "5.3"),
        ] {
            let p = Purl::parse(s).unwrap_or_default();
            assert_eq!((p.package_name().as_str(), p.version.as_deref()), (name, Some(ver)), "{s}");
        }
        let p = Purl::parse("pkg:deb/debian/libc6@2.36?arch=amd64&distro=debian-12").unwrap_or_default();
        assert_eq!(p.qualifier("distro"), Some("debian-12"));
        for bad in ["", "pkg:", "pkg:x", "pkg:/a", "nopkg:a/b", "pkg:a/%", "pkg:a/%zz@%"] {
            let _ = Purl::parse(bad);
        }
        assert!(Purl::parse("pkg:golang/stdlib").is_some_and(|p| p.version.is_none()));
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-86_400), "1969-12-31T00:00:00Z");
    }

    #[test]
    fn normalize_sorts_and_dedups() {
        let a = PackageBuilder::new(PackageType::Npm, "b", "1").found_in("/x").build();
        let b = PackageBuilder::new(PackageType::Deb, "a", "1").found_in("/y").build();
        let mut s = Sbom { packages: vec![a.clone(), b.clone(), a.clone()], ..Default::default() };
        s.normalize();
        assert_eq!(s.packages, vec![b, a]);
    }
}
