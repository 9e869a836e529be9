//! Message lifecycle shared by REST handlers and the control API: create, edit, delete, with
//! attachment storage, ping computation, gateway echo and the bot activity log.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;
use time::OffsetDateTime;

use crate::api_error::ApiError;
use crate::gateway::hub::Scope;
use crate::ids;
use crate::mentions::{self, Allowed, PingContext};
use crate::payloads;
use crate::permissions;
use crate::records::{BotAction, MessageSource};
use crate::state::{MessageRec, MsgInteraction, State, StoredFile};
use crate::validation::{guess_content_type, sanitize_filename, Draft, Upload};

/// Request-independent context.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub rest_base: &'a str,
    pub at_ms: u64,
}

/// SUPPRESS_EMBEDS.
pub(crate) const FLAG_SUPPRESS_EMBEDS: u64 = 1 << 2;
/// EPHEMERAL.
pub(crate) const FLAG_EPHEMERAL: u64 = 1 << 6;
/// LOADING (deferred interaction response).
pub(crate) const FLAG_LOADING: u64 = 1 << 7;
/// SUPPRESS_NOTIFICATIONS.
pub(crate) const FLAG_SUPPRESS_NOTIFICATIONS: u64 = 1 << 12;
/// IS_COMPONENTS_V2.
pub(crate) const FLAG_COMPONENTS_V2: u64 = 1 << 15;
/// Flags a bot may set on channel messages.
pub(crate) const CHANNEL_MESSAGE_FLAGS: u64 =
    FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2;
/// Flags allowed on interaction responses and follow-ups.
pub(crate) const INTERACTION_MESSAGE_FLAGS: u64 = CHANNEL_MESSAGE_FLAGS | FLAG_EPHEMERAL;

/// A message to create.
#[derive(Debug)]
pub(crate) struct Create {
    pub channel_id: u64,
    pub author_id: u64,
    pub draft: Draft,
    pub kind: u8,
    pub source: MessageSource,
    pub webhook_id: Option<u64>,
    pub interaction: Option<MsgInteraction>,
    pub flag_mask: u64,
    pub extra_flags: u64,
}

