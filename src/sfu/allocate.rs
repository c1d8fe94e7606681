//! Bandwidth allocation for one subscriber connection: given the send-side
//! bandwidth estimate (str0m's transport-wide congestion control, or REMB), which
//! layer of which source the subscriber receives.
//!
//! Sources are served in priority order: audio (always, never paused), then
//! courseware / blackboard, then the teacher camera, then other classrooms'
//! cameras. Each video source gets the highest layer that fits what is left of
//! the budget; one that cannot get its lowest layer on a link proven congested
//! (heavy loss) is paused (audio goes on) and resumes by itself when the
//! estimate allows. An estimate alone never pauses playing video: it starts low
//! and only grows by probing.
//!
//! Invariants (hysteresis, so layers do not flap):
//! - Downgrades are quick: at once when the estimate falls far short
//!   (`SEVERE_SHORTFALL`), after `DOWN_HOLD` of a milder shortfall, or sooner
//!   when the shortfall would have queued more than `QUEUE_BUDGET` of the
//!   track's media by then (str0m's pacer sends at about the estimate, so what
//!   does not fit waits in its queue and reaches the player late: frozen video).
//! - Upgrades are slow: the higher layer must fit with `UPGRADE_MARGIN` to spare
//!   for `UPGRADE_HOLD` without a break, and not sooner than `MIN_DWELL` after
//!   the track's last change.
//! - Pure: explicit time, no I/O; the same inputs give the same targets.

use std::time::{Duration, Instant};

use super::forward::layers::MAX_LAYERS;

/// Share of the estimate that media may use (the rest absorbs estimate error).
pub const BUDGET_PERCENT: u64 = 95;
/// An upgrade needs its layer to fit in the budget divided by this (in percent).
pub const UPGRADE_MARGIN: u64 = 115;
pub const UPGRADE_HOLD: Duration = Duration::from_secs(1);
pub const MIN_DWELL: Duration = Duration::from_millis(1500);
pub const DOWN_HOLD: Duration = Duration::from_millis(1500);
/// Below this share of what the current layer needs (percent), downgrade at once.
pub const SEVERE_SHORTFALL: u64 = 50;
/// The most queueing delay a milder shortfall may build up before the downgrade.
pub const QUEUE_BUDGET: Duration = Duration::from_millis(100);

/// Who comes first when bandwidth is short (lower is served first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Audio,
    Content,
    TeacherCamera,
    Thumbnail,
}

/// What one source would cost, per layer (bits per second, layer 0 first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    pub priority: Priority,
    pub layer_bps: [u64; MAX_LAYERS],
    /// Number of layers the publisher sends (1 without simulcast; 0: no feed).
    pub layers: u8,
    /// Layers the publisher was asked to pause (nobody received them): a
    /// downgrade never lands on one, since it would first have to restart.
    pub paused: [bool; MAX_LAYERS],
}

impl Demand {
    fn bps(&self, layer: Option<u8>) -> u64 {
        layer.map_or(0, |l| self.layer_bps[usize::from(l)])
    }

    /// The highest layer whose cost fits in `budget`.
    fn best_within(&self, budget: u64) -> Option<u8> {
        (0..self.layers).rev().find(|l| self.layer_bps[usize::from(*l)] <= budget)
    }

    /// The highest layer the publisher is sending whose cost fits in `budget`.
    fn best_sending_within(&self, budget: u64) -> Option<u8> {
        (0..self.layers).rev().find(|l| !self.paused[usize::from(*l)] && self.layer_bps[usize::from(*l)] <= budget)
    }

    fn top(&self) -> Option<u8> {
        self.layers.checked_sub(1)
    }
}

/// The allocator's memory for one down track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackAlloc {
    pub target: Option<u8>,
    better_since: Option<Instant>,
    short_since: Option<Instant>,
    changed_at: Option<Instant>,
}

impl TrackAlloc {
    pub fn starting_at(target: Option<u8>) -> Self {
        TrackAlloc { target, ..TrackAlloc::default() }
    }

    /// The source sends nothing this round: pending upgrades and downgrades
    /// start over when it is back.
    pub fn idle(&mut self) {
        self.better_since = None;
        self.short_since = None;
    }
}

/// Rates to hand str0m's bandwidth estimator (`bwe().set_bitrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// What the chosen layers cost.
    pub allocated_bps: u64,
    /// What the next upgrade would cost in total: padding fills up to it, so the
    /// estimator can find out whether it fits.
    pub probe_bps: u64,
    /// What every source at its top layer would cost.
    pub desired_bps: u64,
}

