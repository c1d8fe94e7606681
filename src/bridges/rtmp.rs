//! RTMP push ingest: encoders publish to `rtmp://<listen>/live/<stream key>`.
//! The protocol (handshake, chunk stream, AMF0 commands) is `rml_rtmp`'s sans-IO
//! server session; this module owns the sockets and turns the publish into FLV
//! bytes for the bridge whose key it is (its pipeline: `appsrc ! parsebin`).
//!
//! Invariants:
//! - A publish is accepted only for the application `live` and a stream key of
//!   a configured bridge that has no publisher yet; every refusal is logged with
//!   its reason and counted (`refused_*`), and the connection is closed.
//! - A connection's failure (protocol error, reset) ends that connection only;
//!   the bridge sees its FLV end and goes back to waiting.
//! - FLV data that the bridge cannot take fast enough is dropped and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use classcast_media_pipelines::Ingest;
use dashmap::DashMap;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The RTMP application encoders publish to.
pub const APP: &str = "live";
/// FLV chunks that may wait for the bridge's pipeline (~10 s of a 30 fps stream with audio).
const FLV_QUEUE: usize = 1024;

/// An accepted publish: its FLV bytes, header first; closed when the encoder stops.
pub struct FlvPublish {
    pub data: mpsc::Receiver<Vec<u8>>,
}

/// Stream keys of the configured RTMP bridges, and the bridges waiting for an encoder.
#[derive(Default)]
pub struct Publishers {
    keys: DashMap<String, String>,
    waiting: DashMap<String, mpsc::Sender<FlvPublish>>,
    counters: Counters,
}

#[derive(Debug, Default, Serialize)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub refused_app: AtomicU64,
    pub refused_key: AtomicU64,
    pub refused_busy: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub flv_dropped: AtomicU64,
}

impl Publishers {
    pub fn register(&self, key: &str, bridge: &str) {
        self.keys.insert(key.to_string(), bridge.to_string());
    }

    pub fn unregister_bridge(&self, bridge: &str) {
        self.keys.retain(|_, b| b != bridge);
        self.waiting.remove(bridge);
    }

    /// The channel on which `bridge` receives its next publish.
    pub fn waiting(&self, bridge: &str) -> mpsc::Receiver<FlvPublish> {
        let (tx, rx) = mpsc::channel(1);
        self.waiting.insert(bridge.to_string(), tx);
        rx
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Hands a publish for `key` to its bridge, or says why not.
    fn claim(&self, key: &str) -> Result<mpsc::Sender<Vec<u8>>, Refusal> {
        let bridge = self.keys.get(key).map(|b| b.clone()).ok_or(Refusal::Key)?;
        let waiting = self.waiting.get(&bridge).map(|w| w.clone()).ok_or(Refusal::Busy)?;
        let (tx, rx) = mpsc::channel(FLV_QUEUE);
        waiting.try_send(FlvPublish { data: rx }).map_err(|_| Refusal::Busy)?;
        Ok(tx)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    App,
    Key,
    Busy,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::App => "unknown application (publish to /live/<stream key>)",
            Refusal::Key => "unknown stream key",
            Refusal::Busy => "this stream key already has a publisher",
        }
    }

    fn count(self, c: &Counters) {
        match self {
            Refusal::App => &c.refused_app,
            Refusal::Key => &c.refused_key,
            Refusal::Busy => &c.refused_busy,
        }
        .fetch_add(1, Relaxed);
    }
}

