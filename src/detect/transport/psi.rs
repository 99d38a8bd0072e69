//! The programs of an MPEG-TS: PAT, PMT and SDT sections read from the bytes entering
//! `tsdemux` (ISO/IEC 13818-1 §2.4.4, ETSI EN 300 468 §5.2.3).
//!
//! Hand-written rather than taken from a crate: `mpeg2ts-reader` 0.18 parses PAT and PMT but
//! not the SDT (that needs a second crate, `en-300-468-reader`, which covers little else), and
//! it is a full push demuxer built around per-PID filter types, while all that is needed here
//! is three small tables from a byte stream that `tsdemux` demuxes anyway. Sections are
//! reassembled across packets and checked with their CRC-32 before they are believed.

use std::collections::BTreeMap;

use serde::Serialize;

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const PAT_PID: u16 = 0x0000;
const SDT_PID: u16 = 0x0011;
const TABLE_PAT: u8 = 0x00;
const TABLE_PMT: u8 = 0x02;
/// SDT of the transport stream being read ("actual"; 0x46 describes other ones).
const TABLE_SDT_ACTUAL: u8 = 0x42;
const DESCRIPTOR_SERVICE: u8 = 0x48;
/// The longest section allowed (private sections; PSI ones stop at 1024).
const MAX_SECTION: usize = 4096;

/// One elementary stream of a program, as its PMT lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ElementaryStream {
    pub pid: u16,
    pub stream_type: u8,
    /// `video`, `audio`, `subtitle` or `data`.
    pub kind: &'static str,
    /// Short codec name (`h264`, `aac`, ...; `other` when the stream type does not say).
    pub codec: &'static str,
}

/// One program (service) of the transport stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Program {
    pub number: u16,
    pub pmt_pid: u16,
    /// From the SDT's service descriptor, where the stream has one.
    pub service_name: Option<String>,
    pub provider_name: Option<String>,
    /// None until the program's PMT has been read.
    pub pcr_pid: Option<u16>,
    pub streams: Vec<ElementaryStream>,
}

impl Program {
    pub fn has_video(&self) -> bool {
        self.streams.iter().any(|s| s.kind == "video")
    }
}

/// A table that may span several sections: each section number's content, of one version.
#[derive(Debug)]
struct Sections<T> {
    version: u8,
    parts: Vec<Option<T>>,
}

impl<T> Sections<T> {
    /// Stores one section; returns true when the table is complete with it.
    fn store(slot: &mut Option<Self>, header: &Header, content: T) -> bool {
        let last = usize::from(header.last_section_number);
        let fresh = !slot
            .as_ref()
            .is_some_and(|s| s.version == header.version && s.parts.len() == last + 1);
        if fresh {
            *slot = Some(Sections {
                version: header.version,
                parts: (0..=last).map(|_| None).collect(),
            });
        }
        let Some(table) = slot.as_mut() else {
            return false;
        };
        if let Some(part) = table.parts.get_mut(usize::from(header.section_number)) {
            *part = Some(content);
        }
        table.parts.iter().all(Option::is_some)
    }

    fn complete(&self) -> Option<impl Iterator<Item = &T>> {
        self.parts
            .iter()
            .all(Option::is_some)
            .then(|| self.parts.iter().flatten())
    }
}

/// Section bytes of one PID being reassembled from packet payloads.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    data: Vec<u8>,
    /// A section start was seen and `data` continues it.
    active: bool,
    /// The last complete section, to skip identical repetitions (tables repeat every ~100 ms).
    last: Vec<u8>,
}

impl Assembler {
    /// Adds one packet's payload; returns the sections it completes.
    pub(crate) fn feed(&mut self, payload: &[u8], unit_start: bool, out: &mut Vec<Vec<u8>>) {
        let mut rest = payload;
        if unit_start {
            let Some((&pointer, after)) = payload.split_first() else {
                return;
            };
            let pointer = usize::from(pointer).min(after.len());
            if self.active {
                self.data.extend_from_slice(&after[..pointer]);
                self.take_sections(out);
            }
            self.data.clear();
            self.active = true;
            rest = &after[pointer..];
        } else if !self.active {
            return;
        }
        self.data.extend_from_slice(rest);
        self.take_sections(out);
        if self.data.len() > MAX_SECTION {
            self.data.clear();
            self.active = false;
        }
    }

