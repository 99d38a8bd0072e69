//! Evidence: a JPEG thumbnail of the frame that triggered each defect, kept in a bounded
//! on-disk store, and the latest thumbnail of every stream, kept in memory for the status page.
//!
//! Frames are shrunk on the engine thread (cheap: a box filter over the luma plane) and encoded
//! on a worker thread, so JPEG encoding never delays detection; when the worker falls behind,
//! thumbnails are skipped, never queued without bound.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::ObjectStore;

use crate::config::S3Config;
use crate::events::{Event, Sink};
use crate::frame::VideoFrame;
use crate::sinks::metrics::Metrics;
use crate::sync::lock;

/// Thumbnails waiting for the encoder.
const QUEUE: usize = 64;
const JPEG_QUALITY: u8 = 80;

/// A shrunken 8-bit grey picture (the luma plane: detection works on luma only).
#[derive(Clone, Debug)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Shrinks `frame` to at most `max_width` pixels wide by averaging boxes of pixels.
pub fn thumbnail(frame: &VideoFrame, max_width: u32) -> Thumbnail {
    let factor = frame.width.div_ceil(max_width.max(1)).max(1) as usize;
    let (w, h) = (
        frame.width as usize / factor,
        frame.height as usize / factor,
    );
    let (w, h) = (w.max(1), h.max(1));
    let mut pixels = Vec::with_capacity(w * h);
    for ty in 0..h {
        for tx in 0..w {
            let mut sum = 0u32;
            let mut n = 0u32;
            for y in ty * factor..((ty + 1) * factor).min(frame.height as usize) {
                let row = frame.row(y);
                for &v in &row[tx * factor..((tx + 1) * factor).min(row.len())] {
                    sum += u32::from(v);
                    n += 1;
                }
            }
            pixels.push((sum / n.max(1)) as u8);
        }
    }
    Thumbnail {
        width: w as u32,
        height: h as u32,
        pixels,
    }
}

pub fn encode_jpeg(t: &Thumbnail) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode(
        &t.pixels,
        t.width,
        t.height,
        image::ExtendedColorType::L8,
    )?;
    Ok(out)
}

/// Files in one directory with a total size cap; the oldest go first.
pub struct EvidenceStore {
    dir: PathBuf,
    max_bytes: u64,
    files: Mutex<(VecDeque<(String, u64)>, u64)>,
}

impl EvidenceStore {
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // Files from earlier runs count against the cap, oldest first.
        let mut existing: Vec<(std::time::SystemTime, String, u64)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let name = e.file_name().into_string().ok()?;
                (meta.is_file() && name.ends_with(".jpg")).then(|| {
                    (
                        meta.modified().unwrap_or(std::time::UNIX_EPOCH),
                        name,
                        meta.len(),
                    )
                })
            })
            .collect();
        existing.sort();
        let total = existing.iter().map(|(_, _, len)| len).sum();
        let store = Self {
            dir: dir.to_owned(),
            max_bytes,
            files: Mutex::new((
                existing.into_iter().map(|(_, n, l)| (n, l)).collect(),
                total,
            )),
        };
        store.evict();
        Ok(store)
    }

    /// Stores `bytes` as `name` (written to a temporary file, then renamed into place).
    pub fn put(&self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, self.dir.join(name))?;
        {
            let mut files = lock(&self.files);
            files.0.push_back((name.to_owned(), bytes.len() as u64));
            files.1 += bytes.len() as u64;
        }
        self.evict();
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        if name.contains('/') || name.starts_with('.') {
            return None;
        }
        std::fs::read(self.dir.join(name)).ok()
    }

    /// Whether `name` is on disk now (written, and neither evicted nor removed by hand).
    pub fn contains(&self, name: &str) -> bool {
        !(name.contains('/') || name.starts_with('.')) && self.dir.join(name).is_file()
    }

    fn evict(&self) {
        let mut files = lock(&self.files);
        while files.1 > self.max_bytes {
            let Some((name, len)) = files.0.pop_front() else {
                break;
            };
            files.1 -= len;
            if let Err(e) = std::fs::remove_file(self.dir.join(&name))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %name, error = %e, "cannot remove old evidence");
            }
        }
    }

    pub fn total_bytes(&self) -> u64 {
        lock(&self.files).1
    }
}

enum Job {
    Latest { stream: String, thumb: Thumbnail },
    Event { id: String, thumb: Thumbnail },
    EventFromLatest { id: String, stream: String },
}

/// Copies each stored evidence file to an S3 bucket, on the tokio runtime.
#[derive(Clone)]
pub struct Uploader {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    runtime: tokio::runtime::Handle,
    metrics: Arc<Metrics>,
}

