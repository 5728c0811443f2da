//! `palisade db build|status` and `palisade scan image|rootfs|sbom` end to end with the real
//! feeds in ../shared/vulndata (Alpine secdb, PyPA / Go / RustSec OSV, KEV, the Debian
//! tracker sample).

use crate::images::oci_ref;
use crate::util::*;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::OnceLock;

/// A database built once from ../shared/vulndata.
pub fn db() -> &'static str {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("shared-{}.db", std::process::id()));
        let out = palisade(&[
            "db",
            "build",
            "--db",
            p.to_str().unwrap_or_default(),
            "--from",
            shared().join("vulndata").to_str().unwrap_or_default(),
            // upstream-samples holds one deliberately invalid EPSS file.
            "--allow-feed-errors",
            // The AlmaLinux and Chainguard OSV files yield no records until those ecosystems
            // are read (issue 20); without this the empty groups refuse the build.
            "--allow-shrink",
        ]);
        assert!(out.status.success(), "db build failed: {}", String::from_utf8_lossy(&out.stderr));
        p
    })
    .to_str()
    .unwrap_or_default()
}

fn scan(args: &[&str]) -> Value {
    let mut a = vec!["scan"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--db", db(), "-f", "json", "--db-max-age", "100000d"]);
    palisade_json(&a)
}

fn finding<'a>(r: &'a Value, package: &str, id: &str) -> Option<&'a Value> {
    r["findings"]
        .as_array()?
        .iter()
        .find(|f| f["package"] == package && f["ids"].as_array().is_some_and(|ids| ids.iter().any(|i| i == id)))
}

