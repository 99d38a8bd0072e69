//! MPEG-TS clips from real multiplexers, and copies with TR 101 290 faults injected at known
//! times, each in the way the indicator describes: packets dropped, sync bytes corrupted, PAT
//! or PMT withheld, a section's CRC broken, a PID gone, PCRs withheld, jittered or jumped,
//! the transport error flag set.
//!
//! Times are seconds on the clip's PCR (from its first PCR), which is what streamwatch's
//! analyser reports them on.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use streamwatch::detect::transport::psi::crc32_mpeg2;

use super::clips::ffmpeg_cached;
use super::proc::run_with_timeout;

pub const PACKET: usize = 188;
/// ffmpeg's PIDs: PAT, PMT, video (which carries the PCR) and audio.
pub const PAT_PID: u16 = 0x0000;
pub const PMT_PID: u16 = 0x1000;
pub const VIDEO_PID: u16 = 0x0100;
pub const AUDIO_PID: u16 = 0x0101;
const PCR_HZ: f64 = 27_000_000.0;

/// The multiplexer a clean clip comes from.
#[derive(Clone, Copy, Debug)]
pub enum Muxer {
    /// ffmpeg's default: variable rate, no padding.
    FfmpegVbr,
    /// ffmpeg at a constant 1.2 Mb/s (`-muxrate`), padded with null packets.
    FfmpegCbr,
    /// GStreamer's `mpegtsmux`.
    Gstreamer,
    /// `mpegtsmux` with an SCTE-35 PID in its PMT that carries a packet only every 5 minutes.
    GstreamerScte35,
}

/// ffmpeg's arguments for 12 s of 320x240 25 fps H.264 (2 s GOP) and AAC, then `output`.
fn encode_args(output: &[&str]) -> Vec<String> {
    let input = [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "12",
    ];
    let video = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
    ];
    input
        .iter()
        .chain(&video)
        .chain(output)
        .map(|s| s.to_string())
        .collect()
}

/// 12 s of 320x240 25 fps H.264 (2 s GOP) and AAC from `muxer`, cached.
pub fn clean_ts(muxer: Muxer) -> PathBuf {
    let limit = Duration::from_secs(120);
    match muxer {
        Muxer::FfmpegVbr => ffmpeg_cached(
            &encode_args(&["-c:a", "aac", "-f", "mpegts", "OUT"]),
            "ts",
            limit,
        ),
        Muxer::FfmpegCbr => {
            let cbr = [
                "-b:v", "600k", "-maxrate", "600k", "-bufsize", "600k", "-c:a", "aac", "-b:a",
                "96k", "-muxrate", "1200k", "-f", "mpegts", "OUT",
            ];
            ffmpeg_cached(&encode_args(&cbr), "ts", limit)
        }
        Muxer::Gstreamer => gstreamer_ts(false),
        Muxer::GstreamerScte35 => gstreamer_ts(true),
    }
}

/// The same picture and sound muxed by GStreamer (encoded by ffmpeg first, to MKV, then
/// remuxed by `mpegtsmux`).
fn gstreamer_ts(scte35: bool) -> PathBuf {
    let args = encode_args(&["-c:a", "aac", "-f", "matroska", "OUT"]);
    let mkv = ffmpeg_cached(&args, "mkv", Duration::from_secs(120));
    let out = mkv.with_extension(if scte35 { "gst-scte35.ts" } else { "gst.ts" });
    if out.exists() {
        return out;
    }
    let tmp = out.with_extension(format!("{}.tmp", std::process::id()));
    let pipeline = format!(
        "filesrc location={} ! matroskademux name=d d.video_0 ! queue ! h264parse ! mpegtsmux \
         name=m scte-35-pid={} ! filesink location={} d.audio_0 ! queue ! aacparse ! m.",
        mkv.display(),
        if scte35 { 500 } else { 0 },
        tmp.display()
    );
    let mut cmd = Command::new("gst-launch-1.0");
    cmd.arg("-q").args(pipeline.split_whitespace());
    match run_with_timeout(&mut cmd, Duration::from_secs(120)) {
        Ok((true, _, _)) => {}
        Ok((false, _, err)) | Err(err) => panic!("mpegtsmux remux failed: {err}"),
    }
    std::fs::rename(&tmp, &out).expect("rename remuxed clip");
    out
}

