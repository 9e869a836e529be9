//! A whole flexcord system for the end-to-end suite and the benchmark: NATS (one server or a three-node
//! cluster), the Discord and Twilio emulators running in this process (rich assertions, fault
//! injection), and the five services as real processes through [`Stack`].
//!
//! Helpers act as the Discord user and the Flex agent and wait for what each of them sees. Every wait
//! takes a timeout and, when it runs out, fails with what it was waiting for and the tail of every
//! service's log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use discord_emulator::{
    ButtonClick, ChannelSpec, Control, Emulator, EmulatorConfig, MessageRecord, NewUser,
    PostedMessage, RunningEmulator, SlashCommand, User, UserMessage,
};
use flexcord_harness::{NatsCluster, NatsServer};
use serde_json::Value;
use twilio_emulator::{AgentConversation, AgentMessage, TaskView, TwilioEmulator};

use crate::{Binaries, DiscordEndpoints, Service, Stack, StackConfig, TwilioEndpoints};

/// The bot token both sides use.
pub const BOT_TOKEN: &str = "e2e-bot-token";
/// Prefix of the Flex identity of a Discord user (twilio-egress's customer participant).
pub const CUSTOMER_PREFIX: &str = "discord_";

/// One NATS server or a three-node cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatsSetup {
    /// One `nats-server -js`.
    Single,
    /// Three clustered JetStream nodes; streams and KV replicated three times (`NATS_REPLICAS=3`).
    Cluster,
}

/// The running NATS.
#[derive(Debug)]
pub enum Nats {
    /// One server (restartable on the same port and store).
    Single(NatsServer),
    /// Three nodes.
    Cluster(NatsCluster),
}

impl Nats {
    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        match self {
            Nats::Single(s) => vec![s.url()],
            Nats::Cluster(c) => c.urls(),
        }
    }

    /// The single server (panics-free: `None` for a cluster).
    pub fn single(&mut self) -> Option<&mut NatsServer> {
        match self {
            Nats::Single(s) => Some(s),
            Nats::Cluster(_) => None,
        }
    }

    /// The cluster (`None` for a single server).
    pub fn cluster(&mut self) -> Option<&mut NatsCluster> {
        match self {
            Nats::Single(_) => None,
            Nats::Cluster(c) => Some(c),
        }
    }
}

/// How to start a [`System`].
#[derive(Debug, Clone)]
pub struct SystemOptions {
    /// Name of the run (its work directory: logs, SQLite file, traces).
    pub name: String,
    /// Single server or cluster.
    pub nats: NatsSetup,
    /// Environment for every service (applied after the stack's own).
    pub env: BTreeMap<String, String>,
    /// Environment per service (applied last).
    pub service_env: BTreeMap<Service, BTreeMap<String, String>>,
    /// Discord's rate limits in the emulator (on by default; benchmarks turn them off).
    pub discord_rate_limits: bool,
    /// Where the service binaries are.
    pub binaries: Binaries,
    /// Parent of the work directory.
    pub work_root: PathBuf,
    /// How long each service may take to report ready.
    pub ready_timeout: Duration,
}

impl SystemOptions {
    /// Defaults: one NATS server, Discord rate limits on, binaries next to the running executable, work
    /// directory `<tmp>/flexcord-e2e/<name>`.
    pub fn new(name: &str) -> Self {
        SystemOptions {
            name: name.to_owned(),
            nats: NatsSetup::Single,
            env: BTreeMap::new(),
            service_env: BTreeMap::new(),
            discord_rate_limits: true,
            binaries: Binaries::locate(),
            work_root: std::env::temp_dir().join("flexcord-e2e"),
            ready_timeout: Duration::from_secs(90),
        }
    }

