//! Hallucination guards: Whisper invents text over silence, music and noise, and can loop.
//! Each rule drops what the model produced without hearing it.

use std::io::Write;

use flate2::Compression;
use flate2::write::ZlibEncoder;

/// Whisper's no-speech rule: the model thinks the window is silent *and* is unsure of its text.
const NO_SPEECH_PROB: f32 = 0.6;
const MIN_AVG_LOGPROB: f32 = -1.0;
/// Text that compresses better than this is a loop (Whisper's `compression_ratio_threshold`).
const MAX_COMPRESSION_RATIO: f64 = 2.4;
/// Below this share of its time on speech, a segment was heard in a gap or in padding.
const MIN_SPEECH_SHARE: f64 = 0.2;
/// A stock phrase is believed only above this mean confidence and below this no-speech
/// probability: over music Whisper says them with confidence, but suspects there is no speech.
const STOCK_PHRASE_MIN_CONFIDENCE: f64 = 0.6;
const STOCK_PHRASE_MAX_NO_SPEECH: f32 = 0.3;
/// One or two words below this mean confidence are a guess, typically over noise (" you").
const FRAGMENT_MIN_CONFIDENCE: f64 = 0.5;
const FRAGMENT_MAX_WORDS: usize = 2;
/// Characters a stock phrase may carry besides itself: "MBC 뉴스 홍길동입니다".
const STOCK_PHRASE_SLACK: usize = 12;

/// Phrases Whisper learnt from subtitle credits and says over silence, normalised as by [`normalise`].
const STOCK_PHRASES: &[&str] = &[
    "시청해주셔서감사합니다",
    "시청해주셔서고맙습니다",
    "구독과좋아요",
    "mbc뉴스",
    "kbs뉴스",
    "sbs뉴스",
    "ytn뉴스",
    "thankyouforwatching",
    "thanksforwatching",
    "pleasesubscribe",
    "subtitlesbytheamaraorgcommunity",
    "ご視聴ありがとうございました",
    "チャンネル登録",
    "请不吝点赞订阅转发打赏支持明镜与点点栏目",
    "字幕由amaraorg社区提供",
    "谢谢观看",
];

/// Lower-case letters and digits only: what stays of a text when spacing and punctuation go.
pub(super) fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Bytes of text per byte of its zlib stream.
pub(super) fn compression_ratio(text: &str) -> f64 {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let compressed = encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_or(0, |c| c.len());
    text.len() as f64 / compressed.max(1) as f64
}

fn is_stock_phrase(text: &str) -> bool {
    let text = normalise(text);
    STOCK_PHRASES.iter().any(|phrase| {
        text.contains(phrase) && text.chars().count() <= phrase.chars().count() + STOCK_PHRASE_SLACK
    })
}

/// Sound descriptions from subtitles: "[Music]", "(applause)", "【音楽】", "♪ ♪".
fn is_sound_description(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(['[', '(', '【', '（', '♪', '*']) && t.ends_with([']', ')', '】', '）', '♪', '*'])
}

/// What the guards read of one decoded segment.
pub(super) struct Candidate<'a> {
    pub text: &'a str,
    pub words: usize,
    pub no_speech_prob: f32,
    pub avg_logprob: f32,
    /// Mean token probability.
    pub confidence: f64,
    /// Share of the segment's time that lies on speech regions, in [0, 1].
    pub speech_share: f64,
}

