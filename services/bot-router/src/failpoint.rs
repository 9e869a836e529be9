//! A test hook: abort the process at a named point while handling a named input event.
//!
//! `ROUTER_FAILPOINTS=after_state_write=discord.msg.42,after_publish=case.evt-1` makes the process
//! abort (like a SIGKILL: no destructor, no ack, no flush) right after the conversation state of
//! that input was written, or right after its effects were published. The crash tests run the real
//! binary with it to hit the windows a random kill would only hit by luck. Empty in production.

/// Where a failpoint can fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// The new state (with its outbox) is stored; nothing was published.
    AfterStateWrite,
    /// The outbox was published; it was not cleared and the input was not acked.
    AfterPublish,
    /// The outbox was cleared; the input was not acked.
    AfterClear,
}

impl Point {
    fn parse(s: &str) -> Option<Point> {
        match s {
            "after_state_write" => Some(Point::AfterStateWrite),
            "after_publish" => Some(Point::AfterPublish),
            "after_clear" => Some(Point::AfterClear),
            _ => None,
        }
    }
}

/// The configured failpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failpoints {
    points: Vec<(Point, String)>,
}

impl Failpoints {
    /// Parses `point=event-id` pairs separated by commas.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut points = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, id) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected point=event-id"))?;
            let point = Point::parse(name.trim()).ok_or_else(|| {
                format!("{name:?}: unknown point (after_state_write, after_publish, after_clear)")
            })?;
            points.push((point, id.trim().to_owned()));
        }
        Ok(Failpoints { points })
    }

    /// Whether any failpoint is configured.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Aborts the process when `point` is configured for `event_id`.
    pub fn check(&self, point: Point, event_id: &str) {
        if self
            .points
            .iter()
            .any(|(p, id)| *p == point && id == event_id)
        {
            tracing::error!(?point, event_id, "Failpoint reached; aborting the process.");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_pairs_and_refuses_unknown_points() {
        let f = Failpoints::parse(" after_state_write=a.b , after_publish=c").unwrap();
        assert_eq!(f.points.len(), 2);
        assert_eq!(f.points[0], (Point::AfterStateWrite, "a.b".to_owned()));
        assert!(Failpoints::parse("").unwrap().is_empty());
        assert!(Failpoints::parse("nowhere=x").is_err());
        assert!(Failpoints::parse("after_clear").is_err());
        // Not configured for this id: returns.
        f.check(Point::AfterClear, "a.b");
    }
}
