//! The subscribers' receive side: a few threads, each owning a set of
//! subscriber sockets in one epoll set, reading with `recvmmsg`.
//!
//! Per packet the cost is a header parse, a sequence check and a send-time
//! lookup (SRTP leaves the RTP header in the clear). Only a sample goes through
//! the subscriber's str0m `Rtc` (SRTP authentication and decryption): every packet
//! of a stream until its first authenticated one, then one in 64. An
//! authenticated sample's payload hash names the publisher packet it carries,
//! which fixes the stream's sequence offset (the server renumbers per
//! subscriber); from then on every packet maps to its publisher send time.
//!
//! Invariants: a packet counts as received only if it maps to a publisher packet
//! sent inside the measurement window; the client sends no RTCP (it would carry
//! NACKs for the packets it does not decrypt), only STUN and DTLS.

use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Receive};
use str0m::{Event, Input, Output, Rtc};

use crate::shared::{Shared, payload_hash};

const SAMPLE_MASK: u16 = 63;
const BATCH: usize = 32;
const BUF: usize = 1600;
const STALE_NS: u64 = 5_000_000_000;

#[derive(Default)]
struct Stream {
    ssrc: u32,
    kind: Option<usize>,
    offset: Option<u16>,
    last: Option<u16>,
}

/// What one subscriber saw.
#[derive(Default, Clone, Debug)]
pub struct SubStats {
    /// Packets sent by the publisher inside the window and received here.
    pub received: u64,
    pub datagrams: u64,
    pub gaps: u64,
    pub reordered: u64,
    pub samples_fed: u64,
    pub samples_ok: u64,
    pub offset_mismatch: u64,
    pub unmapped: u64,
    pub connected: bool,
}

pub struct Sub {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub rtc: Option<Rtc>,
    streams: Vec<Stream>,
    rtc_due: Instant,
    pub st: SubStats,
}

impl Sub {
    /// A subscriber driven by a str0m `Rtc` (ICE, DTLS, sample decryption).
    pub fn with_rtc(sock: UdpSocket, rtc: Rtc) -> std::io::Result<Sub> {
        let local = sock.local_addr()?;
        sock.set_nonblocking(true)?;
        Ok(Sub { sock, local, rtc: Some(rtc), streams: Vec::new(), rtc_due: Instant::now(), st: SubStats::default() })
    }

    /// A raw receiver (floor): streams known up front, sequence numbers unchanged.
    pub fn raw(sock: UdpSocket, ssrcs: [u32; 2]) -> std::io::Result<Sub> {
        let local = sock.local_addr()?;
        sock.set_nonblocking(true)?;
        let streams = ssrcs.iter().enumerate().map(|(k, s)| Stream { ssrc: *s, kind: Some(k), offset: Some(0), last: None }).collect();
        let st = SubStats { connected: true, ..Default::default() };
        Ok(Sub { sock, local, rtc: None, streams, rtc_due: Instant::now() + Duration::from_secs(3600), st })
    }
}

/// Latency histogram: 10 us buckets up to 1 s, then one overflow bucket.
#[derive(Clone)]
pub struct Hist(pub Vec<u64>);

impl Hist {
    pub fn new() -> Hist {
        Hist(vec![0; 100_001])
    }
    fn add(&mut self, ns: u64) {
        let i = ((ns / 10_000) as usize).min(100_000);
        self.0[i] += 1;
    }
    pub fn merge(&mut self, o: &Hist) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a += b;
        }
    }
    /// The `q` quantile in milliseconds (upper edge of its bucket), None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.0.iter().sum();
        if total == 0 {
            return None;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, c) in self.0.iter().enumerate() {
            acc += c;
            if acc >= want {
                return Some((i + 1) as f64 / 100.0);
            }
        }
        None
    }
}

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1])
}

fn is_rtcp(d: &[u8]) -> bool {
    d.len() >= 8 && d[0] >> 6 == 2 && (192..=223).contains(&d[1])
}

/// `recvmmsg` buffers, allocated once per thread (no allocation per packet).
struct Batch {
    bufs: Box<[[u8; BUF]]>,
    names: Box<[libc::sockaddr_in]>,
    _iov: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
}

