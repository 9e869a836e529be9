//! Helpers for the tests of crates built on the bus (feature `testing`; enable it in their
//! `[dev-dependencies]`): a nats-server with a connected client, and a stream's messages read back
//! in order. Like test code, they panic with a message when something fails.

use async_nats::jetstream::message::StreamMessage;
use flexcord_harness::NatsServer;
use flexcord_proto::v1::DiscordUser;
use prost::Message;

use crate::bus::{Bus, BusConfig};
use crate::metrics::Metrics;

/// A fresh nats-server (its own port and store, killed on drop) and a client connected to it;
/// initialises test logging first.
pub async fn server_and_bus() -> (NatsServer, Bus) {
    crate::telemetry::init_for_tests();
    let server = NatsServer::start().unwrap_or_else(|e| panic!("cannot start nats-server: {e}"));
    let bus = connect(&server.url()).await;
    (server, bus)
}

/// Connects a client named `test-client` to `url` and declares the topology.
pub async fn connect(url: &str) -> Bus {
    let bus = Bus::connect(
        &BusConfig::for_url(url),
        "test-client",
        Metrics::new("test-client").bus(),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    bus.declare_topology()
        .await
        .unwrap_or_else(|e| panic!("cannot declare the topology: {e}"));
    bus
}

/// Every message of stream `name`, in stream order (deleted sequences skipped).
pub async fn stream_messages(bus: &Bus, name: &str) -> Vec<StreamMessage> {
    let mut stream = bus
        .jetstream()
        .get_stream(name)
        .await
        .unwrap_or_else(|e| panic!("no stream {name}: {e}"));
    let state = stream
        .info()
        .await
        .unwrap_or_else(|e| panic!("no info for stream {name}: {e}"))
        .state
        .clone();
    let mut out = Vec::new();
    if state.messages == 0 {
        return out;
    }
    for seq in state.first_sequence..=state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            out.push(m);
        }
    }
    out
}

/// Every message of stream `name` decoded as `T`, in stream order.
pub async fn stream_events<T: Message + Default>(bus: &Bus, name: &str) -> Vec<T> {
    stream_messages(bus, name)
        .await
        .into_iter()
        .map(|m| decode(&m))
        .collect()
}

/// The payload of `m` decoded as `T`.
pub fn decode<T: Message + Default>(m: &StreamMessage) -> T {
    T::decode(m.payload.as_ref()).unwrap_or_else(|e| {
        panic!(
            "message {} on {} is not a {}: {e}",
            m.sequence,
            m.subject,
            std::any::type_name::<T>()
        )
    })
}

/// The value of header `name` of `m`, empty when absent (see [`crate::headers`]).
pub fn header(m: &StreamMessage, name: &str) -> String {
    m.headers
        .get(name)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default()
}

/// A sample Discord user: `user<id>`, display name `User <id>`, the given locale.
pub fn discord_user(id: u64, locale: &str) -> DiscordUser {
    DiscordUser {
        id,
        username: format!("user{id}"),
        display_name: format!("User {id}"),
        locale: locale.into(),
    }
}
