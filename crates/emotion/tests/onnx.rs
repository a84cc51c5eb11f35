//! The ONNX classifier's plumbing, with tiny models that `tiny_models.py` builds at test time
//! with the project venv's `onnx` (see `infra/python-env.sh`): shapes, labels, and that the
//! label, probabilities and method reach the result. Needs the provisioned ONNX Runtime.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{emphases, require_models, say, steady, synthetic_result};
use ecg_core::audio::TimeSpan;
use ecg_core::error::StageError;
use ecg_core::stages::EmotionAnalyzer;
use ecg_emotion::{EmotionConfig, ModelInput, OnnxEmotion, emotion_from_config};

/// The weights of `tiny_models.py`'s raw model: rows mean |x|, max |x|, mean x²; one column per
/// label.
const RAW_W: [[f64; 3]; 3] = [[60.0, 0.0, -60.0], [1.0, 0.0, -1.0], [5.0, 0.0, -5.0]];
const RAW_B: [f64; 3] = [-4.0, 0.0, 4.0];
const LABELS: &str = "angry\nneutral\nsad\n";

/// The directory with the tiny models, built once per test run.
fn models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        require_models(&["libonnxruntime.so"]);
        let dir = tempfile::tempdir().unwrap();
        ecg_testkit::run_python(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tiny_models.py"),
            &[dir.path()],
        );
        std::fs::write(dir.path().join("tiny_raw.onnx.labels.txt"), LABELS).unwrap();
        dir
    })
    .path()
}

fn config(model: &str, labels: Option<PathBuf>, input: ModelInput) -> EmotionConfig {
    EmotionConfig {
        model: Some(models().join(model)),
        labels,
        input,
    }
}

fn labels_file(name: &str, labels: &str) -> PathBuf {
    let path = models().join(name);
    std::fs::write(&path, labels).unwrap();
    path
}

/// What the raw model computes, recomputed here.
fn expected_raw(samples: &[f32]) -> Vec<f64> {
    let n = samples.len() as f64;
    let features = [
        samples.iter().map(|&x| f64::from(x.abs())).sum::<f64>() / n,
        samples
            .iter()
            .map(|&x| f64::from(x.abs()))
            .fold(0.0, f64::max),
        samples
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            / n,
    ];
    let logits: Vec<f64> = (0..3)
        .map(|j| RAW_B[j] + (0..3).map(|i| features[i] * RAW_W[i][j]).sum::<f64>())
        .collect();
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let total: f64 = exp.iter().sum();
    exp.iter().map(|e| e / total).collect()
}

fn model_error(config: &EmotionConfig) -> String {
    match OnnxEmotion::new(config) {
        Err(StageError::ModelLoading(why)) => why,
        Err(other) => panic!("not a model loading error: {other:?}"),
        Ok(_) => panic!("{config:?} loaded"),
    }
}

#[test]
fn raw_waveform_model_labels_every_segment() {
    // Quiet segments, then a loud one: the tiny model calls loud "angry" and quiet "sad".
    let mut utterances = steady(0, 120.0, 3);
    utterances.push(say(0, 170.0, 0.4));
    let (audio, mut result) = synthetic_result(&utterances);
    // Labels from the default `<model>.labels.txt`.
    let emotion = emotion_from_config(&config("tiny_raw.onnx", None, ModelInput::Raw)).unwrap();
    emotion.annotate(&audio, &mut result).unwrap();

    assert_eq!(
        result.metadata.emotion_method.as_deref(),
        Some("onnx:tiny_raw")
    );
    for (i, segment) in result.segments.iter().enumerate() {
        let e = segment.emotion.as_ref().unwrap();
        let samples = audio.slice(TimeSpan::new(segment.start_time, segment.end_time));
        let expected = expected_raw(samples);
        eprintln!("segment {i}: {e:?}, expected {expected:?}");
        let keys: Vec<&str> = e.probabilities.keys().map(String::as_str).collect();
        assert_eq!(keys, ["angry", "neutral", "sad"]);
        for (label, p) in ["angry", "neutral", "sad"].iter().zip(&expected) {
            assert!((e.probabilities[*label] - p).abs() < 1e-3, "{label}: {e:?}");
        }
        let best = if expected[0] > expected[2] {
            "angry"
        } else {
            "sad"
        };
        assert_eq!(e.label, best);
        assert!((e.confidence - expected[0].max(expected[1]).max(expected[2])).abs() < 1e-3);
        // angry 1, neutral 0.5, sad 0.
        let arousal = expected[0] + 0.5 * expected[1];
        assert!((e.arousal.unwrap() - arousal).abs() < 1e-3, "{e:?}");
        // Emphasis still comes from prosody.
        assert_eq!(emphases(&result, i).len(), segment.words.len());
    }
    let label = |i: usize| result.segments[i].emotion.as_ref().unwrap().label.as_str();
    assert_eq!((label(0), label(3)), ("sad", "angry"));
    assert!(emphases(&result, 3).iter().all(|&e| e > 0.9));
}

