//! Typed configuration from environment variables.
//!
//! [`Env`] reads variables from the process environment ([`Env::process`]) or from any lookup
//! ([`Env::from_fn`], [`Env::from_map`]; tests pass a map), with the same rules everywhere: values are
//! trimmed and an empty value counts as unset, and every error names the variable, so a service fails
//! fast with a message such as `NATS_REPLICAS: cannot parse "three": invalid digit found in string`.
//! Secrets can come from `NAME` or from a file named by `NAME_FILE` (Kubernetes/Docker secrets), and
//! are wrapped in [`SecretString`] so they never reach a log.
//!
//! The free functions ([`optional`], [`parse_or`], [`secret`], ...) are the same readers over the
//! process environment.

use std::collections::HashMap;
use std::fmt::{self, Display};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

/// A configuration variable is missing or malformed. Displays as `VAR: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// Builds an error for `var`.
    pub fn new(var: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            var: var.into(),
            problem: problem.into(),
        }
    }
}

/// Where configuration variables come from: the process environment or a lookup.
///
/// Every reader takes the variable's name, trims the value and treats an empty value as unset.
/// `Env` is `Copy`: pass it by value or by reference to helpers.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    source: Source<'a>,
}

#[derive(Clone, Copy)]
enum Source<'a> {
    Process,
    Lookup(&'a dyn Fn(&str) -> Option<String>),
    Map(&'a HashMap<String, String>),
    Pairs(&'a [(&'a str, &'a str)]),
}

impl fmt::Debug for Env<'_> {
    /// Names the source only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            Source::Process => f.write_str("Env(process)"),
            Source::Lookup(_) => f.write_str("Env(lookup)"),
            Source::Map(m) => write!(f, "Env(map of {} variables)", m.len()),
            Source::Pairs(p) => write!(f, "Env({} pairs)", p.len()),
        }
    }
}

impl Env<'static> {
    /// The process environment. A value that is not valid UTF-8 is an error naming the variable.
    pub fn process() -> Self {
        Env {
            source: Source::Process,
        }
    }
}

impl<'a> Env<'a> {
    /// Variables from a lookup function (`None` = unset).
    pub fn from_fn(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env {
            source: Source::Lookup(lookup),
        }
    }

    /// Variables from a map.
    pub fn from_map(map: &'a HashMap<String, String>) -> Self {
        Env {
            source: Source::Map(map),
        }
    }

    /// Variables from `(name, value)` pairs (tests); a later pair overrides an earlier one.
    pub fn from_pairs(pairs: &'a [(&'a str, &'a str)]) -> Self {
        Env {
            source: Source::Pairs(pairs),
        }
    }

    /// The value exactly as the source holds it (untrimmed; `None` when unset or, in the process
    /// environment, not UTF-8). For handing this source to a reader that takes a lookup function.
    pub fn raw(&self, name: &str) -> Option<String> {
        match self.source {
            Source::Process => std::env::var(name).ok(),
            Source::Lookup(lookup) => lookup(name),
            Source::Map(map) => map.get(name).cloned(),
            Source::Pairs(pairs) => pair(pairs, name),
        }
    }

