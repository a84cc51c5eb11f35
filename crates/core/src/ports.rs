//! Ports: what the domain needs from the outside world. Adapters (embedded, AWS, HTTP) implement them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::contract::Callback;
use crate::error::FetchError;
use crate::job::{Delivery, JobId, JobRecord, Outcome};
use crate::request::MediaSource;

/// A store or queue that could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
}

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Result of [`JobStore::create`]: creation is idempotent on the job id.
#[derive(Clone, Debug, PartialEq)]
pub enum Created {
    New(JobRecord),
    /// A job with this id exists already; nothing was changed.
    Existing(JobRecord),
}

/// Durable job state. Every change is a conditional write, so two workers or a redelivered
/// message cannot both win.
#[async_trait]
pub trait JobStore: Send + Sync {
    async fn create(&self, record: JobRecord) -> Result<Created, BackendError>;

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, BackendError>;

    /// queued → processing for delivery `attempt`; also takes over a processing job whose
    /// earlier attempt was lost (its message came back). `None`: someone else owns the job
    /// or it has ended.
    async fn start(&self, id: JobId, attempt: u32) -> Result<Option<JobRecord>, BackendError>;

    /// processing under `attempt` → queued, for a job handed back to the queue; false when the
    /// attempt no longer owns it.
    async fn requeue(&self, id: JobId, attempt: u32) -> Result<bool, BackendError>;

    /// Raises the job's progress if it is processing under `attempt` and `percent` is higher
    /// than before. Returns whether it was raised.
    async fn record_progress(
        &self,
        id: JobId,
        attempt: u32,
        percent: u8,
    ) -> Result<bool, BackendError>;

    /// Ends a job that is queued or processing under `attempt`. `None`: it had ended already or
    /// belongs to another attempt.
    async fn finish(
        &self,
        id: JobId,
        attempt: u32,
        outcome: Outcome,
    ) -> Result<Option<JobRecord>, BackendError>;

    /// Moves the terminal callback's delivery from `from` to `to`; false when it was not at `from`.
    async fn set_delivery(
        &self,
        id: JobId,
        from: Delivery,
        to: Delivery,
    ) -> Result<bool, BackendError>;

    /// Moves the terminal callback's delivery from sending to failed, recording why; false when
    /// it was not being sent.
    async fn fail_delivery(&self, id: JobId, reason: String) -> Result<bool, BackendError>;

    /// Jobs that a restart must look at: queued, processing, or ended with the callback pending.
    async fn unsettled(&self) -> Result<Vec<JobRecord>, BackendError>;

    /// Cheap readiness check for `/health`: the store answers, and accepts a write where one is
    /// cheap (the local store; DynamoDB's table description stands in for it).
    async fn ping(&self) -> Result<(), BackendError>;
}

/// What travels on the queue: the job's record lives in the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: JobId,
}

/// A message handed to one worker until it is acknowledged, released or its lease runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub message: JobMessage,
    /// The queue's handle for this delivery.
    pub receipt: String,
    /// How many times the message has been delivered, this time included (1 the first time).
    pub deliveries: u32,
}

/// At-least-once delivery of job messages.
#[async_trait]
pub trait JobQueue: Send + Sync {
    async fn enqueue(&self, message: &JobMessage) -> Result<(), BackendError>;

    /// Waits up to `wait` for a message.
    async fn lease(&self, wait: Duration) -> Result<Option<Lease>, BackendError>;

    /// Keeps a running job's message hidden from other workers (heartbeat).
    async fn extend(&self, lease: &Lease, visible_for: Duration) -> Result<(), BackendError>;

    /// Removes the message: the job's terminal state is stored.
    async fn ack(&self, lease: &Lease) -> Result<(), BackendError>;

    /// Hands the message back, to be offered again after `after` (at once when zero): to
    /// another worker on shutdown, or later when the job store is failing.
    async fn release(&self, lease: &Lease, after: Duration) -> Result<(), BackendError>;

    /// Messages a worker could lease now: neither leased nor handed back with a delay still to
    /// run (SQS: `ApproximateNumberOfMessages`).
    async fn depth(&self) -> Result<u64, BackendError>;

    async fn ping(&self) -> Result<(), BackendError>;
}

