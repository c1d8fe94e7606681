//! Signaling: the typed room protocol and the per-connection session logic.
//! The HTTP/WebSocket framing lives in `crate::http`.

pub mod protocol;
pub mod report;
pub mod session;
