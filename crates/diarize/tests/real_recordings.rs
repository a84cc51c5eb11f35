//! Diarization of real human recordings, after the real voice activity detector:
//! - 30-second excerpts of AMI meetings (the training split `make testdata` provisions), scored
//!   against their annotated turns, overlapped speech included;
//! - conversations put together from telephone prompts that real people read (8 kHz studio
//!   recordings: every pair of six women, a man and a woman, three people) and each reader alone
//!   for minutes.
//!
//! The files come from `make testdata` (`infra/testdata/provision.sh`); the tests fail, never
//! skip, when they are missing.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::*;
use ecg_audio::MediaDecoder;
use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::stages::{Decoder, SpeakerTurn};
use ecg_testkit::{ami_annotations, sound_prompts, testdata_dir};

fn decode(path: &Path) -> Audio {
    MediaDecoder::new()
        .decode(path)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// An AMI excerpt and its annotated turns (speakers numbered in order of appearance).
struct Meeting {
    name: String,
    audio: Audio,
    reference: Vec<SpeakerTurn>,
    /// Seconds each reference speaker talks.
    talk: Vec<f64>,
}

fn meetings() -> Vec<Meeting> {
    let dir = testdata_dir().join("ami");
    ami_annotations()
        .into_iter()
        .map(|(name, turns)| {
            let mut ids: Vec<&str> = Vec::new();
            let mut reference = Vec::new();
            let mut talk = Vec::new();
            for (start, end, who) in &turns {
                let speaker = ids.iter().position(|i| i == who).unwrap_or_else(|| {
                    ids.push(who);
                    talk.push(0.0);
                    ids.len() - 1
                });
                talk[speaker] += end - start;
                reference.push(SpeakerTurn {
                    span: TimeSpan::new(*start, *end),
                    speaker,
                });
            }
            Meeting {
                audio: decode(&dir.join(format!("{name}.wav"))),
                name,
                reference,
                talk,
            }
        })
        .collect()
}

/// Seconds where exactly one annotated speaker talks, and how many of them no turn covers: missed
/// speech that overlap does not explain.
fn solo_speech_missed(reference: &[SpeakerTurn], turns: &[SpeakerTurn], end_s: f64) -> (f64, f64) {
    const STEP: f64 = 0.01;
    let (mut solo, mut missed) = (0.0, 0.0);
    for i in 0..(end_s / STEP) as usize {
        let t = (i as f64 + 0.5) * STEP;
        let heard = |x: &&SpeakerTurn| x.span.start_s <= t && t < x.span.end_s;
        if reference.iter().filter(heard).count() == 1 {
            solo += STEP;
            if !turns.iter().any(|x| heard(&x)) {
                missed += STEP;
            }
        }
    }
    (solo, missed)
}

/// Speakers who talk for at least two seconds of the excerpt: a cough or a one-word reply is an
/// annotated speaker, but no diarization can be asked to find a voice from half a second.
fn audible_speakers(m: &Meeting) -> usize {
    m.talk.iter().filter(|&&t| t >= 2.0).count()
}

/// What the diarization gets right on the AMI training excerpts, each passed through `channel`.
struct MeetingScores {
    /// Excerpts whose speaker count is right, of those with a speaker of 2 s or more.
    right: usize,
    countable: usize,
    /// Excerpts with more than one speaker too many.
    over_counted: usize,
    /// Over all annotated speech.
    confusion: f64,
    false_alarm: f64,
    /// Seconds spoken by one person alone, and of them missed.
    solo: f64,
    solo_missed: f64,
}

fn score_meetings(label: &str, channel: fn(&Audio) -> Audio) -> MeetingScores {
    let mut rows = Vec::new();
    let (mut solo_total, mut solo_missed_total) = (0.0, 0.0);
    for m in meetings() {
        let audio = channel(&m.audio);
        let turns = diarize(&audio, AUTO);
        let parts = der_parts(&m.reference, &turns, 0.25);
        let speech: f64 = m.talk.iter().sum();
        let (solo, solo_missed) = solo_speech_missed(&m.reference, &turns, audio.duration_s());
        println!(
            "{label} {}: {} annotated speakers ({} with ≥ 2 s), {} found, {:.1} s annotated \
             speech, DER {:.1} % = missed {:.1} % + false alarm {:.1} % + confusion {:.1} %; \
             {solo_missed:.1} s of {solo:.1} s one person spoke alone missed",
            m.name,
            m.talk.len(),
            audible_speakers(&m),
            speaker_count(&turns),
            speech,
            parts.total() * 100.0,
            parts.missed * 100.0,
            parts.false_alarm * 100.0,
            parts.confusion * 100.0
        );
        rows.push((audible_speakers(&m), speaker_count(&turns), speech, parts));
        solo_total += solo;
        solo_missed_total += solo_missed;
    }
    let speech: f64 = rows.iter().map(|r| r.2).sum();
    let weighted =
        |part: fn(&ErrorParts) -> f64| rows.iter().map(|r| part(&r.3) * r.2).sum::<f64>() / speech;
    let scores = MeetingScores {
        right: rows.iter().filter(|r| r.0 > 0 && r.0 == r.1).count(),
        countable: rows.iter().filter(|r| r.0 > 0).count(),
        over_counted: rows.iter().filter(|r| r.1 > r.0.max(1) + 1).count(),
        confusion: weighted(|p| p.confusion),
        false_alarm: weighted(|p| p.false_alarm),
        solo: solo_total,
        solo_missed: solo_missed_total,
    };
    println!(
        "{label} AMI training split: speaker count right on {} of {}; over all speech missed \
         {:.1} %, false alarm {:.1} %, confusion {:.1} %; {:.1} s of {:.1} s spoken by one person \
         alone missed",
        scores.right,
        scores.countable,
        weighted(|p| p.missed) * 100.0,
        scores.false_alarm * 100.0,
        scores.confusion * 100.0,
        scores.solo_missed,
        scores.solo
    );
    scores
}

#[test]
fn ami_meeting_excerpts() {
    let scores = score_meetings("wideband", Audio::clone);
    assert_eq!(scores.over_counted, 0, "more speakers than the excerpt has");
    // CAM++ gets five of eight right with 2.5 % confusion (the same with float convolutions; each
    // window through the model on its own: four, 2.7 %; GE2E, calibrated on these very excerpts:
    // six, 3.3 %). The misses are a third speaker of a few seconds merged (trn00, trn04, trn08).
    // Two wrong counts more, or 4 % confusion, is a regression.
    assert!(
        scores.right >= 4,
        "speaker count right on only {} of {}",
        scores.right,
        scores.countable
    );
    assert!(scores.confusion <= 0.04, "speaker confusion");
    // Quiet and distant speech must reach the transcript: what one person says alone is found
    // but for words the voice activity detector cannot tell from noise (9.3 % on this split).
    assert!(
        scores.solo_missed <= 0.11 * scores.solo,
        "missed {} s of {} s of speech without overlap",
        scores.solo_missed,
        scores.solo
    );
    assert!(scores.false_alarm <= 0.05, "false alarm");
}

/// The same meetings as a telephone line carries them (300–3400 Hz), as when a room dials in.
/// Measured with CAM++: 3 of 8 counts right, confusion 1.1 %, and 12.2 % of what one person says
/// alone missed (9.3 % wideband). Each window through the model on its own counted 4 of 8 right
/// with 2.4 % confusion; two excerpts (trn06, trn08) hang on clusters of 3 to 8 windows within
/// 0.02 to 0.1 of the merging threshold, so their counts come and go with the slightest change
/// of the embeddings (trn06 is one speaker with float convolutions). GE2E: 3 of 8, 3.9 %.
/// Silero VAD leans on the band below 300 Hz: cut, quiet far speech scores lower (with its usual
/// thresholds, 0.5/0.35, 18.7 % is missed; its own 8 kHz mode misses more).
#[test]
fn ami_meeting_excerpts_over_a_telephone_line() {
    let scores = score_meetings("telephone band", telephone_band);
    assert_eq!(scores.over_counted, 0, "more speakers than the excerpt has");
    assert!(
        scores.right >= 2,
        "speaker count right on only {} of {}",
        scores.right,
        scores.countable
    );
    assert!(scores.confusion <= 0.04, "speaker confusion");
    assert!(
        scores.solo_missed <= 0.14 * scores.solo,
        "missed {} s of {} s of speech without overlap",
        scores.solo_missed,
        scores.solo
    );
}

/// `audio` through a telephone channel's band (300–3400 Hz): a windowed-sinc band-pass, as
/// 8 kHz audio upsampled to 16 kHz sounds.
fn telephone_band(audio: &Audio) -> Audio {
    const TAPS: usize = 255;
    let rate = f64::from(SAMPLE_RATE_HZ);
    let lowpass = |cutoff_hz: f64, i: usize| {
        let x = i as f64 - (TAPS / 2) as f64;
        let f = cutoff_hz / rate;
        if x == 0.0 {
            2.0 * f
        } else {
            (2.0 * std::f64::consts::PI * f * x).sin() / (std::f64::consts::PI * x)
        }
    };
    let taps: Vec<f32> = (0..TAPS)
        .map(|i| {
            let hamming =
                0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (TAPS - 1) as f64).cos();
            ((lowpass(3400.0, i) - lowpass(300.0, i)) * hamming) as f32
        })
        .collect();
    let x = &audio.samples;
    let samples = (0..x.len())
        .map(|n| {
            taps.iter()
                .enumerate()
                .filter_map(|(k, t)| {
                    (n + TAPS / 2)
                        .checked_sub(k)
                        .and_then(|i| x.get(i))
                        .map(|s| t * s)
                })
                .sum()
        })
        .collect();
    Audio::new(samples)
}

