//! A pluggable speech-emotion classifier: any ONNX model that maps one segment's audio (raw
//! waveform or log-mel) to one score per class, run through the process's ONNX Runtime.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::contract::{AnalysisResult, Emotion};
use ecg_core::error::StageError;
use ecg_core::stages::EmotionAnalyzer;
use ecg_models::onnx_session;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::config::{EmotionConfig, ModelInput};
use crate::logmel::{FRAME_LEN, LogMel, N_MELS};
use crate::prosody::{ProsodyEmotion, round3};

/// Scores that already sum to 1 within this are probabilities; anything else gets a softmax.
const SUM_TOLERANCE: f64 = 1e-3;

/// An ONNX speech-emotion model applied to each segment. Emphasis still comes from prosody:
/// a classifier labels whole segments, not words.
pub struct OnnxEmotion {
    /// `Session::run` needs `&mut`: jobs take turns.
    session: Mutex<Session>,
    labels: Vec<String>,
    /// Each label's arousal, when every label has one.
    arousal_levels: Option<Vec<f64>>,
    /// Built only for log-mel models.
    logmel: Option<LogMel>,
    method: String,
    prosody: ProsodyEmotion,
}

impl OnnxEmotion {
    /// Loads the model and its labels, and checks that the model's input and output fit them.
    pub fn new(config: &EmotionConfig) -> Result<Self, StageError> {
        let path = config.model_path().ok_or_else(|| {
            StageError::ModelLoading("no emotion model configured (ECG_EMOTION_MODEL)".into())
        })?;
        if !path.is_file() {
            return Err(StageError::ModelLoading(format!(
                "emotion model not found at {} (ECG_EMOTION_MODEL)",
                path.display()
            )));
        }
        let labels_path = config
            .labels
            .clone()
            .unwrap_or_else(|| default_labels_path(path));
        let labels = read_labels(&labels_path)?;

        let session = onnx_session(path, None)?;
        check_signature(&session, config.input, labels.len())
            .map_err(|e| StageError::ModelLoading(format!("{}: {e}", path.display())))?;

        let stem = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Ok(Self {
            session: Mutex::new(session),
            arousal_levels: labels.iter().map(|l| label_arousal(l)).collect(),
            labels,
            logmel: (config.input == ModelInput::Logmel).then(LogMel::new),
            method: format!("onnx:{stem}"),
            prosody: ProsodyEmotion::new(),
        })
    }

    /// `metadata.emotion_method`: `onnx:<model file stem>`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The class labels, in the model's output order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// Class probabilities of 16 kHz samples, in label order. Slices shorter than one 25 ms
    /// frame are zero-padded to one: models with a convolutional front end need that much.
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f64>, StageError> {
        let samples: Cow<[f32]> = if samples.len() < FRAME_LEN {
            let mut padded = samples.to_vec();
            padded.resize(FRAME_LEN, 0.0);
            Cow::Owned(padded)
        } else {
            Cow::Borrowed(samples)
        };
        let (shape, data): (Vec<usize>, Cow<[f32]>) = match &self.logmel {
            Some(logmel) => {
                let (features, frames) = logmel.features(&samples);
                (vec![1, N_MELS, frames], Cow::Owned(features))
            }
            None => (vec![1, samples.len()], samples),
        };
        let fail = |e: ort::Error| StageError::Processing(format!("emotion model: {e}"));
        let tensor = TensorRef::from_array_view((shape, &*data)).map_err(fail)?;
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session.run(ort::inputs![tensor]).map_err(fail)?;
        let (_, scores) = outputs[0].try_extract_tensor::<f32>().map_err(fail)?;
        if scores.len() != self.labels.len() {
            return Err(StageError::Processing(format!(
                "emotion model gave {} scores for {} labels",
                scores.len(),
                self.labels.len()
            )));
        }
        Ok(to_probabilities(scores))
    }

    /// The segment emotion for class probabilities in label order.
    fn emotion(&self, probabilities: &[f64]) -> Emotion {
        // The first of equal maxima, so ties resolve the same way every time.
        let (best, p_best) = probabilities.iter().copied().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |acc, (i, p)| if p > acc.1 { (i, p) } else { acc },
        );
        Emotion {
            label: self.labels[best].clone(),
            arousal: self
                .arousal_levels
                .as_ref()
                .map(|levels| round3(levels.iter().zip(probabilities).map(|(a, p)| a * p).sum())),
            confidence: round3(p_best),
            probabilities: self
                .labels
                .iter()
                .cloned()
                .zip(probabilities.iter().map(|&p| round3(p)))
                .collect(),
        }
    }
}

impl EmotionAnalyzer for OnnxEmotion {
    fn annotate(&self, audio: &Audio, result: &mut AnalysisResult) -> Result<(), StageError> {
        self.prosody.measure(audio, result).write_emphasis(result);
        for segment in &mut result.segments {
            let span = TimeSpan::new(segment.start_time, segment.end_time);
            let probabilities = self.probabilities(audio.slice(span))?;
            segment.emotion = Some(self.emotion(&probabilities));
        }
        result.metadata.emotion_method = Some(self.method.clone());
        Ok(())
    }
}

/// `<model>.labels.txt` beside the model: `ser.onnx` → `ser.onnx.labels.txt`.
fn default_labels_path(model: &Path) -> PathBuf {
    let mut name = model.as_os_str().to_owned();
    name.push(".labels.txt");
    PathBuf::from(name)
}

