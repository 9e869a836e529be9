//! Table tests of the state machine: every transition with the exact effects it emits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::input::Suggestion;
use flexcord_proto::v1::{case_command::Command, discord_outbound::Action as DAction};

const CONV: &str = "700";
const DM: u64 = 700;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn settings() -> RouterSettings {
    RouterSettings {
        agent_wait_timeout: Duration::from_secs(60),
        wait_apology_en: None,
        wait_apology_fr: None,
        agent_idle_timeout: Duration::from_secs(120),
        csat_comment_window: Duration::from_secs(600),
        agent_left_notice_delay: Duration::from_secs(15),
    }
}

fn user(locale: &str) -> DiscordUser {
    DiscordUser {
        id: 42,
        username: "neo".into(),
        display_name: "Neo".into(),
        locale: locale.into(),
    }
}

fn msg(id: u64, text: &str, kb: KbLookup) -> Input {
    Input {
        event_id: format!("discord.msg.{id}"),
        kind: InputKind::Message {
            user: user(""),
            dm_channel_id: DM,
            message_id: id,
            text: text.into(),
            attachments: vec![],
            from_catch_up: false,
            kb,
            flex_closed: false,
        },
    }
}

fn human() -> KbLookup {
    KbLookup {
        wants_human: true,
        ..Default::default()
    }
}

fn hits(n: usize) -> KbLookup {
    KbLookup {
        hits: (0..n)
            .map(|i| Suggestion {
                title: format!("Article {i}"),
                summary: format!("Summary {i}"),
                url: Some(format!("https://help.example/{i}")),
            })
            .collect(),
        ..Default::default()
    }
}

fn helpme(ix: u64, locale: &str) -> Input {
    Input {
        event_id: format!("discord.ix.{ix}"),
        kind: InputKind::Helpme {
            user: user(locale),
            dm_channel_id: DM,
            interaction_id: ix,
            locale: locale.into(),
        },
    }
}

fn button(ix: u64, action: ButtonAction) -> Input {
    Input {
        event_id: format!("discord.ix.{ix}"),
        kind: InputKind::Button {
            user: user(""),
            dm_channel_id: DM,
            action,
            locale: String::new(),
        },
    }
}

fn twilio(id: &str, kind: InputKind) -> Input {
    Input {
        event_id: id.into(),
        kind,
    }
}

fn opened(cmd: &str, number: &str) -> Input {
    Input {
        event_id: format!("case-evt-{number}"),
        kind: InputKind::CaseOpened {
            command_id: cmd.into(),
            case: Box::new(Case {
                number: number.into(),
                description: "my purchase is missing".into(),
                url: "https://cases.example/c?sig=x".into(),
                ..Default::default()
            }),
        },
    }
}

/// Runs `input` and returns the new state and the effects (panics if nothing happened).
fn step(
    st: Option<&ConversationState>,
    input: &Input,
    now: DateTime<Utc>,
) -> (ConversationState, Vec<Effect>) {
    let d = decide(st, CONV, input, now, &settings()).expect("a decision");
    (d.state, d.effects)
}

fn dm_text(e: &Effect) -> (&str, &str) {
    match e {
        Effect::Discord(d) => {
            assert_eq!(
                d.target,
                Some(discord_outbound::Target::ChannelId(DM)),
                "DMs go to the DM channel"
            );
            assert_eq!(d.conversation_id, CONV);
            match &d.action {
                Some(DAction::Send(m)) => {
                    assert!(m.allowed_mentions.is_none(), "nobody is pinged");
                    (d.event_id.as_str(), m.content.as_str())
                }
                other => panic!("not a send: {other:?}"),
            }
        }
        other => panic!("not a Discord effect: {other:?}"),
    }
}

fn flex_action(e: &Effect) -> (&str, &flex_outbound::Action) {
    match e {
        Effect::Flex(f) => {
            assert_eq!(f.conversation_id, CONV);
            (f.event_id.as_str(), f.action.as_ref().unwrap())
        }
        other => panic!("not a Flex effect: {other:?}"),
    }
}

fn case_cmd(e: &Effect) -> (&str, &str, &Command) {
    match e {
        Effect::Case { key, command } => {
            assert_eq!(command.actor, ACTOR);
            (
                key.as_str(),
                command.command_id.as_str(),
                command.command.as_ref().unwrap(),
            )
        }
        other => panic!("not a case command: {other:?}"),
    }
}

/// A conversation waiting for an agent with case CASE-000001 open and Flex conversation CH1.
fn waiting_started() -> ConversationState {
    let (st, _) = step(None, &msg(1, "I want a human", human()), at(0));
    let (st, _) = step(Some(&st), &opened("handoff.700.1", "CASE-000001"), at(1));
    let (st, _) = step(
        Some(&st),
        &twilio(
            "twilio.handoff.CH1",
            InputKind::HandoffStarted {
                sid: "CH1".into(),
                interaction_sid: "KD1".into(),
                case_number: "CASE-000001".into(),
            },
        ),
        at(2),
    );
    st
}

fn joined() -> ConversationState {
    let (st, _) = step(
        Some(&waiting_started()),
        &twilio(
            "twilio.join.MB1",
            InputKind::AgentJoined {
                sid: "CH1".into(),
                identity: "ana@example.com".into(),
                name: "Ana".into(),
            },
        ),
        at(3),
    );
    st
}

