//! ICE-TCP on the media port (RFC 6544, passive side), for schools whose
//! firewalls block UDP: the media port number is also a TCP listener.
//!
//! Each connection carries RFC 4571 frames (a 2-byte big-endian length, then one
//! STUN/DTLS/RTP/RTCP packet). A reader thread per connection routes it by the
//! ufrag of its first frame (a STUN request, as on UDP) to a shard, then feeds
//! every frame to that shard as a datagram with `Protocol::Tcp`; the shard's
//! transmits with `Protocol::Tcp` come back through `TcpConns::send` to a writer
//! thread per connection, which frames them.
//!
//! Invariants:
//! - Every refused frame or connection is counted under a `DropReason`: a frame
//!   of length 0 (`tcp_bad_framing`), longer than `MAX_FRAME` (`tcp_oversize`), a
//!   first frame naming no known ufrag (`unknown_source`), a connection over the
//!   limit (`tcp_too_many_connections`), silent for `idle` (`tcp_idle`), a frame
//!   for a full send queue (`tcp_backpressure`) or a gone connection
//!   (`tcp_no_connection`). All but the last two close the connection.
//! - The shard never blocks on a TCP peer: it only `try_send`s into a bounded
//!   queue; a stuck writer times out (`WRITE_TIMEOUT`) and closes its connection.
//! - Both threads of a connection end when it closes; nothing here panics on
//!   any input.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use dashmap::DashMap;
use str0m::net::Protocol;

use super::Routes;
use super::shard::{Shard, ShardMsg};
use crate::sfu::demux::{DatagramKind, classify};
use crate::sfu::stats::{DropReason, SfuCounters};

/// The largest frame accepted (the UDP path's receive buffer is as large).
pub const MAX_FRAME: usize = 2048;
/// Frames queued toward one connection before new ones are dropped.
const SEND_QUEUE: usize = 512;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const THREAD_STACK: usize = 128 * 1024;

/// Limits of the TCP side.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    pub max_connections: usize,
    /// A connection that carries nothing this long is closed (ICE consent checks
    /// keep a used one busy every few seconds).
    pub idle: Duration,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits { max_connections: 1024, idle: Duration::from_secs(30) }
    }
}

/// The open ICE-TCP connections, by remote address, and their counters.
#[derive(Debug, Default)]
pub struct TcpConns {
    writers: DashMap<SocketAddr, Sender<Vec<u8>>>,
    open: AtomicUsize,
    pub limits: TcpLimits,
    pub counters: Arc<SfuCounters>,
}

impl TcpConns {
    pub fn new(limits: TcpLimits) -> Self {
        TcpConns { limits, ..Default::default() }
    }

    /// Queue one packet (framed here) toward the connection from `to`.
    pub fn send(&self, to: SocketAddr, packet: &[u8]) {
        let Ok(len) = u16::try_from(packet.len()) else {
            self.counters.dropped(DropReason::TcpOversize);
            return;
        };
        let Some(tx) = self.writers.get(&to).map(|w| w.clone()) else {
            self.counters.dropped(DropReason::TcpNoConnection);
            return;
        };
        let mut frame = Vec::with_capacity(packet.len() + 2);
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(packet);
        match tx.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.counters.dropped(DropReason::TcpBackpressure),
            Err(TrySendError::Disconnected(_)) => self.counters.dropped(DropReason::TcpNoConnection),
        }
    }

    /// Number of open connections.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }
}

