//! The floor: only the work no SFU can avoid for the load generator's packets.
//! One thread receives the publisher's SRTP packets on one UDP socket,
//! authenticates and decrypts each once, and for every subscriber encrypts a
//! copy with that subscriber's own key (AEAD_AES_256_GCM, the profile classcast
//! negotiates with str0m clients) and sends it with the server's send method
//! (`sendto` per packet, or `sendmmsg` batches with `--batch`).
//!
//! Run by `classcast-load --target floor`; not a server: no signaling, no ICE,
//! no DTLS, no RTCP, no sequence rewriting, no retransmission buffer.
//! Invariant: no allocation per packet (buffers are reused).

#[path = "../srtp.rs"]
mod srtp;

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Address to receive the publisher's packets on.
    #[arg(long)]
    listen: SocketAddr,
    /// The subscribers' addresses, comma-separated.
    #[arg(long, value_delimiter = ',')]
    dests: Vec<SocketAddr>,
    /// Send each packet's copies with sendmmsg batches instead of one sendto each.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    batch: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sock = UdpSocket::bind(args.listen).with_context(|| format!("bind {}", args.listen))?;
    let inbound = srtp::Srtp::new(0);
    let keys: Vec<srtp::Srtp> = (1..=args.dests.len() as u64).map(srtp::Srtp::new).collect();
    let mut outs: Vec<Vec<u8>> = args.dests.iter().map(|_| Vec::with_capacity(1600)).collect();
    let names: Vec<libc::sockaddr_in> = args.dests.iter().map(sockaddr).collect();
    let mut buf = vec![0u8; 2048];
    let mut plain = Vec::with_capacity(2048);
    let mut rocs = Rocs::default();
    loop {
        let (n, _) = sock.recv_from(&mut buf)?;
        plain.clear();
        plain.extend_from_slice(&buf[..n]);
        if plain.len() < 12 {
            continue;
        }
        let roc = rocs.update(&plain);
        if !inbound.unprotect(&mut plain, roc) {
            continue;
        }
        for (out, key) in outs.iter_mut().zip(&keys) {
            out.clear();
            out.extend_from_slice(&plain);
            key.protect(out, roc);
        }
        if args.batch {
            send_batched(&sock, &outs, &names);
        } else {
            for (out, dest) in outs.iter().zip(&args.dests) {
                let _ = sock.send_to(out, dest);
            }
        }
    }
}

/// Rollover counters per SSRC from the 16-bit sequence numbers.
#[derive(Default)]
struct Rocs(Vec<(u32, u16, u32)>);

impl Rocs {
    fn update(&mut self, p: &[u8]) -> u32 {
        let ssrc = u32::from_be_bytes([p[8], p[9], p[10], p[11]]);
        let seq = u16::from_be_bytes([p[2], p[3]]);
        match self.0.iter_mut().find(|e| e.0 == ssrc) {
            Some(e) => {
                if seq < e.1 && e.1 - seq > 32768 {
                    e.2 += 1;
                }
                e.1 = seq;
                e.2
            }
            None => {
                self.0.push((ssrc, seq, 0));
                0
            }
        }
    }
}

fn sockaddr(a: &SocketAddr) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is valid.
    let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    s.sin_family = libc::AF_INET as u16;
    s.sin_port = a.port().to_be();
    if let SocketAddr::V4(v4) = a {
        s.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
    }
    s
}

/// One `sendmmsg` per 64 copies.
fn send_batched(sock: &UdpSocket, outs: &[Vec<u8>], names: &[libc::sockaddr_in]) {
    const CHUNK: usize = 64;
    // SAFETY: all-zero iovec/mmsghdr arrays are valid; the pointers set below stay valid for the call.
    let mut iov: [libc::iovec; CHUNK] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; CHUNK] = unsafe { std::mem::zeroed() };
    for (o, n) in outs.chunks(CHUNK).zip(names.chunks(CHUNK)) {
        for i in 0..o.len() {
            iov[i] = libc::iovec { iov_base: o[i].as_ptr() as *mut _, iov_len: o[i].len() };
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = &n[i] as *const _ as *mut _;
            hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
        }
        let mut done = 0;
        while done < o.len() {
            // SAFETY: hdrs[done..len] are initialised above and point at live buffers.
            let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr().add(done), (o.len() - done) as u32, 0) };
            if r <= 0 {
                break;
            }
            done += r as usize;
        }
    }
}
