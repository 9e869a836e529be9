//! Infrastructure faults in the middle of live conversations: NATS restarted, Twilio down for 30 s,
//! Discord answering 429s, a node of a three-node NATS cluster killed. Each time every message reaches
//! the other side exactly once and in order, and nothing is dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use discord_emulator::{Fault, FaultSpec as DiscordFault};
use flexcord_e2e::mix::{Mix, MixPlan};
use flexcord_e2e::system::{customer_messages, describe_messages, System, SystemOptions};
use twilio_emulator::{FaultAction, FaultSpec, FaultTrigger};

const DELIVERY: Duration = Duration::from_secs(180);

async fn no_dead_letters(sys: &System) -> Result<()> {
    let dead = sys.dead_letters().await?;
    ensure!(
        dead.is_empty(),
        "{}",
        sys.failure(format!("messages were dead-lettered: {dead:#?}"))
    );
    Ok(())
}

/// nats-server stopped (graceful) in the middle of the mix, kept down while users and agents go on
/// writing, then started again on the same port and store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_mid_mix() -> Result<()> {
    let mut sys = System::start(SystemOptions::for_faults("fault-nats-restart")).await?;
    let mut mix = Mix::prepare(&sys, MixPlan::default()).await?;
    mix.run_until(&sys, 0.35).await?;
    let server = sys.nats.single().context("single server")?;
    tokio::task::block_in_place(|| server.stop());
    mix.run_until(&sys, 0.65).await?;
    let server = sys.nats.single().context("single server")?;
    tokio::task::block_in_place(|| server.restart())?;
    mix.finish(&sys, DELIVERY).await?;
    mix.verify(&sys, DELIVERY).await?;
    mix.close_and_rate(&sys, DELIVERY).await?;
    no_dead_letters(&sys).await
}

/// A three-node cluster, streams and KV replicated three times; the JetStream meta leader is killed
/// (SIGKILL) in the middle of the mix and stays down.
///
/// The node also led some consumers: their pull requests died with it while the services stayed
/// connected to the other nodes, and one conversation used to stall (async-nats re-pulls only when a
/// request expires). The bus now restarts a pull after missed heartbeats while connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_node_killed_mid_mix() -> Result<()> {
    let mut sys = System::start(SystemOptions::for_faults("fault-nats-cluster").cluster()).await?;
    let streams = sys.streams().await?;
    ensure!(
        streams.len() >= 14 && streams.iter().all(|(_, replicas, _)| *replicas == 3),
        "every stream, bucket and the object store replicated three times: {streams:?}"
    );
    let mut mix = Mix::prepare(&sys, MixPlan::default()).await?;
    mix.run_until(&sys, 0.35).await?;
    let cluster = sys.nats.cluster().context("cluster")?;
    let leader =
        tokio::task::block_in_place(|| cluster.wait_for_meta_leader(Duration::from_secs(10)))?;
    cluster.nodes[leader].kill();
    let killed = format!("n{leader}");
    mix.finish(&sys, DELIVERY).await?;
    mix.verify(&sys, DELIVERY).await?;
    mix.close_and_rate(&sys, DELIVERY).await?;
    let cluster = sys.nats.cluster().context("cluster")?;
    let next =
        tokio::task::block_in_place(|| cluster.wait_for_meta_leader(Duration::from_secs(10)))?;
    ensure!(next != leader, "a new meta leader was elected");
    let streams = sys.streams().await?;
    ensure!(
        streams
            .iter()
            .all(|(_, _, l)| !l.is_empty() && *l != killed),
        "every stream has a leader on a live node: {streams:?}"
    );
    no_dead_letters(&sys).await
}

/// Discord answers 429 (per-route and global, with Retry-After) to a share of the bot's messages while
/// agents talk: every agent message still reaches its DM once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_429s_mid_mix() -> Result<()> {
    let sys = System::start(SystemOptions::for_faults("fault-discord-429")).await?;
    let mut mix = Mix::prepare(&sys, MixPlan::default()).await?;
    let route = "POST /channels/{channel_id}/messages";
    let before = sys.control().route(route).rate_limited;
    let control = sys.control();
    control.inject_fault(
        DiscordFault::new(
            40,
            Fault::RateLimit {
                retry_after: 0.8,
                global: false,
            },
        )
        .matching("POST", "/channels/"),
    );
    control.inject_fault(
        DiscordFault::new(
            5,
            Fault::RateLimit {
                retry_after: 1.5,
                global: true,
            },
        )
        .matching("POST", "/channels/"),
    );
    mix.finish(&sys, DELIVERY).await?;
    mix.verify(&sys, DELIVERY).await?;
    let hit = sys.control().route(route).rate_limited - before;
    ensure!(hit >= 45, "the injected 429s were met: {hit}");
    mix.close_and_rate(&sys, DELIVERY).await?;
    no_dead_letters(&sys).await
}

