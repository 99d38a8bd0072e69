//! SCTE-35 cues in HLS playlists: `EXT-X-CUE-OUT`/`EXT-X-CUE-IN` (the tags most packagers
//! write) and `EXT-X-DATERANGE` with `SCTE35-OUT`/`SCTE35-IN`/`SCTE35-CMD` (RFC 8216
//! §4.3.2.7.1, the splice_info_section in hex). A cue takes effect at the start of the segment
//! it tags; its time is that segment's position in the playlist's media (EXTINF added up), so
//! the break's length does not depend on when the playlist was polled.

use std::collections::VecDeque;

use m3u8_rs::{MediaPlaylist, MediaSegment, QuotedOrUnquoted};

use super::scte35::{BreakChange, Breaks, Cue, CueKind, cue_of_section};

/// Cue marks kept per rendition for the alignment check: a day of breaks.
const MAX_MARKS: usize = 256;

/// One rendition's cues across polls.
#[derive(Default)]
pub struct ManifestCues {
    /// The number of the next segment expected and its position in media seconds.
    next: Option<(u64, f64)>,
    breaks: Breaks,
    /// (segment number, out or in) of the cues seen, oldest first.
    marks: VecDeque<(u64, CueKind)>,
    /// The first segment number seen since checking began.
    first_seen: Option<u64>,
}

impl ManifestCues {
    /// The cues of the segments from `first_new` on, and what they and the media added do to
    /// the break (`tolerance`: seconds a break may run past its declared duration).
    pub fn observe(
        &mut self,
        playlist: &MediaPlaylist,
        first_new: usize,
        tolerance: f64,
    ) -> (Vec<Cue>, Vec<BreakChange>) {
        let (mut cues, mut changes) = (Vec::new(), Vec::new());
        let target = playlist.target_duration as f64;
        for (i, segment) in playlist.segments.iter().enumerate().skip(first_new) {
            let number = playlist.media_sequence.saturating_add(i as u64);
            let at = self.position_of(number, target);
            self.first_seen.get_or_insert(number);
            for cue in segment_cues(segment, at) {
                if matches!(cue.kind, CueKind::Out | CueKind::In) {
                    self.marks.push_back((number, cue.kind));
                    if self.marks.len() > MAX_MARKS {
                        self.marks.pop_front();
                    }
                }
                self.breaks.cue(&cue, &mut changes);
                cues.push(cue);
            }
            let duration = f64::from(segment.duration);
            let duration = if duration.is_finite() && duration >= 0.0 {
                duration
            } else {
                target
            };
            self.next = Some((number.saturating_add(1), at + duration));
        }
        if let Some((_, edge)) = self.next {
            self.breaks.tick(edge, tolerance, &mut changes);
        }
        (cues, changes)
    }

    /// Where segment `number` starts; segments skipped unseen count a target duration each.
    fn position_of(&self, number: u64, target: f64) -> f64 {
        match self.next {
            None => 0.0,
            Some((next, at)) => at + number.saturating_sub(next) as f64 * target,
        }
    }

    /// The cue marks (segment number, out or in) from segment `from` on.
    pub fn marks_from(&self, from: u64) -> impl Iterator<Item = (u64, CueKind)> + '_ {
        self.marks.iter().copied().filter(move |(n, _)| *n >= from)
    }

    pub fn first_seen(&self) -> Option<u64> {
        self.first_seen
    }
}

/// The cues one segment carries, effective at `at`.
pub fn segment_cues(segment: &MediaSegment, at: f64) -> Vec<Cue> {
    let mut cues = Vec::new();
    for tag in &segment.unknown_tags {
        let kind = match tag.tag.as_str() {
            "X-CUE-OUT" => CueKind::Out,
            "X-CUE-IN" => CueKind::In,
            _ => continue,
        };
        let duration = tag.rest.as_deref().and_then(cue_out_duration);
        let command = if kind == CueKind::Out {
            "cue_out"
        } else {
            "cue_in"
        };
        cues.push(Cue {
            kind,
            duration: duration.filter(|_| kind == CueKind::Out),
            ..Cue::immediate(command, at)
        });
    }
    if let Some(range) = &segment.daterange {
        cues.extend(daterange_cue(range, at));
    }
    cues
}

