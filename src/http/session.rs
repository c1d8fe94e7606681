//! Admin sign-in with sessions, and the admin accounts API.
//!
//! `POST /api/session` checks a username and password (argon2id, `store::admins`) and
//! sets the `classcast_session` cookie; `GET` says who is signed in; `DELETE` signs
//! out. `/api/admins` lists, creates and deletes accounts (admin key or session).
//!
//! Invariants:
//! - A wrong username and a wrong password get the same 401 body, and take about as
//!   long (the store checks unknown names against a decoy hash).
//! - Guessing is throttled in memory: after `MAX_FAILURES` failed sign-ins for one
//!   username, or from one client address, within `WINDOW`, further sign-ins for it
//!   are refused with 429 and `Retry-After` before any password is checked. The
//!   client is the TCP peer: behind a reverse proxy every client shares the proxy's
//!   address, and the per-username limit is what remains. The table keeps at most
//!   `MAX_TRACKED` keys, forgetting stale ones first.
//! - At most `HASHING_SLOTS` password hashes run at once, on blocking threads, so
//!   sign-in floods cannot starve the media and signaling tasks.
//! - The cookie is `HttpOnly; SameSite=Strict; Path=/`, lasts as long as the session,
//!   and is `Secure` when the public URL is https. Its token is never logged.
//! - Cross-site request forgery: a state-changing request (any method but GET, HEAD,
//!   OPTIONS) that carries the session cookie and no `Authorization` header must be
//!   `Content-Type: application/json` (`cookie_requests_are_json`, on all of `/api`),
//!   which a cross-site form cannot send and a cross-site script cannot send without
//!   a CORS preflight that is never granted; SameSite=Strict keeps the cookie off
//!   cross-site requests in the first place.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::admin::admin_actor;
use super::{ApiError, AppState};
use crate::store::{AdminError, AdminSession, SESSION_TTL_MS, Store, unix_now_ms};

/// The session cookie's name.
pub const COOKIE: &str = "classcast_session";
/// Failed sign-ins for one username or from one client before it is throttled.
pub const MAX_FAILURES: usize = 10;
/// How long a failed sign-in counts.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Most usernames and clients the throttle remembers.
const MAX_TRACKED: usize = 10_000;
/// Password hashes computed at once.
const HASHING_SLOTS: usize = 2;
/// The one answer to a wrong username or password.
const WRONG: &str = "wrong username or password";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/session", post(sign_in).get(whoami).delete(sign_out))
        .route("/admins", post(create_admin).get(list_admins))
        .route("/admins/{id}", delete(delete_admin))
        .layer(Extension(Arc::new(SignIn::new())))
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(f) => ApiError::unprocessable(&f.field, &f.reason),
            AdminError::NotFound(m) => ApiError::not_found(m),
            AdminError::Refused(m) => ApiError::new(StatusCode::CONFLICT, "refused", m),
            AdminError::Hash(_) | AdminError::Store(_) => {
                tracing::error!(error = %e, "admin account request failed");
                ApiError::internal(e.to_string())
            }
        }
    }
}

/// Failed sign-ins per key (`user:<name>`, `client:<ip>`), oldest first.
#[derive(Default)]
struct Throttle {
    failures: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    /// How long until every key may try again; `None` if none is throttled.
    fn retry_after(&mut self, keys: &[String], now: Instant) -> Option<Duration> {
        keys.iter().filter_map(|k| self.wait_for(k, now)).max()
    }

    fn wait_for(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let q = self.failures.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            q.pop_front();
        }
        if q.len() < MAX_FAILURES {
            return None;
        }
        // The oldest failure that still counts leaves the window first.
        let excess = q.len() - MAX_FAILURES;
        q.get(excess).map(|t| WINDOW.saturating_sub(now.duration_since(*t)))
    }

    fn failed(&mut self, keys: &[String], now: Instant) {
        if self.failures.len() + keys.len() > MAX_TRACKED {
            self.failures.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        }
        for key in keys {
            if self.failures.len() >= MAX_TRACKED && !self.failures.contains_key(key) {
                continue;
            }
            let q = self.failures.entry(key.clone()).or_default();
            q.push_back(now);
            if q.len() > MAX_FAILURES {
                q.pop_front();
            }
        }
    }

    fn succeeded(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

/// Shared by every sign-in: the throttle and the hashing slots.
struct SignIn {
    throttle: Mutex<Throttle>,
    hashing: Semaphore,
}

impl SignIn {
    fn new() -> SignIn {
        SignIn { throttle: Mutex::new(Throttle::default()), hashing: Semaphore::new(HASHING_SLOTS) }
    }

    fn retry_after(&self, keys: &[String]) -> Option<Duration> {
        self.throttle.lock().ok()?.retry_after(keys, Instant::now())
    }

    /// A success clears the username (the first key); a failure counts for every key.
    fn record(&self, keys: &[String], ok: bool) {
        let Ok(mut t) = self.throttle.lock() else { return };
        match (ok, keys.first()) {
            (true, Some(user)) => t.succeeded(user),
            (true, None) => {}
            (false, _) => t.failed(keys, Instant::now()),
        }
    }

    /// Runs a password hash on a blocking thread, at most `HASHING_SLOTS` at once.
    async fn hash<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let _slot = self.hashing.acquire().await.map_err(|_| ApiError::internal("sign-in is shutting down"))?;
        tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("password check failed: {e}")))
    }
}

