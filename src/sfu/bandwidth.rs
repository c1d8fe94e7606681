//! The core's side of congestion control: each subscriber connection's send-side
//! bandwidth estimate (str0m, from transport-wide CC feedback or REMB) feeds the
//! allocator (`allocate`), whose targets drive every down track's layer selector.
//!
//! Invariants:
//! - Allocation runs every `ALLOCATION_INTERVAL` on explicit time, off the
//!   per-packet path; a down track's target only changes here.
//! - A source whose feed sends nothing is left as it is (it costs nothing and
//!   is not paused), so a returning publisher is forwarded at once.
//! - A connection that never reports an estimate (a player without TWCC or
//!   REMB) is treated as unconstrained after `NO_ESTIMATE_GRACE`; one whose
//!   receiver sends no transport-wide CC feedback while media goes out (three
//!   stats intervals) too, and str0m's estimator is reset far above any class's
//!   rate so its pacer does not hold the media to the starting estimate.
//! - str0m's estimator is told what the next layer and the top layers would
//!   cost, so it probes toward them (`bwe().set_bitrate`); while something is
//!   held back on a loss-free link the desired rate is raised by a few percent
//!   every `PROBE_NUDGE_INTERVAL`, since a rise is what makes str0m probe.
//! - While video is paused, and after it resumed while the estimate stagnates,
//!   str0m's estimator is restarted now and then so that it probes even where
//!   its loss-based controller would not (`reprobe`).

use std::time::{Duration, Instant};

use str0m::bwe::{Bitrate, BweKind};
use str0m::media::{MediaKind, Mid};

use super::allocate::{Demand, Link, Priority, TrackAlloc, allocate};
use super::forward::layers::MAX_LAYERS;
use super::negotiate::feed_of;
use super::peer::{DownTrack, INITIAL_ESTIMATE_BPS};
use super::reprobe::HeldBack;
use super::room::{MAIN, Room};
use super::{PeerId, Sfu};
use crate::signaling::protocol::Source;

pub const ALLOCATION_INTERVAL: Duration = Duration::from_millis(500);
pub const NO_ESTIMATE_GRACE: Duration = Duration::from_secs(5);
/// While a subscriber gets less than every top layer (and its link is not
/// losing packets), str0m is nudged to probe this often.
pub const PROBE_NUDGE_INTERVAL: Duration = Duration::from_secs(2);
const PROBE_NUDGE_PERCENT: u64 = 5;
/// How long a video track waits for a keyframe before it is asked for again.
pub const KEYFRAME_RETRY: Duration = Duration::from_secs(1);
/// What a layer is assumed to cost before its rate has been measured.
const NOMINAL_SIMULCAST_BPS: [u64; MAX_LAYERS] = [150_000, 500_000, 1_200_000];
const NOMINAL_AUDIO_BPS: u64 = 40_000;
/// Estimate used for a connection that gives no feedback at all.
const UNCONSTRAINED_BPS: u64 = 1_000_000_000;

