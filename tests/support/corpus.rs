//! A corpus of clean "real broadcast" programmes (issue 16: no false alarms on real content),
//! generated deterministically from ffmpeg's lavfi sources and encoded to MPEG-TS the way
//! broadcasters deliver them, plus the same programmes with injected defects.
//!
//! Every programme has a realistic picture and realistic sound: speech-like modulated tones
//! ([`SPEECH`]), tone mixtures with envelopes ([`MUSIC`]), pink-noise crowds and room tone;
//! nothing is digitally silent except where the programme's kind is about that. The kinds,
//! and the detector each one is a trap for:
//!
//! | programme  | kind | picture / sound | encoding | trap for |
//! |---|---|---|---|---|
//! | `sport` | high motion | fast pans over a detailed field, players, a score bug; crowd + commentary | H.264 720p50 CBR, closed GOP, AAC | blur, blockiness (motion blur and coding noise), stutter |
//! | `studio` | talking head | static set, a presenter swaying and talking, lower third | MPEG-2 576i-sized 25p CBR, closed GOP, MP2 | freeze, stutter (most pixels never change) |
//! | `night` | dark scene | moving pattern graded to luma 16..64 with grain | H.264 720p VBR, open GOP, AAC | black (dark but not black) |
//! | `cartoon` | flat colours | flat shapes, animated on twos (every frame shown twice), holds of 1.4 s every 9 s | H.264 576p VBR, closed GOP, AAC | stutter, freeze, flat |
//! | `credits` | scrolling credits | white names scrolling up over black, 1.2 s of black between passes | H.264 720p CBR, open GOP, AAC | black (sparse moving text over black) |
//! | `slideshow` | stills | Ken Burns slow zoom and pan over stills, 1 s cross-fades | MPEG-2 720p VBR, open GOP, AC-3 | freeze (slow change), blur (cross-fades) |
//! | `fades` | fades to black | drama with dips to black of 0.5-1.3 s (fades of 0.5 s), sound dipping with it | MPEG-2 576p VBR, open GOP, MP2 | black, silence (shorter than their 2 s minimum) |
//! | `splice` | ad break | 720x576 programme, 1920x1080 ad with AAC at 44.1 kHz, programme again: three TS files joined byte for byte (timestamps restart, continuity counters jump) | H.264 CBR + VBR, AAC | letterbox, blur, blockiness baselines; black (5-frame black around the ad) |
//! | `stadium-1080i` | interlaced | fast pans at 50 fields/s, interlaced with `tinterlace` (top field first) | MPEG-2 1080i25 CBR 15 Mb/s, `+ildct+ilme -top 1`, closed GOP, MP2 | blockiness (combing on motion), blur |
//! | `news-1080i` | interlaced | moving pattern at 50 fields/s, interlaced | H.264 1080i25 MBAFF (x264 `interlaced=1:tff=1`; no available encoder makes PAFF), VBR, open GOP, AAC | blockiness, blur |
//! | `drama-5.1` | 5.1 | slow pan, grain; dialogue in C, music in FL/FR, surrounds at about -50 dBFS, LFE digitally silent | H.264 1024x576 VBR, closed GOP, AC-3 5.1 | channel (silent LFE, quiet surrounds), silence per channel |
//! | `interview-mono` | mono in stereo | two-shot interview; the same speech on L and R | MPEG-2 576p CBR, open GOP, MP2 | channel (identical channels) |
//! | `concert` | quiet music | stage lights; music with pianissimo passages of 14 s at about -48 dBFS every 50 s, never digitally silent | H.264 720p CBR, open GOP, AAC | silence, loudness |
//!
//! Conventions:
//! - Each programme is one or more segments; a segment is a video chain and an audio chain
//!   (lavfi, running time `t` from 0) encoded by one ffmpeg command to MPEG-TS with
//!   `-t seconds`. Multi-segment programmes are joined by a byte-for-byte [`CAT`] step.
//! - Encoders: libx264 `veryfast`, GOP of one second, 3 B-frames, scene-cut on; CBR is
//!   `nal-hrd=cbr` with `minrate = maxrate = bufsize = bitrate`, VBR is ABR capped at twice the
//!   rate; open GOP is `open-gop=1`. mpeg2video: GOP 12, 2 B-frames; CBR is `minrate = maxrate
//!   = bitrate`; VBR is capped at 1.5x; closed GOP is `+cgop` (its default is open GOP).
//! - Defect versions ([`CorpusClip::with`]) apply `defect_clips`' recipes to the programme's
//!   picture (pixel-domain filters, MPEG-2 max-quant and lossy-freeze windows re-encoded on
//!   their own and overlaid) and mute the sound for [`Defect::Silence`]; windows follow the
//!   same `[a, b)` frame-grid conventions. Only single-segment programmes take defects.
//! - Every window ends at or before `seconds`, and defect versions cut the programme short
//!   with `-t`, so a window's re-encode renders the programme from 0 to the window's end.
//! - Text uses DejaVu Sans (`fonts-dejavu-core`, pulled in by ffmpeg's fontconfig).
//! - Clips are cached under `$CARGO_TARGET_TMPDIR/corpus/<hash of every command>.ts`.

