//! The floor: only the work no SFU can avoid for the load generator's packets.
//! One thread receives the publisher's SRTP packets on one UDP socket,
//! authenticates and decrypts each once, and for every subscriber encrypts a
//! copy with that subscriber's own key (AEAD_AES_256_GCM, the profile classcast
//! negotiates with str0m clients) and sends it with the server's send method
//! (`sendto` per packet, as classcast's driver does; `sendmmsg` batches with
//! `--batch true`, for comparison).
//!
//! Run by `classcast-load --target floor`; not a server: no signaling, no ICE,
//! no DTLS, no RTCP, no sequence rewriting, no retransmission buffer.
//! Invariant: no allocation per packet (buffers are reused).
#![allow(dead_code)]

#[path = "../batch.rs"]
mod batch;
#[path = "../srtp.rs"]
mod srtp;

use std::net::{SocketAddr, UdpSocket};

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
    let mut pool: Vec<Vec<u8>> = args.dests.iter().map(|_| Vec::with_capacity(1600)).collect();
    let mut batch = batch::Batch::new();
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
        for (key, dest) in keys.iter().zip(&args.dests) {
            let mut out = pool.pop().unwrap_or_default();
            out.clear();
            out.extend_from_slice(&plain);
            key.protect(&mut out, roc);
            if args.batch {
                batch.push(&sock, out, *dest);
            } else {
                let _ = sock.send_to(&out, dest);
                pool.push(out);
            }
        }
        batch.flush_recycle(&sock, &mut pool);
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

