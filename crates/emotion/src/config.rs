//! Which emotion method runs: an ONNX classifier when one is configured, else prosody-v1.

use std::path::PathBuf;
use std::sync::Arc;

use ecg_core::error::StageError;
use ecg_core::stages::EmotionAnalyzer;
use serde::{Deserialize, Serialize};

use crate::onnx::OnnxEmotion;
use crate::prosody::ProsodyEmotion;

/// What an ONNX emotion model reads; named `raw` and `logmel` in settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelInput {
    /// The segment's 16 kHz waveform as a `[1, N]` float tensor.
    #[default]
    Raw,
    /// `[1, 80, T]` log-mel features, 25 ms frames every 10 ms (layout in the crate docs).
    Logmel,
}

/// The emotion method and its model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmotionConfig {
    /// An ONNX speech-emotion classifier run on each segment; without one, prosody-v1 runs.
    pub model: Option<PathBuf>,
    /// The model's class labels, one per line in output order; `<model>.labels.txt` by default
    /// (e.g. `ser.onnx.labels.txt`).
    pub labels: Option<PathBuf>,
    /// What the model reads: the raw 16 kHz waveform `[1, N]`, or log-mel `[1, 80, T]`.
    pub input: ModelInput,
}

impl EmotionConfig {
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