impl Sfu {
    /// A new estimate for a subscriber connection.
    pub(super) fn on_estimate(&mut self, id: PeerId, kind: BweKind) {
        let estimate = match kind {
            BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. } => estimate,
            _ => return,
        };
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.estimate = Some(estimate.as_u64());
        }
    }

    /// Time for the next allocation, if any connection needs one.
    pub(super) fn allocation_timeout(&self) -> Option<Instant> {
        self.next_allocation.filter(|_| !self.peers.is_empty())
    }

    pub(super) fn allocate_if_due(&mut self, now: Instant) {
        if self.next_allocation.is_some_and(|t| now < t) {
            return;
        }
        self.next_allocation = Some(now + ALLOCATION_INTERVAL);
        let ids: Vec<PeerId> = self.peers.values().filter(|p| p.policy().is_some() && p.is_connected()).map(|p| p.id).collect();
        for id in ids {
            self.allocate_peer(id, now);
        }
        self.update_publisher_layers(now);
    }

    /// Allocate one subscriber's bandwidth outside the tick (its link just collapsed).
    pub(super) fn allocate_now(&mut self, id: PeerId, now: Instant) {
        self.allocate_peer(id, now);
        self.update_publisher_layers(now);
    }

    fn allocate_peer(&mut self, id: PeerId, now: Instant) {
        let demands = self.demands_of(id, now);
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let estimate = allocation_estimate(peer, now);
        let mut tracks: Vec<(Demand, &mut TrackAlloc)> = Vec::new();
        for (mid, down) in peer.down.iter_mut() {
            match demands.iter().find(|(m, _)| m == mid) {
                Some((_, d)) => tracks.push((*d, &mut down.alloc)),
                None => down.alloc.idle(),
            }
        }
        let link = Link { lossy: peer.loss_cap.is_lossy(), congested: peer.loss_cap.is_active() };
        let summary = allocate(now, estimate, link, &mut tracks);
        let held = held_back(&tracks);
        reprobe_if_held_back(peer, now, held);
        let probe = if pads_toward_next_layer(&peer.loss_cap, peer.reprobe.is_resuming(now), now) { summary.probe_bps } else { summary.allocated_bps };
        let nudgeable = summary.allocated_bps < summary.desired_bps && !peer.loss_cap.is_active() && !peer.loss_cap.is_losing();
        let mut asked = (probe, summary.desired_bps);
        if nudgeable && peer.probe_nudged_at.is_none_or(|t| now.saturating_duration_since(t) >= PROBE_NUDGE_INTERVAL) {
            // str0m probes when the desired rate rises: alternate it by a few percent.
            peer.probe_nudged_at = Some(now);
            asked.1 += (peer.bwe_asked.1 <= asked.1) as u64 * asked.1 / 100 * PROBE_NUDGE_PERCENT;
        }
        if asked != peer.bwe_asked && (differs(asked, peer.bwe_asked) || nudgeable) {
            peer.bwe_asked = asked;
            peer.rtc.bwe().set_bitrate(Bitrate::bps(asked.0), Bitrate::bps(asked.1.max(asked.0)));
        }
        for (mid, d) in peer.down.iter().filter(|(_, d)| d.layers.target() != d.alloc.target) {
            let costs = demands.iter().find(|(m, _)| m == mid).map(|(_, x)| x.layer_bps);
            tracing::info!(peer = %id, slot = %d.slot, from = ?d.layers.target(), to = ?d.alloc.target, estimate, loss_capped = peer.loss_cap.is_active(), ?costs, "layer target");
        }
        let wanted: Vec<Mid> = peer.down.iter_mut().filter_map(|(mid, d)| keyframe_due(d, now).then_some(*mid)).collect();
        for mid in wanted {
            self.request_keyframe_for_down(id, mid, now);
        }
        self.mark_dirty(id);
    }

    /// What each negotiated down track of a subscriber would cost, per layer.
    fn demands_of(&self, id: PeerId, now: Instant) -> Vec<(Mid, Demand)> {
        let Some(peer) = self.peers.get(&id) else { return Vec::new() };
        let Some(room) = self.rooms.get(&peer.room) else { return Vec::new() };
        peer.down
            .iter()
            .filter(|(_, d)| d.negotiated && !d.paused)
            .filter_map(|(mid, d)| self.demand_of(room, d, now).map(|demand| (*mid, demand)))
            .collect()
    }

    /// `None` when the slot's feed sends nothing now.
    fn demand_of(&self, room: &Room, down: &DownTrack, now: Instant) -> Option<Demand> {
        let feed = feed_of(room, &down.slot)?;
        let track = self.peers.get(&feed.peer)?.tracks_in.get(&feed.mid)?;
        let layers = track.usable_layers(now);
        if layers == 0 {
            return None;
        }
        let mut layer_bps = [0; MAX_LAYERS];
        for (l, bps) in layer_bps.iter_mut().enumerate().take(usize::from(layers)) {
            let measured = track.layers[l].rate.bps();
            *bps = if measured > 0 { measured } else { nominal_bps(down.slot.kind(), layers, l) };
        }
        let paused = std::array::from_fn(|l| !track.active[l]);
        Some(Demand { priority: priority_of(&down.slot.owner, down.slot.source), layer_bps, layers, paused })
    }
}

