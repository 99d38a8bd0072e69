//! Closed captions at the video decoder's input: the parsers (h264parse, h265parse,
//! mpegvideoparse) attach `GstVideoCaptionMeta` to the coded pictures, and the analysis tier
//! drops some of those pictures before the decoder, so captions are counted there, ahead of
//! the tier's probe, for every picture whether it is decoded or not.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use crate::detect::captions::{CaptionBytes, CaptionFormat, CaptionParser};
use crate::ingest::media_sink::MediaSink;

/// Adds the counting probe to the decoder's sink pad; call it before the tier's filter, which
/// ends the probe chain for the pictures it drops.
pub fn count_at_decoder_input(decoder: &gst::Element, stream: &Arc<dyn MediaSink>) {
    let Some(pad) = decoder.static_pad("sink") else {
        return;
    };
    // DTVCC packets span pictures: one parser per decoder, fed in decoding order.
    let parser = Mutex::new(CaptionParser::default());
    let stream = stream.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let mut parser = crate::sync::lock(&parser);
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => count(b, &mut parser, stream.as_ref()),
                Some(gst::PadProbeData::BufferList(list)) => {
                    for b in list.iter() {
                        count(b, &mut parser, stream.as_ref());
                    }
                }
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn count(buffer: &gst::BufferRef, parser: &mut CaptionParser, stream: &dyn MediaSink) {
    let mut bytes = CaptionBytes::default();
    for meta in buffer.iter_meta::<gst_video::VideoCaptionMeta>() {
        if let Some(format) = format_of(meta.caption_type()) {
            parser.parse(format, meta.data(), &mut bytes);
        }
    }
    if bytes.has_service() {
        stream.count_captions(buffer.pts().map(|t| t.nseconds()), bytes);
    }
}

fn format_of(kind: gst_video::VideoCaptionType) -> Option<CaptionFormat> {
    use gst_video::VideoCaptionType as T;
    match kind {
        T::Cea608Raw => Some(CaptionFormat::Cea608Raw),
        T::Cea608S3341a => Some(CaptionFormat::Cea608S334),
        T::Cea708Raw => Some(CaptionFormat::Cea708CcData),
        T::Cea708Cdp => Some(CaptionFormat::Cea708Cdp),
        _ => None,
    }
}