/// One fault, injected from `at` seconds.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// One video packet dropped at each of `at`, `at + 1`, `at + 2`.
    DropPackets,
    /// The sync byte of one packet at `at`, and of two packets in a row at `at + 2`.
    CorruptSyncBytes,
    /// No PAT for two seconds.
    WithholdPat,
    /// No PMT for two seconds.
    WithholdPmt,
    /// One byte flipped in a PAT section and in a PMT section (a second apart).
    FlipCrc,
    /// The audio PID stops for good.
    RemoveAudioPid,
    /// The audio PID stops for 1.5 s.
    AudioGap,
    /// No PCR for 0.3 s (the adaptation fields say none).
    WithholdPcr,
    /// Every PCR from `at` moves 5 s ahead, without a discontinuity indicator.
    JumpPcr,
    /// Five consecutive PCRs 2 µs late (constant-rate clips only).
    JitterPcr,
    /// The transport error indicator on two packets.
    TransportError,
    /// One video packet marked scrambled, in a stream with no CAT.
    Scramble,
}

fn pid(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
}

fn pcr_of(p: &[u8]) -> Option<u64> {
    if p[3] & 0x20 == 0 || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let base = (u64::from(p[6]) << 25)
        | (u64::from(p[7]) << 17)
        | (u64::from(p[8]) << 9)
        | (u64::from(p[9]) << 1)
        | (u64::from(p[10]) >> 7);
    Some(base * 300 + ((u64::from(p[10] & 1) << 8) | u64::from(p[11])))
}

fn set_pcr(p: &mut [u8], pcr: u64) {
    let pcr = pcr % ((1u64 << 33) * 300);
    let (base, ext) = (pcr / 300, pcr % 300);
    p[6] = (base >> 25) as u8;
    p[7] = (base >> 17) as u8;
    p[8] = (base >> 9) as u8;
    p[9] = (base >> 1) as u8;
    p[10] = ((base & 1) << 7) as u8 | 0x7E | (ext >> 8) as u8;
    p[11] = ext as u8;
}

/// Seconds of each packet on the clip's PCR (that of the last PCR before it).
fn packet_times(packets: &[Vec<u8>]) -> Vec<f64> {
    let mut first = None;
    let mut now = 0.0;
    packets
        .iter()
        .map(|p| {
            if let Some(pcr) = pcr_of(p) {
                let origin = *first.get_or_insert(pcr);
                now = pcr.saturating_sub(origin) as f64 / PCR_HZ;
            }
            now
        })
        .collect()
}

/// Starts a PES, section or table on its PID.
fn unit_start(p: &[u8]) -> bool {
    p[1] & 0x40 != 0
}

/// `clean` with `fault` injected at `at` seconds, written into `dir`.
pub fn inject(clean: &Path, fault: Fault, at: f64, dir: &Path) -> PathBuf {
    let data = std::fs::read(clean).expect("read clean clip");
    let mut packets: Vec<Vec<u8>> = data.chunks_exact(PACKET).map(<[u8]>::to_vec).collect();
    let times = packet_times(&packets);
    let mut remove = vec![false; packets.len()];
    apply(fault, at, &mut packets, &times, &mut remove);
    let out = dir.join(format!("{fault:?}.ts"));
    let bytes: Vec<u8> = packets
        .into_iter()
        .zip(remove)
        .filter(|(_, r)| !r)
        .flat_map(|(p, _)| p)
        .collect();
    std::fs::write(&out, bytes).expect("write faulted clip");
    out
}

