//! Steady state: customer messages (one `POST …/Messages` per message; attachments uploaded to MCS
//! first, one message per file), edits, deletes, system notices and closing.

use std::collections::BTreeMap;

use flexcord_proto::v1::{
    Attachment, CloseFlexConversation, CustomerMessage, CustomerMessageDeleted,
    CustomerMessageEdited, FlexLink, SystemNotice,
};
use flexcord_twilio_api::{CreateMessage, UpdateMessage};
use tracing::{info, warn};

use crate::egress::{Ctx, Egress};
use crate::failure::Failure;
use crate::handoff::is_gone;
use crate::marks;

/// Longest text sent in one message (Twilio chat bodies take 32 KB; Discord messages are shorter).
const MAX_BODY_CHARS: usize = 16_000;

/// One Twilio message of a customer message.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// The text (part 0).
    Text(String),
    /// An attachment to upload (part n ≥ 1).
    Media(Attachment),
    /// An attachment that cannot be forwarded, replaced by a marked text.
    Placeholder {
        /// The attachment.
        attachment: Attachment,
        /// Shown to the agent.
        text: String,
    },
}

/// The Twilio messages a customer message becomes, numbered: text first (part 0), then one per
/// attachment (part i + 1). Flex cannot show text and a file in one message.
pub fn plan_parts(m: &CustomerMessage) -> Vec<(u32, Part)> {
    let mut parts = Vec::new();
    let text = m.text.trim();
    if !text.is_empty() {
        parts.push((0, Part::Text(text.chars().take(MAX_BODY_CHARS).collect())));
    }
    for (i, a) in m.attachments.iter().enumerate() {
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let name = if a.filename.is_empty() {
            "file"
        } else {
            a.filename.as_str()
        };
        let part = if a.too_large {
            Part::Placeholder {
                attachment: a.clone(),
                text: format!(
                    "[Attachment not forwarded: {name} is too large ({} bytes)]",
                    a.size_bytes
                ),
            }
        } else if a.object_name.is_empty() {
            Part::Placeholder {
                attachment: a.clone(),
                text: format!("[Attachment not forwarded: {name} could not be stored]"),
            }
        } else {
            Part::Media(a.clone())
        };
        parts.push((n, part));
    }
    parts
}

