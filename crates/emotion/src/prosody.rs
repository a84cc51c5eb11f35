//! prosody-v1: how energetic each segment sounds compared with its own speaker's usual voice,
//! and which words stand out from it.
//!
//! Per segment it measures five cues ([`Cue`]): loudness (median word level), pitch level and
//! pitch range (median and 10–90 % spread of the segment's YIN contour, in semitones), speaking
//! rate (estimated syllables per second) and brightness (median word spectral centroid, in
//! octaves). Each speaker's baseline is the median and MAD of the same quantities over all of
//! that speaker's words, voiced frames or segments; each segment's cues become z-scores
//! against it, and [`crate::scoring`] turns those into arousal, label, confidence and emphasis.

use std::collections::BTreeMap;

use ecg_audio::dsp::level::SILENCE_DBFS;
use ecg_audio::dsp::stats::{median, quantile};
use ecg_audio::dsp::yin::Yin;
use ecg_core::audio::{Audio, SAMPLE_RATE_HZ, TimeSpan};
use ecg_core::contract::{AnalysisResult, Emotion, Segment, SegmentWord};
use ecg_core::error::StageError;
use ecg_core::stages::EmotionAnalyzer;

use crate::scoring::{ArousalLabel, Cue, Cues, activation, emphasis, margin};
use crate::stats::Spread;
use crate::syllables::syllables;

/// `metadata.emotion_method` of this analyzer.
pub const PROSODY_METHOD: &str = "prosody-v1";

/// A speaker needs this many words for a baseline of their own (with fewer, the file's is used).
const MIN_WORDS: usize = 3;
/// ... and this many segments before their segments are compared with it: one segment compared
/// with a baseline made of itself alone says nothing.
const MIN_SEGMENTS: usize = 2;
/// Voiced 10 ms frames a segment needs for a pitch level (fewer are more likely octave errors
/// than a voice), and for a pitch range.
const MIN_PITCH_FRAMES: usize = 5;
const MIN_RANGE_FRAMES: usize = 10;
/// Shorter segments get no speaking rate: a word's timing error would dominate it.
const MIN_RATE_S: f64 = 0.3;
/// Confidence is scaled by this when a speaker's segments are judged against the whole file's
/// baseline: a naturally loud or high voice then looks excited.
const FALLBACK_CONFIDENCE: f64 = 0.5;

/// The smallest spread credited to a baseline, per cue and in its unit: well below the variation
/// of natural speech, so it only matters for synthetic or very monotonous voices, whose spread
/// would otherwise be near zero and make any small change look like an outburst.
fn min_spread(cue: Cue) -> f64 {
    match cue {
        Cue::Loudness => 1.5,     // dB
        Cue::PitchLevel => 1.0,   // semitones
        Cue::PitchRange => 1.0,   // semitones
        Cue::SpeakingRate => 0.5, // syllables per second
        Cue::Brightness => 0.1,   // octaves, about 7 %
    }
}

/// Emotion cues from prosody relative to each speaker's baseline. Deterministic: the same
/// audio and result always give the same annotation.
pub struct ProsodyEmotion {
    yin: Yin,
}

impl ProsodyEmotion {
    pub fn new() -> Self {
        Self {
            yin: Yin::new(SAMPLE_RATE_HZ),
        }
    }

    /// Measures every segment and builds the speaker and file baselines.
    pub(crate) fn measure(&self, audio: &Audio, result: &AnalysisResult) -> Measured {
        let segments: Vec<SegmentProsody> = result
            .segments
            .iter()
            .map(|s| self.segment(audio, s))
            .collect();
        let mut by_speaker: BTreeMap<&str, Vec<&SegmentProsody>> = BTreeMap::new();
        for (seg, measured) in result.segments.iter().zip(&segments) {
            by_speaker
                .entry(seg.speaker.speaker_id.as_str())
                .or_default()
                .push(measured);
        }
        let speakers = by_speaker
            .into_iter()
            .map(|(id, segs)| (id.to_owned(), Baseline::of(&segs)))
            .collect();
        let file = Baseline::of(&segments.iter().collect::<Vec<_>>());
        Measured {
            speaker_of: result
                .segments
                .iter()
                .map(|s| s.speaker.speaker_id.clone())
                .collect(),
            segments,
            speakers,
            file,
        }
    }

