//! Load generator for the admission webhook: TLS with keep-alive on 127.0.0.1, a realistic mix
//! of reviews built from the real manifests in `../shared/k8s-corpus` (70 % Pods as a
//! ReplicaSet controller would create them from the workloads' templates, 30 % the workload
//! controllers themselves, CREATE and UPDATE).
//!
//! Scenarios: closed loop at 1 and 50 connections (throughput, latency), and an open loop at a
//! fixed rate (default 1,000 requests/s over 50 connections) where latency is measured from the
//! *scheduled* send time, so a stalled server cannot hide its queueing (no coordinated omission).
//!
//! `cargo bench -p palisade-admission --bench webhook` runs an in-process server. `bench/admission.sh`
//! runs the real `palisade admission serve` pinned to one core and passes it here through
//! `PALISADE_BENCH_ADDR`, `PALISADE_BENCH_CA` and `PALISADE_BENCH_PID` (for peak RSS and CPU).
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use palisade_admission::manifests::{generate_tls, DEFAULT_CONFIG};
use palisade_admission::service::Service;
use palisade_admission::{Config, Engine};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SNI: &str = "palisade-admission.palisade-system.svc";

fn corpus_reviews() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s-corpus");
    let loaded =
        palisade_k8s::load::load_paths(std::slice::from_ref(&dir)).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut workloads = Vec::new();
    let mut pods = Vec::new();
    for o in &loaded.objects {
        if !matches!(
            o.kind.as_str(),
            "Pod" | "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "CronJob"
        ) {
            continue;
        }
        let ns = if o.namespace.is_empty() { "default".to_string() } else { o.namespace.clone() };
        workloads.push(((*o.value).clone(), ns.clone()));
        if o.kind == "Pod" {
            pods.push(((*o.value).clone(), ns));
        } else if let Some((spec, _)) = o.pod_spec() {
            let meta = o.pod_metadata().cloned().unwrap_or(json!({}));
            let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec});
            pod["metadata"]["generateName"] = json!(format!("{}-7d4b9c8f6-", o.name));
            pod["metadata"]["namespace"] = json!(ns);
            pods.push((pod, ns));
        }
    }
    assert!(!pods.is_empty(), "no workloads found in {}", dir.display());
    let mut out = Vec::new();
    let mut i = 0usize;
    // 7 pods : 3 controllers
    while out.len() < 1000 {
        let (obj, ns, op) = if i % 10 < 7 {
            let (o, ns) = &pods[i % pods.len()];
            (o, ns, "CREATE")
        } else {
            let (o, ns) = &workloads[i % workloads.len()];
            (o, ns, if i.is_multiple_of(2) { "CREATE" } else { "UPDATE" })
        };
        out.push(review(obj, ns, op, i));
        i += 1;
    }
    out
}

