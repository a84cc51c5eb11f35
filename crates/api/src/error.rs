//! API errors: the only place an HTTP status is chosen.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecg_core::ports::BackendError;
use ecg_core::request::ValidationError;
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    /// A field failed validation: 422 with the field named, in FastAPI's `detail` shape.
    Invalid(ValidationError),
    /// The body is not JSON: 400.
    Malformed(String),
    /// No or a wrong bearer token: 401, with `WWW-Authenticate: Bearer`.
    Unauthorized(&'static str),
    NotFound(String),
    /// The same job id was submitted with a different request.
    Conflict(String),
    /// The store or queue cannot be reached: 503, worth retrying.
    Unavailable(String),
    /// `/transcribe` ran out of time; the job goes on and can be polled.
    StillRunning {
        job_id: String,
    },
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::Invalid(e)
    }
}

impl From<BackendError> for ApiError {
    fn from(e: BackendError) -> Self {
        ApiError::Unavailable(e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Unauthorized(why) => {
                let body = json!({ "error": "unauthorized", "detail": why });
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    Json(body),
                )
                    .into_response();
            }
            ApiError::Invalid(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({
                    "error": "validation_error",
                    "field": e.field,
                    "message": e.to_string(),
                    "detail": [{ "loc": ["body", e.field], "msg": e.message, "type": "value_error" }],
                }),
            ),
            ApiError::Malformed(message) => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "malformed_request", "field": "body", "message": message }),
            ),
            ApiError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                json!({ "error": "not_found", "detail": message }),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                json!({ "error": "conflict", "detail": message }),
            ),
            ApiError::Unavailable(message) => {
                tracing::error!(error = %message, "backend unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({ "error": "unavailable", "detail": message }),
                )
            }
            ApiError::StillRunning { job_id } => (
                StatusCode::GATEWAY_TIMEOUT,
                json!({
                    "error": "still_running",
                    "detail": format!("the job is still running; poll /jobs/{job_id}"),
                    "job_id": job_id,
                    "status_url": format!("/jobs/{job_id}"),
                }),
            ),
        };
        (status, Json(body)).into_response()
    }
}
