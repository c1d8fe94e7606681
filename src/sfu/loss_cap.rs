//! A loss-based ceiling on a subscriber's bandwidth estimate.
//!
//! str0m's delay-based estimate takes several seconds to fall when a link's
//! capacity collapses behind a short queue (the queue overflows before delay
//! builds up). Meanwhile most packets, audio included, are lost. This ceiling
//! reacts within one stats interval: when more than `HIGH_LOSS` of what was sent
//! in the last second was lost, the ceiling drops to what got through, with a
//! margin. It is lifted after `CLEAR_INTERVALS` intervals in a row whose loss is
//! no more than a weak link's random loss (`PROBE_LOSS`), or as soon as str0m's
//! own estimate has come down below it; from then on str0m's estimate governs.
//!
//! Invariants: pure (explicit time); only ever lowers the estimate it is applied to.

use std::time::{Duration, Instant};

/// Loss above which the ceiling drops (fraction of packets, per second).
pub const HIGH_LOSS: f32 = 0.10;
/// Loss below which the ceiling rises.
pub const LOW_LOSS: f32 = 0.02;
/// Loss above which nothing probes for more bandwidth.
pub const PROBE_LOSS: f32 = 0.05;
/// Share of the delivered rate the ceiling drops to (percent).
const DELIVERED_MARGIN: u64 = 85;
/// Intervals of moderate loss in a row that lift the ceiling.
const CLEAR_INTERVALS: u32 = 2;
/// After the ceiling is lifted, the link counts as recovering this long.
pub const RECOVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
pub struct LossCap {
    ceiling: Option<u64>,
    last: Option<(Instant, u64)>,
    last_loss: f32,
    clear_intervals: u32,
    /// Stats intervals in a row in which media went out but no feedback came back.
    silent_intervals: u32,
    /// When the ceiling was last lifted.
    lifted_at: Option<Instant>,
}

/// Intervals without any congestion feedback after which a receiver is taken
/// to send none (a player without transport-wide CC): see `Sfu::on_stats`.
pub const SILENT_INTERVALS: u32 = 3;

impl LossCap {
    /// One stats interval: total bytes sent so far, the loss over the last
    /// second (from transport-wide CC feedback), and the current estimate.
    pub fn on_stats(&mut self, at: Instant, bytes_sent: u64, loss: Option<f32>, estimate: Option<u64>) {
        let Some((t0, b0)) = self.last.replace((at, bytes_sent)) else { return };
        let millis = at.saturating_duration_since(t0).as_millis() as u64;
        let sending = bytes_sent > b0;
        self.silent_intervals = if loss.is_none() && sending { self.silent_intervals + 1 } else { 0 };
        let (Some(loss), true) = (loss, millis > 0) else { return };
        self.last_loss = loss;
        let sent_bps = bytes_sent.saturating_sub(b0) * 8 * 1000 / millis;
        if loss > HIGH_LOSS {
            let lost_per_mille = (loss.clamp(0.0, 1.0) * 1000.0).round() as u64;
            let delivered = sent_bps * (1000 - lost_per_mille) / 1000;
            let ceiling = delivered / 100 * DELIVERED_MARGIN;
            self.ceiling = Some(self.ceiling.map_or(ceiling, |c| c.min(ceiling)));
            self.clear_intervals = 0;
        } else if loss <= PROBE_LOSS {
            self.clear_intervals += 1;
            let cleared = self.clear_intervals >= CLEAR_INTERVALS;
            let was_capped = self.ceiling.is_some();
            self.ceiling = self.ceiling.filter(|c| !cleared && estimate.is_none_or(|e| *c < e));
            if was_capped && self.ceiling.is_none() {
                self.lifted_at = Some(at);
            }
        }
    }

    /// Whether the receiver has sent no congestion feedback for `SILENT_INTERVALS`
    /// intervals while media went out to it.
    pub fn receiver_is_silent(&self) -> bool {
        self.silent_intervals >= SILENT_INTERVALS
    }

