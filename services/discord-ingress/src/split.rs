//! Splitting text longer than Discord's 2,000-character limit into ordered messages, on line
//! boundaries first, then on word boundaries, and only as a last resort inside a word.

/// Discord's message content limit.
pub const MESSAGE_LIMIT: usize = 2000;

/// Length as Discord may count it: UTF-16 code units (never less than the number of characters), so a
/// part within the limit is within it whichever way it is counted.
pub fn discord_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Splits `text` into parts of at most `limit` UTF-16 units each, in order. Whitespace-only parts are
/// dropped; the separator a split happens on (a line break or a space) is dropped too. An empty or
/// whitespace-only text gives no parts.
pub fn split_message(text: &str, limit: usize) -> Vec<String> {
    let limit = limit.max(16);
    let mut parts = Vec::new();
    let mut rest = text;
    while discord_len(rest) > limit {
        // Byte index just past the longest prefix within the limit.
        let mut units = 0;
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            if units + c.len_utf16() > limit {
                break;
            }
            units += c.len_utf16();
            end = i + c.len_utf8();
        }
        let window = &rest[..end];
        let half = window.len() / 2;
        let cut = match (window.rfind('\n'), window.rfind(char::is_whitespace)) {
            (Some(nl), _) if nl >= half => Some((nl, 1)),
            (_, Some(ws)) if ws >= half => {
                Some((ws, window[ws..].chars().next().map_or(1, char::len_utf8)))
            }
            (Some(nl), _) if nl > 0 => Some((nl, 1)),
            (_, Some(ws)) if ws > 0 => {
                Some((ws, window[ws..].chars().next().map_or(1, char::len_utf8)))
            }
            _ => None,
        };
        let (part, next) = match cut {
            Some((at, sep)) => (&rest[..at], &rest[at + sep..]),
            None => (window, &rest[end..]),
        };
        let part = part.trim_end();
        if !part.trim().is_empty() {
            parts.push(part.to_owned());
        }
        rest = next;
        if end == 0 {
            break;
        }
    }
    if !rest.trim().is_empty() {
        parts.push(rest.trim_end().to_owned());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split_message("hello", MESSAGE_LIMIT), vec!["hello"]);
        assert!(split_message("   \n ", MESSAGE_LIMIT).is_empty());
    }

    #[test]
    fn long_text_splits_on_lines_in_order() {
        let lines: Vec<String> = (0..90)
            .map(|i| format!("line {i:03} {}", "x".repeat(40)))
            .collect();
        let text = lines.join("\n");
        assert!(text.len() > 4000 && text.len() < 4500);
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 3);
        for p in &parts {
            assert!(discord_len(p) <= MESSAGE_LIMIT);
            assert!(
                p.starts_with("line "),
                "parts start on a line: {}",
                &p[..10]
            );
        }
        assert_eq!(parts.join("\n"), text);
    }

    #[test]
    fn text_without_lines_splits_on_words() {
        let words: Vec<String> = (0..900).map(|i| format!("w{i}")).collect();
        let text = words.join(" ");
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert!(parts.len() >= 2);
        for p in &parts {
            assert!(discord_len(p) <= MESSAGE_LIMIT);
            assert!(p.starts_with('w'));
        }
        assert_eq!(parts.join(" "), text);
    }

    #[test]
    fn a_4500_character_text_gives_three_parts() {
        let text: String = (0..4500)
            .map(|i| if i % 50 == 49 { ' ' } else { 'a' })
            .collect();
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.join(" "), text.trim_end());
    }

    #[test]
    fn no_boundary_means_a_hard_split_on_characters() {
        let text = "é".repeat(2500);
        let parts = split_message(&text, MESSAGE_LIMIT);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].chars().count(), 2000);
        assert_eq!(parts.concat(), text);
        // Astral characters count as two UTF-16 units.
        let emoji = "😀".repeat(1500);
        let parts = split_message(&emoji, MESSAGE_LIMIT);
        assert!(parts.iter().all(|p| discord_len(p) <= MESSAGE_LIMIT));
        assert_eq!(parts.concat(), emoji);
    }
}
