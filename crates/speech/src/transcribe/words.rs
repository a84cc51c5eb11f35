//! Text tokens → words.
//!
//! Whisper's byte-level BPE tokens may end in the middle of a UTF-8 character (common in Korean,
//! Japanese and Chinese), so bytes are gathered until they decode. In languages written with
//! spaces a token that starts with a space starts a word; in Japanese and Chinese each decoded
//! token is a word of its own, except that runs of Latin letters or digits stay together.
//! Punctuation joins the word it belongs to: opening marks the next one, the rest the one before.

use ecg_core::audio::TimeSpan;

/// A text token with its timing, in seconds from the window start.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    pub bytes: Vec<u8>,
    pub probability: f32,
    pub start_s: f64,
    pub end_s: f64,
}

/// A word in window time.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Word {
    pub text: String,
    pub start_s: f64,
    pub end_s: f64,
    /// Mean probability of the word's tokens.
    pub confidence: f64,
}

/// Languages whose script does not separate words with spaces.
pub(super) fn uses_spaces(language: &str) -> bool {
    !matches!(
        language,
        "ja" | "zh" | "yue" | "th" | "lo" | "my" | "km" | "bo"
    )
}

/// Punctuation that belongs to the word after it: brackets, opening quotes, ¿ ¡.
fn opens(unit: &str) -> bool {
    let mark = unit.trim_start();
    mark.starts_with([
        '(', '[', '{', '«', '“', '‘', '「', '『', '【', '《', '〈', '（', '¿', '¡',
    ]) || (unit.starts_with(' ') && matches!(mark, "\"" | "'"))
}

/// Letters, digits and symbols make a word; punctuation alone does not.
fn has_content(text: &str) -> bool {
    text.chars().any(|c| {
        c.is_alphanumeric()
            || matches!(
                c,
                '$' | '%' | '&' | '#' | '@' | '+' | '=' | '€' | '£' | '¥' | '₩' | '°'
            )
    })
}

/// Gathers the tokens of one word.
#[derive(Default)]
struct Builder {
    text: String,
    start_s: f64,
    end_s: f64,
    probabilities: Vec<f32>,
}

impl Builder {
    fn push(&mut self, text: &str, tokens: &[&Token]) {
        for t in tokens {
            if self.probabilities.is_empty() {
                self.start_s = t.start_s;
            }
            self.end_s = self.end_s.max(t.end_s);
            self.probabilities.push(t.probability);
        }
        self.text.push_str(text);
    }

    fn finish(&mut self, words: &mut Vec<Word>) {
        let b = std::mem::take(self);
        let confidence = b.probabilities.iter().map(|&p| f64::from(p)).sum::<f64>()
            / b.probabilities.len().max(1) as f64;
        words.push(Word {
            text: b.text,
            start_s: b.start_s,
            end_s: b.end_s.max(b.start_s),
            confidence: confidence.clamp(0.0, 1.0),
        });
    }
}

/// Whether a decoded unit begins a new word after `word`, which has content.
fn starts_word(word: &str, unit: &str, spaced: bool) -> bool {
    if unit.starts_with(char::is_whitespace) {
        return true;
    }
    if spaced {
        return false;
    }
    // Without spaces, Latin words and numbers are still written as runs: "iPhone", "2024".
    let joins = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !(joins(word.chars().next_back()) && joins(unit.chars().next()))
}

/// Merges the text tokens of one decoded segment into words.
pub(super) fn words_from_tokens(tokens: &[Token], spaced: bool) -> Vec<Word> {
    let mut words = Vec::new();
    let mut word = Builder::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut pending_tokens: Vec<&Token> = Vec::new();
    for token in tokens {
        pending.extend_from_slice(&token.bytes);
        pending_tokens.push(token);
        let unit = match std::str::from_utf8(&pending) {
            Ok(unit) => unit.to_owned(),
            // Ends inside a character: the next token completes it.
            Err(e) if e.error_len().is_none() => continue,
            // Can never decode: keep the part that does.
            Err(_) => String::from_utf8_lossy(&pending).replace('\u{FFFD}', ""),
        };
        let trailing_mark = !has_content(&unit) && !opens(&unit);
        if has_content(&word.text)
            && !trailing_mark
            && (opens(&unit) || starts_word(&word.text, &unit, spaced))
        {
            word.finish(&mut words);
        }
        word.push(&unit, &pending_tokens);
        pending.clear();
        pending_tokens.clear();
    }
    // Bytes left pending end inside a character: they decode to nothing worth showing.
    if has_content(&word.text) {
        word.finish(&mut words);
    } else if let Some(last) = words.last_mut() {
        // Punctuation after the last word, e.g. a closing quote after a space.
        last.text.push_str(word.text.trim_start());
    }
    words
}

/// Shorter than this, a word was given no time of its own.
const COLLAPSED_S: f64 = 0.02;

impl Word {
    /// Letters, by which words share time when their own is unknown; at least one.
    pub(super) fn weight(&self) -> f64 {
        self.text
            .chars()
            .filter(|c| c.is_alphanumeric())
            .count()
            .max(1) as f64
    }
}

/// Splits a span between two words by their weights.
pub(super) fn share(span: TimeSpan, first: &Word, second: &Word) -> (TimeSpan, TimeSpan) {
    let cut =
        span.start_s + span.duration_s() * first.weight() / (first.weight() + second.weight());
    (
        TimeSpan::new(span.start_s, cut),
        TimeSpan::new(cut, span.end_s),
    )
}

