//! Job messages on SQS. A lease is the message's visibility timeout: while it runs no other worker
//! receives the message; the heartbeat extends it, an ack deletes the message, and a worker that
//! dies simply lets it run out, so the message comes back with a higher receive count.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use ecg_core::ports::{BackendError, JobMessage, JobQueue, Lease};

use crate::backend_error;

/// SQS's longest long poll.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// One SQS queue of [`JobMessage`]s.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    url: String,
    /// Visibility timeout of a received message: how long a worker holds it between heartbeats.
    /// `None`: the queue's own default (e.g. for a sender that never receives).
    lease: Option<Duration>,
}

/// A received message whose body may not be a job message.
pub(crate) struct Received {
    pub message_id: String,
    pub body: Result<JobMessage, String>,
    pub receipt: String,
    /// SQS's `ApproximateReceiveCount`, this delivery included.
    pub deliveries: u32,
}

impl SqsQueue {
    /// The queue at `queue_url`; a received message stays hidden for `lease` (`None`: the
    /// queue's default visibility timeout).
    pub fn new(client: Client, queue_url: impl Into<String>, lease: Option<Duration>) -> Self {
        Self {
            client,
            url: queue_url.into(),
            lease,
        }
    }

    /// Receives up to `max` messages (SQS allows 10), waiting up to `wait` (at most 20 s) for
    /// the first.
    pub(crate) async fn receive(
        &self,
        wait: Duration,
        max: i32,
    ) -> Result<Vec<Received>, BackendError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .wait_time_seconds(seconds(wait.min(MAX_WAIT)))
            .set_visibility_timeout(self.lease.map(seconds))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| backend_error("SQS ReceiveMessage", &e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let deliveries = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|count| count.parse().ok())
                    .unwrap_or(1);
                let body =
                    serde_json::from_str(m.body().unwrap_or_default()).map_err(|e| e.to_string());
                Some(Received {
                    message_id: m.message_id.unwrap_or_default(),
                    body,
                    receipt: m.receipt_handle?,
                    deliveries,
                })
            })
            .collect())
    }

    pub(crate) async fn delete(&self, receipt: &str) -> Result<(), BackendError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| backend_error("SQS DeleteMessage", &e))?;
        Ok(())
    }

    async fn set_visibility(
        &self,
        lease: &Lease,
        visible_in: Duration,
    ) -> Result<(), BackendError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&lease.receipt)
            .visibility_timeout(seconds(visible_in))
            .send()
            .await
            .map_err(|e| backend_error("SQS ChangeMessageVisibility", &e))?;
        Ok(())
    }
}

#[async_trait]
impl JobQueue for SqsQueue {
    async fn enqueue(&self, message: &JobMessage) -> Result<(), BackendError> {
        let body = serde_json::to_string(message)
            .map_err(|e| BackendError::new(format!("cannot encode job message: {e}")))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| backend_error("SQS SendMessage", &e))?;
        Ok(())
    }

    async fn lease(&self, wait: Duration) -> Result<Option<Lease>, BackendError> {
        let Some(received) = self.receive(wait, 1).await?.into_iter().next() else {
            return Ok(None);
        };
        match received.body {
            Ok(message) => Ok(Some(Lease {
                message,
                receipt: received.receipt,
                deliveries: received.deliveries,
            })),
            Err(e) => {
                // Left alone: after maxReceiveCount receives SQS moves it to the dead-letter
                // queue, where an operator can look at it.
                tracing::warn!(message_id = %received.message_id, deliveries = received.deliveries, error = %e,
                    "queue message is not a job message; leaving it for the dead-letter queue");
                Ok(None)
            }
        }
    }

    async fn extend(&self, lease: &Lease, visible_for: Duration) -> Result<(), BackendError> {
        self.set_visibility(lease, visible_for).await
    }

    async fn ack(&self, lease: &Lease) -> Result<(), BackendError> {
        self.delete(&lease.receipt).await
    }

    async fn release(&self, lease: &Lease, after: Duration) -> Result<(), BackendError> {
        self.set_visibility(lease, after).await
    }

    async fn depth(&self) -> Result<u64, BackendError> {
        let visible = QueueAttributeName::ApproximateNumberOfMessages;
        let answer = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(visible.clone())
            .send()
            .await
            .map_err(|e| backend_error("SQS GetQueueAttributes", &e))?;
        answer
            .attributes
            .and_then(|attributes| attributes.get(&visible)?.parse().ok())
            .ok_or_else(|| BackendError::new("SQS GetQueueAttributes: no message count"))
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| backend_error("SQS GetQueueAttributes", &e))?;
        Ok(())
    }
}

/// Whole seconds for SQS, rounded up so that a short wait is not turned into none. SQS caps a
/// visibility timeout at 12 h, far below `i32::MAX`.
fn seconds(d: Duration) -> i32 {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(whole).unwrap_or(i32::MAX)
}
