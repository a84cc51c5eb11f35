//! Statistics of frames and of measurements: energy of a run of samples, medians and quantiles.

/// Sum of the squared samples, accumulated in f64: a long slice of f32 squares loses precision
/// otherwise.
pub fn sum_of_squares(samples: &[f32]) -> f64 {
    samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
}

/// Mean of the squared samples (the power of a frame); 0.0 for an empty slice.
pub fn mean_square(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    sum_of_squares(samples) / samples.len() as f64
}

/// Median of the values (mean of the middle two for an even count), `None` when empty.
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        0.5 * (values[mid - 1] + values[mid])
    } else {
        values[mid]
    })
}

/// The `q`-quantile (0 ≤ q ≤ 1) of ascending `sorted` values, linearly interpolated between
/// neighbours; `None` when empty.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let pos = q.clamp(0.0, 1.0) * last as f64;
    // Non-negative and at most `last`, so the casts are exact.
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_energy() {
        assert_eq!(sum_of_squares(&[3.0, -4.0]), 25.0);
        assert_eq!(mean_square(&[3.0, -4.0]), 12.5);
        assert_eq!(mean_square(&[]), 0.0);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn quantiles_interpolate() {
        let x = [0.0, 10.0, 20.0, 30.0, 40.0];
        assert_eq!(quantile(&x, 0.5), Some(20.0));
        assert_eq!(quantile(&x, 0.1), Some(4.0));
        assert_eq!(quantile(&x, 0.9), Some(36.0));
        assert_eq!(quantile(&x, 1.0), Some(40.0));
        assert_eq!(quantile(&[7.0], 0.9), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