/// The client's address when the server knows it (`ConnectInfo`), else `unknown`.
struct Client(String);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(Client(ip.unwrap_or_else(|| "unknown".into())))
    }
}

/// The session token in the request's cookies, if any.
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session (`Some(token)`) or for signing out (`None`).
fn cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let (value, max_age) = match token {
        Some(t) => (t, SESSION_TTL_MS / 1000),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}");
    // Tokens are base64url and the rest is ASCII, so the value is a valid header.
    HeaderValue::from_str(&text).expect("ASCII cookie")
}

fn secure(s: &AppState) -> bool {
    s.config.public_url.to_ascii_lowercase().starts_with("https://")
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| ApiError::bad_request(e.body_text()))
}

fn who(user: &crate::store::AdminUser, expires_at_ms: i64) -> Json<Value> {
    Json(json!({ "user": user, "expires_at_ms": expires_at_ms }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn sign_in(State(s): State<AppState>, Extension(g): Extension<Arc<SignIn>>, Client(client): Client, b: Result<Json<Credentials>, JsonRejection>) -> Response {
    let b = match body(b) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let keys = [format!("user:{}", b.username.trim().to_ascii_lowercase()), format!("client:{client}")];
    if let Some(refused) = throttled(&g, &keys) {
        return refused;
    }
    let Ok(_slot) = g.hashing.acquire().await else { return ApiError::internal("shutting down").into_response() };
    // Checked again: attempts that queued for a slot may have filled the window meanwhile.
    if let Some(refused) = throttled(&g, &keys) {
        return refused;
    }
    let store = s.rooms.store.clone();
    let found = match tokio::task::spawn_blocking(move || store.sign_in(&b.username, &b.password, unix_now_ms())).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return ApiError::from(e).into_response(),
        Err(e) => return ApiError::internal(format!("password check failed: {e}")).into_response(),
    };
    g.record(&keys, found.is_some());
    let Some(AdminSession { token, user, expires_at_ms }) = found else {
        tracing::warn!(client = %client, "admin sign-in refused");
        return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", WRONG).into_response();
    };
    tracing::info!(admin = %user.username, client = %client, "admin signed in");
    ([(header::SET_COOKIE, cookie(Some(&token), secure(&s)))], who(&user, expires_at_ms)).into_response()
}

/// 429 with `Retry-After` (whole seconds, at least 1) while any key is throttled.
fn throttled(g: &SignIn, keys: &[String]) -> Option<Response> {
    let wait = g.retry_after(keys)?;
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", format!("too many failed sign-ins; try again in {secs} s"));
    Some(([(header::RETRY_AFTER, HeaderValue::from(secs))], e).into_response())
}

async fn whoami(State(s): State<AppState>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = session_cookie(&h).ok_or_else(not_signed_in)?;
    let found = s.rooms.store.admin_by_session(token, unix_now_ms())?;
    let (user, expires_at_ms) = found.ok_or_else(not_signed_in)?;
    Ok(who(&user, expires_at_ms))
}

pub(super) fn not_signed_in() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "not signed in (or the session has ended)")
}

/// Ends the session of the cookie, if any, and clears the cookie: always 204.
async fn sign_out(State(s): State<AppState>, h: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&h)
        && s.rooms.store.sign_out(token)?
    {
        tracing::info!("admin signed out");
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie(None, secure(&s)))]).into_response())
}

async fn create_admin(
    State(s): State<AppState>,
    Extension(g): Extension<Arc<SignIn>>,
    h: HeaderMap,
    b: Result<Json<Credentials>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let by = admin_actor(&s, &h)?;
    let b = body(b)?;
    let store: Store = s.rooms.store.clone();
    let user = g.hash(move || store.create_admin(&b.username, &b.password, &by)).await??;
    tracing::info!(admin = %user.username, "admin account created");
    Ok((StatusCode::CREATED, Json(json!(user))))
}

async fn list_admins(State(s): State<AppState>, h: HeaderMap) -> Result<Json<Value>, ApiError> {
    admin_actor(&s, &h)?;
    Ok(Json(json!(s.rooms.store.admins()?)))
}

async fn delete_admin(State(s): State<AppState>, h: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let by = admin_actor(&s, &h)?;
    s.rooms.store.delete_admin(&id, &by)?;
    tracing::info!(admin = %id, "admin account deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Middleware on `/api`: a state-changing request signed in by cookie alone must be JSON.
pub async fn cookie_requests_are_json(req: Request, next: Next) -> Response {
    if needs_json(req.method(), req.headers()) && !is_json(req.headers()) {
        let msg = "a request signed in by cookie must be Content-Type: application/json";
        return ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "json_required", msg).into_response();
    }
    next.run(req).await
}

fn needs_json(m: &Method, h: &HeaderMap) -> bool {
    let safe = matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS);
    !safe && !h.contains_key(header::AUTHORIZATION) && session_cookie(h).is_some()
}

fn is_json(h: &HeaderMap) -> bool {
    let ct = h.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests;
