//! prosody-v1 on generated speech, through the real pipeline stages: espeak-ng sentences
//! concatenated into a WAV file by sox, decoded by `MediaDecoder`, voice activity from Silero
//! VAD, words from Whisper, assembled with the real acoustic features, then annotated.
//! Needs the provisioned models (`make models`), espeak-ng and sox.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] fns: a failure should panic"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use common::{arousal, assert_prosody_repeats, emotion, emphases, require_models};
use ecg_audio::{AcousticAnalyzer, MediaDecoder};
use ecg_core::assemble::{AssemblyInput, assemble};
use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::contract::AnalysisResult;
use ecg_core::request::{Language, SpeakerHint};
use ecg_core::stages::{
    AsrOptions, Decoder, Diarizer, EmotionAnalyzer, SingleSpeaker, SpeakerTurn, Transcriber,
    VoiceDetector,
};
use ecg_emotion::ProsodyEmotion;
use ecg_settings::{AsrArgs, VadArgs};
use ecg_speech::{SileroVad, WhisperTranscriber};
use ecg_testkit::checked_stdout;

/// One sentence and how espeak-ng says it.
struct Line {
    text: &'static str,
    voice: &'static str,
    /// espeak-ng `-a`, 0–200 (default 100).
    amplitude: u32,
    /// espeak-ng `-p`, 0–99 (default 50).
    pitch: u32,
    /// Said through SSML `<prosody range="x-low">`: a nearly monotone voice.
    flat: bool,
}

const fn line(text: &'static str, amplitude: u32, pitch: u32) -> Line {
    Line {
        text,
        voice: "en-us",
        amplitude,
        pitch,
        flat: false,
    }
}

/// Silence before the first sentence and after each one.
const LEAD_S: f64 = 0.5;
const GAP_S: f64 = 0.8;

/// The lines as one WAV file in `dir`, and the time span of each line in it.
fn speak(lines: &[Line], dir: &Path) -> (std::path::PathBuf, Vec<TimeSpan>) {
    let run = |cmd: &mut Command| {
        let stdout = checked_stdout(cmd, "espeak-ng and sox are needed to make test speech");
        String::from_utf8_lossy(&stdout).trim().to_owned()
    };
    let mut parts = Vec::new();
    let mut spans = Vec::new();
    let mut t = LEAD_S;
    for (i, l) in lines.iter().enumerate() {
        let said = dir.join(format!("line{i}.wav"));
        let text = if l.flat {
            format!(
                r#"<speak><prosody range="x-low">{}</prosody></speak>"#,
                l.text
            )
        } else {
            l.text.to_owned()
        };
        let mut espeak = Command::new("espeak-ng");
        espeak
            .args(["-v", l.voice, "-a", &l.amplitude.to_string()])
            .args(["-p", &l.pitch.to_string(), "-w"])
            .arg(&said)
            .args(l.flat.then_some("-m"))
            .arg(&text);
        run(&mut espeak);
        let duration: f64 = run(Command::new("soxi").arg("-D").arg(&said))
            .parse()
            .expect("soxi prints a duration");
        spans.push(TimeSpan::new(t, t + duration));
        t += duration + GAP_S;
        let padded = dir.join(format!("padded{i}.wav"));
        let lead = if i == 0 { LEAD_S } else { 0.0 };
        run(Command::new("sox").arg(&said).arg(&padded).args([
            "pad",
            &lead.to_string(),
            &GAP_S.to_string(),
        ]));
        parts.push(padded);
    }
    let all = dir.join("speech.wav");
    run(Command::new("sox").args(&parts).arg(&all));
    (all, spans)
}

struct Stages {
    vad: SileroVad,
    asr: WhisperTranscriber,
}

fn stages() -> &'static Stages {
    static STAGES: OnceLock<Stages> = OnceLock::new();
    STAGES.get_or_init(|| {
        require_models(&["ggml-base-q8_0.bin", "silero_vad.onnx", "libonnxruntime.so"]);
        Stages {
            vad: SileroVad::new(ecg_settings::from_env::<VadArgs>().unwrap().config()).unwrap(),
            asr: WhisperTranscriber::new(&ecg_settings::from_env::<AsrArgs>().unwrap().config())
                .unwrap(),
        }
    })
}

/// Decode, voice activity, speakers (from `diarize`), words and assembly, as the pipeline
/// runs them, one file at a time: the recogniser shares two cores.
fn analyse(
    media: &Path,
    diarize: impl Fn(&Audio, &[TimeSpan]) -> Vec<SpeakerTurn>,
) -> (Audio, AnalysisResult) {
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let stages = stages();
    let audio = MediaDecoder::new().decode(media).unwrap();
    let speech = stages.vad.speech_regions(&audio).unwrap();
    let turns = diarize(&audio, &speech);
    let options = AsrOptions {
        language: Language::En,
        use_gpu: false,
    };
    let transcript = stages.asr.transcribe(&audio, &speech, options).unwrap();
    let result = assemble(&AssemblyInput {
        audio: &audio,
        speech: &speech,
        turns: &turns,
        transcript: &transcript,
        features: &AcousticAnalyzer::new(),
        language_requested: Language::En,
        model_version: stages.asr.model_name(),
    });
    (audio, result)
}

