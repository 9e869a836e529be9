//! Per-partition bookkeeping: key queues, messages held unacked, recently acked sequences.
//!
//! A key always maps to one partition, and each partition is driven by one task, so none of this needs
//! a lock.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::Acker;
use bytes::Bytes;

use super::Delivery;

/// A message waiting for (or in) its key's turn.
pub(crate) struct Item<T> {
    pub delivery: Delivery<T>,
    /// The original payload, kept for the dead letter.
    pub payload: Bytes,
}

/// Per-key FIFO queues. A key present in the map has a message in flight; its deque holds what waits.
pub(crate) struct KeyQueues<T> {
    map: HashMap<String, VecDeque<Item<T>>>,
}

impl<T> KeyQueues<T> {
    pub fn new() -> Self {
        KeyQueues {
            map: HashMap::new(),
        }
    }

    /// Queues `item`. Returns it back when the key was idle: the caller must start it now.
    pub fn push(&mut self, item: Item<T>) -> Option<Item<T>> {
        match self.map.get_mut(&item.delivery.key) {
            Some(queue) => {
                queue.push_back(item);
                None
            }
            None => {
                self.map.insert(item.delivery.key.clone(), VecDeque::new());
                Some(item)
            }
        }
    }

    /// The next item of `key`, or `None` after marking the key idle.
    pub fn next(&mut self, key: &str) -> Option<Item<T>> {
        let next = self.map.get_mut(key).and_then(VecDeque::pop_front);
        if next.is_none() {
            self.map.remove(key);
        }
        next
    }

    /// Removes every waiting item (keys stay marked busy until their in-flight message finishes).
    pub fn take_waiting(&mut self) -> Vec<Item<T>> {
        self.map.values_mut().flat_map(|q| q.drain(..)).collect()
    }
}

struct HeldEntry {
    acker: Acker,
    touched: Instant,
}

/// Messages received and not yet acked, by stream sequence.
pub(crate) struct Held {
    map: HashMap<u64, HeldEntry>,
}

impl Held {
    pub fn new() -> Self {
        Held {
            map: HashMap::new(),
        }
    }

    /// Records a received message. Returns false when it was already held (a redelivery of a message
    /// still queued or running here): the newest acker replaces the old one and the caller drops it.
    pub fn insert(&mut self, sequence: u64, acker: Acker) -> bool {
        self.map
            .insert(
                sequence,
                HeldEntry {
                    acker,
                    touched: Instant::now(),
                },
            )
            .is_none()
    }

    /// Stops holding a message and returns its acker.
    pub fn take(&mut self, sequence: u64) -> Option<Acker> {
        self.map.remove(&sequence).map(|e| e.acker)
    }

    /// Ackers of messages held longer than `older_than` since their last in-progress ack; marks them.
    pub fn due_for_progress(&mut self, older_than: Duration) -> Vec<&Acker> {
        let now = Instant::now();
        self.map
            .values_mut()
            .filter(|e| now.duration_since(e.touched) >= older_than)
            .map(|e| {
                e.touched = now;
                &e.acker
            })
            .collect()
    }
}

/// Stream sequences this partition acked recently (bounded). A server redelivery of one of them means
/// the ack was lost (e.g. the server restarted before applying it): the runner acks it again instead of
/// running the handler a second time.
pub(crate) struct RecentlyAcked {
    set: HashSet<u64>,
    order: VecDeque<u64>,
    capacity: usize,
}

