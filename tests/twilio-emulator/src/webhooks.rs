//! Webhook dispatcher: signed form-encoded deliveries, ordered per conversation, with retries
//! and a switch to hold or fail deliveries (to simulate a down or missed webhook target).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexcord_twilio_api::{form, signature};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::store::Outgoing;

/// How the dispatcher treats deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WebhookMode {
    /// Deliver normally.
    #[default]
    Deliver,
    /// Queue deliveries until the mode changes (nothing is lost).
    Hold,
    /// Every attempt fails as if the target were down; after the retries the event is dropped.
    Fail,
}

/// Outcome of one delivery (after its retries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// Sequence number (order of completion).
    pub seq: u64,
    /// `WH...`.
    pub webhook_sid: String,
    /// `CH...`.
    pub conversation_sid: String,
    /// `onMessageAdded`, ...
    pub event_type: String,
    /// URL posted to.
    pub url: String,
    /// Attempts made (1 + retries).
    pub attempts: u32,
    /// HTTP status of the last attempt, if any response arrived.
    pub status: Option<u16>,
    /// Whether the target answered 2xx.
    pub delivered: bool,
    /// Last error, if not delivered.
    pub error: Option<String>,
    /// The form parameters of the first attempt.
    pub params: Vec<(String, String)>,
}

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Key for `X-Twilio-Signature`.
    pub auth_token: String,
    /// Per-attempt timeout (Twilio: 5 s).
    pub timeout: Duration,
    /// Retries after a failed attempt (`RetryCount` counts them).
    pub retries: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
}

/// Sends deliveries; one worker task per conversation keeps them in order.
pub struct Dispatcher {
    settings: DispatchSettings,
    http: reqwest::Client,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Outgoing>>>,
    mode: watch::Sender<WebhookMode>,
    log: Mutex<Vec<DeliveryRecord>>,
    notify: tokio::sync::Notify,
    shutdown: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("mode", &*self.mode.borrow())
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher whose workers run on `runtime` until `shutdown`.
    pub fn new(
        settings: DispatchSettings,
        shutdown: CancellationToken,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Arc::new(Self {
            settings,
            http,
            queues: Mutex::new(HashMap::new()),
            mode: watch::channel(WebhookMode::Deliver).0,
            log: Mutex::new(Vec::new()),
            notify: tokio::sync::Notify::new(),
            shutdown,
            runtime,
        }))
    }

    /// Sets the delivery mode.
    pub fn set_mode(&self, mode: WebhookMode) {
        self.mode.send_replace(mode);
    }

    /// The delivery mode.
    pub fn mode(&self) -> WebhookMode {
        *self.mode.borrow()
    }

    /// Completed deliveries so far.
    pub fn records(&self) -> Vec<DeliveryRecord> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets the delivery log.
    pub fn clear_records(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Waits until `pred` holds for the delivery log, or `timeout` passes; returns the log.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[DeliveryRecord]) -> bool,
    ) -> Result<Vec<DeliveryRecord>, Vec<DeliveryRecord>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            {
                let log = self.log.lock().unwrap_or_else(|e| e.into_inner());
                if pred(&log) {
                    return Ok(log.clone());
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(self.records());
            }
        }
    }

    /// Queues deliveries (in order, per conversation).
    pub fn enqueue(self: &Arc<Self>, items: Vec<Outgoing>) {
        if items.is_empty() {
            return;
        }
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for item in items {
            let key = item.conversation_sid.clone();
            let tx = queues.entry(key).or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let me = Arc::clone(self);
                self.runtime.spawn(async move { me.worker(rx).await });
                tx
            });
            if let Err(mpsc::error::SendError(item)) = tx.send(item) {
                tracing::warn!(conversation_sid = %item.conversation_sid, "Webhook queue closed; delivery dropped.");
            }
        }
    }

    async fn worker(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
        loop {
            let item = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                item = rx.recv() => match item { Some(i) => i, None => return },
            };
            let record = self.deliver(item).await;
            let Some(record) = record else { return };
            {
                let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
                let mut record = record;
                record.seq = log.len() as u64 + 1;
                log.push(record);
            }
            self.notify.notify_waiters();
        }
    }

    /// Delivers one event with retries; `None` when shutting down.
    async fn deliver(&self, item: Outgoing) -> Option<DeliveryRecord> {
        let mut mode_rx = self.mode.subscribe();
        let mut attempts = 0;
        let mut first_params = Vec::new();
        let mut last_status = None;
        let mut last_error = None;
        for attempt in 0..=self.settings.retries {
            // Hold: wait until the mode changes.
            loop {
                if *mode_rx.borrow_and_update() != WebhookMode::Hold {
                    break;
                }
                tokio::select! {
                    _ = self.shutdown.cancelled() => return None,
                    r = mode_rx.changed() => if r.is_err() { return None },
                }
            }
            if attempt > 0 {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(self.settings.retry_delay) => {}
                }
            }
            attempts += 1;
            let mut event = item.event.clone();
            event.common_mut().retry_count = Some(attempt);
            let params = event.to_params();
            if attempt == 0 {
                first_params = params.clone();
            }
            if *mode_rx.borrow() == WebhookMode::Fail {
                last_status = None;
                last_error = Some("webhook target down (simulated)".to_owned());
                continue;
            }
            match self.send(&item, &params).await {
                Ok(status) if (200..300).contains(&status) => {
                    return Some(self.record(
                        &item,
                        attempts,
                        Some(status),
                        true,
                        None,
                        first_params,
                    ));
                }
                Ok(status) => {
                    last_status = Some(status);
                    last_error = Some(format!("HTTP {status}"));
                }
                Err(e) => {
                    last_status = None;
                    last_error = Some(e);
                }
            }
        }
        tracing::info!(
            webhook_sid = %item.webhook_sid,
            event_type = item.event.event_type(),
            attempts,
            "Webhook delivery failed after retries."
        );
        Some(self.record(
            &item,
            attempts,
            last_status,
            false,
            last_error,
            first_params,
        ))
    }

    fn record(
        &self,
        item: &Outgoing,
        attempts: u32,
        status: Option<u16>,
        delivered: bool,
        error: Option<String>,
        params: Vec<(String, String)>,
    ) -> DeliveryRecord {
        DeliveryRecord {
            seq: 0,
            webhook_sid: item.webhook_sid.clone(),
            conversation_sid: item.conversation_sid.clone(),
            event_type: item.event.event_type().to_owned(),
            url: item.url.clone(),
            attempts,
            status,
            delivered,
            error,
            params,
        }
    }

    async fn send(&self, item: &Outgoing, params: &[(String, String)]) -> Result<u16, String> {
        let token = &self.settings.auth_token;
        let req = if item.method == "GET" {
            let sep = if item.url.contains('?') { '&' } else { '?' };
            let url = format!("{}{}{}", item.url, sep, form::encode_pairs(params));
            let sig = signature::compute(token, &url, &[]);
            self.http.get(url).header(signature::HEADER, sig)
        } else {
            let sig = signature::compute(token, &item.url, params);
            self.http
                .post(&item.url)
                .header(signature::HEADER, sig)
                .header(
                    "Content-Type",
                    "application/x-www-form-urlencoded; charset=utf-8",
                )
                .body(form::encode_pairs(params))
        };
        let resp = req.send().await.map_err(|e| e.to_string())?;
        Ok(resp.status().as_u16())
    }
}
