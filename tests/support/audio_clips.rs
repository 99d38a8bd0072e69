//! Generated clips for the audio detectors: small video (160x120 @ 25 fps, H.264) with a
//! lossless stereo or mono track (PCM s16 48 kHz in Matroska), so that full-scale samples,
//! silent channels and phase relations survive encoding exactly. Also ffmpeg's own
//! measurements on the same clips (`ebur128`, `silencedetect`) for side-by-side comparison.
//!
//! Levels, measured with ffmpeg 5.1's ebur128 over 30 s: [`MUSIC`] I = -23.3 LUFS, short-term
//! -23.5..-23.0, true peak -16.2 dBFS; [`SPEECH`] I = -22.8 LUFS, short-term -24.8..-22.8,
//! momentary down to -36 in its pauses (0.65 s long, every 2.2 s).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clips::fnv1a;
use super::proc::run_with_timeout;

/// Music-like programme: three tones per channel, different in each, slowly modulated.
pub const MUSIC: &str = "0.07*sin(2*PI*220*t)*(0.7+0.3*sin(2*PI*0.5*t))+0.05*sin(2*PI*330*t+1)+0.035*sin(2*PI*523*t)*(0.6+0.4*sin(2*PI*1.3*t))|0.07*sin(2*PI*247*t)*(0.7+0.3*sin(2*PI*0.4*t+1))+0.05*sin(2*PI*392*t)+0.035*sin(2*PI*659*t)*(0.6+0.4*sin(2*PI*1.1*t))";

/// Speech-like programme: a harmonic voice at a syllable rate of 3.7 Hz, in bursts with pauses.
pub const SPEECH: &str = "(0.115*sin(2*PI*180*t)+0.075*sin(2*PI*360*t+0.5)+0.057*sin(2*PI*900*t))*(0.55+0.45*sin(2*PI*3.7*t))*gt(sin(2*PI*0.45*t),-0.6)|0.8*(0.115*sin(2*PI*180*t)+0.075*sin(2*PI*360*t+0.5)+0.057*sin(2*PI*900*t))*(0.55+0.45*sin(2*PI*3.7*t))*gt(sin(2*PI*0.45*t),-0.6)+0.02*sin(2*PI*1300*t)";

/// `gte(t,a)*lt(t,b)`: 1 inside the window `[a, b)`.
pub fn window(a: f64, b: f64) -> String {
    format!("gte(t,{a})*lt(t,{b})")
}

/// The picture of an audio test clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picture {
    /// `testsrc2`: moving, never black or frozen.
    Pattern,
    /// Dark grey frames (not black: luma ~43) with one white frame at every whole second.
    SyncFlash,
}

/// An audio test clip: `audio` is an ffmpeg filter chain producing the track from nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    pub seconds: f64,
    pub picture: Picture,
    pub audio: String,
}

impl AudioClip {
    /// Stereo (or `|`-less: mono) `aevalsrc` expressions, then optional filters (`,f1,f2`).
    pub fn eval(seconds: f64, exprs: &str, filters: &str) -> Self {
        AudioClip {
            seconds,
            picture: Picture::Pattern,
            audio: format!("aevalsrc='{exprs}':s=48000:d={seconds}{filters}"),
        }
    }

    /// A flash/beep sync clip: 1 kHz beep of 80 ms, `offset` seconds after each flash
    /// (positive: audio late), mono.
    pub fn sync(seconds: f64, offset: f64) -> Self {
        let beep = format!(
            "0.5*sin(2*PI*1000*t)*lt(mod(t-({offset}),1),0.08)*gte(t,{offset})*gte(mod(t-({offset}),1),0)"
        );
        AudioClip {
            seconds,
            picture: Picture::SyncFlash,
            audio: format!("aevalsrc='{beep}':s=48000:d={seconds}"),
        }
    }

    fn args(&self, out: &str) -> Vec<String> {
        let video = match self.picture {
            Picture::Pattern => "testsrc2=size=160x120:rate=25".to_owned(),
            Picture::SyncFlash => "color=c=0x202020:size=160x120:rate=25,\
                 drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(n,25),1)'"
                .to_owned(),
        };
        let graph = format!("{video},format=yuv420p[v];{}[a]", self.audio);
        let mut args: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
            .map(String::from)
            .to_vec();
        args.extend(["-filter_complex".to_owned(), graph]);
        args.extend(
            [
                "-map",
                "[v]",
                "-map",
                "[a]",
                "-t",
                &self.seconds.to_string(),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "50",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "pcm_s16le",
                "-f",
                "matroska",
                out,
            ]
            .map(String::from),
        );
        args
    }

