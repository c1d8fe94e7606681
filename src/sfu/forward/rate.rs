//! The incoming bitrate of one publisher layer, measured on explicit time.
//!
//! Invariants:
//! - `bps` is the on-the-wire rate (payload plus a fixed per-packet overhead for
//!   RTP, SRTP, UDP and IP headers) over the last completed window, smoothed.
//! - A layer that stopped arriving keeps its last rate (the allocator still
//!   needs to know what resuming it would cost) but is not `live`.

use std::time::{Duration, Instant};

/// Length of one measuring window.
pub const WINDOW: Duration = Duration::from_millis(500);
/// A layer with no packet for this long is not live.
pub const LIVE_TIMEOUT: Duration = Duration::from_millis(1500);
/// RTP header + extensions, SRTP tag, UDP and IPv4 headers, per packet.
pub const PACKET_OVERHEAD: u64 = 60;

#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    window_start: Option<Instant>,
    bytes: u64,
    bps: u64,
    last_packet: Option<Instant>,
}

impl RateMeter {
    pub fn add(&mut self, now: Instant, payload_len: usize) {
        let start = *self.window_start.get_or_insert(now);
        self.bytes += payload_len as u64 + PACKET_OVERHEAD;
        self.last_packet = Some(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= WINDOW {
            let measured = self.bytes * 8 * 1000 / elapsed.as_millis().max(1) as u64;
            self.bps = if self.bps == 0 { measured } else { (self.bps + measured) / 2 };
            self.window_start = Some(now);
            self.bytes = 0;
        }
    }

    /// The smoothed rate in bits per second (0 until a window completed).
    pub fn bps(&self) -> u64 {
        self.bps
    }

    pub fn is_live(&self, now: Instant) -> bool {
        self.last_packet.is_some_and(|t| now.saturating_duration_since(t) < LIVE_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_steady_stream() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        // 100 packets/s of 1140 bytes payload = 100 * 1200 * 8 = 960 kbit/s on the wire.
        for i in 0..300u64 {
            m.add(t0 + Duration::from_millis(i * 10), 1140);
        }
        let bps = m.bps();
        assert!((900_000..=1_020_000).contains(&bps), "{bps}");
        assert!(m.is_live(t0 + Duration::from_secs(3)));
        assert!(!m.is_live(t0 + Duration::from_secs(5)));
        assert_eq!(m.bps(), bps, "a stopped layer keeps its last rate");
    }

    #[test]
    fn nothing_measured_before_a_window() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        m.add(t0, 1000);
        assert_eq!(m.bps(), 0);
        assert!(m.is_live(t0));
        assert!(!RateMeter::default().is_live(t0));
    }
}
