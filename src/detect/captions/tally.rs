//! Caption bytes between the decoder's input, where they are counted, and its output, where
//! they are judged: each coded picture's bytes wait under its PTS until a decoded frame at or
//! past that PTS arrives. Decoder delay and B-frame reordering then move no caption bytes into
//! the wrong frame, and the pictures a tier does not decode go with the next decoded one.

use std::collections::VecDeque;

use super::CaptionBytes;

/// Pictures waiting for a decoded frame; past it the oldest are judged at once.
const MAX_PENDING: usize = 1024;
/// A picture this far (ns) past the decoded frame is not waiting for the decoder: its PTS
/// jumped (a file looped back, a discontinuity). It is judged with the frame.
const MAX_AHEAD_NS: u64 = 10_000_000_000;

#[derive(Debug, Default)]
pub struct CaptionTally {
    pending: VecDeque<(u64, CaptionBytes)>,
    ready: CaptionBytes,
}

impl CaptionTally {
    /// A coded picture's caption bytes (`pts_ns`: its PTS, if it has one).
    pub fn count(&mut self, pts_ns: Option<u64>, bytes: CaptionBytes) {
        match pts_ns {
            Some(pts) => {
                if self.pending.len() >= MAX_PENDING
                    && let Some((_, oldest)) = self.pending.pop_front()
                {
                    self.ready.add(&oldest);
                }
                self.pending.push_back((pts, bytes));
            }
            None => self.ready.add(&bytes),
        }
    }

    /// A decoded frame with PTS `pts_ns` is on its way: the pictures it covers are ready.
    pub fn decoded(&mut self, pts_ns: u64) {
        let ahead = |p: u64| p > pts_ns.saturating_add(MAX_AHEAD_NS);
        let ready = &mut self.ready;
        self.pending.retain(|(p, bytes)| {
            let due = *p <= pts_ns || ahead(*p);
            if due {
                ready.add(bytes);
            }
            !due
        });
    }

    /// The bytes judged with the frame that arrives now.
    pub fn take_ready(&mut self) -> CaptionBytes {
        std::mem::take(&mut self.ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field1(n: u64) -> CaptionBytes {
        CaptionBytes {
            cea608: [n, 0],
            ..CaptionBytes::default()
        }
    }

    #[test]
    fn bytes_wait_for_the_frame_that_shows_their_picture() {
        let mut t = CaptionTally::default();
        // Decoding order I0 P3 B1 B2, as a decoder with B-frames receives them.
        for (pts, n) in [(0, 1), (3, 8), (1, 2), (2, 4)] {
            t.count(Some(pts), field1(n));
        }
        t.decoded(0);
        assert_eq!(t.take_ready().cea608[0], 1);
        t.decoded(1);
        assert_eq!(t.take_ready().cea608[0], 2);
        t.decoded(3);
        assert_eq!(t.take_ready().cea608[0], 12);
        t.count(None, field1(16));
        assert_eq!(t.take_ready().cea608[0], 16);
    }

    #[test]
    fn a_pts_far_ahead_or_too_many_waiting_are_judged_at_once() {
        let mut t = CaptionTally::default();
        t.count(Some(30_000_000_000), field1(1));
        t.count(Some(40_000_000), field1(2));
        t.decoded(0);
        assert_eq!(
            t.take_ready().cea608[0],
            1,
            "the far one, from before a loop"
        );
        for pts in 0..MAX_PENDING as u64 {
            t.count(Some(1_000_000 + pts), field1(1));
        }
        t.decoded(0);
        assert_eq!(t.take_ready().cea608[0], 2);
    }
}
