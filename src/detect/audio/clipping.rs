//! Clipping: runs of consecutive samples at full scale in any channel. A single sample touching
//! full scale is legal; a flat top of several samples means the waveform was cut off.

use crate::config::ClippingConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

#[derive(Debug)]
pub struct ClippingDetector {
    config: ClippingConfig,
    pub(super) tracker: DefectTracker,
}

/// Where the first clipped run of a buffer starts (frame index) and the share of samples that
/// belong to clipped runs.
pub fn clipped_runs(buffer: &AudioBuffer, level: f32, min_run: usize) -> Option<(usize, f64)> {
    // Programme seldom reaches the clipping level: one pass that vectorises settles most
    // buffers without walking each channel's runs.
    let reaches_level = buffer
        .samples
        .iter()
        .fold(false, |reached, s| reached | (s.abs() >= level));
    if !reaches_level {
        return None;
    }
    let n = buffer.channels.max(1) as usize;
    let frames = buffer.samples.len() / n;
    let mut first: Option<usize> = None;
    let mut clipped = 0usize;
    for ch in 0..n {
        let mut run = 0usize;
        for i in 0..frames {
            if buffer.samples[i * n + ch].abs() >= level {
                run += 1;
                continue;
            }
            if run >= min_run {
                clipped += run;
                first = Some(first.map_or(i - run, |f| f.min(i - run)));
            }
            run = 0;
        }
        // A run reaching the end of the buffer counts here even if it goes on in the next one.
        if run >= min_run {
            clipped += run;
            first = Some(first.map_or(frames - run, |f| f.min(frames - run)));
        }
    }
    first.map(|f| (f, clipped as f64 / buffer.samples.len().max(1) as f64))
}

impl ClippingDetector {
    pub fn new(config: ClippingConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Clipping, config.timing());
        Self { config, tracker }
    }

    pub fn observe(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Scoped>) {
        if !self.config.enabled || buffer.samples.is_empty() {
            return;
        }
        let t = match clipped_runs(buffer, self.config.level as f32, self.config.min_run) {
            Some((first, ratio)) => {
                // Dates the clip to its first sample rather than to the buffer.
                let at = Sample {
                    media: at.media + first as f64 / f64::from(buffer.rate.max(1)),
                    wall: at.wall,
                };
                self.tracker.update(at, true, ratio)
            }
            None => self.tracker.update(at, false, 0.0),
        };
        out.extend(t.map(|t| (t, Scope::default())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use std::time::Duration;

    fn sine(gain: f32, n0: usize) -> AudioBuffer {
        let samples = (n0..n0 + 1024)
            .map(|i| (gain * (i as f32 * 0.1309).sin()).clamp(-1.0, 1.0))
            .collect();
        AudioBuffer {
            channels: 1,
            channel_mask: None,
            rate: 48_000,
            samples,
            pts: Duration::ZERO,
        }
    }

    #[test]
    fn a_full_scale_sine_is_not_clipped_but_an_overdriven_one_is() {
        assert!(clipped_runs(&sine(1.0, 0), 0.999, 3).is_none());
        assert!(clipped_runs(&sine(0.5, 0), 0.999, 3).is_none());
        let (_, ratio) = clipped_runs(&sine(4.0, 0), 0.999, 3).expect("clipped");
        assert!(ratio > 0.5, "{ratio}");
    }

    #[test]
    fn a_clipped_section_is_one_event() {
        let mut d = ClippingDetector::new(ClippingConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..300 {
            let t = i as f64 * step;
            let gain = if (2.0..4.0).contains(&t) { 4.0 } else { 0.5 };
            d.observe(Sample::at(t), &sine(gain, i * 1024), &mut out);
        }
        out.extend(
            d.tracker
                .finish(Sample::at(300.0 * step))
                .map(|t| (t, Scope::default())),
        );
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let (Transition::Ended { start, end, .. }, Scope { channel: None, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert!((start.media - 2.0).abs() <= step && (end.media - 4.0).abs() <= step);
    }
}
