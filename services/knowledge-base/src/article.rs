//! Article files: front matter parsing, validation, Markdown to plain text, and directory scans.
//!
//! An article is a UTF-8 Markdown file that starts with a front matter block in a small,
//! flat subset of YAML:
//!
//! ```text
//! ---
//! id: password-reset                  # optional, defaults to the file name; [a-z0-9-]
//! title: Reset your password          # required
//! summary: One line shown under the title in bot answers.   # optional
//! language: en                        # required: en or fr (locales like fr-CA accepted)
//! tags: [password, reset, login]      # optional; also "tags: a, b" or a "- item" block
//! url: https://help.example/en/password-reset   # optional, http(s)
//! ---
//! # Markdown body...
//! ```
//!
//! Values may be plain, `"double quoted"` (with `\"`, `\\`, `\n` escapes) or `'single quoted'`
//! (`''` for a quote). A ` #` starts a comment in plain values. Unknown keys are ignored so
//! that the format can grow; a repeated key is an error.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::lang::Lang;

/// Largest article file accepted, in bytes.
pub(crate) const MAX_FILE_BYTES: u64 = 256 * 1024;
const MAX_TITLE_CHARS: usize = 200;
const MAX_SUMMARY_CHARS: usize = 300;
const DERIVED_SUMMARY_CHARS: usize = 200;
const MAX_ID_LEN: usize = 80;
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 60;
const MAX_URL_LEN: usize = 2048;
const MAX_SCAN_DEPTH: usize = 4;

/// A parsed, validated article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Article {
    pub id: String,
    pub lang: Lang,
    pub title: String,
    pub summary: String,
    pub url: Option<String>,
    pub tags: Vec<String>,
    /// The body as plain text (Markdown syntax and URLs removed), for indexing.
    pub body: String,
}

/// Why an article file was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ArticleError {
    #[error("missing front matter: the file must start with a `---` line")]
    MissingFrontMatter,
    #[error("front matter is not closed by a `---` line")]
    UnclosedFrontMatter,
    #[error("front matter line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("front matter key `{0}` appears twice")]
    DuplicateKey(String),
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    #[error("invalid field `{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> ArticleError {
    ArticleError::Invalid {
        field,
        message: message.into(),
    }
}

#[derive(Debug, Clone)]
enum Value {
    Scalar(String),
    List(Vec<String>),
}

/// Parses and validates an article. `file_stem` provides the default id.
pub(crate) fn parse_article(file_stem: &str, text: &str) -> Result<Article, ArticleError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (fields, body) = split_front_matter(text)?;

    let scalar = |key: &'static str| -> Result<Option<String>, ArticleError> {
        match fields.get(key) {
            None => Ok(None),
            Some(Value::Scalar(s)) => Ok(Some(s.trim().to_owned()).filter(|s| !s.is_empty())),
            Some(Value::List(_)) => Err(invalid(key, "expected a single value, found a list")),
        }
    };

    let title = scalar("title")?.ok_or(ArticleError::Missing("title"))?;
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(invalid(
            "title",
            format!("longer than {MAX_TITLE_CHARS} characters"),
        ));
    }

    let language = match scalar("language")? {
        Some(l) => Some(l),
        None => scalar("lang")?,
    }
    .ok_or(ArticleError::Missing("language"))?;
    let lang = Lang::from_code(&language).ok_or_else(|| {
        invalid(
            "language",
            format!(
                "unsupported language `{}` (expected en or fr)",
                language.chars().take(20).collect::<String>()
            ),
        )
    })?;

    let id = match scalar("id")? {
        Some(id) => id,
        None => file_stem.to_owned(),
    };
    validate_id(&id)?;

    let url = scalar("url")?;
    if let Some(url) = &url {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("https://") || lower.starts_with("http://"))
            || url.len() > MAX_URL_LEN
            || url.chars().any(char::is_whitespace)
        {
            return Err(invalid("url", "expected an http(s) URL without spaces"));
        }
    }

    let tags = match fields.get("tags") {
        None => Vec::new(),
        Some(Value::List(items)) => items.clone(),
        Some(Value::Scalar(s)) => s.split(',').map(|t| t.trim().to_owned()).collect(),
    };
    let tags: Vec<String> = tags.into_iter().filter(|t| !t.is_empty()).collect();
    if tags.len() > MAX_TAGS {
        return Err(invalid("tags", format!("more than {MAX_TAGS} tags")));
    }
    if tags.iter().any(|t| t.chars().count() > MAX_TAG_CHARS) {
        return Err(invalid(
            "tags",
            format!("a tag is longer than {MAX_TAG_CHARS} characters"),
        ));
    }

    let body = markdown_to_text(body);
    let summary = match scalar("summary")? {
        Some(s) if s.chars().count() > MAX_SUMMARY_CHARS => {
            return Err(invalid(
                "summary",
                format!("longer than {MAX_SUMMARY_CHARS} characters"),
            ))
        }
        Some(s) => s,
        None => derive_summary(&body),
    };

    Ok(Article {
        id,
        lang,
        title,
        summary,
        url,
        tags,
        body,
    })
}

