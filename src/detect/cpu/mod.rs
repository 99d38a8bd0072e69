//! CPU ports of the statistics shaders, and [`CpuBackend`], the backend that runs them
//! (`--backend cpu`, or `auto` without a GPU).

mod frame_stats;

use std::collections::HashMap;

pub use frame_stats::{BLOCK_MIN_STEP, EDGE_THRESHOLD, frame_stats_cpu, reduce_rows, row_partial};

use crate::frame::VideoFrame;
use crate::gpu::types::RowPartial;
use crate::perf::{PERF, Stage};
use crate::stats::{BatchItem, EngineError, FrameStats, StatsBackend};

/// Rejects frames whose buffer does not hold what its header claims, with the same rule for
/// both backends so that a frame the CPU accepts is one the GPU accepts too.
pub(crate) fn check_frame(frame: &VideoFrame) -> Result<(), EngineError> {
    let needed = frame.stride.checked_mul(frame.height as usize);
    if !frame.stride.is_multiple_of(crate::frame::ROW_ALIGN)
        || frame.stride < frame.width as usize
        || needed.is_none_or(|n| frame.luma.len() < n)
    {
        return Err(EngineError::Batch(format!(
            "malformed frame {}x{}: stride {} (must be a multiple of {} and at least the width), \
             {} luma bytes",
            frame.width,
            frame.height,
            frame.stride,
            crate::frame::ROW_ALIGN,
            frame.luma.len()
        )));
    }
    Ok(())
}

/// Computes the statistics on the CPU with the shader ports, keeping each slot's last frame.
#[derive(Default)]
pub struct CpuBackend {
    history: HashMap<u32, VideoFrame>,
    /// Scratch, kept between calls so that `analyze` does not allocate once warmed up.
    last_in_batch: HashMap<u32, usize>,
    partials: Vec<RowPartial>,
}

impl CpuBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

impl StatsBackend for CpuBackend {
    fn describe(&self) -> String {
        "CPU (shader ports, one thread)".to_owned()
    }

    fn analyze(
        &mut self,
        batch: &[BatchItem<'_>],
        out: &mut Vec<FrameStats>,
    ) -> Result<(), EngineError> {
        out.clear();
        for item in batch {
            check_frame(item.frame)?;
        }
        let started = std::time::Instant::now();
        self.last_in_batch.clear();
        for (i, item) in batch.iter().enumerate() {
            let prev = match self.last_in_batch.insert(item.slot, i) {
                Some(j) => Some(batch[j].frame),
                None => self.history.get(&item.slot),
            };
            out.push(frame_stats::frame_stats_with(
                item.frame,
                prev,
                item.params,
                &mut self.partials,
            ));
        }
        let computed = std::time::Instant::now();
        PERF.add(Stage::Gpu, computed - started, batch.len() as u64);
        for (&slot, &i) in &self.last_in_batch {
            let frame = batch[i].frame;
            match self.history.get_mut(&slot) {
                // Reuse the slot's buffer: one copy per stream per batch, no allocation.
                Some(h) => {
                    h.luma.clear();
                    h.luma.extend_from_slice(&frame.luma);
                    h.width = frame.width;
                    h.height = frame.height;
                    h.stride = frame.stride;
                    h.pts = frame.pts;
                    h.decoded_at = frame.decoded_at;
                }
                None => {
                    self.history.insert(slot, frame.clone());
                }
            }
        }
        // Keeping the references is this backend's counterpart of the upload.
        PERF.add(Stage::Upload, computed.elapsed(), batch.len() as u64);
        Ok(())
    }

    fn release(&mut self, slot: u32) {
        self.history.remove(&slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::StatParams;
    use std::time::{Duration, Instant};

    const PARAMS: StatParams = StatParams {
        dark_threshold: 16,
        noise_threshold: 0,
    };

    fn frame(width: u32, height: u32, value: u8) -> VideoFrame {
        let plane = vec![value; (width * height) as usize];
        VideoFrame::from_plane(
            width,
            height,
            &plane,
            width as usize,
            Duration::ZERO,
            Instant::now(),
        )
        .unwrap()
    }

    fn item(slot: u32, frame: &VideoFrame) -> BatchItem<'_> {
        BatchItem {
            slot,
            frame,
            params: PARAMS,
        }
    }

    #[test]
    fn slots_keep_their_own_history_within_and_across_batches() {
        let (a0, a1, b0) = (frame(7, 3, 10), frame(7, 3, 13), frame(7, 3, 100));
        let mut backend = CpuBackend::new();
        let mut out = Vec::new();
        backend
            .analyze(&[item(0, &a0), item(1, &b0), item(0, &a1)], &mut out)
            .unwrap();
        assert_eq!(
            out.iter().map(|s| s.has_prev).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(out[2].diff_sum, 3 * 21);
        assert_eq!(out[2].changed_pixels, 21);

        // Next batch: slot 0 compares against a1, slot 1 against b0.
        backend
            .analyze(&[item(1, &a0), item(0, &a0)], &mut out)
            .unwrap();
        assert_eq!(out[0].diff_sum, 90 * 21);
        assert_eq!(out[1].diff_sum, 3 * 21);

        backend.release(0);
        backend.analyze(&[item(0, &a0)], &mut out).unwrap();
        assert!(!out[0].has_prev);
    }

    #[test]
    fn resolution_change_restarts_the_difference() {
        let (small, big) = (frame(5, 2, 0), frame(6, 2, 0));
        let mut backend = CpuBackend::new();
        let mut out = Vec::new();
        backend
            .analyze(&[item(3, &small), item(3, &big), item(3, &big)], &mut out)
            .unwrap();
        assert_eq!(
            out.iter().map(|s| s.has_prev).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(out[0].dark_pixels, 10);
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut f = frame(5, 2, 0);
        f.luma.truncate(10);
        let mut out = Vec::new();
        let err = CpuBackend::new().analyze(&[item(0, &f)], &mut out);
        assert!(matches!(err, Err(EngineError::Batch(_))));
    }
}
