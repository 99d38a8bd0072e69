//! HLS manifest rules: what one poll of a media playlist says against the previous one (age,
//! sequence, segment durations). The polling itself is
//! [`crate::ingest::adaptive::playlists`].

use std::collections::VecDeque;

use m3u8_rs::MediaPlaylist;
use serde::Serialize;

use super::hls_rules::{self, LowLatency, Tolerances, Violation, rule};
use crate::config::DetectorsConfig;

/// What `/api/streams` shows of one checked playlist.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct VariantStatus {
    /// `main`, or `v0`, `v1`... (variants) and `a0`, `a1`... (audio renditions) in master
    /// playlist order (the `variant` label).
    pub variant: String,
    pub uri: String,
    /// Whether this rendition's segments are fetched and analysed (the others are checked).
    pub analysed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    pub target_duration: f64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: usize,
    /// Seconds since the playlist last changed.
    pub age_seconds: f64,
    /// Whether the playlist ended (`EXT-X-ENDLIST`): not live.
    pub ended: bool,
    /// The latest problem seen: a failed request, a sequence or duration error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The manifest rules of one media playlist, across polls.
pub struct VariantCheck {
    max_overrun: f64,
    drift_tolerance: f64,
    drift_window: f64,
    last: Option<MediaPlaylist>,
    changed_at: f64,
    /// (wall seconds, media seconds added to the playlist since checking began).
    added: VecDeque<(f64, f64)>,
    added_total: f64,
    tolerances: Tolerances,
    last_polled: f64,
    /// The newest LL-HLS part (segment number, parts in it) and when it came.
    newest_part: Option<((u64, usize), f64)>,
    part_target: Option<f64>,
}

/// Part targets without a new part before a low-latency playlist counts as stalled: the
/// three a player's buffer holds, and one for the polling.
const PARTS_STALLED_TARGETS: f64 = 4.0;

/// One poll's findings on a playlist that was fetched and parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub age: f64,
    /// The rules broken in this poll (sequence and conformance).
    pub violations: Vec<Violation>,
    pub duration_error: Option<(String, f64)>,
    /// URIs of segments that appeared since the previous poll, oldest first.
    pub new_segments: Vec<String>,
}

impl VariantCheck {
    pub fn new(config: &DetectorsConfig) -> Self {
        let sd = &config.segment_duration;
        Self {
            max_overrun: sd.max_overrun,
            drift_tolerance: sd.drift_tolerance,
            drift_window: sd.drift_window,
            last: None,
            changed_at: 0.0,
            added: VecDeque::new(),
            added_total: 0.0,
            tolerances: Tolerances {
                program_date_time: config.hls_conformance.program_date_time_tolerance,
            },
            last_polled: 0.0,
            newest_part: None,
            part_target: None,
        }
    }

    /// Judges the playlist fetched at `now` (seconds on any monotonic clock), with its LL-HLS
    /// tags.
    pub fn observe(&mut self, now: f64, playlist: MediaPlaylist, ll: &LowLatency) -> Findings {
        let mut findings = Findings::default();
        let first_new = self.compare_with_last(now, &playlist, &mut findings);
        if let Some(e) = sequence_overflow(&playlist) {
            findings.violations.push(e);
        }
        hls_rules::static_violations(
            &playlist,
            first_new,
            self.tolerances,
            &mut findings.violations,
        );
        ll.violations(&playlist, &mut findings.violations);
        if let Some(v) = self.parts_stalled(now, &playlist, ll) {
            findings.violations.push(v);
        }
        let new = &playlist.segments[first_new.min(playlist.segments.len())..];
        if let Some(e) = new
            .iter()
            .filter_map(|s| duration_fault(s, playlist.target_duration as f64, self.max_overrun))
            .next_back()
        {
            findings.duration_error = Some(e);
        }
        findings.new_segments = new.iter().map(|s| s.uri.clone()).collect();
        self.measure_drift(now, new, &mut findings);
        findings.age = now - self.changed_at;
        self.last = Some(playlist);
        self.last_polled = now;
        findings
    }

