//! Control API (`/__emulator/...`, JSON, no auth): agent actions, faults, counters, webhooks.

use std::sync::Arc;

use base64::Engine as _;
use http::{Method, Request};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::FaultSpec;
use crate::routes::segments;
use crate::server::{error_response, json_response, read_body, Resp};
use crate::store::ApiError;
use crate::webhooks::WebhookMode;
use crate::{AgentMediaInput, AgentMessageInput, Shared};

#[derive(Deserialize)]
struct AcceptBody {
    identity: String,
    #[serde(default)]
    friendly_name: Option<String>,
}

#[derive(Deserialize)]
struct MediaBody {
    content_type: String,
    #[serde(default)]
    filename: Option<String>,
    data_base64: String,
}

#[derive(Deserialize)]
struct AgentMessageBody {
    identity: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    attributes: Option<Value>,
    #[serde(default)]
    media: Option<MediaBody>,
}

#[derive(Deserialize)]
struct TransferBody {
    identity: String,
}

#[derive(Deserialize, Default)]
struct CloseBody {
    #[serde(default)]
    identity: Option<String>,
}

#[derive(Deserialize)]
struct ModeBody {
    mode: WebhookMode,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let segs = segments(req.uri().path());
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let result: Result<(u16, Value), ApiError> = (|| match (method.clone(), &s[1..]) {
        (Method::GET, ["health"]) => Ok((200, json!({"ok": true}))),
        (Method::GET, ["tasks"]) => Ok((
            200,
            json!({"tasks": shared.read_store(|st| st.pending_tasks())}),
        )),
        (Method::GET, ["tasks", "all"]) => Ok((
            200,
            json!({"tasks": shared.read_store(|st| st.all_tasks())}),
        )),
        (Method::POST, ["tasks", wt, "accept"]) => {
            let b: AcceptBody = parse(&body)?;
            let name = b.friendly_name.unwrap_or_else(|| b.identity.clone());
            Ok((200, shared.accept_task(wt, &b.identity, &name)?))
        }
        (Method::GET, ["conversations"]) => {
            Ok((200, json!({"conversations": shared.agent_view(None)})))
        }
        (Method::GET, ["conversations", id]) => {
            match shared.agent_view(Some(id)).into_iter().next() {
                Some(c) => Ok((200, json!(c))),
                None => Err(ApiError::not_found(&format!(
                    "/__emulator/conversations/{id}"
                ))),
            }
        }
        (Method::POST, ["conversations", id, "messages"]) => {
            let b: AgentMessageBody = parse(&body)?;
            let media = match b.media {
                Some(m) => Some(AgentMediaInput {
                    content_type: m.content_type,
                    filename: m.filename,
                    bytes: base64::engine::general_purpose::STANDARD
                        .decode(m.data_base64.as_bytes())
                        .map_err(|_| ApiError::invalid("media.data_base64 is not base64"))?,
                }),
                None => None,
            };
            let input = AgentMessageInput {
                body: b.body,
                attributes: b.attributes,
                media,
            };
            Ok((201, shared.agent_send(id, &b.identity, &input)?))
        }
        (Method::POST, ["conversations", id, "transfer"]) => {
            let b: TransferBody = parse(&body)?;
            Ok((200, shared.agent_transfer(id, &b.identity)?))
        }
        (Method::POST, ["conversations", id, "close"]) => {
            let b: CloseBody = if body.is_empty() {
                CloseBody::default()
            } else {
                parse(&body)?
            };
            Ok((200, shared.agent_close(id, b.identity.as_deref())?))
        }
        (Method::GET, ["counters"]) => Ok((200, json!(shared.counters.snapshot()))),
        (Method::POST, ["counters", "reset"]) => {
            shared.counters.reset();
            Ok((200, json!({"ok": true})))
        }
        (Method::GET, ["faults"]) => {
            let list: Vec<Value> = shared
                .faults
                .list()
                .into_iter()
                .map(|(id, spec)| json!({"id": id, "spec": spec}))
                .collect();
            Ok((200, json!({"faults": list})))
        }
        (Method::POST, ["faults"]) => {
            let spec: FaultSpec = parse(&body)?;
            let id = shared
                .faults
                .add(spec)
                .map_err(|e| ApiError::invalid(e.to_string()))?;
            Ok((201, json!({"id": id})))
        }
        (Method::DELETE, ["faults"]) => {
            shared.faults.clear();
            Ok((200, json!({"ok": true})))
        }
        (Method::DELETE, ["faults", id]) => {
            let id: u64 = id
                .parse()
                .map_err(|_| ApiError::invalid("fault id must be an integer"))?;
            if shared.faults.remove(id) {
                Ok((200, json!({"ok": true})))
            } else {
                Err(ApiError::not_found(&format!("/__emulator/faults/{id}")))
            }
        }
        (Method::GET, ["webhooks", "mode"]) => Ok((200, json!({"mode": shared.dispatcher.mode()}))),
        (Method::POST, ["webhooks", "mode"]) => {
            let b: ModeBody = parse(&body)?;
            shared.dispatcher.set_mode(b.mode);
            Ok((200, json!({"mode": b.mode})))
        }
        (Method::GET, ["webhooks", "deliveries"]) => {
            Ok((200, json!({"deliveries": shared.dispatcher.records()})))
        }
        (Method::DELETE, ["webhooks", "deliveries"]) => {
            shared.dispatcher.clear_records();
            Ok((200, json!({"ok": true})))
        }
        _ => Err(ApiError::not_found(&format!(
            "/__emulator/{}",
            s[1..].join("/")
        ))),
    })();
    match result {
        Ok((status, v)) => json_response(status, &v),
        Err(e) => error_response(&e),
    }
}
