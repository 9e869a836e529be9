use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use flexcord_harness::free_port;

use crate::binaries::{Binaries, BinariesError};
use crate::process::ChildProcess;

/// One of the five services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// The Discord side.
    DiscordIngress,
    /// The brain.
    BotRouter,
    /// Twilio REST calls.
    TwilioEgress,
    /// Twilio webhooks.
    WebhookReceiver,
    /// Cases.
    CaseService,
}

impl Service {
    /// Every service, in start order (case-service first: the others send it commands).
    pub const ALL: [Service; 5] = [
        Service::CaseService,
        Service::BotRouter,
        Service::TwilioEgress,
        Service::WebhookReceiver,
        Service::DiscordIngress,
    ];

    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Service::DiscordIngress => "discord-ingress",
            Service::BotRouter => "bot-router",
            Service::TwilioEgress => "twilio-egress",
            Service::WebhookReceiver => "webhook-receiver",
            Service::CaseService => "case-service",
        }
    }

    /// Parses a binary name.
    pub fn from_name(name: &str) -> Option<Self> {
        Service::ALL.into_iter().find(|s| s.binary() == name)
    }
}

/// How to reach Discord (the emulator or the real API).
#[derive(Debug, Clone)]
pub struct DiscordEndpoints {
    /// Origin for REST (`http://127.0.0.1:P` for the emulator, `https://discord.com` for real).
    pub api_base: String,
    /// Gateway URL override (`None`: ask `GET /gateway`).
    pub gateway_url: Option<String>,
    /// Bot token.
    pub token: String,
    /// Application id.
    pub application_id: u64,
    /// Guild id.
    pub guild_id: u64,
    /// Channel ids by role: `announcements`, `bugs`, `features`, `support`.
    pub channels: BTreeMap<String, u64>,
}

/// How to reach Twilio (the emulator or the real API).
#[derive(Debug, Clone)]
pub struct TwilioEndpoints {
    /// One base URL for Conversations, Flex and media (`None`: the real hosts).
    pub base_url: Option<String>,
    /// Account SID.
    pub account_sid: String,
    /// Auth token (also the webhook signing key).
    pub auth_token: String,
    /// TaskRouter workspace.
    pub workspace_sid: String,
    /// TaskRouter workflow.
    pub workflow_sid: String,
}

/// What a stack runs against.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// NATS server URLs.
    pub nats_urls: Vec<String>,
    /// Discord endpoints.
    pub discord: DiscordEndpoints,
    /// Twilio endpoints.
    pub twilio: TwilioEndpoints,
    /// Where binaries are.
    pub binaries: Binaries,
    /// Working directory (logs, SQLite file).
    pub work_dir: PathBuf,
    /// Repository root (knowledge-base articles).
    pub repo_root: PathBuf,
    /// Extra environment for every service (applied last; overrides).
    pub extra_env: BTreeMap<String, String>,
    /// Extra environment per service (applied after `extra_env`).
    pub service_env: BTreeMap<Service, BTreeMap<String, String>>,
    /// Public URL of webhook-receiver as Twilio sees it (`None`: `http://127.0.0.1:<port>`).
    pub webhook_public_url: Option<String>,
    /// Bind address for public ports (`127.0.0.1` for tests and the sandbox).
    pub bind_host: String,
}

/// The stack could not be started or a service did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A binary is missing.
    #[error(transparent)]
    Binaries(#[from] BinariesError),
    /// A process or file operation failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// A service did not report ready in time.
    #[error("{service} not ready after {waited:?}: {detail}\n--- log tail ---\n{log}")]
    NotReady {
        /// Which.
        service: &'static str,
        /// How long we waited.
        waited: Duration,
        /// The last /readyz answer or error.
        detail: String,
        /// The end of its log.
        log: String,
    },
}

/// Ports of one service, allocated once for the stack's lifetime.
#[derive(Debug, Clone, Copy)]
struct Ports {
    admin: u16,
    public: Option<u16>,
}

/// The five services running as processes.
#[derive(Debug)]
pub struct Stack {
    config: StackConfig,
    ports: BTreeMap<Service, Ports>,
    running: BTreeMap<Service, ChildProcess>,
    case_api_token: String,
    http: reqwest::Client,
}

