//! Running the `kith` binary in tests: with `--json` and a data directory, against
//! kith-e2e's in-process relay.
use std::path::Path;
use std::process::{Command, Output};

use kith_e2e::{LocalRelay, DOMAIN};
use serde_json::Value;

/// Runs `kith --json --data-dir DIR ARGS...` and returns what happened.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--json")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("running kith")
}

/// Runs `kith --json --data-dir DIR ARGS...`, requires success and parses its stdout.
pub fn kith(dir: &Path, args: &[&str]) -> Value {
    let out = run(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kith {args:?} failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {stdout:?}: {e}"))
}

/// `kith init` against the local relay; returns the new address.
pub fn init(relay: &LocalRelay, dir: &Path) -> String {
    let imap = relay.imaps.port().to_string();
    let smtp = relay.submissions.port().to_string();
    let cert = relay.dir.path().join("cert.pem");
    let out = kith(
        dir,
        &[
            "init",
            "--relay",
            DOMAIN,
            "--host",
            "localhost",
            "--imap-port",
            &imap,
            "--smtp-port",
            &smtp,
            "--ca-cert",
            cert.to_str().expect("utf-8 path"),
        ],
    );
    out["address"].as_str().expect("address").to_owned()
}
