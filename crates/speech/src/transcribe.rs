//! Speech → timed words with Whisper through whisper.cpp.
//!
//! One [`WhisperContext`] (the weights) is shared by every job; each job gets its own state.
//! The model is loaded with its fallbacks (`model`). Speech regions are packed into 30 s windows
//! (`windows`), decoded with word timings (`decode`), merged into words (`words`), screened for
//! hallucinations (`guards`), mapped back to the audio's time (`place`) and split into
//! sentence-like segments (`segments`).

mod cuda;
mod decode;
mod faults;
mod gpu_states;
mod guards;
mod model;
mod place;
mod segments;
mod windows;
mod words;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::error::StageError;
use ecg_core::request::Language;
use ecg_core::stages::{AsrOptions, Transcriber, Transcript};
use serde::{Deserialize, Serialize};
use whisper_rs::{DtwModelPreset, WhisperContext, WhisperState};

use crate::models::model_name_of;
use faults::Fault;
use gpu_states::StateGate;
use segments::Placed;
use windows::Window;

/// Whisper base, 8-bit quantized by `make models`: 12–23 % faster than f16 on the CPUs measured,
/// at the same word error rate (BENCHMARKS.md).
const DEFAULT_MODEL: &str = "base-q8_0";

/// Set once the process gives up on the transcriptions still running (a shutdown past its grace
/// period: their jobs are back in the queue). whisper.cpp polls it between graph computations.
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// Stops every transcription in progress and any started later, for a process about to exit:
/// a transcription still computing while the process tears down its native libraries crashes it.
pub fn abandon_transcriptions() {
    ABANDONED.store(true, Ordering::Relaxed);
}

/// A region without words shorter than this is taken as a cough or a noise, not skipped speech.
const MIN_SKIPPED_REGION_S: f64 = 1.5;

/// How word start and end times are found; named `dtw` and `tokens` in settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WordTiming {
    /// Dynamic time warping over the cross-attention of the model's alignment heads: a token
    /// ends where the warping path reaches it. The default: on packed sentences it put
    /// sentence starts and ends within a few milliseconds, the heuristic within about 0.1 s.
    Dtw,
    /// whisper.cpp's timestamp-token heuristic: about as close on isolated words, but it drifts
    /// late towards the end of a full window.
    Tokens,
}

/// The recogniser's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AsrConfig {
    /// A model name (`tiny` … `large-v3-turbo`, quantized ones such as `base-q8_0`, found as
    /// `<model dir>/ggml-<name>.bin`) or the path of any whisper.cpp ggml file.
    pub model: String,
    /// Models tried in order when the configured one cannot be loaded; by default the standard
    /// sizes smaller than a named model.
    pub fallback_models: Option<Vec<String>>,
    /// Decoding threads; all available cores by default.
    pub threads: Option<usize>,
    /// Load the model on the GPU (builds with the `cuda` feature only).
    pub gpu: bool,
    /// How word times are found.
    pub word_timing: WordTiming,
    /// Beam width; 1 decodes greedily.
    pub beam_size: u8,
}

impl Default for AsrConfig {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_owned(),
            fallback_models: None,
            threads: None,
            gpu: true,
            word_timing: WordTiming::Dtw,
            beam_size: 1,
        }
    }
}

/// Why a decode failed: resources (allocation, encoder or decoder failing) are worth a retry on
/// the CPU when they ran out on the GPU.
enum Failure {
    Resources(String),
    Other(StageError),
}

impl From<Failure> for StageError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Resources(m) => StageError::Processing(m),
            Failure::Other(e) => e,
        }
    }
}

/// Whisper via whisper.cpp, loaded once and shared by every job.
pub struct WhisperTranscriber {
    /// The file's stem, e.g. `ggml-base`: what was really loaded, for `model_version`.
    name: String,
    path: PathBuf,
    /// Alignment heads for DTW word timing, when the model's shape is a known one.
    dtw: Option<DtwModelPreset>,
    threads: usize,
    beam_size: u8,
    /// The context jobs use by default.
    main: Arc<WhisperContext>,
    main_on_gpu: bool,
    /// Holds GPU jobs beyond the decoding states that fit on the card.
    gpu_states: StateGate,
    /// A CPU copy, loaded when a job asks for the CPU or the GPU runs out of memory.
    cpu: Mutex<Option<Arc<WhisperContext>>>,
}