#[test]
fn helpme_greets_once_in_the_users_language_with_the_button() {
    let (st, fx) = step(None, &helpme(9, "fr"), at(0));
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert_eq!(st.language, "fr");
    assert!(st.language_from_locale);
    assert_eq!(fx.len(), 1);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "discord.ix.9.greeting");
    assert!(text.starts_with("Bonjour Neo"), "{text}");
    let Effect::Discord(d) = &fx[0] else { panic!() };
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");
    assert_eq!(m.components[0].buttons[0].label, "Parler à un conseiller");
    // Redelivery: nothing. Same interaction under another event id: no second greeting.
    assert!(decide(Some(&st), CONV, &helpme(9, "fr"), at(1), &settings()).is_none());
    let mut again = helpme(9, "fr");
    again.event_id = "other".into();
    assert!(decide(Some(&st), CONV, &again, at(1), &settings()).is_none());
    // English locale.
    let (_, fx) = step(None, &helpme(10, "en-US"), at(0));
    assert!(dm_text(&fx[0]).1.starts_with("Hi Neo"));
}

#[test]
fn bot_mode_answers_with_up_to_three_articles_and_the_button() {
    let (st, fx) = step(None, &msg(5, "forgot my password", hits(3)), at(0));
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert_eq!(fx.len(), 1);
    let Effect::Discord(d) = &fx[0] else { panic!() };
    assert_eq!(d.event_id, "discord.msg.5.reply");
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert_eq!(m.embeds.len(), 3);
    assert_eq!(m.embeds[0].title, "Article 0");
    assert_eq!(m.embeds[0].description, "Summary 0");
    assert_eq!(m.embeds[0].url, "https://help.example/0");
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");
    assert!(already_handled(&st, "discord.msg.5"));
    assert!(!already_handled(&st, "discord.msg.6"));

    let (_, fx) = step(Some(&st), &msg(6, "asdfgh", KbLookup::default()), at(1));
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "discord.msg.6.reply");
    assert!(text.contains("couldn't find"), "{text}");
    let Effect::Discord(d) = &fx[0] else { panic!() };
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert!(m.embeds.is_empty());
    assert_eq!(m.components[0].buttons[0].custom_id, "handoff");
}

#[test]
fn guessed_language_is_used_unless_a_locale_is_known() {
    let fr = KbLookup {
        guessed: Some(Lang::Fr),
        ..Default::default()
    };
    let (st, fx) = step(None, &msg(5, "je trouve pas", fr.clone()), at(0));
    assert_eq!(st.language, "fr");
    assert!(dm_text(&fx[0]).1.starts_with("Désolé"));
    let (st, _) = step(None, &helpme(1, "en-GB"), at(0));
    let (st, fx) = step(Some(&st), &msg(6, "je trouve pas", fr), at(1));
    assert_eq!(st.language, "en");
    assert!(dm_text(&fx[0]).1.starts_with("Sorry"));
}

#[test]
fn asking_for_a_person_opens_a_case_and_queues_messages() {
    let (st, _) = step(None, &msg(1, "my purchase is missing", hits(1)), at(0));
    let fr_human = KbLookup {
        wants_human: true,
        guessed: Some(Lang::Fr),
        ..Default::default()
    };
    let (st, fx) = step(
        Some(&st),
        &msg(2, "parler à un conseiller", fr_human),
        at(1),
    );
    assert_eq!(mode_of(&st), ConversationMode::WaitingForAgent);
    assert_eq!(st.open_case_command_id, "handoff.700.1");
    assert_eq!(st.handoff_count, 1);
    // Open command, then the wait timer.
    assert_eq!(fx.len(), 2);
    let (key, id, cmd) = case_cmd(&fx[0]);
    assert_eq!((key, id), ("700", "handoff.700.1"));
    let Command::Open(open) = cmd else { panic!() };
    assert_eq!(open.kind, flexcord_proto::v1::CaseKind::Support as i32);
    assert_eq!(open.user.as_ref().unwrap().id, 42);
    let origin = open.origin.as_ref().unwrap();
    assert_eq!(origin.conversation_id, "700");
    assert_eq!(origin.interaction_id, 0);
    assert_eq!(
        open.description,
        "my purchase is missing\n\nparler à un conseiller"
    );
    let Effect::SetTimer(t) = &fx[1] else {
        panic!()
    };
    assert_eq!(t.kind, RouterTimerKind::AgentWait as i32);
    assert_eq!(t.deadline, Some(to_proto(at(61))));
    assert_eq!(st.timer.as_ref(), Some(t));

    // Messages while waiting for the case number are queued, not answered.
    let (st, fx) = step(Some(&st), &msg(3, "hello?", hits(2)), at(2));
    assert!(fx.is_empty());
    assert_eq!(st.queued.len(), 1);
    assert_eq!(st.queued[0].text, "hello?");
    // Edits and deletes apply to the queue.
    let (st, _) = step(
        Some(&st),
        &twilio(
            "discord.edit.3",
            InputKind::Edit {
                message_id: 3,
                text: "hello??".into(),
            },
        ),
        at(3),
    );
    assert_eq!(st.queued[0].text, "hello??");
    let (st2, _) = step(
        Some(&st),
        &twilio("discord.del.3", InputKind::Delete { message_id: 3 }),
        at(3),
    );
    assert!(st2.queued.is_empty());

    // The case opens: notice, hand-off, then the queued message, in that order.
    let (st, fx) = step(Some(&st), &opened("handoff.700.1", "CASE-000123"), at(4));
    assert_eq!(st.case_number, "CASE-000123");
    assert!(st.queued.is_empty());
    assert_eq!(fx.len(), 4);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "handoff.700.1.created");
    assert!(text.contains("Dossier **CASE-000123** créé"), "{text}");
    let (id, action) = flex_action(&fx[1]);
    assert_eq!(id, "handoff.700.1.start");
    let flex_outbound::Action::StartHandoff(h) = action else {
        panic!()
    };
    assert_eq!(h.case_number, "CASE-000123");
    assert_eq!(h.case_url, "https://cases.example/c?sig=x");
    assert_eq!(h.language, "fr");
    assert_eq!(h.summary, "my purchase is missing");
    let (id, action) = flex_action(&fx[2]);
    assert_eq!(id, "flex.msg.3");
    let flex_outbound::Action::CustomerMessage(m) = action else {
        panic!()
    };
    assert_eq!(m.text, "hello??");
    assert_eq!(
        fx[3],
        Effect::Index {
            key: "idx.case.CASE-000123".into(),
            conversation_id: CONV.into()
        }
    );
    // A stale or foreign opened event changes nothing.
    assert!(decide(
        Some(&st),
        CONV,
        &opened("handoff.700.0", "CASE-000009"),
        at(5),
        &settings()
    )
    .is_none());

    // After the case opened, messages go straight to Flex.
    let (_, fx) = step(Some(&st), &msg(4, "still there?", hits(2)), at(5));
    assert_eq!(fx.len(), 1);
    assert_eq!(flex_action(&fx[0]).0, "flex.msg.4");
}

