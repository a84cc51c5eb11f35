//! Test inputs made at test time: synthetic voices assembled into a result as the pipeline
//! does, and the model check. Nothing is downloaded.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::path::PathBuf;

use ecg_audio::AcousticAnalyzer;
use ecg_core::assemble::{AssemblyInput, assemble};
use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::contract::{AnalysisResult, Emotion};
use ecg_core::request::Language;
use ecg_core::stages::{EmotionAnalyzer, SpeakerTurn, TimedWord, Transcript, TranscriptSegment};
use ecg_emotion::ProsodyEmotion;

/// Fails loudly when provisioned files are missing: model tests must never pass by skipping.
pub fn require_models(files: &[&str]) -> PathBuf {
    let dir = ecg_models::model_dir();
    for file in files {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run `make models` (or point ECG_MODEL_DIR at the models)",
            dir.join(file).display()
        );
    }
    dir
}

const RATE: f64 = SAMPLE_RATE_HZ as f64;
const WORD_S: f64 = 0.3;
const WORD_GAP_S: f64 = 0.08;
const SEGMENT_GAP_S: f64 = 0.7;

/// One synthetic segment: who says it, at what pitch (Hz) and peak amplitude, in how many words.
#[derive(Clone, Copy, Debug)]
pub struct Utterance {
    pub speaker: usize,
    pub f0: f64,
    pub amplitude: f64,
    pub words: usize,
}

/// Five words.
pub fn say(speaker: usize, f0: f64, amplitude: f64) -> Utterance {
    Utterance {
        speaker,
        f0,
        amplitude,
        words: 5,
    }
}

/// A steady speaker, with small deterministic wobbles so that its baseline has a spread.
pub fn steady(speaker: usize, f0: f64, count: usize) -> Vec<Utterance> {
    (0..count)
        .map(|i| {
            let wobble = [0.0, 1.0, -1.0, 0.5, -0.5][i % 5];
            say(
                speaker,
                f0 * (1.0 + 0.01 * wobble),
                0.1 * (1.0 + 0.05 * wobble),
            )
        })
        .collect()
}

/// A voiced "word": six harmonics at 1/h, the pitch falling from 3 % above `f0` to 3 % below
/// like a declarative phrase, with 15 ms fades.
fn voiced(f0: f64, amplitude: f64) -> Vec<f32> {
    let n = (WORD_S * RATE) as usize;
    let mut phase = 0.0;
    (0..n)
        .map(|i| {
            let t = i as f64 / n as f64;
            phase += std::f64::consts::TAU * f0 * (1.03 - 0.06 * t) / RATE;
            let fade = (t.min(1.0 - t) * 20.0).min(1.0);
            let x: f64 = (1..=6).map(|h| (phase * h as f64).sin() / h as f64).sum();
            (amplitude * fade * x / 2.45) as f32
        })
        .collect()
}

fn seconds(samples: &[f32]) -> f64 {
    samples.len() as f64 / RATE
}

/// The audio of the utterances in turn, and the result assembly makes of them with the real
/// acoustic features, as if the recogniser had found each word ("hello") and the diarizer
/// each speaker exactly.
pub fn synthetic_result(utterances: &[Utterance]) -> (Audio, AnalysisResult) {
    let mut samples = vec![0.0f32; (0.5 * RATE) as usize];
    let mut segments = Vec::new();
    let mut turns = Vec::new();
    for u in utterances {
        let start_s = seconds(&samples);
        let mut words = Vec::new();
        for _ in 0..u.words {
            let word_start_s = seconds(&samples);
            samples.extend(voiced(u.f0, u.amplitude));
            words.push(TimedWord {
                text: " hello".into(),
                start_s: word_start_s,
                end_s: seconds(&samples),
                confidence: 0.9,
            });
            samples.extend(vec![0.0; (WORD_GAP_S * RATE) as usize]);
        }
        let span = TimeSpan::new(start_s, seconds(&samples) - WORD_GAP_S);
        turns.push(SpeakerTurn {
            span,
            speaker: u.speaker,
        });
        segments.push(TranscriptSegment {
            start_s: span.start_s,
            end_s: span.end_s,
            words,
        });
        samples.extend(vec![0.0; (SEGMENT_GAP_S * RATE) as usize]);
    }
    let audio = Audio::new(samples);
    let speech: Vec<TimeSpan> = turns.iter().map(|t| t.span).collect();
    let result = assemble(&AssemblyInput {
        audio: &audio,
        speech: &speech,
        turns: &turns,
        transcript: &Transcript {
            language: "en".into(),
            segments,
        },
        features: &AcousticAnalyzer::new(),
        language_requested: Language::En,
        model_version: "test".into(),
    });
    (audio, result)
}

/// prosody-v1 annotates `result` the same way twice, down to the serialised bytes.
pub fn assert_prosody_repeats(audio: &Audio, result: &AnalysisResult) {
    let analyzer = ProsodyEmotion::new();
    let annotate = || {
        let mut annotated = result.clone();
        analyzer.annotate(audio, &mut annotated).unwrap();
        annotated
    };
    let (first, second) = (annotate(), annotate());
    assert_eq!(first, second);
    assert_eq!(
        serde_json::to_string(&first).unwrap(),
        serde_json::to_string(&second).unwrap()
    );
}

pub fn emotion(result: &AnalysisResult, segment: usize) -> &Emotion {
    result.segments[segment]
        .emotion
        .as_ref()
        .unwrap_or_else(|| panic!("segment {segment} has no emotion"))
}

pub fn arousal(result: &AnalysisResult, segment: usize) -> f64 {
    emotion(result, segment)
        .arousal
        .unwrap_or_else(|| panic!("segment {segment} has no arousal"))
}

/// Every word's emphasis of a segment; panics on a word without one.
pub fn emphases(result: &AnalysisResult, segment: usize) -> Vec<f64> {
    result.segments[segment]
        .words
        .iter()
        .map(|w| {
            w.emphasis
                .unwrap_or_else(|| panic!("{:?} has no emphasis", w.word))
        })
        .collect()
}

pub fn max_emphasis(result: &AnalysisResult, segment: usize) -> f64 {
    emphases(result, segment).into_iter().fold(0.0, f64::max)
}
