//! A bridge's WebRTC publish connection: a str0m client (RTP mode) on its own
//! UDP socket, negotiated through `Rooms::bridge_start` like a WHIP publisher,
//! writing the pipeline's RTP into the class.
//!
//! Invariants:
//! - Packets are written only once the connection is up; earlier ones are
//!   dropped and counted (`dropped_not_connected`).
//! - Sequence numbers are this connection's own, from 1, without gaps: a new
//!   connection never continues an old one's numbering (SRTP rollover stays 0).
//! - The connection ends (and the class session with it) on any error, on the
//!   source's end, after `SILENCE` without media, or when the bridge is stopped.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use classcast_media_pipelines::{AUDIO_PT, IngestEvent, MediaPath, StreamKind, VIDEO_PT};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::BridgeError;
use super::rtp;
use super::status::{BridgeState, StatusCell};

/// A live source that sends nothing this long is treated as dropped.
pub const SILENCE: Duration = Duration::from_secs(4);
/// The connection must be up this soon after the answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The two send tracks of a bridge's connection.
pub struct Offer {
    pub rtc: Rtc,
    pub sdp: String,
    pub video: Mid,
    pub audio: Option<Mid>,
}

/// A client whose only host candidate is `local`, offering H.264 (+ Opus).
pub fn offer(local: SocketAddr, audio: bool) -> Result<(Offer, SdpPendingOffer), BridgeError> {
    let mut config = RtcConfig::new().set_rtp_mode(true).clear_codecs().enable_opus(true, false);
    config.codec_config().add_h264(VIDEO_PT.into(), None, true, 0x42e01f);
    let mut rtc = config.build(Instant::now());
    let cand = Candidate::host(local, "udp").map_err(|e| BridgeError::Negotiation(e.to_string()))?;
    rtc.add_local_candidate(cand);
    let mut api = rtc.sdp_api();
    let video = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
    let audio = audio.then(|| api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None));
    let (offer, pending) = api.apply().ok_or_else(|| BridgeError::Negotiation("nothing to offer".into()))?;
    Ok((Offer { sdp: offer.to_sdp_string(), rtc, video, audio }, pending))
}

pub fn accept(o: &mut Offer, pending: SdpPendingOffer, answer: &str) -> Result<(), BridgeError> {
    let answer = SdpAnswer::from_sdp_string(answer).map_err(|e| BridgeError::Negotiation(e.to_string()))?;
    o.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| BridgeError::Negotiation(e.to_string()))
}

/// Why a connection ended without an error.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Stopped,
}

struct Sender {
    seq: [u64; 2],
    connected: bool,
    bytes: u64,
    last_media: Instant,
    /// The class asked for a keyframe (a subscriber joined or lost packets).
    keyframe_wanted: bool,
    last_keyframe_ask: Option<Instant>,
}

/// Keyframe requests to the pipeline are at most this frequent.
const KEYFRAME_GAP: Duration = Duration::from_secs(1);

/// Runs the connection until it ends; `rx` carries the pipeline's events.
/// `keyframe` asks the pipeline for a keyframe (the class asked; at most one per `KEYFRAME_GAP`).
pub async fn run(mut o: Offer, socket: &UdpSocket, rx: &mut mpsc::Receiver<IngestEvent>, status: &StatusCell, stop: &mut watch::Receiver<bool>, keyframe: &(dyn Fn() + Sync)) -> Result<Ended, BridgeError> {
    let local = socket.local_addr().map_err(BridgeError::Io)?;
    let started = Instant::now();
    let mut tx = Sender { seq: [1, 1], connected: false, bytes: 0, last_media: Instant::now(), keyframe_wanted: false, last_keyframe_ask: None };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut buf = vec![0u8; 2000];
    loop {
        let timeout = drain(&mut o.rtc, socket, &mut tx, status).await?;
        if std::mem::take(&mut tx.keyframe_wanted) && tx.last_keyframe_ask.is_none_or(|t| t.elapsed() >= KEYFRAME_GAP) {
            tx.last_keyframe_ask = Some(Instant::now());
            keyframe();
        }
        let wait = timeout.saturating_duration_since(Instant::now());
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r.map_err(BridgeError::Io)?;
                if let Ok(recv) = Receive::new(Protocol::Udp, from, local, &buf[..n]) {
                    o.rtc.handle_input(Input::Receive(Instant::now(), recv)).map_err(|e| BridgeError::Connection(e.to_string()))?;
                }
            }
            ev = rx.recv() => on_pipeline(&mut o, &mut tx, ev, status)?,
            _ = tokio::time::sleep(wait) => {
                o.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|e| BridgeError::Connection(e.to_string()))?;
            }
            _ = tick.tick() => check_health(&mut tx, status, started)?,
            _ = stop.changed() => return Ok(Ended::Stopped),
        }
    }
}