/// What the subscriber's link has shown lately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// Random loss of a few percent (a rural link): tight upgrades wait twice as long.
    pub lossy: bool,
    /// Heavy loss: the link is proven too narrow. Only then is a playing video track
    /// paused; an estimate alone (which starts low and grows by probing) never does.
    pub congested: bool,
}

/// Choose a target for every track; `tracks` may be in any order.
pub fn allocate(now: Instant, estimate_bps: u64, link: Link, tracks: &mut [(Demand, &mut TrackAlloc)]) -> Summary {
    tracks.sort_by_key(|(d, _)| d.priority);
    let mut remaining = estimate_bps / 100 * BUDGET_PERCENT;
    let mut summary = Summary::default();
    let mut next_step = None;
    for (demand, state) in tracks.iter_mut() {
        let chosen = if demand.priority == Priority::Audio { demand.top() } else { choose(now, demand, state, remaining, link) };
        state.target = chosen;
        let cost = demand.bps(chosen);
        remaining = remaining.saturating_sub(cost);
        summary.allocated_bps += cost;
        summary.desired_bps += demand.bps(demand.top());
        if next_step.is_none() && chosen < demand.top() {
            let next = chosen.map_or(0, |l| l + 1);
            next_step = Some(demand.bps(Some(next)) - cost);
        }
    }
    summary.probe_bps = summary.allocated_bps + next_step.unwrap_or(0);
    summary
}

/// One video track's layer, with the hysteresis rules of the module header.
fn choose(now: Instant, demand: &Demand, state: &mut TrackAlloc, budget: u64, link: Link) -> Option<u8> {
    let current = state.target.filter(|l| *l < demand.layers);
    let floor = lowest_kept(current, link);
    let fits = demand.best_within(budget).or(floor);
    if fits < current {
        state.better_since = None;
        return downgrade(now, demand, state, current, budget, floor);
    }
    state.short_since = None;
    let fits_with_margin = demand.best_within(budget / UPGRADE_MARGIN * 100);
    if fits_with_margin <= current {
        state.better_since = None;
        return current;
    }
    let since = *state.better_since.get_or_insert(now);
    // Resuming paused video on its lowest layer is cheap, and an upgrade that fits
    // twice over is not a gamble: both take the plain hold even on a lossy link.
    let comfortable = current.is_none() || demand.best_within(budget / 2) > current;
    let hold = if link.lossy && !comfortable { UPGRADE_HOLD * 2 } else { UPGRADE_HOLD };
    if now.saturating_duration_since(since) < hold || !dwelled(now, state) {
        return current;
    }
    changed(now, state);
    Some(current.map_or(0, |l| l + 1))
}

/// The layer a playing track keeps when even its lowest does not fit: the lowest,
/// unless the link is proven congested (then `None`: paused).
fn lowest_kept(current: Option<u8>, link: Link) -> Option<u8> {
    current.and((!link.congested).then_some(0))
}

fn downgrade(now: Instant, demand: &Demand, state: &mut TrackAlloc, current: Option<u8>, budget: u64, floor: Option<u8>) -> Option<u8> {
    let severe = budget * 100 < demand.bps(current) * SEVERE_SHORTFALL;
    let since = *state.short_since.get_or_insert(now);
    if !severe && now.saturating_duration_since(since) < down_hold(demand.bps(current), budget) {
        return current;
    }
    state.short_since = None;
    changed(now, state);
    demand.best_sending_within(budget).or(floor)
}

/// How long a shortfall of `budget` against a layer costing `cost` may last: the
/// excess piles up in the pacer's queue, which drains at about the budget, so after
/// `t` it delays the media by `t * excess / budget`; that stays within `QUEUE_BUDGET`.
fn down_hold(cost: u64, budget: u64) -> Duration {
    let excess = cost.saturating_sub(budget).max(1);
    DOWN_HOLD.min(QUEUE_BUDGET.mul_f64(budget as f64 / excess as f64))
}

fn dwelled(now: Instant, state: &TrackAlloc) -> bool {
    state.changed_at.is_none_or(|t| now.saturating_duration_since(t) >= MIN_DWELL)
}

fn changed(now: Instant, state: &mut TrackAlloc) {
    state.changed_at = Some(now);
    state.better_since = None;
}

#[cfg(test)]
#[path = "allocate_tests.rs"]
mod tests;
