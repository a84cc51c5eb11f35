//! The pipeline's stages. They are synchronous (CPU/GPU bound); each implementation owns its
//! loaded model and is shared by every job, so models load once per process.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audio::{Audio, TimeSpan};
use crate::contract::{AcousticFeatures, AnalysisResult};
use crate::error::StageError;
use crate::request::{Language, SpeakerHint};

/// Media file → 16 kHz mono. Failures are [`StageError::Audio`].
pub trait Decoder: Send + Sync {
    fn decode(&self, media: &Path) -> Result<Audio, StageError>;
}

/// Where people speak. Everything downstream only looks inside these regions.
pub trait VoiceDetector: Send + Sync {
    fn speech_regions(&self, audio: &Audio) -> Result<Vec<TimeSpan>, StageError>;

    /// For `/health`: `Ok(detail)` when the stage can run, `Err(reason)` otherwise.
    fn readiness(&self) -> Result<String, String> {
        Ok("voice activity ready".to_owned())
    }
}

/// A stretch of speech by one speaker; speakers are numbered from 0 in any order.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerTurn {
    pub span: TimeSpan,
    pub speaker: usize,
}

/// Who speaks when, inside the speech regions.
pub trait Diarizer: Send + Sync {
    fn speaker_turns(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        hint: SpeakerHint,
    ) -> Result<Vec<SpeakerTurn>, StageError>;

    /// For `/health`: `Ok(detail)` when the stage can run, `Err(reason)` otherwise.
    fn readiness(&self) -> Result<String, String> {
        Ok("speakers ready".to_owned())
    }
}

/// Treats all speech as one speaker: the honest answer while no speaker model is configured.
pub struct SingleSpeaker;

impl Diarizer for SingleSpeaker {
    fn speaker_turns(
        &self,
        _audio: &Audio,
        speech: &[TimeSpan],
        _hint: SpeakerHint,
    ) -> Result<Vec<SpeakerTurn>, StageError> {
        Ok(speech
            .iter()
            .map(|&span| SpeakerTurn { span, speaker: 0 })
            .collect())
    }
}

/// Options of one transcription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsrOptions {
    pub language: Language,
    pub use_gpu: bool,
}

/// A word with its timing, as the recogniser produced it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedWord {
    /// The word's text as decoded, including a leading space where the language has one.
    pub text: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Mean token probability of the word, in [0, 1].
    pub confidence: f64,
}

/// A sentence-like stretch of recognised words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TranscriptSegment {
    pub start_s: f64,
    pub end_s: f64,
    pub words: Vec<TimedWord>,
}

/// What the recogniser heard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The language detected, or the one forced by the request.
    pub language: String,
    pub segments: Vec<TranscriptSegment>,
}

/// Speech → words with timings and confidences.
pub trait Transcriber: Send + Sync {
    fn transcribe(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        options: AsrOptions,
    ) -> Result<Transcript, StageError>;

    /// The name of the model that runs, for `metadata.model_version`.
    fn model_name(&self) -> String;

    /// For `/health`: `Ok(detail)` when the stage can run, `Err(reason)` otherwise.
    fn readiness(&self) -> Result<String, String> {
        Ok(format!("{} loaded", self.model_name()))
    }
}

/// Per-word acoustic measurements.
pub trait FeatureExtractor: Send + Sync {
    fn measure(&self, samples: &[f32]) -> AcousticFeatures;
}

/// Emotion and emphasis cues: fills `segments[].emotion`, `words[].emphasis` and
/// `metadata.emotion_method` of an assembled result.
pub trait EmotionAnalyzer: Send + Sync {
    fn annotate(&self, audio: &Audio, result: &mut AnalysisResult) -> Result<(), StageError>;

    /// For `/health`: `Ok(detail)` when the stage can run, `Err(reason)` otherwise.
    fn readiness(&self) -> Result<String, String> {
        Ok("emotion ready".to_owned())
    }
}