impl Stack {
    /// Prepares a stack (allocates ports); nothing runs yet.
    pub fn new(config: StackConfig) -> Result<Self, StackError> {
        let mut ports = BTreeMap::new();
        for s in Service::ALL {
            let admin = free_port().map_err(|e| StackError::Io("allocating a port".into(), e))?;
            let public = match s {
                Service::WebhookReceiver | Service::CaseService => {
                    Some(free_port().map_err(|e| StackError::Io("allocating a port".into(), e))?)
                }
                _ => None,
            };
            ports.insert(s, Ports { admin, public });
        }
        std::fs::create_dir_all(&config.work_dir)
            .map_err(|e| StackError::Io(config.work_dir.display().to_string(), e))?;
        Ok(Stack {
            config,
            ports,
            running: BTreeMap::new(),
            case_api_token: format!("sandbox-case-token-{:016x}", rand_u64()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// `http://<host>:<admin port>` of a service.
    pub fn admin_url(&self, s: Service) -> String {
        format!("http://127.0.0.1:{}", self.ports[&s].admin)
    }

    /// The case API base URL.
    pub fn case_api_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}",
            self.public_port(Service::CaseService)
        )
    }

    /// The case API bearer token.
    pub fn case_api_token(&self) -> &str {
        &self.case_api_token
    }

    /// webhook-receiver's public URL (what Twilio calls).
    pub fn webhook_public_url(&self) -> String {
        self.config.webhook_public_url.clone().unwrap_or_else(|| {
            format!(
                "http://127.0.0.1:{}",
                self.public_port(Service::WebhookReceiver)
            )
        })
    }

    fn public_port(&self, s: Service) -> u16 {
        self.ports[&s].public.unwrap_or(0)
    }

    /// The environment a service gets.
    pub fn env_for(&self, s: Service) -> Vec<(String, String)> {
        let c = &self.config;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |k: &str, v: String| {
            env.insert(k.to_owned(), v);
        };
        set("NATS_URL", c.nats_urls.join(","));
        set("ADMIN_ADDR", format!("127.0.0.1:{}", self.ports[&s].admin));
        // `E2E_SERVICE_LOG` overrides the services' log filter when diagnosing a failure.
        set(
            "RUST_LOG",
            std::env::var("E2E_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
        );
        set("NO_COLOR", "1".into());
        set("NATS_CONNECT_TIMEOUT_S", "30".into());
        match s {
            Service::DiscordIngress => {
                set("DISCORD_BOT_TOKEN", c.discord.token.clone());
                set(
                    "DISCORD_APPLICATION_ID",
                    c.discord.application_id.to_string(),
                );
                set("DISCORD_GUILD_ID", c.discord.guild_id.to_string());
                set("DISCORD_API_BASE_URL", c.discord.api_base.clone());
                if let Some(g) = &c.discord.gateway_url {
                    set("DISCORD_GATEWAY_URL", g.clone());
                }
            }
            Service::BotRouter => {
                set(
                    "KB_DIR",
                    c.repo_root
                        .join("services/knowledge-base/articles")
                        .display()
                        .to_string(),
                );
                if let Some(id) = c.discord.channels.get("announcements") {
                    set("ANNOUNCEMENTS_CHANNEL_ID", id.to_string());
                }
            }
            Service::TwilioEgress | Service::WebhookReceiver => {
                set("TWILIO_ACCOUNT_SID", c.twilio.account_sid.clone());
                set("TWILIO_AUTH_TOKEN", c.twilio.auth_token.clone());
                if let Some(base) = &c.twilio.base_url {
                    set("TWILIO_CONVERSATIONS_BASE_URL", base.clone());
                    set("TWILIO_FLEX_BASE_URL", base.clone());
                    set("TWILIO_MCS_BASE_URL", base.clone());
                }
                set("TWILIO_WORKSPACE_SID", c.twilio.workspace_sid.clone());
                set("TWILIO_WORKFLOW_SID", c.twilio.workflow_sid.clone());
                set("WEBHOOK_PUBLIC_URL", self.webhook_public_url());
                if s == Service::WebhookReceiver {
                    set(
                        "WEBHOOK_ADDR",
                        format!(
                            "{}:{}",
                            c.bind_host,
                            self.public_port(Service::WebhookReceiver)
                        ),
                    );
                }
            }
            Service::CaseService => {
                set(
                    "DATABASE_URL",
                    format!("sqlite://{}", c.work_dir.join("cases.sqlite").display()),
                );
                set(
                    "CASE_API_ADDR",
                    format!("{}:{}", c.bind_host, self.public_port(Service::CaseService)),
                );
                set("CASE_API_TOKEN", self.case_api_token.clone());
                set("CASE_PUBLIC_URL", self.case_api_url());
            }
        }
        for (k, v) in &c.extra_env {
            env.insert(k.clone(), v.clone());
        }
        if let Some(extra) = c.service_env.get(&s) {
            for (k, v) in extra {
                env.insert(k.clone(), v.clone());
            }
        }
        env.into_iter().collect()
    }

    /// Starts one service (no-op if running).
    pub fn start(&mut self, s: Service) -> Result<(), StackError> {
        if self
            .running
            .get_mut(&s)
            .is_some_and(ChildProcess::is_running)
        {
            return Ok(());
        }
        let bin = self.config.binaries.path(s.binary())?;
        let log = self.log_path(s);
        let child = ChildProcess::spawn(s.binary(), &bin, &[], &self.env_for(s), &log)
            .map_err(|e| StackError::Io(format!("spawning {}", s.binary()), e))?;
        self.running.insert(s, child);
        Ok(())
    }

    /// Starts every service and waits until each reports ready.
    pub async fn start_all(&mut self, timeout: Duration) -> Result<(), StackError> {
        for s in Service::ALL {
            self.start(s)?;
        }
        for s in Service::ALL {
            self.wait_ready(s, timeout).await?;
        }
        Ok(())
    }

    /// The log file of a service.
    pub fn log_path(&self, s: Service) -> PathBuf {
        self.config
            .work_dir
            .join("logs")
            .join(format!("{}.log", s.binary()))
    }

    /// The last `lines` lines of every service's log (running or not), for failure messages.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for s in Service::ALL {
            let text = std::fs::read_to_string(self.log_path(s)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} (last {lines} lines) ---\n{}\n",
                s.binary(),
                all[all.len().saturating_sub(lines)..].join("\n")
            ));
        }
        out
    }

    /// The process id of a running service.
    pub fn pid(&self, s: Service) -> Option<u32> {
        self.running.get(&s).and_then(ChildProcess::pid)
    }

    /// Polls `/readyz` until 200.
    pub async fn wait_ready(&mut self, s: Service, timeout: Duration) -> Result<(), StackError> {
        let url = format!("{}/readyz", self.admin_url(s));
        let started = Instant::now();
        let mut detail = String::from("no answer yet");
        while started.elapsed() < timeout {
            if let Some(child) = self.running.get_mut(&s) {
                if !child.is_running() {
                    detail = "the process exited".into();
                    break;
                }
            }
            match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => detail = r.text().await.unwrap_or_default(),
                Err(e) => detail = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = self
            .running
            .get(&s)
            .map(|c| c.log_tail(40))
            .unwrap_or_default();
        Err(StackError::NotReady {
            service: s.binary(),
            waited: started.elapsed(),
            detail,
            log,
        })
    }

    /// SIGTERM (graceful drain), SIGKILL after `grace`. Returns whether it exited gracefully.
    pub fn stop(&mut self, s: Service, grace: Duration) -> bool {
        self.running
            .remove(&s)
            .map(|mut c| c.terminate(grace))
            .unwrap_or(true)
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self, s: Service) {
        if let Some(mut c) = self.running.remove(&s) {
            c.kill();
        }
    }

    /// Stops every service gracefully, in reverse start order. Returns the services that had to be killed.
    pub fn stop_all(&mut self, grace: Duration) -> Vec<Service> {
        let mut killed = Vec::new();
        for s in Service::ALL.into_iter().rev() {
            if !self.stop(s, grace) {
                killed.push(s);
            }
        }
        killed
    }

    /// Whether a service process is running.
    pub fn is_running(&mut self, s: Service) -> bool {
        self.running
            .get_mut(&s)
            .is_some_and(ChildProcess::is_running)
    }

    /// Leaves every service running after the stack is dropped; returns (service, pid).
    pub fn detach_all(&mut self) -> Vec<(Service, u32)> {
        std::mem::take(&mut self.running)
            .into_iter()
            .map(|(s, c)| (s, c.detach()))
            .collect()
    }
}

fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
