//! Audio for the ECG Audio Analyzer: media files to the pipeline's 16 kHz mono samples, and
//! per-word acoustic measurements of those samples.
//!
//! - [`MediaDecoder`] implements [`ecg_core::stages::Decoder`]: any container/codec that symphonia
//!   reads (mp4/m4a, mp3, wav, flac, ogg, mkv/webm…), plus Opus through libopus, downmixed and
//!   resampled to 16 kHz while streaming, within [`DecodeLimits`] (media length, decode time).
//! - [`AcousticAnalyzer`] implements [`ecg_core::stages::FeatureExtractor`]: level, pitch (YIN)
//!   and spectral centroid of one word.
//! - [`dsp`] holds the signal-processing pieces themselves, for later prosody or emotion stages.
//!
//! This crate is pure computation on local files and samples: it must not depend on AWS, HTTP
//! or any network client, so every deployment (local CLI, GPU runner, Lambda) can use it.

mod decode;
pub mod dsp;
mod features;
mod mp4_edits;
mod resample;

pub use decode::{DecodeLimits, MediaDecoder};
pub use features::AcousticAnalyzer;
