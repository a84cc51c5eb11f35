//! The pluggable speaker model (`ECG_SPEAKER_MODEL`): tiny ONNX models that
//! `tiny_speaker_models.py` builds at test time take 80-band fbank windows in either layout, or
//! chunks and a pooling of windows over them, and an input the stage cannot feed is a model
//! loading error that says what is supported.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use ecg_core::error::StageError;
use ecg_core::stages::{Diarizer, VoiceDetector};
use ecg_diarize::{DiarizeConfig, SpeakerDiarizer};

fn tiny(name: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        require_models();
        let dir = tempfile::tempdir().unwrap();
        ecg_testkit::run_python(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tiny_speaker_models.py"),
            &[dir.path()],
        );
        dir
    })
    .path()
    .join(name)
}

fn with_model(name: &str) -> Result<SpeakerDiarizer, StageError> {
    SpeakerDiarizer::new(DiarizeConfig {
        model: Some(tiny(name)),
        ..DiarizeConfig::default()
    })
}

#[test]
fn an_fbank_model_diarizes_in_either_layout() {
    let d = dialogue(&[KAL, SLT], 4, 31);
    let (vad, _) = stages();
    let regions = vad.speech_regions(&d.audio).unwrap();
    let turns = |name: &str| {
        with_model(name)
            .unwrap()
            .speaker_turns(&d.audio, &regions, AUTO)
            .unwrap()
    };
    let frames_first = turns("fbank_frames_first.onnx");
    let speech: f64 = regions.iter().map(|r| r.duration_s()).sum();
    let covered: f64 = frames_first.iter().map(|t| t.span.duration_s()).sum();
    assert!((covered - speech).abs() < 1e-6, "{frames_first:?}");
    // The same weights behind a bands-first input: the stage transposes, nothing else changes.
    assert_eq!(frames_first, turns("fbank_bands_first.onnx"));
}

#[test]
fn a_model_that_pools_windows_diarizes() {
    let d = dialogue(&[KAL, SLT], 4, 31);
    let (vad, _) = stages();
    let regions = vad.speech_regions(&d.audio).unwrap();
    let turns = with_model("fbank_pooling.onnx")
        .unwrap()
        .speaker_turns(&d.audio, &regions, AUTO)
        .unwrap();
    let speech: f64 = regions.iter().map(|r| r.duration_s()).sum();
    let covered: f64 = turns.iter().map(|t| t.span.duration_s()).sum();
    assert!((covered - speech).abs() < 1e-6, "{turns:?}");
}

#[test]
fn an_input_the_stage_cannot_feed_is_a_model_loading_error() {
    let Err(StageError::ModelLoading(message)) = with_model("bad_second_input.onnx") else {
        panic!("a second input other than a pooling must be refused");
    };
    assert!(
        message.contains("pooling [windows, chunks, frames]"),
        "{message}"
    );
    let Err(StageError::ModelLoading(message)) = with_model("unsupported.onnx") else {
        panic!("a 64-band input must be refused");
    };
    assert!(message.contains("[batch, frames, 80]"), "{message}");
    assert!(message.contains("[batch, frames, 40]"), "{message}");
}
