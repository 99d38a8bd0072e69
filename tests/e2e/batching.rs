//! Frames of all streams share GPU submissions: with 8 live streams the number of batches is far
//! below the number of frames.

use std::time::Duration;

use crate::support::{ClipSpec, Streamwatch, clip, metric_sum, wait_until};

#[test]
fn eight_streams_share_batches() {
    let file = clip(&ClipSpec {
        seconds: 60.0,
        ..Default::default()
    });
    let mut config = String::new();
    for i in 0..8 {
        config.push_str(&format!(
            "[[streams]]\nid = \"s{i}\"\nurl = \"file://{}\"\n",
            file.display()
        ));
    }
    let sw = Streamwatch::start(&config, &["--backend", "gpu"]);
    let all_up = wait_until(Duration::from_secs(30), || {
        sw.streams()
            .iter()
            .all(|s| s["state"] == "up" && s["frames"].as_u64() > Some(50))
    });
    assert!(all_up, "not all streams came up: {:#?}", sw.streams());
    std::thread::sleep(Duration::from_secs(3));
    let text = sw.metrics();
    let frames = metric_sum(&text, "streamwatch_frames_total", &[]);
    let batches = metric_sum(&text, "streamwatch_gpu_batches_total", &[]);
    let batch_frames = metric_sum(&text, "streamwatch_gpu_batch_frames_sum", &[]);
    let batch_count = metric_sum(&text, "streamwatch_gpu_batch_frames_count", &[]);
    println!(
        "{frames} frames in {batches} GPU batches ({:.1} frames per batch)",
        frames / batches
    );
    assert!(frames >= 8.0 * 100.0, "{frames} frames");
    assert!(
        batches * 3.0 <= frames,
        "{batches} batches for {frames} frames: not batched"
    );
    assert!(
        batch_frames / batch_count >= 3.0,
        "mean batch {}",
        batch_frames / batch_count
    );
    let status = sw.terminate();
    assert!(status.success(), "exit status {status}");
}
