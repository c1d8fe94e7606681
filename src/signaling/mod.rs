//! Signaling: the typed room protocol and the WebSocket, WHIP and WHEP endpoints.

pub mod protocol;