#[test]
fn the_button_starts_the_handoff_and_repeats_are_answered() {
    let (st, fx) = step(None, &button(8, ButtonAction::Handoff), at(0));
    assert_eq!(mode_of(&st), ConversationMode::WaitingForAgent);
    assert_eq!(case_cmd(&fx[0]).1, "handoff.700.1");
    let (st2, fx) = step(Some(&st), &button(9, ButtonAction::Handoff), at(1));
    assert_eq!(st2.handoff_count, 1, "no second case");
    assert_eq!(fx.len(), 1);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "discord.ix.9.reply");
    assert!(text.contains("in line"), "{text}");
}

#[test]
fn handoff_started_links_the_case() {
    let (st, _) = step(None, &msg(1, "agent", human()), at(0));
    let (st, _) = step(Some(&st), &opened("handoff.700.1", "CASE-000001"), at(1));
    let (st, fx) = step(
        Some(&st),
        &twilio(
            "twilio.handoff.CH1",
            InputKind::HandoffStarted {
                sid: "CH1".into(),
                interaction_sid: "KD1".into(),
                case_number: "CASE-000001".into(),
            },
        ),
        at(2),
    );
    assert_eq!(st.flex_conversation_sid, "CH1");
    let (key, id, cmd) = case_cmd(&fx[0]);
    assert_eq!((key, id), ("CASE-000001", "twilio.handoff.CH1.link"));
    let Command::LinkConversation(l) = cmd else {
        panic!()
    };
    assert_eq!(
        (l.conversation_sid.as_str(), l.interaction_sid.as_str()),
        ("CH1", "KD1")
    );
    assert_eq!(
        fx[1],
        Effect::Index {
            key: "idx.sid.CH1".into(),
            conversation_id: CONV.into()
        }
    );
}

