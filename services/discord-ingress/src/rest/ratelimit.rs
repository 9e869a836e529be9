//! The product's Discord rate limiter: per-route buckets learned from the `X-RateLimit-*` headers, the
//! global limit, and 429 waits.
//!
//! * Requests of one route and major parameter (e.g. every `POST /channels/123/messages`) take turns
//!   in FIFO order ([`RateLimiter::turn`]): one is in flight at a time, so a channel's sends can never
//!   overtake each other, and a 429 retry keeps its place in the line.
//! * Bucket state (limit, remaining, reset) is learned from each response's headers and keyed by the
//!   bucket id Discord names (`X-RateLimit-Bucket`) plus the major parameter, so routes that share a
//!   bucket share its count. When `remaining` is 0 the next request waits for the reset (pre-emptive).
//! * The global limit is a token bucket (default 50 requests/s); interaction callbacks and webhook
//!   routes are exempt, as on Discord. A global 429 blocks every non-exempt request for `retry_after`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tokio::sync::OwnedMutexGuard;

use super::routes::Route;

/// Maps above this size are pruned of idle entries.
const PRUNE_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct BucketState {
    limit: u32,
    remaining: u32,
    reset_at: Option<Instant>,
}

impl BucketState {
    /// How long a request must wait now, if at all.
    fn wait(&self, now: Instant) -> Option<Duration> {
        match self.reset_at {
            Some(reset) if reset > now && self.remaining == 0 => Some(reset - now),
            _ => None,
        }
    }
}

/// What the rate-limit headers of one response said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitHeaders {
    /// `X-RateLimit-Bucket`.
    pub bucket: Option<String>,
    /// `X-RateLimit-Limit`.
    pub limit: Option<u32>,
    /// `X-RateLimit-Remaining`.
    pub remaining: Option<u32>,
    /// `X-RateLimit-Reset-After` (seconds).
    pub reset_after: Option<Duration>,
    /// `X-RateLimit-Global` present.
    pub global: bool,
    /// `Retry-After` (seconds).
    pub retry_after: Option<Duration>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn seconds(v: Option<&str>) -> Option<Duration> {
    v.and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)))
}

impl LimitHeaders {
    /// Reads the headers; values that do not parse are ignored (never an error).
    pub fn parse(h: &HeaderMap) -> Self {
        LimitHeaders {
            bucket: header(h, "x-ratelimit-bucket")
                .filter(|b| !b.is_empty() && b.len() <= 128)
                .map(str::to_owned),
            limit: header(h, "x-ratelimit-limit").and_then(|v| v.parse().ok()),
            remaining: header(h, "x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset_after: seconds(header(h, "x-ratelimit-reset-after")),
            global: h.contains_key("x-ratelimit-global"),
            retry_after: seconds(header(h, "retry-after")),
        }
    }
}

/// The global limit: at most `per_second` requests in any window of one second (plus a small margin
/// for network jitter), so a server counting in fixed or sliding windows never sees too many; and a
/// block after a global 429.
#[derive(Debug)]
struct GlobalLimiter {
    per_second: usize,
    state: Mutex<GlobalState>,
}

#[derive(Debug)]
struct GlobalState {
    sent: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// The window of the global limit, with a margin for network jitter.
const GLOBAL_WINDOW: Duration = Duration::from_millis(1_020);

impl GlobalLimiter {
    fn new(per_second: u32) -> Self {
        let per_second = per_second.max(1) as usize;
        GlobalLimiter {
            per_second,
            state: Mutex::new(GlobalState {
                sent: VecDeque::with_capacity(per_second),
                blocked_until: None,
            }),
        }
    }

    /// Takes a slot, or says how long to wait for one.
    fn try_take(&self) -> Result<(), Duration> {
        let Ok(mut s) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        if let Some(until) = s.blocked_until {
            if until > now {
                return Err(until - now);
            }
            s.blocked_until = None;
        }
        while s
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= GLOBAL_WINDOW)
        {
            s.sent.pop_front();
        }
        if s.sent.len() < self.per_second {
            s.sent.push_back(now);
            Ok(())
        } else {
            let oldest = s.sent.front().copied().unwrap_or(now);
            Err((oldest + GLOBAL_WINDOW).saturating_duration_since(now))
        }
    }

