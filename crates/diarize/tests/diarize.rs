//! Diarization of generated dialogues between distinct synthetic voices, after the real voice
//! activity detector: speaker counts, DER with a 0.25 s collar, and the request's hints.

mod common;

use common::*;
use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::error::StageError;
use ecg_core::request::SpeakerHint;
use ecg_core::stages::{Diarizer, SpeakerTurn};
use ecg_diarize::{DiarizeConfig, SpeakerDiarizer};

fn exactly(num: u8) -> SpeakerHint {
    SpeakerHint {
        num: Some(num),
        ..AUTO
    }
}

const MAX_DER: f64 = 0.10;

#[test]
fn two_speakers_festival() {
    let d = dialogue(&[KAL, SLT], 12, 1);
    let turns = diarize(&d.audio, AUTO);
    let error = report("kal + slt", &d, &turns);
    assert_eq!(speaker_count(&turns), 2, "{turns:?}");
    assert!(error <= MAX_DER, "DER {error}");
}

#[test]
fn two_speakers_espeak() {
    let d = dialogue(&[ESPEAK_M3, ESPEAK_F4], 12, 2);
    let turns = diarize(&d.audio, AUTO);
    let error = report("espeak m3 + f4", &d, &turns);
    assert_eq!(speaker_count(&turns), 2, "{turns:?}");
    assert!(error <= MAX_DER, "DER {error}");
}

#[test]
fn three_speakers_festival() {
    let d = dialogue(&[KAL, KED, SLT], 13, 3);
    let turns = diarize(&d.audio, AUTO);
    let error = report("kal + ked + slt", &d, &turns);
    assert_eq!(speaker_count(&turns), 3, "{turns:?}");
    assert!(error <= MAX_DER, "DER {error}");
}

#[test]
fn three_speakers_mixed_engines_out_of_turn() {
    // Not round-robin: speakers come back after one another in an irregular order.
    let order = [0, 1, 0, 2, 1, 2, 0, 2, 1, 0, 1, 2];
    let d = dialogue_in_order(&[ESPEAK_M3, SLT, KED], &order, 4);
    let turns = diarize(&d.audio, AUTO);
    let error = report("espeak m3 + slt + ked", &d, &turns);
    assert_eq!(speaker_count(&turns), 3, "{turns:?}");
    assert!(error <= MAX_DER, "DER {error}");
}

#[test]
fn one_speaker_alone_is_one_speaker() {
    for (name, voice) in [("ked", KED), ("slt", SLT), ("espeak f4", ESPEAK_F4)] {
        let d = dialogue(&[voice], 7, 5);
        let turns = diarize(&d.audio, AUTO);
        let error = report(name, &d, &turns);
        assert_eq!(speaker_count(&turns), 1, "{name}: {turns:?}");
        assert!(error <= MAX_DER, "{name}: DER {error}");
    }
}

#[test]
fn short_clips_are_not_over_split() {
    // 5 to 30 s: few windows, each alike its overlapping neighbours mostly because they share
    // audio. Seeds vary the sentences and the pauses.
    for (name, voices, turns) in [
        ("kal + slt", &[KAL, SLT][..], 4),
        ("espeak m3 + f4", &[ESPEAK_M3, ESPEAK_F4][..], 4),
        ("ked alone", &[KED][..], 4),
        ("espeak en-us alone", &[ESPEAK_US][..], 2),
        ("slt alone", &[SLT][..], 1),
        ("espeak en-us, one turn", &[ESPEAK_US][..], 1),
    ] {
        for seed in 21..24 {
            let d = dialogue(voices, turns, seed);
            let turns = diarize(&d.audio, AUTO);
            let error = report(&format!("{name}, seed {seed}"), &d, &turns);
            assert_eq!(
                speaker_count(&turns),
                voices.len(),
                "{name} {seed}: {turns:?}"
            );
            assert!(error <= MAX_DER, "{name} {seed}: DER {error}");
        }
    }
}

#[test]
fn a_given_number_of_speakers_is_honoured() {
    let three = dialogue(&[KAL, KED, SLT], 9, 6);
    assert_eq!(speaker_count(&diarize(&three.audio, exactly(3))), 3);
    assert_eq!(speaker_count(&diarize(&three.audio, exactly(2))), 2);
    assert_eq!(speaker_count(&diarize(&three.audio, exactly(4))), 4);
    let one = dialogue(&[SLT], 5, 7);
    assert_eq!(speaker_count(&diarize(&one.audio, exactly(1))), 1);
    assert_eq!(speaker_count(&diarize(&one.audio, exactly(2))), 2);
}

