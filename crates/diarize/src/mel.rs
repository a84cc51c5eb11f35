//! The speaker encoder's input features, as Resemblyzer computes them (`resemblyzer/audio.py`):
//! `librosa.feature.melspectrogram` with its defaults on 16 kHz audio — 400-sample (25 ms) periodic
//! Hann frames every 160 samples (10 ms), centred on their hop, power spectrum, 40 Slaney mel
//! bands with Slaney (unit-area) normalisation ([`ecg_audio::dsp::mel`]), and no logarithm. Before that, Resemblyzer raises
//! quiet audio to -30 dBFS (never lowers it).

use std::sync::Arc;

use ecg_audio::dsp::mel::{MelBand, slaney_filterbank};
use ecg_audio::dsp::stats::sum_of_squares;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Mel bands the encoder reads.
pub const N_MELS: usize = 40;
/// Samples between frames (10 ms).
pub const HOP: usize = 160;
/// Samples per FFT frame (25 ms).
const N_FFT: usize = 400;
const SAMPLE_RATE: f64 = 16_000.0;
/// Resemblyzer's `audio_norm_target_dBFS`.
const TARGET_DBFS: f64 = -30.0;

/// The gain Resemblyzer's `normalize_volume(…, increase_only=True)` applies: quiet audio is
/// raised to -30 dBFS RMS, louder audio is left as it is.
pub fn volume_gain<'a>(samples: impl IntoIterator<Item = &'a [f32]>) -> f32 {
    let (mut sum, mut count) = (0.0f64, 0usize);
    for part in samples {
        sum += sum_of_squares(part);
        count += part.len();
    }
    let rms = (sum / count.max(1) as f64).sqrt();
    if rms <= 0.0 {
        return 1.0;
    }
    let target = 10f64.powf(TARGET_DBFS / 20.0);
    (target / rms).max(1.0) as f32
}

/// One FFT plan's buffers for a run of frames: a windowed frame in, its power spectrum out.
/// Shared by both frontends ([`crate::fbank`] too).
pub(crate) struct PowerSpectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    input: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl PowerSpectrum {
    pub(crate) fn new(fft: &Arc<dyn RealToComplex<f32>>) -> Self {
        let spectrum = fft.make_output_vec();
        Self {
            fft: Arc::clone(fft),
            input: fft.make_input_vec(),
            power: vec![0.0; spectrum.len()],
            spectrum,
            scratch: vec![Complex::default(); fft.get_scratch_len()],
        }
    }

    /// The FFT input, to be filled with the next windowed frame.
    pub(crate) fn input(&mut self) -> &mut [f32] {
        &mut self.input
    }

    /// The power spectrum of the input.
    pub(crate) fn power(&mut self) -> &[f32] {
        // The buffers come from the plan itself: the lengths always match.
        if self
            .fft
            .process_with_scratch(&mut self.input, &mut self.spectrum, &mut self.scratch)
            .is_err()
        {
            self.spectrum.fill(Complex::default());
        }
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
        &self.power
    }
}

/// Sample `n` of the `len`-sample frame centred on sample `t * HOP`; outside the audio, zero.
pub(crate) fn centred_sample(samples: &[f32], t: usize, len: usize, n: usize) -> f32 {
    ((t * HOP + n).checked_sub(len / 2))
        .and_then(|i| samples.get(i))
        .copied()
        .unwrap_or(0.0)
}

/// Power mel frames of 16 kHz audio. Holds only the FFT plan, window and filters, so one is
/// shared by every job.
pub struct MelFrontend {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    bands: Vec<MelBand>,
}

impl Default for MelFrontend {
    fn default() -> Self {
        Self::new()
    }
}

impl MelFrontend {
    pub fn new() -> Self {
        // librosa's default window is scipy's periodic Hann (`fftbins=True`).
        let window = (0..N_FFT)
            .map(|n| (0.5 - 0.5 * (std::f64::consts::TAU * n as f64 / N_FFT as f64).cos()) as f32)
            .collect();
        Self {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
            window,
            bands: slaney_filterbank(N_MELS, N_FFT, SAMPLE_RATE),
        }
    }

    /// Frames `first..first + count` of `samples` scaled by `gain`: frame `t` is centred on sample
    /// `t * HOP`; samples outside the audio read as zero. Row-major `[count, N_MELS]`.
    pub fn frames(&self, samples: &[f32], gain: f32, first: usize, count: usize) -> Vec<f32> {
        let mut spectrum = PowerSpectrum::new(&self.fft);
        let mut out = Vec::with_capacity(count * N_MELS);
        for t in first..first + count {
            for (n, (dst, &w)) in spectrum.input().iter_mut().zip(&self.window).enumerate() {
                *dst = centred_sample(samples, t, N_FFT, n) * gain * w;
            }
            let power = spectrum.power();
            out.extend(self.bands.iter().map(|band| band.energy(power)));
        }
        out
    }

    /// Mel frames of a whole signal, as many as librosa gives (`1 + len / HOP`).
    pub fn all_frames(&self, samples: &[f32], gain: f32) -> Vec<f32> {
        self.frames(samples, gain, 0, 1 + samples.len() / HOP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lands_in_its_band_with_power_scaling() {
        let mel = MelFrontend::new();
        // 1 kHz is FFT bin 25 (40 Hz bins).
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (std::f64::consts::TAU * 1000.0 * f64::from(i) / 16_000.0).sin() as f32 * 0.1)
            .collect();
        let frames = mel.all_frames(&tone, 1.0);
        assert_eq!(frames.len(), (1 + 16_000 / HOP) * N_MELS);
        let middle = &frames[50 * N_MELS..51 * N_MELS];
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| middle[a].total_cmp(&middle[b]))
            .unwrap();
        assert!(mel.bands[loudest].bins().contains(&25));
        // Power, not magnitude: doubling the gain quadruples every band.
        let louder = mel.frames(&tone, 2.0, 50, 1);
        assert!((louder[loudest] / middle[loudest] - 4.0).abs() < 1e-3);
    }

    #[test]
    fn quiet_audio_is_raised_to_minus_30_dbfs_and_loud_audio_is_kept() {
        let quiet = vec![0.001f32; 1000];
        let gain = volume_gain([&quiet[..]]);
        assert!((f64::from(gain) * 0.001 - 10f64.powf(-1.5)).abs() < 1e-6);
        assert!((volume_gain([&[0.5f32; 100][..]]) - 1.0).abs() < 1e-9);
        assert!((volume_gain([&[0.0f32; 100][..]]) - 1.0).abs() < 1e-9);
    }
}