/// A subscriber that sends no congestion feedback (a player without
/// transport-wide CC, or a link that is down): str0m's estimate would stay at
/// its starting value and its pacer would hold the media to it, so the
/// connection is treated as unconstrained until feedback comes back; then
/// estimation starts over.
pub(super) fn check_feedback(peer: &mut super::peer::Peer) {
    let silent = peer.loss_cap.receiver_is_silent();
    if silent == peer.unconstrained {
        return;
    }
    peer.unconstrained = silent;
    let restart_at = if silent { UNCONSTRAINED_BPS } else { INITIAL_ESTIMATE_BPS };
    tracing::info!(peer = %peer.id, participant = %peer.participant, silent, "congestion feedback from this receiver {}", if silent { "stopped: sending unpaced" } else { "is back: estimating again" });
    peer.estimate = None;
    peer.rtc.bwe().reset(Bitrate::bps(restart_at));
}

/// The estimate a subscriber's bandwidth is shared out by. str0m's events carry a
/// 3 s average of its estimate's changes, which damps its dips (fewer layer
/// switches on a lossy link); paused or just resumed video follows the raw
/// estimate instead, which a successful probe moves at once.
fn allocation_estimate(peer: &super::peer::Peer, now: Instant) -> u64 {
    let resuming = peer.reprobe.is_resuming(now);
    match peer.estimate {
        _ if peer.unconstrained => UNCONSTRAINED_BPS,
        Some(smoothed) => peer.loss_cap.apply(if resuming { peer.raw_estimate.unwrap_or(smoothed) } else { smoothed }),
        None if now.saturating_duration_since(peer.created_at) >= NO_ESTIMATE_GRACE => UNCONSTRAINED_BPS,
        None => INITIAL_ESTIMATE_BPS,
    }
}

/// What the allocator left out: all video paused (only audio goes out), some
/// video below its top layer or paused, or nothing.
fn held_back(tracks: &[(Demand, &mut TrackAlloc)]) -> HeldBack {
    let video = || tracks.iter().filter(|(d, _)| d.priority != Priority::Audio);
    if video().next().is_some() && video().all(|(_, a)| a.target.is_none()) {
        HeldBack::Video
    } else if video().any(|(d, a)| a.target < d.layers.checked_sub(1)) {
        HeldBack::Layers
    } else {
        HeldBack::Nothing
    }
}

/// Restart str0m's estimator so that it probes, when video is paused or, after a
/// resume, the estimate has stagnated below what the subscriber wants (`reprobe`).
fn reprobe_if_held_back(peer: &mut super::peer::Peer, now: Instant, held: HeldBack) {
    let quiet = !peer.loss_cap.is_active() && !peer.loss_cap.is_losing() && !peer.unconstrained;
    let Some(estimate) = peer.raw_estimate.or(peer.estimate) else { return };
    if !peer.reprobe.poll(now, held, quiet, estimate) {
        return;
    }
    tracing::debug!(peer = %peer.id, estimate, ?held, "restarting the bandwidth estimator to probe");
    peer.rtc.bwe().reset(Bitrate::bps(estimate));
}

/// Hand the allocator's target to the layer selector; true when a video track
/// waits for a keyframe it should ask for now: a switch or resume that just
/// began, or one still waiting `KEYFRAME_RETRY` after the last request. A
/// request lost on the publisher's uplink, or one its encoder ignored, would
/// otherwise leave the switch waiting for whatever keyframe comes next (seen
/// once in a `make test` run: the top layer 5 s after the allocator chose it).
fn keyframe_due(down: &mut DownTrack, now: Instant) -> bool {
    let changed = down.layers.set_target(down.alloc.target);
    let waiting = down.slot.kind() == MediaKind::Video && !down.paused && (down.layers.waiting_for().is_some() || down.awaiting_keyframe);
    if !waiting {
        down.keyframe_asked_at = None;
        return false;
    }
    let asked = *down.keyframe_asked_at.get_or_insert(now);
    let due = changed || now.saturating_duration_since(asked) >= KEYFRAME_RETRY;
    if due {
        down.keyframe_asked_at = Some(now);
    }
    due
}

/// Whether str0m may pad up to what the next layer would cost (else only up to what
/// is sent). Not on a congested link: padding would crowd out the media that gets
/// through. Not on a steadily lossy one either: there the estimate is about right,
/// and padding up to it fills the bottleneck queue and lures the allocator into a
/// layer the link cannot hold (measured at 600 kbit/s with 3 % loss: the top layer
/// tried twice a minute, 51 queue drops). Right after a congested spell, and while
/// video is paused or has just resumed (`reprobe`), it does pad: the estimate the
/// spell held down climbs back in about 2 s per layer instead of 8. (Not padding
/// while paused on a lossy link was measured too: in the simulator the top layer
/// came back after 11-12 s for two of eight loss patterns instead of 7-10 s.)
fn pads_toward_next_layer(loss: &super::loss_cap::LossCap, resuming: bool, now: Instant) -> bool {
    !loss.is_active() && (!loss.is_lossy() || loss.is_recovering(now) || resuming)
}