fn validate_id(id: &str) -> Result<(), ArticleError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "id",
            format!(
                "`{}` is not a slug (lowercase a-z, 0-9 and '-', at most {MAX_ID_LEN} chars)",
                id.chars().take(40).collect::<String>()
            ),
        ))
    }
}

fn split_front_matter(text: &str) -> Result<(HashMap<String, Value>, &str), ArticleError> {
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(first) if first.trim_end() == "---" => {}
        _ => return Err(ArticleError::MissingFrontMatter),
    }
    let mut consumed = text.split_inclusive('\n').next().map_or(0, str::len);
    let mut fields: HashMap<String, Value> = HashMap::new();
    let mut open_list: Option<String> = None;
    for (index, raw_line) in lines.enumerate() {
        let line_no = index + 2;
        consumed += raw_line.len();
        let line = raw_line.trim_end_matches(['\n', '\r']);
        let trimmed = line.trim();
        if trimmed == "---" || trimmed == "..." {
            return Ok((fields, &text[consumed..]));
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(item) =
            trimmed
                .strip_prefix("- ")
                .or(if trimmed == "-" { Some("") } else { None })
        {
            let Some(key) = &open_list else {
                return Err(ArticleError::Syntax {
                    line: line_no,
                    message: "list item outside of a list".to_owned(),
                });
            };
            let item = parse_scalar(item).map_err(|message| ArticleError::Syntax {
                line: line_no,
                message,
            })?;
            if let Some(Value::List(items)) = fields.get_mut(key) {
                items.push(item);
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            return Err(ArticleError::Syntax {
                line: line_no,
                message: "unexpected indentation (nested values are not supported)".to_owned(),
            });
        }
        let Some((key, rest)) = split_key(line) else {
            return Err(ArticleError::Syntax {
                line: line_no,
                message: "expected `key: value`".to_owned(),
            });
        };
        let key = key.to_ascii_lowercase();
        if fields.contains_key(&key) {
            return Err(ArticleError::DuplicateKey(key));
        }
        let rest = rest.trim();
        open_list = None;
        let value = if rest.is_empty() || rest.starts_with('#') {
            open_list = Some(key.clone());
            Value::List(Vec::new())
        } else if rest.starts_with('[') {
            Value::List(
                parse_inline_list(rest).map_err(|message| ArticleError::Syntax {
                    line: line_no,
                    message,
                })?,
            )
        } else {
            Value::Scalar(parse_scalar(rest).map_err(|message| ArticleError::Syntax {
                line: line_no,
                message,
            })?)
        };
        fields.insert(key, value);
    }
    Err(ArticleError::UnclosedFrontMatter)
}

/// Splits `key: rest`; the key is `[A-Za-z_][A-Za-z0-9_-]*` and the colon is followed by a
/// space or the end of the line.
fn split_key(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let (key, rest) = (&line[..colon], &line[colon + 1..]);
    let mut chars = key.chars();
    let first = chars.next()?;
    let key_ok = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let sep_ok = rest.is_empty() || rest.starts_with([' ', '\t']);
    (key_ok && sep_ok).then_some((key, rest))
}

/// Parses one scalar: quoted (with escapes) or plain (with ` #` comments stripped).
fn parse_scalar(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('"') {
        let (value, rest) = parse_double_quoted(inner)?;
        return check_trailing(value, rest);
    }
    if let Some(inner) = raw.strip_prefix('\'') {
        let (value, rest) = parse_single_quoted(inner)?;
        return check_trailing(value, rest);
    }
    let value = match raw.find(" #") {
        Some(pos) => &raw[..pos],
        None => raw,
    };
    Ok(value.trim().to_owned())
}

fn check_trailing(value: String, rest: &str) -> Result<String, String> {
    let rest = rest.trim();
    if rest.is_empty() || rest.starts_with('#') {
        Ok(value)
    } else {
        Err("unexpected text after a quoted value".to_owned())
    }
}

fn parse_double_quoted(inner: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &inner[i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => out.push(other),
                None => break,
            },
            other => out.push(other),
        }
    }
    Err("unterminated double-quoted value".to_owned())
}

