//! Test fixture: a real nats-server, the Twilio emulator, twilio-egress and webhook-receiver
//! running in-process (the emulator's webhooks reach the receiver over HTTP).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use flexcord_bus::config::FromEnv;
use flexcord_bus::testing;
use flexcord_bus::topology::{FLEX_OUT, TWILIO_IN};
use flexcord_bus::{Bus, CommonConfig, ConsumerOptions};
use flexcord_harness::{eventually, NatsServer};
use flexcord_proto::v1::{
    flex_outbound::Action, twilio_inbound, CustomerMessage, DiscordUser, FlexOutbound,
    StartHandoff, TwilioInbound,
};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use twilio_emulator::{EmulatorConfig, TwilioEmulator};

pub const WAIT: Duration = Duration::from_secs(60);

pub struct Fixture {
    pub nats: NatsServer,
    pub emu: TwilioEmulator,
    pub bus: Bus,
    /// Where the receiver listens (fixed across restarts).
    pub addr: SocketAddr,
    /// `WEBHOOK_PUBLIC_URL` of both services.
    pub public_url: String,
    pub reconcile_interval_s: u64,
    receiver_stop: CancellationToken,
    receiver: Option<JoinHandle<()>>,
    egress_stop: CancellationToken,
    egress: Option<JoinHandle<()>>,
}

fn lookup(vars: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
    move |k| vars.get(k).cloned()
}

impl Fixture {
    /// Everything running; the receiver's public URL is its real local address.
    pub async fn start(reconcile_interval_s: u64) -> Fixture {
        let (nats, bus) = testing::server_and_bus().await;
        let emu = TwilioEmulator::start(EmulatorConfig {
            webhook_retries: 1,
            webhook_retry_delay: Duration::from_millis(50),
            webhook_timeout: Duration::from_secs(2),
            ..Default::default()
        })
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut f = Fixture {
            nats,
            emu,
            bus,
            addr,
            public_url: format!("http://{addr}"),
            reconcile_interval_s,
            receiver_stop: CancellationToken::new(),
            receiver: None,
            egress_stop: CancellationToken::new(),
            egress: None,
        };
        f.start_receiver_on(listener);
        f.start_egress();
        f
    }

    pub fn receiver_config(&self, public_url: &str) -> webhook_receiver::Config {
        self.receiver_config_with(public_url, &[])
    }

    pub fn receiver_config_with(
        &self,
        public_url: &str,
        extra: &[(&'static str, &str)],
    ) -> webhook_receiver::Config {
        let mut vars: HashMap<&'static str, String> = [
            ("TWILIO_ACCOUNT_SID", self.emu.account_sid().to_owned()),
            ("TWILIO_AUTH_TOKEN", self.emu.auth_token().to_owned()),
            (
                "TWILIO_CONVERSATIONS_BASE_URL",
                self.emu.base_url().to_owned(),
            ),
            ("TWILIO_FLEX_BASE_URL", self.emu.base_url().to_owned()),
            ("TWILIO_MCS_BASE_URL", self.emu.base_url().to_owned()),
            ("WEBHOOK_PUBLIC_URL", public_url.to_owned()),
            (
                "WEBHOOK_RECONCILE_INTERVAL_S",
                self.reconcile_interval_s.to_string(),
            ),
        ]
        .into_iter()
        .collect();
        for (k, v) in extra {
            vars.insert(k, (*v).to_owned());
        }
        webhook_receiver::Config::from_lookup(&lookup(vars)).unwrap()
    }

    pub fn start_receiver_on(&mut self, listener: TcpListener) {
        let config = self.receiver_config(&self.public_url.clone());
        self.start_receiver_with(config, listener);
    }

    pub fn start_receiver_with(&mut self, config: webhook_receiver::Config, listener: TcpListener) {
        let common = CommonConfig::for_tests(&self.nats.url());
        let stop = CancellationToken::new();
        self.receiver_stop = stop.clone();
        self.receiver = Some(tokio::spawn(async move {
            if let Err(e) = webhook_receiver::run(config, common, Some(listener), stop).await {
                panic!("webhook-receiver failed: {e}");
            }
        }));
    }

    /// Restarts the receiver on the same address.
    pub async fn restart_receiver(&mut self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        self.start_receiver_on(listener);
    }

    pub async fn stop_receiver(&mut self) {
        self.receiver_stop.cancel();
        if let Some(t) = self.receiver.take() {
            t.await.unwrap();
        }
    }

    pub fn start_egress(&mut self) {
        let vars: HashMap<&'static str, String> = [
            ("TWILIO_ACCOUNT_SID", self.emu.account_sid().to_owned()),
            ("TWILIO_AUTH_TOKEN", self.emu.auth_token().to_owned()),
            (
                "TWILIO_CONVERSATIONS_BASE_URL",
                self.emu.base_url().to_owned(),
            ),
            ("TWILIO_FLEX_BASE_URL", self.emu.base_url().to_owned()),
            ("TWILIO_MCS_BASE_URL", self.emu.base_url().to_owned()),
            (
                "TWILIO_WORKSPACE_SID",
                "WS00000000000000000000000000000001".to_owned(),
            ),
            (
                "TWILIO_WORKFLOW_SID",
                "WW00000000000000000000000000000001".to_owned(),
            ),
            ("WEBHOOK_PUBLIC_URL", self.public_url.clone()),
            // Customer messages fire webhooks too: the receiver must drop those echoes.
            ("TWILIO_WEBHOOK_ENABLED", "true".to_owned()),
        ]
        .into_iter()
        .collect();
        let config = twilio_egress::Config::from_lookup(&lookup(vars)).unwrap();
        let common = CommonConfig::for_tests(&self.nats.url());
        let stop = CancellationToken::new();
        self.egress_stop = stop.clone();
        self.egress = Some(tokio::spawn(async move {
            let tune = |o: &mut ConsumerOptions| {
                o.backoff.initial = Duration::from_millis(50);
                o.backoff.max = Duration::from_millis(500);
            };
            if let Err(e) = twilio_egress::run_with(config, common, tune, stop).await {
                panic!("twilio-egress failed: {e}");
            }
        }));
    }