/// One real reader's spoken telephone prompts (not the tones and sound effects among them): each
/// trimmed to where it is audible, longer than a second, in name order. Decoded once per test
/// binary: every conversation draws from them.
fn prompts(voice: &str) -> Arc<Vec<Vec<f32>>> {
    static DECODED: Mutex<BTreeMap<String, Arc<Vec<Vec<f32>>>>> = Mutex::new(BTreeMap::new());
    // Held while decoding: a test that needs the same reader waits instead of decoding it again.
    let mut decoded = DECODED.lock().unwrap();
    let prompts = decoded.entry(voice.to_owned()).or_insert_with(|| {
        let dir = testdata_dir().join("voices").join(voice);
        let sounds = sound_prompts();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|f| {
                f.file_stem()
                    .is_some_and(|s| !sounds.contains(s.to_string_lossy().as_ref()))
            })
            .collect();
        files.sort();
        Arc::new(
            files
                .iter()
                .map(|f| trim(&decode(f).samples))
                .filter(|s| s.len() > SAMPLE_RATE_HZ as usize)
                .collect(),
        )
    });
    Arc::clone(prompts)
}

fn trim(samples: &[f32]) -> Vec<f32> {
    let audible = |s: &f32| s.abs() > 0.01;
    let first = samples.iter().position(audible).unwrap_or(0);
    let last = samples.iter().rposition(audible).map_or(0, |i| i + 1);
    samples[first..last.max(first)].to_vec()
}

