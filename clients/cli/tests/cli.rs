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
    let address = json(&dir, &["init", "--relay", "relay.example", "--offline"])["address"]
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

/// Runs `kith init` with `args`, requires failure and returns its stderr.
fn init_fails(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(dir)
        .args(["init", "--relay", "localhost", "--offline"])
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "kith init {args:?} must fail");
    assert!(!dir.exists(), "a failed init must not create the account");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_rejects_bad_ports_and_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("alice");
    for port in ["0", "65536", "imap"] {
        let error = init_fails(&dir, &["--imap-port", port]);
        assert!(error.contains("--imap-port"), "{error}");
        let error = init_fails(&dir, &["--smtp-port", port]);
        assert!(error.contains("--smtp-port"), "{error}");
    }
    let missing = tmp.path().join("missing.pem");
    let error = init_fails(&dir, &["--ca-cert", missing.to_str().unwrap()]);
    assert!(error.contains("cannot read the certificate"), "{error}");
    let not_pem = tmp.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let error = init_fails(&dir, &["--ca-cert", not_pem.to_str().unwrap()]);
    assert!(error.contains("holds no PEM certificate"), "{error}");

    // A readable certificate is accepted (offline: nothing is contacted).
    let pem = tmp.path().join("cert.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let args = ["init", "--relay", "localhost", "--offline", "--ca-cert"];
    let mut args = args.to_vec();
    args.push(pem.to_str().unwrap());
    assert!(json(&dir, &args)["address"]
        .as_str()
        .is_some_and(|a| a.ends_with("@localhost")));
}
