#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Relevance check against the labelled questions in `eval/questions.toml`.
//!
//! Prints every miss and `BENCH kb.top3_accuracy <pct> %`; fails below 90 %.

mod common;

use flexcord_kb::{lang, Lang};
use serde::Deserialize;

#[derive(Deserialize)]
struct EvalFile {
    question: Vec<Question>,
    garbage: Vec<Garbage>,
}

#[derive(Deserialize)]
struct Question {
    text: String,
    language: String,
    expect: String,
    expect_language: Option<String>,
    hint: Option<String>,
}

#[derive(Deserialize)]
struct Garbage {
    text: String,
    language: String,
}

fn load_eval() -> EvalFile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/questions.toml");
    toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn top3_accuracy_is_at_least_90_percent() {
    let kb = common::sample_kb();
    let eval = load_eval();
    assert!(eval.question.len() >= 40);
    let mut hits_in_top3 = 0;
    let mut misses = Vec::new();
    for q in &eval.question {
        let language: Lang = q.language.parse().unwrap();
        let expected_lang: Lang = q
            .expect_language
            .as_deref()
            .map_or(language, |l| l.parse().unwrap());
        let hint = match q.hint.as_deref() {
            None | Some("locale") => Some(language),
            Some("guess") => lang::guess(&q.text),
            Some(other) => panic!("unknown hint mode {other}"),
        };
        let hits = kb.search(&q.text, hint, 3);
        if hits
            .iter()
            .any(|h| h.id == q.expect && h.language == expected_lang)
        {
            hits_in_top3 += 1;
        } else {
            let got: Vec<String> = hits
                .iter()
                .map(|h| format!("{}:{} ({:.2})", h.language, h.id, h.score))
                .collect();
            misses.push(format!(
                "  MISS [{}] {:?}: expected {}:{}, got {:?}",
                q.language, q.text, expected_lang, q.expect, got
            ));
        }
    }
    let total = eval.question.len();
    let pct = 100.0 * hits_in_top3 as f64 / total as f64;
    println!("top-3 accuracy: {hits_in_top3}/{total}");
    for miss in &misses {
        println!("{miss}");
    }
    println!("BENCH kb.top3_accuracy {pct:.1} %");
    assert!(pct >= 90.0, "top-3 accuracy {pct:.1} % is below 90 %");
}

#[test]
fn garbage_messages_return_nothing() {
    let kb = common::sample_kb();
    let eval = load_eval();
    let mut failures = Vec::new();
    for g in &eval.garbage {
        let language: Lang = g.language.parse().unwrap();
        for hint in [Some(language), None] {
            let hits = kb.search(&g.text, hint, 3);
            if !hits.is_empty() {
                failures.push(format!(
                    "{:?} ({hint:?}) -> {:?}",
                    g.text,
                    common::ids(&hits)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "garbage matched: {failures:#?}");
}
