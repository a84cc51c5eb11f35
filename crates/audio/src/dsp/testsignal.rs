//! Analytic test signals at 16 kHz.

use ecg_core::audio::SAMPLE_RATE_HZ;

/// `seconds` of a sine of `freq_hz` with peak `amplitude`.
pub(crate) fn sine(freq_hz: f64, amplitude: f64, seconds: f64) -> Vec<f32> {
    let sr = f64::from(SAMPLE_RATE_HZ);
    let n = (seconds * sr).round() as usize;
    (0..n)
        .map(|i| (amplitude * (std::f64::consts::TAU * freq_hz * i as f64 / sr).sin()) as f32)
        .collect()
}

/// `seconds` of uniform white noise in [-amplitude, amplitude], the same for the same seed.
pub(crate) fn white_noise(amplitude: f64, seconds: f64, seed: u64) -> Vec<f32> {
    let n = (seconds * f64::from(SAMPLE_RATE_HZ)).round() as usize;
    // xorshift64*: enough for a flat spectrum, and no dependency.
    let mut state = seed.max(1);
    (0..n)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
            let unit = bits as f64 / (1u64 << 53) as f64;
            (amplitude * (2.0 * unit - 1.0)) as f32
        })
        .collect()
}
