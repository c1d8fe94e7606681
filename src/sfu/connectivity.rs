//! Connectivity of the core: ICE restarts and ICE-TCP candidates.
//!
//! - A *publish* connection is restarted by its client: a re-offer with new ICE
//!   credentials, which str0m accepts (`accept_offer`) by taking new local
//!   credentials too.
//! - A *subscribe* connection is server-offered, so its client asks and the core
//!   makes a new offer with `sdp_api().ice_restart(true)`; str0m switches to the
//!   new local credentials when the answer is accepted.
//!
//! Invariants:
//! - Whenever a connection's local ufrag changes, `by_ufrag` routes the new one
//!   to it and forgets the old one, and an `SfuEvent::IceUfrag` tells the socket
//!   driver to do the same in its own map. The ufrag of a restart offer is routed
//!   as soon as the offer is made (its client may check before the answer lands),
//!   and unrouted if the answer does not make it current or the connection closes.
//! - A restart asked for while a subscribe offer is in flight is remembered and
//!   made right after that offer's answer (one offer in flight at a time). One
//!   asked for before anything was ever negotiated is a no-op: there is no ICE
//!   session to restart (str0m would keep its credentials while the offer
//!   announced new ones).
//! - Neither path touches tracks, slots or rewriters: media continues on the same
//!   m-lines once ICE is up again.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use str0m::net::TcpType;
use str0m::{Candidate, Rtc};

use super::peer::PeerKind;
use super::{NegotiationError, PeerId, Sfu, SfuEvent};

/// Subscribers whose ICE restart waits for the answer to their offer in flight,
/// connections that completed a negotiation (have remote ICE credentials), and
/// the ufrag of each restart offer in flight.
#[derive(Debug, Default)]
pub struct Restarts {
    due: HashSet<PeerId>,
    negotiated: HashSet<PeerId>,
    offered: HashMap<PeerId, String>,
}

/// Advertise a passive ICE-TCP host candidate for each address (RFC 6544).
pub fn add_tcp_candidates(rtc: &mut Rtc, addrs: &[SocketAddr]) {
    for addr in addrs {
        if let Ok(c) = Candidate::builder().tcp().host(*addr).tcptype(TcpType::Passive).build() {
            rtc.add_local_candidate(c);
        }
    }
}

impl Sfu {
    /// A subscriber's client lost its media path: offer an ICE restart (now, or
    /// after the answer to the offer in flight).
    pub fn restart_ice(&mut self, now: Instant, id: PeerId) -> Result<(), NegotiationError> {
        let peer = self.peers.get_mut(&id).ok_or(NegotiationError::UnknownPeer)?;
        if peer.kind == PeerKind::Publisher {
            return Err(NegotiationError::Refused("a publish connection is restarted by its client's re-offer".into()));
        }
        if peer.pending_offer.is_some() {
            self.restarts.due.insert(id);
            return Ok(());
        }
        if !self.restarts.negotiated.contains(&id) {
            return Ok(());
        }
        let mut api = peer.rtc.sdp_api();
        let creds = api.ice_restart(true);
        let Some((offer, pending)) = api.apply() else { return Ok(()) };
        peer.pending_offer = Some(pending);
        tracing::info!(peer = %id, room = %peer.room, participant = %peer.participant, "ICE restart offered");
        self.restarts.offered.insert(id, creds.ufrag.clone());
        self.route_ufrag(id, creds.ufrag);
        let tracks = self.track_descs(id);
        self.events.push_back(SfuEvent::SubscribeOffer { peer: id, sdp: offer.to_sdp_string(), tracks });
        self.mark_dirty(id);
        self.drain(now);
        Ok(())
    }

