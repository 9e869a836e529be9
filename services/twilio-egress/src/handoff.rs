//! `StartHandoff`: create (or find) the Flex conversation and route it to agents.
//!
//! A resumable procedure keyed by conversation id. After each step the link in `flex_links` is
//! saved, so a retry or a crash resumes at the first missing step instead of repeating earlier ones:
//!
//! 1. conversation, unique name `discord-<user id>-<case number>` (a retry after an unknown outcome
//!    gets 50353 and fetches it by unique name; a closed one is skipped with a `-2`, `-3`… suffix);
//!    reverse index `sid.<CH…>` written;
//! 2. customer participant `discord_<user id>` (50433: already there, its sid is looked up);
//! 3. conversation webhook to webhook-receiver (existing webhooks are checked first whenever an
//!    earlier attempt may have created it);
//! 4. the summary, if any, as the customer's first message (so the agent reads it first);
//! 5. the Flex interaction (task) with the attributes the agent needs;
//! 6. `HandoffStarted` on `twilio.in` (`Nats-Msg-Id` `twilio.handoff.<CH…>`).

use flexcord_bus::topology::TWILIO_IN;
use flexcord_bus::Change;
use flexcord_proto::v1::{twilio_inbound, FlexLink, HandoffStarted, StartHandoff, TwilioInbound};
use flexcord_twilio_api::{
    Conversation, ConversationState, CreateConversation, CreateConversationWebhook,
    CreateInteraction, CreateMessage, CreateParticipant, TwilioError,
};
use serde_json::json;
use tracing::{info, warn};

use crate::egress::{Ctx, Egress};
use crate::failure::Failure;
use crate::marks;

/// Events the conversation webhook subscribes to.
pub const WEBHOOK_FILTERS: [&str; 4] = [
    "onMessageAdded",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
];

/// The customer's chat identity for a Discord user.
pub fn customer_identity(discord_user_id: u64) -> String {
    format!("discord_{discord_user_id}")
}

/// The conversation's unique name: derived from the Discord user and the case, so a retry finds it.
pub fn unique_name(discord_user_id: u64, case_number: &str, conversation_id: &str) -> String {
    let tag: String = if case_number.is_empty() {
        conversation_id.to_owned()
    } else {
        case_number.to_owned()
    };
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("discord-{discord_user_id}-{tag}")
}

/// How many closed conversations with the same base unique name are skipped before giving up.
const MAX_NAME_SUFFIX: u32 = 20;

