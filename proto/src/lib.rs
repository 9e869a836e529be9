//! Protobuf types for every flexcord event, generated at build time from `proto/flexcord/v1`.
//!
//! Compatibility rule: a field is never renumbered or reused. Removed fields are listed in
//! `reserved`. New fields must have a sensible zero value, because older publishers omit them.

#![allow(clippy::all, missing_docs)]

/// Package `flexcord.v1`.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/flexcord.v1.rs"));
}

pub use prost;
pub use prost_types;

/// Converts a `std::time::SystemTime` into a protobuf timestamp.
pub fn timestamp(t: std::time::SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

/// The current time as a protobuf timestamp.
pub fn now() -> prost_types::Timestamp {
    timestamp(std::time::SystemTime::now())
}