    fn take_sections(&mut self, out: &mut Vec<Vec<u8>>) {
        while self.data.len() >= 3 {
            if self.data[0] == 0xFF {
                // Stuffing: nothing more in this packet.
                self.data.clear();
                self.active = false;
                return;
            }
            let len = 3 + (usize::from(self.data[1] & 0x0F) << 8 | usize::from(self.data[2]));
            if self.data.len() < len {
                return;
            }
            let section: Vec<u8> = self.data.drain(..len).collect();
            if section != self.last {
                self.last.clone_from(&section);
                out.push(section);
            }
        }
    }
}

/// The long-form section header shared by PAT, PMT and SDT.
#[derive(Debug)]
struct Header {
    table_id: u8,
    extension: u16,
    version: u8,
    section_number: u8,
    last_section_number: u8,
}

/// The header and body (between header and CRC) of a section whose CRC is right.
fn parse_section(section: &[u8]) -> Option<(Header, &[u8])> {
    if section.len() < 12 || section[1] & 0x80 == 0 || crc32_mpeg2(section) != 0 {
        return None;
    }
    let current = section[5] & 0x01 == 1;
    if !current {
        return None;
    }
    let header = Header {
        table_id: section[0],
        extension: u16::from_be_bytes([section[3], section[4]]),
        version: (section[5] >> 1) & 0x1F,
        section_number: section[6],
        last_section_number: section[7],
    };
    Some((header, &section[8..section.len() - 4]))
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, initial 0xFFFFFFFF, no final XOR). Over
/// a whole section including its CRC field it is 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A packet's payload unit start indicator and payload; None without a payload or with the
/// transport error indicator set (its bytes cannot be trusted).
pub(crate) fn packet_payload(packet: &[u8]) -> Option<(bool, &[u8])> {
    if packet.len() < 5 || packet[1] & 0x80 != 0 {
        return None;
    }
    let payload = match (packet[3] >> 4) & 0x3 {
        0b01 => &packet[4..],
        0b11 => packet.get(5 + usize::from(packet[4])..)?,
        _ => return None,
    };
    Some((packet[1] & 0x40 != 0, payload))
}

pub(crate) fn pid_of(hi: u8, lo: u8) -> u16 {
    u16::from(hi & 0x1F) << 8 | u16::from(lo)
}

fn length_of(hi: u8, lo: u8) -> usize {
    usize::from(hi & 0x0F) << 8 | usize::from(lo)
}

/// (tag, body) of each descriptor in a descriptor loop.
fn descriptors(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let (&tag, rest) = data.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let body = rest.get(..usize::from(len))?;
        data = &rest[usize::from(len)..];
        Some((tag, body))
    })
}

fn parse_pat(body: &[u8]) -> Vec<(u16, u16)> {
    body.chunks_exact(4)
        .map(|c| (u16::from_be_bytes([c[0], c[1]]), pid_of(c[2], c[3])))
        // Program 0 points at the network information table, not at a program.
        .filter(|&(number, _)| number != 0)
        .collect()
}

#[derive(Clone, Debug)]
struct Pmt {
    version: u8,
    pcr_pid: u16,
    streams: Vec<ElementaryStream>,
}

fn parse_pmt(version: u8, body: &[u8]) -> Option<Pmt> {
    let pcr_pid = pid_of(*body.first()?, *body.get(1)?);
    let info_len = length_of(*body.get(2)?, *body.get(3)?);
    let mut es = body.get(4 + info_len..)?;
    let mut streams = Vec::new();
    while es.len() >= 5 {
        let es_len = length_of(es[3], es[4]);
        let descs = es.get(5..5 + es_len)?;
        let (kind, codec) = stream_codec(es[0], descs);
        streams.push(ElementaryStream {
            pid: pid_of(es[1], es[2]),
            stream_type: es[0],
            kind,
            codec,
        });
        es = &es[5 + es_len..];
    }
    Some(Pmt {
        version,
        pcr_pid,
        streams,
    })
}

/// (kind, codec) of a PMT entry: the stream type, and for private data (0x06) the descriptors
/// that DVB and the registration authority use to say what it carries.
pub fn stream_codec(stream_type: u8, descs: &[u8]) -> (&'static str, &'static str) {
    match stream_type {
        0x01 => ("video", "mpeg1"),
        0x02 => ("video", "mpeg2"),
        // MPEG-1/2 audio: the PMT does not say which layer (ffmpeg marks MP3 so too).
        0x03 | 0x04 => ("audio", "mpeg_audio"),
        0x0F | 0x11 => ("audio", "aac"),
        0x10 => ("video", "mpeg4"),
        0x1B => ("video", "h264"),
        0x24 => ("video", "hevc"),
        0x81 => ("audio", "ac3"),
        0x87 => ("audio", "eac3"),
        0x06 => private_stream_codec(descs),
        _ => ("data", "other"),
    }
}