/// The segments whose middle lies in `span`; fails when there are none.
fn segments_in(result: &AnalysisResult, span: TimeSpan, what: &str) -> Vec<usize> {
    let found: Vec<usize> = (0..result.segments.len())
        .filter(|&i| {
            let s = &result.segments[i];
            let mid = 0.5 * (s.start_time + s.end_time);
            span.start_s <= mid && mid <= span.end_s
        })
        .collect();
    assert!(
        !found.is_empty(),
        "no segment for {what} at {span:?}: {:#?}",
        result
            .segments
            .iter()
            .map(|s| (s.start_time, s.end_time, &s.text))
            .collect::<Vec<_>>()
    );
    found
}

fn print_emotions(title: &str, result: &AnalysisResult) {
    eprintln!("{title}:");
    for s in &result.segments {
        let e = s.emotion.as_ref().expect("annotated");
        let words: Vec<String> = s
            .words
            .iter()
            .map(|w| format!("{}({:.2})", w.word, w.emphasis.unwrap_or(f64::NAN)))
            .collect();
        eprintln!(
            "  {} {:>6.2}-{:<6.2} {:<8} arousal {:.3} confidence {:.3}: {}",
            s.speaker.speaker_id,
            s.start_time,
            s.end_time,
            e.label,
            e.arousal.unwrap_or(f64::NAN),
            e.confidence,
            words.join(" ")
        );
    }
}

/// One speaker: normal sentences, one loud and high, one quiet, low and flat.
const ONE_SPEAKER: [Line; 6] = [
    line(
        "The weather was calm on the morning we left the harbor.",
        100,
        50,
    ),
    line(
        "Our small boat carried fresh water, bread and a map.",
        100,
        50,
    ),
    line("Look out, the wave is coming right at us!", 200, 90),
    line(
        "By noon the wind had turned and dark clouds gathered.",
        100,
        50,
    ),
    Line {
        flat: true,
        ..line("We waited in the bay until the storm had passed.", 60, 40)
    },
    line(
        "In the evening we sailed home across the quiet sea.",
        100,
        50,
    ),
];
const LOUD: usize = 2;
const FLAT: usize = 4;

struct OneSpeaker {
    audio: Audio,
    /// Assembled, not yet annotated.
    result: AnalysisResult,
    /// Segments of each line.
    lines: Vec<Vec<usize>>,
}

fn one_speaker() -> &'static OneSpeaker {
    static FILE: OnceLock<OneSpeaker> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (media, spans) = speak(&ONE_SPEAKER, dir.path());
        let (audio, result) = analyse(&media, |audio, speech| {
            SingleSpeaker
                .speaker_turns(audio, speech, SpeakerHint::default())
                .unwrap()
        });
        let lines = spans
            .iter()
            .zip(&ONE_SPEAKER)
            .map(|(&span, l)| segments_in(&result, span, l.text))
            .collect();
        OneSpeaker {
            audio,
            result,
            lines,
        }
    })
}

fn annotate(audio: &Audio, result: &AnalysisResult) -> AnalysisResult {
    let mut result = result.clone();
    ProsodyEmotion::new().annotate(audio, &mut result).unwrap();
    result
}

