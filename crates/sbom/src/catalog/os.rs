//! Operating-system identification from release files, and the OS package
//! databases that are plain text: dpkg (`status`, distroless `status.d/`) and apk.

use crate::CatalogError;
use palisade_model::{OsInfo, Package, PackageBuilder, PackageType};

/// Release files consulted, in priority order.
pub const RELEASE_FILES: [&str; 8] = [
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/lsb-release",
    "/etc/alpine-release",
    "/etc/redhat-release",
    "/etc/centos-release",
    "/etc/system-release",
    "/etc/debian_version",
];

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
    let v = v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')).unwrap_or(v);
    v.replace("\\\"", "\"").replace("\\$", "$").replace("\\\\", "\\")
}

fn kv(content: &str) -> Vec<(String, String)> {
    content
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), unquote(v)))
        })
        .collect()
}

/// Identify the OS from the content of one release file (`path` says which).
pub fn parse_release(path: &str, content: &str) -> Option<OsInfo> {
    let first = content.lines().next().unwrap_or("").trim();
    match path {
        "/etc/os-release" | "/usr/lib/os-release" => {
            let kv = kv(content);
            let get = |k: &str| kv.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let id = get("ID").to_lowercase();
            if id.is_empty() {
                return None;
            }
            let pretty = get("PRETTY_NAME");
            Some(OsInfo {
                family: id,
                version: get("VERSION_ID"),
                codename: get("VERSION_CODENAME"),
                distroless: pretty.to_lowercase().contains("distroless"),
                pretty_name: pretty,
            })
        }
        "/etc/lsb-release" => {
            let kv = kv(content);
            let get = |k: &str| kv.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
            let id = get("DISTRIB_ID").to_lowercase();
            (!id.is_empty()).then(|| OsInfo {
                family: id,
                version: get("DISTRIB_RELEASE"),
                codename: get("DISTRIB_CODENAME"),
                pretty_name: get("DISTRIB_DESCRIPTION"),
                distroless: false,
            })
        }
        "/etc/alpine-release" => (!first.is_empty()).then(|| OsInfo {
            family: "alpine".into(),
            version: first.to_string(),
            ..Default::default()
        }),
        "/etc/debian_version" => (!first.is_empty()).then(|| OsInfo {
            family: "debian".into(),
            version: first.split('.').next().unwrap_or(first).to_string(),
            ..Default::default()
        }),
        "/etc/redhat-release" | "/etc/centos-release" | "/etc/system-release" => {
            // "CentOS Linux release 7.9.2009 (Core)", "Red Hat Enterprise Linux release 8.6 (Ootpa)"
            let lower = first.to_lowercase();
            let family = [
                ("centos", "centos"),
                ("red hat", "rhel"),
                ("rocky", "rocky"),
                ("alma", "almalinux"),
                ("oracle", "ol"),
                ("fedora", "fedora"),
                ("amazon", "amzn"),
            ]
            .iter()
            .find(|(k, _)| lower.contains(k))
            .map(|(_, f)| f.to_string())?;
            let version = first.split_whitespace().skip_while(|w| *w != "release").nth(1).unwrap_or("").to_string();
            Some(OsInfo { family, version, pretty_name: first.to_string(), ..Default::default() })
        }
        _ => None,
    }
}

/// Iterate over RFC 822 style paragraphs (dpkg status, apk installed uses its own format).
fn paragraphs(data: &str) -> impl Iterator<Item = &str> {
    data.split("\n\n").map(|p| p.trim_matches(['\n', '\r'])).filter(|p| !p.trim().is_empty())
}

/// Parse one dpkg control paragraph into fields (continuation lines folded).
fn control_fields(par: &str) -> Vec<(&str, String)> {
    let mut out: Vec<(&str, String)> = Vec::new();
    for line in par.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = out.last_mut() {
                last.1.push('\n');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim(), v.trim().to_string()));
        }
    }
    out
}

/// Parse a dpkg `status` file (or one distroless `status.d/` file).
///
/// Only packages whose `Status` says installed are kept (status.d files have
/// no Status and are all installed).
pub fn parse_dpkg(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data);
    if !text.contains("Package:") {
        return Err(CatalogError::malformed("dpkg status", "no Package field"));
    }
    let text = text.replace("\r\n", "\n");
    let mut pkgs = Vec::new();
    for par in paragraphs(&text) {
        let f = control_fields(par);
        let get = |k: &str| f.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else { continue };
        if let Some(status) = get("Status") {
            let words: Vec<&str> = status.split_whitespace().collect();
            if words.last() != Some(&"installed") {
                continue;
            }
        }
        let (src_name, src_version) = match get("Source") {
            Some(s) => match s.split_once('(') {
                Some((n, v)) => (n.trim().to_string(), v.trim_end_matches(')').trim().to_string()),
                None => (s.trim().to_string(), version.to_string()),
            },
            None => (name.to_string(), version.to_string()),
        };
        pkgs.push(
            PackageBuilder::new(PackageType::Deb, name, version)
                .arch(get("Architecture").unwrap_or(""))
                .source(Some(src_name), Some(src_version))
                .found_in(path)
                .build(),
        );
    }
    Ok(pkgs)
}

