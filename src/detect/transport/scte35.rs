//! SCTE-35 cues in MPEG-TS: `splice_info_section`s on the PIDs the PMT lists with stream type
//! 0x86, parsed by the `scte35-splice` crate, and the ad breaks they open and close.
//!
//! A break opens with a `splice_insert` out of network, or a `time_signal` whose segmentation
//! descriptor starts a break, an advertisement or a placement opportunity; it closes with the
//! matching return (or by itself, when the cue asked for `auto_return`). Times are on the TS
//! analyser's clock (the stream's PCR): a cue's splice PTS is placed on it through the last
//! PCR, so a break's declared end can be checked against the stream as it plays.

use broadcast_common::Parse;
use scte35_splice::SpliceInfoSection;
use scte35_splice::commands::AnyCommand;
use scte35_splice::descriptors::AnySpliceDescriptor;
use serde::Serialize;

use crate::detect::transport::psi::{Assembler, packet_payload, pid_of};

/// The PMT stream type of SCTE-35 sections.
pub const STREAM_TYPE_SCTE35: u8 = 0x86;
/// A splice time further than this from the current PCR is not believed (a wrong PTS, or one
/// on another clock): the cue is taken as immediate.
const MAX_SPLICE_LEAD_SECS: f64 = 60.0;
/// 2^33 ticks of 90 kHz.
const PTS_WRAP: u64 = 1 << 33;

/// What a cue does to the ad break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CueKind {
    /// Leaves the network feed: a break starts.
    Out,
    /// Returns to it: the break ends.
    In,
    /// Cancels an announced event.
    Cancel,
    /// Says nothing of breaks (`splice_null` heartbeats, other segmentation types).
    Other,
}

/// One SCTE-35 message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cue {
    /// `splice_insert`, `time_signal`, `splice_null`...
    pub command: &'static str,
    pub kind: CueKind,
    /// `splice_event_id`, or the segmentation descriptor's `segmentation_event_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<u32>,
    /// The splice PTS in seconds (with `pts_adjustment`), None for an immediate splice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pts: Option<f64>,
    /// The declared break (or segment) duration in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// The splicer returns by itself at the end of `duration`.
    pub auto_return: bool,
    /// The segmentation type id of a `time_signal`'s descriptor (0x30: provider advertisement
    /// start...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation_type: Option<u8>,
    /// When the message arrived, and when its splice takes effect, on the analyser's clock.
    pub at: f64,
    pub splice_at: f64,
}

impl Cue {
    /// A message of `command` arriving at `at` and taking effect then, saying nothing of
    /// breaks until its fields are filled in.
    pub fn immediate(command: &'static str, at: f64) -> Self {
        Self {
            command,
            kind: CueKind::Other,
            event_id: None,
            pts: None,
            duration: None,
            auto_return: false,
            segmentation_type: None,
            at,
            splice_at: at,
        }
    }
}

/// Reads the SCTE-35 PIDs of one transport stream.
#[derive(Default)]
pub struct Scte35Reader {
    assemblers: Vec<(u16, Assembler)>,
    /// The last PCR (27 MHz) and its time on the analyser's clock.
    last_pcr: Option<(u64, f64)>,
}

impl Scte35Reader {
    /// The PIDs the PMTs list with the SCTE-35 stream type.
    pub fn set_pids(&mut self, pids: &[u16]) {
        self.assemblers.retain(|(p, _)| pids.contains(p));
        for &pid in pids {
            if !self.assemblers.iter().any(|(p, _)| *p == pid) {
                self.assemblers.push((pid, Assembler::default()));
            }
        }
    }

    pub fn note_pcr(&mut self, pcr: u64, t: f64) {
        self.last_pcr = Some((pcr, t));
    }

    /// One packet at `t` seconds; the cues it completes go to `out`.
    pub fn packet(&mut self, packet: &[u8], t: f64, out: &mut Vec<Cue>) {
        if self.assemblers.is_empty() || packet.len() < 4 {
            return;
        }
        let pid = pid_of(packet[1], packet[2]);
        let Some((_, assembler)) = self.assemblers.iter_mut().find(|(p, _)| *p == pid) else {
            return;
        };
        let Some((unit_start, payload)) = packet_payload(packet) else {
            return;
        };
        let mut sections = Vec::new();
        assembler.feed(payload, unit_start, &mut sections);
        for section in sections {
            if let Some(cue) = self.cue(&section, t) {
                out.push(cue);
            }
        }
    }

    /// The cue of one section, its splice time on the analyser's clock.
    fn cue(&self, section: &[u8], t: f64) -> Option<Cue> {
        cue_of_section(section, t, |pts| self.clock_of(pts, t))
    }

