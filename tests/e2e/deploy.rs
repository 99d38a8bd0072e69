//! The deployment files under deploy/ checked with the real validators: `systemd-analyze`,
//! hadolint, cfn-lint, `promtool check config`, kubernetes-validate and botocore's ECS model.
//! The Python tools live in target/pytools (installed by `make test-deps`); a missing tool fails
//! the test rather than skipping it. Each check also runs on a deliberately broken copy, to show
//! that the validator really rejects what it is meant to.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::proc::run_with_timeout;
use crate::support::temp_dir;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// A tool from the test venv (target/pytools/bin), or a clear failure saying how to get it.
fn pytool(name: &str) -> PathBuf {
    let p = repo("target/pytools/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run `make test-deps` (it installs the Python test tools into target/pytools)",
        p.display()
    );
    p
}

/// Runs a command for at most 2 minutes: (success, stdout, stderr).
fn run(cmd: &mut Command) -> (bool, String, String) {
    let what = format!("{cmd:?}");
    run_with_timeout(cmd, Duration::from_secs(120)).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Writes `text` to a temp file named `name` and returns its path (dir kept until the test ends).
fn temp_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// Replaces `from` (which must occur) in `text`: broken copies must really differ.
fn mutate(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "`{from}` not found: update the mutation"
    );
    text.replace(from, to)
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = read("deploy/systemd/streamwatch.service");
    for directive in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RestartForceExitStatus=SIGHUP",
    ] {
        assert!(unit.contains(directive), "unit lacks {directive}");
    }
    // verify checks that ExecStart's binary exists: point it at the one cargo built.
    let unit = mutate(
        &unit,
        "/usr/local/bin/streamwatch",
        env!("CARGO_BIN_EXE_streamwatch"),
    );
    let dir = temp_dir("systemd");
    let verify = |text: &str| {
        let path = temp_file(&dir, "streamwatch.service", text);
        run(Command::new("systemd-analyze").arg("verify").arg(&path))
    };
    let (ok, out, err) = verify(&unit);
    // verify exits 0 on unknown keys and bad values but names them on stderr.
    assert!(
        ok && err.trim().is_empty(),
        "systemd-analyze verify: {out}{err}"
    );

    let (ok, _, err) = verify(&mutate(&unit, "NoNewPrivileges=", "NoNewPrivilege="));
    assert!(
        !ok || err.contains("Unknown key"),
        "a misspelt key went unnoticed"
    );

    let path = temp_file(&dir, "streamwatch.service", &unit);
    let (ok, out, err) = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&path));
    assert!(ok, "systemd-analyze security: {err}");
    let exposure: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for streamwatch.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {out}"));
    println!("systemd-analyze security: exposure {exposure} (0 = locked down, 10 = exposed)");
    assert!(exposure <= 2.0, "exposure {exposure} is above 2.0 (\"OK\")");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dockerfile_passes_hadolint_and_copies_only_what_the_context_holds() {
    let hadolint = pytool("hadolint");
    let dockerfile = repo("deploy/docker/Dockerfile");
    let (ok, out, err) = run(Command::new(&hadolint).arg(&dockerfile));
    assert!(ok, "hadolint deploy/docker/Dockerfile:\n{out}{err}");

    let text = read("deploy/docker/Dockerfile");
    let dir = temp_dir("hadolint");
    let bad = temp_file(
        &dir,
        "Dockerfile",
        &mutate(&text, "--no-install-recommends", ""),
    );
    let (ok, out, _) = run(Command::new(&hadolint).arg(&bad));
    assert!(
        !ok && out.contains("DL3015"),
        "hadolint missed DL3015: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "expected a build and a runtime stage");
    assert!(text.contains("NVIDIA_DRIVER_CAPABILITIES=compute,video,graphics,utility"));
    let icd: serde_json::Value =
        serde_json::from_str(&read("deploy/docker/nvidia_icd.json")).expect("ICD is JSON");
    assert_eq!(icd["ICD"]["library_path"], "libGLX_nvidia.so.0");

    // Every COPY from the build context must exist and not be excluded by .dockerignore
    // (which lists only the inclusions, after `*`).
    let ignore = read(".dockerignore");
    let included: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.strip_prefix('!'))
        .map(|l| l.trim_end_matches('/'))
        .collect();
    for line in text
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(repo(src).exists(), "{line}: {src} does not exist");
            assert!(
                included.contains(src),
                "{line}: {src} is excluded by .dockerignore"
            );
        }
    }
}