/// Stores uploaded files for a message; `meta` is the `attachments` array of the payload.
pub(crate) fn store_uploads(
    st: &mut State,
    channel_id: u64,
    uploads: &[Upload],
    meta: Option<&[Value]>,
) -> Vec<u64> {
    let mut out = Vec::new();
    for (pos, up) in uploads.iter().enumerate() {
        let index = up.index.unwrap_or(pos as u64);
        let m = meta.and_then(|m| {
            m.iter()
                .find(|a| a.get("id").and_then(ids::from_value) == Some(index))
        });
        let filename = sanitize_filename(
            m.and_then(|m| m.get("filename"))
                .and_then(Value::as_str)
                .unwrap_or(&up.filename),
        );
        let content_type = up
            .content_type
            .clone()
            .filter(|c| !c.is_empty() && c != "application/octet-stream")
            .or_else(|| guess_content_type(&filename))
            .or_else(|| up.content_type.clone());
        let description = m
            .and_then(|m| m.get("description"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let id = st.ids.next_id();
        st.files.insert(
            id,
            StoredFile {
                id,
                channel_id,
                filename,
                content_type,
                description,
                bytes: up.bytes.clone(),
                created: Instant::now(),
            },
        );
        out.push(id);
    }
    out
}

/// Checks a `message_reference` against the channel; returns the referenced message id.
pub(crate) fn check_reference(
    st: &State,
    channel_id: u64,
    draft: &Draft,
) -> Result<Option<u64>, ApiError> {
    let Some(r) = &draft.message_reference else {
        return Ok(None);
    };
    let Some(mid) = r.get("message_id").and_then(ids::from_value) else {
        return Ok(None);
    };
    let ref_channel = r
        .get("channel_id")
        .and_then(ids::from_value)
        .unwrap_or(channel_id);
    let exists = ref_channel == channel_id && st.message(channel_id, mid).is_some();
    let fail = r
        .get("fail_if_not_exists")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    match (exists, fail) {
        (true, _) => Ok(Some(mid)),
        (false, false) => Ok(None),
        (false, true) => Err(ApiError::invalid_field(
            &["message_reference"],
            "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
            "Unknown message",
        )),
    }
}

fn pings_for(
    st: &State,
    channel_id: u64,
    author_id: u64,
    content: &str,
    allowed: Option<&Value>,
    replied: Option<u64>,
) -> crate::records::Pings {
    let in_guild = st.guild_of(channel_id).is_some();
    let perms = st
        .channels
        .get(&channel_id)
        .map(|c| st.channel_permissions(c, author_id))
        .unwrap_or(0);
    let replied_author = replied
        .and_then(|mid| st.message(channel_id, mid))
        .map(|m| m.author_id);
    let known_user = |id: u64| st.user(id).is_some();
    // The bot's role and Admin exist and are not mentionable (pinging them needs
    // MENTION_EVERYONE); `<@&guild_id>` is not a role ping in Discord either.
    let roles = [st.bot_role_id, st.admin_role_id];
    let role_mentionable = move |id: u64| -> Option<bool> { roles.contains(&id).then_some(false) };
    let ctx = PingContext {
        known_user: &known_user,
        role_mentionable: &role_mentionable,
        in_guild,
        can_mention_everyone: perms & permissions::MENTION_EVERYONE != 0,
        replied_author,
        author: author_id,
    };
    mentions::compute(content, &Allowed::from_json(allowed), &ctx)
}

fn scope_for(st: &State, m: &MessageRec) -> Scope {
    if st.guild_of(m.channel_id).is_some() {
        let exempt = m.author_id == st.bot.id || m.pings.users.contains(&st.bot.id);
        Scope::GuildMessage {
            content_exempt: exempt,
        }
    } else {
        Scope::DmMessage
    }
}

/// Dispatches a message event for a stored message (not for ephemeral ones).
pub(crate) fn dispatch_message(
    st: &mut State,
    ctx: Ctx<'_>,
    event: &str,
    channel_id: u64,
    message_id: u64,
) {
    let Some(m) = st
        .channels
        .get(&channel_id)
        .and_then(|c| c.messages.get(&message_id))
    else {
        return;
    };
    if m.ephemeral() {
        return;
    }
    let d = payloads::message_json(st, ctx.rest_base, m, true);
    let scope = scope_for(st, m);
    st.gateway.dispatch(event, &d, scope);
}

/// How far back Discord looks for an enforced nonce ("the past few minutes").
const NONCE_WINDOW_MS: u64 = 5 * 60 * 1000;

/// The author's message in the channel carrying `nonce`, created within [`NONCE_WINDOW_MS`].
fn same_nonce(st: &State, channel_id: u64, author_id: u64, nonce: &Value) -> Option<u64> {
    let now = crate::snowflake::now_unix_ms();
    st.channels
        .get(&channel_id)?
        .messages
        .values()
        .rev()
        .take_while(|m| now.saturating_sub(crate::snowflake::unix_ms_of(m.id)) <= NONCE_WINDOW_MS)
        .find(|m| m.author_id == author_id && m.nonce.as_ref() == Some(nonce))
        .map(|m| m.id)
}

/// Creates a message, echoes it on the gateway (unless ephemeral) and logs bot activity. With
/// `enforce_nonce`, a repeat of a recent nonce by the same author creates nothing and returns the
/// first message, as Discord does.
pub(crate) fn create(st: &mut State, ctx: Ctx<'_>, c: Create) -> Result<u64, ApiError> {
    if let (true, Some(nonce)) = (c.draft.enforce_nonce, c.draft.nonce.as_ref()) {
        if let Some(id) = same_nonce(st, c.channel_id, c.author_id, nonce) {
            return Ok(id);
        }
    }
    let referenced_id = check_reference(st, c.channel_id, &c.draft)?;
    let id = st.ids.next_id();
    let attachments = store_uploads(
        st,
        c.channel_id,
        &c.draft.files,
        c.draft.attachments.as_deref(),
    );
    let content = c.draft.content.clone().unwrap_or_default();
    let pings = pings_for(
        st,
        c.channel_id,
        c.author_id,
        &content,
        c.draft.allowed_mentions.as_ref(),
        referenced_id,
    );
    let kind = if referenced_id.is_some() && c.kind == 0 {
        19
    } else {
        c.kind
    };
    let rec = MessageRec {
        id,
        channel_id: c.channel_id,
        author_id: c.author_id,
        content,
        embeds: c.draft.embeds.unwrap_or_default(),
        components: c.draft.components.unwrap_or_default(),
        attachments,
        allowed_mentions: c.draft.allowed_mentions,
        flags: (c.draft.flags.unwrap_or(0) & c.flag_mask) | c.extra_flags,
        tts: c.draft.tts,
        message_reference: c.draft.message_reference.map(|mut r| {
            if let Some(o) = r.as_object_mut() {
                o.entry("channel_id".to_string())
                    .or_insert_with(|| Value::String(c.channel_id.to_string()));
                o.entry("type".to_string()).or_insert(Value::from(0));
            }
            r
        }),
        referenced_id,
        kind,
        webhook_id: c.webhook_id,
        interaction: c.interaction,
        edited_at: None,
        edits: 0,
        deleted: false,
        pings,
        source: c.source,
        nonce: c.draft.nonce,
    };
    let from_bot = rec.author_id == st.bot.id;
    let Some(channel) = st.channels.get_mut(&c.channel_id) else {
        return Err(ApiError::unknown_channel());
    };
    channel.last_message_id = Some(id);
    channel.messages.insert(id, rec);
    dispatch_message(st, ctx, "MESSAGE_CREATE", c.channel_id, id);
    if from_bot {
        if let Some(m) = st.message(c.channel_id, id) {
            let record = st.message_record(ctx.rest_base, m);
            st.log_bot(
                ctx.at_ms,
                c.channel_id,
                BotAction::Sent {
                    message: Box::new(record),
                },
            );
        }
    }
    Ok(id)
}

/// Applies an edit. `clear_flags` are removed (LOADING when a deferred response is filled in).
pub(crate) fn edit(
    st: &mut State,
    ctx: Ctx<'_>,
    channel_id: u64,
    message_id: u64,
    draft: Draft,
    clear_flags: u64,
) -> Result<(), ApiError> {
    let new_files = store_uploads(st, channel_id, &draft.files, draft.attachments.as_deref());
    let Some(existing) = st.message(channel_id, message_id).cloned() else {
        return Err(ApiError::unknown_message());
    };
    let mut m = existing;
    if let Some(c) = draft.content {
        m.content = c;
    }
    if let Some(e) = draft.embeds {
        m.embeds = e;
    }
    if let Some(c) = draft.components {
        m.components = c;
    }
    if draft.allowed_mentions.is_some() {
        m.allowed_mentions = draft.allowed_mentions;
    }
    if let Some(f) = draft.flags {
        m.flags = (m.flags & !FLAG_SUPPRESS_EMBEDS) | (f & FLAG_SUPPRESS_EMBEDS);
    }
    m.flags &= !clear_flags;
    if let Some(keep) = &draft.attachments {
        let keep_ids: Vec<u64> = keep
            .iter()
            .filter_map(|a| a.get("id").and_then(ids::from_value))
            .collect();
        m.attachments.retain(|a| keep_ids.contains(a));
    }
    m.attachments.extend(new_files);
    let empty = m.content.trim().is_empty()
        && m.embeds.is_empty()
        && m.components.is_empty()
        && m.attachments.is_empty();
    if empty && m.flags & FLAG_LOADING == 0 {
        return Err(ApiError::empty_message());
    }
    m.pings = pings_for(
        st,
        channel_id,
        m.author_id,
        &m.content,
        m.allowed_mentions.as_ref(),
        m.referenced_id,
    );
    m.edited_at = Some(OffsetDateTime::now_utc());
    m.edits += 1;
    let from_bot = m.author_id == st.bot.id;
    if let Some(slot) = st.message_mut(channel_id, message_id) {
        *slot = m;
    }
    dispatch_message(st, ctx, "MESSAGE_UPDATE", channel_id, message_id);
    if from_bot {
        if let Some(m) = st.message(channel_id, message_id) {
            let record = st.message_record(ctx.rest_base, m);
            st.log_bot(
                ctx.at_ms,
                channel_id,
                BotAction::Edited {
                    message: Box::new(record),
                },
            );
        }
    }
    Ok(())
}

/// Deletes a message and dispatches MESSAGE_DELETE (unless ephemeral). `by_bot` logs it.
pub(crate) fn delete(
    st: &mut State,
    ctx: Ctx<'_>,
    channel_id: u64,
    message_id: u64,
    by_bot: bool,
) -> Result<(), ApiError> {
    let guild_id = st.guild_of(channel_id);
    let Some(m) = st.message_mut(channel_id, message_id) else {
        return Err(ApiError::unknown_message());
    };
    m.deleted = true;
    let ephemeral = m.ephemeral();
    if !ephemeral {
        let mut d =
            serde_json::json!({"id": message_id.to_string(), "channel_id": channel_id.to_string()});
        let scope = match guild_id {
            Some(g) => {
                d["guild_id"] = Value::String(g.to_string());
                Scope::GuildMessage {
                    content_exempt: true,
                }
            }
            None => Scope::DmMessage,
        };
        st.gateway.dispatch("MESSAGE_DELETE", &d, scope);
    }
    if by_bot {
        st.log_bot(ctx.at_ms, channel_id, BotAction::Deleted { message_id });
    }
    Ok(())
}

/// Messages of a channel as `GET /channels/{id}/messages` sees them: not deleted, not ephemeral.
pub(crate) fn visible(
    messages: &BTreeMap<u64, MessageRec>,
) -> impl DoubleEndedIterator<Item = &MessageRec> {
    messages.values().filter(|m| !m.deleted && !m.ephemeral())
}
