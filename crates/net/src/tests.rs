#![allow(clippy::unwrap_used)]

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

/// What a scripted loopback server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// A loopback HTTP/1.1 server answering each request with `answer(path)`; every request it
/// saw is sent on the returned channel. `answer` writes the raw response (it may trickle).
fn server<F>(answer: F) -> (String, mpsc::Receiver<Seen>)
where
    F: Fn(&Seen, &mut TcpStream) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let answer = Arc::new(answer);
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let tx = tx.clone();
            let answer = answer.clone();
            thread::spawn(move || loop {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let (mut auth, mut len) = (None, 0usize);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 {
                        return;
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    let (k, v) = h.split_once(':').unwrap_or((h, ""));
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = Some(v.trim().to_string());
                    }
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                let seen = Seen { method, path, authorization: auth, body };
                let _ = tx.send(seen.clone());
                answer(&seen, &mut s);
                let _ = s.flush();
            });
        }
    });
    (base, rx)
}

fn reply(s: &mut TcpStream, status: &str, headers: &[(&str, &str)], body: &str) {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = s.write_all(out.as_bytes());
}

fn client() -> Client {
    Client::new(ClientOptions { deadline: Duration::from_secs(10), ..Default::default() })
}

#[test]
fn redirect_to_a_url_without_host_is_an_error_not_a_panic() {
    for loc in ["file:///etc/passwd", "data:text/plain,hello", "ftp://example.invalid/x", "http://"] {
        let loc = loc.to_string();
        let (base, _rx) = server(move |_, s| reply(s, "302 Found", &[("Location", &loc)], ""));
        let e = client().send(Request::get(format!("{base}/x"))).unwrap_err();
        assert!(matches!(e, NetError::Redirect { .. }), "{e}");
    }
}

#[test]
fn redirect_without_location_and_loops_are_errors() {
    let (base, _rx) = server(|_, s| reply(s, "301 Moved", &[], ""));
    let e = client().send(Request::get(format!("{base}/x"))).unwrap_err();
    assert!(e.to_string().contains("without Location"), "{e}");

    let (base, rx) = server(|seen, s| {
        let n: u32 = seen.path.trim_start_matches('/').parse().unwrap_or(0);
        reply(s, "302 Found", &[("Location", &format!("/{}", n + 1))], "")
    });
    let e = client().send(Request::get(format!("{base}/0"))).unwrap_err();
    assert!(e.to_string().contains("more than 8 redirects"), "{e}");
    assert_eq!(rx.try_iter().count(), 9, "the first request and 8 hops");
}

#[test]
fn relative_redirects_are_followed_and_reported() {
    let (base, _rx) = server(|seen, s| match seen.path.as_str() {
        "/a" => reply(s, "307 Temporary Redirect", &[("Location", "b")], ""),
        "/b" => reply(s, "200 OK", &[("Content-Type", "text/plain; charset=utf-8")], "done"),
        _ => reply(s, "404 Not Found", &[], ""),
    });
    let r = client().send(Request::get(format!("{base}/a"))).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.redirects(), 1);
    assert_eq!(r.url().path(), "/b");
    assert_eq!(r.content_type(), "text/plain");
    assert_eq!(r.read_to_vec(100).unwrap(), b"done");
}

