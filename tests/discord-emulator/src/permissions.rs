//! Discord permission bits and the channel-permission computation Discord performs.

/// CREATE_INSTANT_INVITE.
pub const CREATE_INSTANT_INVITE: u64 = 1 << 0;
/// ADMINISTRATOR.
pub const ADMINISTRATOR: u64 = 1 << 3;
/// MANAGE_CHANNELS.
pub const MANAGE_CHANNELS: u64 = 1 << 4;
/// ADD_REACTIONS.
pub const ADD_REACTIONS: u64 = 1 << 6;
/// VIEW_CHANNEL.
pub const VIEW_CHANNEL: u64 = 1 << 10;
/// SEND_MESSAGES.
pub const SEND_MESSAGES: u64 = 1 << 11;
/// MANAGE_MESSAGES.
pub const MANAGE_MESSAGES: u64 = 1 << 13;
/// EMBED_LINKS.
pub const EMBED_LINKS: u64 = 1 << 14;
/// ATTACH_FILES.
pub const ATTACH_FILES: u64 = 1 << 15;
/// READ_MESSAGE_HISTORY.
pub const READ_MESSAGE_HISTORY: u64 = 1 << 16;
/// MENTION_EVERYONE.
pub const MENTION_EVERYONE: u64 = 1 << 17;
/// USE_EXTERNAL_EMOJIS.
pub const USE_EXTERNAL_EMOJIS: u64 = 1 << 18;
/// MANAGE_ROLES.
pub const MANAGE_ROLES: u64 = 1 << 28;
/// USE_APPLICATION_COMMANDS.
pub const USE_APPLICATION_COMMANDS: u64 = 1 << 31;

/// `@everyone` default: VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES |
/// READ_MESSAGE_HISTORY (117760, as in the spec's realistic guild) plus USE_APPLICATION_COMMANDS.
pub const DEFAULT_EVERYONE: u64 = VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS;

/// The bot's role default: what flexcord's install link asks for.
pub const DEFAULT_BOT_ROLE: u64 = VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | MANAGE_CHANNELS
    | MANAGE_ROLES
    | MANAGE_MESSAGES
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS;

/// What an app may do in a DM (the `app_permissions` Discord reports there).
pub const DM_PERMISSIONS: u64 = VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | MENTION_EVERYONE
    | ADD_REACTIONS
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS;

const ALL: u64 = (1 << 51) - 1;

/// A permission overwrite on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overwrite {
    /// Role or member id.
    pub id: u64,
    /// 0 = role, 1 = member.
    pub kind: u8,
    /// Allowed bits.
    pub allow: u64,
    /// Denied bits.
    pub deny: u64,
}

/// Discord's algorithm: base permissions from roles, then `@everyone` overwrite, role overwrites,
/// member overwrite.
pub fn compute(
    guild_id: u64,
    everyone: u64,
    member_roles: &[(u64, u64)],
    member_id: u64,
    overwrites: &[Overwrite],
) -> u64 {
    let mut base = everyone;
    for (_, perms) in member_roles {
        base |= perms;
    }
    if base & ADMINISTRATOR != 0 {
        return ALL;
    }
    let mut p = base;
    if let Some(o) = overwrites.iter().find(|o| o.kind == 0 && o.id == guild_id) {
        p &= !o.deny;
        p |= o.allow;
    }
    let (mut allow, mut deny) = (0, 0);
    for o in overwrites
        .iter()
        .filter(|o| o.kind == 0 && member_roles.iter().any(|(r, _)| *r == o.id))
    {
        allow |= o.allow;
        deny |= o.deny;
    }
    p &= !deny;
    p |= allow;
    if let Some(o) = overwrites.iter().find(|o| o.kind == 1 && o.id == member_id) {
        p &= !o.deny;
        p |= o.allow;
    }
    if p & VIEW_CHANNEL == 0 {
        return 0;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everyone_overwrite_denies_and_role_overwrite_restores() {
        let g = 1;
        let ows = vec![
            Overwrite {
                id: g,
                kind: 0,
                allow: 0,
                deny: SEND_MESSAGES,
            },
            Overwrite {
                id: 7,
                kind: 0,
                allow: SEND_MESSAGES,
                deny: 0,
            },
        ];
        assert_eq!(
            compute(g, DEFAULT_EVERYONE, &[], 9, &ows) & SEND_MESSAGES,
            0
        );
        assert_ne!(
            compute(g, DEFAULT_EVERYONE, &[(7, 0)], 9, &ows) & SEND_MESSAGES,
            0
        );
        let member_deny = vec![Overwrite {
            id: 9,
            kind: 1,
            allow: 0,
            deny: VIEW_CHANNEL,
        }];
        assert_eq!(
            compute(
                g,
                DEFAULT_EVERYONE,
                &[(7, DEFAULT_BOT_ROLE)],
                9,
                &member_deny
            ),
            0
        );
        assert_eq!(compute(g, ADMINISTRATOR, &[], 9, &member_deny), ALL);
    }
}
