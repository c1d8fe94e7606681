//! The teacher: sends the clip's packets at their RTP times, looping the clip
//! (sequence numbers and timestamps continue), through a str0m `Rtc` (classcast,
//! Janus) or as raw SRTP with a fixed key (the floor).
//!
//! Invariant: a packet's send time is recorded in `Shared` right before the
//! datagram that carries it is handed to the kernel.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use str0m::format::Codec;
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, Input, Output, Rtc};

use crate::clip::{AUDIO, Clip, VIDEO};
use crate::shared::{Shared, payload_hash};
use crate::srtp::Srtp;

pub const FLOOR_SSRCS: [u32; 2] = [0x1111_0001, 0x1111_0002];
const CLOCKS: [u64; 2] = [90_000, 48_000];

pub enum Conn {
    /// mids: video, audio.
    Rtc { rtc: Rtc, mids: [Mid; 2] },
    Raw { srtp: Srtp, dest: SocketAddr },
}

pub struct Publisher {
    pub sock: UdpSocket,
    pub conn: Conn,
    ssrcs: [u32; 2],
    pending: [(u16, u64); 2],
    rtc_due: Instant,
    pub sent: u64,
}

impl Publisher {
    pub fn new(sock: UdpSocket, conn: Conn) -> Publisher {
        Publisher { sock, conn, ssrcs: FLOOR_SSRCS, pending: [(0, 0); 2], rtc_due: Instant::now(), sent: 0 }
    }

    /// Drive ICE and DTLS until the connection is up.
    pub fn connect(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut connected = matches!(self.conn, Conn::Raw { .. });
        while !connected {
            if Instant::now() > deadline {
                bail!("the publisher did not connect within {timeout:?}");
            }
            connected = self.service(Instant::now() + Duration::from_millis(20), None)?;
        }
        if let Conn::Rtc { rtc, mids } = &mut self.conn {
            for (k, mid) in mids.iter().enumerate() {
                let mut api = rtc.direct_api();
                let Some(tx) = api.stream_tx_by_mid(*mid, None) else { bail!("no send stream for mid {mid}") };
                self.ssrcs[k] = *tx.ssrc();
            }
        }
        Ok(())
    }

    /// Send the clip in real time until `shared.stop`.
    pub fn run(&mut self, clip: &Clip, shared: &Arc<Shared>) -> Result<()> {
        let start = Instant::now();
        let mut seq = [1u64, 1u64];
        for lap in 0u32.. {
            let lap_start = start + clip.duration * lap;
            for p in &clip.packets {
                if shared.stop.load(Relaxed) {
                    return Ok(());
                }
                self.service(lap_start + p.at, Some(shared))?;
                let ts = p.ts.wrapping_add((clip.duration.as_micros() as u64 * lap as u64 * CLOCKS[p.kind] / 1_000_000) as u32);
                self.send(shared, p.kind, seq[p.kind], ts, p.marker, &p.payload)?;
                seq[p.kind] += 1;
            }
        }
        Ok(())
    }

    fn send(&mut self, shared: &Shared, kind: usize, seq: u64, ts: u32, marker: bool, payload: &[u8]) -> Result<()> {
        let hash = payload_hash(payload);
        self.pending[kind] = (seq as u16, hash);
        self.sent += 1;
        match &mut self.conn {
            Conn::Raw { srtp, dest } => {
                let mut buf = Vec::with_capacity(12 + payload.len() + crate::srtp::TAG);
                buf.extend_from_slice(&[0x80, if marker { 0x80 } else { 0 } | if kind == VIDEO { 127 } else { 111 }]);
                buf.extend_from_slice(&(seq as u16).to_be_bytes());
                buf.extend_from_slice(&ts.to_be_bytes());
                buf.extend_from_slice(&self.ssrcs[kind].to_be_bytes());
                buf.extend_from_slice(payload);
                srtp.protect(&mut buf, (seq >> 16) as u32);
                shared.sent(kind, seq as u16, hash, Instant::now());
                // A refused send (ICMP from a server that is going away) is not the publisher's failure.
                let _ = self.sock.send_to(&buf, *dest);
            }
            Conn::Rtc { rtc, mids } => {
                let codec = if kind == AUDIO { Codec::Opus } else { Codec::H264 };
                let pt = rtc.codec_config().find(|p| p.spec().codec == codec).map(|p| p.pt()).unwrap_or(127.into());
                let w = RtpWrite::new(pt, seq.into(), ts, Instant::now(), payload.to_vec()).marker(marker).nackable(true);
                if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mids[kind], None) {
                    tx.write_rtp(w);
                }
                self.drain(Some(shared))?;
            }
        }
        Ok(())
    }

    /// Receive and run timers until `until`; true once the connection is up.
    fn service(&mut self, until: Instant, shared: Option<&Shared>) -> Result<bool> {
        let mut connected = false;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(connected);
            }
            let Conn::Rtc { rtc, .. } = &mut self.conn else {
                std::thread::sleep(until - now);
                continue;
            };
            if now >= self.rtc_due {
                rtc.handle_input(Input::Timeout(now))?;
                connected |= self.drain(shared)?;
                continue;
            }
            let wait = until.min(self.rtc_due).saturating_duration_since(now).max(Duration::from_micros(100));
            self.sock.set_read_timeout(Some(wait))?;
            let mut buf = [0u8; 2000];
            if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
                let local = self.sock.local_addr()?;
                if let Ok(r) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                    rtc.handle_input(Input::Receive(Instant::now(), r))?;
                }
                connected |= self.drain(shared)?;
            }
        }
    }

    fn drain(&mut self, shared: Option<&Shared>) -> Result<bool> {
        let Conn::Rtc { rtc, .. } = &mut self.conn else { return Ok(true) };
        let mut connected = false;
        loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => {
                    self.rtc_due = t;
                    return Ok(connected);
                }
                Output::Transmit(t) => {
                    let d = &t.contents;
                    if let Some(shared) = shared.filter(|_| d.len() >= 12 && d[0] >> 6 == 2 && !(192..=223).contains(&d[1])) {
                        let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                        let seq = u16::from_be_bytes([d[2], d[3]]);
                        if let Some(k) = self.ssrcs.iter().position(|s| *s == ssrc) {
                            let hash = if self.pending[k].0 == seq { self.pending[k].1 } else { 0 };
                            shared.sent(k, seq, hash, Instant::now());
                        }
                    }
                    let _ = self.sock.send_to(d, t.destination);
                }
                Output::Event(Event::Connected) => connected = true,
                Output::Event(_) => {}
            }
        }
    }
}
