//! Which coded pictures no other picture is predicted from, read from the first bytes of each
//! access unit: the `reference` tier drops them before the decoder, and nothing is lost but the
//! pictures themselves. Parsers in GStreamer 1.22 do not flag them (no DROPPABLE on their
//! output), and the libav decoders' `skip-frame` values do not map to libav's "non-reference"
//! setting, so the filter reads the headers it needs itself:
//! - H.264: `nal_ref_idc` of the first slice (the standard makes it equal in every slice of a
//!   picture);
//! - H.265: the slice NAL unit type (TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N are the sub-layer
//!   non-reference types) while the stream has no temporal sub-layers, since a picture of a
//!   lower sub-layer may still be predicted from by a higher one;
//! - MPEG-2 video: the picture coding type (B-pictures are never references).
//!
//! Other codecs answer "unknown", and their pictures are all decoded.

use gstreamer as gst;

/// Codecs whose non-reference pictures can be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Mpeg2,
}

/// How NAL units are delimited in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Start codes (`00 00 01`), as in MPEG-TS.
    AnnexB,
    /// Each unit preceded by its length in this many bytes (`avc`/`hvc1` from FLV or MP4).
    LengthPrefixed(usize),
}

/// Reads the codec and framing of a decoder's input caps.
pub fn codec_of(caps: &gst::CapsRef) -> Option<(Codec, Framing)> {
    let s = caps.structure(0)?;
    let codec = match s.name().as_str() {
        "video/x-h264" => Codec::H264,
        "video/x-h265" => Codec::H265,
        "video/mpeg" if s.get::<i32>("mpegversion").ok() == Some(2) => Codec::Mpeg2,
        _ => return None,
    };
    let length_prefixed = matches!(
        s.get::<&str>("stream-format").ok(),
        Some("avc" | "avc3" | "hvc1" | "hev1")
    );
    let framing = if codec != Codec::Mpeg2 && length_prefixed {
        let config = s.get::<gst::Buffer>("codec_data").ok();
        let map = config.as_ref().and_then(|b| b.map_readable().ok());
        Framing::LengthPrefixed(length_size(codec, map.as_deref().unwrap_or(&[])))
    } else {
        Framing::AnnexB
    };
    Some((codec, framing))
}

/// NAL length size from an avcC/hvcC record (4 when the record is missing or short).
fn length_size(codec: Codec, config: &[u8]) -> usize {
    let at = if codec == Codec::H264 { 4 } else { 21 };
    config.get(at).map_or(4, |b| usize::from(b & 3) + 1)
}

/// Tells non-reference pictures of one stream (it keeps what H.265 needs across pictures).
#[derive(Debug)]
pub struct NonReference {
    codec: Codec,
    framing: Framing,
    /// An H.265 picture of a temporal sub-layer above 0 was seen.
    temporal_layers: bool,
}

impl NonReference {
    pub fn new(codec: Codec, framing: Framing) -> Self {
        Self {
            codec,
            framing,
            temporal_layers: false,
        }
    }

    /// Whether the access unit in `data` is a picture no other picture predicts from; None
    /// when that cannot be told (no picture header found).
    pub fn is_non_reference(&mut self, data: &[u8]) -> Option<bool> {
        match self.codec {
            Codec::Mpeg2 => mpeg2_picture_type(data).map(|t| t == MPEG2_B_PICTURE),
            Codec::H264 => {
                let header = first_unit(data, self.framing, |nal| is_h264_slice(nal[0]))?;
                Some((header[0] >> 5) & 3 == 0)
            }
            Codec::H265 => {
                let header = first_unit(data, self.framing, |nal| {
                    nal.len() >= 2 && h265_type(nal[0]) < 32
                })?;
                let temporal_id = (header[1] & 7).saturating_sub(1);
                self.temporal_layers |= temporal_id > 0;
                let kind = h265_type(header[0]);
                Some(!self.temporal_layers && kind <= 14 && kind.is_multiple_of(2))
            }
        }
    }
}

/// Coded slice of a non-IDR (1) or IDR (5) picture, or a slice data partition A (2).
fn is_h264_slice(header: u8) -> bool {
    matches!(header & 0x1f, 1 | 2 | 5)
}

fn h265_type(header: u8) -> u8 {
    (header >> 1) & 0x3f
}

/// The first NAL unit (from its header on) that `wanted` accepts.
fn first_unit(data: &[u8], framing: Framing, wanted: impl Fn(&[u8]) -> bool) -> Option<&[u8]> {
    match framing {
        Framing::AnnexB => annexb_units(data).find(|nal| wanted(nal)),
        Framing::LengthPrefixed(size) => {
            let mut at = 0;
            while at + size < data.len() {
                let len = data[at..at + size]
                    .iter()
                    .fold(0usize, |n, &b| (n << 8) | usize::from(b));
                let nal = data.get(at + size..(at + size + len).min(data.len()))?;
                if !nal.is_empty() && wanted(nal) {
                    return Some(nal);
                }
                at += size + len;
            }
            None
        }
    }
}

/// The NAL units after each start code, each running to the end of the buffer (only their
/// headers are read).
fn annexb_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    start_codes(data).filter_map(|at| data.get(at..).filter(|nal| !nal.is_empty()))
}

