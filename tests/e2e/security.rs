//! The HTTP server's defences, against the real process on loopback: the bearer token on the
//! API and on `POST /api/reload`, the refusals that stop cross-site requests and DNS
//! rebinding (foreign `Origin`, unknown `Host`, a non-JSON body), the metrics listener, the
//! body limit, and the connection limits: thousands of idle connections plus a slowloris
//! client do not keep `/metrics` and `/healthz` from answering.
//!
//! Requests are written by hand on a TCP socket, so every header (`Host`, `Origin`) is
//! exactly what a hostile client would send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::support::{Streamwatch, free_port, metric_sum, temp_dir};

const TOKEN: &str = "e2e-api-token-0123456789abcdef";
const METRICS_TOKEN: &str = "e2e-metrics-token-0123456789ab";
/// One cheap synthetic stream: these tests are about HTTP, not media.
const STREAM: &str = "[[streams]]\nid = \"demo\"\nurl = \"demo://\"\n";

/// A token file, private to its owner.
fn token_file(token: &str) -> PathBuf {
    let path = temp_dir("security-token").join("token");
    std::fs::write(&path, format!("{token}\n")).expect("write token file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    path
}

fn start(server: &str) -> Streamwatch {
    Streamwatch::start(
        &format!("{STREAM}[server]\n{server}"),
        &["--backend", "cpu"],
    )
}

/// An answer: status, head (lower-cased) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends one request with exactly these headers (a `Host` of 127.0.0.1:PORT unless given)
/// on a new connection, and reads the answer to the end.
fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req.as_bytes()).expect("send request");
    let mut bytes = Vec::new();
    let _ = s.read_to_end(&mut bytes);
    parse(&String::from_utf8_lossy(&bytes))
        .unwrap_or_else(|| panic!("{method} {path}: no HTTP answer: {bytes:?}"))
}

fn parse(text: &str) -> Option<Answer> {
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_owned(),
    })
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

fn get(port: u16, path: &str, token: Option<&str>) -> Answer {
    match token {
        Some(t) => {
            let (k, v) = bearer(t);
            send(port, "GET", path, &[(k, &v)], "")
        }
        None => send(port, "GET", path, &[], ""),
    }
}

fn reload(port: u16, headers: &[(&str, &str)], body: &str) -> Answer {
    send(port, "POST", "/api/reload", headers, body)
}

#[test]
fn the_token_guards_the_api_and_foreign_requests_are_refused() {
    let file = token_file(TOKEN);
    // The port is the helper's choice: an entry without one allows the name on any port.
    let sw = start(&format!(
        "token_file = \"{}\"\nallowed_hosts = [\"127.0.0.1\", \"monitor.example.com\"]\n",
        file.display()
    ));
    let port = sw.port();
    let auth = format!("Bearer {TOKEN}");
    let good = ("Authorization", auth.as_str());
    let json = ("Content-Type", "application/json");

    for probe in ["/healthz", "/readyz", "/"] {
        assert_eq!(get(port, probe, None).status, 200, "{probe} must stay open");
    }
    for path in [
        "/api/streams",
        "/api/streams/demo",
        "/metrics",
        "/api/events/x/evidence",
    ] {
        let a = get(port, path, None);
        assert_eq!(a.status, 401, "{path} without token: {}", a.body);
        assert!(a.head.contains("www-authenticate: bearer"), "{}", a.head);
        assert_eq!(
            get(port, path, Some("wrong-token-0123456789abcdef")).status,
            401
        );
    }
    assert_eq!(get(port, "/api/streams", Some(TOKEN)).status, 200);
    assert_eq!(get(port, "/metrics", Some(TOKEN)).status, 200);

    assert_eq!(reload(port, &[], "").status, 401, "reload without token");
    let wrong = ("Authorization", "Bearer e2e-api-token-0123456789abcdeX");
    assert_eq!(
        reload(port, &[wrong], "").status,
        401,
        "reload, wrong token"
    );
    let text = reload(port, &[good, ("Content-Type", "text/plain")], "reload");
    assert_eq!(text.status, 415, "text/plain: {}", text.body);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(reload(port, &[good, form], "a=b").status, 415);
    let evil = ("Origin", "http://evil.example");
    assert_eq!(
        reload(port, &[good, json, evil], "{}").status,
        403,
        "foreign Origin"
    );
    let rebinding = ("Host", "rebind.evil.example:9723");
    let a = reload(port, &[good, json, rebinding], "{}");
    assert_eq!(a.status, 421, "unknown Host: {}", a.body);
    assert_eq!(
        send(port, "GET", "/api/streams", &[good, rebinding], "").status,
        421
    );
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(64 * 1024));
    assert_eq!(
        reload(port, &[good, json], &big).status,
        413,
        "body too large"
    );

    let ok = reload(
        port,
        &[good, json, ("Origin", "https://monitor.example.com")],
        "{}",
    );
    assert_eq!(ok.status, 200, "good token + JSON: {}", ok.body);
    assert!(ok.body.contains("\"unchanged\":1"), "{}", ok.body);
    let same_origin = ("Origin", &*format!("http://127.0.0.1:{port}"));
    assert_eq!(
        reload(port, &[good, same_origin], "").status,
        200,
        "no body"
    );

    let refused = metric_sum(
        &get(port, "/metrics", Some(TOKEN)).body,
        "streamwatch_http_requests_refused_total",
        &[],
    );
    assert!(refused >= 15.0, "refusals counted: {refused}");
    assert!(!sw.log().contains(TOKEN), "the token was logged");
    assert!(sw.terminate().success());
}

