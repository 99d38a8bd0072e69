//! RTP packet loss from the sequence numbers a receiver sees (RFC 3550 §A.1, A.3).
//!
//! A missing number is only counted once it can no longer arrive in time: when the highest
//! number seen has moved [`REORDER_WINDOW`] packets past it. So reordered packets (within the
//! window) are no loss, duplicates are never counted twice, and the count only grows, as a
//! Prometheus counter must. A jump beyond [`MAX_DROPOUT`], or a packet far behind, followed by
//! its successor, is a sender that restarted: counting starts again from there.

/// Packets a late packet may trail the highest one and still count as received. RFC 3550's
/// MAX_MISORDER is 100; a power of two keeps the ring index cheap.
pub const REORDER_WINDOW: u64 = 128;

/// A larger forward jump is not loss but a new sequence (RFC 3550's MAX_DROPOUT).
pub const MAX_DROPOUT: i64 = 3000;

/// The sequence state of one RTP stream (one SSRC).
pub struct SequenceGaps {
    /// The highest extended sequence number seen (cycles × 65536 + number).
    highest: Option<u64>,
    /// The first packet's extended number: none before it was expected.
    first: u64,
    /// Whether `ext` arrived, at `ext % REORDER_WINDOW`, for ext in (highest - window, highest].
    seen: [bool; REORDER_WINDOW as usize],
    /// An out-of-range number: if the next packet follows it, the sender restarted.
    probation: Option<u16>,
}

impl Default for SequenceGaps {
    fn default() -> Self {
        Self {
            highest: None,
            first: 0,
            seen: [false; REORDER_WINDOW as usize],
            probation: None,
        }
    }
}

fn slot(ext: u64) -> usize {
    (ext % REORDER_WINDOW) as usize
}

impl SequenceGaps {
    /// Takes one packet's sequence number; returns how many packets are newly known lost.
    pub fn push(&mut self, seq: u16) -> u64 {
        let Some(highest) = self.highest else {
            self.restart(seq);
            return 0;
        };
        let delta = i64::from(seq.wrapping_sub(highest as u16) as i16);
        if (1..=MAX_DROPOUT).contains(&delta) {
            self.probation = None;
            return self.advance(highest + delta as u64);
        }
        if delta <= 0 && -delta < REORDER_WINDOW as i64 {
            self.probation = None;
            if let Some(ext) = highest.checked_sub(delta.unsigned_abs())
                && ext >= self.first
            {
                self.seen[slot(ext)] = true;
            }
            return 0;
        }
        if self.probation.is_some_and(|p| p.wrapping_add(1) == seq) {
            self.restart(seq);
        } else {
            self.probation = Some(seq);
        }
        0
    }

    fn restart(&mut self, seq: u16) {
        // Far from zero, so that stepping back into the window never underflows.
        let ext = (1 << 32) + u64::from(seq);
        self.highest = Some(ext);
        self.first = ext;
        self.seen = [false; REORDER_WINDOW as usize];
        self.seen[slot(ext)] = true;
        self.probation = None;
    }

    fn advance(&mut self, new_highest: u64) -> u64 {
        let old = self.highest.unwrap_or(new_highest);
        let mut lost = 0;
        for ext in old + 1..=new_highest {
            // This slot held `ext - window`, which now leaves the window: decided.
            let leaving = ext - REORDER_WINDOW;
            if leaving >= self.first && !self.seen[slot(ext)] {
                lost += 1;
            }
            self.seen[slot(ext)] = false;
        }
        self.seen[slot(new_highest)] = true;
        self.highest = Some(new_highest);
        lost
    }
}

/// The sequence number of an RTP packet (RFC 3550 §5.1), if `packet` is one (version 2).
pub fn sequence_number(packet: &[u8]) -> Option<u16> {
    match packet {
        [first, _, hi, lo, ..] if first >> 6 == 2 && packet.len() >= 12 => {
            Some(u16::from_be_bytes([*hi, *lo]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost(seqs: impl IntoIterator<Item = u16>) -> u64 {
        let mut gaps = SequenceGaps::default();
        seqs.into_iter().map(|s| gaps.push(s)).sum()
    }

    /// `n` packets from `start`, wrapping at 65535.
    fn run(start: u16, n: u16) -> impl Iterator<Item = u16> {
        (0..n).map(move |i| start.wrapping_add(i))
    }

    #[test]
    fn an_unbroken_sequence_loses_nothing_across_the_wrap() {
        assert_eq!(lost(run(65000, 2000)), 0);
    }

    #[test]
    fn dropped_packets_are_counted_once_they_leave_the_window() {
        let dropped_every_10th = run(65000, 3000).filter(|s| s % 10 != 3);
        let sent = run(65000, 3000).filter(|s| s % 10 == 3).count() as u64;
        let counted = lost(dropped_every_10th);
        // The last window's gaps are still undecided.
        assert!(
            counted <= sent && counted >= sent - REORDER_WINDOW / 10 - 1,
            "{counted} of {sent}"
        );
        let mut gaps = SequenceGaps::default();
        assert_eq!(gaps.push(100), 0);
        assert_eq!(gaps.push(105), 0, "4 missing, not decided yet");
        assert_eq!(gaps.push(105 + REORDER_WINDOW as u16), 4);
    }

    #[test]
    fn reordered_and_duplicated_packets_are_no_loss() {
        let mut seqs: Vec<u16> = run(65500, 1000).collect();
        for pair in seqs.chunks_mut(7) {
            pair.reverse();
        }
        let mut with_duplicates = Vec::new();
        for (i, s) in seqs.iter().enumerate() {
            with_duplicates.push(*s);
            if i % 5 == 0 {
                with_duplicates.push(*s);
            }
        }
        assert_eq!(lost(with_duplicates), 0);
    }

    #[test]
    fn a_packet_later_than_the_window_stays_lost() {
        let mut seqs: Vec<u16> = (0..400).filter(|s| *s != 10).collect();
        seqs.insert(300, 10);
        assert_eq!(lost(seqs), 1);
    }

    #[test]
    fn a_restarted_sender_is_a_new_sequence_and_a_stray_packet_is_ignored() {
        let restart = run(1000, 500).chain(run(40000, 500));
        assert_eq!(lost(restart), 0);
        let stray = run(1000, 300).chain([30000]).chain(run(1300, 300));
        assert_eq!(lost(stray), 0);
    }

    #[test]
    fn sequence_numbers_are_read_from_rtp_headers_only() {
        let mut packet = [0u8; 12];
        packet[0] = 0x80;
        packet[2..4].copy_from_slice(&0xBEEFu16.to_be_bytes());
        assert_eq!(sequence_number(&packet), Some(0xBEEF));
        assert_eq!(sequence_number(&packet[..8]), None);
        packet[0] = 0x47;
        assert_eq!(sequence_number(&packet), None, "a TS packet is not RTP");
    }
}
