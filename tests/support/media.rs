//! ffmpeg-based probes: read frames from a URL, detect black/freeze, luma statistics.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::proc::{run_with_timeout, run_with_timeout_bytes, tail_str};

/// Decodes `n` video frames from `url` (file, rtmp, http HLS, srt, rtsp) with ffmpeg within
/// `timeout`; returns the wall time it took. RTSP is read over TCP; URLs use a 1 s
/// `-analyzeduration`.
pub fn read_frames(url: &str, n: u32, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    if url.contains("://") {
        // Live MPEG-TS (SRT) otherwise waits for the whole 5 s default analyze duration.
        cmd.args(["-analyzeduration", "1000000"]);
    }
    cmd.args(["-i", url, "-map", "0:v:0", "-frames:v", &n.to_string()])
        .args(["-progress", "pipe:1", "-f", "null", "-"]);
    let (ok, out, err) = run_with_timeout(&mut cmd, timeout)?;
    let frames = out
        .lines()
        .filter_map(|l| l.strip_prefix("frame="))
        .filter_map(|v| v.trim().parse::<u32>().ok())
        .max()
        .unwrap_or(0);
    if ok && frames >= n {
        Ok(start.elapsed())
    } else {
        Err(format!(
            "read_frames({url}): ok={ok}, got {frames}/{n} frames: {}",
            tail_str(&err, 2000)
        ))
    }
}

/// Decodes `n` video frames from `url` and returns each frame's mean luma (limited range:
/// black ≈ 16), computed on a 32x24 downscale.
pub fn read_luma_means(url: &str, n: u32, timeout: Duration) -> Result<Vec<f64>, String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"]);
    if url.starts_with("rtsp://") {
        cmd.args(["-rtsp_transport", "tcp"]);
    }
    if url.contains("://") {
        cmd.args(["-analyzeduration", "1000000"]);
    }
    cmd.args(["-i", url, "-map", "0:v:0", "-frames:v", &n.to_string()])
        .args(["-vf", "scale=32:24,format=yuv420p,extractplanes=y"])
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]);
    let (ok, out, err) = run_with_timeout_bytes(&mut cmd, timeout)?;
    if !ok || out.len() < 32 * 24 {
        return Err(format!("read_luma_means({url}): {}", tail_str(&err, 2000)));
    }
    Ok(out
        .chunks_exact(32 * 24)
        .map(|f| f.iter().map(|&v| v as f64).sum::<f64>() / f.len() as f64)
        .collect())
}

/// Black and freeze segments found by ffmpeg's `blackdetect` and `freezedetect`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    /// `(black_start, black_end)` from `blackdetect=d=0.1:pix_th=0.1`.
    pub black: Vec<(f64, f64)>,
    /// `(freeze_start, freeze_end)` from `freezedetect=d=0.1` (includes black).
    pub freeze: Vec<(f64, f64)>,
}

/// Runs ffmpeg's blackdetect + freezedetect (n=-50dB) over a file (reference for ground truth).
pub fn detect_defects(path: &Path) -> Result<Detections, String> {
    detect_defects_with(path, -50.0)
}

/// Like [`detect_defects`] with freezedetect's noise threshold `freeze_noise_db` (e.g. -60.0).
pub fn detect_defects_with(path: &Path, freeze_noise_db: f64) -> Result<Detections, String> {
    ffmpeg_detections(
        path,
        &format!("blackdetect=d=0.1:pix_th=0.1,freezedetect=n={freeze_noise_db}dB:d=0.1"),
        Duration::from_secs(120),
        f64::INFINITY,
    )
}

/// Runs ffmpeg's `blackdetect`/`freezedetect` chain `filters` over a clip and collects what
/// they report; a freeze still open at the end of the file (no freeze_end line) ends at
/// `open_freeze_end`.
pub fn ffmpeg_detections(
    path: &Path,
    filters: &str,
    timeout: Duration,
    open_freeze_end: f64,
) -> Result<Detections, String> {
    let p = path.to_str().ok_or("non-utf8 path")?;
    let (ok, _out, err) = run_with_timeout(
        Command::new("ffmpeg").args([
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-i",
            p,
            "-vf",
            filters,
            "-an",
            "-f",
            "null",
            "-",
        ]),
        timeout,
    )?;
    if !ok {
        return Err(format!("ffmpeg detect failed: {}", tail_str(&err, 2000)));
    }
    let mut d = Detections::default();
    let num = |s: &str, key: &str| -> Option<f64> {
        let i = s.find(key)? + key.len();
        s[i..]
            .trim_start()
            .split(|c: char| c.is_whitespace())
            .next()?
            .parse()
            .ok()
    };
    let mut freeze_start = None;
    for line in err.lines() {
        if let (Some(a), Some(b)) = (num(line, "black_start:"), num(line, "black_end:")) {
            d.black.push((a, b));
        }
        if let Some(a) = num(line, "freeze_start:") {
            freeze_start = Some(a);
        }
        if let Some(b) = num(line, "freeze_end:") {
            d.freeze.push((freeze_start.take().unwrap_or(0.0), b));
        }
    }
    if let Some(a) = freeze_start {
        d.freeze.push((a, open_freeze_end));
    }
    Ok(d)
}

/// Luma statistics of a clip (limited-range Y values as stored, sampled at 2 fps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LumaStats {
    /// Mean luma over the sampled frames.
    pub mean: f64,
    /// Fraction of sampled pixels with luma < 32.
    pub frac_below_32: f64,
    /// Smallest luma seen.
    pub min: u8,
    /// Largest luma seen.
    pub max: u8,
}

/// Computes [`LumaStats`] of the first `seconds` of a file at 2 frames per second.
pub fn luma_stats(path: &Path, seconds: f64) -> Result<LumaStats, String> {
    let p = path.to_str().ok_or("non-utf8 path")?;
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i", p])
        .args(["-t", &seconds.to_string(), "-vf", "fps=2,extractplanes=y"])
        .args(["-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let y = &out.stdout;
    let sum: u64 = y.iter().map(|&v| v as u64).sum();
    let below = y.iter().filter(|&&v| v < 32).count();
    Ok(LumaStats {
        mean: sum as f64 / y.len() as f64,
        frac_below_32: below as f64 / y.len() as f64,
        min: *y.iter().min().unwrap(),
        max: *y.iter().max().unwrap(),
    })
}
