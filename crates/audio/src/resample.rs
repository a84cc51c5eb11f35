//! Streaming conversion of mono audio at any rate to 16 kHz.
//!
//! Samples arrive packet by packet and leave chunk by chunk, so memory holds less than one
//! resampler chunk at the source rate besides the 16 kHz output. rubato's synchronous FFT
//! resampler is exact for a fixed ratio, band-limits to the lower Nyquist frequency, and is the
//! fastest of its resamplers.

use audioadapter_buffers::direct::InterleavedSlice;
use ecg_core::audio::SAMPLE_RATE_HZ;
use rubato::{Fft, FixedSync, Indexing, Resampler};

/// Input frames per chunk, rounded by rubato to a multiple of the rate ratio (4410 at 44.1 kHz):
/// long FFT blocks keep the anti-aliasing cutoff close to 8 kHz.
const CHUNK_HINT: usize = 4096;

/// Converts one stream at `rate` to 16 kHz, appending to a caller's buffer.
pub(crate) struct To16k {
    rate: u32,
    /// `None` when the source is already at 16 kHz.
    fft: Option<Fft<f32>>,
    /// Source samples not yet resampled: always less than one chunk between calls.
    pending: Vec<f32>,
    chunks: Chunks,
    fed: u64,
}

/// The resampler's output side: its chunk buffer and what has left it.
struct Chunks {
    buffer: Vec<f32>,
    /// Output frames of resampler latency still to drop from the front.
    delay_left: usize,
    produced: u64,
}

impl Chunks {
    /// Appends the first `written` frames of the buffer, less any latency still to drop.
    fn emit(&mut self, written: usize, out: &mut Vec<f32>) {
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        out.extend_from_slice(&self.buffer[skip..written]);
        self.produced += (written - skip) as u64;
    }
}

/// Highest source rate accepted. The FFT sizes grow with `rate / gcd(rate, 16000)`, so a
/// header's made-up rate (fuzzing found 4294967295 Hz) would have rubato allocate gigabytes;
/// real recordings stop at 384 kHz.
const MAX_RATE_HZ: u32 = 768_000;

impl To16k {
    pub(crate) fn new(rate: u32) -> Result<Self, String> {
        if rate > MAX_RATE_HZ {
            return Err(format!(
                "unsupported sample rate: {rate} Hz (at most {MAX_RATE_HZ} Hz)"
            ));
        }
        let fft = if rate == SAMPLE_RATE_HZ {
            None
        } else {
            let fft = Fft::<f32>::new(
                rate as usize,
                SAMPLE_RATE_HZ as usize,
                CHUNK_HINT,
                1,
                FixedSync::Both,
            )
            .map_err(|e| format!("cannot resample from {rate} Hz: {e}"))?;
            Some(fft)
        };
        let (buffer, delay_left) = fft.as_ref().map_or((Vec::new(), 0), |f| {
            (vec![0.0; f.output_frames_max()], f.output_delay())
        });
        Ok(Self {
            rate,
            fft,
            pending: Vec::new(),
            chunks: Chunks {
                buffer,
                delay_left,
                produced: 0,
            },
            fed: 0,
        })
    }

