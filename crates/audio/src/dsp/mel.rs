//! Triangular mel filters over a power spectrum, stored sparsely (only the bins they cover), and
//! the Slaney filterbank of librosa's `filters.mel` (its defaults: Slaney's mel scale and
//! unit-area triangles) that the speaker encoder and log-mel emotion models read.

use std::ops::Range;

/// One triangular filter: its weights from FFT bin `first` on.
pub struct MelBand {
    first: usize,
    weights: Vec<f64>,
}

impl MelBand {
    /// The filter from a weight for every FFT bin, keeping only its non-zero span.
    pub fn from_bins(all: &[f64]) -> Self {
        let first = all.iter().position(|&w| w > 0.0).unwrap_or(all.len());
        let end = all
            .iter()
            .rposition(|&w| w > 0.0)
            .map_or(first, |last| last + 1);
        Self {
            first,
            weights: all[first..end].to_vec(),
        }
    }

    /// FFT bins the filter covers.
    pub fn bins(&self) -> Range<usize> {
        self.first..self.first + self.weights.len()
    }

    /// The filter's output for an f32 power spectrum, in f32 throughout (the speaker models'
    /// features are computed so).
    pub fn energy(&self, power: &[f32]) -> f32 {
        self.weights
            .iter()
            .zip(&power[self.first..])
            .map(|(&w, p)| w as f32 * p)
            .sum()
    }

    /// The filter's output for an f64 power spectrum.
    pub fn energy_f64(&self, power: &[f64]) -> f64 {
        self.weights
            .iter()
            .zip(power.iter().skip(self.first))
            .map(|(w, p)| w * p)
            .sum()
    }
}

/// Hz per mel on the linear part of Slaney's scale (3 mel per 200 Hz).
const LINEAR_HZ_PER_MEL: f64 = 200.0 / 3.0;
/// Where Slaney's scale turns logarithmic.
const LOG_FROM_HZ: f64 = 1_000.0;
const LOG_FROM_MEL: f64 = 15.0;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney's Auditory Toolbox mel scale: linear below 1 kHz, logarithmic above.
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz < LOG_FROM_HZ {
        hz / LINEAR_HZ_PER_MEL
    } else {
        LOG_FROM_MEL + (hz / LOG_FROM_HZ).ln() / log_step()
    }
}

/// The inverse of [`hz_to_mel`].
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel < LOG_FROM_MEL {
        mel * LINEAR_HZ_PER_MEL
    } else {
        LOG_FROM_HZ * ((mel - LOG_FROM_MEL) * log_step()).exp()
    }
}

/// `n_bands` filters over the `bins` bins of a spectrum, `weight(band, bin)` each (zero where
/// the band does not reach).
pub fn filterbank(
    n_bands: usize,
    bins: usize,
    weight: impl Fn(usize, usize) -> f64,
) -> Vec<MelBand> {
    (0..n_bands)
        .map(|m| MelBand::from_bins(&(0..bins).map(|k| weight(m, k)).collect::<Vec<_>>()))
        .collect()
}

/// `librosa.filters.mel(sr=sample_rate_hz, n_fft=n_fft, n_mels=n_mels)`: triangles between
/// 0 Hz and Nyquist, evenly spaced in Slaney mel, each scaled to unit area (`norm="slaney"`).
pub fn slaney_filterbank(n_mels: usize, n_fft: usize, sample_rate_hz: f64) -> Vec<MelBand> {
    let top = hz_to_mel(sample_rate_hz / 2.0);
    // n_mels + 2 edges equally spaced in mel: band m rises from edge m to m+1, falls to m+2.
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    filterbank(n_mels, n_fft / 2 + 1, |m, k| {
        let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let area = 2.0 / (hi - lo);
        let hz = k as f64 * sample_rate_hz / n_fft as f64;
        let rise = (hz - lo) / (mid - lo);
        let fall = (hi - hz) / (hi - mid);
        rise.min(fall).max(0.0) * area
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slaney_scale_round_trips_and_bends_at_1_khz() {
        assert!((hz_to_mel(1_000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 200.0, 999.0, 1_000.0, 3_000.0, 8_000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
    }

    #[test]
    fn filters_match_librosa() {
        // Values of librosa.filters.mel(sr=16000, n_fft=400, n_mels=40).
        let bands = slaney_filterbank(40, 400, 16_000.0);
        let check = |m: usize, first: usize, expected: &[f64]| {
            assert_eq!(bands[m].bins().start, first, "band {m}");
            for (w, e) in bands[m].weights.iter().zip(expected) {
                assert!((w - e).abs() < 1e-6, "band {m}: {w} vs {e}");
            }
        };
        check(0, 1, &[0.007_390_209, 0.012_404_521, 0.005_014_312]);
        check(10, 19, &[0.004_489_280, 0.011_879_490, 0.007_915_241]);
        check(39, 172, &[2.072_259_5e-5, 1.518_162_6e-4, 2.829_099_5e-4]);
        assert_eq!(bands[39].bins().end, 200);
    }

    #[test]
    fn every_band_sees_some_bin() {
        for n_mels in [40, 80] {
            let bands = slaney_filterbank(n_mels, 400, 16_000.0);
            assert_eq!(bands.len(), n_mels);
            for (band, filter) in bands.iter().enumerate() {
                assert!(
                    !filter.bins().is_empty(),
                    "band {band} of {n_mels} is empty"
                );
            }
        }
    }

    #[test]
    fn energy_weighs_the_covered_bins() {
        let band = MelBand::from_bins(&[0.0, 0.5, 1.0, 0.0]);
        assert_eq!(band.bins(), 1..3);
        assert_eq!(band.energy(&[9.0, 2.0, 3.0, 9.0]), 4.0);
        assert_eq!(band.energy_f64(&[9.0, 2.0, 3.0, 9.0]), 4.0);
        assert!(MelBand::from_bins(&[0.0; 4]).bins().is_empty());
    }
}
