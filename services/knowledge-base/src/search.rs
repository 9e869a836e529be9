//! Query building and ranking.
//!
//! User text never reaches tantivy's query parser. The message is split into folded words;
//! each word is resolved against the index vocabulary, then turned into term queries, one per
//! language chain and field, combined as a weighted disjunction scored with BM25:
//!
//! 1. A word the index knows (as written, or through its stem in either language) is used
//!    as is, with weight 1.
//! 2. An unknown French word that is an elision written without apostrophe ("jarrive",
//!    "lequipe") is replaced by the word after the elided letter when the index knows it.
//! 3. An unknown word whose stem (5+ letters) starts vocabulary words is expanded to the
//!    shortest of them, weight [`PREFIX_WEIGHT`] ("overheats" -> "overheating").
//! 4. Any other unknown word of 4+ letters (and no digit) is typo-corrected: the vocabulary
//!    term dictionary is walked with a Levenshtein automaton (distance 1, or 2 from 8 letters,
//!    transpositions count 1) and at most [`MAX_EXPANSIONS`] closest words are used, with a
//!    lower weight ([`FUZZY_WEIGHT_1`], [`FUZZY_WEIGHT_2`]) so exact and stemmed matches rank
//!    above fuzzy ones. Known words never pay for fuzzy matching.
//!
//! With a language hint, a word the hinted language knows counts little in the other
//! language ([`FALSE_FRIEND_WEIGHT`]); a word it does not know counts fully there. Fields are boosted title > tags > body,
//! and every field uses the stem's IDF over whole articles (BM25F-like) rather than tantivy's
//! per-field IDF. Results below [`min_score`] (relative to the
//! corpus size), or far below the best hit ([`RELATIVE_CUTOFF`]), are dropped: a message that matches nothing specific returns
//! nothing. With a language hint, hits in the other language have their score multiplied by
//! [`OTHER_LANGUAGE_FACTOR`], so they show only when the user's language has nothing as good;
//! an article present in both languages (same id) is returned once, preferably in the hinted
//! language.

use std::collections::HashMap;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;
use tracing::debug;

use crate::analysis;
use crate::article::Article;
use crate::index::Fields;
use crate::lang::Lang;
use crate::Hit;

/// Longest query text considered, in bytes; the rest is ignored.
pub(crate) const MAX_QUERY_BYTES: usize = 1000;
/// Most distinct words considered per query.
pub(crate) const MAX_QUERY_WORDS: usize = 24;
/// Largest `limit` honoured.
pub(crate) const MAX_LIMIT: usize = 50;
/// Boost of a match in the title.
pub(crate) const TITLE_BOOST: f32 = 3.0;
/// Boost of a match in the tags.
pub(crate) const TAGS_BOOST: f32 = 2.0;
/// Boost of a match in the body.
pub(crate) const BODY_BOOST: f32 = 1.0;
/// Weight of a word corrected at edit distance 1.
pub(crate) const FUZZY_WEIGHT_1: f32 = 0.6;
/// Weight of a word corrected at edit distance 2.
pub(crate) const FUZZY_WEIGHT_2: f32 = 0.4;
/// Weight of a word found through the prefix of its stem.
pub(crate) const PREFIX_WEIGHT: f32 = 0.8;
/// Shortest stem used for prefix expansion.
const MIN_PREFIX_STEM: usize = 5;
/// Most corrections used for one unknown word.
pub(crate) const MAX_EXPANSIONS: usize = 2;
/// Most vocabulary terms read from the automaton walk for one unknown word.
const MAX_FUZZY_SCAN: usize = 64;
/// Minimum (language-adjusted) score of a returned hit, as a fraction of the BM25 IDF of a
/// word found in a single article of this corpus (see [`min_score`]).
pub(crate) const MIN_RELEVANCE: f32 = 0.55;
/// Hits scoring below this fraction of the best hit are dropped.
pub(crate) const RELATIVE_CUTOFF: f32 = 0.2;
/// Score multiplier for hits outside the hinted language.
pub(crate) const OTHER_LANGUAGE_FACTOR: f32 = 0.7;
/// With a language hint, weight of a match in the other language for a word that the hinted
/// language also knows.
pub(crate) const FALSE_FRIEND_WEIGHT: f32 = 0.3;

/// What a search needs from one index generation.
pub(crate) struct SearchIndex<'a> {
    pub searcher: &'a tantivy::Searcher,
    pub fields: &'a Fields,
    pub articles: &'a [Article],
    pub doc_to_article: &'a [Vec<u32>],
    pub analyzers: &'a [(Lang, TextAnalyzer)],
}

/// One term query to run: field, stemmed term text, boost.
type Clauses = HashMap<(Field, String), f32>;

