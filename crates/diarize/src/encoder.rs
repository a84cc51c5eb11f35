//! A speaker-embedding model through ONNX Runtime: windows of feature frames in, one
//! embedding per window out, made unit length here.
//!
//! The input layout is read from the model's first input:
//! - 40 features a frame, `[batch, frames, 40]`: the GE2E encoder that `make models` converts
//!   from Resemblyzer (`speaker_encoder.onnx`), fed Resemblyzer's power mel ([`crate::mel`]);
//! - 80 features a frame, `[batch, frames, 80]` (CAM++ as `make models` converts it,
//!   `speaker_campplus.onnx`, and other WeSpeaker, 3D-Speaker exports) or
//!   `[batch, 80, frames]` (NeMo-style): Kaldi log-mel fbank ([`crate::fbank`]), mean-normalised
//!   over each window as those recipes do.
//!
//! The first output is the embedding, `[batch, dim]` with any `dim`.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use ecg_core::error::StageError;
use ecg_models::onnx_session;
use ort::session::Session;
use ort::value::TensorRef;

use crate::fbank;
use crate::mel::N_MELS;

/// A speaker embedding: unit length (or all zero when the encoder saw nothing it could use).
pub type Embedding = Vec<f32>;

/// The features a model reads, known from its input's width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Features {
    /// Resemblyzer's 40-band power mel.
    Ge2eMel,
    /// Kaldi's 80-band log-mel filterbank.
    Fbank,
}

impl Features {
    pub fn bands(self) -> usize {
        match self {
            Self::Ge2eMel => N_MELS,
            Self::Fbank => fbank::N_BANDS,
        }
    }
}

/// Cosine similarity of two embeddings (they are unit length, so the dot product).
pub fn similarity(a: &Embedding, b: &Embedding) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One ONNX session shared by every job.
pub struct SpeakerEncoder {
    /// `Session::run` needs `&mut`; jobs take turns, each running whole batches.
    session: Mutex<Session>,
    batch: usize,
    features: Features,
    /// `[batch, bands, frames]` rather than `[batch, frames, bands]`.
    bands_first: bool,
    input: String,
    output: String,
}

impl SpeakerEncoder {
    pub fn load(path: &Path, threads: usize, batch: usize) -> Result<Self, StageError> {
        let session = onnx_session(path, Some(threads))?;
        let load = |e: &dyn std::fmt::Display| {
            StageError::ModelLoading(format!("cannot load {}: {e}", path.display()))
        };
        let (Some(input), Some(output)) = (session.inputs().first(), session.outputs().first())
        else {
            return Err(load(&"the model has no input or no output"));
        };
        let shape: Vec<i64> = input
            .dtype()
            .tensor_shape()
            .map(|s| s.to_vec())
            .unwrap_or_default();
        let width = |axis: usize| shape.get(axis).copied();
        let (features, bands_first) = match (shape.len(), width(1), width(2)) {
            (3, _, Some(40)) => (Features::Ge2eMel, false),
            (3, _, Some(80)) => (Features::Fbank, false),
            (3, Some(80), _) => (Features::Fbank, true),
            _ => {
                return Err(load(&format!(
                    "input `{}` has shape {shape:?}; supported: [batch, frames, 40] (GE2E power \
                     mel), [batch, frames, 80] or [batch, 80, frames] (log-mel fbank)",
                    input.name()
                )));
            }
        };
        let (input, output) = (input.name().to_owned(), output.name().to_owned());
        tracing::info!(model = %path.display(), ?features, bands_first, "speaker model loaded");
        Ok(Self {
            session: Mutex::new(session),
            batch: batch.max(1),
            features,
            bands_first,
            input,
            output,
        })
    }

    /// The features this model reads.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Embeddings of windows of `frames` feature frames each, stored one after another in
    /// `windows` (row-major `[windows, frames, bands]`), run `batch` windows at a time.
    pub fn embed(&self, windows: &[f32], frames: usize) -> Result<Vec<Embedding>, StageError> {
        let fail = |e: ort::Error| StageError::Processing(format!("speaker encoder: {e}"));
        let bands = self.features.bands();
        let per_window = frames * bands;
        if per_window == 0 || !windows.len().is_multiple_of(per_window) {
            return Err(StageError::Processing(format!(
                "speaker encoder: {} values are not whole windows of {frames} frames",
                windows.len()
            )));
        }
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(windows.len() / per_window);
        for chunk in windows.chunks(per_window * self.batch) {
            let n = chunk.len() / per_window;
            let prepared = self.prepare(chunk, frames);
            let shape = if self.bands_first {
                [n, bands, frames]
            } else {
                [n, frames, bands]
            };
            let input = TensorRef::from_array_view((shape, &prepared[..])).map_err(fail)?;
            let outputs = session
                .run(ort::inputs![self.input.as_str() => input])
                .map_err(fail)?;
            let (shape, values) = outputs[self.output.as_str()]
                .try_extract_tensor::<f32>()
                .map_err(fail)?;
            let dim = values.len() / n.max(1);
            if shape.len() != 2 || dim == 0 || values.len() != n * dim {
                return Err(StageError::Processing(format!(
                    "speaker encoder: output shape {shape:?}, expected [{n}, dim]"
                )));
            }
            out.extend(values.chunks_exact(dim).map(unit));
        }
        Ok(out)
    }

    /// The batch as the model takes it: fbank windows mean-normalised per band, and transposed
    /// for a bands-first input; GE2E mel as it is, uncopied.
    fn prepare<'a>(&self, chunk: &'a [f32], frames: usize) -> Cow<'a, [f32]> {
        if self.features == Features::Ge2eMel && !self.bands_first {
            return Cow::Borrowed(chunk);
        }
        let bands = self.features.bands();
        let mut data = chunk.to_vec();
        if self.features == Features::Fbank {
            for window in data.chunks_exact_mut(frames * bands) {
                for b in 0..bands {
                    let mean =
                        (0..frames).map(|t| window[t * bands + b]).sum::<f32>() / frames as f32;
                    (0..frames).for_each(|t| window[t * bands + b] -= mean);
                }
            }
        }
        if !self.bands_first {
            return Cow::Owned(data);
        }
        let mut transposed = vec![0f32; data.len()];
        for (w, window) in data.chunks_exact(frames * bands).enumerate() {
            let dst = &mut transposed[w * frames * bands..(w + 1) * frames * bands];
            for t in 0..frames {
                for b in 0..bands {
                    dst[b * frames + t] = window[t * bands + b];
                }
            }
        }
        Cow::Owned(transposed)
    }
}

/// The row scaled to unit length (all zero stays all zero).
fn unit(row: &[f32]) -> Embedding {
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        row.iter().map(|x| x / norm).collect()
    } else {
        row.to_vec()
    }
}