/// Accept ICE-TCP connections on `listener` until the process ends.
pub fn spawn_acceptor(listener: TcpListener, shards: Arc<[Shard]>, routes: Arc<Routes>, conns: Arc<TcpConns>) -> io::Result<()> {
    std::thread::Builder::new().name("media-tcp-accept".into()).spawn(move || {
        for stream in listener.incoming() {
            match stream {
                Ok(s) => admit(s, &shards, &routes, &conns),
                Err(e) => {
                    tracing::debug!(error = %e, "ICE-TCP accept failed");
                    // Out of descriptors: give the process a moment instead of spinning.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    })?;
    Ok(())
}

fn admit(stream: TcpStream, shards: &Arc<[Shard]>, routes: &Arc<Routes>, conns: &Arc<TcpConns>) {
    let Ok(remote) = stream.peer_addr() else { return };
    if conns.open.fetch_add(1, Relaxed) >= conns.limits.max_connections {
        conns.open.fetch_sub(1, Relaxed);
        conns.counters.dropped(DropReason::TcpTooManyConnections);
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let conn = Conn { stream, remote, shards: shards.clone(), routes: routes.clone(), conns: conns.clone() };
    let spawned = std::thread::Builder::new().name("media-tcp".into()).stack_size(THREAD_STACK).spawn(move || conn.run());
    if spawned.is_err() {
        conns.open.fetch_sub(1, Relaxed);
        conns.counters.dropped(DropReason::TcpTooManyConnections);
    }
}

/// Why a connection's reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Closed,
    Dropped(DropReason),
}

struct Conn {
    stream: TcpStream,
    remote: SocketAddr,
    shards: Arc<[Shard]>,
    routes: Arc<Routes>,
    conns: Arc<TcpConns>,
}

impl Conn {
    fn run(self) {
        if let Err(e) = self.start_writer() {
            tracing::debug!(error = %e, "ICE-TCP connection not set up");
        } else if let Stop::Dropped(reason) = self.read_loop() {
            self.conns.counters.dropped(reason);
        }
        self.conns.writers.remove(&self.remote);
        let _ = self.stream.shutdown(Shutdown::Both);
        self.conns.open.fetch_sub(1, Relaxed);
    }

    fn start_writer(&self) -> io::Result<()> {
        self.stream.set_nodelay(true)?;
        self.stream.set_read_timeout(Some(self.conns.limits.idle))?;
        let mut out = self.stream.try_clone()?;
        out.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(SEND_QUEUE);
        std::thread::Builder::new().name("media-tcp-write".into()).stack_size(THREAD_STACK).spawn(move || {
            for frame in rx {
                if out.write_all(&frame).is_err() {
                    let _ = out.shutdown(Shutdown::Both);
                    return;
                }
            }
        })?;
        self.conns.writers.insert(self.remote, tx);
        Ok(())
    }

    fn read_loop(&self) -> Stop {
        let mut stream = &self.stream;
        let mut buf = vec![0u8; MAX_FRAME];
        let mut shard = None;
        loop {
            let len = match read_frame(&mut stream, &mut buf) {
                Ok(len) => len,
                Err(stop) => return stop,
            };
            let frame = &buf[..len];
            let i = match shard {
                Some(i) => i,
                None => match self.routes.shard_of_ufrag(frame) {
                    Some(i) => *shard.insert(i),
                    None => return Stop::Dropped(DropReason::UnknownSource),
                },
            };
            if classify(frame) == DatagramKind::Other {
                self.conns.counters.dropped(DropReason::Unrecognized);
                continue;
            }
            let msg = ShardMsg::Datagram { proto: Protocol::Tcp, source: self.remote, data: frame.to_vec(), at: Instant::now() };
            if self.shards[i].tx.send(msg).is_err() {
                return Stop::Closed;
            }
        }
    }
}

/// Read one RFC 4571 frame into `buf`; its length, or why the connection stops.
fn read_frame(stream: &mut impl Read, buf: &mut [u8]) -> Result<usize, Stop> {
    let mut head = [0u8; 2];
    read_exact(stream, &mut head)?;
    let len = usize::from(u16::from_be_bytes(head));
    if len == 0 {
        return Err(Stop::Dropped(DropReason::TcpBadFraming));
    }
    let Some(body) = buf.get_mut(..len) else {
        return Err(Stop::Dropped(DropReason::TcpOversize));
    };
    read_exact(stream, body)?;
    Ok(len)
}

fn read_exact(stream: &mut impl Read, buf: &mut [u8]) -> Result<(), Stop> {
    match stream.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(Stop::Dropped(DropReason::TcpIdle)),
        Err(_) => Err(Stop::Closed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::demux::tests::binding_request;

    #[test]
    fn frames_are_read_and_bad_ones_refused() {
        let mut buf = [0u8; MAX_FRAME];
        let mut ok: &[u8] = &[0, 3, 1, 2, 3, 0, 1, 9];
        assert_eq!(read_frame(&mut ok, &mut buf), Ok(3));
        assert_eq!(&buf[..3], &[1, 2, 3]);
        assert_eq!(read_frame(&mut ok, &mut buf), Ok(1));
        assert_eq!(read_frame(&mut ok, &mut buf), Err(Stop::Closed), "end of stream");
        let mut zero: &[u8] = &[0, 0, 1];
        assert_eq!(read_frame(&mut zero, &mut buf), Err(Stop::Dropped(DropReason::TcpBadFraming)));
        let big = (MAX_FRAME as u16 + 1).to_be_bytes();
        let mut over: &[u8] = &[big[0], big[1], 7, 7];
        assert_eq!(read_frame(&mut over, &mut buf), Err(Stop::Dropped(DropReason::TcpOversize)));
        let mut short: &[u8] = &[0, 9, 1, 2];
        assert_eq!(read_frame(&mut short, &mut buf), Err(Stop::Closed), "a frame cut short");
    }

    #[test]
    fn random_streams_never_panic() {
        let mut x: u32 = 99;
        let mut buf = [0u8; MAX_FRAME];
        for _ in 0..5_000 {
            let len = (x % 300) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| { x = x.wrapping_mul(1_103_515_245).wrapping_add(12345 + i as u32); (x >> 16) as u8 }).collect();
            let mut r: &[u8] = &bytes;
            while read_frame(&mut r, &mut buf).is_ok() {}
        }
    }

    #[test]
    fn sending_to_no_connection_is_counted() {
        let conns = TcpConns::default();
        conns.send("127.0.0.1:9".parse().unwrap(), &[1, 2, 3]);
        conns.send("127.0.0.1:9".parse().unwrap(), &vec![0u8; 70_000]);
        assert_eq!(conns.counters.drops(DropReason::TcpNoConnection), 1);
        assert_eq!(conns.counters.drops(DropReason::TcpOversize), 1);
    }

    /// A driver with ICE-TCP; returns it and its media address.
    fn driver(limits: TcpLimits) -> (super::super::MediaDriver, tokio::sync::mpsc::UnboundedReceiver<crate::sfu::SfuEvent>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let local: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
        let (taps, _) = super::super::taps::tap_queue(16);
        (super::super::MediaDriver::start_with(local, vec![local], 1, tx, taps, Some(limits)).unwrap(), rx)
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(payload);
        f
    }

    /// The connection is closed by the server (read returns end of stream or reset).
    fn closed(s: &mut TcpStream) -> bool {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 16];
        matches!(s.read(&mut b), Ok(0) | Err(_))
    }

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[tokio::test]
    async fn bad_connections_are_counted_and_closed() {
        let (d, _events) = driver(TcpLimits { max_connections: 3, idle: Duration::from_millis(300) });
        let addr = d.local_addr();
        let c = d.tcp.counters.clone();
        let mut zero = TcpStream::connect(addr).unwrap();
        zero.write_all(&[0, 0]).unwrap();
        assert!(closed(&mut zero));
        let mut over = TcpStream::connect(addr).unwrap();
        over.write_all(&frame(&vec![0u8; MAX_FRAME + 1])).unwrap();
        assert!(closed(&mut over));
        let mut stranger = TcpStream::connect(addr).unwrap();
        stranger.write_all(&frame(&binding_request("nobody:x"))).unwrap();
        assert!(closed(&mut stranger));
        let mut idle = TcpStream::connect(addr).unwrap();
        assert!(closed(&mut idle));
        wait_for("counts", || c.drops(DropReason::TcpIdle) == 1 && d.tcp.open() == 0);
        assert_eq!(c.drops(DropReason::TcpBadFraming), 1);
        assert_eq!(c.drops(DropReason::TcpOversize), 1);
        assert_eq!(c.drops(DropReason::UnknownSource), 1);
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_refused() {
        let (d, _events) = driver(TcpLimits { max_connections: 2, idle: Duration::from_secs(30) });
        let addr = d.local_addr();
        let _a = TcpStream::connect(addr).unwrap();
        let _b = TcpStream::connect(addr).unwrap();
        wait_for("two open", || d.tcp.open() == 2);
        let mut third = TcpStream::connect(addr).unwrap();
        assert!(closed(&mut third));
        assert_eq!(d.tcp.counters.drops(DropReason::TcpTooManyConnections), 1);
        assert_eq!(d.tcp.open(), 2);
    }

    #[tokio::test]
    async fn a_first_frame_naming_a_known_ufrag_keeps_its_connection() {
        let (d, _events) = driver(TcpLimits::default());
        let peer = d.subscribe("k1".into(), "r1".into(), crate::sfu::room::Policy::Audience { own_id: None }).await.unwrap();
        let ufrag = d.call("k1", move |sfu, _, _, _| sfu.peer_ufrag(peer).map(str::to_string)).await.unwrap().unwrap();
        let mut s = TcpStream::connect(d.local_addr()).unwrap();
        // Not a valid check (no integrity): routed to the connection, which rejects it.
        s.write_all(&frame(&binding_request(&format!("{ufrag}:cli")))).unwrap();
        wait_for("the connection to be open", || d.tcp.open() == 1);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(d.tcp.counters.drops(DropReason::UnknownSource), 0, "routed by its ufrag");
        assert_eq!(d.tcp.open(), 1, "the connection stays open");
    }
}
