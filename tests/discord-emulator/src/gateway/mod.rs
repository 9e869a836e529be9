//! The gateway WebSocket: Hello, Identify (READY + GUILD_CREATE), heartbeats, Resume, close
//! codes. Accepts any path (serenity connects to `/?v=10`).

pub(crate) mod hub;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::api_error::ApiError;
use crate::payloads;
use crate::state::Emu;
use hub::{ConnCommand, ResumeError};

/// Gateway send limit: 120 client payloads per 60 s.
const CLIENT_FRAMES_PER_MINUTE: u32 = 120;

/// Entry point for every non-API GET: a WebSocket upgrade becomes a gateway connection.
pub(crate) async fn ws_entry(
    AxState(emu): AxState<Arc<Emu>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let Ok(ws) = ws else {
        return ApiError::not_found().into_response();
    };
    let refused = emu.mutate(|st| {
        let r = st.gateway.refusing();
        if r {
            st.gateway.status.refused += 1;
        }
        r
    });
    if refused {
        debug!("Gateway connection refused by control switch.");
        return (StatusCode::SERVICE_UNAVAILABLE, "gateway unavailable").into_response();
    }
    let version_ok = query.get("v").is_none_or(|v| v == "10" || v == "9");
    let encoding_ok = query.get("encoding").is_none_or(|e| e == "json");
    ws.on_upgrade(move |socket| run_connection(emu, socket, version_ok, encoding_ok))
}

enum Step {
    Continue,
    Reply(String),
    Close(u16, &'static str),
}

async fn run_connection(emu: Arc<Emu>, mut socket: WebSocket, version_ok: bool, encoding_ok: bool) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_id = emu.mutate(|st| st.gateway.register(tx));
    debug!(conn_id, "Gateway connection opened.");
    let mut conn = ConnState {
        conn_id,
        session: None,
        window_start: Instant::now(),
        frames_in_window: 0,
    };
    let hello = payloads::hello_json(emu.cfg.heartbeat_interval_ms);
    let mut close: Option<(u16, String)> = if !version_ok {
        Some((4012, "Invalid API version".into()))
    } else if !encoding_ok {
        Some((4002, "Invalid encoding".into()))
    } else {
        None
    };
    if close.is_none() && socket.send(Message::Text(hello.into())).await.is_err() {
        emu.mutate(|st| st.gateway.detach(conn_id));
        return;
    }
    let mut kill = false;
    while close.is_none() && !kill {
        tokio::select! {
            _ = emu.shutdown.cancelled() => { close = Some((1001, "Emulator shutting down".into())); }
            cmd = rx.recv() => match cmd {
                Some(ConnCommand::Frame(f)) => {
                    if socket.send(Message::Text(f.into())).await.is_err() { break; }
                }
                Some(ConnCommand::Close(code, reason)) => { close = Some((code, reason)); }
                Some(ConnCommand::Kill) | None => { kill = true; }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => match handle_frame(&emu, &mut conn, text.as_str()) {
                    Step::Continue => {}
                    Step::Reply(frame) => {
                        if socket.send(Message::Text(frame.into())).await.is_err() { break; }
                    }
                    Step::Close(code, reason) => { close = Some((code, reason.to_string())); }
                },
                Some(Ok(Message::Binary(_))) => { close = Some((4002, "Decode error".into())); }
                Some(Ok(_)) => {}
            },
        }
    }
    if let Some((code, reason)) = close.filter(|_| !kill) {
        emu.mutate(|st| {
            st.gateway.note_close(code);
            if hub::close_invalidates_session(code) {
                st.gateway.invalidate_sessions();
            }
        });
        debug!(conn_id, code, "Gateway connection closed by the emulator.");
        let _ = socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
        // Give the client a moment to read the close frame before the socket drops.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            while let Some(Ok(_)) = socket.recv().await {}
        })
        .await;
    }
    emu.mutate(|st| st.gateway.detach(conn_id));
    debug!(conn_id, kill, "Gateway connection ended.");
}

struct ConnState {
    conn_id: u64,
    session: Option<String>,
    window_start: Instant,
    frames_in_window: u32,
}

