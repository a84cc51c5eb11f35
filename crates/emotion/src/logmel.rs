//! Log-mel features for ONNX models that read `[1, 80, T]`; the layout is documented in the
//! crate docs, so that a model can be exported to match it.

use ecg_audio::dsp::mel::{MelBand, slaney_filterbank};
use ecg_audio::dsp::spectrum::Spectrum;
use ecg_core::audio::SAMPLE_RATE_HZ;

/// Mel bands.
pub(crate) const N_MELS: usize = 80;
/// 25 ms frames.
pub(crate) const FRAME_LEN: usize = 400;
/// 10 ms hop.
const HOP: usize = 160;
/// Added before the log so that silence stays finite.
const LOG_FLOOR: f64 = 1e-10;

/// The 25 ms spectrum (the FFT plan is made once) and the filterbank.
pub(crate) struct LogMel {
    spectrum: Spectrum,
    filters: Vec<MelBand>,
}

impl LogMel {
    pub fn new() -> Self {
        Self {
            spectrum: Spectrum::with_frame_len(SAMPLE_RATE_HZ, FRAME_LEN),
            filters: slaney_filterbank(N_MELS, FRAME_LEN, f64::from(SAMPLE_RATE_HZ)),
        }
    }

    /// Frames of `samples`: one per full 25 ms window every 10 ms, and at least one (a shorter
    /// slice is one zero-padded frame).
    pub fn frame_count(samples: usize) -> usize {
        samples.saturating_sub(FRAME_LEN) / HOP + 1
    }

    /// The features of `samples`, band-major (`[band][frame]`, as a `[1, 80, T]` tensor is laid
    /// out), and T.
    pub fn features(&self, samples: &[f32]) -> (Vec<f32>, usize) {
        let frames = Self::frame_count(samples.len());
        let mut out = vec![0.0f32; N_MELS * frames];
        let mut power = Vec::new();
        for t in 0..frames {
            let start = t * HOP;
            let frame = &samples[start.min(samples.len())..(start + FRAME_LEN).min(samples.len())];
            // A slice of one frame's length is exactly one frame of the spectrum; an empty one
            // is none, and stays silent.
            power.clear();
            self.spectrum.for_each_frame(frame, |magnitudes| {
                power.extend(magnitudes.iter().map(|&m| f64::from(m) * f64::from(m)));
            });
            for (band, filter) in self.filters.iter().enumerate() {
                out[band * frames + t] = (filter.energy_f64(&power) + LOG_FLOOR).ln() as f32;
            }
        }
        (out, frames)
    }
}

#[cfg(test)]
mod tests {
    use ecg_audio::dsp::mel::{hz_to_mel, mel_to_hz};

    use super::*;

    fn sine(hz: f64, amplitude: f64, samples: usize) -> Vec<f32> {
        (0..samples)
            .map(|n| {
                (amplitude
                    * (std::f64::consts::TAU * hz * n as f64 / f64::from(SAMPLE_RATE_HZ)).sin())
                    as f32
            })
            .collect()
    }

    #[test]
    fn frames_every_10_ms() {
        assert_eq!(LogMel::frame_count(0), 1);
        assert_eq!(LogMel::frame_count(399), 1);
        assert_eq!(LogMel::frame_count(400), 1);
        assert_eq!(LogMel::frame_count(560), 2);
        assert_eq!(LogMel::frame_count(16_000), 98);
    }

    #[test]
    fn a_tone_lights_the_band_of_its_frequency() {
        let mel = LogMel::new();
        let (features, frames) = mel.features(&sine(1_000.0, 0.5, 16_000));
        assert_eq!((features.len(), frames), (N_MELS * 98, 98));
        let mid = frames / 2;
        let loudest = (0..N_MELS)
            .max_by(|&a, &b| features[a * frames + mid].total_cmp(&features[b * frames + mid]))
            .unwrap();
        // 1 kHz is 15 mel; the bands' centres are spaced 45.2 / 81 mel apart.
        let centre_hz = mel_to_hz(hz_to_mel(8_000.0) * (loudest + 1) as f64 / 81.0);
        assert!(
            (centre_hz - 1_000.0).abs() < 60.0,
            "band {loudest} at {centre_hz} Hz"
        );
    }

    #[test]
    fn silence_is_the_floor_and_short_slices_get_one_frame() {
        let mel = LogMel::new();
        let (features, frames) = mel.features(&[0.0; 1_000]);
        assert_eq!(frames, 4);
        assert!(
            features
                .iter()
                .all(|&x| (f64::from(x) - LOG_FLOOR.ln()).abs() < 1e-3)
        );
        let (short, frames) = mel.features(&sine(440.0, 0.5, 100));
        assert_eq!((short.len(), frames), (N_MELS, 1));
        assert!(short.iter().any(|&x| f64::from(x) > LOG_FLOOR.ln() + 1.0));
    }
}
