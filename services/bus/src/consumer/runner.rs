//! The consumer runner (see the module docs in `consumer/mod.rs`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::AckKind;
use futures::{FutureExt, StreamExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn, Instrument};

use super::dead_letter::{self, DeadLetter};
use super::keyed::{Held, Item, KeyQueues, OrphanGate, RecentlyAcked};
use super::{Backoff, Delivery, Handler, HandlerError, PartitionAssignment};
use crate::config::{self, ConfigError};
use crate::error::BusError;
use crate::headers;
use crate::metrics::ConsumerMetrics;
use crate::topology::{StreamSpec, PARTITIONS};
use crate::Bus;
use futures::stream::FuturesUnordered;

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The stream to consume.
    pub stream: StreamSpec,
    /// Durable name prefix (normally the service name); partition consumers are `<durable>-p<N>`.
    pub durable: String,
    /// Keys handled in parallel.
    pub concurrency: usize,
    /// Server ack wait; in-progress acks are sent every third of it.
    pub ack_wait: Duration,
    /// Unacked messages the server lets one partition consumer have.
    pub max_ack_pending: i64,
    /// Handler attempts in this process before a message is dead-lettered.
    pub max_attempts: u32,
    /// Server deliveries (crash loops) before a message is dead-lettered without running the handler.
    pub max_deliveries: i64,
    /// Retry backoff.
    pub backoff: Backoff,
    /// Messages per pull request.
    pub batch: usize,
    /// How long shutdown waits for running handlers.
    pub drain_timeout: Duration,
    /// Which partitions this replica consumes.
    pub assignment: PartitionAssignment,
}

impl ConsumerOptions {
    /// Defaults for consuming `stream` as `durable`.
    pub fn new(stream: StreamSpec, durable: impl Into<String>) -> Self {
        ConsumerOptions {
            stream,
            durable: durable.into(),
            concurrency: 64,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 2048,
            max_attempts: 10,
            max_deliveries: 20,
            backoff: Backoff::default(),
            batch: 256,
            drain_timeout: Duration::from_secs(20),
            assignment: PartitionAssignment::all(),
        }
    }

    /// The options a service normally uses: durable named after the service, `BUS_*` overrides from the
    /// environment, and the bus's partition assignment (`INSTANCE_INDEX`/`INSTANCE_COUNT`).
    pub fn for_service(bus: &Bus, stream: StreamSpec) -> Result<Self, ConfigError> {
        let mut opts = Self::new(stream, bus.service()).with_env_overrides()?;
        opts.assignment = bus.config().assignment;
        Ok(opts)
    }

    /// Overrides from the environment: `BUS_CONCURRENCY`, `BUS_ACK_WAIT_S`, `BUS_MAX_ATTEMPTS`,
    /// `BUS_MAX_DELIVERIES`, `BUS_BACKOFF_INITIAL_MS`, `BUS_BACKOFF_MAX_MS`, `BUS_DRAIN_TIMEOUT_S`.
    pub fn with_env_overrides(mut self) -> Result<Self, ConfigError> {
        self.concurrency = config::parse_or("BUS_CONCURRENCY", self.concurrency)?.max(1);
        self.ack_wait = config::secs_or("BUS_ACK_WAIT_S", self.ack_wait)?;
        self.max_attempts = config::parse_or("BUS_MAX_ATTEMPTS", self.max_attempts)?.max(1);
        self.max_deliveries = config::parse_or("BUS_MAX_DELIVERIES", self.max_deliveries)?.max(1);
        self.backoff.initial = config::millis_or("BUS_BACKOFF_INITIAL_MS", self.backoff.initial)?;
        self.backoff.max = config::millis_or("BUS_BACKOFF_MAX_MS", self.backoff.max)?;
        self.drain_timeout = config::secs_or("BUS_DRAIN_TIMEOUT_S", self.drain_timeout)?;
        if self.ack_wait < Duration::from_secs(1) {
            return Err(ConfigError::new("BUS_ACK_WAIT_S", "must be at least 1"));
        }
        Ok(self)
    }

    fn consumer_name(&self, partition: u16) -> String {
        format!(
            "{}-p{partition}",
            crate::topology::sanitize_token(&self.durable)
        )
    }
}

