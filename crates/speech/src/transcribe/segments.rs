//! Words → sentence-like segments that never span a long silence.

use ecg_core::audio::TimeSpan;
use ecg_core::stages::{TimedWord, TranscriptSegment};

/// A pause longer than this ends a segment, whatever the punctuation says.
const MAX_PAUSE_S: f64 = 1.0;
/// Past this length a segment also ends where Whisper ended one of its own segments.
const LONG_SEGMENT_S: f64 = 20.0;

/// A recognised word placed in the original audio.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Placed {
    pub word: TimedWord,
    /// The speech region the word was heard in.
    pub region: TimeSpan,
    /// The word opened one of Whisper's own segments.
    pub opens_decoded_segment: bool,
}

/// Abbreviations whose full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "jr.", "sr.", "vs.", "etc.", "e.g.", "i.e.",
];

fn ends_sentence(text: &str) -> bool {
    let text = text.trim();
    let bare = text.trim_end_matches(['"', '\'', '”', '’', ')', '」', '』']);
    let lower = bare.to_lowercase();
    bare.ends_with(['.', '?', '!', '。', '？', '！', '…'])
        && !ABBREVIATIONS.iter().any(|a| lower == *a)
}

/// A sentence starts with anything but a lower-case letter (capitals, digits, Hangul, kana, Han).
fn starts_sentence(text: &str) -> bool {
    text.trim_start()
        .chars()
        .next()
        .is_some_and(|c| !c.is_lowercase())
}

fn breaks_between(segment_start_s: f64, prev: &Placed, next: &Placed) -> bool {
    let pause = next.word.start_s - prev.word.end_s;
    pause > MAX_PAUSE_S
        || (prev.region != next.region && prev.region.gap_s(next.region) > MAX_PAUSE_S)
        || (ends_sentence(&prev.word.text) && starts_sentence(&next.word.text))
        || (next.opens_decoded_segment && next.word.start_s - segment_start_s > LONG_SEGMENT_S)
}

fn close(words: Vec<TimedWord>, segments: &mut Vec<TranscriptSegment>) {
    if let (Some(first), Some(last)) = (words.first(), words.last()) {
        segments.push(TranscriptSegment {
            start_s: first.start_s,
            end_s: last.end_s,
            words,
        });
    }
}

/// Splits words, in time order, into segments.
pub(super) fn segment(placed: &[Placed]) -> Vec<TranscriptSegment> {
    let mut segments = Vec::new();
    let mut current: Vec<TimedWord> = Vec::new();
    for (i, p) in placed.iter().enumerate() {
        if let (Some(prev), Some(first)) = (i.checked_sub(1).map(|j| &placed[j]), current.first())
            && breaks_between(first.start_s, prev, p)
        {
            close(std::mem::take(&mut current), &mut segments);
        }
        current.push(p.word.clone());
    }
    close(current, &mut segments);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(text: &str, start_s: f64, region: TimeSpan) -> Placed {
        Placed {
            word: TimedWord {
                text: text.into(),
                start_s,
                end_s: start_s + 0.3,
                confidence: 0.9,
            },
            region,
            opens_decoded_segment: false,
        }
    }

    fn texts(segments: &[TranscriptSegment]) -> Vec<String> {
        segments
            .iter()
            .map(|s| s.words.iter().map(|w| w.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn sentences_pauses_and_region_gaps_split() {
        let a = TimeSpan::new(0.0, 10.0);
        let b = TimeSpan::new(12.0, 20.0);
        let words = [
            placed(" Dr.", 0.0, a),
            placed(" Smith", 0.4, a),
            placed(" came.", 0.8, a),
            placed(" It", 1.2, a),
            placed(" rained", 1.6, a),
            placed(" e.g.", 2.0, a),
            placed(" today.", 2.4, a),
            placed(" then", 2.8, a),
            placed(" later", 5.0, a),
            placed(" again", 12.0, b),
        ];
        let segments = segment(&words);
        assert_eq!(
            texts(&segments),
            [
                " Dr. Smith came.",
                " It rained e.g. today. then",
                " later",
                " again"
            ]
        );
        assert!((segments[0].start_s - 0.0).abs() < 1e-9 && (segments[0].end_s - 1.1).abs() < 1e-9);
    }

    #[test]
    fn unspaced_sentences_split_after_full_stops() {
        let r = TimeSpan::new(0.0, 10.0);
        let words = [
            placed("今日", 0.0, r),
            placed("は。", 0.4, r),
            placed("明日", 0.8, r),
            placed("？", 1.2, r),
        ];
        assert_eq!(texts(&segment(&words)), ["今日は。", "明日？"]);
    }
}
