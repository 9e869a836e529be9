//! The bus against a real nats-server: round trips, dedupe, ordering, retries, dead letters,
//! redelivery, server restarts and draining.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use flexcord_bus::consumer::Backoff;
use flexcord_bus::topology::{self, test_stream, DEAD_LETTER};
use flexcord_bus::{headers, Change, Consumer, Delivery, Handler, HandlerError};
use flexcord_proto::v1 as pb;
use flexcord_proto::v1::*;
use tokio_util::sync::CancellationToken;

fn user() -> DiscordUser {
    DiscordUser {
        id: 4_000_000_000_000_000_001,
        username: "alice".into(),
        display_name: "Alice".into(),
        locale: "fr".into(),
    }
}

fn attachment() -> Attachment {
    Attachment {
        discord_attachment_id: 77,
        filename: "screen.png".into(),
        content_type: "image/png".into(),
        size_bytes: 1234,
        object_name: "att/77".into(),
        source_url: "http://cdn/77".into(),
        too_large: false,
    }
}

fn interaction() -> InteractionRef {
    InteractionRef {
        interaction_id: 6,
        token: "tok".into(),
        application_id: 1,
        token_expires_at: Some(flexcord_proto::now()),
    }
}

fn discord_inbound_samples() -> Vec<DiscordInbound> {
    use discord_inbound::Event;
    let events = vec![
        Event::MessagePosted(MessagePosted {
            message_id: 5,
            content: "bonjour".into(),
            attachments: vec![attachment()],
            from_catch_up: true,
        }),
        Event::MessageEdited(MessageEdited {
            message_id: 5,
            content: "bonjour !".into(),
            edited_at: Some(flexcord_proto::now()),
        }),
        Event::MessageDeleted(MessageDeleted { message_id: 5 }),
        Event::TypingStarted(TypingStarted {}),
        Event::CommandInvoked(CommandInvoked {
            interaction: Some(interaction()),
            command: SlashCommand::Bug as i32,
            invoked_name: "bug".into(),
            options: [("title".to_owned(), "Crash".to_owned())].into(),
            locale: "fr".into(),
            ack: InteractionAck::EphemeralReceipt as i32,
        }),
        Event::ComponentClicked(ComponentClicked {
            interaction: Some(interaction()),
            custom_id: "agent".into(),
            message_id: 9,
            locale: "en-US".into(),
        }),
        Event::DeliveryFailed(DiscordDeliveryFailed {
            outbound_event_id: "out-1".into(),
            discord_code: 50007,
            http_status: 403,
            reason: "Cannot send messages to this user".into(),
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| DiscordInbound {
            event_id: format!("in-{i}"),
            occurred_at: Some(flexcord_proto::now()),
            user: Some(user()),
            channel_id: 3,
            guild_id: 0,
            dm_channel_id: 3,
            event: Some(e),
        })
        .collect()
}

fn discord_outbound_samples() -> Vec<DiscordOutbound> {
    use discord_outbound::{Action, Target};
    let msg = OutboundMessage {
        content: "hi @everyone".into(),
        embeds: vec![Embed {
            title: "CASE-000001".into(),
            description: "Crash".into(),
            url: "http://x".into(),
            color: 0xff0000,
            fields: vec![EmbedField {
                name: "Severity".into(),
                value: "high".into(),
                inline: true,
            }],
            footer: "f".into(),
            timestamp: Some(flexcord_proto::now()),
        }],
        components: vec![ActionRow {
            buttons: vec![Button {
                custom_id: "agent".into(),
                label: "Talk to an agent".into(),
                style: ButtonStyle::Primary as i32,
                url: String::new(),
                disabled: false,
            }],
        }],
        allowed_mentions: Some(AllowedMentions {
            users: vec![1],
            roles: vec![],
            everyone: false,
        }),
        files: vec![attachment()],
        ephemeral: true,
        edit_original_response: false,
    };
    vec![
        DiscordOutbound {
            event_id: "o1".into(),
            conversation_id: "3".into(),
            target: Some(Target::ChannelId(3)),
            action: Some(Action::Send(msg.clone())),
        },
        DiscordOutbound {
            event_id: "o2".into(),
            conversation_id: "3".into(),
            target: Some(Target::UserId(4)),
            action: Some(Action::Edit(EditOutbound {
                original_event_id: "o1".into(),
                message: Some(msg),
            })),
        },
        DiscordOutbound {
            event_id: "o3".into(),
            conversation_id: "3".into(),
            target: Some(Target::Interaction(interaction())),
            action: Some(Action::Delete(DeleteOutbound {
                original_event_id: "o1".into(),
            })),
        },
    ]
}

fn flex_outbound_samples() -> Vec<FlexOutbound> {
    use flex_outbound::Action;
    let actions = vec![
        Action::StartHandoff(StartHandoff {
            case_number: "CASE-000001".into(),
            case_url: "http://cases/1".into(),
            language: "fr".into(),
            summary: "help".into(),
        }),
        Action::CustomerMessage(CustomerMessage {
            discord_message_id: 5,
            text: "hello".into(),
            attachments: vec![attachment()],
        }),
        Action::CustomerMessageEdited(CustomerMessageEdited {
            discord_message_id: 5,
            text: "hello!".into(),
        }),
        Action::CustomerMessageDeleted(CustomerMessageDeleted {
            discord_message_id: 5,
        }),
        Action::SystemNotice(SystemNotice {
            text: "user unreachable".into(),
        }),
        Action::Close(CloseFlexConversation {
            reason: "timeout".into(),
        }),
    ];
    actions
        .into_iter()
        .enumerate()
        .map(|(i, a)| FlexOutbound {
            event_id: format!("f{i}"),
            conversation_id: "3".into(),
            user: Some(user()),
            action: Some(a),
        })
        .collect()
}

fn twilio_inbound_samples() -> Vec<TwilioInbound> {
    use twilio_inbound::Event;
    let events = vec![
        Event::HandoffStarted(HandoffStarted {
            interaction_sid: "KD1".into(),
            task_sid: "WT1".into(),
            case_number: "CASE-000001".into(),
        }),
        Event::AgentJoined(AgentJoined {
            participant_sid: "MB1".into(),
            identity: "ana".into(),
            friendly_name: "Ana".into(),
        }),
        Event::AgentLeft(AgentLeft {
            participant_sid: "MB1".into(),
            identity: "ana".into(),
        }),
        Event::AgentMessage(AgentMessage {
            message_sid: "IM1".into(),
            index: 4,
            author: "ana".into(),
            author_friendly_name: "Ana".into(),
            body: "Bonjour".into(),
            media: vec![TwilioMedia {
                media_sid: "ME1".into(),
                filename: "a.png".into(),
                content_type: "image/png".into(),
                size_bytes: 9,
                object_name: "tw/ME1".into(),
            }],
        }),
        Event::ConversationClosed(FlexConversationClosed {
            reason: "API".into(),
        }),
        Event::DeliveryFailed(FlexDeliveryFailed {
            outbound_event_id: "f1".into(),
            twilio_code: 50377,
            http_status: 400,
            reason: "closed".into(),
        }),
        Event::StudioBotRequest(StudioBotRequest {
            body: "help".into(),
            author: "discord_4".into(),
            flow_sid: "FW1".into(),
            ..Default::default()
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| TwilioInbound {
            event_id: format!("t{i}"),
            conversation_sid: "CH1".into(),
            conversation_id: "3".into(),
            occurred_at: Some(flexcord_proto::now()),
            event: Some(e),
        })
        .collect()
}

fn case_snapshot() -> Case {
    Case {
        number: "CASE-000001".into(),
        kind: CaseKind::Bug as i32,
        status: CaseStatus::Open as i32,
        subject: "Crash".into(),
        description: "It crashes".into(),
        severity: Severity::High as i32,
        priority: "p1".into(),
        user: Some(user()),
        origin: Some(CaseOrigin {
            channel_id: 3,
            interaction_id: 6,
            conversation_id: "3".into(),
            interaction_token: "tok".into(),
            application_id: 1,
        }),
        conversation_sid: "CH1".into(),
        interaction_sid: "KD1".into(),
        agent_identity: "ana".into(),
        agent_name: "Ana".into(),
        csat_rating: 5,
        csat_comment: "great".into(),
        created_at: Some(flexcord_proto::now()),
        updated_at: Some(flexcord_proto::now()),
        assignee: "ana".into(),
        url: "http://cases/1".into(),
    }
}

fn case_command_samples() -> Vec<CaseCommand> {
    use case_command::Command;
    let commands = vec![
        Command::Open(OpenCase {
            kind: CaseKind::Support as i32,
            subject: "help".into(),
            description: "d".into(),
            severity: Severity::Low as i32,
            user: Some(user()),
            origin: case_snapshot().origin,
        }),
        Command::UpdateStatus(UpdateCaseStatus {
            case_number: "CASE-000001".into(),
            status: CaseStatus::Resolved as i32,
            comment: "fixed".into(),
        }),
        Command::AddNote(AddCaseNote {
            case_number: "CASE-000001".into(),
            author: "ana".into(),
            text: "note".into(),
        }),
        Command::RecordCsat(RecordCsat {
            case_number: "CASE-000001".into(),
            rating: 4,
            comment: "ok".into(),
        }),
        Command::LinkConversation(LinkFlexConversation {
            case_number: "CASE-000001".into(),
            conversation_sid: "CH1".into(),
            interaction_sid: "KD1".into(),
        }),
        Command::AssignAgent(AssignAgent {
            case_number: "CASE-000001".into(),
            agent_identity: "ana".into(),
            agent_name: "Ana".into(),
        }),
    ];
    commands
        .into_iter()
        .enumerate()
        .map(|(i, c)| CaseCommand {
            command_id: format!("c{i}"),
            issued_at: Some(flexcord_proto::now()),
            actor: "bot-router".into(),
            command: Some(c),
        })
        .collect()
}

fn case_event_samples() -> Vec<CaseEvent> {
    use case_event::Event;
    let events = vec![
        Event::Opened(CaseOpened {}),
        Event::StatusChanged(CaseStatusChanged {
            from: CaseStatus::Open as i32,
            to: CaseStatus::InProgress as i32,
            comment: "c".into(),
            actor: "ana".into(),
        }),
        Event::NoteAdded(CaseNoteAdded {
            author: "ana".into(),
            text: "t".into(),
        }),
        Event::CsatRecorded(CaseCsatRecorded {
            rating: 5,
            comment: "x".into(),
        }),
        Event::Updated(CaseUpdated {
            changed_fields: vec!["priority".into()],
        }),
        Event::Rejected(CaseCommandRejected {
            reason: "invalid transition".into(),
        }),
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| CaseEvent {
            event_id: format!("e{i}"),
            occurred_at: Some(flexcord_proto::now()),
            command_id: "c0".into(),
            case: Some(case_snapshot()),
            event: Some(e),
        })
        .collect()
}

/// Publishes every sample on `stream` and checks the consumer decodes exactly the same events.
async fn round_trip<T>(bus: &flexcord_bus::Bus, stream: flexcord_bus::StreamSpec, samples: Vec<T>)
where
    T: prost::Message + Default + Clone + PartialEq + Send + Sync + std::fmt::Debug + 'static,
{
    for (i, s) in samples.iter().enumerate() {
        let ack = bus
            .publish(
                &stream,
                &format!("k{}", i % 3),
                &format!("{}-{i}", stream.name),
                s,
            )
            .await
            .unwrap();
        assert!(!ack.duplicate);
    }
    let (handler, mut rx) = collector::<T>();
    let shutdown = CancellationToken::new();
    let consumer = Consumer::new(bus, fast_options(stream, "rt"), handler);
    let task = tokio::spawn(consumer.run(shutdown.clone()));
    let got = recv_n(&mut rx, samples.len(), Duration::from_secs(10)).await;
    let mut got: Vec<(u64, T)> = got
        .into_iter()
        .map(|d| (d.stream_sequence, d.event))
        .collect();
    got.sort_by_key(|(seq, _)| *seq);
    let got: Vec<T> = got.into_iter().map(|(_, e)| e).collect();
    assert_eq!(got, samples, "stream {}", stream.name);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_round_trips_through_the_bus() {
    let (_server, bus) = server_and_bus().await;
    round_trip(&bus, topology::DISCORD_IN, discord_inbound_samples()).await;
    round_trip(&bus, topology::DISCORD_OUT, discord_outbound_samples()).await;
    round_trip(&bus, topology::FLEX_OUT, flex_outbound_samples()).await;
    round_trip(&bus, topology::TWILIO_IN, twilio_inbound_samples()).await;
    round_trip(&bus, topology::CASE_CMD, case_command_samples()).await;
    round_trip(&bus, topology::CASE_EVT, case_event_samples()).await;

    // State kept in KV round-trips too.
    let conversations = bus
        .kv::<ConversationState>(topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    let state = ConversationState {
        conversation_id: "3".into(),
        user: Some(user()),
        dm_channel_id: 3,
        language: "fr".into(),
        mode: ConversationMode::WaitingForAgent as i32,
        case_number: "CASE-000001".into(),
        open_case_command_id: "c0".into(),
        flex_conversation_sid: "CH1".into(),
        agent_identity: "ana".into(),
        agent_name: "Ana".into(),
        mode_since: Some(flexcord_proto::now()),
        last_activity: Some(flexcord_proto::now()),
        queued: vec![QueuedCustomerMessage {
            discord_message_id: 5,
            text: "waiting".into(),
            attachments: vec![attachment()],
        }],
        recent_event_ids: vec!["in-0".into()],
        greeted_interaction_id: 6,
        wait_apology_sent: true,
        csat_case_number: "CASE-000001".into(),
        ..Default::default()
    };
    conversations.put("3", &state).await.unwrap();
    assert_eq!(conversations.get("3").await.unwrap().unwrap().value, state);
    let links = bus.kv::<FlexLink>(topology::KV_FLEX_LINKS).await.unwrap();
    let link = FlexLink {
        conversation_id: "3".into(),
        conversation_sid: "CH1".into(),
        chat_service_sid: "IS1".into(),
        customer_participant_sid: "MB1".into(),
        webhook_sid: "WH1".into(),
        interaction_sid: "KD1".into(),
        interaction_channel_sid: "UO1".into(),
        task_sid: "WT1".into(),
        customer_identity: "discord_4".into(),
        case_number: "CASE-000001".into(),
        closed: false,
        created_at: Some(flexcord_proto::now()),
        summary_message_sid: "IM1".into(),
    };
    links.put("3", &link).await.unwrap();
    assert_eq!(links.get("3").await.unwrap().unwrap().value, link);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_msg_id_published_twice_is_delivered_once() {
    let (_server, bus) = server_and_bus().await;
    let stream = topology::DISCORD_IN;
    let event = &discord_inbound_samples()[0];
    let first = bus
        .publish(&stream, "k", "discord.msg.5", event)
        .await
        .unwrap();
    let second = bus
        .publish(&stream, "k", "discord.msg.5", event)
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(
        second.duplicate,
        "JetStream must recognise the repeated Nats-Msg-Id"
    );
    let other = bus
        .publish(&stream, "k", "discord.msg.6", event)
        .await
        .unwrap();
    assert!(!other.duplicate);

    let (handler, mut rx) = collector::<DiscordInbound>();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "dedupe"), handler).run(shutdown.clone()),
    );
    let got = recv_n(&mut rx, 2, Duration::from_secs(10)).await;
    let ids: Vec<_> = got.iter().map(|d| d.msg_id.clone().unwrap()).collect();
    assert_eq!(ids, vec!["discord.msg.5", "discord.msg.6"]);
    assert_quiet(&mut rx, Duration::from_millis(500)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// Records per-key order and the number of keys in flight at once.
struct OrderProbe {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    seen: Mutex<HashMap<String, Vec<u32>>>,
    done: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Handler<MessagePosted> for OrderProbe {
    async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = rand::random::<u64>() % 3;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.seen
            .lock()
            .unwrap()
            .entry(d.key.clone())
            .or_default()
            .push(d.event.message_id as u32);
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let _ = self.done.send(());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_handled_in_order_and_in_parallel() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("ORDER_TEST", "test.order");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    let keys = 200u32;
    let per_key = 50u32;
    // Interleave keys, as real traffic does, with many publishes in flight.
    let mut pending = Vec::new();
    for i in 0..per_key {
        for k in 0..keys {
            let msg = MessagePosted {
                message_id: u64::from(i),
                ..Default::default()
            };
            pending.push(
                bus.publish_async(&stream, &format!("key-{k}"), &format!("{k}-{i}"), &msg)
                    .await
                    .unwrap(),
            );
            if pending.len() >= 512 {
                for p in pending.drain(..) {
                    p.ack().await.unwrap();
                }
            }
        }
    }
    for p in pending.drain(..) {
        p.ack().await.unwrap();
    }

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let probe = Arc::new(OrderProbe {
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        seen: Mutex::new(HashMap::new()),
        done: done_tx,
    });
    let mut opts = fast_options(stream, "order");
    opts.concurrency = 32;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(Consumer::new(&bus, opts, probe.clone()).run(shutdown.clone()));
    recv_n(
        &mut done_rx,
        (keys * per_key) as usize,
        Duration::from_secs(120),
    )
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let seen = probe.seen.lock().unwrap();
    assert_eq!(seen.len(), keys as usize);
    let expected: Vec<u32> = (0..per_key).collect();
    for (key, order) in seen.iter() {
        assert_eq!(order, &expected, "key {key} handled out of order");
    }
    let max = probe.max_in_flight.load(Ordering::SeqCst);
    assert!(
        max > 1,
        "expected several keys in flight at once, saw at most {max}"
    );
    assert!(max <= 32, "concurrency bound exceeded: {max}");
}

/// Fails the first two attempts, then succeeds; records when each attempt started.
struct FlakyTwice {
    attempts: Mutex<Vec<(u32, Instant)>>,
    done: tokio::sync::mpsc::UnboundedSender<()>,
}

impl Handler<MessagePosted> for FlakyTwice {
    async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        self.attempts
            .lock()
            .unwrap()
            .push((d.attempt, Instant::now()));
        if d.attempt < 3 {
            return Err(HandlerError::retry("transient"));
        }
        let _ = self.done.send(());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_failing_twice_is_retried_with_backoff_and_acked_once() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("RETRY_TEST", "test.retry");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    bus.publish(&stream, "k", "m1", &MessagePosted::default())
        .await
        .unwrap();

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let probe = Arc::new(FlakyTwice {
        attempts: Mutex::new(Vec::new()),
        done: done_tx,
    });
    let mut opts = fast_options(stream, "retry");
    opts.backoff = Backoff {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(2),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(Consumer::new(&bus, opts, probe.clone()).run(shutdown.clone()));
    recv_n(&mut done_rx, 1, Duration::from_secs(10)).await;
    // Longer than the ack wait: a missing ack would show up as a redelivery.
    assert_quiet(&mut done_rx, Duration::from_secs(3)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let attempts = probe.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts.iter().map(|a| a.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // Backoff with jitter in the upper half: attempt 1 -> >= 100 ms, attempt 2 -> >= 200 ms.
    let gap1 = attempts[1].1 - attempts[0].1;
    let gap2 = attempts[2].1 - attempts[1].1;
    assert!(gap1 >= Duration::from_millis(100), "first backoff {gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(200),
        "second backoff {gap2:?}"
    );

    let mut consumer = bus
        .jetstream()
        .get_stream(stream.name)
        .await
        .unwrap()
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&format!(
            "retry-p{}",
            topology::partition_of("k")
        ))
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0, "message must be acked");
    assert_eq!(
        info.num_redelivered, 0,
        "acked once, never redelivered by the server"
    );
    assert_eq!(info.ack_floor.stream_sequence, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("RETRY_AFTER_TEST", "test.retryafter");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    bus.publish(&stream, "k", "m1", &MessagePosted::default())
        .await
        .unwrap();

    struct SaysWait(Mutex<Vec<Instant>>, tokio::sync::mpsc::UnboundedSender<()>);
    impl Handler<MessagePosted> for SaysWait {
        async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
            self.0.lock().unwrap().push(Instant::now());
            if d.attempt == 1 {
                return Err(HandlerError::retry_after("429", Duration::from_millis(900)));
            }
            let _ = self.1.send(());
            Ok(())
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let h = Arc::new(SaysWait(Mutex::new(Vec::new()), tx));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "ra"), h.clone()).run(shutdown.clone()),
    );
    recv_n(&mut rx, 1, Duration::from_secs(10)).await;
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let times = h.0.lock().unwrap().clone();
    assert_eq!(times.len(), 2);
    assert!(times[1] - times[0] >= Duration::from_millis(900));
}

/// Fails permanently on message id 13.
struct PermanentOn13(tokio::sync::mpsc::UnboundedSender<(String, u64)>);

impl Handler<MessagePosted> for PermanentOn13 {
    async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        if d.event.message_id == 13 {
            return Err(HandlerError::permanent("message 13 is cursed"));
        }
        let _ = self.0.send((d.key.clone(), d.event.message_id));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_and_garbage_go_to_dead_letter_and_others_flow() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("DLQ_TEST", "test.dlq");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    // Key "a": 12, 13 (permanent failure), 14. Key "b": garbage, then 20. Key "c": 30, 31.
    for id in [12u64, 13, 14] {
        bus.publish(
            &stream,
            "a",
            &format!("a{id}"),
            &MessagePosted {
                message_id: id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0x07, 0x01]);
    bus.publish_raw_async(&stream, "b", "b-garbage", garbage.clone())
        .await
        .unwrap()
        .ack()
        .await
        .unwrap();
    for (key, id) in [("b", 20u64), ("c", 30), ("c", 31)] {
        bus.publish(
            &stream,
            key,
            &format!("{key}{id}"),
            &MessagePosted {
                message_id: id,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "dlq"), PermanentOn13(tx)).run(shutdown.clone()),
    );
    let mut got = recv_n(&mut rx, 5, Duration::from_secs(10)).await;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".to_owned(), 12),
            ("a".to_owned(), 14),
            ("b".to_owned(), 20),
            ("c".to_owned(), 30),
            ("c".to_owned(), 31)
        ]
    );

    // Two dead letters, with original bytes, original headers and the reason.
    let dlq = bus.jetstream().get_stream(DEAD_LETTER.name).await.unwrap();
    let mut letters = Vec::new();
    for seq in 1..=2 {
        letters.push(dlq.get_raw_message(seq).await.unwrap());
    }
    let by_msg_id = |id: &str| {
        letters
            .iter()
            .find(|m| {
                m.headers
                    .get(headers::DLQ_ORIGINAL_MSG_ID)
                    .map(|v| v.as_str())
                    == Some(id)
            })
            .unwrap_or_else(|| panic!("no dead letter for {id}"))
    };
    let cursed = by_msg_id("a13");
    assert!(cursed
        .headers
        .get(headers::DLQ_REASON)
        .unwrap()
        .as_str()
        .contains("cursed"));
    assert_eq!(cursed.headers.get(headers::KEY).unwrap().as_str(), "a");
    assert_eq!(
        cursed.headers.get(headers::DLQ_STREAM).unwrap().as_str(),
        "DLQ_TEST"
    );
    assert_eq!(
        MessagePosted::decode_bytes(&cursed.payload).message_id,
        13,
        "dead letter keeps the original bytes"
    );
    let bad = by_msg_id("b-garbage");
    assert!(bad
        .headers
        .get(headers::DLQ_REASON)
        .unwrap()
        .as_str()
        .contains("undecodable"));
    assert_eq!(bad.payload, garbage);
    assert_eq!(bus.metrics().dead_lettered_total("dlq", "DLQ_TEST"), 2);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

trait DecodeBytes: Sized {
    fn decode_bytes(b: &Bytes) -> Self;
}
impl<T: prost::Message + Default> DecodeBytes for T {
    fn decode_bytes(b: &Bytes) -> Self {
        T::decode(b.as_ref()).unwrap()
    }
}

/// Never finishes: simulates a process that dies before acking.
struct Hangs(tokio::sync::mpsc::UnboundedSender<u64>);

impl Handler<MessagePosted> for Hangs {
    async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
        let _ = self.0.send(d.event.message_id);
        futures::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_dropped_before_ack_gets_its_message_redelivered_to_the_next() {
    let (server, bus) = server_and_bus().await;
    let stream = test_stream("DROP_TEST", "test.drop");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    bus.publish(
        &stream,
        "k",
        "m1",
        &MessagePosted {
            message_id: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    // First consumer "process": its own runtime and connection, stuck in the handler, then killed by
    // shutting the runtime down (every task and the connection die without acking).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let url = server.url();
    let process = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.spawn(async move {
            let first_bus = connect(&url).await;
            Consumer::new(&first_bus, fast_options(stream, "drop"), Hangs(tx))
                .run(CancellationToken::new())
                .await
        });
        kill_rx.recv().unwrap();
        rt.shutdown_background();
    });
    assert_eq!(recv_n(&mut rx, 1, Duration::from_secs(10)).await, vec![1]);
    kill_tx.send(()).unwrap();
    process.join().unwrap();

    let (handler, mut rx2) = collector::<MessagePosted>();
    let shutdown = CancellationToken::new();
    let second = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "drop"), handler).run(shutdown.clone()),
    );
    let got = recv_n(&mut rx2, 1, Duration::from_secs(15)).await;
    assert_eq!(got[0].event.message_id, 1);
    assert!(got[0].server_deliveries >= 2, "it is a redelivery");
    shutdown.cancel();
    second.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_run_loses_nothing_and_duplicates_nothing() {
    let (mut server, bus) = server_and_bus().await;
    let stream = test_stream("RESTART_TEST", "test.restart");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    let total = 10_000u64;

    let seen: Arc<Mutex<HashMap<u64, u32>>> = Arc::new(Mutex::new(HashMap::new()));
    struct Count(Arc<Mutex<HashMap<u64, u32>>>);
    impl Handler<MessagePosted> for Count {
        async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
            *self
                .0
                .lock()
                .unwrap()
                .entry(d.event.message_id)
                .or_default() += 1;
            Ok(())
        }
    }
    let shutdown = CancellationToken::new();
    let consumer = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "restart"), Count(seen.clone()))
            .run(shutdown.clone()),
    );

    // Publish with retries: a publish that fails during the outage is sent again with the same id.
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for i in 0..total {
                let msg = MessagePosted {
                    message_id: i,
                    ..Default::default()
                };
                loop {
                    match bus
                        .publish(&stream, &format!("k{}", i % 100), &format!("m{i}"), &msg)
                        .await
                    {
                        Ok(_) => break,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        })
    };
    // Restart in the middle of the run.
    flexcord_harness::eventually(Duration::from_secs(60), || {
        let n = seen.lock().unwrap().len();
        async move { (n >= 3_000).then_some(()) }
    })
    .await
    .expect("progress before restart");
    let _server = tokio::task::spawn_blocking(move || {
        server.restart().unwrap();
        server
    })
    .await
    .unwrap();
    publisher.await.unwrap();

    let done = flexcord_harness::eventually(Duration::from_secs(90), || {
        let n = seen.lock().unwrap().len() as u64;
        async move { (n == total).then_some(()) }
    })
    .await;
    let seen_now = seen.lock().unwrap().clone();
    assert!(
        done.is_some(),
        "only {} of {total} messages arrived",
        seen_now.len()
    );
    let twice: Vec<_> = seen_now.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        twice.is_empty(),
        "{} messages reached the handler twice, e.g. {:?}",
        twice.len(),
        twice.iter().take(5).collect::<Vec<_>>()
    );
    shutdown.cancel();
    consumer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_work_and_loses_nothing() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("DRAIN_TEST", "test.drain");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    let total = 60u64;
    for i in 0..total {
        bus.publish(
            &stream,
            &format!("k{}", i % 6),
            &format!("m{i}"),
            &MessagePosted {
                message_id: i,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }

    #[derive(Default)]
    struct Slow {
        started: Mutex<HashSet<u64>>,
        finished: Mutex<Vec<u64>>,
    }
    impl Handler<MessagePosted> for Slow {
        async fn handle(&self, d: &Delivery<MessagePosted>) -> Result<(), HandlerError> {
            self.started.lock().unwrap().insert(d.event.message_id);
            tokio::time::sleep(Duration::from_millis(300)).await;
            self.finished.lock().unwrap().push(d.event.message_id);
            Ok(())
        }
    }
    let slow = Arc::new(Slow::default());
    let shutdown = CancellationToken::new();
    let first = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "drain"), slow.clone()).run(shutdown.clone()),
    );
    flexcord_harness::eventually(Duration::from_secs(10), || {
        let n = slow.started.lock().unwrap().len();
        async move { (n >= 6).then_some(()) }
    })
    .await
    .expect("handlers started");
    shutdown.cancel();
    first.await.unwrap().unwrap();
    let started = slow.started.lock().unwrap().clone();
    let finished: HashSet<u64> = slow.finished.lock().unwrap().iter().copied().collect();
    assert_eq!(
        started, finished,
        "every handler that started must finish before exit"
    );
    assert!(
        finished.len() < total as usize,
        "the test must stop mid-run"
    );

    // A second replica handles the rest: nothing lost, nothing acked twice.
    let (handler, mut rx) = collector::<MessagePosted>();
    let shutdown2 = CancellationToken::new();
    let second = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "drain"), handler).run(shutdown2.clone()),
    );
    let deliveries = recv_n(
        &mut rx,
        total as usize - finished.len(),
        Duration::from_secs(20),
    )
    .await;
    let mut counts: HashMap<u64, Vec<(u64, i64)>> = HashMap::new();
    for d in &deliveries {
        counts
            .entry(d.event.message_id)
            .or_default()
            .push((d.stream_sequence, d.server_deliveries));
    }
    let dups: Vec<_> = counts.iter().filter(|(_, v)| v.len() > 1).collect();
    let order: Vec<(u64, i64)> = deliveries
        .iter()
        .map(|d| (d.stream_sequence, d.server_deliveries))
        .collect();
    assert!(dups.is_empty(), "handled twice by the second replica: {dups:?}; finished by first: {finished:?}; order {order:?}");
    let rest: HashSet<u64> = counts.keys().copied().collect();
    assert!(
        rest.is_disjoint(&finished),
        "acked messages were delivered again"
    );
    assert_eq!(rest.len() + finished.len(), total as usize);
    assert_quiet(&mut rx, Duration::from_secs(3)).await;
    shutdown2.cancel();
    second.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_kv_updates_never_lose_a_write() {
    let (_server, bus) = server_and_bus().await;
    let kv = bus
        .kv::<ConversationState>(topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                kv.update("counter", |cur| {
                    let mut s = cur.cloned().unwrap_or_default();
                    s.recent_event_ids.push("x".into());
                    Change::Put(s, ())
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = kv.get("counter").await.unwrap().unwrap();
    assert_eq!(v.value.recent_event_ids.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_from_a_known_entry_chains_and_survives_a_stale_one() {
    let (_server, bus) = server_and_bus().await;
    let kv = bus
        .kv::<ConversationState>(topology::KV_CONVERSATIONS)
        .await
        .unwrap();
    // Appends `item` and returns how many items there are now.
    let push = |item: &'static str| {
        move |cur: Option<&ConversationState>| {
            let mut s = cur.cloned().unwrap_or_default();
            s.recent_event_ids.push(item.into());
            let len = s.recent_event_ids.len();
            Change::Put(s, len)
        }
    };
    // Absent key, known to be absent: created without a read.
    let (n, after) = kv.update_from("k", None, push("a")).await.unwrap();
    assert_eq!(n, 1);
    let after = after.expect("the written entry");
    assert_eq!(kv.get("k").await.unwrap().as_ref(), Some(&after));
    // Chained from the entry just written.
    let (n, chained) = kv
        .update_from("k", Some(after.clone()), push("b"))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let chained = chained.unwrap();
    assert!(chained.revision > after.revision);
    // A stale entry (someone wrote since) costs a re-read, never a lost write.
    let (n, _) = kv.update_from("k", Some(after), push("c")).await.unwrap();
    assert_eq!(n, 3, "decided on the fresh value");
    // A stale "absent" too.
    let (n, latest) = kv.update_from("k", None, push("d")).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(latest.unwrap().value.recent_event_ids, ["a", "b", "c", "d"]);
    // Keep returns the current entry; Delete returns none.
    let (_, kept) = kv
        .update_from("k", None, |_| Change::Keep(()))
        .await
        .unwrap();
    assert!(
        kept.is_none(),
        "Keep returns the entry as given when nothing was written"
    );
    // A delete from a stale entry is a conflict too: re-read, decided again, then deleted.
    let stale = kv.get("k").await.unwrap();
    kv.update_from("k", None, push("e")).await.unwrap();
    let mut seen = Vec::new();
    let (_, gone) = kv
        .update_from("k", stale, |cur| {
            seen.push(cur.map_or(0, |s| s.recent_event_ids.len()));
            Change::Delete(())
        })
        .await
        .unwrap();
    assert_eq!(
        seen,
        [4, 5],
        "decided on the stale entry, then on the fresh one"
    );
    assert!(gone.is_none());
    assert!(kv.get("k").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_carry_trace_context() {
    let (_server, bus) = server_and_bus().await;
    let stream = test_stream("TRACE_TEST", "test.trace");
    topology::declare_stream(bus.jetstream(), &stream, &Default::default())
        .await
        .unwrap();
    {
        use tracing::Instrument;
        let span = tracing::info_span!("publisher");
        bus.publish(&stream, "k", "t1", &MessagePosted::default())
            .instrument(span)
            .await
            .unwrap();
    }
    let (handler, mut rx) = collector::<MessagePosted>();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        Consumer::new(&bus, fast_options(stream, "trace"), handler).run(shutdown.clone()),
    );
    let d = recv_n(&mut rx, 1, Duration::from_secs(10)).await.remove(0);
    let tp = d
        .headers
        .get("traceparent")
        .expect("traceparent header")
        .as_str()
        .to_owned();
    assert!(
        tp.starts_with("00-") && tp.len() == 55,
        "W3C traceparent, got {tp}"
    );
    assert_eq!(d.headers.get(headers::MSG_ID).unwrap().as_str(), "t1");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_server_reports_health_readiness_and_metrics() {
    let server = flexcord_harness::NatsServer::start().unwrap();
    flexcord_bus::telemetry::init_for_tests();
    let shutdown = CancellationToken::new();
    let ctx = flexcord_bus::ServiceContext::start(
        "admin-test",
        &flexcord_bus::CommonConfig::for_tests(&server.url()),
        &shutdown,
    )
    .await
    .unwrap();
    let base = format!("http://{}", ctx.admin_addr);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-s", "-o", "-", "-w", "\n%{http_code}", &url])
                .output()
                .await
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        }
    };
    assert!(get("/healthz").await.ends_with("200"));
    let ready = get("/readyz").await;
    assert!(ready.ends_with("200"), "{ready}");
    assert!(ready.contains("\"nats_connected\":true"));
    ctx.readiness.set("gateway", false);
    assert!(get("/readyz").await.ends_with("503"));
    ctx.bus
        .publish(&topology::CASE_CMD, "k", "x", &CaseCommand::default())
        .await
        .unwrap();
    let metrics = get("/metrics").await;
    assert!(
        metrics.contains("flexcord_bus_messages_published_total"),
        "{metrics}"
    );
    assert!(metrics.contains("stream=\"CASE_CMD\""));
    shutdown.cancel();
    ctx.finish().await;
    let _ = pb::SlashCommand::Bug;
}