#[test]
fn probabilities_match_the_model_and_short_slices_are_padded() {
    let model = OnnxEmotion::new(&config("tiny_raw.onnx", None, ModelInput::Raw)).unwrap();
    assert_eq!(model.labels(), ["angry", "neutral", "sad"]);
    assert_eq!(model.method(), "onnx:tiny_raw");
    let samples: Vec<f32> = (0..8_000)
        .map(|i| ((i % 50) as f32 / 50.0 - 0.5) * 0.3)
        .collect();
    let p = model.probabilities(&samples).unwrap();
    for (got, want) in p.iter().zip(expected_raw(&samples)) {
        assert!((got - want).abs() < 1e-5, "{p:?}");
    }
    // 10 samples are padded to one 25 ms frame of 400.
    let mut padded = vec![0.2f32; 10];
    padded.resize(400, 0.0);
    let p = model.probabilities(&[0.2; 10]).unwrap();
    for (got, want) in p.iter().zip(expected_raw(&padded)) {
        assert!((got - want).abs() < 1e-5, "{p:?}");
    }
    assert_eq!(model.probabilities(&[]).unwrap().len(), 3);
}

#[test]
fn log_mel_model_gets_80_bands_and_its_probabilities_are_kept() {
    let labels = labels_file("mel.labels", "excited\nneutral\ncalm\n");
    let model = OnnxEmotion::new(&config(
        "tiny_logmel.onnx",
        Some(labels),
        ModelInput::Logmel,
    ))
    .unwrap();
    let (audio, mut result) = synthetic_result(&[say(0, 120.0, 0.02), say(0, 120.0, 0.5)]);
    model.annotate(&audio, &mut result).unwrap();
    let p =
        |i: usize, label: &str| result.segments[i].emotion.as_ref().unwrap().probabilities[label];
    // The model ends in a softmax and "calm" is ln 2 above "neutral": taken as they are, the
    // probabilities keep that 2:1 ratio (a second softmax would squash it to about 1.1).
    for i in 0..2 {
        let ratio = p(i, "calm") / p(i, "neutral");
        assert!((ratio - 2.0).abs() < 0.05, "segment {i}: {ratio}");
        let total: f64 = ["excited", "neutral", "calm"].iter().map(|l| p(i, l)).sum();
        assert!((total - 1.0).abs() < 2e-3);
    }
    // Louder audio has higher log-mel energies, which raise "excited" (too little to survive
    // rounding to three decimals: compare the model's own output).
    let excited = |i: usize| {
        let s = &result.segments[i];
        model
            .probabilities(audio.slice(TimeSpan::new(s.start_time, s.end_time)))
            .unwrap()[0]
    };
    eprintln!("p(excited): quiet {:e}, loud {:e}", excited(0), excited(1));
    assert!(excited(1) > excited(0));
    assert_eq!(
        result.metadata.emotion_method.as_deref(),
        Some("onnx:tiny_logmel")
    );
}

#[test]
fn labels_without_a_known_arousal_give_none() {
    let labels = labels_file("anonymous.labels", "LABEL_0\nLABEL_1\nLABEL_2\n");
    let model = OnnxEmotion::new(&config("tiny_raw.onnx", Some(labels), ModelInput::Raw)).unwrap();
    let (audio, mut result) = synthetic_result(&steady(0, 150.0, 2));
    model.annotate(&audio, &mut result).unwrap();
    let e = result.segments[0].emotion.as_ref().unwrap();
    assert!(e.label.starts_with("LABEL_"));
    assert_eq!(e.arousal, None);
}

#[test]
fn mismatched_models_are_refused_at_load() {
    let two = labels_file("two.labels", "angry\nsad\n");
    let why = model_error(&config("tiny_raw.onnx", Some(two), ModelInput::Raw));
    assert!(why.contains("2 labels"), "{why}");
    let why = model_error(&config("tiny_raw.onnx", None, ModelInput::Logmel));
    assert!(why.contains("[1, 80, T]"), "{why}");
    let why = model_error(&config("missing.onnx", None, ModelInput::Raw));
    assert!(why.contains("not found"), "{why}");
    let why = model_error(&config(
        "tiny_raw.onnx",
        Some(models().join("no-such-labels")),
        ModelInput::Raw,
    ));
    assert!(why.contains("labels"), "{why}");
}

#[test]
fn without_a_model_prosody_runs() {
    let (audio, mut result) = synthetic_result(&steady(0, 150.0, 3));
    let emotion = emotion_from_config(&EmotionConfig::default()).unwrap();
    emotion.annotate(&audio, &mut result).unwrap();
    assert_eq!(
        result.metadata.emotion_method.as_deref(),
        Some("prosody-v1")
    );
}