#[test]
fn agent_joins_talks_and_closes_then_csat() {
    let st = waiting_started();
    let (st, fx) = step(
        Some(&st),
        &twilio(
            "twilio.join.MB1",
            InputKind::AgentJoined {
                sid: "CH1".into(),
                identity: "ana@example.com".into(),
                name: "Ana".into(),
            },
        ),
        at(3),
    );
    assert_eq!(mode_of(&st), ConversationMode::AgentJoined);
    assert_eq!(st.agent_name, "Ana");
    assert_eq!(fx.len(), 3);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "twilio.join.MB1.joined");
    assert_eq!(text, "**Ana** from support joined the conversation.");
    let (key, id, cmd) = case_cmd(&fx[1]);
    assert_eq!((key, id), ("CASE-000001", "twilio.join.MB1.assign"));
    let Command::AssignAgent(a) = cmd else {
        panic!()
    };
    assert_eq!(
        (a.agent_identity.as_str(), a.agent_name.as_str()),
        ("ana@example.com", "Ana")
    );
    let Effect::SetTimer(t) = &fx[2] else {
        panic!()
    };
    assert_eq!(t.kind, RouterTimerKind::AgentIdle as i32);
    // The same agent joining again (a second webhook) announces nothing.
    let mut again = twilio(
        "twilio.join.MB1b",
        InputKind::AgentJoined {
            sid: "CH1".into(),
            identity: "ana@example.com".into(),
            name: "Ana".into(),
        },
    );
    assert!(decide(Some(&st), CONV, &again, at(4), &settings()).is_none());
    // Another conversation's agent is ignored.
    again.kind = InputKind::AgentJoined {
        sid: "CH9".into(),
        identity: "bob".into(),
        name: "Bob".into(),
    };
    assert!(decide(Some(&st), CONV, &again, at(4), &settings()).is_none());

    // Agent message -> DM, no mentions.
    let (st, fx) = step(
        Some(&st),
        &twilio(
            "twilio.msg.IM1",
            InputKind::AgentMessage {
                sid: "CH1".into(),
                author: "ana@example.com".into(),
                author_name: "Ana".into(),
                body: "Hi @everyone, let me check".into(),
                media: vec![TwilioMedia {
                    media_sid: "ME1".into(),
                    filename: "receipt.png".into(),
                    content_type: "image/png".into(),
                    size_bytes: 10,
                    object_name: "twilio/ME1/receipt.png".into(),
                }],
            },
        ),
        at(5),
    );
    assert_eq!(fx.len(), 1);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "twilio.msg.IM1.dm");
    assert_eq!(text, "**Ana:** Hi @everyone, let me check");
    let Effect::Discord(d) = &fx[0] else { panic!() };
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert_eq!(m.files[0].object_name, "twilio/ME1/receipt.png");
    assert_eq!(st.last_activity, Some(to_proto(at(5))));

    // User message -> Flex.
    let (st, fx) = step(Some(&st), &msg(7, "thanks", KbLookup::default()), at(6));
    let (id, action) = flex_action(&fx[0]);
    assert_eq!(id, "flex.msg.7");
    assert!(matches!(action, flex_outbound::Action::CustomerMessage(m) if m.text == "thanks"));

    // Closed by the agent.
    let (st, fx) = step(Some(&st), &flex_closed(), at(7));
    assert_eq!(mode_of(&st), ConversationMode::Closed);
    assert_eq!(st.csat_case_number, "CASE-000001");
    assert!(st.timer.is_none());
    assert_eq!(fx.len(), 4);
    let (id, text) = dm_text(&fx[0]);
    assert_eq!(id, "twilio.state.CH1.closed.closed");
    assert!(text.starts_with("Ana closed the conversation"), "{text}");
    let (key, id, cmd) = case_cmd(&fx[1]);
    assert_eq!(
        (key, id),
        ("CASE-000001", "twilio.state.CH1.closed.resolve")
    );
    assert!(matches!(cmd, Command::UpdateStatus(u) if u.status == CaseStatus::Resolved as i32));
    let (id, _) = dm_text(&fx[2]);
    assert_eq!(id, "twilio.state.CH1.closed.csat");
    let Effect::Discord(d) = &fx[2] else { panic!() };
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    let ids: Vec<_> = m.components[0]
        .buttons
        .iter()
        .map(|b| b.custom_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "csat.CASE-000001.1",
            "csat.CASE-000001.2",
            "csat.CASE-000001.3",
            "csat.CASE-000001.4",
            "csat.CASE-000001.5"
        ]
    );
    assert!(matches!(fx[3], Effect::ClearTimer { seq, .. } if seq == 2));
    // A second close event changes nothing.
    assert!(decide(
        Some(&st),
        CONV,
        &twilio(
            "twilio.state.CH1.closed2",
            InputKind::FlexClosed { sid: "CH1".into() }
        ),
        at(8),
        &settings()
    )
    .is_none());

    // Rating: recorded, prompt edited, comment invited.
    let (st, fx) = step(
        Some(&st),
        &button(
            20,
            ButtonAction::CsatRating {
                case: "CASE-000001".into(),
                rating: 4,
            },
        ),
        at(9),
    );
    assert_eq!(fx.len(), 3);
    let (key, id, cmd) = case_cmd(&fx[0]);
    assert_eq!((key, id), ("CASE-000001", "discord.ix.20.csat"));
    assert!(matches!(cmd, Command::RecordCsat(r) if r.rating == 4 && r.comment.is_empty()));
    let Effect::Discord(edit) = &fx[1] else {
        panic!()
    };
    let Some(DAction::Edit(e)) = &edit.action else {
        panic!()
    };
    assert_eq!(e.original_event_id, "twilio.state.CH1.closed.csat");
    assert!(e.message.as_ref().unwrap().components[0]
        .buttons
        .iter()
        .all(|b| b.disabled));
    let (_, text) = dm_text(&fx[2]);
    assert!(text.contains("4/5"));
    assert!(st.csat_awaiting_comment);

    // The next DM is the comment.
    let (st, fx) = step(Some(&st), &msg(30, "Ana was great", hits(1)), at(10));
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert!(!st.csat_awaiting_comment);
    let (key, id, cmd) = case_cmd(&fx[0]);
    assert_eq!((key, id), ("CASE-000001", "discord.msg.30.csat"));
    assert!(matches!(cmd, Command::RecordCsat(r) if r.rating == 4 && r.comment == "Ana was great"));
    assert!(dm_text(&fx[1]).1.starts_with("Thanks, your comment"));

    // And after that, bot mode answers again.
    let (_, fx) = step(Some(&st), &msg(31, "password", hits(1)), at(11));
    assert_eq!(dm_text(&fx[0]).0, "discord.msg.31.reply");
}