use std::path::PathBuf;
use std::time::Duration;

use super::audio_clips::{MUSIC, SPEECH};
use super::defect_clips::{
    CAT, Defect, Window, audio_defect_filters, defect_filters, reencoded_overlays, run_plan_cached,
    truth_on_grid, window_commands,
};

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const FONT_BOLD: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// Video codec of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Mpeg2,
}

/// Audio codec of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Mp2,
    Ac3,
}

/// How a segment is encoded, as a broadcaster would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    pub codec: Codec,
    /// Video bitrate, kb/s.
    pub kbps: u32,
    /// Constant bitrate (else VBR capped at 2x for H.264, 1.5x for MPEG-2).
    pub cbr: bool,
    pub open_gop: bool,
    /// Interlaced, top field first (the picture chain must deliver woven fields).
    pub interlaced: bool,
    pub audio: AudioCodec,
    /// Audio sample rate, Hz.
    pub sample_rate: u32,
}

impl Encoding {
    fn new(codec: Codec, kbps: u32, cbr: bool, open_gop: bool, audio: AudioCodec) -> Self {
        Encoding {
            codec,
            kbps,
            cbr,
            open_gop,
            interlaced: false,
            audio,
            sample_rate: 48000,
        }
    }

    fn interlaced(mut self) -> Self {
        self.interlaced = true;
        self
    }

    /// Short description for tables, e.g. `H.264 CBR open`.
    pub fn label(&self) -> String {
        format!(
            "{} {}{} {} {}",
            match self.codec {
                Codec::H264 => "H.264",
                Codec::Mpeg2 => "MPEG-2",
            },
            if self.cbr { "CBR" } else { "VBR" },
            if self.interlaced { " i" } else { "" },
            if self.open_gop { "open" } else { "closed" },
            match self.audio {
                AudioCodec::Aac => "AAC",
                AudioCodec::Mp2 => "MP2",
                AudioCodec::Ac3 => "AC-3",
            }
        )
    }

    fn video_args(&self, fps: u32) -> Vec<String> {
        let k = self.kbps;
        let args = match (self.codec, self.cbr) {
            (Codec::H264, cbr) => {
                let mut x264 = vec![if cbr { "nal-hrd=cbr:force-cfr=1" } else { "" }];
                x264.push(if self.open_gop { "open-gop=1" } else { "" });
                x264.push(if self.interlaced {
                    "interlaced=1:tff=1"
                } else {
                    ""
                });
                let x264: Vec<&str> = x264.into_iter().filter(|p| !p.is_empty()).collect();
                let rate = if cbr {
                    format!("-b:v {k}k -minrate {k}k -maxrate {k}k -bufsize {k}k")
                } else {
                    format!("-b:v {k}k -maxrate {}k -bufsize {}k", 2 * k, 2 * k)
                };
                format!(
                    "-c:v libx264 -preset veryfast -g {fps} -bf 3 {rate} -x264-params {}",
                    if x264.is_empty() {
                        "ref=3".to_owned()
                    } else {
                        x264.join(":")
                    }
                )
            }
            (Codec::Mpeg2, cbr) => {
                let max = if cbr { k } else { k * 3 / 2 };
                let min = if cbr {
                    format!("-minrate {k}k ")
                } else {
                    String::new()
                };
                let buf = if k >= 6000 { 9781 } else { 1835 };
                let mut flags = String::new();
                // mpeg2video refuses closed GOPs with scene-cut detection on.
                let mut sc = "";
                if !self.open_gop {
                    flags.push_str("+cgop");
                    sc = " -sc_threshold 1000000000";
                }
                if self.interlaced {
                    flags.push_str("+ildct+ilme");
                }
                let flags = if flags.is_empty() {
                    String::new()
                } else {
                    format!(" -flags {flags}")
                };
                let top = if self.interlaced { " -top 1" } else { "" };
                format!(
                    "-c:v mpeg2video -g 12 -bf 2 -b:v {k}k {min}-maxrate {max}k -bufsize {buf}k{flags}{top}{sc}"
                )
            }
        };
        let mut v: Vec<String> = args.split_whitespace().map(String::from).collect();
        v.extend(["-pix_fmt".into(), "yuv420p".into()]);
        v
    }

    /// Samples per frame of the audio encoder: ffmpeg 5.1 does not re-frame the output of a
    /// complex filter graph for encoders with a fixed frame size (MP2 failed on 1024).
    fn audio_frame(&self) -> u32 {
        match self.audio {
            AudioCodec::Aac => 1024,
            AudioCodec::Mp2 => 1152,
            AudioCodec::Ac3 => 1536,
        }
    }

