//! Standalone-binary configuration from arguments and environment, and the start-up lines it
//! prints. Arguments win over environment variables.

use std::collections::HashMap;
use std::time::Duration;

use crate::config::{ChannelSpec, EmulatorConfig};
use crate::control::NewUser;

/// Parsed binary configuration.
#[derive(Debug, Clone)]
pub struct CliConfig {
    /// Emulator configuration.
    pub emulator: EmulatorConfig,
    /// Users to create at start.
    pub users: Vec<NewUser>,
}

/// Help text.
pub const USAGE: &str = "\
discord-emulator: a Discord REST + gateway emulator for tests and sandbox runs.

Options (each also read from the environment variable in brackets; options win):
  --bind ADDR              [DISCORD_EMULATOR_BIND]          default 127.0.0.1:0
  --bot-token-file PATH    [DISCORD_EMULATOR_BOT_TOKEN_FILE] or DISCORD_EMULATOR_BOT_TOKEN (env only)
  --application-id ID      [DISCORD_EMULATOR_APPLICATION_ID]
  --guild-id ID            [DISCORD_EMULATOR_GUILD_ID]
  --guild-name NAME        [DISCORD_EMULATOR_GUILD_NAME]
  --bot-name NAME          [DISCORD_EMULATOR_BOT_NAME]
  --channels LIST          [DISCORD_EMULATOR_CHANNELS]      e.g. general,bugs,announcements:announcement
  --users LIST             [DISCORD_EMULATOR_USERS]         e.g. alice,bob:fr,carol:en-US:closed
  --heartbeat-ms N         [DISCORD_EMULATOR_HEARTBEAT_MS]  default 41250
  --rate-limits on|off     [DISCORD_EMULATOR_RATE_LIMITS]   default on
  --attachment-ttl-ms N    [DISCORD_EMULATOR_ATTACHMENT_TTL_MS]
Prints DISCORD_EMULATOR_REST=..., _GATEWAY=..., _CONTROL=... lines on stdout, then runs until SIGINT/SIGTERM.";

const KEYS: &[(&str, &str)] = &[
    ("bind", "DISCORD_EMULATOR_BIND"),
    ("bot-token-file", "DISCORD_EMULATOR_BOT_TOKEN_FILE"),
    ("application-id", "DISCORD_EMULATOR_APPLICATION_ID"),
    ("guild-id", "DISCORD_EMULATOR_GUILD_ID"),
    ("guild-name", "DISCORD_EMULATOR_GUILD_NAME"),
    ("bot-name", "DISCORD_EMULATOR_BOT_NAME"),
    ("channels", "DISCORD_EMULATOR_CHANNELS"),
    ("users", "DISCORD_EMULATOR_USERS"),
    ("heartbeat-ms", "DISCORD_EMULATOR_HEARTBEAT_MS"),
    ("rate-limits", "DISCORD_EMULATOR_RATE_LIMITS"),
    ("attachment-ttl-ms", "DISCORD_EMULATOR_ATTACHMENT_TTL_MS"),
];

