//! The analysis tier at the decoder's input: a pad probe drops the coded pictures the stream's
//! tier does not decode (non-key ones for `keyframes`, non-reference ones for `reference`), so
//! the decoder never spends time on them.
//!
//! Two things make keyframes-only decoding work:
//! - Decoders hold pictures back to reorder B-frames: fed keyframes only, an H.264 or H.265
//!   decoder would hand each one out two or three keyframes (seconds) late. A segment flagged
//!   TRICKMODE_KEY_UNITS, which is what a player sends for a keyframe trick mode, makes the
//!   GstVideoDecoder base class drain after each keyframe, so every keyframe comes out at once.
//! - A tier can change while the stream plays (load shedding). Fewer pictures is safe at any
//!   point; more is not in the middle of a group of pictures, whose dropped pictures the next
//!   ones predict from: the richer tier starts at the next keyframe, without the leading
//!   pictures of an open GOP (those shown before the keyframe reference the previous group).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::config::AnalysisTier;
use crate::ingest::decode_errors::DecodeMarks;
use crate::ingest::media_sink::MediaSink;
use crate::ingest::nonref::{self, NonReference};

/// What the filter knows of one coded picture.
#[derive(Clone, Copy, Debug, Default)]
pub struct Picture {
    pub keyframe: bool,
    pub pts_ns: Option<u64>,
    /// Whether no other picture predicts from it (None: cannot be told).
    pub non_reference: Option<bool>,
}

/// The filter's decision for one picture, and a change of the decoder's segment it needs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub pass: bool,
    /// Some(true): tell the decoder keyframes only come (drain after each); Some(false): every
    /// picture may come again.
    pub key_units_only: Option<bool>,
}

/// The tier applied to the pictures entering the decoder, and the way to the wanted one.
#[derive(Debug)]
pub struct Selector {
    applied: AnalysisTier,
    /// Pictures shown before the keyframe a richer tier resumed at (open-GOP leading pictures)
    /// are dropped until the next keyframe.
    leading_before: Option<u64>,
}

impl Selector {
    pub fn new(initial: AnalysisTier) -> Self {
        Self {
            applied: initial,
            leading_before: None,
        }
    }

    pub fn applied(&self) -> AnalysisTier {
        self.applied
    }

    pub fn decide(&mut self, wanted: AnalysisTier, picture: Picture) -> Decision {
        let was_key_only = self.applied == AnalysisTier::Keyframes;
        if wanted < self.applied {
            self.applied = wanted;
        } else if wanted > self.applied && (!was_key_only || picture.keyframe) {
            if was_key_only {
                self.leading_before = picture.pts_ns;
            }
            self.applied = wanted;
        }
        if picture.keyframe && !(was_key_only && self.applied != AnalysisTier::Keyframes) {
            self.leading_before = None;
        }
        let key_only = self.applied == AnalysisTier::Keyframes;
        let leading = !picture.keyframe
            && matches!((self.leading_before, picture.pts_ns), (Some(k), Some(p)) if p < k);
        let pass = match self.applied {
            AnalysisTier::Keyframes => picture.keyframe,
            AnalysisTier::Reference => picture.non_reference != Some(true) && !leading,
            AnalysisTier::Full => !leading,
        };
        Decision {
            pass,
            key_units_only: (key_only != was_key_only).then_some(key_only),
        }
    }
}

/// What the appsink reads to tag each decoded frame with the tier it was decoded under.
#[derive(Debug)]
pub struct AppliedTier(AtomicU8);

impl Default for AppliedTier {
    fn default() -> Self {
        Self::new(AnalysisTier::Full)
    }
}

impl AppliedTier {
    pub fn new(tier: AnalysisTier) -> Self {
        Self(AtomicU8::new(tier.level()))
    }

    pub fn get(&self) -> AnalysisTier {
        AnalysisTier::from_level(self.0.load(Ordering::Relaxed))
    }

    fn set(&self, tier: AnalysisTier) {
        self.0.store(tier.level(), Ordering::Relaxed);
    }
}