    fn audio_args(&self, channels: u32) -> Vec<String> {
        let a = match (self.audio, channels) {
            (AudioCodec::Aac, _) => "-c:a aac -b:a 160k",
            (AudioCodec::Mp2, _) => "-c:a mp2 -b:a 192k",
            (AudioCodec::Ac3, 6) => "-c:a ac3 -b:a 384k",
            (AudioCodec::Ac3, _) => "-c:a ac3 -b:a 192k",
        };
        let mut v: Vec<String> = a.split_whitespace().map(String::from).collect();
        v.extend(["-ar".into(), self.sample_rate.to_string()]);
        v
    }
}

/// One encoded piece of a programme.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub width: u32,
    pub height: u32,
    /// Coded frames per second (25 for 1080i25).
    pub fps: u32,
    pub seconds: f64,
    /// Unterminated lavfi chain of `width`x`height`@`fps` frames (labels inside are prefixed
    /// `v`).
    pub video: String,
    /// Unterminated lavfi chain of the sound (labels inside are prefixed `a`).
    pub audio: String,
    /// Audio channels the chain delivers (2 or 6).
    pub channels: u32,
    pub encoding: Encoding,
}

/// A clean programme of the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Programme {
    pub name: &'static str,
    /// Which kind of content it stands for.
    pub kind: &'static str,
    pub segments: Vec<Segment>,
}

impl Programme {
    /// Total duration, seconds.
    pub fn seconds(&self) -> f64 {
        self.segments.iter().map(|s| s.seconds).sum()
    }

    /// `WxH@fps codec...` of the first segment (and `+ n segments`).
    pub fn format(&self) -> String {
        let s = &self.segments[0];
        let more = match self.segments.len() {
            1 => String::new(),
            n => format!(" + {} segments", n - 1),
        };
        format!(
            "{}x{}@{} {}{more}",
            s.width,
            s.height,
            s.fps,
            s.encoding.label()
        )
    }
}

/// A clip to generate: a programme, possibly cut short, possibly with defects.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusClip {
    pub programme: Programme,
    /// Seconds of the programme to deliver (its first ones).
    pub seconds: f64,
    pub windows: Vec<Window>,
}

impl CorpusClip {
    /// The whole clean programme.
    pub fn clean(programme: Programme) -> Self {
        let seconds = programme.seconds();
        CorpusClip {
            programme,
            seconds,
            windows: Vec::new(),
        }
    }

    /// The programme's first `seconds` (single-segment programmes only).
    pub fn first(programme: Programme, seconds: f64) -> Self {
        assert_eq!(
            programme.segments.len(),
            1,
            "{}: cut a spliced programme",
            programme.name
        );
        CorpusClip {
            programme,
            seconds,
            windows: Vec::new(),
        }
    }

    /// Adds a defect window `[start, end)`.
    pub fn with(mut self, defect: Defect, start: f64, end: f64) -> Self {
        assert_eq!(
            self.programme.segments.len(),
            1,
            "defects on a spliced programme"
        );
        self.windows.push(Window { defect, start, end });
        self
    }

    /// `name Ns [defects]`, for tables.
    pub fn label(&self) -> String {
        let windows: Vec<String> = self
            .windows
            .iter()
            .map(|w| format!("{} {}-{}", w.defect.name(), w.start, w.end))
            .collect();
        match windows.is_empty() {
            true => format!("{} {}s clean", self.programme.name, self.seconds),
            false => format!(
                "{} {}s [{}]",
                self.programme.name,
                self.seconds,
                windows.join(", ")
            ),
        }
    }

    /// Ground truth `(detector, start, end)`, on the frame grid.
    pub fn truth(&self) -> Vec<(&'static str, f64, f64)> {
        truth_on_grid(&self.windows, self.programme.segments[0].fps)
    }

    /// The ffmpeg commands producing the clip (see `run_plan_cached`).
    fn plan(&self) -> Vec<Vec<String>> {
        let segs = &self.programme.segments;
        if segs.len() == 1 {
            let mut seg = segs[0].clone();
            seg.seconds = self.seconds;
            return segment_plan(&seg, &self.windows, "{OUT}");
        }
        let mut plan = Vec::new();
        let mut cat = vec![CAT.to_owned(), "{OUT}".to_owned()];
        for (i, seg) in segs.iter().enumerate() {
            let part = format!("{{W}}/segment{i}.ts");
            plan.extend(segment_plan(seg, &[], &part));
            cat.push(part);
        }
        plan.push(cat);
        plan
    }
}

