//! ETSI TR 101 290 measurements on the bytes entering `tsdemux`.
//!
//! The indicators themselves come from `dvb-conformance` (priorities 1 and 2, and 3 on
//! request); this module gives it what it needs from a stream that arrives in buffers of any
//! size: 188-byte packets framed the way an analyser frames them (a packet whose sync byte is
//! corrupt is still a packet, so indicators 1.1 and 1.2 can see it), a time for every packet,
//! and the one priority 2 indicator the crate leaves out, PCR accuracy (2.4).
//!
//! Time is the stream's own: every packet is placed on its PCR, spread by position between
//! PCRs. Files and downloaded HLS segments arrive in bursts that say nothing of their timing,
//! and on live inputs the limits are about the multiplex, not about delivery jitter (a
//! sender's bursts, the network), which would otherwise read as PAT or PCR gaps. A real gap
//! still shows: the PCR after it has moved on.

use std::collections::VecDeque;
use std::time::Duration;

use dvb_conformance::{Config, ConformanceMonitor, Indicator, Priority};
use mpeg_ts::ts::TsPacket;

use crate::detect::transport::psi::ProgramTables;
use crate::detect::transport::scte35::{
    BreakChange, Breaks, Cue, STREAM_TYPE_SCTE35, Scte35Reader,
};

/// Indicator 1.4's name, which `streamwatch_ts_cc_errors_total` also counts.
pub const CONTINUITY_COUNT_ERROR: &str = "Continuity_count_error";

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const NULL_PID: u16 = 0x1FFF;
const PCR_HZ: f64 = 27_000_000.0;
/// The 27 MHz PCR wraps at 2^33 × 300.
const PCR_WRAP: u64 = (1 << 33) * 300;
/// Consecutive frames with a bad sync byte after which framing is searched for again (the
/// standard's sync loss is two).
const RESYNC_AFTER_BAD: u32 = 2;
/// A step between two PCRs longer than this is a jump, not elapsed time: a compliant stream
/// has a PCR every 100 ms, and data lost in a longer gap shows in the continuity counters.
const MAX_PCR_STEP_SECS: f64 = 0.5;

/// What a PCR must be within of the value its position gives it (TR 101 290 §5.3.2.2:
/// ±500 ns), in 27 MHz ticks.
const PCR_ACCURACY_TICKS: f64 = 13.5;
/// Consecutive PCR intervals that must agree on one rate before accuracy is judged: only a
/// constant-bitrate multiplex has a rate, and a variable one never passes.
const PCR_LEARN_INTERVALS: usize = 10;
/// Consecutive inaccurate PCRs after which the rate is taken to have changed (a new multiplex
/// configuration) rather than every PCR to be wrong: they are dropped and the rate relearnt.
const PCR_RELEARN_AFTER: u32 = 10;

/// The TR 101 290 settings a stream's analyser needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TsSettings {
    /// The stream comes in HLS segments: PAT, PMT and PCR are only required once per
    /// `segment_interval` (packagers write them once per segment).
    pub segmented: bool,
    /// Report priority 3 (SI repetition, unreferenced PIDs, buffer model) too.
    pub priority3: bool,
    /// Seconds between PAT, PMT or PCR that are errors in segmented input.
    pub segment_interval: f64,
    /// Seconds an ad break may run past its declared duration.
    pub break_tolerance: f64,
}

/// What one buffer showed: TR 101 290 errors, SCTE-35 cues and the ad break's changes.
#[derive(Debug, Default)]
pub struct TsFindings {
    pub errors: Vec<IndicatorErrors>,
    pub cues: Vec<Cue>,
    pub breaks: Vec<BreakChange>,
}

impl TsFindings {
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.cues.is_empty() && self.breaks.is_empty()
    }
}

/// Errors of one indicator found in one buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct IndicatorErrors {
    /// The standard's name (`Continuity_count_error`, `PAT_error_2`...).
    pub indicator: &'static str,
    /// 1, 2 or 3.
    pub priority: u8,
    pub count: u64,
    /// Seconds on the analyser's clock (see the module doc) of the first of them.
    pub at: f64,
    /// What the first of them was (PID, interval...).
    pub detail: String,
}