    fn segment(&self, audio: &Audio, segment: &Segment) -> SegmentProsody {
        let span = TimeSpan::new(segment.start_time, segment.end_time);
        let mut frames: Vec<f64> = self
            .yin
            .track(audio.slice(span))
            .into_iter()
            .filter_map(|f| f.f0_hz.map(semitones))
            .collect();
        frames.sort_by(f64::total_cmp);
        let words: Vec<WordProsody> = segment.words.iter().map(WordProsody::of).collect();
        let median_of = |pick: fn(&WordProsody) -> Option<f64>| {
            median(&mut words.iter().filter_map(pick).collect::<Vec<_>>())
        };

        let mut cues = Cues::default();
        cues[Cue::Loudness] = median_of(|w| w.loudness_db);
        cues[Cue::Brightness] = median_of(|w| w.brightness_oct);
        if frames.len() >= MIN_PITCH_FRAMES {
            cues[Cue::PitchLevel] = quantile(&frames, 0.5);
        }
        if frames.len() >= MIN_RANGE_FRAMES {
            cues[Cue::PitchRange] = quantile(&frames, 0.9)
                .zip(quantile(&frames, 0.1))
                .map(|(hi, lo)| hi - lo);
        }
        let syllables: usize = segment.words.iter().map(|w| syllables(&w.word)).sum();
        if span.duration_s() >= MIN_RATE_S && syllables > 0 {
            cues[Cue::SpeakingRate] = Some(syllables as f64 / span.duration_s());
        }
        SegmentProsody {
            cues,
            frames,
            words,
        }
    }
}

impl Default for ProsodyEmotion {
    fn default() -> Self {
        Self::new()
    }
}

impl EmotionAnalyzer for ProsodyEmotion {
    fn annotate(&self, audio: &Audio, result: &mut AnalysisResult) -> Result<(), StageError> {
        let measured = self.measure(audio, result);
        measured.write_emphasis(result);
        for (index, segment) in result.segments.iter_mut().enumerate() {
            segment.emotion = Some(measured.emotion(index));
        }
        result.metadata.emotion_method = Some(PROSODY_METHOD.to_owned());
        Ok(())
    }
}

/// F0 on a semitone scale (re 1 Hz): only differences matter, and a semitone is the same step
/// for a low and a high voice.
fn semitones(hz: f64) -> f64 {
    12.0 * hz.log2()
}

/// Results are published with three decimals: finer digits are noise, and round numbers keep
/// the JSON stable across platforms' last-bit differences.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A word's cues, from the acoustic features assembly measured on its samples.
struct WordProsody {
    loudness_db: Option<f64>,
    pitch_st: Option<f64>,
    brightness_oct: Option<f64>,
}

impl WordProsody {
    fn of(word: &SegmentWord) -> Self {
        let f = word.acoustic_features;
        Self {
            // Digital silence means the word's timing missed its sound, not a quiet word.
            loudness_db: (f.volume_db > SILENCE_DBFS).then_some(f.volume_db),
            pitch_st: (f.pitch_hz > 0.0).then(|| semitones(f.pitch_hz)),
            brightness_oct: (f.spectral_centroid > 0.0).then(|| f.spectral_centroid.log2()),
        }
    }
}

/// What one segment sounds like.
struct SegmentProsody {
    cues: Cues<Option<f64>>,
    /// Semitones of the voiced frames of the segment's pitch contour, ascending.
    frames: Vec<f64>,
    words: Vec<WordProsody>,
}

/// A speaker's (or the file's) usual voice.
struct Baseline {
    segments: usize,
    words: usize,
    spread: Cues<Option<Spread>>,
}

