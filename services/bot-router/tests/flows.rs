//! bot-router on a real nats-server, other services simulated on the bus: every transition with
//! the exact events it emits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use flexcord_bus::topology::{FLEX_OUT, KV_FLEX_LINKS};
use flexcord_proto::v1::{
    self, case_command::Command, case_event, discord_outbound, flex_outbound, twilio_inbound,
    CaseEvent,
};

const DM: u64 = 9_001;
const USER: u64 = 4_242;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpme_then_knowledge_base_answers() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;

    publish_discord(bus, &DM.to_string(), &helpme(DM, USER, 100, "fr")).await;
    let greeting = wait_discord(bus, "discord.ix.100.greeting").await;
    assert_eq!(greeting.key, DM.to_string());
    assert_eq!(
        greeting.event.target,
        Some(discord_outbound::Target::ChannelId(DM))
    );
    let m = sent(&greeting.event);
    assert!(m.content.starts_with("Bonjour User 4242"), "{}", m.content);
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");
    assert!(m.allowed_mentions.is_none());

    // A French question: articles in French (the locale came from /helpme).
    publish_discord(
        bus,
        &DM.to_string(),
        &dm(DM, USER, 101, "j'ai oublié mon mot de passe"),
    )
    .await;
    let answer = wait_discord(bus, "discord.msg.101.reply").await;
    let m = sent(&answer.event);
    assert!(!m.embeds.is_empty() && m.embeds.len() <= 3, "{m:?}");
    assert!(
        m.embeds
            .iter()
            .any(|e| e.title.to_lowercase().contains("mot de passe")),
        "{:?}",
        m.embeds.iter().map(|e| &e.title).collect::<Vec<_>>()
    );
    assert!(m.embeds.iter().all(|e| !e.description.is_empty()));
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");

    // Gibberish: nothing matched, the agent is offered.
    publish_discord(bus, &DM.to_string(), &dm(DM, USER, 102, "qwzx vbnm")).await;
    let none = wait_discord(bus, "discord.msg.102.reply").await;
    let m = sent(&none.event);
    assert!(m.embeds.is_empty());
    assert!(
        m.content.starts_with("Désolé, je n'ai pas trouvé"),
        "{}",
        m.content
    );
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");

    // The same Discord message delivered again (under another Nats-Msg-Id, so JetStream cannot
    // drop it): no second answer. The next message's answer proves the duplicate was processed.
    let dup = dm(DM, USER, 101, "j'ai oublié mon mot de passe");
    bus.publish(
        &flexcord_bus::topology::DISCORD_IN,
        &DM.to_string(),
        "redelivered-101",
        &dup,
    )
    .await
    .unwrap();
    publish_discord(bus, &DM.to_string(), &dm(DM, USER, 103, "remboursement")).await;
    wait_discord(bus, "discord.msg.103.reply").await;
    let all = discord_out(bus).await;
    assert_eq!(
        all.iter().map(|o| o.msg_id.as_str()).collect::<Vec<_>>(),
        [
            "discord.ix.100.greeting",
            "discord.msg.101.reply",
            "discord.msg.102.reply",
            "discord.msg.103.reply"
        ]
    );
    assert!(flex_out(bus).await.is_empty());
    assert!(case_cmds(bus).await.is_empty());
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_handoff_agent_close_and_csat() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    let conv = DM.to_string();

    // Bot-mode question, then the request for a person.
    publish_discord(bus, &conv, &dm(DM, USER, 200, "my purchase is missing")).await;
    wait_discord(bus, "discord.msg.200.reply").await;
    publish_discord(bus, &conv, &dm(DM, USER, 201, "I want to talk to a human")).await;
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;
    assert_eq!(open.key, conv);
    let Some(Command::Open(o)) = &open.event.command else {
        panic!()
    };
    assert_eq!(o.kind, v1::CaseKind::Support as i32);
    assert_eq!(o.user.as_ref().unwrap().id, USER);
    assert_eq!(o.origin.as_ref().unwrap().conversation_id, conv);
    assert_eq!(
        o.description,
        "my purchase is missing\n\nI want to talk to a human"
    );
    assert_eq!(open.event.actor, "bot-router");

    // Written while waiting for the case number: queued, not answered.
    publish_discord(bus, &conv, &dm(DM, USER, 202, "it was a 10 euro pack")).await;
    let state = eventually_state(bus, &conv, |s| s.queued.len() == 1).await;
    assert_eq!(state.mode, v1::ConversationMode::WaitingForAgent as i32);

    // case-service opens the case.
    publish_case_evt(bus, &opened_for(&open.event, "CASE-000123", "evt-open-1")).await;
    let created = wait_discord(bus, &format!("handoff.{conv}.1.created")).await;
    assert!(
        content(&created.event)
            .starts_with("Case **CASE-000123** created. I'm connecting you to an agent"),
        "{}",
        content(&created.event)
    );
    let start = wait_flex(bus, &format!("handoff.{conv}.1.start")).await;
    assert_eq!(start.key, conv);
    assert_eq!(start.event.user.as_ref().unwrap().id, USER);
    let Some(flex_outbound::Action::StartHandoff(h)) = &start.event.action else {
        panic!()
    };
    assert_eq!(h.case_number, "CASE-000123");
    assert_eq!(
        h.case_url,
        "http://cases.test/cases/CASE-000123?exp=1&sig=s"
    );
    assert_eq!(h.language, "en");
    let queued = wait_flex(bus, "flex.msg.202").await;
    let Some(flex_outbound::Action::CustomerMessage(cm)) = &queued.event.action else {
        panic!()
    };
    assert_eq!(cm.text, "it was a 10 euro pack");

    // twilio-egress started the hand-off; it does not say which conversation: the reverse index
    // in flex_links (written by twilio-egress) tells.
    let links = bus
        .jetstream()
        .get_key_value(KV_FLEX_LINKS.name)
        .await
        .unwrap();
    links.put("sid.CH100", conv.clone().into()).await.unwrap();
    publish_twilio(
        bus,
        &twilio(
            "twilio.handoff.CH100",
            "CH100",
            "",
            twilio_inbound::Event::HandoffStarted(v1::HandoffStarted {
                interaction_sid: "KD100".into(),
                task_sid: "WT100".into(),
                case_number: "CASE-000123".into(),
            }),
        ),
    )
    .await;
    let link = wait_case(bus, "twilio.handoff.CH100.link").await;
    assert_eq!(link.key, "CASE-000123");
    let Some(Command::LinkConversation(l)) = &link.event.command else {
        panic!()
    };
    assert_eq!(
        (l.conversation_sid.as_str(), l.interaction_sid.as_str()),
        ("CH100", "KD100")
    );

    // The agent joins and writes.
    publish_twilio(
        bus,
        &twilio(
            "twilio.join.MB1",
            "CH100",
            &conv,
            twilio_inbound::Event::AgentJoined(v1::AgentJoined {
                participant_sid: "MB1".into(),
                identity: "ana@example.com".into(),
                friendly_name: "Ana".into(),
            }),
        ),
    )
    .await;
    let joined = wait_discord(bus, "twilio.join.MB1.joined").await;
    assert_eq!(
        content(&joined.event),
        "**Ana** from support joined the conversation."
    );
    let assign = wait_case(bus, "twilio.join.MB1.assign").await;
    let Some(Command::AssignAgent(a)) = &assign.event.command else {
        panic!()
    };
    assert_eq!(
        (a.agent_identity.as_str(), a.agent_name.as_str()),
        ("ana@example.com", "Ana")
    );

    publish_twilio(
        bus,
        &twilio(
            "twilio.msg.IM1",
            "CH100",
            &conv,
            twilio_inbound::Event::AgentMessage(v1::AgentMessage {
                message_sid: "IM1".into(),
                index: 1,
                author: "ana@example.com".into(),
                author_friendly_name: "Ana".into(),
                body: "Hi! I can see the purchase, one moment.".into(),
                media: vec![],
            }),
        ),
    )
    .await;
    let said = wait_discord(bus, "twilio.msg.IM1.dm").await;
    assert_eq!(said.key, conv);
    assert_eq!(
        content(&said.event),
        "**Ana:** Hi! I can see the purchase, one moment."
    );
    assert!(sent(&said.event).allowed_mentions.is_none());

    // The user's messages now go to Flex.
    publish_discord(bus, &conv, &dm(DM, USER, 203, "thank you")).await;
    let fwd = wait_flex(bus, "flex.msg.203").await;
    let Some(flex_outbound::Action::CustomerMessage(cm)) = &fwd.event.action else {
        panic!()
    };
    assert_eq!(
        (cm.discord_message_id, cm.text.as_str()),
        (203, "thank you")
    );

    // The agent closes.
    publish_twilio(
        bus,
        &twilio(
            "twilio.state.CH100.closed",
            "CH100",
            &conv,
            twilio_inbound::Event::ConversationClosed(v1::FlexConversationClosed {
                reason: "API".into(),
            }),
        ),
    )
    .await;
    let closed = wait_discord(bus, "twilio.state.CH100.closed.closed").await;
    assert!(content(&closed.event)
        .starts_with("Ana closed the conversation. Your case **CASE-000123**"));
    let resolve = wait_case(bus, "twilio.state.CH100.closed.resolve").await;
    let Some(Command::UpdateStatus(u)) = &resolve.event.command else {
        panic!()
    };
    assert_eq!(u.status, v1::CaseStatus::Resolved as i32);
    let prompt = wait_discord(bus, "twilio.state.CH100.closed.csat").await;
    let buttons: Vec<_> = sent(&prompt.event).components[0]
        .buttons
        .iter()
        .map(|b| b.custom_id.clone())
        .collect();
    assert_eq!(
        buttons,
        (1..=5)
            .map(|r| format!("csat.CASE-000123.{r}"))
            .collect::<Vec<_>>()
    );

    // CSAT: rating, then a comment.
    publish_discord(bus, &conv, &click(DM, USER, 300, "csat.CASE-000123.5")).await;
    let rating = wait_case(bus, "discord.ix.300.csat").await;
    let Some(Command::RecordCsat(r)) = &rating.event.command else {
        panic!()
    };
    assert_eq!(
        (r.case_number.as_str(), r.rating, r.comment.as_str()),
        ("CASE-000123", 5, "")
    );
    let edit = wait_discord(bus, "discord.ix.300.csat-edit").await;
    let Some(discord_outbound::Action::Edit(e)) = &edit.event.action else {
        panic!()
    };
    assert_eq!(e.original_event_id, "twilio.state.CH100.closed.csat");
    let thanks = wait_discord(bus, "discord.ix.300.reply").await;
    assert!(content(&thanks.event).contains("5/5"));
    publish_discord(bus, &conv, &dm(DM, USER, 204, "Ana was quick and kind")).await;
    let comment = wait_case(bus, "discord.msg.204.csat").await;
    let Some(Command::RecordCsat(r)) = &comment.event.command else {
        panic!()
    };
    assert_eq!(
        (r.rating, r.comment.as_str()),
        (5, "Ana was quick and kind")
    );
    wait_discord(bus, "discord.msg.204.reply").await;

    // Bot mode again.
    publish_discord(bus, &conv, &dm(DM, USER, 205, "how do I get a refund")).await;
    let answer = wait_discord(bus, "discord.msg.205.reply").await;
    assert!(!sent(&answer.event).embeds.is_empty());

    // Exactly these events, in this order, per stream.
    let discord: Vec<_> = discord_out(bus)
        .await
        .into_iter()
        .map(|o| o.msg_id)
        .collect();
    assert_eq!(
        discord,
        [
            "discord.msg.200.reply".to_owned(),
            format!("handoff.{conv}.1.created"),
            "twilio.join.MB1.joined".into(),
            "twilio.msg.IM1.dm".into(),
            "twilio.state.CH100.closed.closed".into(),
            "twilio.state.CH100.closed.csat".into(),
            "discord.ix.300.csat-edit".into(),
            "discord.ix.300.reply".into(),
            "discord.msg.204.reply".into(),
            "discord.msg.205.reply".into(),
        ]
    );
    let flex: Vec<_> = flex_out(bus).await.into_iter().map(|o| o.msg_id).collect();
    assert_eq!(
        flex,
        [
            format!("handoff.{conv}.1.start"),
            "flex.msg.202".into(),
            "flex.msg.203".into()
        ]
    );
    let cases: Vec<_> = case_cmds(bus).await.into_iter().map(|o| o.msg_id).collect();
    assert_eq!(
        cases,
        [
            format!("handoff.{conv}.1"),
            "twilio.handoff.CH100.link".into(),
            "twilio.join.MB1.assign".into(),
            "twilio.state.CH100.closed.resolve".into(),
            "discord.ix.300.csat".into(),
            "discord.msg.204.csat".into(),
        ]
    );
    router.stop().await;
}

