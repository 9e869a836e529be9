//! Languages the knowledge base knows, and a cheap language guess for user messages.

use std::fmt;
use std::str::FromStr;

use crate::analysis;

/// A language articles are written in and queries are analysed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    /// English.
    En,
    /// French.
    Fr,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Fr];

    /// The ISO 639-1 code: `"en"` or `"fr"`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    /// Parses a language code or a locale, case-insensitively: `en`, `EN`, `en-US`, `en_GB`,
    /// `fr`, `fr-CA`, `fr_FR` (Discord locales are of this form). Anything else is `None`.
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code
            .trim()
            .split(['-', '_'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" | "eng" | "english" => Some(Lang::En),
            "fr" | "fra" | "fre" | "french" | "francais" | "français" => Some(Lang::Fr),
            _ => None,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Error returned when a string is not a supported language code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported language `{0}` (expected en or fr)")]
pub struct UnknownLang(pub String);

impl FromStr for Lang {
    type Err = UnknownLang;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::from_code(s).ok_or_else(|| UnknownLang(s.chars().take(32).collect()))
    }
}

/// Frequent English function words (and chat spellings) that are not French words.
const EN_MARKERS: &[&str] = &[
    "the", "is", "are", "was", "were", "my", "i", "im", "you", "your", "it", "its", "to", "and",
    "of", "in", "with", "this", "that", "how", "what", "why", "when", "where", "who", "can",
    "cant", "do", "does", "did", "dont", "didnt", "doesnt", "not", "have", "has", "had", "get",
    "got", "for", "be", "from", "just", "after", "will", "wont", "would", "there", "they", "we",
    "our", "please", "pls", "thanks", "hi", "hello", "any", "anyone", "someone", "help", "want",
    "need", "game", "account", "keeps", "lost", "still", "should", "been", "if", "but", "or",
];

/// Frequent French function words (and chat spellings) that are not English words.
const FR_MARKERS: &[&str] = &[
    "le", "la", "les", "je", "j", "jai", "tu", "il", "elle", "nous", "vous", "ils", "un", "une",
    "des", "du", "de", "et", "ou", "mais", "mon", "ma", "mes", "ton", "ta", "tes", "est", "sont",
    "suis", "ai", "pas", "ne", "n", "que", "qui", "quoi", "comment", "pourquoi", "quand", "avec",
    "sans", "dans", "sur", "pour", "par", "ce", "cette", "ca", "c", "cest", "l", "d", "qu", "y",
    "au", "aux", "jeu", "compte", "merci", "bonjour", "salut", "svp", "stp", "peux", "veux",
    "fait", "faire", "plus", "rien", "tout", "tous", "aussi", "encore", "quelqu", "quelquun",
    "moi", "lui", "leur", "notre", "votre", "avoir", "etre", "trop", "bcp", "ya",
];

/// Guesses whether `text` is English or French from the function words it uses.
///
/// Meant for messages whose Discord locale is unknown. It counts words from two short,
/// non-overlapping marker lists (plus a small bonus for French accented letters) and answers
/// only when one side clearly wins; short or ambiguous messages ("ok", "lol", "asdf") give
/// `None`.
pub fn guess(text: &str) -> Option<Lang> {
    let words = analysis::folded_words(text, 200);
    let mut en = 0u32;
    let mut fr = 0u32;
    for word in &words {
        if EN_MARKERS.contains(&word.as_str()) {
            en += 2;
        }
        if FR_MARKERS.contains(&word.as_str()) {
            fr += 2;
        }
    }
    let accents = text
        .chars()
        .take(2000)
        .filter(|c| "éèêëàâçùûôîïœÉÈÊÀÇ".contains(*c))
        .count();
    fr += 2 * u32::try_from(accents.min(2)).unwrap_or(2);
    match en.cmp(&fr) {
        std::cmp::Ordering::Greater if en >= 2 => Some(Lang::En),
        std::cmp::Ordering::Less if fr >= 2 => Some(Lang::Fr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes_and_locales() {
        assert_eq!(Lang::from_code("en"), Some(Lang::En));
        assert_eq!(Lang::from_code("EN-us"), Some(Lang::En));
        assert_eq!(Lang::from_code("en_GB"), Some(Lang::En));
        assert_eq!(Lang::from_code("fr"), Some(Lang::Fr));
        assert_eq!(Lang::from_code("fr-CA"), Some(Lang::Fr));
        assert_eq!(Lang::from_code("de"), None);
        assert_eq!(Lang::from_code(""), None);
        assert_eq!("fr".parse::<Lang>(), Ok(Lang::Fr));
        assert!("pt-BR".parse::<Lang>().is_err());
        assert_eq!(Lang::Fr.to_string(), "fr");
    }

    #[test]
    fn guesses_common_messages() {
        let cases: &[(&str, Option<Lang>)] = &[
            ("I forgot my password", Some(Lang::En)),
            ("how do i get a refund", Some(Lang::En)),
            ("the game keeps crashing", Some(Lang::En)),
            ("j'ai oublié mon mot de passe", Some(Lang::Fr)),
            ("jarrive pas a me connecter", Some(Lang::Fr)),
            ("comment changer de pseudo", Some(Lang::Fr)),
            ("mon compte a été piraté", Some(Lang::Fr)),
            ("réinitialiser", Some(Lang::Fr)),
            ("ok", None),
            ("lol", None),
            ("asdfgh", None),
            ("", None),
            ("👍", None),
        ];
        for (text, expected) in cases {
            assert_eq!(guess(text), *expected, "guess({text:?})");
        }
    }
}
