//! MPEG-DASH polling: the MPD is fetched once per `minimumUpdatePeriod` (bounded), every
//! representation is checked from it (its newest segment advancing, its segment addressing
//! valid), and the analysed representations' segments go to the fetchers, as for HLS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dash_mpd_core::{MPD, Period};
use tokio::sync::watch;

use super::dash::{self, Rep};
use super::http::{self, shown};
use super::playlists::{MAX_POLL, MIN_POLL, wait};
use super::rendition;
use super::segments::{SegmentRef, Snapshot};
use super::{Discovery, FeedSender, Publisher};
use crate::config::{IngestConfig, Rendition, StreamConfig};
use crate::detect::transport::PlaylistVerdict;
use crate::detect::transport::dash_events::DashCues;
use crate::detect::transport::hls::VariantStatus;
use crate::stream::Stream;

/// A static (on-demand) MPD is fetched again this rarely: it does not change.
const STATIC_REFRESH: Duration = Duration::from_secs(60);
/// The `variant` under which failures of the MPD itself are reported.
const MPD: &str = "mpd";

/// One checked representation, across polls.
struct RepCheck {
    status: VariantStatus,
    /// The newest segment's number, and when it last changed.
    newest: Option<u64>,
    changed: Instant,
    /// Whether the newest segment's HEAD failed: the verdict until a newer one is checked.
    segment_failed: bool,
}

/// A live representation's newest segment may end this many segment durations behind the
/// availability clock (packaging and publishing take time) before it is a fault.
const MAX_LAG_SEGMENTS: f64 = 6.0;
/// ... and at least this many seconds.
const MIN_LAG_LIMIT: f64 = 10.0;

pub struct Poller {
    url: reqwest::Url,
    max_variants: usize,
    rendition: Rendition,
    max_height: Option<u32>,
    publisher: Publisher,
    reps: BTreeMap<String, RepCheck>,
    last_failure: Option<String>,
    cues: DashCues,
}

/// The analysed representations of one poll: the main one (video, or audio for an
/// audio-only MPD) and a separate audio one.
struct Analysed {
    main: String,
    audio: Option<String>,
}

impl Analysed {
    fn includes(&self, name: &str) -> bool {
        self.main == name || self.audio.as_deref() == Some(name)
    }

    /// The feed a representation's segments go to, if it is analysed.
    fn feed_of<'a>(&self, name: &str, publisher: &'a Publisher) -> Option<&'a FeedSender> {
        if self.main == name {
            Some(&publisher.video)
        } else if self.audio.as_deref() == Some(name) {
            Some(&publisher.audio)
        } else {
            None
        }
    }
}

impl Poller {
    pub fn new(
        url: reqwest::Url,
        ingest: &IngestConfig,
        stream: &StreamConfig,
        publisher: Publisher,
    ) -> Self {
        Self {
            url,
            max_variants: ingest.hls_max_variants,
            rendition: stream.rendition,
            max_height: stream.max_height,
            publisher,
            reps: BTreeMap::new(),
            last_failure: None,
            cues: DashCues::default(),
        }
    }

    /// Polls until `shutdown`; `first` is the MPD body that revealed the stream as DASH.
    pub async fn run(
        mut self,
        stream: &Stream,
        client: &reqwest::Client,
        first: Vec<u8>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut body = Some(first);
        loop {
            let fetched = match body.take() {
                Some(b) => Ok(b),
                None => self.fetch(stream, client).await,
            };
            let period = match fetched.and_then(|b| self.parse(&b)) {
                Ok(mpd) => {
                    self.observe(stream, client, &mpd).await;
                    poll_period(&mpd)
                }
                Err(reason) => {
                    self.failed(stream, reason);
                    Duration::from_secs(1)
                }
            };
            if wait(&mut shutdown, period).await {
                return;
            }
        }
    }

    async fn fetch(&self, stream: &Stream, client: &reqwest::Client) -> Result<Vec<u8>, String> {
        match http::get(
            client,
            &self.url,
            false,
            super::playlists::MAX_PLAYLIST_BYTES,
        )
        .await
        {
            http::Fetched::Ok(body) => {
                stream.count_http_request("mpd", "200");
                Ok(body)
            }
            http::Fetched::Failed(f) => {
                stream.count_http_request("mpd", &f.code);
                Err(f.reason)
            }
        }
    }

    fn parse(&self, body: &[u8]) -> Result<MPD, String> {
        let text = std::str::from_utf8(body)
            .map_err(|_| format!("{}: the MPD is not UTF-8 text", shown(&self.url)))?;
        dash_mpd_core::parse(text)
            .map_err(|e| format!("{}: not a valid MPD ({e})", shown(&self.url)))
    }

    fn failed(&mut self, stream: &Stream, reason: String) {
        if self.last_failure.as_ref() != Some(&reason) {
            tracing::warn!(stream = %stream.id, problem = %reason, "DASH check");
        }
        stream.note_transport_problem(&reason);
        self.last_failure = Some(reason.clone());
        if self.reps.is_empty() {
            self.publisher.discovered(Discovery::Failed(reason.clone()));
        }
        let verdict = PlaylistVerdict {
            http_failed: true,
            ..Default::default()
        };
        stream.observe_playlist(MPD, &verdict);
        stream.set_hls_error(MPD, reason);
    }

