//! Real encoded clips for the codec matrix (issue 15): one clip per pairing of a video and an
//! audio codec, in the container broadcasters or OTT services carry that pairing in, each with
//! a black stretch and a silence injected at known times.
//!
//! Conventions (checked with ffmpeg 5.1, ffprobe and `streamwatch scan` on every clip):
//! - Picture: `testsrc2` (moving) at `fps`; the interlaced case renders 2 x `fps` progressive
//!   frames and weaves them top field first (`tinterlace=interleave_top`), so each coded
//!   frame holds two fields from different instants, as a camera's 1080i50 does, and is
//!   encoded field-aware (`-flags +ildct+ilme -top 1`; ffprobe: `field_order=tt`).
//! - Black: frames with `BLACK.0 <= pts < BLACK.1` are fully black (drawbox fill,
//!   `enable='gte(t,a)*lt(t,b)'`, applied after the weave so both fields are black).
//! - Sound: one tone per channel (different frequencies, so stereo is not "fake stereo"; the
//!   5.1 LFE carries 60 Hz), programme loudness about -21 LUFS (within the loudness
//!   detector's -23 +- 5); silence is `volume=0` over `SILENCE.0 <= t < SILENCE.1`, applied
//!   in a simple `-af` chain, so ffmpeg sizes frames for encoders with a fixed frame size
//!   (AC-3, E-AC-3, Opus refuse the variable frames a `-filter_complex` output gives them).
//! - Clips are cached under `$CARGO_TARGET_TMPDIR/clips/codec-<hash of the ffmpeg command>`
//!   (written under a temp name, then renamed), so reruns are free.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clips::fnv1a;
use super::proc::run_with_timeout;

/// Injected black picture: `[start, end)` in seconds, on the 25 fps frame grid (frames 75-139).
pub const BLACK: (f64, f64) = (3.0, 5.6);
/// Injected silence (all channels): `[start, end)` in seconds.
pub const SILENCE: (f64, f64) = (6.0, 8.5);

/// One clip of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecClip {
    /// Short label, e.g. `h264+aac.ts`.
    pub name: &'static str,
    /// Video codec as the README table names it.
    pub video: &'static str,
    /// Audio codec as the README table names it.
    pub audio: &'static str,
    /// ffprobe's `codec_name` of the video and the audio stream.
    pub probe: (&'static str, &'static str),
    pub width: u32,
    pub height: u32,
    /// Coded frames per second (for interlaced video, frames of two fields).
    pub fps: u32,
    pub interlaced: bool,
    /// Audio channels: 1, 2 or 6 (5.1).
    pub channels: u32,
    pub seconds: f64,
    /// ffmpeg encoder options for the video stream.
    pub video_args: &'static [&'static str],
    /// ffmpeg encoder options for the audio stream.
    pub audio_args: &'static [&'static str],
    /// ffmpeg muxer (`mpegts`, `webm`, `mp4`) and the file extension.
    pub format: &'static str,
    pub ext: &'static str,
}

