//! Gateway sessions and live connections: sequence numbers, the resume buffer, intent filtering
//! and fan-out of dispatches.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::records::GatewayStatus;

/// GUILDS intent.
pub const INTENT_GUILDS: u64 = 1 << 0;
/// GUILD_MEMBERS (privileged).
pub const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
/// GUILD_PRESENCES (privileged).
pub const INTENT_GUILD_PRESENCES: u64 = 1 << 8;
/// GUILD_MESSAGES.
pub const INTENT_GUILD_MESSAGES: u64 = 1 << 9;
/// GUILD_MESSAGE_TYPING.
pub const INTENT_GUILD_MESSAGE_TYPING: u64 = 1 << 11;
/// DIRECT_MESSAGES.
pub const INTENT_DIRECT_MESSAGES: u64 = 1 << 12;
/// DIRECT_MESSAGE_TYPING.
pub const INTENT_DIRECT_MESSAGE_TYPING: u64 = 1 << 14;
/// MESSAGE_CONTENT (privileged).
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;
/// Every intent bit Discord defines (up to DIRECT_MESSAGE_POLLS, 1 << 25).
pub const INTENTS_KNOWN: u64 = (1 << 26) - 1;
/// Privileged intents.
pub const INTENTS_PRIVILEGED: u64 =
    INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT;

/// What a connection task is told to do.
#[derive(Debug)]
pub(crate) enum ConnCommand {
    /// Send this text frame.
    Frame(String),
    /// Send a close frame with this code and stop.
    Close(u16, String),
    /// Drop the TCP connection without a close frame.
    Kill,
}

/// Which intents gate an event, and whether content is subject to MESSAGE_CONTENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Always delivered (interactions, READY...).
    Always,
    /// Needs GUILDS (channel events).
    Guilds,
    /// Needs GUILD_MEMBERS (member events).
    GuildMembers,
    /// A guild message; `content_exempt` when written by the bot or mentioning it.
    GuildMessage { content_exempt: bool },
    /// A DM message (content always delivered).
    DmMessage,
    /// Typing in a guild channel.
    GuildTyping,
    /// Typing in a DM.
    DmTyping,
}

#[derive(Debug)]
struct ConnEntry {
    tx: UnboundedSender<ConnCommand>,
    session_id: Option<String>,
}

#[derive(Debug)]
struct Session {
    intents: u64,
    seq: u64,
    buffer: VecDeque<(u64, String)>,
    conn: Option<u64>,
}

/// Why a resume failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeError {
    /// Unknown or invalidated session.
    UnknownSession,
    /// The client's seq is older than the buffer.
    TooOld,
}

/// Session registry.
#[derive(Debug)]
pub(crate) struct GatewayHub {
    conns: HashMap<u64, ConnEntry>,
    sessions: HashMap<String, Session>,
    next_conn: u64,
    next_session: u64,
    buffer_cap: usize,
    pub refuse_until: Option<Instant>,
    pub heartbeat_acks: bool,
    pub status: GatewayStatus,
}

/// Close codes after which the emulator forgets the session (the client must identify again).
pub(crate) fn close_invalidates_session(code: u16) -> bool {
    matches!(code, 4004 | 4007 | 4009 | 4010 | 4011 | 4012 | 4013 | 4014)
}

impl GatewayHub {
    pub fn new(buffer_cap: usize) -> Self {
        Self {
            conns: HashMap::new(),
            sessions: HashMap::new(),
            next_conn: 0,
            next_session: 0,
            buffer_cap: buffer_cap.max(1),
            refuse_until: None,
            heartbeat_acks: true,
            status: GatewayStatus::default(),
        }
    }

    /// Clears fault switches (not sessions or connections).
    pub fn reset_controls(&mut self) {
        self.refuse_until = None;
        self.heartbeat_acks = true;
    }

