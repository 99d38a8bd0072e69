//! HLS manifest polling: the playlists are fetched and parsed (m3u8-rs over reqwest) beside the
//! media pipeline, which GStreamer's demuxer drives on its own. One task per HLS stream polls
//! every checked variant about twice per target duration, as players do, and hands each
//! poll's verdict to the stream's transport detectors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use m3u8_rs::{MediaPlaylist, Playlist};
use tokio::sync::watch;

use crate::config::{DetectorsConfig, IngestConfig};
use crate::detect::transport::PlaylistVerdict;
use crate::detect::transport::hls::{VariantCheck, VariantStatus};
use crate::stream::Stream;

/// Playlists larger than this are not playlists (an origin sending a video file, garbage).
const MAX_PLAYLIST_BYTES: usize = 4 << 20;
/// Redirects followed before a request counts as a redirect loop.
const MAX_REDIRECTS: usize = 10;
/// A master playlist is fetched again this often, to follow added or removed renditions.
const MASTER_REFRESH: Duration = Duration::from_secs(60);
/// Poll period bounds: half a target duration, within these.
const MIN_POLL: Duration = Duration::from_millis(500);
const MAX_POLL: Duration = Duration::from_secs(5);
/// New segments checked with HEAD per poll (normally one or two are new).
const SEGMENT_CHECKS_PER_POLL: usize = 3;

/// How a request ended: the `code` label and, for failures, what to tell the user.
enum Fetched {
    Ok(Vec<u8>),
    Failed { code: String, reason: String },
}

fn classify(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_redirect() {
        "redirect"
    } else if e.is_connect() {
        "connect"
    } else {
        "error"
    }
}

/// The full error chain in one line: reqwest's own message rarely names the cause.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn get(client: &reqwest::Client, url: &reqwest::Url, head: bool) -> Fetched {
    let request = if head {
        client.head(url.clone())
    } else {
        client.get(url.clone())
    };
    let mut response = match request.send().await {
        Ok(r) => r,
        Err(e) => {
            return Fetched::Failed {
                code: classify(&e).into(),
                reason: format!("{url}: {}", describe(&e)),
            };
        }
    };
    let status = response.status();
    if !status.is_success() {
        return Fetched::Failed {
            code: status.as_str().into(),
            reason: format!("{url}: HTTP {status}"),
        };
    }
    let mut body = Vec::new();
    if head {
        return Fetched::Ok(body);
    }
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_PLAYLIST_BYTES {
                    return Fetched::Failed {
                        code: "invalid".into(),
                        reason: format!("{url}: over {MAX_PLAYLIST_BYTES} bytes, not a playlist"),
                    };
                }
            }
            Ok(None) => return Fetched::Ok(body),
            Err(e) => {
                return Fetched::Failed {
                    code: classify(&e).into(),
                    reason: format!("{url}: {}", describe(&e)),
                };
            }
        }
    }
}

/// A playlist fetched and parsed, or why not.
enum Loaded {
    Master(m3u8_rs::MasterPlaylist),
    Media(MediaPlaylist),
    Failed(String),
    /// The URL answers with something else than a playlist, and does not look like one.
    NotHls,
}

async fn load(
    stream: &Stream,
    client: &reqwest::Client,
    url: &reqwest::Url,
    kind: &'static str,
) -> Loaded {
    match get(client, url, false).await {
        Fetched::Failed { code, reason } => {
            stream.count_http_request(kind, &code);
            Loaded::Failed(reason)
        }
        Fetched::Ok(body) => {
            let looks_like_hls = url.path().ends_with(".m3u8") || url.path().ends_with(".m3u");
            if !body.starts_with(b"#EXTM3U") && !looks_like_hls {
                return Loaded::NotHls;
            }
            match m3u8_rs::parse_playlist_res(&body) {
                Ok(Playlist::MasterPlaylist(m)) => {
                    stream.count_http_request(kind, "200");
                    Loaded::Master(m)
                }
                Ok(Playlist::MediaPlaylist(m)) if m.target_duration > 0 => {
                    stream.count_http_request(kind, "200");
                    Loaded::Media(m)
                }
                Ok(Playlist::MediaPlaylist(_)) => {
                    stream.count_http_request(kind, "invalid");
                    Loaded::Failed(format!(
                        "{url}: media playlist without EXT-X-TARGETDURATION"
                    ))
                }
                Err(_) => {
                    stream.count_http_request(kind, "invalid");
                    let start = String::from_utf8_lossy(&body[..body.len().min(40)])
                        .replace(['\n', '\r'], " ");
                    Loaded::Failed(format!("{url}: not a valid playlist (starts `{start}`)"))
                }
            }
        }
    }
}

