//! The catch-up pass: webhooks missed while webhook-receiver was down (or that Twilio gave up on)
//! are found by listing and published with the same `Nats-Msg-Id`s as the webhook path, so overlap
//! is deduplicated by JetStream.
//!
//! Active conversations are the `flex_links` entries that are not closed, minus the ones this
//! service saw close. Per conversation and pass: list the messages after `published_below` (one GET
//! while nothing is missing) and publish the agent messages not yet published. The first pass after
//! start also fetches each conversation (a missed close is published) and its participants (an agent
//! who joined while the receiver was down is announced once).

use std::sync::Arc;
use std::time::Duration;

use flexcord_bus::BusError;
use flexcord_proto::v1::FlexLink;
use flexcord_twilio_api::webhook_event::EventMedia;
use flexcord_twilio_api::{ConversationState, Message};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::cursors::is_published;
use crate::inbound::{AgentMessageInput, Inbound, InboundError, Outcome};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Conversations looked at.
    pub conversations: usize,
    /// Events published (duplicates of earlier publishes included).
    pub published: usize,
    /// Conversations that failed (retried next pass).
    pub failed: usize,
}

/// The catch-up pass runner.
#[derive(Debug, Clone)]
pub struct Reconciler {
    inbound: Arc<Inbound>,
    interval: Duration,
    concurrency: usize,
}

impl Reconciler {
    /// A runner passing every `interval` (zero: only at start), `concurrency` conversations at once.
    pub fn new(inbound: Arc<Inbound>, interval: Duration, concurrency: usize) -> Self {
        Reconciler {
            inbound,
            interval,
            concurrency: concurrency.max(1),
        }
    }

    /// Runs a full pass now, then a light pass every interval, until `shutdown`.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut full = true;
        loop {
            tokio::select! {
                r = self.pass(full) => match r {
                    Ok(report) => {
                        if report.published > 0 || report.failed > 0 || full {
                            info!(full, conversations = report.conversations, published = report.published, failed = report.failed, "Catch-up pass done.");
                        }
                        full = false;
                    }
                    Err(e) => warn!(error = %e, "Catch-up pass failed; retrying later."),
                },
                _ = shutdown.cancelled() => return,
            }
            if self.interval.is_zero() && !full {
                return;
            }
            let wait = if self.interval.is_zero() {
                Duration::from_secs(5)
            } else {
                self.interval
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// The Flex conversations that are not known to be closed: (conversation id, link).
    async fn active(&self) -> Result<Vec<FlexLink>, BusError> {
        let links = self.inbound.links();
        let mut out = Vec::new();
        for key in links.keys().await? {
            if key.starts_with("sid.") {
                continue;
            }
            if let Some(v) = links.get(&key).await? {
                if !v.value.closed && !v.value.conversation_sid.is_empty() {
                    out.push(v.value);
                }
            }
        }
        Ok(out)
    }

    /// One pass over every active conversation.
    pub async fn pass(&self, full: bool) -> Result<PassReport, BusError> {
        let active = self.active().await?;
        let mut report = PassReport {
            conversations: active.len(),
            ..Default::default()
        };
        let mut results = futures::stream::iter(active)
            .map(|link| async move {
                let r = self.conversation(&link, full).await;
                (link, r)
            })
            .buffer_unordered(self.concurrency);
        while let Some((link, r)) = results.next().await {
            match r {
                Ok(n) => report.published += n,
                Err(e) => {
                    report.failed += 1;
                    warn!(conversation_sid = %link.conversation_sid, error = %e, "Catch-up of a conversation failed.");
                }
            }
        }
        Ok(report)
    }

    /// Catches up one conversation; returns how many events it published.
    pub async fn conversation(&self, link: &FlexLink, full: bool) -> Result<usize, InboundError> {
        let sid = link.conversation_sid.as_str();
        let inbound = &self.inbound;
        let cursors = inbound.cursors();
        let state = cursors.snapshot(sid).await?;
        if state.closed {
            return Ok(0);
        }
        let twilio = inbound.twilio();
        let mut published = 0;
        if full {
            match twilio.fetch_conversation(sid).await {
                Ok(c) if c.state == ConversationState::Closed => {
                    // Messages written before the close are still caught up below.
                    inbound.closed(sid, "").await?;
                    published += 1;
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    cursors.note_closed(sid);
                    return Ok(0);
                }
                Err(e) => return Err(e.into()),
            }
            for p in twilio.list_participants(sid).await? {
                let Some(identity) = p.identity.as_deref() else {
                    continue;
                };
                if inbound.is_customer(identity) || state.agent_names.contains_key(identity) {
                    continue;
                }
                if let Outcome::Published(_) = inbound
                    .joined(sid, &p.sid, identity, p.attributes.as_deref())
                    .await?
                {
                    published += 1;
                }
            }
        }
        let after = state.published_below.checked_sub(1);
        let messages = twilio.list_messages_after(sid, after).await?;
        let mut looked_below = state.published_below;
        let mut result = Ok(());
        for m in &messages {
            if !is_published(&state, m.index)
                && !inbound.is_echo(m.author.as_deref(), m.attributes.as_deref())
            {
                let input = agent_input(m, &link.chat_service_sid);
                match inbound.agent_message(&input, false).await {
                    Ok(_) => published += 1,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            looked_below = looked_below.max(m.index + 1);
        }
        cursors.note_advanced(sid, looked_below);
        result.map(|()| published)
    }
}

fn agent_input(m: &Message, chat_service_sid: &str) -> AgentMessageInput {
    AgentMessageInput {
        conversation_sid: m.conversation_sid.clone(),
        message_sid: m.sid.clone(),
        index: m.index,
        author: m.author.clone().unwrap_or_default(),
        body: m.body.clone().unwrap_or_default(),
        media: m
            .media
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|x| EventMedia {
                sid: x.sid,
                filename: x.filename,
                content_type: x.content_type,
                size: x.size,
            })
            .collect(),
        chat_service_sid: (!chat_service_sid.is_empty()).then(|| chat_service_sid.to_owned()),
        date_created: m.date_created.clone(),
    }
}