impl Egress {
    pub(crate) async fn start_handoff(
        &self,
        ctx: &mut Ctx<'_>,
        h: &StartHandoff,
    ) -> Result<(), Failure> {
        let ev = ctx.event;
        let conversation_id = ctx.conversation_id;
        let user = ev
            .user
            .as_ref()
            .filter(|u| u.id != 0)
            .ok_or_else(|| Failure::invalid("StartHandoff without a Discord user"))?;
        if h.case_number.len() > 64 {
            return Err(Failure::invalid("case number longer than 64 characters"));
        }
        let identity = customer_identity(user.id);
        let existing = self
            .links
            .get(conversation_id)
            .await
            .map_err(|e| Failure::bus("reading the Flex link", e))?;
        let mut link = match existing {
            Some(l) if !l.closed && l.case_number == h.case_number => l,
            other => {
                if let Some(old) = other.filter(|l| !l.closed && !l.conversation_sid.is_empty()) {
                    warn!(%conversation_id, old_conversation_sid = %old.conversation_sid, old_case = %old.case_number, new_case = %h.case_number, "A new hand-off replaces a Flex conversation that is not closed.");
                }
                FlexLink {
                    conversation_id: conversation_id.to_owned(),
                    customer_identity: identity.clone(),
                    case_number: h.case_number.clone(),
                    created_at: Some(flexcord_proto::now()),
                    ..Default::default()
                }
            }
        };
        // Writes of an earlier attempt may exist that the link does not know about.
        let mut look_first = ctx.recheck;

        if link.conversation_sid.is_empty() {
            let (conversation, found) = self
                .find_or_create_conversation(ctx, h, user, &identity)
                .await?;
            look_first |= found;
            self.links
                .put_reverse(&conversation.sid, conversation_id)
                .await
                .map_err(|e| Failure::bus("writing the reverse index", e))?;
            link.conversation_sid = conversation.sid.clone();
            link.chat_service_sid = conversation.chat_service_sid.clone().unwrap_or_default();
            self.save_link(&link).await?;
            info!(%conversation_id, conversation_sid = %link.conversation_sid, found, "Flex conversation ready.");
        }
        let sid = link.conversation_sid.clone();
        let client = self.twilio.client();

        if link.customer_participant_sid.is_empty() {
            let req = CreateParticipant {
                identity: identity.clone(),
                attributes: Some(json!({
                    "friendlyName": display_name(user),
                    "discordUserId": user.id.to_string(),
                    "role": "customer",
                })),
                webhook_enabled: None,
            };
            let participant_sid = match self
                .twilio
                .run("participants.create", client.create_participant(&sid, &req))
                .await
            {
                Ok(p) => p.sid,
                Err(e) if e.is_participant_exists() => {
                    let all = self
                        .twilio
                        .run("participants.list", client.list_participants(&sid))
                        .await
                        .map_err(|e| Failure::twilio("finding the customer participant", e))?;
                    all.into_iter()
                        .find(|p| p.identity.as_deref() == Some(identity.as_str()))
                        .map(|p| p.sid)
                        .ok_or_else(|| Failure::Retry {
                            reason: "participant exists but is not listed yet".into(),
                            after: None,
                            uncertain: true,
                        })?
                }
                Err(e) => return Err(Failure::twilio("adding the customer participant", e)),
            };
            link.customer_participant_sid = participant_sid;
            self.save_link(&link).await?;
        }

        if link.webhook_sid.is_empty() {
            let url = self.settings.webhook_url.clone();
            let mut webhook_sid = None;
            if look_first {
                let hooks = self
                    .twilio
                    .run("webhooks.list", client.list_conversation_webhooks(&sid))
                    .await
                    .map_err(|e| Failure::twilio("listing conversation webhooks", e))?;
                webhook_sid = hooks
                    .into_iter()
                    .find(|w| {
                        w.target == "webhook"
                            && w.configuration.url.as_deref() == Some(url.as_str())
                    })
                    .map(|w| w.sid);
            }
            let webhook_sid = match webhook_sid {
                Some(s) => s,
                None => {
                    let req = CreateConversationWebhook {
                        url,
                        method: Some("POST".into()),
                        filters: WEBHOOK_FILTERS.iter().map(|f| (*f).to_owned()).collect(),
                        replay_after: None,
                    };
                    self.twilio
                        .run(
                            "webhooks.create",
                            client.create_conversation_webhook(&sid, &req),
                        )
                        .await
                        .map_err(|e| Failure::twilio("registering the conversation webhook", e))?
                        .sid
                }
            };
            link.webhook_sid = webhook_sid;
            self.save_link(&link).await?;
        }

        let summary = h.summary.trim();
        if !summary.is_empty() && link.summary_message_sid.is_empty() {
            let mut found = None;
            if look_first {
                found = marks::summary_sid(&self.recent_messages(&sid).await?);
            }
            let message_sid = match found {
                Some(s) => s,
                None => {
                    let req = CreateMessage {
                        author: Some(identity.clone()),
                        body: Some(summary.to_owned()),
                        attributes: Some(marks::summary(&h.case_number)),
                        media_sid: None,
                        webhook_enabled: None,
                    };
                    self.twilio
                        .run("messages.create", client.create_message(&sid, &req))
                        .await
                        .map_err(|e| Failure::twilio("posting the hand-off summary", e))?
                        .sid
                }
            };
            link.summary_message_sid = message_sid;
            self.save_link(&link).await?;
        }

        if link.interaction_sid.is_empty() {
            let attributes = self.task_attributes(h, user, &identity, &sid, conversation_id);
            let req = CreateInteraction::customer_chat(
                &sid,
                &self.settings.workspace_sid,
                &self.settings.workflow_sid,
                &self.settings.task_channel,
                attributes,
            );
            let interaction = self
                .twilio
                .run("interactions.create", client.create_interaction(&req))
                .await
                .map_err(|e| Failure::twilio("creating the Flex interaction", e))?;
            link.interaction_sid = interaction.sid.clone();
            link.interaction_channel_sid = interaction.channel_sid().unwrap_or_default().to_owned();
            link.task_sid = interaction.task_sid().unwrap_or_default().to_owned();
            self.save_link(&link).await?;
            info!(%conversation_id, conversation_sid = %sid, interaction_sid = %link.interaction_sid, task_sid = %link.task_sid, case_number = %h.case_number, "Hand-off routed to Flex.");
        }

        let event_id = format!("twilio.handoff.{sid}");
        let inbound = TwilioInbound {
            event_id: event_id.clone(),
            conversation_sid: sid.clone(),
            conversation_id: conversation_id.to_owned(),
            occurred_at: Some(flexcord_proto::now()),
            event: Some(twilio_inbound::Event::HandoffStarted(HandoffStarted {
                interaction_sid: link.interaction_sid.clone(),
                task_sid: link.task_sid.clone(),
                case_number: h.case_number.clone(),
            })),
        };
        self.bus
            .publish(&TWILIO_IN, &sid, &event_id, &inbound)
            .await
            .map_err(|e| Failure::bus("publishing HandoffStarted", e))?;
        Ok(())
    }

