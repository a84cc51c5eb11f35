//! From z-scores to the published numbers: arousal, its label and confidence, and per-word
//! emphasis. Pure arithmetic, so every weight and threshold is tested with plain numbers.

use std::ops::{Index, IndexMut};

/// The prosodic cues of activation. Louder, higher, wider-ranging, faster and brighter speech
/// is the most replicated acoustic profile of high arousal (Scherer 1986; Banse & Scherer 1996;
/// Juslin & Laukka 2003), whatever the emotion's valence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cue {
    /// Level in dBFS.
    Loudness,
    /// Median F0 in semitones.
    PitchLevel,
    /// Spread of F0 within a segment in semitones (10th to 90th percentile).
    PitchRange,
    /// Estimated syllables per second.
    SpeakingRate,
    /// Spectral centroid in octaves: vocal effort tilts the spectrum towards high frequencies.
    Brightness,
}

impl Cue {
    pub const ALL: [Cue; 5] = [
        Cue::Loudness,
        Cue::PitchLevel,
        Cue::PitchRange,
        Cue::SpeakingRate,
        Cue::Brightness,
    ];

    /// Weight in the arousal sum; the weights add up to 1. Loudness and pitch level are the
    /// strongest and most robust arousal cues, and measured over a whole segment they are also
    /// the steadiest here. Pitch range needs many voiced frames, speaking rate rests on the
    /// recogniser's word timings and a syllable estimate, and brightness largely follows
    /// loudness (both come from vocal effort): they confirm rather than decide.
    pub fn weight(self) -> f64 {
        match self {
            Cue::Loudness => 0.30,
            Cue::PitchLevel => 0.25,
            Cue::PitchRange => 0.15,
            Cue::SpeakingRate => 0.15,
            Cue::Brightness => 0.15,
        }
    }
}

/// One value per [`Cue`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Cues<T>(pub [T; 5]);

impl<T> Index<Cue> for Cues<T> {
    type Output = T;
    fn index(&self, cue: Cue) -> &T {
        &self.0[cue as usize]
    }
}

impl<T> IndexMut<Cue> for Cues<T> {
    fn index_mut(&mut self, cue: Cue) -> &mut T {
        &mut self.0[cue as usize]
    }
}

/// Slope of the logistic. With it, a segment one spread above its baseline in loudness and in
/// pitch level alone (weighted sum 0.55) reaches 0.70, past [`EXCITED_ABOVE`]; one cue alone
/// at one spread does not; every cue at one spread gives 0.82.
const GAIN: f64 = 1.5;

/// Arousal below this is labelled calm.
pub const CALM_BELOW: f64 = 0.35;
/// Arousal above this is labelled excited.
pub const EXCITED_ABOVE: f64 = 0.65;

/// The labels of prosody-v1, from low to high arousal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArousalLabel {
    /// Quieter, lower, flatter or slower than the speaker usually is.
    Calm,
    /// Within the speaker's usual range.
    Neutral,
    /// Louder, higher, livelier or faster than the speaker usually is.
    Excited,
}

impl ArousalLabel {
    /// The label for an arousal in [0, 1]: calm below [`CALM_BELOW`], excited above
    /// [`EXCITED_ABOVE`], neutral between (both thresholds included).
    pub fn of(arousal: f64) -> Self {
        if arousal < CALM_BELOW {
            ArousalLabel::Calm
        } else if arousal > EXCITED_ABOVE {
            ArousalLabel::Excited
        } else {
            ArousalLabel::Neutral
        }
    }

    /// The label as it appears in `segments[].emotion.label`.
    pub fn as_str(self) -> &'static str {
        match self {
            ArousalLabel::Calm => "calm",
            ArousalLabel::Neutral => "neutral",
            ArousalLabel::Excited => "excited",
        }
    }
}

/// A segment's activation from its cues' z-scores against the speaker's baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Activation {
    /// Logistic of the weighted z-sum, in (0, 1); 0.5 is the speaker's baseline.
    pub arousal: f64,
    /// Total weight of the cues that could be measured, in [0, 1]. A missing cue (an unvoiced
    /// segment has no pitch) counts as z = 0, so it pulls towards neutral, and lowers confidence.
    pub coverage: f64,
}

pub(crate) fn activation(z: &Cues<Option<f64>>) -> Activation {
    let measured = || Cue::ALL.into_iter().filter_map(|c| z[c].map(|z| (c, z)));
    let sum: f64 = measured().map(|(c, z)| c.weight() * z).sum();
    let coverage: f64 = measured().map(|(c, _)| c.weight()).sum();
    Activation {
        arousal: 1.0 / (1.0 + (-GAIN * sum).exp()),
        coverage,
    }
}

/// How far `arousal` lies inside its label's interval, from 0 on a threshold to 1 at the far
/// end of the room that label has (0 or 1 for calm and excited, the middle for neutral).
pub(crate) fn margin(arousal: f64) -> f64 {
    let m = match ArousalLabel::of(arousal) {
        ArousalLabel::Calm => (CALM_BELOW - arousal) / CALM_BELOW,
        ArousalLabel::Excited => (arousal - EXCITED_ABOVE) / (1.0 - EXCITED_ABOVE),
        ArousalLabel::Neutral => {
            (arousal - CALM_BELOW).min(EXCITED_ABOVE - arousal)
                / (0.5 * (EXCITED_ABOVE - CALM_BELOW))
        }
    };
    m.clamp(0.0, 1.0)
}

