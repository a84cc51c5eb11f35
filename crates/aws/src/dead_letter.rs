//! Jobs whose messages SQS gave up on. After `maxReceiveCount` receives without an ack SQS moves a
//! message to the dead-letter queue; the job would otherwise stay queued or processing forever
//! and the backend would never hear of it.

use std::time::Duration;

use ecg_core::error::ErrorCode;
use ecg_core::job::{JobId, JobRecord, Outcome};
use ecg_core::ports::{BackendError, JobStore};
use tracing::{info, warn};

use crate::SqsQueue;

/// Drains the dead-letter queue `dlq` and fails each job it names that has not ended, with
/// `PROCESSING_ERROR`. Returns the records it failed: the caller delivers their terminal callbacks
/// (their delivery is still pending), so the backend is told once. Messages are deleted once
/// handled; on a store error the rest stay for the next call.
pub async fn fail_dead_letters(
    dlq: &SqsQueue,
    store: &dyn JobStore,
) -> Result<Vec<JobRecord>, BackendError> {
    let mut failed = Vec::new();
    loop {
        // A short long-poll: a zero wait samples only some SQS servers and may miss messages.
        let batch = dlq.receive(Duration::from_secs(1), 10).await?;
        if batch.is_empty() {
            return Ok(failed);
        }
        for received in batch {
            match received.body {
                Ok(message) => failed.extend(fail_job(store, message.job_id).await?),
                Err(e) => {
                    warn!(message_id = %received.message_id, error = %e, "dropping a dead letter that is not a job message");
                }
            }
            dlq.delete(&received.receipt).await?;
        }
    }
}

async fn fail_job(store: &dyn JobStore, id: JobId) -> Result<Option<JobRecord>, BackendError> {
    let Some(record) = store.get(id).await? else {
        warn!(job_id = %id, "dead letter for an unknown job");
        return Ok(None);
    };
    let outcome = Outcome::Failed {
        code: ErrorCode::ProcessingError,
        message: format!(
            "{}: the job failed on every delivery and was given up",
            ErrorCode::ProcessingError.user_message()
        ),
    };
    // `None` when the job had ended meanwhile: it needs nothing more.
    let done = store.finish(id, record.attempt, outcome).await?;
    if done.is_some() {
        info!(job_id = %id, attempt = record.attempt, "failed a job whose message went to the dead-letter queue");
    }
    Ok(done)
}
