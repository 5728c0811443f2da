//! `dir:` — root filesystems, as on a node. Symlinks resolve inside the root only.

use crate::util::*;

#[test]
fn rootfs_symlinks_resolve_inside_the_root() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path();
    let w = |p: &str, c: &str| {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap_or(root)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(p, c).unwrap_or_else(|e| panic!("{e}"));
    };
    w("usr/lib/os-release", "ID=alpine\nVERSION_ID=3.20.0\nPRETTY_NAME=\"Alpine Linux v3.20\"\n");
    w("lib/apk/db/installed", "P:busybox\nV:1.36.1-r29\nA:x86_64\n\n");
    w("srv/app/node_modules/left-pad/package.json", r#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#);
    std::fs::create_dir_all(root.join("etc")).unwrap_or_else(|e| panic!("{e}"));
    // Absolute: on the host this would be the host's os-release (Debian); inside the root it is Alpine's.
    std::os::unix::fs::symlink("/usr/lib/os-release", root.join("etc/os-release")).unwrap_or_else(|e| panic!("{e}"));
    // A link that would escape the root: scanning must not follow it out.
    std::os::unix::fs::symlink("/", root.join("srv/host")).unwrap_or_else(|e| panic!("{e}"));
    let arg = format!("dir:{}", root.display());
    let sbom = palisade_json(&["sbom", &arg, "-f", "json"]);
    assert_eq!(s(&sbom["os"]["family"]), "alpine");
    assert_eq!(s(&sbom["os"]["version"]), "3.20.0");
    let got: Vec<(String, String, String)> = package_set(&sbom).into_iter().collect();
    assert_eq!(
        got,
        vec![("apk".into(), "busybox".into(), "1.36.1-r29".into()), ("npm".into(), "left-pad".into(), "1.3.0".into())]
    );
}