fn private_stream_codec(descs: &[u8]) -> (&'static str, &'static str) {
    for (tag, body) in descriptors(descs) {
        match tag {
            0x6A => return ("audio", "ac3"),
            0x7A => return ("audio", "eac3"),
            0x7B => return ("audio", "dts"),
            0x59 | 0x56 => return ("subtitle", "other"),
            // Registration descriptor: a four-character format identifier.
            0x05 => match body.get(..4) {
                Some(b"Opus") => return ("audio", "opus"),
                Some(b"AC-3") => return ("audio", "ac3"),
                Some(b"EAC3") => return ("audio", "eac3"),
                Some(b"BSSD") => return ("audio", "pcm"),
                Some(b"AV01") => return ("video", "av1"),
                Some(b"HEVC") => return ("video", "hevc"),
                _ => {}
            },
            _ => {}
        }
    }
    ("data", "other")
}

/// (service_id, provider, name) of one SDT entry.
type Service = (u16, Option<String>, Option<String>);

/// The services an SDT section names in its service descriptors.
fn parse_sdt(body: &[u8]) -> Vec<Service> {
    let mut services = Vec::new();
    let mut rest = body.get(3..).unwrap_or(&[]);
    while rest.len() >= 5 {
        let id = u16::from_be_bytes([rest[0], rest[1]]);
        let len = length_of(rest[3], rest[4]);
        let Some(descs) = rest.get(5..5 + len) else {
            break;
        };
        let (mut provider, mut name) = (None, None);
        for (tag, d) in descriptors(descs) {
            if tag != DESCRIPTOR_SERVICE || d.len() < 2 {
                continue;
            }
            let provider_len = usize::from(d[1]);
            provider = d.get(2..2 + provider_len).map(dvb_text);
            let at = 2 + provider_len;
            name = d
                .get(at)
                .and_then(|&n| d.get(at + 1..at + 1 + usize::from(n)))
                .map(dvb_text);
        }
        services.push((id, provider, name));
        rest = &rest[5 + len..];
    }
    services
}

