//! Building the in-RAM tantivy index from articles.
//!
//! Schema: each article is indexed only in its own language's fields (`title_en`, `tags_en`,
//! `body_en`, `all_en` with the English chain; the same `_fr` fields with the French chain;
//! `all_*` holds title, tags and body together, for whole-article document frequencies),
//! plus `vocab`, every word of the article folded but not stemmed, whose term dictionary
//! is the vocabulary typo correction searches. `ord` (a fast field) points back into the
//! article list, so hits never need the document store.

use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST};
use tantivy::{doc, Index, IndexWriter, ReloadPolicy, Searcher, TantivyDocument};

use crate::analysis::{self, FOLD_TOKENIZER};
use crate::article::Article;
use crate::lang::Lang;

/// Memory budget of the index writer; a larger corpus is flushed in several segments,
/// merged at the end.
const WRITER_MEMORY_BYTES: usize = 96 * 1024 * 1024;

/// The fields of one language.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LangFields {
    pub title: Field,
    pub tags: Field,
    pub body: Field,
    /// Title, tags and body together (doc frequencies only): gives the IDF of a stem over
    /// the whole article, whichever field it occurs in.
    pub all: Field,
}

/// All fields of the schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub ord: Field,
    pub vocab: Field,
    pub en: LangFields,
    pub fr: LangFields,
}

impl Fields {
    pub(crate) fn lang(&self, lang: Lang) -> &LangFields {
        match lang {
            Lang::En => &self.en,
            Lang::Fr => &self.fr,
        }
    }
}

/// A built, searchable index over a set of articles.
pub(crate) struct BuiltIndex {
    pub searcher: Searcher,
    pub fields: Fields,
    /// `doc_to_article[segment_ord][doc_id]` is the index of the article in the article list.
    pub doc_to_article: Vec<Vec<u32>>,
}

fn text_options(tokenizer: &str, record: IndexRecordOption) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(record)
            .set_fieldnorms(true),
    )
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let ord = builder.add_u64_field("ord", FAST);
    let vocab = builder.add_text_field(
        "vocab",
        text_options(FOLD_TOKENIZER, IndexRecordOption::Basic),
    );
    let mut lang_fields = |lang: Lang| {
        let tokenizer = analysis::tokenizer_name(lang);
        let opts = text_options(tokenizer, IndexRecordOption::WithFreqs);
        LangFields {
            title: builder.add_text_field(&format!("title_{lang}"), opts.clone()),
            tags: builder.add_text_field(&format!("tags_{lang}"), opts.clone()),
            body: builder.add_text_field(&format!("body_{lang}"), opts),
            all: builder.add_text_field(
                &format!("all_{lang}"),
                text_options(tokenizer, IndexRecordOption::Basic),
            ),
        }
    };
    let en = lang_fields(Lang::En);
    let fr = lang_fields(Lang::Fr);
    (builder.build(), Fields { ord, vocab, en, fr })
}

/// Indexes `articles` in RAM, merges into one segment, and opens a searcher.
pub(crate) fn build(articles: &[Article]) -> tantivy::Result<BuiltIndex> {
    let (schema, fields) = schema();
    let index = Index::create_in_ram(schema);
    for lang in Lang::ALL {
        index.tokenizers().register(
            analysis::tokenizer_name(lang),
            analysis::language_analyzer(lang),
        );
    }
    index
        .tokenizers()
        .register(FOLD_TOKENIZER, analysis::fold_analyzer());

    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?;
    for (ord, article) in articles.iter().enumerate() {
        let lf = fields.lang(article.lang);
        let tags = article.tags.join(" , ");
        let vocab_text = format!(
            "{}\n{}\n{}\n{}",
            article.title, tags, article.summary, article.body
        );
        let body = format!("{}\n{}", article.summary, article.body);
        writer.add_document(doc!(
            fields.ord => ord as u64,
            fields.vocab => vocab_text.clone(),
            lf.title => article.title.clone(),
            lf.tags => tags,
            lf.body => body,
            lf.all => vocab_text.clone(),
        ))?;
    }
    writer.commit()?;
    let segments = index.searchable_segment_ids()?;
    if segments.len() > 1 {
        writer.merge(&segments).wait()?;
    }
    writer.wait_merging_threads()?;

    let reader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    reader.reload()?;
    let searcher = reader.searcher();

    let mut doc_to_article = Vec::with_capacity(searcher.segment_readers().len());
    for segment in searcher.segment_readers() {
        let column = segment.fast_fields().u64("ord")?;
        let mapping = (0..segment.max_doc())
            .map(|doc| {
                column
                    .first(doc)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(u32::MAX)
            })
            .collect();
        doc_to_article.push(mapping);
    }
    Ok(BuiltIndex {
        searcher,
        fields,
        doc_to_article,
    })
}
