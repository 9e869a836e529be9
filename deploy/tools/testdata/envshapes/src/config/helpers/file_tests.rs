// A `#[cfg(test)] mod file_tests;` module: everything here is test code.
fn t() {
    let _ = super::config::optional("DECOY_TEST_FILE");
}