/// The priority 1 and 2 indicators reported, with their priority.
const REPORTED: [(Indicator, u8); 13] = [
    (Indicator::TsSyncLoss, 1),
    (Indicator::SyncByteError, 1),
    (Indicator::PatError2, 1),
    (Indicator::ContinuityCountError, 1),
    (Indicator::PmtError2, 1),
    (Indicator::PidError, 1),
    (Indicator::TransportError, 2),
    (Indicator::CrcError, 2),
    (Indicator::PcrRepetitionError, 2),
    (Indicator::PcrDiscontinuityError, 2),
    (Indicator::PcrAccuracyError, 2),
    (Indicator::PtsError, 2),
    (Indicator::CatError, 2),
];

/// No error of each priority 1 and 2 indicator: the counters a measured stream starts with.
pub fn zero_counts() -> Vec<IndicatorErrors> {
    REPORTED
        .iter()
        .map(|&(indicator, priority)| IndicatorErrors {
            indicator: indicator.name(),
            priority,
            count: 0,
            at: 0.0,
            detail: String::new(),
        })
        .collect()
}

/// The TR 101 290 analyser of one transport stream.
pub struct Tr101290 {
    settings: TsSettings,
    measures: Measures,
    /// Bytes of a packet, or of framing being searched for, that continue in the next buffer.
    carry: Vec<u8>,
    bad_sync_run: u32,
    pacing: PcrPacing,
}

impl Tr101290 {
    pub fn new(settings: TsSettings) -> Self {
        Self {
            measures: Measures {
                monitor: ConformanceMonitor::with_config(monitor_config(&settings)),
                tables: ProgramTables::default(),
                sparse: Vec::new(),
                scte35: Scte35Reader::default(),
                breaks: Breaks::default(),
                break_tolerance: settings.break_tolerance,
                accuracy: PcrAccuracy::default(),
                priority3: settings.priority3,
                last: Duration::ZERO,
            },
            carry: Vec::with_capacity(4 * PACKET),
            bad_sync_run: 0,
            pacing: PcrPacing::default(),
            settings,
        }
    }

    /// Starts afresh: after a discontinuity the source announced (a skipped segment, a
    /// flush, a reconnect), nothing before it can be compared with what follows.
    pub fn reset(&mut self) {
        *self = Self::new(self.settings);
    }

    /// Reads the packets in `data` (which continues the previous call's data); returns the
    /// errors found, one entry per indicator.
    pub fn push(&mut self, data: &[u8]) -> TsFindings {
        let mut found = TsFindings::default();
        self.carry.extend_from_slice(data);
        let mut at = 0;
        while let Some(step) = self.next_packet(at) {
            match step {
                Framing::Packet(start) => {
                    let mut packet = [0u8; PACKET];
                    packet.copy_from_slice(&self.carry[start..start + PACKET]);
                    self.packet(&packet, &mut found);
                    at = start + PACKET;
                }
                Framing::Skip(to) => at = to,
            }
        }
        self.carry.drain(..at);
        found
    }

    /// Where the next packet starts at or after `at` in `carry`, None when more data is
    /// needed. Framing holds across one or two corrupt sync bytes and is searched for again
    /// after that: a packet then starts where three sync bytes follow each other.
    fn next_packet(&mut self, at: usize) -> Option<Framing> {
        let rest = &self.carry[at..];
        if rest.len() < PACKET {
            return None;
        }
        if rest[0] == SYNC {
            self.bad_sync_run = 0;
            return Some(Framing::Packet(at));
        }
        if self.bad_sync_run < RESYNC_AFTER_BAD {
            self.bad_sync_run += 1;
            return Some(Framing::Packet(at));
        }
        let aligned = |i: usize| (0..3).all(|k| rest.get(i + k * PACKET) == Some(&SYNC));
        match (1..rest.len()).find(|&i| aligned(i)) {
            Some(i) => Some(Framing::Skip(at + i)),
            // Keep what may still hold the start of the next three packets.
            None if rest.len() > 3 * PACKET => Some(Framing::Skip(self.carry.len() - 3 * PACKET)),
            None => None,
        }
    }

