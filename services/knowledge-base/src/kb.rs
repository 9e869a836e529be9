//! The knowledge base handle: loading, searching, reloading and watching.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tantivy::tokenizer::TextAnalyzer;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::analysis;
use crate::article::{self, Article, FileStamp};
use crate::index;
use crate::lang::Lang;
use crate::search::SearchIndex;
use crate::{Hit, KbError, KbStatus, SkippedFile};

/// A searchable set of articles loaded from a directory.
///
/// Cheap to clone (a handle on shared state) and safe to use from many threads. Searches run
/// against an immutable index generation; [`reload`](Self::reload) builds the next generation
/// on the side and swaps it in at once, so a search never waits for a rebuild and never sees
/// a half-built index.
#[derive(Clone)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status();
        f.debug_struct("KnowledgeBase")
            .field("dir", &self.inner.dir)
            .field("generation", &status.generation)
            .field("articles", &status.articles)
            .finish()
    }
}

struct Inner {
    dir: PathBuf,
    current: RwLock<Arc<Generation>>,
    /// Serialises rebuilds (a manual reload racing the watcher).
    rebuilding: Mutex<()>,
}

/// One immutable index generation.
struct Generation {
    number: u64,
    stamps: Vec<FileStamp>,
    articles: Vec<Article>,
    skipped: Vec<SkippedFile>,
    searcher: tantivy::Searcher,
    fields: index::Fields,
    doc_to_article: Vec<Vec<u32>>,
    analyzers: Vec<(Lang, TextAnalyzer)>,
}

impl KnowledgeBase {
    /// Loads every `*.md` article under `dir` (searched recursively) and indexes them.
    ///
    /// Invalid article files are skipped with a warning naming the file and the reason (also
    /// listed in [`status`](Self::status)); they never stop the others from loading. Fails
    /// only if the directory itself cannot be read or indexing fails.
    pub fn load(dir: impl Into<PathBuf>) -> Result<Self, KbError> {
        let dir = dir.into();
        let generation = build_generation(&dir, 1)?;
        log_generation(&dir, &generation);
        Ok(KnowledgeBase {
            inner: Arc::new(Inner {
                dir,
                current: RwLock::new(Arc::new(generation)),
                rebuilding: Mutex::new(()),
            }),
        })
    }

    /// The directory articles are loaded from.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Searches the articles for a user's message.
    ///
    /// Returns at most `limit` hits (capped at 50), best first; often fewer, and none when
    /// nothing in the message is specific enough ("ok", "thanks", gibberish). `language_hint`
    /// is the user's language when known: articles in that language are preferred, the other
    /// language still shows when it matches clearly better. Any input is accepted: the text is
    /// never parsed as query syntax, and this never panics or fails (an internal error is
    /// logged at debug level and gives no hits).
    pub fn search(&self, text: &str, language_hint: Option<Lang>, limit: usize) -> Vec<Hit> {
        let generation = self.inner.current();
        SearchIndex {
            searcher: &generation.searcher,
            fields: &generation.fields,
            articles: &generation.articles,
            doc_to_article: &generation.doc_to_article,
            analyzers: &generation.analyzers,
        }
        .search(text, language_hint, limit)
    }

    /// Rebuilds the index from the directory now and swaps it in.
    ///
    /// Blocking (it reads files and indexes): from async code, call it inside
    /// `tokio::task::spawn_blocking`. On error the current index stays in service.
    pub fn reload(&self) -> Result<KbStatus, KbError> {
        self.inner.rebuild(true).map(|_| self.status())
    }

    /// Watches the directory and reloads when an article file is added, changed or removed.
    ///
    /// Polls file sizes and modification times every `interval` (portable, no OS watcher);
    /// rebuilds run on tokio's blocking pool. Returns when `shutdown` is cancelled. Spawn it:
    /// `tokio::spawn({ let kb = kb.clone(); async move { kb.watch(interval, token).await } })`.
    pub async fn watch(&self, interval: Duration, shutdown: CancellationToken) {
        let interval = interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await; // the first tick is immediate; the index was just built
        info!(dir = %self.inner.dir.display(), ?interval, "Watching knowledge-base articles.");
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let inner = Arc::clone(&self.inner);
            match tokio::task::spawn_blocking(move || inner.rebuild(false)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => warn!(
                    dir = %self.inner.dir.display(), %error,
                    "Knowledge-base reload failed; keeping the previous articles."
                ),
                Err(error) => warn!(%error, "Knowledge-base reload task failed."),
            }
        }
        debug!(dir = %self.inner.dir.display(), "Stopped watching knowledge-base articles.");
    }

    /// What is currently loaded.
    pub fn status(&self) -> KbStatus {
        let generation = self.inner.current();
        KbStatus {
            generation: generation.number,
            articles: generation.articles.len(),
            articles_en: count(&generation.articles, Lang::En),
            articles_fr: count(&generation.articles, Lang::Fr),
            skipped: generation.skipped.clone(),
        }
    }
}

fn count(articles: &[Article], lang: Lang) -> usize {
    articles.iter().filter(|a| a.lang == lang).count()
}

impl Inner {
    fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Rebuilds (if `force` or the files changed). Returns whether a new generation was
    /// swapped in.
    fn rebuild(&self, force: bool) -> Result<bool, KbError> {
        let _guard = self
            .rebuilding
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        if !force {
            let stamps = article::scan_dir(&self.dir).map_err(|source| KbError::Dir {
                path: self.dir.clone(),
                source,
            })?;
            if stamps == current.stamps {
                return Ok(false);
            }
        }
        let generation = build_generation(&self.dir, current.number + 1)?;
        log_generation(&self.dir, &generation);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(generation);
        Ok(true)
    }
}

fn log_generation(dir: &Path, generation: &Generation) {
    info!(
        dir = %dir.display(),
        generation = generation.number,
        articles = generation.articles.len(),
        skipped = generation.skipped.len(),
        "Knowledge base loaded."
    );
    if generation.articles.is_empty() {
        warn!(dir = %dir.display(), "Knowledge base has no valid article.");
    }
}

fn build_generation(dir: &Path, number: u64) -> Result<Generation, KbError> {
    // Stamp first, read second: a file changed while we read it has a newer stamp than the
    // one recorded, so the watcher rebuilds again.
    let stamps = article::scan_dir(dir).map_err(|source| KbError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut articles: Vec<Article> = Vec::with_capacity(stamps.len());
    let mut skipped = Vec::new();
    let mut seen: HashMap<(String, Lang), PathBuf> = HashMap::new();
    for stamp in &stamps {
        let result = article::read_article(stamp).and_then(|article| {
            match seen.get(&(article.id.clone(), article.lang)) {
                Some(first) => Err(format!(
                    "duplicate id `{}` for language {} (already used by {})",
                    article.id,
                    article.lang,
                    first.display()
                )),
                None => Ok(article),
            }
        });
        match result {
            Ok(article) => {
                seen.insert((article.id.clone(), article.lang), stamp.path.clone());
                articles.push(article);
            }
            Err(reason) => {
                warn!(path = %stamp.path.display(), %reason, "Skipped invalid knowledge-base article.");
                skipped.push(SkippedFile {
                    path: stamp.path.clone(),
                    reason,
                });
            }
        }
    }
    let built = index::build(&articles).map_err(KbError::Index)?;
    Ok(Generation {
        number,
        stamps,
        articles,
        skipped,
        searcher: built.searcher,
        fields: built.fields,
        doc_to_article: built.doc_to_article,
        analyzers: Lang::ALL
            .iter()
            .map(|&lang| (lang, analysis::language_analyzer(lang)))
            .collect(),
    })
}
