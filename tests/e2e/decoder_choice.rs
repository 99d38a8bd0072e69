//! The `decoder` setting: "software" and "auto" decode with libav on a machine without NVDEC
//! (auto falls back), "nvdec" fails with an error naming the stream, and the decoder each
//! stream uses is the `decoder` label of `streamwatch_stream_info`.

use std::time::Duration;

use crate::support::{ClipSpec, Streamwatch, clip, run_cli, temp_dir};
use streamwatch::config::{Config, DecoderChoice};

const CLI_TIMEOUT: Duration = Duration::from_secs(120);

fn short_clip() -> String {
    clip(&ClipSpec {
        seconds: 3.0,
        audio: false,
        ..ClipSpec::default()
    })
    .to_string_lossy()
    .into_owned()
}

/// `scan` with `[ingest] decoder = CHOICE`: (exit code, stdout, stderr).
fn scan_with(choice: &str) -> (i32, String, String) {
    let dir = temp_dir("decoder-choice");
    let config = dir.join("c.toml");
    std::fs::write(&config, format!("[ingest]\ndecoder = \"{choice}\"\n")).unwrap();
    let source = short_clip();
    let out = run_cli(
        &[
            "scan",
            &source,
            "--backend",
            "cpu",
            "--format",
            "json",
            "--config",
        ]
        .into_iter()
        .chain([config.to_str().unwrap()])
        .collect::<Vec<_>>(),
        CLI_TIMEOUT,
    );
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn software_and_auto_decode_without_nvdec() {
    for choice in ["software", "auto"] {
        let (code, stdout, stderr) = scan_with(choice);
        assert_eq!(code, 0, "{choice}: {stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert!(report["frames"].as_u64().unwrap() > 0, "{choice}: {report}");
    }
}

#[test]
fn nvdec_without_the_nvcodec_decoders_is_a_clear_error() {
    if !streamwatch::ingest::decoder::available_nvdec().is_empty() {
        eprintln!("this machine has NVDEC: nothing to check");
        return;
    }
    let (code, _, stderr) = scan_with("nvdec");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("decoder = \"nvdec\""), "{stderr}");
    assert!(stderr.contains("nvh264dec"), "{stderr}");
    // The stream is named (scan names it after the file).
    assert!(stderr.contains("stream `"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn per_stream_choice_overrides_the_default_and_bad_words_are_rejected() {
    let config = Config::parse(
        r#"
        [ingest]
        decoder = "software"
        [[streams]]
        id = "a"
        url = "file:///a.mp4"
        [[streams]]
        id = "b"
        url = "file:///b.mp4"
        decoder = "nvdec"
        "#,
        "test",
    )
    .unwrap();
    assert_eq!(config.streams[0].decoder, DecoderChoice::Software);
    assert_eq!(config.streams[1].decoder, DecoderChoice::Nvdec);
    assert_eq!(Config::default().ingest.decoder, DecoderChoice::Auto);
    let err = Config::parse(
        "[[streams]]\nid = \"a\"\nurl = \"file:///a.mp4\"\ndecoder = \"cuda\"\n",
        "test",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cuda") && err.contains("nvdec"), "{err}");
}

#[test]
fn stream_info_names_the_decoder_and_a_missing_nvdec_downs_only_its_stream() {
    let source = short_clip();
    let nvdec_absent = streamwatch::ingest::decoder::available_nvdec().is_empty();
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"soft\"\nurl = \"file://{source}\"\ndecoder = \"software\"\n\
             [[streams]]\nid = \"hard\"\nurl = \"file://{source}\"\ndecoder = \"nvdec\"\n"
        ),
        &["--backend", "cpu"],
    );
    let mut metrics = String::new();
    let seen = crate::support::wait_until(Duration::from_secs(30), || {
        metrics = sw.metrics();
        // streamwatch's copy-free libav element, where it is built in.
        let software = if cfg!(feature = "libav-decoder") {
            "decoder=\"swavdec\""
        } else {
            "decoder=\"avdec_h264\""
        };
        let labels = [software, "stream=\"soft\""];
        crate::support::metric_sum(&metrics, "streamwatch_stream_info", &labels) == 1.0
    });
    if !seen {
        sw.dump_log();
    }
    assert!(seen, "{metrics}");
    if nvdec_absent {
        let hard = sw.wait_stream("hard", Duration::from_secs(30), "nvdec error", |s| {
            s["reason"]
                .as_str()
                .is_some_and(|r| r.contains("stream `hard`") && r.contains("nvdec"))
        });
        assert_ne!(hard["state"], "up", "{hard}");
    }
}

/// Prerolls a `uridecodebin` restricted to `choice` on the clip, every pad into a fakesink:
/// Ok once prerolled, Err with the bus error otherwise.
fn preroll_restricted(choice: DecoderChoice) -> Result<(), String> {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let uri = format!("file://{}", short_clip());
    let pipeline = gst::Pipeline::new();
    let decode = gst::ElementFactory::make("uridecodebin")
        .property("uri", &uri)
        .build()
        .unwrap();
    assert!(streamwatch::ingest::decoder::restrict(&decode, choice));
    pipeline.add(&decode).unwrap();
    let weak = pipeline.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = weak.upgrade() else {
            return;
        };
        let sink = gst::ElementFactory::make("fakesink").build().unwrap();
        pipeline.add(&sink).unwrap();
        pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        sink.sync_state_with_parent().unwrap();
    });
    let _ = pipeline.set_state(gst::State::Paused);
    let bus = pipeline.bus().unwrap();
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Error, gst::MessageType::AsyncDone],
    ) {
        Some(msg) => match msg.view() {
            gst::MessageView::Error(e) => Err(e.error().to_string()),
            _ => Ok(()),
        },
        None => Err("no preroll within 30 s".into()),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// The skip path of `autoplug-select` works: with only NVDEC allowed and no NVDEC here, the
/// H.264 clip finds no decoder; with software allowed it prerolls.
#[test]
fn a_restricted_uri_decoder_skips_the_excluded_decoders() {
    assert_eq!(preroll_restricted(DecoderChoice::Software), Ok(()));
    if streamwatch::ingest::decoder::available_nvdec().is_empty() {
        let err = preroll_restricted(DecoderChoice::Nvdec).unwrap_err();
        assert!(!err.is_empty());
    }
}
