//! Speed, not correctness: decode speed of a 5-minute mp4 (44.1 kHz stereo AAC), then features
//! of 1000 words cut from it. Run in release:
//! `cargo test --release -p ecg-audio --test bench -- --ignored --nocapture`

mod common;

use std::process::Command;

use common::ffmpeg;
use ecg_audio::{AcousticAnalyzer, MediaDecoder};
use ecg_core::stages::{Decoder, FeatureExtractor};

/// Peak resident memory of this process in MiB (Linux).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn speed_of_a_five_minute_mp4_and_1000_words() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech.wav");
    let text = "The quick brown fox jumps over the lazy dog. \
                Speech analysis measures pitch, level and brightness of every word. "
        .repeat(4);
    let espeak = Command::new("espeak-ng")
        .args(["-v", "en", "-w", speech.to_str().unwrap(), &text])
        .status()
        .is_ok_and(|s| s.success());
    let source = if espeak {
        vec!["-stream_loop", "-1", "-i", speech.to_str().unwrap()]
    } else {
        vec!["-f", "lavfi", "-i", "sine=frequency=220:sample_rate=44100"]
    };
    let mp4 = dir.path().join("five-minutes.mp4");
    let mut args = source;
    args.extend([
        "-t", "300", "-ar", "44100", "-ac", "2", "-c:a", "aac", "-b:a", "128k",
    ]);
    args.push(mp4.to_str().unwrap());
    ffmpeg(&args);

    let rss_before = peak_rss_mib();
    let decoder = MediaDecoder::new();
    let started = std::time::Instant::now();
    let audio = decoder.decode(&mp4).unwrap();
    let decode_s = started.elapsed().as_secs_f64();
    let rss_after = peak_rss_mib();
    println!(
        "decode: {:.1} s of {} in {decode_s:.3} s ({:.0}x real time); \
         16 kHz output {:.1} MiB; peak RSS {rss_before:?} -> {rss_after:?} MiB",
        audio.duration_s(),
        if espeak {
            "espeak-ng speech"
        } else {
            "220 Hz tone"
        },
        audio.duration_s() / decode_s,
        (audio.samples.len() * 4) as f64 / (1024.0 * 1024.0),
    );

    // 1000 words of 0.4 s, every 0.29 s across the file.
    let analyzer = AcousticAnalyzer::new();
    let started = std::time::Instant::now();
    let mut voiced = 0;
    for i in 0..1_000 {
        let start = i as f64 * 0.29;
        let word = audio.slice(ecg_core::audio::TimeSpan::new(start, start + 0.4));
        if analyzer.measure(word).pitch_hz > 0.0 {
            voiced += 1;
        }
    }
    let features_s = started.elapsed().as_secs_f64();
    let per_word_ms = features_s * 1e3 / 1_000.0;
    println!(
        "features: 1000 words of 0.4 s in {features_s:.3} s ({per_word_ms:.3} ms/word, \
         {voiced} voiced)"
    );
}
