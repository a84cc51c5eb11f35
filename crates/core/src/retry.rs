//! Retries with exponential backoff and jitter (backon), shared by the callback notifier and the
//! HTTP and S3 fetchers.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How often and how patiently to retry transient failures.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt: `retries + 1` attempts at most.
    pub retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

/// Why one attempt failed.
#[derive(Debug)]
pub struct AttemptError {
    pub message: String,
    pub transient: bool,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl AttemptError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
            retry_after: None,
        }
    }
}

/// The last attempt's error once retrying has stopped.
#[derive(Debug)]
pub struct GaveUp {
    pub message: String,
    pub transient: bool,
    pub attempts: u32,
}

impl RetryPolicy {
    /// Runs `attempt(n)` for n = 1, 2, … until it succeeds, fails permanently or the retries are spent.
    pub async fn run<T, F, Fut>(&self, attempt: F) -> Result<T, GaveUp>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        self.run_unless(attempt, || false).await
    }

    /// [`RetryPolicy::run`] that stops before a retry once `stop()` holds. Waits double from
    /// `base` up to `cap`, with backon's jitter (up to one more wait at random, so that many jobs
    /// retrying at once spread out); a server's `Retry-After` replaces the wait, up to the cap.
    pub async fn run_unless<T, F, Fut>(
        &self,
        mut attempt: F,
        stop: impl Fn() -> bool,
    ) -> Result<T, GaveUp>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let attempts = AtomicU32::new(0);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_max_delay(self.cap)
            .with_factor(2.0)
            .with_max_times(self.retries as usize)
            .with_jitter();
        let outcome = (|| {
            let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            attempt(n)
        })
        .retry(backoff)
        .when(|e: &AttemptError| e.transient && !stop())
        .adjust(|e, wait| wait.map(|wait| e.retry_after.map_or(wait, |asked| asked.min(self.cap))))
        // Every failed attempt is logged here, once; callers' spans add what it was for.
        .notify(|e, wait| {
            let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(attempt = attempts.load(Ordering::Relaxed), error = %e.message, retry_in_ms, "attempt failed");
        })
        .await;
        outcome.map_err(|e| {
            tracing::warn!(attempt = attempts.load(Ordering::Relaxed), error = %e.message, transient = e.transient, "attempt failed, giving up");
            GaveUp {
                message: e.message,
                transient: e.transient,
                attempts: attempts.load(Ordering::Relaxed),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    fn policy(retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries,
            base: MS,
            cap: 2 * MS,
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let out = policy(3)
            .run(|n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(AttemptError::transient("busy"))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!((out, calls.load(Ordering::SeqCst)), (3, 3));
    }

    #[tokio::test]
    async fn gives_up_after_retries_plus_one_attempts() {
        let err = policy(2)
            .run(|_| async { Err::<(), _>(AttemptError::transient("down")) })
            .await
            .unwrap_err();
        assert_eq!((err.attempts, err.transient), (3, true));
    }

    #[tokio::test]
    async fn a_stop_ends_the_retries_but_not_the_attempt_under_way() {
        let calls = AtomicU32::new(0);
        let err = policy(5)
            .run_unless(
                |_| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>(AttemptError::transient("busy")) }
                },
                || calls.load(Ordering::SeqCst) >= 2,
            )
            .await
            .unwrap_err();
        assert_eq!((err.attempts, calls.load(Ordering::SeqCst)), (2, 2));
    }

    #[tokio::test]
    async fn retry_after_replaces_the_wait_up_to_the_cap() {
        let p = RetryPolicy {
            retries: 1,
            base: Duration::from_secs(60),
            cap: 30 * MS,
        };
        let started = std::time::Instant::now();
        let out = p
            .run(|n| async move {
                if n == 1 {
                    Err(AttemptError {
                        retry_after: Some(Duration::from_secs(3600)),
                        ..AttemptError::transient("slow down")
                    })
                } else {
                    Ok(n)
                }
            })
            .await
            .unwrap();
        assert_eq!(out, 2);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn permanent_failures_stop_at_once() {
        let err = policy(5)
            .run(|_| async { Err::<(), _>(AttemptError::permanent("gone")) })
            .await
            .unwrap_err();
        assert_eq!(
            (err.attempts, err.transient, err.message.as_str()),
            (1, false, "gone")
        );
    }
}