/// The commands encoding one segment, with `windows` injected, to `out`.
fn segment_plan(seg: &Segment, windows: &[Window], out: &str) -> Vec<Vec<String>> {
    let picture = format!(
        "{}{}",
        seg.video,
        defect_filters(windows, seg.width, seg.height, seg.fps)
    );
    let (mut plan, inputs) = window_commands(&picture, windows);
    let field = if seg.encoding.interlaced {
        ",setfield=tff"
    } else {
        ""
    };
    let graph = format!(
        "{picture}{},format=yuv420p{field}[v];{}{},asetnsamples=n={}:p=0[a]",
        reencoded_overlays(windows),
        seg.audio,
        audio_defect_filters(windows),
        seg.encoding.audio_frame()
    );
    let mut cmd: Vec<String> = ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
        .map(String::from)
        .to_vec();
    cmd.extend(inputs);
    cmd.extend(["-filter_complex".into(), graph]);
    cmd.extend(["-map", "[v]", "-map", "[a]", "-t"].map(String::from));
    cmd.push(seg.seconds.to_string());
    cmd.extend(seg.encoding.video_args(seg.fps));
    cmd.extend(seg.encoding.audio_args(seg.channels));
    cmd.extend(["-f".into(), "mpegts".into(), out.to_owned()]);
    plan.push(cmd);
    plan
}

/// Generates (or reuses from the cache) the clip; returns its path.
pub fn corpus_clip(clip: &CorpusClip) -> PathBuf {
    let limit = Duration::from_secs_f64(300.0 + clip.seconds * 10.0);
    run_plan_cached("corpus", "ts", &clip.label(), &clip.plan(), limit)
}

/// The programmes, in table order: 31.5 minutes in all.
pub fn programmes() -> Vec<Programme> {
    vec![
        sport(),
        studio(),
        night(),
        cartoon(),
        credits(),
        slideshow(),
        fades(),
        splice(),
        stadium_1080i(),
        news_1080i(),
        drama_51(),
        interview_mono(),
        concert(),
    ]
}

/// The programme called `name`.
pub fn programme(name: &str) -> Programme {
    programmes()
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no programme {name}"))
}

fn one(name: &'static str, kind: &'static str, segment: Segment) -> Programme {
    Programme {
        name,
        kind,
        segments: vec![segment],
    }
}

fn segment(
    (width, height, fps): (u32, u32, u32),
    seconds: f64,
    video: String,
    audio: String,
    channels: u32,
    encoding: Encoding,
) -> Segment {
    Segment {
        width,
        height,
        fps,
        seconds,
        video,
        audio,
        channels,
        encoding,
    }
}

/// The left-channel expression of a stereo `aevalsrc` expression pair.
fn left(stereo: &str) -> &str {
    stereo.split('|').next().unwrap_or(stereo)
}

/// Stereo programme sound from `aevalsrc` expressions `L|R`.
fn eval_audio(exprs: &str, rate: u32) -> String {
    format!("aevalsrc='{exprs}':s={rate}:c=stereo")
}

/// Speech over a bed of music 14 dB down.
fn speech_over_music(rate: u32) -> String {
    format!(
        "aevalsrc='{SPEECH}':s={rate}:c=stereo[as];aevalsrc='{MUSIC}':s={rate}:c=stereo,\
         volume=0.2[am];[as][am]amix=inputs=2:normalize=0"
    )
}

/// A still (one rendered frame of `source`) looped at `fps`; timestamps in a 1/fps time
/// base, as `defect_clips`' static scene (`setpts=N/fps/TB` rounded frames onto neighbours).
fn looped_still(source: &str, fps: u32) -> String {
    format!("{source},trim=end_frame=1,loop=loop=-1:size=1,settb=1/{fps},setpts=N,format=yuv420p")
}

/// A `w`x`h` window panning over a still Mandelbrot of twice the size; `speed` scales the pan.
fn mandelbrot_pan(w: u32, h: u32, fps: u32, speed: f64, x: f64, y: f64) -> String {
    let still = looped_still(
        &format!(
            "mandelbrot=size={}x{}:rate={fps}:maxiter=120:start_x={x}:start_y={y}:start_scale=1.2",
            2 * w,
            2 * h
        ),
        fps,
    );
    format!(
        "{still},crop={w}:{h}:x='(iw-ow)*(0.5+0.45*sin(t*{a})*cos(t*{b}))':\
         y='(ih-oh)*(0.5+0.4*sin(t*{c}+1))'",
        a = 0.9 * speed,
        b = 0.31 * speed,
        c = 0.6 * speed
    )
}