#[test]
fn credentials_stay_with_the_first_origin() {
    let (cdn, cdn_rx) = server(|_, s| reply(s, "200 OK", &[], "blob"));
    let cdn_url = format!("{cdn}/blob");
    let (registry, reg_rx) = server(move |_, s| reply(s, "307 Temporary Redirect", &[("Location", &cdn_url)], ""));
    let r = client()
        .send(Request::get(format!("{registry}/v2/x/blobs/sha256:00")).credential(Some("Basic dXNlcjpwYXNz".into())))
        .unwrap();
    assert_eq!(r.read_to_vec(100).unwrap(), b"blob");
    assert_eq!(reg_rx.recv().unwrap().authorization.as_deref(), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(cdn_rx.recv().unwrap().authorization, None, "credentials must not follow a redirect to another host");
}

#[test]
fn credentials_never_go_over_plain_http_to_a_non_loopback_host() {
    // Refused before any connection (so no DNS is needed for the .invalid name).
    let e = client()
        .send(Request::get("http://registry.example.invalid/v2/").credential(Some("Bearer t".into())))
        .unwrap_err();
    assert!(matches!(e, NetError::PlainHttpCredentials { .. }), "{e}");
}

#[test]
fn loopback_is_decided_by_address_not_by_name_prefix() {
    assert!(is_loopback_host("127.0.0.1"));
    assert!(is_loopback_host("127.1.2.3"));
    assert!(is_loopback_host("[::1]"));
    assert!(is_loopback_host("::1"));
    assert!(is_loopback_host("localhost"));
    assert!(is_loopback_host("LOCALHOST."));
    assert!(!is_loopback_host("127.evil.test"));
    assert!(!is_loopback_host("127.0.0.1.nip.io"));
    assert!(!is_loopback_host("localhost.evil.test"));
    assert!(!is_loopback_host("10.0.0.1"));
    assert!(!is_loopback_host("[::ffff:10.0.0.1]"));
    assert!(!is_loopback_host(""));
}

#[test]
fn post_is_not_turned_into_get_by_a_302() {
    let (base, rx) = server(|seen, s| match seen.path.as_str() {
        "/hook" => reply(s, "302 Found", &[("Location", "/elsewhere")], ""),
        _ => reply(s, "200 OK", &[], ""),
    });
    let r = client().send(Request::post(format!("{base}/hook"), b"alerts")).unwrap();
    assert_eq!(r.status(), 302);
    assert!(!r.is_success(), "a redirect is not delivery");
    assert_eq!(rx.try_iter().count(), 1, "the redirect was not followed");
}

#[test]
fn post_307_replays_the_body_and_303_is_handed_back() {
    let (base, rx) = server(|seen, s| match seen.path.as_str() {
        "/a" => reply(s, "307 Temporary Redirect", &[("Location", "/b")], ""),
        "/c" => reply(s, "303 See Other", &[("Location", "/d")], ""),
        _ => reply(s, "200 OK", &[], ""),
    });
    let r = client().send(Request::post(format!("{base}/a"), b"payload")).unwrap();
    assert!(r.is_success());
    let seen: Vec<Seen> = rx.try_iter().collect();
    assert_eq!(seen[1].path, "/b");
    assert_eq!(seen[1].method, "POST");
    assert_eq!(seen[1].body, b"payload");

    let r = client().send(Request::post(format!("{base}/c"), b"payload")).unwrap();
    assert_eq!(r.status(), 303, "a POST is not re-sent as a GET");
    assert_eq!(rx.try_iter().count(), 1);
}

#[test]
fn https_to_http_downgrade_is_refused_for_remote_hosts() {
    // A plain-HTTP server stands in for the https origin's answer: the check is on the URLs.
    let e = check_downgrade("https://registry.example/v2/", "http://cdn.example/blob");
    assert!(e.is_some());
    assert!(check_downgrade("https://registry.example/v2/", "https://cdn.example/blob").is_none());
    assert!(check_downgrade("https://registry.example/v2/", "http://127.0.0.1:5000/blob").is_none());
}

fn check_downgrade(from: &str, to: &str) -> Option<()> {
    let (a, b) = (Url::parse(from).unwrap(), Url::parse(to).unwrap());
    (a.scheme() == "https" && b.scheme() == "http" && !is_loopback_host(b.host_str().unwrap_or(""))).then_some(())
}

#[test]
fn a_trickling_server_is_cut_off_by_the_deadline() {
    let (base, _rx) = server(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n");
        for _ in 0..100 {
            if s.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let started = Instant::now();
    let res = client()
        .send(Request::get(format!("{base}/slow")).deadline(Duration::from_secs(1)))
        .and_then(|r| r.read_to_vec(10_000_000));
    let e = res.unwrap_err();
    assert!(matches!(e, NetError::Deadline { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[test]
fn a_trickled_head_is_cut_off_too() {
    let (base, _rx) = server(|_, s| {
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: yes" {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(150));
        }
    });
    let started = Instant::now();
    let e = client().send(Request::get(format!("{base}/slow")).deadline(Duration::from_secs(1))).unwrap_err();
    assert!(matches!(e, NetError::Deadline { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn endless_bodies_hit_the_cap() {
    let (base, _rx) = server(|_, s| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 65536, "z".repeat(65536));
        while s.write_all(chunk.as_bytes()).is_ok() {}
    });
    let r = client().send(Request::get(format!("{base}/endless"))).unwrap();
    let e = r.read_to_vec(1 << 20).unwrap_err();
    assert!(matches!(e, NetError::TooLarge { limit, .. } if limit == 1 << 20), "{e}");

    // A declared length over the cap is refused before reading.
    let (base, _rx) = server(|_, s| reply(s, "200 OK", &[], &"y".repeat(5000)));
    let e = client().send(Request::get(format!("{base}/big"))).unwrap().read_to_vec(4096).unwrap_err();
    assert!(matches!(e, NetError::TooLarge { .. }), "{e}");
    // Exactly at the cap is fine.
    let (base, _rx) = server(|_, s| reply(s, "200 OK", &[], &"y".repeat(4096)));
    assert_eq!(client().send(Request::get(format!("{base}/ok"))).unwrap().read_to_vec(4096).unwrap().len(), 4096);
}

#[test]
fn statuses_are_answers_not_errors() {
    let (base, _rx) = server(|_, s| reply(s, "404 Not Found", &[], "{\"message\":\"no \u{1b}[31mred\"}"));
    let r = client().send(Request::get(format!("{base}/missing"))).unwrap();
    assert_eq!(r.status(), 404);
    let excerpt = r.error_excerpt();
    assert!(!excerpt.contains('\u{1b}'), "terminal escapes are removed: {excerpt:?}");
}

#[test]
fn exactly_these_statuses_are_retried() {
    let p = RetryPolicy::default();
    let retried: Vec<u16> = (100..600).filter(|s| p.retryable_status(*s)).collect();
    assert_eq!(retried, vec![408, 429, 500, 502, 503, 504]);
}

#[test]
fn backoff_doubles_caps_and_honours_retry_after() {
    let p = RetryPolicy { base: Duration::from_millis(100), max_wait: Duration::from_secs(1), ..Default::default() };
    assert_eq!(p.wait(1, None), Duration::from_millis(100));
    assert_eq!(p.wait(2, None), Duration::from_millis(200));
    assert_eq!(p.wait(3, None), Duration::from_millis(400));
    assert_eq!(p.wait(10, None), Duration::from_secs(1));
    assert_eq!(p.wait(1, Some("0")), Duration::ZERO);
    assert_eq!(p.wait(1, Some("3600")), Duration::from_secs(1));
    assert_eq!(p.wait(1, Some("soon")), Duration::from_millis(100));
}

#[test]
fn retries_503_then_succeeds_and_gives_up_on_404() {
    let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let c2 = count.clone();
    let (base, _rx) = server(move |seen, s| {
        if seen.path == "/missing" {
            return reply(s, "404 Not Found", &[], "");
        }
        if c2.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            reply(s, "503 Service Unavailable", &[("Retry-After", "0")], "")
        } else {
            reply(s, "200 OK", &[], "ok")
        }
    });
    let p = RetryPolicy { base: Duration::from_millis(10), ..Default::default() };
    let r = client().send_with_retry(&Request::get(format!("{base}/flaky")), &p).unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);
    let r = client().send_with_retry(&Request::get(format!("{base}/missing")), &p).unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn connection_refused_is_a_transient_transport_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e = client().send(Request::get(format!("http://127.0.0.1:{port}/"))).unwrap_err();
    assert!(matches!(e, NetError::Transport { kind: TransportKind::Connect, .. }), "{e:?}");
    assert!(e.is_transient());
}

#[test]
fn tls_failures_say_so() {
    // A plain-HTTP server spoken to over https: the TLS cause must be in the message.
    let (base, _rx) = server(|_, s| reply(s, "200 OK", &[], "plain"));
    let url = base.replace("http://", "https://");
    let e = client().send(Request::get(url)).unwrap_err();
    let msg = e.to_string().to_ascii_lowercase();
    assert!(msg.contains("tls") || msg.contains("corrupt") || msg.contains("invalid"), "{msg}");
}
