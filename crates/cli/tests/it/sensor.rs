//! The node sensor end to end: real eBPF, a real runc container on overlayfs. These tests need
//! root, kernel BTF, runc and busybox-static (`.ci/run` installs them and runs as root); without
//! them they print a loud SKIPPED line and pass.

use crate::util::palisade;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The sensor tests load BPF and start containers: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn can_run() -> Result<(), String> {
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if uid.ok().as_deref() != Some("0") {
        return Err("not root".into());
    }
    for p in ["/sys/kernel/btf/vmlinux", "/bin/busybox", "/usr/sbin/runc"] {
        if !Path::new(p).exists() {
            return Err(format!("{p} is missing"));
        }
    }
    Ok(())
}

macro_rules! needs_bpf {
    () => {
        if let Err(why) = can_run() {
            eprintln!("SKIPPED: needs root, BPF, runc and busybox-static: {why}");
            return;
        }
    };
}

#[test]
fn simulate_node_fires_every_expected_detection_and_blocks_drift() {
    needs_bpf!();
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let alerts = dir.path().join("alerts.jsonl");
    let out = palisade(&["simulate", "node", "--block-drift", "--alerts", alerts.to_str().unwrap_or("")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains("MISSING"), "{text}");
    let fired = text.lines().filter(|l| l.contains(" fired ")).count();
    assert!(fired >= 40, "{text}");
    assert!(text.contains("drift-block  killed"), "{text}");
    // every alert names the pod, the namespace, the image and an ATT&CK technique
    let log = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(log.lines().count() >= 40, "{log}");
    for line in log.lines() {
        let a: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        assert_eq!(a["entities"]["namespace"], "palisade-sim", "{a}");
        assert_eq!(a["entities"]["images"][0], "registry.example.com/shop/payments-api:1.4.2", "{a}");
        assert!(a["techniques"].as_array().is_some_and(|t| !t.is_empty()), "{a}");
        assert!(!a["message"].as_str().unwrap_or("").contains("<NA>"), "{a}");
    }
    // nothing left behind
    let runc = Command::new("runc").arg("list").arg("-q").output().map(|o| o.stdout).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&runc).contains("palisade-sim-"), "container left running");
}

#[test]
fn sensor_run_reports_health_and_metrics() {
    needs_bpf!();
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let health = dir.path().join("health.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["sensor", "run", "--duration", "6s", "--health-interval", "1s", "--metrics-listen", "127.0.0.1:0"])
        .arg("--health-file")
        .arg(&health)
        .arg("-o")
        .arg(dir.path().join("alerts.jsonl"))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut err = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("stderr")));
    let mut addr = String::new();
    for _ in 0..10 {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(a) = line.split("http://").nth(1) {
            addr = a.split('/').next().unwrap_or("").to_string();
            break;
        }
    }
    assert!(!addr.is_empty(), "no metrics address printed");
    std::thread::sleep(Duration::from_millis(2500));
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok();
        let mut out = String::new();
        s.read_to_string(&mut out).ok();
        out
    };
    let h = get("/health");
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    let body: serde_json::Value = serde_json::from_str(h.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap_or_default();
    assert_eq!(body["status"], "healthy", "{body}");
    assert!(body["programs_attached"].as_u64().unwrap_or(0) >= 20, "{body}");
    assert!(body["rules"].as_u64().unwrap_or(0) >= 25, "{body}");
    assert_eq!(body["ruleset_version"].as_str().map(str::len), Some(16));
    let m = get("/metrics");
    assert!(m.contains("palisade_sensor_up 1") && m.contains("palisade_sensor_events_total"), "{m}");
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
    let mut rest = String::new();
    err.read_to_string(&mut rest).ok();
    assert!(status.success(), "{rest}");
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&health).unwrap_or_default()).unwrap_or_default();
    assert!(file["events"].as_u64().unwrap_or(0) > 0, "{file}");
    assert_eq!(file["dropped_kernel"], 0);
}

#[test]
fn sensor_refuses_clearly_without_root() {
    // as a user without privileges the sensor must fail with a clear message, never panic
    if can_run().is_err() {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user");
        return;
    }
    let exe = env!("CARGO_BIN_EXE_palisade");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", exe, "sensor", "check"])
        .output();
    let Ok(out) = out else {
        eprintln!("SKIPPED: setpriv unavailable");
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("Permission denied") && !err.contains("palisade") {
        eprintln!("SKIPPED: the unprivileged user cannot execute the test binary");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("needs root"), "{err}");
}

/// The reverse shell's pod is isolated through an API server (a recording stand-in over real
/// HTTPS answering as kube-apiserver does): a deny-all NetworkPolicy and the quarantine label.
#[test]
fn simulate_node_prevents_drift_and_isolates_the_pod_through_the_api_server() {
    needs_bpf!();
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    use base64::Engine as _;
    use std::sync::Arc;
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap_or_else(|e| panic!("{e}"));
    let tls = palisade_https::server_config(
        &palisade_https::TlsConfig {
            cert_pem: cert.cert.pem().into_bytes(),
            key_pem: cert.key_pair.serialize_pem().into_bytes(),
            client_ca_pem: None,
        },
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let seen: Arc<Mutex<Vec<(String, String, serde_json::Value)>>> = Arc::default();
    let seen2 = seen.clone();
    let handler: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
        if let Ok(mut s) = seen2.lock() {
            s.push((r.method.clone(), r.path.clone(), body.clone()));
        }
        if r.bearer() != Some("sensor-token") {
            return palisade_https::Response::json(
                401,
                br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}"#
                    .to_vec(),
            );
        }
        palisade_https::Response::json(201, serde_json::to_vec(&body).unwrap_or_default())
    });
    let server = palisade_https::Server::bind("127.0.0.1:0", Some(tls), Default::default(), "fake-apiserver", handler)
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kc = dir.path().join("kubeconfig");
    let ca = base64::engine::general_purpose::STANDARD.encode(cert.cert.pem());
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority-data: {ca}\ncontexts:\n- name: t\n  context: {{cluster: c, user: u}}\nusers:\n- name: u\n  user:\n    token: sensor-token\n",
            server.local_addr().port()
        ),
    )
    .ok();
    let out = palisade(&["simulate", "node", "--prevent-drift", "--kubeconfig", kc.to_str().unwrap_or("")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("isolate      done"), "{text}");
    // fanotify stopped the dropped binary before it ran (execve failed: exit 126)
    assert!(text.contains("drift-block  denied"), "{text}");
    let log = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let np = log
        .iter()
        .find(|(m, p, _)| m == "POST" && p == "/apis/networking.k8s.io/v1/namespaces/palisade-sim/networkpolicies");
    assert!(
        np.is_some_and(|(_, _, b)| b["spec"]["policyTypes"] == serde_json::json!(["Ingress", "Egress"])),
        "{log:?}"
    );
    let patch = log
        .iter()
        .find(|(m, p, _)| m == "PATCH" && p == "/api/v1/namespaces/palisade-sim/pods/payments-api-5d8c7b9f4-x2x7k");
    assert!(
        patch.is_some_and(|(_, _, b)| b["metadata"]["labels"]["palisade.dev/quarantine"] == "true"
            && b["metadata"]["labels"]["palisade.dev/alert"] == "PAL-SEN-006"),
        "{log:?}"
    );
    assert_eq!(log.iter().filter(|(m, _, _)| m == "PATCH").count(), 1, "once per pod: {log:?}");
}
