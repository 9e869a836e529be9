//! Detecting a user who asks for a person instead of the bot, in English or French.
//!
//! [`wants_human`] works on folded words (lowercase, accents removed, so "à"/"a" and
//! "conseillère"/"conseillere" are equal) and tolerates one typo in the longer keywords
//! ("humain"/"humian", "agent"/"agnet", "conseiller"/"consiller"). A message matches when
//! any of these rules holds:
//!
//! 1. **Contact phrase**: a contact verb ("talk", "speak", "chat", "contact", "reach",
//!    "transfer", "connect"; "parler", "discuter", "contacter", "joindre", "passer") followed
//!    within four words by a person word ("human", "person", "agent", "someone", "staff",
//!    "support", "operator", "representative", "mod"; "humain", "personne", "conseiller",
//!    "agent", "quelqu'un", "opérateur", "support", "équipe", "service", "modo"...), with only
//!    small words in between ("to a real", "à un vrai"). Anywhere in the message, any length.
//! 2. **Asking for one**: "want"/"need"/"get me"/"veux"/"voudrais"/"besoin" followed by
//!    "a/an/some/real/un/une/d'un/vrai" and a person word that is not used as a modifier (the
//!    message ends, or a polite or linking word follows: "an agent please", "an agent for my
//!    refund"). "I want an agent skin" and "I want the agent skin" do not match.
//! 3. **Fixed phrases** anywhere: "real person", "live agent", "customer service",
//!    "human being", "support staff", "vrai humain", "vraie personne", "service client",
//!    "un humain", "une personne réelle"...
//! 4. **Short request**: a message of at most [`SHORT_MESSAGE_WORDS`] words that, once
//!    greetings, politeness and request words are removed ("hi", "please", "I want", "svp",
//!    "je veux", "un"), consists only of person words: "agent", "human please", "un humain
//!    svp", "quelqu'un ?", "anyone there?", "support".
//!
//! A negation right before the request ("I don't need a human", "je ne veux pas parler à un
//! agent") cancels rules 1 and 2. A long message that merely mentions a person word
//! ("my agent skin disappeared", "someone stole my account") does not match.

use crate::analysis::{self, edit_distance};

/// Longest message, in words, that rule 4 (a bare request like "agent please") applies to.
pub const SHORT_MESSAGE_WORDS: usize = 8;

/// Words that designate a person to talk to (folded).
const PERSON_WORDS: &[&str] = &[
    "human",
    "humans",
    "person",
    "people",
    "agent",
    "agents",
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "operator",
    "representative",
    "rep",
    "staff",
    "support",
    "employee",
    "admin",
    "moderator",
    "mod",
    "mods",
    "dev",
    "developer",
    "humain",
    "humains",
    "personne",
    "conseiller",
    "conseillere",
    "conseillers",
    "operateur",
    "operatrice",
    "quelquun",
    "equipe",
    "service",
    "moderateur",
    "modo",
    "responsable",
    "technicien",
    "vendeur",
];

/// Person words that may stand alone as a whole request (rule 4).
const STANDALONE_PERSON_WORDS: &[&str] = &[
    "human",
    "humans",
    "agent",
    "agents",
    "someone",
    "somebody",
    "anyone",
    "anybody",
    "operator",
    "representative",
    "staff",
    "support",
    "humain",
    "humains",
    "conseiller",
    "conseillere",
    "operateur",
    "operatrice",
    "quelquun",
];

/// Real words one typo away from a keyword that must not count as that keyword.
const NOT_TYPOS: &[&str] = &[
    "argent", "stuff", "gent", "agence", "servie", "humor", "humour",
];

/// Verbs that open a contact request (rule 1).
const CONTACT_VERBS: &[&str] = &[
    "talk",
    "speak",
    "chat",
    "contact",
    "reach",
    "transfer",
    "connect",
    "message",
    "parler",
    "discuter",
    "contacter",
    "joindre",
    "passer",
    "mettre",
    "transferer",
    "ecrire",
];

