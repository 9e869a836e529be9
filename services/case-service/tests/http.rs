//! HTTP API, case page and OpenAPI document, through `oneshot` and a real bound port.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use case_service::domain::{CaseNumber, CaseStatus, NewCase, TimelineEvent};
use case_service::http::{openapi, router, HttpState};
use case_service::links::PageLinks;
use case_service::store::{ChangeMeta, Store};
use common::TestDb;
use flexcord_proto::prost::Message;
use flexcord_proto::v1::{self, case_event::Event};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "test-token-0123456789";

fn links() -> PageLinks {
    PageLinks::new(
        "http://127.0.0.1:1",
        b"page-secret-for-tests",
        Duration::from_secs(3600),
    )
}

fn state(store: &Store) -> HttpState {
    HttpState::new(
        store.clone(),
        links(),
        &SecretString::from(TOKEN),
        "'self' http://127.0.0.1:*",
    )
}

fn new_case(interaction: u64, subject: &str, description: &str) -> NewCase {
    let open = v1::OpenCase {
        kind: v1::CaseKind::Bug as i32,
        subject: subject.into(),
        description: description.into(),
        severity: v1::Severity::Medium as i32,
        user: Some(v1::DiscordUser {
            id: 80351110224678912,
            username: "nelly".into(),
            display_name: "Nelly".into(),
            locale: "fr".into(),
        }),
        origin: Some(v1::CaseOrigin {
            channel_id: 1,
            interaction_id: interaction,
            interaction_token: "secret-interaction-token".into(),
            ..Default::default()
        }),
    };
    NewCase::from_proto(&open, "c").unwrap()
}

