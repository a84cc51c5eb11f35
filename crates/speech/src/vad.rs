//! Voice activity with Silero VAD (v5/v6 ONNX graph) through ONNX Runtime.
//!
//! The model is recurrent: it reads 512 new samples at a time (32 ms at 16 kHz) together with the
//! last 64 samples of the previous chunk, and carries a state between chunks. Its per-chunk speech
//! probabilities become regions through hysteresis, a minimum speech length, a minimum silence
//! that splits speech, and padding.

use std::path::PathBuf;
use std::sync::Mutex;

use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::error::StageError;
use ecg_core::stages::VoiceDetector;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{Tensor, TensorRef};
use serde::{Deserialize, Serialize};

use ecg_models::{model_dir, onnx_runtime};

/// New samples per model call.
const CHUNK: usize = 512;
/// Samples of the previous chunk the model sees before the new ones.
const CONTEXT: usize = 64;
/// The recurrent state's shape: [2, batch 1, 128].
const STATE_LEN: usize = 2 * 128;
/// The file `make models` provisions in the model directory.
const MODEL_FILE: &str = "silero_vad.onnx";
/// How speech probabilities become regions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VadConfig {
    /// The Silero VAD ONNX file; `<model dir>/silero_vad.onnx` by default.
    pub model: Option<PathBuf>,
    /// Speech starts when the probability reaches this. Low, because quiet, distant and
    /// telephone-band speech scores low (Silero leans on the band below 300 Hz that a phone line
    /// cuts): on the AMI meeting excerpts, 0.3/0.15 instead of Silero's usual 0.5/0.35 misses
    /// 12.8 s instead of 16.7 s of the 137 s one person speaks alone (through a 300–3400 Hz
    /// line: 16.7 s instead of 25.7 s), for 1 % of false alarm, and no word lands where nobody
    /// speaks; noise and music still give no region.
    pub onset: f32,
    /// Speech may end once the probability falls below this (hysteresis below `onset`).
    pub offset: f32,
    /// Shorter bursts are dropped: clicks and coughs, not speech.
    pub min_speech_ms: u32,
    /// Silence must last this long to split speech; shorter pauses stay inside a region.
    pub min_silence_ms: u32,
    /// Added on both sides so soft word onsets and endings are not clipped.
    pub pad_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            model: None,
            onset: 0.3,
            offset: 0.15,
            min_speech_ms: 250,
            min_silence_ms: 400,
            pad_ms: 200,
        }
    }
}

/// Silero VAD: one ONNX session shared by every job.
pub struct SileroVad {
    /// `Session::run` needs `&mut`; the model is small, so jobs take turns.
    session: Mutex<Session>,
    config: VadConfig,
}

