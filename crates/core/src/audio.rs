//! Decoded audio and time spans: every stage reads the same 16 kHz mono samples.

use serde::{Deserialize, Serialize};

/// 16 kHz: Silero VAD, Whisper and the speaker encoder were all trained on it.
pub const SAMPLE_RATE_HZ: u32 = 16_000;

/// Mono PCM at [`SAMPLE_RATE_HZ`], samples in [-1, 1].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
}

impl Audio {
    pub fn new(samples: Vec<f32>) -> Self {
        Self { samples }
    }

    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    }

    /// The sample index of a time, clamped to the audio.
    pub fn index_at(&self, seconds: f64) -> usize {
        let idx = (seconds.max(0.0) * f64::from(SAMPLE_RATE_HZ)).round();
        // Non-negative and bounded by the length below, so the cast cannot wrap.
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "clamped above"
        )]
        let idx = idx as usize;
        idx.min(self.samples.len())
    }

    /// The samples of a span, clamped to the audio.
    pub fn slice(&self, span: TimeSpan) -> &[f32] {
        let start = self.index_at(span.start_s);
        let end = self.index_at(span.end_s).max(start);
        &self.samples[start..end]
    }
}

/// A half-open interval of time in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub start_s: f64,
    pub end_s: f64,
}

impl TimeSpan {
    pub fn new(start_s: f64, end_s: f64) -> Self {
        Self {
            start_s,
            end_s: end_s.max(start_s),
        }
    }

    pub fn duration_s(self) -> f64 {
        self.end_s - self.start_s
    }

    /// Seconds shared with another span (0 when disjoint).
    pub fn overlap_s(self, other: TimeSpan) -> f64 {
        (self.end_s.min(other.end_s) - self.start_s.max(other.start_s)).max(0.0)
    }

    /// Seconds between the spans (0 when they touch or overlap).
    pub fn gap_s(self, other: TimeSpan) -> f64 {
        (other.start_s - self.end_s)
            .max(self.start_s - other.end_s)
            .max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_are_clamped() {
        let audio = Audio::new(vec![0.0; 16_000]);
        assert_eq!(audio.slice(TimeSpan::new(0.5, 2.0)).len(), 8_000);
        assert_eq!(audio.slice(TimeSpan::new(-1.0, 0.25)).len(), 4_000);
        assert!(audio.slice(TimeSpan::new(3.0, 4.0)).is_empty());
        assert!((audio.duration_s() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn overlap_and_gap() {
        let a = TimeSpan::new(1.0, 3.0);
        assert!((a.overlap_s(TimeSpan::new(2.0, 5.0)) - 1.0).abs() < 1e-12);
        assert!((a.gap_s(TimeSpan::new(4.5, 5.0)) - 1.5).abs() < 1e-12);
        assert!(a.gap_s(TimeSpan::new(2.0, 2.5)).abs() < 1e-12);
    }
}
