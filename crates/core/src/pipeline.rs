//! The speech pipeline: fetch → decode → voice activity → speakers → words → features → result.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tracing::{Instrument, info_span};

use crate::assemble::{AssemblyInput, assemble};
use crate::audio::Audio;
use crate::contract::AnalysisResult;
use crate::error::{PipelineError, StageError};
use crate::job::{format_timestamp, round_ms};
use crate::metrics::{REAL_TIME_FACTOR, STAGE_DURATION};
use crate::ports::BlobFetcher;
use crate::progress::Step;
use crate::request::{JobSpec, Language};
use crate::stages::{
    AsrOptions, Decoder, Diarizer, EmotionAnalyzer, FeatureExtractor, Transcriber, Transcript,
    VoiceDetector,
};

/// Told each time the pipeline reaches a progress step.
#[async_trait]
pub trait ProgressSink: Send + Sync {
    async fn reached(&self, step: Step);
}

/// A sink for callers that do not report progress.
pub struct NoProgress;

#[async_trait]
impl ProgressSink for NoProgress {
    async fn reached(&self, _step: Step) {}
}

/// The stages of one analysis, each loaded once and shared by every job.
#[derive(Clone)]
pub struct Pipeline {
    pub fetcher: Arc<dyn BlobFetcher>,
    pub decoder: Arc<dyn Decoder>,
    pub voice: Arc<dyn VoiceDetector>,
    pub diarizer: Arc<dyn Diarizer>,
    pub transcriber: Arc<dyn Transcriber>,
    pub features: Arc<dyn FeatureExtractor>,
    /// Runs when a job asks for emotion detection; without one the step is skipped.
    pub emotion: Option<Arc<dyn EmotionAnalyzer>>,
    /// Where downloads are kept while a job decodes them; the system's temp dir when `None`.
    pub scratch_dir: Option<PathBuf>,
}

impl Pipeline {
    /// Runs every stage for one job and reports each progress step before `Done`.
    pub async fn run(
        &self,
        spec: &JobSpec,
        progress: &dyn ProgressSink,
    ) -> Result<AnalysisResult, PipelineError> {
        let started = Instant::now();
        let audio = Arc::new(self.fetch_and_decode(spec, progress).await?);

        progress.reached(Step::DetectingSpeech).await;
        let voice = Arc::clone(&self.voice);
        let a = Arc::clone(&audio);
        let speech = Arc::new(blocking("vad", move || voice.speech_regions(&a)).await?);
        tracing::info!(regions = speech.len(), "speech regions found");

        progress.reached(Step::IdentifyingSpeakers).await;
        let diarizer = Arc::clone(&self.diarizer);
        let (a, s, hint) = (Arc::clone(&audio), Arc::clone(&speech), spec.speakers);
        let turns =
            Arc::new(blocking("diarize", move || diarizer.speaker_turns(&a, &s, hint)).await?);

        progress.reached(Step::Transcribing).await;
        let transcript = if speech.is_empty() {
            // No speech, no words: never let the recogniser hallucinate over silence or music.
            let language = match spec.language {
                Language::Auto => "unknown".to_owned(),
                forced => forced.as_str().to_owned(),
            };
            Transcript {
                language,
                segments: Vec::new(),
            }
        } else {
            let transcriber = Arc::clone(&self.transcriber);
            let (a, s) = (Arc::clone(&audio), Arc::clone(&speech));
            let options = AsrOptions {
                language: spec.language,
                use_gpu: spec.enable_gpu,
            };
            blocking("asr", move || transcriber.transcribe(&a, &s, options)).await?
        };

        // Words, speakers and features come together first: emotion cues are read from them.
        let features = Arc::clone(&self.features);
        let language_requested = spec.language;
        let model_version = self.transcriber.model_name();
        let a = Arc::clone(&audio);
        let mut result = blocking("assemble", move || {
            Ok(assemble(&AssemblyInput {
                audio: &a,
                speech: &speech,
                turns: &turns,
                transcript: &transcript,
                features: features.as_ref(),
                language_requested,
                model_version,
            }))
        })
        .await?;

        if let Some(emotion) = self.emotion.as_ref().filter(|_| spec.emotion_detection) {
            progress.reached(Step::AnalysingEmotion).await;
            let emotion = Arc::clone(emotion);
            result = blocking("emotion", move || {
                let mut result = result;
                emotion.annotate(&audio, &mut result)?;
                Ok(result)
            })
            .await?;
        }

        progress.reached(Step::Assembling).await;
        let processing_s = started.elapsed().as_secs_f64();
        if result.duration > 0.0 {
            metrics::histogram!(REAL_TIME_FACTOR).record(processing_s / result.duration);
        }
        result.metadata.processing_time = round_ms(processing_s);
        result.metadata.processed_at = Some(format_timestamp(jiff::Timestamp::now()));
        Ok(result)
    }

