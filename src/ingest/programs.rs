//! Which program of a multi-program MPEG-TS a run monitors, and the programs it has. `tsdemux`
//! exposes one program: by default the first whose PMT it reads, whatever it carries (a radio
//! service may come first). Its sink pad sees every byte before it does, so a PSI reader there
//! (`detect::transport::psi`) learns the programs first and sets `program-number` before the
//! demuxer activates one: the configured program, else the first with video.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use crate::detect::transport::psi::{self, Program, ProgramTables};
use crate::ingest::media_sink::MediaSink;
use crate::stream::ProgramChoice;
use crate::sync::lock;

/// `tsdemux`'s `program-number` meaning "none yet": program 0 is the network information
/// table, never a program the demuxer activates.
const HOLD: i32 = 0;

/// `tsdemux`'s own choice (the first program whose PMT it reads).
const DEMUXER_CHOICE: i32 = -1;

/// How long the demuxer is held while the PSI reader cannot decide (no PAT, or PMTs that do
/// not come). Then the first program listed (or the demuxer's choice) is taken; the demuxer may
/// already have passed its PMT, and the stall watchdog's restart then starts with it.
const HOLD_LIMIT: Duration = Duration::from_secs(3);

/// The program a run follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selection {
    /// Configured, or chosen by this or an earlier run.
    Program(u16),
    /// Waiting for the PSI reader; since the first bytes.
    Holding(Option<Instant>),
    /// Left to the demuxer.
    Demuxer,
}

/// Hooks a `tsdemux` the URI decoder created for `stream`.
pub fn watch_demuxer(element: &gst::Element, stream: &Arc<dyn MediaSink>) {
    if element.factory().is_none_or(|f| f.name() != "tsdemux") {
        return;
    }
    let Some(pad) = element.static_pad("sink") else {
        return;
    };
    let selection = match (stream.configured_program(), stream.program_choice()) {
        (Some(n), _) | (None, ProgramChoice::Number(n)) => Selection::Program(n),
        (None, ProgramChoice::Demuxer) => Selection::Demuxer,
        (None, ProgramChoice::Undecided) => Selection::Holding(None),
    };
    element.set_property("program-number", program_number(selection));
    let reader = Mutex::new((ProgramTables::default(), selection));
    let stream = stream.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |pad, info| {
            let demuxer = pad.parent_element();
            let mut guard = lock(&reader);
            let (tables, selection) = &mut *guard;
            let mut read = |buffer: &gst::BufferRef| {
                if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                    tables.reset();
                }
                let Ok(map) = buffer.map_readable() else {
                    return;
                };
                if let Some(programs) = tables.push(map.as_slice()) {
                    let selected = select(selection, &programs, stream.as_ref());
                    apply(demuxer.as_ref(), *selection);
                    stream.set_programs(programs, selected);
                }
            };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => read(b),
                Some(gst::PadProbeData::BufferList(list)) => list.iter().for_each(&mut read),
                _ => {}
            }
            if give_up_holding(selection, tables.programs(), stream.as_ref()) {
                apply(demuxer.as_ref(), *selection);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn program_number(selection: Selection) -> i32 {
    match selection {
        Selection::Program(n) => i32::from(n),
        Selection::Holding(_) => HOLD,
        Selection::Demuxer => DEMUXER_CHOICE,
    }
}

fn apply(demuxer: Option<&gst::Element>, selection: Selection) {
    if let Some(demuxer) = demuxer {
        demuxer.set_property("program-number", program_number(selection));
    }
}

/// Decides, when still holding, on the programs now known; returns the program followed.
fn select(selection: &mut Selection, programs: &[Program], stream: &dyn MediaSink) -> Option<u16> {
    match *selection {
        Selection::Program(n) => {
            // A chosen program that left: the next run chooses again (this one goes down on
            // the monitor's program check).
            if stream.configured_program().is_none() && !programs.iter().any(|p| p.number == n) {
                stream.set_program_choice(ProgramChoice::Undecided);
            }
            Some(n)
        }
        Selection::Holding(_) => {
            let n = psi::default_program(programs)?;
            *selection = Selection::Program(n);
            stream.set_program_choice(ProgramChoice::Number(n));
            Some(n)
        }
        Selection::Demuxer => None,
    }
}

/// After `HOLD_LIMIT` of bytes without a decision, takes the first program listed (with video
/// if known), or leaves it to the demuxer when no PAT came. True when the selection changed.
fn give_up_holding(
    selection: &mut Selection,
    programs: Option<Vec<Program>>,
    stream: &dyn MediaSink,
) -> bool {
    let Selection::Holding(since) = selection else {
        return false;
    };
    let since = *since.get_or_insert_with(Instant::now);
    if since.elapsed() < HOLD_LIMIT {
        return false;
    }
    let first = programs.as_deref().and_then(|p| {
        p.iter()
            .find(|p| p.has_video())
            .or(p.first())
            .map(|p| p.number)
    });
    *selection = match first {
        Some(n) => Selection::Program(n),
        None => Selection::Demuxer,
    };
    let choice = match first {
        Some(n) => ProgramChoice::Number(n),
        None => ProgramChoice::Demuxer,
    };
    tracing::warn!(stream = stream.id(), choice = ?choice, "MPEG-TS program tables incomplete; program chosen without them");
    stream.set_program_choice(choice);
    true
}