    /// After an offer or answer was accepted: if the local ufrag changed (an ICE
    /// restart completed), route the new one and forget the old; then make a
    /// restart that waited for this answer.
    pub(super) fn ice_credentials_settled(&mut self, id: PeerId, now: Instant) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        self.restarts.negotiated.insert(id);
        let current = peer.rtc.direct_api().local_ice_credentials().ufrag;
        if current != peer.ufrag {
            let old = std::mem::replace(&mut peer.ufrag, current.clone());
            tracing::info!(peer = %id, room = %peer.room, participant = %peer.participant, "ICE restarted");
            self.unroute_ufrag(id, old);
            self.route_ufrag(id, current.clone());
        }
        if let Some(offered) = self.restarts.offered.remove(&id).filter(|u| *u != current) {
            self.unroute_ufrag(id, offered);
        }
        let waiting = self.peers.get(&id).is_some_and(|p| p.pending_offer.is_none());
        if waiting && self.restarts.due.remove(&id) {
            // The peer exists (checked above), so the restart cannot fail.
            let _ = self.restart_ice(now, id);
        }
    }

    fn route_ufrag(&mut self, id: PeerId, ufrag: String) {
        if self.by_ufrag.insert(ufrag.clone(), id) != Some(id) {
            self.events.push_back(SfuEvent::IceUfrag { peer: id, ufrag, routed: true });
        }
    }

    fn unroute_ufrag(&mut self, id: PeerId, ufrag: String) {
        if self.by_ufrag.get(&ufrag) == Some(&id) {
            self.by_ufrag.remove(&ufrag);
        }
        self.events.push_back(SfuEvent::IceUfrag { peer: id, ufrag, routed: false });
    }

    /// Forget a closing connection's restart state (and unroute a restart offer's ufrag).
    pub(super) fn forget_restart(&mut self, id: PeerId) {
        self.restarts.due.remove(&id);
        self.restarts.negotiated.remove(&id);
        if let Some(offered) = self.restarts.offered.remove(&id) {
            self.unroute_ufrag(id, offered);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use str0m::change::SdpAnswer;
    use str0m::media::{Direction, MediaKind};

    use super::*;
    use crate::sfu::PublishRequest;
    use crate::sfu::room::Policy;
    use crate::sfu::sim::{MS, Net};
    use crate::signaling::protocol::Source;

    fn ufrag_events(net: &Net, peer: PeerId) -> Vec<(String, bool)> {
        net.events
            .iter()
            .filter_map(|e| match e {
                SfuEvent::IceUfrag { peer: p, ufrag, routed } if *p == peer => Some((ufrag.clone(), *routed)),
                _ => None,
            })
            .collect()
    }

    /// A teacher publishing a camera and a classroom subscribed to it, media flowing.
    fn class() -> (Net, PeerId, str0m::media::Mid, PeerId) {
        let mut net = Net::new();
        let (t, c) = (net.add_client(), net.add_client());
        let (publisher, mids) = net.publish(t, "main", &[Source::Camera]);
        let sub = net.subscribe(c, "c1", Policy::Audience { own_id: None });
        net.run(500 * MS);
        net.send_video(t, mids[0], 1, 0, 5, true);
        let down = net.down_mid(sub, "main/camera");
        assert!(!net.got(c, down).is_empty(), "media flows before the restart");
        (net, publisher, mids[0], sub)
    }

    #[test]
    fn a_subscriber_restart_offers_new_credentials_and_reroutes_them() {
        let (mut net, publisher, mid, sub) = class();
        let old = net.sfu.peer_ufrag(sub).unwrap().to_string();
        net.sfu.restart_ice(net.now, sub).unwrap();
        let offers = net.events.iter().filter(|e| matches!(e, SfuEvent::SubscribeOffer { peer, .. } if *peer == sub)).count();
        net.step();
        let new = net.sfu.peer_ufrag(sub).unwrap().to_string();
        assert_ne!(new, old, "the answer made the new credentials current");
        assert!(offers >= 2, "the restart went out as a new subscribe offer");
        assert_eq!(net.sfu.by_ufrag.get(&new), Some(&sub));
        assert!(!net.sfu.by_ufrag.contains_key(&old), "the old ufrag is forgotten");
        assert_eq!(ufrag_events(&net, sub), vec![(new.clone(), true), (old, false)]);
        net.run(Duration::from_millis(1500));
        let down = net.down_mid(sub, "main/camera");
        let before = net.got(1, down).len();
        net.send_video(0, mid, 100, 300_000, 5, true);
        assert!(net.got(1, down).len() > before, "media flows after the restart");
        assert!(net.sfu.peers.contains_key(&publisher));
    }

    #[test]
    fn a_restart_during_an_offer_in_flight_waits_for_its_answer() {
        let (mut net, _, _, sub) = class();
        // Make an offer in flight by hand: a pending offer the client has not answered.
        let peer = net.sfu.peers.get_mut(&sub).unwrap();
        let mut api = peer.rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        peer.pending_offer = Some(pending);
        let old = net.sfu.peer_ufrag(sub).unwrap().to_string();
        net.sfu.restart_ice(net.now, sub).unwrap();
        assert!(ufrag_events(&net, sub).is_empty(), "nothing offered while an offer is in flight");
        let client = &mut net.clients[1].rtc;
        let answer = client.sdp_api().accept_offer(str0m::change::SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap()).unwrap();
        let _ = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap();
        net.sfu.accept_answer(net.now, sub, &answer.to_sdp_string()).unwrap();
        let routed: Vec<_> = std::iter::from_fn(|| net.sfu.poll_event())
            .filter_map(|e| match e {
                SfuEvent::IceUfrag { ufrag, routed: true, .. } => Some(ufrag),
                _ => None,
            })
            .collect();
        assert_eq!(routed.len(), 1, "the waiting restart was offered after the answer");
        assert_ne!(routed[0], old);
    }

    #[test]
    fn a_publisher_reoffer_with_new_credentials_is_accepted_and_rerouted() {
        let (mut net, publisher, mid, sub) = class();
        let old = net.sfu.peer_ufrag(publisher).unwrap().to_string();
        let mut api = net.clients[0].rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().unwrap();
        let req = PublishRequest { room: net.room.clone(), participant: "main".into(), peer: Some(publisher), offer: offer.to_sdp_string(), sources: vec![(mid.to_string(), Source::Camera)] };
        let (same, answer) = net.sfu.publish(net.now, req).unwrap();
        assert_eq!(same, publisher, "the same connection, restarted");
        net.clients[0].rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap()).unwrap();
        let new = net.sfu.peer_ufrag(publisher).unwrap().to_string();
        assert_ne!(new, old);
        assert_eq!(net.sfu.by_ufrag.get(&new), Some(&publisher));
        assert!(!net.sfu.by_ufrag.contains_key(&old));
        net.run(Duration::from_millis(1500));
        let down = net.down_mid(sub, "main/camera");
        let before = net.got(1, down).len();
        net.send_video(0, mid, 100, 300_000, 5, true);
        assert!(net.got(1, down).len() > before, "media flows after the publisher's restart");
    }

    #[test]
    fn a_restart_before_any_negotiation_is_a_no_op() {
        let mut net = Net::new();
        // Offers not started yet: nothing was ever negotiated on this connection.
        let room = net.room.clone();
        let sub = net.sfu.subscribe(net.now, &room, "c1", Policy::Audience { own_id: None });
        let ufrag = net.sfu.peer_ufrag(sub).unwrap().to_string();
        net.sfu.restart_ice(net.now, sub).unwrap();
        let events: Vec<SfuEvent> = std::iter::from_fn(|| net.sfu.poll_event()).collect();
        assert!(events.iter().all(|e| !matches!(e, SfuEvent::SubscribeOffer { .. } | SfuEvent::IceUfrag { .. })), "{events:?}");
        assert_eq!(net.sfu.peer_ufrag(sub), Some(ufrag.as_str()));
    }

    #[test]
    fn a_connection_closed_with_a_restart_in_flight_leaves_no_route() {
        let (mut net, _, _, sub) = class();
        // Offered straight on the core: the client never sees nor answers it.
        net.sfu.restart_ice(net.now, sub).unwrap();
        let offered = ufrag_events_now(&mut net.sfu, sub);
        assert_eq!(offered.len(), 1, "the restart offer's ufrag was routed");
        net.sfu.remove_peer(sub, net.now);
        assert!(net.sfu.by_ufrag.values().all(|p| *p != sub), "no ufrag routes to the closed connection");
        assert!(ufrag_events_now(&mut net.sfu, sub).contains(&(offered[0].0.clone(), false)), "the driver is told to unroute it");
    }

    fn ufrag_events_now(sfu: &mut Sfu, peer: PeerId) -> Vec<(String, bool)> {
        std::iter::from_fn(|| sfu.poll_event())
            .filter_map(|e| match e {
                SfuEvent::IceUfrag { peer: p, ufrag, routed } if p == peer => Some((ufrag, routed)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_publish_connection_cannot_be_restarted_by_the_server() {
        let (mut net, publisher, _, _) = class();
        assert!(matches!(net.sfu.restart_ice(net.now, publisher), Err(NegotiationError::Refused(_))));
        assert_eq!(net.sfu.restart_ice(net.now, PeerId(999_999)), Err(NegotiationError::UnknownPeer));
    }
}
