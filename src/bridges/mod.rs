//! Bridges: external sources (RTSP cameras, SRT encoders, RTMP pushes) brought
//! into classes as publishers. Each bridge is one supervised task: build the
//! ingest pipeline (`classcast-media-pipelines`), wait for media, publish it
//! through `Rooms::bridge_start` on a str0m client of its own (`publisher`),
//! and start again with backoff whenever anything ends it.
//!
//! Invariants:
//! - Nothing a source does (bad URL, wrong key, EOS, pipeline error, a panic in
//!   the task) ends anything but that bridge's current attempt; the server, the
//!   class and other bridges go on. Retries go on forever until the bridge is deleted.
//! - The forwarding core is not touched: a bridge is a WebRTC publisher over UDP
//!   on 127.0.0.1, negotiated like WHIP.
//! - A bridge's status is written by its task only and read by the admin API.

pub mod check;
mod publisher;
pub mod rtmp;
mod rtp;
mod status;
mod supervise;

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::watch;

use crate::rooms::Rooms;
use crate::store::{BridgeRow, StoreError};
pub use status::{BridgeState, BridgeStatus};
use status::StatusCell;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("source: {0}")]
    Source(String),
    #[error("pipeline: {0}")]
    Pipeline(#[from] classcast_media_pipelines::PipelineError),
    #[error("negotiation: {0}")]
    Negotiation(String),
    #[error("class: {0}")]
    Class(#[from] crate::rooms::RoomError),
    #[error("connection: {0}")]
    Connection(String),
    #[error("socket: {0}")]
    Io(std::io::Error),
    #[error("internal error: {0}")]
    Panic(String),
}

/// Retry timing: the first retry after `base`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), max: DEFAULT_RETRY_MAX }
    }
}

/// Longest wait between two attempts unless configured (`--bridge-retry-max-ms`):
/// short, so a source that comes back is in the class again within seconds.
pub const DEFAULT_RETRY_MAX: Duration = Duration::from_secs(2);

impl Backoff {
    /// The wait before retry number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        self.base.saturating_mul(1u32 << n.min(16)).min(self.max)
    }
}

struct Running {
    status: StatusCell,
    stop: watch::Sender<bool>,
}

/// Every configured bridge and its task.
pub struct Bridges {
    rooms: Arc<Rooms>,
    running: DashMap<String, Running>,
    backoff: Backoff,
    pub rtmp: Arc<rtmp::Publishers>,
}

impl Bridges {
    pub fn new(rooms: Arc<Rooms>, backoff: Backoff) -> Arc<Bridges> {
        Arc::new(Bridges { rooms, running: DashMap::new(), backoff, rtmp: Arc::default() })
    }

    /// Starts the task of every stored bridge (at server start).
    pub fn start_all(self: &Arc<Self>) -> Result<usize, StoreError> {
        let rows = self.rooms.store.bridges()?;
        let n = rows.len();
        rows.into_iter().for_each(|r| self.start(r));
        Ok(n)
    }

    /// Starts (or restarts) one bridge's task.
    pub fn start(self: &Arc<Self>, row: BridgeRow) {
        self.stop(&row.id);
        let status = StatusCell::default();
        let (stop, stop_rx) = watch::channel(false);
        if let Some(key) = &row.stream_key {
            self.rtmp.register(key, &row.id);
        }
        self.running.insert(row.id.clone(), Running { status: status.clone(), stop });
        tokio::spawn(supervise::run(self.clone(), row, status, stop_rx));
    }

    /// Stops a bridge's task; its class session ends with its current attempt.
    pub fn stop(&self, id: &str) {
        if let Some((_, r)) = self.running.remove(id) {
            let _ = r.stop.send(true);
        }
        self.rtmp.unregister_bridge(id);
    }

    pub fn status(&self, id: &str) -> Option<BridgeStatus> {
        self.running.get(id).map(|r| r.status.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b = Backoff { base: Duration::from_secs(1), max: Duration::from_secs(30) };
        let waits: Vec<u64> = (0..7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }
}
