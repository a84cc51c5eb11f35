//! Handlers for every endpoint of the contract.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ecg_core::contract::{
    BackendTranscribeResponse, Callback, HealthResponse, JobStatusResponse, ProcessVideoRequest,
    ProcessVideoResponse, TranscribeMetadata, TranscribeRequest, UploadRequest, UploadResponse,
};
use ecg_core::error::ErrorCode;
use ecg_core::job::{JobId, JobRecord, JobStatus, Outcome, format_timestamp};
use ecg_core::ports::{Created, JobMessage};
use ecg_core::preview::{PreviewMedia, render_preview};
use ecg_core::request::{JobSpec, ValidationError, from_json};
use jiff::Timestamp;
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::auth::require_token;
use crate::error::ApiError;
use crate::state::{AppState, MetricsSource};
use crate::upload::{self, Upload};

/// The whole API.
pub fn router(state: AppState) -> Router {
    let origins: Vec<HeaderValue> = state
        .config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    let max_body = state.config.max_body_bytes;
    let mut guarded = Router::new()
        .route("/api/upload-video/process-video", post(process_video))
        // Uploads are limited while they stream, JSON bodies as they are read.
        .route(
            "/transcribe",
            post(transcribe).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/v1/audio/transcriptions",
            post(crate::openai::transcriptions).layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads", post(new_upload))
        .route("/jobs/{job_id}", get(job_status))
        .route("/jobs/{job_id}/result", get(job_result))
        .route("/jobs/{job_id}/preview", get(job_preview));
    if let Some(source) = state.metrics.clone() {
        // Behind the token like the jobs: job counts and memory are nobody else's business, and
        // Prometheus sends a bearer token as readily as a probe does none.
        guarded = guarded.merge(metrics_routes(source));
    }
    if let Some(token) = state.config.api_token.clone() {
        // Before the body is read: a caller without the token cannot make us buffer anything.
        guarded = guarded.route_layer(middleware::from_fn_with_state(
            Arc::new(token),
            require_token,
        ));
    }
    // `/health` stays open: load balancers and orchestrators probe it without credentials; so
    // does the documentation.
    guarded
        .route("/health", get(health))
        .merge(crate::openapi::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// `GET /metrics` alone, for `router` and for a worker without the API.
pub fn metrics_routes<S>(source: Arc<dyn MetricsSource>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let render = move || {
        let source = Arc::clone(&source);
        async move {
            (
                [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
                source.render().await,
            )
        }
    };
    Router::new().route("/metrics", get(render))
}

/// The content type of Prometheus' text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))
}

/// Stores the job and queues it. A job id seen before starts nothing: the same request again is
/// answered as the first time (safe to retry), a different request under that id gets 409.
#[utoipa::path(
    post,
    path = "/api/upload-video/process-video",
    tag = "jobs",
    request_body = ProcessVideoRequest,
    responses(
        (status = 200, body = ProcessVideoResponse, description = "The job runs (or ran: the same request again is answered as the first time); progress and the result reach `{fastapi_base_url}/api/upload-video/result` as callbacks"),
        (status = 400, description = "The body is not JSON"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 409, description = "The job id exists already with a different request"),
        (status = 422, description = "A field failed validation; `field` names it"),
        (status = 503, description = "The job store or queue cannot be reached; worth retrying"),
    ),
    security(("bearer" = []))
)]
async fn process_video(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ProcessVideoResponse>, ApiError> {
    let spec = JobSpec::parse_process_video(&parse_json(&body)?, &state.config.url_policy)?;
    let job_id = spec.job_id;
    tracing::info!(job_id = %job_id, source = %spec.source, "job submitted");
    let ended = submit(&state, spec).await?;
    // The contract's status is always "processing"; a replay of an ended job says so in the
    // message and expects no more time (its status URL has the outcome).
    let (message, estimated_time) = if ended {
        ("이미 처리가 끝난 작업입니다", 0)
    } else {
        (
            "비디오 처리가 시작되었습니다",
            state.config.estimated_time_s,
        )
    };
    Ok(Json(ProcessVideoResponse {
        job_id: job_id.to_string(),
        status: "processing".to_owned(),
        message: message.to_owned(),
        status_url: format!("/jobs/{job_id}"),
        estimated_time,
    }))
}

/// Where the client may put media too large for a request, and what to submit afterwards.
#[utoipa::path(
    post,
    path = "/uploads",
    tag = "jobs",
    request_body = UploadRequest,
    responses(
        (status = 200, body = UploadResponse, description = "`PUT` the file to `upload_url`, then submit `media_url` as the job's `video_url`"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 404, description = "This server takes the media with the request instead (`POST /transcribe` as a form)"),
        (status = 503, description = "The storage cannot be reached; worth retrying"),
    ),
    security(("bearer" = []))
)]
async fn new_upload(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<UploadResponse>, ApiError> {
    let Some(slots) = state.upload_slots.as_ref() else {
        return Err(ApiError::NotFound(
            "this server takes media with the request: POST /transcribe as multipart/form-data"
                .to_owned(),
        ));
    };
    // The body is optional: no body asks for a slot for a file of no particular name.
    let request: UploadRequest = if body.is_empty() {
        UploadRequest::default()
    } else {
        from_json(&parse_json(&body)?)?
    };
    let slot = slots
        .create(request.file_name.as_deref().unwrap_or_default())
        .await?;
    Ok(Json(UploadResponse {
        upload_url: slot.upload_url,
        method: "PUT".to_owned(),
        media_url: slot.media_url,
        expires_in: slot.expires_in.as_secs(),
    }))
}

/// Returns whether the job had ended already (a replayed request).
async fn submit(state: &AppState, spec: JobSpec) -> Result<bool, ApiError> {
    let job_id = spec.job_id;
    match state
        .store
        .create(JobRecord::new(spec.clone(), Timestamp::now()))
        .await?
    {
        Created::New(_) => {}
        Created::Existing(existing) if existing.spec == spec => {
            return Ok(existing.status.is_terminal());
        }
        Created::Existing(_) => {
            return Err(ApiError::Conflict(format!(
                "job {job_id} exists already with a different request"
            )));
        }
    }
    if let Err(e) = state.queue.enqueue(&JobMessage { job_id }).await {
        // Never leave a job queued that no worker will see.
        let outcome = Outcome::Failed {
            code: ErrorCode::ProcessingError,
            message: format!("could not queue the job: {e}"),
        };
        if let Err(store_err) = state.store.finish(job_id, 0, outcome).await {
            tracing::error!(job_id = %job_id, error = %store_err, "cannot fail an unqueued job");
        }
        return Err(e.into());
    }
    Ok(false)
}

/// Synchronous analysis: queues the job like any other and waits for its end. The media is named
/// in a JSON body, or sent with the request as a form upload (`file` plus the same fields).
#[utoipa::path(
    post,
    path = "/transcribe",
    tag = "jobs",
    request_body = TranscribeRequest,
    responses(
        (status = 200, body = BackendTranscribeResponse, description = "The analysis, or `success: false` with the error and its code"),
        (status = 400, description = "The body is not JSON, or the upload is no valid form or broke off"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 413, description = "The body or the upload is over its limit"),
        (status = 415, description = "An upload where this server takes none (behind API Gateway: send a URL)"),
        (status = 422, description = "A field failed validation; `field` names it"),
        (status = 503, description = "The job store or queue cannot be reached; worth retrying"),
        (status = 504, description = "Still running past the deadline; poll the `status_url` given"),
    ),
    security(("bearer" = []))
)]
async fn transcribe(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<BackendTranscribeResponse>, ApiError> {
    let (spec, upload) = if upload::is_multipart(request.headers()) {
        let upload = upload::receive(request, state.config.uploads.as_ref()).await?;
        let fields: TranscribeRequest = from_json(&upload.fields_json())?;
        (
            fields.validate_upload(upload.path().to_owned())?,
            Some(upload),
        )
    } else {
        let body = read_json(request, state.config.max_body_bytes).await?;
        (
            JobSpec::parse_transcribe(&body, &state.config.url_policy)?,
            None,
        )
    };
    // An upload is stored under a name of ours; the answer names the client's file.
    let filename = upload
        .as_ref()
        .and_then(Upload::file_name)
        .map_or_else(|| spec.source.file_name(), str::to_owned);
    let record = run_to_end(&state, spec, upload).await?;
    Ok(Json(transcribe_response(&record, filename)))
}

/// Submits a job and waits, up to the configured deadline, for its end. An uploaded file lives
/// until then, even when the caller stops waiting.
pub(crate) async fn run_to_end(
    state: &AppState,
    spec: JobSpec,
    upload: Option<Upload>,
) -> Result<JobRecord, ApiError> {
    let job_id = spec.job_id;
    submit(state, spec).await?;
    let ended = wait_for_end(state, job_id, Some(state.config.transcribe_deadline)).await?;
    if ended.is_none()
        && let Some(upload) = upload
    {
        let state = state.clone();
        tokio::spawn(async move {
            let _ = wait_for_end(&state, job_id, None).await;
            drop(upload);
        });
    }
    ended.ok_or_else(|| ApiError::StillRunning {
        job_id: job_id.to_string(),
    })
}

/// The job's record once it has ended; `None` when `limit` passes first.
async fn wait_for_end(
    state: &AppState,
    job_id: JobId,
    limit: Option<Duration>,
) -> Result<Option<JobRecord>, ApiError> {
    let started = tokio::time::Instant::now();
    loop {
        match state.store.get(job_id).await? {
            Some(record) if record.status.is_terminal() => return Ok(Some(record)),
            _ if limit.is_some_and(|limit| started.elapsed() >= limit) => return Ok(None),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A JSON body of at most `limit` bytes (413 above).
async fn read_json(request: Request, limit: usize) -> Result<Value, ApiError> {
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|e| ApiError::TooLarge(format!("the body exceeds {limit} bytes: {e}")))?;
    parse_json(&body)
}

fn transcribe_response(record: &JobRecord, filename: String) -> BackendTranscribeResponse {
    let processing_time = record.processing_time(Timestamp::now()).unwrap_or_default();
    let language_requested = record.spec.language;
    match (&record.result, record.status) {
        (Some(result), JobStatus::Completed) => BackendTranscribeResponse {
            success: true,
            segments: result.segments.clone(),
            speakers: result.speakers.clone(),
            metadata: TranscribeMetadata {
                filename,
                duration: result.duration,
                total_segments: result.metadata.total_segments,
                unique_speakers: result.metadata.unique_speakers,
                processing_time,
                language_requested: result.metadata.language_requested.clone(),
                language_detected: result.metadata.language_detected.clone(),
                processing_mode: result.metadata.processing_mode.clone(),
                processed_at: result.metadata.processed_at.clone().unwrap_or_default(),
            },
            processing_time,
            error: None,
            error_code: None,
        },
        _ => BackendTranscribeResponse {
            success: false,
            segments: Vec::new(),
            speakers: BTreeMap::new(),
            metadata: TranscribeMetadata {
                filename,
                duration: 0.0,
                total_segments: 0,
                unique_speakers: 0,
                processing_time,
                language_requested: language_requested.as_str().to_owned(),
                language_detected: String::new(),
                processing_mode: language_requested.processing_mode().to_owned(),
                processed_at: record.finished_at.map(format_timestamp).unwrap_or_default(),
            },
            processing_time,
            error: record.error_message.clone(),
            error_code: record.error_code,
        },
    }
}

/// Real readiness: the store, the queue and every configured check must answer.
#[utoipa::path(
    get,
    path = "/health",
    tag = "service",
    responses(
        (status = 200, body = HealthResponse, description = "Every check answered"),
        (status = 503, body = HealthResponse, description = "A check failed; `checks` says which"),
    )
)]
async fn health(State(state): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let mut healthy = true;
    let mut record = |name: &str, outcome: Result<String, String>| {
        healthy &= outcome.is_ok();
        checks.insert(
            name.to_owned(),
            outcome.unwrap_or_else(|e| format!("failed: {e}")),
        );
    };
    record(
        "job_store",
        state
            .store
            .ping()
            .await
            .map(|()| "ok".to_owned())
            .map_err(|e| e.message),
    );
    record(
        "queue",
        state
            .queue
            .ping()
            .await
            .map(|()| "ok".to_owned())
            .map_err(|e| e.message),
    );
    for check in &state.checks {
        record(check.name(), check.check().await);
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthResponse {
        status: if healthy { "healthy" } else { "unhealthy" }.to_owned(),
        timestamp: format_timestamp(Timestamp::now()),
        checks,
    };
    (status, Json(body)).into_response()
}

/// A job's state and progress.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses(
        (status = 200, body = JobStatusResponse, description = "The job's state"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 404, description = "No such job"),
        (status = 422, description = "`job_id` is not a UUID"),
    ),
    security(("bearer" = []))
)]
async fn job_status(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let record = stored_job(&state, &job_id).await?;
    Ok(Json(record.status_response(Timestamp::now())).into_response())
}

