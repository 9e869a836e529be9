//! Writing a message to the dead-letter stream with its original bytes, headers and the reason.

use async_nats::HeaderMap;
use bytes::Bytes;

use crate::error::BusError;
use crate::headers;
use crate::topology::DEAD_LETTER;
use crate::Bus;

/// What the dead letter records about the original message.
pub(crate) struct DeadLetter<'a> {
    pub consumer: &'a str,
    pub stream: &'a str,
    pub subject: &'a str,
    pub sequence: u64,
    pub headers: &'a HeaderMap,
    pub payload: Bytes,
    pub reason: &'a str,
    pub attempts: u32,
}

/// Publishes the dead letter and waits for the server's ack.
pub(crate) async fn publish(bus: &Bus, dl: DeadLetter<'_>) -> Result<(), BusError> {
    let mut h = HeaderMap::new();
    for (name, values) in dl.headers.iter() {
        let name: &str = name.as_ref();
        if name.eq_ignore_ascii_case(headers::MSG_ID) {
            continue;
        }
        for v in values {
            h.append(name, v.as_str());
        }
    }
    if let Some(id) = dl.headers.get(headers::MSG_ID) {
        h.insert(headers::DLQ_ORIGINAL_MSG_ID, id.as_str());
    }
    // One dead letter per original message, even if we crash after publishing it and do it again.
    h.insert(
        headers::MSG_ID,
        format!("dlq.{}.{}.{}", dl.consumer, dl.stream, dl.sequence).as_str(),
    );
    h.insert(headers::DLQ_REASON, sanitize_header(dl.reason).as_str());
    h.insert(headers::DLQ_SUBJECT, dl.subject);
    h.insert(headers::DLQ_STREAM, dl.stream);
    h.insert(headers::DLQ_SEQUENCE, dl.sequence.to_string().as_str());
    h.insert(headers::DLQ_CONSUMER, dl.consumer);
    h.insert(headers::DLQ_ATTEMPTS, dl.attempts.to_string().as_str());
    let subject = DEAD_LETTER.subject_for(dl.consumer);
    let ack = bus
        .jetstream()
        .publish_with_headers(subject.clone(), h, dl.payload)
        .await
        .map_err(|e| BusError::Publish {
            subject: subject.clone(),
            reason: e.to_string(),
        })?;
    ack.await.map(|_| ()).map_err(|e| BusError::Publish {
        subject,
        reason: e.to_string(),
    })
}

/// Header values cannot hold line breaks; keep reasons on one bounded line.
fn sanitize_header(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(1024).collect()
}
