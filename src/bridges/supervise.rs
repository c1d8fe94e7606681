//! One bridge's task: attempts in a loop, each in its own tokio task so that a
//! panic ends only the attempt; waits with backoff between attempts.
//!
//! Invariants:
//! - An attempt publishes into the class only after the source delivered media,
//!   so a dead camera never makes a bridge member flap in and out of the class.
//! - Whatever ends an attempt, its class session is ended and its pipeline is
//!   stopped (on a blocking thread) before the next attempt starts.
//! - The backoff restarts from its base after an attempt that went live.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use classcast_media_pipelines::{Ingest, IngestEvent, SourceSpec, Transport};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use super::publisher::{self, Ended};
use super::rtmp::FlvPublish;
use super::status::{BridgeState, StatusCell};
use super::{BridgeError, Bridges};
use crate::rooms::bridge::BridgeIdentity;
use crate::signaling::protocol::{Role, Source};
use crate::store::BridgeRow;

/// Packets that may wait between the pipeline and the bridge's task (~2 s of video).
const QUEUE: usize = 1024;
/// A pulled source (RTSP, SRT caller) must deliver media this soon.
const FIRST_MEDIA: Duration = Duration::from_secs(10);

pub async fn run(bridges: Arc<Bridges>, row: BridgeRow, status: StatusCell, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut flv = (row.kind == "rtmp").then(|| bridges.rtmp.waiting(&row.id));
    loop {
        status.lock().attempts += 1;
        let task = tokio::spawn(attempt(bridges.clone(), row.clone(), status.clone(), stop.clone(), flv.take()));
        let (result, back) = match task.await {
            Ok((r, back)) => (r, back),
            Err(e) => (Err(BridgeError::Panic(e.to_string())), None),
        };
        flv = back.or_else(|| (row.kind == "rtmp").then(|| bridges.rtmp.waiting(&row.id)));
        if matches!(result, Ok(Ended::Stopped)) || *stop.borrow() {
            status.lock().state = BridgeState::Stopped;
            return;
        }
        let went_live = status.lock().live_since_ms.take().is_some();
        failures = if went_live { 0 } else { failures + 1 };
        let delay = bridges.backoff.delay(failures.saturating_sub(1));
        note_failure(&row, &status, result.err(), delay);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => {}
        }
    }
}

fn note_failure(row: &BridgeRow, status: &StatusCell, err: Option<BridgeError>, delay: Duration) {
    let text = err.map_or_else(|| "ended".to_string(), |e| e.to_string());
    tracing::warn!(bridge = %row.id, class = %row.class_id, error = %text, retry_ms = delay.as_millis() as u64, "bridge attempt ended");
    status.error(&text);
    let mut s = status.lock();
    s.state = BridgeState::Reconnecting;
    s.bitrate_bps = 0;
    s.retry_in_ms = Some(delay.as_millis() as u64);
}

type Flv = Option<mpsc::Receiver<FlvPublish>>;

/// One attempt; hands back the RTMP waiting channel for the next one.
async fn attempt(bridges: Arc<Bridges>, row: BridgeRow, status: StatusCell, mut stop: watch::Receiver<bool>, mut flv: Flv) -> (Result<Ended, BridgeError>, Flv) {
    status.lock().state = BridgeState::Connecting;
    let (tx, mut rx) = mpsc::channel(QUEUE);
    let started = start_source(&row, &status, tx, &mut stop, flv.as_mut()).await;
    let ingest = match started {
        Ok(Some(i)) => i,
        Ok(None) => return (Ok(Ended::Stopped), flv),
        Err(e) => return (Err(e), flv),
    };
    let result = publish(&bridges, &row, &status, &ingest, &mut rx, &mut stop).await;
    // Stopping a pipeline waits for its threads: not on the runtime's workers.
    let _ = tokio::task::spawn_blocking(move || drop(ingest)).await;
    (result, flv)
}

