//! JSON builders for everything the emulator emits, shaped like Discord's payloads and checked
//! against serenity 0.12.5's model types in the unit tests.

use serde_json::{json, Map, Value};

use crate::config::EmulatorConfig;
use crate::permissions::Overwrite;
use crate::snowflake;
use crate::state::{ChannelKind, ChannelRec, MessageRec, State, StoredFile, UserRec};

/// A user object.
pub(crate) fn user_json(u: &UserRec) -> Value {
    let mut v = json!({
        "id": u.id.to_string(),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": null,
        "public_flags": 0,
    });
    if u.bot {
        v["bot"] = Value::Bool(true);
    }
    v
}

/// `GET /users/@me` (CurrentUser).
pub(crate) fn current_user_json(u: &UserRec) -> Value {
    let mut v = user_json(u);
    v["verified"] = Value::Bool(true);
    v["mfa_enabled"] = Value::Bool(false);
    v["flags"] = json!(0);
    v["email"] = Value::Null;
    v["locale"] = json!("en-US");
    v
}

/// A guild member. `with_user` adds the nested user (GUILD_CREATE, interactions, typing);
/// message payloads omit it. `permissions` is added for interactions.
pub(crate) fn member_json(
    st: &State,
    u: &UserRec,
    with_user: bool,
    permissions: Option<u64>,
) -> Value {
    let roles: Vec<String> = st
        .member_roles(u.id)
        .iter()
        .map(|(id, _)| id.to_string())
        .collect();
    let mut v = json!({
        "roles": roles,
        "nick": null,
        "avatar": null,
        "banner": null,
        "premium_since": null,
        "joined_at": u.joined_at,
        "deaf": false,
        "mute": false,
        "flags": 0,
        "pending": false,
        "communication_disabled_until": null,
    });
    if with_user {
        v["user"] = user_json(u);
    }
    if let Some(p) = permissions {
        v["permissions"] = json!(p.to_string());
    }
    v
}

fn role_json(id: u64, name: &str, permissions: u64, position: i64, bot_id: Option<u64>) -> Value {
    let mut v = json!({
        "id": id.to_string(),
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": null, "tertiary_color": null},
        "hoist": false,
        "icon": null,
        "unicode_emoji": null,
        "position": position,
        "permissions": permissions.to_string(),
        "managed": bot_id.is_some(),
        "mentionable": false,
        "flags": 0,
    });
    if let Some(bot) = bot_id {
        v["tags"] = json!({"bot_id": bot.to_string()});
    }
    v
}

/// The guild's roles: `@everyone` (id = guild id), the bot's managed role, and "Admin".
pub(crate) fn roles_json(st: &State) -> Vec<Value> {
    vec![
        role_json(st.guild_id, "@everyone", st.everyone_permissions, 0, None),
        role_json(
            st.bot_role_id,
            &st.bot.username,
            st.bot_role_permissions,
            1,
            Some(st.bot.id),
        ),
        role_json(
            st.admin_role_id,
            "Admin",
            crate::permissions::ADMINISTRATOR,
            2,
            None,
        ),
    ]
}

/// A permission overwrite as Discord returns it (allow/deny as strings).
pub(crate) fn overwrite_json(o: &Overwrite) -> Value {
    json!({"id": o.id.to_string(), "type": o.kind, "allow": o.allow.to_string(), "deny": o.deny.to_string()})
}

