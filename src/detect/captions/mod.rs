//! Closed captions presence: caption bytes per service, counted on the coded pictures (before
//! the analysis tier drops any, so a keyframes-only stream still has its captions counted),
//! and a `captions` defect when a stream that carried them, or must carry them, has none.

pub mod cc_data;
pub mod tally;

use std::collections::BTreeMap;

use serde::Serialize;

pub use cc_data::{CaptionBytes, CaptionFormat, CaptionParser};
pub use tally::CaptionTally;

use crate::config::{CaptionsConfig, Timing};
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};

/// Media seconds over which caption bytes are turned into a rate.
pub const RATE_WINDOW_SECS: f64 = 1.0;

/// Caption bytes per second over about the last second of media.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaptionRates {
    /// A caption service was there in the window: caption data, or padding.
    pub present: bool,
    /// All services together.
    pub bytes_per_second: f64,
    /// By service: `cea608_field1`, `cea608_field2`, `cea708_service1`...; services that
    /// carried nothing in the window are left out.
    #[serde(flatten)]
    pub services: BTreeMap<String, f64>,
}

impl CaptionRates {
    fn over(bytes: &CaptionBytes, seconds: f64) -> Self {
        let rate = |n: u64| n as f64 / seconds;
        let fields = (1..).zip(bytes.cea608).filter(|&(_, n)| n > 0);
        let mut services: BTreeMap<String, f64> = fields
            .map(|(field, n)| (format!("cea608_field{field}"), rate(n)))
            .collect();
        for (service, &n) in &bytes.cea708 {
            services.insert(format!("cea708_service{service}"), rate(n));
        }
        Self {
            present: bytes.has_service(),
            bytes_per_second: rate(bytes.total()),
            services,
        }
    }
}

/// One stream's captions: the rate window and the presence defect.
#[derive(Debug)]
pub struct CaptionsDetector {
    config: CaptionsConfig,
    tracker: DefectTracker,
    /// Captions were seen on this stream (in any run): from then on their absence is a defect.
    seen: bool,
    window: CaptionBytes,
    window_start: Option<f64>,
    /// The latest frame of the run: where an open defect ends with it.
    last: Option<Sample>,
}

impl CaptionsDetector {
    pub fn new(config: &CaptionsConfig) -> Self {
        Self {
            config: config.clone(),
            tracker: Self::tracker(config),
            seen: false,
            window: CaptionBytes::default(),
            window_start: None,
            last: None,
        }
    }

    /// Ends as soon as caption data returns: one byte pair is captions again.
    fn tracker(config: &CaptionsConfig) -> DefectTracker {
        let timing = Timing {
            min_duration: config.min_duration,
            clear_duration: 0.0,
        };
        DefectTracker::new(DetectorKind::Captions, timing)
    }

    /// A decoded frame arrived, with the caption bytes of the coded pictures it covers;
    /// returns the rates when a window closes.
    pub fn observe(
        &mut self,
        at: Sample,
        bytes: &CaptionBytes,
        out: &mut Vec<Transition>,
    ) -> Option<CaptionRates> {
        let present = bytes.has_service();
        self.seen |= present;
        self.last = Some(at);
        if self.config.enabled && (self.seen || self.config.expect) {
            out.extend(self.tracker.update(at, !present, 0.0));
        }
        // A window holds the frames after its start: the first frame only opens one.
        let Some(start) = self.window_start else {
            self.window_start = Some(at.media);
            return None;
        };
        self.window.add(bytes);
        let span = at.media - start;
        if span < RATE_WINDOW_SECS {
            return None;
        }
        self.window_start = Some(at.media);
        Some(CaptionRates::over(&std::mem::take(&mut self.window), span))
    }

