//! A copy of flexcord-bus's helper shapes: readers found by inference from std::env::var.

pub mod helpers;

/// Reads a variable. `optional("DECOY_DOC_COMMENT")` in a doc comment is not a read.
pub fn optional(name: &str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) => Ok(Some(v)),
        Err(_) => Ok(None),
    }
}

pub fn required(name: &str) -> Result<String, ConfigError> {
    optional(name)?.ok_or_else(|| ConfigError::new(name, "missing"))
}

pub fn parse_or<T: FromStr>(name: &str, default: T) -> Result<T, ConfigError> {
    Ok(parse_optional(name)?.unwrap_or(default))
}

pub fn parse_optional<T: FromStr>(name: &str) -> Result<Option<T>, ConfigError> {
    optional(name).map(|v| v.and_then(|s| s.parse().ok()))
}

/// NAME or the file named by NAME_FILE.
pub fn secret(name: &str) -> Result<Option<SecretString>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let direct = optional(name)?;
    let file = optional(&file_var)?;
    Ok(direct.or(file).map(SecretString::from))
}

#[cfg(test)]
mod tests {
    #[test]
    fn t() {
        std::env::set_var("DECOY_TEST_SET", "1");
        assert!(super::optional("DECOY_TEST_MODULE").is_ok());
    }
}