    /// Checks every representation of the period in play and feeds the analysed ones.
    async fn observe(&mut self, stream: &Stream, client: &reqwest::Client, mpd: &MPD) {
        self.last_failure = None;
        let now = Utc::now();
        let Some(period) = dash::current_period(mpd, now).map(|i| &mpd.periods[i]) else {
            stream.observe_playlist(MPD, &PlaylistVerdict::default());
            self.failed(
                stream,
                format!("{}: the MPD has no Period", shown(&self.url)),
            );
            return;
        };
        let clock = dash::is_dynamic(mpd)
            .then(|| dash::live_seconds(mpd, now))
            .flatten();
        let period_start = period.start.map_or(0.0, |s| s.as_secs_f64());
        let (cues, breaks) = self.cues.observe(period, period_start, clock);
        let verdict = PlaylistVerdict {
            cues,
            breaks,
            ..Default::default()
        };
        stream.observe_playlist(MPD, &verdict);
        let reps = dash::representations(period);
        let analysed = match self.choose(&reps) {
            Ok(a) => a,
            Err(reason) => {
                self.failed(stream, format!("{}: {reason}", shown(&self.url)));
                return;
            }
        };
        let checked: Vec<&Rep> = reps
            .iter()
            .enumerate()
            .filter(|(i, r)| *i < self.max_variants || analysed.includes(&r.name))
            .map(|(_, r)| r)
            .collect();
        self.forget_gone(stream, &checked);
        for rep in checked {
            let feed = analysed.feed_of(&rep.name, &self.publisher).cloned();
            let at = (period, now);
            self.check_representation(stream, client, mpd, at, rep, feed)
                .await;
        }
        stream.set_hls_status(self.reps.values().map(|r| r.status.clone()).collect());
        self.publisher.discovered(Discovery::Adaptive {
            separate_audio: analysed.audio.is_some(),
        });
    }

    /// One representation's verdict from this MPD, with the checks that need the period
    /// and the clock (`at`) and a HEAD of its newest segment, reported to the stream.
    async fn check_representation(
        &mut self,
        stream: &Stream,
        client: &reqwest::Client,
        mpd: &MPD,
        (period, now): (&Period, DateTime<Utc>),
        rep: &Rep,
        feed: Option<FeedSender>,
    ) {
        let segments = dash::segments(mpd, &self.url, period, rep, now);
        let analysed = feed.is_some();
        let (mut verdict, newest) = self.check(stream, mpd, rep, segments, feed);
        if let Some(problem) = dash::timeline_problem(period, rep) {
            verdict.sequence_error = Some(problem);
        }
        if let Some(lag) = dash::clock_lag(mpd, period, rep, now) {
            lag_verdict(lag, &mut verdict);
        }
        let check_head = !analysed && stream.config.detectors.http_errors.check_segments;
        if let Some(url) = newest.filter(|_| check_head) {
            self.head_newest(stream, client, &rep.name, &url).await;
        }
        if let Some(check) = self.reps.get_mut(&rep.name) {
            verdict.http_failed |= check.segment_failed;
            let duration_error = verdict.duration_error.as_ref().map(|d| d.0.clone());
            for e in [verdict.sequence_error.clone(), duration_error]
                .into_iter()
                .flatten()
            {
                note(stream, &mut check.status, e);
            }
        }
        stream.observe_playlist(&rep.name, &verdict);
    }

    /// The main representation by `rendition` among the video ones (among the audio ones
    /// when there is no video), and the best audio one beside video.
    fn choose(&self, reps: &[Rep]) -> Result<Analysed, String> {
        let (video, audio): (Vec<&Rep>, Vec<&Rep>) = reps.iter().partition(|r| !r.audio);
        let best_audio = |list: &[&Rep]| -> Result<String, String> {
            let candidates: Vec<_> = list.iter().map(|r| r.candidate()).collect();
            let i = rendition::choose_index(&candidates, Rendition::Highest, None)?;
            Ok(list[i].name.clone())
        };
        if video.is_empty() {
            return Ok(Analysed {
                main: best_audio(&audio)?,
                audio: None,
            });
        }
        let candidates: Vec<_> = video.iter().map(|r| r.candidate()).collect();
        let main = rendition::choose_index(&candidates, self.rendition, self.max_height)?;
        Ok(Analysed {
            main: video[main].name.clone(),
            audio: if audio.is_empty() {
                None
            } else {
                Some(best_audio(&audio)?)
            },
        })
    }

    fn forget_gone(&mut self, stream: &Stream, checked: &[&Rep]) {
        self.reps.retain(|name, _| {
            let keep = checked.iter().any(|r| r.name == *name);
            if !keep {
                stream.forget_variant(name);
            }
            keep
        });
    }

