//! From a merged image view to an [`Sbom`]: OS detection, PURL distro
//! qualifiers, layer attribution.

use crate::analyzer::{Catalogers, Finding};
use crate::catalog::os;
use palisade_image::{FileMeta, ImageError, ImageInfo, Merged, Opened, Progress};
use palisade_model::{purl, OsInfo, PackageType, Sbom, ScanWarning, Target};

/// Package databases and release files looked for at fixed paths: when one
/// of these is (or lies under) a symlink or hard link, its content is found
/// at the link's target.
const FIXED_DATABASES: [&str; 8] = [
    "/var/lib/dpkg/status",
    "/lib/apk/db/installed",
    "/var/lib/rpm/Packages",
    "/var/lib/rpm/Packages.db",
    "/var/lib/rpm/rpmdb.sqlite",
    "/usr/lib/sysimage/rpm/Packages",
    "/usr/lib/sysimage/rpm/Packages.db",
    "/usr/lib/sysimage/rpm/rpmdb.sqlite",
];
/// Directories of per-package database files (distroless dpkg).
const DATABASE_DIRS: [&str; 1] = ["/var/lib/dpkg/status.d"];

/// Where the image's links send the fixed database paths that were not read
/// directly: (target path, path the cataloger should see), and directory
/// targets (target dir, logical dir).
#[derive(Debug, Default)]
struct Redirects {
    files: std::collections::HashMap<String, String>,
    dirs: Vec<(String, String)>,
}

fn redirects(merged: &Merged<Finding>) -> Redirects {
    let mut r = Redirects::default();
    if merged.links.is_empty() {
        return r;
    }
    for logical in FIXED_DATABASES.iter().chain(os::RELEASE_FILES.iter()) {
        if merged.files.contains_key(*logical) {
            continue;
        }
        let target = merged.resolve(logical);
        if target != *logical && !merged.files.contains_key(&target) {
            r.files.entry(target).or_insert_with(|| logical.to_string());
        }
    }
    for logical in DATABASE_DIRS {
        let target = merged.resolve(logical);
        if target != logical {
            r.dirs.push((format!("{target}/"), logical.to_string()));
        }
    }
    r
}

/// The second pass: only the link targets, catalogued as the paths they stand for.
struct Redirected<'a>(&'a Redirects);

impl Redirected<'_> {
    fn logical(&self, path: &str) -> Option<String> {
        if let Some(l) = self.0.files.get(path) {
            return Some(l.clone());
        }
        self.0.dirs.iter().find_map(|(dir, logical)| {
            path.strip_prefix(dir.as_str()).filter(|rest| !rest.contains('/')).map(|rest| format!("{logical}/{rest}"))
        })
    }
}

impl palisade_image::Analyzer for Redirected<'_> {
    type Output = (String, Finding);

    fn wants(&self, meta: &FileMeta<'_>) -> bool {
        self.logical(meta.path).is_some_and(|l| Catalogers.wants(&FileMeta { path: &l, ..*meta }))
    }

    fn analyze(
        &self,
        meta: &FileMeta<'_>,
        content: &mut dyn std::io::Read,
    ) -> std::io::Result<Option<(String, Finding)>> {
        let Some(logical) = self.logical(meta.path) else { return Ok(None) };
        let found = Catalogers.analyze(&FileMeta { path: &logical, ..*meta }, content)?;
        Ok(found.map(|f| (logical, f)))
    }
}

