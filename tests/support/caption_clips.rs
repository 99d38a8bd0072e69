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
            if self.captioned(f64::from(n) / f64::from(fps)) {
                let mut buffer = gst::Buffer::from_mut_slice(cc_data(n));
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
    assert!(summary.contains("Video: h264"), "ffprobe: {summary}");
    summary.contains("Closed Captions")
}
