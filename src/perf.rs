//! Cheap process-wide performance counters for `streamwatch bench`: time per pipeline stage,
//! batch sizes, detect latency and the GPU memory the backend owns, plus readers of the
//! process's CPU time and resident memory from `/proc`.
//!
//! The counters are process-wide statics rather than handles threaded through the engine
//! because one process runs one engine; they cost one relaxed atomic add per batch (per frame
//! for the latency histogram) and never allocate, so they stay on in production.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A stage of a frame's way from the decoder to a detector decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Copying the decoded luma plane out of the GStreamer buffer (or the synthetic pool).
    Copy = 0,
    /// Host-side work to get a batch onto the device: descriptors, staging copy, encoding.
    /// For the CPU backend: keeping each stream's reference frame.
    Upload = 1,
    /// The engine thread's share of the statistics passes: the submission itself and the wait
    /// for the device to finish. With batches in flight, device time that overlapped the next
    /// batch's upload is not in it. For the CPU backend: the statistics loops.
    Gpu = 2,
    /// Mapping the results and turning them into `FrameStats`.
    Readback = 3,
    /// The detectors' state machines and the per-frame bookkeeping after the statistics.
    Decide = 4,
}

const STAGES: usize = 5;
/// Latency buckets grow by this factor: 8% resolution, 1 µs to ~330 s in 256 buckets.
const LATENCY_GROWTH: f64 = 1.08;
const LATENCY_BUCKETS: usize = 256;

pub struct Perf {
    stage_nanos: [AtomicU64; STAGES],
    stage_frames: [AtomicU64; STAGES],
    batches: AtomicU64,
    batch_frames: AtomicU64,
    batch_max: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
    gpu_bytes: AtomicU64,
}

/// The process's counters.
pub static PERF: Perf = Perf {
    stage_nanos: [const { AtomicU64::new(0) }; STAGES],
    stage_frames: [const { AtomicU64::new(0) }; STAGES],
    batches: AtomicU64::new(0),
    batch_frames: AtomicU64::new(0),
    batch_max: AtomicU64::new(0),
    latency: [const { AtomicU64::new(0) }; LATENCY_BUCKETS],
    gpu_bytes: AtomicU64::new(0),
};

/// Counters read at one moment.
#[derive(Clone, Debug, Default)]
pub struct PerfSnapshot {
    /// Seconds spent and frames passed per stage, indexed by `Stage as usize`.
    pub stage_seconds: [f64; STAGES],
    pub stage_frames: [u64; STAGES],
    pub batches: u64,
    pub batch_frames: u64,
    pub batch_max: u64,
    pub latency: Vec<u64>,
    pub gpu_bytes: u64,
}

impl Perf {
    /// Adds `elapsed` spent on `frames` frames in `stage`.
    pub fn add(&self, stage: Stage, elapsed: Duration, frames: u64) {
        let i = stage as usize;
        self.stage_nanos[i].fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.stage_frames[i].fetch_add(frames, Ordering::Relaxed);
    }

    pub fn batch(&self, frames: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_frames.fetch_add(frames, Ordering::Relaxed);
        self.batch_max.fetch_max(frames, Ordering::Relaxed);
    }

