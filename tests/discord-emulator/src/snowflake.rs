//! Discord snowflake ids: `(ms since 2015-01-01) << 22 | worker << 17 | process << 12 | increment`.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

/// Discord's epoch (2015-01-01T00:00:00Z) in Unix milliseconds.
pub const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// Generates strictly increasing snowflakes with Discord's bit layout.
///
/// The timestamp part is the wall clock; when more than 4096 ids are asked for within one
/// millisecond, or the clock goes backwards, the timestamp part advances logically so ids stay
/// strictly increasing and still decode to a time close to now.
#[derive(Debug, Default)]
pub struct SnowflakeGen {
    last_ms: u64,
    increment: u64,
}

impl SnowflakeGen {
    /// A generator whose first id uses the current time.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next id.
    pub fn next_id(&mut self) -> u64 {
        let now = now_discord_ms();
        if now > self.last_ms {
            self.last_ms = now;
            self.increment = 0;
        } else {
            self.increment += 1;
            if self.increment >= 4096 {
                self.last_ms += 1;
                self.increment = 0;
            }
        }
        (self.last_ms << 22) | self.increment
    }
}

fn now_discord_ms() -> u64 {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(DISCORD_EPOCH_MS);
    unix_ms.saturating_sub(DISCORD_EPOCH_MS)
}

/// The current time in Unix milliseconds.
pub fn now_unix_ms() -> u64 {
    now_discord_ms() + DISCORD_EPOCH_MS
}

/// Unix milliseconds encoded in a snowflake.
pub fn unix_ms_of(id: u64) -> u64 {
    (id >> 22) + DISCORD_EPOCH_MS
}

/// The creation time encoded in a snowflake.
pub fn time_of(id: u64) -> OffsetDateTime {
    let nanos = i128::from(unix_ms_of(id)) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Formats a time the way Discord does: `2024-01-01T00:00:01.000000+00:00`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// The creation time of a snowflake formatted as Discord does.
pub fn timestamp_of(id: u64) -> String {
    rfc3339(time_of(id))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ids_increase_and_decode_to_now() {
        let mut g = SnowflakeGen::new();
        let mut last = 0;
        for _ in 0..10_000 {
            let id = g.next_id();
            assert!(id > last, "{id} <= {last}");
            last = id;
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ms = unix_ms_of(last);
        assert!(ms.abs_diff(now_ms) < 5_000, "decoded {ms}, now {now_ms}");
    }

    #[test]
    fn known_snowflake_decodes() {
        // Example from Discord's reference docs: 175928847299117063 -> 2016-04-30 11:18:25.796 UTC.
        assert_eq!(unix_ms_of(175_928_847_299_117_063), 1_462_015_105_796);
        assert_eq!(
            timestamp_of(175_928_847_299_117_063),
            "2016-04-30T11:18:25.796000+00:00"
        );
    }
}
