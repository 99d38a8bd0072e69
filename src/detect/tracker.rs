//! The state machine shared by every detector: minimum duration, clearing time, back-dating.

use std::time::SystemTime;

use crate::config::Timing;
use crate::detect::DetectorKind;

/// A point in time, in media seconds (from the stream's first frame) and wall-clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub media: f64,
    pub wall: SystemTime,
}

impl Sample {
    pub fn at(media: f64) -> Self {
        Self {
            media,
            wall: SystemTime::now(),
        }
    }
}

/// What part of a stream a transition concerns: all of it (the default), one audio channel,
/// one HLS variant, or one TR 101 290 priority.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Scope {
    pub channel: Option<u32>,
    /// The channel's position (`FL`, `LFE`...), where the layout names it.
    pub position: Option<&'static str>,
    pub variant: Option<String>,
    /// The TR 101 290 priority (1, 2 or 3) of a `tr101290` defect.
    pub priority: Option<u8>,
    /// The rule a defect of a detector with several broke (`break_overrun`...).
    pub rule: Option<&'static str>,
    /// The TR 101 290 indicators behind it: the first when it starts, all seen when it ends.
    /// Not part of its identity (`DefectEvent::scope` leaves it out).
    pub indicators: Option<String>,
}

impl Scope {
    pub fn channel(channel: u32) -> Self {
        Self {
            channel: Some(channel),
            ..Self::default()
        }
    }

    pub fn variant(variant: &str) -> Self {
        Self {
            variant: Some(variant.to_owned()),
            ..Self::default()
        }
    }

    pub fn variant_rule(variant: &str, rule: &'static str) -> Self {
        Self {
            variant: Some(variant.to_owned()),
            rule: Some(rule),
            ..Self::default()
        }
    }

    pub fn rule(rule: &'static str) -> Self {
        Self {
            rule: Some(rule),
            ..Self::default()
        }
    }

    pub fn tr101290(priority: u8, indicators: &[&str]) -> Self {
        Self {
            priority: Some(priority),
            indicators: Some(indicators.join(",")),
            ..Self::default()
        }
    }
}

/// (start, end) media times of the defects that ended among `out`, for tests.
#[cfg(test)]
pub fn ended_spans(out: &[Transition]) -> Vec<(f64, f64)> {
    out.iter()
        .filter_map(|t| match t {
            Transition::Ended { start, end, .. } => Some((start.media, end.media)),
            _ => None,
        })
        .collect()
}

/// A transition and the part of the stream it concerns: what every detector emits.
pub type Scoped = (Transition, Scope);

/// An edge: a defect confirmed (with its back-dated start) or ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Transition {
    Started {
        detector: DetectorKind,
        start: Sample,
        value: f64,
        /// Media seconds between the back-dated start and the confirming frame.
        elapsed: f64,
    },
    Ended {
        detector: DetectorKind,
        start: Sample,
        end: Sample,
        /// Mean of the detector's statistic over the defective frames.
        value: f64,
    },
    /// Seconds of defect newly observed, for `streamwatch_defect_seconds_total` while a defect
    /// lasts (not only when it ends).
    Progress {
        detector: DetectorKind,
        seconds: f64,
    },
}

/// Media times are nanosecond timestamps turned into seconds: keyframes exactly
/// `min_duration` apart may differ by a little less after the subtraction.
const DURATION_ROUNDING: f64 = 1e-6;

#[derive(Clone, Copy, Debug)]
enum State {
    Clear,
    /// The condition holds but not yet for `min_duration`.
    Onset {
        start: Sample,
    },
    /// A defect is reported; `clear_since` is the first good sample of a run that may end it.
    Active {
        start: Sample,
        clear_since: Option<Sample>,
        credited_until: f64,
    },
}

#[derive(Debug)]
pub struct DefectTracker {
    detector: DetectorKind,
    timing: Timing,
    state: State,
    value_sum: f64,
    value_count: u64,
}

impl DefectTracker {
    pub fn new(detector: DetectorKind, timing: Timing) -> Self {
        Self {
            detector,
            timing,
            state: State::Clear,
            value_sum: 0.0,
            value_count: 0,
        }
    }

    /// True while the condition is held or reported: detectors then use their clearing
    /// threshold instead of the onset threshold.
    pub fn engaged(&self) -> bool {
        match self.state {
            State::Clear => false,
            State::Onset { .. } => true,
            State::Active { clear_since, .. } => clear_since.is_none(),
        }
    }

    pub fn active(&self) -> bool {
        matches!(self.state, State::Active { .. })
    }

    /// Feeds one observation in time order.
    pub fn update(&mut self, at: Sample, defective: bool, value: f64) -> Option<Transition> {
        if defective {
            self.value_sum += value;
            self.value_count += 1;
        }
        match self.state {
            State::Clear => {
                if defective {
                    self.state = State::Onset { start: at };
                    return self.confirm_if_due(at, value);
                }
                None
            }
            State::Onset { .. } => {
                if defective {
                    self.confirm_if_due(at, value)
                } else {
                    self.reset();
                    None
                }
            }
            State::Active {
                start,
                clear_since,
                credited_until,
            } => {
                if defective {
                    self.state = State::Active {
                        start,
                        clear_since: None,
                        credited_until: at.media,
                    };
                    let seconds = at.media - credited_until;
                    (seconds > 0.0).then_some(Transition::Progress {
                        detector: self.detector,
                        seconds,
                    })
                } else {
                    let since = clear_since.unwrap_or(at);
                    if at.media - since.media >= self.timing.clear_duration {
                        Some(self.end(start, since))
                    } else {
                        self.state = State::Active {
                            start,
                            clear_since: Some(since),
                            credited_until,
                        };
                        None
                    }
                }
            }
        }
    }