impl Uploader {
    /// Must be called from inside the tokio runtime that will run the uploads.
    pub fn new(config: &S3Config, metrics: Arc<Metrics>) -> Result<Self, object_store::Error> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        Ok(Self {
            store: Arc::new(builder.build()?),
            prefix: config.prefix.clone(),
            runtime: tokio::runtime::Handle::current(),
            metrics,
        })
    }

    fn upload(&self, name: &str, bytes: Vec<u8>) {
        let (store, metrics) = (self.store.clone(), self.metrics.clone());
        let key = object_store::path::Path::from(format!("{}{name}", self.prefix));
        self.runtime.spawn(async move {
            // object_store retries transient failures itself.
            let result = match store.put(&key, bytes.into()).await {
                Ok(_) => "ok",
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "evidence upload failed");
                    "failed"
                }
            };
            metrics.evidence_uploads.with_label_values(&[result]).inc();
        });
    }
}

/// Where defect thumbnails go and what happens when that fails: evidence is a help to the
/// operator, never a reason to stop monitoring, so a directory that cannot be created or
/// written disables it (with a warning and `streamwatch_evidence_errors_total`) and events
/// then link to no evidence.
#[derive(Clone)]
pub struct EvidenceOptions {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Thumbnail width in pixels.
    pub max_width: u32,
    pub uploader: Option<Uploader>,
    pub metrics: Arc<Metrics>,
}

/// Thumbnails of every stream: the latest per stream in memory, one per defect on disk.
pub struct Evidence {
    /// None when the directory could not be opened: the latest thumbnails still work.
    store: Option<Arc<EvidenceStore>>,
    latest: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>>,
    jobs: SyncSender<Job>,
    pub max_width: u32,
}

impl Evidence {
    /// Fails only when the encoder thread cannot start; a bad directory disables the store.
    pub fn start(options: EvidenceOptions) -> std::io::Result<Self> {
        let EvidenceOptions {
            dir,
            max_bytes,
            max_width,
            uploader,
            metrics,
        } = options;
        let store = match EvidenceStore::open(&dir, max_bytes) {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "evidence directory (evidence.dir) unusable: defect thumbnails are disabled, monitoring goes on");
                metrics.evidence_errors.inc();
                None
            }
        };
        let latest: Arc<Mutex<HashMap<String, Arc<Vec<u8>>>>> = Arc::default();
        let (jobs, rx) = mpsc::sync_channel::<Job>(QUEUE);
        {
            let writer = StoreWriter {
                store: store.clone(),
                metrics,
                failing: false,
            };
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("streamwatch-evidence".into())
                .spawn(move || {
                    let mut writer = writer;
                    for job in rx {
                        encode_job(job, &mut writer, &latest, uploader.as_ref());
                    }
                })?;
        }
        Ok(Self {
            store,
            latest,
            jobs,
            max_width,
        })
    }

    /// Whether defect events should link to evidence: the store opened.
    pub fn links(&self) -> bool {
        self.store.is_some()
    }

    /// Whether the evidence of event `id` exists now (links are shown only then).
    pub fn has_event(&self, id: &str) -> bool {
        self.store
            .as_ref()
            .is_some_and(|s| s.contains(&file_name(id)))
    }

    fn submit(&self, job: Job) {
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::debug!("evidence encoder busy; thumbnail skipped")
            }
            Err(TrySendError::Disconnected(_)) => tracing::warn!("evidence encoder stopped"),
        }
    }

    pub fn update_latest(&self, stream: &str, frame: &VideoFrame) {
        self.submit(Job::Latest {
            stream: stream.to_owned(),
            thumb: thumbnail(frame, self.max_width),
        });
    }

    /// Keeps `frame` as the evidence of event `id`; without a frame (an audio defect), the
    /// stream's latest picture.
    pub fn record_event(&self, id: &str, stream: &str, frame: Option<&VideoFrame>) {
        let job = match frame {
            Some(f) => Job::Event {
                id: id.to_owned(),
                thumb: thumbnail(f, self.max_width),
            },
            None => Job::EventFromLatest {
                id: id.to_owned(),
                stream: stream.to_owned(),
            },
        };
        self.submit(job);
    }

    pub fn latest(&self, stream: &str) -> Option<Arc<Vec<u8>>> {
        lock(&self.latest).get(stream).cloned()
    }

    pub fn event(&self, id: &str) -> Option<Vec<u8>> {
        self.store.as_ref()?.get(&file_name(id))
    }
}

fn file_name(event_id: &str) -> String {
    format!("{event_id}.jpg")
}

/// The encoder thread's side of the store: writes, counts failures, and warns once per run of
/// failures rather than once per defect.
struct StoreWriter {
    store: Option<Arc<EvidenceStore>>,
    metrics: Arc<Metrics>,
    failing: bool,
}

