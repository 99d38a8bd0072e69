//! HLS manifest checks: the playlists are fetched and parsed (m3u8-rs over reqwest) beside the
//! media pipeline, which GStreamer's demuxer drives on its own. One task per HLS stream polls
//! every checked variant about twice per target duration, as players do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use m3u8_rs::{MediaPlaylist, Playlist};
use serde::Serialize;
use tokio::sync::watch;

use crate::config::{DetectorsConfig, IngestConfig};
use crate::stream::Stream;
use crate::transport::PlaylistVerdict;

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

/// What `/api/streams` shows of one checked playlist.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VariantStatus {
    /// `main`, or `v0`, `v1`... in master playlist order (the `variant` label).
    pub variant: String,
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    pub target_duration: f64,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub segments: usize,
    /// Seconds since the playlist last changed.
    pub age_seconds: f64,
    /// Whether the playlist ended (`EXT-X-ENDLIST`): not live.
    pub ended: bool,
    /// The latest problem seen: a failed request, a sequence or duration error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The manifest rules of one media playlist, across polls.
pub struct VariantCheck {
    max_overrun: f64,
    drift_tolerance: f64,
    drift_window: f64,
    last: Option<MediaPlaylist>,
    changed_at: f64,
    /// (wall seconds, media seconds added to the playlist since checking began).
    added: VecDeque<(f64, f64)>,
    added_total: f64,
}

/// One poll's findings on a playlist that was fetched and parsed.
#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub age: f64,
    pub sequence_error: Option<String>,
    pub duration_error: Option<(String, f64)>,
    /// URIs of segments that appeared since the previous poll, oldest first.
    pub new_segments: Vec<String>,
}

impl VariantCheck {
    pub fn new(config: &DetectorsConfig) -> Self {
        let sd = &config.segment_duration;
        Self {
            max_overrun: sd.max_overrun,
            drift_tolerance: sd.drift_tolerance,
            drift_window: sd.drift_window,
            last: None,
            changed_at: 0.0,
            added: VecDeque::new(),
            added_total: 0.0,
        }
    }

    /// Judges the playlist fetched at `now` (seconds on any monotonic clock).
    pub fn observe(&mut self, now: f64, playlist: MediaPlaylist) -> Findings {
        let mut findings = Findings::default();
        let target = playlist.target_duration as f64;
        let first_new = match &self.last {
            None => {
                self.changed_at = now;
                0
            }
            Some(prev) => {
                let (first_new, error) = compare(prev, &playlist);
                findings.sequence_error = error;
                let changed = playlist.media_sequence != prev.media_sequence
                    || playlist.segments.len() != prev.segments.len()
                    || playlist.segments.last().map(|s| &s.uri)
                        != prev.segments.last().map(|s| &s.uri);
                // A pause longer than a normal update interval, or segments that came and
                // went unseen, make the media added no measure of real time: start afresh.
                let skipped = playlist.media_sequence.saturating_sub(prev.media_sequence)
                    > prev.segments.len() as u64;
                if findings.sequence_error.is_some()
                    || skipped
                    || (changed && now - self.changed_at > 2.0 * target.max(1.0))
                {
                    self.added.clear();
                }
                if changed {
                    self.changed_at = now;
                }
                first_new
            }
        };
        let new = &playlist.segments[first_new.min(playlist.segments.len())..];
        for segment in new {
            let duration = f64::from(segment.duration);
            if duration > target + self.max_overrun {
                findings.duration_error = Some((
                    format!(
                        "segment {} lasts {duration:.3} s, over the target duration of {target} s",
                        segment.uri
                    ),
                    duration,
                ));
            }
        }
        findings.new_segments = new.iter().map(|s| s.uri.clone()).collect();
        if self.last.is_some() && !new.is_empty() {
            self.added_total += new.iter().map(|s| f64::from(s.duration)).sum::<f64>();
            self.added.push_back((now, self.added_total));
            if let Some(rate) = self.drift_rate(now)
                && (rate - 1.0).abs() > self.drift_tolerance
                && findings.duration_error.is_none()
            {
                findings.duration_error = Some((
                    format!(
                        "the playlist adds {rate:.2} s of media per second over the last {:.0} s",
                        self.drift_window
                    ),
                    rate,
                ));
            }
        } else if self.last.is_none() {
            self.added.push_back((now, 0.0));
        }
        findings.age = now - self.changed_at;
        self.last = Some(playlist);
        findings
    }

