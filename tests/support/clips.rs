//! Generated test clips with injected defects whose times are the ground truth.
//!
//! Conventions, checked with ffmpeg 5.1 on a 320x240@25 clip (black (5,8), freeze (3,4)):
//! - black `(a, b)`: frames with `a <= pts < b` are fully black (drawbox fill with
//!   `enable='gte(t,a)*lt(t,b)'`; note `between()` is inclusive at both ends, so it is not used).
//!   `blackdetect=d=0.1:pix_th=0.1` reports `black_start:5 black_end:8`.
//! - freeze `(a, b)`: frames with `a <= pts < b` repeat the frame just before `a`
//!   (`freezeframes=first=a*fps:last=b*fps-1:replace=a*fps-1`). So the *picture* is static
//!   from `a - 1/fps`: `freezedetect=n=-50dB:d=0.1` reports `freeze_start: 2.96 freeze_end: 4`.
//!   At the default n=-60dB, x264 ultrafast noise split that freeze in two (2.96-3.08, 3.08-4).
//!   freezedetect also reports black segments as frozen (mask freeze during black).
//! - black_with_logo: like black plus a white box of 10%x10% of the picture (1% of the area)
//!   near the top-right corner. blackdetect with its default pic_th=0.98 DOES report it as
//!   black (99% of the pixels are black): `black_start:8 black_end:9` for a (8,9) window.
//! - Keyframe every 2 s exactly (`-g 2*fps -sc_threshold 0`), yuv420p, libx264 ultrafast,
//!   AAC 1 kHz sine at 48 kHz mono when `audio`.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::proc::run_with_timeout;

/// What the picture shows outside the injected defects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Content {
    /// `testsrc2`: colourful, moving, high motion.
    TestPattern,
    /// testsrc2 darkened with `lutyuv=y=22+(val-16)*0.28`: luma 22..80, mean ~52, ~20% of
    /// pixels below 32 (measured at 320x240). Dark but clearly not black.
    DarkScene,
    /// A still picture (the first frame of testsrc2, held) with a black 40x40 box moving across
    /// it (100 px/s). Not colour bars: bars on air are a defect of their own. The box is black
    /// because a white one crosses white areas of the picture, where ffmpeg's freezedetect
    /// (n=-60dB, at 320x240) saw too little change and called 1.08-1.2 s frozen.
    StillWithMovingBox,
    /// SMPTE HD colour bars with the same moving box: a test pattern on air.
    BarsWithMovingBox,
    /// testsrc2 with strong temporal noise (`noise=alls=30:allf=t+u`): hard to encode.
    HighMotion,
}

/// Container of a generated clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Container {
    /// `.mp4` with faststart.
    Mp4,
    /// `.ts` MPEG transport stream (for SRT/RTSP/HLS-like feeding).
    MpegTs,
}

/// A clip to generate; defect windows are `(start, end)` seconds, start inclusive, end exclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipSpec {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second (integer).
    pub fps: u32,
    /// Duration in seconds.
    pub seconds: f64,
    /// The picture outside defects.
    pub content: Content,
    /// Windows where the whole picture is black.
    pub black: Vec<(f64, f64)>,
    /// Windows where the picture is black except a small white logo (~1% of the area).
    pub black_with_logo: Vec<(f64, f64)>,
    /// Windows whose frames repeat the frame just before the window start.
    pub freeze: Vec<(f64, f64)>,
    /// Adds a 1 kHz AAC sine tone.
    pub audio: bool,
}

impl Default for ClipSpec {
    /// 320x240 @ 25 fps, 10 s, TestPattern, no defects, with audio.
    fn default() -> Self {
        ClipSpec {
            width: 320,
            height: 240,
            fps: 25,
            seconds: 10.0,
            content: Content::TestPattern,
            black: Vec::new(),
            black_with_logo: Vec::new(),
            freeze: Vec::new(),
            audio: true,
        }
    }
}

impl ClipSpec {
    /// A defect-free clip with audio.
    pub fn new(width: u32, height: u32, fps: u32, seconds: f64, content: Content) -> Self {
        ClipSpec {
            width,
            height,
            fps,
            seconds,
            content,
            ..Default::default()
        }
    }