/// The running pipeline, once its first media arrived (None: stopped meanwhile).
async fn start_source(row: &BridgeRow, status: &StatusCell, tx: mpsc::Sender<IngestEvent>, stop: &mut watch::Receiver<bool>, flv: Option<&mut mpsc::Receiver<FlvPublish>>) -> Result<Option<Arc<Ingest>>, BridgeError> {
    let cb_status = status.clone();
    let cb: classcast_media_pipelines::Callback = Arc::new(move |e| {
        if tx.try_send(e).is_err() {
            cb_status.lock().dropped_queue_full += 1;
        }
    });
    let (spec, publish) = match (row.kind.as_str(), flv) {
        ("rtmp", Some(waiting)) => {
            let publish = tokio::select! {
                p = waiting.recv() => p.ok_or_else(|| BridgeError::Source("the RTMP listener is gone".into()))?,
                _ = stop.changed() => return Ok(None),
            };
            (SourceSpec::Flv, Some(publish))
        }
        _ => (spec_of(row)?, None),
    };
    let ingest = Arc::new(Ingest::start(&spec, cb)?);
    if let Some(p) = publish {
        tokio::spawn(super::rtmp::feed(p, ingest.clone()));
    }
    Ok(Some(ingest))
}

fn spec_of(row: &BridgeRow) -> Result<SourceSpec, BridgeError> {
    let url = row.url.clone().ok_or_else(|| BridgeError::Source("no URL configured".into()))?;
    match row.kind.as_str() {
        "rtsp" => Ok(SourceSpec::Rtsp { url, transport: if row.transport == "udp" { Transport::Udp } else { Transport::Tcp } }),
        "srt" => Ok(SourceSpec::Srt { uri: url }),
        other => Err(BridgeError::Source(format!("unknown bridge kind {other}"))),
    }
}

/// Waits for the first packet, then publishes into the class until the attempt ends.
async fn publish(bridges: &Bridges, row: &BridgeRow, status: &StatusCell, ingest: &Ingest, rx: &mut mpsc::Receiver<IngestEvent>, stop: &mut watch::Receiver<bool>) -> Result<Ended, BridgeError> {
    let waits_for_encoder = row.kind == "rtmp" || row.url.as_deref().is_some_and(|u| u.contains("mode=listener"));
    let deadline = (!waits_for_encoder).then(|| tokio::time::Instant::now() + FIRST_MEDIA);
    if !wait_first_media(rx, status, stop, deadline).await? {
        return Ok(Ended::Stopped);
    }
    let socket = UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await.map_err(BridgeError::Io)?;
    let local = socket.local_addr().map_err(BridgeError::Io)?;
    let (mut offer, pending) = publisher::offer(local, row.audio)?;
    let who = identity(row)?;
    let mut sources = vec![(offer.video.to_string(), source_of(&row.source))];
    sources.extend(offer.audio.map(|m| (m.to_string(), Source::Mic)));
    let (session, answer) = bridges.rooms.bridge_start(&who, offer.sdp.clone(), sources).await?;
    let result = match publisher::accept(&mut offer, pending, &answer) {
        Ok(()) => publisher::run(offer, &socket, rx, status, stop, &|| ingest.request_keyframe()).await,
        Err(e) => Err(e),
    };
    bridges.rooms.bridge_stop(&session).await;
    result
}

/// True once a packet arrived; false if stopped; an error if the source failed or was too slow.
async fn wait_first_media(rx: &mut mpsc::Receiver<IngestEvent>, status: &StatusCell, stop: &mut watch::Receiver<bool>, deadline: Option<tokio::time::Instant>) -> Result<bool, BridgeError> {
    let never = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tokio::time::sleep_until(deadline.unwrap_or(never)) => return Err(BridgeError::Source(format!("no media within {} s", FIRST_MEDIA.as_secs()))),
            _ = stop.changed() => return Ok(false),
        };
        match ev {
            Some(IngestEvent::Rtp { .. }) => return Ok(true),
            Some(IngestEvent::Routed { kind, path, detail }) => publisher::note_route(status, kind, path, detail),
            Some(IngestEvent::Ignored { .. }) => {}
            Some(IngestEvent::Dropped { .. }) => status.lock().dropped_untimed += 1,
            Some(IngestEvent::Error(e)) => return Err(BridgeError::Source(e)),
            Some(IngestEvent::Eos) | None => return Err(BridgeError::Source("the source ended before sending media".into())),
        }
    }
}

fn identity(row: &BridgeRow) -> Result<BridgeIdentity, BridgeError> {
    let role = if row.role == "main" { Role::Main } else { Role::Classroom };
    Ok(BridgeIdentity { bridge_id: row.id.clone(), class_id: row.class_id.clone(), role, classroom: row.classroom_id.clone(), name: row.name.clone() })
}

fn source_of(s: &str) -> Source {
    Source::ALL.into_iter().find(|x| x.as_str() == s).unwrap_or(Source::Camera)
}
