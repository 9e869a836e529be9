//! Publishing protobuf events with `Nats-Msg-Id`, the ordering key and trace context in headers.

use async_nats::jetstream::context::PublishAckFuture;
use async_nats::HeaderMap;
use bytes::Bytes;

use crate::error::BusError;
use crate::headers;
use crate::topology::StreamSpec;
use crate::Bus;

/// The server's acknowledgement of a published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Stream sequence of the stored message.
    pub sequence: u64,
    /// True when JetStream recognised the `Nats-Msg-Id` and dropped this copy.
    pub duplicate: bool,
}

/// A publish whose server ack has not arrived yet (see [`Bus::publish_async`]).
#[must_use = "await the ack, or the publish may be lost without anyone noticing"]
pub struct PendingPublish {
    subject: String,
    ack: PublishAckFuture,
}

impl std::fmt::Debug for PendingPublish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingPublish")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl PendingPublish {
    /// Waits for the server's ack.
    pub async fn ack(self) -> Result<Published, BusError> {
        let subject = self.subject;
        self.ack
            .await
            .map(|a| Published {
                sequence: a.sequence,
                duplicate: a.duplicate,
            })
            .map_err(|e| BusError::Publish {
                subject,
                reason: e.to_string(),
            })
    }
}

/// Builds the headers of an event: dedupe id, ordering key and the current trace context.
pub fn event_headers(key: &str, msg_id: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::MSG_ID, msg_id);
    h.insert(headers::KEY, key);
    headers::inject_trace_context(&mut h);
    h
}

impl Bus {
    /// Publishes `event` on `stream` for `key` with dedupe id `msg_id`, and waits for the server's ack.
    ///
    /// A second publish with the same `msg_id` inside the dedupe window is acknowledged as a duplicate
    /// and not stored again.
    pub async fn publish<M: prost::Message>(
        &self,
        stream: &StreamSpec,
        key: &str,
        msg_id: &str,
        event: &M,
    ) -> Result<Published, BusError> {
        self.publish_async(stream, key, msg_id, event)
            .await?
            .ack()
            .await
    }

    /// Sends `event` and returns without waiting for the ack, so many publishes can be in flight.
    pub async fn publish_async<M: prost::Message>(
        &self,
        stream: &StreamSpec,
        key: &str,
        msg_id: &str,
        event: &M,
    ) -> Result<PendingPublish, BusError> {
        self.publish_raw_async(stream, key, msg_id, Bytes::from(event.encode_to_vec()))
            .await
    }

    /// Like [`publish_async`](Self::publish_async) with an already encoded payload.
    pub async fn publish_raw_async(
        &self,
        stream: &StreamSpec,
        key: &str,
        msg_id: &str,
        payload: Bytes,
    ) -> Result<PendingPublish, BusError> {
        let subject = stream.subject_for(key);
        let headers = event_headers(key, msg_id);
        let ack = self
            .jetstream()
            .publish_with_headers(subject.clone(), headers, payload)
            .await
            .map_err(|e| BusError::Publish {
                subject: subject.clone(),
                reason: e.to_string(),
            })?;
        self.metrics().published(stream.name);
        Ok(PendingPublish { subject, ack })
    }
}
