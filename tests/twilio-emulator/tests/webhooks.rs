//! Webhook dispatch: echo rule, agent actions, signatures, hold/fail, ReplayAfter, control API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Receiver;
use flexcord_twilio_api::webhook_event::WebhookEvent;
use flexcord_twilio_api::{
    signature, CreateConversation, CreateConversationWebhook, CreateInteraction, CreateMessage,
    CreateParticipant, TwilioClient,
};
use serde_json::{json, Value};
use twilio_emulator::{
    AgentMediaInput, AgentMessageInput, EmulatorConfig, TwilioEmulator, WebhookMode,
};

const ALL_FILTERS: [&str; 6] = [
    "onMessageAdded",
    "onMessageUpdated",
    "onParticipantAdded",
    "onParticipantRemoved",
    "onConversationStateUpdated",
    "onConversationUpdated",
];

struct Fixture {
    emu: TwilioEmulator,
    client: TwilioClient,
    rx: Receiver,
    hook_url: String,
    conv: String,
}

/// The interaction flexcord's hand-off creates for the fixture's conversation.
fn customer_chat(conv: &str) -> CreateInteraction {
    CreateInteraction::customer_chat(
        conv,
        "WS0123456789abcdef0123456789abcdef",
        "WW0123456789abcdef0123456789abcdef",
        "chat",
        json!({"from": "discord_5"}),
    )
}