/// Builds the configuration from `args` (without the program name) and an environment lookup.
/// `read_file` reads the token file.
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&str) -> std::io::Result<String>,
) -> Result<CliConfig, String> {
    let mut given: HashMap<&str, String> = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--help" || arg == "-h" {
            return Err(USAGE.to_string());
        }
        let Some(stripped) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument {arg:?}\n\n{USAGE}"));
        };
        let (key, value) = match stripped.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => {
                i += 1;
                let v = args
                    .get(i)
                    .ok_or_else(|| format!("--{stripped} needs a value"))?;
                (stripped.to_string(), v.clone())
            }
        };
        let Some((k, _)) = KEYS.iter().find(|(k, _)| *k == key) else {
            return Err(format!("unknown option --{key}\n\n{USAGE}"));
        };
        given.insert(k, value);
        i += 1;
    }
    let get = |k: &str| -> Option<String> {
        given
            .get(k)
            .cloned()
            .or_else(|| {
                KEYS.iter()
                    .find(|(key, _)| *key == k)
                    .and_then(|(_, e)| env(e))
            })
            .filter(|v| !v.is_empty())
    };
    let token = match get("bot-token-file") {
        Some(path) => read_file(&path).map_err(|e| format!("cannot read bot token file {path}: {e}"))?.trim().to_string(),
        None => env("DISCORD_EMULATOR_BOT_TOKEN")
            .filter(|t| !t.is_empty())
            .ok_or("a bot token is required: set DISCORD_EMULATOR_BOT_TOKEN or DISCORD_EMULATOR_BOT_TOKEN_FILE")?,
    };
    if token.is_empty() {
        return Err("the bot token is empty".into());
    }
    let mut cfg = EmulatorConfig::new(token);
    if let Some(b) = get("bind") {
        cfg.bind = b
            .parse()
            .map_err(|_| format!("--bind {b:?} is not an address like 127.0.0.1:8790"))?;
    }
    let id = |k: &str, v: String| {
        v.parse::<u64>()
            .map_err(|_| format!("--{k} {v:?} is not a snowflake"))
    };
    if let Some(v) = get("application-id") {
        cfg.application_id = id("application-id", v)?;
        cfg.bot_user_id = cfg.application_id;
    }
    if let Some(v) = get("guild-id") {
        cfg.guild_id = id("guild-id", v)?;
    }
    if let Some(v) = get("guild-name") {
        cfg.guild_name = v;
    }
    if let Some(v) = get("bot-name") {
        cfg.bot_username = v;
    }
    if let Some(v) = get("channels") {
        cfg.channels = parse_channels(&v)?;
    }
    if let Some(v) = get("heartbeat-ms") {
        cfg.heartbeat_interval_ms = v
            .parse()
            .map_err(|_| format!("--heartbeat-ms {v:?} is not a number"))?;
    }
    if let Some(v) = get("rate-limits") {
        cfg.rate_limits.enabled = match v.as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => return Err(format!("--rate-limits {other:?}: use on or off")),
        };
    }
    if let Some(v) = get("attachment-ttl-ms") {
        let ms: u64 = v
            .parse()
            .map_err(|_| format!("--attachment-ttl-ms {v:?} is not a number"))?;
        cfg.attachment_ttl = Some(Duration::from_millis(ms));
    }
    let users = match get("users") {
        Some(v) => parse_users(&v)?,
        None => Vec::new(),
    };
    Ok(CliConfig {
        emulator: cfg,
        users,
    })
}

fn parse_channels(list: &str) -> Result<Vec<ChannelSpec>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.split(':');
            let name = parts.next().unwrap_or_default().to_string();
            let mut spec = ChannelSpec::text(name);
            for flag in parts {
                match flag {
                    "announcement" => {
                        spec.kind = 5;
                        spec.read_only_for_everyone = true;
                    }
                    "readonly" => spec.read_only_for_everyone = true,
                    "category" => spec.kind = 4,
                    other => {
                        return Err(format!(
                            "channel flag {other:?} unknown (announcement, readonly, category)"
                        ))
                    }
                }
            }
            Ok(spec)
        })
        .collect()
}

fn parse_users(list: &str) -> Result<Vec<NewUser>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            let mut parts = entry.split(':');
            let mut u = NewUser::new(parts.next().unwrap_or_default());
            for p in parts {
                if p == "closed" {
                    u.dms_closed = true;
                } else if crate::commands::LOCALES.contains(&p) {
                    u.locale = Some(p.to_string());
                } else {
                    return Err(format!(
                        "user flag {p:?} is neither a Discord locale nor 'closed'"
                    ));
                }
            }
            Ok(u)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn args_override_env_and_token_is_required() {
        let env = |k: &str| match k {
            "DISCORD_EMULATOR_BOT_TOKEN" => Some("tok".to_string()),
            "DISCORD_EMULATOR_GUILD_NAME" => Some("From Env".to_string()),
            "DISCORD_EMULATOR_CHANNELS" => Some("a,b".to_string()),
            _ => None,
        };
        let no_file = |_: &str| -> std::io::Result<String> { Err(std::io::Error::other("no")) };
        let c = parse(
            &args(&[
                "--guild-name",
                "From Args",
                "--channels=general,news:announcement",
                "--users",
                "alice,bob:fr:closed",
            ]),
            &env,
            &no_file,
        )
        .unwrap();
        assert_eq!(c.emulator.guild_name, "From Args");
        assert_eq!(c.emulator.channels.len(), 2);
        assert_eq!(c.emulator.channels[1].kind, 5);
        assert!(c.emulator.token_matches("tok"));
        assert_eq!(c.users[1].locale.as_deref(), Some("fr"));
        assert!(c.users[1].dms_closed);
        let none = |_: &str| None;
        assert!(parse(&[], &none, &no_file)
            .unwrap_err()
            .contains("bot token is required"));
        let file = |_: &str| Ok("filetok\n".to_string());
        let c = parse(&args(&["--bot-token-file", "/x"]), &none, &file).unwrap();
        assert!(c.emulator.token_matches("filetok"));
        assert!(parse(&args(&["--nope", "1"]), &env, &no_file).is_err());
        assert!(parse(&args(&["--users", "x:zz"]), &env, &no_file).is_err());
    }
}