    /// The run ended: an open defect ends at its last frame, and the next run starts its own
    /// windows (its media time restarts at zero). Whether captions were seen is kept.
    pub fn end_run(&mut self, out: &mut Vec<Transition>) {
        if let Some(last) = self.last.take() {
            out.extend(self.tracker.finish(last));
        }
        self.tracker = Self::tracker(&self.config);
        self.window = CaptionBytes::default();
        self.window_start = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FPS: f64 = 25.0;

    /// Feeds `seconds` of frames from `from`, each with `bytes`; returns the transitions and
    /// the rates.
    fn feed(
        d: &mut CaptionsDetector,
        from: f64,
        seconds: f64,
        bytes: &CaptionBytes,
    ) -> (Vec<Transition>, Vec<CaptionRates>) {
        let (mut out, mut rates) = (Vec::new(), Vec::new());
        let frames = (seconds * FPS).round() as u32;
        for n in 0..frames {
            let at = Sample::at(from + f64::from(n) / FPS);
            rates.extend(d.observe(at, bytes, &mut out));
        }
        (out, rates)
    }

    fn field1() -> CaptionBytes {
        CaptionBytes {
            cea608: [2, 0],
            cea708: BTreeMap::from([(1, 3)]),
            valid: 2,
        }
    }

    /// What an idle caption inserter sends: one padding pair a frame.
    fn padding() -> CaptionBytes {
        CaptionBytes {
            valid: 1,
            ..CaptionBytes::default()
        }
    }

    fn spans(out: &[Transition]) -> Vec<(f64, Option<f64>)> {
        out.iter()
            .filter_map(|t| match t {
                Transition::Started { start, .. } => Some((start.media, None)),
                Transition::Ended { start, end, .. } => Some((start.media, Some(end.media))),
                Transition::Progress { .. } => None,
            })
            .collect()
    }

    #[test]
    fn captions_that_stop_are_a_defect_from_the_first_frame_without_until_they_return() {
        let mut d = CaptionsDetector::new(&CaptionsConfig::default());
        let none = CaptionBytes::default();
        let (out, rates) = feed(&mut d, 0.0, 6.0, &field1());
        assert!(out.is_empty());
        let first = rates.first().unwrap();
        assert_eq!(first.bytes_per_second, 5.0 * FPS, "{rates:?}");
        let last = rates.last().unwrap();
        assert!(last.present);
        assert_eq!(last.services["cea608_field1"], 2.0 * FPS);
        assert_eq!(last.services["cea708_service1"], 3.0 * FPS);
        assert_eq!(last.bytes_per_second, 5.0 * FPS);
        let (out, _) = feed(&mut d, 6.0, 9.9, &none);
        assert!(out.is_empty(), "raised before min_duration: {out:?}");
        let (out, rates) = feed(&mut d, 15.9, 4.1, &none);
        assert_eq!(spans(&out), [(6.0, None)]);
        assert!(!rates.last().unwrap().present);
        let (out, _) = feed(&mut d, 20.0, 2.0, &field1());
        assert_eq!(spans(&out), [(6.0, Some(20.0))]);
    }

    #[test]
    fn padding_through_a_pause_in_the_dialogue_keeps_the_service_present() {
        let mut d = CaptionsDetector::new(&CaptionsConfig::default());
        feed(&mut d, 0.0, 6.0, &field1());
        let (out, rates) = feed(&mut d, 6.0, 60.0, &padding());
        assert!(out.is_empty(), "a pause is not a loss: {out:?}");
        let last = rates.last().unwrap();
        assert!(last.present);
        assert_eq!(last.bytes_per_second, 0.0);
    }

    #[test]
    fn a_stream_without_captions_is_a_defect_only_when_they_are_expected() {
        let none = CaptionBytes::default();
        let mut quiet = CaptionsDetector::new(&CaptionsConfig::default());
        assert!(feed(&mut quiet, 0.0, 60.0, &none).0.is_empty());
        let config = CaptionsConfig {
            expect: true,
            ..CaptionsConfig::default()
        };
        let mut expected = CaptionsDetector::new(&config);
        let (out, _) = feed(&mut expected, 0.0, 12.0, &none);
        assert_eq!(spans(&out), [(0.0, None)]);
        let mut out = Vec::new();
        expected.end_run(&mut out);
        assert_eq!(spans(&out), [(0.0, Some(11.96))]);
    }

    #[test]
    fn short_pauses_and_a_disabled_detector_raise_nothing() {
        let none = CaptionBytes::default();
        let mut d = CaptionsDetector::new(&CaptionsConfig::default());
        for second in 0..6 {
            let from = f64::from(second) * 10.0;
            assert!(feed(&mut d, from, 1.0, &field1()).0.is_empty());
            assert!(feed(&mut d, from + 1.0, 9.0, &none).0.is_empty());
        }
        let disabled = CaptionsConfig {
            enabled: false,
            expect: true,
            ..CaptionsConfig::default()
        };
        let mut d = CaptionsDetector::new(&disabled);
        feed(&mut d, 0.0, 1.0, &field1());
        let (out, rates) = feed(&mut d, 1.0, 30.0, &none);
        assert!(out.is_empty());
        assert!(!rates.is_empty(), "rates are measured even when disabled");
    }
}
