//! The HTTP accept loop. `axum::serve` has neither a connection cap nor a header-read
//! timeout, so a few thousand idle sockets took every file descriptor of the process (and
//! with them stream restarts and evidence writes). Here each listener serves at most
//! `max_connections` HTTP/1 connections with hyper's header-read timeout; a connection beyond
//! the cap closes the oldest idle one (no request under way: a slowloris or a parked socket),
//! so a real client (Prometheus, a probe) is still answered while the cap is full, and is
//! refused at once only when every connection is busy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounter, IntGauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt;

use crate::sinks::metrics::Metrics;

/// How long a new connection waits for an evicted one to give back its slot.
const EVICTION_WAIT: Duration = Duration::from_secs(1);
/// How long connections may finish their requests once shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);
/// hyper's read buffer, which bounds a request head (8 KiB is its minimum).
const MAX_HEAD_BYTES: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// How often a failing `accept` (out of descriptors) is logged.
const ACCEPT_ERROR_LOG: Duration = Duration::from_secs(10);

/// What one listener allows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// One open connection, as the cap sees it.
struct Conn {
    /// Requests being answered; 0: idle (between requests, or still sending its headers).
    busy: AtomicUsize,
    /// Chosen to make room: not chosen twice.
    evicting: AtomicBool,
    evict: Notify,
}

/// The open connections of one listener and the slots they hold.
struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    gauge: IntGauge,
    evicted: IntCounter,
    refused: IntCounter,
}

impl Connections {
    fn new(max: usize, metrics: &Metrics, listener: &str) -> Self {
        let shed = |reason| {
            metrics
                .http
                .connections_closed
                .with_label_values(&[listener, reason])
        };
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            gauge: metrics.http.connections.with_label_values(&[listener]),
            evicted: shed("evicted"),
            refused: shed("refused"),
        }
    }

    /// A slot for a new connection: a free one, else the oldest idle connection's.
    async fn admit(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Some(p);
        }
        if !self.evict_oldest_idle() {
            self.refused.inc();
            return None;
        }
        self.evicted.inc();
        tokio::time::timeout(EVICTION_WAIT, self.slots.clone().acquire_owned())
            .await
            .ok()?
            .ok()
    }

    fn evict_oldest_idle(&self) -> bool {
        let open = crate::sync::lock(&self.open);
        let victim = open.values().find(|c| {
            c.busy.load(Ordering::Acquire) == 0 && !c.evicting.swap(true, Ordering::AcqRel)
        });
        match victim {
            Some(c) => {
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    fn register(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            evicting: AtomicBool::new(false),
            evict: Notify::new(),
        });
        crate::sync::lock(&self.open).insert(id, conn.clone());
        self.gauge.inc();
        (id, conn)
    }

    fn remove(&self, id: u64) {
        crate::sync::lock(&self.open).remove(&id);
        self.gauge.dec();
    }
}

/// Marks its connection busy while a request is answered.
struct Busy(Arc<Conn>);

impl Busy {
    fn enter(conn: &Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Serves `app` on `listener` until `shutdown`; then lets open requests finish (for a while).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: &Metrics,
    name: &'static str,
    shutdown: watch::Receiver<bool>,
) {
    let conns = Arc::new(Connections::new(limits.max_connections, metrics, name));
    let stop = stopped(shutdown.clone());
    tokio::pin!(stop);
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut stop => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                accept_failed(&e, name, &mut last_error_log).await;
                continue;
            }
        };
        // Beyond the cap the socket is dropped here: closed before it holds a descriptor.
        let Some(slot) = conns.admit().await else {
            continue;
        };
        let (id, conn) = conns.register();
        let (app, conns, shutdown) = (app.clone(), conns.clone(), shutdown.clone());
        tokio::spawn(async move {
            serve_connection(stream, &conn, app, limits, shutdown).await;
            conns.remove(id);
            drop(slot);
        });
    }
    drop(listener);
    let all = u32::try_from(conns.max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, conns.slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            listener = name,
            "HTTP connections still open after {DRAIN:?}; closing them"
        );
    }
}

/// `accept` fails when the process is out of descriptors: wait a little (the error repeats at
/// once otherwise) and say so now and then.
async fn accept_failed(e: &std::io::Error, name: &str, last: &mut Option<Instant>) {
    if last.is_none_or(|t| t.elapsed() > ACCEPT_ERROR_LOG) {
        tracing::warn!(listener = name, error = %e, "cannot accept HTTP connections");
        *last = Some(Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn serve_connection(
    stream: TcpStream,
    conn: &Arc<Conn>,
    app: Router,
    limits: Limits,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let marker = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::enter(&marker);
        let app = app.clone();
        async move {
            let response = app.oneshot(req.map(Body::new)).await;
            drop(busy);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header-read timer runs from the connection's start and again while it waits for
    // each next request, so it also closes idle keep-alive connections.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = conn.evict.notified() => return,
        () = stopped(shutdown) => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(DRAIN, connection).await;
}

/// The process's descriptor limit, after [`raise_fd_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found at start.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: streams (sockets, files, GStreamer's
/// threads and pipes) and HTTP connections share it.
#[cfg(unix)]
pub fn raise_fd_limit() -> std::io::Result<FdLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(FdLimit {
        before,
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// The HTTP connections allowed on all listeners together: at most a quarter of the
/// descriptor limit, so that the bulk of it stays with the streams.
pub fn connection_budget(wanted: usize, fd_soft: u64) -> usize {
    let quarter = usize::try_from(fd_soft / 4).unwrap_or(usize::MAX).max(8);
    wanted.min(quarter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_connections_leave_most_descriptors_to_streams() {
        assert_eq!(connection_budget(256, 1024), 256);
        assert_eq!(connection_budget(256, 512), 128);
        assert_eq!(connection_budget(100_000, 1_048_576), 100_000);
        assert_eq!(connection_budget(256, 0), 8);
    }

    #[test]
    fn the_descriptor_limit_can_be_read_and_kept_raised() {
        let l = raise_fd_limit().unwrap();
        assert!(l.soft >= l.before && l.soft <= l.hard, "{l:?}");
        assert_eq!(raise_fd_limit().unwrap().soft, l.soft);
    }

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room_and_busy_ones_never_do() {
        let metrics = Metrics::new();
        let conns = Connections::new(2, &metrics, "main");
        let _a = conns.admit().await.unwrap();
        let (_, busy) = conns.register();
        let _b = conns.admit().await.unwrap();
        let (_, idle) = conns.register();
        let _busy = Busy::enter(&busy);
        assert!(conns.evict_oldest_idle(), "the idle one is chosen");
        assert!(idle.evicting.load(Ordering::Acquire));
        assert!(!busy.evicting.load(Ordering::Acquire));
        assert!(!conns.evict_oldest_idle(), "nothing else is idle");
        assert!(conns.admit().await.is_none(), "all busy: refused");
    }
}