#[test]
fn without_a_token_reads_are_open_and_reload_is_refused_with_how_to() {
    let sw = start("");
    let port = sw.port();
    assert_eq!(get(port, "/api/streams", None).status, 200);
    assert_eq!(get(port, "/metrics", None).status, 200);
    let a = reload(port, &[("Content-Type", "application/json")], "{}");
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains("token_file") && a.body.contains("STREAMWATCH_TOKEN"),
        "the refusal says how to configure a token: {}",
        a.body
    );
    let warnings = sw.log().matches("no API token").count();
    assert_eq!(warnings, 1, "one warning at start:\n{}", sw.log());

    let (count, elapsed) = refusals_for(port, Duration::from_secs(3));
    println!(
        "reload refused without a token: {count} in {:.1} s on one keep-alive connection \
         ({:.0}/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    assert!(count > 100, "only {count} answers");
    assert!(sw.terminate().success());
}

/// Sends `POST /api/reload` without a token back to back on one keep-alive connection for
/// `period`: (refusals, time). Every answer must be a refusal.
fn refusals_for(port: u16, period: Duration) -> (u64, Duration) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req =
        format!("POST /api/reload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n");
    let start = Instant::now();
    let mut count = 0u64;
    let mut buf = Vec::new();
    while start.elapsed() < period {
        s.write_all(req.as_bytes()).expect("send");
        let answer = read_one(&mut s, &mut buf);
        assert!(answer.starts_with("HTTP/1.1 403"), "not refused: {answer}");
        count += 1;
    }
    (count, start.elapsed())
}

/// Reads one keep-alive answer (head + Content-Length body) from `s`.
fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(buf).into_owned();
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if rest.len() >= len {
                let used = head.len() + 4 + len;
                buf.drain(..used);
                return head.to_owned();
            }
        }
        let n = s.read(&mut chunk).expect("read answer");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn public_read_opens_reads_but_not_reload() {
    let sw = Streamwatch::start_with_env(
        &format!("{STREAM}[server]\npublic_read = true\n"),
        &["--backend", "cpu"],
        &[("STREAMWATCH_TOKEN", TOKEN)],
    );
    let port = sw.port();
    assert_eq!(get(port, "/api/streams", None).status, 200);
    assert_eq!(get(port, "/metrics", None).status, 200);
    assert_eq!(reload(port, &[], "").status, 401);
    let (k, v) = bearer(TOKEN);
    assert_eq!(reload(port, &[(k, &v)], "").status, 200);
    assert!(!sw.log().contains(TOKEN), "the token was logged");
    assert!(sw.terminate().success());
}

#[test]
fn metrics_on_their_own_listener_with_and_without_their_token() {
    let api = token_file(TOKEN);
    let metrics = token_file(METRICS_TOKEN);
    let mport = free_port();
    let sw = start(&format!(
        "token_file = \"{}\"\nmetrics_listen = \"127.0.0.1:{mport}\"\nmetrics_token_file = \"{}\"\n",
        api.display(),
        metrics.display()
    ));
    assert_eq!(get(mport, "/metrics", None).status, 401);
    assert_eq!(get(mport, "/metrics", Some(TOKEN)).status, 401, "API token");
    let m = get(mport, "/metrics", Some(METRICS_TOKEN));
    assert_eq!(m.status, 200);
    assert!(m.body.contains("streamwatch_build_info"), "{}", m.body);
    assert_eq!(get(mport, "/api/streams", Some(METRICS_TOKEN)).status, 404);
    // Reads need the API token, so /metrics is not on the main listener at all.
    assert_eq!(get(sw.port(), "/metrics", Some(TOKEN)).status, 404);
    assert!(sw.terminate().success());

    let open_port = free_port();
    let sw = start(&format!(
        "token_file = \"{}\"\nmetrics_listen = \"127.0.0.1:{open_port}\"\n",
        api.display()
    ));
    assert_eq!(
        get(open_port, "/metrics", None).status,
        200,
        "no metrics token: open"
    );
    assert_eq!(get(sw.port(), "/metrics", Some(TOKEN)).status, 404);
    assert!(sw.terminate().success());
}