    /// Sets a variable for every service.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.insert(key.to_owned(), value.to_string());
        self
    }

    /// Sets a variable for one service.
    pub fn service_env(mut self, service: Service, key: &str, value: impl ToString) -> Self {
        self.service_env
            .entry(service)
            .or_default()
            .insert(key.to_owned(), value.to_string());
        self
    }

    /// Three-node NATS cluster with replicated streams.
    pub fn cluster(mut self) -> Self {
        self.nats = NatsSetup::Cluster;
        self
    }

    /// Turns the Discord emulator's rate limits on or off.
    pub fn discord_rate_limits(mut self, on: bool) -> Self {
        self.discord_rate_limits = on;
        self
    }

    /// Uses these binaries.
    pub fn binaries(mut self, binaries: Binaries) -> Self {
        self.binaries = binaries;
        self
    }

    /// Work directories go under `root`.
    pub fn work_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.work_root = root.into();
        self
    }

    /// Options of the fault tests: users may write fast ([`fast_users`](Self::fast_users)), webhooks
    /// Twilio gave up on are caught up every 3 s instead of 2 minutes (`WEBHOOK_RECONCILE_INTERVAL_S`),
    /// and the ack wait (how long a killed process's unacked messages wait before redelivery, during
    /// which a restarted consumer holds newer ones to keep order) is 10 s instead of 30
    /// (`BUS_ACK_WAIT_S`).
    pub fn for_faults(name: &str) -> Self {
        SystemOptions::new(name)
            .fast_users()
            .service_env(Service::WebhookReceiver, "WEBHOOK_RECONCILE_INTERVAL_S", 3)
            .env("BUS_ACK_WAIT_S", 10)
    }

    /// Lets users write fast (discord-ingress's per-user throttle raised): the conversation mixes and the
    /// benchmark send more than Discord's humans would.
    pub fn fast_users(self) -> Self {
        self.service_env(
            Service::DiscordIngress,
            "DISCORD_USER_RATE_PER_MIN",
            1_000_000,
        )
        .service_env(Service::DiscordIngress, "DISCORD_USER_BURST", 100_000)
    }
}

/// The product's channels in the Discord emulator.
#[derive(Debug, Clone, Copy)]
pub struct Channels {
    /// `#general` (where `/helpme` is run).
    pub general: u64,
    /// `#bugs`.
    pub bugs: u64,
    /// `#feature-requests`.
    pub features: u64,
    /// `#support`.
    pub support: u64,
    /// `#announcements` (read-only for members).
    pub announcements: u64,
}

/// A Discord user handed to an agent: the case, the Flex conversation and the task.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// Discord user id.
    pub user_id: u64,
    /// The user's DM channel with the bot (the conversation id).
    pub dm_channel: u64,
    /// `CASE-000123`.
    pub case_number: String,
    /// Flex conversation `CH…`.
    pub conversation_sid: String,
    /// TaskRouter task `WT…`.
    pub task_sid: String,
    /// Task attributes.
    pub task_attributes: Value,
}

/// NATS, both emulators and the five services.
pub struct System {
    /// NATS.
    pub nats: Nats,
    /// The Discord emulator.
    pub discord: RunningEmulator,
    /// The Twilio emulator.
    pub twilio: TwilioEmulator,
    /// The five services.
    pub stack: Stack,
    /// Channel ids.
    pub channels: Channels,
    /// The run's work directory.
    pub work_dir: PathBuf,
    http: reqwest::Client,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("work_dir", &self.work_dir)
            .finish()
    }
}

/// Workspace root (knowledge-base articles).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

impl System {
    /// Starts NATS, both emulators and every service; returns once each service is ready, the bot's
    /// gateway session is live and its slash commands are registered.
    pub async fn start(opts: SystemOptions) -> Result<System> {
        let work_dir = opts.work_root.join(&opts.name);
        let _ = std::fs::remove_dir_all(&work_dir);
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("creating {}", work_dir.display()))?;
        // Fail early and clearly when the binaries are missing (never skip).
        for s in Service::ALL {
            opts.binaries.path(s.binary())?;
        }