fn parse_single_quoted(inner: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if let Some((_, '\'')) = chars.peek() {
                out.push('\'');
                chars.next();
                continue;
            }
            return Ok((out, &inner[i + 1..]));
        }
        out.push(c);
    }
    Err("unterminated single-quoted value".to_owned())
}

/// Parses `[a, "b, c", 'd']`.
fn parse_inline_list(raw: &str) -> Result<Vec<String>, String> {
    let inner = raw.strip_prefix('[').unwrap_or(raw);
    let mut items = Vec::new();
    let mut rest = inner.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            check_trailing(String::new(), after)?;
            return Ok(items);
        }
        let (item, after) = if let Some(q) = rest.strip_prefix('"') {
            parse_double_quoted(q)?
        } else if let Some(q) = rest.strip_prefix('\'') {
            parse_single_quoted(q)?
        } else {
            let end = rest
                .find([',', ']'])
                .ok_or_else(|| "unterminated list (missing `]`)".to_owned())?;
            (rest[..end].trim().to_owned(), &rest[end..])
        };
        items.push(item);
        let after = after.trim_start();
        rest = if let Some(next) = after.strip_prefix(',') {
            next.trim_start()
        } else if after.starts_with(']') {
            after
        } else {
            return Err("expected `,` or `]` in list".to_owned());
        };
    }
}

/// Turns Markdown into plain text for indexing: drops heading/list/quote markers, emphasis,
/// code ticks, link targets, bare URLs, e-mail addresses and domain names.
pub(crate) fn markdown_to_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut in_code_block = false;
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block || trimmed.is_empty() {
            if !out.ends_with("\n\n") && !out.is_empty() {
                out.push('\n');
            }
            continue;
        }
        let line = strip_links(trimmed);
        let line = line.trim_start_matches(['#', '>', ' ']);
        for word in line.split_whitespace() {
            if looks_like_address(word) {
                continue;
            }
            let cleaned: String = word
                .chars()
                .filter(|c| !matches!(c, '*' | '`' | '_' | '~'))
                .collect();
            if cleaned.is_empty() || cleaned == "-" || cleaned == "+" {
                continue;
            }
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            out.push_str(&cleaned);
        }
        out.push('\n');
    }
    out.trim().to_owned()
}

/// Replaces `[text](target)` and `![alt](target)` with `text` / `alt`.
fn strip_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let Some(close_rel) = rest[open..].find("](") else {
            break;
        };
        let close = open + close_rel;
        let Some(end_rel) = rest[close + 2..].find(')') else {
            break;
        };
        let end = close + 2 + end_rel;
        let before = rest[..open].strip_suffix('!').unwrap_or(&rest[..open]);
        out.push_str(before);
        out.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn looks_like_address(word: &str) -> bool {
    if word.contains("://") || word.contains('@') {
        return true;
    }
    // a dot between two letters, as in "play.google.com" or "starfall.example"
    let chars: Vec<char> = word.chars().collect();
    chars
        .windows(3)
        .any(|w| w[0].is_alphabetic() && w[1] == '.' && w[2].is_alphabetic())
}

/// First sentence of the first paragraph that is not a heading, at most
/// [`DERIVED_SUMMARY_CHARS`] characters.
fn derive_summary(body_text: &str) -> String {
    let paragraph = body_text
        .split("\n\n")
        .map(str::trim)
        .find(|p| !p.is_empty() && p.split_whitespace().count() > 3);
    let Some(paragraph) = paragraph else {
        return String::new();
    };
    let flat = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence_end = flat
        .char_indices()
        .find(|(i, c)| matches!(c, '.' | '!' | '?') && flat[i + c.len_utf8()..].starts_with(' '))
        .map(|(i, c)| i + c.len_utf8());
    let sentence = sentence_end.map_or(flat.as_str(), |end| &flat[..end]);
    if sentence.chars().count() <= DERIVED_SUMMARY_CHARS {
        return sentence.to_owned();
    }
    let mut cut: String = sentence.chars().take(DERIVED_SUMMARY_CHARS).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    cut.push('…');
    cut
}

/// One `.md` file found in the articles directory, with what identifies its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStamp {
    pub path: PathBuf,
    pub len: u64,
    pub modified: Option<SystemTime>,
}

