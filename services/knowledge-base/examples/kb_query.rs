//! Prints the hits for each query given on the command line (or read line by line from
//! stdin): `cargo run -p flexcord-kb --example kb_query -- [--lang en|fr] "query" ...`.

use flexcord_kb::{intent, lang, KnowledgeBase, Lang};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::var("KB_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/articles").to_owned());
    let kb = KnowledgeBase::load(dir)?;
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut hint: Option<Lang> = None;
    if args.first().map(String::as_str) == Some("--lang") && args.len() >= 2 {
        hint = Lang::from_code(&args[1]);
        args.drain(..2);
    }
    if args.is_empty() {
        args = std::io::stdin().lines().map_while(Result::ok).collect();
    }
    for query in args {
        let hint = hint.or_else(|| lang::guess(&query));
        println!(
            "{query:?} (hint {hint:?}, wants_human {})",
            intent::wants_human(&query)
        );
        for hit in kb.search(&query, hint, 3) {
            println!(
                "  {:6.2} {}:{} — {}",
                hit.score, hit.language, hit.id, hit.title
            );
        }
    }
    Ok(())
}
