//! Reading request bodies: JSON, or multipart with `payload_json` and `files[n]` parts.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::api_error::ApiError;
use crate::state::Emu;
use crate::validation::Upload;

/// A parsed request body.
#[derive(Debug, Default)]
pub(crate) struct Payload {
    pub json: Value,
    pub files: Vec<Upload>,
}

fn bad_request(msg: &str) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        0,
        format!("400: Bad Request ({msg})"),
    )
}

/// Reads and parses the body; bodies over the request limit get 413/40005.
pub(crate) async fn read_payload(emu: &Emu, req: Request) -> Result<Payload, ApiError> {
    let limit = emu.cfg.max_request_size as usize;
    let (parts, body) = req.into_parts();
    let bytes: Bytes = to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::entity_too_large())?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let req = Request::from_parts(parts, Body::from(bytes));
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad_request(&e.body_text()))?;
        let mut json: Option<Value> = None;
        let mut fields = Map::new();
        let mut files = Vec::new();
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| bad_request(&e.body_text()))?
        {
            let name = field.name().unwrap_or_default().to_string();
            let filename = field.file_name().map(str::to_string);
            let ct = field.content_type().map(str::to_string);
            let data = field
                .bytes()
                .await
                .map_err(|e| bad_request(&e.body_text()))?;
            if name == "payload_json" {
                json = Some(serde_json::from_slice(&data).map_err(|_| ApiError::invalid_json())?);
            } else if let Some(filename) = filename {
                let index = name
                    .strip_prefix("files[")
                    .and_then(|r| r.strip_suffix(']'))
                    .and_then(|n| n.parse::<u64>().ok());
                files.push(Upload {
                    index,
                    filename,
                    content_type: ct,
                    bytes: data,
                });
            } else {
                fields.insert(
                    name,
                    Value::String(String::from_utf8_lossy(&data).into_owned()),
                );
            }
        }
        let mut json = json.unwrap_or(Value::Object(Map::new()));
        if let Some(obj) = json.as_object_mut() {
            for (k, v) in fields {
                obj.entry(k).or_insert(v);
            }
        }
        return Ok(Payload { json, files });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Payload {
            json: Value::Null,
            files: Vec::new(),
        });
    }
    let json = serde_json::from_slice(&bytes).map_err(|_| ApiError::invalid_json())?;
    Ok(Payload {
        json,
        files: Vec::new(),
    })
}
