//! `palisade simulate audit` → `palisade detect audit`: the simulator's attack story is detected
//! end to end through the binary; rule linting; alert formats.

use crate::util::*;
use serde_json::Value;
use std::collections::BTreeSet;

#[test]
fn simulated_attack_is_detected_and_benign_traffic_is_quiet() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("audit.jsonl");
    let out = palisade(&[
        "simulate",
        "audit",
        "--seed",
        "7",
        "--events",
        "4000",
        "--stories",
        "2",
        "-o",
        log.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = palisade(&["detect", "audit", log.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alerts: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let rules: BTreeSet<String> = alerts.iter().filter_map(|a| a["rule"]["id"].as_str().map(str::to_string)).collect();
    assert!(rules.len() >= 40, "{} distinct rules fired: {rules:?}", rules.len());
    for a in alerts.iter().filter(|a| a["rule"].is_object()) {
        assert!(a["techniques"].as_array().is_some_and(|t| !t.is_empty()), "ATT&CK technique: {a}");
        assert!(a["tactics"].as_array().is_some_and(|t| !t.is_empty()), "ATT&CK tactic: {a}");
    }
    // Benign background alone raises nothing.
    let quiet = dir.path().join("benign.jsonl");
    let out = palisade(&[
        "simulate",
        "audit",
        "--seed",
        "8",
        "--events",
        "5000",
        "--stories",
        "0",
        "-o",
        quiet.to_str().unwrap_or_default(),
    ]);
    assert!(out.status.success());
    let out = palisade(&["detect", "audit", quiet.to_str().unwrap_or_default()]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "", "no alerts on benign traffic");
    // OCSF Detection Finding.
    let out = palisade(&["detect", "audit", log.to_str().unwrap_or_default(), "--alert-format", "ocsf"]);
    let ocsf: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(ocsf.iter().any(|o| o["class_uid"] == 2004), "Detection Findings");
    assert!(ocsf.iter().all(|o| o["class_uid"] == 2004 || o["class_uid"] == 2005), "alerts and incidents only");
}

#[test]
fn rule_files_are_linted_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "rules:\n  - id: X-1\n    name: broken\n    description: d\n    severity: high\n    tactics: [TA0002]\n    techniques: [T9999]\n    source: k8s_audit\n    condition: ka.verb ==\n    output: x\n").unwrap_or_else(|e| panic!("{e}"));
    let out = palisade(&["detect", "rules", "--validate", bad.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:9:") && err.contains("CEL syntax error"), "{err}");
    assert!(err.contains("bad.yaml:6:") && err.contains("unknown field `tactics`"), "{err}");
    let out = palisade(&["detect", "rules"]);
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 40);
}
