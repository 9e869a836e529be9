//! An `Env` like flexcord-bus's: the readers are methods, found from their bodies.

use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::config;

pub struct Env<'a> {
    lookup: Option<&'a dyn Fn(&str) -> Option<String>>,
}

impl<'a> Env<'a> {
    fn untrimmed(&self, name: &str) -> Option<String> {
        match self.lookup {
            None => std::env::var(name).ok(),
            Some(lookup) => lookup(name),
        }
    }

    /// `env.optional("DECOY_DOC_METHOD")` in a doc comment is not a read.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.untrimmed(name).map(|v| v.trim().to_owned())
    }

    pub fn number_in<T: FromStr + PartialOrd>(&self, name: &str, default: T, range: RangeInclusive<T>) -> T {
        match self.optional(name).and_then(|v| v.parse().ok()) {
            Some(n) if range.contains(&n) => n,
            _ => default,
        }
    }

    /// NAME or the file named by NAME_FILE.
    pub fn secret(&self, name: &str) -> Option<String> {
        let file_var = format!("{name}_FILE");
        self.untrimmed(name).or_else(|| self.optional(&file_var))
    }

    pub fn raw(&self, name: &str) -> Option<String> {
        self.untrimmed(name)
    }

    /// Not a reader: its argument never reaches one.
    pub fn describe(&self, label: &str) -> String {
        format!("{label}")
    }
}

pub fn read(env: &Env<'_>) {
    let _ = env.optional("FIX_METHOD");
    let _ = env.number_in::<u32>("FIX_METHOD_TURBOFISH", 1, 1..=2);
    let _ = env.secret("FIX_METHOD_SECRET");
    let _ = Env { lookup: None }.optional("FIX_METHOD_CHAINED");
    let _ = snowflake(env, "FIX_METHOD_HELPER_FN");
    let _ = config::parse_or::<u16>("FIX_PLAIN_TURBOFISH", 1);
    let _ = from_lookup(|k: &str| env.raw(k));
    // decoys
    let _ = env.describe("DECOY_NOT_A_READER_METHOD");
    let _ = vec!["DECOY_VEC"].iter().map(|s| s.len()).sum::<usize>();
}

fn snowflake(env: &Env<'_>, var: &str) -> Option<u64> {
    env.optional(var)?.parse().ok()
}

fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> bool {
    lookup("FIX_METHOD_VIA_LOOKUP").is_some()
}

#[cfg(test)]
mod tests {
    #[test]
    fn t() {
        let env = super::Env { lookup: None };
        let _ = env.optional("DECOY_TEST_METHOD");
    }
}