        let nats = match opts.nats {
            NatsSetup::Single => Nats::Single(NatsServer::start()?),
            NatsSetup::Cluster => {
                let mut cluster = NatsCluster::start()?;
                cluster
                    .wait_for_meta_leader(Duration::from_secs(30))
                    .context("the NATS cluster elected no JetStream meta leader")?;
                Nats::Cluster(cluster)
            }
        };

        let mut dcfg = EmulatorConfig::new(BOT_TOKEN)
            .with_heartbeat_interval_ms(5_000)
            .with_channels(vec![
                ChannelSpec::text("general"),
                ChannelSpec::text("bugs"),
                ChannelSpec::text("feature-requests"),
                ChannelSpec::text("support"),
                ChannelSpec::announcement("announcements"),
            ]);
        dcfg.rate_limits.enabled = opts.discord_rate_limits;
        let discord = Emulator::start(dcfg).await?;
        let control = discord.control();
        let channel = |name: &str| {
            control
                .channel_id(name)
                .ok_or_else(|| anyhow!("the Discord emulator has no #{name}"))
        };
        let channels = Channels {
            general: channel("general")?,
            bugs: channel("bugs")?,
            features: channel("feature-requests")?,
            support: channel("support")?,
            announcements: channel("announcements")?,
        };

        let twilio = TwilioEmulator::start(twilio_emulator::EmulatorConfig::default()).await?;