fn review(obj: &Value, ns: &str, op: &str, i: usize) -> Vec<u8> {
    let kind = obj["kind"].as_str().unwrap_or("Pod");
    let av = obj["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = av.split_once('/').unwrap_or(("", av));
    let resource = format!("{}s", kind.to_ascii_lowercase());
    serde_json::to_vec(&json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {
        "uid": format!("{i:08x}-0000-4000-8000-000000000000"),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": kind},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": obj["metadata"]["name"], "namespace": ns, "operation": op,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": obj, "oldObject": if op == "UPDATE" { obj.clone() } else { Value::Null }, "dryRun": false,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}}))
    .unwrap_or_default()
}

struct Target {
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    pid: Option<u32>,
}

fn client_config(ca_pem: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.unwrap_or_else(|e| panic!("CA: {e}"))).ok();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|e| panic!("{e}"))
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn call(s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>, body: &[u8], buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(
        format!(
            "POST /validate HTTP/1.1\r\nHost: {SNI}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    buf.extend_from_slice(body);
    s.write_all(buf).unwrap_or_else(|e| panic!("write: {e}"));
    s.flush().ok();
}

fn read_resp(r: &mut BufReader<&mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap_or_else(|e| panic!("read: {e}"));
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let mut len = 0;
    loop {
        line.clear();
        r.read_line(&mut line).ok();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap_or_else(|e| panic!("body: {e}"));
}

/// Runs `conns` connections for `dur`; `rate` (total requests/s) or closed loop. Returns latencies in µs.
fn run(t: &Target, reviews: &Arc<Vec<Vec<u8>>>, conns: usize, rate: Option<f64>, dur: Duration) -> Vec<u32> {
    let start = Instant::now() + Duration::from_millis(200);
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let (tls, addr, reviews) = (t.tls.clone(), t.addr, reviews.clone());
            std::thread::spawn(move || {
                let sock = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect: {e}"));
                sock.set_nodelay(true).ok();
                let name = ServerName::try_from(SNI).unwrap_or_else(|e| panic!("{e}"));
                let conn = rustls::ClientConnection::new(tls, name).unwrap_or_else(|e| panic!("{e}"));
                let mut s = rustls::StreamOwned::new(conn, sock);
                let mut buf = Vec::new();
                // warm-up (handshake)
                call(&mut s, &reviews[c % reviews.len()], &mut buf);
                read_resp(&mut BufReader::new(&mut s));
                let mut lat = Vec::new();
                let interval = rate.map(|r| Duration::from_secs_f64(conns as f64 / r));
                let offset = interval.map(|i| i.mul_f64(c as f64 / conns as f64)).unwrap_or_default();
                let mut i = c * 7919;
                let mut n = 0u32;
                while Instant::now() < start {
                    std::thread::sleep(Duration::from_millis(1));
                }
                loop {
                    let scheduled = match interval {
                        Some(iv) => start + offset + iv * n,
                        None => Instant::now(),
                    };
                    if scheduled >= start + dur {
                        break;
                    }
                    let now = Instant::now();
                    if scheduled > now {
                        std::thread::sleep(scheduled - now);
                    }
                    call(&mut s, &reviews[i % reviews.len()], &mut buf);
                    read_resp(&mut BufReader::new(&mut s));
                    lat.push(scheduled.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    i += 1;
                    n += 1;
                }
                lat
            })
        })
        .collect();
    handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
}

fn proc_stat(pid: Option<u32>) -> (u64, f64) {
    let Some(pid) = pid else { return (0, 0.0) };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (hwm, ticks as f64 / 100.0)
}

fn report(name: &str, mut lat: Vec<u32>, dur: Duration, t: &Target, cpu_before: f64) {
    lat.sort_unstable();
    let q = |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    let (hwm, cpu) = proc_stat(t.pid);
    let cpu_line = if t.pid.is_some() {
        format!(
            "  server CPU {:.0}% of a core, {:.0} µs/request, peak RSS {:.1} MB",
            (cpu - cpu_before) / dur.as_secs_f64() * 100.0,
            (cpu - cpu_before) * 1e6 / lat.len().max(1) as f64,
            hwm as f64 / 1024.0
        )
    } else {
        String::new()
    };
    println!(
        "{name:<34} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>6.2} ms  max {:>6.2} ms  (n={}){cpu_line}",
        lat.len() as f64 / dur.as_secs_f64(),
        q(0.50) as f64 / 1000.0,
        q(0.99) as f64 / 1000.0,
        q(0.999) as f64 / 1000.0,
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        lat.len(),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = std::env::var("PALISADE_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5.0);
    let rate: f64 = std::env::var("PALISADE_BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(1000.0);
    let dur = Duration::from_secs_f64(secs);
    let reviews = Arc::new(corpus_reviews());
    let avg = reviews.iter().map(Vec::len).sum::<usize>() / reviews.len();
    println!("{} reviews from the corpus, {avg} bytes on average", reviews.len());
    let mut _server = None;
    let target = match (std::env::var("PALISADE_BENCH_ADDR"), std::env::var("PALISADE_BENCH_CA")) {
        (Ok(addr), Ok(ca)) => Target {
            addr: addr.parse().unwrap_or_else(|e| panic!("PALISADE_BENCH_ADDR: {e}")),
            tls: client_config(&std::fs::read(ca).unwrap_or_default()),
            pid: std::env::var("PALISADE_BENCH_PID").ok().and_then(|p| p.parse().ok()),
        },
        _ => {
            let tls = generate_tls("palisade-admission", "palisade-system").unwrap_or_else(|e| panic!("{e}"));
            let cfg = Config::from_yaml(DEFAULT_CONFIG).unwrap_or_else(|e| panic!("{e}"));
            let svc = Service::new(Engine::new(cfg, Vec::new()), None);
            let handler: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| svc.handle(r));
            let server_tls = palisade_https::server_config(
                &palisade_https::TlsConfig {
                    cert_pem: tls.cert_pem.clone().into_bytes(),
                    key_pem: tls.key_pem.clone().into_bytes(),
                    client_ca_pem: None,
                },
                false,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            let server =
                palisade_https::Server::bind("127.0.0.1:0", Some(server_tls), Default::default(), "bench", handler)
                    .unwrap_or_else(|e| panic!("{e}"));
            let t = Target { addr: server.local_addr(), tls: client_config(tls.ca_pem.as_bytes()), pid: None };
            println!("in-process server (set PALISADE_BENCH_ADDR/CA/PID to measure an external one)");
            _server = Some(server);
            t
        }
    };
    for (name, conns, r) in [
        ("closed loop, 1 connection", 1, None),
        ("closed loop, 50 connections", 50, None),
        ("open loop, 1 connection", 1, Some(rate)),
        ("open loop, 50 connections", 50, Some(rate)),
    ] {
        let (_, cpu0) = proc_stat(target.pid);
        let label = match r {
            Some(r) => format!("{name} @ {r:.0}/s"),
            None => name.to_string(),
        };
        let lat = run(&target, &reviews, conns, r, dur);
        report(&label, lat, dur, &target, cpu0);
    }
}
