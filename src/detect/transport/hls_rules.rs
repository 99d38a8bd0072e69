//! RFC 8216 (and 8216bis) rules a live origin can break, beyond the sequence and duration
//! checks of [`super::hls`]: each broken rule is a [`Violation`] whose `rule` names its
//! family, so that an operator can tell a shrinking playlist from a jump or a gap.
//!
//! Rules on one playlist ([`static_violations`]), on two polls of one playlist
//! ([`update_violations`]), on the LL-HLS parts ([`LowLatency`]); the cross-variant rules are
//! [`super::hls_ladder`].

use m3u8_rs::{MediaPlaylist, MediaSegment};

use crate::detect::DetectorKind;

/// One rule broken in one poll.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    /// `sequence` (the numbering rules) or `hls_conformance` (the others).
    pub kind: DetectorKind,
    pub rule: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn sequence(rule: &'static str, detail: String) -> Self {
        Self {
            kind: DetectorKind::Sequence,
            rule,
            detail,
        }
    }

    pub fn conformance(rule: &'static str, detail: String) -> Self {
        Self {
            kind: DetectorKind::HlsConformance,
            rule,
            detail,
        }
    }
}

/// The rule families (the `rule` of the events).
pub mod rule {
    /// The media sequence went back, or leaves no room for the segments listed.
    pub const MEDIA_SEQUENCE: &str = "media_sequence";
    /// A numbered segment changed its URI.
    pub const SEGMENT_CHANGED: &str = "segment_changed";
    pub const DISCONTINUITY_SEQUENCE: &str = "discontinuity_sequence";
    /// Segments vanished from the end of the playlist.
    pub const PLAYLIST_SHRINK: &str = "playlist_shrink";
    /// The playlist moved on by more media than the time since the last poll allows.
    pub const SEQUENCE_JUMP: &str = "sequence_jump";
    pub const TARGET_DURATION: &str = "target_duration";
    pub const VERSION: &str = "version";
    pub const GAP: &str = "gap";
    pub const PROGRAM_DATE_TIME: &str = "program_date_time";
    /// The playlist changed after `EXT-X-ENDLIST`.
    pub const ENDLIST: &str = "endlist";
    pub const LOW_LATENCY: &str = "low_latency";
    /// Renditions of one ladder apart in media sequence or program date time.
    pub const VARIANT_DRIFT: &str = "variant_drift";
    /// One rendition stopped while the others advance.
    pub const VARIANT_STALE: &str = "variant_stale";
    /// SCTE-35 cues on other segments than the reference rendition's (`scte35` detector).
    pub const CUE_MISALIGNED: &str = "cue_misaligned";
}

/// Tolerances of the rules, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct Tolerances {
    /// Seconds a program date time may be off the one the previous segment's date and
    /// duration give.
    pub program_date_time: f64,
}

/// The rules one playlist breaks by itself: the version it declares, its dates, its gaps.
/// `new`: the index of its first segment not seen before (gaps are reported when they come).
pub fn static_violations(
    playlist: &MediaPlaylist,
    new: usize,
    tolerances: Tolerances,
    out: &mut Vec<Violation>,
) {
    if let Some(v) = version_violation(playlist) {
        out.push(v);
    }
    if let Some(v) = date_violation(playlist, tolerances.program_date_time) {
        out.push(v);
    }
    let gaps: Vec<&str> = playlist.segments[new.min(playlist.segments.len())..]
        .iter()
        .filter(|s| has_tag(s, "X-GAP"))
        .map(|s| s.uri.as_str())
        .collect();
    if let Some(first) = gaps.first() {
        out.push(Violation::conformance(
            rule::GAP,
            format!(
                "{} new segment(s) marked EXT-X-GAP (first {first}): the origin has no media for them",
                gaps.len()
            ),
        ));
    }
}

