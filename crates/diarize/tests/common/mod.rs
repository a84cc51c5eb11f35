//! Test dialogues made at test time from distinct synthetic voices (festival and espeak-ng, through
//! sox), their reference turns, and a diarization error rate scorer. Nothing is downloaded.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

use std::process::Command;
use std::sync::OnceLock;

use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::request::SpeakerHint;
use ecg_core::stages::{Diarizer, SpeakerTurn, VoiceDetector};
use ecg_diarize::{DiarizeConfig, SpeakerDiarizer};
use ecg_speech::{SileroVad, VadConfig};

/// A synthetic voice.
#[derive(Clone, Copy, Debug)]
pub enum Voice {
    /// A festival voice, e.g. `kal_diphone`, through `text2wave`.
    Festival(&'static str),
    /// An espeak-ng voice such as `en-us+m3`, with a pitch (0-99).
    Espeak(&'static str, u32),
}

pub const KAL: Voice = Voice::Festival("kal_diphone");
pub const KED: Voice = Voice::Festival("ked_diphone");
pub const SLT: Voice = Voice::Festival("cmu_us_slt_arctic_hts");
pub const ESPEAK_M3: Voice = Voice::Espeak("en-us+m3", 50);
pub const ESPEAK_F4: Voice = Voice::Espeak("en+f4", 60);
pub const ESPEAK_US: Voice = Voice::Espeak("en-us", 50);

const SENTENCES: [&str; 24] = [
    "The library opens at nine every morning, and closes late on Fridays.",
    "Please return your books before the end of the month.",
    "Children can join the reading club on Saturdays.",
    "I think the weather will be much better tomorrow afternoon.",
    "Did you remember to buy milk and bread on the way home?",
    "The train to the city leaves from platform four in ten minutes.",
    "We should paint the kitchen a brighter color this summer.",
    "My brother works at a small bakery near the river.",
    "Could you send me the report before the meeting starts?",
    "The garden looks lovely now that the roses are in bloom.",
    "I have never seen so many people at the market before.",
    "Let us meet at the coffee shop around the corner at noon.",
    "The museum has a new exhibition about ancient ships.",
    "She plays the piano every evening after dinner.",
    "Our flight was delayed for three hours because of the storm.",
    "He forgot his umbrella again, so he got completely wet.",
    "The new restaurant downtown serves excellent fish soup.",
    "Remember to turn off the lights when you leave the office.",
    "They are building a bridge across the valley next year.",
    "The children laughed at the funny dog in the park.",
    "I would like a cup of tea with a little honey, please.",
    "The doctor said I should walk for thirty minutes a day.",
    "Tomorrow we will visit my grandmother in the country.",
    "This old computer is far too slow for modern games.",
];

/// Fails loudly when the provisioned models are missing: model tests must never pass by skipping.
pub fn require_models() {
    let dir = ecg_models::model_dir();
    for file in [
        "speaker_campplus.onnx",
        "silero_vad.onnx",
        "libonnxruntime.so",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run `make models` (or point ECG_MODEL_DIR at the models)",
            dir.join(file).display()
        );
    }
}

/// The stages under test, loaded once per test binary.
pub fn stages() -> &'static (SileroVad, SpeakerDiarizer) {
    static STAGES: OnceLock<(SileroVad, SpeakerDiarizer)> = OnceLock::new();
    STAGES.get_or_init(|| {
        require_models();
        (
            SileroVad::new(VadConfig::default()).unwrap(),
            SpeakerDiarizer::new(DiarizeConfig::default()).unwrap(),
        )
    })
}

/// Speech of one voice at 16 kHz, trimmed to where it is audible.
pub fn speech(voice: Voice, text: &str) -> Vec<f32> {
    let script = match voice {
        Voice::Festival(_) => {
            // text2wave must seek in its output, so it writes a file that sox then reads.
            r#"t=$(mktemp --suffix .wav) && printf '%s' "$2" | text2wave -eval "(voice_$1)" -o "$t" &&
               sox -q "$t" -t f32 -r 16000 -c 1 -; s=$?; rm -f "$t"; exit $s"#
        }
        Voice::Espeak(..) => {
            r#"espeak-ng -v "$1" -p "$3" --stdout "$2" | sox -q -t wav - -t f32 -r 16000 -c 1 -"#
        }
    };
    let (name, pitch) = match voice {
        Voice::Festival(name) => (name, 0),
        Voice::Espeak(name, pitch) => (name, pitch),
    };
    let out = Command::new("sh")
        .args(["-c", script, "sh", name, text, &pitch.to_string()])
        .output()
        .expect("festival (text2wave), espeak-ng and sox are needed to make test speech");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "speech synthesis failed for {voice:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let samples: Vec<f32> = out
        .stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let audible = |s: &f32| s.abs() > 0.01;
    let first = samples.iter().position(audible).unwrap_or(0);
    let last = samples.iter().rposition(audible).map_or(0, |i| i + 1);
    samples[first..last.max(first)].to_vec()
}

