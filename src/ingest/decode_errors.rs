//! Counting decoder errors per stream.
//!
//! Decoders report damage in three ways: a warning on the bus, a CORRUPTED flag on the frame
//! (both handled where they arrive), or only a log line. The libav decoders of GStreamer 1.22
//! do the last: each damaged macroblock is an error in the `libav` debug category, with no
//! element attached. This module listens to that category and credits each error to the
//! stream whose decoder was running on the logging thread, and each frame leaving the decoder
//! takes the errors counted since the frame before it.
//!
//! Both need libav's threads tamed. Frame threads decode several frames at once, so a frame
//! leaving the decoder was credited with errors of frames still behind it (damage reported a
//! frame or two early, in `scan`); libav decoders therefore use slice threading, which
//! finishes each frame before the next. Slice workers are libav's own threads, which no stream
//! can be told from: with several streams in the process a libav decoder runs on its streaming
//! thread alone (one stream, one thread: with many streams the cores are shared out by streams
//! anyway); the sole stream of a process (`scan`) keeps its slice workers, since every error
//! logged anywhere is its own.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Once};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::ingest::media_sink::MediaSink;

/// The sole stream of the process, credited with errors logged on libav's own threads.
static SOLE: std::sync::Mutex<Option<Arc<dyn MediaSink>>> = std::sync::Mutex::new(None);

thread_local! {
    /// The stream whose decoder last ran on this thread.
    static DECODING: RefCell<Option<Arc<dyn MediaSink>>> = const { RefCell::new(None) };
}

/// Frames between the decoder and the appsink whose decode-time error count is kept.
const DECODE_MARKS: usize = 256;
/// Keyframes entering the decoder whose timestamps are kept until their frame leaves it.
const KEYFRAME_MARKS: usize = 64;

/// What the decoder's pads tell about the frames of one pipeline run.
#[derive(Default)]
pub struct DecodeMarks {
    /// (PTS in ns, the stream's decoder error count) of each frame as it left the decoder,
    /// oldest first: the count when the frame reaches the appsink may already include errors
    /// of later frames that the decoder has run ahead to.
    errors: Mutex<VecDeque<(u64, u64)>>,
    /// PTS of the keyframes (IDR, I-frames, recovery points: what the parser does not mark
    /// as a delta unit) that entered the decoder, in order. Decoded buffers carry no such
    /// flag, so the input side tells which output frames start a clean picture.
    keyframes: Mutex<VecDeque<u64>>,
    /// The analysis tier of the pictures entering the decoder now (what the frames coming out
    /// were decoded under, give or take the few the decoder holds).
    pub applied_tier: crate::ingest::tier::AppliedTier,
}

impl DecodeMarks {
    /// Notes a keyframe entering the decoder.
    fn note_keyframe(&self, pts_ns: u64) {
        let mut keyframes = crate::sync::lock(&self.keyframes);
        if keyframes.len() >= KEYFRAME_MARKS {
            keyframes.pop_front();
        }
        keyframes.push_back(pts_ns);
    }

    /// Whether the decoded frame with this PTS was a keyframe. Frames leave in display order
    /// and keyframes come in that order too, so older marks are of frames gone.
    pub fn is_keyframe(&self, pts_ns: u64) -> bool {
        let mut keyframes = crate::sync::lock(&self.keyframes);
        while keyframes.front().is_some_and(|&k| k < pts_ns) {
            keyframes.pop_front();
        }
        if keyframes.front() == Some(&pts_ns) {
            keyframes.pop_front();
            return true;
        }
        false
    }

    /// Notes the error count as a frame leaves the decoder (its streaming thread).
    fn mark(&self, pts_ns: u64, errors: u64) {
        let mut marks = crate::sync::lock(&self.errors);
        if marks.len() >= DECODE_MARKS {
            marks.pop_front();
        }
        marks.push_back((pts_ns, errors));
    }

