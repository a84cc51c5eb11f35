//! An in-process job queue with the same lease semantics as SQS, minus the network: a leased
//! message is invisible until acknowledged or released.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ecg_core::ports::{BackendError, JobMessage, JobQueue, Lease};
use tokio::sync::Notify;

/// FIFO of job messages shared by the API and the worker of one process.
#[derive(Default)]
pub struct InProcessQueue {
    state: Mutex<QueueState>,
    /// Wakes a waiting `lease` when a message arrives.
    arrived: Notify,
    next_receipt: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    /// Waiting messages with their delivery count so far.
    ready: VecDeque<(JobMessage, u32)>,
    /// Leased messages by receipt.
    leased: HashMap<String, (JobMessage, u32)>,
}

impl InProcessQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, QueueState>, BackendError> {
        self.state
            .lock()
            .map_err(|_| BackendError::new("queue lock poisoned"))
    }

    fn try_lease(&self) -> Result<Option<Lease>, BackendError> {
        let mut state = self.state()?;
        let Some((message, delivered)) = state.ready.pop_front() else {
            return Ok(None);
        };
        let receipt = self
            .next_receipt
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let deliveries = delivered + 1;
        state
            .leased
            .insert(receipt.clone(), (message.clone(), deliveries));
        Ok(Some(Lease {
            message,
            receipt,
            deliveries,
        }))
    }
}

#[async_trait]
impl JobQueue for InProcessQueue {
    async fn enqueue(&self, message: &JobMessage) -> Result<(), BackendError> {
        self.state()?.ready.push_back((message.clone(), 0));
        self.arrived.notify_one();
        Ok(())
    }

    async fn lease(&self, wait: Duration) -> Result<Option<Lease>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so an enqueue in between is not missed.
            let arrived = self.arrived.notified();
            if let Some(lease) = self.try_lease()? {
                return Ok(Some(lease));
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.try_lease();
            }
        }
    }

    async fn extend(&self, _lease: &Lease, _visible_for: Duration) -> Result<(), BackendError> {
        // Leases here never expire: the process that holds one is the only consumer.
        Ok(())
    }

    async fn ack(&self, lease: &Lease) -> Result<(), BackendError> {
        self.state()?.leased.remove(&lease.receipt);
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<(), BackendError> {
        let mut state = self.state()?;
        if let Some(entry) = state.leased.remove(&lease.receipt) {
            state.ready.push_front(entry);
            drop(state);
            self.arrived.notify_one();
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), BackendError> {
        self.state().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_core::job::JobId;

    #[tokio::test]
    async fn leases_in_order_and_redelivers_released_messages() {
        let queue = InProcessQueue::new();
        let (a, b) = (
            JobMessage {
                job_id: JobId::new(),
            },
            JobMessage {
                job_id: JobId::new(),
            },
        );
        queue.enqueue(&a).await.unwrap();
        queue.enqueue(&b).await.unwrap();
        let first = queue.lease(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!((first.message.clone(), first.deliveries), (a.clone(), 1));
        queue.release(&first).await.unwrap();
        let again = queue.lease(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!((again.message.clone(), again.deliveries), (a, 2));
        queue.ack(&again).await.unwrap();
        assert_eq!(
            queue.lease(Duration::ZERO).await.unwrap().unwrap().message,
            b
        );
        assert!(
            queue
                .lease(Duration::from_millis(20))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_waiting_lease_wakes_on_enqueue() {
        let queue = std::sync::Arc::new(InProcessQueue::new());
        let waiter = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.lease(Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let message = JobMessage {
            job_id: JobId::new(),
        };
        queue.enqueue(&message).await.unwrap();
        assert_eq!(waiter.await.unwrap().unwrap().unwrap().message, message);
    }
}
