//! Clips with the video defects of issue 3, made the way they happen in practice, with their
//! ground truth as `(detector, start, end)` in media seconds.
//!
//! Conventions, checked with ffmpeg 5.1 (ffprobe packet times, `signalstats` YDIF, frame
//! montages) on 640x360@25 clips with a window at (3, 6):
//! - Every window is `[a, b)`: frames with `a <= pts < b` carry the defect (filters use
//!   `enable='gte(t,a)*lt(t,b)'`, segments use `trim=start=a:end=b`). Choose `a` and `b` on the
//!   frame grid (multiples of 1/fps) so the frame-exact truth is `(a, b)` itself.
//! - The picture is rendered by one ffmpeg filter graph (content + pixel-domain defects); the
//!   delivered clip is H.264 (libx264 veryfast, CRF 20, no B-frames, deblocking on, IDR every
//!   2 s, no scene-cut IDRs), no audio, `.mp4` with faststart. Good quality on purpose: the
//!   clean parts must not look blocky (x264 `ultrafast`, used by `clips.rs`, turns deblocking
//!   off and is visibly blocky on noisy content).
//! - black / black with logo: drawbox fills; the logo is a white box of 10%x10% of the
//!   picture near the top-right corner (1% of the area, like `clips.rs`).
//! - freeze, re-encoded lossy: `freezeframes` repeats the frame just before `a` over `[a, b)`
//!   (so the *picture* is static from `a - 1/fps`), then the window alone is encoded by x264
//!   at CRF 28 with an IDR every 12 frames, decoded and put back before the final encode. The
//!   frozen picture therefore carries coding noise: YDIF inside the window is 0 to 0.01 on
//!   P-frames with pulses of 0.2-0.6 at each IDR (vs ~2.8 for the moving content).
//!   `freezedetect=n=-60dB:d=1` found only 4.0-5.8 of a (3, 6) window.
//! - MPEG-2 spliced in: the window's frames are encoded with `mpeg2video` at the maximum
//!   quantiser (`-qscale:v 31 -qmin 31 -qmax 31`, GOP 12, no B-frames) to MPEG-TS, decoded,
//!   shifted back to `a` with `setpts` and overlaid on the window before the final (good)
//!   H.264 encode, so only the window is blocky. Flat areas stay flat; edges and gradients
//!   turn into 8x8/16x16 blocks (verified on montages at 640x360).
//! - H.264 bitstream corruption: the clip is encoded as H.264 MPEG-TS segments split at the
//!   window edges (each segment starts with an IDR because each is its own encode; timestamps
//!   are continuous because each segment is a `trim` of the same graph), the window's segment
//!   is corrupted with `-bsf:v noise=amount=1000` (ffmpeg 5.1: about one payload byte in 1000
//!   changed, deterministically), and the segments are joined with the `concat:` protocol and
//!   remuxed (`-c copy`) to MP4. Decoding logs "error while decoding MB" from the first frame
//!   of the window; the damage (smeared, misplaced macroblocks) spreads until the clean IDR at
//!   `b`, which decodes cleanly (montages of frames 74-76 and 149-151). The decoder may drop
//!   or repeat damaged frames, so stutter/freeze co-detections are possible.
//! - blur: `boxblur=10` (radius 10 on luma and chroma) over the window.
//! - colour bars slate: `smptebars` (`smptehdbars` from 1280 px wide) overlaid on the window;
//!   static, so freeze is masked by the slate.
//! - blue screen: the whole picture filled with pure blue (0x0000FF).
//! - letterbox: black bars of 12.5% of the height at top and bottom (2.39:1 in 16:9);
//!   pillarbox: black bars of 12.5% of the width left and right (4:3 in 16:9). Both are the
//!   `letterbox` detector; the clip starts without bars (the detector's baseline). The second
//!   bar is placed at `ih-h`/`iw-w` with a rounded-up size: `iw-iw*0.125` rounds down and left
//!   the last column (or row) of picture at widths like 426.
//! - stutter, repeated: in the window only every third frame is kept and shown three times
//!   (timestamps stay regular; YDIF is ~0 on two frames out of three);
//!   stutter, dropped: in the window two frames of three are dropped and the clip is written
//!   variable-frame-rate (`-fps_mode passthrough`), leaving PTS gaps of 3/fps.
//! - Checked by numbers on the generated matrix (`tests/accuracy/video.rs`), per window vs the
//!   rest of the clip: MPEG-2 windows raise the 8x8 block-edge / interior gradient ratio from
//!   ~1.05 to ~2.0 (noisy 426x240) and ~3.9 (still 640x360); box blur drops the mean luma
//!   gradient from ~2.2 to ~0.5 (still) and from ~7 to ~0.15 (life; the blurred life picture
//!   is nearly uniform, luma std 3.5 vs 22, so a flat verdict there is defensible); lossy
//!   freezes keep 17-29 frames per second with YDIF < 0.05, pulses of 0.2-3.6 at the window
//!   encoder's IDRs (moving content: 2.5-11); stutter-repeat has 2 frames in 3 with YDIF ~0;
//!   pillarbox columns read luma 0 (full range) against ~51 for life.
//! - Generation is deterministic: regenerating the whole matrix gave byte-identical files.
//! - Clips are cached under `$CARGO_TARGET_TMPDIR/defect-clips/<hash of every ffmpeg command>`
//!   (written under a temp name, then renamed), so tests share them and reruns are free.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::clips::fnv1a;
use super::media::Detections;
use super::proc::{run_with_timeout, tail_str};

