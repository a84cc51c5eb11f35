//! Silero VAD on generated audio: silence, noise and espeak-ng speech with known gaps.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test fails by panicking"
)]

mod common;

use common::{noise, require_models, silence, spaced_out, speech};
use ecg_core::audio::{Audio, TimeSpan};
use ecg_core::stages::VoiceDetector;
use ecg_settings::VadArgs;
use ecg_speech::SileroVad;

fn vad() -> SileroVad {
    require_models();
    SileroVad::new(ecg_settings::from_env::<VadArgs>().unwrap().config()).unwrap()
}

#[test]
fn silence_has_no_speech() {
    let regions = vad().speech_regions(&Audio::new(silence(10.0))).unwrap();
    assert!(regions.is_empty(), "{regions:?}");
}

#[test]
fn white_noise_has_no_speech() {
    let regions = vad().speech_regions(&Audio::new(noise(10.0, 0.3))).unwrap();
    let total: f64 = regions.iter().map(|r| r.duration_s()).sum();
    assert!(total < 0.5, "noise taken for speech: {regions:?}");
}

#[test]
fn regions_cover_the_speech_and_not_the_gaps() {
    let sentences = [
        "The library opens at nine every morning.",
        "Please return your books before the end of the month.",
        "Children can join the reading club on Saturdays.",
    ];
    let (samples, spoken) = spaced_out(1.5, sentences.map(|s| speech("en-us", s)));
    let audio = Audio::new(samples);
    let regions = vad().speech_regions(&audio).unwrap();

    for s in &spoken {
        let covered: f64 = regions.iter().map(|r| r.overlap_s(*s)).sum();
        // espeak-ng's clips carry a little silence of their own at both ends.
        assert!(
            covered > 0.85 * s.duration_s(),
            "speech {s:?} not covered by {regions:?}"
        );
    }
    for gap in spoken
        .windows(2)
        .map(|p| TimeSpan::new(p[0].end_s, p[1].start_s))
    {
        let middle = TimeSpan::new(gap.start_s + 0.5, gap.end_s - 0.5);
        assert!(
            regions.iter().all(|r| r.overlap_s(middle) == 0.0),
            "gap {gap:?} taken for speech: {regions:?}"
        );
    }
    for r in &regions {
        assert!(0.0 <= r.start_s && r.end_s <= audio.duration_s(), "{r:?}");
    }
}
