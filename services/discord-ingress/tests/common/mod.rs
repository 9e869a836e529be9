//! Test rig: a real nats-server, the Discord emulator, discord-ingress `run()` in-process, and a tap
//! on `DISCORD_IN` that records what was stored in the stream.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use discord_emulator::{ChannelSpec, Control, Emulator, EmulatorConfig, RunningEmulator};
use discord_ingress::Config;
use flexcord_bus::topology::{DEAD_LETTER, DISCORD_IN, DISCORD_OUT};
use flexcord_bus::{Bus, BusConfig, Metrics};
use flexcord_harness::NatsServer;
use flexcord_proto::v1::{discord_inbound, DiscordInbound, DiscordOutbound};
use futures::StreamExt;
use prost::Message as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "ingress-test-token";
pub const WAIT: Duration = Duration::from_secs(20);

/// One message stored in a stream.
#[derive(Debug, Clone)]
pub struct Stored {
    pub subject: String,
    pub msg_id: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Stored {
    pub fn inbound(&self) -> DiscordInbound {
        DiscordInbound::decode(self.payload.as_slice()).unwrap()
    }
}

/// Records every message of a stream (ephemeral consumer, deliver all, no acks).
#[derive(Clone)]
pub struct Tap {
    seen: Arc<Mutex<Vec<Stored>>>,
    changed: Arc<Notify>,
    task: Arc<JoinHandle<()>>,
}

impl Tap {
    pub async fn start(js: &async_nats::jetstream::Context, stream: &str, filter: &str) -> Tap {
        let stream = js.get_stream(stream).await.unwrap();
        let consumer = stream
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                filter_subject: filter.to_owned(),
                inactive_threshold: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(Notify::new());
        let (s, c) = (seen.clone(), changed.clone());
        let task = tokio::spawn(async move {
            let mut messages = consumer.messages().await.unwrap();
            while let Some(Ok(m)) = messages.next().await {
                let headers: Vec<(String, String)> = m
                    .headers
                    .as_ref()
                    .map(|h| {
                        h.iter()
                            .flat_map(|(k, vs)| {
                                vs.iter().map(move |v| (k.to_string(), v.to_string()))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let get = |name: &str| {
                    headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let stored = Stored {
                    subject: m.subject.to_string(),
                    msg_id: get("Nats-Msg-Id"),
                    key: get("Flexcord-Key"),
                    payload: m.payload.to_vec(),
                    headers: headers.clone(),
                };
                s.lock().unwrap().push(stored);
                c.notify_waiters();
            }
        });
        Tap {
            seen,
            changed,
            task: Arc::new(task),
        }
    }

    pub fn all(&self) -> Vec<Stored> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `check` (over everything seen so far) returns `Some`.
    pub async fn wait<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&[Stored]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(v) = check(&self.seen.lock().unwrap()) {
                return v;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let seen: Vec<String> = self.all().iter().map(|s| s.msg_id.clone()).collect();
                panic!("timed out after {timeout:?} waiting for {what}; seen: {seen:?}");
            }
        }
    }

    /// Waits for the event with this `Nats-Msg-Id`.
    pub async fn event(&self, msg_id: &str) -> (Stored, DiscordInbound) {
        let s = self
            .wait(WAIT, msg_id, |all| {
                all.iter().find(|s| s.msg_id == msg_id).cloned()
            })
            .await;
        let e = s.inbound();
        (s, e)
    }

    /// How many stored messages have this `Nats-Msg-Id`.
    pub fn count(&self, msg_id: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.msg_id == msg_id)
            .count()
    }
}

/// A running ingress (in-process).
pub struct Running {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), discord_ingress::Error>>,
}

pub struct Rig {
    pub nats: NatsServer,
    pub emu: RunningEmulator,
    pub control: Control,
    pub bus: Bus,
    pub inbound: Tap,
    pub ingress: Option<Running>,
}

pub fn emulator_config() -> EmulatorConfig {
    EmulatorConfig::new(TOKEN)
        .with_heartbeat_interval_ms(1_000)
        .with_channels(vec![
            ChannelSpec::text("general"),
            ChannelSpec::text("bugs"),
            ChannelSpec::text("support"),
        ])
}

impl Rig {
    /// NATS + emulator (+ topology and a tap on DISCORD_IN); ingress not started.
    pub async fn new(emu_cfg: EmulatorConfig) -> Rig {
        flexcord_bus::telemetry::init_for_tests();
        let nats = NatsServer::start().unwrap();
        let emu = Emulator::start(emu_cfg).await.unwrap();
        let control = emu.control();
        let bus = Bus::connect(
            &BusConfig::for_url(nats.url()),
            "ingress-test",
            Metrics::new("ingress-test").bus(),
        )
        .await
        .unwrap();
        bus.declare_topology().await.unwrap();
        let inbound = Tap::start(bus.jetstream(), DISCORD_IN.name, "discord.in.>").await;
        Rig {
            nats,
            emu,
            control,
            bus,
            inbound,
            ingress: None,
        }
    }

    /// The default ingress configuration for this rig.
    pub fn config(&self) -> Config {
        let mut c = Config::for_tests(
            &self.nats.url(),
            self.emu.rest_base(),
            TOKEN,
            self.control.application_id(),
        );
        c.limits.cursor_flush = Duration::from_millis(50);
        c.outbound.backoff_initial = Some(Duration::from_millis(50));
        c
    }

    /// Starts ingress with `config` and waits for its gateway session and commands.
    pub async fn start_ingress(&mut self, config: Config) {
        assert!(self.ingress.is_none());
        let shutdown = CancellationToken::new();
        let gateway = config.discord.gateway_enabled;
        let commands = config.discord.register_commands;
        let task = tokio::spawn(discord_ingress::run(config, shutdown.clone()));
        self.ingress = Some(Running { shutdown, task });
        if gateway {
            self.control.wait_for_session(WAIT).await.unwrap();
            if commands {
                self.control.wait_for_commands(3, WAIT).await.unwrap();
            }
        }
    }

    /// Starts ingress with the default configuration.
    pub async fn start(&mut self) {
        let c = self.config();
        self.start_ingress(c).await;
    }

    /// Graceful stop (drain).
    pub async fn stop_ingress(&mut self) {
        let r = self.ingress.take().unwrap();
        r.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), r.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// Publishes an outbound event as bot-router would.
    pub async fn send_out(&self, key: &str, ev: &DiscordOutbound) {
        self.bus
            .publish(&DISCORD_OUT, key, &ev.event_id, ev)
            .await
            .unwrap();
    }

    /// A tap on the dead-letter stream.
    pub async fn dead_letters(&self) -> Tap {
        Tap::start(self.bus.jetstream(), DEAD_LETTER.name, "dlq.>").await
    }
}

/// The event payload of an inbound event.
pub fn payload(e: &DiscordInbound) -> &discord_inbound::Event {
    e.event.as_ref().unwrap()
}