    /// Registers a new connection.
    pub fn register(&mut self, tx: UnboundedSender<ConnCommand>) -> u64 {
        self.next_conn += 1;
        self.conns.insert(
            self.next_conn,
            ConnEntry {
                tx,
                session_id: None,
            },
        );
        self.status.connections_total += 1;
        self.status.open_connections = self.conns.len() as u32;
        self.next_conn
    }

    /// Forgets a connection (its session stays resumable).
    pub fn detach(&mut self, conn_id: u64) {
        if let Some(entry) = self.conns.remove(&conn_id) {
            if let Some(sid) = entry.session_id {
                if let Some(s) = self.sessions.get_mut(&sid) {
                    if s.conn == Some(conn_id) {
                        s.conn = None;
                    }
                }
            }
        }
        self.refresh_counts();
    }

    fn refresh_counts(&mut self) {
        self.status.open_connections = self.conns.len() as u32;
        self.status.live_sessions =
            self.sessions.values().filter(|s| s.conn.is_some()).count() as u32;
    }

    /// True when reconnects are currently refused.
    pub fn refusing(&mut self) -> bool {
        match self.refuse_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.refuse_until = None;
                false
            }
            None => false,
        }
    }

    /// Creates a session for an identified connection, replacing any earlier session (Discord
    /// allows one session per shard; this emulator runs one shard).
    pub fn create_session(&mut self, conn_id: u64, intents: u64) -> String {
        self.next_session += 1;
        let sid = format!("emu{:016x}{:08x}", rand_u64(), self.next_session);
        let stale: Vec<String> = self.sessions.keys().cloned().collect();
        for old in stale {
            if let Some(s) = self.sessions.remove(&old) {
                if let Some(c) = s.conn {
                    if c != conn_id {
                        if let Some(e) = self.conns.get(&c) {
                            let _ =
                                e.tx.send(ConnCommand::Close(4009, "Session replaced".into()));
                        }
                    }
                }
            }
        }
        self.sessions.insert(
            sid.clone(),
            Session {
                intents,
                seq: 0,
                buffer: VecDeque::new(),
                conn: Some(conn_id),
            },
        );
        if let Some(e) = self.conns.get_mut(&conn_id) {
            e.session_id = Some(sid.clone());
        }
        self.status.identifies += 1;
        self.status.last_intents = Some(intents);
        self.refresh_counts();
        sid
    }

    /// Sends one dispatch to one session regardless of intents (READY, GUILD_CREATE).
    pub fn send_to_session(&mut self, sid: &str, t: &str, d: &Value) {
        let body = d.to_string();
        if let Some(s) = self.sessions.get_mut(sid) {
            let conn = s.conn;
            let frame = push_frame(s, self.buffer_cap, t, &body);
            self.status.dispatches += 1;
            if let Some(c) = conn {
                send(&self.conns, c, frame);
            }
        }
    }

    /// Fans a dispatch out to every session whose intents allow it. Disconnected sessions buffer
    /// it for a resume. Returns how many sessions got it.
    pub fn dispatch(&mut self, t: &str, d: &Value, scope: Scope) -> usize {
        let full = d.to_string();
        let mut blanked: Option<String> = None;
        let mut delivered = 0;
        for s in self.sessions.values_mut() {
            let body = match deliver(s.intents, scope) {
                Delivery::No => continue,
                Delivery::Full => full.as_str(),
                Delivery::Blanked => blanked
                    .get_or_insert_with(|| blank_content(d).to_string())
                    .as_str(),
            };
            let conn = s.conn;
            let frame = push_frame(s, self.buffer_cap, t, body);
            if let Some(c) = conn {
                send(&self.conns, c, frame);
            }
            delivered += 1;
            self.status.dispatches += 1;
        }
        delivered
    }

    /// Resumes `sid` on `conn_id`: replays buffered dispatches after `seq`, then RESUMED.
    pub fn resume(&mut self, conn_id: u64, sid: &str, seq: u64) -> Result<(), ResumeError> {
        let Some(s) = self.sessions.get_mut(sid) else {
            return Err(ResumeError::UnknownSession);
        };
        if seq > s.seq {
            return Err(ResumeError::UnknownSession);
        }
        let oldest = s.buffer.front().map(|(n, _)| *n).unwrap_or(s.seq + 1);
        if seq + 1 < oldest && seq < s.seq {
            return Err(ResumeError::TooOld);
        }
        if let Some(old) = s.conn.replace(conn_id) {
            if old != conn_id {
                if let Some(e) = self.conns.get(&old) {
                    let _ = e.tx.send(ConnCommand::Kill);
                }
            }
        }
        let replay: Vec<String> = s
            .buffer
            .iter()
            .filter(|(n, _)| *n > seq)
            .map(|(_, f)| f.clone())
            .collect();
        self.status.replayed += replay.len() as u64;
        for f in replay {
            send(&self.conns, conn_id, f);
        }
        let frame = push_frame(s, self.buffer_cap, "RESUMED", "{}");
        send(&self.conns, conn_id, frame);
        if let Some(e) = self.conns.get_mut(&conn_id) {
            e.session_id = Some(sid.to_string());
        }
        self.status.resumes += 1;
        self.refresh_counts();
        Ok(())
    }

    /// Sends a raw frame to every live connection (op 7, op 9...).
    pub fn broadcast_raw(&mut self, frame: &str) {
        for e in self.conns.values() {
            let _ = e.tx.send(ConnCommand::Frame(frame.to_string()));
        }
    }

    /// Closes (or kills, `code = None`) every connection.
    pub fn drop_all(&mut self, code: Option<u16>, reason: &str) {
        for e in self.conns.values() {
            let cmd = match code {
                Some(c) => ConnCommand::Close(c, reason.to_string()),
                None => ConnCommand::Kill,
            };
            let _ = e.tx.send(cmd);
        }
        if let Some(c) = code {
            if close_invalidates_session(c) {
                self.sessions.clear();
            }
        }
    }

    /// Forgets all sessions (a following resume gets op 9).
    pub fn invalidate_sessions(&mut self) {
        self.sessions.clear();
        self.refresh_counts();
    }

    /// Records a close the connection task sent on its own.
    pub fn note_close(&mut self, code: u16) {
        self.status.closes_sent.push(code);
    }

    /// Current session's intents (for tests that check Identify).
    pub fn has_live_session(&self) -> bool {
        self.sessions.values().any(|s| s.conn.is_some())
    }
}

