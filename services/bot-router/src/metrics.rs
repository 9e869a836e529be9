//! bot-router's own Prometheus metrics (exposed with the bus's at `/metrics`, prefix `flexcord_`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// Label naming a kind of thing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// Counters of the router.
#[derive(Clone, Debug, Default)]
pub struct RouterMetrics {
    /// Effects carried out, by target (`discord`, `flex`, `case`).
    effects: Family<KindLabel, Counter>,
    /// Compare-and-set conflicts (decide re-runs).
    cas_conflicts: Counter,
    /// Bot-mode answers, by outcome (`articles`, `no_match`).
    answers: Family<KindLabel, Counter>,
    /// Timers fired.
    timers_fired: Counter,
    /// Announcement items relayed.
    announcements: Counter,
    /// Announcement feed fetches or parses that failed.
    feed_errors: Counter,
}

impl RouterMetrics {
    /// Registers the counters in `metrics`.
    pub fn register(&self, metrics: &flexcord_bus::Metrics) {
        metrics.register(
            "router_effects",
            "Effects carried out by bot-router, by target",
            self.effects.clone(),
        );
        metrics.register(
            "router_cas_conflicts",
            "Conversation state compare-and-set conflicts (decision re-runs)",
            self.cas_conflicts.clone(),
        );
        metrics.register(
            "router_answers",
            "Bot-mode answers by outcome",
            self.answers.clone(),
        );
        metrics.register(
            "router_timers_fired",
            "Durable timers that fired",
            self.timers_fired.clone(),
        );
        metrics.register(
            "router_announcements_relayed",
            "Announcement feed items relayed to Discord",
            self.announcements.clone(),
        );
        metrics.register(
            "router_feed_errors",
            "Announcement feed fetches or parses that failed",
            self.feed_errors.clone(),
        );
    }

    /// `decide` ran `runs` times for one input.
    pub fn decided(&self, runs: u32) {
        if runs > 1 {
            self.cas_conflicts.inc_by(u64::from(runs - 1));
        }
    }

    /// Total compare-and-set conflicts so far.
    pub fn cas_conflicts(&self) -> u64 {
        self.cas_conflicts.get()
    }

    /// An effect was carried out.
    pub fn published(&self, kind: &str) {
        self.effects
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A bot-mode answer was decided.
    pub fn answered(&self, kind: &str) {
        self.answers
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// A timer fired.
    pub fn timer_fired(&self) {
        self.timers_fired.inc();
    }

    /// An announcement was relayed.
    pub fn announced(&self) {
        self.announcements.inc();
    }

    /// A feed could not be fetched or parsed.
    pub fn feed_error(&self) {
        self.feed_errors.inc();
    }
}
