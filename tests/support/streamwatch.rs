//! The streamwatch binary under test, run as a child process on a loopback port.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{http_get, http_get_json_with_token, http_get_with_token};
use super::proc::{Proc, free_port, temp_dir, wait_until};

/// Path of the binary under test: `$STREAMWATCH_BIN` when set (e.g. to score an older build
/// on the accuracy corpus), else the one cargo built for the integration tests.
pub fn binary() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("STREAMWATCH_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_streamwatch").to_owned())
    })
}

/// Runs `streamwatch ARGS` to completion with a timeout: (exit code, stdout, stderr). The
/// pipes are drained while it runs, so a chatty child cannot block on a full pipe.
pub fn run_cli(args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut child = Command::new(binary())
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn streamwatch");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("streamwatch {args:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (
        status.code().unwrap_or(-1),
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    )
}

/// `streamwatch scan --format json` on a source; panics with stderr unless it exits 0.
pub fn scan_json(source: &str, extra: &[&str]) -> Value {
    let mut args = vec!["scan", source, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_cli(&args, Duration::from_secs(300));
    assert_eq!(code, 0, "scan {source} failed: {stderr}");
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("scan output is not JSON ({e}): {stdout}"))
}

/// A running `streamwatch run` process.
pub struct Streamwatch {
    proc: Proc,
    port: u16,
    pub dir: PathBuf,
    /// `STREAMWATCH_TOKEN` as given at start: sent on the helper's own API reads.
    token: Option<String>,
}

impl Streamwatch {
    /// Starts `streamwatch run --config <config>` (the `listen` key is added here) plus `args`,
    /// and waits for `/readyz`.
    pub fn start(config: &str, args: &[&str]) -> Streamwatch {
        Self::start_with_env(config, args, &[])
    }

    /// [`Streamwatch::start`] with environment variables (e.g. `STREAMWATCH_TOKEN`).
    pub fn start_with_env(config: &str, args: &[&str], env: &[(&str, &str)]) -> Streamwatch {
        // STREAMWATCH_TEST_WRAPPER="gdb -batch -ex run -ex bt --args" debugs a crash.
        let wrapper = std::env::var("STREAMWATCH_TEST_WRAPPER").unwrap_or_default();
        Self::start_wrapped(config, args, env, &wrapper)
    }

    /// [`Streamwatch::start_with_env`] run under `wrapper` (a command and its arguments, e.g.
    /// `taskset -c 0` to give it one core).
    pub fn start_wrapped(
        config: &str,
        args: &[&str],
        env: &[(&str, &str)],
        wrapper: &str,
    ) -> Streamwatch {
        let dir = temp_dir("streamwatch");
        let port = free_port();
        let path = dir.join("streamwatch.toml");
        std::fs::write(&path, format!("listen = \"127.0.0.1:{port}\"\n{config}"))
            .expect("write config");
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(w) => {
                let mut c = Command::new(w);
                c.args(words).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .args(args)
            .envs(env.iter().copied())
            .env("NODEVICE_SELECT", "1");
        let proc = Proc::spawn("streamwatch", &mut cmd, &dir.join("streamwatch.log"));
        let token = env
            .iter()
            .find(|(k, _)| *k == "STREAMWATCH_TOKEN")
            .map(|(_, v)| v.to_string());
        let sw = Streamwatch {
            proc,
            port,
            dir,
            token,
        };
        let ready = wait_until(Duration::from_secs(30), || {
            matches!(http_get(&sw.url("/readyz")), Ok((200, _)))
        });
        if !ready {
            sw.proc.dump_log();
            panic!("streamwatch did not become ready");
        }
        sw
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Replaces the config file with `config` (same `listen` line as at start), for reloads.
    pub fn rewrite_config(&self, config: &str) {
        let path = self.dir.join("streamwatch.toml");
        // Written whole to a temp name and renamed: a reload never reads a half-written file.
        let tmp = self.dir.join("streamwatch.toml.tmp");
        std::fs::write(
            &tmp,
            format!("listen = \"127.0.0.1:{}\"\n{config}", self.port),
        )
        .expect("write config");
        std::fs::rename(&tmp, &path).expect("replace config");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `/api/streams`.
    pub fn streams(&self) -> Vec<Value> {
        match http_get_json_with_token(&self.url("/api/streams"), self.token.as_deref()) {
            Ok(Value::Array(v)) => v,
            other => panic!("bad /api/streams answer: {other:?}"),
        }
    }

    /// `/api/streams/{id}`.
    pub fn stream(&self, id: &str) -> Value {
        let url = self.url(&format!("/api/streams/{id}"));
        http_get_json_with_token(&url, self.token.as_deref())
            .unwrap_or_else(|e| panic!("stream {id}: {e}"))
    }

    pub fn metrics(&self) -> String {
        match http_get_with_token(&self.url("/metrics"), self.token.as_deref()) {
            Ok((200, body)) => body,
            other => panic!("bad /metrics answer: {other:?}"),
        }
    }

    /// Sum of every sample of `name` whose labels contain all of `labels` (`key="value"`).
    pub fn metric_sum(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.metrics(), name, labels)
    }

    /// Polls the stream's API entry until `f` holds; dumps the log and panics on timeout.
    pub fn wait_stream(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&Value) -> bool,
    ) -> Value {
        let mut last = Value::Null;
        let ok = wait_until(timeout, || {
            last = self.stream(id);
            f(&last)
        });
        if !ok {
            self.dump_log();
            panic!("stream {id}: {what} not seen within {timeout:?}; last state: {last:#}");
        }
        last
    }

    pub fn dump_log(&self) {
        self.proc.dump_log();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.proc.log_path()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status (clean shutdown check).
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.proc.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.proc.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.proc
            .exit_status()
            .expect("streamwatch did not exit after SIGTERM")
    }
}

/// Sum of every sample of `name` in Prometheus text whose labels contain all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Active or ended events of `detector` in a stream's API entry.
pub fn events_of<'a>(stream: &'a Value, detector: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for key in ["active_defects", "last_events"] {
        if let Some(list) = stream[key].as_array() {
            out.extend(list.iter().filter(|e| e["detector"] == detector));
        }
    }
    out
}