/// One label per line, surrounding blanks trimmed, blank lines skipped; labels must be unique,
/// since they key the probabilities.
fn read_labels(path: &Path) -> Result<Vec<String>, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        StageError::ModelLoading(format!(
            "cannot read emotion labels {} (ECG_EMOTION_LABELS): {e}",
            path.display()
        ))
    })?;
    let labels: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let bad = |why: &str| StageError::ModelLoading(format!("{}: {why}", path.display()));
    if labels.is_empty() {
        return Err(bad("no labels"));
    }
    for (i, label) in labels.iter().enumerate() {
        if labels[..i].contains(label) {
            return Err(bad(&format!("label {label:?} appears twice")));
        }
    }
    Ok(labels)
}

/// The model takes one float tensor of the configured layout, and its first output is a float
/// tensor with one score per label (where its shape says so before running).
fn check_signature(session: &Session, input: ModelInput, labels: usize) -> Result<(), String> {
    let [model_input] = session.inputs() else {
        return Err(format!(
            "an emotion model takes one input, this one takes {}",
            session.inputs().len()
        ));
    };
    let (rank, fixed) = match input {
        ModelInput::Raw => (2, &[(0, 1)][..]),
        ModelInput::Logmel => (3, &[(0, 1), (1, N_MELS as i64)][..]),
    };
    let dims = float_tensor_dims(model_input.dtype())
        .ok_or_else(|| format!("input {:?} is not a float tensor", model_input.name()))?;
    // -1 marks a dimension left open until run time.
    if dims.len() != rank || fixed.iter().any(|&(i, n)| dims[i] != n && dims[i] != -1) {
        return Err(format!(
            "input {:?} has shape {dims:?}, but ECG_EMOTION_INPUT={} needs {}",
            model_input.name(),
            match input {
                ModelInput::Raw => "raw",
                ModelInput::Logmel => "logmel",
            },
            match input {
                ModelInput::Raw => "[1, N]".to_owned(),
                ModelInput::Logmel => format!("[1, {N_MELS}, T]"),
            }
        ));
    }
    let output = session
        .outputs()
        .first()
        .ok_or_else(|| "the model has no output".to_owned())?;
    let dims = float_tensor_dims(output.dtype())
        .ok_or_else(|| format!("output {:?} is not a float tensor", output.name()))?;
    if dims.iter().all(|&d| d >= 0) && dims.iter().product::<i64>() != labels as i64 {
        return Err(format!(
            "output {:?} has shape {dims:?}, not one score for each of the {labels} labels",
            output.name()
        ));
    }
    Ok(())
}

fn float_tensor_dims(dtype: &ValueType) -> Option<Vec<i64>> {
    match dtype {
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape,
            ..
        } => Some(shape.to_vec()),
        _ => None,
    }
}

/// The scores as they are when they already are probabilities (a model ending in softmax),
/// else their softmax (logits).
fn to_probabilities(scores: &[f32]) -> Vec<f64> {
    let scores: Vec<f64> = scores.iter().map(|&s| f64::from(s)).collect();
    let sum: f64 = scores.iter().sum();
    if scores.iter().all(|p| (0.0..=1.0).contains(p)) && (sum - 1.0).abs() <= SUM_TOLERANCE {
        return scores;
    }
    // Shifted by the maximum so that large logits do not overflow.
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / total).collect()
}

/// A coarse arousal for common speech-emotion class names, after the arousal axis of Russell's
/// circumplex (1980): high-activation emotions 1, neutral and mid-activation ones 0.5, low
/// ones 0; prosody-v1's own labels map the same way. A model whose every label is known gets
/// arousal = Σ p(label) · level; one with any other label gets none.
fn label_arousal(label: &str) -> Option<f64> {
    match label.to_lowercase().as_str() {
        "angry" | "anger" | "ang" | "happy" | "happiness" | "hap" | "joy" | "excited"
        | "excitement" | "exc" | "fear" | "fearful" | "fea" | "surprise" | "surprised" | "sur" => {
            Some(1.0)
        }
        "neutral" | "neu" | "disgust" | "disgusted" | "dis" | "contempt" => Some(0.5),
        "sad" | "sadness" | "calm" | "bored" | "boredom" | "tired" => Some(0.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn logits_get_a_softmax_and_probabilities_stay() {
        let p = to_probabilities(&[0.0, 0.0, (2.0f32).ln()]);
        assert!(close(&p, &[0.25, 0.25, 0.5]), "{p:?}");
        assert!(close(&to_probabilities(&[0.2, 0.3, 0.5]), &[0.2, 0.3, 0.5]));
        // Sums to one but negative: logits.
        let p = to_probabilities(&[-1.0, 1.0, 1.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12 && p[0] < p[1]);
        // Huge logits do not overflow.
        let p = to_probabilities(&[1000.0, 0.0]);
        assert!(close(&p, &[1.0, 0.0]), "{p:?}");
    }

    #[test]
    fn arousal_of_known_labels() {
        assert_eq!(label_arousal("Angry"), Some(1.0));
        assert_eq!(label_arousal("neu"), Some(0.5));
        assert_eq!(label_arousal("sad"), Some(0.0));
        assert_eq!(label_arousal("LABEL_0"), None);
    }

    #[test]
    fn labels_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.txt");
        std::fs::write(&path, "angry\n  neutral \n\nsad\n").unwrap();
        assert_eq!(read_labels(&path).unwrap(), ["angry", "neutral", "sad"]);
        std::fs::write(&path, "a\nb\na\n").unwrap();
        assert!(
            read_labels(&path)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        std::fs::write(&path, "\n \n").unwrap();
        assert!(read_labels(&path).is_err());
        assert!(read_labels(&dir.path().join("missing")).is_err());
        assert_eq!(
            default_labels_path(Path::new("/m/ser.onnx")),
            Path::new("/m/ser.onnx.labels.txt")
        );
    }
}