/// Offsets just past each `00 00 01` in `data`.
fn start_codes(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
    data.windows(3)
        .enumerate()
        .filter(|(_, w)| w == &[0, 0, 1])
        .map(|(i, _)| i + 3)
}

const MPEG2_PICTURE_START: u8 = 0x00;
const MPEG2_B_PICTURE: u8 = 3;

/// The picture coding type of the first picture header (1 I, 2 P, 3 B).
fn mpeg2_picture_type(data: &[u8]) -> Option<u8> {
    start_codes(data)
        .filter(|&at| data.get(at) == Some(&MPEG2_PICTURE_START))
        // temporal_reference (10 bits), then picture_coding_type (3 bits).
        .find_map(|at| data.get(at + 2).map(|b| (b >> 3) & 7))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annexb(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [&[0u8, 0, 0, 1][..], u].concat())
            .collect()
    }

    fn prefixed(units: &[&[u8]]) -> Vec<u8> {
        units
            .iter()
            .flat_map(|u| [&(u.len() as u32).to_be_bytes()[..], u].concat())
            .collect()
    }

    #[test]
    fn h264_reads_the_first_slice_after_delimiters_and_sei() {
        let aud: &[u8] = &[0x09, 0xf0];
        let sei: &[u8] = &[0x06, 0x05, 0x00, 0x00, 0x01, 0x80];
        // nal_ref_idc 0, non-IDR slice; then nal_ref_idc 2.
        let disposable: &[u8] = &[0x01, 0x9a, 0x00];
        let referenced: &[u8] = &[0x41, 0x9a, 0x00];
        let idr: &[u8] = &[0x65, 0x88, 0x80];
        let mut f = NonReference::new(Codec::H264, Framing::AnnexB);
        assert_eq!(
            f.is_non_reference(&annexb(&[aud, sei, disposable])),
            Some(true)
        );
        assert_eq!(f.is_non_reference(&annexb(&[aud, referenced])), Some(false));
        assert_eq!(f.is_non_reference(&annexb(&[aud, idr])), Some(false));
        assert_eq!(f.is_non_reference(&annexb(&[aud, sei])), None);
        let mut f = NonReference::new(Codec::H264, Framing::LengthPrefixed(4));
        assert_eq!(
            f.is_non_reference(&prefixed(&[sei, disposable])),
            Some(true)
        );
        assert_eq!(f.is_non_reference(&prefixed(&[referenced])), Some(false));
        // A truncated unit is read as far as its header; a length with nothing after it is not
        // a picture.
        assert_eq!(f.is_non_reference(&[0, 0, 0, 9, 0x01]), Some(true));
        assert_eq!(f.is_non_reference(&[0, 0, 0, 9]), None);
    }

    #[test]
    fn h265_non_reference_types_count_only_without_temporal_layers() {
        let header = |kind: u8, tid: u8| [kind << 1, tid + 1, 0xaf];
        let mut f = NonReference::new(Codec::H265, Framing::AnnexB);
        let vps: &[u8] = &[32 << 1, 1, 0x0c];
        assert_eq!(
            f.is_non_reference(&annexb(&[vps, &header(0, 0)])),
            Some(true)
        );
        assert_eq!(f.is_non_reference(&annexb(&[&header(1, 0)])), Some(false));
        assert_eq!(f.is_non_reference(&annexb(&[&header(8, 0)])), Some(true));
        assert_eq!(f.is_non_reference(&annexb(&[&header(19, 0)])), Some(false));
        // Once a sub-layer shows, a TRAIL_N of a lower layer may be a reference.
        assert_eq!(f.is_non_reference(&annexb(&[&header(0, 1)])), Some(false));
        assert_eq!(f.is_non_reference(&annexb(&[&header(0, 0)])), Some(false));
    }

    #[test]
    fn mpeg2_b_pictures_are_non_reference() {
        let picture = |kind: u8| {
            let mut bytes = vec![0, 0, 1, 0xb3, 0x28, 0x01, 0xe0]; // a sequence header first
            bytes.extend([0, 0, 1, 0x00, 0x00, kind << 3, 0xff]);
            bytes
        };
        let mut f = NonReference::new(Codec::Mpeg2, Framing::AnnexB);
        assert_eq!(f.is_non_reference(&picture(1)), Some(false));
        assert_eq!(f.is_non_reference(&picture(2)), Some(false));
        assert_eq!(f.is_non_reference(&picture(3)), Some(true));
        assert_eq!(f.is_non_reference(&[0, 0, 1, 0xb3, 0x28]), None);
    }

    #[test]
    fn caps_name_the_codec_and_framing() {
        gst::init().unwrap();
        let caps = |s: &str| s.parse::<gst::Caps>().unwrap();
        let c = caps("video/x-h264,stream-format=byte-stream,alignment=au");
        assert_eq!(codec_of(&c), Some((Codec::H264, Framing::AnnexB)));
        let c = caps("video/mpeg,mpegversion=2,systemstream=false");
        assert_eq!(codec_of(&c), Some((Codec::Mpeg2, Framing::AnnexB)));
        let c = caps("video/x-h264,stream-format=avc,alignment=au");
        assert_eq!(
            codec_of(&c),
            Some((Codec::H264, Framing::LengthPrefixed(4)))
        );
        assert_eq!(codec_of(&caps("video/x-vp9")), None);
        assert_eq!(length_size(Codec::H264, &[1, 0x64, 0, 0x1f, 0xfd]), 2);
    }
}
