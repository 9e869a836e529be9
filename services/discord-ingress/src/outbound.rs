//! The `DISCORD_OUT` consumer: carries out `DiscordOutbound` events as Discord REST calls.
//!
//! * Order: the bus runner hands over one event per key (target) at a time; the REST client keeps one
//!   request per channel in flight and retries 429s in place, so a channel's messages arrive in order.
//! * Exactly once as far as we can: before sending, the event's sent record (`out.<event id>` in KV) is
//!   read; each part is recorded as soon as Discord returns it, so a redelivery after a crash sends only
//!   the parts not yet sent. Channel messages also carry a `nonce` with `enforce_nonce`, so Discord
//!   itself drops a repeat of a part whose answer was lost.
//! * Text over 2,000 characters is split (lines, then words); embeds, buttons and files ride on the
//!   last part. `allowed_mentions` is always sent: nobody is pinged unless the event says so.
//! * Failures: 429/5xx/network are retried by the runner (after `retry_after` for rate limits); a
//!   failure that can never succeed (50007 DMs closed, 10003 unknown channel, 50035...) publishes a
//!   `DiscordDeliveryFailed` notice on `DISCORD_IN` (`discord.fail.<event id>`, keyed by the event's
//!   conversation) and is then dead-lettered with its reason.

use flexcord_bus::topology::DISCORD_IN;
use flexcord_bus::{Bus, BusError, Delivery, Handler, HandlerError, Objects};
use flexcord_proto::v1::{
    discord_inbound, discord_outbound, DeleteOutbound, DiscordDeliveryFailed, DiscordInbound,
    DiscordOutbound, DiscordUser, EditOutbound, IngressSentMessage, InteractionRef,
    OutboundMessage,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::dm::open_dm;
use crate::mapping::{self, RawMessageId};
use crate::message_payload::{create_body, edit_body, PartKind};
use crate::rest::{Body, DiscordRest, FilePart, RestError, Route, WebhookMessage};
use crate::split::{split_message, MESSAGE_LIMIT};
use crate::state::{RecentIds, State};

/// A Discord `nonce` (at most 25 characters) derived from an event id and a part index.
pub fn nonce(event_id: &str, part: usize) -> String {
    let digest = Sha256::digest(format!("{event_id}#{part}").as_bytes());
    hex::encode(&digest[..12])
}

/// Outbound metrics.
#[derive(Debug, Clone, Default)]
pub struct OutboundMetrics {
    /// Discord messages sent, edited or deleted, by action.
    pub done: Family<Vec<(String, String)>, Counter>,
    /// Outbound events that can never be delivered, by Discord code.
    pub failed: Family<Vec<(String, String)>, Counter>,
}

impl OutboundMetrics {
    /// Registers the metrics.
    pub fn register(&self, m: &flexcord_bus::Metrics) {
        m.register(
            "discord_outbound_done",
            "Discord messages sent, edited or deleted",
            self.done.clone(),
        );
        m.register(
            "discord_outbound_failed",
            "Outbound events that can never be delivered, by Discord code",
            self.failed.clone(),
        );
    }

    fn done(&self, action: &str) {
        self.done
            .get_or_create(&vec![("action".to_owned(), action.to_owned())])
            .inc();
    }
}

/// Why an outbound event was not carried out.
#[derive(Debug)]
enum Failure {
    /// Try again (after `after` if given).
    Retry {
        reason: String,
        after: Option<std::time::Duration>,
    },
    /// Never possible.
    Permanent {
        code: i64,
        status: u32,
        reason: String,
    },
    /// An edit names an event with no sent record (yet: its send may still be recording under
    /// another key). Retried a few times, then permanent.
    UnknownOriginal(String),
}

/// Attempts an edit of an unknown original gets before it is given up.
const UNKNOWN_ORIGINAL_ATTEMPTS: u32 = 4;

impl From<RestError> for Failure {
    fn from(e: RestError) -> Self {
        if e.is_permanent() {
            Failure::Permanent {
                code: e.discord_code().unwrap_or(0),
                status: u32::from(e.http_status().unwrap_or(0)),
                reason: e.to_string(),
            }
        } else {
            Failure::Retry {
                after: e.retry_after(),
                reason: e.to_string(),
            }
        }
    }
}

impl From<BusError> for Failure {
    fn from(e: BusError) -> Self {
        Failure::Retry {
            reason: e.to_string(),
            after: None,
        }
    }
}

fn invalid(reason: impl Into<String>) -> Failure {
    Failure::Permanent {
        code: 0,
        status: 0,
        reason: reason.into(),
    }
}

/// Where the parts of a message go.
#[derive(Debug, Clone)]
enum Dest {
    Channel(u64),
    Webhook {
        application_id: u64,
        token: String,
        edit_original: bool,
        ephemeral: bool,
    },
}

/// The handler of the `DISCORD_OUT` consumer.
#[derive(Clone)]
pub struct OutboundHandler {
    /// The bus (for failure notices).
    pub bus: Bus,
    /// The REST client.
    pub rest: DiscordRest,
    /// State (sent records, DM channels).
    pub state: State,
    /// The attachments object store (files to upload).
    pub objects: Objects,
    /// Ids of the bot's own deleted messages (shared with inbound).
    pub own_deletes: RecentIds,
    /// The application id (interaction webhooks).
    pub application_id: u64,
    /// Whether this process runs the gateway (then opened DM channels are tracked for catch-up).
    pub track_dm_channels: bool,
    /// Metrics.
    pub metrics: OutboundMetrics,
}

impl std::fmt::Debug for OutboundHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundHandler")
            .field("application_id", &self.application_id)
            .finish_non_exhaustive()
    }
}