#[test]
fn after_a_rating_a_question_for_a_person_or_a_late_message_is_not_a_comment() {
    let (st, _) = step(Some(&joined()), &flex_closed(), at(7));
    let rate = button(
        20,
        ButtonAction::CsatRating {
            case: "CASE-000001".into(),
            rating: 2,
        },
    );
    let (rated, _) = step(Some(&st), &rate, at(8));
    let (st2, fx) = step(Some(&rated), &msg(40, "agent please", human()), at(9));
    assert_eq!(mode_of(&st2), ConversationMode::WaitingForAgent);
    assert_eq!(case_cmd(&fx[0]).1, "handoff.700.2");
    let (_, fx) = step(Some(&rated), &msg(41, "password", hits(1)), at(8 + 601));
    assert_eq!(dm_text(&fx[0]).0, "discord.msg.41.reply");
    // Skip button.
    let (st3, fx) = step(
        Some(&rated),
        &button(
            21,
            ButtonAction::CsatSkip {
                case: "CASE-000001".into(),
            },
        ),
        at(9),
    );
    assert_eq!(mode_of(&st3), ConversationMode::Bot);
    assert!(dm_text(&fx[0]).1.starts_with("No problem"));
    // Without a rating, a DM after the close is a normal bot turn.
    let (st4, fx) = step(Some(&st), &msg(42, "hello", KbLookup::default()), at(9));
    assert_eq!(mode_of(&st4), ConversationMode::Bot);
    assert_eq!(dm_text(&fx[0]).0, "discord.msg.42.reply");
}

#[test]
fn a_message_for_a_closed_flex_side_starts_a_bot_turn() {
    let st = joined();
    let mut input = msg(50, "forgot my password", hits(2));
    if let InputKind::Message { flex_closed, .. } = &mut input.kind {
        *flex_closed = true;
    }
    let (st, fx) = step(Some(&st), &input, at(10));
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert!(st.timer.is_none());
    // Case resolved, timer cleared, "the agent conversation ended", then the answer.
    let (_, id, cmd) = case_cmd(&fx[0]);
    assert_eq!(id, "discord.msg.50.resolve");
    assert!(matches!(cmd, Command::UpdateStatus(_)));
    assert!(matches!(fx[1], Effect::ClearTimer { .. }));
    assert_eq!(dm_text(&fx[2]).0, "discord.msg.50.ended");
    let Effect::Discord(d) = &fx[3] else { panic!() };
    assert_eq!(d.event_id, "discord.msg.50.reply");
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert_eq!(m.embeds.len(), 2);
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Flex(_))),
        "nothing goes to the dead Flex conversation"
    );
}

#[test]
fn flex_delivery_failures() {
    // Closed conversation: the user is told, bot mode resumes.
    let (st, fx) = step(
        Some(&joined()),
        &twilio(
            "twilio.fail.flex.msg.7",
            InputKind::FlexFailed {
                sid: "CH1".into(),
                outbound_event_id: "flex.msg.7".into(),
                code: TWILIO_CONVERSATION_CLOSED,
                http_status: 400,
                reason: "closed".into(),
            },
        ),
        at(10),
    );
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    let kinds: Vec<_> = fx.iter().map(|e| e.id()).collect();
    assert_eq!(
        kinds,
        [
            "twilio.fail.flex.msg.7.resolve",
            format!("timer.clear.{}", joined().timer.unwrap().seq).as_str(),
            "twilio.fail.flex.msg.7.reply"
        ]
    );
    // Another failure of one message: the user is told, the conversation stays.
    let (st, fx) = step(
        Some(&joined()),
        &twilio(
            "twilio.fail.flex.msg.8",
            InputKind::FlexFailed {
                sid: "CH1".into(),
                outbound_event_id: "flex.msg.8".into(),
                code: 21610,
                http_status: 400,
                reason: "bad".into(),
            },
        ),
        at(10),
    );
    assert_eq!(mode_of(&st), ConversationMode::AgentJoined);
    assert!(dm_text(&fx[0]).1.contains("couldn't be delivered"));
    // The hand-off itself failed.
    let (st, fx) = step(
        Some(&waiting_started()),
        &twilio(
            "twilio.fail.handoff.700.1.start",
            InputKind::FlexFailed {
                sid: String::new(),
                outbound_event_id: "handoff.700.1.start".into(),
                code: 0,
                http_status: 500,
                reason: "interaction failed".into(),
            },
        ),
        at(10),
    );
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert!(dm_text(&fx[0]).1.contains("CASE-000001"));
    let (_, _, cmd) = case_cmd(&fx[1]);
    assert!(matches!(cmd, Command::AddNote(n) if n.text.contains("interaction failed")));
}

