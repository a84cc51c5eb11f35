//! Speech stages of the ECG Audio Analyzer: where people speak and what they say.
//!
//! Layout:
//! - [`vad`]: [`SileroVad`], Silero VAD through ONNX Runtime (`ort`, loaded from a provisioned
//!   `libonnxruntime.so`), streamed over 32 ms chunks into padded speech regions.
//! - [`transcribe`]: [`WhisperTranscriber`], Whisper through whisper.cpp (`whisper-rs`): speech
//!   regions packed into 30 s windows, word timings, hallucination guards, sentence segments.
//! - [`models`]: Whisper model names and files.
//!
//! Both stages implement `ecg_core::stages` traits, load their model once and are shared by every
//! job. Models are local files (`ECG_MODEL_DIR`, provisioned by `make models`, found through
//! `ecg-models` with the process's one ONNX Runtime environment): nothing here
//! downloads anything, speaks HTTP or knows of AWS. The `cuda` feature runs whisper.cpp on the GPU.

pub mod models;
pub mod transcribe;
pub mod vad;

pub use transcribe::{AsrConfig, WhisperTranscriber, WordTiming, abandon_transcriptions};
pub use vad::{SileroVad, VadConfig};
