//! Peak RSS of the webhook under parallel large reviews (sizes the Deployment's memory limit):
//! `cargo run -p palisade-admission --example rss -- [PARALLEL] [CONTAINERS] [PAD]`. Serves the real
//! service over the real server (plain HTTP on loopback), posts PARALLEL reviews of a Pod with
//! CONTAINERS privileged containers (each with a PAD-byte env value) at once, three rounds, and prints VmHWM.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench
use palisade_admission::service::Service;
use palisade_admission::{Action, Config, Engine, Preset};
use std::io::{Read, Write};
use std::sync::Arc;

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or("")
        .to_string()
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (parallel, containers) = (args.first().copied().unwrap_or(8), args.get(1).copied().unwrap_or(1000));
    let pad = args.get(2).copied().unwrap_or(3000);
    let svc = Service::new(Engine::new(Config::preset(Preset::Restricted, Action::Deny), Vec::new()), None);
    let h: palisade_https::Handler = Arc::new(move |r: &palisade_https::Request| svc.handle(r));
    let server = palisade_https::Server::bind("127.0.0.1:0", None, palisade_https::Limits::default(), "rss", h)
        .unwrap_or_else(|e| panic!("{e}"));
    let cs: Vec<serde_json::Value> = (0..containers)
        .map(|i| {
            serde_json::json!({"name": format!("c{i}"), "image": "nginx:1.25", "securityContext": {"privileged": true},
            "env": [{"name": "PAD", "value": "x".repeat(pad)}]})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big", "namespace": "shop"}, "spec": {"containers": cs}}}}))
    .unwrap_or_default();
    let body = Arc::new(body);
    println!("review {} bytes; before: {}", body.len(), vm("VmRSS"));
    let addr = server.local_addr();
    let started = std::time::Instant::now();
    for _ in 0..3 {
        let ts: Vec<_> = (0..parallel)
            .map(|_| {
                let body = body.clone();
                std::thread::spawn(move || {
                    let mut s = std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
                    let _ = write!(
                        s,
                        "POST /validate HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body);
                    let mut out = Vec::new();
                    let _ = s.read_to_end(&mut out);
                    out.len()
                })
            })
            .collect();
        let sizes: Vec<usize> = ts.into_iter().map(|t| t.join().unwrap_or(0)).collect();
        println!("responses (bytes incl. head): {sizes:?}");
    }
    println!(
        "{parallel} x {} bytes, 3 rounds in {:?}; {}; {}",
        body.len(),
        started.elapsed(),
        vm("VmHWM"),
        vm("VmRSS")
    );
    server.shutdown(std::time::Duration::from_secs(1));
}
