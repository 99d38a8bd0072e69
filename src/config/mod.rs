//! Configuration: TOML with documented defaults; unknown keys and invalid values are errors
//! naming the key.
//!
//! Per-stream detector settings override the global `[detectors]` table key by key: the two
//! TOML tables are merged before they are turned into typed settings, so a stream that only
//! sets `black.min_duration` keeps every other global value.
//!
//! Each settings struct sits with its defaults and its `validate` (`pipeline`, `sinks`, one
//! `detectors` file per family), so a new setting is added, defaulted and checked in one
//! place; all of them are re-exported here, so callers only ever name `config::...`. This
//! module imports nothing of the crate but the leaf modules `error` and `media`, so every other
//! module can depend on it.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::{ConfigError, SourceUrlError};

mod channels;
mod check;
mod detectors;
mod pipeline;
mod server;
mod sinks;
mod source_url;

pub use channels::*;
pub use detectors::*;
pub use pipeline::*;
pub use server::*;
pub use sinks::*;
pub use source_url::*;

use check::invalid;

/// The `decoder` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderChoice {
    /// NVDEC where GStreamer has it for the stream's codec, the libav decoders otherwise.
    #[default]
    Auto,
    /// The libav (FFmpeg) software decoders only.
    Software,
    /// NVDEC only; a stream fails to start, with an error naming it, where it is absent.
    Nvdec,
}

impl DecoderChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Software => "software",
            Self::Nvdec => "nvdec",
        }
    }
}

/// How much of a stream's video is decoded and analysed (`analysis`, per stream or in
/// `[ingest]`). Ordered from least to most work: under overload a stream is moved down one
/// tier at a time, and back up when there is room.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisTier {
    /// Keyframes only: non-key frames are dropped before the decoder (about a tenth of the
    /// decode with a 2 s GOP); defects are timed to the keyframe, and stutter is not judged.
    Keyframes,
    /// Reference frames only: pictures no other picture predicts from (most B-frames) are
    /// dropped before the decoder; stutter is not judged.
    Reference,
    /// Every frame.
    #[default]
    Full,
}

impl AnalysisTier {
    pub const ALL: [Self; 3] = [Self::Keyframes, Self::Reference, Self::Full];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keyframes => "keyframes",
            Self::Reference => "reference",
            Self::Full => "full",
        }
    }

    /// The tier's number in `streamwatch_stream_analysis_tier`: 0 keyframes, 1 reference,
    /// 2 full.
    pub fn level(self) -> u8 {
        self as u8
    }

    pub fn from_level(level: u8) -> Self {
        match level {
            0 => Self::Keyframes,
            1 => Self::Reference,
            _ => Self::Full,
        }
    }

    /// The next tier with less work, if any.
    pub fn lighter(self) -> Option<Self> {
        self.level().checked_sub(1).map(Self::from_level)
    }

    /// The next tier with more work, up to `ceiling` (the configured tier).
    pub fn richer(self, ceiling: Self) -> Option<Self> {
        (self < ceiling).then(|| Self::from_level(self.level() + 1))
    }
}

/// Which backend computes the statistics (`--backend`, config `backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A GPU when one exists; otherwise (no adapter, or only a software rasteriser such as
    /// lavapipe) the CPU backend.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9723";

/// The whole configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the HTTP server (metrics, health, API).
    pub listen: SocketAddr,
    /// Statistics backend.
    pub backend: BackendChoice,
    pub ingest: IngestConfig,
    pub engine: EngineConfig,
    /// Global detector settings (before per-stream overrides).
    pub detectors: DetectorsConfig,
    pub streams: Vec<StreamConfig>,
    /// Endpoints that receive every defect start and end as JSON.
    pub webhooks: Vec<WebhookConfig>,
    pub evidence: EvidenceConfig,
    /// Authentication, the metrics listener and HTTP limits (`[server]`).
    pub server: ServerConfig,
}

