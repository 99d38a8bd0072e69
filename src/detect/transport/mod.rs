//! Transport and manifest health: faults visible before a single pixel is wrong.
//!
//! - `stall`: no decoded frame for `detectors.stall.after` seconds on a stream that was up;
//! - `bitrate`: bytes entering the demuxer averaged over a window, against a floor;
//! - HLS (`hls`): the playlists fetched alongside the media pipeline, judged by `playlist_stale`,
//!   `sequence`, `segment_duration`, `http_errors` and `hls_conformance` per variant (the last
//!   two with one event per broken rule family, `hls_rules` and `hls_ladder`);
//! - MPEG-TS: ETSI TR 101 290 (`tr101290`), one defect per priority while its errors come.
//!
//! These run on wall-clock time: a stalled stream has no media time. Their trackers take
//! samples whose `media` field is seconds since the stream was added, which is also what
//! their events' `start` and `end` hold.

pub mod dash_events;
pub mod hls;
pub mod hls_ladder;
pub mod hls_rules;
pub mod manifest_cues;
pub mod psi;
pub mod rtp;
pub mod scte35;
pub mod tr101290;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::config::{DetectorsConfig, Timing};
use crate::detect::{DefectTracker, DetectorKind, Sample, Scope, Scoped, Transition};

/// The HLS detectors' verdict on one poll of one variant's media playlist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlaylistVerdict {
    /// The playlist or a segment request failed (status, connection, parse).
    pub http_failed: bool,
    /// Seconds since the playlist last changed, when it was fetched (None on failure).
    pub age: Option<f64>,
    /// The target duration, for the stale threshold.
    pub target_duration: f64,
    /// The playlist ended (`EXT-X-ENDLIST`): it is not live and cannot be stale.
    pub ended: bool,
    /// A sequence error seen in this poll, of a manifest without rule families (DASH).
    pub sequence_error: Option<String>,
    /// The HLS rules broken in this poll, each its own event (by `rule`).
    pub violations: Vec<hls_rules::Violation>,
    /// The SCTE-35 cues of the segments new in this poll, and the ad break's changes, on the
    /// rendition whose cues stand for the stream's.
    pub cues: Vec<scte35::Cue>,
    pub breaks: Vec<scte35::BreakChange>,
    /// A segment longer than allowed, or drift, seen in this poll: (what, value).
    pub duration_error: Option<(String, f64)>,
}

/// One variant's HLS trackers.
struct VariantTrackers {
    stale: DefectTracker,
    sequence: DefectTracker,
    duration: DefectTracker,
    http: DefectTracker,
    /// One tracker per rule broken so far.
    rules: BTreeMap<&'static str, DefectTracker>,
    /// The ad breaks the playlist's cues describe.
    breaks: BreakTrackers,
}

impl VariantTrackers {
    fn new(c: &DetectorsConfig, variant: &str) -> Self {
        let hold = |clear_duration: f64| Timing {
            min_duration: 0.0,
            clear_duration,
        };
        Self {
            stale: DefectTracker::new(DetectorKind::PlaylistStale, hold(0.0)),
            sequence: DefectTracker::new(DetectorKind::Sequence, hold(c.sequence.hold)),
            duration: DefectTracker::new(
                DetectorKind::SegmentDuration,
                hold(c.segment_duration.hold),
            ),
            http: DefectTracker::new(DetectorKind::HttpErrors, c.http_errors.timing()),
            rules: BTreeMap::new(),
            breaks: BreakTrackers::new(c.scte35.hold, Some(variant)),
        }
    }

    /// A live playlist older than `limit` is stale, since its last change plus the limit.
    fn observe_age(
        &mut self,
        at: Sample,
        age: f64,
        limit: f64,
        verdict: &PlaylistVerdict,
    ) -> Option<Transition> {
        let stale = !verdict.ended && verdict.target_duration > 0.0 && age > limit;
        if stale && !self.stale.engaged() {
            let late = age - limit;
            let since = Sample {
                media: at.media - late,
                wall: at
                    .wall
                    .checked_sub(Duration::from_secs_f64(late))
                    .unwrap_or(at.wall),
            };
            self.stale.update(since, true, age)
        } else {
            self.stale.update(at, stale, age)
        }
    }
}

