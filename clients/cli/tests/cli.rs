//! The `kith` binary's offline commands on a real data directory: init, bundle, group
//! create and history, in text and JSON.
use std::path::Path;
use std::process::Command;

use kith_core::client::Bundle;

fn kith(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("kith runs");
    assert!(
        out.status.success(),
        "kith {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut with = args.to_vec();
    with.push("--json");
    serde_json::from_str(&kith(dir, &with)).expect("JSON output")
}

#[test]
fn init_bundle_group_and_history_work_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alice");
    let address = json(&dir, &["init", "--relay", "relay.example"])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(address.ends_with("@relay.example"));

    let bundle = json(&dir, &["bundle"])["bundle"]
        .as_str()
        .unwrap()
        .to_owned();
    let bundle = Bundle::decode(&hex::decode(bundle).unwrap()).unwrap();
    assert_eq!(bundle.address, address);

    let group = kith(&dir, &["group", "create", "friends"])
        .trim()
        .to_owned();
    assert!(hex::decode(&group).is_ok_and(|id| !id.is_empty()));
    assert_eq!(json(&dir, &["history", &group]), serde_json::json!([]));

    let again = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["init", "--relay", "relay.example"])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a second init must fail");
    assert!(String::from_utf8_lossy(&again.stderr).starts_with("kith: "));
}
