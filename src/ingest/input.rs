//! What enters the demuxer: bytes for the input bitrate, and for MPEG-TS the continuity
//! counters. The demuxer's sink pad is the one place every source kind passes through with
//! the container bytes (after HLS fragment download, RTMP, SRT or UDP reception, RTP
//! depayloading, file reading); RTSP has no demuxer, so there the RTP depayloaders' input is
//! counted. RTP packet loss is counted where packets enter a jitterbuffer, in arrival order.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::detect::transport::rtp::{self, SequenceGaps};
use crate::detect::transport::ts::ContinuityCheck;
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
    let continuity = (factory.name() == "tsdemux").then(|| Mutex::new(ContinuityCheck::default()));
    let stream = stream.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut count = |buffer: &gst::BufferRef| {
                stream.count_input_bytes(buffer.size() as u64);
                if let Some(check) = &continuity {
                    let mut check = lock(check);
                    // A discontinuity the source announced (a skipped HLS fragment, a
                    // reconnect) is no transport error of the stream.
                    if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                        check.reset();
                    }
                    if let Ok(map) = buffer.map_readable() {
                        stream.count_ts_cc_errors(check.push(map.as_slice()));
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
