//! Running the `kith` binary in tests: with `--json` and a data directory, against
//! kith-e2e's in-process relay.
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

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

/// Syncs `dir` in short rounds until `ready` holds for its history of `group`; returns
/// that history. Fails at `deadline` (a give-up bound, not a speed claim).
pub fn sync_until(
    dir: &Path,
    group: &str,
    deadline: Instant,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    loop {
        kith(dir, &["sync", "--seconds", "2"]);
        let history = kith(dir, &["history", group]);
        let list = history.as_array().expect("history is a list").clone();
        if ready(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "never ready: {history}");
    }
}

/// How many times `history` shows `text` received from someone else.
pub fn received_count(history: &[Value], text: &str) -> usize {
    history
        .iter()
        .filter(|m| m["outgoing"] == Value::Bool(false) && m["text"] == text)
        .count()
}

/// Syncs `dir` until its history of `group` shows `text` from someone else; returns how
/// many times it appears then.
pub fn sync_until_received(dir: &Path, group: &str, text: &str, deadline: Instant) -> usize {
    let history = sync_until(dir, group, deadline, |h| received_count(h, text) > 0);
    received_count(&history, text)
}