        let mut env = BTreeMap::new();
        if opts.nats == NatsSetup::Cluster {
            env.insert("NATS_REPLICAS".to_owned(), "3".to_owned());
        }
        env.extend(opts.env.clone());
        let stack = Stack::new(StackConfig {
            nats_urls: nats.urls(),
            discord: DiscordEndpoints {
                api_base: discord.rest_base().to_owned(),
                gateway_url: Some(discord.gateway_url().to_owned()),
                token: BOT_TOKEN.to_owned(),
                application_id: control.application_id(),
                guild_id: control.guild_id(),
                channels: BTreeMap::from([
                    ("announcements".to_owned(), channels.announcements),
                    ("bugs".to_owned(), channels.bugs),
                    ("features".to_owned(), channels.features),
                    ("support".to_owned(), channels.support),
                ]),
            },
            twilio: TwilioEndpoints {
                base_url: Some(twilio.base_url().to_owned()),
                account_sid: twilio.account_sid().to_owned(),
                auth_token: twilio.auth_token().to_owned(),
                workspace_sid: format!("WS{}", "a".repeat(32)),
                workflow_sid: format!("WW{}", "b".repeat(32)),
            },
            binaries: opts.binaries.clone(),
            work_dir: work_dir.clone(),
            repo_root: repo_root(),
            extra_env: env,
            service_env: opts.service_env.clone(),
            webhook_public_url: None,
            bind_host: "127.0.0.1".to_owned(),
        })?;
        let mut sys = System {
            nats,
            discord,
            twilio,
            stack,
            channels,
            work_dir,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        };
        let started = sys.stack.start_all(opts.ready_timeout).await;
        if let Err(e) = started {
            return Err(sys.failure(e));
        }
        let control = sys.control();
        if let Err(e) = control.wait_for_session(Duration::from_secs(60)).await {
            return Err(sys.failure(format!("discord-ingress opened no gateway session: {e}")));
        }
        if let Err(e) = control.wait_for_commands(3, Duration::from_secs(60)).await {
            return Err(sys.failure(format!("the slash commands were not registered: {e}")));
        }
        Ok(sys)
    }

    /// The Discord emulator's control handle.
    pub fn control(&self) -> Control {
        self.discord.control()
    }

    /// Restarts a service after a crash or stop (same ports) and waits until it is ready.
    pub async fn restart(&mut self, s: Service) -> Result<()> {
        self.stack.start(s)?;
        if let Err(e) = self.stack.wait_ready(s, Duration::from_secs(90)).await {
            return Err(self.failure(format!("{} did not come back: {e}", s.binary())));
        }
        Ok(())
    }

    /// An error carrying `what`, the end of every service's log and of the NATS log.
    pub fn failure(&self, what: impl std::fmt::Display) -> anyhow::Error {
        let nodes: Vec<&NatsServer> = match &self.nats {
            Nats::Single(s) => vec![s],
            Nats::Cluster(c) => c.nodes.iter().collect(),
        };
        let nats = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                // Route reconnect attempts to a dead node would hide everything else.
                let text = n.log_text();
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|l| !l.contains("Error trying to connect to route"))
                    .collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                // Keep the whole log next to the services' logs.
                let _ = std::fs::write(
                    self.work_dir
                        .join("logs")
                        .join(format!("nats-server-n{i}.log")),
                    &text,
                );
                format!(
                    "--- nats-server n{i} (last 30 lines, route retries left out) ---\n{tail}\n"
                )
            })
            .collect::<String>();
        anyhow!(
            "{what}\n(work directory {})\n{}{nats}",
            self.work_dir.display(),
            self.stack.log_tails(25)
        )
    }

    /// Every stream with its replica count and current leader, as the server reports them.
    pub async fn streams(&self) -> Result<Vec<(String, usize, String)>> {
        use futures::StreamExt;
        let client = async_nats::connect(self.nats.urls()).await?;
        let js = async_nats::jetstream::new(client);
        let mut names = js.stream_names();
        let mut out = Vec::new();
        while let Some(name) = names.next().await {
            let name = name.map_err(|e| anyhow!("listing streams: {e}"))?;
            let mut stream = js
                .get_stream(&name)
                .await
                .map_err(|e| anyhow!("stream {name}: {e}"))?;
            let info = stream
                .info()
                .await
                .map_err(|e| anyhow!("stream {name} info: {e}"))?;
            let leader = info
                .cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .unwrap_or_default();
            out.push((name, info.config.num_replicas, leader));
        }
        out.sort();
        Ok(out)
    }

    /// Messages in the dead-letter stream: (original subject, reason), oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<(String, String)>> {
        let client = async_nats::connect(self.nats.urls()).await?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js
            .get_stream(flexcord_bus::topology::DEAD_LETTER.name)
            .await
            .map_err(|e| anyhow!("dead-letter stream: {e}"))?;
        let info = stream
            .info()
            .await
            .map_err(|e| anyhow!("dead-letter stream info: {e}"))?;
        let (first, last, count) = (
            info.state.first_sequence,
            info.state.last_sequence,
            info.state.messages,
        );
        let mut out = Vec::new();
        if count == 0 {
            return Ok(out);
        }
        for seq in first..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                let header = |name: &str| {
                    m.headers
                        .get(name)
                        .map(|v| v.as_str().to_owned())
                        .unwrap_or_default()
                };
                out.push((
                    header(flexcord_bus::headers::DLQ_SUBJECT),
                    header(flexcord_bus::headers::DLQ_REASON),
                ));
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------------ Discord side

    /// Creates a guild member with a Discord client locale (`en-US`, `fr`, …).
    pub fn new_user(&self, name: &str, locale: &str) -> Result<User> {
        Ok(self
            .control()
            .create_user(NewUser::new(name).locale(locale))?)
    }

    /// The user's DM channel with the bot, once one exists.
    pub fn dm_channel(&self, user_id: u64) -> Option<u64> {
        self.control().dm_channel(user_id)
    }

    /// The bot's messages in the user's DM (empty before the DM exists).
    pub fn bot_dms(&self, user_id: u64) -> Vec<MessageRecord> {
        self.dm_channel(user_id)
            .map(|c| self.control().bot_messages(c))
            .unwrap_or_default()
    }

    /// Sends a DM as the user.
    pub fn send_dm(&self, user_id: u64, text: &str) -> Result<PostedMessage> {
        Ok(self.control().send_dm(user_id, UserMessage::text(text))?)
    }

    /// Sends a DM with one file.
    pub fn send_dm_with_file(
        &self,
        user_id: u64,
        text: &str,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<PostedMessage> {
        Ok(self.control().send_dm(
            user_id,
            UserMessage::text(text)
                .with_file(discord_emulator::FileUpload::new(file_name, bytes.to_vec())),
        )?)
    }

    /// Waits until `check` finds what it wants among the bot's DMs to the user.
    pub async fn wait_dm<T>(
        &self,
        user_id: u64,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[MessageRecord]) -> Option<T>,
    ) -> Result<T> {
        let waited = self
            .control()
            .wait_until(timeout, what, |c| {
                let msgs = c
                    .dm_channel(user_id)
                    .map(|ch| c.bot_messages(ch))
                    .unwrap_or_default();
                check(&msgs)
            })
            .await;
        match waited {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failure(format!(
                "waiting for {what}: {e}\nbot DMs seen:\n{}",
                describe_messages(&self.bot_dms(user_id))
            ))),
        }
    }

    /// Waits for a bot DM whose content contains `needle`; returns it.
    pub async fn wait_dm_containing(
        &self,
        user_id: u64,
        needle: &str,
        timeout: Duration,
    ) -> Result<MessageRecord> {
        self.wait_dm(
            user_id,
            &format!("a bot DM containing {needle:?}"),
            timeout,
            |msgs| msgs.iter().find(|m| m.content.contains(needle)).cloned(),
        )
        .await
    }

    /// Waits until the bot has posted at least `n` messages in a channel matching `pred`.
    pub async fn wait_channel(
        &self,
        channel_id: u64,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&[MessageRecord]) -> bool,
    ) -> Result<Vec<MessageRecord>> {
        let waited = self
            .control()
            .wait_until(timeout, what, |c| {
                let msgs = c.bot_messages(channel_id);
                check(&msgs).then_some(msgs)
            })
            .await;
        match waited {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failure(format!(
                "waiting for {what}: {e}\nbot messages in the channel:\n{}",
                describe_messages(&self.control().bot_messages(channel_id))
            ))),
        }
    }

    /// Clicks a button (by `custom_id`) under the newest bot DM that has it.
    pub fn click(&self, user_id: u64, custom_id: &str) -> Result<()> {
        let dm = self
            .dm_channel(user_id)
            .ok_or_else(|| anyhow!("user {user_id} has no DM"))?;
        let msg = self
            .control()
            .bot_messages(dm)
            .into_iter()
            .rev()
            .find(|m| buttons(m).iter().any(|(_, id)| id == custom_id))
            .ok_or_else(|| anyhow!("no bot DM with a button {custom_id:?}"))?;
        self.control()
            .click_button(ButtonClick::new(user_id, dm, msg.id, custom_id))?;
        Ok(())
    }

    /// `/helpme` (or its localized name) in `#general`; waits for the interaction's answer and the DM
    /// greeting, and returns both.
    pub async fn helpme(
        &self,
        user_id: u64,
        command_name: &str,
        locale: &str,
    ) -> Result<(discord_emulator::InteractionRecord, MessageRecord)> {
        let before = self.bot_dms(user_id).len();
        let control = self.control();
        let ix = control.run_command(
            SlashCommand::in_channel(user_id, self.channels.general, command_name).locale(locale),
        )?;
        let answered = control
            .wait_for_interaction_response(ix.id, Duration::from_secs(30))
            .await;
        let record = match answered {
            Ok(r) => r,
            Err(e) => return Err(self.failure(format!("/{command_name} got no answer: {e}"))),
        };
        let greeting = self
            .wait_dm(
                user_id,
                "the /helpme greeting",
                Duration::from_secs(60),
                |msgs| msgs.get(before).cloned(),
            )
            .await?;
        Ok((record, greeting))
    }

    /// The user asks for a person in a DM; waits for the "case created" DM, the Flex task, and returns
    /// the hand-off.
    pub async fn request_agent(&self, user_id: u64, text: &str) -> Result<Handoff> {
        let before = self.bot_dms(user_id).len();
        let posted = self.send_dm(user_id, text)?;
        self.handoff_started(user_id, posted.channel_id, before, Duration::from_secs(90))
            .await
    }

    /// Waits for the hand-off of a user who already asked: the "case created" DM (after the first
    /// `skip` bot DMs) and the Flex task.
    pub async fn handoff_started(
        &self,
        user_id: u64,
        dm_channel: u64,
        skip: usize,
        timeout: Duration,
    ) -> Result<Handoff> {
        let case_number = self
            .wait_dm(user_id, "the \"case created\" DM", timeout, |msgs| {
                msgs.iter()
                    .skip(skip)
                    .filter(|m| m.content.contains("created") || m.content.contains("créé"))
                    .find_map(|m| case_number_in(&m.content))
            })
            .await?;
        let task = self
            .wait_task(user_id, &case_number, timeout)
            .await
            .map_err(|e| self.failure(e))?;
        Ok(Handoff {
            user_id,
            dm_channel,
            case_number,
            conversation_sid: task.conversation_sid.clone(),
            task_sid: task.task_sid.clone(),
            task_attributes: task.attributes,
        })
    }

    /// Waits for the Flex task of a user's case.
    pub async fn wait_task(
        &self,
        user_id: u64,
        case_number: &str,
        timeout: Duration,
    ) -> Result<TaskView> {
        let uid = user_id.to_string();
        flexcord_harness::eventually(timeout, || async {
            self.twilio.tasks().into_iter().find(|t| {
                t.attributes.get("discordUserId").and_then(Value::as_str) == Some(uid.as_str())
                    && t.attributes.get("caseNumber").and_then(Value::as_str) == Some(case_number)
            })
        })
        .await
        .ok_or_else(|| anyhow!("no Flex task for user {user_id} and case {case_number}"))
    }

    /// The Flex task of a user's case, if it exists yet.
    pub fn task_of(&self, user_id: u64, case_number: &str) -> Option<TaskView> {
        let uid = user_id.to_string();
        self.twilio.tasks().into_iter().find(|t| {
            t.attributes.get("discordUserId").and_then(Value::as_str) == Some(uid.as_str())
                && t.attributes.get("caseNumber").and_then(Value::as_str) == Some(case_number)
        })
    }

    // ------------------------------------------------------------------ Flex side

    /// The agent accepts the hand-off's task; waits for "<name> … joined" in the user's DM. Returns the
    /// agent's identity.
    pub async fn accept(&self, h: &Handoff, agent_name: &str) -> Result<String> {
        let identity = format!("agent_{}", agent_name.to_lowercase());
        self.twilio
            .accept_task(&h.task_sid, &identity, agent_name)
            .map_err(|e| anyhow!("accepting {}: {e:?}", h.task_sid))?;
        self.wait_dm_containing(
            h.user_id,
            &format!("**{agent_name}**"),
            Duration::from_secs(60),
        )
        .await?;
        Ok(identity)
    }

    /// The conversation as the agent sees it.
    pub fn agent_view(&self, conversation_sid: &str) -> Option<AgentConversation> {
        self.twilio.conversation(conversation_sid)
    }

    /// Waits until `check` finds what it wants in the agent's view of a conversation.
    pub async fn wait_agent<T>(
        &self,
        conversation_sid: &str,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&AgentConversation) -> Option<T>,
    ) -> Result<T> {
        let found = flexcord_harness::eventually(timeout, || {
            let v = self.agent_view(conversation_sid).and_then(|c| check(&c));
            async move { v }
        })
        .await;
        match found {
            Some(v) => Ok(v),
            None => Err(self.failure(format!(
                "waiting for {what} in Flex conversation {conversation_sid}\nthe agent sees:\n{}",
                self.agent_view(conversation_sid)
                    .map(|c| describe_agent_view(&c))
                    .unwrap_or_else(|| "(no such conversation)".into())
            ))),
        }
    }

    // ------------------------------------------------------------------ case API

    /// `GET /cases/{number}` with the stack's bearer token.
    pub async fn case(&self, number: &str) -> Result<Value> {
        let url = format!("{}/cases/{number}", self.stack.case_api_url());
        let r = self
            .http
            .get(&url)
            .bearer_auth(self.stack.case_api_token())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {url}: {status} {body}");
        }
        Ok(body)
    }

    /// `PATCH /cases/{number}` (what an agent does from the case page or a tool).
    pub async fn patch_case(&self, number: &str, body: &Value) -> Result<Value> {
        let url = format!("{}/cases/{number}", self.stack.case_api_url());
        let r = self
            .http
            .patch(&url)
            .bearer_auth(self.stack.case_api_token())
            .json(body)
            .send()
            .await
            .with_context(|| format!("PATCH {url}"))?;
        let status = r.status();
        let answer: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("PATCH {url}: {status} {answer}");
        }
        Ok(answer)
    }

    /// Waits until the case satisfies `check`.
    pub async fn wait_case(
        &self,
        number: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let found = flexcord_harness::eventually(timeout, || async {
            self.case(number).await.ok().filter(|c| check(c))
        })
        .await;
        match found {
            Some(v) => Ok(v),
            None => Err(self.failure(format!(
                "waiting for case {number} to show {what}; it is:\n{}",
                self.case(number)
                    .await
                    .map(|v| serde_json::to_string_pretty(&v).unwrap_or_default())
                    .unwrap_or_else(|e| e.to_string())
            ))),
        }
    }
}

