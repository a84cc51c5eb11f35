//! Settings shared by the binaries; each is a flag and an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ecg_audio::DecodeLimits;
use ecg_core::ports::FetchLimits;
use ecg_core::request::{AllowedHosts, UrlPolicy, ValidationError};
use ecg_net::{FetchConfig, NotifierConfig};

/// Which models run and how; the model directory itself is `ECG_MODEL_DIR` (default `models`).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[command(flatten)]
    pub asr: ecg_speech::AsrConfig,
    #[command(flatten)]
    pub vad: ecg_speech::VadConfig,
    #[command(flatten)]
    pub diarize: ecg_diarize::DiarizeConfig,
    #[command(flatten)]
    pub emotion: ecg_emotion::EmotionConfig,
}

/// How the backend is told.
#[derive(Args, Debug, Clone)]
pub struct CallbackArgs {
    /// Callback base URL for requests without `fastapi_base_url`.
    #[arg(long, env = "BACKEND_URL")]
    pub backend_url: Option<url::Url>,
    /// Signs callbacks with HMAC-SHA256: `X-Signature-256` of the body, `X-Signature-V2` of the
    /// `X-Signature-Timestamp` and the body.
    #[arg(long, env = "ECG_CALLBACK_SECRET", hide_env_values = true)]
    pub callback_secret: Option<String>,
    /// Retries of a callback after the first attempt.
    #[arg(long, env = "ECG_CALLBACK_RETRIES", default_value_t = 3)]
    pub callback_retries: u32,
    /// Seconds one callback attempt may take.
    #[arg(long, env = "ECG_CALLBACK_TIMEOUT_SECS", default_value_t = 10)]
    pub callback_timeout_secs: u64,
    /// Comma-separated hosts callbacks may go to: a request naming another host in
    /// `fastapi_base_url` is refused with 422, and no callback is sent elsewhere. Any host when
    /// unset.
    #[arg(long, env = "ECG_CALLBACK_ALLOWED_HOSTS")]
    pub callback_allowed_hosts: Option<AllowedHosts>,
}

impl CallbackArgs {
    pub fn notifier_config(&self, allow_local: bool) -> NotifierConfig {
        NotifierConfig {
            retries: self.callback_retries,
            attempt_timeout: Duration::from_secs(self.callback_timeout_secs),
            secret: self.callback_secret.clone(),
            allow_local,
            allowed_hosts: self.callback_allowed_hosts.clone(),
            ..NotifierConfig::default()
        }
    }

    /// How request URLs are checked. Fails when `BACKEND_URL` is off the callback allow-list:
    /// better not to start than to accept jobs whose callbacks would be refused.
    pub fn url_policy(&self, allow_local: bool) -> Result<UrlPolicy, ValidationError> {
        let policy = UrlPolicy {
            allow_local,
            callback_hosts: self.callback_allowed_hosts.clone(),
        };
        if let Some(backend) = &self.backend_url {
            policy.check_callback_host("BACKEND_URL", backend)?;
        }
        Ok(policy)
    }
}

/// How media is downloaded.
#[derive(Args, Debug, Clone)]
pub struct DownloadArgs {
    /// Retries of a download on transient failures.
    #[arg(long, env = "ECG_DOWNLOAD_RETRIES", default_value_t = 3)]
    pub download_retries: u32,
    /// Larger media is refused.
    #[arg(long, env = "ECG_MAX_DOWNLOAD_BYTES", default_value_t = 5_000_000_000)]
    pub max_download_bytes: u64,
    /// Seconds without a byte from the media server before an attempt fails.
    #[arg(long, env = "ECG_DOWNLOAD_STALL_SECS", default_value_t = 30)]
    pub download_stall_secs: u64,
    /// Seconds a whole download may take, retries included.
    #[arg(long, env = "ECG_DOWNLOAD_TIMEOUT_SECS", default_value_t = 1800)]
    pub download_timeout_secs: u64,
    /// Allow plain http, local paths and loopback/private hosts (local use and tests); cloud
    /// metadata addresses stay refused.
    #[arg(long, env = "ECG_ALLOW_LOCAL_URLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_local_urls: bool,
}

impl DownloadArgs {
    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            limits: FetchLimits {
                retries: self.download_retries,
                max_bytes: self.max_download_bytes,
                stall_timeout: Duration::from_secs(self.download_stall_secs),
                total_timeout: Duration::from_secs(self.download_timeout_secs),
                ..FetchLimits::default()
            },
            allow_local: self.allow_local_urls,
            ..FetchConfig::default()
        }
    }
}

/// What decoding one job's media may cost.
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Longer media is refused (AUDIO_EXTRACTION_ERROR); the default is 4 hours.
    #[arg(long, env = "ECG_MAX_MEDIA_SECONDS", default_value_t = 4 * 3600)]
    pub max_media_seconds: u64,
    /// Decoding that takes longer is stopped (AUDIO_EXTRACTION_ERROR).
    #[arg(long, env = "ECG_MAX_DECODE_SECONDS", default_value_t = 1800)]
    pub max_decode_seconds: u64,
}

impl DecodeArgs {
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_media: Duration::from_secs(self.max_media_seconds),
            max_decode_time: Duration::from_secs(self.max_decode_seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        callbacks: CallbackArgs,
    }

    fn callbacks(args: &[&str]) -> CallbackArgs {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .unwrap()
            .callbacks
    }

    #[test]
    fn the_backend_url_must_be_on_the_callback_allow_list() {
        let allowed = callbacks(&[
            "--callback-allowed-hosts",
            "backend.example,127.0.0.1",
            "--backend-url",
            "https://backend.example/base",
        ]);
        let policy = allowed.url_policy(false).unwrap();
        assert!(
            policy
                .callback_base("fastapi_base_url", "https://evil.example")
                .is_err()
        );
        let off_list = callbacks(&[
            "--callback-allowed-hosts",
            "backend.example",
            "--backend-url",
            "https://evil.example",
        ]);
        assert_eq!(off_list.url_policy(false).unwrap_err().field, "BACKEND_URL");
        // No allow-list, any backend.
        let open = callbacks(&["--backend-url", "https://evil.example"]);
        assert!(open.url_policy(false).is_ok());
        assert!(
            Cli::try_parse_from(["test", "--callback-allowed-hosts", "https://a.example"]).is_err()
        );
    }
}

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
    pub fn concurrency(&self) -> usize {
        self.workers.max(1)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn store_retry(&self) -> Duration {
        Duration::from_secs(self.store_retry_secs)
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