/// Sports: fast pans over a detailed field at 50p, four players, a ball and a score bug;
/// crowd (pink noise) and commentary.
fn sport() -> Programme {
    let (w, h, f) = (1280, 720, 50);
    let mut v = format!(
        "{},noise=alls=3:allf=t[vf]",
        mandelbrot_pan(w, h, f, 1.6, -0.75, 0.1)
    );
    let players = [
        ("white", "300+250*sin(t*1.7)", "400+120*sin(t*1.1)"),
        ("white", "700+300*sin(t*1.3+1)", "300+150*sin(t*0.9)"),
        ("red", "500+350*sin(t*1.5+2)", "450+100*sin(t*1.9)"),
        ("red", "900+200*sin(t*2.1)", "250+180*sin(t*1.2+2)"),
    ];
    let mut last = "vf".to_owned();
    for (i, (c, x, y)) in players.iter().enumerate() {
        v.push_str(&format!(
            ";color=c={c}:size=22x48:rate={f}[vp{i}];[{last}][vp{i}]overlay=x='{x}':y='{y}'[vo{i}]"
        ));
        last = format!("vo{i}");
    }
    v.push_str(&format!(
        ";color=c=yellow:size=14x14:rate={f}[vb];[{last}][vb]overlay=x='640+500*sin(t*2.9)':\
         y='360+250*sin(t*2.3)',drawbox=x=40:y=30:w=300:h=46:color=black@0.7:t=fill,\
         drawtext=fontfile={FONT_BOLD}:text='HOME 2 - 1 AWAY':x=54:y=40:fontsize=26:fontcolor=white"
    ));
    let audio = format!(
        "anoisesrc=r=48000:c=pink:a=0.05:seed=11,aformat=channel_layouts=stereo[ac];\
         {}[ap];[ac][ap]amix=inputs=2:normalize=0",
        eval_audio(SPEECH, 48000)
    );
    let enc = Encoding::new(Codec::H264, 6000, true, false, AudioCodec::Aac);
    one(
        "sport",
        "high motion",
        segment((w, h, f), 150.0, v, audio, 2, enc),
    )
}

/// A studio set with a presenter (head, body, talking mouth) swaying slightly and a lower
/// third; `variant` moves and recolours it (0: news studio, 1: interview two-shot).
fn studio_picture(w: u32, h: u32, f: u32, variant: u32) -> String {
    let (bg, desk, skin) = match variant {
        0 => ("0x1c2c48", "0x5a4a3a", "0xc08a6a"),
        _ => ("0x3a3028", "0x2a2a2a", "0xa87858"),
    };
    let x0 = w * 2 / 5 + variant * w / 5;
    let hx = format!("{x0}+8*sin(2*PI*0.23*t)+3*sin(2*PI*0.9*t)");
    let hy = format!("{}+2*sin(2*PI*0.4*t)", h / 4);
    let mut v = format!(
        "color=c={bg}:size={w}x{h}:rate={f},\
         drawbox=x=0:y={dy}:w={w}:h={dh}:color={desk}:t=fill,\
         drawbox=x={sx}:y={sy}:w={sw}:h={sh}:color=0x4a6a9a:t=fill,\
         drawtext=fontfile={FONT_BOLD}:text='MARKETS':x={sx}+20:y={sy}+20:fontsize=28:fontcolor=white,\
         noise=alls=3:allf=t[vs];\
         color=c=0x202028:size={bw}x{bh}:rate={f}[vbody];\
         color=c={skin}:size={hw}x{hh}:rate={f}[vhead];\
         color=c=0x602020:size={mw}x{mh}:rate={f}[vmouth];\
         [vs][vbody]overlay=x='{hx}-{bo}':y='{hy}+{hh}'[v1];\
         [v1][vhead]overlay=x='{hx}':y='{hy}'[v2];\
         [v2][vmouth]overlay=x='{hx}+{mx}':y='{hy}+{my}':\
         enable='gt(sin(2*PI*3.7*t),0)*gt(sin(2*PI*0.45*t),-0.6)'",
        dy = h * 3 / 4,
        dh = h / 4,
        sx = w / 16,
        sy = h / 8,
        sw = w / 4,
        sh = h / 4,
        bw = w / 3,
        bh = h / 2,
        bo = w / 3 / 2 - w / 12,
        hw = w / 6,
        hh = h / 4,
        mw = w / 20,
        mh = h / 50,
        mx = w / 12 - w / 40,
        my = h / 6,
    );
    let name = match variant {
        0 => "Anna Berg  Economics Editor",
        _ => "Jon Ekdahl  Chief Executive",
    };
    v.push_str(&format!(
        ",drawbox=x={lx}:y={ly}:w={lw}:h={lh}:color=0x0a3d8f@0.9:t=fill,\
         drawtext=fontfile={FONT}:text='{name}':x={lx}+16:y={ly}+{lh}/4:fontsize={fs}:fontcolor=white",
        lx = w / 18,
        ly = h * 3 / 4,
        lw = w * 3 / 4,
        lh = h / 9,
        fs = h / 20,
    ));
    v
}

fn studio() -> Programme {
    let enc = Encoding::new(Codec::Mpeg2, 5000, true, false, AudioCodec::Mp2);
    let v = studio_picture(720, 576, 25, 0);
    let a = eval_audio(SPEECH, 48000);
    one(
        "studio",
        "talking head",
        segment((720, 576, 25), 150.0, v, a, 2, enc),
    )
}

