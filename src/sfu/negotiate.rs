//! SDP negotiation of the core: publish offers, server-side subscribe offers,
//! WHEP offers, and what each negotiation changes in slots and down tracks.
//!
//! Invariants:
//! - An offer is checked for a forwarded codec before it reaches str0m; a refused
//!   offer leaves no connection behind.
//! - A subscriber connection has at most one offer in flight; slots that appear
//!   meanwhile queue in `to_add` and go out in the next offer after the answer.
//! - A slot is announced to subscribers (down tracks created per policy) the first
//!   time it gets a feed, so nobody gets an m-line for a source never sent.

use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};

use super::forward::layers::MAX_LAYERS;

use super::peer::{DownTrack, PeerKind, TrackIn, media_kind_of};
use super::room::{DownRef, Feed, MAIN, Policy, Room, SPOTLIGHT, SlotKey};
use super::sdp_check::offered_codecs;
use super::{PeerId, RoomId, Sfu, SfuEvent, TrackDesc};
use crate::signaling::protocol::Source;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NegotiationError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no usable codec: offered {}; this server forwards opus, H264 (packetization-mode=1) and VP8", offered.join(", "))]
    NoUsableCodec { offered: Vec<String> },
    #[error("mid {0} is not an audio or video m-line of the offer")]
    UnknownMid(String),
    #[error("no offer is waiting for an answer on this connection")]
    NoPendingOffer,
    #[error("unknown connection")]
    UnknownPeer,
    #[error("SDP refused: {0}")]
    Refused(String),
}

/// A publish offer from a client, with the source of each m-line.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub room: RoomId,
    pub participant: String,
    /// The existing publish connection when this is a re-offer.
    pub peer: Option<PeerId>,
    pub offer: String,
    pub sources: Vec<(String, Source)>,
}

/// Parse an offer and make sure it carries something this server forwards.
fn checked_offer(sdp: &str) -> Result<(SdpOffer, Vec<(String, String)>), NegotiationError> {
    let offered = offered_codecs(sdp);
    let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| NegotiationError::Malformed(e.to_string()))?;
    if offered.media_lines == 0 {
        return Err(NegotiationError::Malformed("no audio or video m-line".into()));
    }
    if !offered.usable {
        return Err(NegotiationError::NoUsableCodec { offered: offered.names });
    }
    Ok((offer, offered.media))
}

impl Sfu {
    /// Accept a publish offer; returns the publish connection and the answer.
    pub fn publish(&mut self, now: Instant, req: PublishRequest) -> Result<(PeerId, String), NegotiationError> {
        let (offer, media) = checked_offer(&req.offer)?;
        if let Some((mid, _)) = req.sources.iter().find(|(mid, _)| !media.iter().any(|(_, m)| m == mid)) {
            return Err(NegotiationError::UnknownMid(mid.clone()));
        }
        let existing = req.peer.filter(|p| self.peers.contains_key(p));
        let id = existing.unwrap_or_else(|| self.create_peer(now, &req.room, &req.participant, PeerKind::Publisher));
        let peer = self.peers.get_mut(&id).ok_or(NegotiationError::UnknownPeer)?;
        for (mid, source) in &req.sources {
            peer.source_tags.insert(Mid::from(mid.as_str()), *source);
        }
        let answer = peer.rtc.sdp_api().accept_offer(offer);
        self.finish_answer(id, existing.is_none(), answer, now)
    }

    fn finish_answer(
        &mut self,
        id: PeerId,
        created: bool,
        answer: Result<SdpAnswer, str0m::RtcError>,
        now: Instant,
    ) -> Result<(PeerId, String), NegotiationError> {
        match answer {
            Ok(answer) => {
                self.ice_credentials_settled(id, now);
                self.mark_dirty(id);
                self.drain(now);
                Ok((id, answer.to_sdp_string()))
            }
            Err(e) => {
                if created {
                    self.remove_peer(id, now);
                }
                Err(NegotiationError::Refused(e.to_string()))
            }
        }
    }

