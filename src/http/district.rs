//! District admin API (bearer admin key): schools, district classrooms and their
//! device tokens, pairings, terms and holidays, the timetable, the audit log.
//!
//! Invariants:
//! - Every handler takes `Admin` first: nothing is read or parsed before the admin
//!   key is checked.
//! - Framing only: every check and write is one store call (one transaction), so a
//!   refused request (400 malformed JSON or unknown field, 422 naming the field,
//!   404, 409 still in use) leaves nothing behind.
//! - A device token appears in exactly one response: the classroom's creation.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::admin::Admin;
use super::{ApiError, AppState};
use crate::store::{DistrictError, Holiday, MAX_AUDIT_PAGE, NewPairing, NewPeriod, NewRoom, NewSchool, NewTerm, Room};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/schools", post(create_school).get(list_schools))
        .route("/schools/{id}", get(get_school).delete(delete_school))
        .route("/rooms", post(create_room).get(list_rooms))
        .route("/rooms/{id}", get(get_room).delete(delete_room))
        .route("/rooms/{id}/revoke", post(revoke_room))
        .route("/pairings", post(create_pairing).get(list_pairings))
        .route("/pairings/{id}", get(get_pairing).delete(delete_pairing))
        .route("/terms", post(create_term).get(list_terms))
        .route("/terms/{id}", get(get_term).delete(delete_term))
        .route("/terms/{id}/holidays", post(add_holiday))
        .route("/terms/{id}/holidays/{date}", delete(delete_holiday))
        .route("/timetable", post(create_period).get(list_periods))
        .route("/timetable/{id}", get(get_period).delete(delete_period))
        .route("/audit", get(audit))
}

impl From<DistrictError> for ApiError {
    fn from(e: DistrictError) -> Self {
        match e {
            DistrictError::Invalid(f) => ApiError::unprocessable(&f.field, &f.reason),
            DistrictError::NotFound(m) => ApiError::not_found(m),
            DistrictError::InUse(m) => ApiError::new(StatusCode::CONFLICT, "in_use", m),
            DistrictError::Store(e) => e.into(),
        }
    }
}

type Body<T> = Result<Json<T>, JsonRejection>;
type Created<T> = (StatusCode, Json<T>);
type Reply<T> = Result<Json<T>, ApiError>;

fn body<T>(b: Body<T>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn created<T>(row: T) -> Created<T> {
    (StatusCode::CREATED, Json(row))
}

fn found<T>(row: Option<T>, what: &str, id: &str) -> Reply<T> {
    row.map(Json).ok_or_else(|| ApiError::not_found(format!("{what} {id} does not exist")))
}

// Schools.

async fn create_school(_: Admin, State(s): State<AppState>, b: Body<NewSchool>) -> Result<Created<impl Serialize>, ApiError> {
    Ok(created(s.rooms.store.create_school(&body(b)?)?))
}

async fn list_schools(_: Admin, State(s): State<AppState>) -> Reply<impl Serialize> {
    Ok(Json(s.rooms.store.schools()?))
}

async fn get_school(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    found(s.rooms.store.school(&id)?, "school", &id)
}

async fn delete_school(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_school(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

// District classrooms.

/// The creation answer: the classroom and, this once, its device token.
#[derive(Serialize)]
struct NewRoomReply {
    #[serde(flatten)]
    room: Room,
    device_token: String,
    /// The screen's page: open it once on the classroom PC (kiosk mode) and leave it.
    device_url: String,
}

async fn create_room(_: Admin, State(s): State<AppState>, b: Body<NewRoom>) -> Result<Created<NewRoomReply>, ApiError> {
    let (room, device_token) = s.rooms.store.create_room(&body(b)?)?;
    tracing::info!(room = %room.id, kind = room.kind.as_str(), "district classroom created");
    let device_url = format!("{}/kiosk.html#device={device_token}", s.config.public_url);
    Ok(created(NewRoomReply { room, device_token, device_url }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoomsQuery {
    school: Option<String>,
}

async fn list_rooms(_: Admin, State(s): State<AppState>, q: Result<Query<RoomsQuery>, QueryRejection>) -> Reply<impl Serialize> {
    Ok(Json(s.rooms.store.district_rooms(query(q)?.school.as_deref())?))
}

async fn get_room(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    found(s.rooms.store.district_room(&id)?, "classroom", &id)
}

async fn revoke_room(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    let room = s.rooms.store.revoke_room(&id)?;
    s.rooms.disconnect_device(&id);
    Ok(Json(room))
}

async fn delete_room(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_room(&id)?;
    s.rooms.disconnect_device(&id);
    Ok(StatusCode::NO_CONTENT)
}

// Pairings.

async fn create_pairing(_: Admin, State(s): State<AppState>, b: Body<NewPairing>) -> Result<Created<impl Serialize>, ApiError> {
    Ok(created(s.rooms.store.create_pairing(&body(b)?)?))
}

async fn list_pairings(_: Admin, State(s): State<AppState>) -> Reply<impl Serialize> {
    Ok(Json(s.rooms.store.pairings()?))
}

async fn get_pairing(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    found(s.rooms.store.pairing(&id)?, "pairing", &id)
}

async fn delete_pairing(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_pairing(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

// Terms and holidays.

async fn create_term(_: Admin, State(s): State<AppState>, b: Body<NewTerm>) -> Result<Created<impl Serialize>, ApiError> {
    Ok(created(s.rooms.store.create_term(&body(b)?)?))
}

async fn list_terms(_: Admin, State(s): State<AppState>) -> Reply<impl Serialize> {
    Ok(Json(s.rooms.store.terms()?))
}

async fn get_term(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    found(s.rooms.store.term(&id)?, "term", &id)
}

async fn delete_term(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_term(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn add_holiday(_: Admin, State(s): State<AppState>, Path(id): Path<String>, b: Body<Holiday>) -> Result<Created<impl Serialize>, ApiError> {
    Ok(created(s.rooms.store.add_holiday(&id, &body(b)?)?))
}

async fn delete_holiday(_: Admin, State(s): State<AppState>, Path((id, date)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_holiday(&id, &date)?;
    Ok(StatusCode::NO_CONTENT)
}

// The timetable.

async fn create_period(_: Admin, State(s): State<AppState>, b: Body<NewPeriod>) -> Result<Created<impl Serialize>, ApiError> {
    Ok(created(s.rooms.store.create_period(&body(b)?)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimetableQuery {
    term: Option<String>,
}

async fn list_periods(_: Admin, State(s): State<AppState>, q: Result<Query<TimetableQuery>, QueryRejection>) -> Reply<impl Serialize> {
    Ok(Json(s.rooms.store.timetable(query(q)?.term.as_deref())?))
}

async fn get_period(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Reply<impl Serialize> {
    found(s.rooms.store.period(&id)?, "period", &id)
}

async fn delete_period(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    s.rooms.store.delete_period(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

// The audit log.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<u32>,
    offset: Option<u32>,
}

/// `?limit=` (1-200, default 50) `&offset=`: newest first, with the total count.
async fn audit(_: Admin, State(s): State<AppState>, q: Result<Query<AuditQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_AUDIT_PAGE {
        return Err(ApiError::unprocessable("limit", "between 1 and 200"));
    }
    let (entries, total) = s.rooms.store.audit_log(limit, q.offset.unwrap_or(0))?;
    Ok(Json(json!({ "total": total, "entries": entries })))
}
