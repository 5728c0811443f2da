//! Registry transport against Debian's docker-registry on 127.0.0.1 (started by scripts/test.sh):
//! anonymous, basic auth (flags, environment, Docker config file), digests, errors.

use crate::images::oci_ref;
use crate::util::*;
use std::process::Command;

fn sbom_json(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env("PALISADE_LOG", "error")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn registry_scan_matches_the_oci_layout() {
    let reg = registry("PALISADE_TEST_REGISTRY");
    let r = format!("{reg}/test/app:1.0");
    let from_registry = palisade_json(&["sbom", &r, "-f", "json"]);
    let from_layout = palisade_json(&["sbom", &oci_ref(), "-f", "json"]);
    assert_eq!(package_set(&from_registry), package_set(&from_layout));
    // Same layers, same attribution.
    assert_eq!(from_registry["target"]["layers"], from_layout["target"]["layers"]);
    let digest = s(&from_registry["target"]["digest"]);
    assert!(digest.starts_with("sha256:"), "manifest digest recorded: {digest}");
    // By digest, and with the docker:// prefix.
    let by_digest = palisade_json(&["sbom", &format!("docker://{reg}/test/app@{digest}"), "-f", "json"]);
    assert_eq!(package_set(&by_digest), package_set(&from_layout));
}

#[test]
fn registry_alpine_and_not_found() {
    let reg = registry("PALISADE_TEST_REGISTRY");
    let sbom = palisade_json(&["sbom", &format!("{reg}/library/alpine:3.11"), "-f", "json", "--insecure"]);
    assert_eq!(s(&sbom["os"]["version"]), "3.11.5");
    assert_eq!(packages_of(&sbom, "apk").len(), 14);
    let out = palisade(&["sbom", &format!("{reg}/library/alpine:9.99")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("HTTP 404") && err.contains("MANIFEST_UNKNOWN"), "{err}");
    let out = palisade(&["sbom", &format!("{reg}/no/such-repo:1")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 404") && err.contains("no/such-repo"), "{err}");
}

#[test]
fn basic_auth_with_flags_env_and_docker_config() {
    let reg = registry("PALISADE_TEST_REGISTRY_AUTH");
    let r = format!("{reg}/library/alpine:3.10");
    // No credentials: a clear 401.
    let out = sbom_json(&["sbom", &r], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("requires credentials") || err.contains("401"), "{err}");
    // Wrong password.
    let out = sbom_json(&["sbom", &r, "--username", "palisade", "--password", "wrong"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    // Flags.
    let out = sbom_json(&["sbom", &r, "-f", "json", "--username", "palisade", "--password", "s3cret"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Environment.
    let out = sbom_json(
        &["sbom", &r, "-f", "json"],
        &[("PALISADE_REGISTRY_USERNAME", "palisade"), ("PALISADE_REGISTRY_PASSWORD", "s3cret")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Docker config file.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let auth = "cGFsaXNhZGU6czNjcmV0"; // base64("palisade:s3cret")
    std::fs::write(dir.path().join("config.json"), format!(r#"{{"auths":{{"{reg}":{{"auth":"{auth}"}}}}}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    let out = sbom_json(&["sbom", &r, "-f", "json"], &[("DOCKER_CONFIG", dir.path().to_str().unwrap_or_default())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(s(&sbom["os"]["version"]), "3.10.4");
}

#[test]
fn bearer_token_flow_against_a_token_server() {
    // Debian's docker-registry in token mode; scripts/token-server.py issues RS256 JWTs.
    let reg = registry("PALISADE_TEST_REGISTRY_TOKEN");
    let r = format!("{reg}/library/alpine:3.11");
    let out = sbom_json(&["sbom", &r], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("token server") && err.contains("401"), "{err}");
    let out = sbom_json(&["sbom", &r, "--username", "palisade", "--password", "nope"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("token server"));
    let out = sbom_json(&["sbom", &r, "-f", "json", "--username", "palisade", "--password", "s3cret"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sbom: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(s(&sbom["os"]["version"]), "3.11.5");
    assert_eq!(packages_of(&sbom, "apk").len(), 14);
}