/// A runnable consumer: a stream, a handler and the options.
pub struct Consumer<T, H> {
    shared: Arc<Shared<H>>,
    _t: std::marker::PhantomData<fn() -> T>,
}

impl<T, H> std::fmt::Debug for Consumer<T, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("stream", &self.shared.opts.stream.name)
            .field("durable", &self.shared.opts.durable)
            .finish_non_exhaustive()
    }
}

/// What every partition task of a consumer shares.
struct Shared<H> {
    bus: Bus,
    opts: ConsumerOptions,
    handler: H,
    permits: Arc<Semaphore>,
    metrics: ConsumerMetrics,
    /// Cancelled when shutdown starts: cuts retry waits short.
    draining: CancellationToken,
}

/// How a message's processing ended.
enum Outcome {
    /// Handled: ack.
    Ack,
    /// Dead-lettered: terminate redelivery.
    DeadLettered,
    /// The dead letter could not be written: leave it unacked for redelivery.
    Unresolved,
    /// Shutting down before it could be handled: give it back (NAK).
    Release,
}

impl<T, H> Consumer<T, H>
where
    T: prost::Message + Default + Send + Sync + 'static,
    H: Handler<T>,
{
    /// A consumer of `opts.stream` that passes each event to `handler`.
    pub fn new(bus: &Bus, opts: ConsumerOptions, handler: H) -> Self {
        let metrics = bus.metrics().for_consumer(&opts.durable, opts.stream.name);
        Consumer {
            shared: Arc::new(Shared {
                bus: bus.clone(),
                permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
                opts,
                handler,
                metrics,
                draining: CancellationToken::new(),
            }),
            _t: std::marker::PhantomData,
        }
    }

    /// Creates (or updates) this replica's durable partition consumers on the server.
    pub async fn declare(&self) -> Result<Vec<(u16, PullConsumer)>, BusError> {
        let opts = &self.shared.opts;
        let stream = self
            .shared
            .bus
            .jetstream()
            .get_stream(opts.stream.name)
            .await
            .map_err(|e| BusError::Declare(format!("stream {}: {e}", opts.stream.name)))?;
        let mut consumers = Vec::new();
        for p in (0..PARTITIONS).filter(|p| opts.assignment.owns(*p)) {
            let name = opts.consumer_name(p);
            let config = pull::Config {
                durable_name: Some(name.clone()),
                description: Some(format!("{} partition {p}", opts.durable)),
                filter_subject: opts.stream.partition_subject(p),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: opts.ack_wait,
                max_deliver: -1,
                max_ack_pending: opts.max_ack_pending,
                ..Default::default()
            };
            let consumer = match stream.create_consumer(config.clone()).await {
                Ok(c) => c,
                Err(e) => {
                    warn!(consumer = %name, error = %e, "Cannot create or update consumer; using the existing one.");
                    stream
                        .get_consumer(&name)
                        .await
                        .map_err(|e2| BusError::Declare(format!("consumer {name}: {e}; {e2}")))?
                }
            };
            consumers.push((p, consumer));
        }
        Ok(consumers)
    }

    /// Runs until `shutdown` is cancelled, then drains: running handlers finish and are acked, queued
    /// messages are given back to the server, acks are flushed.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BusError> {
        let consumers = self.declare().await?;
        let shared = self.shared.clone();
        info!(
            stream = shared.opts.stream.name,
            durable = %shared.opts.durable,
            partitions = consumers.len(),
            "Consumer started."
        );
        let mut partitions = tokio::task::JoinSet::new();
        for (partition, consumer) in consumers {
            let task = PartitionTask::<T, H> {
                shared: shared.clone(),
                name: shared.opts.consumer_name(partition),
                queues: KeyQueues::new(),
                held: Held::new(),
                acked: RecentlyAcked::new(100_000),
                gate: None,
                last_consumer_sequence: 0,
            };
            let shutdown = shutdown.clone();
            partitions.spawn(async move { task.run(consumer, shutdown).await });
        }
        shutdown.cancelled().await;
        shared.draining.cancel();
        info!(stream = shared.opts.stream.name, "Consumer draining.");
        while partitions.join_next().await.is_some() {}
        if let Err(e) = shared.bus.flush().await {
            warn!(error = %e, "Flushing acks on shutdown failed.");
        }
        info!(stream = shared.opts.stream.name, "Consumer stopped.");
        Ok(())
    }
}

