//! Which audio channels the silence and channel detectors judge (`channels` and
//! `ignore_channels` of a stream). By default they judge the programme's main channels (mono,
//! front left and right, centre): an LFE or surround channel that is quiet is normal in most
//! 5.1 programmes (stereo upmixes, dialogue), not a fault.

use serde::Deserialize;

use crate::media::{MONO, is_channel_position};

/// A channel named in the config: its 0-based index in the buffer, or its position (`FL`,
/// `FR`, `C`, `LFE`, `RL`, `RR`, `SL`, `SR`, ...; `MONO` for a single unpositioned channel).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ChannelName {
    Index(u32),
    Position(String),
}

impl ChannelName {
    fn matches(&self, index: usize, position: Option<&str>) -> bool {
        match self {
            Self::Index(i) => *i as usize == index,
            Self::Position(p) => position.is_some_and(|pos| pos.eq_ignore_ascii_case(p)),
        }
    }
}

/// The main channels judged when a stream names none.
const MAIN_POSITIONS: [&str; 4] = [MONO, "FL", "FR", "C"];
/// Without positions (more than two channels and no channel mask), the first pair is taken as
/// the programme: the common layout of embedded multichannel audio.
const UNPOSITIONED_MAIN: usize = 2;

/// A stream's choice of judged channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelSelection {
    /// Exactly these (None: the main channels).
    pub channels: Option<Vec<ChannelName>>,
    /// Never these.
    pub ignore: Vec<ChannelName>,
}

impl ChannelSelection {
    /// The first unknown position name, as a message for the config error.
    pub fn problem(&self) -> Option<String> {
        let names = self.channels.iter().flatten().chain(&self.ignore);
        names.into_iter().find_map(|n| match n {
            ChannelName::Position(p) if !is_channel_position(p) => Some(format!(
                "`{p}` is not a channel position (FL, FR, C, LFE, RL, RR, SL, SR, ...) or index"
            )),
            _ => None,
        })
    }

    /// Indices of the judged channels of a buffer of `count` channels with these positions.
    pub fn judged(&self, positions: Option<&[&str]>, count: usize) -> Vec<usize> {
        let position = |i: usize| positions.and_then(|p| p.get(i).copied());
        let chosen = |i: usize| match &self.channels {
            Some(names) => names.iter().any(|n| n.matches(i, position(i))),
            None => match positions {
                Some(p) if p.iter().any(|pos| MAIN_POSITIONS.contains(pos)) => {
                    position(i).is_some_and(|pos| MAIN_POSITIONS.contains(&pos))
                }
                Some(_) => true,
                None => i < UNPOSITIONED_MAIN,
            },
        };
        (0..count)
            .filter(|&i| chosen(i) && !self.ignore.iter().any(|n| n.matches(i, position(i))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_ONE: [&str; 6] = ["FL", "FR", "C", "LFE", "RL", "RR"];

    fn pos(p: &str) -> ChannelName {
        ChannelName::Position(p.to_owned())
    }

    #[test]
    fn by_default_the_main_channels_are_judged() {
        let s = ChannelSelection::default();
        assert_eq!(s.judged(Some(&FIVE_ONE), 6), vec![0, 1, 2]);
        assert_eq!(s.judged(Some(&["FL", "FR"]), 2), vec![0, 1]);
        assert_eq!(s.judged(Some(&[MONO]), 1), vec![0]);
        assert_eq!(s.judged(None, 8), vec![0, 1]);
        // A layout without any main position (surround only) is judged whole.
        assert_eq!(s.judged(Some(&["SL", "SR"]), 2), vec![0, 1]);
    }

    #[test]
    fn channels_and_ignore_choose_by_position_or_index() {
        let all_but_lfe = ChannelSelection {
            channels: Some(FIVE_ONE.iter().map(|p| pos(p)).collect()),
            ignore: vec![pos("lfe")],
        };
        assert_eq!(all_but_lfe.judged(Some(&FIVE_ONE), 6), vec![0, 1, 2, 4, 5]);
        let by_index = ChannelSelection {
            channels: Some(vec![ChannelName::Index(2), ChannelName::Index(3)]),
            ignore: Vec::new(),
        };
        assert_eq!(by_index.judged(None, 8), vec![2, 3]);
        let no_centre = ChannelSelection {
            channels: None,
            ignore: vec![pos("C")],
        };
        assert_eq!(no_centre.judged(Some(&FIVE_ONE), 6), vec![0, 1]);
    }

    #[test]
    fn unknown_positions_are_a_problem() {
        let bad = ChannelSelection {
            channels: None,
            ignore: vec![pos("LEFT")],
        };
        assert!(bad.problem().unwrap().contains("LEFT"));
        assert_eq!(ChannelSelection::default().problem(), None);
    }
}