enum Delivery {
    No,
    Full,
    Blanked,
}

fn deliver(intents: u64, scope: Scope) -> Delivery {
    let has = |bit: u64| intents & bit != 0;
    match scope {
        Scope::Always => Delivery::Full,
        Scope::Guilds if has(INTENT_GUILDS) => Delivery::Full,
        Scope::GuildMembers if has(INTENT_GUILD_MEMBERS) => Delivery::Full,
        Scope::GuildMessage { content_exempt } if has(INTENT_GUILD_MESSAGES) => {
            if content_exempt || has(INTENT_MESSAGE_CONTENT) {
                Delivery::Full
            } else {
                Delivery::Blanked
            }
        }
        Scope::DmMessage if has(INTENT_DIRECT_MESSAGES) => Delivery::Full,
        Scope::GuildTyping if has(INTENT_GUILD_MESSAGE_TYPING) => Delivery::Full,
        Scope::DmTyping if has(INTENT_DIRECT_MESSAGE_TYPING) => Delivery::Full,
        _ => Delivery::No,
    }
}

/// What Discord does without MESSAGE_CONTENT: empty content, embeds, attachments, components.
pub(crate) fn blank_content(d: &Value) -> Value {
    let mut v = d.clone();
    if let Some(m) = v.as_object_mut() {
        for (k, empty) in [
            ("content", Value::String(String::new())),
            ("embeds", Value::Array(Vec::new())),
            ("attachments", Value::Array(Vec::new())),
            ("components", Value::Array(Vec::new())),
        ] {
            if m.contains_key(k) {
                m.insert(k.to_string(), empty);
            }
        }
        m.remove("poll");
    }
    v
}

