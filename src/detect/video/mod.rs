//! Video detectors: each turns per-frame statistics into a verdict with value hysteresis, and
//! a [`DefectTracker`](crate::detect::DefectTracker) applies the minimum duration.

pub mod black;
pub mod blockiness;
pub mod blur;
pub mod colorbars;
pub mod flat;
pub mod freeze;
pub mod letterbox;
pub mod stutter;

use crate::config::{AnalysisTier, DetectorsConfig};
use crate::detect::{Sample, Transition};
use crate::stats::{FrameStats, StatParams};

/// The video detectors of one stream.
#[derive(Debug)]
pub struct VideoDetectors {
    black: black::BlackDetector,
    flat: flat::FlatDetector,
    colorbars: colorbars::ColorbarsDetector,
    letterbox: letterbox::LetterboxDetector,
    blur: blur::BlurDetector,
    blockiness: blockiness::BlockinessDetector,
    freeze: freeze::FreezeDetector,
    stutter: stutter::StutterDetector,
    /// Picture size and media time of the previous frame, to notice a new format or a splice.
    last_frame: Option<((u32, u32), f64)>,
    /// The tier the frames were decoded in: stutter needs every frame.
    tier: AnalysisTier,
}

/// What the decoder told about a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// Errors the decoder reported since the previous frame.
    pub errors: u64,
    /// The frame was a keyframe: it does not carry earlier damage.
    pub keyframe: bool,
}

/// Per-frame readings the stream exports as gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct VideoReadings {
    /// Detail relative to the stream's normal detail (1 = normal), once known.
    pub relative_detail: Option<f64>,
    /// Frames per second over the last second of media time.
    pub fps: Option<f64>,
    /// The blockiness detector's smoothed grid share of block edges.
    pub blockiness: Option<f64>,
}

impl VideoDetectors {
    pub fn new(config: &DetectorsConfig) -> Self {
        Self {
            black: black::BlackDetector::new(config.black.clone()),
            flat: flat::FlatDetector::new(config.flat.clone()),
            colorbars: colorbars::ColorbarsDetector::new(config.colorbars.clone()),
            letterbox: letterbox::LetterboxDetector::new(config.letterbox.clone()),
            blur: blur::BlurDetector::new(config.blur.clone()),
            blockiness: blockiness::BlockinessDetector::new(config.blockiness.clone()),
            freeze: freeze::FreezeDetector::new(config.freeze.clone()),
            stutter: stutter::StutterDetector::new(config.stutter.clone()),
            last_frame: None,
            tier: AnalysisTier::Full,
        }
    }

    /// The frames that follow were decoded in `tier`. Stutter is judged on every frame only;
    /// freeze compares keyframe with keyframe in the keyframes tier; what is normal for the
    /// picture is learnt anew, since keyframes are sharper and cleaner than the frames between.
    pub fn set_tier(&mut self, tier: AnalysisTier, at: Sample, out: &mut Vec<Transition>) {
        if tier == self.tier {
            return;
        }
        if self.tier == AnalysisTier::Full {
            self.stutter.finish(at, out);
        }
        self.freeze.set_sparse(tier == AnalysisTier::Keyframes, out);
        self.tier = tier;
        self.relearn();
    }

    /// Whether every frame is analysed (what frame-to-frame measures such as flash timing need).
    pub fn every_frame(&self) -> bool {
        self.tier == AnalysisTier::Full
    }

    /// The stream's format changed (codec, frame rate, scan, picture size) or its timeline
    /// broke: what is normal for the picture is learnt anew, so the old content's normal
    /// does not judge the new one.
    pub fn relearn(&mut self) {
        self.blur.relearn();
        self.blockiness.relearn();
        self.letterbox.relearn();
        self.stutter.relearn();
    }

    /// The frame rate the stream's caps declare, if any.
    pub fn set_declared_fps(&mut self, fps: Option<f64>) {
        self.stutter.set_declared_fps(fps);
    }

    /// Relearns on a new picture size or a step back in media time (a splice).
    fn follow_format(&mut self, at: Sample, stats: &FrameStats) {
        let size = (stats.width, stats.height);
        if let Some((last_size, last_media)) = self.last_frame.replace((size, at.media))
            && (last_size != size || at.media < last_media)
        {
            self.relearn();
        }
    }

    /// Thresholds the statistics pass needs for this stream.
    pub fn stat_params(config: &DetectorsConfig) -> StatParams {
        StatParams {
            dark_threshold: config.black.luma_threshold,
            noise_threshold: config.freeze.noise_threshold,
        }
    }

    /// Feeds one frame's statistics; returns the transitions it caused (at most one per detector).
    ///
    /// A picture that is lost (black, flat, bars) is reported as that alone: such pictures are
    /// also still, soft and edge-free, so freeze, blur, blockiness and stutter skip them.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        decoded: Decoded,
        out: &mut Vec<Transition>,
    ) -> VideoReadings {
        self.follow_format(at, stats);
        let black = self.black.observe(at, stats, out);
        let flat = self.flat.observe(at, stats, black, out);
        let bars = self.colorbars.observe(at, stats, black || flat, out);
        let lost = black || flat || bars;
        self.letterbox.observe(at, stats, black || flat, out);
        // Against the normal detail before this frame moves it.
        let relative_detail = self.blur.relative_detail(stats);
        self.blur.observe(at, stats, lost, out);
        self.blockiness.observe(at, stats, decoded, lost, out);
        self.freeze.observe(at, stats, lost, out);
        if self.every_frame() {
            self.stutter.observe(at, stats, lost, out);
        }
        VideoReadings {
            relative_detail,
            fps: self.every_frame().then(|| self.stutter.fps()).flatten(),
            blockiness: self.blockiness.smoothed(),
        }
    }

    /// Closes every active defect at `at` (end of stream, restart, shutdown), keeping what each
    /// detector learnt of the stream's normal picture.
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Transition>) {
        out.extend(self.black.tracker.finish(at));
        out.extend(self.flat.tracker.finish(at));
        out.extend(self.colorbars.tracker.finish(at));
        out.extend(self.letterbox.tracker.finish(at));
        out.extend(self.blur.tracker.finish(at));
        out.extend(self.blockiness.tracker.finish(at));
        self.freeze.finish(at, out);
        self.stutter.finish(at, out);
    }
}
