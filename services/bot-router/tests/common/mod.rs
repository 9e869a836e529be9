//! Shared test plumbing: a nats-server, a client bus, bot-router in-process, typed views of the
//! output streams, and builders for the events other services would publish.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use bot_router::Config;
use flexcord_bus::testing::{self, decode, header};
use flexcord_bus::topology::{CASE_CMD, CASE_EVT, DISCORD_IN, DISCORD_OUT, FLEX_OUT, TWILIO_IN};
use flexcord_bus::{headers, Bus, StreamSpec};
use flexcord_harness::{eventually, NatsServer};
use flexcord_proto::prost::Message;
use flexcord_proto::v1::{
    self, case_event, discord_inbound, discord_outbound, twilio_inbound, CaseCommand, CaseEvent,
    DiscordInbound, DiscordOutbound, FlexOutbound, TwilioInbound,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous wait for conditions (never a speed assertion).
pub const WAIT: Duration = Duration::from_secs(30);

/// The sample articles.
pub fn kb_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../knowledge-base/articles")
}

/// A nats-server and a client.
pub struct Env {
    pub nats: NatsServer,
    pub bus: Bus,
}

impl Env {
    pub async fn start() -> Env {
        let (nats, bus) = testing::server_and_bus().await;
        Env { nats, bus }
    }

    /// A test configuration for this server.
    pub fn config(&self) -> Config {
        let mut c = Config::for_tests(&self.nats.url(), kb_dir());
        c.router.agent_wait_timeout = Duration::from_secs(3600);
        c.router.agent_idle_timeout = Duration::from_secs(3600);
        c
    }
}

/// bot-router running in this process.
pub struct RouterHandle {
    pub shutdown: CancellationToken,
    pub task: JoinHandle<Result<(), bot_router::RunError>>,
}

impl RouterHandle {
    pub fn start(config: Config) -> RouterHandle {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(bot_router::run(config, shutdown.clone()));
        RouterHandle { shutdown, task }
    }

    /// Graceful stop (drains).
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("router stops")
            .expect("router task")
            .expect("router ran without error");
    }
}

/// One message of an output stream.
#[derive(Debug, Clone)]
pub struct Out<T> {
    pub msg_id: String,
    pub key: String,
    pub subject: String,
    pub event: T,
}

/// Every message of `stream`, decoded.
pub async fn outputs<T: Message + Default>(bus: &Bus, stream: &StreamSpec) -> Vec<Out<T>> {
    testing::stream_messages(bus, stream.name)
        .await
        .iter()
        .map(|m| Out {
            msg_id: header(m, headers::MSG_ID),
            key: header(m, headers::KEY),
            subject: m.subject.to_string(),
            event: decode(m),
        })
        .collect()
}

pub async fn discord_out(bus: &Bus) -> Vec<Out<DiscordOutbound>> {
    outputs(bus, &DISCORD_OUT).await
}
pub async fn flex_out(bus: &Bus) -> Vec<Out<FlexOutbound>> {
    outputs(bus, &FLEX_OUT).await
}
pub async fn case_cmds(bus: &Bus) -> Vec<Out<CaseCommand>> {
    outputs(bus, &CASE_CMD).await
}

/// Waits until `stream` holds a message with id `msg_id`, and returns it.
pub async fn wait_id<T: Message + Default + Clone>(
    bus: &Bus,
    stream: &StreamSpec,
    msg_id: &str,
) -> Out<T> {
    match eventually(WAIT, || async {
        outputs::<T>(bus, stream)
            .await
            .into_iter()
            .find(|o| o.msg_id == msg_id)
    })
    .await
    {
        Some(o) => o,
        None => {
            let ids: Vec<String> = outputs::<T>(bus, stream)
                .await
                .into_iter()
                .map(|o| o.msg_id)
                .collect();
            panic!(
                "no {msg_id} on {} within {WAIT:?}; have {ids:?}",
                stream.name
            )
        }
    }
}

pub async fn wait_discord(bus: &Bus, msg_id: &str) -> Out<DiscordOutbound> {
    wait_id(bus, &DISCORD_OUT, msg_id).await
}
pub async fn wait_flex(bus: &Bus, msg_id: &str) -> Out<FlexOutbound> {
    wait_id(bus, &FLEX_OUT, msg_id).await
}
pub async fn wait_case(bus: &Bus, msg_id: &str) -> Out<CaseCommand> {
    wait_id(bus, &CASE_CMD, msg_id).await
}

/// The text of a DiscordOutbound send.
pub fn content(o: &DiscordOutbound) -> String {
    match &o.action {
        Some(discord_outbound::Action::Send(m)) => m.content.clone(),
        other => panic!("not a send: {other:?}"),
    }
}

/// The send of a DiscordOutbound.
pub fn sent(o: &DiscordOutbound) -> &v1::OutboundMessage {
    match &o.action {
        Some(discord_outbound::Action::Send(m)) => m,
        other => panic!("not a send: {other:?}"),
    }
}

pub use testing::discord_user as user;

/// Publishes a Discord inbound event as ingress would (key = DM channel, or the given key).
pub async fn publish_discord(bus: &Bus, key: &str, ev: &DiscordInbound) {
    bus.publish(&DISCORD_IN, key, &ev.event_id, ev)
        .await
        .unwrap();
}

