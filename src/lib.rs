//! classcast: a live classroom media server.
//!
//! Layers, one way only (each may call the ones below it, never above):
//!
//! ```text
//! http / signaling (axum, WebSocket, WHIP/WHEP)   src/http, src/signaling
//!        │
//! schedule (the timetable opens and closes classes) src/schedule
//!        │
//! rooms (classes, roles, tokens, call-on, hands)   src/rooms, src/store (SQLite)
//!        │
//! driver (threads + sockets around the core)      src/driver
//!        │
//! sfu (sans-IO forwarding core on str0m)          src/sfu
//! ```
//!
//! The `sfu` module never imports tokio, axum, the database or GStreamer; it is
//! driven with explicit time and unit-tested with synthetic peers. `webhooks` stands
//! beside `http`: it listens to the rooms' event bus and sends from its own tasks.

pub mod admin_cli;
pub mod bridges;
pub mod config;
pub mod driver;
pub mod http;
pub mod recording;
pub mod replay;
pub mod rooms;
pub mod schedule;
pub mod sfu;
pub mod signaling;
pub mod store;
pub mod webhooks;
