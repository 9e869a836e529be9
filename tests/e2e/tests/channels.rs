//! Journeys in the server's channels: `/bug` and `/feature-request` (embeds with case numbers, ephemeral
//! receipts, status changes told to the reporter) and the announcement relay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use discord_emulator::{MessageRecord, MessageSource, SlashCommand};
use flexcord_e2e::system::{case_number_in, describe_messages, System, SystemOptions};
use flexcord_e2e::Service;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn title(m: &MessageRecord) -> String {
    m.embeds
        .first()
        .and_then(|e| e.get("title"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn field(m: &MessageRecord, name: &str) -> Option<String> {
    m.embeds
        .first()?
        .get("fields")?
        .as_array()?
        .iter()
        .find(|f| f.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|f| f.get("value").and_then(Value::as_str))
        .map(str::to_owned)
}

fn receipt_of(msgs: &[MessageRecord], interaction_id: u64) -> Option<MessageRecord> {
    msgs.iter()
        .find(|m| {
            m.ephemeral
                && m.source == MessageSource::InteractionResponse { interaction_id }
                && case_number_in(&m.content).is_some()
        })
        .cloned()
}

/// `/bug` posts the report as an embed titled with its case number, the reporter's deferred response
/// becomes an ephemeral receipt with the same number; a status change made by an agent through the case
/// API reaches the reporter by DM and edits the embed. `/nouvelle_fonctionnalite` does the same for a
/// French feature request, in French.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bug_and_feature_reports_become_cases_with_embeds_and_receipts() -> Result<()> {
    let sys = System::start(SystemOptions::new("channels-reports")).await?;
    let control = sys.control();
    let carol = sys.new_user("carol", "en-US")?;

    let ix = control.run_command(
        SlashCommand::in_channel(carol.id, sys.channels.bugs, "bug")
            .arg("title", "Crash on launch")
            .arg("description", "The game closes right after the logo.")
            .arg("severity", "high")
            .locale("en-US"),
    )?;
    let rec = control
        .wait_for_interaction_response(ix.id, WAIT)
        .await
        .map_err(|e| sys.failure(e))?;
    let cb = rec.callback.context("callback")?;
    ensure!(
        cb.callback_type == 5 && cb.ephemeral,
        "deferred ephemeral: {cb:?}"
    );

    let msgs = sys
        .wait_channel(
            sys.channels.bugs,
            "the bug embed and the receipt",
            WAIT,
            |msgs| {
                msgs.iter()
                    .any(|m| title(m).ends_with(" · Crash on launch"))
                    && receipt_of(msgs, ix.id).is_some()
            },
        )
        .await?;
    let embed = msgs
        .iter()
        .find(|m| title(m).ends_with(" · Crash on launch"))
        .context("embed")?;
    let case = case_number_in(&title(embed)).context("case number in the embed title")?;
    ensure!(title(embed) == format!("{case} · Crash on launch"));
    ensure!(!embed.ephemeral, "the report is public");
    ensure!(!embed.pings.any(), "the report pings nobody");
    ensure!(
        !serde_json::to_string(&embed.embeds)?.contains("sig="),
        "the case-page link (a credential) is never posted publicly"
    );
    ensure!(field(embed, "Severity").is_some_and(|s| s.to_lowercase().contains("high")));
    let receipt = receipt_of(&msgs, ix.id).context("receipt")?;
    ensure!(
        receipt
            .content
            .contains(&format!("bug report was filed as case **{case}**")),
        "{:?}",
        receipt.content
    );
    ensure!(
        msgs.iter()
            .filter(|m| title(m).ends_with(" · Crash on launch"))
            .count()
            == 1,
        "one embed:\n{}",
        describe_messages(&msgs)
    );
    let stored = sys.case(&case).await?;
    ensure!(stored["kind"] == "bug", "{stored}");
    ensure!(stored["subject"] == "Crash on launch", "{stored}");
    ensure!(stored["severity"] == "high", "{stored}");
    ensure!(
        stored["user"]["id"].as_str() == Some(carol.id.to_string().as_str()),
        "{stored}"
    );

    // An agent resolves it: the reporter hears about it by DM, the embed shows the new status.
    sys.patch_case(
        &case,
        &json!({"status": "resolved", "comment": "Fixed in 2.3.1", "actor": "agent_ana"}),
    )
    .await?;
    let dm = sys
        .wait_dm_containing(carol.id, &format!("**{case}**"), WAIT)
        .await?;
    ensure!(
        dm.content.contains("resolved") && dm.content.contains("Fixed in 2.3.1"),
        "{:?}",
        dm.content
    );
    sys.wait_channel(
        sys.channels.bugs,
        "the embed edited to resolved",
        WAIT,
        |msgs| {
            msgs.iter().any(|m| {
                title(m).starts_with(&case)
                    && m.edits >= 1
                    && field(m, "Status").is_some_and(|s| s.to_lowercase().contains("resolved"))
            })
        },
    )
    .await?;

    // A French feature request.
    let marie = sys.new_user("marie", "fr")?;
    let ix = control.run_command(
        SlashCommand::in_channel(marie.id, sys.channels.features, "nouvelle_fonctionnalite")
            .arg("title", "Mode sombre")
            .arg("description", "Un thème sombre pour jouer la nuit.")
            .locale("fr"),
    )?;
    let msgs = sys
        .wait_channel(
            sys.channels.features,
            "the feature embed and the French receipt",
            WAIT,
            |msgs| {
                msgs.iter().any(|m| title(m).ends_with(" · Mode sombre"))
                    && receipt_of(msgs, ix.id).is_some()
            },
        )
        .await?;
    let embed = msgs
        .iter()
        .find(|m| title(m).ends_with(" · Mode sombre"))
        .context("embed")?;
    let feature_case = case_number_in(&title(embed)).context("case number")?;
    ensure!(feature_case != case, "a new case number");
    let receipt = receipt_of(&msgs, ix.id).context("receipt")?;
    ensure!(
        receipt.content.contains(&format!(
            "demande de fonctionnalité est enregistrée sous le dossier **{feature_case}**"
        )),
        "{:?}",
        receipt.content
    );
    ensure!(
        field(embed, "Statut").is_some(),
        "French labels: {:?}",
        embed.embeds
    );
    let stored = sys.case(&feature_case).await?;
    ensure!(stored["kind"] == "feature", "{stored}");
    ensure!(stored["user"]["locale"] == "fr", "{stored}");
    Ok(())
}

/// A local RSS feed: its newest item is relayed to the read-only announcements channel at the first
/// poll (older ones are not: a new deployment does not flood the channel), then every new item once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_from_an_official_feed_are_relayed_once() -> Result<()> {
    let feed = Arc::new(Mutex::new(vec![
        ("old-1", "Season 4 is here", 180u64),
        ("old-2", "Patch notes 4.0.1", 120),
        ("new-3", "Maintenance tonight", 60),
    ]));
    let served = feed.clone();
    let app = axum::Router::new().route(
        "/feed.xml",
        axum::routing::get(move || {
            let items = served.lock().unwrap().clone();
            async move { ([("content-type", "application/rss+xml")], rss(&items)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sys = System::start(
        SystemOptions::new("channels-announcements")
            .service_env(
                Service::BotRouter,
                "ANNOUNCEMENT_FEEDS",
                format!("http://{addr}/feed.xml"),
            )
            .service_env(Service::BotRouter, "ANNOUNCEMENT_POLL_INTERVAL_S", 1),
    )
    .await?;
    let ch = sys.channels.announcements;
    sys.wait_channel(ch, "the newest item relayed", WAIT, |msgs| {
        msgs.iter().any(|m| title(m) == "Maintenance tonight")
    })
    .await?;

    feed.lock().unwrap().push(("new-4", "Double XP weekend", 0));
    let msgs = sys
        .wait_channel(ch, "the new item relayed", WAIT, |msgs| {
            msgs.iter().any(|m| title(m) == "Double XP weekend")
        })
        .await?;
    // A few more polls must not repeat anything.
    let polls_later = sys
        .wait_channel(ch, "nothing more", Duration::from_secs(4), |msgs| {
            msgs.len() > 2
        })
        .await;
    ensure!(
        polls_later.is_err(),
        "an item was relayed twice or an old one was relayed:\n{}",
        describe_messages(&sys.control().bot_messages(ch))
    );
    let titles: Vec<String> = msgs.iter().map(title).collect();
    ensure!(
        titles == ["Maintenance tonight", "Double XP weekend"],
        "{titles:?}"
    );
    let first = &msgs[0];
    ensure!(
        first.embeds[0].get("url").and_then(Value::as_str)
            == Some("https://news.starfall.example/new-3"),
        "{:?}",
        first.embeds
    );
    ensure!(
        msgs.iter().all(|m| !m.pings.any()),
        "announcements ping nobody"
    );
    Ok(())
}

fn rss(items: &[(&str, &str, u64)]) -> String {
    let now = chrono::Utc::now();
    let mut out = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Starfall news</title>\
         <link>https://news.starfall.example/</link><description>Official news</description>",
    );
    // Newest first, as feeds usually list them.
    for (id, title, minutes_ago) in items.iter().rev() {
        let date = (now - chrono::Duration::minutes(*minutes_ago as i64)).to_rfc2822();
        out.push_str(&format!(
            "<item><guid>{id}</guid><title>{title}</title>\
             <link>https://news.starfall.example/{id}</link>\
             <description>&lt;p&gt;About {title}&lt;/p&gt;</description><pubDate>{date}</pubDate></item>"
        ));
    }
    out.push_str("</channel></rss>");
    out
}