    /// Media seconds added per wall second over the drift window, once it is covered.
    fn drift_rate(&mut self, now: f64) -> Option<f64> {
        while self.added.len() > 2
            && self
                .added
                .get(1)
                .is_some_and(|(t, _)| now - t >= self.drift_window)
        {
            self.added.pop_front();
        }
        let (t0, m0) = *self.added.front()?;
        let (_, m1) = *self.added.back()?;
        (now - t0 >= self.drift_window).then(|| (m1 - m0) / (now - t0))
    }

    /// The latest playlist, for the status.
    pub fn last(&self) -> Option<&MediaPlaylist> {
        self.last.as_ref()
    }

    /// Seconds since the playlist last changed.
    pub fn age(&self, now: f64) -> f64 {
        now - self.changed_at
    }
}

/// Compares a playlist with the previous one: the index of its first segment that the
/// previous one did not have, and the sequence rule it breaks, if any (RFC 8216 §6.2.2:
/// the media sequence never decreases, a numbered segment never changes, and the
/// discontinuity sequence grows by the discontinuities that left the playlist).
fn compare(prev: &MediaPlaylist, next: &MediaPlaylist) -> (usize, Option<String>) {
    if next.media_sequence < prev.media_sequence {
        return (
            0,
            Some(format!(
                "media sequence went back from {} to {}",
                prev.media_sequence, next.media_sequence
            )),
        );
    }
    let shift = (next.media_sequence - prev.media_sequence) as usize;
    let overlap = prev.segments.len().saturating_sub(shift);
    for (i, (old, new)) in prev.segments[shift.min(prev.segments.len())..]
        .iter()
        .zip(&next.segments)
        .enumerate()
    {
        if old.uri != new.uri {
            return (
                overlap,
                Some(format!(
                    "segment {} changed from {} to {}",
                    next.media_sequence + i as u64,
                    old.uri,
                    new.uri
                )),
            );
        }
    }
    if shift <= prev.segments.len() {
        let removed = prev.segments[..shift]
            .iter()
            .filter(|s| s.discontinuity)
            .count() as u64;
        let expected = prev.discontinuity_sequence + removed;
        if next.discontinuity_sequence != expected {
            return (
                overlap,
                Some(format!(
                    "discontinuity sequence is {}, expected {expected} after {removed} discontinuities left the playlist",
                    next.discontinuity_sequence
                )),
            );
        }
    }
    (overlap, None)
}

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
        None => match load(stream, client, &variant.url, "playlist").await {
            Loaded::Media(p) => Ok(p),
            Loaded::Master(_) => Err(format!(
                "{}: a master playlist where a media playlist was expected",
                variant.url
            )),
            Loaded::Failed(reason) => Err(reason),
            Loaded::NotHls => Err(format!("{}: not a playlist", variant.url)),
        },
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
                let skip = findings
                    .new_segments
                    .len()
                    .saturating_sub(SEGMENT_CHECKS_PER_POLL);
                for uri in &findings.new_segments[skip..] {
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
                verdict.http_failed |= variant.segment_failed;
            }
            if let Some(p) = variant.check.last() {
                let s = &mut variant.status;
                s.target_duration = p.target_duration as f64;
                s.media_sequence = p.media_sequence;
                s.discontinuity_sequence = p.discontinuity_sequence;
                s.segments = p.segments.len();
                s.ended = p.end_list;
                s.age_seconds = findings.age;
            }
        }
    }
    stream.observe_playlist(&variant.status.variant, &verdict);
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
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(ingest.http_timeout))
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
        .user_agent(concat!("streamwatch/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(stream = %stream.id, error = %e, "cannot create the HTTP client; HLS checks are off");
            return;
        }
    };
    let config = stream.config.detectors.clone();
    let started = Instant::now();
    let mut variants: Vec<Variant> = Vec::new();
    let mut is_master = false;
    let mut master_loaded: Option<Instant> = None;
    let mut last_failure: Option<String> = None;
    loop {
        let mut preloaded = None;
        if variants.is_empty()
            || (is_master && master_loaded.is_none_or(|t| t.elapsed() >= MASTER_REFRESH))
        {
            let kind = if is_master { "master" } else { "playlist" };
            match load(&stream, &client, &url, kind).await {
                Loaded::NotHls => {
                    tracing::info!(stream = %stream.id, "not an HLS playlist: manifest checks off");
                    return;
                }
                Loaded::Failed(reason) => {
                    // Not yet known to be a master: the failure belongs to the one playlist.
                    let name = if is_master { "master" } else { "main" };
                    if last_failure.as_ref() != Some(&reason) {
                        tracing::warn!(stream = %stream.id, problem = %reason, "HLS check");
                    }
                    stream.note_transport_problem(&reason);
                    last_failure = Some(reason.clone());
                    stream.observe_playlist(
                        name,
                        &PlaylistVerdict {
                            http_failed: true,
                            ..Default::default()
                        },
                    );
                    stream.set_hls_error(name, reason);
                    if variants.is_empty() {
                        if wait(&mut shutdown, Duration::from_secs(1)).await {
                            break;
                        }
                        continue;
                    }
                }
                Loaded::Master(master) => {
                    last_failure = None;
                    if !is_master {
                        stream.forget_variant("main");
                    }
                    is_master = true;
                    master_loaded = Some(Instant::now());
                    stream.observe_playlist("master", &PlaylistVerdict::default());
                    let wanted: Vec<(String, reqwest::Url, &m3u8_rs::VariantStream)> = master
                        .variants
                        .iter()
                        .filter(|v| !v.is_i_frame)
                        .take(ingest.hls_max_variants)
                        .enumerate()
                        .filter_map(|(i, v)| Some((format!("v{i}"), url.join(&v.uri).ok()?, v)))
                        .collect();
                    variants.retain(|v| {
                        let keep = wanted
                            .iter()
                            .any(|(n, u, _)| *n == v.status.variant && *u == v.url);
                        if !keep {
                            stream.forget_variant(&v.status.variant);
                        }
                        keep
                    });
                    for (name, u, v) in wanted {
                        if !variants.iter().any(|x| x.status.variant == name) {
                            let mut variant = Variant::new(name, u, &config);
                            variant.status.bandwidth = Some(v.bandwidth);
                            variant.status.resolution = v.resolution.map(|r| r.to_string());
                            variants.push(variant);
                        }
                    }
                    variants.sort_by(|a, b| a.status.variant.cmp(&b.status.variant));
                }
                Loaded::Media(media) => {
                    last_failure = None;
                    if variants.is_empty() {
                        variants.push(Variant::new("main".into(), url.clone(), &config));
                    }
                    preloaded = Some(media);
                }
            }
        }
        futures_util::future::join_all(variants.iter_mut().map(|v| {
            let p = preloaded.take();
            poll(&stream, &client, v, started, p)
        }))
        .await;
        stream.set_hls_status(variants.iter().map(|v| v.status.clone()).collect());
        let target = variants
            .iter()
            .map(|v| v.status.target_duration)
            .filter(|t| *t > 0.0)
            .fold(f64::INFINITY, f64::min);
        let period = if target.is_finite() {
            Duration::from_secs_f64(target / 2.0).clamp(MIN_POLL, MAX_POLL)
        } else {
            Duration::from_secs(1)
        };
        if wait(&mut shutdown, period).await {
            break;
        }
    }
}

