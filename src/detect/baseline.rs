//! A stream's own normal level of a statistic, for detectors that fire on a change relative to
//! it (blur, blockiness, letterbox): what is normal differs from channel to channel.

/// Mean of a statistic over the last `window` media seconds (exponentially weighted), fed only
/// with frames the detector judges normal, so a defect does not become the new normal.
#[derive(Clone, Debug)]
pub struct Baseline {
    window: f64,
    warmup: f64,
    value: f64,
    /// Media seconds of frames fed so far (capped at `window`).
    weight: f64,
    last: Option<f64>,
}

/// Frames further apart than this (a gap, a restart) count as this far apart.
const MAX_STEP_SECS: f64 = 0.5;

impl Baseline {
    /// `window`: seconds the mean covers; `warmup`: seconds of normal frames needed first.
    pub fn new(window: f64, warmup: f64) -> Self {
        Self {
            window: window.max(1e-3),
            warmup,
            value: 0.0,
            weight: 0.0,
            last: None,
        }
    }

    pub fn update(&mut self, media: f64, x: f64) {
        if !x.is_finite() {
            return;
        }
        let Some(last) = self.last.replace(media) else {
            self.value = x;
            return;
        };
        let dt = (media - last).clamp(0.0, MAX_STEP_SECS);
        if dt == 0.0 {
            return;
        }
        // A plain mean until the window is full, then an exponential one of the same span.
        self.weight = (self.weight + dt).min(self.window);
        let alpha = if self.weight < self.window {
            dt / self.weight
        } else {
            1.0 - (-dt / self.window).exp()
        };
        self.value += alpha * (x - self.value);
    }

    /// The normal level, once enough normal frames were seen.
    pub fn get(&self) -> Option<f64> {
        (self.last.is_some() && self.weight >= self.warmup).then_some(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_warmup_then_follows_the_mean() {
        let mut b = Baseline::new(10.0, 2.0);
        for i in 0..50 {
            b.update(f64::from(i) * 0.04, 4.0);
        }
        assert_eq!(b.get(), None, "1.96 s is less than the warm-up");
        b.update(2.0, 4.0);
        b.update(2.04, 4.0);
        assert!((b.get().unwrap() - 4.0).abs() < 1e-9);
        // A step to 8 moves it most of the way after one window.
        for i in 0..250 {
            b.update(2.04 + f64::from(i + 1) * 0.04, 8.0);
        }
        let v = b.get().unwrap();
        assert!((6.5..8.0).contains(&v), "{v}");
    }
}
