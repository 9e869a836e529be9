//! The `flex.out` handler: dispatches each [`FlexOutbound`] to its procedure, remembers what an
//! interrupted attempt already did, and turns failures into retries or dead letters with a notice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use flexcord_bus::topology::TWILIO_IN;
use flexcord_bus::{Bus, Delivery, Handler, HandlerError, Objects};
use flexcord_proto::v1::flex_outbound::Action;
use flexcord_proto::v1::{twilio_inbound, FlexDeliveryFailed, FlexOutbound, TwilioInbound};
use flexcord_twilio_api::{ListMessages, Message, Order};
use tracing::{debug, error, warn};

use crate::calls::Twilio;
use crate::config::Config;
use crate::failure::Failure;
use crate::links::{is_valid_key, LinkStore};

/// Settings the procedures need (from [`Config`]).
#[derive(Debug, Clone)]
pub struct Settings {
    /// TaskRouter workspace.
    pub workspace_sid: String,
    /// TaskRouter workflow.
    pub workflow_sid: String,
    /// Task channel unique name.
    pub task_channel: String,
    /// Conversation webhook URL (webhook-receiver).
    pub webhook_url: String,
    /// Send `X-Twilio-Webhook-Enabled: true` with customer messages.
    pub webhook_enabled: bool,
    /// `Timers.Closed` of created conversations.
    pub close_timer: Option<String>,
    /// Base of case-page links when a hand-off carries none.
    pub case_page_base_url: Option<String>,
}

impl Settings {
    /// The procedures' settings from the service configuration.
    pub fn from_config(c: &Config) -> Self {
        Settings {
            workspace_sid: c.workspace_sid.clone(),
            workflow_sid: c.workflow_sid.clone(),
            task_channel: c.task_channel.clone(),
            webhook_url: c.conversation_webhook_url(),
            webhook_enabled: c.webhook_enabled,
            close_timer: c.close_timer.clone(),
            case_page_base_url: c.case_page_base_url.clone(),
        }
    }
}

/// What an unfinished event already did, kept between attempts in this process.
#[derive(Debug, Default, Clone)]
pub(crate) struct Progress {
    event_id: String,
    /// A write may have been applied: reconcile before repeating writes.
    pub(crate) uncertain: bool,
    /// Customer-message parts already posted: part -> message sid.
    pub(crate) parts: BTreeMap<u32, String>,
}

/// One event being handled.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) event: &'a FlexOutbound,
    pub(crate) conversation_id: &'a str,
    /// Earlier attempts may have applied writes (uncertain outcome, or the server redelivered the
    /// event after a crash): look before writing.
    pub(crate) recheck: bool,
    pub(crate) parts: BTreeMap<u32, String>,
}

/// twilio-egress's handler of `flex.out`.
#[derive(Debug)]
pub struct Egress {
    pub(crate) bus: Bus,
    pub(crate) links: LinkStore,
    pub(crate) twilio: Twilio,
    pub(crate) objects: Objects,
    pub(crate) settings: Settings,
    progress: Mutex<HashMap<String, Progress>>,
}

/// Messages listed when reconciling (newest first): two pages of 100.
const RECONCILE_PAGES: usize = 2;

impl Egress {
    /// A handler using `twilio` for every call.
    pub async fn new(
        bus: Bus,
        twilio: Twilio,
        settings: Settings,
    ) -> Result<Self, flexcord_bus::BusError> {
        Ok(Egress {
            links: LinkStore::open(&bus).await?,
            objects: bus.attachments().await?,
            bus,
            twilio,
            settings,
            progress: Mutex::new(HashMap::new()),
        })
    }

    /// The link store (tests and benchmarks read it).
    pub fn links(&self) -> &LinkStore {
        &self.links
    }

    fn progress_of(&self, conversation_id: &str, event_id: &str) -> Progress {
        let map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(conversation_id) {
            Some(p) if p.event_id == event_id => p.clone(),
            _ => Progress::default(),
        }
    }

    fn save_progress(
        &self,
        conversation_id: &str,
        event_id: &str,
        uncertain: bool,
        parts: &BTreeMap<u32, String>,
    ) {
        let mut map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(conversation_id.to_owned()).or_default();
        if entry.event_id != event_id {
            *entry = Progress {
                event_id: event_id.to_owned(),
                ..Default::default()
            };
        }
        entry.uncertain |= uncertain;
        entry
            .parts
            .extend(parts.iter().map(|(k, v)| (*k, v.clone())));
    }

    fn clear_progress(&self, conversation_id: &str) {
        let mut map = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(conversation_id);
    }

    /// Lists the conversation's recent messages (newest first, up to [`RECONCILE_PAGES`] pages).
    pub(crate) async fn recent_messages(
        &self,
        conversation_sid: &str,
    ) -> Result<Vec<Message>, Failure> {
        let client = self.twilio.client();
        let mut page = self
            .twilio
            .run(
                "messages.list",
                client.list_messages(
                    conversation_sid,
                    ListMessages {
                        order: Some(Order::Desc),
                        page_size: Some(100),
                    },
                ),
            )
            .await
            .map_err(|e| Failure::twilio("listing messages to reconcile", e))?;
        let mut out = std::mem::take(&mut page.items);
        for _ in 1..RECONCILE_PAGES {
            let Some(next) = page.next_page_url.take() else {
                break;
            };
            page = self
                .twilio
                .run("messages.list", client.list_messages_next(&next))
                .await
                .map_err(|e| Failure::twilio("listing messages to reconcile", e))?;
            out.append(&mut page.items);
        }
        Ok(out)
    }

