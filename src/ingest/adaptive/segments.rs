//! The segments of the analysed rendition: which to fetch next from each playlist the poller
//! hands over, fetched with byte and time limits, decrypted (AES-128), and pushed into the
//! pipeline's `appsrc`, where GStreamer demuxes and decodes them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer_app as gst_app;
use m3u8_rs::{KeyMethod, MediaPlaylist};
use tokio::sync::watch;

use super::crypto::{Aes128Stream, iv_from_hex, iv_from_sequence};
use super::http::{self, Download, Failure, Fetched, Range, shown};
use crate::stream::Stream;

/// A live stream starts this many segments before the newest, as players do (RFC 8216
/// §6.3.3: no closer than three target durations to the end).
const LIVE_START_SEGMENTS: usize = 3;
/// A segment larger than this is not one (an endless body, a file served by mistake): 10 s
/// at 50 Mbit/s fit.
const MAX_SEGMENT_BYTES: usize = 64 << 20;
/// Init segments and keys are small.
const MAX_INIT_BYTES: usize = 16 << 20;
const MAX_KEY_BYTES: usize = 64;
/// Keys remembered per stream (a live stream rotates them; each is fetched once).
const KEY_CACHE: usize = 16;
/// The next segment is fetched once the source holds less than this many bytes or the size
/// of the last segment: about one segment stays queued ahead of the decoder.
const MIN_QUEUED_BYTES: u64 = 1 << 20;
const QUEUE_POLL: Duration = Duration::from_millis(20);

/// The segments of an analysed rendition, as the poller last saw them (an HLS media
/// playlist, a DASH representation).
#[derive(Debug)]
pub struct Snapshot {
    pub variant: String,
    /// The manifest the segments come from, for messages.
    pub url: reqwest::Url,
    pub segments: Vec<SegmentRef>,
    /// Segment URIs that could not be resolved (left out of `segments`).
    pub unresolved: Vec<String>,
    /// No segment will be added (`EXT-X-ENDLIST`, a static MPD): the stream ends after these.
    pub ended: bool,
}

/// What the poller shares with the fetcher of one analysed rendition.
#[derive(Clone)]
pub struct Feed {
    pub snapshots: watch::Receiver<Option<Arc<Snapshot>>>,
    /// Whether the last segment fetched failed, for the rendition's `http_errors` verdict.
    pub segment_failed: Arc<AtomicBool>,
}

/// A resource, or a byte range of one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resource {
    pub url: reqwest::Url,
    pub range: Option<Range>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    None,
    Aes128 {
        key: reqwest::Url,
        iv: [u8; 16],
    },
    /// SAMPLE-AES, or a method streamwatch does not know: the segment cannot be decoded.
    Unsupported(String),
}

/// One segment, with everything needed to fetch and decode it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentRef {
    pub sequence: u64,
    pub media: Resource,
    pub duration_ms: u64,
    pub discontinuity: bool,
    pub init: Option<Resource>,
    pub encryption: Encryption,
}

/// The segments of an HLS media `playlist` fetched from `url`, with URLs resolved, byte ranges
/// made explicit and IVs derived; a segment whose URL cannot be resolved is left out (and
/// named in the second value).
pub fn resolve(url: &reqwest::Url, playlist: &MediaPlaylist) -> (Vec<SegmentRef>, Vec<String>) {
    let (mut resolved, mut bad) = (Vec::new(), Vec::new());
    // A byte range without an offset continues the previous range of the same resource.
    let mut previous_end: Option<(String, u64)> = None;
    // EXT-X-KEY and EXT-X-MAP hold until the next such tag; m3u8-rs attaches them to the
    // first segment after the tag only.
    let (mut key, mut map) = (None, None);
    for (i, segment) in playlist.segments.iter().enumerate() {
        key = segment.key.as_ref().or(key);
        map = segment.map.as_ref().or(map);
        let sequence = playlist.media_sequence.saturating_add(i as u64);
        let Ok(media_url) = url.join(&segment.uri) else {
            bad.push(segment.uri.clone());
            continue;
        };
        let range = segment.byte_range.as_ref().map(|r| {
            let offset = r.offset.unwrap_or(match &previous_end {
                Some((uri, end)) if *uri == segment.uri => *end,
                _ => 0,
            });
            Range {
                offset,
                length: r.length,
            }
        });
        previous_end = range.map(|r| (segment.uri.clone(), r.offset.saturating_add(r.length)));
        let init = map.and_then(|m| {
            Some(Resource {
                url: url.join(&m.uri).ok()?,
                range: m.byte_range.as_ref().map(|r| Range {
                    offset: r.offset.unwrap_or(0),
                    length: r.length,
                }),
            })
        });
        let encryption = encryption(url, key, sequence);
        // Finite and non-negative by the time it is a count of milliseconds.
        let duration_ms = (f64::from(segment.duration).clamp(0.0, 86_400.0) * 1000.0) as u64;
        resolved.push(SegmentRef {
            sequence,
            media: Resource {
                url: media_url,
                range,
            },
            duration_ms,
            discontinuity: segment.discontinuity,
            init,
            encryption,
        });
    }
    (resolved, bad)
}

