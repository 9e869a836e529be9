//! `flexcord-dev`: runs flexcord locally (`make run`) and lets you act as a Discord user and a Flex agent.
//!
//! ```text
//! flexcord-dev up                 start nats-server, the services (and the emulators when .env has no credentials)
//! flexcord-dev down               stop everything `up` started
//! flexcord-dev status             what runs, and whether each service is ready
//! flexcord-dev user helpme [--fr] /helpme in #general (French locale with --fr)
//! flexcord-dev user say <text>    a DM to the bot
//! flexcord-dev user edit <text>   edit your last DM
//! flexcord-dev user click <label|custom_id>   click a button under the bot's last messages (e.g. agent, 4)
//! flexcord-dev user bug <title> <description> [low|medium|high|critical]
//! flexcord-dev user feature <title> <description>
//! flexcord-dev user show          your DM with the bot, as you see it
//! flexcord-dev channel <bugs|features|announcements>   what the bot posted there
//! flexcord-dev agent tasks        Flex tasks waiting for an agent
//! flexcord-dev agent accept [name]   accept the oldest waiting task (default agent name Ana)
//! flexcord-dev agent say <text>   reply in the conversation you accepted
//! flexcord-dev agent transfer     leave the conversation and put the task back in the queue
//! flexcord-dev agent close        end the conversation
//! flexcord-dev agent show         the conversation as the agent sees it
//! ```
//! `--user marie` (French locale in the sandbox) acts as another user.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use discord_emulator::RemoteControl;
use discord_emulator::{ButtonClick, SlashCommand, UserMessage};
use flexcord_e2e::{
    Binaries, ChildProcess, DiscordEndpoints, Service, Stack, StackConfig, TwilioEndpoints,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const SANDBOX_TOKEN: &str = "sandbox-bot-token";

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    mode: String,
    pids: BTreeMap<String, u32>,
    nats_url: String,
    discord_control: Option<String>,
    twilio_control: Option<String>,
    users: BTreeMap<String, u64>,
    channels: BTreeMap<String, u64>,
    admin: BTreeMap<String, String>,
    case_api: String,
    case_token: String,
    webhook_url: String,
    accepted_conversation: Option<String>,
}

fn sandbox_dir() -> PathBuf {
    std::env::var_os("FLEXCORD_SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".sandbox"))
}

fn repo_root() -> PathBuf {
    // target/<profile>/flexcord-dev -> repository root (or the current directory when run elsewhere)
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .find(|p| p.join("Cargo.toml").is_file() && p.join("services").is_dir())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| std::env::current_dir().unwrap_or_default())
}

fn state_path() -> PathBuf {
    sandbox_dir().join("state.json")
}

fn load_state() -> Result<State> {
    let text = std::fs::read_to_string(state_path())
        .with_context(|| "nothing is running here: start it with `make run`")?;
    Ok(serde_json::from_str(&text)?)
}

fn save_state(state: &State) -> Result<()> {
    std::fs::write(state_path(), serde_json::to_string_pretty(state)?)?;
    Ok(())
}

/// Reads `KEY=VALUE` lines (comments, blank lines, optional quotes, optional `export `).
fn read_dotenv(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            if !v.is_empty() {
                out.insert(k.trim().to_owned(), v.to_owned());
            }
        }
    }
    out
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

