use kith_crypto::certificate::{CertificateError, DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{
    begin_immediate, credential_with_key, epoch_id, export_epoch_key, group_create_config,
    group_join_config, new_key_package, run_migrations, verify_leaf_credential, DeviceSigningKey,
    EpochExport, KithProvider,
};
use rand::rngs::OsRng;
use rusqlite::Connection;
use std::path::Path;

struct Device {
    identity: IdentityKey,
    signer: DeviceSigningKey,
    certificate: DeviceCertificate,
    conn: Connection,
}

fn open(path: &Path) -> Connection {
    let mut conn = Connection::open(path).expect("open sqlite file");
    run_migrations(&mut conn).expect("migrations");
    conn
}

fn device(path: &Path, address: &str) -> Device {
    let identity = IdentityKey::generate(&mut OsRng);
    let signer = DeviceSigningKey::generate(&mut OsRng);
    let certificate = DeviceCertificate::issue(
        &identity,
        DeviceId::generate(&mut OsRng),
        signer.public_key(),
        address,
        1_700_000_000,
    )
    .expect("certificate");
    Device {
        identity,
        signer,
        certificate,
        conn: open(path),
    }
}

fn to_in(message: MlsMessageOut) -> MlsMessageIn {
    let bytes = message.tls_serialize_detached().expect("serialize");
    MlsMessageIn::tls_deserialize_exact(bytes).expect("deserialize")
}

fn protocol(message: MlsMessageOut) -> (WireFormat, ProtocolMessage) {
    let message = to_in(message);
    let wire_format = message.wire_format();
    let protocol = message
        .try_into_protocol_message()
        .expect("a protocol message");
    (wire_format, protocol)
}

/// Bob's KeyPackage, which Alice checks (identity, leaf key) before adding him.
fn checked_key_package(alice: &Device, bob: &Device) -> KeyPackage {
    let key_package = {
        let provider = KithProvider::new(&bob.conn);
        new_key_package(&provider, &bob.signer, &bob.certificate, false)
            .expect("key package")
            .key_package()
            .clone()
    };
    let leaf = key_package.leaf_node();
    let bob_identity = bob.identity.public_key();
    let verified =
        verify_leaf_credential(leaf.credential(), leaf.signature_key(), Some(&bob_identity))
            .expect("Bob's certificate verifies");
    assert_eq!(verified.delivery_address, "bob@relay.example");
    let alice_identity = alice.identity.public_key();
    assert!(matches!(
        verify_leaf_credential(
            leaf.credential(),
            leaf.signature_key(),
            Some(&alice_identity)
        ),
        Err(CertificateError::IdentityMismatch { .. })
    ));
    let wrong_key = SignaturePublicKey::from(&alice.signer.public_key()[..]);
    assert_eq!(
        verify_leaf_credential(leaf.credential(), &wrong_key, None),
        Err(CertificateError::LeafKeyMismatch)
    );
    key_package
}

/// Alice creates the group and adds Bob inside one BEGIN IMMEDIATE transaction; the add
/// commit is a PublicMessage.
fn create_and_add(alice: &Device, key_package: KeyPackage) -> (MlsGroup, MlsMessageOut) {
    let tx = begin_immediate(&alice.conn).expect("begin");
    let created = {
        let provider = KithProvider::new(&tx);
        let mut group = MlsGroup::new(
            &provider,
            &alice.signer,
            &group_create_config(),
            credential_with_key(&alice.certificate),
        )
        .expect("create group");
        let (commit, welcome, _) = group
            .add_members(&provider, &alice.signer, &[key_package])
            .expect("add Bob");
        assert_eq!(to_in(commit).wire_format(), WireFormat::PublicMessage);
        group.merge_pending_commit(&provider).expect("merge");
        (group, welcome)
    };
    tx.commit().expect("commit");
    created
}

/// Bob joins from the Welcome alone (the ratchet tree travels inside it), after checking
/// every leaf's certificate.
fn join(bob: &Device, welcome: MlsMessageOut) -> MlsGroup {
    let provider = KithProvider::new(&bob.conn);
    let MlsMessageBodyIn::Welcome(welcome) = to_in(welcome).extract() else {
        panic!("expected a Welcome");
    };
    let staged = StagedWelcome::new_from_welcome(&provider, &group_join_config(), welcome, None)
        .expect("stage welcome");
    for member in staged.members() {
        let key = SignaturePublicKey::from(member.signature_key.clone());
        verify_leaf_credential(&member.credential, &key, None)
            .expect("every leaf carries a valid certificate");
    }
    staged.into_group(&provider).expect("join")
}

/// `from` commits a self-update (a PublicMessage) and `to` merges it.
fn self_update(from: &Device, from_group: &mut MlsGroup, to: &Device, to_group: &mut MlsGroup) {
    let (from_provider, to_provider) = (KithProvider::new(&from.conn), KithProvider::new(&to.conn));
    let bundle = from_group
        .self_update(&from_provider, &from.signer, LeafNodeParameters::default())
        .expect("self update");
    let (wire_format, commit) = protocol(bundle.into_commit());
    assert_eq!(wire_format, WireFormat::PublicMessage);
    from_group
        .merge_pending_commit(&from_provider)
        .expect("merge own commit");
    let processed = to_group
        .process_message(&to_provider, commit)
        .expect("process commit");
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("expected a commit");
    };
    to_group
        .merge_staged_commit(&to_provider, *staged)
        .expect("merge commit");
    assert_eq!(from_group.epoch(), to_group.epoch());
}

