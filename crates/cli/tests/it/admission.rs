//! `palisade admission serve` over real HTTPS on 127.0.0.1, with the TLS material that
//! `palisade admission manifests` generates (the client trusts only the `caBundle` and checks
//! the Service's DNS name, as kube-apiserver does), and AdmissionReviews shaped as kube-apiserver
//! sends them.

use crate::util::palisade;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SVC: &str = "palisade-admission.palisade-system.svc";

/// A webhook process; killed on drop.
struct Webhook {
    child: Child,
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Generates the manifests, extracts the Secret's certificate and the webhook's caBundle.
fn install_material(dir: &Path) -> Value {
    let m = dir.join("manifests.yaml");
    let out = palisade(&["admission", "manifests", "-o", m.to_str().unwrap_or("")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&m).unwrap_or_default();
    let docs: Vec<Value> = palisade_yaml::from_str_multi(&text)
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.value)
        .filter(Value::is_object)
        .collect();
    let secret = docs.iter().find(|d| d["kind"] == "Secret").cloned().unwrap_or_default();
    std::fs::write(dir.join("tls.crt"), secret["stringData"]["tls.crt"].as_str().unwrap_or("")).ok();
    std::fs::write(dir.join("tls.key"), secret["stringData"]["tls.key"].as_str().unwrap_or("")).ok();
    let wh = docs.iter().find(|d| d["kind"] == "ValidatingWebhookConfiguration").cloned().unwrap_or_default();
    let ca = base64_decode(wh["webhooks"][0]["clientConfig"]["caBundle"].as_str().unwrap_or(""));
    std::fs::write(dir.join("ca.crt"), ca).ok();
    wh
}

fn base64_decode(s: &str) -> Vec<u8> {
    // tiny decoder: the test crate has no base64 dependency
    let val = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn start(dir: &Path, config: &str, extra: &[&str]) -> Webhook {
    std::fs::write(dir.join("config.yaml"), config).ok();
    let mut args = vec![
        "admission".to_string(),
        "serve".into(),
        "--config".into(),
        dir.join("config.yaml").display().to_string(),
        "--tls-cert".into(),
        dir.join("tls.crt").display().to_string(),
        "--tls-key".into(),
        dir.join("tls.key").display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--reload-interval".into(),
        "200ms".into(),
        "--decision-log".into(),
        dir.join("decisions.jsonl").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(&args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn: {e}"));
    let mut err = BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr")));
    let mut line = String::new();
    err.read_line(&mut line).ok();
    let addr: SocketAddr = line
        .split("https://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    // keep draining stderr so the server never blocks on it
    std::thread::spawn(move || {
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.crt")).unwrap_or_else(|e| panic!("ca: {e}")) {
        roots.add(c.unwrap_or_else(|e| panic!("{e}"))).ok();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    Webhook { child, addr, tls: Arc::new(tls) }
}

/// A keep-alive HTTPS connection that verifies the server as `SVC`.
struct Conn(rustls::StreamOwned<rustls::ClientConnection, TcpStream>);

impl Conn {
    fn open(w: &Webhook) -> Conn {
        let sock = TcpStream::connect(w.addr).unwrap_or_else(|e| panic!("connect: {e}"));
        sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let name = ServerName::try_from(SVC).unwrap_or_else(|e| panic!("{e}"));
        let conn = rustls::ClientConnection::new(w.tls.clone(), name).unwrap_or_else(|e| panic!("{e}"));
        Conn(rustls::StreamOwned::new(conn, sock))
    }

    /// Sends a request; returns (status, body).
    fn call(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {SVC}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.0.write_all(head.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
        self.0.write_all(body).unwrap_or_else(|e| panic!("write: {e}"));
        self.0.flush().ok();
        read_response(&mut self.0)
    }
}

fn read_response(r: &mut impl Read) -> (u16, Vec<u8>) {
    let mut r = BufReader::new(r);
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap_or_else(|e| panic!("read: {e}"));
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap_or_else(|e| panic!("body: {e}"));
    (status, body)
}

/// An AdmissionReview as kube-apiserver sends it.
fn review(api: &str, op: &str, ns: &str, user: &str, object: Value, dry_run: bool) -> Vec<u8> {
    let kind = object["kind"].as_str().unwrap_or("").to_string();
    let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
    let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
    let resource = format!("{}s", kind.to_ascii_lowercase());
    let name = object["metadata"]["name"].clone();
    let old = if op == "UPDATE" { object.clone() } else { Value::Null };
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview", "apiVersion": api,
        "request": {
            "uid": format!("{:08x}-6393-11e8-b7cc-42010a800002", rand_u32()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": name, "namespace": ns, "operation": op,
            "userInfo": {"username": user, "uid": "014fbff9a07c", "groups": ["system:authenticated"]},
            "object": object, "oldObject": old, "dryRun": dry_run,
            "options": {"kind": if op == "CREATE" { "CreateOptions" } else { "UpdateOptions" }, "apiVersion": "meta.k8s.io/v1"}
        }
    }))
    .unwrap_or_default()
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() as u32
}

fn pod(ns: &str, name: &str, privileged: bool, hardened: bool) -> Value {
    let mut sc = json!({"privileged": privileged});
    if hardened {
        sc = json!({"privileged": false, "allowPrivilegeEscalation": false, "runAsNonRoot": true,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
           "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/web:1.4.2", "securityContext": sc}]}})
}

fn answer(body: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    assert_eq!(v["kind"], "AdmissionReview", "{v}");
    v
}

const CONFIG: &str = "\
policies:
  - name: no-privileged
    checks: [PAL-K8S-001]
    action: deny
  - name: team-restricted
    preset: restricted
    action: warn
    namespaces: [\"team-*\"]
    objectSelector:
      matchExpressions: [{key: palisade.dev/skip, operator: DoesNotExist}]
  - name: rbac-wildcards
    checks: [PAL-K8S-101]
    action: deny
  - name: exposure
    checks: [PAL-K8S-201]
    action: warn
exemptions:
  namespaces: [kube-system]
  users: [\"system:serviceaccount:ci:deployer\"]
";

#[test]
fn webhook_over_https_allows_warns_denies_scopes_and_exempts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let wh = install_material(dir.path());
    assert_eq!(wh["webhooks"][0]["failurePolicy"], "Ignore");
    let w = start(dir.path(), CONFIG, &[]);
    let mut c = Conn::open(&w);
    let v1 = "admission.k8s.io/v1";

    // denied: names the check, the field and the remediation; the uid is echoed
    let body = review(v1, "CREATE", "shop", "alice", pod("shop", "web", true, false), false);
    let uid = serde_json::from_slice::<Value>(&body).unwrap_or_default()["request"]["uid"].clone();
    let (status, resp) = c.call("POST", "/validate", &body);
    assert_eq!(status, 200);
    let r = answer(&resp);
    assert_eq!(r["apiVersion"], v1);
    assert_eq!(r["response"]["uid"], uid);
    assert_eq!(r["response"]["allowed"], false);
    let msg = r["response"]["status"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("PAL-K8S-001")
            && msg.contains("/spec/containers/0/securityContext/privileged")
            && msg.contains("Fix:"),
        "{msg}"
    );
    assert_eq!(r["response"]["status"]["code"], 403);
    assert_eq!(r["response"]["auditAnnotations"]["palisade.dev/verdict"], "denied");

    // allowed: a hardened pod outside team namespaces; audit annotations still there
    let (_, resp) =
        c.call("POST", "/validate", &review(v1, "CREATE", "shop", "alice", pod("shop", "ok", false, true), false));
    let r = answer(&resp);
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"].get("warnings").is_none());
    assert_eq!(r["response"]["auditAnnotations"]["palisade.dev/verdict"], "allowed");

    // warned: restricted applies in team-* namespaces only, and kubectl gets warnings
    let (_, resp) =
        c.call("POST", "/validate", &review(v1, "CREATE", "team-a", "alice", pod("team-a", "w", false, false), false));
    let r = answer(&resp);
    assert_eq!(r["response"]["allowed"], true);
    let warnings = r["response"]["warnings"].as_array().cloned().unwrap_or_default();
    assert!(warnings.iter().any(|w| w.as_str().unwrap_or("").contains("team-restricted")), "{warnings:?}");
    // ... unless the object selector excludes it
    let mut skipped = pod("team-a", "s", false, false);
    skipped["metadata"]["labels"]["palisade.dev/skip"] = json!("true");
    let (_, resp) = c.call("POST", "/validate", &review(v1, "CREATE", "team-a", "alice", skipped, false));
    assert!(answer(&resp)["response"].get("warnings").is_none());

    // workload controllers through their pod templates, UPDATE too, v1beta1 answered as v1beta1
    let dep = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "securityContext": {"privileged": true}}]}}}});
    let (_, resp) =
        c.call("POST", "/validate", &review("admission.k8s.io/v1beta1", "UPDATE", "shop", "alice", dep, false));
    let r = answer(&resp);
    assert_eq!(r["apiVersion"], "admission.k8s.io/v1beta1");
    assert_eq!(r["response"]["allowed"], false);
    assert!(r["response"]["status"]["message"].as_str().unwrap_or("").contains("/spec/template/spec/containers/0"));

    // RBAC and Services get the checks that apply to them
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "god"},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let (_, resp) = c.call("POST", "/validate", &review(v1, "CREATE", "", "alice", role, false));
    assert_eq!(answer(&resp)["response"]["allowed"], false);
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "namespace": "shop"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}});
    let (_, resp) = c.call("POST", "/validate", &review(v1, "CREATE", "shop", "alice", svc, false));
    let r = answer(&resp);
    assert_eq!(r["response"]["allowed"], true);
    assert!(r["response"]["warnings"][0].as_str().unwrap_or("").contains("PAL-K8S-201"), "{r}");

    // exemptions: namespace and user; DELETE is never blocked
    let (_, resp) = c.call(
        "POST",
        "/validate",
        &review(v1, "CREATE", "kube-system", "alice", pod("kube-system", "k", true, false), false),
    );
    assert_eq!(answer(&resp)["response"]["auditAnnotations"]["palisade.dev/verdict"], "exempt");
    let (_, resp) = c.call(
        "POST",
        "/validate",
        &review(v1, "CREATE", "shop", "system:serviceaccount:ci:deployer", pod("shop", "ci", true, false), false),
    );
    assert_eq!(answer(&resp)["response"]["allowed"], true);
    let mut del: Value =
        serde_json::from_slice(&review(v1, "DELETE", "shop", "alice", pod("shop", "web", true, false), false))
            .unwrap_or_default();
    del["request"]["oldObject"] = del["request"]["object"].take();
    let (_, resp) = c.call("POST", "/validate", &serde_json::to_vec(&del).unwrap_or_default());
    assert_eq!(answer(&resp)["response"]["allowed"], true);

    // dryRun: decided the same, marked, and not written to the decision log
    let before = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap_or_default().lines().count();
    let (_, resp) =
        c.call("POST", "/validate", &review(v1, "CREATE", "shop", "alice", pod("shop", "dry", true, false), true));
    let r = answer(&resp);
    assert_eq!(r["response"]["allowed"], false);
    assert_eq!(r["response"]["auditAnnotations"]["palisade.dev/dry-run"], "true");
    let log = std::fs::read_to_string(dir.path().join("decisions.jsonl")).unwrap_or_default();
    assert_eq!(log.lines().count(), before);
    assert!(log.contains("\"verdict\":\"denied\"") && log.contains("\"name\":\"web\""), "{log}");

    // bad input: a well-formed error, the connection and server survive
    let (status, _) = c.call("POST", "/validate", b"{\"kind\":\"AdmissionReview\",");
    assert_eq!(status, 400);
    let mut c = Conn::open(&w);
    let (status, _) = c.call("POST", "/validate", br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"u","kind":{"kind":"Gizmo"},"operation":"CREATE","object":{"kind":"Gizmo","apiVersion":"x/v1","metadata":{"name":"g"}}}}"#);
    assert_eq!(status, 200, "unknown kinds are answered (allowed)");
    let (status, _) = c.call("GET", "/healthz", b"");
    assert_eq!(status, 200);
    let (status, body) = c.call("GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&body);
    assert_eq!(status, 200);
    assert!(
        metrics.contains("palisade_admission_decisions_total{policy=\"no-privileged\",action=\"deny\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("palisade_admission_request_duration_seconds_bucket{le=\"0.001\"}"));
}

#[test]
fn webhook_limits_slow_clients_and_oversized_bodies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    install_material(dir.path());
    let w = start(dir.path(), CONFIG, &["--max-body-bytes", "100000", "--request-timeout", "1s"]);
    // oversized body: 413 without reading it all
    let mut c = Conn::open(&w);
    let big = vec![b' '; 200_000];
    let head = format!("POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", big.len());
    c.0.write_all(head.as_bytes()).ok();
    let (status, _) = read_response(&mut c.0);
    assert_eq!(status, 413);
    // slow client: half a request, then silence; cut off after the request timeout
    let mut slow = Conn::open(&w);
    slow.0.write_all(b"POST /validate HTTP/1.1\r\nContent-Length: 500\r\n\r\n{\"kind\":").ok();
    slow.0.flush().ok();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.0.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "slow client held for {:?}", started.elapsed());
    // the server still answers others
    let mut ok = Conn::open(&w);
    assert_eq!(ok.call("GET", "/readyz", b"").0, 200);
}