/// What the picture shows outside the injected defects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scene {
    /// `testsrc2`: colour bars with moving elements and a running clock; high motion.
    Motion,
    /// testsrc2 with strong temporal noise (`noise=alls=30:allf=t+u`): hard to encode.
    Noisy,
    /// testsrc2 darkened to luma 22..80 (mean ~52): dark but clearly not black.
    Dark,
    /// A still Mandelbrot picture with a small white box (5% of the width) moving across it.
    MostlyStatic,
    /// Conway's game of life (`life`, 1-pixel cells with mould): fine, busy texture.
    Life,
}

impl Scene {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Scene::Motion => "motion",
            Scene::Noisy => "noisy",
            Scene::Dark => "dark",
            Scene::MostlyStatic => "static",
            Scene::Life => "life",
        }
    }
}

/// A defect injected into a window of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Defect {
    Black,
    BlackWithLogo,
    /// Frozen picture, re-encoded lossy (coding noise on the frozen frames).
    FreezeLossy,
    /// MPEG-2 at the maximum quantiser spliced in.
    Mpeg2MaxQuant,
    /// H.264 bitstream corruption (`-bsf:v noise`) until the next IDR.
    BitstreamNoise,
    Blur,
    ColorBars,
    BlueScreen,
    Letterbox,
    Pillarbox,
    /// Every third frame shown three times.
    StutterRepeat,
    /// Two frames in three dropped, leaving PTS gaps.
    StutterDrop,
    /// The audio muted (gain 0, digital silence) over the window; the picture untouched.
    Silence,
}

impl Defect {
    /// The scan event label (`detector` field) that must report this defect.
    pub fn detector(self) -> &'static str {
        match self {
            Defect::Black | Defect::BlackWithLogo => "black",
            Defect::FreezeLossy => "freeze",
            Defect::Mpeg2MaxQuant | Defect::BitstreamNoise => "blockiness",
            Defect::Blur => "blur",
            Defect::ColorBars => "colorbars",
            Defect::BlueScreen => "flat",
            Defect::Letterbox | Defect::Pillarbox => "letterbox",
            Defect::StutterRepeat | Defect::StutterDrop => "stutter",
            Defect::Silence => "silence",
        }
    }

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Defect::Black => "black",
            Defect::BlackWithLogo => "black+logo",
            Defect::FreezeLossy => "freeze-lossy",
            Defect::Mpeg2MaxQuant => "mpeg2-q31",
            Defect::BitstreamNoise => "h264-noise",
            Defect::Blur => "boxblur",
            Defect::ColorBars => "colorbars",
            Defect::BlueScreen => "blue",
            Defect::Letterbox => "letterbox",
            Defect::Pillarbox => "pillarbox",
            Defect::StutterRepeat => "stutter-repeat",
            Defect::StutterDrop => "stutter-drop",
            Defect::Silence => "mute",
        }
    }
}

/// One injected defect: frames with `start <= pts < end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub defect: Defect,
    pub start: f64,
    pub end: f64,
}

/// A clip to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DefectClip {
    pub scene: Scene,
    pub width: u32,
    pub height: u32,
    /// Frames per second (integer).
    pub fps: u32,
    /// Duration in seconds.
    pub seconds: f64,
    /// Injected defects; must not overlap.
    pub windows: Vec<Window>,
    /// B-frames between reference frames (0: none, as most clips; 3 gives the disposable
    /// pictures the `reference` analysis tier skips).
    pub b_frames: u32,
}

