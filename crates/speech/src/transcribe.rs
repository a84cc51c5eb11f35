//! Speech → timed words with Whisper through whisper.cpp.
//!
//! One [`WhisperContext`] (the weights) is shared by every job; each job gets its own state.
//! Speech regions are packed into 30 s windows (`windows`), decoded with word timings, merged
//! into words (`words`), screened for hallucinations (`guards`), mapped back to the audio's time
//! and split into sentence-like segments (`segments`).

mod guards;
mod segments;
mod windows;
mod words;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::error::StageError;
use ecg_core::request::Language;
use ecg_core::stages::{AsrOptions, TimedWord, Transcriber, Transcript};
use serde::{Deserialize, Serialize};
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters, WhisperState,
};

use crate::models::{WhisperShape, model_name_of, smaller_whisper_models, whisper_model_path};
use ecg_models::model_dir;
use segments::Placed;
use windows::Window;
use words::{Token, Word};

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

impl AsrConfig {
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
    /// A CPU copy, loaded when a job asks for the CPU or the GPU runs out of memory.
    cpu: Mutex<Option<Arc<WhisperContext>>>,
}

impl WhisperTranscriber {
    /// Loads the configured model, else each fallback in turn.
    pub fn new(config: &AsrConfig) -> Result<Self, StageError> {
        whisper_rs::install_logging_hooks();
        let dir = model_dir();
        let want_gpu = cfg!(feature = "cuda") && config.gpu;
        let mut failures = Vec::new();
        for candidate in config.candidates() {
            let path = whisper_model_path(&candidate, &dir);
            match load(&path, config.word_timing, want_gpu) {
                Ok((context, dtw, on_gpu)) => {
                    if !failures.is_empty() {
                        tracing::warn!(model = %path.display(), failed = %failures.join("; "), "loaded a fallback Whisper model");
                    }
                    let threads = config.threads.filter(|&t| t > 0).unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
                    });
                    tracing::info!(model = %path.display(), on_gpu, dtw = dtw.is_some(), threads, "Whisper model loaded");
                    return Ok(Self {
                        name: model_name_of(&path),
                        path,
                        dtw,
                        threads,
                        beam_size: config.beam_size.max(1),
                        main: Arc::new(context),
                        main_on_gpu: on_gpu,
                        cpu: Mutex::new(None),
                    });
                }
                Err(e) => failures.push(format!("{}: {e}", path.display())),
            }
        }
        Err(StageError::ModelLoading(format!(
            "no Whisper model could be loaded (run `make models` or set ECG_ASR_MODEL): {}",
            failures.join("; ")
        )))
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
            new_context(&self.path, self.dtw.as_ref(), false).map_err(StageError::ModelLoading)?,
        );
        *cpu = Some(Arc::clone(&ctx));
        Ok(ctx)
    }

    fn run(
        &self,
        context: &WhisperContext,
        audio: &Audio,
        windows: &[Window],
        language: Language,
    ) -> Result<Transcript, Failure> {
        let mut state = context
            .create_state()
            .map_err(|e| Failure::Resources(format!("cannot allocate the recogniser: {e}")))?;
        // Detected on the first window, which packing fills with the most speech, then kept.
        let mut code: Option<&'static str> = match language {
            Language::Auto => None,
            forced => Some(forced.as_str()),
        };
        let mut placed = Vec::new();
        let mut skipped = Vec::new();
        for window in windows {
            let before = placed.len();
            self.transcribe_window(context, &mut state, window, &mut code, &mut placed)?;
            skipped.extend(unheard_regions(window, &placed[before..]));
        }
        // Whisper can end a window early, after one voice, and never come back to the next
        // region: each such region gets one more chance, at the start of a window of its own.
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
        place_words(
            window,
            decoded,
            words::uses_spaces(code.unwrap_or_default()),
            placed,
        );
        Ok(())
    }

    /// Runs Whisper on one window and returns its segments' text tokens.
    fn decode(
        &self,
        context: &WhisperContext,
        state: &mut WhisperState,
        window: &Window,
        language: Option<&'static str>,
    ) -> Result<Vec<Decoded>, Failure> {
        let strategy = if self.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: i32::from(self.beam_size),
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 5 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(i32::try_from(self.threads).unwrap_or(i32::MAX));
        params.set_language(language);
        params.set_translate(false);
        // Windows are unrelated stretches of speech: conditioning on the previous text only
        // carries errors and loops across them.
        params.set_no_context(true);
        // Timestamp tokens stay on: they let Whisper seek through a region longer than 30 s.
        params.set_single_segment(false);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        // Music notes, brackets and the like: what Whisper writes over non-speech.
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.2);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        // A closure without captures: whisper-rs hands the callback its closure by address.
        params.set_abort_callback_safe(|| ABANDONED.load(Ordering::Relaxed));
        state.full(params, &window.samples).map_err(|e| match e {
            whisper_rs::WhisperError::NoSamples => {
                Failure::Other(StageError::Processing("an empty window".into()))
            }
            other => Failure::Resources(format!("Whisper failed: {other}")),
        })?;

        let eot = context.token_eot();
        let dtw = self.dtw.is_some();
        // With DTW a token starts where the one before it in the window was complete.
        let mut previous_end: Option<f64> = None;
        let mut out = Vec::new();
        for segment in state.as_iter() {
            let mut tokens = Vec::new();
            let mut logprob_sum = 0.0f32;
            for i in 0..segment.n_tokens() {
                let Some(token) = segment.get_token(i) else {
                    continue;
                };
                // Everything from end-of-text on is special: timestamps, language, task.
                if token.token_id() >= eot {
                    continue;
                }
                let data = token.token_data();
                let bytes = token.to_bytes().map_err(|e| {
                    Failure::Other(StageError::Processing(format!("Whisper token text: {e}")))
                })?;
                logprob_sum += data.plog;
                let (start_s, end_s) = if dtw {
                    let end_s = centiseconds(data.t_dtw);
                    let start_s = previous_end.unwrap_or(centiseconds(data.t0));
                    previous_end = Some(end_s);
                    (start_s.min(end_s), end_s)
                } else {
                    (centiseconds(data.t0), centiseconds(data.t1))
                };
                tokens.push(Token {
                    bytes: bytes.to_vec(),
                    probability: data.p,
                    start_s,
                    end_s,
                });
            }
            let avg_logprob = logprob_sum / tokens.len().max(1) as f32;
            out.push(Decoded {
                tokens,
                no_speech_prob: segment.no_speech_probability(),
                avg_logprob,
            });
        }
        if window.samples.len() <= windows::WINDOW_SAMPLES {
            let p = self.no_speech_probability(context, state)?;
            for d in &mut out {
                d.no_speech_prob = p;
            }
        }
        Ok(out)
    }

    /// Whisper's no-speech probability: that of the no-speech token right after start-of-
    /// transcript, given the window just encoded. (whisper.cpp reads it after the language and
    /// task tokens, where it is always near zero.) A longer window is encoded in parts and
    /// keeps whisper.cpp's value.
    fn no_speech_probability(
        &self,
        context: &WhisperContext,
        state: &mut WhisperState,
    ) -> Result<f32, Failure> {
        state
            .decode(&[context.token_sot()], 0, self.threads)
            .map_err(|e| Failure::Resources(format!("Whisper failed: {e}")))?;
        let logits = state
            .get_logits()
            .map_err(|e| Failure::Other(StageError::Processing(format!("Whisper logits: {e}"))))?;
        let nosp = usize::try_from(context.token_nosp()).unwrap_or(usize::MAX);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
        Ok(logits.get(nosp).map_or(0.0, |l| (l - max).exp() / total))
    }
}

