//! Graceful overload (`ingest.shed_load`): when decoding or analysis falls behind, decode work
//! is shed on purpose, one stream and one tier at a time, lowest `priority` first (full →
//! reference → keyframes), instead of frames being dropped at random from every stream; when
//! there is room again the streams get their tiers back, highest priority first.
//!
//! Overload is either of:
//! - the engine falling behind: frames dropped from a queue (analysis cannot keep up);
//! - decoding falling behind: frames reaching their sink after their due time while its
//!   cores are nearly all busy, with this process's work or a neighbour's (late frames alone
//!   may be a slow origin).
//!
//! Room is a quiet spell: no drop, no late frame, and the process well below the cores, for
//! `restore_after`; a restore that brings overload back soon doubles that spell, so a machine
//! at the edge does not flap.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::AnalysisTier;
use crate::stream::{Stream, StreamSet};

/// How often load is judged.
pub const TICK: Duration = Duration::from_secs(1);
/// Share of the cores above which late frames mean the process cannot decode in time.
const BUSY_SHARE: f64 = 0.85;
/// Share of the cores below which a quiet spell counts as room.
const ROOM_SHARE: f64 = 0.65;
/// Time a shed needs to take effect (queues drain, the decoder catches up) before the next.
const SETTLE: Duration = Duration::from_secs(5);
/// Quiet spell before a tier is given back.
const RESTORE_AFTER: Duration = Duration::from_secs(30);
/// Longest quiet spell asked for, however often restores were undone.
const MAX_RESTORE_AFTER: Duration = Duration::from_secs(600);
/// Overload this soon after a restore undoes it (and doubles the next spell).
const RESTORE_UNDONE_WITHIN: Duration = Duration::from_secs(60);

/// One stream as the shedder sees it at a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamLoad {
    pub id: String,
    pub priority: i32,
    pub configured: AnalysisTier,
    pub current: AnalysisTier,
    /// Frames dropped from the stream's queue since the previous tick.
    pub dropped: u64,
    /// Frames that reached the sink late since the previous tick.
    pub late: u64,
}

/// A tier change to apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub stream: String,
    pub from: AnalysisTier,
    pub to: AnalysisTier,
}

/// The shedding policy: pure, fed one tick at a time.
#[derive(Debug)]
pub struct Shedder {
    last_shed: Option<Instant>,
    last_restore: Option<Instant>,
    quiet_since: Option<Instant>,
    restore_after: Duration,
}

impl Default for Shedder {
    fn default() -> Self {
        Self {
            last_shed: None,
            last_restore: None,
            quiet_since: None,
            restore_after: RESTORE_AFTER,
        }
    }
}

/// How busy the CPU was over a tick, as shares of the cores this process may use.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Busy {
    /// The process's own CPU time over its core allowance: what a container's quota limits.
    pub own: f64,
    /// How busy those cores were with anyone's work.
    pub cores: f64,
}

impl Shedder {
    /// Judges one tick. Late frames are overload when the cores are busy with anyone's work
    /// (a neighbour taking them slows decoding just the same); room is judged on the
    /// process's own share, so that a busy neighbour on a shared host does not keep streams
    /// shed for good (a restore that brings overload back is undone, and the next one waits
    /// longer).
    pub fn tick(&mut self, now: Instant, loads: &[StreamLoad], busy: Busy) -> Option<Change> {
        let dropped = loads.iter().any(|l| l.dropped > 0);
        let late = loads.iter().any(|l| l.late > 0);
        if dropped || (late && busy.own.max(busy.cores) >= BUSY_SHARE) {
            self.quiet_since = None;
            if self
                .last_restore
                .is_some_and(|t| now.duration_since(t) < RESTORE_UNDONE_WITHIN)
            {
                self.restore_after = (self.restore_after * 2).min(MAX_RESTORE_AFTER);
                self.last_restore = None;
            }
            if self
                .last_shed
                .is_some_and(|t| now.duration_since(t) < SETTLE)
            {
                return None;
            }
            let change = shed_one(loads)?;
            self.last_shed = Some(now);
            return Some(change);
        }
        if late || busy.own >= ROOM_SHARE {
            self.quiet_since = None;
            return None;
        }
        let quiet_since = *self.quiet_since.get_or_insert(now);
        if now.duration_since(quiet_since) < self.restore_after {
            return None;
        }
        let change = restore_one(loads)?;
        self.quiet_since = Some(now);
        self.last_restore = Some(now);
        Some(change)
    }
}

