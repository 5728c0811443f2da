//! `palisade sbom` on the project's three-layer test image and the shared Alpine images,
//! checked against what the real tools (dpkg-query, pip, npm, go version -m, cargo auditable)
//! recorded when the image was built.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeSet;

pub fn oci_ref() -> String {
    format!("oci:{}/oci:app:1.0", testdata().display())
}

fn oci_sbom() -> &'static Value {
    static V: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    V.get_or_init(|| palisade_json(&["sbom", &oci_ref(), "-f", "json"]))
}

fn pairs(v: &[&Value]) -> BTreeSet<(String, String)> {
    v.iter().map(|p| (s(&p["name"]), s(&p["version"]))).collect()
}

#[test]
fn debian_packages_match_dpkg_query_of_the_final_rootfs() {
    let sbom = oci_sbom();
    assert_eq!(s(&sbom["os"]["family"]), "debian");
    assert_eq!(s(&sbom["os"]["version"]), "12");
    let want: BTreeSet<(String, String)> = expected()["dpkg"]["final"]
        .as_array()
        .unwrap_or_else(|| panic!("dpkg.final"))
        .iter()
        .map(|p| (s(&p["package"]), s(&p["version"])))
        .collect();
    assert!(want.len() > 100, "expected.json lists only {} dpkg packages", want.len());
    assert_eq!(pairs(&packages_of(sbom, "deb")), want);
    let libc = packages_of(sbom, "deb").into_iter().find(|p| p["name"] == "libc6").unwrap_or_else(|| panic!("libc6"));
    assert_eq!(s(&libc["source_name"]), "glibc");
    assert!(s(&libc["purl"]).starts_with("pkg:deb/debian/libc6@"), "{}", libc["purl"]);
    assert!(s(&libc["purl"]).contains("distro=debian-12"), "{}", libc["purl"]);
    // The status file was rewritten by layer 2 (extra packages), so that layer introduced it.
    let layers = expected()["layers"].as_array().unwrap_or_else(|| panic!("layers"));
    assert_eq!(libc["layer"], layers[1]["digest"]);
}