impl WhisperTranscriber {
    /// Loads the configured model, else each fallback in turn.
    pub fn new(config: &AsrConfig) -> Result<Self, StageError> {
        whisper_rs::install_logging_hooks();
        let loaded = model::load_first(config)?;
        let threads = config.threads.filter(|&t| t > 0).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        });
        let on_gpu = loaded.on_gpu || faults::injected(Fault::GpuOutOfMemory);
        let memory = loaded
            .on_gpu
            .then(|| gpu_states::measure(&loaded.context))
            .flatten();
        if let Some(m) = memory {
            tracing::info!(
                state_mib = m.bytes >> 20,
                states_that_fit = m.fit,
                "GPU decoding states measured"
            );
        }
        tracing::info!(model = %loaded.path.display(), on_gpu, dtw = loaded.dtw.is_some(), threads, "Whisper model loaded");
        Ok(Self {
            name: model_name_of(&loaded.path),
            path: loaded.path,
            dtw: loaded.dtw,
            threads,
            beam_size: config.beam_size.max(1),
            main: Arc::new(loaded.context),
            main_on_gpu: on_gpu,
            gpu_states: StateGate::new(memory.map_or(usize::MAX, |m| m.fit)),
            cpu: Mutex::new(None),
        })
    }

    /// The CPU context: the main one unless that is on the GPU.
    fn cpu_context(&self) -> Result<Arc<WhisperContext>, StageError> {
        if !self.main_on_gpu {
            return Ok(Arc::clone(&self.main));
        }
        let mut cpu = self
            .cpu
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = cpu.as_ref() {
            return Ok(Arc::clone(ctx));
        }
        let ctx = Arc::new(
            model::new_context(&self.path, self.dtw.as_ref(), false)
                .map_err(StageError::ModelLoading)?,
        );
        *cpu = Some(Arc::clone(&ctx));
        Ok(ctx)
    }

    fn run(
        &self,
        context: &WhisperContext,
        on_gpu: bool,
        audio: &Audio,
        speech: &[TimeSpan],
        windows: &[Window],
        language: Language,
    ) -> Result<Transcript, Failure> {
        let _gpu_state = on_gpu.then(|| self.gpu_states.enter());
        if faults::injected(Fault::out_of_memory(on_gpu)) {
            return Err(Failure::Resources(
                "cannot allocate the recogniser: out of memory (injected)".into(),
            ));
        }
        let mut state = context
            .create_state()
            .map_err(|e| Failure::Resources(format!("cannot allocate the recogniser: {e}")))?;
        // Detected on the first window, which packing fills with the most speech, then kept.
        let mut code: Option<&'static str> = match language {
            Language::Auto => None,
            forced => Some(forced.as_str()),
        };
        let mut placed = Vec::new();
        for window in windows {
            self.transcribe_window(context, &mut state, window, &mut code, &mut placed)?;
        }
        // Whisper can end a window early, after one voice, or jump over a turn, and never come
        // back to it: each such region gets one more chance, at the start of a window of its own.
        let skipped = unheard_regions(&windows::merged(audio, speech, 0.0), &placed);
        if !skipped.is_empty() {
            tracing::debug!(
                regions = skipped.len(),
                "decoding regions Whisper skipped again"
            );
        }
        for window in windows::pack(audio, &skipped) {
            self.transcribe_window(context, &mut state, &window, &mut code, &mut placed)?;
        }
        // Regions do not overlap: ordering by region puts the retried words back in place and
        // keeps each region's words in the order Whisper heard them.
        placed.sort_by(|a, b| a.region.start_s.total_cmp(&b.region.start_s));
        put_in_order(&mut placed);
        Ok(Transcript {
            language: code.unwrap_or(UNKNOWN_LANGUAGE).to_owned(),
            segments: segments::segment(&placed),
        })
    }

    /// Decodes one window and places its words; the first window decoded without a language
    /// sets it.
    fn transcribe_window(
        &self,
        context: &WhisperContext,
        state: &mut WhisperState,
        window: &Window,
        code: &mut Option<&'static str>,
        placed: &mut Vec<Placed>,
    ) -> Result<(), Failure> {
        let decoded = self.decode(context, state, window, *code)?;
        if code.is_none() {
            *code = whisper_rs::get_lang_str(state.full_lang_id_from_state());
        }
        place::place_words(
            window,
            decoded,
            words::uses_spaces(code.unwrap_or_default()),
            placed,
        );
        Ok(())
    }
}