pub fn silence(secs: f64) -> Vec<f32> {
    vec![0.0; (secs * f64::from(SAMPLE_RATE_HZ)) as usize]
}

fn seconds(samples: usize) -> f64 {
    samples as f64 / f64::from(SAMPLE_RATE_HZ)
}

/// Reference: who speaks when (speakers numbered by their index in the voice list).
#[derive(Clone, Debug)]
pub struct Dialogue {
    pub audio: Audio,
    pub reference: Vec<SpeakerTurn>,
}

/// Builds a dialogue: `turns` turns, the voices taking turns in order (or as `order` says), each
/// turn one or two sentences, with pauses of 0.3 to 1 s between turns.
pub fn dialogue(voices: &[Voice], turns: usize, seed: u32) -> Dialogue {
    let order: Vec<usize> = (0..turns).map(|t| t % voices.len()).collect();
    dialogue_in_order(voices, &order, seed)
}

/// No speaker count given: the stage finds it.
pub const AUTO: SpeakerHint = SpeakerHint {
    num: None,
    min: None,
    max: None,
};

/// A deterministic source of numbers in [0, 1] (xorshift), so that generated tests repeat.
pub fn uniform(seed: u32) -> impl FnMut() -> f64 {
    let mut rng = seed.wrapping_mul(2_654_435_761).max(1);
    move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        f64::from(rng) / f64::from(u32::MAX)
    }
}

pub fn dialogue_in_order(voices: &[Voice], order: &[usize], seed: u32) -> Dialogue {
    let mut next = uniform(seed);
    let mut samples = silence(0.5);
    let mut reference = Vec::new();
    let mut sentence = seed as usize;
    for &speaker in order {
        let count = if next() < 0.5 { 1 } else { 2 };
        let text: Vec<&str> = (0..count)
            .map(|i| SENTENCES[(sentence + i) % SENTENCES.len()])
            .collect();
        sentence += count;
        let start = seconds(samples.len());
        samples.extend(speech(voices[speaker], &text.join(" ")));
        reference.push(SpeakerTurn {
            span: TimeSpan::new(start, seconds(samples.len())),
            speaker,
        });
        samples.extend(silence(0.3 + 0.7 * next()));
    }
    Dialogue {
        audio: Audio::new(samples),
        reference,
    }
}

/// Voice activity, then diarization, as the pipeline runs them; checks that the turns cover the
/// speech regions exactly, in order.
pub fn diarize(audio: &Audio, hint: SpeakerHint) -> Vec<SpeakerTurn> {
    let (vad, diarizer) = stages();
    let regions = vad.speech_regions(audio).unwrap();
    let turns = diarizer.speaker_turns(audio, &regions, hint).unwrap();
    for w in turns.windows(2) {
        assert!(
            w[0].span.end_s <= w[1].span.start_s + 1e-9,
            "overlapping turns {w:?}"
        );
    }
    for r in &regions {
        let covered: f64 = turns.iter().map(|t| t.span.overlap_s(*r)).sum();
        assert!(
            (covered - r.duration_s()).abs() < 1e-6,
            "region {r:?} not covered: {turns:?}"
        );
    }
    let total: f64 = turns.iter().map(|t| t.span.duration_s()).sum();
    let speech: f64 = regions.iter().map(|r| r.duration_s()).sum();
    assert!(
        (total - speech).abs() < 1e-6,
        "turns outside the speech regions"
    );
    turns
}

/// How many distinct speakers the turns name.
pub fn speaker_count(turns: &[SpeakerTurn]) -> usize {
    let mut ids: Vec<usize> = turns.iter().map(|t| t.speaker).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// The parts of the diarization error rate, each a fraction of the scored reference speech.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorParts {
    pub missed: f64,
    pub false_alarm: f64,
    pub confusion: f64,
}