#[test]
fn db_status_lists_the_shared_sources() {
    let out = palisade(&["db", "status", "--db", db(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let names: Vec<String> =
        v["sources"].as_array().map(|a| a.iter().map(|x| s(&x["name"])).collect()).unwrap_or_default();
    for want in ["osv:Go", "osv:crates.io", "osv:PyPI", "kev"] {
        assert!(names.iter().any(|n| n == want), "no source {want} in {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("alpine")), "{names:?}");
    assert_eq!(v["kev"], 1404);
    assert!(v["vulnerabilities"].as_u64().unwrap_or(0) > 8000);
}

#[test]
fn alpine_images_against_the_alpine_secdb() {
    let img = format!("docker-archive:{}", shared().join("images/alpine-310.tar.gz").display());
    let r = scan(&["image", &img]);
    assert_eq!(r["os"]["version"], "3.10.4");
    // musl 1.1.22-r3: CVE-2019-14697 was fixed in exactly that release, CVE-2020-28928 in -r4.
    assert!(finding(&r, "musl", "CVE-2019-14697").is_none(), "fixed in the installed version");
    let f = finding(&r, "musl", "CVE-2020-28928").unwrap_or_else(|| panic!("musl CVE-2020-28928"));
    assert_eq!(f["fixed_versions"], serde_json::json!(["1.1.22-r4"]));
    assert_eq!(f["status"], "fixed");
    // libcrypto1.1 is matched through its origin, openssl.
    let f = finding(&r, "libcrypto1.1", "CVE-2020-1967").unwrap_or_else(|| panic!("openssl CVE-2020-1967"));
    assert_eq!(f["source_package"], "openssl");
    assert_eq!(f["fixed_versions"], serde_json::json!(["1.1.1g-r0"]));
    assert!(s(&f["remediation"]).contains("1.1.1g-r0"));
    // apk-tools 2.10.4: both later fixes apply.
    assert!(finding(&r, "apk-tools", "CVE-2021-30139").is_some());
    assert!(finding(&r, "apk-tools", "CVE-2021-36159").is_some());
}

#[test]
fn test_image_language_packages_against_osv() {
    let r = scan(&["image", &oci_ref()]);
    // PyPA: requests 2.19.1 (CVE-2018-18074, fixed 2.20.0), PyYAML 5.3 (CVE-2020-14343), urllib3, Jinja2.
    let f = finding(&r, "requests", "CVE-2018-18074").unwrap_or_else(|| panic!("requests"));
    assert!(f["fixed_versions"].as_array().is_some_and(|v| v.iter().any(|x| x == "2.20.0")), "{f}");
    assert!(
        f["ids"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| s(i).starts_with("PYSEC-") || s(i).starts_with("GHSA-"))),
        "aliases merged: {f}"
    );
    assert!(finding(&r, "PyYAML", "CVE-2020-14343").is_some_and(|f| f["installed"] == "5.3"));
    assert!(finding(&r, "urllib3", "CVE-2019-11236").is_some());
    assert!(finding(&r, "Jinja2", "CVE-2019-10906").is_some());
    assert!(
        !r["findings"].as_array().is_some_and(|a| a.iter().any(|f| f["package"] == "Django")),
        "Django was deleted"
    );
    // RustSec via the cargo-auditable binary and Cargo.lock.
    let f = finding(&r, "smallvec", "RUSTSEC-2021-0003").unwrap_or_else(|| panic!("smallvec"));
    assert!(f["fixed_versions"].as_array().is_some_and(|v| !v.is_empty()));
    assert!(finding(&r, "time", "RUSTSEC-2020-0071").is_some());
    // Go: the go1.19.8 standard library (HTTP/2 stream reset, fixed in 1.20.10 and 1.21.3).
    let f = finding(&r, "stdlib", "GO-2023-2102").unwrap_or_else(|| panic!("stdlib GO-2023-2102"));
    assert_eq!(f["id"], "CVE-2023-39325");
    assert_eq!(f["fixed_versions"], serde_json::json!(["1.20.10", "1.21.3"]));
    // One finding per vulnerability per package: no duplicate IDs for a package version.
    let mut seen = std::collections::BTreeSet::new();
    for f in r["findings"].as_array().into_iter().flatten() {
        assert!(
            seen.insert((s(&f["type"]), s(&f["package"]), s(&f["installed"]), s(&f["id"]))),
            "duplicate finding {f}"
        );
    }
}

#[test]
fn sbom_reassessment_matches_the_image_scan() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let img = format!("docker-archive:{}", shared().join("images/alpine-311.tar.gz").display());
    for fmt in ["cyclonedx", "spdx", "json"] {
        let sbom = dir.path().join(format!("sbom.{fmt}"));
        let out = palisade(&["sbom", &img, "-f", fmt, "-o", sbom.to_str().unwrap_or_default()]);
        assert!(out.status.success());
        let from_sbom = scan(&["sbom", sbom.to_str().unwrap_or_default()]);
        let from_image = scan(&["image", &img]);
        let ids = |r: &Value| -> Vec<(String, String)> {
            r["findings"]
                .as_array()
                .map(|a| a.iter().map(|f| (s(&f["package"]), s(&f["id"]))).collect())
                .unwrap_or_default()
        };
        assert!(!ids(&from_image).is_empty());
        assert_eq!(ids(&from_sbom), ids(&from_image), "{fmt}");
    }
    // SBOMs written by Trivy 0.59.1 (CycloneDX and SPDX) are re-assessed the same way.
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let t = scan(&["sbom", data.join("trivy-0.59.1-alpine-310.cdx.json").to_str().unwrap_or_default()]);
    assert!(
        finding(&t, "libcrypto1.1", "CVE-2020-1967").is_some_and(|f| f["source_package"] == "openssl"),
        "trivy cdx"
    );
    let t = scan(&["sbom", data.join("trivy-0.59.1-alpine-311.spdx.json").to_str().unwrap_or_default()]);
    assert!(finding(&t, "musl", "CVE-2020-28928").is_some(), "trivy spdx");
}

#[test]
fn kev_enrichment() {
    // apache-airflow 1.10.10 is affected by PYSEC-2020-14 = CVE-2020-11978, which CISA lists as exploited.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let doc = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {"component": {"name": "airflow"}},
        "components": [{"type": "library", "name": "apache-airflow", "version": "1.10.10", "purl": "pkg:pypi/apache-airflow@1.10.10"}]});
    let f = dir.path().join("a.cdx.json");
    std::fs::write(&f, serde_json::to_vec(&doc).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let r = scan(&["sbom", f.to_str().unwrap_or_default()]);
    let hit = finding(&r, "apache-airflow", "CVE-2020-11978").unwrap_or_else(|| panic!("airflow: {r}"));
    assert!(hit["ids"].as_array().is_some_and(|ids| ids.iter().any(|i| i == "PYSEC-2020-14")));
    assert_eq!(hit["kev"]["cve"], "CVE-2020-11978");
    assert!(!s(&hit["kev"]["date_added"]).is_empty());
    assert!(!s(&hit["kev"]["due_date"]).is_empty());
}

#[test]
fn debian_matching_with_the_tracker_sample() {
    // A CycloneDX SBOM of a Debian 12 system with packages the tracker sample covers.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tracker: Value = serde_json::from_slice(
        &std::fs::read(shared().join("vulndata/upstream-samples/debian/input/debian.json")).unwrap_or_default(),
    )
    .unwrap_or_default();
    // Pick a (package, CVE) with a resolved bookworm fix from the real data, install one revision below it.
    let mut pick = None;
    for (pkg, cves) in tracker.as_object().into_iter().flatten() {
        for (cve, v) in cves.as_object().into_iter().flatten() {
            let b = &v["releases"]["bookworm"];
            if b["status"] == "resolved" && b["fixed_version"].as_str().is_some_and(|f| f != "0") && pick.is_none() {
                pick = Some((pkg.clone(), cve.clone(), s(&b["fixed_version"])));
            }
        }
    }
    let (pkg, cve, fixed) = pick.unwrap_or_else(|| panic!("no resolved bookworm entry in the sample"));
    let installed = format!("{fixed}~old1");
    let doc = serde_json::json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {"component": {"name": "debian-host"}},
        "components": [{"type": "operating-system", "name": "debian", "version": "12"},
                       {"type": "library", "name": format!("{pkg}-bin"), "version": installed,
                        "purl": format!("pkg:deb/debian/{pkg}-bin@{installed}?arch=amd64&upstream={pkg}&distro=debian-12")}]});
    let f = dir.path().join("deb.cdx.json");
    std::fs::write(&f, serde_json::to_vec(&doc).unwrap_or_default()).unwrap_or_else(|e| panic!("{e}"));
    let r = scan(&["sbom", f.to_str().unwrap_or_default()]);
    let hit = finding(&r, &format!("{pkg}-bin"), &cve).unwrap_or_else(|| panic!("{pkg} {cve} not found: {r}"));
    assert_eq!(hit["fixed_versions"], serde_json::json!([fixed]));
    assert_eq!(hit["source_package"], pkg);
}