/// Sleeps for `period`; true when shutdown came first.
async fn wait(shutdown: &mut watch::Receiver<bool>, period: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(period) => *shutdown.borrow(),
        r = shutdown.changed() => r.is_err() || *shutdown.borrow(),
    }
}

#[cfg(test)]
mod tests {
    use m3u8_rs::MediaSegment;

    use super::*;

    fn playlist(
        sequence: u64,
        discontinuity_sequence: u64,
        segments: &[(&str, f32, bool)],
    ) -> MediaPlaylist {
        MediaPlaylist {
            target_duration: 2,
            media_sequence: sequence,
            discontinuity_sequence,
            segments: segments
                .iter()
                .map(|(uri, duration, discontinuity)| MediaSegment {
                    uri: (*uri).into(),
                    duration: *duration,
                    discontinuity: *discontinuity,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    /// A live playlist of 2 s segments `s<n>.ts`, 3 in the window, `n` the newest.
    fn live(n: u64) -> MediaPlaylist {
        let names: Vec<String> = (n - 2..=n).map(|i| format!("s{i}.ts")).collect();
        let segs: Vec<(&str, f32, bool)> = names.iter().map(|s| (s.as_str(), 2.0, false)).collect();
        playlist(n - 2, 0, &segs)
    }

    #[test]
    fn a_regular_live_playlist_has_no_findings_and_its_age_resets_on_change() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        let mut t = 0.0;
        for n in 2..100u64 {
            for _ in 0..2 {
                let f = check.observe(t, live(n));
                assert_eq!(f.sequence_error, None, "at {t}");
                assert_eq!(f.duration_error, None, "at {t}");
                assert!(f.age <= 1.0 + 1e-9, "age {} at {t}", f.age);
                t += 1.0;
            }
        }
    }

    #[test]
    fn new_segments_are_listed_and_a_stale_playlist_ages() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        assert_eq!(check.observe(0.0, live(5)).new_segments.len(), 3);
        assert_eq!(check.observe(2.0, live(6)).new_segments, vec!["s6.ts"]);
        let f = check.observe(9.0, live(6));
        assert!(f.new_segments.is_empty());
        assert_eq!(f.age, 7.0);
    }

    #[test]
    fn sequence_rules() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(10));
        let back = check.observe(1.0, live(7));
        assert!(
            back.sequence_error
                .unwrap()
                .contains("went back from 8 to 5")
        );

        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(10));
        let renamed = playlist(
            9,
            0,
            &[
                ("s9.ts", 2.0, false),
                ("other.ts", 2.0, false),
                ("s11.ts", 2.0, false),
            ],
        );
        assert!(
            check
                .observe(2.0, renamed)
                .sequence_error
                .unwrap()
                .contains("segment 10 changed")
        );

