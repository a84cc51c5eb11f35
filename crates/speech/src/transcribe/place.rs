//! A decoded window's words → words in the audio's time: segments screened for hallucinations,
//! their words merged, each word put on a piece of the window and mapped back to its source.

use ecg_core::audio::TimeSpan;
use ecg_core::stages::TimedWord;

use super::decode::Decoded;
use super::guards;
use super::segments::Placed;
use super::windows::Window;
use super::words::{self, Word};

/// Screens a window's segments, merges their words and maps them to the audio's time.
pub(super) fn place_words(
    window: &Window,
    decoded: Vec<Decoded>,
    spaced: bool,
    out: &mut Vec<Placed>,
) {
    let kept = kept_words(window, decoded, spaced);
    let spans: Vec<TimeSpan> = kept
        .iter()
        .map(|(w, _)| TimeSpan::new(w.start_s, w.end_s))
        .collect();
    let pause_before: Vec<bool> = (0..kept.len())
        .map(|i| i > 0 && ends_clause(&kept[i - 1].0.text))
        .collect();
    let pieces = window.assign(&spans, &pause_before);
    let placed = fit(window, &kept, &spans, &pieces);
    for ((word, opens), (span, piece)) in kept.into_iter().zip(placed.into_iter().zip(pieces)) {
        let source = window.to_source(piece, span);
        out.push(Placed {
            word: TimedWord {
                text: word.text,
                start_s: source.start_s,
                end_s: source.end_s,
                confidence: word.confidence,
            },
            region: window.pieces[piece].source,
            opens_decoded_segment: opens,
        });
    }
}

/// The words of the segments the guards keep, each with whether it opens its segment, less
/// any loop Whisper fell into.
fn kept_words(window: &Window, decoded: Vec<Decoded>, spaced: bool) -> Vec<(Word, bool)> {
    let mut kept: Vec<(Word, bool)> = Vec::new();
    for segment in decoded {
        let mut words = words::words_from_tokens(&segment.tokens, spaced);
        words::spread_collapsed(&mut words);
        if words.is_empty() || rejected(window, &segment, &words) {
            continue;
        }
        kept.extend(words.into_iter().enumerate().map(|(i, w)| (w, i == 0)));
    }
    guards::drop_loops(&mut kept, |(w, _)| guards::normalise(&w.text));
    kept
}

/// Whether the guards take a segment's words, not empty, for a hallucination.
fn rejected(window: &Window, segment: &Decoded, words: &[Word]) -> bool {
    let span = TimeSpan::new(words[0].start_s, words[words.len() - 1].end_s);
    let text: String = words.iter().map(|w| w.text.as_str()).collect();
    let speech_share = if span.duration_s() > 0.0 {
        window.speech_overlap_s(span) / span.duration_s()
    } else {
        1.0
    };
    let candidate = guards::Candidate {
        text: &text,
        words: words.len(),
        no_speech_prob: segment.no_speech_prob,
        avg_logprob: segment.avg_logprob,
        confidence: words.iter().map(|w| w.confidence).sum::<f64>() / words.len() as f64,
        speech_share,
    };
    let Some(reason) = guards::rejection(&candidate) else {
        return false;
    };
    tracing::debug!(%text, reason, "dropped a hallucinated segment");
    true
}

/// Each word's span on its piece of the window, in window time.
fn fit(
    window: &Window,
    kept: &[(Word, bool)],
    spans: &[TimeSpan],
    pieces: &[usize],
) -> Vec<TimeSpan> {
    let mut placed: Vec<TimeSpan> = Vec::with_capacity(kept.len());
    for i in 0..kept.len() {
        let piece = pieces[i];
        let before = i.checked_sub(1).filter(|&j| pieces[j] == piece);
        // Between the word before, as placed, and the word after, as timed, in the same piece.
        let room = TimeSpan::new(
            before.map_or(f64::NEG_INFINITY, |j| placed[j].end_s),
            spans
                .get(i + 1)
                .filter(|_| pieces.get(i + 1) == Some(&piece))
                .map_or(f64::INFINITY, |next| next.start_s),
        );
        let (span, voiced) = window.place(piece, spans[i], room);
        let span = match before {
            // No voice of its own: the word before took its sound, so the two share it.
            Some(j) if !voiced => {
                let (first, second) = words::share(placed[j], &kept[j].0, &kept[i].0);
                placed[j] = first;
                second
            }
            _ => span,
        };
        placed.push(span);
    }
    placed
}

/// Where speakers pause, Whisper writes punctuation. (Its own segment boundaries and times are
/// no guide: they drift with the timing they mark.)
fn ends_clause(text: &str) -> bool {
    text.trim_end()
        .ends_with(['.', ',', '?', '!', ';', ':', '。', '、', '，', '？', '！'])
}
