//! Media Content Service: upload raw bytes, fetch metadata, download content.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::client::{Product, TwilioClient};
use crate::error::TwilioError;

/// `links` of a media resource.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct MediaLinks {
    /// Path or URL of the content (needs auth).
    #[serde(default)]
    pub content: Option<String>,
    /// Short-lived pre-signed URL (no auth).
    #[serde(default)]
    pub content_direct_temporary: Option<String>,
}

/// A media resource (`ME...`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Media {
    /// `ME...`.
    pub sid: String,
    /// `AC...`.
    #[serde(default)]
    pub account_sid: Option<String>,
    /// `IS...`.
    #[serde(default)]
    pub service_sid: Option<String>,
    /// `CH...` once attached to a message.
    #[serde(default)]
    pub channel_sid: Option<String>,
    /// `IM...` once attached.
    #[serde(default)]
    pub message_sid: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
    /// Uploader.
    #[serde(default)]
    pub author: Option<String>,
    /// ISO-8601.
    #[serde(default)]
    pub date_created: Option<String>,
    /// Absolute URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Content links.
    #[serde(default)]
    pub links: MediaLinks,
}

/// Downloaded media content.
#[derive(Debug, Clone)]
pub struct MediaContent {
    /// Metadata.
    pub media: Media,
    /// `Content-Type` of the download (falls back to the metadata's).
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Bytes,
}

impl TwilioClient {
    /// `POST /v1/Services/{IS}/Media` with the raw bytes as body. `filename`, when given, is
    /// sent as `Content-Disposition: attachment; filename="..."` (how MCS names REST uploads
    /// is not documented; see README).
    pub async fn upload_media(
        &self,
        chat_service_sid: &str,
        content_type: &str,
        filename: Option<&str>,
        bytes: Bytes,
    ) -> Result<Media, TwilioError> {
        if content_type
            .parse::<reqwest::header::HeaderValue>()
            .is_err()
        {
            return Err(TwilioError::InvalidRequest(format!(
                "bad content type {content_type:?}"
            )));
        }
        let url = self.url(Product::Mcs, &["v1", "Services", chat_service_sid, "Media"])?;
        let mut extra = Vec::new();
        if let Some(name) = filename {
            let clean: String = name
                .chars()
                .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
                .collect();
            extra.push((
                "Content-Disposition",
                format!("attachment; filename=\"{clean}\""),
            ));
        }
        self.post_bytes(url, content_type, &extra, bytes).await
    }

    /// `GET /v1/Services/{IS}/Media/{ME}`.
    pub async fn fetch_media(
        &self,
        chat_service_sid: &str,
        media_sid: &str,
    ) -> Result<Media, TwilioError> {
        let url = self.url(
            Product::Mcs,
            &["v1", "Services", chat_service_sid, "Media", media_sid],
        )?;
        self.get_json(url).await
    }

    /// Fetches the metadata, then the bytes: from `links.content_direct_temporary` without
    /// credentials when present, else from `links.content` with credentials.
    pub async fn download_media(
        &self,
        chat_service_sid: &str,
        media_sid: &str,
    ) -> Result<MediaContent, TwilioError> {
        let media = self.fetch_media(chat_service_sid, media_sid).await?;
        let (url, auth) = if let Some(direct) = media.links.content_direct_temporary.as_deref() {
            (parse_abs(direct)?, false)
        } else if let Some(content) = media.links.content.as_deref() {
            let url = if content.starts_with("http://") || content.starts_with("https://") {
                parse_abs(content)?
            } else {
                let base = url::Url::parse(&self.config().mcs_base_url)
                    .map_err(|e| TwilioError::InvalidRequest(e.to_string()))?;
                base.join(content)
                    .map_err(|e| TwilioError::Decode(format!("links.content: {e}")))?
            };
            (url, true)
        } else {
            return Err(TwilioError::Decode("media has no content link".into()));
        };
        let (ct, bytes) = self.get_bytes(url, auth).await?;
        Ok(MediaContent {
            content_type: ct.or_else(|| media.content_type.clone()),
            media,
            bytes,
        })
    }
}

fn parse_abs(s: &str) -> Result<url::Url, TwilioError> {
    url::Url::parse(s).map_err(|e| TwilioError::Decode(format!("media link {s:?}: {e}")))
}