/// The rules a playlist breaks against the previous poll of it, beyond the numbering
/// (`elapsed`: seconds between the two polls).
pub fn update_violations(
    prev: &MediaPlaylist,
    next: &MediaPlaylist,
    elapsed: f64,
    out: &mut Vec<Violation>,
) {
    if next.target_duration != prev.target_duration {
        out.push(Violation::conformance(
            rule::TARGET_DURATION,
            format!(
                "EXT-X-TARGETDURATION changed from {} to {}",
                prev.target_duration, next.target_duration
            ),
        ));
    }
    if next.version != prev.version {
        out.push(Violation::conformance(
            rule::VERSION,
            format!(
                "EXT-X-VERSION changed from {} to {}",
                prev.version.unwrap_or(1),
                next.version.unwrap_or(1)
            ),
        ));
    }
    if prev.end_list && playlist_changed(prev, next) {
        out.push(Violation::conformance(
            rule::ENDLIST,
            "the playlist changed after EXT-X-ENDLIST".into(),
        ));
    }
    if let Some(v) = shrink_violation(prev, next) {
        out.push(v);
    }
    if let Some(v) = jump_violation(prev, next, elapsed) {
        out.push(v);
    }
    if let Some(v) = redated_violation(prev, next) {
        out.push(v);
    }
}

/// The sequence number of the newest segment, None for an empty playlist.
fn last_sequence(playlist: &MediaPlaylist) -> Option<u64> {
    (playlist.segments.len() as u64)
        .checked_sub(1)
        .and_then(|n| playlist.media_sequence.checked_add(n))
}

pub fn playlist_changed(prev: &MediaPlaylist, next: &MediaPlaylist) -> bool {
    next.media_sequence != prev.media_sequence
        || next.segments.len() != prev.segments.len()
        || next.segments.last().map(|s| &s.uri) != prev.segments.last().map(|s| &s.uri)
}

/// RFC 8216 §6.2.1: a live playlist only gains segments at its end and loses them at its
/// start; segments that leave from the end were announced and then withdrawn.
fn shrink_violation(prev: &MediaPlaylist, next: &MediaPlaylist) -> Option<Violation> {
    let (before, after) = (last_sequence(prev)?, last_sequence(next).unwrap_or(0));
    (next.media_sequence >= prev.media_sequence && after < before).then(|| {
        Violation::sequence(
            rule::PLAYLIST_SHRINK,
            format!(
                "the newest segment went back from number {before} to {after} ({} segments withdrawn from the end)",
                before - after
            ),
        )
    })
}

/// RFC 8216 §6.2.2: a segment stays listed for at least about the playlist's duration, and
/// a live origin adds media at the pace it is made. Segments that came and went between two
/// polls, more media than the time between them, were never there for a player to fetch.
fn jump_violation(prev: &MediaPlaylist, next: &MediaPlaylist, elapsed: f64) -> Option<Violation> {
    let (before, after) = (last_sequence(prev)?, last_sequence(next)?);
    let added = after.checked_sub(before)?;
    if next.media_sequence <= before || added <= next.segments.len() as u64 {
        return None;
    }
    let mean = next
        .segments
        .iter()
        .map(|s| f64::from(s.duration))
        .filter(|d| d.is_finite() && *d > 0.0)
        .sum::<f64>()
        / next.segments.len() as f64;
    let media = added as f64 * mean;
    let allowed = elapsed + 2.0 * next.target_duration as f64;
    (media > allowed).then(|| {
        Violation::sequence(
            rule::SEQUENCE_JUMP,
            format!(
                "the media sequence jumped from {} to {} ({added} new segments, about {media:.0} s of media in {elapsed:.1} s): segments were never listed long enough to be fetched",
                prev.media_sequence, next.media_sequence
            ),
        )
    })
}

/// RFC 8216 §7: the lowest protocol version the features of a playlist need.
fn version_violation(playlist: &MediaPlaylist) -> Option<Violation> {
    let declared = playlist.version.unwrap_or(1);
    let needs = required_versions(playlist);
    let (needed, feature) = needs.into_iter().max_by_key(|(v, _)| *v)?;
    (needed > declared).then(|| {
        Violation::conformance(
            rule::VERSION,
            format!("EXT-X-VERSION is {declared}, but {feature} needs version {needed}"),
        )
    })
}

