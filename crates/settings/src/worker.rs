//! How a worker runs jobs, and where one without the API serves `/metrics`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ecg_runner::RunnerConfig;
use url::Url;

/// How the worker runs jobs.
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Jobs that run at the same time; each holds its own model state.
    #[arg(long, env = "ECG_WORKERS", default_value_t = 1)]
    pub workers: usize,
    /// Seconds in-flight jobs may still run after SIGTERM before their messages are released.
    #[arg(long, env = "ECG_SHUTDOWN_GRACE_SECS", default_value_t = 90)]
    pub shutdown_grace_secs: u64,
    /// Seconds a job keeps retrying a failing job store (a full disk, a throttled table) before
    /// it is handed back to the queue, which offers it again after as long.
    #[arg(long, env = "ECG_STORE_RETRY_SECS", default_value_t = 60)]
    pub store_retry_secs: u64,
}

impl WorkerArgs {
    /// The runner's config; callbacks of jobs without their own base go to `backend_url`.
    pub fn runner_config(&self, backend_url: Option<Url>) -> RunnerConfig {
        RunnerConfig {
            concurrency: self.workers.max(1),
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            store_retry: Duration::from_secs(self.store_retry_secs),
            backend_url,
            ..RunnerConfig::default()
        }
    }
}

/// Where a worker without the API serves `/metrics`.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Address of the `/metrics` listener; it has no authentication, so it stays on loopback
    /// unless only Prometheus can reach the address given.
    #[arg(long, env = "ECG_METRICS_ADDR", default_value = "127.0.0.1:9108")]
    pub metrics_addr: SocketAddr,
}
