//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use flexcord_kb::KnowledgeBase;

/// The shipped sample articles.
pub fn articles_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("articles")
}

/// The knowledge base over the shipped sample articles.
pub fn sample_kb() -> KnowledgeBase {
    KnowledgeBase::load(articles_dir()).expect("sample articles load")
}

/// Writes a minimal valid article.
pub fn write_article(dir: &Path, file: &str, id: &str, lang: &str, title: &str, body: &str) {
    let text = format!(
        "---\nid: {id}\ntitle: {title}\nlanguage: {lang}\nsummary: {title}.\nurl: https://help.example/{lang}/{id}\n---\n{body}\n"
    );
    std::fs::write(dir.join(file), text).unwrap();
}

/// Ids of the hits, in order.
pub fn ids(hits: &[flexcord_kb::Hit]) -> Vec<String> {
    hits.iter()
        .map(|h| format!("{}:{}", h.language, h.id))
        .collect()
}
