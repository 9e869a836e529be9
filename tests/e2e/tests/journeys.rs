//! The journeys of DESIGN.md, end to end: real nats-server, both emulators, the five services as
//! processes. Assertions are on what the Discord user and the Flex agent see in the emulators, and on the
//! case API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use flexcord_e2e::system::{
    buttons, case_number_in, customer_messages, describe_agent_view, describe_messages, System,
    SystemOptions,
};
use flexcord_e2e::Service;
use serde_json::Value;
use twilio_emulator::{AgentMediaInput, AgentMessageInput};

const WAIT: Duration = Duration::from_secs(60);

fn embed_titles(m: &discord_emulator::MessageRecord) -> Vec<String> {
    m.embeds
        .iter()
        .filter_map(|e| e.get("title").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn embed_urls(m: &discord_emulator::MessageRecord) -> Vec<String> {
    m.embeds
        .iter()
        .filter_map(|e| e.get("url").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// `/aidemoi` by a French user greets in French (receipt and DM), `/helpme` by an English user in
/// English; a question gets knowledge-base articles in the user's language with the hand-off button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpme_greets_in_the_users_language_and_the_bot_answers_from_the_knowledge_base(
) -> Result<()> {
    let sys = System::start(SystemOptions::new("journey-bot-mode")).await?;

    // French.
    let marie = sys.new_user("marie", "fr")?;
    let (ix, greeting) = sys.helpme(marie.id, "aidemoi", "fr").await?;
    let cb = ix.callback.clone().context("no callback")?;
    ensure!(
        cb.ephemeral,
        "the /aidemoi receipt must be ephemeral: {cb:?}"
    );
    let receipt = cb.data.get("content").and_then(Value::as_str).unwrap_or("");
    ensure!(
        receipt.contains("message privé"),
        "French receipt expected, got {receipt:?}"
    );
    ensure!(
        greeting.content.starts_with("Bonjour marie"),
        "French greeting expected, got {:?}",
        greeting.content
    );
    ensure!(
        buttons(&greeting).contains(&("Parler à un conseiller".to_owned(), "handoff".to_owned())),
        "the greeting offers the hand-off button in French: {:?}",
        buttons(&greeting)
    );
    ensure!(!greeting.pings.any(), "the greeting pings nobody");

    sys.send_dm(marie.id, "J'ai oublié mon mot de passe")?;
    let answer = sys
        .wait_dm(
            marie.id,
            "a knowledge-base answer in French",
            WAIT,
            |msgs| msgs.get(1).cloned(),
        )
        .await?;
    ensure!(
        answer.content.starts_with("Voici ce que j'ai trouvé"),
        "French answer expected: {}",
        describe_messages(std::slice::from_ref(&answer))
    );
    ensure!(
        !answer.embeds.is_empty() && answer.embeds.len() <= 3,
        "1 to 3 articles: {:?}",
        embed_titles(&answer)
    );
    ensure!(
        embed_urls(&answer)
            .iter()
            .any(|u| u.contains("/fr/") && u.contains("password")),
        "the French password article is suggested: {:?}",
        embed_urls(&answer)
    );
    ensure!(buttons(&answer).iter().any(|(_, id)| id == "handoff"));

    // English.
    let alice = sys.new_user("alice", "en-US")?;
    let (ix, greeting) = sys.helpme(alice.id, "helpme", "en-US").await?;
    let cb = ix.callback.context("no callback")?;
    ensure!(cb.ephemeral);
    ensure!(
        cb.data
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or("")
            .contains("direct message"),
        "English receipt: {:?}",
        cb.data
    );
    ensure!(
        greeting.content.starts_with("Hi alice!"),
        "{:?}",
        greeting.content
    );
    sys.send_dm(alice.id, "I forgot my password")?;
    let answer = sys
        .wait_dm(alice.id, "a knowledge-base answer", WAIT, |msgs| {
            msgs.get(1).cloned()
        })
        .await?;
    ensure!(
        answer.content.starts_with("Here's what I found"),
        "{:?}",
        answer.content
    );
    ensure!(
        embed_urls(&answer)
            .iter()
            .any(|u| u.contains("/en/password-reset")),
        "the password article is suggested: {:?}",
        embed_urls(&answer)
    );
    // Exactly one greeting and one answer each: nothing duplicated.
    ensure!(
        sys.bot_dms(alice.id).len() == 2,
        "{}",
        describe_messages(&sys.bot_dms(alice.id))
    );
    ensure!(sys.bot_dms(marie.id).len() == 2);
    Ok(())
}

/// The whole hand-off: case number in the DM and on the Flex task, agent joined, the agent's
/// `@everyone` pings nobody, text, a file and an edit reach the agent, the close tells the user and
/// asks for a rating, and the rating and comment are recorded on the case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handoff_to_an_agent_and_back_with_csat_on_the_case() -> Result<()> {
    let sys = System::start(SystemOptions::new("journey-handoff").service_env(
        Service::BotRouter,
        "ROUTER_AGENT_LEFT_NOTICE_DELAY_S",
        1,
    ))
    .await?;
    let bob = sys.new_user("bob", "en-US")?;
    sys.helpme(bob.id, "helpme", "en-US").await?;

    // Hand-off: the user asks for a person.
    let h = sys
        .request_agent(bob.id, "I want to talk to a human please")
        .await?;
    let created = sys.wait_dm_containing(bob.id, "created", WAIT).await?;
    ensure!(created.content.contains(&format!("**{}**", h.case_number)));
    ensure!(
        h.task_attributes.get("caseNumber").and_then(Value::as_str) == Some(h.case_number.as_str())
    );
    ensure!(
        h.task_attributes
            .get("discordUserId")
            .and_then(Value::as_str)
            == Some(bob.id.to_string().as_str()),
        "task attributes: {}",
        h.task_attributes
    );
    ensure!(
        h.task_attributes
            .get("flexcordConversationId")
            .and_then(Value::as_str)
            == Some(h.dm_channel.to_string().as_str()),
        "task attributes: {}",
        h.task_attributes
    );
    let case = sys.case(&h.case_number).await?;
    ensure!(case["kind"] == "support", "{case}");
    ensure!(case["status"] == "open", "{case}");
    ensure!(
        case["user"]["id"].as_str() == Some(bob.id.to_string().as_str()),
        "{case}"
    );
    let conv = sys
        .agent_view(&h.conversation_sid)
        .context("no Flex conversation")?;
    ensure!(
        conv.participants
            .iter()
            .any(|p| p.identity.as_deref() == Some(&format!("discord_{}", bob.id))),
        "customer participant: {}",
        describe_agent_view(&conv)
    );

    // The agent joins.
    let agent = sys.accept(&h, "Ana").await?;
    let joined = sys.wait_dm_containing(bob.id, "joined", WAIT).await?;
    ensure!(
        joined.content == "**Ana** from support joined the conversation.",
        "{:?}",
        joined.content
    );
    sys.wait_case(&h.case_number, "the agent assigned", WAIT, |c| {
        c["status"] == "in_progress"
    })
    .await?;

    // The agent writes with @everyone: shown, nobody pinged.
    sys.twilio
        .agent_send(
            &h.conversation_sid,
            &agent,
            "Hi Bob, I'm on it @everyone <@&1> @here",
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let said = sys.wait_dm_containing(bob.id, "I'm on it", WAIT).await?;
    ensure!(
        said.content
            .starts_with("**Ana:** Hi Bob, I'm on it @everyone"),
        "{:?}",
        said.content
    );
    ensure!(!said.pings.any(), "nobody may be pinged: {:?}", said.pings);
    ensure!(
        said.allowed_mentions.is_some(),
        "allowed_mentions must be set (absent = Discord parses everything)"
    );

    // The agent sends a file: the user gets it as an attachment with the same bytes.
    let pdf: Vec<u8> = b"%PDF-1.4 refund form "
        .iter()
        .copied()
        .cycle()
        .take(3000)
        .collect();
    sys.twilio
        .agent_send_with(
            &h.conversation_sid,
            &agent,
            &AgentMessageInput {
                body: Some("Here is the form".into()),
                attributes: None,
                media: Some(AgentMediaInput {
                    content_type: "application/pdf".into(),
                    filename: Some("refund-form.pdf".into()),
                    bytes: pdf.clone(),
                }),
            },
        )
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    sys.wait_dm(bob.id, "the agent's file", WAIT, |msgs| {
        msgs.iter()
            .flat_map(|m| &m.attachments)
            .find(|a| a.filename == "refund-form.pdf" && a.bytes == pdf)
            .map(|_| ())
    })
    .await?;

    // The user writes text, then a file, then edits the text.
    let text = sys.send_dm(bob.id, "My purchase of 500 crystals never arrived")?;
    let png: Vec<u8> = (0..2048u32).map(|i| (i * 7 % 251) as u8).collect();
    sys.send_dm_with_file(bob.id, "", "receipt.png", &png)?;
    sys.wait_agent(&h.conversation_sid, "the text and the file", WAIT, |c| {
        let msgs = customer_messages(c);
        let text_at = msgs
            .iter()
            .position(|m| m.body.as_deref() == Some("My purchase of 500 crystals never arrived"))?;
        let file_at = msgs.iter().position(|m| {
            m.media
                .iter()
                .any(|md| md.filename.as_deref() == Some("receipt.png") && md.bytes() == png)
        })?;
        (text_at < file_at).then_some(())
    })
    .await?;
    sys.control().edit_message(
        text.channel_id,
        text.message_id,
        "My purchase of 1000 crystals never arrived",
    )?;
    sys.wait_agent(&h.conversation_sid, "the edit", WAIT, |c| {
        customer_messages(c)
            .iter()
            .any(|m| m.body.as_deref() == Some("My purchase of 1000 crystals never arrived"))
            .then_some(())
    })
    .await?;
    let conv = sys
        .agent_view(&h.conversation_sid)
        .context("conversation")?;
    let customer = customer_messages(&conv);
    ensure!(
        customer
            .iter()
            .filter(|m| m
                .body
                .as_deref()
                .is_some_and(|b| b.contains("crystals never arrived")))
            .count()
            == 1,
        "the edit updates the message, it does not add one:\n{}",
        describe_agent_view(&conv)
    );
    ensure!(
        customer.iter().filter(|m| !m.media.is_empty()).count() == 1,
        "one file:\n{}",
        describe_agent_view(&conv)
    );

    // Ana hands the conversation back to the queue: Bob hears it once the notice delay passes,
    // his next message waits in the Flex conversation, and Carla takes the task.
    sys.twilio
        .agent_transfer(&h.conversation_sid, &agent)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let left = sys
        .wait_dm_containing(bob.id, "left the conversation", WAIT)
        .await?;
    ensure!(
        left.content
            == format!(
                "**Ana** left the conversation. Your case **{}** stays open: another agent will \
                 continue with you here.",
                h.case_number
            ),
        "{:?}",
        left.content
    );
    sys.send_dm(bob.id, "Is anyone there?")?;
    sys.wait_agent(
        &h.conversation_sid,
        "the message sent between agents",
        WAIT,
        |c| {
            customer_messages(c)
                .iter()
                .any(|m| m.body.as_deref() == Some("Is anyone there?"))
                .then_some(())
        },
    )
    .await?;
    let agent = sys.accept(&h, "Carla").await?;
    let joined = sys.wait_dm_containing(bob.id, "**Carla**", WAIT).await?;
    ensure!(
        joined.content == "**Carla** from support joined the conversation.",
        "{:?}",
        joined.content
    );

    // The agent closes: the user is told, asked for a rating; the case is resolved.
    sys.twilio
        .agent_close(&h.conversation_sid, Some(&agent))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let closed = sys
        .wait_dm_containing(bob.id, "closed the conversation", WAIT)
        .await?;
    ensure!(closed.content.contains(&h.case_number));
    ensure!(
        closed.content.starts_with("Carla closed"),
        "{:?}",
        closed.content
    );

    let prompt = sys
        .wait_dm_containing(bob.id, "How did we do?", WAIT)
        .await?;
    let ids: Vec<String> = buttons(&prompt).into_iter().map(|(_, id)| id).collect();
    let expected: Vec<String> = (1..=5)
        .map(|r| format!("csat.{}.{r}", h.case_number))
        .collect();
    ensure!(ids == expected, "CSAT buttons {ids:?}");
    sys.wait_case(&h.case_number, "resolved", WAIT, |c| {
        c["status"] == "resolved"
    })
    .await?;

    sys.click(bob.id, &format!("csat.{}.4", h.case_number))?;
    sys.wait_dm_containing(bob.id, "Thanks for the 4/5", WAIT)
        .await?;
    sys.send_dm(bob.id, "Ana was great, thanks")?;
    sys.wait_dm_containing(bob.id, "your comment has been passed on", WAIT)
        .await?;
    let case = sys
        .wait_case(&h.case_number, "the CSAT rating and comment", WAIT, |c| {
            c["csat"]["rating"] == 4 && c["csat"]["comment"] == "Ana was great, thanks"
        })
        .await?;
    ensure!(case["status"] == "resolved", "{case}");
    ensure!(
        case_number_in(&closed.content).as_deref() == Some(h.case_number.as_str()),
        "{}",
        closed.content
    );

    // Every bot DM exactly once (no duplicated effect anywhere in the journey); Carla's close, which
    // Flex starts by removing her, is not announced as her leaving.
    let dms = sys.bot_dms(bob.id);
    for needle in [
        "created",
        "**Ana** from support joined",
        "**Ana** left the conversation",
        "**Carla** from support joined",
        "closed the conversation",
        "How did we do?",
    ] {
        let n = dms.iter().filter(|m| m.content.contains(needle)).count();
        ensure!(
            n == 1,
            "{n} DMs containing {needle:?}:\n{}",
            describe_messages(&dms)
        );
    }
    // And the agent saw each customer message once.
    let conv = sys
        .agent_view(&h.conversation_sid)
        .context("conversation")?;
    ensure!(
        customer_messages(&conv).len() == 3,
        "text + file + the message between agents:\n{}",
        describe_agent_view(&conv)
    );
    Ok(())
}
