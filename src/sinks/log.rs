//! The log lines of a stream's events: defects under the `streamwatch::event` target (with
//! every field, for log pipelines), the stream coming up and its format changes. (A stream going
//! down is logged by its supervisor, which knows when it retries.)

use crate::events::{Event, Sink};
use crate::frame::VideoFrame;

pub struct LogSink {
    stream: String,
}

impl LogSink {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_owned(),
        }
    }
}

impl Sink for LogSink {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        let stream = self.stream.as_str();
        match event {
            Event::DefectStarted { defect: e, .. } => tracing::warn!(
                target: "streamwatch::event",
                event = "defect_start",
                stream,
                detector = %e.detector,
                channel = e.channel,
                channel_position = e.channel_position,
                variant = e.variant.as_deref(),
                priority = e.priority,
                indicators = e.indicators.as_deref(),
                start = e.start,
                start_time = %e.start_time,
                value = e.value,
                "{} defect on {} since {:.3} s",
                e.detector,
                stream,
                e.start
            ),
            Event::DefectEnded { defect: e, .. } => tracing::info!(
                target: "streamwatch::event",
                event = "defect_end",
                stream,
                detector = %e.detector,
                channel = e.channel,
                channel_position = e.channel_position,
                variant = e.variant.as_deref(),
                priority = e.priority,
                indicators = e.indicators.as_deref(),
                start = e.start,
                end = e.end,
                duration = e.duration,
                start_time = %e.start_time,
                end_time = e.end_time.as_deref(),
                value = e.value,
                "{} defect on {} ended: {:.3}-{:.3} s",
                e.detector,
                stream,
                e.start,
                e.end.unwrap_or(e.start)
            ),
            Event::Scte35Cue(cue) => tracing::info!(
                target: "streamwatch::event",
                event = "scte35",
                stream,
                command = cue.command,
                kind = ?cue.kind,
                event_id = cue.event_id,
                pts = cue.pts,
                duration = cue.duration,
                auto_return = cue.auto_return,
                segmentation_type = cue.segmentation_type,
                "SCTE-35 {} on {} ({:?}, event {:?})",
                cue.command,
                stream,
                cue.kind,
                cue.event_id
            ),
            Event::AdBreak(change) => tracing::info!(
                target: "streamwatch::event",
                event = "ad_break",
                stream,
                change = ?change,
                "ad break on {}: {:?}",
                stream,
                change
            ),
            Event::StreamUp { width: 0, .. } => tracing::info!(stream, "stream up (audio only)"),
            Event::StreamUp { width, height, .. } => {
                tracing::info!(stream, width, height, "stream up");
            }
            Event::Info(info) if info.kind == "analysis_tier" => {
                tracing::info!(stream, at = info.at, change = %info.detail, "analysis tier changed");
            }
            Event::Info(info) => {
                tracing::info!(stream, at = info.at, change = %info.detail, "format changed");
            }
            _ => {}
        }
    }
}
