//! Text analysis: the tokenizer chains used for indexing and querying, and stop words.
//!
//! Every chain starts the same way: split on non-alphanumeric characters, drop tokens longer
//! than [`MAX_TOKEN_LEN`] bytes, lowercase, then fold accents to ASCII ("réinitialiser" and
//! "reinitialiser" become the same token). Folding happens *before* stop-word removal and
//! stemming, so a user who types without accents gets exactly the same stems as the article
//! author who typed them. The per-language chains then remove that language's stop words
//! (folded) and apply tantivy's Snowball stemmer for that language.

use std::collections::HashSet;
use std::sync::OnceLock;

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};

use crate::lang::Lang;

/// Tokens longer than this (in bytes, before folding) are dropped.
pub(crate) const MAX_TOKEN_LEN: usize = 40;

/// Name of the English stemming chain in the index's tokenizer manager.
pub(crate) const EN_TOKENIZER: &str = "kb_en";
/// Name of the French stemming chain in the index's tokenizer manager.
pub(crate) const FR_TOKENIZER: &str = "kb_fr";
/// Name of the folding-only chain (no stop words, no stemming) used for the vocabulary field.
pub(crate) const FOLD_TOKENIZER: &str = "kb_fold";

/// English stop words: the Snowball English list, contractions written without apostrophe,
/// and chat filler that carries no topic ("hi", "thanks", "please", "help").
const EN_STOP_WORDS: &[&str] = &[
    // Snowball English
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "would",
    "should",
    "could",
    "ought",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
    "can",
    "will",
    "just",
    "now",
    // contractions, with or without apostrophe (the tokenizer splits "don't" into "don", "t")
    "s",
    "t",
    "d",
    "ll",
    "m",
    "re",
    "ve",
    "don",
    "im",
    "ive",
    "id",
    "dont",
    "cant",
    "didnt",
    "doesnt",
    "isnt",
    "arent",
    "wasnt",
    "werent",
    "wont",
    "wouldnt",
    "couldnt",
    "shouldnt",
    "havent",
    "hasnt",
    "hadnt",
    "aint",
    "thats",
    "whats",
    "theres",
    "youre",
    "u",
    "ur",
    // chat filler
    "hi",
    "hello",
    "hey",
    "yo",
    "thanks",
    "thank",
    "thx",
    "ty",
    "please",
    "pls",
    "plz",
    "ok",
    "okay",
    "yes",
    "yeah",
    "yep",
    "nope",
    "lol",
    "hmm",
    "help",
    "need",
    "want",
    "wanna",
    "get",
    "got",
    "know",
    "tell",
    "anyone",
    "someone",
    "somebody",
    "anything",
    "something",
    "like",
    "also",
    "really",
    "still",
    "even",
    "much",
    "many",
    "lot",
    "way",
    "thing",
    "things",
    "stuff",
    "guys",
    "guy",
    "bro",
    "pls",
    "sorry",
    "ever",
    "every",
    "one",
    "us",
    "let",
    "may",
    "might",
    "must",
    "shall",
    "cool",
    "great",
    "good",
    "nice",
    "bad",
    // words that say nothing in a game's help desk: the product itself, and "it's broken"
    "game",
    "games",
    "app",
    "problem",
    "problems",
    "issue",
    "issues",
    "work",
    "works",
    "working",
    "worked",
    "question",
    "questions",
];

