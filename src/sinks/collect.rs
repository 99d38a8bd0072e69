//! `scan`'s report and tests' assertions: every ended defect and every informational event
//! of a stream, kept whole (the API keeps only the latest).

use std::sync::Mutex;

use crate::events::{DefectEvent, Event, InfoEvent, Sink};
use crate::frame::VideoFrame;
use crate::sync::lock;

#[derive(Default)]
pub struct Collector {
    defects: Mutex<Vec<DefectEvent>>,
    info: Mutex<Vec<InfoEvent>>,
}

impl Collector {
    /// Every ended defect, in the order they ended.
    pub fn defects(&self) -> Vec<DefectEvent> {
        lock(&self.defects).clone()
    }

    pub fn info(&self) -> Vec<InfoEvent> {
        lock(&self.info).clone()
    }
}

impl Sink for Collector {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        match event {
            Event::DefectEnded { defect, .. } => lock(&self.defects).push(defect.clone()),
            Event::Info(info) => lock(&self.info).push(info.clone()),
            _ => {}
        }
    }
}

/// Every event of a stream, for tests that check what a stream reported.
#[derive(Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).clone()
    }
}

impl Sink for Recorder {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        lock(&self.events).push(event.clone());
    }
}
