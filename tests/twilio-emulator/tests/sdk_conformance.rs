//! The official Twilio Python SDK against the emulator binary (`conformance/sdk_check.py`).
//!
//! Creates (once, cached under the target dir) a venv with `twilio` from PyPI, starts the
//! `twilio-emulator` binary on 127.0.0.1:0, reads its `KEY=value` lines, runs the script.
//! Skips (loudly) only when `python3` is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// Pinned SDK version the script was written against.
const SDK_REQUIREMENT: &str = "twilio==9.13.0";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python3_available() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn venv_python(dir: &Path) -> PathBuf {
    dir.join("bin").join("python")
}

/// Creates the venv unless it already has the pinned SDK. Built in a private directory and
/// renamed into place, so concurrent test processes never see a half-built venv (we only use
/// `bin/python`, which keeps working after the move).
fn ensure_venv(dir: &Path) {
    let ready = |d: &Path| {
        venv_python(d).exists()
            && std::fs::read_to_string(d.join("installed.txt"))
                .ok()
                .as_deref()
                == Some(SDK_REQUIREMENT)
    };
    if ready(dir) {
        return;
    }
    let t = Instant::now();
    let tmp = dir.with_extension(format!("building-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let st = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&tmp)
        .status()
        .unwrap();
    assert!(st.success(), "python3 -m venv {} failed", tmp.display());
    let out = Command::new(venv_python(&tmp))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SDK_REQUIREMENT,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install {SDK_REQUIREMENT} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(tmp.join("installed.txt"), SDK_REQUIREMENT).unwrap();
    if !ready(dir) {
        let _ = std::fs::remove_dir_all(dir);
        if std::fs::rename(&tmp, dir).is_err() && !ready(dir) {
            panic!("cannot move the venv into {}", dir.display());
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    eprintln!(
        "Created the Twilio SDK venv in {:.1}s at {}",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
}

#[test]
fn official_python_sdk_works_against_the_emulator() {
    if !python3_available() {
        eprintln!("\n!!!!!!!!!! SKIPPING official_python_sdk_works_against_the_emulator: python3 NOT FOUND !!!!!!!!!!\n");
        return;
    }
    let venv = std::env::var_os("FLEXCORD_TWILIO_SDK_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("twilio-python-sdk-venv")
        });
    ensure_venv(&venv);

    let token = "conformance-token-123";
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_twilio-emulator"))
            .args(["--bind", "127.0.0.1:0", "--auth-token", token])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start twilio-emulator binary"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut facts = std::collections::HashMap::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some((k, v)) = line.split_once('=') {
            facts.insert(k.to_owned(), v.to_owned());
        }
        if line == "TWILIO_EMULATOR_READY=1" {
            break;
        }
    }
    let url = facts.get("TWILIO_EMULATOR_URL").expect("URL line").clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(facts.contains_key("TWILIO_EMULATOR_CONTROL_URL"));
    assert!(
        !facts.contains_key("TWILIO_EMULATOR_AUTH_TOKEN"),
        "a chosen token must not be printed"
    );

    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join("sdk_check.py");
    let out = Command::new(venv_python(&venv))
        .arg(&script)
        .env("TWILIO_EMULATOR_URL", &url)
        .env(
            "TWILIO_EMULATOR_ACCOUNT_SID",
            &facts["TWILIO_EMULATOR_ACCOUNT_SID"],
        )
        .env("TWILIO_EMULATOR_AUTH_TOKEN", token)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sdk_check.py failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("SDK CONFORMANCE OK"), "{stdout}\n{stderr}");
}