/// One monitored stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamConfig {
    /// Short identifier used as the `stream` label: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Source URL (file://, http(s):// HLS, rtmp://, srt://, rtsp://, udp://, rtp://, an
    /// .sdp file, demo://). It may carry credentials: show it only through [`redact_url`].
    pub url: String,
    /// Effective detector settings: the global ones with this stream's overrides applied.
    pub detectors: DetectorsConfig,
    /// Video decoder: the stream's own `decoder`, else `ingest.decoder`.
    pub decoder: DecoderChoice,
    /// The most analysis the stream gets: its own `analysis`, else `ingest.analysis`.
    pub analysis: AnalysisTier,
    /// Under overload, streams of the lowest priority shed analysis first.
    pub priority: i32,
    /// The MPEG-TS program (service id) to monitor; None: the first program with video.
    pub program: Option<u16>,
    /// Which rendition of an HLS master playlist is analysed (the others are only checked).
    pub rendition: Rendition,
    /// With `rendition = "highest"`, the best rendition at most this tall.
    pub max_height: Option<u32>,
    /// The audio channels the silence and channel detectors judge.
    pub channels: ChannelSelection,
    /// The last segment of the URL's path is a secret (an RTMP stream key): shown as `***`.
    pub secret_path: bool,
}

/// The `rendition` setting: the analysed rendition of an adaptive stream stays pinned, so
/// the picture analysed never changes resolution behind the operator's back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
pub enum Rendition {
    /// The highest bandwidth (under `max_height` when set).
    #[default]
    Highest,
    Lowest,
    /// The N-th rendition in playlist order, from 0.
    Index(usize),
}

impl TryFrom<toml::Value> for Rendition {
    type Error = String;

    fn try_from(value: toml::Value) -> Result<Self, String> {
        match &value {
            toml::Value::String(s) if s == "highest" => Ok(Self::Highest),
            toml::Value::String(s) if s == "lowest" => Ok(Self::Lowest),
            toml::Value::Integer(n) if *n >= 0 => Ok(Self::Index(*n as usize)),
            _ => Err(format!(
                "`{value}` is not a rendition: use \"highest\", \"lowest\" or a playlist index from 0"
            )),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    #[serde(default)]
    backend: BackendChoice,
    #[serde(default)]
    ingest: IngestConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    detectors: toml::Table,
    #[serde(default)]
    streams: Vec<RawStream>,
    #[serde(default)]
    webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    evidence: EvidenceConfig,
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    redact_query_params: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    id: String,
    url: String,
    #[serde(default)]
    detectors: toml::Table,
    decoder: Option<DecoderChoice>,
    analysis: Option<AnalysisTier>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    rendition: Rendition,
    max_height: Option<u32>,
    /// MPEG-TS program number (1-65535).
    program: Option<u16>,
    /// Audio channels judged by silence and channel (positions or indices); default: the main
    /// channels.
    channels: Option<Vec<ChannelName>>,
    /// Audio channels never judged.
    #[serde(default)]
    ignore_channels: Vec<ChannelName>,
    #[serde(default)]
    secret_path: bool,
    /// The stream must carry closed captions (`detectors.captions.expect`).
    expect_captions: Option<bool>,
}

/// URL schemes a stream may use.
pub const SUPPORTED_SCHEMES: &[&str] = &[
    "file", "http", "https", "rtmp", "rtmps", "srt", "rtsp", "rtsps", "rtspt", "udp", "rtp", "demo",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("default listen address is valid"),
            backend: BackendChoice::Auto,
            ingest: IngestConfig::default(),
            engine: EngineConfig::default(),
            detectors: DetectorsConfig::default(),
            streams: Vec::new(),
            webhooks: Vec::new(),
            evidence: EvidenceConfig::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a configuration; `origin` names it in errors (usually the path).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let mut server = raw.server;
        let listen = resolve_listen(raw.listen, server.listen.take())?;
        server.load_tokens("server")?;
        validate_param_names(&raw.redact_query_params)?;
        // Before anything can show a URL, even in an error about a later key.
        add_secret_query_params(&raw.redact_query_params);
        for s in raw.streams.iter().filter(|s| s.secret_path) {
            mark_secret_path(&s.url);
        }
        let detectors = typed_detectors(raw.detectors.clone(), "detectors")?;
        let mut streams = Vec::with_capacity(raw.streams.len());
        for (i, s) in raw.streams.into_iter().enumerate() {
            let mut merged = raw.detectors.clone();
            merge_tables(&mut merged, s.detectors);
            let mut detectors = typed_detectors(merged, &format!("streams[{i}].detectors"))?;
            if let Some(expect) = s.expect_captions {
                detectors.captions.expect = expect;
            }
            streams.push(StreamConfig {
                id: s.id,
                url: s.url,
                detectors,
                decoder: s.decoder.unwrap_or(raw.ingest.decoder),
                analysis: s.analysis.unwrap_or(raw.ingest.analysis),
                priority: s.priority,
                rendition: s.rendition,
                max_height: s.max_height,
                program: s.program,
                channels: ChannelSelection {
                    channels: s.channels,
                    ignore: s.ignore_channels,
                },
                secret_path: s.secret_path,
            });
        }
        let mut webhooks = raw.webhooks;
        for (i, w) in webhooks.iter_mut().enumerate() {
            if w.name.is_empty() {
                w.name = format!("webhook{i}");
            }
        }
        let config = Config {
            listen,
            backend: raw.backend,
            ingest: raw.ingest,
            engine: raw.engine,
            detectors,
            streams,
            webhooks,
            evidence: raw.evidence,
            server,
        };
        config.validate()?;
        Ok(config)
    }

    /// A stream of `url` with the global detector, decoder and analysis settings (command-line
    /// URLs, `scan`, `bench`).
    pub fn stream_with_defaults(&self, id: String, url: String) -> StreamConfig {
        StreamConfig {
            id,
            url,
            detectors: self.detectors.clone(),
            decoder: self.ingest.decoder,
            analysis: self.ingest.analysis,
            ..Default::default()
        }
    }

    /// Checks values serde cannot: ranges, uniqueness, URL schemes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ingest.validate("ingest")?;
        self.engine.validate("engine")?;
        self.detectors.validate("detectors")?;
        for (i, w) in self.webhooks.iter().enumerate() {
            w.validate(&format!("webhooks[{i}]"))?;
        }
        self.evidence.validate("evidence")?;
        self.server.validate("server", self.listen)?;
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.streams.iter().enumerate() {
            let key = |k: &str| format!("streams[{i}].{k}");
            validate_stream_id(&s.id).map_err(|m| invalid(&key("id"), &m))?;
            if !seen.insert(s.id.as_str()) {
                return Err(invalid(
                    &key("id"),
                    &format!("duplicate stream id `{}`", s.id),
                ));
            }
            validate_url(&s.url).map_err(|source| ConfigError::StreamUrl {
                key: key("url"),
                stream: s.id.clone(),
                source: Box::new(source),
            })?;
            validate_program(s.program).map_err(|m| invalid(&key("program"), &m))?;
            if let Some(problem) = s.channels.problem() {
                return Err(invalid(&key("channels"), &problem));
            }
            s.detectors.validate(&key("detectors"))?;
            if let Some(h) = s.max_height {
                check::count(&key("max_height"), h, 1, 16_384)?;
            }
        }
        Ok(())
    }
}

