//! `ecg-api`: the contract's HTTP API as an AWS Lambda function. It stores jobs in DynamoDB and
//! queues them on SQS for the GPU runner; it runs no model itself, so it must never depend on
//! ecg-speech, whisper or ort. Outside Lambda (`AWS_LAMBDA_RUNTIME_API` unset) it serves the same
//! router on `127.0.0.1:$PORT`, for local runs against moto and for its tests.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use ecg_api::{ApiConfig, AppState};
use ecg_aws::{AwsClients, AwsConfig};
use ecg_core::ports::UploadSlots;
use ecg_core::telemetry::LogReader;
use ecg_settings::{CorsArgs, UrlArgs};

/// Settings: environment variables (flags too, for local runs).
#[derive(Parser, Debug)]
#[command(name = "ecg-api", about = "ECG Audio Analyzer API on DynamoDB and SQS")]
struct Cli {
    #[command(flatten)]
    aws: AwsConfig,
    #[command(flatten)]
    cors: CorsArgs,
    #[command(flatten)]
    urls: UrlArgs,
    /// How long `/transcribe` waits for its job; under API Gateway's 29 s integration limit.
    #[arg(long, env = "ECG_TRANSCRIBE_DEADLINE_SECS", default_value_t = 25)]
    transcribe_deadline_secs: u64,
    /// Port of the local server (outside Lambda); 0 picks a free one.
    #[arg(long, env = "PORT", default_value_t = 8001)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ecg_core::telemetry::init("info", LogReader::Machine);
    let cli = Cli::parse();
    // Built once, before the first request: a warm function reuses clients and connections.
    let clients = AwsClients::from_env().await;
    let state = AppState {
        store: Arc::new(cli.aws.job_store(&clients)),
        // The API only sends; leases belong to the runner.
        queue: Arc::new(cli.aws.job_queue(&clients, None)),
        checks: Vec::new(),
        config: Arc::new(ApiConfig {
            url_policy: cli.urls.policy(),
            cors_origins: cli.cors.cors_origins,
            transcribe_deadline: Duration::from_secs(cli.transcribe_deadline_secs),
            ..ApiConfig::default()
        }),
        upload_slots: cli
            .aws
            .upload_slots(&clients)
            .map(|slots| Arc::new(slots) as Arc<dyn UploadSlots>),
        metrics: None,
    };
    let app = ecg_api::router(state);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        // Set AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH=true behind a REST API with a named stage, so
        // that `/prod/health` is routed as `/health`.
        return lambda_http::run(app).await.map_err(|e| anyhow::anyhow!(e));
    }
    // `lambda_http::run` panics without the Lambda runtime's variables: serve it plainly instead.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", cli.port))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{}", cli.port))?;
    // One line on stdout, for scripts and tests that start it on port 0.
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn flags_and_variables_are_consistent() {
        super::Cli::command().debug_assert();
    }
}