impl Batch {
    fn new() -> Batch {
        let mut bufs: Box<[[u8; BUF]]> = vec![[0u8; BUF]; BATCH].into_boxed_slice();
        // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
        let mut names: Box<[libc::sockaddr_in]> = vec![unsafe { std::mem::zeroed() }; BATCH].into_boxed_slice();
        let mut iov: Box<[libc::iovec]> = bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: BUF }).collect();
        let hdrs = iov
            .iter_mut()
            .zip(names.iter_mut())
            .map(|(v, n)| {
                // SAFETY: an all-zero mmsghdr is valid; the pointers set below point into boxes owned by the Batch.
                let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
                h.msg_hdr.msg_name = (n as *mut libc::sockaddr_in).cast();
                h
            })
            .collect();
        Batch { bufs, names, _iov: iov, hdrs }
    }
}

pub struct Receiver_ {
    shared: Arc<Shared>,
    subs: Vec<Sub>,
    hist: Hist,
    epoll: i32,
}

/// Run one receive thread until `shared.stop`; new subscribers arrive on `incoming`.
pub fn run(shared: Arc<Shared>, incoming: Receiver<Sub>) -> (Vec<SubStats>, Hist) {
    // SAFETY: plain syscall; a failure shows as -1 and every epoll_wait then fails, ending the loop below.
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut r = Receiver_ { shared, subs: Vec::new(), hist: Hist::new(), epoll };
    let mut batch = Batch::new();
    let mut events: Vec<libc::epoll_event> = vec![libc::epoll_event { events: 0, u64: 0 }; 128];
    let mut sweep = Instant::now();
    while !r.shared.stop.load(std::sync::atomic::Ordering::Relaxed) {
        while let Ok(s) = incoming.try_recv() {
            r.add(s);
        }
        // SAFETY: `events` outlives the call and its length is passed.
        let n = unsafe { libc::epoll_wait(r.epoll, events.as_mut_ptr(), events.len() as i32, 5) };
        for ev in events.iter().take(n.max(0) as usize) {
            r.read_socket(ev.u64 as usize, &mut batch);
        }
        let now = Instant::now();
        if now >= sweep {
            r.timeouts(now);
            sweep = now + Duration::from_millis(10);
        }
    }
    // SAFETY: closing the fd this thread created.
    unsafe { libc::close(r.epoll) };
    (r.subs.into_iter().map(|s| s.st).collect(), r.hist)
}

