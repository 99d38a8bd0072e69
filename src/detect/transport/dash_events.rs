//! SCTE-35 cues in a DASH MPD (SCTE 214-1 §6.7): `EventStream`s of the schemes
//! `urn:scte:scte35:2013:xml`, `urn:scte:scte35:2014:xml+bin` and `urn:scte:scte35:2013:bin`,
//! each `Event` a message placed on the period's timeline, its content the section in XML or
//! in base64. An event's duration is the break's: the MPD says when it returns, so a break
//! ends by itself (no overrun). Times are seconds on the availability clock (since
//! `availabilityStartTime`), and an event announced ahead takes effect when the clock
//! reaches it.

use std::collections::{BTreeSet, VecDeque};

use base64::Engine;
use dash_mpd_core::scte35::SpliceInfoSection;
use dash_mpd_core::{Event, EventStream, Period};

use super::scte35::{BreakChange, Breaks, Cue, CueKind, cue_of_section, segmentation_kind};

/// Events remembered to tell new ones: a day of breaks, several messages each.
const MAX_SEEN: usize = 1024;

/// The cues of one MPD across polls.
#[derive(Default)]
pub struct DashCues {
    seen: BTreeSet<(String, String, u64)>,
    seen_order: VecDeque<(String, String, u64)>,
    /// Cues read but not yet reached by the clock, by time.
    pending: Vec<Cue>,
    breaks: Breaks,
}

impl DashCues {
    /// The cues new in `period` (which starts at `period_start` on the availability clock)
    /// that the clock (`now`; None for a static MPD: every cue counts at once) has reached,
    /// and the break's changes.
    pub fn observe(
        &mut self,
        period: &Period,
        period_start: f64,
        now: Option<f64>,
    ) -> (Vec<Cue>, Vec<BreakChange>) {
        for stream in period.event_streams.iter().filter(|s| is_scte35(s)) {
            for event in &stream.event {
                if self.is_new(stream, event) {
                    self.pending.extend(event_cue(stream, event, period_start));
                }
            }
        }
        self.pending.sort_by(|a, b| a.at.total_cmp(&b.at));
        let due = self
            .pending
            .iter()
            .take_while(|c| now.is_none_or(|now| c.at <= now))
            .count();
        let cues: Vec<Cue> = self.pending.drain(..due).collect();
        let mut changes = Vec::new();
        for cue in &cues {
            self.breaks.cue(cue, &mut changes);
        }
        if let Some(now) = now {
            self.breaks.tick(now, 0.0, &mut changes);
        }
        (cues, changes)
    }

    fn is_new(&mut self, stream: &EventStream, event: &Event) -> bool {
        let key = (
            stream.schemeIdUri.clone(),
            event.id.clone().unwrap_or_default(),
            event.presentationTime.unwrap_or(0),
        );
        if !self.seen.insert(key.clone()) {
            return false;
        }
        self.seen_order.push_back(key);
        if self.seen_order.len() > MAX_SEEN
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }
}

fn is_scte35(stream: &EventStream) -> bool {
    stream.schemeIdUri.starts_with("urn:scte:scte35:")
}

/// One event's cue, at its place on the availability clock.
fn event_cue(stream: &EventStream, event: &Event, period_start: f64) -> Option<Cue> {
    let timescale = event.timescale.or(stream.timescale).unwrap_or(1).max(1) as f64;
    let offset = stream.presentationTimeOffset.unwrap_or(0);
    let at = period_start
        + event.presentationTime.unwrap_or(0).saturating_sub(offset) as f64 / timescale;
    let declared = event.duration.map(|d| d as f64 / timescale);
    let mut cue = binary_cue(event, at).or_else(|| xml_cue(event, at))?;
    if cue.kind == CueKind::Out {
        cue.duration = declared.or(cue.duration);
        // The event's duration is when the break returns.
        cue.auto_return = cue.duration.is_some();
    }
    Some(cue)
}

/// `scte35:Signal/scte35:Binary`, or the event's text: the section in base64.
fn binary_cue(event: &Event, at: f64) -> Option<Cue> {
    let text = event
        .signal
        .iter()
        .find_map(|s| s.content.as_ref().map(|b| b.content.as_str()))
        .or(event.content.as_deref())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    cue_of_section(&bytes, at, |_| at)
}

