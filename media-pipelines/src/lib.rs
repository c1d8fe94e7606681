//! classcast-media-pipelines: turns an external source (RTSP camera, SRT encoder,
//! FLV from an RTMP push) into RTP a browser decodes: H.264 (packetization mode 1)
//! and Opus, handed packet by packet to a callback.
//!
//! - [`SourceSpec`]: what to pull or listen on; [`Ingest::start`] builds and plays
//!   the pipeline; dropping the [`Ingest`] stops it.
//! - [`route`]: the pure decision between passthrough and transcode per stream.
//!
//! Invariants:
//! - Browser-decodable H.264 is never decoded: it is re-parsed (SPS/PPS repeated on
//!   every keyframe) and repacketized only. Other video is decoded and encoded to
//!   H.264 constrained baseline; any audio is encoded to Opus (48 kHz stereo).
//! - At most one video and one audio stream leave a pipeline; extra streams are
//!   discarded (reported once as [`IngestEvent::Ignored`]).
//! - Nothing here panics on input or blocks the callback's caller; errors and EOS
//!   arrive as events, never as panics.

pub mod branch;
mod ingest;
pub mod route;

pub use ingest::{Callback, Ingest, IngestEvent, SourceSpec, Transport};
pub use route::{MediaPath, StreamKind};

use std::sync::OnceLock;

/// RTP payload type of the video packets the pipelines emit.
pub const VIDEO_PT: u8 = 96;
/// RTP payload type of the audio packets the pipelines emit.
pub const AUDIO_PT: u8 = 111;
/// Largest RTP packet the pipelines emit (leaves room for SRTP and extensions).
pub const MTU: u32 = 1200;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("building the pipeline: {0}")]
    Build(String),
    #[error("starting the pipeline: {0}")]
    Start(String),
}

/// Initializes GStreamer once; later calls return the first result.
pub fn init() -> Result<(), PipelineError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string())).clone().map_err(PipelineError::Init)
}
