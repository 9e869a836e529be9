//! The HTTP control API (`/_emulator/...`) and the standalone binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use discord_emulator::{ChannelSpec, Emulator, EmulatorConfig};
use serde_json::{json, Value};

#[tokio::test]
async fn control_api_over_http() {
    let emu = Emulator::start(
        EmulatorConfig::new("tok").with_channels(vec![ChannelSpec::text("general")]),
    )
    .await
    .unwrap();
    let c = reqwest::Client::new();
    let ctl = emu.control_url();
    let api = emu.api_base();
    let get = |p: String| {
        let c = c.clone();
        async move {
            let r = c.get(p).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let post = |p: String, b: Value| {
        let c = c.clone();
        async move {
            let r = c.post(p).json(&b).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };

    let (s, info) = get(format!("{ctl}/info")).await;
    assert_eq!(s, 200);
    assert_eq!(info["gateway_url"], emu.gateway_url());
    let general = info["channels"][0]["id"].as_str().unwrap().to_string();

    let (s, alice) = post(
        format!("{ctl}/users"),
        json!({"username": "alice", "locale": "fr"}),
    )
    .await;
    assert_eq!(s, 201);
    let alice_id = alice["id"].as_str().unwrap().to_string();
    assert_eq!(
        post(format!("{ctl}/users"), json!({"username": ""}))
            .await
            .0,
        400
    );

    let file = base64::engine::general_purpose::STANDARD.encode(b"hello");
    let (s, posted) = post(
        format!("{ctl}/users/{alice_id}/dm"),
        json!({"content": "help", "attachments": [{"filename": "a.txt", "bytes": file}]}),
    )
    .await;
    assert_eq!(s, 200, "{posted}");
    let dm = posted["channel_id"].as_str().unwrap().to_string();
    let (s, in_general) = post(
        format!("{ctl}/users/{alice_id}/messages"),
        json!({"channel_id": general, "content": "hello all"}),
    )
    .await;
    assert_eq!(
        (s, in_general["channel_id"].as_str()),
        (200, Some(general.as_str()))
    );
    let typing = c
        .post(format!("{ctl}/users/{alice_id}/typing"))
        .json(&json!({"in": "channel", "channel_id": general}))
        .send()
        .await;
    assert_eq!(typing.unwrap().status(), 204);
    let bytes = c
        .get(posted["attachment_urls"][0].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), b"hello");

    // The bot answers over REST; the control API reads it back, waiting if needed.
    let sent = c
        .post(format!("{api}/channels/{dm}/messages"))
        .header("Authorization", "Bot tok")
        .json(&json!({"content": "hi alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let (s, msgs) = get(format!(
        "{ctl}/channels/{dm}/bot-messages?wait_for=1&timeout_ms=2000"
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(msgs[0]["content"], "hi alice");
    let (s, _) = get(format!(
        "{ctl}/channels/{dm}/bot-messages?wait_for=5&timeout_ms=50"
    ))
    .await;
    assert_eq!(s, 408, "wait times out");
    let (_, all) = get(format!("{ctl}/channels/{dm}/messages")).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["attachments"][0]["bytes"], file);

    // Commands must be registered before users can run them.
    let (s, err) = post(
        format!("{ctl}/commands/run"),
        json!({"user_id": alice_id, "place": {"in": "dm"}, "name": "helpme"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(err["error"]
        .as_str()
        .unwrap()
        .contains("no registered command"));
    let put = c
        .put(format!("{api}/applications/{}/commands", emu.control().application_id()))
        .header("Authorization", "Bot tok")
        .json(&json!([{"name": "helpme", "description": "Help", "name_localizations": {"fr": "aidemoi"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let (s, i) = post(
        format!("{ctl}/commands/run"),
        json!({"user_id": alice_id, "place": {"in": "dm"}, "name": "aidemoi"}),
    )
    .await;
    assert_eq!(s, 200, "{i}");
    let (s, rec) = get(format!("{ctl}/interactions/{}", i["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert_eq!(
        (rec["command_name"].as_str(), rec["locale"].as_str()),
        (Some("helpme"), Some("fr"))
    );
    assert!(rec["callback"].is_null());
    let (_, cmds) = get(format!("{ctl}/commands")).await;
    assert_eq!(cmds["global"][0]["name_localizations"]["fr"], "aidemoi");

    // Faults, rate limits, stats, gateway status, reset.
    let fault = json!({"count": 1, "method": "GET", "path_prefix": "/users/@me", "fault": {"type": "server_error", "status": 500}});
    assert_eq!(
        c.post(format!("{ctl}/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = c
        .get(format!("{api}/users/@me"))
        .header("Authorization", "Bot tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    let r = c
        .put(format!("{ctl}/rate-limits/enabled"))
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, rl) = get(format!("{ctl}/rate-limits")).await;
    assert_eq!(rl["enabled"], false);
    let (_, stats) = get(format!("{ctl}/stats")).await;
    assert_eq!(stats["GET /users/@me"]["server_errors"], 1);
    assert_eq!(stats["POST /channels/{channel_id}/messages"]["ok"], 1);
    let (_, gw) = get(format!("{ctl}/gateway")).await;
    assert_eq!(gw["open_connections"], 0);
    let (s, _) = get(format!("{ctl}/gateway/wait-session?timeout_ms=50")).await;
    assert_eq!(s, 408);
    assert_eq!(
        c.post(format!("{ctl}/reset"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let (_, users) = get(format!("{ctl}/users")).await;
    assert_eq!(users, json!([]));
    let (_, chans) = get(format!("{ctl}/channels")).await;
    assert_eq!(
        (chans[0]["name"].as_str(), chans[0]["id"].as_str()),
        (Some("general"), Some(general.as_str())),
        "same id after reset"
    );
    assert_eq!(get(format!("{ctl}/users/{alice_id}")).await.0, 404);
    emu.shutdown().await;
}

#[test]
fn binary_prints_urls_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_discord-emulator"))
        .args([
            "--channels",
            "general,bugs,announcements:announcement",
            "--users",
            "alice,marie:fr",
            "--heartbeat-ms",
            "1000",
        ])
        .env("DISCORD_EMULATOR_BOT_TOKEN", "bin-token")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line == "DISCORD_EMULATOR_READY=1";
        lines.push(line);
        if done {
            break;
        }
    }
    let value = |k: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {lines:?}"))
            .to_string()
    };
    let rest = value("DISCORD_EMULATOR_REST");
    assert!(rest.starts_with("http://127.0.0.1:"));
    assert!(value("DISCORD_EMULATOR_GATEWAY").starts_with("ws://127.0.0.1:"));
    assert_eq!(
        value("DISCORD_EMULATOR_CONTROL"),
        format!("{rest}/_emulator")
    );
    let _: u64 = value("DISCORD_EMULATOR_CHANNEL_announcements")
        .parse()
        .unwrap();
    let marie: u64 = value("DISCORD_EMULATOR_USER_marie").parse().unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        let r = c
            .get(format!("{rest}/api/v10/gateway"))
            .header("Authorization", "Bot bin-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.json::<Value>().await.unwrap()["url"],
            value("DISCORD_EMULATOR_GATEWAY")
        );
        let u: Value = c
            .get(format!("{rest}/_emulator/users/{marie}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(u["locale"], "fr");
    });

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn binary_refuses_to_start_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_discord-emulator"))
        .env_remove("DISCORD_EMULATOR_BOT_TOKEN")
        .env_remove("DISCORD_EMULATOR_BOT_TOKEN_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bot token is required"));
}

#[tokio::test]
async fn remote_control_client() {
    use discord_emulator::{
        FaultSpec, GatewayDrop, NewUser, RemoteControl, RemoteError, UserMessage,
    };
    let emu = Emulator::start(EmulatorConfig::new("tok")).await.unwrap();
    let rc = RemoteControl::new(emu.control_url());
    let info = rc.info().await.unwrap();
    assert_eq!(info.gateway_url, emu.gateway_url());
    assert_eq!(info.guild_id, emu.control().guild_id());
    let general = info.channels[0].id;
    let alice = rc
        .create_user(&NewUser::new("alice").locale("fr"))
        .await
        .unwrap();
    assert_eq!(rc.users().await.unwrap(), vec![alice.clone()]);
    let posted = rc
        .send_message(alice.id, general, &UserMessage::text("hello"))
        .await
        .unwrap();
    rc.redeliver_message(general, posted.message_id)
        .await
        .unwrap();
    assert!(matches!(
        rc.redeliver_message(general, 1).await,
        Err(RemoteError::Status { status: 404, .. })
    ));
    rc.edit_message(general, posted.message_id, "hello (edited)")
        .await
        .unwrap();
    let msgs = rc.messages(general).await.unwrap();
    assert_eq!(
        (msgs[0].content.as_str(), msgs[0].edits),
        ("hello (edited)", 1)
    );
    let dm = rc
        .send_dm(alice.id, &UserMessage::text("dm"))
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let r = c
        .post(format!(
            "{}/channels/{}/messages",
            info.api_base, dm.channel_id
        ))
        .header("Authorization", "Bot tok")
        .json(&json!({"content": "reply"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bot = rc
        .wait_for_bot_messages(dm.channel_id, 1, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(bot[0].content, "reply");
    assert_eq!(rc.bot_events(Some(dm.channel_id)).await.unwrap().len(), 1);
    rc.inject_fault(&FaultSpec::new(
        1,
        discord_emulator::Fault::ServerError {
            status: 500,
            after_handler: false,
        },
    ))
    .await
    .unwrap();
    rc.clear_faults().await.unwrap();
    rc.set_rate_limits_enabled(false).await.unwrap();
    assert!(!rc.rate_limits_enabled().await.unwrap());
    assert_eq!(
        rc.route_stats().await.unwrap()["POST /channels/{channel_id}/messages"].ok,
        1
    );
    rc.drop_gateway(&GatewayDrop {
        close_code: Some(4000),
        refuse_reconnect_ms: None,
    })
    .await
    .unwrap();
    assert_eq!(rc.gateway_status().await.unwrap().open_connections, 0);
    match rc.interaction(1).await {
        Err(RemoteError::Status { status: 404, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        rc.wait_for_session(Duration::from_millis(30)).await,
        Err(RemoteError::Status { status: 408, .. })
    ));
    rc.reset().await.unwrap();
    assert!(rc.users().await.unwrap().is_empty());
    emu.shutdown().await;
}

#[tokio::test]
async fn the_dm_channel_of_a_user_is_readable_remotely() {
    let emu = Emulator::start(EmulatorConfig::new("tok")).await.unwrap();
    let remote = discord_emulator::RemoteControl::new(emu.control_url());
    let alice = emu
        .control()
        .create_user(discord_emulator::NewUser::new("alice"))
        .unwrap();
    assert_eq!(remote.dm_channel(alice.id).await.unwrap(), None);
    let posted = remote
        .send_dm(alice.id, &discord_emulator::UserMessage::text("hi"))
        .await
        .unwrap();
    assert_eq!(
        remote.dm_channel(alice.id).await.unwrap(),
        Some(posted.channel_id)
    );
    let bad = reqwest::get(format!("{}/users/not-a-number/dm", emu.control_url()))
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}
