//! Whisper through VAD on espeak-ng speech generated at test time: accuracy, languages, timing
//! invariants, and silence on non-speech.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use common::{
    check_invariants, noise, one_at_a_time, require_models, silence, spaced_out, speech, text_of,
    tones, trimmed_speech,
};
use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::request::Language;
use ecg_core::stages::{AsrOptions, Transcriber, Transcript, VoiceDetector};
use ecg_settings::{AsrArgs, VadArgs};
use ecg_speech::{SileroVad, WhisperTranscriber};
use ecg_testkit::wer;

struct Stages {
    vad: SileroVad,
    asr: WhisperTranscriber,
}

fn stages() -> &'static Stages {
    static STAGES: OnceLock<Stages> = OnceLock::new();
    STAGES.get_or_init(|| {
        require_models();
        Stages {
            vad: SileroVad::new(ecg_settings::from_env::<VadArgs>().unwrap().config()).unwrap(),
            asr: WhisperTranscriber::new(&ecg_settings::from_env::<AsrArgs>().unwrap().config())
                .unwrap(),
        }
    })
}

/// VAD, then the recogniser only where VAD heard speech, as the pipeline runs them.
fn recognise(samples: Vec<f32>, language: Language) -> (Audio, Transcript) {
    let stages = stages();
    let _turn = one_at_a_time();
    let started = Instant::now();
    let audio = Audio::new(samples);
    let speech = stages.vad.speech_regions(&audio).unwrap();
    let options = AsrOptions {
        language,
        use_gpu: false,
    };
    let transcript = if speech.is_empty() {
        Transcript {
            language: language.as_str().to_owned(),
            segments: Vec::new(),
        }
    } else {
        stages.asr.transcribe(&audio, &speech, options).unwrap()
    };
    eprintln!(
        "{language}: {:.1} s of audio through VAD and Whisper in {:.1} s",
        audio.duration_s(),
        started.elapsed().as_secs_f64()
    );
    check_invariants(&transcript, audio.duration_s());
    (audio, transcript)
}

const PARAGRAPH: &str = "The weather was calm on the morning we left the harbor. \
    Our small boat carried fresh water, bread and a map of the northern islands. \
    By noon the wind had turned, and dark clouds gathered over the hills. \
    We reached a quiet bay before the rain began, and waited there until the storm had passed.";

#[test]
fn english_is_detected_and_recognised() {
    let mut samples = silence(1.0);
    samples.extend(speech("en-us", PARAGRAPH));
    samples.extend(silence(1.0));
    let (_, transcript) = recognise(samples, Language::Auto);
    let text = text_of(&transcript);
    let error = wer(PARAGRAPH, &text);
    eprintln!("WER {:.1} %: {text}", error * 100.0);
    assert_eq!(transcript.language, "en");
    assert!(error <= 0.10, "WER {error:.3}: {text}");
    assert!(
        transcript.segments.len() >= 3,
        "one segment per sentence: {transcript:?}"
    );
    assert_eq!(stages().asr.model_name(), "ggml-base-q8_0");
}

/// Share of a text's letters that a script predicate accepts.
fn share_in_script(text: &str, script: fn(char) -> bool) -> f64 {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    letters.iter().filter(|&&c| script(c)).count() as f64 / letters.len().max(1) as f64
}

fn hangul(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}' | '\u{1100}'..='\u{11FF}' | '\u{3130}'..='\u{318F}')
}

fn han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn kana_or_kanji(c: char) -> bool {
    matches!(c, '\u{3040}'..='\u{30FF}') || han(c)
}

fn assert_forced(voice: &str, text: &str, language: Language, script: fn(char) -> bool) {
    let mut samples = silence(0.5);
    samples.extend(speech(voice, text));
    samples.extend(silence(0.5));
    let (_, transcript) = recognise(samples, language);
    let heard = text_of(&transcript);
    eprintln!("{language}: {heard}");
    assert_eq!(transcript.language, language.as_str());
    assert!(!heard.trim().is_empty(), "nothing heard");
    let share = share_in_script(&heard, script);
    assert!(
        share >= 0.8,
        "{language}: only {share:.2} in script: {heard}"
    );
}

#[test]
fn forced_korean_is_written_in_hangul() {
    assert_forced(
        "ko",
        "안녕하세요. 오늘은 날씨가 아주 좋습니다. 우리는 공원에서 산책을 했습니다.",
        Language::Ko,
        hangul,
    );
}