impl SileroVad {
    /// Loads the model; a missing file is a [`StageError::ModelLoading`] that names `make models`.
    pub fn new(config: VadConfig) -> Result<Self, StageError> {
        let path = config
            .model
            .clone()
            .unwrap_or_else(|| model_dir().join(MODEL_FILE));
        if !path.is_file() {
            return Err(StageError::ModelLoading(format!(
                "Silero VAD model not found at {} (run `make models` or set ECG_VAD_MODEL)",
                path.display()
            )));
        }
        let env = onnx_runtime()?;
        let load = |e: &dyn std::fmt::Display| {
            StageError::ModelLoading(format!("cannot load {}: {e}", path.display()))
        };
        // One thread: each call is a tiny recurrent step; hand-offs would cost more than they save.
        let session = Session::builder(&env)
            .map_err(|e| load(&e))?
            .with_intra_threads(1)
            .map_err(|e| load(&e))?
            .with_inter_threads(1)
            .map_err(|e| load(&e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| load(&e))?
            .commit_from_file(&path)
            .map_err(|e| load(&e))?;
        Ok(Self {
            session: Mutex::new(session),
            config,
        })
    }

    /// The speech probability of each 512-sample chunk, the last one zero-padded.
    pub fn probabilities(&self, samples: &[f32]) -> Result<Vec<f32>, StageError> {
        let fail = |e: ort::Error| StageError::Processing(format!("voice activity model: {e}"));
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rate = Tensor::from_array(((), vec![i64::from(SAMPLE_RATE_HZ)])).map_err(fail)?;
        let mut frame = [0f32; CONTEXT + CHUNK];
        let mut state = [0f32; STATE_LEN];
        let mut probs = Vec::with_capacity(samples.len().div_ceil(CHUNK));
        for chunk in samples.chunks(CHUNK) {
            // The tail of the previous frame is this frame's context.
            frame.copy_within(CHUNK.., 0);
            frame[CONTEXT..CONTEXT + chunk.len()].copy_from_slice(chunk);
            frame[CONTEXT + chunk.len()..].fill(0.0);
            let outputs = session
                .run(ort::inputs![
                    "input" => TensorRef::from_array_view(([1usize, CONTEXT + CHUNK], &frame[..])).map_err(fail)?,
                    "state" => TensorRef::from_array_view(([2usize, 1, 128], &state[..])).map_err(fail)?,
                    "sr" => &rate,
                ])
                .map_err(fail)?;
            let (_, prob) = outputs["output"]
                .try_extract_tensor::<f32>()
                .map_err(fail)?;
            let (_, next) = outputs["stateN"]
                .try_extract_tensor::<f32>()
                .map_err(fail)?;
            if next.len() != STATE_LEN || prob.is_empty() {
                return Err(StageError::Processing(
                    "voice activity model: unexpected output shape (not Silero VAD v5/v6?)".into(),
                ));
            }
            probs.push(prob[0]);
            state.copy_from_slice(next);
        }
        Ok(probs)
    }
}

impl VoiceDetector for SileroVad {
    fn speech_regions(&self, audio: &Audio) -> Result<Vec<TimeSpan>, StageError> {
        let probs = self.probabilities(&audio.samples)?;
        Ok(regions_from_probabilities(
            &probs,
            audio.duration_s(),
            &self.config,
        ))
    }
}

/// Seconds per model chunk.
fn chunk_s() -> f64 {
    CHUNK as f64 / f64::from(SAMPLE_RATE_HZ)
}

fn ms_to_s(ms: u32) -> f64 {
    f64::from(ms) / 1000.0
}

/// Hysteresis over chunk probabilities, then length filtering, padding and merging.
fn regions_from_probabilities(probs: &[f32], duration_s: f64, config: &VadConfig) -> Vec<TimeSpan> {
    let min_silence_chunks = (ms_to_s(config.min_silence_ms) / chunk_s()).ceil().max(1.0);
    let mut raw: Vec<(usize, usize)> = Vec::new();
    // Chunk where the current speech began, and where the silence that may end it began.
    let mut speech_from: Option<usize> = None;
    let mut silence_from: Option<usize> = None;
    for (i, &p) in probs.iter().enumerate() {
        let Some(start) = speech_from else {
            if p >= config.onset {
                speech_from = Some(i);
            }
            continue;
        };
        if p >= config.onset {
            silence_from = None;
        } else if p < config.offset {
            let from = *silence_from.get_or_insert(i);
            if (i + 1 - from) as f64 >= min_silence_chunks {
                raw.push((start, from));
                speech_from = None;
                silence_from = None;
            }
        }
    }
    if let Some(start) = speech_from {
        raw.push((start, silence_from.unwrap_or(probs.len())));
    }

    let pad = ms_to_s(config.pad_ms);
    let mut regions: Vec<TimeSpan> = Vec::new();
    for (start, end) in raw {
        let (start_s, end_s) = (start as f64 * chunk_s(), end as f64 * chunk_s());
        if end_s - start_s < ms_to_s(config.min_speech_ms) {
            continue;
        }
        let padded = TimeSpan::new((start_s - pad).max(0.0), (end_s + pad).min(duration_s));
        match regions.last_mut() {
            Some(last) if padded.start_s <= last.end_s => last.end_s = last.end_s.max(padded.end_s),
            _ => regions.push(padded),
        }
    }
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities for `seconds` of each level in turn.
    fn track(parts: &[(f32, f64)]) -> Vec<f32> {
        parts
            .iter()
            .flat_map(|&(p, s)| std::iter::repeat_n(p, (s / chunk_s()).round() as usize))
            .collect()
    }

    fn regions_with(parts: &[(f32, f64)], config: &VadConfig) -> Vec<TimeSpan> {
        let probs = track(parts);
        let duration = probs.len() as f64 * chunk_s();
        regions_from_probabilities(&probs, duration, config)
    }

    fn regions(parts: &[(f32, f64)]) -> Vec<TimeSpan> {
        regions_with(parts, &VadConfig::default())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.05
    }

    #[test]
    fn silence_has_no_regions() {
        assert!(regions(&[(0.01, 10.0)]).is_empty());
    }

    #[test]
    fn speech_is_padded_and_clamped() {
        let r = regions(&[(0.9, 1.0), (0.01, 2.0), (0.9, 1.0), (0.01, 0.1)]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(close(r[0].start_s, 0.0) && close(r[0].end_s, 1.2), "{r:?}");
        assert!(close(r[1].start_s, 2.8) && close(r[1].end_s, 4.1), "{r:?}");
    }

    #[test]
    fn short_pauses_and_the_hysteresis_band_do_not_split() {
        // A 0.2 s dip below the offset and a long stretch between offset and onset.
        let r = regions(&[
            (0.01, 1.0),
            (0.9, 1.0),
            (0.1, 0.2),
            (0.9, 1.0),
            (0.4, 1.0),
            (0.9, 0.5),
            (0.01, 1.0),
        ]);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(close(r[0].start_s, 0.8) && close(r[0].end_s, 4.9), "{r:?}");
    }

    #[test]
    fn bursts_shorter_than_min_speech_are_dropped() {
        assert!(regions(&[(0.01, 1.0), (0.9, 0.15), (0.01, 1.0)]).is_empty());
    }

    #[test]
    fn padding_merges_close_regions() {
        // 0.5 s of silence splits speech, but pads of 0.3 s on both sides then overlap.
        let parts = [
            (0.01, 1.0),
            (0.9, 1.0),
            (0.01, 0.5),
            (0.9, 1.0),
            (0.01, 1.0),
        ];
        assert_eq!(regions(&parts).len(), 2);
        let wide = VadConfig {
            pad_ms: 300,
            ..VadConfig::default()
        };
        let r = regions_with(&parts, &wide);
        assert_eq!(r.len(), 1, "{r:?}");
        assert!(close(r[0].start_s, 0.7) && close(r[0].end_s, 3.8), "{r:?}");
    }
}