/// Prominence (z above the baseline) at which emphasis starts: a word within one spread of its
/// speaker's usual loudness and pitch is ordinary speech.
const EMPHASIS_FROM_Z: f64 = 1.0;
/// Prominence at which emphasis reaches 1.
const EMPHASIS_FULL_Z: f64 = 3.0;

/// Emphasis in [0, 1] of a word from its loudness and pitch z-scores: the length of the vector
/// of their positive parts, so either cue alone can mark a word and both together mark it more;
/// being quieter or lower than usual is never emphasis. Ramps linearly from
/// [`EMPHASIS_FROM_Z`] to [`EMPHASIS_FULL_Z`].
pub(crate) fn emphasis(z_loudness: Option<f64>, z_pitch: Option<f64>) -> f64 {
    let above = |z: Option<f64>| z.unwrap_or(0.0).max(0.0);
    let prominence = above(z_loudness).hypot(above(z_pitch));
    ((prominence - EMPHASIS_FROM_Z) / (EMPHASIS_FULL_Z - EMPHASIS_FROM_Z)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues(loud: f64, pitch: f64, range: f64, rate: f64, bright: f64) -> Cues<Option<f64>> {
        Cues([loud, pitch, range, rate, bright].map(Some))
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-3
    }

    #[test]
    fn weights_add_up_to_one() {
        let total: f64 = Cue::ALL.iter().map(|c| c.weight()).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }

    #[test]
    fn baseline_speech_is_half_way_and_neutral() {
        let a = activation(&cues(0.0, 0.0, 0.0, 0.0, 0.0));
        assert_eq!(a.arousal, 0.5);
        assert_eq!(a.coverage, 1.0);
        assert_eq!(ArousalLabel::of(a.arousal), ArousalLabel::Neutral);
        assert_eq!(margin(a.arousal), 1.0);
    }

    #[test]
    fn louder_and_higher_is_excited_and_quieter_and_lower_is_calm() {
        let up = activation(&cues(1.0, 1.0, 0.0, 0.0, 0.0)).arousal;
        assert!(close(up, 0.695), "{up}");
        assert_eq!(ArousalLabel::of(up), ArousalLabel::Excited);
        let down = activation(&cues(-1.0, -1.0, 0.0, 0.0, 0.0)).arousal;
        assert!(close(down, 1.0 - 0.695), "{down}");
        assert_eq!(ArousalLabel::of(down), ArousalLabel::Calm);
        // Every cue one spread up.
        assert!(close(
            activation(&cues(1.0, 1.0, 1.0, 1.0, 1.0)).arousal,
            0.818
        ));
    }

    #[test]
    fn one_cue_alone_at_one_spread_stays_neutral() {
        for i in 0..5 {
            let mut z = cues(0.0, 0.0, 0.0, 0.0, 0.0);
            z.0[i] = Some(1.0);
            let a = activation(&z).arousal;
            assert_eq!(ArousalLabel::of(a), ArousalLabel::Neutral, "cue {i}: {a}");
        }
    }

    #[test]
    fn missing_cues_count_as_baseline_and_lower_coverage() {
        let mut z = cues(2.0, 0.0, 0.0, 0.0, 0.0);
        z[Cue::PitchLevel] = None;
        z[Cue::PitchRange] = None;
        let a = activation(&z);
        assert!(close(a.coverage, 0.6));
        assert!(close(
            a.arousal,
            activation(&cues(2.0, 0.0, 0.0, 0.0, 0.0)).arousal
        ));
        assert_eq!(activation(&Cues::default()).coverage, 0.0);
        assert_eq!(activation(&Cues::default()).arousal, 0.5);
    }

    #[test]
    fn labels_at_and_around_the_thresholds() {
        assert_eq!(ArousalLabel::of(0.0), ArousalLabel::Calm);
        assert_eq!(ArousalLabel::of(0.349), ArousalLabel::Calm);
        assert_eq!(ArousalLabel::of(0.35), ArousalLabel::Neutral);
        assert_eq!(ArousalLabel::of(0.65), ArousalLabel::Neutral);
        assert_eq!(ArousalLabel::of(0.651), ArousalLabel::Excited);
        assert_eq!(ArousalLabel::Excited.as_str(), "excited");
    }

    #[test]
    fn margin_is_zero_on_a_threshold_and_one_at_the_far_end() {
        assert_eq!(margin(CALM_BELOW), 0.0);
        assert_eq!(margin(EXCITED_ABOVE), 0.0);
        assert_eq!(margin(1.0), 1.0);
        assert_eq!(margin(0.0), 1.0);
        assert!(close(margin(0.575), 0.5));
        assert!(close(margin(0.825), 0.5));
        assert!(close(margin(0.175), 0.5));
    }

    #[test]
    fn emphasis_ramps_with_prominence() {
        assert_eq!(emphasis(Some(0.0), Some(0.0)), 0.0);
        assert_eq!(emphasis(Some(1.0), None), 0.0);
        assert_eq!(emphasis(Some(2.0), None), 0.5);
        assert_eq!(emphasis(None, Some(2.0)), 0.5);
        assert_eq!(emphasis(Some(3.0), Some(3.0)), 1.0);
        // Both cues at 1.5 spreads: √(1.5² + 1.5²) = 2.12.
        assert!(close(emphasis(Some(1.5), Some(1.5)), 0.561));
        // Quiet or low is not emphasis, and does not cancel the other cue.
        assert_eq!(emphasis(Some(-3.0), Some(2.0)), 0.5);
        assert_eq!(emphasis(None, None), 0.0);
    }
}