/// A channel object: GuildChannel (with `guild_id`) or PrivateChannel.
pub(crate) fn channel_json(st: &State, c: &ChannelRec) -> Value {
    let last = c.last_message_id.map(|id| id.to_string());
    match &c.kind {
        ChannelKind::Guild(g) => {
            let mut v = json!({
                "id": c.id.to_string(),
                "type": g.kind,
                "guild_id": st.guild_id.to_string(),
                "name": g.name,
                "position": g.position,
                "permission_overwrites": g.overwrites.iter().map(overwrite_json).collect::<Vec<_>>(),
                "parent_id": g.parent_id.map(|p| p.to_string()),
                "nsfw": g.nsfw,
                "flags": 0,
            });
            if matches!(g.kind, 0 | 5 | 15) {
                v["topic"] = json!(g.topic);
                v["last_message_id"] = json!(last);
                v["rate_limit_per_user"] = json!(g.rate_limit_per_user);
            }
            v
        }
        ChannelKind::Dm { recipient_id } => {
            let recipients: Vec<Value> =
                st.user(*recipient_id).map(user_json).into_iter().collect();
            json!({
                "id": c.id.to_string(),
                "type": 1,
                "last_message_id": last,
                "flags": 0,
                "recipients": recipients,
            })
        }
    }
}

/// Hello (op 10).
pub(crate) fn hello_json(interval_ms: u64) -> String {
    json!({"op": 10, "d": {"heartbeat_interval": interval_ms}, "s": null, "t": null}).to_string()
}

/// READY `d`.
pub(crate) fn ready_json(
    st: &State,
    cfg: &EmulatorConfig,
    session_id: &str,
    resume_url: &str,
    shard: [u64; 2],
) -> Value {
    json!({
        "v": 10,
        "user": {
            "id": st.bot.id.to_string(),
            "username": st.bot.username,
            "discriminator": "0",
            "global_name": null,
            "avatar": null,
            "bot": true,
            "verified": true,
            "mfa_enabled": false,
            "flags": 0,
        },
        "guilds": [{"id": st.guild_id.to_string(), "unavailable": true}],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": resume_url,
        "shard": shard,
        "application": {"id": cfg.application_id.to_string(), "flags": 0},
        "private_channels": [],
        "relationships": [],
        "presences": [],
        "user_settings": {},
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": [],
        "auth": {},
        "_trace": ["[\"discord-emulator\"]"],
    })
}

/// GUILD_CREATE `d`: roles (with `colors`), the bot's member and all guild members known,
/// channels.
pub(crate) fn guild_create_json(st: &State, cfg: &EmulatorConfig) -> Value {
    let mut members = vec![member_json(st, &st.bot, true, None)];
    members.extend(
        st.users
            .values()
            .filter(|u| u.in_guild)
            .map(|u| member_json(st, u, true, None)),
    );
    let channels: Vec<Value> = st
        .channels
        .values()
        .filter(|c| !c.is_dm())
        .map(|c| {
            let mut v = channel_json(st, c);
            if let Some(m) = v.as_object_mut() {
                m.remove("guild_id");
            }
            v
        })
        .collect();
    json!({
        "id": st.guild_id.to_string(),
        "name": cfg.guild_name,
        "icon": null,
        "splash": null,
        "discovery_splash": null,
        "owner_id": cfg.guild_owner_id.to_string(),
        "afk_channel_id": null,
        "afk_timeout": 300,
        "verification_level": 1,
        "default_message_notifications": 1,
        "explicit_content_filter": 2,
        "roles": roles_json(st),
        "emojis": [],
        "features": [],
        "mfa_level": 0,
        "application_id": null,
        "system_channel_id": null,
        "system_channel_flags": 0,
        "rules_channel_id": null,
        "max_members": 500000,
        "vanity_url_code": null,
        "description": null,
        "banner": null,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": cfg.guild_locale,
        "public_updates_channel_id": null,
        "nsfw_level": 0,
        "stickers": [],
        "premium_progress_bar_enabled": false,
        "safety_alerts_channel_id": null,
        "joined_at": st.bot.joined_at,
        "large": false,
        "unavailable": false,
        "member_count": members.len(),
        "voice_states": [],
        "members": members,
        "channels": channels,
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    })
}

/// An attachment object.
pub(crate) fn attachment_json(
    st: &State,
    rest_base: &str,
    f: &StoredFile,
    ephemeral: bool,
) -> Value {
    let url = st.attachment_url(rest_base, f);
    let mut v = json!({
        "id": f.id.to_string(),
        "filename": f.filename,
        "size": f.bytes.len(),
        "url": url,
        "proxy_url": url,
        "content_type": f.content_type,
    });
    if let Some(d) = &f.description {
        v["description"] = json!(d);
    }
    if ephemeral {
        v["ephemeral"] = Value::Bool(true);
    }
    v
}

