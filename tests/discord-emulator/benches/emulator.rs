//! Emulator throughput, so tests and product benchmarks know it is not their bottleneck.
//! Prints `BENCH <name> <value> <unit>` lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use discord_emulator::{ChannelSpec, Emulator, EmulatorConfig, NewUser, SlashCommand, UserMessage};
use serde_json::json;
use serenity::all::{
    async_trait, ClientBuilder, Command, Context, CreateCommand, CreateInteractionResponse,
    CreateInteractionResponseMessage, EventHandler, GatewayIntents, HttpBuilder, Interaction,
    Message, Ready,
};
use tokio::sync::Notify;

const TOKEN: &str = "bench-token";

struct Handler {
    dms: Arc<AtomicUsize>,
    ready: Arc<Notify>,
}

#[async_trait]
impl EventHandler for Handler {
    async fn ready(&self, ctx: Context, _: Ready) {
        Command::set_global_commands(
            &ctx.http,
            vec![CreateCommand::new("ping").description("Ping")],
        )
        .await
        .unwrap();
        self.ready.notify_one();
    }
    async fn message(&self, _: Context, msg: Message) {
        if !msg.author.bot {
            self.dms.fetch_add(1, Ordering::SeqCst);
        }
    }
    async fn interaction_create(&self, ctx: Context, i: Interaction) {
        if let Interaction::Command(c) = i {
            let r = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new().content("pong"),
            );
            c.create_response(&ctx.http, r).await.unwrap();
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut cfg = EmulatorConfig::new(TOKEN)
        .with_channels(vec![ChannelSpec::text("general")])
        .with_heartbeat_interval_ms(5_000);
    cfg.rate_limits.enabled = false;
    let emu = Emulator::start(cfg).await.unwrap();
    let control = emu.control();
    let general = control.channel_id("general").unwrap();

    // REST: create-message throughput, 16 concurrent clients.
    let http = reqwest::Client::new();
    let url = format!("{}/channels/{general}/messages", emu.api_base());
    let per_task = 250;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let r = http
                    .post(&url)
                    .header("Authorization", format!("Bot {TOKEN}"))
                    .json(&json!({"content": format!("w{w} m{i}"), "embeds": [{"title": "t", "description": "d"}]}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = 16 * per_task;
    println!(
        "BENCH discord_emulator.rest_create_message {:.1} requests/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    control.reset();

    // Gateway: user DMs delivered to a real serenity client.
    let dms = Arc::new(AtomicUsize::new(0));
    let ready = Arc::new(Notify::new());
    let intents =
        GatewayIntents::GUILDS | GatewayIntents::DIRECT_MESSAGES | GatewayIntents::MESSAGE_CONTENT;
    let h = HttpBuilder::new(TOKEN)
        .proxy(emu.rest_base())
        .ratelimiter_disabled(true)
        .build();
    let mut client = ClientBuilder::new_with_http(h, intents)
        .event_handler(Handler {
            dms: dms.clone(),
            ready: ready.clone(),
        })
        .await
        .unwrap();
    let shards = client.shard_manager.clone();
    tokio::spawn(async move { client.start().await });
    tokio::time::timeout(Duration::from_secs(10), ready.notified())
        .await
        .unwrap();
    let users: Vec<u64> = (0..20)
        .map(|i| {
            control
                .create_user(NewUser::new(format!("user{i}")))
                .unwrap()
                .id
        })
        .collect();
    let total = 4_000;
    let t = Instant::now();
    for i in 0..total {
        control
            .send_dm(
                users[i % users.len()],
                UserMessage::text(format!("message {i}")),
            )
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while dms.load(Ordering::SeqCst) < total {
        assert!(
            Instant::now() < deadline,
            "only {} of {total} DMs delivered",
            dms.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "BENCH discord_emulator.gateway_dm_delivery {:.1} events/s",
        total as f64 / t.elapsed().as_secs_f64()
    );

    // Slash command round trip: dispatch -> serenity handler -> callback accepted.
    let mut rtt = Vec::new();
    let mut answered = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        let r = control
            .run_command(SlashCommand::in_channel(
                users[i % users.len()],
                general,
                "ping",
            ))
            .unwrap();
        let rec = control
            .wait_for_interaction_response(r.id, Duration::from_secs(5))
            .await
            .unwrap();
        rtt.push(t.elapsed().as_secs_f64() * 1000.0);
        answered.push(rec.callback.unwrap().delay_ms as f64);
    }
    rtt.sort_by(f64::total_cmp);
    println!(
        "BENCH discord_emulator.interaction_roundtrip_p50 {:.2} ms",
        percentile(&rtt, 0.5)
    );
    println!(
        "BENCH discord_emulator.interaction_roundtrip_p99 {:.2} ms",
        percentile(&rtt, 0.99)
    );
    shards.shutdown_all().await;
    emu.shutdown().await;
}