/// Injects `fault` at `at` seconds: edits `packets` in place and marks those to `remove`.
fn apply(fault: Fault, at: f64, packets: &mut [Vec<u8>], times: &[f64], remove: &mut [bool]) {
    let first_at = |packets: &[Vec<u8>], from: f64, matches: &dyn Fn(&[u8]) -> bool| {
        (0..packets.len())
            .find(|&i| times[i] >= from && matches(&packets[i]))
            .unwrap_or_else(|| panic!("no packet to fault at {from} s"))
    };
    let within = |i: usize, a: f64, b: f64| times[i] >= a && times[i] < b;
    match fault {
        Fault::DropPackets => {
            for k in 0..3 {
                let i = first_at(packets, at + f64::from(k), &|p| {
                    pid(p) == VIDEO_PID && !unit_start(p)
                });
                remove[i] = true;
            }
        }
        Fault::CorruptSyncBytes => {
            // Not on PCR packets: the clock would lose a PCR as well.
            let i = first_at(packets, at, &|p| pcr_of(p).is_none());
            packets[i][0] = 0x46;
            let j = (0..packets.len() - 1)
                .find(|&j| {
                    times[j] >= at + 2.0 && packets[j..j + 2].iter().all(|p| pcr_of(p).is_none())
                })
                .expect("two packets without PCR");
            packets[j][0] = 0x00;
            packets[j + 1][0] = 0x00;
        }
        Fault::WithholdPat | Fault::WithholdPmt => {
            let table = if matches!(fault, Fault::WithholdPat) {
                PAT_PID
            } else {
                PMT_PID
            };
            for (i, r) in remove.iter_mut().enumerate() {
                *r = pid(&packets[i]) == table && within(i, at, at + 2.0);
            }
        }
        Fault::FlipCrc => {
            let i = first_at(packets, at, &|p| pid(p) == PAT_PID && unit_start(p));
            packets[i][13] ^= 0x01;
            let j = first_at(packets, at + 1.0, &|p| pid(p) == PMT_PID && unit_start(p));
            packets[j][14] ^= 0x01;
        }
        Fault::RemoveAudioPid | Fault::AudioGap => {
            let end = if matches!(fault, Fault::AudioGap) {
                at + 1.5
            } else {
                f64::MAX
            };
            for (i, r) in remove.iter_mut().enumerate() {
                *r = pid(&packets[i]) == AUDIO_PID && within(i, at, end);
            }
        }
        Fault::WithholdPcr => {
            for (i, p) in packets.iter_mut().enumerate() {
                if within(i, at, at + 0.3) && pcr_of(p).is_some() {
                    p[5] &= !0x10;
                }
            }
        }
        Fault::JumpPcr => {
            for (i, p) in packets.iter_mut().enumerate() {
                if let Some(pcr) = pcr_of(p).filter(|_| times[i] >= at) {
                    set_pcr(p, pcr + 5 * 27_000_000);
                }
            }
        }
        Fault::JitterPcr => {
            let mut left = 5;
            for (i, p) in packets.iter_mut().enumerate() {
                if let Some(pcr) = pcr_of(p).filter(|_| times[i] >= at && left > 0) {
                    set_pcr(p, pcr + 54);
                    left -= 1;
                }
            }
        }
        Fault::TransportError => {
            let i = first_at(packets, at, &|p| pid(p) == VIDEO_PID && !unit_start(p));
            packets[i][1] |= 0x80;
            let j = first_at(packets, at + 1.0, &|p| {
                pid(p) == VIDEO_PID && !unit_start(p)
            });
            packets[j][1] |= 0x80;
        }
        Fault::Scramble => {
            let i = first_at(packets, at, &|p| pid(p) == VIDEO_PID && !unit_start(p));
            packets[i][3] |= 0x80;
        }
    }
}

/// The PID the SCTE-35 cues go on.
pub const SCTE35_PID: u16 = 500;

/// One SCTE-35 message to insert: a `splice_insert` (out of network or back, with a break
/// duration and auto return), or a `splice_null` heartbeat.
#[derive(Clone, Copy, Debug)]
pub struct CueSpec {
    /// Seconds on the clip's PCR where the message goes; the splice time is the PTS there.
    pub at: f64,
    /// None: a splice_null.
    pub event_id: Option<u32>,
    pub out: bool,
    pub duration: Option<(f64, bool)>,
}

