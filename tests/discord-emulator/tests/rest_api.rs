//! The REST surface over real HTTP (reqwest): auth, Discord error bodies and limits, rate-limit
//! headers and 429s, injected faults, uploads and the attachment CDN, message listing,
//! interaction timing rules, mentions, guild channel setup, command registration.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use discord_emulator::{
    BucketLimit, ChannelSpec, Control, Emulator, EmulatorConfig, Fault, FaultSpec, NewUser,
    RunningEmulator, SlashCommand, UserMessage,
};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "rest-test-token";

struct Api {
    http: reqwest::Client,
    base: String,
    control: Control,
    _emu: RunningEmulator,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn num(&self, name: &str) -> f64 {
        self.header(name)
            .unwrap_or_else(|| panic!("missing {name}"))
            .parse()
            .unwrap_or_else(|_| panic!("{name} not numeric"))
    }
    fn code(&self) -> (u16, i64) {
        (
            self.status.as_u16(),
            self.body["code"].as_i64().unwrap_or(-1),
        )
    }
}

async fn start(cfg: EmulatorConfig) -> Api {
    let emu = Emulator::start(cfg).await.unwrap();
    Api {
        http: reqwest::Client::new(),
        base: emu.api_base(),
        control: emu.control(),
        _emu: emu,
    }
}

fn cfg() -> EmulatorConfig {
    EmulatorConfig::new(TOKEN).with_channels(vec![
        ChannelSpec::text("general"),
        ChannelSpec::text("bugs"),
    ])
}

