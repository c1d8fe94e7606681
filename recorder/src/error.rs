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
    /// The packet arrived more than [`crate::MAX_GAP`] after the last one taken: the part
    /// ends before the gap (finish it) and the packet starts a new part. Not counted as
    /// dropped: the caller hands it to the new part. Every later packet gets this too.
    #[error("packets resumed after a gap: finish this part and start a new one")]
    Gap,
}

/// A part that did not finish cleanly: why, and what its file keeps regardless (the
/// complete chunks written before the failure, which stay indexable and replayable).
#[derive(Debug, thiserror::Error)]
#[error("{error} ({:.1} s of media kept in the file)", kept.duration.as_secs_f64())]
pub struct FinishError {
    pub error: RecorderError,
    pub kept: crate::TrackSummary,
}