/// `30`, `30.0` or `DURATION=30` (packagers write all three).
fn cue_out_duration(rest: &str) -> Option<f64> {
    let value = rest
        .split(',')
        .find_map(|a| a.trim().strip_prefix("DURATION="))
        .unwrap_or(rest)
        .trim();
    value
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d >= 0.0)
}

/// An `EXT-X-DATERANGE` carrying SCTE-35: the section in hex when it can be read (event id,
/// command, duration), else what the attribute names say.
fn daterange_cue(range: &m3u8_rs::DateRange, at: f64) -> Option<Cue> {
    let attrs = range.other_attributes.as_ref()?;
    let (kind, hex) = [
        ("SCTE35-OUT", CueKind::Out),
        ("SCTE35-IN", CueKind::In),
        ("SCTE35-CMD", CueKind::Other),
    ]
    .into_iter()
    .find_map(|(name, kind)| Some((kind, attrs.get(name)?)))?;
    let declared = range.duration.or(range.planned_duration);
    let section = match hex {
        QuotedOrUnquoted::Unquoted(v) | QuotedOrUnquoted::Quoted(v) => from_hex(v),
    };
    let mut cue = section
        .and_then(|bytes| cue_of_section(&bytes, at, |_| at))
        .unwrap_or_else(|| Cue::immediate("daterange", at));
    // The attribute says which side of the break this is, whatever the command's flags.
    if kind != CueKind::Other {
        cue.kind = kind;
    }
    if cue.kind == CueKind::Out {
        cue.duration = cue.duration.or(declared);
    }
    Some(cue)
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.len() % 2 != 0 {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(digits.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Where the cues of `other` differ from `reference`'s over the segments both have listed
/// (`last`: the newest segment number of each; `offset`: the reference's number of `other`'s
/// segment 0, as numbering may differ).
pub fn misalignment(
    (reference, reference_last): (&ManifestCues, u64),
    (other, other_last): (&ManifestCues, u64),
    offset: i128,
) -> Option<String> {
    let to_reference = |n: u64| n as i128 + offset;
    let from = to_reference(other.first_seen?).max(reference.first_seen? as i128);
    let until = to_reference(other_last).min(reference_last as i128);
    let theirs: Vec<(i128, CueKind)> = other
        .marks
        .iter()
        .map(|(n, k)| (to_reference(*n), *k))
        .filter(|(n, _)| (from..=until).contains(n))
        .collect();
    let ours: Vec<(i128, CueKind)> = reference
        .marks
        .iter()
        .map(|(n, k)| (*n as i128, *k))
        .filter(|(n, _)| (from..=until).contains(n))
        .collect();
    let missing = ours.iter().find(|m| !theirs.contains(m));
    let extra = theirs.iter().find(|m| !ours.contains(m));
    match (missing, extra) {
        (None, None) => None,
        (Some((n, k)), _) => Some(format!("no cue {} at segment {n}", kind_name(*k))),
        (None, Some((n, k))) => Some(format!(
            "a cue {} at segment {n} that the reference rendition does not have",
            kind_name(*k)
        )),
    }
}

fn kind_name(kind: CueKind) -> &'static str {
    match kind {
        CueKind::Out => "out",
        CueKind::In => "in",
        CueKind::Cancel => "cancel",
        CueKind::Other => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::transport::hls_rules::parse_media;

    /// A window of 2 s segments from `first`, with `tags` before the numbered segments.
    fn window(first: u64, count: u64, tags: &[(u64, &str)]) -> MediaPlaylist {
        let mut t = format!("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for n in first..first + count {
            for (_, tag) in tags.iter().filter(|(at, _)| *at == n) {
                t.push_str(tag);
                t.push('\n');
            }
            t.push_str(&format!("#EXTINF:2.0,\ns{n}.ts\n"));
        }
        parse_media(&t)
    }

    #[test]
    fn cue_tags_in_their_three_spellings_and_daterange() {
        let p = window(
            0,
            4,
            &[
                (0, "#EXT-X-CUE-OUT:30"),
                (1, "#EXT-X-CUE-OUT:DURATION=15.5"),
                (2, "#EXT-X-CUE-IN"),
                (
                    3,
                    "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:06Z\n#EXT-X-DATERANGE:ID=\"b1\",START-DATE=\"2026-01-01T00:00:06Z\",PLANNED-DURATION=20.0,SCTE35-OUT=0xZZ",
                ),
            ],
        );
        let found: Vec<(CueKind, Option<f64>, f64)> = p
            .segments
            .iter()
            .enumerate()
            .flat_map(|(i, s)| segment_cues(s, i as f64 * 2.0))
            .map(|c| (c.kind, c.duration, c.at))
            .collect();
        assert_eq!(
            found,
            [
                (CueKind::Out, Some(30.0), 0.0),
                (CueKind::Out, Some(15.5), 2.0),
                (CueKind::In, None, 4.0),
                (CueKind::Out, Some(20.0), 6.0),
            ]
        );
    }

    #[test]
    fn a_daterange_section_in_hex_gives_its_command_event_and_duration() {
        let tag = format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXT-X-DATERANGE:ID=\"7\",START-DATE=\"2026-01-01T00:00:00Z\",PLANNED-DURATION=30,SCTE35-OUT={SPLICE_OUT_HEX}"
        );
        let p = window(0, 1, &[(0, &tag)]);
        let cues = segment_cues(&p.segments[0], 0.0);
        assert_eq!(cues.len(), 1);
        let c = &cues[0];
        assert_eq!(
            (c.command, c.kind, c.event_id, c.duration),
            ("splice_insert", CueKind::Out, Some(7), Some(4.0))
        );
    }

    /// splice_insert out of network, event 7, immediate, a 4 s break without auto return.
    const SPLICE_OUT_HEX: &str =
        "0xFC30200000000000000000000F05000000077FFF7E00057E40000100000000D42A9E85";

    #[test]
    fn a_break_is_timed_on_the_media_and_overruns_its_declared_duration() {
        let mut cues = ManifestCues::default();
        let (c, changes) = cues.observe(&window(10, 3, &[(12, "#EXT-X-CUE-OUT:4")]), 0, 1.0);
        assert_eq!(c.len(), 1);
        assert!(matches!(changes[..], [BreakChange::Started { start, .. }] if start == 4.0));
        // The break started at 4 s and should be back by 8 s, 9 s with the tolerance; the
        // playlist's media reaches 8 s, then 10 s.
        let (_, changes) = cues.observe(&window(11, 3, &[]), 2, 1.0);
        assert!(changes.is_empty(), "{changes:?}");
        let (_, changes) = cues.observe(&window(12, 3, &[]), 2, 1.0);
        assert!(
            matches!(changes[..], [BreakChange::Overrun { expected_end, .. }] if expected_end == 8.0),
            "{changes:?}"
        );
        let (_, changes) = cues.observe(&window(13, 3, &[(15, "#EXT-X-CUE-IN")]), 2, 1.0);
        assert!(matches!(changes[..], [BreakChange::Ended { end, .. }] if end == 10.0));
    }

    #[test]
    fn renditions_are_aligned_when_their_cues_sit_on_the_same_segments() {
        let mut a = ManifestCues::default();
        let mut b = ManifestCues::default();
        a.observe(
            &window(0, 6, &[(2, "#EXT-X-CUE-OUT:4"), (4, "#EXT-X-CUE-IN")]),
            0,
            2.0,
        );
        b.observe(
            &window(0, 6, &[(2, "#EXT-X-CUE-OUT:4"), (4, "#EXT-X-CUE-IN")]),
            0,
            2.0,
        );
        assert_eq!(misalignment((&a, 5), (&b, 5), 0), None);
        let mut late = ManifestCues::default();
        late.observe(
            &window(0, 6, &[(3, "#EXT-X-CUE-OUT:4"), (4, "#EXT-X-CUE-IN")]),
            0,
            2.0,
        );
        assert_eq!(
            misalignment((&a, 5), (&late, 5), 0).as_deref(),
            Some("no cue out at segment 2")
        );
        // Numbered 100 apart, the same cues are aligned.
        let mut renumbered = ManifestCues::default();
        renumbered.observe(
            &window(100, 6, &[(102, "#EXT-X-CUE-OUT:4"), (104, "#EXT-X-CUE-IN")]),
            0,
            2.0,
        );
        assert_eq!(misalignment((&a, 5), (&renumbered, 105), -100), None);
    }
}
