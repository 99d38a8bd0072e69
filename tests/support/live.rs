//! Live sources on loopback: nginx (RTMP + HLS), an RTMP pusher, an SRT listener, an RTSP
//! server and a plain HLS origin (ffmpeg segments + python http.server).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::proc::{
    Proc, free_port, remove_dir_unless_panicking, tcp_accepts, temp_dir, udp_bound, wait_until,
};

/// A live test signal: testsrc2 + 1 kHz sine, optionally black for a while.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveSpec {
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frames per second (integer).
    pub fps: u32,
    /// `(a, b)`: the picture is black for `a <= t < b` seconds since the source started.
    pub black: Option<(f64, f64)>,
    /// Seconds the source runs before it ends.
    pub seconds: u32,
}

impl Default for LiveSpec {
    /// 320x240 @ 25 fps, never black.
    fn default() -> Self {
        LiveSpec {
            width: 320,
            height: 240,
            fps: 25,
            black: None,
            seconds: 600,
        }
    }
}

impl LiveSpec {
    /// A spec of the given size and rate, never black.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        LiveSpec {
            width,
            height,
            fps,
            black: None,
            seconds: 600,
        }
    }

    /// The same spec, black for `a <= t < b` seconds since the source started.
    pub fn with_black(mut self, a: f64, b: f64) -> Self {
        self.black = Some((a, b));
        self
    }
}

/// ffmpeg arguments for a real-time testsrc2 + sine input with the black window applied,
/// encoded to H.264 (ultrafast, zerolatency, 1 s GOP) + AAC, running for at most 600 s.
pub fn ffmpeg_live_args(spec: &LiveSpec) -> Vec<String> {
    let (w, h, f) = (spec.width, spec.height, spec.fps);
    let mut vf = "format=yuv420p".to_string();
    if let Some((a, b)) = spec.black {
        vf.push_str(&format!(
            ",drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{a})*lt(t,{b})'"
        ));
    }
    let fs = f.to_string();
    [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "warning",
        "-re",
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={w}x{h}:rate={f}"),
        "-re",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-vf",
        &vf,
        "-t",
        &spec.seconds.to_string(),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        &fs,
        "-keyint_min",
        &fs,
        "-sc_threshold",
        "0",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ac",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One nginx process (rtmp module) serving RTMP ingest/playback and HLS over HTTP for app `live`.
pub struct Nginx {
    proc: Option<Proc>,
    dir: PathBuf,
    conf: PathBuf,
    rtmp_port: u16,
    http_port: u16,
}

impl Nginx {
    /// Starts nginx on two free ports and waits until both accept connections (panics after 10 s).
    pub fn start() -> Nginx {
        let dir = temp_dir("nginx");
        let (rtmp_port, http_port) = (free_port(), free_port());
        for sub in ["hls", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let d = dir.display();
        let conf_text = format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            hls on;
            hls_path {d}/hls;
            hls_fragment 1s;
            hls_playlist_length 4s;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    types {{
        application/vnd.apple.mpegurl m3u8;
        video/mp2t ts;
    }}
    server {{
        listen 127.0.0.1:{http_port};
        location /hls/ {{
            alias {d}/hls/;
            add_header Cache-Control no-cache;
        }}
    }}
}}
"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, conf_text).unwrap();
        let mut n = Nginx {
            proc: None,
            dir,
            conf,
            rtmp_port,
            http_port,
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let log = self.dir.join("nginx.stderr.log");
        let p = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-e")
                .arg(self.dir.join("error.log"))
                .arg("-c")
                .arg(&self.conf)
                .arg("-p")
                .arg(&self.dir),
            &log,
        );
        let (r, h) = (self.rtmp_port, self.http_port);
        if !wait_until(Duration::from_secs(10), || tcp_accepts(r) && tcp_accepts(h)) {
            p.dump_log();
            eprintln!(
                "nginx error.log:\n{}",
                super::proc::log_tail(&self.dir.join("error.log"), 4000)
            );
            panic!("nginx did not start on {r}/{h}");
        }
        self.proc = Some(p);
    }

    /// `rtmp://127.0.0.1:PORT/live/NAME` (publish and play).
    pub fn rtmp_url(&self, name: &str) -> String {
        format!("rtmp://127.0.0.1:{}/live/{name}", self.rtmp_port)
    }

    /// `http://127.0.0.1:PORT/hls/NAME.m3u8` (exists once a publisher has sent ~1 fragment).
    pub fn hls_url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/hls/{name}.m3u8", self.http_port)
    }

    /// The RTMP port.
    pub fn rtmp_port(&self) -> u16 {
        self.rtmp_port
    }

    /// The HTTP (HLS) port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The nginx PID (single process: `master_process off`), None while stopped.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(|p| p.pid())
    }

    /// True while nginx runs.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.is_running())
    }

    /// Stops nginx by PID (SIGTERM, then SIGKILL after 3 s); publishers get disconnected.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }

    /// Kills nginx with SIGKILL (a crash), leaving stale HLS files behind.
    pub fn kill_hard(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill_hard();
        }
    }

    /// Stops (if running) and starts nginx again on the same ports and config.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The directory holding config, logs and `hls/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Prints nginx's logs to stderr.
    pub fn dump_log(&self) {
        if let Some(p) = &self.proc {
            p.dump_log();
        }
        eprintln!(
            "nginx error.log {}:\n{}",
            self.dir.join("error.log").display(),
            super::proc::log_tail(&self.dir.join("error.log"), 4000)
        );
    }
}

