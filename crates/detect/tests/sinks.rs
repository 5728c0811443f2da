//! Sinks: formats, and at-least-once webhook delivery across a sink outage and a restart.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::RuleSet;
use palisade_detect::simulate::{Generator, SimConfig};
use palisade_detect::sinks::{render, Format, RenderOptions, Sink, WebhookConfig, WebhookSink, WriterSink};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

fn findings() -> Vec<Finding> {
    let rules = RuleSet::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut det = Detector::new(&rules, DetectorConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for line in Generator::new(SimConfig { seed: 5, background_events: 3_000, stories: 3, ..SimConfig::default() }) {
        det.process_line(line.as_bytes(), &"sim", &mut out);
    }
    det.flush(&mut out);
    out
}

#[test]
fn formats() {
    let all = findings();
    assert!(all.len() > 50, "{}", all.len());
    let opts = RenderOptions { hostname: "cp-1".into(), ..RenderOptions::default() };
    let alert = all.iter().find(|f| matches!(f, Finding::Alert(a) if a.rule.id == "PAL-KA-001")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&render(alert, Format::Json, &opts)).unwrap();
    assert_eq!(json["type"], "alert");
    assert_eq!(json["rule"]["id"], "PAL-KA-001");
    assert_eq!(json["techniques"][0]["id"], "T1609");
    assert_eq!(json["evidence"]["objectRef"]["subresource"], "exec");
    assert!(json["remediation"].as_array().is_some_and(|r| !r.is_empty()));
    let ocsf: serde_json::Value = serde_json::from_str(&render(alert, Format::Ocsf, &opts)).unwrap();
    assert_eq!(ocsf["class_uid"], 2004);
    assert_eq!(ocsf["category_uid"], 2);
    assert_eq!(ocsf["type_uid"], 200401);
    assert_eq!(ocsf["severity_id"], 3);
    assert_eq!(ocsf["finding_info"]["analytic"]["uid"], "PAL-KA-001");
    assert_eq!(ocsf["finding_info"]["attacks"][0]["technique"]["uid"], "T1609");
    assert_eq!(ocsf["finding_info"]["attacks"][0]["tactic"]["uid"], "TA0002");
    assert!(ocsf["time"].as_i64().is_some_and(|t| t > 1_700_000_000_000));
    let line = render(alert, Format::SyslogCef, &opts);
    assert!(line.starts_with("<84>1 "), "{line}"); // authpriv (10) * 8 + warning (4)
    assert!(line.contains(" cp-1 palisade - alert - CEF:0|Palisade|Palisade Detect|"), "{line}");
    assert!(line.contains("|PAL-KA-001|Exec into pod|5|"), "{line}");
    assert!(line.contains("cs1=PAL-KA-001"), "{line}");
    assert!(!line.contains('\n'));
    let incident = all.iter().find(|f| matches!(f, Finding::Incident(_))).unwrap();
    let o: serde_json::Value = serde_json::from_str(&render(incident, Format::Ocsf, &opts)).unwrap();
    assert_eq!(o["class_uid"], 2005);
    let cef = render(incident, Format::SyslogCef, &opts);
    assert!(cef.contains("|PAL-INCIDENT|"), "{cef}");
    // CEF escaping
    let mut a = match alert {
        Finding::Alert(a) => a.clone(),
        _ => unreachable!(),
    };
    a.message = "a=b|c\\d\ne".into();
    a.rule.name = "x|y".into();
    let l = render(&Finding::Alert(a), Format::SyslogCef, &opts);
    assert!(l.contains("msg=a\\=b|c\\\\d\\ne"), "{l}");
    assert!(l.contains("|x\\|y|"), "{l}");
    // writer sink
    let mut w = WriterSink::new(Vec::new(), Format::Json, opts);
    w.send(&all[..3]).unwrap();
    w.flush().unwrap();
    assert_eq!(String::from_utf8(w.into_inner()).unwrap().lines().count(), 3);
}

struct Server {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    fn start(port: u16, received: Arc<Mutex<Vec<String>>>, token: &'static str) -> (Server, u16) {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        let mut buf = Vec::new();
                        let mut tmp = [0u8; 65536];
                        let (head_end, len) = loop {
                            let n = match s.read(&mut tmp) {
                                Ok(0) | Err(_) => break (0, 0),
                                Ok(n) => n,
                            };
                            buf.extend_from_slice(&tmp[..n]);
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                                let len = head
                                    .lines()
                                    .find_map(|l| {
                                        l.strip_prefix("content-length:")
                                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                    })
                                    .unwrap_or(0);
                                break (i + 4, len);
                            }
                        };
                        if head_end == 0 {
                            continue;
                        }
                        while buf.len() < head_end + len {
                            let n = match s.read(&mut tmp) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            buf.extend_from_slice(&tmp[..n]);
                        }
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                        if !head.contains(&format!("Bearer {token}")) {
                            let _ = s.write_all(
                                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                            );
                            continue;
                        }
                        let body: serde_json::Value = serde_json::from_slice(&buf[head_end..]).unwrap_or_default();
                        if let Some(items) = body.as_array() {
                            let mut r = received.lock().unwrap();
                            for it in items {
                                r.push(it["id"].as_str().unwrap_or("").to_string());
                            }
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        (Server { stop, handle: Some(handle) }, port)
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
    }
}

#[test]
fn webhook_delivers_everything_across_an_outage_and_a_restart() {
    let mut all = findings();
    // plenty of records: copies with distinct ids
    let base = all.clone();
    for i in 0..3 {
        for f in &base {
            if let Finding::Alert(a) = f {
                let mut a = a.clone();
                a.id = format!("{}-{i}", a.id);
                all.push(Finding::Alert(a));
            }
        }
    }
    let want: BTreeSet<String> = all.iter().map(|f| f.id().to_string()).collect();
    assert!(want.len() > 200);
    let received = Arc::new(Mutex::new(Vec::new()));
    let (server, port) = Server::start(0, received.clone(), "s3cret");
    let spool = tempfile::tempdir().unwrap();
    let mut cfg = WebhookConfig::new(&format!("http://127.0.0.1:{port}/ingest"), spool.path());
    cfg.bearer_token = Some("s3cret".into());
    cfg.batch_size = 25;
    cfg.retry_after = Duration::from_millis(20);
    cfg.timeout = Duration::from_secs(3);
    let mut sink = WebhookSink::new(cfg.clone(), RenderOptions::default()).unwrap();
    let third = all.len() / 3;
    for chunk in all[..third].chunks(7) {
        sink.send(chunk).unwrap();
    }
    assert!(!sink.backlog());
    // the sink goes down mid-stream
    server.stop();
    for chunk in all[third..2 * third].chunks(7) {
        sink.send(chunk).unwrap(); // spooled, not lost
        std::thread::sleep(Duration::from_millis(3));
    }
    assert!(sink.backlog(), "records wait in the spool");
    assert!(sink.failures > 0);
    // and so does our process: a new sink instance picks the spool up
    drop(sink);
    let mut sink = WebhookSink::new(cfg, RenderOptions::default()).unwrap();
    assert!(sink.backlog());
    let (server, _) = Server::start(port, received.clone(), "s3cret");
    for chunk in all[2 * third..].chunks(7) {
        sink.send(chunk).unwrap();
    }
    sink.flush().unwrap();
    assert!(!sink.backlog());
    assert_eq!(sink.dropped(), 0);
    server.stop();
    let got: BTreeSet<String> = received.lock().unwrap().iter().cloned().collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "{} of {} lost", missing.len(), want.len());
    // order: nothing after the outage overtook the spooled records (ids of the middle third
    // arrive before those of the last third)
    let order = received.lock().unwrap().clone();
    let pos = |id: &str| order.iter().position(|x| x == id).unwrap_or(usize::MAX);
    assert!(pos(all[2 * third - 1].id()) < pos(all[2 * third].id()));
}
