//! The Grafana dashboards in `dashboards/`, read the way Grafana reads them: every PromQL query
//! they run (panel targets, Prometheus annotations, query variables), with Grafana's built-in
//! interval variables replaced by fixed windows so the queries can be sent to a real Prometheus.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::proc::run_with_timeout;

/// `dashboards/` in the repository.
pub fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Every `*.json` dashboard in `dashboards/`, sorted (so a new dashboard is checked too).
pub fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dashboards_dir())
        .expect("read dashboards/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Parses a dashboard file; panics with the file name on bad JSON.
pub fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One PromQL query of a dashboard and where it comes from (for failure messages).
#[derive(Debug, Clone)]
pub struct Query {
    pub origin: String,
    pub expr: String,
}

/// A query variable: `label_values(METRIC, LABEL)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelValues {
    pub variable: String,
    pub metric: String,
    pub label: String,
}

/// Every PromQL expression a dashboard runs: panel targets (rows' nested panels included) and
/// annotations on a Prometheus datasource. A target without an `expr` is an error, since Grafana
/// would show an empty panel.
pub fn queries(dashboard: &Value) -> Result<Vec<Query>, String> {
    let title = dashboard["title"].as_str().unwrap_or("?");
    let mut out = Vec::new();
    // In dashboard order; a collapsed row keeps its panels inside it.
    let mut panels: VecDeque<&Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = panels.pop_front() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        if panel["type"] == "row" {
            continue;
        }
        let name = format!(
            "{title} / panel {} {:?}",
            panel["id"],
            panel["title"].as_str().unwrap_or_default()
        );
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let Some(targets) = targets else {
            return Err(format!("{name}: no targets"));
        };
        for t in targets {
            let origin = format!("{name} / {}", t["refId"].as_str().unwrap_or("?"));
            match t["expr"].as_str() {
                Some(e) if !e.trim().is_empty() => out.push(Query {
                    origin,
                    expr: e.to_string(),
                }),
                _ => return Err(format!("{origin}: target without expr")),
            }
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if a["datasource"]["type"] != "prometheus" {
            continue;
        }
        let origin = format!(
            "{title} / annotation {:?}",
            a["name"].as_str().unwrap_or_default()
        );
        match a["expr"].as_str() {
            Some(e) if !e.trim().is_empty() => out.push(Query {
                origin,
                expr: e.to_string(),
            }),
            _ => return Err(format!("{origin}: annotation without expr")),
        }
    }
    Ok(out)
}

/// The dashboard's query variables, which must all be `label_values(METRIC, LABEL)` (the form
/// the test can turn into a Prometheus label-values request).
pub fn label_values_variables(dashboard: &Value) -> Result<Vec<LabelValues>, String> {
    let mut out = Vec::new();
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if v["type"] != "query" {
            continue;
        }
        let name = v["name"].as_str().unwrap_or_default().to_string();
        // Grafana stores the query as a string (older) or as {"query": ...} (newer editors).
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .unwrap_or_default();
        let inner = q
            .trim()
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("variable {name}: not label_values(METRIC, LABEL): {q:?}"))?;
        let (metric, label) = inner
            .split_once(',')
            .ok_or_else(|| format!("variable {name}: label_values needs a metric: {q:?}"))?;
        out.push(LabelValues {
            variable: name,
            metric: metric.trim().to_string(),
            label: label.trim().to_string(),
        });
    }
    Ok(out)
}

/// Replaces `$var`/`${var}` from `vars`, then Grafana's interval variables with fixed windows:
/// `$__rate_interval` 1m, `$__interval` 15s and `$__range` 1h (longer than the test has run, so
/// `increase` over it sees the whole history, like a dashboard range that includes the defect).
pub fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut e = expr.to_string();
    let builtins = [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
    ];
    // Longest names first, so `$__interval` does not eat the start of `$__interval_ms`-like names.
    let mut all: Vec<(&str, &str)> = vars.iter().copied().chain(builtins).collect();
    all.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
    for (name, value) in all {
        e = e.replace(&format!("${{{name}}}"), value);
        e = e.replace(&format!("${name}"), value);
    }
    e
}

/// `streamwatch_*` metric names an expression uses, with the histogram series suffixes
/// (`_bucket`, `_sum`, `_count`) stripped, so they can be compared with `# TYPE` lines.
pub fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("streamwatch_") {
        // Part of a longer identifier (e.g. `my_streamwatch_x`) is not a streamwatch metric.
        let preceded = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if !preceded {
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            if !names.iter().any(|n| n == base) {
                names.push(base.to_string());
            }
        }
        rest = &tail[end..];
    }
    names
}

/// Names (from [`metric_names`]) that have no `# TYPE NAME ` line in a Prometheus exposition.
pub fn unexported(names: &[String], exposition: &str) -> Vec<String> {
    names
        .iter()
        .filter(|n| !exposition.contains(&format!("# TYPE {n} ")))
        .cloned()
        .collect()
}

/// The virtual environment `make test-deps` creates with grafana-foundation-sdk and PyYAML.
pub fn pytools_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin/python")
}

/// Runs `dashboards/check_dashboards.py FILES [--provisioning DIR]` in the pytools venv:
/// (passed, stdout + stderr). Panics with a hint when the venv is missing.
pub fn check_with_grafana_model(files: &[PathBuf], provisioning: Option<&Path>) -> (bool, String) {
    let python = pytools_python();
    assert!(
        python.exists(),
        "{} is missing: run `make test-deps` (it installs grafana-foundation-sdk there)",
        python.display()
    );
    let mut cmd = Command::new(python);
    cmd.arg(dashboards_dir().join("check_dashboards.py"))
        .args(files);
    if let Some(dir) = provisioning {
        cmd.arg("--provisioning").arg(dir);
    }
    let (ok, stdout, stderr) =
        run_with_timeout(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    (ok, format!("{stdout}{stderr}"))
}

/// The uid of every Prometheus datasource reference anywhere in a dashboard (panels, targets,
/// annotations, variables), so a stray reference to another datasource is found too.
pub fn prometheus_datasource_uids(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "datasource" && value["type"] == "prometheus" {
                    out.push(value["uid"].as_str().unwrap_or_default().to_string());
                }
                out.extend(prometheus_datasource_uids(value));
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| out.extend(prometheus_datasource_uids(i))),
        _ => {}
    }
    out
}

/// The uid of the Prometheus datasource in `dashboards/provisioning/datasources.yml`.
pub fn provisioned_datasource_uid() -> String {
    let path = dashboards_dir().join("provisioning/datasources.yml");
    let text = std::fs::read_to_string(&path).expect("read datasources.yml");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("uid:"))
        .map(|u| u.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no uid in {}", path.display()))
}