impl SearchIndex<'_> {
    pub(crate) fn search(&self, text: &str, hint: Option<Lang>, limit: usize) -> Vec<Hit> {
        let limit = limit.min(MAX_LIMIT);
        if limit == 0 {
            return Vec::new();
        }
        let mut analyzers: Vec<(Lang, TextAnalyzer)> = self.analyzers.to_vec();
        let words = query_words(text);
        let mut clauses: Clauses = HashMap::new();
        for word in &words {
            self.add_word(&mut analyzers, word, hint, &mut clauses);
        }
        if clauses.is_empty() {
            return Vec::new();
        }
        let mut subqueries: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(clauses.len());
        for ((field, stem), boost) in clauses {
            let term = Term::from_field_text(field, &stem);
            let query = TermQuery::new(term, IndexRecordOption::WithFreqs);
            subqueries.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(query), boost)),
            ));
        }
        let query = BooleanQuery::new(subqueries);
        let candidates = (limit * 4).max(16);
        let top = match self
            .searcher
            .search(&query, &TopDocs::with_limit(candidates).order_by_score())
        {
            Ok(top) => top,
            Err(error) => {
                debug!(%error, "Knowledge-base query failed.");
                return Vec::new();
            }
        };
        self.rank(top, hint, limit)
    }

    /// Resolves one query word and adds its term queries.
    fn add_word(
        &self,
        analyzers: &mut [(Lang, TextAnalyzer)],
        word: &str,
        hint: Option<Lang>,
        clauses: &mut Clauses,
    ) {
        let exact = self.lookup(analyzers, word, hint);
        if !exact.is_empty() || self.in_vocab(word) {
            merge(clauses, exact, 1.0);
            return;
        }
        if analysis::is_stop_word_anywhere(word)
            || word.chars().count() < 4
            || word.chars().any(|c| c.is_ascii_digit())
        {
            return;
        }
        if let Some(rest) = strip_elision(word) {
            if analysis::is_stop_word_anywhere(rest) {
                return;
            }
            let found = self.lookup(analyzers, rest, hint);
            if !found.is_empty() {
                merge(clauses, found, 1.0);
                return;
            }
        }
        let mut expanded = false;
        for candidate in self.stem_prefix_expansions(analyzers, word) {
            let found = self.lookup(analyzers, &candidate, hint);
            expanded |= !found.is_empty();
            merge(clauses, found, PREFIX_WEIGHT);
        }
        if expanded {
            return;
        }
        for (candidate, distance) in self.corrections(word) {
            let weight = if distance <= 1 {
                FUZZY_WEIGHT_1
            } else {
                FUZZY_WEIGHT_2
            };
            let found = self.lookup(analyzers, &candidate, hint);
            merge(clauses, found, weight);
        }
    }

    /// Term queries for `word`. With a hint, a word the hinted language knows is matched in
    /// the other language only at [`FALSE_FRIEND_WEIGHT`] (so an English "pass" barely
    /// matches the French "passe"), and a word it does not know is matched in the other
    /// language at full weight ("drops", "twitch" for a French user). Without a hint, both
    /// languages count fully.
    fn lookup(
        &self,
        analyzers: &mut [(Lang, TextAnalyzer)],
        word: &str,
        hint: Option<Lang>,
    ) -> Vec<((Field, String), f32)> {
        match hint {
            Some(lang) => {
                let other_lang = if lang == Lang::En { Lang::Fr } else { Lang::En };
                let mut own = self.lookup_in(analyzers, lang, word);
                let mut other = self.lookup_in(analyzers, other_lang, word);
                if !own.is_empty() {
                    for clause in &mut other {
                        clause.1 *= FALSE_FRIEND_WEIGHT;
                    }
                }
                own.append(&mut other);
                own
            }
            None => {
                let mut both = self.lookup_in(analyzers, Lang::En, word);
                both.extend(self.lookup_in(analyzers, Lang::Fr, word));
                both
            }
        }
    }

    /// Term queries for `word` in the fields of `lang` where its stem occurs.
    ///
    /// Each field's boost is scaled by `idf(whole article) / idf(field)`: tantivy computes BM25
    /// IDF per field, which makes a word that is common in bodies but rare in titles ("account",
    /// "compte") look very specific in titles. The scaling gives every field the IDF of the stem
    /// over whole articles, as BM25F does, while keeping per-field term frequencies and length
    /// normalisation.
    fn lookup_in(
        &self,
        analyzers: &mut [(Lang, TextAnalyzer)],
        lang: Lang,
        word: &str,
    ) -> Vec<((Field, String), f32)> {
        let mut out = Vec::new();
        let Some((_, analyzer)) = analyzers.iter_mut().find(|(l, _)| *l == lang) else {
            return out;
        };
        let lf = self.fields.lang(lang);
        let num_docs = self.searcher.num_docs();
        for stem in analysis::tokens(analyzer, word) {
            let all = self.doc_freq(lf.all, &stem);
            if all == 0 {
                continue;
            }
            let idf_all = idf(all, num_docs);
            for (field, boost) in [
                (lf.title, TITLE_BOOST),
                (lf.tags, TAGS_BOOST),
                (lf.body, BODY_BOOST),
            ] {
                let n = self.doc_freq(field, &stem);
                if n > 0 {
                    out.push(((field, stem.clone()), boost * idf_all / idf(n, num_docs)));
                }
            }
        }
        out
    }

    fn doc_freq(&self, field: Field, text: &str) -> u64 {
        self.searcher
            .doc_freq(&Term::from_field_text(field, text))
            .unwrap_or(0)
    }

    /// Vocabulary words that start with the stem of an unknown `word` (at least
    /// [`MIN_PREFIX_STEM`] letters), shortest and most frequent first. Catches inflections the
    /// stemmer does not merge ("overheats" -> "overheat" -> "overheating").
    fn stem_prefix_expansions(
        &self,
        analyzers: &mut [(Lang, TextAnalyzer)],
        word: &str,
    ) -> Vec<String> {
        let mut stems: Vec<String> = Vec::new();
        for (_, analyzer) in analyzers.iter_mut() {
            for stem in analysis::tokens(analyzer, word) {
                if stem.chars().count() >= MIN_PREFIX_STEM && !stems.contains(&stem) {
                    stems.push(stem);
                }
            }
        }
        // (length, -doc_freq, word)
        let mut found: Vec<(usize, i64, String)> = Vec::new();
        for stem in &stems {
            for segment in self.searcher.segment_readers() {
                let Ok(inverted) = segment.inverted_index(self.fields.vocab) else {
                    continue;
                };
                let Ok(mut stream) = inverted.terms().range().ge(stem.as_bytes()).into_stream()
                else {
                    continue;
                };
                let mut scanned = 0;
                while stream.advance() && scanned < MAX_FUZZY_SCAN {
                    scanned += 1;
                    let key = stream.key();
                    if !key.starts_with(stem.as_bytes()) {
                        break;
                    }
                    let Ok(candidate) = std::str::from_utf8(key) else {
                        continue;
                    };
                    if candidate == word || found.iter().any(|f| f.2 == candidate) {
                        continue;
                    }
                    found.push((
                        candidate.len(),
                        -i64::from(stream.value().doc_freq),
                        candidate.to_owned(),
                    ));
                }
            }
        }
        found.sort();
        found
            .into_iter()
            .take(MAX_EXPANSIONS)
            .map(|f| f.2)
            .collect()
    }

    fn in_vocab(&self, word: &str) -> bool {
        let term = Term::from_field_text(self.fields.vocab, word);
        self.searcher.doc_freq(&term).unwrap_or(0) > 0
    }

    /// Closest vocabulary words to an unknown `word`, best first, with their distance.
    fn corrections(&self, word: &str) -> Vec<(String, usize)> {
        let len = word.chars().count();
        let max_distance: u8 = if len >= 8 { 2 } else { 1 };
        let first = word.chars().next();
        // (distance, first letter differs, -doc_freq, word)
        let mut found: Vec<(usize, bool, i64, String)> = Vec::new();
        for segment in self.searcher.segment_readers() {
            let Ok(inverted) = segment.inverted_index(self.fields.vocab) else {
                continue;
            };
            let fuzzy = FuzzyTermQuery::new(
                Term::from_field_text(self.fields.vocab, word),
                max_distance,
                true,
            );
            let Ok(automaton) = fuzzy.automaton() else {
                return Vec::new();
            };
            let Ok(mut stream) = inverted.terms().search(automaton).into_stream() else {
                continue;
            };
            let mut scanned = 0;
            while stream.advance() && scanned < MAX_FUZZY_SCAN {
                scanned += 1;
                let Ok(candidate) = std::str::from_utf8(stream.key()) else {
                    continue;
                };
                if analysis::is_stop_word_anywhere(candidate) {
                    continue;
                }
                let distance = analysis::edit_distance(word, candidate, max_distance.into());
                if distance > max_distance.into() {
                    continue;
                }
                let doc_freq = i64::from(stream.value().doc_freq);
                match found.iter_mut().find(|f| f.3 == candidate) {
                    Some(existing) => existing.2 -= doc_freq,
                    None => found.push((
                        distance,
                        candidate.chars().next() != first,
                        -doc_freq,
                        candidate.to_owned(),
                    )),
                }
            }
        }
        found.sort();
        let best = found.first().map_or(0, |f| f.0);
        found
            .into_iter()
            .filter(|f| f.0 == best)
            .take(MAX_EXPANSIONS)
            .map(|f| (f.3, f.0))
            .collect()
    }

    fn rank(
        &self,
        top: Vec<(f32, tantivy::DocAddress)>,
        hint: Option<Lang>,
        limit: usize,
    ) -> Vec<Hit> {
        // best hit per article id
        let mut best: Vec<(f32, usize)> = Vec::new();
        for (score, address) in top {
            let Some(&ord) = self
                .doc_to_article
                .get(address.segment_ord as usize)
                .and_then(|docs| docs.get(address.doc_id as usize))
            else {
                continue;
            };
            let Some(article) = self.articles.get(ord as usize) else {
                continue;
            };
            let adjusted = match hint {
                Some(lang) if lang != article.lang => score * OTHER_LANGUAGE_FACTOR,
                _ => score,
            };
            match best
                .iter_mut()
                .find(|(_, o)| self.articles[*o].id == article.id)
            {
                Some(entry) => {
                    let preferred = |o: usize| hint == Some(self.articles[o].lang);
                    let replace = match (preferred(ord as usize), preferred(entry.1)) {
                        (true, false) => true,
                        (false, true) => false,
                        _ => adjusted > entry.0,
                    };
                    if replace {
                        *entry = (adjusted, ord as usize);
                    }
                }
                None => best.push((adjusted, ord as usize)),
            }
        }
        best.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.articles[a.1].id.cmp(&self.articles[b.1].id))
        });
        let top_score = best.first().map_or(0.0, |b| b.0);
        let min_score = min_score(self.searcher.num_docs());
        best.into_iter()
            .filter(|(score, _)| *score >= min_score && *score >= top_score * RELATIVE_CUTOFF)
            .take(limit)
            .map(|(score, ord)| {
                let a = &self.articles[ord];
                Hit {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    summary: a.summary.clone(),
                    url: a.url.clone(),
                    language: a.lang,
                    score,
                }
            })
            .collect()
    }
}