impl StoreWriter {
    fn put(&mut self, id: &str, name: &str, jpeg: &[u8]) {
        let Some(store) = &self.store else {
            return;
        };
        match store.put(name, jpeg) {
            Ok(()) => {
                if self.failing {
                    tracing::info!(event = %id, "evidence is stored again");
                }
                self.failing = false;
            }
            Err(e) => {
                self.metrics.evidence_errors.inc();
                if !self.failing {
                    tracing::warn!(event = %id, error = %e, "cannot store evidence; events link to none until it can");
                }
                self.failing = true;
            }
        }
    }
}

fn encode_job(
    job: Job,
    writer: &mut StoreWriter,
    latest: &Mutex<HashMap<String, Arc<Vec<u8>>>>,
    uploader: Option<&Uploader>,
) {
    let (id, jpeg) = match job {
        Job::Latest { stream, thumb } => {
            match encode_jpeg(&thumb) {
                Ok(jpeg) => {
                    lock(latest).insert(stream, Arc::new(jpeg));
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode thumbnail"),
            }
            return;
        }
        Job::Event { id, thumb } => match encode_jpeg(&thumb) {
            Ok(jpeg) => (id, jpeg),
            Err(e) => {
                tracing::warn!(error = %e, "cannot encode evidence");
                return;
            }
        },
        Job::EventFromLatest { id, stream } => match lock(latest).get(&stream) {
            Some(jpeg) => (id, jpeg.as_ref().clone()),
            None => return,
        },
    };
    let name = file_name(&id);
    writer.put(&id, &name, &jpeg);
    if let Some(u) = uploader {
        u.upload(&name, jpeg);
    }
}

/// A stream's evidence: the latest picture every `interval`, and the picture of each defect
/// as it starts (the stream's latest picture for a defect without one, an audio defect).
pub struct EvidenceSink {
    evidence: Arc<Evidence>,
    stream: String,
    interval: Duration,
    /// Nanoseconds from `created` to the latest thumbnail, plus one (0: none yet). An atomic,
    /// not a lock: it is read for every analysed frame.
    last_thumbnail: AtomicU64,
    created: Instant,
}

impl EvidenceSink {
    pub fn new(evidence: Arc<Evidence>, stream: &str, interval: Duration) -> Self {
        Self {
            evidence,
            stream: stream.to_owned(),
            interval,
            last_thumbnail: AtomicU64::new(0),
            created: Instant::now(),
        }
    }

    /// Whether the latest thumbnail is due now; if so, it counts as taken.
    fn thumbnail_due(&self) -> bool {
        let now = u64::try_from(self.created.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let last = self.last_thumbnail.load(Ordering::Relaxed);
        let interval = u64::try_from(self.interval.as_nanos()).unwrap_or(u64::MAX);
        let due = last == 0 || now.saturating_sub(last - 1) >= interval;
        due && self
            .last_thumbnail
            .compare_exchange(last, now + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

impl Sink for EvidenceSink {
    fn consume(&self, event: &Event, frame: Option<&VideoFrame>) {
        match (event, frame) {
            (Event::DefectStarted { defect, .. }, frame) => {
                self.evidence.record_event(&defect.id, &self.stream, frame);
            }
            (Event::FrameAnalysed { .. }, Some(frame)) if self.thumbnail_due() => {
                self.evidence.update_latest(&self.stream, frame);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn thumbnails_average_boxes_and_keep_the_aspect() {
        let mut luma = vec![0u8; 640 * 360];
        luma[..640 * 180].fill(200);
        let f =
            VideoFrame::from_plane(640, 360, &luma, 640, Duration::ZERO, Instant::now()).unwrap();
        let t = thumbnail(&f, 320);
        assert_eq!((t.width, t.height), (320, 180));
        assert_eq!(t.pixels[0], 200);
        assert_eq!(t.pixels[320 * 179], 0);
        let jpeg = encode_jpeg(&t).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG magic");
    }

    #[test]
    fn the_store_evicts_the_oldest_files_beyond_its_cap() {
        let dir = std::env::temp_dir().join(format!("sw-evidence-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = EvidenceStore::open(&dir, 250).unwrap();
        for i in 0..5 {
            store.put(&format!("e{i}.jpg"), &[i as u8; 100]).unwrap();
        }
        assert!(store.get("e0.jpg").is_none() && store.get("e2.jpg").is_none());
        assert_eq!(store.get("e4.jpg").unwrap(), vec![4u8; 100]);
        assert!(store.total_bytes() <= 250);
        assert!(store.get("../etc/passwd").is_none());
        // Reopening counts what is already there.
        let reopened = EvidenceStore::open(&dir, 150).unwrap();
        assert!(reopened.total_bytes() <= 150);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