/// Waits for `KEY=value` lines in a process log until `ready_key` appears.
async fn read_announced(
    log: &Path,
    ready_key: &str,
    timeout: Duration,
) -> Result<BTreeMap<String, String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let vars: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .filter(|(k, _)| {
                k.starts_with("DISCORD_EMULATOR_") || k.starts_with("TWILIO_EMULATOR_")
            })
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect();
        if vars.contains_key(ready_key) {
            return Ok(vars);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} did not start; see {}", ready_key, log.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn up() -> Result<()> {
    if let Ok(state) = load_state() {
        if state.pids.values().any(|p| pid_alive(*p)) {
            bail!("flexcord is already running (see `make stop`)");
        }
    }
    let dir = sandbox_dir();
    // Fresh logs for every run (the previous run's are kept in logs.prev): the emulators' announced
    // addresses are read from their logs, so stale lines must not be there.
    let _ = std::fs::remove_dir_all(dir.join("logs.prev"));
    let _ = std::fs::rename(dir.join("logs"), dir.join("logs.prev"));
    std::fs::create_dir_all(dir.join("logs"))?;
    let bins = Binaries::locate();
    let root = repo_root();
    let dotenv = read_dotenv(&root.join(".env"));
    let real = dotenv.contains_key("TWILIO_ACCOUNT_SID")
        && (dotenv.contains_key("DISCORD_BOT_TOKEN")
            || dotenv.contains_key("DISCORD_BOT_TOKEN_FILE"));
    let mut state = State {
        mode: if real { "real" } else { "sandbox" }.into(),
        ..State::default()
    };
    let mut children: Vec<ChildProcess> = Vec::new();

    // NATS with JetStream, data kept under .sandbox/nats.
    let nats_port = flexcord_harness::free_port()?;
    let nats_bin = flexcord_harness::nats_server_binary()
        .map_err(|e| anyhow!("{e} (make run installs it on Debian/Ubuntu)"))?;
    let nats = ChildProcess::spawn(
        "nats-server",
        &nats_bin,
        &[
            "-js".into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            nats_port.to_string(),
            "-sd".into(),
            dir.join("nats").display().to_string(),
        ],
        &[],
        &dir.join("logs/nats-server.log"),
    )?;
    children.push(nats);
    state.nats_url = format!("nats://127.0.0.1:{nats_port}");

    let (discord, twilio) = if real {
        real_endpoints(&dotenv)?
    } else {
        let d = ChildProcess::spawn(
            "discord-emulator",
            &bins.path("discord-emulator")?,
            &[
                "--bind".into(),
                "127.0.0.1:0".into(),
                "--channels".into(),
                "general,bugs,feature-requests,support,announcements:announcement".into(),
                "--users".into(),
                "alice,marie:fr".into(),
                "--rate-limits".into(),
                "on".into(),
            ],
            &[("DISCORD_EMULATOR_BOT_TOKEN".into(), SANDBOX_TOKEN.into())],
            &dir.join("logs/discord-emulator.log"),
        )?;
        children.push(d);
        let dv = read_announced(
            &dir.join("logs/discord-emulator.log"),
            "DISCORD_EMULATOR_READY",
            Duration::from_secs(30),
        )
        .await?;
        let t = ChildProcess::spawn(
            "twilio-emulator",
            &bins.path("twilio-emulator")?,
            &["--bind".into(), "127.0.0.1:0".into()],
            &[],
            &dir.join("logs/twilio-emulator.log"),
        )?;
        children.push(t);
        let tv = read_announced(
            &dir.join("logs/twilio-emulator.log"),
            "TWILIO_EMULATOR_READY",
            Duration::from_secs(30),
        )
        .await?;
        let get = |m: &BTreeMap<String, String>, k: &str| {
            m.get(k)
                .cloned()
                .ok_or_else(|| anyhow!("emulator did not print {k}"))
        };
        let num =
            |m: &BTreeMap<String, String>, k: &str| -> Result<u64> { Ok(get(m, k)?.parse()?) };
        let mut channels = BTreeMap::new();
        for (role, name) in [
            ("bugs", "bugs"),
            ("features", "feature-requests"),
            ("support", "support"),
            ("announcements", "announcements"),
            ("general", "general"),
        ] {
            channels.insert(
                role.to_owned(),
                num(&dv, &format!("DISCORD_EMULATOR_CHANNEL_{name}"))?,
            );
        }
        state
            .users
            .insert("alice".into(), num(&dv, "DISCORD_EMULATOR_USER_alice")?);
        state
            .users
            .insert("marie".into(), num(&dv, "DISCORD_EMULATOR_USER_marie")?);
        state.discord_control = Some(get(&dv, "DISCORD_EMULATOR_CONTROL")?);
        state.twilio_control = Some(get(&tv, "TWILIO_EMULATOR_CONTROL_URL")?);
        state.channels = channels.clone();
        (
            DiscordEndpoints {
                api_base: get(&dv, "DISCORD_EMULATOR_REST")?,
                gateway_url: Some(get(&dv, "DISCORD_EMULATOR_GATEWAY")?),
                token: SANDBOX_TOKEN.into(),
                application_id: num(&dv, "DISCORD_EMULATOR_APPLICATION_ID")?,
                guild_id: num(&dv, "DISCORD_EMULATOR_GUILD_ID")?,
                channels,
            },
            TwilioEndpoints {
                base_url: Some(get(&tv, "TWILIO_EMULATOR_URL")?),
                account_sid: get(&tv, "TWILIO_EMULATOR_ACCOUNT_SID")?,
                auth_token: get(&tv, "TWILIO_EMULATOR_AUTH_TOKEN")?,
                workspace_sid: format!("WS{}", "0".repeat(32)),
                workflow_sid: format!("WW{}", "0".repeat(32)),
            },
        )
    };

    let mut extra_env = BTreeMap::new();
    if real {
        extra_env = dotenv.clone();
    }
    let mut stack = Stack::new(StackConfig {
        nats_urls: vec![state.nats_url.clone()],
        discord,
        twilio,
        binaries: bins,
        work_dir: dir.clone(),
        repo_root: root,
        extra_env,
        service_env: BTreeMap::new(),
        webhook_public_url: dotenv.get("WEBHOOK_PUBLIC_URL").cloned(),
        bind_host: "127.0.0.1".into(),
    })?;
    if let Err(e) = stack.start_all(Duration::from_secs(90)).await {
        stack.stop_all(Duration::from_secs(5));
        for mut c in children {
            c.terminate(Duration::from_secs(5));
        }
        return Err(e.into());
    }
    for s in Service::ALL {
        state.admin.insert(s.binary().into(), stack.admin_url(s));
    }
    state.case_api = stack.case_api_url();
    state.case_token = stack.case_api_token().to_owned();
    state.webhook_url = stack.webhook_public_url();
    for (s, pid) in stack.detach_all() {
        state.pids.insert(s.binary().into(), pid);
    }
    for c in children {
        let name = c.name().to_owned();
        state.pids.insert(name, c.detach());
    }
    save_state(&state)?;
    print_welcome(&state);
    Ok(())
}