/// The main listener: the top-level `listen` or `server.listen` (not both), else the default.
fn resolve_listen(
    top: Option<String>,
    server: Option<SocketAddr>,
) -> Result<SocketAddr, ConfigError> {
    match (top, server) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            key: "server.listen".into(),
            message: "the top-level `listen` is set too: give the address once".into(),
        }),
        (None, Some(addr)) => Ok(addr),
        (None, None) => Ok(DEFAULT_LISTEN
            .parse()
            .expect("default listen address is valid")),
        (Some(s), None) => s.parse().map_err(|e| ConfigError::Invalid {
            key: "listen".into(),
            message: format!("`{s}` is not an address like 127.0.0.1:9723 ({e})"),
        }),
    }
}

/// Types a (merged) detectors table; errors name the full key, e.g. `detectors.black.x`.
fn typed_detectors(table: toml::Table, key: &str) -> Result<DetectorsConfig, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(
        |e: serde_path_to_error::Error<toml::de::Error>| {
            let path = e.path().to_string();
            ConfigError::Invalid {
                key: if path == "." {
                    key.to_owned()
                } else {
                    format!("{key}.{path}")
                },
                message: one_line(e.inner().message()),
            }
        },
    )
}

/// `redact_query_params`: query parameter names, as they appear before `=`.
fn validate_param_names(names: &[String]) -> Result<(), ConfigError> {
    if names.len() > 256 {
        return Err(invalid("redact_query_params", "at most 256 names"));
    }
    for (i, name) in names.iter().enumerate() {
        let plain = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c));
        if name.is_empty() || name.len() > 128 || !plain {
            return Err(invalid(
                &format!("redact_query_params[{i}]"),
                &format!("`{name}` is not a query parameter name (1-128 letters, digits, `-_.~`)"),
            ));
        }
    }
    Ok(())
}