impl DefectClip {
    /// A clean clip.
    pub fn new(scene: Scene, width: u32, height: u32, fps: u32, seconds: f64) -> Self {
        DefectClip {
            scene,
            width,
            height,
            fps,
            seconds,
            windows: Vec::new(),
            b_frames: 0,
        }
    }

    /// Encodes with `n` B-frames between reference frames.
    pub fn with_b_frames(mut self, n: u32) -> Self {
        self.b_frames = n;
        self
    }

    /// Adds a defect window `[start, end)`.
    pub fn with(mut self, defect: Defect, start: f64, end: f64) -> Self {
        self.windows.push(Window { defect, start, end });
        self
    }

    /// `scene WxH@fps Ns`, for tables.
    pub fn label(&self) -> String {
        format!(
            "{} {}x{}@{} {}s",
            self.scene.name(),
            self.width,
            self.height,
            self.fps,
            self.seconds
        )
    }

    /// Ground truth: `(detector, start, end)` per window, snapped to the frame grid (the
    /// first frame with `pts >= start`, the first with `pts >= end`), so a window edge between
    /// two frames is still frame-exact.
    pub fn truth(&self) -> Vec<(&'static str, f64, f64)> {
        truth_on_grid(&self.windows, self.fps)
    }

    fn windows_of(&self, defects: &[Defect]) -> impl Iterator<Item = &Window> {
        self.windows
            .iter()
            .filter(move |w| defects.contains(&w.defect))
    }

    /// The picture before any window re-encode: content plus pixel-domain defects, as an
    /// unterminated filter chain (the caller appends `,filter...[label]`).
    fn picture_graph(&self) -> String {
        let (w, h, f) = (self.width, self.height, self.fps);
        let mut g = match self.scene {
            Scene::Motion => format!("testsrc2=size={w}x{h}:rate={f},format=yuv420p"),
            Scene::Noisy => {
                format!("testsrc2=size={w}x{h}:rate={f},format=yuv420p,noise=alls=30:allf=t+u")
            }
            Scene::Dark => {
                format!("testsrc2=size={w}x{h}:rate={f},format=yuv420p,lutyuv=y=22+(val-16)*0.28")
            }
            // One rendered frame looped (rendering every frame would be slow and identical).
            // Timestamps are set in a 1/fps time base: `setpts=N/{f}/TB` in the loop's finer
            // one rounded some frames onto their neighbours, and with passthrough timing
            // that left duplicated and missing frames (a stutter the clip did not mean).
            Scene::MostlyStatic => format!(
                "mandelbrot=size={w}x{h}:rate={f}:maxiter=200,trim=end_frame=1,\
                 loop=loop=-1:size=1,settb=1/{f},setpts=N,format=yuv420p[still];\
                 color=c=white:size={bw}x{bh}:rate={f}[box];\
                 [still][box]overlay=x='mod(t*{speed},main_w-overlay_w)':y='main_h*0.8'",
                bw = (w / 20).max(8),
                bh = (h / 20).max(8),
                speed = w / 5,
            ),
            Scene::Life => format!(
                "life=size={w}x{h}:rate={f}:ratio=0.1:mold=10:seed=1:\
                 life_color=#00ff00:death_color=#aa0000:mold_color=#203040,format=yuv420p"
            ),
        };
        g.push_str(&defect_filters(&self.windows, w, h, f));
        g
    }

    /// The delivered picture: `picture_graph` with the re-encoded windows (ffmpeg inputs
    /// `0..n`, in `reencoded_windows` order) overlaid and dropped-frame stutter applied,
    /// trimmed to `[from, to)`, ending in `[v]`.
    fn final_graph(&self, from: f64, to: f64) -> String {
        let mut g = self.picture_graph();
        g.push_str(&reencoded_overlays(&self.windows));
        for win in self.windows_of(&[Defect::StutterDrop]) {
            g.push_str(&format!(
                ",select='not(gte(t,{})*lt(t,{})*mod(n,3))'",
                win.start, win.end
            ));
        }
        g.push_str(&format!(",trim=start={from}:end={to},format=yuv420p[v]"));
        g
    }

