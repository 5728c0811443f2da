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

/// One `pods/exec` audit event by a distinct user on a distinct pod: one distinct alert each.
fn exec_event(i: usize) -> String {
    format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Request","auditID":"a-{i:06}","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/namespaces/prod/pods/web-{i}/exec?command=sh&stdin=true&tty=true","verb":"create","#,
            r#""user":{{"username":"dev-{i}","groups":["system:authenticated"]}},"sourceIPs":["10.0.0.5"],"userAgent":"kubectl/v1.30.0","#,
            r#""objectRef":{{"resource":"pods","namespace":"prod","name":"web-{i}","apiVersion":"v1","subresource":"exec"}},"#,
            r#""responseStatus":{{"metadata":{{}},"code":101}},"requestReceivedTimestamp":"2026-01-01T00:{m:02}:{s:02}.000000Z","#,
            r#""stageTimestamp":"2026-01-01T00:{m:02}:{s:02}.100000Z"}}"#
        ),
        i = i,
        m = (i / 60) % 60,
        s = i % 60
    )
}

/// Issue 21 item 7: `detect audit --follow --position P -o FILE` stopped by SIGTERM (and
/// SIGINT) mid-stream, then restarted with the same position: every alert is in FILE exactly
/// once (a signal finishes the batch, fsyncs FILE, then saves the position).
#[test]
fn follow_survives_sigterm_without_losing_or_repeating_alerts() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    const N: usize = 600;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("audit.log");
    let pos = dir.path().join("audit.pos");
    let out = dir.path().join("alerts.jsonl");
    std::fs::write(&log, "").unwrap_or_else(|e| panic!("{e}"));
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_palisade"))
            .args(["detect", "audit", "--follow"])
            .arg(&log)
            .arg("--position")
            .arg(&pos)
            .arg("-o")
            .arg(&out)
            .env("PALISADE_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let alerts_in = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|a| a["type"] == "alert" && a["update"] != true && a["rule"]["id"] == "PAL-KA-001")
            .filter_map(|a| a["entities"]["pod"].as_str().map(str::to_string))
            .collect()
    };
    let append = |from: usize, to: usize| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap_or_else(|e| panic!("{e}"));
        for i in from..to {
            writeln!(f, "{}", exec_event(i)).unwrap_or_else(|e| panic!("{e}"));
            if i % 20 == 0 {
                f.flush().unwrap_or_else(|e| panic!("{e}"));
                std::thread::sleep(Duration::from_millis(15));
            }
        }
    };
    let mut written = 0;
    for (round, sig) in [(0, "TERM"), (1, "INT"), (2, "TERM")] {
        let before = alerts_in(&out).len();
        let mut child = start();
        // the log keeps growing while the detector runs
        let to = (round + 1) * N / 4;
        append(written, to);
        written = to;
        // wait until this run is following (some of this round's alerts are on disk)
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().ok().flatten().is_none() && alerts_in(&out).len() <= before && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // more lines arrive right before the signal: some are mid-batch
        append(written, written + 25);
        written += 25;
        let st = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status();
        assert!(st.is_ok_and(|s| s.success()));
        let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        assert!(status.success(), "round {round}: exit {status:?} after SIG{sig}: {err}");
    }
    // the last restart reads what is left, then stops cleanly
    append(written, N);
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(60);
    while alerts_in(&out).len() < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(child.wait().unwrap_or_else(|e| panic!("{e}")).success());
    let got = alerts_in(&out);
    let set: BTreeSet<&String> = got.iter().collect();
    let want: BTreeSet<String> = (0..N).map(|i| format!("web-{i}")).collect();
    let missing: Vec<&String> = want.iter().filter(|w| !set.contains(w)).collect();
    assert!(missing.is_empty(), "{} of {N} alerts lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    assert_eq!(got.len(), N, "every alert exactly once ({} lines for {} alerts)", got.len(), set.len());
}

/// `--alert-format` is typed: an unknown format is clap's usage error; every spelling accepted
/// before (any case, `jsonl`, `ndjson`, `cef`, `syslog-cef`) still is.
#[test]
fn unknown_alert_formats_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let log = dir.path().join("empty.jsonl");
    std::fs::write(&log, "").unwrap_or_else(|e| panic!("{e}"));
    let log = log.to_str().unwrap_or_default();
    let out = palisade(&["detect", "audit", log, "--alert-format", "xml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid value 'xml'") && err.contains("json, ocsf, syslog"), "{err}");
    for f in ["json", "JSON", "jsonl", "ndjson", "ocsf", "syslog", "cef", "Syslog-CEF"] {
        let out = palisade(&["detect", "audit", log, "--alert-format", f]);
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