fn real_endpoints(env: &BTreeMap<String, String>) -> Result<(DiscordEndpoints, TwilioEndpoints)> {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let num = |k: &str| get(k).parse::<u64>().unwrap_or(0);
    Ok((
        DiscordEndpoints {
            api_base: env
                .get("DISCORD_API_BASE_URL")
                .cloned()
                .unwrap_or_else(|| "https://discord.com".into()),
            gateway_url: env.get("DISCORD_GATEWAY_URL").cloned(),
            token: get("DISCORD_BOT_TOKEN"),
            application_id: num("DISCORD_APPLICATION_ID"),
            guild_id: num("DISCORD_GUILD_ID"),
            channels: BTreeMap::new(),
        },
        TwilioEndpoints {
            base_url: None,
            account_sid: get("TWILIO_ACCOUNT_SID"),
            auth_token: get("TWILIO_AUTH_TOKEN"),
            workspace_sid: get("TWILIO_WORKSPACE_SID"),
            workflow_sid: get("TWILIO_WORKFLOW_SID"),
        },
    ))
}

fn print_welcome(state: &State) {
    println!(
        "flexcord is running ({} mode). Logs: {}",
        state.mode,
        sandbox_dir().join("logs").display()
    );
    for (name, url) in &state.admin {
        println!("  {name:<17} {url}/readyz");
    }
    println!(
        "  case API          {}  (Authorization: Bearer {})",
        state.case_api, state.case_token
    );
    if state.mode == "real" {
        println!("\nConnected to the real Discord and Twilio. `make stop` stops everything.");
        return;
    }
    let dev = "target/debug/flexcord-dev";
    println!(
        "\nSandbox: a local Discord and Twilio Flex. Try the whole journey (alice speaks English, add --user marie for French):\n\
         \n  {dev} user helpme                  # /helpme: the bot greets you in your DMs\
         \n  {dev} user say \"I forgot my password\"   # a knowledge-base answer\
         \n  {dev} user click agent             # or: {dev} user say \"I want to talk to a human\"\
         \n  {dev} agent tasks                  # the Flex task, with the case number\
         \n  {dev} agent accept Ana             # \"Ana from support joined the conversation\"\
         \n  {dev} agent say \"Hi, I'm on it @everyone\"\
         \n  {dev} user say \"thanks!\"           # reaches the agent\
         \n  {dev} agent transfer               # back to the queue: after a moment you are told Ana left\
         \n  {dev} agent accept Bea             # \"Bea from support joined the conversation\"\
         \n  {dev} agent close                  # you are told, and asked to rate the help\
         \n  {dev} user click 5\
         \n  {dev} user show                    # your DM, as Discord shows it\
         \n  {dev} user bug \"Crash on launch\" \"The game closes after the logo\" high\
         \n  {dev} channel bugs                 # the report, posted with its case number\
         \n\n`make stop` stops everything."
    );
}