    /// The rules against the previous poll; the index of the first segment it did not have.
    fn compare_with_last(
        &mut self,
        now: f64,
        playlist: &MediaPlaylist,
        findings: &mut Findings,
    ) -> usize {
        let Some(prev) = &self.last else {
            self.changed_at = now;
            return 0;
        };
        let target = playlist.target_duration as f64;
        let (first_new, error) = compare(prev, playlist);
        findings.violations.extend(error);
        hls_rules::update_violations(
            prev,
            playlist,
            now - self.last_polled,
            &mut findings.violations,
        );
        let changed = hls_rules::playlist_changed(prev, playlist);
        // A pause longer than a normal update interval, or segments that came and went
        // unseen, make the media added no measure of real time: start afresh.
        let skipped = playlist.media_sequence.saturating_sub(prev.media_sequence)
            > prev.segments.len() as u64;
        let broken = findings
            .violations
            .iter()
            .any(|v| v.kind == crate::detect::DetectorKind::Sequence);
        if broken || skipped || (changed && now - self.changed_at > 2.0 * target.max(1.0)) {
            self.added.clear();
        }
        if changed {
            self.changed_at = now;
        }
        first_new
    }

    /// Media added per wall second against real time, over the drift window.
    fn measure_drift(&mut self, now: f64, new: &[m3u8_rs::MediaSegment], findings: &mut Findings) {
        if self.last.is_none() {
            self.added.push_back((now, 0.0));
            return;
        }
        if new.is_empty() {
            return;
        }
        self.added_total += new
            .iter()
            .map(|s| f64::from(s.duration))
            .filter(|d| d.is_finite() && *d >= 0.0)
            .sum::<f64>();
        self.added.push_back((now, self.added_total));
        if let Some(rate) = self.drift_rate(now)
            && (rate - 1.0).abs() > self.drift_tolerance
            && findings.duration_error.is_none()
        {
            findings.duration_error = Some((
                format!(
                    "the playlist adds {rate:.2} s of media per second over the last {:.0} s",
                    self.drift_window
                ),
                rate,
            ));
        }
    }

    /// RFC 8216bis §6.2.3: a low-latency origin adds a part about every part target; one
    /// that stops for several is late for every player at the live edge.
    fn parts_stalled(
        &mut self,
        now: f64,
        playlist: &MediaPlaylist,
        ll: &LowLatency,
    ) -> Option<Violation> {
        self.part_target = ll.part_target;
        let (Some(newest), Some(target)) = (ll.newest_part(playlist), ll.part_target) else {
            self.newest_part = None;
            return None;
        };
        match self.newest_part {
            Some((seen, _)) if seen == newest => {}
            _ => self.newest_part = Some((newest, now)),
        }
        let since = now - self.newest_part?.1;
        (!playlist.end_list && since > PARTS_STALLED_TARGETS * target).then(|| {
            Violation::conformance(
                rule::LOW_LATENCY,
                format!("no new part for {since:.1} s (part target {target} s)"),
            )
        })
    }

    /// The LL-HLS part target of the last playlist, which sets the poll period.
    pub fn part_target(&self) -> Option<f64> {
        self.newest_part.and(self.part_target)
    }

    /// Media seconds added per wall second over the drift window, once it is covered.
    fn drift_rate(&mut self, now: f64) -> Option<f64> {
        while self.added.len() > 2
            && self
                .added
                .get(1)
                .is_some_and(|(t, _)| now - t >= self.drift_window)
        {
            self.added.pop_front();
        }
        let (t0, m0) = *self.added.front()?;
        let (_, m1) = *self.added.back()?;
        (now - t0 >= self.drift_window).then(|| (m1 - m0) / (now - t0))
    }

    /// The latest playlist, for the status.
    pub fn last(&self) -> Option<&MediaPlaylist> {
        self.last.as_ref()
    }

    /// Seconds since the playlist last changed.
    pub fn age(&self, now: f64) -> f64 {
        now - self.changed_at
    }
}