/// A message object. `gateway` adds `guild_id` and `member` for guild messages, as gateway
/// dispatches carry them and REST responses do not.
pub(crate) fn message_json(st: &State, rest_base: &str, m: &MessageRec, gateway: bool) -> Value {
    let author = st.user(m.author_id).map(user_json).unwrap_or_else(|| {
        json!({"id": m.author_id.to_string(), "username": "deleted-user", "discriminator": "0", "global_name": null, "avatar": null})
    });
    let attachments: Vec<Value> = m
        .attachments
        .iter()
        .filter_map(|id| st.files.get(id))
        .map(|f| attachment_json(st, rest_base, f, m.ephemeral()))
        .collect();
    let mentions: Vec<Value> = m
        .pings
        .users
        .iter()
        .filter_map(|id| st.user(*id))
        .map(user_json)
        .collect();
    let mut v = json!({
        "id": m.id.to_string(),
        "channel_id": m.channel_id.to_string(),
        "author": author,
        "content": m.content,
        "timestamp": snowflake::timestamp_of(m.id),
        "edited_timestamp": m.edited_at.map(snowflake::rfc3339),
        "tts": m.tts,
        "mention_everyone": m.pings.everyone,
        "mentions": mentions,
        "mention_roles": m.pings.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
        "attachments": attachments,
        "embeds": m.embeds,
        "components": m.components,
        "pinned": false,
        "type": m.kind,
        "flags": m.flags,
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(n) = &m.nonce {
        obj.insert("nonce".into(), n.clone());
    }
    if let Some(w) = m.webhook_id {
        obj.insert("webhook_id".into(), json!(w.to_string()));
        obj.insert("application_id".into(), json!(w.to_string()));
    }
    if let Some(r) = &m.message_reference {
        obj.insert("message_reference".into(), r.clone());
        let referenced = m
            .referenced_id
            .and_then(|id| {
                st.channels
                    .get(&m.channel_id)
                    .and_then(|c| c.messages.get(&id))
            })
            .filter(|r| !r.deleted)
            .map(|r| message_json(st, rest_base, r, false));
        obj.insert(
            "referenced_message".into(),
            referenced.unwrap_or(Value::Null),
        );
    }
    if let Some(i) = &m.interaction {
        if let Some(u) = st.user(i.user_id) {
            obj.insert(
                "interaction".into(),
                json!({"id": i.id.to_string(), "type": i.interaction_type, "name": i.name, "user": user_json(u)}),
            );
            let mut meta = json!({
                "id": i.id.to_string(),
                "type": i.interaction_type,
                "user": user_json(u),
                "authorizing_integration_owners": authorizing_owners(st.guild_of(m.channel_id)),
            });
            if i.interaction_type == 3 {
                meta["interacted_message_id"] = json!(st
                    .interactions
                    .get(&i.id)
                    .and_then(|r| r.target_message_id)
                    .unwrap_or(m.id)
                    .to_string());
            }
            obj.insert("interaction_metadata".into(), meta);
        }
    }
    if gateway {
        if let Some(guild_id) = st.guild_of(m.channel_id) {
            obj.insert("guild_id".into(), json!(guild_id.to_string()));
            if m.webhook_id.is_none() {
                if let Some(u) = st.user(m.author_id).filter(|u| u.in_guild) {
                    obj.insert("member".into(), member_json(st, u, false, None));
                }
            }
        }
    }
    v
}

/// `authorizing_integration_owners`: guild install (`"0"`) in guilds, user context otherwise.
pub(crate) fn authorizing_owners(guild_id: Option<u64>) -> Value {
    match guild_id {
        Some(g) => json!({"0": g.to_string()}),
        None => json!({"0": "0"}),
    }
}

/// Fields common to every INTERACTION_CREATE.
pub(crate) struct InteractionBase<'a> {
    pub id: u64,
    pub token: &'a str,
    pub interaction_type: u8,
    pub channel_id: u64,
    pub user: &'a UserRec,
    pub locale: &'a str,
}

/// INTERACTION_CREATE `d` without `data`/`message`.
pub(crate) fn interaction_json(st: &State, cfg: &EmulatorConfig, b: &InteractionBase<'_>) -> Value {
    let channel = st.channels.get(&b.channel_id);
    let app_permissions = channel
        .map(|c| st.channel_permissions(c, st.bot.id))
        .unwrap_or(0);
    let mut v = json!({
        "id": b.id.to_string(),
        "application_id": cfg.application_id.to_string(),
        "type": b.interaction_type,
        "channel_id": b.channel_id.to_string(),
        "token": b.token,
        "version": 1,
        "app_permissions": app_permissions.to_string(),
        "locale": b.locale,
        "entitlements": [],
        "attachment_size_limit": cfg.attachment_size_limit,
    });
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    if let Some(c) = channel {
        let mut partial = channel_json(st, c);
        if let Some(m) = partial.as_object_mut() {
            m.remove("permission_overwrites");
            m.remove("recipients");
            m.insert(
                "permissions".into(),
                json!(st.channel_permissions(c, b.user.id).to_string()),
            );
        }
        obj.insert("channel".into(), partial);
    }
    match st.guild_of(b.channel_id) {
        Some(guild_id) => {
            let perms = channel
                .map(|c| st.channel_permissions(c, b.user.id))
                .unwrap_or(0);
            obj.insert("guild_id".into(), json!(guild_id.to_string()));
            obj.insert("guild_locale".into(), json!(cfg.guild_locale));
            obj.insert("member".into(), member_json(st, b.user, true, Some(perms)));
            obj.insert(
                "guild".into(),
                json!({"id": guild_id.to_string(), "locale": cfg.guild_locale, "features": []}),
            );
            obj.insert(
                "authorizing_integration_owners".into(),
                authorizing_owners(Some(guild_id)),
            );
            obj.insert("context".into(), json!(0));
        }
        None => {
            obj.insert("user".into(), user_json(b.user));
            obj.insert(
                "authorizing_integration_owners".into(),
                authorizing_owners(None),
            );
            obj.insert("context".into(), json!(1));
        }
    }
    v
}

/// Builds `data.resolved` entries for user/channel/role options.
pub(crate) fn resolved_json(
    st: &State,
    users: &[u64],
    channels: &[u64],
    roles: &[u64],
) -> Option<Value> {
    if users.is_empty() && channels.is_empty() && roles.is_empty() {
        return None;
    }
    let mut out = Map::new();
    if !users.is_empty() {
        let mut u = Map::new();
        let mut m = Map::new();
        for id in users {
            if let Some(rec) = st.user(*id) {
                u.insert(id.to_string(), user_json(rec));
                if rec.in_guild {
                    m.insert(
                        id.to_string(),
                        member_json(st, rec, false, Some(st.guild_permissions(*id))),
                    );
                }
            }
        }
        out.insert("users".into(), Value::Object(u));
        out.insert("members".into(), Value::Object(m));
    }
    if !channels.is_empty() {
        let mut c = Map::new();
        for id in channels {
            if let Some(rec) = st.channels.get(id) {
                let mut v = channel_json(st, rec);
                v["permissions"] = json!(st.channel_permissions(rec, st.bot.id).to_string());
                c.insert(id.to_string(), v);
            }
        }
        out.insert("channels".into(), Value::Object(c));
    }
    if !roles.is_empty() {
        let all = roles_json(st);
        let mut r = Map::new();
        for id in roles {
            if let Some(role) = all.iter().find(|v| v["id"] == json!(id.to_string())) {
                r.insert(id.to_string(), role.clone());
            }
        }
        out.insert("roles".into(), Value::Object(r));
    }
    Some(Value::Object(out))
}
