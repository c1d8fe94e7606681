//! Batched UDP sends: the datagrams one input produced (a forwarded packet's
//! copies for every subscriber) leave in `sendmmsg` calls of up to `MAX`
//! datagrams instead of one `sendto` each. Used by the floor (`--batch true`)
//! and the criterion send-path benchmark; it was tried in classcast's driver
//! and taken out again: on loopback here it saved no measurable CPU per packet
//! (docs/PERFORMANCE.md, "Optimizations tried").
//!
//! Invariants: datagrams leave in the order they were pushed; a datagram the
//! kernel refuses is counted and skipped, the rest of the batch still goes;
//! after warm-up, pushing and flushing allocate nothing (buffers keep their
//! capacity). UDP GSO does not apply here: a fan-out's datagrams all go to
//! different destinations, and GSO needs one destination per call.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per `sendmmsg` call (the kernel caps a call at UIO_MAXIOV = 1024).
pub const MAX: usize = 64;

/// Datagrams waiting to be sent, with the kernel structures that describe them.
pub struct Batch<T> {
    pending: Vec<(T, SocketAddr)>,
    names: Vec<(libc::sockaddr_storage, libc::socklen_t)>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iov` and `hdrs` are written and used only inside
// `flush` and point into this struct's own vectors; between calls they are stale
// data that is never dereferenced, so moving the batch to another thread is sound.
unsafe impl<T: Send> Send for Batch<T> {}

impl<T: AsRef<[u8]>> Default for Batch<T> {
    fn default() -> Self {
        Batch::new()
    }
}

impl<T: AsRef<[u8]>> Batch<T> {
    pub fn new() -> Batch<T> {
        Batch { pending: Vec::with_capacity(MAX), names: Vec::with_capacity(MAX), iov: Vec::with_capacity(MAX), hdrs: Vec::with_capacity(MAX) }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Queue one datagram; sends the batch first if it is full. Returns the
    /// number of datagrams the kernel refused.
    pub fn push(&mut self, socket: &UdpSocket, data: T, dest: SocketAddr) -> u64 {
        let refused = if self.pending.len() >= MAX { self.flush(socket) } else { 0 };
        self.pending.push((data, dest));
        refused
    }

    /// Send everything queued. Returns the number of datagrams the kernel refused.
    pub fn flush(&mut self, socket: &UdpSocket) -> u64 {
        let n = self.pending.len();
        if n == 0 {
            return 0;
        }
        self.describe();
        let refused = self.send_described(socket, n);
        self.pending.clear();
        refused
    }

    fn send_described(&mut self, socket: &UdpSocket, n: usize) -> u64 {
        let mut done = 0;
        let mut refused = 0;
        while done < n {
            // SAFETY: hdrs[done..n] describe live buffers in `pending` and names in
            // `names`, built by `describe` just above and not moved since.
            let r = unsafe { libc::sendmmsg(socket.as_raw_fd(), self.hdrs.as_mut_ptr().add(done), (n - done) as u32, 0) };
            if r > 0 {
                done += r as usize;
            } else if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            } else {
                // The first datagram of the rest was refused (e.g. ICMP unreachable): skip it.
                refused += 1;
                done += 1;
            }
        }
        refused
    }

    /// `flush`, then hand the sent buffers to `pool` for reuse (no allocation
    /// once the pool holds a batch's worth).
    pub fn flush_recycle(&mut self, socket: &UdpSocket, pool: &mut Vec<T>) -> u64 {
        let n = self.pending.len();
        if n == 0 {
            return 0;
        }
        self.describe();
        let refused = self.send_described(socket, n);
        pool.extend(self.pending.drain(..).map(|(d, _)| d));
        refused
    }

    /// Build the iovecs, addresses and message headers for `pending`.
    fn describe(&mut self) {
        self.names.clear();
        self.iov.clear();
        self.hdrs.clear();
        for (data, dest) in &self.pending {
            let bytes = data.as_ref();
            self.iov.push(libc::iovec { iov_base: bytes.as_ptr() as *mut libc::c_void, iov_len: bytes.len() });
            self.names.push(sockaddr(dest));
        }
        for i in 0..self.pending.len() {
            // SAFETY: an all-zero mmsghdr is a valid value (null pointers, zero lengths).
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            h.msg_hdr.msg_iov = &mut self.iov[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_name = (&mut self.names[i].0 as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = self.names[i].1;
            self.hdrs.push(h);
        }
    }
}

/// A socket address in the kernel's layout.
fn sockaddr(a: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
    let mut s: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *(&mut s as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = v6.port().to_be();
            sin6.sin6_addr.s6_addr = v6.ip().octets();
            sin6.sin6_flowinfo = v6.flowinfo();
            sin6.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (s, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn receiver() -> UdpSocket {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        r
    }

    #[test]
    fn sends_every_datagram_in_order_to_its_destination() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (receiver(), receiver());
        let mut batch = Batch::new();
        for i in 0..(MAX as u8 + 10) {
            let dest = if i % 2 == 0 { a.local_addr().unwrap() } else { b.local_addr().unwrap() };
            assert_eq!(batch.push(&tx, vec![i; 3 + i as usize], dest), 0);
        }
        assert_eq!(batch.flush(&tx), 0);
        assert!(batch.is_empty());
        let mut buf = [0u8; 256];
        for i in (0..(MAX as u8 + 10)).step_by(2) {
            let (n, _) = a.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &vec![i; 3 + i as usize][..]);
        }
        let (n, _) = b.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[1u8; 4][..]);
    }

    #[test]
    fn a_refused_datagram_is_counted_and_the_rest_still_go() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = receiver();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        let mut batch = Batch::new();
        batch.push(&tx, vec![1u8], v6);
        batch.push(&tx, vec![2u8], a.local_addr().unwrap());
        assert_eq!(batch.flush(&tx), 1, "an IPv6 destination on an IPv4 socket is refused");
        let mut buf = [0u8; 8];
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[2u8]);
    }

    #[test]
    fn recycled_buffers_come_back() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a = receiver();
        let mut batch = Batch::new();
        let mut pool = Vec::new();
        batch.push(&tx, vec![7u8; 5], a.local_addr().unwrap());
        assert_eq!(batch.flush_recycle(&tx, &mut pool), 0);
        assert_eq!(pool, vec![vec![7u8; 5]]);
        assert!(batch.is_empty());
    }

    #[test]
    fn nothing_to_flush_is_a_no_op() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut batch: Batch<Vec<u8>> = Batch::new();
        assert_eq!(batch.flush(&tx), 0);
    }
}