#[test]
fn filters_gates_and_formats() {
    let img = format!("docker-archive:{}", shared().join("images/alpine-310.tar.gz").display());
    let all = scan(&["image", &img]);
    let n = all["findings"].as_array().map(Vec::len).unwrap_or(0);
    assert!(n > 5);
    // Exit code gate.
    let out =
        palisade(&["scan", "image", &img, "--db", db(), "-f", "json", "--exit-code", "3", "--db-max-age", "100000d"]);
    assert_eq!(out.status.code(), Some(3));
    let out = palisade(&[
        "scan",
        "image",
        &img,
        "--db",
        db(),
        "-f",
        "json",
        "--exit-code",
        "3",
        "--severity",
        "CRITICAL",
        "--ignore-unfixed",
        "--db-max-age",
        "100000d",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let crit = v["findings"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(out.status.code(), Some(if crit > 0 { 3 } else { 0 }));
    assert!(v["findings"].as_array().into_iter().flatten().all(|f| f["severity"] == "CRITICAL"));
    // Ignore file and OpenVEX.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ign = dir.path().join("ignore");
    std::fs::write(&ign, "# accepted\nCVE-2020-28928\n").unwrap_or_else(|e| panic!("{e}"));
    let vex = dir.path().join("vex.json");
    std::fs::write(&vex, r#"{"@context":"https://openvex.dev/ns/v0.2.0","@id":"x","author":"t","timestamp":"2026-01-01T00:00:00Z","version":1,
        "statements":[{"vulnerability":{"name":"CVE-2020-1967"},"products":[{"@id":"pkg:apk/alpine/libcrypto1.1"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let r = scan(&[
        "image",
        &img,
        "--ignorefile",
        ign.to_str().unwrap_or_default(),
        "--vex",
        vex.to_str().unwrap_or_default(),
    ]);
    assert!(finding(&r, "musl", "CVE-2020-28928").is_none());
    assert!(finding(&r, "libcrypto1.1", "CVE-2020-1967").is_none());
    assert!(finding(&r, "libssl1.1", "CVE-2020-1967").is_some(), "VEX names only libcrypto1.1");
    let reasons: Vec<String> =
        r["suppressed"].as_array().map(|a| a.iter().map(|x| s(&x["reason"])).collect()).unwrap_or_default();
    assert!(reasons.iter().any(|x| x.starts_with("vex: not_affected")), "{reasons:?}");
    // SARIF and CycloneDX with vulnerabilities.
    let sarif = palisade_json(&["scan", "image", &img, "--db", db(), "-f", "sarif", "--db-max-age", "100000d"]);
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().cloned().unwrap_or_default();
    assert_eq!(results.len(), n);
    let rules: Vec<String> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .map(|a| a.iter().map(|r| s(&r["id"])).collect())
        .unwrap_or_default();
    assert!(results.iter().all(|r| rules.contains(&s(&r["ruleId"]))));
    assert!(sarif["runs"][0]["tool"]["driver"]["rules"][0]["properties"]["security-severity"].is_string());
    let cdx = palisade_json(&["scan", "image", &img, "--db", db(), "-f", "cyclonedx", "--db-max-age", "100000d"]);
    let refs: std::collections::BTreeSet<String> =
        cdx["components"].as_array().map(|a| a.iter().map(|c| s(&c["bom-ref"])).collect()).unwrap_or_default();
    let vulns = cdx["vulnerabilities"].as_array().cloned().unwrap_or_default();
    assert!(!vulns.is_empty());
    for v in &vulns {
        for a in v["affects"].as_array().into_iter().flatten() {
            assert!(refs.contains(&s(&a["ref"])), "affects points at a component: {a}");
        }
    }
    // Table groups by package with counts.
    let out = palisade(&["scan", "image", &img, "--db", db(), "-f", "table", "--db-max-age", "100000d"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(t.contains(&format!("Total: {n} (CRITICAL:")), "{t}");
    assert!(t.lines().any(|l| l.starts_with("musl 1.1.22-r3 (apk, /lib/apk/db/installed)")), "{t}");
}

#[test]
fn stale_database_warns_and_missing_database_fails() {
    let img = format!("docker-archive:{}", shared().join("images/alpine-310.tar.gz").display());
    let out = palisade(&["scan", "image", &img, "--db", db(), "-f", "json", "--db-max-age", "0s"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let w0: Vec<String> = v["warnings"].as_array().map(|a| a.iter().map(s).collect()).unwrap_or_default();
    assert!(w0.iter().any(|x| x.contains("palisade db update")), "{w0:?}");
    let out = palisade(&["scan", "image", &img, "--db", db(), "-f", "json", "--db-max-age", "3650d"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(!v["warnings"].as_array().into_iter().flatten().any(|x| s(x).contains("db update")));
    let out = palisade(&["scan", "image", &img, "--db", "/nonexistent/palisade.db"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no vulnerability database"));
}

/// `--severity` and `--db-max-age` are typed: a word that is not a severity (it used to be
/// taken as UNKNOWN inside the library) and a bad duration are usage errors before anything is
/// read.
#[test]
fn unknown_severities_and_bad_durations_are_usage_errors() {
    for (args, value) in [
        (["--severity", "CRITICAL,HIHG"], "HIHG"),
        (["--severity", "not yet assigned"], "not yet assigned"),
        (["--db-max-age", "a week"], "a week"),
    ] {
        let mut a = vec!["scan", "sbom", "/nonexistent.json", "--db", "/nonexistent.db"];
        a.extend_from_slice(&args);
        let out = palisade(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(&format!("invalid value '{value}'")), "{a:?}: {err}");
    }
    // `unknown` is a severity (the findings nobody rated), in any case
    let out = palisade(&["scan", "sbom", "/nonexistent.json", "--db", "/nonexistent.db", "--severity", "Unknown"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("invalid value"), "{out:?}");
}
