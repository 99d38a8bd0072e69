//! Live ladders the way packagers make them: ffmpeg encodes two video renditions and one
//! audio rendition (1 s segments) either to separate HLS media playlists, over which the
//! tests write master playlists in whatever order they need, or to a DASH MPD with video and
//! audio adaptation sets; python's http.server serves them.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::proc::{
    Proc, free_port, remove_dir_unless_panicking, tcp_accepts, temp_dir, wait_until,
};

/// The media playlists ffmpeg writes: `stream_0.m3u8` (320x180 video), `stream_1.m3u8`
/// (640x360 video), `stream_2.m3u8` (mono AAC).
pub const LOW: &str = "stream_0.m3u8";
pub const HIGH: &str = "stream_1.m3u8";
pub const AUDIO: &str = "stream_2.m3u8";

/// The DASH manifest ffmpeg writes (representations 0 and 1 video, 2 audio).
pub const MPD: &str = "live.mpd";

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Packaging {
    Hls,
    /// Live DASH (`type="dynamic"`, SegmentTemplate with SegmentTimeline, fMP4).
    Dash,
}

pub struct AbrOrigin {
    encoder: Proc,
    http: Proc,
    dir: PathBuf,
    port: u16,
}

/// The ffmpeg command that encodes the ladder into `www`, and the manifests it writes.
fn encoder_command(
    packaging: Packaging,
    www: &std::path::Path,
    black: (f64, f64),
    silence: (f64, f64),
) -> (Command, &'static [&'static str]) {
    let filters = format!(
        "[0:v]format=yuv420p,drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,{})*lt(t,{})',split=2[hi][lo0];\
             [lo0]scale=320:180[lo];\
             [1:a]volume=volume=0:enable='gte(t,{})*lt(t,{})'[a]",
        black.0, black.1, silence.0, silence.1
    );
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "warning"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000",
        ])
        .args(["-filter_complex", &filters])
        .args(["-map", "[lo]", "-map", "[hi]", "-map", "[a]", "-t", "600"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
        .args(["-b:v:0", "300k", "-b:v:1", "900k"])
        // Mono: the same tone on two channels would be fake stereo, a real defect.
        .args(["-c:a", "aac", "-b:a", "64k", "-ac", "1"]);
    let manifests: &[&str] = match packaging {
        Packaging::Hls => {
            cmd.args(["-f", "hls", "-hls_time", "1", "-hls_list_size", "6"])
                .args([
                    "-hls_flags",
                    "delete_segments+temp_file+independent_segments",
                ])
                .args(["-hls_delete_threshold", "60"])
                .args(["-var_stream_map", "v:0 v:1 a:0"])
                .arg("-hls_segment_filename")
                .arg(www.join("stream_%v_%05d.ts"))
                .arg(www.join("stream_%v.m3u8"));
            &[LOW, HIGH, AUDIO]
        }
        Packaging::Dash => {
            cmd.args(["-f", "dash", "-seg_duration", "1", "-window_size", "6"])
                .args(["-extra_window_size", "60", "-use_template", "1"])
                .args(["-use_timeline", "1", "-remove_at_exit", "0"])
                .args(["-adaptation_sets", "id=0,streams=v id=1,streams=a"])
                .arg(www.join(MPD));
            &[MPD]
        }
    };
    (cmd, manifests)
}

impl AbrOrigin {
    /// Starts encoding: the picture is black for `black.0 <= t < black.1` and the audio
    /// silent for `silence.0 <= t < silence.1` (seconds since the encoder started). Returns
    /// once every media playlist lists a segment (panics after 30 s).
    pub fn start(packaging: Packaging, black: (f64, f64), silence: (f64, f64)) -> AbrOrigin {
        let dir = temp_dir("abr-origin");
        let www = dir.join("www");
        std::fs::create_dir_all(&www).unwrap();
        let (mut cmd, manifests) = encoder_command(packaging, &www, black, silence);
        let encoder = Proc::spawn("abr encoder (ffmpeg)", &mut cmd, &dir.join("ffmpeg.log"));
        let ready = wait_until(Duration::from_secs(30), || {
            manifests.iter().all(|p| {
                std::fs::read_to_string(www.join(p))
                    .is_ok_and(|s| s.contains(".ts") || s.contains("<S "))
            })
        });
        if !ready {
            encoder.dump_log();
            panic!("the ABR encoder produced no playlists");
        }
        let port = free_port();
        let mut http = Command::new("/usr/bin/python3");
        http.args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(&www);
        let http = Proc::spawn("abr http.server", &mut http, &dir.join("http.log"));
        assert!(
            wait_until(Duration::from_secs(10), || tcp_accepts(port)),
            "http.server did not start on {port}"
        );
        AbrOrigin {
            encoder,
            http,
            dir,
            port,
        }
    }

    /// Writes a master playlist named `name` and returns its URL.
    pub fn master(&self, name: &str, text: &str) -> String {
        std::fs::write(self.dir.join("www").join(name), text).unwrap();
        self.url(name)
    }

    /// The current content of a file the origin serves.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join("www").join(name)).unwrap()
    }

    /// The URL of a file the origin serves.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{name}", self.port)
    }

    pub fn dump_log(&self) {
        self.encoder.dump_log();
        self.http.dump_log();
    }
}

impl Drop for AbrOrigin {
    fn drop(&mut self) {
        self.http.stop();
        self.encoder.stop();
        remove_dir_unless_panicking(&self.dir);
    }
}