    fn packet(&mut self, packet: &[u8; PACKET], found: &mut TsFindings) {
        let measures = &mut self.measures;
        self.pacing.push(packet, packet_pcr(packet), |p, pcr, t| {
            measures.measure(p, pcr, t, found)
        });
    }
}

/// The measurements proper, on timed packets.
struct Measures {
    monitor: ConformanceMonitor,
    /// The programs, for the PIDs that carry data only now and then.
    tables: ProgramTables,
    /// PIDs whose PMT entry is neither video nor audio (SCTE-35 cues, subtitles, teletext,
    /// private sections): they may be silent for minutes, so their absence is no PID_error.
    sparse: Vec<u16>,
    scte35: Scte35Reader,
    breaks: Breaks,
    break_tolerance: f64,
    accuracy: PcrAccuracy,
    priority3: bool,
    /// The latest time given.
    last: Duration,
}

impl Measures {
    fn measure(
        &mut self,
        packet: &[u8; PACKET],
        pcr: Option<PcrField>,
        t: Duration,
        found: &mut TsFindings,
    ) {
        // Never backwards: an interval measured backwards would hide the time that passed.
        self.last = self.last.max(t);
        let t = self.last;
        let accuracy_errors = self.accuracy.observe(packet, pcr);
        if let Some(programs) = self.tables.push(packet) {
            let streams = || programs.iter().flat_map(|p| &p.streams);
            self.sparse = streams()
                .filter(|s| s.kind != "video" && s.kind != "audio")
                .map(|s| s.pid)
                .collect();
            let cue_pids: Vec<u16> = streams()
                .filter(|s| s.stream_type == STREAM_TYPE_SCTE35)
                .map(|s| s.pid)
                .collect();
            self.scte35.set_pids(&cue_pids);
        }
        self.cues(packet, pcr, t.as_secs_f64(), found);
        let mut lost_packets = false;
        for event in self.monitor.feed(packet, t) {
            let priority = priority_number(event.priority);
            let sparse_pid = event.indicator == Indicator::PidError
                && event.pid.is_some_and(|p| self.sparse.contains(&p.value()));
            if (priority == 3 && !self.priority3) || sparse_pid {
                continue;
            }
            lost_packets |= event.indicator == Indicator::ContinuityCountError;
            tally(
                &mut found.errors,
                event.indicator.name(),
                priority,
                t,
                || event.detail.clone(),
            );
        }
        if lost_packets {
            // Positions no longer measure time.
            self.accuracy.forget_rates();
        }
        if let Some((pid, errors)) = accuracy_errors {
            for _ in 0..errors {
                tally(
                    &mut found.errors,
                    Indicator::PcrAccuracyError.name(),
                    2,
                    t,
                    || format!("PCR on PID 0x{pid:04X} more than 500 ns from its position's value"),
                );
            }
        }
    }
}

enum Framing {
    Packet(usize),
    Skip(usize),
}

impl Measures {
    /// SCTE-35 cues, and the ad break they describe as the clock passes.
    fn cues(
        &mut self,
        packet: &[u8; PACKET],
        pcr: Option<PcrField>,
        t: f64,
        found: &mut TsFindings,
    ) {
        if let Some((_, value, _)) = pcr {
            self.scte35.note_pcr(value, t);
        }
        let before = found.cues.len();
        self.scte35.packet(packet, t, &mut found.cues);
        for cue in &found.cues[before..] {
            self.breaks.cue(cue, &mut found.breaks);
        }
        self.breaks.tick(t, self.break_tolerance, &mut found.breaks);
    }
}

/// Adds one error of `indicator` to `found`.
fn tally(
    found: &mut Vec<IndicatorErrors>,
    indicator: &'static str,
    priority: u8,
    t: Duration,
    detail: impl FnOnce() -> String,
) {
    match found.iter_mut().find(|e| e.indicator == indicator) {
        Some(e) => e.count += 1,
        None => found.push(IndicatorErrors {
            indicator,
            priority,
            count: 1,
            at: t.as_secs_f64(),
            detail: detail(),
        }),
    }
}

fn priority_number(priority: Priority) -> u8 {
    match priority {
        Priority::First => 1,
        Priority::Second => 2,
        // Third, and any priority a later version of the crate adds.
        _ => 3,
    }
}

