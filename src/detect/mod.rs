//! Defect detectors: per-frame statistics in, edge-triggered defect events out.
//!
//! Statistics come from the GPU (or its CPU port, `cpu`); each detector here is CPU logic: a
//! per-frame verdict with value hysteresis, then a [`DefectTracker`] that applies the minimum
//! duration and back-dates starts and ends to the first frame of each change.

pub mod audio;
pub mod baseline;
pub mod captions;
pub mod tracker;
pub mod transport;
pub mod video;

pub use tracker::{DefectTracker, Sample, Scope, Scoped, Transition};

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
    Tr101290,
    Scte35,
    HlsConformance,
    Captions,
}

impl DetectorKind {
    pub const ALL: [DetectorKind; 24] = [
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
        Self::Tr101290,
        Self::Scte35,
        Self::HlsConformance,
        Self::Captions,
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
            Self::Tr101290 => "tr101290",
            Self::Scte35 => "scte35",
            Self::HlsConformance => "hls_conformance",
            Self::Captions => "captions",
        }
    }
}

impl std::fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
