//! Admin REST API: classes, their classrooms, join links, the lesson catalog; and
//! `require_admin`, the credential check of every admin endpoint.
//!
//! Invariants:
//! - An admin request carries either the admin key (`Authorization: Bearer`,
//!   compared in constant time) or the `classcast_session` cookie of a live sign-in
//!   session (`session.rs`); with an `Authorization` header the cookie is ignored.
//! - A state-changing request authenticated by the cookie must be
//!   `Content-Type: application/json` (415 otherwise; checked for all of `/api` by
//!   `session::cookie_requests_are_json`), so a cross-site form cannot forge one;
//!   the cookie is also `SameSite=Strict`.
//! - Every body field is validated (422 naming the field) before anything is stored.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::rooms::auth::{AuthError, Claims, ISSUER, bearer};
use crate::rooms::identity_for;
use crate::signaling::protocol::Role;
use crate::store::{Actor, unix_now, unix_now_ms};

const MAX_TEXT: usize = 200;
const DEFAULT_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_LINK_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/classes", post(create_class).get(list_classes))
        .route("/classes/{id}", get(get_class).delete(delete_class))
        .route("/classes/{id}/classrooms", post(add_classroom))
        .route("/classes/{id}/links", post(mint_link))
        .route("/lessons", get(list_lessons))
        .route("/lessons/{id}", get(get_lesson))
        .route("/debug/recorder-fault", post(inject_recorder_fault))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultRequest {
    class_id: String,
    track: Option<String>,
}

/// Test hook, off unless `--fault-injection true`: the recorder pipelines of a live
/// class (or one track of it) fail as if an element errored.
async fn inject_recorder_fault(State(s): State<AppState>, h: HeaderMap, b: Result<Json<FaultRequest>, JsonRejection>) -> Result<StatusCode, ApiError> {
    require_admin(&s, &h)?;
    if !s.config.fault_injection {
        return Err(ApiError::not_found("fault injection is off (--fault-injection)"));
    }
    let b = body(b)?;
    let recording = s.rooms.recording().ok_or_else(|| ApiError::not_found("recording is off"))?;
    tracing::warn!(class = %b.class_id, track = ?b.track, "injecting a recorder fault");
    recording.inject_fault(b.class_id, b.track);
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LessonsQuery {
    class: Option<String>,
    q: Option<String>,
    limit: Option<u32>,
    offset: Option<u32>,
}

/// The lesson catalog, newest first: `?class=&q=&limit=&offset=`.
async fn list_lessons(
    State(s): State<AppState>,
    h: HeaderMap,
    q: Result<axum::extract::Query<LessonsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&s, &h)?;
    let q = q.map_err(|e| ApiError::bad_request(e.body_text()))?.0;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > crate::store::MAX_LESSON_PAGE {
        return Err(ApiError::unprocessable("limit", "between 1 and 200"));
    }
    let query = crate::store::LessonQuery { class_id: q.class, text: q.q, limit, offset: q.offset.unwrap_or(0) };
    let (lessons, total) = s.rooms.store.lessons(&query).map_err(crate::rooms::RoomError::from)?;
    Ok(Json(json!({ "total": total, "lessons": lessons })))
}

async fn get_lesson(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    require_admin(&s, &h)?;
    let found = s.rooms.store.lesson(&id).map_err(crate::rooms::RoomError::from)?;
    let (lesson, tracks) = found.ok_or_else(|| ApiError::not_found(format!("lesson {id} does not exist")))?;
    Ok(Json(json!({ "lesson": lesson, "tracks": tracks })))
}

/// The request is an admin's: the bearer admin key, or a signed-in session's cookie.
pub(super) fn require_admin(s: &AppState, h: &HeaderMap) -> Result<(), ApiError> {
    admin_actor(s, h).map(|_| ())
}

