//! The source part of a stream's pipeline: from the stream's URL, the element whose pads
//! carry its decoded video and audio.
//!
//! Most URLs go to `uridecodebin`, which picks the source element by scheme and then the
//! demuxer by typefinding. UDP, RTP and SDP receivers are built here instead: `udpsrc` does
//! not know whether datagrams hold bare MPEG-TS or RTP (typefinding RTP fails), and
//! `sdpdemux` has rank none, so no decodebin picks it. Those chains sit in a bin that exposes
//! the inner decodebins' pads as its own, so the caller links every kind the same way.

use std::net::IpAddr;
use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::config::{UdpUrl, redact_url, sdp_path};
use crate::error::IngestError;
use crate::ingest::pipeline::{missing, pipeline_error};
use crate::ingest::{decoder, ssm};
use crate::stream::Stream;

/// The URI decoder. GStreamer 1.22's `uridecodebin3` picks `hlsdemux2`, which aborted the
/// whole process (g_mutex_clear on a locked mutex in adaptivedemux2) when a live HLS pipeline
/// was set to NULL for a restart; `uridecodebin` with the classic demuxers has no such crash.
const URI_DECODER: &str = "uridecodebin";

/// What `rtpmp2tdepay` takes: RTP with an MPEG-TS payload (RFC 2250, static payload type 33).
const MP2T_RTP_CAPS: &str =
    "application/x-rtp,media=video,encoding-name=MP2T,clock-rate=90000,payload=33";

/// Builds the source of `stream`; the returned element is not yet in a pipeline and adds
/// decoded pads as they appear.
pub fn build(stream: &Arc<Stream>) -> Result<gst::Element, IngestError> {
    if let Some(udp) = UdpUrl::parse(&stream.url) {
        let udp = udp.map_err(|e| IngestError::BadUrl {
            stream: stream.id.clone(),
            url: redact_url(&stream.url),
            reason: e.to_string(),
        })?;
        return udp_receiver(stream, &udp);
    }
    if let Some(path) = sdp_path(&stream.url) {
        return sdp_receiver(stream, path);
    }
    let decode = gst::ElementFactory::make(URI_DECODER)
        .property("uri", &stream.url)
        .build()
        .map_err(|_| missing(stream, URI_DECODER))?;
    restrict_decoder(stream, &decode);
    Ok(decode)
}

fn make(stream: &Stream, factory: &str) -> Result<gst::Element, IngestError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| missing(stream, factory))
}

fn restrict_decoder(stream: &Stream, decode: &gst::Element) {
    if !decoder::restrict(decode, stream.config.decoder) {
        tracing::warn!(stream = %stream.id, decoder = stream.config.decoder.as_str(),
            "cannot restrict the decoder choice (no autoplug-select); ranks decide");
    }
}

/// `udpsrc` → decodebin (MPEG-TS found by typefinding), or for RTP
/// `udpsrc` → `rtpjitterbuffer` → `rtpmp2tdepay` → decodebin.
fn udp_receiver(stream: &Arc<Stream>, udp: &UdpUrl) -> Result<gst::Element, IngestError> {
    let mut chain = vec![udpsrc(stream, udp)?];
    if udp.rtp {
        chain.push(make(stream, "rtpjitterbuffer")?);
        chain.push(make(stream, "rtpmp2tdepay")?);
    }
    let bin = gst::Bin::with_name("source");
    let decode = decodebin(stream)?;
    chain.push(decode.clone());
    bin.add_many(&chain)
        .map_err(|e| pipeline_error(stream, e))?;
    gst::Element::link_many(&chain).map_err(|e| pipeline_error(stream, e))?;
    expose_decoded_pads(&bin, &decode);
    Ok(bin.upcast())
}