fn required_versions(playlist: &MediaPlaylist) -> Vec<(usize, &'static str)> {
    let mut needs = Vec::new();
    let segments = &playlist.segments;
    if segments
        .iter()
        .any(|s| s.key.as_ref().is_some_and(|k| k.iv.is_some()))
    {
        needs.push((2, "the IV attribute of EXT-X-KEY"));
    }
    if segments.iter().any(|s| s.duration.fract() != 0.0) {
        needs.push((3, "a decimal EXTINF duration"));
    }
    if segments.iter().any(|s| s.byte_range.is_some()) {
        needs.push((4, "EXT-X-BYTERANGE"));
    }
    if playlist.i_frames_only {
        needs.push((4, "EXT-X-I-FRAMES-ONLY"));
    }
    if segments.iter().any(|s| {
        s.key
            .as_ref()
            .is_some_and(|k| k.keyformat.is_some() || k.keyformatversions.is_some())
    }) {
        needs.push((5, "the KEYFORMAT attributes of EXT-X-KEY"));
    }
    if segments.iter().any(|s| s.map.is_some()) {
        if playlist.i_frames_only {
            needs.push((5, "EXT-X-MAP"));
        } else {
            needs.push((6, "EXT-X-MAP outside an I-frame playlist"));
        }
    }
    needs
}

/// RFC 8216 §4.3.2.6: a date applies to the first sample of its segment, so between two
/// dated segments with no discontinuity between them the date advances by the first one's
/// duration. And §4.3.2.7: a playlist with EXT-X-DATERANGE has a program date time.
fn date_violation(playlist: &MediaPlaylist, tolerance: f64) -> Option<Violation> {
    let segments = &playlist.segments;
    if segments.iter().any(|s| s.daterange.is_some())
        && segments.iter().all(|s| s.program_date_time.is_none())
    {
        return Some(Violation::conformance(
            rule::PROGRAM_DATE_TIME,
            "EXT-X-DATERANGE without any EXT-X-PROGRAM-DATE-TIME".into(),
        ));
    }
    let mut expected: Option<f64> = None;
    for (i, s) in segments.iter().enumerate() {
        let date = s.program_date_time.map(seconds);
        if s.discontinuity {
            expected = None;
        }
        if let (Some(date), Some(want)) = (date, expected)
            && (date - want).abs() > tolerance
        {
            return Some(Violation::conformance(
                rule::PROGRAM_DATE_TIME,
                format!(
                    "segment {} is dated {:+.3} s off the previous date plus its duration",
                    playlist.media_sequence.saturating_add(i as u64),
                    date - want
                ),
            ));
        }
        let duration = f64::from(s.duration);
        expected = match (date, expected) {
            _ if !duration.is_finite() => None,
            (Some(d), _) => Some(d + duration),
            (None, Some(e)) => Some(e + duration),
            (None, None) => None,
        };
    }
    None
}

/// A segment's date must not change from one poll to the next.
fn redated_violation(prev: &MediaPlaylist, next: &MediaPlaylist) -> Option<Violation> {
    let shift = next.media_sequence.checked_sub(prev.media_sequence)? as usize;
    let overlap = prev.segments.get(shift..)?.iter().zip(&next.segments);
    for (i, (old, new)) in overlap.enumerate() {
        if let (Some(a), Some(b)) = (old.program_date_time, new.program_date_time)
            && a != b
        {
            return Some(Violation::conformance(
                rule::PROGRAM_DATE_TIME,
                format!(
                    "segment {} was re-dated by {:+.3} s",
                    next.media_sequence.saturating_add(i as u64),
                    seconds(b) - seconds(a)
                ),
            ));
        }
    }
    None
}

