//! Places each recorded packet of one track on the lesson's clock, without jumps.
//!
//! A packet's capture instant comes from the publisher's sender reports once its
//! track has had one, and is its arrival time before that (`TapPacket::captured`).
//! The two differ by the track's delivery delay, so switching from one to the other
//! inside a track would make its timeline jump: forward jumps become slow drifts in
//! the recorder's jitter buffer, backward jumps break the part. So:
//!
//! - **Holding**: a track starts (and a new publisher instance restarts) by holding
//!   its packets until one is stamped by sender reports; the held packets are then
//!   placed back from it along the RTP clock, and everything flows sender-stamped.
//! - If no sender report comes within [`HOLD_MAX`] (or [`HOLD_PACKETS`]), the held
//!   packets go out at their arrival times and the track stays on arrival time; a
//!   report that comes later is then applied with the offset that keeps the line
//!   continuous (alignment with other tracks is then as good as arrival times).
//!
//! Invariants: the stamps of one track never jump at a change of stamping source;
//! packets leave in the order they came; at most `HOLD_PACKETS` are held.

use std::time::{Duration, Instant};

use crate::sfu::tap::TapPacket;

/// Longest a track's packets wait for its first sender report.
pub const HOLD_MAX: Duration = Duration::from_secs(3);
/// Most packets held (3 s of a 2.5 Mbit/s video is about 800).
pub const HOLD_PACKETS: usize = 2048;

#[derive(Debug)]
enum State {
    Holding { held: Vec<TapPacket> },
    /// Sender-report stamps, plus an offset (ns) kept since a late switch from arrival.
    Sender { offset_ns: i128 },
    Arrival,
}

/// The stamping state of one track.
#[derive(Debug)]
pub struct Stamper {
    state: State,
    clock_rate: u32,
    /// The last packet out: its RTP time and stamp.
    last: Option<(u32, Instant)>,
}

impl Stamper {
    pub fn new(clock_rate: u32) -> Stamper {
        Stamper { state: State::Holding { held: Vec::new() }, clock_rate: clock_rate.max(1), last: None }
    }

    /// Takes one packet; appends to `out` every packet now ready, with its stamp.
    pub fn push(&mut self, p: TapPacket, out: &mut Vec<(TapPacket, Instant)>) {
        match &mut self.state {
            State::Holding { held } if p.captured_by_sender => {
                let held = std::mem::take(held);
                self.release_from(held, p, out);
            }
            State::Holding { held } => {
                let waited = held.first().map_or(Duration::ZERO, |h| p.arrival.saturating_duration_since(h.arrival));
                held.push(p);
                if waited >= HOLD_MAX || held.len() >= HOLD_PACKETS {
                    let held = std::mem::take(held);
                    self.state = State::Arrival;
                    held.into_iter().for_each(|h| self.emit(h.arrival, h, out));
                }
            }
            State::Sender { .. } if !p.captured_by_sender => self.state = State::Holding { held: vec![p] },
            State::Sender { offset_ns } => {
                let at = shift(p.captured, *offset_ns);
                self.emit(at, p, out);
            }
            State::Arrival if p.captured_by_sender => {
                let offset_ns = self.continuing(&p).map_or(0, |expected| signed_ns(expected, p.captured));
                self.state = State::Sender { offset_ns };
                self.push(p, out);
            }
            State::Arrival => self.emit(p.arrival, p, out),
        }
    }

    /// The first sender-stamped packet places the held ones back along the RTP clock.
    fn release_from(&mut self, held: Vec<TapPacket>, anchor: TapPacket, out: &mut Vec<(TapPacket, Instant)>) {
        for h in held {
            let back_ns = i128::from(anchor.ts.wrapping_sub(h.ts) as i32) * 1_000_000_000 / i128::from(self.clock_rate);
            self.emit(shift(anchor.captured, -back_ns), h, out);
        }
        self.state = State::Sender { offset_ns: 0 };
        self.emit(anchor.captured, anchor, out);
    }

    /// Where `p` falls on the line of the last packet out, by RTP time.
    fn continuing(&self, p: &TapPacket) -> Option<Instant> {
        let (ts, at) = self.last?;
        let ahead_ns = i128::from(p.ts.wrapping_sub(ts) as i32) * 1_000_000_000 / i128::from(self.clock_rate);
        Some(shift(at, ahead_ns))
    }

