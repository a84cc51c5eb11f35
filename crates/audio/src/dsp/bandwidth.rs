//! Telephone-band audio: what a phone line carried. Sampled at 8 kHz, it holds nothing above
//! 4 kHz once resampled to 16 kHz, where wideband speech keeps fricatives and breath up there.
//! Speech models trained on wideband audio score such input differently (a voice detector
//! hears less speech, a speaker encoder hears voices as more alike), so the stages that use
//! them adapt to it.

use ecg_core::audio::SAMPLE_RATE_HZ;

use super::spectrum::Spectrum;

/// The voice band a telephone line passes.
const VOICE_HZ: (f64, f64) = (300.0, 3_400.0);
/// Above what any 8 kHz channel carries, below the 16 kHz Nyquist frequency's roll-off.
const UPPER_HZ: (f64, f64) = (4_300.0, 7_500.0);
/// Upper-band energy relative to the voice band below which audio is telephone band. Measured:
/// wideband meeting recordings −15 to −26 dB; the same through a 300–3400 Hz band-pass below
/// −90 dB, through 8 kHz µ-law −51 to −58 dB; 8 kHz studio prompts −50 to −55 dB.
const NARROWBAND_DB: f64 = -40.0;
/// One second of audio of every `SAMPLED_EVERY` is measured: the band is the channel's, not
/// the moment's, and an hour then costs a few milliseconds.
const SAMPLED_EVERY: usize = 4;

/// Whether `samples` (16 kHz) came through a telephone-band channel. Silence is not.
pub fn is_narrowband(samples: &[f32]) -> bool {
    let spectrum = Spectrum::new(SAMPLE_RATE_HZ);
    let bin_hz = spectrum.bin_hz();
    let (mut voice, mut upper) = (0.0f64, 0.0f64);
    for second in samples
        .chunks(SAMPLE_RATE_HZ as usize)
        .step_by(SAMPLED_EVERY)
    {
        spectrum.for_each_frame(second, |magnitudes| {
            for (k, &m) in magnitudes.iter().enumerate() {
                let hz = k as f64 * bin_hz;
                let power = f64::from(m) * f64::from(m);
                if (VOICE_HZ.0..VOICE_HZ.1).contains(&hz) {
                    voice += power;
                } else if (UPPER_HZ.0..UPPER_HZ.1).contains(&hz) {
                    upper += power;
                }
            }
        });
    }
    voice > 1e-9 && 10.0 * (upper / voice).max(1e-30).log10() < NARROWBAND_DB
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::testsignal::{sine, white_noise};

    /// Tones across the voice band over a noise floor of `noise` (peak), the way speech fills
    /// the band over a channel's hiss.
    fn voice_band(noise: f64) -> Vec<f32> {
        let mut x = white_noise(noise, 10.0, 7);
        for hz in [220.0, 700.0, 1_500.0, 2_900.0] {
            for (s, t) in x.iter_mut().zip(sine(hz, 0.1, 10.0)) {
                *s += t;
            }
        }
        x
    }

    #[test]
    fn a_noise_floor_far_below_the_voice_is_still_narrowband() {
        // Flat noise 40 dB under the tones' peak: about −52 dB in the upper band.
        assert!(is_narrowband(&voice_band(0.001)));
        // Noise 6 dB under the tones fills the upper band: a wideband channel.
        assert!(!is_narrowband(&voice_band(0.05)));
    }

    #[test]
    fn energy_above_four_kilohertz_makes_it_wideband() {
        let mut x = sine(1_000.0, 0.3, 8.0);
        assert!(is_narrowband(&x));
        // A fricative-like 6 kHz component 20 dB below the voice.
        for (s, t) in x.iter_mut().zip(sine(6_000.0, 0.03, 8.0)) {
            *s += t;
        }
        assert!(!is_narrowband(&x));
    }

    #[test]
    fn silence_is_not_narrowband() {
        assert!(!is_narrowband(&[0.0; 32_000]));
        assert!(!is_narrowband(&[]));
    }
}
