//! UDP, RTP and SRT senders, a lossy RTP relay, and a network namespace in which multicast
//! on loopback works (GUIDE §4: `lo` up with multicast on, 224.0.0.0/4 routed to it).
//!
//! A test *enters* the namespace with [`NetNs::enter`]: the calling thread switches its network
//! namespace (`setns`), so the sockets it opens and the processes it spawns (ffmpeg,
//! streamwatch) live there, as under `ip netns exec`, and the test's own HTTP requests reach
//! streamwatch's loopback API. The guard switches back; the namespace is deleted on drop.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::live::{LiveSpec, ffmpeg_live_args};
use super::proc::{Proc, temp_dir};

/// A network namespace made for one test; deleted on drop (also when the test fails).
pub struct NetNs {
    name: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl NetNs {
    /// Creates the namespace with multicast routed to its loopback. Panics with what failed:
    /// these tests need root and network namespaces (checked to work here, GUIDE §4).
    pub fn create(tag: &str) -> NetNs {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "sw-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = ip(&["netns", "add", &name]) {
            panic!("cannot create network namespace {name} (needs root and CONFIG_NET_NS): {e}");
        }
        let ns = NetNs { name };
        for args in [
            &["link", "set", "lo", "up"][..],
            &["link", "set", "lo", "multicast", "on"],
            // With no `src`, the kernel sends multicast out of lo from 0.0.0.0 (127.0.0.1 is
            // host-scoped, the route link-scoped): no sender a source-specific join (`source=`)
            // could name. Checked: SSM joins for 127.0.0.1 receive nothing without it.
            &[
                "route",
                "add",
                "224.0.0.0/4",
                "dev",
                "lo",
                "src",
                "127.0.0.1",
            ],
        ] {
            let mut full = vec!["-n", ns.name.as_str()];
            full.extend_from_slice(args);
            if let Err(e) = ip(&full) {
                panic!("cannot set up multicast on loopback in {}: {e}", ns.name);
            }
        }
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into the namespace until the guard is dropped.
    pub fn enter(&self) -> Inside {
        let original = File::open("/proc/thread-self/ns/net").expect("open own netns");
        let target = File::open(format!("/var/run/netns/{}", self.name))
            .unwrap_or_else(|e| panic!("open netns {}: {e}", self.name));
        set_netns(&target).unwrap_or_else(|e| panic!("setns into {}: {e}", self.name));
        Inside { original }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "delete", &self.name]) {
            eprintln!("{e}");
        }
    }
}

fn set_netns(ns: &File) -> std::io::Result<()> {
    // SAFETY: a valid open namespace file descriptor; affects only the calling thread.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The calling thread inside a [`NetNs`]; dropping it returns to the original namespace.
pub struct Inside {
    original: File,
}

impl Drop for Inside {
    fn drop(&mut self) {
        if let Err(e) = set_netns(&self.original) {
            eprintln!("cannot return to the original network namespace: {e}");
        }
    }
}

/// How a live test signal leaves ffmpeg.
#[derive(Clone, Copy, Debug)]
pub enum Output {
    /// MPEG-TS in datagrams of 7 TS packets (`udp://HOST:PORT`, multicast TTL 1).
    Udp,
    /// MPEG-TS in RTP (`rtp_mpegts`).
    RtpMpegts,
    /// MPEG-TS over SRT as caller (`srt://...?mode=caller...`).
    Srt,
}

/// ffmpeg sending the live test signal of `spec` (black window included), silent for
/// `silence = (a, b)` seconds of its own timeline, to `url` as `output`.
pub fn live_sender(
    spec: &LiveSpec,
    silence: Option<(f64, f64)>,
    output: Output,
    url: &str,
) -> Proc {
    let dir = temp_dir("sender");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(ffmpeg_live_args(spec));
    if let Some((a, b)) = silence {
        cmd.args(["-af", &format!("volume=0:enable='gte(t,{a})*lt(t,{b})'")]);
    }
    match output {
        Output::Udp => cmd.args(["-f", "mpegts", &format!("{url}?ttl=1&pkt_size=1316")]),
        Output::RtpMpegts => cmd.args(["-f", "rtp_mpegts", url]),
        Output::Srt => cmd.args(["-f", "mpegts", url]),
    };
    Proc::spawn(
        &format!("ffmpeg -> {output:?}"),
        &mut cmd,
        &dir.join("ffmpeg.log"),
    )
    .remove_dir_on_drop(&dir)
}

/// ffmpeg sending H.264 video and AAC audio as two RTP streams to 127.0.0.1 `video_port` and
/// `audio_port`, silent for `silence = (a, b)` seconds of its own timeline, and writing their
/// session description to `sdp` (the file appears once ffmpeg has started).
pub fn rtp_sender_with_sdp(
    spec: &LiveSpec,
    silence: Option<(f64, f64)>,
    video_port: u16,
    audio_port: u16,
    sdp: &Path,
) -> Proc {
    let dir = temp_dir("sdp-sender");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(ffmpeg_live_args(spec))
        .args(["-map", "0:v", "-f", "rtp"])
        .arg(format!("rtp://127.0.0.1:{video_port}"))
        .args(["-map", "1:a"]);
    if let Some((a, b)) = silence {
        cmd.args(["-af", &format!("volume=0:enable='gte(t,{a})*lt(t,{b})'")]);
    }
    // At most 0.1 s of AAC per RTP packet. With ffmpeg's default mux delay (0.7 s), up to 32
    // frames of silence (a few bytes each) fit in one packet, and streamwatch reported an
    // `audio_loss` of ~0.56 s at the onset of injected silence (3 runs of 3; none in 2 with
    // this option). Why the audio timestamps jump there (jitterbuffer, depayloader) is not
    // established: a sender that aggregates AAC this way may raise that false alarm.
    cmd.args([
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ac",
        "1",
        "-muxdelay",
        "0.1",
        "-f",
        "rtp",
    ])
    .arg(format!("rtp://127.0.0.1:{audio_port}"))
    .arg("-sdp_file")
    .arg(sdp);
    Proc::spawn("ffmpeg -> rtp + sdp", &mut cmd, &dir.join("ffmpeg.log")).remove_dir_on_drop(&dir)
}

/// Forwards datagrams from a local port to `to`, dropping every `drop_every`-th one. Its
/// sockets belong to the network namespace of the thread that starts it.
pub struct LossyRelay {
    port: u16,
    forwarded: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LossyRelay {
    pub fn start(to: SocketAddr, drop_every: u64) -> LossyRelay {
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind relay");
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("relay timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("bind relay sender");
        // Bound to loopback, so the group is reached through it (the namespace's only route).
        tx.set_multicast_ttl_v4(1).expect("multicast ttl");
        tx.set_multicast_loop_v4(true).expect("multicast loop");
        let port = rx.local_addr().expect("relay addr").port();
        let forwarded = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, d, s) = (forwarded.clone(), dropped.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let Ok(len) = rx.recv(&mut buf) else {
                    continue;
                };
                n += 1;
                if n.is_multiple_of(drop_every) {
                    d.fetch_add(1, Ordering::Relaxed);
                } else if tx.send_to(&buf[..len], to).is_ok() {
                    f.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        LossyRelay {
            port,
            forwarded,
            dropped,
            stop,
            thread: Some(thread),
        }
    }

    /// The port the sender sends to (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops forwarding (the receiver sees the sender go silent).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop();
    }
}