    fn emit(&mut self, at: Instant, p: TapPacket, out: &mut Vec<(TapPacket, Instant)>) {
        self.last = Some((p.ts, at));
        out.push((p, at));
    }
}

fn signed_ns(a: Instant, b: Instant) -> i128 {
    match a.checked_duration_since(b) {
        Some(d) => d.as_nanos() as i128,
        None => -(b.duration_since(a).as_nanos() as i128),
    }
}

fn shift(t: Instant, ns: i128) -> Instant {
    let d = Duration::from_nanos(ns.unsigned_abs().min(u128::from(u64::MAX)) as u64);
    if ns >= 0 { t.checked_add(d).unwrap_or(t) } else { t.checked_sub(d).unwrap_or(t) }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::sfu::peer::CodecKey;
    use crate::sfu::tap::TapId;

    const MS: Duration = Duration::from_millis(1);

    /// A 90 kHz packet `i` frames (33 ms) in, arriving `delay` after capture.
    fn pkt(t0: Instant, i: u32, delay: Duration, by_sender: bool) -> TapPacket {
        let captured = t0 + MS * (33 * i);
        TapPacket {
            tap: TapId(1),
            codec: CodecKey { codec: str0m::format::Codec::H264, profile_level_id: None, clock_rate: 90_000 },
            seq: u64::from(i),
            ts: 1000 + i * 2970,
            marker: true,
            payload: Arc::from(&[0u8][..]),
            captured: if by_sender { captured } else { captured + delay },
            captured_by_sender: by_sender,
            arrival: captured + delay,
        }
    }

    fn run(s: &mut Stamper, packets: impl IntoIterator<Item = TapPacket>) -> Vec<(u64, Instant)> {
        let mut out = Vec::new();
        packets.into_iter().for_each(|p| s.push(p, &mut out));
        out.into_iter().map(|(p, at)| (p.seq, at)).collect()
    }

    fn close(a: Instant, b: Instant) -> bool {
        signed_ns(a, b).abs() < 1_000_000
    }

    #[test]
    fn packets_before_the_first_report_are_placed_back_from_it() {
        let t0 = Instant::now();
        let delay = MS * 150;
        let mut s = Stamper::new(90_000);
        let out = run(&mut s, (0..10).map(|i| pkt(t0, i, delay, i >= 6)));
        assert_eq!(out.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), (0..10).collect::<Vec<u64>>());
        for (seq, at) in out {
            assert!(close(at, t0 + MS * (33 * seq as u32)), "packet {seq} at its capture time, not its arrival");
        }
    }

    #[test]
    fn a_new_publisher_instance_is_held_again() {
        let t0 = Instant::now();
        let mut s = Stamper::new(90_000);
        let first = run(&mut s, [pkt(t0, 0, MS * 50, true), pkt(t0, 1, MS * 50, false), pkt(t0, 2, MS * 50, false)]);
        assert_eq!(first.len(), 1, "unstamped packets after stamped ones wait for a report");
        let rest = run(&mut s, [pkt(t0, 3, MS * 50, true)]);
        assert_eq!(rest.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(rest.iter().all(|(seq, at)| close(*at, t0 + MS * (33 * *seq as u32))));
    }

    #[test]
    fn without_reports_arrival_time_is_used_and_a_late_report_does_not_jump() {
        let t0 = Instant::now();
        let delay = MS * 200;
        let mut s = Stamper::new(90_000);
        let n = (HOLD_MAX.as_millis() / 33) as u32 + 2;
        let out = run(&mut s, (0..n).map(|i| pkt(t0, i, delay, false)));
        assert!(!out.is_empty(), "released after waiting {HOLD_MAX:?}");
        assert!(out.iter().all(|(seq, at)| close(*at, t0 + MS * (33 * *seq as u32) + delay)), "at arrival time");
        let later = run(&mut s, [pkt(t0, n, delay, true), pkt(t0, n + 1, delay, true)]);
        for (seq, at) in later {
            assert!(close(at, t0 + MS * (33 * seq as u32) + delay), "packet {seq} continues the line");
        }
    }

    #[test]
    fn holding_is_bounded_by_packets_too() {
        let t0 = Instant::now();
        let mut s = Stamper::new(90_000);
        let mut out = Vec::new();
        for i in 0..HOLD_PACKETS as u32 {
            let mut p = pkt(t0, 0, MS, false);
            p.seq = u64::from(i);
            s.push(p, &mut out);
        }
        assert_eq!(out.len(), HOLD_PACKETS);
    }
}