impl Egress {
    /// The conversation's open link, or the reason there is none.
    async fn open_link(
        &self,
        conversation_id: &str,
    ) -> Result<Result<FlexLink, &'static str>, Failure> {
        let link = self
            .links
            .get(conversation_id)
            .await
            .map_err(|e| Failure::bus("reading the Flex link", e))?;
        Ok(match link {
            None => Err("no Flex conversation for this conversation"),
            Some(l) if l.conversation_sid.is_empty() => {
                Err("the hand-off has not created a Flex conversation")
            }
            Some(l) if l.closed => Err("the Flex conversation is closed"),
            Some(l) => Ok(l),
        })
    }

    pub(crate) async fn customer_message(
        &self,
        ctx: &mut Ctx<'_>,
        m: &CustomerMessage,
    ) -> Result<(), Failure> {
        let id = m.discord_message_id;
        if id == 0 {
            return Err(Failure::invalid(
                "CustomerMessage without a Discord message id",
            ));
        }
        let link = self
            .open_link(ctx.conversation_id)
            .await?
            .map_err(Failure::closed)?;
        if !self.recorded_parts(ctx, &link, id).await?.is_empty() {
            return Ok(()); // delivered by an earlier attempt
        }
        let parts = plan_parts(m);
        if parts.is_empty() {
            info!(conversation_id = %ctx.conversation_id, discord_message_id = id, "Empty customer message; nothing to post.");
            return Ok(());
        }
        let sid = link.conversation_sid.clone();
        if ctx.recheck {
            let found = marks::customer_parts(&self.recent_messages(&sid).await?, id);
            for (k, v) in found {
                ctx.parts.entry(k).or_insert(v);
            }
        }
        for (n, part) in &parts {
            if ctx.parts.contains_key(n) {
                continue;
            }
            let im = self.post_part(&link, id, *n, part).await?;
            ctx.parts.insert(*n, im);
        }
        let posted: BTreeMap<u32, String> = parts
            .iter()
            .filter_map(|(n, _)| ctx.parts.get(n).map(|s| (*n, s.clone())))
            .collect();
        self.links
            .record_message(ctx.conversation_id, &sid, id, &posted)
            .await
            .map_err(|e| Failure::bus("recording the message sid", e))
    }

    async fn post_part(
        &self,
        link: &FlexLink,
        discord_message_id: u64,
        n: u32,
        part: &Part,
    ) -> Result<String, Failure> {
        let client = self.twilio.client();
        let sid = &link.conversation_sid;
        let (body, media_sid, attributes) = match part {
            Part::Text(text) => (
                Some(text.clone()),
                None,
                marks::customer_part(discord_message_id, 0, None),
            ),
            Part::Placeholder { attachment, text } => {
                let mut a = marks::customer_part(
                    discord_message_id,
                    n,
                    Some(attachment.discord_attachment_id),
                );
                a["placeholder"] = serde_json::Value::Bool(true);
                (Some(text.clone()), None, a)
            }
            Part::Media(a) => {
                let attributes =
                    marks::customer_part(discord_message_id, n, Some(a.discord_attachment_id));
                let bytes = self
                    .objects
                    .get(&a.object_name)
                    .await
                    .map_err(|e| Failure::bus("reading the attachment", e))?;
                match bytes {
                    None => {
                        let name = if a.filename.is_empty() {
                            "file"
                        } else {
                            a.filename.as_str()
                        };
                        let mut at = attributes;
                        at["placeholder"] = serde_json::Value::Bool(true);
                        (
                            Some(format!(
                                "[Attachment not forwarded: {name} is no longer stored]"
                            )),
                            None,
                            at,
                        )
                    }
                    Some(bytes) => {
                        if link.chat_service_sid.is_empty() {
                            return Err(Failure::invalid(
                                "the Flex conversation has no chat service sid for media",
                            ));
                        }
                        let content_type = if a.content_type.is_empty() {
                            "application/octet-stream"
                        } else {
                            a.content_type.as_str()
                        };
                        let filename = (!a.filename.is_empty()).then_some(a.filename.as_str());
                        let media = self
                            .twilio
                            .run(
                                "media.upload",
                                client.upload_media(
                                    &link.chat_service_sid,
                                    content_type,
                                    filename,
                                    bytes.into(),
                                ),
                            )
                            .await
                            .map_err(|e| Failure::twilio("uploading the attachment", e))?;
                        (None, Some(media.sid), attributes)
                    }
                }
            }
        };
        let req = CreateMessage {
            author: Some(link.customer_identity.clone()),
            body,
            attributes: Some(attributes),
            media_sid,
            webhook_enabled: self.settings.webhook_enabled.then_some(true),
        };
        let msg = self
            .twilio
            .run("messages.create", client.create_message(sid, &req))
            .await
            .map_err(|e| Failure::twilio("posting the customer message", e))?;
        Ok(msg.sid)
    }

    /// The parts of a Discord message recorded in `link`'s Flex conversation.
    async fn recorded_parts(
        &self,
        ctx: &Ctx<'_>,
        link: &FlexLink,
        discord_message_id: u64,
    ) -> Result<BTreeMap<u32, String>, Failure> {
        self.links
            .recorded_parts(
                ctx.conversation_id,
                &link.conversation_sid,
                discord_message_id,
            )
            .await
            .map_err(|e| Failure::bus("reading the message sids", e))
    }

    /// Finds the parts of a Discord message: recorded sids, else the recent messages.
    async fn find_parts(
        &self,
        ctx: &Ctx<'_>,
        link: &FlexLink,
        discord_message_id: u64,
    ) -> Result<BTreeMap<u32, String>, Failure> {
        let recorded = self.recorded_parts(ctx, link, discord_message_id).await?;
        if !recorded.is_empty() {
            return Ok(recorded);
        }
        Ok(marks::customer_parts(
            &self.recent_messages(&link.conversation_sid).await?,
            discord_message_id,
        ))
    }

    /// Posts a marked follow-up for `ctx`'s event once (reconciling first when needed).
    async fn post_event_message(
        &self,
        ctx: &Ctx<'_>,
        link: &FlexLink,
        author: &str,
        kind: &str,
        body: String,
        discord_ref: Option<u64>,
    ) -> Result<(), Failure> {
        let sid = &link.conversation_sid;
        if ctx.recheck
            && marks::event_message_sid(&self.recent_messages(sid).await?, &ctx.event.event_id)
                .is_some()
        {
            return Ok(());
        }
        let req = CreateMessage {
            author: Some(author.to_owned()),
            body: Some(body),
            attributes: Some(marks::event_message(&ctx.event.event_id, kind, discord_ref)),
            media_sid: None,
            webhook_enabled: None,
        };
        self.twilio
            .run(
                "messages.create",
                self.twilio.client().create_message(sid, &req),
            )
            .await
            .map_err(|e| Failure::twilio("posting a follow-up message", e))?;
        Ok(())
    }

    pub(crate) async fn customer_edit(
        &self,
        ctx: &mut Ctx<'_>,
        e: &CustomerMessageEdited,
    ) -> Result<(), Failure> {
        let link = match self.open_link(ctx.conversation_id).await? {
            Ok(l) => l,
            Err(why) => {
                info!(conversation_id = %ctx.conversation_id, discord_message_id = e.discord_message_id, why, "Edit not carried to Flex.");
                return Ok(());
            }
        };
        let text: String = e.text.trim().chars().take(MAX_BODY_CHARS).collect();
        let parts = self.find_parts(ctx, &link, e.discord_message_id).await?;
        if let (Some(im), false) = (parts.get(&0), text.is_empty()) {
            let req = UpdateMessage {
                body: Some(text.clone()),
                attributes: Some(marks::edited(e.discord_message_id)),
                webhook_enabled: None,
            };
            match self
                .twilio
                .run(
                    "messages.update",
                    self.twilio
                        .client()
                        .update_message(&link.conversation_sid, im, &req),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if err.is_conversation_closed() => {
                    let _ = self
                        .links
                        .mark_closed(ctx.conversation_id, &link.conversation_sid)
                        .await;
                    return Ok(());
                }
                // Gone (an agent removed it) or refused: say it with a marked follow-up instead.
                Err(err)
                    if matches!(err, flexcord_twilio_api::TwilioError::Api { .. })
                        && !err.is_auth() =>
                {
                    warn!(conversation_id = %ctx.conversation_id, error = %err, "Twilio refused the edit; posting a follow-up.");
                }
                Err(err) => return Err(Failure::twilio("updating the edited message", err)),
            }
        }
        let body = if text.is_empty() {
            "[The user removed the text of an earlier message]".to_owned()
        } else {
            format!("[Edited message] {text}")
        };
        let author = link.customer_identity.clone();
        self.post_event_message(
            ctx,
            &link,
            &author,
            "edit",
            body,
            Some(e.discord_message_id),
        )
        .await
    }

    pub(crate) async fn customer_delete(
        &self,
        ctx: &mut Ctx<'_>,
        d: &CustomerMessageDeleted,
    ) -> Result<(), Failure> {
        let link = match self.open_link(ctx.conversation_id).await? {
            Ok(l) => l,
            Err(why) => {
                info!(conversation_id = %ctx.conversation_id, discord_message_id = d.discord_message_id, why, "Delete not carried to Flex.");
                return Ok(());
            }
        };
        let parts = self.find_parts(ctx, &link, d.discord_message_id).await?;
        if parts.is_empty() {
            info!(conversation_id = %ctx.conversation_id, discord_message_id = d.discord_message_id, "Deleted message is not in the Flex conversation; nothing to remove.");
            return Ok(());
        }
        let mut refused = None;
        for im in parts.values() {
            match self
                .twilio
                .run(
                    "messages.delete",
                    self.twilio
                        .client()
                        .delete_message(&link.conversation_sid, im),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) if e.is_conversation_closed() => {
                    let _ = self
                        .links
                        .mark_closed(ctx.conversation_id, &link.conversation_sid)
                        .await;
                    return Ok(());
                }
                Err(e)
                    if matches!(e, flexcord_twilio_api::TwilioError::Api { .. })
                        && !e.is_auth() =>
                {
                    refused = Some(e);
                }
                Err(e) => return Err(Failure::twilio("deleting the message", e)),
            }
        }
        if let Some(e) = refused {
            warn!(conversation_id = %ctx.conversation_id, error = %e, "Twilio refused to delete; posting a notice.");
            let author = link.customer_identity.clone();
            self.post_event_message(
                ctx,
                &link,
                &author,
                "delete",
                "[Message deleted by the user]".to_owned(),
                Some(d.discord_message_id),
            )
            .await?;
        }
        self.links
            .forget_message(ctx.conversation_id, d.discord_message_id)
            .await
            .map_err(|e| Failure::bus("forgetting the deleted message", e))
    }

    pub(crate) async fn system_notice(
        &self,
        ctx: &mut Ctx<'_>,
        n: &SystemNotice,
    ) -> Result<(), Failure> {
        let link = match self.open_link(ctx.conversation_id).await? {
            Ok(l) => l,
            Err(why) => {
                warn!(conversation_id = %ctx.conversation_id, why, "System notice not shown in Flex.");
                return Ok(());
            }
        };
        let text: String = n.text.trim().chars().take(MAX_BODY_CHARS).collect();
        if text.is_empty() {
            return Ok(());
        }
        match self
            .post_event_message(ctx, &link, "system", "notice", text, None)
            .await
        {
            Err(Failure::Undeliverable { closed: true, .. }) => {
                let _ = self
                    .links
                    .mark_closed(ctx.conversation_id, &link.conversation_sid)
                    .await;
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) async fn close(
        &self,
        ctx: &mut Ctx<'_>,
        c: &CloseFlexConversation,
    ) -> Result<(), Failure> {
        let Some(link) = self
            .links
            .get(ctx.conversation_id)
            .await
            .map_err(|e| Failure::bus("reading the Flex link", e))?
        else {
            return Ok(());
        };
        if link.closed || link.conversation_sid.is_empty() {
            return Ok(());
        }
        let client = self.twilio.client();
        let mut closed = false;
        if !link.interaction_sid.is_empty() && !link.interaction_channel_sid.is_empty() {
            match self
                .twilio
                .run(
                    "interactions.close",
                    client.close_interaction_channel(
                        &link.interaction_sid,
                        &link.interaction_channel_sid,
                    ),
                )
                .await
            {
                Ok(_) => closed = true,
                Err(e)
                    if matches!(e, flexcord_twilio_api::TwilioError::Api { .. })
                        && !e.is_auth() =>
                {
                    warn!(conversation_id = %ctx.conversation_id, error = %e, "Cannot close the interaction channel; closing the conversation.");
                }
                Err(e) => return Err(Failure::twilio("closing the interaction channel", e)),
            }
        }
        if !closed {
            match self
                .twilio
                .run(
                    "conversations.close",
                    client.close_conversation(&link.conversation_sid),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if is_gone(&e) => {}
                Err(e) => return Err(Failure::twilio("closing the conversation", e)),
            }
        }
        self.links
            .mark_closed(ctx.conversation_id, &link.conversation_sid)
            .await
            .map_err(|e| Failure::bus("marking the Flex link closed", e))?;
        info!(conversation_id = %ctx.conversation_id, conversation_sid = %link.conversation_sid, reason = %c.reason, "Flex conversation closed.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_text_first_then_one_per_attachment() {
        let m = CustomerMessage {
            discord_message_id: 1,
            text: "  hello ".into(),
            attachments: vec![
                Attachment {
                    discord_attachment_id: 10,
                    filename: "a.png".into(),
                    object_name: "discord/10/a.png".into(),
                    ..Default::default()
                },
                Attachment {
                    discord_attachment_id: 11,
                    filename: "big.mp4".into(),
                    too_large: true,
                    size_bytes: 99,
                    ..Default::default()
                },
            ],
        };
        let p = plan_parts(&m);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0], (0, Part::Text("hello".into())));
        assert!(matches!(&p[1], (1, Part::Media(a)) if a.discord_attachment_id == 10));
        assert!(matches!(&p[2], (2, Part::Placeholder { text, .. }) if text.contains("too large")));
        let only_file = CustomerMessage {
            discord_message_id: 1,
            text: " ".into(),
            attachments: vec![m.attachments[0].clone()],
        };
        assert_eq!(plan_parts(&only_file)[0].0, 1);
        assert!(plan_parts(&CustomerMessage::default()).is_empty());
    }
}
