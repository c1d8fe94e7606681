//! The live dashboard's API (admin key): `GET /api/dashboard`, one snapshot of
//! today's timetable and every live class with each classroom's health; and
//! `GET /api/dashboard/events`, the same snapshot as a server-sent event every
//! second (event `snapshot`), with keep-alive comments.
//!
//! Invariants: the admin key is checked before anything is read; the event stream
//! computes a snapshot only when its consumer is ready for the next one (a slow
//! reader skips seconds instead of queueing them); a snapshot that cannot be read
//! is sent as an `error` event and the stream goes on.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use tokio::time::MissedTickBehavior;

use super::admin::require_admin;
use super::{ApiError, AppState};
use crate::rooms::dashboard::ClassView;
use crate::schedule::today::TodayPeriod;

/// One picture: today's timetable (on the scheduler's clock) and the live classes.
#[derive(serde::Serialize)]
struct Dashboard {
    at_ms: i64,
    /// The scheduler's local date (`YYYY-MM-DD`) the timetable is read for.
    date: String,
    today: Vec<TodayPeriod>,
    classes: Vec<ClassView>,
}

fn dashboard(s: &AppState) -> Result<Dashboard, ApiError> {
    let at_ms = s.schedule.now_ms();
    let cal = s.calendars.get(&s.rooms.store)?;
    let (date, today) = crate::schedule::today::today(&s.rooms, &cal, at_ms)?;
    Ok(Dashboard { at_ms, date, today, classes: s.rooms.live_health(Instant::now()) })
}

/// How often the event stream sends a snapshot.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AppState> {
    Router::new().route("/dashboard", get(snapshot)).route("/dashboard/events", get(events))
}

async fn snapshot(State(s): State<AppState>, h: HeaderMap) -> Result<Json<Dashboard>, ApiError> {
    require_admin(&s, &h)?;
    Ok(Json(dashboard(&s)?))
}

async fn events(State(s): State<AppState>, h: HeaderMap) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require_admin(&s, &h)?;
    let mut ticks = tokio::time::interval(SNAPSHOT_INTERVAL);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let stream = futures_util::stream::unfold((s, ticks), |(s, mut ticks)| async move {
        ticks.tick().await;
        let event = snapshot_event(&s);
        Some((Ok(event), (s, ticks)))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn snapshot_event(s: &AppState) -> Event {
    let snapshot = dashboard(s).map_err(|e| e.message);
    let event = snapshot.and_then(|d| Event::default().event("snapshot").json_data(d).map_err(|e| e.to_string()));
    event.unwrap_or_else(|message| {
        tracing::warn!(%message, "dashboard snapshot failed");
        Event::default().event("error").data(message)
    })
}
