//! The `kith` binary end to end against a real relay on loopback: two accounts, a group,
//! a text each way, everything through the command line with `--json`.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kith_e2e::{start_relay, LocalRelay, DOMAIN};
use serde_json::Value;

/// How long the whole exchange may take before the test gives up (not a speed claim).
const OVERALL: Duration = Duration::from_secs(180);

/// Runs `kith --json --data-dir DIR ARGS...`, requires success and parses its stdout.
fn kith(dir: &Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--json")
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("running kith");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kith {args:?} failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("bad JSON {stdout:?}: {e}"))
}

/// `kith init` against the local relay.
fn init(relay: &LocalRelay, dir: &Path) -> String {
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

/// The texts `dir`'s history shows in `group` that were received (not sent by itself).
fn received(dir: &Path, group: &str) -> Vec<String> {
    let history = kith(dir, &["history", group]);
    history
        .as_array()
        .expect("history is a list")
        .iter()
        .filter(|m| m["outgoing"] == Value::Bool(false))
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect()
}

/// Syncs `dir` in short rounds until its history shows `text` from someone else; returns
/// how many times it appears then.
fn sync_until_received(dir: &Path, group: &str, text: &str, deadline: Instant) -> usize {
    loop {
        kith(dir, &["sync", "--seconds", "2"]);
        let count = received(dir, group).iter().filter(|t| *t == text).count();
        if count > 0 {
            return count;
        }
        assert!(
            Instant::now() < deadline,
            "{text:?} never arrived: {:?}",
            kith(dir, &["history", group])
        );
    }
}

#[test]
fn two_cli_accounts_exchange_texts_through_a_local_relay() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let relay = runtime.block_on(start_relay()).expect("starting the relay");
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let deadline = Instant::now() + OVERALL;

    let address_a = init(&relay, a.path());
    let address_b = init(&relay, b.path());
    assert_ne!(address_a, address_b);
    assert!(address_a.ends_with(&format!("@{DOMAIN}")), "{address_a}");

    let bundle = kith(b.path(), &["bundle"])["bundle"]
        .as_str()
        .expect("bundle")
        .to_owned();
    let group = kith(a.path(), &["group", "create", "friends"])["group"]
        .as_str()
        .expect("group id")
        .to_owned();
    assert_eq!(
        kith(a.path(), &["group", "add", &group, &bundle])["added"],
        true
    );

    let hello = "hello from A over the CLI";
    kith(a.path(), &["send", &group, hello]);
    assert_eq!(sync_until_received(b.path(), &group, hello, deadline), 1);

    let reply = "and back from B";
    kith(b.path(), &["send", &group, reply]);
    assert_eq!(sync_until_received(a.path(), &group, reply, deadline), 1);
    // B's own text is in its history as outgoing, A's still exactly once.
    assert_eq!(
        received(b.path(), &group)
            .iter()
            .filter(|t| *t == hello)
            .count(),
        1
    );
    relay.ctx.shutdown.cancel();
}
