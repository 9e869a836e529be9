//! SIDs (two-letter prefix + 32 lowercase hex) and Twilio timestamps.

use rand::Rng;

/// A new random SID with `prefix` (e.g. `CH`, `IM`).
pub fn new_sid(prefix: &str) -> String {
    let v: u128 = rand::rng().random();
    format!("{prefix}{v:032x}")
}

/// Whether `s` has the shape of a SID with `prefix`.
pub fn is_sid(prefix: &str, s: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Now, as Twilio's REST date (`2016-03-24T20:37:57Z`).
pub fn now_rest() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, as Twilio's webhook date (`2026-11-24T10:00:00.000Z`).
pub fn now_webhook() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_have_the_twilio_shape() {
        let s = new_sid("CH");
        assert!(is_sid("CH", &s), "{s}");
        assert!(!is_sid("IM", &s));
        assert_ne!(new_sid("CH"), s);
        assert!(now_rest().ends_with('Z'));
    }
}
