//! `discord-ingress setup`: channels created once with sensible permissions, existing ones reused,
//! commands registered in the guild; the binary prints the ids as env lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::TOKEN;
use discord_emulator::{ChannelSpec, Emulator, EmulatorConfig};
use discord_ingress::config::{DiscordConfig, Limits, ProductChannels};
use discord_ingress::{rest_client, setup};
use secrecy::SecretString;

fn overwrite(info: &discord_emulator::ChannelInfo, id: u64) -> &serde_json::Value {
    let id = id.to_string();
    info.permission_overwrites
        .iter()
        .find(|o| o["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no overwrite for {id}: {info:?}"))
}

fn bits(v: &serde_json::Value) -> u64 {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_creates_the_channels_once_and_registers_the_commands() {
    // An existing `bug-reports` channel must be reused, not duplicated.
    let emu = Emulator::start(EmulatorConfig::new(TOKEN).with_channels(vec![
        ChannelSpec::text("general"),
        ChannelSpec::text("bug-reports"),
    ]))
    .await
    .unwrap();
    let control = emu.control();
    let existing_bugs = control.channel_id("bug-reports").unwrap();
    let cfg = DiscordConfig {
        token: SecretString::from(TOKEN.to_owned()),
        application_id: control.application_id(),
        guild_id: Some(control.guild_id()),
        api_base_url: emu.rest_base().to_owned(),
        gateway_url: None,
        gateway_enabled: true,
        register_commands: true,
        channels: ProductChannels::default(),
    };
    let rest = rest_client(&cfg, &Limits::default(), Default::default()).unwrap();
    let first = setup::run(&rest, &cfg).await.unwrap();
    let created: Vec<(&str, bool)> = first.channels.iter().map(|c| (c.name, c.created)).collect();
    assert_eq!(
        created,
        vec![
            ("announcements", true),
            ("bug-reports", false),
            ("feature-requests", true),
            ("customer-service", true)
        ]
    );
    assert_eq!(first.channels[1].id, existing_bugs);
    assert_eq!(first.commands, 3);
    assert_eq!(control.guild_commands().len(), 3);

    // Announcements: members read but cannot post; the bot can.
    let guild = control.guild_id();
    let bot = control.bot_user_id();
    let ann = control.channel(first.channels[0].id).unwrap();
    let everyone = overwrite(&ann, guild);
    assert_ne!(
        bits(&everyone["deny"]) & (1 << 11),
        0,
        "SEND_MESSAGES denied to @everyone"
    );
    assert_ne!(
        bits(&everyone["allow"]) & (1 << 10),
        0,
        "VIEW_CHANNEL allowed"
    );
    assert_ne!(
        bits(&overwrite(&ann, bot)["allow"]) & (1 << 11),
        0,
        "the bot may post"
    );
    // Feature requests: commands allowed, chatter not.
    let feat = control.channel(first.channels[2].id).unwrap();
    assert_ne!(
        bits(&overwrite(&feat, guild)["allow"]) & (1 << 31),
        0,
        "USE_APPLICATION_COMMANDS"
    );
    let support = control.channel(first.channels[3].id).unwrap();
    assert_eq!(
        support.topic.as_deref().map(|t| t.contains("/helpme")),
        Some(true)
    );

    let before = control.channels().len();
    let second = setup::run(&rest, &cfg).await.unwrap();
    assert!(second.channels.iter().all(|c| !c.created), "idempotent");
    assert_eq!(
        second.channels,
        first
            .channels
            .iter()
            .map(|c| setup::SetupChannel {
                created: false,
                ..c.clone()
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(control.channels().len(), before);
    assert_eq!(control.guild_commands().len(), 3);

    // The binary prints the same ids as env lines.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_discord-ingress"))
            .arg("setup")
            .env_clear()
            .env("DISCORD_BOT_TOKEN", TOKEN)
            .env(
                "DISCORD_APPLICATION_ID",
                control.application_id().to_string(),
            )
            .env("DISCORD_GUILD_ID", guild.to_string())
            .env("DISCORD_API_BASE_URL", emu.rest_base())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), first.env_lines());
    assert!(first.env_lines().starts_with(&format!(
        "DISCORD_ANNOUNCEMENTS_CHANNEL_ID={}\n",
        first.channels[0].id
    )));

    // Without a guild, set-up refuses with a clear error.
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_discord-ingress"))
            .arg("setup")
            .env_clear()
            .env("DISCORD_BOT_TOKEN", TOKEN)
            .env("DISCORD_APPLICATION_ID", "1")
            .env("DISCORD_API_BASE_URL", emu.rest_base())
            .output()
            .unwrap()
    });
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DISCORD_GUILD_ID"));
    emu.shutdown().await;
}
