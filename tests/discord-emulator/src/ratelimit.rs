//! Discord-style rate limiting: per-route buckets keyed by route + major parameter, a global
//! per-second limit, and the `X-RateLimit-*` header values.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{BucketLimit, RateLimitConfig};

/// Values for the `X-RateLimit-*` headers of one response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_after: f64,
    pub reset_epoch: f64,
    pub bucket: String,
}

/// The limiter's verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Allowed(LimitHeaders),
    /// Over the route bucket (`global = false`, headers present) or the global limit.
    Limited {
        retry_after: f64,
        global: bool,
        headers: Option<LimitHeaders>,
    },
}

#[derive(Debug, Clone)]
struct Bucket {
    reset_at: Instant,
    remaining: u32,
}

/// Limiter state.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    pub cfg: RateLimitConfig,
    buckets: HashMap<(String, String), Bucket>,
    global_start: Instant,
    global_count: u32,
}

/// Opaque bucket id per route template, like Discord's 32-hex-digit hashes.
pub(crate) fn bucket_hash(route: &str) -> String {
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x8422_2325_cbf2_9ce4;
    for b in route.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        h2 = (h2 ^ u64::from(b))
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(7);
    }
    format!("{h1:016x}{h2:016x}")
}

fn epoch_after(d: Duration) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_add(d).as_secs_f64()
}

/// `now + d` without overflow panics (configured windows come from control input).
fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(MAX_WINDOW))
        .unwrap_or(now)
}

/// Longest window or retry honoured (one year).
const MAX_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

fn round3(x: f64) -> f64 {
    (x * 1000.0).ceil() / 1000.0
}

impl RateLimiter {
    pub fn new(cfg: RateLimitConfig) -> Self {
        Self {
            cfg,
            buckets: HashMap::new(),
            global_start: Instant::now(),
            global_count: 0,
        }
    }

    /// Replaces the configuration and forgets bucket state.
    pub fn reconfigure(&mut self, cfg: RateLimitConfig) {
        self.cfg = cfg;
        self.buckets.clear();
        self.global_count = 0;
    }

    fn headers(
        limit: BucketLimit,
        remaining: u32,
        reset_after: Duration,
        route: &str,
    ) -> LimitHeaders {
        LimitHeaders {
            limit: limit.limit,
            remaining,
            reset_after: round3(reset_after.as_secs_f64()),
            reset_epoch: round3(epoch_after(reset_after)),
            bucket: bucket_hash(route),
        }
    }

    /// Checks and consumes one request on `route` with major parameter `major`.
    pub fn check(&mut self, route: &str, major: &str, global_exempt: bool) -> Decision {
        let limit = self.cfg.limit_for(route);
        let per = Duration::from_millis(limit.per_ms.max(1)).min(MAX_WINDOW);
        if !self.cfg.enabled {
            return Decision::Allowed(Self::headers(limit, limit.limit, per, route));
        }
        let now = Instant::now();
        if !global_exempt {
            if now.duration_since(self.global_start) >= Duration::from_secs(1) {
                self.global_start = now;
                self.global_count = 0;
            }
            if self.global_count >= self.cfg.global_per_second {
                let retry =
                    Duration::from_secs(1).saturating_sub(now.duration_since(self.global_start));
                return Decision::Limited {
                    retry_after: round3(retry.as_secs_f64()),
                    global: true,
                    headers: None,
                };
            }
        }
        let bucket = self
            .buckets
            .entry((route.to_string(), major.to_string()))
            .or_insert(Bucket {
                reset_at: later(now, per),
                remaining: limit.limit,
            });
        if now >= bucket.reset_at {
            bucket.reset_at = later(now, per);
            bucket.remaining = limit.limit;
        }
        let reset_after = bucket.reset_at.saturating_duration_since(now);
        if bucket.remaining == 0 {
            return Decision::Limited {
                retry_after: round3(reset_after.as_secs_f64()),
                global: false,
                headers: Some(Self::headers(limit, 0, reset_after, route)),
            };
        }
        bucket.remaining -= 1;
        if !global_exempt {
            self.global_count += 1;
        }
        Decision::Allowed(Self::headers(limit, bucket.remaining, reset_after, route))
    }

    /// Headers for an injected (non-global) 429 on this route.
    pub fn injected_headers(&self, route: &str, retry_after: f64) -> LimitHeaders {
        let limit = self.cfg.limit_for(route);
        Self::headers(
            limit,
            0,
            Duration::from_secs_f64(if retry_after.is_finite() {
                retry_after.clamp(0.0, MAX_WINDOW.as_secs_f64())
            } else {
                0.0
            }),
            route,
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn bucket_exhausts_then_limits_per_major() {
        let mut cfg = RateLimitConfig::default();
        cfg.routes
            .insert("POST /x/{id}".into(), BucketLimit::new(2, 60_000));
        let mut rl = RateLimiter::new(cfg);
        let a = rl.check("POST /x/{id}", "1", false);
        let Decision::Allowed(h) = a else {
            panic!("{a:?}")
        };
        assert_eq!((h.limit, h.remaining), (2, 1));
        assert!(
            matches!(rl.check("POST /x/{id}", "1", false), Decision::Allowed(ref h) if h.remaining == 0)
        );
        match rl.check("POST /x/{id}", "1", false) {
            Decision::Limited {
                retry_after,
                global,
                headers,
            } => {
                assert!(!global);
                assert!(retry_after > 59.0 && retry_after <= 60.0);
                assert_eq!(headers.unwrap().remaining, 0);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(rl.check("POST /x/{id}", "2", false), Decision::Allowed(_)),
            "other major is separate"
        );
    }

    #[test]
    fn global_limit_and_exemption() {
        let cfg = RateLimitConfig {
            global_per_second: 3,
            ..RateLimitConfig::default()
        };
        let mut rl = RateLimiter::new(cfg);
        for i in 0..3 {
            assert!(matches!(
                rl.check("GET /a", &i.to_string(), false),
                Decision::Allowed(_)
            ));
        }
        assert!(matches!(
            rl.check("GET /a", "9", false),
            Decision::Limited { global: true, .. }
        ));
        assert!(matches!(
            rl.check("POST /interactions", "9", true),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn disabled_never_limits_and_reports_full_bucket() {
        let cfg = RateLimitConfig {
            enabled: false,
            ..RateLimitConfig::default()
        };
        let mut rl = RateLimiter::new(cfg);
        for _ in 0..1000 {
            match rl.check("POST /channels/{channel_id}/messages", "1", false) {
                Decision::Allowed(h) => assert_eq!(h.remaining, 5),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn absurd_configuration_does_not_panic() {
        let mut cfg = RateLimitConfig::default();
        cfg.routes
            .insert("GET /x".into(), BucketLimit::new(1, u64::MAX));
        let mut rl = RateLimiter::new(cfg);
        assert!(matches!(
            rl.check("GET /x", "", false),
            Decision::Allowed(_)
        ));
        assert!(matches!(
            rl.check("GET /x", "", false),
            Decision::Limited { global: false, .. }
        ));
        let h = rl.injected_headers("GET /x", 1e300);
        assert!(h.reset_after > 0.0 && h.reset_after.is_finite());
        assert_eq!(rl.injected_headers("GET /x", -5.0).reset_after, 0.0);
    }
}
