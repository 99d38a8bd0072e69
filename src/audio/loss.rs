//! Audio loss: a stream that had audio stops delivering it while its video goes on, or its
//! audio timestamps jump forward. Both are judged in media time against the audio timeline:
//! video frames (as decoded, before the engine) tell how far the stream has advanced, so the
//! check runs without audio buffers arriving, and gives the same result in `scan` as live.

use crate::audio::Tagged;
use crate::config::{AudioLossConfig, Timing};
use crate::detect::{DefectTracker, DetectorKind, Sample};

#[derive(Debug)]
pub struct AudioLossDetector {
    config: AudioLossConfig,
    tracker: DefectTracker,
    /// Media time at which the latest audio buffer ends.
    audio_end: Option<Sample>,
    /// Latest media time seen on either track.
    latest: Option<Sample>,
}

impl AudioLossDetector {
    pub fn new(config: AudioLossConfig) -> Self {
        let timing = Timing {
            min_duration: config.min_gap,
            clear_duration: 0.0,
        };
        Self {
            tracker: DefectTracker::new(DetectorKind::AudioLoss, timing),
            config,
            audio_end: None,
            latest: None,
        }
    }

    /// An audio buffer covering `at` .. `end` (media seconds).
    pub fn on_audio(&mut self, at: Sample, end: f64, out: &mut Vec<Tagged>) {
        if !self.config.enabled {
            return;
        }
        if let Some(prev) = self.audio_end {
            let gap = at.media - prev.media;
            // A jump seen only now (no video told of the gap while it lasted).
            if gap >= self.config.min_gap && !self.tracker.engaged() {
                out.extend(self.tracker.update(prev, true, gap).map(|t| (t, None)));
                out.extend(self.tracker.update(at, true, gap).map(|t| (t, None)));
            }
        }
        out.extend(self.tracker.update(at, false, 0.0).map(|t| (t, None)));
        let end = Sample {
            media: end,
            wall: at.wall,
        };
        self.audio_end = Some(end);
        self.note(end);
    }

    /// A video frame at `at`: audio is missing if it ended `min_gap` or more before.
    pub fn on_video(&mut self, at: Sample, out: &mut Vec<Tagged>) {
        self.note(at);
        if !self.config.enabled {
            return;
        }
        let Some(prev) = self.audio_end else {
            return;
        };
        let gap = at.media - prev.media;
        if gap < self.config.min_gap {
            return;
        }
        if !self.tracker.engaged() {
            out.extend(self.tracker.update(prev, true, gap).map(|t| (t, None)));
        }
        out.extend(self.tracker.update(at, true, gap).map(|t| (t, None)));
    }

    fn note(&mut self, at: Sample) {
        if self.latest.is_none_or(|l| at.media > l.media) {
            self.latest = Some(at);
        }
    }

    /// Closes a loss still open at the end of the run at the last media time of either track.
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Tagged>) {
        let at = self.latest.filter(|l| l.media > at.media).unwrap_or(at);
        out.extend(self.tracker.finish(at).map(|t| (t, None)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;

    const BUF: f64 = 0.02;

    fn ended(out: &[Tagged]) -> Vec<(f64, f64)> {
        out.iter()
            .filter_map(|(t, _)| match t {
                Transition::Ended { start, end, .. } => Some((start.media, end.media)),
                _ => None,
            })
            .collect()
    }

    /// Audio buffers every 20 ms except in `hole`, video frames every 40 ms, both to 10 s.
    fn run(hole: (f64, f64), video: bool) -> Vec<Tagged> {
        let mut d = AudioLossDetector::new(AudioLossConfig::default());
        let mut out = Vec::new();
        let mut last_audio = 0.0;
        for i in 0..500 {
            let t = i as f64 * BUF;
            if video && i % 2 == 0 {
                d.on_video(Sample::at(t), &mut out);
            }
            if !(hole.0..hole.1).contains(&t) {
                d.on_audio(Sample::at(t), t + BUF, &mut out);
                last_audio = t;
            }
        }
        // As the stream does: closed at its last audio sample.
        d.finish(Sample::at(last_audio), &mut out);
        out
    }

    #[test]
    fn steady_audio_is_clean() {
        assert!(run((20.0, 20.0), true).is_empty());
    }

    #[test]
    fn audio_gone_while_video_goes_on_is_found_before_it_comes_back() {
        let out = run((4.0, 7.0), true);
        let started = out
            .iter()
            .position(|(t, _)| matches!(t, Transition::Started { .. }))
            .expect("started");
        let ended_at = out
            .iter()
            .position(|(t, _)| matches!(t, Transition::Ended { .. }))
            .expect("ended");
        assert!(started < ended_at);
        let e = ended(&out);
        assert_eq!(e.len(), 1, "{out:?}");
        assert!(
            (e[0].0 - 4.0).abs() < 1e-6 && (e[0].1 - 7.0).abs() < 1e-6,
            "{e:?}"
        );
    }

    #[test]
    fn a_timestamp_jump_without_video_is_found_too() {
        let e = ended(&run((4.0, 7.0), false));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            (e[0].0 - 4.0).abs() < 1e-6 && (e[0].1 - 7.0).abs() < 1e-6,
            "{e:?}"
        );
    }

    #[test]
    fn audio_that_never_returns_is_closed_at_the_last_video_frame() {
        let e = ended(&run((6.0, 20.0), true));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            (e[0].0 - 6.0).abs() < 1e-6 && (e[0].1 - 9.96).abs() < 1e-6,
            "{e:?}"
        );
    }
}