/// Publishes a live test stream (`-re` testsrc2 + sine, H.264 1 s GOP + AAC, 600 s) to
/// `nginx.rtmp_url(name)`. ffmpeg exits if nginx goes away; push again after a restart.
pub fn push_rtmp(nginx: &Nginx, name: &str, spec: &LiveSpec) -> Proc {
    let dir = temp_dir(&format!("push-{name}"));
    let mut cmd = Command::new("ffmpeg");
    cmd.args(ffmpeg_live_args(spec))
        .args(["-f", "flv"])
        .arg(nginx.rtmp_url(name));
    Proc::spawn(
        &format!("push_rtmp {name}"),
        &mut cmd,
        &dir.join("ffmpeg.log"),
    )
    .remove_dir_on_drop(&dir)
}

/// A live SRT listener on 127.0.0.1:`port` serving MPEG-TS (H.264 + AAC) to any number of
/// callers (`srt://127.0.0.1:PORT?mode=caller`), reconnects included.
///
/// ffmpeg encodes in real time (black window = seconds since this call) and pipes MPEG-TS to
/// `gst-launch-1.0 fdsrc ! tsparse alignment=7 ! srtsink mode=listener wait-for-connection=false`:
/// data is dropped while no caller is connected, and callers may come and go. (ffmpeg's own
/// `srt://...?mode=listener` output accepts exactly one caller, blocks until it arrives, and
/// exits when it disconnects, so it cannot serve reconnects.) `pid()` is gst-launch's PID
/// (the listener); the ffmpeg encoder is a companion stopped with it. Returns once the UDP
/// port is bound (panics after 10 s).
pub fn srt_source(port: u16, spec: &LiveSpec) -> Proc {
    let dir = temp_dir("srt");
    let ff_log = dir.join("ffmpeg.log");
    let mut ff = Command::new("ffmpeg");
    ff.args(ffmpeg_live_args(spec))
        .args(["-flush_packets", "1", "-f", "mpegts", "pipe:1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(&ff_log).expect("ffmpeg log"),
        ));
    let mut ff_child = ff.spawn().expect("spawn ffmpeg for srt");
    let ts = ff_child.stdout.take().expect("ffmpeg stdout");
    let encoder = Proc::from_child("srt encoder (ffmpeg)", ff_child, &ff_log);

    let gst_log = dir.join("gst.log");
    let log_file = std::fs::File::create(&gst_log).expect("gst log");
    let mut gst = Command::new("gst-launch-1.0");
    gst.args([
        "-q",
        "fdsrc",
        "fd=0",
        "!",
        "tsparse",
        "alignment=7",
        "!",
        "srtsink",
        &format!("uri=srt://127.0.0.1:{port}?mode=listener"),
        "wait-for-connection=false",
        "sync=false",
    ])
    .stdin(Stdio::from(ts))
    .stdout(Stdio::from(log_file.try_clone().unwrap()))
    .stderr(Stdio::from(log_file));
    let mut p = Proc::spawn_configured("srt listener (gst-launch)", &mut gst, &gst_log)
        .with_companion(encoder)
        .remove_dir_on_drop(&dir);
    if !wait_until(Duration::from_secs(10), || udp_bound(port)) {
        p.dump_log();
        panic!("SRT listener did not bind udp port {port}");
    }
    if !p.is_running() {
        p.dump_log();
        panic!("SRT listener exited");
    }
    p
}

/// Path of `rtsp_server.py` next to this file.
pub fn rtsp_server_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py")
}

/// An RTSP server at `rtsp://127.0.0.1:PORT/test` (H.264 + AAC audio), see [`rtsp_server_with`].
pub fn rtsp_server(port: u16, spec: &LiveSpec) -> Proc {
    rtsp_server_with(port, spec, true)
}