/// Scan an opened image or root filesystem into an SBOM.
///
/// Package databases reached through links (`/var/lib/dpkg/status` as a
/// symlink or hard link, `/var/lib/dpkg` as a symlink to another directory)
/// are read at their targets, inside the image root, in a second pass over
/// the layers that only runs when such a link exists.
pub fn scan(name: &str, opened: &Opened, progress: &dyn Progress) -> Result<Sbom, ImageError> {
    let mut merged = palisade_image::scan(opened, &Catalogers, progress)?;
    let r = redirects(&merged);
    if !r.files.is_empty() || !r.dirs.is_empty() {
        tracing::debug!(files = r.files.len(), dirs = r.dirs.len(), "package databases behind links; second pass");
        let second = palisade_image::scan(opened, &Redirected(&r), &palisade_image::NoProgress)?;
        for (_, found) in second.files {
            let (logical, value) = found.value;
            merged.files.entry(logical).or_insert(palisade_image::Found { layer: found.layer, value });
        }
    }
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
            Finding::Partial(pkgs, message) => {
                for mut p in pkgs {
                    p.layer = layer_name(found.layer);
                    sbom.packages.push(p);
                }
                tracing::warn!(path = %path, %message, "file searched in part");
                sbom.warnings.push(ScanWarning { path, message });
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

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_image::{ImageSource, LayerInfo};

    /// An image made of in-memory layer tars.
    #[derive(Debug)]
    struct Layers(ImageInfo, Vec<Vec<u8>>);

    impl ImageSource for Layers {
        fn info(&self) -> &ImageInfo {
            &self.0
        }
        fn open_layer(&self, idx: usize) -> palisade_image::Result<Box<dyn std::io::Read + Send + '_>> {
            Ok(Box::new(&self.1[idx][..]))
        }
    }

    enum E<'a> {
        F(&'a str, &'a str),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                E::F(p, c) => {
                    h.set_size(c.len() as u64);
                    h.set_cksum();
                    b.append_data(&mut h, p, c.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
                }
                E::Sym(p, t) | E::Hard(p, t) => {
                    h.set_size(0);
                    h.set_entry_type(if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    b.append_link(&mut h, p, t).unwrap_or_else(|e| panic!("{e}"));
                }
            }
        }
        b.into_inner().unwrap_or_else(|e| panic!("{e}"))
    }

    fn status(pkg: &str) -> String {
        format!("Package: {pkg}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\n\n")
    }

    fn names(layers: Vec<Vec<u8>>) -> Vec<String> {
        let info = ImageInfo {
            name: "test".into(),
            layers: layers
                .iter()
                .map(|l| LayerInfo {
                    digest: palisade_image::spec::sha256_digest(l),
                    digest_is_raw: true,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let opened = Opened::Image(Box::new(Layers(info, layers)));
        let sbom = scan("test", &opened, &palisade_image::NoProgress).unwrap_or_else(|e| panic!("{e}"));
        sbom.packages.iter().map(|p| p.name.clone()).collect()
    }

    #[test]
    fn dpkg_status_behind_links_is_found() {
        let a = status("alpha");
        // status as a symlink.
        let l = tar(&[E::F("var/lib/dpkg/status.real", &a), E::Sym("var/lib/dpkg/status", "status.real")]);
        assert_eq!(names(vec![l]), vec!["alpha"]);
        // status as a hard link.
        let l =
            tar(&[E::F("var/lib/dpkg/status.real", &a), E::Hard("var/lib/dpkg/status", "var/lib/dpkg/status.real")]);
        assert_eq!(names(vec![l]), vec!["alpha"]);
        // /var/lib/dpkg a symlink to another directory.
        let l = tar(&[E::F("opt/dpkg/status", &a), E::Sym("var/lib/dpkg", "../../opt/dpkg")]);
        assert_eq!(names(vec![l]), vec!["alpha"]);
        // An upper layer with a hard link at status: its target's packages replace the lower ones.
        let lower = tar(&[E::F("var/lib/dpkg/status", &a)]);
        let upper = tar(&[
            E::F("var/lib/dpkg/status-new", &status("beta")),
            E::Hard("var/lib/dpkg/status", "var/lib/dpkg/status-new"),
        ]);
        assert_eq!(names(vec![lower, upper]), vec!["beta"]);
        // A link out of the root stays inside it (and finds nothing there).
        let l = tar(&[E::Sym("var/lib/dpkg/status", "../../../../../../etc/passwd")]);
        assert!(names(vec![l]).is_empty());
    }
}
