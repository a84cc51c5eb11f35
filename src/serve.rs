//! `ecg serve`: the API and the worker in one process, on the embedded job store and queue.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ecg_api::{ApiConfig, ApiToken, AppState, UploadConfig};
use ecg_app::ModelConfig;
use ecg_audio::DecodeLimits;
use ecg_core::ports::{HealthCheck, JobQueue, JobStore};
use ecg_local::{InProcessQueue, SqliteJobStore};
use ecg_net::{HttpFetcher, WebhookNotifier};
use ecg_runner::{Runner, RunnerConfig};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::ServeArgs;

pub async fn run(
    models: &ModelConfig,
    decode: DecodeLimits,
    args: ServeArgs,
) -> anyhow::Result<()> {
    // Settings first: a misconfigured server must not start, let alone take jobs.
    let api_token = args
        .api_token
        .as_deref()
        .map(ApiToken::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("ECG_API_TOKEN: {e}"))?;
    if api_token.is_none() && !args.host.is_loopback() {
        warn!(host = %args.host, "serving beyond loopback without ECG_API_TOKEN: anyone who reaches the port can submit jobs");
    }
    let url_policy = args
        .callbacks
        .url_policy(&args.urls)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let store: Arc<dyn JobStore> = Arc::new(SqliteJobStore::open(&args.data_dir)?);
    let queue: Arc<dyn JobQueue> = Arc::new(InProcessQueue::new());
    let metrics = ecg_app::MetricsExporter::install(Arc::clone(&queue))?;
    let notifier = WebhookNotifier::new(args.callbacks.notifier_config(&args.urls))?;
    let fetcher = HttpFetcher::new(args.downloads.fetch_config(&args.urls))
        .context("cannot build the HTTP client")?;
    let pipeline = ecg_app::pipeline(models, decode, Arc::new(fetcher));
    let shutdown = CancellationToken::new();
    let mut checks = ecg_app::health_checks(&pipeline);
    checks.push(Arc::new(Draining(shutdown.clone())));
    let runner = Arc::new(Runner {
        store: Arc::clone(&store),
        queue: Arc::clone(&queue),
        notifier: Arc::new(notifier),
        pipeline,
        config: RunnerConfig {
            poll_wait: Duration::from_secs(5),
            ..args
                .worker
                .runner_config(args.callbacks.backend_url.clone())
        },
    });
    runner
        .recover()
        .await
        .context("cannot recover jobs from the last run")?;

    let worker = tokio::spawn(Arc::clone(&runner).run(shutdown.clone()));
    let state = AppState {
        store,
        queue,
        checks,
        config: Arc::new(ApiConfig {
            url_policy,
            cors_origins: args.cors.cors_origins.clone(),
            api_token,
            // Next to the job store: uploads wait there until their job has ended.
            uploads: Some(UploadConfig {
                dir: args.data_dir.join("uploads"),
                max_bytes: args.max_upload_bytes,
            }),
            ..ApiConfig::default()
        }),
        upload_slots: None,
        metrics: Some(Arc::new(metrics)),
    };
    let listener = tokio::net::TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    info!(%addr, data_dir = %args.data_dir.display(), "serving");
    // One line on stdout, for scripts and tests that start the server on port 0.
    println!("listening on http://{addr}");
    // On a stop signal the API keeps answering while the worker drains (`/health` says so), and
    // closes once the worker is done.
    tokio::spawn(ecg_app::cancel_on_signal(shutdown.clone()));
    let api_closed = CancellationToken::new();
    let api = axum::serve(listener, ecg_api::router(state))
        .with_graceful_shutdown(api_closed.clone().cancelled_owned())
        .into_future();
    let api = tokio::spawn(api);
    let drained = worker.await.context("worker crashed");
    api_closed.cancel();
    api.await.context("API server crashed")??;
    drained
}

/// `/health` fails while the worker drains after a stop signal: a load balancer then sends new
/// work elsewhere, and an operator sees why.
struct Draining(CancellationToken);

#[async_trait::async_trait]
impl HealthCheck for Draining {
    fn name(&self) -> &'static str {
        "worker"
    }

    async fn check(&self) -> Result<String, String> {
        if self.0.is_cancelled() {
            Err("draining: finishing in-flight jobs before the process stops".to_owned())
        } else {
            Ok("taking jobs".to_owned())
        }
    }
}