/// One checked media playlist.
struct Variant {
    status: VariantStatus,
    url: reqwest::Url,
    check: VariantCheck,
    /// Whether the newest segment checked failed: it stays the verdict on segments until a
    /// newer one is checked, since most polls find no new segment.
    segment_failed: bool,
}

impl Variant {
    fn new(name: String, url: reqwest::Url, config: &DetectorsConfig) -> Self {
        Self {
            status: VariantStatus {
                variant: name,
                uri: url.to_string(),
                ..Default::default()
            },
            url,
            check: VariantCheck::new(config),
            segment_failed: false,
        }
    }

    /// Copies what the API shows from the playlist just observed.
    fn update_status(&mut self, age: f64) {
        if let Some(p) = self.check.last() {
            let s = &mut self.status;
            s.target_duration = p.target_duration as f64;
            s.media_sequence = p.media_sequence;
            s.discontinuity_sequence = p.discontinuity_sequence;
            s.segments = p.segments.len();
            s.ended = p.end_list;
            s.age_seconds = age;
        }
    }
}

/// Polls one variant: its playlist, then its new segments (HEAD).
async fn poll(
    stream: &Stream,
    client: &reqwest::Client,
    variant: &mut Variant,
    started: Instant,
    preloaded: Option<MediaPlaylist>,
) {
    let now = started.elapsed().as_secs_f64();
    let playlist = match preloaded {
        Some(p) => Ok(p),
        None => load_media(stream, client, &variant.url).await,
    };
    let mut verdict = PlaylistVerdict::default();
    match playlist {
        Err(reason) => {
            verdict.http_failed = true;
            variant.status.age_seconds = variant.check.age(now);
            note_error(stream, variant, reason);
        }
        Ok(playlist) => {
            verdict.target_duration = playlist.target_duration as f64;
            verdict.ended = playlist.end_list;
            let findings = variant.check.observe(now, playlist);
            verdict.age = Some(findings.age);
            if let Some(e) = &findings.sequence_error {
                note_error(stream, variant, e.clone());
            }
            if let Some((e, _)) = &findings.duration_error {
                note_error(stream, variant, e.clone());
            }
            verdict.sequence_error = findings.sequence_error;
            verdict.duration_error = findings.duration_error;
            if stream.config.detectors.http_errors.check_segments && !verdict.ended {
                check_segments(stream, client, variant, &findings.new_segments).await;
                verdict.http_failed |= variant.segment_failed;
            }
            variant.update_status(findings.age);
        }
    }
    stream.observe_playlist(&variant.status.variant, &verdict);
}