#[test]
fn python_packages_match_and_the_whiteout_removes_django() {
    let sbom = oci_sbom();
    let py = packages_of(sbom, "pypi");
    let mut want: BTreeSet<(String, String)> = BTreeSet::new();
    for key in ["final_local", "final_debian"] {
        for p in expected()["python"][key].as_array().unwrap_or_else(|| panic!("{key}")) {
            want.insert((s(&p["name"]), s(&p["version"])));
        }
    }
    assert_eq!(pairs(&py), want);
    assert!(!py.iter().any(|p| s(&p["name"]).eq_ignore_ascii_case("django")), "Django was deleted in layer 3");
    // Django was installed in layer 2: the whiteout in layer 3 is what removes it.
    let layer2: Vec<String> =
        expected()["python"]["dist_info_layer2"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    assert!(layer2.iter().any(|p| p.contains("Django")), "test image lost its Django layer");
}

#[test]
fn npm_java_ruby_packages_match() {
    let sbom = oci_sbom();
    let npm = pairs(&packages_of(sbom, "npm"));
    for p in expected()["npm"]["packages"].as_array().unwrap_or_else(|| panic!("npm")) {
        assert!(npm.contains(&(s(&p["name"]), s(&p["version"]))), "missing npm {p}");
    }
    for (name, ver) in expected()["npm"]["direct"].as_object().unwrap_or_else(|| panic!("direct")) {
        assert!(npm.contains(&(name.clone(), s(ver))), "missing direct npm dependency {name}");
    }
    let maven = pairs(&packages_of(sbom, "maven"));
    for j in expected()["java"].as_array().unwrap_or_else(|| panic!("java")) {
        let name = format!("{}:{}", s(&j["group_id"]), s(&j["artifact_id"]));
        assert!(maven.contains(&(name.clone(), s(&j["version"]))), "missing {name}");
    }
    let gems = packages_of(sbom, "gem");
    for spec in expected()["ruby_gemspecs"].as_array().unwrap_or_else(|| panic!("gems")) {
        assert!(gems.iter().any(|g| g["found_in"] == *spec), "no gem from {spec}");
    }
    let rack = gems.iter().find(|g| g["name"] == "rack").unwrap_or_else(|| panic!("rack gem"));
    assert!(s(&rack["found_in"]).ends_with(&format!("rack-{}.gemspec", s(&rack["version"]))));
}

#[test]
fn go_and_rust_binaries_are_inventoried() {
    let sbom = oci_sbom();
    let go = expected()["go"].clone();
    let gopk = packages_of(sbom, "golang");
    for d in go["deps"].as_array().unwrap_or_else(|| panic!("go deps")) {
        assert!(
            gopk.iter()
                .any(|p| p["name"] == d["path"] && p["version"] == d["version"] && p["found_in"] == go["binary"]),
            "missing Go module {d}"
        );
    }
    let stdlib = format!("v{}", s(&go["go_version"]).trim_start_matches("go"));
    assert!(gopk.iter().any(|p| p["name"] == "stdlib" && s(&p["version"]) == stdlib), "no stdlib {stdlib}");
    let layers = expected()["layers"].as_array().unwrap_or_else(|| panic!("layers"));
    assert!(gopk.iter().all(|p| p["layer"] == layers[2]["digest"]), "Go binary is in layer 3");

    let rust = expected()["rust"].clone();
    let crates = packages_of(sbom, "cargo");
    for p in rust["auditable"]["packages"].as_array().unwrap_or_else(|| panic!("auditable")) {
        if p["source"] == "crates.io" {
            assert!(
                crates
                    .iter()
                    .any(|c| c["name"] == p["name"] && c["version"] == p["version"] && c["found_in"] == rust["binary"]),
                "missing crate {p} from the binary"
            );
        }
    }
    for p in rust["lock_packages"].as_array().unwrap_or_else(|| panic!("lock")) {
        if p.get("source").is_some() {
            assert!(
                crates.iter().any(|c| c["name"] == p["name"]
                    && c["version"] == p["version"]
                    && c["found_in"] == rust["cargo_lock"]),
                "missing crate {p} from Cargo.lock"
            );
        }
    }
}

#[test]
fn docker_archive_gives_the_same_inventory() {
    let archive = format!("docker-archive:{}", testdata().join("app.docker.tar").display());
    let a = palisade_json(&["sbom", &archive, "-f", "json"]);
    assert_eq!(package_set(&a), package_set(oci_sbom()));
    // docker-archive layers are identified by their diff IDs.
    let diff_ids: Vec<Value> =
        expected()["layers"].as_array().map(|l| l.iter().map(|x| x["diff_id"].clone()).collect()).unwrap_or_default();
    assert_eq!(a["target"]["layers"].as_array().cloned().unwrap_or_default(), diff_ids);
    assert_eq!(a["target"]["image_id"], expected()["config_digest"]);
}

#[test]
fn cyclonedx_and_spdx_describe_the_same_packages() {
    let native = oci_sbom();
    let purls: BTreeSet<String> =
        native["packages"].as_array().map(|a| a.iter().map(|p| s(&p["purl"])).collect()).unwrap_or_default();
    let cdx = palisade_json(&["sbom", &oci_ref(), "-f", "cyclonedx"]);
    assert_eq!(cdx["bomFormat"], "CycloneDX");
    assert_eq!(cdx["specVersion"], "1.6");
    let comps = cdx["components"].as_array().cloned().unwrap_or_default();
    let cdx_purls: BTreeSet<String> = comps.iter().filter_map(|c| c["purl"].as_str().map(str::to_string)).collect();
    assert_eq!(cdx_purls, purls);
    assert_eq!(comps.len(), native["packages"].as_array().map(Vec::len).unwrap_or(0) + 1, "packages + the OS");
    let refs: BTreeSet<&str> = comps.iter().filter_map(|c| c["bom-ref"].as_str()).collect();
    assert_eq!(refs.len(), comps.len(), "bom-refs are unique");

    let spdx = palisade_json(&["sbom", &oci_ref(), "-f", "spdx"]);
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let spdx_purls: BTreeSet<String> = spdx["packages"]
        .as_array()
        .map(|a| {
            a.iter()
                .flat_map(|p| p["externalRefs"].as_array().cloned().unwrap_or_default())
                .filter_map(|r| r["referenceLocator"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(spdx_purls, purls);
    let ids: BTreeSet<&str> = spdx["packages"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["SPDXID"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), spdx["packages"].as_array().map(Vec::len).unwrap_or(0), "SPDX IDs are unique");
}

#[test]
fn table_output_and_output_file() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("sbom.txt");
    let o = palisade(&["sbom", &oci_ref(), "-f", "table", "-o", out.to_str().unwrap_or_default()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}"));
    assert!(text.contains("(debian 12)"));
    assert!(text.lines().any(|l| l.starts_with("libc6 ") && l.contains(" deb ")));
    assert!(text.contains(" packages ("), "summary line");
}

#[test]
fn alpine_images_from_shared() {
    for (file, version, musl, busybox) in [
        ("alpine-310.tar.gz", "3.10.4", "1.1.22-r3", "1.30.1-r3"),
        ("alpine-311.tar.gz", "3.11.5", "1.1.24-r2", "1.31.1-r9"),
    ] {
        let p = format!("docker-archive:{}", shared().join("images").join(file).display());
        let sbom = palisade_json(&["sbom", &p, "-f", "json"]);
        assert_eq!(s(&sbom["os"]["family"]), "alpine");
        assert_eq!(s(&sbom["os"]["version"]), version);
        let apk = packages_of(&sbom, "apk");
        assert_eq!(apk.len(), 14, "{file}");
        let set = pairs(&apk);
        assert!(set.contains(&("musl".into(), musl.into())), "{file}");
        assert!(set.contains(&("busybox".into(), busybox.into())), "{file}");
        let ssl = apk.iter().find(|p| p["name"] == "libssl1.1").unwrap_or_else(|| panic!("libssl1.1"));
        assert_eq!(s(&ssl["source_name"]), "openssl");
        assert!(s(&ssl["purl"]).starts_with("pkg:apk/alpine/libssl1.1@"));
    }
}
