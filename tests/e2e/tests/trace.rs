//! One trace across the system: a DM's trace starts in discord-ingress, travels in the bus headers,
//! and is found in the spans of bot-router and twilio-egress. Every service writes its finished spans
//! to a file (`OTEL_TRACES_FILE`, one JSON object per span); the test reads those files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use flexcord_e2e::system::{customer_messages, System, SystemOptions};
use flexcord_e2e::Service;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The spans a service has written so far.
fn spans(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn with_trace<'a>(spans: &'a [Value], trace_id: &str) -> Vec<&'a Value> {
    spans
        .iter()
        .filter(|s| s["trace_id"].as_str() == Some(trace_id))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_keeps_one_trace_through_ingress_router_and_egress() -> Result<()> {
    let mut opts = SystemOptions::new("trace-dm");
    let dir = opts.work_root.join("trace-dm-spans");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let file = |s: Service| -> PathBuf { dir.join(format!("{}.jsonl", s.binary())) };
    for s in [
        Service::DiscordIngress,
        Service::BotRouter,
        Service::TwilioEgress,
    ] {
        opts = opts.service_env(s, "OTEL_TRACES_FILE", file(s).display());
    }
    let sys = System::start(opts).await?;

    let carol = sys.new_user("carol", "en-US")?;
    let h = sys.request_agent(carol.id, "I need a human").await?;
    sys.accept(&h, "Ana").await?;

    let body = "my order never arrived";
    let posted = sys.send_dm(carol.id, body)?;
    sys.wait_agent(&h.conversation_sid, "the traced DM", WAIT, |c| {
        customer_messages(c)
            .iter()
            .any(|m| m.body.as_deref() == Some(body))
            .then_some(())
    })
    .await?;

    // The ingress span of this very message (its bus message id is `discord.msg.<message id>`).
    let msg_id = format!("discord.msg.{}", posted.message_id);
    let trace_id = flexcord_harness::eventually(WAIT, || {
        let found = spans(&file(Service::DiscordIngress))
            .into_iter()
            .find(|s| {
                s["name"] == "discord.inbound"
                    && s["attributes"]["msg_id"].as_str() == Some(&msg_id)
            })
            .and_then(|s| s["trace_id"].as_str().map(str::to_owned));
        async move { found }
    })
    .await
    .with_context(|| {
        sys.failure(format!(
            "no discord.inbound span for {msg_id} in {}",
            file(Service::DiscordIngress).display()
        ))
    })?;
    ensure!(
        trace_id.len() == 32 && trace_id != "0".repeat(32),
        "a real trace id: {trace_id}"
    );

    // The same trace id in the spans that handled it downstream. Spans are written when they end,
    // which may be a moment after the effect is visible.
    for s in [Service::BotRouter, Service::TwilioEgress] {
        let found = flexcord_harness::eventually(WAIT, || {
            let n = with_trace(&spans(&file(s)), &trace_id)
                .iter()
                .filter(|span| span["name"] == "bus.handle")
                .count();
            async move { (n > 0).then_some(n) }
        })
        .await;
        ensure!(
            found.is_some(),
            "{}",
            sys.failure(format!(
                "trace {trace_id} of {msg_id} not found in the bus.handle spans of {}; its spans:\n{}",
                s.binary(),
                std::fs::read_to_string(file(s)).unwrap_or_default()
            ))
        );
    }
    // And the trace is the message's own: other DMs of the conversation have other trace ids.
    let ingress = spans(&file(Service::DiscordIngress));
    let others = ingress
        .iter()
        .filter(|s| {
            s["name"] == "discord.inbound" && s["attributes"]["msg_id"].as_str() != Some(&msg_id)
        })
        .filter(|s| s["trace_id"].as_str() == Some(&trace_id))
        .count();
    ensure!(others == 0, "{others} other inbound events share the trace");
    Ok(())
}
