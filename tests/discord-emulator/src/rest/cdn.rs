//! The emulator's CDN: attachment bytes at `/attachments/{channel}/{id}/{filename}`.

use axum::extract::{Path, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::App;

pub(super) async fn serve(
    State(emu): App,
    Path((channel_id, attachment_id, filename)): Path<(String, String, String)>,
) -> Response {
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            "This content is no longer available.",
        )
            .into_response()
    };
    let (Ok(channel_id), Ok(attachment_id)) =
        (channel_id.parse::<u64>(), attachment_id.parse::<u64>())
    else {
        return not_found();
    };
    let st = emu.lock();
    let Some(f) = st.files.get(&attachment_id) else {
        return not_found();
    };
    if f.channel_id != channel_id || f.filename != filename {
        return not_found();
    }
    if st
        .attachment_ttl
        .is_some_and(|ttl| f.created.elapsed() > ttl)
    {
        return not_found();
    }
    let mut resp = (StatusCode::OK, f.bytes.clone()).into_response();
    let ct = f
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_string());
    if let Ok(v) = HeaderValue::from_str(&ct) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(f.bytes.len()));
    resp
}
