//! Error types. Messages say what failed and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    #[error("config key `{key}` (stream `{stream}`): {source}")]
    StreamUrl {
        key: String,
        stream: String,
        /// Boxed: every config check returns this error, and most never build this variant.
        source: Box<SourceUrlError>,
    },
}

/// A stream URL that cannot be used; the URL is shown redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceUrlError {
    #[error(
        "`{url}` is not a URL (expected scheme://..., e.g. rtmp://host/app/key or file:///path)"
    )]
    NotAUrl { url: String },
    #[error("`{url}`: scheme `{scheme}` is not supported (one of {supported})")]
    Unsupported {
        url: String,
        scheme: String,
        supported: String,
    },
    #[error("`{url}`: {message}")]
    Malformed { url: String, message: String },
    #[error("`{url}`: option `{option}`: {message}")]
    BadOption {
        url: String,
        option: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("stream `{stream}`: unsupported URL `{url}`: {reason}")]
    BadUrl {
        stream: String,
        url: String,
        reason: String,
    },
    /// The socket of a `source=` (source-specific multicast) URL could not be set up.
    #[error("stream `{stream}`: `{url}`: option `{option}`: {reason}")]
    UdpSocket {
        stream: String,
        url: String,
        option: String,
        reason: String,
    },
    #[error("stream `{stream}`: file {path} does not exist or cannot be read")]
    MissingFile { stream: String, path: PathBuf },
    #[error(
        "stream `{stream}`: GStreamer element `{element}` is missing; install the GStreamer plugins (make deps)"
    )]
    MissingElement { stream: String, element: String },
    #[error("stream `{stream}`: cannot build pipeline: {reason}")]
    Pipeline { stream: String, reason: String },
    #[error("stream `{stream}`: {reason}")]
    Failed { stream: String, reason: String },
    #[error(
        "stream `{stream}`: decoder = \"nvdec\" but GStreamer has none of {wanted} (the nvcodec \
         plugin registers them only with an NVIDIA GPU and driver); use decoder = \"auto\" or \"software\""
    )]
    NoHardwareDecoder { stream: String, wanted: String },
}
