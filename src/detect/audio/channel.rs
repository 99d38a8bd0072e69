//! Channel faults: a channel missing (nothing carried) while another carries programme, and
//! the first two channels identical (fake stereo) or phase-inverted (L ≈ -R). The pair is
//! judged by its mid (L+R) and side (L-R) energies: identical channels have no side, inverted
//! ones no mid; their normalised correlation is the event value.

use crate::config::ChannelConfig;
use crate::detect::audio::silence::energy_dbfs;
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

#[derive(Debug)]
pub struct ChannelDetector {
    config: ChannelConfig,
    pair: DefectTracker,
    missing: Vec<DefectTracker>,
}

/// Normalised correlation of the first two channels and their side/mid energy ratio in dB.
pub fn pair_stats(buffer: &AudioBuffer) -> Option<(f64, f64)> {
    let n = buffer.channels as usize;
    if n < 2 {
        return None;
    }
    let (mut mid, mut side) = (0.0f64, 0.0f64);
    for f in buffer.samples.chunks_exact(n) {
        let (l, r) = (f64::from(f[0]), f64::from(f[1]));
        mid += (l + r) * (l + r);
        side += (l - r) * (l - r);
    }
    if mid + side <= 0.0 {
        return None;
    }
    let correlation = (mid - side) / (mid + side);
    let ratio = energy_dbfs(side / mid.max(f64::MIN_POSITIVE)).max(-200.0);
    Some((correlation, ratio))
}

impl ChannelDetector {
    pub fn new(config: ChannelConfig) -> Self {
        let pair = DefectTracker::new(DetectorKind::Channel, config.timing());
        Self {
            config,
            pair,
            missing: Vec::new(),
        }
    }

    /// `levels` are the buffer's per-channel RMS levels in dBFS.
    pub fn observe(
        &mut self,
        at: Sample,
        buffer: &AudioBuffer,
        levels: &[f64],
        out: &mut Vec<Scoped>,
    ) {
        let c = &self.config;
        if !c.enabled || levels.len() < 2 {
            return;
        }
        let loudest = levels.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Without programme in any channel there is nothing to compare: verdicts wait.
        if loudest < c.programme_dbfs {
            return;
        }
        if self.missing.len() != levels.len() {
            self.missing = (0..levels.len())
                .map(|_| DefectTracker::new(DetectorKind::Channel, c.timing()))
                .collect();
        }
        for (ch, (tracker, &l)) in self.missing.iter_mut().zip(levels).enumerate() {
            let t = tracker.update(at, l <= c.missing_dbfs, l);
            out.extend(t.map(|t| (t, Scope::channel(ch as u32))));
        }
        let (l, r) = (levels[0], levels[1]);
        if l.max(r) < c.programme_dbfs || l.min(r) <= c.missing_dbfs {
            return;
        }
        if let Some((correlation, side_to_mid)) = pair_stats(buffer) {
            let identical = c.report_identical && side_to_mid <= c.similarity_db;
            let inverted = -side_to_mid <= c.similarity_db;
            out.extend(
                self.pair
                    .update(at, identical || inverted, correlation)
                    .map(|t| (t, Scope::default())),
            );
        }
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        out.extend(self.pair.finish(at).map(|t| (t, Scope::default())));
        for (ch, tracker) in self.missing.iter_mut().enumerate() {
            out.extend(tracker.finish(at).map(|t| (t, Scope::channel(ch as u32))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use crate::detect::audio::silence::channel_dbfs;
    use std::time::Duration;

    /// Stereo buffer: left a 440 Hz tone, right from `right(left, other)` where `other` is an
    /// unrelated 660 Hz tone.
    fn stereo(n0: usize, right: impl Fn(f32, f32) -> f32) -> AudioBuffer {
        let samples = (n0..n0 + 1024)
            .flat_map(|i| {
                let x = i as f32 / 48_000.0;
                let l = 0.2 * (std::f32::consts::TAU * 440.0 * x).sin();
                let o = 0.2 * (std::f32::consts::TAU * 660.0 * x).sin();
                [l, right(l, o)]
            })
            .collect();
        AudioBuffer {
            channels: 2,
            rate: 48_000,
            samples,
            pts: Duration::ZERO,
        }
    }

    fn run(fault: impl Fn(f32, f32) -> f32) -> Vec<Scoped> {
        let mut d = ChannelDetector::new(ChannelConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..400 {
            let t = i as f64 * step;
            let buf = if (2.0..5.0).contains(&t) {
                stereo(i * 1024, &fault)
            } else {
                stereo(i * 1024, |_, o| o)
            };
            d.observe(Sample::at(t), &buf, &channel_dbfs(&buf), &mut out);
        }
        d.finish(Sample::at(400.0 * step), &mut out);
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        out
    }

    fn ended(out: &[Scoped]) -> Vec<(Option<u32>, f64, f64, f64)> {
        out.iter()
            .filter_map(|(t, scope)| match t {
                Transition::Ended {
                    start, end, value, ..
                } => Some((scope.channel, start.media, end.media, *value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn real_stereo_is_clean() {
        assert!(run(|_, o| o).is_empty());
    }

    #[test]
    fn missing_identical_and_inverted_channels_are_found() {
        let step = 1024.0 / 48_000.0;
        let near = |(_, s, e, _): (Option<u32>, f64, f64, f64)| {
            (s - 2.0).abs() <= step && (e - 5.0).abs() <= step
        };
        let missing = ended(&run(|_, _| 0.0));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, Some(1));
        assert!(near(missing[0]));
        let identical = ended(&run(|l, _| l));
        assert_eq!(identical.len(), 1, "{identical:?}");
        assert!(near(identical[0]) && identical[0].3 > 0.99);
        let inverted = ended(&run(|l, _| -l));
        assert_eq!(inverted.len(), 1, "{inverted:?}");
        assert!(near(inverted[0]) && inverted[0].3 < -0.99);
    }
}