/// `scte35:SpliceInfoSection` in XML (in the event, or in its `scte35:Signal`).
fn xml_cue(event: &Event, at: f64) -> Option<Cue> {
    let section: &SpliceInfoSection = event.splice_info_section.first().or_else(|| {
        event
            .signal
            .iter()
            .find_map(|s| s.splice_info_section.as_ref())
    })?;
    let mut cue = Cue::immediate("splice_null", at);
    if let Some(insert) = &section.splice_insert {
        cue.command = "splice_insert";
        cue.event_id = insert.splice_event_id;
        cue.kind = match (
            insert.splice_event_cancel_indicator.unwrap_or(false),
            insert.out_of_network_indicator.unwrap_or(false),
        ) {
            (true, _) => CueKind::Cancel,
            (false, true) => CueKind::Out,
            (false, false) => CueKind::In,
        };
        if let Some(d) = &insert.break_duration {
            cue.duration = Some(d.duration as f64 / 90_000.0);
        }
    } else if section.time_signal.is_some() {
        cue.command = "time_signal";
        if let Some(d) = &section.segmentation_descriptor {
            let type_id = d.segmentation_type_id.unwrap_or(0);
            cue.segmentation_type = Some(type_id);
            cue.event_id = d.segmentation_event_id;
            cue.kind = if d.segmentation_event_cancel_indicator.unwrap_or(false) {
                CueKind::Cancel
            } else {
                segmentation_kind(type_id)
            };
            cue.duration = d.segmentation_duration.map(|t| t as f64 / 90_000.0);
        }
    }
    Some(cue)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(events: &str) -> Period {
        let mpd = format!(
            r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:scte35="http://www.scte.org/schemas/35/2016" type="dynamic" availabilityStartTime="2026-11-30T08:00:00Z">
  <Period id="p0" start="PT10S">{events}</Period></MPD>"#
        );
        dash_mpd_core::parse(&mpd).expect("MPD").periods.remove(0)
    }

    const XML_BREAK: &str = r#"<EventStream schemeIdUri="urn:scte:scte35:2013:xml" timescale="90000">
  <Event presentationTime="1800000" duration="2700000" id="1">
    <scte35:SpliceInfoSection><scte35:SpliceInsert spliceEventId="77" outOfNetworkIndicator="true" spliceImmediateFlag="true">
      <scte35:BreakDuration autoReturn="true" duration="2700000"/></scte35:SpliceInsert></scte35:SpliceInfoSection>
  </Event></EventStream>"#;

    /// splice_insert out of network, event 7, a 4 s break (as in the HLS vectors).
    const BINARY_BREAK: &str = r#"<EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="1">
  <Event presentationTime="60" duration="4" id="2"><scte35:Signal><scte35:Binary>/DAgAAAAAAAAAAAADwUAAAAHf/9+AAV+QAABAAAAANQqnoU=</scte35:Binary></scte35:Signal></Event>
</EventStream>"#;

    #[test]
    fn an_xml_event_is_a_break_that_returns_at_its_duration() {
        let p = period(XML_BREAK);
        let mut cues = DashCues::default();
        // 20 s into the period (period at 10 s): announced, not yet on.
        let (c, changes) = cues.observe(&p, 10.0, Some(25.0));
        assert!(c.is_empty() && changes.is_empty());
        let (c, changes) = cues.observe(&p, 10.0, Some(31.0));
        assert_eq!(c.len(), 1);
        let cue = &c[0];
        assert_eq!(
            (cue.command, cue.kind, cue.event_id, cue.at, cue.duration),
            ("splice_insert", CueKind::Out, Some(77), 30.0, Some(30.0))
        );
        assert!(matches!(changes[..], [BreakChange::Started { start, .. }] if start == 30.0));
        // Seen once only, and the break ends at 60 s by itself.
        let (c, changes) = cues.observe(&p, 10.0, Some(61.0));
        assert!(c.is_empty());
        assert!(matches!(changes[..], [BreakChange::Ended { end, .. }] if end == 60.0));
    }

    #[test]
    fn a_binary_event_is_parsed_from_base64() {
        let p = period(BINARY_BREAK);
        let (c, _) = DashCues::default().observe(&p, 10.0, None);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].command,
                c[0].kind,
                c[0].event_id,
                c[0].at,
                c[0].duration
            ),
            ("splice_insert", CueKind::Out, Some(7), 70.0, Some(4.0))
        );
    }
}