/// Who the admin is. An `Authorization` header is judged alone (a wrong key is 401 even
/// with a valid cookie); without one, the `classcast_session` cookie must name a live session.
pub(super) fn admin_actor(s: &AppState, h: &HeaderMap) -> Result<Actor, ApiError> {
    if let Some(v) = h.get(header::AUTHORIZATION) {
        let given = bearer(v.to_str().ok())?;
        if !crate::rooms::auth::same_secret(given, &s.config.admin_key) {
            return Err(AuthError::Invalid("wrong admin key".into()).into());
        }
        return Ok(Actor::Key);
    }
    let token = super::session::session_cookie(h).ok_or(AuthError::Missing)?;
    let found = s.rooms.store.admin_by_session(token, unix_now_ms())?;
    found.map(|(user, _)| Actor::User(user)).ok_or_else(super::session::not_signed_in)
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn text_field(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ApiError::unprocessable(field, "must not be empty"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(ApiError::unprocessable(field, "at most 200 characters"));
    }
    Ok(v.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClass {
    title: String,
    #[serde(default)]
    teacher: String,
    /// Record the lessons (default: yes).
    record: Option<bool>,
}

async fn create_class(State(s): State<AppState>, h: HeaderMap, b: Result<Json<NewClass>, JsonRejection>) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&s, &h)?;
    let b = body(b)?;
    let title = text_field("title", &b.title)?;
    let teacher = if b.teacher.trim().is_empty() { String::new() } else { text_field("teacher", &b.teacher)? };
    let row = s.rooms.store.create_class(&title, &teacher, b.record.unwrap_or(true)).map_err(crate::rooms::RoomError::from)?;
    tracing::info!(class = %row.id, "class created");
    Ok((StatusCode::CREATED, Json(json!(row))))
}

async fn list_classes(State(s): State<AppState>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    require_admin(&s, &h)?;
    let rows = s.rooms.store.list_classes().map_err(crate::rooms::RoomError::from)?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let live = s.rooms.live.get(&r.id).map(|c| c.member_count()).unwrap_or(0);
            json!({ "id": r.id, "title": r.title, "teacher": r.teacher, "created_at": r.created_at, "record": r.record, "live": live })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn get_class(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    require_admin(&s, &h)?;
    let store = &s.rooms.store;
    let class = store.class(&id).map_err(crate::rooms::RoomError::from)?.ok_or_else(|| ApiError::not_found(format!("class {id} does not exist")))?;
    let classrooms = store.classrooms(&id).map_err(crate::rooms::RoomError::from)?;
    let participants = s.rooms.live.get(&id).map(|c| c.participants()).unwrap_or_default();
    let call_on = s.rooms.live.get(&id).and_then(|c| c.call_on());
    Ok(Json(json!({
        "id": class.id, "title": class.title, "teacher": class.teacher, "created_at": class.created_at, "record": class.record,
        "classrooms": classrooms, "participants": participants, "call_on": call_on,
    })))
}

async fn delete_class(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    require_admin(&s, &h)?;
    if !s.rooms.delete_class(&id).await? {
        return Err(ApiError::not_found(format!("class {id} does not exist")));
    }
    tracing::info!(class = %id, "class deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClassroom {
    name: String,
}

async fn add_classroom(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>, b: Result<Json<NewClassroom>, JsonRejection>) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&s, &h)?;
    let name = text_field("name", &body(b)?.name)?;
    let store = &s.rooms.store;
    store.class(&id).map_err(crate::rooms::RoomError::from)?.ok_or_else(|| ApiError::not_found(format!("class {id} does not exist")))?;
    let row = store.add_classroom(&id, &name).map_err(crate::rooms::RoomError::from)?;
    Ok((StatusCode::CREATED, Json(json!(row))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    role: Role,
    classroom_id: Option<String>,
    name: Option<String>,
    ttl_secs: Option<u64>,
}

async fn mint_link(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>, b: Result<Json<NewLink>, JsonRejection>) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_admin(&s, &h)?;
    let b = body(b)?;
    let store = &s.rooms.store;
    let class = store.class(&id).map_err(crate::rooms::RoomError::from)?.ok_or_else(|| ApiError::not_found(format!("class {id} does not exist")))?;
    let name = link_name(&s, &b, &class)?;
    let ttl = Duration::from_secs(b.ttl_secs.unwrap_or(DEFAULT_LINK_TTL.as_secs()));
    if ttl.is_zero() || ttl > MAX_LINK_TTL {
        return Err(ApiError::unprocessable("ttl_secs", "between 1 s and 366 days"));
    }
    let now = unix_now();
    let claims = Claims {
        iss: ISSUER.into(),
        cls: class.id.clone(),
        sub: identity_for(b.role, b.classroom_id.as_deref()),
        role: b.role,
        name,
        iat: now,
        exp: now + ttl.as_secs() as i64,
            dev: None,
    };
    let token = s.rooms.tokens.mint(&claims);
    // A student link opens the class's list of recorded lessons.
    let query = if b.role == Role::Student { format!("?class={}", class.id) } else { String::new() };
    let url = format!("{}/{}{query}#token={token}", s.config.public_url, page_of(b.role));
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "url": url, "role": b.role, "expires_at": claims.exp }))))
}

/// The display name of a link: given, else the classroom's or the class teacher's.
fn link_name(s: &AppState, b: &NewLink, class: &crate::store::ClassRow) -> Result<String, ApiError> {
    if b.role == Role::Classroom {
        let rid = b.classroom_id.as_deref().ok_or_else(|| ApiError::unprocessable("classroom_id", "required for role classroom"))?;
        let room = s.rooms.store.classroom(&class.id, rid).map_err(crate::rooms::RoomError::from)?;
        let room = room.ok_or_else(|| ApiError::unprocessable("classroom_id", "no such classroom in this class"))?;
        return b.name.as_deref().map(|n| text_field("name", n)).unwrap_or(Ok(room.name));
    }
    let fallback = match b.role {
        Role::Main if !class.teacher.is_empty() => class.teacher.clone(),
        Role::Main => "Main classroom".into(),
        Role::Student => "Student".into(),
        _ => "Observer".into(),
    };
    b.name.as_deref().map(|n| text_field("name", n)).unwrap_or(Ok(fallback))
}

pub fn page_of(role: Role) -> &'static str {
    match role {
        Role::Main => "teacher.html",
        Role::Classroom => "classroom.html",
        Role::Observer => "observer.html",
        Role::Student => "replay.html",
    }
}

/// Proof that the request carries the admin key (or an admin session): take it
/// as a handler's first argument and nothing else is read before the check.
pub struct Admin;

impl axum::extract::FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, s: &AppState) -> Result<Admin, ApiError> {
        require_admin(s, &parts.headers).map(|()| Admin)
    }
}
