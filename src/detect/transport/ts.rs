//! MPEG-TS continuity counter check on the bytes entering `tsdemux`.
//!
//! GStreamer 1.22's `tsdemux` notices continuity errors but only says so in debug logs, and no
//! element or crate exposes a count without demuxing. Counting needs just the 4-byte packet
//! header: PID, continuity counter, adaptation field control and the discontinuity indicator
//! (ISO/IEC 13818-1 §2.4.3.3), so this reads those and nothing else.

const PACKET: usize = 188;
const SYNC: u8 = 0x47;
const NULL_PID: usize = 0x1FFF;
const UNKNOWN: u8 = 0xFF;

/// Per-PID continuity state of one transport stream.
pub struct ContinuityCheck {
    last: Box<[u8; 8192]>,
    /// The start of a packet split across two buffers.
    partial: Vec<u8>,
}

impl Default for ContinuityCheck {
    fn default() -> Self {
        Self {
            last: Box::new([UNKNOWN; 8192]),
            partial: Vec::with_capacity(PACKET),
        }
    }
}

impl ContinuityCheck {
    /// Forgets every counter: after a discontinuity the demuxer was told about (a new segment
    /// that does not follow the last one, a flush), a jump is expected.
    pub fn reset(&mut self) {
        self.last.fill(UNKNOWN);
        self.partial.clear();
    }

    /// Reads the packets in `data` (which continues the previous call's data) and returns the
    /// number of continuity errors found.
    pub fn push(&mut self, mut data: &[u8]) -> u64 {
        let mut errors = 0;
        if !self.partial.is_empty() {
            let need = PACKET - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < PACKET {
                return 0;
            }
            let packet: [u8; PACKET] = self.partial[..].try_into().unwrap_or([0; PACKET]);
            self.partial.clear();
            errors += self.packet(&packet);
        }
        while !data.is_empty() {
            if data[0] != SYNC {
                // Lost alignment (garbage, a truncated packet): find the next sync byte that
                // a packet later is followed by another, or by the end of the data.
                match (1..data.len())
                    .find(|&i| data[i] == SYNC && data.get(i + PACKET).is_none_or(|&b| b == SYNC))
                {
                    Some(i) => data = &data[i..],
                    None => return errors,
                }
                continue;
            }
            if data.len() < PACKET {
                self.partial.extend_from_slice(data);
                break;
            }
            errors += self.packet(&data[..PACKET]);
            data = &data[PACKET..];
        }
        errors
    }

    fn packet(&mut self, p: &[u8]) -> u64 {
        if p[0] != SYNC || p[1] & 0x80 != 0 {
            // Not a packet, or the transport error indicator: its header cannot be trusted.
            return 0;
        }
        let pid = (usize::from(p[1] & 0x1F) << 8) | usize::from(p[2]);
        if pid == NULL_PID {
            return 0;
        }
        let adaptation = p[3] & 0x20 != 0;
        let payload = p[3] & 0x10 != 0;
        let cc = p[3] & 0x0F;
        let discontinuity = adaptation && p[4] > 0 && p[5] & 0x80 != 0;
        let last = self.last[pid];
        if discontinuity || last == UNKNOWN {
            self.last[pid] = cc;
            return 0;
        }
        // The counter only advances with a payload; one duplicate packet is allowed.
        if !payload || cc == last {
            return 0;
        }
        self.last[pid] = cc;
        u64::from(cc != (last + 1) & 0x0F)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, cc: u8) -> [u8; PACKET] {
        let mut p = [0xFFu8; PACKET];
        p[0] = SYNC;
        p[1] = (pid >> 8) as u8 & 0x1F;
        p[2] = pid as u8;
        p[3] = 0x10 | (cc & 0x0F);
        p
    }

    fn stream(pid: u16, ccs: impl IntoIterator<Item = u8>) -> Vec<u8> {
        ccs.into_iter().flat_map(|cc| packet(pid, cc)).collect()
    }

    #[test]
    fn a_continuous_stream_split_anywhere_has_no_errors() {
        let data = stream(0x100, (0..40).map(|i| i % 16));
        for split in [1, 100, 188, 189, 1000] {
            let mut check = ContinuityCheck::default();
            let (a, b) = data.split_at(split);
            assert_eq!(check.push(a) + check.push(b), 0, "split at {split}");
        }
    }

    #[test]
    fn lost_packets_count_once_per_gap_and_per_pid() {
        let mut check = ContinuityCheck::default();
        let mut data = stream(0x100, [0, 1, 2, 5, 6]);
        data.extend(stream(0x101, [7, 8, 10]));
        assert_eq!(check.push(&data), 2);
    }

    #[test]
    fn duplicates_discontinuity_flags_and_null_packets_are_not_errors() {
        let mut check = ContinuityCheck::default();
        let mut data = stream(0x100, [3, 4, 4, 5]);
        let mut flagged = packet(0x100, 12);
        flagged[3] |= 0x20;
        flagged[4] = 1;
        flagged[5] = 0x80;
        data.extend(flagged);
        data.extend(stream(0x100, [13]));
        data.extend(stream(0x1FFF, [9, 2]));
        assert_eq!(check.push(&data), 0);
    }

    #[test]
    fn garbage_between_packets_is_skipped_and_reset_forgets_counters() {
        let mut check = ContinuityCheck::default();
        let mut data = stream(0x100, [0, 1]);
        data.extend([0x12u8; 77]);
        data.extend(stream(0x100, [2, 3]));
        assert_eq!(check.push(&data), 0);
        check.reset();
        assert_eq!(check.push(&stream(0x100, [9, 10])), 0);
    }
}
