//! How a worker runs jobs, where one without the API serves `/metrics`, and the EC2 instance
//! it runs on.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ecg_aws::LifecycleConfig;
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

/// The EC2 instance the worker runs on: where its metadata service is, and how the worker tells
/// its Auto Scaling group that it has drained.
#[derive(Args, Debug, Clone)]
pub struct InstanceArgs {
    /// The EC2 instance metadata service to watch for a spot interruption, a rebalance
    /// recommendation or a scale-in (`http://169.254.169.254` on EC2); unset, none is watched.
    #[arg(long, env = "ECG_INSTANCE_METADATA")]
    pub instance_metadata: Option<String>,
    /// The Auto Scaling group's termination lifecycle hook, completed once the worker has
    /// drained so that the instance need not wait out the hook's timeout.
    #[arg(long, env = "ECG_LIFECYCLE_HOOK", default_value_t = LifecycleConfig::default().hook)]
    pub lifecycle_hook: String,
}

impl InstanceArgs {
    pub fn lifecycle_config(&self) -> LifecycleConfig {
        LifecycleConfig {
            hook: self.lifecycle_hook.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        instance: InstanceArgs,
    }

    #[test]
    fn without_flags_the_libraries_defaults_hold() {
        let cli: Cli = crate::flags_only(&[]);
        assert_eq!(cli.instance.lifecycle_config(), LifecycleConfig::default());
        assert_eq!(cli.instance.instance_metadata, None);
        let cli: Cli = crate::flags_only(&["--lifecycle-hook", "scale-in"]);
        assert_eq!(cli.instance.lifecycle_config().hook, "scale-in");
    }
}
