//! classcast-recorder: records the plain RTP packets of a lesson's tracks into fragmented
//! MP4 files, one GStreamer pipeline per track, without re-encoding.
//!
//! - [`layout`]: the on-disk layout of recordings (paths, `lesson.json`), shared with the
//!   replay server and retention cleanup.
//! - [`fmp4`] and [`hls`]: replay; part files indexed by byte range, HLS playlists over them.
//! - [`export`]: after class, renders a lesson's parts into one composite MP4 to download.
//! - [`TrackRecorder`]: one track → one part file; fed through a bounded, never-blocking
//!   [`PacketSender`].
//!
//! Invariants:
//! - Nothing here blocks the caller of [`PacketSender::try_push`]; a full queue drops and
//!   counts the packet.
//! - No panic on any input: malformed packets are counted, pipeline errors are reported
//!   as faults ([`TrackRecorder::poll_fault`], [`TrackEvent::Fault`]).
//! - A crash loses at most the fragment being written (at most [`FRAGMENT`] of media).
//! - A part never spans a silence longer than [`MAX_GAP`]: the packet after it is refused
//!   ([`PushError::Gap`]) and starts the next part.
//! - A part that fails still reports what its file keeps ([`FinishError::kept`]).

mod clock;
mod error;
pub mod export;
mod feeder;
pub mod fmp4;
pub mod hls;
pub mod layout;
mod pipeline;
mod priority;
mod state;
mod track;

pub use error::{FinishError, PushError, RecorderError};
pub use feeder::SSRC_SWITCH_PACKETS;
pub use track::{
    Codec, FINISH_TIMEOUT, FRAGMENT, JITTER_LATENCY, MAX_GAP, PacketSender, RtpPacketIn, TrackEvent,
    TrackRecorder, TrackSpec, TrackStats, TrackSummary,
};

use std::sync::OnceLock;

/// Initializes GStreamer and registers the statically linked `isofmp4mux`. Idempotent and
/// thread-safe; [`TrackRecorder::start`] calls it, a server may call it early to fail fast.
pub fn init() -> Result<(), RecorderError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gst::init().map_err(|e| format!("gst::init: {e}"))?;
        gstfmp4::plugin_register_static().map_err(|e| format!("registering fmp4: {e}"))
    })
    .clone()
    .map_err(RecorderError::Init)
}
