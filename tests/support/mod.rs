#![allow(dead_code)]
#![allow(unused_imports)]
//! Shared helpers for streamwatch's integration tests: child-process servers on loopback
//! (nginx RTMP/HLS, SRT, RTSP, a plain HLS origin, Prometheus), generated clips with known
//! injected defects, and small HTTP/ffmpeg utilities.
//!
//! Every server binds 127.0.0.1 only, runs as a child process owned by a [`Proc`] and is
//! stopped by PID when dropped (SIGTERM, up to 3 s grace, then SIGKILL). Each test binary uses
//! a subset, hence `allow(dead_code)`.

pub mod abr;
pub mod alerting;
pub mod audio_clips;
pub mod caption_clips;
pub mod clips;
pub mod codec_clips;
pub mod corpus;
pub mod defect_clips;
pub mod faults;
pub mod grafana;
pub mod hls_vectors;
pub mod http;
pub mod live;
pub mod media;
pub mod proc;
pub mod prom;
pub mod streamwatch;
pub mod ts_faults;
pub mod udp;

pub use alerting::{Alertmanager, Delivery, WebhookReceiver};
pub use clips::{ClipSpec, Container, Content, clip, clip_in, mpegts_clip};
pub use http::{
    StubServer, http_get, http_get_json, http_get_json_with_token, http_get_with_token,
};
pub use live::{HlsOrigin, LiveSpec, Nginx, push_rtmp, rtsp_server, rtsp_server_with, srt_source};
pub use media::{
    Detections, LumaStats, detect_defects, detect_defects_with, luma_stats, read_frames,
    read_luma_means,
};
pub use proc::{Proc, free_port, free_udp_port, temp_dir, wait_until};
pub use prom::{Prometheus, promtool_check_metrics};
pub use streamwatch::{Streamwatch, events_of, metric_sum, run_cli, scan_json};
