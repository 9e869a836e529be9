//! Copying user files from Discord's CDN (whose URLs expire) into the JetStream object store before
//! the event is published, with a size cap.

use std::sync::Arc;
use std::time::Duration;

use flexcord_bus::Objects;
use flexcord_proto::v1::Attachment;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::mapping::IncomingAttachment;

/// Attachment copier.
#[derive(Clone)]
pub struct Attachments {
    http: reqwest::Client,
    objects: Objects,
    max_bytes: u64,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments")
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// Why a download did not give the file.
#[derive(Debug)]
enum Fetch {
    TooLarge,
    Retry(String),
    Fail(String),
}

/// The object name of a Discord attachment: `discord/<attachment id>/<file name>`.
pub fn object_name(attachment_id: u64, filename: &str) -> String {
    let clean: String = filename
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .take(100)
        .collect();
    let clean = if clean.trim().is_empty() || clean == "." || clean == ".." {
        "file".to_owned()
    } else {
        clean
    };
    format!("discord/{attachment_id}/{clean}")
}

impl Attachments {
    /// A copier storing into `objects`, refusing files over `max_bytes`, with `downloads` at once.
    pub fn new(http: reqwest::Client, objects: Objects, max_bytes: u64, downloads: usize) -> Self {
        Attachments {
            http,
            objects,
            max_bytes,
            permits: Arc::new(Semaphore::new(downloads.max(1))),
        }
    }

    /// The size cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Copies one attachment. The result says whether it was stored (`object_name`), was over the cap
    /// (`too_large`), or could not be copied (both empty/false; `source_url` is kept).
    pub async fn copy(&self, a: &IncomingAttachment) -> Attachment {
        let mut out = Attachment {
            discord_attachment_id: a.id,
            filename: a.filename.clone(),
            content_type: a.content_type.clone().unwrap_or_default(),
            size_bytes: a.size,
            object_name: String::new(),
            source_url: a.url.clone(),
            too_large: false,
        };
        if a.size > self.max_bytes {
            out.too_large = true;
            return out;
        }
        let name = object_name(a.id, &a.filename);
        match self.objects.exists(&name).await {
            Ok(true) => {
                out.object_name = name;
                return out;
            }
            Ok(false) => {}
            Err(e) => {
                warn!(attachment_id = a.id, error = %e, "Cannot check the object store; downloading again.")
            }
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return out;
        };
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        let bytes = loop {
            attempt += 1;
            match self.fetch(&a.url).await {
                Ok((bytes, content_type)) => {
                    if out.content_type.is_empty() {
                        out.content_type = content_type.unwrap_or_default();
                    }
                    break bytes;
                }
                Err(Fetch::TooLarge) => {
                    out.too_large = true;
                    return out;
                }
                Err(Fetch::Retry(reason)) if attempt < 3 => {
                    warn!(attachment_id = a.id, %reason, attempt, "Attachment download failed; retrying.");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(Fetch::Retry(reason) | Fetch::Fail(reason)) => {
                    warn!(attachment_id = a.id, %reason, "Attachment could not be copied; publishing without it.");
                    return out;
                }
            }
        };
        out.size_bytes = bytes.len() as u64;
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=3 {
            match self.objects.put(&name, &bytes).await {
                Ok(()) => {
                    out.object_name = name;
                    return out;
                }
                Err(e) => {
                    warn!(attachment_id = a.id, error = %e, attempt, "Cannot store an attachment.");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        out
    }

    async fn fetch(&self, url: &str) -> Result<(Vec<u8>, Option<String>), Fetch> {
        let parsed = url::Url::parse(url).map_err(|e| Fetch::Fail(format!("bad URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Fetch::Fail("not an http(s) URL".to_owned()));
        }
        let resp = self
            .http
            .get(parsed)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| Fetch::Retry(e.without_url().to_string()))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Fetch::Retry(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Fetch::Fail(format!("HTTP {status}")));
        }
        if resp.content_length().is_some_and(|l| l > self.max_bytes) {
            return Err(Fetch::TooLarge);
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| Fetch::Retry(e.without_url().to_string()))?;
            if (body.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(Fetch::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, content_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_safe() {
        assert_eq!(object_name(5, "a.png"), "discord/5/a.png");
        assert_eq!(object_name(5, "../x/y"), "discord/5/.._x_y");
        assert_eq!(object_name(5, ".."), "discord/5/file");
        assert_eq!(object_name(5, ""), "discord/5/file");
    }
}
