//! The announcement relay against a local feed server (no internet): the newest item only on a
//! feed's first poll, each new item once, nothing again after a restart, bad feeds logged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use bot_router::announcements::{item_event_id, Relay};
use bot_router::config::AnnouncementSettings;
use bot_router::metrics::RouterMetrics;
use common::*;
use flexcord_proto::v1::discord_outbound;

type Feed = Arc<Mutex<String>>;

/// Item `n` is dated `n` hours after a point ten hours ago; item 0 and below are a month old.
fn rss(items: &[(u32, &str)]) -> String {
    let base = chrono::Utc::now() - chrono::Duration::hours(10);
    let mut body = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Starfall news</title>"#,
    );
    // Newest first, as feeds do.
    for (n, title) in items.iter().rev() {
        body.push_str(&format!(
            "<item><title>{title}</title><link>https://news.example/{n}</link><guid>post-{n}</guid>\
             <description>&lt;p&gt;Details of post {n}&lt;/p&gt;</description>\
             <pubDate>{date}</pubDate></item>",
            date = if *n == 0 {
                (base - chrono::Duration::days(30)).to_rfc2822()
            } else {
                (base + chrono::Duration::hours(i64::from(*n))).to_rfc2822()
            }
        ));
    }
    body.push_str("</channel></rss>");
    body
}

async fn serve(feed: Feed) -> String {
    let app = axum::Router::new()
        .route(
            "/feed.xml",
            get(|State(f): State<Feed>| async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/rss+xml")],
                    f.lock().unwrap().clone(),
                )
            }),
        )
        .route(
            "/broken.xml",
            get(|| async { "<rss><channel><item><title>half" }),
        )
        .route(
            "/html",
            get(|| async { "<html><body>not a feed</body></html>" }),
        )
        .with_state(feed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn announces(all: &[Out<flexcord_proto::v1::DiscordOutbound>]) -> Vec<String> {
    all.iter()
        .filter(|o| o.msg_id.starts_with("announce."))
        .map(|o| sent(&o.event).embeds[0].title.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_each_item_once_and_survives_restarts_and_bad_feeds() {
    let env = Env::start().await;
    let feed: Feed = Arc::new(Mutex::new(rss(&[
        (1, "Season 1"),
        (2, "Patch 1.1"),
        (3, "Patch 1.2"),
    ])));
    let base = serve(feed.clone()).await;
    let good = format!("{base}/feed.xml");
    let settings = AnnouncementSettings::new(
        vec![
            url::Url::parse(&good).unwrap(),
            url::Url::parse(&format!("{base}/broken.xml")).unwrap(),
            url::Url::parse(&format!("{base}/html")).unwrap(),
            url::Url::parse(&format!("{base}/missing")).unwrap(),
        ],
        4_444,
    );
    let metrics = RouterMetrics::default();
    let relay = Relay::new(&env.bus, settings.clone(), metrics.clone())
        .await
        .unwrap();

    // First poll: only the newest item; the others are remembered as seen.
    let results = relay.poll_all().await;
    let good_result = results[0].as_ref().unwrap();
    assert_eq!((good_result.relayed, good_result.skipped), (1, 2));
    assert!(results[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("not well-formed XML"));
    assert!(results[2]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("not an RSS or Atom feed"));
    assert!(results[3]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("HTTP 404"));
    let all = discord_out(&env.bus).await;
    assert_eq!(announces(&all), ["Patch 1.2"]);
    let post = &all[0];
    assert_eq!(post.msg_id, item_event_id(&good, "post-3"));
    assert_eq!(post.key, "4444");
    assert_eq!(
        post.event.target,
        Some(discord_outbound::Target::ChannelId(4_444))
    );
    let e = &sent(&post.event).embeds[0];
    assert_eq!(e.url, "https://news.example/3");
    assert_eq!(e.description, "Details of post 3");
    assert_eq!(e.footer, "Starfall news");
    assert!(e.timestamp.is_some());

    // Nothing new: nothing relayed.
    let results = relay.poll_all().await;
    assert_eq!(results[0].as_ref().unwrap().relayed, 0);

    // Two new posts: both relayed, oldest first.
    *feed.lock().unwrap() = rss(&[
        (1, "Season 1"),
        (2, "Patch 1.1"),
        (3, "Patch 1.2"),
        (4, "Event: Winter Cup"),
        (5, "Patch 1.3"),
    ]);
    assert_eq!(relay.poll_all().await[0].as_ref().unwrap().relayed, 2);
    assert_eq!(
        announces(&discord_out(&env.bus).await),
        ["Patch 1.2", "Event: Winter Cup", "Patch 1.3"]
    );

    // An old post that shows up late (the feed exposed its archive) is not relayed.
    *feed.lock().unwrap() = rss(&[(0, "Archive"), (3, "Patch 1.2"), (5, "Patch 1.3")]);
    let r = relay.poll_all().await;
    assert_eq!(
        (
            r[0].as_ref().unwrap().relayed,
            r[0].as_ref().unwrap().skipped
        ),
        (0, 1)
    );

    // "Restart": a new relay with the same KV relays nothing again, then only what is new.
    drop(relay);
    let relay = Relay::new(&env.bus, settings, metrics).await.unwrap();
    assert_eq!(relay.poll_all().await[0].as_ref().unwrap().relayed, 0);
    *feed.lock().unwrap() = rss(&[(3, "Patch 1.2"), (5, "Patch 1.3"), (6, "Patch 1.4")]);
    assert_eq!(relay.poll_all().await[0].as_ref().unwrap().relayed, 1);
    assert_eq!(
        announces(&discord_out(&env.bus).await),
        ["Patch 1.2", "Event: Winter Cup", "Patch 1.3", "Patch 1.4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_service_relays_once_across_a_restart() {
    let env = Env::start().await;
    let feed: Feed = Arc::new(Mutex::new(rss(&[(1, "Old news"), (2, "Launch day")])));
    let base = serve(feed.clone()).await;
    let mut config = env.config();
    let mut settings = AnnouncementSettings::new(
        vec![url::Url::parse(&format!("{base}/feed.xml")).unwrap()],
        5_555,
    );
    settings.poll_interval = Duration::from_millis(200);
    config.announcements = Some(settings);

    let router = RouterHandle::start(config.clone());
    flexcord_harness::eventually(WAIT, || async {
        (announces(&discord_out(&env.bus).await) == ["Launch day"]).then_some(())
    })
    .await
    .expect("newest item relayed");
    router.stop().await;

    *feed.lock().unwrap() = rss(&[(1, "Old news"), (2, "Launch day"), (3, "Hotfix")]);
    let router = RouterHandle::start(config);
    flexcord_harness::eventually(WAIT, || async {
        (announces(&discord_out(&env.bus).await).len() >= 2).then_some(())
    })
    .await
    .expect("new item relayed");
    // Several more polls happen; still exactly these two posts.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        announces(&discord_out(&env.bus).await),
        ["Launch day", "Hotfix"]
    );
    router.stop().await;
}