    async fn dispatch(&self, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
        let Some(action) = ctx.event.action.clone() else {
            return Err(Failure::invalid("FlexOutbound without an action"));
        };
        match action {
            Action::StartHandoff(h) => self.start_handoff(ctx, &h).await,
            Action::CustomerMessage(m) => self.customer_message(ctx, &m).await,
            Action::CustomerMessageEdited(e) => self.customer_edit(ctx, &e).await,
            Action::CustomerMessageDeleted(d) => self.customer_delete(ctx, &d).await,
            Action::SystemNotice(n) => self.system_notice(ctx, &n).await,
            Action::Close(c) => self.close(ctx, &c).await,
        }
    }

    /// Publishes the `FlexDeliveryFailed` notice of an undeliverable event.
    async fn notify_failure(
        &self,
        ev: &FlexOutbound,
        reason: &str,
        twilio_code: i32,
        http_status: u32,
    ) -> Result<(), flexcord_bus::BusError> {
        let conversation_sid = match self.links.get(&ev.conversation_id).await? {
            Some(l) => l.conversation_sid,
            None => String::new(),
        };
        let event_id = format!("twilio.fail.{}", ev.event_id);
        let key = if conversation_sid.is_empty() {
            ev.conversation_id.clone()
        } else {
            conversation_sid.clone()
        };
        let inbound = TwilioInbound {
            event_id: event_id.clone(),
            conversation_sid,
            conversation_id: ev.conversation_id.clone(),
            occurred_at: Some(flexcord_proto::now()),
            event: Some(twilio_inbound::Event::DeliveryFailed(FlexDeliveryFailed {
                outbound_event_id: ev.event_id.clone(),
                twilio_code,
                http_status,
                reason: reason.to_owned(),
            })),
        };
        self.bus
            .publish(&TWILIO_IN, &key, &event_id, &inbound)
            .await?;
        Ok(())
    }

    async fn settle(
        &self,
        ev: &FlexOutbound,
        result: Result<(), Failure>,
        parts: &BTreeMap<u32, String>,
    ) -> Result<(), HandlerError> {
        let conversation_id = ev.conversation_id.as_str();
        match result {
            Ok(()) => {
                self.clear_progress(conversation_id);
                Ok(())
            }
            Err(Failure::Retry {
                reason,
                after,
                uncertain,
            }) => {
                self.save_progress(conversation_id, &ev.event_id, uncertain, parts);
                Err(HandlerError::Retry { reason, after })
            }
            Err(Failure::Undeliverable {
                reason,
                twilio_code,
                http_status,
                closed,
            }) => {
                if closed {
                    if let Ok(Some(link)) = self.links.get(conversation_id).await {
                        if let Err(e) = self
                            .links
                            .mark_closed(conversation_id, &link.conversation_sid)
                            .await
                        {
                            warn!(%conversation_id, error = %e, "Cannot mark the Flex link closed.");
                        }
                    }
                }
                if let Err(e) = self
                    .notify_failure(ev, &reason, twilio_code, http_status)
                    .await
                {
                    // The notice must not be lost: retry the event (its procedure is idempotent).
                    self.save_progress(conversation_id, &ev.event_id, false, parts);
                    return Err(HandlerError::retry(format!(
                        "cannot publish the delivery-failure notice: {e}"
                    )));
                }
                self.clear_progress(conversation_id);
                error!(%conversation_id, event_id = %ev.event_id, twilio_code, http_status, %reason, "Flex event undeliverable; dead-lettering it.");
                Err(HandlerError::permanent(reason))
            }
        }
    }
}

impl Handler<FlexOutbound> for Egress {
    async fn handle(&self, d: &Delivery<FlexOutbound>) -> Result<(), HandlerError> {
        let ev = &d.event;
        if !is_valid_key(&ev.conversation_id) {
            return Err(HandlerError::permanent(format!(
                "invalid conversation id {:?}",
                ev.conversation_id.chars().take(80).collect::<String>()
            )));
        }
        if ev.event_id.is_empty() || ev.event_id.len() > 200 {
            return Err(HandlerError::permanent("missing or oversized event id"));
        }
        let progress = self.progress_of(&ev.conversation_id, &ev.event_id);
        let mut ctx = Ctx {
            event: ev,
            conversation_id: &ev.conversation_id,
            recheck: progress.uncertain || d.server_deliveries > 1,
            parts: progress.parts,
        };
        debug!(conversation_id = %ev.conversation_id, event_id = %ev.event_id, attempt = d.attempt, recheck = ctx.recheck, "Handling Flex event.");
        let result = self.dispatch(&mut ctx).await;
        let parts = std::mem::take(&mut ctx.parts);
        self.settle(ev, result, &parts).await
    }
}
