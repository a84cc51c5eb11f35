//! prosody-v1 on synthetic voices: harmonic tones whose loudness and pitch are known exactly,
//! assembled into a result as the pipeline does. No model is needed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use common::{
    Utterance, arousal, assert_prosody_repeats, emotion, emphases, max_emphasis, say, steady,
    synthetic_result,
};
use ecg_core::contract::AnalysisResult;
use ecg_core::stages::EmotionAnalyzer;
use ecg_emotion::ProsodyEmotion;

fn annotated(utterances: &[Utterance]) -> AnalysisResult {
    let (audio, mut result) = synthetic_result(utterances);
    ProsodyEmotion::new().annotate(&audio, &mut result).unwrap();
    result
}

#[test]
fn a_louder_higher_segment_is_excited_and_its_words_stand_out() {
    let mut utterances = steady(0, 120.0, 5);
    // Ten dB louder and six semitones higher.
    utterances.insert(2, say(0, 170.0, 0.3));
    let result = annotated(&utterances);
    assert_eq!(
        result.metadata.emotion_method.as_deref(),
        Some("prosody-v1")
    );
    let loud = emotion(&result, 2);
    assert_eq!(loud.label, "excited", "{loud:?}");
    assert!(loud.confidence > 0.5, "{loud:?}");
    for other in [0, 1, 3, 4, 5] {
        assert_eq!(emotion(&result, other).label, "neutral", "segment {other}");
        assert!(arousal(&result, other) < arousal(&result, 2));
        // The speaker's ordinary words do not stand out.
        assert_eq!(max_emphasis(&result, other), 0.0, "segment {other}");
    }
    assert!(emphases(&result, 2).iter().all(|&e| e > 0.9), "{result:?}");
}

#[test]
fn a_quieter_lower_segment_is_calm() {
    let mut utterances = steady(0, 120.0, 5);
    utterances.push(say(0, 100.0, 0.04));
    let result = annotated(&utterances);
    assert_eq!(
        emotion(&result, 5).label,
        "calm",
        "{:?}",
        emotion(&result, 5)
    );
    assert_eq!(max_emphasis(&result, 5), 0.0);
}

#[test]
fn a_high_voice_is_judged_against_itself() {
    // Speaker 1 speaks an octave above speaker 0, 6 dB louder, and just as steadily.
    let mut utterances = steady(0, 110.0, 4);
    for (i, u) in steady(1, 240.0, 4).into_iter().enumerate() {
        let louder = Utterance {
            amplitude: u.amplitude * 2.0,
            ..u
        };
        utterances.insert(2 * i + 1, louder);
    }
    let result = annotated(&utterances);
    for i in 0..utterances.len() {
        assert_eq!(emotion(&result, i).label, "neutral", "segment {i}");
        assert_eq!(max_emphasis(&result, i), 0.0, "segment {i}");
    }
    // The same audio taken as one speaker: now the high voice stands out.
    let one_speaker: Vec<Utterance> = utterances
        .iter()
        .map(|u| Utterance { speaker: 0, ..*u })
        .collect();
    let merged = annotated(&one_speaker);
    for i in (1..utterances.len()).step_by(2) {
        assert!(arousal(&merged, i) > arousal(&result, i), "segment {i}");
    }
}

#[test]
fn a_speaker_with_too_few_words_is_judged_against_the_file() {
    let mut utterances = steady(0, 120.0, 4);
    utterances.push(Utterance {
        words: 2,
        ..say(1, 120.0, 0.1)
    });
    let result = annotated(&utterances);
    let few = emotion(&result, 4);
    assert_eq!(few.label, "neutral");
    // Against the file's baseline confidence is halved.
    assert!(few.confidence <= 0.5, "{few:?}");
    assert!(emotion(&result, 0).confidence > 0.5);
}

#[test]
fn one_segment_alone_is_neutral_with_no_confidence() {
    let result = annotated(&[say(0, 150.0, 0.3)]);
    let only = emotion(&result, 0);
    assert_eq!(
        (only.label.as_str(), only.arousal, only.confidence),
        ("neutral", Some(0.5), 0.0)
    );
    // Its words still have a baseline: each other.
    assert_eq!(emphases(&result, 0).len(), 5);
}

#[test]
fn the_same_input_gives_the_same_output() {
    let mut utterances = steady(0, 130.0, 5);
    utterances.insert(1, say(0, 180.0, 0.25));
    let (audio, result) = synthetic_result(&utterances);
    assert_prosody_repeats(&audio, &result);
}

#[test]
fn nothing_to_annotate() {
    let (audio, mut result) = synthetic_result(&[]);
    ProsodyEmotion::new().annotate(&audio, &mut result).unwrap();
    assert!(result.segments.is_empty());
    assert_eq!(
        result.metadata.emotion_method.as_deref(),
        Some("prosody-v1")
    );
}
