//! The speaker models through ONNX Runtime on generated speech: unit-length embeddings that tell
//! voices apart, for GE2E (each window through the model) and CAM++ (each region through the model
//! in chunks, windows pooled from it), however the windows are batched.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

mod common;

use std::ops::Range;

use common::*;
use ecg_diarize::WINDOW_FRAMES;
use ecg_diarize::encoder::{Embedding, RegionWindows, SpeakerEncoder, similarity};
use ecg_diarize::fbank::FbankFrontend;
use ecg_diarize::mel::{MelFrontend, volume_gain};

const TEXT: &str = "The museum has a new exhibition about ancient ships, and it opens next \
                    week. Children can join the reading club on Saturdays.";

/// A model of `make models` and its clip's feature frames.
#[derive(Clone, Copy)]
enum Model {
    Ge2e,
    Campplus,
}

impl Model {
    fn encoder(self, batch: usize) -> SpeakerEncoder {
        require_models();
        let file = match self {
            Self::Ge2e => "speaker_encoder.onnx",
            Self::Campplus => "speaker_campplus.onnx",
        };
        SpeakerEncoder::load(&ecg_models::model_dir().join(file), 1, batch).unwrap()
    }

    fn bands(self) -> usize {
        match self {
            Self::Ge2e => ecg_diarize::mel::N_MELS,
            Self::Campplus => ecg_diarize::fbank::N_BANDS,
        }
    }

    fn features(self, samples: &[f32]) -> Vec<f32> {
        match self {
            Self::Ge2e => MelFrontend::new().all_frames(samples, volume_gain([samples])),
            Self::Campplus => FbankFrontend::new().frames(samples, 0, samples.len() / 160),
        }
    }
}

/// Consecutive 1.6 s windows, `hop` frames apart, as many as fit in `frames`.
fn windows(frames: usize, hop: usize) -> Vec<Range<usize>> {
    (0..=frames - WINDOW_FRAMES)
        .step_by(hop)
        .map(|s| s..s + WINDOW_FRAMES)
        .collect()
}

fn embed(encoder: &SpeakerEncoder, features: &[f32], windows: Vec<Range<usize>>) -> Vec<Embedding> {
    encoder
        .embed(&[RegionWindows { features, windows }])
        .unwrap()
}

fn assert_unit(e: &Embedding) {
    let norm = e.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
}

#[test]
fn ge2e_embeddings_are_unit_length_and_independent_of_batching() {
    let model = Model::Ge2e;
    let mels = model.features(&speech(KAL, TEXT));
    let frames = mels.len() / model.bands();
    let batched = embed(&model.encoder(8), &mels, windows(frames, WINDOW_FRAMES));
    let single = embed(&model.encoder(1), &mels, windows(frames, WINDOW_FRAMES));
    assert!(batched.len() >= 3);
    for (a, b) in batched.iter().zip(&single) {
        assert_unit(a);
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "batching changed an embedding by {diff}");
    }
    // Shorter windows run too (regions shorter than a window are embedded at their length).
    assert_eq!(
        embed(&model.encoder(1), &mels, std::iter::once(0..50).collect()).len(),
        1
    );
}

#[test]
fn campplus_pools_windows_across_chunks_and_runs() {
    let model = Model::Campplus;
    // Over 20 s: several 8 s chunks, and with a batch of one window, several runs.
    let samples: Vec<f32> = (0..3).flat_map(|_| speech(KAL, TEXT)).collect();
    let fbank = model.features(&samples);
    let frames = fbank.len() / model.bands();
    assert!(frames > 2000, "{frames} frames");
    let hop = 70; // not a divisor of the chunk: windows straddle chunk boundaries
    let many = embed(&model.encoder(32), &fbank, windows(frames, hop));
    let few = embed(&model.encoder(1), &fbank, windows(frames, hop));
    assert_eq!(many.len(), windows(frames, hop).len());
    for (a, b) in many.iter().zip(&few) {
        assert_unit(a);
        assert_unit(b);
        // Chunks cut elsewhere give each frame other context: the same voice, nearly the same.
        assert!(similarity(a, b) > 0.8, "{}", similarity(a, b));
    }
    // A region shorter than a window is one window of its own length.
    assert_eq!(
        embed(
            &model.encoder(1),
            &fbank[..50 * model.bands()],
            std::iter::once(0..50).collect()
        )
        .len(),
        1
    );
}

#[test]
fn the_same_voice_is_closer_than_another() {
    for model in [Model::Ge2e, Model::Campplus] {
        let encoder = model.encoder(8);
        let embed_voice = |voice| -> Vec<Embedding> {
            let features = model.features(&speech(voice, TEXT));
            let frames = features.len() / model.bands();
            embed(&encoder, &features, windows(frames, WINDOW_FRAMES))
        };
        let (kal, slt) = (embed_voice(KAL), embed_voice(SLT));
        let same = similarity(&kal[0], &kal[2]);
        let other = similarity(&kal[0], &slt[0]);
        assert!(same > other + 0.2, "same voice {same}, other voice {other}");
    }
}