fn night() -> Programme {
    let v = "testsrc2=size=1280x720:rate=25,format=yuv420p,\
             lutyuv=y='16+(val-16)*0.2':u='128+(val-128)*0.4':v='128+(val-128)*0.4',\
             noise=alls=5:allf=t"
        .to_owned();
    let a = format!(
        "anoisesrc=r=48000:c=brown:a=0.03:seed=5,aformat=channel_layouts=stereo[aw];\
         {}[ad];[aw][ad]amix=inputs=2:normalize=0",
        eval_audio(SPEECH, 48000)
    );
    let enc = Encoding::new(Codec::H264, 4000, false, true, AudioCodec::Aac);
    one(
        "night",
        "dark scene",
        segment((1280, 720, 25), 150.0, v, a, 2, enc),
    )
}

/// Cartoon: flat shapes on a flat sky and ground, drawn at 12.5 fps and shown on twos; all
/// motion holds for 1.4 s every 9 s (`T` is the animation's own clock).
fn cartoon() -> Programme {
    let t = "(t-clip(mod(t,9)-6,0,1.4)-1.4*floor(t/9))";
    let r = "25/2";
    let v = format!(
        "color=c=0x87ceeb:size=720x576:rate={r},\
         drawbox=x=0:y=400:w=720:h=176:color=0x3cb043:t=fill,\
         drawbox=x=560:y=40:w=80:h=80:color=0xffd700:t=fill[vbg];\
         color=c=white:size=140x50:rate={r}[vc];color=c=0xff4040:size=90x90:rate={r}[va];\
         color=c=0x4040ff:size=60x120:rate={r}[vb];\
         [vbg][vc]overlay=x='mod({t}*30,860)-140':y=60[v1];\
         [v1][va]overlay=x='320+200*sin({t}*1.3)':y='310-abs(150*sin({t}*2.6))'[v2];\
         [v2][vb]overlay=x='100+mod({t}*80,520)':y=300,fps=25,format=yuv420p"
    );
    let a = format!(
        "{},volume=0.8[am];aevalsrc='0.2*sin(2*PI*(300+400*mod(t,1.5))*t)*lt(mod(t,4.5),0.3)':s=48000:c=stereo[ab];\
         [am][ab]amix=inputs=2:normalize=0",
        eval_audio(MUSIC, 48000)
    );
    let enc = Encoding::new(Codec::H264, 3000, false, false, AudioCodec::Aac);
    one(
        "cartoon",
        "cartoon, flat colours, on twos",
        segment((720, 576, 25), 150.0, v, a, 2, enc),
    )
}

/// Names and roles of the credits roll.
const CREDITS: [(&str, &str); 16] = [
    ("Director", "Maria Lindqvist"),
    ("Producer", "Thomas Becker"),
    ("Director of Photography", "Karin Holm"),
    ("Editor", "Paolo Ricci"),
    ("Sound Recordist", "Ingrid Moe"),
    ("Production Designer", "Ahmed Saleh"),
    ("Costume Designer", "Lucie Martin"),
    ("Camera Operator", "Jens Olsen"),
    ("Gaffer", "Ruth Adler"),
    ("Script Supervisor", "Nina Koval"),
    ("Colourist", "Samuel Price"),
    ("Composer", "Elena Rossi"),
    ("Casting", "Marta Nowak"),
    ("Location Manager", "Ole Berg"),
    ("Visual Effects", "Hana Sato"),
    ("Music Supervisor", "Ivo Petrov"),
];

/// Credits: a roll of headings and names (2324 px tall), white on black, scrolling up at
/// 60 px/s and passing once every 51 s with about 1.2 s of plain black between passes (the
/// first version's 120 px bottom margin left 2.7 s, longer than black's 2 s minimum).
fn credits() -> Programme {
    let (w, h, f) = (1280, 720, 25);
    let mut lines = String::new();
    let mut y = 40;
    for (i, (role, name)) in CREDITS.iter().cycle().take(40).enumerate() {
        if i % 8 == 0 {
            lines.push_str(&format!(
                ",drawtext=fontfile={FONT_BOLD}:text='PART {}':x=(w-tw)/2:y={y}:fontsize=34:fontcolor=white",
                i / 8 + 1
            ));
            y += 96;
        }
        lines.push_str(&format!(
            ",drawtext=fontfile={FONT}:text='{role}':x=w/2-tw-30:y={y}:fontsize=26:fontcolor=0xdddddd,\
             drawtext=fontfile={FONT}:text='{name}':x=w/2+30:y={y}:fontsize=26:fontcolor=white"
        ));
        y += 44;
    }
    let roll = format!("color=c=black:size={w}x{}:rate={f}{lines}", y + 20);
    let v = format!(
        "{}[vroll];color=c=black:size={w}x{h}:rate={f}[vbk];\
         [vbk][vroll]overlay=x=0:y='H-mod(t*60,h+H)',format=yuv420p",
        looped_still(&roll, f)
    );
    let a = format!("{},volume=1.2", eval_audio(MUSIC, 48000));
    let enc = Encoding::new(Codec::H264, 3000, true, true, AudioCodec::Aac);
    one(
        "credits",
        "scrolling credits",
        segment((w, h, f), 150.0, v, a, 2, enc),
    )
}