/// A DM from `user_id` in DM channel `dm`.
pub fn dm(dm: u64, user_id: u64, message_id: u64, text: &str) -> DiscordInbound {
    DiscordInbound {
        event_id: format!("discord.msg.{message_id}"),
        occurred_at: Some(flexcord_proto::now()),
        user: Some(user(user_id, "")),
        channel_id: dm,
        guild_id: 0,
        dm_channel_id: dm,
        event: Some(discord_inbound::Event::MessagePosted(v1::MessagePosted {
            message_id,
            content: text.into(),
            attachments: vec![],
            from_catch_up: false,
        })),
    }
}

/// `/helpme` by `user_id` (locale) with DM channel `dm`.
pub fn helpme(dm: u64, user_id: u64, interaction_id: u64, locale: &str) -> DiscordInbound {
    DiscordInbound {
        event_id: format!("discord.ix.{interaction_id}"),
        occurred_at: Some(flexcord_proto::now()),
        user: Some(user(user_id, locale)),
        channel_id: 555,
        guild_id: 1,
        dm_channel_id: dm,
        event: Some(discord_inbound::Event::CommandInvoked(v1::CommandInvoked {
            interaction: Some(v1::InteractionRef {
                interaction_id,
                token: format!("tok-{interaction_id}"),
                application_id: 77,
                token_expires_at: None,
            }),
            command: v1::SlashCommand::Helpme as i32,
            invoked_name: "helpme".into(),
            options: Default::default(),
            locale: locale.into(),
            ack: v1::InteractionAck::EphemeralReceipt as i32,
        })),
    }
}

/// A button click in DM channel `dm`.
pub fn click(dm: u64, user_id: u64, interaction_id: u64, custom_id: &str) -> DiscordInbound {
    DiscordInbound {
        event_id: format!("discord.ix.{interaction_id}"),
        occurred_at: Some(flexcord_proto::now()),
        user: Some(user(user_id, "")),
        channel_id: dm,
        guild_id: 0,
        dm_channel_id: dm,
        event: Some(discord_inbound::Event::ComponentClicked(
            v1::ComponentClicked {
                interaction: Some(v1::InteractionRef {
                    interaction_id,
                    token: format!("tok-{interaction_id}"),
                    application_id: 77,
                    token_expires_at: None,
                }),
                custom_id: custom_id.into(),
                message_id: 1,
                locale: String::new(),
            },
        )),
    }
}

/// Publishes a Twilio inbound event (key = conversation sid).
pub async fn publish_twilio(bus: &Bus, ev: &TwilioInbound) {
    bus.publish(&TWILIO_IN, &ev.conversation_sid, &ev.event_id, ev)
        .await
        .unwrap();
}

pub fn twilio(
    event_id: &str,
    sid: &str,
    conversation_id: &str,
    event: twilio_inbound::Event,
) -> TwilioInbound {
    TwilioInbound {
        event_id: event_id.into(),
        conversation_sid: sid.into(),
        conversation_id: conversation_id.into(),
        occurred_at: Some(flexcord_proto::now()),
        event: Some(event),
    }
}

/// Publishes a case event (key = case number).
pub async fn publish_case_evt(bus: &Bus, ev: &CaseEvent) {
    let key = ev
        .case
        .as_ref()
        .map(|c| c.number.clone())
        .unwrap_or_default();
    bus.publish(&CASE_EVT, &key, &ev.event_id, ev)
        .await
        .unwrap();
}

/// case-service's answer to an OpenCase: the `opened` event with a snapshot.
pub fn opened_for(cmd: &CaseCommand, number: &str, event_id: &str) -> CaseEvent {
    let Some(v1::case_command::Command::Open(open)) = &cmd.command else {
        panic!("not an open: {cmd:?}")
    };
    CaseEvent {
        event_id: event_id.into(),
        occurred_at: Some(flexcord_proto::now()),
        command_id: cmd.command_id.clone(),
        case: Some(v1::Case {
            number: number.into(),
            kind: open.kind,
            status: v1::CaseStatus::Open as i32,
            subject: open.subject.clone(),
            description: open.description.clone(),
            severity: open.severity,
            priority: "normal".into(),
            user: open.user.clone(),
            origin: open.origin.clone(),
            url: format!("http://cases.test/cases/{number}?exp=1&sig=s"),
            ..Default::default()
        }),
        event: Some(case_event::Event::Opened(v1::CaseOpened {})),
    }
}

/// Waits until bot-router's durable consumers on `stream` have nothing pending or unacked: every
/// event published so far has been handled (used before asserting that something did NOT happen).
pub async fn wait_drained(bus: &Bus, stream: &StreamSpec) {
    let s = bus.jetstream().get_stream(stream.name).await.unwrap();
    let drained = eventually(WAIT, || async {
        for p in 0..flexcord_bus::PARTITIONS {
            let name = format!("bot-router-p{p}");
            let mut c: async_nats::jetstream::consumer::PullConsumer =
                match s.get_consumer(&name).await {
                    Ok(c) => c,
                    Err(_) => return None,
                };
            let info = c.info().await.ok()?;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "bot-router did not drain {}",
        stream.name
    );
}
