//! What every subcommand wires together the same way: the outputs each stream reports to, the
//! set of streams the engine and the API read, and the engine's wake-up.

use std::sync::Arc;

use crate::config::{EngineConfig, StreamConfig};
use crate::engine::{self, EngineHandle};
use crate::sinks::Outputs;
use crate::sinks::metrics::Metrics;
use crate::stats::StatsBackend;
use crate::stream::{Stream, StreamOptions, StreamSet, Wake};

#[derive(Clone)]
pub struct Services {
    pub outputs: Outputs,
    pub streams: Arc<StreamSet>,
    pub wake: Arc<Wake>,
    pub options: StreamOptions,
}

impl Services {
    pub fn new(outputs: Outputs, options: StreamOptions) -> Self {
        Self {
            outputs,
            streams: Arc::new(StreamSet::default()),
            wake: Arc::new(Wake::default()),
            options,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.outputs.metrics
    }

    /// Creates a stream, registers it with every output and adds it to the set (its pipeline
    /// is not started).
    pub fn add_stream(&self, config: StreamConfig) -> Arc<Stream> {
        let sinks = self.outputs.for_stream(&config.id, &config.url);
        let slot = self.streams.next_slot();
        let stream = Arc::new(Stream::new(
            config,
            slot,
            self.options,
            self.wake.clone(),
            sinks,
        ));
        self.streams.add(stream.clone());
        stream
    }

    /// Starts the engine thread over this set of streams.
    pub fn spawn_engine(
        &self,
        backend: Box<dyn StatsBackend>,
        config: EngineConfig,
    ) -> std::io::Result<EngineHandle> {
        engine::spawn(
            backend,
            self.streams.clone(),
            self.wake.clone(),
            self.metrics().clone(),
            config,
        )
    }
}
