//! Signal level in dBFS.

use crate::dsp::stats::mean_square;

/// The level reported for digital silence (and for no samples at all): below this, 20·log10
/// of the RMS says nothing useful, and a finite floor keeps the JSON free of `-inf`.
pub const SILENCE_DBFS: f64 = -100.0;

/// Root mean square of the samples; 0.0 for an empty slice.
pub fn rms(samples: &[f32]) -> f64 {
    mean_square(samples).sqrt()
}

/// An RMS amplitude (full scale = 1.0) in dBFS, floored at [`SILENCE_DBFS`].
pub fn amplitude_dbfs(amplitude: f64) -> f64 {
    // log10(0) is -inf and `max` also maps NaN to the floor.
    (20.0 * amplitude.log10()).max(SILENCE_DBFS)
}

/// RMS level of the samples in dBFS: a full-scale sine is -3.01 dB, a full-scale square 0 dB.
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    amplitude_dbfs(rms(samples))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::testsignal::sine;

    #[test]
    fn full_scale_sine_is_minus_3_01_db() {
        let x = sine(1_000.0, 1.0, 1.0);
        assert!((rms_dbfs(&x) + 3.0103).abs() < 0.01, "{}", rms_dbfs(&x));
    }

    #[test]
    fn level_follows_amplitude() {
        // -20 dB of amplitude is -20 dB of level: 0.1 full scale sine → -23.01 dBFS.
        let x = sine(440.0, 0.1, 0.5);
        assert!((rms_dbfs(&x) + 23.0103).abs() < 0.01, "{}", rms_dbfs(&x));
        let square: Vec<f32> = (0..1_000)
            .map(|i| if i % 2 == 0 { 0.5 } else { -0.5 })
            .collect();
        assert!((rms_dbfs(&square) - 20.0 * 0.5f64.log10()).abs() < 1e-9);
    }

    #[test]
    fn silence_and_nothing_hit_the_floor() {
        assert_eq!(rms_dbfs(&[0.0; 800]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[1e-9; 100]), SILENCE_DBFS);
    }
}
