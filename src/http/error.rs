//! The one error type of the HTTP surface: status + `{"error", "message"}`; a 422
//! also names the field and the reason on their own (`"field"`, `"reason"`), so a
//! page can put the reason next to the input.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::rooms::RoomError;
use crate::rooms::auth::AuthError;
use crate::sfu::NegotiationError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The request field a 422 is about, and why.
    pub field: Option<(String, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unprocessable(field: &str, reason: &str) -> ApiError {
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", format!("{field}: {reason}"));
        ApiError { field: Some((field.to_string(), reason.to_string())), ..e }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some((field, reason)) => json!({ "error": self.code, "message": self.message, "field": field, "reason": reason }),
            None => json!({ "error": self.code, "message": self.message }),
        };
        (self.status, Json(body)).into_response()
    }
}

/// A store failure behind a request: logged, answered 500 with the store's message.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store request failed");
        ApiError::internal(e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string())
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        let (status, code) = match &e {
            RoomError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            RoomError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            RoomError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            RoomError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            RoomError::Negotiation(n) => (negotiation_status(n), negotiation_code(n)),
            RoomError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            RoomError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "request failed");
        }
        ApiError::new(status, code, e.to_string())
    }
}

fn negotiation_status(e: &NegotiationError) -> StatusCode {
    match e {
        NegotiationError::UnknownPeer | NegotiationError::NoPendingOffer => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn negotiation_code(e: &NegotiationError) -> &'static str {
    match e {
        NegotiationError::NoUsableCodec { .. } => "no_usable_codec",
        NegotiationError::Malformed(_) => "malformed_sdp",
        _ => "bad_sdp",
    }
}
