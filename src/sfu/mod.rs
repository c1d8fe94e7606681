//! The forwarding core, sans-IO: no sockets, no tasks, no clocks of its own.
//!
//! `Sfu` owns the WebRTC connections (str0m `Rtc`s in RTP mode) of the rooms of one
//! shard, and routes RTP from publisher tracks to subscriber tracks through slots.
//! It is driven like str0m itself:
//! - input: `handle_datagram`, `handle_timeout` and the negotiation methods
//!   (`publish`, `subscribe`, `accept_answer`, `whep`, ...), each given `now`;
//! - output: `poll_transmit` (datagrams to send), `poll_event` (for signaling),
//!   `poll_timeout` (when to call `handle_timeout` next).
//!
//! Invariants:
//! - After every input, every touched `Rtc` is drained until it returns a timeout
//!   (str0m requires it), so outputs are ready as soon as the input call returns.
//! - This module never imports tokio, axum, GStreamer or the database; the layer
//!   above (rooms, signaling) calls into it, never the other way round.
//! - Payloads are shared (`Arc<[u8]>`) from the publisher's receive path to every
//!   subscriber's send path; nothing on the per-packet path takes a lock.

pub mod connectivity;
pub mod demux;
mod events;
pub mod allocate;
mod bandwidth;
pub mod forward;
pub mod health;
mod loss_cap;
mod playout_delay;
mod negotiate;
pub mod peer;
mod publisher_layers;
mod reprobe;
pub mod room;
pub mod sdp_check;
pub mod sim;
pub mod stats;
pub mod tap;
mod wallclock;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Input, Output};

use self::demux::{DatagramKind, classify, stun_server_ufrag};
use self::peer::{Peer, PeerKind};
use self::room::{Room, SlotKey};
use self::stats::{DropReason, SfuCounters};
pub use self::negotiate::{NegotiationError, PublishRequest};

/// Identity of one WebRTC connection, unique across shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// Identity of a room (a class id).
pub type RoomId = Arc<str>;

/// How long a connection may stay ICE-disconnected before it is closed.
pub const DISCONNECT_GRACE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Default)]
pub struct SfuConfig {
    /// Host candidates advertised to every peer (advertised address + media port).
    pub candidates: Vec<SocketAddr>,
    /// Peer ids of this shard start here (keeps ids unique across shards).
    pub id_base: u64,
    /// Passive ICE-TCP host candidates (advertised address + media port over TCP); empty without ICE-TCP.
    pub tcp_candidates: Vec<SocketAddr>,
}

/// A track of a subscribe offer: which m-line carries which slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackDesc {
    pub mid: String,
    pub key: SlotKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Removed by the layer above (leave, replaced, class closed).
    Removed,
    /// ICE stayed disconnected longer than `DISCONNECT_GRACE`.
    Timeout,
    /// The remote closed DTLS, or the WebRTC stack failed.
    Closed,
    /// A WHEP viewer's sources all ended.
    SourceEnded,
}

/// What the core tells the layer above.
#[derive(Debug, Clone, PartialEq)]
pub enum SfuEvent {
    /// A (re)offer for a subscriber connection; answer with `Sfu::accept_answer`.
    SubscribeOffer { peer: PeerId, sdp: String, tracks: Vec<TrackDesc> },
    /// A slot gained or lost its feed.
    SourceState { room: RoomId, key: SlotKey, live: bool },
    /// DTLS is up: media can flow.
    PeerConnected { peer: PeerId },
    /// A recorded slot got its tap: its packets come out of `Sfu::poll_tap`.
    TapStarted { room: RoomId, tap: tap::TapId, key: SlotKey },
    /// A tap ended (recording stopped or the room closed): finish its file.
    TapEnded { tap: tap::TapId },
    /// The forwarding thread restarted after a panic: every connection of these
    /// rooms is gone, their participants must rejoin.
    ShardReset { rooms: Vec<RoomId> },
    /// A connection's health over the last stats interval (once a second each).
    PeerHealth(Box<health::PeerHealth>),
    /// Tell a simulcast publisher which layers of its m-line `mid` to send (by rid):
    /// the others nobody receives.
    PublisherLayers { peer: PeerId, mid: String, active: Vec<String> },
    /// A connection's server-side ICE ufrag changed (ICE restart): route `ufrag` to
    /// this core (`routed`), or stop routing it.
    IceUfrag { peer: PeerId, ufrag: String, routed: bool },
    /// The connection is gone; forget its ufrag and addresses.
    PeerClosed { peer: PeerId, room: RoomId, ufrag: String, addrs: Vec<SocketAddr>, reason: CloseReason },
}

