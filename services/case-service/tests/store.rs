//! Store and command handler behaviour, run on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use case_service::changes::Change;
use case_service::domain::{CaseKind, CaseNumber, CaseStatus, NewCase, Priority, TimelineEvent};
use case_service::store::{CaseFilter, ChangeMeta, Disposition, StoreError};
use case_service::{ApplyError, CommandHandler};
use common::TestDb;
use flexcord_proto::prost::Message;
use flexcord_proto::v1::{self, case_command::Command, case_event::Event};

fn open_cmd(command_id: &str, interaction_id: u64, subject: &str) -> v1::CaseCommand {
    v1::CaseCommand {
        command_id: command_id.into(),
        issued_at: None,
        actor: "discord-ingress".into(),
        command: Some(Command::Open(v1::OpenCase {
            kind: v1::CaseKind::Bug as i32,
            subject: subject.into(),
            description: "Steps: open the app.".into(),
            severity: v1::Severity::High as i32,
            user: Some(v1::DiscordUser {
                id: 80351110224678912,
                username: "nelly".into(),
                display_name: "Nelly".into(),
                locale: "fr".into(),
            }),
            origin: Some(v1::CaseOrigin {
                channel_id: 555,
                interaction_id,
                conversation_id: String::new(),
                interaction_token: "tok".into(),
                application_id: 1,
            }),
        })),
    }
}

fn status_cmd(command_id: &str, number: &str, status: v1::CaseStatus) -> v1::CaseCommand {
    v1::CaseCommand {
        command_id: command_id.into(),
        issued_at: None,
        actor: "bot-router".into(),
        command: Some(Command::UpdateStatus(v1::UpdateCaseStatus {
            case_number: number.into(),
            status: status as i32,
            comment: "because".into(),
        })),
    }
}

fn new_case(interaction_id: u64, subject: &str) -> NewCase {
    match open_cmd("c", interaction_id, subject).command {
        Some(Command::Open(o)) => NewCase::from_proto(&o, "c").unwrap(),
        _ => unreachable!(),
    }
}

async fn events(db: &TestDb) -> Vec<(String, v1::CaseEvent)> {
    db.store
        .pending_events(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            (
                e.subject_suffix.clone(),
                v1::CaseEvent::decode(&*e.payload).unwrap(),
            )
        })
        .collect()
}

async fn the_same_open_command_three_times_makes_one_case(db: &TestDb) {
    let h = CommandHandler::new(db.store.clone());
    let first = h.apply(open_cmd("cmd-1", 42, "Crash")).await.unwrap();
    assert_eq!(first.disposition, Disposition::Applied);
    assert_eq!(first.case_number.to_string(), "CASE-000001");
    for _ in 0..2 {
        let again = h.apply(open_cmd("cmd-1", 42, "Crash")).await.unwrap();
        assert_eq!(again.case_number, first.case_number);
        assert_eq!(again.disposition, Disposition::Duplicate);
    }
    // A different command for the same interaction (e.g. a retried publisher) too.
    let other = h.apply(open_cmd("cmd-2", 42, "Crash")).await.unwrap();
    assert_eq!(other.case_number, first.case_number);
    assert_eq!(other.disposition, Disposition::Duplicate);
    assert_eq!(db.store.count_cases().await.unwrap(), 1);
    let evs = events(db).await;
    assert_eq!(evs.len(), 1, "one opened event only");
    assert_eq!(evs[0].0, "opened");
    let case = evs[0].1.case.as_ref().unwrap();
    assert_eq!(case.number, "CASE-000001");
    assert_eq!(case.status, v1::CaseStatus::Open as i32);
    assert_eq!(case.priority, "high");
    assert_eq!(case.user.as_ref().unwrap().id, 80351110224678912);
    assert_eq!(evs[0].1.command_id, "cmd-1");
    assert_eq!(
        db.store.command_result("cmd-2").await.unwrap().unwrap().1,
        "duplicate"
    );
}

async fn concurrent_opens_of_one_interaction_make_one_case(db: &TestDb) {
    let mut tasks = Vec::new();
    for i in 0..6 {
        let h = CommandHandler::new(db.store.clone());
        tasks.push(tokio::spawn(async move {
            h.apply(open_cmd(&format!("race-{i}"), 7, "Race")).await
        }));
    }
    let mut numbers = Vec::new();
    for t in tasks {
        numbers.push(t.await.unwrap().unwrap().case_number);
    }
    numbers.dedup();
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    assert_eq!(db.store.count_cases().await.unwrap(), 1);
}

