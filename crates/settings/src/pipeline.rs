//! The worker's settings: which models run and how, what decoding may cost, how media is
//! downloaded and how the backend is told.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use ecg_app::ModelConfig;
use ecg_audio::DecodeLimits;
use ecg_core::ports::FetchLimits;
use ecg_core::request::{UrlPolicy, ValidationError};
use ecg_diarize::DiarizeConfig;
use ecg_emotion::{EmotionConfig, ModelInput};
use ecg_net::{FetchConfig, NotifierConfig};
use ecg_speech::{AsrConfig, VadConfig, WordTiming};
use serde::Serialize;
use serde::de::{DeserializeOwned, IntoDeserializer};

use crate::requests::UrlArgs;

/// Which models run and how; the model directory itself is `ECG_MODEL_DIR` (default `models`).
#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    #[command(flatten)]
    pub asr: AsrArgs,
    #[command(flatten)]
    pub vad: VadArgs,
    #[command(flatten)]
    pub diarize: DiarizeArgs,
    #[command(flatten)]
    pub emotion: EmotionArgs,
}

impl ModelArgs {
    pub fn config(&self) -> ModelConfig {
        ModelConfig {
            asr: self.asr.config(),
            vad: self.vad.config(),
            diarize: self.diarize.config(),
            emotion: self.emotion.config(),
        }
    }
}

/// Speech recognition ([`AsrConfig`]).
#[derive(Args, Debug, Clone)]
pub struct AsrArgs {
    /// A model name (`tiny` … `large-v3-turbo`, quantized ones such as `base-q8_0`, found as
    /// `<model dir>/ggml-<name>.bin`) or the path of any whisper.cpp ggml file.
    #[arg(long, env = "ECG_ASR_MODEL", default_value_t = AsrConfig::default().model)]
    pub asr_model: String,
    /// Models tried in order when the configured one cannot be loaded (comma-separated); by
    /// default the standard sizes smaller than a named model.
    #[arg(long, env = "ECG_ASR_FALLBACK_MODELS", value_delimiter = ',')]
    pub asr_fallback_models: Option<Vec<String>>,
    /// Decoding threads; all available cores by default.
    #[arg(long, env = "ECG_ASR_THREADS")]
    pub asr_threads: Option<usize>,
    /// Load the model on the GPU (builds with the `cuda` feature only).
    #[arg(long, env = "ECG_ASR_GPU", default_value_t = AsrConfig::default().gpu, action = clap::ArgAction::Set)]
    pub asr_gpu: bool,
    /// How word times are found: `dtw`, dynamic time warping over the cross-attention of the
    /// model's alignment heads (on packed sentences it put sentence starts and ends within a few
    /// milliseconds), or `tokens`, whisper.cpp's timestamp-token heuristic (about as close on
    /// isolated words, but it drifts late towards the end of a full window).
    #[arg(long, env = "ECG_ASR_WORD_TIMING", default_value_t = Named(AsrConfig::default().word_timing))]
    pub asr_word_timing: Named<WordTiming>,
    /// Beam width; 1 decodes greedily.
    #[arg(long, env = "ECG_ASR_BEAM_SIZE", default_value_t = AsrConfig::default().beam_size)]
    pub asr_beam_size: u8,
}

impl AsrArgs {
    pub fn config(&self) -> AsrConfig {
        AsrConfig {
            model: self.asr_model.clone(),
            fallback_models: self.asr_fallback_models.clone(),
            threads: self.asr_threads,
            gpu: self.asr_gpu,
            word_timing: self.asr_word_timing.0,
            beam_size: self.asr_beam_size,
        }
    }
}

/// Voice activity ([`VadConfig`]).
#[derive(Args, Debug, Clone)]
pub struct VadArgs {
    /// The Silero VAD ONNX file; `<model dir>/silero_vad.onnx` by default.
    #[arg(long, env = "ECG_VAD_MODEL")]
    pub vad_model: Option<PathBuf>,
    /// Speech starts when the probability reaches this.
    #[arg(long, env = "ECG_VAD_ONSET", default_value_t = VadConfig::default().onset)]
    pub vad_onset: f32,
    /// Speech may end once the probability falls below this (hysteresis below the onset).
    #[arg(long, env = "ECG_VAD_OFFSET", default_value_t = VadConfig::default().offset)]
    pub vad_offset: f32,
    /// Shorter bursts are dropped: clicks and coughs, not speech.
    #[arg(long, env = "ECG_VAD_MIN_SPEECH_MS", default_value_t = VadConfig::default().min_speech_ms)]
    pub vad_min_speech_ms: u32,
    /// Silence must last this long to split speech; shorter pauses stay inside a region.
    #[arg(long, env = "ECG_VAD_MIN_SILENCE_MS", default_value_t = VadConfig::default().min_silence_ms)]
    pub vad_min_silence_ms: u32,
    /// Added on both sides so soft word onsets and endings are not clipped.
    #[arg(long, env = "ECG_VAD_PAD_MS", default_value_t = VadConfig::default().pad_ms)]
    pub vad_pad_ms: u32,
}

