//! Fault injection rules per endpoint: latency, 429, 5xx, drops, timeout after commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// What a matching fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Delay the response by a uniform random time in `[min_ms, max_ms]`, then serve normally.
    Latency {
        /// Lower bound.
        min_ms: u64,
        /// Upper bound.
        max_ms: u64,
    },
    /// Answer 429 with Twilio's 20429 body without processing; `Retry-After` only when set.
    RateLimit {
        /// `Retry-After` seconds.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Answer this 5xx status without processing.
    ServerError {
        /// HTTP status (500..=599).
        status: u16,
    },
    /// Close the connection without a response, before processing.
    Drop,
    /// Process the request (it takes effect), then hold the response for `delay_ms`
    /// (longer than the client's timeout) before sending it.
    TimeoutAfterCommit {
        /// Delay.
        delay_ms: u64,
    },
    /// Process the request, then close the connection without a response.
    DropAfterCommit,
}

/// When a fault applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FaultTrigger {
    /// The next `count` matching calls.
    Next {
        /// Remaining calls.
        count: u32,
    },
    /// Each matching call with probability `p`.
    Probability {
        /// 0.0..=1.0.
        p: f64,
    },
    /// Every matching call until removed.
    #[default]
    UntilCleared,
}

/// A fault rule: `method` (any when `None`) and `path` pattern. Pattern segments `*` or
/// `{...}` match one path segment, a final `**` matches the rest; route templates such as
/// `/v1/Conversations/{sid}/Messages` therefore work as patterns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// HTTP method (`POST`), any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern.
    pub path: String,
    /// What to do.
    pub action: FaultAction,
    /// When.
    #[serde(default)]
    pub trigger: FaultTrigger,
}

impl FaultSpec {
    /// A rule for `method` + `path` that fires `action` on every call until cleared.
    pub fn new(method: &str, path: &str, action: FaultAction) -> Self {
        Self {
            method: Some(method.to_owned()),
            path: path.to_owned(),
            action,
            trigger: FaultTrigger::UntilCleared,
        }
    }

    /// Only for the next `count` matching calls.
    pub fn times(mut self, count: u32) -> Self {
        self.trigger = FaultTrigger::Next { count };
        self
    }

    /// With probability `p` per matching call.
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = FaultTrigger::Probability { p };
        self
    }
}

/// Outcome decided for one request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// Added latency.
    pub latency: Duration,
    /// The first non-latency action that fired.
    pub action: Option<FaultAction>,
}

struct Rule {
    id: u64,
    spec: FaultSpec,
    pattern: Vec<String>,
}

/// The active rules.
#[derive(Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    any: AtomicBool,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("any", &self.any.load(Ordering::Relaxed))
            .finish()
    }
}

/// Why a fault spec was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid fault: {0}")]
pub struct FaultError(pub String);