/// The standard's limits, with PAT, PMT and PCR once per segment allowed in HLS.
fn monitor_config(settings: &TsSettings) -> Config {
    let mut config = Config::default();
    if settings.segmented {
        let once_per_segment = Duration::from_secs_f64(settings.segment_interval);
        config.pat_max_interval = once_per_segment;
        config.pmt_max_interval = once_per_segment;
        config.pcr_repetition_limit = once_per_segment;
        config.pcr_discontinuity_limit = once_per_segment;
    }
    config
}

/// The PID, 27 MHz value and discontinuity indicator of a packet's PCR.
type PcrField = (u16, u64, bool);

/// The PCR of a packet, if it has one.
fn packet_pcr(packet: &[u8; PACKET]) -> Option<PcrField> {
    if packet[0] != SYNC {
        return None;
    }
    let parsed = TsPacket::parse(packet).ok()?;
    let field = parsed.adaptation_field()?.ok()?;
    let pcr = field.pcr?;
    Some((
        parsed.header.pid.value(),
        pcr.as_27mhz(),
        field.discontinuity_indicator,
    ))
}

fn pcr_distance(from: u64, to: u64) -> u64 {
    (to + PCR_WRAP - from % PCR_WRAP) % PCR_WRAP
}

/// Times for packets placed on the stream's PCR: the packets between two PCRs of the PID
/// that drives the clock are held until the second comes, then spread evenly over the
/// interval. Interpolating forward at the last interval's rate instead would misplace them
/// in a variable-rate stream, where one interval's packet count says little of the next.
/// Packets are let go at the last rate when PCRs stop (`MAX_HELD_PACKETS`), so time goes
/// on and absences are still measured. A PCR jump
/// (discontinuity, wrong value) does not move the clock: the rate carries on across it.
#[derive(Default)]
struct PcrPacing {
    pid: Option<u16>,
    /// The last PCR of the clock PID, and its time.
    anchor: Option<(u64, f64)>,
    seconds_per_packet: f64,
    /// The time of the last packet let go.
    released: f64,
    held: VecDeque<([u8; PACKET], Option<PcrField>)>,
}

/// Packets held at most while no PCR comes (1.5 MiB: 100 ms at 120 Mb/s, 2.5 s at 5 Mb/s).
/// A count, not a time at the last interval's rate: in a variable-rate stream an interval
/// of a few packets (a black picture) can be followed by one of hundreds (a keyframe).
const MAX_HELD_PACKETS: usize = 8192;

impl PcrPacing {
    /// Adds a packet; `release` gets every packet that can be timed now, in order.
    fn push(
        &mut self,
        packet: &[u8; PACKET],
        pcr: Option<PcrField>,
        mut release: impl FnMut(&[u8; PACKET], Option<PcrField>, Duration),
    ) {
        self.held.push_back((*packet, pcr));
        let overdue = self.held.len() >= MAX_HELD_PACKETS;
        match pcr {
            Some((pid, value, discontinuity)) if self.pid.is_none_or(|p| p == pid) || overdue => {
                self.pcr_arrived(pid, value, discontinuity, &mut release);
            }
            _ if overdue => {
                if let Some((p, pcr)) = self.held.pop_front() {
                    self.released += self.seconds_per_packet;
                    release(&p, pcr, Duration::from_secs_f64(self.released));
                }
            }
            _ => {}
        }
    }

    /// A PCR of the clock PID ends the held interval: its packets are spread over it.
    fn pcr_arrived(
        &mut self,
        pid: u16,
        value: u64,
        discontinuity: bool,
        release: &mut impl FnMut(&[u8; PACKET], Option<PcrField>, Duration),
    ) {
        let count = self.held.len() as f64;
        let from = self.released;
        let estimate = from + count * self.seconds_per_packet;
        let at = match self.anchor {
            Some((last, secs)) if self.pid == Some(pid) && !discontinuity => {
                let step = pcr_distance(last, value) as f64 / PCR_HZ;
                if step > 0.0 && step <= MAX_PCR_STEP_SECS && secs + step >= from {
                    secs + step
                } else {
                    estimate
                }
            }
            _ => estimate,
        };
        if self.anchor.is_some() && at > from {
            self.seconds_per_packet = (at - from) / count;
        }
        for (k, (p, pcr)) in self.held.drain(..).enumerate() {
            let t = from + (at - from) * (k + 1) as f64 / count;
            release(&p, pcr, Duration::from_secs_f64(t.max(0.0)));
        }
        self.released = at;
        self.pid = Some(pid);
        self.anchor = Some((value, at));
    }
}