/// French stop words: the Snowball French list, elided forms, informal spellings and chat
/// filler ("salut", "merci", "svp", "jai", "cest").
const FR_STOP_WORDS: &[&str] = &[
    // Snowball French
    "au",
    "aux",
    "avec",
    "ce",
    "ces",
    "dans",
    "de",
    "des",
    "du",
    "elle",
    "en",
    "et",
    "eux",
    "il",
    "je",
    "la",
    "le",
    "leur",
    "lui",
    "ma",
    "mais",
    "me",
    "même",
    "mes",
    "moi",
    "mon",
    "ne",
    "nos",
    "notre",
    "nous",
    "on",
    "ou",
    "où",
    "par",
    "pas",
    "pour",
    "qu",
    "que",
    "qui",
    "sa",
    "se",
    "ses",
    "son",
    "sur",
    "ta",
    "te",
    "tes",
    "toi",
    "ton",
    "tu",
    "un",
    "une",
    "vos",
    "votre",
    "vous",
    "c",
    "d",
    "j",
    "l",
    "à",
    "m",
    "n",
    "s",
    "t",
    "y",
    "été",
    "étée",
    "étées",
    "étés",
    "étant",
    "suis",
    "es",
    "est",
    "sommes",
    "êtes",
    "sont",
    "serai",
    "seras",
    "sera",
    "serons",
    "serez",
    "seront",
    "serais",
    "serait",
    "serions",
    "seriez",
    "seraient",
    "étais",
    "était",
    "étions",
    "étiez",
    "étaient",
    "fus",
    "fut",
    "fûmes",
    "fûtes",
    "furent",
    "sois",
    "soit",
    "soyons",
    "soyez",
    "soient",
    "fusse",
    "fusses",
    "fût",
    "fussions",
    "fussiez",
    "fussent",
    "ayant",
    "eu",
    "eue",
    "eues",
    "eus",
    "ai",
    "as",
    "avons",
    "avez",
    "ont",
    "aurai",
    "auras",
    "aura",
    "aurons",
    "aurez",
    "auront",
    "aurais",
    "aurait",
    "aurions",
    "auriez",
    "auraient",
    "avais",
    "avait",
    "avions",
    "aviez",
    "avaient",
    "eut",
    "eûmes",
    "eûtes",
    "eurent",
    "aie",
    "aies",
    "ait",
    "ayons",
    "ayez",
    "aient",
    "eusse",
    "eusses",
    "eût",
    "eussions",
    "eussiez",
    "eussent",
    "ceci",
    "cela",
    "celà",
    "cet",
    "cette",
    "ici",
    "ils",
    "les",
    "leurs",
    "quel",
    "quels",
    "quelle",
    "quelles",
    "sans",
    "soi",
    "a",
    // informal and elided spellings
    "jai",
    "cest",
    "ya",
    "jsuis",
    "chui",
    "jsp",
    "quil",
    "quelle",
    "ptet",
    "pk",
    "pq",
    "pcq",
    "paske",
    "dla",
    "tjr",
    "tjrs",
    // chat filler
    "salut",
    "bonjour",
    "bonsoir",
    "coucou",
    "slt",
    "bjr",
    "cc",
    "merci",
    "mrc",
    "bcp",
    "svp",
    "stp",
    "oui",
    "ouais",
    "non",
    "ok",
    "okay",
    "dacc",
    "daccord",
    "mdr",
    "lol",
    "ptdr",
    "tkt",
    "aide",
    "aider",
    "besoin",
    "veux",
    "voudrais",
    "peux",
    "peut",
    "pouvez",
    "comment",
    "pourquoi",
    "quand",
    "quoi",
    "alors",
    "donc",
    "aussi",
    "encore",
    "tout",
    "toute",
    "tous",
    "toutes",
    "rien",
    "chose",
    "truc",
    "trucs",
    "trop",
    "tres",
    "très",
    "vraiment",
    "juste",
    "quelqu",
    "quelquun",
    "faire",
    "fais",
    "fait",
    "ouf",
    "genre",
    "bref",
    // words that say nothing in a game's help desk: the product itself, and "it's broken"
    "jeu",
    "jeux",
    "appli",
    "application",
    "probleme",
    "problemes",
    "souci",
    "soucis",
    "marche",
    "marcher",
    "fonctionne",
    "fonctionner",
    "question",
    "questions",
];

fn fold_list(words: &[&str]) -> Vec<String> {
    let mut folded: Vec<String> = words.iter().map(|w| fold_str(w)).collect();
    folded.sort();
    folded.dedup();
    folded
}

fn stop_set(lang: Lang) -> &'static HashSet<String> {
    static EN: OnceLock<HashSet<String>> = OnceLock::new();
    static FR: OnceLock<HashSet<String>> = OnceLock::new();
    match lang {
        Lang::En => EN.get_or_init(|| fold_list(EN_STOP_WORDS).into_iter().collect()),
        Lang::Fr => FR.get_or_init(|| fold_list(FR_STOP_WORDS).into_iter().collect()),
    }
}

/// Whether a folded word is a stop word in `lang`.
pub(crate) fn is_stop_word(lang: Lang, folded_word: &str) -> bool {
    stop_set(lang).contains(folded_word)
}

/// Whether a folded word is a stop word in any supported language.
pub(crate) fn is_stop_word_anywhere(folded_word: &str) -> bool {
    Lang::ALL.iter().any(|l| is_stop_word(*l, folded_word))
}