    /// The ffmpeg commands producing the clip, with `{W}/` (work dir) and `{OUT}` placeholders.
    fn plan(&self) -> Vec<Vec<String>> {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        let head = || s(&["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]);
        let gop = (2 * self.fps).to_string();
        let b_frames = self.b_frames.to_string();
        let h264 = s(&[
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-bf",
            &b_frames,
            "-g",
            &gop,
            "-keyint_min",
            &gop,
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
            "-fps_mode",
            "passthrough",
        ]);
        let (mut plan, inputs) = window_commands(&self.picture_graph(), &self.windows);
        let mut noisy: Vec<&Window> = self.windows_of(&[Defect::BitstreamNoise]).collect();
        noisy.sort_by(|a, b| a.start.total_cmp(&b.start));
        if noisy.is_empty() {
            let mut cmd = head();
            cmd.extend(inputs);
            cmd.push("-filter_complex".into());
            cmd.push(self.final_graph(0.0, self.seconds));
            cmd.extend(s(&["-map", "[v]"]));
            cmd.extend(h264);
            cmd.extend(s(&["-movflags", "+faststart", "-f", "mp4", "{OUT}"]));
            plan.push(cmd);
            return plan;
        }
        // Segments split at the corrupted windows' edges: each is its own encode, so each
        // starts with an IDR and the corruption stops at the next segment.
        let mut cuts = vec![(0.0, false)];
        for w in &noisy {
            cuts.push((w.start, true));
            cuts.push((w.end, false));
        }
        let mut parts = Vec::new();
        for (i, &(from, corrupt)) in cuts.iter().enumerate() {
            let to = cuts.get(i + 1).map_or(self.seconds, |c| c.0);
            if to <= from {
                continue;
            }
            let mut cmd = head();
            cmd.extend(inputs.iter().cloned());
            cmd.push("-filter_complex".into());
            cmd.push(self.final_graph(from, to));
            cmd.extend(s(&["-map", "[v]"]));
            cmd.extend(h264.iter().cloned());
            if corrupt {
                cmd.extend(s(&["-bsf:v", "noise=amount=1000"]));
            }
            cmd.extend(s(&["-f", "mpegts"]));
            let part = format!("{{W}}/part{i}.ts");
            cmd.push(part.clone());
            plan.push(cmd);
            parts.push(part);
        }
        let mut cmd = head();
        cmd.extend(s(&["-i", &format!("concat:{}", parts.join("|"))]));
        cmd.extend(s(&[
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            "{OUT}",
        ]));
        plan.push(cmd);
        plan
    }
}

/// The pixel-domain defects of `windows` (black, logo, freeze, stutter-repeat, blur, bars,
/// blue, letterbox, pillarbox) as filters appended to an unterminated chain of `w`x`h`@`f`
/// frames, which the result leaves unterminated too.
pub fn defect_filters(windows: &[Window], w: u32, h: u32, f: u32) -> String {
    let mut g = String::new();
    let en = |w: &Window| format!("enable='gte(t,{})*lt(t,{})'", w.start, w.end);
    for (i, win) in windows_of(windows, &[Defect::FreezeLossy]).enumerate() {
        let first = (win.start * f as f64).round() as i64;
        let last = (win.end * f as f64).round() as i64 - 1;
        let replace = (first - 1).max(0);
        g.push_str(&format!(
                ",split[fz{i}a][fz{i}b];[fz{i}a][fz{i}b]freezeframes=first={first}:last={last}:replace={replace}"
            ));
    }
    for (i, win) in windows_of(windows, &[Defect::StutterRepeat]).enumerate() {
        // overlay shows the newest kept frame until the next one: each is shown 3 times.
        g.push_str(&format!(
            ",split[sr{i}a][sr{i}b];[sr{i}b]trim=start={a}:end={b},select='not(mod(n,3))'[sr{i}c];\
                 [sr{i}a][sr{i}c]overlay=eof_action=pass:{e}",
            a = win.start,
            b = win.end,
            e = en(win)
        ));
    }
    for win in windows_of(windows, &[Defect::Black]) {
        g.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:{}",
            en(win)
        ));
    }
    for win in windows_of(windows, &[Defect::BlackWithLogo]) {
        let e = en(win);
        g.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:{e}\
                 ,drawbox=x=iw*0.85:y=ih*0.05:w=iw/10:h=ih/10:color=white:t=fill:{e}"
        ));
    }
    for win in windows_of(windows, &[Defect::Blur]) {
        g.push_str(&format!(",boxblur=10:{}", en(win)));
    }
    for (i, win) in windows_of(windows, &[Defect::ColorBars]).enumerate() {
        let src = if w >= 1280 {
            "smptehdbars"
        } else {
            "smptebars"
        };
        g.push_str(&format!(
            "[cb{i}a];{src}=size={w}x{h}:rate={f},format=yuv420p[cb{i}b];\
                 [cb{i}a][cb{i}b]overlay={}",
            en(win)
        ));
    }
    for win in windows_of(windows, &[Defect::BlueScreen]) {
        g.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw:h=ih:color=0x0000FF:t=fill:{}",
            en(win)
        ));
    }
    for win in windows_of(windows, &[Defect::Letterbox]) {
        let e = en(win);
        g.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw:h=ih*0.125:color=black:t=fill:{e}\
                 ,drawbox=x=0:y=ih-h:w=iw:h=ceil(ih*0.125):color=black:t=fill:{e}"
        ));
    }
    for win in windows_of(windows, &[Defect::Pillarbox]) {
        let e = en(win);
        g.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw*0.125:h=ih:color=black:t=fill:{e}\
                 ,drawbox=x=iw-w:y=0:w=ceil(iw*0.125):h=ih:color=black:t=fill:{e}"
        ));
    }
    g
}