impl Handler<DiscordOutbound> for OutboundHandler {
    async fn handle(&self, d: &Delivery<DiscordOutbound>) -> Result<(), HandlerError> {
        match self.carry_out(&d.event).await {
            Ok(()) => Ok(()),
            Err(Failure::Retry { reason, after }) => Err(HandlerError::Retry { reason, after }),
            Err(Failure::UnknownOriginal(original)) if d.attempt < UNKNOWN_ORIGINAL_ATTEMPTS => {
                Err(HandlerError::Retry {
                    reason: format!("unknown original event {original}"),
                    after: Some(std::time::Duration::from_millis(250 * u64::from(d.attempt))),
                })
            }
            Err(Failure::UnknownOriginal(original)) => {
                let reason = format!("unknown original event {original}");
                warn!(event_id = %d.event.event_id, %reason, "Edit of an event that sent nothing; reporting it.");
                self.metrics
                    .failed
                    .get_or_create(&vec![("code".to_owned(), "0".to_owned())])
                    .inc();
                self.report_failure(&d.event, 0, 0, &reason)
                    .await
                    .map_err(|e| {
                        HandlerError::retry(format!("cannot publish the failure notice: {e}"))
                    })?;
                Err(HandlerError::permanent(reason))
            }
            Err(Failure::Permanent {
                code,
                status,
                reason,
            }) => {
                warn!(event_id = %d.event.event_id, code, status, %reason, "Outbound event can never be delivered; reporting it.");
                self.metrics
                    .failed
                    .get_or_create(&vec![("code".to_owned(), code.to_string())])
                    .inc();
                self.report_failure(&d.event, code, status, &reason)
                    .await
                    .map_err(|e| {
                        HandlerError::retry(format!("cannot publish the failure notice: {e}"))
                    })?;
                Err(HandlerError::permanent(reason))
            }
        }
    }
}

impl OutboundHandler {
    async fn carry_out(&self, ev: &DiscordOutbound) -> Result<(), Failure> {
        if ev.event_id.is_empty() || ev.event_id.len() > 512 {
            return Err(invalid("event_id must be 1 to 512 characters"));
        }
        let target = ev.target.as_ref().ok_or_else(|| invalid("no target"))?;
        match target {
            discord_outbound::Target::ChannelId(0) | discord_outbound::Target::UserId(0) => {
                return Err(invalid("target id is 0"))
            }
            discord_outbound::Target::Interaction(ix)
                if ix.interaction_id == 0 || ix.token.is_empty() =>
            {
                return Err(invalid("interaction target needs an id and a token"))
            }
            _ => {}
        }
        match ev.action.as_ref().ok_or_else(|| invalid("no action"))? {
            discord_outbound::Action::Send(m) => self.send(ev, target, m).await,
            discord_outbound::Action::Edit(e) => self.edit(ev, e).await,
            discord_outbound::Action::Delete(d) => self.delete(d).await,
        }
    }