/// Slideshow: 15 stills (Mandelbrot details, recoloured), each with a Ken Burns slow zoom and
/// pan for 11 s, cross-faded over 1 s: 151 s.
fn slideshow() -> Programme {
    let (w, h, f) = (1280, 720, 25);
    let spots = [
        (-0.743643887, 0.131825904, 0.02),
        (-0.75, 0.1, 0.3),
        (-1.25066, 0.02012, 0.01),
        (-0.1011, 0.9563, 0.05),
        (0.275, 0.0, 0.1),
    ];
    let mut v = String::new();
    for i in 0..15 {
        let (x, y, s) = spots[i % 5];
        let dx = if i % 2 == 0 { "0.6" } else { "-0.6" };
        v.push_str(&format!(
            "mandelbrot=size=1600x900:rate={f}:maxiter=150:start_x={x}:start_y={y}:\
             start_scale={s}:end_scale={s},trim=end_frame=1,hue=h={}:s=0.8,format=yuv420p,\
             zoompan=z='1+0.0009*on':x='iw/2-iw/zoom/2+{dx}*on':y='ih/2-ih/zoom/2':\
             d=275:s={w}x{h}:fps={f}[vs{i}];",
            i * 47 % 360
        ));
    }
    let mut last = "vs0".to_owned();
    for i in 1..15 {
        v.push_str(&format!(
            "[{last}][vs{i}]xfade=transition=fade:duration=1:offset={}[vx{i}];",
            10 * i
        ));
        last = format!("vx{i}");
    }
    v.push_str(&format!("[{last}]format=yuv420p"));
    let enc = Encoding::new(Codec::Mpeg2, 8000, false, true, AudioCodec::Ac3);
    one(
        "slideshow",
        "slideshow, Ken Burns, cross-fades",
        segment((w, h, f), 151.0, v, speech_over_music(48000), 2, enc),
    )
}

/// Dips to black: (fade-out start, black hold) with 0.5 s fades.
const DIPS: [(f64, f64); 4] = [(12.0, 0.5), (45.0, 1.0), (80.0, 1.3), (115.0, 0.8)];

/// Drama with dips to black shorter than the black and silence minimum (2 s): fades of 0.5 s,
/// holds of 0.5-1.3 s; the sound dips to digital silence with the picture.
fn fades() -> Programme {
    let mut v = "testsrc2=size=720x576:rate=25,format=yuv420p,eq=saturation=0.6,\
                 noise=alls=4:allf=t"
        .to_owned();
    let mut gain = Vec::new();
    for (a, hold) in DIPS {
        let (b, c) = (a + 0.5 + hold, a + 1.0 + hold);
        v.push_str(&format!(
            ",fade=t=out:st={a}:d=0.5:enable='between(t,{a},{b})',\
             fade=t=in:st={b}:d=0.5:enable='between(t,{b},{c})'"
        ));
        let mid = a + 0.5 + hold / 2.0;
        gain.push(format!("clip((abs(t-{mid})-{})/0.5,0,1)", hold / 2.0));
    }
    let a = format!(
        "{},volume='{}':eval=frame",
        speech_over_music(48000),
        gain.join("*")
    );
    let enc = Encoding::new(Codec::Mpeg2, 4000, false, true, AudioCodec::Mp2);
    one(
        "fades",
        "short fades to black",
        segment((720, 576, 25), 150.0, v, a, 2, enc),
    )
}

/// Ad break: the studio programme in 720x576 (60 s), a 1920x1080 ad with 44.1 kHz sound and
/// five black frames at each end (30 s), the programme again (60 s); three separate encodes
/// joined byte for byte, as a crude splicer would.
fn splice() -> Programme {
    let prog = || {
        let enc = Encoding::new(Codec::H264, 2500, true, false, AudioCodec::Aac);
        let a = eval_audio(SPEECH, 48000);
        segment(
            (720, 576, 25),
            60.0,
            studio_picture(720, 576, 25, 0),
            a,
            2,
            enc,
        )
    };
    let ad_v = format!(
        "testsrc2=size=1920x1080:rate=25,format=yuv420p,hue=s=1.3,\
         drawtext=fontfile={FONT_BOLD}:text='MEGA SALE':x=(w-tw)/2:y=h*0.7:fontsize=120:fontcolor=yellow,\
         drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,0.2)+gte(t,29.8)'"
    );
    let mut ad_enc = Encoding::new(Codec::H264, 6000, false, false, AudioCodec::Aac);
    ad_enc.sample_rate = 44100;
    let ad_a = format!("{},volume=1.4", eval_audio(MUSIC, 44100));
    Programme {
        name: "splice",
        kind: "ad break, format changes",
        segments: vec![
            prog(),
            segment((1920, 1080, 25), 30.0, ad_v, ad_a, 2, ad_enc),
            prog(),
        ],
    }
}