pub struct Sfu {
    config: SfuConfig,
    counters: Arc<SfuCounters>,
    peers: HashMap<PeerId, Peer>,
    rooms: HashMap<RoomId, Room>,
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    next_id: u64,
    seed: u64,
    dirty: Vec<PeerId>,
    /// Cached `poll_timeout` (None: recompute). Kept exact by `deadline_*`.
    deadline: std::cell::Cell<Option<Option<Instant>>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    taps: HashMap<tap::TapId, tap::Tap>,
    tap_out: VecDeque<tap::TapPacket>,
    /// Set by a tap whose video went too long without a keyframe (see `tap`).
    tap_keyframe_due: bool,
    /// When subscribers' bandwidth is allocated next (see `bandwidth`).
    next_allocation: Option<Instant>,
    /// Whether new subscriber connections estimate their bandwidth (on in the server).
    estimate_bandwidth: bool,
    /// ICE restart state: restarts waiting for an answer, negotiated connections, restart offers' ufrags (see `connectivity`).
    restarts: connectivity::Restarts,
}

impl Sfu {
    pub fn new(config: SfuConfig) -> Self {
        Self::with_counters(config, Arc::default())
    }

    /// A core that adds to existing counters (a restarted shard keeps its metrics).
    pub fn with_counters(config: SfuConfig, counters: Arc<SfuCounters>) -> Self {
        str0m::crypto::from_feature_flags().install_process_default();
        let next_id = config.id_base;
        Sfu {
            config,
            counters,
            peers: HashMap::new(),
            rooms: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            next_id,
            seed: 0x9e37_79b9_7f4a_7c15,
            dirty: Vec::new(),
            deadline: std::cell::Cell::new(None),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            taps: HashMap::new(),
            tap_out: VecDeque::new(),
            tap_keyframe_due: false,
            next_allocation: None,
            estimate_bandwidth: true,
            restarts: connectivity::Restarts::default(),
        }
    }

    /// Turn bandwidth estimation (and with it str0m's pacing) off for subscriber
    /// connections created from now on: the forwarding benchmark measures the
    /// forwarding path alone, with receivers that give no feedback.
    pub fn set_bandwidth_estimation(&mut self, on: bool) {
        self.estimate_bandwidth = on;
    }

    /// Counters of this core, shared with the metrics endpoint.
    pub fn counters(&self) -> Arc<SfuCounters> {
        self.counters.clone()
    }

    pub fn config(&self) -> &SfuConfig {
        &self.config
    }

    /// The first id this core has not handed out.
    pub fn next_free_id(&self) -> u64 {
        self.next_id + 1
    }

    /// Rooms with state on this core.
    pub fn room_ids(&self) -> Vec<RoomId> {
        self.rooms.keys().cloned().collect()
    }

    /// Every connection's ufrag and learned addresses (to unroute them).
    pub fn peer_routes(&self) -> Vec<(String, Vec<SocketAddr>)> {
        self.peers.values().map(|p| (p.ufrag.clone(), p.addrs.clone())).collect()
    }

    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The server-side ICE ufrag of a peer (the socket driver routes STUN by it).
    pub fn peer_ufrag(&self, peer: PeerId) -> Option<&str> {
        self.peers.get(&peer).map(|p| p.ufrag.as_str())
    }

    /// Number of tracks received from publishers, for metrics.
    pub fn track_count(&self) -> usize {
        self.peers.values().map(|p| p.tracks_in.len()).sum()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next (`None`: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if let Some(cached) = self.deadline.get() {
            return cached;
        }
        let earliest = self.scan_timeouts();
        self.deadline.set(Some(earliest));
        earliest
    }

    /// The earliest deadline over every connection and keyframe throttle.
    fn scan_timeouts(&self) -> Option<Instant> {
        let peers = self.peers.values().map(|p| p.next_timeout);
        let keyframes = self.peers.values().flat_map(|p| p.tracks_in.values()).flat_map(|t| t.layers.iter()).filter_map(|l| l.keyframes.poll_timeout());
        let grace = self.peers.values().filter_map(|p| p.disconnected_at.map(|t| t + DISCONNECT_GRACE));
        peers.chain(keyframes).chain(grace).chain(self.allocation_timeout()).min()
    }

    /// A deadline `t` was added: the cache stays exact if `t` is not later.
    fn deadline_added(&self, t: Instant) {
        if let Some(cached) = self.deadline.get() {
            self.deadline.set(Some(Some(cached.map_or(t, |c| c.min(t)))));
        }
    }

    /// A deadline moved from `old` to `new`.
    fn deadline_moved(&self, old: Instant, new: Instant) {
        match self.deadline.get() {
            Some(Some(c)) if new < c => self.deadline.set(Some(Some(new))),
            Some(Some(c)) if old > c => {}
            _ => self.deadline.set(None),
        }
    }

    /// Deadlines were removed or changed in bulk: recompute on the next poll.
    fn deadline_reset(&self) {
        self.deadline.set(None);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<PeerId> = self.peers.values().filter(|p| p.next_timeout <= now).map(|p| p.id).collect();
        for id in due {
            self.feed_rtc(id, Input::Timeout(now));
        }
        self.send_due_keyframe_requests(now);
        self.allocate_if_due(now);
        self.close_stale_peers(now);
        self.drain(now);
        self.deadline_reset();
    }

    /// One datagram received on the shared media port.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        self.handle_receive(now, Protocol::Udp, source, destination, data);
    }