impl Faults {
    /// Adds a rule; returns its id.
    pub fn add(&self, spec: FaultSpec) -> Result<u64, FaultError> {
        match &spec.action {
            FaultAction::Latency { min_ms, max_ms } if min_ms > max_ms => {
                return Err(FaultError("latency min_ms > max_ms".into()))
            }
            FaultAction::ServerError { status } if !(500..=599).contains(status) => {
                return Err(FaultError(format!(
                    "server_error status {status} is not 5xx"
                )))
            }
            _ => {}
        }
        if let FaultTrigger::Probability { p } = spec.trigger {
            if !(0.0..=1.0).contains(&p) {
                return Err(FaultError(format!("probability {p} outside 0..=1")));
            }
        }
        if !spec.path.starts_with('/') {
            return Err(FaultError("path must start with /".into()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let pattern = spec
            .path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.push(Rule { id, spec, pattern });
        self.any.store(true, Ordering::Release);
        Ok(id)
    }

    /// Removes one rule; returns whether it existed.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let before = rules.len();
        rules.retain(|r| r.id != id);
        self.any.store(!rules.is_empty(), Ordering::Release);
        rules.len() != before
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.clear();
        self.any.store(false, Ordering::Release);
    }

    /// The active rules with their ids.
    pub fn list(&self) -> Vec<(u64, FaultSpec)> {
        let rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        rules.iter().map(|r| (r.id, r.spec.clone())).collect()
    }

    /// Decides what happens to a request (consumes "next N" budgets).
    pub fn plan(&self, method: &str, segments: &[String]) -> FaultPlan {
        let mut plan = FaultPlan::default();
        if !self.any.load(Ordering::Acquire) {
            return plan;
        }
        let mut rng = rand::rng();
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut exhausted = Vec::new();
        for rule in rules.iter_mut() {
            if rule
                .spec
                .method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if !path_matches(&rule.pattern, segments) {
                continue;
            }
            let is_latency = matches!(rule.spec.action, FaultAction::Latency { .. });
            if !is_latency && plan.action.is_some() {
                continue;
            }
            let fire = match &mut rule.spec.trigger {
                FaultTrigger::UntilCleared => true,
                FaultTrigger::Probability { p } => rng.random_bool(*p),
                FaultTrigger::Next { count } => {
                    if *count == 0 {
                        false
                    } else {
                        *count -= 1;
                        if *count == 0 {
                            exhausted.push(rule.id);
                        }
                        true
                    }
                }
            };
            if !fire {
                continue;
            }
            match &rule.spec.action {
                FaultAction::Latency { min_ms, max_ms } => {
                    plan.latency += Duration::from_millis(rng.random_range(*min_ms..=*max_ms));
                }
                other => plan.action = Some(other.clone()),
            }
        }
        if !exhausted.is_empty() {
            rules.retain(|r| !exhausted.contains(&r.id));
            self.any.store(!rules.is_empty(), Ordering::Release);
        }
        plan
    }
}

fn path_matches(pattern: &[String], segments: &[String]) -> bool {
    for (i, p) in pattern.iter().enumerate() {
        if p == "**" {
            return true;
        }
        let Some(s) = segments.get(i) else {
            return false;
        };
        let wildcard = p == "*" || (p.starts_with('{') && p.ends_with('}'));
        if !wildcard && p != s {
            return false;
        }
    }
    pattern.len() == segments.len()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        crate::routes::segments(p)
    }

    #[test]
    fn next_n_then_gone_and_patterns() {
        let f = Faults::default();
        f.add(
            FaultSpec::new(
                "POST",
                "/v1/Conversations/{sid}/Messages",
                FaultAction::ServerError { status: 503 },
            )
            .times(2),
        )
        .unwrap();
        let m = segs("/v1/Conversations/CH1/Messages");
        assert_eq!(f.plan("GET", &m).action, None);
        assert_eq!(f.plan("POST", &segs("/v1/Conversations/CH1")).action, None);
        assert!(f.plan("POST", &m).action.is_some());
        assert!(f.plan("POST", &m).action.is_some());
        assert_eq!(f.plan("POST", &m).action, None);
        assert!(f.list().is_empty());
        f.add(FaultSpec::new("GET", "/v1/**", FaultAction::Drop))
            .unwrap();
        assert_eq!(f.plan("GET", &m).action, Some(FaultAction::Drop));
        f.clear();
        assert_eq!(f.plan("GET", &m), FaultPlan::default());
    }

    #[test]
    fn latency_adds_up_and_validation() {
        let f = Faults::default();
        f.add(FaultSpec::new(
            "GET",
            "/x",
            FaultAction::Latency {
                min_ms: 5,
                max_ms: 5,
            },
        ))
        .unwrap();
        f.add(
            FaultSpec::new(
                "GET",
                "/x",
                FaultAction::RateLimit {
                    retry_after_secs: Some(1),
                },
            )
            .probability(1.0),
        )
        .unwrap();
        let plan = f.plan("GET", &segs("/x"));
        assert_eq!(plan.latency, Duration::from_millis(5));
        assert!(matches!(plan.action, Some(FaultAction::RateLimit { .. })));
        assert!(f
            .add(FaultSpec::new(
                "GET",
                "/x",
                FaultAction::ServerError { status: 404 }
            ))
            .is_err());
        assert!(f
            .add(FaultSpec::new("GET", "/x", FaultAction::Drop).probability(2.0))
            .is_err());
    }
}