async fn fixture(cfg: EmulatorConfig) -> Fixture {
    let emu = TwilioEmulator::start(cfg).await.unwrap();
    let client = TwilioClient::new(emu.client_config()).unwrap();
    let rx = Receiver::start().await;
    let hook_url = rx.url("/twilio/webhook?tenant=acme&x=a%20b");
    let conv = client
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap()
        .sid;
    client
        .create_participant(
            &conv,
            &CreateParticipant {
                identity: "discord_5".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client
        .create_conversation_webhook(
            &conv,
            &CreateConversationWebhook {
                url: hook_url.clone(),
                method: None,
                filters: ALL_FILTERS.iter().map(|s| s.to_string()).collect(),
                replay_after: None,
            },
        )
        .await
        .unwrap();
    Fixture {
        emu,
        client,
        rx,
        hook_url,
        conv,
    }
}

fn customer_msg(body: &str, webhook_enabled: Option<bool>) -> CreateMessage {
    CreateMessage {
        author: Some("discord_5".into()),
        body: Some(body.into()),
        webhook_enabled,
        ..Default::default()
    }
}

#[tokio::test]
async fn echo_rule_agent_flow_and_signatures() {
    let f = fixture(EmulatorConfig::default()).await;
    let token = f.emu.auth_token().to_owned();

    // REST without the header: no webhook. With header=false: none either.
    f.client
        .create_message(&f.conv, &customer_msg("silent", None))
        .await
        .unwrap();
    f.client
        .create_message(&f.conv, &customer_msg("silent2", Some(false)))
        .await
        .unwrap();
    // With the header: an API-sourced echo.
    f.client
        .create_message(&f.conv, &customer_msg("echo", Some(true)))
        .await
        .unwrap();
    let got = f.rx.wait_for(1).await;
    assert_eq!(
        got.len(),
        1,
        "only the header-enabled message fires: {got:#?}"
    );
    let ev = WebhookEvent::from_form_body(&got[0].body).unwrap();
    let WebhookEvent::MessageAdded(m) = &ev else {
        panic!("{ev:?}")
    };
    assert_eq!(m.body.as_deref(), Some("echo"));
    assert_eq!(m.index, 2);
    assert_eq!(m.common.source.as_deref(), Some("API"));
    assert_eq!(m.common.client_identity, None);
    assert_eq!(m.common.retry_count, Some(0));
    assert!(m.common.webhook_sid.as_deref().unwrap().starts_with("WH"));

    // Interaction -> task -> agent accepts.
    let i = f
        .client
        .create_interaction(&customer_chat(&f.conv))
        .await
        .unwrap();
    let task = f.emu.pending_tasks().pop().unwrap();
    assert_eq!(task.task_sid, i.task_sid().unwrap());
    let agent = f
        .emu
        .accept_task(&task.task_sid, "agent_ana", "Ana")
        .unwrap();
    assert_eq!(agent.attributes_json().unwrap()["friendlyName"], "Ana");
    assert!(f.emu.pending_tasks().is_empty());

    // Agent replies (with an attachment too).
    let sent = f
        .emu
        .agent_send(&f.conv, "agent_ana", "Hi, I'm Ana")
        .unwrap();
    assert_eq!(sent.author.as_deref(), Some("agent_ana"));
    f.emu
        .agent_send_with(
            &f.conv,
            "agent_ana",
            &AgentMessageInput {
                body: None,
                attributes: Some(json!({"k": 1})),
                media: Some(AgentMediaInput {
                    content_type: "application/pdf".into(),
                    filename: Some("guide.pdf".into()),
                    bytes: b"%PDF-1.4 fake".to_vec(),
                }),
            },
        )
        .unwrap();
    // An agent who is not a participant cannot post.
    assert_eq!(
        f.emu
            .agent_send(&f.conv, "agent_bob", "x")
            .unwrap_err()
            .status,
        403
    );

    // Agent ends the chat.
    f.emu.agent_close(&f.conv, Some("agent_ana")).unwrap();

    let got = f.rx.wait_for(7).await;
    let events: Vec<WebhookEvent> = got
        .iter()
        .map(|r| WebhookEvent::from_form_body(&r.body).unwrap())
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types,
        vec![
            "onMessageAdded",
            "onParticipantAdded",
            "onMessageAdded",
            "onMessageAdded",
            "onParticipantRemoved",
            "onConversationStateUpdated",
            "onConversationUpdated",
        ]
    );
    let WebhookEvent::ParticipantAdded(p) = &events[1] else {
        panic!()
    };
    assert_eq!(p.identity.as_deref(), Some("agent_ana"));
    assert_eq!(p.participant_sid, agent.sid);
    let WebhookEvent::MessageAdded(m) = &events[2] else {
        panic!()
    };
    assert_eq!(m.common.source.as_deref(), Some("SDK"));
    assert_eq!(m.common.client_identity.as_deref(), Some("agent_ana"));
    assert_eq!(m.author.as_deref(), Some("agent_ana"));
    assert_eq!(m.participant_sid.as_deref(), Some(agent.sid.as_str()));
    assert_eq!(m.body.as_deref(), Some("Hi, I'm Ana"));
    let WebhookEvent::MessageAdded(m) = &events[3] else {
        panic!()
    };
    let media = m.media_items().unwrap();
    assert_eq!(media[0].filename.as_deref(), Some("guide.pdf"));
    assert_eq!(media[0].content_type.as_deref(), Some("application/pdf"));
    let WebhookEvent::ConversationStateUpdated(s) = &events[5] else {
        panic!()
    };
    assert_eq!(
        (s.state_from.as_str(), s.state_to.as_str()),
        ("active", "closed")
    );
    assert_eq!(s.reason.as_deref(), Some("API"));

    // Every delivery is signed over the configured URL and validates; tampering fails.
    for r in &got {
        assert_eq!(r.method, "POST");
        assert!(r
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"));
        assert_eq!(f.hook_url, format!("{}{}", f.rx.base, r.path_and_query));
        let sig = r.signature.as_deref().expect("X-Twilio-Signature");
        let params = r.params();
        assert!(
            signature::validate(&token, &f.hook_url, &params, sig),
            "bad signature on {r:?}"
        );
        let mut tampered = params.clone();
        if let Some(v) = tampered.iter_mut().find(|(k, _)| k == "ConversationSid") {
            v.1.push('x');
        }
        assert!(!signature::validate(&token, &f.hook_url, &tampered, sig));
        assert!(!signature::validate(
            "other-token",
            &f.hook_url,
            &params,
            sig
        ));
    }

    // The agent's view.
    let view = f.emu.conversation(&f.conv).unwrap();
    assert_eq!(view.state, "closed");
    let pdf = &view.messages.last().unwrap().media[0];
    assert_eq!(pdf.bytes(), b"%PDF-1.4 fake");
    assert_eq!(f.emu.tasks()[0].assignment_status, "completed");
}

#[tokio::test]
async fn transfer_removes_the_agent_and_requeues_the_task() {
    let f = fixture(EmulatorConfig::default()).await;
    f.client
        .create_interaction(&customer_chat(&f.conv))
        .await
        .unwrap();
    let task = f.emu.pending_tasks().pop().unwrap();
    f.emu
        .accept_task(&task.task_sid, "agent_ana", "Ana")
        .unwrap();
    let conv = f.emu.agent_transfer(&f.conv, "agent_ana").unwrap();
    assert_eq!(
        conv.state,
        flexcord_twilio_api::ConversationState::Active,
        "the conversation stays open"
    );
    // The same task is waiting again; another agent takes it.
    let again = f.emu.pending_tasks();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task_sid, task.task_sid);
    f.emu
        .accept_task(&task.task_sid, "agent_bob", "Bob")
        .unwrap();
    // Ana may no longer post; Bob may.
    assert_eq!(
        f.emu
            .agent_send(&f.conv, "agent_ana", "x")
            .unwrap_err()
            .status,
        403
    );
    f.emu
        .agent_send(&f.conv, "agent_bob", "Hi, Bob here")
        .unwrap();
    // Someone who is not in the conversation cannot be transferred away.
    assert_eq!(
        f.emu
            .agent_transfer(&f.conv, "agent_carl")
            .unwrap_err()
            .status,
        404
    );
    let got = f.rx.wait_for(4).await;
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            WebhookEvent::from_form_body(&r.body)
                .unwrap()
                .event_type()
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        [
            "onParticipantAdded",
            "onParticipantRemoved",
            "onParticipantAdded",
            "onMessageAdded"
        ]
    );
    let WebhookEvent::ParticipantRemoved(p) = WebhookEvent::from_form_body(&got[1].body).unwrap()
    else {
        panic!()
    };
    assert_eq!(p.identity.as_deref(), Some("agent_ana"));
}

