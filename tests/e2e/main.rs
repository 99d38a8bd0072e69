//! End-to-end tests: real GStreamer pipelines on real encoded streams, real servers on loopback
//! (nginx-rtmp, HLS origins, SRT, RTSP, Prometheus, Alertmanager), the `streamwatch` binary as
//! users run it, and the statistics backends compared with each other. One test binary, so
//! the helpers in `support` are compiled once.

#[path = "../support/mod.rs"]
mod support;

mod adaptive;
mod alerting;
mod bad_input;
mod batching;
mod bench_smoke;
mod captions;
mod codecs;
mod dashboards;
mod decoder_choice;
mod demo;
mod deploy;
mod evidence_status;
mod faults;
mod gpu_vs_cpu;
mod hls_conformance;
mod hostile;
mod inflight;
mod layout;
mod live_ingest;
mod programs;
mod prometheus;
mod reload;
mod resilience;
mod scte35;
mod security;
mod shaders_validate;
mod shard;
mod shedding;
mod support_selftest;
mod tr101290;
mod udp_input;
mod video_format;
mod webhooks;