/// A conversation: `turns` turns, the voices in order, each turn one to three prompts of its
/// reader with short gaps, turns 0.2 to 0.8 s apart. Prompts are drawn without repeats.
fn conversation(voices: &[&str], turns: usize, seed: u32) -> Dialogue {
    let mut next = uniform(seed);
    let readers: Vec<Arc<Vec<Vec<f32>>>> = voices.iter().map(|v| prompts(v)).collect();
    // Indices of the prompts not drawn yet, per reader.
    let mut pools: Vec<Vec<usize>> = readers.iter().map(|r| (0..r.len()).collect()).collect();
    let mut samples = silence(0.5);
    let mut reference = Vec::new();
    for turn in 0..turns {
        let speaker = turn % voices.len();
        let start = samples.len();
        for _ in 0..1 + (next() * 3.0) as usize {
            let pool = &mut pools[speaker];
            let prompt = pool.swap_remove((next() * pool.len() as f64) as usize % pool.len());
            samples.extend_from_slice(&readers[speaker][prompt]);
            samples.extend(silence(0.05 + 0.2 * next()));
        }
        let rate = f64::from(SAMPLE_RATE_HZ);
        reference.push(SpeakerTurn {
            span: TimeSpan::new(start as f64 / rate, samples.len() as f64 / rate),
            speaker,
        });
        samples.extend(silence(0.2 + 0.6 * next()));
    }
    Dialogue {
        audio: Audio::new(samples),
        reference,
    }
}

