//! What an admin sees of a running bridge: state, the path each stream took,
//! bitrate, counters and the last error. Written by the bridge's task only.

use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BridgeState {
    /// Reaching the source (or waiting for an RTMP/SRT encoder) and negotiating.
    Connecting,
    /// Media flows into the class.
    Live,
    /// The source dropped or failed; the next attempt is scheduled (`retry_in_ms`).
    Reconnecting,
    /// Deleted; the task is ending.
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct BridgeStatus {
    pub state: BridgeState,
    /// `passthrough` or `transcode`, once the source's video was found.
    pub video_path: Option<&'static str>,
    pub audio_path: Option<&'static str>,
    /// What came in, e.g. `video/x-h264 profile=constrained-baseline width=640 height=360`.
    pub video_in: Option<String>,
    pub audio_in: Option<String>,
    /// RTP bits per second into the class over the last second.
    pub bitrate_bps: u64,
    pub packets_sent: u64,
    /// Packets the pipeline produced that were not sent, by reason.
    pub dropped_not_connected: u64,
    pub dropped_queue_full: u64,
    /// Access units without a timestamp dropped by the pipeline (parameter sets sent alone).
    pub dropped_untimed: u64,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub last_error_at_ms: Option<i64>,
    pub live_since_ms: Option<i64>,
    pub retry_in_ms: Option<u64>,
}

impl Default for BridgeStatus {
    fn default() -> Self {
        BridgeStatus {
            state: BridgeState::Connecting,
            video_path: None,
            audio_path: None,
            video_in: None,
            audio_in: None,
            bitrate_bps: 0,
            packets_sent: 0,
            dropped_not_connected: 0,
            dropped_queue_full: 0,
            dropped_untimed: 0,
            attempts: 0,
            last_error: None,
            last_error_at_ms: None,
            live_since_ms: None,
            retry_in_ms: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct StatusCell(Arc<Mutex<BridgeStatus>>);

impl StatusCell {
    pub fn lock(&self) -> MutexGuard<'_, BridgeStatus> {
        // Holders only assign fields; a panic while holding it leaves consistent data.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn snapshot(&self) -> BridgeStatus {
        self.lock().clone()
    }

    pub fn error(&self, e: &str) {
        let mut s = self.lock();
        s.last_error = Some(e.to_string());
        s.last_error_at_ms = Some(crate::store::unix_now_ms());
    }
}
