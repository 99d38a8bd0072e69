//! HLS playlist polling: one task per HTTP stream fetches and parses (m3u8-rs over reqwest)
//! the playlists, about twice per target duration as players do. Every checked variant's
//! verdict goes to the stream's transport detectors; the analysed rendition's playlists also
//! go to the segment fetcher of the running pipeline, so nothing is fetched twice.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use m3u8_rs::{MediaPlaylist, Playlist};
use tokio::sync::watch;

use super::http::{self, Fetched, shown};
use super::rendition::{self, Choice};
use super::segments::{self, Snapshot};
use super::{Discovery, FeedSender, Publisher};
use crate::config::{DetectorsConfig, IngestConfig, StreamConfig};
use crate::detect::transport::PlaylistVerdict;
use crate::detect::transport::hls::{VariantCheck, VariantStatus};
use crate::detect::transport::hls_ladder::{LadderCheck, VariantView};
use crate::detect::transport::hls_rules::LowLatency;
use crate::detect::transport::manifest_cues::ManifestCues;
use crate::stream::Stream;

/// Playlists larger than this are not playlists (an origin sending a video file, garbage).
pub(super) const MAX_PLAYLIST_BYTES: usize = 4 << 20;
/// A master playlist is fetched again this often, to follow added or removed renditions.
pub(super) const MASTER_REFRESH: Duration = Duration::from_secs(60);
/// Poll period bounds: half a target duration, within these.
pub(super) const MIN_POLL: Duration = Duration::from_millis(500);
pub(super) const MAX_POLL: Duration = Duration::from_secs(5);
/// New segments checked with HEAD per poll (normally one or two are new).
const SEGMENT_CHECKS_PER_POLL: usize = 3;

/// A media playlist parsed, with the LL-HLS tags m3u8-rs leaves out.
struct MediaManifest {
    playlist: MediaPlaylist,
    low_latency: LowLatency,
}

/// A playlist fetched and parsed, or why not.
enum Loaded {
    Master(m3u8_rs::MasterPlaylist),
    Media(MediaManifest),
    Failed(String),
    /// A DASH MPD (its body).
    Dash(Vec<u8>),
    /// The URL answers with something else than a manifest, and does not look like one.
    NotHls,
}

/// What the first bytes of a body say it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Hls,
    Dash,
    Other,
}

/// Enough of a body to tell a manifest from media.
const SNIFF_BYTES: usize = 512;

fn sniff(url: &reqwest::Url, start: &[u8]) -> Sniffed {
    let path = url.path();
    if start.starts_with(b"#EXTM3U") || path.ends_with(".m3u8") || path.ends_with(".m3u") {
        Sniffed::Hls
    } else if path.ends_with(".mpd") || start.windows(4).any(|w| w == b"<MPD") {
        Sniffed::Dash
    } else {
        Sniffed::Other
    }
}

