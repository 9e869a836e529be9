//! Injected REST faults: the next N matching requests get a 429, a 5xx or extra latency.

use serde::{Deserialize, Serialize};

/// What to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Fault {
    /// Answer 429 without running the handler.
    RateLimit {
        /// `retry_after` in seconds (body float; header per Discord's rounding setting).
        retry_after: f64,
        /// Global limit (`X-RateLimit-Global: true`, scope `global`).
        #[serde(default)]
        global: bool,
    },
    /// Answer a 5xx (500, 502, 503, 504).
    ServerError {
        /// HTTP status.
        status: u16,
        /// When true the request is carried out and only the answer is replaced (an ambiguous
        /// failure: the message exists although the client saw an error).
        #[serde(default)]
        after_handler: bool,
    },
    /// Delay the request, then handle it normally.
    Latency {
        /// Milliseconds.
        ms: u64,
    },
}

/// A fault rule: applies to the next `count` requests that match.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    /// How many requests it hits.
    #[serde(default = "one")]
    pub count: u32,
    /// Only this method (case-insensitive), any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Only paths starting with this (with or without the `/api/v10` prefix).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// The fault.
    pub fault: Fault,
}

fn one() -> u32 {
    1
}

impl FaultSpec {
    /// `count` requests of any route get `fault`.
    pub fn new(count: u32, fault: Fault) -> Self {
        Self {
            count,
            method: None,
            path_prefix: None,
            fault,
        }
    }

    /// Restricts to a method and path prefix, e.g. `("POST", "/channels/123/messages")`.
    pub fn matching(mut self, method: impl Into<String>, path_prefix: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self.path_prefix = Some(path_prefix.into());
        self
    }
}

/// A live rule with its remaining count.
#[derive(Debug, Clone)]
pub(crate) struct FaultRule {
    pub spec: FaultSpec,
    pub remaining: u32,
}

impl FaultRule {
    pub fn new(spec: FaultSpec) -> Self {
        let remaining = spec.count;
        Self { spec, remaining }
    }

    fn matches(&self, method: &str, api_path: &str) -> bool {
        if let Some(m) = &self.spec.method {
            if !m.eq_ignore_ascii_case(method) {
                return false;
            }
        }
        if let Some(prefix) = &self.spec.path_prefix {
            let prefix = prefix.strip_prefix("/api/v10").unwrap_or(prefix);
            if !api_path.starts_with(prefix) {
                return false;
            }
        }
        true
    }
}

/// Takes the first matching fault (decrementing its count) for a request path relative to
/// `/api/v10`.
pub(crate) fn take(rules: &mut Vec<FaultRule>, method: &str, api_path: &str) -> Option<Fault> {
    let idx = rules
        .iter()
        .position(|r| r.remaining > 0 && r.matches(method, api_path))?;
    let rule = &mut rules[idx];
    rule.remaining -= 1;
    let fault = rule.spec.fault.clone();
    if rule.remaining == 0 {
        rules.remove(idx);
    }
    Some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_counting() {
        let mut rules = vec![FaultRule::new(
            FaultSpec::new(
                2,
                Fault::ServerError {
                    status: 502,
                    after_handler: false,
                },
            )
            .matching("post", "/api/v10/channels/1/"),
        )];
        assert_eq!(take(&mut rules, "GET", "/channels/1/messages"), None);
        assert_eq!(take(&mut rules, "POST", "/channels/2/messages"), None);
        assert!(take(&mut rules, "POST", "/channels/1/messages").is_some());
        assert!(take(&mut rules, "POST", "/channels/1/messages").is_some());
        assert_eq!(take(&mut rules, "POST", "/channels/1/messages"), None);
        assert!(rules.is_empty());
    }
}