fn folding_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// The stemming chain for `lang`: split, drop long tokens, lowercase, fold, stop words, stem.
pub(crate) fn language_analyzer(lang: Lang) -> TextAnalyzer {
    let stemmer_language = match lang {
        Lang::En => Language::English,
        Lang::Fr => Language::French,
    };
    let stop_words = fold_list(match lang {
        Lang::En => EN_STOP_WORDS,
        Lang::Fr => FR_STOP_WORDS,
    });
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(stop_words))
        .filter(Stemmer::new(stemmer_language))
        .build()
}

/// The folding-only chain: split, drop long tokens, lowercase, fold.
pub(crate) fn fold_analyzer() -> TextAnalyzer {
    folding_analyzer()
}

/// Name of the stemming chain registered for `lang`.
pub(crate) fn tokenizer_name(lang: Lang) -> &'static str {
    match lang {
        Lang::En => EN_TOKENIZER,
        Lang::Fr => FR_TOKENIZER,
    }
}

/// Runs `analyzer` over `text` and collects the token texts.
pub(crate) fn tokens(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

/// Splits `text` into lowercase, accent-folded words (at most `max_words`).
///
/// French elisions are split off by the tokenizer ("l'événement" gives "l", "evenement"),
/// except that "quelqu'un" is kept as one word, "quelquun".
pub(crate) fn folded_words(text: &str, max_words: usize) -> Vec<String> {
    let mut analyzer = folding_analyzer();
    let mut words: Vec<String> = Vec::new();
    let mut stream = analyzer.token_stream(text);
    while let Some(token) = stream.next() {
        if token.text == "un" && words.last().is_some_and(|w| w == "quelqu") {
            if let Some(last) = words.last_mut() {
                *last = "quelquun".to_owned();
            }
            continue;
        }
        if words.len() >= max_words {
            break;
        }
        words.push(token.text.clone());
    }
    words
}

/// Lowercases and folds one string with the same filters the index uses.
pub(crate) fn fold_str(text: &str) -> String {
    let mut analyzer = folding_analyzer();
    tokens(&mut analyzer, text).join(" ")
}

/// Damerau-Levenshtein distance (optimal string alignment) between two short strings,
/// counted in chars. Returns `max + 1` early once the distance must exceed `max`.
pub(crate) fn edit_distance(a: &str, b: &str, max: usize) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return max + 1;
    }
    let width = b.len() + 1;
    let mut prev2 = vec![0usize; width];
    let mut prev: Vec<usize> = (0..width).collect();
    let mut cur = vec![0usize; width];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return max + 1;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()].min(max + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_removes_accents_and_case() {
        assert_eq!(fold_str("Réinitialiser"), "reinitialiser");
        assert_eq!(fold_str("ÉVÉNEMENT"), "evenement");
        assert_eq!(fold_str("Ça Plante"), "ca plante");
    }

    #[test]
    fn stemming_chains_merge_inflections() {
        let mut en = language_analyzer(Lang::En);
        assert_eq!(tokens(&mut en, "refunds"), tokens(&mut en, "refund"));
        assert_eq!(tokens(&mut en, "crashing"), tokens(&mut en, "crashes"));
        assert!(tokens(&mut en, "the and to").is_empty());
        let mut fr = language_analyzer(Lang::Fr);
        assert_eq!(
            tokens(&mut fr, "remboursements"),
            tokens(&mut fr, "remboursement")
        );
        assert_eq!(
            tokens(&mut fr, "réinitialiser"),
            tokens(&mut fr, "reinitialiser")
        );
        assert!(tokens(&mut fr, "j'ai été à la").is_empty());
    }

    #[test]
    fn folded_words_keeps_quelquun_whole() {
        assert_eq!(
            folded_words("Quelqu'un peut m'aider ?", 10),
            vec!["quelquun", "peut", "m", "aider"]
        );
        assert_eq!(folded_words("a b c d", 2), vec!["a", "b"]);
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("password", "pasword", 2), 1);
        assert_eq!(edit_distance("agent", "agnet", 2), 1);
        assert_eq!(edit_distance("createur", "creator", 2), 2);
        assert_eq!(edit_distance("abc", "abcdef", 2), 3);
        assert_eq!(edit_distance("", "", 1), 0);
    }
}