#[test]
fn unreachable_user_is_reported_once_to_the_agent_and_the_case() {
    let fail = |id: &str| {
        twilio(
            id,
            InputKind::DiscordFailed {
                outbound_event_id: "twilio.msg.IM1.dm".into(),
                code: DISCORD_DMS_CLOSED,
                reason: "Cannot send messages to this user".into(),
            },
        )
    };
    let (st, fx) = step(
        Some(&joined()),
        &fail("discord.fail.twilio.msg.IM1.dm"),
        at(10),
    );
    assert!(st.unreachable_reported);
    assert_eq!(fx.len(), 2);
    let (id, action) = flex_action(&fx[0]);
    assert_eq!(id, "discord.fail.twilio.msg.IM1.dm.notice");
    assert!(
        matches!(action, flex_outbound::Action::SystemNotice(n) if n.text.contains("DMs are closed"))
    );
    let (key, _, cmd) = case_cmd(&fx[1]);
    assert_eq!(key, "CASE-000001");
    assert!(matches!(cmd, Command::AddNote(n) if n.text.contains("50007")));
    assert!(decide(
        Some(&st),
        CONV,
        &fail("discord.fail.2"),
        at(11),
        &settings()
    )
    .is_none());
    // In bot mode, nothing to report to.
    assert!(decide(None, CONV, &fail("discord.fail.3"), at(11), &settings()).is_none());
}

#[test]
fn waiting_too_long_apologises_once_and_keeps_the_case_open() {
    let st = waiting_started();
    let seq = st.timer.as_ref().unwrap().seq;
    let fire = |seq| Input {
        event_id: format!("timer.700.{seq}"),
        kind: InputKind::TimerFired {
            seq,
            kind: RouterTimerKind::AgentWait,
        },
    };
    let (st2, fx) = step(Some(&st), &fire(seq), at(61));
    assert_eq!(mode_of(&st2), ConversationMode::WaitingForAgent);
    assert!(st2.wait_apology_sent && st2.timer.is_none());
    assert_eq!(fx.len(), 3);
    assert!(matches!(fx[0], Effect::ClearTimer { seq: s, .. } if s == seq));
    let (id, text) = dm_text(&fx[1]);
    assert_eq!(id, format!("timer.700.{seq}.apology"));
    assert!(text.contains("CASE-000001"), "{text}");
    let (_, _, cmd) = case_cmd(&fx[2]);
    assert!(matches!(cmd, Command::AddNote(_)));
    assert!(!fx.iter().any(|e| matches!(e, Effect::Case { command, .. } if matches!(command.command, Some(Command::UpdateStatus(_))))));
    // A stale firing (older seq) re-syncs the index instead of acting.
    let (_, fx) = step(Some(&st), &fire(seq - 1), at(61));
    assert_eq!(fx, vec![Effect::SetTimer(st.timer.clone().unwrap())]);
    // Firing when there is no timer any more removes the entry.
    let (_, fx) = step(Some(&st2), &fire(seq + 5), at(62));
    assert_eq!(
        fx,
        vec![Effect::ClearTimer {
            conversation_id: CONV.into(),
            seq: seq + 5
        }]
    );
    // The configured apology is used.
    let mut s = settings();
    s.wait_apology_en = Some("Hang on, {case} is open.".into());
    let d = decide(Some(&st), CONV, &fire(seq), at(61), &s).unwrap();
    assert_eq!(dm_text(&d.effects[1]).1, "Hang on, CASE-000001 is open.");
}

/// Bob, the next agent after a transfer, joins.
fn bob_joins() -> Input {
    twilio(
        "twilio.join.MB2",
        InputKind::AgentJoined {
            sid: "CH1".into(),
            identity: "bob@example.com".into(),
            name: "Bob".into(),
        },
    )
}

fn flex_closed() -> Input {
    twilio(
        "twilio.state.CH1.closed",
        InputKind::FlexClosed { sid: "CH1".into() },
    )
}

fn left(id: &str, identity: &str) -> Input {
    twilio(
        id,
        InputKind::AgentLeft {
            sid: "CH1".into(),
            identity: identity.into(),
        },
    )
}

fn fired(seq: u64, kind: RouterTimerKind) -> Input {
    Input {
        event_id: format!("timer.700.{seq}"),
        kind: InputKind::TimerFired { seq, kind },
    }
}

#[test]
fn agent_leaving_without_closing_is_announced_after_the_delay() {
    let (st, fx) = step(
        Some(&joined()),
        &left("twilio.left.MB1", "ana@example.com"),
        at(10),
    );
    assert_eq!(mode_of(&st), ConversationMode::WaitingForAgent);
    assert!(st.agent_identity.is_empty());
    assert_eq!(fx.len(), 1, "nothing said yet: {fx:?}");
    let Effect::SetTimer(t) = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(t.kind, RouterTimerKind::AgentLeft as i32);
    assert_eq!(t.deadline, Some(to_proto(at(25))));
    // Meanwhile the user's messages still go to the Flex conversation (the next agent sees them).
    let (st, fx) = step(Some(&st), &msg(20, "hello?", KbLookup::default()), at(12));
    assert!(matches!(
        flex_action(&fx[0]).1,
        flex_outbound::Action::CustomerMessage(_)
    ));
    let (st, fx) = step(Some(&st), &fired(t.seq, RouterTimerKind::AgentLeft), at(25));
    assert!(matches!(fx[0], Effect::ClearTimer { seq, .. } if seq == t.seq));
    let (id, text) = dm_text(&fx[1]);
    assert_eq!(id, format!("timer.700.{}.left", t.seq));
    assert_eq!(
        text,
        "**Ana** left the conversation. Your case **CASE-000001** stays open: another agent will \
         continue with you here."
    );
    // Waiting again: the apology timer runs anew, and the next agent is announced.
    let Effect::SetTimer(wait) = fx.last().unwrap() else {
        panic!("{fx:?}")
    };
    assert_eq!(wait.kind, RouterTimerKind::AgentWait as i32);
    assert!(!st.wait_apology_sent);
    let (st, fx) = step(Some(&st), &bob_joins(), at(30));
    assert_eq!(mode_of(&st), ConversationMode::AgentJoined);
    assert_eq!(
        dm_text(&fx[0]).1,
        "**Bob** from support joined the conversation."
    );
}

