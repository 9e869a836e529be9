//! `discord-ingress setup`: creates the product's channels in the configured guild (reusing any that
//! exist, by name) and registers the slash commands. Idempotent: running it twice changes nothing.

use serde_json::{json, Value};
use tracing::info;

use crate::commands;
use crate::config::DiscordConfig;
use crate::mapping::{RawChannel, RawUser};
use crate::rest::{Body, DiscordRest, RestError, Route};

const VIEW_CHANNEL: u64 = 1 << 10;
const SEND_MESSAGES: u64 = 1 << 11;
const EMBED_LINKS: u64 = 1 << 14;
const ATTACH_FILES: u64 = 1 << 15;
const READ_MESSAGE_HISTORY: u64 = 1 << 16;
const USE_APPLICATION_COMMANDS: u64 = 1 << 31;

/// What the bot itself may do in every product channel.
const BOT_ALLOW: u64 =
    VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY;

/// One product channel.
#[derive(Debug, Clone, Copy)]
pub struct ChannelPlan {
    /// The environment variable its id goes into.
    pub env: &'static str,
    /// Channel name.
    pub name: &'static str,
    /// Channel topic.
    pub topic: &'static str,
    /// `@everyone` allow bits.
    pub everyone_allow: u64,
    /// `@everyone` deny bits.
    pub everyone_deny: u64,
}

/// The channels the product uses.
pub const PLAN: [ChannelPlan; 4] = [
    ChannelPlan {
        env: "DISCORD_ANNOUNCEMENTS_CHANNEL_ID",
        name: "announcements",
        topic: "Official news. Read-only: only the team and the bot post here.",
        everyone_allow: VIEW_CHANNEL | READ_MESSAGE_HISTORY,
        everyone_deny: SEND_MESSAGES,
    },
    ChannelPlan {
        env: "DISCORD_BUG_CHANNEL_ID",
        name: "bug-reports",
        topic: "Report a bug with /bug. Each report becomes a case; its status is updated here.",
        everyone_allow: VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS,
        everyone_deny: SEND_MESSAGES,
    },
    ChannelPlan {
        env: "DISCORD_FEATURE_CHANNEL_ID",
        name: "feature-requests",
        topic: "Suggest a feature with /feature-request. Each request becomes a case.",
        everyone_allow: VIEW_CHANNEL | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS,
        everyone_deny: SEND_MESSAGES,
    },
    ChannelPlan {
        env: "DISCORD_SUPPORT_CHANNEL_ID",
        name: "customer-service",
        topic: "Need help? Type /helpme and the bot will write to you in private.",
        everyone_allow: VIEW_CHANNEL
            | SEND_MESSAGES
            | READ_MESSAGE_HISTORY
            | USE_APPLICATION_COMMANDS,
        everyone_deny: 0,
    },
];

/// A set-up could not complete.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// `DISCORD_GUILD_ID` is required for set-up.
    #[error("DISCORD_GUILD_ID: set-up needs the guild to create channels in")]
    NoGuild,
    /// A Discord call failed.
    #[error(transparent)]
    Rest(#[from] RestError),
}

/// One channel after set-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupChannel {
    /// Environment variable name.
    pub env: &'static str,
    /// Channel name.
    pub name: &'static str,
    /// Channel id.
    pub id: u64,
    /// Created now (false: an existing channel was reused).
    pub created: bool,
}

/// What set-up did.
#[derive(Debug, Clone)]
pub struct SetupReport {
    /// The channels.
    pub channels: Vec<SetupChannel>,
    /// Commands registered.
    pub commands: usize,
}

impl SetupReport {
    /// `NAME=id` lines to paste into `.env`.
    pub fn env_lines(&self) -> String {
        self.channels
            .iter()
            .map(|c| format!("{}={}\n", c.env, c.id))
            .collect()
    }
}

fn overwrites(guild_id: u64, bot_id: u64, plan: &ChannelPlan) -> Value {
    json!([
        {"id": guild_id.to_string(), "type": 0, "allow": plan.everyone_allow.to_string(), "deny": plan.everyone_deny.to_string()},
        {"id": bot_id.to_string(), "type": 1, "allow": BOT_ALLOW.to_string(), "deny": "0"}
    ])
}

/// Runs the set-up against the configured guild.
pub async fn run(rest: &DiscordRest, cfg: &DiscordConfig) -> Result<SetupReport, SetupError> {
    let guild_id = cfg.guild_id.ok_or(SetupError::NoGuild)?;
    let me: RawUser = rest.send_json(&Route::current_user(), Body::Empty).await?;
    let existing: Vec<RawChannel> = rest
        .send_json(&Route::guild_channels(guild_id), Body::Empty)
        .await?;
    let mut channels = Vec::new();
    for plan in PLAN {
        let found = existing.iter().find(|c| {
            matches!(c.kind, 0 | 5)
                && c.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(plan.name))
        });
        let (id, created) = match found {
            Some(c) => {
                info!(
                    channel = plan.name,
                    channel_id = c.id,
                    "Channel exists; reusing it."
                );
                (c.id, false)
            }
            None => {
                let body = json!({
                    "name": plan.name,
                    "type": 0,
                    "topic": plan.topic,
                    "permission_overwrites": overwrites(guild_id, me.id, &plan),
                });
                let c: RawChannel = rest
                    .send_json(&Route::create_guild_channel(guild_id), Body::json(&body))
                    .await?;
                info!(channel = plan.name, channel_id = c.id, "Channel created.");
                (c.id, true)
            }
        };
        channels.push(SetupChannel {
            env: plan.env,
            name: plan.name,
            id,
            created,
        });
    }
    let commands = commands::register(rest, cfg.application_id, Some(guild_id)).await?;
    Ok(SetupReport { channels, commands })
}