impl Baseline {
    /// Loudness and brightness over the words, pitch level over the voiced frames (a segment's
    /// pitch level is a median of frames too), pitch range and speaking rate over the segments.
    fn of(segments: &[&SegmentProsody]) -> Self {
        let words = || segments.iter().flat_map(|s| &s.words);
        let segment_cue = |cue: Cue| segments.iter().filter_map(|s| s.cues[cue]).collect();
        let robust = |cue: Cue, values: Vec<f64>, min_count: usize| {
            Spread::robust(values, min_count, min_spread(cue))
        };
        let mut spread = Cues::default();
        spread[Cue::Loudness] = robust(
            Cue::Loudness,
            words().filter_map(|w| w.loudness_db).collect(),
            MIN_WORDS,
        );
        spread[Cue::Brightness] = robust(
            Cue::Brightness,
            words().filter_map(|w| w.brightness_oct).collect(),
            MIN_WORDS,
        );
        spread[Cue::PitchLevel] = robust(
            Cue::PitchLevel,
            segments
                .iter()
                .flat_map(|s| s.frames.iter().copied())
                .collect(),
            MIN_PITCH_FRAMES,
        );
        for cue in [Cue::PitchRange, Cue::SpeakingRate] {
            spread[cue] = robust(cue, segment_cue(cue), MIN_SEGMENTS);
        }
        Self {
            segments: segments.len(),
            words: words().count(),
            spread,
        }
    }

    /// Enough speech to tell whether one of its words stands out.
    fn judges_words(&self) -> bool {
        self.words >= MIN_WORDS
    }

    /// Enough speech to tell whether one of its segments stands out.
    fn judges_segments(&self) -> bool {
        self.judges_words() && self.segments >= MIN_SEGMENTS
    }
}

/// Every segment's measurements with the baselines to judge them by.
pub(crate) struct Measured {
    segments: Vec<SegmentProsody>,
    speaker_of: Vec<String>,
    speakers: BTreeMap<String, Baseline>,
    file: Baseline,
}

impl Measured {
    /// The baseline for a segment: its speaker's when it qualifies, else the file's (`true`
    /// when so), else none.
    fn baseline(
        &self,
        index: usize,
        qualifies: fn(&Baseline) -> bool,
    ) -> Option<(&Baseline, bool)> {
        let own = self.speakers.get(&self.speaker_of[index]);
        match own.filter(|b| qualifies(b)) {
            Some(b) => Some((b, false)),
            None => qualifies(&self.file).then_some((&self.file, true)),
        }
    }

    /// The segment's emotion. Without any baseline (a file of one segment) it is neutral with
    /// confidence 0: there is nothing to compare with.
    pub fn emotion(&self, index: usize) -> Emotion {
        let Some((baseline, fell_back)) = self.baseline(index, Baseline::judges_segments) else {
            return Emotion {
                label: ArousalLabel::Neutral.as_str().to_owned(),
                arousal: Some(0.5),
                confidence: 0.0,
                probabilities: BTreeMap::new(),
            };
        };
        let segment = &self.segments[index];
        let mut z = Cues::default();
        for cue in Cue::ALL {
            z[cue] = baseline.spread[cue]
                .zip(segment.cues[cue])
                .map(|(s, v)| s.z(v));
        }
        let a = activation(&z);
        let trust = if fell_back { FALLBACK_CONFIDENCE } else { 1.0 };
        Emotion {
            label: ArousalLabel::of(a.arousal).as_str().to_owned(),
            arousal: Some(round3(a.arousal)),
            confidence: round3(margin(a.arousal) * a.coverage * trust),
            probabilities: BTreeMap::new(),
        }
    }

    /// Sets every word's emphasis: 0 where there is no baseline to stand out from.
    pub fn write_emphasis(&self, result: &mut AnalysisResult) {
        for (index, segment) in result.segments.iter_mut().enumerate() {
            let baseline = self.baseline(index, Baseline::judges_words).map(|(b, _)| b);
            for (word, measured) in segment.words.iter_mut().zip(&self.segments[index].words) {
                let z = |cue: Cue, value: Option<f64>| {
                    baseline
                        .and_then(|b| b.spread[cue])
                        .zip(value)
                        .map(|(s, v)| s.z(v))
                };
                word.emphasis = Some(round3(emphasis(
                    z(Cue::Loudness, measured.loudness_db),
                    z(Cue::PitchLevel, measured.pitch_st),
                )));
            }
        }
    }
}
