//! An in-process job queue with the same lease semantics as SQS, minus the network: a leased
//! message is invisible until acknowledged or released, and a released one until its delay ends.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ecg_core::ports::{BackendError, JobMessage, JobQueue, Lease};
use tokio::sync::Notify;
use tokio::time::Instant;

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
    /// Released messages waiting out their delay, with the time they are offered again.
    delayed: Vec<(Instant, (JobMessage, u32))>,
}

impl QueueState {
    /// Moves the delayed messages whose time has come to the back of the ready ones, and says
    /// when the next one will.
    fn promote_due(&mut self, now: Instant) -> Option<Instant> {
        let (due, waiting): (Vec<_>, Vec<_>) =
            self.delayed.drain(..).partition(|(at, _)| *at <= now);
        self.delayed = waiting;
        self.ready.extend(due.into_iter().map(|(_, entry)| entry));
        self.delayed.iter().map(|(at, _)| *at).min()
    }
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

    /// A lease on the first ready message, or when the next delayed one becomes ready.
    fn try_lease(&self) -> Result<Result<Lease, Option<Instant>>, BackendError> {
        let mut state = self.state()?;
        let next_due = state.promote_due(Instant::now());
        let Some((message, delivered)) = state.ready.pop_front() else {
            return Ok(Err(next_due));
        };
        let receipt = self
            .next_receipt
            .fetch_add(1, Ordering::Relaxed)
            .to_string();
        let deliveries = delivered + 1;
        state
            .leased
            .insert(receipt.clone(), (message.clone(), deliveries));
        Ok(Ok(Lease {
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
            let next_due = match self.try_lease()? {
                Ok(lease) => return Ok(Some(lease)),
                Err(next_due) => next_due,
            };
            let wake = next_due.map_or(deadline, |due| due.min(deadline));
            if tokio::time::timeout_at(wake, arrived).await.is_err() && wake == deadline {
                return Ok(self.try_lease()?.ok());
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

    async fn release(&self, lease: &Lease, after: Duration) -> Result<(), BackendError> {
        let mut state = self.state()?;
        if let Some(entry) = state.leased.remove(&lease.receipt) {
            if after.is_zero() {
                state.ready.push_front(entry);
            } else {
                state.delayed.push((Instant::now() + after, entry));
            }
            drop(state);
            // A waiting `lease` looks again, and learns of the new delay.
            self.arrived.notify_one();
        }
        Ok(())
    }

    async fn depth(&self) -> Result<u64, BackendError> {
        let now = Instant::now();
        let state = self.state()?;
        let due = state.delayed.iter().filter(|(at, _)| *at <= now).count();
        Ok((state.ready.len() + due) as u64)
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
        assert_eq!(queue.depth().await.unwrap(), 2);
        let first = queue.lease(Duration::ZERO).await.unwrap().unwrap();
        assert_eq!(
            queue.depth().await.unwrap(),
            1,
            "a leased message is not waiting"
        );
        assert_eq!((first.message.clone(), first.deliveries), (a.clone(), 1));
        queue.release(&first, Duration::ZERO).await.unwrap();
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

    #[tokio::test]
    async fn a_message_released_with_a_delay_comes_back_after_it() {
        let queue = InProcessQueue::new();
        let message = JobMessage {
            job_id: JobId::new(),
        };
        queue.enqueue(&message).await.unwrap();
        let first = queue.lease(Duration::ZERO).await.unwrap().unwrap();
        queue
            .release(&first, Duration::from_millis(300))
            .await
            .unwrap();
        assert!(queue.lease(Duration::ZERO).await.unwrap().is_none());
        assert_eq!(queue.depth().await.unwrap(), 0, "not while its delay runs");
        // A lease waiting longer than the delay gets the message when it is due.
        let started = Instant::now();
        let again = queue.lease(Duration::from_secs(5)).await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(queue.depth().await.unwrap(), 0);
        assert_eq!((again.message, again.deliveries), (message, 2));
    }
}
