//! Tiny HTTP client helpers (ureq 3) and a stub HTTP server serving a settable body.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A ureq agent for loopback: 5 s timeout, no proxy, non-2xx statuses are not errors.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent()
}

/// GET `url` → (status, body); only transport failures are errors (404 is `Ok((404, ..))`).
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    http_get_with_token(url, None)
}

/// [`http_get`] with `Authorization: Bearer TOKEN` when a token is given.
pub fn http_get_with_token(url: &str, token: Option<&str>) -> Result<(u16, String), String> {
    let mut req = agent().get(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let mut resp = req.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading body: {e}"))?;
    Ok((status, body))
}

/// GET `url` and parse JSON; errors on transport failure, non-2xx status or bad JSON.
pub fn http_get_json(url: &str) -> Result<serde_json::Value, String> {
    http_get_json_with_token(url, None)
}

/// [`http_get_json`] with `Authorization: Bearer TOKEN` when a token is given.
pub fn http_get_json_with_token(
    url: &str,
    token: Option<&str>,
) -> Result<serde_json::Value, String> {
    let (status, body) = http_get_with_token(url, token)?;
    if !(200..300).contains(&status) {
        return Err(format!("GET {url}: status {status}: {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("GET {url}: bad JSON ({e}): {body}"))
}

/// A loopback HTTP/1.0 server answering every request with the current (status, body)
/// (e.g. a fake `/metrics` target for Prometheus). Stopped on Drop.
pub struct StubServer {
    port: u16,
    response: Arc<Mutex<(u16, String)>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl StubServer {
    /// Starts serving `body` with status 200 and `text/plain; version=0.0.4`.
    pub fn start(body: &str) -> StubServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind stub server");
        let port = listener.local_addr().unwrap().port();
        let response = Arc::new(Mutex::new((200u16, body.to_string())));
        let stop = Arc::new(AtomicBool::new(false));
        let (resp, stop2) = (response.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = conn {
                    let (status, body) = resp.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let _ = serve_one(stream, status, &body);
                }
            }
        });
        StubServer {
            port,
            response,
            stop,
            thread: Some(thread),
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`, as a Prometheus target.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// Replaces the body served from now on (status 200).
    pub fn set_body(&self, body: &str) {
        self.set_response(200, body);
    }

    /// Replaces status and body served from now on.
    pub fn set_response(&self, status: u16, body: &str) {
        *self.response.lock().unwrap_or_else(|e| e.into_inner()) = (status, body.to_string());
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(stream: TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // Request line + headers up to the blank line.
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.0 {status} X\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