async fn eventually_state(
    bus: &flexcord_bus::Bus,
    conv: &str,
    pred: impl Fn(&v1::ConversationState) -> bool,
) -> v1::ConversationState {
    let kv = bus
        .kv::<v1::ConversationState>(flexcord_bus::topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    flexcord_harness::eventually(WAIT, || async {
        kv.get(conv)
            .await
            .unwrap()
            .map(|v| v.value)
            .filter(|s| pred(s))
    })
    .await
    .expect("state reached")
}

/// Brings a conversation to "agent joined" on Flex conversation `sid`, returns the case number.
async fn to_agent_joined(
    bus: &flexcord_bus::Bus,
    dm_channel: u64,
    user_id: u64,
    sid: &str,
    n: u64,
) -> String {
    let conv = dm_channel.to_string();
    publish_discord(bus, &conv, &dm(dm_channel, user_id, n, "agent")).await;
    let open = wait_case(bus, &format!("handoff.{conv}.1")).await;
    let number = format!("CASE-{:06}", n);
    publish_case_evt(
        bus,
        &opened_for(&open.event, &number, &format!("evt-open-{n}")),
    )
    .await;
    wait_flex(bus, &format!("handoff.{conv}.1.start")).await;
    publish_twilio(
        bus,
        &twilio(
            &format!("twilio.handoff.{sid}"),
            sid,
            &conv,
            twilio_inbound::Event::HandoffStarted(v1::HandoffStarted {
                interaction_sid: format!("KD{n}"),
                task_sid: String::new(),
                case_number: number.clone(),
            }),
        ),
    )
    .await;
    publish_twilio(
        bus,
        &twilio(
            &format!("twilio.join.MB{n}"),
            sid,
            &conv,
            twilio_inbound::Event::AgentJoined(v1::AgentJoined {
                participant_sid: format!("MB{n}"),
                identity: "ana".into(),
                friendly_name: "Ana".into(),
            }),
        ),
    )
    .await;
    wait_discord(bus, &format!("twilio.join.MB{n}.joined")).await;
    number
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_after_the_flex_side_closed_starts_a_bot_turn() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    let conv = DM.to_string();
    let number = to_agent_joined(bus, DM, USER, "CH7", 1).await;

    // twilio-egress recorded that the Flex conversation is closed, but no close event reached us.
    let links = bus.kv::<v1::FlexLink>(KV_FLEX_LINKS).await.unwrap();
    links
        .put(
            &conv,
            &v1::FlexLink {
                conversation_id: conv.clone(),
                conversation_sid: "CH7".into(),
                case_number: number.clone(),
                closed: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    publish_discord(bus, &conv, &dm(DM, USER, 50, "how do I reset my password")).await;
    let ended = wait_discord(bus, "discord.msg.50.ended").await;
    assert!(content(&ended.event).starts_with("The conversation with the agent has ended"));
    let answer = wait_discord(bus, "discord.msg.50.reply").await;
    assert!(
        !sent(&answer.event).embeds.is_empty(),
        "a knowledge-base answer"
    );
    let resolve = wait_case(bus, "discord.msg.50.resolve").await;
    assert_eq!(resolve.key, number);
    assert!(
        !flex_out(bus)
            .await
            .iter()
            .any(|o| o.msg_id == "flex.msg.50"),
        "nothing is sent into the closed Flex conversation"
    );
    let state = eventually_state(bus, &conv, |s| s.mode == v1::ConversationMode::Bot as i32).await;
    assert!(state.timer.is_none());

    // A late close event for that conversation is harmless, and the next message is a bot turn.
    publish_twilio(
        bus,
        &twilio(
            "twilio.state.CH7.closed",
            "CH7",
            &conv,
            twilio_inbound::Event::ConversationClosed(v1::FlexConversationClosed {
                reason: "API".into(),
            }),
        ),
    )
    .await;
    publish_discord(bus, &conv, &dm(DM, USER, 51, "refund")).await;
    wait_discord(bus, "discord.msg.51.reply").await;
    wait_drained(bus, &flexcord_bus::topology::TWILIO_IN).await;
    assert!(!discord_out(bus)
        .await
        .iter()
        .any(|o| o.msg_id.starts_with("twilio.state.CH7")));

    // A new hand-off: the old link is still marked closed until twilio-egress starts the new Flex
    // conversation, yet messages of the new hand-off go to Flex, not back to the bot.
    publish_discord(bus, &conv, &dm(DM, USER, 52, "agent please")).await;
    let open = wait_case(bus, &format!("handoff.{conv}.2")).await;
    publish_case_evt(bus, &opened_for(&open.event, "CASE-000052", "evt-open-52")).await;
    wait_flex(bus, &format!("handoff.{conv}.2.start")).await;
    publish_discord(bus, &conv, &dm(DM, USER, 53, "here is more detail")).await;
    wait_flex(bus, "flex.msg.53").await;
    assert!(!discord_out(bus)
        .await
        .iter()
        .any(|o| o.msg_id.starts_with("discord.msg.53")));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flex_delivery_failure_on_a_closed_conversation_resumes_bot_mode() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    let conv = DM.to_string();
    let number = to_agent_joined(bus, DM, USER, "CH8", 2).await;
    publish_discord(bus, &conv, &dm(DM, USER, 60, "hello?")).await;
    wait_flex(bus, "flex.msg.60").await;
    // twilio-egress: 50377, the conversation is closed.
    publish_twilio(
        bus,
        &twilio(
            "twilio.fail.flex.msg.60",
            "CH8",
            &conv,
            twilio_inbound::Event::DeliveryFailed(v1::FlexDeliveryFailed {
                outbound_event_id: "flex.msg.60".into(),
                twilio_code: 50377,
                http_status: 400,
                reason: "Conversation is closed".into(),
            }),
        ),
    )
    .await;
    let told = wait_discord(bus, "twilio.fail.flex.msg.60.reply").await;
    assert!(content(&told.event).contains("couldn't be passed on"));
    assert_eq!(
        sent(&told.event).components[0].buttons[0].custom_id,
        "handoff"
    );
    let resolve = wait_case(bus, "twilio.fail.flex.msg.60.resolve").await;
    assert_eq!(resolve.key, number);
    publish_discord(bus, &conv, &dm(DM, USER, 61, "password")).await;
    wait_discord(bus, "discord.msg.61.reply").await;
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_user_is_reported_to_the_agent_and_the_case() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    let conv = DM.to_string();
    let number = to_agent_joined(bus, DM, USER, "CH9", 3).await;
    let failed = v1::DiscordInbound {
        event_id: "discord.fail.twilio.msg.IM9.dm".into(),
        occurred_at: Some(flexcord_proto::now()),
        user: None,
        channel_id: 0,
        guild_id: 0,
        dm_channel_id: 0,
        event: Some(v1::discord_inbound::Event::DeliveryFailed(
            v1::DiscordDeliveryFailed {
                outbound_event_id: "twilio.msg.IM9.dm".into(),
                discord_code: 50007,
                http_status: 403,
                reason: "Cannot send messages to this user".into(),
            },
        )),
    };
    publish_discord(bus, &conv, &failed).await;
    let notice = wait_flex(bus, "discord.fail.twilio.msg.IM9.dm.notice").await;
    let Some(flex_outbound::Action::SystemNotice(n)) = &notice.event.action else {
        panic!()
    };
    assert!(n
        .text
        .starts_with("The user cannot be reached on Discord: their DMs are closed"));
    let note = wait_case(bus, "discord.fail.twilio.msg.IM9.dm.note").await;
    assert_eq!(note.key, number);
    let Some(Command::AddNote(a)) = &note.event.command else {
        panic!()
    };
    assert!(a.text.contains("50007"));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_report_embed_receipt_and_status_change() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;

    let mut options = std::collections::HashMap::new();
    options.insert("title".to_owned(), "Game crashes on launch".to_owned());
    options.insert(
        "description".to_owned(),
        "Since update 1.2, on Android 14.".to_owned(),
    );
    options.insert("severity".to_owned(), "high".to_owned());
    let bug = v1::DiscordInbound {
        event_id: "discord.ix.700".into(),
        occurred_at: Some(flexcord_proto::now()),
        user: Some(user(USER, "fr")),
        channel_id: 3_333,
        guild_id: 1,
        dm_channel_id: 0,
        event: Some(v1::discord_inbound::Event::CommandInvoked(
            v1::CommandInvoked {
                interaction: Some(v1::InteractionRef {
                    interaction_id: 700,
                    token: "tok-700".into(),
                    application_id: 77,
                    token_expires_at: None,
                }),
                command: v1::SlashCommand::Bug as i32,
                invoked_name: "bug".into(),
                options,
                locale: "fr".into(),
                ack: v1::InteractionAck::Deferred as i32,
            },
        )),
    };
    publish_discord(bus, &format!("user-{USER}"), &bug).await;
    let open = wait_case(bus, "interaction.700").await;
    assert_eq!(open.key, "interaction:700");
    let Some(Command::Open(o)) = &open.event.command else {
        panic!()
    };
    assert_eq!(o.kind, v1::CaseKind::Bug as i32);
    assert_eq!(o.subject, "Game crashes on launch");
    assert_eq!(o.severity, v1::Severity::High as i32);
    let origin = o.origin.as_ref().unwrap();
    assert_eq!(
        (
            origin.channel_id,
            origin.interaction_id,
            origin.application_id
        ),
        (3_333, 700, 77)
    );
    assert_eq!(origin.interaction_token, "tok-700");

    publish_case_evt(bus, &opened_for(&open.event, "CASE-000700", "evt-bug-open")).await;
    let embed = wait_discord(bus, "case-embed.CASE-000700").await;
    assert_eq!(embed.key, "3333");
    assert_eq!(
        embed.event.target,
        Some(discord_outbound::Target::ChannelId(3_333))
    );
    let e = &sent(&embed.event).embeds[0];
    assert_eq!(e.title, "CASE-000700 · Game crashes on launch");
    assert!(
        e.url.is_empty(),
        "the case link is a credential and is never posted"
    );
    let receipt = wait_discord(bus, "case-receipt.CASE-000700").await;
    assert_eq!(receipt.key, "ix-700");
    let Some(discord_outbound::Target::Interaction(ix)) = &receipt.event.target else {
        panic!()
    };
    assert_eq!(
        (ix.interaction_id, ix.token.as_str(), ix.application_id),
        (700, "tok-700", 77)
    );
    let m = sent(&receipt.event);
    assert!(m.ephemeral && m.edit_original_response);
    assert!(m.content.contains("CASE-000700"), "{}", m.content);

    // An agent resolves it through the API.
    let mut snapshot = opened_for(&open.event, "CASE-000700", "x").case.unwrap();
    snapshot.status = v1::CaseStatus::Resolved as i32;
    let change = CaseEvent {
        event_id: "evt-bug-resolved".into(),
        occurred_at: Some(flexcord_proto::now()),
        command_id: String::new(),
        case: Some(snapshot),
        event: Some(case_event::Event::StatusChanged(v1::CaseStatusChanged {
            from: v1::CaseStatus::Open as i32,
            to: v1::CaseStatus::Resolved as i32,
            comment: "Fixed in 1.2.1".into(),
            actor: "api".into(),
        })),
    };
    publish_case_evt(bus, &change).await;
    let notice = wait_discord(bus, "evt-bug-resolved.notify").await;
    assert_eq!(notice.key, format!("user-{USER}"));
    assert_eq!(
        notice.event.target,
        Some(discord_outbound::Target::UserId(USER))
    );
    let text = content(&notice.event);
    assert!(
        text.contains("CASE-000700") && text.contains("résolu") && text.contains("Fixed in 1.2.1"),
        "{text}"
    );
    let edit = wait_discord(bus, "evt-bug-resolved.embed").await;
    assert_eq!(edit.key, "3333");
    let Some(discord_outbound::Action::Edit(ed)) = &edit.event.action else {
        panic!()
    };
    assert_eq!(ed.original_event_id, "case-embed.CASE-000700");
    assert_eq!(
        ed.message.as_ref().unwrap().embeds[0].fields[0].value,
        "Résolu"
    );

    // A status change bot-router caused itself is not announced again.
    let mut ours = change.clone();
    ours.event_id = "evt-ours".into();
    if let Some(case_event::Event::StatusChanged(s)) = &mut ours.event {
        s.actor = "bot-router".into();
    }
    publish_case_evt(bus, &ours).await;
    // The feature request that follows proves the event above was handled.
    let mut feature = bug.clone();
    feature.event_id = "discord.ix.701".into();
    if let Some(v1::discord_inbound::Event::CommandInvoked(c)) = &mut feature.event {
        c.command = v1::SlashCommand::FeatureRequest as i32;
        c.interaction.as_mut().unwrap().interaction_id = 701;
    }
    publish_discord(bus, &format!("user-{USER}"), &feature).await;
    let fopen = wait_case(bus, "interaction.701").await;
    let Some(Command::Open(fo)) = &fopen.event.command else {
        panic!()
    };
    assert_eq!(fo.kind, v1::CaseKind::Feature as i32);
    publish_case_evt(
        bus,
        &opened_for(&fopen.event, "CASE-000701", "evt-feat-open"),
    )
    .await;
    wait_discord(bus, "case-embed.CASE-000701").await;
    wait_drained(bus, &flexcord_bus::topology::CASE_EVT).await;
    assert!(!discord_out(bus)
        .await
        .iter()
        .any(|o| o.msg_id.starts_with("evt-ours")));
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletes_follow_the_message_to_flex() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    let conv = DM.to_string();
    to_agent_joined(bus, DM, USER, "CH11", 4).await;
    let edit = v1::DiscordInbound {
        event_id: "discord.edit.70.1".into(),
        occurred_at: Some(flexcord_proto::now()),
        user: Some(user(USER, "")),
        channel_id: DM,
        guild_id: 0,
        dm_channel_id: DM,
        event: Some(v1::discord_inbound::Event::MessageEdited(
            v1::MessageEdited {
                message_id: 70,
                content: "fixed typo".into(),
                edited_at: None,
            },
        )),
    };
    publish_discord(bus, &conv, &edit).await;
    let e = wait_flex(bus, "discord.edit.70.1.flex").await;
    let Some(flex_outbound::Action::CustomerMessageEdited(m)) = &e.event.action else {
        panic!()
    };
    assert_eq!((m.discord_message_id, m.text.as_str()), (70, "fixed typo"));
    let mut del = edit.clone();
    del.event_id = "discord.del.70".into();
    del.event = Some(v1::discord_inbound::Event::MessageDeleted(
        v1::MessageDeleted { message_id: 70 },
    ));
    publish_discord(bus, &conv, &del).await;
    let d = wait_flex(bus, "discord.del.70.flex").await;
    assert!(matches!(
        d.event.action,
        Some(flex_outbound::Action::CustomerMessageDeleted(
            v1::CustomerMessageDeleted {
                discord_message_id: 70
            }
        ))
    ));
    assert_eq!(
        flex_out(bus)
            .await
            .iter()
            .filter(|o| o.subject.starts_with(FLEX_OUT.prefix))
            .count(),
        3
    );
    router.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_events_are_mapped_by_index_and_bad_input_is_dead_lettered() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;
    to_agent_joined(bus, DM, USER, "CH12", 5).await;

    // No conversation id and no flex_links entry: bot-router's own index (written when the
    // hand-off started) finds the conversation.
    publish_twilio(
        bus,
        &twilio(
            "twilio.msg.IM12",
            "CH12",
            "",
            twilio_inbound::Event::AgentMessage(v1::AgentMessage {
                message_sid: "IM12".into(),
                index: 2,
                author: "ana".into(),
                author_friendly_name: "Ana".into(),
                body: "Found it!".into(),
                media: vec![],
            }),
        ),
    )
    .await;
    let said = wait_discord(bus, "twilio.msg.IM12.dm").await;
    assert_eq!(said.key, DM.to_string());

    // A Flex conversation nobody knows: retried a few times, then dead-lettered with its reason.
    publish_twilio(
        bus,
        &twilio(
            "twilio.msg.IM99",
            "CH99",
            "",
            twilio_inbound::Event::AgentMessage(v1::AgentMessage {
                message_sid: "IM99".into(),
                body: "lost".into(),
                ..Default::default()
            }),
        ),
    )
    .await;
    // A Discord event without a user is invalid: dead-lettered at once.
    let invalid = v1::DiscordInbound {
        event_id: "discord.msg.999".into(),
        user: None,
        channel_id: DM,
        dm_channel_id: DM,
        event: Some(v1::discord_inbound::Event::MessagePosted(
            v1::MessagePosted {
                message_id: 999,
                content: "hi".into(),
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    publish_discord(bus, &DM.to_string(), &invalid).await;
    let dead = flexcord_harness::eventually(WAIT, || async {
        let d = dead_letters(bus).await;
        (d.len() >= 2).then_some(d)
    })
    .await
    .expect("two dead letters");
    let find = |id: &str| {
        dead.iter()
            .find(|(orig, _)| orig == id)
            .map(|(_, reason)| reason.clone())
            .unwrap_or_else(|| panic!("no dead letter for {id}: {dead:?}"))
    };
    assert!(find("twilio.msg.IM99").contains("no conversation known"));
    assert!(find("discord.msg.999").contains("without a user"));
    // The router is still fine.
    publish_discord(bus, &DM.to_string(), &dm(DM, USER, 1000, "still here")).await;
    wait_flex(bus, "flex.msg.1000").await;
    router.stop().await;
}

/// (original msg id, reason) of every dead letter.
async fn dead_letters(bus: &flexcord_bus::Bus) -> Vec<(String, String)> {
    use flexcord_bus::{headers, testing};
    testing::stream_messages(bus, "DEAD_LETTER")
        .await
        .iter()
        .map(|m| {
            (
                testing::header(m, headers::DLQ_ORIGINAL_MSG_ID),
                testing::header(m, headers::DLQ_REASON),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_studio_flow_question_is_answered_in_the_users_dm() {
    let env = Env::start().await;
    let router = RouterHandle::start(env.config());
    let bus = &env.bus;

    // The user greeted the bot in English first (the conversation and its language exist).
    publish_discord(bus, &DM.to_string(), &helpme(DM, USER, 300, "en-US")).await;
    wait_discord(bus, "discord.ix.300.greeting").await;

    // The team's Studio flow forwards the user's words to the bot callback.
    publish_twilio(
        bus,
        &twilio(
            "twilio.studio.IM42",
            "CH4242",
            &DM.to_string(),
            flexcord_proto::v1::twilio_inbound::Event::StudioBotRequest(
                flexcord_proto::v1::StudioBotRequest {
                    body: "I forgot my password".into(),
                    author: format!("discord_{USER}"),
                    flow_sid: "FW1".into(),
                    ..Default::default()
                },
            ),
        ),
    )
    .await;
    let answer = wait_discord(bus, "twilio.studio.IM42.studio-reply").await;
    assert_eq!(
        answer.event.target,
        Some(discord_outbound::Target::ChannelId(DM))
    );
    let m = sent(&answer.event);
    assert!(
        m.embeds
            .iter()
            .any(|e| e.title.to_lowercase().contains("password")),
        "{:?}",
        m.embeds.iter().map(|e| &e.title).collect::<Vec<_>>()
    );
    assert!(
        m.components.is_empty(),
        "the flow, not the bot, offers agents"
    );
    // Nothing goes to Flex or to cases: the Studio flow owns routing.
    assert!(flex_out(bus).await.is_empty());
    assert!(case_cmds(bus).await.is_empty());
    router.stop().await;
}