    /// The ffmpeg `-filter_complex` graph producing `[v]` (and `[a]` if audio).
    pub fn filter_graph(&self) -> String {
        let (w, h, f) = (self.width, self.height, self.fps);
        let mut g = match self.content {
            Content::TestPattern => format!("testsrc2=size={w}x{h}:rate={f}"),
            Content::DarkScene => {
                format!("testsrc2=size={w}x{h}:rate={f},format=yuv420p,lutyuv=y=22+(val-16)*0.28")
            }
            Content::StillWithMovingBox => format!(
                "testsrc2=size={w}x{h}:rate={f},trim=end_frame=1,loop=loop=-1:size=1,settb=1/{f},\
                 setpts=N[bg];color=c=black:size=40x40:rate={f}[box];\
                 [bg][box]overlay=x='mod(t*100,main_w-overlay_w)':y='(main_h-overlay_h)/2'"
            ),
            Content::BarsWithMovingBox => format!(
                "smptehdbars=size={w}x{h}:rate={f}[bg];color=c=white:size=40x40:rate={f}[box];\
                 [bg][box]overlay=x='mod(t*100,main_w-overlay_w)':y='(main_h-overlay_h)/2'"
            ),
            Content::HighMotion => {
                format!("testsrc2=size={w}x{h}:rate={f},format=yuv420p,noise=alls=30:allf=t+u")
            }
        };
        for (i, &(a, b)) in self.freeze.iter().enumerate() {
            let first = (a * f as f64).round() as i64;
            let last = (b * f as f64).round() as i64 - 1;
            let replace = (first - 1).max(0);
            g.push_str(&format!(
                ",split[fz{i}a][fz{i}b];[fz{i}a][fz{i}b]freezeframes=first={first}:last={last}:replace={replace}"
            ));
        }
        for &(a, b) in &self.black {
            g.push_str(&format!(
                ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{a})*lt(t,{b})'"
            ));
        }
        for &(a, b) in &self.black_with_logo {
            let en = format!("enable='gte(t,{a})*lt(t,{b})'");
            g.push_str(&format!(
                ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:{en}\
                 ,drawbox=x=iw*0.85:y=ih*0.05:w=iw/10:h=ih/10:color=white:t=fill:{en}"
            ));
        }
        g.push_str(",format=yuv420p[v]");
        if self.audio {
            g.push_str(";sine=frequency=1000:sample_rate=48000[a]");
        }
        g
    }

    /// Full ffmpeg argument list writing to `out` in `container`.
    fn ffmpeg_args(&self, container: Container, out: &str) -> Vec<String> {
        let gop = (2 * self.fps).to_string();
        let mut args: Vec<String> = [
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-filter_complex",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(self.filter_graph());
        args.extend(["-map", "[v]"].map(String::from));
        if self.audio {
            args.extend(
                ["-map", "[a]", "-c:a", "aac", "-b:a", "64k", "-ac", "1"].map(String::from),
            );
        }
        args.extend(
            [
                "-t",
                &format!("{}", self.seconds),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                &gop,
                "-keyint_min",
                &gop,
                "-sc_threshold",
                "0",
                "-pix_fmt",
                "yuv420p",
            ]
            .map(String::from),
        );
        match container {
            Container::Mp4 => {
                args.extend(["-movflags", "+faststart", "-f", "mp4"].map(String::from))
            }
            Container::MpegTs => args.extend(["-f", "mpegts"].map(String::from)),
        }
        args.push(out.to_string());
        args
    }
}

/// FNV-1a 64 (stable across Rust versions, unlike `DefaultHasher`): names cached clips.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Generates (or reuses from the cache) an H.264 MP4 for `spec`; returns its path.
pub fn clip(spec: &ClipSpec) -> PathBuf {
    clip_in(spec, Container::Mp4)
}

/// Generates (or reuses) an MPEG-TS H.264(+AAC) clip for `spec`.
pub fn mpegts_clip(spec: &ClipSpec) -> PathBuf {
    clip_in(spec, Container::MpegTs)
}

/// Generates (or reuses) a clip in `container`; see [`ffmpeg_cached`].
pub fn clip_in(spec: &ClipSpec, container: Container) -> PathBuf {
    let ext = match container {
        Container::Mp4 => "mp4",
        Container::MpegTs => "ts",
    };
    let args = spec.ffmpeg_args(container, "OUT");
    ffmpeg_cached(
        &args,
        ext,
        Duration::from_secs_f64(60.0 + spec.seconds * 4.0),
    )
}

/// Runs ffmpeg with `args`, where the argument "OUT" stands for the output file, unless its
/// output is already cached under `$CARGO_TARGET_TMPDIR/clips/<hash of the args>.<ext>`
/// (written to a temp name, then renamed, so parallel tests never see half-written files).
/// Returns the cached file's path.
pub fn ffmpeg_cached(args: &[String], ext: &str, limit: Duration) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
    std::fs::create_dir_all(&dir).expect("create clip cache dir");
    let key = fnv1a(&args.join(" "));
    let path = dir.join(format!("{key:016x}.{ext}"));
    if path.exists() {
        return path;
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{key:016x}.{}.{}.tmp.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp_arg = tmp.to_str().expect("utf-8 path");
    let args: Vec<&str> = args
        .iter()
        .map(|a| if a == "OUT" { tmp_arg } else { a.as_str() })
        .collect();
    match run_with_timeout(Command::new("ffmpeg").args(&args), limit) {
        Ok((true, _, _)) => {}
        Ok((false, _, err)) | Err(err) => {
            let _ = std::fs::remove_file(&tmp);
            panic!("ffmpeg clip generation failed: {err}\nargs: {args:?}");
        }
    }
    std::fs::rename(&tmp, &path).expect("rename generated clip");
    path
}