/// Every Twilio endpoint fails for 30 s (half the requests get 503, half lose their connection) while
/// users keep writing and a new user asks for an agent. Afterwards every message is in the agents'
/// views exactly once and in order, the new hand-off completes, no user is told a message was lost, and
/// nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_down_for_30_seconds() -> Result<()> {
    let sys = System::start(SystemOptions::for_faults("fault-twilio-down")).await?;
    let users: Vec<_> = (0..4)
        .map(|i| sys.new_user(&format!("patient{i}"), "en-US"))
        .collect::<Result<_>>()?;
    let mut handoffs = Vec::new();
    for u in &users {
        let h = sys.request_agent(u.id, "I want to talk to a human").await?;
        sys.accept(&h, "Ana").await?;
        handoffs.push(h);
    }
    let late = sys.new_user("latecomer", "en-US")?;

    let calls_before = sys.twilio.counters().total;
    let drop_rule = sys.twilio.add_fault(FaultSpec {
        method: None,
        path: "/**".into(),
        action: FaultAction::Drop,
        trigger: FaultTrigger::Probability { p: 0.5 },
    })?;
    let error_rule = sys.twilio.add_fault(FaultSpec {
        method: None,
        path: "/**".into(),
        action: FaultAction::ServerError { status: 503 },
        trigger: FaultTrigger::UntilCleared,
    })?;
    let outage = Instant::now();
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); users.len()];
    let mut late_asked = false;
    let mut round = 0;
    while outage.elapsed() < Duration::from_secs(30) {
        for (i, u) in users.iter().enumerate() {
            let body = format!("{} during the outage {round:02}", u.username);
            sys.send_dm(u.id, &body)?;
            expected[i].push(body);
        }
        if !late_asked && outage.elapsed() > Duration::from_secs(5) {
            sys.send_dm(late.id, "I need to talk to a human agent")?;
            late_asked = true;
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let calls_during = sys.twilio.counters().total - calls_before;
    sys.twilio.remove_fault(drop_rule);
    sys.twilio.remove_fault(error_rule);
    ensure!(
        calls_during > 0,
        "twilio-egress kept trying during the outage"
    );
    // Nothing could have reached an agent during the outage.
    for h in &handoffs {
        let view = sys.agent_view(&h.conversation_sid).context("view")?;
        ensure!(
            !customer_messages(&view).iter().any(|m| m
                .body
                .as_deref()
                .unwrap_or("")
                .contains("during the outage")),
            "a message went through while Twilio was down"
        );
    }
    for (i, u) in users.iter().enumerate() {
        let body = format!("{} after the outage", u.username);
        sys.send_dm(u.id, &body)?;
        expected[i].push(body);
    }

    for (h, want) in handoffs.iter().zip(&expected) {
        sys.wait_agent(
            &h.conversation_sid,
            "every message once, in order",
            DELIVERY,
            |c| {
                let seen: Vec<String> = customer_messages(c)
                    .iter()
                    .filter_map(|m| m.body.clone())
                    .filter(|b| b.contains("the outage"))
                    .collect();
                (seen == *want).then_some(())
            },
        )
        .await?;
    }
    let h = sys
        .handoff_started(late.id, sys.dm_channel(late.id).context("dm")?, 0, DELIVERY)
        .await?;
    sys.accept(&h, "Ben").await?;
    for u in &users {
        let dms = sys.bot_dms(u.id);
        ensure!(
            !dms.iter()
                .any(|m| m.content.contains("couldn't") || m.content.contains("could not")),
            "a user was told something failed:\n{}",
            describe_messages(&dms)
        );
    }
    // One conversation and one task per hand-off, even with lost responses.
    ensure!(
        sys.twilio.tasks().len() == users.len() + 1,
        "tasks: {:#?}",
        sys.twilio.tasks()
    );
    no_dead_letters(&sys).await
}