async fn transitions_are_enforced_and_recorded(db: &TestDb) {
    let s = &db.store;
    let w = s
        .open_case(&new_case(1, "Login"), &ChangeMeta::http("t"))
        .await
        .unwrap();
    let n = w.case.number;
    let api = ChangeMeta::http("api");
    for to in [
        CaseStatus::InProgress,
        CaseStatus::WaitingOnCustomer,
        CaseStatus::Resolved,
        CaseStatus::Open,
        CaseStatus::Closed,
    ] {
        let w = s
            .change_case(n, &Change::status(to, "").unwrap(), &api)
            .await
            .unwrap();
        assert_eq!(w.case.status, to);
        assert_eq!(w.disposition, Disposition::Applied);
    }
    let err = s
        .change_case(n, &Change::status(CaseStatus::Open, "").unwrap(), &api)
        .await
        .unwrap_err();
    match err {
        StoreError::InvalidTransition(f) => {
            assert_eq!(f.field, "status");
            assert!(f.reason.contains("final"), "{}", f.reason);
        }
        other => panic!("unexpected {other:?}"),
    }
    let case = s.get_case(n).await.unwrap().unwrap();
    assert_eq!(case.status, CaseStatus::Closed);
    let tl = s.timeline(n).await.unwrap();
    let kinds: Vec<_> = tl.iter().map(|e| e.event.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "status_changed",
            "status_changed",
            "status_changed",
            "status_changed",
            "status_changed"
        ]
    );
    assert_eq!(
        tl.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    // Same status again: valid, nothing written.
    let missing = CaseNumber::new(999).unwrap();
    assert!(matches!(
        s.change_case(
            missing,
            &Change::status(CaseStatus::Closed, "").unwrap(),
            &api
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn every_change_lands_in_case_timeline_and_outbox(db: &TestDb) {
    let s = &db.store;
    let n = s
        .open_case(&new_case(2, "Slow"), &ChangeMeta::http("t"))
        .await
        .unwrap()
        .case
        .number;
    let m = ChangeMeta::http("bot-router");
    s.change_case(n, &Change::link("CH123", "KD456").unwrap(), &m)
        .await
        .unwrap();
    s.change_case(n, &Change::assign("ana@example.com", "Ana").unwrap(), &m)
        .await
        .unwrap();
    s.change_case(
        n,
        &Change::note("Ana", "Asked for logs <b>now</b>").unwrap(),
        &m,
    )
    .await
    .unwrap();
    s.change_case(
        n,
        &Change::status(CaseStatus::Resolved, "fixed").unwrap(),
        &m,
    )
    .await
    .unwrap();
    s.change_case(n, &Change::csat(5, "merci").unwrap(), &m)
        .await
        .unwrap();
    let patch = Change::Patch {
        status: None,
        priority: Some(Priority::Urgent),
        severity: None,
        assignee: Some(Some("team-a".into())),
        comment: String::new(),
    };
    s.change_case(n, &patch, &ChangeMeta::http("api"))
        .await
        .unwrap();
    // A no-op patch writes nothing.
    let w = s
        .change_case(n, &patch, &ChangeMeta::http("api"))
        .await
        .unwrap();
    assert_eq!(w.disposition, Disposition::Unchanged);

    let c = s.get_case(n).await.unwrap().unwrap();
    assert_eq!(c.conversation_sid, "CH123");
    assert_eq!(c.interaction_sid, "KD456");
    assert_eq!(c.agent.as_ref().unwrap().name, "Ana");
    assert_eq!(c.status, CaseStatus::Resolved);
    assert_eq!(c.csat.as_ref().unwrap().rating, 5);
    assert_eq!(c.priority, Priority::Urgent);
    assert_eq!(c.assignee.as_deref(), Some("team-a"));
    assert!(c.updated_at >= c.created_at);

    let tl = s.timeline(n).await.unwrap();
    let kinds: Vec<_> = tl.iter().map(|e| e.event.type_name()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "conversation_linked",
            "agent_assigned",
            "status_changed",
            "note",
            "status_changed",
            "csat",
            "priority_changed",
            "assignee_changed"
        ]
    );
    assert!(
        matches!(&tl[4].event, TimelineEvent::Note { text, .. } if text == "Asked for logs <b>now</b>")
    );
    assert_eq!(tl[1].actor, "bot-router");

    let evs = events(db).await;
    let suffixes: Vec<_> = evs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        suffixes,
        [
            "opened",
            "updated",
            "updated",
            "status_changed",
            "note_added",
            "status_changed",
            "csat_recorded",
            "updated"
        ]
    );
    match evs[5].1.event.as_ref().unwrap() {
        Event::StatusChanged(sc) => {
            assert_eq!(sc.from, v1::CaseStatus::InProgress as i32);
            assert_eq!(sc.to, v1::CaseStatus::Resolved as i32);
            assert_eq!(sc.comment, "fixed");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The snapshot is the case after the change.
    assert_eq!(
        evs[5].1.case.as_ref().unwrap().status,
        v1::CaseStatus::Resolved as i32
    );
    // Event ids are unique; outbox ids ascend.
    let rows = s.pending_events(100).await.unwrap();
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    let mut ids: Vec<_> = rows.iter().map(|r| r.event_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), rows.len());
    // Deleting published events leaves the rest.
    assert_eq!(s.delete_events_through(rows[2].id).await.unwrap(), 3);
    assert_eq!(s.pending_events(100).await.unwrap().len(), rows.len() - 3);
}

async fn redelivered_change_commands_apply_once(db: &TestDb) {
    let h = CommandHandler::new(db.store.clone());
    let n = h.apply(open_cmd("o", 3, "x")).await.unwrap().case_number;
    let add_note = v1::CaseCommand {
        command_id: "note-1".into(),
        issued_at: None,
        actor: "bot-router".into(),
        command: Some(Command::AddNote(v1::AddCaseNote {
            case_number: n.to_string(),
            author: "bot".into(),
            text: "User sent a screenshot".into(),
        })),
    };
    for _ in 0..3 {
        h.apply(add_note.clone()).await.unwrap();
    }
    let notes = db
        .store
        .timeline(n)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, TimelineEvent::Note { .. }))
        .count();
    assert_eq!(notes, 1);
    // Status to the current status: unchanged, and recorded as such.
    let same = h
        .apply(status_cmd("s-0", &n.to_string(), v1::CaseStatus::Open))
        .await
        .unwrap();
    assert_eq!(same.disposition, Disposition::Unchanged);
    let again = h
        .apply(status_cmd("s-0", &n.to_string(), v1::CaseStatus::Open))
        .await
        .unwrap();
    assert_eq!(again.disposition, Disposition::Duplicate);
}

async fn refused_commands_are_rejected_once_with_an_event(db: &TestDb) {
    let h = CommandHandler::new(db.store.clone());
    let n = h.apply(open_cmd("o", 4, "x")).await.unwrap().case_number;
    h.apply(status_cmd("close", &n.to_string(), v1::CaseStatus::Closed))
        .await
        .unwrap();
    let before = events(db).await.len();

    let reopen = status_cmd("reopen", &n.to_string(), v1::CaseStatus::Open);
    for _ in 0..2 {
        match h.apply(reopen.clone()).await {
            Err(ApplyError::Permanent {
                reason,
                case_number,
            }) => {
                assert!(reason.contains("final"), "{reason}");
                assert_eq!(case_number, Some(n));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let evs = events(db).await;
    assert_eq!(
        evs.len(),
        before + 1,
        "one rejection event for two deliveries"
    );
    let (suffix, ev) = evs.last().unwrap();
    assert_eq!(suffix, "rejected");
    assert_eq!(ev.command_id, "reopen");
    assert_eq!(
        ev.case.as_ref().unwrap().status,
        v1::CaseStatus::Closed as i32
    );
    assert!(matches!(ev.event, Some(Event::Rejected(ref r)) if r.reason.contains("closed")));

    // Unknown case, invalid number, invalid payloads.
    let unknown = status_cmd("u", "CASE-000777", v1::CaseStatus::Resolved);
    assert!(
        matches!(h.apply(unknown).await, Err(ApplyError::Permanent { ref reason, .. }) if reason.contains("does not exist"))
    );
    let bad_number = status_cmd("b", "not-a-case", v1::CaseStatus::Resolved);
    assert!(
        matches!(h.apply(bad_number).await, Err(ApplyError::Permanent { ref reason, .. }) if reason.contains("case_number"))
    );
    let mut bad_open = open_cmd("bo", 5, "x");
    if let Some(Command::Open(o)) = &mut bad_open.command {
        o.kind = 0;
    }
    assert!(
        matches!(h.apply(bad_open).await, Err(ApplyError::Permanent { ref reason, .. }) if reason.starts_with("kind"))
    );
    let csat = v1::CaseCommand {
        command_id: "csat".into(),
        issued_at: None,
        actor: "bot-router".into(),
        command: Some(Command::RecordCsat(v1::RecordCsat {
            case_number: n.to_string(),
            rating: 9,
            comment: String::new(),
        })),
    };
    assert!(
        matches!(h.apply(csat).await, Err(ApplyError::Permanent { ref reason, .. }) if reason.starts_with("rating"))
    );
    assert!(matches!(
        h.apply_bytes(b"\xff\xff garbage").await,
        Err(ApplyError::Permanent { .. })
    ));
    let mut no_id = open_cmd("", 6, "x");
    no_id.command_id.clear();
    assert!(
        matches!(h.apply(no_id).await, Err(ApplyError::Permanent { ref reason, .. }) if reason.contains("command_id"))
    );
    let rejected = events(db)
        .await
        .into_iter()
        .filter(|(s, _)| s == "rejected")
        .count();
    assert_eq!(rejected, 5, "reopen, unknown, bad number, bad open, csat");
    assert_eq!(db.store.count_cases().await.unwrap(), 1);
}

async fn listing_filters_searches_and_pages(db: &TestDb) {
    let s = &db.store;
    let subjects = [
        "Crash on LOGIN",
        "Dark mode please",
        "Login is slow",
        "100% CPU",
        "Refund",
    ];
    for (i, subj) in subjects.iter().enumerate() {
        let mut c = new_case(100 + i as u64, subj);
        if i == 1 {
            c.kind = CaseKind::Feature;
        }
        if i == 4 {
            c.kind = CaseKind::Support;
            c.user.id = "42".into();
        }
        s.open_case(&c, &ChangeMeta::http("t")).await.unwrap();
    }
    let n3 = CaseNumber::new(3).unwrap();
    s.change_case(
        n3,
        &Change::status(CaseStatus::Resolved, "").unwrap(),
        &ChangeMeta::http("t"),
    )
    .await
    .unwrap();

    let all = s
        .list_cases(&CaseFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.cases.iter().map(|c| c.number.get()).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(all.next, None);

    let login = s
        .list_cases(&CaseFilter {
            text: Some("login".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        login
            .cases
            .iter()
            .map(|c| c.number.get())
            .collect::<Vec<_>>(),
        [3, 1]
    );
    let pct = s
        .list_cases(&CaseFilter {
            text: Some("0%".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pct.cases.len(), 1, "% is literal");
    let under = s
        .list_cases(&CaseFilter {
            text: Some("_".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(under.cases.len(), 0, "_ is literal");

    let resolved = s
        .list_cases(&CaseFilter {
            statuses: vec![CaseStatus::Resolved],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resolved.cases.len(), 1);
    let open_or_resolved = s
        .list_cases(&CaseFilter {
            statuses: vec![CaseStatus::Resolved, CaseStatus::Open],
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open_or_resolved.cases.len(), 5);
    let features = s
        .list_cases(&CaseFilter {
            kind: Some(CaseKind::Feature),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(features.cases[0].subject, "Dark mode please");
    let user = s
        .list_cases(&CaseFilter {
            user_id: Some("42".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(user.cases.len(), 1);

    let p1 = s
        .list_cases(&CaseFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p1.cases.iter().map(|c| c.number.get()).collect::<Vec<_>>(),
        [5, 4]
    );
    let p2 = s
        .list_cases(&CaseFilter {
            limit: 2,
            before: p1.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p2.cases.iter().map(|c| c.number.get()).collect::<Vec<_>>(),
        [3, 2]
    );
    let p3 = s
        .list_cases(&CaseFilter {
            limit: 2,
            before: p2.next,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        p3.cases.iter().map(|c| c.number.get()).collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(p3.next, None);
}

async fn a_restarted_store_keeps_cases_and_numbering(db: &TestDb) {
    db.store
        .open_case(&new_case(9, "a"), &ChangeMeta::http("t"))
        .await
        .unwrap();
    db.store.close().await;
    let again = db.reopen().await;
    let c = again
        .get_case(CaseNumber::new(1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.subject, "a");
    let w = again
        .open_case(&new_case(10, "b"), &ChangeMeta::http("t"))
        .await
        .unwrap();
    assert_eq!(w.case.number.to_string(), "CASE-000002");
    // Re-running migrations on an existing database is a no-op.
    let third = db.reopen().await;
    assert_eq!(third.count_cases().await.unwrap(), 2);
}

async fn concurrent_mixed_commands_stay_isolated_in_batches(db: &TestDb) {
    let h = CommandHandler::new(db.store.clone());
    let n = h
        .apply(open_cmd("first", 1, "first"))
        .await
        .unwrap()
        .case_number;
    h.apply(status_cmd(
        "close-first",
        &n.to_string(),
        v1::CaseStatus::Closed,
    ))
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..60u64 {
        let h = h.clone();
        let number = n.to_string();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => h
                    .apply(open_cmd(&format!("open-{i}"), 1000 + i, "x"))
                    .await
                    .map(|_| "opened"),
                1 => h
                    .apply(status_cmd(
                        &format!("reopen-{i}"),
                        &number,
                        v1::CaseStatus::Open,
                    ))
                    .await
                    .map(|_| "reopened"),
                _ => h
                    .apply(v1::CaseCommand {
                        command_id: format!("note-{i}"),
                        issued_at: None,
                        actor: "bot-router".into(),
                        command: Some(Command::AddNote(v1::AddCaseNote {
                            case_number: number,
                            author: "bot".into(),
                            text: format!("note {i}"),
                        })),
                    })
                    .await
                    .map(|_| "noted"),
            }
        }));
    }
    let mut opened = 0;
    let mut noted = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok("opened") => opened += 1,
            Ok("noted") => noted += 1,
            Ok(other) => panic!("unexpected success {other}"),
            Err(ApplyError::Permanent { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!((opened, noted, refused), (20, 20, 20));
    assert_eq!(db.store.count_cases().await.unwrap(), 21);
    let notes = db
        .store
        .timeline(n)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.event, TimelineEvent::Note { .. }))
        .count();
    assert_eq!(notes, 20);
    let evs = events(db).await;
    assert_eq!(evs.iter().filter(|(s, _)| s == "rejected").count(), 20);
    assert_eq!(evs.iter().filter(|(s, _)| s == "opened").count(), 21);
}

async fn two_writers_racing_on_the_same_keys_make_one_case_per_key(db: &TestDb) {
    // A second store is a second replica: its own writer, its own connections.
    let other = db.reopen().await;
    let a = CommandHandler::new(db.store.clone());
    let b = CommandHandler::new(other);
    let mut tasks = Vec::new();
    for i in 0..40u64 {
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let key = 5000 + i % 10;
            let (x, y) = tokio::join!(
                a.apply(open_cmd(&format!("a-{i}"), key, "race")),
                b.apply(open_cmd(&format!("b-{i}"), key, "race"))
            );
            (x.unwrap().case_number, y.unwrap().case_number)
        }));
    }
    for t in tasks {
        let (x, y) = t.await.unwrap();
        assert_eq!(x, y, "both replicas answer with the same case");
    }
    assert_eq!(db.store.count_cases().await.unwrap(), 10);
    assert_eq!(events(db).await.len(), 10);
}

on_both_backends!(
    concurrent_mixed_commands_stay_isolated_in_batches,
    two_writers_racing_on_the_same_keys_make_one_case_per_key,
    the_same_open_command_three_times_makes_one_case,
    concurrent_opens_of_one_interaction_make_one_case,
    transitions_are_enforced_and_recorded,
    every_change_lands_in_case_timeline_and_outbox,
    redelivered_change_commands_apply_once,
    refused_commands_are_rejected_once_with_an_event,
    listing_filters_searches_and_pages,
    a_restarted_store_keeps_cases_and_numbering,
);
