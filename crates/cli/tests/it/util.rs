//! Shared helpers: running the binary, locating test data.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Run `palisade` with `args`.
pub fn palisade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(args)
        .env_remove("PALISADE_FORMAT")
        .env("PALISADE_LOG", "error")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .unwrap_or_else(|e| panic!("running palisade: {e}"))
}

/// Run `palisade` and parse its JSON stdout, failing with stderr on a non-zero exit.
pub fn palisade_json(args: &[&str]) -> Value {
    let out = palisade(args);
    assert!(out.status.success(), "palisade {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("palisade {args:?}: bad JSON: {e}"))
}

/// The shared data directory (`../shared` beside the checkout, or PALISADE_SHARED).
pub fn shared() -> PathBuf {
    std::env::var_os("PALISADE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// The cached test-image directory. Built on first use if PALISADE_TESTDATA_DIR is not set.
pub fn testdata() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("PALISADE_TESTDATA_DIR") {
            return PathBuf::from(d);
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-images.sh");
        let out =
            Command::new("bash").arg(&script).output().unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed (run scripts/test.sh, which installs its tools):\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
    })
}

/// `expected.json` written by the image build from the real tools' output.
pub fn expected() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let p = testdata().join("expected.json");
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    })
}

/// A registry address started by scripts/test.sh (env var `name`), or a clear failure.
pub fn registry(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: the registry tests need registries on 127.0.0.1; run scripts/test.sh")
    })
}

/// `(type, name, version)` of every package in a native JSON SBOM.
pub fn package_set(sbom: &Value) -> BTreeSet<(String, String, String)> {
    sbom["packages"]
        .as_array()
        .unwrap_or_else(|| panic!("no packages array"))
        .iter()
        .map(|p| (s(&p["type"]), s(&p["name"]), s(&p["version"])))
        .collect()
}

/// A JSON string value, or "".
pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Packages of one type with their `found_in` and `layer`.
pub fn packages_of<'a>(sbom: &'a Value, kind: &str) -> Vec<&'a Value> {
    sbom["packages"].as_array().map(|a| a.iter().filter(|p| p["type"] == kind).collect()).unwrap_or_default()
}
