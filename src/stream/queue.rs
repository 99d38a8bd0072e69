//! The bounded frame queue between a stream's decoder and the engine, and the engine's wake-up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::frame::VideoFrame;
use crate::sync::lock;

/// Frames waiting for the engine. Live streams drop the oldest frame when full (ingest never
/// waits for analysis); `scan` blocks the decoder instead so that every frame is analysed.
pub struct FrameQueue {
    frames: Mutex<VecDeque<(u64, VideoFrame)>>,
    space: Condvar,
    capacity: usize,
    blocking: bool,
}

impl FrameQueue {
    pub fn new(capacity: usize, blocking: bool) -> Self {
        Self {
            frames: Mutex::new(VecDeque::with_capacity(capacity)),
            space: Condvar::new(),
            capacity,
            blocking,
        }
    }

    /// Returns true when a frame was dropped to make room.
    pub fn push(&self, session: u64, frame: VideoFrame, closed: &AtomicBool) -> bool {
        let mut q = lock(&self.frames);
        if self.blocking {
            while q.len() >= self.capacity && !closed.load(Ordering::Relaxed) {
                q = self
                    .space
                    .wait_timeout(q, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let dropped = q.len() >= self.capacity && q.pop_front().is_some();
        q.push_back((session, frame));
        dropped
    }

    pub fn len(&self) -> usize {
        lock(&self.frames).len()
    }

    pub fn half_full(&self) -> bool {
        self.len() * 2 >= self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves up to `max` frames (oldest first) into `out`.
    pub fn take(&self, max: usize, out: &mut Vec<(u64, VideoFrame)>) {
        let mut q = lock(&self.frames);
        let n = max.min(q.len());
        out.extend(q.drain(..n));
        drop(q);
        if n > 0 {
            self.space.notify_all();
        }
    }

    pub fn clear(&self) -> usize {
        let mut q = lock(&self.frames);
        let n = q.len();
        q.clear();
        self.space.notify_all();
        n
    }
}

/// Wakes the engine when any stream queues a frame.
#[derive(Default)]
pub struct Wake {
    pending: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *lock(&self.pending) += 1;
        self.cv.notify_all();
    }

    /// Waits until notified or `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let mut p = lock(&self.pending);
        if *p == 0 {
            p = self
                .cv
                .wait_timeout(p, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *p = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    fn frame(n: u64) -> VideoFrame {
        VideoFrame::from_plane(4, 1, &[0; 4], 4, Duration::from_millis(n), Instant::now())
            .expect("valid frame")
    }

    #[test]
    fn a_full_live_queue_drops_the_oldest_frame() {
        let q = FrameQueue::new(3, false);
        let closed = AtomicBool::new(false);
        let dropped: Vec<bool> = (0..5).map(|n| q.push(1, frame(n), &closed)).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        let mut out = Vec::new();
        q.take(10, &mut out);
        let kept: Vec<u128> = out.iter().map(|(_, f)| f.pts.as_millis()).collect();
        assert_eq!(kept, [2, 3, 4]);
    }

    #[test]
    fn a_full_offline_queue_waits_for_the_engine_instead_of_dropping() {
        let q = Arc::new(FrameQueue::new(2, true));
        let closed = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, closed) = (q.clone(), closed.clone());
            std::thread::spawn(move || (0..6).filter(|&n| q.push(1, frame(n), &closed)).count())
        };
        let mut out = Vec::new();
        while out.len() < 6 {
            q.take(1, &mut out);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(producer.join().expect("producer"), 0, "a frame was dropped");
        let order: Vec<u128> = out.iter().map(|(_, f)| f.pts.as_millis()).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    }
}