fn push_frame(s: &mut Session, cap: usize, t: &str, body: &str) -> String {
    s.seq += 1;
    let frame = format!(r#"{{"op":0,"s":{},"t":"{}","d":{}}}"#, s.seq, t, body);
    s.buffer.push_back((s.seq, frame.clone()));
    while s.buffer.len() > cap {
        s.buffer.pop_front();
    }
    frame
}

fn send(conns: &HashMap<u64, ConnEntry>, conn_id: u64, frame: String) {
    if let Some(e) = conns.get(&conn_id) {
        let _ = e.tx.send(ConnCommand::Frame(frame));
    }
}

fn rand_u64() -> u64 {
    let u = uuid::Uuid::new_v4();
    let b = u.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;
    use tokio::sync::mpsc;

    fn frames(rx: &mut mpsc::UnboundedReceiver<ConnCommand>) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(c) = rx.try_recv() {
            if let ConnCommand::Frame(f) = c {
                out.push(serde_json::from_str(&f).unwrap());
            }
        }
        out
    }

    #[test]
    fn resume_replays_missed_dispatches_with_original_seq() {
        let mut hub = GatewayHub::new(100);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let c1 = hub.register(tx);
        let sid = hub.create_session(c1, INTENT_GUILD_MESSAGES | INTENT_DIRECT_MESSAGES);
        hub.send_to_session(&sid, "READY", &json!({}));
        hub.dispatch("MESSAGE_CREATE", &json!({"n": 1}), Scope::DmMessage);
        assert_eq!(
            frames(&mut rx)
                .iter()
                .map(|f| f["s"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        hub.detach(c1);
        hub.dispatch("MESSAGE_CREATE", &json!({"n": 2}), Scope::DmMessage);
        hub.dispatch("MESSAGE_CREATE", &json!({"n": 3}), Scope::DmMessage);
        let (tx2, mut rx2) = mpsc::unbounded_channel();
        let c2 = hub.register(tx2);
        hub.resume(c2, &sid, 2).unwrap();
        let got = frames(&mut rx2);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0]["s"].as_u64(), got[0]["d"]["n"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(
            (got[1]["s"].as_u64(), got[1]["d"]["n"].as_u64()),
            (Some(4), Some(3))
        );
        assert_eq!(
            (got[2]["s"].as_u64(), got[2]["t"].as_str()),
            (Some(5), Some("RESUMED"))
        );
        assert_eq!(hub.resume(c2, "nope", 1), Err(ResumeError::UnknownSession));
    }

    #[test]
    fn message_content_blanking_follows_intents() {
        let mut hub = GatewayHub::new(10);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let c = hub.register(tx);
        hub.create_session(c, INTENT_GUILD_MESSAGES);
        let d = json!({"content": "secret", "embeds": [{"title": "x"}], "attachments": [], "components": []});
        hub.dispatch(
            "MESSAGE_CREATE",
            &d,
            Scope::GuildMessage {
                content_exempt: false,
            },
        );
        hub.dispatch(
            "MESSAGE_CREATE",
            &d,
            Scope::GuildMessage {
                content_exempt: true,
            },
        );
        hub.dispatch("MESSAGE_CREATE", &d, Scope::DmMessage);
        let got = frames(&mut rx);
        assert_eq!(got.len(), 2, "DM dropped without DIRECT_MESSAGES");
        assert_eq!(got[0]["d"]["content"], "");
        assert_eq!(got[0]["d"]["embeds"], json!([]));
        assert_eq!(got[1]["d"]["content"], "secret");
    }
}
