//! Log-mel features for ONNX models that read `[1, 80, T]`; the layout is documented in the
//! crate docs, so that a model can be exported to match it.

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

/// Slaney's mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above.
const LINEAR_HZ_PER_MEL: f64 = 200.0 / 3.0;
const LOG_FROM_HZ: f64 = 1_000.0;
const LOG_FROM_MEL: f64 = LOG_FROM_HZ / LINEAR_HZ_PER_MEL;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz < LOG_FROM_HZ {
        hz / LINEAR_HZ_PER_MEL
    } else {
        LOG_FROM_MEL + (hz / LOG_FROM_HZ).ln() / log_step()
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel < LOG_FROM_MEL {
        mel * LINEAR_HZ_PER_MEL
    } else {
        LOG_FROM_HZ * ((mel - LOG_FROM_MEL) * log_step()).exp()
    }
}

/// The 25 ms spectrum (the FFT plan is made once) and the filterbank.
pub(crate) struct LogMel {
    spectrum: Spectrum,
    /// Per band, its first FFT bin and the weights from there on.
    filters: Vec<(usize, Vec<f64>)>,
}

impl LogMel {
    pub fn new() -> Self {
        let spectrum = Spectrum::with_frame_len(SAMPLE_RATE_HZ, FRAME_LEN);
        let bins = FRAME_LEN / 2 + 1;
        let nyquist = f64::from(SAMPLE_RATE_HZ) / 2.0;
        let top = hz_to_mel(nyquist);
        // N_MELS + 2 edges equally spaced in mel: band m rises from edge m to m+1, falls to m+2.
        let edges: Vec<f64> = (0..N_MELS + 2)
            .map(|i| mel_to_hz(top * i as f64 / (N_MELS + 1) as f64))
            .collect();
        let filters = edges
            .windows(3)
            .map(|e| {
                let weights: Vec<f64> = (0..bins)
                    .map(|k| {
                        let hz = k as f64 * spectrum.bin_hz();
                        let rising = (hz - e[0]) / (e[1] - e[0]);
                        let falling = (e[2] - hz) / (e[2] - e[1]);
                        // Area normalisation: every band has the same total weight per Hz.
                        rising.min(falling).max(0.0) * 2.0 / (e[2] - e[0])
                    })
                    .collect();
                let first = weights.iter().position(|&w| w > 0.0).unwrap_or(bins);
                let last = weights
                    .iter()
                    .rposition(|&w| w > 0.0)
                    .map_or(first, |l| l + 1);
                (first, weights[first..last].to_vec())
            })
            .collect();
        Self { spectrum, filters }
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
            for (band, (first, weights)) in self.filters.iter().enumerate() {
                let energy: f64 = weights
                    .iter()
                    .zip(power.iter().skip(*first))
                    .map(|(w, p)| w * p)
                    .sum();
                out[band * frames + t] = (energy + LOG_FLOOR).ln() as f32;
            }
        }
        (out, frames)
    }
}

#[cfg(test)]
mod tests {
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
    fn slaney_scale_round_trips_and_bends_at_1_khz() {
        assert!((hz_to_mel(1_000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        for hz in [0.0, 200.0, 999.0, 1_000.0, 3_000.0, 8_000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
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
    fn every_band_sees_some_bin() {
        let mel = LogMel::new();
        assert_eq!(mel.filters.len(), N_MELS);
        for (band, (first, weights)) in mel.filters.iter().enumerate() {
            assert!(!weights.is_empty(), "band {band} at bin {first} is empty");
        }
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