    /// The error count when the frame with this PTS left the decoder (`current` when it was
    /// not marked).
    pub fn errors_at(&self, pts_ns: u64, current: u64) -> u64 {
        let mut marks = crate::sync::lock(&self.errors);
        while let Some(&(pts, count)) = marks.front() {
            marks.pop_front();
            if pts == pts_ns {
                return count;
            }
        }
        current
    }
}

/// GStreamer's debug category of the libav plugin.
const LIBAV_CATEGORY: &str = "libav";

/// Starts listening to the libav category's errors (once per process). Without `GST_DEBUG`,
/// GStreamer's own printing is switched off so that enabling the category prints nothing.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // With GST_DEBUG set, its levels apply (any level that shows errors keeps counting).
        if std::env::var_os("GST_DEBUG").is_none() {
            gst::log::remove_default_log_function();
            gst::log::set_threshold_for_name(LIBAV_CATEGORY, gst::DebugLevel::Error);
        }
        gst::log::add_log_function(
            |category, level, _file, _function, _line, _object, _message| {
                if level != gst::DebugLevel::Error || category.name() != LIBAV_CATEGORY {
                    return;
                }
                let credited = DECODING.with(|current| {
                    current
                        .borrow()
                        .as_ref()
                        .map(|stream| stream.count_decode_error())
                        .is_some()
                });
                if !credited && let Some(stream) = crate::sync::lock(&SOLE).as_ref() {
                    stream.count_decode_error();
                }
            },
        );
    });
}

/// Hooks a video decoder that the URI decoder created for `stream`.
pub fn watch_decoder(
    element: &gst::Element,
    stream: &Arc<dyn MediaSink>,
    sole: bool,
    marks: &Arc<DecodeMarks>,
) {
    let is_video_decoder = element.factory().is_some_and(|f| {
        let klass = f.klass();
        klass.contains("Decoder") && klass.contains("Video")
    });
    if !is_video_decoder {
        return;
    }
    if sole {
        *crate::sync::lock(&SOLE) = Some(stream.clone());
    }
    #[cfg(feature = "libav-decoder")]
    if crate::ingest::libav_decoder::is_this(element) {
        crate::ingest::libav_decoder::configure(element, sole);
    }
    if element.find_property("thread-type").is_some()
        && let Some(name) = element.factory().map(|f| f.name())
        && name.starts_with("avdec_")
    {
        element.set_property_from_str("thread-type", "slice");
        if !sole && element.find_property("max-threads").is_some() {
            element.set_property("max-threads", 1i32);
        }
    }
    if let Some(src) = element.static_pad("src") {
        let (stream, marks) = (stream.clone(), marks.clone());
        src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                marks.mark(pts.nseconds(), stream.decode_errors());
            }
            gst::PadProbeReturn::Ok
        });
    }
    // Captions are counted on every coded picture, so ahead of the tier.
    crate::ingest::captions::count_at_decoder_input(element, stream);
    // First after them: pictures the tier drops are neither keyframe marks nor decoding.
    crate::ingest::tier::filter_decoder_input(element, stream, marks);
    let Some(pad) = element.static_pad("sink") else {
        return;
    };
    let (stream, marks) = (stream.clone(), marks.clone());
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            note_keyframes(info, &marks);
            DECODING.with(|current| {
                let mut current = current.borrow_mut();
                if !current.as_ref().is_some_and(|s| same_stream(s, &stream)) {
                    *current = Some(stream.clone());
                }
            });
            gst::PadProbeReturn::Ok
        },
    );
}

fn note_keyframes(info: &gst::PadProbeInfo, marks: &DecodeMarks) {
    let note = |buffer: &gst::BufferRef| {
        if !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT)
            && let Some(pts) = buffer.pts()
        {
            marks.note_keyframe(pts.nseconds());
        }
    };
    if let Some(buffer) = info.buffer() {
        note(buffer);
    } else if let Some(list) = info.buffer_list() {
        list.iter().for_each(note);
    }
}

/// Whether two handles are the same stream (their data, whatever the vtable).
fn same_stream(a: &Arc<dyn MediaSink>, b: &Arc<dyn MediaSink>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
