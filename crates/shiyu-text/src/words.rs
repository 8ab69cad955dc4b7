//! Segmentation with jieba's dictionary, minus stop words (the HIT list in `data/zh`) and punctuation.

use jieba_rs::Jieba;
use std::collections::HashSet;
use std::sync::OnceLock;

const STOPWORDS: &str = include_str!("../../../data/zh/stopwords-hit.txt");

fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

fn stopwords() -> &'static HashSet<&'static str> {
    static WORDS: OnceLock<HashSet<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| STOPWORDS.lines().map(str::trim).filter(|w| !w.is_empty()).collect())
}

/// The words of `text` that carry meaning: jieba's segmentation (precise mode), lower-cased, without stop
/// words, punctuation, whitespace or digits alone.
pub fn words(text: &str) -> Vec<String> {
    jieba()
        .cut(text, false)
        .into_iter()
        .map(|token| token.word.trim().to_lowercase())
        .filter(|w| {
            !w.is_empty()
                && w.chars().any(char::is_alphanumeric)
                && !w.chars().all(|c| c.is_ascii_digit())
                && !stopwords().contains(w.as_str())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_cut_into_words_without_stop_words_or_punctuation() {
        let found = words("崇川区桃坞路人行道有摊贩占道经营，早高峰堵路！");
        assert!(found.contains(&"人行道".to_string()) && found.contains(&"摊贩".to_string()), "{found:?}");
        assert!(!found.iter().any(|w| w == "，" || w == "！" || w == "有"), "{found:?}");
        assert!(words("   ").is_empty());
        assert_eq!(words("12345 热线"), vec!["热线"]);
    }
}
