//! The thin I/O driver around the sans-IO core: one UDP socket shared by every
//! peer, one receive thread, and one forwarding thread (shard) per core.
//!
//! Invariants:
//! - A room lives on exactly one shard (chosen by hashing its id), so all of a
//!   class's forwarding happens on one thread without locks.
//! - The receive thread routes a datagram to a shard by source address, or for a
//!   STUN request from a new address by the ICE ufrag it names; a datagram no
//!   shard owns is counted (`unknown_source`) and dropped there.
//! - Signaling never waits on the media path: calls into a shard are queued
//!   closures answered through a oneshot channel.
//! - Events from the core go out on an unbounded channel consumed by the rooms
//!   layer; the core is never blocked by a slow consumer.

mod shard;
pub mod taps;
pub mod tcp;

use std::hash::{Hash, Hasher};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use tokio::sync::mpsc::UnboundedSender;

use crate::sfu::demux::{DatagramKind, classify, stun_server_ufrag};
use crate::sfu::stats::{DropReason, SfuCounters};
use crate::sfu::{NegotiationError, PeerId, PublishRequest, RoomId, Sfu, SfuEvent};
use crate::sfu::room::{Policy, SlotKey};
pub use shard::ShardGauges;
use shard::{Shard, ShardMsg};

/// Which shard owns a ufrag or a remote address.
#[derive(Debug, Default)]
pub struct Routes {
    by_ufrag: DashMap<String, usize>,
    by_addr: DashMap<SocketAddr, usize>,
}

impl Routes {
    fn shard_for(&self, source: SocketAddr, data: &[u8]) -> Option<usize> {
        let kind = classify(data);
        if kind == DatagramKind::Stun {
            if let Some(shard) = stun_server_ufrag(data).and_then(|u| self.by_ufrag.get(u).map(|s| *s)) {
                self.by_addr.insert(source, shard);
                return Some(shard);
            }
        }
        self.by_addr.get(&source).map(|s| *s)
    }

    /// Route `ufrag` to `shard` (or stop routing it), after an ICE restart.
    fn route_ufrag(&self, ufrag: &str, routed: bool, shard: usize) {
        if routed {
            self.by_ufrag.insert(ufrag.to_string(), shard);
        } else {
            self.by_ufrag.remove(ufrag);
        }
    }

    /// The shard serving the server ufrag a STUN request names.
    fn shard_of_ufrag(&self, data: &[u8]) -> Option<usize> {
        stun_server_ufrag(data).and_then(|u| self.by_ufrag.get(u).map(|s| *s))
    }

    fn forget(&self, ufrag: &str, addrs: &[SocketAddr]) {
        self.by_ufrag.remove(ufrag);
        for a in addrs {
            self.by_addr.remove(a);
        }
    }
}

