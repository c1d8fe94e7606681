//! Replay endpoints: the lesson list and manifest for the replay page, HLS playlists,
//! part files and exports (with HTTP range requests), student links, export requests.
//!
//! Invariants: nothing is served without credentials (401 first, before any lookup);
//! a file's class and lesson in the URL must be the authorized lesson's; playlists of a
//! lesson still being recorded are never cached.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{ApiError, AppState};
use crate::replay::{Credentials, LessonSummary, ReplayError, ReplayFile};
use crate::store::{LessonQuery, LessonRow, LessonState};

const DEFAULT_PAGE: u32 = 20;
const DEFAULT_LINK_TTL_SECS: i64 = 7 * 24 * 3600;
const MAX_LINK_TTL_SECS: i64 = 366 * 24 * 3600;

pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/replay", get(list))
        .route("/replay/{lesson}", get(manifest))
        .route("/lessons/{id}/links", post(student_link))
        .route("/lessons/{id}/export", post(request_export))
}

pub fn file_routes() -> Router<AppState> {
    Router::new().route("/replay/{class}/{lesson}/{file}", get(file))
}

#[derive(Deserialize, Default)]
struct Signature {
    exp: Option<String>,
    sig: Option<String>,
}

fn credentials<'a>(h: &'a HeaderMap, q: &'a Signature) -> Credentials<'a> {
    let bearer = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| crate::rooms::auth::bearer(Some(v)).ok());
    Credentials { bearer, exp: q.exp.as_deref(), sig: q.sig.as_deref() }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    class: String,
    page: Option<u32>,
    q: Option<String>,
}

/// `GET /api/replay?class=&page=&q=`: a class's lessons, for holders of its tokens.
async fn list(State(s): State<AppState>, h: HeaderMap, q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>) -> Result<Json<Value>, ApiError> {
    let no_signature = Signature::default();
    let creds = credentials(&h, &no_signature);
    if creds.bearer.is_none() {
        return Err(ReplayError::Access(crate::replay::AccessError::Missing).into());
    }
    let q = q.map_err(|e| ApiError::bad_request(e.body_text()))?.0;
    s.replay.authorize_class(&q.class, creds.bearer)?;
    let page = q.page.unwrap_or(1).max(1);
    let query = LessonQuery { class_id: Some(q.class), text: q.q, limit: DEFAULT_PAGE, offset: (page - 1).saturating_mul(DEFAULT_PAGE) };
    let (rows, total) = s.rooms.store.lessons(&query).map_err(ReplayError::from)?;
    let lessons: Vec<LessonSummary> = rows.into_iter().map(LessonSummary::from).collect();
    Ok(Json(json!({ "lessons": lessons, "page": page, "total": total, "page_size": DEFAULT_PAGE })))
}

/// `GET /api/replay/{lesson}`: the replay page's manifest.
async fn manifest(State(s): State<AppState>, h: HeaderMap, Path(lesson): Path<String>, Query(q): Query<Signature>) -> Result<Json<Value>, ApiError> {
    let row = authorize(&s, &lesson, credentials(&h, &q))?;
    let replay = s.replay.clone();
    let manifest = tokio::task::spawn_blocking(move || replay.manifest(row)).await.map_err(|_| ApiError::internal("manifest task failed"))??;
    Ok(Json(json!(manifest)))
}

fn authorize(s: &AppState, lesson: &str, creds: Credentials) -> Result<LessonRow, ApiError> {
    if creds.bearer.is_none() && creds.sig.is_none() {
        return Err(ReplayError::Access(crate::replay::AccessError::Missing).into());
    }
    Ok(s.replay.authorize(lesson, creds)?)
}

