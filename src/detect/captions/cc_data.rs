//! Caption bytes by service, from what GStreamer's parsers attach to coded pictures
//! (`GstVideoCaptionMeta`): CEA-608 byte pairs, SMPTE 334-1 triplets, CEA-708 `cc_data`
//! triplets and CDPs. Only caption data counts as bytes: 608 padding, triplets marked invalid,
//! bytes failing the 608 parity check and the padding of DTVCC packets do not; valid triplets,
//! padding included, say the caption service is on.

use std::collections::BTreeMap;

/// How the bytes of one caption meta are framed (GStreamer's `GstVideoCaptionType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptionFormat {
    /// 608 byte pairs of field 1.
    Cea608Raw,
    /// 608 triplets: a field byte (bit 7 set for field 1), then the pair.
    Cea608S334,
    /// `cc_data` triplets (`cc_valid`, `cc_type` then two bytes).
    Cea708CcData,
    /// A Caption Distribution Packet wrapping `cc_data` (SMPTE 334-2).
    Cea708Cdp,
}

/// Caption bytes counted over some stretch of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptionBytes {
    /// CEA-608 bytes of field 1 and field 2.
    pub cea608: [u64; 2],
    /// CEA-708 service block bytes by service number (1..=63).
    pub cea708: BTreeMap<u8, u64>,
    /// Valid 608 pairs and DTVCC triplets, caption data or padding: a caption inserter sends
    /// padding while nobody speaks, so these say its service is on.
    pub valid: u64,
}

impl CaptionBytes {
    pub fn total(&self) -> u64 {
        self.cea608.iter().sum::<u64>() + self.cea708.values().sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Whether a caption service is there at all: data, or the padding that keeps it alive
    /// through pauses in the dialogue.
    pub fn has_service(&self) -> bool {
        self.total() > 0 || self.valid > 0
    }

    pub fn add(&mut self, other: &CaptionBytes) {
        self.valid += other.valid;
        self.cea608[0] += other.cea608[0];
        self.cea608[1] += other.cea608[1];
        for (&service, &n) in &other.cea708 {
            *self.cea708.entry(service).or_default() += n;
        }
    }
}

/// The DTVCC packet being assembled: packets span triplets and pictures.
#[derive(Debug, Default)]
pub struct CaptionParser {
    packet: Vec<u8>,
}

/// `cc_type` values of a `cc_data` triplet.
const NTSC_FIELD_1: u8 = 0;
const NTSC_FIELD_2: u8 = 1;
const DTVCC_DATA: u8 = 2;
const DTVCC_START: u8 = 3;

/// A DTVCC packet is at most 128 bytes (size code 0).
const MAX_PACKET: usize = 128;

impl CaptionParser {
    /// Counts the caption bytes of one meta into `out`; malformed data counts for nothing.
    pub fn parse(&mut self, format: CaptionFormat, data: &[u8], out: &mut CaptionBytes) {
        match format {
            CaptionFormat::Cea608Raw => {
                for pair in data.chunks_exact(2) {
                    count_608(0, pair[0], pair[1], out);
                }
            }
            CaptionFormat::Cea608S334 => {
                for t in data.chunks_exact(3) {
                    count_608(usize::from(t[0] & 0x80 == 0), t[1], t[2], out);
                }
            }
            CaptionFormat::Cea708CcData => self.cc_data(data, out),
            CaptionFormat::Cea708Cdp => {
                if let Some(cc) = cdp_cc_data(data) {
                    self.cc_data(cc, out);
                }
            }
        }
    }

    fn cc_data(&mut self, data: &[u8], out: &mut CaptionBytes) {
        for t in data.chunks_exact(3) {
            let valid = t[0] & 0x04 != 0;
            match (valid, t[0] & 0x03) {
                (false, _) => {}
                (true, NTSC_FIELD_1) => count_608(0, t[1], t[2], out),
                (true, NTSC_FIELD_2) => count_608(1, t[1], t[2], out),
                (true, DTVCC_START) => {
                    out.valid += 1;
                    // A new packet ends the one before, complete or not.
                    count_service_blocks(&self.packet, out);
                    self.packet.clear();
                    self.push_packet_bytes(&t[1..], out);
                }
                (true, DTVCC_DATA) if !self.packet.is_empty() => {
                    out.valid += 1;
                    self.push_packet_bytes(&t[1..], out);
                }
                (true, _) => out.valid += 1,
            }
        }
    }

