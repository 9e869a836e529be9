//! Declaring the topology against a real nats-server: many processes at once, and changes applied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use flexcord_bus::topology::{self, test_stream, TopologySettings};
use flexcord_harness::NatsServer;

/// Every service declares everything at start. Eight clients declaring at once, twice over, leave
/// the server running with each stream created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_services_declaring_at_once_leave_the_server_up() {
    flexcord_bus::telemetry::init_for_tests();
    let mut server = NatsServer::start().expect("nats-server");
    for _round in 0..2 {
        let url = server.url();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { connect(&url).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("declared");
        }
    }
    assert!(
        server.is_running(),
        "nats-server died:\n{}",
        server.log_text()
    );
    let bus = connect(&server.url()).await;
    for spec in topology::STREAMS {
        let info = bus
            .jetstream()
            .get_stream(spec.name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.subjects, vec![spec.wildcard()]);
    }
}

/// A setting changed in the code (here the dedupe window) is applied to the existing stream; an
/// unchanged declaration leaves it as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_setting_is_applied_to_the_existing_stream() {
    let (_server, bus) = server_and_bus().await;
    let js = bus.jetstream();
    let stream = test_stream("TOPO_TEST", "topo");
    let first = TopologySettings {
        replicas: 1,
        duplicate_window: Duration::from_secs(60),
    };
    topology::declare_stream(js, &stream, &first).await.unwrap();
    topology::declare_stream(js, &stream, &first).await.unwrap();
    let window = |js: async_nats::jetstream::Context| async move {
        js.get_stream("TOPO_TEST")
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .config
            .duplicate_window
    };
    assert_eq!(window(js.clone()).await, Duration::from_secs(60));
    let second = TopologySettings {
        replicas: 1,
        duplicate_window: Duration::from_secs(90),
    };
    topology::declare_stream(js, &stream, &second)
        .await
        .unwrap();
    assert_eq!(window(js.clone()).await, Duration::from_secs(90));
}