/// Parse an apk `installed` database.
pub fn parse_apk(path: &str, data: &[u8]) -> Result<Vec<Package>, CatalogError> {
    let text = String::from_utf8_lossy(data).replace("\r\n", "\n");
    let mut pkgs = Vec::new();
    let mut saw_record = false;
    for rec in text.split("\n\n") {
        let (mut name, mut version, mut arch, mut origin, mut license) = ("", "", "", "", "");
        for line in rec.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            match k {
                "P" => name = v,
                "V" => version = v,
                "A" => arch = v,
                "o" => origin = v,
                "L" => license = v,
                _ => {}
            }
        }
        if name.is_empty() {
            continue;
        }
        saw_record = true;
        if version.is_empty() {
            continue;
        }
        pkgs.push(
            PackageBuilder::new(PackageType::Apk, name, version)
                .arch(arch)
                .source(Some(if origin.is_empty() { name } else { origin }.to_string()), Some(version.to_string()))
                .licenses(split_spdx_list(license))
                .found_in(path)
                .build(),
        );
    }
    if !saw_record && !text.trim().is_empty() {
        return Err(CatalogError::malformed("apk installed", "no P: records"));
    }
    Ok(pkgs)
}

/// Split a licence string such as `MIT AND BSD-2-Clause` or `GPL-2.0-only OR MIT`
/// into its parts only when it is a plain space-separated list (apk style);
/// SPDX expressions with operators are kept whole.
fn split_spdx_list(l: &str) -> Vec<String> {
    let l = l.trim();
    if l.is_empty() {
        return Vec::new();
    }
    if l.contains(" AND ") || l.contains(" OR ") || l.contains(" WITH ") || l.contains('(') {
        return vec![l.to_string()];
    }
    l.split_whitespace().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_distros() {
        let deb = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        let os = parse_release("/usr/lib/os-release", deb).unwrap_or_default();
        assert_eq!((os.family.as_str(), os.version.as_str(), os.codename.as_str()), ("debian", "12", "bookworm"));
        let dl = "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian GNU/Linux\"\nID=\"debian\"\nVERSION_ID=\"12\"\n";
        assert!(parse_release("/etc/os-release", dl).is_some_and(|o| o.distroless));
        assert_eq!(parse_release("/etc/alpine-release", "3.11.5\n").map(|o| o.version), Some("3.11.5".into()));
        let rh = parse_release("/etc/redhat-release", "Red Hat Enterprise Linux release 8.6 (Ootpa)\n");
        assert_eq!(rh.map(|o| (o.family, o.version)), Some(("rhel".into(), "8.6".into())));
        let ub = "DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=22.04\nDISTRIB_CODENAME=jammy\n";
        assert_eq!(parse_release("/etc/lsb-release", ub).map(|o| o.family), Some("ubuntu".into()));
        assert!(parse_release("/etc/os-release", "garbage\n\0\0").is_none());
    }

    #[test]
    fn parses_dpkg_status_with_sources_and_states() {
        let status = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library\n multi-line\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n\nPackage: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.15-1~deb12u1)\nVersion: 3.0.15-1~deb12u1+b1\n";
        let p = parse_dpkg("/var/lib/dpkg/status", status.as_bytes()).unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].source_name.as_deref(), p[0].source_version.as_deref()),
            ("libc6", Some("glibc"), Some("2.36-9+deb12u10"))
        );
        assert_eq!(
            (p[1].source_name.as_deref(), p[1].source_version.as_deref()),
            (Some("openssl"), Some("3.0.15-1~deb12u1"))
        );
        assert_eq!(p[1].version, "3.0.15-1~deb12u1+b1");
        assert!(parse_dpkg("/x", b"\xff\xfe random").is_err());
    }

    #[test]
    fn parses_apk_installed() {
        let db = "C:Q1abc=\nP:musl\nV:1.1.24-r2\nA:x86_64\nS:1\nL:MIT\no:musl\nm:Timo\n\nC:Q1def=\nP:libcrypto1.1\nV:1.1.1d-r3\nA:x86_64\nL:OpenSSL\no:openssl\n";
        let p = parse_apk("/lib/apk/db/installed", db.as_bytes()).unwrap_or_default();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(p[1].licenses, vec!["OpenSSL".to_string()]);
        assert!(parse_apk("/x", b"nonsense without records").is_err());
    }
}
