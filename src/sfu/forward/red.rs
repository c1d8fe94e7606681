//! Audio redundancy (RFC 2198 RED) toward subscribers that negotiated it: each
//! Opus packet goes out with the previous one of the same track carried along,
//! so a single lost packet costs the listener nothing (no retransmission round
//! trip, which audio cannot wait for on a long link).
//!
//! Invariants:
//! - The primary block is always the current packet, unchanged; the redundant
//!   block is the previous packet *as sent on this down track* (rewritten
//!   timestamps), so both share one timeline.
//! - Redundancy is carried only when RFC 2198's fields can hold it: timestamp
//!   offset in 1..2^14 and block length below 2^10; otherwise the packet goes
//!   out with its primary block alone (still valid RED).
//! - Publishers never send RED to this server (it is negotiated on subscriber
//!   connections only), so everything received stays plain Opus for the
//!   recorder and for subscribers without RED.

use std::sync::Arc;

/// The largest timestamp offset and block length RFC 2198 can express.
const MAX_TS_OFFSET: u32 = (1 << 14) - 1;
const MAX_BLOCK_LEN: usize = (1 << 10) - 1;

/// The previous packet of one audio down track.
#[derive(Debug, Default)]
pub struct RedHistory {
    prev: Option<(u32, Arc<[u8]>)>,
}

impl RedHistory {
    /// The RED payload for a packet with output timestamp `ts`, whose block
    /// payload type is `primary_pt` (the subscriber's Opus payload type).
    pub fn wrap(&mut self, ts: u32, primary_pt: u8, payload: &Arc<[u8]>) -> Arc<[u8]> {
        let redundant = self.prev.as_ref().filter(|(prev_ts, data)| {
            let offset = ts.wrapping_sub(*prev_ts);
            (1..=MAX_TS_OFFSET).contains(&offset) && data.len() <= MAX_BLOCK_LEN
        });
        let mut out = Vec::with_capacity(5 + payload.len() + redundant.map_or(0, |(_, d)| d.len()));
        if let Some((prev_ts, data)) = redundant {
            let offset = ts.wrapping_sub(*prev_ts);
            let header = 0x8000_0000 | (u32::from(primary_pt & 0x7f) << 24) | (offset << 10) | data.len() as u32;
            out.extend_from_slice(&header.to_be_bytes());
        }
        out.push(primary_pt & 0x7f);
        if let Some((_, data)) = redundant {
            out.extend_from_slice(data);
        }
        out.extend_from_slice(payload);
        self.prev = Some((ts, payload.clone()));
        out.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pt, ts offset, data) of each block, primary last.
    fn parse(red: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
        let mut headers = Vec::new();
        let mut i = 0;
        while red[i] & 0x80 != 0 {
            let h = u32::from_be_bytes([red[i], red[i + 1], red[i + 2], red[i + 3]]);
            headers.push(((h >> 24) as u8 & 0x7f, (h >> 10) & 0x3fff, Some((h & 0x3ff) as usize)));
            i += 4;
        }
        headers.push((red[i] & 0x7f, 0, None));
        i += 1;
        headers
            .into_iter()
            .map(|(pt, off, len)| {
                let len = len.unwrap_or(red.len() - i);
                let data = red[i..i + len].to_vec();
                i += len;
                (pt, off, data)
            })
            .collect()
    }

    #[test]
    fn carries_the_previous_packet_as_redundancy() {
        let mut h = RedHistory::default();
        let first = h.wrap(1000, 111, &Arc::from(&[1u8, 2, 3][..]));
        assert_eq!(parse(&first), vec![(111, 0, vec![1, 2, 3])], "first packet: primary only");
        let second = h.wrap(1960, 111, &Arc::from(&[4u8, 5][..]));
        assert_eq!(parse(&second), vec![(111, 960, vec![1, 2, 3]), (111, 0, vec![4, 5])]);
    }

    #[test]
    fn leaves_out_what_the_fields_cannot_hold() {
        let mut h = RedHistory::default();
        h.wrap(0, 111, &Arc::from(vec![7u8; 1100]));
        let next = h.wrap(960, 111, &Arc::from(&[1u8][..]));
        assert_eq!(parse(&next), vec![(111, 0, vec![1])], "block too long for 10 bits");
        h.wrap(2000, 111, &Arc::from(&[2u8][..]));
        let late = h.wrap(2000 + 20_000, 111, &Arc::from(&[3u8][..]));
        assert_eq!(parse(&late), vec![(111, 0, vec![3])], "offset too large for 14 bits");
        let back = h.wrap(100, 111, &Arc::from(&[4u8][..]));
        assert_eq!(parse(&back), vec![(111, 0, vec![4])], "timestamps going back carry nothing");
    }
}