async fn stored_job(state: &AppState, job_id: &str) -> Result<JobRecord, ApiError> {
    let id = JobId::parse(job_id).map_err(|_| ValidationError::new("job_id", "must be a UUID"))?;
    state
        .store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))
}

/// Not in the original contract: the terminal callback's body, as it was (or would have been)
/// sent, so that a backend that missed it — down, or answering errors past the retries — can
/// fetch it. 404 until the job has ended.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}/result",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses(
        (status = 200, body = Callback, description = "The terminal callback, completed or failed"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 404, description = "No such job, or it has not ended yet"),
    ),
    security(("bearer" = []))
)]
async fn job_result(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let record = stored_job(&state, &job_id).await?;
    let callback = record
        .terminal_callback()
        .ok_or_else(|| ApiError::NotFound(format!("job {job_id} has not ended yet")))?;
    Ok(Json(callback).into_response())
}

/// Not in the original contract: the HTML preview of a completed job (`ecg_core::preview`),
/// playing the media when the job's source is a URL a browser can fetch. 404 until then.
#[utoipa::path(
    get,
    path = "/jobs/{job_id}/preview",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job's UUID")),
    responses(
        (status = 200, content_type = "text/html", body = String, description = "A page that plays the media with the analysis as karaoke captions"),
        (status = 401, description = "No or a wrong bearer token"),
        (status = 404, description = "No such job, or no result yet"),
    ),
    security(("bearer" = []))
)]
async fn job_preview(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Response, ApiError> {
    let record = stored_job(&state, &job_id).await?;
    let result = record
        .result
        .as_deref()
        .filter(|_| record.status == JobStatus::Completed)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "job {job_id} has no result to preview ({})",
                record.status.as_str()
            ))
        })?;
    let source = &record.spec.source;
    let media = PreviewMedia::from_url(source);
    Ok(Html(render_preview(result, &source.file_name(), media.as_ref())).into_response())
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::Request;
    use ecg_core::contract::AnalysisResult;
    use ecg_core::ports::{HealthCheck, JobQueue, JobStore};
    use ecg_local::{InProcessQueue, SqliteJobStore};
    use http_body_util::BodyExt;
    use serde_json::json;
    use tower::ServiceExt;

    use super::*;
    use crate::auth::ApiToken;
    use crate::state::ApiConfig;

    const ID: &str = "550e8400-e29b-41d4-a716-446655440000";

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Arc<dyn JobStore>,
        queue: Arc<InProcessQueue>,
        app: Router,
    }

    fn fixture(checks: Vec<Arc<dyn HealthCheck>>) -> Fixture {
        fixture_with(checks, None)
    }

    fn fixture_with(checks: Vec<Arc<dyn HealthCheck>>, api_token: Option<ApiToken>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(dir.path()).unwrap());
        let queue = Arc::new(InProcessQueue::new());
        let config = ApiConfig {
            cors_origins: vec!["http://localhost:3000".into()],
            api_token,
            ..ApiConfig::default()
        };
        let state = AppState {
            store: Arc::clone(&store),
            queue: Arc::clone(&queue) as Arc<dyn JobQueue>,
            checks,
            config: Arc::new(config),
            upload_slots: None,
            metrics: Some(Arc::new(OneSample)),
        };
        Fixture {
            _dir: dir,
            store,
            queue,
            app: router(state),
        }
    }

    /// A metrics source whose text is one sample.
    struct OneSample;

    #[async_trait]
    impl MetricsSource for OneSample {
        async fn render(&self) -> String {
            "ecg_jobs_running 0\n".to_owned()
        }
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ORIGIN, "http://localhost:3000")
            .body(body.map_or_else(Body::empty, Body::from))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn submission(extra: &Value) -> String {
        let mut body = json!({"job_id": ID, "video_url": "https://example.com/video.mp4"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body.to_string()
    }

    async fn post_job(app: &Router, extra: &Value) -> (StatusCode, Value) {
        let body = submission(extra);
        call(app, "POST", "/api/upload-video/process-video", Some(body)).await
    }

    #[tokio::test]
    async fn accepts_a_job_once_and_reports_it() {
        let f = fixture(vec![]);
        let (status, body) = post_job(&f.app, &json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"job_id": ID, "status": "processing", "message": "비디오 처리가 시작되었습니다",
                   "status_url": format!("/jobs/{ID}"), "estimated_time": 300})
        );
        // The same request again is answered the same way but starts nothing new.
        let (status, _) = post_job(&f.app, &json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert!(f.queue.lease(Duration::ZERO).await.unwrap().is_some());
        assert!(
            f.queue.lease(Duration::ZERO).await.unwrap().is_none(),
            "one message for one job"
        );
        // A different request under the same id is a conflict.
        let (status, _) = post_job(&f.app, &json!({"language": "ko"})).await;
        assert_eq!(status, StatusCode::CONFLICT);

        let (status, body) = call(&f.app, "GET", &format!("/jobs/{ID}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "queued");
        assert_eq!(body["processing_time"], Value::Null);
    }

    #[tokio::test]
    async fn an_ended_job_serves_its_terminal_callback() {
        let f = fixture(vec![]);
        let (status, _) = post_job(&f.app, &json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let result = format!("/jobs/{ID}/result");
        let (status, _) = call(&f.app, "GET", &result, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not ended yet");

        let id = JobId::parse(ID).unwrap();
        let outcome = Outcome::Failed {
            code: ErrorCode::DownloadError,
            message: "video download failed: 404".into(),
        };
        f.store.finish(id, 0, outcome).await.unwrap().unwrap();
        let (status, body) = call(&f.app, "GET", &result, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["job_id"], ID);
        assert_eq!(body["status"], "failed");
        assert_eq!(body["error_code"], "DOWNLOAD_ERROR");
        let (status, _) = call(&f.app, "GET", "/jobs/not-a-uuid/result", None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

        // Its status says whether the backend was told; a replayed submission that it has ended.
        let (_, body) = call(&f.app, "GET", &format!("/jobs/{ID}"), None).await;
        assert_eq!(body["notification"], json!({"delivery": "pending"}));
        let (status, body) = post_job(&f.app, &json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["status"].as_str(), body["estimated_time"].as_u64()),
            (Some("processing"), Some(0)),
            "{body}"
        );
        assert_eq!(body["message"], "이미 처리가 끝난 작업입니다");
    }

    #[tokio::test]
    async fn a_completed_job_has_a_preview_page_that_plays_its_url() {
        let f = fixture(vec![]);
        post_job(&f.app, &json!({})).await;
        let preview = format!("/jobs/{ID}/preview");
        let (status, _) = call(&f.app, "GET", &preview, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "nothing to preview yet");

        let result: AnalysisResult = serde_json::from_value(json!({
            "segments": [{"start_time": 0.5, "end_time": 1.0, "text": "Hello",
                          "speaker": {"speaker_id": "SPEAKER_00"},
                          "words": [{"word": "Hello", "start": 0.5, "end": 1.0, "confidence": 0.9,
                                     "acoustic_features": {"volume_db": -20.0, "pitch_hz": 120.0,
                                                           "spectral_centroid": 900.0}}]}],
            "word_segments": [], "speakers": {"SPEAKER_00": {"total_duration": 0.5, "segment_count": 1}},
            "text": "Hello", "language": "en", "duration": 2.0,
            "metadata": {"model_version": "m", "processing_time": 0.1, "unique_speakers": 1,
                         "total_segments": 1, "language_requested": "auto", "language_detected": "en",
                         "processing_mode": "auto-detect", "processed_at": "2026-01-01T00:00:00Z"}
        }))
        .unwrap();
        let id = JobId::parse(ID).unwrap();
        f.store.start(id, 1).await.unwrap().unwrap();
        let done = Outcome::Completed(Box::new(result));
        f.store.finish(id, 1, done).await.unwrap().unwrap();

        let request = Request::builder()
            .uri(&preview)
            .body(Body::empty())
            .unwrap();
        let response = f.app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(page.to_vec()).unwrap();
        assert!(page.contains("<title>video.mp4 · ECG preview</title>"));
        assert!(page.contains(
            r#"<video id="media" controls preload="metadata" src="https://example.com/video.mp4">"#
        ));
        assert!(page.contains(r#""word":"Hello""#));
    }

    #[tokio::test]
    async fn invalid_requests_name_the_field() {
        let f = fixture(vec![]);
        for (extra, field) in [
            (json!({"job_id": "123"}), "job_id"),
            (json!({"language": "fr"}), "language"),
            (json!({"max_workers": 99}), "max_workers"),
            (
                json!({"video_url": "http://example.com/v.mp4"}),
                "video_url",
            ),
            (json!({"fastapi_base_url": "not a url"}), "fastapi_base_url"),
            (json!({"emotion_detection": "yes"}), "emotion_detection"),
        ] {
            let (status, body) = call(
                &f.app,
                "POST",
                "/api/upload-video/process-video",
                Some(submission(&extra)),
            )
            .await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(body["field"], field);
            assert_eq!(body["detail"][0]["loc"][1], field);
        }
        let (status, body) = call(
            &f.app,
            "POST",
            "/api/upload-video/process-video",
            Some("{not json".into()),
        )
        .await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("body"))
        );
        let huge = submission(&json!({"padding": "x".repeat(100_000)}));
        let (status, _) = call(
            &f.app,
            "POST",
            "/api/upload-video/process-video",
            Some(huge),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            f.queue.lease(Duration::ZERO).await.unwrap().is_none(),
            "nothing invalid was queued"
        );
    }

    #[tokio::test]
    async fn unknown_and_malformed_job_ids() {
        let f = fixture(vec![]);
        let (status, _) = call(&f.app, "GET", &format!("/jobs/{ID}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = call(&f.app, "GET", "/jobs/not-a-uuid", None).await;
        assert_eq!(
            (status, body["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("job_id"))
        );
    }

    struct Failing;
    #[async_trait]
    impl HealthCheck for Failing {
        fn name(&self) -> &'static str {
            "models"
        }
        async fn check(&self) -> Result<String, String> {
            Err("ggml-base.bin missing".into())
        }
    }

    #[tokio::test]
    async fn health_reflects_its_checks() {
        let (status, body) = call(&fixture(vec![]).app, "GET", "/health", None).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("healthy"))
        );
        assert_eq!(body["checks"]["job_store"], "ok");
        let (status, body) = call(
            &fixture(vec![Arc::new(Failing)]).app,
            "GET",
            "/health",
            None,
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("unhealthy"))
        );
        assert!(
            body["checks"]["models"]
                .as_str()
                .unwrap()
                .contains("missing")
        );
    }

    #[tokio::test]
    async fn cors_allows_configured_origins_only() {
        let f = fixture(vec![]);
        let preflight = |origin: &'static str| {
            Request::builder()
                .method("OPTIONS")
                .uri("/health")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                .body(Body::empty())
                .unwrap()
        };
        let allowed = f
            .app
            .clone()
            .oneshot(preflight("http://localhost:3000"))
            .await
            .unwrap();
        assert_eq!(
            allowed.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "http://localhost:3000"
        );
        let refused = f
            .app
            .clone()
            .oneshot(preflight("https://evil.example"))
            .await
            .unwrap();
        assert!(
            refused
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_token_guards_every_endpoint_but_health_and_the_documentation() {
        const TOKEN: &str = "a-long-enough-test-token";
        let f = fixture_with(vec![], Some(ApiToken::new(TOKEN).unwrap()));
        let send = |method: &str, uri: &str, authorization: Option<&str>| {
            let mut request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/json");
            if let Some(value) = authorization {
                request = request.header(header::AUTHORIZATION, value);
            }
            let body = if method == "POST" {
                Body::from(submission(&json!({})))
            } else {
                Body::empty()
            };
            f.app.clone().oneshot(request.body(body).unwrap())
        };
        let refused = [
            None,
            Some("Bearer wrong-token-of-some-length"),
            Some(TOKEN),
            Some("Basic YTpi"),
            Some("Bearer"),
            Some("Bearer a-long-enough-test-tokenX"),
        ];
        for (method, uri) in [
            ("POST", "/api/upload-video/process-video"),
            ("POST", "/transcribe"),
            ("GET", "/jobs/550e8400-e29b-41d4-a716-446655440000"),
            ("GET", "/jobs/550e8400-e29b-41d4-a716-446655440000/result"),
            ("GET", "/jobs/550e8400-e29b-41d4-a716-446655440000/preview"),
            ("GET", "/metrics"),
            ("POST", "/uploads"),
            ("POST", "/v1/audio/transcriptions"),
        ] {
            for authorization in refused {
                let response = send(method, uri, authorization).await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {uri} with {authorization:?}"
                );
                assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(body["error"], "unauthorized");
            }
        }
        assert!(
            f.queue.lease(Duration::ZERO).await.unwrap().is_none(),
            "nothing was queued without the token"
        );
        let bearer = format!("Bearer {TOKEN}");
        let response = send("POST", "/api/upload-video/process-video", Some(&bearer))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let lowercase = format!("bearer  {TOKEN}");
        let response = send("GET", &format!("/jobs/{ID}"), Some(&lowercase))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let response = send("GET", "/metrics", Some(&bearer)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROMETHEUS_TEXT);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "ecg_jobs_running 0\n");
        for open in ["/health", "/openapi.json", "/docs"] {
            let response = send("GET", open, None).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{open}");
        }
    }
}
