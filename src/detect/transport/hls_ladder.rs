//! Cross-variant rules of one HLS ladder: its renditions carry the same content on one
//! timeline (RFC 8216 §6.2.4), so a rendition that falls behind the others, dates its
//! segments differently, or stops while they advance fails the players that switch to it.

use std::collections::BTreeMap;

use m3u8_rs::MediaPlaylist;

use super::hls_rules::{Violation, rule, seconds};
use super::manifest_cues::{ManifestCues, misalignment};
use crate::detect::DetectorKind;

/// One variant's newest poll, as the ladder check sees it.
pub struct VariantView<'a> {
    pub name: &'a str,
    pub playlist: &'a MediaPlaylist,
    /// Seconds since the playlist last changed.
    pub age: f64,
    pub cues: &'a ManifestCues,
}

/// The ladder's rules across polls.
pub struct LadderCheck {
    /// Segments a variant may fall behind (or run ahead of) the reference beyond the offset
    /// first seen between them.
    max_drift_segments: f64,
    /// Seconds two renditions may date one numbered segment apart.
    date_tolerance: f64,
    /// The offset in segments between each variant's newest segment and the reference's,
    /// learnt when both were first seen: numbering may legitimately differ between
    /// renditions, a change of the offset may not.
    offsets: BTreeMap<String, i128>,
}

impl LadderCheck {
    pub fn new(max_drift_segments: f64, date_tolerance: f64) -> Self {
        Self {
            max_drift_segments,
            date_tolerance,
            offsets: BTreeMap::new(),
        }
    }

    /// The variants' violations, by variant name. Only live variants sharing the
    /// reference's target duration are compared in sequence; dates are compared whenever
    /// both are dated.
    pub fn observe(&mut self, variants: &[VariantView]) -> Vec<(String, Violation)> {
        let live: Vec<&VariantView> = variants
            .iter()
            .filter(|v| !v.playlist.end_list && !v.playlist.segments.is_empty())
            .collect();
        self.offsets
            .retain(|name, _| live.iter().any(|v| v.name == name));
        let mut out = Vec::new();
        let Some(youngest) = live.iter().min_by(|a, b| a.age.total_cmp(&b.age)) else {
            return out;
        };
        // Offsets are learnt against one reference, so it must not change from poll to poll:
        // the first video variant (by name), whichever is youngest.
        let Some(reference) = live
            .iter()
            .min_by_key(|v| (v.name.starts_with('a'), v.name))
        else {
            return out;
        };
        for v in &live {
            let stale = stale_while_others_advance(youngest, v);
            if v.name == reference.name || is_stale(reference) {
                out.extend(stale.map(|s| (v.name.to_owned(), s)));
                continue;
            }
            let drift = self
                .sequence_drift(reference, v)
                .or_else(|| self.date_drift(reference, v));
            out.extend(stale.or(drift).map(|s| (v.name.to_owned(), s)));
            out.extend(self.cue_drift(reference, v).map(|s| (v.name.to_owned(), s)));
        }
        out
    }

    fn sequence_drift(&mut self, reference: &VariantView, v: &VariantView) -> Option<Violation> {
        if v.playlist.target_duration != reference.playlist.target_duration {
            return None;
        }
        let edge = |p: &MediaPlaylist| p.media_sequence as i128 + p.segments.len() as i128;
        let offset = edge(reference.playlist) - edge(v.playlist);
        let learnt = *self.offsets.entry(v.name.to_owned()).or_insert(offset);
        let behind = offset - learnt;
        if (behind.abs() as f64) <= self.max_drift_segments {
            return None;
        }
        let side = if behind > 0 { "behind" } else { "ahead of" };
        Some(Violation::conformance(
            rule::VARIANT_DRIFT,
            format!(
                "{} is {} segments {side} {} in media sequence",
                v.name,
                behind.abs(),
                reference.name
            ),
        ))
    }

    /// SCTE-35 cues on other segments than the reference's: players switching renditions
    /// would leave or return to the network feed at another time.
    fn cue_drift(&self, reference: &VariantView, v: &VariantView) -> Option<Violation> {
        let offset = *self.offsets.get(v.name)?;
        let last = |p: &MediaPlaylist| p.media_sequence + p.segments.len() as u64 - 1;
        let problem = misalignment(
            (reference.cues, last(reference.playlist)),
            (v.cues, last(v.playlist)),
            offset,
        )?;
        Some(Violation {
            kind: DetectorKind::Scte35,
            rule: rule::CUE_MISALIGNED,
            detail: format!("{}: {problem} (as {} has)", v.name, reference.name),
        })
    }

    fn date_drift(&self, reference: &VariantView, v: &VariantView) -> Option<Violation> {
        let learnt = *self.offsets.get(v.name)?;
        let shift = v.playlist.media_sequence as i128 - reference.playlist.media_sequence as i128;
        for (i, s) in v.playlist.segments.iter().enumerate() {
            // The reference's segment with the same content, by the learnt numbering offset.
            let j = shift + i as i128 + learnt;
            let Some(other) = usize::try_from(j)
                .ok()
                .and_then(|j| reference.playlist.segments.get(j))
            else {
                continue;
            };
            if let (Some(a), Some(b)) = (s.program_date_time, other.program_date_time) {
                let apart = seconds(a) - seconds(b);
                if apart.abs() > self.date_tolerance {
                    return Some(Violation::conformance(
                        rule::VARIANT_DRIFT,
                        format!(
                            "{} dates segment {} {apart:+.3} s off {}",
                            v.name,
                            v.playlist.media_sequence.saturating_add(i as u64),
                            reference.name
                        ),
                    ));
                }
            }
        }
        None
    }
}

fn is_stale(v: &VariantView) -> bool {
    let target = v.playlist.target_duration as f64;
    target > 0.0 && v.age > 2.0 * target
}

/// A variant unchanged for two target durations while another changed within one.
fn stale_while_others_advance(reference: &VariantView, v: &VariantView) -> Option<Violation> {
    let target = reference.playlist.target_duration as f64;
    (is_stale(v) && reference.age < target).then(|| {
        Violation::conformance(
            rule::VARIANT_STALE,
            format!(
                "{} has not changed for {:.1} s while {} changed {:.1} s ago",
                v.name, v.age, reference.name, reference.age
            ),
        )
    })
}