    /// Generates (or reuses from `$CARGO_TARGET_TMPDIR/clips`) the clip; returns its path.
    pub fn path(&self) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
        std::fs::create_dir_all(&dir).expect("create clip cache dir");
        let key = fnv1a(&self.args("OUT").join(" "));
        let path = dir.join(format!("audio-{key:016x}.mkv"));
        if path.exists() {
            return path;
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".audio-{key:016x}.{}.{}.tmp.mkv",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let args = self.args(tmp.to_str().expect("utf-8 path"));
        let limit = Duration::from_secs_f64(60.0 + self.seconds * 4.0);
        match run_with_timeout(Command::new("ffmpeg").args(&args), limit) {
            Ok((true, _, _)) => {}
            Ok((false, _, err)) | Err(err) => {
                let _ = std::fs::remove_file(&tmp);
                panic!("ffmpeg audio clip generation failed: {err}\nargs: {args:?}");
            }
        }
        std::fs::rename(&tmp, &path).expect("rename generated clip");
        path
    }
}

/// Runs ffmpeg with `filter` on the clip's audio; returns its log (stderr) at `level`.
fn ffmpeg_filter_log(path: &std::path::Path, filter: &str, level: &str) -> String {
    let path = path.to_str().expect("utf-8 path");
    let args = [
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-v",
        level,
        "-i",
        path,
        "-vn",
        "-af",
        filter,
        "-f",
        "null",
        "-",
    ];
    match run_with_timeout(Command::new("ffmpeg").args(args), Duration::from_secs(120)) {
        Ok((true, _, err)) => err,
        Ok((false, _, err)) | Err(err) => panic!("ffmpeg {filter} failed: {err}"),
    }
}

/// What ffmpeg's `ebur128` filter measured on a clip.
#[derive(Debug, Clone, Copy)]
pub struct Ebur128 {
    /// Integrated loudness, LUFS (to 0.001 LU).
    pub integrated: f64,
    /// Loudness range, LU.
    pub range: f64,
    /// True peak, dBFS (ffmpeg's name for dBTP here).
    pub true_peak: f64,
    /// Highest momentary and short-term loudness of its 100 ms frame log.
    pub max_momentary: f64,
    pub max_short_term: f64,
}

/// ffmpeg's `ebur128=peak=true` summary and the maxima of its frame log.
pub fn ffmpeg_ebur128(path: &std::path::Path) -> Ebur128 {
    // The metadata gives the integrated loudness to 0.001 LU (the summary rounds to 0.1).
    let log = ffmpeg_filter_log(
        path,
        "ebur128=peak=true:framelog=verbose:metadata=1,ametadata=print:key=lavfi.r128.I",
        "verbose",
    );
    let precise_i = log
        .lines()
        .filter_map(|l| l.split("lavfi.r128.I=").nth(1))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .next_back();
    let (mut max_m, mut max_s) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for line in log.lines().filter(|l| l.contains("TARGET:")) {
        let after = |key: &str| {
            line.split(key)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let (Some(m), Some(s)) = (after(" M:"), after(" S:")) {
            max_m = max_m.max(m);
            max_s = max_s.max(s);
        }
    }
    let summary = log.rsplit("Summary:").next().unwrap_or("");
    let field = |name: &str| -> f64 {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in ffmpeg ebur128 summary: {summary}"))
    };
    Ebur128 {
        integrated: precise_i.unwrap_or_else(|| field("I:")),
        range: field("LRA:"),
        true_peak: field("Peak:"),
        max_momentary: max_m,
        max_short_term: max_s,
    }
}

/// ffmpeg's `silencedetect` (threshold dB, minimum duration s; per channel when `mono`):
/// (channel, start, end) of each silence.
pub fn ffmpeg_silencedetect(
    path: &std::path::Path,
    noise_db: f64,
    duration: f64,
    mono: bool,
) -> Vec<(Option<u32>, f64, f64)> {
    let filter = format!(
        "silencedetect=n={noise_db}dB:d={duration}:mono={}",
        u8::from(mono)
    );
    let log = ffmpeg_filter_log(path, &filter, "info");
    let mut open: Vec<(Option<u32>, f64)> = Vec::new();
    let mut out = Vec::new();
    for line in log.lines().filter(|l| l.contains("silencedetect")) {
        let channel = line
            .split("channel: ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|c| c.parse().ok());
        let value = |key: &str| {
            line.split(key)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let Some(start) = value("silence_start: ") {
            open.push((channel, start));
        } else if let Some(end) = value("silence_end: ")
            && let Some(i) = open.iter().position(|(c, _)| *c == channel)
        {
            let (c, start) = open.remove(i);
            out.push((c, start, end));
        }
    }
    out
}
