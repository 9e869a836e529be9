//! Request counters per endpoint (method + route template), plus a total.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::routes::Route;

/// Lock-free counters, one per route plus "unmatched" and the total.
#[derive(Debug, Default)]
pub struct Counters {
    per_route: [AtomicU64; Route::ALL.len()],
    unmatched: AtomicU64,
    total: AtomicU64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CounterSnapshot {
    /// Calls per route template (only non-zero entries), e.g. `POST /v1/Conversations/{sid}/Messages`.
    pub endpoints: BTreeMap<String, u64>,
    /// Requests that matched no route.
    pub unmatched: u64,
    /// Every request received (control API excluded).
    pub total: u64,
}

impl CounterSnapshot {
    /// Calls of one route template (0 when never called).
    pub fn get(&self, template: &str) -> u64 {
        self.endpoints.get(template).copied().unwrap_or(0)
    }
}

impl Counters {
    /// Counts one request.
    pub fn hit(&self, route: Option<Route>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        match route {
            Some(r) => self.per_route[r.index()].fetch_add(1, Ordering::Relaxed),
            None => self.unmatched.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> CounterSnapshot {
        let mut endpoints = BTreeMap::new();
        for r in Route::ALL {
            let n = self.per_route[r.index()].load(Ordering::Relaxed);
            if n > 0 {
                endpoints.insert(r.template().to_owned(), n);
            }
        }
        CounterSnapshot {
            endpoints,
            unmatched: self.unmatched.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// Sets every counter to zero.
    pub fn reset(&self) {
        for c in &self.per_route {
            c.store(0, Ordering::Relaxed);
        }
        self.unmatched.store(0, Ordering::Relaxed);
        self.total.store(0, Ordering::Relaxed);
    }
}