/// The language reported when Whisper never ran, so never detected one.
const UNKNOWN_LANGUAGE: &str = "unknown";

/// Speech regions, long enough to hold a sentence, on which no word was placed.
fn unheard_regions(regions: &[TimeSpan], placed: &[Placed]) -> Vec<TimeSpan> {
    regions
        .iter()
        .copied()
        .filter(|region| region.duration_s() >= MIN_SKIPPED_REGION_S)
        .filter(|region| {
            placed
                .iter()
                .all(|p| p.word.end_s <= region.start_s || p.word.start_s >= region.end_s)
        })
        .collect()
}

/// Words never go back in time and never overlap the next one.
fn put_in_order(placed: &mut [Placed]) {
    for i in 1..placed.len() {
        let prev_start = placed[i - 1].word.start_s;
        let w = &mut placed[i].word;
        w.start_s = w.start_s.max(prev_start);
        w.end_s = w.end_s.max(w.start_s);
        let next_start = w.start_s;
        let prev = &mut placed[i - 1].word;
        prev.end_s = prev.end_s.min(next_start).max(prev.start_s);
    }
}

impl Transcriber for WhisperTranscriber {
    fn transcribe(
        &self,
        audio: &Audio,
        speech: &[TimeSpan],
        options: AsrOptions,
    ) -> Result<Transcript, StageError> {
        let windows = windows::pack(audio, speech);
        if windows.is_empty() {
            return Ok(Transcript {
                language: match options.language {
                    Language::Auto => UNKNOWN_LANGUAGE.to_owned(),
                    forced => forced.as_str().to_owned(),
                },
                segments: Vec::new(),
            });
        }
        if !(options.use_gpu && self.main_on_gpu) {
            return Ok(self.run(
                &*self.cpu_context()?,
                false,
                audio,
                speech,
                &windows,
                options.language,
            )?);
        }
        match self.run(&self.main, true, audio, speech, &windows, options.language) {
            Err(Failure::Resources(gpu)) => {
                tracing::warn!(error = %gpu, "Whisper failed on the GPU; retrying on the CPU");
                let retry = self.cpu_context().and_then(|cpu| {
                    Ok(self.run(&cpu, false, audio, speech, &windows, options.language)?)
                });
                retry.map_err(|cpu| {
                    StageError::GpuMemory(format!("{gpu}; on the CPU as well: {cpu}"))
                })
            }
            other => Ok(other?),
        }
    }

    fn model_name(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecg_core::stages::TimedWord;

    #[test]
    fn regions_without_words_are_found_for_another_pass() {
        let region = |start_s, end_s| TimeSpan::new(start_s, end_s);
        let regions = [region(10.0, 20.0), region(25.0, 26.0), region(30.0, 45.0)];
        let heard_at = |start_s: f64| Placed {
            word: TimedWord {
                text: " word".into(),
                start_s,
                end_s: start_s + 0.3,
                confidence: 0.9,
            },
            region: region(10.0, 45.0),
            opens_decoded_segment: false,
        };
        // The one-second region is too short to hold a skipped sentence; a word in the pause
        // after a region is not one of its words.
        assert_eq!(
            unheard_regions(&regions, &[heard_at(12.0), heard_at(22.0)]),
            [region(30.0, 45.0)]
        );
        assert!(unheard_regions(&regions, &[heard_at(19.8), heard_at(44.9)]).is_empty());
        assert_eq!(unheard_regions(&regions, &[]).len(), 2);
    }

    #[test]
    fn words_are_put_in_order() {
        let p = |start_s, end_s| Placed {
            word: TimedWord {
                text: " w".into(),
                start_s,
                end_s,
                confidence: 1.0,
            },
            region: TimeSpan::new(0.0, 10.0),
            opens_decoded_segment: false,
        };
        let mut words = [p(1.0, 2.0), p(1.5, 1.8), p(1.4, 1.3)];
        put_in_order(&mut words);
        let times: Vec<(f64, f64)> = words
            .iter()
            .map(|w| (w.word.start_s, w.word.end_s))
            .collect();
        assert_eq!(times, [(1.0, 1.5), (1.5, 1.5), (1.5, 1.5)]);
    }
}
