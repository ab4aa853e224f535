//! The kith-audit binary, driven through its command line on real files and a real SQLite
//! database laid out like the relay's.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kith_crypto::envelope::{seal, SealKey, SymmetricKey, SymmetricKind};
use kith_crypto::frame::{Frame, FrameKind};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rusqlite::Connection;

fn kith_audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith-audit"))
        .args(args)
        .output()
        .expect("kith-audit runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn sealed(seed: u64) -> Vec<u8> {
    let key = SymmetricKey::new(SymmetricKind::Epoch, [seed as u8; 32]);
    let frame = Frame {
        kind: FrameKind::Mls,
        payload: b"secret group text".to_vec(),
    };
    seal(
        &frame,
        SealKey::Symmetric(&key),
        "x9y8z7@relay.example",
        1_800_000_000,
        &mut StdRng::seed_from_u64(seed),
    )
    .expect("seals")
}

/// A relay.db in WAL mode with the relay's `messages` table and the given bodies.
fn relay_db(dir: &Path, bodies: &[Vec<u8>]) {
    let conn = Connection::open(dir.join("relay.db")).expect("create db");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("WAL");
    conn.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB NOT NULL, size INTEGER NOT NULL,
         received_at INTEGER NOT NULL, refs INTEGER NOT NULL);",
    )
    .expect("schema");
    for body in bodies {
        conn.execute(
            "INSERT INTO messages (body, size, received_at, refs) VALUES (?1, ?2, 0, 1)",
            rusqlite::params![body, body.len() as i64],
        )
        .expect("insert");
    }
}

#[test]
fn inspect_shows_headers_sizes_and_packets_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.eml");
    std::fs::write(&path, sealed(1)).expect("write");
    let out = kith_audit(&["inspect", path.to_str().expect("utf-8 path")]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("  From: x9y8z7@relay.example\n"), "{text}");
    assert!(text.contains("  Subject: [...]\n"));
    assert!(text.contains("SKESK (tag 3) v6"), "{text}");
    assert!(text.contains("SEIPD (tag 18) v2"), "{text}");
    assert!(text.contains("verdict: valid envelope"));
    assert!(
        !text.contains("BEGIN PGP"),
        "inspect must not print the ciphertext"
    );
}

#[test]
fn inspect_fails_on_plaintext() {
    let path = fixtures().join("reject-plaintext.eml");
    let out = kith_audit(&["inspect", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("verdict: NOT a valid envelope"));
}

#[test]
fn scan_reports_the_one_bad_row_in_relay_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plaintext = std::fs::read(fixtures().join("reject-plaintext.eml")).expect("fixture");
    relay_db(dir.path(), &[sealed(1), sealed(2), plaintext, sealed(3)]);
    let out = kith_audit(&["scan", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].starts_with("relay.db message 3: "), "{text}");
}

#[test]
fn scan_passes_a_clean_relay_db() {
    let dir = tempfile::tempdir().expect("tempdir");
    relay_db(dir.path(), &[sealed(1), sealed(2)]);
    let out = kith_audit(&["scan", dir.path().to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("scanned 2 messages: 0 not valid"));
}

#[test]
fn scan_of_eml_files_names_every_reject_fixture() {
    let out = kith_audit(&["scan", fixtures().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let rejects = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter(|e| {
            let name = e.as_ref().expect("entry").file_name();
            let name = name.to_string_lossy();
            name.starts_with("reject-") && name.ends_with(".eml")
        })
        .count();
    assert_eq!(text.lines().count(), rejects, "{text}");
    assert!(text.lines().all(|l| l.contains("reject-")), "{text}");
}

#[test]
fn vectors_pass_and_a_corrupted_file_fails() {
    let out = kith_audit(&["vectors"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("envelope") && text.contains("backup"));
    assert_eq!(text.matches("PASS").count(), 2, "{text}");

    let dir = tempfile::tempdir().expect("tempdir");
    let vectors = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors");
    let envelope = std::fs::read_to_string(vectors.join("envelope.json")).expect("vectors");
    let first_bucket = "\"buckets\": [\n    [\n      0,\n      512";
    assert!(envelope.contains(first_bucket));
    let corrupted = envelope.replacen(
        first_bucket,
        "\"buckets\": [\n    [\n      0,\n      513",
        1,
    );
    std::fs::write(dir.path().join("envelope.json"), corrupted).expect("write");
    std::fs::copy(vectors.join("backup.json"), dir.path().join("backup.json")).expect("copy");
    let out = kith_audit(&["vectors", "--dir", dir.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("FAIL: bucket"), "{text}");
}
