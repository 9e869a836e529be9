//! `BENCH ingress.events_per_s`: gateway events (DM MESSAGE_CREATE) turned into acknowledged bus
//! publishes per second, end to end: the Discord emulator dispatches DMs over the gateway to the real
//! serenity client inside discord-ingress (`run()` in-process), which publishes them to a real
//! nats-server; the clock stops when `DISCORD_IN` holds them all (every one acknowledged and stored).
//!
//! A driver thread makes `BENCH_USERS` users (default 1,000) send `BENCH_EVENTS` DMs (default 100,000)
//! round-robin, as fast as the emulator accepts them; the emulator's own dispatch rate is printed too
//! (`ingress.emulator_dispatch_per_s`) so a bottleneck on the emulator side is visible. Rate limits
//! are off in the emulator and the per-user flood control is raised out of the way. Goal: 20,000/s on
//! a 2-core machine. Everything (emulator, serenity, ingress, nats-server) shares the same two cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use discord_emulator::{ChannelSpec, Emulator, EmulatorConfig, NewUser, UserMessage};
use discord_ingress::Config;
use flexcord_bus::topology::DISCORD_IN;
use flexcord_bus::{Bus, BusConfig, Metrics};
use flexcord_harness::NatsServer;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bench-token";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn stored(bus: &Bus) -> u64 {
    let mut stream = bus.jetstream().get_stream(DISCORD_IN.name).await.unwrap();
    stream.info().await.unwrap().state.messages
}

async fn wait_stored(bus: &Bus, n: u64, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let have = stored(bus).await;
        if have >= n {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "only {have} of {n} events stored"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn main() {
    let events = env_or("BENCH_EVENTS", 100_000);
    let users = env_or("BENCH_USERS", 1_000).max(1);
    std::env::set_var("RUST_LOG", "warn");
    let _telemetry = flexcord_bus::telemetry::init(
        &flexcord_bus::telemetry::TelemetryConfig::from_env("bench").unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let nats = NatsServer::start().unwrap();
        let mut emu_cfg = EmulatorConfig::new(TOKEN).with_channels(vec![ChannelSpec::text("general")]).with_heartbeat_interval_ms(5_000);
        emu_cfg.rate_limits.enabled = false;
        let emu = Emulator::start(emu_cfg).await.unwrap();
        let control = emu.control();

        let mut config = Config::for_tests(&nats.url(), emu.rest_base(), TOKEN, control.application_id());
        config.limits.user_burst = 1_000_000;
        config.limits.user_rate_per_min = 1_000_000;
        config.limits.lane_max_queue = 10_000_000;
        let shutdown = CancellationToken::new();
        let ingress = tokio::spawn(discord_ingress::run(config, shutdown.clone()));
        control.wait_for_session(Duration::from_secs(30)).await.unwrap();
        control.wait_for_commands(3, Duration::from_secs(30)).await.unwrap();
        let bus = Bus::connect(&BusConfig::for_url(nats.url()), "bench", Metrics::new("bench").bus()).await.unwrap();

        // Warm-up: every user's DM channel exists and is known to ingress.
        let ids: Vec<u64> = (0..users).map(|i| control.create_user(NewUser::new(format!("user{i}"))).unwrap().id).collect();
        for id in &ids {
            control.send_dm(*id, UserMessage::text("hello")).unwrap();
        }
        wait_stored(&bus, users as u64, Duration::from_secs(120)).await;
        let base = stored(&bus).await;

        let driver_control = control.clone();
        let driver_ids = ids.clone();
        let started = Instant::now();
        let driver = std::thread::spawn(move || {
            for i in 0..events {
                driver_control.send_dm(driver_ids[i % driver_ids.len()], UserMessage::text(format!("message number {i}"))).unwrap();
            }
            Instant::now()
        });
        let done = wait_stored(&bus, base + events as u64, Duration::from_secs(600)).await;
        let dispatched = driver.join().unwrap();
        let total = done.duration_since(started).as_secs_f64();
        let dispatch = dispatched.duration_since(started).as_secs_f64();
        println!("BENCH ingress.events_per_s {:.0} events/s", events as f64 / total);
        println!("BENCH ingress.emulator_dispatch_per_s {:.0} events/s", events as f64 / dispatch);
        eprintln!("{events} DMs from {users} users: dispatched in {dispatch:.2} s, all published and acknowledged in {total:.2} s");

        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), ingress).await;
        emu.shutdown().await;
        drop(nats);
    });
}