/// Verbs that ask for something (rule 2).
const ASK_VERBS: &[&str] = &[
    "want", "wanna", "need", "get", "give", "veux", "voudrais", "voudrai", "veut", "souhaite",
    "aimerais", "besoin", "demande", "avoir", "faut",
];

/// Words allowed between a verb and the person word.
const LINK_WORDS: &[&str] = &[
    "to",
    "with",
    "a",
    "an",
    "the",
    "some",
    "real",
    "live",
    "actual",
    "human",
    "me",
    "customer",
    "your",
    "you",
    "guys",
    "over",
    "through",
    "un",
    "une",
    "le",
    "la",
    "l",
    "les",
    "au",
    "aux",
    "a",
    "avec",
    "vrai",
    "vraie",
    "veritable",
    "du",
    "de",
    "des",
    "d",
    "me",
    "m",
    "moi",
    "en",
    "relation",
    "votre",
    "ton",
    "quelque",
    "membre",
    "real-life",
    "vrais",
];

/// Articles allowed between an ask verb and the person word (rule 2).
const ASK_LINK_WORDS: &[&str] = &[
    "a", "an", "some", "real", "live", "actual", "me", "to", "talk", "speak", "un", "une", "d",
    "de", "vrai", "vraie", "parler", "a", "avec", "moi", "m",
];

/// Words that may follow the person word at the end of a request (rule 2).
const CLOSING_WORDS: &[&str] = &[
    "please",
    "pls",
    "plz",
    "now",
    "asap",
    "thanks",
    "thx",
    "thank",
    "you",
    "to",
    "who",
    "that",
    "for",
    "here",
    "there",
    "svp",
    "stp",
    "merci",
    "maintenant",
    "vite",
    "pour",
    "qui",
    "rapidement",
    "directement",
    "reel",
    "reelle",
    "physique",
    "ici",
    "la",
];

/// Fixed phrases (rule 3), as folded word sequences.
const PHRASES: &[&[&str]] = &[
    &["real", "person"],
    &["real", "human"],
    &["real", "people"],
    &["actual", "person"],
    &["actual", "human"],
    &["live", "agent"],
    &["live", "person"],
    &["live", "support"],
    &["human", "agent"],
    &["human", "being"],
    &["human", "support"],
    &["customer", "service"],
    &["customer", "support"],
    &["support", "staff"],
    &["support", "agent"],
    &["support", "team"],
    &["vrai", "humain"],
    &["vraie", "personne"],
    &["vrai", "personne"],
    &["personne", "reelle"],
    &["personne", "physique"],
    &["etre", "humain"],
    &["agent", "humain"],
    &["un", "humain"],
    &["service", "client"],
    &["service", "clients"],
    &["conseiller", "clientele"],
];

/// Greetings, politeness and request words ignored by rule 4.
const FILLER: &[&str] = &[
    "i",
    "im",
    "id",
    "want",
    "wanna",
    "would",
    "like",
    "need",
    "can",
    "could",
    "may",
    "please",
    "pls",
    "plz",
    "now",
    "a",
    "an",
    "the",
    "to",
    "with",
    "speak",
    "talk",
    "chat",
    "get",
    "give",
    "me",
    "let",
    "real",
    "live",
    "actual",
    "hi",
    "hello",
    "hey",
    "yo",
    "ok",
    "okay",
    "help",
    "is",
    "there",
    "are",
    "you",
    "any",
    "some",
    "one",
    "asap",
    "thanks",
    "thx",
    "urgent",
    "no",
    "not",
    "bot",
    "robot",
    "ai",
    "just",
    "a",
    "je",
    "j",
    "veux",
    "voudrais",
    "voudrai",
    "souhaite",
    "aimerais",
    "besoin",
    "de",
    "d",
    "un",
    "une",
    "le",
    "la",
    "l",
    "les",
    "avec",
    "parler",
    "discuter",
    "joindre",
    "contacter",
    "avoir",
    "me",
    "m",
    "moi",
    "svp",
    "stp",
    "merci",
    "bonjour",
    "salut",
    "slt",
    "bjr",
    "coucou",
    "vrai",
    "vraie",
    "vraiment",
    "possible",
    "est",
    "ce",
    "c",
    "que",
    "qu",
    "il",
    "y",
    "ya",
    "peut",
    "peux",
    "pouvez",
    "aider",
    "aide",
    "urgent",
    "pas",
    "non",
    "plutot",
    "qui",
    "quoi",
    "the",
    "here",
    "la",
    "ici",
    "please",
];

