//! The GE2E speaker encoder (`speaker_encoder.onnx`, made by `infra/models/speaker_encoder.py`)
//! through ONNX Runtime: mel windows `[batch, frames, 40]` → unit-length embeddings `[batch, 256]`.

use std::path::Path;
use std::sync::Mutex;

use ecg_core::error::StageError;
use ecg_speech::models::onnx_runtime;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use crate::mel::N_MELS;

/// Length of an embedding.
pub const DIM: usize = 256;

/// A speaker embedding: unit length (or all zero when the encoder saw nothing it could use).
pub type Embedding = [f32; DIM];

/// Cosine similarity of two embeddings (they are unit length, so the dot product).
pub fn similarity(a: &Embedding, b: &Embedding) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// One ONNX session shared by every job.
pub struct SpeakerEncoder {
    /// `Session::run` needs `&mut`; jobs take turns, each running whole batches.
    session: Mutex<Session>,
    batch: usize,
}

impl SpeakerEncoder {
    pub fn load(path: &Path, threads: usize, batch: usize) -> Result<Self, StageError> {
        let env = onnx_runtime()?;
        let load = |e: &dyn std::fmt::Display| {
            StageError::ModelLoading(format!("cannot load {}: {e}", path.display()))
        };
        let session = Session::builder(&env)
            .map_err(|e| load(&e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| load(&e))?
            .with_inter_threads(1)
            .map_err(|e| load(&e))?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| load(&e))?
            .commit_from_file(path)
            .map_err(|e| load(&e))?;
        Ok(Self {
            session: Mutex::new(session),
            batch: batch.max(1),
        })
    }

    /// Embeddings of windows of `frames` mel frames each, stored one after another in `mels`
    /// (row-major `[windows, frames, 40]`), run `batch` windows at a time.
    pub fn embed(&self, mels: &[f32], frames: usize) -> Result<Vec<Embedding>, StageError> {
        let fail = |e: ort::Error| StageError::Processing(format!("speaker encoder: {e}"));
        let per_window = frames * N_MELS;
        if per_window == 0 || !mels.len().is_multiple_of(per_window) {
            return Err(StageError::Processing(format!(
                "speaker encoder: {} values are not whole windows of {frames} frames",
                mels.len()
            )));
        }
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Vec::with_capacity(mels.len() / per_window);
        for chunk in mels.chunks(per_window * self.batch) {
            let n = chunk.len() / per_window;
            let input = TensorRef::from_array_view(([n, frames, N_MELS], chunk)).map_err(fail)?;
            let outputs = session.run(ort::inputs!["mels" => input]).map_err(fail)?;
            let (shape, values) = outputs["embedding"]
                .try_extract_tensor::<f32>()
                .map_err(fail)?;
            if shape.len() != 2 || values.len() != n * DIM {
                return Err(StageError::Processing(format!(
                    "speaker encoder: output shape {shape:?}, expected [{n}, {DIM}]"
                )));
            }
            out.extend(values.chunks_exact(DIM).map(|row| {
                let mut e = [0f32; DIM];
                e.copy_from_slice(row);
                e
            }));
        }
        Ok(out)
    }
}
