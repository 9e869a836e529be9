//! Serde helpers: snowflakes are written as strings (as Discord does) and read from strings or
//! integers; bytes are written as base64.

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    S(String),
    N(u64),
}

fn to_u64<E: de::Error>(v: StrOrNum) -> Result<u64, E> {
    match v {
        StrOrNum::N(n) => Ok(n),
        StrOrNum::S(s) => s
            .trim()
            .parse()
            .map_err(|_| E::custom(format!("{s:?} is not a snowflake"))),
    }
}

/// Parses a snowflake from a JSON value (string or integer).
pub fn from_value(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `u64` as a string.
pub mod string {
    use super::*;

    /// Serialize.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        to_u64(StrOrNum::deserialize(d)?)
    }
}

/// `Option<u64>` as an optional string.
pub mod opt_string {
    use super::*;

    /// Serialize.
    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<StrOrNum>::deserialize(d)? {
            Some(v) => to_u64(v).map(Some),
            None => Ok(None),
        }
    }
}

/// `Vec<u64>` as strings.
pub mod vec_string {
    use super::*;
    use serde::ser::SerializeSeq;

    /// Serialize.
    pub fn serialize<S: Serializer>(v: &[u64], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for id in v {
            seq.serialize_element(&id.to_string())?;
        }
        seq.end()
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
        Vec::<StrOrNum>::deserialize(d)?
            .into_iter()
            .map(to_u64)
            .collect()
    }
}

/// `Vec<u8>` as standard base64.
pub mod base64_bytes {
    use base64::Engine as _;

    use super::*;

    /// Serialize.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(de::Error::custom)
    }
}
