//! Inputs as operators run them: multi-program MPEG-TS (`program = N`, `scan --program N`, the
//! programs listed in `/api/streams`), audio-only and video-only streams, and the stream format
//! (codecs, picture, audio layout) in `/api/streams` and `streamwatch_stream_info`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::proc::ffmpeg;
use crate::support::{Streamwatch, events_of, metric_sum, run_cli, scan_json, temp_dir};

/// Two programs, News (1) and Sport (2), each H.264 + AAC, 8 s; Sport is black from 3 to 6 s.
fn two_program_ts(dir: &Path) -> PathBuf {
    let out = dir.join("two-programs.ts");
    let picture = "testsrc2=size=320x180:rate=25:d=8";
    let black = format!("{picture},drawbox=c=black:t=fill:enable='between(t,3,6)'");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        picture,
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=8",
        "-f",
        "lavfi",
        "-i",
        &black,
        "-f",
        "lavfi",
        "-i",
        "sine=f=660:d=8",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-map",
        "3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "25",
        "-c:a",
        "aac",
        "-program",
        "title=News:program_num=1:st=0:st=1",
        "-program",
        "title=Sport:program_num=2:st=2:st=3",
        "-f",
        "mpegts",
        out.to_str().unwrap(),
    ]);
    out
}

/// A tone with silence from 5 to 9 s, `seconds` long, encoded with `codec` into `name`.
fn radio(dir: &Path, name: &str, codec: &str, seconds: u32) -> PathBuf {
    let out = dir.join(name);
    let tone = format!("aevalsrc='0.3*sin(2*PI*440*t)*(1-between(t,5,9))':s=48000:d={seconds}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &tone,
        "-c:a",
        codec,
        out.to_str().unwrap(),
    ]);
    out
}

