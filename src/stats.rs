//! The contract between the detectors and the statistics backends (GPU or CPU).
//!
//! Statistics are exact integers so that the GPU shaders and their CPU ports can be compared
//! bit for bit; the detectors derive ratios from them.

use crate::frame::VideoFrame;

/// Per-frame thresholds the statistics pass needs; they come from the stream's detector config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatParams {
    /// A pixel is dark when its luma is at most this value.
    pub dark_threshold: u8,
    /// A pixel has changed since the previous frame when |difference| exceeds this value.
    pub noise_threshold: u8,
}

/// Statistics of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    pub pixels: u64,
    pub luma_sum: u64,
    pub dark_pixels: u64,
    /// False for the first frame of a stream (or after a resolution change): no difference.
    pub has_prev: bool,
    /// Sum over pixels of |luma - previous luma|.
    pub diff_sum: u64,
    /// Pixels whose |luma - previous luma| exceeds `noise_threshold`.
    pub changed_pixels: u64,
}

impl FrameStats {
    pub fn luma_mean(&self) -> f64 {
        ratio(self.luma_sum, self.pixels)
    }
    pub fn dark_ratio(&self) -> f64 {
        ratio(self.dark_pixels, self.pixels)
    }
    pub fn mean_abs_diff(&self) -> f64 {
        ratio(self.diff_sum, self.pixels)
    }
    pub fn changed_ratio(&self) -> f64 {
        ratio(self.changed_pixels, self.pixels)
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// One frame to analyse. `slot` identifies the stream whose previous frame is the reference for
/// the difference statistics; several frames of one slot may appear in a batch, in order.
#[derive(Clone, Copy, Debug)]
pub struct BatchItem<'a> {
    pub slot: u32,
    pub frame: &'a VideoFrame,
    pub params: StatParams,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no GPU adapter found (wgpu): {0}; use --backend cpu to run without a GPU")]
    NoAdapter(String),
    #[error("GPU device request failed: {0}")]
    Device(String),
    #[error("shader {file} failed to compile: {message}")]
    Shader { file: &'static str, message: String },
    #[error("GPU batch failed: {0}")]
    Batch(String),
}

/// A backend computes [`FrameStats`] for a batch of frames from any number of streams, keeping
/// each slot's last frame as the reference for the next batch.
pub trait StatsBackend: Send {
    /// Human-readable description (adapter name and backend) printed at start-up.
    fn describe(&self) -> String;

    /// Fills `out` with one entry per item, in order. One call is one GPU submission.
    fn analyze(
        &mut self,
        batch: &[BatchItem<'_>],
        out: &mut Vec<FrameStats>,
    ) -> Result<(), EngineError>;

    /// Forgets the reference frame of `slot` (stream restarted or removed).
    fn release(&mut self, slot: u32);
}

/// Which backend computes the statistics (`--backend`, config `backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// The GPU when an adapter exists, otherwise the CPU port (with a warning).
    #[default]
    Auto,
    Gpu,
    Cpu,
}