/// Runs `rtsp_server.py` (GstRtspServer, shared media, H.264 x264enc zerolatency, 1 s GOP,
/// optional AAC): the black window counts seconds since the *server process started* (not
/// since a client connected). Returns once the port accepts TCP (panics after 15 s).
pub fn rtsp_server_with(port: u16, spec: &LiveSpec, audio: bool) -> Proc {
    let dir = temp_dir("rtsp");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(rtsp_server_script())
        .args(["--port", &port.to_string()])
        .args(["--width", &spec.width.to_string()])
        .args(["--height", &spec.height.to_string()])
        .args(["--fps", &spec.fps.to_string()]);
    if let Some((a, b)) = spec.black {
        cmd.args(["--black", &a.to_string(), &b.to_string()]);
    }
    if !audio {
        cmd.arg("--no-audio");
    }
    let mut p =
        Proc::spawn("rtsp_server.py", &mut cmd, &dir.join("rtsp.log")).remove_dir_on_drop(&dir);
    let ok = wait_until(Duration::from_secs(15), || {
        tcp_accepts(port) || !p.is_running()
    });
    if !ok || !p.is_running() {
        p.dump_log();
        panic!("RTSP server did not start on port {port}");
    }
    p
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
        remove_dir_unless_panicking(&self.dir);
    }
}

/// A live HLS origin without nginx: ffmpeg writes 1 s segments and a sliding 5-entry playlist
/// into a temp dir, served by `/usr/bin/python3 -m http.server` on 127.0.0.1.
pub struct HlsOrigin {
    encoder: Proc,
    http: Option<Proc>,
    dir: PathBuf,
    port: u16,
}

impl HlsOrigin {
    /// Starts encoder and HTTP server; returns once the playlist lists a segment (panics after 15 s).
    pub fn start(spec: &LiveSpec) -> HlsOrigin {
        let dir = temp_dir("hls-origin");
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        let mut cmd = Command::new("ffmpeg");
        cmd.args(ffmpeg_live_args(spec))
            .args(["-f", "hls", "-hls_time", "1", "-hls_list_size", "5"])
            .args(["-hls_flags", "delete_segments+temp_file"])
            .arg("-hls_segment_filename")
            .arg(www.join("live%05d.ts"))
            .arg(www.join("live.m3u8"));
        let encoder = Proc::spawn("hls encoder (ffmpeg)", &mut cmd, &dir.join("ffmpeg.log"));
        let mut o = HlsOrigin {
            encoder,
            http: None,
            dir,
            port: free_port(),
        };
        o.start_http();
        let playlist = www.join("live.m3u8");
        if !wait_until(Duration::from_secs(15), || {
            std::fs::read_to_string(&playlist).is_ok_and(|s| s.contains(".ts"))
        }) {
            o.encoder.dump_log();
            panic!("HLS origin produced no playlist");
        }
        o
    }

    /// `http://127.0.0.1:PORT/live.m3u8`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/live.m3u8", self.port)
    }

    /// A playlist URL on the same server that answers 404.
    pub fn url_missing(&self) -> String {
        format!("http://127.0.0.1:{}/missing.m3u8", self.port)
    }

    /// The HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory with playlist and segments.
    pub fn www_dir(&self) -> PathBuf {
        self.dir.join("www")
    }

    /// Kills the HTTP server only (connections refused); the encoder keeps writing segments.
    pub fn stop_http(&mut self) {
        if let Some(mut p) = self.http.take() {
            p.stop();
        }
    }

    /// (Re)starts the HTTP server on the same port; returns once it accepts (panics after 10 s).
    pub fn start_http(&mut self) {
        self.stop_http();
        let port = self.port;
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(self.www_dir());
        let p = Proc::spawn("hls http.server", &mut cmd, &self.dir.join("http.log"));
        let started = Instant::now();
        if !wait_until(Duration::from_secs(10), || tcp_accepts(port)) {
            p.dump_log();
            panic!(
                "http.server did not start on {port} ({:?})",
                started.elapsed()
            );
        }
        self.http = Some(p);
    }

    /// Stops the encoder (the playlist stops advancing; segments stay served).
    pub fn stop_encoder(&mut self) {
        self.encoder.stop();
    }

    /// Prints encoder and HTTP server logs to stderr.
    pub fn dump_log(&self) {
        self.encoder.dump_log();
        if let Some(p) = &self.http {
            p.dump_log();
        }
    }
}

impl Drop for HlsOrigin {
    fn drop(&mut self) {
        self.stop_http();
        self.encoder.stop();
        remove_dir_unless_panicking(&self.dir);
    }
}