pub fn seconds(date: chrono::DateTime<chrono::FixedOffset>) -> f64 {
    date.timestamp_micros() as f64 / 1e6
}

/// Whether the segment carries `#EXT-<tag>` (one m3u8-rs does not know).
pub fn has_tag(segment: &MediaSegment, tag: &str) -> bool {
    segment.unknown_tags.iter().any(|t| t.tag == tag)
}

/// The LL-HLS side of a playlist (RFC 8216bis §4.4.3.7, §4.4.4.9, §4.4.5.3), which m3u8-rs
/// does not read: parts after the last segment and preload hints are dropped by it, so they
/// are read from the text.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LowLatency {
    /// `EXT-X-PART-INF:PART-TARGET`.
    pub part_target: Option<f64>,
    /// `EXT-X-SERVER-CONTROL:PART-HOLD-BACK`.
    pub part_hold_back: Option<f64>,
    pub parts: Vec<Part>,
    /// `EXT-X-PRELOAD-HINT` TYPE and URI.
    pub preload_hints: Vec<(String, Option<String>)>,
}

/// One `EXT-X-PART`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Part {
    /// The index of the segment it belongs to among the playlist's segments; the number of
    /// segments for the parts of the segment in progress.
    pub segment: usize,
    pub duration: Option<f64>,
    pub uri: Option<String>,
    pub independent: bool,
}

impl LowLatency {
    /// Reads the LL-HLS tags of a media playlist's text.
    pub fn parse(text: &str) -> Self {
        let mut ll = Self::default();
        let mut segment = 0;
        for line in text.lines().map(str::trim) {
            if line.is_empty() {
                continue;
            }
            let Some(tag) = line.strip_prefix('#') else {
                segment += 1;
                continue;
            };
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            let attrs = attributes(value);
            let number = |key: &str| attr(&attrs, key).and_then(|v| v.parse::<f64>().ok());
            match name {
                "EXT-X-PART-INF" => ll.part_target = number("PART-TARGET"),
                "EXT-X-SERVER-CONTROL" => ll.part_hold_back = number("PART-HOLD-BACK"),
                "EXT-X-PART" => ll.parts.push(Part {
                    segment,
                    duration: number("DURATION"),
                    uri: attr(&attrs, "URI").map(str::to_owned),
                    independent: attr(&attrs, "INDEPENDENT") == Some("YES"),
                }),
                "EXT-X-PRELOAD-HINT" => ll.preload_hints.push((
                    attr(&attrs, "TYPE").unwrap_or("").to_owned(),
                    attr(&attrs, "URI").map(str::to_owned),
                )),
                _ => {}
            }
        }
        ll
    }

    /// The playlist with its first `dropped` segments cut off (see `keep_tail`).
    pub fn drop_segments(&mut self, dropped: usize) {
        self.parts.retain(|p| p.segment >= dropped);
        for p in &mut self.parts {
            p.segment -= dropped;
        }
    }

    /// The LL-HLS rules the playlist breaks.
    pub fn violations(&self, playlist: &MediaPlaylist, out: &mut Vec<Violation>) {
        let problem = if self.parts.is_empty() {
            None
        } else if let Some(target) = self.part_target {
            self.hold_back_problem(target)
                .or_else(|| self.part_problem(playlist, target))
        } else {
            Some("EXT-X-PART without EXT-X-PART-INF".to_owned())
        };
        let problem = problem.or_else(|| self.hint_problem());
        out.extend(problem.map(|p| Violation::conformance(rule::LOW_LATENCY, p)));
    }

    /// §4.4.3.8: PART-HOLD-BACK is required with parts and at least twice the part target.
    fn hold_back_problem(&self, target: f64) -> Option<String> {
        match self.part_hold_back {
            None => Some("EXT-X-PART-INF without PART-HOLD-BACK in EXT-X-SERVER-CONTROL".into()),
            Some(h) if h < 2.0 * target => Some(format!(
                "PART-HOLD-BACK {h} s is under twice the part target ({target} s)"
            )),
            Some(_) => None,
        }
    }