    async fn save_link(&self, link: &FlexLink) -> Result<(), Failure> {
        self.links
            .update(&link.conversation_id, |_| Change::Put(link.clone(), ()))
            .await
            .map_err(|e| Failure::bus("saving the Flex link", e))
    }

    /// Creates the conversation, or finds the one an earlier attempt created. Returns whether it
    /// already existed.
    async fn find_or_create_conversation(
        &self,
        ctx: &Ctx<'_>,
        h: &StartHandoff,
        user: &flexcord_proto::v1::DiscordUser,
        identity: &str,
    ) -> Result<(Conversation, bool), Failure> {
        let client = self.twilio.client();
        let base = unique_name(user.id, &h.case_number, ctx.conversation_id);
        let friendly: String = if h.case_number.is_empty() {
            format!("Discord · {}", display_name(user))
        } else {
            format!("Discord · {} · {}", display_name(user), h.case_number)
        }
        .chars()
        .take(256)
        .collect();
        for n in 1..=MAX_NAME_SUFFIX {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let req = CreateConversation {
                friendly_name: Some(friendly.clone()),
                unique_name: Some(name.clone()),
                attributes: Some(json!({
                    "source": "flexcord",
                    "customerIdentity": identity,
                    "discordUserId": user.id.to_string(),
                    "caseNumber": h.case_number,
                    "flexcordConversationId": ctx.conversation_id,
                })),
                state: None,
                timers_inactive: None,
                timers_closed: self.settings.close_timer.clone(),
                webhook_enabled: None,
            };
            match self
                .twilio
                .run("conversations.create", client.create_conversation(&req))
                .await
            {
                Ok(c) => return Ok((c, false)),
                Err(e) if e.is_unique_name_taken() => {
                    let c = self
                        .twilio
                        .run("conversations.fetch", client.fetch_conversation(&name))
                        .await
                        .map_err(|e| {
                            Failure::twilio("fetching the conversation by unique name", e)
                        })?;
                    if c.state != ConversationState::Closed {
                        return Ok((c, true));
                    }
                }
                Err(e) => return Err(Failure::twilio("creating the conversation", e)),
            }
        }
        Err(Failure::invalid(format!(
            "{MAX_NAME_SUFFIX} closed conversations already use the unique name {base}"
        )))
    }

    fn task_attributes(
        &self,
        h: &StartHandoff,
        user: &flexcord_proto::v1::DiscordUser,
        identity: &str,
        conversation_sid: &str,
        conversation_id: &str,
    ) -> serde_json::Value {
        let case_url = if !h.case_url.is_empty() {
            h.case_url.clone()
        } else {
            match (&self.settings.case_page_base_url, h.case_number.is_empty()) {
                (Some(base), false) => format!("{base}/{}", h.case_number),
                _ => String::new(),
            }
        };
        json!({
            "from": identity,
            "customerName": display_name(user),
            "customerAddress": identity,
            "channelType": "chat",
            "customChannelType": "discord",
            "discordUserId": user.id.to_string(),
            "discordUserName": user.username,
            "caseNumber": h.case_number,
            "caseUrl": case_url,
            "language": h.language,
            "conversationSid": conversation_sid,
            "flexcordConversationId": conversation_id,
        })
    }
}

/// The name an agent sees: the Discord display name, else the user name, else the id.
pub fn display_name(user: &flexcord_proto::v1::DiscordUser) -> String {
    if !user.display_name.trim().is_empty() {
        user.display_name.clone()
    } else if !user.username.trim().is_empty() {
        user.username.clone()
    } else {
        user.id.to_string()
    }
}

/// Whether a Twilio error means "this conversation is closed or gone".
pub(crate) fn is_gone(e: &TwilioError) -> bool {
    e.is_conversation_closed() || e.is_not_found()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(customer_identity(42), "discord_42");
        assert_eq!(
            unique_name(42, "CASE-000123", "99"),
            "discord-42-CASE-000123"
        );
        assert_eq!(unique_name(42, "", "99"), "discord-42-99");
        assert_eq!(unique_name(42, "a b/c", "99"), "discord-42-a_b_c");
        let u = flexcord_proto::v1::DiscordUser {
            id: 7,
            username: "nelly".into(),
            display_name: " ".into(),
            locale: String::new(),
        };
        assert_eq!(display_name(&u), "nelly");
    }
}