    /// A new subscriber connection. No offer is emitted until `start_offers`, so
    /// the caller can first register where its `SubscribeOffer` events must go.
    pub fn subscribe(&mut self, now: Instant, room: &RoomId, participant: &str, policy: Policy) -> PeerId {
        let id = self.create_peer(now, room, participant, PeerKind::Subscriber(policy.clone()));
        let wanted: Vec<SlotKey> = self
            .rooms
            .get(room)
            .map(|r| r.slots.iter().filter(|(k, s)| s.announced && policy.wants(k)).map(|(k, _)| k.clone()).collect())
            .unwrap_or_default();
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.to_add = wanted;
            peer.to_add.sort();
        }
        self.drain(now);
        id
    }

    /// Let a subscriber's offers go out: the first as soon as there is anything to
    /// receive, then one per change.
    pub fn start_offers(&mut self, now: Instant, id: PeerId) {
        if let Some(peer) = self.peers.get_mut(&id) {
            peer.offers_started = true;
        }
        self.offer_if_needed(id);
        self.drain(now);
    }

    /// The client's answer to the latest subscribe offer.
    pub fn accept_answer(&mut self, now: Instant, id: PeerId, sdp: &str) -> Result<(), NegotiationError> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| NegotiationError::Malformed(e.to_string()))?;
        let peer = self.peers.get_mut(&id).ok_or(NegotiationError::UnknownPeer)?;
        let pending = peer.pending_offer.take().ok_or(NegotiationError::NoPendingOffer)?;
        peer.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| NegotiationError::Refused(e.to_string()))?;
        let added: Vec<Mid> = peer.down.iter_mut().filter(|(_, d)| !d.negotiated).map(|(m, d)| {
            d.renegotiated();
            *m
        }).collect();
        // Before DTLS is up a keyframe would be dropped, and would hold back (by the
        // throttle) the request that `on_connected` makes when it can be delivered.
        if peer.connected {
            for mid in added {
                self.request_keyframe_for_down(id, mid, now);
            }
        }
        self.ice_credentials_settled(id, now);
        self.offer_if_needed(id);
        self.mark_dirty(id);
        self.drain(now);
        Ok(())
    }

    /// A WHEP viewer: a recvonly offer; audio gets `main/mic`, video m-lines get
    /// `main/camera`, `main/screen`, `main/board` in order.
    pub fn whep(&mut self, now: Instant, room: &RoomId, participant: &str, sdp: &str) -> Result<(PeerId, String), NegotiationError> {
        let (offer, media) = checked_offer(sdp)?;
        let id = self.create_peer(now, room, participant, PeerKind::Subscriber(Policy::Fixed));
        let answer = self.peers.get_mut(&id).ok_or(NegotiationError::UnknownPeer)?.rtc.sdp_api().accept_offer(offer);
        let result = self.finish_answer(id, true, answer, now)?;
        let (mut audio, mut video) = ([Source::Mic].into_iter(), [Source::Camera, Source::Screen, Source::Board].into_iter());
        for (kind, mid) in media {
            let source = if kind == "audio" { audio.next() } else { video.next() };
            if let Some(source) = source {
                self.attach_down(id, Mid::from(mid.as_str()), SlotKey::new(MAIN, source), true);
            }
        }
        Ok(result)
    }

    /// Stop or resume forwarding of some slots to a subscriber (no renegotiation).
    pub fn set_paused(&mut self, now: Instant, id: PeerId, keys: &[SlotKey], paused: bool) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let mut resumed = Vec::new();
        for (mid, d) in peer.down.iter_mut().filter(|(_, d)| keys.contains(&d.slot)) {
            if d.paused && !paused {
                d.awaiting_keyframe = true;
                resumed.push(*mid);
            }
            d.paused = paused;
        }
        for mid in resumed {
            self.request_keyframe_for_down(id, mid, now);
        }
        self.drain(now);
    }

    /// Call on a classroom (its camera and mic feed the spotlight slots), or end it.
    pub fn set_spotlight(&mut self, now: Instant, room: &RoomId, owner: Option<String>) {
        let Some(r) = self.rooms.get_mut(room) else { return };
        r.spotlight = owner.clone();
        let feed = owner.and_then(|o| r.slots.get(&SlotKey::new(&o, Source::Camera)).and_then(|s| s.feed));
        if let Some(f) = feed {
            self.request_keyframe(f.peer, f.mid, 0, now);
        }
        self.drain(now);
    }

    /// Create a down track for `slot` on a subscriber and attach it to the slot.
    fn attach_down(&mut self, id: PeerId, mid: Mid, slot: SlotKey, negotiated: bool) {
        let seq = self.next_random_u16();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let mut down = DownTrack::new(slot.clone(), seq);
        down.negotiated = negotiated;
        peer.down.insert(mid, down);
        let room = self.rooms.entry(peer.room.clone()).or_insert_with(Room::new);
        room.slots.entry(slot).or_default().attach(DownRef::Peer { peer: id, mid });
    }

    /// Send the next subscribe offer if slots wait and no offer is in flight.
    pub(super) fn offer_if_needed(&mut self, id: PeerId) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if !peer.offers_started || peer.pending_offer.is_some() || peer.to_add.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut peer.to_add);
        let mut api = peer.rtc.sdp_api();
        let mids: Vec<(Mid, SlotKey)> = keys
            .into_iter()
            .map(|key| {
                let name = format!("{}-{}", key.owner, key.source.as_str());
                (api.add_media(key.kind(), Direction::SendOnly, Some(name.clone()), Some(name), None), key)
            })
            .collect();
        let Some((offer, pending)) = api.apply() else { return };
        peer.pending_offer = Some(pending);
        for (mid, key) in mids {
            self.attach_down(id, mid, key, false);
        }
        let tracks = self.track_descs(id);
        self.events.push_back(SfuEvent::SubscribeOffer { peer: id, sdp: offer.to_sdp_string(), tracks });
        self.mark_dirty(id);
    }

    pub(super) fn track_descs(&self, id: PeerId) -> Vec<TrackDesc> {
        let Some(peer) = self.peers.get(&id) else { return Vec::new() };
        let mut v: Vec<TrackDesc> =
            peer.down.iter().map(|(mid, d)| TrackDesc { mid: mid.to_string(), key: d.slot.clone() }).collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// A publisher m-line appeared (`MediaAdded`) or changed direction.
    pub(super) fn publisher_media(&mut self, id: PeerId, mid: Mid, kind: MediaKind, receiving: bool, now: Instant) {
        let generation = self.next_generation();
        let Some(peer) = self.peers.get_mut(&id) else { return };
        let Some(source) = peer.source_tags.get(&mid).copied().filter(|s| media_kind_of(*s) == kind) else {
            tracing::debug!(peer = %id, %mid, "m-line without a source tag: ignored");
            return;
        };
        let key = SlotKey::new(&peer.participant, source);
        if !receiving {
            peer.tracks_in.remove(&mid);
            let room = peer.room.clone();
            self.unbind(&room, &key, Feed { peer: id, mid });
            return;
        }
        if peer.tracks_in.get(&mid).is_some_and(|t| t.key.source == source) {
            return;
        }
        peer.tracks_in.insert(mid, TrackIn::new(key.clone(), generation));
        tracing::info!(peer = %id, room = %peer.room, %key, "source published");
        let room = peer.room.clone();
        self.bind(&room, key, Feed { peer: id, mid }, now);
    }

    fn bind(&mut self, room_id: &RoomId, key: SlotKey, feed: Feed, now: Instant) {
        let room = self.rooms.entry(room_id.clone()).or_insert_with(Room::new);
        let slot = room.slots.entry(key.clone()).or_default();
        slot.feed = Some(feed);
        let first = !std::mem::replace(&mut slot.announced, true);
        let has_subscribers = !slot.subscribers.is_empty();
        self.events.push_back(SfuEvent::SourceState { room: room_id.clone(), key: key.clone(), live: true });
        if first {
            self.announce(room_id, &key);
        }
        self.ensure_tap(room_id, key.clone(), now);
        if has_subscribers && key.kind() == MediaKind::Video {
            self.request_keyframe(feed.peer, feed.mid, 0, now);
        }
    }

    fn unbind(&mut self, room_id: &RoomId, key: &SlotKey, feed: Feed) {
        let Some(slot) = self.rooms.get_mut(room_id).and_then(|r| r.slots.get_mut(key)) else { return };
        if slot.feed == Some(feed) {
            slot.feed = None;
            self.feed_lost(room_id, key.clone());
        }
    }

    /// Offer a newly live slot to every subscriber whose policy wants it.
    fn announce(&mut self, room_id: &RoomId, key: &SlotKey) {
        let peers = self.rooms.get(room_id).map(|r| r.peers.clone()).unwrap_or_default();
        for id in peers {
            let Some(peer) = self.peers.get_mut(&id) else { continue };
            if peer.policy().is_some_and(|p| p.wants(key)) {
                peer.to_add.push(key.clone());
                self.offer_if_needed(id);
            }
        }
    }

    /// Ask the publisher feeding a subscriber's down track for a keyframe of the
    /// layer the track waits for (or forwards).
    pub(super) fn request_keyframe_for_down(&mut self, id: PeerId, mid: Mid, now: Instant) {
        let Some(peer) = self.peers.get(&id) else { return };
        let Some(down) = peer.down.get(&mid).filter(|d| d.slot.kind() == MediaKind::Video) else { return };
        let layer = down.layers.waiting_for().or(down.layers.current()).unwrap_or(0);
        if let Some(feed) = self.rooms.get(&peer.room).and_then(|r| feed_of(r, &down.slot)) {
            self.request_keyframe(feed.peer, feed.mid, layer, now);
        }
    }

    /// Aggregated, throttled keyframe request toward one layer of a publisher track.
    pub(super) fn request_keyframe(&mut self, publisher: PeerId, mid: Mid, layer: u8, now: Instant) {
        super::stats::SfuCounters::incr(&self.counters.keyframe_requests_received);
        let Some(track) = self.peers.get_mut(&publisher).and_then(|p| p.tracks_in.get_mut(&mid)) else { return };
        let Some(l) = track.layers.get_mut(usize::from(layer)) else { return };
        if l.keyframes.request(now) {
            let rid = l.rid;
            self.send_pli(publisher, mid, rid);
        } else if let Some(due) = l.keyframes.poll_timeout() {
            self.deadline_added(due);
        }
    }

    pub(super) fn send_due_keyframe_requests(&mut self, now: Instant) {
        let mut due = Vec::new();
        for peer in self.peers.values_mut() {
            for (mid, t) in peer.tracks_in.iter_mut() {
                for l in t.layers.iter_mut() {
                    if l.keyframes.handle_timeout(now) {
                        due.push((peer.id, *mid, l.rid));
                    }
                }
            }
        }
        for (id, mid, rid) in due {
            self.send_pli(id, mid, rid);
        }
    }

    fn send_pli(&mut self, publisher: PeerId, mid: Mid, rid: Option<Rid>) {
        let Some(peer) = self.peers.get_mut(&publisher) else { return };
        if let Some(rx) = peer.rtc.direct_api().stream_rx_by_mid(mid, rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
            tracing::debug!(peer = %publisher, %mid, ?rid, "keyframe requested");
            super::stats::SfuCounters::incr(&self.counters.keyframe_requests_sent);
            self.mark_dirty(publisher);
        }
    }

    /// A fresh track generation; layer `l` of the track is `generation + l`.
    fn next_generation(&mut self) -> u64 {
        let generation = self.next_id_u64();
        self.next_id += MAX_LAYERS as u64;
        generation
    }

    fn next_id_u64(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The feed currently behind a slot (the spotlight resolves to the called-on classroom).
pub(super) fn feed_of(room: &Room, slot: &SlotKey) -> Option<Feed> {
    if slot.owner == SPOTLIGHT {
        let owner = room.spotlight.as_deref()?;
        return room.slots.get(&SlotKey::new(owner, slot.source))?.feed;
    }
    room.slots.get(slot)?.feed
}
