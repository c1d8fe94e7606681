//! Bridge admin API (admin key or admin session, like every admin API): create,
//! list with live status, inspect, delete; the RTMP listener's counters.
//!
//! Invariants:
//! - Every handler takes `Admin` first: nothing is read before the credentials are checked.
//! - A refused creation (400 malformed JSON or unknown field, 422 naming the field)
//!   stores and starts nothing; unknown ids are 404.
//! - A created bridge's task starts at once; a deleted one's stops at once.
//! - A password in a source URL never leaves the server: answers show it as `***`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::atomic::Ordering::Relaxed;

use super::admin::Admin;
use super::{ApiError, AppState};
use crate::bridges::BridgeStatus;
use crate::bridges::check::{CheckError, NewBridge, check};
use crate::store::BridgeRow;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bridges", get(list).post(create))
        .route("/bridges/rtmp", get(rtmp))
        .route("/bridges/{id}", get(get_one).delete(delete))
}

/// A bridge as the API shows it: its configuration, where an encoder pushes (RTMP), and its status.
#[derive(Serialize)]
struct View {
    #[serde(flatten)]
    row: BridgeRow,
    publish_url: Option<String>,
    status: Option<BridgeStatus>,
}

fn view(s: &AppState, mut row: BridgeRow) -> View {
    row.url = row.url.as_deref().map(redact_password);
    let publish_url = row.stream_key.as_ref().map(|k| format!("rtmp://{}/{}/{k}", s.config.rtmp_listen, crate::bridges::rtmp::APP));
    let status = s.bridges.status(&row.id);
    View { row, publish_url, status }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@').and_then(|(cred, host)| cred.split_once(':').map(|(user, _)| (user, host))) {
        Some((user, host)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

async fn create(_: Admin, State(s): State<AppState>, b: Result<Json<NewBridge>, JsonRejection>) -> Result<(StatusCode, Json<View>), ApiError> {
    let new = b.map(|Json(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let row = check(&new, &s.rooms.store).map_err(|e| match e {
        CheckError::Field(f) => ApiError::unprocessable(&f.field, &f.reason),
        CheckError::Store(e) => e.into(),
    })?;
    let row = s.rooms.store.create_bridge(row)?;
    tracing::info!(bridge = %row.id, class = %row.class_id, kind = %row.kind, "bridge created");
    s.bridges.start(row.clone());
    Ok((StatusCode::CREATED, Json(view(&s, row))))
}

async fn list(_: Admin, State(s): State<AppState>) -> Result<Json<Vec<View>>, ApiError> {
    let rows = s.rooms.store.bridges()?;
    Ok(Json(rows.into_iter().map(|r| view(&s, r)).collect()))
}

async fn get_one(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<View>, ApiError> {
    let row = s.rooms.store.bridge(&id)?.ok_or_else(|| ApiError::not_found(format!("bridge {id} does not exist")))?;
    Ok(Json(view(&s, row)))
}

async fn delete(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if !s.rooms.store.delete_bridge(&id)? {
        return Err(ApiError::not_found(format!("bridge {id} does not exist")));
    }
    s.bridges.stop(&id);
    tracing::info!(bridge = %id, "bridge deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn rtmp(_: Admin, State(s): State<AppState>) -> Json<Value> {
    let c = s.bridges.rtmp.counters();
    Json(json!({
        "listen": s.config.rtmp_listen.to_string(),
        "accepted": c.accepted.load(Relaxed),
        "refused_app": c.refused_app.load(Relaxed),
        "refused_key": c.refused_key.load(Relaxed),
        "refused_busy": c.refused_busy.load(Relaxed),
        "protocol_errors": c.protocol_errors.load(Relaxed),
        "flv_dropped": c.flv_dropped.load(Relaxed),
    }))
}

#[cfg(test)]
mod tests {
    use super::redact_password;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_password("rtsp://cam:secret@10.0.0.5:554/s?x=1"), "rtsp://cam:***@10.0.0.5:554/s?x=1");
        assert_eq!(redact_password("rtsp://10.0.0.5/a@b"), "rtsp://10.0.0.5/a@b");
        assert_eq!(redact_password("rtsp://user@10.0.0.5/"), "rtsp://user@10.0.0.5/");
        assert_eq!(redact_password("srt://127.0.0.1:7001?mode=listener"), "srt://127.0.0.1:7001?mode=listener");
        assert_eq!(redact_password("garbage"), "garbage");
    }
}