/// Bytes-in counter samples over the averaging window.
struct BitrateMeter {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl BitrateMeter {
    /// Adds the byte total at `now`; returns bits per second once the window is covered.
    fn sample(&mut self, now: Instant, total_bytes: u64) -> Option<f64> {
        self.samples.push_back((now, total_bytes));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= self.window)
        {
            self.samples.pop_front();
        }
        let (t0, b0) = *self.samples.front()?;
        let span = now.duration_since(t0);
        (span >= self.window.mul_f64(0.9))
            .then(|| total_bytes.saturating_sub(b0) as f64 * 8.0 / span.as_secs_f64())
    }
}

/// One TR 101 290 priority's defect: on while its errors keep coming.
struct PriorityTracker {
    tracker: DefectTracker,
    /// Errors came since the last watchdog tick.
    recent: bool,
    /// The indicators seen since the defect started.
    indicators: Vec<&'static str>,
}

impl PriorityTracker {
    fn new(hold: f64) -> Self {
        Self {
            tracker: DefectTracker::new(
                DetectorKind::Tr101290,
                Timing {
                    min_duration: 0.0,
                    clear_duration: hold,
                },
            ),
            recent: false,
            indicators: Vec::new(),
        }
    }

    fn update(&mut self, priority: u8, at: Sample, bad: bool, out: &mut Vec<Scoped>) {
        let transition = self.tracker.update(at, bad, 1.0);
        self.push(priority, transition, out);
    }

    fn finish(&mut self, priority: u8, at: Sample, out: &mut Vec<Scoped>) {
        let transition = self.tracker.finish(at);
        self.push(priority, transition, out);
    }

    fn push(&mut self, priority: u8, transition: Option<Transition>, out: &mut Vec<Scoped>) {
        let Some(t) = transition else { return };
        let ended = matches!(t, Transition::Ended { .. });
        out.push((t, Scope::tr101290(priority, &self.indicators)));
        if ended {
            self.indicators.clear();
        }
    }
}

/// SCTE-35 faults: a break running past its declared duration (on until it returns), and a
/// return with no break on (held like other instantaneous faults).
struct BreakTrackers {
    /// The HLS rendition whose cues these are; None for the MPEG-TS ones.
    variant: Option<String>,
    overrun: DefectTracker,
    overrunning: bool,
    orphan: DefectTracker,
    orphan_recent: bool,
}

impl BreakTrackers {
    fn new(hold: f64, variant: Option<&str>) -> Self {
        let timing = |clear_duration| Timing {
            min_duration: 0.0,
            clear_duration,
        };
        Self {
            variant: variant.map(str::to_owned),
            overrun: DefectTracker::new(DetectorKind::Scte35, timing(0.0)),
            overrunning: false,
            orphan: DefectTracker::new(DetectorKind::Scte35, timing(hold)),
            orphan_recent: false,
        }
    }

    fn observe(&mut self, at: Sample, changes: &[scte35::BreakChange], out: &mut Vec<Scoped>) {
        use scte35::BreakChange;
        for change in changes {
            match change {
                BreakChange::Overrun { .. } => self.overrunning = true,
                BreakChange::Ended { .. } => self.overrunning = false,
                BreakChange::InWithoutOut { .. } => self.orphan_recent = true,
                BreakChange::Started { .. } => {}
            }
        }
        self.update(at, false, out);
    }

    /// `tick`: the watchdog's, which ends a held fault.
    fn update(&mut self, at: Sample, tick: bool, out: &mut Vec<Scoped>) {
        if self.overrunning || self.overrun.engaged() {
            let t = self.overrun.update(at, self.overrunning, 1.0);
            out.extend(t.map(|t| (t, self.scope("break_overrun"))));
        }
        let recent = if tick {
            std::mem::take(&mut self.orphan_recent)
        } else {
            self.orphan_recent
        };
        if recent || self.orphan.engaged() {
            let t = self.orphan.update(at, recent, 1.0);
            out.extend(t.map(|t| (t, self.scope("in_without_out"))));
        }
    }

    fn scope(&self, rule: &'static str) -> Scope {
        match &self.variant {
            Some(v) => Scope::variant_rule(v, rule),
            None => Scope::rule(rule),
        }
    }

    fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        self.overrunning = false;
        self.orphan_recent = false;
        let overrun = self.overrun.finish(at);
        out.extend(overrun.map(|t| (t, self.scope("break_overrun"))));
        let orphan = self.orphan.finish(at);
        out.extend(orphan.map(|t| (t, self.scope("in_without_out"))));
    }
}

/// A stream that should carry cues (`scte35.max_interval` set) and has had none for that long:
/// the signalling path from the ad server or the encoder is lost.
struct CueWatch {
    /// When the last message came, or the watch of this run began.
    last: Option<f64>,
    tracker: DefectTracker,
}

impl CueWatch {
    fn new() -> Self {
        Self {
            last: None,
            tracker: DefectTracker::new(
                DetectorKind::Scte35,
                Timing {
                    min_duration: 0.0,
                    clear_duration: 0.0,
                },
            ),
        }
    }

    fn note_cue(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        self.last = Some(at.media);
        let transition = self.tracker.update(at, false, 0.0);
        out.extend(transition.map(|t| (t, Scope::rule(NO_CUE))));
    }

    fn tick(&mut self, at: Sample, max_interval: f64, out: &mut Vec<Scoped>) {
        let since = at.media - *self.last.get_or_insert(at.media);
        let transition = self.tracker.update(at, since > max_interval, since);
        out.extend(transition.map(|t| (t, Scope::rule(NO_CUE))));
    }

    fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        self.last = None;
        out.extend(self.tracker.finish(at).map(|t| (t, Scope::rule(NO_CUE))));
    }
}

const NO_CUE: &str = "no_cue";

/// Wall-clock transport detectors of one stream.
pub struct TransportDetectors {
    config: DetectorsConfig,
    stall: DefectTracker,
    bitrate: DefectTracker,
    meter: BitrateMeter,
    variants: BTreeMap<String, VariantTrackers>,
    /// TR 101 290 priorities 1, 2 and 3.
    priorities: [PriorityTracker; 3],
    breaks: BreakTrackers,
    cue_watch: CueWatch,
}

impl TransportDetectors {
    pub fn new(config: &DetectorsConfig) -> Self {
        Self {
            stall: DefectTracker::new(
                DetectorKind::Stall,
                Timing {
                    min_duration: 0.0,
                    clear_duration: 0.0,
                },
            ),
            bitrate: DefectTracker::new(DetectorKind::Bitrate, config.bitrate.timing()),
            meter: BitrateMeter {
                window: Duration::from_secs_f64(config.bitrate.window),
                samples: VecDeque::new(),
            },
            variants: BTreeMap::new(),
            priorities: std::array::from_fn(|_| PriorityTracker::new(config.tr101290.hold)),
            breaks: BreakTrackers::new(config.scte35.hold, None),
            cue_watch: CueWatch::new(),
            config: config.clone(),
        }
    }

    /// TR 101 290 errors found in one buffer: each priority's defect starts with its first.
    pub fn observe_ts_errors(
        &mut self,
        at: Sample,
        errors: &[tr101290::IndicatorErrors],
        out: &mut Vec<Scoped>,
    ) {
        for (level, p) in (1u8..).zip(self.priorities.iter_mut()) {
            let mut found = false;
            for e in errors.iter().filter(|e| e.priority == level) {
                found = true;
                if !p.indicators.contains(&e.indicator) {
                    p.indicators.push(e.indicator);
                }
            }
            if found {
                p.recent = true;
                p.update(level, at, true, out);
            }
        }
    }

    /// The ad break's changes, from the SCTE-35 cues.
    pub fn observe_breaks(
        &mut self,
        at: Sample,
        changes: &[scte35::BreakChange],
        out: &mut Vec<Scoped>,
    ) {
        if self.config.scte35.enabled && !changes.is_empty() {
            self.breaks.observe(at, changes, out);
        }
    }

    /// SCTE-35 messages came (in the TS, or in the analysed rendition's manifest).
    pub fn note_cues(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        if self.watches_cues() {
            self.cue_watch.note_cue(at, out);
        }
    }

    fn watches_cues(&self) -> bool {
        self.config.scte35.enabled && self.config.scte35.max_interval > 0.0
    }