/// H.264 + AAC-LC in MPEG-TS (DVB, ATSC, HLS).
pub const H264_AAC_TS: CodecClip = CodecClip {
    name: "h264+aac.ts",
    video: "H.264 (libx264)",
    audio: "AAC-LC stereo",
    probe: ("h264", "aac"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 2,
    seconds: 10.0,
    video_args: &[
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "50",
        "-sc_threshold",
        "0",
    ],
    audio_args: &["-c:a", "aac", "-b:a", "128k"],
    format: "mpegts",
    ext: "ts",
};

/// HEVC + E-AC-3 in MPEG-TS (DVB-T2 / UHD broadcast, ATSC).
pub const HEVC_EAC3_TS: CodecClip = CodecClip {
    name: "hevc+eac3.ts",
    video: "HEVC (libx265)",
    audio: "E-AC-3 stereo",
    probe: ("hevc", "eac3"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 2,
    seconds: 10.0,
    video_args: &[
        "-c:v",
        "libx265",
        "-preset",
        "ultrafast",
        "-x265-params",
        "log-level=error:keyint=50:min-keyint=50:scenecut=0",
    ],
    audio_args: &["-c:a", "eac3", "-b:a", "192k"],
    format: "mpegts",
    ext: "ts",
};

/// MPEG-2 1080i50 (25 interlaced frames/s, top field first) + MP2 in MPEG-TS (DVB HD).
pub const MPEG2_1080I_MP2_TS: CodecClip = CodecClip {
    name: "mpeg2-1080i+mp2.ts",
    video: "MPEG-2 1080i50 (mpeg2video, TFF)",
    audio: "MP2 stereo",
    probe: ("mpeg2video", "mp2"),
    width: 1920,
    height: 1080,
    fps: 25,
    interlaced: true,
    channels: 2,
    seconds: 10.0,
    video_args: &[
        "-c:v",
        "mpeg2video",
        "-b:v",
        "15M",
        "-maxrate",
        "15M",
        "-bufsize",
        "9M",
        "-g",
        "12",
        "-flags",
        "+ildct+ilme",
        "-top",
        "1",
    ],
    audio_args: &["-c:a", "mp2", "-b:a", "192k"],
    format: "mpegts",
    ext: "ts",
};

/// MPEG-2 + AC-3 5.1 in MPEG-TS (DVB/ATSC SD).
pub const MPEG2_AC3_TS: CodecClip = CodecClip {
    name: "mpeg2+ac3-5.1.ts",
    video: "MPEG-2 (mpeg2video)",
    audio: "AC-3 5.1",
    probe: ("mpeg2video", "ac3"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 6,
    seconds: 10.0,
    video_args: &["-c:v", "mpeg2video", "-b:v", "2M", "-g", "12"],
    audio_args: &["-c:a", "ac3", "-b:a", "384k"],
    format: "mpegts",
    ext: "ts",
};

/// AV1 + Opus in MP4 (OTT, CMAF-style).
pub const AV1_OPUS_MP4: CodecClip = CodecClip {
    name: "av1+opus.mp4",
    video: "AV1 (libsvtav1 preset 12)",
    audio: "Opus stereo",
    probe: ("av1", "opus"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 2,
    seconds: 10.0,
    // SVT-AV1 took 1.5 s here where libaom-av1 at -cpu-used 8 took 23 s (2 loaded cores).
    video_args: &["-c:v", "libsvtav1", "-preset", "12", "-g", "50"],
    audio_args: &["-c:a", "libopus", "-b:a", "96k"],
    format: "mp4",
    ext: "mp4",
};

/// VP9 + Opus in WebM (web/OTT).
pub const VP9_OPUS_WEBM: CodecClip = CodecClip {
    name: "vp9+opus.webm",
    video: "VP9 (libvpx-vp9 realtime)",
    audio: "Opus stereo",
    probe: ("vp9", "opus"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 2,
    seconds: 10.0,
    video_args: &[
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "500k",
        "-g",
        "50",
    ],
    audio_args: &["-c:a", "libopus", "-b:a", "96k"],
    format: "webm",
    ext: "webm",
};

/// H.264 + MP3 in MPEG-TS (HLS allows MPEG audio in TS; some radio-with-picture feeds).
pub const H264_MP3_TS: CodecClip = CodecClip {
    name: "h264+mp3.ts",
    video: "H.264 (libx264)",
    audio: "MP3 stereo",
    probe: ("h264", "mp3"),
    width: 320,
    height: 240,
    fps: 25,
    interlaced: false,
    channels: 2,
    seconds: 10.0,
    video_args: &[
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-g",
        "50",
        "-sc_threshold",
        "0",
    ],
    audio_args: &["-c:a", "libmp3lame", "-b:a", "128k"],
    format: "mpegts",
    ext: "ts",
};

/// Every clip of the matrix: each video codec (and 1080i) and each audio codec at least once.
pub const MATRIX: &[CodecClip] = &[
    H264_AAC_TS,
    HEVC_EAC3_TS,
    MPEG2_1080I_MP2_TS,
    MPEG2_AC3_TS,
    AV1_OPUS_MP4,
    VP9_OPUS_WEBM,
    H264_MP3_TS,
];

impl CodecClip {
    fn args(&self, out: &str) -> Vec<String> {
        let (w, h, f) = (self.width, self.height, self.fps);
        let (ba, bb) = BLACK;
        let (sa, sb) = SILENCE;
        let picture = if self.interlaced {
            format!(
                "testsrc2=size={w}x{h}:rate={}",
                2 * f // two progressive pictures per coded frame, woven into fields
            )
        } else {
            format!("testsrc2=size={w}x{h}:rate={f}")
        };
        let weave = if self.interlaced {
            "tinterlace=mode=interleave_top,setfield=tff,"
        } else {
            ""
        };
        let vf = format!(
            "{weave}drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{ba})*lt(t,{bb})',\
             format=yuv420p"
        );
        let (tones, layout) = match self.channels {
            1 => ("0.15*sin(2*PI*1000*t)", "mono"),
            2 => ("0.1*sin(2*PI*1000*t)|0.1*sin(2*PI*440*t)", "stereo"),
            6 => (
                "0.05*sin(2*PI*1000*t)|0.05*sin(2*PI*440*t)|0.05*sin(2*PI*660*t)\
                 |0.1*sin(2*PI*60*t)|0.05*sin(2*PI*550*t)|0.05*sin(2*PI*880*t)",
                "5.1",
            ),
            n => panic!("no tone set for {n} channels"),
        };
        let sound = format!("aevalsrc='{tones}':s=48000:c={layout}");
        let af = format!("volume=0:enable='gte(t,{sa})*lt(t,{sb})'");
        let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
            .map(String::from)
            .to_vec();
        args.extend(["-f", "lavfi", "-i", &picture].map(String::from));
        args.extend(["-f", "lavfi", "-i", &sound].map(String::from));
        args.extend(["-vf", &vf, "-af", &af].map(String::from));
        args.extend(["-t".to_owned(), self.seconds.to_string()]);
        args.extend(self.video_args.iter().map(|s| s.to_string()));
        args.extend(self.audio_args.iter().map(|s| s.to_string()));
        if self.format == "mp4" {
            args.extend(["-movflags", "+faststart"].map(String::from));
        }
        args.extend(["-f", self.format, out].map(String::from));
        args
    }

    /// Generates (or reuses from `$CARGO_TARGET_TMPDIR/clips`) the clip; returns its path.
    pub fn path(&self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
        std::fs::create_dir_all(&dir).expect("create clip cache dir");
        let key = fnv1a(&self.args("OUT").join(" "));
        let path = dir.join(format!("codec-{key:016x}.{}", self.ext));
        if path.exists() {
            return path;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".codec-{key:016x}.{}.{}.tmp.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            self.ext
        ));
        let args = self.args(tmp.to_str().expect("utf-8 path"));
        let limit = Duration::from_secs_f64(120.0 + self.seconds * 10.0);
        // SVT-AV1 prints its configuration banner unless told to log errors only.
        let mut cmd = Command::new("ffmpeg");
        cmd.args(&args).env("SVT_LOG", "1");
        match run_with_timeout(&mut cmd, limit) {
            Ok((true, _, _)) => {}
            Ok((false, _, err)) | Err(err) => {
                let _ = std::fs::remove_file(&tmp);
                panic!(
                    "ffmpeg codec clip {} generation failed: {err}\nargs: {args:?}",
                    self.name
                );
            }
        }
        std::fs::rename(&tmp, &path).expect("rename generated clip");
        path
    }
}