/// What an unmeasured layer is assumed to cost. A single-layer video source has
/// no cheaper layer to fall back to: until its rate is measured it is assumed to
/// cost nothing, so it is never paused on a guess.
fn nominal_bps(kind: MediaKind, layers: u8, layer: usize) -> u64 {
    match kind {
        MediaKind::Audio => NOMINAL_AUDIO_BPS,
        MediaKind::Video if layers > 1 => NOMINAL_SIMULCAST_BPS[layer],
        MediaKind::Video => 0,
    }
}

/// Audio first, then courseware and blackboard, then the teacher camera, then
/// everyone else's cameras (classrooms, the called-on classroom).
pub fn priority_of(owner: &str, source: Source) -> Priority {
    match source {
        s if s.is_audio() => Priority::Audio,
        Source::Board | Source::Screen => Priority::Content,
        _ if owner == MAIN => Priority::TeacherCamera,
        _ => Priority::Thumbnail,
    }
}

/// Whether new estimator rates differ enough (10 %) to be worth telling str0m.
fn differs(new: (u64, u64), old: (u64, u64)) -> bool {
    let far = |a: u64, b: u64| a.abs_diff(b) * 10 > b.max(1);
    far(new.0, old.0) || far(new.1, old.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_follow_the_classroom_order() {
        assert_eq!(priority_of(MAIN, Source::Mic), Priority::Audio);
        assert_eq!(priority_of("c1", Source::Mic), Priority::Audio);
        assert_eq!(priority_of(MAIN, Source::Board), Priority::Content);
        assert_eq!(priority_of(MAIN, Source::Screen), Priority::Content);
        assert_eq!(priority_of(MAIN, Source::Camera), Priority::TeacherCamera);
        assert_eq!(priority_of("spotlight", Source::Camera), Priority::Thumbnail);
        assert_eq!(priority_of("c1", Source::Camera), Priority::Thumbnail);
    }

    /// What `forward::admit` does with a keyframe of `layer`.
    fn keyframe_arrives(down: &mut DownTrack, layer: u8) {
        down.layers.gate(layer, true);
        down.awaiting_keyframe = false;
    }

    #[test]
    fn a_keyframe_is_asked_again_while_a_switch_still_waits_for_one() {
        let t0 = Instant::now();
        let mut down = DownTrack::new(crate::sfu::room::SlotKey::new(MAIN, Source::Camera), 1);
        down.negotiated = true;
        assert!(!keyframe_due(&mut down, t0), "a start waits for the keyframe its join asked for");
        assert!(keyframe_due(&mut down, t0 + KEYFRAME_RETRY), "still none after KEYFRAME_RETRY: asked again");
        keyframe_arrives(&mut down, 0);
        assert!(!keyframe_due(&mut down, t0 + KEYFRAME_RETRY * 3), "forwarding layer 0: nothing to ask");
        let t1 = t0 + KEYFRAME_RETRY * 4;
        down.alloc = TrackAlloc::starting_at(Some(1));
        assert!(keyframe_due(&mut down, t1), "a switch asks at once");
        assert!(!keyframe_due(&mut down, t1 + KEYFRAME_RETRY / 2));
        assert!(keyframe_due(&mut down, t1 + KEYFRAME_RETRY), "the request went unanswered: asked again");
        keyframe_arrives(&mut down, 1);
        assert!(!keyframe_due(&mut down, t1 + KEYFRAME_RETRY * 2), "switched");
        down.alloc = TrackAlloc::starting_at(None);
        assert!(!keyframe_due(&mut down, t1 + KEYFRAME_RETRY * 3), "paused: nothing to ask");
    }

    #[test]
    fn small_changes_are_not_retold() {
        assert!(!differs((1_000_000, 2_000_000), (1_050_000, 2_000_000)));
        assert!(differs((1_000_000, 2_000_000), (1_200_000, 2_000_000)));
        assert!(differs((1, 1), (0, 0)));
    }
}
