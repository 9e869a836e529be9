#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Search behaviour on the shipped sample articles.

mod common;

use common::{ids, sample_kb};
use flexcord_kb::Lang;

#[test]
fn sample_articles_all_load() {
    let kb = sample_kb();
    let status = kb.status();
    assert!(status.skipped.is_empty(), "skipped: {:?}", status.skipped);
    assert!(status.articles_en >= 20, "{status:?}");
    assert!(status.articles_fr >= 20, "{status:?}");
    assert_eq!(status.articles, status.articles_en + status.articles_fr);
    assert_eq!(status.generation, 1);
}

#[test]
fn hits_carry_article_metadata() {
    let kb = sample_kb();
    let hits = kb.search("reset password", Some(Lang::En), 3);
    let top = hits.first().expect("a hit");
    assert_eq!(top.id, "password-reset");
    assert_eq!(top.language, Lang::En);
    assert_eq!(top.title, "Reset your password");
    assert!(top.summary.starts_with("How to reset"), "{}", top.summary);
    assert_eq!(
        top.url.as_deref(),
        Some("https://help.starfall.example/en/password-reset")
    );
    assert!(top.score > 0.0);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn accents_do_not_matter() {
    let kb = sample_kb();
    for query in [
        "réinitialiser mot de passe",
        "reinitialiser mot de passe",
        "RÉINITIALISER MOT DE PASSE",
        "Reinitialiser Mot De Passe",
    ] {
        let hits = kb.search(query, Some(Lang::Fr), 3);
        assert_eq!(
            hits.first().map(|h| (h.id.as_str(), h.language)),
            Some(("password-reset", Lang::Fr)),
            "{query}: {:?}",
            ids(&hits)
        );
    }
    let with = kb.search("événement récompense", Some(Lang::Fr), 3);
    let without = kb.search("evenement recompense", Some(Lang::Fr), 3);
    assert_eq!(ids(&with), ids(&without));
    assert_eq!(with.first().map(|h| h.id.as_str()), Some("events"));
}

#[test]
fn english_stemming() {
    let kb = sample_kb();
    for query in ["refund", "refunds", "refunded", "refunding"] {
        let hits = kb.search(query, Some(Lang::En), 3);
        assert_eq!(
            hits.first().map(|h| h.id.as_str()),
            Some("refunds"),
            "{query}: {:?}",
            ids(&hits)
        );
    }
    let crash = kb.search("crashing", Some(Lang::En), 3);
    assert_eq!(
        crash.first().map(|h| h.id.as_str()),
        Some("crash-on-launch")
    );
}

#[test]
fn french_stemming() {
    let kb = sample_kb();
    for query in ["remboursement", "remboursements", "rembourser", "remboursé"] {
        let hits = kb.search(query, Some(Lang::Fr), 3);
        assert_eq!(
            hits.first().map(|h| (h.id.as_str(), h.language)),
            Some(("refunds", Lang::Fr)),
            "{query}: {:?}",
            ids(&hits)
        );
    }
    let hits = kb.search("signalements de tricheurs", Some(Lang::Fr), 3);
    assert_eq!(hits.first().map(|h| h.id.as_str()), Some("report-cheaters"));
}

#[test]
fn typos_are_tolerated() {
    let kb = sample_kb();
    let cases: &[(&str, Lang, &str)] = &[
        ("pasword", Lang::En, "password-reset"),
        ("forgot my passwrod", Lang::En, "password-reset"),
        ("refnud", Lang::En, "refunds"),
        ("maintenence", Lang::En, "server-maintenance"),
        ("subscribtion cancel", Lang::En, "subscriptions"),
        ("remboursment", Lang::Fr, "refunds"),
        ("mot de pase", Lang::Fr, "password-reset"),
        ("parentale controle", Lang::Fr, "parental-controls"),
    ];
    for (query, lang, expected) in cases {
        let hits = kb.search(query, Some(*lang), 3);
        assert!(
            hits.iter().any(|h| h.id == *expected),
            "{query}: {:?}",
            ids(&hits)
        );
    }
}

#[test]
fn exact_matches_rank_above_fuzzy_ones() {
    let kb = sample_kb();
    // "bans" is a real word (stemmed "ban"); "bane" is a typo of it. The exact query must
    // score higher than the corrected one for the same article.
    let exact = kb.search("ban appeal", Some(Lang::En), 1);
    let fuzzy = kb.search("bam apeal", Some(Lang::En), 1);
    assert_eq!(exact[0].id, "bans-and-appeals");
    assert_eq!(fuzzy[0].id, "bans-and-appeals");
    assert!(exact[0].score > fuzzy[0].score, "{exact:?} {fuzzy:?}");
}

#[test]
fn language_hint_prefers_the_users_language() {
    let kb = sample_kb();
    // "bug" and "discord" are used in both languages.
    let fr = kb.search("bug discord", Some(Lang::Fr), 3);
    let en = kb.search("bug discord", Some(Lang::En), 3);
    assert_eq!(
        fr.first().map(|h| h.language),
        Some(Lang::Fr),
        "{:?}",
        ids(&fr)
    );
    assert_eq!(
        en.first().map(|h| h.language),
        Some(Lang::En),
        "{:?}",
        ids(&en)
    );
    assert_eq!(fr[0].id, "reporting-bugs");
    assert_eq!(en[0].id, "reporting-bugs");
    // An article is suggested once, in the preferred language, even if both match.
    let mut seen = std::collections::HashSet::new();
    assert!(
        fr.iter().all(|h| seen.insert(h.id.clone())),
        "{:?}",
        ids(&fr)
    );
}

#[test]
fn language_hint_falls_back_to_the_other_language() {
    let kb = sample_kb();
    let hits = kb.search("twitch drops", Some(Lang::Fr), 3);
    assert_eq!(
        hits.first().map(|h| (h.id.as_str(), h.language)),
        Some(("twitch-drops", Lang::En)),
        "{:?}",
        ids(&hits)
    );
    let hits = kb.search("facturation opérateur sfr", Some(Lang::En), 3);
    assert_eq!(
        hits.first().map(|h| (h.id.as_str(), h.language)),
        Some(("carrier-billing", Lang::Fr)),
        "{:?}",
        ids(&hits)
    );
}

#[test]
fn no_hint_searches_both_languages() {
    let kb = sample_kb();
    let en = kb.search("delete my account", None, 3);
    let fr = kb.search("supprimer mon compte", None, 3);
    assert_eq!(
        en.first().map(|h| (h.id.as_str(), h.language)),
        Some(("delete-account", Lang::En))
    );
    assert_eq!(
        fr.first().map(|h| (h.id.as_str(), h.language)),
        Some(("delete-account", Lang::Fr))
    );
}

#[test]
fn chatter_and_gibberish_return_nothing() {
    let kb = sample_kb();
    for query in [
        "asdfgh",
        "ok",
        "thanks",
        "thank you!",
        "merci",
        "merci beaucoup",
        "ok cool",
        "lol",
        "hello",
        "salut",
        "bonjour",
        "hi there",
        "yes",
        "no",
        "oui",
        "non",
        "?",
        "...",
        "👍",
        "hmm ok",
        "zzzzzzzz",
        "qwertyuiop",
        "xkcd",
        "the",
        "le la les",
    ] {
        for hint in [Some(Lang::En), Some(Lang::Fr), None] {
            let hits = kb.search(query, hint, 3);
            assert!(hits.is_empty(), "{query:?} ({hint:?}) -> {:?}", ids(&hits));
        }
    }
}

#[test]
fn hostile_inputs_never_panic() {
    let kb = sample_kb();
    let huge = "password ".repeat(200_000);
    let long_word = "a".repeat(100_000);
    let many_words: String = (0..20_000).map(|i| format!("word{i} ")).collect();
    let inputs: Vec<String> = vec![
        String::new(),
        " ".into(),
        "\n\t\r".into(),
        "\"".into(),
        "\"password".into(),
        "title:password".into(),
        "body:\"reset\" AND (refund OR -ban)".into(),
        "*".into(),
        "pass*".into(),
        "-".into(),
        "(((".into(),
        ")".into(),
        "[1 TO 5]".into(),
        "password~2".into(),
        "^3".into(),
        "\\".into(),
        "'".into(),
        "NOT".into(),
        "AND OR NOT".into(),
        "\u{0}\u{1}\u{7f}".into(),
        "🔥🔥🔥 refund 🔥".into(),
        "👨‍👩‍👧‍👦".into(),
        "مرحبا كيف حالك".into(),
        "こんにちは パスワード".into(),
        "ｐａｓｓｗｏｒｄ".into(),
        "\u{202e}drowssap".into(),
        "é".repeat(10_000),
        huge,
        long_word,
        many_words,
    ];
    for input in &inputs {
        for limit in [0, 1, 3, usize::MAX] {
            let hits = kb.search(input, Some(Lang::En), limit);
            assert!(hits.len() <= limit.min(50));
        }
    }
    // A query full of syntax still finds the words in it.
    let hits = kb.search("title:\"refund\" (money) -back*", Some(Lang::En), 3);
    assert_eq!(hits.first().map(|h| h.id.as_str()), Some("refunds"));
}

#[test]
fn limit_is_respected() {
    let kb = sample_kb();
    assert!(kb.search("account", Some(Lang::En), 0).is_empty());
    assert!(
        kb.search("account password login email", Some(Lang::En), 1)
            .len()
            <= 1
    );
    assert!(
        kb.search("account password login email", Some(Lang::En), 2)
            .len()
            <= 2
    );
}

#[test]
fn search_is_usable_from_many_threads() {
    let kb = sample_kb();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let kb = kb.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    let hits = kb.search("refund", Some(Lang::En), 3);
                    assert_eq!(hits[0].id, "refunds");
                }
            });
        }
    });
}