/// RFC 8216 §4.3.3.2: the media sequence is a decimal-integer (below 2^64) for every segment
/// the playlist lists.
fn sequence_overflow(playlist: &MediaPlaylist) -> Option<Violation> {
    let last = (playlist.segments.len() as u64).saturating_sub(1);
    playlist
        .media_sequence
        .checked_add(last)
        .is_none()
        .then(|| {
            Violation::sequence(
                rule::MEDIA_SEQUENCE,
                format!(
                    "media sequence {} leaves no room for the {} segments listed (over 2^64 - 1)",
                    playlist.media_sequence,
                    playlist.segments.len()
                ),
            )
        })
}

/// A segment whose EXTINF is not a duration, or is over the target duration by more than
/// `max_overrun`: what to say, and the duration.
fn duration_fault(
    segment: &m3u8_rs::MediaSegment,
    target: f64,
    max_overrun: f64,
) -> Option<(String, f64)> {
    let duration = f64::from(segment.duration);
    if !duration.is_finite() || duration < 0.0 {
        Some((
            format!(
                "segment {} has EXTINF {duration}, not a duration",
                segment.uri
            ),
            0.0,
        ))
    } else if duration > target + max_overrun {
        Some((
            format!(
                "segment {} lasts {duration:.3} s, over the target duration of {target} s",
                segment.uri
            ),
            duration,
        ))
    } else {
        None
    }
}

/// Compares a playlist with the previous one: the index of its first segment that the
/// previous one did not have, and the sequence rule it breaks, if any (RFC 8216 §6.2.2:
/// the media sequence never decreases, a numbered segment never changes, and the
/// discontinuity sequence grows by the discontinuities that left the playlist).
fn compare(prev: &MediaPlaylist, next: &MediaPlaylist) -> (usize, Option<Violation>) {
    if next.media_sequence < prev.media_sequence {
        return (
            0,
            Some(Violation::sequence(
                rule::MEDIA_SEQUENCE,
                format!(
                    "media sequence went back from {} to {}",
                    prev.media_sequence, next.media_sequence
                ),
            )),
        );
    }
    let shift = (next.media_sequence - prev.media_sequence) as usize;
    let overlap = prev.segments.len().saturating_sub(shift);
    for (i, (old, new)) in prev.segments[shift.min(prev.segments.len())..]
        .iter()
        .zip(&next.segments)
        .enumerate()
    {
        if old.uri != new.uri {
            return (
                overlap,
                Some(Violation::sequence(
                    rule::SEGMENT_CHANGED,
                    format!(
                        "segment {} changed from {} to {}",
                        next.media_sequence.saturating_add(i as u64),
                        old.uri,
                        new.uri
                    ),
                )),
            );
        }
    }
    if shift <= prev.segments.len() {
        let removed = prev.segments[..shift]
            .iter()
            .filter(|s| s.discontinuity)
            .count() as u64;
        let expected = prev.discontinuity_sequence.saturating_add(removed);
        if next.discontinuity_sequence != expected {
            return (
                overlap,
                Some(Violation::sequence(
                    rule::DISCONTINUITY_SEQUENCE,
                    format!(
                        "discontinuity sequence is {}, expected {expected} after {removed} discontinuities left the playlist",
                        next.discontinuity_sequence
                    ),
                )),
            );
        }
    } else if next.discontinuity_sequence < prev.discontinuity_sequence {
        return (
            overlap,
            Some(Violation::sequence(
                rule::DISCONTINUITY_SEQUENCE,
                format!(
                    "discontinuity sequence went back from {} to {}",
                    prev.discontinuity_sequence, next.discontinuity_sequence
                ),
            )),
        );
    }
    (overlap, None)
}

#[cfg(test)]
mod tests {
    use m3u8_rs::MediaSegment;

    use super::*;

    fn look(check: &mut VariantCheck, t: f64, p: MediaPlaylist) -> Findings {
        check.observe(t, p, &LowLatency::default())
    }

    /// The one violation found, its detail.
    fn detail(f: Findings) -> String {
        assert_eq!(f.violations.len(), 1, "{:?}", f.violations);
        f.violations[0].detail.clone()
    }