    fn push_packet_bytes(&mut self, bytes: &[u8], out: &mut CaptionBytes) {
        self.packet.extend_from_slice(bytes);
        let size = match self.packet[0] & 0x3f {
            0 => MAX_PACKET,
            code => usize::from(code) * 2,
        };
        if self.packet.len() >= size {
            count_service_blocks(&self.packet[..size], out);
            self.packet.clear();
        }
    }
}

/// Counts a valid 608 pair of `field` (0 or 1) and its caption bytes.
fn count_608(field: usize, b1: u8, b2: u8, out: &mut CaptionBytes) {
    out.valid += 1;
    out.cea608[field] += cea608_bytes(b1, b2);
}

/// Bytes of a 608 pair that carry captions: 0 for padding (both bytes null once the parity
/// bit is stripped) and for bytes whose odd parity is broken.
fn cea608_bytes(b1: u8, b2: u8) -> u64 {
    let odd = |b: u8| !b.count_ones().is_multiple_of(2);
    if !odd(b1) || !odd(b2) || (b1 & 0x7f == 0 && b2 & 0x7f == 0) {
        0
    } else {
        2
    }
}

/// Adds the payload bytes of each service block of one DTVCC packet (its header byte first).
fn count_service_blocks(packet: &[u8], out: &mut CaptionBytes) {
    let mut rest = packet.get(1..).unwrap_or_default();
    while let Some((&header, tail)) = rest.split_first() {
        let (mut service, size) = (header >> 5, usize::from(header & 0x1f));
        rest = tail;
        if service == 7 {
            let Some((&extended, tail)) = rest.split_first() else {
                return;
            };
            service = extended & 0x3f;
            rest = tail;
        }
        // The null block header (service 0) ends the packet's data; the rest is padding.
        if service == 0 || size == 0 {
            return;
        }
        let size = size.min(rest.len());
        *out.cea708.entry(service).or_default() += size as u64;
        rest = &rest[size..];
    }
}

/// The `cc_data` triplets of a CDP, if its header and `ccdata_section` are well formed.
fn cdp_cc_data(cdp: &[u8]) -> Option<&[u8]> {
    const TIME_CODE_SECTION: u8 = 0x71;
    const CC_DATA_SECTION: u8 = 0x72;
    if cdp.get(..2)? != [0x96, 0x69] {
        return None;
    }
    let length = usize::from(*cdp.get(2)?);
    let cdp = cdp.get(..length)?;
    let flags = *cdp.get(4)?;
    // Header: identifier (2), length, frame rate, flags, sequence counter (2).
    let mut at = 7;
    if flags & 0x80 != 0 {
        (*cdp.get(at)? == TIME_CODE_SECTION).then_some(())?;
        at += 5;
    }
    if flags & 0x40 == 0 || *cdp.get(at)? != CC_DATA_SECTION {
        return None;
    }
    let count = usize::from(*cdp.get(at + 1)? & 0x1f);
    cdp.get(at + 2..at + 2 + count * 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 608 byte with odd parity.
    fn odd(b: u8) -> u8 {
        let b = b & 0x7f;
        if b.count_ones().is_multiple_of(2) {
            b | 0x80
        } else {
            b
        }
    }

    fn parse(format: CaptionFormat, data: &[u8]) -> CaptionBytes {
        let mut out = CaptionBytes::default();
        CaptionParser::default().parse(format, data, &mut out);
        out
    }

    #[test]
    fn cc_data_counts_608_fields_without_padding_or_invalid_triplets() {
        let data = [
            [0xfc, odd(b'H'), odd(b'I')],
            [0xfd, odd(0x14), odd(0x2c)],
            [0xfc, 0x80, 0x80],           // field 1 padding
            [0xf8, odd(b'N'), odd(b'O')], // cc_valid = 0
            [0xfc, b'H', odd(b'I')],      // 'H' (0x48) has even parity: broken
        ]
        .concat();
        let got = parse(CaptionFormat::Cea708CcData, &data);
        assert_eq!(got.cea608, [2, 2]);
        assert!(got.cea708.is_empty());
        // The padding and the broken pair are the service, not its data.
        assert_eq!(got.valid, 4);
        let idle = parse(CaptionFormat::Cea708CcData, &[0xfc, 0x80, 0x80]);
        assert!(idle.is_empty() && idle.has_service());
    }

    /// One DTVCC packet holding service blocks of `blocks` (service, payload length), as
    /// `cc_data` triplets: a start, then data triplets, padded with null bytes.
    fn dtvcc(sequence: u8, blocks: &[(u8, usize)]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(service, len) in blocks {
            if service < 7 {
                body.push(service << 5 | len as u8);
            } else {
                body.extend([7 << 5 | len as u8, service]);
            }
            body.extend(std::iter::repeat_n(0x41, len));
        }
        let size = (body.len() + 1).div_ceil(2) * 2;
        let mut packet = vec![sequence << 6 | (size / 2) as u8];
        packet.extend(body);
        packet.resize(size, 0);
        let mut out = Vec::new();
        for (i, pair) in packet.chunks(2).enumerate() {
            let kind = if i == 0 { 0xff } else { 0xfe };
            out.extend([kind, pair[0], pair[1]]);
        }
        out
    }

    #[test]
    fn dtvcc_packets_are_split_into_service_blocks() {
        let data = dtvcc(1, &[(1, 10), (2, 3), (9, 4)]);
        let got = parse(CaptionFormat::Cea708CcData, &data);
        assert_eq!(got.cea608, [0, 0]);
        assert_eq!(got.cea708, BTreeMap::from([(1, 10), (2, 3), (9, 4)]));
    }

    #[test]
    fn a_packet_spanning_pictures_is_counted_once_complete() {
        let data = dtvcc(2, &[(1, 20)]);
        let (first, second) = data.split_at(3 * 4);
        let mut parser = CaptionParser::default();
        let mut out = CaptionBytes::default();
        parser.parse(CaptionFormat::Cea708CcData, first, &mut out);
        assert!(out.is_empty(), "incomplete packet counted: {out:?}");
        parser.parse(CaptionFormat::Cea708CcData, second, &mut out);
        assert_eq!(out.cea708, BTreeMap::from([(1, 20)]));
    }

    #[test]
    fn cdp_unwraps_its_cc_data_section_after_a_time_code() {
        let cc = [
            [0xfc, odd(b'A'), odd(b'B')],
            [0xfd, 0x80, 0x80],
            [0xfa, 0x00, 0x00],
        ]
        .concat();
        let mut cdp = vec![0x96, 0x69, 0, 0x4f, 0xc3, 0x12, 0x34];
        cdp.extend([0x71, 0xc0, 0x80, 0x80, 0x80]);
        cdp.extend([0x72, 0xe0 | 3]);
        cdp.extend(&cc);
        cdp.extend([0x74, 0x12, 0x34, 0x00]);
        cdp[2] = cdp.len() as u8;
        let got = parse(CaptionFormat::Cea708Cdp, &cdp);
        assert_eq!(got.cea608, [2, 0]);
        assert!(parse(CaptionFormat::Cea708Cdp, &cdp[..9]).is_empty());
        cdp[0] = 0x95;
        assert!(parse(CaptionFormat::Cea708Cdp, &cdp).is_empty());
    }

    #[test]
    fn s334_triplets_name_their_field_in_bit_7() {
        let data = [[0x80, odd(b'A'), odd(b'B')], [0x00, odd(b'C'), odd(b'D')]].concat();
        assert_eq!(parse(CaptionFormat::Cea608S334, &data).cea608, [2, 2]);
        let raw = [odd(b'A'), odd(b'B'), 0x80, 0x80];
        assert_eq!(parse(CaptionFormat::Cea608Raw, &raw).cea608, [2, 0]);
    }
}
