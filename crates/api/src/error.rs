//! API errors: the only place an HTTP status is chosen.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ecg_core::ports::BackendError;
use ecg_core::request::ValidationError;
use serde_json::{Value, json};

#[derive(Debug)]
pub enum ApiError {
    /// A field failed validation: 422 with the field named, in FastAPI's `detail` shape.
    Invalid(ValidationError),
    /// The body is not JSON, or an upload is not a valid form or broke off: 400.
    Malformed(String),
    /// An upload over the limit: 413.
    TooLarge(String),
    /// A kind of body this server does not take (an upload where there is no upload storage): 415.
    Unsupported(String),
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

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::StillRunning { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// What went wrong, in a sentence.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(e) => e.to_string(),
            ApiError::Unauthorized(why) => (*why).to_owned(),
            ApiError::Malformed(message)
            | ApiError::TooLarge(message)
            | ApiError::Unsupported(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message)
            | ApiError::Unavailable(message) => message.clone(),
            ApiError::StillRunning { job_id } => {
                format!("the job is still running; poll /jobs/{job_id}")
            }
        }
    }

    /// The body this API answers with: the contract's shapes.
    fn body(&self) -> Value {
        let message = self.message();
        match self {
            ApiError::Invalid(e) => json!({
                "error": "validation_error",
                "field": e.field,
                "message": message,
                "detail": [{ "loc": ["body", e.field], "msg": e.message, "type": "value_error" }],
            }),
            ApiError::Malformed(_) => {
                json!({ "error": "malformed_request", "field": "body", "message": message })
            }
            ApiError::StillRunning { job_id } => json!({
                "error": "still_running",
                "detail": message,
                "job_id": job_id,
                "status_url": format!("/jobs/{job_id}"),
            }),
            ApiError::TooLarge(_) => json!({ "error": "too_large", "detail": message }),
            ApiError::Unsupported(_) => json!({ "error": "unsupported", "detail": message }),
            ApiError::Unauthorized(_) => json!({ "error": "unauthorized", "detail": message }),
            ApiError::NotFound(_) => json!({ "error": "not_found", "detail": message }),
            ApiError::Conflict(_) => json!({ "error": "conflict", "detail": message }),
            ApiError::Unavailable(_) => json!({ "error": "unavailable", "detail": message }),
        }
    }

    /// This error with `body` as the answer's body, and the headers its status needs.
    pub fn respond_with(&self, body: Value) -> Response {
        if let ApiError::Unavailable(message) = self {
            tracing::error!(error = %message, "backend unavailable");
        }
        let mut response = (self.status(), Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond_with(self.body())
    }
}
