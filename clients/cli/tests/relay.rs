//! The `kith` binary end to end against a real relay on loopback: two accounts, a group,
//! a text each way, everything through the command line with `--json`.
use std::process::Command;
use std::time::{Duration, Instant};

mod support;

use kith_e2e::{start_relay, DOMAIN};
use serde_json::Value;
use support::{init, kith, received_count, sync_until, sync_until_received};

/// How long the whole exchange may take before the test gives up (not a speed claim).
const OVERALL: Duration = Duration::from_secs(180);

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
    let history = kith(b.path(), &["history", &group]);
    assert_eq!(received_count(history.as_array().unwrap(), hello), 1);
    relay.ctx.shutdown.cancel();
}

fn id(value: &Value) -> String {
    value["message"].as_str().expect("message id").to_owned()
}

#[test]
fn replies_reactions_edits_files_deletion_watch_and_removal_over_the_cli() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let relay = runtime.block_on(start_relay()).expect("starting the relay");
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, b, c) = (dirs[0].path(), dirs[1].path(), dirs[2].path());
    let deadline = Instant::now() + OVERALL;
    let addresses: Vec<String> = [a, b, c].iter().map(|dir| init(&relay, dir)).collect();
    let group = kith(a, &["group", "create", "club"])["group"]
        .as_str()
        .unwrap()
        .to_owned();
    for dir in [b, c] {
        let bundle = kith(dir, &["bundle"])["bundle"]
            .as_str()
            .unwrap()
            .to_owned();
        kith(a, &["group", "add", &group, &bundle]);
    }
    let members = kith(a, &["group", "members", &group]);
    assert_eq!(members.as_array().unwrap().len(), 3);
    let admins: Vec<_> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["admin"] == true)
        .collect();
    assert_eq!(admins.len(), 1, "the creator only: {members}");
    assert_eq!(admins[0]["address"], Value::String(addresses[0].clone()));

    // B watches while A sends: the message comes out of `watch` as a JSON line.
    let watch = Command::new(env!("CARGO_BIN_EXE_kith"))
        .args(["--json", "--data-dir"])
        .arg(b)
        .args(["watch", "--seconds", "12"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting kith watch");
    std::thread::sleep(Duration::from_secs(3));
    let hello = id(&kith(a, &["send", &group, "hello club"]));
    let watched = watch.wait_with_output().expect("watch ran");
    assert!(watched.status.success());
    let watched = String::from_utf8_lossy(&watched.stdout);
    assert!(
        watched.lines().any(|line| {
            let event: Value = serde_json::from_str(line).expect("JSON line");
            event["event"] == "message" && event["data"]["message"]["text"] == "hello club"
        }),
        "watch printed no message: {watched}"
    );

    // B (now in the group) is not an admin: it may not remove anyone.
    let refused = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(b)
        .args(["group", "remove", &group, &addresses[2]])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not an admin"));
    let reply = id(&kith(b, &["send", &group, "hi A", "--reply-to", &hello]));
    kith(b, &["react", &group, &hello, "👍"]);
    let history = sync_until(a, &group, deadline, |h| {
        h.len() == 2
            && h[0]["reactions"]["👍"]
                .as_array()
                .is_some_and(|r| r.len() == 1)
    });
    assert_eq!(history[1]["reply_to"], Value::String(hello.clone()));
    assert_eq!(history[1]["id"], Value::String(reply));

    kith(a, &["edit", &group, &hello, "hello club (edited)"]);
    let file_path = a.join("notes.txt");
    let bytes: Vec<u8> = (0..3_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file_path, &bytes).unwrap();
    let file = id(&kith(
        a,
        &["send", &group, "--file", file_path.to_str().unwrap()],
    ));
    let history = sync_until(b, &group, deadline, |h| {
        h.len() == 3 && h[0]["edited"] == true
    });
    assert_eq!(history[0]["text"], "hello club (edited)");
    assert_eq!(history[2]["kind"], "file");
    assert_eq!(history[2]["file"]["mime"], "text/plain");
    let saved = b.join("saved.txt");
    kith(b, &["save", &file, saved.to_str().unwrap()]);
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    // Saving again would overwrite: refused.
    let again = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(b)
        .args(["save", &file, saved.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!again.status.success());

    // B may not edit A's message; A deletes it everywhere.
    let refused = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(b)
        .args(["edit", &group, &hello, "forged"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only its sender"));
    kith(a, &["delete", &group, &hello]);
    sync_until(b, &group, deadline, |h| h[0]["kind"] == "deleted");

    // C is removed; what A sends next never reaches it.
    let c_addr = &addresses[2];
    kith(a, &["group", "remove", &group, c_addr]);
    kith(a, &["send", &group, "after C left"]);
    sync_until(b, &group, deadline, |h| {
        h.iter().any(|m| m["text"] == "after C left")
    });
    kith(c, &["sync", "--seconds", "3"]);
    let history_c = kith(c, &["history", &group]);
    assert!(
        !history_c
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "after C left"),
        "{history_c}"
    );
    relay.ctx.shutdown.cancel();
}