#[test]
fn forced_japanese_is_written_in_kana_or_kanji() {
    // espeak-ng reads kana only.
    assert_forced(
        "ja",
        "こんにちは。きょうは とても いい てんき です。わたしたちは こうえんを さんぽしました。",
        Language::Ja,
        kana_or_kanji,
    );
}

#[test]
fn forced_chinese_is_written_in_han() {
    // espeak-ng's Mandarin reads pinyin far better than characters.
    assert_forced(
        "cmn-latn-pinyin",
        "ni3 hao3. jin1 tian1 tian1 qi4 hen3 hao3. wo3 men5 qu4 gong1 yuan2 san4 bu4.",
        Language::Zh,
        han,
    );
}

#[test]
fn silence_noise_and_music_give_no_words() {
    let mut samples = silence(3.0);
    samples.extend(noise(1.5, 0.3));
    samples.extend(silence(2.0));
    samples.extend(tones(6.0));
    samples.extend(silence(2.0));
    let (_, transcript) = recognise(samples, Language::Auto);
    assert!(transcript.segments.is_empty(), "{transcript:?}");
}

#[test]
fn words_map_back_to_their_sentences_across_windows() {
    let sentences = [
        "A small museum stands at the end of the old railway line.",
        "Its rooms are full of clocks, maps and painted signs.",
        "Visitors often stay for hours to hear the clocks strike noon.",
        "The guide tells stories about the engines that once passed by.",
        "In winter the museum closes early, before the snow comes.",
        "Every spring a group of volunteers paints the wooden benches.",
        "Last year they also repaired the roof of the station house.",
        "Next summer the museum will open a new room for children.",
        "The town council has promised to pay for the new lights.",
        "Many people hope that a train will run on the line again.",
    ];
    let (samples, spans) = spaced_out(1.0, sentences.map(|s| trimmed_speech("en-us", s)));
    // With VAD's padding and the gaps between regions, this fills more than one 30 s window.
    let speech_s: f64 = spans.iter().map(|s| s.duration_s()).sum();
    assert!(
        speech_s > 28.0,
        "too little speech for two windows: {speech_s:.1} s"
    );
    let (_, transcript) = recognise(samples, Language::En);

    let error = wer(&sentences.join(" "), &text_of(&transcript));
    assert!(error <= 0.10, "WER {error:.3}: {}", text_of(&transcript));
    // Each sentence is a segment of its own, starting and ending where it was said.
    assert_eq!(transcript.segments.len(), sentences.len(), "{transcript:?}");
    for (segment, said) in transcript.segments.iter().zip(&spans) {
        let (start_err, end_err) = (segment.start_s - said.start_s, segment.end_s - said.end_s);
        eprintln!(
            "said {:.2}-{:.2}: start {start_err:+.3} s, end {end_err:+.3} s",
            said.start_s, said.end_s
        );
        assert!(
            start_err.abs() < 0.1 && end_err.abs() < 0.2,
            "{segment:?} said {said:?}"
        );
    }
}

/// A window of under 0.16 s with a word in it: whisper.cpp's DTW would abort the process on the
/// pass over it (its median filter needs more than 7 attention frames); the patched build times
/// such a pass by its timestamp tokens instead (`infra/whisper/patches.cmake`).
#[test]
fn a_word_in_a_window_of_a_seventh_of_a_second_does_not_abort() {
    let stages = stages();
    let _turn = one_at_a_time();
    let mut samples = silence(0.5);
    samples.extend(trimmed_speech("en", "Yes."));
    samples.extend(silence(0.5));
    let audio = Audio::new(samples);
    let options = AsrOptions {
        language: Language::En,
        use_gpu: false,
    };
    let mut heard = 0;
    for len_s in [0.11, 0.13, 0.15] {
        let region = TimeSpan::new(0.55, 0.55 + len_s);
        let transcript = stages.asr.transcribe(&audio, &[region], options).unwrap();
        eprintln!("{len_s} s: {:?}", text_of(&transcript));
        check_invariants(&transcript, audio.duration_s());
        heard += usize::from(!transcript.segments.is_empty());
    }
    // A pass that found words is one DTW would have run on: without any, nothing was tested.
    assert!(
        heard > 0,
        "Whisper heard nothing in any of the short windows"
    );
}
