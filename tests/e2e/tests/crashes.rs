//! Each service in turn killed with SIGKILL in the middle of a 200-message conversation mix
//! (10 conversations, 12 user and 8 agent messages each, 4 hand-offs requested during the mix), then
//! restarted on the same ports: every message reaches the other side exactly once and in order, each
//! user sees one "case created" and one "joined", and closing + rating afterwards works for every case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use anyhow::Result;
use flexcord_e2e::mix::{Mix, MixPlan};
use flexcord_e2e::system::{System, SystemOptions};
use flexcord_e2e::Service;

const DELIVERY: Duration = Duration::from_secs(180);

async fn kill_mid_mix(service: Service) -> Result<()> {
    let mut sys = System::start(SystemOptions::for_faults(&format!(
        "crash-{}",
        service.binary()
    )))
    .await?;
    let mut mix = Mix::prepare(&sys, MixPlan::default()).await?;
    mix.run_until(&sys, 0.35).await?;
    sys.stack.kill(service);
    mix.run_until(&sys, 0.65).await?;
    sys.restart(service).await?;
    mix.finish(&sys, DELIVERY).await?;
    mix.verify(&sys, DELIVERY).await?;
    mix.close_and_rate(&sys, DELIVERY).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_ingress_killed_mid_mix() -> Result<()> {
    kill_mid_mix(Service::DiscordIngress).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_router_killed_mid_mix() -> Result<()> {
    kill_mid_mix(Service::BotRouter).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_egress_killed_mid_mix() -> Result<()> {
    kill_mid_mix(Service::TwilioEgress).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receiver_killed_mid_mix() -> Result<()> {
    kill_mid_mix(Service::WebhookReceiver).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_service_killed_mid_mix() -> Result<()> {
    kill_mid_mix(Service::CaseService).await
}
