//! From a merged image view to an [`Sbom`]: OS detection, PURL distro
//! qualifiers, layer attribution.

use crate::analyzer::{Catalogers, Finding};
use crate::catalog::os;
use palisade_image::{ImageError, ImageInfo, Merged, Opened, Progress};
use palisade_model::{purl, OsInfo, PackageType, Sbom, ScanWarning, Target};

/// Scan an opened image or root filesystem into an SBOM.
pub fn scan(name: &str, opened: &Opened, progress: &dyn Progress) -> Result<Sbom, ImageError> {
    let merged = palisade_image::scan(opened, &Catalogers, progress)?;
    let info = match opened {
        Opened::Image(src) => Some(src.info().clone()),
        Opened::Dir(_) => None,
    };
    Ok(assemble(name, info.as_ref(), merged))
}

/// Detect the OS from the release files present.
pub fn detect_os(merged: &Merged<Finding>) -> Option<OsInfo> {
    let mut found = None;
    for path in os::RELEASE_FILES {
        if let Some(f) = merged.get(path) {
            if let Finding::Release(text) = &f.value {
                if let Some(o) = os::parse_release(path, text) {
                    found = Some(o);
                    break;
                }
            }
        }
    }
    let has_status = merged.files.contains_key("/var/lib/dpkg/status");
    let has_status_d = merged
        .files
        .range("/var/lib/dpkg/status.d/".to_string()..)
        .next()
        .is_some_and(|(k, _)| k.starts_with("/var/lib/dpkg/status.d/"));
    if let Some(o) = found.as_mut() {
        if has_status_d && !has_status {
            o.distroless = true;
        }
    }
    found
}

/// Namespace for OS package PURLs.
fn purl_namespace(family: &str) -> &str {
    match family {
        "rhel" => "redhat",
        "amzn" => "amazon",
        "ol" => "oracle",
        "sles" | "opensuse-leap" | "opensuse-tumbleweed" | "sle-micro" => "suse",
        f => f,
    }
}

/// Build the SBOM from merged analyzer results.
pub fn assemble(name: &str, info: Option<&ImageInfo>, merged: Merged<Finding>) -> Sbom {
    let os = detect_os(&merged);
    let layer_name = |i: usize| info.and_then(|inf| inf.layers.get(i)).map(|l| l.digest.clone()).unwrap_or_default();
    let mut sbom = Sbom {
        target: Target {
            name: name.to_string(),
            digest: info.map(|i| i.manifest_digest.clone()).unwrap_or_default(),
            image_id: info.map(|i| i.config_digest.clone()).unwrap_or_default(),
            layers: info.map(|i| i.layers.iter().map(|l| l.digest.clone()).collect()).unwrap_or_default(),
            platform: info.map(|i| i.platform.clone()).unwrap_or_default(),
        },
        os: os.clone(),
        packages: Vec::new(),
        warnings: merged.warnings.iter().map(|(p, m)| ScanWarning { path: p.clone(), message: m.clone() }).collect(),
    };
    for (path, found) in merged.files {
        match found.value {
            Finding::Packages(pkgs) => {
                for mut p in pkgs {
                    p.layer = layer_name(found.layer);
                    if p.kind.is_os() {
                        p.purl = os_purl(&p, os.as_ref());
                    }
                    sbom.packages.push(p);
                }
            }
            Finding::Warning(message) => {
                tracing::warn!(path = %path, %message, "file skipped");
                sbom.warnings.push(ScanWarning { path, message });
            }
            Finding::Release(_) => {}
        }
    }
    sbom.normalize();
    sbom
}

/// The PURL of an OS package: `pkg:deb/debian/NAME@VERSION?arch=..&distro=debian-12&epoch=N`.
pub fn os_purl(p: &palisade_model::Package, os: Option<&OsInfo>) -> String {
    let mut q: Vec<(String, String)> = Vec::new();
    if let Some(a) = &p.arch {
        q.push(("arch".into(), a.clone()));
    }
    let (epoch, version) = match p.version.split_once(':') {
        Some((e, v)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => (Some(e), v),
        _ => (None, p.version.as_str()),
    };
    if let Some(e) = epoch {
        q.push(("epoch".into(), e.to_string()));
    }
    let ns = match os {
        Some(o) => {
            q.push(("distro".into(), o.purl_distro()));
            Some(purl_namespace(&o.family).to_string())
        }
        None => match p.kind {
            PackageType::Deb => Some("debian".to_string()),
            PackageType::Apk => Some("alpine".to_string()),
            _ => None,
        },
    };
    q.sort();
    purl(p.kind, ns.as_deref(), &p.name, version, &q)
}
