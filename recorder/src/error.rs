//! Errors of the recorder. Invariant: every failure of a pipeline or of the file system
//! surfaces as a value of these types; none is a panic.

use std::time::Duration;

/// Why a track recorder could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("GStreamer initialization failed: {0}")]
    Init(String),
    #[error("GStreamer element {0:?} is missing (see recorder/README.md for the packages)")]
    MissingElement(&'static str),
    #[error("invalid track spec: {0}")]
    InvalidSpec(String),
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error("no end of stream within {0:?}: the file ends at its last complete fragment")]
    Timeout(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),
}

/// Why [`crate::PacketSender::try_push`] did not take a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The bounded queue is full; the packet was dropped and counted.
    #[error("recorder queue full, packet dropped")]
    Full,
    /// The recorder is finishing or gone.
    #[error("recorder closed")]
    Closed,
}