fn encryption(base: &reqwest::Url, key: Option<&m3u8_rs::Key>, sequence: u64) -> Encryption {
    let Some(key) = key else {
        return Encryption::None;
    };
    match &key.method {
        KeyMethod::None => Encryption::None,
        KeyMethod::AES128 => {
            let Some(url) = key.uri.as_deref().and_then(|u| base.join(u).ok()) else {
                return Encryption::Unsupported("AES-128 without a key URI".into());
            };
            let iv = match key.iv.as_deref() {
                None => iv_from_sequence(sequence),
                Some(hex) => match iv_from_hex(hex) {
                    Some(iv) => iv,
                    None => return Encryption::Unsupported(format!("AES-128 with IV `{hex}`")),
                },
            };
            Encryption::Aes128 { key: url, iv }
        }
        KeyMethod::SampleAES => Encryption::Unsupported("SAMPLE-AES".into()),
        KeyMethod::Other(m) => Encryption::Unsupported(m.clone()),
    }
}

/// Where to continue in `segments`: the index of the next segment to fetch, and whether that
/// is a jump (the fetcher fell behind a sliding window, or the sequence went backwards after
/// an origin restart) rather than the segment after the last one fetched.
pub fn next_index(segments: &[SegmentRef], next: Option<u64>, live: bool) -> (usize, bool) {
    let start = if live {
        segments.len().saturating_sub(LIVE_START_SEGMENTS)
    } else {
        0
    };
    let (Some(next), Some(first)) = (next, segments.first()) else {
        return (start, false);
    };
    let end = first.sequence.saturating_add(segments.len() as u64);
    if next >= first.sequence && next <= end {
        ((next - first.sequence) as usize, false)
    } else {
        (start, true)
    }
}

/// Why fetching stopped.
pub enum Stopped {
    /// The pipeline no longer takes data (it is stopping).
    Pipeline,
}

/// Fetches one analysed rendition into one `appsrc`, for one pipeline run.
pub struct Fetcher {
    stream: Arc<Stream>,
    client: reqwest::Client,
    appsrc: gst_app::AppSrc,
    http_timeout: Duration,
    segment_failed: Arc<AtomicBool>,
    next: Option<u64>,
    /// The next buffer pushed starts after a gap: the demuxer must resynchronise.
    discont: bool,
    init: Option<Resource>,
    keys: HashMap<reqwest::Url, [u8; 16]>,
    last_segment_bytes: u64,
    last_problem: Option<String>,
}

impl Fetcher {
    pub fn new(
        stream: Arc<Stream>,
        client: reqwest::Client,
        appsrc: gst_app::AppSrc,
        http_timeout: Duration,
        segment_failed: Arc<AtomicBool>,
    ) -> Self {
        Self {
            stream,
            client,
            appsrc,
            http_timeout,
            segment_failed,
            next: None,
            discont: true,
            init: None,
            keys: HashMap::new(),
            last_segment_bytes: 0,
            last_problem: None,
        }
    }

