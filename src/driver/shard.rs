//! One forwarding thread: owns an `Sfu` and runs its input/output loop.
//!
//! Invariant: after every input the core's transmits are sent and its events
//! forwarded before the thread waits again; `handle_timeout` runs whenever the
//! core's deadline has passed, even under a continuous stream of datagrams.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use str0m::net::Protocol;
use tokio::sync::mpsc::UnboundedSender;

use super::Routes;
use super::tcp::TcpConns;
use super::taps::{TapMsg, TapSink};
use crate::sfu::stats::SfuCounters;
use crate::sfu::{Sfu, SfuConfig, SfuEvent};

/// Work queued for a shard.
pub enum ShardMsg {
    /// A UDP datagram, or an ICE-TCP frame (`proto` Tcp) from the connection at `source`.
    Datagram { proto: Protocol, source: SocketAddr, data: Vec<u8>, at: Instant },
    Call(Box<dyn FnOnce(&mut Sfu, Instant) + Send>),
}

/// Sizes of a shard, refreshed about once a second, for metrics.
#[derive(Debug, Default)]
pub struct ShardGauges {
    pub peers: AtomicU64,
    pub rooms: AtomicU64,
    pub tracks: AtomicU64,
    pub send_errors: AtomicU64,
}

pub struct Shard {
    pub tx: Sender<ShardMsg>,
    pub counters: Arc<SfuCounters>,
    pub gauges: Arc<ShardGauges>,
}

/// Peer ids of shard `i` start at `i << 48`, so they never collide.
const ID_SHIFT: u32 = 48;
const IDLE_WAKEUP: Duration = Duration::from_millis(500);
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

impl Shard {
    pub fn spawn(
        index: usize,
        (candidates, tcp_candidates): (Vec<SocketAddr>, Vec<SocketAddr>),
        socket: Arc<UdpSocket>,
        (routes, tcp): (Arc<Routes>, Arc<TcpConns>),
        events: UnboundedSender<SfuEvent>,
        taps: TapSink,
    ) -> io::Result<Shard> {
        let config = SfuConfig { candidates, id_base: ((index as u64) << ID_SHIFT) + 1, tcp_candidates };
        let sfu = Sfu::new(config);
        let counters = sfu.counters();
        let gauges = Arc::new(ShardGauges::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let worker = Worker {
            index,
            tcp,
            sfu,
            rx,
            socket,
            routes,
            events,
            taps,
            counters: counters.clone(),
            gauges: gauges.clone(),
            gauges_at: Instant::now(),
        };
        std::thread::Builder::new().name(format!("media-shard-{index}")).spawn(move || worker.run())?;
        Ok(Shard { tx, counters, gauges })
    }
}

struct Worker {
    index: usize,
    /// Where transmits with `Protocol::Tcp` go (ICE-TCP connections).
    tcp: Arc<TcpConns>,
    sfu: Sfu,
    rx: Receiver<ShardMsg>,
    socket: Arc<UdpSocket>,
    routes: Arc<Routes>,
    events: UnboundedSender<SfuEvent>,
    taps: TapSink,
    /// The core's counters (kept across a restart of the core).
    counters: Arc<SfuCounters>,
    gauges: Arc<ShardGauges>,
    gauges_at: Instant,
}

impl Worker {
    fn run(mut self) {
        let local = self.socket.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        loop {
            let deadline = self.sfu.poll_timeout().unwrap_or_else(|| Instant::now() + IDLE_WAKEUP);
            let msg = match self.rx.recv_deadline(deadline) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // str0m panics only on its own bugs; one must not take the shard down.
            if std::panic::catch_unwind(AssertUnwindSafe(|| self.step(msg, local))).is_err() {
                self.reset();
            }
        }
    }

    fn step(&mut self, msg: Option<ShardMsg>, local: SocketAddr) {
        match msg {
            Some(ShardMsg::Datagram { proto, source, data, at }) => self.sfu.handle_receive(at, proto, source, local, &data),
            Some(ShardMsg::Call(job)) => job(&mut self.sfu, Instant::now()),
            None => {}
        }
        let now = Instant::now();
        if self.sfu.poll_timeout().is_some_and(|t| t <= now) {
            self.sfu.handle_timeout(now);
        }
        self.flush();
        self.refresh_gauges(now);
    }

    /// After a panic the core's state cannot be trusted: start over with an
    /// empty core and tell the rooms layer, whose clients then rejoin.
    fn reset(&mut self) {
        let rooms = self.sfu.room_ids();
        for (ufrag, addrs) in self.sfu.peer_routes() {
            self.routes.forget(&ufrag, &addrs);
        }
        tracing::error!(rooms = rooms.len(), "forwarding core panicked; shard restarted, its classes rejoin");
        // Ids continue where the old core stopped, so no id means two connections.
        let config = SfuConfig { id_base: self.sfu.next_free_id(), ..self.sfu.config().clone() };
        self.sfu = Sfu::with_counters(config, self.counters.clone());
        let _ = self.events.send(SfuEvent::ShardReset { rooms });
    }

    fn flush(&mut self) {
        while let Some(t) = self.sfu.poll_transmit() {
            if t.proto == Protocol::Tcp {
                self.tcp.send(t.destination, &t.contents);
            } else if self.socket.send_to(&t.contents, t.destination).is_err() {
                self.gauges.send_errors.fetch_add(1, Relaxed);
            }
        }
        while let Some(e) = self.sfu.poll_event() {
            match &e {
                SfuEvent::PeerClosed { ufrag, addrs, .. } => self.routes.forget(ufrag, addrs),
                SfuEvent::IceUfrag { ufrag, routed, .. } => self.routes.route_ufrag(ufrag, *routed, self.index),
                SfuEvent::TapStarted { room, tap, key } => {
                    self.taps.control(TapMsg::Started { room: room.clone(), tap: *tap, key: key.clone() });
                }
                SfuEvent::TapEnded { tap } => {
                    self.taps.control(TapMsg::Ended { tap: *tap });
                }
                _ => {}
            }
            let _ = self.events.send(e);
        }
        while let Some(p) = self.sfu.poll_tap() {
            self.taps.packet(p, &self.counters);
        }
    }

    fn refresh_gauges(&mut self, now: Instant) {
        if now < self.gauges_at + GAUGE_INTERVAL {
            return;
        }
        self.gauges_at = now;
        self.gauges.peers.store(self.sfu.peer_count() as u64, Relaxed);
        self.gauges.rooms.store(self.sfu.room_count() as u64, Relaxed);
        self.gauges.tracks.store(self.sfu.track_count() as u64, Relaxed);
    }
}