    /// Random loss of a few percent in the last interval (a rural link): switch up more slowly.
    pub fn is_lossy(&self) -> bool {
        self.last_loss > LOW_LOSS
    }

    /// More loss than random loss on a weak link explains (`PROBE_LOSS`): no probing.
    pub fn is_losing(&self) -> bool {
        self.last_loss > PROBE_LOSS
    }

    /// Whether the ceiling was lifted less than `RECOVERY` ago: the estimate it held
    /// down may be far below what the link carries again.
    pub fn is_recovering(&self, now: Instant) -> bool {
        self.lifted_at.is_some_and(|t| now.saturating_duration_since(t) < RECOVERY)
    }

    /// Whether heavy loss holds the estimate down now (then nothing should probe).
    pub fn is_active(&self) -> bool {
        self.ceiling.is_some()
    }

    /// The estimate with the ceiling applied.
    pub fn apply(&self, estimate: u64) -> u64 {
        self.ceiling.map_or(estimate, |c| c.min(estimate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn second(i: u64) -> Instant {
        static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *T0.get_or_init(Instant::now) + Duration::from_secs(i)
    }

    #[test]
    fn heavy_loss_drops_the_ceiling_to_what_got_through() {
        let mut c = LossCap::default();
        c.on_stats(second(0), 0, Some(0.0), Some(600_000));
        // 500 kbit/s sent, 60 % lost: 200 kbit/s delivered, ceiling 170 kbit/s.
        c.on_stats(second(1), 62_500, Some(0.6), Some(600_000));
        assert_eq!(c.apply(600_000), 170_000);
        assert_eq!(c.apply(100_000), 100_000, "never raises an estimate");
    }

    #[test]
    fn two_intervals_without_heavy_loss_lift_it() {
        let mut c = LossCap::default();
        c.on_stats(second(0), 0, None, None);
        c.on_stats(second(1), 62_500, Some(0.6), Some(600_000));
        c.on_stats(second(2), 70_000, Some(0.08), Some(600_000));
        assert_eq!(c.apply(600_000), 170_000, "5-10 % loss holds");
        c.on_stats(second(3), 80_000, Some(0.03), Some(600_000));
        assert_eq!(c.apply(600_000), 170_000, "one interval of a weak link's random loss is not enough");
        assert!(!c.is_recovering(second(3)));
        c.on_stats(second(4), 90_000, Some(0.0), Some(600_000));
        assert_eq!(c.apply(600_000), 600_000, "lifted after two");
        assert!(!c.is_active());
        assert!(c.is_recovering(second(4)) && c.is_recovering(second(18)));
        assert!(!c.is_recovering(second(19)), "recovering for RECOVERY after the lift");
    }

    #[test]
    fn lifted_at_once_when_the_estimate_is_below_it() {
        let mut c = LossCap::default();
        c.on_stats(second(0), 0, None, None);
        c.on_stats(second(1), 62_500, Some(0.6), Some(600_000));
        c.on_stats(second(2), 70_000, Some(0.01), Some(150_000));
        assert_eq!(c.apply(1_000_000), 1_000_000);
    }

    #[test]
    fn a_receiver_without_feedback_is_noticed() {
        let mut c = LossCap::default();
        for i in 0..3 {
            c.on_stats(second(i), i * 10_000, None, Some(800_000));
        }
        assert!(!c.receiver_is_silent(), "two intervals are not enough");
        c.on_stats(second(3), 30_000, None, Some(800_000));
        assert!(c.receiver_is_silent());
        c.on_stats(second(4), 40_000, Some(0.0), Some(800_000));
        assert!(!c.receiver_is_silent(), "feedback arrived");
    }

    #[test]
    fn random_loss_of_a_few_percent_changes_nothing() {
        let mut c = LossCap::default();
        for i in 0..10 {
            c.on_stats(second(i), i * 75_000, Some(0.03), Some(600_000));
        }
        assert_eq!(c.apply(600_000), 600_000);
    }
}