#[test]
fn min_and_max_speakers_bound_the_count() {
    let three = dialogue(&[KAL, KED, SLT], 9, 6);
    let at_most_two = SpeakerHint {
        max: Some(2),
        ..AUTO
    };
    assert_eq!(speaker_count(&diarize(&three.audio, at_most_two)), 2);
    let one = dialogue(&[SLT], 5, 7);
    let at_least_two = SpeakerHint {
        min: Some(2),
        ..AUTO
    };
    assert_eq!(speaker_count(&diarize(&one.audio, at_least_two)), 2);
    let loose = SpeakerHint {
        min: Some(1),
        max: Some(5),
        num: None,
    };
    assert_eq!(speaker_count(&diarize(&three.audio, loose)), 3);
}

#[test]
fn short_answers_get_a_speaker() {
    // Replies far shorter than a 1.6 s window, alone between long pauses.
    let mut samples = silence(0.5);
    let mut reference = Vec::new();
    let long = "The museum has a new exhibition about ancient ships, and it opens next week.";
    for (speaker, voice, text) in [
        (0, KAL, long),
        (1, SLT, "Yes."),
        (0, KAL, long),
        (1, SLT, "Okay."),
        (0, KAL, long),
        (1, SLT, "I would love to see it with you tomorrow."),
    ] {
        let start = samples.len() as f64 / 16_000.0;
        samples.extend(speech(voice, text));
        reference.push(SpeakerTurn {
            span: TimeSpan::new(start, samples.len() as f64 / 16_000.0),
            speaker,
        });
        samples.extend(silence(1.2));
    }
    let d = Dialogue {
        audio: Audio::new(samples),
        reference,
    };
    let turns = diarize(&d.audio, AUTO);
    let error = report("short answers", &d, &turns);
    assert_eq!(speaker_count(&turns), 2, "{turns:?}");
    assert!(error <= MAX_DER, "DER {error}");
}

#[test]
fn no_speech_gives_no_turns() {
    let (_, diarizer) = stages();
    let audio = Audio::new(silence(3.0));
    assert!(
        diarizer
            .speaker_turns(&audio, &[], AUTO)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_missing_model_is_a_model_loading_error() {
    let config = DiarizeConfig {
        model: Some("/nonexistent/speaker_encoder.onnx".into()),
        ..DiarizeConfig::default()
    };
    let Err(StageError::ModelLoading(message)) = SpeakerDiarizer::new(config) else {
        panic!("a missing model must be a model loading error");
    };
    assert!(message.contains("make models"), "{message}");
}

#[test]
fn the_scorer_scores() {
    let turn = |a, b, speaker| SpeakerTurn {
        span: TimeSpan::new(a, b),
        speaker,
    };
    let reference = [turn(0.0, 10.0, 0), turn(10.0, 20.0, 1)];
    // Names are arbitrary: a swapped labelling is perfect.
    assert!(der(&reference, &[turn(0.0, 10.0, 1), turn(10.0, 20.0, 0)], 0.25) < 1e-9);
    // One speaker for everything: half the (scored) speech is confused.
    let all_one = der(&reference, &[turn(0.0, 20.0, 0)], 0.25);
    assert!((all_one - 0.5).abs() < 0.01, "{all_one}");
    // A boundary 0.2 s off is inside the collar; 1 s off is not.
    assert!(der(&reference, &[turn(0.0, 10.2, 0), turn(10.2, 20.0, 1)], 0.25) < 1e-9);
    let late = der(&reference, &[turn(0.0, 11.0, 0), turn(11.0, 20.0, 1)], 0.25);
    assert!(late > 0.03, "{late}");
    // Missing speech and false alarms count.
    let missed = der(&reference, &[turn(0.0, 10.0, 0)], 0.25);
    assert!((missed - 0.5).abs() < 0.01, "{missed}");
    // Overlapped speech counts once per speaker: one voice heard of two is half missed there.
    let overlapped = [turn(0.0, 10.0, 0), turn(5.0, 10.0, 1)];
    let parts = der_parts(&overlapped, &[turn(0.0, 10.0, 0)], 0.25);
    assert!((parts.missed - 1.0 / 3.0).abs() < 0.02, "{parts:?}");
    assert!(
        parts.confusion < 1e-9 && parts.false_alarm < 1e-9,
        "{parts:?}"
    );
}