    fn playlist(
        sequence: u64,
        discontinuity_sequence: u64,
        segments: &[(&str, f32, bool)],
    ) -> MediaPlaylist {
        MediaPlaylist {
            target_duration: 2,
            media_sequence: sequence,
            discontinuity_sequence,
            segments: segments
                .iter()
                .map(|(uri, duration, discontinuity)| MediaSegment {
                    uri: (*uri).into(),
                    duration: *duration,
                    discontinuity: *discontinuity,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// A live playlist of 2 s segments `s<n>.ts`, 3 in the window, `n` the newest.
    fn live(n: u64) -> MediaPlaylist {
        let names: Vec<String> = (n - 2..=n).map(|i| format!("s{i}.ts")).collect();
        let segs: Vec<(&str, f32, bool)> = names.iter().map(|s| (s.as_str(), 2.0, false)).collect();
        playlist(n - 2, 0, &segs)
    }

    #[test]
    fn a_regular_live_playlist_has_no_findings_and_its_age_resets_on_change() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        let mut t = 0.0;
        for n in 2..100u64 {
            for _ in 0..2 {
                let f = look(&mut check, t, live(n));
                assert_eq!(f.violations, [], "at {t}");
                assert_eq!(f.duration_error, None, "at {t}");
                assert!(f.age <= 1.0 + 1e-9, "age {} at {t}", f.age);
                t += 1.0;
            }
        }
    }

    #[test]
    fn new_segments_are_listed_and_a_stale_playlist_ages() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        assert_eq!(look(&mut check, 0.0, live(5)).new_segments.len(), 3);
        assert_eq!(look(&mut check, 2.0, live(6)).new_segments, vec!["s6.ts"]);
        let f = look(&mut check, 9.0, live(6));
        assert!(f.new_segments.is_empty());
        assert_eq!(f.age, 7.0);
    }

    #[test]
    fn sequence_rules() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        look(&mut check, 0.0, live(10));
        let back = look(&mut check, 1.0, live(7));
        assert!(detail(back).contains("went back from 8 to 5"));

        let mut check = VariantCheck::new(&DetectorsConfig::default());
        look(&mut check, 0.0, live(10));
        let renamed = playlist(
            9,
            0,
            &[
                ("s9.ts", 2.0, false),
                ("other.ts", 2.0, false),
                ("s11.ts", 2.0, false),
            ],
        );
        assert!(
            look(&mut check, 2.0, renamed).violations[0]
                .detail
                .contains("segment 10 changed")
        );

        // A discontinuity leaving the window must raise the discontinuity sequence.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        look(
            &mut check,
            0.0,
            playlist(1, 4, &[("a.ts", 2.0, true), ("b.ts", 2.0, false)]),
        );
        let good = look(
            &mut check,
            2.0,
            playlist(2, 5, &[("b.ts", 2.0, false), ("c.ts", 2.0, false)]),
        );
        assert_eq!(good.violations, []);
        let bad = look(
            &mut check,
            4.0,
            playlist(3, 7, &[("c.ts", 2.0, false), ("d.ts", 2.0, false)]),
        );
        assert!(detail(bad).contains("expected 5"));
    }

    #[test]
    fn overlong_segments_and_drift_are_duration_errors() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        look(&mut check, 0.0, live(3));
        let long = playlist(
            2,
            0,
            &[
                ("s2.ts", 2.0, false),
                ("s3.ts", 2.0, false),
                ("s4.ts", 2.6, false),
            ],
        );
        let (what, value) = look(&mut check, 2.0, long).duration_error.unwrap();
        assert!(what.contains("s4.ts lasts 2.600"), "{what}");
        assert!((value - 2.6).abs() < 1e-6);

        // Segments labelled 2 s arriving every 3 s: the playlist runs 33% slow.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        let mut drift = None;
        for (i, n) in (2..40u64).enumerate() {
            if let Some((_, rate)) = look(&mut check, i as f64 * 3.0, live(n)).duration_error {
                drift.get_or_insert((i as f64 * 3.0, rate));
            }
        }
        let (when, rate) = drift.expect("drift found");
        assert!((60.0..=66.0).contains(&when), "{when}");
        assert!((rate - 2.0 / 3.0).abs() < 0.05, "{rate}");
    }
}
