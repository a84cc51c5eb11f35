//! Subtitles from segments: SubRip (SRT) and WebVTT.

use std::fmt::Write;

use crate::contract::AnalysisResult;

/// Which subtitle format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubtitleFormat {
    Srt,
    Vtt,
}

/// Renders one cue per segment; with `label_speakers` each cue names its speaker.
pub fn render(result: &AnalysisResult, format: SubtitleFormat, label_speakers: bool) -> String {
    let mut out = String::new();
    if format == SubtitleFormat::Vtt {
        out.push_str("WEBVTT\n\n");
    }
    let cues = result
        .segments
        .iter()
        .filter(|s| !s.text.is_empty() && s.end_time > s.start_time);
    for (index, seg) in cues.enumerate() {
        let (start, end) = (
            timestamp(seg.start_time, format),
            timestamp(seg.end_time, format),
        );
        // A blank line ends a cue in both formats, and "-->" would start a new timing line in VTT.
        let text = seg
            .text
            .replace("-->", "→")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        let speaker = &seg.speaker.speaker_id;
        match format {
            SubtitleFormat::Srt => {
                let _ = writeln!(out, "{}\n{start} --> {end}", index + 1);
                if label_speakers {
                    let _ = write!(out, "[{speaker}] ");
                }
            }
            SubtitleFormat::Vtt => {
                let _ = writeln!(out, "{start} --> {end}");
                if label_speakers {
                    let _ = write!(out, "<v {speaker}>");
                }
            }
        }
        let _ = writeln!(out, "{text}\n");
    }
    out
}

/// `HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (VTT).
fn timestamp(seconds: f64, format: SubtitleFormat) -> String {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to >= 0, rounded"
    )]
    let total_ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (
        total_ms / 3_600_000,
        total_ms / 60_000 % 60,
        total_ms / 1000 % 60,
        total_ms % 1000,
    );
    let sep = if format == SubtitleFormat::Srt {
        ','
    } else {
        '.'
    };
    format!("{h:02}:{m:02}:{s:02}{sep}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{ResultMetadata, Segment, SpeakerRef};
    use std::collections::BTreeMap;

    fn result() -> AnalysisResult {
        let seg = |start_time, end_time, text: &str, who: &str| Segment {
            start_time,
            end_time,
            text: text.into(),
            speaker: SpeakerRef {
                speaker_id: who.into(),
            },
            words: vec![],
            emotion: None,
        };
        AnalysisResult {
            segments: vec![
                seg(1.5, 3.2, "Hello there.", "SPEAKER_00"),
                seg(3661.0, 3662.25, "Bye --> now", "SPEAKER_01"),
            ],
            word_segments: vec![],
            speakers: BTreeMap::new(),
            text: String::new(),
            language: "en".into(),
            duration: 3700.0,
            metadata: ResultMetadata {
                model_version: "m".into(),
                processing_time: 0.0,
                unique_speakers: 2,
                total_segments: 2,
                language_requested: "en".into(),
                language_detected: "en".into(),
                processing_mode: "targeted".into(),
                processed_at: None,
                speech_detected: None,
                speech_duration: None,
                emotion_method: None,
            },
        }
    }

    #[test]
    fn srt_has_numbered_cues_with_comma_millis() {
        let srt = render(&result(), SubtitleFormat::Srt, false);
        assert_eq!(
            srt,
            "1\n00:00:01,500 --> 00:00:03,200\nHello there.\n\n2\n01:01:01,000 --> 01:01:02,250\nBye → now\n\n"
        );
    }

    #[test]
    fn vtt_has_a_header_voice_tags_and_dot_millis() {
        let vtt = render(&result(), SubtitleFormat::Vtt, true);
        assert!(vtt.starts_with(
            "WEBVTT\n\n00:00:01.500 --> 00:00:03.200\n<v SPEAKER_00>Hello there.\n\n"
        ));
        assert!(!vtt.contains("Bye -->"));
    }
}
