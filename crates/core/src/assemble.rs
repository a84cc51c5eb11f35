//! Assembly: recognised words + speaker turns + acoustic features → the contract's `result`.

use std::collections::BTreeMap;

use crate::audio::{Audio, TimeSpan};
use crate::contract::{
    AcousticFeatures, AnalysisResult, ResultMetadata, Segment, SegmentWord, SpeakerRef,
    SpeakerStats, WordSegment,
};
use crate::job::round_ms;
use crate::request::Language;
use crate::stages::{FeatureExtractor, SpeakerTurn, TimedWord, Transcript};

/// Everything assembly reads.
pub struct AssemblyInput<'a> {
    pub audio: &'a Audio,
    pub speech: &'a [TimeSpan],
    pub turns: &'a [SpeakerTurn],
    pub transcript: &'a Transcript,
    pub features: &'a dyn FeatureExtractor,
    pub language_requested: Language,
    pub model_version: String,
}

/// Builds the result; `processing_time` and `processed_at` are filled in by the caller at the end.
pub fn assemble(input: &AssemblyInput<'_>) -> AnalysisResult {
    let mut ids = SpeakerIds::default();
    let mut segments = Vec::new();
    for seg in &input.transcript.segments {
        // A recognised segment splits wherever the speaker changes.
        let mut run: Vec<(&TimedWord, usize)> = Vec::new();
        for word in &seg.words {
            let speaker = speaker_of(input.turns, TimeSpan::new(word.start_s, word.end_s));
            if run.last().is_some_and(|&(_, s)| s != speaker) {
                segments.push(build_segment(&run, &mut ids, input));
                run.clear();
            }
            run.push((word, speaker));
        }
        if !run.is_empty() {
            segments.push(build_segment(&run, &mut ids, input));
        }
    }

    let mut speakers: BTreeMap<String, SpeakerStats> = BTreeMap::new();
    for seg in &segments {
        speakers
            .entry(seg.speaker.speaker_id.clone())
            .or_insert(SpeakerStats {
                total_duration: 0.0,
                segment_count: 0,
            })
            .segment_count += 1;
    }
    for turn in input.turns {
        if let Some(id) = ids.known(turn.speaker)
            && let Some(stats) = speakers.get_mut(&id)
        {
            stats.total_duration += turn.span.duration_s();
        }
    }
    for stats in speakers.values_mut() {
        stats.total_duration = round_ms(stats.total_duration);
    }

    let word_segments = segments
        .iter()
        .flat_map(|seg| {
            seg.words.iter().map(|w| WordSegment {
                word: w.word.clone(),
                start_time: w.start,
                end_time: w.end,
                speaker_id: seg.speaker.speaker_id.clone(),
                confidence: w.confidence.unwrap_or_default(),
            })
        })
        .collect();
    let separator = if matches!(input.transcript.language.as_str(), "ja" | "zh") {
        ""
    } else {
        " "
    };
    let text = segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(separator);
    let speech_duration: f64 = input.speech.iter().map(|s| s.duration_s()).sum();
    let language_detected = input.transcript.language.clone();
    AnalysisResult {
        metadata: ResultMetadata {
            model_version: input.model_version.clone(),
            processing_time: 0.0,
            unique_speakers: speakers.len(),
            total_segments: segments.len(),
            language_requested: input.language_requested.as_str().to_owned(),
            language_detected: language_detected.clone(),
            processing_mode: input.language_requested.processing_mode().to_owned(),
            processed_at: None,
            speech_detected: Some(!input.speech.is_empty()),
            speech_duration: Some(round_ms(speech_duration)),
            emotion_method: None,
        },
        segments,
        word_segments,
        speakers,
        text,
        language: language_detected,
        duration: round_ms(input.audio.duration_s()),
    }
}

/// Speaker ids `SPEAKER_00`, `SPEAKER_01`, … in order of first appearance.
#[derive(Default)]
struct SpeakerIds {
    seen: Vec<usize>,
}

impl SpeakerIds {
    fn id(&mut self, speaker: usize) -> String {
        let idx = match self.seen.iter().position(|&s| s == speaker) {
            Some(idx) => idx,
            None => {
                self.seen.push(speaker);
                self.seen.len() - 1
            }
        };
        format!("SPEAKER_{idx:02}")
    }

    fn known(&self, speaker: usize) -> Option<String> {
        self.seen
            .iter()
            .position(|&s| s == speaker)
            .map(|idx| format!("SPEAKER_{idx:02}"))
    }
}

