//! Reading SBOMs back: native Palisade JSON, CycloneDX JSON and SPDX 2.x JSON,
//! including the ones Trivy and Syft write — so stored SBOMs can be
//! re-assessed without pulling the image again.

use palisade_model::{OsInfo, Package, Purl, Sbom, Target};
use serde_json::Value;

/// Largest SBOM document accepted.
pub const MAX_SBOM: usize = 512 << 20;

/// Why an SBOM could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Not JSON.
    #[error("not a JSON document: {0}")]
    Json(String),
    /// JSON, but no format we know.
    #[error("not a CycloneDX, SPDX or Palisade SBOM")]
    Unknown,
    /// Too large.
    #[error("SBOM larger than {MAX_SBOM} bytes")]
    TooLarge,
}

/// The format a document was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbomKind {
    /// Native Palisade JSON.
    Native,
    /// CycloneDX.
    CycloneDx,
    /// SPDX.
    Spdx,
}

fn prop<'a>(c: &'a Value, names: &[&str]) -> Option<&'a str> {
    c.get("properties")?.as_array()?.iter().find_map(|p| {
        let n = p.get("name")?.as_str()?;
        if names.contains(&n) {
            p.get("value")?.as_str()
        } else {
            None
        }
    })
}

/// Build a package from a PURL and optional extra facts.
fn from_purl(
    purl_str: &str,
    found_in: Option<&str>,
    src_name: Option<&str>,
    src_version: Option<&str>,
    licenses: Vec<String>,
) -> Option<Package> {
    let purl = Purl::parse(purl_str)?;
    let kind = purl.package_type()?;
    let mut version = purl.version.clone().unwrap_or_default();
    if let Some(e) = purl.qualifier("epoch").filter(|e| *e != "0") {
        version = format!("{e}:{version}");
    }
    // Syft: "upstream=glibc" or "upstream=glibc@2.36-9".
    let (up_name, up_version) = match purl.qualifier("upstream") {
        Some(u) => match u.split_once('@') {
            Some((n, v)) => (Some(n.to_string()), Some(v.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    let source_name = src_name.map(str::to_string).or(up_name);
    let source_version = src_version.map(str::to_string).or(up_version);
    let source_version = match (&source_name, source_version) {
        (Some(_), None) if kind.is_os() => Some(version.clone()),
        (_, v) => v,
    };
    Some(Package {
        name: purl.package_name(),
        version,
        kind,
        purl: purl_str.to_string(),
        source_name: source_name.filter(|s| !s.is_empty()),
        source_version: source_version.filter(|s| !s.is_empty()),
        arch: purl.qualifier("arch").map(str::to_string),
        licenses,
        found_in: found_in.unwrap_or("").to_string(),
        layer: String::new(),
    })
}

fn os_from_distro(q: &str) -> OsInfo {
    // "debian-12", "alpine-3.18.4", "ubuntu-22.04"
    match q.split_once('-') {
        Some((f, v)) => OsInfo { family: f.to_string(), version: v.to_string(), ..Default::default() },
        None => OsInfo { family: q.to_string(), ..Default::default() },
    }
}

fn cdx_licenses(c: &Value) -> Vec<String> {
    c.get("licenses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| {
                    l.get("expression")
                        .and_then(Value::as_str)
                        .or_else(|| {
                            l.get("license").and_then(|x| x.get("id").or_else(|| x.get("name"))).and_then(Value::as_str)
                        })
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cyclonedx(v: &Value) -> Sbom {
    let mut sbom = Sbom::default();
    let meta = &v["metadata"]["component"];
    sbom.target = Target { name: meta["name"].as_str().unwrap_or("").to_string(), ..Default::default() };
    let mut stack: Vec<&Value> =
        v.get("components").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    while let Some(c) = stack.pop() {
        if let Some(children) = c.get("components").and_then(Value::as_array) {
            stack.extend(children.iter());
        }
        if c["type"] == "operating-system" {
            sbom.os = Some(OsInfo {
                family: c["name"].as_str().unwrap_or("").to_lowercase(),
                version: c["version"].as_str().unwrap_or("").to_string(),
                ..Default::default()
            });
            continue;
        }
        let Some(purl) = c.get("purl").and_then(Value::as_str) else { continue };
        let found = prop(c, &["palisade:package:found_in", "aquasecurity:trivy:FilePath", "syft:location:0:path"]);
        let src_name = prop(c, &["palisade:package:source_name", "aquasecurity:trivy:SrcName"]);
        let src_version = prop(c, &["palisade:package:source_version"]).map(str::to_string).or_else(|| {
            // Trivy splits the source version: SrcEpoch, SrcVersion, SrcRelease.
            let v = prop(c, &["aquasecurity:trivy:SrcVersion"])?;
            let rel = prop(c, &["aquasecurity:trivy:SrcRelease"]).map(|r| format!("-{r}")).unwrap_or_default();
            let ep = prop(c, &["aquasecurity:trivy:SrcEpoch"])
                .filter(|e| *e != "0")
                .map(|e| format!("{e}:"))
                .unwrap_or_default();
            Some(format!("{ep}{v}{rel}"))
        });
        if let Some(mut p) = from_purl(purl, found, src_name, src_version.as_deref(), cdx_licenses(c)) {
            p.layer =
                prop(c, &["palisade:layer:digest", "aquasecurity:trivy:LayerDigest", "aquasecurity:trivy:LayerDiffID"])
                    .unwrap_or("")
                    .to_string();
            sbom.packages.push(p);
        }
    }
    sbom
}

fn spdx(v: &Value) -> Sbom {
    let mut sbom = Sbom::default();
    sbom.target.name = v["name"].as_str().unwrap_or("").to_string();
    for p in v.get("packages").and_then(Value::as_array).into_iter().flatten() {
        if p["primaryPackagePurpose"] == "OPERATING-SYSTEM" {
            sbom.os = Some(OsInfo {
                family: p["name"].as_str().unwrap_or("").to_lowercase(),
                version: p["versionInfo"].as_str().unwrap_or("").to_string(),
                ..Default::default()
            });
            continue;
        }
        let purl = p.get("externalRefs").and_then(Value::as_array).and_then(|refs| {
            refs.iter().find(|r| r["referenceType"] == "purl").and_then(|r| r["referenceLocator"].as_str())
        });
        let Some(purl) = purl else { continue };
        let lic = p["licenseDeclared"].as_str().filter(|l| *l != "NOASSERTION" && *l != "NONE").map(str::to_string);
        let info = p["sourceInfo"].as_str().unwrap_or("");
        let found = info.strip_prefix("found in ").map(|s| s.split(" (layer").next().unwrap_or(s));
        // Trivy: sourceInfo "built package from: openssl 1.1.1d-r3"; Palisade: comment "source package openssl 1.1.1d-r3".
        let src = info
            .strip_prefix("built package from: ")
            .or_else(|| p["comment"].as_str().and_then(|c| c.strip_prefix("source package ")));
        let (src_name, src_version) = match src.map(|s| s.split_whitespace().collect::<Vec<_>>()) {
            Some(parts) if parts.len() == 2 => (Some(parts[0]), Some(parts[1])),
            _ => (None, None),
        };
        if let Some(pkg) = from_purl(purl, found, src_name, src_version, lic.into_iter().collect()) {
            sbom.packages.push(pkg);
        }
    }
    sbom
}

/// Read an SBOM document.
pub fn read(data: &[u8]) -> Result<(Sbom, SbomKind), ReadError> {
    if data.len() > MAX_SBOM {
        return Err(ReadError::TooLarge);
    }
    let v: Value = serde_json::from_slice(data).map_err(|e| ReadError::Json(e.to_string()))?;
    let (mut sbom, kind) = if v["bomFormat"] == "CycloneDX" {
        (cyclonedx(&v), SbomKind::CycloneDx)
    } else if v.get("spdxVersion").is_some() {
        (spdx(&v), SbomKind::Spdx)
    } else if v.get("packages").is_some() && v.get("target").is_some() {
        (serde_json::from_value(v).map_err(|e| ReadError::Json(e.to_string()))?, SbomKind::Native)
    } else {
        return Err(ReadError::Unknown);
    };
    // No OS component: take it from the distro qualifier of an OS package's PURL.
    if sbom.os.is_none() {
        sbom.os = sbom
            .packages
            .iter()
            .filter(|p| p.kind.is_os())
            .find_map(|p| Purl::parse(&p.purl).and_then(|u| u.qualifier("distro").map(os_from_distro)));
    }
    if let Some(os) = sbom.os.as_mut() {
        // Trivy writes Debian's full point release ("12.10"); keep it, matching uses the major.
        os.family = match os.family.as_str() {
            "debian gnu/linux" => "debian".into(),
            "alpine linux" => "alpine".into(),
            f => f.to_string(),
        };
    }
    sbom.normalize();
    Ok((sbom, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_trivy_style_cyclonedx() {
        let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","metadata":{"component":{"name":"img"}},
          "components":[
            {"type":"operating-system","name":"debian","version":"12.10"},
            {"type":"library","name":"libc6","version":"2.36-9+deb12u10","purl":"pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12.10",
             "properties":[{"name":"aquasecurity:trivy:SrcName","value":"glibc"},{"name":"aquasecurity:trivy:SrcVersion","value":"2.36"},{"name":"aquasecurity:trivy:SrcRelease","value":"9+deb12u10"}]},
            {"type":"library","name":"lodash","version":"4.17.15","purl":"pkg:npm/lodash@4.17.15","licenses":[{"license":{"id":"MIT"}}]}]}"#;
        let (s, k) = read(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k, SbomKind::CycloneDx);
        assert_eq!(s.os.as_ref().map(|o| o.version.as_str()), Some("12.10"));
        let libc = &s.packages[0];
        assert_eq!(
            (libc.source_name.as_deref(), libc.source_version.as_deref()),
            (Some("glibc"), Some("2.36-9+deb12u10"))
        );
        assert_eq!(s.packages[1].licenses, vec!["MIT".to_string()]);
    }

    #[test]
    fn reads_syft_style_upstream_and_spdx() {
        let doc = r#"{"spdxVersion":"SPDX-2.3","name":"x","packages":[
            {"name":"libssl3","versionInfo":"3.0.15-1~deb12u1","licenseDeclared":"NOASSERTION",
             "externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":"pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64&upstream=openssl&distro=debian-12"}]}]}"#;
        let (s, k) = read(doc.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k, SbomKind::Spdx);
        assert_eq!(s.os.as_ref().map(|o| (o.family.as_str(), o.version.as_str())), Some(("debian", "12")));
        assert_eq!(s.packages[0].source_name.as_deref(), Some("openssl"));
        assert!(read(b"{}").is_err());
        assert!(read(b"not json").is_err());
    }
}
