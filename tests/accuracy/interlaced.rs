//! Interlaced video (issue 16): statistics measured per field, so that field structure is
//! neither detail nor blocks.
//!
//! The trap: a picture that pans fast combs (its two fields, a field period apart, disagree
//! wherever anything moves), and measured as one picture the combing reads as detail. A
//! programme that pans fast and then slowly loses that "detail" without getting any blurrier,
//! and a frame-based blur detector reports blur from the cut to the end (streamwatch did:
//! blur 10.0-19.96 on the 576i clip below, detail 20.5 on the fast pan vs 4.3 on the slow one;
//! per field it is 3.4 vs 3.2). Each clip pans fast for its first half and slowly after, with
//! a real blur (box blur radius 10, on the fields before they are woven) in the slow half,
//! which must be found to ±0.5 s, with no other event.
//!
//! Encoded as broadcasters do: 576i25 MPEG-2 (field DCT and field motion estimation, top field
//! first, CBR) and 1080i25 H.264 (x264's interlaced coding, which is MBAFF; no encoder at hand
//! makes H.264 PAFF, field pictures, so those are untested).

use std::time::Duration;

use crate::scan::assert_events_within;
use crate::support::clips::ffmpeg_cached;
use crate::support::scan_json;

/// Start/end tolerance of blur (as in the video matrix).
const BLUR_TOLERANCE: f64 = 0.5;

/// How a clip's woven frames are encoded.
enum Codec {
    Mpeg2,
    H264Mbaff,
}

/// A fast pan for `seconds / 2`, then a slow one, at 50 fields a second woven top field
/// first, with a box blur over `[blur.0, blur.1)` (seconds on the 25 fps frame grid).
fn panning_clip(width: u32, height: u32, seconds: f64, blur: (f64, f64), codec: Codec) -> String {
    let half = seconds / 2.0;
    let source = |speed: f64| {
        format!("testsrc2=size={width}x{height}:rate=50:duration={half},scroll=horizontal={speed}")
    };
    let (a, b) = blur;
    let graph = format!(
        "{fast}[fast];{slow}[slow];[fast][slow]concat=n=2:v=1,\
         boxblur=10:enable='gte(t,{a})*lt(t,{b})',\
         tinterlace=interleave_top,setfield=tff,format=yuv420p",
        fast = source(0.03),
        slow = source(0.001),
    );
    let mut args: Vec<String> = ["-nostdin", "-loglevel", "error", "-y", "-filter_complex"]
        .map(String::from)
        .to_vec();
    args.push(graph);
    let codec_args: &[&str] = match codec {
        Codec::Mpeg2 => &[
            "-c:v",
            "mpeg2video",
            "-b:v",
            "6M",
            "-minrate",
            "6M",
            "-maxrate",
            "6M",
            "-bufsize",
            "1835k",
            "-flags",
            "+ildct+ilme",
            "-top",
            "1",
            "-g",
            "12",
            "-bf",
            "2",
        ],
        Codec::H264Mbaff => &[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-x264-params",
            "interlaced=1:tff=1:keyint=50",
        ],
    };
    args.extend(codec_args.iter().map(|s| s.to_string()));
    args.extend(["-f", "mpegts", "OUT"].map(String::from));
    let path = ffmpeg_cached(&args, "ts", Duration::from_secs_f64(120.0 + 20.0 * seconds));
    path.to_str().expect("utf-8 path").to_owned()
}

/// Scans `clip`, asserting that every frame was measured per field and that the blur window
/// is the only event.
fn assert_only_blur(clip: &str, frames: u64, blur: (f64, f64)) {
    let dir = crate::support::temp_dir("interlaced");
    let csv = dir.join("stats.csv");
    let report = scan_json(clip, &["--frame-stats", csv.to_str().expect("utf-8 path")]);
    assert_eq!(report["frames"], frames, "{report:#}");
    let stats = std::fs::read_to_string(&csv).expect("frame statistics");
    let mut rows = stats.lines();
    let header: Vec<&str> = rows.next().unwrap_or_default().split(',').collect();
    let column = header.iter().position(|c| *c == "field_rows");
    let column = column.expect("field_rows column");
    let per_field = rows
        .filter(|r| r.split(',').nth(column) == Some("2"))
        .count();
    assert_eq!(per_field as u64, frames, "frames measured per field");
    assert_events_within(&report, &[("blur", blur.0, blur.1)], BLUR_TOLERANCE);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pal_576i_mpeg2_pan_is_not_blur_and_real_blur_is_found() {
    let blur = (13.0, 16.0);
    let clip = panning_clip(720, 576, 20.0, blur, Codec::Mpeg2);
    assert_only_blur(&clip, 500, blur);
}

#[test]
fn hd_1080i_h264_mbaff_pan_is_not_blur_and_real_blur_is_found() {
    let blur = (8.4, 10.8);
    let clip = panning_clip(1920, 1080, 12.0, blur, Codec::H264Mbaff);
    assert_only_blur(&clip, 300, blur);
}
