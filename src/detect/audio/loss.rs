//! Audio loss: a stream that had audio stops delivering it while its video goes on, or its
//! audio timestamps jump forward. Media time dates the loss (from the end of the last audio
//! buffer); wall-clock decides, while it lasts, that audio is gone: video frames arriving (the
//! check runs on each, so no audio buffer is needed) with no audio buffer for `timeout` wall
//! seconds. Decoding threads of a file or a bursty source may run a second apart, so media time
//! alone cannot tell that audio is late rather than gone. The loss is closed by the first
//! audio buffer after it (a jump in its timestamps is a loss even if no video told of it) or,
//! if audio never returns, at the last video frame.

use std::time::Duration;

use crate::config::{AudioLossConfig, Timing};
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};

#[derive(Debug)]
pub struct AudioLossDetector {
    config: AudioLossConfig,
    tracker: DefectTracker,
    /// End (media time) and arrival (wall-clock) of the latest audio buffer.
    audio_end: Option<Sample>,
    /// Latest video frame.
    video: Option<Sample>,
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
            video: None,
        }
    }

    /// Opens a loss from the end of the last audio buffer to `at` (unless one is open).
    fn lost_until(&mut self, prev: Sample, at: Sample, out: &mut Vec<Scoped>) {
        let gap = at.media - prev.media;
        if !self.tracker.engaged() {
            out.extend(
                self.tracker
                    .update(prev, true, gap)
                    .map(|t| (t, Scope::default())),
            );
        }
        out.extend(
            self.tracker
                .update(at, true, gap)
                .map(|t| (t, Scope::default())),
        );
    }

    /// An audio buffer covering `at` .. `end` (media seconds), arrived at `at.wall`.
    pub fn on_audio(&mut self, at: Sample, end: f64, out: &mut Vec<Scoped>) {
        if !self.config.enabled {
            return;
        }
        if let Some(prev) = self.audio_end
            && at.media - prev.media >= self.config.min_gap
        {
            self.lost_until(prev, at, out);
        }
        out.extend(
            self.tracker
                .update(at, false, 0.0)
                .map(|t| (t, Scope::default())),
        );
        self.audio_end = Some(Sample {
            media: end,
            wall: at.wall,
        });
    }

    /// A video frame at `at` (media time, arrival).
    pub fn on_video(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        if self.video.is_none_or(|v| at.media > v.media) {
            self.video = Some(at);
        }
        if !self.config.enabled {
            return;
        }
        let Some(prev) = self.audio_end else {
            return;
        };
        let waited = at.wall.duration_since(prev.wall).unwrap_or(Duration::ZERO);
        if at.media - prev.media >= self.config.min_gap
            && waited.as_secs_f64() >= self.config.timeout
        {
            self.lost_until(prev, at, out);
        }
    }

    /// Closes the run: audio that ended before the video is a loss up to the last frame.
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        let last = self.video.filter(|v| v.media > at.media).unwrap_or(at);
        if self.config.enabled
            && let Some(prev) = self.audio_end
            && last.media - prev.media >= self.config.min_gap
        {
            self.lost_until(prev, last, out);
        }
        out.extend(self.tracker.finish(last).map(|t| (t, Scope::default())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use std::time::{Duration, SystemTime};

    const BUF: f64 = 0.02;

    fn ended(out: &[Scoped]) -> Vec<(f64, f64)> {
        out.iter()
            .filter_map(|(t, _)| match t {
                Transition::Ended { start, end, .. } => Some((start.media, end.media)),
                _ => None,
            })
            .collect()
    }

    /// Media time `media`, arriving at wall-clock `wall` seconds after an origin.
    fn at(media: f64, wall: f64) -> Sample {
        Sample {
            media,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(1e9 + wall),
        }
    }

    /// Audio buffers every 20 ms except in `hole`, video frames every 40 ms, to 10 s; arrival
    /// = media time × `pace` (1: live, 0.01: a fast file scan), audio `audio_late` wall
    /// seconds behind video (decoding threads out of step).
    fn run(hole: (f64, f64), video: bool, pace: f64, audio_late: f64) -> Vec<Scoped> {
        let mut d = AudioLossDetector::new(AudioLossConfig::default());
        let mut out = Vec::new();
        let mut last_audio = 0.0;
        for i in 0..600 {
            let t = i as f64 * BUF;
            if video && i % 2 == 0 && t < 10.0 {
                d.on_video(at(t, t * pace), &mut out);
            }
            let ta = t - audio_late / pace;
            if (0.0..10.0).contains(&ta) && !(hole.0..hole.1).contains(&ta) {
                d.on_audio(at(ta, t * pace), ta + BUF, &mut out);
                last_audio = ta;
            }
        }
        // As the stream does: closed at its last audio sample.
        d.finish(at(last_audio, 12.0 * pace), &mut out);
        out
    }

    #[test]
    fn steady_audio_is_clean_even_when_it_lags_video() {
        assert!(run((20.0, 20.0), true, 1.0, 0.0).is_empty());
        // A file scan: audio decoded 1 s of media behind video, 10 ms of wall-clock.
        assert!(run((20.0, 20.0), true, 0.01, 0.01).is_empty());
    }

    #[test]
    fn audio_gone_while_video_goes_on_is_found_before_it_comes_back() {
        let out = run((4.0, 7.0), true, 1.0, 0.0);
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
    fn a_timestamp_jump_is_found_without_waiting() {
        for video in [false, true] {
            let e = ended(&run((4.0, 7.0), video, 0.01, 0.0));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                (e[0].0 - 4.0).abs() < 1e-6 && (e[0].1 - 7.0).abs() < 1e-6,
                "{e:?}"
            );
        }
    }

    #[test]
    fn audio_that_never_returns_is_closed_at_the_last_video_frame() {
        for pace in [1.0, 0.01] {
            let e = ended(&run((6.0, 20.0), true, pace, 0.0));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                (e[0].0 - 6.0).abs() < 1e-6 && (e[0].1 - 9.96).abs() < 1e-6,
                "{e:?}"
            );
        }
    }
}