/// `GET /replay/{class}/{lesson}/{file}`: playlists, part files, the export.
async fn file(
    State(s): State<AppState>,
    Path((class, lesson, name)): Path<(String, String, String)>,
    Query(q): Query<Signature>,
    req: Request,
) -> Result<Response, ApiError> {
    let row = authorize(&s, &lesson, credentials(req.headers(), &q))?;
    if row.class_id != class {
        return Err(ApiError::not_found(format!("lesson {lesson} is not in class {class}")));
    }
    let file = ReplayFile::parse(&name).ok_or_else(|| ApiError::not_found(format!("no file {name}")))?;
    let query = match (&q.exp, &q.sig) {
        (Some(exp), Some(sig)) => format!("exp={exp}&sig={sig}"),
        _ => s.replay.signed_query(&row),
    };
    match file {
        ReplayFile::MediaPlaylist(key) => playlist(&s, row, move |r, row| r.media_playlist(row, &key, &query)).await,
        ReplayFile::MasterPlaylist(key) => playlist(&s, row, move |r, row| r.master_playlist(row, &key, &query)).await,
        media => serve_file(s.replay.file_path(&row, &media)?, req).await,
    }
}

async fn playlist(
    s: &AppState,
    row: LessonRow,
    render: impl FnOnce(&crate::replay::Replay, &LessonRow) -> Result<String, ReplayError> + Send + 'static,
) -> Result<Response, ApiError> {
    let replay = s.replay.clone();
    let live = row.state == LessonState::Recording;
    let text = tokio::task::spawn_blocking(move || render(&replay, &row)).await.map_err(|_| ApiError::internal("playlist task failed"))??;
    let cache = if live { "no-cache" } else { "private, max-age=60" };
    let headers = [(header::CONTENT_TYPE, "application/vnd.apple.mpegurl"), (header::CACHE_CONTROL, cache)];
    Ok((headers, text).into_response())
}

async fn serve_file(path: std::path::PathBuf, req: Request) -> Result<Response, ApiError> {
    if !path.is_file() {
        return Err(ApiError::not_found("no such file in this lesson"));
    }
    let mut res = ServeFile::new(path).oneshot(req).await.map_err(|_| ApiError::internal("cannot read the file"))?.into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(res)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewStudentLink {
    ttl_secs: Option<i64>,
}

/// `POST /api/lessons/{id}/links` (admin): a signed replay link for students.
async fn student_link(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<String>,
    b: Option<Json<NewStudentLink>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::admin::require_admin(&s, &h)?;
    let ttl = b.map(|Json(b)| b).unwrap_or_default().ttl_secs.unwrap_or(DEFAULT_LINK_TTL_SECS);
    if !(1..=MAX_LINK_TTL_SECS).contains(&ttl) {
        return Err(ApiError::unprocessable("ttl_secs", "between 1 s and 366 days"));
    }
    let row = s.rooms.store.lesson(&id).map_err(ReplayError::from)?.map(|(r, _)| r);
    let row = row.ok_or_else(|| ApiError::not_found(format!("lesson {id} does not exist")))?;
    let (page, expires_at) = s.replay.signed_page_link(&row, ttl);
    let url = format!("{}/{page}", s.config.public_url);
    Ok((StatusCode::CREATED, Json(json!({ "url": url, "expires_at": expires_at }))))
}

/// `POST /api/lessons/{id}/export` (admin): (re-)render the lesson's composite MP4.
async fn request_export(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    super::admin::require_admin(&s, &h)?;
    let row = s.rooms.store.lesson(&id).map_err(ReplayError::from)?.map(|(r, _)| r);
    let row = row.ok_or_else(|| ApiError::not_found(format!("lesson {id} does not exist")))?;
    if row.state == LessonState::Recording {
        return Err(ApiError::new(StatusCode::CONFLICT, "still_recording", "the lesson is still being recorded"));
    }
    s.exports.enqueue(&row.id).map_err(ReplayError::from)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "lesson": row.id, "export": "queued" }))))
}

impl From<ReplayError> for ApiError {
    fn from(e: ReplayError) -> Self {
        let (status, code) = match &e {
            ReplayError::Access(_) | ReplayError::Token(_) | ReplayError::OtherClass => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ReplayError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ReplayError::Store(_) | ReplayError::Unreadable(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "replay request failed");
        }
        ApiError::new(status, code, e.to_string())
    }
}
