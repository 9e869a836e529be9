use super::config;

const VAR: &str = "FIX_CONST";

pub fn load(lookup: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    // optional("DECOY_LINE_COMMENT")
    /* optional("DECOY_BLOCK_COMMENT") /* nested */ */
    let _ = config::parse_or("FIX_PARSE_OR", 1u32)?;
    let _ = config::secret("FIX_SECRET")?;
    let _ = std::env::var("FIX_STD_VAR");
    let _ = std::env::var_os("FIX_STD_VAR_OS");
    let _ = lookup("FIX_LOOKUP_PARAM");
    let _ = number(lookup, "FIX_NUMBER_HELPER", 3, 1, 10)?;
    let _ = get(lookup, VAR);
    let opt = |name: &str| lookup(name).filter(|v| !v.is_empty());
    let _ = opt("FIX_CLOSURE");
    let sid = |var: &str, prefix: &str| -> Result<String, ConfigError> {
        let v = opt(var).ok_or_else(|| err(var, "missing"))?;
        Ok(format!("{prefix}{v}"))
    };
    let _ = sid("FIX_NESTED_CLOSURE", "WS")?;
    let _ = apology("FIX_HELPER_FN")?;
    let _ = token(lookup);
    // decoys
    let _ = err("DECOY_ERROR_ONLY", "an error naming a variable is not a read");
    let map = std::collections::HashMap::<String, String>::new();
    let _ = map.get("DECOY_METHOD_CALL");
    let _ = env!("CARGO_PKG_NAME");
    let _ = option_env!("DECOY_COMPILE_TIME");
    let _ = r#"optional("DECOY_RAW_STRING")"#;
    let _ = 'a';
    let _ = config::optional("lower_case_decoy");
    let stream = StreamSpec { name: "DECOY_STRUCT_FIELD" };
    std::env::set_var("DECOY_SET_VAR", "1");
    let computed = format!("{}_X", "PREFIX");
    let _ = std::env::var(&computed);
    Ok(())
}

fn get(lookup: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var).map(|v| v.trim().to_owned())
}

fn number<T: FromStr>(lookup: &dyn Fn(&str) -> Option<String>, var: &'static str, default: T, min: T, max: T) -> Result<T, ConfigError> {
    match get(lookup, var) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| err(var, "bad")),
    }
}

fn apology(var: &str) -> Result<Option<String>, ConfigError> {
    config::optional(var)
}

fn token(lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    const VAR: &str = "FIX_FN_CONST";
    const FILE_VAR: &str = "FIX_FN_CONST_FILE";
    get(lookup, VAR).or_else(|| get(lookup, FILE_VAR))
}

fn err(var: &str, reason: &str) -> ConfigError {
    ConfigError::new(var, reason)
}

pub fn from_lookup<F>(lookup: F) -> Option<String>
where
    F: Fn(&str) -> Option<String>,
{
    lookup("FIX_GENERIC_LOOKUP")
}

#[derive(clap::Parser)]
pub struct Args {
    #[arg(long, env = "FIX_CLAP_ENV")]
    pub bind: String,
}

#[cfg(test)]
mod file_tests;