    /// Each priority's defect ends `hold` seconds after its last error.
    fn tick_tr101290(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        for (level, p) in (1u8..).zip(self.priorities.iter_mut()) {
            let recent = std::mem::take(&mut p.recent);
            if recent || p.tracker.engaged() {
                p.update(level, at, recent, out);
            }
        }
    }

    /// A watchdog tick of a running pipeline. `silence` is the time since the last decoded
    /// frame when the run has had one (None before its first frame: that is `starting`, not a
    /// stall); `at` the current time. Returns the input bitrate once it can be told.
    pub fn tick(
        &mut self,
        at: Sample,
        now: Instant,
        silence: Option<Duration>,
        input_bytes: u64,
        out: &mut Vec<Scoped>,
    ) -> Option<f64> {
        if self.config.stall.enabled {
            let stalled = silence.filter(|s| s.as_secs_f64() >= self.config.stall.after);
            let transition = match stalled {
                // Back-dated to the last frame: that is when the picture stopped.
                Some(s) if !self.stall.engaged() => {
                    let since = Sample {
                        media: at.media - s.as_secs_f64(),
                        wall: at.wall.checked_sub(s).unwrap_or(at.wall),
                    };
                    self.stall.update(since, true, s.as_secs_f64())
                }
                Some(s) => self.stall.update(at, true, s.as_secs_f64()),
                None => self.stall.update(at, false, 0.0),
            };
            out.extend(transition.map(|t| (t, Scope::default())));
        }
        self.tick_tr101290(at, out);
        self.breaks.update(at, true, out);
        if self.watches_cues() {
            self.cue_watch
                .tick(at, self.config.scte35.max_interval, out);
        }
        let bitrate = self.meter.sample(now, input_bytes);
        let floor = self.config.bitrate.min_bits_per_second;
        if let Some(bps) = bitrate
            && floor > 0.0
        {
            out.extend(
                self.bitrate
                    .update(at, bps < floor, bps)
                    .map(|t| (t, Scope::default())),
            );
        }
        bitrate
    }

    /// A pipeline run ended: stall and bitrate belong to a run (a stream that is down says so
    /// by its state), so their defects end here and the meter starts afresh.
    pub fn end_run(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        for tracker in [&mut self.stall, &mut self.bitrate] {
            out.extend(tracker.finish(at).map(|t| (t, Scope::default())));
        }
        for (level, p) in (1u8..).zip(self.priorities.iter_mut()) {
            p.finish(level, at, out);
            p.recent = false;
        }
        self.breaks.finish(at, out);
        self.cue_watch.finish(at, out);
        self.meter.samples.clear();
    }

    /// One poll of one HLS variant.
    pub fn observe_playlist(
        &mut self,
        variant: &str,
        at: Sample,
        verdict: &PlaylistVerdict,
        out: &mut Vec<Scoped>,
    ) {
        let c = &self.config;
        let trackers = self
            .variants
            .entry(variant.to_owned())
            .or_insert_with(|| VariantTrackers::new(c, variant));
        let mut push = |t: Option<Transition>| out.extend(t.map(|t| (t, Scope::variant(variant))));
        if c.http_errors.enabled {
            push(trackers.http.update(at, verdict.http_failed, 1.0));
        }
        // A failed fetch says nothing about staleness; http_errors reports it.
        if let Some(age) = verdict.age
            && c.playlist_stale.enabled
        {
            let limit = c.playlist_stale.max_target_durations * verdict.target_duration;
            push(trackers.observe_age(at, age, limit, verdict));
        }
        if c.sequence.enabled {
            push(
                trackers
                    .sequence
                    .update(at, verdict.sequence_error.is_some(), 1.0),
            );
        }
        if c.segment_duration.enabled {
            let (bad, value) = match &verdict.duration_error {
                Some((_, v)) => (true, *v),
                None => (false, 0.0),
            };
            push(trackers.duration.update(at, bad, value));
        }
        Self::observe_rules(
            c,
            &mut trackers.rules,
            variant,
            at,
            &verdict.violations,
            out,
        );
        if c.scte35.enabled {
            trackers.breaks.observe(at, &verdict.breaks, out);
            // Polls are the manifest's clock: each ends a held fault whose cue is past.
            trackers.breaks.update(at, true, out);
        }
        if !verdict.cues.is_empty() && self.watches_cues() {
            self.cue_watch.note_cue(at, out);
        }
    }

