//! A small, forgiving RSS 2.0 / RSS 1.0 / Atom parser (on roxmltree).
//!
//! It keeps only what a relay needs (id, title, link, a plain-text summary, a date), never panics,
//! and refuses documents that are not XML or not a feed with a clear reason.

use chrono::{DateTime, Utc};

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedItem {
    /// Stable id: RSS `guid`, Atom `id`, else the link, else the title and date.
    pub id: String,
    /// Title (plain text, one line).
    pub title: String,
    /// Link to the post (http or https only).
    pub link: Option<String>,
    /// Plain-text summary (HTML stripped), possibly empty.
    pub summary: String,
    /// Publication (or update) time, when given and parseable.
    pub published: Option<DateTime<Utc>>,
}

/// A parsed feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Feed title (may be empty).
    pub title: String,
    /// Items in document order.
    pub items: Vec<FeedItem>,
}

/// Why a document is not a usable feed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    /// Not well-formed XML.
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// XML, but not RSS or Atom.
    #[error("not an RSS or Atom feed (root element <{0}>)")]
    NotAFeed(String),
}

const NODES_LIMIT: u32 = 200_000;

/// Parses an RSS or Atom document.
pub fn parse(xml: &str) -> Result<Feed, FeedError> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        nodes_limit: NODES_LIMIT,
    };
    let doc = roxmltree::Document::parse_with_options(xml, opts)
        .map_err(|e| FeedError::Xml(e.to_string()))?;
    let root = doc.root_element();
    match root.tag_name().name() {
        "rss" => {
            let channel = child(root, "channel").unwrap_or(root);
            Ok(Feed {
                title: child_text(channel, "title"),
                items: channel
                    .children()
                    .filter(|n| is_local(n, "item"))
                    .filter_map(rss_item)
                    .collect(),
            })
        }
        "RDF" => {
            let channel = child(root, "channel");
            Ok(Feed {
                title: channel.map(|c| child_text(c, "title")).unwrap_or_default(),
                items: root
                    .children()
                    .filter(|n| is_local(n, "item"))
                    .filter_map(rss_item)
                    .collect(),
            })
        }
        "feed" => Ok(Feed {
            title: child_text(root, "title"),
            items: root
                .children()
                .filter(|n| is_local(n, "entry"))
                .filter_map(atom_entry)
                .collect(),
        }),
        other => Err(FeedError::NotAFeed(other.chars().take(40).collect())),
    }
}

fn is_local(n: &roxmltree::Node<'_, '_>, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| is_local(c, name))
}

/// All text below a node (CDATA included), as written.
fn all_text(n: roxmltree::Node<'_, '_>) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect()
}

/// A plain-text child (titles): whitespace collapsed, no HTML stripping ("<" is a character).
fn child_text(n: roxmltree::Node<'_, '_>, name: &str) -> String {
    child(n, name)
        .map(|c| collapse(&all_text(c)))
        .unwrap_or_default()
}

fn rss_item(n: roxmltree::Node<'_, '_>) -> Option<FeedItem> {
    let title = child_text(n, "title");
    let link = child(n, "link")
        .map(|c| all_text(c).trim().to_owned())
        .and_then(|l| web_link(&l));
    let guid = child(n, "guid")
        .map(|c| all_text(c).trim().to_owned())
        .unwrap_or_default();
    let about = n
        .attributes()
        .find(|a| a.name() == "about")
        .map(|a| a.value().trim().to_owned())
        .unwrap_or_default();
    let summary = child(n, "description")
        .or_else(|| child(n, "encoded"))
        .map(|c| collapse(&strip_html(&all_text(c))))
        .unwrap_or_default();
    let published = ["pubDate", "date", "updated", "published"]
        .iter()
        .find_map(|name| child(n, name).and_then(|c| parse_date(&all_text(c))));
    finish(title, link, [guid, about], summary, published)
}

fn atom_entry(n: roxmltree::Node<'_, '_>) -> Option<FeedItem> {
    let title = child_text(n, "title");
    let links: Vec<_> = n.children().filter(|c| is_local(c, "link")).collect();
    let link = links
        .iter()
        .find(|l| matches!(l.attribute("rel"), None | Some("alternate")))
        .or(links.first())
        .and_then(|l| l.attribute("href"))
        .and_then(web_link);
    let id = child(n, "id")
        .map(|c| all_text(c).trim().to_owned())
        .unwrap_or_default();
    let summary = child(n, "summary")
        .or_else(|| child(n, "content"))
        .map(|c| collapse(&strip_html(&all_text(c))))
        .unwrap_or_default();
    let published = ["published", "updated"]
        .iter()
        .find_map(|name| child(n, name).and_then(|c| parse_date(&all_text(c))));
    finish(title, link, [id, String::new()], summary, published)
}

fn finish(
    title: String,
    link: Option<String>,
    ids: [String; 2],
    summary: String,
    published: Option<DateTime<Utc>>,
) -> Option<FeedItem> {
    let title = if title.is_empty() {
        summary.chars().take(80).collect()
    } else {
        title
    };
    if title.is_empty() && link.is_none() {
        return None;
    }
    let id = ids
        .into_iter()
        .find(|i| !i.is_empty())
        .or_else(|| link.clone())
        .unwrap_or_else(|| {
            format!(
                "{}|{}",
                title,
                published.map(|p| p.to_rfc3339()).unwrap_or_default()
            )
        });
    Some(FeedItem {
        id: id.chars().take(1000).collect(),
        title: title.chars().take(300).collect(),
        link,
        summary: summary.chars().take(2000).collect(),
        published,
    })
}

