//! Child processes, ports, temp dirs and polling.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Ports already handed out by this process (so parallel tests never get the same one twice).
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn claim(port: u16) -> bool {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    guard.get_or_insert_with(HashSet::new).insert(port)
}

/// A free TCP port on 127.0.0.1 (bind :0, read, drop); never the same twice in one process.
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        drop(l);
        if claim(port) {
            return port;
        }
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (for SRT, which is UDP).
pub fn free_udp_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        let port = u.local_addr().unwrap().port();
        let tcp_ok = TcpListener::bind(("127.0.0.1", port)).is_ok();
        drop(u);
        if tcp_ok && claim(port) {
            return port;
        }
    }
}

/// A new, unique, empty directory under `std::env::temp_dir()` whose name contains `tag`.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Polls `f` every 150 ms until it returns true (→ true) or `timeout` passes (→ false).
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
pub fn tcp_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// True when a UDP socket is bound on 127.0.0.1:`port` or 0.0.0.0:`port` (reads /proc/net/udp).
pub fn udp_bound(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/udp") else {
        return false;
    };
    let want = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .any(|local| want.iter().any(|w| w == local))
}

/// A child process with a name and a log file (stdout+stderr); Drop stops it by PID.
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    /// Helper processes stopped after the main one (e.g. the encoder feeding an SRT sink).
    companions: Vec<Proc>,
    /// A temp dir removed after stopping, unless the thread is panicking (logs kept).
    owned_dir: Option<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` (stdin null, stdout+stderr appended to `log`); panics if it cannot start.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("open log {}: {e}", log.display()));
        let err = file.try_clone().expect("clone log handle");
        cmd.stdout(Stdio::from(file)).stderr(Stdio::from(err));
        Self::spawn_configured(name, cmd, log)
    }

    /// Spawns `cmd` whose stdio the caller has already set up (e.g. a pipe); `log` is informative.
    pub fn spawn_configured(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            companions: Vec::new(),
            owned_dir: None,
        }
    }

    /// Wraps an already spawned child.
    pub fn from_child(name: &str, child: Child, log: &Path) -> Proc {
        Proc {
            name: name.to_string(),
            child,
            log: log.to_path_buf(),
            companions: Vec::new(),
            owned_dir: None,
        }
    }

    /// Adds a helper process that is stopped together with (after) this one.
    pub fn with_companion(mut self, other: Proc) -> Proc {
        self.companions.push(other);
        self
    }

    /// Removes `dir` when this Proc is dropped, unless the thread is panicking (keeps logs).
    pub fn remove_dir_on_drop(mut self, dir: &Path) -> Proc {
        self.owned_dir = Some(dir.to_path_buf());
        self
    }

    /// The main process's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The exit status, once the main process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// True while the main process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process (and companions): SIGTERM, wait up to 3 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
        for c in &mut self.companions {
            c.stop();
        }
    }

    /// Sends SIGKILL immediately (simulates a crash) and reaps the process; companions live on.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last `max_bytes` of the log file.
    pub fn log_tail(&self, max_bytes: u64) -> String {
        log_tail(&self.log, max_bytes)
    }

    /// Prints the log path and its tail to stderr (call before failing an assertion).
    pub fn dump_log(&self) {
        eprintln!(
            "---- {} (pid {}) log {} ----\n{}\n---- end {} ----",
            self.name,
            self.pid(),
            self.log.display(),
            self.log_tail(4000),
            self.name
        );
        for c in &self.companions {
            c.dump_log();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.owned_dir.take() {
            remove_dir_unless_panicking(&dir);
        }
    }
}

/// Removes a temp dir, except while panicking (a failing test keeps its logs; path printed).
pub fn remove_dir_unless_panicking(dir: &Path) {
    if std::thread::panicking() {
        eprintln!("keeping {} for inspection", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// SIGTERM (via the `kill` command), wait up to 3 s, then SIGKILL; always reaps.
fn stop_child(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    // The child is not reaped yet, so its PID cannot have been reused.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `max_bytes` of a file, lossily decoded ("" if unreadable).
pub fn log_tail(path: &Path, max_bytes: u64) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(max_bytes)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Runs `cmd` to completion with a time limit; returns (success, stdout, stderr) or Err on timeout.
pub fn run_with_timeout(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(bool, String, String), String> {
    let (ok, out, err) = run_with_timeout_bytes(cmd, timeout)?;
    Ok((ok, String::from_utf8_lossy(&out).into_owned(), err))
}

/// Like [`run_with_timeout`] with stdout as raw bytes.
pub fn run_with_timeout_bytes(
    cmd: &mut Command,
    timeout: Duration,
) -> Result<(bool, Vec<u8>, String), String> {
    let dir = temp_dir("run");
    let (out_p, err_p) = (dir.join("stdout"), dir.join("stderr"));
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_p).map_err(|e| e.to_string())?)
        .stderr(File::create(&err_p).map_err(|e| e.to_string())?);
    let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = std::fs::read(&out_p).unwrap_or_default();
    let err = String::from_utf8_lossy(&std::fs::read(&err_p).unwrap_or_default()).into_owned();
    let _ = std::fs::remove_dir_all(&dir);
    match status {
        Some(s) => Ok((s.success(), out, err)),
        None => Err(format!(
            "timed out after {timeout:?}: {cmd:?}\nstderr: {}",
            tail_str(&err, 2000)
        )),
    }
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail_str(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Runs ffmpeg quietly with `args` (overwriting outputs); panics with its error output when it
/// fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
