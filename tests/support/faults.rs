//! A live HLS encoder and origins that break on request (`fault_origin.py`), for the fault
//! tests and the soak.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::live::{LiveSpec, ffmpeg_live_args};
use super::proc::{
    Proc, free_port, remove_dir_unless_panicking, tcp_accepts, temp_dir, wait_until,
};

/// ffmpeg encoding a live test signal to 1 s HLS segments in a directory. Old segments stay
/// on disk for a minute, so a frozen playlist still finds the segments it lists.
pub struct HlsEncoder {
    proc: Proc,
    dir: PathBuf,
}

impl HlsEncoder {
    /// Starts the encoder; returns once its playlist lists a segment (panics after 20 s).
    pub fn start(spec: &LiveSpec) -> HlsEncoder {
        let dir = temp_dir("hls-encoder");
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(ffmpeg_live_args(spec))
            .args(["-f", "hls", "-hls_time", "1", "-hls_list_size", "5"])
            .args(["-hls_flags", "delete_segments+temp_file"])
            .args(["-hls_delete_threshold", "60"])
            .arg("-hls_segment_filename")
            .arg(www.join("live%05d.ts"))
            .arg(www.join("live.m3u8"));
        let proc = Proc::spawn("hls encoder (ffmpeg)", &mut cmd, &dir.join("ffmpeg.log"));
        let playlist = www.join("live.m3u8");
        if !wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(&playlist).is_ok_and(|s| s.contains(".ts"))
        }) {
            proc.dump_log();
            panic!("the HLS encoder produced no playlist");
        }
        HlsEncoder { proc, dir }
    }

    pub fn www(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// The encoder's temp dir (logs of servers that serve it may go there too).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dump_log(&self) {
        self.proc.dump_log();
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }
}

impl Drop for HlsEncoder {
    fn drop(&mut self) {
        self.proc.stop();
        remove_dir_unless_panicking(&self.dir);
    }
}

/// `fault_origin.py` serving an encoder's directory under any stream name, each name with a
/// fault of its own.
pub struct FaultOrigin {
    proc: Option<Proc>,
    port: u16,
    www: PathBuf,
    dir: PathBuf,
    faults: std::collections::BTreeMap<String, String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fault_origin.py")
}

impl FaultOrigin {
    pub fn start(www: &Path) -> FaultOrigin {
        Self::start_on(www, free_port())
    }

    /// As [`Self::start`], on a given port.
    pub fn start_on(www: &Path, port: u16) -> FaultOrigin {
        let mut o = FaultOrigin {
            proc: None,
            port,
            www: www.to_owned(),
            dir: temp_dir("fault-origin"),
            faults: Default::default(),
        };
        o.write_faults();
        o.restart();
        o
    }

    /// `http://127.0.0.1:PORT/NAME/live.m3u8`.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}/live.m3u8", self.port)
    }

    /// `http://127.0.0.1:PORT/NAME/live.mpd`: a dynamic MPD of the same TS segments.
    pub fn dash_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}/live.mpd", self.port)
    }

    /// `http://127.0.0.1:PORT/NAME/master.m3u8`: variants `NAME-a` (v0) and `NAME-b` (v1).
    pub fn master_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}/master.m3u8", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Breaks `name` the way `fault` says (see `fault_origin.py`); "" repairs it.
    pub fn set(&mut self, name: &str, fault: &str) {
        if fault.is_empty() {
            self.faults.remove(name);
        } else {
            self.faults.insert(name.to_owned(), fault.to_owned());
        }
        self.write_faults();
    }

    fn write_faults(&self) {
        let tmp = self.dir.join("faults.json.tmp");
        std::fs::write(&tmp, serde_json::to_string(&self.faults).unwrap()).unwrap();
        std::fs::rename(&tmp, self.dir.join("faults.json")).unwrap();
    }

    /// Kills the server (SIGKILL): connections are refused until [`Self::restart`].
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill_hard();
        }
    }

    /// (Re)starts the server on the same port; returns once it accepts (panics after 10 s).
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(script())
            .arg(self.port.to_string())
            .arg(&self.www)
            .arg(self.dir.join("faults.json"));
        let p = Proc::spawn("fault origin", &mut cmd, &self.dir.join("origin.log"));
        let port = self.port;
        if !wait_until(Duration::from_secs(10), || tcp_accepts(port)) {
            p.dump_log();
            panic!("the fault origin did not start on {port}");
        }
        self.proc = Some(p);
    }

    pub fn dump_log(&self) {
        if let Some(p) = &self.proc {
            p.dump_log();
        }
    }
}

impl Drop for FaultOrigin {
    fn drop(&mut self) {
        self.kill();
        remove_dir_unless_panicking(&self.dir);
    }
}

/// A clip served as a VOD HLS playlist (2 s MPEG-TS segments) by `fault_origin.py`: a real HLS
/// source with a known timeline, e.g. for tests that need the HLS metrics.
pub struct VodHls {
    pub origin: FaultOrigin,
    dir: PathBuf,
}

impl VodHls {
    pub fn start(clip: &Path) -> VodHls {
        let dir = temp_dir("vod-hls");
        let status = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(clip)
            .args([
                "-c",
                "copy",
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_list_size",
                "0",
            ])
            .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
            .arg(dir.join("seg%03d.ts"))
            .arg(dir.join("live.m3u8"))
            .status()
            .expect("run ffmpeg");
        assert!(
            status.success(),
            "ffmpeg could not segment {}",
            clip.display()
        );
        VodHls {
            origin: FaultOrigin::start(&dir),
            dir,
        }
    }

    /// The playlist URL under stream name `name`.
    pub fn url(&self, name: &str) -> String {
        self.origin.url(name)
    }
}

impl Drop for VodHls {
    fn drop(&mut self) {
        remove_dir_unless_panicking(&self.dir);
    }
}

/// `udp_fuzz.py`: a TS clip looped to UDP ports on 127.0.0.1 at about its own bitrate, each
/// copy mutated at random (bytes flipped, datagrams dropped, duplicated, cut, garbage).
pub fn udp_fuzz(clip: &Path, seconds: f64, ports: &[u16]) -> Proc {
    let dir = temp_dir("udp-fuzz");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/udp_fuzz.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script).arg(clip).arg(seconds.to_string());
    cmd.args(ports.iter().map(u16::to_string));
    Proc::spawn("udp fuzz sender", &mut cmd, &dir.join("udp_fuzz.log"))
}
