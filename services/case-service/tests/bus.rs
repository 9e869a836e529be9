//! case-service on a real nats-server: redelivery, crashes, API changes reaching the bus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use case_service::config::Config;
use case_service::store::{DbOptions, Store};
use flexcord_bus::config::FromEnv;
use flexcord_bus::testing::{connect, decode, stream_events, stream_messages};
use flexcord_bus::topology::{partition_of, CASE_CMD, CASE_EVT, DEAD_LETTER};
use flexcord_bus::{headers, Bus, CommonConfig};
use flexcord_harness::{eventually, NatsServer};
use flexcord_proto::v1::{self, case_command::Command as Cmd, case_event::Event};
use serde_json::json;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "bus-test-token-0123456789";
const WAIT: Duration = Duration::from_secs(30);

fn open_cmd(command_id: &str, interaction_id: u64) -> v1::CaseCommand {
    v1::CaseCommand {
        command_id: command_id.into(),
        issued_at: Some(flexcord_proto::now()),
        actor: "discord-ingress".into(),
        command: Some(Cmd::Open(v1::OpenCase {
            kind: v1::CaseKind::Bug as i32,
            subject: format!("Bug {interaction_id}"),
            description: "It crashes.".into(),
            severity: v1::Severity::High as i32,
            user: Some(v1::DiscordUser {
                id: 80351110224678912,
                username: "nelly".into(),
                display_name: "Nelly".into(),
                locale: "fr".into(),
            }),
            origin: Some(v1::CaseOrigin {
                channel_id: 10,
                interaction_id,
                ..Default::default()
            }),
        })),
    }
}

async fn case_events(bus: &Bus) -> Vec<v1::CaseEvent> {
    stream_events(bus, CASE_EVT.name).await
}

fn config(db_url: &str) -> Config {
    let m: HashMap<&str, String> = [
        ("DATABASE_URL", db_url.to_owned()),
        ("CASE_API_TOKEN", TOKEN.to_owned()),
        ("CASE_API_ADDR", "127.0.0.1:0".to_owned()),
        ("CASE_PUBLIC_URL", "http://127.0.0.1:8085".to_owned()),
    ]
    .into_iter()
    .collect();
    Config::from_lookup(&move |k| m.get(k).cloned()).unwrap()
}

/// case-service running in this process.
struct InProcess {
    base: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), case_service::service::RunError>>,
}

async fn start_in_process(nats_url: &str, db_url: &str) -> InProcess {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(case_service::run(
        config(db_url),
        CommonConfig::for_tests(nats_url),
        Some(listener),
        shutdown.clone(),
    ));
    InProcess {
        base,
        shutdown,
        task,
    }
}