    /// The value untrimmed, `None` when unset or blank.
    fn untrimmed(&self, name: &str) -> Result<Option<String>, ConfigError> {
        let value = match self.source {
            Source::Process => match std::env::var(name) {
                Ok(v) => Some(v),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::new(name, "not valid UTF-8"))
                }
            },
            Source::Lookup(lookup) => lookup(name),
            Source::Map(map) => map.get(name).cloned(),
            Source::Pairs(pairs) => pair(pairs, name),
        };
        Ok(value.filter(|v| !v.trim().is_empty()))
    }

    /// Reads a variable, trimmed; empty values count as unset.
    pub fn optional(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.untrimmed(name)?.map(|v| v.trim().to_owned()))
    }

    /// Reads a required variable.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.optional(name)?
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// Reads and parses a variable when set.
    pub fn parse_optional<T>(&self, name: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.optional(name)? {
            None => Ok(None),
            Some(raw) => raw
                .parse::<T>()
                .map(Some)
                .map_err(|e| ConfigError::new(name, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// Reads and parses a variable, or returns `default` when unset.
    pub fn parse_or<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        Ok(self.parse_optional(name)?.unwrap_or(default))
    }

    /// Reads a number that must lie in `range`, or returns `default` when unset.
    pub fn number_in<T>(
        &self,
        name: &str,
        default: T,
        range: RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display,
    {
        Ok(self
            .bounded_optional(name, range, "a number")?
            .unwrap_or(default))
    }

    /// Reads a duration in whole seconds that must lie in `range`, or returns `default`.
    pub fn secs_in(
        &self,
        name: &str,
        default: Duration,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.duration_in(name, default, range, Duration::from_secs, "seconds")
    }

    /// Reads a duration in milliseconds that must lie in `range`, or returns `default`.
    pub fn millis_in(
        &self,
        name: &str,
        default: Duration,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.duration_in(name, default, range, Duration::from_millis, "milliseconds")
    }

    fn duration_in(
        &self,
        name: &str,
        default: Duration,
        range: RangeInclusive<u64>,
        unit: fn(u64) -> Duration,
        unit_name: &str,
    ) -> Result<Duration, ConfigError> {
        let what = format!("a number of {unit_name}");
        Ok(self
            .bounded_optional(name, range, &what)?
            .map(unit)
            .unwrap_or(default))
    }

    fn bounded_optional<T>(
        &self,
        name: &str,
        range: RangeInclusive<T>,
        what: &str,
    ) -> Result<Option<T>, ConfigError>
    where
        T: FromStr + PartialOrd + Display,
    {
        match self.optional(name)? {
            None => Ok(None),
            Some(v) => match v.parse::<T>() {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(ConfigError::new(
                    name,
                    format!(
                        "must be {what} from {} to {}, got {v:?}",
                        range.start(),
                        range.end()
                    ),
                )),
            },
        }
    }

    /// Reads a duration given in milliseconds, or returns `default`.
    pub fn millis_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self
            .parse_optional::<u64>(name)?
            .map(Duration::from_millis)
            .unwrap_or(default))
    }

    /// Reads a duration given in seconds, or returns `default`.
    pub fn secs_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        Ok(self
            .parse_optional::<u64>(name)?
            .map(Duration::from_secs)
            .unwrap_or(default))
    }

    /// Reads a boolean (`true/false/1/0/yes/no/on/off`, any case), or returns `default`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name)? {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    name,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }

    /// Reads a comma-separated list (items trimmed, empty items dropped); empty when unset.
    pub fn list(&self, name: &str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .optional(name)?
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Reads a secret from `NAME` (as given, unless blank), or from the file named by `NAME_FILE`
    /// (trailing newline trimmed; an empty file is an error). Setting both is an error, so a stale
    /// value never silently wins.
    pub fn secret(&self, name: &str) -> Result<Option<SecretString>, ConfigError> {
        let file_var = format!("{name}_FILE");
        let direct = self.untrimmed(name)?;
        let file = self.optional(&file_var)?;
        match (direct, file) {
            (Some(_), Some(_)) => Err(ConfigError::new(
                name,
                format!("set either {name} or {file_var}, not both"),
            )),
            (Some(v), None) => Ok(Some(SecretString::from(v))),
            (None, Some(path)) => {
                let raw = std::fs::read_to_string(&path).map_err(|e| {
                    ConfigError::new(&file_var, format!("cannot read {path:?}: {e}"))
                })?;
                let value = raw.trim_end_matches(['\n', '\r']).to_owned();
                if value.is_empty() {
                    return Err(ConfigError::new(
                        &file_var,
                        format!("file {path:?} is empty"),
                    ));
                }
                Ok(Some(SecretString::from(value)))
            }
            (None, None) => Ok(None),
        }
    }

    /// Like [`Env::secret`] but required.
    pub fn required_secret(&self, name: &str) -> Result<SecretString, ConfigError> {
        self.secret(name)?.ok_or_else(|| {
            ConfigError::new(name, format!("is required: set {name} or {name}_FILE"))
        })
    }

    /// Reads an `http://` or `https://` URL with a host and without a query or fragment (a base
    /// URL); the trailing `/` is removed.
    pub fn http_url(&self, name: &str) -> Result<Option<String>, ConfigError> {
        self.optional(name)?.map(|v| base_url(name, &v)).transpose()
    }

    /// Like [`Env::http_url`], with a default.
    pub fn http_url_or(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        match self.http_url(name)? {
            Some(url) => Ok(url),
            None => base_url(name, default),
        }
    }

    /// Like [`Env::http_url`] but required.
    pub fn required_http_url(&self, name: &str) -> Result<String, ConfigError> {
        self.http_url(name)?
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }
}

fn pair(pairs: &[(&str, &str)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| (*v).to_owned())
}

/// A configuration read from an [`Env`]: implement [`FromEnv::read`], get [`FromEnv::from_env`]
/// (the process environment) and [`FromEnv::from_lookup`] (tests pass a map).
pub trait FromEnv: Sized {
    /// Reads the configuration from `env`.
    fn read(env: &Env<'_>) -> Result<Self, ConfigError>;

    /// Reads the configuration from the process environment.
    fn from_env() -> Result<Self, ConfigError> {
        Self::read(&Env::process())
    }

    /// Reads the configuration from a lookup (`None` = unset).
    fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&Env::from_fn(lookup))
    }
}