fn windows_of<'a>(
    windows: &'a [Window],
    defects: &'a [Defect],
) -> impl Iterator<Item = &'a Window> {
    windows.iter().filter(move |w| defects.contains(&w.defect))
}

/// Ground truth of `windows`: `(detector, start, end)` per window, snapped to the frame grid of
/// `fps` (the first frame with `pts >= start`, the first with `pts >= end`), so a window edge
/// between two frames is still frame-exact.
pub fn truth_on_grid(windows: &[Window], fps: u32) -> Vec<(&'static str, f64, f64)> {
    let f = fps as f64;
    let snap = |t: f64| (t * f - 1e-6).ceil() / f;
    windows
        .iter()
        .map(|w| (w.defect.detector(), snap(w.start), snap(w.end)))
        .collect()
}

/// The audio defects of `windows` (muting) as filters appended to an unterminated audio chain.
pub fn audio_defect_filters(windows: &[Window]) -> String {
    windows_of(windows, &[Defect::Silence])
        .map(|w| format!(",volume=0:enable='gte(t,{})*lt(t,{})'", w.start, w.end))
        .collect()
}

/// Windows re-encoded on their own and put back: (window, encoder arguments).
fn reencoded_windows(windows: &[Window]) -> Vec<(Window, Vec<String>)> {
    let args = |a: &str| a.split_whitespace().map(String::from).collect::<Vec<_>>();
    windows
        .iter()
        .filter_map(|w| match w.defect {
            Defect::FreezeLossy => Some((
                *w,
                args("-c:v libx264 -preset veryfast -crf 28 -g 12 -bf 0 -pix_fmt yuv420p"),
            )),
            Defect::Mpeg2MaxQuant => Some((
                *w,
                args("-c:v mpeg2video -qscale:v 31 -qmin 31 -qmax 31 -g 12 -bf 0 -pix_fmt yuv420p"),
            )),
            _ => None,
        })
        .collect()
}

/// The ffmpeg commands encoding each re-encoded window of `picture` (an unterminated chain
/// with the pixel-domain defects already applied) to `{W}/window<k>.ts`, and the `-i`
/// arguments that make them inputs `0..n` of the final command.
pub fn window_commands(picture: &str, windows: &[Window]) -> (Vec<Vec<String>>, Vec<String>) {
    let mut plan = Vec::new();
    let mut inputs = Vec::new();
    for (k, (win, enc)) in reencoded_windows(windows).into_iter().enumerate() {
        let mut cmd: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
            .map(String::from)
            .to_vec();
        cmd.push("-filter_complex".into());
        cmd.push(format!(
            "{picture},trim=start={}:end={},format=yuv420p[v]",
            win.start, win.end
        ));
        cmd.extend(["-map".into(), "[v]".into()]);
        cmd.extend(enc);
        cmd.extend(["-f".into(), "mpegts".into(), format!("{{W}}/window{k}.ts")]);
        plan.push(cmd);
        inputs.extend(["-i".to_string(), format!("{{W}}/window{k}.ts")]);
    }
    (plan, inputs)
}