/// The language reported when Whisper never ran, so never detected one.
const UNKNOWN_LANGUAGE: &str = "unknown";

fn centiseconds(t: i64) -> f64 {
    t.max(0) as f64 / 100.0
}

/// One of Whisper's segments: its text tokens and the numbers the guards read.
struct Decoded {
    tokens: Vec<Token>,
    no_speech_prob: f32,
    avg_logprob: f32,
}

/// Regions of a window, long enough to hold a sentence, on which none of its words were placed.
fn unheard_regions(window: &Window, placed: &[Placed]) -> Vec<TimeSpan> {
    window
        .pieces
        .iter()
        .map(|piece| piece.source)
        .filter(|region| region.duration_s() >= MIN_SKIPPED_REGION_S)
        .filter(|region| placed.iter().all(|p| p.region != *region))
        .collect()
}

/// Screens a window's segments, merges their words and maps them to the audio's time.
fn place_words(window: &Window, decoded: Vec<Decoded>, spaced: bool, out: &mut Vec<Placed>) {
    let mut kept: Vec<(Word, bool)> = Vec::new();
    for segment in decoded {
        let mut words = words::words_from_tokens(&segment.tokens, spaced);
        words::spread_collapsed(&mut words);
        let (Some(first), Some(last)) = (words.first(), words.last()) else {
            continue;
        };
        let span = TimeSpan::new(first.start_s, last.end_s);
        let text: String = words.iter().map(|w| w.text.as_str()).collect();
        let speech_share = if span.duration_s() > 0.0 {
            window.speech_overlap_s(span) / span.duration_s()
        } else {
            1.0
        };
        let candidate = guards::Candidate {
            text: &text,
            words: words.len(),
            no_speech_prob: segment.no_speech_prob,
            avg_logprob: segment.avg_logprob,
            confidence: words.iter().map(|w| w.confidence).sum::<f64>() / words.len() as f64,
            speech_share,
        };
        if let Some(reason) = guards::rejection(&candidate) {
            tracing::debug!(%text, reason, "dropped a hallucinated segment");
            continue;
        }
        kept.extend(words.into_iter().enumerate().map(|(i, w)| (w, i == 0)));
    }
    guards::drop_loops(&mut kept, |(w, _)| guards::normalise(&w.text));

    let spans: Vec<TimeSpan> = kept
        .iter()
        .map(|(w, _)| TimeSpan::new(w.start_s, w.end_s))
        .collect();
    let pause_before: Vec<bool> = (0..kept.len())
        .map(|i| i > 0 && ends_clause(&kept[i - 1].0.text))
        .collect();
    let pieces = window.assign(&spans, &pause_before);
    let mut placed: Vec<TimeSpan> = Vec::with_capacity(kept.len());
    for i in 0..kept.len() {
        let piece = pieces[i];
        let before = i.checked_sub(1).filter(|&j| pieces[j] == piece);
        // Between the word before, as placed, and the word after, as timed, in the same piece.
        let room = TimeSpan::new(
            before.map_or(f64::NEG_INFINITY, |j| placed[j].end_s),
            spans
                .get(i + 1)
                .filter(|_| pieces.get(i + 1) == Some(&piece))
                .map_or(f64::INFINITY, |next| next.start_s),
        );
        let (span, voiced) = window.place(piece, spans[i], room);
        let span = match before {
            // No voice of its own: the word before took its sound, so the two share it.
            Some(j) if !voiced => {
                let (first, second) = words::share(placed[j], &kept[j].0, &kept[i].0);
                placed[j] = first;
                second
            }
            _ => span,
        };
        placed.push(span);
    }
    for ((word, opens), (span, piece)) in kept.into_iter().zip(placed.into_iter().zip(pieces)) {
        let source = window.to_source(piece, span);
        out.push(Placed {
            word: TimedWord {
                text: word.text,
                start_s: source.start_s,
                end_s: source.end_s,
                confidence: word.confidence,
            },
            region: window.pieces[piece].source,
            opens_decoded_segment: opens,
        });
    }
}

