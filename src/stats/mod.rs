//! The contract between the detectors and the statistics backends (GPU or CPU).
//!
//! Statistics are exact integers so that the GPU shaders and their CPU ports can be compared
//! bit for bit; the detectors derive ratios from them.

pub mod cpu;
pub mod gpu;

use crate::frame::VideoFrame;

/// Per-frame thresholds the statistics pass needs; they come from the stream's detector config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatParams {
    /// A pixel is dark when its luma is at most this value.
    pub dark_threshold: u8,
    /// A pixel has changed since the previous frame when |difference| exceeds this value.
    pub noise_threshold: u8,
}

/// Dark bars at the edges of a frame: rows or columns with no pixel above the dark threshold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bars {
    pub top: u32,
    pub bottom: u32,
    pub left: u32,
    pub right: u32,
}

/// Statistics of one frame. What each one is for is described in `shaders/frame_stats.wgsl`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    pub width: u32,
    pub height: u32,
    pub pixels: u64,
    pub luma_sum: u64,
    pub luma_sq_sum: u64,
    pub dark_pixels: u64,
    /// False for the first frame of a stream (or after a resolution change): no difference.
    pub has_prev: bool,
    /// Sum over pixels of |luma - previous luma|.
    pub diff_sum: u64,
    /// Pixels whose |luma - previous luma| exceeds `noise_threshold`.
    pub changed_pixels: u64,
    /// Sum of |luma step| to the right neighbour, and to the neighbour below.
    pub grad_h_sum: u64,
    pub grad_v_sum: u64,
    /// Neighbour steps above the edge threshold, to the right and below.
    pub edges_h: u64,
    pub edges_v: u64,
    /// Block-edge shaped steps on the 8x8 grid, and at the control positions inside blocks.
    pub block_hits: u64,
    pub block_control: u64,
    /// Rows (all but the last) with no strong step to the row below.
    pub quiet_rows: u64,
    pub bars: Bars,
    /// Rows between a row and the one below it in the vertical statistics: 2 when the frame
    /// was interlaced (each field measured on its own), else 1; 0 reads as 1.
    pub field_rows: u32,
}

impl FrameStats {
    pub fn luma_mean(&self) -> f64 {
        ratio(self.luma_sum, self.pixels)
    }
    pub fn luma_stddev(&self) -> f64 {
        if self.pixels == 0 {
            return 0.0;
        }
        let mean = self.luma_mean();
        let mean_sq = self.luma_sq_sum as f64 / self.pixels as f64;
        (mean_sq - mean * mean).max(0.0).sqrt()
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
    /// Mean luma step between neighbours (right plus below): the amount of detail.
    pub fn detail(&self) -> f64 {
        ratio(self.grad_h_sum + self.grad_v_sum, self.pixels)
    }
    /// Strong steps per edge threshold of luma step (right plus below), between 0 and 1: how
    /// much of the detail sits in sharp edges. Blur spreads each edge over several small steps,
    /// so it falls whatever the scene; a plain but sharp scene (a wide shot of sky, a flat
    /// wall, a less detailed slide) has less detail but keeps it.
    pub fn sharpness(&self) -> f64 {
        ratio(
            (self.edges_h + self.edges_v) * u64::from(cpu::EDGE_THRESHOLD),
            self.grad_h_sum + self.grad_v_sum,
        )
    }
    /// Strong steps to the right neighbour, per pixel.
    pub fn edges_h_ratio(&self) -> f64 {
        ratio(self.edges_h, self.pixels)
    }
    /// Strong steps to the neighbour below, per pixel.
    pub fn edges_v_ratio(&self) -> f64 {
        ratio(self.edges_v, self.pixels)
    }
    /// Share of rows that equal the row below up to coding noise (near 1 for colour bars).
    pub fn quiet_row_ratio(&self) -> f64 {
        let rows_with_below = self.height.saturating_sub(self.field_rows.max(1));
        ratio(self.quiet_rows, u64::from(rows_with_below))
    }
    /// Of the block-edge shaped steps found on the 8x8 grid and at the control positions
    /// inside blocks (per position tested), the share on the grid: about 0.5 when the picture
    /// has no block structure (lower for some coded noise), towards 1 when block edges dominate
    /// (macroblocking). None when the frame has too few such steps to tell (a flat picture).
    pub fn blockiness(&self) -> Option<f64> {
        let (grid, control) = block_test_points(self.width, self.height, self.field_rows);
        let on_grid = ratio(self.block_hits, grid);
        let inside = ratio(self.block_control, control);
        // At least one step-shaped edge per 1000 positions tested on average.
        (on_grid + inside >= 0.002).then(|| on_grid / (on_grid + inside))
    }
    /// Block-edge shaped steps per position tested on the 8x8 grid.
    pub fn block_grid_rate(&self) -> f64 {
        ratio(
            self.block_hits,
            block_test_points(self.width, self.height, self.field_rows).0,
        )
    }
    /// Share of the frame inside the dark bars at its edges.
    pub fn active_area_ratio(&self) -> f64 {
        let b = self.bars;
        let h = self.height.saturating_sub(b.top.saturating_add(b.bottom));
        let w = self.width.saturating_sub(b.left.saturating_add(b.right));
        ratio(u64::from(h) * u64::from(w), self.pixels)
    }
}

/// How many pixel pairs the block-edge test examines on the 8x8 grid and at the control
/// positions, for a frame of this size measured `field_rows` rows apart (the shader tests a
/// pair only where both of its neighbours exist).
pub fn block_test_points(width: u32, height: u32, field_rows: u32) -> (u64, u64) {
    let (w, h) = (u64::from(width), u64::from(height));
    // Columns x = 8k (k >= 1) with x + 1 < w; controls x = 8k + 2 with x + 1 < w.
    let grid_cols = if w >= 2 { (w - 2) / 8 } else { 0 };
    let control_cols = if w >= 4 { (w - 4) / 8 + 1 } else { 0 };
    // In each field of `lines` rows: lines y = 8j + 7 with y + 2 < lines; controls y = 8j + 1.
    let fields = u64::from(field_rows.max(1));
    let (mut grid_rows, mut control_rows) = (0, 0);
    for parity in 0..fields.min(h) {
        let lines = (h - parity).div_ceil(fields);
        grid_rows += if lines >= 10 { (lines - 10) / 8 + 1 } else { 0 };
        control_rows += if lines >= 4 { (lines - 4) / 8 + 1 } else { 0 };
    }
    (
        grid_cols * h + grid_rows * w,
        control_cols * h + control_rows * w,
    )
}

/// The rows that one row's vertical statistics read, besides the row itself. Shared by the
/// CPU backends; the shaders compute the same from `FrameDesc::field_rows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VerticalNeighbours {
    /// The next row of the same field, for the steps downwards.
    pub below: Option<usize>,
    /// On the rows where block edges across rows are tested: the rows above and two below,
    /// as the insides of the blocks on either side of the tested pair.
    pub block: Option<(usize, usize)>,
    /// The tested pair straddles the 8-row block grid (else it is a control pair).
    pub on_grid: bool,
}