#[test]
fn webhook_reloads_config_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    install_material(dir.path());
    let w = start(dir.path(), "policies:\n  - name: p\n    checks: [PAL-K8S-001]\n    action: warn\n", &[]);
    let mut c = Conn::open(&w);
    let req = review("admission.k8s.io/v1", "CREATE", "shop", "alice", pod("shop", "web", true, false), false);
    assert_eq!(answer(&c.call("POST", "/validate", &req).1)["response"]["allowed"], true);
    // a bad edit is refused and the running policy stays
    std::fs::write(dir.path().join("config.yaml"), "policies:\n  - name: p\n    checks: [PAL-NOPE]\n").ok();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(answer(&c.call("POST", "/validate", &req).1)["response"]["allowed"], true);
    let metrics = String::from_utf8_lossy(&c.call("GET", "/metrics", b"").1).to_string();
    assert!(metrics.contains("palisade_admission_config_reloads_total{result=\"failure\"} 1"), "{metrics}");
    // a good edit takes effect on the same keep-alive connection
    std::fs::write(
        dir.path().join("config.yaml"),
        "policies:\n  - name: p\n    checks: [PAL-K8S-001]\n    action: deny\n",
    )
    .ok();
    let until = Instant::now() + Duration::from_secs(5);
    let mut allowed = true;
    while allowed && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
        allowed = answer(&c.call("POST", "/validate", &req).1)["response"]["allowed"] == true;
    }
    assert!(!allowed, "reloaded policy never applied");
    let metrics = String::from_utf8_lossy(&c.call("GET", "/metrics", b"").1).to_string();
    assert!(metrics.contains("palisade_admission_config_generation 2"), "{metrics}");
}