fn udpsrc(stream: &Stream, udp: &UdpUrl) -> Result<gst::Element, IngestError> {
    let mut builder = gst::ElementFactory::make("udpsrc")
        .property("address", udp.address())
        .property("port", i32::from(udp.port));
    match (udp.source, udp.host) {
        // Source-specific multicast: our own socket, already joined for the one sender;
        // udpsrc must not join the group for every sender itself, and closes the socket when
        // the pipeline stops (a restart builds a new one).
        (Some(source), Some(IpAddr::V4(group))) => {
            let socket = ssm::socket(stream, udp, group, source)?;
            builder = builder
                .property("socket", socket)
                .property("close-socket", true)
                .property("auto-multicast", false);
        }
        _ => {
            builder = builder.property("auto-multicast", true);
            if let Some(iface) = &udp.iface {
                builder = builder.property("multicast-iface", iface);
            }
            if let Some(bytes) = udp.buffer {
                // Checked at config time to fit a C int.
                builder = builder.property("buffer-size", i32::try_from(bytes).unwrap_or(i32::MAX));
            }
        }
    }
    if udp.rtp {
        let caps = MP2T_RTP_CAPS
            .parse::<gst::Caps>()
            .map_err(|e| pipeline_error(stream, e))?;
        builder = builder.property("caps", caps);
    }
    builder.build().map_err(|_| missing(stream, "udpsrc"))
}

/// `filesrc` → `sdpdemux`, and a decodebin for each RTP stream the description announces.
fn sdp_receiver(stream: &Arc<Stream>, path: &str) -> Result<gst::Element, IngestError> {
    let bin = gst::Bin::with_name("source");
    let file = gst::ElementFactory::make("filesrc")
        .property("location", path)
        .build()
        .map_err(|_| missing(stream, "filesrc"))?;
    let sdp = make(stream, "sdpdemux")?;
    bin.add_many([&file, &sdp])
        .map_err(|e| pipeline_error(stream, e))?;
    file.link(&sdp).map_err(|e| pipeline_error(stream, e))?;
    let (weak_bin, stream) = (bin.downgrade(), stream.clone());
    sdp.connect_pad_added(move |_, pad| {
        let Some(bin) = weak_bin.upgrade() else {
            return;
        };
        if let Err(e) = decode_rtp_pad(&stream, &bin, pad) {
            // Reported on the bus so the supervisor restarts the stream.
            gst::element_error!(bin, gst::CoreError::Negotiation, ("{}", e));
        }
    });
    Ok(bin.upcast())
}

fn decode_rtp_pad(stream: &Stream, bin: &gst::Bin, pad: &gst::Pad) -> Result<(), IngestError> {
    let decode = decodebin(stream)?;
    bin.add(&decode).map_err(|e| pipeline_error(stream, e))?;
    expose_decoded_pads(bin, &decode);
    let sink = decode
        .static_pad("sink")
        .ok_or_else(|| pipeline_error(stream, "decodebin has no sink pad"))?;
    pad.link(&sink)
        .map_err(|e| pipeline_error(stream, format!("cannot link {}: {e:?}", pad.name())))?;
    decode
        .sync_state_with_parent()
        .map_err(|e| pipeline_error(stream, e))?;
    Ok(())
}

fn decodebin(stream: &Stream) -> Result<gst::Element, IngestError> {
    let decode = make(stream, "decodebin")?;
    restrict_decoder(stream, &decode);
    Ok(decode)
}

/// Mirrors each pad `decode` adds as a ghost pad of `bin`, which then announces it.
fn expose_decoded_pads(bin: &gst::Bin, decode: &gst::Element) {
    let bin = bin.downgrade();
    decode.connect_pad_added(move |decode, pad| {
        let Some(bin) = bin.upgrade() else {
            return;
        };
        let name = format!("{}_{}", pad.name(), decode.name());
        let exposed = gst::GhostPad::builder_with_target(pad)
            .map(|b| b.name(name.as_str()).build())
            .and_then(|ghost| {
                ghost.set_active(true)?;
                bin.add_pad(&ghost)
            });
        if let Err(e) = exposed {
            gst::element_error!(bin, gst::CoreError::Pad, ("cannot expose {name}: {e}"));
        }
    });
}
