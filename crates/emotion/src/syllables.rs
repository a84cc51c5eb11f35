//! Syllables of a recognised word, estimated from its spelling, for the speaking rate.
//!
//! The estimate is rough, but each speaker's rate is only compared with the same speaker's other
//! segments in the same language, so a steady bias cancels out.

/// Estimated syllables of `word` as written: one per Hangul syllable block, CJK ideograph or
/// kana (small kana merge with the one before); in other scripts, one per group of Latin vowel
/// letters, less a silent final English "e". A word with letters or digits but no vowel group
/// counts one; punctuation counts none.
pub(crate) fn syllables(word: &str) -> usize {
    let mut count = 0;
    let mut vowel_groups = 0;
    let mut in_vowels = false;
    let mut spoken = false;
    for c in word.chars().flat_map(char::to_lowercase) {
        if is_syllable_char(c) {
            count += 1;
        } else if !is_small_kana(c) && is_latin_vowel(c) {
            if !in_vowels {
                vowel_groups += 1;
            }
            in_vowels = true;
            spoken = true;
            continue;
        }
        in_vowels = false;
        spoken |= c.is_alphanumeric();
    }
    if vowel_groups > 1 && has_silent_final_e(word) {
        vowel_groups -= 1;
    }
    let total = count + vowel_groups;
    if total == 0 && spoken { 1 } else { total }
}

/// Scripts whose characters are (nearly) one syllable each.
fn is_syllable_char(c: char) -> bool {
    matches!(c,
        '\u{AC00}'..='\u{D7A3}' // Hangul syllables
        | '\u{4E00}'..='\u{9FFF}' // CJK unified ideographs
        | '\u{3041}'..='\u{3096}' // hiragana
        | '\u{30A1}'..='\u{30FA}' // katakana
    ) && !is_small_kana(c)
}

/// Small kana glide into the kana before them (きゃ is one syllable).
fn is_small_kana(c: char) -> bool {
    matches!(
        c,
        'ぁ' | 'ぃ'
            | 'ぅ'
            | 'ぇ'
            | 'ぉ'
            | 'ゃ'
            | 'ゅ'
            | 'ょ'
            | 'ゎ'
            | 'ァ'
            | 'ィ'
            | 'ゥ'
            | 'ェ'
            | 'ォ'
            | 'ャ'
            | 'ュ'
            | 'ョ'
            | 'ヮ'
    )
}

fn is_latin_vowel(c: char) -> bool {
    "aeiouyàáâãäåæèéêëìíîïòóôõöøœùúûüýÿ".contains(c)
}

/// "made", "home": a final e after a consonant is silent in English; "the", "be" have no other
/// vowel and never get here; "-le" (table) is its own syllable.
fn has_silent_final_e(word: &str) -> bool {
    let letters: Vec<char> = word
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    match letters.as_slice() {
        [.., before, 'e'] => !is_latin_vowel(*before) && *before != 'l',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_words() {
        for (word, n) in [
            ("the", 1),
            ("weather", 2),
            ("harbor,", 2),
            ("made", 1),
            ("table", 2),
            ("beautiful", 3),
            ("islands.", 2),
            ("rhythm", 1),
            ("Storm!", 1),
            ("I", 1),
        ] {
            assert_eq!(syllables(word), n, "{word}");
        }
    }

    #[test]
    fn syllabic_scripts() {
        assert_eq!(syllables("안녕하세요"), 5);
        assert_eq!(syllables("감사합니다."), 5);
        assert_eq!(syllables("你好"), 2);
        assert_eq!(syllables("きょう"), 2);
        assert_eq!(syllables("カメラ"), 3);
    }

    #[test]
    fn no_letters_no_syllables() {
        assert_eq!(syllables("..."), 0);
        assert_eq!(syllables(""), 0);
        assert_eq!(syllables("42"), 1);
        assert_eq!(syllables("привет"), 1);
    }
}