fn base_url(name: &str, value: &str) -> Result<String, ConfigError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.query().is_some() || u.fragment().is_some() {
                return Err(ConfigError::new(name, "must not carry a query or fragment"));
            }
            Ok(value.trim_end_matches('/').to_owned())
        }
        _ => Err(ConfigError::new(
            name,
            "must be an http(s) URL, e.g. https://host.example.com",
        )),
    }
}

/// Reads a variable from the process environment; see [`Env::optional`].
pub fn optional(name: &str) -> Result<Option<String>, ConfigError> {
    Env::process().optional(name)
}

/// Reads a required variable; see [`Env::required`].
pub fn required(name: &str) -> Result<String, ConfigError> {
    Env::process().required(name)
}

/// Reads and parses a variable, or returns `default` when unset; see [`Env::parse_or`].
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Env::process().parse_or(name, default)
}

/// Reads and parses a variable when set; see [`Env::parse_optional`].
pub fn parse_optional<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    Env::process().parse_optional(name)
}

/// Reads a duration given in milliseconds, or returns `default`; see [`Env::millis_or`].
pub fn millis_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    Env::process().millis_or(name, default)
}

/// Reads a duration given in seconds, or returns `default`; see [`Env::secs_or`].
pub fn secs_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    Env::process().secs_or(name, default)
}

/// Reads a boolean, or returns `default`; see [`Env::bool_or`].
pub fn bool_or(name: &str, default: bool) -> Result<bool, ConfigError> {
    Env::process().bool_or(name, default)
}

/// Reads a comma-separated list; see [`Env::list`].
pub fn list(name: &str) -> Result<Vec<String>, ConfigError> {
    Env::process().list(name)
}

/// Reads a secret from `NAME` or `NAME_FILE`; see [`Env::secret`].
pub fn secret(name: &str) -> Result<Option<SecretString>, ConfigError> {
    Env::process().secret(name)
}

