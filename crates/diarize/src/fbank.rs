//! 80-band log-mel filterbank frames, as Kaldi's `compute-fbank-feats` computes them with its
//! defaults (and as the common speaker-embedding exports — WeSpeaker, 3D-Speaker — are trained
//! on): 25 ms Povey-windowed frames every 10 ms, DC removed, pre-emphasis 0.97, a 512-point power
//! spectrum, 80 triangular bands evenly spaced on the HTK mel scale from 20 Hz to Nyquist, and the
//! natural logarithm. Samples are scaled to the 16-bit range first, as those recipes read audio.
//! Mean normalisation per window is the encoder's job ([`crate::encoder`]).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use ecg_audio::dsp::mel::{MelBand, filterbank};

use crate::mel::{PowerSpectrum, centred_sample};

/// Bands per frame.
pub const N_BANDS: usize = 80;
/// Samples per frame (25 ms).
const FRAME: usize = 400;
/// Kaldi rounds the frame up to a power of two for the FFT.
const N_FFT: usize = 512;
const SAMPLE_RATE: f64 = 16_000.0;
const LOW_HZ: f64 = 20.0;
const PREEMPHASIS: f32 = 0.97;
/// 16-bit full scale: the exported models were trained on integer-valued samples.
const SCALE: f32 = 32_768.0;

fn hz_to_mel(hz: f64) -> f64 {
    1127.0 * (1.0 + hz / 700.0).ln()
}

/// Filterbank frames of 16 kHz audio; holds only the FFT plan, window and bands.
pub struct FbankFrontend {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    bands: Vec<MelBand>,
}

impl Default for FbankFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl FbankFrontend {
    pub fn new() -> Self {
        // Kaldi's Povey window: a Hann window raised to the power 0.85.
        let window = (0..FRAME)
            .map(|n| {
                let hann =
                    0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / (FRAME - 1) as f64).cos();
                hann.powf(0.85) as f32
            })
            .collect();
        Self {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
            window,
            bands: htk_bands(),
        }
    }

    /// Frames `first..first + count`, frame `t` centred on sample `t * HOP` (samples outside the
    /// audio read as zero), row-major `[count, N_BANDS]`.
    pub fn frames(&self, samples: &[f32], first: usize, count: usize) -> Vec<f32> {
        let mut spectrum = PowerSpectrum::new(&self.fft);
        let mut frame = [0f32; FRAME];
        let mut out = Vec::with_capacity(count * N_BANDS);
        for t in first..first + count {
            for (n, dst) in frame.iter_mut().enumerate() {
                *dst = centred_sample(samples, t, FRAME, n) * SCALE;
            }
            let mean = frame.iter().sum::<f32>() / FRAME as f32;
            frame.iter_mut().for_each(|s| *s -= mean);
            // Pre-emphasis from the end backwards; the first sample is emphasised against itself.
            for n in (1..FRAME).rev() {
                frame[n] -= PREEMPHASIS * frame[n - 1];
            }
            frame[0] *= 1.0 - PREEMPHASIS;
            let input = spectrum.input();
            input.fill(0.0);
            for ((dst, s), w) in input.iter_mut().zip(&frame).zip(&self.window) {
                *dst = s * w;
            }
            let power = spectrum.power();
            out.extend(
                self.bands
                    .iter()
                    .map(|band| band.energy(power).max(f32::EPSILON).ln()),
            );
        }
        out
    }
}

/// Kaldi's mel banks: triangles evenly spaced in HTK mel between 20 Hz and Nyquist, peak 1,
/// weights computed in the mel domain.
fn htk_bands() -> Vec<MelBand> {
    let (low, high) = (hz_to_mel(LOW_HZ), hz_to_mel(SAMPLE_RATE / 2.0));
    let step = (high - low) / (N_BANDS + 1) as f64;
    filterbank(N_BANDS, N_FFT / 2 + 1, |m, k| {
        let (left, centre, right) = (
            low + m as f64 * step,
            low + (m + 1) as f64 * step,
            low + (m + 2) as f64 * step,
        );
        let mel = hz_to_mel(k as f64 * SAMPLE_RATE / N_FFT as f64);
        let rise = (mel - left) / (centre - left);
        let fall = (right - mel) / (right - centre);
        rise.min(fall).max(0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_cover_20_hz_to_nyquist_in_order() {
        let bands = htk_bands();
        assert_eq!(bands.len(), N_BANDS);
        // 31.25 Hz bins: the first band starts just above 20 Hz, the last ends below 8 kHz.
        assert_eq!(bands[0].bins().start, 1);
        assert!(bands[N_BANDS - 1].bins().end <= N_FFT / 2 + 1);
        assert!(
            bands
                .windows(2)
                .all(|w| w[0].bins().start <= w[1].bins().start)
        );
        // Peak 1: a flat spectrum of 1 gives each band at most its width.
        let flat = vec![1.0; N_FFT / 2 + 1];
        assert!(
            bands
                .iter()
                .all(|b| b.energy(&flat) <= b.bins().len() as f32)
        );
    }

    #[test]
    fn a_tone_lights_its_band_and_silence_is_the_floor() {
        let fbank = FbankFrontend::new();
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (std::f64::consts::TAU * 1000.0 * f64::from(i) / 16_000.0).sin() as f32 * 0.1)
            .collect();
        let frame = fbank.frames(&tone, 50, 1);
        assert_eq!(frame.len(), N_BANDS);
        let loudest = (0..N_BANDS)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .unwrap_or(0);
        // 1 kHz is bin 32 of the 512-point spectrum.
        assert!(htk_bands()[loudest].bins().contains(&32));
        let silent = fbank.frames(&[0.0; 1600], 5, 1);
        assert!(silent.iter().all(|&v| (v - f32::EPSILON.ln()).abs() < 1e-3));
    }
}
