//! Per-subscriber RTP rewriting: one continuous stream out of changing sources.
//!
//! A subscriber's track is bound to a slot (`main/camera`, `spotlight/mic`, ...)
//! whose publisher can reconnect or be replaced. The rewriter maps each incoming
//! packet's extended sequence number and RTP timestamp onto the subscriber's own
//! numbering.
//!
//! Invariants:
//! - Output sequence numbers start below 2^15 (ROC 0, so SRTP needs no out-of-band
//!   rollover signalling) and continue at `highest sent + 1` after every source
//!   switch: a switch never leaves a gap the subscriber would NACK.
//! - Within one source the offset is fixed, so gaps from real loss stay gaps
//!   (NACK keeps working) and reordered packets keep their order.
//! - After a switch the first output timestamp is the last one plus the wall time
//!   that passed (at least 1 tick): timestamps never go backwards across a switch.
//! - A packet older than the first packet forwarded from the current source is
//!   refused (`BeforeSwitch`): it belongs to the time before the switch.

use std::time::Instant;

/// One incoming packet, as the rewriter needs it.
#[derive(Debug, Clone, Copy)]
pub struct SourcePacket {
    /// Identity of the publisher track instance; a new value means a new source.
    pub source: u64,
    /// Extended (rollover-free) sequence number at the publisher.
    pub seq: u64,
    /// RTP timestamp at the publisher.
    pub ts: u32,
    /// RTP clock rate of the codec (90 000 for video, 48 000 for Opus).
    pub clock_rate: u32,
    /// When the packet arrived.
    pub at: Instant,
}

/// Sequence number and timestamp for the subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    pub seq: u64,
    pub ts: u32,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    source: u64,
    first_in_seq: u64,
    seq_offset: u64,
    ts_offset: u32,
}

#[derive(Debug, Clone, Copy)]
struct Highest {
    seq: u64,
    ts: u32,
    at: Instant,
}

#[derive(Debug)]
pub struct RtpRewriter {
    initial_seq: u64,
    current: Option<Current>,
    highest: Option<Highest>,
}

/// The packet predates the current source (see module invariants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BeforeSwitch;

impl RtpRewriter {
    /// `initial_seq` is the first sequence number the subscriber sees (taken mod 2^15).
    pub fn new(initial_seq: u16) -> Self {
        RtpRewriter { initial_seq: u64::from(initial_seq & 0x7fff), current: None, highest: None }
    }

    /// Whether `source` differs from the source currently forwarded.
    pub fn is_switch(&self, source: u64) -> bool {
        self.current.is_none_or(|c| c.source != source)
    }

    pub fn rewrite(&mut self, p: SourcePacket) -> Result<Rewritten, BeforeSwitch> {
        if self.is_switch(p.source) {
            self.switch_to(&p);
        }
        // is_switch() above guarantees `current` is set.
        let c = self.current.expect("set by switch_to");
        if p.seq < c.first_in_seq {
            return Err(BeforeSwitch);
        }
        let out = Rewritten { seq: p.seq.wrapping_add(c.seq_offset), ts: p.ts.wrapping_add(c.ts_offset) };
        self.note_sent(out, p.at);
        Ok(out)
    }

    fn switch_to(&mut self, p: &SourcePacket) {
        let (out_seq, out_ts) = match self.highest {
            None => (self.initial_seq, p.ts),
            Some(h) => (h.seq + 1, h.ts.wrapping_add(elapsed_ticks(h.at, p.at, p.clock_rate))),
        };
        self.current = Some(Current {
            source: p.source,
            first_in_seq: p.seq,
            seq_offset: out_seq.wrapping_sub(p.seq),
            ts_offset: out_ts.wrapping_sub(p.ts),
        });
    }

    fn note_sent(&mut self, out: Rewritten, at: Instant) {
        match &mut self.highest {
            Some(h) if out.seq <= h.seq => {}
            _ => self.highest = Some(Highest { seq: out.seq, ts: out.ts, at }),
        }
    }
}

