//! HLS manifest rules: what one poll of a media playlist says against the previous one (age,
//! sequence, segment durations). The polling itself is
//! [`crate::ingest::adaptive::playlists`].

use std::collections::VecDeque;

use m3u8_rs::MediaPlaylist;
use serde::Serialize;

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
}

/// One poll's findings on a playlist that was fetched and parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub age: f64,
    pub sequence_error: Option<String>,
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
        }
    }

    /// Judges the playlist fetched at `now` (seconds on any monotonic clock).
    pub fn observe(&mut self, now: f64, playlist: MediaPlaylist) -> Findings {
        let mut findings = Findings::default();
        let target = playlist.target_duration as f64;
        let first_new = match &self.last {
            None => {
                self.changed_at = now;
                0
            }
            Some(prev) => {
                let (first_new, error) = compare(prev, &playlist);
                findings.sequence_error = error;
                let changed = playlist.media_sequence != prev.media_sequence
                    || playlist.segments.len() != prev.segments.len()
                    || playlist.segments.last().map(|s| &s.uri)
                        != prev.segments.last().map(|s| &s.uri);
                // A pause longer than a normal update interval, or segments that came and
                // went unseen, make the media added no measure of real time: start afresh.
                let skipped = playlist.media_sequence.saturating_sub(prev.media_sequence)
                    > prev.segments.len() as u64;
                if findings.sequence_error.is_some()
                    || skipped
                    || (changed && now - self.changed_at > 2.0 * target.max(1.0))
                {
                    self.added.clear();
                }
                if changed {
                    self.changed_at = now;
                }
                first_new
            }
        };
        if let Some(e) = sequence_overflow(&playlist) {
            findings.sequence_error = Some(e);
        }
        let new = &playlist.segments[first_new.min(playlist.segments.len())..];
        if let Some(e) = new
            .iter()
            .filter_map(|s| duration_fault(s, target, self.max_overrun))
            .next_back()
        {
            findings.duration_error = Some(e);
        }
        findings.new_segments = new.iter().map(|s| s.uri.clone()).collect();
        if self.last.is_some() && !new.is_empty() {
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
        } else if self.last.is_none() {
            self.added.push_back((now, 0.0));
        }
        findings.age = now - self.changed_at;
        self.last = Some(playlist);
        findings
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
fn sequence_overflow(playlist: &MediaPlaylist) -> Option<String> {
    let last = (playlist.segments.len() as u64).saturating_sub(1);
    playlist
        .media_sequence
        .checked_add(last)
        .is_none()
        .then(|| {
            format!(
                "media sequence {} leaves no room for the {} segments listed (over 2^64 - 1)",
                playlist.media_sequence,
                playlist.segments.len()
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
fn compare(prev: &MediaPlaylist, next: &MediaPlaylist) -> (usize, Option<String>) {
    if next.media_sequence < prev.media_sequence {
        return (
            0,
            Some(format!(
                "media sequence went back from {} to {}",
                prev.media_sequence, next.media_sequence
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
                Some(format!(
                    "segment {} changed from {} to {}",
                    next.media_sequence.saturating_add(i as u64),
                    old.uri,
                    new.uri
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
                Some(format!(
                    "discontinuity sequence is {}, expected {expected} after {removed} discontinuities left the playlist",
                    next.discontinuity_sequence
                )),
            );
        }
    }
    (overlap, None)
}

#[cfg(test)]
mod tests {
    use m3u8_rs::MediaSegment;

    use super::*;

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
                let f = check.observe(t, live(n));
                assert_eq!(f.sequence_error, None, "at {t}");
                assert_eq!(f.duration_error, None, "at {t}");
                assert!(f.age <= 1.0 + 1e-9, "age {} at {t}", f.age);
                t += 1.0;
            }
        }
    }

    #[test]
    fn new_segments_are_listed_and_a_stale_playlist_ages() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        assert_eq!(check.observe(0.0, live(5)).new_segments.len(), 3);
        assert_eq!(check.observe(2.0, live(6)).new_segments, vec!["s6.ts"]);
        let f = check.observe(9.0, live(6));
        assert!(f.new_segments.is_empty());
        assert_eq!(f.age, 7.0);
    }

    #[test]
    fn sequence_rules() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(10));
        let back = check.observe(1.0, live(7));
        assert!(
            back.sequence_error
                .unwrap()
                .contains("went back from 8 to 5")
        );

        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(10));
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
            check
                .observe(2.0, renamed)
                .sequence_error
                .unwrap()
                .contains("segment 10 changed")
        );

        // A discontinuity leaving the window must raise the discontinuity sequence.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(
            0.0,
            playlist(1, 4, &[("a.ts", 2.0, true), ("b.ts", 2.0, false)]),
        );
        let good = check.observe(
            2.0,
            playlist(2, 5, &[("b.ts", 2.0, false), ("c.ts", 2.0, false)]),
        );
        assert_eq!(good.sequence_error, None);
        let bad = check.observe(
            4.0,
            playlist(3, 7, &[("c.ts", 2.0, false), ("d.ts", 2.0, false)]),
        );
        assert!(bad.sequence_error.unwrap().contains("expected 5"));
    }

    #[test]
    fn overlong_segments_and_drift_are_duration_errors() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(3));
        let long = playlist(
            2,
            0,
            &[
                ("s2.ts", 2.0, false),
                ("s3.ts", 2.0, false),
                ("s4.ts", 2.6, false),
            ],
        );
        let (what, value) = check.observe(2.0, long).duration_error.unwrap();
        assert!(what.contains("s4.ts lasts 2.600"), "{what}");
        assert!((value - 2.6).abs() < 1e-6);

        // Segments labelled 2 s arriving every 3 s: the playlist runs 33% slow.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        let mut drift = None;
        for (i, n) in (2..40u64).enumerate() {
            if let Some((_, rate)) = check.observe(i as f64 * 3.0, live(n)).duration_error {
                drift.get_or_insert((i as f64 * 3.0, rate));
            }
        }
        let (when, rate) = drift.expect("drift found");
        assert!((60.0..=66.0).contains(&when), "{when}");
        assert!((rate - 2.0 / 3.0).abs() < 0.05, "{rate}");
    }
}