/// The speaker of the turn that overlaps the word most, else of the nearest turn.
fn speaker_of(turns: &[SpeakerTurn], word: TimeSpan) -> usize {
    let overlapping = turns
        .iter()
        .map(|t| (t.span.overlap_s(word), t.speaker))
        .filter(|&(overlap, _)| overlap > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((_, speaker)) = overlapping {
        return speaker;
    }
    turns
        .iter()
        .min_by(|a, b| a.span.gap_s(word).total_cmp(&b.span.gap_s(word)))
        .map_or(0, |t| t.speaker)
}

fn build_segment(
    run: &[(&TimedWord, usize)],
    ids: &mut SpeakerIds,
    input: &AssemblyInput<'_>,
) -> Segment {
    let speaker_id = ids.id(run[0].1);
    let words: Vec<SegmentWord> = run
        .iter()
        .map(|(w, _)| {
            let span = TimeSpan::new(w.start_s, w.end_s);
            SegmentWord {
                word: w.text.trim().to_owned(),
                start: round_ms(span.start_s),
                end: round_ms(span.end_s),
                confidence: Some(round_ms(w.confidence)),
                acoustic_features: rounded(input.features.measure(input.audio.slice(span))),
                emphasis: None,
            }
        })
        .collect();
    let text: String = run.iter().map(|(w, _)| w.text.as_str()).collect();
    Segment {
        start_time: words.first().map_or(0.0, |w| w.start),
        end_time: words.last().map_or(0.0, |w| w.end),
        text: text.trim().to_owned(),
        speaker: SpeakerRef { speaker_id },
        words,
        emotion: None,
    }
}

fn rounded(f: AcousticFeatures) -> AcousticFeatures {
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    AcousticFeatures {
        volume_db: r2(f.volume_db),
        pitch_hz: r2(f.pitch_hz),
        spectral_centroid: r2(f.spectral_centroid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::TranscriptSegment;

    /// Reports each word's length in samples as its "volume", so the test can see the slicing.
    struct SampleCount;
    impl FeatureExtractor for SampleCount {
        fn measure(&self, samples: &[f32]) -> AcousticFeatures {
            AcousticFeatures {
                volume_db: samples.len() as f64,
                pitch_hz: 0.0,
                spectral_centroid: 0.0,
            }
        }
    }

    fn word(text: &str, start_s: f64, end_s: f64) -> TimedWord {
        TimedWord {
            text: text.to_owned(),
            start_s,
            end_s,
            confidence: 0.9,
        }
    }

    #[test]
    fn splits_segments_at_speaker_changes_and_numbers_speakers_by_first_appearance() {
        let audio = Audio::new(vec![0.0; 16_000 * 10]);
        let speech = [TimeSpan::new(0.0, 2.0), TimeSpan::new(2.5, 5.0)];
        let turns = [
            SpeakerTurn {
                span: speech[0],
                speaker: 7,
            },
            SpeakerTurn {
                span: speech[1],
                speaker: 3,
            },
        ];
        let transcript = Transcript {
            language: "en".into(),
            segments: vec![TranscriptSegment {
                start_s: 0.0,
                end_s: 5.0,
                words: vec![
                    word(" Hello", 0.1, 0.6),
                    word(" there.", 0.7, 1.5),
                    word(" Hi!", 2.6, 3.0),
                ],
            }],
        };
        let result = assemble(&AssemblyInput {
            audio: &audio,
            speech: &speech,
            turns: &turns,
            transcript: &transcript,
            features: &SampleCount,
            language_requested: Language::Auto,
            model_version: "ggml-base".into(),
        });
        assert_eq!(result.segments.len(), 2);
        assert_eq!(result.segments[0].text, "Hello there.");
        assert_eq!(result.segments[0].speaker.speaker_id, "SPEAKER_00");
        assert_eq!(result.segments[1].speaker.speaker_id, "SPEAKER_01");
        assert_eq!(
            result.segments[0].words[0].acoustic_features.volume_db,
            8000.0
        );
        assert_eq!(result.text, "Hello there. Hi!");
        assert_eq!(result.speakers["SPEAKER_00"].total_duration, 2.0);
        assert_eq!(result.speakers["SPEAKER_01"].total_duration, 2.5);
        assert_eq!(result.word_segments.len(), 3);
        assert_eq!(result.metadata.processing_mode, "auto-detect");
        assert_eq!(result.metadata.unique_speakers, 2);
        assert_eq!(result.duration, 10.0);
    }

    #[test]
    fn no_speech_gives_an_empty_but_valid_result() {
        let audio = Audio::new(vec![0.0; 16_000]);
        let transcript = Transcript {
            language: "en".into(),
            segments: vec![],
        };
        let result = assemble(&AssemblyInput {
            audio: &audio,
            speech: &[],
            turns: &[],
            transcript: &transcript,
            features: &SampleCount,
            language_requested: Language::En,
            model_version: "ggml-base".into(),
        });
        assert!(result.segments.is_empty() && result.speakers.is_empty());
        assert_eq!(result.metadata.speech_detected, Some(false));
        assert_eq!(result.metadata.processing_mode, "targeted");
    }
}
