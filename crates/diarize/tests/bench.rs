//! Speed, not correctness: diarization time for 1, 5 and 20 minutes of generated three-speaker
//! dialogue, next to voice activity and Whisper on the same audio. Run in release:
//! `cargo test --release -p ecg-diarize --test bench -- --ignored --nocapture`
//! Whisper runs on the lengths up to `ECG_BENCH_WHISPER_MINUTES` (default 1, 0 for none): it takes
//! minutes per minute of audio on two busy cores. `RUST_LOG=ecg_diarize=debug` shows the stage's
//! parts.

mod common;

use std::time::Instant;

use common::*;
use ecg_core::audio::{Audio, SAMPLE_RATE_HZ};
use ecg_core::request::{Language, SpeakerHint};
use ecg_core::stages::{AsrOptions, Diarizer, Transcriber, VoiceDetector};
use ecg_settings::AsrArgs;
use ecg_speech::WhisperTranscriber;

#[test]
#[ignore = "benchmark: minutes of audio, run in release"]
fn diarization_time_grows_linearly() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
    require_models();
    let (vad, diarizer) = stages();
    let whisper_minutes: usize = std::env::var("ECG_BENCH_WHISPER_MINUTES").map_or(1, |m| {
        m.parse().expect("ECG_BENCH_WHISPER_MINUTES is a number")
    });
    let whisper = (whisper_minutes > 0).then(|| {
        WhisperTranscriber::new(&ecg_settings::from_env::<AsrArgs>().unwrap().config()).unwrap()
    });

    // Distinct dialogues (different sentences and pauses) until 20 minutes.
    let voices = [KAL, SLT, ESPEAK_M3];
    let mut samples = Vec::new();
    let mut seed = 100;
    while samples.len() < 20 * 60 * SAMPLE_RATE_HZ as usize {
        samples.extend(dialogue(&voices, 12, seed).audio.samples);
        seed += 1;
    }
    let mut per_minute = Vec::new();
    for minutes in [1usize, 5, 20] {
        let audio = Audio::new(samples[..minutes * 60 * SAMPLE_RATE_HZ as usize].to_vec());
        let t = Instant::now();
        let regions = vad.speech_regions(&audio).unwrap();
        let vad_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let turns = diarizer
            .speaker_turns(&audio, &regions, SpeakerHint::default())
            .unwrap();
        let diarize_s = t.elapsed().as_secs_f64();
        let asr_s = whisper
            .as_ref()
            .filter(|_| minutes <= whisper_minutes)
            .map(|w| {
                let t = Instant::now();
                let options = AsrOptions {
                    language: Language::En,
                    use_gpu: false,
                };
                w.transcribe(&audio, &regions, options).unwrap();
                t.elapsed().as_secs_f64()
            });
        let share = asr_s.map_or_else(
            || "-".to_owned(),
            |a| format!("{:.1} %", 100.0 * diarize_s / (vad_s + diarize_s + a)),
        );
        println!(
            "{minutes:>2} min: vad {vad_s:.1} s, diarization {diarize_s:.2} s ({:.2} s/min, {} speakers, {} turns), whisper {}, diarization share of vad+diarization+whisper {share}",
            diarize_s / minutes as f64,
            speaker_count(&turns),
            turns.len(),
            asr_s.map_or_else(|| "-".to_owned(), |a| format!("{a:.1} s")),
        );
        per_minute.push(diarize_s / minutes as f64);
    }
    println!("diarization seconds per minute of audio: {per_minute:.2?}");
}
