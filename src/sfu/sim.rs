//! An in-memory network of real str0m client peers around one `Sfu`: no sockets,
//! explicit time (1 ms steps), synthetic H.264 and Opus packets. Used by the
//! core's tests and by the forwarding benchmark.
//!
//! Invariant: nothing here opens a socket; addresses are labels on 127.0.0.1.
//! Test support only (never used by the server): it panics on harness misuse,
//! which is what a test wants.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

use super::room::{Policy, SlotKey};
use super::{PeerId, PublishRequest, Sfu, SfuConfig, SfuEvent};
use crate::signaling::protocol::Source;

const SERVER: &str = "127.0.0.1:5000";
pub const MS: Duration = Duration::from_millis(1);

/// A received RTP packet as a test client sees it.
#[derive(Debug, Clone)]
pub struct Got {
    pub mid: Mid,
    pub seq: u64,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
    /// The playout-delay header extension's minimum, in ms, if the packet carried one.
    pub play_delay_min_ms: Option<u64>,
}

pub struct Client {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pub got: Vec<Got>,
    pub keyframe_requests: usize,
    /// Server→client RTP sequence numbers to drop once on the wire.
    pub drop_once: Vec<u16>,
    /// Keep received packets in `got` (off in benchmarks).
    pub record: bool,
    /// A bottleneck on the server→client path (`None`: delivered at once).
    pub link: Option<Link>,
}

/// A server→client bottleneck: a rate (serialization), a one-way delay, a
/// bounded queue (tail drop) and a random loss rate, on explicit time.
#[derive(Debug)]
pub struct Link {
    pub rate_bps: u64,
    pub delay: Duration,
    /// Packets lost at random, per thousand.
    pub loss_per_mille: u64,
    /// Longest queueing delay before tail drop.
    pub queue_limit: Duration,
    busy_until: Option<Instant>,
    in_flight: std::collections::VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    rng: u64,
    pub dropped: u64,
}

impl Link {
    pub fn new(rate_bps: u64, delay: Duration, loss_per_mille: u64) -> Link {
        Link { rate_bps, delay, loss_per_mille, queue_limit: 200 * MS, busy_until: None, in_flight: Default::default(), rng: 0x2545_f491_4f6c_dd1d, dropped: 0 }
    }

    /// The same link with another random-loss sequence (`seed` non-zero).
    pub fn seeded(mut self, seed: u64) -> Link {
        self.rng = seed.max(1);
        self
    }

    fn enqueue(&mut self, now: Instant, source: SocketAddr, data: Vec<u8>) {
        let start = self.busy_until.filter(|t| *t > now).unwrap_or(now);
        if start - now > self.queue_limit || self.random_loss() {
            self.dropped += 1;
            return;
        }
        let done = start + Duration::from_nanos(data.len() as u64 * 8 * 1_000_000_000 / self.rate_bps.max(1));
        self.busy_until = Some(done);
        self.in_flight.push_back((done + self.delay, source, data));
    }

    fn random_loss(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 1000 < self.loss_per_mille
    }

    fn due(&mut self, now: Instant) -> Option<(SocketAddr, Vec<u8>)> {
        if self.in_flight.front().is_some_and(|(t, _, _)| *t <= now) {
            return self.in_flight.pop_front().map(|(_, s, d)| (s, d));
        }
        None
    }
}

pub struct Net {
    pub sfu: Sfu,
    pub clients: Vec<Client>,
    pub now: Instant,
    pub events: Vec<SfuEvent>,
    pub room: super::RoomId,
    /// Subscriber connections and the client that answers their offers.
    subscribers: Vec<(PeerId, usize)>,
    /// Packets the SFU handed to recording taps.
    pub tapped: Vec<super::tap::TapPacket>,
}

fn client_rtc(now: Instant) -> Rtc {
    let mut config = RtcConfig::new()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .set_extension(5, str0m::rtp::Extension::PlayoutDelay);
    config.codec_config().add_h264(127.into(), Some(121.into()), true, 0x42e01f);
    config.build(now)
}