/// Filters overlaying the windows made by [`window_commands`] (ffmpeg inputs `0..n`) on an
/// unterminated chain, at their place; the chain stays unterminated.
pub fn reencoded_overlays(windows: &[Window]) -> String {
    let mut g = String::new();
    for (k, (win, _)) in reencoded_windows(windows).iter().enumerate() {
        g.push_str(&format!(
            "[rw{k}a];[{k}:v]setpts=PTS-STARTPTS+{a}/TB[rw{k}b];\
             [rw{k}a][rw{k}b]overlay=eof_action=pass:enable='gte(t,{a})*lt(t,{b})'",
            a = win.start,
            b = win.end
        ));
    }
    g
}

/// Generates (or reuses from the cache) the clip; returns its path. Safe to call from
/// several threads and test binaries at once (temp names, then rename).
pub fn defect_clip(spec: &DefectClip) -> PathBuf {
    let limit = Duration::from_secs_f64(120.0 + spec.seconds * 10.0);
    run_plan_cached("defect-clips", "mp4", &spec.label(), &spec.plan(), limit)
}

/// First word of a plan step that joins files byte for byte instead of running ffmpeg:
/// `[CAT, out, part1, part2, ...]` (MPEG-TS segments spliced as a playout server would).
pub const CAT: &str = "{CAT}";

/// Runs `plan` (ffmpeg argument lists, or [`CAT`] steps, with `{W}/` for a private work dir
/// and `{OUT}` for the result) unless its result is cached under
/// `$CARGO_TARGET_TMPDIR/<subdir>/<hash of every step>.<ext>`; returns the cached path. Each
/// ffmpeg run gets `limit`. Safe to call from several threads and test binaries at once
/// (temp names, then rename); panics with ffmpeg's error and `label` on failure.
pub fn run_plan_cached(
    subdir: &str,
    ext: &str,
    label: &str,
    plan: &[Vec<String>],
    limit: Duration,
) -> PathBuf {
    let key = fnv1a(
        &plan
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(subdir);
    std::fs::create_dir_all(&dir).expect("create clip cache dir");
    let path = dir.join(format!("{key:016x}.{ext}"));
    if path.exists() {
        return path;
    }
    static N: AtomicU64 = AtomicU64::new(0);
    let tag = format!(
        "{key:016x}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let work = dir.join(format!(".work.{tag}"));
    let out = dir.join(format!(".{tag}.tmp.{ext}"));
    std::fs::create_dir_all(&work).expect("create clip work dir");
    let work_s = work.to_str().expect("utf-8 path");
    let out_s = out.to_str().expect("utf-8 path");
    for cmd in plan {
        let args: Vec<String> = cmd
            .iter()
            .map(|a| a.replace("{W}", work_s).replace("{OUT}", out_s))
            .collect();
        let result = match args.split_first() {
            Some((first, rest)) if first == CAT => concatenate(rest),
            _ => run_with_timeout(Command::new("ffmpeg").args(&args), limit),
        };
        let err = match result {
            Ok((true, _, _)) => continue,
            Ok((false, _, err)) | Err(err) => err,
        };
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_file(&out);
        panic!(
            "ffmpeg failed generating {label}: {}\nargs: {args:?}",
            tail_str(&err, 3000)
        );
    }
    let _ = std::fs::remove_dir_all(&work);
    std::fs::rename(&out, &path).expect("rename generated clip");
    path
}

/// A [`CAT`] step: `out` followed by the parts, joined in order; shaped like
/// `run_with_timeout`'s result.
fn concatenate(paths: &[String]) -> Result<(bool, String, String), String> {
    let (out, parts) = paths.split_first().ok_or("cat step without an output")?;
    let mut joined = Vec::new();
    for part in parts {
        joined.extend(std::fs::read(part).map_err(|e| format!("read {part}: {e}"))?);
    }
    std::fs::write(out, joined).map_err(|e| format!("write {out}: {e}"))?;
    Ok((true, String::new(), String::new()))
}

/// ffmpeg's own detectors on a clip, as the reference column of the accuracy table:
/// `blackdetect=d=0.5:pix_th=0.10` and `freezedetect=n=-60dB:d=1`. A freeze still open at the
/// end of the file ends at `seconds`.
pub fn ffmpeg_reference(path: &Path, seconds: f64) -> Result<Detections, String> {
    super::media::ffmpeg_detections(
        path,
        "blackdetect=d=0.5:pix_th=0.10,freezedetect=n=-60dB:d=1",
        Duration::from_secs(300),
        seconds,
    )
}