/// Gives words that were timed as instants a share of their neighbour's time. Token timings
/// sometimes put two words at the same moment; splitting the pair's span by letters is a
/// better guess than a word without duration.
pub(super) fn spread_collapsed(words: &mut [Word]) {
    let collapsed = |w: &Word| w.end_s - w.start_s < COLLAPSED_S;
    let mut i = 0;
    while i < words.len() {
        if !collapsed(&words[i]) {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < words.len() && collapsed(&words[end]) {
            end += 1;
        }
        // Share the word before the run, or after it when the run opens the segment.
        let run = if i > 0 {
            i - 1..end
        } else if end < words.len() {
            0..end + 1
        } else {
            return;
        };
        let group = &mut words[run.clone()];
        let start_s = group[0].start_s;
        let end_s = group.iter().fold(start_s, |m, w| m.max(w.end_s));
        let total: f64 = group.iter().map(Word::weight).sum();
        let mut at = start_s;
        for w in group.iter_mut() {
            let share = (end_s - start_s) * w.weight() / total;
            w.start_s = at;
            w.end_s = at + share;
            at += share;
        }
        i = run.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of one token per part, each token 0.1 s long and starting where the previous
    /// one ends.
    fn words_of(parts: &[&[u8]], spaced: bool) -> Vec<Word> {
        let tokens: Vec<Token> = parts
            .iter()
            .zip(0..)
            .map(|(bytes, i)| Token {
                bytes: bytes.to_vec(),
                probability: 0.5,
                start_s: f64::from(i) * 0.1,
                end_s: f64::from(i + 1) * 0.1,
            })
            .collect();
        words_from_tokens(&tokens, spaced)
    }

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|w| w.text.as_str()).collect()
    }

    #[test]
    fn spaces_start_words_and_punctuation_stays_attached() {
        let words = words_of(
            &[
                b" Hello", b",", b" wor", b"ld", b" 3", b".", b"5", b" $", b"!",
            ],
            true,
        );
        assert_eq!(texts(&words), [" Hello,", " world", " 3.5", " $!"]);
        assert!((words[1].start_s - 0.2).abs() < 1e-9 && (words[1].end_s - 0.4).abs() < 1e-9);
    }

    #[test]
    fn opening_marks_join_the_next_word_and_others_the_previous() {
        let words = words_of(
            &[
                b" He", b" said", b" \"", b"yes", b" .", b" (", b"really", b")", b" \"",
            ],
            true,
        );
        assert_eq!(texts(&words), [" He", " said", " \"yes .", " (really)\""]);
        assert!(words_of(&[b" ..."], true).is_empty());
    }

    #[test]
    fn split_utf8_is_gathered_before_decoding() {
        // "한국" split across tokens mid-character, then " 말".
        let han = "한국".as_bytes();
        let mal = " 말".as_bytes();
        let words = words_of(&[&han[..2], &han[2..4], &han[4..], mal], true);
        assert_eq!(texts(&words), ["한국", " 말"]);
        assert!((words[0].end_s - 0.3).abs() < 1e-9);
        assert!((words[0].confidence - 0.5).abs() < 1e-9);
    }

    #[test]
    fn unspaced_languages_split_per_token_but_keep_latin_runs() {
        let words = words_of(
            &[
                "東京".as_bytes(),
                "は".as_bytes(),
                b"i",
                b"Phone",
                "。".as_bytes(),
                "「".as_bytes(),
                "今日".as_bytes(),
                "」".as_bytes(),
            ],
            false,
        );
        assert_eq!(texts(&words), ["東京", "は", "iPhone。", "「今日」"]);
    }

    #[test]
    fn instants_get_a_share_of_their_neighbour() {
        let word = |text: &str, start_s, end_s| Word {
            text: text.into(),
            start_s,
            end_s,
            confidence: 1.0,
        };
        let mut words = [
            word(" the", 1.0, 1.9),
            word(" museum", 1.9, 1.9),
            word(" is", 2.0, 2.2),
            word(" open.", 2.6, 2.6),
        ];
        spread_collapsed(&mut words);
        let times: Vec<(f64, f64)> = words.iter().map(|w| (w.start_s, w.end_s)).collect();
        let expected = [(1.0, 1.3), (1.3, 1.9), (2.0, 2.2), (2.2, 2.6)];
        for (got, want) in times.iter().zip(expected) {
            assert!(
                (got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9,
                "{times:?}"
            );
        }
        let (a, b) = share(
            TimeSpan::new(1.0, 2.1),
            &word(" for", 0.0, 0.0),
            &word(" children.", 0.0, 0.0),
        );
        assert!((a.end_s - 1.3).abs() < 1e-9 && (b.start_s - 1.3).abs() < 1e-9 && b.end_s == 2.1);
        let mut first = [word(" Oh", 1.0, 1.0), word(" no", 1.0, 1.4)];
        spread_collapsed(&mut first);
        assert!((first[0].end_s - 1.2).abs() < 1e-9 && (first[1].start_s - 1.2).abs() < 1e-9);
    }

    #[test]
    fn a_dangling_partial_character_is_dropped() {
        let words = words_of(&[b" ok", &[0xED, 0x95]], true);
        assert_eq!(texts(&words), [" ok"]);
        let words = words_of(&[&[0xFF, b'a'], b" b"], true);
        assert_eq!(texts(&words), ["a", " b"]);
    }
}