    /// A PTS on the analyser's clock, through the last PCR (PTS and PCR share one clock).
    fn clock_of(&self, pts: u64, t: f64) -> f64 {
        let Some((pcr, pcr_at)) = self.last_pcr else {
            return t;
        };
        let now = (pcr / 300 + ((t - pcr_at) * 90_000.0) as u64) % PTS_WRAP;
        let ahead = (pts + PTS_WRAP - now) % PTS_WRAP;
        let lead = ahead as f64 / 90_000.0;
        if lead <= MAX_SPLICE_LEAD_SECS {
            t + lead
        } else {
            t
        }
    }
}

/// The cue of one splice_info_section arriving at `t`; `clock` puts a splice PTS (90 kHz,
/// adjusted) on the caller's clock. None when it is not a valid clear section (the crate
/// checks the CRC; encrypted sections cannot be read).
pub fn cue_of_section(section: &[u8], t: f64, clock: impl Fn(u64) -> f64) -> Option<Cue> {
    let parsed = SpliceInfoSection::parse(section).ok()?;
    let clear = parsed.clear.as_ref()?;
    let mut cue = Cue::immediate(command_name(&clear.command), t);
    let mut pts_ticks = None;
    match &clear.command {
        AnyCommand::SpliceInsert(insert) => {
            cue.event_id = Some(insert.splice_event_id);
            cue.kind = match (
                insert.splice_event_cancel_indicator,
                insert.out_of_network_indicator,
            ) {
                (true, _) => CueKind::Cancel,
                (false, true) => CueKind::Out,
                (false, false) => CueKind::In,
            };
            if !insert.splice_immediate_flag {
                pts_ticks = insert.splice_time.as_ref().and_then(|s| s.pts_time);
            }
            if let Some(d) = &insert.break_duration {
                cue.duration = Some(d.duration as f64 / 90_000.0);
                cue.auto_return = d.auto_return;
            }
        }
        AnyCommand::TimeSignal(signal) => {
            pts_ticks = signal.splice_time.pts_time;
            if let Some((kind, id, duration, type_id)) = segmentation(&parsed) {
                cue.kind = kind;
                cue.event_id = Some(id);
                cue.duration = duration;
                cue.segmentation_type = Some(type_id);
            }
        }
        _ => {}
    }
    if let Some(ticks) = pts_ticks {
        let pts = (ticks + parsed.pts_adjustment) % PTS_WRAP;
        cue.pts = Some(pts as f64 / 90_000.0);
        cue.splice_at = clock(pts);
    }
    Some(cue)
}

fn command_name(command: &AnyCommand<'_>) -> &'static str {
    match command {
        AnyCommand::SpliceNull(_) => "splice_null",
        AnyCommand::SpliceSchedule(_) => "splice_schedule",
        AnyCommand::SpliceInsert(_) => "splice_insert",
        AnyCommand::TimeSignal(_) => "time_signal",
        AnyCommand::BandwidthReservation(_) => "bandwidth_reservation",
        AnyCommand::PrivateCommand(_) => "private_command",
        _ => "unknown",
    }
}

/// The break a `time_signal`'s first segmentation descriptor opens or closes: (kind, event id,
/// duration, segmentation type id). Break, provider/distributor advertisement and placement
/// opportunity starts (0x22, 0x30, 0x32, 0x34, 0x36) open; their ends (one more) close.
fn segmentation(section: &SpliceInfoSection<'_>) -> Option<(CueKind, u32, Option<f64>, u8)> {
    section.descriptors().flatten().find_map(|d| match d {
        AnySpliceDescriptor::Segmentation(s) => {
            let type_id = s.segmentation_type_id.to_u8();
            let kind = if s.segmentation_event_cancel_indicator {
                CueKind::Cancel
            } else {
                segmentation_kind(type_id)
            };
            let duration = s.segmentation_duration.map(|d| d as f64 / 90_000.0);
            Some((kind, s.segmentation_event_id, duration, type_id))
        }
        _ => None,
    })
}

/// What a segmentation type id does to the break.
pub fn segmentation_kind(type_id: u8) -> CueKind {
    match type_id {
        0x22 | 0x30 | 0x32 | 0x34 | 0x36 => CueKind::Out,
        0x23 | 0x31 | 0x33 | 0x35 | 0x37 => CueKind::In,
        _ => CueKind::Other,
    }
}

/// A change of the ad break, from the cues and the passing of time.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum BreakChange {
    /// A cue out: the break starts at `start` (the splice time) for `duration`, if declared.
    Started {
        event_id: Option<u32>,
        start: f64,
        duration: Option<f64>,
    },
    /// Its declared duration and the tolerance passed without a return.
    Overrun {
        event_id: Option<u32>,
        expected_end: f64,
    },
    /// The return (a cue in, a cancel, the automatic return, or the next break's cue out).
    Ended {
        event_id: Option<u32>,
        start: f64,
        end: f64,
    },
    /// A cue in while no break was on.
    InWithoutOut { event_id: Option<u32>, at: f64 },
}

struct Break {
    event_id: Option<u32>,
    start: f64,
    duration: Option<f64>,
    auto_return: bool,
    overrun: bool,
}

