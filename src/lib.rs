//! streamwatch: GPU-accelerated real-time monitor for live video streams.
//!
//! Data flow: [`ingest`] (one GStreamer pipeline per stream) → [`stream`] queues → [`engine`]
//! (batches of all streams through a [`stats::StatsBackend`], on the GPU or its CPU port) →
//! [`detect`] state machines → [`sinks`]: metrics, logs, webhooks, evidence and the HTTP API
//! ([`server`]). [`app`] wires them together for each subcommand.

pub mod app;
pub mod config;
pub mod detect;
pub mod engine;
pub mod error;
pub mod events;
pub mod frame;
pub mod ingest;
pub mod media;
pub mod perf;
pub mod server;
pub mod sinks;
pub mod stats;
pub mod stream;
pub mod sync;