    /// One frame's time from its arrival in the stream's queue to its detectors' decision.
    pub fn latency(&self, latency: Duration) {
        let us = latency.as_secs_f64() * 1e6;
        let i = if us <= 1.0 {
            0
        } else {
            ((us.ln() / LATENCY_GROWTH.ln()) as usize).min(LATENCY_BUCKETS - 1)
        };
        self.latency[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The bytes of device memory the GPU backend currently owns.
    pub fn set_gpu_bytes(&self, bytes: u64) {
        self.gpu_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Zeroes the counters (not the GPU memory gauge), to measure from a steady state.
    pub fn reset(&self) {
        for a in self.stage_nanos.iter().chain(&self.stage_frames) {
            a.store(0, Ordering::Relaxed);
        }
        for a in [&self.batches, &self.batch_frames, &self.batch_max] {
            a.store(0, Ordering::Relaxed);
        }
        for a in &self.latency {
            a.store(0, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> PerfSnapshot {
        let mut s = PerfSnapshot::default();
        for i in 0..STAGES {
            s.stage_seconds[i] = self.stage_nanos[i].load(Ordering::Relaxed) as f64 / 1e9;
            s.stage_frames[i] = self.stage_frames[i].load(Ordering::Relaxed);
        }
        s.batches = self.batches.load(Ordering::Relaxed);
        s.batch_frames = self.batch_frames.load(Ordering::Relaxed);
        s.batch_max = self.batch_max.load(Ordering::Relaxed);
        s.latency = self
            .latency
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        s.gpu_bytes = self.gpu_bytes.load(Ordering::Relaxed);
        s
    }
}

impl PerfSnapshot {
    /// Milliseconds per frame spent in `stage` (0 when no frame passed it).
    pub fn ms_per_frame(&self, stage: Stage) -> f64 {
        let i = stage as usize;
        if self.stage_frames[i] == 0 {
            0.0
        } else {
            self.stage_seconds[i] * 1e3 / self.stage_frames[i] as f64
        }
    }

    /// The latency below which a share `q` (0..1) of the frames fell, in milliseconds: the
    /// geometric middle of its bucket.
    pub fn latency_quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, &n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let us = if i == 0 {
                    1.0
                } else {
                    LATENCY_GROWTH.powf(i as f64 + 0.5)
                };
                return Some(us / 1e3);
            }
        }
        None
    }
}

/// Kernel clock ticks per second in `/proc/*/stat` (USER_HZ: 100 on every Linux architecture
/// streamwatch runs on).
const CLOCK_TICKS: f64 = 100.0;

/// CPU seconds (user + system) in a `/proc/.../stat` line, and the thread's name.
fn parse_stat(text: &str) -> Option<(String, f64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_owned();
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let mut fields = text.get(close + 2..)?.split_whitespace();
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((name, (utime + stime) / CLOCK_TICKS))
}

/// CPU seconds the process has used so far (all threads, user + system).
pub fn process_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat(&text).map(|(_, s)| s)
}

/// Busy and total clock ticks, summed over the cores this process may run on (its affinity
/// mask), from `/proc/stat`: how busy those cores are with anyone's work, this process's or
/// a neighbour's.
pub fn allowed_cores_ticks() -> Option<(u64, u64)> {
    let allowed = allowed_cpus()?;
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    sum_core_ticks(&text, &allowed)
}

/// (busy, total) ticks of the listed cores in a `/proc/stat` text.
fn sum_core_ticks(stat: &str, allowed: &[usize]) -> Option<(u64, u64)> {
    let mut sums = (0u64, 0u64);
    for line in stat.lines() {
        let Some((cpu, ticks)) = line.strip_prefix("cpu").and_then(|l| l.split_once(' ')) else {
            continue;
        };
        let Ok(cpu) = cpu.parse::<usize>() else {
            continue; // the all-cores line
        };
        if !allowed.contains(&cpu) {
            continue;
        }
        let ticks: Vec<u64> = ticks
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
        sums.0 += total.saturating_sub(idle);
        sums.1 += total;
    }
    (sums.1 > 0).then_some(sums)
}

#[cfg(target_os = "linux")]
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set, and the call writes at most its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a live cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    // SAFETY: every index is below CPU_SETSIZE, the bit count of `set`.
    let cpus = (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) });
    Some(cpus.collect())
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Option<Vec<usize>> {
    None
}

/// CPU seconds per thread name of the live threads, with the trailing digits of the names
/// removed (`multiqueue12:src` and `multiqueue3:src` are one group): which work takes the CPU.
pub fn thread_cpu_seconds() -> Vec<(String, f64)> {
    let mut groups: Vec<(String, f64)> = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, secs)) = parse_stat(&text) else {
            continue;
        };
        let group: String = name.chars().filter(|c| !c.is_ascii_digit()).collect();
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, s)) => *s += secs,
            None => groups.push((group, secs)),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    groups
}

/// The machine's 1-minute load average: above the core count, other processes competed for
/// the CPU during a measurement.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory now and at its peak, in bytes (`VmRSS`, `VmHWM`).
pub fn resident_bytes() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |key: &str| {
        text.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_and_parens_in_the_name() {
        let line = "42 (multi queue(1)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        let (name, secs) = parse_stat(line).unwrap();
        assert_eq!(name, "multi queue(1)");
        assert!((secs - 3.0).abs() < 1e-9);
    }

    #[test]
    fn core_ticks_count_only_the_allowed_cores_and_idle_as_not_busy() {
        let stat = "cpu  300 0 30 600 60 0 0 0 0 0\n\
                    cpu0 100 0 10 200 20 0 0 0 0 0\n\
                    cpu1 200 0 20 400 40 0 0 0 0 0\n\
                    intr 12345 0 0\n";
        assert_eq!(sum_core_ticks(stat, &[1]), Some((220, 660)));
        assert_eq!(sum_core_ticks(stat, &[0, 1]), Some((330, 990)));
        assert_eq!(sum_core_ticks(stat, &[7]), None);
        let (busy, total) = allowed_cores_ticks().expect("this machine's /proc/stat");
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn latency_quantiles_fall_in_the_right_bucket() {
        let mut s = PerfSnapshot {
            latency: vec![0; LATENCY_BUCKETS],
            ..Default::default()
        };
        // 99 frames at ~1 ms, one at ~100 ms.
        let bucket = |ms: f64| ((ms * 1e3).ln() / LATENCY_GROWTH.ln()) as usize;
        s.latency[bucket(1.0)] = 99;
        s.latency[bucket(100.0)] = 1;
        let p50 = s.latency_quantile_ms(0.5).unwrap();
        let p100 = s.latency_quantile_ms(1.0).unwrap();
        assert!((0.9..1.1).contains(&p50), "{p50}");
        assert!((90.0..110.0).contains(&p100), "{p100}");
        assert!(PerfSnapshot::default().latency_quantile_ms(0.5).is_none());
    }

    #[test]
    fn own_process_figures_are_readable() {
        assert!(process_cpu_seconds().is_some());
        let (rss, peak) = resident_bytes().unwrap();
        assert!(rss > 0 && peak >= rss);
        assert!(!thread_cpu_seconds().is_empty());
    }
}