/// Negations that cancel a request made right after them.
const NEGATIONS: &[&str] = &[
    "dont", "don", "not", "never", "no", "ne", "pas", "jamais", "nul",
];

fn is_one_of(word: &str, list: &[&str]) -> bool {
    list.contains(&word)
}

/// Whether `word` is `keyword`, allowing one typo when both are 5+ letters.
fn matches_keyword(word: &str, keyword: &str) -> bool {
    if word == keyword {
        return true;
    }
    word.len() >= 5
        && keyword.len() >= 5
        && !is_one_of(word, NOT_TYPOS)
        && edit_distance(word, keyword, 1) <= 1
}

fn in_keywords(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| matches_keyword(word, k))
}

fn is_person(word: &str) -> bool {
    in_keywords(word, PERSON_WORDS)
}

/// Whether a negation occurs in `words[from..to]`.
fn negated(words: &[String], from: usize, to: usize) -> bool {
    words[from..to].iter().any(|w| is_one_of(w, NEGATIONS))
}

/// Whether the message asks to talk to a person (agent) rather than the bot.
/// See the [module documentation](self) for the exact rules.
pub fn wants_human(text: &str) -> bool {
    let words = analysis::folded_words(text, 400);
    if words.is_empty() {
        return false;
    }
    contact_phrase(&words)
        || asks_for_person(&words)
        || fixed_phrase(&words)
        || short_request(&words)
}

/// Rule 1.
fn contact_phrase(words: &[String]) -> bool {
    for (i, word) in words.iter().enumerate() {
        if !in_keywords(word, CONTACT_VERBS) {
            continue;
        }
        for j in i + 1..words.len().min(i + 6) {
            if is_person(&words[j]) {
                if !negated(words, i.saturating_sub(3), j) {
                    return true;
                }
                break;
            }
            if !is_one_of(&words[j], LINK_WORDS) {
                break;
            }
        }
    }
    false
}

/// Rule 2.
fn asks_for_person(words: &[String]) -> bool {
    for (i, word) in words.iter().enumerate() {
        if !is_one_of(word, ASK_VERBS) {
            continue;
        }
        for j in i + 1..words.len().min(i + 5) {
            if is_person(&words[j]) {
                let closes = words
                    .get(j + 1)
                    .is_none_or(|w| is_one_of(w, CLOSING_WORDS) || is_one_of(w, FILLER));
                if closes && !negated(words, i.saturating_sub(3), j) {
                    return true;
                }
                break;
            }
            if !is_one_of(&words[j], ASK_LINK_WORDS) {
                break;
            }
        }
    }
    false
}

/// Rule 3.
fn fixed_phrase(words: &[String]) -> bool {
    PHRASES.iter().any(|phrase| {
        words.windows(phrase.len()).enumerate().any(|(i, window)| {
            window
                .iter()
                .zip(phrase.iter())
                .all(|(w, p)| matches_keyword(w, p))
                && !negated(words, i.saturating_sub(3), i)
        })
    })
}

/// Rule 4.
fn short_request(words: &[String]) -> bool {
    if words.len() > SHORT_MESSAGE_WORDS {
        return false;
    }
    let mut person = false;
    for word in words {
        if in_keywords(word, STANDALONE_PERSON_WORDS) {
            person = true;
        } else if !is_one_of(word, FILLER) {
            return false;
        }
    }
    person
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_typos() {
        assert!(matches_keyword("humian", "humain"));
        assert!(matches_keyword("agnet", "agent"));
        assert!(!matches_keyword("argent", "agent"));
        assert!(!matches_keyword("mod", "mode"));
    }
}
