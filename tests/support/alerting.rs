//! A throwaway Alertmanager and an HTTP receiver that records the webhooks it is sent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::http::http_get;
use super::proc::{Proc, free_port, temp_dir, wait_until};

/// One POST the receiver got: when, on which path, and its JSON body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub at: Instant,
    pub path: String,
    pub body: serde_json::Value,
}

/// A loopback HTTP server recording every POST (answers 200, or `status` when set).
pub struct WebhookReceiver {
    port: u16,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    status: Arc<Mutex<u16>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    /// Starts listening on a free loopback port.
    pub fn start() -> WebhookReceiver {
        Self::start_on(0)
    }

    /// Starts listening on `port` (0: any free port).
    pub fn start_on(port: u16) -> WebhookReceiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind webhook receiver");
        let port = listener.local_addr().expect("local addr").port();
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(Mutex::new(200u16));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (deliveries, status, stop) = (deliveries.clone(), status.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = conn else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let code = *status.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((path, body)) = read_request(&mut stream) {
                        if code == 200 {
                            deliveries
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(Delivery {
                                    at: Instant::now(),
                                    path,
                                    body,
                                });
                        }
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                }
            })
        };
        WebhookReceiver {
            port,
            deliveries,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Makes the receiver answer `code` (and not record) from now on, e.g. 500 to test retries.
    pub fn set_status(&self, code: u16) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = code;
    }

    /// Everything recorded so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body; returns (path, JSON body).
fn read_request(stream: &mut std::net::TcpStream) -> Option<(String, serde_json::Value)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_owned();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some((
        path,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    ))
}

/// Alertmanager (Debian's 0.25) on loopback with gossip off and `config` written to a temp dir.
pub struct Alertmanager {
    proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl Alertmanager {
    /// Starts it with this YAML config; returns once `/-/ready` answers (panics after 30 s).
    pub fn start(config: &str) -> Alertmanager {
        let dir = temp_dir("alertmanager");
        let port = free_port();
        let cfg = dir.join("alertmanager.yml");
        std::fs::write(&cfg, config).expect("write alertmanager config");
        let mut cmd = Command::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .current_dir(&dir);
        let mut proc = Proc::spawn("alertmanager", &mut cmd, &dir.join("alertmanager.log"));
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        let ok = wait_until(Duration::from_secs(30), || {
            matches!(http_get(&ready), Ok((200, _))) || !proc.is_running()
        });
        if !ok || !proc.is_running() {
            proc.dump_log();
            panic!("alertmanager did not become ready on {port}");
        }
        Alertmanager { proc, port, dir }
    }

    /// `127.0.0.1:PORT`, for Prometheus' `alerting` section.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Prints its log.
    pub fn dump_log(&self) {
        self.proc.dump_log();
    }
}