#[test]
fn cloudformation_template_passes_cfn_lint() {
    let cfn_lint = pytool("cfn-lint");
    let path = repo("deploy/ec2/streamwatch.yaml");
    let (ok, out, err) = run(Command::new(&cfn_lint).arg(&path));
    assert!(ok, "cfn-lint deploy/ec2/streamwatch.yaml:\n{out}{err}");

    // The per-shard groups come from Fn::ForEach: show that cfn-lint looks inside it.
    let text = read("deploy/ec2/streamwatch.yaml");
    let dir = temp_dir("cfn");
    let bad = temp_file(
        &dir,
        "bad.yaml",
        &mutate(&text, "VPCZoneIdentifier", "VpcZoneIdentifier"),
    );
    let (ok, out, _) = run(Command::new(&cfn_lint).arg(&bad));
    assert!(
        !ok && out.contains("VpcZoneIdentifier"),
        "cfn-lint missed a bad property: {out}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The metrics port is open to the Prometheus security group and nothing else.
    assert_eq!(text.matches("SourceSecurityGroupId").count(), 1);
    assert!(!text.contains("CidrIp: 0.0.0.0/0\n          FromPort"));
    assert!(text.contains("Default: g6.xlarge"));
}

#[test]
fn prometheus_ec2_sd_config_passes_promtool() {
    let (ok, out, err) = run(Command::new("promtool")
        .args(["check", "config", "ec2_sd.yml"])
        .current_dir(repo("deploy/prometheus")));
    assert!(ok, "promtool check config ec2_sd.yml:\n{out}{err}");
    assert!(read("deploy/prometheus/ec2_sd.yml").contains("ec2_sd_configs"));
}

#[test]
fn kubernetes_manifests_validate_and_carry_a_valid_config() {
    let validate = pytool("kubernetes-validate");
    let path = repo("deploy/k8s/streamwatch.yaml");
    let (ok, out, err) = run(Command::new(&validate).arg("--strict").arg(&path));
    assert!(ok, "kubernetes-validate --strict:\n{out}{err}");
    for kind in ["configmap", "service", "statefulset"] {
        assert!(
            err.contains(&format!("passed for resource {kind}/streamwatch"))
                || out.contains(&format!("passed for resource {kind}/streamwatch")),
            "{kind} was not validated: {out}{err}"
        );
    }

    let text = read("deploy/k8s/streamwatch.yaml");
    let dir = temp_dir("k8s");
    let bad = temp_file(
        &dir,
        "bad.yaml",
        &mutate(&text, "periodSeconds: 5", "periodSeconds: five"),
    );
    let (ok, _, _) = run(Command::new(&validate).arg("--strict").arg(&bad));
    assert!(!ok, "kubernetes-validate accepted a string periodSeconds");

    // The ConfigMap's stream list is a config streamwatch accepts.
    let toml: String = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("streamwatch.toml: |"))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.get(4..).unwrap_or_default()))
        .collect();
    assert!(toml.contains("[[streams]]"), "no stream list found: {toml}");
    let cfg = temp_file(&dir, "streamwatch.toml", &toml);
    let (ok, out, err) = run(Command::new(env!("CARGO_BIN_EXE_streamwatch"))
        .arg("check-config")
        .arg(&cfg));
    assert!(ok, "the ConfigMap's streamwatch.toml: {out}{err}");
    let _ = std::fs::remove_dir_all(&dir);

    for needle in [
        "nvidia.com/gpu: 1",
        "--shard-from-hostname",
        "path: /healthz",
        "path: /readyz",
        "clusterIP: None",
        "prometheus.io/scrape: \"true\"",
    ] {
        assert!(text.contains(needle), "StatefulSet lacks {needle}");
    }
}

#[test]
fn ecs_task_definition_matches_the_register_task_definition_model() {
    let python = pytool("python");
    let script = repo("deploy/ecs/validate.py");
    let path = repo("deploy/ecs/task-definition.json");
    let (ok, out, err) = run(Command::new(&python).arg(&script).arg(&path));
    assert!(ok, "ECS task definition:\n{out}{err}");

    let text = read("deploy/ecs/task-definition.json");
    let dir = temp_dir("ecs");
    let bad = temp_file(
        &dir,
        "bad.json",
        &mutate(&text, "\"essential\": true", "\"essential\": \"yes\""),
    );
    let (ok, _, err) = run(Command::new(&python).arg(&script).arg(&bad));
    assert!(
        !ok && err.contains("essential"),
        "a bad type went unnoticed"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let v: serde_json::Value = serde_json::from_str(&text).expect("task definition is JSON");
    let c = &v["containerDefinitions"][0];
    assert_eq!(c["resourceRequirements"][0]["type"], "GPU");
    assert!(
        c["command"][0]
            .as_str()
            .unwrap_or_default()
            .contains("--shard 0/3")
    );
}
