//! WHIP (RFC 9725) and WHEP endpoints: SDP in, SDP out, a session resource to
//! DELETE. CORS is open (encoders and players live on other origins) and exposes
//! `Location`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use serde::Deserialize;
use tower_http::cors::{Any, CorsLayer};

use super::{ApiError, AppState};
use crate::rooms::WhipKind;
use crate::rooms::auth::bearer;

pub fn routes() -> Router<AppState> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::POST, Method::DELETE, Method::OPTIONS, Method::PATCH])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION]);
    Router::new()
        .route("/whip/{class}", post(whip_post))
        .route("/whip/{class}/{session}", delete(whip_delete).patch(no_trickle))
        .route("/whep/{class}", post(whep_post))
        .route("/whep/{class}/{session}", delete(whep_delete).patch(no_trickle))
        .layer(cors)
}

#[derive(Deserialize)]
struct WhipQuery {
    sources: Option<String>,
}

async fn whip_post(s: State<AppState>, class: Path<String>, q: Query<WhipQuery>, h: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    start(s, WhipKind::Whip, class.0, q.0.sources, h, body).await
}

async fn whep_post(s: State<AppState>, class: Path<String>, h: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    start(s, WhipKind::Whep, class.0, None, h, body).await
}

async fn start(State(s): State<AppState>, kind: WhipKind, class: String, sources: Option<String>, h: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let token = bearer(h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    let content_type = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "the offer must be sent as application/sdp"));
    }
    let offer = String::from_utf8(body.to_vec()).map_err(|_| ApiError::bad_request("the offer is not UTF-8 text"))?;
    let (session, answer) = s.rooms.whip_start(kind, &class, token, offer, sources.as_deref()).await?;
    let base = if kind == WhipKind::Whip { "whip" } else { "whep" };
    let location = format!("/{base}/{class}/{session}");
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/sdp"));
    // Class and session ids are ASCII by construction; a bad class id was refused above.
    headers.insert(header::LOCATION, HeaderValue::from_str(&location).map_err(|_| ApiError::bad_request("invalid class id"))?);
    Ok(resp)
}

async fn whip_delete(s: State<AppState>, p: Path<(String, String)>, h: HeaderMap) -> Result<StatusCode, ApiError> {
    end(s, WhipKind::Whip, p, h).await
}

async fn whep_delete(s: State<AppState>, p: Path<(String, String)>, h: HeaderMap) -> Result<StatusCode, ApiError> {
    end(s, WhipKind::Whep, p, h).await
}

async fn end(State(s): State<AppState>, kind: WhipKind, Path((class, session)): Path<(String, String)>, h: HeaderMap) -> Result<StatusCode, ApiError> {
    let token = bearer(h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))?;
    s.rooms.whip_delete(kind, &class, &session, token).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn no_trickle() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "no_trickle", "trickle ICE and ICE restarts are not supported: the answer carries every candidate")
}