impl VadArgs {
    pub fn config(&self) -> VadConfig {
        VadConfig {
            model: self.vad_model.clone(),
            onset: self.vad_onset,
            offset: self.vad_offset,
            min_speech_ms: self.vad_min_speech_ms,
            min_silence_ms: self.vad_min_silence_ms,
            pad_ms: self.vad_pad_ms,
        }
    }
}

/// Speaker diarization ([`DiarizeConfig`]).
#[derive(Args, Debug, Clone)]
pub struct DiarizeArgs {
    /// The speaker-embedding ONNX model: `<model dir>/speaker_campplus.onnx` (CAM++) by default,
    /// `<model dir>/speaker_encoder.onnx` (GE2E), or a standard export taking 80-band log-mel
    /// fbank, `[batch, frames, 80]` or `[batch, 80, frames]`, and returning `[batch, dim]`; a
    /// second input `pooling [windows, chunks, frames]` says it pools windows over chunks itself.
    #[arg(long, env = "ECG_SPEAKER_MODEL")]
    pub speaker_model: Option<PathBuf>,
    /// ONNX Runtime threads for the encoder.
    #[arg(long, env = "ECG_DIARIZE_THREADS", default_value_t = DiarizeConfig::default().threads)]
    pub diarize_threads: usize,
    /// Windows per encoder run (for a model that pools windows, chunks of about as many
    /// frames): larger batches use the CPU better, up to a point.
    #[arg(long, env = "ECG_DIARIZE_BATCH", default_value_t = DiarizeConfig::default().batch)]
    pub diarize_batch: usize,
    /// Milliseconds between the starts of consecutive 1.6 s windows (default: the speaker
    /// model's calibration, 1000 for CAM++, 500 for GE2E).
    #[arg(long, env = "ECG_DIARIZE_HOP_MS", value_parser = clap::value_parser!(u32).range(100..=1600))]
    pub diarize_hop_ms: Option<u32>,
    /// The most speakers found when the request gives no count or maximum.
    #[arg(long, env = "ECG_DIARIZE_MAX_SPEAKERS", default_value_t = DiarizeConfig::default().max_speakers)]
    pub diarize_max_speakers: usize,
    /// Clusters whose centroids are at least this similar (cosine; lower for clusters of few
    /// windows) are one speaker (default: the speaker model's calibration, 0.75 for CAM++, 0.89
    /// for GE2E).
    #[arg(long, env = "ECG_DIARIZE_MERGE_SIMILARITY")]
    pub diarize_merge_similarity: Option<f32>,
    /// Shorter turns are absorbed by a neighbour (a speaker's only turn is kept).
    #[arg(long, env = "ECG_DIARIZE_MIN_TURN_MS", default_value_t = DiarizeConfig::default().min_turn_ms)]
    pub diarize_min_turn_ms: u32,
    /// How far a change of speaker may move to reach a pause.
    #[arg(long, env = "ECG_DIARIZE_SNAP_MS", default_value_t = DiarizeConfig::default().snap_ms)]
    pub diarize_snap_ms: u32,
}

impl DiarizeArgs {
    pub fn config(&self) -> DiarizeConfig {
        DiarizeConfig {
            model: self.speaker_model.clone(),
            threads: self.diarize_threads,
            batch: self.diarize_batch,
            hop_ms: self.diarize_hop_ms,
            max_speakers: self.diarize_max_speakers,
            merge_similarity: self.diarize_merge_similarity,
            min_turn_ms: self.diarize_min_turn_ms,
            snap_ms: self.diarize_snap_ms,
        }
    }
}

