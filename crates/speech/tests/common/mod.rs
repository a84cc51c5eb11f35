//! Test audio made at test time (espeak-ng speech, silence, noise, tones) and the model check.
//! Nothing is downloaded.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of this module"
)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use ecg_core::audio::{SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::stages::Transcript;

/// Fails loudly when the provisioned models are missing: model tests must never pass by skipping.
pub fn require_models() -> PathBuf {
    let dir = ecg_models::model_dir();
    for file in ["ggml-base-q8_0.bin", "silero_vad.onnx", "libonnxruntime.so"] {
        assert!(
            dir.join(file).is_file(),
            "{} is missing: run `make models` (or point ECG_MODEL_DIR at the models)",
            dir.join(file).display()
        );
    }
    dir
}

/// Model tests share two cores: one recogniser at a time runs faster than several contending.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// espeak-ng speech resampled by sox to 16 kHz mono f32.
pub fn speech(voice: &str, text: &str) -> Vec<f32> {
    let out = Command::new("sh")
        .args([
            "-c",
            r#"espeak-ng -v "$1" --stdout "$2" | sox -q -t wav - -t f32 -r 16000 -c 1 -"#,
            "sh",
            voice,
            text,
        ])
        .output()
        .expect("espeak-ng and sox are needed to make test speech");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "espeak-ng/sox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// [`speech`] without espeak-ng's own leading and trailing silence, so its span is exact.
pub fn trimmed_speech(voice: &str, text: &str) -> Vec<f32> {
    let mut clip = speech(voice, text);
    let floor = clip.iter().fold(0f32, |m, s| m.max(s.abs())) * 0.02;
    let end = clip
        .iter()
        .rposition(|s| s.abs() > floor)
        .map_or(0, |i| i + 1);
    clip.truncate(end);
    let start = clip.iter().position(|s| s.abs() > floor).unwrap_or(0);
    clip.split_off(start)
}

pub fn seconds(samples: usize) -> f64 {
    samples as f64 / f64::from(SAMPLE_RATE_HZ)
}

pub fn silence(secs: f64) -> Vec<f32> {
    vec![0.0; (secs * f64::from(SAMPLE_RATE_HZ)) as usize]
}

/// The clips one after another, `lead_s` of silence before the first and 2 s after each, with
/// the time span of each clip.
pub fn spaced_out(
    lead_s: f64,
    clips: impl IntoIterator<Item = Vec<f32>>,
) -> (Vec<f32>, Vec<TimeSpan>) {
    let mut samples = silence(lead_s);
    let mut spans = Vec::new();
    for clip in clips {
        let start = seconds(samples.len());
        samples.extend(clip);
        spans.push(TimeSpan::new(start, seconds(samples.len())));
        samples.extend(silence(2.0));
    }
    (samples, spans)
}

/// Uniform white noise from a fixed-seed xorshift, so every run hears the same noise.
pub fn noise(secs: f64, amplitude: f32) -> Vec<f32> {
    let mut x: u32 = 0x9E37_79B9;
    (0..(secs * f64::from(SAMPLE_RATE_HZ)) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * amplitude
        })
        .collect()
}

/// A melody: notes with harmonics and a decay, like a plucked instrument.
pub fn tones(secs: f64) -> Vec<f32> {
    const NOTES_HZ: [f32; 8] = [262.0, 294.0, 330.0, 349.0, 392.0, 440.0, 494.0, 523.0];
    let rate = SAMPLE_RATE_HZ as f32;
    let note_len = (0.25 * rate) as usize;
    (0..(secs * f64::from(SAMPLE_RATE_HZ)) as usize)
        .map(|i| {
            let f = NOTES_HZ[(i / note_len * 3) % NOTES_HZ.len()];
            let t = (i % note_len) as f32 / rate;
            let envelope = (-6.0 * t).exp();
            (1..=4)
                .map(|h| (std::f32::consts::TAU * f * h as f32 * t).sin() / h as f32)
                .sum::<f32>()
                * 0.25
                * envelope
        })
        .collect()
}

/// All words of a transcript, joined as decoded.
pub fn text_of(t: &Transcript) -> String {
    t.segments
        .iter()
        .flat_map(|s| &s.words)
        .map(|w| w.text.as_str())
        .collect()
}

/// Every word lies in the audio and in its segment, in order, with a real confidence.
pub fn check_invariants(t: &Transcript, duration_s: f64) {
    let mut last_start = 0.0;
    for seg in &t.segments {
        assert!(!seg.words.is_empty(), "empty segment {seg:?}");
        assert!(seg.start_s <= seg.end_s, "{seg:?}");
        for w in &seg.words {
            assert!(
                0.0 <= w.start_s && w.start_s <= w.end_s && w.end_s <= duration_s,
                "word outside the audio or reversed: {w:?}"
            );
            assert!(w.start_s >= last_start, "words out of order at {w:?}");
            assert!(
                seg.start_s <= w.start_s && w.end_s <= seg.end_s,
                "word {w:?} outside its segment {}..{}",
                seg.start_s,
                seg.end_s
            );
            assert!((0.0..=1.0).contains(&w.confidence), "{w:?}");
            last_start = w.start_s;
        }
    }
}
