//! Webhook admin API (bearer admin key): register, list, inspect and delete hooks,
//! send a test ping, read a hook's delivery log.
//!
//! Invariants:
//! - Every handler takes `Admin` first: nothing is read or parsed before the admin
//!   key is checked.
//! - A hook's secret appears in exactly one response: its creation.
//! - A refused creation (400 malformed JSON or unknown field, 422 naming the field)
//!   stores nothing; unknown ids are 404 with the JSON error body.
//! - Deliveries are stored here and sent by the dispatcher (`crate::webhooks`),
//!   which picks up a ping within a second.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::admin::Admin;
use super::{ApiError, AppState};
use crate::store::{MAX_DELIVERY_PAGE, Webhook, unix_now_ms};
use crate::webhooks::check::{NewWebhook, check};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", post(create).get(list))
        .route("/webhooks/{id}", get(get_one).delete(delete))
        .route("/webhooks/{id}/test", post(test))
        .route("/webhooks/{id}/deliveries", get(deliveries))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("webhook {id} does not exist"))
}

/// The hook, or 404.
fn hook(s: &AppState, id: &str) -> Result<Webhook, ApiError> {
    s.rooms.store.webhook(id)?.ok_or_else(|| not_found(id))
}

/// The creation answer: the hook and, this once, its secret.
#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    hook: Webhook,
    secret: String,
}

async fn create(_: Admin, State(s): State<AppState>, b: Result<Json<NewWebhook>, JsonRejection>) -> Result<(StatusCode, Json<Created>), ApiError> {
    let new = b.map(|Json(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let c = check(&new).map_err(|f| ApiError::unprocessable(&f.field, &f.reason))?;
    let hook = s.rooms.store.create_webhook(&c.url, &c.events, &c.secret)?;
    tracing::info!(hook = %hook.id, url = %hook.url, "webhook registered");
    Ok((StatusCode::CREATED, Json(Created { hook, secret: c.secret })))
}

async fn list(_: Admin, State(s): State<AppState>) -> Result<Json<Vec<Webhook>>, ApiError> {
    Ok(Json(s.rooms.store.webhooks()?))
}

async fn get_one(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<Webhook>, ApiError> {
    Ok(Json(hook(&s, &id)?))
}

async fn delete(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if !s.rooms.store.delete_webhook(&id)? {
        return Err(not_found(&id));
    }
    tracing::info!(hook = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// A `ping` delivery to this hook, whatever it subscribes to: 202 with its id.
async fn test(_: Admin, State(s): State<AppState>, Path(id): Path<String>) -> Result<(StatusCode, Json<Value>), ApiError> {
    let at_ms = unix_now_ms();
    let data = json!({ "type": "ping", "webhook_id": id, "at_ms": at_ms }).to_string();
    let delivery = s.rooms.store.enqueue_delivery(&id, "ping", &data, at_ms)?.ok_or_else(|| not_found(&id))?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "delivery_id": delivery }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u32>,
    offset: Option<u32>,
}

/// `?limit=` (1-200, default 50) `&offset=`: newest first, each with its attempts, and the total.
async fn deliveries(_: Admin, State(s): State<AppState>, Path(id): Path<String>, q: Result<Query<PageQuery>, QueryRejection>) -> Result<Json<Value>, ApiError> {
    let q = q.map(|Query(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_DELIVERY_PAGE {
        return Err(ApiError::unprocessable("limit", "between 1 and 200"));
    }
    hook(&s, &id)?;
    let (page, total) = s.rooms.store.deliveries(&id, limit, q.offset.unwrap_or(0))?;
    Ok(Json(json!({ "total": total, "deliveries": page })))
}