fn program_numbers(stream: &Value) -> Vec<(u64, String)> {
    stream["programs"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| {
                    let name = p["service_name"].as_str().unwrap_or("").to_owned();
                    (p["number"].as_u64().unwrap_or(0), name)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn black_spans(report: &Value) -> Vec<(f64, f64)> {
    report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detector"] == "black")
        .map(|e| {
            (
                e["start"].as_f64().unwrap_or(-1.0),
                e["end"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[test]
fn scan_analyses_the_program_asked_for_and_by_default_the_first_with_video() {
    let dir = temp_dir("programs-scan");
    let ts = two_program_ts(&dir);
    let ts = ts.to_str().unwrap();
    let default = scan_json(ts, &["--backend", "cpu"]);
    assert!(
        black_spans(&default).is_empty(),
        "program 1 has no black: {default:#}"
    );
    let sport = scan_json(ts, &["--backend", "cpu", "--program", "2"]);
    let black = black_spans(&sport);
    assert_eq!(black.len(), 1, "{sport:#}");
    assert!(
        (black[0].0 - 3.0).abs() <= 0.25 && (black[0].1 - 6.0).abs() <= 0.25,
        "{black:?}"
    );
    let (code, _, stderr) = run_cli(
        &["scan", ts, "--backend", "cpu", "--program", "3"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("program 3 not in the transport stream; programs present: 1, 2"),
        "{stderr}"
    );
}

#[test]
fn run_lists_the_programs_follows_the_configured_one_and_downs_a_missing_one() {
    let dir = temp_dir("programs-run");
    let ts = two_program_ts(&dir);
    let url = format!("file://{}", ts.display());
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"sport\"\nurl = \"{url}\"\nprogram = 2\n\
             [[streams]]\nid = \"first\"\nurl = \"{url}\"\n\
             [[streams]]\nid = \"gone\"\nurl = \"{url}\"\nprogram = 3\n"
        ),
        &["--backend", "cpu"],
    );
    let timeout = Duration::from_secs(20);
    let sport = sw.wait_stream("sport", timeout, "black in program 2", |s| {
        !events_of(s, "black").is_empty()
    });
    let listed = vec![(1, "News".to_owned()), (2, "Sport".to_owned())];
    assert_eq!(program_numbers(&sport), listed, "{sport:#}");
    assert_eq!(sport["program"], 2);
    let streams: Vec<u64> = sport["programs"][1]["streams"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s["pid"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(streams.len(), 2, "video and audio PIDs: {sport:#}");
    assert_eq!(sport["programs"][1]["streams"][0]["codec"], "h264");
    let first = sw.stream("first");
    assert_eq!(first["program"], 1, "{first:#}");
    assert!(events_of(&first, "black").is_empty(), "{first:#}");
    assert!(first["frames"].as_u64().unwrap_or(0) > 100, "{first:#}");
    let gone = sw.wait_stream("gone", timeout, "down", |s| s["state"] == "down");
    let reason = gone["reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("program 3 not in the transport stream; programs present: 1, 2"),
        "{gone:#}"
    );
    sw.terminate();
}

#[test]
fn audio_only_and_video_only_streams_run_without_the_other_medium() {
    let dir = temp_dir("audio-only");
    let aac_ts = dir.join("radio.ts");
    let tone = "aevalsrc='0.3*sin(2*PI*440*t)*(1-between(t,5,9))':s=48000:d=25";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        tone,
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        aac_ts.to_str().unwrap(),
    ]);
    let picture = dir.join("picture.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25:d=25",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-f",
        "mpegts",
        picture.to_str().unwrap(),
    ]);
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"radio\"\nurl = \"file://{}\"\n\
             [[streams]]\nid = \"picture\"\nurl = \"file://{}\"\n",
            aac_ts.display(),
            picture.display()
        ),
        &["--backend", "cpu"],
    );
    let radio = sw.wait_stream("radio", Duration::from_secs(20), "silence", |s| {
        events_of(s, "silence").iter().any(|e| !e["end"].is_null())
    });
    let silence = events_of(&radio, "silence")[0].clone();
    let (start, end) = (
        silence["start"].as_f64().unwrap(),
        silence["end"].as_f64().unwrap(),
    );
    assert!(
        (start - 5.0).abs() <= 0.25 && (end - 9.0).abs() <= 0.25,
        "{silence:#}"
    );
    // Past the old stall timeout many times over: an audio-only stream is not stalled.
    std::thread::sleep(Duration::from_secs(6));
    let radio = sw.stream("radio");
    assert_eq!(radio["state"], "up", "{radio:#}");
    assert_eq!(
        radio["media"],
        serde_json::json!({"video": false, "audio": true})
    );
    let metrics = sw.metrics();
    let restarts = metric_sum(
        &metrics,
        "streamwatch_stream_restarts_total",
        &["stream=\"radio\""],
    );
    assert_eq!(restarts, 0.0, "{metrics}");
    assert_eq!(
        metric_sum(&metrics, "streamwatch_stream_up", &["stream=\"radio\""]),
        1.0
    );
    for video_series in [
        "streamwatch_video_luma_mean_ratio{stream=\"radio\"",
        "streamwatch_last_frame_timestamp_seconds{stream=\"radio\"",
    ] {
        assert!(
            !metrics.contains(video_series),
            "{video_series} in {metrics}"
        );
    }
    for video in ["black", "freeze", "flat", "stall"] {
        assert!(events_of(&radio, video).is_empty(), "{video}: {radio:#}");
    }
    let picture = sw.stream("picture");
    assert_eq!(picture["state"], "up", "{picture:#}");
    assert_eq!(
        picture["media"],
        serde_json::json!({"video": true, "audio": false})
    );
    for audio in ["silence", "audio_loss", "loudness", "channel"] {
        assert!(
            events_of(&picture, audio).is_empty(),
            "{audio}: {picture:#}"
        );
    }
    assert!(
        !metrics.contains("streamwatch_audio_level_dbfs{stream=\"picture\""),
        "{metrics}"
    );
    sw.terminate();
}

#[test]
fn scan_of_an_audio_only_file_reports_its_silence() {
    let dir = temp_dir("audio-only-scan");
    for (name, codec) in [("radio.mp3", "libmp3lame"), ("radio.aac", "aac")] {
        let file = radio(&dir, name, codec, 12);
        let report = scan_json(file.to_str().unwrap(), &["--backend", "cpu"]);
        let silence: Vec<&Value> = report["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["detector"] == "silence")
            .collect();
        assert_eq!(silence.len(), 1, "{name}: {report:#}");
        let (start, end) = (
            silence[0]["start"].as_f64().unwrap(),
            silence[0]["end"].as_f64().unwrap(),
        );
        assert!(
            (start - 5.0).abs() <= 0.25 && (end - 9.0).abs() <= 0.25,
            "{name}: {report:#}"
        );
        assert!(
            report["duration"].as_f64().unwrap_or(0.0) > 11.0,
            "{name}: {report:#}"
        );
        assert!(report["error"].is_null(), "{name}: {report:#}");
    }
}

/// 3 s of 640x360p30 H.264 High with AAC-LC stereo, in MPEG-TS.
fn h264_aac_clip(dir: &Path) -> PathBuf {
    let h264 = dir.join("h264-aac.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30:d=3",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=3:sample_rate=48000",
        "-ac",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        h264.to_str().unwrap(),
    ]);
    h264
}

/// 2 s of 1080i25 MPEG-2 (top field first) with AC-3 5.1, in MPEG-TS.
fn mpeg2_ac3_clip(dir: &Path) -> PathBuf {
    let mpeg2 = dir.join("mpeg2-ac3.ts");
    let six = "aevalsrc='0.1*sin(2*PI*440*t)|0.1*sin(2*PI*550*t)|0.1*sin(2*PI*660*t)|0.1*sin(2*PI*50*t)|0.1*sin(2*PI*770*t)|0.1*sin(2*PI*880*t)':s=48000:d=2";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1920x1080:rate=25:d=2",
        "-f",
        "lavfi",
        "-i",
        six,
        "-channel_layout",
        "5.1(side)",
        "-c:v",
        "mpeg2video",
        "-b:v",
        "4M",
        "-flags",
        "+ilme+ildct",
        "-top",
        "1",
        "-c:a",
        "ac3",
        "-f",
        "mpegts",
        mpeg2.to_str().unwrap(),
    ]);
    mpeg2
}

#[test]
fn api_and_stream_info_show_the_format() {
    let dir = temp_dir("format");
    let h264 = h264_aac_clip(&dir);
    let mpeg2 = mpeg2_ac3_clip(&dir);
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"h264\"\nurl = \"file://{}\"\n\
             [[streams]]\nid = \"mpeg2\"\nurl = \"file://{}\"\n",
            h264.display(),
            mpeg2.display()
        ),
        &["--backend", "cpu"],
    );
    let known = |s: &Value| {
        !s["format"]["video"]["scan"].is_null() && !s["format"]["audio"]["sample_rate"].is_null()
    };
    let h = sw.wait_stream("h264", Duration::from_secs(20), "format", known);
    let expected_h264 = serde_json::json!({
        "video": {"codec": "h264", "profile": "high", "width": 640, "height": 360,
                  "frame_rate": 30.0, "scan": "progressive"},
        "audio": {"codec": "aac", "profile": "lc", "channels": 2, "channel_layout": "FL FR",
                  "sample_rate": 48000},
    });
    assert_eq!(h["format"], expected_h264, "{h:#}");
    let m = sw.wait_stream("mpeg2", Duration::from_secs(20), "format", known);
    let (video, audio) = (&m["format"]["video"], &m["format"]["audio"]);
    assert_eq!(video["codec"], "mpeg2", "{m:#}");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(video["frame_rate"], 25.0);
    assert_eq!(video["scan"], "interlaced", "{m:#}");
    assert_eq!(audio["codec"], "ac3");
    assert_eq!(audio["channels"], 6);
    // AC-3's surround pair (3/2 mode) comes out of the decoder at the rear positions.
    assert_eq!(audio["channel_layout"], "FL FR C LFE RL RR", "{m:#}");
    assert_eq!(audio["sample_rate"], 48000);
    let metrics = sw.metrics();
    let info = |labels: &[&str]| metric_sum(&metrics, "streamwatch_stream_info", labels);
    assert_eq!(
        info(&[
            "stream=\"h264\"",
            "video_codec=\"h264\"",
            "audio_codec=\"aac\"",
            "audio_channels=\"2\""
        ]),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        info(&[
            "stream=\"mpeg2\"",
            "video_codec=\"mpeg2\"",
            "audio_codec=\"ac3\"",
            "audio_channels=\"6\""
        ]),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        info(&["stream=\"mpeg2\""]),
        1.0,
        "one info series per stream: {metrics}"
    );
    sw.terminate();
}
