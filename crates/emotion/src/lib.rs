//! Emotion and emphasis cues for captions: fills `segments[].emotion`, `words[].emphasis` and
//! `metadata.emotion_method` of an assembled result (the pipeline's optional emotion stage).
//!
//! - [`ProsodyEmotion`] (`prosody-v1`, the default): how energetic each segment sounds relative
//!   to its own speaker's baseline — loudness, pitch level and range, speaking rate and spectral
//!   centroid — as arousal in [0, 1], a label (calm / neutral / excited) and a confidence; and
//!   how much each word stands out from that baseline in loudness or pitch. It measures
//!   activation, not valence: see the crate's README for what it can and cannot tell.
//! - [`OnnxEmotion`] (`onnx:<model>`): a speech-emotion classifier in ONNX, run through the
//!   process's ONNX Runtime on each segment's raw 16 kHz waveform or log-mel features; its
//!   argmax label, probabilities and maximum probability are used. Emphasis still comes from
//!   prosody.
//! - [`emotion_from_config`] picks one from an [`EmotionConfig`] (`ECG_EMOTION_MODEL`,
//!   `ECG_EMOTION_LABELS`, `ECG_EMOTION_INPUT`).
//!
//! Log-mel layout for ONNX models (`ECG_EMOTION_INPUT=logmel`, a `[1, 80, T]` float tensor):
//! 400-sample (25 ms) periodic Hann frames every 160 samples (10 ms), no centre padding, each
//! frame's mean removed; power spectrum of a 400-point FFT; 80 Slaney-scale, area-normalised
//! triangular mel filters over 0–8 kHz (as `librosa.filters.mel(sr=16000, n_fft=400,
//! n_mels=80)`); natural log of each energy plus 1e-10. That is librosa's
//! `log(melspectrogram(n_fft=400, hop_length=160, n_mels=80, center=False) + 1e-10)` to 1e-4,
//! except in the lowest two bands, where removing a frame's mean shifts energy below 80 Hz.
//! Further normalisation belongs in the model's graph.
//!
//! Everything here is pure computation on the decoded samples and the result, and deterministic.

mod config;
mod logmel;
mod onnx;
mod prosody;
mod scoring;
mod stats;
mod syllables;

pub use config::{EmotionConfig, ModelInput, emotion_from_config};
pub use onnx::OnnxEmotion;
pub use prosody::{PROSODY_METHOD, ProsodyEmotion};
pub use scoring::{ArousalLabel, CALM_BELOW, EXCITED_ABOVE};
