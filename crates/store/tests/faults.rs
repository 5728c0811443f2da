//! Faults: `kill -9` of a writer loses no acknowledged write; a database outage mid-ingest
//! (PostgreSQL restart, SQLite lock held by another process) is retried, not fatal; an outage
//! beyond the retry budget is a clear `Unavailable` error.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use common::*;
use palisade_store::*;
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

const CHILD_ENV: &str = "PALISADE_STORE_TEST_CHILD_LOCATION";

fn findings(n: usize) -> Vec<FindingInput> {
    (0..n).map(|i| finding(&format!("CVE-2025-{i}"), &format!("p{i}"), Severity::High)).collect()
}

/// Not a test of its own: the writer process `killed_writer_loses_no_acknowledged_write`
/// starts (it does nothing unless that test set the environment variable).
#[tokio::test]
async fn child_writer_process() {
    let Ok(loc) = std::env::var(CHILD_ENV) else { return };
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(T0));
    let store = Store::open(Harness::config_for(Location::parse(&loc).unwrap(), &clock)).await.unwrap();
    for i in 0u64.. {
        store.ingest_images(&[upload(&digest(10_000 + i), findings(50))], "child").await.unwrap();
        // Acknowledged only after the call returned (committed).
        println!("ACK {i}");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
    }
}

async fn killed_writer_loses_no_acknowledged_write(h: Harness) {
    let loc = match h.store.backend() {
        Backend::Sqlite => h.config.location.clone(),
        Backend::Postgres => Location::Postgres(h.raw_url.clone()),
    };
    let loc = match loc {
        Location::DataDir(d) => d.display().to_string(),
        Location::Postgres(u) => u,
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["child_writer_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &loc)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        for line in BufReader::new(out).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                acked.push(n.parse::<u64>().unwrap());
                if acked.len() == 25 {
                    break;
                }
            }
        }
        acked
    })
    .await
    .unwrap();
    child.kill().unwrap(); // SIGKILL, mid-write: the child never stops between uploads
    child.wait().unwrap();
    assert_eq!(acked.len(), 25);
    let store = h.reopen().await;
    for i in acked {
        let img =
            store.get_image(&digest(10_000 + i)).await.unwrap().unwrap_or_else(|| panic!("acked upload {i} lost"));
        assert_eq!(img.open_findings.high, 50, "upload {i} is whole");
    }
}
both!(killed_writer_loses_no_acknowledged_write);

/// A TCP proxy in front of PostgreSQL that can drop every connection and refuse new ones,
/// as a database restart does.
struct Proxy {
    addr: String,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (u, c) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = l.accept().await else { return };
                if !u.load(Ordering::SeqCst) {
                    let _ = inbound.shutdown().await;
                    continue;
                }
                let upstream = upstream.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                c.lock().unwrap().push(t);
            }
        });
        Proxy { addr, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `postgres://user@host:port/db?x` with host:port replaced.
fn via(url: &str, addr: &str) -> (String, String) {
    let at = url.find('@').unwrap() + 1;
    let slash = at + url[at..].find('/').unwrap();
    (format!("{}{}{}", &url[..at], addr, &url[slash..]), url[at..slash].to_string())
}

async fn outage_mid_ingest_is_retried(h: Harness) {
    match h.store.backend() {
        Backend::Postgres => {
            let (_, upstream) = via(&h.raw_url, "x");
            let proxy = Proxy::start(upstream).await;
            let (url, _) = via(&h.raw_url, &proxy.addr);
            let mut cfg = h.config.clone();
            cfg.location = Location::Postgres(url);
            let store = Store::open(cfg.clone()).await.unwrap();
            let writer = {
                let s = store.clone();
                tokio::spawn(async move {
                    for i in 0..40u64 {
                        s.ingest_images(&[upload(&digest(20_000 + i), findings(30))], "t").await.unwrap();
                    }
                })
            };
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert!(!writer.is_finished(), "the outage must start mid-ingest");
            proxy.cut(); // every connection dropped, new ones refused: a restart
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!writer.is_finished(), "the writer is held up by the outage, not failed");
            proxy.restore();
            writer.await.unwrap();
            let c = store.dashboard_counts().await.unwrap();
            assert_eq!((c.images, c.open_findings.total()), (40, 1200));
            // Beyond the retry budget: a clear error, not a hang.
            cfg.retry.max_elapsed = Duration::from_millis(800);
            cfg.acquire_timeout = Duration::from_millis(300);
            let short = Store::open(cfg).await.unwrap();
            proxy.cut();
            let r = short.ingest_images(&[upload(&digest(29_999), vec![])], "t").await;
            assert!(matches!(r, Err(StoreError::Unavailable { .. })), "{r:?}");
            proxy.restore();
            assert!(short.get_image(&digest(29_999)).await.unwrap().is_none());
        }
        Backend::Sqlite => {
            // Another process holds the write lock for 1.5 s: the upload waits and succeeds.
            let raw = h.raw().await;
            let mut tx = raw.begin_with("BEGIN IMMEDIATE").await.unwrap();
            sqlx::query("INSERT INTO audit_log (at, actor, action, target) VALUES (1, 'other', 'lock', 'x')")
                .execute(&mut *tx)
                .await
                .unwrap();
            let s = h.store.clone();
            let writer =
                tokio::spawn(async move { s.ingest_images(&[upload(&digest(20_000), findings(30))], "t").await });
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!writer.is_finished(), "the writer waits for the lock");
            tx.commit().await.unwrap();
            writer.await.unwrap().unwrap();
            assert_eq!(h.store.get_image(&digest(20_000)).await.unwrap().unwrap().open_findings.high, 30);
        }
    }
}
both!(outage_mid_ingest_is_retried);
