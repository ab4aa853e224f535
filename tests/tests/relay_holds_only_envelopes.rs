//! End to end: a relay stores what clients seal with kith-crypto, refuses plaintext, and
//! `kith-audit` — run on the live relay's data directory — confirms that every stored
//! message is a valid encrypted envelope, and catches one that is not.
use std::path::PathBuf;
use std::process::Command;

use kith_crypto::envelope::{self, SealKey, SymmetricKey, SymmetricKind};
use kith_crypto::frame::{Frame, FrameKind};
use kith_e2e::{imap_login, receive, start_relay, submit, Device, LocalRelay};
use kith_relay::context::unix_now;

/// The kith-audit binary, which `cargo test --workspace` builds beside the test binaries
/// (kith-crypto's own integration tests need it).
fn kith_audit() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("kith-audit");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p kith-crypto --bins`) first",
        bin.display()
    );
    bin
}

fn audit(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(kith_audit())
        .args(args)
        .output()
        .expect("running kith-audit");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// How many messages the relay holds for a device.
async fn stored_for(relay: &LocalRelay, device: &Device) -> u32 {
    let status = relay
        .ctx
        .store
        .mailbox_status(&device.address)
        .await
        .unwrap();
    status.exists
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_holds_only_envelopes_and_kith_audit_proves_it() {
    let relay = start_relay().await.unwrap();
    let (alice, bob) = (Device::new("alice"), Device::new("bob"));
    let _alice_imap = imap_login(&relay, &alice).await.unwrap();
    let bob_imap = imap_login(&relay, &bob).await.unwrap();
    let now = unix_now() as u64;
    let secret = "the plaintext must never reach the relay";

    // One envelope to Bob's device key, one under a (group) epoch key.
    let frame = Frame {
        kind: FrameKind::Mls,
        payload: secret.as_bytes().to_vec(),
    };
    let to_device = envelope::seal(
        &frame,
        SealKey::Device(&bob.keys.public()),
        &alice.address,
        now,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    let epoch_key = SymmetricKey::new(SymmetricKind::Epoch, [42; 32]);
    let to_group = envelope::seal(
        &frame,
        SealKey::Symmetric(&epoch_key),
        &alice.address,
        now,
        &mut rand::rngs::OsRng,
    )
    .unwrap();
    submit(&relay, &alice, &bob, &to_device).await.unwrap();
    submit(&relay, &alice, &bob, &to_group).await.unwrap();

    // Plaintext is refused with chatmail's code and not stored.
    let plaintext = format!(
        "From: <{}>\r\nSubject: hi\r\n\r\n{secret}\r\n",
        alice.address
    );
    let refused = submit(&relay, &alice, &bob, plaintext.as_bytes())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("523"), "{refused:#}");
    assert_eq!(stored_for(&relay, &bob).await, 2);

    // kith-audit on the live data directory: both stored messages are valid envelopes.
    let data_dir = relay.ctx.config.data_dir.clone();
    let (ok, text) = audit(&["scan".as_ref(), data_dir.as_os_str()]);
    assert!(ok, "scan failed on a relay holding only envelopes:\n{text}");
    assert!(text.contains("scanned 2 messages: 0 not valid"), "{text}");

    // What the relay sees of a stored message: no plaintext anywhere.
    let stored = relay
        .ctx
        .store
        .fetch_body(&bob.address, 1)
        .await
        .unwrap()
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(secret));
    let eml = relay.dir.path().join("stored.eml");
    std::fs::write(&eml, &stored).unwrap();
    let (ok, text) = audit(&["inspect".as_ref(), eml.as_os_str()]);
    assert!(ok, "{text}");
    assert!(
        text.contains(&alice.address),
        "inspect shows the sender the relay sees:\n{text}"
    );
    assert!(!text.contains(secret), "{text}");

    // Bob's device fetches uid 1 (the device-key envelope), opens it, and deletes it.
    let (_imap, opened, _) = receive(bob_imap, &bob).await.unwrap();
    assert_eq!(opened, secret);
    assert_eq!(stored_for(&relay, &bob).await, 1);

    // A relay that stored something else would be caught: plant a plaintext row.
    let db = rusqlite::Connection::open(data_dir.join("relay.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute(
        "INSERT INTO messages (body, size, received_at, refs) VALUES (?1, ?2, 0, 1)",
        rusqlite::params![plaintext.as_bytes(), plaintext.len()],
    )
    .unwrap();
    let planted = db.last_insert_rowid();
    let (ok, text) = audit(&["scan".as_ref(), data_dir.as_os_str()]);
    assert!(!ok, "scan accepted a plaintext message:\n{text}");
    assert!(
        text.contains(&format!("relay.db message {planted}:")),
        "{text}"
    );
    relay.ctx.shutdown.cancel();
}
