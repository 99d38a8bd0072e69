//! A stream's own normal level of a statistic, for detectors that fire on a change relative to
//! it (blur, blockiness, letterbox): what is normal differs from channel to channel.
//!
//! The level is the median of half-second means over the window. A median of time buckets is
//! what keeps one frame from deciding it: a single very detailed frame after a cut to black,
//! or the field-split first frame of interlaced content, moves one bucket at most, and the
//! median ignores one bucket. A mean (what an exponential average is) does not.
//!
//! Detectors feed it normal frames only, so a defect does not become the normal; they also
//! report the frames they judge abnormal, and when those last `relearn` seconds without a
//! normal frame in between, the level they show becomes the new normal (a lasting change of
//! content: a sports channel showing a cartoon, a programme in 4:3). Without that, a baseline
//! learnt on unusual content would call everything after it a defect for ever.

use std::collections::VecDeque;

/// Media seconds one bucket of frames covers.
const BUCKET_SECS: f64 = 0.5;
/// Frames further apart than this (a gap, a restart) count as this far apart for the warm-up.
const MAX_STEP_SECS: f64 = BUCKET_SECS;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    start: f64,
    sum: f64,
    count: u32,
}

impl Bucket {
    fn mean(&self) -> f64 {
        self.sum / f64::from(self.count.max(1))
    }
}

/// Half-second buckets of one kind of frame (normal or not) over the last `window` seconds.
#[derive(Clone, Debug, Default)]
struct Buckets {
    closed: VecDeque<Bucket>,
    open: Option<Bucket>,
    /// Media seconds of frames fed (each step capped at MAX_STEP_SECS).
    seen: f64,
    last: Option<f64>,
}

impl Buckets {
    /// Adds a frame; returns true when a bucket closed (the median may have changed).
    fn add(&mut self, media: f64, x: f64, window: f64) -> bool {
        if let Some(last) = self.last.replace(media) {
            self.seen += (media - last).clamp(0.0, MAX_STEP_SECS);
        }
        let mut closed = false;
        match &mut self.open {
            Some(b) if media >= b.start && media < b.start + BUCKET_SECS => {
                b.sum += x;
                b.count += 1;
            }
            open => {
                if let Some(done) = open.take() {
                    self.closed.push_back(done);
                    closed = true;
                }
                *open = Some(Bucket {
                    start: media,
                    sum: x,
                    count: 1,
                });
            }
        }
        while self
            .closed
            .front()
            .is_some_and(|b| media - b.start > window || b.start > media)
        {
            self.closed.pop_front();
        }
        self.seen = self.seen.min(window);
        closed
    }

    fn median(&self) -> Option<f64> {
        let mut means: Vec<f64> = self.closed.iter().map(Bucket::mean).collect();
        if means.is_empty() {
            means.extend(self.open.map(|b| b.mean()));
        }
        median_of(&mut means)
    }
}

