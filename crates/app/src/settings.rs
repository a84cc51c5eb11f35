//! Settings shared by the binaries; each is a flag and an environment variable.

use std::time::Duration;

use clap::Args;
use ecg_net::{FetchConfig, NotifierConfig};

/// Which models run and how; the model directory itself is `ECG_MODEL_DIR` (default `models`).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[command(flatten)]
    pub asr: ecg_speech::AsrConfig,
    #[command(flatten)]
    pub vad: ecg_speech::VadConfig,
    #[command(flatten)]
    pub emotion: ecg_emotion::EmotionConfig,
}

/// How the backend is told.
#[derive(Args, Debug, Clone)]
pub struct CallbackArgs {
    /// Callback base URL for requests without `fastapi_base_url`.
    #[arg(long, env = "BACKEND_URL")]
    pub backend_url: Option<url::Url>,
    /// Signs callbacks with HMAC-SHA256 (`X-Signature-256`).
    #[arg(long, env = "ECG_CALLBACK_SECRET", hide_env_values = true)]
    pub callback_secret: Option<String>,
    /// Retries of a callback after the first attempt.
    #[arg(long, env = "ECG_CALLBACK_RETRIES", default_value_t = 3)]
    pub callback_retries: u32,
    /// Seconds one callback attempt may take.
    #[arg(long, env = "ECG_CALLBACK_TIMEOUT_SECS", default_value_t = 10)]
    pub callback_timeout_secs: u64,
}

impl CallbackArgs {
    pub fn notifier_config(&self, allow_local: bool) -> NotifierConfig {
        NotifierConfig {
            retries: self.callback_retries,
            attempt_timeout: Duration::from_secs(self.callback_timeout_secs),
            secret: self.callback_secret.clone(),
            allow_local,
            ..NotifierConfig::default()
        }
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
    /// Allow plain http, local paths and loopback/private hosts (local use and tests).
    #[arg(long, env = "ECG_ALLOW_LOCAL_URLS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_local_urls: bool,
}

impl DownloadArgs {
    pub fn fetch_config(&self) -> FetchConfig {
        FetchConfig {
            retries: self.download_retries,
            max_bytes: self.max_download_bytes,
            allow_local: self.allow_local_urls,
            ..FetchConfig::default()
        }
    }
}
