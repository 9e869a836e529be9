#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Loading article directories, including invalid files.

mod common;

use common::write_article;
use flexcord_kb::{KbError, KnowledgeBase, Lang};

#[test]
fn invalid_files_are_skipped_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("en")).unwrap();
    std::fs::create_dir(root.join("fr")).unwrap();
    write_article(
        &root.join("en"),
        "good.md",
        "good",
        "en",
        "Refund help",
        "Ask the store for a refund.",
    );
    write_article(
        &root.join("fr"),
        "bon.md",
        "good",
        "fr",
        "Aide remboursement",
        "Demandez un remboursement.",
    );
    let bad: &[(&str, &[u8], &str)] = &[
        (
            "no-front-matter.md",
            b"# Just markdown\n\nrefund\n",
            "front matter",
        ),
        (
            "no-title.md",
            b"---\nlanguage: en\n---\nrefund\n",
            "`title`",
        ),
        (
            "no-language.md",
            b"---\ntitle: Refund\n---\nrefund\n",
            "`language`",
        ),
        (
            "german.md",
            b"---\ntitle: Erstattung\nlanguage: de\n---\nrefund\n",
            "unsupported language",
        ),
        (
            "unclosed.md",
            b"---\ntitle: Refund\nlanguage: en\n",
            "not closed",
        ),
        (
            "broken-yaml.md",
            b"---\ntitle: \"Refund\nlanguage: en\n---\n",
            "unterminated",
        ),
        (
            "latin1.md",
            b"---\ntitle: R\xe9sum\xe9\nlanguage: fr\n---\n",
            "UTF-8",
        ),
        (
            "bad-id.md",
            b"---\nid: Bad Id!\ntitle: x\nlanguage: en\n---\n",
            "slug",
        ),
    ];
    for (file, bytes, _) in bad {
        std::fs::write(root.join("en").join(file), bytes).unwrap();
    }
    // Same id and language as good.md: the second one (by path order) is skipped.
    write_article(
        &root.join("en"),
        "later-duplicate.md",
        "good",
        "en",
        "Dup",
        "dup",
    );
    // Not Markdown and hidden files are ignored, not reported.
    std::fs::write(root.join("en").join("notes.txt"), "ignored").unwrap();
    std::fs::write(root.join("en").join(".draft.md"), "ignored").unwrap();

    let kb = KnowledgeBase::load(root).unwrap();
    let status = kb.status();
    assert_eq!(status.articles, 2, "{status:#?}");
    assert_eq!(status.articles_en, 1);
    assert_eq!(status.articles_fr, 1);
    assert_eq!(status.skipped.len(), bad.len() + 1, "{status:#?}");
    for (file, _, reason) in bad {
        let skipped = status
            .skipped
            .iter()
            .find(|s| s.path.ends_with(file))
            .unwrap_or_else(|| panic!("{file} not reported: {status:#?}"));
        assert!(
            skipped.reason.contains(reason),
            "{file}: {}",
            skipped.reason
        );
    }
    let dup = status
        .skipped
        .iter()
        .find(|s| s.path.ends_with("later-duplicate.md"))
        .unwrap();
    assert!(dup.reason.contains("duplicate id `good`"), "{}", dup.reason);

    let hits = kb.search("refund", Some(Lang::En), 3);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "good");
    assert_eq!(hits[0].language, Lang::En);
    assert_eq!(hits[0].summary, "Refund help.");
    assert_eq!(hits[0].url.as_deref(), Some("https://help.example/en/good"));
}

#[test]
fn empty_directory_loads_an_empty_knowledge_base() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::load(dir.path()).unwrap();
    assert_eq!(kb.status().articles, 0);
    assert!(kb.search("refund", None, 3).is_empty());
    assert!(kb.search("", None, 3).is_empty());
}

#[test]
fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = KnowledgeBase::load(dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, KbError::Dir { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn oversized_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let big = format!(
        "---\ntitle: Big\nlanguage: en\n---\n{}",
        "word ".repeat(100_000)
    );
    std::fs::write(dir.path().join("big.md"), big).unwrap();
    write_article(dir.path(), "small.md", "small", "en", "Small", "refund");
    let kb = KnowledgeBase::load(dir.path()).unwrap();
    let status = kb.status();
    assert_eq!(status.articles, 1);
    assert!(
        status.skipped[0].reason.contains("larger than"),
        "{status:?}"
    );
}