/// The lowest-priority stream that can still shed, at its richest tier first (so streams of
/// one priority go down together), lowered one tier.
fn shed_one(loads: &[StreamLoad]) -> Option<Change> {
    let stream = loads
        .iter()
        .filter(|l| l.current.lighter().is_some())
        .min_by(|a, b| {
            (a.priority, std::cmp::Reverse(a.current), &a.id).cmp(&(
                b.priority,
                std::cmp::Reverse(b.current),
                &b.id,
            ))
        })?;
    Some(Change {
        stream: stream.id.clone(),
        from: stream.current,
        to: stream.current.lighter()?,
    })
}

/// The highest-priority stream below its configured tier, at its lightest tier first, raised
/// one tier.
fn restore_one(loads: &[StreamLoad]) -> Option<Change> {
    let stream = loads
        .iter()
        .filter(|l| l.current < l.configured)
        .min_by(|a, b| {
            (std::cmp::Reverse(a.priority), a.current, &a.id).cmp(&(
                std::cmp::Reverse(b.priority),
                b.current,
                &b.id,
            ))
        })?;
    Some(Change {
        stream: stream.id.clone(),
        from: stream.current,
        to: stream.current.richer(stream.configured)?,
    })
}

/// Counters of one stream at the previous tick.
#[derive(Default)]
struct Seen {
    dropped: u64,
    late: u64,
}

/// Reads [`Busy`] since the previous reading: the process's CPU time from `/proc/self/stat`,
/// its cores' busy time from `/proc/stat`.
struct BusyMeter {
    cores: f64,
    at: Instant,
    process_seconds: f64,
    core_ticks: Option<(u64, u64)>,
}

impl BusyMeter {
    fn new() -> Self {
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            at: Instant::now(),
            process_seconds: crate::perf::process_cpu_seconds().unwrap_or(0.0),
            core_ticks: crate::perf::allowed_cores_ticks(),
        }
    }

    fn read(&mut self, now: Instant) -> Busy {
        let used = crate::perf::process_cpu_seconds().unwrap_or(self.process_seconds);
        let elapsed = now.duration_since(self.at).as_secs_f64().max(1e-3);
        let own = (used - self.process_seconds) / elapsed / self.cores;
        let core_ticks = crate::perf::allowed_cores_ticks();
        let cores_busy = match (self.core_ticks, core_ticks) {
            (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64
            }
            _ => 0.0,
        };
        (self.at, self.process_seconds, self.core_ticks) = (now, used, core_ticks);
        Busy {
            own,
            cores: cores_busy,
        }
    }
}

/// Judges the load every [`TICK`] and moves streams between tiers, until the task is aborted.
pub async fn run(streams: Arc<StreamSet>) {
    let mut shedder = Shedder::default();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut busy_meter = BusyMeter::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Instant::now();
        let busy = busy_meter.read(now);
        let snapshot = streams.snapshot();
        let loads: Vec<StreamLoad> = snapshot.iter().map(|s| load_of(s, &mut seen)).collect();
        seen.retain(|id, _| snapshot.iter().any(|s| &s.id == id));
        if let Some(change) = shedder.tick(now, &loads, busy)
            && let Some(stream) = snapshot.iter().find(|s| s.id == change.stream)
        {
            tracing::info!(
                stream = %change.stream,
                from = change.from.as_str(),
                to = change.to.as_str(),
                busy = format!("{:.0}%", busy.own.max(busy.cores) * 100.0),
                "load shedding: analysis tier changed"
            );
            stream.set_analysis_tier(change.to);
        }
    }
}

fn load_of(stream: &Stream, seen: &mut HashMap<String, Seen>) -> StreamLoad {
    let (dropped, late) = (stream.frames_dropped(), stream.late_frames());
    let before = seen.entry(stream.id.clone()).or_default();
    let load = StreamLoad {
        id: stream.id.clone(),
        priority: stream.config.priority,
        configured: stream.config.analysis,
        current: stream.analysis_tier(),
        dropped: dropped.saturating_sub(before.dropped),
        late: late.saturating_sub(before.late),
    };
    *before = Seen { dropped, late };
    load
}

#[cfg(test)]
mod tests {
    use super::*;
    use AnalysisTier::*;

    fn load(id: &str, priority: i32, current: AnalysisTier) -> StreamLoad {
        StreamLoad {
            id: id.into(),
            priority,
            configured: Full,
            current,
            dropped: 0,
            late: 0,
        }
    }

    /// The process alone on its cores.
    fn shared(share: f64) -> Busy {
        Busy {
            own: share,
            cores: share,
        }
    }

    fn dropping(mut l: StreamLoad) -> StreamLoad {
        l.dropped = 3;
        l
    }

