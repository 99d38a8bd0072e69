//! A throwaway Prometheus server and `promtool check metrics`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::http::{http_get, http_get_json};
use super::proc::{Proc, free_port, remove_dir_unless_panicking, temp_dir, wait_until};

/// Prometheus (Debian's 2.42) with 1 s scrape/evaluation interval, config + data in a temp dir.
pub struct Prometheus {
    proc: Proc,
    dir: PathBuf,
    port: u16,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`host:port`, job `streamwatch`, path `/metrics`)
    /// with `rule_files`; returns once `/-/ready` answers 200 (panics after 30 s).
    pub fn start(targets: &[&str], rule_files: &[PathBuf]) -> Prometheus {
        Self::start_alerting(targets, rule_files, &[])
    }

    /// Like [`Prometheus::start`], also sending alerts to `alertmanagers` (`host:port`).
    pub fn start_alerting(
        targets: &[&str],
        rule_files: &[PathBuf],
        alertmanagers: &[&str],
    ) -> Prometheus {
        let dir = temp_dir("prometheus");
        let port = free_port();
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|p| {
                let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                quote(abs.to_str().expect("utf-8 rule path"))
            })
            .collect();
        let tg: Vec<String> = targets.iter().map(|t| quote(t)).collect();
        let am: Vec<String> = alertmanagers.iter().map(|t| quote(t)).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n  scrape_timeout: 1s\n\
             rule_files: [{}]\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{}]\n\
             scrape_configs:\n  - job_name: streamwatch\n    static_configs:\n      - targets: [{}]\n",
            rules.join(", "),
            am.join(", "),
            tg.join(", ")
        );
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(&dir);
        let mut proc = Proc::spawn("prometheus", &mut cmd, &dir.join("prometheus.log"));
        let ready_url = format!("http://127.0.0.1:{port}/-/ready");
        let ok = wait_until(Duration::from_secs(30), || {
            matches!(http_get(&ready_url), Ok((200, _))) || !proc.is_running()
        });
        if !ok || !proc.is_running() {
            proc.dump_log();
            panic!("prometheus did not become ready on {port}");
        }
        Prometheus { proc, dir, port }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Prometheus process (pid, log, stop).
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }

    /// The temp dir with `prometheus.yml`, `data/` and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The active targets from `/api/v1/targets` as (scrapeUrl, health, lastError).
    pub fn targets(&self) -> Result<Vec<(String, String, String)>, String> {
        let v = http_get_json(&format!("{}/api/v1/targets", self.base_url()))?;
        let active = v["data"]["activeTargets"]
            .as_array()
            .ok_or_else(|| format!("no activeTargets in {v}"))?;
        Ok(active
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
                (s("scrapeUrl"), s("health"), s("lastError"))
            })
            .collect())
    }

    /// Waits until every configured target reports health "up" (false on timeout).
    pub fn wait_targets_up(&self, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.targets()
                .is_ok_and(|t| !t.is_empty() && t.iter().all(|(_, h, _)| h == "up"))
        })
    }

    /// Instant query → (labels object, value) per series (a scalar gives `{}` labels);
    /// errors when the API status is not "success".
    pub fn query(&self, expr: &str) -> Result<Vec<(serde_json::Value, f64)>, String> {
        let url = format!("{}/api/v1/query?query={}", self.base_url(), urlencode(expr));
        let (status, body) = http_get(&url)?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("bad JSON ({e}, {status}): {body}"))?;
        if v["status"] != "success" {
            return Err(format!("query {expr:?}: {status} {body}"));
        }
        let parse = |x: &serde_json::Value| -> f64 {
            x[1].as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN)
        };
        let data = &v["data"];
        match data["resultType"].as_str() {
            Some("vector") => Ok(data["result"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|r| (r["metric"].clone(), parse(&r["value"])))
                        .collect()
                })
                .unwrap_or_default()),
            Some("scalar") => Ok(vec![(serde_json::json!({}), parse(&data["result"]))]),
            other => Err(format!("unsupported resultType {other:?}: {body}")),
        }
    }

    /// The value of a query expected to return exactly one series, if it does.
    pub fn query_one(&self, expr: &str) -> Option<f64> {
        match self.query(expr) {
            Ok(v) if v.len() == 1 => Some(v[0].1),
            _ => None,
        }
    }

    /// Alerts from `/api/v1/alerts` as (alertname, state) pairs.
    pub fn alerts(&self) -> Result<Vec<(String, String)>, String> {
        let v = http_get_json(&format!("{}/api/v1/alerts", self.base_url()))?;
        Ok(v["data"]["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["labels"]["alertname"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            x["state"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Prints the Prometheus log to stderr.
    pub fn dump_log(&self) {
        self.proc.dump_log();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.proc.stop();
        remove_dir_unless_panicking(&self.dir);
    }
}

/// Percent-encodes everything except unreserved characters (RFC 3986).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Pipes `text` into `promtool check metrics`; Ok if it exits 0, else Err(its output).
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn promtool: {e}"))?;
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("write to promtool: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
