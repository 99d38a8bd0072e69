//! Evidence thumbnails and the status page: the frame that triggered a defect is kept and
//! served, each stream's latest picture is served, and the page in a real headless Chromium
//! shows the stream's active defect.

use std::process::Command;
use std::time::Duration;

use crate::support::{ClipSpec, Streamwatch, clip, events_of, http_get, temp_dir};

/// The body of a 200 answer (binary: the text helpers expect UTF-8).
fn fetch_bytes(url: &str) -> Option<Vec<u8>> {
    let mut response = ureq::get(url).call().ok()?;
    response.body_mut().read_to_vec().ok()
}

/// Mean of a JPEG served by streamwatch (grey thumbnails: one channel).
fn jpeg_mean(url: &str) -> f64 {
    let bytes = fetch_bytes(url).unwrap_or_else(|| panic!("GET {url} failed"));
    let img =
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{url} is not an image: {e}"));
    let grey = img.to_luma8();
    assert!(
        grey.width() >= 100,
        "thumbnail too small: {}x{}",
        grey.width(),
        grey.height()
    );
    grey.pixels().map(|p| f64::from(p.0[0])).sum::<f64>() / f64::from(grey.width() * grey.height())
}

/// Headless Chromium with `args` (shared with `security.rs`): its stdout.
pub(crate) fn chromium(args: &[&str]) -> String {
    let profile = temp_dir("chromium-profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("run chromium (Debian package `chromium`)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn defect_evidence_thumbnails_and_the_status_page() {
    // Played in real time: black from 4 s to 14 s.
    let file = clip(&ClipSpec {
        width: 640,
        height: 360,
        seconds: 30.0,
        black: vec![(4.0, 14.0)],
        ..Default::default()
    });
    let evidence_dir = temp_dir("evidence");
    let sw = Streamwatch::start(
        &format!(
            "[evidence]\ndir = \"{}\"\n[[streams]]\nid = \"channel1\"\nurl = \"file://{}\"\n",
            evidence_dir.display(),
            file.display()
        ),
        &[],
    );
    sw.wait_stream("channel1", Duration::from_secs(20), "up", |s| {
        s["state"] == "up"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let before = jpeg_mean(&sw.url("/api/streams/channel1/thumbnail"));
    assert!(
        before > 60.0,
        "the test pattern's thumbnail is dark: mean {before}"
    );

    let s = sw.wait_stream(
        "channel1",
        Duration::from_secs(20),
        "an active black defect with its evidence",
        |s| {
            // The link is advertised once the thumbnail, encoded off the detection path, is
            // on disk.
            s["active_defects"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e["detector"] == "black" && e["evidence"].is_string())
            })
        },
    );
    let event = events_of(&s, "black")[0].clone();
    let evidence = event["evidence"]
        .as_str()
        .expect("evidence link")
        .to_owned();
    let id = event["id"].as_str().expect("event id").to_owned();
    assert_eq!(evidence, format!("/api/events/{id}/evidence"));
    // The thumbnail is encoded off the detection path: give the encoder a moment.
    let served = crate::support::wait_until(Duration::from_secs(5), || {
        fetch_bytes(&sw.url(&evidence)).is_some()
    });
    assert!(served, "evidence {evidence} was never served");
    let evidence_mean = jpeg_mean(&sw.url(&evidence));
    assert!(
        evidence_mean < 25.0,
        "the evidence of a black defect is not black: mean {evidence_mean}"
    );
    assert!(
        evidence_dir.join(format!("{id}.jpg")).is_file(),
        "evidence not on disk"
    );
    let (code, body) = http_get(&sw.url(&format!("/api/events/{id}"))).expect("event");
    assert_eq!(code, 200, "{body}");
    assert!(fetch_bytes(&sw.url("/api/events/nope/evidence")).is_none());

    assert_status_page_shows_the_defect(&sw);
    assert!(sw.terminate().success());
}

/// `moto_server` (an S3 API on loopback), from the test tools venv `make test` sets up.
fn moto_server() -> std::path::PathBuf {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin/moto_server");
    assert!(
        path.is_file(),
        "{} missing: run `make test-deps`",
        path.display()
    );
    path
}

#[test]
fn defect_evidence_is_uploaded_to_s3_compatible_storage() {
    let dir = temp_dir("moto");
    let port = crate::support::free_port();
    let mut cmd = Command::new(moto_server());
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let _moto = crate::support::Proc::spawn("moto_server", &mut cmd, &dir.join("moto.log"));
    let endpoint = format!("http://127.0.0.1:{port}");
    assert!(
        crate::support::wait_until(Duration::from_secs(30), || {
            crate::support::proc::tcp_accepts(port)
        }),
        "moto_server did not start"
    );
    ureq::put(&format!("{endpoint}/evidence-bucket"))
        .send_empty()
        .expect("create bucket");

    let file = clip(&ClipSpec {
        seconds: 30.0,
        black: vec![(3.0, 10.0)],
        ..Default::default()
    });
    let sw = Streamwatch::start(
        &format!(
            r#"
[evidence]
dir = "{dir}"
[evidence.s3]
bucket = "evidence-bucket"
prefix = "streamwatch/"
endpoint = "{endpoint}"
allow_http = true
access_key_id = "testing"
secret_access_key = "testing"

[[streams]]
id = "channel1"
url = "file://{file}"
"#,
            dir = dir.join("evidence").display(),
            file = file.display()
        ),
        &[],
    );
    let s = sw.wait_stream("channel1", Duration::from_secs(20), "a black defect", |s| {
        !events_of(s, "black").is_empty()
    });
    let id = events_of(&s, "black")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let key = format!("streamwatch/{id}.jpg");
    let listing = format!("{endpoint}/evidence-bucket?list-type=2&prefix=streamwatch/");
    let mut last = String::new();
    let uploaded = crate::support::wait_until(Duration::from_secs(15), || {
        last = http_get(&listing).map(|(_, b)| b).unwrap_or_default();
        last.contains(&key)
    });
    assert!(uploaded, "{key} not in the bucket: {last}");
    // The listing gives the stored object's size: a real thumbnail, not an empty object.
    let size: u64 = last[last.find(&key).expect("key")..]
        .split("<Size>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(size > 500, "uploaded object is {size} bytes: {last}");
    assert!(
        crate::support::metric_sum(
            &sw.metrics(),
            "streamwatch_evidence_uploads_total",
            &["result=\"ok\""]
        ) >= 1.0
    );
    assert!(sw.terminate().success());
}

/// The status page, rendered by a real browser while the defect is active.
fn assert_status_page_shows_the_defect(sw: &Streamwatch) {
    let (code, html) = http_get(&sw.url("/")).expect("status page");
    assert_eq!(code, 200);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "page pulls external resources"
    );
    let dom = chromium(&["--virtual-time-budget=5000", "--dump-dom", &sw.url("/")]);
    let tile = dom
        .split("<div class=\"tile")
        .find(|t| t.contains("data-stream=\"channel1\""))
        .unwrap_or_else(|| panic!("no tile for channel1 in the rendered page:\n{dom}"));
    assert!(
        tile.contains("data-defects=\"black\""),
        "tile does not show the defect: {tile}"
    );
    assert!(
        tile.starts_with(" up defect\"") || tile.contains("defect\""),
        "tile not highlighted: {tile}"
    );
    assert!(dom.contains("1 with active defects"), "summary: {dom}");
    let shots = temp_dir("status-page");
    let shot = shots.join("status.png");
    chromium(&[
        "--virtual-time-budget=5000",
        &format!("--screenshot={}", shot.display()),
        "--window-size=1280,720",
        &sw.url("/"),
    ]);
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    println!("status page screenshot: {}", shot.display());
}