    async fn dest(
        &self,
        target: &discord_outbound::Target,
        m: &OutboundMessage,
    ) -> Result<Dest, Failure> {
        Ok(match target {
            discord_outbound::Target::ChannelId(c) => Dest::Channel(*c),
            discord_outbound::Target::UserId(u) => {
                let user = DiscordUser {
                    id: *u,
                    ..Default::default()
                };
                let initial = mapping::snowflake_at(mapping::now_ms());
                Dest::Channel(
                    open_dm(
                        &self.rest,
                        &self.state,
                        &user,
                        self.track_dm_channels,
                        initial,
                    )
                    .await?,
                )
            }
            discord_outbound::Target::Interaction(ix) => Dest::Webhook {
                application_id: if ix.application_id != 0 {
                    ix.application_id
                } else {
                    self.application_id
                },
                token: ix.token.clone(),
                edit_original: m.edit_original_response,
                ephemeral: m.ephemeral,
            },
        })
    }

    async fn load_files(&self, m: &OutboundMessage) -> Result<Vec<FilePart>, Failure> {
        let mut files = Vec::with_capacity(m.files.len());
        for f in &m.files {
            if f.object_name.is_empty() {
                return Err(invalid(format!("file {} has no object name", f.filename)));
            }
            let data = self.objects.get(&f.object_name).await?.ok_or_else(|| {
                invalid(format!("file {} is not in the object store", f.object_name))
            })?;
            let filename = if f.filename.is_empty() {
                f.object_name
                    .rsplit('/')
                    .next()
                    .unwrap_or("file")
                    .to_owned()
            } else {
                f.filename.clone()
            };
            let content_type = if f.content_type.is_empty() {
                "application/octet-stream".to_owned()
            } else {
                f.content_type.clone()
            };
            files.push(FilePart {
                filename,
                content_type,
                data: data.into(),
            });
        }
        Ok(files)
    }

