//! What enters the demuxer: bytes for the input bitrate, and for MPEG-TS the TR 101 290
//! measurements. The demuxer's sink pad is the one place every source kind passes through with
//! the container bytes (after HLS fragment download, RTMP, SRT or UDP reception, RTP
//! depayloading, file reading); RTSP has no demuxer, so there the RTP depayloaders' input is
//! counted. RTP packet loss is counted where packets enter a jitterbuffer, in arrival order.
//!
//! The probe runs on the thread that feeds the demuxer (the source's, or the `appsrc`'s for
//! fetched HLS), never on a decoder's: the demuxer's output queues stand between the two.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::detect::transport::rtp::{self, SequenceGaps};
use crate::detect::transport::tr101290::{Tr101290, TsFindings, TsSettings};
use crate::ingest::media_sink::MediaSink;
use crate::sync::lock;

/// Hooks an element the URI decoder created for `stream`, if it is where input is measured.
pub fn watch_input(element: &gst::Element, stream: &Arc<dyn MediaSink>) {
    let Some(factory) = element.factory() else {
        return;
    };
    if factory.name() == "rtpjitterbuffer" {
        watch_rtp_sequence(element, stream);
        return;
    }
    let klass = factory.klass();
    // The adaptive demuxer (hlsdemux) feeds the container demuxer, which is counted; a
    // metadata demuxer (id3demux) sits in front of one; so does the session demuxer of an SDP
    // file, and the MPEG-TS depayloader feeds tsdemux.
    let demuxer = klass.contains("Demuxer")
        && !klass.contains("Adaptive")
        && !klass.contains("Metadata")
        && !klass.contains("RTP");
    let depayloader = klass.contains("Depayloader") && factory.name() != "rtpmp2tdepay";
    if !(demuxer || depayloader) {
        return;
    }
    let Some(pad) = element.static_pad("sink") else {
        return;
    };
    let analyser = (factory.name() == "tsdemux")
        .then(|| stream.ts_settings(fed_by_appsrc(element)))
        .flatten()
        .map(|settings| Mutex::new(TsInput::new(settings)));
    if analyser.is_some() {
        stream.ts_measured();
    }
    let stream = stream.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut count = |buffer: &gst::BufferRef| {
                stream.count_input_bytes(buffer.size() as u64);
                if let Some(analyser) = &analyser {
                    let found = lock(analyser).read(buffer);
                    if !found.is_empty() {
                        stream.ts_findings(found);
                    }
                }
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => count(b),
                Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(&mut count),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

/// The TR 101 290 analyser of a demuxer's input, fed the bytes in stream order.
struct TsInput {
    analyser: Tr101290,
    /// The byte offset that continues what was analysed, where buffers carry offsets.
    next_offset: Option<u64>,
}

impl TsInput {
    fn new(settings: TsSettings) -> Self {
        Self {
            analyser: Tr101290::new(settings),
            next_offset: None,
        }
    }

    fn read(&mut self, buffer: &gst::BufferRef) -> TsFindings {
        let offset = Some(buffer.offset()).filter(|&o| o != u64::MAX);
        if let (Some(offset), Some(next)) = (offset, self.next_offset)
            && offset != next
        {
            if offset != 0 {
                // A demuxer pulling from a file reads its end for the duration before it
                // plays on: those bytes are not the stream in order.
                return TsFindings::default();
            }
            // Read again from the start (a file played in a loop).
            self.analyser.reset();
        }
        // A discontinuity the source announced (a skipped HLS fragment, a reconnect) is no
        // transport error of the stream.
        if buffer.flags().contains(gst::BufferFlags::DISCONT) {
            self.analyser.reset();
        }
        let Ok(map) = buffer.map_readable() else {
            return TsFindings::default();
        };
        self.next_offset = offset.map(|o| o + map.len() as u64);
        self.analyser.push(map.as_slice())
    }
}

/// Whether `demuxer` reads fetched HLS segments: its decoding bin is fed by an `appsrc`.
fn fed_by_appsrc(demuxer: &gst::Element) -> bool {
    // By type: an `AppSrc` built in code has no factory.
    demuxer
        .parent()
        .and_then(|bin| bin.downcast::<gst::Element>().ok())
        .and_then(|bin| bin.static_pad("sink"))
        .and_then(|pad| pad.peer())
        .and_then(|peer| peer.parent_element())
        .is_some_and(|source| source.is::<gstreamer_app::AppSrc>())
}

/// Counts the RTP packets missing from what enters a jitterbuffer (one per RTP stream, so per
/// SSRC): before it, packets are in arrival order, reordering included.
fn watch_rtp_sequence(jitterbuffer: &gst::Element, stream: &Arc<dyn MediaSink>) {
    let Some(pad) = jitterbuffer.static_pad("sink") else {
        return;
    };
    let gaps = Mutex::new(SequenceGaps::default());
    let stream = stream.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut count = |buffer: &gst::BufferRef| {
                let Ok(map) = buffer.map_readable() else {
                    return;
                };
                if let Some(seq) = rtp::sequence_number(map.as_slice()) {
                    stream.count_rtp_packets_lost(lock(&gaps).push(seq));
                }
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => count(b),
                Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(&mut count),
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}