/// The driver failed to answer (its thread is gone).
#[derive(Debug, thiserror::Error)]
#[error("media worker unavailable")]
pub struct DriverGone;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Negotiation(#[from] NegotiationError),
    #[error(transparent)]
    Gone(#[from] DriverGone),
}

/// Handle to the media threads, cheap to clone.
#[derive(Clone)]
pub struct MediaDriver {
    shards: Arc<[Shard]>,
    routes: Arc<Routes>,
    unrouted: Arc<SfuCounters>,
    tcp: Arc<tcp::TcpConns>,
    local: SocketAddr,
}

impl MediaDriver {
    /// Bind the media port and start `workers` shards plus the receive thread.
    /// Recorded packets go to `taps`; events for the rooms layer to `events`.
    pub fn start(
        bind: SocketAddr,
        candidates: Vec<SocketAddr>,
        workers: usize,
        events: UnboundedSender<SfuEvent>,
        taps: taps::TapSink,
    ) -> io::Result<Self> {
        Self::start_with(bind, candidates, workers, events, taps, None)
    }

    /// As `start`; with `ice_tcp` the media port is also a TCP port (the same
    /// number) taking ICE-TCP connections within those limits, advertised as
    /// passive TCP candidates.
    pub fn start_with(
        bind: SocketAddr,
        candidates: Vec<SocketAddr>,
        workers: usize,
        events: UnboundedSender<SfuEvent>,
        taps: taps::TapSink,
        ice_tcp: Option<tcp::TcpLimits>,
    ) -> io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(bind)?);
        let local = socket.local_addr()?;
        let listener = if ice_tcp.is_some() { Some(std::net::TcpListener::bind(local)?) } else { None };
        let candidates = candidates.into_iter().map(|c| SocketAddr::new(c.ip(), local.port())).collect::<Vec<_>>();
        let tcp_candidates = if ice_tcp.is_some() { candidates.clone() } else { Vec::new() };
        let routes = Arc::new(Routes::default());
        let tcp = Arc::new(tcp::TcpConns::new(ice_tcp.unwrap_or_default()));
        let shards: Arc<[Shard]> = (0..workers.max(1))
            .map(|i| Shard::spawn(i, (candidates.clone(), tcp_candidates.clone()), socket.clone(), (routes.clone(), tcp.clone()), events.clone(), taps.clone()))
            .collect::<io::Result<Vec<_>>>()?
            .into();
        let unrouted = Arc::new(SfuCounters::default());
        spawn_receiver(socket, shards.clone(), routes.clone(), unrouted.clone())?;
        if let Some(listener) = listener {
            tcp::spawn_acceptor(listener, shards.clone(), routes.clone(), tcp.clone())?;
        }
        Ok(MediaDriver { shards, routes, unrouted, tcp, local })
    }

    /// The bound media address (its port is the one advertised).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Counters of every shard plus the receive thread's.
    pub fn counters(&self) -> Vec<Arc<SfuCounters>> {
        let mut v: Vec<_> = self.shards.iter().map(|s| s.counters.clone()).collect();
        v.push(self.unrouted.clone());
        v.push(self.tcp.counters.clone());
        v
    }

    pub fn gauges(&self) -> Vec<Arc<ShardGauges>> {
        self.shards.iter().map(|s| s.gauges.clone()).collect()
    }

    fn shard_of(&self, room: &str) -> (usize, &Shard) {
        let mut h = std::hash::DefaultHasher::new();
        room.hash(&mut h);
        let i = (h.finish() % self.shards.len() as u64) as usize;
        (i, &self.shards[i])
    }

    /// Run `f` on the shard that owns `room`.
    async fn call<R: Send + 'static>(&self, room: &str, f: impl FnOnce(&mut Sfu, Instant, &Routes, usize) -> R + Send + 'static) -> Result<R, DriverGone> {
        let (i, shard) = self.shard_of(room);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let routes = self.routes.clone();
        let job = move |sfu: &mut Sfu, now: Instant| {
            let _ = tx.send(f(sfu, now, &routes, i));
        };
        shard.tx.send(ShardMsg::Call(Box::new(job))).map_err(|_| DriverGone)?;
        rx.await.map_err(|_| DriverGone)
    }

    pub async fn publish(&self, req: PublishRequest) -> Result<(PeerId, String), CallError> {
        let room = req.room.clone();
        let r = self.call(&room, move |sfu, now, routes, i| register(sfu.publish(now, req), sfu, routes, i)).await?;
        Ok(r?)
    }

    pub async fn subscribe(&self, room: RoomId, participant: String, policy: Policy) -> Result<PeerId, DriverGone> {
        let key = room.clone();
        self.call(&key, move |sfu, now, routes, i| {
            let id = sfu.subscribe(now, &room, &participant, policy);
            register_ufrag(sfu, routes, i, id);
            id
        })
        .await
    }

    /// Let a subscriber's offers flow (after its owner is registered).
    pub async fn start_offers(&self, room: &str, peer: PeerId) -> Result<(), DriverGone> {
        self.call(room, move |sfu, now, _, _| sfu.start_offers(now, peer)).await
    }

    pub async fn whep(&self, room: RoomId, participant: String, offer: String) -> Result<(PeerId, String), CallError> {
        let key = room.clone();
        let r = self.call(&key, move |sfu, now, routes, i| register(sfu.whep(now, &room, &participant, &offer), sfu, routes, i)).await?;
        Ok(r?)
    }

    /// Restart ICE on a subscribe connection (its client lost the media path).
    pub async fn restart_ice(&self, room: &str, peer: PeerId) -> Result<(), CallError> {
        Ok(self.call(room, move |sfu, now, _, _| sfu.restart_ice(now, peer)).await??)
    }

    pub async fn accept_answer(&self, room: &str, peer: PeerId, sdp: String) -> Result<(), CallError> {
        Ok(self.call(room, move |sfu, now, _, _| sfu.accept_answer(now, peer, &sdp)).await??)
    }

    pub async fn set_paused(&self, room: &str, peer: PeerId, keys: Vec<SlotKey>, paused: bool) -> Result<(), DriverGone> {
        self.call(room, move |sfu, now, _, _| sfu.set_paused(now, peer, &keys, paused)).await
    }

    pub async fn set_recording(&self, room: RoomId, on: bool) -> Result<(), DriverGone> {
        let key = room.clone();
        self.call(&key, move |sfu, now, _, _| sfu.set_recording(now, &room, on)).await
    }

    pub async fn set_spotlight(&self, room: RoomId, owner: Option<String>) -> Result<(), DriverGone> {
        let key = room.clone();
        self.call(&key, move |sfu, now, _, _| sfu.set_spotlight(now, &room, owner)).await
    }

    pub async fn remove_peer(&self, room: &str, peer: PeerId) -> Result<(), DriverGone> {
        self.call(room, move |sfu, now, _, _| sfu.remove_peer(peer, now)).await
    }

    pub async fn close_room(&self, room: &str) -> Result<(), DriverGone> {
        let owned = room.to_string();
        self.call(room, move |sfu, now, _, _| sfu.close_room(&owned, now)).await
    }
}