    async fn acquire(&self) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            match self.try_take() {
                Ok(()) => return waited,
                Err(d) => {
                    let d = d.max(Duration::from_millis(1));
                    waited += d;
                    tokio::time::sleep(d).await;
                }
            }
        }
    }

    fn block_for(&self, d: Duration) {
        if let Ok(mut s) = self.state.lock() {
            let until = Instant::now() + d;
            if s.blocked_until.is_none_or(|u| u < until) {
                s.blocked_until = Some(until);
            }
        }
    }
}

/// FIFO turn queues keyed by route template and major parameter.
type Turns = HashMap<(&'static str, String), Arc<tokio::sync::Mutex<()>>>;

/// Per-route buckets, the global limit and FIFO turns per route + major parameter.
#[derive(Debug)]
pub struct RateLimiter {
    queues: Mutex<Turns>,
    buckets: Mutex<HashMap<String, BucketState>>,
    hashes: Mutex<HashMap<&'static str, String>>,
    global: GlobalLimiter,
}

impl RateLimiter {
    /// A limiter with `global_per_second` non-exempt requests per second.
    pub fn new(global_per_second: u32) -> Self {
        RateLimiter {
            queues: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            hashes: Mutex::new(HashMap::new()),
            global: GlobalLimiter::new(global_per_second),
        }
    }

    /// Waits for this request's turn on its route + major parameter (FIFO). Hold the guard for the
    /// whole request, retries included.
    pub async fn turn(&self, route: &Route) -> Option<OwnedMutexGuard<()>> {
        let queue = {
            let Ok(mut q) = self.queues.lock() else {
                return None;
            };
            if q.len() > PRUNE_AT {
                q.retain(|_, m| Arc::strong_count(m) > 1);
            }
            q.entry((route.key, route.major.clone()))
                .or_default()
                .clone()
        };
        Some(queue.lock_owned().await)
    }

    fn bucket_key(&self, route: &Route) -> String {
        let hash = self
            .hashes
            .lock()
            .ok()
            .and_then(|h| h.get(route.key).cloned());
        match hash {
            Some(h) => format!("{h}|{}", route.major),
            None => format!("{}|{}", route.key, route.major),
        }
    }

    /// Waits until the route's bucket and (unless exempt) the global limit allow one more request.
    /// Returns how long it waited.
    pub async fn wait(&self, route: &Route) -> Duration {
        let mut waited = Duration::ZERO;
        let key = self.bucket_key(route);
        loop {
            let wait = {
                let Ok(mut b) = self.buckets.lock() else {
                    break;
                };
                let now = Instant::now();
                match b.get_mut(&key) {
                    Some(state) => match state.wait(now) {
                        Some(d) => Some(d),
                        None => {
                            if state.reset_at.is_some_and(|r| r <= now) {
                                state.remaining = state.limit;
                                state.reset_at = None;
                            }
                            // Count the request now, so routes sharing the bucket see it.
                            state.remaining = state.remaining.saturating_sub(1);
                            None
                        }
                    },
                    None => None,
                }
            };
            match wait {
                Some(d) => {
                    waited += d;
                    tokio::time::sleep(d).await;
                }
                None => break,
            }
        }
        if !route.global_exempt {
            waited += self.global.acquire().await;
        }
        waited
    }

    /// Learns from a response's headers.
    pub fn on_response(&self, route: &Route, h: &LimitHeaders) {
        if let Some(bucket) = &h.bucket {
            if let Ok(mut hashes) = self.hashes.lock() {
                if hashes.get(route.key) != Some(bucket) {
                    hashes.insert(route.key, bucket.clone());
                }
            }
        }
        let (Some(limit), Some(remaining), Some(reset_after)) =
            (h.limit, h.remaining, h.reset_after)
        else {
            return;
        };
        let key = self.bucket_key(route);
        if let Ok(mut b) = self.buckets.lock() {
            if b.len() > PRUNE_AT {
                let now = Instant::now();
                b.retain(|_, s| s.reset_at.is_some_and(|r| r > now));
            }
            b.insert(
                key,
                BucketState {
                    limit,
                    remaining,
                    reset_at: Some(Instant::now() + reset_after),
                },
            );
        }
    }

    /// Records a 429: the route's bucket (or, for a global limit, every non-exempt route) waits
    /// `retry_after`.
    pub fn on_rate_limited(&self, route: &Route, retry_after: Duration, global: bool) {
        if global {
            self.global.block_for(retry_after);
            return;
        }
        let key = self.bucket_key(route);
        if let Ok(mut b) = self.buckets.lock() {
            let until = Instant::now() + retry_after;
            let entry = b.entry(key).or_insert(BucketState {
                limit: 1,
                remaining: 0,
                reset_at: Some(until),
            });
            entry.remaining = 0;
            if entry.reset_at.is_none_or(|r| r < until) {
                entry.reset_at = Some(until);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn parses_headers_leniently() {
        let h = LimitHeaders::parse(&headers(&[
            ("x-ratelimit-bucket", "abc"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "1.250"),
            ("retry-after", "2"),
        ]));
        assert_eq!(h.bucket.as_deref(), Some("abc"));
        assert_eq!((h.limit, h.remaining), (Some(5), Some(0)));
        assert_eq!(h.reset_after, Some(Duration::from_millis(1250)));
        assert_eq!(h.retry_after, Some(Duration::from_secs(2)));
        assert!(!h.global);
        let bad = LimitHeaders::parse(&headers(&[
            ("x-ratelimit-limit", "lots"),
            ("x-ratelimit-reset-after", "-1"),
            ("x-ratelimit-global", "true"),
        ]));
        assert_eq!(bad.limit, None);
        assert_eq!(bad.reset_after, None);
        assert!(bad.global);
    }

    #[tokio::test]
    async fn waits_when_the_bucket_is_empty_and_shares_learned_buckets() {
        let rl = RateLimiter::new(1000);
        let r = Route::create_message(1);
        assert!(rl.wait(&r).await < Duration::from_millis(5));
        rl.on_response(
            &r,
            &LimitHeaders {
                bucket: Some("b1".into()),
                limit: Some(1),
                remaining: Some(0),
                reset_after: Some(Duration::from_millis(150)),
                ..Default::default()
            },
        );
        let t = Instant::now();
        rl.wait(&r).await;
        assert!(
            t.elapsed() >= Duration::from_millis(140),
            "{:?}",
            t.elapsed()
        );
        // Another channel is another bucket.
        let t = Instant::now();
        rl.wait(&Route::create_message(2)).await;
        assert!(t.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_429_blocks_its_bucket_and_a_global_429_blocks_non_exempt_routes() {
        let rl = RateLimiter::new(1000);
        let r = Route::create_message(1);
        rl.on_rate_limited(&r, Duration::from_millis(120), false);
        let t = Instant::now();
        rl.wait(&r).await;
        assert!(t.elapsed() >= Duration::from_millis(110));
        rl.on_rate_limited(&r, Duration::from_millis(120), true);
        let t = Instant::now();
        rl.wait(&Route::interaction_callback(1, "t")).await;
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "interaction callbacks are exempt"
        );
        rl.wait(&Route::create_message(9)).await;
        assert!(t.elapsed() >= Duration::from_millis(110));
    }

    #[tokio::test]
    async fn global_token_bucket_paces_requests() {
        let rl = RateLimiter::new(20);
        let t = Instant::now();
        for i in 0..30 {
            rl.wait(&Route::create_message(i)).await;
        }
        // 20 immediately, 10 more at 20/s = 0.5 s.
        assert!(
            t.elapsed() >= Duration::from_millis(450),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn turns_are_fifo_per_route_and_major() {
        let rl = Arc::new(RateLimiter::new(1000));
        let r = Route::create_message(1);
        let first = rl.turn(&r).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (rl, r, order) = (rl.clone(), r.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = rl.turn(&r).await;
                order.lock().unwrap().push(i);
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }
}