    async fn fetch_and_decode(
        &self,
        spec: &JobSpec,
        progress: &dyn ProgressSink,
    ) -> Result<Audio, PipelineError> {
        let mut scratch = tempfile::Builder::new();
        scratch.prefix("ecg-job-");
        let scratch = match &self.scratch_dir {
            Some(dir) => scratch.tempdir_in(dir),
            None => scratch.tempdir(),
        }
        .map_err(|e| {
            PipelineError::stage(
                "fetch",
                StageError::Processing(format!("no scratch space: {e}")),
            )
        })?;
        let dest = scratch.path().join(spec.source.file_name());
        let fetch_started = Instant::now();
        let media = self
            .fetcher
            .fetch(&spec.source, &dest)
            .instrument(info_span!("stage", name = "fetch"))
            .await;
        record_stage("fetch", fetch_started);
        let media = media?;
        progress.reached(Step::Downloaded).await;
        let decoder = Arc::clone(&self.decoder);
        let audio = blocking("decode", move || decoder.decode(&media)).await?;
        // The download is only needed until it is decoded; the scratch dir goes with it.
        drop(scratch);
        Ok(audio)
    }
}

/// Runs a CPU-bound stage off the async runtime, inside its own `stage` span.
async fn blocking<T, F>(stage: &'static str, work: F) -> Result<T, PipelineError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StageError> + Send + 'static,
{
    let span = info_span!("stage", name = stage);
    let inner = span.clone();
    let started = Instant::now();
    let done = tokio::task::spawn_blocking(move || inner.in_scope(work))
        .instrument(span)
        .await;
    record_stage(stage, started);
    done.map_err(|e| {
        PipelineError::stage(stage, StageError::Processing(format!("stage crashed: {e}")))
    })?
    .map_err(|e| PipelineError::stage(stage, e))
}

/// A stage's time counts whether it succeeded or not: a download that failed after its retries
/// took that long all the same. A stage cut short by a cancelled job is not recorded.
fn record_stage(stage: &'static str, started: Instant) {
    metrics::histogram!(STAGE_DURATION, "stage" => stage).record(started.elapsed().as_secs_f64());
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::audio::TimeSpan;
    use crate::contract::AcousticFeatures;
    use crate::error::FetchError;
    use crate::job::JobId;
    use crate::request::{MediaSource, SpeakerHint};
    use crate::stages::{AsrOptions, SingleSpeaker};

    /// Writes the download into the scratch dir, then succeeds, fails or hangs.
    enum Fetcher {
        Ok,
        Fail,
        Hang,
    }

    #[async_trait]
    impl BlobFetcher for Fetcher {
        async fn fetch(&self, _: &MediaSource, dest: &Path) -> Result<PathBuf, FetchError> {
            tokio::fs::write(dest, b"media").await.unwrap();
            match self {
                Fetcher::Ok => Ok(dest.to_path_buf()),
                Fetcher::Fail => Err(FetchError::permanent("connection reset")),
                Fetcher::Hang => std::future::pending().await,
            }
        }
    }

    /// Decodes to one second of silence, after `delay`, or fails.
    struct Decode {
        fail: bool,
        delay: Duration,
    }

    impl Decoder for Decode {
        fn decode(&self, media: &Path) -> Result<Audio, StageError> {
            assert!(media.exists(), "the download is there while it is decoded");
            std::thread::sleep(self.delay);
            if self.fail {
                return Err(StageError::Audio("not media".into()));
            }
            Ok(Audio::new(vec![0.0; 16_000]))
        }
    }

    struct NoSpeech;

    impl VoiceDetector for NoSpeech {
        fn speech_regions(&self, _: &Audio) -> Result<Vec<TimeSpan>, StageError> {
            Ok(Vec::new())
        }
    }

    struct NoWords;

    impl Transcriber for NoWords {
        fn transcribe(
            &self,
            _: &Audio,
            _: &[TimeSpan],
            _: AsrOptions,
        ) -> Result<Transcript, StageError> {
            unreachable!("no speech, no transcription")
        }

        fn model_name(&self) -> String {
            "none".into()
        }
    }

    struct Flat;

    impl FeatureExtractor for Flat {
        fn measure(&self, _: &[f32]) -> AcousticFeatures {
            AcousticFeatures {
                volume_db: 0.0,
                pitch_hz: 0.0,
                spectral_centroid: 0.0,
            }
        }
    }

    fn pipeline(scratch: &Path, fetcher: Fetcher, decoder: Decode) -> Pipeline {
        Pipeline {
            fetcher: Arc::new(fetcher),
            decoder: Arc::new(decoder),
            voice: Arc::new(NoSpeech),
            diarizer: Arc::new(SingleSpeaker),
            transcriber: Arc::new(NoWords),
            features: Arc::new(Flat),
            emotion: None,
            scratch_dir: Some(scratch.to_path_buf()),
        }
    }

    fn spec() -> JobSpec {
        JobSpec {
            job_id: JobId::new(),
            source: MediaSource::Http {
                url: "https://media.example/v.mp4".parse().unwrap(),
            },
            callback_base: None,
            enable_gpu: false,
            emotion_detection: false,
            language: Language::En,
            max_workers: 1,
            speakers: SpeakerHint::default(),
        }
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    const QUICK: Decode = Decode {
        fail: false,
        delay: Duration::ZERO,
    };

    #[tokio::test]
    async fn the_scratch_dir_is_removed_on_success_and_on_failure() {
        let scratch = tempfile::tempdir().unwrap();
        let done = pipeline(scratch.path(), Fetcher::Ok, QUICK)
            .run(&spec(), &NoProgress)
            .await;
        assert!(done.is_ok(), "{done:?}");
        assert_eq!(entries(scratch.path()), 0);

        let err = pipeline(scratch.path(), Fetcher::Fail, QUICK)
            .run(&spec(), &NoProgress)
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::DownloadError);
        assert_eq!(entries(scratch.path()), 0);

        let undecodable = Decode {
            fail: true,
            delay: Duration::ZERO,
        };
        let err = pipeline(scratch.path(), Fetcher::Ok, undecodable)
            .run(&spec(), &NoProgress)
            .await
            .unwrap_err();
        assert_eq!(err.code(), crate::error::ErrorCode::AudioExtractionError);
        assert_eq!(entries(scratch.path()), 0);
    }

    /// A job stopped mid-download or mid-decode (shutdown, a lost lease) leaves nothing behind:
    /// dropping the job's future drops its scratch dir.
    #[tokio::test]
    async fn the_scratch_dir_is_removed_when_a_job_is_cancelled() {
        let scratch = tempfile::tempdir().unwrap();
        let p = pipeline(scratch.path(), Fetcher::Hang, QUICK);
        let spec = spec();
        let run = p.run(&spec, &NoProgress);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), run)
                .await
                .is_err()
        );
        assert_eq!(entries(scratch.path()), 0, "cancelled mid-download");

        let slow = Decode {
            fail: false,
            delay: Duration::from_millis(500),
        };
        let p = pipeline(scratch.path(), Fetcher::Ok, slow);
        let task = tokio::spawn(async move { p.run(&spec, &NoProgress).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(entries(scratch.path()), 1, "decoding");
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(entries(scratch.path()), 0, "cancelled mid-decode");
    }
}