/// The segment flag with which GstVideoDecoder drains after every keyframe.
const KEY_UNITS: gst::SegmentFlags = gst::SegmentFlags::TRICKMODE_KEY_UNITS;

/// The probe's state: the selector, the codec reader, and the segment last sent downstream.
struct Filter {
    selector: Selector,
    reader: Option<NonReference>,
    segment: Option<gst::Segment>,
}

/// Filters what enters `decoder` (a video decoder of `stream`'s pipeline) by the stream's tier.
pub fn filter_decoder_input(
    decoder: &gst::Element,
    stream: &Arc<dyn MediaSink>,
    marks: &Arc<DecodeMarks>,
) {
    let Some(pad) = decoder.static_pad("sink") else {
        return;
    };
    let initial = stream.analysis_tier();
    marks.applied_tier.set(initial);
    let filter = Mutex::new(Filter {
        selector: Selector::new(initial),
        reader: None,
        segment: None,
    });
    let (stream, marks) = (stream.clone(), marks.clone());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let mut filter = crate::sync::lock(&filter);
            if let Some(event) = info.event() {
                if let Some(replaced) = filter.on_event(event) {
                    info.data = Some(gst::PadProbeData::Event(replaced));
                }
                return gst::PadProbeReturn::Ok;
            }
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let before = filter.selector.applied();
            let decision = filter.on_buffer(buffer, stream.analysis_tier());
            let after = filter.selector.applied();
            if after != before {
                marks.applied_tier.set(after);
                tracing::debug!(
                    stream = stream.id(),
                    from = before.as_str(),
                    to = after.as_str(),
                    "decoder input tier changed"
                );
            }
            if let Some(key_only) = decision.key_units_only
                && let Some(segment) = filter.flagged_segment(key_only)
            {
                // Sent on the streaming thread, before the buffer: the decoder takes the
                // new mode from the next picture on.
                drop(filter);
                pad.send_event(gst::event::Segment::new(&segment));
            }
            if decision.pass {
                gst::PadProbeReturn::Ok
            } else {
                stream.count_skipped_frame();
                // Handled, not Drop: gstreamer-rs releases the buffer itself, and GStreamer
                // 1.22 would unref it again (a NULL) after a Drop.
                gst::PadProbeReturn::Handled
            }
        },
    );
}

impl Filter {
    /// Keeps the caps (which codec reader applies) and the segment (re-sent with the key-units
    /// flag when the tier changes); returns the segment to pass instead when its flag does not
    /// match the tier applied now.
    fn on_event(&mut self, event: &gst::EventRef) -> Option<gst::Event> {
        match event.view() {
            gst::EventView::Caps(caps) => {
                self.reader = nonref::codec_of(caps.caps())
                    .map(|(codec, framing)| NonReference::new(codec, framing));
                None
            }
            gst::EventView::Segment(s) => {
                let key_only = self.selector.applied() == AnalysisTier::Keyframes;
                let flagged = s.segment().flags().contains(KEY_UNITS);
                self.segment = Some(s.segment().clone());
                (flagged != key_only)
                    .then(|| self.flagged_segment(key_only))
                    .flatten()
                    .map(|segment| gst::event::Segment::new(&segment))
            }
            _ => None,
        }
    }

    fn on_buffer(&mut self, buffer: &gst::BufferRef, wanted: AnalysisTier) -> Decision {
        let keyframe = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let non_reference = match (&mut self.reader, wanted) {
            (Some(reader), AnalysisTier::Reference) if !keyframe => buffer
                .map_readable()
                .ok()
                .and_then(|map| reader.is_non_reference(&map)),
            _ => None,
        };
        let picture = Picture {
            keyframe,
            pts_ns: buffer.pts().map(|t| t.nseconds()),
            non_reference,
        };
        self.selector.decide(wanted, picture)
    }