#[test]
fn agent_leaving_then_closing_or_handing_over_says_nothing_about_leaving() {
    let (st, fx) = step(
        Some(&joined()),
        &left("twilio.left.MB1", "ana@example.com"),
        at(10),
    );
    let Effect::SetTimer(t) = &fx[0] else {
        panic!("{fx:?}")
    };
    // Flex removes the agent, then closes: the close is announced (by the agent's name) and the
    // left-timer cleared.
    let (closed, fx) = step(Some(&st), &flex_closed(), at(11));
    assert_eq!(mode_of(&closed), ConversationMode::Closed);
    assert!(dm_text(&fx[0])
        .1
        .starts_with("Ana closed the conversation."));
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::ClearTimer { seq, .. } if *seq == t.seq)));
    assert!(decide(
        Some(&closed),
        CONV,
        &fired(t.seq, RouterTimerKind::AgentLeft),
        at(25),
        &settings()
    )
    .is_none_or(|d| !d.effects.iter().any(|e| e.id().ends_with(".left"))));
    // A transfer: the next agent joins before the delay; the timer becomes the idle one.
    let (taken, fx) = step(Some(&st), &bob_joins(), at(12));
    assert!(dm_text(&fx[0]).1.starts_with("**Bob**"));
    let (_, fx) = step(
        Some(&taken),
        &fired(t.seq, RouterTimerKind::AgentLeft),
        at(25),
    );
    assert!(
        !fx.iter().any(|e| e.id().ends_with(".left")),
        "a stale left-timer says nothing: {fx:?}"
    );
}

#[test]
fn someone_else_leaving_is_ignored() {
    let st = joined();
    // A supervisor, the agent of an earlier transfer, or an unknown identity.
    for who in ["sup@example.com", ""] {
        assert!(
            decide(
                Some(&st),
                CONV,
                &left("twilio.left.MB9", who),
                at(10),
                &settings()
            )
            .is_none(),
            "{who:?}"
        );
    }
    // Another Flex conversation's agent.
    let other = twilio(
        "twilio.left.MB8",
        InputKind::AgentLeft {
            sid: "CH9".into(),
            identity: "ana@example.com".into(),
        },
    );
    assert!(decide(Some(&st), CONV, &other, at(10), &settings()).is_none());
}

#[test]
fn idle_agent_conversation_is_rescheduled_then_closed() {
    let st = joined();
    let seq = st.timer.as_ref().unwrap().seq;
    // Activity at t=100 pushes the deadline to t=220.
    let (st, _) = step(Some(&st), &msg(9, "hello", KbLookup::default()), at(100));
    let fire = |seq| Input {
        event_id: format!("timer.700.{seq}"),
        kind: InputKind::TimerFired {
            seq,
            kind: RouterTimerKind::AgentIdle,
        },
    };
    let (st, fx) = step(Some(&st), &fire(seq), at(123));
    assert_eq!(mode_of(&st), ConversationMode::AgentJoined);
    let Effect::SetTimer(t) = &fx[0] else {
        panic!("{fx:?}")
    };
    assert_eq!(t.deadline, Some(to_proto(at(220))));
    let (st, fx) = step(Some(&st), &fire(t.seq), at(221));
    assert_eq!(mode_of(&st), ConversationMode::Closed);
    let (id, action) = flex_action(&fx[0]);
    assert_eq!(id, format!("timer.700.{}.close", t.seq));
    assert!(matches!(action, flex_outbound::Action::Close(c) if c.reason == "idle"));
    let (_, text) = dm_text(&fx[1]);
    assert!(text.contains("2 minutes without messages"), "{text}");
    assert!(fx.iter().any(|e| e.id().ends_with(".csat")));
    // The Flex close that follows is ignored.
    assert!(decide(Some(&st), CONV, &flex_closed(), at(222), &settings()).is_none());
}

#[test]
fn open_refused_returns_to_bot_mode() {
    let (st, _) = step(None, &msg(1, "human", human()), at(0));
    let (st, fx) = step(
        Some(&st),
        &twilio(
            "case-evt-r",
            InputKind::CaseRejected {
                command_id: "handoff.700.1".into(),
                reason: "db".into(),
            },
        ),
        at(1),
    );
    assert_eq!(mode_of(&st), ConversationMode::Bot);
    assert!(dm_text(&fx[0])
        .1
        .starts_with("Sorry, I couldn't open a case"));
    assert!(matches!(fx[1], Effect::ClearTimer { .. }));
}