    /// §4.4.4.9: a part lasts at most the part target (and at least 85 % of it, but for
    /// independent parts and a segment's last one); a segment's parts add up to its EXTINF.
    fn part_problem(&self, playlist: &MediaPlaylist, target: f64) -> Option<String> {
        for (i, p) in self.parts.iter().enumerate() {
            let Some(d) = p.duration else {
                return Some("an EXT-X-PART without DURATION".into());
            };
            if p.uri.is_none() {
                return Some("an EXT-X-PART without URI".into());
            }
            let last_of_segment = self.parts.get(i + 1).is_none_or(|n| n.segment != p.segment);
            if d > target + PART_SLACK {
                return Some(format!(
                    "a part lasts {d} s, over the part target of {target} s"
                ));
            }
            let in_progress = p.segment >= playlist.segments.len();
            if d < 0.85 * target - PART_SLACK && !p.independent && !last_of_segment && !in_progress
            {
                return Some(format!(
                    "a part lasts {d} s, under 85 % of the part target of {target} s"
                ));
            }
        }
        self.sum_problem(playlist)
    }

    fn sum_problem(&self, playlist: &MediaPlaylist) -> Option<String> {
        let first = self.parts.first()?.segment;
        for (index, segment) in playlist.segments.iter().enumerate().skip(first) {
            let sum: f64 = self
                .parts
                .iter()
                .filter(|p| p.segment == index)
                .filter_map(|p| p.duration)
                .sum();
            let extinf = f64::from(segment.duration);
            // A segment older than the parts listed has none: nothing to add up.
            if sum > 0.0 && (sum - extinf).abs() > PART_SUM_TOLERANCE {
                return Some(format!(
                    "the parts of {} add up to {sum:.3} s, its EXTINF says {extinf:.3} s",
                    segment.uri
                ));
            }
        }
        None
    }

    /// §4.4.5.3: at most one preload hint of each type, each with a URI.
    fn hint_problem(&self) -> Option<String> {
        for (i, (kind, uri)) in self.preload_hints.iter().enumerate() {
            if uri.is_none() {
                return Some(format!("EXT-X-PRELOAD-HINT TYPE={kind} without URI"));
            }
            if self.preload_hints[..i].iter().any(|(k, _)| k == kind) {
                return Some(format!("more than one EXT-X-PRELOAD-HINT of TYPE={kind}"));
            }
        }
        None
    }

    /// The number of parts listed, to tell when a new one came.
    pub fn newest_part(&self, playlist: &MediaPlaylist) -> Option<(u64, usize)> {
        let last = self.parts.last()?;
        let in_segment = self
            .parts
            .iter()
            .filter(|p| p.segment == last.segment)
            .count();
        Some((
            playlist.media_sequence.saturating_add(last.segment as u64),
            in_segment,
        ))
    }
}

/// Rounding in the durations a packager writes (milliseconds, frames).
const PART_SLACK: f64 = 0.002;
const PART_SUM_TOLERANCE: f64 = 0.1;

/// An attribute list (RFC 8216 §4.2): `KEY=value` pairs, values possibly quoted (and then
/// holding commas).
fn attributes(list: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = list;
    while let Some((key, after)) = rest.split_once('=') {
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((v, tail)) => (v, tail.strip_prefix(',').unwrap_or(tail)),
                None => (quoted, ""),
            }
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.push((key.trim(), value));
        rest = next;
    }
    out
}

fn attr<'a>(attrs: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// A media playlist's text parsed, for tests.
#[cfg(test)]
pub fn parse_media(text: &str) -> MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