/// PCR accuracy (2.4) of a constant-bitrate multiplex: every PCR against the value its
/// packet position gives it at the multiplex rate. TR 101 290 defines the measurement for
/// constant bitrate only; a stream is judged once it carries null packets (the padding of a
/// constant-rate multiplexer) and its PCRs have agreed on one rate for
/// `PCR_LEARN_INTERVALS` intervals.
#[derive(Default)]
struct PcrAccuracy {
    packets: u64,
    padded: bool,
    pids: Vec<(u16, PcrFit)>,
}

impl PcrAccuracy {
    /// Counts the packet; for a PCR, returns its PID and the inaccurate PCRs it confirms.
    fn observe(&mut self, packet: &[u8; PACKET], pcr: Option<PcrField>) -> Option<(u16, u32)> {
        self.packets += 1;
        let pid = (u16::from(packet[1] & 0x1F) << 8) | u16::from(packet[2]);
        self.padded |= packet[0] == SYNC && pid == NULL_PID;
        let (pid, value, discontinuity) = pcr?;
        let index = self.packets;
        let fit = match self.pids.iter().position(|(p, _)| *p == pid) {
            Some(i) => &mut self.pids[i].1,
            None => {
                self.pids.push((pid, PcrFit::default()));
                &mut self.pids.last_mut()?.1
            }
        };
        if discontinuity {
            *fit = PcrFit::default();
        }
        let errors = fit.observe(index, value);
        self.padded.then_some((pid, errors))
    }

    fn forget_rates(&mut self) {
        self.pids.clear();
    }
}

#[derive(Default)]
struct PcrFit {
    /// The last raw value, and the PCR unwrapped (continuous) from the first one.
    last_raw: Option<u64>,
    unwrapped: u64,
    /// (packet index, unwrapped PCR) of consecutive PCRs whose rates agree, while learning.
    learning: Vec<(u64, u64)>,
    /// The first and the latest accurate PCR once the rate is known.
    model: Option<((u64, u64), (u64, u64))>,
    /// Inaccurate PCRs since the last accurate one, not yet reported.
    suspects: u32,
}

impl PcrFit {
    /// The inaccurate PCRs this one confirms (they are reported once an accurate PCR shows
    /// that the rate still holds).
    fn observe(&mut self, index: u64, raw: u64) -> u32 {
        if let Some(last) = self.last_raw {
            let step = pcr_distance(last, raw);
            if step as f64 > MAX_PCR_STEP_SECS * PCR_HZ {
                *self = Self::default();
            } else {
                self.unwrapped += step;
            }
        }
        self.last_raw = Some(raw);
        let point = (index, self.unwrapped);
        let Some((first, last)) = self.model else {
            self.learn(point);
            return 0;
        };
        let rate = (last.1 - first.1) as f64 / (last.0 - first.0) as f64;
        let expected = last.1 as f64 + (index - last.0) as f64 * rate;
        if (point.1 as f64 - expected).abs() <= PCR_ACCURACY_TICKS {
            self.model = Some((first, point));
            return std::mem::take(&mut self.suspects);
        }
        self.suspects += 1;
        if self.suspects >= PCR_RELEARN_AFTER {
            *self = Self {
                last_raw: self.last_raw,
                unwrapped: self.unwrapped,
                ..Self::default()
            };
        }
        0
    }

    /// Adds a PCR while the rate is unknown; the oldest points go while they disagree.
    fn learn(&mut self, point: (u64, u64)) {
        self.learning.push(point);
        while !self.rates_agree() {
            self.learning.remove(0);
        }
        if self.learning.len() > PCR_LEARN_INTERVALS {
            let first = self.learning[0];
            self.model = Some((first, point));
            self.learning.clear();
        }
    }