#[tokio::test]
async fn target_down_drops_after_retries_and_hold_queues() {
    let f = fixture(EmulatorConfig {
        webhook_retries: 2,
        webhook_retry_delay: Duration::from_millis(10),
        ..Default::default()
    })
    .await;

    // Target down: every attempt fails; the event is given up (missed webhook).
    f.emu.set_webhook_mode(WebhookMode::Fail);
    f.client
        .create_message(&f.conv, &customer_msg("lost", Some(true)))
        .await
        .unwrap();
    let log = f
        .emu
        .wait_for_deliveries(Duration::from_secs(10), |l| !l.is_empty())
        .await
        .unwrap();
    assert!(!log[0].delivered);
    assert_eq!(log[0].attempts, 3);
    assert!(f.rx.received().is_empty());

    // Target answers 500: retried with RetryCount 0,1,2.
    f.emu.set_webhook_mode(WebhookMode::Deliver);
    f.rx.set_status(500);
    f.client
        .create_message(&f.conv, &customer_msg("retried", Some(true)))
        .await
        .unwrap();
    let got = f.rx.wait_for(3).await;
    let counts: Vec<String> = got.iter().map(|r| r.param("RetryCount").unwrap()).collect();
    assert_eq!(counts, vec!["0", "1", "2"]);
    let log = f
        .emu
        .wait_for_deliveries(Duration::from_secs(10), |l| l.len() >= 2)
        .await
        .unwrap();
    assert_eq!(log[1].status, Some(500));
    assert!(!log[1].delivered);

    // Hold: nothing arrives until released, then everything arrives in order.
    f.rx.set_status(200);
    f.emu.set_webhook_mode(WebhookMode::Hold);
    for b in ["h1", "h2", "h3"] {
        f.client
            .create_message(&f.conv, &customer_msg(b, Some(true)))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(f.rx.received().len(), 3, "held deliveries must not arrive");
    f.emu.set_webhook_mode(WebhookMode::Deliver);
    let got = f.rx.wait_for(6).await;
    let bodies: Vec<String> = got[3..].iter().map(|r| r.param("Body").unwrap()).collect();
    assert_eq!(bodies, vec!["h1", "h2", "h3"]);
}

#[tokio::test]
async fn replay_after_and_get_webhooks() {
    let emu = TwilioEmulator::start(EmulatorConfig::default())
        .await
        .unwrap();
    let c = TwilioClient::new(emu.client_config()).unwrap();
    let rx = Receiver::start().await;
    let conv = c
        .create_conversation(&CreateConversation::default())
        .await
        .unwrap()
        .sid;
    for i in 0..4 {
        c.create_message(
            &conv,
            &CreateMessage {
                body: Some(format!("m{i}")),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    let url = rx.url("/replay");
    c.create_conversation_webhook(
        &conv,
        &CreateConversationWebhook {
            url: url.clone(),
            method: Some("GET".into()),
            filters: vec!["onMessageAdded".into()],
            replay_after: Some(2),
        },
    )
    .await
    .unwrap();
    let got = rx.wait_for(2).await;
    // GET webhooks carry the params in the query and sign the full URL.
    for r in &got {
        assert_eq!(r.method, "GET");
        let full = format!("{}{}", rx.base, r.path_and_query);
        assert!(signature::validate(
            emu.auth_token(),
            &full,
            &[],
            r.signature.as_deref().unwrap()
        ));
    }
    let idx: Vec<String> = got
        .iter()
        .map(|r| {
            let q = r.path_and_query.split_once('?').unwrap().1;
            flexcord_twilio_api::form::first(
                &flexcord_twilio_api::form::parse(q.as_bytes()),
                "Index",
            )
            .unwrap()
            .to_owned()
        })
        .collect();
    assert_eq!(idx, vec!["2", "3"]);
}

#[tokio::test]
async fn control_api_over_http() {
    let f = fixture(EmulatorConfig::default()).await;
    let http = reqwest::Client::new();
    let ctl = f.emu.control_url();
    f.client
        .create_interaction(&customer_chat(&f.conv))
        .await
        .unwrap();
    let tasks: Value = http
        .get(format!("{ctl}/tasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wt = tasks["tasks"][0]["task_sid"].as_str().unwrap().to_owned();
    assert_eq!(tasks["tasks"][0]["conversation_sid"], f.conv.as_str());
    let r = http
        .post(format!("{ctl}/tasks/{wt}/accept"))
        .json(&json!({"identity": "agent_zoe", "friendly_name": "Zoe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{ctl}/conversations/{}/messages", f.conv))
        .json(&json!({"identity": "agent_zoe", "body": "hello from Zoe",
                      "media": {"content_type": "image/gif", "filename": "a.gif", "data_base64": "R0lGODlh"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let bad = http
        .post(format!("{ctl}/conversations/{}/messages", f.conv))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let r = http
        .post(format!("{ctl}/conversations/{}/close", f.conv))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let view: Value = http
        .get(format!("{ctl}/conversations/{}", f.conv))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["state"], "closed");
    let last = view["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["author"], "agent_zoe");
    assert_eq!(last["media"][0]["data_base64"], "R0lGODlh");
    assert!(view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["identity"] != "agent_zoe"));

    // Faults through the control API.
    let r = http
        .post(format!("{ctl}/faults"))
        .json(&json!({"method": "GET", "path": "/v1/Conversations/{sid}",
                      "action": {"kind": "rate_limit", "retry_after_secs": 1},
                      "trigger": {"mode": "next", "count": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(matches!(
        f.client.fetch_conversation(&f.conv).await,
        Err(flexcord_twilio_api::TwilioError::RateLimited { .. })
    ));
    f.client.fetch_conversation(&f.conv).await.unwrap();
    let bad = http
        .post(format!("{ctl}/faults"))
        .json(&json!({"path": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // Counters, webhook mode and deliveries.
    let counters: Value = http
        .get(format!("{ctl}/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters["endpoints"]["GET /v1/Conversations/{sid}"], 2);
    assert!(counters["total"].as_u64().unwrap() >= 5);
    let r = http
        .post(format!("{ctl}/webhooks/mode"))
        .json(&json!({"mode": "hold"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(f.emu.webhook_mode(), WebhookMode::Hold);
    f.emu.set_webhook_mode(WebhookMode::Deliver);
    let _ = f.rx.wait_for(5).await;
    let deliveries: Value = http
        .get(format!("{ctl}/webhooks/deliveries"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!deliveries["deliveries"].as_array().unwrap().is_empty());
    let r = http.get(format!("{ctl}/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
}