/// One partition consumer: pulls, keeps per-key order, drives handler futures, acks.
struct PartitionTask<T, H> {
    shared: Arc<Shared<H>>,
    name: String,
    queues: KeyQueues<T>,
    held: Held,
    acked: RecentlyAcked,
    /// Set while messages a crashed predecessor left unacked, or deliveries lost on the way, have not
    /// all come back.
    gate: Option<OrphanGate<T>>,
    /// The highest consumer sequence received (deliveries are numbered; a jump means lost ones).
    last_consumer_sequence: u64,
}

type Finished = (String, u64, Outcome);

impl<T, H> PartitionTask<T, H>
where
    T: prost::Message + Default + Send + Sync + 'static,
    H: Handler<T>,
{
    async fn run(mut self, consumer: PullConsumer, shutdown: CancellationToken) {
        let opts = self.shared.opts.clone();
        let info = consumer.cached_info();
        self.last_consumer_sequence = info.delivered.consumer_sequence;
        if info.num_ack_pending > 0 {
            info!(
                consumer = %self.name,
                unacked = info.num_ack_pending,
                last_delivered = info.delivered.stream_sequence,
                wait_s = opts.ack_wait.as_secs(),
                "Messages of a previous run are unacked; holding new messages until they are redelivered, to keep each key in order."
            );
            self.gate = Some(OrphanGate::new(
                info.num_ack_pending,
                info.delivered.stream_sequence,
                Instant::now() + opts.ack_wait + Duration::from_secs(2),
            ));
        }
        let mut gate_deadline = self.gate.as_ref().map(OrphanGate::deadline);
        let gate_timer = tokio::time::sleep_until(
            gate_deadline
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(tokio::time::Instant::now),
        );
        tokio::pin!(gate_timer);
        let mut gate_poll = tokio::time::interval(Duration::from_millis(250));
        gate_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut info_consumer = consumer.clone();
        let mut in_flight = FuturesUnordered::new();
        let mut messages = None;
        let progress_every = (opts.ack_wait / 3).max(Duration::from_millis(100));
        let mut progress = tokio::time::interval(progress_every);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        // Futures that live across iterations are created once: re-creating them per message (a
        // cancellation waiter, timers) costs more than the rest of the bookkeeping.
        let shutdown_signal = shutdown.cancelled();
        tokio::pin!(shutdown_signal);
        let drain_deadline = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(drain_deadline);
        let pull_retry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(pull_retry);
        let mut pull_retry_armed = false;

        loop {
            if stopping && in_flight.is_empty() {
                break;
            }
            if !stopping && messages.is_none() && !pull_retry_armed {
                match consumer
                    .stream()
                    .max_messages_per_batch(opts.batch)
                    .heartbeat(Duration::from_secs(3))
                    .expires(Duration::from_secs(10))
                    .messages()
                    .await
                {
                    Ok(m) => messages = Some(m),
                    Err(e) => {
                        warn!(consumer = %self.name, error = %e, "Cannot start pulling; retrying.");
                        pull_retry
                            .as_mut()
                            .reset(tokio::time::Instant::now() + Duration::from_secs(1));
                        pull_retry_armed = true;
                    }
                }
            }
            let pulling = !stopping && messages.is_some();
            tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    let (key, sequence, outcome): Finished = done;
                    self.settle(sequence, outcome).await;
                    if let Some(item) = self.queues.next(&key) {
                        in_flight.push(process(self.shared.clone(), item));
                    }
                }
                next = next_message(&mut messages), if pulling => match next {
                    Some(Ok(msg)) => {
                        if let Some(item) = self.dispatch(msg).await {
                            in_flight.push(process(self.shared.clone(), item));
                        }
                        if self.gate.as_ref().is_some_and(|g| g.may_open(Instant::now())) {
                            for item in self.open_gate() {
                                in_flight.push(process(self.shared.clone(), item));
                            }
                        }
                        // A gate armed or extended by this message: its timer follows.
                        let deadline = self.gate.as_ref().map(OrphanGate::deadline);
                        if deadline != gate_deadline {
                            gate_deadline = deadline;
                            if let Some(d) = deadline {
                                gate_timer.as_mut().reset(tokio::time::Instant::from_std(d));
                            }
                        }
                    }
                    Some(Err(e)) => {
                        use async_nats::jetstream::consumer::pull::MessagesErrorKind as K;
                        match e.kind() {
                            K::MissingHeartbeat => {
                                // Connected but no heartbeat: the pull request died with a server
                                // (a consumer leader change in a cluster). async-nats would only
                                // re-pull when the request expires; start a fresh pull now. While
                                // disconnected, async-nats re-pulls itself after reconnecting.
                                let connected = matches!(
                                    self.shared.bus.client().connection_state(),
                                    async_nats::connection::State::Connected
                                );
                                if connected {
                                    info!(consumer = %self.name, "Missed heartbeats while connected; restarting the pull.");
                                    messages = None;
                                } else {
                                    debug!(consumer = %self.name, "Missed heartbeat (server unreachable).");
                                }
                            }
                            K::ConsumerDeleted | K::NoResponders | K::RequestLimitExceeded => {
                                warn!(consumer = %self.name, error = %e, "Pull stream failed; restarting it.");
                                messages = None;
                                pull_retry.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(500));
                                pull_retry_armed = true;
                            }
                            _ => warn!(consumer = %self.name, error = %e, "Pull error."),
                        }
                    }
                    None => {
                        messages = None;
                        pull_retry.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(500));
                        pull_retry_armed = true;
                    }
                },
                _ = &mut shutdown_signal, if !stopping => {
                    stopping = true;
                    messages = None;
                    drain_deadline.as_mut().reset(tokio::time::Instant::now() + opts.drain_timeout);
                    for item in self.queues.take_waiting() {
                        self.settle(item.delivery.stream_sequence, Outcome::Release).await;
                    }
                    if let Some(gate) = self.gate.take() {
                        for item in gate.open() {
                            self.settle(item.delivery.stream_sequence, Outcome::Release).await;
                        }
                    }
                }
                _ = &mut gate_timer, if self.gate.is_some() && !stopping => {
                    for item in self.open_gate() {
                        in_flight.push(process(self.shared.clone(), item));
                    }
                }
                _ = gate_poll.tick(), if self.gate.is_some() && !stopping => {
                    let floor = match info_consumer.info().await {
                        Ok(info) => info.ack_floor.stream_sequence,
                        Err(e) => {
                            debug!(consumer = %self.name, error = %e, "Consumer info failed while waiting for orphans.");
                            0
                        }
                    };
                    if self.gate.as_ref().is_some_and(|g| floor >= g.last_delivered()) {
                        debug!(consumer = %self.name, floor, "Everything of the previous run is acked (a live sibling held it).");
                        for item in self.open_gate() {
                            in_flight.push(process(self.shared.clone(), item));
                        }
                    }
                }
                _ = &mut drain_deadline, if stopping => {
                    warn!(consumer = %self.name, in_flight = in_flight.len(), "Drain timed out; unfinished messages will be redelivered.");
                    break;
                }
                _ = &mut pull_retry, if pull_retry_armed && !stopping => {
                    pull_retry_armed = false;
                }
                _ = progress.tick() => {
                    for acker in self.held.due_for_progress(progress_every) {
                        let _ = acker.ack_with(AckKind::Progress).await;
                    }
                }
            }
        }
    }

    /// Takes a fresh message: dedupes redeliveries, dead-letters what cannot be handled, and returns the
    /// item to start now (its key was idle) or queues it behind its key.
    async fn dispatch(&mut self, msg: async_nats::jetstream::Message) -> Option<Item<T>> {
        let (sequence, deliveries, consumer_sequence) = match msg.info() {
            Ok(i) => (i.stream_sequence, i.delivered, i.consumer_sequence),
            Err(e) => {
                warn!(error = %e, "Received a message without JetStream metadata; ignoring it.");
                return None;
            }
        };
        self.note_delivery(consumer_sequence, sequence);
        let (message, acker) = msg.split();
        // A stream sequence this process already settled is never handled again, whatever delivery
        // count the copy carries (a lost ack, or a stale copy of an earlier delivery).
        if self.acked.contains(sequence) {
            if let Some(gate) = self.gate.as_mut() {
                gate.saw(sequence);
            }
            debug!(
                sequence,
                deliveries, "Redelivery of a message already settled here; acking again."
            );
            let _ = acker.ack().await;
            return None;
        }
        if !self.held.insert(sequence, acker) {
            debug!(
                sequence,
                "Redelivery of a message already queued here; keeping one copy."
            );
            return None;
        }
        if let Some(gate) = self.gate.as_mut() {
            gate.saw(sequence);
        }
        let headers = message.headers.unwrap_or_default();
        let subject = message.subject.to_string();
        let key = headers
            .get(headers::KEY)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| subject.clone());
        let msg_id = headers.get(headers::MSG_ID).map(|v| v.as_str().to_owned());
        let opts = &self.shared.opts;
        let decoded = if deliveries > opts.max_deliveries {
            Err((
                "max_deliveries",
                format!(
                    "delivered {deliveries} times (limit {}); the handler keeps failing or crashing",
                    opts.max_deliveries
                ),
            ))
        } else {
            T::decode(message.payload.as_ref())
                .map_err(|e| ("undecodable", format!("undecodable payload: {e}")))
        };
        let mut delivery = Delivery {
            event: T::default(),
            key,
            msg_id,
            subject,
            stream_sequence: sequence,
            attempt: 1,
            server_deliveries: deliveries,
            headers,
        };
        match decoded {
            Ok(event) => {
                delivery.event = event;
                let item = Item {
                    delivery,
                    payload: message.payload,
                };
                match self.gate.as_mut() {
                    Some(gate) => {
                        gate.hold(item);
                        None
                    }
                    None => self.queues.push(item),
                }
            }
            Err((kind, reason)) => {
                delivery.attempt = 0;
                let outcome =
                    dead_letter(&self.shared, &delivery, message.payload, kind, &reason).await;
                self.settle(sequence, outcome).await;
                None
            }
        }
    }

    /// Detects deliveries lost on the way (the consumer sequence skipped numbers: a connection to a dead
    /// or restarted server dropped them). The server redelivers them only after their ack wait, so a
    /// key's later messages must wait for them: the orphan gate is armed (or extended) for as many.
    fn note_delivery(&mut self, consumer_sequence: u64, stream_sequence: u64) {
        let last = self.last_consumer_sequence;
        if consumer_sequence > last {
            self.last_consumer_sequence = consumer_sequence;
        }
        if last == 0 || consumer_sequence <= last + 1 {
            return;
        }
        let lost = usize::try_from(consumer_sequence - last - 1).unwrap_or(usize::MAX);
        let deadline = Instant::now() + self.shared.opts.ack_wait + Duration::from_secs(2);
        info!(
            consumer = %self.name,
            lost,
            stream_sequence,
            "Deliveries were lost on the way (connection to a failed server); holding new messages until they are redelivered, to keep each key in order."
        );
        match self.gate.as_mut() {
            Some(gate) => gate.expect_more(lost, stream_sequence.saturating_sub(1), deadline),
            None => {
                self.gate = Some(OrphanGate::new(
                    lost,
                    stream_sequence.saturating_sub(1),
                    deadline,
                ))
            }
        }
    }

    /// Opens the orphan gate: queues what it held in stream order and returns the items to start now.
    fn open_gate(&mut self) -> Vec<Item<T>> {
        let Some(gate) = self.gate.take() else {
            return Vec::new();
        };
        let (back, expected) = gate.progress();
        info!(
            consumer = %self.name,
            back,
            expected,
            "Resuming: the previous run's unacked messages are back, acked elsewhere, or their wait is over."
        );
        gate.open()
            .into_iter()
            .filter_map(|item| self.queues.push(item))
            .collect()
    }

    /// Acks, terminates or releases a message according to how its processing ended.
    async fn settle(&mut self, sequence: u64, outcome: Outcome) {
        let Some(acker) = self.held.take(sequence) else {
            return;
        };
        let result = match outcome {
            Outcome::Ack => {
                self.acked.insert(sequence);
                acker.ack().await
            }
            Outcome::DeadLettered => {
                self.acked.insert(sequence);
                acker.ack_with(AckKind::Term).await
            }
            Outcome::Release => acker.ack_with(AckKind::Nak(None)).await,
            Outcome::Unresolved => Ok(()),
        };
        if let Err(e) = result {
            // The server will redeliver; handlers are idempotent.
            warn!(sequence, error = %e, "Ack failed; the message may be redelivered.");
        }
    }
}

