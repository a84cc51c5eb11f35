//! What the handlers share.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecg_core::ports::{HealthCheck, JobQueue, JobStore, UploadSlots};
use ecg_core::request::UrlPolicy;

use crate::auth::ApiToken;
use crate::upload::UploadConfig;

/// API settings, read once at start-up.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub url_policy: UrlPolicy,
    /// Origins allowed by CORS (`ECG_CORS_ORIGINS`).
    pub cors_origins: Vec<String>,
    /// `estimated_time` of the process-video answer, in seconds.
    pub estimated_time_s: u64,
    /// How long `/transcribe` waits for its job before answering with the id to poll.
    pub transcribe_deadline: Duration,
    /// Larger request bodies get 413.
    pub max_body_bytes: usize,
    /// `ECG_API_TOKEN`: when set, every endpoint but `/health` needs it as a bearer token.
    pub api_token: Option<ApiToken>,
    /// Where media sent with a request goes; `None` where no runner could read it (the Lambda).
    pub uploads: Option<UploadConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            url_policy: UrlPolicy::default(),
            cors_origins: Vec::new(),
            estimated_time_s: 300,
            transcribe_deadline: Duration::from_secs(600),
            max_body_bytes: 64 * 1024,
            api_token: None,
            uploads: None,
        }
    }
}

/// The process' metrics for `GET /metrics`, in Prometheus' text exposition format.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    async fn render(&self) -> String;
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn JobStore>,
    pub queue: Arc<dyn JobQueue>,
    /// Readiness checks beyond the store and the queue (e.g. models loaded).
    pub checks: Vec<Arc<dyn HealthCheck>>,
    pub config: Arc<ApiConfig>,
    /// `POST /uploads` hands these out, where requests cannot carry media themselves (the Lambda
    /// function behind API Gateway); `None` where uploads go with the request (`ecg serve`).
    pub upload_slots: Option<Arc<dyn UploadSlots>>,
    /// Served at `/metrics` when set. The Lambda function has none: a process that lives for a
    /// few requests has nothing to scrape.
    pub metrics: Option<Arc<dyn MetricsSource>>,
}
