//! The webhook sink against receivers that redirect, refuse batches or get torn spool lines:
//! only 2xx is delivery, a refused batch is split and its poison record quarantined, and torn
//! spool lines are repaired and quarantined, so later alerts always get through.

#![allow(clippy::unwrap_used, clippy::panic)]

use palisade_detect::alert::Finding;
use palisade_detect::pipeline::{Detector, DetectorConfig};
use palisade_detect::rules::RuleSet;
use palisade_detect::simulate::{Generator, SimConfig};
use palisade_detect::sinks::{RenderOptions, Sink, WebhookConfig, WebhookSink, REJECTED_FILE};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn findings(n: usize) -> Vec<Finding> {
    let rules = RuleSet::builtin().unwrap();
    let mut det = Detector::new(&rules, DetectorConfig::default()).unwrap();
    let mut out = Vec::new();
    for line in Generator::new(SimConfig { seed: 9, background_events: 2_000, stories: 2, ..SimConfig::default() }) {
        det.process_line(line.as_bytes(), &"sim", &mut out);
    }
    det.flush(&mut out);
    let base: Vec<_> = out.into_iter().filter(|f| matches!(f, Finding::Alert(_))).collect();
    assert!(!base.is_empty());
    (0..n)
        .map(|i| match &base[i % base.len()] {
            Finding::Alert(a) => {
                let mut a = a.clone();
                a.id = format!("rec-{i:04}");
                Finding::Alert(a)
            }
            _ => unreachable!(),
        })
        .collect()
}

/// What the receiver answers: (request number from 0, the body's records, raw body) → the
/// status line and extra headers, e.g. `"302 Found\r\nLocation: file:///etc/passwd"`.
type Answer = dyn Fn(usize, Option<&[Value]>, &[u8]) -> String + Send + Sync;

struct Receiver {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Ids of records in bodies answered 2xx.
    delivered: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<Vec<(String, usize)>>>,
}