impl Default for Net {
    fn default() -> Self {
        Net::new()
    }
}

impl Net {
    pub fn new() -> Net {
        let now = Instant::now();
        let config = SfuConfig { candidates: vec![SERVER.parse().unwrap()], id_base: 1, ..Default::default() };
        Net { sfu: Sfu::new(config), clients: Vec::new(), now, events: Vec::new(), room: "class-1".into(), subscribers: Vec::new(), tapped: Vec::new() }
    }

    pub fn add_client(&mut self) -> usize {
        let addr: SocketAddr = format!("127.0.0.1:{}", 6000 + self.clients.len()).parse().unwrap();
        let mut rtc = client_rtc(self.now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        self.clients.push(Client { rtc, addr, got: Vec::new(), keyframe_requests: 0, drop_once: Vec::new(), record: true, link: None });
        self.clients.len() - 1
    }

    /// Client `c` publishes the given sources; returns its publish connection and mids.
    pub fn publish(&mut self, c: usize, participant: &str, sources: &[Source]) -> (PeerId, Vec<Mid>) {
        self.publish_layers(c, participant, sources, &[])
    }

    /// Like `publish`, with video sent as simulcast layers under `rids` (none: no simulcast).
    pub fn publish_layers(&mut self, c: usize, participant: &str, sources: &[Source], rids: &[&str]) -> (PeerId, Vec<Mid>) {
        let mut api = self.clients[c].rtc.sdp_api();
        let mids: Vec<Mid> = sources
            .iter()
            .map(|s| {
                let kind = if s.is_audio() { MediaKind::Audio } else { MediaKind::Video };
                let simulcast = (kind == MediaKind::Video && !rids.is_empty()).then(|| {
                    let mut sc = Simulcast::new();
                    rids.iter().for_each(|r| sc.add_send_layer(SimulcastLayer::new(r)));
                    sc
                });
                api.add_media(kind, Direction::SendOnly, None, None, simulcast)
            })
            .collect();
        let (offer, pending) = api.apply().unwrap();
        let req = PublishRequest {
            room: self.room.clone(),
            participant: participant.into(),
            peer: None,
            offer: offer.to_sdp_string(),
            sources: mids.iter().zip(sources).map(|(m, s)| (m.to_string(), *s)).collect(),
        };
        let (peer, answer) = self.sfu.publish(self.now, req).unwrap();
        let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
        self.clients[c].rtc.sdp_api().accept_answer(pending, answer).unwrap();
        (peer, mids)
    }

    /// Client `c` subscribes with `policy`; offers are answered as they come.
    pub fn subscribe(&mut self, c: usize, participant: &str, policy: Policy) -> PeerId {
        let room = self.room.clone();
        let next = super::PeerId(self.sfu.next_id);
        self.subscribers.push((next, c));
        let peer = self.sfu.subscribe(self.now, &room, participant, policy);
        assert_eq!(peer, next);
        self.sfu.start_offers(self.now, peer);
        self.deliver_server_output();
        peer
    }

    pub fn step(&mut self) {
        self.now += MS;
        let now = self.now;
        self.sfu.handle_timeout(now);
        for c in 0..self.clients.len() {
            self.clients[c].rtc.handle_input(Input::Timeout(now)).unwrap();
            self.drain_client(c);
            self.deliver_link(c);
        }
        self.deliver_server_output();
    }

    /// Hand client `c` what its link delivers by now.
    fn deliver_link(&mut self, c: usize) {
        let now = self.now;
        while let Some((source, data)) = self.clients[c].link.as_mut().and_then(|l| l.due(now)) {
            let dest = self.clients[c].addr;
            self.receive_at_client(c, source, dest, &data);
        }
    }

    fn receive_at_client(&mut self, c: usize, source: SocketAddr, dest: SocketAddr, data: &[u8]) {
        let recv = Receive::new(Protocol::Udp, source, dest, data).unwrap();
        let _ = self.clients[c].rtc.handle_input(Input::Receive(self.now, recv));
        self.drain_client(c);
        while let Some(e) = self.sfu.poll_event() {
            self.on_event(e);
        }
    }

    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    fn drain_client(&mut self, c: usize) {
        loop {
            let out = self.clients[c].rtc.poll_output().unwrap();
            match out {
                Output::Timeout(_) => return,
                Output::Transmit(t) => {
                    let server: SocketAddr = SERVER.parse().unwrap();
                    self.sfu.handle_datagram(self.now, t.source, server, &t.contents);
                }
                Output::Event(Event::RtpPacket(p)) => {
                    let client = &mut self.clients[c];
                    if !client.record {
                        continue;
                    }
                    let mid = client.rtc.direct_api().stream_rx(&p.header.ssrc).map(|s| s.mid()).unwrap();
                    let got = Got { mid, seq: *p.seq_no, ts: p.header.timestamp, ssrc: *p.header.ssrc, payload: p.payload.to_vec(), play_delay_min_ms: p.header.ext_vals.play_delay_min.map(|t| t.rebase(str0m::media::Frequency::MILLIS).numer()) };
                    client.got.push(got);
                }
                Output::Event(Event::KeyframeRequest(_)) => self.clients[c].keyframe_requests += 1,
                Output::Event(_) => {}
            }
        }
    }

    fn deliver_server_output(&mut self) {
        while let Some(e) = self.sfu.poll_event() {
            self.on_event(e);
        }
        while let Some(p) = self.sfu.poll_tap() {
            self.tapped.push(p);
        }
        while let Some(t) = self.sfu.poll_transmit() {
            let Some(c) = self.clients.iter().position(|c| c.addr == t.destination) else { continue };
            if self.should_drop(c, &t.contents) {
                continue;
            }
            let now = self.now;
            match self.clients[c].link.as_mut() {
                Some(link) => link.enqueue(now, t.source, t.contents.to_vec()),
                None => self.receive_at_client(c, t.source, t.destination, &t.contents),
            }
        }
    }

    fn should_drop(&mut self, c: usize, data: &[u8]) -> bool {
        let is_rtp = data.len() > 12 && data[0] >> 6 == 2 && !(192..=223).contains(&data[1]);
        let seq = u16::from_be_bytes([data.get(2).copied().unwrap_or(0), data.get(3).copied().unwrap_or(0)]);
        let list = &mut self.clients[c].drop_once;
        match list.iter().position(|s| is_rtp && *s == seq && data[1] & 0x7f == 127) {
            Some(i) => {
                list.remove(i);
                true
            }
            None => false,
        }
    }

    fn on_event(&mut self, e: SfuEvent) {
        if let SfuEvent::SubscribeOffer { peer, sdp, .. } = &e {
            let c = self.subscribers.iter().find(|(p, _)| p == peer).map(|(_, c)| *c).unwrap();
            let offer = SdpOffer::from_sdp_string(sdp).unwrap();
            let answer = self.clients[c].rtc.sdp_api().accept_offer(offer).unwrap();
            self.sfu.accept_answer(self.now, *peer, &answer.to_sdp_string()).unwrap();
            self.drain_client(c);
        }
        self.events.push(e);
    }

    /// Client `c` sends one RTP packet on `mid`.
    pub fn send(&mut self, c: usize, mid: Mid, seq: u64, ts: u32, payload: &[u8]) {
        self.write(c, mid, seq, ts, payload);
        self.drain_client(c);
        self.deliver_server_output();
    }

    /// The datagrams client `c` emits for one RTP packet, captured instead of
    /// delivered (to replay them into the SFU, e.g. in a benchmark).
    pub fn capture(&mut self, c: usize, mid: Mid, seq: u64, ts: u32, payload: &[u8]) -> Vec<Vec<u8>> {
        self.write(c, mid, seq, ts, payload);
        self.now += MS;
        let _ = self.clients[c].rtc.handle_input(Input::Timeout(self.now));
        let mut out = Vec::new();
        while let Ok(o) = self.clients[c].rtc.poll_output() {
            match o {
                Output::Transmit(t) => out.push(t.contents.to_vec()),
                Output::Timeout(_) => break,
                Output::Event(_) => {}
            }
        }
        out
    }

    fn write(&mut self, c: usize, mid: Mid, seq: u64, ts: u32, payload: &[u8]) {
        self.write_layer(c, mid, None, seq, ts, payload);
    }

    /// Client `c` sends one RTP packet of simulcast layer `rid` on `mid`.
    pub fn send_layer(&mut self, c: usize, mid: Mid, rid: &str, seq: u64, ts: u32, payload: &[u8]) {
        self.write_layer(c, mid, Some(Rid::from(rid)), seq, ts, payload);
        self.drain_client(c);
        self.deliver_server_output();
    }

    fn write_layer(&mut self, c: usize, mid: Mid, rid: Option<Rid>, seq: u64, ts: u32, payload: &[u8]) {
        let now = self.now;
        let rtc = &mut self.clients[c].rtc;
        let kind = rtc.media(mid).map(|m| m.kind()).unwrap_or(MediaKind::Video);
        let codec = if kind == MediaKind::Audio { Codec::Opus } else { Codec::H264 };
        let pt = rtc.codec_config().find(|p| p.spec().codec == codec).map(|p| p.pt()).unwrap_or(127.into());
        let write = RtpWrite::new(pt, seq.into(), ts, now, payload.to_vec()).marker(true).nackable(true);
        if let Some(tx) = rtc.direct_api().stream_tx_by_mid(mid, rid) {
            tx.write_rtp(write);
        }
    }

    /// Send `frames` single-packet video frames at 30 fps, first one a keyframe if `key`.
    pub fn send_video(&mut self, c: usize, mid: Mid, first_seq: u64, first_ts: u32, frames: u64, key: bool) {
        for i in 0..frames {
            let payload: &[u8] = if key && i == 0 { &[0x67, 0x42, 0xe0, 0x1f] } else { &[0x41, 0x9a, 0x00, i as u8] };
            self.send(c, mid, first_seq + i, first_ts.wrapping_add(3000 * i as u32), payload);
            self.run(33 * MS);
        }
    }

    pub fn got(&self, c: usize, mid: Mid) -> Vec<Got> {
        self.clients[c].got.iter().filter(|g| g.mid == mid).cloned().collect()
    }

    pub fn down_mid(&self, peer: PeerId, key: &str) -> Mid {
        let key = SlotKey::parse(key).unwrap();
        let tracks = self.events.iter().rev().find_map(|e| match e {
            SfuEvent::SubscribeOffer { peer: p, tracks, .. } if *p == peer => Some(tracks.clone()),
            _ => None,
        });
        let mid = tracks.unwrap().into_iter().find(|t| t.key == key).unwrap().mid;
        Mid::from(mid.as_str())
    }

    /// The fan-out benchmarks' network: a teacher camera publisher (client 0)
    /// and `n` connected subscribers without bandwidth estimation (they give no
    /// feedback), one keyframe sent; then `packets` video packets of
    /// `payload_len` bytes captured as the teacher's encrypted datagrams.
    pub fn fan_out(n: usize, packets: u64, payload_len: usize) -> (Net, Vec<Vec<u8>>) {
        let mut net = Net::new();
        net.sfu.set_bandwidth_estimation(false);
        let teacher = net.add_client();
        let (_, mids) = net.publish(teacher, super::room::MAIN, &[Source::Camera]);
        for i in 0..n {
            let c = net.add_client();
            net.clients[c].record = false;
            net.subscribe(c, &format!("c{i}"), Policy::Audience { own_id: Some(format!("c{i}")) });
        }
        net.run(1500 * MS);
        net.send_video(teacher, mids[0], 1, 0, 1, true);
        let mut payload = vec![0x41u8; payload_len];
        let datagrams = (0..packets)
            .flat_map(|i| {
                payload[1] = i as u8;
                net.capture(teacher, mids[0], 2 + i, 3000 * (1 + i as u32 / 4), &payload)
            })
            .collect();
        (net, datagrams)
    }
}
