//! Flood control: blocked users, and a per-user token bucket over DMs, commands and clicks. A
//! throttled user is told once per throttle episode (until their bucket has refilled).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

/// What to do with one event of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on.
    Allow,
    /// Drop it; this is the first drop of the episode, so tell the user.
    ThrottledNotify,
    /// Drop it silently (already told).
    Throttled,
    /// The user is blocked.
    Blocked,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    notified: bool,
}

/// Per-user limits (cheap, synchronous; shared behind a mutex).
#[derive(Debug)]
pub struct Throttle {
    per_second: f64,
    burst: f64,
    blocked: HashSet<u64>,
    buckets: Mutex<HashMap<u64, Bucket>>,
}

/// Buckets beyond this many users are pruned of full (idle) ones.
const PRUNE_AT: usize = 100_000;

impl Throttle {
    /// `rate_per_min` sustained, `burst` at once, and the blocked users.
    pub fn new(rate_per_min: u32, burst: u32, blocked: HashSet<u64>) -> Self {
        Throttle {
            per_second: f64::from(rate_per_min.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            blocked,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a user is blocked.
    pub fn is_blocked(&self, user_id: u64) -> bool {
        self.blocked.contains(&user_id)
    }

    /// Takes one token for `user_id`.
    pub fn check(&self, user_id: u64) -> Verdict {
        self.check_at(user_id, Instant::now())
    }

    /// Whether the user is currently being throttled (for events that do not take a token, e.g. typing).
    pub fn is_throttled(&self, user_id: u64) -> bool {
        let now = Instant::now();
        self.buckets.lock().is_ok_and(|b| {
            b.get(&user_id).is_some_and(|b| {
                b.tokens + now.duration_since(b.last).as_secs_f64() * self.per_second < 1.0
            })
        })
    }

    fn check_at(&self, user_id: u64, now: Instant) -> Verdict {
        if self.blocked.contains(&user_id) {
            return Verdict::Blocked;
        }
        let Ok(mut buckets) = self.buckets.lock() else {
            return Verdict::Allow;
        };
        if buckets.len() > PRUNE_AT {
            let (rate, burst) = (self.per_second, self.burst);
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.last).as_secs_f64() * rate < burst);
        }
        let b = buckets.entry(user_id).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            notified: false,
        });
        b.tokens =
            (b.tokens + now.duration_since(b.last).as_secs_f64() * self.per_second).min(self.burst);
        b.last = now;
        if b.tokens >= self.burst {
            // A full bucket ends a throttle episode.
            b.notified = false;
        }
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Verdict::Allow
        } else if b.notified {
            Verdict::Throttled
        } else {
            b.notified = true;
            Verdict::ThrottledNotify
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_one_notice_then_silence_then_recovery() {
        let t = Throttle::new(60, 3, HashSet::from([9]));
        let t0 = Instant::now();
        let verdicts: Vec<Verdict> = (0..6).map(|_| t.check_at(1, t0)).collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Allow,
                Verdict::ThrottledNotify,
                Verdict::Throttled,
                Verdict::Throttled
            ]
        );
        // Another user is unaffected.
        assert_eq!(t.check_at(2, t0), Verdict::Allow);
        assert_eq!(t.check_at(9, t0), Verdict::Blocked);
        // One token per second comes back, still in the same episode.
        assert_eq!(
            t.check_at(1, t0 + Duration::from_millis(1100)),
            Verdict::Allow
        );
        assert_eq!(
            t.check_at(1, t0 + Duration::from_millis(1200)),
            Verdict::Throttled
        );
        // After a full refill, a new flood is told again.
        let later = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(t.check_at(1, later), Verdict::Allow);
        }
        assert_eq!(t.check_at(1, later), Verdict::ThrottledNotify);
    }
}
