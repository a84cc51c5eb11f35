//! Retries with exponential backoff and equal jitter, shared by the callback notifier and the
//! HTTP and S3 fetchers.

use std::future::Future;
use std::time::Duration;

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

/// `base * 2^retry`, capped: the wait before retry number `retry + 1`.
pub fn backoff_delay(retry: u32, base: Duration, cap: Duration) -> Duration {
    base.saturating_mul(2u32.saturating_pow(retry)).min(cap)
}

/// Equal jitter: half the delay is kept, the other half is random. Keeps a floor under the wait
/// (a receiver that is down is not hammered) while spreading out retries of many jobs.
pub fn jitter(delay: Duration) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(rand::random::<f64>())
}

impl RetryPolicy {
    /// The wait before retry number `retry + 1`: the server's `Retry-After` up to the cap, else
    /// jittered exponential backoff.
    fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.min(self.cap),
            None => jitter(backoff_delay(retry, self.base, self.cap)),
        }
    }

    /// Runs `attempt(n)` for n = 1, 2, … until it succeeds, fails permanently or the retries are spent.
    pub async fn run<T, F, Fut>(&self, attempt: F) -> Result<T, GaveUp>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        self.run_unless(attempt, || false).await
    }

    /// [`RetryPolicy::run`] that stops before a retry once `stop()` holds.
    pub async fn run_unless<T, F, Fut>(
        &self,
        mut attempt: F,
        stop: impl Fn() -> bool,
    ) -> Result<T, GaveUp>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, AttemptError>>,
    {
        let mut n = 1;
        loop {
            match attempt(n).await {
                Ok(value) => return Ok(value),
                // Every failed attempt is logged here, once; callers' spans add what it was for.
                Err(e) if e.transient && n <= self.retries && !stop() => {
                    let wait = self.wait(n - 1, e.retry_after);
                    let retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
                    tracing::warn!(attempt = n, error = %e.message, retry_in_ms, "attempt failed");
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
                Err(e) => {
                    tracing::warn!(attempt = n, error = %e.message, transient = e.transient, "attempt failed, giving up");
                    return Err(GaveUp {
                        message: e.message,
                        transient: e.transient,
                        attempts: n,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = 500 * MS;
        let cap = Duration::from_secs(8);
        let delays: Vec<_> = (0..7).map(|r| backoff_delay(r, base, cap)).collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 8000, 8000].map(|ms| ms * MS)
        );
        assert_eq!(backoff_delay(u32::MAX, base, cap), cap);
    }

    #[test]
    fn jitter_keeps_at_least_half() {
        for _ in 0..100 {
            let d = jitter(1000 * MS);
            assert!((500 * MS..=1000 * MS).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn retry_after_is_capped() {
        let p = RetryPolicy {
            retries: 3,
            base: MS,
            cap: 50 * MS,
        };
        assert_eq!(p.wait(0, Some(Duration::from_secs(60))), 50 * MS);
        assert_eq!(p.wait(0, Some(10 * MS)), 10 * MS);
    }

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
