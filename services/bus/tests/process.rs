//! `service::run_process` in a process of its own (it installs the global log subscriber).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flexcord_bus::service::{run_process, ProcessError};

#[test]
fn runs_the_service_with_a_live_shutdown_token_and_returns_its_result() {
    std::env::set_var("LOG_FORMAT", "json");
    let out = run_process("process-test", |shutdown| async move {
        // Inside the runtime: tokio is available and nothing has asked for a shutdown.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        (shutdown.is_cancelled(), 42)
    })
    .unwrap();
    assert_eq!(out, (false, 42));

    std::env::set_var("LOG_FORMAT", "xml");
    let err = run_process("process-test", |_| async {}).unwrap_err();
    assert!(
        matches!(err, ProcessError::Config(ref e) if e.var == "LOG_FORMAT"),
        "{err}"
    );
}