    /// One datagram, or one ICE-TCP frame (`Protocol::Tcp`), received on the media port.
    pub fn handle_receive(&mut self, now: Instant, proto: Protocol, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let kind = classify(data);
        if kind == DatagramKind::Other {
            self.counters.dropped(DropReason::Unrecognized);
            return;
        }
        let Some(id) = self.peer_for(kind, source, data) else {
            self.counters.dropped(DropReason::UnknownSource);
            return;
        };
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.counters.dropped(DropReason::Unrecognized);
            return;
        };
        let receive = Receive { proto, source, destination, contents };
        self.feed_rtc(id, Input::Receive(now, receive));
        self.drain(now);
    }

    /// STUN is routed by ufrag (learning the address), everything else by address.
    fn peer_for(&mut self, kind: DatagramKind, source: SocketAddr, data: &[u8]) -> Option<PeerId> {
        let by_ufrag = (kind == DatagramKind::Stun).then(|| stun_server_ufrag(data)).flatten();
        let Some(id) = by_ufrag.and_then(|u| self.by_ufrag.get(u).copied()) else {
            return self.by_addr.get(&source).copied();
        };
        if self.by_addr.insert(source, id) != Some(id) {
            if let Some(p) = self.peers.get_mut(&id) {
                p.addrs.push(source);
            }
        }
        Some(id)
    }

    fn feed_rtc(&mut self, id: PeerId, input: Input) {
        let Some(peer) = self.peers.get_mut(&id) else { return };
        if peer.rtc.handle_input(input).is_err() {
            self.counters.dropped(DropReason::Rejected);
        }
        self.mark_dirty(id);
    }

    fn mark_dirty(&mut self, id: PeerId) {
        if let Some(p) = self.peers.get_mut(&id) {
            if !p.dirty {
                p.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// Drain every touched `Rtc` until it has nothing more to say.
    fn drain(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            self.drain_peer(id, now);
        }
    }

    fn drain_peer(&mut self, id: PeerId, now: Instant) {
        loop {
            let Some(peer) = self.peers.get_mut(&id) else { return };
            peer.dirty = false;
            if !peer.rtc.is_alive() {
                self.close_peer(id, CloseReason::Closed);
                return;
            }
            match peer.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    let old = std::mem::replace(&mut peer.next_timeout, t);
                    let (side, connected) = (peer.side(), peer.is_connected());
                    let health = peer.health.finish(id, &peer.room, &peer.participant, side, connected);
                    self.deadline_moved(old, t);
                    if let Some(h) = health {
                        self.events.push_back(SfuEvent::PeerHealth(Box::new(h)));
                    }
                    return;
                }
                Ok(Output::Transmit(t)) => self.transmits.push_back(t),
                Ok(Output::Event(e)) => self.on_rtc_event(id, e, now),
                Err(e) => {
                    tracing::warn!(peer = %id, error = %e, "webrtc connection failed");
                    self.close_peer(id, CloseReason::Closed);
                    return;
                }
            }
        }
    }

    fn close_stale_peers(&mut self, now: Instant) {
        let stale: Vec<PeerId> = self
            .peers
            .values()
            .filter(|p| p.disconnected_at.is_some_and(|t| now >= t + DISCONNECT_GRACE))
            .map(|p| p.id)
            .collect();
        for id in stale {
            self.close_peer(id, CloseReason::Timeout);
        }
    }

    /// Remove a connection at the request of the layer above.
    pub fn remove_peer(&mut self, id: PeerId, now: Instant) {
        self.close_peer(id, CloseReason::Removed);
        self.drain(now);
    }

    /// Remove every connection of a room (the class was deleted).
    pub fn close_room(&mut self, room: &str, now: Instant) {
        let ids: Vec<PeerId> = self.rooms.get(room).map(|r| r.peers.clone()).unwrap_or_default();
        for id in ids {
            self.close_peer(id, CloseReason::Removed);
        }
        self.end_taps(&RoomId::from(room));
        self.rooms.remove(room);
        self.drain(now);
    }

    fn close_peer(&mut self, id: PeerId, reason: CloseReason) {
        let Some(mut peer) = self.peers.remove(&id) else { return };
        self.deadline_reset();
        self.forget_restart(id);
        self.send_goodbye(&mut peer);
        self.by_ufrag.remove(&peer.ufrag);
        for a in &peer.addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        self.detach_from_room(&peer);
        tracing::info!(peer = %id, room = %peer.room, participant = %peer.participant, ?reason, "connection closed");
        let (room, ufrag, addrs) = (peer.room, peer.ufrag, peer.addrs);
        self.events.push_back(SfuEvent::PeerClosed { peer: id, room, ufrag, addrs, reason });
    }

    /// Close the connection cleanly (RTCP BYE, DTLS close_notify) so the remote
    /// end learns at once that it is over.
    fn send_goodbye(&mut self, peer: &mut Peer) {
        if !peer.rtc.is_alive() || peer.rtc.close().is_err() {
            return;
        }
        for _ in 0..64 {
            match peer.rtc.poll_output() {
                Ok(Output::Transmit(t)) => self.transmits.push_back(t),
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => return,
            }
        }
    }

    fn detach_from_room(&mut self, peer: &Peer) {
        let Some(room) = self.rooms.get_mut(&peer.room) else { return };
        room.peers.retain(|p| *p != peer.id);
        let mut lost = Vec::new();
        for (key, slot) in room.slots.iter_mut() {
            slot.detach_peer(peer.id);
            if slot.feed.is_some_and(|f| f.peer == peer.id) {
                slot.feed = None;
                lost.push(key.clone());
            }
        }
        if room.peers.is_empty() && !room.recording {
            self.rooms.remove(&peer.room);
        }
        for key in lost {
            self.feed_lost(&peer.room, key);
        }
    }

    /// A slot lost its feed: tell the layer above, and end WHEP viewers that
    /// have nothing left to watch (their player then shows the end).
    fn feed_lost(&mut self, room_id: &RoomId, key: SlotKey) {
        let viewers: Vec<PeerId> = match self.rooms.get(room_id) {
            Some(room) => room.slots.get(&key).map(|s| s.subscribers.iter().filter_map(peer_of).collect()).unwrap_or_default(),
            None => Vec::new(),
        };
        self.events.push_back(SfuEvent::SourceState { room: room_id.clone(), key, live: false });
        for id in viewers {
            if self.is_fixed_without_feeds(id) {
                self.close_peer(id, CloseReason::SourceEnded);
            }
        }
    }

    fn is_fixed_without_feeds(&self, id: PeerId) -> bool {
        let Some(peer) = self.peers.get(&id) else { return false };
        let Some(room) = self.rooms.get(&peer.room) else { return true };
        peer.policy() == Some(&room::Policy::Fixed)
            && peer.down.values().all(|d| room.slots.get(&d.slot).is_none_or(|s| s.feed.is_none()))
    }

    /// A new connection in `room`, registered for demultiplexing.
    fn create_peer(&mut self, now: Instant, room: &RoomId, participant: &str, kind: PeerKind) -> PeerId {
        let id = PeerId(self.next_id);
        self.next_id += 1;
        let mut rtc = peer::build_rtc(now, &self.config.candidates, self.estimate_bandwidth && matches!(kind, PeerKind::Subscriber(_)));
        connectivity::add_tcp_candidates(&mut rtc, &self.config.tcp_candidates);
        let peer = Peer::new(id, room.clone(), participant.into(), kind, rtc, now);
        self.by_ufrag.insert(peer.ufrag.clone(), id);
        self.peers.insert(id, peer);
        self.rooms.entry(room.clone()).or_insert_with(Room::new).peers.push(id);
        self.dirty.push(id);
        self.deadline_added(now);
        id
    }

    /// A pseudo-random 16-bit value (initial sequence numbers).
    fn next_random_u16(&mut self) -> u16 {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 32) as u16
    }
}

fn peer_of(d: &room::DownRef) -> Option<PeerId> {
    match d {
        room::DownRef::Peer { peer, .. } => Some(*peer),
        room::DownRef::Tap(_) => None,
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod simulcast_tests;