/// Accepts RTMP connections on `addr` until the process ends.
pub async fn listen(addr: SocketAddr, publishers: Arc<Publishers>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((conn, peer)) = listener.accept().await else { continue };
            let p = publishers.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(conn, &p).await {
                    p.counters.protocol_errors.fetch_add(1, Relaxed);
                    tracing::warn!(%peer, error = %e, "rtmp connection ended");
                }
            });
        }
    });
    Ok(local)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn serve(mut conn: TcpStream, publishers: &Publishers) -> Result<(), BoxError> {
    let _ = conn.set_nodelay(true);
    let rest = handshake(&mut conn).await?;
    let (mut session, first) = ServerSession::new(ServerSessionConfig::new())?;
    let mut publish = Publish { out: None, header_sent: false };
    let mut pending = first;
    pending.extend(session.handle_input(&rest)?);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        for r in std::mem::take(&mut pending) {
            match r {
                ServerSessionResult::OutboundResponse(p) => conn.write_all(&p.bytes).await?,
                ServerSessionResult::RaisedEvent(e) => pending.extend(on_event(&mut session, e, publishers, &mut publish)?),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        if !pending.is_empty() {
            continue;
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending = session.handle_input(&buf[..n])?;
    }
}

async fn handshake(conn: &mut TcpStream) -> Result<Vec<u8>, BoxError> {
    let mut hs = Handshake::new(PeerType::Server);
    let mut buf = vec![0u8; 8192];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err("closed during the handshake".into());
        }
        match hs.process_bytes(&buf[..n])? {
            HandshakeProcessResult::InProgress { response_bytes } => conn.write_all(&response_bytes).await?,
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                conn.write_all(&response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

struct Publish {
    out: Option<mpsc::Sender<Vec<u8>>>,
    header_sent: bool,
}

fn on_event(s: &mut ServerSession, e: ServerSessionEvent, p: &Publishers, publish: &mut Publish) -> Result<Vec<ServerSessionResult>, BoxError> {
    match e {
        ServerSessionEvent::ConnectionRequested { request_id, app_name } if app_name == APP => Ok(s.accept_request(request_id)?),
        ServerSessionEvent::ConnectionRequested { app_name, .. } => refuse(Refusal::App, &app_name, p),
        ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => match p.claim(&stream_key) {
            Ok(tx) => {
                p.counters.accepted.fetch_add(1, Relaxed);
                tracing::info!(key = %redact(&stream_key), "rtmp publish accepted");
                publish.out = Some(tx);
                Ok(s.accept_request(request_id)?)
            }
            Err(r) => {
                let mut out = s.reject_request(request_id, "NetStream.Publish.BadName", r.reason())?;
                out.extend(refuse(r, &stream_key, p)?);
                Ok(out)
            }
        },
        ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => Ok(tag(publish, 9, timestamp.value, &data, p)),
        ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => Ok(tag(publish, 8, timestamp.value, &data, p)),
        ServerSessionEvent::PublishStreamFinished { .. } => Err("the encoder stopped publishing".into()),
        _ => Ok(Vec::new()),
    }
}

/// Logs and counts a refusal, then ends the connection (an error for `serve`).
fn refuse(r: Refusal, what: &str, p: &Publishers) -> Result<Vec<ServerSessionResult>, BoxError> {
    r.count(&p.counters);
    tracing::warn!(what = %redact(what), reason = r.reason(), "rtmp publish refused");
    Err(format!("refused: {}", r.reason()).into())
}

/// The first characters of a stream key (keys are secrets; logs show enough to tell them apart).
fn redact(key: &str) -> String {
    let head: String = key.chars().take(4).collect();
    format!("{head}…")
}

fn tag(publish: &mut Publish, kind: u8, ts: u32, data: &[u8], p: &Publishers) -> Vec<ServerSessionResult> {
    let Some(out) = &publish.out else { return Vec::new() };
    let mut bytes = Vec::with_capacity(data.len() + 28);
    if !std::mem::replace(&mut publish.header_sent, true) {
        bytes.extend_from_slice(&FLV_HEADER);
    }
    flv_tag(&mut bytes, kind, ts, data);
    if out.try_send(bytes).is_err() {
        p.counters.flv_dropped.fetch_add(1, Relaxed);
    }
    Vec::new()
}

/// FLV header (audio + video) and the first PreviousTagSize (0).
const FLV_HEADER: [u8; 13] = [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0];

/// One FLV tag and its trailing PreviousTagSize.
pub fn flv_tag(out: &mut Vec<u8>, kind: u8, ts: u32, data: &[u8]) {
    let size = (data.len() as u32).min(0x00ff_ffff);
    out.push(kind);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.push((ts >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&data[..size as usize]);
    out.extend_from_slice(&(size + 11).to_be_bytes());
}

/// Feeds an accepted publish into the bridge's pipeline until the encoder stops.
pub async fn feed(mut p: FlvPublish, ingest: Arc<Ingest>) {
    while let Some(bytes) = p.data.recv().await {
        if !ingest.push_flv(bytes) {
            break;
        }
    }
    ingest.end_flv();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flv_tag_layout() {
        let mut out = Vec::new();
        flv_tag(&mut out, 9, 0x0102_0304, &[0xaa, 0xbb]);
        assert_eq!(out, [9, 0, 0, 2, 0x02, 0x03, 0x04, 0x01, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]);
    }

    #[test]
    fn keys_are_claimed_once_and_unknown_keys_refused() {
        let p = Publishers::default();
        p.register("k1", "b1");
        assert_eq!(p.claim("k1").err(), Some(Refusal::Busy), "no task waiting yet");
        let mut rx = p.waiting("b1");
        assert!(p.claim("k1").is_ok());
        assert_eq!(p.claim("k1").err(), Some(Refusal::Busy), "one publisher at a time");
        assert!(rx.try_recv().is_ok());
        assert_eq!(p.claim("nope").err(), Some(Refusal::Key));
        p.unregister_bridge("b1");
        assert_eq!(p.claim("k1").err(), Some(Refusal::Key));
    }
}