/// Wall time between two instants in RTP ticks, at least 1.
fn elapsed_ticks(from: Instant, to: Instant, clock_rate: u32) -> u32 {
    let micros = to.saturating_duration_since(from).as_micros() as u64;
    let ticks = micros * u64::from(clock_rate) / 1_000_000;
    ticks.clamp(1, u64::from(u32::MAX / 2)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(source: u64, seq: u64, ts: u32, at: Instant) -> SourcePacket {
        SourcePacket { source, seq, ts, clock_rate: 90_000, at }
    }

    #[test]
    fn first_packet_starts_at_initial_seq_and_keeps_offset() {
        let t = Instant::now();
        let mut r = RtpRewriter::new(100);
        assert_eq!(r.rewrite(pkt(1, 70_000, 5000, t)).unwrap(), Rewritten { seq: 100, ts: 5000 });
        assert_eq!(r.rewrite(pkt(1, 70_001, 8000, t)).unwrap().seq, 101);
        // Real loss stays a gap so the subscriber can NACK it.
        assert_eq!(r.rewrite(pkt(1, 70_005, 8000, t)).unwrap().seq, 105);
        // A reordered packet keeps its place.
        assert_eq!(r.rewrite(pkt(1, 70_003, 8000, t)).unwrap().seq, 103);
    }

    #[test]
    fn publisher_restart_continues_without_gap_and_time_moves_forward() {
        let t0 = Instant::now();
        let mut r = RtpRewriter::new(1);
        for i in 0..10u64 {
            r.rewrite(pkt(1, 40_000 + i, 1_000_000 + i as u32 * 3000, t0)).unwrap();
        }
        let last = r.rewrite(pkt(1, 40_010, 1_030_000, t0)).unwrap();
        // The publisher reconnects 2 s later with fresh, lower numbers.
        let t1 = t0 + Duration::from_secs(2);
        let first = r.rewrite(pkt(2, 12, 77, t1)).unwrap();
        assert_eq!(first.seq, last.seq + 1);
        assert_eq!(first.ts.wrapping_sub(last.ts), 180_000);
        let next = r.rewrite(pkt(2, 13, 3077, t1)).unwrap();
        assert_eq!((next.seq, next.ts.wrapping_sub(first.ts)), (first.seq + 1, 3000));
    }

    #[test]
    fn switch_back_and_forth_is_continuous() {
        let t = Instant::now();
        let mut r = RtpRewriter::new(0);
        let mut prev = r.rewrite(pkt(1, 10, 0, t)).unwrap();
        for (i, source) in [2u64, 1, 3, 2].into_iter().enumerate() {
            let at = t + Duration::from_millis(40 * (i as u64 + 1));
            let out = r.rewrite(pkt(source, 500 * source + i as u64 * 7, 9, at)).unwrap();
            assert_eq!(out.seq, prev.seq + 1);
            assert!(out.ts.wrapping_sub(prev.ts) < u32::MAX / 2 && out.ts != prev.ts);
            prev = out;
        }
    }

    #[test]
    fn late_packet_from_before_switch_is_refused() {
        let t = Instant::now();
        let mut r = RtpRewriter::new(0);
        r.rewrite(pkt(1, 100, 0, t)).unwrap();
        r.rewrite(pkt(2, 50, 0, t)).unwrap();
        assert_eq!(r.rewrite(pkt(2, 49, 0, t)), Err(BeforeSwitch));
    }

    #[test]
    fn switch_with_no_elapsed_time_still_advances_timestamp() {
        let t = Instant::now();
        let mut r = RtpRewriter::new(0);
        let a = r.rewrite(pkt(1, 1, 500, t)).unwrap();
        let b = r.rewrite(pkt(2, 1, 9, t)).unwrap();
        assert_eq!(b.ts, a.ts + 1);
    }

    #[test]
    fn initial_seq_is_below_rollover_risk() {
        let t = Instant::now();
        let mut r = RtpRewriter::new(u16::MAX);
        assert!(r.rewrite(pkt(1, 9, 0, t)).unwrap().seq < 1 << 15);
    }
}
