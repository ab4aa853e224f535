use super::*;
use crate::transport::TrustAnchor;

fn relay() -> RelayEndpoint {
    RelayEndpoint::standard("relay.example")
}

#[test]
fn create_makes_a_chatmail_style_account_and_open_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice");
    let created = Account::create(&path, relay()).unwrap();
    let (local, domain) = created.address().split_once('@').unwrap();
    assert_eq!(domain, "relay.example");
    assert_eq!(local.len(), ADDRESS_LOCAL_LEN);
    assert!(local.bytes().all(|b| LOCAL_ALPHABET.contains(&b)));
    assert!(created.credentials().password.len() >= 20);

    let verified = created
        .certificate()
        .verify(Some(&created.identity().public_key()))
        .unwrap();
    assert_eq!(verified.delivery_address, created.address());
    assert_eq!(verified.device_id, created.device_id());
    assert_eq!(
        verified.device_signature_key,
        created.signing_key().public_key()
    );

    let identity = created.identity().public_key();
    let signing = created.signing_key().public_key();
    let address = created.address().to_owned();
    let password = created.credentials().password.to_string();
    drop(created);
    let opened = Account::open(&path).unwrap();
    assert_eq!(opened.identity().public_key(), identity);
    assert_eq!(opened.signing_key().public_key(), signing);
    assert_eq!(opened.address(), address);
    assert_eq!(opened.credentials().password.as_str(), password);
    assert_eq!(opened.relay(), &relay());
}

#[test]
fn two_accounts_get_different_keys_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let a = Account::create(&dir.path().join("a"), relay()).unwrap();
    let b = Account::create(&dir.path().join("b"), relay()).unwrap();
    assert_ne!(a.address(), b.address());
    assert_ne!(a.identity().public_key(), b.identity().public_key());
    assert_ne!(a.credentials().password, b.credentials().password);
}

#[test]
fn create_twice_and_open_nothing_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let _first = Account::create(&path, relay()).unwrap();
    assert!(matches!(
        Account::create(&path, relay()),
        Err(AccountError::AlreadyExists(_))
    ));
    assert!(matches!(
        Account::open(&dir.path().join("nobody")),
        Err(AccountError::NotFound(_))
    ));
}

#[test]
fn the_data_directory_is_private_and_debug_hides_secrets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let mut endpoint = relay();
    endpoint.trust = TrustAnchor::PemFile("/etc/kith/relay.pem".into());
    let account = Account::create(&path, endpoint).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let debug = format!("{account:?} {:?}", account.credentials());
    assert!(!debug.contains(account.credentials().password.as_str()));
    let secret = hex::encode(&account.identity().to_bytes()[..]);
    assert!(!debug.contains(&secret));
}

#[test]
fn queued_envelopes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let account = Account::create(&path, relay()).unwrap();
    let id = account
        .queue_envelope(b"envelope", &["x@relay.example".into()])
        .unwrap();
    drop(account);
    let account = Account::open(&path).unwrap();
    let entry = account
        .database()
        .read(|conn| crate::db::outbox::next_due(conn, i64::MAX))
        .unwrap()
        .unwrap();
    assert_eq!(entry.id, id);
    assert_eq!(entry.envelope, b"envelope");
    assert_eq!(entry.recipients, vec!["x@relay.example".to_owned()]);
}
