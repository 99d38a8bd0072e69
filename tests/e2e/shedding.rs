//! Graceful overload: eight live 720p streams on one core cannot all be decoded in full, so
//! `run` sheds analysis one stream and one tier at a time, lowest priority first, and says so
//! (the tier gauge, an info event, the API), instead of dropping frames of every stream.

use std::time::Duration;

use serde_json::Value;

use crate::support::{ClipSpec, Content, Streamwatch, clip, metric_sum, wait_until};

const LOW: i64 = 0;
const HIGH: i64 = 5;

/// The stream's tier gauge (2 when not yet set: nothing analysed yet, nothing shed).
fn tier_level(text: &str, stream: &str) -> f64 {
    let series = format!("streamwatch_stream_analysis_tier{{stream=\"{stream}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2.0)
}

#[test]
fn one_core_overloaded_sheds_the_lowest_priority_streams_first() {
    // 1080p: eight streams of it are more than one core decodes, so overload lasts until
    // shedding relieves it (at 720p a fast machine was barely overloaded and shed slowly).
    let file = clip(&ClipSpec::new(1920, 1080, 25, 20.0, Content::TestPattern));
    let mut config = String::from("backend = \"cpu\"\n");
    let priority = |i: usize| if i < 4 { LOW } else { HIGH };
    for i in 0..8 {
        config.push_str(&format!(
            "[[streams]]\nid = \"s{i}\"\nurl = \"file://{}\"\npriority = {}\n",
            file.display(),
            priority(i)
        ));
    }
    let sw = Streamwatch::start_wrapped(&config, &[], &[], "taskset -c 0");
    // The clip has no B-frames, so reference decodes all of it: shedding goes on to
    // keyframes.
    let down_to_keyframes = |text: &str| (0..8).any(|i| tier_level(text, &format!("s{i}")) == 0.0);
    let shed_to_keyframes =
        wait_until(Duration::from_secs(90), || down_to_keyframes(&sw.metrics()));
    let text = sw.metrics();
    let levels: Vec<f64> = (0..8)
        .map(|i| tier_level(&text, &format!("s{i}")))
        .collect();
    println!("tiers (2 full, 1 reference, 0 keyframes): {levels:?}");
    if !shed_to_keyframes {
        sw.dump_log();
    }
    assert!(
        shed_to_keyframes,
        "no stream shed to keyframes on one core: {levels:?}"
    );
    // Lowest priority first: a high-priority stream gives up analysis only once every
    // low-priority one is down to keyframes.
    let high_shed = (4..8).any(|i| levels[i] < 2.0);
    let low_exhausted = (0..4).all(|i| levels[i] == 0.0);
    assert!(
        !high_shed || low_exhausted,
        "a high-priority stream shed first: {levels:?}"
    );
    let streams = sw.streams();
    let shed_stream = streams
        .iter()
        .find(|s| s["analysis"] != "full" && !s["analysis"].is_null())
        .unwrap_or_else(|| panic!("no shed stream in the API: {streams:#?}"));
    assert_eq!(shed_stream["analysis_configured"], "full");
    let said = shed_stream["info_events"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e: &Value| e["kind"] == "analysis_tier" && e["detail"] == "full -> reference");
    assert!(said, "no analysis_tier info event: {shed_stream:#}");
    assert!(sw.log().contains("load shedding: analysis tier changed"));
    // A stream in keyframes skips pictures instead of decoding them.
    let skipped = metric_sum(&text, "streamwatch_frames_skipped_total", &[]);
    assert!(skipped > 0.0, "nothing skipped");
}
