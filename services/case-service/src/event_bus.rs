//! case-service on the bus: the `case.cmd` consumer's handler and the `case.evt` publisher
//! the outbox relay uses.

use bytes::Bytes;
use flexcord_bus::topology::CASE_EVT;
use flexcord_bus::{Bus, Delivery, Handler, HandlerError};
use flexcord_proto::v1::CaseCommand;

use crate::commands::{ApplyError, CommandHandler};
use crate::domain::CaseNumber;
use crate::outbox::{EventPublisher, PublishError};
use crate::store::OutboxEvent;

/// Applies each `case.cmd` message; the runner acks after `Ok` (the transaction committed),
/// dead-letters permanent refusals and retries transient failures.
#[derive(Debug, Clone)]
pub struct CommandConsumer {
    handler: CommandHandler,
}

impl CommandConsumer {
    /// A consumer handler applying commands with `handler`.
    pub fn new(handler: CommandHandler) -> Self {
        Self { handler }
    }
}

impl Handler<CaseCommand> for CommandConsumer {
    async fn handle(&self, delivery: &Delivery<CaseCommand>) -> Result<(), HandlerError> {
        match self.handler.apply(delivery.event.clone()).await {
            Ok(_) => Ok(()),
            Err(ApplyError::Permanent { reason, .. }) => Err(HandlerError::permanent(reason)),
            Err(e @ ApplyError::Transient(_)) => Err(HandlerError::retry(e.to_string())),
        }
    }
}

/// The bus key of an outbox event: its case number (events without a case, i.e. rejections
/// of commands about no known case, share the key `unknown-case`).
pub fn event_key(case_number: i64) -> String {
    CaseNumber::new(case_number)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown-case".to_owned())
}

/// Publishes outbox events on `case.evt.<partition>` with `Nats-Msg-Id` = event id, many in
/// flight at once, in order.
#[derive(Debug, Clone)]
pub struct BusEventPublisher {
    bus: Bus,
}

impl BusEventPublisher {
    /// A publisher on `bus`.
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }
}

impl EventPublisher for BusEventPublisher {
    async fn publish_batch(&self, events: &[OutboxEvent]) -> (usize, Option<PublishError>) {
        let mut pending = Vec::with_capacity(events.len());
        let mut send_error = None;
        for e in events {
            let key = event_key(e.case_number);
            match self
                .bus
                .publish_raw_async(&CASE_EVT, &key, &e.event_id, Bytes::from(e.payload.clone()))
                .await
            {
                Ok(p) => pending.push(p),
                Err(err) => {
                    send_error = Some(PublishError {
                        event_id: e.event_id.clone(),
                        reason: err.to_string(),
                    });
                    break;
                }
            }
        }
        let mut done = 0;
        for (p, e) in pending.into_iter().zip(events) {
            match p.ack().await {
                Ok(_) => done += 1,
                Err(err) => {
                    return (
                        done,
                        Some(PublishError {
                            event_id: e.event_id.clone(),
                            reason: err.to_string(),
                        }),
                    )
                }
            }
        }
        (done, send_error)
    }
}
