//! CPU ports of the statistics shaders, and [`CpuBackend`], the backend that runs them
//! (`--backend cpu`, or `auto` without a GPU).

mod fast;
mod frame_stats;

use std::collections::{HashMap, VecDeque};

pub use frame_stats::{BLOCK_MIN_STEP, EDGE_THRESHOLD, frame_stats_cpu, reduce_rows, row_partial};

use crate::frame::VideoFrame;
use crate::perf::{PERF, Stage};
use crate::stats::gpu::types::RowPartial;
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

/// Where an item's reference frame is: nothing, an earlier item of the batch, or the slot's
/// history.
#[derive(Clone, Copy)]
enum Prev {
    None,
    Item(usize),
    History(u32),
}

/// Computes the statistics on the CPU with the shader ports, keeping each slot's last frame.
///
/// A frame's statistics depend only on the frame and its reference, both fixed before the
/// batch starts, so the items are split across worker threads (scoped, one per core up to the
/// batch size) and the results are the same as one thread's; the references are updated after.
pub struct CpuBackend {
    history: HashMap<u32, VideoFrame>,
    threads: usize,
    /// Scratch, kept between calls so that `analyze` does not allocate once warmed up.
    last_in_batch: HashMap<u32, usize>,
    prevs: Vec<Prev>,
    /// Row partials, one buffer per worker.
    partials: Vec<Vec<RowPartial>>,
    /// Results of the batches submitted and not yet collected, oldest first (computed in
    /// `submit`, which is where the work is), and emptied vectors to reuse.
    done: VecDeque<Vec<FrameStats>>,
    spare: Vec<Vec<FrameStats>>,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// One worker per available core.
    pub fn new() -> Self {
        Self::with_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    pub fn with_threads(threads: usize) -> Self {
        let threads = threads.max(1);
        Self {
            history: HashMap::new(),
            threads,
            last_in_batch: HashMap::new(),
            prevs: Vec::new(),
            partials: (0..threads).map(|_| Vec::new()).collect(),
            done: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

impl CpuBackend {
    fn compute(
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
        self.prevs.clear();
        for (i, item) in batch.iter().enumerate() {
            self.prevs
                .push(match self.last_in_batch.insert(item.slot, i) {
                    Some(j) => Prev::Item(j),
                    None if self.history.contains_key(&item.slot) => Prev::History(item.slot),
                    None => Prev::None,
                });
        }
        out.resize(batch.len(), FrameStats::default());
        let history = &self.history;
        let prevs = &self.prevs;
        let compute = |first: usize, out: &mut [FrameStats], partials: &mut Vec<RowPartial>| {
            for (k, slot) in out.iter_mut().enumerate() {
                let i = first + k;
                let prev = match prevs[i] {
                    Prev::None => None,
                    Prev::Item(j) => Some(batch[j].frame),
                    Prev::History(s) => history.get(&s),
                };
                *slot = frame_stats::frame_stats_with(
                    batch[i].frame,
                    prev,
                    batch[i].params,
                    partials,
                    fast::row_partial_fast,
                );
            }
        };
        let workers = self.threads.min(batch.len());
        if workers <= 1 {
            compute(0, out, &mut self.partials[0]);
        } else {
            let per = batch.len().div_ceil(workers);
            let mut spawn_error = None;
            std::thread::scope(|scope| {
                let mut chunks = out
                    .chunks_mut(per)
                    .zip(self.partials.iter_mut())
                    .enumerate();
                // The first chunk runs on this thread; the others on scoped workers.
                let first = chunks.next();
                for (c, (chunk, partials)) in chunks {
                    let spawned = std::thread::Builder::new()
                        .name("streamwatch-cpu".into())
                        .spawn_scoped(scope, move || compute(c * per, chunk, partials));
                    if let Err(e) = spawned {
                        spawn_error.get_or_insert(e);
                    }
                }
                if let Some((_, (chunk, partials))) = first {
                    compute(0, chunk, partials);
                }
            });
            if let Some(e) = spawn_error {
                out.clear();
                return Err(EngineError::Batch(format!(
                    "cannot start a CPU statistics thread: {e}"
                )));
            }
        }
        let computed = std::time::Instant::now();
        PERF.add(Stage::Gpu, computed - started, batch.len() as u64);
        for (&slot, &i) in &self.last_in_batch {
            let frame = batch[i].frame;
            match self.history.get_mut(&slot) {
                // A shared plane (decoded frames) is kept, not copied; an owned one is copied
                // into the slot's buffer, which is reused.
                Some(h) => {
                    h.luma.clone_from(&frame.luma);
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
}

impl StatsBackend for CpuBackend {
    fn describe(&self) -> String {
        format!("CPU (shader ports, {} threads)", self.threads)
    }

    /// A failed batch leaves the references as they were, so the batches before it stand.
    fn submit(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError> {
        let mut out = self.spare.pop().unwrap_or_default();
        match self.compute(batch, &mut out) {
            Ok(()) => {
                self.done.push_back(out);
                Ok(())
            }
            Err(e) => {
                self.spare.push(out);
                Err(e)
            }
        }
    }

    fn collect(&mut self, out: &mut Vec<FrameStats>) -> Option<Result<(), EngineError>> {
        let mut done = self.done.pop_front()?;
        std::mem::swap(out, &mut done);
        done.clear();
        self.spare.push(done);
        Some(Ok(()))
    }

    fn in_flight(&self) -> usize {
        self.done.len()
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

    /// Splitting a batch across workers gives what one thread gives, references included
    /// (several frames of one slot in a batch, and the slot's frame from the previous batch).
    #[test]
    fn workers_give_the_same_statistics_as_one_thread() {
        let frames: Vec<VideoFrame> = (0..7u8).map(|k| frame(36, 20, 20 + 30 * k)).collect();
        let batch: Vec<BatchItem<'_>> = frames
            .iter()
            .enumerate()
            .map(|(k, f)| item((k % 2) as u32, f))
            .collect();
        let (mut one, mut three) = (CpuBackend::with_threads(1), CpuBackend::with_threads(3));
        for _ in 0..2 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            one.analyze(&batch, &mut a).unwrap();
            three.analyze(&batch, &mut b).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.len(), batch.len());
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
        f.luma.to_mut().truncate(10);
        let mut out = Vec::new();
        let err = CpuBackend::new().analyze(&[item(0, &f)], &mut out);
        assert!(matches!(err, Err(EngineError::Batch(_))));
    }
}