    pub async fn publish_out(&self, ev: &FlexOutbound) {
        self.bus
            .publish(&FLEX_OUT, &ev.conversation_id, &ev.event_id, ev)
            .await
            .unwrap();
    }

    /// Hands conversation `conversation_id` off to Flex; returns the CH sid.
    pub async fn handoff(&self, conversation_id: &str, user_id: u64) -> String {
        self.publish_out(&FlexOutbound {
            event_id: format!("handoff-{conversation_id}"),
            conversation_id: conversation_id.into(),
            user: Some(user(user_id)),
            action: Some(Action::StartHandoff(StartHandoff {
                case_number: format!("CASE-{user_id:06}"),
                case_url: String::new(),
                language: "en".into(),
                summary: String::new(),
            })),
        })
        .await;
        let conv = conversation_id.to_owned();
        eventually(WAIT, || {
            let conv = conv.clone();
            async move {
                self.twilio_in().await.into_iter().find_map(|e| {
                    (e.conversation_id == conv
                        && matches!(e.event, Some(twilio_inbound::Event::HandoffStarted(_))))
                    .then_some(e.conversation_sid)
                })
            }
        })
        .await
        .expect("HandoffStarted")
    }

    pub async fn customer_message(&self, conversation_id: &str, user_id: u64, id: u64, text: &str) {
        self.publish_out(&FlexOutbound {
            event_id: format!("msg-{id}"),
            conversation_id: conversation_id.into(),
            user: Some(user(user_id)),
            action: Some(Action::CustomerMessage(CustomerMessage {
                discord_message_id: id,
                text: text.into(),
                attachments: Vec::new(),
            })),
        })
        .await;
    }

    /// Accepts the pending task of `sid` as agent Ana.
    pub fn accept(&self, sid: &str) {
        let task = self
            .emu
            .pending_tasks()
            .into_iter()
            .find(|t| t.conversation_sid == sid)
            .expect("pending task");
        self.emu
            .accept_task(&task.task_sid, "agent_ana", "Ana")
            .unwrap();
    }

    /// Every TwilioInbound on twilio.in, in stream order.
    pub async fn twilio_in(&self) -> Vec<TwilioInbound> {
        testing::stream_events(&self.bus, TWILIO_IN.name).await
    }

    /// The agent messages on twilio.in, as (event id, body).
    pub async fn agent_messages(&self) -> Vec<(String, String)> {
        self.twilio_in()
            .await
            .into_iter()
            .filter_map(|e| match e.event {
                Some(twilio_inbound::Event::AgentMessage(m)) => Some((e.event_id, m.body)),
                _ => None,
            })
            .collect()
    }

    /// Waits until `n` agent messages are on twilio.in.
    pub async fn wait_agent_messages(&self, n: usize) -> Vec<(String, String)> {
        match eventually(WAIT, || async {
            let m = self.agent_messages().await;
            (m.len() >= n).then_some(m)
        })
        .await
        {
            Some(m) => m,
            None => panic!(
                "expected {n} agent messages, got {:?}",
                self.agent_messages().await
            ),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.receiver_stop.cancel();
        self.egress_stop.cancel();
    }
}

pub fn user(id: u64) -> DiscordUser {
    testing::discord_user(id, "en")
}