impl Receiver_ {
    fn add(&mut self, mut s: Sub) {
        let idx = self.subs.len();
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: idx as u64 };
        // SAFETY: the socket's fd stays open while the Sub lives in `self.subs`.
        unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, s.sock.as_raw_fd(), &mut ev) };
        let now = Instant::now();
        if let Some(rtc) = &mut s.rtc {
            let _ = rtc.handle_input(Input::Timeout(now));
        }
        drain(&self.shared, &mut s);
        self.subs.push(s);
    }

    fn read_socket(&mut self, idx: usize, b: &mut Batch) {
        let Some(sub) = self.subs.get_mut(idx) else { return };
        for h in b.hdrs.iter_mut() {
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        // SAFETY: the batch's headers point into its own boxed buffers, alive and sized as declared.
        let got = unsafe { libc::recvmmsg(sub.sock.as_raw_fd(), b.hdrs.as_mut_ptr(), BATCH as u32, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
        if got <= 0 {
            return;
        }
        let now = Instant::now();
        let now_ns = self.shared.ns(now);
        for i in 0..got as usize {
            let len = b.hdrs[i].msg_len as usize;
            let from = sockaddr(&b.names[i]);
            on_datagram(&self.shared, &mut self.hist, sub, &b.bufs[i][..len], from, now, now_ns);
        }
    }

    fn timeouts(&mut self, now: Instant) {
        for s in &mut self.subs {
            if now < s.rtc_due {
                continue;
            }
            if let Some(rtc) = &mut s.rtc {
                let _ = rtc.handle_input(Input::Timeout(now));
            }
            drain(&self.shared, s);
        }
    }
}

fn sockaddr(n: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(u32::from_be(n.sin_addr.s_addr).into(), u16::from_be(n.sin_port)))
}

fn on_datagram(shared: &Shared, hist: &mut Hist, sub: &mut Sub, data: &[u8], from: SocketAddr, now: Instant, now_ns: u64) {
    sub.st.datagrams += 1;
    let feed = if is_rtp(data) && sub.st.connected { on_rtp(shared, hist, sub, data, now_ns) } else { true };
    if !feed {
        return;
    }
    let Some(rtc) = &mut sub.rtc else { return };
    let Ok(recv) = Receive::new(Protocol::Udp, from, sub.local, data) else { return };
    if is_rtp(data) {
        sub.st.samples_fed += 1;
    }
    let _ = rtc.handle_input(Input::Receive(now, recv));
    drain(shared, sub);
}

/// Count, sequence-check and time one RTP packet from its clear header; true if
/// it should also be authenticated as a sample.
fn on_rtp(shared: &Shared, hist: &mut Hist, sub: &mut Sub, d: &[u8], now_ns: u64) -> bool {
    let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
    let seq = u16::from_be_bytes([d[2], d[3]]);
    let s = stream(&mut sub.streams, ssrc);
    match s.last {
        Some(last) => {
            let delta = seq.wrapping_sub(last) as i16;
            if delta > 1 {
                sub.st.gaps += (delta - 1) as u64;
            } else if delta <= 0 {
                sub.st.reordered += 1;
            }
            if delta > 0 {
                s.last = Some(seq);
            }
        }
        None => s.last = Some(seq),
    }
    let (Some(kind), Some(off)) = (s.kind, s.offset) else { return true };
    let sent = shared.send_time(kind, seq.wrapping_sub(off));
    if sent == 0 || sent > now_ns || now_ns - sent > STALE_NS {
        sub.st.unmapped += 1;
    } else if shared.in_window(sent) {
        sub.st.received += 1;
        hist.add(now_ns - sent);
    }
    sub.rtc.is_some() && seq & SAMPLE_MASK == 0
}

fn stream(streams: &mut Vec<Stream>, ssrc: u32) -> &mut Stream {
    let i = match streams.iter().position(|s| s.ssrc == ssrc) {
        Some(i) => i,
        None => {
            streams.push(Stream { ssrc, ..Default::default() });
            streams.len() - 1
        }
    };
    &mut streams[i]
}

/// Drain the subscriber's `Rtc` until it names its next timeout.
fn drain(shared: &Shared, sub: &mut Sub) {
    let Some(rtc) = &mut sub.rtc else { return };
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                sub.rtc_due = t;
                return;
            }
            Ok(Output::Transmit(t)) => {
                if !is_rtcp(&t.contents) {
                    let _ = sub.sock.send_to(&t.contents, t.destination);
                }
            }
            Ok(Output::Event(Event::Connected)) => sub.st.connected = true,
            Ok(Output::Event(Event::RtpPacket(p))) => {
                sub.st.samples_ok += 1;
                if let Some((kind, pseq)) = shared.lookup(payload_hash(&p.payload)) {
                    let off = p.header.sequence_number.wrapping_sub(pseq);
                    let s = stream(&mut sub.streams, *p.header.ssrc);
                    if s.offset.is_some_and(|o| o != off) {
                        sub.st.offset_mismatch += 1;
                    }
                    s.offset = Some(off);
                    s.kind = Some(kind);
                }
            }
            Ok(Output::Event(_)) => {}
            Err(_) => {
                sub.rtc_due = Instant::now() + Duration::from_millis(50);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_the_histogram() {
        let mut h = Hist::new();
        assert_eq!(h.quantile_ms(0.5), None);
        for us in [100u64, 200, 300, 400] {
            h.add(us * 1000);
        }
        assert_eq!(h.quantile_ms(0.5), Some(0.21));
        assert_eq!(h.quantile_ms(0.99), Some(0.41));
    }

    #[test]
    fn rtp_and_rtcp_are_told_apart() {
        assert!(is_rtp(&[0x80, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!is_rtp(&[0x80, 200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(is_rtcp(&[0x80, 201, 0, 0, 0, 0, 0, 0]));
        assert!(!is_rtcp(&[0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0]));
    }
}
