//! `scan --frame-stats FILE`: every analysed frame's statistics as a CSV row.

use std::io::Write;
use std::sync::Mutex;

use crate::events::{Event, Sink};
use crate::frame::VideoFrame;
use crate::stats::FrameStats;

/// Per-frame statistics written as CSV (`scan --frame-stats FILE`), to see what the detectors
/// see when tuning thresholds for a channel.
pub struct StatsCsv {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl StatsCsv {
    pub const HEADER: &'static str = "stream,pts,width,height,luma_mean,luma_stddev,dark_ratio,\
changed_ratio,detail,edges_across_ratio,edges_down_ratio,quiet_rows_ratio,blockiness,block_hits,block_control,\
active_area_ratio,bar_top,bar_bottom,bar_left,bar_right,field_rows";

    pub fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        writeln!(out, "{}", Self::HEADER)?;
        Ok(Self {
            out: Mutex::new(out),
        })
    }

    /// Appends one frame; a write error is logged once per call and otherwise ignored, since
    /// the analysis matters more than its trace.
    pub fn write(&self, stream: &str, pts: f64, s: &FrameStats) {
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        let changed = if s.has_prev {
            format!("{:.6}", s.changed_ratio())
        } else {
            String::new()
        };
        if let Err(e) = writeln!(
            out,
            "{stream},{pts:.4},{},{},{:.3},{:.3},{:.5},{changed},{:.4},{:.6},{:.6},{:.4},{:.5},{},{},{:.5},{},{},{},{},{}",
            s.width,
            s.height,
            s.luma_mean(),
            s.luma_stddev(),
            s.dark_ratio(),
            s.detail(),
            s.edges_h_ratio(),
            s.edges_v_ratio(),
            s.quiet_row_ratio(),
            s.blockiness().unwrap_or(f64::NAN),
            s.block_hits,
            s.block_control,
            s.active_area_ratio(),
            s.bars.top,
            s.bars.bottom,
            s.bars.left,
            s.bars.right,
            s.field_rows.max(1)
        ) {
            tracing::warn!(error = %e, "cannot write frame statistics");
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        match self.out.lock() {
            Ok(mut out) => out.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// One stream's rows in a [`StatsCsv`] (several streams may share a file).
pub struct FrameStatsSink {
    pub csv: std::sync::Arc<StatsCsv>,
    pub stream: String,
}

impl Sink for FrameStatsSink {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        if let Event::FrameAnalysed { media, stats, .. } = event {
            self.csv.write(&self.stream, *media, stats);
        }
    }
}