    async fn record(&self, rec: &IngressSentMessage) -> Result<(), Failure> {
        let mut delay = std::time::Duration::from_millis(50);
        for attempt in 1..=5 {
            match self.state.put_sent(rec).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 5 => {
                    warn!(event_id = %rec.event_id, error = %e, "Cannot record a sent message yet; retrying.");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        ev: &DiscordOutbound,
        target: &discord_outbound::Target,
        m: &OutboundMessage,
    ) -> Result<(), Failure> {
        let mut rec = self.state.sent(&ev.event_id).await?.unwrap_or_default();
        if rec.complete || rec.deleted {
            info!(event_id = %ev.event_id, "Outbound event already carried out; acknowledging.");
            return Ok(());
        }
        let mut parts = split_message(&m.content, MESSAGE_LIMIT);
        if parts.is_empty() {
            if m.embeds.is_empty() && m.files.is_empty() {
                return Err(invalid("nothing to send: no text, embeds or files"));
            }
            parts.push(String::new());
        }
        let dest = self.dest(target, m).await?;
        let files = if rec.message_ids.len() < parts.len() {
            self.load_files(m).await?
        } else {
            Vec::new()
        };
        let names: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
        rec.event_id = ev.event_id.clone();
        rec.parts_total = parts.len() as u32;
        let last = parts.len() - 1;
        for (i, part) in parts.iter().enumerate().skip(rec.message_ids.len()) {
            let kind = if i == last {
                PartKind::Last
            } else {
                PartKind::TextOnly
            };
            let part_files: &[String] = if kind == PartKind::Last { &names } else { &[] };
            let (route, json) = match &dest {
                Dest::Channel(c) => (
                    Route::create_message(*c),
                    create_body(
                        part,
                        m,
                        kind,
                        part_files,
                        Some(&nonce(&ev.event_id, i)),
                        false,
                    ),
                ),
                Dest::Webhook {
                    application_id,
                    token,
                    edit_original: true,
                    ..
                } if i == 0 => (
                    Route::edit_webhook_message(*application_id, token, WebhookMessage::Original),
                    create_body(part, m, kind, part_files, None, false),
                ),
                Dest::Webhook {
                    application_id,
                    token,
                    ephemeral,
                    ..
                } => (
                    Route::followup(*application_id, token),
                    create_body(part, m, kind, part_files, None, *ephemeral),
                ),
            };
            let body = if kind == PartKind::Last && !files.is_empty() {
                Body::Multipart {
                    payload_json: json.to_string().into(),
                    files: files.clone(),
                }
            } else {
                Body::json(&json)
            };
            let sent: RawMessageId = self.rest.send_json(&route, body).await?;
            match &dest {
                Dest::Channel(c) => rec.channel_id = *c,
                Dest::Webhook {
                    application_id,
                    token,
                    edit_original,
                    ..
                } => {
                    rec.channel_id = sent.channel_id.unwrap_or(rec.channel_id);
                    rec.application_id = *application_id;
                    rec.interaction_token = token.clone();
                    if i == 0 && *edit_original {
                        rec.first_is_original = true;
                    }
                }
            }
            rec.message_ids.push(sent.id);
            rec.complete = i == last;
            rec.updated_at = Some(flexcord_proto::now());
            self.record(&rec).await?;
            self.metrics.done("sent");
        }
        Ok(())
    }

    async fn edit(&self, ev: &DiscordOutbound, e: &EditOutbound) -> Result<(), Failure> {
        let m = e
            .message
            .as_ref()
            .ok_or_else(|| invalid("edit without a message"))?;
        let mut rec = self
            .state
            .sent(&e.original_event_id)
            .await?
            .ok_or_else(|| Failure::UnknownOriginal(e.original_event_id.clone()))?;
        if rec.deleted {
            warn!(event_id = %ev.event_id, original = %e.original_event_id, "Edit of a deleted message ignored.");
            return Ok(());
        }
        let mut parts = split_message(&m.content, MESSAGE_LIMIT);
        if parts.is_empty() {
            if m.embeds.is_empty() {
                return Err(invalid("an edit needs text or embeds"));
            }
            parts.push(String::new());
        }
        let last = parts.len() - 1;
        let webhook = rec.application_id != 0 && !rec.interaction_token.is_empty();
        for (i, part) in parts.iter().enumerate() {
            let kind = if i == last {
                PartKind::Last
            } else {
                PartKind::TextOnly
            };
            if let Some(&id) = rec.message_ids.get(i) {
                let route = if webhook {
                    let which = if i == 0 && rec.first_is_original {
                        WebhookMessage::Original
                    } else {
                        WebhookMessage::Id(id)
                    };
                    Route::edit_webhook_message(rec.application_id, &rec.interaction_token, which)
                } else {
                    Route::edit_message(rec.channel_id, id)
                };
                self.rest
                    .send(&route, Body::json(&edit_body(part, m, kind)))
                    .await?;
                self.metrics.done("edited");
            } else {
                // The new text needs more parts than were sent: append them.
                let (route, json) = if webhook {
                    (
                        Route::followup(rec.application_id, &rec.interaction_token),
                        create_body(part, m, kind, &[], None, false),
                    )
                } else {
                    let seed = format!("{}#edit#{}", ev.event_id, i);
                    (
                        Route::create_message(rec.channel_id),
                        create_body(part, m, kind, &[], Some(&nonce(&seed, i)), false),
                    )
                };
                let sent: RawMessageId = self.rest.send_json(&route, Body::json(&json)).await?;
                rec.message_ids.push(sent.id);
                rec.parts_total = rec.message_ids.len() as u32;
                rec.updated_at = Some(flexcord_proto::now());
                self.record(&rec).await?;
                self.metrics.done("sent");
            }
        }
        // Fewer parts than before: delete the surplus ones.
        while rec.message_ids.len() > parts.len() {
            let Some(&id) = rec.message_ids.last() else {
                break;
            };
            self.delete_one(&rec, rec.message_ids.len() - 1, id).await?;
            rec.message_ids.pop();
            rec.parts_total = rec.message_ids.len() as u32;
            rec.updated_at = Some(flexcord_proto::now());
            self.record(&rec).await?;
        }
        Ok(())
    }

    async fn delete_one(
        &self,
        rec: &IngressSentMessage,
        index: usize,
        id: u64,
    ) -> Result<(), Failure> {
        self.own_deletes.insert(id);
        let route = if rec.application_id != 0 && !rec.interaction_token.is_empty() {
            let which = if index == 0 && rec.first_is_original {
                WebhookMessage::Original
            } else {
                WebhookMessage::Id(id)
            };
            Route::delete_webhook_message(rec.application_id, &rec.interaction_token, which)
        } else {
            Route::delete_message(rec.channel_id, id)
        };
        match self.rest.send(&route, Body::Empty).await {
            Ok(_) => {
                self.metrics.done("deleted");
                Ok(())
            }
            Err(e) if e.is_unknown_target() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, d: &DeleteOutbound) -> Result<(), Failure> {
        let Some(mut rec) = self.state.sent(&d.original_event_id).await? else {
            warn!(original = %d.original_event_id, "Delete of an event that sent nothing; nothing to do.");
            return Ok(());
        };
        if rec.deleted {
            return Ok(());
        }
        for (i, id) in rec.message_ids.clone().into_iter().enumerate() {
            self.delete_one(&rec, i, id).await?;
        }
        rec.deleted = true;
        rec.updated_at = Some(flexcord_proto::now());
        self.record(&rec).await
    }

    async fn report_failure(
        &self,
        ev: &DiscordOutbound,
        code: i64,
        status: u32,
        reason: &str,
    ) -> Result<(), BusError> {
        let (channel_id, user) = match &ev.target {
            Some(discord_outbound::Target::ChannelId(c)) => (*c, self.state.channel_user(*c)),
            Some(discord_outbound::Target::UserId(u)) => (
                self.state.user_dm(*u).unwrap_or(0),
                Some(DiscordUser {
                    id: *u,
                    ..Default::default()
                }),
            ),
            _ => (0, None),
        };
        let dm_channel_id = if channel_id != 0 && self.state.is_dm(channel_id) {
            channel_id
        } else {
            0
        };
        let key = if !ev.conversation_id.is_empty() {
            ev.conversation_id.clone()
        } else {
            match &ev.target {
                Some(discord_outbound::Target::ChannelId(c)) => c.to_string(),
                Some(discord_outbound::Target::UserId(u)) => mapping::user_key(*u),
                Some(discord_outbound::Target::Interaction(InteractionRef {
                    interaction_id,
                    ..
                })) => format!("ix-{interaction_id}"),
                None => "unknown".to_owned(),
            }
        };
        let msg_id = mapping::msg_id_failed(&ev.event_id);
        let event = DiscordInbound {
            event_id: msg_id.clone(),
            occurred_at: Some(flexcord_proto::now()),
            user,
            channel_id,
            guild_id: 0,
            dm_channel_id,
            event: Some(discord_inbound::Event::DeliveryFailed(
                DiscordDeliveryFailed {
                    outbound_event_id: ev.event_id.clone(),
                    discord_code: i32::try_from(code).unwrap_or(0),
                    http_status: status,
                    reason: reason.chars().take(500).collect(),
                },
            )),
        };
        self.bus
            .publish(&DISCORD_IN, &key, &msg_id, &event)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_short_and_stable() {
        let n = nonce("evt-1", 0);
        assert_eq!(n.len(), 24);
        assert_eq!(n, nonce("evt-1", 0));
        assert_ne!(n, nonce("evt-1", 1));
    }
}