impl RecentlyAcked {
    pub fn new(capacity: usize) -> Self {
        RecentlyAcked {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn insert(&mut self, sequence: u64) {
        if self.set.insert(sequence) {
            self.order.push_back(sequence);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    pub fn contains(&self, sequence: u64) -> bool {
        self.set.contains(&sequence)
    }
}

/// Holds back a partition's messages after a crash until the previous process's unacked messages
/// ("orphans") are back.
///
/// JetStream redelivers a message a crashed process had received only when its ack wait runs out, but
/// hands newer messages to the restarted process at once: without the gate a key's later event would be
/// handled before its earlier, orphaned one. A partition whose durable consumer starts with unacked
/// messages therefore buffers everything it receives until it has received as many redelivered
/// sequences (at or below the last sequence delivered before the start) as were pending, or until the
/// deadline (the ack wait plus a margin: by then the server has redelivered every orphan), then starts
/// the buffer in stream order.
pub(crate) struct OrphanGate<T> {
    last_delivered: u64,
    expected: usize,
    seen: HashSet<u64>,
    buffer: Vec<Item<T>>,
    deadline: Instant,
}

impl<T> OrphanGate<T> {
    /// A gate for `expected` orphans, all at or below stream sequence `last_delivered`.
    pub fn new(expected: usize, last_delivered: u64, deadline: Instant) -> Self {
        OrphanGate {
            last_delivered,
            expected,
            seen: HashSet::new(),
            buffer: Vec::new(),
            deadline,
        }
    }

    /// Notes a received sequence (whatever becomes of it: buffered, deduplicated or dead-lettered).
    pub fn saw(&mut self, sequence: u64) {
        if sequence <= self.last_delivered {
            self.seen.insert(sequence);
        }
    }

    /// Expects `more` orphans at or below `last_delivered` (deliveries lost on the way while the gate
    /// was already closed) and moves the deadline to `deadline` if later.
    pub fn expect_more(&mut self, more: usize, last_delivered: u64, deadline: Instant) {
        self.expected = self.expected.saturating_add(more);
        self.last_delivered = self.last_delivered.max(last_delivered);
        self.deadline = self.deadline.max(deadline);
    }

    /// Buffers an item until the gate opens.
    pub fn hold(&mut self, item: Item<T>) {
        self.buffer.push(item);
    }

    /// Every orphan is back, or the deadline passed.
    pub fn may_open(&self, now: Instant) -> bool {
        self.seen.len() >= self.expected || now >= self.deadline
    }

    /// The last stream sequence delivered before the start: once the consumer's ack floor reaches it,
    /// nothing of the previous run is left (the unacked messages belonged to a live sibling replica that
    /// has acked them since), and the gate may open.
    pub fn last_delivered(&self) -> u64 {
        self.last_delivered
    }

    /// When the gate opens at the latest.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Orphans received so far and expected.
    pub fn progress(&self) -> (usize, usize) {
        (self.seen.len(), self.expected)
    }

    /// Opens the gate: the buffered items in stream order.
    pub fn open(mut self) -> Vec<Item<T>> {
        self.buffer.sort_by_key(|i| i.delivery.stream_sequence);
        self.buffer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(seq: u64, key: &str) -> Item<()> {
        Item {
            delivery: Delivery {
                event: (),
                key: key.to_owned(),
                msg_id: None,
                subject: "s".into(),
                stream_sequence: seq,
                attempt: 1,
                server_deliveries: 1,
                headers: async_nats::HeaderMap::new(),
            },
            payload: Bytes::new(),
        }
    }

    #[test]
    fn the_gate_opens_when_every_orphan_is_back_and_releases_in_stream_order() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut gate = OrphanGate::new(2, 10, far);
        gate.saw(12);
        gate.hold(item(12, "a"));
        gate.saw(7);
        gate.hold(item(7, "a"));
        assert!(!gate.may_open(Instant::now()), "one orphan of two is back");
        gate.saw(7);
        assert!(
            !gate.may_open(Instant::now()),
            "a repeat is not a second orphan"
        );
        gate.saw(9);
        assert!(gate.may_open(Instant::now()));
        let order: Vec<u64> = gate
            .open()
            .iter()
            .map(|i| i.delivery.stream_sequence)
            .collect();
        assert_eq!(order, vec![7, 12]);
    }

    #[test]
    fn lost_deliveries_extend_a_closed_gate() {
        let now = Instant::now();
        let mut gate: OrphanGate<()> = OrphanGate::new(1, 10, now + Duration::from_secs(5));
        gate.saw(4);
        assert!(gate.may_open(now));
        gate.expect_more(2, 20, now + Duration::from_secs(9));
        assert!(
            !gate.may_open(now + Duration::from_secs(6)),
            "deadline moved"
        );
        gate.saw(15);
        gate.saw(19);
        assert!(gate.may_open(now));
        assert_eq!(gate.last_delivered(), 20);
    }

    #[test]
    fn the_gate_opens_at_its_deadline_anyway() {
        let gate: OrphanGate<()> = OrphanGate::new(3, 10, Instant::now());
        assert!(gate.may_open(Instant::now()));
        assert_eq!(gate.progress(), (0, 3));
    }
}