/// With `--client-ca`, only clients presenting a certificate from that CA (kube-apiserver with
/// its admission-control kubeconfig) get an answer.
#[test]
fn webhook_requires_the_apiserver_client_certificate_when_configured() {
    use rustls::pki_types::PrivateKeyDer;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    install_material(dir.path());
    // a client CA and a certificate it signed for kube-apiserver
    let ca_key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap_or_else(|e| panic!("{e}"));
    let key = rcgen::KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut leaf = rcgen::CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap_or_else(|e| panic!("{e}"));
    let ca_path = dir.path().join("client-ca.crt");
    std::fs::write(&ca_path, ca_cert.pem()).ok();
    let w = start(dir.path(), CONFIG, &["--client-ca", ca_path.to_str().unwrap_or("")]);
    // without a client certificate: the handshake fails, nothing is answered
    let mut anon = Conn::open(&w);
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let failed = anon.0.write_all(head).and_then(|_| anon.0.flush()).is_err() || {
        let mut buf = [0u8; 64];
        anon.0.read(&mut buf).map(|n| n == 0).unwrap_or(true)
    };
    assert!(failed, "a client without a certificate was served");
    // with the apiserver's certificate: answered
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.path().join("ca.crt")).unwrap_or_else(|e| panic!("{e}")) {
        roots.add(c.unwrap_or_else(|e| panic!("{e}"))).ok();
    }
    let chain = vec![cert.der().clone()];
    let pk = PrivateKeyDer::try_from(key.serialize_der()).unwrap_or_else(|e| panic!("{e}"));
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, pk)
        .unwrap_or_else(|e| panic!("{e}"));
    let authed = Webhook {
        child: Command::new("true").spawn().unwrap_or_else(|e| panic!("{e}")),
        addr: w.addr,
        tls: Arc::new(tls),
    };
    let mut c = Conn::open(&authed);
    let body = review("admission.k8s.io/v1", "CREATE", "shop", "alice", pod("shop", "web", true, false), false);
    let (status, resp) = c.call("POST", "/validate", &body);
    assert_eq!(status, 200);
    assert_eq!(answer(&resp)["response"]["allowed"], false);
}