fn handle_frame(emu: &Emu, conn: &mut ConnState, text: &str) -> Step {
    if conn.window_start.elapsed() > Duration::from_secs(60) {
        conn.window_start = Instant::now();
        conn.frames_in_window = 0;
    }
    conn.frames_in_window += 1;
    if conn.frames_in_window > CLIENT_FRAMES_PER_MINUTE {
        return Step::Close(4008, "Rate limited.");
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        warn!(
            conn_id = conn.conn_id,
            "Gateway payload is not JSON; closing with 4002."
        );
        return Step::Close(4002, "Error while decoding payload.");
    };
    let Some(op) = v.get("op").and_then(Value::as_u64) else {
        return Step::Close(4002, "Error while decoding payload.");
    };
    let d = v.get("d").cloned().unwrap_or(Value::Null);
    match op {
        1 => {
            let ack = emu.mutate(|st| {
                st.gateway.status.heartbeats += 1;
                st.gateway.heartbeat_acks
            });
            if ack {
                Step::Reply(json!({"op": 11, "d": null}).to_string())
            } else {
                Step::Continue
            }
        }
        2 => identify(emu, conn, &d),
        6 => resume(emu, conn, &d),
        3 | 4 | 8 | 31 if conn.session.is_some() => Step::Continue,
        3 | 4 | 8 | 31 => Step::Close(4003, "Not authenticated."),
        _ => Step::Close(4001, "Unknown opcode."),
    }
}

fn check_token(emu: &Emu, d: &Value) -> bool {
    let token = d.get("token").and_then(Value::as_str).unwrap_or_default();
    let token = token.strip_prefix("Bot ").unwrap_or(token);
    emu.cfg.token_matches(token)
}

fn identify(emu: &Emu, conn: &mut ConnState, d: &Value) -> Step {
    if conn.session.is_some() {
        return Step::Close(4005, "Already authenticated.");
    }
    if !d.is_object() {
        return Step::Close(4002, "Error while decoding payload.");
    }
    if !check_token(emu, d) {
        info!(
            conn_id = conn.conn_id,
            "Identify with a wrong token; closing with 4004."
        );
        return Step::Close(4004, "Authentication failed.");
    }
    let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
        return Step::Close(4013, "Invalid intent(s).");
    };
    if intents & !hub::INTENTS_KNOWN != 0 {
        return Step::Close(4013, "Invalid intent(s).");
    }
    if intents & hub::INTENTS_PRIVILEGED != 0 && !emu.cfg.privileged_intents_allowed {
        return Step::Close(4014, "Disallowed intent(s).");
    }
    let shard = match d.get("shard") {
        None | Some(Value::Null) => [0, 1],
        Some(s) => {
            let id = s.get(0).and_then(Value::as_u64);
            let count = s.get(1).and_then(Value::as_u64);
            match (id, count) {
                (Some(id), Some(count)) if count >= 1 && id < count => [id, count],
                _ => return Step::Close(4010, "Invalid shard."),
            }
        }
    };
    if shard[1] > 1 {
        return Step::Close(4011, "Sharding required.");
    }
    let sid = emu.mutate(|st| {
        let sid = st.gateway.create_session(conn.conn_id, intents);
        let ready = payloads::ready_json(st, &emu.cfg, &sid, &emu.gateway_url, shard);
        st.gateway.send_to_session(&sid, "READY", &ready);
        let guild = payloads::guild_create_json(st, &emu.cfg);
        st.gateway.send_to_session(&sid, "GUILD_CREATE", &guild);
        sid
    });
    info!(
        conn_id = conn.conn_id,
        intents, "Gateway session identified."
    );
    conn.session = Some(sid);
    Step::Continue
}

fn resume(emu: &Emu, conn: &mut ConnState, d: &Value) -> Step {
    if conn.session.is_some() {
        return Step::Close(4005, "Already authenticated.");
    }
    if !check_token(emu, d) {
        return Step::Close(4004, "Authentication failed.");
    }
    let sid = d
        .get("session_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let result = emu.mutate(|st| st.gateway.resume(conn.conn_id, &sid, seq));
    match result {
        Ok(()) => {
            info!(conn_id = conn.conn_id, seq, "Gateway session resumed.");
            conn.session = Some(sid);
            Step::Continue
        }
        Err(e) => {
            let reason = match e {
                ResumeError::TooOld => "too old",
                ResumeError::UnknownSession => "unknown session",
            };
            info!(
                conn_id = conn.conn_id,
                reason, "Resume refused; sending Invalid Session."
            );
            Step::Reply(json!({"op": 9, "d": false}).to_string())
        }
    }
}