async fn next_message(
    messages: &mut Option<pull::Stream>,
) -> Option<
    Result<async_nats::jetstream::Message, async_nats::jetstream::consumer::pull::MessagesError>,
> {
    match messages {
        Some(m) => m.next().await,
        None => futures::future::pending().await,
    }
}

/// Runs the handler for one message until it succeeds, fails for good, or shutdown interrupts a retry.
async fn process<T, H>(shared: Arc<Shared<H>>, mut item: Item<T>) -> Finished
where
    T: prost::Message + Default + Send + Sync + 'static,
    H: Handler<T>,
{
    let opts = &shared.opts;
    loop {
        let Ok(permit) = shared.permits.clone().acquire_owned().await else {
            return finished(item, Outcome::Release);
        };
        let d = &item.delivery;
        let span = tracing::info_span!(
            "bus.handle",
            stream = opts.stream.name,
            key = %d.key,
            seq = d.stream_sequence,
            attempt = d.attempt,
        );
        headers::set_parent_from_headers(&span, &d.headers);
        let started = Instant::now();
        let result = AssertUnwindSafe(shared.handler.handle(d))
            .catch_unwind()
            .instrument(span)
            .await;
        shared
            .metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        drop(permit);
        let result = result.unwrap_or_else(|_| Err(HandlerError::retry("handler panicked")));
        match result {
            Ok(()) => {
                shared.metrics.ok.inc();
                return finished(item, Outcome::Ack);
            }
            Err(HandlerError::Permanent { reason }) => {
                let outcome = dead_letter(
                    &shared,
                    &item.delivery,
                    item.payload.clone(),
                    "permanent",
                    &reason,
                )
                .await;
                return finished(item, outcome);
            }
            Err(HandlerError::Retry { reason, after }) => {
                if d.attempt >= opts.max_attempts {
                    let reason = format!("gave up after {} attempts: {reason}", d.attempt);
                    let outcome = dead_letter(
                        &shared,
                        &item.delivery,
                        item.payload.clone(),
                        "max_attempts",
                        &reason,
                    )
                    .await;
                    return finished(item, outcome);
                }
                shared.metrics.retried.inc();
                let delay = after.unwrap_or_else(|| opts.backoff.delay(d.attempt));
                warn!(
                    stream = opts.stream.name,
                    key = %d.key,
                    seq = d.stream_sequence,
                    attempt = d.attempt,
                    retry_in_ms = delay.as_millis() as u64,
                    %reason,
                    "Handler failed; will retry."
                );
                if shared.draining.is_cancelled() || sleep_or_cancel(delay, &shared.draining).await
                {
                    return finished(item, Outcome::Release);
                }
                item.delivery.attempt += 1;
            }
        }
    }
}