    /// Follows the rendition's playlists until the pipeline stops or a VOD playlist ends.
    pub async fn run(mut self, mut snapshots: watch::Receiver<Option<Arc<Snapshot>>>) {
        loop {
            let snapshot = snapshots.borrow_and_update().clone();
            if let Some(snapshot) = snapshot {
                match self.follow(&snapshot).await {
                    Err(Stopped::Pipeline) => return,
                    Ok(()) if snapshot.ended => {
                        // Every segment of a VOD or ended event playlist is in: the pipeline
                        // finishes what it has, then ends like a file.
                        let _ = self.appsrc.end_of_stream();
                        return;
                    }
                    Ok(()) => {}
                }
            }
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    }

    async fn follow(&mut self, snapshot: &Snapshot) -> Result<(), Stopped> {
        for uri in &snapshot.unresolved {
            self.problem(format!(
                "{}: segment URI `{uri}` cannot be resolved",
                snapshot.url
            ));
        }
        let segments = &snapshot.segments;
        let (start, jumped) = next_index(segments, self.next, !snapshot.ended);
        if jumped {
            tracing::info!(stream = %self.stream.id, variant = %snapshot.variant, "segments skipped: playlist moved past the next segment");
            self.discont = true;
        }
        for segment in &segments[start..] {
            self.wait_for_room().await;
            self.fetch(segment).await?;
            self.next = Some(segment.sequence.saturating_add(1));
        }
        Ok(())
    }

    /// Waits until the source's queue has room for about one more segment, so the fetcher
    /// stays one segment ahead of decoding rather than downloading a whole VOD into memory.
    async fn wait_for_room(&self) {
        let room = self.last_segment_bytes.max(MIN_QUEUED_BYTES);
        while self.appsrc.current_level_bytes() >= room {
            tokio::time::sleep(QUEUE_POLL).await;
        }
    }

    async fn fetch(&mut self, segment: &SegmentRef) -> Result<(), Stopped> {
        if segment.discontinuity {
            self.discont = true;
        }
        let result = self.fetch_segment(segment).await;
        match result {
            Ok(Ok(bytes)) => {
                self.last_segment_bytes = bytes;
                self.segment_failed.store(false, Ordering::Relaxed);
                self.stream.count_http_request("segment", "200");
                Ok(())
            }
            Ok(Err(failure)) => {
                self.segment_failed.store(true, Ordering::Relaxed);
                self.stream.count_http_request("segment", &failure.code);
                self.problem(failure.reason);
                // What follows does not continue what was pushed.
                self.discont = true;
                Ok(())
            }
            Err(stopped) => Err(stopped),
        }
    }

    /// The segment's bytes pushed (its init segment first when it changed): the byte count,
    /// or why the segment could not be had.
    async fn fetch_segment(
        &mut self,
        segment: &SegmentRef,
    ) -> Result<Result<u64, Failure>, Stopped> {
        let decrypt = match self.decryption(segment).await {
            Ok(d) => d,
            Err(f) => return Ok(Err(f)),
        };
        if let Err(f) = self.push_init_if_new(segment).await? {
            return Ok(Err(f));
        }
        let timeout = self
            .http_timeout
            .max(Duration::from_millis(segment.duration_ms.saturating_mul(2)));
        let started = Instant::now();
        let download = match Download::start(
            &self.client,
            &segment.media.url,
            segment.media.range,
            Some(timeout),
            MAX_SEGMENT_BYTES,
        )
        .await
        {
            Ok(d) => d,
            Err(f) => return Ok(Err(f)),
        };
        let bytes = match self.push_body(segment, download, decrypt).await? {
            Ok(0) => Err(Failure::new(
                "invalid",
                format!("{}: empty segment (0 bytes)", shown(&segment.media.url)),
            )),
            other => other,
        };
        if let Ok(n) = bytes {
            self.stream.note_segment_downloaded(
                n,
                started.elapsed(),
                Duration::from_millis(segment.duration_ms),
            );
        }
        Ok(bytes)
    }

    /// Pushes the segment's init segment when it differs from the one pushed last.
    async fn push_init_if_new(
        &mut self,
        segment: &SegmentRef,
    ) -> Result<Result<(), Failure>, Stopped> {
        let Some(init) = segment
            .init
            .as_ref()
            .filter(|i| Some(*i) != self.init.as_ref())
        else {
            return Ok(Ok(()));
        };
        match self.get_small(init, MAX_INIT_BYTES, "init").await {
            Ok(bytes) => {
                self.push(Bytes::from(bytes))?;
                self.init = Some(init.clone());
                Ok(Ok(()))
            }
            Err(f) => Ok(Err(f)),
        }
    }

    /// Pushes the body as it arrives, decrypted when `decrypt` is set: the bytes received.
    async fn push_body(
        &mut self,
        segment: &SegmentRef,
        mut download: Download,
        mut decrypt: Option<Aes128Stream>,
    ) -> Result<Result<u64, Failure>, Stopped> {
        loop {
            match download.next().await {
                Ok(Some(chunk)) => {
                    let plain = match &mut decrypt {
                        Some(d) => Bytes::from(d.update(&chunk)),
                        None => chunk,
                    };
                    if !plain.is_empty() {
                        self.push(plain)?;
                    }
                }
                Ok(None) => break,
                Err(f) => return Ok(Err(f)),
            }
        }
        if let Some(d) = decrypt {
            match d.finish() {
                Ok(tail) => self.push(Bytes::from(tail))?,
                Err(e) => {
                    let reason = format!("{}: {e}", shown(&segment.media.url));
                    return Ok(Err(Failure::new("invalid", reason)));
                }
            }
        }
        Ok(Ok(download.received() as u64))
    }

    /// The decryptor of the segment, `None` for clear segments.
    async fn decryption(&mut self, segment: &SegmentRef) -> Result<Option<Aes128Stream>, Failure> {
        match &segment.encryption {
            Encryption::None => Ok(None),
            Encryption::Unsupported(method) => Err(Failure::new(
                "invalid",
                format!(
                    "{}: encryption {method} is not supported (AES-128 is)",
                    shown(&segment.media.url)
                ),
            )),
            Encryption::Aes128 { key, iv } => {
                let key = self.key(key).await?;
                Ok(Some(Aes128Stream::new(&key, iv)))
            }
        }
    }

    async fn key(&mut self, url: &reqwest::Url) -> Result<[u8; 16], Failure> {
        if let Some(key) = self.keys.get(url) {
            return Ok(*key);
        }
        let resource = Resource {
            url: url.clone(),
            range: None,
        };
        let bytes = self.get_small(&resource, MAX_KEY_BYTES, "key").await?;
        let key: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
            Failure::new(
                "invalid",
                format!(
                    "{}: an AES-128 key is 16 bytes, this one {}",
                    shown(url),
                    bytes.len()
                ),
            )
        })?;
        if self.keys.len() >= KEY_CACHE {
            self.keys.clear();
        }
        self.keys.insert(url.clone(), key);
        Ok(key)
    }

    /// A key or init segment, counted under `kind`.
    async fn get_small(
        &self,
        resource: &Resource,
        limit: usize,
        kind: &'static str,
    ) -> Result<Vec<u8>, Failure> {
        let result = match resource.range {
            None => match http::get(&self.client, &resource.url, false, limit).await {
                Fetched::Ok(bytes) => Ok(bytes),
                Fetched::Failed(f) => Err(f),
            },
            Some(range) => read_all(&self.client, resource, range, self.http_timeout, limit).await,
        };
        let code = result
            .as_ref()
            .map_or_else(|f| f.code.clone(), |_| "200".to_owned());
        self.stream.count_http_request(kind, &code);
        result
    }

    fn push(&mut self, bytes: Bytes) -> Result<(), Stopped> {
        let mut buffer = gst::Buffer::from_slice(bytes);
        if std::mem::take(&mut self.discont)
            && let Some(b) = buffer.get_mut()
        {
            b.set_flags(gst::BufferFlags::DISCONT);
        }
        self.appsrc
            .push_buffer(buffer)
            .map(|_| ())
            .map_err(|_| Stopped::Pipeline)
    }

    fn problem(&mut self, reason: String) {
        // Once per distinct problem: an outage fails every segment.
        if self.last_problem.as_ref() != Some(&reason) {
            tracing::warn!(stream = %self.stream.id, problem = %reason, "segment fetch");
        }
        self.stream.note_transport_problem(&reason);
        self.last_problem = Some(reason);
    }
}

