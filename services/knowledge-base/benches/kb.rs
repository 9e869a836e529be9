//! Knowledge-base benchmark: relevance on the sample articles, then index build time and
//! query throughput on a generated 10,000-article corpus.
//!
//! `cargo bench -p flexcord-kb --bench kb` prints:
//! - `BENCH kb.top3_accuracy <pct> %`        labelled questions, sample articles
//! - `BENCH kb.index_build_s <s> s`          load + index of 10,000 generated article files
//! - `BENCH kb.queries_per_s <n> queries/s`  all cores, mixed queries, fixed duration
//! - `BENCH kb.query_p50_us` / `kb.query_p99_us`  single-thread latency of the same mix
//!
//! Environment: `KB_BENCH_ARTICLES` (default 10000), `KB_BENCH_SECONDS` (default 5).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flexcord_kb::{lang, KnowledgeBase, Lang};
use serde::Deserialize;

/// splitmix64: small, deterministic, good enough for corpus generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Deserialize)]
struct EvalFile {
    question: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    text: String,
    language: String,
    expect: String,
    expect_language: Option<String>,
    hint: Option<String>,
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_questions() -> Vec<Question> {
    let text = std::fs::read_to_string(manifest_dir().join("eval/questions.toml")).unwrap();
    toml::from_str::<EvalFile>(&text).unwrap().question
}

fn relevance(questions: &[Question]) -> f64 {
    let kb = KnowledgeBase::load(manifest_dir().join("articles")).unwrap();
    let mut ok = 0;
    for q in questions {
        let language: Lang = q.language.parse().unwrap();
        let expected: Lang = q
            .expect_language
            .as_deref()
            .map_or(language, |l| l.parse().unwrap());
        let hint = match q.hint.as_deref() {
            Some("guess") => lang::guess(&q.text),
            _ => Some(language),
        };
        if kb
            .search(&q.text, hint, 3)
            .iter()
            .any(|h| h.id == q.expect && h.language == expected)
        {
            ok += 1;
        }
    }
    100.0 * ok as f64 / questions.len() as f64
}

/// Words of the sample articles, per language: (title+tag words, body word stream).
struct Seed {
    lang: Lang,
    head_words: Vec<String>,
    body_words: Vec<String>,
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_seeds() -> Vec<Seed> {
    let mut seeds = Vec::new();
    for lang in Lang::ALL {
        let dir = manifest_dir().join("articles").join(lang.code());
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut parts = text.splitn(3, "---\n");
            parts.next();
            let front = parts.next().unwrap_or_default();
            let body = parts.next().unwrap_or_default();
            let head: String = front
                .lines()
                .filter(|l| l.starts_with("title:") || l.starts_with("tags:"))
                .collect::<Vec<_>>()
                .join(" ");
            let mut head_words = words(&head);
            head_words.retain(|w| w != "title" && w != "tags");
            seeds.push(Seed {
                lang,
                head_words,
                body_words: words(body),
            });
        }
    }
    seeds
}

/// A made-up word (item, hero or place name), from syllables: grows the vocabulary the way
/// a real game's content does.
fn made_up_word(rng: &mut Rng) -> String {
    const SYLLABLES: &[&str] = &[
        "ka", "zo", "ri", "lune", "mor", "tha", "vel", "qua", "dra", "sil", "on", "ix", "bel",
        "gar", "nis", "tor", "ela", "fen", "ur", "sta",
    ];
    let n = rng.range(2, 4);
    (0..n).map(|_| *rng.pick(SYLLABLES)).collect()
}

fn typo(word: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 5 {
        return word.to_owned();
    }
    let i = rng.range(1, chars.len() - 2);
    match rng.below(4) {
        0 => {
            chars.remove(i);
        }
        1 => chars.swap(i, i + 1),
        2 => chars.insert(i, chars[i]),
        _ => chars[i] = *rng.pick(&['a', 'e', 'i', 'o', 'r', 's', 't']),
    }
    chars.into_iter().collect()
}

/// Writes `count` generated articles under `dir/{en,fr}/`, returns query material.
fn generate_corpus(dir: &Path, count: usize, rng: &mut Rng) -> Vec<(Lang, Vec<String>)> {
    let seeds = read_seeds();
    let rare: Vec<String> = (0..20_000).map(|_| made_up_word(rng)).collect();
    for lang in Lang::ALL {
        std::fs::create_dir_all(dir.join(lang.code())).unwrap();
    }
    let mut material = Vec::with_capacity(count);
    for n in 0..count {
        let seed = rng.pick(&seeds);
        let other = rng.pick(&seeds);
        let mut title_words: Vec<String> = (0..rng.range(3, 7))
            .map(|_| rng.pick(&seed.head_words).clone())
            .collect();
        if rng.chance(40) {
            title_words.push(rng.pick(&rare).clone());
        }
        let tags: Vec<String> = (0..rng.range(2, 8))
            .map(|_| {
                if rng.chance(20) {
                    rng.pick(&rare).clone()
                } else {
                    rng.pick(&seed.head_words).to_lowercase()
                }
            })
            .collect();
        // Body: runs of consecutive words from the seed (keeps real co-occurrence), some runs
        // from another article (possibly the other language), sprinkled with rare words.
        let target = match rng.below(10) {
            0..=3 => rng.range(40, 150),
            4..=7 => rng.range(150, 400),
            _ => rng.range(400, 1200),
        };
        let mut body = String::new();
        let mut body_len = 0;
        while body_len < target {
            let source = if rng.chance(80) { seed } else { other };
            let len = source.body_words.len().max(1);
            let start = rng.below(len);
            let run = rng.range(5, 25);
            for w in source.body_words.iter().cycle().skip(start).take(run) {
                body.push_str(w);
                body.push(' ');
                body_len += 1;
                if rng.chance(3) {
                    let word: &String = rng.pick(&rare);
                    body.push_str(word);
                    body.push(' ');
                    body_len += 1;
                }
            }
            if rng.chance(30) {
                body.push_str(".\n\n");
            }
        }
        let id = format!("gen-{n:05}");
        let mut text = String::new();
        let _ = write!(
            text,
            "---\nid: {id}\ntitle: \"{}\"\nlanguage: {}\ntags: [{}]\nurl: https://help.example/{}/{id}\n---\n{body}\n",
            title_words.join(" ").replace('"', ""),
            seed.lang,
            tags.join(", ").replace(['[', ']', '"', '\''], ""),
            seed.lang,
        );
        std::fs::write(dir.join(seed.lang.code()).join(format!("{id}.md")), text).unwrap();
        let mut query_words = title_words;
        query_words.extend(tags);
        query_words.extend((0..4).map(|_| rng.pick(&seed.body_words).clone()));
        material.push((seed.lang, query_words));
    }
    material
}

fn build_queries(
    questions: &[Question],
    material: &[(Lang, Vec<String>)],
    rng: &mut Rng,
) -> Vec<(String, Option<Lang>)> {
    let mut queries: Vec<(String, Option<Lang>)> = Vec::new();
    for q in questions {
        queries.push((q.text.clone(), q.language.parse().ok()));
    }
    // Generated queries: 2-6 words of one article, ~30 % with a typo, mixed hints.
    for _ in 0..(questions.len() * 4) {
        let (lang, words) = rng.pick(material);
        let mut query = Vec::new();
        for _ in 0..rng.range(2, 6) {
            let w = rng.pick(words).to_lowercase();
            query.push(if rng.chance(30) { typo(&w, rng) } else { w });
        }
        let hint = match rng.below(10) {
            0..=6 => Some(*lang),
            7 => Some(if *lang == Lang::En {
                Lang::Fr
            } else {
                Lang::En
            }),
            _ => None,
        };
        queries.push((query.join(" "), hint));
    }
    for chatter in ["ok", "thanks", "merci", "asdfgh", "lol", "salut ça va"] {
        queries.push((chatter.to_owned(), None));
    }
    queries
}

fn main() {
    let count: usize = std::env::var("KB_BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let seconds: u64 = std::env::var("KB_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);

    let questions = load_questions();
    let accuracy = relevance(&questions);
    println!("BENCH kb.top3_accuracy {accuracy:.1} %");

    let mut rng = Rng(0x5eed_f1ec_c0de_0001);
    let tmp = tempfile::tempdir().unwrap();
    let material = generate_corpus(tmp.path(), count, &mut rng);

    let start = Instant::now();
    let kb = KnowledgeBase::load(tmp.path()).unwrap();
    let build = start.elapsed();
    let status = kb.status();
    assert_eq!(
        status.articles,
        count,
        "skipped: {:?}",
        status.skipped.first()
    );
    println!(
        "corpus: {count} articles ({} en, {} fr)",
        status.articles_en, status.articles_fr
    );
    println!("BENCH kb.index_build_s {:.3} s", build.as_secs_f64());

    let queries = build_queries(&questions, &material, &mut rng);
    let distinct: BTreeSet<&str> = queries.iter().map(|(q, _)| q.as_str()).collect();
    println!("queries: {} ({} distinct)", queries.len(), distinct.len());

    // Single-thread latency over the whole mix (also warms up).
    let mut latencies: Vec<Duration> = Vec::with_capacity(queries.len() * 2);
    let mut slowest: Vec<(Duration, &str)> = Vec::new();
    let mut returned = 0usize;
    for round in 0..2 {
        for (q, hint) in &queries {
            let t = Instant::now();
            let hits = kb.search(q, *hint, 3);
            let took = t.elapsed();
            latencies.push(took);
            returned += usize::from(!hits.is_empty());
            if round == 1 {
                slowest.push((took, q));
            }
        }
    }
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    for (took, q) in slowest.iter().take(5) {
        println!("slow query: {:>8.1} us {q:?}", took.as_secs_f64() * 1e6);
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    println!(
        "queries with at least one hit: {:.1} %",
        100.0 * returned as f64 / latencies.len() as f64
    );
    println!("BENCH kb.query_p50_us {:.1} us", pct(0.50));
    println!("BENCH kb.query_p99_us {:.1} us", pct(0.99));

    // Throughput: one thread per core, each walking the mix from its own offset.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let duration = Duration::from_secs(seconds);
    let start = Instant::now();
    let total: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let kb = kb.clone();
                let queries = &queries;
                scope.spawn(move || {
                    let mut done = 0usize;
                    let mut i = t * queries.len() / threads;
                    while start.elapsed() < duration {
                        for _ in 0..32 {
                            let (q, hint) = &queries[i % queries.len()];
                            std::hint::black_box(kb.search(q, *hint, 3));
                            i += 1;
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let elapsed = start.elapsed().as_secs_f64();
    println!("threads: {threads}, queries: {total}, elapsed: {elapsed:.2} s");
    println!(
        "BENCH kb.queries_per_s {:.1} queries/s",
        total as f64 / elapsed
    );
}