/// BM25 inverse document frequency, as tantivy computes it.
fn idf(doc_freq: u64, num_docs: u64) -> f32 {
    let n = doc_freq as f32;
    let total = num_docs.max(doc_freq) as f32;
    (1.0 + (total - n + 0.5) / (n + 0.5)).ln()
}

/// The score threshold for a corpus of `num_docs` articles.
///
/// BM25 scores grow with the corpus (a rarer word has a larger IDF), so a fixed threshold
/// would drop everything in a tiny knowledge base and let noise through in a big one. The
/// threshold is [`MIN_RELEVANCE`] times the IDF of a word that occurs in exactly one article:
/// roughly "half of one specific word matched once in a body".
pub(crate) fn min_score(num_docs: u64) -> f32 {
    let n = num_docs.max(1) as f32;
    MIN_RELEVANCE * (1.0 + (n - 0.5) / 1.5).ln()
}

fn merge(clauses: &mut Clauses, found: Vec<((Field, String), f32)>, weight: f32) {
    for (key, boost) in found {
        let boost = boost * weight;
        let entry = clauses.entry(key).or_insert(0.0);
        if boost > *entry {
            *entry = boost;
        }
    }
}

/// Distinct folded words of a query, bounded in bytes and count.
fn query_words(text: &str) -> Vec<String> {
    let mut end = text.len().min(MAX_QUERY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut words: Vec<String> = Vec::new();
    for word in analysis::folded_words(&text[..end], MAX_QUERY_WORDS * 4) {
        if !words.contains(&word) {
            words.push(word);
            if words.len() == MAX_QUERY_WORDS {
                break;
            }
        }
    }
    words
}

/// "jarrive" -> "arrive", "lequipe" -> "equipe", "quil" -> "il": a French elision typed
/// without its apostrophe.
fn strip_elision(word: &str) -> Option<&str> {
    let is_vowel_or_h = |c: char| "aeiouyh".contains(c);
    if let Some(rest) = word.strip_prefix("qu") {
        if rest.starts_with(is_vowel_or_h) && rest.len() >= 2 {
            return Some(rest);
        }
    }
    let mut chars = word.chars();
    let first = chars.next()?;
    let rest = chars.as_str();
    ("cdjlmnst".contains(first) && rest.starts_with(is_vowel_or_h) && rest.len() >= 3)
        .then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elisions_without_apostrophe() {
        assert_eq!(strip_elision("jarrive"), Some("arrive"));
        assert_eq!(strip_elision("lequipe"), Some("equipe"));
        assert_eq!(strip_elision("quil"), Some("il"));
        assert_eq!(strip_elision("password"), None);
        assert_eq!(strip_elision("ja"), None);
    }

    #[test]
    fn query_words_are_bounded() {
        let huge = "é".repeat(5000);
        assert!(query_words(&huge).len() <= 1);
        let many: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(query_words(&many).len(), MAX_QUERY_WORDS);
        assert_eq!(query_words("Bug bug BUG"), vec!["bug"]);
    }
}
