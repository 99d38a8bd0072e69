//! Scale-out by sharding the stream list: N copies of streamwatch given the same stream list
//! each monitor a disjoint share of it, with no coordination between them.
//!
//! Each stream goes to the shard with the highest rendezvous weight (highest random weight
//! hashing): `weight(stream id, shard index)`, a fixed 64-bit hash. Why rendezvous rather than
//! `hash % N`: when N changes to N+1, only the streams whose new top weight is the new shard
//! move (about 1/(N+1) of them, all to the new shard), whereas `% N` reshuffles almost all.
//! Why a fixed hash rather than `std`'s `DefaultHasher`/`RandomState`: every copy, on every
//! machine and every build, must compute the same owner, so the hash is spelled out here
//! (FNV-1a over the bytes, then the SplitMix64 finaliser, because FNV-1a alone mixes the last
//! bytes poorly and ids often differ only in a trailing digit).
//!
//! Shards are numbered from 0 (`0/3`, `1/3`, `2/3`), like Kubernetes StatefulSet ordinals, so
//! `--shard-from-hostname` can take the pod's ordinal (`streamwatch-2` → 2) as it is.

use std::fmt;
use std::str::FromStr;

/// Environment variable giving the shard count when `--shard-from-hostname` is used without
/// `--shard-count` (a StatefulSet sets it next to `replicas`).
pub const SHARD_COUNT_ENV: &str = "STREAMWATCH_SHARD_COUNT";

/// Largest accepted shard count: far beyond any real fleet, and small enough that computing a
/// stream's owner (one hash per shard) stays trivial.
pub const MAX_SHARDS: u32 = 65_536;

/// Why a shard specification or hostname was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error(
        "invalid shard `{0}`: expected INDEX/COUNT with 0 <= INDEX < COUNT, e.g. `0/3` (shards are numbered from 0)"
    )]
    Syntax(String),
    #[error("invalid shard count `{0}`: expected a whole number from 1 to {MAX_SHARDS}")]
    Count(String),
    #[error(
        "shard index {index} is out of range for {count} shards: indices run from 0 to {}",
        count - 1
    )]
    IndexOutOfRange { index: u32, count: u32 },
    #[error(
        "hostname `{0}` has no ordinal suffix: --shard-from-hostname expects a name ending in `-<number>`, like a StatefulSet pod's `streamwatch-2`"
    )]
    NoOrdinal(String),
    #[error(
        "--shard-from-hostname needs the number of shards: pass --shard-count N or set {SHARD_COUNT_ENV}"
    )]
    MissingCount,
}

