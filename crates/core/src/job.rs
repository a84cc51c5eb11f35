//! Job identity, the status state machine, and what the store keeps per job.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::contract::{AnalysisResult, Callback, CallbackStatus, JobStatusResponse, Notification};
use crate::error::ErrorCode;
use crate::progress::Step;
use crate::request::JobSpec;

/// A job's identity: a UUID, as the contract's integration checklist asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }
    pub fn parse(raw: &str) -> Result<Self, uuid::Error> {
        Uuid::parse_str(raw.trim()).map(Self)
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hyphenated lower case, the form the backend sends.
        write!(f, "{}", self.0.hyphenated())
    }
}

/// queued → processing → completed | failed. Terminal states are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            JobStatus::Queued,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }

    /// Whether the state machine allows `self → next`. A queued job may fail without starting
    /// (e.g. its message went to the dead-letter queue); a processing one goes back to queued
    /// when its worker hands it back unfinished.
    pub fn can_become(self, next: JobStatus) -> bool {
        matches!(
            (self, next),
            (JobStatus::Queued, JobStatus::Processing | JobStatus::Failed)
                | (
                    JobStatus::Processing,
                    JobStatus::Queued | JobStatus::Completed | JobStatus::Failed
                )
        )
    }
}

/// Where the terminal callback stands. It moves forward only, so it is sent at most once,
/// also across restarts: `Sending` is claimed before the first attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Not sent yet.
    Pending,
    /// Claimed by a worker that is sending it now (or was, when it died).
    Sending,
    Delivered,
    /// Every attempt failed; recorded so that nothing is lost silently.
    Failed,
    /// No callback URL was given nor configured.
    NoTarget,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Sending => "sending",
            Delivery::Delivered => "delivered",
            Delivery::Failed => "failed",
            Delivery::NoTarget => "no_target",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Delivery::Pending,
            Delivery::Sending,
            Delivery::Delivered,
            Delivery::Failed,
            Delivery::NoTarget,
        ]
        .into_iter()
        .find(|d| d.as_str() == raw)
    }
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Completed(Box<AnalysisResult>),
    Failed { code: ErrorCode, message: String },
}

impl Outcome {
    pub fn status(&self) -> JobStatus {
        match self {
            Outcome::Completed(_) => JobStatus::Completed,
            Outcome::Failed { .. } => JobStatus::Failed,
        }
    }
}

/// Everything the store keeps about a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub spec: JobSpec,
    pub status: JobStatus,
    /// Last progress step reached (0 before the first).
    pub progress: u8,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub result: Option<Box<AnalysisResult>>,
    pub delivery: Delivery,
    /// Why the terminal callback was not delivered, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_failure: Option<String>,
    /// The queue delivery that owns the job while it is processing (0 before the first start).
    pub attempt: u32,
    /// Bumped on every change; conditional writes compare it.
    pub version: u64,
}

impl JobRecord {
    pub fn new(spec: JobSpec, now: Timestamp) -> Self {
        Self {
            spec,
            status: JobStatus::Queued,
            progress: 0,
            created_at: now,
            started_at: None,
            finished_at: None,
            error_code: None,
            error_message: None,
            result: None,
            delivery: Delivery::Pending,
            delivery_failure: None,
            attempt: 0,
            version: 0,
        }
    }

