//! The Grafana dashboards in `dashboards/`. No Grafana server exists here, so what can be tested
//! for real is tested: the JSON against Grafana's own dashboard model (grafana-foundation-sdk,
//! via `dashboards/check_dashboards.py`), and every query the dashboards run against a real
//! Prometheus scraping a real streamwatch that is reporting an injected defect.

use std::time::{Duration, Instant};

use crate::support::faults::VodHls;
use crate::support::grafana::{
    Query, check_with_grafana_model, dashboard_files, dashboards_dir, label_values_variables, load,
    metric_names, prometheus_datasource_uids, provisioned_datasource_uid, queries, substitute,
    unexported,
};
use crate::support::prom::urlencode;
use crate::support::{
    ClipSpec, Prometheus, Streamwatch, WebhookReceiver, clip, http_get_json, temp_dir,
};
use serde_json::Value;

#[test]
fn dashboards_and_provisioning_match_grafanas_model() {
    let files = dashboard_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["streamwatch-overview.json", "streamwatch-stream.json"],
        "the dashboards this test knows about"
    );
    let (ok, out) = check_with_grafana_model(&files, None);
    assert!(ok, "dashboards do not match Grafana's model:\n{out}");
    println!("{}", out.trim());

    // The same check on broken copies must fail, naming the problem: a misspelt key (which the
    // SDK alone would silently drop), a panel type Grafana does not have, a datasource uid
    // that is not provisioned.
    let dir = temp_dir("dashboards");
    let original = std::fs::read_to_string(&files[0]).unwrap();
    for (from, to, expect) in [
        ("\"gridPos\"", "\"gridpos\"", "gridpos"),
        (
            "\"type\": \"stat\"",
            "\"type\": \"stats\"",
            "unknown panel type",
        ),
        (
            "\"uid\": \"prometheus\"",
            "\"uid\": \"prom\"",
            "provisioned",
        ),
    ] {
        assert!(original.contains(from), "{from} not in the dashboard");
        let broken = dir.join("broken.json");
        std::fs::write(&broken, original.replacen(from, to, 1)).unwrap();
        let (ok, out) = check_with_grafana_model(&[broken], None);
        assert!(!ok && out.contains(expect), "{from} → {to} passed: {out}");
    }

    // The dashboards' datasource uid must be the provisioned one: a provisioning file with
    // another uid makes the real dashboards fail.
    let prov = dir.join("provisioning");
    std::fs::create_dir_all(&prov).unwrap();
    let src = dashboards_dir().join("provisioning");
    std::fs::copy(src.join("dashboards.yml"), prov.join("dashboards.yml")).unwrap();
    let sources = std::fs::read_to_string(src.join("datasources.yml")).unwrap();
    std::fs::write(
        prov.join("datasources.yml"),
        sources.replace("uid: prometheus", "uid: other"),
    )
    .unwrap();
    let (ok, out) = check_with_grafana_model(&files, Some(&prov));
    assert!(!ok && out.contains("provisioned"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn query_extraction_and_metric_names() {
    // The helpers the end-to-end test relies on, on inputs whose answers are known.
    assert_eq!(
        metric_names(
            "histogram_quantile(0.9, sum by (le) (rate(streamwatch_detect_latency_seconds_bucket[1m]))) \
             / my_streamwatch_x + streamwatch_frames_total{stream=\"a\"} - streamwatch_frames_total"
        ),
        [
            "streamwatch_detect_latency_seconds",
            "streamwatch_frames_total"
        ]
    );
    let exposition = "# HELP streamwatch_frames_total x\n# TYPE streamwatch_frames_total counter\n";
    assert_eq!(
        unexported(
            &metric_names("streamwatch_frames_total + streamwatch_blockiness_ratio"),
            exposition
        ),
        ["streamwatch_blockiness_ratio"]
    );
    assert_eq!(
        substitute(
            "rate(x{stream=\"$stream\"}[$__rate_interval]) + increase(y{s=\"${stream}\"}[$__range]) + z[$__interval]",
            &[("stream", "ch1")]
        ),
        "rate(x{stream=\"ch1\"}[1m]) + increase(y{s=\"ch1\"}[1h]) + z[15s]"
    );
    let no_expr = serde_json::json!({"title": "t", "panels": [{"id": 1, "type": "stat",
        "title": "p", "targets": [{"refId": "A", "expr": ""}]}]});
    assert!(queries(&no_expr).is_err());
    let no_targets = serde_json::json!({"title": "t", "panels": [{"id": 1, "type": "row",
        "panels": [{"id": 2, "type": "stat", "title": "p"}]}]});
    assert!(queries(&no_targets).is_err());
}

/// What one dashboard query returned from Prometheus.
struct Answer {
    series: usize,
    finite: usize,
    nonzero: usize,
}

fn ask(prom: &Prometheus, expr: &str) -> Result<Answer, String> {
    let result = prom.query(expr)?;
    Ok(Answer {
        series: result.len(),
        finite: result.iter().filter(|(_, v)| v.is_finite()).count(),
        nonzero: result
            .iter()
            .filter(|(_, v)| v.is_finite() && *v != 0.0)
            .count(),
    })
}

/// Why a dashboard query's answer is not good enough yet, or None when it is: it must parse,
/// return at least one series with a number, and, for queries about defects, see the injected
/// one (a non-zero value) — a query that is 0 or empty during a defect would be useless.
fn shortfall(q: &Query, expr: &str, answer: &Result<Answer, String>) -> Option<String> {
    let problem = match answer {
        Err(e) => format!("error: {e}"),
        Ok(a) if a.series == 0 => "no series".to_string(),
        Ok(a) if a.finite == 0 => "only NaN values".to_string(),
        Ok(a) if expr.contains("streamwatch_defect_") && a.nonzero == 0 => {
            "does not show the active defect (all values 0)".to_string()
        }
        Ok(_) => return None,
    };
    Some(format!("{}\n    {expr}\n    {problem}", q.origin))
}

#[test]
fn every_dashboard_query_returns_data_from_a_real_prometheus() {
    // Played in real time: black from 10 s to 20 s. The defect is reported from 12 s (2 s
    // minimum duration) to ~20.2 s. Prometheus scrapes from ~6-9 s, so the defect counters have
    // samples from before the defect (increase/changes can see it) while it is still active.
    let file = clip(&ClipSpec {
        seconds: 30.0,
        black: vec![(10.0, 20.0)],
        ..Default::default()
    });
    // A webhook receiver, so `streamwatch_webhook_deliveries_total` exists (it is created on the
    // first delivery).
    let hook = WebhookReceiver::start();
    // Served as HLS, so that the manifest checks' series (playlist age, requests) exist too.
    let hls = VodHls::start(&file);
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"channel1\"\nurl = \"{}\"\n\n\
             [[webhooks]]\nname = \"noc\"\nurl = \"{}\"\n",
            hls.url("channel1"),
            hook.url("/hook")
        ),
        &[],
    );
    let started = Instant::now();
    let prom = Prometheus::start(&[&sw.target()], &[]);
    assert!(
        prom.wait_targets_up(Duration::from_secs(20)),
        "Prometheus never scraped streamwatch: {:?}",
        prom.targets()
    );

    let dashboards: Vec<Value> = dashboard_files().iter().map(|f| load(f)).collect();
    let uid = provisioned_datasource_uid();
    let mut all: Vec<Query> = Vec::new();
    let mut vars: Vec<(String, String)> = Vec::new();
    for d in &dashboards {
        all.extend(queries(d).unwrap_or_else(|e| panic!("{e}")));
        for v in label_values_variables(d).unwrap_or_else(|e| panic!("{e}")) {
            // As Grafana does for the variable: the label's values on the metric's series.
            let url = format!(
                "{}/api/v1/label/{}/values?{}={}",
                prom.base_url(),
                v.label,
                urlencode("match[]"),
                urlencode(&v.metric)
            );
            let answer = http_get_json(&url).unwrap_or_else(|e| panic!("{e}"));
            let values: Vec<&str> = answer["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                values,
                ["channel1"],
                "variable {} (label_values({}, {}))",
                v.variable,
                v.metric,
                v.label
            );
            vars.push((v.variable.clone(), values[0].to_string()));
        }
        // Every Prometheus datasource reference names the provisioned datasource.
        let uids = prometheus_datasource_uids(d);
        assert!(
            !uids.is_empty() && uids.iter().all(|u| *u == uid),
            "{}: datasource uids {uids:?}, provisioned {uid}",
            d["title"]
        );
    }
    assert_eq!(
        vars.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["stream"],
        "the per-stream dashboard's variable"
    );
    assert!(all.len() >= 30, "only {} queries found", all.len());
    let var_refs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let exprs: Vec<String> = all.iter().map(|q| substitute(&q.expr, &var_refs)).collect();
    for e in &exprs {
        assert!(!e.contains('$'), "unsubstituted variable in {e}");
    }

    // Every streamwatch_* metric the dashboards name, histogram suffixes stripped.
    let mut names: Vec<String> = all.iter().flat_map(|q| metric_names(&q.expr)).collect();
    for d in &dashboards {
        for v in label_values_variables(d).unwrap() {
            names.extend(metric_names(&v.metric));
        }
    }
    names.sort();
    names.dedup();

    // Poll until every query passes at once (while the defect is active), up to 26 s after
    // start: by then the defect has ended and the queries that need it active fail for good.
    // On failure, the attempt closest to passing is reported (the later ones also list the
    // queries that only failed because the defect had ended).
    let deadline = started + Duration::from_secs(26);
    let mut best: Option<(Vec<String>, Duration)> = None;
    let answers = loop {
        let answers: Vec<Result<Answer, String>> = exprs.iter().map(|e| ask(&prom, e)).collect();
        let problems: Vec<String> = all
            .iter()
            .zip(&exprs)
            .zip(&answers)
            .filter_map(|((q, e), a)| shortfall(q, e, a))
            .collect();
        if problems.is_empty() {
            break answers;
        }
        if best.as_ref().is_none_or(|(b, _)| problems.len() < b.len()) {
            best = Some((problems, started.elapsed()));
        }
        if Instant::now() > deadline {
            sw.dump_log();
            let (problems, at) = best.expect("set above");
            panic!(
                "{} of {} dashboard queries still failed at the best attempt, {at:?} after start:\n{}\n\
                 named in the dashboards but not in /metrics: {:?}",
                problems.len(),
                all.len(),
                problems.join("\n"),
                unexported(&names, &sw.metrics())
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "{} dashboard queries, all with data {:?} after start:",
        all.len(),
        started.elapsed()
    );
    for ((q, e), a) in all.iter().zip(&exprs).zip(&answers) {
        let a = a.as_ref().expect("checked above");
        println!(
            "  {} series ({} non-zero)  {}  ← {}",
            a.series, a.nonzero, e, q.origin
        );
    }

    // A metric the dashboards name but streamwatch does not export would be an empty panel
    // forever: every streamwatch_* name must have a # TYPE line in the live exposition.
    let exposition = sw.metrics();
    let missing = unexported(&names, &exposition);
    assert!(
        missing.is_empty(),
        "dashboards name metrics streamwatch does not export: {missing:?}"
    );
    println!("metrics used by the dashboards, all exported: {names:?}");

    // The same checks do fail for a metric that does not exist (e.g. a future blockiness one).
    let fake = "streamwatch_blockiness_ratio{stream=\"channel1\"}";
    assert!(
        shortfall(&all[0], fake, &ask(&prom, fake)).is_some(),
        "a missing metric returned data"
    );
    assert_eq!(
        unexported(&metric_names(fake), &exposition),
        ["streamwatch_blockiness_ratio"]
    );
    assert!(sw.terminate().success());
}