    #[test]
    fn overload_sheds_the_lowest_priority_one_tier_at_a_time_and_settles_between() {
        let t0 = Instant::now();
        let mut s = Shedder::default();
        let loads = [load("news", 10, Full), dropping(load("promo", 0, Full))];
        let change = s.tick(t0, &loads, shared(0.5)).unwrap();
        assert_eq!((change.stream.as_str(), change.to), ("promo", Reference));
        // Still overloaded one second later: the shed is given time to work.
        assert_eq!(s.tick(t0 + TICK, &loads, shared(1.0)), None);
        let loads = [
            load("news", 10, Full),
            dropping(load("promo", 0, Reference)),
        ];
        let change = s.tick(t0 + SETTLE, &loads, shared(1.0)).unwrap();
        assert_eq!((change.stream.as_str(), change.to), ("promo", Keyframes));
        // The low-priority stream has nothing left to shed: the next one goes down.
        let loads = [
            dropping(load("news", 10, Full)),
            load("promo", 0, Keyframes),
        ];
        let change = s.tick(t0 + SETTLE * 2, &loads, shared(1.0)).unwrap();
        assert_eq!((change.stream.as_str(), change.to), ("news", Reference));
        let all_light = [dropping(load("a", 0, Keyframes))];
        assert_eq!(s.tick(t0 + SETTLE * 3, &all_light, shared(1.0)), None);
    }

    #[test]
    fn late_frames_are_overload_only_on_busy_cores() {
        let t0 = Instant::now();
        let mut s = Shedder::default();
        let mut slow_origin = load("a", 0, Full);
        slow_origin.late = 5;
        assert_eq!(s.tick(t0, &[slow_origin.clone()], shared(0.3)), None);
        assert!(s.tick(t0 + TICK, &[slow_origin], shared(0.95)).is_some());
    }

    #[test]
    fn a_neighbour_busy_on_the_cores_makes_late_frames_overload_but_does_not_block_room() {
        let t0 = Instant::now();
        let neighbour = Busy {
            own: 0.3,
            cores: 0.95,
        };
        let mut s = Shedder::default();
        let mut late = load("a", 0, Full);
        late.late = 5;
        let change = s.tick(t0, &[late], neighbour).unwrap();
        assert_eq!(change.to, Reference);
        let shed = [load("a", 0, Reference)];
        assert_eq!(s.tick(t0 + TICK, &shed, neighbour), None);
        let restored = s.tick(t0 + TICK + RESTORE_AFTER, &shed, neighbour).unwrap();
        assert_eq!(restored.to, Full);
    }

    #[test]
    fn room_restores_the_highest_priority_after_a_quiet_spell_and_flapping_lengthens_it() {
        let t0 = Instant::now();
        let mut s = Shedder::default();
        let shed = [load("news", 10, Reference), load("promo", 0, Keyframes)];
        assert_eq!(s.tick(t0, &shed, shared(0.3)), None);
        // Busy cores are no room, even without drops.
        assert_eq!(s.tick(t0 + RESTORE_AFTER, &shed, shared(0.7)), None);
        let t1 = t0 + RESTORE_AFTER + TICK;
        assert_eq!(s.tick(t1, &shed, shared(0.3)), None);
        let change = s.tick(t1 + RESTORE_AFTER, &shed, shared(0.3)).unwrap();
        assert_eq!((change.stream.as_str(), change.to), ("news", Full));
        // Overload right after the restore: shed again, and the next spell is twice as long.
        let t2 = t1 + RESTORE_AFTER + TICK * 5;
        let loads = [
            dropping(load("news", 10, Full)),
            load("promo", 0, Keyframes),
        ];
        assert!(s.tick(t2, &loads, shared(0.9)).is_some());
        assert_eq!(s.restore_after, RESTORE_AFTER * 2);
        let quiet = [load("news", 10, Reference), load("promo", 0, Keyframes)];
        let t3 = t2 + TICK;
        assert_eq!(s.tick(t3, &quiet, shared(0.3)), None);
        assert_eq!(s.tick(t3 + RESTORE_AFTER, &quiet, shared(0.3)), None);
        assert!(
            s.tick(t3 + RESTORE_AFTER * 2, &quiet, shared(0.3))
                .is_some()
        );
    }

    #[test]
    fn nothing_is_restored_above_the_configured_tier() {
        let t0 = Instant::now();
        let mut s = Shedder::default();
        let mut light = load("a", 0, Keyframes);
        light.configured = Keyframes;
        assert_eq!(s.tick(t0, &[light.clone()], shared(0.1)), None);
        assert_eq!(s.tick(t0 + RESTORE_AFTER, &[light], shared(0.1)), None);
    }
}