    /// The source rate.
    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    /// Resamples `mono` (after what came before) and appends every complete output chunk.
    pub(crate) fn push(&mut self, mono: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        self.fed += mono.len() as u64;
        let Some(fft) = self.fft.as_mut() else {
            out.extend_from_slice(mono);
            self.chunks.produced += mono.len() as u64;
            return Ok(());
        };
        self.pending.extend_from_slice(mono);
        let need = fft.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start >= need {
            let input = &self.pending[start..start + need];
            let written = process(fft, input, None, &mut self.chunks.buffer)?;
            start += need;
            self.chunks.emit(written, out);
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// Flushes the tail and the resampler's latency, so the output is exactly as long as the
    /// input at 16 kHz (rounded up).
    pub(crate) fn finish(mut self, out: &mut Vec<f32>) -> Result<(), String> {
        let expected = (self.fed * u64::from(SAMPLE_RATE_HZ)).div_ceil(u64::from(self.rate));
        let Some(mut fft) = self.fft.take() else {
            return Ok(());
        };
        // The remaining partial chunk, then silence until the latency has been pushed through.
        let mut tail = std::mem::take(&mut self.pending);
        while self.chunks.produced < expected {
            let written = process(&mut fft, &tail, Some(tail.len()), &mut self.chunks.buffer)?;
            if written == 0 {
                return Err("resampler produced no output while flushing".to_owned());
            }
            tail.clear();
            self.chunks.emit(written, out);
        }
        // Whole chunks overshoot by up to one chunk; that overshoot is resampled silence.
        let excess = usize::try_from(self.chunks.produced - expected).unwrap_or(usize::MAX);
        out.truncate(out.len().saturating_sub(excess));
        Ok(())
    }
}

/// One resampler call on `input` (a partial chunk when `partial` is set); returns the frames
/// written to `chunk_out`.
fn process(
    fft: &mut Fft<f32>,
    input: &[f32],
    partial: Option<usize>,
    chunk_out: &mut [f32],
) -> Result<usize, String> {
    let frames_out = chunk_out.len();
    let input = InterleavedSlice::new(input, 1, input.len()).map_err(|e| e.to_string())?;
    let mut output =
        InterleavedSlice::new_mut(chunk_out, 1, frames_out).map_err(|e| e.to_string())?;
    let indexing = partial.map(|len| Indexing::new().partial_len(len));
    let (_, written) = fft
        .process_into_buffer(&input, &mut output, indexing.as_ref())
        .map_err(|e| format!("resampling failed: {e}"))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::yin::Yin;

    /// `seconds` of a sine at `rate`.
    fn sine_at(rate: u32, hz: f64, seconds: f64) -> Vec<f32> {
        let n = (seconds * f64::from(rate)) as usize;
        (0..n)
            .map(|i| (0.5 * (std::f64::consts::TAU * hz * i as f64 / f64::from(rate)).sin()) as f32)
            .collect()
    }

    /// Resamples `input` fed in pieces of `piece` samples.
    fn resample(rate: u32, input: &[f32], piece: usize) -> Vec<f32> {
        let mut r = To16k::new(rate).unwrap();
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            r.push(chunk, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn lengths_are_exact_for_common_rates() {
        for rate in [
            8_000, 11_025, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000,
        ] {
            for seconds in [0.0, 0.01, 0.5, 1.7] {
                let input = sine_at(rate, 300.0, seconds);
                let expected = (input.len() as u64 * 16_000).div_ceil(u64::from(rate)) as usize;
                assert_eq!(
                    resample(rate, &input, 1_000).len(),
                    expected,
                    "{rate} Hz, {seconds} s"
                );
            }
        }
    }

    #[test]
    fn tone_keeps_its_pitch_level_and_timing() {
        let input = sine_at(44_100, 440.0, 1.0);
        let out = resample(44_100, &input, 1_152);
        let yin = Yin::new(SAMPLE_RATE_HZ);
        let f0 = yin.median_f0(&out).unwrap();
        assert!((f0 - 440.0).abs() < 440.0 * 0.005, "{f0}");
        // Latency is trimmed: the tone starts at sample 0, not a few hundred samples late.
        assert!(out[..40].iter().any(|s| s.abs() > 0.2));
        let mid = &out[4_000..12_000];
        let rms =
            (mid.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / mid.len() as f64).sqrt();
        assert!((rms - 0.5 / 2f64.sqrt()).abs() < 0.01, "{rms}");
    }

    #[test]
    fn piece_size_does_not_matter() {
        let input = sine_at(48_000, 200.0, 0.3);
        let a = resample(48_000, &input, 64);
        let b = resample(48_000, &input, 100_000);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4));
    }

    #[test]
    fn content_above_8_khz_is_removed() {
        let out = resample(48_000, &sine_at(48_000, 12_000.0, 0.5), 4_800);
        let peak = out[800..7_000].iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.01, "{peak}");
    }
}