#[test]
fn the_status_page_asks_for_the_token_when_the_api_wants_one() {
    let sw = start(&format!(
        "token_file = \"{}\"\n",
        token_file(TOKEN).display()
    ));
    let dom = crate::evidence_status::chromium(&[
        "--virtual-time-budget=3000",
        "--dump-dom",
        &sw.url("/"),
    ]);
    let form = dom
        .split("<form id=\"login\"")
        .nth(1)
        .and_then(|f| f.split('>').next())
        .unwrap_or_else(|| panic!("no token form in the page:\n{dom}"));
    assert!(
        !form.contains("hidden"),
        "the token form stays hidden: {form}"
    );
    assert!(
        dom.contains("needs its API token"),
        "the summary does not ask for the token:\n{dom}"
    );
    assert!(sw.terminate().success());
}

/// Raises this process's descriptor limit to its hard limit; returns the soft limit.
fn raise_own_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the one struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Opens up to `n` idle connections (sending nothing) and keeps them open until `stop`.
fn idle_flood(addr: SocketAddr, n: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                held.push(s);
            }
        }
        let opened = held.len();
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        opened
    })
}

/// A slowloris client: one header byte a second; returns how long until the server closed.
fn slowloris(addr: SocketAddr) -> std::thread::JoinHandle<Option<Duration>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).ok()?;
        let start = Instant::now();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").ok()?;
        s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
        let mut byte = [0u8; 1];
        while start.elapsed() < Duration::from_secs(60) {
            if s.write_all(b"X").is_err() {
                return Some(start.elapsed());
            }
            match s.read(&mut byte) {
                Ok(0) => return Some(start.elapsed()),
                // hyper answers 408 on a header timeout, then closes.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return Some(start.elapsed()),
            }
        }
        None
    })
}

/// Times a GET that must answer 200.
fn timed_get(port: u16, path: &str) -> Duration {
    let start = Instant::now();
    let a = get(port, path, None);
    assert_eq!(a.status, 200, "{path} under load: {}", a.body);
    start.elapsed()
}

#[test]
fn idle_connections_and_a_slowloris_do_not_starve_metrics_or_probes() {
    const HEADER_TIMEOUT: f64 = 4.0;
    let soft = raise_own_fd_limit();
    // Leaves descriptors to the other tests of this binary running alongside.
    let n = usize::try_from(soft.saturating_sub(2000))
        .unwrap_or(0)
        .min(12_000);
    assert!(n >= 1000, "descriptor limit {soft} too low for this test");
    let sw = start(&format!("header_read_timeout = {HEADER_TIMEOUT}\n"));
    let port = sw.port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flood = idle_flood(addr, n, stop.clone());
    let loris = slowloris(addr);

    let mut worst = Duration::ZERO;
    let mut server_fds = 0;
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(8) {
        for path in ["/metrics", "/healthz"] {
            worst = worst.max(timed_get(port, path));
        }
        server_fds = server_fds.max(open_fds(sw.pid()));
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = get(port, "/metrics", None).body;
    stop.store(true, Ordering::SeqCst);
    let opened = flood.join().expect("flood thread");
    let closed_after = loris.join().expect("slowloris thread");
    let shed = |reason: &str| {
        metric_sum(
            &metrics,
            "streamwatch_http_connections_shed_total",
            &[&format!("reason=\"{reason}\"")],
        )
    };
    println!(
        "{opened} idle connections opened (of {n}); {} connections open at the server at the end, at most \
         {server_fds} descriptors in all; {} evicted, {} refused; slowest /metrics or /healthz {:.0} ms; \
         slowloris closed after {closed_after:?}",
        metric_sum(
            &metrics,
            "streamwatch_http_connections",
            &["listener=\"main\""]
        ),
        shed("evicted"),
        shed("refused"),
        worst.as_secs_f64() * 1000.0
    );
    assert!(opened > 1000, "the flood opened only {opened} connections");
    assert!(worst < Duration::from_secs(3), "a probe took {worst:?}");
    assert!(
        server_fds < 1000,
        "the server held {server_fds} descriptors"
    );
    let closed = closed_after.expect("the slowloris connection was never closed");
    assert!(
        closed < Duration::from_secs_f64(HEADER_TIMEOUT + 3.0),
        "slowloris held for {closed:?}"
    );
    // Alone (nothing to evict it for), a slowloris lasts exactly the header timeout.
    let alone = slowloris(addr)
        .join()
        .expect("slowloris thread")
        .expect("the lone slowloris was never closed");
    println!("a lone slowloris was closed after {alone:?}");
    assert!(
        alone >= Duration::from_secs_f64(HEADER_TIMEOUT - 0.5)
            && alone < Duration::from_secs_f64(HEADER_TIMEOUT + 2.0),
        "lone slowloris closed after {alone:?}, header timeout {HEADER_TIMEOUT} s"
    );
    assert!(sw.terminate().success());
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}
