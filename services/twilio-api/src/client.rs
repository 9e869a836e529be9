//! The HTTP plumbing shared by every resource: auth, form posts, JSON decoding, paging.

use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::config::TwilioConfig;
use crate::error::TwilioError;
use crate::form::Form;

/// Header that makes a REST action fire webhooks (`true`) or not.
pub const WEBHOOK_ENABLED_HEADER: &str = "X-Twilio-Webhook-Enabled";

/// Which Twilio product a path belongs to (each has its own base URL).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Product {
    Conversations,
    Flex,
    Mcs,
}

/// Async Twilio REST client (one pooled reqwest client; cheap to clone).
#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: reqwest::Client,
    config: Arc<TwilioConfig>,
}

/// One page of a list response.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// Items of this page.
    pub items: Vec<T>,
    /// Absolute URL of the next page, `None` on the last one.
    pub next_page_url: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    meta: Option<Meta>,
    #[serde(
        alias = "messages",
        alias = "participants",
        alias = "conversations",
        alias = "webhooks",
        alias = "channels",
        default = "Vec::new"
    )]
    items: Vec<T>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    next_page_url: Option<String>,
}

impl TwilioClient {
    /// Builds a client (rustls, pooled connections, the configured timeout).
    pub fn new(config: TwilioConfig) -> Result<Self, TwilioError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)))
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("flexcord-twilio-api/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TwilioError::InvalidRequest(e.to_string()))?;
        Ok(Self {
            http,
            config: Arc::new(config),
        })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &TwilioConfig {
        &self.config
    }

    /// Absolute URL for `segments` under a product's base URL (each segment percent-encoded).
    pub(crate) fn url(&self, product: Product, segments: &[&str]) -> Result<url::Url, TwilioError> {
        let base = match product {
            Product::Conversations => &self.config.conversations_base_url,
            Product::Flex => &self.config.flex_base_url,
            Product::Mcs => &self.config.mcs_base_url,
        };
        let mut url = url::Url::parse(base)
            .map_err(|e| TwilioError::InvalidRequest(format!("base URL {base}: {e}")))?;
        {
            let mut path = url.path_segments_mut().map_err(|_| {
                TwilioError::InvalidRequest(format!("base URL {base} cannot have paths"))
            })?;
            path.pop_if_empty();
            for s in segments {
                if s.is_empty() {
                    return Err(TwilioError::InvalidRequest(
                        "empty path segment (missing sid?)".into(),
                    ));
                }
                path.push(s);
            }
        }
        Ok(url)
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let (user, pass) = self.config.basic_auth();
        req.basic_auth(user, Some(pass))
            .header(ACCEPT, "application/json")
    }

    /// Sends a request; returns status-checked body bytes or a classified error.
    async fn execute(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<(HeaderMap, Bytes), TwilioError> {
        let resp = self
            .authed(req)
            .send()
            .await
            .map_err(|e| TwilioError::from_transport(&e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| TwilioError::from_transport(&e))?;
        if (200..300).contains(&status) {
            return Ok((headers, body));
        }
        let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
        let err = TwilioError::from_response(status, retry_after, &body);
        tracing::debug!(status, error = %err, "Twilio call failed.");
        Err(err)
    }

    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, TwilioError> {
        serde_json::from_slice(body).map_err(|e| TwilioError::Decode(e.to_string()))
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: url::Url,
    ) -> Result<T, TwilioError> {
        let (_, body) = self.execute(self.http.get(url)).await?;
        Self::decode(&body)
    }

    pub(crate) async fn get_bytes(
        &self,
        url: url::Url,
        with_auth: bool,
    ) -> Result<(Option<String>, Bytes), TwilioError> {
        let (headers, body) = if with_auth {
            self.execute(self.http.get(url)).await?
        } else {
            // Pre-signed URLs (e.g. `content_direct_temporary`) reject extra credentials.
            let resp = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| TwilioError::from_transport(&e))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map_err(|e| TwilioError::from_transport(&e))?;
            if !(200..300).contains(&status) {
                let ra = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok());
                return Err(TwilioError::from_response(status, ra, &body));
            }
            (headers, body)
        };
        let ct = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((ct, body))
    }

    pub(crate) async fn post_form<T: DeserializeOwned>(
        &self,
        url: url::Url,
        form: &Form,
        webhook_enabled: Option<bool>,
    ) -> Result<T, TwilioError> {
        let mut req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.encode());
        if let Some(on) = webhook_enabled {
            req = req.header(WEBHOOK_ENABLED_HEADER, if on { "true" } else { "false" });
        }
        let (_, body) = self.execute(req).await?;
        Self::decode(&body)
    }

    pub(crate) async fn post_bytes<T: DeserializeOwned>(
        &self,
        url: url::Url,
        content_type: &str,
        extra: &[(&str, String)],
        body: Bytes,
    ) -> Result<T, TwilioError> {
        let mut req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .body(body);
        for (k, v) in extra {
            req = req.header(*k, v);
        }
        let (_, body) = self.execute(req).await?;
        Self::decode(&body)
    }

    pub(crate) async fn delete(
        &self,
        url: url::Url,
        webhook_enabled: Option<bool>,
    ) -> Result<(), TwilioError> {
        let mut req = self.http.delete(url);
        if let Some(on) = webhook_enabled {
            req = req.header(WEBHOOK_ENABLED_HEADER, if on { "true" } else { "false" });
        }
        self.execute(req).await.map(|_| ())
    }

    /// Fetches one page of a list endpoint (first page URL or a `next_page_url`).
    pub(crate) async fn get_page<T: DeserializeOwned>(
        &self,
        url: url::Url,
    ) -> Result<Page<T>, TwilioError> {
        let env: Envelope<T> = self.get_json(url).await?;
        Ok(Page {
            items: env.items,
            next_page_url: env
                .meta
                .and_then(|m| m.next_page_url)
                .filter(|u| !u.is_empty()),
        })
    }

    /// Fetches every page starting at `url`, following `next_page_url` verbatim.
    pub(crate) async fn get_all<T: DeserializeOwned>(
        &self,
        url: url::Url,
    ) -> Result<Vec<T>, TwilioError> {
        let mut out = Vec::new();
        let mut next = Some(url);
        while let Some(u) = next.take() {
            let page: Page<T> = self.get_page(u).await?;
            out.extend(page.items);
            next = match page.next_page_url {
                Some(n) => Some(parse_next(&n)?),
                None => None,
            };
        }
        Ok(out)
    }
}

/// Parses a `next_page_url` from a response.
pub(crate) fn parse_next(url: &str) -> Result<url::Url, TwilioError> {
    url::Url::parse(url).map_err(|e| TwilioError::Decode(format!("bad next_page_url {url:?}: {e}")))
}