/// This process's share of the stream list: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`; errors unless `0 <= index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 || count > MAX_SHARDS {
            return Err(ShardError::Count(count.to_string()));
        }
        if index >= count {
            return Err(ShardError::IndexOutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard named by a hostname's ordinal (`streamwatch-2` or
    /// `streamwatch-2.streamwatch.default.svc.cluster.local` → 2) among `count` shards.
    pub fn from_hostname(hostname: &str, count: u32) -> Result<Shard, ShardError> {
        Shard::new(hostname_ordinal(hostname)?, count)
    }

    /// 0-based index of this shard.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Number of shards.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// True when this shard monitors the stream with this id.
    pub fn owns(&self, stream_id: &str) -> bool {
        owner(stream_id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// Parses `INDEX/COUNT`, e.g. `1/3`.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (index, count) = s.trim().split_once('/').ok_or_else(syntax)?;
        let index = parse_number(index).ok_or_else(syntax)?;
        let count = parse_number(count).ok_or_else(syntax)?;
        Shard::new(index, count)
    }
}

/// A shard count as given on the command line or in [`SHARD_COUNT_ENV`].
pub fn parse_count(s: &str) -> Result<u32, ShardError> {
    parse_number(s)
        .filter(|n| (1..=MAX_SHARDS).contains(n))
        .ok_or_else(|| ShardError::Count(s.to_string()))
}

/// Plain ASCII digits only: `+1`, ` 1` or `1.0` are typos worth reporting, not accepting.
fn parse_number(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The ordinal at the end of a hostname's first label: `streamwatch-2` → 2.
pub fn hostname_ordinal(hostname: &str) -> Result<u32, ShardError> {
    let no_ordinal = || ShardError::NoOrdinal(hostname.to_string());
    let label = hostname.trim().split('.').next().unwrap_or_default();
    let (_, digits) = label.rsplit_once('-').ok_or_else(no_ordinal)?;
    parse_number(digits).ok_or_else(no_ordinal)
}

/// Rendezvous weight of a stream on a shard: a fixed 64-bit hash of (id, shard index).
pub fn weight(stream_id: &str, shard: u32) -> u64 {
    // FNV-1a over the id, a separator byte no id can contain (ids are [A-Za-z0-9._-]), then the
    // shard index; the SplitMix64 finaliser spreads the result over all 64 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream_id.bytes().chain([0xff]).chain(shard.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix64(h)
}

/// The SplitMix64 output function (Steele, Lea, Flood 2014): a bijective avalanche mixer.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The shard (0..count) that monitors a stream: the one with the highest weight, the lowest
/// index on a tie. `count` 0 is treated as 1.
pub fn owner(stream_id: &str, count: u32) -> u32 {
    (0..count.max(1))
        .max_by_key(|&s| (weight(stream_id, s), std::cmp::Reverse(s)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("stream-{i}")).collect()
    }

    #[test]
    fn parses_index_over_count() {
        let s: Shard = "1/3".parse().unwrap();
        assert_eq!((s.index(), s.count()), (1, 3));
        assert_eq!(s.to_string(), "1/3");
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::new(0, 1).unwrap());
    }

    #[test]
    fn rejects_bad_shards_with_messages_that_say_why() {
        for bad in [
            "", "1", "1/", "/3", "a/3", "1/b", "-1/3", "1/3/4", "1.0/3", "+1/3",
        ] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert_eq!(e, ShardError::Syntax(bad.to_string()));
            assert!(e.to_string().contains("INDEX/COUNT"), "{bad:?}: {e}");
        }
        let e = "3/3".parse::<Shard>().unwrap_err();
        assert_eq!(e, ShardError::IndexOutOfRange { index: 3, count: 3 });
        assert!(e.to_string().contains("from 0 to 2"), "{e}");
        assert_eq!(
            "0/0".parse::<Shard>().unwrap_err(),
            ShardError::Count("0".into())
        );
        assert!(matches!(
            "0/70000".parse::<Shard>(),
            Err(ShardError::Count(_))
        ));
        assert!(parse_count("4").is_ok());
        assert!(
            parse_count("four")
                .unwrap_err()
                .to_string()
                .contains("four")
        );
    }

    #[test]
    fn hostname_ordinals() {
        assert_eq!(hostname_ordinal("streamwatch-2"), Ok(2));
        assert_eq!(hostname_ordinal("streamwatch-0\n"), Ok(0));
        assert_eq!(hostname_ordinal("my-stream-watch-17"), Ok(17));
        assert_eq!(
            hostname_ordinal("streamwatch-3.streamwatch.media.svc.cluster.local"),
            Ok(3)
        );
        for bad in [
            "streamwatch",
            "streamwatch-",
            "streamwatch-a",
            "host.example-1.com",
        ] {
            let e = hostname_ordinal(bad).unwrap_err();
            assert_eq!(e, ShardError::NoOrdinal(bad.to_string()));
            assert!(e.to_string().contains("-<number>"), "{e}");
        }
        assert_eq!(
            Shard::from_hostname("streamwatch-1", 3),
            Ok(Shard::new(1, 3).unwrap())
        );
        assert_eq!(
            Shard::from_hostname("streamwatch-3", 3),
            Err(ShardError::IndexOutOfRange { index: 3, count: 3 })
        );
    }

    #[test]
    fn every_stream_has_exactly_one_owner() {
        let ids = ids(1000);
        for count in 1..=8 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            for id in &ids {
                let owners = shards.iter().filter(|s| s.owns(id)).count();
                assert_eq!(owners, 1, "{id} has {owners} owners among {count} shards");
            }
        }
    }

    /// Pinned assignments: a changed hash would silently move streams between the copies of a
    /// running fleet that are upgraded one at a time, so any change must be deliberate.
    #[test]
    fn assignment_is_stable_across_builds() {
        let got: Vec<u32> = ["news", "sport", "movies", "kids", "stream-0", "stream-1"]
            .iter()
            .map(|id| owner(id, 4))
            .collect();
        assert_eq!(got, PINNED);
        assert_eq!(weight("news", 0), PINNED_WEIGHT);
    }
    // Computed independently (a Python transcription of `weight`), not copied from this code.
    const PINNED: [u32; 6] = [0, 2, 2, 1, 1, 0];
    const PINNED_WEIGHT: u64 = 0xc16b_06f4_c57a_3274;

    #[test]
    fn shares_are_balanced() {
        let ids = ids(1000);
        for count in [2u32, 3, 4, 5, 8] {
            let mut per = vec![0usize; count as usize];
            for id in &ids {
                per[owner(id, count) as usize] += 1;
            }
            let ideal = ids.len() as f64 / f64::from(count);
            let worst = per
                .iter()
                .map(|&n| (n as f64 - ideal).abs() / ids.len() as f64)
                .fold(0.0, f64::max);
            println!("{count} shards over 1000 ids: {per:?}, worst deviation {worst:.3}");
            // Binomial noise alone is ~1.5 points of the total at 3 shards; 3 points is a
            // bound a biased hash would break.
            assert!(worst < 0.03, "{count} shards: {per:?}");
        }
    }

    #[test]
    fn growing_by_one_shard_moves_about_one_in_n_plus_one_all_to_the_new_shard() {
        let ids = ids(1000);
        for count in [1u32, 2, 3, 4, 7] {
            let mut moved = 0usize;
            for id in &ids {
                let (before, after) = (owner(id, count), owner(id, count + 1));
                if before != after {
                    moved += 1;
                    assert_eq!(
                        after, count,
                        "{id} moved {before}->{after}, not to the new shard"
                    );
                }
            }
            let fraction = moved as f64 / ids.len() as f64;
            let ideal = 1.0 / f64::from(count + 1);
            println!(
                "{count} -> {} shards: moved {fraction:.3} (ideal {ideal:.3})",
                count + 1
            );
            assert!((fraction - ideal).abs() < 0.03, "{count}: moved {fraction}");
        }
    }
}