impl Api {
    async fn call(&self, method: Method, path: &str, body: Option<Value>, auth: bool) -> Resp {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if auth {
            req = req.header("Authorization", format!("Bot {TOKEN}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Resp {
            status,
            headers,
            body,
        }
    }
    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None, true).await
    }
    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(body), true).await
    }
    async fn patch(&self, path: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body), true).await
    }
    async fn delete(&self, path: &str) -> Resp {
        self.call(Method::DELETE, path, None, true).await
    }
    fn channel(&self, name: &str) -> u64 {
        self.control.channel_id(name).unwrap()
    }
    async fn register(&self) {
        let app = self.control.application_id();
        let r = self
            .call(
                Method::PUT,
                &format!("/applications/{app}/commands"),
                Some(json!([
                    {"name": "bug", "description": "Report a bug", "options": [
                        {"type": 3, "name": "title", "description": "Title", "required": true}]},
                    {"name": "helpme", "description": "Help", "name_localizations": {"fr": "aidemoi"}}
                ])),
                true,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
}

#[tokio::test]
async fn auth_gateway_info_and_unknown_routes() {
    let api = start(cfg()).await;
    let r = api.call(Method::GET, "/users/@me", None, false).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, json!({"code": 0, "message": "401: Unauthorized"}));
    let r = api
        .http
        .get(format!("{}/users/@me", api.base))
        .header("Authorization", "Bot wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = api
        .http
        .get(format!("{}/users/@me", api.base))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let me = api.get("/users/@me").await;
    let me: serenity::all::CurrentUser = serde_json::from_value(me.body).unwrap();
    assert_eq!(me.id.get(), api.control.bot_user_id());
    assert!(me.bot);
    let gw: serenity::all::Gateway =
        serde_json::from_value(api.get("/gateway").await.body).unwrap();
    assert_eq!(gw.url, api._emu.gateway_url());
    assert!(!gw.url.contains('?'));
    let _: serenity::all::BotGateway =
        serde_json::from_value(api.get("/gateway/bot").await.body).unwrap();

    let r = api.get("/nope/at/all").await;
    assert_eq!(r.code(), (404, 0));
    let r = api.call(Method::PUT, "/gateway", None, true).await;
    assert_eq!(r.code(), (405, 0));
    let r = api.get("/channels/not-a-number").await;
    assert_eq!(r.code(), (400, 50035));
    assert!(r.body["errors"]["channel_id"]["_errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("snowflake"));
    assert_eq!(
        api.control.route("GET /users/@me").client_errors,
        3,
        "the three 401s are counted for the route"
    );
}

#[tokio::test]
async fn bucket_burst_gets_429_with_discord_headers() {
    let api = start(cfg()).await;
    let general = api.channel("general");
    let path = format!("/channels/{general}/messages");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut bucket = None;
    for i in 0..5 {
        let r = api.post(&path, json!({"content": format!("m{i}")})).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(r.num("x-ratelimit-limit"), 5.0);
        assert_eq!(r.num("x-ratelimit-remaining"), f64::from(4 - i));
        let after = r.num("x-ratelimit-reset-after");
        assert!(after > 0.0 && after <= 5.0, "{after}");
        let reset = r.num("x-ratelimit-reset");
        assert!(reset > now && reset < now + 6.0, "{reset} vs {now}");
        let b = r.header("x-ratelimit-bucket").unwrap().to_string();
        assert!(b.len() == 32 && b.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            bucket.get_or_insert(b.clone()),
            &b,
            "same bucket for the same route"
        );
        assert!(r.header("x-ratelimit-global").is_none());
    }
    let r = api.post(&path, json!({"content": "one too many"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.body["message"], "You are being rate limited.");
    assert_eq!(r.body["global"], false);
    assert_eq!(r.body["code"], 0);
    let retry = r.body["retry_after"].as_f64().unwrap();
    assert!(retry > 0.0 && retry <= 5.0, "{retry}");
    assert_eq!(
        r.num("retry-after"),
        retry.ceil(),
        "Discord rounds the header up to whole seconds"
    );
    assert_eq!(r.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(r.num("x-ratelimit-remaining"), 0.0);
    assert!(r.header("x-ratelimit-global").is_none());
    let err: serenity::http::DiscordJsonError = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(err.code, 0);

    // Another channel is another bucket (major parameter).
    let bugs = api.channel("bugs");
    assert_eq!(
        api.post(
            &format!("/channels/{bugs}/messages"),
            json!({"content": "x"})
        )
        .await
        .status,
        200
    );

    // Exact fractional Retry-After when configured.
    let mut rl = api.control.rate_limits();
    rl.fractional_retry_after_header = true;
    rl.routes.insert(
        "POST /channels/{channel_id}/messages".into(),
        BucketLimit::new(1, 2_000),
    );
    api.control.set_rate_limits(rl);
    assert_eq!(api.post(&path, json!({"content": "a"})).await.status, 200);
    let r = api.post(&path, json!({"content": "b"})).await;
    assert_eq!(r.status, 429);
    let header = r.num("retry-after");
    assert!(
        header > 0.0 && header <= 2.0 && r.header("retry-after").unwrap().contains('.'),
        "{header}"
    );

    assert_eq!(
        api.control.bot_messages(general).len(),
        6,
        "429s created nothing"
    );
    let stats = api.control.route("POST /channels/{channel_id}/messages");
    assert_eq!((stats.calls, stats.ok, stats.rate_limited), (9, 7, 2));
}

#[tokio::test]
async fn global_limit_exempts_interactions_and_can_be_switched_off() {
    let mut c = cfg();
    c.rate_limits.global_per_second = 3;
    let api = start(c).await;
    api.register().await;
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    // Wait for the next global window so the registration above does not count.
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    for _ in 0..3 {
        assert_eq!(api.get("/users/@me").await.status, 200);
    }
    let r = api.get("/users/@me").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-ratelimit-global"), Some("true"));
    assert_eq!(r.header("x-ratelimit-scope"), Some("global"));
    assert_eq!(r.body["global"], true);
    assert!(
        r.header("x-ratelimit-limit").is_none(),
        "global 429s carry no bucket headers"
    );

    // Interaction callbacks are not bound to the global limit.
    let i = api
        .control
        .run_command(
            SlashCommand::in_channel(alice.id, api.channel("general"), "bug").arg("title", "x"),
        )
        .unwrap();
    let r = api
        .call(
            Method::POST,
            &format!("/interactions/{}/{}/callback", i.id, i.token),
            Some(json!({"type": 5})),
            false,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);

    api.control.set_rate_limits_enabled(false);
    let general = api.channel("general");
    for _ in 0..20 {
        let r = api
            .post(
                &format!("/channels/{general}/messages"),
                json!({"content": "bench"}),
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.num("x-ratelimit-remaining"),
            5.0,
            "never exhausted when off"
        );
    }
}

#[tokio::test]
async fn injected_faults() {
    let api = start(cfg()).await;
    let general = api.channel("general");
    let path = format!("/channels/{general}/messages");

    api.control.inject_fault(
        FaultSpec::new(
            1,
            Fault::RateLimit {
                retry_after: 0.25,
                global: true,
            },
        )
        .matching("POST", &path),
    );
    let r = api.get("/users/@me").await;
    assert_eq!(r.status, 200, "other routes are not affected");
    let r = api.post(&path, json!({"content": "x"})).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-ratelimit-global"), Some("true"));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.body["retry_after"], 0.25);
    assert_eq!(
        api.post(&path, json!({"content": "ok now"})).await.status,
        200
    );

    api.control.inject_fault(FaultSpec::new(
        1,
        Fault::RateLimit {
            retry_after: 1.5,
            global: false,
        },
    ));
    let r = api.post(&path, json!({"content": "x"})).await;
    assert_eq!(
        (r.status.as_u16(), r.header("x-ratelimit-scope")),
        (429, Some("user"))
    );
    assert!(r.header("x-ratelimit-global").is_none());
    assert_eq!(r.num("x-ratelimit-remaining"), 0.0);

    api.control.inject_fault(FaultSpec::new(
        2,
        Fault::ServerError {
            status: 503,
            after_handler: false,
        },
    ));
    for _ in 0..2 {
        let r = api.post(&path, json!({"content": "lost"})).await;
        assert_eq!(r.code(), (503, 0));
    }
    api.control.inject_fault(FaultSpec::new(
        1,
        Fault::ServerError {
            status: 502,
            after_handler: true,
        },
    ));
    let r = api.post(&path, json!({"content": "ambiguous"})).await;
    assert_eq!(r.status, 502);
    let contents: Vec<String> = api
        .control
        .bot_messages(general)
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(
        contents,
        vec!["ok now", "ambiguous"],
        "503s did nothing; the 502 came after the message was created"
    );

    api.control
        .inject_fault(FaultSpec::new(1, Fault::Latency { ms: 200 }));
    let t = Instant::now();
    assert_eq!(api.get("/users/@me").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    let stats = api.control.route("POST /channels/{channel_id}/messages");
    assert_eq!((stats.rate_limited, stats.server_errors), (2, 3));
}

#[tokio::test]
async fn message_errors_as_discord_sends_them() {
    let mut c = cfg();
    c.max_file_size = 1024;
    c.rate_limits.enabled = false;
    let api = start(c).await;
    let general = api.channel("general");
    let path = format!("/channels/{general}/messages");

    assert_eq!(
        api.post("/channels/123/messages", json!({"content": "x"}))
            .await
            .code(),
        (404, 10003)
    );
    let r = api.post(&path, json!({"content": "x".repeat(2001)})).await;
    assert_eq!(r.code(), (400, 50035));
    assert_eq!(r.body["message"], "Invalid Form Body");
    assert_eq!(
        r.body["errors"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let fields: Vec<Value> = (0..26)
        .map(|i| json!({"name": format!("f{i}"), "value": "v"}))
        .collect();
    assert_eq!(
        api.post(&path, json!({"embeds": [{"fields": fields}]}))
            .await
            .code(),
        (400, 50035)
    );
    let r = api.post(&path, json!({"embeds": [{"description": "a".repeat(4000)}, {"description": "b".repeat(2500)}]})).await;
    assert_eq!(
        r.body["errors"]["embeds"]["_errors"][0]["code"],
        "MAX_EMBED_SIZE_EXCEEDED"
    );
    assert_eq!(
        api.post(&path, json!({"content": "", "embeds": []}))
            .await
            .code(),
        (400, 50006)
    );
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .header("Authorization", format!("Bot {TOKEN}"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 50109);

    // Too-large file in a multipart upload: 413 / 40005.
    let form = reqwest::multipart::Form::new()
        .text(
            "payload_json",
            json!({"content": "big", "attachments": [{"id": 0, "filename": "big.bin"}]})
                .to_string(),
        )
        .part(
            "files[0]",
            reqwest::multipart::Part::bytes(vec![0u8; 2048]).file_name("big.bin"),
        );
    let r = api
        .http
        .post(format!("{}{path}", api.base))
        .header("Authorization", format!("Bot {TOKEN}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 40005);

    // Closed DMs: the channel can be opened, sending fails with 50007.
    let bob = api
        .control
        .create_user(NewUser::new("bob").dms_closed(true))
        .unwrap();
    let dm = api
        .post(
            "/users/@me/channels",
            json!({"recipient_id": bob.id.to_string()}),
        )
        .await;
    let dm: serenity::all::PrivateChannel = serde_json::from_value(dm.body).unwrap();
    let r = api
        .post(
            &format!("/channels/{}/messages", dm.id),
            json!({"content": "hi"}),
        )
        .await;
    assert_eq!(r.code(), (403, 50007));
    assert_eq!(r.body["message"], "Cannot send messages to this user");
    api.control.set_dms_closed(bob.id, false).unwrap();
    assert_eq!(
        api.post(
            &format!("/channels/{}/messages", dm.id),
            json!({"content": "hi"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        api.post("/users/@me/channels", json!({"recipient_id": "42"}))
            .await
            .code(),
        (404, 10013)
    );

    let stranger = api
        .control
        .create_user(NewUser::new("stranger").outside_guild())
        .unwrap();
    let dm = api
        .post(
            "/users/@me/channels",
            json!({"recipient_id": stranger.id.to_string()}),
        )
        .await;
    let r = api
        .post(
            &format!("/channels/{}/messages", dm.body["id"].as_str().unwrap()),
            json!({"content": "hi"}),
        )
        .await;
    assert_eq!(r.code(), (403, 50007), "no mutual guild");

    // Unknown message, editing someone else's message.
    assert_eq!(
        api.patch(&format!("{path}/1"), json!({"content": "x"}))
            .await
            .code(),
        (404, 10008)
    );
    assert_eq!(api.delete(&format!("{path}/1")).await.code(), (404, 10008));
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    let theirs = api
        .control
        .send_message(alice.id, general, UserMessage::text("mine"))
        .unwrap();
    assert_eq!(
        api.patch(
            &format!("{path}/{}", theirs.message_id),
            json!({"content": "x"})
        )
        .await
        .code(),
        (403, 50005)
    );

    // Edit and delete the bot's own message; the edit is recorded.
    let m = api.post(&path, json!({"content": "v1"})).await;
    let mid = m.body["id"].as_str().unwrap().to_string();
    let r = api
        .patch(&format!("{path}/{mid}"), json!({"content": "v2"}))
        .await;
    let edited: serenity::all::Message = serde_json::from_value(r.body).unwrap();
    assert_eq!(edited.content, "v2");
    assert!(edited.edited_timestamp.is_some());
    assert_eq!(api.delete(&format!("{path}/{mid}")).await.status, 204);
    let rec = api.control.message(general, mid.parse().unwrap()).unwrap();
    assert!(rec.deleted && rec.edits == 1 && rec.content == "v2");

    // A channel whose overwrite denies the bot's role SEND_MESSAGES: 50013.
    let guild = api.control.guild_id();
    let role = api.get(&format!("/guilds/{guild}/channels")).await; // any call, to check listing works
    assert_eq!(role.status, 200);
    let bot_role_deny = json!({"name": "locked", "permission_overwrites": [
        {"id": api.control.bot_user_id().to_string(), "type": 1, "allow": "0", "deny": "2048"}]});
    let locked = api
        .post(&format!("/guilds/{guild}/channels"), bot_role_deny)
        .await;
    assert_eq!(locked.status, 200, "{:?}", locked.body);
    let r = api
        .post(
            &format!("/channels/{}/messages", locked.body["id"].as_str().unwrap()),
            json!({"content": "x"}),
        )
        .await;
    assert_eq!(r.code(), (403, 50013));
}

#[tokio::test]
async fn multipart_uploads_and_the_attachment_cdn() {
    let api = start(cfg()).await;
    let general = api.channel("general");
    let payload = json!({"content": "files", "attachments": [
        {"id": 0, "filename": "report.txt", "description": "the report"}, {"id": 1, "filename": "pic.png"}]});
    let form = reqwest::multipart::Form::new()
        .text("payload_json", payload.to_string())
        .part(
            "files[0]",
            reqwest::multipart::Part::bytes(b"report body".to_vec())
                .file_name("report.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .part(
            "files[1]",
            reqwest::multipart::Part::bytes(vec![0x89, 0x50, 0x4e, 0x47]).file_name("pic.png"),
        );
    let r = api
        .http
        .post(format!("{}/channels/{general}/messages", api.base))
        .header("Authorization", format!("Bot {TOKEN}"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m: serenity::all::Message = r.json().await.unwrap();
    assert_eq!(m.attachments.len(), 2);
    assert_eq!(m.attachments[0].description.as_deref(), Some("the report"));
    assert_eq!(m.attachments[1].content_type.as_deref(), Some("image/png"));
    let got = api.http.get(&m.attachments[0].url).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "text/plain");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"report body");
    let rec = &api.control.bot_messages(general)[0];
    assert_eq!(rec.attachments[1].bytes, vec![0x89, 0x50, 0x4e, 0x47]);

    // A user's attachment is served too, and expires with a TTL.
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    let posted = api
        .control
        .send_dm(
            alice.id,
            UserMessage::text("pic")
                .with_file(discord_emulator::FileUpload::new("cat.jpg", vec![1, 2, 3])),
        )
        .unwrap();
    let url = posted.attachment_urls[0].clone();
    let r = api.http.get(&url).send().await.unwrap();
    assert_eq!(
        (
            r.status().as_u16(),
            r.headers()["content-type"].to_str().unwrap().to_string()
        ),
        (200, "image/jpeg".to_string())
    );
    api.control
        .set_attachment_ttl(Some(Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(api.http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(
        api.http
            .get(url.replace("cat.jpg", "dog.jpg"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn list_messages_newest_first_with_lenient_query() {
    let api = start(cfg()).await;
    api.control.set_rate_limits_enabled(false);
    let general = api.channel("general");
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    let ids: Vec<u64> = (0..5)
        .map(|i| {
            api.control
                .send_message(alice.id, general, UserMessage::text(format!("m{i}")))
                .unwrap()
                .message_id
        })
        .collect();
    let list = |q: String| {
        let api = &api;
        async move {
            let r = api.get(&format!("/channels/{general}/messages{q}")).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            let msgs: Vec<serenity::all::Message> = serde_json::from_value(r.body).unwrap();
            msgs.into_iter().map(|m| m.id.get()).collect::<Vec<u64>>()
        }
    };
    assert_eq!(list("?&limit=2".into()).await, vec![ids[4], ids[3]]);
    assert_eq!(
        list(format!("?&limit=3&after={}", ids[0])).await,
        vec![ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        list(format!("?after={}", ids[2])).await,
        vec![ids[4], ids[3]]
    );
    assert_eq!(
        list(format!("?&before={}&limit=2", ids[3])).await,
        vec![ids[2], ids[1]]
    );
    assert_eq!(
        list(String::new()).await,
        ids.iter().rev().copied().collect::<Vec<_>>()
    );
    assert_eq!(
        api.get(&format!("/channels/{general}/messages?limit=0"))
            .await
            .code(),
        (400, 50035)
    );
    let one = api
        .get(&format!("/channels/{general}/messages/{}", ids[1]))
        .await;
    assert_eq!(one.body["content"], "m1");
}

#[tokio::test]
async fn interaction_callback_timing_and_webhooks() {
    let mut c = cfg();
    // Generous deadlines so a loaded machine does not make the "in time" calls late.
    c.interaction_ack_deadline = Duration::from_millis(800);
    c.interaction_token_ttl = Duration::from_millis(2_000);
    let api = start(c).await;
    api.register().await;
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    let general = api.channel("general");
    let app = api.control.application_id();

    let i = api
        .control
        .run_command(SlashCommand::in_channel(alice.id, general, "bug").arg("title", "t"))
        .unwrap();
    let dispatched = Instant::now();
    let cb = format!("/interactions/{}/{}/callback", i.id, i.token);
    // No Authorization header on interaction routes, as in Discord.
    assert_eq!(
        api.call(Method::POST, &cb, Some(json!({"type": 6})), false)
            .await
            .code(),
        (400, 50035),
        "type 6 is for components"
    );
    let r = api
        .call(
            Method::POST,
            &cb,
            Some(json!({"type": 4, "data": {"content": "ok", "flags": 64}})),
            false,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        api.call(
            Method::POST,
            &cb,
            Some(json!({"type": 4, "data": {"content": "again"}})),
            false
        )
        .await
        .code(),
        (400, 40060)
    );
    let hook = format!("/webhooks/{app}/{}", i.token);
    let f = api
        .call(
            Method::POST,
            &hook,
            Some(json!({"content": "follow", "flags": 64})),
            false,
        )
        .await;
    assert_eq!(f.status, 200);
    let follow: serenity::all::Message = serde_json::from_value(f.body).unwrap();
    assert!(follow
        .flags
        .unwrap()
        .contains(serenity::all::MessageFlags::EPHEMERAL));
    let r = api
        .call(
            Method::PATCH,
            &format!("{hook}/messages/@original"),
            Some(json!({"content": "edited"})),
            false,
        )
        .await;
    assert_eq!(r.body["content"], "edited");
    assert_eq!(
        api.call(
            Method::DELETE,
            &format!("{hook}/messages/{}", follow.id),
            None,
            false
        )
        .await
        .status,
        204
    );
    assert_eq!(
        api.call(Method::GET, &format!("{hook}/messages/12345"), None, false)
            .await
            .code(),
        (404, 10008)
    );
    assert_eq!(
        api.call(
            Method::POST,
            &format!("/webhooks/999/{}", i.token),
            Some(json!({"content": "x"})),
            false
        )
        .await
        .code(),
        (404, 10015)
    );
    let rec = api.control.interaction(i.id).unwrap();
    assert_eq!(rec.rejected_callbacks.len(), 1);
    assert_eq!(rec.rejected_callbacks[0].0, 40060);
    assert!(rec.callback.as_ref().unwrap().ephemeral);

    // Too late: 10062, and the token never becomes a usable webhook.
    let late = api
        .control
        .run_command(SlashCommand::in_channel(alice.id, general, "bug").arg("title", "t"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    let r = api
        .call(
            Method::POST,
            &format!("/interactions/{}/{}/callback", late.id, late.token),
            Some(json!({"type": 5})),
            false,
        )
        .await;
    assert_eq!(r.code(), (404, 10062));
    assert_eq!(
        api.call(
            Method::POST,
            &format!("/webhooks/{app}/{}", late.token),
            Some(json!({"content": "x"})),
            false
        )
        .await
        .code(),
        (404, 10015)
    );
    assert_eq!(
        api.control.interaction(late.id).unwrap().rejected_callbacks[0].0,
        10062
    );
    assert_eq!(
        api.call(
            Method::POST,
            "/interactions/1/nope/callback",
            Some(json!({"type": 5})),
            false
        )
        .await
        .code(),
        (404, 10062)
    );

    // After the token lifetime, edits fail with Unknown Webhook.
    tokio::time::sleep_until((dispatched + Duration::from_millis(2_100)).into()).await;
    let r = api
        .call(
            Method::PATCH,
            &format!("{hook}/messages/@original"),
            Some(json!({"content": "too late"})),
            false,
        )
        .await;
    assert_eq!(r.code(), (404, 10015));

    // A component interaction answered with an update (type 7).
    let m = api
        .post(
            &format!("/channels/{general}/messages"),
            json!({"content": "Need a human?", "components": [{"type": 1, "components": [
            {"type": 2, "style": 1, "label": "Yes", "custom_id": "yes"}]}]}),
        )
        .await;
    let mid: u64 = m.body["id"].as_str().unwrap().parse().unwrap();
    let click = api
        .control
        .click_button(discord_emulator::ButtonClick::new(
            alice.id, general, mid, "yes",
        ))
        .unwrap();
    let r = api
        .call(
            Method::POST,
            &format!("/interactions/{}/{}/callback", click.id, click.token),
            Some(json!({"type": 7, "data": {"content": "On it", "components": []}})),
            false,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(api.control.message(general, mid).unwrap().content, "On it");
    assert!(
        api.control
            .click_button(discord_emulator::ButtonClick::new(
                alice.id, general, mid, "yes"
            ))
            .is_err(),
        "button removed"
    );
}

#[tokio::test]
async fn mentions_follow_allowed_mentions() {
    let api = start(cfg()).await;
    api.control.set_rate_limits_enabled(false);
    let general = api.channel("general");
    let alice = api.control.create_user(NewUser::new("alice")).unwrap();
    let bob = api.control.create_user(NewUser::new("bob")).unwrap();
    let path = format!("/channels/{general}/messages");
    let text = format!("@everyone see <@{}> and <@{}>", alice.id, bob.id);

    let r = api.post(&path, json!({"content": text})).await;
    assert_eq!(
        r.body["mention_everyone"], true,
        "absent allowed_mentions parses everything"
    );
    assert_eq!(r.body["mentions"].as_array().unwrap().len(), 2);
    api.post(
        &path,
        json!({"content": text, "allowed_mentions": {"parse": []}}),
    )
    .await;
    api.post(
        &path,
        json!({"content": text, "allowed_mentions": {"parse": ["users"]}}),
    )
    .await;
    api.post(
        &path,
        json!({"content": text, "allowed_mentions": {"users": [alice.id.to_string()]}}),
    )
    .await;
    let r = api
        .post(
            &path,
            json!({"content": text, "allowed_mentions": {"parse": ["users"], "users": ["1"]}}),
        )
        .await;
    assert_eq!(
        r.code(),
        (400, 50035),
        "parse users and users list are exclusive"
    );

    let pings: Vec<_> = api
        .control
        .bot_messages(general)
        .into_iter()
        .map(|m| m.pings)
        .collect();
    assert!(pings[0].everyone && pings[0].users == vec![alice.id, bob.id]);
    assert!(!pings[1].any());
    assert!(!pings[2].everyone && pings[2].users == vec![alice.id, bob.id]);
    assert!(!pings[3].everyone && pings[3].users == vec![alice.id]);

    // Replies ping the replied user unless replied_user is false.
    let theirs = api
        .control
        .send_message(alice.id, general, UserMessage::text("question"))
        .unwrap();
    let reference = json!({"message_id": theirs.message_id.to_string()});
    let r = api
        .post(
            &path,
            json!({"content": "answer", "message_reference": reference}),
        )
        .await;
    assert_eq!(r.body["type"], 19);
    api.post(&path, json!({"content": "answer", "message_reference": reference, "allowed_mentions": {"parse": [], "replied_user": false}})).await;
    let pings: Vec<_> = api
        .control
        .bot_messages(general)
        .into_iter()
        .map(|m| m.pings)
        .collect();
    assert_eq!(pings[4].replied_user, Some(alice.id));
    assert_eq!(pings[5].replied_user, None);
    let r = api
        .post(
            &path,
            json!({"content": "x", "message_reference": {"message_id": "1"}}),
        )
        .await;
    assert_eq!(r.code(), (400, 50035));
}

#[tokio::test]
async fn guild_channel_setup() {
    let api = start(cfg()).await;
    let guild = api.control.guild_id();
    let list: Vec<serenity::all::GuildChannel> =
        serde_json::from_value(api.get(&format!("/guilds/{guild}/channels")).await.body).unwrap();
    assert_eq!(list.len(), 2);

    let r = api
        .post(
            &format!("/guilds/{guild}/channels"),
            json!({"name": "Bug Reports", "type": 0, "topic": "Report bugs with /bug",
                   "permission_overwrites": [{"id": guild.to_string(), "type": 0, "allow": "0", "deny": "2048"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let ch: serenity::all::GuildChannel = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(ch.name, "bug-reports");
    assert_eq!(ch.topic.as_deref(), Some("Report bugs with /bug"));
    let info = api.control.channel(ch.id.get()).unwrap();
    assert!(info.created_by_bot);
    assert_eq!(info.permission_overwrites[0]["deny"], "2048");
    assert_eq!(api.control.channel_id("bug-reports"), Some(ch.id.get()));

    let r = api
        .patch(
            &format!("/channels/{}", ch.id),
            json!({"topic": "new topic"}),
        )
        .await;
    assert_eq!(r.body["topic"], "new topic");
    let got: serenity::all::Channel =
        serde_json::from_value(api.get(&format!("/channels/{}", ch.id)).await.body).unwrap();
    assert!(
        matches!(got, serenity::all::Channel::Guild(ref g) if g.topic.as_deref() == Some("new topic"))
    );
    let kinds: Vec<String> = api
        .control
        .bot_events_in(ch.id.get())
        .iter()
        .map(|e| {
            format!("{:?}", e.action)
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, vec!["ChannelCreated", "ChannelUpdated"]);

    assert_eq!(
        api.post("/guilds/1/channels", json!({"name": "x"}))
            .await
            .code(),
        (404, 10004)
    );
    assert_eq!(
        api.post(
            &format!("/guilds/{guild}/channels"),
            json!({"topic": "no name"})
        )
        .await
        .code(),
        (400, 50035)
    );
    let unknown_target = json!({"name": "x", "permission_overwrites": [{"id": "5", "type": 0, "allow": "0", "deny": "0"}]});
    assert_eq!(
        api.post(&format!("/guilds/{guild}/channels"), unknown_target)
            .await
            .code(),
        (400, 50035)
    );
    let grant_admin = json!({"name": "x", "permission_overwrites": [{"id": guild.to_string(), "type": 0, "allow": "8", "deny": "0"}]});
    assert_eq!(
        api.post(&format!("/guilds/{guild}/channels"), grant_admin)
            .await
            .code(),
        (403, 50013)
    );
}

#[tokio::test]
async fn command_registration() {
    let api = start(cfg()).await;
    let app = api.control.application_id();
    let guild = api.control.guild_id();
    api.register().await;
    let got: Vec<serenity::all::Command> =
        serde_json::from_value(api.get(&format!("/applications/{app}/commands")).await.body)
            .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].name_localizations.as_ref().unwrap()["fr"], "aidemoi");
    let put = |path: String, body: Value| {
        let api = &api;
        async move { api.call(Method::PUT, &path, Some(body), true).await }
    };
    let r = put(
        format!("/applications/{app}/commands"),
        json!([{"name": "Not Valid", "description": "x"}]),
    )
    .await;
    assert_eq!(r.code(), (400, 50035));
    assert_eq!(
        put("/applications/1/commands".to_string(), json!([]))
            .await
            .code(),
        (404, 10002)
    );
    assert_eq!(
        put(format!("/applications/{app}/guilds/1/commands"), json!([]))
            .await
            .code(),
        (403, 50001)
    );
    let r = put(
        format!("/applications/{app}/guilds/{guild}/commands"),
        json!([{"name": "setup", "description": "Set up"}]),
    )
    .await;
    let cmds: Vec<serenity::all::Command> = serde_json::from_value(r.body).unwrap();
    assert_eq!(cmds[0].guild_id.map(|g| g.get()), Some(guild));
    assert_eq!(api.control.guild_commands().len(), 1);
    // default_member_permissions: only members holding the bits can run the command.
    let r = put(
        format!("/applications/{app}/guilds/{guild}/commands"),
        json!([{"name": "setup", "description": "Set up", "default_member_permissions": "16"}]),
    )
    .await;
    assert_eq!(r.status, 200);
    let general = api.channel("general");
    let member = api.control.create_user(NewUser::new("member")).unwrap();
    let admin = api
        .control
        .create_user(NewUser::new("boss").admin())
        .unwrap();
    assert!(matches!(
        api.control
            .run_command(SlashCommand::in_channel(member.id, general, "setup")),
        Err(discord_emulator::ControlError::Invalid(_))
    ));
    let i = api
        .control
        .run_command(SlashCommand::in_channel(admin.id, general, "setup"))
        .unwrap();
    assert_eq!(
        api.control
            .interaction(i.id)
            .unwrap()
            .command_name
            .as_deref(),
        Some("setup")
    );
    assert_eq!(
        api.control.global_commands().len(),
        2,
        "the failed PUT changed nothing"
    );
}

#[tokio::test]
async fn announcement_channel_is_read_only_for_members_but_the_bot_posts() {
    let api = start(EmulatorConfig::new(TOKEN).with_channels(vec![
        ChannelSpec::text("general"),
        ChannelSpec::announcement("announcements"),
    ]))
    .await;
    let ch = api.control.channel_id("announcements").unwrap();
    let r = api
        .post(
            &format!("/channels/{ch}/messages"),
            json!({"content": "Season 5 is live"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let user = api.control.create_user(NewUser::new("reader")).unwrap();
    let refused = api
        .control
        .send_message(user.id, ch, UserMessage::text("can I post?"));
    assert!(refused.is_err(), "members cannot post: {refused:?}");
    let general = api.control.channel_id("general").unwrap();
    api.control
        .send_message(user.id, general, UserMessage::text("hello"))
        .unwrap();
    assert_eq!(api.control.bot_messages(ch).len(), 1);
}

#[tokio::test]
async fn an_enforced_nonce_repeated_returns_the_first_message() {
    let mut c = cfg();
    c.rate_limits.enabled = false;
    let api = start(c).await;
    let general = api.channel("general");
    let path = format!("/channels/{general}/messages");
    let body = json!({"content": "once", "nonce": "n-1", "enforce_nonce": true});
    let first = api.post(&path, body.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let again = api.post(&path, body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"], "the first message back");
    // Without enforce_nonce, or with another nonce, a new message is created.
    let loose = api
        .post(&path, json!({"content": "twice", "nonce": "n-1"}))
        .await;
    assert_ne!(loose.body["id"], first.body["id"]);
    let other = api
        .post(
            &path,
            json!({"content": "other", "nonce": "n-2", "enforce_nonce": true}),
        )
        .await;
    assert_ne!(other.body["id"], first.body["id"]);
    let listed = api.get(&format!("{path}?limit=10")).await;
    let contents: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, vec!["other", "twice", "once"]);
}
