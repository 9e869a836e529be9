//! `application/x-www-form-urlencoded` encoding that keeps repeated keys and dotted names.
//!
//! Twilio arrays are sent by repeating the key (`Configuration.Filters=a&Configuration.Filters=b`)
//! and webhooks can carry repeated keys too, so both directions use an ordered multimap
//! (`Vec<(String, String)>`), never a `HashMap`.

/// Ordered form parameters; repeated keys allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// An empty form.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `name=value`.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.pairs.push((name.into(), value.into()));
        self
    }

    /// Appends `name=value` when `value` is `Some`.
    pub fn push_opt<V: Into<String>>(&mut self, name: &str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.pairs.push((name.to_owned(), v.into()));
        }
        self
    }

    /// Appends one `name=value` pair per value (Twilio's array encoding).
    pub fn push_all<I, V>(&mut self, name: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        for v in values {
            self.pairs.push((name.to_owned(), v.into()));
        }
        self
    }

    /// The pairs in insertion order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Consumes the form, returning its pairs.
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.pairs
    }

    /// Whether no pair was added.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The urlencoded body.
    pub fn encode(&self) -> String {
        encode_pairs(&self.pairs)
    }
}

/// Encodes pairs as `application/x-www-form-urlencoded` (space as `+`).
pub fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// Decodes an urlencoded body or query string into ordered pairs (repeated keys kept).
pub fn parse(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// First value of `name` in `pairs`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Every value of `name` in `pairs`, in order.
pub fn all<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn repeated_and_dotted_keys_survive_a_round_trip() {
        let mut f = Form::new();
        f.push("Target", "webhook")
            .push("Configuration.Url", "https://x.test/hook?a=1&b=2")
            .push_all(
                "Configuration.Filters",
                ["onMessageAdded", "onParticipantAdded"],
            )
            .push_opt::<String>("Missing", None)
            .push("Body", "héllo wörld + more");
        let enc = f.encode();
        assert!(enc.contains(
            "Configuration.Filters=onMessageAdded&Configuration.Filters=onParticipantAdded"
        ));
        assert!(enc.contains("Body=h%C3%A9llo+w%C3%B6rld+%2B+more"));
        let back = parse(enc.as_bytes());
        assert_eq!(back, f.clone().into_pairs());
        assert_eq!(
            all(&back, "Configuration.Filters"),
            ["onMessageAdded", "onParticipantAdded"]
        );
        assert_eq!(
            first(&back, "Configuration.Url"),
            Some("https://x.test/hook?a=1&b=2")
        );
        assert_eq!(first(&back, "Missing"), None);
    }
}
