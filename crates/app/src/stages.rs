//! The pipeline's stages, loaded once per process and shared by every job.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use ecg_audio::{AcousticAnalyzer, DecodeLimits, MediaDecoder};
use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::contract::AnalysisResult;
use ecg_core::error::StageError;
use ecg_core::metrics::MODEL_LOAD;
use ecg_core::pipeline::Pipeline;
use ecg_core::ports::{BlobFetcher, HealthCheck};
use ecg_core::request::SpeakerHint;
use ecg_core::stages::{
    AsrOptions, Diarizer, EmotionAnalyzer, SpeakerTurn, Transcriber, Transcript, VoiceDetector,
};
use ecg_diarize::{DiarizeConfig, SpeakerDiarizer};
use ecg_emotion::EmotionConfig;
use ecg_speech::{AsrConfig, SileroVad, VadConfig, WhisperTranscriber};
use serde::{Deserialize, Serialize};

/// The model stages' names, in `/health` and in the model load metric.
const SPEECH_RECOGNITION: &str = "speech_recognition";
const VOICE_ACTIVITY: &str = "voice_activity";
const SPEAKERS: &str = "speakers";
const EMOTION: &str = "emotion";

/// Which models run and how, one config per model stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    pub asr: AsrConfig,
    pub vad: VadConfig,
    pub diarize: DiarizeConfig,
    pub emotion: EmotionConfig,
}

/// Builds the pipeline. A model that cannot load does not stop the process: its stage fails
/// every job with MODEL_LOADING_ERROR and `/health` names it, until the operator fixes it.
pub fn pipeline(
    models: &ModelConfig,
    decode: DecodeLimits,
    fetcher: Arc<dyn BlobFetcher>,
) -> Pipeline {
    Pipeline {
        fetcher,
        decoder: Arc::new(MediaDecoder::with_limits(decode)),
        voice: Arc::new(load(VOICE_ACTIVITY, || {
            SileroVad::new(models.vad.clone()).map(Arc::new)
        })),
        diarizer: Arc::new(load(SPEAKERS, || {
            SpeakerDiarizer::new(models.diarize.clone()).map(Arc::new)
        })),
        transcriber: Arc::new(load(SPEECH_RECOGNITION, || {
            WhisperTranscriber::new(&models.asr).map(Arc::new)
        })),
        features: Arc::new(AcousticAnalyzer::new()),
        emotion: Some(Arc::new(load(EMOTION, || {
            ecg_emotion::emotion_from_config(&models.emotion)
        }))),
        scratch_dir: None,
    }
}

/// `/health`'s view of the models: one check per model stage, each loaded or saying why not, so
/// that every missing model is named at once.
pub fn health_checks(pipeline: &Pipeline) -> Vec<Arc<dyn HealthCheck>> {
    let transcriber = Arc::clone(&pipeline.transcriber);
    let voice = Arc::clone(&pipeline.voice);
    let diarizer = Arc::clone(&pipeline.diarizer);
    let mut checks: Vec<Arc<dyn HealthCheck>> = vec![
        Arc::new(StageCheck::new(SPEECH_RECOGNITION, move || {
            transcriber.readiness()
        })),
        Arc::new(StageCheck::new(VOICE_ACTIVITY, move || voice.readiness())),
        Arc::new(StageCheck::new(SPEAKERS, move || diarizer.readiness())),
    ];
    if let Some(emotion) = pipeline.emotion.clone() {
        checks.push(Arc::new(StageCheck::new(EMOTION, move || {
            emotion.readiness()
        })));
    }
    checks
}

/// Loads one model stage and records how long it took, failed loads included.
fn load<T: ?Sized>(
    model: &'static str,
    load: impl FnOnce() -> Result<Arc<T>, StageError>,
) -> Loaded<T> {
    let started = Instant::now();
    let loaded = load();
    metrics::gauge!(MODEL_LOAD, "model" => model).set(started.elapsed().as_secs_f64());
    Loaded::from(loaded)
}

/// A model stage, or the reason it failed to load.
enum Loaded<T: ?Sized> {
    Ready(Arc<T>),
    Failed(String),
}

impl<T: ?Sized> From<Result<Arc<T>, StageError>> for Loaded<T> {
    fn from(loaded: Result<Arc<T>, StageError>) -> Self {
        match loaded {
            Ok(stage) => Loaded::Ready(stage),
            Err(e) => {
                tracing::error!(error = %e, "model failed to load; jobs will fail with MODEL_LOADING_ERROR");
                Loaded::Failed(e.to_string())
            }
        }
    }
}

impl<T: ?Sized> Loaded<T> {
    fn get(&self) -> Result<&T, StageError> {
        match self {
            Loaded::Ready(stage) => Ok(stage),
            Loaded::Failed(reason) => Err(StageError::ModelLoading(reason.clone())),
        }
    }
}

impl<T: VoiceDetector + ?Sized> VoiceDetector for Loaded<T> {
    fn speech_regions(&self, audio: &Audio) -> Result<Vec<TimeSpan>, StageError> {
        self.get()?.speech_regions(audio)
    }

    fn readiness(&self) -> Result<String, String> {
        self.get().map_err(|e| e.to_string())?.readiness()
    }
}

impl<T: Transcriber + ?Sized> Transcriber for Loaded<T> {
    fn transcribe(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        options: AsrOptions,
    ) -> Result<Transcript, StageError> {
        self.get()?.transcribe(audio, speech, options)
    }

    fn model_name(&self) -> String {
        self.get()
            .map_or_else(|_| "none".to_owned(), Transcriber::model_name)
    }

    fn readiness(&self) -> Result<String, String> {
        self.get().map_err(|e| e.to_string())?.readiness()
    }
}

impl<T: Diarizer + ?Sized> Diarizer for Loaded<T> {
    fn speaker_turns(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        hint: SpeakerHint,
    ) -> Result<Vec<SpeakerTurn>, StageError> {
        self.get()?.speaker_turns(audio, speech, hint)
    }

    fn readiness(&self) -> Result<String, String> {
        self.get().map_err(|e| e.to_string())?.readiness()
    }
}

impl<T: EmotionAnalyzer + ?Sized> EmotionAnalyzer for Loaded<T> {
    fn annotate(&self, audio: &Audio, result: &mut AnalysisResult) -> Result<(), StageError> {
        self.get()?.annotate(audio, result)
    }

    fn readiness(&self) -> Result<String, String> {
        self.get().map_err(|e| e.to_string())?.readiness()
    }
}

/// One stage's readiness under its name.
struct StageCheck<F> {
    name: &'static str,
    readiness: F,
}

impl<F> StageCheck<F> {
    fn new(name: &'static str, readiness: F) -> Self {
        Self { name, readiness }
    }
}

#[async_trait]
impl<F> HealthCheck for StageCheck<F>
where
    F: Fn() -> Result<String, String> + Send + Sync,
{
    fn name(&self) -> &'static str {
        self.name
    }

    async fn check(&self) -> Result<String, String> {
        (self.readiness)()
    }
}
