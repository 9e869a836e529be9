//! The case page in a real headless Chromium, embedded in an iframe the way Flex's CRM panel
//! shows it: the page renders the case and its timeline, user text stays text, and clicking a
//! status button changes the case in the store and on the page.
//!
//! Chromium is driven over the DevTools protocol by the small client below. The browser is
//! Debian's `/usr/bin/chromium` (or `CHROMIUM_BIN`); nothing is downloaded. A missing
//! browser fails the test with instructions: `make test` installs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use case_service::domain::{CaseStatus, NewCase};
use case_service::http::HttpState;
use case_service::links::PageLinks;
use case_service::store::ChangeMeta;
use common::TestDb;
use flexcord_proto::v1;
use futures::{SinkExt, StreamExt};
use secrecy::SecretString;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Browser {
    _child: tokio::process::Child,
    _profile: tempfile::TempDir,
    ws: Ws,
    next_id: u64,
}

impl Browser {
    async fn launch() -> Self {
        let bin = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        assert!(
            std::path::Path::new(&bin).exists(),
            "Chromium not found at {bin}: install it with `apt-get install -y chromium` \
             (make test does) or set CHROMIUM_BIN. This test does not skip."
        );
        let profile = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(&bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1000,1200",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let ws_url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(i) = line.find("ws://") {
                    return line[i..].trim().to_owned();
                }
            }
            panic!("Chromium exited before printing its DevTools address");
        })
        .await
        .expect("Chromium did not print its DevTools address within 30 s");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap();
        Self {
            _child: child,
            _profile: profile,
            ws,
            next_id: 0,
        }
    }

    /// Sends a DevTools command and waits for its answer (events in between are ignored).
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::Text(msg.to_string().into()))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer from Chromium"))
                .expect("DevTools socket closed")
                .unwrap();
            let Message::Text(t) = frame else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == json!(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }
}

/// A tab with its DevTools session.
struct Tab {
    session: String,
}

impl Tab {
    async fn open(b: &mut Browser, url: &str) -> Self {
        let target = b
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = b
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        let tab = Self {
            session: attached["sessionId"].as_str().unwrap().to_owned(),
        };
        b.call(Some(&tab.session), "Page.enable", json!({})).await;
        b.call(Some(&tab.session), "Page.navigate", json!({ "url": url }))
            .await;
        tab
    }

