//! The server on a real socket: the connection handling it shares with the webhooks
//! (palisade-https) protects the API from slow and silent clients, and bodies are bounded
//! before and while they are read. SQLite only: none of this depends on the store's backend.
#![allow(clippy::panic, clippy::unwrap_used)] // a failed expectation is the point of a test or bench

use palisade_server::{Config, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

struct Running {
    addr: SocketAddr,
    admin: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

async fn start() -> Running {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let feeds = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(feeds.path().join("osv")).unwrap_or_else(|e| panic!("{e}"));
    let mut c = Config::new(data.path().to_path_buf());
    c.db_from = vec![feeds.path().to_path_buf()];
    c.db_build.allow_shrink = true;
    c.http.request_timeout = Duration::from_secs(1);
    c.http.first_byte_timeout = Duration::from_secs(1);
    c.http.max_connections = 8;
    c.shutdown_grace = Duration::from_secs(2);
    let (server, boot) = Server::open(c).await.unwrap_or_else(|e| panic!("{e}"));
    let admin = boot
        .admin_token_path
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.trim().to_string())
        .unwrap_or_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = palisade_server::serve(server, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Running { addr, admin, stop: Some(tx), task, _data: data }
}

/// Sends `head` (and `body`), then reads the response until the server closes or `wait` passes.
fn exchange(addr: SocketAddr, head: &str, body: &[u8], wait: Duration) -> (String, Duration) {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
    s.set_read_timeout(Some(wait)).unwrap_or_else(|e| panic!("{e}"));
    s.write_all(head.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&out).contains("\"error\"") {
                    break;
                }
            }
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t.elapsed())
}

fn status(resp: &str) -> u16 {
    resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_oversized_clients_are_cut_off() {
    let mut r = start().await;
    let (addr, admin) = (r.addr, r.admin.clone());
    tokio::task::spawn_blocking(move || {
        // A flood of silent connections (more than the cap) does not keep a probe out.
        let silent: Vec<TcpStream> = (0..20).filter_map(|_| TcpStream::connect(addr).ok()).collect();
        let (probe, took) = exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"", Duration::from_secs(5));
        assert_eq!(status(&probe), 200, "{probe}");
        assert!(took < Duration::from_secs(2), "probe took {took:?}");
        // ... and the silent ones are closed after the first-byte timeout.
        std::thread::sleep(Duration::from_millis(1600));
        for mut s in silent {
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap_or_else(|e| panic!("{e}"));
            let mut b = [0u8; 16];
            let closed = matches!(s.read(&mut b), Ok(0) | Err(_));
            assert!(closed, "a silent connection stayed open");
        }

        // No token: refused on the headers, the announced 50 MB body is never waited for.
        let (resp, took) = exchange(
            addr,
            "POST /api/v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n",
            b"{",
            Duration::from_secs(5),
        );
        assert_eq!(status(&resp), 401, "{resp}");
        assert!(took < Duration::from_millis(900), "refusal took {took:?}");

        // Over the body limit by its Content-Length: 413 before reading.
        let (resp, _) = exchange(
            addr,
            &format!("POST /api/v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", 65u64 << 20),
            b"{",
            Duration::from_secs(5),
        );
        assert_eq!(status(&resp), 413, "{resp}");

        // A body that trickles: 408 after the request timeout, not a connection held forever.
        let (resp, took) = exchange(
            addr,
            &format!("POST /api/v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"),
            b"{\"images\": [",
            Duration::from_secs(5),
        );
        assert_eq!(status(&resp), 408, "{resp}");
        assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(4), "408 after {took:?}");

        // A chunked body past the limit is cut off at the limit with 413.
        let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap_or_else(|e| panic!("{e}"));
        let head = format!("POST /api/v1/images HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let chunk = vec![b' '; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..70 {
            if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).is_err()
                || s.write_all(&chunk).is_err()
                || s.write_all(b"\r\n").is_err()
            {
                break;
            }
            sent += chunk.len();
        }
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let resp = String::from_utf8_lossy(&out);
        assert_eq!(status(&resp), 413, "after {sent} bytes: {resp}");
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    if let Some(tx) = r.stop.take() {
        let _ = tx.send(());
    }
    let t = Instant::now();
    let _ = (&mut r.task).await;
    assert!(t.elapsed() < Duration::from_secs(5), "drain took {:?}", t.elapsed());
}