#[cfg(test)]
#[path = "../../../tests/support/hls_vectors.rs"]
#[allow(dead_code)]
mod vectors;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::vectors::{STEP_SECS, Vector, vectors};
    use super::*;
    use crate::config::DetectorsConfig;
    use crate::detect::transport::hls::VariantCheck;
    use crate::detect::transport::hls_ladder::{LadderCheck, VariantView};
    use crate::detect::transport::manifest_cues::ManifestCues;

    /// The (detector, rule, file) found polling the vector every second, as the poller does
    /// for 2 s targets, with its segment duration faults.
    fn run(vector: &Vector) -> (BTreeSet<(String, &'static str, &'static str)>, Vec<String>) {
        let config = DetectorsConfig::default();
        let mut checks: Vec<VariantCheck> = vector
            .renditions
            .iter()
            .map(|_| VariantCheck::new(&config))
            .collect();
        let mut ladder = LadderCheck::new(2.0, 1.0);
        let cues: Vec<ManifestCues> = vector
            .renditions
            .iter()
            .map(|_| Default::default())
            .collect();
        let (mut found, mut durations) = (BTreeSet::new(), Vec::new());
        let last = vector.steps() - 1;
        for poll in 0..(2 * vector.steps() + 4) {
            let t = 0.3 + poll as f64 * 1.0;
            let step = ((t / STEP_SECS) as usize).min(last);
            for (r, check) in vector.renditions.iter().zip(&mut checks) {
                let text = &r.steps[step.min(r.steps.len() - 1)];
                let f = check.observe(t, parse_media(text), &LowLatency::parse(text));
                for v in f.violations {
                    found.insert((v.kind.to_string(), v.rule, r.file));
                }
                durations.extend(f.duration_error.map(|e| e.0));
            }
            let views: Vec<VariantView> = vector
                .renditions
                .iter()
                .zip(&checks)
                .zip(&cues)
                .map(|((r, c), cues)| VariantView {
                    name: r.file,
                    playlist: c.last().expect("polled"),
                    age: c.age(t),
                    cues,
                })
                .collect();
            for (file, v) in ladder.observe(&views) {
                let file = vector
                    .renditions
                    .iter()
                    .find(|r| r.file == file)
                    .unwrap()
                    .file;
                found.insert((v.kind.to_string(), v.rule, file));
            }
        }
        (found, durations)
    }

    #[test]
    fn every_rfc_vector_raises_exactly_its_rules() {
        for vector in vectors() {
            let (found, durations) = run(&vector);
            // The cue rules need the poller's cue tracking: the e2e run checks them.
            let expected: BTreeSet<_> = vector
                .expect
                .iter()
                .filter(|(d, _, _)| *d != "scte35")
                .map(|(d, r, f)| (d.to_string(), *r, *f))
                .collect();
            assert_eq!(
                found, expected,
                "vector {} (RFC {})",
                vector.name, vector.rfc
            );
            assert!(durations.is_empty(), "{}: {durations:?}", vector.name);
        }
    }

    #[test]
    fn low_latency_tags_are_read_with_their_segment() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=1.0\n\
                    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0\n\
                    #EXTINF:2.0,\na.ts\n#EXT-X-PART:DURATION=1.0,URI=\"b.0.ts\",INDEPENDENT=YES\n\
                    #EXTINF:2.0,\nb.ts\n#EXT-X-PART:DURATION=0.5,URI=\"c,0.ts\"\n\
                    #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"c.1.ts\"\n";
        let ll = LowLatency::parse(text);
        assert_eq!(ll.part_target, Some(1.0));
        assert_eq!(ll.part_hold_back, Some(3.0));
        assert_eq!(ll.parts.len(), 2);
        assert_eq!((ll.parts[0].segment, ll.parts[0].independent), (1, true));
        assert_eq!(ll.parts[1].uri.as_deref(), Some("c,0.ts"));
        assert_eq!(ll.parts[1].segment, 2);
        assert_eq!(ll.preload_hints, [("PART".into(), Some("c.1.ts".into()))]);
        let mut trimmed = ll.clone();
        trimmed.drop_segments(2);
        assert_eq!(trimmed.parts.len(), 1);
        assert_eq!(trimmed.parts[0].segment, 0);
    }
}