/// A manifest's body, or `Ok(None)` as soon as its first bytes show it is media (progressive
/// HTTP is left to GStreamer, not downloaded here).
async fn fetch_manifest(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<Option<(Sniffed, Vec<u8>)>, http::Failure> {
    let mut download = http::Download::start(client, url, None, None, MAX_PLAYLIST_BYTES).await?;
    let mut body = Vec::new();
    let mut kind = None;
    // A compressed body is only recognisable once decoded.
    let encoded = download.encoding().is_some_and(|e| e != "identity");
    while let Some(chunk) = download.next().await? {
        body.extend_from_slice(&chunk);
        if kind.is_none() && !encoded && body.len() >= SNIFF_BYTES {
            kind = Some(sniff(url, &body));
            if kind == Some(Sniffed::Other) {
                return Ok(None);
            }
        }
    }
    let encoding = download.encoding().map(str::to_owned);
    let body = http::decode(url, encoding.as_deref(), body, MAX_PLAYLIST_BYTES)?;
    match kind.unwrap_or_else(|| sniff(url, &body)) {
        Sniffed::Other => Ok(None),
        k => Ok(Some((k, body))),
    }
}

async fn load(
    stream: &Stream,
    client: &reqwest::Client,
    url: &reqwest::Url,
    kind: &'static str,
) -> Loaded {
    match fetch_manifest(client, url).await {
        Err(f) => {
            stream.count_http_request(kind, &f.code);
            Loaded::Failed(f.reason)
        }
        Ok(None) => Loaded::NotHls,
        Ok(Some((Sniffed::Dash, body))) => {
            stream.count_http_request("mpd", "200");
            Loaded::Dash(body)
        }
        Ok(Some((_, body))) => parse_hls(stream, url, kind, &body),
    }
}

/// A playlist's body parsed. RFC 8216 §4.1: playlists are UTF-8; m3u8-rs would skip the
/// lines that are not and hand back a playlist with segments silently missing.
fn parse_hls(stream: &Stream, url: &reqwest::Url, kind: &'static str, body: &[u8]) -> Loaded {
    if let Err(e) = std::str::from_utf8(body) {
        stream.count_http_request(kind, "invalid");
        return Loaded::Failed(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            shown(url),
            e.valid_up_to()
        ));
    }
    match m3u8_rs::parse_playlist_res(body) {
        Ok(Playlist::MasterPlaylist(m)) => {
            stream.count_http_request(kind, "200");
            Loaded::Master(m)
        }
        Ok(Playlist::MediaPlaylist(mut m)) if m.target_duration > 0 => {
            stream.count_http_request(kind, "200");
            // Valid UTF-8, checked above.
            let text = std::str::from_utf8(body).unwrap_or("");
            mark_unreadable_durations(text, &mut m);
            Loaded::Media(MediaManifest {
                playlist: m,
                low_latency: LowLatency::parse(text),
            })
        }
        Ok(Playlist::MediaPlaylist(_)) => {
            stream.count_http_request(kind, "invalid");
            Loaded::Failed(format!(
                "{}: media playlist without EXT-X-TARGETDURATION",
                shown(url)
            ))
        }
        Err(_) => {
            stream.count_http_request(kind, "invalid");
            let start =
                String::from_utf8_lossy(&body[..body.len().min(40)]).replace(['\n', '\r'], " ");
            Loaded::Failed(format!(
                "{}: not a valid playlist (starts `{start}`)",
                shown(url)
            ))
        }
    }
}

/// Marks NaN the duration of each segment whose EXTINF is not a decimal number of seconds
/// (RFC 8216 §4.3.2.1): m3u8-rs reads `NaN` or `-5` as 0 and `1e30` as 1, which would hide
/// the fault from the segment duration check.
fn mark_unreadable_durations(text: &str, playlist: &mut MediaPlaylist) {
    let (mut index, mut unreadable) = (0, false);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXTINF:") {
            unreadable = !is_decimal(rest.split(',').next().unwrap_or("").trim());
        } else if !line.is_empty() && !line.starts_with('#') {
            if unreadable && let Some(segment) = playlist.segments.get_mut(index) {
                segment.duration = f32::NAN;
            }
            index += 1;
            unreadable = false;
        }
    }
}

fn is_decimal(value: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match value.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(value),
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
    /// Set on the analysed renditions: their playlists go to the segment fetcher, which
    /// fetches every segment (so none is checked with HEAD) and says whether the last failed.
    feed: Option<FeedSender>,
    cues: ManifestCues,
    break_tolerance: f64,
}

impl Variant {
    fn new(name: String, url: reqwest::Url, config: &DetectorsConfig) -> Self {
        Self {
            status: VariantStatus {
                variant: name,
                uri: shown(&url),
                ..Default::default()
            },
            url,
            check: VariantCheck::new(config),
            segment_failed: false,
            feed: None,
            cues: ManifestCues::default(),
            break_tolerance: config.scte35.break_tolerance,
        }
    }

    /// The analysed video rendition's cues stand for the stream's ad breaks; the others' are
    /// only compared with them.
    fn leads_cues(&self) -> bool {
        self.feed.is_some() && !self.status.variant.starts_with('a')
    }

    /// The cues of the segments new in the playlist just observed.
    fn observe_cues(&mut self, new_segments: usize, verdict: &mut PlaylistVerdict) {
        let Some(playlist) = self.check.last() else {
            return;
        };
        let first_new = playlist.segments.len().saturating_sub(new_segments);
        let (cues, breaks) = self.cues.observe(playlist, first_new, self.break_tolerance);
        if self.leads_cues() {
            verdict.cues = cues;
            verdict.breaks = breaks;
        }
    }

