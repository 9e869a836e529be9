//! Mention parsing and Discord's `allowed_mentions` semantics: who a message actually pings.

use serde_json::Value;

use crate::ids;
use crate::records::Pings;

/// Mentions written in content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ContentMentions {
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
    pub everyone: bool,
}

/// Scans `<@id>`, `<@!id>`, `<@&id>`, `@everyone`, `@here`.
pub(crate) fn scan(content: &str) -> ContentMentions {
    let mut out = ContentMentions {
        everyone: content.contains("@everyone") || content.contains("@here"),
        ..ContentMentions::default()
    };
    let mut rest = content;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let (is_role, digits_from) = match after.as_bytes().first() {
            Some(b'&') => (true, 1),
            Some(b'!') => (false, 1),
            _ => (false, 0),
        };
        let tail = &after[digits_from..];
        let end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        if end > 0 && tail[end..].starts_with('>') {
            if let Ok(id) = tail[..end].parse::<u64>() {
                let list = if is_role {
                    &mut out.roles
                } else {
                    &mut out.users
                };
                if !list.contains(&id) {
                    list.push(id);
                }
            }
        }
        rest = &rest[start + 2..];
    }
    out
}

/// Parsed `allowed_mentions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allowed {
    pub parse_users: bool,
    pub parse_roles: bool,
    pub parse_everyone: bool,
    pub users: Vec<u64>,
    pub roles: Vec<u64>,
    pub replied_user: bool,
}

impl Allowed {
    /// Discord's default when `allowed_mentions` is absent: parse everything, ping the replied user.
    pub fn everything() -> Self {
        Self {
            parse_users: true,
            parse_roles: true,
            parse_everyone: true,
            users: vec![],
            roles: vec![],
            replied_user: true,
        }
    }

    /// From the request field (already validated); `None`/null means [`Allowed::everything`].
    pub fn from_json(v: Option<&Value>) -> Self {
        let Some(obj) = v.and_then(Value::as_object) else {
            return Self::everything();
        };
        let parse: Vec<&str> = obj
            .get("parse")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let list = |k: &str| -> Vec<u64> {
            obj.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(ids::from_value).collect())
                .unwrap_or_default()
        };
        Self {
            parse_users: parse.contains(&"users"),
            parse_roles: parse.contains(&"roles"),
            parse_everyone: parse.contains(&"everyone"),
            users: list("users"),
            roles: list("roles"),
            replied_user: obj
                .get("replied_user")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

/// Context needed to decide pings.
pub(crate) struct PingContext<'a> {
    /// Users that exist (a mention of an unknown id pings nobody).
    pub known_user: &'a dyn Fn(u64) -> bool,
    /// Roles that exist in the guild and whether they are mentionable.
    pub role_mentionable: &'a dyn Fn(u64) -> Option<bool>,
    /// The message is in a guild channel.
    pub in_guild: bool,
    /// The author holds MENTION_EVERYONE in the channel.
    pub can_mention_everyone: bool,
    /// The author of the replied-to message, if this is a reply.
    pub replied_author: Option<u64>,
    /// The author of this message.
    pub author: u64,
}

/// Who gets pinged.
pub(crate) fn compute(content: &str, allowed: &Allowed, ctx: &PingContext<'_>) -> Pings {
    let found = scan(content);
    let users = found
        .users
        .into_iter()
        .filter(|id| (ctx.known_user)(*id))
        .filter(|id| allowed.parse_users || allowed.users.contains(id))
        .collect();
    let roles = if ctx.in_guild {
        found
            .roles
            .into_iter()
            .filter(|id| match (ctx.role_mentionable)(*id) {
                Some(mentionable) => mentionable || ctx.can_mention_everyone,
                None => false,
            })
            .filter(|id| allowed.parse_roles || allowed.roles.contains(id))
            .collect()
    } else {
        Vec::new()
    };
    let everyone =
        found.everyone && ctx.in_guild && ctx.can_mention_everyone && allowed.parse_everyone;
    let replied_user = ctx
        .replied_author
        .filter(|a| *a != ctx.author && allowed.replied_user);
    Pings {
        users,
        roles,
        everyone,
        replied_user,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn ctx<'a>(
        known: &'a dyn Fn(u64) -> bool,
        roles: &'a dyn Fn(u64) -> Option<bool>,
    ) -> PingContext<'a> {
        PingContext {
            known_user: known,
            role_mentionable: roles,
            in_guild: true,
            can_mention_everyone: true,
            replied_author: Some(42),
            author: 1,
        }
    }

    #[test]
    fn scan_finds_all_forms() {
        let m = scan("hi <@12> and <@!34> and <@&56> @here <@x> <@99");
        assert_eq!(m.users, vec![12, 34]);
        assert_eq!(m.roles, vec![56]);
        assert!(m.everyone);
    }

    #[test]
    fn absent_allowed_mentions_parses_everything() {
        let known = |_| true;
        let roles = |id| (id == 56).then_some(false);
        let p = compute(
            "@everyone <@12> <@&56>",
            &Allowed::from_json(None),
            &ctx(&known, &roles),
        );
        assert!(p.everyone);
        assert_eq!(p.users, vec![12]);
        assert_eq!(p.roles, vec![56]);
        assert_eq!(p.replied_user, Some(42));
    }

    #[test]
    fn empty_parse_suppresses_everything() {
        let known = |_| true;
        let roles = |_| Some(true);
        let allowed = Allowed::from_json(Some(&json!({"parse": []})));
        let p = compute("@everyone <@12> <@&56>", &allowed, &ctx(&known, &roles));
        assert!(!p.any(), "{p:?}");
        let allowed = Allowed::from_json(Some(
            &json!({"parse": [], "users": ["12"], "replied_user": true}),
        ));
        let p = compute("@everyone <@12> <@13>", &allowed, &ctx(&known, &roles));
        assert_eq!(p.users, vec![12]);
        assert!(!p.everyone);
        assert_eq!(p.replied_user, Some(42));
    }

    #[test]
    fn everyone_needs_permission_and_guild() {
        let known = |_| true;
        let roles = |_| None;
        let mut c = ctx(&known, &roles);
        c.can_mention_everyone = false;
        assert!(!compute("@everyone", &Allowed::everything(), &c).everyone);
        c.can_mention_everyone = true;
        c.in_guild = false;
        assert!(!compute("@everyone", &Allowed::everything(), &c).everyone);
    }
}
