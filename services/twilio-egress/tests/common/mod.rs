//! Test fixture: a real nats-server, the Twilio emulator and twilio-egress running in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use flexcord_bus::config::FromEnv;
use flexcord_bus::testing::{self, stream_messages};
use flexcord_bus::topology::{FLEX_OUT, TWILIO_IN};
use flexcord_bus::{Bus, CommonConfig, ConsumerOptions};
use flexcord_harness::{eventually, NatsServer};
use flexcord_proto::v1::{
    flex_outbound::Action, CustomerMessage, DiscordUser, FlexLink, FlexOutbound, StartHandoff,
    TwilioInbound,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use twilio_egress::{Config, LinkStore};
use twilio_emulator::{EmulatorConfig, TwilioEmulator};

pub const WAIT: Duration = Duration::from_secs(60);

/// How a fixture runs twilio-egress.
pub struct Options {
    /// Twilio HTTP timeout.
    pub client_timeout: Duration,
    /// `TWILIO_MAX_IN_FLIGHT`.
    pub max_in_flight: usize,
    /// Keys in parallel.
    pub concurrency: usize,
    /// Retry backoff cap.
    pub backoff_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            client_timeout: Duration::from_secs(5),
            max_in_flight: 64,
            concurrency: 64,
            backoff_max: Duration::from_millis(500),
        }
    }
}