    /// Evaluates `js` in the top document.
    async fn eval_top(&self, b: &mut Browser, js: &str) -> Value {
        let r = b
            .call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({ "expression": js, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// The id of the child frame whose URL contains `needle`.
    async fn frame_id(&self, b: &mut Browser, needle: &str) -> Option<String> {
        let tree = b
            .call(Some(&self.session), "Page.getFrameTree", json!({}))
            .await;
        tree["frameTree"]["childFrames"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["frame"]["url"].as_str().unwrap_or("").contains(needle))
            .map(|f| f["frame"]["id"].as_str().unwrap().to_owned())
    }

    /// Evaluates `js` in the (cross-origin) case-page iframe, through an isolated world that
    /// shares its DOM.
    async fn eval_frame(&self, b: &mut Browser, frame: &str, js: &str) -> Value {
        let world = b
            .call(
                Some(&self.session),
                "Page.createIsolatedWorld",
                json!({ "frameId": frame, "worldName": "test" }),
            )
            .await;
        let r = b
            .call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({ "expression": js, "contextId": world["executionContextId"], "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Polls `js` in the iframe until it returns `want`.
    async fn wait_frame(&self, b: &mut Browser, frame: &str, js: &str, want: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.eval_frame(b, frame, js).await;
            if got == want {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{js} stayed {got}, wanted {want}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real mouse click at page coordinates.
    async fn click(&self, b: &mut Browser, x: f64, y: f64) {
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            b.call(
                Some(&self.session),
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_resolves_a_case_from_the_page_inside_an_iframe() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();

    // case-service on a free port, with links pointing at it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let links = PageLinks::new(&base, b"browser-test-page-secret", Duration::from_secs(600));
    let state = HttpState::new(
        store.clone(),
        links.clone(),
        &SecretString::from("browser-test-token-123"),
        "http://127.0.0.1:*",
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(case_service::http::serve(listener, state, shutdown.clone()));

    let open = v1::OpenCase {
        kind: v1::CaseKind::Bug as i32,
        subject: "Login fails <script>document.title='pwned'</script>".into(),
        description: "Steps:\n1. open app\n2. <b>tap</b> login".into(),
        severity: v1::Severity::High as i32,
        user: Some(v1::DiscordUser {
            id: 80351110224678912,
            username: "nelly".into(),
            display_name: "Nelly".into(),
            locale: "fr".into(),
        }),
        origin: Some(v1::CaseOrigin {
            interaction_id: 1,
            ..Default::default()
        }),
    };
    let n = store
        .open_case(
            &NewCase::from_proto(&open, "c").unwrap(),
            &ChangeMeta::http("discord-ingress"),
        )
        .await
        .unwrap()
        .case
        .number;
    store
        .change_case(
            n,
            &case_service::changes::Change::note("Ana", "Asked for a screen recording").unwrap(),
            &ChangeMeta::http("agent:ana"),
        )
        .await
        .unwrap();

    // A stand-in for the Flex CRM panel: another origin embedding the page in an iframe.
    let page_url = links.url(n);
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_url = format!("http://{}/", host.local_addr().unwrap());
    let iframe = format!(
        "<!doctype html><title>Flex</title><h1>CRM panel</h1>\
         <iframe id=\"crm\" src=\"{page_url}\" style=\"width:900px;height:1000px;border:0\"></iframe>"
    );
    let host_app = axum::Router::new().route("/", get(move || async move { Html(iframe.clone()) }));
    let host_shutdown = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(host, host_app)
            .with_graceful_shutdown(async move { host_shutdown.cancelled().await })
            .await
            .unwrap()
    });

    let mut b = Browser::launch().await;
    let tab = Tab::open(&mut b, &host_url).await;

    // Wait for the iframe to load the case page.
    let deadline = Instant::now() + Duration::from_secs(20);
    let frame = loop {
        if let Some(f) = tab.frame_id(&mut b, "/cases/").await {
            let ready = tab
                .eval_frame(
                    &mut b,
                    &f,
                    "document.readyState === 'complete' && !!document.getElementById('status')",
                )
                .await;
            if ready == json!(true) {
                break f;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the case page did not load in the iframe"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The case, rendered.
    let subject = tab
        .eval_frame(
            &mut b,
            &frame,
            "document.getElementById('subject').textContent",
        )
        .await;
    assert_eq!(
        subject,
        json!(format!(
            "{n} · Login fails <script>document.title='pwned'</script>"
        )),
        "user text is shown as text"
    );
    assert_eq!(
        tab.eval_frame(&mut b, &frame, "document.querySelectorAll('script').length")
            .await,
        json!(0)
    );
    assert_eq!(
        tab.eval_frame(
            &mut b,
            &frame,
            "document.querySelectorAll('#description b').length"
        )
        .await,
        json!(0)
    );
    assert_eq!(
        tab.eval_frame(
            &mut b,
            &frame,
            "document.getElementById('status').textContent"
        )
        .await,
        json!("open")
    );
    let user = tab
        .eval_frame(
            &mut b,
            &frame,
            "document.getElementById('user').textContent",
        )
        .await;
    assert!(user.as_str().unwrap().contains("Nelly (@nelly)"), "{user}");
    let timeline = tab
        .eval_frame(
            &mut b,
            &frame,
            "[...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)",
        )
        .await;
    assert_eq!(timeline, json!(["created", "note"]));
    let note = tab
        .eval_frame(
            &mut b,
            &frame,
            "document.querySelector('#timeline li[data-type=note]').textContent",
        )
        .await;
    assert!(
        note.as_str()
            .unwrap()
            .contains("Asked for a screen recording"),
        "{note}"
    );
    let buttons = tab
        .eval_frame(
            &mut b,
            &frame,
            "[...document.querySelectorAll('#actions button')].map(b => b.dataset.status)",
        )
        .await;
    assert_eq!(
        buttons,
        json!(["in_progress", "waiting_on_customer", "resolved", "closed"])
    );

    // Click "Resolve" with the mouse: button position in the frame plus the frame's offset.
    let frame_box = tab
        .eval_top(&mut b, "(() => { const r = document.getElementById('crm').getBoundingClientRect(); return [r.left, r.top]; })()")
        .await;
    let button_box = tab
        .eval_frame(
            &mut b,
            &frame,
            "(() => { const r = document.querySelector('button[data-status=resolved]').getBoundingClientRect(); \
             return [r.left + r.width / 2, r.top + r.height / 2]; })()",
        )
        .await;
    let x = frame_box[0].as_f64().unwrap() + button_box[0].as_f64().unwrap();
    let y = frame_box[1].as_f64().unwrap() + button_box[1].as_f64().unwrap();
    tab.click(&mut b, x, y).await;

    // The store changed...
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.get_case(n).await.unwrap().unwrap().status != CaseStatus::Resolved {
        assert!(
            Instant::now() < deadline,
            "the click did not resolve the case"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tl = store.timeline(n).await.unwrap();
    assert_eq!(tl.last().unwrap().actor, "case-page");

    // ...and the page, reloaded in the iframe after the form post, shows it.
    tab.wait_frame(
        &mut b,
        &frame,
        "document.getElementById('status') && document.getElementById('status').textContent",
        json!("resolved"),
    )
    .await;
    let timeline = tab
        .eval_frame(
            &mut b,
            &frame,
            "[...document.querySelectorAll('#timeline li')].map(li => li.dataset.type)",
        )
        .await;
    assert_eq!(timeline, json!(["created", "note", "status_changed"]));
    let buttons = tab
        .eval_frame(
            &mut b,
            &frame,
            "[...document.querySelectorAll('#actions button')].map(b => b.dataset.status)",
        )
        .await;
    assert_eq!(buttons, json!(["open", "in_progress", "closed"]));
    assert_eq!(
        tab.eval_top(&mut b, "document.title").await,
        json!("Flex"),
        "no script ran"
    );

    if let Ok(dir) = std::env::var("CASE_PAGE_SCREENSHOT_DIR") {
        let shot = b
            .call(
                Some(&tab.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await;
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(format!("{dir}/case-page.png"), png).unwrap();
    }
    shutdown.cancel();
}
