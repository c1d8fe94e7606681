//! HTTP surface (axum): pages, admin API and sign-in, room WebSocket, WHIP/WHEP, health and
//! metrics. Framing only: every decision is made in `rooms`.
//!
//! Invariants: every error is a status code with a JSON body
//! `{"error": "<code>", "message": "..."}`; request bodies are capped at 64 KiB.

mod admin;
mod bridges;
mod device;
mod dashboard;
mod district;
mod error;
mod metrics;
mod replay;
mod session;
mod webhooks;
mod whip;
mod ws;
pub mod welcome;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::services::ServeDir;

use crate::config::Config;
use crate::rooms::Rooms;
pub use error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub rooms: Arc<Rooms>,
    pub replay: crate::replay::Replay,
    pub exports: crate::recording::Exports,
    pub config: Arc<Config>,
    pub started: Instant,
    /// The timetable's clock (kiosk screens count down on it).
    pub schedule: crate::schedule::ScheduleClock,
    /// The timetable for frequent readers (screens, dashboard), re-read every 2 s at most.
    pub calendars: crate::schedule::CalendarCache,
    /// Bridged sources (RTSP, SRT, RTMP) and their tasks.
    pub bridges: std::sync::Arc<crate::bridges::Bridges>,
}

pub fn router(state: AppState) -> Router {
    let pages = ServeDir::new(&state.config.web_root);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/ws", get(ws::upgrade))
        .merge(whip::routes())
        .merge(replay::file_routes())
        .nest(
            "/api",
            admin::routes()
                .merge(replay::api_routes())
                .merge(district::routes())
                .merge(session::routes())
                .merge(device::routes())
                .merge(webhooks::routes())
                .merge(dashboard::routes())
                .merge(bridges::routes())
                .layer(axum::middleware::from_fn(session::cookie_requests_are_json)),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .fallback_service(pages)
        .with_state(state)
}

async fn healthz(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "uptime_secs": s.started.elapsed().as_secs(),
        "classes_live": s.rooms.live.count(),
        "participants": s.rooms.live.participant_count(),
        "media_port": s.rooms.driver.local_addr().port(),
    }))
}