    /// Whether every learning point lies on the line through the first and the last.
    fn rates_agree(&self) -> bool {
        let (Some(&first), Some(&last)) = (self.learning.first(), self.learning.last()) else {
            return true;
        };
        if last.0 == first.0 {
            return self.learning.len() == 1;
        }
        let rate = (last.1 - first.1) as f64 / (last.0 - first.0) as f64;
        self.learning.iter().all(|&(i, v)| {
            (v as f64 - (first.1 as f64 + (i - first.0) as f64 * rate)).abs() <= PCR_ACCURACY_TICKS
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAT_PMT_PCR_PID: u16 = 0x100;

    fn settings() -> TsSettings {
        TsSettings {
            segmented: false,
            priority3: false,
            segment_interval: 10.0,
            break_tolerance: 2.0,
        }
    }

    fn packet(pid: u16, cc: u8, pcr: Option<u64>) -> [u8; PACKET] {
        let mut p = [0xFFu8; PACKET];
        p[0] = SYNC;
        p[1] = (pid >> 8) as u8 & 0x1F;
        p[2] = pid as u8;
        p[3] = 0x10 | (cc & 0x0F);
        if let Some(pcr) = pcr {
            let (base, ext) = (pcr / 300, pcr % 300);
            p[3] |= 0x20;
            p[4] = 7;
            p[5] = 0x10;
            p[6] = (base >> 25) as u8;
            p[7] = (base >> 17) as u8;
            p[8] = (base >> 9) as u8;
            p[9] = (base >> 1) as u8;
            p[10] = ((base & 1) << 7) as u8 | 0x7E | (ext >> 8) as u8;
            p[11] = ext as u8;
        }
        p
    }

    /// A constant-rate stream: one PCR packet every `every` packets, `ticks_per_packet`
    /// apart, padded with null packets.
    fn cbr(
        packets: u64,
        every: u64,
        ticks_per_packet: u64,
        jitter: impl Fn(u64) -> i64,
    ) -> Vec<u8> {
        (0..packets)
            .flat_map(|i| {
                if i % every == 0 {
                    let pcr = (i * ticks_per_packet) as i64 + jitter(i);
                    packet(PAT_PMT_PCR_PID, (i / every) as u8, Some(pcr as u64))
                } else {
                    packet(NULL_PID, 0, None)
                }
            })
            .collect()
    }

    fn count(found: &[IndicatorErrors], indicator: Indicator) -> u64 {
        found
            .iter()
            .filter(|e| e.indicator == indicator.name())
            .map(|e| e.count)
            .sum()
    }

    #[test]
    fn packets_split_anywhere_across_buffers_are_framed_alike() {
        let mut data = cbr(400, 10, 5_000, |_| 0);
        // One PCR packet lost: one continuity error, wherever the buffers are cut.
        data.drain(200 * PACKET..201 * PACKET);
        let whole = Tr101290::new(settings()).push(&data).errors;
        assert_eq!(
            count(&whole, Indicator::ContinuityCountError),
            1,
            "{whole:?}"
        );
        for split in [1, 100, 188, 189, 5_000, 200 * PACKET + 3] {
            let mut ts = Tr101290::new(settings());
            let (a, b) = data.split_at(split);
            let mut found = ts.push(a).errors;
            found.extend(ts.push(b).errors);
            assert_eq!(
                count(&found, Indicator::ContinuityCountError),
                1,
                "split at {split}"
            );
            assert_eq!(
                count(&found, Indicator::SyncByteError),
                0,
                "split at {split}"
            );
        }
    }

    #[test]
    fn corrupt_sync_bytes_keep_framing_and_garbage_is_skipped() {
        let mut data = cbr(100, 10, 5_000, |_| 0);
        // One corrupt sync byte, then two in a row (sync loss).
        data[20 * PACKET] = 0x46;
        data[40 * PACKET] = 0x00;
        data[41 * PACKET] = 0x00;
        // Garbage between two packets: framing is found again after it.
        data.splice(70 * PACKET..70 * PACKET, [0x12u8; 77]);
        let found = Tr101290::new(settings()).push(&data).errors;
        assert_eq!(count(&found, Indicator::SyncByteError), 5, "{found:?}");
        assert_eq!(count(&found, Indicator::TsSyncLoss), 2, "{found:?}");
    }

    #[test]
    fn packets_between_pcrs_are_spread_over_their_interval() {
        let mut pacing = PcrPacing::default();
        let p = packet(0x100, 0, None);
        let pcr = |v: u64| Some((0x100, v, false));
        let mut push = |pcr: Option<PcrField>| {
            let mut times = Vec::new();
            pacing.push(&p, pcr, |_, _, t| {
                times.push((t.as_secs_f64() * 1e4).round() / 10.0)
            });
            times
        };
        assert_eq!(push(pcr(1_000)), [0.0]);
        for _ in 0..3 {
            assert!(push(None).is_empty());
        }
        // 10 ms later: the four packets of the interval, 2.5 ms apart (in ms).
        assert_eq!(push(pcr(1_000 + 270_000)), [2.5, 5.0, 7.5, 10.0]);
        // A jump of an hour moves nothing: the rate carries on.
        assert!(push(None).is_empty());
        assert_eq!(push(pcr(97_200_000_000)), [12.5, 15.0]);
        // PCRs stop: past MAX_HELD_PACKETS they go at the last rate.
        let released: Vec<f64> = (0..MAX_HELD_PACKETS + 99)
            .flat_map(|_| push(None))
            .collect();
        assert_eq!(released.len(), 100);
        assert_eq!(released.first(), Some(&17.5));
        assert_eq!(released.last(), Some(&265.0));
    }

    #[test]
    fn a_sparse_interval_does_not_rush_the_next() {
        // Variable rate: 80 ms intervals of 3 packets (a black picture), then of 600.
        let mut pacing = PcrPacing::default();
        let p = packet(0x100, 0, None);
        let mut times = Vec::new();
        let mut pcr = 0;
        for count in [3, 3, 3, 600, 600, 3] {
            for _ in 1..count {
                pacing.push(&p, None, |_, _, t| times.push(t.as_secs_f64()));
            }
            pacing.push(&p, Some((0x100, pcr, false)), |_, _, t| {
                times.push(t.as_secs_f64())
            });
            pcr += 2_160_000;
        }
        let last = *times.last().unwrap_or(&0.0);
        assert!((last - 0.4).abs() < 1e-9, "{last}");
        assert!(
            times
                .windows(2)
                .all(|w| w[1] >= w[0] && w[1] - w[0] <= 0.08 / 2.0 + 1e-9)
        );
    }

    #[test]
    fn pcr_accuracy_is_judged_on_constant_bitrate_only() {
        let jittered = |i: u64| if i == 3_000 || i == 6_000 { 40 } else { 0 };
        let found = Tr101290::new(settings())
            .push(&cbr(8_000, 30, 5_000, jittered))
            .errors;
        assert_eq!(count(&found, Indicator::PcrAccuracyError), 2, "{found:?}");
        let clean = Tr101290::new(settings())
            .push(&cbr(8_000, 30, 5_000, |_| 0))
            .errors;
        assert_eq!(count(&clean, Indicator::PcrAccuracyError), 0, "{clean:?}");
        // Variable rate: PCRs at varying packet distances are never judged.
        let vbr = |i: u64| ((i * 7_919) % 3_001) as i64 * 10;
        let found = Tr101290::new(settings())
            .push(&cbr(8_000, 30, 5_000, vbr))
            .errors;
        assert_eq!(count(&found, Indicator::PcrAccuracyError), 0, "{found:?}");
    }

    #[test]
    fn lost_packets_count_once_per_gap() {
        let mut data = cbr(300, 10, 5_000, |_| 0);
        // Drop PCR packets 100 and 110 (CC 10 and 11 of the PCR PID): one gap.
        data.drain(110 * PACKET..111 * PACKET);
        data.drain(100 * PACKET..101 * PACKET);
        let found = Tr101290::new(settings()).push(&data).errors;
        assert_eq!(
            count(&found, Indicator::ContinuityCountError),
            1,
            "{found:?}"
        );
    }
}