fn median_of(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

#[derive(Clone, Debug)]
pub struct Baseline {
    window: f64,
    warmup: f64,
    relearn: f64,
    normal: Buckets,
    /// Frames judged abnormal since the last normal one.
    abnormal: Buckets,
    abnormal_since: Option<f64>,
    level: Option<f64>,
}

impl Baseline {
    /// `window`: seconds the level covers; `warmup`: seconds of normal frames needed first;
    /// `relearn`: seconds of abnormal frames after which their level is the normal (0: never).
    pub fn new(window: f64, warmup: f64, relearn: f64) -> Self {
        Self {
            window: window.max(BUCKET_SECS),
            warmup,
            relearn,
            normal: Buckets::default(),
            abnormal: Buckets::default(),
            abnormal_since: None,
            level: None,
        }
    }

    /// A frame the detector judged normal.
    pub fn update(&mut self, media: f64, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.abnormal = Buckets::default();
        self.abnormal_since = None;
        if self.normal.add(media, x, self.window) || self.level.is_none() {
            self.level = self.normal.median();
        }
    }

    /// A frame the detector judged abnormal (or did not judge because a defect is active).
    /// Returns true when the abnormal level just became the normal one.
    pub fn reject(&mut self, media: f64, x: f64) -> bool {
        if !x.is_finite() || self.relearn <= 0.0 {
            return false;
        }
        let since = *self.abnormal_since.get_or_insert(media);
        self.abnormal.add(media, x, self.window);
        if media - since < self.relearn || media < since {
            return false;
        }
        self.normal = std::mem::take(&mut self.abnormal);
        self.normal.seen = self.normal.seen.max(self.warmup);
        self.abnormal_since = None;
        self.level = self.normal.median();
        true
    }

    /// Forgets everything: the picture's format changed, or its timeline broke.
    pub fn reset(&mut self) {
        *self = Self::new(self.window, self.warmup, self.relearn);
    }

    /// The normal level, once enough normal frames were seen.
    pub fn get(&self) -> Option<f64> {
        (self.normal.seen >= self.warmup)
            .then_some(self.level)
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: f64 = 0.04;

    fn feed(b: &mut Baseline, from: usize, to: usize, value: impl Fn(usize) -> f64) {
        for i in from..to {
            b.update(i as f64 * FRAME, value(i));
        }
    }

    #[test]
    fn needs_warmup_then_follows_the_level() {
        let mut b = Baseline::new(10.0, 2.0, 0.0);
        feed(&mut b, 0, 50, |_| 4.0);
        assert_eq!(b.get(), None, "1.96 s is less than the warm-up");
        feed(&mut b, 50, 52, |_| 4.0);
        assert!((b.get().unwrap() - 4.0).abs() < 1e-9);
        // A lasting step to 8 is the level once it fills more than half the window.
        feed(&mut b, 52, 52 + 150, |_| 8.0);
        assert!((b.get().unwrap() - 8.0).abs() < 1e-9, "{:?}", b.get());
    }

    #[test]
    fn one_extreme_frame_after_a_gap_does_not_move_the_level() {
        // The sequence of the blur report: normal detail ~4, a black stretch (not fed), then
        // one frame of detail 60 (a noisy cut) and normal detail again.
        let mut b = Baseline::new(30.0, 2.0, 0.0);
        feed(&mut b, 0, 250, |i| 4.0 + (i % 3) as f64 * 0.2);
        b.update(12.0, 60.0);
        feed(&mut b, 301, 400, |i| 4.0 + (i % 3) as f64 * 0.2);
        let level = b.get().unwrap();
        assert!((3.9..4.5).contains(&level), "{level}");
    }

    #[test]
    fn one_extreme_first_frame_does_not_decide_the_warm_up() {
        // Interlaced MPEG-2: the first frame, split into fields, has three times the detail.
        let mut b = Baseline::new(30.0, 2.0, 0.0);
        b.update(0.0, 30.0);
        feed(&mut b, 1, 60, |_| 10.0);
        assert!((b.get().unwrap() - 10.0).abs() < 1e-9, "{:?}", b.get());
    }

    #[test]
    fn a_lasting_abnormal_level_becomes_the_normal_after_relearn() {
        let mut b = Baseline::new(30.0, 2.0, 20.0);
        feed(&mut b, 0, 250, |_| 8.0);
        let mut adopted_at = None;
        for i in 250..1000 {
            let t = i as f64 * FRAME;
            if b.reject(t, 2.0) {
                adopted_at = Some(t);
                break;
            }
        }
        let t = adopted_at.expect("relearnt");
        assert!((t - 30.0).abs() < 0.05, "{t}");
        assert!((b.get().unwrap() - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_normal_frame_restarts_the_relearn_clock() {
        let mut b = Baseline::new(30.0, 2.0, 20.0);
        feed(&mut b, 0, 250, |_| 8.0);
        for i in 250..1000 {
            let t = i as f64 * FRAME;
            if i % 250 == 0 {
                b.update(t, 8.0);
            } else {
                assert!(!b.reject(t, 2.0), "relearnt at {t}");
            }
        }
        assert!((b.get().unwrap() - 8.0).abs() < 1e-9);
    }

    #[test]
    fn reset_forgets_the_level() {
        let mut b = Baseline::new(30.0, 2.0, 0.0);
        feed(&mut b, 0, 100, |_| 8.0);
        b.reset();
        assert_eq!(b.get(), None);
        feed(&mut b, 100, 160, |_| 3.0);
        assert!((b.get().unwrap() - 3.0).abs() < 1e-9);
    }
}