/// `from` sends `text` (a PrivateMessage) and `to` decrypts it.
fn send(
    from: &Device,
    from_group: &mut MlsGroup,
    to: &Device,
    to_group: &mut MlsGroup,
    text: &[u8],
) {
    let (from_provider, to_provider) = (KithProvider::new(&from.conn), KithProvider::new(&to.conn));
    let message = from_group
        .create_message(&from_provider, &from.signer, text)
        .expect("create message");
    let (wire_format, message) = protocol(message);
    assert_eq!(wire_format, WireFormat::PrivateMessage);
    let processed = to_group
        .process_message(&to_provider, message)
        .expect("decrypt");
    let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
        panic!("expected an application message");
    };
    assert_eq!(app.into_bytes(), text);
}

/// Both members derive the same exports; the two labels give different secrets.
fn shared_exports(
    alice: &Device,
    alice_group: &MlsGroup,
    bob: &Device,
    bob_group: &MlsGroup,
) -> [u8; 32] {
    let (a, b) = (KithProvider::new(&alice.conn), KithProvider::new(&bob.conn));
    let alice_key =
        export_epoch_key(alice_group, a.crypto(), EpochExport::EnvelopeKey).expect("export");
    let bob_key =
        export_epoch_key(bob_group, b.crypto(), EpochExport::EnvelopeKey).expect("export");
    assert_eq!(*alice_key, *bob_key);
    let epoch = epoch_id(alice_group, a.crypto()).expect("epoch id");
    assert_eq!(epoch, epoch_id(bob_group, b.crypto()).expect("epoch id"));
    assert_ne!(epoch, *alice_key);
    epoch
}

fn reopen(device: Device, path: &Path) -> Device {
    drop(device.conn);
    Device {
        conn: open(path),
        ..device
    }
}

fn load(device: &Device, group_id: &GroupId) -> MlsGroup {
    let provider = KithProvider::new(&device.conn);
    MlsGroup::load(provider.storage(), group_id)
        .expect("load")
        .expect("stored")
}

#[test]
fn two_members_over_sqlite_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (alice_path, bob_path) = (dir.path().join("alice.db"), dir.path().join("bob.db"));
    let alice = device(&alice_path, "alice@relay.example");
    let bob = device(&bob_path, "bob@relay.example");

    let key_package = checked_key_package(&alice, &bob);
    let (mut alice_group, welcome) = create_and_add(&alice, key_package);
    let mut bob_group = join(&bob, welcome);
    assert_eq!(bob_group.epoch(), alice_group.epoch());
    self_update(&bob, &mut bob_group, &alice, &mut alice_group);
    send(&alice, &mut alice_group, &bob, &mut bob_group, b"hello Bob");
    let epoch_id_before = shared_exports(&alice, &alice_group, &bob, &bob_group);
    let (group_id, epoch) = (alice_group.group_id().clone(), alice_group.epoch());
    drop((alice_group, bob_group));

    // Reload both from their files and keep talking.
    let alice = reopen(alice, &alice_path);
    let bob = reopen(bob, &bob_path);
    let mut alice_group = load(&alice, &group_id);
    let mut bob_group = load(&bob, &group_id);
    assert_eq!(alice_group.epoch(), epoch);
    assert_eq!(
        shared_exports(&alice, &alice_group, &bob, &bob_group),
        epoch_id_before
    );
    send(&bob, &mut bob_group, &alice, &mut alice_group, b"hi Alice");
    self_update(&alice, &mut alice_group, &bob, &mut bob_group);
    assert_ne!(
        shared_exports(&alice, &alice_group, &bob, &bob_group),
        epoch_id_before
    );
}

#[test]
fn rolled_back_transaction_leaves_no_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = device(&dir.path().join("alice.db"), "alice@relay.example");
    let tx = begin_immediate(&alice.conn).expect("begin");
    let group_id = {
        let provider = KithProvider::new(&tx);
        let group = MlsGroup::new(
            &provider,
            &alice.signer,
            &group_create_config(),
            credential_with_key(&alice.certificate),
        )
        .expect("create group");
        assert!(MlsGroup::load(provider.storage(), group.group_id())
            .expect("load")
            .is_some());
        group.group_id().clone()
    };
    drop(tx); // rollback
    let provider = KithProvider::new(&alice.conn);
    assert!(MlsGroup::load(provider.storage(), &group_id)
        .expect("load")
        .is_none());
}
