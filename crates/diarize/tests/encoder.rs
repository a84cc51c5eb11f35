//! The speaker encoder through ONNX Runtime on generated speech: unit-length embeddings that do
//! not depend on how windows are batched, and that tell voices apart.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

mod common;

use common::*;
use ecg_diarize::WINDOW_FRAMES;
use ecg_diarize::encoder::{Embedding, SpeakerEncoder, similarity};
use ecg_diarize::mel::{MelFrontend, N_MELS, volume_gain};

/// Mel frames of consecutive 1.6 s windows of a clip, one after another.
fn windows(samples: &[f32], count: usize) -> Vec<f32> {
    let mel = MelFrontend::new();
    let frames = mel.all_frames(samples, volume_gain([samples]));
    assert!(
        frames.len() >= count * WINDOW_FRAMES * N_MELS,
        "clip too short"
    );
    frames[..count * WINDOW_FRAMES * N_MELS].to_vec()
}

fn encoder(batch: usize) -> SpeakerEncoder {
    require_models();
    SpeakerEncoder::load(
        &ecg_models::model_dir().join("speaker_encoder.onnx"),
        1,
        batch,
    )
    .unwrap()
}

const TEXT: &str = "The museum has a new exhibition about ancient ships, and it opens next \
                    week. Children can join the reading club on Saturdays.";

#[test]
fn embeddings_are_unit_length_and_independent_of_batching() {
    let mels = windows(&speech(KAL, TEXT), 3);
    let batched = encoder(8).embed(&mels, WINDOW_FRAMES).unwrap();
    let single = encoder(1).embed(&mels, WINDOW_FRAMES).unwrap();
    assert_eq!(batched.len(), 3);
    for (a, b) in batched.iter().zip(&single) {
        let norm = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "batching changed an embedding by {diff}");
    }
    // Shorter windows run too (regions shorter than a window are embedded at their length).
    let short = encoder(1).embed(&mels[..50 * N_MELS], 50).unwrap();
    assert_eq!(short.len(), 1);
}

#[test]
fn the_same_voice_is_closer_than_another() {
    let enc = encoder(8);
    let embed = |voice| -> Vec<Embedding> {
        enc.embed(&windows(&speech(voice, TEXT), 3), WINDOW_FRAMES)
            .unwrap()
    };
    let (kal, slt) = (embed(KAL), embed(SLT));
    let same = similarity(&kal[0], &kal[2]);
    let other = similarity(&kal[0], &slt[0]);
    assert!(same > other + 0.2, "same voice {same}, other voice {other}");
}
