//! Playout delay for a subscriber's video on a lossy link, sent in the
//! playout-delay RTP header extension (webrtc.org `rtp-hdrext/playout-delay`).
//!
//! A browser's video jitter buffer follows network jitter, not retransmission:
//! on a link losing a few percent, a frame that waits for a retransmitted packet
//! reaches the renderer one round trip or more late and the picture freezes.
//! Measured on an 80 ms round trip with 3 % loss: about one lost packet in ten
//! froze the video for ~290 ms, and the freezes lined up with the losses, not
//! with keyframes or layer switches. Asking the receiver for a minimum delay that
//! covers two retransmission rounds hides those, at the price of that much
//! latency, on lossy links only.
//!
//! Invariants:
//! - Pure, driven by the connection's stats (explicit time).
//! - A lossy interval sets the minimum to `RETRANSMISSION_ROUNDS` smoothed round
//!   trips plus `DETECTION_MS`, clamped to `[FLOOR_MS, CEILING_MS]` (smoothed, so
//!   one queueing spike does not add its delay for good); clean intervals keep it,
//!   and it falls back to 0 only after `CLEAR_AFTER` without a lossy interval (so
//!   the delay does not swing with each second's loss).
//! - Nothing is sent before a link was ever lossy; from then on every video
//!   packet carries the current value (0 included, which releases the receiver).

use std::time::{Duration, Instant};

use str0m::media::MediaTime;

/// Retransmission rounds the delay covers: the lost packet, and its NACK or retransmission lost once more.
const RETRANSMISSION_ROUNDS: u32 = 2;
/// Time to notice a loss (the next packet, up to a frame later) and to answer the NACK.
const DETECTION_MS: u64 = 60;
const FLOOR_MS: u64 = 100;
const CEILING_MS: u64 = 400;
/// Clean time after which the minimum delay is released.
pub const CLEAR_AFTER: Duration = Duration::from_secs(20);
/// The maximum sent with the minimum: the browser's own default ceiling.
const MAX_DELAY_MS: u64 = 10_000;

#[derive(Debug, Clone, Default)]
pub struct PlayoutDelay {
    min_ms: u64,
    last_lossy: Option<Instant>,
    /// Round trip time, smoothed over stats intervals (1/4 of each new sample).
    srtt_ms: Option<u64>,
}

impl PlayoutDelay {
    /// One stats interval: whether it was lossy (`LossCap::is_lossy`: more than
    /// `LOW_LOSS` lost toward the subscriber) and the round trip time.
    pub fn on_stats(&mut self, now: Instant, lossy: bool, rtt: Option<Duration>) {
        if let Some(sample) = rtt.map(|r| r.as_millis() as u64) {
            self.srtt_ms = Some(self.srtt_ms.map_or(sample, |s| (3 * s + sample) / 4));
        }
        if lossy {
            self.last_lossy = Some(now);
            let wanted = (self.srtt_ms.unwrap_or(0) * u64::from(RETRANSMISSION_ROUNDS) + DETECTION_MS).clamp(FLOOR_MS, CEILING_MS);
            self.min_ms = wanted.div_ceil(10) * 10;
        } else if self.last_lossy.is_some_and(|t| now.saturating_duration_since(t) >= CLEAR_AFTER) {
            self.min_ms = 0;
        }
    }

    /// The minimum delay asked for now (0: none).
    pub fn min_ms(&self) -> u64 {
        self.min_ms
    }

    /// (min, max) for the header extension of a video packet; `None` on a link never lossy.
    pub fn extension(&self) -> Option<(MediaTime, MediaTime)> {
        self.last_lossy?;
        Some((MediaTime::from_hundredths(self.min_ms / 10), MediaTime::from_hundredths(MAX_DELAY_MS / 10)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_clean_link_gets_no_extension() {
        let t0 = Instant::now();
        let mut p = PlayoutDelay::default();
        for i in 0..30 {
            p.on_stats(t0 + i * 1000 * MS, false, Some(80 * MS));
        }
        p.on_stats(t0 + 31_000 * MS, false, None);
        assert_eq!(p.extension(), None);
    }

    #[test]
    fn loss_raises_it_to_two_round_trips_at_once() {
        let t0 = Instant::now();
        let mut p = PlayoutDelay::default();
        p.on_stats(t0, true, Some(80 * MS));
        assert_eq!(p.min_ms(), 220);
        let (min, max) = p.extension().expect("lossy");
        assert_eq!(min, MediaTime::from_hundredths(22));
        assert_eq!(max, MediaTime::from_hundredths(1000));
    }

    #[test]
    fn it_is_clamped() {
        let t0 = Instant::now();
        let mut short = PlayoutDelay::default();
        short.on_stats(t0, true, Some(5 * MS));
        assert_eq!(short.min_ms(), FLOOR_MS);
        let mut long = PlayoutDelay::default();
        long.on_stats(t0, true, Some(600 * MS));
        assert_eq!(long.min_ms(), CEILING_MS);
        let mut unknown = PlayoutDelay::default();
        unknown.on_stats(t0, true, None);
        assert_eq!(unknown.min_ms(), FLOOR_MS);
    }

    #[test]
    fn it_follows_the_smoothed_round_trip() {
        let t0 = Instant::now();
        let mut p = PlayoutDelay::default();
        p.on_stats(t0, true, Some(80 * MS));
        p.on_stats(t0 + 1000 * MS, true, Some(240 * MS));
        assert_eq!(p.min_ms(), 300, "one spike moves it by a quarter: srtt 120 ms");
        for i in 2..20 {
            p.on_stats(t0 + i * 1000 * MS, true, Some(80 * MS));
        }
        assert_eq!(p.min_ms(), 220);
    }

    #[test]
    fn it_holds_through_clean_seconds_and_is_released_after_clear_after() {
        let t0 = Instant::now();
        let mut p = PlayoutDelay::default();
        p.on_stats(t0, true, Some(80 * MS));
        p.on_stats(t0 + 1000 * MS, true, Some(80 * MS));
        assert_eq!(p.min_ms(), 220);
        p.on_stats(t0 + 10_000 * MS, false, Some(80 * MS));
        assert_eq!(p.min_ms(), 220, "clean seconds in between do not lower it");
        p.on_stats(t0 + 1000 * MS + CLEAR_AFTER, false, Some(80 * MS));
        assert_eq!(p.min_ms(), 0);
        assert_eq!(p.extension().map(|(min, _)| min), Some(MediaTime::from_hundredths(0)), "0 is sent to release the receiver");
    }
}
