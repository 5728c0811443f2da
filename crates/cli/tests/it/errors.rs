//! Bad input gets a clear, one-line error naming the image and layer — or, for a
//! corrupt package database, a warning while the rest of the image is still reported.

use crate::images::oci_ref;
use crate::util::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn write_blob(dir: &Path, data: &[u8]) -> String {
    let d = digest(data);
    let p = dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    std::fs::create_dir_all(p.parent().unwrap_or(dir)).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(p, data).unwrap_or_else(|e| panic!("{e}"));
    d
}

/// One tar entry: (path, content, mode) — or a symlink when content starts with "->".
pub fn tar_layer(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in entries {
        let mut h = tar::Header::new_gnu();
        if let Some(target) = data.strip_prefix(b"->") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, path, String::from_utf8_lossy(target).as_ref()).unwrap_or_else(|e| panic!("{e}"));
        } else {
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            // Write the raw name so hostile paths ("../x") reach the scanner unchanged.
            let name = path.as_bytes();
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            b.append(&h, *data).unwrap_or_else(|e| panic!("{e}"));
        }
    }
    b.into_inner().unwrap_or_else(|e| panic!("{e}"))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap_or_else(|e| panic!("{e}"));
    gz.finish().unwrap_or_else(|e| panic!("{e}"))
}

/// Write an OCI layout with the given (already compressed) layer blobs; returns `oci:DIR:t`.
/// `layer_digests` may override the descriptor digests (to provoke mismatches).
pub fn make_layout(dir: &Path, layers: &[Vec<u8>], media_type: &str, layer_digests: Option<Vec<String>>) -> String {
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let d = write_blob(dir, l);
            let d = layer_digests.as_ref().and_then(|v| v.get(i).cloned()).unwrap_or(d);
            serde_json::json!({"mediaType": media_type, "digest": d, "size": l.len()})
        })
        .collect();
    let config =
        serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let cd = write_blob(dir, &config);
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    });
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    let md = write_blob(dir, &manifest);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "t"}}]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap_or_else(|e| panic!("{e}"));
    format!("oci:{}:t", dir.display())
}

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const APK_DB: &[u8] = b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:zlib\nV:1.3-r0\nA:x86_64\n\n";

fn fails_with(args: &[&str], needles: &[&str]) {
    let out = palisade(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "palisade {args:?} should fail");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.trim_end().lines().count(), 1, "one-line reason, got: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}

#[test]
fn corrupt_package_database_is_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let layer = tar_layer(&[
        ("etc/alpine-release", b"3.19.1\n", 0o644),
        ("lib/apk/db/installed", APK_DB, 0o644),
        ("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0 then garbage that is not a database", 0o644),
        ("app/node_modules/x/package.json", b"{\"name\": \"x\", \"version\": ", 0o644),
    ]);
    let r = make_layout(dir.path(), &[gzip(&layer)], GZ, None);
    let sbom = palisade_json(&["sbom", &r, "-f", "json"]);
    let names: Vec<String> =
        sbom["packages"].as_array().map(|a| a.iter().map(|p| s(&p["name"])).collect()).unwrap_or_default();
    assert_eq!(names, vec!["musl", "zlib"]);
    let warned: Vec<String> =
        sbom["warnings"].as_array().map(|a| a.iter().map(|w| s(&w["path"])).collect()).unwrap_or_default();
    assert_eq!(warned, vec!["/app/node_modules/x/package.json", "/var/lib/rpm/rpmdb.sqlite"]);
}

#[test]
fn hostile_paths_stay_inside_the_image() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let layer = tar_layer(&[
        ("../../../../lib/apk/db/installed", APK_DB, 0o644),
        ("etc/os-release", b"->../../../../../../usr/lib/os-release", 0),
        ("usr/lib/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n", 0o644),
    ]);
    let r = make_layout(dir.path(), &[gzip(&layer)], GZ, None);
    let sbom = palisade_json(&["sbom", &r, "-f", "json"]);
    assert_eq!(s(&sbom["os"]["family"]), "alpine");
    let found: Vec<String> =
        sbom["packages"].as_array().map(|a| a.iter().map(|p| s(&p["found_in"])).collect()).unwrap_or_default();
    assert_eq!(found, vec!["/lib/apk/db/installed", "/lib/apk/db/installed"]);
}

