//! Short-time magnitude spectra over Hann-windowed frames, and the spectral centroid.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Short-time spectra for one sample rate and frame length. Cheap to share: it holds only the
/// FFT plan and the window.
pub struct Spectrum {
    frame_len: usize,
    hop: usize,
    bin_hz: f64,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl Spectrum {
    /// 32 ms frames (31.25 Hz bins at 16 kHz), half overlapping: fine enough for a centroid,
    /// short enough that a one-syllable word still has several frames.
    pub fn new(sample_rate: u32) -> Self {
        // A power of two near 32 ms for any rate; positive and small, so the cast is exact.
        let frame_len = ((f64::from(sample_rate) * 0.032) as usize)
            .max(2)
            .next_power_of_two();
        Self::with_frame_len(sample_rate, frame_len)
    }

    /// Spectra of `frame_len`-sample frames (at least 2), hop of half a frame.
    pub fn with_frame_len(sample_rate: u32, frame_len: usize) -> Self {
        let frame_len = frame_len.max(2);
        let window = (0..frame_len).map(|n| hann(n, frame_len) as f32).collect();
        Self {
            frame_len,
            hop: frame_len / 2,
            bin_hz: f64::from(sample_rate) / frame_len as f64,
            window,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(frame_len),
        }
    }

    /// Width of one frequency bin in Hz; bin k is centred on k · `bin_hz`.
    pub fn bin_hz(&self) -> f64 {
        self.bin_hz
    }

    /// Calls `visit` with the magnitude spectrum (bins 0 to frame_len/2) of every frame. Frames
    /// cover every sample: the last one, and a slice shorter than a frame, are zero-padded.
    /// Each frame's mean is removed first, so a microphone's DC offset does not pose as energy
    /// at 0 Hz.
    pub fn for_each_frame(&self, samples: &[f32], mut visit: impl FnMut(&[f32])) {
        if samples.is_empty() {
            return;
        }
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = vec![Complex::default(); self.fft.get_scratch_len()];
        let mut magnitudes = vec![0.0f32; spectrum.len()];
        let mut start = 0;
        loop {
            let frame = &samples[start..(start + self.frame_len).min(samples.len())];
            let mean = frame.iter().map(|&s| f64::from(s)).sum::<f64>() / frame.len() as f64;
            input.fill(0.0);
            if frame.len() == self.frame_len {
                for ((dst, &s), &w) in input.iter_mut().zip(frame).zip(&self.window) {
                    *dst = ((f64::from(s) - mean) as f32) * w;
                }
            } else {
                // A short frame gets a window of its own length before the zero padding: cut
                // off mid-window, it would splatter its edge across the spectrum.
                for (n, (dst, &s)) in input.iter_mut().zip(frame).enumerate() {
                    *dst = ((f64::from(s) - mean) * hann(n, frame.len())) as f32;
                }
            }
            // Lengths come from the plan itself, the only way this can fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                return;
            }
            for (m, c) in magnitudes.iter_mut().zip(&spectrum) {
                *m = c.norm();
            }
            visit(&magnitudes);
            if start + self.frame_len >= samples.len() {
                break;
            }
            start += self.hop;
        }
    }

    /// Magnitude-weighted mean frequency in Hz over all frames of `samples`. Summing the
    /// weighted frequencies and the magnitudes over all frames before dividing weighs each
    /// frame by its magnitude, so quiet frames barely count. Silence is 0.0.
    pub fn centroid(&self, samples: &[f32]) -> f64 {
        let mut weighted = 0.0f64;
        let mut total = 0.0f64;
        self.for_each_frame(samples, |magnitudes| {
            for (k, &m) in magnitudes.iter().enumerate() {
                weighted += k as f64 * f64::from(m);
                total += f64::from(m);
            }
        });
        if total > 1e-9 {
            weighted / total * self.bin_hz
        } else {
            0.0
        }
    }
}

/// Sample `n` of a periodic Hann window of `len`: overlapped by half, the windows sum to a
/// constant.
fn hann(n: usize, len: usize) -> f64 {
    0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / len as f64).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::testsignal::{sine, white_noise};
    use ecg_core::audio::SAMPLE_RATE_HZ;

    fn spectrum() -> Spectrum {
        Spectrum::new(SAMPLE_RATE_HZ)
    }

    fn assert_close(actual: f64, expected: f64, rel: f64) {
        assert!(
            (actual - expected).abs() <= expected * rel,
            "{actual} Hz, expected {expected} Hz ±{}%",
            rel * 100.0
        );
    }

    #[test]
    fn frames_are_32_ms() {
        assert!((spectrum().bin_hz() - 31.25).abs() < 1e-12);
        let mut frames = 0;
        // 1 s: frames start every 256 samples until one reaches the end.
        spectrum().for_each_frame(&[0.1; 16_000], |m| {
            assert_eq!(m.len(), 257);
            frames += 1;
        });
        assert_eq!(frames, 62);
    }

    #[test]
    fn pure_tone_centroid_is_its_frequency() {
        assert_close(spectrum().centroid(&sine(1_000.0, 0.5, 0.5)), 1_000.0, 0.05);
        // Between bins too.
        assert_close(spectrum().centroid(&sine(1_234.5, 0.5, 0.5)), 1_234.5, 0.05);
    }

    #[test]
    fn two_tones_weigh_by_magnitude() {
        // Magnitudes 2:1 at 500 Hz and 2 kHz: (2·500 + 1·2000) / 3 = 1 kHz.
        let low = sine(500.0, 0.4, 0.5);
        let high = sine(2_000.0, 0.2, 0.5);
        let x: Vec<f32> = low.iter().zip(&high).map(|(a, b)| a + b).collect();
        assert_close(spectrum().centroid(&x), 1_000.0, 0.05);
    }

    #[test]
    fn white_noise_centroid_is_half_nyquist() {
        assert_close(
            spectrum().centroid(&white_noise(0.5, 1.0, 42)),
            4_000.0,
            0.10,
        );
    }

    #[test]
    fn silence_and_dc_have_no_centroid() {
        assert_eq!(spectrum().centroid(&[0.0; 4_000]), 0.0);
        assert_eq!(spectrum().centroid(&[]), 0.0);
        assert_eq!(spectrum().centroid(&[0.25; 4_000]), 0.0);
    }

    #[test]
    fn quiet_frames_barely_count() {
        // A loud 1 kHz tone, then a 60 dB quieter 5 kHz tone of the same length.
        let mut x = sine(1_000.0, 0.5, 0.25);
        x.extend(sine(5_000.0, 0.0005, 0.25));
        assert_close(spectrum().centroid(&x), 1_000.0, 0.05);
    }

    #[test]
    fn a_word_shorter_than_a_frame_is_zero_padded() {
        // 20 ms < 32 ms.
        assert_close(
            spectrum().centroid(&sine(2_000.0, 0.5, 0.02)),
            2_000.0,
            0.05,
        );
    }
}
