use kith_crypto::certificate::{CertificateError, DeviceCertificate, DeviceId};
use kith_crypto::identity::IdentityKey;
use kith_crypto::mls::openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use kith_crypto::mls::openmls::prelude::*;
use kith_crypto::mls::{
    begin_immediate, credential_with_key, epoch_id, export_epoch_key, group_create_config,
    group_join_config, run_migrations, verify_leaf_credential, DeviceSigningKey, EpochExport,
    KithProvider, CIPHERSUITE,
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

#[test]
fn two_members_over_sqlite_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = device(&dir.path().join("alice.db"), "alice@relay.example");
    let bob = device(&dir.path().join("bob.db"), "bob@relay.example");

    // Bob publishes a KeyPackage; Alice checks its leaf credential before adding him.
    let key_package = {
        let provider = KithProvider::new(&bob.conn);
        KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &provider,
                &bob.signer,
                credential_with_key(&bob.certificate),
            )
            .expect("key package")
            .key_package()
            .clone()
    };
    let leaf = key_package.leaf_node();
    let verified = verify_leaf_credential(
        leaf.credential(),
        leaf.signature_key(),
        Some(&bob.identity.public_key()),
    )
    .expect("Bob's certificate verifies");
    assert_eq!(verified.delivery_address, "bob@relay.example");
    assert!(matches!(
        verify_leaf_credential(
            leaf.credential(),
            leaf.signature_key(),
            Some(&alice.identity.public_key())
        ),
        Err(CertificateError::IdentityMismatch { .. })
    ));
    let wrong_key = SignaturePublicKey::from(&alice.signer.public_key()[..]);
    assert_eq!(
        verify_leaf_credential(leaf.credential(), &wrong_key, None),
        Err(CertificateError::LeafKeyMismatch)
    );

    // Alice creates the group and adds Bob, inside one BEGIN IMMEDIATE transaction.
    let tx = begin_immediate(&alice.conn).expect("begin");
    let (mut alice_group, welcome) = {
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
    let group_id = alice_group.group_id().clone();

    // Bob joins from the Welcome alone (the ratchet tree travels inside it).
    let mut bob_group = {
        let provider = KithProvider::new(&bob.conn);
        let MlsMessageBodyIn::Welcome(welcome) = to_in(welcome).extract() else {
            panic!("expected a Welcome");
        };
        let staged =
            StagedWelcome::new_from_welcome(&provider, &group_join_config(), welcome, None)
                .expect("stage welcome");
        for member in staged.members() {
            verify_leaf_credential(
                &member.credential,
                &SignaturePublicKey::from(member.signature_key.clone()),
                None,
            )
            .expect("every leaf carries a valid certificate");
        }
        staged.into_group(&provider).expect("join")
    };
    assert_eq!(bob_group.epoch(), alice_group.epoch());

    // Bob commits a self-update: it travels as a PublicMessage.
    let alice_provider = KithProvider::new(&alice.conn);
    let bob_provider = KithProvider::new(&bob.conn);
    let bundle = bob_group
        .self_update(&bob_provider, &bob.signer, LeafNodeParameters::default())
        .expect("self update");
    let (wire_format, commit) = protocol(bundle.into_commit());
    assert_eq!(wire_format, WireFormat::PublicMessage);
    bob_group
        .merge_pending_commit(&bob_provider)
        .expect("merge own commit");
    let processed = alice_group
        .process_message(&alice_provider, commit)
        .expect("process commit");
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("expected a commit");
    };
    alice_group
        .merge_staged_commit(&alice_provider, *staged)
        .expect("merge Bob's commit");
    assert_eq!(alice_group.epoch(), bob_group.epoch());

    // Application messages are PrivateMessages.
    let message = alice_group
        .create_message(&alice_provider, &alice.signer, b"hello Bob")
        .expect("create message");
    let (wire_format, message) = protocol(message);
    assert_eq!(wire_format, WireFormat::PrivateMessage);
    let processed = bob_group
        .process_message(&bob_provider, message)
        .expect("decrypt");
    let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
        panic!("expected an application message");
    };
    assert_eq!(app.into_bytes(), b"hello Bob");

    // Both derive the same exports; the two labels give different secrets.
    let alice_key = export_epoch_key(
        &alice_group,
        alice_provider.crypto(),
        EpochExport::EnvelopeKey,
    )
    .expect("export");
    let bob_key = export_epoch_key(&bob_group, bob_provider.crypto(), EpochExport::EnvelopeKey)
        .expect("export");
    assert_eq!(*alice_key, *bob_key);
    let alice_epoch = epoch_id(&alice_group, alice_provider.crypto()).expect("epoch id");
    assert_eq!(
        alice_epoch,
        epoch_id(&bob_group, bob_provider.crypto()).expect("epoch id")
    );
    assert_ne!(alice_epoch, *alice_key);
    let epoch = alice_group.epoch();
    drop((alice_group, bob_group, alice_provider, bob_provider));
    drop((alice.conn, bob.conn));

    // Reload both from their files and keep talking.
    let alice_conn = open(&dir.path().join("alice.db"));
    let bob_conn = open(&dir.path().join("bob.db"));
    let alice_provider = KithProvider::new(&alice_conn);
    let bob_provider = KithProvider::new(&bob_conn);
    let mut alice_group = MlsGroup::load(alice_provider.storage(), &group_id)
        .expect("load")
        .expect("stored");
    let mut bob_group = MlsGroup::load(bob_provider.storage(), &group_id)
        .expect("load")
        .expect("stored");
    assert_eq!(alice_group.epoch(), epoch);
    assert_eq!(
        epoch_id(&bob_group, bob_provider.crypto()).expect("epoch id"),
        alice_epoch
    );
    let reply = bob_group
        .create_message(&bob_provider, &bob.signer, b"hi Alice")
        .expect("create");
    let (_, reply) = protocol(reply);
    let processed = alice_group
        .process_message(&alice_provider, reply)
        .expect("decrypt after reload");
    let ProcessedMessageContent::ApplicationMessage(app) = processed.into_content() else {
        panic!("expected an application message");
    };
    assert_eq!(app.into_bytes(), b"hi Alice");
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
