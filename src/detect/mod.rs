//! Defect detectors: per-frame statistics in, edge-triggered defect events out.
//!
//! Statistics come from the GPU (or its CPU port, `cpu`); each detector here is CPU logic: a
//! per-frame verdict with value hysteresis, then a [`DefectTracker`] that applies the minimum
//! duration and back-dates starts and ends to the first frame of each change.

pub mod black;
pub mod cpu;
pub mod freeze;
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
    Loudness,
    Clipping,
    Channel,
    AudioLoss,
    AvSync,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 8] = [
        Self::Black,
        Self::Freeze,
        Self::Silence,
        Self::Loudness,
        Self::Clipping,
        Self::Channel,
        Self::AudioLoss,
        Self::AvSync,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Black => "black",
            Self::Freeze => "freeze",
            Self::Silence => "silence",
            Self::Loudness => "loudness",
            Self::Clipping => "clipping",
            Self::Channel => "channel",
            Self::AudioLoss => "audio_loss",
            Self::AvSync => "av_sync",
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
    freeze: freeze::FreezeDetector,
}

impl VideoDetectors {
    pub fn new(config: &DetectorsConfig) -> Self {
        Self {
            black: black::BlackDetector::new(config.black.clone()),
            freeze: freeze::FreezeDetector::new(config.freeze.clone()),
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
    pub fn observe(&mut self, at: Sample, stats: &FrameStats, out: &mut Vec<Transition>) {
        let black = self.black.observe(at, stats, out);
        // A black picture is also a still one; it is reported as black only.
        self.freeze.observe(at, stats, black, out);
    }

    /// Closes every active defect at `at` (end of stream, restart, shutdown).
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Transition>) {
        out.extend(self.black.tracker.finish(at));
        out.extend(self.freeze.tracker.finish(at));
    }
}
