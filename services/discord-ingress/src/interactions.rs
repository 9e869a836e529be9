//! Slash commands and button clicks: answered first (inside Discord's 3-second window, never waiting on
//! NATS), then published with the interaction id and token so bot-router can follow up.
//!
//! | interaction | answer | published |
//! | --- | --- | --- |
//! | `/helpme` | ephemeral receipt (type 4, localized), then the DM channel is opened | `CommandInvoked{HELPME, ack EPHEMERAL_RECEIPT}` keyed by the DM channel |
//! | `/bug`, `/feature-request` | deferred ephemeral (type 5) | `CommandInvoked{ack DEFERRED}` keyed by the DM channel if known, else `user-<id>` |
//! | button | deferred update (type 6) | `ComponentClicked` |
//!
//! If the answer fails it is logged with the interaction id and the event is still published (with
//! `ack = UNSPECIFIED`), so bot-router can still act.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flexcord_proto::v1::{InteractionAck, SlashCommand};
use serde_json::{json, Value};
use tracing::{error, info, warn};

use crate::commands;
use crate::dm::open_dm;
use crate::inbound::{Shared, Work};
use crate::mapping::{self, IncomingCommand, IncomingComponent};
use crate::message_payload::{allowed_mentions, EPHEMERAL};
use crate::notices;
use crate::rest::{codes, Body, Route};
use crate::throttle::Verdict;

/// Callback type: a message.
const CHANNEL_MESSAGE: u64 = 4;
/// Callback type: deferred message ("thinking").
const DEFERRED_MESSAGE: u64 = 5;
/// Callback type: deferred update of the component's message.
const DEFERRED_UPDATE: u64 = 6;

fn ephemeral_message(text: &str) -> Value {
    json!({"type": CHANNEL_MESSAGE, "data": {"content": text, "flags": EPHEMERAL, "allowed_mentions": allowed_mentions(None)}})
}