/// Where speakers pause, Whisper writes punctuation. (Its own segment boundaries and times are
/// no guide: they drift with the timing they mark.)
fn ends_clause(text: &str) -> bool {
    text.trim_end()
        .ends_with(['.', ',', '?', '!', ';', ':', '。', '、', '，', '？', '！'])
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

/// Loads a model file on the preferred device, falling back to the CPU for this same file.
fn load(
    path: &Path,
    timing: WordTiming,
    want_gpu: bool,
) -> Result<(WhisperContext, Option<DtwModelPreset>, bool), String> {
    if !path.is_file() {
        return Err("no such file".into());
    }
    let shape = WhisperShape::read(path).map_err(|e| e.to_string())?;
    let dtw = match timing {
        WordTiming::Dtw => {
            let preset = dtw_preset(shape);
            if preset.is_none() {
                tracing::warn!(model = %path.display(), "no alignment heads known for this model shape; word times from timestamp tokens");
            }
            preset
        }
        WordTiming::Tokens => None,
    };
    if want_gpu {
        match new_context(path, dtw.as_ref(), true) {
            Ok(ctx) => return Ok((ctx, dtw, true)),
            Err(e) => {
                tracing::warn!(model = %path.display(), error = %e, "cannot load on the GPU; using the CPU");
            }
        }
    }
    new_context(path, dtw.as_ref(), false).map(|ctx| (ctx, dtw, false))
}

fn new_context(
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
            return Ok(self.run(&*self.cpu_context()?, audio, &windows, options.language)?);
        }
        match self.run(&self.main, audio, &windows, options.language) {
            Err(Failure::Resources(gpu)) => {
                tracing::warn!(error = %gpu, "Whisper failed on the GPU; retrying on the CPU");
                let retry = self
                    .cpu_context()
                    .and_then(|cpu| Ok(self.run(&cpu, audio, &windows, options.language)?));
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
    use windows::Piece;

    #[test]
    fn regions_without_words_are_found_for_another_pass() {
        let region = |start_s, end_s| TimeSpan::new(start_s, end_s);
        let piece = |window_start_s, source| Piece {
            window_start_s,
            source,
            peak: 0.5,
        };
        let window = Window {
            samples: Vec::new(),
            pieces: vec![
                piece(0.0, region(10.0, 20.0)),
                piece(10.3, region(25.0, 26.0)),
                piece(11.6, region(30.0, 45.0)),
            ],
        };
        let heard = |source: TimeSpan| Placed {
            word: TimedWord {
                text: " word".into(),
                start_s: source.start_s,
                end_s: source.start_s + 0.3,
                confidence: 0.9,
            },
            region: source,
            opens_decoded_segment: false,
        };
        // The one-second region is too short to hold a skipped sentence.
        assert_eq!(
            unheard_regions(&window, &[heard(region(10.0, 20.0))]),
            [region(30.0, 45.0)]
        );
        assert!(
            unheard_regions(
                &window,
                &[heard(region(10.0, 20.0)), heard(region(30.0, 45.0))]
            )
            .is_empty()
        );
        assert_eq!(unheard_regions(&window, &[]).len(), 2);
    }

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