/// Lists the `.md` files under `dir` (recursively, skipping hidden entries), sorted by path.
pub(crate) fn scan_dir(dir: &Path) -> std::io::Result<Vec<FileStamp>> {
    let mut out = Vec::new();
    scan_into(dir, 0, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn scan_into(dir: &Path, depth: usize, out: &mut Vec<FileStamp>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue; // vanished or a dangling link: the next scan sees the new state
        };
        if meta.is_dir() {
            if depth < MAX_SCAN_DEPTH {
                scan_into(&path, depth + 1, out)?;
            }
        } else if meta.is_file() && name.to_ascii_lowercase().ends_with(".md") {
            out.push(FileStamp {
                path,
                len: meta.len(),
                modified: meta.modified().ok(),
            });
        }
    }
    Ok(())
}

/// Reads and parses one article file.
pub(crate) fn read_article(stamp: &FileStamp) -> Result<Article, String> {
    if stamp.len > MAX_FILE_BYTES {
        return Err(format!("file is larger than {MAX_FILE_BYTES} bytes"));
    }
    let bytes = fs::read(&stamp.path).map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("file is larger than {MAX_FILE_BYTES} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| "file is not valid UTF-8".to_owned())?;
    let stem = stamp
        .path
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    parse_article(&stem, &text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const VALID: &str = "---\nid: reset\ntitle: \"Reset: your password\"\nsummary: 'It''s easy.'\nlanguage: en-US\ntags: [password, \"log in\", reset]\nurl: https://help.example/en/reset # canonical\nunknown_key: ignored\n---\n# Reset\n\nOpen **Settings** and see [the guide](https://x.example/guide). Mail no-reply@x.example.\n";

    #[test]
    fn parses_a_complete_article() {
        let a = parse_article("file", VALID).unwrap();
        assert_eq!(a.id, "reset");
        assert_eq!(a.title, "Reset: your password");
        assert_eq!(a.summary, "It's easy.");
        assert_eq!(a.lang, Lang::En);
        assert_eq!(a.tags, vec!["password", "log in", "reset"]);
        assert_eq!(a.url.as_deref(), Some("https://help.example/en/reset"));
        assert!(
            a.body.contains("Open Settings and see the guide."),
            "{}",
            a.body
        );
        assert!(!a.body.contains("https"));
        assert!(!a.body.contains("no-reply"));
    }

    #[test]
    fn defaults_id_and_summary() {
        let text = "---\ntitle: Hello\nlanguage: fr\ntags:\n  - un\n  - deux\n---\n# Titre\n\nPremière phrase du corps. Deuxième phrase.\n";
        let a = parse_article("mon-article", text).unwrap();
        assert_eq!(a.id, "mon-article");
        assert_eq!(a.summary, "Première phrase du corps.");
        assert_eq!(a.tags, vec!["un", "deux"]);
        assert_eq!(a.url, None);
    }

    #[test]
    fn rejects_bad_files_with_reasons() {
        let cases: &[(&str, &str)] = &[
            ("no front matter", "front matter"),
            ("---\ntitle: x\nlanguage: en\n", "not closed"),
            ("---\nlanguage: en\n---\nbody", "`title`"),
            ("---\ntitle: x\n---\nbody", "`language`"),
            ("---\ntitle: x\nlanguage: de\n---\n", "unsupported language"),
            ("---\ntitle: x\nlanguage: en\nid: Not A Slug\n---\n", "slug"),
            ("---\ntitle: x\nlanguage: en\nurl: ftp://x\n---\n", "url"),
            ("---\ntitle: x\ntitle: y\nlanguage: en\n---\n", "twice"),
            ("---\ntitle: \"x\nlanguage: en\n---\n", "unterminated"),
            ("---\njust some text\n---\n", "key: value"),
            ("---\ntitle: x\nlanguage: en\ntags: [a, b\n---\n", "list"),
            ("---\ntitle: [a]\nlanguage: en\n---\n", "single value"),
        ];
        for (text, needle) in cases {
            let err = parse_article("f", text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn strips_markdown() {
        let text = markdown_to_text(
            "## Steps\n\n1. Tap **Shop > Restore** (iOS).\n- See ![img](a.png) and `code`.\n```\nignored code\n```\nGo to play.google.com/store now.",
        );
        assert_eq!(
            text,
            "Steps\n\n1. Tap Shop > Restore (iOS).\nSee img and code.\n\nGo to now."
        );
    }
}
