//! Per-word acoustic features: level, pitch and brightness of the word's 16 kHz samples.
//!
//! It runs for every word of every job, so the FFT plans are made once, when the analyzer is
//! built, and each call reuses its buffers across the word's frames.

use ecg_core::audio::SAMPLE_RATE_HZ;
use ecg_core::contract::AcousticFeatures;
use ecg_core::stages::FeatureExtractor;

use crate::dsp::level::rms_dbfs;
use crate::dsp::spectrum::Spectrum;
use crate::dsp::yin::Yin;

/// Measures one word's samples at [`SAMPLE_RATE_HZ`]:
/// - `volume_db`: RMS level in dBFS (a full-scale sine is -3.01 dB); digital silence is
///   [`crate::dsp::level::SILENCE_DBFS`] (-100).
/// - `pitch_hz`: median YIN F0 (50–500 Hz) over the voiced, non-silent 40 ms frames; 0.0 means
///   unvoiced (noise, silence, whisper, or too short to hold two periods).
/// - `spectral_centroid`: magnitude-weighted mean frequency in Hz over 32 ms Hann frames,
///   louder frames weighing more; 0.0 for silence. A word shorter than a frame is zero-padded.
pub struct AcousticAnalyzer {
    yin: Yin,
    spectrum: Spectrum,
}

impl AcousticAnalyzer {
    pub fn new() -> Self {
        Self {
            yin: Yin::new(SAMPLE_RATE_HZ),
            spectrum: Spectrum::new(SAMPLE_RATE_HZ),
        }
    }
}

impl Default for AcousticAnalyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl FeatureExtractor for AcousticAnalyzer {
    fn measure(&self, samples: &[f32]) -> AcousticFeatures {
        AcousticFeatures {
            volume_db: rms_dbfs(samples),
            pitch_hz: self.yin.median_f0(samples).unwrap_or(0.0),
            spectral_centroid: self.spectrum.centroid(samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::level::SILENCE_DBFS;
    use crate::dsp::testsignal::{sine, white_noise};

    fn measure(samples: &[f32]) -> AcousticFeatures {
        AcousticAnalyzer::new().measure(samples)
    }

    fn assert_close(what: &str, actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= expected.abs() * rel,
            "{what}: {actual}, expected {expected} ±{}%",
            rel * 100.0
        );
    }

    #[test]
    fn sine_word() {
        let f = measure(&sine(220.0, 0.5, 0.4));
        // 0.5 peak: 20·log10(0.5/√2) = -9.03 dB.
        assert!((f.volume_db + 9.0309).abs() < 0.01, "{}", f.volume_db);
        assert_close("pitch", f.pitch_hz, 220.0, 0.01);
        assert_close("centroid", f.spectral_centroid, 220.0, 0.05);
    }

    #[test]
    fn pitches_within_one_percent() {
        for hz in [110.0, 220.0, 440.0] {
            assert_close("pitch", measure(&sine(hz, 0.3, 0.4)).pitch_hz, hz, 0.01);
        }
    }

    #[test]
    fn full_scale_sine_is_minus_3_01_db() {
        let f = measure(&sine(1_000.0, 1.0, 0.4));
        assert!((f.volume_db + 3.0103).abs() < 0.01, "{}", f.volume_db);
        assert_close("centroid", f.spectral_centroid, 1_000.0, 0.05);
    }

    #[test]
    fn silence() {
        for samples in [&[0.0f32; 6_400][..], &[]] {
            let f = measure(samples);
            assert_eq!(f.volume_db, SILENCE_DBFS);
            assert_eq!(f.pitch_hz, 0.0);
            assert_eq!(f.spectral_centroid, 0.0);
        }
    }

    #[test]
    fn white_noise_is_unvoiced_and_bright() {
        let f = measure(&white_noise(0.3, 0.4, 12_345));
        assert_eq!(f.pitch_hz, 0.0);
        assert_close("centroid", f.spectral_centroid, 4_000.0, 0.10);
        // Uniform in [-a, a] has RMS a/√3: -15.23 dB for 0.3.
        assert!((f.volume_db + 15.23).abs() < 0.1, "{}", f.volume_db);
    }

    #[test]
    fn two_tone_mix() {
        // 200 Hz at twice the amplitude of 1.4 kHz: the pitch is the low tone's, the centroid
        // the magnitude-weighted mean (2·200 + 1400) / 3 = 600 Hz.
        let low = sine(200.0, 0.4, 0.4);
        let high = sine(1_400.0, 0.2, 0.4);
        let x: Vec<f32> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
        let f = measure(&x);
        assert_close("pitch", f.pitch_hz, 200.0, 0.01);
        assert_close("centroid", f.spectral_centroid, 600.0, 0.05);
    }

    #[test]
    fn very_short_word() {
        // 30 ms: shorter than both the pitch and the spectrum frames.
        let f = measure(&sine(250.0, 0.5, 0.03));
        assert!((f.volume_db + 9.03).abs() < 0.1, "{}", f.volume_db);
        assert_close("pitch", f.pitch_hz, 250.0, 0.01);
        assert_close("centroid", f.spectral_centroid, 250.0, 0.10);
    }

    #[test]
    fn shared_across_threads() {
        let analyzer = AcousticAnalyzer::new();
        let words: Vec<Vec<f32>> = [120.0, 180.0, 260.0, 390.0]
            .iter()
            .map(|&hz| sine(hz, 0.3, 0.4))
            .collect();
        std::thread::scope(|s| {
            for (word, hz) in words.iter().zip([120.0, 180.0, 260.0, 390.0]) {
                let analyzer = &analyzer;
                s.spawn(move || assert_close("pitch", analyzer.measure(word).pitch_hz, hz, 0.01));
            }
        });
    }
}