#[test]
fn the_outbox_accumulates_and_duplicates_are_recognised() {
    let s = settings();
    let st = decide_into_outbox(None, CONV, &msg(1, "human", human()), at(0), &s).unwrap();
    assert_eq!(st.outbox.len(), 2);
    assert_eq!(st.outbox[0].id, "handoff.700.1");
    let st2 = decide_into_outbox(
        Some(&st),
        CONV,
        &msg(2, "hi", KbLookup::default()),
        at(1),
        &s,
    )
    .unwrap();
    assert_eq!(st2.outbox.len(), 2, "queued message: no new effect");
    assert!(decide_into_outbox(
        Some(&st2),
        CONV,
        &msg(2, "hi", KbLookup::default()),
        at(1),
        &s
    )
    .is_none());
    assert!(decide_into_outbox(Some(&st2), CONV, &msg(1, "human", human()), at(1), &s).is_none());
}

#[test]
fn recent_ids_are_bounded() {
    let mut st: Option<ConversationState> = None;
    for i in 0..(RECENT_IDS as u64 + 10) {
        let (next, _) = step(st.as_ref(), &msg(i, "x", KbLookup::default()), at(i as i64));
        st = Some(next);
    }
    let st = st.unwrap();
    assert_eq!(st.recent_event_hashes.len(), RECENT_IDS);
    assert!(st.recent_event_ids.is_empty());
    assert_eq!(
        *st.recent_event_hashes.last().unwrap(),
        event_fingerprint(&format!("discord.msg.{}", RECENT_IDS as u64 + 9))
    );
    // The oldest were forgotten; the last RECENT_IDS are still recognised.
    assert!(!already_handled(&st, "discord.msg.9"));
    assert!(already_handled(&st, "discord.msg.10"));
    assert!(decide(
        Some(&st),
        CONV,
        &msg(10, "x", KbLookup::default()),
        at(99),
        &settings()
    )
    .is_none());
}

#[test]
fn fingerprints_are_stable_and_ids_stored_by_older_versions_still_count() {
    // FNV-1a 64 reference values: a change here would make every stored state forget its inputs.
    assert_eq!(event_fingerprint(""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(event_fingerprint("a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(event_fingerprint("foobar"), 0x8594_4171_f739_67e8);
    // A state written before fingerprints: its ids are recognised, then converted (oldest first).
    let (mut st, _) = step(None, &msg(1, "x", KbLookup::default()), at(0));
    st.recent_event_hashes.clear();
    st.recent_event_ids = vec!["discord.msg.1".into(), "discord.msg.2".into()];
    assert!(decide(
        Some(&st),
        CONV,
        &msg(2, "x", KbLookup::default()),
        at(1),
        &settings()
    )
    .is_none());
    let (st, _) = step(Some(&st), &msg(3, "x", KbLookup::default()), at(2));
    assert!(st.recent_event_ids.is_empty());
    assert_eq!(
        st.recent_event_hashes,
        ["discord.msg.1", "discord.msg.2", "discord.msg.3"].map(event_fingerprint)
    );
}

#[test]
fn long_agent_messages_are_split() {
    let body = "word ".repeat(900);
    let (_, fx) = step(
        Some(&joined()),
        &twilio(
            "twilio.msg.IM2",
            InputKind::AgentMessage {
                sid: "CH1".into(),
                author: "ana@example.com".into(),
                author_name: "Ana".into(),
                body,
                media: vec![],
            },
        ),
        at(10),
    );
    assert_eq!(fx.len(), 3);
    assert_eq!(fx[1].id(), "twilio.msg.IM2.dm.2");
    for e in &fx {
        assert!(dm_text(e).1.chars().count() <= 2000);
    }
    assert_eq!(split_content("a\nb", 10), vec!["a\nb"]);
}

#[test]
fn a_studio_bot_request_is_answered_in_the_dm_without_a_handoff() {
    // The conversation exists (the user talked to the bot before), then a Studio flow asks the bot.
    let (st, _) = step(None, &msg(5, "hello", KbLookup::default()), at(0));
    let mode_before = mode_of(&st);
    let (st, fx) = step(
        Some(&st),
        &twilio(
            "twilio.studio.IM7",
            InputKind::StudioBotRequest {
                sid: "CH1".into(),
                body: "I forgot my password".into(),
                kb: hits(2),
            },
        ),
        at(1),
    );
    assert_eq!(fx.len(), 1);
    let Effect::Discord(d) = &fx[0] else { panic!() };
    assert_eq!(d.event_id, "twilio.studio.IM7.studio-reply");
    let Some(DAction::Send(m)) = &d.action else {
        panic!()
    };
    assert_eq!(m.embeds.len(), 2);
    assert!(m.components.is_empty(), "the Studio flow decides hand-offs");
    assert!(!m.content.contains("agent"), "{}", m.content);
    assert_eq!(mode_of(&st), mode_before);

    // Words asking for a person do not start our own hand-off either.
    let (st2, fx) = step(
        Some(&st),
        &twilio(
            "twilio.studio.IM8",
            InputKind::StudioBotRequest {
                sid: "CH1".into(),
                body: "agent please".into(),
                kb: human(),
            },
        ),
        at(2),
    );
    assert_eq!(fx.len(), 1);
    assert!(fx.iter().all(|e| matches!(e, Effect::Discord(_))));
    assert_eq!(mode_of(&st2), mode_before);
}