/// Accepts only absolute http(s) links.
fn web_link(s: &str) -> Option<String> {
    let u = url::Url::parse(s.trim()).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// Parses RFC 2822 (RSS) and RFC 3339 (Atom, Dublin Core) dates. A wrong day of the week (common
/// in hand-written feeds) is ignored.
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc2822(s)
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .or_else(|| {
            let (_, rest) = s.split_once(',')?;
            DateTime::parse_from_rfc2822(rest.trim()).ok()
        })
        .map(|d| d.with_timezone(&Utc))
}

/// Removes HTML tags and decodes the common entities (descriptions are often escaped HTML).
pub fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode_entities(&out)
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &tail[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => {
                    if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                        u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                    } else if let Some(dec) = name.strip_prefix('#') {
                        dec.parse::<u32>().ok().and_then(char::from_u32)
                    } else {
                        None
                    }
                }
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                if !c.is_control() || c == '\n' {
                    out.push(c);
                }
                rest = &tail[e + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rss_items_with_escaped_html_and_dates() {
        let xml = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
  <title>Starfall news</title>
  <item><title>Patch 1.2 &amp; more</title><link>https://news.example/1.2</link>
    <guid isPermaLink="false">post-12</guid>
    <description>&lt;p&gt;New &lt;b&gt;arena&lt;/b&gt; &amp;amp; fixes&lt;/p&gt;</description>
    <pubDate>Tue, 10 Nov 2026 10:00:00 +0000</pubDate></item>
  <item><title><![CDATA[Maintenance <tonight>]]></title><link>javascript:alert(1)</link></item>
  <item><description>no title, no link</description></item>
  <item></item>
</channel></rss>"#;
        let f = parse(xml).unwrap();
        assert_eq!(f.title, "Starfall news");
        assert_eq!(f.items.len(), 3);
        let a = &f.items[0];
        assert_eq!(a.id, "post-12");
        assert_eq!(a.title, "Patch 1.2 & more");
        assert_eq!(a.link.as_deref(), Some("https://news.example/1.2"));
        assert_eq!(a.summary, "New arena & fixes");
        assert_eq!(
            a.published.unwrap().to_rfc3339(),
            "2026-11-10T10:00:00+00:00"
        );
        let b = &f.items[1];
        assert_eq!(b.title, "Maintenance <tonight>");
        assert_eq!(b.link, None, "only http(s) links are kept");
        assert!(b.id.starts_with("Maintenance <tonight>|"));
        assert_eq!(f.items[2].title, "no title, no link");
    }

    #[test]
    fn atom_entries() {
        let xml = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Dev blog</title>
  <entry><id>tag:example.com,2026:1</id><title>Hello</title>
    <link rel="self" href="https://x.example/self"/><link rel="alternate" href="https://x.example/hello"/>
    <updated>2026-11-01T12:00:00Z</updated>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi <em>all</em></p></div></content>
  </entry>
  <entry><title>No id</title><link href="https://x.example/2"/></entry>
</feed>"#;
        let f = parse(xml).unwrap();
        assert_eq!(f.title, "Dev blog");
        assert_eq!(f.items[0].id, "tag:example.com,2026:1");
        assert_eq!(f.items[0].link.as_deref(), Some("https://x.example/hello"));
        assert_eq!(f.items[0].summary, "Hi all");
        assert!(f.items[0].published.is_some());
        assert_eq!(f.items[1].id, "https://x.example/2");
    }

    #[test]
    fn rss1_rdf() {
        let xml = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://x.example/"><title>R</title></channel>
<item rdf:about="https://x.example/a"><title>A</title><link>https://x.example/a</link><dc:date>2026-01-01T00:00:00Z</dc:date></item>
</rdf:RDF>"#;
        let f = parse(xml).unwrap();
        assert_eq!(f.title, "R");
        assert_eq!(f.items.len(), 1);
        assert_eq!(f.items[0].id, "https://x.example/a");
        assert!(f.items[0].published.is_some());
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for bad in [
            "",
            "not xml at all",
            "<rss><channel><item><title>x</title></channel>",
            "<html><body>hi</body></html>",
            "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\"><!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\"><!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\"><!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\"><!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\"><!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\"><!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">]><rss><channel><title>&lol9;</title></channel></rss>",
        ] {
            assert!(parse(bad).is_err(), "{bad:.40}");
        }
        assert_eq!(
            parse("<html/>").unwrap_err(),
            FeedError::NotAFeed("html".into())
        );
    }

    #[test]
    fn dates() {
        let d = parse_date("Mon, 03 Nov 2026 10:00:00 +0000").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-03T10:00:00+00:00");
        assert!(parse_date("Tue, 03 Nov 2026 10:00:00 GMT").is_some());
        assert!(parse_date("2026-11-03T10:00:00.5+01:00").is_some());
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date(""), None);
    }

    #[test]
    fn entities_and_tags() {
        assert_eq!(
            strip_html("a &amp; b &#233; &#x41; &bogus; & c"),
            "a & b é A &bogus; & c"
        );
        assert_eq!(collapse(&strip_html("<p>x</p><p>y</p>")), "x y");
    }
}