    /// The last segment with the key-units flag set or cleared, to send before the next picture.
    fn flagged_segment(&mut self, key_only: bool) -> Option<gst::Segment> {
        let segment = self.segment.as_mut()?;
        segment.set_flags(if key_only {
            segment.flags() | KEY_UNITS
        } else {
            segment.flags() - KEY_UNITS
        });
        Some(segment.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnalysisTier::*;

    /// A closed GOP of 6 pictures in decode order (I P B B P B), the B-frames disposable, PTS
    /// in frames.
    fn gop(start: u64) -> Vec<Picture> {
        let kinds = [(true, 0, false), (false, 3, false), (false, 1, true)];
        let kinds = kinds
            .iter()
            .chain(&[(false, 2, true), (false, 5, false), (false, 4, true)]);
        kinds
            .map(|&(keyframe, at, disposable)| Picture {
                keyframe,
                pts_ns: Some(start + at),
                non_reference: Some(disposable),
            })
            .collect()
    }

    fn run(selector: &mut Selector, wanted: AnalysisTier, pictures: &[Picture]) -> Vec<u64> {
        pictures
            .iter()
            .filter(|p| selector.decide(wanted, **p).pass)
            .filter_map(|p| p.pts_ns)
            .collect()
    }

    #[test]
    fn each_tier_passes_its_pictures() {
        let mut s = Selector::new(Full);
        assert_eq!(run(&mut s, Full, &gop(0)), [0, 3, 1, 2, 5, 4]);
        assert_eq!(run(&mut s, Reference, &gop(6)), [6, 9, 11]);
        assert_eq!(run(&mut s, Keyframes, &gop(12)), [12]);
    }

    #[test]
    fn a_lighter_tier_applies_at_once_and_a_richer_one_at_the_next_keyframe() {
        let mut s = Selector::new(Full);
        let pictures = gop(0);
        assert_eq!(run(&mut s, Full, &pictures[..2]), [0, 3]);
        // Mid-GOP down to keyframes: the decoder is told before the next picture.
        let d = s.decide(Keyframes, pictures[2]);
        assert_eq!(
            d,
            Decision {
                pass: false,
                key_units_only: Some(true)
            }
        );
        assert_eq!(run(&mut s, Keyframes, &pictures[3..]), Vec::<u64>::new());
        // Back to full in the middle of the next GOP: nothing until its keyframe.
        let next = gop(6);
        assert_eq!(run(&mut s, Full, &next[..1]), [6]);
        let mut s = Selector::new(Keyframes);
        assert_eq!(run(&mut s, Full, &next[1..]), Vec::<u64>::new());
        assert_eq!(s.applied(), Keyframes);
        let d = s.decide(Full, gop(12)[0]);
        assert_eq!(
            d,
            Decision {
                pass: true,
                key_units_only: Some(false)
            }
        );
        assert_eq!(run(&mut s, Full, &gop(12)[1..]), [15, 13, 14, 17, 16]);
    }

    #[test]
    fn open_gop_leading_pictures_are_skipped_when_resuming_from_keyframes() {
        // Decode order after an open-GOP I-frame at 10: two B-frames shown before it.
        let picture = |keyframe, at| Picture {
            keyframe,
            pts_ns: Some(at),
            non_reference: Some(false),
        };
        let mut s = Selector::new(Keyframes);
        let open = [picture(true, 10), picture(false, 8), picture(false, 9)];
        let after = [picture(false, 13), picture(false, 11), picture(false, 12)];
        assert_eq!(run(&mut s, Full, &open), [10]);
        assert_eq!(run(&mut s, Full, &after), [13, 11, 12]);
        // The next keyframe ends the rule: its own leading pictures are whole.
        assert_eq!(
            run(&mut s, Full, &[picture(true, 20), picture(false, 18)]),
            [20, 18]
        );
    }

    #[test]
    fn unknown_reference_status_is_decoded() {
        let mut s = Selector::new(Reference);
        let unknown = Picture {
            keyframe: false,
            pts_ns: Some(1),
            non_reference: None,
        };
        assert!(s.decide(Reference, unknown).pass);
    }
}