/// A DVB string (EN 300 468 annex A). A first byte below 0x20 selects a character table;
/// names in practice are ASCII, so the selector is skipped and the rest read as Latin-1,
/// with control codes dropped.
fn dvb_text(bytes: &[u8]) -> String {
    let text = match bytes.first() {
        Some(0x10) => bytes.get(3..).unwrap_or(&[]),
        Some(0x1F) => bytes.get(2..).unwrap_or(&[]),
        Some(&b) if b < 0x20 => &bytes[1..],
        _ => bytes,
    };
    text.iter()
        .filter(|&&b| b >= 0x20 && !(0x80..0xA0).contains(&b))
        .map(|&b| char::from(b))
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The program tables of one transport stream, as its bytes go by.
#[derive(Debug, Default)]
pub struct ProgramTables {
    /// The start of a packet split across two buffers.
    partial: Vec<u8>,
    assemblers: BTreeMap<u16, Assembler>,
    pat: Option<Sections<Vec<(u16, u16)>>>,
    pmts: BTreeMap<u16, Pmt>,
    sdt: Option<Sections<Vec<Service>>>,
    /// What was last returned: programs change rarely, and only a change is reported.
    reported: Option<Vec<Program>>,
}

impl ProgramTables {
    /// Forgets a partly read packet or section after a discontinuity; the tables stay.
    pub fn reset(&mut self) {
        self.partial.clear();
        for a in self.assemblers.values_mut() {
            a.data.clear();
            a.active = false;
        }
    }

    /// Reads the packets in `data` (continuing the previous call's data). Returns the programs
    /// when they changed: a new PAT, PMT or SDT content.
    pub fn push(&mut self, mut data: &[u8]) -> Option<Vec<Program>> {
        let mut changed = false;
        if !self.partial.is_empty() {
            let take = (PACKET - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < PACKET {
                return None;
            }
            let packet = std::mem::take(&mut self.partial);
            changed |= self.packet(&packet);
        }
        while !data.is_empty() {
            if data[0] != SYNC {
                match data.iter().position(|&b| b == SYNC) {
                    Some(i) => data = &data[i..],
                    None => break,
                }
            }
            if data.len() < PACKET {
                self.partial.extend_from_slice(data);
                break;
            }
            changed |= self.packet(&data[..PACKET]);
            data = &data[PACKET..];
        }
        if !changed {
            return None;
        }
        let programs = self.programs()?;
        if self.reported.as_ref() == Some(&programs) {
            return None;
        }
        self.reported = Some(programs.clone());
        Some(programs)
    }

    /// The programs of the latest complete PAT, with what their PMTs and the SDT say.
    pub fn programs(&self) -> Option<Vec<Program>> {
        let pat = self.pat.as_ref()?.complete()?;
        let mut names = BTreeMap::new();
        if let Some(sdt) = self.sdt.as_ref().and_then(|s| s.complete()) {
            for (id, provider, name) in sdt.flatten() {
                names.insert(*id, (provider.clone(), name.clone()));
            }
        }
        Some(
            pat.flatten()
                .map(|&(number, pmt_pid)| {
                    let pmt = self.pmts.get(&number);
                    let (provider_name, service_name) =
                        names.get(&number).cloned().unwrap_or_default();
                    Program {
                        number,
                        pmt_pid,
                        service_name,
                        provider_name,
                        pcr_pid: pmt.map(|p| p.pcr_pid),
                        streams: pmt.map(|p| p.streams.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        )
    }

    fn is_psi_pid(&self, pid: u16) -> bool {
        pid == PAT_PID
            || pid == SDT_PID
            || self
                .pat
                .as_ref()
                .is_some_and(|pat| pat.parts.iter().flatten().flatten().any(|&(_, p)| p == pid))
    }

    /// Reads one packet; true when a section it completes changed a table. Sections apply at
    /// once: the PMT PIDs of a PAT are followed from the next packet on.
    fn packet(&mut self, packet: &[u8]) -> bool {
        let pid = pid_of(packet[1], packet[2]);
        if !self.is_psi_pid(pid) {
            return false;
        }
        let Some((unit_start, payload)) = packet_payload(packet) else {
            return false;
        };
        let mut sections = Vec::new();
        self.assemblers
            .entry(pid)
            .or_default()
            .feed(payload, unit_start, &mut sections);
        let mut changed = false;
        for section in sections {
            changed |= self.section(pid, &section);
        }
        changed
    }

    /// Applies one complete section; true when it changed a table.
    fn section(&mut self, pid: u16, section: &[u8]) -> bool {
        let Some((header, body)) = parse_section(section) else {
            return false;
        };
        match (pid, header.table_id) {
            (PAT_PID, TABLE_PAT) => {
                let complete = Sections::store(&mut self.pat, &header, parse_pat(body));
                if complete {
                    self.forget_dropped_programs();
                }
                complete
            }
            (SDT_PID, TABLE_SDT_ACTUAL) => Sections::store(&mut self.sdt, &header, parse_sdt(body)),
            (_, TABLE_PMT) => {
                let number = header.extension;
                if self
                    .pmts
                    .get(&number)
                    .is_some_and(|p| p.version == header.version)
                {
                    return false;
                }
                match parse_pmt(header.version, body) {
                    Some(pmt) => {
                        self.pmts.insert(number, pmt);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// PMTs of programs the PAT no longer lists go with them.
    fn forget_dropped_programs(&mut self) {
        let Some(listed) = self.programs().map(|p| {
            p.into_iter()
                .map(|p| p.number)
                .collect::<std::collections::BTreeSet<_>>()
        }) else {
            return;
        };
        self.pmts.retain(|n, _| listed.contains(n));
    }
}

/// Which program to monitor when none is configured: the only one, or the first (in PAT order)
/// with video, else the first; None until every listed program's PMT has been read.
pub fn default_program(programs: &[Program]) -> Option<u16> {
    if let [only] = programs {
        return Some(only.number);
    }
    if programs.is_empty() || programs.iter().any(|p| p.pcr_pid.is_none()) {
        return None;
    }
    programs
        .iter()
        .find(|p| p.has_video())
        .or(programs.first())
        .map(|p| p.number)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A long-form section with its CRC.
    pub fn section(
        table_id: u8,
        extension: u16,
        version: u8,
        number: u8,
        last: u8,
        body: &[u8],
    ) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8];
        s.extend(extension.to_be_bytes());
        s.extend([0xC1 | (version << 1), number, last]);
        s.extend(body);
        let crc = crc32_mpeg2(&s);
        s.extend(crc.to_be_bytes());
        s
    }

    pub fn pat(programs: &[(u16, u16)], version: u8) -> Vec<u8> {
        let mut body = vec![0x00, 0x00, 0xE0, 0x10]; // program 0: the NIT on PID 0x10
        for &(n, pid) in programs {
            body.extend(n.to_be_bytes());
            body.extend([0xE0 | (pid >> 8) as u8, pid as u8]);
        }
        section(TABLE_PAT, 1, version, 0, 0, &body)
    }

    pub fn pmt(number: u16, pcr: u16, streams: &[(u8, u16, &[u8])]) -> Vec<u8> {
        let mut body = vec![0xE0 | (pcr >> 8) as u8, pcr as u8, 0xF0, 0x00];
        for &(stream_type, pid, descs) in streams {
            body.extend([stream_type, 0xE0 | (pid >> 8) as u8, pid as u8]);
            body.extend([0xF0 | (descs.len() >> 8) as u8, descs.len() as u8]);
            body.extend(descs);
        }
        section(TABLE_PMT, number, 0, 0, 0, &body)
    }

    pub fn sdt(services: &[(u16, &str, &str)], number: u8, last: u8) -> Vec<u8> {
        let mut body = vec![0xFF, 0x01, 0xFF]; // original network 0xFF01
        for &(id, provider, name) in services {
            let mut d = vec![DESCRIPTOR_SERVICE, 0, 0x01, provider.len() as u8];
            d.extend(provider.bytes());
            d.push(name.len() as u8);
            d.extend(name.bytes());
            d[1] = (d.len() - 2) as u8;
            body.extend(id.to_be_bytes());
            body.extend([0xFC, 0x80 | (d.len() >> 8) as u8, d.len() as u8]);
            body.extend(d);
        }
        section(TABLE_SDT_ACTUAL, 1, 0, number, last, &body)
    }

    /// Packets carrying `section` on `pid`, split over as many packets as it needs.
    pub fn packets(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut data = vec![0u8]; // pointer field
        data.extend(section);
        for (i, chunk) in data.chunks(184).enumerate() {
            let start = if i == 0 { 0x40 } else { 0x00 };
            out.extend([
                SYNC,
                start | (pid >> 8) as u8,
                pid as u8,
                0x10 | (i as u8 & 0xF),
            ]);
            out.extend(chunk);
            out.resize(out.len() + 184 - chunk.len(), 0xFF);
        }
        out
    }

    fn two_programs() -> Vec<u8> {
        let mut ts = packets(0, &pat(&[(1, 0x1000), (2, 0x1001)], 0));
        ts.extend(packets(
            0x1000,
            &pmt(1, 0x100, &[(0x1B, 0x100, &[]), (0x0F, 0x101, &[])]),
        ));
        let ac3: &[u8] = &[0x6A, 0x01, 0x00];
        ts.extend(packets(
            0x1001,
            &pmt(2, 0x200, &[(0x02, 0x200, &[]), (0x06, 0x201, ac3)]),
        ));
        ts.extend(packets(
            SDT_PID,
            &sdt(&[(1, "FFmpeg", "News"), (2, "FFmpeg", "Sport")], 0, 0),
        ));
        ts
    }

    #[test]
    fn the_crc_of_a_section_checks_itself() {
        // The CRC-32/MPEG-2 check value.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        let s = pat(&[(1, 0x1000)], 0);
        assert_eq!(crc32_mpeg2(&s), 0);
    }

    #[test]
    fn pat_pmt_and_sdt_give_the_programs() {
        let mut tables = ProgramTables::default();
        let programs = tables.push(&two_programs()).expect("programs");
        assert_eq!(programs.len(), 2);
        let news = &programs[0];
        assert_eq!(
            (news.number, news.pmt_pid, news.pcr_pid),
            (1, 0x1000, Some(0x100))
        );
        assert_eq!(news.service_name.as_deref(), Some("News"));
        assert_eq!(news.provider_name.as_deref(), Some("FFmpeg"));
        let codecs: Vec<_> = programs[1]
            .streams
            .iter()
            .map(|s| (s.pid, s.kind, s.codec))
            .collect();
        assert_eq!(codecs, [(0x200, "video", "mpeg2"), (0x201, "audio", "ac3")]);
        assert_eq!(default_program(&programs), Some(1));
        assert_eq!(
            tables.push(&two_programs()),
            None,
            "repeated tables change nothing"
        );
    }

    #[test]
    fn a_section_with_a_bad_crc_is_ignored() {
        let mut s = pat(&[(1, 0x1000)], 0);
        s[9] ^= 0x01;
        let mut tables = ProgramTables::default();
        assert_eq!(tables.push(&packets(0, &s)), None);
        assert!(tables.programs().is_none());
    }

    #[test]
    fn a_section_spanning_packets_and_buffers_is_reassembled() {
        let services: Vec<(u16, String)> = (101..=120)
            .map(|i| (i, format!("Service number {i}")))
            .collect();
        let list: Vec<(u16, &str, &str)> = services
            .iter()
            .map(|(i, n)| (*i, "P", n.as_str()))
            .collect();
        let sdt_section = sdt(&list, 0, 0);
        assert!(sdt_section.len() > 2 * 184, "spans three packets");
        let mut ts = packets(0, &pat(&[(7, 0x1007)], 0));
        ts.extend(packets(0x1007, &pmt(7, 0x700, &[(0x24, 0x700, &[])])));
        ts.extend(packets(SDT_PID, &sdt_section));
        let mut tables = ProgramTables::default();
        let mut last = None;
        // Buffers that cut packets anywhere.
        for chunk in ts.chunks(100) {
            if let Some(p) = tables.push(chunk) {
                last = Some(p);
            }
        }
        let programs = last.expect("programs");
        assert_eq!(
            programs[0].service_name, None,
            "service 7 is not in the SDT"
        );
        assert_eq!(programs[0].streams[0].codec, "hevc");
        let names = tables
            .sdt
            .as_ref()
            .and_then(|s| s.complete())
            .map(|s| s.flatten().count());
        assert_eq!(names, Some(20));
    }

    #[test]
    fn a_table_of_two_sections_needs_both() {
        let mut tables = ProgramTables::default();
        let mut ts = packets(0, &pat(&[(1, 0x1000)], 0));
        ts.extend(packets(0x1000, &pmt(1, 0x100, &[(0x1B, 0x100, &[])])));
        ts.extend(packets(SDT_PID, &sdt(&[(1, "P", "One")], 0, 1)));
        let programs = tables.push(&ts).expect("programs");
        assert_eq!(programs[0].service_name, None, "half an SDT names nothing");
        let programs = tables
            .push(&packets(SDT_PID, &sdt(&[(2, "P", "Two")], 1, 1)))
            .expect("named now");
        assert_eq!(programs[0].service_name.as_deref(), Some("One"));
    }

    #[test]
    fn a_new_pat_version_drops_a_program() {
        let mut tables = ProgramTables::default();
        tables.push(&two_programs()).expect("programs");
        let programs = tables
            .push(&packets(0, &pat(&[(2, 0x1001)], 1)))
            .expect("changed");
        let numbers: Vec<u16> = programs.iter().map(|p| p.number).collect();
        assert_eq!(numbers, [2]);
        assert!(!tables.pmts.contains_key(&1));
    }

    #[test]
    fn the_default_program_is_the_first_with_video_once_all_pmts_are_read() {
        let mut tables = ProgramTables::default();
        let mut ts = packets(0, &pat(&[(1, 0x1000), (2, 0x1001)], 0));
        ts.extend(packets(0x1000, &pmt(1, 0x100, &[(0x0F, 0x100, &[])])));
        let programs = tables.push(&ts).expect("programs");
        assert_eq!(
            default_program(&programs),
            None,
            "program 2's PMT is unknown"
        );
        let programs = tables
            .push(&packets(0x1001, &pmt(2, 0x200, &[(0x1B, 0x200, &[])])))
            .expect("programs");
        assert_eq!(default_program(&programs), Some(2), "program 1 is radio");
    }

    #[test]
    fn stream_types_and_descriptors_name_codecs() {
        assert_eq!(stream_codec(0x1B, &[]), ("video", "h264"));
        assert_eq!(stream_codec(0x24, &[]), ("video", "hevc"));
        assert_eq!(stream_codec(0x0F, &[]), ("audio", "aac"));
        assert_eq!(stream_codec(0x03, &[]), ("audio", "mpeg_audio"));
        assert_eq!(stream_codec(0x06, &[0x7A, 0x00]), ("audio", "eac3"));
        assert_eq!(
            stream_codec(0x06, &[0x05, 0x04, b'O', b'p', b'u', b's']),
            ("audio", "opus")
        );
        assert_eq!(stream_codec(0x06, &[0x59, 0x00]), ("subtitle", "other"));
        assert_eq!(stream_codec(0x86, &[]), ("data", "other"));
        assert_eq!(dvb_text(b"\x05Caf\xe9"), "Café");
    }
}
