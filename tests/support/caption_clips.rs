//! H.264 MPEG-TS clips with real closed captions in their SEI: GStreamer's `cccombiner`
//! attaches hand-built `cc_data` to the frames of the captioned spans and `x264enc` writes it
//! as ATSC A/53 user data. Each captioned frame carries one CEA-608 field 1 pair of text
//! (odd parity) and one DTVCC packet with a 2-byte service 1 block: 2 bytes of each per frame.
//! Outside the spans the frames carry no caption SEI at all (`schedule=false`: no padding).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::clips::fnv1a;

/// A captioned clip: `seconds` long at `fps`, captions during each `[from, to)` span;
/// `bframes` B-frames between reference frames (decoded out of order).
#[derive(Clone, Debug)]
pub struct CaptionClip {
    pub seconds: u32,
    pub fps: u32,
    pub spans: Vec<(f64, f64)>,
    pub bframes: u32,
    /// Outside the spans, frames carry 608 padding (an inserter idle through a pause in the
    /// dialogue) rather than no caption data.
    pub padded: bool,
}

/// 608 field 1 bytes and 708 service 1 bytes per captioned frame.
pub const FIELD1_BYTES_PER_FRAME: u32 = 2;
pub const SERVICE1_BYTES_PER_FRAME: u32 = 2;

impl CaptionClip {
    fn captioned(&self, t: f64) -> bool {
        self.spans.iter().any(|&(from, to)| (from..to).contains(&t))
    }

    /// The cached clip's path, generated the first time.
    pub fn path(&self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
        std::fs::create_dir_all(&dir).expect("create clip cache dir");
        let key = fnv1a(&format!("captions-v1 {self:?}"));
        let path = dir.join(format!("{key:016x}.captions.ts"));
        if !path.exists() {
            // Tests of one binary may generate the same clip at once: each its own temp file.
            static N: AtomicU64 = AtomicU64::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".{key:016x}.{}.{n}.tmp.ts", std::process::id()));
            self.encode(&tmp);
            std::fs::rename(&tmp, &path).expect("rename generated clip");
        }
        path
    }

    fn encode(&self, out: &std::path::Path) {
        gst::init().unwrap();
        let frames = self.seconds * self.fps;
        let fps = self.fps;
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc num-buffers={frames} pattern=ball ! \
             video/x-raw,format=I420,width=320,height=240,framerate={fps}/1 ! \
             cccombiner name=c schedule=false ! \
             x264enc speed-preset=ultrafast key-int-max={gop} bframes={bframes} b-adapt=false ! \
             h264parse ! mpegtsmux ! \
             filesink location={out} \
             appsrc name=cc format=time \
             caps=closedcaption/x-cea-708,format=cc_data,framerate={fps}/1 ! c.caption",
            gop = 2 * fps,
            bframes = self.bframes,
            out = out.display(),
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline
            .by_name("cc")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let frame = gst::ClockTime::from_nseconds(1_000_000_000 / u64::from(fps));
        for n in 0..frames {
            let pts = frame * u64::from(n);
            let data = if self.captioned(f64::from(n) / f64::from(fps)) {
                Some(cc_data(n))
            } else {
                self.padded.then(|| vec![0xfc, 0x80, 0x80])
            };
            if let Some(data) = data {
                let mut buffer = gst::Buffer::from_mut_slice(data);
                let b = buffer.get_mut().unwrap();
                b.set_pts(pts);
                b.set_duration(frame);
                src.push_buffer(buffer).unwrap();
            } else {
                // The combiner waits for caption data or a gap before it lets a frame go.
                assert!(src.send_event(gst::event::Gap::new(pts, frame)));
            }
        }
        src.end_of_stream().unwrap();
        run_to_eos(&pipeline, Duration::from_secs(120));
    }
}

fn run_to_eos(pipeline: &gst::Pipeline, limit: Duration) {
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(limit.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        other => panic!("caption clip encoding did not finish: {other:?}"),
    }
}

/// A 608 byte with odd parity.
fn odd(b: u8) -> u8 {
    let b = b & 0x7f;
    if b.count_ones().is_multiple_of(2) {
        b | 0x80
    } else {
        b
    }
}

/// One frame's `cc_data`: a field 1 pair of letters, then a DTVCC packet (sequence `n % 4`,
/// 4 bytes) holding a service 1 block of two letters.
fn cc_data(n: u32) -> Vec<u8> {
    let letter = b'A' + (n % 26) as u8;
    let seq = (n % 4) as u8;
    vec![
        0xfc,
        odd(letter),
        odd(letter + 1),
        0xff,
        seq << 6 | 2,
        1 << 5 | 2,
        0xfe,
        letter,
        letter + 1,
    ]
}

/// Whether ffprobe's stream summary says the video carries closed captions (libavcodec sets
/// it once it has decoded A/53 caption SEI).
pub fn ffprobe_sees_captions(path: &std::path::Path) -> bool {
    let out = std::process::Command::new("ffprobe")
        .args(["-hide_banner", "-i"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains("Video: "), "ffprobe: {summary}");
    summary.contains("Closed Captions")
}

/// An HEVC MPEG-TS clip of `seconds` at 25 fps with CEA-608 field 1 captions (2 bytes a
/// picture) during `spans`: libx265 makes the pictures (no B-frames) and
/// `hevc_captions.py` adds the A/53 SEI, since no encoder here writes it for HEVC.
pub fn hevc_clip(seconds: u32, spans: &[(f64, f64)]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
    std::fs::create_dir_all(&dir).expect("create clip cache dir");
    let spans: Vec<String> = spans.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    let spans = spans.join(",");
    let key = fnv1a(&format!("hevc-captions-v1 {seconds} {spans}"));
    let path = dir.join(format!("{key:016x}.hevc-captions.ts"));
    if path.exists() {
        return path;
    }
    let work = super::temp_dir("hevc-captions");
    let (raw, captioned) = (work.join("in.hevc"), work.join("out.hevc"));
    let tmp = work.join("out.ts");
    let ffmpeg = |args: &[&str]| {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .status()
            .expect("run ffmpeg")
            .success();
        assert!(ok, "ffmpeg {args:?} failed");
    };
    let source = format!("testsrc2=size=320x240:rate=25:duration={seconds}");
    let raw_arg = raw.to_str().expect("utf-8 path");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &source,
        "-c:v",
        "libx265",
        "-x265-params",
        "bframes=0:info=0:log-level=error",
        "-f",
        "hevc",
        raw_arg,
    ]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/hevc_captions.py");
    let ok = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args([&raw, &captioned])
        .args(["25", &spans])
        .status()
        .expect("run hevc_captions.py")
        .success();
    assert!(ok, "hevc_captions.py failed");
    let captioned_arg = captioned.to_str().expect("utf-8 path");
    let tmp_arg = tmp.to_str().expect("utf-8 path");
    ffmpeg(&[
        "-r",
        "25",
        "-i",
        captioned_arg,
        "-c",
        "copy",
        "-f",
        "mpegts",
        tmp_arg,
    ]);
    std::fs::rename(&tmp, &path)
        .or_else(|_| std::fs::copy(&tmp, &path).map(|_| ()))
        .expect("keep the HEVC clip");
    let _ = std::fs::remove_dir_all(&work);
    path
}