/// `tinterlace` weaving 50 progressive frames/s into 25 top-field-first frames/s.
const WEAVE: &str = ",tinterlace=mode=interleave_top,setfield=tff";

fn stadium_1080i() -> Programme {
    let v = format!(
        "{},drawtext=fontfile={FONT_BOLD}:text='LIVE':x=60:y=50:fontsize=48:fontcolor=white{WEAVE}",
        mandelbrot_pan(1920, 1080, 50, 1.2, -1.25066, 0.02012)
    );
    let a = format!(
        "anoisesrc=r=48000:c=pink:a=0.06:seed=3,aformat=channel_layouts=stereo[ac];\
         {}[ap];[ac][ap]amix=inputs=2:normalize=0",
        eval_audio(SPEECH, 48000)
    );
    let enc = Encoding::new(Codec::Mpeg2, 15000, true, false, AudioCodec::Mp2).interlaced();
    one(
        "stadium-1080i",
        "interlaced 1080i, MPEG-2",
        segment((1920, 1080, 25), 120.0, v, a, 2, enc),
    )
}

fn news_1080i() -> Programme {
    let v = format!("testsrc2=size=1920x1080:rate=50,format=yuv420p,noise=alls=2:allf=t{WEAVE}");
    let enc = Encoding::new(Codec::H264, 8000, false, true, AudioCodec::Aac).interlaced();
    one(
        "news-1080i",
        "interlaced 1080i, H.264 MBAFF",
        segment((1920, 1080, 25), 120.0, v, speech_over_music(48000), 2, enc),
    )
}

/// 5.1 drama: music in FL/FR, dialogue in C, LFE digitally silent, room tone in the
/// surrounds at about -50 dBFS.
fn drama_51() -> Programme {
    let v = format!(
        "{},eq=saturation=0.7:gamma=0.9,noise=alls=4:allf=t",
        mandelbrot_pan(1024, 576, 25, 0.25, -0.1011, 0.9563)
    );
    let mut music = MUSIC.split('|');
    let (fl, fr) = (music.next().unwrap_or("0"), music.next().unwrap_or("0"));
    let room = |f1: u32, f2: u32| {
        format!("0.003*sin(2*PI*{f1}*t)*(0.6+0.4*sin(2*PI*0.13*t))+0.002*sin(2*PI*{f2}*t)")
    };
    let a = format!(
        "aevalsrc='0.4*({fl})|0.4*({fr})|{c}|0|{sl}|{sr}':s=48000:c=5.1",
        c = left(SPEECH),
        sl = room(97, 151),
        sr = room(103, 163)
    );
    let enc = Encoding::new(Codec::H264, 3500, false, false, AudioCodec::Ac3);
    one(
        "drama-5.1",
        "5.1, quiet surrounds, silent LFE",
        segment((1024, 576, 25), 150.0, v, a, 6, enc),
    )
}

fn interview_mono() -> Programme {
    let s = left(SPEECH);
    let a = eval_audio(&format!("{s}|{s}"), 48000);
    let enc = Encoding::new(Codec::Mpeg2, 4500, true, true, AudioCodec::Mp2);
    one(
        "interview-mono",
        "mono in stereo",
        segment(
            (720, 576, 25),
            150.0,
            studio_picture(720, 576, 25, 1),
            a,
            2,
            enc,
        ),
    )
}

/// Concert: slowly moving stage colours and spotlights; music whose every 50 s holds a
/// pianissimo of 14 s at -25 dB (about -48 dBFS), with 3 s crescendo and diminuendo.
fn concert() -> Programme {
    let (w, h, f) = (1280, 720, 25);
    let v = format!(
        "gradients=size={w}x{h}:rate={f}:c0=0x100020:c1=0x503070:c2=0x000010:nb_colors=3:\
         speed=0.02:seed=4,format=yuv420p[vg];\
         color=c=white@0.35:size=220x720:rate={f},format=yuva420p[vl];\
         [vg][vl]overlay=x='530+300*sin(t*0.21)':y=0,\
         drawbox=x=560:y=420:w=60:h=240:color=0x101010:t=fill,\
         drawbox=x=700:y=440:w=50:h=220:color=0x101010:t=fill,noise=alls=3:allf=t"
    );
    let env = "1-(1-0.056)*clip((mod(t,50)-28)/3,0,1)*clip((48-mod(t,50))/3,0,1)";
    let a = format!("{},volume='{env}':eval=frame", eval_audio(MUSIC, 48000));
    let enc = Encoding::new(Codec::H264, 4000, true, true, AudioCodec::Aac);
    one(
        "concert",
        "music with long quiet passages",
        segment((w, h, f), 150.0, v, a, 2, enc),
    )
}