/// The limits every media download honours, whatever it is fetched from (HTTP, S3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchLimits {
    /// Retries after the first attempt, for transient failures only.
    pub retries: u32,
    /// First backoff delay; it doubles per retry up to `max_delay`, with jitter.
    pub base_delay: Duration,
    /// Cap on a backoff delay and on a 429's `Retry-After`.
    pub max_delay: Duration,
    /// No byte (of the response or the body) for this long: the attempt fails, transiently.
    pub stall_timeout: Duration,
    /// Limit on the whole fetch, retries and backoff included.
    pub total_timeout: Duration,
    /// Larger media is refused, by its announced length up front or while streaming.
    pub max_bytes: u64,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            stall_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(30 * 60),
            max_bytes: 5_000_000_000,
        }
    }
}

impl FetchLimits {
    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy {
            retries: self.retries,
            base: self.base_delay,
            cap: self.max_delay,
        }
    }

    /// One download of `shown` into `dest` from `source` (a metrics label: http, s3):
    /// `attempt(n)` under the retry policy and the total timeout. A failed download leaves no
    /// file behind.
    pub async fn download<F, Fut>(
        &self,
        source: &'static str,
        shown: &str,
        dest: &Path,
        attempt: F,
    ) -> Result<(), FetchError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::retry::AttemptError>>,
    {
        let policy = self.retry_policy();
        let attempts = policy.run(attempt);
        let outcome = tokio::time::timeout(self.total_timeout, attempts).await;
        crate::metrics::count_download(
            source,
            match &outcome {
                Ok(Ok(())) => "completed",
                Ok(Err(_)) => "failed",
                Err(_) => "timed_out",
            },
        );
        let error = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(gave_up)) => FetchError {
                message: if gave_up.attempts > 1 {
                    format!("{} (after {} attempts)", gave_up.message, gave_up.attempts)
                } else {
                    gave_up.message
                },
                transient: gave_up.transient,
            },
            Err(_) => FetchError::transient(format!(
                "download of {shown} did not finish within {}s",
                self.total_timeout.as_secs_f64()
            )),
        };
        if let Err(e) = tokio::fs::remove_file(dest).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dest = %dest.display(), error = %e, "cannot remove a partial download");
        }
        Err(error)
    }
}

/// Brings media to a local file.
#[async_trait]
pub trait BlobFetcher: Send + Sync {
    /// Returns the path to read: `dest` after a download, or the original path of a local file.
    async fn fetch(&self, source: &MediaSource, dest: &Path) -> Result<PathBuf, FetchError>;
}

/// Why a callback could not be delivered.
#[derive(Debug, thiserror::Error)]
#[error("callback to {target} failed after {attempts} attempt(s): {reason}")]
pub struct NotifyError {
    pub target: String,
    pub attempts: u32,
    pub reason: String,
}

/// Posts callbacks to the backend.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one callback to `{base}/api/upload-video/result`, retrying transient failures.
    async fn send(&self, base: &Url, callback: &Callback) -> Result<(), NotifyError> {
        self.send_unless(base, callback, &|| false).await
    }

    /// [`Notifier::send`] that gives up before a retry once `superseded()` holds (a newer
    /// progress step is waiting): the attempt under way always completes.
    async fn send_unless(
        &self,
        base: &Url,
        callback: &Callback,
        superseded: &(dyn Fn() -> bool + Send + Sync),
    ) -> Result<(), NotifyError>;
}

/// A readiness check reported by `/health`.
#[async_trait]
pub trait HealthCheck: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Ok(detail)` when ready, `Err(reason)` otherwise.
    async fn check(&self) -> Result<String, String>;
}

/// A place a client may put media itself, for a job to read: a presigned upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSlot {
    /// Where to `PUT` the file, for as long as `expires_in`.
    pub upload_url: String,
    /// What to submit as the job's media once the file is there (`s3://…`).
    pub media_url: String,
    pub expires_in: Duration,
}

/// Hands out upload slots: where requests cannot carry media themselves (API Gateway's 10 MB
/// payload limit), the client uploads straight to storage the runner reads.
#[async_trait]
pub trait UploadSlots: Send + Sync {
    /// A new slot for a file named `file_name` (a plain name; its extension is kept as a hint).
    async fn create(&self, file_name: &str) -> Result<UploadSlot, BackendError>;
}