async fn open(store: &Store, interaction: u64, subject: &str) -> CaseNumber {
    store
        .open_case(
            &new_case(interaction, subject, "It breaks."),
            &ChangeMeta::http("test"),
        )
        .await
        .unwrap()
        .case
        .number
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

async fn call(store: &Store, req: Request<Body>) -> Resp {
    let res = router(state(store)).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn authed(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
}

fn json_req(method: Method, uri: &str, body: Value) -> Request<Body> {
    authed(method, uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get(uri: &str) -> Request<Body> {
    authed(Method::GET, uri).body(Body::empty()).unwrap()
}

async fn api_round_trips(db: &TestDb) {
    let s = &db.store;
    let n = open(s, 1, "Crash on login").await;
    open(s, 2, "Dark mode").await;

    let list = call(s, get("/cases?limit=1")).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    let v = list.json();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["number"], "CASE-000002");
    assert_eq!(v["next_cursor"], "CASE-000002");
    assert!(v["items"][0].get("timeline").is_none());
    let p2 = call(s, get("/cases?limit=1&cursor=CASE-000002"))
        .await
        .json();
    assert_eq!(p2["items"][0]["number"], "CASE-000001");
    assert_eq!(p2["next_cursor"], Value::Null);
    let found = call(
        s,
        get("/cases?q=LOGIN&status=open&kind=bug&user=80351110224678912"),
    )
    .await
    .json();
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["subject"], "Crash on login");

    let one = call(s, get(&format!("/cases/{n}"))).await;
    assert_eq!(one.status, StatusCode::OK);
    let c = one.json();
    assert_eq!(c["number"], "CASE-000001");
    assert_eq!(c["status"], "open");
    assert_eq!(c["user"]["id"], "80351110224678912");
    assert_eq!(c["user"]["locale"], "fr");
    assert_eq!(c["timeline"][0]["type"], "created");
    assert_eq!(
        c["allowed_statuses"],
        json!(["in_progress", "waiting_on_customer", "resolved", "closed"])
    );
    assert!(c["page_url"]
        .as_str()
        .unwrap()
        .contains("/cases/CASE-000001?exp="));
    assert!(
        !one.text.contains("secret-interaction-token"),
        "interaction token must not be served"
    );
    // Plain numbers work too.
    assert_eq!(call(s, get("/cases/1")).await.status, StatusCode::OK);

    let patched = call(
        s,
        json_req(Method::PATCH, "/cases/CASE-000001", json!({"status": "in_progress", "priority": "urgent", "assignee": "ana", "actor": "agent:ana"})),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    let c = patched.json();
    assert_eq!(c["status"], "in_progress");
    assert_eq!(c["priority"], "urgent");
    assert_eq!(c["assignee"], "ana");
    let types: Vec<_> = c["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "created",
            "status_changed",
            "priority_changed",
            "assignee_changed"
        ]
    );
    assert_eq!(c["timeline"][1]["actor"], "agent:ana");
    assert_eq!(c["timeline"][1]["from"], "open");

    let noted = call(
        s,
        json_req(
            Method::POST,
            "/cases/CASE-000001/notes",
            json!({"author": "Ana", "text": "Asked for logs"}),
        ),
    )
    .await;
    assert_eq!(noted.status, StatusCode::CREATED, "{}", noted.text);
    let last = noted.json()["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["type"], "note");
    assert_eq!(last["text"], "Asked for logs");

    let resolved = call(
        s,
        json_req(
            Method::PATCH,
            "/cases/CASE-000001",
            json!({"status": "resolved", "comment": "fixed in 1.2"}),
        ),
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK);
    let closed = call(
        s,
        json_req(
            Method::PATCH,
            "/cases/CASE-000001",
            json!({"status": "closed"}),
        ),
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK);
    let reopen = call(
        s,
        json_req(
            Method::PATCH,
            "/cases/CASE-000001",
            json!({"status": "open"}),
        ),
    )
    .await;
    assert_eq!(reopen.status, StatusCode::CONFLICT, "{}", reopen.text);
    let e = reopen.json();
    assert_eq!(e["field"], "status");
    assert!(e["error"].as_str().unwrap().contains("final"), "{e}");

    // Every API change is on its way to the bus, the resolution included.
    let evs: Vec<_> = s
        .pending_events(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| v1::CaseEvent::decode(&*r.payload).unwrap())
        .collect();
    let resolved_ev = evs
        .iter()
        .find(|e| matches!(&e.event, Some(Event::StatusChanged(sc)) if sc.to == v1::CaseStatus::Resolved as i32))
        .expect("a resolved event");
    assert_eq!(resolved_ev.command_id, "", "API changes have no command id");
    match &resolved_ev.event {
        Some(Event::StatusChanged(sc)) => {
            assert_eq!(sc.comment, "fixed in 1.2");
            assert_eq!(sc.actor, "api");
        }
        _ => unreachable!(),
    }
    assert!(evs
        .iter()
        .any(|e| matches!(&e.event, Some(Event::NoteAdded(n)) if n.text == "Asked for logs")));
}

async fn invalid_requests_get_clear_errors(db: &TestDb) {
    let s = &db.store;
    open(s, 1, "x").await;
    let patch = |body: &str, ct: &str| {
        authed(Method::PATCH, "/cases/CASE-000001")
            .header(header::CONTENT_TYPE, ct)
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let r = call(s, patch("{\"status\": ", "application/json")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let r = call(s, patch("{\"status\": \"resolved\"}", "text/plain")).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = call(s, patch("[1]", "application/json")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "body");
    let r = call(s, patch("{\"status\": \"done\"}", "application/json")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = r.json();
    assert_eq!(e["field"], "status");
    assert!(
        e["error"].as_str().unwrap().contains("open, in_progress"),
        "{e}"
    );
    let r = call(s, patch("{\"status\": 3}", "application/json")).await;
    assert_eq!(r.json()["field"], "status");
    let r = call(s, patch("{\"priority\": \"p1\"}", "application/json")).await;
    assert_eq!(r.json()["field"], "priority");
    let r = call(s, patch("{\"colour\": \"red\"}", "application/json")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.json()["error"].as_str().unwrap().contains("colour"));
    let r = call(s, patch("{}", "application/json")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = call(s, patch("{\"assignee\": 5}", "application/json")).await;
    assert_eq!(r.json()["field"], "assignee");
    let big = format!("{{\"comment\": \"{}\"}}", "x".repeat(70 * 1024));
    let r = call(s, patch(&big, "application/json")).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = call(
        s,
        json_req(
            Method::POST,
            "/cases/CASE-000001/notes",
            json!({"author": "Ana"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["field"], "text");
    let r = call(
        s,
        json_req(
            Method::POST,
            "/cases/CASE-000001/notes",
            json!({"author": "Ana", "text": "x".repeat(4001)}),
        ),
    )
    .await;
    assert_eq!(r.json()["field"], "text");
    let r = call(
        s,
        json_req(
            Method::PATCH,
            "/cases/CASE-000999",
            json!({"status": "closed"}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].as_str().unwrap().contains("CASE-000999"));
    assert_eq!(
        call(s, get("/cases/nope")).await.status,
        StatusCode::NOT_FOUND
    );
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("status=done", "status"),
        ("kind=x", "kind"),
        ("user=abc", "user"),
        ("cursor=x", "cursor"),
        ("sort=asc", "query"),
    ] {
        let r = call(s, get(&format!("/cases?{q}"))).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(r.json()["field"], field, "{q}");
    }
    // Nothing above changed the case.
    let c = s
        .get_case(CaseNumber::new(1).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, CaseStatus::Open);
    assert_eq!(s.timeline(c.number).await.unwrap().len(), 1);
}

on_both_backends!(api_round_trips, invalid_requests_get_clear_errors);

#[tokio::test]
async fn the_api_needs_the_bearer_token() {
    let db = TestDb::sqlite().await;
    let s = &db.store;
    open(s, 1, "x").await;
    for req in [
        Request::get("/cases").body(Body::empty()).unwrap(),
        Request::get("/cases")
            .header(header::AUTHORIZATION, "Bearer wrong-token")
            .body(Body::empty())
            .unwrap(),
        Request::get("/cases")
            .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
            .body(Body::empty())
            .unwrap(),
        Request::get("/cases/CASE-000001")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap(),
        Request::patch("/cases/CASE-000001")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{\"status\":\"closed\"}"))
            .unwrap(),
        Request::post("/cases/CASE-000001/notes")
            .body(Body::empty())
            .unwrap(),
        Request::get("/cases/CASE-000001/link")
            .body(Body::empty())
            .unwrap(),
    ] {
        let uri = req.uri().to_string();
        let r = call(s, req).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(r.headers.get(header::WWW_AUTHENTICATE).unwrap(), "Bearer");
        assert!(r.json()["error"].as_str().unwrap().contains("bearer"));
    }
    let ok = Request::get("/cases")
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(s, ok).await.status, StatusCode::OK);
    assert_eq!(
        s.get_case(CaseNumber::new(1).unwrap())
            .await
            .unwrap()
            .unwrap()
            .status,
        CaseStatus::Open
    );
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_owned());
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_lists_every_route_and_resolves_every_ref() {
    let db = TestDb::sqlite().await;
    let r = call(
        &db.store,
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    for (method, path) in openapi::ROUTES {
        let op = &doc["paths"][*path][*method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
    }
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented += 1;
            assert!(
                openapi::ROUTES.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is not served"
            );
        }
    }
    assert_eq!(documented, openapi::ROUTES.len());
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 10);
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    // Every documented route is actually routed (not the 404 fallback).
    let s = &db.store;
    open(s, 1, "x").await;
    for (method, path) in openapi::ROUTES {
        let uri = path.replace("{number}", "CASE-000001");
        let req = authed(method.to_uppercase().parse().unwrap(), &uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let r = call(s, req).await;
        assert!(
            !(r.status == StatusCode::NOT_FOUND && r.text.contains("no such route")),
            "{method} {path} is not routed"
        );
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
}

fn page_query(n: CaseNumber) -> String {
    links().query(n)
}

#[tokio::test]
async fn the_case_page_escapes_user_text_and_needs_a_valid_link() {
    let db = TestDb::sqlite().await;
    let s = &db.store;
    let n = s
        .open_case(
            &new_case(
                1,
                "<script>alert('x')</script>",
                "<img src=x onerror=alert(1)>",
            ),
            &ChangeMeta::http("test"),
        )
        .await
        .unwrap()
        .case
        .number;
    let r = call(
        s,
        Request::get(format!("/cases/{n}?{}", page_query(n)))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(!r.text.contains("<script>"), "{}", r.text);
    assert!(!r.text.contains("<img"));
    assert!(r
        .text
        .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(r.text.contains("data-status=\"in_progress\""));
    assert!(r.text.contains("id=\"timeline\""));
    assert!(!r.text.contains(TOKEN), "the API token never reaches HTML");
    assert!(!r.text.contains("secret-interaction-token"));
    let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' http://127.0.0.1:*"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"));
    assert!(
        r.headers.get("x-frame-options").is_none(),
        "the page must be frameable by Flex"
    );
    assert_eq!(r.headers[header::REFERRER_POLICY], "no-referrer");

    // Tampered, missing, other-case and expired links.
    let q = page_query(n);
    let tampered = q.replace("sig=", "sig=A");
    let r = call(
        s,
        Request::get(format!("/cases/{n}?{tampered}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let other = open(s, 2, "other").await;
    let r = call(
        s,
        Request::get(format!("/cases/{other}?{q}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(
        s,
        Request::get(format!("/cases/{n}"))
            .header(header::ACCEPT, "text/html")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("incomplete"));
    let expired = links().query_at(n, 1_000);
    let r = call(
        s,
        Request::get(format!("/cases/{n}?{expired}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("expired"));
    let r = call(
        s,
        Request::post(format!("/cases/{n}/page/status?{tampered}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("status=closed"))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get_case(n).await.unwrap().unwrap().status,
        CaseStatus::Open
    );
}

#[tokio::test]
async fn the_case_page_forms_change_the_case() {
    let db = TestDb::sqlite().await;
    let s = &db.store;
    let n = open(s, 1, "Login").await;
    let q = page_query(n);
    let post = |path: &str, body: &str| {
        Request::post(format!("/cases/{n}/page/{path}?{q}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap()
    };
    let r = call(s, post("status", "status=resolved")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert_eq!(
        r.headers[header::LOCATION].to_str().unwrap(),
        format!("/cases/{n}?{q}")
    );
    assert_eq!(
        s.get_case(n).await.unwrap().unwrap().status,
        CaseStatus::Resolved
    );
    let r = call(s, post("notes", "author=Ana&text=Called+the+user")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let tl = s.timeline(n).await.unwrap();
    assert_eq!(tl[1].actor, "case-page");
    assert_eq!(tl.last().unwrap().actor, "case-page");
    assert!(
        matches!(&tl.last().unwrap().event, TimelineEvent::Note { author, text } if author == "Ana" && text == "Called the user")
    );
    let r = call(s, post("status", "status=closed")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = call(s, post("status", "status=open")).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.text.contains("final"), "{}", r.text);
    let r = call(s, post("status", "status=bogus")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = call(s, post("notes", "author=Ana&text=")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.get_case(n).await.unwrap().unwrap().status,
        CaseStatus::Closed
    );
}

#[tokio::test]
async fn the_api_works_on_a_real_port() {
    let db = TestDb::sqlite().await;
    let n = open(&db.store, 1, "Real port").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(case_service::http::serve(
        listener,
        state(&db.store),
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let r = client
        .get(format!("{base}/cases/{n}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["subject"], "Real port");
    let r = client
        .patch(format!("{base}/cases/{n}"))
        .bearer_auth(TOKEN)
        .json(&json!({"status": "waiting_on_customer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(format!("{base}/cases")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let link = client
        .get(format!("{base}/cases/{n}/link"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let url = link.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path_and_query = &url[url.find("/cases/").unwrap()..];
    let page = client
        .get(format!("{base}{path_and_query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("waiting_on_customer"));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