/// The PMT packet with an SCTE-35 stream (type 0x86, registration descriptor `CUEI`) added.
fn pmt_with_scte35(p: &[u8]) -> Vec<u8> {
    let start = 5 + usize::from(p[4]);
    let len = 3 + ((usize::from(p[start + 1] & 0x0F) << 8) | usize::from(p[start + 2]));
    let mut section = p[start..start + len - 4].to_vec();
    let pid = SCTE35_PID;
    section.extend([0x86, 0xE0 | (pid >> 8) as u8, pid as u8, 0xF0, 6, 0x05, 4]);
    section.extend(b"CUEI");
    let new_len = section.len() + 4 - 3;
    section[1] = (section[1] & 0xF0) | (new_len >> 8) as u8;
    section[2] = new_len as u8;
    let crc = crc32_mpeg2(&section);
    section.extend(crc.to_be_bytes());
    let mut out = p[..start].to_vec();
    out.extend(section);
    out.resize(PACKET, 0xFF);
    out
}

/// A splice_info_section for `cue` with the splice at PTS `pts` (90 kHz).
fn splice_section(cue: &CueSpec, pts: u64) -> Vec<u8> {
    use broadcast_common::Serialize;
    use scte35_splice::SpliceInfoSection;
    use scte35_splice::commands::{AnyCommand, SpliceInsert, SpliceNull};
    use scte35_splice::time::{BreakDuration, SpliceTime};
    let command = match cue.event_id {
        None => AnyCommand::SpliceNull(SpliceNull),
        Some(id) => AnyCommand::SpliceInsert(SpliceInsert {
            splice_event_id: id,
            splice_event_cancel_indicator: false,
            out_of_network_indicator: cue.out,
            program_splice_flag: true,
            splice_immediate_flag: false,
            event_id_compliance_flag: true,
            splice_time: Some(SpliceTime::with_pts(pts)),
            components: Vec::new(),
            break_duration: cue.duration.map(|(seconds, auto_return)| BreakDuration {
                auto_return,
                duration: (seconds * 90_000.0) as u64,
            }),
            unique_program_id: 1,
            avail_num: 0,
            avails_expected: 0,
        }),
    };
    SpliceInfoSection::new_clear(command, &[])
        .try_to_bytes()
        .expect("serialize splice_info_section")
}

/// `clean` (an ffmpeg clip) with an SCTE-35 PID in its PMT and `cues` on it, into `dir`.
pub fn with_scte35(clean: &Path, cues: &[CueSpec], dir: &Path) -> PathBuf {
    let data = std::fs::read(clean).expect("read clean clip");
    let packets: Vec<Vec<u8>> = data.chunks_exact(PACKET).map(<[u8]>::to_vec).collect();
    let times = packet_times(&packets);
    let mut out = Vec::with_capacity(data.len() + cues.len() * PACKET);
    let mut pending = cues.iter().peekable();
    let (mut cc, mut pcr_base) = (0u8, 0u64);
    for (i, p) in packets.iter().enumerate() {
        if let Some(pcr) = pcr_of(p) {
            pcr_base = pcr / 300;
        }
        while let Some(cue) = pending.next_if(|c| times[i] >= c.at) {
            let section = splice_section(cue, pcr_base);
            let mut packet = vec![
                0x47,
                0x40 | (SCTE35_PID >> 8) as u8,
                SCTE35_PID as u8,
                0x10 | cc,
                0,
            ];
            packet.extend(section);
            packet.resize(PACKET, 0xFF);
            out.extend(packet);
            cc = (cc + 1) & 0x0F;
        }
        if pid(p) == PMT_PID && unit_start(p) {
            out.extend(pmt_with_scte35(p));
        } else {
            out.extend_from_slice(p);
        }
    }
    let path = dir.join("scte35.ts");
    std::fs::write(&path, out).expect("write clip with cues");
    path
}
