//! Webhooks: the class events (`rooms.events`) POSTed as signed JSON to the URLs
//! administrators register, with retries and a log of every attempt.
//!
//! Invariants:
//! - Every event heard becomes one stored delivery per active hook subscribed to it
//!   before anything is sent, so pending deliveries outlive a restart.
//! - The rooms never wait for a receiver: the bus does not block, and sending runs
//!   in its own tasks, at most `MAX_IN_FLIGHT` at once and one per hook, each cut
//!   off after `SEND_TIMEOUT`. A slow or dead receiver holds one slot for at most
//!   that long and delays no other hook's deliveries beyond it.
//! - A delivery's body is the same bytes on every attempt; the timestamp header and
//!   the signature are the attempt's own (`sign`).
//! - 2xx delivers; anything else (another status, no connection, the timeout) is a
//!   failed attempt, retried after `backoff` until `MAX_ATTEMPTS`, then `failed`.
//!   Each attempt is stored with the delivery's new state in one transaction.

pub mod check;
mod dispatch;
pub mod sign;

use std::time::Duration;

use crate::store::NextState;
pub use dispatch::{StartError, start};

/// Attempts of one delivery before it is given up as `failed`.
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Default wait after the first failed attempt (`--webhook-retry-base-ms`).
pub const DEFAULT_RETRY_BASE: Duration = Duration::from_millis(2000);
/// A receiver that has not answered by then has failed the attempt.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries being sent at once (over all hooks).
pub const MAX_IN_FLIGHT: usize = 4;

/// The wait after failed attempt number `attempt` (1-based): `base`, doubling, at most `MAX_BACKOFF`.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.saturating_sub(1)).unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// The delivery's state after attempt number `attempt` ended at `now_ms`.
pub fn next_state(attempt: u32, delivered: bool, now_ms: i64, base: Duration) -> NextState {
    if delivered {
        NextState::Delivered
    } else if attempt >= MAX_ATTEMPTS {
        NextState::Failed
    } else {
        NextState::RetryAt(now_ms.saturating_add(backoff(base, attempt).as_millis() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_ten_minutes() {
        let secs: Vec<u64> = (1..MAX_ATTEMPTS).map(|n| backoff(DEFAULT_RETRY_BASE, n).as_secs()).collect();
        assert_eq!(secs, vec![2, 4, 8, 16, 32, 64, 128, 256, 512]);
        let total: u64 = secs.iter().sum();
        assert_eq!(total, 1022, "a delivery is given up about 17 minutes after its first attempt");
        assert_eq!(backoff(Duration::from_secs(60), 5), MAX_BACKOFF, "capped");
        assert_eq!(backoff(Duration::from_millis(200), 3), Duration::from_millis(800));
        assert_eq!(backoff(Duration::from_millis(200), 40), MAX_BACKOFF, "no overflow past 32 doublings");
        assert_eq!(backoff(Duration::MAX, 1), MAX_BACKOFF);
    }

    #[test]
    fn ten_attempts_then_failed() {
        let base = Duration::from_millis(200);
        assert_eq!(next_state(1, false, 1_000, base), NextState::RetryAt(1_200));
        assert_eq!(next_state(4, false, 1_000, base), NextState::RetryAt(2_600));
        assert_eq!(next_state(9, false, 1_000, base), NextState::RetryAt(1_000 + 51_200));
        assert_eq!(next_state(MAX_ATTEMPTS, false, 1_000, base), NextState::Failed);
        assert_eq!(next_state(MAX_ATTEMPTS, true, 1_000, base), NextState::Delivered);
        assert_eq!(next_state(1, true, 1_000, base), NextState::Delivered);
    }
}
