//! Which emotion method runs: an ONNX classifier when one is configured, else prosody-v1.

use std::path::PathBuf;
use std::sync::Arc;

use ecg_core::error::StageError;
use ecg_core::stages::EmotionAnalyzer;

use crate::onnx::OnnxEmotion;
use crate::prosody::ProsodyEmotion;

/// What an ONNX emotion model reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelInput {
    /// The segment's 16 kHz waveform as a `[1, N]` float tensor.
    #[default]
    Raw,
    /// `[1, 80, T]` log-mel features, 25 ms frames every 10 ms (layout in the crate docs).
    Logmel,
}

/// The emotion method and its model.
#[derive(Clone, Debug, Default, PartialEq, clap::Args)]
pub struct EmotionConfig {
    /// An ONNX speech-emotion classifier run on each segment; without one, prosody-v1 runs.
    #[arg(
        id = "emotion_model",
        long = "emotion-model",
        env = "ECG_EMOTION_MODEL"
    )]
    pub model: Option<PathBuf>,
    /// The model's class labels, one per line in output order; `<model>.labels.txt` by default
    /// (e.g. `ser.onnx.labels.txt`).
    #[arg(
        id = "emotion_labels",
        long = "emotion-labels",
        env = "ECG_EMOTION_LABELS"
    )]
    pub labels: Option<PathBuf>,
    /// What the model reads: `raw` 16 kHz waveform `[1, N]`, or `logmel` `[1, 80, T]`.
    #[arg(id = "emotion_input", long = "emotion-input", env = "ECG_EMOTION_INPUT", value_enum, default_value_t = ModelInput::Raw)]
    pub input: ModelInput,
}

impl EmotionConfig {
    /// The settings from `ECG_EMOTION_*` variables alone, for callers without a command line.
    pub fn from_env() -> Result<Self, StageError> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            config: EmotionConfig,
        }
        <EnvOnly as clap::Parser>::try_parse_from(["ecg"])
            .map(|e| e.config)
            .map_err(|e| StageError::ModelLoading(format!("bad emotion settings: {e}")))
    }

    /// The configured model, if any (an empty path is none).
    pub(crate) fn model_path(&self) -> Option<&PathBuf> {
        self.model.as_ref().filter(|p| !p.as_os_str().is_empty())
    }
}

/// The emotion stage for `config`: [`OnnxEmotion`] when a model is configured (failing loudly if
/// it cannot be loaded, rather than quietly answering with another method), else
/// [`ProsodyEmotion`].
pub fn emotion_from_config(config: &EmotionConfig) -> Result<Arc<dyn EmotionAnalyzer>, StageError> {
    Ok(match config.model_path() {
        Some(_) => Arc::new(OnnxEmotion::new(config)?),
        None => Arc::new(ProsodyEmotion::new()),
    })
}
