//! Robust statistics: medians and median absolute deviations, so that one shouted word or one
//! octave error of the pitch tracker barely moves a speaker's baseline.

use ecg_audio::dsp::stats::median;

/// MAD × 1.4826 estimates the standard deviation of normally distributed values.
const MAD_TO_SIGMA: f64 = 1.4826;

/// |z| is capped here: beyond three spreads a value is an outlier or a measurement error, and
/// one cue must not outvote all the others.
pub(crate) const Z_LIMIT: f64 = 3.0;

/// The centre and spread of a baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub centre: f64,
    pub scale: f64,
}

impl Spread {
    /// Median and MAD-based sigma of `values`, the sigma floored at `min_scale` (a monotonous
    /// baseline would otherwise turn the slightest change into a huge z); `None` for fewer than
    /// `min_count` values.
    pub fn robust(mut values: Vec<f64>, min_count: usize, min_scale: f64) -> Option<Self> {
        if values.len() < min_count {
            return None;
        }
        let centre = median(&mut values)?;
        let mut deviations: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
        let mad = median(&mut deviations)?;
        Some(Self {
            centre,
            scale: (MAD_TO_SIGMA * mad).max(min_scale),
        })
    }

    /// How many spreads `value` lies above the centre, capped at ±[`Z_LIMIT`].
    pub fn z(&self, value: f64) -> f64 {
        ((value - self.centre) / self.scale).clamp(-Z_LIMIT, Z_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_mad() {
        let s = Spread::robust(vec![1.0, 2.0, 3.0, 4.0, 100.0], 3, 0.0).unwrap();
        assert_eq!(s.centre, 3.0);
        // Deviations 2, 1, 0, 1, 97: the MAD is 1 and the outlier does not inflate it.
        assert!((s.scale - 1.4826).abs() < 1e-12);
        assert!((s.z(4.4826) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn too_few_values_give_no_baseline() {
        assert_eq!(Spread::robust(vec![1.0, 2.0], 3, 0.0), None);
        assert_eq!(Spread::robust(vec![], 0, 0.0), None);
    }

    #[test]
    fn the_floor_keeps_a_flat_baseline_from_exploding() {
        let s = Spread::robust(vec![-20.0; 10], 3, 1.5).unwrap();
        assert_eq!(s.scale, 1.5);
        assert_eq!(s.z(-17.0), 2.0);
        assert_eq!(s.z(40.0), Z_LIMIT);
        assert_eq!(s.z(-80.0), -Z_LIMIT);
    }
}