/// Why a segment is dropped, for the logs; `None` keeps it.
pub(super) fn rejection(c: &Candidate<'_>) -> Option<&'static str> {
    if c.no_speech_prob > NO_SPEECH_PROB && c.avg_logprob < MIN_AVG_LOGPROB {
        Some("no speech")
    } else if c.speech_share < MIN_SPEECH_SHARE {
        Some("outside speech")
    } else if compression_ratio(c.text) > MAX_COMPRESSION_RATIO {
        Some("repetitive")
    } else if is_sound_description(c.text) {
        Some("sound description")
    } else if is_stock_phrase(c.text)
        && (c.confidence < STOCK_PHRASE_MIN_CONFIDENCE
            || c.no_speech_prob > STOCK_PHRASE_MAX_NO_SPEECH)
    {
        Some("stock phrase")
    } else if c.words <= FRAGMENT_MAX_WORDS && c.confidence < FRAGMENT_MIN_CONFIDENCE {
        Some("unsure fragment")
    } else {
        None
    }
}

/// Longest phrase, in words, checked for loops.
const MAX_LOOP_WORDS: usize = 16;

/// Back-to-back repeats that make a loop: a single word said five times in a row, a phrase three times.
fn loop_repeats(words: usize) -> usize {
    if words == 1 { 5 } else { 3 }
}

/// Keeps the first of phrases repeated back to back as a loop, dropping the repeats.
pub(super) fn drop_loops<T>(items: &mut Vec<T>, key: impl Fn(&T) -> String) {
    let keys: Vec<String> = items.iter().map(&key).collect();
    let mut keep = vec![true; items.len()];
    let mut i = 0;
    while i < keys.len() {
        let mut advance = 1;
        for n in 1..=MAX_LOOP_WORDS.min((keys.len() - i) / 2) {
            let phrase = &keys[i..i + n];
            let repeats = 1 + keys[i + n..]
                .chunks_exact(n)
                .take_while(|next| *next == phrase)
                .count();
            if repeats >= loop_repeats(n) {
                keep[i + n..i + n * repeats].fill(false);
                advance = n * repeats;
                break;
            }
        }
        i += advance;
    }
    let mut flags = keep.into_iter();
    items.retain(|_| flags.next().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(text: &str) -> Candidate<'_> {
        Candidate {
            text,
            words: text.split_whitespace().count(),
            no_speech_prob: 0.1,
            avg_logprob: -0.3,
            confidence: 0.9,
            speech_share: 1.0,
        }
    }

    #[test]
    fn ordinary_speech_passes() {
        assert_eq!(
            rejection(&candidate(" The quick brown fox jumps over the lazy dog.")),
            None
        );
        assert_eq!(
            rejection(&candidate(" Thank you for watching.")),
            None,
            "said clearly, it stays"
        );
    }

    #[test]
    fn each_rule_drops_its_case() {
        let silent = Candidate {
            no_speech_prob: 0.8,
            avg_logprob: -1.5,
            ..candidate(" Hmm.")
        };
        assert_eq!(rejection(&silent), Some("no speech"));
        let elsewhere = Candidate {
            speech_share: 0.1,
            ..candidate(" Hello there.")
        };
        assert_eq!(rejection(&elsewhere), Some("outside speech"));
        let looped = " I don't know. ".repeat(12);
        assert_eq!(rejection(&candidate(&looped)), Some("repetitive"));
        assert_eq!(rejection(&candidate("【音楽】")), Some("sound description"));
        assert_eq!(rejection(&candidate(" [Music]")), Some("sound description"));
        let guess = Candidate {
            confidence: 0.45,
            ..candidate(" you")
        };
        assert_eq!(rejection(&guess), Some("unsure fragment"));
        for stock in [
            " 시청해주셔서 감사합니다.",
            " MBC 뉴스 홍길동입니다.",
            " Thanks for watching!",
        ] {
            let unsure = Candidate {
                confidence: 0.4,
                ..candidate(stock)
            };
            assert_eq!(rejection(&unsure), Some("stock phrase"), "{stock}");
            let over_music = Candidate {
                no_speech_prob: 0.55,
                ..candidate(stock)
            };
            assert_eq!(rejection(&over_music), Some("stock phrase"), "{stock}");
        }
    }

    #[test]
    fn compression_ratio_separates_loops_from_text() {
        assert!(compression_ratio("Whisper is a general-purpose speech recognition model.") < 1.5);
        assert!(compression_ratio(&"la ".repeat(40)) > 2.4);
    }

    #[test]
    fn loops_keep_their_first_phrase() {
        let mut words: Vec<&str> = "so we go on and on and on and on then stop stop"
            .split(' ')
            .collect();
        drop_loops(&mut words, |w| normalise(w));
        assert_eq!(words.join(" "), "so we go on and on then stop stop");

        let mut words: Vec<&str> = "a a a a a b".split(' ').collect();
        drop_loops(&mut words, |w| normalise(w));
        assert_eq!(words.join(" "), "a b");

        let mut words: Vec<&str> = "no no no no".split(' ').collect();
        drop_loops(&mut words, |w| normalise(w));
        assert_eq!(words.len(), 4, "four is still speech");
    }
}
