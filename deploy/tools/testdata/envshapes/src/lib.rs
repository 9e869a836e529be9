pub mod config;
pub mod env;
pub mod inline;

pub fn from_env() {
    let _ = config::required("FIX_REQUIRED");
    let _ = Self::from_lookup(&|k| std::env::var(k).ok());
}

#[test]
fn decoy_test_fn() {
    let _ = config::optional("DECOY_TEST_FN");
}