#[test]
fn two_women_on_the_telephone() {
    for seed in [1, 2] {
        let d = conversation(&["allison", "paola"], 12, seed);
        let turns = diarize(&d.audio, AUTO);
        let error = report(&format!("allison + paola, seed {seed}"), &d, &turns);
        assert_eq!(speaker_count(&turns), 2, "{turns:?}");
        assert!(error <= 0.15, "DER {error}");
    }
}

/// The women among the readers: six real voices in four languages, two of them through the GSM
/// codec of a real telephone network.
const WOMEN: [&str; 6] = ["allison", "paola", "june", "ivrvoice", "armelle", "july"];

/// Every pair of the six women in two conversations each: two women on one line is the case where
/// the speaker embedding finds voices most alike (with GE2E, Allison and June's clusters are 0.87
/// alike, as alike as a meeting participant's own clusters of a few windows). With CAM++: 30 of
/// 30, mean DER 1.2 %, the worst 5.1 %; the two clusters of a pair are at most 0.62 alike, where
/// one reader's are 0.89 and more.
#[test]
fn every_pair_of_women_on_the_telephone() {
    let mut wrong = Vec::new();
    let mut errors = Vec::new();
    for (i, a) in WOMEN.iter().enumerate() {
        for b in &WOMEN[i + 1..] {
            for seed in [7, 9] {
                let d = conversation(&[a, b], 10, seed);
                let turns = diarize(&d.audio, AUTO);
                let error = report(&format!("{a} + {b}, seed {seed}"), &d, &turns);
                errors.push(error);
                let found = speaker_count(&turns);
                if found != 2 || error > 0.15 {
                    wrong.push(format!(
                        "{a} + {b}, seed {seed}: {found} speakers, DER {error:.3}"
                    ));
                }
            }
        }
    }
    println!(
        "pairs of women: {} of {} right, mean DER {:.1} %",
        errors.len() - wrong.len(),
        errors.len(),
        errors.iter().sum::<f64>() / errors.len() as f64 * 100.0
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_man_and_a_woman_and_three_people() {
    let d = conversation(&["carlo", "allison"], 12, 3);
    let turns = diarize(&d.audio, AUTO);
    let error = report("carlo + allison", &d, &turns);
    assert_eq!(speaker_count(&turns), 2, "{turns:?}");
    assert!(error <= 0.10, "DER {error}");

    let d = conversation(&["allison", "paola", "carlo"], 12, 4);
    let turns = diarize(&d.audio, AUTO);
    let error = report("allison + paola + carlo", &d, &turns);
    assert_eq!(speaker_count(&turns), 3, "{turns:?}");
    assert!(error <= 0.15, "DER {error}");
}

#[test]
fn one_reader_for_minutes_is_one_speaker() {
    for (voice, turns) in [
        ("allison", 60),
        ("carlo", 40),
        ("paola", 30),
        ("june", 30),
        ("ivrvoice", 30),
        ("armelle", 30),
        ("july", 30),
    ] {
        let d = conversation(&[voice], turns, 5);
        assert!(d.audio.duration_s() > 180.0, "{}", d.audio.duration_s());
        let found = diarize(&d.audio, AUTO);
        report(&format!("{voice} alone"), &d, &found);
        assert_eq!(speaker_count(&found), 1, "{voice}: {found:?}");
    }
}