/// The emotion stage ([`EmotionConfig`]).
#[derive(Args, Debug, Clone)]
pub struct EmotionArgs {
    /// An ONNX speech-emotion classifier run on each segment; without one, prosody-v1 runs.
    #[arg(long, env = "ECG_EMOTION_MODEL")]
    pub emotion_model: Option<PathBuf>,
    /// The model's class labels, one per line in output order; `<model>.labels.txt` by default
    /// (e.g. `ser.onnx.labels.txt`).
    #[arg(long, env = "ECG_EMOTION_LABELS")]
    pub emotion_labels: Option<PathBuf>,
    /// What the model reads: `raw` 16 kHz waveform `[1, N]`, or `logmel` `[1, 80, T]`.
    #[arg(long, env = "ECG_EMOTION_INPUT", default_value_t = Named(EmotionConfig::default().input))]
    pub emotion_input: Named<ModelInput>,
}

impl EmotionArgs {
    pub fn config(&self) -> EmotionConfig {
        EmotionConfig {
            model: self.emotion_model.clone(),
            labels: self.emotion_labels.clone(),
            input: self.emotion_input.0,
        }
    }
}

/// What decoding one job's media may cost ([`DecodeLimits`]).
#[derive(Args, Debug, Clone)]
pub struct DecodeArgs {
    /// Longer media is refused (AUDIO_EXTRACTION_ERROR); the default is 4 hours.
    #[arg(long, env = "ECG_MAX_MEDIA_SECONDS", default_value_t = DecodeLimits::default().max_media.as_secs())]
    pub max_media_seconds: u64,
    /// Decoding that takes longer is stopped (AUDIO_EXTRACTION_ERROR).
    #[arg(long, env = "ECG_MAX_DECODE_SECONDS", default_value_t = DecodeLimits::default().max_decode_time.as_secs())]
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

/// How media is downloaded ([`FetchLimits`]).
#[derive(Args, Debug, Clone)]
pub struct DownloadArgs {
    /// Retries of a download on transient failures.
    #[arg(long, env = "ECG_DOWNLOAD_RETRIES", default_value_t = FetchLimits::default().retries)]
    pub download_retries: u32,
    /// Larger media is refused.
    #[arg(long, env = "ECG_MAX_DOWNLOAD_BYTES", default_value_t = FetchLimits::default().max_bytes)]
    pub max_download_bytes: u64,
    /// Seconds without a byte from the media server before an attempt fails.
    #[arg(long, env = "ECG_DOWNLOAD_STALL_SECS", default_value_t = FetchLimits::default().stall_timeout.as_secs())]
    pub download_stall_secs: u64,
    /// Seconds a whole download may take, retries included.
    #[arg(long, env = "ECG_DOWNLOAD_TIMEOUT_SECS", default_value_t = FetchLimits::default().total_timeout.as_secs())]
    pub download_timeout_secs: u64,
}

impl DownloadArgs {
    pub fn fetch_config(&self, urls: &UrlArgs) -> FetchConfig {
        FetchConfig {
            limits: FetchLimits {
                retries: self.download_retries,
                max_bytes: self.max_download_bytes,
                stall_timeout: Duration::from_secs(self.download_stall_secs),
                total_timeout: Duration::from_secs(self.download_timeout_secs),
                ..FetchLimits::default()
            },
            allow_local: urls.allow_local_urls,
            ..FetchConfig::default()
        }
    }
}

/// How the backend is told ([`NotifierConfig`]).
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
    #[arg(long, env = "ECG_CALLBACK_RETRIES", default_value_t = NotifierConfig::default().retries)]
    pub callback_retries: u32,
    /// Seconds one callback attempt may take.
    #[arg(long, env = "ECG_CALLBACK_TIMEOUT_SECS", default_value_t = NotifierConfig::default().attempt_timeout.as_secs())]
    pub callback_timeout_secs: u64,
}

impl CallbackArgs {
    pub fn notifier_config(&self, urls: &UrlArgs) -> NotifierConfig {
        NotifierConfig {
            retries: self.callback_retries,
            attempt_timeout: Duration::from_secs(self.callback_timeout_secs),
            secret: self.callback_secret.clone(),
            allow_local: urls.allow_local_urls,
            allowed_hosts: urls.callback_allowed_hosts.clone(),
            ..NotifierConfig::default()
        }
    }