#[test]
fn the_loud_high_sentence_is_the_most_aroused_and_its_words_the_most_emphasised() {
    let file = one_speaker();
    let result = annotate(&file.audio, &file.result);
    print_emotions("one speaker", &result);
    let loud = &file.lines[LOUD];
    let others: Vec<usize> = (0..result.segments.len())
        .filter(|i| !loud.contains(i))
        .collect();
    let quietest_loud = loud
        .iter()
        .map(|&i| arousal(&result, i))
        .fold(f64::INFINITY, f64::min);
    for &i in &others {
        assert!(
            arousal(&result, i) < quietest_loud,
            "segment {i} is as aroused as the loud sentence"
        );
    }
    for &i in loud {
        assert_eq!(emotion(&result, i).label, "excited", "segment {i}");
    }
    for (line, segments) in file.lines.iter().enumerate() {
        if line != LOUD && line != FLAT {
            for &i in segments {
                assert_ne!(emotion(&result, i).label, "excited", "line {line}");
            }
        }
    }

    // The most emphasised word of the file is in the loud sentence, and so is the highest
    // mean emphasis of a segment.
    let mean = |i: usize| {
        let e = emphases(&result, i);
        e.iter().sum::<f64>() / e.len() as f64
    };
    let best_word = (0..result.segments.len())
        .flat_map(|i| emphases(&result, i).into_iter().map(move |e| (i, e)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(
        loud.contains(&best_word.0),
        "most emphasised: {best_word:?}"
    );
    let loud_mean = loud.iter().map(|&i| mean(i)).fold(0.0, f64::max);
    for &i in &others {
        assert!(mean(i) < loud_mean, "segment {i}");
    }
}

#[test]
fn a_flat_sentence_is_calm_or_neutral() {
    let file = one_speaker();
    let result = annotate(&file.audio, &file.result);
    for &i in &file.lines[FLAT] {
        let e = emotion(&result, i);
        assert!(e.label == "calm" || e.label == "neutral", "{e:?}");
    }
}

#[test]
fn the_same_input_gives_the_same_output() {
    let file = one_speaker();
    assert_prosody_repeats(&file.audio, &file.result);
}

/// Two speakers taking turns: A at espeak-ng's usual pitch, B a naturally high voice speaking
/// just as steadily.
#[test]
fn a_naturally_high_voice_is_not_always_excited() {
    let high = |text| Line {
        voice: "en-us+f3",
        ..line(text, 100, 90)
    };
    // A talks most of the time, as a host does; B answers three times.
    let lines = [
        line(
            "The train leaves the station at nine in the morning.",
            100,
            50,
        ),
        high("I will bring the tickets and a bottle of water."),
        line("Remember to pack a warm coat for the mountains.", 100, 50),
        line("The roads up there are narrow and steep.", 100, 50),
        high("The weather there changes quickly in the autumn."),
        line("We should arrive before the sun goes down.", 100, 50),
        line("The hotel has a small garden behind the kitchen.", 100, 50),
        high("Then we can walk to the lake after dinner."),
    ];
    let speaker_of_line = |i: usize| usize::from(matches!(i, 1 | 4 | 7));
    let dir = tempfile::tempdir().unwrap();
    let (media, spans) = speak(&lines, dir.path());
    let (audio, result) = analyse(&media, |_, _| {
        spans
            .iter()
            .enumerate()
            .map(|(i, &span)| SpeakerTurn {
                span,
                speaker: speaker_of_line(i),
            })
            .collect()
    });
    let per_speaker = annotate(&audio, &result);
    print_emotions("two speakers", &per_speaker);
    assert_eq!(per_speaker.speakers.len(), 2);

    let segments_of = |speaker: usize| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| speaker_of_line(i) == speaker)
            .flat_map(|i| segments_in(&result, spans[i], lines[i].text))
            .collect()
    };
    let (a, b) = (segments_of(0), segments_of(1));
    // B really is the higher voice: its median word pitch is far above A's.
    let median_pitch = |segments: &[usize]| {
        let mut hz: Vec<f64> = segments
            .iter()
            .flat_map(|&i| &result.segments[i].words)
            .map(|w| w.acoustic_features.pitch_hz)
            .filter(|&hz| hz > 0.0)
            .collect();
        hz.sort_by(f64::total_cmp);
        hz[hz.len() / 2]
    };
    let (pitch_a, pitch_b) = (median_pitch(&a), median_pitch(&b));
    eprintln!("median word pitch: A {pitch_a:.0} Hz, B {pitch_b:.0} Hz");
    assert!(pitch_b > 1.4 * pitch_a, "A {pitch_a} Hz, B {pitch_b} Hz");

    for &i in &b {
        assert_ne!(emotion(&per_speaker, i).label, "excited", "segment {i}");
    }
    // Judged against one file-wide baseline instead, B sounds more aroused, and partly excited:
    // the per-speaker baseline is what keeps it neutral.
    let mut one_baseline = result.clone();
    for s in &mut one_baseline.segments {
        s.speaker.speaker_id = "SPEAKER_00".into();
    }
    let one_baseline = annotate(&audio, &one_baseline);
    print_emotions("two speakers, one baseline", &one_baseline);
    let mean_arousal =
        |r: &AnalysisResult| b.iter().map(|&i| arousal(r, i)).sum::<f64>() / b.len() as f64;
    let (own, shared) = (mean_arousal(&per_speaker), mean_arousal(&one_baseline));
    eprintln!("B's mean arousal: {own:.3} against B's baseline, {shared:.3} against the file's");
    assert!(shared > own + 0.1);
    assert!(
        b.iter()
            .any(|&i| emotion(&one_baseline, i).label == "excited"),
        "with one baseline the high voice should sound excited somewhere"
    );
    // Its words stand out too, which its own baseline rightly does not find.
    let mean_emphasis = |r: &AnalysisResult| {
        let all: Vec<f64> = b.iter().flat_map(|&i| emphases(r, i)).collect();
        all.iter().sum::<f64>() / all.len() as f64
    };
    assert!(mean_emphasis(&one_baseline) > mean_emphasis(&per_speaker));
}
