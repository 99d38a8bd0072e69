//! streamwatch: GPU-accelerated real-time monitor for live video streams.
//!
//! Data flow: [`ingest`] (one GStreamer pipeline per stream) → [`stream`] queues → [`engine`]
//! (batches of all streams through a [`stats::StatsBackend`], [`gpu`] or its CPU port in
//! [`detect::cpu`]) → [`detect`] state machines → metrics, logs and the HTTP API ([`server`]).

pub mod audio;
pub mod bench;
pub mod config;
pub mod detect;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod frame;
pub mod gpu;
pub mod ingest;
pub mod metrics;
pub mod notify;
pub mod perf;
pub mod reload;
pub mod run;
pub mod scan;
pub mod server;
pub mod shard;
pub mod stats;
pub mod stream;
pub mod transport;