pub struct Fixture {
    pub nats: NatsServer,
    pub emu: TwilioEmulator,
    pub bus: Bus,
    pub links: LinkStore,
    pub opts_used: Options,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

pub fn egress_config(emu: &TwilioEmulator, timeout: Duration, max_in_flight: usize) -> Config {
    let vars: HashMap<&str, String> = [
        ("TWILIO_ACCOUNT_SID", emu.account_sid().to_owned()),
        ("TWILIO_AUTH_TOKEN", emu.auth_token().to_owned()),
        ("TWILIO_CONVERSATIONS_BASE_URL", emu.base_url().to_owned()),
        ("TWILIO_FLEX_BASE_URL", emu.base_url().to_owned()),
        ("TWILIO_MCS_BASE_URL", emu.base_url().to_owned()),
        ("TWILIO_HTTP_TIMEOUT_MS", timeout.as_millis().to_string()),
        (
            "TWILIO_WORKSPACE_SID",
            "WS00000000000000000000000000000001".to_owned(),
        ),
        (
            "TWILIO_WORKFLOW_SID",
            "WW00000000000000000000000000000001".to_owned(),
        ),
        // Nothing listens here: egress tests do not run webhook-receiver.
        ("WEBHOOK_PUBLIC_URL", "http://127.0.0.1:9/hooks".to_owned()),
        ("TWILIO_MAX_IN_FLIGHT", max_in_flight.to_string()),
        (
            "CASE_PAGE_BASE_URL",
            "https://cases.example.com/cases".to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(&move |k| vars.get(k).cloned()).unwrap()
}

impl Fixture {
    pub async fn start(opts: Options) -> Fixture {
        let (nats, bus) = testing::server_and_bus().await;
        let emu = TwilioEmulator::start(EmulatorConfig {
            webhook_retries: 0,
            ..Default::default()
        })
        .await
        .unwrap();
        let links = LinkStore::open(&bus).await.unwrap();
        let mut f = Fixture {
            nats,
            emu,
            bus,
            links,
            opts_used: opts,
            shutdown: CancellationToken::new(),
            task: None,
        };
        f.start_egress();
        f
    }

    /// Starts (or restarts) twilio-egress.
    pub fn start_egress(&mut self) {
        let config = egress_config(
            &self.emu,
            self.opts_used.client_timeout,
            self.opts_used.max_in_flight,
        );
        let common = CommonConfig::for_tests(&self.nats.url());
        let shutdown = CancellationToken::new();
        self.shutdown = shutdown.clone();
        let concurrency = self.opts_used.concurrency;
        let backoff_max = self.opts_used.backoff_max;
        self.task = Some(tokio::spawn(async move {
            let tune = move |o: &mut ConsumerOptions| {
                o.concurrency = concurrency;
                o.backoff.initial = Duration::from_millis(50);
                o.backoff.max = backoff_max;
            };
            if let Err(e) = twilio_egress::run_with(config, common, tune, shutdown).await {
                panic!("twilio-egress failed: {e}");
            }
        }));
    }

    /// Stops twilio-egress (drains).
    pub async fn stop_egress(&mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    pub async fn publish(&self, ev: &FlexOutbound) {
        self.bus
            .publish(&FLEX_OUT, &ev.conversation_id, &ev.event_id, ev)
            .await
            .unwrap();
    }

    /// Publishes a hand-off and waits until HandoffStarted is on twilio.in; returns the CH sid.
    pub async fn handoff(&self, conversation_id: &str, user_id: u64, summary: &str) -> String {
        self.publish(&handoff_event(conversation_id, user_id, summary))
            .await;
        self.wait_handoff(conversation_id).await
    }

    pub async fn wait_handoff(&self, conversation_id: &str) -> String {
        let conv = conversation_id.to_owned();
        eventually(WAIT, || {
            let conv = conv.clone();
            async move {
                self.twilio_in().await.into_iter().find_map(|e| {
                    match (&e.event, e.conversation_id == conv) {
                        (
                            Some(flexcord_proto::v1::twilio_inbound::Event::HandoffStarted(_)),
                            true,
                        ) => Some(e.conversation_sid),
                        _ => None,
                    }
                })
            }
        })
        .await
        .expect("HandoffStarted published")
    }

    pub async fn link(&self, conversation_id: &str) -> Option<FlexLink> {
        self.links.get(conversation_id).await.unwrap()
    }

    /// The Twilio message sids recorded for a Discord message in the conversation's current link.
    pub async fn recorded(&self, conversation_id: &str, discord_message_id: u64) -> Vec<String> {
        let Some(link) = self.link(conversation_id).await else {
            return Vec::new();
        };
        self.links
            .recorded_parts(conversation_id, &link.conversation_sid, discord_message_id)
            .await
            .unwrap()
            .into_values()
            .collect()
    }

    /// Every TwilioInbound on twilio.in, in stream order.
    pub async fn twilio_in(&self) -> Vec<TwilioInbound> {
        testing::stream_events(&self.bus, TWILIO_IN.name).await
    }

    /// Every dead letter, as (reason header, original payload).
    pub async fn dead_letters(&self) -> Vec<(String, FlexOutbound)> {
        stream_messages(&self.bus, "DEAD_LETTER")
            .await
            .into_iter()
            .map(|m| {
                let reason = testing::header(&m, flexcord_bus::headers::DLQ_REASON);
                (reason, testing::decode(&m))
            })
            .collect()
    }

    /// Bodies of the customer's messages in a Flex conversation, in index order.
    pub fn bodies(&self, conversation_sid: &str) -> Vec<String> {
        self.emu
            .conversation(conversation_sid)
            .map(|c| {
                c.messages
                    .iter()
                    .filter(|m| m.author.starts_with("discord_"))
                    .filter_map(|m| m.body.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until a Flex conversation holds `n` customer messages.
    pub async fn wait_bodies(&self, conversation_sid: &str, n: usize) -> Vec<String> {
        let r = eventually(WAIT, || async {
            let b = self.bodies(conversation_sid);
            (b.len() >= n).then_some(b)
        })
        .await;
        match r {
            Some(b) => b,
            None => panic!(
                "{conversation_sid} has {} customer messages, expected {n}",
                self.bodies(conversation_sid).len()
            ),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn user(id: u64) -> DiscordUser {
    testing::discord_user(id, "fr")
}

pub fn handoff_event(conversation_id: &str, user_id: u64, summary: &str) -> FlexOutbound {
    FlexOutbound {
        event_id: format!("handoff-{conversation_id}"),
        conversation_id: conversation_id.into(),
        user: Some(user(user_id)),
        action: Some(Action::StartHandoff(StartHandoff {
            case_number: format!("CASE-{user_id:06}"),
            case_url: String::new(),
            language: "fr".into(),
            summary: summary.into(),
        })),
    }
}

pub fn message_event(
    conversation_id: &str,
    user_id: u64,
    discord_message_id: u64,
    text: &str,
) -> FlexOutbound {
    FlexOutbound {
        event_id: format!("msg-{discord_message_id}"),
        conversation_id: conversation_id.into(),
        user: Some(user(user_id)),
        action: Some(Action::CustomerMessage(CustomerMessage {
            discord_message_id,
            text: text.into(),
            attachments: Vec::new(),
        })),
    }
}