/// The ad break a stream's cues describe.
#[derive(Default)]
pub struct Breaks {
    current: Option<Break>,
    /// The event of the last break that returned by itself: its cue in may still come.
    auto_returned: Option<Option<u32>>,
}

impl Breaks {
    /// One cue: a break starts, ends, or a return comes with none on.
    pub fn cue(&mut self, cue: &Cue, out: &mut Vec<BreakChange>) {
        match cue.kind {
            CueKind::Out => {
                if let Some(b) = &self.current
                    && b.event_id == cue.event_id
                {
                    // Cues are sent more than once.
                    return;
                }
                self.end(cue.splice_at, out);
                self.current = Some(Break {
                    event_id: cue.event_id,
                    start: cue.splice_at,
                    duration: cue.duration,
                    auto_return: cue.auto_return,
                    overrun: false,
                });
                out.push(BreakChange::Started {
                    event_id: cue.event_id,
                    start: cue.splice_at,
                    duration: cue.duration,
                });
            }
            CueKind::In => {
                if self.current.is_some() {
                    self.end(cue.splice_at, out);
                } else if self.auto_returned != Some(cue.event_id) {
                    out.push(BreakChange::InWithoutOut {
                        event_id: cue.event_id,
                        at: cue.splice_at,
                    });
                }
            }
            CueKind::Cancel => {
                if self
                    .current
                    .as_ref()
                    .is_some_and(|b| b.event_id == cue.event_id)
                {
                    self.end(cue.at, out);
                }
            }
            CueKind::Other => {}
        }
    }

    /// Time passed to `t`: an automatic return, or an overrun (`tolerance`: seconds a break
    /// may run past its declared duration).
    pub fn tick(&mut self, t: f64, tolerance: f64, out: &mut Vec<BreakChange>) {
        let Some(b) = &mut self.current else { return };
        let Some(duration) = b.duration else { return };
        let expected_end = b.start + duration;
        if b.auto_return && t >= expected_end {
            self.auto_returned = Some(b.event_id);
            self.end(expected_end, out);
        } else if !b.auto_return && !b.overrun && t > expected_end + tolerance {
            b.overrun = true;
            out.push(BreakChange::Overrun {
                event_id: b.event_id,
                expected_end,
            });
        }
    }

    fn end(&mut self, end: f64, out: &mut Vec<BreakChange>) {
        if let Some(b) = self.current.take() {
            out.push(BreakChange::Ended {
                event_id: b.event_id,
                start: b.start,
                end: end.max(b.start),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(kind: CueKind, id: u32, at: f64, duration: Option<f64>, auto_return: bool) -> Cue {
        Cue {
            command: "splice_insert",
            kind,
            event_id: Some(id),
            pts: None,
            duration,
            auto_return,
            segmentation_type: None,
            at,
            splice_at: at,
        }
    }

    fn run(cues: &[Cue], until: f64) -> Vec<BreakChange> {
        let mut breaks = Breaks::default();
        let mut out = Vec::new();
        let mut t = 0.0;
        let mut next = cues.iter().peekable();
        while t <= until {
            while let Some(c) = next.next_if(|c| c.at <= t) {
                breaks.cue(c, &mut out);
            }
            breaks.tick(t, 2.0, &mut out);
            t += 0.1;
        }
        out
    }

    #[test]
    fn a_break_that_returns_in_time_is_no_fault() {
        let out = run(
            &[
                cue(CueKind::Out, 7, 1.0, Some(30.0), false),
                cue(CueKind::Out, 7, 1.5, Some(30.0), false),
                cue(CueKind::In, 7, 31.5, None, false),
            ],
            40.0,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(matches!(
            out[1],
            BreakChange::Ended {
                start: 1.0,
                end: 31.5,
                ..
            }
        ));
    }

    #[test]
    fn a_break_past_its_duration_and_tolerance_overruns_until_it_returns() {
        let out = run(
            &[
                cue(CueKind::Out, 7, 1.0, Some(10.0), false),
                cue(CueKind::In, 7, 20.0, None, false),
            ],
            25.0,
        );
        let overrun = out.iter().find_map(|c| match c {
            BreakChange::Overrun { expected_end, .. } => Some(*expected_end),
            _ => None,
        });
        assert_eq!(overrun, Some(11.0), "{out:?}");
        assert!(matches!(
            out.last(),
            Some(BreakChange::Ended { end: 20.0, .. })
        ));
    }

    #[test]
    fn auto_return_ends_the_break_and_its_late_cue_in_is_no_orphan() {
        let out = run(
            &[
                cue(CueKind::Out, 7, 1.0, Some(10.0), true),
                cue(CueKind::In, 7, 11.5, None, false),
                cue(CueKind::In, 8, 15.0, None, false),
            ],
            20.0,
        );
        assert!(
            matches!(out[1], BreakChange::Ended { end: 11.0, .. }),
            "{out:?}"
        );
        assert_eq!(
            out[2],
            BreakChange::InWithoutOut {
                event_id: Some(8),
                at: 15.0
            }
        );
        assert_eq!(out.len(), 3);
    }
}