async fn read_all(
    client: &reqwest::Client,
    resource: &Resource,
    range: Range,
    timeout: Duration,
    limit: usize,
) -> Result<Vec<u8>, Failure> {
    let mut download =
        Download::start(client, &resource.url, Some(range), Some(timeout), limit).await?;
    let mut body = Vec::new();
    while let Some(chunk) = download.next().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(text: &str) -> (Vec<SegmentRef>, Vec<String>) {
        let playlist = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
            Ok(m3u8_rs::Playlist::MediaPlaylist(m)) => m,
            other => panic!("not a media playlist: {other:?}"),
        };
        let url = reqwest::Url::parse("http://origin/live/v0/index.m3u8").unwrap();
        resolve(&url, &playlist)
    }

    #[test]
    fn byte_ranges_continue_the_previous_range_of_the_same_resource() {
        let (segments, bad) = snapshot(
            "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"720@0\"
#EXTINF:2.0,
#EXT-X-BYTERANGE:1000@720
all.mp4
#EXTINF:2.0,
#EXT-X-BYTERANGE:500
all.mp4
#EXTINF:1.5,
other.mp4
",
        );
        assert!(bad.is_empty());
        let ranges: Vec<_> = segments.iter().map(|s| s.media.range).collect();
        assert_eq!(
            ranges,
            [
                Some(Range {
                    offset: 720,
                    length: 1000
                }),
                Some(Range {
                    offset: 1720,
                    length: 500
                }),
                None
            ]
        );
        assert_eq!(segments[0].sequence, 7);
        assert_eq!(segments[2].duration_ms, 1500);
        assert_eq!(
            segments[2].init,
            Some(Resource {
                url: reqwest::Url::parse("http://origin/live/v0/init.mp4").unwrap(),
                range: Some(Range {
                    offset: 0,
                    length: 720
                }),
            })
        );
    }

    #[test]
    fn aes_iv_is_explicit_or_the_sequence_number() {
        let (segments, _) = snapshot(
            "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:258
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k1\"
#EXTINF:2.0,
a.ts
#EXT-X-KEY:METHOD=AES-128,URI=\"/keys/k2\",IV=0x000102030405060708090a0b0c0d0e0f
#EXTINF:2.0,
b.ts
#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"/keys/k3\"
#EXTINF:2.0,
c.ts
",
        );
        let key1 = reqwest::Url::parse("http://origin/keys/k1").unwrap();
        let mut by_sequence = [0u8; 16];
        by_sequence[14..].copy_from_slice(&[1, 2]);
        assert_eq!(
            segments[0].encryption,
            Encryption::Aes128 {
                key: key1,
                iv: by_sequence
            }
        );
        let explicit: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert!(
            matches!(&segments[1].encryption, Encryption::Aes128 { iv, .. } if *iv == explicit)
        );
        assert_eq!(
            segments[2].encryption,
            Encryption::Unsupported("SAMPLE-AES".into())
        );
    }

    #[test]
    fn hostile_durations_and_sequences_stay_in_range() {
        let (segments, _) = snapshot(
            "#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:18446744073709551615
#EXTINF:-5,
a.ts
#EXTINF:99999999999.5,
b.ts
",
        );
        assert_eq!(segments[0].duration_ms, 0);
        assert_eq!(segments[1].duration_ms, 86_400_000);
        assert_eq!(segments[1].sequence, u64::MAX);
    }

    fn numbered(first: u64, count: u64) -> Vec<SegmentRef> {
        (first..first + count)
            .map(|sequence| SegmentRef {
                sequence,
                media: Resource {
                    url: reqwest::Url::parse(&format!("http://o/{sequence}.ts")).unwrap(),
                    range: None,
                },
                duration_ms: 2000,
                discontinuity: false,
                init: None,
                encryption: Encryption::None,
            })
            .collect()
    }

    #[test]
    fn live_starts_three_segments_from_the_end_and_vod_at_the_start() {
        assert_eq!(next_index(&numbered(10, 6), None, true), (3, false));
        assert_eq!(next_index(&numbered(10, 2), None, true), (0, false));
        assert_eq!(next_index(&numbered(10, 6), None, false), (0, false));
    }

    #[test]
    fn continues_after_the_last_fetched_and_jumps_when_the_window_moved_on() {
        let window = numbered(10, 6);
        assert_eq!(next_index(&window, Some(12), true), (2, false));
        // Caught up: nothing new yet.
        assert_eq!(next_index(&window, Some(16), true), (6, false));
        // Fell behind the sliding window.
        assert_eq!(next_index(&window, Some(4), true), (3, true));
        // The sequence restarted lower (origin restart).
        assert_eq!(next_index(&numbered(0, 6), Some(16), true), (3, true));
    }
}
