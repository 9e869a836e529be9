//! Knowledge-base articles and full-text search for the flexcord bot.
//!
//! In bot mode, bot-router searches each direct message here and answers with up to three
//! article suggestions. Articles are Markdown files with front matter (see the crate README),
//! in English or French, indexed in RAM with tantivy:
//!
//! - per-language analysis (Snowball stemming and stop words for English and French),
//!   accent-insensitive and case-insensitive;
//! - typo tolerance: unknown words are corrected against the index vocabulary (edit distance
//!   1, or 2 for long words), ranked below exact and stemmed matches;
//! - title and tags boosted over the body; a score threshold so chatter and gibberish
//!   return nothing;
//! - a language hint that prefers the user's language and falls back to the other one;
//! - atomic reloads, and a polling watcher that reloads when files change.
//!
//! ```no_run
//! use flexcord_kb::{KnowledgeBase, Lang};
//! # fn main() -> Result<(), flexcord_kb::KbError> {
//! let kb = KnowledgeBase::load("services/knowledge-base/articles")?;
//! for hit in kb.search("j'ai oublié mon mot de passe", Some(Lang::Fr), 3) {
//!     println!("{} — {} ({:?})", hit.title, hit.summary, hit.url);
//! }
//! # Ok(()) }
//! ```
//!
//! The crate also carries the language logic bot-router needs around search:
//! [`intent::wants_human`] (does the user ask for a person?) and [`lang::guess`]
//! (English or French, when the Discord locale is unknown).

mod analysis;
mod article;
mod index;
pub mod intent;
mod kb;
pub mod lang;
mod search;

use std::path::PathBuf;

pub use kb::KnowledgeBase;
pub use lang::Lang;

/// One article suggested for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Stable article id (slug). Translations of one article share it.
    pub id: String,
    /// Article title.
    pub title: String,
    /// One-line summary (from front matter, else the body's first sentence).
    pub summary: String,
    /// Link to the article, when the article has one.
    pub url: Option<String>,
    /// Language the article is written in.
    pub language: Lang,
    /// Relevance score (BM25, boosted; lowered for the non-hinted language). Only useful to
    /// compare hits of the same query.
    pub score: f32,
}

/// A file that was not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFile {
    /// Path of the file.
    pub path: PathBuf,
    /// Human-readable reason, e.g. "missing required field `title`".
    pub reason: String,
}

/// What the knowledge base currently serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbStatus {
    /// Index generation: 1 after [`KnowledgeBase::load`], +1 on each reload that swapped in.
    pub generation: u64,
    /// Number of articles indexed.
    pub articles: usize,
    /// Number of English articles.
    pub articles_en: usize,
    /// Number of French articles.
    pub articles_fr: usize,
    /// Files found but not loaded in this generation.
    pub skipped: Vec<SkippedFile>,
}

/// Errors from loading or reloading the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The articles directory could not be listed.
    #[error("cannot read the articles directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// tantivy failed to build the index.
    #[error("building the search index failed: {0}")]
    Index(#[source] tantivy::TantivyError),
}