    /// Like [`Self::update`], but a defect that begins with this sample is dated from `since`,
    /// an earlier sample the condition is known to have held from (a repeated picture was
    /// already showing in the frame it repeats).
    pub fn update_since(
        &mut self,
        at: Sample,
        since: Sample,
        defective: bool,
        value: f64,
    ) -> Option<Transition> {
        if defective && matches!(self.state, State::Clear) {
            self.value_sum += value;
            self.value_count += 1;
            self.state = State::Onset { start: since };
            return self.confirm_if_due(at, value);
        }
        self.update(at, defective, value)
    }

    /// Ends an active defect at `at` (or at the start of its clearing run); drops an onset.
    pub fn finish(&mut self, at: Sample) -> Option<Transition> {
        match self.state {
            State::Active {
                start, clear_since, ..
            } => Some(self.end(start, clear_since.unwrap_or(at))),
            _ => {
                self.reset();
                None
            }
        }
    }

    fn confirm_if_due(&mut self, at: Sample, value: f64) -> Option<Transition> {
        let State::Onset { start } = self.state else {
            return None;
        };
        if at.media - start.media < self.timing.min_duration - DURATION_ROUNDING {
            return None;
        }
        self.state = State::Active {
            start,
            clear_since: None,
            credited_until: at.media,
        };
        Some(Transition::Started {
            detector: self.detector,
            start,
            value,
            elapsed: at.media - start.media,
        })
    }

    fn end(&mut self, start: Sample, end: Sample) -> Transition {
        let value = if self.value_count > 0 {
            self.value_sum / self.value_count as f64
        } else {
            0.0
        };
        self.reset();
        Transition::Ended {
            detector: self.detector,
            start,
            end,
            value,
        }
    }

    fn reset(&mut self) {
        self.state = State::Clear;
        self.value_sum = 0.0;
        self.value_count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 25.0;

    fn run(timing: Timing, verdicts: &[bool]) -> Vec<Transition> {
        let mut t = DefectTracker::new(DetectorKind::Black, timing);
        let mut out = Vec::new();
        for (i, &d) in verdicts.iter().enumerate() {
            out.extend(t.update(Sample::at(i as f64 / FPS), d, 1.0));
        }
        out.extend(t.finish(Sample::at(verdicts.len() as f64 / FPS)));
        out.retain(|tr| !matches!(tr, Transition::Progress { .. }));
        out
    }

    fn frames(spec: &[(bool, usize)]) -> Vec<bool> {
        spec.iter()
            .flat_map(|&(d, n)| std::iter::repeat_n(d, n))
            .collect()
    }

    fn times(tr: &Transition) -> (f64, Option<f64>) {
        match tr {
            Transition::Started { start, .. } => (start.media, None),
            Transition::Ended { start, end, .. } => (start.media, Some(end.media)),
            Transition::Progress { .. } => unreachable!(),
        }
    }

    #[test]
    fn a_long_defect_gives_one_start_and_one_end_back_dated() {
        // 3 s of defect from t = 2 s.
        let out = run(
            Timing::default(),
            &frames(&[(false, 50), (true, 75), (false, 50)]),
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(out[0], Transition::Started { .. }));
        assert_eq!(times(&out[0]), (2.0, None));
        assert_eq!(times(&out[1]), (2.0, Some(5.0)));
    }

    #[test]
    fn shorter_than_min_duration_is_ignored() {
        let out = run(
            Timing::default(),
            &frames(&[(false, 10), (true, 49), (false, 50)]),
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn brief_recovery_shorter_than_clear_duration_does_not_split_the_defect() {
        let timing = Timing {
            min_duration: 1.0,
            clear_duration: 0.2,
        };
        // 2 good frames (0.08 s) inside a defect.
        let out = run(
            timing,
            &frames(&[(true, 50), (false, 2), (true, 50), (false, 25)]),
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(times(&out[1]), (0.0, Some(102.0 / FPS)));
    }

    #[test]
    fn defect_still_active_at_the_end_is_closed() {
        let out = run(Timing::default(), &frames(&[(false, 25), (true, 100)]));
        assert_eq!(out.len(), 2);
        assert_eq!(times(&out[1]), (1.0, Some(5.0)));
    }

    #[test]
    fn zero_min_duration_starts_on_the_first_frame() {
        let timing = Timing {
            min_duration: 0.0,
            clear_duration: 0.0,
        };
        let out = run(timing, &frames(&[(false, 2), (true, 1), (false, 2)]));
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(times(&out[1]), (2.0 / FPS, Some(3.0 / FPS)));
    }

    #[test]
    fn progress_adds_up_to_the_defect_length() {
        let mut t = DefectTracker::new(DetectorKind::Freeze, Timing::default());
        let mut seconds = 0.0;
        for i in 0..200 {
            match t.update(Sample::at(i as f64 / FPS), (50..150).contains(&i), 1.0) {
                Some(Transition::Progress { seconds: s, .. }) => seconds += s,
                Some(Transition::Started { elapsed, .. }) => seconds += elapsed,
                _ => {}
            }
        }
        // From the first (t = 2 s) to the last defective frame (t = 5.96 s).
        assert!((seconds - 3.96).abs() < 1e-9, "{seconds}");
    }
}