    /// Seconds between start and finish (or now, for a running job).
    pub fn processing_time(&self, now: Timestamp) -> Option<f64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or(now);
        Some(round_ms(end.duration_since(start).as_secs_f64()))
    }

    // The state machine's rules. Every store applies them to the record it read, inside one
    // conditional write; each returns whether the record changed (false: leave it alone).

    /// queued → processing for delivery `attempt`, or a take-over of a processing job whose
    /// earlier attempt was lost (its message came back with a higher delivery count).
    pub fn start(&mut self, attempt: u32, now: Timestamp) -> bool {
        let takes_over = self.status == JobStatus::Processing && self.attempt < attempt;
        if self.status != JobStatus::Queued && !takes_over {
            return false;
        }
        self.status = JobStatus::Processing;
        self.attempt = attempt;
        // A take-over keeps the progress the backend has seen: it never goes back, so the new
        // attempt reports only the steps beyond it.
        self.started_at = Some(now);
        true
    }

    /// processing under `attempt` → queued: the attempt handed the job back to the queue (a
    /// shutdown, a store that kept failing), so a restart runs it again rather than failing it.
    /// The progress stays: the backend has seen it.
    pub fn requeue(&mut self, attempt: u32) -> bool {
        let owns = self.status == JobStatus::Processing && self.attempt == attempt;
        if owns && self.status.can_become(JobStatus::Queued) {
            self.status = JobStatus::Queued;
            return true;
        }
        false
    }

    /// Raises the progress of a job processing under `attempt`; it never goes back.
    pub fn raise_progress(&mut self, attempt: u32, percent: u8) -> bool {
        let raise = self.status == JobStatus::Processing
            && self.attempt == attempt
            && percent > self.progress;
        if raise {
            self.progress = percent;
        }
        raise
    }

    /// Ends a job that is queued or processing under `attempt`. Terminal states are final.
    pub fn finish(&mut self, attempt: u32, outcome: Outcome, now: Timestamp) -> bool {
        let owns = self.status == JobStatus::Queued
            || (self.status == JobStatus::Processing && self.attempt == attempt);
        if !owns || !self.status.can_become(outcome.status()) {
            return false;
        }
        self.status = outcome.status();
        self.finished_at = Some(now);
        match outcome {
            Outcome::Completed(result) => {
                self.progress = Step::Done.percent();
                self.result = Some(result);
            }
            Outcome::Failed { code, message } => {
                self.error_code = Some(code);
                self.error_message = Some(message);
            }
        }
        true
    }

    /// Moves the terminal callback's delivery forward from `from` to `to`.
    pub fn move_delivery(&mut self, from: Delivery, to: Delivery) -> bool {
        let moves = self.status.is_terminal() && self.delivery == from;
        if moves {
            self.delivery = to;
        }
        moves
    }

    /// Sending → failed, saying why.
    pub fn fail_delivery(&mut self, reason: String) -> bool {
        let moves = self.move_delivery(Delivery::Sending, Delivery::Failed);
        if moves {
            self.delivery_failure = Some(reason);
        }
        moves
    }

    /// The terminal callback for this record, if it has ended.
    pub fn terminal_callback(&self) -> Option<Callback> {
        let job_id = self.spec.job_id.to_string();
        match self.status {
            JobStatus::Completed => Some(Callback {
                job_id,
                status: CallbackStatus::Completed,
                progress: Some(Step::Done.percent()),
                message: Some(Step::Done.message().to_owned()),
                result: self.result.clone(),
                error_message: None,
                error_code: None,
            }),
            JobStatus::Failed => Some(Callback {
                job_id,
                status: CallbackStatus::Failed,
                progress: None,
                message: None,
                result: None,
                error_message: self.error_message.clone(),
                error_code: self.error_code,
            }),
            JobStatus::Queued | JobStatus::Processing => None,
        }
    }

    /// The answer of `GET /jobs/{id}`.
    pub fn status_response(&self, now: Timestamp) -> JobStatusResponse {
        let message = match self.status {
            JobStatus::Processing | JobStatus::Completed => Step::ALL
                .iter()
                .find(|s| s.percent() == self.progress)
                .map(|s| s.message().to_owned()),
            JobStatus::Queued | JobStatus::Failed => None,
        };
        JobStatusResponse {
            status: self.status.as_str().to_owned(),
            processing_time: self.processing_time(now),
            completed_at: self.finished_at.map(format_timestamp),
            job_id: Some(self.spec.job_id.to_string()),
            progress: Some(self.progress),
            message,
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            notification: self.status.is_terminal().then(|| Notification {
                delivery: self.delivery.as_str().to_owned(),
                error: self.delivery_failure.clone(),
            }),
        }
    }
}

/// RFC 3339 in UTC with whole seconds, as the contract's examples show.
pub fn format_timestamp(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Rounds seconds to milliseconds, enough for timings and stable in JSON. Never `-0.0`: an empty
/// sum of floats is `-0.0`, and JSON readers would show the sign.
pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0 + 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounded_times_have_no_negative_zero() {
        let nothing: f64 = std::iter::empty::<f64>().sum();
        assert_eq!(serde_json::to_string(&round_ms(nothing)).unwrap(), "0.0");
        assert_eq!(round_ms(1.23456), 1.235);
    }

    #[test]
    fn state_machine_only_moves_forward() {
        use JobStatus::*;
        assert!(Queued.can_become(Processing));
        assert!(Processing.can_become(Completed));
        assert!(Processing.can_become(Failed));
        assert!(Queued.can_become(Failed));
        for terminal in [Completed, Failed] {
            for next in [Queued, Processing, Completed, Failed] {
                assert!(!terminal.can_become(next));
            }
        }
        assert!(Processing.can_become(Queued));
        assert!(!Queued.can_become(Completed));
    }

    #[test]
    fn a_job_handed_back_keeps_its_progress_and_runs_again() {
        let spec = crate::request::JobSpec::parse_process_video(
            &serde_json::json!({"job_id": JobId::new().to_string(), "video_url": "https://example.com/v.mp4"}),
            &crate::request::UrlPolicy::default(),
        )
        .unwrap();
        let mut record = JobRecord::new(spec, Timestamp::now());
        assert!(record.start(1, Timestamp::now()));
        assert!(record.raise_progress(1, 40));
        assert!(!record.requeue(2), "only the owning attempt hands it back");
        assert!(record.requeue(1));
        assert_eq!((record.status, record.progress), (JobStatus::Queued, 40));
        assert!(
            !record.raise_progress(1, 60),
            "the old attempt no longer owns it"
        );
        assert!(record.start(2, Timestamp::now()));
        assert!(record.raise_progress(2, 60));
        let mut done = record.clone();
        assert!(done.finish(
            2,
            Outcome::Failed {
                code: ErrorCode::ProcessingError,
                message: String::new()
            },
            Timestamp::now()
        ));
        assert!(!done.requeue(2), "an ended job stays ended");
    }

    #[test]
    fn job_ids_are_uuids() {
        assert!(JobId::parse("550e8400-e29b-41d4-a716-446655440000").is_ok());
        assert!(JobId::parse("test").is_err());
    }

    #[test]
    fn timestamps_have_whole_seconds() {
        let t: Timestamp = "2024-01-15T10:30:00.123Z".parse().unwrap();
        assert_eq!(format_timestamp(t), "2024-01-15T10:30:00Z");
    }
}
