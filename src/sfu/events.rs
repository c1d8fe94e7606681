//! What the core does with each event a str0m `Rtc` emits.
//!
//! Invariant: events never cross connections directly; RTCP feedback (PLI/FIR)
//! from a subscriber becomes an aggregated request toward the publisher, RTP
//! becomes forwarding, nothing else leaves the connection it came from.

use std::time::Instant;

use str0m::media::Direction;
use str0m::{Event, IceConnectionState};

use super::health::HealthTracker;
use super::peer::PeerKind;
use super::stats::SfuCounters;
use super::{CloseReason, PeerId, Sfu, SfuEvent};

impl Sfu {
    pub(super) fn on_rtc_event(&mut self, id: PeerId, event: Event, now: Instant) {
        match event {
            Event::RtpPacket(pkt) => self.forward(id, pkt, now),
            Event::KeyframeRequest(req) => {
                SfuCounters::incr(&self.counters.keyframe_requests_received);
                self.request_keyframe_for_down(id, req.mid, now);
            }
            Event::MediaAdded(m) => self.on_media(id, m.mid, m.kind, m.direction, now),
            Event::MediaChanged(m) => {
                let kind = self.peers.get(&id).and_then(|p| p.rtc.media(m.mid)).map(|media| media.kind());
                if let Some(kind) = kind {
                    self.on_media(id, m.mid, kind, m.direction, now);
                }
            }
            Event::Connected => self.on_connected(id, now),
            Event::IceConnectionStateChange(state) => self.on_ice_state(id, state, now),
            Event::Closed => self.close_peer(id, CloseReason::Closed),
            Event::PeerStats(s) => {
                if let Some(p) = self.peers.get_mut(&id) {
                    p.health.peer_stats(&s);
                    p.raw_estimate = s.bwe_tx.map(|b| b.as_u64());
                    let was_capped = p.loss_cap.is_active();
                    p.loss_cap.on_stats(s.timestamp, s.peer_bytes_tx, s.egress_loss_fraction, p.estimate);
                    if was_capped != p.loss_cap.is_active() {
                        tracing::debug!(peer = %id, capped = !was_capped, loss = ?s.egress_loss_fraction, estimate = ?p.estimate, "loss ceiling");
                    }
                    let rtt = super::health::rtt_of(&s);
                    let before = p.playout_delay.min_ms();
                    p.playout_delay.on_stats(s.timestamp, p.loss_cap.is_lossy(), rtt);
                    if p.playout_delay.min_ms().abs_diff(before) >= 50 {
                        tracing::info!(peer = %id, min_ms = p.playout_delay.min_ms(), ?rtt, "playout delay");
                    }
                    super::bandwidth::check_feedback(p);
                    // Heavy loss: share out the lower budget now, not at the next tick.
                    if !was_capped && p.loss_cap.is_active() && p.policy().is_some() {
                        self.allocate_now(id, now);
                    }
                }
            }
            Event::EgressBitrateEstimate(kind) => self.on_estimate(id, kind),
            Event::MediaIngressStats(s) => self.track_stats(id, s.mid, |h, kind| h.ingress(kind, &s)),
            Event::MediaEgressStats(s) => self.track_stats(id, s.mid, |h, kind| h.egress(kind, &s)),
            _ => {}
        }
    }

    /// A track's stats, folded into its connection's health (once a second per track).
    fn track_stats(&mut self, id: PeerId, mid: str0m::media::Mid, f: impl FnOnce(&mut HealthTracker, str0m::media::MediaKind)) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if let Some(kind) = peer.rtc.media(mid).map(|m| m.kind()) {
            f(&mut peer.health, kind);
        }
    }

    fn on_media(&mut self, id: PeerId, mid: str0m::media::Mid, kind: str0m::media::MediaKind, dir: Direction, now: Instant) {
        if self.peers.get(&id).is_some_and(|p| p.kind == PeerKind::Publisher) {
            self.publisher_media(id, mid, kind, dir.is_receiving(), now);
        }
    }

    fn on_connected(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        peer.connected = true;
        tracing::info!(peer = %id, room = %peer.room, participant = %peer.participant, "media connected");
        let mids: Vec<_> = peer.down.keys().copied().collect();
        for mid in mids {
            self.request_keyframe_for_down(id, mid, now);
        }
        self.events.push_back(SfuEvent::PeerConnected { peer: id });
    }

    fn on_ice_state(&mut self, id: PeerId, state: IceConnectionState, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        match state {
            IceConnectionState::Disconnected => {
                peer.disconnected_at.get_or_insert(now);
                self.deadline_added(now + super::DISCONNECT_GRACE);
            }
            IceConnectionState::Connected | IceConnectionState::Completed => {
                peer.disconnected_at = None;
                self.deadline_reset();
            }
            _ => {}
        }
    }
}
