//! The standalone binary: machine-parsable facts on stdout, auth, clean exit on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test]
async fn binary_announces_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twilio-emulator"))
        .args(["--bind", "127.0.0.1:0"])
        .env_remove("TWILIO_EMULATOR_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut facts = HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let (k, v) = line.split_once('=').expect("KEY=value lines only");
        facts.insert(k.to_owned(), v.to_owned());
        if k == "TWILIO_EMULATOR_READY" {
            break;
        }
    }
    let url = &facts["TWILIO_EMULATOR_URL"];
    assert_eq!(
        facts["TWILIO_EMULATOR_CONTROL_URL"],
        format!("{url}/__emulator")
    );
    // No token was chosen, so the generated one is announced and works.
    let token = facts["TWILIO_EMULATOR_AUTH_TOKEN"].clone();
    let cfg = flexcord_twilio_api::TwilioConfig::with_auth_token(
        facts["TWILIO_EMULATOR_ACCOUNT_SID"].clone(),
        flexcord_twilio_api::SecretString::from(token),
    )
    .with_base_url(url);
    let client = flexcord_twilio_api::TwilioClient::new(cfg).unwrap();
    let conv = client
        .create_conversation(&flexcord_twilio_api::CreateConversation::default())
        .await
        .unwrap();
    assert!(conv.sid.starts_with("CH"));
    let health = reqwest::get(format!("{url}/__emulator/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "emulator did not exit on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
