#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Reloading and watching the articles directory.

mod common;

use std::time::{Duration, Instant};

use common::write_article;
use flexcord_kb::{KnowledgeBase, Lang};
use tokio_util::sync::CancellationToken;

fn top_id(kb: &KnowledgeBase, query: &str) -> Option<String> {
    kb.search(query, Some(Lang::En), 3)
        .first()
        .map(|h| h.id.clone())
}

#[test]
fn reload_picks_up_added_changed_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    write_article(
        dir.path(),
        "a.md",
        "refunds",
        "en",
        "Refunds",
        "Ask the store for a refund.",
    );
    let kb = KnowledgeBase::load(dir.path()).unwrap();
    assert_eq!(top_id(&kb, "refund"), Some("refunds".into()));
    assert_eq!(top_id(&kb, "maintenance"), None);

    // added
    write_article(
        dir.path(),
        "b.md",
        "maintenance",
        "en",
        "Maintenance",
        "Servers are under maintenance on Tuesdays.",
    );
    let status = kb.reload().unwrap();
    assert_eq!(status.generation, 2);
    assert_eq!(status.articles, 2);
    assert_eq!(top_id(&kb, "maintenance"), Some("maintenance".into()));

    // changed
    write_article(
        dir.path(),
        "b.md",
        "maintenance",
        "en",
        "Server status",
        "Check the status page for outages.",
    );
    kb.reload().unwrap();
    assert_eq!(top_id(&kb, "maintenance"), None);
    assert_eq!(top_id(&kb, "outages"), Some("maintenance".into()));

    // removed
    std::fs::remove_file(dir.path().join("a.md")).unwrap();
    let status = kb.reload().unwrap();
    assert_eq!(status.articles, 1);
    assert_eq!(top_id(&kb, "refund"), None);
}

#[test]
fn failed_reload_keeps_the_previous_index() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("articles");
    std::fs::create_dir(&dir).unwrap();
    write_article(
        &dir,
        "a.md",
        "refunds",
        "en",
        "Refunds",
        "Ask the store for a refund.",
    );
    let kb = KnowledgeBase::load(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(kb.reload().is_err());
    assert_eq!(kb.status().generation, 1);
    assert_eq!(top_id(&kb, "refund"), Some("refunds".into()));
}

#[test]
fn searches_during_reloads_always_see_a_complete_index() {
    let dir = tempfile::tempdir().unwrap();
    const WORDS: [&str; 10] = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        "juliett",
    ];
    for i in 0..30 {
        let body = format!("{} refund money store purchase", WORDS[i % WORDS.len()]);
        write_article(
            dir.path(),
            &format!("a{i}.md"),
            &format!("article-{i}"),
            "en",
            &format!("Topic {i}"),
            &body,
        );
    }
    let kb = KnowledgeBase::load(dir.path()).unwrap();
    std::thread::scope(|scope| {
        let searcher = {
            let kb = kb.clone();
            scope.spawn(move || {
                let mut searches = 0;
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(1500) {
                    // Every generation has the same 30 articles, so a complete index always
                    // returns exactly `limit` hits.
                    let hits = kb.search("alpha bravo", Some(Lang::En), 5);
                    assert_eq!(hits.len(), 5);
                    searches += 1;
                }
                searches
            })
        };
        for _ in 0..10 {
            kb.reload().unwrap();
        }
        let searches = searcher.join().unwrap();
        assert!(searches > 10, "searches: {searches}");
    });
    assert_eq!(kb.status().generation, 11);
}

async fn wait_for(kb: &KnowledgeBase, what: &str, cond: impl Fn(&KnowledgeBase) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond(kb) {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_reloads_on_change_and_stops_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    write_article(
        dir.path(),
        "a.md",
        "refunds",
        "en",
        "Refunds",
        "Ask the store for a refund.",
    );
    let kb = KnowledgeBase::load(dir.path()).unwrap();
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn({
        let kb = kb.clone();
        let shutdown = shutdown.clone();
        async move { kb.watch(Duration::from_millis(50), shutdown).await }
    });

    // Nothing changed: no rebuild.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kb.status().generation, 1);

    write_article(
        dir.path(),
        "b.md",
        "maintenance",
        "en",
        "Maintenance",
        "Servers are under maintenance.",
    );
    wait_for(&kb, "added file", |kb| {
        top_id(kb, "maintenance").as_deref() == Some("maintenance")
    })
    .await;

    // An invalid file is reported without disturbing the others.
    std::fs::write(dir.path().join("c.md"), "no front matter").unwrap();
    wait_for(&kb, "invalid file reported", |kb| {
        kb.status().skipped.len() == 1
    })
    .await;
    assert_eq!(top_id(&kb, "refund"), Some("refunds".into()));

    std::fs::remove_file(dir.path().join("a.md")).unwrap();
    wait_for(&kb, "removed file", |kb| top_id(kb, "refund").is_none()).await;

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watcher stops on shutdown")
        .unwrap();
    let generation = kb.status().generation;
    write_article(dir.path(), "d.md", "late", "en", "Late", "late article");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        kb.status().generation,
        generation,
        "no reload after shutdown"
    );
}