async fn down() -> Result<()> {
    let state = match load_state() {
        Ok(s) => s,
        Err(_) => {
            println!("Nothing to stop.");
            return Ok(());
        }
    };
    // Services first (they drain), then emulators, then NATS.
    let order: Vec<&str> = Service::ALL
        .iter()
        .rev()
        .map(|s| s.binary())
        .chain(["discord-emulator", "twilio-emulator", "nats-server"])
        .collect();
    for name in order {
        let Some(pid) = state.pids.get(name).copied() else {
            continue;
        };
        if !pid_alive(pid) {
            continue;
        }
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let mut waited = 0;
        while pid_alive(pid) && waited < 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        if pid_alive(pid) {
            let _ = std::process::Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            println!("Stopped {name} (killed after 10 s).");
        } else {
            println!("Stopped {name}.");
        }
    }
    let _ = std::fs::remove_file(state_path());
    Ok(())
}

async fn status() -> Result<()> {
    let state = load_state()?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    for (name, pid) in &state.pids {
        let alive = pid_alive(*pid);
        let ready = match state.admin.get(name) {
            Some(url) if alive => match http.get(format!("{url}/readyz")).send().await {
                Ok(r) if r.status().is_success() => "ready".to_owned(),
                Ok(r) => format!("not ready: {}", r.text().await.unwrap_or_default()),
                Err(e) => format!("no answer: {e}"),
            },
            _ => String::new(),
        };
        println!(
            "{name:<17} pid {pid:<7} {} {ready}",
            if alive { "running" } else { "STOPPED" }
        );
    }
    Ok(())
}

struct User {
    id: u64,
    control: RemoteControl,
}

fn user(state: &State, name: &str) -> Result<User> {
    let control = state.discord_control.clone().ok_or_else(|| {
        anyhow!("user commands need the sandbox (no Discord emulator in real mode)")
    })?;
    let id = *state
        .users
        .get(name)
        .ok_or_else(|| anyhow!("unknown user {name} (alice, marie)"))?;
    Ok(User {
        id,
        control: RemoteControl::new(control),
    })
}

async fn dm_channel(u: &User) -> Result<Option<u64>> {
    Ok(u.control.dm_channel(u.id).await?)
}

fn describe(m: &discord_emulator::MessageRecord) -> String {
    let mut out = String::new();
    let who = if m.from_bot { "bot" } else { "you" };
    let eph = if m.ephemeral { " (only you)" } else { "" };
    out.push_str(&format!("[{who}{eph}] {}", m.content));
    for e in &m.embeds {
        let title = e.get("title").and_then(Value::as_str).unwrap_or("");
        let desc = e.get("description").and_then(Value::as_str).unwrap_or("");
        out.push_str(&format!(
            "\n    ┃ {title}\n    ┃ {}",
            desc.replace('\n', "\n    ┃ ")
        ));
        if let Some(fields) = e.get("fields").and_then(Value::as_array) {
            for f in fields {
                out.push_str(&format!(
                    "\n    ┃ {}: {}",
                    f.get("name").and_then(Value::as_str).unwrap_or(""),
                    f.get("value").and_then(Value::as_str).unwrap_or("")
                ));
            }
        }
    }
    let buttons: Vec<String> = buttons_of(m)
        .into_iter()
        .map(|(label, id)| format!("[{label}] ({id})"))
        .collect();
    if !buttons.is_empty() {
        out.push_str(&format!("\n    buttons: {}", buttons.join("  ")));
    }
    for a in &m.attachments {
        out.push_str(&format!("\n    📎 {} ({} bytes)", a.filename, a.size));
    }
    if m.pings.everyone || !m.pings.users.is_empty() {
        out.push_str("\n    (this message pinged someone)");
    }
    out
}