/// Like [`secret`] but required.
pub fn required_secret(name: &str) -> Result<SecretString, ConfigError> {
    Env::process().required_secret(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use secrecy::ExposeSecret;

    // Environment mutation is process-global; each test uses its own variable names.

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parse_errors_name_the_variable() {
        std::env::set_var("FC_TEST_PARSE_BAD", "three");
        let err = parse_or::<u32>("FC_TEST_PARSE_BAD", 1).unwrap_err();
        assert_eq!(err.var, "FC_TEST_PARSE_BAD");
        assert!(err
            .to_string()
            .starts_with("FC_TEST_PARSE_BAD: cannot parse \"three\""));
    }

    #[test]
    fn unset_and_empty_use_the_default() {
        std::env::set_var("FC_TEST_EMPTY", "  ");
        assert_eq!(parse_or("FC_TEST_EMPTY", 7u32).unwrap(), 7);
        assert_eq!(parse_or("FC_TEST_NEVER_SET", 9u32).unwrap(), 9);
        assert!(required("FC_TEST_NEVER_SET")
            .unwrap_err()
            .to_string()
            .contains("required"));
    }

    #[test]
    fn secrets_come_from_a_file_and_both_sources_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::env::set_var("FC_TEST_SECRET_FILE", &path);
        let s = secret("FC_TEST_SECRET").unwrap().unwrap();
        assert_eq!(s.expose_secret(), "s3cret");
        std::env::set_var("FC_TEST_SECRET", "other");
        let err = secret("FC_TEST_SECRET").unwrap_err();
        assert!(err.to_string().contains("not both"));
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn booleans_and_lists() {
        std::env::set_var("FC_TEST_BOOL", "yes");
        assert!(bool_or("FC_TEST_BOOL", false).unwrap());
        std::env::set_var("FC_TEST_BOOL_BAD", "maybe");
        assert!(bool_or("FC_TEST_BOOL_BAD", false).is_err());
        std::env::set_var("FC_TEST_LIST", "a, b,,c");
        assert_eq!(list("FC_TEST_LIST").unwrap(), vec!["a", "b", "c"]);
    }

    #[cfg(unix)]
    #[test]
    fn process_values_that_are_not_utf8_are_errors() {
        use std::os::unix::ffi::OsStrExt;
        std::env::set_var(
            "FC_TEST_NOT_UTF8",
            std::ffi::OsStr::from_bytes(&[b'a', 0xff]),
        );
        let err = optional("FC_TEST_NOT_UTF8").unwrap_err();
        assert_eq!(err.to_string(), "FC_TEST_NOT_UTF8: not valid UTF-8");
        assert_eq!(Env::process().raw("FC_TEST_NOT_UTF8"), None);
    }

    #[test]
    fn values_from_a_map_or_a_function_are_trimmed_and_blank_is_unset() {
        let pairs = [("A", "overridden"), ("A", "  x  "), ("BLANK", "   ")];
        let m = map(&pairs[1..]);
        let lookup = |k: &str| m.get(k).cloned();
        for env in [
            Env::from_map(&m),
            Env::from_fn(&lookup),
            Env::from_pairs(&pairs),
        ] {
            assert_eq!(env.optional("A").unwrap().as_deref(), Some("x"));
            assert_eq!(env.optional("BLANK").unwrap(), None);
            assert_eq!(env.optional("UNSET").unwrap(), None);
            assert_eq!(env.raw("A").as_deref(), Some("  x  "));
            assert_eq!(env.required("A").unwrap(), "x");
            let err = env.required("BLANK").unwrap_err();
            assert_eq!(err.to_string(), "BLANK: is required but not set");
        }
        let shown = format!("{:?}", Env::from_map(&m));
        assert!(!shown.contains('x'), "{shown}");
    }

    #[test]
    fn numbers_in_a_range() {
        let m = map(&[("N", "64"), ("ZERO", "0"), ("WORD", "many"), ("S", "120")]);
        let env = Env::from_map(&m);
        assert_eq!(env.number_in("N", 1usize, 1..=4096).unwrap(), 64);
        assert_eq!(env.number_in("UNSET", 8u32, 1..=256).unwrap(), 8);
        let err = env.number_in("ZERO", 4u64, 1..=64).unwrap_err();
        assert_eq!(err.var, "ZERO");
        assert_eq!(err.problem, "must be a number from 1 to 64, got \"0\"");
        let err = env.number_in("WORD", 4u64, 1..=64).unwrap_err();
        assert_eq!(err.problem, "must be a number from 1 to 64, got \"many\"");
        assert_eq!(
            env.secs_in("S", Duration::ZERO, 0..=86_400).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            env.millis_in("UNSET", Duration::from_millis(500), 10..=60_000)
                .unwrap(),
            Duration::from_millis(500)
        );
        let err = env
            .secs_in("S", Duration::ZERO, 1..=60)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "S: must be a number of seconds from 1 to 60, got \"120\""
        );
        let err = env
            .millis_in("ZERO", Duration::ZERO, 10..=60_000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a number of milliseconds from 10 to 60000"),
            "{err}"
        );
        assert_eq!(
            env.secs_or("S", Duration::ZERO).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            env.millis_or("N", Duration::ZERO).unwrap(),
            Duration::from_millis(64)
        );
    }

    #[test]
    fn booleans_lists_and_parsing_from_a_map() {
        let m = map(&[
            ("ON", "On"),
            ("OFF", "0"),
            ("BAD", "maybe"),
            ("L", " a, b ,,c "),
            ("ADDR", "127.0.0.1:8080"),
        ]);
        let env = Env::from_map(&m);
        assert!(env.bool_or("ON", false).unwrap());
        assert!(!env.bool_or("OFF", true).unwrap());
        assert!(env.bool_or("UNSET", true).unwrap());
        assert_eq!(
            env.bool_or("BAD", false).unwrap_err().to_string(),
            "BAD: expected true or false, got \"maybe\""
        );
        assert_eq!(env.list("L").unwrap(), vec!["a", "b", "c"]);
        assert!(env.list("UNSET").unwrap().is_empty());
        let addr: std::net::SocketAddr = env.parse_or("ADDR", ([0, 0, 0, 0], 1).into()).unwrap();
        assert_eq!(addr.port(), 8080);
        assert_eq!(env.parse_optional::<u16>("UNSET").unwrap(), None);
        assert_eq!(env.parse_or::<u16>("BAD", 1).unwrap_err().var, "BAD");
    }

    #[test]
    fn secrets_from_a_map_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, " file secret \r\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let good = good.to_str().unwrap().to_owned();
        let empty = empty.to_str().unwrap().to_owned();
        let m = map(&[
            ("DIRECT", "direct-secret"),
            ("FROM_FILE_FILE", &good),
            ("EMPTY_FILE", &empty),
            ("MISSING_FILE", "/nonexistent/secret"),
            ("BOTH", "a"),
            ("BOTH_FILE", &good),
        ]);
        let env = Env::from_map(&m);
        let s = env.secret("DIRECT").unwrap().unwrap();
        assert_eq!(s.expose_secret(), "direct-secret");
        // Only the trailing newline goes: a file holds the value exactly.
        let s = env.required_secret("FROM_FILE").unwrap();
        assert_eq!(s.expose_secret(), " file secret ");
        assert_eq!(env.secret("UNSET").unwrap().map(|_| ()), None);
        let err = env.secret("EMPTY").unwrap_err();
        assert_eq!(err.var, "EMPTY_FILE");
        assert!(err.problem.contains("is empty"), "{err}");
        let err = env.secret("MISSING").unwrap_err();
        assert_eq!(err.var, "MISSING_FILE");
        assert!(err.problem.contains("cannot read"), "{err}");
        let err = env.secret("BOTH").unwrap_err();
        assert_eq!(
            err.to_string(),
            "BOTH: set either BOTH or BOTH_FILE, not both"
        );
        let err = env.required_secret("UNSET").unwrap_err();
        assert_eq!(
            err.to_string(),
            "UNSET: is required: set UNSET or UNSET_FILE"
        );
    }

    #[test]
    fn from_env_and_from_lookup_read_the_same_fields() {
        #[derive(Debug, PartialEq)]
        struct Settings {
            port: u16,
        }
        impl FromEnv for Settings {
            fn read(env: &Env<'_>) -> Result<Self, ConfigError> {
                Ok(Settings {
                    port: env.number_in("FC_TEST_FROM_ENV_PORT", 80, 1..=65_535)?,
                })
            }
        }
        std::env::set_var("FC_TEST_FROM_ENV_PORT", "8080");
        assert_eq!(Settings::from_env().unwrap(), Settings { port: 8080 });
        let lookup = |k: &str| (k == "FC_TEST_FROM_ENV_PORT").then(|| "0".to_owned());
        assert_eq!(
            Settings::from_lookup(&lookup).unwrap_err().var,
            "FC_TEST_FROM_ENV_PORT"
        );
        assert_eq!(
            Settings::from_lookup(&|_| None).unwrap(),
            Settings { port: 80 }
        );
    }

    #[test]
    fn base_urls() {
        let m = map(&[
            ("OK", "https://hooks.example.com/flexcord/"),
            ("LOCAL", "http://127.0.0.1:8080"),
            ("FTP", "ftp://x"),
            ("QUERY", "https://x/?a=1"),
            ("FRAGMENT", "https://x/#top"),
            ("NO_HOST", "http://"),
            ("WORD", "hooks"),
        ]);
        let env = Env::from_map(&m);
        assert_eq!(
            env.required_http_url("OK").unwrap(),
            "https://hooks.example.com/flexcord"
        );
        assert_eq!(
            env.http_url("LOCAL").unwrap().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(env.http_url("UNSET").unwrap(), None);
        assert_eq!(
            env.http_url_or("UNSET", "http://localhost:8085/").unwrap(),
            "http://localhost:8085"
        );
        for bad in ["FTP", "NO_HOST", "WORD"] {
            let err = env.http_url(bad).unwrap_err();
            assert_eq!(err.var, bad);
            assert!(err.problem.starts_with("must be an http(s) URL"), "{err}");
        }
        for bad in ["QUERY", "FRAGMENT"] {
            let err = env.http_url_or(bad, "http://x").unwrap_err();
            assert_eq!(err.problem, "must not carry a query or fragment");
        }
        assert_eq!(
            env.required_http_url("UNSET").unwrap_err().to_string(),
            "UNSET: is required but not set"
        );
    }
}
