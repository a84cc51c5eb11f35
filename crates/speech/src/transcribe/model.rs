//! Loading a Whisper model: the configured one, else each fallback in turn, on the GPU when
//! asked and possible, else on the CPU, with the alignment heads DTW word timing needs.

use std::path::{Path, PathBuf};

use ecg_core::error::StageError;
use ecg_models::model_dir;
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, WhisperContext, WhisperContextParameters,
};

use super::{AsrConfig, WordTiming};
use crate::models::{WhisperShape, smaller_whisper_models, whisper_model_path};

/// A model file loaded into a context.
pub(super) struct Loaded {
    pub path: PathBuf,
    pub context: WhisperContext,
    /// Alignment heads for DTW word timing, when the model's shape is a known one.
    pub dtw: Option<DtwModelPreset>,
    pub on_gpu: bool,
}

impl AsrConfig {
    /// The configured model, then each fallback not already tried.
    fn candidates(&self) -> Vec<String> {
        let fallbacks = self
            .fallback_models
            .clone()
            .unwrap_or_else(|| smaller_whisper_models(&self.model));
        let mut all = vec![self.model.clone()];
        for f in fallbacks {
            if !all.contains(&f) {
                all.push(f);
            }
        }
        all
    }
}

/// Loads the configured model, else each fallback in turn.
pub(super) fn load_first(config: &AsrConfig) -> Result<Loaded, StageError> {
    let dir = model_dir();
    let want_gpu = config.gpu && gpu_usable();
    let mut failures = Vec::new();
    for candidate in config.candidates() {
        let path = whisper_model_path(&candidate, &dir);
        match load(&path, config.word_timing, want_gpu) {
            Ok(loaded) => {
                if !failures.is_empty() {
                    tracing::warn!(model = %path.display(), failed = %failures.join("; "), "loaded a fallback Whisper model");
                }
                return Ok(loaded);
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    Err(StageError::ModelLoading(format!(
        "no Whisper model could be loaded (run `make models` or set ECG_ASR_MODEL): {}",
        failures.join("; ")
    )))
}

/// Whether a GPU can take the model: built with CUDA and a device the runtime can use.
fn gpu_usable() -> bool {
    if !cfg!(feature = "cuda") {
        return false;
    }
    let devices = super::cuda::devices();
    if devices == 0 {
        tracing::warn!(
            "no CUDA device (or the NVIDIA driver is older than the CUDA runtime); Whisper runs on the CPU"
        );
    }
    devices > 0
}

/// Loads a model file on the preferred device, falling back to the CPU for this same file.
fn load(path: &Path, timing: WordTiming, want_gpu: bool) -> Result<Loaded, String> {
    if !path.is_file() {
        return Err("no such file".into());
    }
    let shape = WhisperShape::read(path).map_err(|e| e.to_string())?;
    let dtw = alignment_heads(path, shape, timing);
    let mut gpu = None;
    if want_gpu {
        match new_context(path, dtw.as_ref(), true) {
            Ok(ctx) => gpu = Some(ctx),
            Err(e) => {
                tracing::warn!(model = %path.display(), error = %e, "cannot load on the GPU; using the CPU");
            }
        }
    }
    let (context, on_gpu) = match gpu {
        Some(ctx) => (ctx, true),
        None => (new_context(path, dtw.as_ref(), false)?, false),
    };
    Ok(Loaded {
        path: path.to_path_buf(),
        context,
        dtw,
        on_gpu,
    })
}

/// The alignment heads DTW timing uses for this model, or none with timestamp-token timing.
fn alignment_heads(path: &Path, shape: WhisperShape, timing: WordTiming) -> Option<DtwModelPreset> {
    match timing {
        WordTiming::Dtw => {
            let preset = dtw_preset(shape);
            if preset.is_none() {
                tracing::warn!(model = %path.display(), "no alignment heads known for this model shape; word times from timestamp tokens");
            }
            preset
        }
        WordTiming::Tokens => None,
    }
}

pub(super) fn new_context(
    path: &Path,
    dtw: Option<&DtwModelPreset>,
    gpu: bool,
) -> Result<WhisperContext, String> {
    let mut params = WhisperContextParameters::default();
    params.use_gpu(gpu);
    if let Some(preset) = dtw {
        params.dtw_parameters(DtwParameters {
            mode: DtwMode::ModelPreset {
                model_preset: preset.clone(),
            },
            ..DtwParameters::default()
        });
    }
    WhisperContext::new_with_params(path, params)
        .map_err(|e| format!("whisper.cpp cannot load it ({e})"))
}

/// The alignment-head preset for a model, recognised by its layer counts and vocabulary.
fn dtw_preset(shape: WhisperShape) -> Option<DtwModelPreset> {
    let en = shape.english_only();
    Some(match (shape.n_audio_layer, shape.n_text_layer) {
        (4, 4) if en => DtwModelPreset::TinyEn,
        (4, 4) => DtwModelPreset::Tiny,
        (6, 6) if en => DtwModelPreset::BaseEn,
        (6, 6) => DtwModelPreset::Base,
        (12, 12) if en => DtwModelPreset::SmallEn,
        (12, 12) => DtwModelPreset::Small,
        (24, 24) if en => DtwModelPreset::MediumEn,
        (24, 24) => DtwModelPreset::Medium,
        (32, 4) => DtwModelPreset::LargeV3Turbo,
        (32, 32) if shape.large_v3_vocabulary() => DtwModelPreset::LargeV3,
        // large-v1 and v2 share a shape; v2 is the one in use.
        (32, 32) => DtwModelPreset::LargeV2,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_default_to_smaller_sizes_without_repeats() {
        let config = AsrConfig {
            model: "small".into(),
            ..AsrConfig::default()
        };
        assert_eq!(config.candidates(), ["small", "base", "tiny"]);
        let config = AsrConfig {
            model: "/x/custom.bin".into(),
            fallback_models: Some(vec!["base".into(), "/x/custom.bin".into()]),
            ..AsrConfig::default()
        };
        assert_eq!(config.candidates(), ["/x/custom.bin", "base"]);
    }

    #[test]
    fn presets_follow_the_model_shape() {
        let shape = |n_vocab, n_audio_layer, n_text_layer| WhisperShape {
            n_vocab,
            n_audio_layer,
            n_text_layer,
        };
        assert!(matches!(
            dtw_preset(shape(51_865, 6, 6)),
            Some(DtwModelPreset::Base)
        ));
        assert!(matches!(
            dtw_preset(shape(51_864, 6, 6)),
            Some(DtwModelPreset::BaseEn)
        ));
        assert!(matches!(
            dtw_preset(shape(51_866, 32, 4)),
            Some(DtwModelPreset::LargeV3Turbo)
        ));
        assert!(matches!(
            dtw_preset(shape(51_866, 32, 32)),
            Some(DtwModelPreset::LargeV3)
        ));
        assert!(dtw_preset(shape(51_865, 32, 2)).is_none());
    }
}