/// A variant's media playlist, or why it could not be had.
async fn load_media(
    stream: &Stream,
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<MediaPlaylist, String> {
    match load(stream, client, url, "playlist").await {
        Loaded::Media(p) => Ok(p),
        Loaded::Master(_) => Err(format!(
            "{url}: a master playlist where a media playlist was expected"
        )),
        Loaded::Failed(reason) => Err(reason),
        Loaded::NotHls => Err(format!("{url}: not a playlist")),
    }
}

/// HEADs the newest of `new_segments` (at most [`SEGMENT_CHECKS_PER_POLL`]).
async fn check_segments(
    stream: &Stream,
    client: &reqwest::Client,
    variant: &mut Variant,
    new_segments: &[String],
) {
    let skip = new_segments.len().saturating_sub(SEGMENT_CHECKS_PER_POLL);
    for uri in &new_segments[skip..] {
        let Ok(url) = variant.url.join(uri) else {
            continue;
        };
        match get(client, &url, true).await {
            Fetched::Ok(_) => {
                stream.count_http_request("segment", "200");
                variant.segment_failed = false;
            }
            Fetched::Failed { code, reason } => {
                stream.count_http_request("segment", &code);
                variant.segment_failed = true;
                note_error(stream, variant, reason);
            }
        }
    }
}

fn note_error(stream: &Stream, variant: &mut Variant, reason: String) {
    // Once per distinct problem: an outage fails every poll.
    if variant.status.last_error.as_ref() != Some(&reason) {
        tracing::warn!(stream = %stream.id, variant = %variant.status.variant, problem = %reason, "HLS check");
    }
    stream.note_transport_problem(&reason);
    variant.status.last_error = Some(reason);
}

/// True for URLs whose playlists streamwatch checks itself.
pub fn applies_to(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Checks the stream's playlists until `shutdown` (the stream is removed or the process
/// stops). Ends early when the URL turns out not to be HLS (progressive HTTP).
pub async fn monitor(
    stream: Arc<Stream>,
    ingest: IngestConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(url) = reqwest::Url::parse(&stream.url) else {
        return;
    };
    let Some(client) = http_client(&stream, &ingest) else {
        return;
    };
    let started = Instant::now();
    let detectors = stream.config.detectors.clone();
    let mut playlists = Playlists::new(url, ingest.hls_max_variants, detectors);
    loop {
        let mut preloaded = None;
        if playlists.refresh_due() {
            match playlists.refresh(&stream, &client).await {
                Refreshed::NotHls => {
                    tracing::info!(stream = %stream.id, "not an HLS playlist: manifest checks off");
                    return;
                }
                Refreshed::Retry => {
                    if wait(&mut shutdown, Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
                Refreshed::Poll(media) => preloaded = media,
            }
        }
        poll_round(
            &stream,
            &client,
            &mut playlists.variants,
            started,
            preloaded,
        )
        .await;
        if wait(&mut shutdown, poll_period(&playlists.variants)).await {
            break;
        }
    }
}

/// `None`, logged, when reqwest cannot build it (no TLS backend, no resolver configuration).
fn http_client(stream: &Stream, ingest: &IngestConfig) -> Option<reqwest::Client> {
    match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(ingest.http_timeout))
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("streamwatch/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(stream = %stream.id, error = %e, "cannot create the HTTP client; HLS checks are off");
            None
        }
    }
}

/// The stream's own playlist and the variants checked, kept across rounds.
struct Playlists {
    url: reqwest::Url,
    variants: Vec<Variant>,
    /// The URL gave a master playlist: its variants are checked, and it is fetched again every
    /// [`MASTER_REFRESH`].
    is_master: bool,
    master_loaded: Option<Instant>,
    /// The last failure to load the URL, so an outage is warned about once.
    last_failure: Option<String>,
    max_variants: usize,
    detectors: DetectorsConfig,
}

/// What loading the stream's own URL leaves to do.
enum Refreshed {
    /// Not HLS: the manifest checks end.
    NotHls,
    /// It failed and there is nothing to poll yet: try again shortly.
    Retry,
    /// Poll the variants; a media playlist just loaded is used, not fetched again.
    Poll(Option<MediaPlaylist>),
}

impl Playlists {
    fn new(url: reqwest::Url, max_variants: usize, detectors: DetectorsConfig) -> Self {
        Self {
            url,
            variants: Vec::new(),
            is_master: false,
            master_loaded: None,
            last_failure: None,
            max_variants,
            detectors,
        }
    }

    /// Until it has loaded, and then when the master playlist is due again.
    fn refresh_due(&self) -> bool {
        self.variants.is_empty()
            || (self.is_master
                && self
                    .master_loaded
                    .is_none_or(|t| t.elapsed() >= MASTER_REFRESH))
    }

    /// Loads the stream's own URL: a master playlist sets the variants, a media playlist is
    /// the one variant.
    async fn refresh(&mut self, stream: &Stream, client: &reqwest::Client) -> Refreshed {
        let kind = if self.is_master { "master" } else { "playlist" };
        match load(stream, client, &self.url, kind).await {
            Loaded::NotHls => Refreshed::NotHls,
            Loaded::Failed(reason) => {
                self.note_failure(stream, reason);
                if self.variants.is_empty() {
                    Refreshed::Retry
                } else {
                    Refreshed::Poll(None)
                }
            }
            Loaded::Master(master) => {
                self.last_failure = None;
                self.follow_master(stream, &master);
                Refreshed::Poll(None)
            }
            Loaded::Media(media) => {
                self.last_failure = None;
                if self.variants.is_empty() {
                    let main = Variant::new("main".into(), self.url.clone(), &self.detectors);
                    self.variants.push(main);
                }
                Refreshed::Poll(Some(media))
            }
        }
    }

    fn note_failure(&mut self, stream: &Stream, reason: String) {
        // Not yet known to be a master: the failure belongs to the one playlist.
        let name = if self.is_master { "master" } else { "main" };
        if self.last_failure.as_ref() != Some(&reason) {
            tracing::warn!(stream = %stream.id, problem = %reason, "HLS check");
        }
        stream.note_transport_problem(&reason);
        self.last_failure = Some(reason.clone());
        stream.observe_playlist(
            name,
            &PlaylistVerdict {
                http_failed: true,
                ..Default::default()
            },
        );
        stream.set_hls_error(name, reason);
    }

    /// Checks the variants `master` lists now (renditions come and go): new ones are added,
    /// the ones it dropped forgotten, and the others keep their history.
    fn follow_master(&mut self, stream: &Stream, master: &m3u8_rs::MasterPlaylist) {
        if !self.is_master {
            stream.forget_variant("main");
        }
        self.is_master = true;
        self.master_loaded = Some(Instant::now());
        stream.observe_playlist("master", &PlaylistVerdict::default());
        let wanted: Vec<(String, reqwest::Url, &m3u8_rs::VariantStream)> = master
            .variants
            .iter()
            .filter(|v| !v.is_i_frame)
            .take(self.max_variants)
            .enumerate()
            .filter_map(|(i, v)| Some((format!("v{i}"), self.url.join(&v.uri).ok()?, v)))
            .collect();
        self.variants.retain(|v| {
            let keep = wanted
                .iter()
                .any(|(n, u, _)| *n == v.status.variant && *u == v.url);
            if !keep {
                stream.forget_variant(&v.status.variant);
            }
            keep
        });
        for (name, u, v) in wanted {
            if !self.variants.iter().any(|x| x.status.variant == name) {
                let mut variant = Variant::new(name, u, &self.detectors);
                variant.status.bandwidth = Some(v.bandwidth);
                variant.status.resolution = v.resolution.map(|r| r.to_string());
                self.variants.push(variant);
            }
        }
        self.variants
            .sort_by(|a, b| a.status.variant.cmp(&b.status.variant));
    }
}

/// Polls every variant at once, then publishes their status.
async fn poll_round(
    stream: &Stream,
    client: &reqwest::Client,
    variants: &mut [Variant],
    started: Instant,
    mut preloaded: Option<MediaPlaylist>,
) {
    futures_util::future::join_all(variants.iter_mut().map(|v| {
        let p = preloaded.take();
        poll(stream, client, v, started, p)
    }))
    .await;
    stream.set_hls_status(variants.iter().map(|v| v.status.clone()).collect());
}

/// Half the shortest target duration, as players poll (1 s before any is known).
fn poll_period(variants: &[Variant]) -> Duration {
    let target = variants
        .iter()
        .map(|v| v.status.target_duration)
        .filter(|t| *t > 0.0)
        .fold(f64::INFINITY, f64::min);
    if target.is_finite() {
        Duration::from_secs_f64(target / 2.0).clamp(MIN_POLL, MAX_POLL)
    } else {
        Duration::from_secs(1)
    }
}

/// Sleeps for `period`; true when shutdown came first.
async fn wait(shutdown: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}