fn register<T>(r: Result<(PeerId, T), NegotiationError>, sfu: &Sfu, routes: &Routes, shard: usize) -> Result<(PeerId, T), NegotiationError> {
    if let Ok((id, _)) = &r {
        register_ufrag(sfu, routes, shard, *id);
    }
    r
}

fn register_ufrag(sfu: &Sfu, routes: &Routes, shard: usize, id: PeerId) {
    if let Some(u) = sfu.peer_ufrag(id) {
        routes.by_ufrag.insert(u.to_string(), shard);
    }
}

/// The receive thread: one blocking `recv_from` loop feeding the shards.
fn spawn_receiver(socket: Arc<UdpSocket>, shards: Arc<[Shard]>, routes: Arc<Routes>, unrouted: Arc<SfuCounters>) -> io::Result<()> {
    std::thread::Builder::new().name("media-recv".into()).spawn(move || {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, source) = match socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP port unreachable from a vanished peer surfaces here on Linux.
                    tracing::debug!(error = %e, "media socket receive error");
                    continue;
                }
            };
            let data = &buf[..n];
            match routes.shard_for(source, data) {
                Some(i) => {
                    let msg = ShardMsg::Datagram { proto: str0m::net::Protocol::Udp, source, data: data.to_vec(), at: Instant::now() };
                    if shards[i].tx.send(msg).is_err() {
                        return;
                    }
                }
                None => unrouted.dropped(if classify(data) == DatagramKind::Other { DropReason::Unrecognized } else { DropReason::UnknownSource }),
            }
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::SfuEvent;

    fn start() -> (MediaDriver, tokio::sync::mpsc::UnboundedReceiver<SfuEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let local: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let (taps, _) = taps::tap_queue(256);
        (MediaDriver::start(local, vec![local], 1, tx, taps).unwrap(), rx)
    }

    #[tokio::test]
    async fn a_panicking_core_is_restarted_and_its_rooms_told() {
        let (driver, mut events) = start();
        let room: RoomId = "k1".into();
        let peer = driver.subscribe(room.clone(), "r1".into(), Policy::Audience { own_id: None }).await.unwrap();
        assert!(driver.call("k1", |_, _, _, _| -> () { panic!("injected fault") }).await.is_err());
        let reset = loop {
            match events.recv().await.unwrap() {
                SfuEvent::ShardReset { rooms } => break rooms,
                _ => continue,
            }
        };
        assert_eq!(reset, vec![room.clone()]);
        // The shard serves again, from an empty core.
        let count = driver.call("k1", |sfu, _, _, _| sfu.peer_count()).await.unwrap();
        assert_eq!(count, 0);
        let again = driver.subscribe(room, "r1".into(), Policy::Audience { own_id: None }).await.unwrap();
        assert_ne!(again, peer);
    }

    #[tokio::test]
    async fn datagrams_from_strangers_are_counted_not_routed() {
        let (driver, _events) = start();
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for first in [0x00u8, 0x16, 0x80, 0xff] {
            sock.send_to(&[first, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20], driver.local_addr()).unwrap();
        }
        let total = || driver.counters().iter().map(|c| DropReason::ALL.iter().map(|r| c.drops(*r)).sum::<u64>()).sum::<u64>();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while total() < 4 && Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        assert_eq!(total(), 4);
        assert_eq!(driver.unrouted.drops(DropReason::UnknownSource), 3);
        assert_eq!(driver.unrouted.drops(DropReason::Unrecognized), 1);
    }
}
