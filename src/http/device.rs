//! Classroom screens (kiosk mode): `GET /api/device` with a district classroom's
//! device token tells the screen where it is, the class in session (with a join
//! token for it) and the next one. The screen asks every few seconds; nobody at a
//! teaching point touches a keyboard.
//!
//! Invariants:
//! - An unknown or revoked device token gets 401 JSON at once; the revoked case says
//!   so, so the screen can show why.
//! - A join token is only minted while the class is in session; it is bound to the
//!   device (`dev` claim, refused once revoked) and expires 5 minutes after the period.
//! - Times in the answer are the scheduler's clock (`server_time_ms` included), so a
//!   screen with a wrong clock still counts down correctly.

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::rooms::auth::{AuthError, Claims, ISSUER, bearer};
use crate::schedule::plan::{Calendar, Occurrence};
use crate::signaling::protocol::Role;
use crate::store::{ClassSession, Room, RoomKind};

/// How long a screen's join token outlives its period (a late reconnect still works).
const TOKEN_SLACK_SECS: i64 = 300;

pub fn routes() -> Router<AppState> {
    Router::new().route("/device", get(device_state)).route("/debug/clock", post(set_clock))
}

#[derive(Serialize)]
struct DeviceState {
    room: RoomInfo,
    server_time_ms: i64,
    now: Option<InSession>,
    next: Option<Upcoming>,
}

#[derive(Serialize)]
struct RoomInfo {
    id: String,
    name: String,
    kind: RoomKind,
}

/// The class in session for this classroom, and how to join it.
#[derive(Serialize)]
struct InSession {
    class_id: String,
    subject: String,
    teacher: String,
    opens_at_ms: i64,
    closes_at_ms: i64,
    /// `classroom.html` for a listening classroom, `teacher.html` for the main one.
    page: &'static str,
    token: String,
}

#[derive(Serialize)]
struct Upcoming {
    subject: String,
    teacher: String,
    date: String,
    opens_at_ms: i64,
    closes_at_ms: i64,
}

async fn device_state(State(s): State<AppState>, h: HeaderMap) -> Result<Json<DeviceState>, ApiError> {
    let room = device_room(&s, &h)?;
    let store = &s.rooms.store;
    let now_ms = s.schedule.now_ms();
    let cal = s.calendars.get(store)?;
    let session = store.open_sessions().map_err(crate::rooms::RoomError::from)?.into_iter().find(|x| in_session_for(&s, &cal, x, &room));
    let after = session.as_ref().map_or(now_ms, |x| x.closes_at_ms);
    let next = cal.next_for_room(&room.id, after, &crate::schedule::local_offset).map(upcoming);
    let now = session.map(|x| in_session(&s, &cal, &x, &room));
    let info = RoomInfo { id: room.id, name: room.name, kind: room.kind };
    Ok(Json(DeviceState { room: info, server_time_ms: now_ms, now, next }))
}

/// The classroom of the bearer device token (401 if unknown or revoked).
fn device_room(s: &AppState, h: &HeaderMap) -> Result<Room, ApiError> {
    let token = bearer(h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    let room = s.rooms.store.room_by_device_token(token)?.ok_or_else(|| AuthError::Invalid("unknown device link".into()))?;
    if room.revoked {
        return Err(AuthError::Revoked.into());
    }
    Ok(room)
}

fn in_session_for(s: &AppState, cal: &Calendar, x: &ClassSession, room: &Room) -> bool {
    let involved = cal.period(&x.period_id).is_some_and(|p| p.involves(&room.id));
    involved && s.rooms.live.get(&x.class_id).is_some_and(|c| c.scheduled())
}

fn in_session(s: &AppState, cal: &Calendar, x: &ClassSession, room: &Room) -> InSession {
    let period = cal.period(&x.period_id);
    let subject = period.map(|p| p.subject.clone()).unwrap_or_default();
    let teacher = period.map(|p| p.teacher.clone()).unwrap_or_default();
    let main = room.kind == RoomKind::Main;
    let (role, sub) = if main { (Role::Main, crate::sfu::room::MAIN.to_string()) } else { (Role::Classroom, room.id.clone()) };
    let name = if main && !teacher.is_empty() { teacher.clone() } else { room.name.clone() };
    // Join tokens expire in real time; session times are on the scheduler's clock.
    let real_close_secs = (x.closes_at_ms - s.schedule.offset_ms()) / 1000;
    let now = crate::store::unix_now();
    let claims = Claims { iss: ISSUER.into(), cls: x.class_id.clone(), sub, role, name, iat: now, exp: real_close_secs + TOKEN_SLACK_SECS, dev: Some(room.id.clone()) };
    let page = if main { "teacher.html" } else { "classroom.html" };
    InSession { class_id: x.class_id.clone(), subject, teacher, opens_at_ms: x.opens_at_ms, closes_at_ms: x.closes_at_ms, page, token: s.rooms.tokens.mint(&claims) }
}

fn upcoming(o: Occurrence) -> Upcoming {
    Upcoming { subject: o.period.subject.clone(), teacher: o.period.teacher.clone(), date: o.date, opens_at_ms: o.opens_at_ms, closes_at_ms: o.closes_at_ms }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockRequest {
    now_ms: i64,
}

/// Test hook, off unless `--fault-injection true`: step the timetable's clock.
async fn set_clock(State(s): State<AppState>, h: HeaderMap, b: Result<Json<ClockRequest>, JsonRejection>) -> Result<Json<Value>, ApiError> {
    super::admin::require_admin(&s, &h)?;
    if !s.config.fault_injection {
        return Err(ApiError::not_found("fault injection is off (--fault-injection)"));
    }
    let Json(b) = b.map_err(|e| ApiError::bad_request(e.body_text()))?;
    s.schedule.set_now(b.now_ms);
    tracing::warn!(now_ms = b.now_ms, offset_ms = s.schedule.offset_ms(), "timetable clock stepped");
    Ok(Json(json!({ "now_ms": s.schedule.now_ms(), "offset_ms": s.schedule.offset_ms() })))
}