impl InProcess {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("case-service did not stop within 30 s")
            .unwrap()
            .unwrap();
    }
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("cases.sqlite").display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_open_command_published_three_times_makes_one_case() {
    flexcord_bus::telemetry::init_for_tests();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let svc = start_in_process(&nats.url(), &db).await;
    let bus = connect(&nats.url()).await;

    // Three deliveries of one command (distinct bus message ids, so JetStream keeps all three),
    // one more command for the same interaction, then a different case on the same key.
    let key = "interaction:42";
    for i in 0..3 {
        bus.publish(&CASE_CMD, key, &format!("m{i}"), &open_cmd("cmd-42", 42))
            .await
            .unwrap();
    }
    bus.publish(&CASE_CMD, key, "m3", &open_cmd("cmd-42-bis", 42))
        .await
        .unwrap();
    bus.publish(&CASE_CMD, key, "m4", &open_cmd("cmd-43", 43))
        .await
        .unwrap();

    let events = eventually(WAIT, || async {
        let evs = case_events(&bus).await;
        (evs.len() >= 2).then_some(evs)
    })
    .await
    .expect("two opened events");
    let store = Store::connect(&db, &DbOptions::default()).await.unwrap();
    assert_eq!(store.count_cases().await.unwrap(), 2);
    // Nothing else arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events_after = case_events(&bus).await;
    assert_eq!(events_after.len(), 2, "{events_after:?}");
    let numbers: Vec<_> = events
        .iter()
        .map(|e| e.case.as_ref().unwrap().number.clone())
        .collect();
    assert_eq!(numbers, ["CASE-000001", "CASE-000002"]);
    assert!(events
        .iter()
        .all(|e| matches!(e.event, Some(Event::Opened(_)))));
    assert_eq!(events[0].command_id, "cmd-42");
    assert!(events[0]
        .case
        .as_ref()
        .unwrap()
        .url
        .starts_with("http://127.0.0.1:8085/cases/CASE-000001?exp="));
    assert_eq!(
        store.command_result("cmd-42-bis").await.unwrap().unwrap().1,
        "duplicate"
    );

    // Events are keyed by case number, on the partition subject, with the event id as Nats-Msg-Id.
    let raw = stream_messages(&bus, CASE_EVT.name).await;
    let h = &raw[0].headers;
    assert_eq!(h.get(headers::KEY).unwrap().as_str(), "CASE-000001");
    assert_eq!(h.get(headers::MSG_ID).unwrap().as_str(), events[0].event_id);
    assert_eq!(raw[0].subject.as_str(), CASE_EVT.subject_for("CASE-000001"));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_through_the_api_reaches_the_bus() {
    flexcord_bus::telemetry::init_for_tests();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let svc = start_in_process(&nats.url(), &sqlite_url(dir.path())).await;
    let bus = connect(&nats.url()).await;
    bus.publish(&CASE_CMD, "interaction:7", "o7", &open_cmd("open-7", 7))
        .await
        .unwrap();
    eventually(WAIT, || async {
        (!case_events(&bus).await.is_empty()).then_some(())
    })
    .await
    .expect("opened event");

    let client = reqwest::Client::new();
    let r = client
        .patch(format!("{}/cases/CASE-000001", svc.base))
        .bearer_auth(TOKEN)
        .json(&json!({"status": "resolved", "comment": "Fixed in 2.4.1", "actor": "agent:ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let resolved = eventually(WAIT, || async {
        case_events(&bus).await.into_iter().find(|e| {
            matches!(&e.event, Some(Event::StatusChanged(sc)) if sc.to == v1::CaseStatus::Resolved as i32)
        })
    })
    .await
    .expect("the resolution reaches the bus");
    match &resolved.event {
        Some(Event::StatusChanged(sc)) => {
            assert_eq!(sc.from, v1::CaseStatus::Open as i32);
            assert_eq!(sc.comment, "Fixed in 2.4.1");
            assert_eq!(sc.actor, "agent:ana");
        }
        _ => unreachable!(),
    }
    let case = resolved.case.as_ref().unwrap();
    assert_eq!(case.status, v1::CaseStatus::Resolved as i32);
    // What bot-router needs to tell the user.
    assert_eq!(case.user.as_ref().unwrap().id, 80351110224678912);
    assert_eq!(case.user.as_ref().unwrap().locale, "fr");
    assert_eq!(case.origin.as_ref().unwrap().channel_id, 10);
    assert_eq!(resolved.command_id, "");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_command_is_rejected_on_the_bus_and_dead_lettered() {
    flexcord_bus::telemetry::init_for_tests();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let svc = start_in_process(&nats.url(), &sqlite_url(dir.path())).await;
    let bus = connect(&nats.url()).await;
    let cmd = v1::CaseCommand {
        command_id: "close-404".into(),
        issued_at: None,
        actor: "bot-router".into(),
        command: Some(Cmd::UpdateStatus(v1::UpdateCaseStatus {
            case_number: "CASE-000404".into(),
            status: v1::CaseStatus::Closed as i32,
            comment: String::new(),
        })),
    };
    bus.publish(&CASE_CMD, "CASE-000404", "c404", &cmd)
        .await
        .unwrap();
    let rejected = eventually(WAIT, || async {
        case_events(&bus).await.into_iter().next()
    })
    .await
    .expect("a rejection event");
    assert_eq!(rejected.command_id, "close-404");
    match &rejected.event {
        Some(Event::Rejected(r)) => assert!(
            r.reason.contains("CASE-000404 does not exist"),
            "{}",
            r.reason
        ),
        other => panic!("unexpected {other:?}"),
    }
    let letter = eventually(WAIT, || async {
        stream_messages(&bus, DEAD_LETTER.name)
            .await
            .into_iter()
            .next()
    })
    .await
    .expect("a dead letter");
    assert!(letter
        .headers
        .get(headers::DLQ_REASON)
        .unwrap()
        .as_str()
        .contains("does not exist"));
    assert_eq!(
        letter
            .headers
            .get(headers::DLQ_ORIGINAL_MSG_ID)
            .unwrap()
            .as_str(),
        "c404"
    );
    assert_eq!(decode::<v1::CaseCommand>(&letter), cmd);
    svc.stop().await;
}

// ------------------------------------------------------------------------------------------
// Crash tests: the real binary, killed with SIGKILL while it processes a command.
// ------------------------------------------------------------------------------------------

struct Binary {
    child: Child,
}

impl Binary {
    fn start(nats_url: &str, db_url: &str, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_case-service"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("NATS_URL", nats_url)
            .env("CASE_API_TOKEN", TOKEN)
            .env("CASE_API_ADDR", "127.0.0.1:0")
            .env("ADMIN_ADDR", "127.0.0.1:0")
            .env("BUS_ACK_WAIT_S", "2")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Self { child }
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no drain, no ack, no cleanup
        let _ = self.child.wait();
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Unacked messages of the case-service consumer on the partition of `key`.
async fn ack_pending(bus: &Bus, key: &str) -> Option<(u64, usize)> {
    let stream = bus.jetstream().get_stream(CASE_CMD.name).await.ok()?;
    let mut c = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&format!(
            "case-service-p{}",
            partition_of(key)
        ))
        .await
        .ok()?;
    let info = c.info().await.ok()?;
    Some((info.num_pending, info.num_ack_pending))
}

/// Holds SQLite's write lock, so case-service blocks inside its transaction.
async fn lock_database(db_url: &str) -> sqlx::SqliteConnection {
    let mut c = sqlx::SqliteConnection::connect(db_url).await.unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut c)
        .await
        .unwrap();
    c
}

async fn unlock_database(mut c: sqlx::SqliteConnection) {
    sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
    c.close().await.unwrap();
}

async fn wait_until_started(bus: &Bus, key: &str) {
    eventually(WAIT, || async { ack_pending(bus, key).await.map(|_| ()) })
        .await
        .expect("case-service declared its consumers");
}

async fn wait_until_in_flight(bus: &Bus, key: &str) {
    eventually(WAIT, || async {
        matches!(ack_pending(bus, key).await, Some((0, 1))).then_some(())
    })
    .await
    .expect("the command was delivered and not acked");
}

fn show_log(log: &PathBuf) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_commit_the_command_is_applied_once_after_restart() {
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let log = dir.path().join("case-service.log");
    let mut svc = Binary::start(&nats.url(), &db, &log);
    let bus = connect(&nats.url()).await;
    let key = "interaction:900";
    wait_until_started(&bus, key).await;
    let store = Store::connect(&db, &DbOptions::default()).await.unwrap();

    let lock = lock_database(&db).await;
    bus.publish(&CASE_CMD, key, "k900", &open_cmd("open-900", 900))
        .await
        .unwrap();
    wait_until_in_flight(&bus, key).await;
    svc.kill();
    unlock_database(lock).await;
    assert_eq!(
        store.count_cases().await.unwrap(),
        0,
        "nothing committed before the kill"
    );

    let _svc = Binary::start(&nats.url(), &db, &log);
    let events = eventually(WAIT, || async {
        let evs = case_events(&bus).await;
        (!evs.is_empty()).then_some(evs)
    })
    .await
    .unwrap_or_else(|| panic!("no event after restart; log:\n{}", show_log(&log)));
    eventually(WAIT, || async {
        matches!(ack_pending(&bus, key).await, Some((0, 0))).then_some(())
    })
    .await
    .expect("the command is acked after restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.count_cases().await.unwrap(), 1);
    assert_eq!(case_events(&bus).await.len(), 1, "{events:?}");
    assert_eq!(
        store.command_result("open-900").await.unwrap().unwrap().1,
        "applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_commit_before_ack_the_command_is_applied_once_after_restart() {
    let mut nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite_url(dir.path());
    let log = dir.path().join("case-service.log");
    let mut svc = Binary::start(&nats.url(), &db, &log);
    let key = "interaction:901";
    let store = Store::connect(&db, &DbOptions::default()).await.unwrap();
    {
        let bus = connect(&nats.url()).await;
        wait_until_started(&bus, key).await;
        let lock = lock_database(&db).await;
        bus.publish(&CASE_CMD, key, "k901", &open_cmd("open-901", 901))
            .await
            .unwrap();
        wait_until_in_flight(&bus, key).await;
        // NATS goes away while case-service waits for the database: the commit will happen,
        // but neither the ack nor the event can reach the server.
        nats.stop();
        unlock_database(lock).await;
        eventually(WAIT, || async {
            (store.count_cases().await.unwrap() == 1).then_some(())
        })
        .await
        .expect("the open commits");
        svc.kill();
    }
    nats.restart().unwrap();
    let bus = connect(&nats.url()).await;
    assert!(
        case_events(&bus).await.is_empty(),
        "the event could not be published before the kill"
    );
    assert_eq!(
        ack_pending(&bus, key).await.map(|p| p.1),
        Some(1),
        "the command was never acked"
    );

    let _svc = Binary::start(&nats.url(), &db, &log);
    eventually(WAIT, || async {
        matches!(ack_pending(&bus, key).await, Some((0, 0))).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("the redelivered command is acked; log:\n{}", show_log(&log)));
    let events = eventually(WAIT, || async {
        let evs = case_events(&bus).await;
        (!evs.is_empty()).then_some(evs)
    })
    .await
    .expect("the outbox event is published after restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(store.count_cases().await.unwrap(), 1, "applied once");
    let events_after = case_events(&bus).await;
    assert_eq!(events_after.len(), 1, "{events:?}");
    assert!(matches!(events_after[0].event, Some(Event::Opened(_))));
    assert_eq!(events_after[0].command_id, "open-901");
    // The redelivery reached the handler and was answered from the stored result.
    let log = show_log(&log);
    assert!(
        log.lines()
            .any(|l| l.contains("Case command changed nothing.") && l.contains("duplicate")),
        "{log}"
    );
}
