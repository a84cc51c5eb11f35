//! Where the model files are, and the process's one ONNX Runtime environment: what every model
//! stage (voice activity, transcription, diarization, emotion) needs before it loads a model.
//!
//! Layout:
//! - [`model_dir`]: the model directory, found at run time.
//! - [`onnx_runtime`] and [`onnx_session`]: ONNX Runtime, loaded once from the provisioned
//!   `libonnxruntime.so`, and sessions built from it.
//!
//! Local files only: nothing here downloads a model, speaks HTTP or knows of AWS.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ecg_core::error::StageError;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

/// Overrides the model directory.
pub const MODEL_DIR_ENV: &str = "ECG_MODEL_DIR";

/// Overrides where the ONNX Runtime library is loaded from (`ORT_DYLIB_PATH` is honoured too).
pub const ORT_DYLIB_ENV: &str = "ECG_ORT_DYLIB";

/// The ONNX Runtime library `make models` provisions next to the models.
const ORT_DYLIB_NAME: &str = "libonnxruntime.so";

/// Where the models are, found at run time: `ECG_MODEL_DIR`, else a `models/` directory next to
/// the executable or beside its `bin/` (an installed release, such as the runner artifact's
/// `bin/` and `models/`), else `./models` (a checkout, where `make models` puts them). Never the
/// build tree: a binary copied elsewhere must not depend on where it was built.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let exe_dir = exe.as_deref().and_then(Path::parent);
    [Path::new("models"), Path::new("../models")]
        .into_iter()
        .filter_map(|relative| Some(exe_dir?.join(relative)))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| PathBuf::from("models"))
}

/// The process's ONNX Runtime environment: ONNX Runtime allows one per process, so every ort
/// session (voice activity, speaker embeddings, …) must be built from this one.
pub fn onnx_runtime() -> Result<ort::environment::Environment, StageError> {
    static ENV: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);
    let mut env = ENV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(env) = env.as_ref() {
        return Ok(env.clone());
    }
    let dylib = ort_dylib_path();
    let built = ort::init_from(&dylib)
        .map_err(|e| {
            StageError::ModelLoading(format!(
                "cannot load ONNX Runtime from {} (run `make models` or set {ORT_DYLIB_ENV}): {e}",
                dylib.display()
            ))
        })?
        .with_name("ecg")
        .build()
        .map_err(|e| StageError::ModelLoading(format!("cannot start ONNX Runtime: {e}")))?;
    *env = Some(built.clone());
    Ok(built)
}

fn ort_dylib_path() -> PathBuf {
    [ORT_DYLIB_ENV, "ORT_DYLIB_PATH"]
        .iter()
        .find_map(|var| std::env::var_os(var).filter(|v| !v.is_empty()))
        .map_or_else(|| model_dir().join(ORT_DYLIB_NAME), PathBuf::from)
}

/// A fully optimised session for the model at `path`, on the process's ONNX Runtime. With
/// `threads`, its operators use that many threads and it runs one operator at a time; without,
/// ONNX Runtime's defaults (every core).
pub fn onnx_session(path: &Path, threads: Option<usize>) -> Result<Session, StageError> {
    let env = onnx_runtime()?;
    let load = |e: &dyn std::fmt::Display| {
        StageError::ModelLoading(format!("cannot load {}: {e}", path.display()))
    };
    let mut builder = Session::builder(&env).map_err(|e| load(&e))?;
    if let Some(threads) = threads {
        builder = builder
            .with_intra_threads(threads.max(1))
            .map_err(|e| load(&e))?
            .with_inter_threads(1)
            .map_err(|e| load(&e))?;
    }
    builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| load(&e))?
        .commit_from_file(path)
        .map_err(|e| load(&e))
}