fn finished<T>(item: Item<T>, outcome: Outcome) -> Finished {
    (item.delivery.key, item.delivery.stream_sequence, outcome)
}

/// Writes the dead letter; the outcome says whether the original can be terminated.
async fn dead_letter<T, H>(
    shared: &Shared<H>,
    d: &Delivery<T>,
    payload: bytes::Bytes,
    kind: &str,
    reason: &str,
) -> Outcome {
    let consumer = shared.opts.durable.as_str();
    let result = dead_letter::publish(
        &shared.bus,
        DeadLetter {
            consumer,
            stream: shared.opts.stream.name,
            subject: &d.subject,
            sequence: d.stream_sequence,
            headers: &d.headers,
            payload,
            reason,
            attempts: d.attempt,
        },
    )
    .await;
    match result {
        Ok(()) => {
            error!(
                stream = shared.opts.stream.name,
                consumer,
                key = %d.key,
                seq = d.stream_sequence,
                msg_id = d.msg_id.as_deref().unwrap_or(""),
                kind,
                %reason,
                "Message dead-lettered."
            );
            shared.metrics.dead_lettered(kind);
            Outcome::DeadLettered
        }
        Err(e) => {
            error!(seq = d.stream_sequence, error = %e, %reason, "Cannot write dead letter; leaving the message for redelivery.");
            Outcome::Unresolved
        }
    }
}

/// Sleeps for `d`; returns true if `token` was cancelled first.
async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = token.cancelled() => true,
    }
}