    /// Makes this the analysed rendition of `feed` (or no longer analysed, with `None`).
    fn analyse(&mut self, feed: Option<FeedSender>) {
        if feed.is_none()
            && let Some(old) = &self.feed
        {
            old.snapshots.send_replace(None);
        }
        self.status.analysed = feed.is_some();
        self.feed = feed;
    }

    /// Hands a fetched playlist to the segment fetcher when this rendition is analysed.
    fn publish(&self, playlist: &MediaPlaylist) {
        if let Some(feed) = &self.feed {
            let (segments, unresolved) = segments::resolve(&self.url, playlist);
            feed.snapshots.send_replace(Some(Arc::new(Snapshot {
                variant: self.status.variant.clone(),
                url: self.url.clone(),
                segments,
                unresolved,
                ended: playlist.end_list,
            })));
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

/// Polls one variant: its playlist, then its new segments (HEAD). The verdict is reported
/// once the ladder's rules are added to it.
async fn poll(
    stream: &Stream,
    client: &reqwest::Client,
    variant: &mut Variant,
    started: Instant,
    preloaded: Option<MediaManifest>,
) -> PlaylistVerdict {
    let now = started.elapsed().as_secs_f64();
    let manifest = match preloaded {
        Some(p) => Ok(p),
        None => load_media(stream, client, &variant.url).await,
    }
    .map(keep_tail);
    let mut verdict = PlaylistVerdict::default();
    match manifest {
        Err(reason) => {
            verdict.http_failed = true;
            variant.status.age_seconds = variant.check.age(now);
            note_error(stream, variant, reason);
        }
        Ok(MediaManifest {
            playlist,
            low_latency,
        }) => {
            variant.publish(&playlist);
            verdict.target_duration = playlist.target_duration as f64;
            verdict.ended = playlist.end_list;
            let findings = variant.check.observe(now, playlist, &low_latency);
            verdict.age = Some(findings.age);
            for v in &findings.violations {
                note_error(stream, variant, v.detail.clone());
            }
            if let Some((e, _)) = &findings.duration_error {
                note_error(stream, variant, e.clone());
            }
            verdict.violations = findings.violations;
            verdict.duration_error = findings.duration_error;
            variant.observe_cues(findings.new_segments.len(), &mut verdict);
            if let Some(feed) = &variant.feed {
                verdict.http_failed |= feed.segment_failed.load(Ordering::Relaxed);
            } else if stream.config.detectors.http_errors.check_segments && !verdict.ended {
                check_segments(stream, client, variant, &findings.new_segments).await;
                verdict.http_failed |= variant.segment_failed;
            }
            variant.update_status(findings.age);
        }
    }
    verdict
}

/// Segments of a live playlist kept for the checks and the fetcher: the newest are all
/// either needs, and a hostile playlist of 200,000 segments must not cost hundreds of MB.
const MAX_LIVE_SEGMENTS: usize = 2_000;
/// Segments of an ended (VOD) playlist kept: about 11 hours of 2 s segments.
const MAX_ENDED_SEGMENTS: usize = 20_000;

/// The playlist with only its newest segments, as if the window had slid: the media and
/// discontinuity sequences advance past what is dropped, and the key and map in force carry
/// over to the first segment kept (m3u8-rs attaches them to the segment after the tag only).
fn keep_tail(mut manifest: MediaManifest) -> MediaManifest {
    let playlist = &mut manifest.playlist;
    let max = if playlist.end_list {
        MAX_ENDED_SEGMENTS
    } else {
        MAX_LIVE_SEGMENTS
    };
    let Some(drop) = playlist.segments.len().checked_sub(max).filter(|d| *d > 0) else {
        return manifest;
    };
    manifest.low_latency.drop_segments(drop);
    let dropped: Vec<_> = playlist.segments.drain(..drop).collect();
    playlist.media_sequence = playlist.media_sequence.saturating_add(drop as u64);
    let discontinuities = dropped.iter().filter(|s| s.discontinuity).count() as u64;
    playlist.discontinuity_sequence = playlist
        .discontinuity_sequence
        .saturating_add(discontinuities);
    if let Some(first) = playlist.segments.first_mut() {
        first.key = first
            .key
            .take()
            .or_else(|| dropped.iter().rev().find_map(|s| s.key.clone()));
        first.map = first
            .map
            .take()
            .or_else(|| dropped.iter().rev().find_map(|s| s.map.clone()));
    }
    manifest
}

/// A variant's media playlist, or why it could not be had.
async fn load_media(
    stream: &Stream,
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<MediaManifest, String> {
    match load(stream, client, url, "playlist").await {
        Loaded::Media(p) => Ok(p),
        Loaded::Master(_) => Err(format!(
            "{}: a master playlist where a media playlist was expected",
            shown(url)
        )),
        Loaded::Failed(reason) => Err(reason),
        Loaded::NotHls | Loaded::Dash(_) => Err(format!("{}: not an HLS playlist", shown(url))),
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
        match http::get(client, &url, true, 0).await {
            Fetched::Ok(_) => {
                stream.count_http_request("segment", "200");
                variant.segment_failed = false;
            }
            Fetched::Failed(f) => {
                stream.count_http_request("segment", &f.code);
                variant.segment_failed = true;
                note_error(stream, variant, f.reason);
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

/// Polls the stream's playlists until `shutdown` (the stream is removed or the process
/// stops). Ends early when the URL turns out not to be HLS (progressive HTTP).
pub async fn monitor(
    stream: Arc<Stream>,
    ingest: IngestConfig,
    client: reqwest::Client,
    publisher: Publisher,
    mut shutdown: watch::Receiver<bool>,
) {
    let Ok(url) = reqwest::Url::parse(&stream.url) else {
        publisher
            .discovery
            .send_replace(Discovery::Failed("the URL cannot be parsed".into()));
        return;
    };
    let started = Instant::now();
    let mut playlists = Playlists::new(url, &ingest, &stream.config, publisher);
    loop {
        let mut preloaded = None;
        if playlists.refresh_due() {
            match playlists.refresh(&stream, &client).await {
                Refreshed::Dash(body) => {
                    let url = playlists.url.clone();
                    let publisher = playlists.publisher;
                    let dash =
                        super::dash_poll::Poller::new(url, &ingest, &stream.config, publisher);
                    dash.run(&stream, &client, body, shutdown).await;
                    return;
                }
                Refreshed::NotHls => {
                    tracing::info!(stream = %stream.id, "not an HLS playlist: GStreamer reads it as a file");
                    playlists
                        .publisher
                        .discovery
                        .send_replace(Discovery::Progressive);
                    return;
                }
                Refreshed::Retry => {
                    if wait(&mut shutdown, Duration::from_secs(1)).await {
                        break;
                    }
                    continue;
                }
                Refreshed::Poll(media) => preloaded = media.map(|m| *m),
            }
        }
        poll_round(
            &stream,
            &client,
            &mut playlists.variants,
            &mut playlists.ladder,
            started,
            preloaded,
        )
        .await;
        if wait(&mut shutdown, poll_period(&playlists.variants)).await {
            break;
        }
    }
}

/// The stream's own playlist and the variants checked, kept across rounds.
struct Playlists {
    url: reqwest::Url,
    variants: Vec<Variant>,
    ladder: LadderCheck,
    /// The URL gave a master playlist: its variants are checked, and it is fetched again every
    /// [`MASTER_REFRESH`].
    is_master: bool,
    master_loaded: Option<Instant>,
    /// The last failure to load the URL, so an outage is warned about once.
    last_failure: Option<String>,
    max_variants: usize,
    detectors: DetectorsConfig,
    rendition: crate::config::Rendition,
    max_height: Option<u32>,
    publisher: Publisher,
}

/// What loading the stream's own URL leaves to do.
enum Refreshed {
    /// Not HLS: the manifest checks end.
    NotHls,
    /// A DASH MPD: the DASH poller takes over.
    Dash(Vec<u8>),
    /// It failed and there is nothing to poll yet: try again shortly.
    Retry,
    /// Poll the variants; a media playlist just loaded is used, not fetched again.
    Poll(Option<Box<MediaManifest>>),
}

impl Playlists {
    fn new(
        url: reqwest::Url,
        ingest: &IngestConfig,
        stream: &StreamConfig,
        publisher: Publisher,
    ) -> Self {
        Self {
            url,
            variants: Vec::new(),
            ladder: LadderCheck::new(
                stream.detectors.hls_conformance.max_variant_drift,
                stream.detectors.hls_conformance.program_date_time_tolerance,
            ),
            is_master: false,
            master_loaded: None,
            last_failure: None,
            max_variants: ingest.hls_max_variants,
            detectors: stream.detectors.clone(),
            rendition: stream.rendition,
            max_height: stream.max_height,
            publisher,
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
            Loaded::Dash(body) => Refreshed::Dash(body),
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
                    let mut main = Variant::new("main".into(), self.url.clone(), &self.detectors);
                    main.analyse(Some(self.publisher.video.clone()));
                    self.variants.push(main);
                    self.publisher.discovered(Discovery::Adaptive {
                        separate_audio: false,
                    });
                }
                Refreshed::Poll(Some(Box::new(media)))
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
        if self.variants.is_empty() {
            self.publisher.discovered(Discovery::Failed(reason.clone()));
        }
        stream.observe_playlist(
            name,
            &PlaylistVerdict {
                http_failed: true,
                ..Default::default()
            },
        );
        stream.set_hls_error(name, reason);
    }

    /// Checks the renditions `master` lists now (renditions come and go): new ones are
    /// added, the ones it dropped forgotten, and the others keep their history. The analysed
    /// rendition is chosen again, so a master that changes keeps a valid one.
    fn follow_master(&mut self, stream: &Stream, master: &m3u8_rs::MasterPlaylist) {
        if !self.is_master {
            stream.forget_variant("main");
        }
        self.is_master = true;
        self.master_loaded = Some(Instant::now());
        stream.observe_playlist("master", &PlaylistVerdict::default());
        let choice = rendition::choose(master, self.rendition, self.max_height);
        let wanted = self.wanted(master, choice.as_ref().ok());
        self.variants.retain(|v| {
            let keep = wanted
                .iter()
                .any(|w| w.name == v.status.variant && w.url == v.url);
            if !keep {
                stream.forget_variant(&v.status.variant);
            }
            keep
        });
        for w in wanted {
            let variant = match self
                .variants
                .iter_mut()
                .find(|v| v.status.variant == w.name)
            {
                Some(v) => v,
                None => {
                    let mut v = Variant::new(w.name, w.url, &self.detectors);
                    v.status.bandwidth = w.bandwidth;
                    v.status.resolution = w.resolution;
                    self.variants.push(v);
                    self.variants.last_mut().expect("just pushed")
                }
            };
            let feed = match w.analysed {
                Some(Media::Video) => Some(self.publisher.video.clone()),
                Some(Media::Audio) => Some(self.publisher.audio.clone()),
                None => None,
            };
            if feed.is_some() != variant.feed.is_some() {
                variant.analyse(feed);
            }
        }
        self.variants
            .sort_by(|a, b| a.status.variant.cmp(&b.status.variant));
        self.publisher.discovered(match choice {
            Ok(c) => Discovery::Adaptive {
                separate_audio: c.audio.is_some(),
            },
            Err(reason) => {
                stream.note_transport_problem(&reason);
                Discovery::Failed(reason)
            }
        });
    }

    /// The renditions to check: the first `max_variants` variants and audio renditions, and
    /// the analysed ones wherever they are listed.
    fn wanted(&self, master: &m3u8_rs::MasterPlaylist, choice: Option<&Choice>) -> Vec<Wanted> {
        let variants = rendition::playable(master)
            .enumerate()
            .filter_map(|(i, v)| {
                let analysed = choice
                    .is_some_and(|c| c.variant == i)
                    .then_some(Media::Video);
                (i < self.max_variants || analysed.is_some()).then(|| {
                    Some(Wanted {
                        name: format!("v{i}"),
                        url: self.url.join(&v.uri).ok()?,
                        bandwidth: Some(v.bandwidth),
                        resolution: v.resolution.map(|r| r.to_string()),
                        analysed,
                    })
                })?
            });
        let audio = rendition::audio_renditions(master)
            .enumerate()
            .filter_map(|(i, a)| {
                let analysed = choice
                    .and_then(|c| c.audio.as_ref())
                    .is_some_and(|audio| audio.index == i)
                    .then_some(Media::Audio);
                (i < self.max_variants || analysed.is_some()).then(|| {
                    Some(Wanted {
                        name: format!("a{i}"),
                        url: self.url.join(a.uri.as_deref()?).ok()?,
                        bandwidth: None,
                        resolution: None,
                        analysed,
                    })
                })?
            });
        variants.chain(audio).collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Media {
    Video,
    Audio,
}

/// A rendition the master lists, to be checked.
struct Wanted {
    name: String,
    url: reqwest::Url,
    bandwidth: Option<u64>,
    resolution: Option<String>,
    analysed: Option<Media>,
}

/// Polls every variant at once, adds the ladder's rules to their verdicts, then reports
/// them and publishes their status.
async fn poll_round(
    stream: &Stream,
    client: &reqwest::Client,
    variants: &mut [Variant],
    ladder: &mut LadderCheck,
    started: Instant,
    mut preloaded: Option<MediaManifest>,
) {
    let mut verdicts = futures_util::future::join_all(variants.iter_mut().map(|v| {
        let p = preloaded.take();
        poll(stream, client, v, started, p)
    }))
    .await;
    let now = started.elapsed().as_secs_f64();
    let views: Vec<VariantView> = variants
        .iter()
        .zip(&verdicts)
        .filter(|(_, verdict)| !verdict.http_failed || verdict.age.is_some())
        .filter_map(|(v, _)| {
            Some(VariantView {
                name: &v.status.variant,
                playlist: v.check.last()?,
                age: v.check.age(now),
                cues: &v.cues,
            })
        })
        .collect();
    let found = ladder.observe(&views);
    for (name, violation) in found {
        if let Some(i) = variants.iter().position(|v| v.status.variant == name) {
            note_error(stream, &mut variants[i], violation.detail.clone());
            verdicts[i].violations.push(violation);
        }
    }
    for (v, verdict) in variants.iter().zip(&verdicts) {
        stream.observe_playlist(&v.status.variant, verdict);
    }
    stream.set_hls_status(variants.iter().map(|v| v.status.clone()).collect());
}

/// Half the shortest target duration, as players poll (1 s before any is known); the part
/// target on a low-latency playlist, whose parts come that often.
fn poll_period(variants: &[Variant]) -> Duration {
    let target = variants
        .iter()
        .map(|v| {
            v.check
                .part_target()
                .map_or(v.status.target_duration, |t| 2.0 * t)
        })
        .filter(|t| *t > 0.0)
        .fold(f64::INFINITY, f64::min);
    if target.is_finite() {
        Duration::from_secs_f64(target / 2.0).clamp(MIN_POLL, MAX_POLL)
    } else {
        Duration::from_secs(1)
    }
}

/// Sleeps for `period`; true when shutdown came first.
pub(super) async fn wait(shutdown: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::transport::hls_rules::parse_media as parse;

    fn manifest(text: &str) -> MediaManifest {
        MediaManifest {
            playlist: parse(text),
            low_latency: LowLatency::parse(text),
        }
    }

    #[test]
    fn a_huge_live_playlist_keeps_its_newest_segments_and_their_key() {
        let mut text = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:10\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-DISCONTINUITY\n",
        );
        for i in 0..(MAX_LIVE_SEGMENTS + 500) {
            text.push_str(&format!("#EXTINF:1,\ns{i}.ts\n"));
        }
        let kept = keep_tail(manifest(&text)).playlist;
        assert_eq!(kept.segments.len(), MAX_LIVE_SEGMENTS);
        assert_eq!(kept.media_sequence, 510);
        assert_eq!(kept.discontinuity_sequence, 1);
        assert_eq!(kept.segments[0].uri, "s500.ts");
        assert!(
            kept.segments[0].key.is_some(),
            "the key in force carries over"
        );
    }

    #[test]
    fn extinf_values_that_are_not_decimal_durations_are_marked() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:NaN,\na.ts\n#EXTINF:2.0,\nb.ts\n\
                    #EXTINF:-5,\nc.ts\n#EXTINF:1e30,\nd.ts\n#EXTINF:2,\ne.ts\n";
        let mut p = parse(text);
        mark_unreadable_durations(text, &mut p);
        let unreadable: Vec<bool> = p.segments.iter().map(|s| s.duration.is_nan()).collect();
        assert_eq!(unreadable, [true, false, true, true, false]);
    }

    #[test]
    fn short_playlists_are_untouched() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\na.ts\n";
        assert_eq!(keep_tail(manifest(text)).playlist, parse(text));
    }
}