impl Receiver {
    fn start(answer: Arc<Answer>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (stop2, del2, req2) = (stop.clone(), delivered.clone(), requests.clone());
        std::thread::spawn(move || {
            let mut n = 0usize;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut buf = Vec::new();
                let mut tmp = [0u8; 65536];
                let (head_end, len) = loop {
                    let k = match s.read(&mut tmp) {
                        Ok(0) | Err(_) => break (0, 0),
                        Ok(k) => k,
                    };
                    buf.extend_from_slice(&tmp[..k]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                if head_end == 0 {
                    continue;
                }
                while buf.len() < head_end + len {
                    match s.read(&mut tmp) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => buf.extend_from_slice(&tmp[..k]),
                    }
                }
                let method =
                    String::from_utf8_lossy(&buf[..buf.iter().position(|b| *b == b' ').unwrap_or(0)]).to_string();
                let body = &buf[head_end..];
                let parsed: Option<Vec<Value>> = serde_json::from_slice(body).ok();
                let status = answer(n, parsed.as_deref(), body);
                n += 1;
                req2.lock().unwrap().push((method, parsed.as_ref().map_or(0, Vec::len)));
                if status.starts_with('2') {
                    if let Some(items) = &parsed {
                        del2.lock().unwrap().extend(items.iter().map(|v| v["id"].as_str().unwrap_or("").to_string()));
                    }
                }
                let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { port, stop, delivered, requests }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/ingest", self.port)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn cfg(url: &str, spool: &std::path::Path) -> WebhookConfig {
    let mut c = WebhookConfig::new(url, spool);
    c.batch_size = 50;
    c.retry_after = Duration::from_millis(1);
    c.timeout = Duration::from_secs(5);
    c
}

fn ids(f: &[Finding]) -> BTreeSet<String> {
    f.iter().map(|f| f.id().to_string()).collect()
}

#[test]
fn redirects_are_failures_never_delivery_and_never_abort() {
    let all = findings(30);
    let redirecting = Arc::new(AtomicBool::new(true));
    let r2 = redirecting.clone();
    let port_cell = Arc::new(Mutex::new(0u16));
    let pc = port_cell.clone();
    let rx = Receiver::start(Arc::new(move |n, _, _| {
        if !r2.load(Ordering::SeqCst) {
            return "200 OK".into();
        }
        let self_url = format!("http://127.0.0.1:{}/ingest", *pc.lock().unwrap());
        match n % 5 {
            0 => "302 Found\r\nLocation: file:///etc/passwd".into(),
            1 => "301 Moved Permanently\r\nLocation: data:text/plain,hello".into(),
            2 => format!("307 Temporary Redirect\r\nLocation: {self_url}"),
            3 => "302 Found\r\nLocation: http:///no-host".into(),
            _ => format!("302 Found\r\nLocation: {self_url}"),
        }
    }));
    *port_cell.lock().unwrap() = rx.port;
    let spool = tempfile::tempdir().unwrap();
    let mut sink = WebhookSink::new(cfg(&rx.url(), spool.path()), RenderOptions::default()).unwrap();
    for chunk in all.chunks(3) {
        sink.send(chunk).unwrap(); // spooled, not lost, no panic
        sink.flush().unwrap_err(); // every answer is a redirect: a failure
    }
    assert_eq!(sink.delivered, 0, "a 3xx is never delivery");
    assert!(sink.failures >= 10, "{}", sink.failures);
    assert!(sink.backlog());
    assert!(rx.delivered.lock().unwrap().is_empty());
    // the POST was never replayed as a body-less GET, nor sent to another URL
    assert!(rx.requests.lock().unwrap().iter().all(|(m, _)| m == "POST"));
    // the receiver is fixed: everything arrives
    redirecting.store(false, Ordering::SeqCst);
    sink.flush().unwrap();
    assert!(!sink.backlog());
    assert_eq!(sink.delivered, 30);
    let got: BTreeSet<String> = rx.delivered.lock().unwrap().iter().cloned().collect();
    assert_eq!(got, ids(&all));
    assert_eq!(sink.rejected, 0);
}

#[test]
fn refused_batches_are_split_and_the_poison_record_quarantined() {
    let all = findings(40);
    let poison = "rec-0013".to_string();
    let p2 = poison.clone();
    // more than 6 records: 413; a body holding the poison record: 400
    let rx = Receiver::start(Arc::new(move |_, items, _| match items {
        Some(v) if v.len() > 6 => "413 Payload Too Large".into(),
        Some(v) if v.iter().any(|x| x["id"] == p2.as_str()) => "400 Bad Request".into(),
        Some(_) => "200 OK".into(),
        None => "400 Bad Request".into(),
    }));
    let spool = tempfile::tempdir().unwrap();
    let mut sink = WebhookSink::new(cfg(&rx.url(), spool.path()), RenderOptions::default()).unwrap();
    sink.send(&all[..25]).unwrap();
    // later alerts are not blocked by the refused ones
    sink.send(&all[25..]).unwrap();
    sink.flush().unwrap();
    assert!(!sink.backlog());
    assert_eq!(sink.rejected, 1);
    assert_eq!(sink.delivered, 39);
    let mut want = ids(&all);
    want.remove(&poison);
    let got: Vec<String> = rx.delivered.lock().unwrap().clone();
    assert_eq!(got.len(), 39, "each record delivered once");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    // in order
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted);
    // the poison record is kept, with the reason
    let text = std::fs::read_to_string(spool.path().join(REJECTED_FILE)).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], 400);
    assert_eq!(lines[0]["record"]["id"], poison.as_str());
    // no batch above the receiver's limit was retried forever
    assert!(rx.requests.lock().unwrap().len() < 40, "{}", rx.requests.lock().unwrap().len());
}

#[test]
fn torn_spool_lines_are_repaired_and_quarantined() {
    let all = findings(12);
    let spool = tempfile::tempdir().unwrap();
    // a receiver that is down: everything is spooled
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://127.0.0.1:{}/ingest", dead.local_addr().unwrap().port());
    drop(dead);
    {
        let mut sink = WebhookSink::new(cfg(&dead_url, spool.path()), RenderOptions::default()).unwrap();
        sink.send(&all[..6]).unwrap();
        assert!(sink.backlog());
    }
    // a write torn by a full disk, then a later run appended a whole record to the same line,
    // then a crash tore the last line
    let seg = std::fs::read_dir(spool.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("spool-"))
        .unwrap();
    let text = std::fs::read_to_string(&seg).unwrap();
    let first = text.lines().next().unwrap().to_string();
    {
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&first.as_bytes()[..first.len() / 2]).unwrap(); // torn, no newline
        f.write_all(b"{\"id\":\"joined\"}\n").unwrap(); // joined to the torn part
        f.write_all(&first.as_bytes()[..first.len() / 3]).unwrap(); // torn last line
    }
    // the receiver (strict JSON: 400 for a body that does not parse)
    let rx = Receiver::start(Arc::new(
        |_, items, _| if items.is_some() { "200 OK".into() } else { "400 Bad Request".into() },
    ));
    let mut sink = WebhookSink::new(cfg(&rx.url(), spool.path()), RenderOptions::default()).unwrap();
    assert_eq!(sink.rejected, 1, "the torn last line is cut off on open");
    sink.send(&all[6..]).unwrap();
    sink.flush().unwrap();
    assert!(!sink.backlog());
    assert_eq!(sink.rejected, 2, "the joined line is quarantined, not sent");
    let got: BTreeSet<String> = rx.delivered.lock().unwrap().iter().cloned().collect();
    assert_eq!(got, ids(&all));
    assert!(!seg.exists() || std::fs::read(&seg).unwrap().ends_with(b"\n"));
    let rej = std::fs::read_to_string(spool.path().join(REJECTED_FILE)).unwrap();
    assert_eq!(rej.lines().count(), 2);
    assert!(rej.contains("torn spool line"));
}