    /// How request URLs are checked. Fails when `BACKEND_URL` is off the callback allow-list:
    /// better not to start than to accept jobs whose callbacks would be refused.
    pub fn url_policy(&self, urls: &UrlArgs) -> Result<UrlPolicy, ValidationError> {
        let policy = urls.policy();
        if let Some(backend) = &self.backend_url {
            policy.check_callback_host("BACKEND_URL", backend)?;
        }
        Ok(policy)
    }
}

/// A library's enum as a setting, by the name serde gives it (`dtw`, `logmel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Named<T>(pub T);

impl<T: DeserializeOwned> FromStr for Named<T> {
    type Err = serde::de::value::Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        T::deserialize(name.into_deserializer()).map(Self)
    }
}

impl<T: Serialize> fmt::Display for Named<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(&self.0) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => Err(fmt::Error),
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
        models: ModelArgs,
        #[command(flatten)]
        decode: DecodeArgs,
        #[command(flatten)]
        downloads: DownloadArgs,
        #[command(flatten)]
        callbacks: CallbackArgs,
        #[command(flatten)]
        urls: UrlArgs,
    }

    fn cli(args: &[&str]) -> Cli {
        crate::flags_only(args)
    }

    #[test]
    fn without_flags_the_libraries_defaults_hold() {
        let cli = cli(&[]);
        assert_eq!(cli.models.config(), ModelConfig::default());
        assert_eq!(cli.decode.limits(), DecodeLimits::default());
        let fetch = cli.downloads.fetch_config(&cli.urls);
        assert_eq!(fetch.limits, FetchLimits::default());
        let notifier = cli.callbacks.notifier_config(&cli.urls);
        assert_eq!(
            (notifier.retries, notifier.attempt_timeout),
            (
                NotifierConfig::default().retries,
                NotifierConfig::default().attempt_timeout
            )
        );
    }

    #[test]
    fn model_flags_reach_their_configs() {
        let models = cli(&[
            "--asr-model",
            "tiny",
            "--asr-fallback-models",
            "base,tiny",
            "--asr-word-timing",
            "tokens",
            "--vad-model",
            "/m/vad.onnx",
            "--speaker-model",
            "/m/spk.onnx",
            "--diarize-hop-ms",
            "250",
            "--emotion-model",
            "/m/ser.onnx",
            "--emotion-input",
            "logmel",
        ])
        .models
        .config();
        assert_eq!(models.asr.model, "tiny");
        assert_eq!(
            models.asr.fallback_models,
            Some(vec!["base".to_owned(), "tiny".to_owned()])
        );
        assert_eq!(models.asr.word_timing, WordTiming::Tokens);
        assert_eq!(models.vad.model, Some(PathBuf::from("/m/vad.onnx")));
        assert_eq!(models.diarize.model, Some(PathBuf::from("/m/spk.onnx")));
        assert_eq!(models.diarize.hop_ms, Some(250));
        assert_eq!(models.emotion.model, Some(PathBuf::from("/m/ser.onnx")));
        assert_eq!(models.emotion.input, ModelInput::Logmel);
        assert_eq!(models.emotion.labels, None);
        for bad in [
            ["--diarize-hop-ms", "2000"],
            ["--asr-word-timing", "guess"],
            ["--emotion-input", "mfcc"],
        ] {
            assert!(
                Cli::try_parse_from(["test", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_backend_url_must_be_on_the_callback_allow_list() {
        let allowed = cli(&[
            "--callback-allowed-hosts",
            "backend.example,127.0.0.1",
            "--backend-url",
            "https://backend.example/base",
        ]);
        let policy = allowed.callbacks.url_policy(&allowed.urls).unwrap();
        assert!(
            policy
                .callback_base("fastapi_base_url", "https://evil.example")
                .is_err()
        );
        let off_list = cli(&[
            "--callback-allowed-hosts",
            "backend.example",
            "--backend-url",
            "https://evil.example",
        ]);
        assert_eq!(
            off_list
                .callbacks
                .url_policy(&off_list.urls)
                .unwrap_err()
                .field,
            "BACKEND_URL"
        );
        // No allow-list, any backend.
        let open = cli(&["--backend-url", "https://evil.example"]);
        assert!(open.callbacks.url_policy(&open.urls).is_ok());
        assert!(
            Cli::try_parse_from(["test", "--callback-allowed-hosts", "https://a.example"]).is_err()
        );
    }
}