    /// HEADs a representation's new newest segment: the "newest segments missing" check of
    /// the representations not analysed (the analysed one's segments are all downloaded).
    async fn head_newest(
        &mut self,
        stream: &Stream,
        client: &reqwest::Client,
        name: &str,
        url: &reqwest::Url,
    ) {
        let failed = match http::get(client, url, true, 0).await {
            http::Fetched::Ok(_) => {
                stream.count_http_request("segment", "200");
                None
            }
            http::Fetched::Failed(f) => {
                stream.count_http_request("segment", &f.code);
                Some(f.reason)
            }
        };
        if let Some(check) = self.reps.get_mut(name) {
            check.segment_failed = failed.is_some();
            if let Some(reason) = failed {
                note(stream, &mut check.status, reason);
            }
        }
    }

    /// One representation's verdict from this MPD (not yet reported), and its newest
    /// segment when that is new; its segments go to `feed` when analysed.
    fn check(
        &mut self,
        stream: &Stream,
        mpd: &MPD,
        rep: &Rep,
        segments: Result<Vec<SegmentRef>, String>,
        feed: Option<FeedSender>,
    ) -> (PlaylistVerdict, Option<reqwest::Url>) {
        let url = self.url.clone();
        let check = self
            .reps
            .entry(rep.name.clone())
            .or_insert_with(|| RepCheck {
                status: VariantStatus {
                    variant: rep.name.clone(),
                    uri: shown(&url),
                    bandwidth: Some(rep.bandwidth),
                    resolution: rep.resolution(),
                    ..Default::default()
                },
                newest: None,
                changed: Instant::now(),
                segment_failed: false,
            });
        check.status.analysed = feed.is_some();
        let ended = !dash::is_dynamic(mpd);
        let mut verdict = PlaylistVerdict {
            ended,
            ..Default::default()
        };
        let mut newest = None;
        match segments {
            Err(reason) => {
                verdict.sequence_error = Some(reason.clone());
                note(stream, &mut check.status, reason);
            }
            Ok(segments) => {
                if observe_segments(check, &segments, &mut verdict) {
                    newest = segments.last().map(|s| s.media.url.clone());
                }
                if let Some(feed) = &feed {
                    verdict.http_failed = feed.segment_failed.load(Ordering::Relaxed);
                    feed.snapshots.send_replace(Some(Arc::new(Snapshot {
                        variant: rep.name.clone(),
                        url,
                        segments,
                        unresolved: Vec::new(),
                        ended,
                    })));
                }
            }
        }
        (verdict, newest)
    }
}

/// A live representation whose newest segment ends far behind the availability clock (the
/// packager fell behind, or the MPD's clock is wrong), or ahead of it (segments announced
/// before they can exist): the `segment_duration` detector's drift fault.
fn lag_verdict(lag: f64, verdict: &mut PlaylistVerdict) {
    let limit = (MAX_LAG_SEGMENTS * verdict.target_duration).max(MIN_LAG_LIMIT);
    let what = if lag > limit {
        "behind"
    } else if lag < -limit {
        "ahead of"
    } else {
        return;
    };
    verdict.duration_error = Some((
        format!(
            "the newest segment ends {:.1} s {what} the availability clock (availabilityStartTime)",
            lag.abs()
        ),
        lag,
    ));
}

/// The newest segment must advance on a live MPD and never go back; true when it changed.
fn observe_segments(
    check: &mut RepCheck,
    segments: &[SegmentRef],
    verdict: &mut PlaylistVerdict,
) -> bool {
    let newest = segments.last().map(|s| s.sequence);
    let longest = segments.iter().map(|s| s.duration_ms).max().unwrap_or(0);
    verdict.target_duration = longest as f64 / 1000.0;
    let changed = check.newest != newest;
    if let (Some(before), Some(now)) = (check.newest, newest)
        && now < before
    {
        verdict.sequence_error = Some(format!(
            "the newest segment went back from number {before} to {now}"
        ));
    }
    if changed {
        check.changed = Instant::now();
    }
    check.newest = newest;
    let age = check.changed.elapsed().as_secs_f64();
    verdict.age = Some(age);
    let s = &mut check.status;
    s.target_duration = verdict.target_duration;
    s.media_sequence = segments.first().map_or(0, |s| s.sequence);
    s.segments = segments.len();
    s.ended = verdict.ended;
    s.age_seconds = age;
    changed
}

fn note(stream: &Stream, status: &mut VariantStatus, reason: String) {
    if status.last_error.as_ref() != Some(&reason) {
        tracing::warn!(stream = %stream.id, variant = %status.variant, problem = %reason, "DASH check");
    }
    stream.note_transport_problem(&reason);
    status.last_error = Some(reason);
}

/// `minimumUpdatePeriod` for live MPDs (within the HLS poll bounds), rarely for static ones.
fn poll_period(mpd: &MPD) -> Duration {
    if !dash::is_dynamic(mpd) {
        return STATIC_REFRESH;
    }
    mpd.minimumUpdatePeriod
        .unwrap_or(Duration::from_secs(2))
        .clamp(MIN_POLL, MAX_POLL)
}