fn buttons_of(m: &discord_emulator::MessageRecord) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in &m.components {
        if let Some(items) = row.get("components").and_then(Value::as_array) {
            for b in items {
                let label = b
                    .get("label")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if let Some(id) = b.get("custom_id").and_then(Value::as_str) {
                    out.push((label, id.to_owned()));
                }
            }
        }
    }
    out
}

async fn show_new_bot_messages(u: &User, channel: u64, before: usize) -> Result<()> {
    // Give the system a moment to answer, then print what arrived.
    let _ = u
        .control
        .wait_for_bot_messages(channel, before + 1, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let msgs = u.control.bot_messages(channel).await?;
    for m in msgs.iter().skip(before) {
        println!("{}", describe(m));
    }
    Ok(())
}

async fn bot_count(u: &User, channel: Option<u64>) -> Result<usize> {
    Ok(match channel {
        Some(c) => u.control.bot_messages(c).await?.len(),
        None => 0,
    })
}

async fn user_cmd(args: &[String], name: &str) -> Result<()> {
    let state = load_state()?;
    let u = user(&state, name)?;
    let sub = args.first().map(String::as_str).unwrap_or("show");
    let rest = &args[args.len().min(1)..];
    let dm = dm_channel(&u).await?;
    match sub {
        "helpme" => {
            let general = state
                .channels
                .get("general")
                .copied()
                .ok_or_else(|| anyhow!("no #general"))?;
            let fr = rest.iter().any(|a| a == "--fr") || name == "marie";
            let cmd = if fr {
                SlashCommand::in_channel(u.id, general, "aidemoi").locale("fr")
            } else {
                SlashCommand::in_channel(u.id, general, "helpme").locale("en-US")
            };
            let before = bot_count(&u, dm).await?;
            let ix = u.control.run_command(&cmd).await?;
            let rec = u
                .control
                .wait_for_interaction_response(ix.id, Duration::from_secs(5))
                .await?;
            if let Some(cb) = &rec.callback {
                println!("Discord answered the command in {} ms.", cb.delay_ms);
            }
            let dm = wait_dm(&u).await?;
            show_new_bot_messages(
                &u,
                dm,
                if Some(dm) == dm_channel(&u).await? {
                    before
                } else {
                    0
                },
            )
            .await?;
        }
        "say" => {
            let text = rest.join(" ");
            if text.is_empty() {
                bail!("usage: user say <text>");
            }
            let before = bot_count(&u, dm).await?;
            let posted = u.control.send_dm(u.id, &UserMessage::text(text)).await?;
            std::fs::write(
                sandbox_dir().join(format!("last-dm-{name}")),
                posted.message_id.to_string(),
            )?;
            show_new_bot_messages(&u, posted.channel_id, before).await?;
        }
        "edit" => {
            let text = rest.join(" ");
            let dm = dm.ok_or_else(|| anyhow!("no DM yet"))?;
            let last: u64 = std::fs::read_to_string(sandbox_dir().join(format!("last-dm-{name}")))
                .context("no DM to edit yet")?
                .trim()
                .parse()?;
            u.control.edit_message(dm, last, &text).await?;
            println!("Edited.");
        }
        "click" => {
            let wanted = rest.join(" ");
            let dm = dm.ok_or_else(|| anyhow!("no DM yet: try `user helpme`"))?;
            let msgs = u.control.bot_messages(dm).await?;
            let target = msgs.iter().rev().find_map(|m| {
                buttons_of(m).into_iter().find_map(|(label, id)| {
                    let hit = id == wanted
                        || label.eq_ignore_ascii_case(&wanted)
                        || id.ends_with(&format!(".{wanted}"))
                        || (wanted == "agent" && id == "handoff");
                    hit.then_some((m.id, id))
                })
            });
            let (message_id, custom_id) =
                target.ok_or_else(|| anyhow!("no button {wanted:?} under the bot's messages"))?;
            let before = msgs.len();
            u.control
                .click_button(&ButtonClick::new(u.id, dm, message_id, custom_id))
                .await?;
            show_new_bot_messages(&u, dm, before).await?;
        }
        "bug" | "feature" => {
            let (title, desc) = (
                rest.first().cloned().unwrap_or_default(),
                rest.get(1).cloned().unwrap_or_default(),
            );
            if title.is_empty() || desc.is_empty() {
                bail!(
                    "usage: user {sub} <title> <description>{}",
                    if sub == "bug" { " [severity]" } else { "" }
                );
            }
            let (channel_role, command) = if sub == "bug" {
                ("bugs", "bug")
            } else {
                ("features", "feature-request")
            };
            let channel = state
                .channels
                .get(channel_role)
                .copied()
                .ok_or_else(|| anyhow!("no channel"))?;
            let mut cmd = SlashCommand::in_channel(u.id, channel, command)
                .arg("title", title)
                .arg("description", desc);
            if let Some(sev) = rest.get(2) {
                cmd = cmd.arg("severity", sev.clone());
            }
            let before = u.control.bot_messages(channel).await?.len();
            u.control.run_command(&cmd).await?;
            // The receipt (only you see it) and the report embed (everyone sees it).
            let _ = u
                .control
                .wait_for_bot_messages(channel, before + 2, Duration::from_secs(10))
                .await;
            println!("In #{channel_role}:");
            for m in u.control.bot_messages(channel).await?.iter().skip(before) {
                println!("{}", describe(m));
            }
        }
        "show" => {
            let dm = dm.ok_or_else(|| anyhow!("no DM yet: try `user helpme`"))?;
            for m in u.control.messages(dm).await? {
                if !m.deleted {
                    println!("{}", describe(&m));
                }
            }
        }
        other => bail!("unknown user command {other}"),
    }
    Ok(())
}

async fn wait_dm(u: &User) -> Result<u64> {
    for _ in 0..100 {
        if let Some(c) = dm_channel(u).await? {
            return Ok(c);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the bot did not open a DM")
}

async fn channel_cmd(args: &[String]) -> Result<()> {
    let state = load_state()?;
    let role = args.first().map(String::as_str).unwrap_or("bugs");
    let id = state
        .channels
        .get(role)
        .copied()
        .ok_or_else(|| anyhow!("unknown channel {role}"))?;
    let control = RemoteControl::new(
        state
            .discord_control
            .clone()
            .ok_or_else(|| anyhow!("sandbox only"))?,
    );
    for m in control.bot_messages(id).await? {
        println!("{}", describe(&m));
    }
    Ok(())
}

async fn agent_cmd(args: &[String]) -> Result<()> {
    let mut state = load_state()?;
    let base = state
        .twilio_control
        .clone()
        .ok_or_else(|| anyhow!("agent commands need the sandbox"))?;
    let http = reqwest::Client::new();
    let sub = args.first().map(String::as_str).unwrap_or("show");
    let rest = &args[args.len().min(1)..];
    match sub {
        "tasks" => {
            let v: Value = http
                .get(format!("{base}/tasks"))
                .send()
                .await?
                .json()
                .await?;
            let tasks = v
                .get("tasks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if tasks.is_empty() {
                println!("No task is waiting.");
            }
            for t in tasks {
                println!("{}", serde_json::to_string_pretty(&t)?);
            }
        }
        "accept" => {
            let name = rest.first().cloned().unwrap_or_else(|| "Ana".into());
            let v: Value = http
                .get(format!("{base}/tasks"))
                .send()
                .await?
                .json()
                .await?;
            let task = v
                .get("tasks")
                .and_then(Value::as_array)
                .and_then(|t| t.first().cloned())
                .ok_or_else(|| anyhow!("no task is waiting"))?;
            let task_sid = task
                .get("task_sid")
                .or_else(|| task.get("sid"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let conv = task
                .get("conversation_sid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let identity = format!("agent_{}", name.to_lowercase());
            let r = http
                .post(format!("{base}/tasks/{task_sid}/accept"))
                .json(&json!({"identity": identity, "friendly_name": name}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("accept failed: {}", r.text().await?);
            }
            state.accepted_conversation = Some(conv.clone());
            save_state(&state)?;
            println!("{name} accepted the task; conversation {conv}.");
        }
        "say" => {
            let conv = state
                .accepted_conversation
                .clone()
                .ok_or_else(|| anyhow!("accept a task first"))?;
            let text = rest.join(" ");
            let identity = agent_identity(&http, &base, &conv).await?;
            let r = http
                .post(format!("{base}/conversations/{conv}/messages"))
                .json(&json!({"identity": identity, "body": text}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("send failed: {}", r.text().await?);
            }
            println!("Sent.");
        }
        "transfer" => {
            let conv = state
                .accepted_conversation
                .clone()
                .ok_or_else(|| anyhow!("accept a task first"))?;
            let identity = agent_identity(&http, &base, &conv).await?;
            let r = http
                .post(format!("{base}/conversations/{conv}/transfer"))
                .json(&json!({"identity": identity}))
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("transfer failed: {}", r.text().await?);
            }
            println!(
                "{identity} left; the task is waiting again (`agent accept <name>` takes it)."
            );
        }
        "close" => {
            let conv = state
                .accepted_conversation
                .clone()
                .ok_or_else(|| anyhow!("accept a task first"))?;
            let identity = agent_identity(&http, &base, &conv).await?;
            http.post(format!("{base}/conversations/{conv}/close"))
                .json(&json!({"identity": identity}))
                .send()
                .await?
                .error_for_status()?;
            println!("Conversation closed.");
        }
        "show" => {
            let conv = state
                .accepted_conversation
                .clone()
                .ok_or_else(|| anyhow!("accept a task first"))?;
            let v: Value = http
                .get(format!("{base}/conversations/{conv}"))
                .send()
                .await?
                .json()
                .await?;
            for m in v
                .get("messages")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                let author = m.get("author").and_then(Value::as_str).unwrap_or("?");
                let body = m.get("body").and_then(Value::as_str).unwrap_or("");
                let media = m
                    .get("media")
                    .and_then(Value::as_array)
                    .map(|a| a.len())
                    .unwrap_or(0);
                let media = if media > 0 {
                    format!(" [{media} file(s)]")
                } else {
                    String::new()
                };
                println!("{author}: {body}{media}");
            }
        }
        other => bail!("unknown agent command {other}"),
    }
    Ok(())
}

async fn agent_identity(http: &reqwest::Client, base: &str, conv: &str) -> Result<String> {
    let v: Value = http
        .get(format!("{base}/conversations/{conv}"))
        .send()
        .await?
        .json()
        .await?;
    let parts = v
        .get("participants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    parts
        .iter()
        .filter_map(|p| p.get("identity").and_then(Value::as_str))
        .find(|i| i.starts_with("agent_"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no agent in this conversation"))
}

#[tokio::main]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut who = "alice".to_owned();
    if let Some(i) = args.iter().position(|a| a == "--user") {
        if i + 1 < args.len() {
            who = args.remove(i + 1);
            args.remove(i);
        }
    }
    let cmd = args.first().cloned().unwrap_or_else(|| "status".into());
    let rest = args.get(1..).map(<[String]>::to_vec).unwrap_or_default();
    let result = match cmd.as_str() {
        "up" => up().await,
        "down" => down().await,
        "status" => status().await,
        "user" => user_cmd(&rest, &who).await,
        "channel" => channel_cmd(&rest).await,
        "agent" => agent_cmd(&rest).await,
        _ => {
            eprintln!("usage: flexcord-dev up|down|status|user …|agent …|channel … (see the source's doc comment)");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