fn check_health(tx: &mut Sender, status: &StatusCell, started: Instant) -> Result<(), BridgeError> {
    let bits = std::mem::take(&mut tx.bytes) * 8;
    status.lock().bitrate_bps = bits;
    if !tx.connected && started.elapsed() > CONNECT_TIMEOUT {
        return Err(BridgeError::Connection(format!("the class connection did not come up within {} s", CONNECT_TIMEOUT.as_secs())));
    }
    if tx.last_media.elapsed() > SILENCE {
        return Err(BridgeError::Source(format!("no media from the source for {} s", SILENCE.as_secs())));
    }
    Ok(())
}

/// Sends what str0m wants sent; returns when it next wants a timeout.
async fn drain(rtc: &mut Rtc, socket: &UdpSocket, tx: &mut Sender, status: &StatusCell) -> Result<Instant, BridgeError> {
    loop {
        match rtc.poll_output().map_err(|e| BridgeError::Connection(e.to_string()))? {
            Output::Timeout(t) => return Ok(t),
            Output::Transmit(t) => {
                let _ = socket.send_to(&t.contents, t.destination).await;
            }
            Output::Event(Event::Connected) => {
                tx.connected = true;
                let mut s = status.lock();
                s.state = BridgeState::Live;
                s.live_since_ms = Some(crate::store::unix_now_ms());
                s.retry_in_ms = None;
            }
            Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected)) => {
                return Err(BridgeError::Connection("the class connection was lost".into()));
            }
            Output::Event(Event::KeyframeRequest(_)) => tx.keyframe_wanted = true,
            Output::Event(_) => {}
        }
    }
}

fn on_pipeline(o: &mut Offer, tx: &mut Sender, ev: Option<IngestEvent>, status: &StatusCell) -> Result<(), BridgeError> {
    match ev {
        None | Some(IngestEvent::Eos) => Err(BridgeError::Source("the source ended".into())),
        Some(IngestEvent::Error(e)) => Err(BridgeError::Source(e)),
        Some(IngestEvent::Routed { kind, path, detail }) => {
            note_route(status, kind, path, detail);
            Ok(())
        }
        Some(IngestEvent::Dropped { .. }) => {
            status.lock().dropped_untimed += 1;
            Ok(())
        }
        Some(IngestEvent::Ignored { caps }) => {
            tracing::info!(caps, "bridge: extra stream ignored");
            Ok(())
        }
        Some(IngestEvent::Rtp { kind, packet }) => {
            tx.last_media = Instant::now();
            write(o, tx, kind, &packet, status);
            Ok(())
        }
    }
}

pub fn note_route(status: &StatusCell, kind: StreamKind, path: MediaPath, detail: String) {
    let mut s = status.lock();
    match kind {
        StreamKind::Video => (s.video_path, s.video_in) = (Some(path.as_str()), Some(detail)),
        StreamKind::Audio => (s.audio_path, s.audio_in) = (Some(path.as_str()), Some(detail)),
    }
}

fn write(o: &mut Offer, tx: &mut Sender, kind: StreamKind, packet: &[u8], status: &StatusCell) {
    let Some(view) = rtp::parse(packet) else { return };
    let (mid, codec, pt_in, i) = match kind {
        StreamKind::Video => (Some(o.video), Codec::H264, VIDEO_PT, 0),
        StreamKind::Audio => (o.audio, Codec::Opus, AUDIO_PT, 1),
    };
    let Some(mid) = mid.filter(|_| tx.connected && packet[1] & 0x7f == pt_in) else {
        status.lock().dropped_not_connected += 1;
        return;
    };
    let pt = o.rtc.codec_config().find(|p| p.spec().codec == codec).map(|p| p.pt());
    let mut api = o.rtc.direct_api();
    let (Some(pt), Some(stream)) = (pt, api.stream_tx_by_mid(mid, None)) else {
        status.lock().dropped_not_connected += 1;
        return;
    };
    let seq = tx.seq[i];
    tx.seq[i] += 1;
    tx.bytes += packet.len() as u64;
    let w = RtpWrite::new(pt, seq.into(), view.timestamp, Instant::now(), view.payload.to_vec()).marker(view.marker).nackable(true);
    stream.write_rtp(w);
    status.lock().packets_sent += 1;
}
