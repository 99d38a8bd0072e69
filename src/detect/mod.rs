//! Defect detectors: per-frame statistics in, edge-triggered defect events out.
//!
//! Statistics come from the GPU (or its CPU port, `cpu`); each detector here is CPU logic: a
//! per-frame verdict with value hysteresis, then a [`DefectTracker`] that applies the minimum
//! duration and back-dates starts and ends to the first frame of each change.

pub mod baseline;
pub mod black;
pub mod blockiness;
pub mod blur;
pub mod colorbars;
pub mod cpu;
pub mod flat;
pub mod freeze;
pub mod letterbox;
pub mod stutter;
pub mod tracker;

pub use tracker::{DefectTracker, Sample, Transition};

use crate::config::DetectorsConfig;
use crate::stats::{FrameStats, StatParams};

/// Detector names: the `detector` label of metrics and events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    Black,
    Freeze,
    Silence,
    Flat,
    Colorbars,
    Blur,
    Blockiness,
    Letterbox,
    Stutter,
    Loudness,
    Clipping,
    Channel,
    AudioLoss,
    AvSync,
    Stall,
    Bitrate,
    PlaylistStale,
    Sequence,
    SegmentDuration,
    HttpErrors,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 20] = [
        Self::Black,
        Self::Freeze,
        Self::Silence,
        Self::Flat,
        Self::Colorbars,
        Self::Blur,
        Self::Blockiness,
        Self::Letterbox,
        Self::Stutter,
        Self::Loudness,
        Self::Clipping,
        Self::Channel,
        Self::AudioLoss,
        Self::AvSync,
        Self::Stall,
        Self::Bitrate,
        Self::PlaylistStale,
        Self::Sequence,
        Self::SegmentDuration,
        Self::HttpErrors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Black => "black",
            Self::Freeze => "freeze",
            Self::Silence => "silence",
            Self::Flat => "flat",
            Self::Colorbars => "colorbars",
            Self::Blur => "blur",
            Self::Blockiness => "blockiness",
            Self::Letterbox => "letterbox",
            Self::Stutter => "stutter",
            Self::Loudness => "loudness",
            Self::Clipping => "clipping",
            Self::Channel => "channel",
            Self::AudioLoss => "audio_loss",
            Self::AvSync => "av_sync",
            Self::Stall => "stall",
            Self::Bitrate => "bitrate",
            Self::PlaylistStale => "playlist_stale",
            Self::Sequence => "sequence",
            Self::SegmentDuration => "segment_duration",
            Self::HttpErrors => "http_errors",
        }
    }
}

impl std::fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

/// Per-frame readings the stream exports as gauges.
#[derive(Clone, Copy, Debug, Default)]
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
    /// `decode_errors`: errors the decoder reported since the previous frame.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        decode_errors: u64,
        out: &mut Vec<Transition>,
    ) -> VideoReadings {
        let black = self.black.observe(at, stats, out);
        let flat = self.flat.observe(at, stats, black, out);
        let bars = self.colorbars.observe(at, stats, black || flat, out);
        let lost = black || flat || bars;
        self.letterbox.observe(at, stats, black || flat, out);
        // Against the normal detail before this frame moves it.
        let relative_detail = self.blur.relative_detail(stats);
        self.blur.observe(at, stats, lost, out);
        self.blockiness.observe(at, stats, decode_errors, lost, out);
        self.freeze.observe(at, stats, lost, out);
        self.stutter.observe(at, stats, lost, out);
        VideoReadings {
            relative_detail,
            fps: self.stutter.fps(),
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
        out.extend(self.freeze.tracker.finish(at));
        out.extend(self.stutter.tracker.finish(at));
    }
}