/// Sends the interaction callback; one quick retry on a transient failure. True when acknowledged.
async fn callback(s: &Shared, interaction_id: u64, token: &str, body: Value) -> bool {
    let started = Instant::now();
    for attempt in 1..=2 {
        match s
            .rest
            .send(
                &Route::interaction_callback(interaction_id, token),
                Body::json(&body),
            )
            .await
        {
            Ok(_) => {
                s.metrics.ack("ok");
                tracing::debug!(
                    interaction_id,
                    ms = started.elapsed().as_millis() as u64,
                    "Interaction acknowledged."
                );
                return true;
            }
            Err(e) if e.discord_code() == Some(codes::ALREADY_ACKNOWLEDGED) => {
                // A replayed INTERACTION_CREATE (gateway resume): it was answered the first time.
                s.metrics.ack("already");
                return true;
            }
            Err(e)
                if !e.is_permanent()
                    && attempt == 1
                    && started.elapsed() < Duration::from_millis(1500) =>
            {
                warn!(interaction_id, error = %e, "Interaction acknowledgement failed; retrying once.");
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
            Err(e) => {
                s.metrics.ack("failed");
                error!(interaction_id, error = %e, "Interaction could not be acknowledged; publishing it anyway.");
                return false;
            }
        }
    }
    false
}

fn foreign_guild(s: &Shared, guild_id: Option<u64>) -> bool {
    matches!((s.settings.guild_id, guild_id), (Some(conf), Some(g)) if conf != g)
}

/// Handles a slash command.
pub(crate) async fn command(s: &Arc<Shared>, c: IncomingCommand) {
    if foreign_guild(s, c.guild_id) {
        s.metrics.dropped("other_guild");
        callback(
            s,
            c.id,
            &c.token,
            ephemeral_message(notices::not_available(&c.locale)),
        )
        .await;
        return;
    }
    match s.throttle.check(c.user.id) {
        Verdict::Allow => {}
        Verdict::Blocked => {
            s.metrics.dropped("blocked");
            callback(
                s,
                c.id,
                &c.token,
                ephemeral_message(notices::not_available(&c.locale)),
            )
            .await;
            return;
        }
        Verdict::Throttled | Verdict::ThrottledNotify => {
            s.metrics.dropped("throttled");
            callback(
                s,
                c.id,
                &c.token,
                ephemeral_message(notices::throttled(&c.locale)),
            )
            .await;
            return;
        }
    }
    let which = commands::from_name(&c.name);
    let invoked = commands::localized_name(&c.name, &c.locale);
    let user = c.user.to_proto(&c.locale);
    let in_dm = c.guild_id.is_none();
    let (dm_channel_id, ack) = match which {
        SlashCommand::Unspecified => {
            warn!(interaction_id = c.id, name = %c.name, "Unknown command; answering that it is not available.");
            s.metrics.dropped("unknown_command");
            callback(
                s,
                c.id,
                &c.token,
                ephemeral_message(notices::not_available(&c.locale)),
            )
            .await;
            return;
        }
        SlashCommand::Helpme => {
            let text = if in_dm {
                notices::helpme_receipt_in_dm(&c.locale)
            } else {
                notices::helpme_receipt(&c.locale)
            };
            let acked = callback(s, c.id, &c.token, ephemeral_message(text)).await;
            let dm = if in_dm {
                s.state.observe_dm(c.channel_id, &user, c.id);
                Some(c.channel_id)
            } else {
                match open_dm(&s.rest, &s.state, &user, true, c.id).await {
                    Ok(d) => Some(d),
                    Err(e) => {
                        error!(interaction_id = c.id, user_id = c.user.id, error = %e, "Cannot open the user's DM channel.");
                        None
                    }
                }
            };
            (
                dm,
                if acked {
                    InteractionAck::EphemeralReceipt
                } else {
                    InteractionAck::Unspecified
                },
            )
        }
        SlashCommand::Bug | SlashCommand::FeatureRequest => {
            let acked = callback(
                s,
                c.id,
                &c.token,
                json!({"type": DEFERRED_MESSAGE, "data": {"flags": EPHEMERAL}}),
            )
            .await;
            let dm = if in_dm {
                s.state.observe_dm(c.channel_id, &user, c.id);
                Some(c.channel_id)
            } else {
                s.state.user_dm(c.user.id)
            };
            (
                dm,
                if acked {
                    InteractionAck::Deferred
                } else {
                    InteractionAck::Unspecified
                },
            )
        }
    };
    let key = dm_channel_id
        .map(|d| d.to_string())
        .unwrap_or_else(|| mapping::user_key(c.user.id));
    info!(interaction_id = c.id, command = %c.name, user_id = c.user.id, key = %key, "Command answered.");
    let event = mapping::command(&c, which, invoked, dm_channel_id.unwrap_or(0), ack);
    s.enqueue(
        key,
        Work::Publish {
            msg_id: mapping::msg_id_interaction(c.id),
            event: Box::new(event),
            kind: "command",
        },
    );
}

/// Handles a button click.
pub(crate) async fn component(s: &Arc<Shared>, c: IncomingComponent) {
    let update = json!({"type": DEFERRED_UPDATE});
    if foreign_guild(s, c.guild_id) {
        s.metrics.dropped("other_guild");
        callback(s, c.id, &c.token, update).await;
        return;
    }
    match s.throttle.check(c.user.id) {
        Verdict::Allow => {}
        verdict => {
            s.metrics.dropped(if verdict == Verdict::Blocked {
                "blocked"
            } else {
                "throttled"
            });
            callback(s, c.id, &c.token, update).await;
            return;
        }
    }
    let acked = callback(s, c.id, &c.token, update).await;
    if !acked {
        warn!(
            interaction_id = c.id,
            "Button click published without an acknowledgement."
        );
    }
    let dm = if c.guild_id.is_none() {
        s.state
            .observe_dm(c.channel_id, &c.user.to_proto(&c.locale), c.id);
        Some(c.channel_id)
    } else {
        s.state.user_dm(c.user.id)
    };
    let key = dm
        .map(|d| d.to_string())
        .unwrap_or_else(|| mapping::user_key(c.user.id));
    let event = mapping::component(&c, dm.unwrap_or(0));
    s.enqueue(
        key,
        Work::Publish {
            msg_id: mapping::msg_id_interaction(c.id),
            event: Box::new(event),
            kind: "component",
        },
    );
}