impl ErrorParts {
    pub fn total(self) -> f64 {
        self.missed + self.false_alarm + self.confusion
    }
}

/// Diarization error rate with a forgiveness collar: (missed speech + false alarm + speaker
/// confusion) / reference speech, over 10 ms frames, leaving out `collar_s` either side of every
/// reference boundary, under the mapping of hypothesis to reference speakers that agrees most.
pub fn der(reference: &[SpeakerTurn], hypothesis: &[SpeakerTurn], collar_s: f64) -> f64 {
    der_parts(reference, hypothesis, collar_s).total()
}

/// The error's parts, scored as NIST's md-eval does: reference turns may overlap, and a frame
/// where k people speak counts k times; a frame with r reference and h hypothesis speakers
/// misses max(0, r − h), falsely adds max(0, h − r) and confuses min(r, h) less the ones matched.
pub fn der_parts(
    reference: &[SpeakerTurn],
    hypothesis: &[SpeakerTurn],
    collar_s: f64,
) -> ErrorParts {
    const STEP: f64 = 0.01;
    let end = reference
        .iter()
        .chain(hypothesis)
        .map(|t| t.span.end_s)
        .fold(0.0, f64::max);
    let frames = (end / STEP).ceil() as usize + 1;
    let speakers_at = |turns: &[SpeakerTurn], t: f64| -> Vec<usize> {
        let mut ids: Vec<usize> = turns
            .iter()
            .filter(|x| x.span.start_s <= t && t < x.span.end_s)
            .map(|x| x.speaker)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let near_boundary = |t: f64| {
        reference
            .iter()
            .any(|r| (t - r.span.start_s).abs() < collar_s || (t - r.span.end_s).abs() < collar_s)
    };
    let scored: Vec<(Vec<usize>, Vec<usize>)> = (0..frames)
        .map(|i| (i as f64 + 0.5) * STEP)
        .filter(|&t| !near_boundary(t))
        .map(|t| (speakers_at(reference, t), speakers_at(hypothesis, t)))
        .collect();
    let n_ref = reference.iter().map(|t| t.speaker + 1).max().unwrap_or(0);
    let n_hyp = hypothesis.iter().map(|t| t.speaker + 1).max().unwrap_or(0);
    // joint[h][r]: frames where the hypothesis says h and the reference r.
    let mut joint = vec![vec![0usize; n_ref]; n_hyp];
    for (rs, hs) in &scored {
        for &h in hs {
            for &r in rs {
                joint[h][r] += 1;
            }
        }
    }
    let matched = best_matching(&joint, 0, &mut vec![false; n_ref]);
    let (mut reference_speech, mut missed, mut false_alarm, mut both) = (0, 0, 0, 0);
    for (rs, hs) in &scored {
        reference_speech += rs.len();
        missed += rs.len().saturating_sub(hs.len());
        false_alarm += hs.len().saturating_sub(rs.len());
        both += rs.len().min(hs.len());
    }
    let share = |frames: usize| frames as f64 / reference_speech.max(1) as f64;
    ErrorParts {
        missed: share(missed),
        false_alarm: share(false_alarm),
        confusion: share(both - matched),
    }
}

/// The largest total agreement of a one-to-one mapping of hypothesis speakers from `h` on to
/// reference speakers not yet `taken` (exhaustive: a handful of speakers).
fn best_matching(joint: &[Vec<usize>], h: usize, taken: &mut [bool]) -> usize {
    if h == joint.len() {
        return 0;
    }
    let mut best = best_matching(joint, h + 1, taken);
    for r in 0..taken.len() {
        if !taken[r] {
            taken[r] = true;
            best = best.max(joint[h][r] + best_matching(joint, h + 1, taken));
            taken[r] = false;
        }
    }
    best
}

/// Scores turns against a dialogue's reference and prints what was found.
pub fn report(name: &str, dialogue: &Dialogue, turns: &[SpeakerTurn]) -> f64 {
    let error = der(&dialogue.reference, turns, 0.25);
    println!(
        "{name}: {:.1} s, {} reference turns, {} speakers found, {} turns, DER {:.2} %",
        dialogue.audio.duration_s(),
        dialogue.reference.len(),
        speaker_count(turns),
        turns.len(),
        error * 100.0
    );
    error
}
