//! Shared test helpers: a server, a connected bus, recording handlers.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flexcord_bus::consumer::Backoff;
use flexcord_bus::{
    Bus, BusConfig, ConsumerOptions, Delivery, Handler, HandlerError, Metrics, StreamSpec,
};
use flexcord_harness::NatsServer;
use tokio::sync::mpsc;

pub async fn server_and_bus() -> (NatsServer, Bus) {
    flexcord_bus::telemetry::init_for_tests();
    let server = NatsServer::start().expect("nats-server");
    let bus = connect(&server.url()).await;
    (server, bus)
}

pub async fn connect(url: &str) -> Bus {
    let bus = Bus::connect(&BusConfig::for_url(url), "test", Metrics::new("test").bus())
        .await
        .expect("connect");
    bus.declare_topology().await.expect("declare");
    bus
}

/// Fast options for tests: short ack wait, quick backoff.
pub fn fast_options(stream: StreamSpec, durable: &str) -> ConsumerOptions {
    let mut o = ConsumerOptions::new(stream, durable);
    o.ack_wait = Duration::from_secs(2);
    o.backoff = Backoff {
        initial: Duration::from_millis(40),
        max: Duration::from_millis(400),
    };
    o.drain_timeout = Duration::from_secs(10);
    o
}

/// Sends every delivery to a channel and succeeds.
pub struct Collect<T> {
    pub tx: mpsc::UnboundedSender<Delivery<T>>,
}

impl<T: Clone + Send + Sync + 'static> Handler<T> for Collect<T> {
    async fn handle(&self, d: &Delivery<T>) -> Result<(), HandlerError> {
        let _ = self.tx.send(d.clone());
        Ok(())
    }
}

pub fn collector<T>() -> (Collect<T>, mpsc::UnboundedReceiver<Delivery<T>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Collect { tx }, rx)
}

/// Receives `n` deliveries or panics after `timeout`.
pub async fn recv_n<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize, timeout: Duration) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + timeout;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => out.push(v),
            Ok(None) => break,
            Err(_) => panic!("timed out after receiving {} of {n}", out.len()),
        }
    }
    out
}

/// Asserts nothing more arrives within `quiet`.
pub async fn assert_quiet<T: std::fmt::Debug>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    quiet: Duration,
) {
    if let Ok(Some(v)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected extra delivery: {v:?}");
    }
}

/// A shared log of events, for handlers that record more than deliveries.
pub type Log<T> = Arc<Mutex<Vec<T>>>;