impl VerticalNeighbours {
    pub fn of(row: usize, height: usize, field_rows: u32) -> Self {
        let step = field_rows.max(1) as usize;
        // The row's index within its field: the block grid of an interlaced picture coded
        // as fields runs through each field.
        let line = row / step;
        let tested = row + 2 * step < height;
        let on_grid = line % 8 == 7 && tested;
        let control = line % 8 == 1 && tested;
        VerticalNeighbours {
            below: (row + step < height).then_some(row + step),
            block: (on_grid || control).then(|| (row - step, row + 2 * step)),
            on_grid,
        }
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

/// A backend computes [`FrameStats`] for batches of frames from any number of streams, keeping
/// each slot's last frame as the reference for the next batch.
///
/// Batches may be pipelined: [`submit`](Self::submit) starts one and returns once its frames
/// have been read (copied to the device, or analysed), [`collect`](Self::collect) hands back the
/// oldest one's statistics. A slot's reference for a batch is its last frame in the batch
/// submitted before it, whether or not that one has been collected yet.
pub trait StatsBackend: Send {
    /// Human-readable description (adapter name and backend) printed at start-up.
    fn describe(&self) -> String;

    /// Tells the backend how many batches the caller keeps in flight, so it can size its
    /// per-submission resources. More may be submitted; the backend then waits for older
    /// ones inside `submit` (keeping their results for `collect`).
    fn set_batches_in_flight(&mut self, batches: usize) {
        let _ = batches;
    }

    /// Whether the backend's work on one batch goes on while the caller gathers the next (a
    /// device does). A backend that does all its work inside `submit` gains nothing from a
    /// second batch in flight: the first one's results would only wait for the second.
    fn overlaps_batches(&self) -> bool {
        false
    }

    /// Starts the statistics of `batch` (one GPU submission, more when it exceeds the
    /// device's binding limits). On error this batch is not in flight; a backend may also fail
    /// the batches still in flight (their `collect` then returns an error) when their results
    /// or the references after them can no longer be trusted.
    fn submit(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError>;

    /// Waits for the oldest batch in flight and fills `out` with one entry per item, in order.
    /// `None` when no batch is in flight.
    fn collect(&mut self, out: &mut Vec<FrameStats>) -> Option<Result<(), EngineError>>;

    /// Batches submitted and not yet collected.
    fn in_flight(&self) -> usize;

    /// `submit` then `collect`, for callers that keep one batch at a time.
    fn analyze(
        &mut self,
        batch: &[BatchItem<'_>],
        out: &mut Vec<FrameStats>,
    ) -> Result<(), EngineError> {
        out.clear();
        if self.in_flight() > 0 {
            return Err(EngineError::Batch(
                "internal: analyze called while batches are in flight; collect them first".into(),
            ));
        }
        self.submit(batch)?;
        self.collect(out).unwrap_or_else(|| {
            Err(EngineError::Batch(
                "internal: a submitted batch is not in flight".into(),
            ))
        })
    }

    /// Forgets the reference frame of `slot` (stream restarted or removed). Batches already
    /// submitted keep the references they were submitted with.
    fn release(&mut self, slot: u32);
}

pub use crate::config::BackendChoice;
