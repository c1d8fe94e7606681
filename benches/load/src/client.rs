//! The str0m peers of the load generator: RTP mode, H.264 constrained
//! baseline (packetization-mode 1) and Opus, one host candidate on its own
//! UDP socket.

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use anyhow::Result;
use str0m::{Candidate, Rtc, RtcConfig};

pub fn rtc(local: SocketAddr) -> Result<Rtc> {
    let mut config = RtcConfig::new().set_rtp_mode(true).clear_codecs().enable_opus(true, false);
    config.codec_config().add_h264(127.into(), Some(121.into()), true, 0x42e01f);
    let mut rtc = config.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    Ok(rtc)
}

/// A socket on `ip` with a large receive buffer, and its peer.
pub fn socket_and_rtc(ip: &str) -> Result<(UdpSocket, Rtc)> {
    let sock = UdpSocket::bind((ip, 0))?;
    set_bufs(&sock, 4 << 20);
    let rtc = rtc(sock.local_addr()?)?;
    Ok((sock, rtc))
}

/// Socket buffers of `bytes`, past net.core.[rw]mem_max where allowed (root), so
/// a late receive thread does not drop what the server sent.
pub fn set_bufs(sock: &UdpSocket, bytes: i32) {
    use std::os::fd::AsRawFd;
    for (force, plain) in [(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF), (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF)] {
        // SAFETY: a valid fd and a pointer to an int of the size given.
        let ok = unsafe { libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, force, (&bytes as *const i32).cast(), 4) } == 0;
        if !ok {
            // SAFETY: as above.
            unsafe { libc::setsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, plain, (&bytes as *const i32).cast(), 4) };
        }
    }
}