    /// One tracker per rule family, held like the other instantaneous manifest faults.
    fn observe_rules(
        c: &DetectorsConfig,
        rules: &mut BTreeMap<&'static str, DefectTracker>,
        variant: &str,
        at: Sample,
        violations: &[hls_rules::Violation],
        out: &mut Vec<Scoped>,
    ) {
        let settings = |kind| match kind {
            DetectorKind::Sequence => (c.sequence.enabled, c.sequence.hold),
            DetectorKind::Scte35 => (c.scte35.enabled, c.scte35.hold),
            _ => (c.hls_conformance.enabled, c.hls_conformance.hold),
        };
        for v in violations {
            let (enabled, hold) = settings(v.kind);
            if !enabled {
                continue;
            }
            rules.entry(v.rule).or_insert_with(|| {
                DefectTracker::new(
                    v.kind,
                    Timing {
                        min_duration: 0.0,
                        clear_duration: hold,
                    },
                )
            });
        }
        for (rule, tracker) in rules.iter_mut() {
            let bad = violations.iter().any(|v| v.rule == *rule);
            let transition = tracker.update(at, bad, 1.0);
            out.extend(transition.map(|t| (t, Scope::variant_rule(variant, rule))));
        }
    }

    /// The variant is no longer checked (gone from the master playlist, or monitoring ended).
    pub fn forget_variant(&mut self, variant: &str, at: Sample, out: &mut Vec<Scoped>) {
        if let Some(mut t) = self.variants.remove(variant) {
            for tracker in [&mut t.stale, &mut t.sequence, &mut t.duration, &mut t.http] {
                out.extend(tracker.finish(at).map(|t| (t, Scope::variant(variant))));
            }
            for (rule, tracker) in &mut t.rules {
                let transition = tracker.finish(at);
                out.extend(transition.map(|t| (t, Scope::variant_rule(variant, rule))));
            }
            t.breaks.finish(at, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn at(t: f64) -> Sample {
        Sample {
            media: t,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(1000.0 + t),
        }
    }

    fn started(out: &[Scoped]) -> Vec<(DetectorKind, f64)> {
        out.iter()
            .filter_map(|(t, _)| match t {
                Transition::Started {
                    detector, start, ..
                } => Some((*detector, start.media)),
                _ => None,
            })
            .collect()
    }

    fn ended(out: &[Scoped]) -> Vec<(DetectorKind, f64, f64)> {
        out.iter()
            .filter_map(|(t, _)| match t {
                Transition::Ended {
                    detector,
                    start,
                    end,
                    ..
                } => Some((*detector, start.media, end.media)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn no_cue_for_max_interval_is_a_fault_until_one_comes_and_is_off_by_default() {
        let mut config = DetectorsConfig::default();
        config.scte35.max_interval = 30.0;
        let now = Instant::now();
        for (config, expected) in [(config, true), (DetectorsConfig::default(), false)] {
            let mut d = TransportDetectors::new(&config);
            let mut out = Vec::new();
            d.note_cues(at(0.0), &mut out);
            for t in 1..=35 {
                d.tick(at(f64::from(t)), now, None, 0, &mut out);
            }
            d.note_cues(at(40.0), &mut out);
            let rules: Vec<_> = out.iter().map(|(_, scope)| scope.rule).collect();
            if expected {
                assert_eq!(started(&out), [(DetectorKind::Scte35, 31.0)]);
                assert_eq!(ended(&out), [(DetectorKind::Scte35, 31.0, 40.0)]);
                assert!(rules.iter().all(|r| *r == Some(NO_CUE)), "{rules:?}");
            } else {
                assert!(out.is_empty(), "{rules:?}");
            }
        }
    }

    #[test]
    fn a_stall_is_back_dated_to_the_last_frame_and_ends_when_frames_return() {
        let mut d = TransportDetectors::new(&DetectorsConfig::default());
        let base = Instant::now();
        let mut out = Vec::new();
        // Frames until t=10, then none until t=15.
        for i in 0..80 {
            let t = f64::from(i) * 0.25;
            let silence = if t > 10.0 && t < 15.0 { t - 10.0 } else { 0.0 };
            let now = base + Duration::from_secs_f64(t);
            let silence = Some(Duration::from_secs_f64(silence));
            d.tick(at(t), now, silence, 0, &mut out);
        }
        assert_eq!(started(&out), vec![(DetectorKind::Stall, 10.0)]);
        assert_eq!(ended(&out), vec![(DetectorKind::Stall, 10.0, 15.0)]);
    }

    #[test]
    fn no_stall_before_the_first_frame_and_bitrate_needs_a_floor() {
        let mut d = TransportDetectors::new(&DetectorsConfig::default());
        let base = Instant::now();
        let mut out = Vec::new();
        let mut last = None;
        for i in 0..100 {
            let t = f64::from(i) * 0.25;
            let now = base + Duration::from_secs_f64(t);
            last = d.tick(at(t), now, None, (t * 125_000.0) as u64, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        let bps = last.expect("a full window");
        assert!((bps - 1_000_000.0).abs() < 1_000.0, "{bps}");
    }

    #[test]
    fn a_bitrate_under_its_floor_for_min_duration_is_a_defect() {
        let mut config = DetectorsConfig::default();
        config.bitrate.min_bits_per_second = 500_000.0;
        config.bitrate.window = 2.0;
        let mut d = TransportDetectors::new(&config);
        let base = Instant::now();
        let mut out = Vec::new();
        let mut bytes = 0u64;
        for i in 0..160 {
            let t = f64::from(i) * 0.25;
            // 1 Mb/s, then 100 kb/s from t=10 to t=25.
            bytes += if (10.0..25.0).contains(&t) {
                3_125
            } else {
                31_250
            };
            d.tick(
                at(t),
                base + Duration::from_secs_f64(t),
                Some(Duration::ZERO),
                bytes,
                &mut out,
            );
        }
        let s = started(&out);
        assert_eq!(s.len(), 1, "{out:?}");
        assert_eq!(s[0].0, DetectorKind::Bitrate);
        assert!((10.0..12.5).contains(&s[0].1), "{s:?}");
        assert_eq!(ended(&out).len(), 1);
    }

    #[test]
    fn stale_playlists_are_reported_from_when_they_became_too_old() {
        let mut d = TransportDetectors::new(&DetectorsConfig::default());
        let mut out = Vec::new();
        for i in 0..40 {
            let t = f64::from(i);
            // Changes every 2 s (target 2) until t=10, then never until t=30.
            let age = if (10.0..30.0).contains(&t) {
                t - 10.0
            } else {
                t % 2.0
            };
            let verdict = PlaylistVerdict {
                age: Some(age),
                target_duration: 2.0,
                ..Default::default()
            };
            d.observe_playlist("v0", at(t), &verdict, &mut out);
        }
        assert_eq!(started(&out), vec![(DetectorKind::PlaylistStale, 16.0)]);
        assert_eq!(ended(&out), vec![(DetectorKind::PlaylistStale, 16.0, 30.0)]);
        assert!(out.iter().all(|(_, s)| s.variant.as_deref() == Some("v0")));
    }

    #[test]
    fn one_sequence_error_is_held_and_http_errors_need_min_duration() {
        let mut d = TransportDetectors::new(&DetectorsConfig::default());
        let mut out = Vec::new();
        for i in 0..30 {
            let t = f64::from(i);
            let verdict = PlaylistVerdict {
                age: Some(0.0),
                target_duration: 2.0,
                sequence_error: (i == 5).then(|| "went backwards".to_owned()),
                // One failed poll (t=8) is noise; t=12..16 is an outage.
                http_failed: i == 8 || (12..16).contains(&i),
                ..Default::default()
            };
            d.observe_playlist("main", at(t), &verdict, &mut out);
        }
        assert_eq!(
            started(&out),
            vec![
                (DetectorKind::Sequence, 5.0),
                (DetectorKind::HttpErrors, 12.0)
            ]
        );
        assert_eq!(
            ended(&out),
            vec![
                (DetectorKind::Sequence, 5.0, 6.0),
                (DetectorKind::HttpErrors, 12.0, 16.0)
            ]
        );
    }
}