#[test]
fn layer_errors_name_the_layer() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let good = gzip(&tar_layer(&[("lib/apk/db/installed", APK_DB, 0o644)]));
    // Truncated gzip.
    let truncated = good[..good.len() / 2].to_vec();
    let r = make_layout(&dir.path().join("trunc"), std::slice::from_ref(&truncated), GZ, None);
    fails_with(&["sbom", &r], &[&digest(&truncated), "gzip/tar stream"]);
    // Digest mismatch: the descriptor claims other content.
    let other = digest(b"something else");
    let r = make_layout(&dir.path().join("mismatch"), std::slice::from_ref(&good), GZ, Some(vec![other.clone()]));
    // The blob path named by the descriptor does not exist: write the good bytes under the wrong name.
    let p = dir.path().join("mismatch/blobs/sha256").join(other.trim_start_matches("sha256:"));
    std::fs::write(&p, &good).unwrap_or_else(|e| panic!("{e}"));
    fails_with(&["sbom", &r], &["digest mismatch", &other, &digest(&good)]);
    // Unknown media type.
    let r = make_layout(&dir.path().join("mt"), std::slice::from_ref(&good), "application/x-not-a-layer", None);
    fails_with(&["sbom", &r], &["unsupported media type", "application/x-not-a-layer"]);
    // Not a tar at all (garbage, uncompressed).
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let r = make_layout(
        &dir.path().join("garbage"),
        std::slice::from_ref(&garbage),
        "application/vnd.oci.image.layer.v1.tar",
        None,
    );
    fails_with(&["sbom", &r], &[&digest(&garbage)]);
}

#[test]
fn reference_errors() {
    fails_with(&["sbom", &format!("oci:{}/oci:nope", testdata().display())], &["tag \"nope\"", "app:1.0"]);
    fails_with(&["sbom", "docker-archive:/nonexistent/file.tar"], &["/nonexistent/file.tar"]);
    fails_with(&["sbom", "dir:/nonexistent/dir"], &["/nonexistent/dir"]);
    fails_with(&["sbom", "Not/A:Valid Ref"], &["invalid image reference"]);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("bad.tar");
    std::fs::write(&f, b"this is not a tar archive at all, just some text").unwrap_or_else(|e| panic!("{e}"));
    fails_with(&["sbom", &format!("docker-archive:{}", f.display())], &["bad.tar"]);
    let _ = oci_ref();
}

#[test]
fn platform_selection_from_an_index() {
    // An index with the real image as linux/amd64 and a second entry for linux/arm64/v8.
    let src = testdata().join("oci");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{e}"));
    for e in std::fs::read_dir(src.join("blobs/sha256")).unwrap_or_else(|e| panic!("{e}")).flatten() {
        std::os::unix::fs::symlink(e.path(), blobs.join(e.file_name())).unwrap_or_else(|e| panic!("{e}"));
    }
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("index.json")).unwrap_or_default()).unwrap_or_default();
    let m = idx["manifests"][0].clone();
    let inner = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    ]});
    let inner = serde_json::to_vec(&inner).unwrap_or_default();
    let d = write_blob(dir.path(), &inner);
    let outer = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": d, "size": inner.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    std::fs::write(dir.path().join("index.json"), serde_json::to_vec(&outer).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}"));
    let r = format!("oci:{}:multi", dir.path().display());
    let sbom = palisade_json(&["sbom", &r, "--platform", "linux/amd64", "-f", "json"]);
    assert_eq!(s(&sbom["target"]["platform"]), "linux/amd64");
    fails_with(
        &["sbom", &r, "--platform", "linux/s390x"],
        &["no image for platform linux/s390x", "available: linux/amd64, linux/arm64/v8"],
    );
    fails_with(&["sbom", &r, "--platform", "linux"], &["os/arch"]);
}
