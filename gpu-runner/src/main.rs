//! `gpu-runner`: polls SQS for jobs, runs the speech pipeline on this machine's GPU (or CPU),
//! keeps job state in DynamoDB and tells the backend. Configured through the standard AWS
//! environment plus `ECG_*` variables (`gpu-runner --help`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ecg_app::MetricsExporter;
use ecg_aws::{AwsClients, AwsConfig, InstanceNotices, LifecycleHook, Notice, SqsQueue};
use ecg_core::ports::{BlobFetcher, JobMessage, JobQueue, JobStore};
use ecg_core::telemetry::LogReader;
use ecg_net::{HttpFetcher, WebhookNotifier};
use ecg_runner::{Runner, RunnerConfig};
use ecg_settings::{
    CallbackArgs, DecodeArgs, DownloadArgs, InstanceArgs, MetricsArgs, ModelArgs, UrlArgs,
    WorkerArgs,
};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "gpu-runner",
    version,
    about = "ECG Audio Analyzer worker: SQS → pipeline → callbacks"
)]
struct Cli {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten, next_help_heading = "Models")]
    models: ModelArgs,
    #[command(flatten)]
    callbacks: CallbackArgs,
    #[command(flatten)]
    downloads: DownloadArgs,
    #[command(flatten)]
    urls: UrlArgs,
    #[command(flatten)]
    decode: DecodeArgs,
    #[command(flatten)]
    worker: WorkerArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
    #[command(flatten)]
    instance: InstanceArgs,
    /// Seconds a leased message stays hidden; renewed by a heartbeat at a third of it.
    #[arg(long, env = "ECG_LEASE_SECS", default_value_t = 120)]
    lease_secs: u64,
}

/// How often the instance metadata service is asked (a spot interruption gives two minutes).
const NOTICE_POLL: Duration = Duration::from_secs(5);
/// A spot instance's messages are released this long after its interruption notice, before the
/// two minutes are up, so that another runner takes the jobs over at once.
const SPOT_RELEASE_AFTER: Duration = Duration::from_secs(90);

fn main() -> anyhow::Result<()> {
    ecg_core::telemetry::init("info", LogReader::Machine);
    ecg_app::limit_malloc_arenas();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(run(cli));
    // A transcription that a shutdown gave up on (its job is back in the queue) is stopped, and
    // does not hold up the exit.
    ecg_app::abandon_inference();
    runtime.shutdown_timeout(ecg_app::EXIT_WAIT);
    match outcome {
        Ok(()) => ecg_app::exit_now(0),
        Err(e) => {
            // What returning the error from `main` would print.
            eprintln!("Error: {e:?}");
            ecg_app::exit_now(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let clients = AwsClients::from_env().await;
    let lease = Duration::from_secs(cli.lease_secs.max(3));
    let store: Arc<dyn JobStore> = Arc::new(cli.aws.job_store(&clients));
    let queue: Arc<dyn JobQueue> = Arc::new(cli.aws.job_queue(&clients, Some(lease)));
    // Bound before the models load: a taken port fails the start at once, and the models'
    // load times are recorded.
    let metrics_addr = cli.metrics.metrics_addr;
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("cannot listen for metrics on {metrics_addr}"))?;
    let metrics = MetricsExporter::install(Arc::clone(&queue))?;
    let fetch = cli.downloads.fetch_config(&cli.urls);
    let http = Arc::new(HttpFetcher::new(fetch.clone()).context("cannot build the HTTP client")?);
    let fetcher: Arc<dyn BlobFetcher> =
        Arc::new(cli.aws.fetcher(&clients, http, fetch.limits.clone()));
    let notifier = WebhookNotifier::new(cli.callbacks.notifier_config(&cli.urls))?;
    let started = std::time::Instant::now();
    let pipeline = ecg_app::pipeline(&cli.models.config(), cli.decode.limits(), fetcher);
    info!(load_s = started.elapsed().as_secs_f64(), "models loaded");

    let runner = Arc::new(Runner {
        store: Arc::clone(&store),
        queue: Arc::clone(&queue),
        notifier: Arc::new(notifier),
        pipeline,
        config: RunnerConfig {
            lease_duration: lease,
            heartbeat_every: lease / 3,
            ..cli.worker.runner_config(cli.callbacks.backend_url.clone())
        },
    });
    tokio::spawn(async move {
        if let Err(e) = ecg_app::serve_metrics(metrics_listener, Arc::new(metrics)).await {
            error!(error = %e, "the metrics listener stopped");
        }
    });
    let shutdown = CancellationToken::new();
    if let Some(dlq) = cli.aws.dead_letter_queue(&clients) {
        tokio::spawn(watch_dead_letters(
            dlq,
            Arc::clone(&store),
            Arc::clone(&queue),
            shutdown.clone(),
        ));
    }
    tokio::spawn(ecg_app::cancel_on_signal(shutdown.clone()));
    let release = CancellationToken::new();
    let notices = match &cli.instance.instance_metadata {
        Some(endpoint) => Some(Arc::new(
            InstanceNotices::new(endpoint).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    if let Some(notices) = &notices {
        tokio::spawn(watch_instance_notices(
            Arc::clone(notices),
            shutdown.clone(),
            release.clone(),
        ));
    }
    runner.run_until(shutdown, release).await;
    // Every job is settled now (finished, or back in the queue).
    if let Some(notices) = &notices {
        let hook = LifecycleHook::new(clients.autoscaling.clone(), cli.instance.lifecycle_config());
        end_termination_wait(&hook, notices).await;
    }
    info!("stopped");
    Ok(())
}

/// Lets the Auto Scaling group terminate this instance now rather than at the lifecycle hook's
/// timeout. A failure (no termination pending, throttling) costs only that wait, so it is a
/// warning.
async fn end_termination_wait(hook: &LifecycleHook, notices: &InstanceNotices) {
    match hook.complete(notices).await {
        Ok(Some(member)) => info!(
            group = %member.group,
            instance_id = %member.instance_id,
            "lifecycle action completed: the instance may go"
        ),
        Ok(None) => {}
        Err(e) => warn!(
            error = %e,
            "cannot complete the lifecycle action; the instance goes at the hook's timeout"
        ),
    }
}

/// Stops the runner as SIGTERM does when the instance is about to go; after a spot interruption
/// notice, also releases unfinished jobs before the instance is reclaimed.
async fn watch_instance_notices(
    notices: Arc<InstanceNotices>,
    shutdown: CancellationToken,
    release: CancellationToken,
) {
    let notice = loop {
        match notices.check().await {
            Ok(Some(notice)) => break notice,
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot read the instance metadata"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(NOTICE_POLL) => {}
        }
    };
    info!(?notice, "instance notice: finishing in-flight work");
    shutdown.cancel();
    if notice == Notice::SpotInterruption {
        tokio::time::sleep(SPOT_RELEASE_AFTER).await;
        release.cancel();
    }
}

/// Fails jobs whose messages SQS gave up on, then queues them once more so that a worker sends
/// their failure callback (the worker delivers a terminal job's pending callback and runs nothing).
async fn watch_dead_letters(
    dlq: SqsQueue,
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    shutdown: CancellationToken,
) {
    loop {
        match ecg_aws::fail_dead_letters(&dlq, store.as_ref()).await {
            Ok(failed) => {
                for record in failed {
                    let job_id = record.spec.job_id;
                    warn!(%job_id, "job failed after its message reached the dead-letter queue");
                    if let Err(e) = queue.enqueue(&JobMessage { job_id }).await {
                        error!(%job_id, error = %e, "cannot queue the failure callback");
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot read the dead-letter queue"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_and_variables_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