/// Customer messages (written by twilio-egress for Discord messages) in the agent's view, in order.
pub fn customer_messages(c: &AgentConversation) -> Vec<&AgentMessage> {
    c.messages
        .iter()
        .filter(|m| {
            m.author.starts_with(CUSTOMER_PREFIX) && m.attributes.get("discordMessageId").is_some()
        })
        .collect()
}

/// The first `CASE-<digits>` in a text.
pub fn case_number_in(text: &str) -> Option<String> {
    let start = text.find("CASE-")?;
    let digits: String = text[start + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then(|| format!("CASE-{digits}"))
}

/// (label, custom_id) of every button of a message.
pub fn buttons(m: &MessageRecord) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for row in &m.components {
        for b in row
            .get("components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = b.get("custom_id").and_then(Value::as_str) {
                let label = b.get("label").and_then(Value::as_str).unwrap_or("");
                out.push((label.to_owned(), id.to_owned()));
            }
        }
    }
    out
}

/// One line per message (content, embeds' titles, buttons), for failure messages.
pub fn describe_messages(msgs: &[MessageRecord]) -> String {
    msgs.iter()
        .map(|m| {
            let titles: Vec<&str> = m
                .embeds
                .iter()
                .filter_map(|e| e.get("title").and_then(Value::as_str))
                .collect();
            format!(
                "  [{}{}] {:?} embeds={:?} buttons={:?}",
                m.id,
                if m.deleted { " deleted" } else { "" },
                m.content,
                titles,
                buttons(m)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line per message of the agent's view, for failure messages.
pub fn describe_agent_view(c: &AgentConversation) -> String {
    let mut out = format!(
        "  state={} participants={:?}\n",
        c.state,
        c.participants
            .iter()
            .map(|p| p.identity.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    );
    for m in &c.messages {
        out.push_str(&format!(
            "  #{} {}: {:?} media={} attrs={}\n",
            m.index,
            m.author,
            m.body,
            m.media.len(),
            m.attributes
        ));
    }
    out
}