        // A discontinuity leaving the window must raise the discontinuity sequence.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(
            0.0,
            playlist(1, 4, &[("a.ts", 2.0, true), ("b.ts", 2.0, false)]),
        );
        let good = check.observe(
            2.0,
            playlist(2, 5, &[("b.ts", 2.0, false), ("c.ts", 2.0, false)]),
        );
        assert_eq!(good.sequence_error, None);
        let bad = check.observe(
            4.0,
            playlist(3, 7, &[("c.ts", 2.0, false), ("d.ts", 2.0, false)]),
        );
        assert!(bad.sequence_error.unwrap().contains("expected 5"));
    }

    #[test]
    fn overlong_segments_and_drift_are_duration_errors() {
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        check.observe(0.0, live(3));
        let long = playlist(
            2,
            0,
            &[
                ("s2.ts", 2.0, false),
                ("s3.ts", 2.0, false),
                ("s4.ts", 2.6, false),
            ],
        );
        let (what, value) = check.observe(2.0, long).duration_error.unwrap();
        assert!(what.contains("s4.ts lasts 2.600"), "{what}");
        assert!((value - 2.6).abs() < 1e-6);

        // Segments labelled 2 s arriving every 3 s: the playlist runs 33% slow.
        let mut check = VariantCheck::new(&DetectorsConfig::default());
        let mut drift = None;
        for (i, n) in (2..40u64).enumerate() {
            if let Some((_, rate)) = check.observe(i as f64 * 3.0, live(n)).duration_error {
                drift.get_or_insert((i as f64 * 3.0, rate));
            }
        }
        let (when, rate) = drift.expect("drift found");
        assert!((60.0..=66.0).contains(&when), "{when}");
        assert!((rate - 2.0 / 3.0).abs() < 0.05, "{rate}");
    }
}