/// Recursively overlays `overrides` on `base`.
fn merge_tables(base: &mut toml::Table, overrides: toml::Table) {
    for (k, v) in overrides {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Stream ids become Prometheus label values and URL path segments, so keep them plain.
pub fn validate_stream_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("`{id}` must be 1 to 64 characters long"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{id}` contains `{c}`; use letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

/// Program 0 of a PAT points at the network information table, not at a program.
pub fn validate_program(program: Option<u16>) -> Result<(), String> {
    match program {
        Some(0) => Err(
            "0 is the network information table, not a program; use a program number (1-65535) \
             as the PAT lists it, or leave `program` out for the first program with video"
                .to_owned(),
        ),
        _ => Ok(()),
    }
}

/// Accepts URLs with a supported scheme and a non-empty rest; `udp://` and `rtp://` URLs must
/// also have a valid address and options.
pub fn validate_url(url: &str) -> Result<(), SourceUrlError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(SourceUrlError::NotAUrl {
            url: redact_url(url),
        });
    };
    let scheme = scheme.to_ascii_lowercase();
    if !SUPPORTED_SCHEMES.contains(&scheme.as_str()) {
        return Err(SourceUrlError::Unsupported {
            url: redact_url(url),
            scheme,
            supported: SUPPORTED_SCHEMES.join(", "),
        });
    }
    if rest.is_empty() && scheme != "demo" {
        return Err(SourceUrlError::Malformed {
            url: redact_url(url),
            message: format!("nothing after `{scheme}://`"),
        });
    }
    match UdpUrl::parse(url) {
        Some(parsed) => parsed.map(drop),
        None => Ok(()),
    }
}

/// Turns a command-line source (a URL or a plain file path) into a URL.
pub fn source_to_url(source: &str) -> Result<String, String> {
    if source.contains("://") {
        validate_url(source).map_err(|e| e.to_string())?;
        return Ok(source.to_owned());
    }
    let path = Path::new(source);
    let abs = std::fs::canonicalize(path)
        .map_err(|e| format!("file `{source}` cannot be opened: {e}"))?;
    if !abs.is_file() {
        return Err(format!("`{source}` is not a regular file"));
    }
    Ok(format!("file://{}", abs.display()))
}

/// Derives a stream id from a URL for streams given on the command line: the last word of
/// its path (or its port), never a credential or an option.
pub fn id_from_url(url: &str, index: usize) -> String {
    let redacted = redact_url(url);
    let without_query = redacted.split(['?', '#']).next().unwrap_or("");
    let tail = without_query
        .trim_end_matches('/')
        .rsplit(['/', ':', '?', '='])
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let stem = tail.split('.').next().unwrap_or("");
    let cleaned: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(48)
        .collect();
    if cleaned.is_empty() {
        format!("stream{index}")
    } else {
        format!("{cleaned}-{index}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_documented_defaults() {
        let c = Config::parse("", "test").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.detectors, DetectorsConfig::default());
        assert_eq!(c.detectors.black.min_duration, 2.0);
        assert_eq!(c.ingest.stall_timeout, 5.0);
        assert_eq!(c.engine.batches_in_flight, DEFAULT_BATCHES_IN_FLIGHT);
    }

    #[test]
    fn stream_overrides_merge_key_by_key() {
        let c = Config::parse(
            r#"
            [detectors.black]
            luma_threshold = 40
            [[streams]]
            id = "a"
            url = "rtmp://127.0.0.1/live/a"
            [streams.detectors.black]
            min_duration = 5
            [[streams]]
            id = "b"
            url = "srt://127.0.0.1:9000?mode=caller"
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(c.streams[0].detectors.black.min_duration, 5.0);
        assert_eq!(c.streams[0].detectors.black.luma_threshold, 40);
        assert_eq!(c.streams[1].detectors.black.min_duration, 2.0);
        assert_eq!(c.streams[1].detectors.black.luma_threshold, 40);
    }

    fn err(text: &str) -> String {
        Config::parse(text, "test").unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(err("listne = \"x\"").contains("listne"));
        assert!(err("[detectors.black]\nthreshold = 3").contains("threshold"));
        let e = err(
            "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[streams.detectors.freeze]\nnoise = 1",
        );
        assert!(
            e.contains("streams[0].detectors") && e.contains("noise"),
            "{e}"
        );
    }

    #[test]
    fn invalid_values_are_named() {
        assert!(
            err("[detectors.black]\nmin_dark_ratio = 1.5")
                .contains("detectors.black.min_dark_ratio")
        );
        assert!(
            err("[detectors.freeze]\nmin_duration = -1").contains("detectors.freeze.min_duration")
        );
        assert!(err("[detectors.black]\nluma_threshold = 300").contains("luma_threshold"));
        assert!(err("listen = \"nowhere\"").contains("listen"));
        assert!(err("[ingest]\nqueue_frames = 0").contains("ingest.queue_frames"));
        assert!(
            err("[engine]\nbatches_in_flight = 0").contains("engine.batches_in_flight"),
            "at least one batch must be able to go out"
        );
        assert!(err("backend = \"tpu\"").contains("tpu"));
    }

    #[test]
    fn durations_have_floors_and_ceilings() {
        let e = err("[ingest]\nrestart_backoff_initial = 1e-9");
        assert!(
            e.contains("ingest.restart_backoff_initial") && e.contains("at least 0.1 s"),
            "{e}"
        );
        for (text, key) in [
            (
                "[ingest]\nrestart_backoff_max = 1e300",
                "ingest.restart_backoff_max",
            ),
            ("[ingest]\nstall_timeout = 0.01", "ingest.stall_timeout"),
            ("[ingest]\nstall_timeout = nan", "ingest.stall_timeout"),
            ("[ingest]\nhttp_timeout = inf", "ingest.http_timeout"),
            ("[ingest]\nhttp_timeout = -1", "ingest.http_timeout"),
            (
                "[evidence]\nthumbnail_interval = 1e-6",
                "evidence.thumbnail_interval",
            ),
            (
                "[evidence]\nmax_bytes = 9223372036854775807",
                "evidence.max_bytes",
            ),
            ("[detectors.stall]\nafter = 1e-12", "detectors.stall.after"),
            (
                "[detectors.bitrate]\nwindow = 1e20",
                "detectors.bitrate.window",
            ),
            (
                "[detectors.black]\nmin_duration = inf",
                "detectors.black.min_duration",
            ),
            (
                "[[webhooks]]\nurl = \"http://h/x\"\ntimeout = 1e-9",
                "webhooks[0].timeout",
            ),
            ("[engine]\nbatch_timeout_ms = 0", "engine.batch_timeout_ms"),
        ] {
            let e = err(text);
            assert!(e.contains(key), "{text}: {e}");
        }
        let stream = "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n";
        assert!(err(&format!("{stream}max_height = 100000")).contains("streams[0].max_height"));
        Config::parse("[ingest]\nrestart_backoff_initial = 0.1", "test").unwrap();
    }

    #[test]
    fn streams_are_checked() {
        let dup = "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[[streams]]\nid = \"a\"\nurl = \"rtmp://h/b\"";
        assert!(err(dup).contains("duplicate stream id `a`"));
        assert!(err("[[streams]]\nid = \"a b\"\nurl = \"rtmp://h/a\"").contains("streams[0].id"));
        assert!(err("[[streams]]\nid = \"a\"\nurl = \"gopher://h/a\"").contains("gopher"));
        assert!(err("redact_query_params = [\"a b\"]").contains("redact_query_params[0]"));
        assert!(err("[[streams]]\nid = \"a\"\nurl = \"not a url\"").contains("streams[0].url"));
        let bad_option = err("[[streams]]\nid = \"cam\"\nurl = \"udp://239.1.1.1:5000?bufer=1\"");
        assert!(
            bad_option.contains("streams[0].url")
                && bad_option.contains("stream `cam`")
                && bad_option.contains("option `bufer`"),
            "{bad_option}"
        );
        assert!(err("this is = not toml [").contains("config test"));
    }

    #[test]
    fn audio_detectors_have_defaults_and_per_stream_overrides() {
        let c = Config::parse(
            "[detectors.loudness]\ntarget_lufs = -24\n[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n\
             [streams.detectors.av_sync]\nmax_offset = 0.2\n",
            "test",
        )
        .unwrap();
        let d = &c.streams[0].detectors;
        assert_eq!(d.loudness.target_lufs, -24.0);
        assert_eq!(d.loudness.min_duration, 10.0);
        assert_eq!(d.av_sync.max_offset, 0.2);
        assert_eq!(c.detectors.av_sync.max_offset, 0.1);
        assert!(err("[detectors.clipping]\nlevel = 2").contains("detectors.clipping.level"));
        assert!(err("[detectors.channel]\ncorrelation = 1").contains("correlation"));
    }

    #[test]
    fn webhooks_get_defaults_and_checks() {
        let c = Config::parse("[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n", "test").unwrap();
        assert_eq!(c.webhooks[0].name, "webhook0");
        assert_eq!(c.webhooks[0].max_retries, DEFAULT_WEBHOOK_RETRIES);
        assert!(err("[[webhooks]]\nurl = \"ftp://x/y\"").contains("webhooks[0].url"));
        assert!(
            err("[[webhooks]]\nurl = \"http://h/x\"\ntimeout = 0").contains("webhooks[0].timeout")
        );
        assert!(err("[[webhooks]]\nurl = \"http://h/x\"\nretry = 1").contains("retry"));
    }

    #[test]
    fn ids_from_urls_are_valid_labels() {
        for (i, url) in [
            "rtmp://127.0.0.1:1935/live/news",
            "http://h/hls/ch1.m3u8",
            "srt://127.0.0.1:9000?mode=caller",
            "file:///tmp/clip%20x.mp4",
            "demo://",
        ]
        .iter()
        .enumerate()
        {
            let id = id_from_url(url, i);
            validate_stream_id(&id).unwrap();
        }
        assert_eq!(id_from_url("rtmp://h/live/news", 0), "news-0");
        assert_eq!(id_from_url("udp://@239.1.1.1:5000?buffer=1", 1), "5000-1");
        let secret = id_from_url("srt://:9000?mode=listener&passphrase=hunter2hunter2", 2);
        assert_eq!(secret, "9000-2");
        let userinfo = id_from_url("rtsp://admin:hunter2@cam", 3);
        assert!(!userinfo.contains("hunter2"), "{userinfo}");
    }

    #[test]
    fn expect_captions_is_a_stream_key_and_a_detector_setting() {
        let c = Config::parse(
            "[detectors.captions]\nmin_duration = 5\n[[streams]]\nid = \"a\"\n\
             url = \"udp://:5000\"\nexpect_captions = true\n[[streams]]\nid = \"b\"\n\
             url = \"udp://:5001\"\n",
            "test",
        )
        .unwrap();
        let captions = |i: usize| &c.streams[i].detectors.captions;
        assert!(captions(0).expect && !captions(1).expect);
        assert_eq!(captions(1).min_duration, 5.0);
        let bad = Config::parse("[detectors.captions]\nmin_duration = 0\n", "test");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("captions.min_duration")
        );
    }

    #[test]
    fn configured_secrets_are_redacted_everywhere_redact_url_is_used() {
        let c = Config::parse(
            "redact_query_params = [\"X-Cdn-Token\"]\n[[streams]]\nid = \"a\"\n\
             url = \"rtmp://origin.test/live/sk-live-0042\"\nsecret_path = true\n\
             [[streams]]\nid = \"b\"\nurl = \"https://cdn.test/b.m3u8?x-cdn-token=zz99&q=1\"\n",
            "test",
        )
        .unwrap();
        assert!(c.streams[0].secret_path);
        assert_eq!(redact_url(&c.streams[0].url), "rtmp://origin.test/live/***");
        assert_eq!(
            redact_url(&c.streams[1].url),
            "https://cdn.test/b.m3u8?x-cdn-token=***&q=1"
        );
        // An id generated from a secret path never shows the key.
        let id = id_from_url(&c.streams[0].url, 4);
        assert!(!id.contains("sk-live"), "{id}");
        validate_stream_id(&id).unwrap();
    }

    #[test]
    fn a_stream_names_its_program_and_program_zero_is_refused() {
        let stream = "[[streams]]\nid = \"mux\"\nurl = \"srt://h:9000\"\n";
        let c = Config::parse(&format!("{stream}program = 2\n"), "test").unwrap();
        assert_eq!(c.streams[0].program, Some(2));
        let err = Config::parse(&format!("{stream}program = 0\n"), "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("streams[0].program") && err.contains("1-65535"),
            "{err}"
        );
        let err = Config::parse(&format!("{stream}program = 70000\n"), "test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("program"), "{err}");
    }

    #[test]
    fn a_stream_chooses_its_judged_channels_by_position_or_index() {
        let stream = "[[streams]]\nid = \"surround\"\nurl = \"srt://h:9000\"\n";
        let c = Config::parse(
            &format!(
                "{stream}channels = [\"FL\", \"FR\", 2, \"SL\"]\nignore_channels = [\"lfe\"]\n"
            ),
            "test",
        )
        .unwrap();
        let chosen = &c.streams[0].channels;
        assert_eq!(
            chosen.channels.as_deref().map(<[_]>::len),
            Some(4),
            "{chosen:?}"
        );
        assert_eq!(chosen.ignore, vec![ChannelName::Position("lfe".into())]);
        let err = Config::parse(&format!("{stream}ignore_channels = [\"LEFT\"]\n"), "test")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("streams[0].channels") && err.contains("LEFT"),
            "{err}"
        );
    }
}
